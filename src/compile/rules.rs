//! One Calico rule as nft match lists: alternatives (OR), each a conjunction, with
//! the IP family made explicit where the rule is family-specific (docs/semantics.md#ip-families,
//! docs/semantics.md#ip-sets).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::names::{hashed_id, set_name};
use crate::nft::{Dir, Element, Family, Match, Name, Set, SetType};
use crate::resolve::{EntityMatch, Failsafe, PortSpec, Rule, TargetPort, World};

/// Protocols that have ports (TCP, UDP, SCTP).
pub const PORT_PROTOS: [u8; 3] = [6, 17, 132];

/// The named sets one table uses, built on first reference.
pub struct Sets<'w> {
    w: &'w World,
    pub sets: BTreeMap<Name, Set>,
    /// Whether any IPv6 address exists in the world; without one no IPv6 packet
    /// reaches a node, so IPv6 variants of rules are not rendered.
    pub v6: bool,
}

fn fam_of(v6: bool) -> Family {
    if v6 {
        Family::V6
    } else {
        Family::V4
    }
}

fn is_fam(ip: &IpAddr, v6: bool) -> bool {
    ip.is_ipv6() == v6
}

fn set_type(v6: bool) -> SetType {
    if v6 {
        SetType::Ipv6
    } else {
        SetType::Ipv4
    }
}

fn pp_type(v6: bool) -> SetType {
    if v6 {
        SetType::Ipv6ProtoPort
    } else {
        SetType::Ipv4ProtoPort
    }
}

/// A service target port resolved on one endpoint (as the model resolves it).
pub fn target_port(w: &World, ep: usize, t: &TargetPort, proto: u8) -> Option<u16> {
    match t {
        TargetPort::Number(n) => Some(*n),
        TargetPort::Named(name) => w.endpoints[ep]
            .named_ports
            .iter()
            .find(|np| np.name == *name && np.protocol == proto)
            .map(|np| np.port),
    }
}

impl<'w> Sets<'w> {
    pub fn new(w: &'w World) -> Sets<'w> {
        let v6 = w.nodes.iter().any(|n| n.ip.is_ipv6() || n.ipv6.is_some())
            || w.endpoints
                .iter()
                .any(|e| e.ips.iter().any(IpAddr::is_ipv6))
            || w.services.iter().any(|s| {
                s.cluster_ip.is_some_and(|ip| ip.is_ipv6())
                    || s.load_balancer_ip.is_some_and(|ip| ip.is_ipv6())
            });
        Sets {
            w,
            sets: BTreeMap::new(),
            v6,
        }
    }

    fn put(&mut self, name: &Name, make: impl FnOnce() -> Set) {
        if !self.sets.contains_key(name) {
            let set = make();
            self.sets.insert(name.clone(), set);
        }
    }

    /// The IP set of rule selector `s` (docs/semantics.md#ip-sets): member endpoint addresses and
    /// network-set nets. A hash set when every member is a single address (host
    /// networks included), an interval set when it holds a shorter prefix.
    pub fn selector(&mut self, s: usize, v6: bool) -> Name {
        let sel = &self.w.selector_sets[s];
        let name = set_name(v6, &sel.selector.unique_id());
        self.put(&name, || {
            let fam_nets: Vec<&IpNet> = sel
                .nets
                .iter()
                .filter(|n| matches!((n, v6), (IpNet::V6(_), true) | (IpNet::V4(_), false)))
                .collect();
            // A /32 (/128) network is a single address: a set of only those (a
            // threat feed's list, typically) stays a hash set, which nft loads and
            // updates far faster than an interval set (measured with nft 1.0.6: 100,000
            // addresses load in 0.27 s as a hash set, 0.7-0.85 s as an interval set;
            // adding one element takes under 10 ms against 0.5-1.1 s).
            let interval = fam_nets.iter().any(|n| n.prefix_len() < n.max_prefix_len());
            let nets: Vec<Element> = fam_nets
                .iter()
                .map(|n| {
                    if interval {
                        Element::Net(n.trunc())
                    } else {
                        Element::Addr(n.addr())
                    }
                })
                .collect();
            let mut elements: Vec<Element> = sel
                .hosts
                .iter()
                .filter(|ip| is_fam(ip, v6))
                .map(|ip| {
                    if interval {
                        Element::Net(IpNet::from(*ip))
                    } else {
                        Element::Addr(*ip)
                    }
                })
                .collect();
            elements.extend(nets);
            let mut set = Set::new(name.clone(), set_type(v6), interval, elements);
            set.comment = Some(format!("selector {}", sel.canonical));
            set
        });
        name
    }

    /// Every workload address of the world (kube-proxy's "from a pod" test).
    pub fn all_pods(&mut self, v6: bool) -> Name {
        let name = set_name(v6, "all-pods");
        let w = self.w;
        self.put(&name, || {
            let elements = w
                .endpoints
                .iter()
                .filter(|e| e.kind == crate::resolve::EndpointKind::Workload)
                .flat_map(|e| e.ips.iter())
                .filter(|ip| is_fam(ip, v6) && w.owner(**ip).workload.is_some())
                .map(|ip| Element::Addr(*ip))
                .collect();
            let mut set = Set::new(name.clone(), set_type(v6), false, elements);
            set.comment = Some("every workload address".into());
            set
        });
        name
    }

    /// `address . protocol . port` of every endpoint's named ports in `names`,
    /// for the addresses the endpoint owns (the model resolves a named port on the
    /// endpoint owning the address: the workload, else a HEP by expectedIPs).
    pub fn named_ports(&mut self, names: &[&str], v6: bool) -> Name {
        let mut sorted: Vec<&str> = names.to_vec();
        sorted.sort();
        sorted.dedup();
        let name = set_name(v6, &hashed_id("n", &sorted.join(",")));
        let w = self.w;
        self.put(&name, || {
            let mut elements = vec![];
            for (i, e) in w.endpoints.iter().enumerate() {
                for ip in e.ips.iter().filter(|ip| is_fam(ip, v6)) {
                    let o = w.owner(*ip);
                    if o.workload.or(o.host_endpoint) != Some(i) {
                        continue;
                    }
                    for np in e
                        .named_ports
                        .iter()
                        .filter(|np| sorted.contains(&&*np.name))
                    {
                        elements.push(Element::AddrProtoPort(*ip, np.protocol, np.port));
                    }
                }
            }
            let mut set = Set::new(name.clone(), pp_type(v6), false, elements);
            set.comment = Some(format!("named ports {}", sorted.join(", ")));
            set
        });
        name
    }

    /// A `services:` match: destination sets hold `address . protocol . target
    /// port` of the service's endpoints; source sets hold the addresses only (docs/semantics.md#services-in-rules,
    /// decision `services-rule-match`). `None` when the service does not exist (never matches).
    pub fn service(&mut self, ns: &str, svc: &str, source: bool, v6: bool) -> Option<Name> {
        let w = self.w;
        let s = w
            .services
            .iter()
            .find(|s| s.namespace == ns && s.name == svc)?;
        let kind = if source { "svcnoport" } else { "svc" };
        let name = set_name(v6, &hashed_id(kind, &format!("{ns}/{svc}")));
        self.put(&name, || {
            let mut elements = vec![];
            for &e in &s.endpoints {
                for ip in w.endpoints[e].ips.iter().filter(|ip| is_fam(ip, v6)) {
                    if source {
                        elements.push(Element::Addr(*ip));
                        continue;
                    }
                    for sp in &s.ports {
                        if let Some(p) = target_port(w, e, &sp.target, sp.protocol) {
                            elements.push(Element::AddrProtoPort(*ip, sp.protocol, p));
                        }
                    }
                }
            }
            let ty = if source { set_type(v6) } else { pp_type(v6) };
            let mut set = Set::new(name.clone(), ty, false, elements);
            set.comment = Some(format!("service {ns}/{svc}"));
            set
        });
        Some(name)
    }
}

/// Every alternative (OR) of conjunctions that renders `rule`, over both families.
/// A rule that reads the same in both families renders once, without a family
/// match; otherwise each family present gets its own alternatives, starting with
/// `meta nfproto`. Empty: the rule can never match (absent in both families).
pub fn rule_alternatives(sets: &mut Sets<'_>, rule: &Rule) -> Vec<Vec<Match>> {
    let v4 = (!rule.absent_v4).then(|| family_alternatives(sets, rule, false));
    if !sets.v6 {
        // No IPv6 packet exists: the IPv4 reading needs no family match.
        return v4.unwrap_or_default();
    }
    let v6 = (!rule.absent_v6 && sets.v6).then(|| family_alternatives(sets, rule, true));
    match (v4, v6) {
        (Some(a), Some(b)) if a == b => a,
        (a, b) => {
            let mut out = vec![];
            for (alts, fam) in [(a, Family::V4), (b, Family::V6)] {
                for mut alt in alts.into_iter().flatten() {
                    alt.insert(0, Match::Nfproto(fam));
                    out.push(alt);
                }
            }
            out
        }
    }
}

fn cross(alts: Vec<Vec<Match>>, options: Vec<Vec<Match>>) -> Vec<Vec<Match>> {
    let mut out = vec![];
    for a in &alts {
        for o in &options {
            let mut m = a.clone();
            m.extend(o.iter().cloned());
            out.push(m);
        }
    }
    out
}

fn family_alternatives(sets: &mut Sets<'_>, rule: &Rule, v6: bool) -> Vec<Vec<Match>> {
    let fam = fam_of(v6);
    let mut base = vec![];
    if let Some(p) = rule.protocol {
        base.push(Match::L4proto {
            protos: vec![p],
            negate: false,
        });
    }
    if let Some(p) = rule.not_protocol {
        base.push(Match::L4proto {
            protos: vec![p],
            negate: true,
        });
    }
    if let Some(i) = rule.icmp {
        base.push(Match::Icmp {
            family: fam,
            icmp_type: i.icmp_type,
            code: i.code,
            negate: false,
        });
    }
    if let Some(i) = rule.not_icmp {
        base.push(Match::Icmp {
            family: fam,
            icmp_type: i.icmp_type,
            code: i.code,
            negate: true,
        });
    }
    let mut alts = vec![base];
    for (e, dir) in [(&rule.source, Dir::Saddr), (&rule.destination, Dir::Daddr)] {
        match entity(sets, rule, e, dir, v6) {
            Some(options) => alts = cross(alts, options),
            None => return vec![],
        }
    }
    alts
}

/// One side of a rule: its alternatives, or `None` when it can never match in this
/// family.
fn entity(
    sets: &mut Sets<'_>,
    rule: &Rule,
    e: &EntityMatch,
    dir: Dir,
    v6: bool,
) -> Option<Vec<Vec<Match>>> {
    let fam = fam_of(v6);
    let mut all = vec![];
    if !e.nets.is_empty() {
        let nets: Vec<IpNet> = e
            .nets
            .iter()
            .filter(|n| matches!((n, v6), (IpNet::V6(_), true) | (IpNet::V4(_), false)))
            .copied()
            .collect();
        if nets.is_empty() {
            return None;
        }
        all.push(Match::Addr {
            family: fam,
            dir,
            nets,
            negate: false,
        });
    }
    let not_nets: Vec<IpNet> = e
        .not_nets
        .iter()
        .filter(|n| matches!((n, v6), (IpNet::V6(_), true) | (IpNet::V4(_), false)))
        .copied()
        .collect();
    if !not_nets.is_empty() {
        all.push(Match::Addr {
            family: fam,
            dir,
            nets: not_nets,
            negate: true,
        });
    }
    for (sel, negate) in [(e.selector, false), (e.not_selector, true)] {
        if let Some(s) = sel {
            all.push(Match::AddrInSet {
                family: fam,
                dir,
                set: sets.selector(s, v6),
                negate,
            });
        }
    }
    if let Some((ns, name)) = &e.services {
        let source = dir == Dir::Saddr;
        let set = sets.service(ns, name, source, v6)?;
        all.push(if source {
            Match::AddrInSet {
                family: fam,
                dir,
                set,
                negate: false,
            }
        } else {
            Match::AddrProtoPortInSet {
                family: fam,
                dir,
                set,
                negate: false,
            }
        });
    }
    let port_proto = rule.protocol.map(|p| PORT_PROTOS.contains(&p));
    fn split(list: &[PortSpec]) -> (Vec<(u16, u16)>, Vec<&str>) {
        let mut ranges = vec![];
        let mut named = vec![];
        for p in list {
            match p {
                PortSpec::Single(p) => ranges.push((*p, *p)),
                PortSpec::Range(a, b) => ranges.push((*a, *b)),
                PortSpec::Named(n) => named.push(n.as_str()),
            }
        }
        (ranges, named)
    }
    let mut options = vec![all];
    if !e.ports.is_empty() {
        if port_proto == Some(false) {
            return None;
        }
        let (ranges, named) = split(&e.ports);
        let mut alts = vec![];
        if !ranges.is_empty() {
            let mut m = vec![];
            if port_proto.is_none() {
                m.push(Match::L4proto {
                    protos: PORT_PROTOS.to_vec(),
                    negate: false,
                });
            }
            m.push(Match::Port {
                dir,
                ranges,
                negate: false,
            });
            alts.push(m);
        }
        if !named.is_empty() {
            alts.push(vec![Match::AddrProtoPortInSet {
                family: fam,
                dir,
                set: sets.named_ports(&named, v6),
                negate: false,
            }]);
        }
        options = cross(options, alts);
    }
    if !e.not_ports.is_empty() && port_proto != Some(false) {
        let (ranges, named) = split(&e.not_ports);
        let mut m = vec![];
        if !ranges.is_empty() {
            m.push(Match::Port {
                dir,
                ranges,
                negate: true,
            });
        }
        if !named.is_empty() {
            m.push(Match::AddrProtoPortInSet {
                family: fam,
                dir,
                set: sets.named_ports(&named, v6),
                negate: true,
            });
        }
        if port_proto == Some(true) {
            options = cross(options, vec![m]);
        } else {
            // No protocol: packets without ports pass notPorts (the model's rule).
            let mut with = vec![Match::L4proto {
                protos: PORT_PROTOS.to_vec(),
                negate: false,
            }];
            with.extend(m);
            let without = vec![Match::L4proto {
                protos: PORT_PROTOS.to_vec(),
                negate: true,
            }];
            options = cross(options, vec![without, with]);
        }
    }
    Some(options)
}

/// The failsafe matches (docs/semantics.md#failsafe-ports; decision
/// `felix-configuration`): entries without a `net` grouped by protocol, one
/// alternative per protocol; each entry with a `net` is its own alternative, the
/// net matched on `net_dir` (the remote side).
pub fn failsafe_matches(list: &[Failsafe], port_dir: Dir, net_dir: Dir) -> Vec<Vec<Match>> {
    let mut out = vec![];
    let head = |proto: u8, ranges: Vec<(u16, u16)>| {
        vec![
            Match::L4proto {
                protos: vec![proto],
                negate: false,
            },
            Match::Port {
                dir: port_dir,
                ranges,
                negate: false,
            },
        ]
    };
    for proto in [6u8, 17, 132] {
        let ranges: Vec<(u16, u16)> = list
            .iter()
            .filter(|f| f.protocol == proto && f.net.is_none())
            .map(|f| (f.port, f.port))
            .collect();
        if !ranges.is_empty() {
            out.push(head(proto, ranges));
        }
    }
    for f in list {
        if let Some(net) = f.net {
            let family = match net {
                IpNet::V4(_) => Family::V4,
                IpNet::V6(_) => Family::V6,
            };
            let mut m = head(f.protocol, vec![(f.port, f.port)]);
            m.push(Match::Addr {
                family,
                dir: net_dir,
                nets: vec![net],
                negate: false,
            });
            out.push(m);
        }
    }
    out
}
