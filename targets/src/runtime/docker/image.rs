//! Preparing the node base image offline: list the libraries, build the
//! rootfs tar, import it with `POST /images/create?fromSrc=-` under a content
//! tag, or reuse the image with that tag.

use std::path::{Path, PathBuf};

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::{body_full, Docker};
use futures_util::TryStreamExt;

use crate::runtime::ldd::{library_union, run_ldd};
use crate::runtime::names::LABEL_FAULTLINE;
use crate::runtime::rootfs::{
    content_tag, load_plan, rootfs_plan_carrying, walk_trees, write_tar, AGENT_TOOLS, XTABLES_DIR,
};
use crate::runtime::spec::{Capabilities, ImageSpec, PreparedImage};
use crate::runtime::RuntimeError;

/// Decides whether clock faults are possible from the libfaketime path asked
/// for, whether that file exists and whether the node binary is static (a
/// static binary ignores `LD_PRELOAD`). Returns the library to put in the
/// image. Pure.
pub(crate) fn faketime_choice(
    asked: Option<&Path>,
    exists: bool,
    statically_linked: bool,
) -> (Option<PathBuf>, Capabilities) {
    match asked {
        Some(_) if statically_linked => (
            None,
            Capabilities {
                clock_faults: false,
                clock_faults_unavailable: Some(
                    "the node binary is statically linked, so libfaketime cannot be preloaded; \
                     build it dynamically linked against glibc"
                        .into(),
                ),
                ..Capabilities::default()
            },
        ),
        None => (
            None,
            Capabilities {
                clock_faults: false,
                clock_faults_unavailable: Some("libfaketime was not requested".into()),
                ..Capabilities::default()
            },
        ),
        Some(path) if !exists => (
            None,
            Capabilities {
                clock_faults: false,
                clock_faults_unavailable: Some(format!(
                    "{} not found: install the libfaketime package (apt-get install libfaketime)",
                    path.display()
                )),
                ..Capabilities::default()
            },
        ),
        Some(path) => (
            Some(path.to_path_buf()),
            Capabilities {
                clock_faults: true,
                ..Capabilities::default()
            },
        ),
    }
}

/// Serialises imports within the process.
static IMPORT_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Builds or reuses the base image for `spec`.
pub(crate) async fn prepare_image(
    docker: &Docker,
    spec: &ImageSpec,
) -> Result<PreparedImage, RuntimeError> {
    if !spec.binary.is_file() {
        return Err(RuntimeError::io(
            &spec.binary,
            std::io::Error::new(std::io::ErrorKind::NotFound, "node binary not found"),
        ));
    }
    let binary_libs = run_ldd(&spec.binary).await?;
    let exists = spec.faketime_lib.as_deref().is_some_and(Path::is_file);
    let (faketime, mut capabilities) = faketime_choice(
        spec.faketime_lib.as_deref(),
        exists,
        binary_libs.statically_linked,
    );
    // Under the agent, the running program itself tells whether it loaded the library
    // (a stronger check than the library being in the image).
    capabilities.clock_confirm_by_agent = capabilities.clock_faults && spec.agent.is_some();
    if let Some(reason) = &capabilities.clock_faults_unavailable {
        tracing::warn!("clock faults unavailable: {reason}");
    }
    let mut reports = vec![binary_libs];
    if let Some(lib) = &faketime {
        reports.push(run_ldd(lib).await?);
    }
    let mut extra = Vec::new();
    if let Some(agent) = &spec.agent {
        reports.push(run_ldd(agent).await?);
        for (path, candidates) in AGENT_TOOLS {
            let Some(host) = candidates
                .iter()
                .map(Path::new)
                .find(|p| p.is_file())
                .and_then(|p| p.canonicalize().ok())
            else {
                tracing::warn!("{path} is not installed here: node agents will lack it");
                continue;
            };
            reports.push(run_ldd(&host).await?);
            extra.push((PathBuf::from(path), host));
        }
        let mut modules: Vec<PathBuf> = std::fs::read_dir(XTABLES_DIR)
            .map(|dir| {
                dir.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "so"))
                    .collect()
            })
            .unwrap_or_default();
        modules.sort();
        for m in modules {
            reports.push(run_ldd(&m).await?);
            extra.push((m.clone(), m));
        }
    }
    let carried = walk_trees(&spec.trees)?;
    for file in carried.iter().filter(|f| f.elf) {
        // A library of the tree that needs what this host lacks (a JVM's X11 toolkit
        // on a headless machine) is one the program does not load here: carried
        // without its dependencies.
        match run_ldd(&file.source).await {
            Ok(report) => reports.push(report),
            Err(e) => tracing::debug!("{}: {e}", file.source.display()),
        }
    }
    let libraries = library_union(&reports);
    let plan = rootfs_plan_carrying(&libraries, faketime.as_deref(), &extra, &carried);
    let entries = load_plan(&plan).map_err(|(path, e)| RuntimeError::io(path, e))?;
    let tag = content_tag(&entries);
    let reference = format!("{}:{tag}", spec.repository);

    // One import at a time in this process: two concurrent imports of the
    // same content would leave an untagged image behind.
    let _guard = IMPORT_LOCK.lock().await;
    if docker.inspect_image(&reference).await.is_ok() {
        tracing::debug!("reusing image {reference}");
        remove_untagged(docker).await;
        return Ok(PreparedImage {
            reference,
            reused: true,
            libraries,
            capabilities,
        });
    }

    let tar = write_tar(&entries).map_err(|e| RuntimeError::io("<rootfs tar>", e))?;
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(&spec.repository)
        .tag(&tag)
        .changes(vec![format!("LABEL {LABEL_FAULTLINE}=1")])
        .build();
    let op = format!("import image {reference}");
    let progress: Vec<_> = docker
        .create_image(Some(options), Some(body_full(tar.into())), None)
        .try_collect()
        .await
        .map_err(|e| RuntimeError::engine(op.clone(), e))?;
    if let Some(err) = progress.iter().find_map(|p| p.error_detail.as_ref()) {
        return Err(RuntimeError::engine(
            op,
            err.message
                .clone()
                .unwrap_or_else(|| "import failed".into()),
        ));
    }
    // The import answers before the tag is visible on some engines: confirm.
    docker
        .inspect_image(&reference)
        .await
        .map_err(|e| RuntimeError::engine(format!("inspect imported image {reference}"), e))?;
    remove_untagged(docker).await;
    Ok(PreparedImage {
        reference,
        reused: false,
        libraries,
        capabilities,
    })
}

/// Removes untagged base images: another process importing the same content at the
/// same time (the import lock is this process's only) leaves the image that lost the tag
/// untagged. One still in use is kept; a failure is only logged.
async fn remove_untagged(docker: &Docker) {
    let mut removed = crate::runtime::CleanReport::default();
    if let Err(e) = super::clean::remove_dangling_images(docker, &mut removed).await {
        tracing::warn!("cannot remove untagged base images: {e}");
    } else if !removed.images.is_empty() {
        tracing::debug!("removed untagged base images {:?}", removed.images);
    }
}

/// An image the engine already has, used as it is: checked to exist, nothing built.
/// Clock faults are off (the image is not known to hold libfaketime).
pub(crate) async fn existing_image(
    docker: &Docker,
    reference: &str,
) -> Result<PreparedImage, RuntimeError> {
    docker.inspect_image(reference).await.map_err(|e| {
        RuntimeError::engine(
            format!("inspect image {reference} (build or load it first: nothing is pulled)"),
            e,
        )
    })?;
    Ok(PreparedImage::as_is(reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faketime_choices() {
        let (lib, caps) = faketime_choice(Some(Path::new("/x/libfaketime.so.1")), true, false);
        assert_eq!(lib, Some(PathBuf::from("/x/libfaketime.so.1")));
        assert_eq!(
            caps,
            Capabilities {
                clock_faults: true,
                ..Capabilities::default()
            }
        );

        let (lib, caps) = faketime_choice(Some(Path::new("/x/libfaketime.so.1")), false, false);
        assert_eq!(lib, None);
        assert!(!caps.clock_faults);
        let reason = caps.clock_faults_unavailable.unwrap();
        assert!(reason.contains("/x/libfaketime.so.1 not found"), "{reason}");
        assert!(reason.contains("apt-get install libfaketime"), "{reason}");

        let (lib, caps) = faketime_choice(None, false, false);
        assert_eq!(lib, None);
        assert!(!caps.clock_faults);

        let (lib, caps) = faketime_choice(Some(Path::new("/x/libfaketime.so.1")), true, true);
        assert_eq!(lib, None);
        assert!(!caps.clock_faults);
        let reason = caps.clock_faults_unavailable.unwrap();
        assert!(reason.contains("statically linked"), "{reason}");
    }
}
