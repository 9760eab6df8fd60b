//! A `verify` series as data: which campaigns a shard runs, what each campaign found, the
//! series document (`verify.json`) a run of `verify` writes, and merging the documents of
//! the shards of one series into the verdict of the whole (pure; the command is in
//! [`crate::verify_cmd`]).

use crate::campaign::checking::AnyModel;
use faultline_checkers::lattice::ModelName;
use faultline_checkers::txn::TxnModel;
use faultline_results::OpCounts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `format` of a series document.
pub const SERIES_FORMAT: &str = "faultline-verify";
/// The version of the series document this build writes and reads.
pub const SERIES_VERSION: u32 = 1;
/// The series document's file name in a series folder.
pub const SERIES_JSON: &str = "verify.json";
/// The most shards of one series.
pub const MAX_SHARDS: usize = 1_000;

/// One share of a series: the `index`-th of `of` (`index` from 0, as Kubernetes's
/// `JOB_COMPLETION_INDEX`). Campaign `i` of the series belongs to shard `i % of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which share, from 0.
    pub index: usize,
    /// How many shares.
    pub of: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let refuse = || {
            format!(
                "expected K/N: shard K (from 0) of N shards, N from 1 to {MAX_SHARDS}, e.g. 0/4"
            )
        };
        let (k, n) = s.trim().split_once('/').ok_or_else(refuse)?;
        let index: usize = k.trim().parse().map_err(|_| refuse())?;
        let of: usize = n.trim().parse().map_err(|_| refuse())?;
        if of == 0 || of > MAX_SHARDS {
            return Err(refuse());
        }
        if index >= of {
            return Err(format!(
                "shard {index} of {of} does not exist: shards are numbered from 0 to {}",
                of - 1
            ));
        }
        Ok(Shard { index, of })
    }
}

impl Shard {
    /// The campaigns (numbered from 0) of a series of `campaigns` this shard runs.
    pub fn campaigns(self, campaigns: usize) -> Vec<usize> {
        (0..campaigns)
            .filter(|i| i % self.of == self.index)
            .collect()
    }
}

/// The campaigns a run of `verify` runs: all of them, or its shard's.
pub fn campaigns_to_run(shard: Option<Shard>, campaigns: usize) -> Vec<usize> {
    match shard {
        Some(s) => s.campaigns(campaigns),
        None => (0..campaigns).collect(),
    }
}

/// What one campaign said about one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum ModelOutcome {
    /// Held (checked valid, or implied by a stronger model that held).
    Held,
    /// Violated (checked invalid, or ruled out by a weaker model's violation).
    Violated,
    /// Undecided, with the reason.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// One campaign of a series as the series document keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRecord {
    /// Its number in the series, from 0.
    pub campaign: usize,
    /// Its seed (the series' first seed plus its number).
    pub seed: u64,
    /// Its fault families, comma-separated (`none` for none).
    pub nemesis: String,
    /// Its run folder.
    pub run: PathBuf,
    /// Its exit code.
    pub exit_code: u8,
    /// Its client operations by outcome.
    pub ops: OpCounts,
    /// When the live check first saw a violation, seconds into the run.
    pub first_violation_seen_s: Option<f64>,
    /// A run checked only at its end (transactions): the first whole second at which the
    /// history cut there already violated a deciding model.
    #[serde(default)]
    pub first_violation_cut_s: Option<f64>,
    /// The anomalies a transactional run showed (none for registers).
    #[serde(default)]
    pub anomalies: Option<Vec<String>>,
    /// What it said about each model it checked.
    pub models: BTreeMap<String, ModelOutcome>,
}

/// The series document, `verify.json` in a series folder: the plan, the share of the
/// campaigns this run was given, what each campaign found and the exit code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesDoc {
    /// Always [`SERIES_FORMAT`].
    pub format: String,
    /// Always [`SERIES_VERSION`].
    pub version: u32,
    /// The target's name.
    pub target: String,
    /// The plan of the first campaign (later campaigns differ in seed and, unless the
    /// plan fixes it, fault mix).
    pub plan: serde_json::Value,
    /// The seed of campaign 0.
    pub first_seed: u64,
    /// The number of campaigns of the whole series.
    pub campaigns: usize,
    /// Whether the fault mix rotates from campaign to campaign.
    pub rotating_mix: bool,
    /// The models that decide the exit code.
    pub claim: Vec<String>,
    /// This run's share, `None` for a whole series.
    pub shard: Option<Shard>,
    /// The campaigns this run was given, numbered from 0.
    pub assigned: Vec<usize>,
    /// The campaigns run so far, in order.
    pub runs: Vec<CampaignRecord>,
    /// Ctrl-C stopped the series.
    pub interrupted: bool,
    /// The exit code of a campaign that could not run (the series stopped there).
    pub failed: Option<u8>,
    /// The exit code of this document's campaigns (absent while they run).
    pub exit_code: Option<u8>,
    /// For a merged series: the shard folders it was merged from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<PathBuf>,
}

/// Why the documents of some shards cannot be merged (exit 254).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error(
        "nothing to merge: give the shard folders of one series (verify --shard K/N wrote them)"
    )]
    Empty,
    /// A folder holds a whole series, not a shard.
    #[error("{0} is a whole series, not a shard (it was not run with --shard K/N)")]
    NotAShard(PathBuf),
    /// Two shards of different plans or series.
    #[error("{a} and {b} are shards of different series: their {what} differ")]
    DifferentSeries {
        /// The first folder.
        a: PathBuf,
        /// The other folder.
        b: PathBuf,
        /// What differs (plan, seed, campaigns, shard count, ...).
        what: String,
    },
    /// One shard given twice.
    #[error("shard {shard} is given twice: {a} and {b}")]
    Duplicate {
        /// The shard.
        shard: Shard,
        /// The first folder.
        a: PathBuf,
        /// The other folder.
        b: PathBuf,
    },
    /// Shards missing.
    #[error("shard(s) {missing} of {of} missing: merge needs every shard of the series")]
    Missing {
        /// The missing shard numbers, comma-separated.
        missing: String,
        /// The shard count.
        of: usize,
    },
    /// A shard ran campaigns that are not its own.
    #[error("{dir} (shard {shard}) holds campaign {campaign}, which is not one of its campaigns")]
    Foreign {
        /// The folder.
        dir: PathBuf,
        /// Its shard.
        shard: Shard,
        /// The campaign number.
        campaign: usize,
    },
}

/// The plan fields that do not change what a series tests (where results are written,
/// where this machine keeps the node program): ignored when shards are compared.
const LOCAL_PLAN_FIELDS: [&str; 2] = ["store", "node_binary"];

/// The plan without its machine-local fields.
fn plan_identity(plan: &serde_json::Value) -> serde_json::Value {
    let mut p = plan.clone();
    if let Some(o) = p.as_object_mut() {
        for f in LOCAL_PLAN_FIELDS {
            o.remove(f);
        }
    }
    p
}

/// Merges the documents of every shard of one series (each with the folder it was read
/// from) into the document of the whole series: the campaigns in order, interrupted or
/// failed if any shard was. The exit code is left for [`summarize`] to decide.
pub fn merge(shards: &[(PathBuf, SeriesDoc)]) -> Result<SeriesDoc, MergeError> {
    let (first_dir, first) = shards.first().ok_or(MergeError::Empty)?;
    let first_shard = first
        .shard
        .ok_or_else(|| MergeError::NotAShard(first_dir.clone()))?;
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for (dir, doc) in shards {
        let shard = doc
            .shard
            .ok_or_else(|| MergeError::NotAShard(dir.clone()))?;
        let differ = |what: &str| MergeError::DifferentSeries {
            a: first_dir.clone(),
            b: dir.clone(),
            what: what.to_string(),
        };
        if doc.target != first.target {
            return Err(differ("targets"));
        }
        if plan_identity(&doc.plan) != plan_identity(&first.plan) {
            return Err(differ("plans"));
        }
        if doc.first_seed != first.first_seed {
            return Err(differ("first seeds"));
        }
        if doc.campaigns != first.campaigns {
            return Err(differ("campaign counts"));
        }
        if doc.rotating_mix != first.rotating_mix {
            return Err(differ("fault mixes"));
        }
        if doc.claim != first.claim {
            return Err(differ("claimed models"));
        }
        if shard.of != first_shard.of {
            return Err(differ("shard counts"));
        }
        if let Some(a) = seen.insert(shard.index, dir) {
            return Err(MergeError::Duplicate {
                shard,
                a: a.to_path_buf(),
                b: dir.clone(),
            });
        }
        let own = shard.campaigns(doc.campaigns);
        if let Some(r) = doc.runs.iter().find(|r| !own.contains(&r.campaign)) {
            return Err(MergeError::Foreign {
                dir: dir.clone(),
                shard,
                campaign: r.campaign,
            });
        }
    }
    let missing: Vec<String> = (0..first_shard.of)
        .filter(|k| !seen.contains_key(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing: missing.join(", "),
            of: first_shard.of,
        });
    }
    let mut runs: Vec<CampaignRecord> = shards
        .iter()
        .flat_map(|(_, d)| d.runs.iter().cloned())
        .collect();
    runs.sort_by_key(|r| r.campaign);
    // The failures of several shards fold by the exit codes' precedence.
    let failures: Vec<u8> = shards.iter().filter_map(|(_, d)| d.failed).collect();
    let failed = (!failures.is_empty()).then(|| {
        let mut o = crate::exit::Outcome::default();
        for f in failures {
            o.add_code(f);
        }
        o.code()
    });
    Ok(SeriesDoc {
        format: SERIES_FORMAT.into(),
        version: SERIES_VERSION,
        target: first.target.clone(),
        plan: first.plan.clone(),
        first_seed: first.first_seed,
        campaigns: first.campaigns,
        rotating_mix: first.rotating_mix,
        claim: first.claim.clone(),
        shard: None,
        assigned: (0..first.campaigns).collect(),
        runs,
        interrupted: shards.iter().any(|(_, d)| d.interrupted),
        failed,
        exit_code: None,
        merged_from: shards.iter().map(|(d, _)| d.clone()).collect(),
    })
}

/// What all campaigns said about one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tally {
    /// Held in every campaign.
    Held,
    /// Violated; the run folder that shows it.
    Violated(PathBuf),
    /// Undecided in some campaign, violated in none.
    Unknown(String),
}

/// Folds one campaign's outcome into the tally so far (violated beats unknown beats
/// held; the first violating run is kept).
pub fn fold(prev: Option<Tally>, outcome: &ModelOutcome, run: &Path) -> Tally {
    let now = match outcome {
        ModelOutcome::Held => Tally::Held,
        ModelOutcome::Violated => Tally::Violated(run.to_path_buf()),
        ModelOutcome::Unknown { reason } => Tally::Unknown(reason.clone()),
    };
    match (prev, now) {
        (Some(v @ Tally::Violated(_)), _) => v,
        (_, v @ Tally::Violated(_)) => v,
        (Some(u @ Tally::Unknown(_)), _) => u,
        (_, now) => now,
    }
}

/// The exit code from the claimed models' tallies.
pub fn verdict_code(tally: &BTreeMap<AnyModel, Tally>, decisive: &[AnyModel]) -> u8 {
    let of = |m: &AnyModel| tally.get(m);
    if decisive
        .iter()
        .any(|m| matches!(of(m), Some(Tally::Violated(_))))
    {
        crate::exit::INVALID
    } else if decisive.iter().all(|m| matches!(of(m), Some(Tally::Held))) {
        crate::exit::VALID
    } else {
        crate::exit::UNKNOWN
    }
}

/// The verdict of a series document.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Every model's tally.
    pub tally: BTreeMap<AnyModel, Tally>,
    /// The models that decide the exit code.
    pub decisive: Vec<AnyModel>,
    /// The strongest models that held throughout.
    pub strongest: Vec<&'static str>,
    /// The assigned campaigns that did not run.
    pub not_run: Vec<usize>,
    /// The exit code.
    pub code: u8,
}

/// The verdict of `doc`: the tally over its campaigns in order; a violation decides;
/// valid only when every assigned campaign ran, none failed and no Ctrl-C stopped it.
/// A model name this build does not know is an error naming it.
pub fn summarize(doc: &SeriesDoc) -> Result<Summary, String> {
    // A transactional series names isolation models, any other the register models.
    let txn = matches!(
        doc.plan.get("workload").and_then(|w| w.as_str()),
        Some("list-append" | "rw-register")
    );
    let model = |name: &str| {
        let parsed = if txn {
            name.parse::<TxnModel>()
                .map(AnyModel::Txn)
                .map_err(|e| e.to_string())
        } else {
            name.parse::<ModelName>()
                .map(AnyModel::Register)
                .map_err(|e| e.to_string())
        };
        parsed.map_err(|e| format!("model {name:?}: {e}"))
    };
    let decisive = doc
        .claim
        .iter()
        .map(|c| model(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut tally: BTreeMap<AnyModel, Tally> = BTreeMap::new();
    for r in &doc.runs {
        for (name, outcome) in &r.models {
            let m = model(name)?;
            let prev = tally.remove(&m);
            tally.insert(m, fold(prev, outcome, &r.run));
        }
    }
    let held: Vec<AnyModel> = tally
        .iter()
        .filter(|(_, t)| **t == Tally::Held)
        .map(|(m, _)| *m)
        .collect();
    let strongest = held
        .iter()
        .filter(|m| !held.iter().any(|s| s.stronger_than(**m)))
        .map(|m| m.as_str())
        .collect();
    let not_run: Vec<usize> = doc
        .assigned
        .iter()
        .copied()
        .filter(|i| !doc.runs.iter().any(|r| r.campaign == *i))
        .collect();
    let mut code = if doc.runs.is_empty() {
        crate::exit::UNKNOWN
    } else {
        verdict_code(&tally, &decisive)
    };
    if (doc.interrupted || doc.failed.is_some() || !not_run.is_empty())
        && code == crate::exit::VALID
    {
        code = crate::exit::UNKNOWN;
    }
    let mut outcome = crate::exit::Outcome::default();
    outcome.add_code(code);
    if let Some(f) = doc.failed {
        outcome.add_code(f);
    }
    Ok(Summary {
        tally,
        decisive,
        strongest,
        not_run,
        code: outcome.code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(campaign: usize, models: &[(&str, ModelOutcome)]) -> CampaignRecord {
        CampaignRecord {
            campaign,
            seed: 100 + campaign as u64,
            nemesis: "partition".into(),
            run: PathBuf::from(format!("store/raft-register/run{campaign}")),
            exit_code: 0,
            ops: OpCounts::default(),
            first_violation_seen_s: None,
            first_violation_cut_s: None,
            anomalies: None,
            models: models
                .iter()
                .map(|(m, o)| (m.to_string(), o.clone()))
                .collect(),
        }
    }

    fn doc(shard: Option<Shard>, campaigns: usize, runs: Vec<CampaignRecord>) -> SeriesDoc {
        SeriesDoc {
            format: SERIES_FORMAT.into(),
            version: SERIES_VERSION,
            target: "raft-register".into(),
            plan: serde_json::json!({"target": "raft-register", "nodes": 3, "store": "store"}),
            first_seed: 100,
            campaigns,
            rotating_mix: true,
            claim: vec!["linearizable".into()],
            shard,
            assigned: campaigns_to_run(shard, campaigns),
            runs,
            interrupted: false,
            failed: None,
            exit_code: Some(0),
            merged_from: Vec::new(),
        }
    }

    fn held(campaign: usize) -> CampaignRecord {
        record(
            campaign,
            &[
                ("linearizable", ModelOutcome::Held),
                ("sequential", ModelOutcome::Held),
            ],
        )
    }

    #[test]
    fn shards_parse_from_zero_and_split_the_campaigns_exactly() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, of: 4 }));
        assert_eq!("0/1".parse::<Shard>(), Ok(Shard { index: 0, of: 1 }));
        assert!("4/4"
            .parse::<Shard>()
            .unwrap_err()
            .contains("numbered from 0 to 3"));
        for bad in ["", "1", "a/b", "0/0", "-1/2", "1/1001", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(Shard { index: 1, of: 3 }.campaigns(8), vec![1, 4, 7]);
        assert_eq!(Shard { index: 2, of: 3 }.campaigns(2), Vec::<usize>::new());
        // Together the shards run each campaign of the whole series exactly once.
        for (n, campaigns) in [(1, 5), (2, 5), (3, 50), (7, 4)] {
            let mut all: Vec<usize> = (0..n)
                .flat_map(|k| Shard { index: k, of: n }.campaigns(campaigns))
                .collect();
            all.sort_unstable();
            assert_eq!(all, campaigns_to_run(None, campaigns), "{n} shards");
        }
    }

    #[test]
    fn merging_orders_the_campaigns_and_folds_their_verdicts() {
        let s0 = Shard { index: 0, of: 2 };
        let s1 = Shard { index: 1, of: 2 };
        let mut d1 = doc(
            Some(s1),
            3,
            vec![record(
                1,
                &[
                    ("linearizable", ModelOutcome::Violated),
                    ("sequential", ModelOutcome::Held),
                ],
            )],
        );
        d1.exit_code = Some(1);
        d1.plan["store"] = "elsewhere".into(); // where each shard stored its runs differs
        let merged = merge(&[
            ("b".into(), d1),
            ("a".into(), doc(Some(s0), 3, vec![held(0), held(2)])),
        ])
        .expect("merges");
        assert_eq!(
            merged.runs.iter().map(|r| r.campaign).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(merged.shard, None);
        assert_eq!(
            merged.merged_from,
            vec![PathBuf::from("b"), PathBuf::from("a")]
        );
        let s = summarize(&merged).expect("summary");
        assert_eq!(s.code, crate::exit::INVALID);
        assert_eq!(
            s.tally[&AnyModel::Register(ModelName::Linearizable)],
            Tally::Violated("store/raft-register/run1".into())
        );
        assert_eq!(
            s.tally[&AnyModel::Register(ModelName::Sequential)],
            Tally::Held
        );
        assert_eq!(s.strongest, vec!["sequential"]);
        // The merged document says the same as the whole series run in one go.
        let whole = doc(None, 3, merged.runs.clone());
        assert_eq!(summarize(&whole).expect("summary"), s);
    }

    #[test]
    fn merging_refuses_foreign_missing_and_duplicate_shards() {
        let s = |k| Some(Shard { index: k, of: 3 });
        let ok = |k: usize| (PathBuf::from(format!("s{k}")), doc(s(k), 6, vec![held(k)]));
        assert_eq!(merge(&[]), Err(MergeError::Empty));
        let err = merge(&[ok(0), ok(2)]).unwrap_err();
        assert_eq!(
            err,
            MergeError::Missing {
                missing: "1".into(),
                of: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "shard(s) 1 of 3 missing: merge needs every shard of the series"
        );
        let err = merge(&[ok(0), ok(1), ok(1), ok(2)]).unwrap_err();
        assert!(
            matches!(
                err,
                MergeError::Duplicate {
                    shard: Shard { index: 1, of: 3 },
                    ..
                }
            ),
            "{err}"
        );
        let whole = (PathBuf::from("w"), doc(None, 6, vec![held(0)]));
        assert_eq!(
            merge(&[ok(0), whole]),
            Err(MergeError::NotAShard("w".into()))
        );
        let mut other_plan = ok(1);
        other_plan.1.plan["nodes"] = 5.into();
        let err = merge(&[ok(0), other_plan, ok(2)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "s0 and s1 are shards of different series: their plans differ"
        );
        let mut other_seed = ok(1);
        other_seed.1.first_seed = 7;
        assert!(merge(&[ok(0), other_seed, ok(2)])
            .unwrap_err()
            .to_string()
            .contains("first seeds"));
        let mut other_count = ok(1);
        other_count.1.shard = Some(Shard { index: 1, of: 4 });
        assert!(merge(&[ok(0), other_count, ok(2)])
            .unwrap_err()
            .to_string()
            .contains("shard counts"));
        let mut foreign = ok(1);
        foreign.1.runs.push(held(2));
        assert_eq!(
            merge(&[ok(0), foreign, ok(2)]),
            Err(MergeError::Foreign {
                dir: "s1".into(),
                shard: Shard { index: 1, of: 3 },
                campaign: 2
            })
        );
    }

    #[test]
    fn a_shard_that_did_not_finish_leaves_the_merged_verdict_unknown() {
        let s0 = Shard { index: 0, of: 2 };
        let s1 = Shard { index: 1, of: 2 };
        // Shard 1 was given campaigns 1 and 3 and ran only 1.
        let merged = merge(&[
            ("a".into(), doc(Some(s0), 4, vec![held(0), held(2)])),
            ("b".into(), doc(Some(s1), 4, vec![held(1)])),
        ])
        .expect("merges");
        let s = summarize(&merged).expect("summary");
        assert_eq!(s.not_run, vec![3]);
        assert_eq!(s.code, crate::exit::UNKNOWN);
        // A shard whose campaign could not run (exit 255) makes the whole exit 255.
        let mut failed = doc(Some(s1), 4, vec![held(1), held(3)]);
        failed.failed = Some(crate::exit::HARNESS_FAILURE);
        let merged = merge(&[
            ("a".into(), doc(Some(s0), 4, vec![held(0), held(2)])),
            ("b".into(), failed),
        ])
        .expect("merges");
        assert_eq!(
            summarize(&merged).expect("summary").code,
            crate::exit::HARNESS_FAILURE
        );
    }

    #[test]
    fn the_series_document_reads_back_as_written() {
        let d = doc(
            Some(Shard { index: 1, of: 2 }),
            4,
            vec![record(
                1,
                &[(
                    "ryw",
                    ModelOutcome::Unknown {
                        reason: "budget".into(),
                    },
                )],
            )],
        );
        let text = serde_json::to_string_pretty(&d).expect("json");
        assert!(
            text.contains("\"shard\": {\n    \"index\": 1,\n    \"of\": 2\n  }"),
            "{text}"
        );
        assert!(text.contains("\"result\": \"unknown\""), "{text}");
        assert_eq!(serde_json::from_str::<SeriesDoc>(&text).expect("reads"), d);
    }
}
