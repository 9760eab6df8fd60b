//! `faultline k8s manifest`: the Kubernetes objects that run the harness inside a
//! cluster for a plan (ServiceAccount, Role, RoleBinding, the plan as a ConfigMap, and a
//! Job; an Indexed Job of N shards with `--shards N`), printed as one `v1` List that
//! `kubectl apply -f` takes. The objects come from `faultline_targets::runtime::kube`.

use crate::args::whole;
use crate::campaign::plan::{load_plan, Plan};
use crate::exit;
use crate::test_cmd::{fresh_seed, model_names};
use anyhow::Result;
use clap::{Args, Subcommand};
use faultline_targets::runtime::kube::{
    config_map, harness_job, role, role_binding, service_account, HarnessJob,
};
use std::path::PathBuf;

/// Arguments of `faultline k8s`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: K8sCommand,
}

/// The `faultline k8s` subcommands.
#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// Print the Job (and its ServiceAccount, Role, RoleBinding and plan ConfigMap) that
    /// runs the harness inside the cluster, as a List for `kubectl apply -f -`.
    Manifest(ManifestArgs),
}

/// Arguments of `faultline k8s manifest`.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The plan (TOML) the Job runs; it goes into a ConfigMap as it is. [default: the
    /// default plan]
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The image holding the faultline binary at /usr/local/bin/faultline:
    /// the harness Job runs it, and each node Pod's init container copies it into the
    /// node's image. [default: the plan's k8s_agent_image]
    #[arg(long)]
    pub k8s_agent_image: Option<String>,
    /// The namespace of every object.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// The name of the Job and of its ServiceAccount, Role, RoleBinding and ConfigMap.
    #[arg(long, default_value = "faultline")]
    pub name: String,
    /// Run `verify` with this many campaigns (without it and --shards: one `test`).
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(1, 1_000))]
    pub campaigns: Option<usize>,
    /// Split the campaigns over N Pods at once (an Indexed Job; each runs `verify
    /// --shard <index>/N`); merge their series folders with `faultline verify --merge`.
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(1, 1_000))]
    pub shards: Option<usize>,
    /// Seed of the first campaign. [default: the plan's, else drawn now and written
    /// into the Job, so every shard draws the same campaigns]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<u64>(0, u64::MAX))]
    pub seed: Option<u64>,
    /// A PersistentVolumeClaim to keep the store in (ReadWriteMany for several shards).
    /// [default: an emptyDir, lost with the Pod]
    #[arg(long, value_name = "CLAIM")]
    pub store_claim: Option<String>,
}

/// Runs `faultline k8s`.
pub fn run(args: K8sArgs) -> Result<u8> {
    match args.command {
        K8sCommand::Manifest(m) => manifest(m),
    }
}

/// Whether `name` is a DNS-1123 label (what Kubernetes takes as an object name here).
fn dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The objects of `m`, or the message for exit 254.
pub fn objects(m: &ManifestArgs) -> Result<serde_json::Value, String> {
    let (plan, plan_toml) = match &m.plan {
        Some(path) => {
            let plan = load_plan(path).map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("plan {}: {e}", path.display()))?;
            (plan, text)
        }
        None => (Plan::default(), String::new()),
    };
    // A plan the harness would refuse is refused here, before anything is applied.
    let target =
        faultline_targets::find_target(&plan.target, &model_names()).map_err(|e| e.to_string())?;
    crate::campaign::plan::resolve(&plan, target.as_ref(), 0).map_err(|e| e.to_string())?;
    let image = m
        .k8s_agent_image
        .clone()
        .or_else(|| plan.k8s_agent_image.clone())
        .ok_or("--k8s-agent-image IMAGE is needed (or k8s_agent_image in the plan): the image holding /usr/local/bin/faultline")?;
    for (what, name) in [("--namespace", &m.namespace), ("--name", &m.name)] {
        if !dns_label(name) {
            return Err(format!(
                "{what} {name:?}: expected a DNS label (lowercase letters, digits and '-', at most 63)"
            ));
        }
    }
    if let Some(claim) = &m.store_claim {
        if !dns_label(claim) {
            return Err(format!("--store-claim {claim:?}: expected a DNS label"));
        }
    }
    let seed = m.seed.or(plan.seed).unwrap_or_else(fresh_seed);
    let args: Vec<String> = match (m.campaigns, m.shards) {
        (None, None) => vec!["test".into(), "--seed".into(), seed.to_string()],
        (campaigns, shards) => {
            let campaigns = campaigns.unwrap_or(5);
            if let Some(n) = shards {
                if n > campaigns {
                    return Err(format!(
                        "--shards {n} is more than --campaigns {campaigns}: some shards would run nothing"
                    ));
                }
            }
            vec![
                "verify".into(),
                "--campaigns".into(),
                campaigns.to_string(),
                "--seed".into(),
                seed.to_string(),
            ]
        }
    };
    let job = HarnessJob {
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        image,
        plan_toml,
        args,
        shards: m.shards,
        store_claim: m.store_claim.clone(),
    };
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            service_account(&job),
            role(&job),
            role_binding(&job),
            config_map(&job),
            harness_job(&job),
        ],
    }))
}

fn manifest(m: ManifestArgs) -> Result<u8> {
    match objects(&m) {
        Ok(list) => {
            outln!("{}", serde_json::to_string_pretty(&list)?);
            Ok(exit::VALID)
        }
        Err(e) => {
            errln!("error: {e}");
            Ok(exit::BAD_INPUT)
        }
    }
}
