//! The node image's root filesystem: which files it holds (pure), its content
//! tag (pure), and the tar that is imported into the engine.
//!
//! The image holds the shared libraries of the node binary and of
//! libfaketime, libfaketime itself, a minimal `/etc` and the mount points;
//! never the node binary, which is bind-mounted read-only at run time so that
//! rebuilding it does not rebuild the image.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where Debian's `libfaketime` package puts the preload library; the image
/// keeps it at the same path.
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Mount point of a node's data dir inside the container.
pub const DATA_MOUNT: &str = "/data";
/// Mount point of a node's clock dir (libfaketime's timestamp file) inside the
/// container.
pub const CLOCK_MOUNT: &str = "/faketime";
/// Folder inside the container where the node binary is bind-mounted.
pub const BINARY_DIR: &str = "/usr/local/bin";

/// Where a node agent (the `faultline` binary) is bind-mounted in a node.
pub const AGENT_MOUNT: &str = "/usr/local/bin/faultline";

/// The fault tools an agent image holds: the path in the image, and where to look for
/// the program on the host (the first that exists is copied, symlinks followed; the
/// iptables multi-binary picks its mode from the name it is run under).
pub const AGENT_TOOLS: &[(&str, &[&str])] = &[
    ("/usr/sbin/nft", &["/usr/sbin/nft", "/sbin/nft"]),
    (
        "/usr/sbin/iptables",
        &["/usr/sbin/iptables", "/sbin/iptables"],
    ),
    (
        "/usr/sbin/iptables-restore",
        &["/usr/sbin/iptables-restore", "/sbin/iptables-restore"],
    ),
    ("/usr/sbin/tc", &["/usr/sbin/tc", "/sbin/tc"]),
    (
        "/usr/sbin/ip",
        &["/usr/sbin/ip", "/usr/bin/ip", "/bin/ip", "/sbin/ip"],
    ),
];

/// The iptables extensions (`libxt_NFQUEUE.so`, `libxt_statistic.so`...) an agent image
/// holds, at the same path.
pub const XTABLES_DIR: &str = "/usr/lib/x86_64-linux-gnu/xtables";

/// The `PATH` of an agent (where [`AGENT_TOOLS`] are).
pub const AGENT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bumped whenever the layout below changes, so that old images are not
/// reused for a new layout.
const LAYOUT_VERSION: &str = "faultline-rootfs/1";

/// One entry of the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsEntry {
    /// A directory with its mode.
    Dir {
        /// Absolute path inside the image.
        path: PathBuf,
        /// Permission bits.
        mode: u32,
    },
    /// A file copied from the host (symlinks followed).
    HostFile {
        /// Absolute path inside the image.
        path: PathBuf,
        /// Where to read it on the host.
        source: PathBuf,
        /// Permission bits.
        mode: u32,
    },
    /// A file with the given text.
    Text {
        /// Absolute path inside the image.
        path: PathBuf,
        /// Its contents.
        contents: String,
    },
}

impl RootfsEntry {
    /// The entry's absolute path inside the image.
    pub fn path(&self) -> &Path {
        match self {
            RootfsEntry::Dir { path, .. }
            | RootfsEntry::HostFile { path, .. }
            | RootfsEntry::Text { path, .. } => path,
        }
    }
}

/// The entries of the image: every parent directory, `/tmp` (mode 1777), the
/// mount points, `/etc/{passwd,group,nsswitch.conf}`, each library at the path
/// `ldd` gave, and libfaketime at `faketime` if given. Sorted by path, so that
/// a directory always comes before what it holds.
pub fn rootfs_plan(libraries: &[PathBuf], faketime: Option<&Path>) -> Vec<RootfsEntry> {
    rootfs_plan_with(libraries, faketime, &[])
}

/// [`rootfs_plan`] plus `extra` programs (path in the image, host file; mode 755) and
/// `/run` (for the tools' lock files): the image of a node agent.
pub fn rootfs_plan_with(
    libraries: &[PathBuf],
    faketime: Option<&Path>,
    extra: &[(PathBuf, PathBuf)],
) -> Vec<RootfsEntry> {
    rootfs_plan_carrying(libraries, faketime, extra, &[])
}

/// `path` without `.` and with each `..` taking the name before it away
/// (`/usr/lib/jvm/x/bin/../lib/libjli.so` → `/usr/lib/jvm/x/lib/libjli.so`, as `ldd`
/// reports a library found through `$ORIGIN/../lib`). A tar entry may not hold `..`.
pub fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// One file of a carried directory tree ([`walk_trees`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedFile {
    /// Its path in the image: the path it was reached by on the host (through
    /// symlinks, which are followed).
    pub path: PathBuf,
    /// The host file whose bytes it gets (the same path; read through its symlinks).
    pub source: PathBuf,
    /// The host file's permission bits.
    pub mode: u32,
    /// Whether it is an ELF object (a program or shared library whose libraries
    /// `ldd` must add to the image).
    pub elf: bool,
}

/// Why a tree cannot be carried.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A root is not an absolute path.
    #[error("{0}: a carried tree must be an absolute path")]
    NotAbsolute(PathBuf),
    /// A root, or something in it, cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Lists the files of `roots` (each a directory or a single file, carried at the
/// same path in the image), following symlinks: a link to a file becomes a copy of
/// that file at the link's path, a link to a directory a copy of its tree. A dangling
/// link, or a link to a directory already on the way down (a cycle), is skipped.
/// Sorted by path, without duplicates.
pub fn walk_trees(roots: &[PathBuf]) -> Result<Vec<CarriedFile>, TreeError> {
    let mut out = Vec::new();
    for root in roots {
        if !root.is_absolute() {
            return Err(TreeError::NotAbsolute(root.clone()));
        }
        let meta = std::fs::metadata(root).map_err(|source| TreeError::Io {
            path: root.clone(),
            source,
        })?;
        let mut chain = Vec::new();
        walk_one(root, &meta, &mut chain, &mut out)?;
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}

fn walk_one(
    path: &Path,
    meta: &std::fs::Metadata,
    chain: &mut Vec<PathBuf>,
    out: &mut Vec<CarriedFile>,
) -> Result<(), TreeError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| TreeError::Io {
        path: path.to_path_buf(),
        source,
    };
    if meta.is_file() {
        out.push(CarriedFile {
            path: path.to_path_buf(),
            source: path.to_path_buf(),
            mode: meta.permissions().mode() & 0o7777,
            elf: is_elf(path),
        });
        return Ok(());
    }
    if !meta.is_dir() {
        // Sockets, fifos, devices: nothing to carry.
        return Ok(());
    }
    let real = std::fs::canonicalize(path).map_err(io)?;
    if chain.contains(&real) {
        tracing::debug!("{}: a link back up its own tree, skipped", path.display());
        return Ok(());
    }
    chain.push(real);
    let mut children: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    children.sort();
    for child in children {
        match std::fs::metadata(&child) {
            Ok(m) => walk_one(&child, &m, chain, out)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!("{}: dangling link, skipped", child.display());
            }
            Err(source) => {
                return Err(TreeError::Io {
                    path: child,
                    source,
                })
            }
        }
    }
    chain.pop();
    Ok(())
}

/// Whether the file starts with the ELF magic number.
fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// [`rootfs_plan_with`] plus the `carried` files of whole directory trees (a runtime
/// such as a JVM with its class libraries), each at its own path with its host mode.
pub fn rootfs_plan_carrying(
    libraries: &[PathBuf],
    faketime: Option<&Path>,
    extra: &[(PathBuf, PathBuf)],
    carried: &[CarriedFile],
) -> Vec<RootfsEntry> {
    let mut files: Vec<RootfsEntry> = libraries
        .iter()
        .filter(|p| p.is_absolute())
        .map(|p| RootfsEntry::HostFile {
            path: lexically_normal(p),
            source: p.clone(),
            mode: 0o755,
        })
        .collect();
    files.extend(extra.iter().map(|(path, source)| RootfsEntry::HostFile {
        path: path.clone(),
        source: source.clone(),
        mode: 0o755,
    }));
    files.extend(carried.iter().map(|c| RootfsEntry::HostFile {
        path: c.path.clone(),
        source: c.source.clone(),
        mode: c.mode,
    }));
    if let Some(lib) = faketime {
        files.push(RootfsEntry::HostFile {
            path: PathBuf::from(FAKETIME_LIB),
            source: lib.to_path_buf(),
            mode: 0o644,
        });
    }
    let texts = [
        ("/etc/passwd", "root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        ("/etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"),
    ];
    files.extend(texts.iter().map(|(path, contents)| RootfsEntry::Text {
        path: PathBuf::from(path),
        contents: contents.to_string(),
    }));

    let mut dirs: Vec<(PathBuf, u32)> = vec![
        (PathBuf::from("/tmp"), 0o1777),
        (PathBuf::from("/root"), 0o700),
        (PathBuf::from(DATA_MOUNT), 0o755),
        (PathBuf::from(CLOCK_MOUNT), 0o755),
        (PathBuf::from(BINARY_DIR), 0o755),
    ];
    if !extra.is_empty() {
        dirs.push((PathBuf::from("/run"), 0o755));
    }
    let mut wanted: Vec<PathBuf> = Vec::new();
    for path in files
        .iter()
        .map(RootfsEntry::path)
        .chain(dirs.iter().map(|(p, _)| p.as_path()))
    {
        let mut parent = path.parent();
        while let Some(p) = parent {
            if p != Path::new("/") && !wanted.iter().any(|w| w == p) {
                wanted.push(p.to_path_buf());
            }
            parent = p.parent();
        }
    }
    for p in wanted {
        if !dirs.iter().any(|(d, _)| *d == p) {
            dirs.push((p, 0o755));
        }
    }
    let mut entries: Vec<RootfsEntry> = dirs
        .into_iter()
        .map(|(path, mode)| RootfsEntry::Dir { path, mode })
        .collect();
    entries.extend(files);
    entries.sort_by(|a, b| a.path().cmp(b.path()));
    entries.dedup_by(|a, b| a.path() == b.path());
    entries
}

/// One entry with its bytes loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedEntry {
    /// Absolute path inside the image.
    pub path: PathBuf,
    /// Permission bits.
    pub mode: u32,
    /// `None` for a directory, the contents for a file.
    pub data: Option<Vec<u8>>,
}

/// Reads the host files of `plan` (following symlinks). Returns the path of
/// the first file that cannot be read with the error.
pub fn load_plan(plan: &[RootfsEntry]) -> Result<Vec<LoadedEntry>, (PathBuf, std::io::Error)> {
    plan.iter()
        .map(|entry| {
            Ok(match entry {
                RootfsEntry::Dir { path, mode } => LoadedEntry {
                    path: path.clone(),
                    mode: *mode,
                    data: None,
                },
                RootfsEntry::HostFile { path, source, mode } => LoadedEntry {
                    path: path.clone(),
                    mode: *mode,
                    data: Some(std::fs::read(source).map_err(|e| (source.clone(), e))?),
                },
                RootfsEntry::Text { path, contents } => LoadedEntry {
                    path: path.clone(),
                    mode: 0o644,
                    data: Some(contents.clone().into_bytes()),
                },
            })
        })
        .collect()
}

/// The image tag for `entries`: the first 16 hex digits of a SHA-256 over the
/// layout version and every entry's path, mode and contents. The same library
/// set gives the same tag, so the image is reused; any change gives a new one.
pub fn content_tag(entries: &[LoadedEntry]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(LAYOUT_VERSION.as_bytes());
    for e in entries {
        hasher.update(b"\0");
        hasher.update(e.path.to_string_lossy().as_bytes());
        hasher.update(e.mode.to_le_bytes());
        match &e.data {
            None => hasher.update(b"d"),
            Some(data) => {
                hasher.update(b"f");
                hasher.update((data.len() as u64).to_le_bytes());
                hasher.update(data);
            }
        }
    }
    let digest = hasher.finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Writes `entries` as an uncompressed tar (paths relative to `/`, owner
/// root, fixed mtime so that the tar is reproducible).
pub fn write_tar(entries: &[LoadedEntry]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let rel = e.path.strip_prefix("/").unwrap_or(&e.path);
        let mut header = tar::Header::new_gnu();
        header.set_mode(e.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match &e.data {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, rel, std::io::empty())?;
            }
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, rel, data.as_slice())?;
            }
        }
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(plan: &[RootfsEntry]) -> Vec<String> {
        plan.iter()
            .map(|e| e.path().display().to_string())
            .collect()
    }

    #[test]
    fn plan_holds_libraries_dirs_and_etc() {
        let libs = vec![
            PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
            PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
        ];
        let plan = rootfs_plan(&libs, Some(Path::new("/opt/ft/libfaketime.so.1")));
        assert_eq!(
            paths(&plan),
            vec![
                "/data",
                "/etc",
                "/etc/group",
                "/etc/nsswitch.conf",
                "/etc/passwd",
                "/faketime",
                "/lib",
                "/lib/x86_64-linux-gnu",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64",
                "/lib64/ld-linux-x86-64.so.2",
                "/root",
                "/tmp",
                "/usr",
                "/usr/lib",
                "/usr/lib/x86_64-linux-gnu",
                "/usr/lib/x86_64-linux-gnu/faketime",
                "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                "/usr/local",
                "/usr/local/bin",
            ]
        );
        let ft = plan.iter().find(|e| e.path() == Path::new(FAKETIME_LIB));
        assert_eq!(
            ft,
            Some(&RootfsEntry::HostFile {
                path: PathBuf::from(FAKETIME_LIB),
                source: PathBuf::from("/opt/ft/libfaketime.so.1"),
                mode: 0o644,
            })
        );
        let tmp = plan.iter().find(|e| e.path() == Path::new("/tmp"));
        assert_eq!(
            tmp,
            Some(&RootfsEntry::Dir {
                path: PathBuf::from("/tmp"),
                mode: 0o1777
            })
        );
    }

    #[test]
    fn plan_without_faketime_has_no_usr_lib() {
        let plan = rootfs_plan(&[PathBuf::from("/lib64/ld-linux-x86-64.so.2")], None);
        assert!(!paths(&plan).iter().any(|p| p.starts_with("/usr/lib")));
        assert!(paths(&plan).contains(&"/usr/local/bin".to_string()));
    }

    fn file(path: &str, data: &[u8]) -> LoadedEntry {
        LoadedEntry {
            path: PathBuf::from(path),
            mode: 0o644,
            data: Some(data.to_vec()),
        }
    }

    #[test]
    fn tag_follows_content() {
        let a = vec![file("/etc/passwd", b"root")];
        let b = vec![file("/etc/passwd", b"root2")];
        let c = vec![file("/etc/group", b"root")];
        assert_eq!(content_tag(&a).len(), 16);
        assert!(content_tag(&a).chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(content_tag(&a), content_tag(&a.clone()));
        assert_ne!(content_tag(&a), content_tag(&b));
        assert_ne!(content_tag(&a), content_tag(&c));
        let mut d = a.clone();
        d[0].mode = 0o755;
        assert_ne!(content_tag(&a), content_tag(&d));
    }

    #[test]
    fn tar_round_trip() {
        let entries = vec![
            LoadedEntry {
                path: PathBuf::from("/tmp"),
                mode: 0o1777,
                data: None,
            },
            file("/etc/passwd", b"root:x:0:0::/:/bin/false\n"),
        ];
        let bytes = write_tar(&entries).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mode = entry.header().mode().unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            seen.push((path, mode, text));
        }
        assert_eq!(
            seen,
            vec![
                ("tmp".to_string(), 0o1777, String::new()),
                (
                    "etc/passwd".to_string(),
                    0o644,
                    "root:x:0:0::/:/bin/false\n".to_string()
                ),
            ]
        );
        assert_eq!(
            write_tar(&entries).unwrap(),
            bytes,
            "tar must be reproducible"
        );
    }

    #[test]
    fn library_paths_through_origin_are_normalised() {
        assert_eq!(
            lexically_normal(Path::new("/usr/lib/jvm/x/bin/../lib/./libjli.so")),
            PathBuf::from("/usr/lib/jvm/x/lib/libjli.so")
        );
        let plan = rootfs_plan(&[PathBuf::from("/opt/j/bin/../lib/libjli.so")], None);
        assert!(plan.iter().any(|e| *e
            == RootfsEntry::HostFile {
                path: PathBuf::from("/opt/j/lib/libjli.so"),
                source: PathBuf::from("/opt/j/bin/../lib/libjli.so"),
                mode: 0o755,
            }));
        assert!(!paths(&plan).iter().any(|p| p.contains("..")));
    }

    #[test]
    fn trees_are_walked_through_their_links() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let root = std::env::temp_dir().join(format!("fl-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let outside = root.join("etc-like");
        let tree = root.join("jvm");
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        std::fs::create_dir_all(tree.join("lib/sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(tree.join("bin/java"), b"\x7fELF rest").unwrap();
        std::fs::set_permissions(
            tree.join("bin/java"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(tree.join("lib/sub/modules"), b"classes").unwrap();
        std::fs::set_permissions(
            tree.join("lib/sub/modules"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(outside.join("jvm.cfg"), b"-server KNOWN").unwrap();
        std::fs::set_permissions(
            outside.join("jvm.cfg"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        // A link to a file outside, a link to a directory, a dangling link, a cycle.
        symlink(outside.join("jvm.cfg"), tree.join("lib/jvm.cfg")).unwrap();
        symlink(&outside, tree.join("conf")).unwrap();
        symlink(root.join("missing"), tree.join("lib/src.zip")).unwrap();
        symlink(&tree, tree.join("lib/sub/loop")).unwrap();
        let files = walk_trees(std::slice::from_ref(&tree)).unwrap();
        let rel: Vec<(String, u32, bool)> = files
            .iter()
            .map(|f| {
                (
                    f.path.strip_prefix(&tree).unwrap().display().to_string(),
                    f.mode,
                    f.elf,
                )
            })
            .collect();
        assert_eq!(
            rel,
            vec![
                ("bin/java".to_string(), 0o755, true),
                ("conf/jvm.cfg".to_string(), 0o640, false),
                ("lib/jvm.cfg".to_string(), 0o640, false),
                ("lib/sub/modules".to_string(), 0o644, false),
            ]
        );
        // A single file is a tree of one; a relative or missing root is refused.
        let one = walk_trees(&[tree.join("bin/java")]).unwrap();
        assert_eq!(one.len(), 1);
        assert!(matches!(
            walk_trees(&[PathBuf::from("relative/dir")]),
            Err(TreeError::NotAbsolute(_))
        ));
        assert!(matches!(
            walk_trees(&[root.join("missing")]),
            Err(TreeError::Io { .. })
        ));
        // The plan carries each file at its path, with its mode, parents included.
        let plan = rootfs_plan_carrying(&[], None, &[], &files);
        let java = plan
            .iter()
            .find(|e| e.path() == tree.join("bin/java"))
            .cloned();
        assert_eq!(
            java,
            Some(RootfsEntry::HostFile {
                path: tree.join("bin/java"),
                source: tree.join("bin/java"),
                mode: 0o755,
            })
        );
        assert!(plan
            .iter()
            .any(|e| matches!(e, RootfsEntry::Dir { path, .. } if *path == tree.join("conf"))));
        let loaded = load_plan(&plan).unwrap();
        let cfg = loaded
            .iter()
            .find(|e| e.path == tree.join("conf/jvm.cfg"))
            .and_then(|e| e.data.clone());
        assert_eq!(cfg.as_deref(), Some(&b"-server KNOWN"[..]));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
