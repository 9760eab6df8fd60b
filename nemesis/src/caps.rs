//! What this machine can do: the capability probe, and the check that refuses a fault
//! list the machine cannot run, naming what is missing and how to get it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::clock::find_libfaketime;
use crate::exec::{available, run, run_in_netns};
use crate::{Family, Missing, NemesisError};

/// The tools and kernel features the mechanisms rely on, as found by [`Capabilities::probe`].
/// Serialisable, to be recorded with the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Running with effective uid 0 (entering namespaces and changing rules needs it).
    pub root: bool,
    /// `nsenter` runs.
    pub nsenter: bool,
    /// `nft` runs (the preferred packet-filter backend).
    pub nft: bool,
    /// `iptables` and `iptables-restore` run (the fallback backend).
    pub iptables: bool,
    /// `ip` (iproute2) runs.
    pub ip: bool,
    /// `tc` runs.
    pub tc: bool,
    /// The kernel accepts a netem qdisc (probed in a throw-away network namespace).
    pub netem: bool,
    /// The kernel accepts a tbf qdisc (probed the same way).
    pub tbf: bool,
    /// Where `libfaketime.so.1` is, if installed.
    pub libfaketime: Option<PathBuf>,
}

/// The packet-filter backend the partition and loss mechanisms use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetBackend {
    /// `nft` with the table `inet faultline`.
    Nft,
    /// `iptables` with the chain `FAULTLINE`, jumped to from INPUT.
    Iptables,
}

impl Capabilities {
    /// Probes the machine: which tools run, whether the kernel has netem, where
    /// libfaketime is, and whether we are root. Never fails: what cannot be found is absent.
    pub async fn probe() -> Capabilities {
        let root = effective_uid_is_root();
        let nsenter = available("nsenter", &["--version"]).await;
        let nft = available("nft", &["--version"]).await;
        let iptables = available("iptables", &["--version"]).await
            && available("iptables-restore", &["--version"]).await;
        let ip = available("ip", &["-V"]).await;
        let tc = available("tc", &["-V"]).await;
        let (netem, tbf) = if root && ip && tc && nsenter {
            probe_qdiscs().await
        } else {
            (false, false)
        };
        Capabilities {
            root,
            nsenter,
            nft,
            iptables,
            ip,
            tc,
            netem,
            tbf,
            libfaketime: find_libfaketime(),
        }
    }

    /// The backend for partitions and loss: nft when it runs, else iptables, else none.
    pub fn net_backend(&self) -> Option<NetBackend> {
        if self.nft {
            Some(NetBackend::Nft)
        } else if self.iptables {
            Some(NetBackend::Iptables)
        } else {
            None
        }
    }

    /// What the given fault families need that this machine lacks (empty: all can run).
    /// Kill and pause need nothing here: the runtime implements them.
    pub fn missing(&self, families: &[Family]) -> Vec<Missing> {
        let mut out = Vec::new();
        let mut need = |family: Family, what: &str, how: &str| {
            let m = Missing {
                needed_by: family.name().to_string(),
                what: what.to_string(),
                how: how.to_string(),
            };
            if !out.contains(&m) {
                out.push(m);
            }
        };
        let mut families = families.to_vec();
        families.sort();
        families.dedup();
        for family in families {
            match family {
                Family::Partition | Family::Loss | Family::Delay | Family::Rate => {
                    if !self.root {
                        need(family, "root", "run faultline as root (or with sudo)");
                    }
                    if !self.nsenter {
                        need(family, "nsenter", "apt-get install util-linux");
                    }
                }
                Family::Kill | Family::Pause | Family::Clock => {}
            }
            match family {
                Family::Partition | Family::Loss => {
                    if self.net_backend().is_none() {
                        need(family, "nft or iptables", "apt-get install nftables");
                    }
                }
                Family::Delay | Family::Rate => {
                    if !self.ip {
                        need(family, "ip", "apt-get install iproute2");
                    }
                    if !self.tc {
                        need(family, "tc", "apt-get install iproute2");
                    }
                    if family == Family::Rate && !self.tbf {
                        need(
                            family,
                            "a kernel with tbf (sch_tbf)",
                            "run on a kernel that has sch_tbf",
                        );
                    }
                    if family == Family::Delay && !self.netem {
                        need(
                            family,
                            "a kernel with netem (sch_netem)",
                            "run on a kernel that has sch_netem, e.g. Debian's stock kernel; \
                             this kernel cannot delay packets, use loss instead",
                        );
                    }
                }
                Family::Clock => {
                    if self.libfaketime.is_none() {
                        need(
                            family,
                            "libfaketime.so.1",
                            "apt-get install libfaketime faketime",
                        );
                    }
                }
                Family::Kill | Family::Pause => {}
            }
        }
        out
    }

    /// Refuses a fault list this machine cannot run, with a message naming everything
    /// missing and how to get it.
    pub fn check(&self, families: &[Family]) -> Result<(), NemesisError> {
        let missing = self.missing(families);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(NemesisError::Missing(missing))
        }
    }
}

fn effective_uid_is_root() -> bool {
    // /proc/self/status: "Uid:\t<real>\t<effective>\t<saved>\t<fs>"
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Tries a netem and a tbf qdisc on `lo` in a throw-away namespace, then deletes the
/// namespace. Returns (netem, tbf).
async fn probe_qdiscs() -> (bool, bool) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!("fl-probe-{}-{nanos}", std::process::id());
    let t = Duration::from_secs(10);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    if run("ip", &s(&["netns", "add", &name]), None, t)
        .await
        .is_err()
    {
        return (false, false);
    }
    let netns = PathBuf::from(format!("/run/netns/{name}"));
    let mut found = Vec::new();
    for kind in [
        vec!["netem", "delay", "1ms"],
        vec![
            "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms",
        ],
    ] {
        let mut args = s(&["qdisc", "replace", "dev", "lo", "root"]);
        args.extend(s(&kind));
        found.push(run_in_netns(&netns, "tc", &args, None, t).await.is_ok());
    }
    if let Err(e) = run("ip", &s(&["netns", "del", &name]), None, t).await {
        tracing::warn!("could not delete probe namespace {name}: {e}");
    }
    (found[0], found[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Capabilities {
        Capabilities {
            root: true,
            nsenter: true,
            nft: true,
            iptables: true,
            ip: true,
            tc: true,
            netem: true,
            tbf: true,
            libfaketime: Some(PathBuf::from("/usr/lib/faketime/libfaketime.so.1")),
        }
    }

    #[test]
    fn a_full_machine_runs_everything() {
        assert!(full().check(&Family::ALL).is_ok());
        assert_eq!(full().net_backend(), Some(NetBackend::Nft));
    }

    #[test]
    fn iptables_is_the_fallback_backend() {
        let caps = Capabilities {
            nft: false,
            ..full()
        };
        assert_eq!(caps.net_backend(), Some(NetBackend::Iptables));
        assert!(caps.check(&[Family::Partition, Family::Loss]).is_ok());
    }

    #[test]
    fn refuses_with_what_is_missing_and_how_to_get_it() {
        let caps = Capabilities {
            nft: false,
            iptables: false,
            netem: false,
            libfaketime: None,
            ..full()
        };
        let err = caps
            .check(&[
                Family::Clock,
                Family::Partition,
                Family::Kill,
                Family::Delay,
            ])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the requested faults cannot run on this machine: \
             partition needs nft or iptables (apt-get install nftables); \
             clock needs libfaketime.so.1 (apt-get install libfaketime faketime); \
             delay needs a kernel with netem (sch_netem) (run on a kernel that has sch_netem, \
             e.g. Debian's stock kernel; this kernel cannot delay packets, use loss instead)"
        );
        // Kill and pause need nothing from the machine.
        assert!(caps.check(&[Family::Kill, Family::Pause]).is_ok());
    }

    #[test]
    fn not_root_is_named_once_per_family() {
        let caps = Capabilities {
            root: false,
            ..full()
        };
        let missing = caps.missing(&[Family::Partition, Family::Partition, Family::Loss]);
        let whats: Vec<(&str, &str)> = missing
            .iter()
            .map(|m| (m.needed_by.as_str(), m.what.as_str()))
            .collect();
        assert_eq!(whats, vec![("partition", "root"), ("loss", "root")]);
    }

    #[test]
    fn capabilities_serialise_for_run_json() {
        let text = serde_json::to_string(&full()).unwrap();
        let back: Capabilities = serde_json::from_str(&text).unwrap();
        assert_eq!(back, full());
        assert!(text.contains(r#""netem":true"#), "{text}");
    }
}
