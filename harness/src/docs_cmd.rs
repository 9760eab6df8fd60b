//! `faultline completions SHELL` and `faultline man`: shell completions and a man page,
//! generated from the command line's own definitions (so they never drift from it).

use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `faultline completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `faultline man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write faultline.1 and one page per command (faultline-test.1, ...) into this
    /// folder instead of printing faultline.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script of `cmd` for the shell asked.
pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> Result<u8> {
    let mut bytes = Vec::new();
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, &mut bytes);
    print(&bytes)
}

/// Prints the man page of `cmd`, or writes every page into a folder.
pub fn man(args: ManArgs, cmd: clap::Command) -> Result<u8> {
    match args.out_dir {
        None => {
            let mut bytes = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut bytes)?;
            print(&bytes)
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("write the man pages into {}", dir.display()))?;
            outln!("{}", dir.display());
            Ok(crate::exit::VALID)
        }
    }
}

fn print(bytes: &[u8]) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(crate::exit::VALID),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(crate::exit::VALID),
        Err(e) => Err(e).context("write to standard output"),
    }
}
