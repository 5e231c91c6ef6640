//! Rule matching and the per-direction algorithm (docs/semantics.md#per-direction-evaluation).

use std::net::IpAddr;

use super::path::Sink;
use super::{DecidedBy, Packet, Step};
use crate::resolve::{
    Action, Direction, EntityMatch, PortSpec, Rule, StageClass, TargetPort, World,
};

/// A packet plus the endpoints owning its addresses (for named ports).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub pkt: Packet,
    pub src_ep: Option<usize>,
    pub dst_ep: Option<usize>,
}

impl Ctx {
    pub fn new(world: &World, pkt: Packet) -> Ctx {
        Ctx {
            pkt,
            src_ep: endpoint_of_ip(world, pkt.src),
            dst_ep: endpoint_of_ip(world, pkt.dst),
        }
    }
}

/// The workload owning an address, else a host endpoint expecting it.
pub(crate) fn endpoint_of_ip(world: &World, ip: IpAddr) -> Option<usize> {
    let o = world.owner(ip);
    o.workload.or(o.host_endpoint)
}

/// What one endpoint-direction-class decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome<'w> {
    Allow(DecidedBy<'w>),
    Deny(DecidedBy<'w>),
    /// No verdict (only untracked, pre-DNAT and forward classes end this way).
    None,
}

/// The per-direction algorithm (docs/semantics.md#per-direction-evaluation) for one endpoint, one stage class.
pub(crate) fn evaluate_endpoint<'w, S: Sink<'w>>(
    world: &'w World,
    ep: usize,
    class: StageClass,
    dir: Direction,
    ctx: &Ctx,
    sink: &mut S,
) -> Outcome<'w> {
    let endpoint = &world.endpoints[ep];
    for tp in endpoint.plans.get(class, dir) {
        let tier = &world.tiers[tp.tier];
        if S::ON {
            sink.step(Step::Tier { tier: &tier.name });
        }
        let mut passed = false;
        'policies: for &pi in &tp.policies {
            let policy = &tier.policies[pi];
            if S::ON {
                sink.step(Step::Policy {
                    tier: &tier.name,
                    policy: &policy.id,
                });
            }
            for (ri, rule) in policy.rules(dir).iter().enumerate() {
                if !rule_matches(world, rule, ri, ctx, sink) {
                    continue;
                }
                let by = DecidedBy::Rule {
                    tier: &tier.name,
                    policy: &policy.id,
                    rule_index: ri,
                    action: rule.action(),
                };
                match rule.action() {
                    Action::Log => continue,
                    Action::Allow => return Outcome::Allow(by),
                    Action::Deny => return Outcome::Deny(by),
                    Action::Pass => {
                        passed = true;
                        break 'policies;
                    }
                }
            }
            if S::ON {
                sink.step(Step::PolicyNoVerdict);
            }
        }
        if passed {
            continue;
        }
        if S::ON {
            sink.step(Step::EndOfTier {
                tier: &tier.name,
                drop: tp.end_drop,
            });
        }
        if tp.end_drop {
            let last = tp.policies.last().copied().unwrap_or(0);
            return Outcome::Deny(DecidedBy::EndOfTier {
                tier: &tier.name,
                policy: &tier.policies[last].id,
                action: Action::Deny,
            });
        }
    }
    if class != StageClass::Normal {
        return Outcome::None;
    }
    for &pi in &endpoint.profile_refs {
        let profile = &world.profiles[pi];
        if S::ON {
            sink.step(Step::Profile {
                name: &profile.name,
            });
        }
        for (ri, rule) in profile.rules(dir).iter().enumerate() {
            if !rule_matches(world, rule, ri, ctx, sink) {
                continue;
            }
            let by = DecidedBy::Profile {
                name: &profile.name,
                rule_index: ri,
            };
            match rule.action() {
                Action::Log => continue,
                Action::Allow => return Outcome::Allow(by),
                Action::Deny => return Outcome::Deny(by),
                Action::Pass => break,
            }
        }
    }
    if S::ON {
        sink.step(Step::NoProfile);
    }
    Outcome::Deny(DecidedBy::NoProfile)
}

/// Tries one rule, recording the attempt.
fn rule_matches<'w, S: Sink<'w>>(
    world: &World,
    rule: &Rule,
    rule_index: usize,
    ctx: &Ctx,
    sink: &mut S,
) -> bool {
    let result = check_rule(world, rule, ctx);
    if S::ON {
        sink.step(Step::Rule {
            rule_index,
            action: rule.action(),
            matched: result.is_ok(),
            mismatch: result.err().filter(|r| *r != ABSENT),
            absent: result == Err(ABSENT),
        });
    }
    result.is_ok()
}

const ABSENT: &str = "absent for this IP family";

/// Ok if the rule matches; else the first field that did not match.
pub(crate) fn check_rule(world: &World, rule: &Rule, ctx: &Ctx) -> Result<(), &'static str> {
    let pkt = &ctx.pkt;
    let v6 = pkt.dst.is_ipv6();
    // docs/semantics.md#ip-families: rules absent for the other family (precomputed).
    if if v6 { rule.absent_v6 } else { rule.absent_v4 } {
        return Err(ABSENT);
    }
    if let Some(p) = rule.protocol {
        if p != pkt.proto {
            return Err("protocol");
        }
    }
    if let Some(p) = rule.not_protocol {
        if p == pkt.proto {
            return Err("notProtocol");
        }
    }
    let is_icmp = pkt.proto == 1 || pkt.proto == 58;
    if let Some(i) = rule.icmp {
        if !is_icmp || i.icmp_type != pkt.icmp_type || i.code.is_some_and(|c| c != pkt.icmp_code) {
            return Err("icmp");
        }
    }
    if let Some(i) = rule.not_icmp {
        if is_icmp && i.icmp_type == pkt.icmp_type && i.code.is_none_or(|c| c == pkt.icmp_code) {
            return Err("notICMP");
        }
    }
    // Cheap port checks first, then addresses; the reported field is the first
    // mismatch in that order.
    check_entity(world, &rule.destination, ctx, false, false)?;
    check_entity(world, &rule.source, ctx, true, false)?;
    check_entity(world, &rule.source, ctx, true, true)?;
    check_entity(world, &rule.destination, ctx, false, true)?;
    Ok(())
}

fn check_entity(
    world: &World,
    e: &EntityMatch,
    ctx: &Ctx,
    source: bool,
    ports_phase: bool,
) -> Result<(), &'static str> {
    let pkt = &ctx.pkt;
    let (ip, port, ep) = if source {
        (pkt.src, pkt.src_port, ctx.src_ep)
    } else {
        (pkt.dst, pkt.dst_port, ctx.dst_ep)
    };
    let field = |s: &'static str, d: &'static str| if source { s } else { d };
    if !ports_phase {
        return check_ports(world, e, ctx, source);
    }
    if !e.nets.is_empty() && !e.nets.iter().any(|n| n.contains(&ip)) {
        return Err(field("source.nets", "destination.nets"));
    }
    if e.not_nets.iter().any(|n| n.contains(&ip)) {
        return Err(field("source.notNets", "destination.notNets"));
    }
    // Endpoint addresses are members through the endpoint's bitset; any address
    // can be a member through network-set nets.
    let in_set = |s: usize| {
        ep.is_some_and(|owner| world.endpoints[owner].in_set(s))
            || world.selector_sets[s].contains_in_nets(ip)
    };
    if let Some(s) = e.selector {
        if !in_set(s) {
            return Err(field("source.selector", "destination.selector"));
        }
    }
    if let Some(s) = e.not_selector {
        if in_set(s) {
            return Err(field("source.notSelector", "destination.notSelector"));
        }
    }
    if let Some((ns, name)) = &e.services {
        if !service_matches(world, ns, name, ip, pkt.proto, port, source) {
            return Err(field("source.services", "destination.services"));
        }
    }
    Ok(())
}

fn check_ports(
    world: &World,
    e: &EntityMatch,
    ctx: &Ctx,
    source: bool,
) -> Result<(), &'static str> {
    if e.ports.is_empty() && e.not_ports.is_empty() {
        return Ok(());
    }
    let pkt = &ctx.pkt;
    let (port, ep) = if source {
        (pkt.src_port, ctx.src_ep)
    } else {
        (pkt.dst_port, ctx.dst_ep)
    };
    let field = |s: &'static str, d: &'static str| if source { s } else { d };
    let has_ports = matches!(pkt.proto, 6 | 17 | 132);
    let port_ok = |list: &[PortSpec]| {
        has_ports
            && list
                .iter()
                .any(|p| port_matches(world, p, pkt.proto, port, ep))
    };
    if !e.ports.is_empty() && !port_ok(&e.ports) {
        return Err(field("source.ports", "destination.ports"));
    }
    if port_ok(&e.not_ports) {
        return Err(field("source.notPorts", "destination.notPorts"));
    }
    Ok(())
}

fn port_matches(world: &World, p: &PortSpec, proto: u8, port: u16, ep: Option<usize>) -> bool {
    match p {
        PortSpec::Single(p) => *p == port,
        PortSpec::Range(a, b) => *a <= port && port <= *b,
        PortSpec::Named(name) => ep.is_some_and(|ep| {
            world.endpoints[ep]
                .named_ports
                .iter()
                .any(|np| np.name == *name && np.protocol == proto && np.port == port)
        }),
    }
}

/// Best effort (docs/semantics.md#services-in-rules, decision `services-rule-match`): the address is one of the service's endpoints; in a
/// destination the port must also be one of the service's target ports.
fn service_matches(
    world: &World,
    ns: &str,
    name: &str,
    ip: IpAddr,
    proto: u8,
    port: u16,
    source: bool,
) -> bool {
    let Some(svc) = world
        .services
        .iter()
        .find(|s| s.namespace == ns && s.name == name)
    else {
        return false;
    };
    svc.endpoints.iter().any(|&e| {
        let ep = &world.endpoints[e];
        ep.ips.contains(&ip)
            && (source
                || svc.ports.iter().any(|sp| {
                    sp.protocol == proto && target_port(world, e, &sp.target, proto) == Some(port)
                }))
    })
}

/// A service target port resolved on one endpoint.
pub(crate) fn target_port(world: &World, ep: usize, t: &TargetPort, proto: u8) -> Option<u16> {
    match t {
        TargetPort::Number(n) => Some(*n),
        TargetPort::Named(name) => world.endpoints[ep]
            .named_ports
            .iter()
            .find(|np| np.name == *name && np.protocol == proto)
            .map(|np| np.port),
    }
}
