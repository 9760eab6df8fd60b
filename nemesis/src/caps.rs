//! What this machine can do: the capability probe, and the check that refuses a fault
//! list the machine cannot run, naming what is missing and how to get it.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::clock::find_libfaketime;
use crate::delay::{in_netns, Delayer};
use crate::exec::{available, run, run_in_netns, run_in_netns_blocking};
use crate::rules;
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
    /// Packets can be delayed through NFQUEUE: in a throw-away namespace, iptables accepted
    /// an `NFQUEUE` rule, a delayer thread bound the queue, and a datagram it held arrived
    /// late. The delay mechanism when there is no netem.
    #[serde(default)]
    pub nfqueue: bool,
    /// Where `libfaketime.so.1` is, if installed.
    pub libfaketime: Option<PathBuf>,
    /// Probed by a node agent inside a node ([`crate::local::probe_here`]): faults run
    /// from inside the nodes, so neither root nor `nsenter` is needed on the host.
    #[serde(default)]
    pub agent: bool,
}

/// The mechanism that delays packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayBackend {
    /// A netem qdisc on the node's interface.
    Netem,
    /// An iptables `NFQUEUE` rule and a delayer thread of ours ([`crate::delay`]).
    Nfqueue,
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
    /// Probes the machine: which tools run, whether the kernel has netem and tbf, whether
    /// packets can be delayed through NFQUEUE, where libfaketime is, and whether we are
    /// root. Never fails: what cannot be found is absent.
    pub async fn probe() -> Capabilities {
        let root = effective_uid_is_root();
        let nsenter = available("nsenter", &["--version"]).await;
        let nft = available("nft", &["--version"]).await;
        let iptables = available("iptables", &["--version"]).await
            && available("iptables-restore", &["--version"]).await;
        let ip = available("ip", &["-V"]).await;
        let tc = available("tc", &["-V"]).await;
        let (netem, tbf, nfqueue) = if root && ip && nsenter {
            probe_kernel(tc, iptables).await
        } else {
            (false, false, false)
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
            nfqueue,
            libfaketime: find_libfaketime(),
            agent: false,
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

    /// The delay mechanism: netem when the kernel has it, else NFQUEUE, else none.
    pub fn delay_backend(&self) -> Option<DelayBackend> {
        if self.netem && self.ip && self.tc {
            Some(DelayBackend::Netem)
        } else if self.nfqueue && self.iptables {
            Some(DelayBackend::Nfqueue)
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
                Family::Partition
                | Family::Leader
                | Family::Loss
                | Family::Delay
                | Family::Rate => {
                    if !self.root && !self.agent {
                        need(family, "root", "run faultline as root (or with sudo)");
                    }
                    if !self.nsenter && !self.agent {
                        need(family, "nsenter", "apt-get install util-linux");
                    }
                }
                Family::Kill | Family::Pause | Family::Clock => {}
            }
            match family {
                Family::Partition | Family::Leader | Family::Loss => {
                    if self.net_backend().is_none() {
                        need(family, "nft or iptables", "apt-get install nftables");
                    }
                }
                Family::Delay => {
                    if self.delay_backend().is_none() {
                        need(
                            family,
                            "netem (sch_netem) or NFQUEUE (nfnetlink_queue and iptables' NFQUEUE \
                             target)",
                            "run on a kernel that has sch_netem or nfnetlink_queue, with \
                             apt-get install iproute2 iptables; this machine cannot delay \
                             packets, use loss instead",
                        );
                    }
                }
                Family::Rate => {
                    if !self.ip {
                        need(family, "ip", "apt-get install iproute2");
                    }
                    if !self.tc {
                        need(family, "tc", "apt-get install iproute2");
                    }
                    if !self.tbf {
                        need(
                            family,
                            "a kernel with tbf (sch_tbf)",
                            "run on a kernel that has sch_tbf",
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

/// The queue number the NFQUEUE probe binds (in its own throw-away namespace).
const PROBE_QUEUE: u16 = rules::DELAY_QUEUE_BASE;

/// The delay the NFQUEUE probe asks for.
const PROBE_DELAY: Duration = Duration::from_millis(20);

/// Probes the kernel in a throw-away namespace `fl-probe-<pid>-<nanos>`: an NFQUEUE delay of
/// a datagram on `lo` (when `iptables` runs), then a netem and a tbf qdisc on `lo` (when `tc`
/// runs); deletes the namespace. Returns (netem, tbf, nfqueue).
async fn probe_kernel(tc: bool, iptables: bool) -> (bool, bool, bool) {
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
        return (false, false, false);
    }
    let netns = PathBuf::from(format!("/run/netns/{name}"));
    let nfqueue = iptables
        && run("ip", &s(&["-n", &name, "link", "set", "lo", "up"]), None, t)
            .await
            .is_ok()
        && {
            let path = netns.clone();
            match tokio::task::spawn_blocking(move || probe_nfqueue(&path)).await {
                Ok(Ok(took)) => {
                    tracing::debug!("NFQUEUE probe: a {PROBE_DELAY:?} delay took {took:?}");
                    true
                }
                Ok(Err(why)) => {
                    tracing::info!("no NFQUEUE delay on this machine: {why}");
                    false
                }
                Err(e) => {
                    tracing::warn!("the NFQUEUE probe failed: {e}");
                    false
                }
            }
        };
    let mut found = Vec::new();
    for kind in [
        vec!["netem", "delay", "1ms"],
        vec![
            "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms",
        ],
    ] {
        let mut args = s(&["qdisc", "replace", "dev", "lo", "root"]);
        args.extend(s(&kind));
        found.push(tc && run_in_netns(&netns, "tc", &args, None, t).await.is_ok());
    }
    if let Err(e) = run("ip", &s(&["netns", "del", &name]), None, t).await {
        tracing::warn!("could not delete probe namespace {name}: {e}");
    }
    (found[0], found[1], nfqueue)
}

/// [`probe_nfqueue`] in this process's own namespace (a node agent), its rule removed after.
pub(crate) fn probe_nfqueue_here() -> Result<Duration, String> {
    probe_nfqueue(Path::new(crate::exec::OWN_NETNS))
}

/// Delays one datagram over `lo` of the namespace at `netns` through NFQUEUE: a delayer bound
/// to [`PROBE_QUEUE`], an iptables rule queueing UDP to the receiver's port. Returns how long
/// the datagram took, or why it did not work.
fn probe_nfqueue(netns: &Path) -> Result<Duration, String> {
    let delayer = Delayer::start(netns, PROBE_QUEUE, PROBE_DELAY).map_err(|e| e.to_string())?;
    let (rx, tx) = in_netns(netns, || -> std::io::Result<(UdpSocket, UdpSocket)> {
        Ok((
            UdpSocket::bind("127.0.0.1:0")?,
            UdpSocket::bind("127.0.0.1:0")?,
        ))
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("UDP sockets in the probe namespace: {e}"))?;
    let port = rx.local_addr().map_err(|e| e.to_string())?.port();
    run_in_netns_blocking(
        netns,
        "iptables",
        &rules::nfqueue_probe_args(PROBE_QUEUE, port),
        Duration::from_secs(10),
    )
    .map_err(|e| format!("iptables refused an NFQUEUE rule: {e}"))?;
    rx.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    tx.send_to(b"faultline", ("127.0.0.1", port))
        .map_err(|e| format!("sending the probe datagram: {e}"))?;
    let mut buf = [0u8; 16];
    rx.recv(&mut buf)
        .map_err(|e| format!("the probe datagram did not arrive: {e}"))?;
    let took = started.elapsed();
    let stats = delayer.stop().map_err(|e| e.to_string())?;
    if crate::exec::is_own_netns(netns) {
        // Not a throw-away namespace: take the probe's rule out again.
        let mut delete = rules::nfqueue_probe_args(PROBE_QUEUE, port);
        if let Some(op) = delete.iter_mut().find(|a| *a == "-A") {
            *op = "-D".to_string();
        }
        run_in_netns_blocking(netns, "iptables", &delete, Duration::from_secs(10))
            .map_err(|e| format!("removing the probe's NFQUEUE rule: {e}"))?;
    }
    if stats.packets == 0 || took < PROBE_DELAY {
        return Err(format!(
            "the datagram was not held (it took {took:?}, the delayer saw {} packets)",
            stats.packets
        ));
    }
    Ok(took)
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
            nfqueue: true,
            libfaketime: Some(PathBuf::from("/usr/lib/faketime/libfaketime.so.1")),
            agent: false,
        }
    }

    #[test]
    fn an_agent_needs_neither_root_nor_nsenter_on_the_host() {
        let caps = Capabilities {
            root: false,
            nsenter: false,
            agent: true,
            ..full()
        };
        assert!(caps.check(&Family::ALL).is_ok());
        let host = Capabilities {
            agent: false,
            ..caps
        };
        assert!(host.check(&[Family::Partition]).is_err());
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
            nfqueue: false,
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
             delay needs netem (sch_netem) or NFQUEUE (nfnetlink_queue and iptables' NFQUEUE \
             target) (run on a kernel that has sch_netem or nfnetlink_queue, with apt-get \
             install iproute2 iptables; this machine cannot delay packets, use loss instead)"
        );
        // Kill and pause need nothing from the machine.
        assert!(caps.check(&[Family::Kill, Family::Pause]).is_ok());
    }

    #[test]
    fn delay_prefers_netem_and_falls_back_to_nfqueue() {
        assert_eq!(full().delay_backend(), Some(DelayBackend::Netem));
        let no_netem = Capabilities {
            netem: false,
            ..full()
        };
        assert_eq!(no_netem.delay_backend(), Some(DelayBackend::Nfqueue));
        assert!(no_netem.check(&[Family::Delay]).is_ok());
        // Rate still needs tbf, which NFQUEUE does not replace.
        let no_tbf = Capabilities {
            netem: false,
            tbf: false,
            ..full()
        };
        let missing = no_tbf.missing(&[Family::Delay, Family::Rate]);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].needed_by, "rate");
        // NFQUEUE needs iptables to install its rule.
        let no_iptables = Capabilities {
            netem: false,
            iptables: false,
            ..full()
        };
        assert_eq!(no_iptables.delay_backend(), None);
        assert!(no_iptables.check(&[Family::Delay]).is_err());
        // Without tc, netem cannot be set up either.
        let no_tc = Capabilities {
            tc: false,
            nfqueue: false,
            ..full()
        };
        assert_eq!(no_tc.delay_backend(), None);
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
        assert!(text.contains(r#""nfqueue":true"#), "{text}");
        // A run.json written before the NFQUEUE probe existed still reads.
        let old = text.replace(r#""nfqueue":true,"#, "");
        assert!(!old.contains("nfqueue"), "{old}");
        let back: Capabilities = serde_json::from_str(&old).unwrap();
        assert!(!back.nfqueue);
    }
}
