//! Against a real cluster (kind or k3s on a laptop): a one-node run's Secret, Service and
//! Pod are created with the kubeconfig's credentials (TLS to the API server, as
//! `--runtime kubernetes` does by default), the Pod becomes ready with the node agent as
//! its entry point, its log is read, and teardown removes everything.
//!
//! Ignored by default, with the reason in `cargo test`'s output. To run it:
//!
//! ```sh
//! KUBECONFIG=~/.kube/config FAULTLINE_K8S_AGENT_IMAGE=registry.example/faultline:0.1 \
//!   cargo test -p faultline-targets --test kube_real_cluster -- --ignored
//! ```
//!
//! `FAULTLINE_K8S_AGENT_IMAGE` is an image holding `/usr/local/bin/faultline` and `sleep`
//! that the cluster can pull; `FAULTLINE_K8S_NAMESPACE` (default `default`) the
//! namespace. Run with `--ignored` but without `KUBECONFIG`, it fails saying so.

use std::time::{Duration, Instant};

use faultline_targets::runtime::kube::{
    deploy, headless_service, node_pod, pod_name, pod_readiness, teardown_run, token_secret,
    ApiSource, KubeApi, KubeNode, KubeRun,
};
use faultline_targets::runtime::{NodeName, RunId, RuntimeError};

#[tokio::test]
#[ignore = "needs a real cluster: KUBECONFIG=… FAULTLINE_K8S_AGENT_IMAGE=… cargo test -p faultline-targets --test kube_real_cluster -- --ignored"]
async fn a_run_starts_is_ready_and_is_torn_down_on_a_real_cluster() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG is not set: this test needs a real cluster (see the file's header)"
    );
    let image = std::env::var("FAULTLINE_K8S_AGENT_IMAGE")
        .expect("FAULTLINE_K8S_AGENT_IMAGE names an image holding /usr/local/bin/faultline");
    let namespace =
        std::env::var("FAULTLINE_K8S_NAMESPACE").unwrap_or_else(|_| "default".to_string());
    // The kubeconfig's credentials, as `--runtime kubernetes` uses them by default.
    let api = KubeApi::connect(&ApiSource::Inferred)
        .await
        .expect("the kubeconfig names a cluster");
    let run = RunId::generate();
    let k = KubeRun {
        namespace: namespace.clone(),
        run: run.clone(),
        node_image: image.clone(),
        agent_image: image,
        agent_port: 7900,
        ports: Vec::new(),
        anti_affinity: false,
        harness: "kube-real-cluster-test".into(),
    };
    let node = KubeNode {
        name: NodeName::new("n1").expect("name"),
        command: vec!["sleep".into(), "3600".into()],
        env: Vec::new(),
        ready: None,
        files: Vec::new(),
    };
    let pod = pod_name(&run, &node.name);
    let objects = vec![
        token_secret(&k, "0123456789abcdef"),
        headless_service(&k),
        node_pod(&k, &node),
    ];
    deploy(&api, &objects).await.expect("created");
    let deadline = Instant::now() + Duration::from_secs(180);
    let outcome = loop {
        let p = api.pod(&namespace, &pod).await.expect("pod");
        let (ready, ip) = pod_readiness(&p);
        if ready {
            break Ok(ip);
        }
        if Instant::now() > deadline {
            break Err(format!("not ready after 180 s: {:#}", p["status"]));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let log = api.logs(&namespace, &pod, Some(20)).await;
    teardown_run(&api, &namespace, &run)
        .await
        .expect("torn down");
    let ip = outcome.expect("ready");
    assert!(ip.is_some(), "a ready Pod has an IP");
    log.expect("the node's log is readable");
    // Gone within the grace period (and a little).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match api.pod(&namespace, &pod).await {
            Err(RuntimeError::Api {
                status: Some(404), ..
            }) => break,
            _ if Instant::now() > deadline => panic!("{pod} still there 60 s after teardown"),
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}
