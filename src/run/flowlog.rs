//! Flow-log records (docs/semantics.md#flow-log-records,
//! docs/semantics.md#network-sets-in-flow-logs) of one probe, from the model's
//! decision: one record per reporting stage.
//!
//! Reporters: the source workload's egress stage reports `src`, the destination
//! workload's ingress stage reports `dst`; a host-endpoint stage reports when at
//! least one tier applied there (`src` for egress stages, `dst` for the others).
//! Stages without a verdict (untracked / pre-DNAT pass-through) and reply-direction
//! checks make no record. Addresses are the packet as the reporting stage saw it.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::ProbeFlow;
use crate::model::{flow_log_policies, Decider, Decision, StageKind, StageResult};
use crate::resolve::{Action, EndpointKind, World};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Reporter {
    Src,
    Dst,
}

/// `{type, namespace, name, aggregated_name}` of one end (docs/semantics.md#flow-log-records).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub struct EndpointMeta {
    /// `wep`, `hep`, `ns` or `net`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `-` when not namespaced.
    pub namespace: String,
    pub name: String,
    pub aggregated_name: String,
}

impl std::fmt::Display for EndpointMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind == "net" {
            write!(f, "net {}", self.aggregated_name)
        } else if self.namespace == "-" {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One Felix flow-log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FlowLogRecord {
    pub reporter: Reporter,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub proto: &'static str,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub source: EndpointMeta,
    pub destination: EndpointMeta,
    /// `namespace/name` when the probe dialled a service address.
    pub destination_service: Option<String>,
    /// `allow` or `deny`.
    pub action: &'static str,
    /// The enforced policy trace, `<idx>|<tier>|<kind>:<name>|<action>|<rule>`.
    pub policies: Vec<String>,
    /// The trace with the staged policies enforced (decision `staged-preview`), as
    /// Calico Enterprise's `pending_policies`; equal to `policies` when no staged
    /// policy changes anything at this reporter.
    pub pending_policies: Vec<String>,
}

fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        1 => "icmp",
        58 => "icmp6",
        _ => "other",
    }
}

fn policing(k: StageKind) -> bool {
    !matches!(
        k,
        StageKind::ServiceDnat
            | StageKind::ServiceSnat
            | StageKind::EndpointToHost
            | StageKind::Unpoliced
    )
}

fn service_of(world: &World, flow: &ProbeFlow) -> Option<String> {
    world
        .services
        .iter()
        .find(|s| s.cluster_ip == Some(flow.dst_ip) || s.load_balancer_ip == Some(flow.dst_ip))
        .map(|s| format!("{}/{}", s.namespace, s.name))
}

/// One stage of a probe as a dataplane saw it (the kernel: the NFLOG events of one
/// stage on one node): the packet as that stage logged it, and each decider that
/// acted there with what it did, in rule order (passes, then the verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedStage {
    pub kind: StageKind,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
    pub deciders: Vec<(Decider, Action)>,
}

/// The flow-log records of a probe from what a dataplane saw, stage by stage in
/// path order, built as [`records`] builds the model's (same reporters, names and
/// policy strings), with the packet's real ports.
pub fn observed_records(
    world: &World,
    flow: &ProbeFlow,
    stages: &[ObservedStage],
) -> Vec<FlowLogRecord> {
    let service = service_of(world, flow);
    let mut out = Vec::new();
    for st in stages.iter().filter(|s| policing(s.kind)) {
        let mut policies = Vec::new();
        let mut action = None;
        for (d, a) in &st.deciders {
            let idx = policies.len();
            let entry = match d {
                Decider::Rule {
                    tier,
                    policy,
                    rule_index,
                    ..
                } => Some(format!("{idx}|{tier}|{policy}|{}|{rule_index}", a.lower())),
                Decider::EndOfTier { tier, policy, .. } => {
                    Some(format!("{idx}|{tier}|{policy}|{}|-1", a.lower()))
                }
                Decider::Profile { name, rule_index } => Some(format!(
                    "{idx}|__PROFILE__|pro:{name}|{}|{rule_index}",
                    a.lower()
                )),
                _ => None,
            };
            policies.extend(entry);
            match a {
                Action::Allow => action = Some("allow"),
                Action::Deny => action = Some("deny"),
                Action::Pass | Action::Log => {}
            }
        }
        let Some(action) = action else { continue };
        let Some(reporter) = reporter(st.kind, !policies.is_empty()) else {
            continue;
        };
        // The namespace of the stage's own endpoint: the workload that sent
        // (egress) or receives (ingress) the packet.
        let own = match st.kind {
            StageKind::WorkloadEgress => Some(st.src),
            StageKind::WorkloadIngress => Some(st.dst),
            _ => None,
        };
        let own_ns = own
            .and_then(|ip| world.owner(ip).workload)
            .and_then(|e| world.endpoints.get(e))
            .and_then(|e| e.namespace.clone());
        // Staged policies are not enforced: no dataplane sees them, and the report
        // takes their preview from the model (decision `kernel-flow-logs`).
        out.push(record(
            world,
            reporter,
            (st.src, st.dst, st.proto, st.src_port, st.dst_port),
            own_ns.as_deref(),
            &service,
            action,
            policies,
        ));
    }
    out
}

pub(super) fn records(world: &World, d: &Decision<'_>, flow: &ProbeFlow) -> Vec<FlowLogRecord> {
    let service = service_of(world, flow);
    let stages = d.trace.iter().filter(|s| policing(s.kind));
    let mut out = Vec::new();
    for (stage, fl) in stages.zip(flow_log_policies(d)) {
        if stage.reply {
            continue;
        }
        let action = match stage.result {
            StageResult::Allow(_) => "allow",
            StageResult::Deny(_) => "deny",
            StageResult::Continue => continue,
        };
        let Some(reporter) = reporter(stage.kind, !fl.policies.is_empty()) else {
            continue;
        };
        let own_ns = stage
            .endpoint
            .and_then(|e| world.endpoints.get(e))
            .and_then(|e| e.namespace.clone());
        let p = stage.packet;
        out.push(record(
            world,
            reporter,
            (p.src, p.dst, p.proto, p.src_port, p.dst_port),
            own_ns.as_deref(),
            &service,
            action,
            fl.policies,
        ));
    }
    out
}

/// Which end reports a policing stage: workload stages always (egress `src`,
/// ingress `dst`); a host-endpoint stage only where a tier applied (`has_policies`),
/// `src` for egress stages and `dst` for the others.
fn reporter(kind: StageKind, has_policies: bool) -> Option<Reporter> {
    match kind {
        StageKind::WorkloadEgress => Some(Reporter::Src),
        StageKind::WorkloadIngress => Some(Reporter::Dst),
        _ if !has_policies => None,
        StageKind::HostUntrackedEgress
        | StageKind::HostNormalEgress
        | StageKind::HostForwardEgress => Some(Reporter::Src),
        _ => Some(Reporter::Dst),
    }
}

/// One record of the packet `(src, dst, proto, src_port, dst_port)` as a stage saw
/// it; ports only for TCP, UDP and SCTP. The pending (staged) policy trace starts
/// as the enforced one; `run::predict` replaces it with the staged preview's.
fn record(
    world: &World,
    reporter: Reporter,
    (src, dst, proto, src_port, dst_port): (IpAddr, IpAddr, u8, u16, u16),
    own_ns: Option<&str>,
    service: &Option<String>,
    action: &'static str,
    policies: Vec<String>,
) -> FlowLogRecord {
    let ports = matches!(proto, 6 | 17 | 132);
    FlowLogRecord {
        reporter,
        src_ip: src,
        dst_ip: dst,
        proto: proto_name(proto),
        src_port: ports.then_some(src_port),
        dst_port: ports.then_some(dst_port),
        source: meta(world, src, own_ns),
        destination: meta(world, dst, own_ns),
        destination_service: service.clone(),
        action,
        pending_policies: policies.clone(),
        policies,
    }
}

/// docs/semantics.md#network-sets-in-flow-logs: a workload, a host endpoint, a network set (longest prefix; the
/// flow's own namespace first, then global sets, ties by name), else `net`.
pub(super) fn meta(world: &World, ip: IpAddr, own_ns: Option<&str>) -> EndpointMeta {
    let owner = world.owner(ip);
    if let Some(e) = owner.workload.and_then(|i| world.endpoints.get(i)) {
        return EndpointMeta {
            kind: "wep",
            namespace: e.namespace.clone().unwrap_or_else(|| "-".into()),
            name: e.name.clone(),
            aggregated_name: e.name.clone(),
        };
    }
    let hep = owner
        .host_endpoint
        .or_else(|| owner.node.and_then(|n| world.hep_for(n, "eth0")));
    if let Some(e) = hep.and_then(|i| world.endpoints.get(i)) {
        if e.kind == EndpointKind::Host {
            return EndpointMeta {
                kind: "hep",
                namespace: "-".into(),
                name: e.name.clone(),
                aggregated_name: e.node.clone(),
            };
        }
    }
    let mut best: Option<(u8, u8, &str, Option<&str>)> = None; // (ns rank, prefix, name, ns)
    for s in &world.network_sets {
        let Some(prefix) = s
            .nets
            .iter()
            .filter(|n: &&IpNet| n.contains(&ip))
            .map(|n| n.prefix_len())
            .max()
        else {
            continue;
        };
        let rank = match (&s.namespace, own_ns) {
            (Some(ns), Some(own)) if ns == own => 2,
            (None, _) => 1,
            _ => 0,
        };
        let cand = (rank, prefix, s.name.as_str(), s.namespace.as_deref());
        let better = match &best {
            None => true,
            Some(b) => {
                (cand.0, cand.1) > (b.0, b.1) || ((cand.0, cand.1) == (b.0, b.1) && cand.2 < b.2)
            }
        };
        if better {
            best = Some(cand);
        }
    }
    if let Some((_, _, name, ns)) = best {
        return EndpointMeta {
            kind: "ns",
            namespace: ns.unwrap_or("-").to_string(),
            name: name.to_string(),
            aggregated_name: name.to_string(),
        };
    }
    let private = match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    let agg = if private { "pvt" } else { "pub" };
    EndpointMeta {
        kind: "net",
        namespace: "-".into(),
        name: "-".into(),
        aggregated_name: agg.into(),
    }
}
