//! Creating a cluster: the network (after the overlap check) and one
//! container per node. The engine bodies are built by pure functions.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    Network, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListNetworksOptions};
use bollard::Docker;
use futures_util::future::try_join_all;

use crate::agent::TOKEN_ENV;
use crate::runtime::names::{container_labels, container_name, network_labels, network_name};
use crate::runtime::net::find_overlap;
use crate::runtime::rootfs::{AGENT_MOUNT, AGENT_PATH, CLOCK_MOUNT, DATA_MOUNT};
use crate::runtime::spec::{ClusterSpec, NodeSpec, PreparedImage, SpecError};
use crate::runtime::RuntimeError;

/// The engine body of the cluster network: a bridge with the spec's subnet,
/// the gateway at `.1` (the host's side), internal if asked, labelled.
pub(crate) fn network_body(spec: &ClusterSpec) -> Result<NetworkCreateRequest, SpecError> {
    let subnet = spec.subnet.ok_or(SpecError::NoSubnet)?;
    Ok(NetworkCreateRequest {
        name: network_name(&spec.run),
        driver: Some("bridge".into()),
        internal: Some(spec.internal),
        ipam: Some(Ipam {
            driver: Some("default".into()),
            config: Some(vec![IpamConfig {
                subnet: Some(subnet.to_string()),
                gateway: Some(subnet.gateway().to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        labels: Some(network_labels(&spec.run, &spec.harness)),
        ..Default::default()
    })
}

/// The engine body of `node`'s container: the bind-mounted binary as
/// entrypoint with the node's arguments, hostname = node name, fixed IP,
/// data dir at `/data`, clock dir read-only at `/faketime`, the node's
/// environment, labels.
pub(crate) fn container_body(
    spec: &ClusterSpec,
    node: &NodeSpec,
    image: &str,
) -> Result<ContainerCreateBody, SpecError> {
    let dirs = spec.node_dirs(&node.name);
    let network = network_name(&spec.run);
    let ip = node.fixed_ip()?;
    let node_env: Vec<String> = node.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut binds = vec![format!("{}:{DATA_MOUNT}", dirs.data.display())];
    // A host program is bind-mounted and is the entry point, or, with an agent, the
    // agent is: it runs the program as its child (with the node's environment; the agent
    // itself is never under libfaketime), writes the clock file itself and changes the
    // node's packet rules (NET_ADMIN in the node, nothing on the host). An image's own
    // program runs as the image says, without an agent (its entry point is the image's).
    let (entrypoint, cmd, env, cap_add) = match (&spec.agent, spec.image_program) {
        (_, true) => {
            binds.push(format!("{}:{CLOCK_MOUNT}:ro", dirs.clock.display()));
            (None, node.args.clone(), node_env, None)
        }
        (None, false) => {
            let mount = spec.binary_mount()?;
            if !spec.binary_in_image {
                binds.insert(0, format!("{}:{mount}:ro", spec.binary.display()));
            }
            binds.push(format!("{}:{CLOCK_MOUNT}:ro", dirs.clock.display()));
            (Some(vec![mount]), node.args.clone(), node_env, None)
        }
        (Some(agent), false) => {
            let mount = spec.binary_mount()?;
            if !spec.binary_in_image {
                binds.insert(0, format!("{}:{mount}:ro", spec.binary.display()));
            }
            binds.push(format!("{}:{CLOCK_MOUNT}", dirs.clock.display()));
            binds.push(format!("{}:{AGENT_MOUNT}:ro", agent.binary.display()));
            let mut cmd = vec![
                "agent".to_string(),
                "--listen".to_string(),
                format!("0.0.0.0:{}", agent.port),
                "--ip".to_string(),
                ip.to_string(),
                "--clock-dir".to_string(),
                CLOCK_MOUNT.to_string(),
            ];
            if let Some((uid, gid)) = agent.child_user {
                cmd.extend(["--user".to_string(), format!("{uid}:{gid}")]);
            }
            for e in node_env {
                cmd.extend(["--env".to_string(), e]);
            }
            cmd.push("--".to_string());
            cmd.push(mount);
            cmd.extend(node.args.iter().cloned());
            let env = vec![
                format!("{TOKEN_ENV}={}", agent.token),
                format!("PATH={AGENT_PATH}"),
            ];
            (
                Some(vec![AGENT_MOUNT.to_string()]),
                cmd,
                env,
                Some(vec!["NET_ADMIN".to_string()]),
            )
        }
    };
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(ContainerCreateBody {
        image: Some(image.to_string()),
        hostname: Some(node.name.to_string()),
        entrypoint,
        cmd: Some(cmd),
        env: Some(env),
        working_dir: Some(DATA_MOUNT.to_string()),
        labels: Some(container_labels(
            &spec.run,
            &node.name,
            &spec.nodes_dir().display().to_string(),
            &spec.harness,
        )),
        host_config: Some(HostConfig {
            binds: Some(binds),
            cap_add,
            network_mode: Some(network.clone()),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network, endpoint)])),
        }),
        ..Default::default()
    })
}

/// Each network's name and IPv4/IPv6 subnets, as the overlap check wants them.
pub(crate) fn network_subnets(networks: &[Network]) -> Vec<(String, Vec<String>)> {
    networks
        .iter()
        .map(|n| {
            let subnets = n
                .ipam
                .as_ref()
                .and_then(|i| i.config.as_ref())
                .map(|cs| cs.iter().filter_map(|c| c.subnet.clone()).collect())
                .unwrap_or_default();
            (n.name.clone().unwrap_or_default(), subnets)
        })
        .collect()
}

/// Creates the network and the containers of `spec`, then starts them all; each node's
/// address is its fixed IP.
pub(crate) async fn create_cluster(
    docker: &Docker,
    spec: &ClusterSpec,
    image: &PreparedImage,
) -> Result<Vec<IpAddr>, RuntimeError> {
    let subnet = spec.subnet.ok_or(SpecError::NoSubnet)?;
    let addresses = spec
        .nodes
        .iter()
        .map(|n| n.fixed_ip().map(IpAddr::V4))
        .collect::<Result<Vec<_>, SpecError>>()?;
    let network = network_name(&spec.run);
    let networks = docker
        .list_networks(None::<ListNetworksOptions>)
        .await
        .map_err(|e| RuntimeError::engine("list networks", e))?;
    let others: Vec<_> = network_subnets(&networks)
        .into_iter()
        .filter(|(name, _)| *name != network)
        .collect();
    if let Some((name, existing)) = find_overlap(&subnet, &others) {
        return Err(RuntimeError::SubnetInUse {
            subnet: subnet.to_string(),
            network: name,
            existing,
        });
    }
    docker
        .create_network(network_body(spec)?)
        .await
        .map_err(|e| match e {
            // Another run created an overlapping network between our check and this
            // call: the same condition as the check above, so the caller can move on.
            bollard::errors::Error::DockerResponseServerError {
                status_code: 403,
                ref message,
            } if message.contains("overlaps") => RuntimeError::SubnetInUse {
                subnet: subnet.to_string(),
                network: "(created concurrently by another run)".to_string(),
                existing: message.clone(),
            },
            e => RuntimeError::engine(format!("create network {network}"), e),
        })?;

    let bodies = spec
        .nodes
        .iter()
        .map(|n| {
            Ok((
                container_name(&spec.run, &n.name),
                container_body(spec, n, &image.reference)?,
            ))
        })
        .collect::<Result<Vec<_>, SpecError>>()?;
    try_join_all(bodies.into_iter().map(|(name, body)| async move {
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| RuntimeError::engine(format!("create container {name}"), e))?;
        docker
            .start_container(&name, None)
            .await
            .map_err(|e| RuntimeError::engine(format!("start container {name}"), e))
    }))
    .await?;
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::names::{NodeName, RunId};
    use crate::runtime::spec::ReadyProbe;
    use std::net::Ipv4Addr;

    fn spec() -> ClusterSpec {
        let mut s = ClusterSpec::new(
            RunId::new("t7").unwrap(),
            "/runs/t7",
            "/build/faultline-node",
        );
        s.subnet = Some("10.44.1.0/24".parse().unwrap());
        s.nodes = vec![NodeSpec {
            name: NodeName::new("n1").unwrap(),
            host: Ipv4Addr::new(10, 44, 1, 11).to_string(),
            args: vec!["raft-register".into(), "--id".into(), "1".into()],
            env: vec![("FAKETIME_NO_CACHE".into(), "1".into())],
            ready: Some(ReadyProbe::health(7001)),
            files: Vec::new(),
        }];
        s
    }

    #[test]
    fn network_request() {
        let body = network_body(&spec()).unwrap();
        assert_eq!(body.name, "faultline-t7");
        assert_eq!(body.driver.as_deref(), Some("bridge"));
        assert_eq!(body.internal, Some(true));
        let ipam = body.ipam.unwrap().config.unwrap();
        assert_eq!(ipam[0].subnet.as_deref(), Some("10.44.1.0/24"));
        assert_eq!(ipam[0].gateway.as_deref(), Some("10.44.1.1"));
        let labels = body.labels.unwrap();
        assert_eq!(labels.get("faultline").map(String::as_str), Some("1"));
        assert_eq!(labels.get("faultline.run").map(String::as_str), Some("t7"));
    }

    #[test]
    fn container_request() {
        let s = spec();
        let body = container_body(&s, &s.nodes[0], "faultline-base:abc").unwrap();
        assert_eq!(body.image.as_deref(), Some("faultline-base:abc"));
        assert_eq!(body.hostname.as_deref(), Some("n1"));
        assert_eq!(
            body.entrypoint,
            Some(vec!["/usr/local/bin/faultline-node".to_string()])
        );
        assert_eq!(
            body.cmd,
            Some(vec![
                "raft-register".to_string(),
                "--id".to_string(),
                "1".to_string()
            ])
        );
        assert_eq!(body.env, Some(vec!["FAKETIME_NO_CACHE=1".to_string()]));
        let host = body.host_config.unwrap();
        assert_eq!(
            host.binds,
            Some(vec![
                "/build/faultline-node:/usr/local/bin/faultline-node:ro".to_string(),
                "/runs/t7/nodes/n1/data:/data".to_string(),
                "/runs/t7/nodes/n1/faketime:/faketime:ro".to_string(),
            ])
        );
        assert_eq!(host.network_mode.as_deref(), Some("faultline-t7"));
        let eps = body.networking_config.unwrap().endpoints_config.unwrap();
        let ip = eps["faultline-t7"]
            .ipam_config
            .as_ref()
            .unwrap()
            .ipv4_address
            .clone();
        assert_eq!(ip.as_deref(), Some("10.44.1.11"));
        let labels = body.labels.unwrap();
        assert_eq!(labels.get("faultline.node").map(String::as_str), Some("n1"));
        assert_eq!(
            labels.get("faultline.nodes-dir").map(String::as_str),
            Some("/runs/t7/nodes")
        );
    }

    #[test]
    fn an_image_program_is_not_mounted_and_keeps_the_image_entrypoint() {
        let mut s = spec();
        s.image_program = true;
        s.binary = "relative-is-fine".into();
        assert_eq!(s.validate(), Ok(()));
        let body = container_body(&s, &s.nodes[0], "mydb:1").unwrap();
        assert_eq!(body.entrypoint, None);
        assert_eq!(
            body.cmd,
            Some(vec!["raft-register".into(), "--id".into(), "1".into()])
        );
        let binds = body.host_config.and_then(|h| h.binds).unwrap_or_default();
        assert_eq!(binds.len(), 2, "{binds:?}");
        assert!(binds.iter().all(|b| !b.contains("faultline-node")));
    }

    #[test]
    fn subnets_of_listed_networks() {
        let nets = vec![
            Network {
                name: Some("bridge".into()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some("172.17.0.0/16".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Network {
                name: Some("none".into()),
                ..Default::default()
            },
        ];
        assert_eq!(
            network_subnets(&nets),
            vec![
                ("bridge".to_string(), vec!["172.17.0.0/16".to_string()]),
                ("none".to_string(), vec![]),
            ]
        );
    }
}
