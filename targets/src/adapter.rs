//! The nemesis's view of a runtime node: [`NemesisNode`] implements
//! [`faultline_nemesis::Node`] for a [`runtime::Node`](crate::runtime::Node) handle.
//!
//! The nemesis asks for the pid and network namespace synchronously, while the runtime
//! learns them asynchronously; the adapter keeps the status each lifecycle call returns
//! (a start gives a new pid and a new namespace) and answers from it.
//!
//! With a node agent ([`NemesisNode::with_agent`]) every fault goes through the agent
//! over the network: packet and clock faults through [`faultline_nemesis::NodeAgent`],
//! kill / start / pause / resume to the agent's child (the system under test). The
//! container-level operations stay available on [`NemesisNode::handle`].
//!
//! Where the runtime moves clocks itself ([`NemesisNode::with_runtime_clock`]: Kubernetes
//! with Chaos Mesh), clock changes go to [`Runtime::set_clock`](crate::runtime::Runtime)
//! instead of the agent, and a start goes through the runtime, which shifts the clock of
//! the program it started again.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use faultline_nemesis::rules::NetRules;
use faultline_nemesis::{
    unix_ns_now, ConfirmFuture, Confirmed, Mechanism, Node as NemesisNodeTrait, NodeAgent,
    NodeFuture, Strobe,
};

use crate::agent::{AgentClient, ProcessOp};
use crate::runtime::{Node, NodeStatus, RuntimeError};

/// A runtime node as the nemesis sees it.
#[derive(Debug)]
pub struct NemesisNode {
    node: Node,
    name: String,
    status: Mutex<NodeStatus>,
    agent: Option<AgentClient>,
    /// The agent with clock changes going to the runtime, when it moves clocks itself.
    runtime_clock: Option<RuntimeClockAgent>,
}

/// A node's agent whose clock changes go to the runtime ([`Node::set_clock_by_runtime`]):
/// packet faults still go to the agent.
#[derive(Debug)]
struct RuntimeClockAgent {
    agent: AgentClient,
    node: Node,
}

impl NodeAgent for RuntimeClockAgent {
    fn control_port(&self) -> u16 {
        self.agent.control_port()
    }

    fn set_net(&self, rules: &NetRules) -> ConfirmFuture<'_> {
        self.agent.set_net(rules)
    }

    fn set_delay(&self, ms: Option<u32>) -> ConfirmFuture<'_> {
        self.agent.set_delay(ms)
    }

    fn set_rate(&self, kbit: Option<u32>) -> ConfirmFuture<'_> {
        self.agent.set_rate(kbit)
    }

    fn set_clock(&self, offset_ms: i64, strobe: Option<Strobe>) -> ConfirmFuture<'_> {
        Box::pin(async move {
            if strobe.is_some() {
                return Err(format!(
                    "node {}: the runtime holds a clock offset, it cannot strobe one",
                    self.node.name()
                )
                .into());
            }
            self.node.set_clock_by_runtime(offset_ms).await?;
            // The runtime returns once the offset is in force (Chaos Mesh injected it).
            Ok(Confirmed {
                mechanism: Mechanism::Runtime,
                in_force_unix_ns: unix_ns_now(),
            })
        })
    }
}

impl NemesisNode {
    /// Wraps `node`, reading its current status once.
    pub async fn new(node: Node) -> Result<NemesisNode, RuntimeError> {
        let status = node.status().await?;
        Ok(NemesisNode {
            name: node.name().to_string(),
            node,
            status: Mutex::new(status),
            agent: None,
            runtime_clock: None,
        })
    }

    /// Clock changes go to the runtime, which moves clocks itself
    /// ([`crate::runtime::Capabilities::clock_by_runtime`]); needs the agent
    /// ([`NemesisNode::with_agent`]) first, for the other faults.
    pub fn with_runtime_clock(mut self) -> NemesisNode {
        if let Some(agent) = &self.agent {
            self.runtime_clock = Some(RuntimeClockAgent {
                agent: agent.clone(),
                node: self.node.clone(),
            });
        }
        self
    }

    /// Carries every fault out through the node's agent.
    pub fn with_agent(mut self, agent: AgentClient) -> NemesisNode {
        self.agent = Some(agent);
        self
    }

    /// The node's agent, if faults go through one.
    pub fn agent_client(&self) -> Option<&AgentClient> {
        self.agent.as_ref()
    }

    fn through_agent(&self, op: ProcessOp) -> Option<NodeFuture<'_>> {
        let agent = self.agent.as_ref()?;
        Some(Box::pin(async move {
            agent.process(op).await?;
            Ok(())
        }))
    }

    /// The runtime handle.
    pub fn handle(&self) -> &Node {
        &self.node
    }

    /// The last status seen.
    pub fn last_status(&self) -> NodeStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn remember(&self, status: NodeStatus) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }

    fn lifecycle<'a, F, Fut>(&'a self, op: F) -> NodeFuture<'a>
    where
        F: FnOnce(&'a Node) -> Fut + Send + 'a,
        Fut: std::future::Future<Output = Result<NodeStatus, RuntimeError>> + Send + 'a,
    {
        Box::pin(async move {
            let status = op(&self.node).await?;
            self.remember(status);
            Ok(())
        })
    }
}

impl NemesisNodeTrait for NemesisNode {
    fn name(&self) -> &str {
        &self.name
    }
    fn ip(&self) -> IpAddr {
        self.node.ip()
    }
    fn netns_path(&self) -> Option<PathBuf> {
        self.last_status().netns_path
    }
    fn pid(&self) -> Option<u32> {
        self.last_status().pid
    }
    fn clock_dir(&self) -> PathBuf {
        self.node.clock_dir().to_path_buf()
    }
    fn start(&self) -> NodeFuture<'_> {
        if self.runtime_clock.is_some() {
            // The runtime starts the program through the agent and shifts its clock.
            return self.lifecycle(|n| n.start());
        }
        self.through_agent(ProcessOp::Start)
            .unwrap_or_else(|| self.lifecycle(|n| n.start()))
    }
    fn kill(&self) -> NodeFuture<'_> {
        self.through_agent(ProcessOp::Kill)
            .unwrap_or_else(|| self.lifecycle(|n| n.kill()))
    }
    fn pause(&self) -> NodeFuture<'_> {
        self.through_agent(ProcessOp::Pause)
            .unwrap_or_else(|| self.lifecycle(|n| n.pause()))
    }
    fn resume(&self) -> NodeFuture<'_> {
        self.through_agent(ProcessOp::Resume)
            .unwrap_or_else(|| self.lifecycle(|n| n.resume()))
    }
    fn agent(&self) -> Option<&dyn NodeAgent> {
        match &self.runtime_clock {
            Some(clock) => Some(clock as &dyn NodeAgent),
            None => self.agent.as_ref().map(|a| a as &dyn NodeAgent),
        }
    }
}
