//! This module deals with predicting verdicts: the reference evaluator of Calico's
//! semantics over a resolved [`World`].
//!
//! Input: a [`World`] and a [`Flow`] (one probe: source endpoint or address,
//! destination address and port, protocol). Output: a [`Decision`]: the verdict, the
//! point that decided it ([`DecidedBy`]), the client address the destination sees,
//! where the packet ended up after DNAT, and the full trace (stage by stage, tier by
//! tier, policy by policy, rule by rule).
//!
//! - [`evaluate`]: full trace. [`evaluate_fast`]: verdict, decider and the
//!   untracked-reply flag (decision `notracked-reply`) only, without allocating. Both run the same code, generic over a trace sink.
//! - [`explain`]: a readable walk-through. [`flow_log_policies`]: flow-log policy strings (docs/semantics.md#flow-log-records).
//!
//! Guarantees: pure, deterministic, never panics on a resolved world.
//!
//! # Topology modelled
//! Every node has one uplink, `eth0`, to the fabric; every inter-node or outside
//! packet crosses it. Pod → pod on one node: egress(src) then ingress(dst). Pod →
//! elsewhere: egress(src), HEP forward egress on the source node's eth0, then on the
//! receiving node HEP untracked ingress → pre-DNAT → (DNAT) → normal ingress (to the
//! host) or forward ingress (+ forward egress when it leaves again) → workload ingress.
//! Host-originated: untracked egress (pre-DNAT destination), DNAT, normal egress.
//!
//! # Decisions
//! Where the Calico semantics are silent, the model's choices are the entries of
//! the "Model" section of `docs/decisions.md` (each covered by a test in
//! `tests/model.rs`); code cites them by name, e.g. decision `notracked-reply`.

mod decider;
mod explain;
mod matching;
mod path;

use std::net::IpAddr;

use crate::resolve::{Action, PolicyId, World};

pub use decider::Decider;
pub use explain::{explain, flow_log_policies, FlowLogPolicies};

pub use crate::resolve::{FAILSAFE_INBOUND, FAILSAFE_OUTBOUND};

/// The probe's L4 protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
    /// ICMP echo (ICMPv6 for IPv6 flows).
    Icmp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

/// Where a flow starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowSource {
    /// A workload endpoint (or a host endpoint, meaning its node's host) by index
    /// into [`World::endpoints`].
    Endpoint(usize),
    /// A raw address: a node's address (traffic from that host) or an outside host.
    Ip(IpAddr),
}

/// One probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub src: FlowSource,
    /// As dialled: may be a service cluster IP, a node port address or an LB address.
    pub dst: IpAddr,
    pub protocol: Proto,
    /// Ignored for ICMP.
    pub dst_port: u16,
    /// The client's source port (default 40000).
    pub src_port: u16,
    /// ICMP type and code (default echo request: 8/0, or 128/0 for IPv6).
    pub icmp_type: u8,
    pub icmp_code: u8,
}

impl Flow {
    pub fn new(src: FlowSource, dst: IpAddr, protocol: Proto, dst_port: u16) -> Flow {
        Flow {
            src,
            dst,
            protocol,
            dst_port,
            src_port: 40000,
            icmp_type: if dst.is_ipv6() { 128 } else { 8 },
            icmp_code: 0,
        }
    }

    /// The family is the destination's.
    pub fn family(&self) -> Family {
        if self.dst.is_ipv6() {
            Family::V6
        } else {
            Family::V4
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny,
    /// Connection refused before policy had its say (a service without endpoints).
    /// "Nothing listens on the port" is decided by the caller from an `Allow`.
    Refused,
}

/// What decided a stage, or the whole flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy<'w> {
    /// A rule of a policy with a terminal action (Allow, Deny; or Pass leading on).
    Rule {
        tier: &'w str,
        policy: &'w PolicyId,
        rule_index: usize,
        action: Action,
    },
    /// No policy of the tier gave a verdict and the tier ends in a drop (or its
    /// defaultAction Pass led on). `policy` is the last policy of the tier that applied.
    EndOfTier {
        tier: &'w str,
        policy: &'w PolicyId,
        action: Action,
    },
    /// A profile rule (profiles come after every tier, normal stages only).
    Profile { name: &'w str, rule_index: usize },
    /// No tier gave a verdict and no profile rule matched: "Drop if no profiles matched".
    NoProfile,
    /// A failsafe port on a host endpoint (docs/semantics.md#failsafe-ports).
    Failsafe,
    /// Forwarded traffic with no applyOnForward policy deciding: allowed (decision `default-forward-allow`).
    DefaultForwardAllow,
    /// No Calico chain polices this hop (host → local pod, host → itself, an
    /// interface without a host endpoint, untracked/preDNAT stages without a verdict).
    NotPoliced,
    /// Pod → its own host: `DefaultEndpointToHostAction` (decisions `pod-to-own-host`,
    /// `felix-configuration`).
    EndpointToHost(crate::resolve::EndpointToHostAction),
    /// A service address with no (local) endpoint.
    NoServiceEndpoint,
    /// The flow was untracked (doNotTrack allow) but its replies are not allowed by
    /// untracked policy in the other direction (docs/semantics.md#donottrack).
    UntrackedReply,
    /// The destination is an address no hop of the modelled network delivers to.
    Unroutable,
}

/// Where in the packet's path a stage sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageKind {
    WorkloadEgress,
    WorkloadIngress,
    HostUntrackedIngress,
    HostUntrackedEgress,
    HostPreDnat,
    HostNormalIngress,
    HostNormalEgress,
    HostForwardIngress,
    HostForwardEgress,
    ServiceDnat,
    ServiceSnat,
    EndpointToHost,
    /// Host → local pod, host → itself: no policy.
    Unpoliced,
}

impl StageKind {
    pub fn describe(self) -> &'static str {
        match self {
            StageKind::WorkloadEgress => "source workload egress",
            StageKind::WorkloadIngress => "destination workload ingress",
            StageKind::HostUntrackedIngress => "host endpoint untracked ingress (raw PREROUTING)",
            StageKind::HostUntrackedEgress => "host endpoint untracked egress (raw OUTPUT)",
            StageKind::HostPreDnat => "host endpoint pre-DNAT ingress (mangle PREROUTING)",
            StageKind::HostNormalIngress => "host endpoint ingress (filter INPUT)",
            StageKind::HostNormalEgress => "host endpoint egress (filter OUTPUT)",
            StageKind::HostForwardIngress => "host endpoint forward ingress (filter FORWARD)",
            StageKind::HostForwardEgress => "host endpoint forward egress (filter FORWARD)",
            StageKind::ServiceDnat => "service DNAT",
            StageKind::ServiceSnat => "service SNAT (masquerade)",
            StageKind::EndpointToHost => "workload to its own host (DefaultEndpointToHostAction)",
            StageKind::Unpoliced => "not policed",
        }
    }
}

/// One step inside a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'w> {
    Tier {
        tier: &'w str,
    },
    Policy {
        tier: &'w str,
        policy: &'w PolicyId,
    },
    /// A rule was tried. `mismatch` names the first field that did not match;
    /// `absent` is set when the rule is not rendered for this IP family (docs/semantics.md#ip-families).
    Rule {
        rule_index: usize,
        action: Action,
        matched: bool,
        mismatch: Option<&'static str>,
        absent: bool,
    },
    /// The policy had no matching rule with a terminal action.
    PolicyNoVerdict,
    EndOfTier {
        tier: &'w str,
        drop: bool,
    },
    Profile {
        name: &'w str,
    },
    NoProfile,
    Failsafe {
        protocol: u8,
        port: u16,
    },
    Note(String),
}

/// The result of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageResult<'w> {
    Allow(DecidedBy<'w>),
    Deny(DecidedBy<'w>),
    /// Untracked / pre-DNAT stage without a verdict: the packet goes on.
    Continue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage<'w> {
    pub kind: StageKind,
    /// The node the stage runs on.
    pub node: &'w str,
    /// The endpoint whose policy runs (index into [`World::endpoints`]).
    pub endpoint: Option<usize>,
    /// Checking the reply direction of an untracked flow.
    pub reply: bool,
    /// The packet as this stage sees it.
    pub packet: Packet,
    pub steps: Vec<Step<'w>>,
    pub result: StageResult<'w>,
}

/// A packet as one stage sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number.
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
}

/// Where the packet ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// A workload endpoint (index into [`World::endpoints`]).
    Workload(usize),
    /// A node's host (index into [`World::nodes`]).
    Host(usize),
    /// Outside the cluster.
    Outside,
}

/// The full answer for one flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision<'w> {
    pub verdict: Verdict,
    /// The denying stage's decider, or for an allowed flow the last stage that allowed.
    pub decided_by: DecidedBy<'w>,
    /// The source address the destination sees (after SNAT).
    pub client_ip_seen: IpAddr,
    /// After DNAT.
    pub destination: Destination,
    pub final_dst_ip: IpAddr,
    pub final_dst_port: u16,
    /// An allowed flow that was tracked where its reply is allowed by untracked
    /// policy (decision `notracked-reply`); `None` otherwise and for every denied flow.
    pub notracked_reply: Option<NotrackedReply<'w>>,
    pub trace: Vec<Stage<'w>>,
}

/// A tracked flow's reply NOTRACKed by an untracked Allow (decision `notracked-reply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotrackedReply<'w> {
    /// The node whose conntrack misses the reply.
    pub node: &'w str,
    /// [`StageKind::HostUntrackedIngress`] (the reply arrives on eth0) or
    /// [`StageKind::HostUntrackedEgress`] (the host's reply leaves on eth0).
    pub stage: StageKind,
    /// The untracked rule that allowed the reply.
    pub allowed_by: DecidedBy<'w>,
}

impl NotrackedReply<'_> {
    /// Whether the client's packets after the reply are INVALID for that node's
    /// conntrack and dropped: TCP only (its ACK in SYN_SENT). A TCP connection
    /// completes its handshake and then carries nothing.
    pub fn cuts_after_handshake(&self, protocol: Proto) -> bool {
        protocol == Proto::Tcp
    }
}

/// Evaluates a flow with the full trace.
///
/// Modelling decisions (where the spec is silent): see the [module docs](self).
pub fn evaluate<'w>(world: &'w World, flow: &Flow) -> Decision<'w> {
    let mut sink = path::TraceSink::default();
    let (core, notracked_reply) = path::run(world, flow, &mut sink);
    Decision {
        verdict: core.verdict,
        decided_by: core.decided_by,
        client_ip_seen: core.client_ip_seen,
        destination: core.destination,
        final_dst_ip: core.final_dst_ip,
        final_dst_port: core.final_dst_port,
        notracked_reply,
        trace: sink.stages,
    }
}

/// The node an outside client's packet to load-balancer address `lb` arrives at
/// (decision `lb-arrival-node`): the first node (scenario order) for `externalTrafficPolicy: Cluster`,
/// the first node hosting an endpoint for `Local` (the first node when none does).
/// `None` when no LoadBalancer service has that address or there is no node.
pub fn lb_arrival_node(world: &World, lb: IpAddr) -> Option<usize> {
    let svc = world
        .services
        .iter()
        .find(|s| s.load_balancer_ip == Some(lb))?;
    if world.nodes.is_empty() {
        return None;
    }
    if svc.local {
        let n = world.nodes.iter().position(|n| {
            svc.endpoints
                .iter()
                .any(|&e| world.endpoints[e].node == n.name)
        });
        Some(n.unwrap_or(0))
    } else {
        Some(0)
    }
}

/// Verdict, decider and [`Decision::notracked_reply`] only; does not allocate.
pub fn evaluate_fast<'w>(
    world: &'w World,
    flow: &Flow,
) -> (Verdict, DecidedBy<'w>, Option<NotrackedReply<'w>>) {
    let (core, notracked_reply) = path::run(world, flow, &mut path::NoSink);
    (core.verdict, core.decided_by, notracked_reply)
}
