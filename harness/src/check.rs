//! `faultline check`: check recorded or imported histories.

use crate::{exit, reporting};
use anyhow::{bail, Result};
use clap::Args;
use faultline_checkers::lattice::{check_models, model_table, ConsistencyOptions, ModelName};
use faultline_checkers::Verdict;
use faultline_checkers::{check_linearizable, DataModel, LinOptions};
use faultline_history::{load, Format};
use faultline_history::{History, Paired, Value, META_INITIAL};
use faultline_results::RunInfo;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `faultline check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// History files (faultline JSONL, Jepsen EDN or Porcupine logs).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Models to check, comma-separated: register, cas-register, kv (linearizability under that
    /// data model), linearizable, sequential, ccv, cm, cc (= causal), pram, ryw, mr, mw, wfr, all.
    #[arg(long, default_value = "linearizable")]
    model: String,
    /// Data model for linearizability: auto, register, cas-register or kv.
    #[arg(long, default_value = "auto")]
    data_model: String,
    /// Input format: auto, jsonl, edn or porcupine.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Initial value of every key (JSON; bare words are strings). Default: the history's
    /// own metadata, else null (never written).
    #[arg(long)]
    initial: Option<String>,
    /// For Jepsen EDN: an ok read of nil means "never written" (default: Knossos's
    /// reading, it observed nothing).
    #[arg(long)]
    nil_means_unwritten: bool,
    /// One JSON object per file per line instead of text.
    #[arg(long)]
    json: bool,
    /// Time budget per file and model, in seconds (0 = none); past it the verdict is
    /// unknown, never valid.
    #[arg(long, default_value_t = 60.0)]
    time_limit: f64,
    /// Also write the reports (report.html, report.md, junit.xml, verdict.json, run.json)
    /// into this folder (one subfolder per file when several files are given).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
}

/// What the user asked to check.
#[derive(Debug, Clone)]
struct Request {
    /// Linearizability with this data model (`None` = infer per file).
    linearizable: Option<Option<DataModel>>,
    /// Other models.
    others: Vec<ModelName>,
    /// Whether to print the lattice table.
    table: bool,
}

fn parse_request(models: &str, data_model: &str) -> Result<Request> {
    let forced = match data_model {
        "auto" => None,
        other => Some(other.parse::<DataModel>().map_err(|e| {
            anyhow::anyhow!(
                "--data-model {other}: {e} (expected auto, register, cas-register or kv)"
            )
        })?),
    };
    let mut req = Request {
        linearizable: None,
        others: Vec::new(),
        table: false,
    };
    for m in models.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        match m {
            "all" => {
                req.linearizable = Some(forced);
                req.others = ModelName::ALL
                    .iter()
                    .copied()
                    .filter(|m| *m != ModelName::Linearizable)
                    .collect();
                req.table = true;
            }
            "register" | "cas-register" | "kv" => {
                if forced.is_some() {
                    bail!("--model {m} already names a data model; drop --data-model");
                }
                req.linearizable = Some(Some(m.parse::<DataModel>().map_err(anyhow::Error::msg)?));
            }
            other => match other.parse::<ModelName>() {
                Ok(ModelName::Linearizable) => req.linearizable = Some(forced),
                Ok(name) => {
                    if !req.others.contains(&name) {
                        req.others.push(name)
                    }
                }
                Err(_) => bail!(
                    "unknown model {other:?}: expected register, cas-register, kv, linearizable, sequential, ccv, cm, cc, causal, pram, ryw, mr, mw, wfr or all"
                ),
            },
        }
    }
    if req.linearizable.is_none() && req.others.is_empty() {
        bail!("--model names no model");
    }
    if req.others.len() + usize::from(req.linearizable.is_some()) > 1 {
        req.table = true;
    }
    Ok(req)
}

/// The data model a history needs when the user did not say.
fn parse_initial(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// Runs `faultline check`; returns the exit code.
pub fn run(args: CheckArgs) -> Result<u8> {
    let request = match parse_request(&args.model, &args.data_model) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(exit::BAD_INPUT);
        }
    };
    let format = match args.format.parse::<Format>() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: --format {}: {e}", args.format);
            return Ok(exit::BAD_INPUT);
        }
    };
    let time_limit = match args.time_limit {
        0.0 => None,
        t => match Duration::try_from_secs_f64(t) {
            Ok(d) => Some(d),
            Err(_) => {
                eprintln!("error: --time-limit {t}: expected a number of seconds, 0 for none");
                return Ok(exit::BAD_INPUT);
            }
        },
    };
    let mut outcome = exit::Outcome::default();
    for file in &args.files {
        let name = file.display().to_string();
        let started = Instant::now();
        let history = match load(file, format) {
            Ok(h) => h,
            Err(e) => {
                report_bad_input(&args, &name, &e.to_string());
                outcome.add_bad_input();
                continue;
            }
        };
        let paired = match history.pair(&name) {
            Ok(p) => p,
            Err(e) => {
                report_bad_input(&args, &name, &e.to_string());
                outcome.add_bad_input();
                continue;
            }
        };
        if history.truncated_tail {
            eprintln!("warning: {name}: the last line was cut short (the recorder stopped mid-write); it was skipped");
        }
        let parse_ms = started.elapsed().as_secs_f64() * 1e3;
        let result = check_file(&args, &request, &history, &paired, time_limit);
        for (_, v) in &result.verdicts {
            outcome.add(v);
        }
        let tail = history.truncated_tail;
        print_result(&args, &request, &name, &paired, &result, parse_ms, tail);
        if let Some(dir) = &args.report {
            let dir = if args.files.len() > 1 {
                dir.join(report_subfolder(file))
            } else {
                dir.clone()
            };
            let doc = reporting::verdict_doc(
                &result.verdicts,
                &[],
                paired.ops.len() as u64,
                result.check_ms.round() as u64,
            );
            let run = RunInfo::imported(name.clone());
            let paths = reporting::write_all(&dir, &run, &history, &doc)?;
            if !args.json {
                println!("    report: {}", paths.html.display());
            }
        }
    }
    Ok(outcome.code())
}

struct FileResult {
    data_model: Option<DataModel>,
    verdicts: Vec<(ModelName, Verdict)>,
    check_ms: f64,
}

fn check_file(
    args: &CheckArgs,
    request: &Request,
    history: &History,
    paired: &Paired,
    time_limit: Option<Duration>,
) -> FileResult {
    let initial = match &args.initial {
        Some(s) => parse_initial(s),
        None => history
            .meta
            .get(META_INITIAL)
            .cloned()
            .unwrap_or(Value::Null),
    };
    let nil_reads_unknown = history.nil_reads_unknown() && !args.nil_means_unwritten;
    let started = Instant::now();
    let mut verdicts = Vec::new();
    let mut data_model = None;
    if let Some(forced) = request.linearizable {
        let dm = forced.unwrap_or_else(|| DataModel::infer(paired));
        data_model = Some(dm);
        let opts = LinOptions {
            initial: initial.clone(),
            nil_reads_unknown,
            time_limit,
            ..LinOptions::default()
        };
        let report = check_linearizable(paired, dm, &opts);
        verdicts.push((ModelName::Linearizable, report.verdict));
    }
    // Sequential consistency is a search (NP-complete in general) and causal memory a
    // fixpoint; when linearizability already holds both are implied, so the table says
    // "implied" instead of spending the budget on them.
    let linearizable = verdicts
        .first()
        .filter(|(m, _)| *m == ModelName::Linearizable)
        .and_then(|(_, v)| v.holds());
    let lin_valid = linearizable == Some(true);
    let copts = ConsistencyOptions {
        time_limit,
        nil_reads_unknown,
        initial,
        linearizable,
        ..ConsistencyOptions::default()
    };
    let to_check: Vec<ModelName> = request
        .others
        .iter()
        .copied()
        .filter(|m| !(lin_valid && matches!(m, ModelName::Sequential | ModelName::Cm)))
        .collect();
    verdicts.extend(check_models(paired, &to_check, &copts));
    FileResult {
        data_model,
        verdicts,
        check_ms: started.elapsed().as_secs_f64() * 1e3,
    }
}

fn report_bad_input(args: &CheckArgs, name: &str, message: &str) {
    if args.json {
        println!(
            "{}",
            json!({"file": name, "valid": "unknown", "error": message})
        );
    } else {
        eprintln!("error: {message}");
    }
}

fn valid_json(v: &Verdict) -> serde_json::Value {
    match v {
        Verdict::Valid => json!(true),
        Verdict::Invalid { .. } => json!(false),
        Verdict::Unknown { .. } => json!("unknown"),
    }
}

fn merged(verdicts: &[(ModelName, Verdict)]) -> Verdict {
    verdicts
        .iter()
        .map(|(_, v)| v.clone())
        .fold(Verdict::Valid, Verdict::merge)
}

fn print_result(
    args: &CheckArgs,
    request: &Request,
    name: &str,
    paired: &Paired,
    r: &FileResult,
    parse_ms: f64,
    truncated_tail: bool,
) {
    let dm = r.data_model.map(|d| d.to_string());
    if args.json {
        let mut obj = json!({
            "file": name,
            "model": if request.table { "all".to_string() } else { r.verdicts[0].0.to_string() },
            "valid": valid_json(&merged(&r.verdicts)),
            "ops": paired.ops.len(),
            "parse_ms": round3(parse_ms),
            "check_ms": round3(r.check_ms),
        });
        if let Some(dm) = &dm {
            obj["data_model"] = json!(dm);
        }
        if truncated_tail {
            obj["truncated_tail"] = json!(true);
        }
        if request.table {
            let table = model_table(r.verdicts.clone());
            obj["models"] = serde_json::to_value(&table).unwrap_or(serde_json::Value::Null);
        } else {
            match &r.verdicts[0].1 {
                Verdict::Invalid { witness } => {
                    obj["witness"] = serde_json::to_value(witness).unwrap_or_default();
                    obj["explanation"] = json!(witness.render_text());
                }
                Verdict::Unknown { reason, undecided } => {
                    obj["reason"] = json!(reason);
                    if !undecided.is_empty() {
                        obj["undecided"] = json!(undecided);
                    }
                }
                Verdict::Valid => {}
            }
        }
        println!("{obj}");
        return;
    }
    let under = dm.map(|d| format!(" ({d})")).unwrap_or_default();
    if request.table {
        println!(
            "{name}: {} ops, checked in {:.1} ms",
            paired.ops.len(),
            r.check_ms
        );
        print!("{}", model_table(r.verdicts.clone()).render_text());
        return;
    }
    let (model, verdict) = &r.verdicts[0];
    println!(
        "{name}: {model}{under}: {} ({} ops, {:.1} ms)",
        verdict.label(),
        paired.ops.len(),
        r.check_ms
    );
    match verdict {
        Verdict::Invalid { witness } => {
            for line in witness.render_text().lines() {
                println!("    {line}");
            }
        }
        Verdict::Unknown { reason, undecided } => {
            println!("    {reason}");
            if !undecided.is_empty() {
                println!("    undecided: {}", undecided.join(", "));
            }
        }
        Verdict::Valid => {}
    }
}

/// A folder name for one file's reports: its file name with unsafe characters replaced.
fn report_subfolder(file: &std::path::Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "history".into());
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_model_names_imply_linearizability() {
        let r = parse_request("cas-register", "auto").unwrap();
        assert!(matches!(r.linearizable, Some(Some(DataModel::CasRegister))));
        assert!(r.others.is_empty());
        assert!(!r.table);
    }

    #[test]
    fn all_checks_every_model_with_a_table() {
        let r = parse_request("all", "auto").unwrap();
        assert!(matches!(r.linearizable, Some(None)));
        assert_eq!(r.others.len(), ModelName::ALL.len() - 1);
        assert!(r.table);
    }

    #[test]
    fn causal_is_cc_and_unknown_names_are_refused() {
        let r = parse_request("causal,ryw", "auto").unwrap();
        assert_eq!(r.others, vec![ModelName::Cc, ModelName::Ryw]);
        assert!(r.table);
        assert!(parse_request("snapshot", "auto").is_err());
        assert!(parse_request("kv", "register").is_err());
    }

    #[test]
    fn initial_values_are_json_or_text() {
        assert_eq!(parse_initial("0"), json!(0));
        assert_eq!(parse_initial("\"\""), json!(""));
        assert_eq!(parse_initial("abc"), json!("abc"));
        assert_eq!(parse_initial("null"), Value::Null);
    }
}
