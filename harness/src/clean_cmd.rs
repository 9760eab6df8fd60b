//! `faultline clean`: remove the labelled leftovers of faultline runs whose harness is
//! gone (containers, networks, volumes, untagged base images, node folders); `--run ID`
//! removes one run, `--force` every run, live ones included.

use crate::exit;
use anyhow::{Context, Result};
use clap::Args;
use faultline_targets::runtime::{connect, CleanScope, RunId, RuntimeOptions};

/// Arguments of `faultline clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Keep the node folders (data and clock dirs) of removed runs.
    #[arg(long)]
    pub keep_dirs: bool,
    /// Remove only this run (its id, as `run_id` in run.json), even if its harness runs.
    #[arg(long, value_name = "ID", conflicts_with = "force")]
    pub run: Option<String>,
    /// Remove every faultline run, including those whose harness still runs (a live
    /// campaign on this engine fails).
    #[arg(long)]
    pub force: bool,
    /// The runtime whose leftovers to remove: docker or kubernetes. [default: docker]
    #[arg(long)]
    pub runtime: Option<faultline_targets::runtime::RuntimeKind>,
    /// On Kubernetes: an API URL that needs no credentials, such as kubectl proxy's
    /// http://127.0.0.1:8001. [default: FAULTLINE_KUBE_API, else the cluster and
    /// credentials of KUBECONFIG (or ~/.kube/config), else the in-cluster service account]
    #[arg(long, value_name = "URL")]
    pub kube_api: Option<String>,
    /// On Kubernetes: the namespace to clean. [default: FAULTLINE_NAMESPACE, else the
    /// kubeconfig context's, else default]
    #[arg(long, value_name = "NS")]
    pub k8s_namespace: Option<String>,
}

/// Runs `faultline clean`.
pub fn run(args: CleanArgs) -> Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let scope = match (&args.run, args.force) {
        (Some(id), _) => match RunId::new(id) {
            Ok(run) => CleanScope::Run(run),
            Err(e) => {
                errln!("faultline clean: --run: {e}");
                return Ok(exit::BAD_INPUT);
            }
        },
        (None, true) => CleanScope::All,
        (None, false) => CleanScope::orphans(),
    };
    rt.block_on(async {
        let options = RuntimeOptions {
            kind: args.runtime.unwrap_or_default(),
            kube_api: args.kube_api.clone(),
            namespace: args.k8s_namespace.clone(),
            ..RuntimeOptions::default()
        };
        let runtime = match connect(&options).await {
            Ok((runtime, _)) => runtime,
            // A machine not set up for this runtime: what to fix, exit 254.
            Err(e) if e.is_setup_error() => {
                errln!("faultline clean: cannot use the {} runtime: {e}", options.kind);
                return Ok(exit::BAD_INPUT);
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot use the {} runtime", options.kind)))
            }
        };
        let report = runtime
            .clean(&scope, !args.keep_dirs)
            .await
            .context("clean-up failed")?;
        if report.is_empty() {
            match scope {
                CleanScope::Orphans { .. } => outln!(
                    "nothing to remove (runs whose harness still runs are kept; --force removes them too)"
                ),
                _ => outln!("nothing to remove"),
            }
        } else {
            for (what, list) in [
                ("container", &report.containers),
                ("network", &report.networks),
                ("volume", &report.volumes),
                ("image", &report.images),
            ] {
                for item in list {
                    outln!("removed {what} {item}");
                }
            }
            for item in &report.objects {
                outln!("removed {item}");
            }
            for d in &report.dirs {
                outln!("removed folder {}", d.display());
            }
        }
        Ok(exit::VALID)
    })
}
