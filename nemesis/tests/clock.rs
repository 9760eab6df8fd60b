//! The clock mechanism against the real libfaketime: a child process started with the
//! environment from `faketime_env` sees the offsets the nemesis writes. Needs
//! libfaketime (fails with CI=true when missing; skipped with a notice otherwise).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{require, NsNode};
use faultline_nemesis::clock::{
    faketime_env, find_libfaketime, init_clock_dir, CacheMode, TIMESTAMP_FILE,
};
use faultline_nemesis::{Capabilities, Fault, Mechanism, Nemesis, Node, Strobe};

/// The child's wall clock minus ours, in seconds, as seen by `date +%s.%N` under libfaketime.
fn skew(lib: &Path, dir: &Path) -> f64 {
    let mut cmd = Command::new("date");
    cmd.arg("+%s.%N");
    for (k, v) in faketime_env(lib, &dir.join(TIMESTAMP_FILE), CacheMode::NoCache) {
        cmd.env(k, v);
    }
    let before = now();
    let out = cmd.output().expect("run date");
    let after = now();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("date output");
    child - (before + after) / 2.0
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn node(dir: &Path) -> Arc<NsNode> {
    Arc::new(NsNode {
        name: "n1".into(),
        ns: "unused".into(),
        ip: "10.77.1.11".parse().expect("ip"),
        clock_dir: dir.to_path_buf(),
        down: true.into(),
        calls: Default::default(),
    })
}

fn assert_near(got: f64, want: f64, ctx: &str) {
    assert!(
        (got - want).abs() < 0.4,
        "{ctx}: skew {got:.3} s, wanted {want} s"
    );
}

#[tokio::test]
async fn a_child_sees_bumps_and_reset() {
    let Some(lib) = find_libfaketime() else {
        require(
            false,
            "libfaketime.so.1",
            "apt-get install libfaketime faketime",
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("fl-t-clock-{}", std::process::id()));
    init_clock_dir(&dir).expect("clock dir");
    let n = node(&dir);
    assert_eq!(n.clock_dir(), dir);
    let mut nem = Nemesis::new(vec![n as Arc<dyn Node>], Capabilities::default()).expect("nemesis");
    assert_near(skew(&lib, &dir), 0.0, "before any bump");

    let bump = |ms| Fault::ClockBump(BTreeMap::from([("n1".to_string(), ms)]));
    let done = nem.apply(&bump(3_600_000)).await.expect("bump");
    assert_eq!(done.mechanism, Mechanism::Faketime);
    assert_near(skew(&lib, &dir), 3600.0, "+1 h");
    nem.apply(&bump(-3_601_500)).await.expect("bump back");
    assert_near(skew(&lib, &dir), -1.5, "-1.5 s (fractional offset)");
    nem.apply(&bump(-120_000)).await.expect("bump minutes");
    assert_near(skew(&lib, &dir), -121.5, "-2 min more");
    nem.apply(&Fault::ClockReset(vec!["n1".into()]))
        .await
        .expect("reset");
    assert_near(skew(&lib, &dir), 0.0, "after reset");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_child_sees_the_strobe_flip() {
    let Some(lib) = find_libfaketime() else {
        require(
            false,
            "libfaketime.so.1",
            "apt-get install libfaketime faketime",
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("fl-t-strobe-{}", std::process::id()));
    init_clock_dir(&dir).expect("clock dir");
    let mut nem =
        Nemesis::new(vec![node(&dir) as Arc<dyn Node>], Capabilities::default()).expect("nemesis");
    let strobe = Strobe {
        delta_ms: 600_000,
        period_ms: 50,
        duration_ms: 30_000,
    };
    nem.apply(&Fault::ClockStrobe(BTreeMap::from([(
        "n1".to_string(),
        strobe,
    )])))
    .await
    .expect("strobe");
    let mut high = 0;
    let mut low = 0;
    for _ in 0..40 {
        let s = skew(&lib, &dir);
        if (s - 600.0).abs() < 1.0 {
            high += 1;
        } else if s.abs() < 1.0 {
            low += 1;
        } else {
            panic!("skew {s} is neither 0 nor 600 s");
        }
        tokio::time::sleep(Duration::from_millis(13)).await;
    }
    assert!(high > 3 && low > 3, "high {high}, low {low}");
    nem.apply(&Fault::ClockReset(vec!["n1".into()]))
        .await
        .expect("reset");
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_near(skew(&lib, &dir), 0.0, "after the strobe's reset");
    let _ = std::fs::remove_dir_all(&dir);
}
