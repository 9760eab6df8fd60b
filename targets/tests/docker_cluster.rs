//! A 3-node cluster of test nodes on the real engine: reachability from the
//! host, kill/start keeping the data dir, pause/resume, restart, netns path,
//! libfaketime offsets, log collection, teardown.

mod common;

use std::time::{Duration, Instant};

use common::*;
use faultline_targets::runtime::{http_get, NodeState, RuntimeError};

const READY: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_of_a_three_node_cluster() {
    let Some(rt) = runtime_or_skip("lifecycle_of_a_three_node_cluster").await else {
        return;
    };
    let image = image(&rt).await;
    let spec = spec(&rt, "tlife", 3, &image).await;
    let ip = |i: usize| spec.nodes[i].host.clone();
    let (ip1, ip3) = (ip(0), ip(2));
    let run = spec.run.clone();
    let cluster = start(&rt, spec, &image).await;
    eprintln!("3 nodes ready in {:?}", cluster.started_in());

    // Every node answers on its own IP from the host.
    for node in cluster.nodes() {
        let addr = node.ready_addr().expect("probe");
        assert_eq!(
            get(addr, "/health").await,
            Some((200, "ok".into())),
            "{}",
            node.name()
        );
        let status = node.status().await.expect("status");
        assert_eq!(status.state, NodeState::Running);
        assert!(status.pid.is_some());
    }
    let n1 = cluster.node("n1").expect("n1");
    let n2 = cluster.node("n2").expect("n2");
    let n3 = cluster.node("n3").expect("n3");
    assert_eq!(n1.ip().to_string(), ip1);
    assert!(ip1.ends_with(".11"), "{ip1}");
    assert_eq!(n3.ip().to_string(), ip3);
    assert!(ip3.ends_with(".13"), "{ip3}");
    assert!(matches!(
        cluster.node("n9"),
        Err(RuntimeError::UnknownNode(_))
    ));

    // Kill: write into /data first, the node stops answering, start brings
    // it back with the data.
    let a1 = n1.ready_addr().expect("probe");
    assert_eq!(get(a1, "/put/k1/v42").await, Some((200, "stored".into())));
    assert_eq!(
        std::fs::read_to_string(n1.data_dir().join("k1")).expect("host file"),
        "v42"
    );
    let old_pid = n1.status().await.expect("status").pid;
    let t = Instant::now();
    let killed = n1.kill().await.expect("kill");
    eprintln!("kill took {:?}", t.elapsed());
    assert_eq!(killed.state, NodeState::Stopped);
    assert_eq!(killed.pid, None);
    assert_eq!(
        get(a1, "/health").await,
        None,
        "a killed node must not answer"
    );
    assert_eq!(
        n1.kill().await.expect("kill again").state,
        NodeState::Stopped
    );
    assert!(matches!(
        n1.pause().await,
        Err(RuntimeError::InvalidState {
            state: NodeState::Stopped,
            ..
        })
    ));
    let t = Instant::now();
    let started = n1.start().await.expect("start");
    assert_eq!(started.state, NodeState::Running);
    assert_ne!(started.pid, old_pid);
    n1.wait_ready(READY).await.expect("ready after start");
    eprintln!("start until ready took {:?}", t.elapsed());
    assert_eq!(get(a1, "/get/k1").await, Some((200, "v42".into())));
    // Other nodes were not affected.
    assert_eq!(
        get(n2.ready_addr().expect("probe"), "/health").await,
        Some((200, "ok".into()))
    );

    // Nodes reach each other by IP.
    let peer = |ip: std::net::IpAddr| format!("/peer/{ip}/{PORT}");
    let (status, body) = get(a1, &peer(n2.ip())).await.expect("n1 answers");
    assert_eq!((status, body.as_str()), (200, "reached HTTP/1.0 200 OK"));

    // Pause: no answer (to the host or to n1); resume: answers again.
    let a2 = n2.ready_addr().expect("probe");
    let paused = n2.pause().await.expect("pause");
    assert_eq!(paused.state, NodeState::Paused);
    assert!(paused.pid.is_some());
    assert_eq!(
        get(a2, "/health").await,
        None,
        "a paused node must not answer"
    );
    // n1 waits up to 1 s for the paused n2, so give n1 3 s to answer.
    let answer = http_get(a1, &peer(n2.ip()), Duration::from_secs(3))
        .await
        .expect("n1 answers");
    assert_eq!(answer.status, 502, "n1 must not reach the paused n2");
    assert_eq!(
        n2.pause().await.expect("pause again").state,
        NodeState::Paused
    );
    let resumed = n2.resume().await.expect("resume");
    assert_eq!(resumed.state, NodeState::Running);
    assert_eq!(get(a2, "/health").await, Some((200, "ok".into())));

    // Start on a paused node thaws it; kill on a paused node kills it.
    n3.pause().await.expect("pause n3");
    assert_eq!(
        n3.start().await.expect("start paused").state,
        NodeState::Running
    );
    n3.pause().await.expect("pause n3 again");
    assert_eq!(
        n3.kill().await.expect("kill paused").state,
        NodeState::Stopped
    );
    n3.start().await.expect("start n3");
    n3.wait_ready(READY).await.expect("n3 ready");

    // Restart with a grace period.
    let before = n2.status().await.expect("status").pid;
    let after = n2.restart(Duration::from_secs(1)).await.expect("restart");
    assert_eq!(after.state, NodeState::Running);
    assert_ne!(after.pid, before);
    n2.wait_ready(READY).await.expect("n2 ready after restart");

    // Logs: every node printed its banner (n1 twice: started twice).
    let logs_dir = cluster.spec().run_dir.join("logs");
    let files = cluster.collect_logs(&logs_dir).await.expect("logs");
    assert_eq!(files.len(), 3);
    let n1_log = std::fs::read_to_string(logs_dir.join("n1.log")).expect("n1.log");
    assert_eq!(
        n1_log
            .matches("faultline-testnode listening on 0.0.0.0:7001")
            .count(),
        2,
        "{n1_log}"
    );

    // Teardown removes every labelled object of the run.
    let report = cluster.teardown().await.expect("teardown");
    assert_eq!(report.containers.len(), 3, "{report:?}");
    assert_eq!(report.networks, vec![format!("faultline-{run}")]);
    assert_eq!(labelled(&rt, Some(&run)).await, (vec![], vec![]));
    // No probe of the node IPs after teardown: without the bridge, the
    // host would route them to its default gateway.
    cluster.remove_node_dirs().expect("remove dirs");
    assert!(!cluster.spec().nodes_dir().exists());
    let _ = std::fs::remove_dir_all(&cluster.spec().run_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_path_and_clock_offsets() {
    let Some(rt) = runtime_or_skip("netns_path_and_clock_offsets").await else {
        return;
    };
    let image = image(&rt).await;
    assert!(
        image.capabilities.clock_faults,
        "libfaketime is needed for this test: {:?}",
        image.capabilities.clock_faults_unavailable
    );
    let spec = spec(&rt, "tclock", 3, &image).await;
    let (ip1, ip2) = (spec.nodes[0].host.clone(), spec.nodes[1].host.clone());
    let run = spec.run.clone();
    let cluster = start(&rt, spec, &image).await;
    let n1 = cluster.node("n1").expect("n1");
    let n2 = cluster.node("n2").expect("n2");

    // The netns path exists and holds the node's IP.
    let facts = n1.facts().await.expect("facts");
    let netns = facts.status.netns_path.clone().expect("netns path");
    assert!(netns.exists(), "{}", netns.display());
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["ip", "-4", "-o", "addr"])
        .output()
        .expect("run nsenter (util-linux) and ip (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("inet {ip1}/24")), "{text}");
    assert!(!text.contains(&ip2), "{text}");
    assert_eq!(facts.ip.to_string(), ip1);
    assert_eq!(facts.container, format!("faultline-{run}-n1"));
    assert_eq!(
        std::fs::read_to_string(facts.clock_dir.join("rc")).expect("rc"),
        "+0\n"
    );

    // +3600s on n1 only: n1 is an hour ahead, n2 and the host are not.
    let clock = |addr| async move {
        let (status, body) = get(addr, "/time").await.expect("time answer");
        assert_eq!(status, 200);
        body.trim().parse::<f64>().expect("seconds")
    };
    let a1 = n1.ready_addr().expect("probe");
    let a2 = n2.ready_addr().expect("probe");
    assert!((clock(a1).await - host_now()).abs() < 5.0);
    n1.set_clock_offset("+3600s").expect("write rc");
    let t = Instant::now();
    let mut skew = 0.0;
    while t.elapsed() < Duration::from_secs(5) {
        skew = clock(a1).await - host_now();
        if skew > 3000.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("offset seen after {:?}: skew {skew:.1} s", t.elapsed());
    assert!((skew - 3600.0).abs() < 5.0, "n1 skew {skew}");
    let other = clock(a2).await - host_now();
    assert!(other.abs() < 5.0, "n2 skew {other}");
    assert!(n1.set_clock_offset("garbage").is_err());

    // Back to +0.
    n1.set_clock_offset("+0").expect("reset");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let back = clock(a1).await - host_now();
    assert!(back.abs() < 5.0, "n1 skew after reset {back}");

    cluster.teardown().await.expect("teardown");
    assert_eq!(labelled(&rt, Some(&run)).await, (vec![], vec![]));
    let _ = std::fs::remove_dir_all(&cluster.spec().run_dir);
}
