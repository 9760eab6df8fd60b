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

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use faultline_nemesis::{Node as NemesisNodeTrait, NodeAgent, NodeFuture};

use crate::agent::{AgentClient, ProcessOp};
use crate::runtime::{Node, NodeStatus, RuntimeError};

/// A runtime node as the nemesis sees it.
#[derive(Debug)]
pub struct NemesisNode {
    node: Node,
    name: String,
    status: Mutex<NodeStatus>,
    agent: Option<AgentClient>,
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
        })
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
        self.agent.as_ref().map(|a| a as &dyn NodeAgent)
    }
}
