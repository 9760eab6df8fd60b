//! Shared helpers of the Docker runtime tests: engine gating, the test node
//! binary, cluster specs and label queries.
//!
//! When the engine is unreachable the tests fail with the runtime's message
//! if `CI=true`, and otherwise print a notice and return early.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptions, ListNetworksOptionsBuilder,
};
use faultline_targets::runtime::{
    default_faketime_env, find_overlap, http_get, CleanScope, Cluster, ClusterSpec, DockerConfig,
    DockerRuntime, ImageSpec, NodeName, NodeSpec, PreparedImage, ReadyProbe, RunId, Runtime,
    Subnet,
};

/// The test node binary built by cargo for this package.
pub const TESTNODE: &str = env!("CARGO_BIN_EXE_faultline-testnode");
/// Port the test node listens on.
pub const PORT: u16 = 7001;

/// Connects to the engine, or explains why not: panics under `CI=true`,
/// prints a notice and returns `None` otherwise.
pub async fn runtime_or_skip(test: &str) -> Option<Arc<DockerRuntime>> {
    match DockerRuntime::connect(DockerConfig::default()).await {
        Ok(rt) => match rt.check().await {
            Ok(_) => Some(Arc::new(rt)),
            Err(e) => unavailable(test, &e.to_string()),
        },
        Err(e) => unavailable(test, &e.to_string()),
    }
}

fn unavailable(test: &str, why: &str) -> Option<Arc<DockerRuntime>> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: Docker is required under CI=true but unavailable: {why}");
    }
    eprintln!("NOTICE: skipping {test}: Docker unavailable ({why}); set CI=true to make this fail");
    None
}

/// Prepares the base image for the test node binary.
pub async fn image(rt: &DockerRuntime) -> PreparedImage {
    let t = std::time::Instant::now();
    let image = rt
        .prepare_image(&ImageSpec::new(TESTNODE))
        .await
        .expect("prepare image");
    eprintln!(
        "image {} prepared in {:?} (reused: {})",
        image.reference,
        t.elapsed(),
        image.reused
    );
    image
}

/// A fresh run folder under the system temp dir.
pub fn run_dir(run: &RunId) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-rt-test-{run}"));
    std::fs::create_dir_all(&dir).expect("create run dir");
    dir
}

/// A run id unique to this test process: `base` then the pid, so that two test
/// processes (or a test and a campaign) on one engine never share containers.
pub fn unique_run(base: &str) -> String {
    format!("{base}-{}", std::process::id())
}

/// The /24s handed out by [`free_subnet`] in this process (not yet visible to the engine
/// until their cluster starts).
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A /24 in 10.230.0.0/12 that no network of the engine uses and that this process has
/// not handed out yet. The search starts at a place drawn from the pid, so concurrent test
/// processes rarely race for the same one.
pub async fn free_subnet(rt: &DockerRuntime) -> Subnet {
    let networks = rt
        .client()
        .list_networks(None::<ListNetworksOptions>)
        .await
        .expect("list networks");
    let used: Vec<(String, Vec<String>)> = networks
        .iter()
        .map(|n| {
            let subnets = n
                .ipam
                .as_ref()
                .and_then(|i| i.config.as_ref())
                .map(|cs| cs.iter().filter_map(|c| c.subnet.clone()).collect())
                .unwrap_or_default();
            (n.name.clone().unwrap_or_default(), subnets)
        })
        .collect();
    let mut taken = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    let first = (std::process::id() % 4096) as u16;
    for i in 0..4096u16 {
        let k = (first + i.wrapping_mul(61)) % 4096;
        let subnet = Subnet::new(
            Ipv4Addr::new(10, 230 + (k / 256) as u8, (k % 256) as u8, 0),
            24,
        )
        .expect("subnet");
        if !taken.contains(&k) && find_overlap(&subnet, &used).is_none() {
            taken.insert(k);
            return subnet;
        }
    }
    panic!("no free /24 in 10.230.0.0/12 on this engine");
}

/// A spec of `count` test nodes `n1..` on a free subnet ([`free_subnet`]), with a run id
/// unique to this process ([`unique_run`]), leftovers of this run only (tests run in
/// parallel), with the default libfaketime environment.
pub async fn spec(
    rt: &DockerRuntime,
    run: &str,
    count: usize,
    image: &PreparedImage,
) -> ClusterSpec {
    let subnet = free_subnet(rt).await;
    spec_on(&unique_run(run), subnet, count, image)
}

/// Like [`spec`] on the given subnet and with `run` as the run id, as given.
pub fn spec_on(run: &str, subnet: Subnet, count: usize, image: &PreparedImage) -> ClusterSpec {
    let run = RunId::new(run).expect("run id");
    let dir = run_dir(&run);
    let mut spec = ClusterSpec::new(run.clone(), dir, TESTNODE);
    spec.subnet = Some(subnet);
    spec.leftovers = CleanScope::Run(run);
    spec.ready_timeout = Duration::from_secs(20);
    let ips = subnet.node_ips(count).expect("ips");
    let env = if image.capabilities.clock_faults {
        default_faketime_env()
    } else {
        Vec::new()
    };
    spec.nodes = ips
        .into_iter()
        .enumerate()
        .map(|(i, ip)| NodeSpec {
            name: NodeName::new(&format!("n{}", i + 1)).expect("name"),
            host: ip.to_string(),
            args: vec!["--listen".into(), format!("0.0.0.0:{PORT}")],
            env: env.clone(),
            ready: Some(ReadyProbe::health(PORT)),
            files: Vec::new(),
        })
        .collect();
    spec
}

/// Starts a cluster, panicking with the runtime's message on failure.
pub async fn start(rt: &Arc<DockerRuntime>, spec: ClusterSpec, image: &PreparedImage) -> Cluster {
    let runtime: Arc<dyn Runtime> = rt.clone();
    Cluster::start(runtime, spec, image)
        .await
        .expect("start cluster")
}

/// `GET path` on `addr` with a 1 s timeout: `Some((status, body))` or `None`
/// when there was no answer.
pub async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_get(addr, path, Duration::from_secs(1))
        .await
        .ok()
        .map(|r| (r.status, r.body))
}

/// Names of the containers and networks labelled with `run` (or every
/// faultline one with `None`).
pub async fn labelled(rt: &DockerRuntime, run: Option<&RunId>) -> (Vec<String>, Vec<String>) {
    let mut labels = vec!["faultline=1".to_string()];
    if let Some(run) = run {
        labels.push(format!("faultline.run={run}"));
    }
    let filters = HashMap::from([("label".to_string(), labels)]);
    let containers = rt
        .client()
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers")
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .collect();
    let networks = rt
        .client()
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list networks")
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    (containers, networks)
}

/// The host's wall clock in seconds.
pub fn host_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
