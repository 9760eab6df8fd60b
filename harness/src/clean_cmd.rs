//! `faultline clean`: remove every labelled leftover of faultline runs (containers,
//! networks, volumes, untagged base images, node folders).

use crate::exit;
use anyhow::{Context, Result};
use clap::Args;
use faultline_targets::runtime::{CleanScope, DockerConfig, DockerRuntime, Runtime};

/// Arguments of `faultline clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Keep the node folders (data and clock dirs) of removed runs.
    #[arg(long)]
    pub keep_dirs: bool,
}

/// Runs `faultline clean`.
pub fn run(args: CleanArgs) -> Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let docker = DockerRuntime::connect(DockerConfig::default())
            .await
            .context("cannot reach Docker")?;
        docker.check().await.context("Docker is not usable")?;
        let report = docker
            .clean(&CleanScope::All, !args.keep_dirs)
            .await
            .context("clean-up failed")?;
        if report.is_empty() {
            outln!("nothing to remove");
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
            for d in &report.dirs {
                outln!("removed folder {}", d.display());
            }
        }
        Ok(exit::VALID)
    })
}
