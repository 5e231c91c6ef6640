//! The lab a scenario needs, derived from its states (the inventory after every step).
//!
//! The lab is built once per run and never rebuilt between steps (policy changes are
//! nft table replacements), so it holds the union of everything that ever exists:
//! every node and outside host, and every pod that exists at any step, with the
//! addresses and node it was given (a pod keeps its addresses across replacements,
//! see `scenario` docs). Servers are the union of the declared ports over the steps.
//!
//! Decisions:
//! - Host-networked pods are not pods of the lab: their declared ports are served by
//!   the node itself.
//! - An outside host with `files:` serves them over HTTP on port 80 (and HTTPS on
//!   443) with the feed server, so those ports get no echo server.
//! - Load-balancer routes: the node each LB address arrives at in the first state it
//!   exists ([`crate::model::lb_arrival_node`]); [`load_balancer_routes`] gives them
//!   for any later state, so a runner can move a route when a patch changes it.
//! - A pod whose node or addresses differ between two steps cannot be represented by
//!   a lab built once: that is an error naming the pod.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{
    LabPlan, LoadBalancerPlan, NodePlan, OutsideHostPlan, PlanError, PodPlan, ServerProtocol,
    ServerSpec,
};
use crate::inventory::{Inventory, L4};
use crate::manifest::Body;
use crate::resolve::{EndpointKind, World};

/// Why a lab cannot be planned for a scenario.
#[derive(Debug, thiserror::Error)]
pub enum FromStatesError {
    #[error("the scenario has no state")]
    NoStates,
    #[error("pod {pod} moves between steps ({what}); policylab builds the lab once per run and cannot move a pod")]
    PodMoves { pod: String, what: String },
    #[error("pod {pod} has no IPv4 address")]
    PodWithoutV4 { pod: String },
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// The protocol of a server for a declared port.
fn server(protocol: L4, port: u16) -> ServerSpec {
    ServerSpec::new(
        port,
        match protocol {
            L4::Tcp => ServerProtocol::Tcp,
            L4::Udp => ServerProtocol::Udp,
            L4::Sctp => ServerProtocol::Sctp,
        },
    )
}

fn proto_of(name: Option<&str>) -> Option<ServerProtocol> {
    match name.unwrap_or("TCP") {
        "TCP" => Some(ServerProtocol::Tcp),
        "UDP" => Some(ServerProtocol::Udp),
        "SCTP" => Some(ServerProtocol::Sctp),
        _ => None,
    }
}

/// Declared container ports of every pod (by `namespace/name`) and whether it is
/// host-networked, in one state.
fn pod_ports(inv: &Inventory) -> BTreeMap<(String, String), (bool, String, Vec<ServerSpec>)> {
    let mut out = BTreeMap::new();
    for r in inv.resources.values() {
        let Body::Pod(p) = &r.body else { continue };
        let key = r.key();
        let mut servers = Vec::new();
        for c in &p.containers {
            for port in &c.ports {
                let Ok(n) = u16::try_from(port.value.container_port.value) else {
                    continue;
                };
                let proto = proto_of(port.value.protocol.as_ref().map(|s| s.value.as_str()));
                if let Some(proto) = proto {
                    servers.push(ServerSpec::new(n, proto));
                }
            }
        }
        let node = p
            .node_name
            .as_ref()
            .map(|n| n.value.clone())
            .or_else(|| inv.nodes.first().map(|n| n.name.clone()))
            .unwrap_or_default();
        out.insert(
            (key.namespace.clone().unwrap_or_default(), key.name.clone()),
            (p.host_network == Some(true), node, servers),
        );
    }
    out
}

/// The lab for a scenario whose states (in step order, the initial one first) are
/// `states`, each inventory with the world it resolves to (a run plan has both), with
/// namespace prefix `prefix`.
pub fn plan_for_states(
    prefix: &str,
    states: &[(&Inventory, &World)],
) -> Result<LabPlan, FromStatesError> {
    let (first, _) = states.first().ok_or(FromStatesError::NoStates)?;
    let mut nodes: BTreeMap<String, NodePlan> = BTreeMap::new();
    for (i, n) in first.nodes.iter().enumerate() {
        let mut plan = NodePlan::new(&n.name, n.ip);
        plan.ipv6 = n.ipv6;
        plan.interfaces = n
            .interfaces
            .iter()
            .filter(|i| *i != "eth0")
            .cloned()
            .collect();
        plan.pod_cidrs
            .extend(first.cluster.node_pod_range_v4(i).map(ipnet::IpNet::V4));
        plan.pod_cidrs
            .extend(first.cluster.node_pod_range_v6(i).map(ipnet::IpNet::V6));
        plan.servers = n.ports.iter().map(|p| server(p.protocol, p.port)).collect();
        nodes.insert(n.name.clone(), plan);
    }
    let mut outside: BTreeMap<String, OutsideHostPlan> = BTreeMap::new();
    for o in &first.outside {
        let serves_files = !o.files.is_empty();
        let servers = o
            .ports
            .iter()
            .map(|p| server(p.protocol, p.port))
            .filter(|s| {
                !(serves_files
                    && s.protocol == ServerProtocol::Tcp
                    && (s.port == 80 || s.port == 443))
            })
            .collect();
        outside.insert(
            o.name.clone(),
            OutsideHostPlan {
                name: o.name.clone(),
                addresses: o.ips.clone(),
                servers,
            },
        );
    }

    let mut pods: BTreeMap<(String, String), PodPlan> = BTreeMap::new();
    let mut lbs: BTreeMap<IpAddr, String> = BTreeMap::new();
    for &(inv, world) in states {
        let ports = pod_ports(inv);
        for (_, (host_network, node, servers)) in ports.iter().filter(|(_, v)| v.0) {
            debug_assert!(*host_network);
            if let Some(n) = nodes.get_mut(node) {
                n.servers.extend(servers.iter().copied());
            }
        }
        for e in world
            .endpoints
            .iter()
            .filter(|e| e.kind == EndpointKind::Workload)
        {
            let ns = e.namespace.clone().unwrap_or_default();
            let key = (ns.clone(), e.name.clone());
            let pod = format!("{ns}/{}", e.name);
            let v4 = e.ips.iter().find_map(|ip| match ip {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            });
            let v6 = e.ips.iter().find_map(|ip| match ip {
                IpAddr::V6(a) => Some(*a),
                IpAddr::V4(_) => None,
            });
            let servers = ports.get(&key).map(|p| p.2.clone()).unwrap_or_default();
            match pods.get_mut(&key) {
                Some(existing) => {
                    if existing.node != e.node {
                        return Err(FromStatesError::PodMoves {
                            pod,
                            what: format!("node {} then {}", existing.node, e.node),
                        });
                    }
                    if Some(existing.ipv4) != v4 || existing.ipv6 != v6 {
                        return Err(FromStatesError::PodMoves {
                            pod,
                            what: "its addresses change".into(),
                        });
                    }
                    existing.servers.extend(servers);
                }
                None => {
                    let v4 = v4.ok_or(FromStatesError::PodWithoutV4 { pod: pod.clone() })?;
                    let mut plan = PodPlan::new(&ns, &e.name, &e.node, v4);
                    plan.ipv6 = v6;
                    plan.servers = servers;
                    pods.insert(key, plan);
                }
            }
        }
        for lb in load_balancer_routes(world) {
            lbs.entry(lb.address).or_insert(lb.node);
        }
    }
    // Decision `ipam-blocks`: a node routes the IPAM blocks its pods' addresses
    // are in (blocks are claimed by one node only).
    for p in pods.values() {
        if let (Some(block), Some(n)) = (first.cluster.block_of(p.ipv4), nodes.get_mut(&p.node)) {
            let block = ipnet::IpNet::V4(block);
            if !n.pod_cidrs.contains(&block) {
                n.pod_cidrs.push(block);
            }
        }
    }
    for n in nodes.values_mut() {
        n.servers.sort();
        n.servers.dedup();
    }
    for p in pods.values_mut() {
        p.servers.sort();
        p.servers.dedup();
    }
    let mut b = LabPlan::builder(prefix);
    for n in nodes.into_values() {
        b = b.node(n);
    }
    for p in pods.into_values() {
        b = b.pod(p);
    }
    for o in outside.into_values() {
        b = b.outside(o);
    }
    for (address, node) in lbs {
        b = b.load_balancer(address, node);
    }
    Ok(b.build()?)
}

/// Where the fabric must route each load-balancer address in this state.
pub fn load_balancer_routes(world: &World) -> Vec<LoadBalancerPlan> {
    let mut out: Vec<LoadBalancerPlan> = world
        .services
        .iter()
        .filter_map(|s| {
            let address = s.load_balancer_ip?;
            let node = crate::model::lb_arrival_node(world, address)?;
            Some(LoadBalancerPlan {
                address,
                node: world.nodes.get(node)?.name.clone(),
            })
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.address == b.address);
    out
}
