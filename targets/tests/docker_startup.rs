//! Start-up time of a 5-node cluster with the image already built (must be
//! under 5 s), and `clean` of the crashed run's leftovers. In a test binary of
//! its own so that no other cluster of this crate competes for the engine while
//! it is measured; the clean-up removes only this run, never a concurrent
//! campaign's or test's nodes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use faultline_targets::runtime::{CleanScope, NodeState, Runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_are_ready_in_under_five_seconds_and_clean_removes_all() {
    let Some(rt) = runtime_or_skip("five_nodes_are_ready_in_under_five_seconds").await else {
        return;
    };
    // An untagged base image, as a lost race between two processes importing the same
    // content leaves: preparing the image (even when it is reused) removes it.
    let untagged = std::process::Command::new("sh")
        .args([
            "-c",
            "tar -c -f - -T /dev/null | docker import --change 'LABEL faultline=1' -",
        ])
        .output()
        .expect("docker import");
    assert!(untagged.status.success(), "{untagged:?}");
    let untagged = String::from_utf8_lossy(&untagged.stdout).trim().to_string();
    let exists = |id: &str| {
        std::process::Command::new("docker")
            .args(["image", "inspect", id])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(exists(&untagged));
    let image = image(&rt).await;
    let again = self::image(&rt).await;
    assert!(again.reused);
    assert!(!exists(&untagged), "the untagged image {untagged} is left");

    let spec = spec(&rt, "tfive", 5, &image).await;
    let run = spec.run.clone();
    let dir = spec.run_dir.clone();
    let t = Instant::now();
    let cluster = start(&rt, spec, &image).await;
    let took = t.elapsed();
    eprintln!(
        "5 nodes ready in {took:?} (cluster reports {:?})",
        cluster.started_in()
    );
    for node in cluster.nodes() {
        let addr = node.ready_addr().expect("probe");
        assert_eq!(
            get(addr, "/health").await,
            Some((200, "ok".into())),
            "{}",
            node.name()
        );
    }
    assert!(
        took < Duration::from_secs(5),
        "5-node start-up took {took:?}"
    );

    // Hostname = node name.
    for node in cluster.nodes() {
        let addr = node.ready_addr().expect("probe");
        let expected = node.name().to_string();
        assert_eq!(get(addr, "/hostname").await, Some((200, expected)));
    }

    // Latency of each fault on one node, for the report.
    let n5 = cluster.node("n5").expect("n5");
    let t = Instant::now();
    assert_eq!(n5.pause().await.expect("pause").state, NodeState::Paused);
    let pause = t.elapsed();
    let t = Instant::now();
    assert_eq!(n5.resume().await.expect("resume").state, NodeState::Running);
    let resume = t.elapsed();
    let t = Instant::now();
    assert_eq!(n5.kill().await.expect("kill").state, NodeState::Stopped);
    let kill = t.elapsed();
    let t = Instant::now();
    assert_eq!(n5.start().await.expect("start").state, NodeState::Running);
    let start = t.elapsed();
    n5.wait_ready(Duration::from_secs(10)).await.expect("ready");
    let ready = t.elapsed();
    let t = Instant::now();
    let facts = n5.facts().await.expect("facts");
    let inspect = t.elapsed();
    assert!(facts.status.netns_path.is_some_and(|p| p.exists()));
    eprintln!(
        "pause {pause:?}, resume {resume:?}, kill {kill:?}, start {start:?} \
         (ready {ready:?}), status {inspect:?}"
    );

    // A crash leaves the cluster behind; `faultline clean` removes it.
    std::mem::forget(cluster);
    assert_eq!(labelled(&rt, Some(&run)).await.0.len(), 5);
    let t = Instant::now();
    // Only this run: `CleanScope::All` would remove concurrent campaigns and tests too.
    let report = rt
        .clean(&CleanScope::Run(run.clone()), true)
        .await
        .expect("clean");
    eprintln!(
        "clean removed {} containers in {:?}",
        report.containers.len(),
        t.elapsed()
    );
    assert!(report.containers.len() >= 5, "{report:?}");
    assert!(
        report.networks.contains(&format!("faultline-{run}")),
        "{report:?}"
    );
    assert_eq!(labelled(&rt, Some(&run)).await, (vec![], vec![]));
    let filters = std::collections::HashMap::from([
        ("label".to_string(), vec!["faultline=1".to_string()]),
        ("dangling".to_string(), vec!["true".to_string()]),
    ]);
    let dangling = rt
        .client()
        .list_images(Some(
            bollard::query_parameters::ListImagesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list images");
    assert!(
        dangling.is_empty(),
        "untagged faultline images remain: {dangling:?}"
    );
    // The tagged base image stays for the next run.
    assert!(rt.client().inspect_image(&image.reference).await.is_ok());
    assert!(!dir.join("nodes").exists());
    let _ = std::fs::remove_dir_all(dir);
}
