//! The packet's path through the modelled network: which stages run, in which
//! order, on which node (docs/semantics.md#combining-directions,
//! docs/semantics.md#host-endpoints-and-stages), with service DNAT/SNAT and the reply check of
//! untracked flows (docs/semantics.md#donottrack).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::matching::{evaluate_endpoint, target_port, Ctx, Outcome};
use super::{
    DecidedBy, Destination, Flow, FlowSource, NotrackedReply, Packet, Proto, Stage, StageKind,
    StageResult, Step, Verdict,
};
use crate::resolve::{Direction, EndpointKind, EndpointToHostAction, Failsafe, StageClass, World};

/// Where trace events go. [`NoSink`] compiles every trace call away.
pub(crate) trait Sink<'w> {
    const ON: bool;
    fn begin(
        &mut self,
        kind: StageKind,
        node: &'w str,
        endpoint: Option<usize>,
        reply: bool,
        pkt: Packet,
    );
    fn step(&mut self, step: Step<'w>);
    fn end(&mut self, result: StageResult<'w>);
}

pub(crate) struct NoSink;

impl<'w> Sink<'w> for NoSink {
    const ON: bool = false;
    #[inline(always)]
    fn begin(&mut self, _: StageKind, _: &'w str, _: Option<usize>, _: bool, _: Packet) {}
    #[inline(always)]
    fn step(&mut self, _: Step<'w>) {}
    #[inline(always)]
    fn end(&mut self, _: StageResult<'w>) {}
}

#[derive(Default)]
pub(crate) struct TraceSink<'w> {
    pub stages: Vec<Stage<'w>>,
}

impl<'w> Sink<'w> for TraceSink<'w> {
    const ON: bool = true;
    fn begin(
        &mut self,
        kind: StageKind,
        node: &'w str,
        endpoint: Option<usize>,
        reply: bool,
        pkt: Packet,
    ) {
        self.stages.push(Stage {
            kind,
            node,
            endpoint,
            reply,
            packet: pkt,
            steps: vec![],
            result: StageResult::Continue,
        });
    }
    fn step(&mut self, step: Step<'w>) {
        if let Some(s) = self.stages.last_mut() {
            s.steps.push(step);
        }
    }
    fn end(&mut self, result: StageResult<'w>) {
        if let Some(s) = self.stages.last_mut() {
            s.result = result;
        }
    }
}

pub(crate) struct Core<'w> {
    pub verdict: Verdict,
    pub decided_by: DecidedBy<'w>,
    pub client_ip_seen: IpAddr,
    pub destination: Destination,
    pub final_dst_ip: IpAddr,
    pub final_dst_port: u16,
}

#[derive(Clone, Copy)]
enum Loc {
    Pod(usize, usize),
    Host(usize),
    Outside,
}

/// A reply that crosses a raw-table hook on a host endpoint.
#[derive(Clone, Copy)]
struct ReplyCheck {
    node: usize,
    hep: usize,
    /// True: the reply arrives through the HEP (raw PREROUTING); false: it leaves
    /// it as host-originated traffic (raw OUTPUT).
    arrives: bool,
    /// The forward packet as seen at the HEP.
    pkt: Packet,
    /// The forward packet was untracked (allowed by doNotTrack policy) on this node.
    notracked: bool,
    /// The request ends or starts in this node's host (not forwarded).
    host: bool,
}

const MAX_REPLY_CHECKS: usize = 4;

/// IP protocol number of UDP.
const PROTO_UDP: u8 = 17;

struct Run<'w, 's, S> {
    w: &'w World,
    sink: &'s mut S,
    last_allow: DecidedBy<'w>,
    pending_snat: Option<IpAddr>,
    replies: [Option<ReplyCheck>; MAX_REPLY_CHECKS],
    hops: usize,
    /// The first reply of a tracked request that untracked policy allows (decision `notracked-reply`).
    notracked_reply: Option<NotrackedReply<'w>>,
}

type Step2<'w> = Result<(), Core<'w>>;

/// Evaluates a flow: the core of the decision and, for an allowed flow, the
/// untracked reply of a tracked request (decision `notracked-reply`).
pub(crate) fn run<'w, S: Sink<'w>>(
    w: &'w World,
    flow: &Flow,
    sink: &mut S,
) -> (Core<'w>, Option<NotrackedReply<'w>>) {
    let v6 = flow.dst.is_ipv6();
    let unspecified = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let proto = match flow.protocol {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Sctp => 132,
        Proto::Icmp if v6 => 58,
        Proto::Icmp => 1,
    };
    let icmp = flow.protocol == Proto::Icmp;
    let mut run = Run {
        w,
        sink,
        last_allow: DecidedBy::NotPoliced,
        pending_snat: None,
        replies: [None; MAX_REPLY_CHECKS],
        hops: 0,
        notracked_reply: None,
    };
    enum Origin {
        Pod(usize, usize),
        Host(usize),
        Outside,
    }
    let (origin, src) = match flow.src {
        FlowSource::Endpoint(i) if i < w.endpoints.len() => {
            let e = &w.endpoints[i];
            let node = e.node_index;
            match (e.kind, node) {
                (EndpointKind::Workload, Some(n)) => {
                    (Origin::Pod(i, n), e.ip_of_family(v6).unwrap_or(unspecified))
                }
                (EndpointKind::Host, Some(n)) => (Origin::Host(n), node_ip(w, n, v6)),
                _ => (Origin::Outside, e.ip_of_family(v6).unwrap_or(unspecified)),
            }
        }
        FlowSource::Endpoint(_) => (Origin::Outside, unspecified),
        FlowSource::Ip(ip) => match run.locate(ip) {
            Loc::Pod(e, n) => (Origin::Pod(e, n), ip),
            Loc::Host(n) => (Origin::Host(n), ip),
            Loc::Outside => (Origin::Outside, ip),
        },
    };
    let pkt = Packet {
        src,
        dst: flow.dst,
        proto,
        src_port: if icmp { 0 } else { flow.src_port },
        dst_port: if icmp { 0 } else { flow.dst_port },
        icmp_type: if icmp { flow.icmp_type } else { 0 },
        icmp_code: if icmp { flow.icmp_code } else { 0 },
    };
    // Decision `own-address-local`: a packet to the sender's own address never leaves its namespace
    // (the kernel delivers it on `lo`): no node, no policy.
    let to_itself = match flow.src {
        FlowSource::Endpoint(i) => w
            .endpoints
            .get(i)
            .is_some_and(|e| e.kind == EndpointKind::Workload && e.ips.contains(&flow.dst)),
        FlowSource::Ip(ip) => ip == flow.dst,
    };
    let result = match origin {
        Origin::Pod(_, node) if to_itself => {
            run.simple_stage(StageKind::Unpoliced, node, pkt, DecidedBy::NotPoliced);
            run.deliver(pkt)
        }
        Origin::Outside if to_itself => run.deliver(pkt),
        Origin::Pod(ep, node) => run.start_at_pod(ep, node, pkt),
        Origin::Host(node) => run.start_at_host(node, pkt),
        Origin::Outside => match run.receiving_node(pkt) {
            Some(m) => run.arrive(m, pkt),
            None => Err(run.deny(DecidedBy::Unroutable, pkt, Verdict::Deny)),
        },
    };
    let core = match result {
        Ok(()) => unreachable_core(pkt),
        Err(core) => core,
    };
    let reply = match core.verdict {
        Verdict::Allow => run.notracked_reply,
        Verdict::Deny | Verdict::Refused => None,
    };
    (core, reply)
}

/// Every path ends in `Err(core)`; this keeps `run` total without a panic.
fn unreachable_core<'w>(pkt: Packet) -> Core<'w> {
    Core {
        verdict: Verdict::Deny,
        decided_by: DecidedBy::Unroutable,
        client_ip_seen: pkt.src,
        destination: Destination::Outside,
        final_dst_ip: pkt.dst,
        final_dst_port: pkt.dst_port,
    }
}

fn node_ip(w: &World, n: usize, v6: bool) -> IpAddr {
    let node = &w.nodes[n];
    if v6 {
        node.ipv6.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    } else {
        node.ip
    }
}

fn swap(p: Packet) -> Packet {
    let is_icmp = p.proto == 1 || p.proto == 58;
    Packet {
        src: p.dst,
        dst: p.src,
        src_port: p.dst_port,
        dst_port: p.src_port,
        icmp_type: match (is_icmp, p.icmp_type) {
            (true, 8) => 0,
            (true, 128) => 129,
            (_, t) => t,
        },
        ..p
    }
}

impl<'w, S: Sink<'w>> Run<'w, '_, S> {
    fn locate(&self, ip: IpAddr) -> Loc {
        let o = self.w.owner(ip);
        if let Some(e) = o.workload {
            if let Some(n) = self.w.endpoints[e].node_index {
                return Loc::Pod(e, n);
            }
        }
        match o.node {
            Some(n) => Loc::Host(n),
            None => Loc::Outside,
        }
    }

    /// The node an outside client's packet reaches first.
    fn receiving_node(&self, pkt: Packet) -> Option<usize> {
        match self.locate(pkt.dst) {
            Loc::Pod(_, n) | Loc::Host(n) => Some(n),
            Loc::Outside => super::lb_arrival_node(self.w, pkt.dst),
        }
    }

    /// The host endpoint covering the node's uplink (precomputed).
    fn hep_for(&self, node: usize, _iface: &str) -> Option<usize> {
        self.w.nodes.get(node).and_then(|n| n.eth0_hep)
    }

    fn node_name(&self, n: usize) -> &'w str {
        &self.w.nodes[n].name
    }

    fn destination(&self, ip: IpAddr) -> Destination {
        match self.locate(ip) {
            Loc::Pod(e, _) => Destination::Workload(e),
            Loc::Host(n) => Destination::Host(n),
            Loc::Outside => Destination::Outside,
        }
    }

    fn deny(&self, by: DecidedBy<'w>, pkt: Packet, verdict: Verdict) -> Core<'w> {
        Core {
            verdict,
            decided_by: by,
            client_ip_seen: pkt.src,
            destination: self.destination(pkt.dst),
            final_dst_ip: pkt.dst,
            final_dst_port: pkt.dst_port,
        }
    }

    /// The flow reached its destination: check untracked replies, then allow.
    fn deliver(&mut self, pkt: Packet) -> Step2<'w> {
        for rc in self.replies.into_iter().flatten() {
            let kind = if rc.arrives {
                StageKind::HostUntrackedIngress
            } else {
                StageKind::HostUntrackedEgress
            };
            let dir = if rc.arrives {
                Direction::Ingress
            } else {
                Direction::Egress
            };
            let reply = swap(rc.pkt);
            let has_policy = !self.w.endpoints[rc.hep]
                .plans
                .get(StageClass::Untracked, dir)
                .is_empty();
            if !has_policy && !rc.notracked {
                continue;
            }
            let res = self.hep_stage(
                kind,
                rc.node,
                rc.hep,
                StageClass::Untracked,
                dir,
                reply,
                true,
            );
            match res {
                StageResult::Deny(by) => return Err(self.deny(by, pkt, Verdict::Deny)),
                // A failsafe ACCEPT in raw does not NOTRACK: the reply stays tracked.
                StageResult::Allow(DecidedBy::Failsafe) => {}
                StageResult::Allow(by) => {
                    if !rc.notracked && self.notracked_reply.is_none() {
                        // Decision `notracked-reply`: the request was tracked on this node but its
                        // reply is NOTRACKed, so conntrack never sees it.
                        self.notracked_reply = Some(NotrackedReply {
                            node: self.node_name(rc.node),
                            stage: kind,
                            allowed_by: by,
                        });
                    }
                }
                StageResult::Continue => {
                    if rc.notracked {
                        if rc.host && reply.proto == PROTO_UDP {
                            // Decision `untracked-udp-reply-is-a-new-flow`.
                            if let StageResult::Deny(by) = self.host_reply_as_new_flow(rc, reply) {
                                return Err(self.deny(by, pkt, Verdict::Deny));
                            }
                            continue;
                        }
                        return Err(self.deny(DecidedBy::UntrackedReply, pkt, Verdict::Deny));
                    }
                }
            }
        }
        Err(Core {
            verdict: Verdict::Allow,
            decided_by: self.last_allow,
            client_ip_seen: pkt.src,
            destination: self.destination(pkt.dst),
            final_dst_ip: pkt.dst,
            final_dst_port: pkt.dst_port,
        })
    }

    /// The host's side of an untracked UDP flow whose reply no untracked policy
    /// allows (decision `untracked-udp-reply-is-a-new-flow`): conntrack has no entry
    /// for the request, so the reply is a new UDP flow of its own (TCP and ICMP
    /// replies are INVALID instead), policed by the host endpoint's tracked stages
    /// in the reply's direction: normal egress when the host answers, pre-DNAT then
    /// normal ingress when the reply comes to the host. Its allows only trace.
    fn host_reply_as_new_flow(&mut self, rc: ReplyCheck, reply: Packet) -> StageResult<'w> {
        if rc.arrives {
            let pre = if self.w.endpoints[rc.hep]
                .plans
                .get(StageClass::PreDnat, Direction::Ingress)
                .is_empty()
            {
                StageResult::Continue
            } else {
                self.hep_stage(
                    StageKind::HostPreDnat,
                    rc.node,
                    rc.hep,
                    StageClass::PreDnat,
                    Direction::Ingress,
                    reply,
                    true,
                )
            };
            match pre {
                StageResult::Continue => self.hep_stage(
                    StageKind::HostNormalIngress,
                    rc.node,
                    rc.hep,
                    StageClass::Normal,
                    Direction::Ingress,
                    reply,
                    true,
                ),
                other => other,
            }
        } else {
            self.hep_stage(
                StageKind::HostNormalEgress,
                rc.node,
                rc.hep,
                StageClass::Normal,
                Direction::Egress,
                reply,
                true,
            )
        }
    }

    fn push_reply(&mut self, rc: ReplyCheck) {
        if let Some(slot) = self.replies.iter_mut().find(|r| r.is_none()) {
            *slot = Some(rc);
        }
    }

    fn simple_stage(&mut self, kind: StageKind, node: usize, pkt: Packet, by: DecidedBy<'w>) {
        if S::ON {
            self.sink
                .begin(kind, self.node_name(node), None, false, pkt);
            self.sink.end(StageResult::Allow(by));
        }
        self.last_allow = by;
    }

    /// Service DNAT at `node` (kube-proxy). Denies when no endpoint can take it.
    fn dnat(&mut self, node: usize, pkt: &mut Packet) -> Step2<'w> {
        let w = self.w;
        let v6 = pkt.dst.is_ipv6();
        let here = node_ip(w, node, v6);
        for svc in &w.services {
            for sp in &svc.ports {
                if sp.protocol != pkt.proto {
                    continue;
                }
                let external = if svc.cluster_ip == Some(pkt.dst) && sp.port == pkt.dst_port {
                    false
                } else if (svc.load_balancer_ip == Some(pkt.dst) && sp.port == pkt.dst_port)
                    || (sp.node_port == Some(pkt.dst_port) && pkt.dst == here)
                {
                    true
                } else {
                    continue;
                };
                let node_name = &w.nodes[node].name;
                // kube-proxy short-circuits pod traffic to external addresses of a
                // Local service to all endpoints ("Redirect pods trying to reach
                // external loadbalancer VIP to clusterIP").
                let local_only = external && svc.local && w.owner(pkt.src).workload.is_none();
                let chosen = svc.endpoints.iter().copied().find(|&e| {
                    let ep = &w.endpoints[e];
                    ep.ip_of_family(v6).is_some() && !(local_only && ep.node != *node_name)
                });
                if S::ON {
                    self.sink
                        .begin(StageKind::ServiceDnat, node_name, None, false, *pkt);
                    self.sink.step(Step::Note(format!(
                        "{} matches service {}/{} port {} ({}externalTrafficPolicy {})",
                        pkt.dst,
                        svc.namespace,
                        svc.name,
                        sp.port,
                        if external { "" } else { "cluster IP; " },
                        if svc.local { "Local" } else { "Cluster" }
                    )));
                }
                let Some(e) = chosen else {
                    let verdict = if svc.endpoints.is_empty() {
                        Verdict::Refused
                    } else {
                        Verdict::Deny
                    };
                    if S::ON {
                        self.sink.step(Step::Note(
                            "no endpoint can take it (none, or none local for Local)".into(),
                        ));
                        self.sink
                            .end(StageResult::Deny(DecidedBy::NoServiceEndpoint));
                    }
                    return Err(self.deny(DecidedBy::NoServiceEndpoint, *pkt, verdict));
                };
                let ep = &w.endpoints[e];
                pkt.dst = ep.ip_of_family(v6).unwrap_or(pkt.dst);
                pkt.dst_port = target_port(w, e, &sp.target, pkt.proto).unwrap_or(sp.port);
                if external && !svc.local {
                    self.pending_snat = Some(here);
                }
                // Decision `service-hairpin`: kube-proxy marks a connection whose
                // source is the chosen endpoint for masquerade, so the endpoint's
                // reply comes back through the node.
                let hairpin = pkt.src == pkt.dst;
                if hairpin {
                    self.pending_snat = Some(here);
                }
                if S::ON {
                    self.sink.step(Step::Note(format!(
                        "DNAT to {} {}:{} (first endpoint by name)",
                        ep.display_name(),
                        pkt.dst,
                        pkt.dst_port
                    )));
                    if hairpin {
                        self.sink.step(Step::Note(
                            "hairpin: the endpoint is the client itself; kube-proxy masquerades it to the node's address".into(),
                        ));
                    }
                    self.sink.end(StageResult::Continue);
                }
                return Ok(());
            }
        }
        Ok(())
    }

    fn apply_snat(&mut self, node: usize, pkt: &mut Packet) {
        if let Some(ip) = self.pending_snat.take() {
            if S::ON {
                self.sink.begin(
                    StageKind::ServiceSnat,
                    self.node_name(node),
                    None,
                    false,
                    *pkt,
                );
                self.sink.step(Step::Note(format!(
                    "externalTrafficPolicy Cluster: source {} masqueraded to {}",
                    pkt.src, ip
                )));
                self.sink.end(StageResult::Continue);
            }
            pkt.src = ip;
        }
    }

    fn wl_stage(&mut self, kind: StageKind, ep: usize, dir: Direction, pkt: Packet) -> Step2<'w> {
        let w = self.w;
        let node = &w.endpoints[ep].node;
        if S::ON {
            self.sink.begin(kind, node, Some(ep), false, pkt);
        }
        let ctx = Ctx::new(w, pkt);
        let out = evaluate_endpoint(w, ep, StageClass::Normal, dir, &ctx, self.sink);
        let by = match out {
            Outcome::Allow(by) => {
                if S::ON {
                    self.sink.end(StageResult::Allow(by));
                }
                self.last_allow = by;
                return Ok(());
            }
            Outcome::Deny(by) => by,
            Outcome::None => DecidedBy::NoProfile,
        };
        if S::ON {
            self.sink.end(StageResult::Deny(by));
        }
        Err(self.deny(by, pkt, Verdict::Deny))
    }

    #[allow(clippy::too_many_arguments)]
    fn hep_stage(
        &mut self,
        kind: StageKind,
        node: usize,
        hep: usize,
        class: StageClass,
        dir: Direction,
        pkt: Packet,
        reply: bool,
    ) -> StageResult<'w> {
        let w = self.w;
        if S::ON {
            self.sink
                .begin(kind, self.node_name(node), Some(hep), reply, pkt);
        }
        // Failsafes of this node's Felix (decision `felix-configuration`): inbound
        // entries match the remote source, outbound ones the remote destination.
        let felix = &w.nodes[node].felix;
        let hit = |list: &[Failsafe], port: u16, remote: std::net::IpAddr| {
            list.iter().any(|f| {
                f.protocol == pkt.proto
                    && f.port == port
                    && f.net.is_none_or(|n| n.contains(&remote))
            })
        };
        let (inb, outb) = (&felix.failsafe_inbound[..], &felix.failsafe_outbound[..]);
        // (matched on the destination port, matched on the source port)
        let (by_dst, by_src) = match kind {
            StageKind::HostUntrackedIngress => (
                hit(inb, pkt.dst_port, pkt.src),
                hit(outb, pkt.src_port, pkt.src),
            ),
            StageKind::HostUntrackedEgress => (
                hit(outb, pkt.dst_port, pkt.dst),
                hit(inb, pkt.src_port, pkt.dst),
            ),
            StageKind::HostPreDnat | StageKind::HostNormalIngress => {
                (hit(inb, pkt.dst_port, pkt.src), false)
            }
            StageKind::HostNormalEgress => (hit(outb, pkt.dst_port, pkt.dst), false),
            _ => (false, false),
        };
        let failsafe = (by_dst || by_src) && matches!(pkt.proto, 6 | 17 | 132);
        let result = if failsafe {
            if S::ON {
                let port = if by_dst { pkt.dst_port } else { pkt.src_port };
                self.sink.step(Step::Failsafe {
                    protocol: pkt.proto,
                    port,
                });
            }
            match class {
                // Failsafe ACCEPT in raw/mangle ends that table only; later stages run.
                StageClass::Untracked | StageClass::PreDnat if !reply => StageResult::Continue,
                _ => StageResult::Allow(DecidedBy::Failsafe),
            }
        } else {
            let ctx = Ctx::new(w, pkt);
            match evaluate_endpoint(w, hep, class, dir, &ctx, self.sink) {
                Outcome::Allow(by) => StageResult::Allow(by),
                Outcome::Deny(by) => StageResult::Deny(by),
                Outcome::None if class == StageClass::Forward => {
                    StageResult::Allow(DecidedBy::DefaultForwardAllow)
                }
                Outcome::None => StageResult::Continue,
            }
        };
        if S::ON {
            self.sink.end(result);
        }
        if let StageResult::Allow(by) = result {
            if !reply {
                self.last_allow = by;
            }
        }
        result
    }

    /// The applyOnForward stage of a host endpoint in one direction (a deny ends
    /// the flow).
    fn forward_gate(
        &mut self,
        node: usize,
        hep: usize,
        dir: Direction,
        pkt: Packet,
    ) -> Result<bool, Core<'w>> {
        let kind = match dir {
            Direction::Ingress => StageKind::HostForwardIngress,
            Direction::Egress => StageKind::HostForwardEgress,
        };
        self.hep_gate(kind, node, hep, StageClass::Forward, dir, pkt)
    }

    /// A forwarded packet leaving through a host endpoint: its forward egress
    /// stage, then the reply that will come back through the same endpoint.
    fn forward_out(
        &mut self,
        node: usize,
        hep: usize,
        pkt: Packet,
        notracked: bool,
    ) -> Result<(), Core<'w>> {
        self.forward_gate(node, hep, Direction::Egress, pkt)?;
        self.push_reply(ReplyCheck {
            node,
            hep,
            arrives: true,
            pkt,
            notracked,
            host: false,
        });
        Ok(())
    }

    /// Runs a HEP stage; a deny ends the flow. Returns whether it allowed.
    #[allow(clippy::too_many_arguments)]
    fn hep_gate(
        &mut self,
        kind: StageKind,
        node: usize,
        hep: usize,
        class: StageClass,
        dir: Direction,
        pkt: Packet,
    ) -> Result<bool, Core<'w>> {
        if matches!(class, StageClass::Untracked | StageClass::PreDnat)
            && self.w.endpoints[hep].plans.get(class, dir).is_empty()
        {
            // No policy in this table for this HEP: the chain is a no-op.
            return Ok(false);
        }
        match self.hep_stage(kind, node, hep, class, dir, pkt, false) {
            StageResult::Deny(by) => Err(self.deny(by, pkt, Verdict::Deny)),
            StageResult::Allow(_) => Ok(true),
            StageResult::Continue => Ok(false),
        }
    }

    fn start_at_pod(&mut self, ep: usize, node: usize, mut pkt: Packet) -> Step2<'w> {
        self.dnat(node, &mut pkt)?;
        if matches!(self.locate(pkt.dst), Loc::Outside)
            && self.w.nodes[node]
                .pod_ranges
                .iter()
                .any(|r| r.contains(&pkt.dst))
        {
            // Decision `unroutable-address`: a free address of the node's own pod
            // range meets its blackhole route when the packet is routed, before
            // any filter stage sees it.
            return Err(self.deny(DecidedBy::Unroutable, pkt, Verdict::Deny));
        }
        self.wl_stage(StageKind::WorkloadEgress, ep, Direction::Egress, pkt)?;
        match self.locate(pkt.dst) {
            Loc::Pod(dst, n) if n == node => {
                self.apply_snat(node, &mut pkt);
                self.wl_stage(StageKind::WorkloadIngress, dst, Direction::Ingress, pkt)?;
                self.deliver(pkt)
            }
            Loc::Host(n) if n == node => {
                // `defaultEndpointToHostAction` (decision `felix-configuration`).
                let action = self.w.nodes[node].felix.endpoint_to_host;
                let by = DecidedBy::EndpointToHost(action);
                if action == EndpointToHostAction::Drop {
                    if S::ON {
                        self.sink.begin(
                            StageKind::EndpointToHost,
                            self.node_name(node),
                            None,
                            false,
                            pkt,
                        );
                        self.sink.end(StageResult::Deny(by));
                    }
                    return Err(self.deny(by, pkt, Verdict::Deny));
                }
                self.simple_stage(StageKind::EndpointToHost, node, pkt, by);
                self.deliver(pkt)
            }
            _ => {
                if let Some(hep) = self.hep_for(node, "eth0") {
                    self.forward_out(node, hep, pkt, false)?;
                }
                self.apply_snat(node, &mut pkt);
                self.leave(node, pkt)
            }
        }
    }

    fn start_at_host(&mut self, node: usize, pkt: Packet) -> Step2<'w> {
        let pre = pkt;
        let mut post = pkt;
        self.dnat(node, &mut post)?;
        match self.locate(post.dst) {
            Loc::Pod(_, n) | Loc::Host(n) if n == node => {
                // Host → local pod / itself: no Calico policy (decision `host-to-local-not-policed`).
                self.simple_stage(StageKind::Unpoliced, node, post, DecidedBy::NotPoliced);
                self.apply_snat(node, &mut post);
                self.deliver(post)
            }
            _ => {
                if let Some(hep) = self.hep_for(node, "eth0") {
                    let accepted = self.hep_gate(
                        StageKind::HostUntrackedEgress,
                        node,
                        hep,
                        StageClass::Untracked,
                        Direction::Egress,
                        pre,
                    )?;
                    self.push_reply(ReplyCheck {
                        node,
                        hep,
                        arrives: true,
                        pkt: post,
                        notracked: accepted,
                        host: true,
                    });
                    if !accepted {
                        self.hep_gate(
                            StageKind::HostNormalEgress,
                            node,
                            hep,
                            StageClass::Normal,
                            Direction::Egress,
                            post,
                        )?;
                    }
                }
                self.apply_snat(node, &mut post);
                self.leave(node, post)
            }
        }
    }

    /// The packet leaves `node` through eth0 towards its destination.
    fn leave(&mut self, node: usize, pkt: Packet) -> Step2<'w> {
        self.hops += 1;
        match self.locate(pkt.dst) {
            Loc::Pod(_, n) | Loc::Host(n) if n != node && self.hops < 4 => self.arrive(n, pkt),
            Loc::Outside => self.deliver(pkt),
            _ => Err(self.deny(DecidedBy::Unroutable, pkt, Verdict::Deny)),
        }
    }

    /// The packet arrives at `node` from the fabric, on eth0.
    fn arrive(&mut self, node: usize, mut pkt: Packet) -> Step2<'w> {
        let hep = self.hep_for(node, "eth0");
        let mut accepted = false;
        let mut notracked = false;
        if let Some(hep) = hep {
            notracked = self.hep_gate(
                StageKind::HostUntrackedIngress,
                node,
                hep,
                StageClass::Untracked,
                Direction::Ingress,
                pkt,
            )?;
            accepted = notracked;
            if !accepted {
                accepted = self.hep_gate(
                    StageKind::HostPreDnat,
                    node,
                    hep,
                    StageClass::PreDnat,
                    Direction::Ingress,
                    pkt,
                )?;
            }
        }
        self.dnat(node, &mut pkt)?;
        match self.locate(pkt.dst) {
            Loc::Host(n) if n == node => {
                match hep {
                    Some(hep) => {
                        self.push_reply(ReplyCheck {
                            node,
                            hep,
                            arrives: false,
                            pkt,
                            notracked,
                            host: true,
                        });
                        if !accepted {
                            self.hep_gate(
                                StageKind::HostNormalIngress,
                                node,
                                hep,
                                StageClass::Normal,
                                Direction::Ingress,
                                pkt,
                            )?;
                        }
                    }
                    None => {
                        self.simple_stage(StageKind::Unpoliced, node, pkt, DecidedBy::NotPoliced)
                    }
                }
                self.apply_snat(node, &mut pkt);
                self.deliver(pkt)
            }
            Loc::Pod(dst, n) if n == node => {
                if let Some(hep) = hep {
                    if !accepted {
                        self.forward_gate(node, hep, Direction::Ingress, pkt)?;
                    }
                }
                self.apply_snat(node, &mut pkt);
                self.wl_stage(StageKind::WorkloadIngress, dst, Direction::Ingress, pkt)?;
                if notracked {
                    // The pod's reply comes back untracked-less through a cali
                    // interface: conntrack has no entry, the reply is INVALID.
                    return Err(self.deny(DecidedBy::UntrackedReply, pkt, Verdict::Deny));
                }
                self.deliver(pkt)
            }
            _ => {
                if let Some(hep) = hep {
                    if !accepted {
                        self.forward_gate(node, hep, Direction::Ingress, pkt)?;
                    }
                    self.forward_out(node, hep, pkt, notracked)?;
                }
                self.apply_snat(node, &mut pkt);
                self.leave(node, pkt)
            }
        }
    }
}
