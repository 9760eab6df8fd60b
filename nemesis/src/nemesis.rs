//! The mechanisms: apply a [`Fault`] to the nodes, keeping the current state (grudge,
//! loss, delay, clock offsets) so it can be re-applied after a node restarts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::caps::{Capabilities, DelayBackend, NetBackend};
use crate::clock::{write_offset, StrobeHandle};
use crate::delay::NodeDelay;
use crate::exec::{run_in_netns, COMMAND_TIMEOUT};
use crate::node::unix_ns_now;
use crate::rules::{self, NetRules, Shape};
use crate::{Confirmed, Fault, Grudge, NemesisError, Node, NodeAgent, Strobe};

/// The mechanism that carried a fault out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// Our nft table `inet faultline` in each node's network namespace.
    Nft,
    /// Our iptables chain `FAULTLINE` in each node's network namespace.
    Iptables,
    /// A netem qdisc on the node's interface.
    Netem,
    /// An iptables `NFQUEUE` rule in the node's network namespace and a delayer thread of
    /// ours holding the queued packets ([`crate::delay`]): delay without netem.
    Nfqueue,
    /// A tbf qdisc on the node's interface.
    Tbf,
    /// The node's libfaketime timestamp file.
    Faketime,
    /// The runtime's own operation (start, kill, pause, resume).
    Runtime,
    /// A node agent's signal to the node's program, its child (SIGKILL, a new start,
    /// SIGSTOP, SIGCONT to its process group).
    Process,
    /// Nothing needed doing (no rule was in force to remove or re-apply).
    None,
}

/// What applying one fault did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The fault's name (`partition`, `kill`...).
    pub fault: String,
    /// The mechanism used.
    pub mechanism: Mechanism,
    /// The nodes acted on.
    pub nodes: Vec<String>,
    /// Nodes that were down (no network namespace): their state is kept and applied when
    /// they start.
    pub deferred: Vec<String>,
    /// When the fault was in force on every node acted on, in nanoseconds since the Unix
    /// epoch: the latest time a node agent confirmed, or, for faults carried out from the
    /// host, when the last command returned.
    #[serde(default)]
    pub confirmed_unix_ns: Option<u64>,
}

/// Applies faults to a cluster's nodes and remembers the packet and clock state.
pub struct Nemesis {
    nodes: BTreeMap<String, Arc<dyn Node>>,
    caps: Capabilities,
    backend: Option<NetBackend>,
    grudge: Grudge,
    loss: BTreeMap<String, u8>,
    /// Each shaped node's qdisc: the device it sits on (empty while the node is down).
    shapes: BTreeMap<String, (String, Shape)>,
    /// Each node delayed through NFQUEUE: the delay in ms, and the rule and delayer in its
    /// current namespace (`None` while the node is down).
    delays: BTreeMap<String, (u32, Option<NodeDelay>)>,
    offsets: BTreeMap<String, i64>,
    strobes: BTreeMap<String, StrobeHandle>,
    /// Delay (ms) and rate (kbit) in force on nodes with an agent (the agent holds the
    /// mechanism; this is what to re-send).
    agent_delay: BTreeMap<String, u32>,
    agent_rate: BTreeMap<String, u32>,
    /// The latest confirmation of the fault being applied.
    confirmed: Option<u64>,
    timeout: Duration,
}

impl std::fmt::Debug for Nemesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nemesis")
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .field("backend", &self.backend)
            .field("grudge", &self.grudge)
            .field("loss", &self.loss)
            .field("offsets", &self.offsets)
            .finish()
    }
}

impl Nemesis {
    /// A nemesis over `nodes`, using the packet-filter backend `caps` allows (nft first).
    pub fn new(nodes: Vec<Arc<dyn Node>>, caps: Capabilities) -> Result<Nemesis, NemesisError> {
        let mut map = BTreeMap::new();
        for node in nodes {
            let name = node.name().to_string();
            if map.insert(name.clone(), node).is_some() {
                return Err(NemesisError::DuplicateNode(name));
            }
        }
        Ok(Nemesis {
            nodes: map,
            backend: caps.net_backend(),
            caps,
            grudge: Grudge::default(),
            loss: BTreeMap::new(),
            shapes: BTreeMap::new(),
            delays: BTreeMap::new(),
            offsets: BTreeMap::new(),
            strobes: BTreeMap::new(),
            agent_delay: BTreeMap::new(),
            agent_rate: BTreeMap::new(),
            confirmed: None,
            timeout: COMMAND_TIMEOUT,
        })
    }

    /// Forces a packet-filter backend (for tests of the fallback, or a host whose Docker
    /// uses iptables).
    pub fn with_backend(mut self, backend: NetBackend) -> Nemesis {
        self.backend = Some(backend);
        self
    }

    /// The capabilities this nemesis was built with.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The packet-filter backend in use, if any.
    pub fn backend(&self) -> Option<NetBackend> {
        self.backend
    }

    /// The grudge currently in force (empty after a heal).
    pub fn grudge(&self) -> &Grudge {
        &self.grudge
    }

    /// The current clock offset of each node that was moved, in milliseconds (a running
    /// strobe flips around this value).
    pub fn clock_offsets(&self) -> &BTreeMap<String, i64> {
        &self.offsets
    }

    fn node(&self, name: &str) -> Result<Arc<dyn Node>, NemesisError> {
        self.nodes
            .get(name)
            .cloned()
            .ok_or_else(|| NemesisError::UnknownNode(name.to_string()))
    }

    fn check_names<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), NemesisError> {
        for n in names {
            self.node(n)?;
        }
        Ok(())
    }

    /// Applies one fault, and reports the mechanism used, the nodes acted on and when it
    /// was confirmed in force.
    pub async fn apply(&mut self, fault: &Fault) -> Result<Applied, NemesisError> {
        self.confirmed = None;
        let mut applied = self.apply_inner(fault).await?;
        applied.confirmed_unix_ns = Some(self.confirmed.take().unwrap_or_else(unix_ns_now));
        Ok(applied)
    }

    /// Notes an agent's confirmation (the fault is in force once every node confirmed).
    fn note(&mut self, c: Confirmed) -> Mechanism {
        self.confirmed = Some(
            self.confirmed
                .map_or(c.in_force_unix_ns, |t| t.max(c.in_force_unix_ns)),
        );
        c.mechanism
    }

    /// The agent of node `n`, if it has one.
    fn agent_of(&self, n: &str) -> Result<Option<Arc<dyn Node>>, NemesisError> {
        let node = self.node(n)?;
        Ok(node.agent().is_some().then_some(node))
    }

    /// Calls `op` on node `n`'s agent and notes its confirmation.
    async fn through_agent<F>(
        &mut self,
        n: &str,
        what: &'static str,
        op: F,
    ) -> Result<Mechanism, NemesisError>
    where
        F: for<'b> FnOnce(&'b dyn NodeAgent) -> crate::ConfirmFuture<'b>,
    {
        let node = self.node(n)?;
        let Some(agent) = node.agent() else {
            return Err(NemesisError::InvalidConfig(format!(
                "node {n} has no agent"
            )));
        };
        let confirmed = op(agent).await.map_err(|source| NemesisError::Node {
            node: n.to_string(),
            op: what,
            source,
        })?;
        Ok(self.note(confirmed))
    }

    /// Sets a node's clock: through its agent, or by writing its timestamp file (and
    /// strobing it from here when `strobe` is given).
    async fn set_clock(
        &mut self,
        n: &str,
        offset: i64,
        strobe: Option<Strobe>,
    ) -> Result<(), NemesisError> {
        self.stop_strobe(n).await?;
        if self.agent_of(n)?.is_some() {
            self.through_agent(n, "clock", |a| a.set_clock(offset, strobe))
                .await?;
            return Ok(());
        }
        match strobe {
            Some(strobe) => {
                let handle = StrobeHandle::spawn(self.node(n)?.clock_dir(), offset, strobe);
                self.strobes.insert(n.to_string(), handle);
            }
            None => write_offset(&self.node(n)?.clock_dir(), offset)?,
        }
        Ok(())
    }

    /// Delay (`Some(Some(ms))`, `Some(None)` = off) and rate (the same) on nodes that have
    /// an agent.
    async fn agent_packets(
        &mut self,
        name: &str,
        nodes: &[String],
        delay: Option<Option<u32>>,
        rate: Option<Option<u32>>,
    ) -> Result<Applied, NemesisError> {
        let mut done = applied(name, Mechanism::None, Vec::new());
        for n in nodes {
            if let Some(ms) = delay {
                let had = match ms {
                    Some(ms) => {
                        self.agent_delay.insert(n.clone(), ms);
                        true
                    }
                    None => self.agent_delay.remove(n).is_some(),
                };
                if had {
                    done.mechanism = self.through_agent(n, "delay", |a| a.set_delay(ms)).await?;
                }
            }
            if let Some(kbit) = rate {
                let had = match kbit {
                    Some(k) => {
                        self.agent_rate.insert(n.clone(), k);
                        true
                    }
                    None => self.agent_rate.remove(n).is_some(),
                };
                if had {
                    done.mechanism = self.through_agent(n, "rate", |a| a.set_rate(kbit)).await?;
                }
            }
            done.nodes.push(n.clone());
        }
        Ok(done)
    }

    fn all_have_agents(&self, nodes: &[String]) -> Result<bool, NemesisError> {
        for n in nodes {
            if self.agent_of(n)?.is_none() {
                return Ok(false);
            }
        }
        Ok(!nodes.is_empty())
    }

    async fn apply_inner(&mut self, fault: &Fault) -> Result<Applied, NemesisError> {
        let name = fault.name();
        match fault {
            Fault::Partition(grudge) => {
                self.check_names(grudge.0.keys().chain(grudge.0.values().flatten()))?;
                if !grudge.is_empty() {
                    self.require_backend("partition")?;
                }
                self.grudge = grudge.clone();
                self.apply_net_all(name).await
            }
            Fault::Heal => {
                self.grudge = Grudge::default();
                self.apply_net_all(name).await
            }
            Fault::Kill(nodes) => self.runtime_op(name, nodes).await,
            Fault::Pause(nodes) => self.runtime_op(name, nodes).await,
            Fault::Resume(nodes) => self.runtime_op(name, nodes).await,
            Fault::Start(nodes) => {
                let mut applied = self.runtime_op(name, nodes).await?;
                for node in nodes {
                    let re = self.reapply(node).await?;
                    applied.deferred.extend(re.deferred);
                }
                Ok(applied)
            }
            Fault::ClockBump(deltas) => {
                self.check_names(deltas.keys())?;
                for (node, delta) in deltas {
                    let offset = self
                        .offsets
                        .get(node)
                        .copied()
                        .unwrap_or(0)
                        .saturating_add(*delta);
                    self.set_clock(node, offset, None).await?;
                    self.offsets.insert(node.clone(), offset);
                }
                Ok(applied(
                    name,
                    Mechanism::Faketime,
                    deltas.keys().cloned().collect(),
                ))
            }
            Fault::ClockStrobe(strobes) => {
                self.check_names(strobes.keys())?;
                for (node, strobe) in strobes {
                    let base = self.offsets.get(node).copied().unwrap_or(0);
                    self.set_clock(node, base, Some(*strobe)).await?;
                    // Remembered so that a reset (heal_all) reaches the node's agent too.
                    self.offsets.insert(node.clone(), base);
                }
                Ok(applied(
                    name,
                    Mechanism::Faketime,
                    strobes.keys().cloned().collect(),
                ))
            }
            Fault::ClockReset(nodes) => {
                self.check_names(nodes)?;
                for node in nodes {
                    self.set_clock(node, 0, None).await?;
                    self.offsets.remove(node);
                }
                Ok(applied(name, Mechanism::Faketime, nodes.clone()))
            }
            Fault::Loss { nodes, percent } => {
                if *percent == 0 || *percent > 100 {
                    return Err(NemesisError::InvalidConfig(format!(
                        "loss must be 1..=100 %, got {percent}"
                    )));
                }
                self.check_names(nodes)?;
                self.require_backend("loss")?;
                for node in nodes {
                    self.loss.insert(node.clone(), *percent);
                }
                self.apply_net(name, nodes).await
            }
            Fault::Delay { nodes, ms } if self.all_have_agents(nodes)? => {
                self.agent_packets(name, nodes, Some(Some(*ms)), None).await
            }
            Fault::Rate { nodes, kbit } if self.all_have_agents(nodes)? => {
                self.agent_packets(name, nodes, None, Some(Some(*kbit)))
                    .await
            }
            Fault::Delay { nodes, ms } => match self.caps.delay_backend() {
                Some(DelayBackend::Nfqueue) => self.nfqueue_delay(name, nodes, *ms).await,
                _ => self.shape(name, nodes, Shape::Delay { ms: *ms }).await,
            },
            Fault::Rate { nodes, kbit } => {
                self.shape(name, nodes, Shape::Rate { kbit: *kbit }).await
            }
            Fault::PacketHeal(nodes) => {
                self.check_names(nodes)?;
                for node in nodes {
                    if self.agent_of(node)?.is_some() {
                        self.agent_packets(
                            name,
                            std::slice::from_ref(node),
                            Some(None),
                            Some(None),
                        )
                        .await?;
                    } else {
                        self.set_shape(node, None).await?;
                        self.set_nfqueue_delay(node, None).await?;
                    }
                    self.loss.remove(node);
                }
                self.apply_net(name, nodes).await
            }
            Fault::Leader(_) => Err(NemesisError::InvalidConfig(format!(
                "{name} must be aimed first: find the leader and resolve it with LeaderAim"
            ))),
        }
    }

    /// Re-applies the node's packet state (grudge, loss, delay or rate) after it restarted with a
    /// fresh network namespace (a container that was killed and started). [`Fault::Start`]
    /// does this by itself; a runtime that restarts a node on its own calls it. With
    /// nothing in force for the node, nothing runs.
    pub async fn reapply(&mut self, node: &str) -> Result<Applied, NemesisError> {
        self.node(node)?;
        if self.agent_of(node)?.is_some() {
            return self.reapply_agent(node).await;
        }
        let mut done = if self.net_rules(node)?.is_empty() {
            applied("reapply", Mechanism::None, Vec::new())
        } else {
            self.apply_net("reapply", &[node.to_string()]).await?
        };
        if let Some((_, shape)) = self.shapes.remove(node) {
            if !self.set_shape(node, Some(shape)).await? {
                done.deferred.push(node.to_string());
            }
        }
        // A new namespace needs a new rule and a new delayer thread inside it.
        if let Some(ms) = self.delays.get(node).map(|(ms, _)| *ms) {
            if self.set_nfqueue_delay(node, Some(ms)).await? {
                if done.mechanism == Mechanism::None {
                    done.mechanism = Mechanism::Nfqueue;
                }
            } else {
                done.deferred.push(node.to_string());
            }
        }
        done.deferred.dedup();
        Ok(done)
    }

    /// Re-sends a node agent the node's whole state (after its container restarted, the
    /// agent starts with none; an agent that kept it changes nothing).
    async fn reapply_agent(&mut self, n: &str) -> Result<Applied, NemesisError> {
        let mut done = if self.net_rules(n)?.is_empty() {
            applied("reapply", Mechanism::None, Vec::new())
        } else {
            self.apply_net("reapply", &[n.to_string()]).await?
        };
        if let Some(ms) = self.agent_delay.get(n).copied() {
            done.mechanism = self
                .through_agent(n, "delay", |a| a.set_delay(Some(ms)))
                .await?;
        }
        if let Some(kbit) = self.agent_rate.get(n).copied() {
            done.mechanism = self
                .through_agent(n, "rate", |a| a.set_rate(Some(kbit)))
                .await?;
        }
        Ok(done)
    }

    /// Undoes everything on every node: heal, stop loss, delay and rate, stop strobes, reset
    /// clocks. For the end of a run and for error paths; kill and pause are the runtime's.
    pub async fn heal_all(&mut self) -> Result<(), NemesisError> {
        let all: Vec<String> = self.nodes.keys().cloned().collect();
        let mut faults = Vec::new();
        if self.backend.is_some()
            || !self.delays.is_empty()
            || !self.agent_delay.is_empty()
            || !self.agent_rate.is_empty()
        {
            faults.push(Fault::Heal);
            faults.push(Fault::PacketHeal(all));
        }
        let mut clocks: Vec<String> = self.offsets.keys().cloned().collect();
        clocks.extend(self.strobes.keys().cloned());
        clocks.sort();
        clocks.dedup();
        if !clocks.is_empty() {
            faults.push(Fault::ClockReset(clocks));
        }
        let mut first_err = None;
        for fault in faults {
            if let Err(e) = self.apply(&fault).await {
                tracing::warn!("healing with {} failed: {e}", fault.name());
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    async fn runtime_op(
        &mut self,
        name: &'static str,
        nodes: &[String],
    ) -> Result<Applied, NemesisError> {
        self.check_names(nodes)?;
        let mut mechanism = Mechanism::Runtime;
        for n in nodes {
            let node = self.node(n)?;
            if node.agent().is_some() {
                mechanism = Mechanism::Process;
            }
            let result = match name {
                "kill" => node.kill().await,
                "start" => node.start().await,
                "pause" => node.pause().await,
                _ => node.resume().await,
            };
            result.map_err(|source| NemesisError::Node {
                node: n.clone(),
                op: name,
                source,
            })?;
        }
        Ok(applied(name, mechanism, nodes.to_vec()))
    }

    fn require_backend(&self, fault: &'static str) -> Result<(), NemesisError> {
        match self.backend {
            Some(_) => Ok(()),
            None => Err(NemesisError::Unsupported {
                fault,
                reason: "neither nft nor iptables runs here (apt-get install nftables)".to_string(),
            }),
        }
    }

    async fn stop_strobe(&mut self, node: &str) -> Result<(), NemesisError> {
        if let Some(handle) = self.strobes.remove(node) {
            handle.stop().await?;
        }
        Ok(())
    }

    /// The full packet state of one node, as addresses.
    fn net_rules(&self, node: &str) -> Result<NetRules, NemesisError> {
        let mut drop_from = std::collections::BTreeSet::new();
        for src in self.grudge.drops_from(node) {
            drop_from.insert(self.node(&src)?.ip());
        }
        Ok(NetRules {
            drop_from,
            loss_percent: self.loss.get(node).copied(),
            exempt_tcp_port: self.node(node)?.agent().map(|a| a.control_port()),
        })
    }

    async fn apply_net_all(&mut self, name: &str) -> Result<Applied, NemesisError> {
        let all: Vec<String> = self.nodes.keys().cloned().collect();
        self.apply_net(name, &all).await
    }

    async fn apply_net(&mut self, name: &str, nodes: &[String]) -> Result<Applied, NemesisError> {
        let Some(backend) = self.backend else {
            // Partition and loss refuse to start without a backend, so no rule is in force.
            return Ok(applied(name, Mechanism::None, Vec::new()));
        };
        let mechanism = match backend {
            NetBackend::Nft => Mechanism::Nft,
            NetBackend::Iptables => Mechanism::Iptables,
        };
        let mut done = applied(name, mechanism, Vec::new());
        // Nodes with an agent: every node's rules at once (one request each, in parallel),
        // so the fault is in force on all of them about one round trip after the request.
        let mut calls = tokio::task::JoinSet::new();
        for n in nodes {
            let node = self.node(n)?;
            if node.agent().is_none() {
                continue;
            }
            let rules = self.net_rules(n)?;
            let name = n.clone();
            calls.spawn(async move {
                let result = match node.agent() {
                    Some(agent) => agent.set_net(&rules).await,
                    None => Err("the node lost its agent".into()),
                };
                (name, result)
            });
        }
        let mut first_err = None;
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok((n, Ok(confirmed))) => {
                    done.mechanism = self.note(confirmed);
                    done.nodes.push(n);
                }
                Ok((n, Err(source))) => {
                    first_err.get_or_insert(NemesisError::Node {
                        node: n,
                        op: "partition",
                        source,
                    });
                }
                Err(e) => {
                    first_err.get_or_insert(NemesisError::InvalidConfig(format!(
                        "a packet-rule request ended abnormally: {e}"
                    )));
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        done.nodes.sort();
        for n in nodes {
            let node = self.node(n)?;
            let rules = self.net_rules(n)?;
            if node.agent().is_some() {
                continue;
            }
            let Some(netns) = node.netns_path() else {
                done.deferred.push(n.clone());
                continue;
            };
            match backend {
                NetBackend::Nft => apply_nft(&netns, &rules, self.timeout).await?,
                NetBackend::Iptables => apply_iptables(&netns, &rules, self.timeout).await?,
            }
            done.nodes.push(n.clone());
        }
        Ok(done)
    }

    /// Puts `shape` on the nodes' interfaces (netem for a delay, tbf for a rate limit),
    /// refusing it when the kernel lacks the qdisc.
    async fn shape(
        &mut self,
        name: &str,
        nodes: &[String],
        shape: Shape,
    ) -> Result<Applied, NemesisError> {
        self.check_names(nodes)?;
        let (fault, present, mechanism, reason) = match shape {
            Shape::Delay { .. } => (
                "delay",
                self.caps.netem,
                Mechanism::Netem,
                "this kernel has no netem qdisc (sch_netem) and the probe found no NFQUEUE \
                 delay (nfnetlink_queue, iptables' NFQUEUE target), so packets cannot be \
                 delayed here; use loss instead, or run on a kernel with sch_netem (Debian's \
                 stock kernel has it)",
            ),
            Shape::Rate { .. } => (
                "rate",
                self.caps.tbf,
                Mechanism::Tbf,
                "this kernel has no tbf qdisc (sch_tbf), so bandwidth cannot be limited here",
            ),
        };
        if !present {
            return Err(NemesisError::Unsupported {
                fault,
                reason: reason.to_string(),
            });
        }
        let mut done = applied(name, mechanism, Vec::new());
        for node in nodes {
            if self.set_shape(node, Some(shape)).await? {
                done.nodes.push(node.clone());
            } else {
                done.deferred.push(node.clone());
            }
        }
        Ok(done)
    }

    /// Delays the nodes' outgoing packets by `ms` through NFQUEUE (the kernel has no netem):
    /// an iptables rule in each node's namespace and a delayer thread bound to the node's
    /// queue there.
    async fn nfqueue_delay(
        &mut self,
        name: &str,
        nodes: &[String],
        ms: u32,
    ) -> Result<Applied, NemesisError> {
        self.check_names(nodes)?;
        let mut done = applied(name, Mechanism::Nfqueue, Vec::new());
        for node in nodes {
            if self.set_nfqueue_delay(node, Some(ms)).await? {
                done.nodes.push(node.clone());
            } else {
                done.deferred.push(node.clone());
            }
        }
        Ok(done)
    }

    /// Sets (`Some(ms)`) or removes (`None`) the node's NFQUEUE delay. Whatever runs first
    /// goes (its rule, then its thread), so this also moves the delay into a restarted node's
    /// new namespace. Returns false when the node is down: the delay is kept and applied
    /// when it starts.
    async fn set_nfqueue_delay(&mut self, n: &str, ms: Option<u32>) -> Result<bool, NemesisError> {
        let node = self.node(n)?;
        if let Some((_, Some(old))) = self.delays.remove(n) {
            match old.remove(self.timeout).await {
                Ok(stats) => tracing::debug!("delay of {n} stopped: {stats:?}"),
                Err(e) => tracing::warn!("stopping the delay of {n}: {e}"),
            }
        }
        let Some(ms) = ms else {
            return Ok(true);
        };
        let Some(netns) = node.netns_path() else {
            self.delays.insert(n.to_string(), (ms, None));
            return Ok(false);
        };
        let queue = self
            .nodes
            .keys()
            .position(|k| k == n)
            .and_then(rules::delay_queue)
            .ok_or_else(|| NemesisError::InvalidConfig(format!("no NFQUEUE queue for {n}")))?;
        let installed = NodeDelay::install(
            &netns,
            node.ip(),
            queue,
            Duration::from_millis(u64::from(ms)),
            self.timeout,
        )
        .await;
        match installed {
            Ok(installed) => {
                self.delays.insert(n.to_string(), (ms, Some(installed)));
                Ok(true)
            }
            Err(e) => {
                // Keep the intent: a later start or reapply tries again, a heal forgets it.
                self.delays.insert(n.to_string(), (ms, None));
                Err(e)
            }
        }
    }

    /// Sets (`Some`) or removes (`None`) the root qdisc on the node's interface (found by
    /// the node's address). Returns false when the node is down: the shape is kept and
    /// applied when it starts.
    async fn set_shape(&mut self, n: &str, shape: Option<Shape>) -> Result<bool, NemesisError> {
        let node = self.node(n)?;
        let Some(netns) = node.netns_path() else {
            match shape {
                Some(shape) => self.shapes.insert(n.to_string(), (String::new(), shape)),
                None => self.shapes.remove(n),
            };
            return Ok(false);
        };
        let t = self.timeout;
        match shape {
            Some(shape) => {
                let args = vec!["-o".to_string(), "addr".to_string(), "show".to_string()];
                let out = run_in_netns(&netns, "ip", &args, None, t).await?;
                let dev = rules::device_for_ip(&out.stdout, node.ip()).ok_or_else(|| {
                    NemesisError::Unsupported {
                        fault: "delay or rate",
                        reason: format!("no interface of node {n} carries {}", node.ip()),
                    }
                })?;
                run_in_netns(&netns, "tc", &rules::shape_args(&dev, shape), None, t).await?;
                self.shapes.insert(n.to_string(), (dev, shape));
            }
            None => {
                if let Some((dev, _)) = self.shapes.remove(n) {
                    if !dev.is_empty() {
                        run_in_netns(&netns, "tc", &rules::qdisc_delete_args(&dev), None, t)
                            .await?;
                    }
                }
            }
        }
        Ok(true)
    }
}

/// Replaces our nft table in the namespace at `netns` with `rules` (one transaction).
pub(crate) async fn apply_nft(
    netns: &Path,
    rules: &NetRules,
    timeout: Duration,
) -> Result<(), NemesisError> {
    let script = rules::nft_script(rules);
    let args = vec!["-f".to_string(), "-".to_string()];
    run_in_netns(netns, "nft", &args, Some(&script), timeout).await?;
    Ok(())
}

/// Replaces our iptables chain in the namespace at `netns` with `rules` (removes it and
/// its jump when `rules` is empty). IPv4 only.
pub(crate) async fn apply_iptables(
    netns: &Path,
    rules: &NetRules,
    timeout: Duration,
) -> Result<(), NemesisError> {
    if let Some(v6) = rules.drop_from.iter().find(|a| matches!(a, IpAddr::V6(_))) {
        return Err(NemesisError::Unsupported {
            fault: "partition",
            reason: format!(
                "the iptables backend handles IPv4 only, and {v6} is IPv6 (apt-get install nftables)"
            ),
        });
    }
    let t = timeout;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    if rules.is_empty() {
        // Heal: unhook and remove our chain; each step may find nothing to do.
        let _ = run_in_netns(netns, "iptables", &rules::iptables_jump_args("-D"), None, t).await;
        let _ = run_in_netns(
            netns,
            "iptables",
            &s(&["-w", "-F", rules::IPTABLES_CHAIN]),
            None,
            t,
        )
        .await;
        let _ = run_in_netns(
            netns,
            "iptables",
            &s(&["-w", "-X", rules::IPTABLES_CHAIN]),
            None,
            t,
        )
        .await;
        return Ok(());
    }
    let script = rules::iptables_restore_script(rules);
    run_in_netns(
        netns,
        "iptables-restore",
        &s(&["-w", "--noflush"]),
        Some(&script),
        t,
    )
    .await?;
    if run_in_netns(netns, "iptables", &rules::iptables_jump_args("-C"), None, t)
        .await
        .is_err()
    {
        run_in_netns(netns, "iptables", &rules::iptables_jump_args("-I"), None, t).await?;
    }
    Ok(())
}

fn applied(fault: &str, mechanism: Mechanism, nodes: Vec<String>) -> Applied {
    Applied {
        fault: fault.to_string(),
        mechanism,
        nodes,
        deferred: Vec::new(),
        confirmed_unix_ns: None,
    }
}

#[cfg(test)]
#[path = "nemesis_tests.rs"]
mod tests;
