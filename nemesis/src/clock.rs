//! The clock mechanism: libfaketime offsets in a per-node timestamp file, written
//! atomically; strobes as a task flipping the file; and the environment a runtime must give
//! the system under test so that it reads that file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::rules::faketime_offset;
use crate::{NemesisError, Strobe};

/// The timestamp file's name inside a node's clock directory.
pub const TIMESTAMP_FILE: &str = "rc";

/// Where distributions install `libfaketime.so.1` (Debian multiarch first).
pub const LIBFAKETIME_PATHS: [&str; 5] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// How long a written offset may take to show in the system under test under the default
/// [`CacheMode::OneSecond`] (the cache lasts a second; margin for scheduling). A fault that
/// must follow a clock move waits this long.
pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(1_500);

/// How often the system under test re-reads the timestamp file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// At most once a second (`FAKETIME_CACHE_DURATION=1`): cheap; a change shows within
    /// about 1.5 s. The default.
    OneSecond,
    /// On every clock read (`FAKETIME_NO_CACHE=1`): exact for sub-second strobes, but each
    /// read of the clock opens the file (about 5 µs instead of 75 ns).
    NoCache,
}

/// The environment variables a runtime must set for the system under test so that its
/// wall clock follows the node's timestamp file.
///
/// `lib` is libfaketime's path *as the process sees it* and `timestamp_file` the file's path
/// as the process sees it (inside a container, the bind-mounted clock directory, e.g.
/// `/faketime/rc`). Monotonic clocks are left real.
pub fn faketime_env(lib: &Path, timestamp_file: &Path, cache: CacheMode) -> Vec<(String, String)> {
    let mut env = vec![
        ("LD_PRELOAD".to_string(), lib.display().to_string()),
        (
            "FAKETIME_TIMESTAMP_FILE".to_string(),
            timestamp_file.display().to_string(),
        ),
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_string(), "1".to_string()),
    ];
    env.push(match cache {
        CacheMode::OneSecond => ("FAKETIME_CACHE_DURATION".to_string(), "1".to_string()),
        CacheMode::NoCache => ("FAKETIME_NO_CACHE".to_string(), "1".to_string()),
    });
    env
}

/// The first of [`LIBFAKETIME_PATHS`] that exists; the variable `FAULTLINE_LIBFAKETIME`
/// overrides them when it names an existing file, and `FAULTLINE_LIBFAKETIME=none` acts
/// as if libfaketime were not installed (to try a machine without it).
pub fn find_libfaketime() -> Option<PathBuf> {
    if std::env::var_os("FAULTLINE_LIBFAKETIME").is_some_and(|v| v == "none") {
        return None;
    }
    if let Some(p) = std::env::var_os("FAULTLINE_LIBFAKETIME").map(PathBuf::from) {
        if p.is_file() {
            return Some(p);
        }
    }
    LIBFAKETIME_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Creates the clock directory if needed and sets its offset to zero. A runtime calls
/// this before starting a node, so that the file exists when the process first reads it.
pub fn init_clock_dir(dir: &Path) -> Result<(), NemesisError> {
    std::fs::create_dir_all(dir).map_err(|source| NemesisError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write_offset(dir, 0)
}

/// Writes `offset_ms` to `<dir>/rc` atomically: the text goes to `rc.tmp`, which is then
/// renamed over `rc`, so a reader never sees a half-written offset.
pub fn write_offset(dir: &Path, offset_ms: i64) -> Result<(), NemesisError> {
    let tmp = dir.join(format!("{TIMESTAMP_FILE}.tmp"));
    let target = dir.join(TIMESTAMP_FILE);
    let text = format!("{}\n", faketime_offset(offset_ms));
    std::fs::write(&tmp, text).map_err(|source| NemesisError::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &target).map_err(|source| NemesisError::Io {
        path: target,
        source,
    })
}

/// A running strobe: flips a node's offset between `base` and `base + delta` every period
/// until its duration is over or it is stopped, then writes `base` back. Dropping the
/// handle also ends the strobe (the task sees its stop channel close).
#[derive(Debug)]
pub struct StrobeHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<u64, NemesisError>>,
}

impl StrobeHandle {
    /// Starts strobing the clock in `dir` around `base_ms`. Needs a tokio runtime.
    pub fn spawn(dir: PathBuf, base_ms: i64, strobe: Strobe) -> StrobeHandle {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let period = Duration::from_millis(strobe.period_ms.max(1));
            let deadline = tokio::time::Instant::now() + Duration::from_millis(strobe.duration_ms);
            let shifted = base_ms.saturating_add(strobe.delta_ms);
            let mut flips = 0u64;
            let mut high = false;
            loop {
                let now = tokio::time::Instant::now();
                if now >= deadline || *stopped.borrow() {
                    break;
                }
                high = !high;
                write_offset(&dir, if high { shifted } else { base_ms })?;
                flips += 1;
                let wake = (now + period).min(deadline);
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => {}
                    changed = stopped.changed() => {
                        if changed.is_err() { break; }
                    }
                }
            }
            write_offset(&dir, base_ms)?;
            Ok(flips)
        });
        StrobeHandle { stop, task }
    }

    /// True once the strobe has ended by itself (or was stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the strobe, waits until the base offset is written back, and returns how many
    /// times the offset was written during the strobe.
    pub async fn stop(self) -> Result<u64, NemesisError> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(NemesisError::InvalidConfig(format!(
                "clock strobe task ended abnormally: {join}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "faultline-nemesis-clock-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn read(dir: &Path) -> String {
        std::fs::read_to_string(dir.join(TIMESTAMP_FILE)).unwrap()
    }

    #[test]
    fn env_comes_from_one_place() {
        let env = faketime_env(
            Path::new("/usr/lib/faketime/libfaketime.so.1"),
            Path::new("/faketime/rc"),
            CacheMode::OneSecond,
        );
        let text: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            text,
            vec![
                "LD_PRELOAD=/usr/lib/faketime/libfaketime.so.1",
                "FAKETIME_TIMESTAMP_FILE=/faketime/rc",
                "FAKETIME_DONT_FAKE_MONOTONIC=1",
                "FAKETIME_CACHE_DURATION=1",
            ]
        );
        let env = faketime_env(Path::new("/l"), Path::new("/r"), CacheMode::NoCache);
        assert_eq!(env[3], ("FAKETIME_NO_CACHE".to_string(), "1".to_string()));
    }

    #[test]
    fn offsets_are_written_whole_and_replace_the_old_one() {
        let dir = temp_dir("write");
        init_clock_dir(&dir).unwrap();
        assert_eq!(read(&dir), "+0s\n");
        write_offset(&dir, -1500).unwrap();
        assert_eq!(read(&dir), "-1.5s\n");
        assert!(!dir.join("rc.tmp").exists(), "tmp file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writing_into_a_missing_dir_names_the_path() {
        let dir = temp_dir("missing").join("nope");
        let err = write_offset(&dir, 5).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[tokio::test]
    async fn strobe_flips_then_restores_the_base() {
        let dir = temp_dir("strobe");
        init_clock_dir(&dir).unwrap();
        let strobe = Strobe {
            delta_ms: 2000,
            period_ms: 20,
            duration_ms: 60_000,
        };
        let handle = StrobeHandle::spawn(dir.clone(), 500, strobe);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(7)).await;
            seen.insert(read(&dir));
        }
        assert!(seen.contains("+2.5s\n"), "{seen:?}");
        assert!(seen.contains("+0.5s\n"), "{seen:?}");
        assert!(!handle.is_finished());
        let flips = handle.stop().await.unwrap();
        assert!(
            flips >= 4,
            "only {flips} flips in ~280 ms at a 20 ms period"
        );
        assert_eq!(read(&dir), "+0.5s\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn strobe_ends_by_itself_after_its_duration() {
        let dir = temp_dir("strobe-end");
        init_clock_dir(&dir).unwrap();
        let strobe = Strobe {
            delta_ms: -1000,
            period_ms: 10,
            duration_ms: 100,
        };
        let handle = StrobeHandle::spawn(dir.clone(), 0, strobe);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(handle.is_finished());
        let flips = handle.stop().await.unwrap();
        assert!(
            (2..=12).contains(&flips),
            "{flips} flips for 100 ms at 10 ms"
        );
        assert_eq!(read(&dir), "+0s\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
