//! The agent's orphan reaping, for real: this test process becomes a child subreaper as
//! the agent does, a shell leaves an orphan behind, and the orphan's zombie is reaped,
//! while a direct child named in `keep` is left for its own waiter.
//!
//! Its own test binary, with one test: a subreaper receives every orphan of the process,
//! and `reap_orphans` waits for zombie children, which would steal the exit status of
//! other tests' children in a shared binary.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use faultline::reaper::{become_subreaper, parse_stat, reap_orphans, zombie_children};

fn state_of(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text).map(|s| s.state)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn orphans_are_reaped_and_the_supervised_child_is_left_to_its_waiter() {
    become_subreaper().expect("prctl(PR_SET_CHILD_SUBREAPER)");
    let me = std::process::id();

    // The shell starts `sleep` in the background, prints its pid and exits: `sleep` is
    // orphaned and, this process being a subreaper, becomes its child.
    let out = Command::new("sh")
        .args(["-c", "sleep 0.2 & echo $!"])
        .output()
        .expect("run sh");
    assert!(out.status.success());
    let orphan: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the orphan's pid");

    // A direct child that ends too, standing for the supervised program.
    let mut supervised = Command::new("true").spawn().expect("run true");
    let supervised_pid = supervised.id();

    // Both become zombies of this process, and stay so until waited for: without the
    // reaper the orphan's zombie would stay forever.
    wait_for("the orphan's zombie", || state_of(orphan) == Some('Z'));
    wait_for("the supervised child's zombie", || {
        state_of(supervised_pid) == Some('Z')
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(state_of(orphan), Some('Z'), "nothing else reaps it");
    let zombies = zombie_children(Path::new("/proc"), me, &[]);
    assert!(zombies.contains(&orphan), "{zombies:?}");
    assert!(zombies.contains(&supervised_pid), "{zombies:?}");

    let reaped = reap_orphans(&[supervised_pid]);
    assert_eq!(reaped, vec![orphan]);
    assert_eq!(state_of(orphan), None, "the orphan is gone");
    assert_eq!(
        state_of(supervised_pid),
        Some('Z'),
        "the kept child's status is still there for its waiter"
    );
    let status = supervised.wait().expect("wait for the kept child");
    assert!(status.success(), "its exit status was not stolen: {status}");
    assert!(reap_orphans(&[]).is_empty());
}
