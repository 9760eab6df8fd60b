//! Failure paths on the real engine: a node that never becomes ready, a
//! subnet already in use, a cluster dropped without teardown, leftovers of a
//! crashed run, image reuse and an image without libfaketime.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use faultline_targets::runtime::{
    CleanScope, Cluster, ImageSpec, Runtime, RuntimeError, NODES_MARKER,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_gets_ready_is_named_with_its_logs() {
    let Some(rt) = runtime_or_skip("a_node_that_never_gets_ready_is_named_with_its_logs").await
    else {
        return;
    };
    let image = image(&rt).await;
    let mut spec = spec(&rt, "tfail", 2, &image).await;
    let ip2 = spec.nodes[1].host.clone();
    spec.nodes[1].args.push("--fail-start".into());
    spec.ready_timeout = Duration::from_secs(3);
    let run = spec.run.clone();
    let dir = spec.run_dir.clone();
    let runtime: Arc<dyn Runtime> = rt.clone();
    let err = Cluster::start(runtime, spec, &image)
        .await
        .expect_err("must fail");
    let text = err.to_string();
    match &err {
        RuntimeError::NotReady {
            node,
            url,
            log_tail,
            ..
        } => {
            assert_eq!(node, "n2");
            assert_eq!(url, &format!("http://{ip2}:7001/health"));
            assert!(log_tail.contains("failing on purpose"), "{log_tail}");
        }
        other => panic!("expected NotReady, got {other}"),
    }
    assert!(text.contains("node n2 never became ready"), "{text}");
    assert!(text.contains("Stopped"), "{text}");
    // The failed start removed what it had created.
    assert_eq!(labelled(&rt, Some(&run)).await, (vec![], vec![]));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subnet_is_refused_and_drop_cleans_up() {
    let Some(rt) = runtime_or_skip("overlapping_subnet_is_refused_and_drop_cleans_up").await else {
        return;
    };
    let image = image(&rt).await;
    let subnet = free_subnet(&rt).await;
    let first_subnet = subnet.to_string();
    let first = spec_on(&unique_run("tovera"), subnet, 1, &image);
    let first_run = first.run.clone();
    let first_dir = first.run_dir.clone();
    let cluster = start(&rt, first, &image).await;

    let second = spec_on(&unique_run("toverb"), subnet, 1, &image);
    let second_run = second.run.clone();
    let runtime: Arc<dyn Runtime> = rt.clone();
    let err = Cluster::start(runtime, second.clone(), &image)
        .await
        .expect_err("overlap");
    match &err {
        RuntimeError::SubnetInUse {
            subnet,
            network,
            existing,
        } => {
            assert_eq!(subnet, &first_subnet);
            assert_eq!(network, &format!("faultline-{first_run}"));
            assert_eq!(existing, &first_subnet);
        }
        other => panic!("expected SubnetInUse, got {other}"),
    }
    assert_eq!(labelled(&rt, Some(&second_run)).await, (vec![], vec![]));

    // Dropping the cluster without teardown still removes it (blocking Drop).
    let (containers, networks) = labelled(&rt, Some(&first_run)).await;
    assert_eq!((containers.len(), networks.len()), (1, 1));
    drop(cluster);
    assert_eq!(labelled(&rt, Some(&first_run)).await, (vec![], vec![]));
    let _ = std::fs::remove_dir_all(first_dir);
    let _ = std::fs::remove_dir_all(second.run_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_crashed_run_are_removed() {
    let Some(rt) = runtime_or_skip("leftovers_of_a_crashed_run_are_removed").await else {
        return;
    };
    let image = image(&rt).await;
    let spec1 = spec(&rt, "tcrash", 2, &image).await;
    let run = spec1.run.clone();
    let nodes_dir = spec1.nodes_dir();
    let crashed = start(&rt, spec1.clone(), &image).await;
    // A crash: the guard never runs.
    std::mem::forget(crashed);
    assert_eq!(labelled(&rt, Some(&run)).await.0.len(), 2);

    // Starting the same run again removes the leftovers first.
    let again = start(&rt, spec1, &image).await;
    assert_eq!(labelled(&rt, Some(&run)).await.0.len(), 2);
    std::mem::forget(again);

    // clean() of the run with its dirs: everything goes, the folder too.
    assert!(nodes_dir.join(NODES_MARKER).is_file());
    let report = rt
        .clean(&CleanScope::Run(run.clone()), true)
        .await
        .expect("clean");
    let mut containers = report.containers.clone();
    containers.sort();
    assert_eq!(
        containers,
        vec![format!("faultline-{run}-n1"), format!("faultline-{run}-n2")]
    );
    assert_eq!(report.networks, vec![format!("faultline-{run}")]);
    assert_eq!(report.dirs, vec![nodes_dir.clone()]);
    assert!(!nodes_dir.exists());
    assert_eq!(labelled(&rt, Some(&run)).await, (vec![], vec![]));
    // A second clean finds nothing.
    let report = rt
        .clean(&CleanScope::Run(run.clone()), true)
        .await
        .expect("clean again");
    assert!(report.is_empty(), "{report:?}");
    let _ = std::fs::remove_dir_all(nodes_dir.parent().unwrap_or(&nodes_dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_reused_and_work_without_libfaketime() {
    let Some(rt) = runtime_or_skip("images_are_reused_and_work_without_libfaketime").await else {
        return;
    };
    let first = image(&rt).await;
    let second = image(&rt).await;
    assert!(second.reused, "the second prepare must reuse the image");
    assert_eq!(first.reference, second.reference);
    assert!(first.reference.starts_with("faultline-base:"));
    let names: Vec<String> = first
        .libraries
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for lib in ["libc.so.6", "ld-linux-x86-64.so.2", "libm.so.6"] {
        assert!(
            names.iter().any(|n| n == lib),
            "{lib} missing from {names:?}"
        );
    }

    let mut spec_no_ft = ImageSpec::new(TESTNODE);
    spec_no_ft.faketime_lib = Some(PathBuf::from("/nonexistent/libfaketime.so.1"));
    let plain = rt
        .prepare_image(&spec_no_ft)
        .await
        .expect("image without libfaketime");
    assert!(!plain.capabilities.clock_faults);
    assert!(plain
        .capabilities
        .clock_faults_unavailable
        .as_deref()
        .is_some_and(|r| r.contains("apt-get install libfaketime")));
    assert_ne!(plain.reference, first.reference);

    // A node runs on the plain image (no LD_PRELOAD in its env).
    let spec = spec(&rt, "tplain", 1, &plain).await;
    assert!(spec.nodes[0].env.is_empty());
    let run = spec.run.clone();
    let cluster = start(&rt, spec, &plain).await;
    let addr = cluster.nodes()[0].ready_addr().expect("probe");
    assert_eq!(get(addr, "/health").await, Some((200, "ok".into())));
    cluster.teardown().await.expect("teardown");
    assert_eq!(labelled(&rt, Some(&run)).await, (vec![], vec![]));
    let _ = std::fs::remove_dir_all(&cluster.spec().run_dir);
}
