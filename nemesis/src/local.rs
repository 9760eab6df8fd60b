//! Faults carried out from inside a node: what a node agent does with the requests of
//! [`crate::NodeAgent`]. Every mechanism is the host path's own (the same nft scripts,
//! iptables chains, NFQUEUE delayer, tc arguments and libfaketime file), applied to this
//! process's own network namespace ([`crate::exec::OWN_NETNS`]): no `nsenter`, no
//! privilege beyond `CAP_NET_ADMIN` in the node.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::caps::{Capabilities, DelayBackend, NetBackend};
use crate::clock::{write_offset, StrobeHandle};
use crate::delay::NodeDelay;
use crate::exec::{available, run, run_in_netns, COMMAND_TIMEOUT, OWN_NETNS};
use crate::nemesis::{apply_iptables, apply_nft};
use crate::node::unix_ns_now;
use crate::rules::{self, NetRules, Shape};
use crate::{Confirmed, Mechanism, NemesisError, Strobe};

/// The delay in force on this node and the mechanism holding it.
#[derive(Debug)]
enum DelayState {
    /// A netem qdisc on this device.
    Netem { ms: u32, dev: String },
    /// An NFQUEUE rule and delayer thread.
    Nfqueue { ms: u32, delay: NodeDelay },
}

/// This node's fault state and the mechanisms that carry it out, from inside.
#[derive(Debug)]
pub struct LocalNode {
    ip: IpAddr,
    caps: Capabilities,
    clock_dir: PathBuf,
    control_port: u16,
    delay: Option<DelayState>,
    rate: Option<(u32, String)>,
    strobe: Option<StrobeHandle>,
    timeout: Duration,
}

impl LocalNode {
    /// The node at `ip` (the address its packets leave from), with what [`probe_here`]
    /// found, its libfaketime directory, and the agent's control port (always let
    /// through: never partitioned, delayed or dropped).
    pub fn new(ip: IpAddr, caps: Capabilities, clock_dir: PathBuf, control_port: u16) -> Self {
        LocalNode {
            ip,
            caps,
            clock_dir,
            control_port,
            delay: None,
            rate: None,
            strobe: None,
            timeout: COMMAND_TIMEOUT,
        }
    }

    /// What this node can do.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn own() -> &'static Path {
        Path::new(OWN_NETNS)
    }

    fn confirmed(mechanism: Mechanism) -> Confirmed {
        Confirmed {
            mechanism,
            in_force_unix_ns: unix_ns_now(),
        }
    }

    /// Replaces this node's packet rules (partition, loss) with `rules`; the control port
    /// is always exempt.
    pub async fn set_net(&mut self, rules: &NetRules) -> Result<Confirmed, NemesisError> {
        let mut rules = rules.clone();
        rules.exempt_tcp_port = Some(self.control_port);
        let mechanism = match self.caps.net_backend() {
            Some(NetBackend::Nft) => {
                apply_nft(Self::own(), &rules, self.timeout).await?;
                Mechanism::Nft
            }
            Some(NetBackend::Iptables) => {
                apply_iptables(Self::own(), &rules, self.timeout).await?;
                Mechanism::Iptables
            }
            None if rules.is_empty() => Mechanism::None,
            None => {
                return Err(NemesisError::Unsupported {
                    fault: "partition",
                    reason: "neither nft nor iptables runs in the node".to_string(),
                })
            }
        };
        Ok(Self::confirmed(mechanism))
    }

    async fn device(&self) -> Result<String, NemesisError> {
        let args = vec!["-o".to_string(), "addr".to_string(), "show".to_string()];
        let out = run_in_netns(Self::own(), "ip", &args, None, self.timeout).await?;
        rules::device_for_ip(&out.stdout, self.ip).ok_or_else(|| NemesisError::Unsupported {
            fault: "delay or rate",
            reason: format!("no interface of this node carries {}", self.ip),
        })
    }

    async fn clear_root_qdisc(&self, dev: &str) {
        let _ = run_in_netns(
            Self::own(),
            "tc",
            &rules::qdisc_delete_args(dev),
            None,
            self.timeout,
        )
        .await;
    }

    /// Delays this node's outgoing packets by `ms` (netem where the kernel has it, else
    /// NFQUEUE), or stops delaying them (`None`). The same delay again changes nothing.
    pub async fn set_delay(&mut self, ms: Option<u32>) -> Result<Confirmed, NemesisError> {
        let current = match &self.delay {
            Some(DelayState::Netem { ms, .. }) => Some((*ms, Mechanism::Netem)),
            Some(DelayState::Nfqueue { ms, delay }) if delay.is_running() => {
                Some((*ms, Mechanism::Nfqueue))
            }
            _ => None,
        };
        if let (Some(want), Some((have, mechanism))) = (ms, current) {
            if want == have {
                return Ok(Self::confirmed(mechanism));
            }
        }
        match self.delay.take() {
            Some(DelayState::Netem { dev, .. }) => self.clear_root_qdisc(&dev).await,
            Some(DelayState::Nfqueue { delay, .. }) => {
                if let Err(e) = delay.remove(self.timeout).await {
                    tracing::warn!("stopping the delay: {e}");
                }
            }
            None => {}
        }
        let Some(ms) = ms else {
            return Ok(Self::confirmed(Mechanism::Nfqueue));
        };
        match self.caps.delay_backend() {
            Some(DelayBackend::Netem) => {
                let dev = self.device().await?;
                let args = rules::shape_args(&dev, Shape::Delay { ms });
                run_in_netns(Self::own(), "tc", &args, None, self.timeout).await?;
                self.rate = None;
                self.delay = Some(DelayState::Netem { ms, dev });
                Ok(Self::confirmed(Mechanism::Netem))
            }
            Some(DelayBackend::Nfqueue) => {
                let delay = NodeDelay::install_exempt(
                    Self::own(),
                    self.ip,
                    rules::DELAY_QUEUE_BASE,
                    Duration::from_millis(u64::from(ms)),
                    self.timeout,
                    Some(self.control_port),
                )
                .await?;
                self.delay = Some(DelayState::Nfqueue { ms, delay });
                Ok(Self::confirmed(Mechanism::Nfqueue))
            }
            None => Err(NemesisError::Unsupported {
                fault: "delay",
                reason: "the node's kernel has neither netem nor NFQUEUE".to_string(),
            }),
        }
    }

    /// Limits this node's outgoing rate to `kbit` with tbf, or lifts the limit (`None`).
    pub async fn set_rate(&mut self, kbit: Option<u32>) -> Result<Confirmed, NemesisError> {
        if let (Some(want), Some((have, _))) = (kbit, &self.rate) {
            if want == *have {
                return Ok(Self::confirmed(Mechanism::Tbf));
            }
        }
        if let Some((_, dev)) = self.rate.take() {
            self.clear_root_qdisc(&dev).await;
        }
        let Some(kbit) = kbit else {
            return Ok(Self::confirmed(Mechanism::Tbf));
        };
        if !self.caps.tbf {
            return Err(NemesisError::Unsupported {
                fault: "rate",
                reason: "the node's kernel has no tbf qdisc (sch_tbf)".to_string(),
            });
        }
        let dev = self.device().await?;
        let args = rules::shape_args(&dev, Shape::Rate { kbit });
        run_in_netns(Self::own(), "tc", &args, None, self.timeout).await?;
        if matches!(self.delay, Some(DelayState::Netem { .. })) {
            // tbf replaced the netem root qdisc.
            self.delay = None;
        }
        self.rate = Some((kbit, dev));
        Ok(Self::confirmed(Mechanism::Tbf))
    }

    /// Sets this node's clock offset, strobing around it when `strobe` is given; a running
    /// strobe stops first.
    pub async fn set_clock(
        &mut self,
        offset_ms: i64,
        strobe: Option<Strobe>,
    ) -> Result<Confirmed, NemesisError> {
        if let Some(running) = self.strobe.take() {
            running.stop().await?;
        }
        match strobe {
            Some(strobe) => {
                // The first flip is written at once by the strobe task; write the base
                // first so the file is valid whatever happens.
                write_offset(&self.clock_dir, offset_ms)?;
                self.strobe = Some(StrobeHandle::spawn(
                    self.clock_dir.clone(),
                    offset_ms,
                    strobe,
                ));
            }
            None => write_offset(&self.clock_dir, offset_ms)?,
        }
        Ok(Self::confirmed(Mechanism::Faketime))
    }

    /// Undoes every fault of this node (for the agent's shutdown).
    pub async fn heal(&mut self) {
        let _ = self.set_net(&NetRules::default()).await;
        let _ = self.set_delay(None).await;
        let _ = self.set_rate(None).await;
        let _ = self.set_clock(0, None).await;
    }
}

/// Probes what this node can do, from inside its own network namespace: which tools run,
/// whether the kernel takes netem and tbf (tried on `lo` and removed at once), whether
/// packets can be delayed through NFQUEUE (a datagram on `lo`, the rule removed after),
/// and whether libfaketime is there. Run it before the system under test starts: the
/// tries briefly change `lo`.
pub async fn probe_here() -> Capabilities {
    let nft = available("nft", &["--version"]).await;
    let iptables = available("iptables", &["--version"]).await
        && available("iptables-restore", &["--version"]).await;
    let ip = available("ip", &["-V"]).await;
    let tc = available("tc", &["-V"]).await;
    let t = Duration::from_secs(10);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut found = Vec::new();
    for kind in [
        vec!["netem", "delay", "1ms"],
        vec![
            "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms",
        ],
    ] {
        let mut args = s(&["qdisc", "replace", "dev", "lo", "root"]);
        args.extend(s(&kind));
        let ok = tc && run("tc", &args, None, t).await.is_ok();
        if ok {
            let _ = run("tc", &s(&["qdisc", "del", "dev", "lo", "root"]), None, t).await;
        }
        found.push(ok);
    }
    let nfqueue = iptables
        && match tokio::task::spawn_blocking(crate::caps::probe_nfqueue_here).await {
            Ok(Ok(_)) => true,
            Ok(Err(why)) => {
                tracing::info!("no NFQUEUE delay in this node: {why}");
                false
            }
            Err(e) => {
                tracing::warn!("the NFQUEUE probe failed: {e}");
                false
            }
        };
    Capabilities {
        root: true,
        nsenter: false,
        nft,
        iptables,
        ip,
        tc,
        netem: found[0],
        tbf: found[1],
        nfqueue,
        libfaketime: crate::clock::find_libfaketime(),
        agent: true,
    }
}
