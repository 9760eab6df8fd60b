//! The faultline harness: the `faultline` binary's commands, kept out of `main.rs` so that
//! `main` stays a thin dispatcher and every part can be tested.
//!
//! - [`analyze_cmd`]: `faultline analyze`, checking a stored run again;
//! - [`check`]: `faultline check`, checking recorded or imported histories;
//! - [`test_cmd`]: `faultline test`, one campaign against a local cluster;
//! - [`verify_cmd`]: `faultline verify`, several campaigns and what held throughout;
//! - [`series`]: a `verify` series as data: shards, the series document, merging;
//! - [`targets_cmd`]: `faultline targets` and `faultline target check FILE`;
//! - [`clean_cmd`]: `faultline clean`, removing leftovers of runs whose harness is gone;
//! - [`agent_cmd`]: `faultline agent`, the node agent (a node's entry point), and
//!   [`reaper`], its reaping of orphaned processes;
//! - [`k8s_cmd`]: `faultline k8s manifest`, the Job (and RBAC) that runs the harness
//!   in a Kubernetes cluster;
//! - [`report_cmd`]: `faultline report`, re-rendering a stored run's reports;
//! - [`export_cmd`]: `faultline export`, histories for Jepsen's tools and Porcupine;
//! - [`docs_cmd`]: `faultline completions` and `faultline man`;
//! - [`gen_cmd`]: `faultline gen`, seeded synthetic histories;
//! - [`serve`]: `faultline serve`, browsing the store over HTTP;
//! - [`reporting`]: verdicts into `verdict.json` and the reports;
//! - [`campaign`]: the pieces of a campaign (plan, generator, recorder, workers, nemesis
//!   driver, checks, run folder, runner);
//! - [`args`]: parsers of the numeric flags (each refusal says the allowed range);
//! - [`exit`]: Jepsen's exit codes;
//! - [`out`]: the terminal edge (printing that survives a closed pipe).

#[macro_use]
pub mod out;
pub mod agent_cmd;
pub mod analyze_cmd;
pub mod args;
pub mod campaign;
pub mod check;
pub mod clean_cmd;
pub mod docs_cmd;
pub mod exit;
pub mod export_cmd;
pub mod gen_cmd;
pub mod k8s_cmd;
pub mod reaper;
pub mod report_cmd;
pub mod reporting;
pub mod series;
pub mod serve;
pub mod targets_cmd;
pub mod test_cmd;
pub mod verify_cmd;
