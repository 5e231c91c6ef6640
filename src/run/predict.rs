//! The model's prediction for one probe: the policy verdict, then what answers at
//! the destination (see the decisions in [`super`]).

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{flowlog, FeedStatus, LogLine, Outcome, Prediction, ProbeFlow, StagedPreview};
use crate::inventory::{Inventory, L4};
use crate::manifest::Body;
use crate::model::{self, Decider, Destination, StageResult, Step, Verdict};
use crate::resolve::{Action, World};
use crate::scenario::{Endpoint, ProbeProtocol};

/// Who holds an address, as far as answering goes.
enum Server<'i> {
    /// Declared (port, protocol) pairs; `files` when port 80 serves files.
    Ports {
        ports: Vec<(u16, L4)>,
        files: Option<&'i crate::inventory::OutsideHost>,
    },
    Nobody,
}

fn l4_of(p: ProbeProtocol) -> Option<L4> {
    match p {
        ProbeProtocol::Tcp | ProbeProtocol::Http => Some(L4::Tcp),
        ProbeProtocol::Udp => Some(L4::Udp),
        ProbeProtocol::Sctp => Some(L4::Sctp),
        ProbeProtocol::Icmp => None,
    }
}

fn server_at<'i>(world: &World, inv: &'i Inventory, dest: Destination, ip: IpAddr) -> Server<'i> {
    match dest {
        Destination::Workload(e) => {
            let Some(ep) = world.endpoints.get(e) else {
                return Server::Nobody;
            };
            let key = crate::manifest::ResourceKey {
                kind: crate::manifest::Kind::Pod,
                namespace: ep.namespace.clone(),
                name: ep.name.clone(),
            };
            let ports = match inv.resources.get(&key).map(|r| &r.body) {
                Some(Body::Pod(p)) => pod_ports(p),
                _ => Vec::new(),
            };
            Server::Ports { ports, files: None }
        }
        Destination::Host(n) => {
            let name = world.nodes.get(n).map(|n| n.name.as_str()).unwrap_or("");
            match inv.nodes.iter().find(|x| x.name == name) {
                Some(node) => {
                    let mut ports: Vec<(u16, L4)> =
                        node.ports.iter().map(|p| (p.port, p.protocol)).collect();
                    // Host-networked pods on the node serve on its addresses.
                    for r in inv.resources.values() {
                        if let Body::Pod(p) = &r.body {
                            let on_node = p.node_name.as_ref().is_some_and(|n| n.value == name);
                            if p.host_network == Some(true) && on_node {
                                ports.extend(pod_ports(p));
                            }
                        }
                    }
                    Server::Ports { ports, files: None }
                }
                None => Server::Nobody,
            }
        }
        Destination::Outside => match inv.outside.iter().find(|h| h.ips.contains(&ip)) {
            Some(h) => Server::Ports {
                ports: h.ports.iter().map(|p| (p.port, p.protocol)).collect(),
                files: (!h.files.is_empty()).then_some(h),
            },
            None => Server::Nobody,
        },
    }
}

/// A pod's declared container ports.
fn pod_ports(p: &crate::manifest::types::PodSpec) -> Vec<(u16, L4)> {
    let mut ports = Vec::new();
    for c in &p.containers {
        for port in &c.ports {
            let proto = match port
                .value
                .protocol
                .as_ref()
                .map(|s| s.value.to_ascii_uppercase())
                .as_deref()
            {
                Some("UDP") => L4::Udp,
                Some("SCTP") => L4::Sctp,
                _ => L4::Tcp,
            };
            if let Ok(n) = u16::try_from(port.value.container_port.value) {
                ports.push((n, proto));
            }
        }
    }
    ports
}

fn outside_owner(inv: &Inventory, ip: IpAddr) -> Option<&str> {
    inv.outside
        .iter()
        .find(|h| h.ips.contains(&ip))
        .map(|h| h.name.as_str())
}

fn policy_outcome(v: Verdict) -> Outcome {
    match v {
        Verdict::Allow => Outcome::Allow,
        Verdict::Deny => Outcome::Deny,
        Verdict::Refused => Outcome::Refused,
    }
}

pub(super) fn predict(
    world: &World,
    inv: &Inventory,
    failed: &BTreeSet<String>,
    feeds: &[FeedStatus],
    flow: &ProbeFlow,
) -> Prediction {
    let d = model::evaluate(world, &flow.model_flow());
    let mut allowing: Vec<Decider> = Vec::new();
    let mut log_lines = Vec::new();
    for stage in &d.trace {
        if let StageResult::Allow(by) = stage.result {
            let dec = Decider::from(by);
            if !allowing.contains(&dec) {
                allowing.push(dec);
            }
        }
        for step in &stage.steps {
            if let Step::Rule {
                action: Action::Log,
                matched: true,
                ..
            } = step
            {
                let p = stage.packet;
                log_lines.push(LogLine {
                    prefix: world.log_prefix(stage.node).to_string(),
                    src: p.src,
                    dst: p.dst,
                    proto: p.proto,
                    dst_port: matches!(p.proto, 6 | 17 | 132).then_some(p.dst_port),
                });
            }
        }
    }
    let mut flow_logs = flowlog::records(world, &d, flow);
    let staged = match world.staged_preview.as_deref() {
        None => StagedPreview {
            verdict: policy_outcome(d.verdict),
            decider: Decider::from(d.decided_by),
            differs: false,
        },
        Some(pw) => {
            let p = model::evaluate(pw, &flow.model_flow());
            // Decision `staged-preview`: the pending trace of each reporter that the
            // enforced flow reached.
            let pending = flowlog::records(pw, &p, flow);
            for rec in &mut flow_logs {
                // A reporter the previewed flow never reaches has an empty pending trace.
                rec.pending_policies = pending
                    .iter()
                    .find(|x| x.reporter == rec.reporter)
                    .map(|pr| pr.policies.clone())
                    .unwrap_or_default();
            }
            StagedPreview {
                verdict: policy_outcome(p.verdict),
                decider: Decider::from(p.decided_by),
                differs: p.verdict != d.verdict,
            }
        }
    };
    let mut outcome = policy_outcome(d.verdict);
    let mut decider = Decider::from(d.decided_by);
    let mut note = None;
    let mut status = None;
    let src_host = match &flow.from {
        Endpoint::Outside(h) => Some(h.as_str()),
        _ => None,
    };
    let dst_host = outside_owner(inv, d.final_dst_ip);
    if let Some(h) = src_host
        .filter(|h| failed.contains(*h))
        .or(dst_host.filter(|h| failed.contains(*h)))
    {
        outcome = Outcome::Deny;
        decider = Decider::HostDown {
            host: h.to_string(),
        };
        note = Some(format!(
            "outside host {h} is failed: it neither sends nor answers"
        ));
    } else if outcome == Outcome::Allow {
        let where_ = match flow.port {
            Some(p) => format!("{}:{p}/{}", d.final_dst_ip, flow.protocol.as_str()),
            None => d.final_dst_ip.to_string(),
        };
        match server_at(world, inv, d.destination, d.final_dst_ip) {
            Server::Nobody => {
                outcome = Outcome::Deny;
                decider = Decider::Unroutable;
                note = Some(format!(
                    "no pod, node or outside host has the address {}",
                    d.final_dst_ip
                ));
            }
            Server::Ports { ports, files, .. } => {
                let port = d.final_dst_port;
                match l4_of(flow.protocol) {
                    None => {} // icmp echo is always answered
                    Some(l4) => {
                        let file_server = files.is_some() && l4 == L4::Tcp && port == 80;
                        if file_server {
                            if flow.protocol == ProbeProtocol::Http {
                                let root = files.is_some_and(|h| h.files.contains_key("/"));
                                status = Some(if root { 200 } else { 404 });
                            }
                        } else if ports.contains(&(port, l4)) {
                            if flow.protocol == ProbeProtocol::Http {
                                status = Some(200);
                            }
                        } else {
                            outcome = Outcome::Refused;
                            note = Some(format!("nothing listens on {where_}"));
                        }
                    }
                }
            }
        }
    }
    if outcome == Outcome::Allow {
        // Model decision `notracked-reply`: the reply is untracked where the request was tracked.
        if let Some(r) = d.notracked_reply {
            let cut = r.cuts_after_handshake(model::Proto::Tcp);
            let why = format!(
                "untracked policy on {} ({}) lets the reply through without conntrack, \
                 although the request was tracked there",
                r.node, r.allowed_by
            );
            match flow.protocol {
                ProbeProtocol::Http if cut => {
                    outcome = Outcome::Deny;
                    decider = Decider::UntrackedReply;
                    status = None;
                    note = Some(format!(
                        "{why}: the TCP handshake completes but the client's ACK is \
                         conntrack INVALID on {} and dropped, so the request never passes",
                        r.node
                    ));
                }
                ProbeProtocol::Tcp if cut => {
                    note = Some(format!(
                        "{why}: the TCP handshake completes; later packets would be \
                         conntrack INVALID on {} and dropped",
                        r.node
                    ));
                }
                _ => {}
            }
        }
    }
    if decider == Decider::Unroutable && note.is_none() {
        // Decision `unroutable-address`: the report says why nothing answers.
        note = Some(match server_at(world, inv, d.destination, d.final_dst_ip) {
            Server::Nobody => format!(
                "no pod, node or outside host has the address {}",
                d.final_dst_ip
            ),
            _ => format!("nothing routes {} from here", d.final_dst_ip),
        });
    }
    let client_ip_seen = (outcome == Outcome::Allow).then_some(d.client_ip_seen);
    let mut alerts: Vec<String> = feeds
        .iter()
        .filter(|f| f.enabled)
        .filter(|f| {
            [flow.src_ip, flow.dst_ip, d.final_dst_ip]
                .iter()
                .any(|ip| f.nets.iter().any(|n| n.contains(ip)))
        })
        .map(|f| f.name.clone())
        .collect();
    alerts.sort();
    Prediction {
        outcome,
        status,
        decider,
        // A refused probe was allowed by policy: its allowing deciders stay.
        allowing: if outcome == Outcome::Deny {
            Vec::new()
        } else {
            allowing
        },
        client_ip_seen,
        final_dst: (d.final_dst_ip, d.final_dst_port),
        alerts,
        logged: !log_lines.is_empty(),
        log_lines,
        flow_logs,
        note,
        staged,
    }
}
