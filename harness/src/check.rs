//! `faultline check`: check recorded or imported histories.

mod txn_output;

use crate::{exit, reporting};
use anyhow::{bail, Result};
use clap::Args;
use faultline_checkers::lattice::{check_all_reported, model_table, ConsistencyOptions, ModelName};
use faultline_checkers::txn::{self, TxnModel, TxnOptions};
use faultline_checkers::DataModel;
use faultline_checkers::LinReport;
use faultline_checkers::Verdict;
use faultline_history::{load, load_paired, Format};
use faultline_history::{History, Paired, Value, META_INITIAL};
use faultline_results::text::{clip_verdict, json_visible, shown_verdict, visible};
use faultline_results::RunInfo;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use txn_output::{check_txn_file, print_txn_result, txn_misnamed, txn_result};

/// Arguments of `faultline check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// History files (faultline JSONL, Jepsen EDN or Porcupine logs), or run folders
    /// (`store/latest`, `store/<target>/<stamp>`: their history.jsonl).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Models to check, comma-separated: register, cas-register, kv (linearizability under that
    /// data model), linearizable, sequential, ccv, cm, cc (= causal), pram, ryw, mr, mw, wfr, all.
    /// On a transactional history (f = txn): strict-serializable, strong-session-serializable,
    /// serializable, strong-snapshot-isolation, strong-session-snapshot-isolation,
    /// snapshot-isolation, repeatable-read, cursor-stability, causal, read-atomic,
    /// monotonic-atomic-view, strong-read-committed, strong-session-read-committed,
    /// read-committed, strong-read-uncommitted, strong-session-read-uncommitted,
    /// read-uncommitted, all; linearizable there means strict-serializable.
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
    #[arg(long, default_value_t = 60.0, allow_negative_numbers = true,
          value_parser = crate::args::number(0.0, 86_400.0, "a number of seconds", Some("0 (no limit)")))]
    time_limit: f64,
    /// Also write the reports (report.html, report.md, junit.xml, verdict.json, run.json,
    /// history.jsonl) into this folder; with several files, into one subfolder per file
    /// named after its path (`a/h.jsonl` → DIR/a%2Fh.jsonl).
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
    /// Transactional models, for a history of transactions.
    txn: Vec<TxnModel>,
    /// Names given that have no meaning for a history of transactions.
    register_only: Vec<String>,
    /// Names given that have no meaning for a register history.
    txn_only: Vec<String>,
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
        txn: Vec::new(),
        register_only: Vec::new(),
        txn_only: Vec::new(),
    };
    let add_txn = |req: &mut Request, m: TxnModel| {
        if !req.txn.contains(&m) {
            req.txn.push(m);
        }
    };
    for m in models.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        // Names of the transactional lattice (causal is in both).
        let as_txn = m.parse::<TxnModel>().ok();
        match m {
            "all" => {
                req.linearizable = Some(forced);
                req.others = ModelName::ALL
                    .iter()
                    .copied()
                    .filter(|m| *m != ModelName::Linearizable)
                    .collect();
                req.table = true;
                for t in TxnModel::ALL {
                    add_txn(&mut req, t);
                }
            }
            "linearizable" => {
                req.linearizable = Some(forced);
                add_txn(&mut req, TxnModel::StrictSerializable);
            }
            _ if as_txn.is_some() && m.parse::<ModelName>().is_err() => {
                if let Some(t) = as_txn {
                    add_txn(&mut req, t);
                }
                req.txn_only.push(m.to_string());
            }
            "register" | "cas-register" | "kv" => {
                if forced.is_some() {
                    bail!("--model {m} already names a data model; drop --data-model");
                }
                req.linearizable = Some(Some(m.parse::<DataModel>().map_err(anyhow::Error::msg)?));
                req.register_only.push(m.to_string());
            }
            other => match other.parse::<ModelName>() {
                Ok(ModelName::Linearizable) => req.linearizable = Some(forced),
                Ok(name) => {
                    if !req.others.contains(&name) {
                        req.others.push(name)
                    }
                    match as_txn {
                        Some(t) => add_txn(&mut req, t),
                        None => req.register_only.push(other.to_string()),
                    }
                }
                Err(_) => bail!(
                    "unknown model {other:?}: expected register, cas-register, kv, linearizable, sequential, ccv, cm, cc, causal, pram, ryw, mr, mw, wfr, all, or for transactions strict-serializable, strong-session-serializable, serializable, strong-snapshot-isolation, strong-session-snapshot-isolation, snapshot-isolation, repeatable-read, cursor-stability, causal, read-atomic, monotonic-atomic-view, strong-read-committed, strong-session-read-committed, read-committed, strong-read-uncommitted, strong-session-read-uncommitted, read-uncommitted"
                ),
            },
        }
    }
    if req.linearizable.is_none() && req.others.is_empty() && req.txn.is_empty() {
        bail!("--model names no model");
    }
    if req.others.len() + usize::from(req.linearizable.is_some()) > 1 || req.txn.len() > 1 {
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
            errln!("error: {e:#}");
            return Ok(exit::BAD_INPUT);
        }
    };
    let format = match args.format.parse::<Format>() {
        Ok(f) => f,
        Err(e) => {
            errln!("error: --format {}: {e}", args.format);
            return Ok(exit::BAD_INPUT);
        }
    };
    let time_limit = match args.time_limit {
        0.0 => None,
        t => match Duration::try_from_secs_f64(t) {
            Ok(d) => Some(d),
            Err(_) => {
                errln!("error: --time-limit {t}: expected a number of seconds, 0 for none");
                return Ok(exit::BAD_INPUT);
            }
        },
    };
    if let Some(dir) = &args.report {
        if let Err(e) = reporting::check_writable(dir, "--report") {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    }
    let mut outcome = exit::Outcome::default();
    for given in &args.files {
        // A run folder (or `store/latest`, a target folder, the store) stands for its
        // history.
        let resolved = run_history(given);
        let file = &resolved;
        let name = file.display().to_string();
        let started = Instant::now();
        // Large transactional histories: straight from the bytes to transactions when the
        // file has the common shape (reports need the whole history: the general path).
        let fast = (args.report.is_none()
            && matches!(format, Format::Auto | Format::Jsonl)
            && !request.txn.is_empty())
        .then(|| read_if_txn(file))
        .flatten()
        .and_then(|bytes| {
            let txns = txn::fast::parse_jsonl(&bytes)?;
            Some((bytes, txns))
        });
        if let Some((bytes, txns)) = fast {
            if let Some(m) = request.register_only.first() {
                report_bad_input(&args, &name, &txn_misnamed(&name, m));
                outcome.add_bad_input();
                continue;
            }
            let parse_ms = started.elapsed().as_secs_f64() * 1e3;
            let checked = Instant::now();
            let opts = TxnOptions {
                time_limit,
                ..TxnOptions::default()
            };
            let report = txn::analyse_fast(&txns, &request.txn, &opts);
            let result = txn_result(
                &request,
                report,
                &|t| txns.operation(&bytes, t),
                txns.len(),
                checked,
            );
            for (_, v) in &result.verdicts {
                outcome.add(v);
            }
            print_txn_result(&args, &request, &name, &result, parse_ms);
            continue;
        }
        // Only the reports need the events: without them a JSONL history is paired line
        // by line as it streams in, and its events are never all held at once.
        let loaded = if args.report.is_none() {
            load_paired(file, format).map(|p| {
                let history = History {
                    meta: p.meta,
                    events: Vec::new(),
                    truncated_tail: p.truncated_tail,
                };
                (history, p.paired)
            })
        } else {
            load(file, format).and_then(|h| {
                let paired = h.pair(&name)?;
                Ok((h, paired))
            })
        };
        let (history, paired) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                report_bad_input(&args, &name, &e.to_string());
                outcome.add_bad_input();
                continue;
            }
        };
        if history.truncated_tail {
            errln!("warning: {name}: the last line was cut short (the recorder stopped mid-write); it was skipped");
        }
        let parse_ms = started.elapsed().as_secs_f64() * 1e3;
        let is_txn = txn::is_txn_history(&paired);
        let misnamed = if is_txn {
            request
                .register_only
                .first()
                .map(|m| txn_misnamed(&name, m))
        } else if request.linearizable.is_none() && request.others.is_empty() {
            request.txn_only.first().map(|m| {
                format!("{name}: {m} is a transactional model, and this history holds no transactions (f = txn)")
            })
        } else {
            None
        };
        if let Some(message) = misnamed {
            report_bad_input(&args, &name, &message);
            outcome.add_bad_input();
            continue;
        }
        if is_txn {
            let result = check_txn_file(&request, &paired, time_limit);
            for (_, v) in &result.verdicts {
                outcome.add(v);
            }
            print_txn_result(&args, &request, &name, &result, parse_ms);
            if let Some(dir) = &args.report {
                let dir = if args.files.len() > 1 {
                    dir.join(report_subfolder(file))
                } else {
                    dir.clone()
                };
                let doc = reporting::txn_verdict_doc(
                    &result.verdicts,
                    &[],
                    paired.ops.len() as u64,
                    result.check_ms.round() as u64,
                );
                let run = RunInfo::imported(name.clone());
                match reporting::write_all(&dir, &run, &history, &doc) {
                    Ok(paths) => {
                        if !args.json {
                            outln!("    report: {}", visible(&paths.html.display().to_string()));
                        }
                    }
                    Err(e) => {
                        errln!("error: {name}: {e:#}");
                        outcome.add_code(reporting::error_code(&e));
                    }
                }
            }
            continue;
        }
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
            match reporting::write_all(&dir, &run, &history, &doc) {
                Ok(paths) => {
                    if !args.json {
                        outln!("    report: {}", visible(&paths.html.display().to_string()));
                    }
                }
                // The verdict stands (a violation still exits 1); the other files are
                // still checked.
                Err(e) => {
                    let code = reporting::error_code(&e);
                    errln!("error: {name}: {e:#}");
                    if code == exit::BAD_INPUT {
                        errln!(
                            "  (its reports were not written: the path above must be a folder, or for $GITHUB_STEP_SUMMARY a file, that you can write to)"
                        );
                    }
                    outcome.add_code(code);
                }
            }
        }
        if paired.ops.len() >= BACKGROUND_DROP {
            // Freeing millions of small allocations one by one takes a tenth of a second
            // per million operations: let it overlap the next file (or the exit).
            std::thread::spawn(move || drop((history, paired)));
        }
    }
    Ok(outcome.code())
}

/// The history a path stands for: a run folder (or a `latest` pointer, a target folder,
/// a store) gives its `history.jsonl`; anything else is itself.
pub fn run_history(path: &std::path::Path) -> PathBuf {
    let is_latest = path.file_name().is_some_and(|n| n == "latest");
    if path.is_dir() || is_latest {
        if let Ok(dir) = faultline_results::find_run(path) {
            return dir.join(faultline_results::store::HISTORY_JSONL);
        }
    }
    path.to_path_buf()
}

/// Histories with at least this many operations are freed on a background thread.
const BACKGROUND_DROP: usize = 100_000;

struct FileResult {
    data_model: Option<DataModel>,
    /// The linearizability checker's counters, when it ran.
    lin: Option<LinReport>,
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
    let data_model = request
        .linearizable
        .map(|forced| forced.unwrap_or_else(|| DataModel::infer(paired)));
    let mut models: Vec<ModelName> = Vec::new();
    if data_model.is_some() {
        models.push(ModelName::Linearizable);
    }
    models.extend(request.others.iter().copied());
    let opts = ConsistencyOptions {
        time_limit,
        nil_reads_unknown,
        initial,
        ..ConsistencyOptions::default()
    };
    // Linearizability first; when it holds, sequential consistency and causal memory
    // (a search and a fixpoint) are left to the table as implied.
    let (verdicts, lin) = check_all_reported(paired, &models, data_model, &opts);
    FileResult {
        data_model,
        lin,
        // What is printed and written shows long values clipped (history.jsonl keeps them).
        verdicts: verdicts
            .iter()
            .map(|(m, v)| (*m, clip_verdict(v)))
            .collect(),
        check_ms: started.elapsed().as_secs_f64() * 1e3,
    }
}

/// The whole file, when it is a regular file of at most the whole-file limit whose
/// beginning holds a transaction; `None` sends it to the general (streaming, bounded)
/// reader, which also gives every error its message.
fn read_if_txn(file: &std::path::Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(file).ok()?;
    let limit = faultline_history::import::MAX_WHOLE_FILE_BYTES as u64;
    if !meta.is_file() || meta.len() > limit {
        return None;
    }
    let mut f = std::fs::File::open(file).ok()?;
    let mut head = vec![0u8; faultline_history::import::DETECT_BYTES];
    let n = f.read(&mut head).ok()?;
    head.truncate(n);
    if !head.windows(5).any(|w| w == b"\"txn\"") {
        return None;
    }
    let mut bytes = head;
    f.take(limit).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

fn report_bad_input(args: &CheckArgs, name: &str, message: &str) {
    if args.json {
        outln!(
            "{}",
            json_visible(&json!({"file": name, "valid": "unknown", "error": message}).to_string())
        );
    } else {
        errln!("error: {message}");
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
        if let Some(l) = &r.lin {
            // Where the linearizability check spent its time: deciding every key, then
            // shrinking and explaining the first invalid key's witness.
            obj["linearizability"] = json!({
                "keys": l.keys,
                "skipped_keys": l.skipped_keys,
                "decide_ms": round3(l.check_time.as_secs_f64() * 1e3),
                "shrink_ms": round3(l.shrink_time.as_secs_f64() * 1e3),
                "shrink_checks": l.shrink_checks,
                "witness_ops": l.witness_ops,
            });
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
        // Exact strings for a program, JSON escapes for the terminal.
        outln!("{}", json_visible(&obj.to_string()));
        return;
    }
    // What a reader sees: names from the history escaped even inside the checkers'
    // sentences (the terminal edge escapes the rest).
    let shown: Vec<(ModelName, Verdict)> = r
        .verdicts
        .iter()
        .map(|(m, v)| (*m, shown_verdict(v)))
        .collect();
    let name = visible(name);
    let under = dm.map(|d| format!(" ({d})")).unwrap_or_default();
    if request.table {
        outln!(
            "{name}: {} ops, checked in {:.1} ms",
            paired.ops.len(),
            r.check_ms
        );
        crate::out::print(&model_table(shown).render_text());
        return;
    }
    let (model, verdict) = &shown[0];
    outln!(
        "{name}: {model}{under}: {} ({} ops, {:.1} ms)",
        verdict.label(),
        paired.ops.len(),
        r.check_ms
    );
    match verdict {
        Verdict::Invalid { witness } => {
            for line in witness.render_text().lines() {
                outln!("    {line}");
            }
        }
        Verdict::Unknown { reason, undecided } => {
            outln!("    {reason}");
            if !undecided.is_empty() {
                outln!("    undecided: {}", undecided.join(", "));
            }
        }
        Verdict::Valid => {}
    }
}

/// The folder of one file's reports when several files are checked: the path as given,
/// read lexically (`./` and `.` parts dropped, separators collapsed), with every byte other
/// than an ASCII letter, digit, `.`, `-` or `_` percent-encoded: `a/h.jsonl` →
/// `a%2Fh.jsonl`, `a_h.jsonl` stays itself. Distinct paths get distinct folders and a path
/// always gets the same one (nothing depends on the other files, their order or the
/// machine). A name that would be longer than [`MAX_FOLDER`] bytes is `~`, 16 hex digits
/// of a hash of the whole name, `-` and its last bytes (`~` appears in no other name).
pub fn report_subfolder(file: &std::path::Path) -> String {
    use std::path::Component;
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    let mut rooted = false;
    for c in file.components() {
        match c {
            Component::Prefix(p) => parts.push(p.as_os_str()),
            Component::RootDir => rooted = true,
            Component::CurDir => {}
            Component::ParentDir => parts.push(std::ffi::OsStr::new("..")),
            Component::Normal(n) => parts.push(n),
        }
    }
    let mut bytes: Vec<u8> = Vec::new();
    if rooted {
        bytes.push(b'/');
    }
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            bytes.push(b'/');
        }
        bytes.extend_from_slice(p.as_encoded_bytes());
    }
    let mut name = String::with_capacity(bytes.len());
    for b in &bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            name.push(char::from(*b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.is_empty() || name == ".." {
        // Not a file's path (`.`, `..`), but never the report folder itself or its parent.
        name = format!("%2E{name}");
    }
    if name.len() <= MAX_FOLDER {
        return name;
    }
    // Keep the end (the file name), starting after a whole %XX escape.
    let mut start = name.len() - (MAX_FOLDER - 18);
    while name[..start].ends_with('%') || name[..start.saturating_sub(1)].ends_with('%') {
        start += 1;
    }
    format!("~{:016x}-{}", fnv1a(name.as_bytes()), &name[start..])
}

/// Longest report folder name kept as it is (file systems allow 255 bytes).
pub const MAX_FOLDER: usize = 200;

/// FNV-1a, 64 bits: a hash that is the same on every machine and every build.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
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
        let t = parse_request("serializable,snapshot-isolation", "auto").unwrap();
        assert_eq!(
            t.txn,
            vec![TxnModel::Serializable, TxnModel::SnapshotIsolation]
        );
        assert!(t.table && t.others.is_empty() && t.linearizable.is_none());
        let d = parse_request("linearizable", "auto").unwrap();
        assert_eq!(d.txn, vec![TxnModel::StrictSerializable]);
        assert!(parse_request("kv", "register").is_err());
    }

    #[test]
    fn report_folders_are_distinct_per_path_and_stable() {
        use std::path::Path;
        let f = |p: &str| report_subfolder(Path::new(p));
        assert_eq!(f("a/h.jsonl"), "a%2Fh.jsonl");
        assert_eq!(f("./a//h.jsonl"), "a%2Fh.jsonl");
        assert_eq!(f("a_h.jsonl"), "a_h.jsonl");
        assert_eq!(f("/tmp/x y.edn"), "%2Ftmp%2Fx%20y.edn");
        assert_eq!(f("../h%.log"), "..%2Fh%25.log");
        let names: std::collections::BTreeSet<String> = [
            "a/h.jsonl",
            "b/h.jsonl",
            "a_h.jsonl",
            "a%2Fh.jsonl",
            "/a/h.jsonl",
        ]
        .iter()
        .map(|p| f(p))
        .collect();
        assert_eq!(names.len(), 5, "{names:?}");
        let deep = format!("{}/h.jsonl", "dir/".repeat(80));
        let long = f(&deep);
        assert!(long.len() <= MAX_FOLDER && long.starts_with('~'), "{long}");
        assert!(long.ends_with("%2Fh.jsonl"), "{long}");
        assert_eq!(long, f(&deep), "stable");
        assert_ne!(long, f(&format!("x{deep}")));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn initial_values_are_json_or_text() {
        assert_eq!(parse_initial("0"), json!(0));
        assert_eq!(parse_initial("\"\""), json!(""));
        assert_eq!(parse_initial("abc"), json!("abc"));
        assert_eq!(parse_initial("null"), Value::Null);
    }
}
