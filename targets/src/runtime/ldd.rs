//! The shared-library closure of a binary, from `ldd`'s output.
//!
//! [`parse_ldd`] is pure and tested with literal output; [`run_ldd`] only runs
//! the program.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// What `ldd` said about one file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LddReport {
    /// Absolute paths of the libraries the file loads, the dynamic loader
    /// included, in `ldd`'s order, without duplicates. Empty for a static file.
    pub libraries: Vec<PathBuf>,
    /// Whether `ldd` called the file "not a dynamic executable" or
    /// "statically linked".
    pub statically_linked: bool,
}

/// `ldd`'s output could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LddError {
    /// Some libraries cannot be found on this host.
    #[error("libraries not found on this host: {}", .0.join(", "))]
    NotFound(Vec<String>),
    /// A line matches none of `ldd`'s forms.
    #[error("unexpected ldd output line: {0:?}")]
    Unrecognised(String),
}

/// Parses the output of `ldd FILE` (standard output and error together).
///
/// Understood lines: `name => /path (0x...)`, `/path (0x...)` (the loader),
/// `linux-vdso.so.1 (0x...)` (virtual, skipped), `name => not found`,
/// `not a dynamic executable` and `statically linked`.
pub fn parse_ldd(output: &str) -> Result<LddReport, LddError> {
    let mut report = LddReport::default();
    let mut missing = Vec::new();
    for raw in output.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.ends_with("not a dynamic executable") || line == "statically linked" {
            report.statically_linked = true;
            continue;
        }
        let path = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    missing.push(name.trim().to_string());
                    continue;
                }
                // "=> (0x...)" names a virtual object with no file.
                match target.split_whitespace().next() {
                    Some(p) if p.starts_with('/') => p.to_string(),
                    Some(p) if p.starts_with("(0x") => continue,
                    _ => return Err(LddError::Unrecognised(raw.to_string())),
                }
            }
            None => {
                let first = line.split_whitespace().next().unwrap_or_default();
                if first.starts_with('/') {
                    first.to_string()
                } else if line.contains("(0x") {
                    // linux-vdso.so.1, linux-gate.so.1: provided by the kernel.
                    continue;
                } else {
                    return Err(LddError::Unrecognised(raw.to_string()));
                }
            }
        };
        let path = PathBuf::from(path);
        if !report.libraries.contains(&path) {
            report.libraries.push(path);
        }
    }
    if !missing.is_empty() {
        return Err(LddError::NotFound(missing));
    }
    Ok(report)
}

/// Merges several reports' libraries into one sorted list without duplicates.
pub fn library_union<'a>(reports: impl IntoIterator<Item = &'a LddReport>) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = reports
        .into_iter()
        .flat_map(|r| r.libraries.iter().cloned())
        .collect();
    all.sort();
    all.dedup();
    all
}

/// Runs `ldd` on `file` and parses its output. Errors say whether `ldd`
/// itself could not run (install `libc-bin`) or what it reported.
pub async fn run_ldd(file: &Path) -> Result<LddReport, RunLddError> {
    let output = tokio::process::Command::new("ldd")
        .arg(file)
        .output()
        .await
        .map_err(|source| RunLddError::Spawn {
            file: file.to_path_buf(),
            source,
        })?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let report = parse_ldd(&text).map_err(|source| RunLddError::Output {
        file: file.to_path_buf(),
        source,
    })?;
    if !output.status.success() && !report.statically_linked {
        return Err(RunLddError::Failed {
            file: file.to_path_buf(),
            output: text.trim().to_string(),
        });
    }
    Ok(report)
}

/// Running `ldd` failed.
#[derive(Debug, Error)]
pub enum RunLddError {
    /// The program could not be started.
    #[error("cannot run ldd on {file}: {source} (ldd comes with the libc-bin package)")]
    Spawn {
        /// The file given to ldd.
        file: PathBuf,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// ldd ran and failed.
    #[error("ldd failed on {file}: {output}")]
    Failed {
        /// The file given to ldd.
        file: PathBuf,
        /// What it printed.
        output: String,
    },
    /// ldd's output could not be used.
    #[error("ldd on {file}: {source}")]
    Output {
        /// The file given to ldd.
        file: PathBuf,
        /// The parse error.
        source: LddError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS: &str = "\tlinux-vdso.so.1 (0x00007f51612d5000)
\tlibselinux.so.1 => /lib/x86_64-linux-gnu/libselinux.so.1 (0x00007f5161270000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f516108e000)
\tlibpcre2-8.so.0 => /lib/x86_64-linux-gnu/libpcre2-8.so.0 (0x00007f5160ff4000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f51612d7000)
";

    const FAKETIME: &str = "\tlinux-vdso.so.1 (0x00007fd3bb2bb000)
\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007fd3bb1b5000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fd3bafd3000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fd3bb2bd000)
";

    #[test]
    fn dynamic_binary() {
        let r = parse_ldd(LS).unwrap();
        assert!(!r.statically_linked);
        assert_eq!(
            r.libraries,
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libselinux.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib/x86_64-linux-gnu/libpcre2-8.so.0"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn union_of_binary_and_faketime() {
        let a = parse_ldd(LS).unwrap();
        let b = parse_ldd(FAKETIME).unwrap();
        let all = library_union([&a, &b]);
        assert_eq!(
            all,
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib/x86_64-linux-gnu/libm.so.6"),
                PathBuf::from("/lib/x86_64-linux-gnu/libpcre2-8.so.0"),
                PathBuf::from("/lib/x86_64-linux-gnu/libselinux.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn static_binary() {
        let r = parse_ldd("\tnot a dynamic executable\n").unwrap();
        assert!(r.statically_linked);
        assert!(r.libraries.is_empty());
        let r = parse_ldd("\tstatically linked\n").unwrap();
        assert!(r.statically_linked);
    }

    #[test]
    fn missing_libraries_are_reported() {
        let out = "\tlibfoo.so.2 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n\tlibbar.so => not found\n";
        assert_eq!(
            parse_ldd(out),
            Err(LddError::NotFound(vec![
                "libfoo.so.2".into(),
                "libbar.so".into()
            ]))
        );
    }

    #[test]
    fn duplicates_and_garbage() {
        let out = "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n";
        assert_eq!(parse_ldd(out).unwrap().libraries.len(), 1);
        assert_eq!(
            parse_ldd("something odd\n"),
            Err(LddError::Unrecognised("something odd".into()))
        );
    }
}
