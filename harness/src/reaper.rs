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
//! waits for each zombie child of its own that is an orphan. Two kinds of children are
//! left alone, because their own waiters need their exit status: the supervised program
//! (tokio waits for it), and the commands the agent runs itself (`nft`, `iptables`, `tc`:
//! their callers wait for them). The agent starts the program in a process group of its
//! own, so the program and everything it leaves behind are outside the agent's group,
//! while the agent's commands are inside it: an orphan is a zombie child outside the
//! agent's process group, other than the program. (An orphan of one of the agent's own
//! commands would stay a zombie; none of them leaves one.) Zombies are found through
//! `/proc` rather than with `waitpid(-1)`, which could take another waiter's status.

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

/// A process as `/proc/PID/stat` describes it: its state letter, its parent and its
/// process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The process id.
    pub pid: u32,
    /// The state letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// The parent's process id.
    pub ppid: u32,
    /// The process group id.
    pub pgrp: u32,
}

/// Parses the text of `/proc/PID/stat`: `pid (comm) state ppid pgrp ...`. The command name
/// may hold spaces and parentheses, so the fields after it are found from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find(" (")?;
    let pid = text[..open].trim().parse().ok()?;
    let close = text.rfind(')')?;
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        state,
        ppid,
        pgrp,
    })
}

/// The zombie children of `parent` found under `proc_root` (normally `/proc`) outside
/// the process group `own_group`, except the pids in `keep`.
pub fn zombie_children(proc_root: &Path, parent: u32, own_group: u32, keep: &[u32]) -> Vec<u32> {
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
            if stat.state == 'Z' && stat.ppid == parent && stat.pgrp != own_group {
                found.push(stat.pid);
            }
        }
    }
    found.sort_unstable();
    found
}

/// Waits for every zombie child of this process outside its own process group (the
/// commands it runs itself) except those in `keep` (the supervised program), whose
/// statuses belong to their own waiters, and returns the pids reaped.
pub fn reap_orphans(keep: &[u32]) -> Vec<u32> {
    let me = std::process::id();
    // SAFETY: getpgrp takes no argument and cannot fail.
    let own_group = unsafe { libc::getpgrp() };
    let own_group = u32::try_from(own_group).unwrap_or(0);
    let mut reaped = Vec::new();
    for pid in zombie_children(Path::new("/proc"), me, own_group, keep) {
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
                    pgrp: 42,
                }),
            ),
            (
                "7 (a b) c)) S 3 9 7 0",
                Some(ProcStat {
                    pid: 7,
                    state: 'S',
                    ppid: 3,
                    pgrp: 9,
                }),
            ),
            ("garbage", None),
            ("12 (x)", None),
            ("12 (x) Z 1", None),
            ("x (y) R 1", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_stat(text), want, "{text:?}");
        }
    }

    #[test]
    fn zombies_are_found_by_parent_outside_the_own_group_and_kept_pids_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let procs = [
            (10, "10 (sut) Z 1 10"),
            (11, "11 (helper) Z 1 11"),
            (12, "12 (live) S 1 12"),
            (13, "13 (other) Z 5 13"),
            (14, "14 (nft) Z 1 1"),
        ];
        for (pid, stat) in procs {
            let d = dir.path().join(pid.to_string());
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("stat"), stat).unwrap();
        }
        std::fs::create_dir(dir.path().join("self")).unwrap();
        std::fs::create_dir(dir.path().join("99")).unwrap(); // gone: no stat file
        assert_eq!(zombie_children(dir.path(), 1, 1, &[]), vec![10, 11]);
        assert_eq!(zombie_children(dir.path(), 1, 1, &[10]), vec![11]);
        assert_eq!(zombie_children(dir.path(), 1, 0, &[]), vec![10, 11, 14]);
        assert_eq!(zombie_children(dir.path(), 5, 1, &[]), vec![13]);
    }
}
