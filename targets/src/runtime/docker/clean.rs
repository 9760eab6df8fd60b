//! Removing what faultline created: containers, networks and volumes by
//! label (checked again on each object before it is removed), and on request
//! the host node folders recorded on the containers.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptions,
    RemoveVolumeOptions,
};
use bollard::Docker;
use futures_util::future::join_all;

use super::{connect_socket, DockerConfig};
use crate::runtime::names::{
    harness_alive, in_scope, label_filters, live_runs, CleanScope, RunId, LABEL_FAULTLINE,
    LABEL_NODES_DIR, LABEL_RUN,
};
use crate::runtime::spec::{NODES_DIR, NODES_MARKER};
use crate::runtime::{CleanReport, RuntimeError};

/// Whether an engine error means "already gone" (404), which a clean-up
/// treats as success.
fn already_gone(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The nodes folder a container label names, if it may be deleted: an
/// absolute path without `..` whose last component is `nodes`. The caller
/// also requires the marker file inside. Pure.
pub(crate) fn removable_nodes_dir(label: &str) -> Option<PathBuf> {
    let path = Path::new(label);
    let plain = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let deep_enough = path.components().count() >= 3;
    (path.is_absolute() && plain && deep_enough && path.file_name()? == NODES_DIR)
        .then(|| path.to_path_buf())
}

/// Removes the objects of `scope`; with `remove_dirs` also the nodes folders
/// recorded on the removed containers (only those holding the marker file).
pub(crate) async fn clean(
    docker: &Docker,
    scope: &CleanScope,
    remove_dirs: bool,
) -> Result<CleanReport, RuntimeError> {
    let filters = label_filters(scope);
    let mut report = CleanReport::default();

    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| RuntimeError::engine("list containers", e))?;
    // An orphan clean-up keeps every run that is still live: its harness runs, or (made
    // by an older faultline, with no harness label) one of its containers runs.
    let live = match scope {
        CleanScope::Orphans { host } => live_runs(
            &containers
                .iter()
                .map(|c| {
                    (
                        c.labels.clone().unwrap_or_default(),
                        c.state.as_ref().is_some_and(|s| s.to_string() == "running"),
                    )
                })
                .collect::<Vec<_>>(),
            |id| harness_alive(id, host),
        ),
        _ => BTreeSet::new(),
    };
    let wanted = |labels: &std::collections::HashMap<String, String>| {
        in_scope(labels, scope)
            && !labels
                .get(LABEL_RUN)
                .is_some_and(|run| live.contains(run.as_str()))
    };
    let mut dirs = BTreeSet::new();
    let mut targets = Vec::new();
    for c in containers {
        let labels = c.labels.unwrap_or_default();
        if !wanted(&labels) {
            continue;
        }
        if let Some(dir) = labels
            .get(LABEL_NODES_DIR)
            .and_then(|l| removable_nodes_dir(l))
        {
            dirs.insert(dir);
        }
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string());
        if let Some(id) = c.id {
            targets.push((id, name.unwrap_or_default()));
        }
    }
    let removals = join_all(targets.iter().map(|(id, _)| {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        docker.remove_container(id, Some(options))
    }))
    .await;
    for ((_, name), result) in targets.into_iter().zip(removals) {
        match result {
            Ok(()) => report.containers.push(name),
            Err(e) if already_gone(&e) => {}
            Err(e) => return Err(RuntimeError::engine(format!("remove container {name}"), e)),
        }
    }

    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| RuntimeError::engine("list networks", e))?;
    for n in networks {
        if !wanted(&n.labels.unwrap_or_default()) {
            continue;
        }
        let name = n.name.unwrap_or_default();
        let Some(id) = n.id else { continue };
        match docker.remove_network(&id).await {
            Ok(()) => report.networks.push(name),
            Err(e) if already_gone(&e) => {}
            Err(e) => return Err(RuntimeError::engine(format!("remove network {name}"), e)),
        }
    }

    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| RuntimeError::engine("list volumes", e))?;
    for v in volumes.volumes.unwrap_or_default() {
        if !wanted(&v.labels) {
            continue;
        }
        match docker
            .remove_volume(&v.name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => report.volumes.push(v.name),
            Err(e) if already_gone(&e) => {}
            Err(e) => return Err(RuntimeError::engine(format!("remove volume {}", v.name), e)),
        }
    }

    if matches!(scope, CleanScope::All | CleanScope::Orphans { .. }) {
        remove_dangling_images(docker, &mut report).await?;
    }

    if remove_dirs {
        for dir in dirs {
            if !dir.join(NODES_MARKER).is_file() {
                tracing::warn!("not removing {}: no {NODES_MARKER} marker", dir.display());
                continue;
            }
            // A folder this user may not remove (a run of another user, say) stays, with a
            // warning: its containers are gone, which is what matters.
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => report.dirs.push(dir),
                Err(e) => tracing::warn!("keeping {}: {e}", dir.display()),
            }
        }
    }
    if !report.is_empty() {
        tracing::info!(
            "removed {} containers, {} networks, {} volumes, {} images, {} dirs",
            report.containers.len(),
            report.networks.len(),
            report.volumes.len(),
            report.images.len(),
            report.dirs.len()
        );
    }
    Ok(report)
}

/// Removes untagged base images (left when two imports of the same content
/// raced and the tag moved to the second). Tagged images stay: they are
/// reused by the next run. An image still in use is skipped.
pub(crate) async fn remove_dangling_images(
    docker: &Docker,
    report: &mut CleanReport,
) -> Result<(), RuntimeError> {
    let filters = std::collections::HashMap::from([
        ("label".to_string(), vec![format!("{LABEL_FAULTLINE}=1")]),
        ("dangling".to_string(), vec!["true".to_string()]),
    ]);
    let images = docker
        .list_images(Some(
            ListImagesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| RuntimeError::engine("list images", e))?;
    for image in images {
        // Engines list an untagged image with no tags or with `<none>:<none>`.
        let tagged = image.repo_tags.iter().any(|t| t != "<none>:<none>");
        if !in_scope(&image.labels, &CleanScope::All) || tagged {
            continue;
        }
        match docker
            .remove_image(&image.id, None::<RemoveImageOptions>, None)
            .await
        {
            Ok(_) => report.images.push(image.id),
            Err(e) if already_gone(&e) => {}
            Err(e) => tracing::warn!("keeping image {}: {e}", image.id),
        }
    }
    Ok(())
}

/// Removes the objects of `run` from a plain thread with its own tokio
/// runtime and engine connection, so that it works from `Drop`, inside or
/// outside an async context. Blocks until done; logs failures.
pub(crate) fn clean_blocking(config: &DockerConfig, run: &RunId) {
    let config = config.clone();
    let scope = CleanScope::Run(run.clone());
    let worker = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return Err(format!("cannot start a tokio runtime: {e}")),
        };
        rt.block_on(async {
            let docker = connect_socket(&config).await.map_err(|e| e.to_string())?;
            clean(&docker, &scope, false)
                .await
                .map_err(|e| e.to_string())
        })
    });
    match worker.join() {
        Ok(Ok(report)) => tracing::info!("removed run {run}: {report:?}"),
        Ok(Err(e)) => tracing::error!("could not remove run {run}: {e}; run `faultline clean`"),
        Err(_) => tracing::error!("clean-up thread of run {run} panicked; run `faultline clean`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_absolute_nodes_dirs_are_removable() {
        assert_eq!(
            removable_nodes_dir("/tmp/runs/r1/nodes"),
            Some(PathBuf::from("/tmp/runs/r1/nodes"))
        );
        assert_eq!(
            removable_nodes_dir("/runs/nodes"),
            Some(PathBuf::from("/runs/nodes"))
        );
        assert_eq!(removable_nodes_dir("/nodes"), None);
        assert_eq!(removable_nodes_dir("runs/r1/nodes"), None);
        assert_eq!(removable_nodes_dir("/runs/r1/../nodes"), None);
        assert_eq!(removable_nodes_dir("/runs/r1/data"), None);
        assert_eq!(removable_nodes_dir("/"), None);
        assert_eq!(removable_nodes_dir(""), None);
    }

    #[test]
    fn not_found_counts_as_removed() {
        let gone = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "No such container".into(),
        };
        let busy = bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message: "conflict".into(),
        };
        assert!(already_gone(&gone));
        assert!(!already_gone(&busy));
    }
}
