//! Per-node engine calls: status, the lifecycle steps, logs.

use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptionsBuilder, LogsOptionsBuilder,
    RestartContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::runtime::names::NodeRef;
use crate::runtime::state::{plan_step, Action, NodeState, NodeStatus, Step};
use crate::runtime::RuntimeError;

/// How long a killed container may take to be reported stopped.
const KILL_WAIT: Duration = Duration::from_secs(15);
/// Poll interval while waiting for a killed container.
const KILL_POLL: Duration = Duration::from_millis(10);

/// The node's state and host pid, from a container inspect.
pub(crate) async fn status(docker: &Docker, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
    let name = node.container_name();
    let inspect = docker
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await
        .map_err(|e| RuntimeError::engine(format!("inspect container {name}"), e))?;
    let state = inspect.state.unwrap_or_default();
    let text = state.status.map(|s| s.to_string()).unwrap_or_default();
    Ok(NodeStatus::from_pid(
        NodeState::from_engine_status(&text),
        state.pid.unwrap_or(0),
    ))
}

/// Brings the node where `action` leads (see [`plan_step`]) and returns its
/// status afterwards.
pub(crate) async fn act(
    docker: &Docker,
    node: &NodeRef,
    action: Action,
) -> Result<NodeStatus, RuntimeError> {
    let name = node.container_name();
    let current = status(docker, node).await?;
    let op = |what: &str| format!("{what} container {name}");
    match plan_step(current.state, action) {
        Step::Nothing => return Ok(current),
        Step::Refuse => {
            return Err(RuntimeError::InvalidState {
                node: node.name.to_string(),
                action,
                state: current.state,
            })
        }
        Step::Start => docker
            .start_container(&name, None)
            .await
            .map_err(|e| RuntimeError::engine(op("start"), e))?,
        Step::Unpause => docker
            .unpause_container(&name)
            .await
            .map_err(|e| RuntimeError::engine(op("unpause"), e))?,
        Step::Pause => docker
            .pause_container(&name)
            .await
            .map_err(|e| RuntimeError::engine(op("pause"), e))?,
        Step::Kill => {
            let options = KillContainerOptionsBuilder::default()
                .signal("SIGKILL")
                .build();
            if let Err(e) = docker.kill_container(&name, Some(options)).await {
                // It may have exited on its own since the inspect.
                if status(docker, node).await?.state != NodeState::Stopped {
                    return Err(RuntimeError::engine(op("kill"), e));
                }
            }
            return wait_stopped(docker, node).await;
        }
    }
    status(docker, node).await
}

/// Polls until the engine reports the node stopped.
async fn wait_stopped(docker: &Docker, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        let s = status(docker, node).await?;
        if s.state == NodeState::Stopped {
            return Ok(s);
        }
        if Instant::now() >= deadline {
            return Err(RuntimeError::engine(
                format!("kill container {}", node.container_name()),
                format!("still {:?} {KILL_WAIT:?} after SIGKILL", s.state),
            ));
        }
        tokio::time::sleep(KILL_POLL).await;
    }
}

/// The engine's restart (SIGTERM, SIGKILL after `grace`, start); a paused
/// node is thawed first.
pub(crate) async fn restart(
    docker: &Docker,
    node: &NodeRef,
    grace: Duration,
) -> Result<NodeStatus, RuntimeError> {
    let name = node.container_name();
    if status(docker, node).await?.state == NodeState::Paused {
        docker
            .unpause_container(&name)
            .await
            .map_err(|e| RuntimeError::engine(format!("unpause container {name}"), e))?;
    }
    let secs = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
    let options = RestartContainerOptionsBuilder::default().t(secs).build();
    docker
        .restart_container(&name, Some(options))
        .await
        .map_err(|e| RuntimeError::engine(format!("restart container {name}"), e))?;
    status(docker, node).await
}

/// The tail argument of the logs call: `all` or the line count.
pub(crate) fn tail_arg(tail: Option<usize>) -> String {
    tail.map_or_else(|| "all".to_string(), |n| n.to_string())
}

/// The container's stdout and stderr, interleaved as the engine returns them.
pub(crate) async fn logs(
    docker: &Docker,
    node: &NodeRef,
    tail: Option<usize>,
) -> Result<Vec<u8>, RuntimeError> {
    let name = node.container_name();
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&tail_arg(tail))
        .build();
    let mut stream = docker.logs(&name, Some(options));
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| RuntimeError::engine(format!("logs of container {name}"), e))?;
        match chunk {
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message }
            | LogOutput::StdIn { message } => out.extend_from_slice(&message),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_argument() {
        assert_eq!(tail_arg(None), "all");
        assert_eq!(tail_arg(Some(20)), "20");
    }
}
