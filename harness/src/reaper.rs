//! Reaping orphans: the node agent's duty as a container's first process.
//!
//! A process whose parent dies is handed to the nearest "subreaper" ancestor, or to PID 1.
//! In a node's container the agent is PID 1, so every orphan of the system under test
//! (a daemon's helper that outlives the shell which started it, for example) becomes the
//! agent's child, and stays a zombie until the agent waits for it. Zombies hold pids and
//! process-table entries, and a program that counts its processes sees them.
//!
//! The agent therefore marks itself a child subreaper (so the same holds when it is not
//! PID 1: under another init, or in a test) and, on every `SIGCHLD` and once a second,
//! waits for each zombie child of its own that is not the supervised program. The
//! supervised program is left alone: tokio waits for it and records its exit status,
//! which [`reap_orphans`] must not steal. Zombies are found through `/proc` rather than
//! with `waitpid(-1)`, which could return the supervised program's status first.

use std::path::Path;

/// Marks this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned
/// descendants are reparented to it instead of to PID 1.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument and changes
    // only this process's attribute.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A process as `/proc/PID/stat` describes it: its state letter and its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The process id.
    pub pid: u32,
    /// The state letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// The parent's process id.
    pub ppid: u32,
}

/// Parses the text of `/proc/PID/stat`: `pid (comm) state ppid ...`. The command name
/// may hold spaces and parentheses, so the fields after it are found from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find(" (")?;
    let pid = text[..open].trim().parse().ok()?;
    let close = text.rfind(')')?;
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(ProcStat { pid, state, ppid })
}

/// The zombie children of `parent` found under `proc_root` (normally `/proc`), except
/// the pids in `keep`.
pub fn zombie_children(proc_root: &Path, parent: u32, keep: &[u32]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if keep.contains(&pid) {
            continue;
        }
        // A process may end between listing and reading: skip what cannot be read.
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(stat) = parse_stat(&text) {
            if stat.state == 'Z' && stat.ppid == parent {
                found.push(stat.pid);
            }
        }
    }
    found.sort_unstable();
    found
}

/// Waits for every zombie child of this process except those in `keep` (the supervised
/// program, whose status belongs to its own waiter) and returns the pids reaped.
pub fn reap_orphans(keep: &[u32]) -> Vec<u32> {
    let me = std::process::id();
    let mut reaped = Vec::new();
    for pid in zombie_children(Path::new("/proc"), me, keep) {
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        let mut status = 0;
        // SAFETY: waitpid on a pid that /proc shows as our zombie child; WNOHANG never
        // blocks, and a pid already reaped meanwhile just answers ECHILD.
        let rc = unsafe { libc::waitpid(raw, &mut status, libc::WNOHANG) };
        if rc == raw {
            reaped.push(pid);
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let cases = [
            (
                "42 (sleep) Z 1 42 42 0 -1 4194308 0",
                Some(ProcStat {
                    pid: 42,
                    state: 'Z',
                    ppid: 1,
                }),
            ),
            (
                "7 (a b) c)) S 3 7 7 0",
                Some(ProcStat {
                    pid: 7,
                    state: 'S',
                    ppid: 3,
                }),
            ),
            ("garbage", None),
            ("12 (x)", None),
            ("x (y) R 1", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_stat(text), want, "{text:?}");
        }
    }

    #[test]
    fn zombies_are_found_by_parent_and_kept_pids_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let procs = [
            (10, "10 (sut) Z 1 10"),
            (11, "11 (helper) Z 1 11"),
            (12, "12 (live) S 1 12"),
            (13, "13 (other) Z 5 13"),
        ];
        for (pid, stat) in procs {
            let d = dir.path().join(pid.to_string());
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("stat"), stat).unwrap();
        }
        std::fs::create_dir(dir.path().join("self")).unwrap();
        std::fs::create_dir(dir.path().join("99")).unwrap(); // gone: no stat file
        assert_eq!(zombie_children(dir.path(), 1, &[]), vec![10, 11]);
        assert_eq!(zombie_children(dir.path(), 1, &[10]), vec![11]);
        assert_eq!(zombie_children(dir.path(), 5, &[]), vec![13]);
    }
}
