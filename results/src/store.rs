//! The store layout: `store/<target>/<YYYYMMDDTHHMMSS>/` per run, and `store/latest`
//! pointing at the newest run (a symlink, or a one-line file where symlinks fail).

use crate::ResultsError;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The run metadata file of a run folder.
pub const RUN_JSON: &str = "run.json";
/// The recorded (or imported) history of a run folder.
pub const HISTORY_JSONL: &str = "history.jsonl";
/// The verdicts of a run folder.
pub const VERDICT_JSON: &str = "verdict.json";
/// The self-contained HTML report.
pub const REPORT_HTML: &str = "report.html";
/// The short Markdown report.
pub const REPORT_MD: &str = "report.md";
/// The JUnit report.
pub const JUNIT_XML: &str = "junit.xml";
/// The name of the pointer to the newest run, in the store and in each target folder.
pub const LATEST: &str = "latest";

/// A UTC time broken into its calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    /// Year.
    pub year: i64,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of the month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
}

impl Utc {
    /// The calendar fields of `t` (times before 1970 are clamped to 1970-01-01).
    pub fn from_system_time(t: SystemTime) -> Utc {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Days since 1970-01-01 to a proleptic Gregorian date, counting in 400-year eras
        // that start on 1 March so that the leap day falls at the end of a year.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3_600) as u32,
            minute: (rem % 3_600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// `YYYYMMDDTHHMMSS`, the name of a run folder.
    pub fn stamp(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// RFC 3339, e.g. `2026-11-27T17:26:32Z`.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Checks that a target name can be a folder name of the store.
pub fn check_target(target: &str) -> Result<(), ResultsError> {
    let ok = !target.is_empty()
        && target != "."
        && target != ".."
        && target != LATEST
        && target.len() <= 100
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(ResultsError::BadTarget(target.to_string()))
    }
}

/// Creates a new run folder `store/<target>/<YYYYMMDDTHHMMSS>` for a run started at
/// `started`, and returns its path.
///
/// Two runs that start in the same second get distinct folders: the second one is
/// `<stamp>-2`, then `-3`, ... The folder is claimed with an exclusive `create_dir`, so this
/// holds even for runs started concurrently by different processes.
pub fn create_run_dir(
    store: &Path,
    target: &str,
    started: SystemTime,
) -> Result<PathBuf, ResultsError> {
    check_target(target)?;
    let parent = store.join(target);
    fs::create_dir_all(&parent)
        .map_err(|e| ResultsError::io("create target folder", &parent, e))?;
    let stamp = Utc::from_system_time(started).stamp();
    for n in 1..10_000u32 {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = parent.join(&name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(ResultsError::io("create run folder", &dir, e)),
        }
    }
    Err(ResultsError::io(
        "create run folder",
        &parent.join(&stamp),
        std::io::Error::new(ErrorKind::AlreadyExists, "10,000 runs in one second"),
    ))
}

/// The ordering key of a run folder name: its stamp, then its same-second counter.
pub(crate) fn run_order(name: &str) -> Option<(String, u32)> {
    let (stamp, n) = match name.split_once('-') {
        Some((s, n)) => (s, n.parse().ok()?),
        None => (name, 1),
    };
    let valid = stamp.len() == 15
        && stamp.as_bytes()[8] == b'T'
        && stamp
            .char_indices()
            .all(|(i, c)| i == 8 || c.is_ascii_digit());
    valid.then(|| (stamp.to_string(), n))
}

/// How `latest` was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatestKind {
    /// A symbolic link to the run folder (relative).
    Symlink,
    /// A file holding the run folder's path relative to the store, on one line.
    File,
    /// Left alone: it already points at a newer run.
    Unchanged,
}

/// Points `store/latest` (and `store/<target>/latest`) at `run_dir`, unless they already
/// point at a newer run. `run_dir` must be `store/<target>/<stamp>`.
///
/// The link is replaced atomically (made under a temporary name, then renamed). Where
/// symbolic links cannot be made, `latest` is a small file holding `<target>/<stamp>`.
pub fn update_latest(store: &Path, run_dir: &Path) -> Result<LatestKind, ResultsError> {
    let bad = |reason: &str| ResultsError::NoRun {
        path: run_dir.to_path_buf(),
        reason: reason.to_string(),
    };
    let name = run_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad("the folder has no name"))?;
    let order = run_order(name).ok_or_else(|| bad("the folder is not named YYYYMMDDTHHMMSS"))?;
    let target = run_dir
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad("the folder is not inside a target folder"))?;
    check_target(target)?;
    let newer = |at: &Path| -> bool {
        resolve_latest(at)
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).and_then(run_order))
            .is_some_and(|cur| cur > order)
    };
    let top = store.join(LATEST);
    if newer(&top) {
        return Ok(LatestKind::Unchanged);
    }
    let kind = point(&top, &Path::new(target).join(name))?;
    let per_target = store.join(target).join(LATEST);
    if !newer(&per_target) {
        point(&per_target, Path::new(name))?;
    }
    Ok(kind)
}

/// Makes `at` point at `rel` (relative to `at`'s folder): symlink, else a file.
fn point(at: &Path, rel: &Path) -> Result<LatestKind, ResultsError> {
    let dir = at.parent().unwrap_or(Path::new("."));
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".latest.{}.{n}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let kind = if make_symlink(rel, &tmp).is_ok() {
        LatestKind::Symlink
    } else {
        let text = format!("{}\n", rel.to_string_lossy().replace('\\', "/"));
        fs::write(&tmp, text).map_err(|e| ResultsError::io("write", &tmp, e))?;
        LatestKind::File
    };
    // A real folder named `latest` cannot be replaced by rename; say so rather than guess.
    fs::rename(&tmp, at).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        ResultsError::io("replace", at, e)
    })?;
    Ok(kind)
}

#[cfg(unix)]
fn make_symlink(rel: &Path, at: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(rel, at)
}

#[cfg(not(unix))]
fn make_symlink(_rel: &Path, _at: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(ErrorKind::Unsupported, "no symlinks"))
}

/// Where a `latest` pointer (symlink or file) leads.
fn resolve_latest(at: &Path) -> Result<PathBuf, ResultsError> {
    let meta = fs::symlink_metadata(at).map_err(|e| ResultsError::io("read", at, e))?;
    let dir = at.parent().unwrap_or(Path::new("."));
    if meta.file_type().is_symlink() {
        let rel = fs::read_link(at).map_err(|e| ResultsError::io("read link", at, e))?;
        return Ok(dir.join(rel));
    }
    if meta.is_file() {
        let text = fs::read_to_string(at).map_err(|e| ResultsError::io("read", at, e))?;
        let rel = text.trim();
        if rel.is_empty() || rel.split('/').any(|part| part == "..") {
            return Err(ResultsError::NoRun {
                path: at.to_path_buf(),
                reason: "the latest file does not hold a run folder".into(),
            });
        }
        return Ok(dir.join(rel));
    }
    Ok(at.to_path_buf())
}

/// Whether `dir` looks like a run folder (holds a verdict, a history or run metadata).
pub fn is_run_dir(dir: &Path) -> bool {
    [VERDICT_JSON, HISTORY_JSONL, RUN_JSON]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// The newest run folder directly inside `dir` (a target folder), by name.
fn newest_in(dir: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let order = run_order(&name)?;
            is_run_dir(&e.path()).then_some((order, e.path()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, p)| p)
}

/// Finds the run a path designates: a run folder, a file inside one, a `latest` pointer,
/// a target folder (its newest run) or the store itself (its `latest`).
pub fn find_run(path: &Path) -> Result<PathBuf, ResultsError> {
    let no_run = |reason: &str| ResultsError::NoRun {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let meta = fs::symlink_metadata(path).map_err(|e| ResultsError::io("read", path, e))?;
    let is_latest = path.file_name().is_some_and(|n| n == LATEST);
    let mut dir = if is_latest && (meta.file_type().is_symlink() || meta.is_file()) {
        resolve_latest(path)?
    } else if meta.is_file() {
        path.parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| no_run("a file with no folder"))?
    } else {
        path.to_path_buf()
    };
    for _ in 0..2 {
        if is_run_dir(&dir) {
            return Ok(dir);
        }
        let latest = dir.join(LATEST);
        if fs::symlink_metadata(&latest).is_ok() {
            dir = resolve_latest(&latest)?;
            continue;
        }
        if let Some(newest) = newest_in(&dir) {
            return Ok(newest);
        }
        break;
    }
    Err(no_run(
        "expected a run folder (with verdict.json, history.jsonl or run.json), a target folder, a store or a latest pointer",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn stamps_known_dates() {
        assert_eq!(Utc::from_system_time(at(0)).stamp(), "19700101T000000");
        // 2000-02-29 12:34:56 UTC, a leap day of a century leap year.
        assert_eq!(
            Utc::from_system_time(at(951_827_696)).rfc3339(),
            "2000-02-29T12:34:56Z"
        );
        // 2026-11-27 17:26:32 UTC.
        assert_eq!(
            Utc::from_system_time(at(1_795_800_392)).stamp(),
            "20261127T172632"
        );
        // 2100-03-01 00:00:00 UTC (2100 is not a leap year).
        assert_eq!(
            Utc::from_system_time(at(4_107_542_400)).rfc3339(),
            "2100-03-01T00:00:00Z"
        );
    }

    #[test]
    fn run_order_parses_counters_numerically() {
        assert!(run_order("20261127T172632-10") > run_order("20261127T172632-9"));
        assert!(run_order("20261127T172632-2") > run_order("20261127T172632"));
        assert_eq!(run_order("latest"), None);
        assert_eq!(run_order("2026112XT172632"), None);
    }

    #[test]
    fn target_names_are_checked() {
        assert!(check_target("raft-register_1.2").is_ok());
        for bad in ["", "..", "a/b", "latest", "x y", "é"] {
            assert!(check_target(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn run_folders_are_unique_within_a_second_and_latest_follows_the_newest() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = tmp.path().join("store");
        // 2026-11-27 17:26:32 UTC.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_800_392);
        let a = create_run_dir(&store, "raft-register", t).expect("first");
        let b = create_run_dir(&store, "raft-register", t).expect("second");
        let c =
            create_run_dir(&store, "raft-register", t + Duration::from_millis(300)).expect("third");
        assert_eq!(a, store.join("raft-register/20261127T172632"));
        assert_eq!(b, store.join("raft-register/20261127T172632-2"));
        assert_eq!(c, store.join("raft-register/20261127T172632-3"));

        for d in [&a, &b, &c] {
            fs::write(d.join("verdict.json"), "{}").expect("write");
        }
        assert_eq!(
            update_latest(&store, &b).expect("latest b"),
            LatestKind::Symlink
        );
        assert_eq!(
            find_run(&store).expect("via store"),
            store.join("raft-register/20261127T172632-2")
        );
        // An older run finishing later does not take `latest` back.
        assert_eq!(
            update_latest(&store, &a).expect("latest a"),
            LatestKind::Unchanged
        );
        assert_eq!(
            update_latest(&store, &c).expect("latest c"),
            LatestKind::Symlink
        );
        let link = fs::read_link(store.join(LATEST)).expect("symlink");
        assert_eq!(link, Path::new("raft-register/20261127T172632-3"));
        assert_eq!(
            find_run(&store.join(LATEST)).expect("via latest"),
            store.join("raft-register/20261127T172632-3")
        );
        assert_eq!(
            find_run(&store.join("raft-register")).expect("via target"),
            store.join("raft-register").join("20261127T172632-3")
        );
        assert_eq!(find_run(&a.join("verdict.json")).expect("via file"), a);
        assert_eq!(find_run(&b).expect("itself"), b);
    }

    #[test]
    fn latest_can_be_a_plain_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = tmp.path();
        let run = store.join("quorum-kv/20261127T100000");
        fs::create_dir_all(&run).expect("mkdir");
        fs::write(run.join("history.jsonl"), "").expect("write");
        fs::write(store.join(LATEST), "quorum-kv/20261127T100000\n").expect("write latest");
        assert_eq!(find_run(store).expect("via latest file"), run);
        fs::write(store.join(LATEST), "../../etc\n").expect("write latest");
        assert!(
            find_run(&store.join(LATEST)).is_err(),
            "a latest file must not escape the store"
        );
    }

    #[test]
    fn bad_targets_and_non_runs_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = create_run_dir(tmp.path(), "../escape", UNIX_EPOCH).expect_err("refused");
        assert!(err.to_string().contains("cannot name a folder"), "{err}");
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).expect("mkdir");
        let err = find_run(&empty).expect_err("no run");
        assert!(err.to_string().contains("no faultline run"), "{err}");
    }

    #[test]
    fn concurrent_runs_in_one_second_get_distinct_folders() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_800_392);
        let dirs: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| create_run_dir(tmp.path(), "kv", t)))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok().and_then(Result::ok))
                .collect()
        });
        let unique: std::collections::BTreeSet<&PathBuf> = dirs.iter().collect();
        assert_eq!(dirs.len(), 8);
        assert_eq!(unique.len(), 8);
        assert!(unique.contains(&tmp.path().join("kv/20261127T172632-8")));
    }
}
