//! Target files: a system under test described in TOML instead of Rust (see
//! `docs/target-file.md`). [`TargetFile::load`] reads and checks a file once; every
//! mistake is a [`FileError`] naming the file, the line, the column and the field.
//! A loaded file is one more [`Target`]: the harness treats it like a built-in.

mod load;
mod place;
mod raw;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::adapter_client::{AdapterClient, AdapterSpec};
use crate::client::NodeClient;
use crate::runtime::ReadyProbe;
use crate::target::{
    ClaimContext, Claims, Client, ClientContext, DeployContext, Program, SwitchableFault, Target,
    TargetError,
};
use template::Template;

/// The version of the target file format this build reads.
pub const FORMAT_VERSION: i64 = 1;

/// A target file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The file is not a valid target file.
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// The dotted field name (`node.port`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// How a file's nodes say they are ready.
#[derive(Debug, Clone)]
enum Readiness {
    Http(String),
    Tcp(u16),
    Command(Vec<Template>),
}

/// How a file's client asks a node whether it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leader {
    None,
    Http(String),
    Adapter,
}

/// The client a file asks for.
#[derive(Debug, Clone)]
enum ClientKind {
    HttpKv,
    Adapter(Vec<Template>),
}

/// One `[[claims]]` entry.
#[derive(Debug, Clone)]
struct Claim {
    when: Vec<(String, String)>,
    models: Vec<String>,
    reason: String,
}

/// One `[options.NAME]` table.
#[derive(Debug, Clone)]
struct OptionSpec {
    values: Vec<String>,
    default: String,
    description: Option<String>,
}

/// What switching a planted fault on adds to the node.
#[derive(Debug, Clone)]
struct FaultSwitch {
    args: Vec<Template>,
    env: Vec<(String, Template)>,
}

/// A target described by a file.
#[derive(Debug, Clone)]
pub struct TargetFile {
    path: PathBuf,
    dir: PathBuf,
    name: String,
    description: String,
    program: Program,
    command: Vec<Template>,
    env: Vec<(String, Template)>,
    node_port: u16,
    client_port: u16,
    min_nodes: usize,
    default_nodes: usize,
    peer_format: Template,
    peer_separator: String,
    readiness: Readiness,
    leader: Leader,
    clock: Result<(), String>,
    client: ClientKind,
    cas: bool,
    claims: Vec<Claim>,
    options: BTreeMap<String, OptionSpec>,
    faults: Vec<SwitchableFault>,
    switches: BTreeMap<String, FaultSwitch>,
}

impl TargetFile {
    /// Reads and checks the target file at `path`. `known_models` are the model names its
    /// claims may use (the checkers' names; this crate does not know them).
    pub fn load(path: &Path, known_models: &[&str]) -> Result<TargetFile, FileError> {
        let text = std::fs::read_to_string(path).map_err(|e| FileError::Read {
            path: path.to_path_buf(),
            message: format!("cannot read the target file: {e}"),
        })?;
        Self::parse(path, &text, known_models)
    }

    /// Checks `text` as the target file at `path` (relative paths in it are taken from
    /// `path`'s folder).
    pub fn parse(path: &Path, text: &str, known_models: &[&str]) -> Result<TargetFile, FileError> {
        load::parse(path, text, known_models)
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The target options, one line each: `reads = linearizable | serializable (default
    /// linearizable): what it does`.
    pub fn option_lines(&self) -> Vec<String> {
        self.options
            .iter()
            .map(|(k, o)| {
                format!(
                    "{k} = {} (default {}){}",
                    o.values.join(" | "),
                    o.default,
                    o.description
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    /// Every claims entry: the options it applies under (empty: the default) and its
    /// models.
    pub fn claim_lines(&self) -> Vec<(String, Vec<String>)> {
        self.claims
            .iter()
            .map(|c| {
                let when: Vec<String> = c.when.iter().map(|(k, v)| format!("{k}={v}")).collect();
                (when.join(","), c.models.clone())
            })
            .collect()
    }

    /// The options with their values, defaults filled in.
    fn effective_options(
        &self,
        given: Option<&BTreeMap<String, String>>,
    ) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .options
            .iter()
            .map(|(k, o)| (k.clone(), o.default.clone()))
            .collect();
        if let Some(g) = given {
            for (k, v) in g {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// The values of every placeholder for the node of `ctx`.
    fn node_vars(&self, ctx: &DeployContext<'_>) -> BTreeMap<String, String> {
        let port = self.node_port.to_string();
        let peer = |i: usize, ip: &String| {
            let vars: BTreeMap<String, String> = [
                ("name", crate::target::node_name(i)),
                ("index", i.to_string()),
                ("id", (i + 1).to_string()),
                ("ip", ip.to_string()),
                ("port", port.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            self.peer_format.fill(&vars)
        };
        let list = |f: &dyn Fn(usize, &String) -> String| {
            ctx.hosts
                .iter()
                .enumerate()
                .map(|(i, ip)| f(i, ip))
                .collect::<Vec<_>>()
        };
        let mut vars: BTreeMap<String, String> = [
            ("name", ctx.name()),
            ("index", ctx.index.to_string()),
            ("id", (ctx.index + 1).to_string()),
            ("ip", ctx.host().to_string()),
            ("port", port.clone()),
            ("peers", list(&peer).join(&self.peer_separator)),
            ("peer_ips", list(&|_, ip| ip.to_string()).join(",")),
            (
                "peer_addrs",
                list(&|_, ip| format!("{ip}:{port}")).join(","),
            ),
            (
                "peer_names",
                list(&|i, _| crate::target::node_name(i)).join(","),
            ),
            ("nodes", ctx.hosts.len().to_string()),
            ("data_dir", ctx.data_dir.to_string()),
            ("token", ctx.token.to_string()),
            ("request_timeout_ms", ctx.request_timeout_ms.to_string()),
            ("target_dir", self.dir.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in self.effective_options(Some(ctx.options)) {
            vars.insert(format!("option.{k}"), v);
        }
        vars
    }
}

impl Target for TargetFile {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn program(&self) -> Program {
        self.program.clone()
    }
    fn clock_faults(&self) -> Result<(), String> {
        self.clock.clone()
    }
    fn has_leader(&self) -> bool {
        self.leader != Leader::None
    }
    fn port(&self) -> u16 {
        self.client_port
    }
    fn ready_probe(&self, ctx: &DeployContext<'_>) -> ReadyProbe {
        match &self.readiness {
            Readiness::Http(path) => ReadyProbe::Http {
                port: self.node_port,
                path: path.clone(),
            },
            Readiness::Tcp(port) => ReadyProbe::Tcp { port: *port },
            Readiness::Command(argv) => {
                let vars = self.node_vars(ctx);
                ReadyProbe::Command {
                    argv: argv.iter().map(|t| t.fill(&vars)).collect(),
                }
            }
        }
    }
    fn min_nodes(&self) -> usize {
        self.min_nodes
    }
    fn default_nodes(&self) -> usize {
        self.default_nodes
    }
    fn node_args(&self, ctx: &DeployContext<'_>) -> Vec<String> {
        let vars = self.node_vars(ctx);
        let mut args: Vec<String> = self.command.iter().map(|t| t.fill(&vars)).collect();
        for f in ctx.faults {
            if let Some(s) = self.switches.get(f) {
                args.extend(s.args.iter().map(|t| t.fill(&vars)));
            }
        }
        args
    }
    fn node_env(&self, ctx: &DeployContext<'_>) -> Vec<(String, String)> {
        let vars = self.node_vars(ctx);
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, t)| (k.clone(), t.fill(&vars)))
            .collect();
        for f in ctx.faults {
            if let Some(s) = self.switches.get(f) {
                env.extend(s.env.iter().map(|(k, t)| (k.clone(), t.fill(&vars))));
            }
        }
        env
    }
    fn offers_cas(&self) -> bool {
        self.cas
    }
    fn faults(&self) -> &[SwitchableFault] {
        &self.faults
    }
    fn check_options(
        &self,
        options: &BTreeMap<String, String>,
        _nodes: usize,
    ) -> Result<(), TargetError> {
        for (k, v) in options {
            let bad = |message: String| TargetError::BadOption {
                target: self.name.clone(),
                message,
            };
            let Some(spec) = self.options.get(k) else {
                let known: Vec<&str> = self.options.keys().map(String::as_str).collect();
                return Err(bad(format!(
                    "unknown option {k:?} ({} takes {})",
                    self.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            };
            if !spec.values.contains(v) {
                return Err(bad(format!(
                    "{k}={v}: must be one of {}",
                    spec.values.join(", ")
                )));
            }
        }
        Ok(())
    }
    fn claims(&self, ctx: &ClaimContext<'_>) -> Claims {
        let options = self.effective_options(ctx.options);
        let matches = |c: &Claim| {
            c.when
                .iter()
                .all(|(k, v)| options.get(k).is_some_and(|o| o == v))
        };
        let chosen = self
            .claims
            .iter()
            .find(|c| !c.when.is_empty() && matches(c))
            .or_else(|| self.claims.iter().find(|c| c.when.is_empty()));
        match chosen {
            Some(c) => Claims {
                models: c.models.clone(),
                reason: c.reason.clone(),
            },
            None => Claims {
                models: Vec::new(),
                reason: format!(
                    "no [[claims]] entry of {} applies to these options",
                    self.path.display()
                ),
            },
        }
    }
    fn client(&self, ctx: &ClientContext<'_>) -> Result<Arc<dyn Client>, TargetError> {
        match &self.client {
            ClientKind::HttpKv => {
                let mut c = NodeClient::new(ctx.node, ctx.addr, ctx.timeout)?;
                if let Leader::Http(path) = &self.leader {
                    c = c.with_status_path(path);
                }
                Ok(Arc::new(c))
            }
            ClientKind::Adapter(command) => {
                let vars: BTreeMap<String, String> = [
                    ("name", ctx.node.to_string()),
                    ("ip", ctx.addr.ip().to_string()),
                    ("port", ctx.addr.port().to_string()),
                    ("target_dir", self.dir.display().to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .chain(
                    self.effective_options(Some(ctx.options))
                        .into_iter()
                        .map(|(k, v)| (format!("option.{k}"), v)),
                )
                .collect();
                let mut env = vec![
                    ("FAULTLINE_NODE".to_string(), ctx.node.to_string()),
                    ("FAULTLINE_NODE_ADDR".to_string(), ctx.addr.to_string()),
                    ("FAULTLINE_NODE_IP".to_string(), ctx.addr.ip().to_string()),
                    (
                        "FAULTLINE_NODE_PORT".to_string(),
                        ctx.addr.port().to_string(),
                    ),
                    (
                        "FAULTLINE_TIMEOUT_MS".to_string(),
                        ctx.timeout.as_millis().to_string(),
                    ),
                ];
                for (k, v) in self.effective_options(Some(ctx.options)) {
                    env.push((option_env(&k), v));
                }
                let spec = AdapterSpec {
                    argv: command.iter().map(|t| t.fill(&vars)).collect(),
                    env,
                    cwd: self.dir.clone(),
                    reply_timeout: ctx.timeout + Duration::from_secs(2),
                    start_grace: Duration::from_secs(5),
                    stderr_log: ctx.log_dir.join(format!("adapter-{}.stderr", ctx.node)),
                };
                let client = AdapterClient::new(ctx.node, spec)?;
                if self.leader == Leader::Adapter {
                    client.warm_role();
                }
                Ok(Arc::new(client))
            }
        }
    }
}

/// The environment variable an option reaches an adapter through: `reads` ->
/// `FAULTLINE_OPTION_READS` (letters upper-cased, anything else `_`).
pub fn option_env(name: &str) -> String {
    let up: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("FAULTLINE_OPTION_{up}")
}

#[cfg(test)]
mod tests;
