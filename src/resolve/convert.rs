//! Building the [`World`]: endpoints, profiles, policies (Calico and Kubernetes),
//! services, selector interning and the per-endpoint plans.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::*;
use crate::diag::Diagnostic;
use crate::inventory::{Inventory, IP_ADDRS_ANNOTATION};
use crate::manifest::types::{
    EntityRule, IntOrString, K8sNetworkPolicySpec, K8sPeer, K8sPort, LabelSelector, PolicySpec,
    Rule as RawRule,
};
use crate::manifest::values::{parse_cidr_or_ip, PortSpec, Protocol};
use crate::manifest::{Body, Kind, Resource, ResourceKey};
use crate::selector::{self, Expr, Selector};

/// Protocol name or number → IP protocol number (the validator's parser).
pub fn parse_protocol(p: &IntOrString) -> Option<u8> {
    Protocol::parse(p).ok().map(Protocol::number)
}

fn parse_port(p: &IntOrString) -> Option<PortSpec> {
    PortSpec::parse(p).ok()
}

fn parse_net(s: &str) -> Option<IpNet> {
    parse_cidr_or_ip(s)
}

fn sel(text: &str) -> Selector {
    // Inputs are validated; an unparsable selector (never expected) matches nothing.
    selector::parse(text).unwrap_or_else(|_| expr_sel(Expr::Not(Box::new(Expr::All))))
}

fn and(a: Selector, b: Selector) -> Selector {
    Selector::and(a, b)
}

/// A selector from a hand-built tree (normalised as a parse of its text would be).
fn expr_sel(e: Expr) -> Selector {
    Selector::all().replace_all(e)
}

/// Interns rule selectors by canonical text.
#[derive(Default)]
struct Interner {
    by_text: BTreeMap<String, usize>,
    list: Vec<Selector>,
}

impl Interner {
    fn intern(&mut self, s: Selector) -> usize {
        let text = s.canonical();
        if let Some(i) = self.by_text.get(&text) {
            return *i;
        }
        let i = self.list.len();
        self.list.push(s);
        self.by_text.insert(text, i);
        i
    }
}

struct Ctx {
    interner: Interner,
}

/// A staged policy's `stagedAction` (default `Set`).
fn staged_action(r: &Resource) -> Option<&str> {
    if !matches!(
        r.kind,
        Kind::StagedNetworkPolicy
            | Kind::StagedGlobalNetworkPolicy
            | Kind::StagedKubernetesNetworkPolicy
    ) {
        return None;
    }
    let a = match &r.body {
        Body::Policy(s) => s.staged_action.as_ref(),
        Body::K8sNetworkPolicy(s) => s.staged_action.as_ref(),
        _ => None,
    };
    Some(a.map_or("Set", |a| a.value.as_str()))
}

/// The enforced policy a staged one stands for: same namespace and name.
fn enforced_counterpart(r: &Resource) -> ResourceKey {
    let kind = match r.kind {
        Kind::StagedNetworkPolicy => Kind::NetworkPolicy,
        Kind::StagedGlobalNetworkPolicy => Kind::GlobalNetworkPolicy,
        _ => Kind::K8sNetworkPolicy,
    };
    ResourceKey { kind, ..r.key() }
}

/// Whether a staged policy would change the preview (`Set` or `Delete`; `Learn` and
/// `Ignore` do not: decision `staged-preview`).
pub(super) fn has_effective_staged(inv: &Inventory) -> bool {
    inv.resources
        .values()
        .any(|r| matches!(staged_action(r), Some("Set" | "Delete")))
}

/// Resolves an inventory; with `preview`, the staged policies are enforced as their
/// `stagedAction` says (decision `staged-preview`): `Set` replaces the enforced
/// policy of the same kind, namespace and name (or adds it), `Delete` removes it,
/// `Learn` and `Ignore` do nothing.
pub(super) fn build(inv: &Inventory, preview: bool) -> World {
    let mut world = World::default();
    let mut ctx = Ctx {
        interner: Interner::default(),
    };
    world.nodes = inv
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| Node {
            name: n.name.clone(),
            ip: IpAddr::V4(n.ip),
            ipv6: n.ipv6.map(IpAddr::V6),
            interfaces: n.interfaces.clone(),
            eth0_hep: None,
            pod_ranges: [
                inv.cluster.node_pod_range_v4(i).map(ipnet::IpNet::V4),
                inv.cluster.node_pod_range_v6(i).map(ipnet::IpNet::V6),
            ]
            .into_iter()
            .flatten()
            .collect(),
            felix: super::felix::for_node(inv, &n.name),
        })
        .collect();
    world.notes = super::felix::notes(inv);
    let default_node = world
        .nodes
        .first()
        .map(|n| n.name.clone())
        .unwrap_or_default();

    let mut profile_map: BTreeMap<String, Profile> = BTreeMap::new();
    // Namespaces and service accounts → profiles.
    let mut ns_labels: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut sa_labels: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    for r in inv.resources.values() {
        match r.kind {
            Kind::Namespace => {
                ns_labels.insert(r.metadata.name().to_string(), r.metadata.labels());
            }
            Kind::ServiceAccount => {
                let key = r.key();
                sa_labels.insert(
                    (key.namespace.unwrap_or_default(), key.name),
                    r.metadata.labels(),
                );
            }
            _ => {}
        }
    }
    // Namespaces used by pods and network sets exist too (kubectl would need them).
    for r in inv.resources.values() {
        if matches!(r.kind, Kind::Pod | Kind::NetworkSet) {
            let ns = r.key().namespace.unwrap_or_default();
            ns_labels.entry(ns).or_default();
        }
        if let Body::Pod(p) = &r.body {
            let ns = r.key().namespace.unwrap_or_default();
            sa_labels.entry((ns, pod_sa(p))).or_default();
        }
    }
    // Decision `namespace-name-label`: every Namespace carries its name as a label.
    for (ns, labels) in ns_labels.iter_mut() {
        labels.insert(NAMESPACE_NAME_LABEL.into(), ns.clone());
    }
    for (ns, labels) in &ns_labels {
        let mut apply: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (format!("pcns.{k}"), v.clone()))
            .collect();
        apply.insert(format!("pcns.{LABEL_NAME}"), ns.clone());
        let allow = vec![Rule {
            action: Some(Action::Allow),
            ..Rule::default()
        }];
        let name = format!("kns.{ns}");
        profile_map.insert(
            name.clone(),
            Profile {
                name,
                ingress: allow.clone(),
                egress: allow,
                labels_to_apply: apply,
            },
        );
    }
    for ((ns, sa), labels) in &sa_labels {
        let mut apply: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (format!("pcsa.{k}"), v.clone()))
            .collect();
        apply.insert(format!("pcsa.{LABEL_NAME}"), sa.clone());
        let name = format!("ksa.{ns}.{sa}");
        profile_map.insert(
            name.clone(),
            Profile {
                name,
                ingress: vec![],
                egress: vec![],
                labels_to_apply: apply,
            },
        );
    }
    let allow = vec![Rule {
        action: Some(Action::Allow),
        ..Rule::default()
    }];
    profile_map.insert(
        DEFAULT_ALLOW_PROFILE.to_string(),
        Profile {
            name: DEFAULT_ALLOW_PROFILE.to_string(),
            ingress: allow.clone(),
            egress: allow,
            labels_to_apply: BTreeMap::new(),
        },
    );

    // Workload endpoints (resources iterate in key order: namespace, name).
    for r in inv.resources.values() {
        let Body::Pod(p) = &r.body else { continue };
        if p.host_network == Some(true) {
            continue; // host-networked pods are the node, not a workload endpoint
        }
        let key = r.key();
        let ns = key.namespace.clone().unwrap_or_default();
        let sa = pod_sa(p);
        let mut labels = r.metadata.labels();
        labels.insert(LABEL_NAMESPACE.into(), ns.clone());
        labels.insert(LABEL_ORCHESTRATOR.into(), "k8s".into());
        if sa.len() < 63 {
            labels.insert(LABEL_SERVICE_ACCOUNT.into(), sa.clone());
        }
        let profiles = vec![format!("kns.{ns}"), format!("ksa.{ns}.{sa}")];
        let inherited = profiles
            .iter()
            .filter_map(|p| profile_map.get(p))
            .map(|p| p.labels_to_apply.clone())
            .collect();
        let ips = pod_ips(r);
        let mut named_ports = Vec::new();
        for c in &p.containers {
            for port in &c.ports {
                let Some(name) = &port.value.name else {
                    continue;
                };
                let proto = port
                    .value
                    .protocol
                    .as_ref()
                    .and_then(|s| parse_protocol(&IntOrString::Str(s.value.clone())))
                    .unwrap_or(6);
                if let Ok(n) = u16::try_from(port.value.container_port.value) {
                    named_ports.push(NamedPort {
                        name: name.value.clone(),
                        protocol: proto,
                        port: n,
                    });
                }
            }
        }
        world.endpoints.push(Endpoint {
            kind: EndpointKind::Workload,
            name: key.name.clone(),
            namespace: Some(ns),
            node_index: None,
            node: p
                .node_name
                .as_ref()
                .map(|n| n.value.clone())
                .unwrap_or_else(|| default_node.clone()),
            ips,
            labels,
            inherited,
            profiles,
            profile_refs: vec![],
            named_ports,
            interface: None,
            plans: Plans::default(),
            member_of: vec![],
        });
    }
    // Host endpoints.
    for r in inv.resources.values() {
        let Body::HostEndpoint(h) = &r.body else {
            continue;
        };
        let ips = h
            .expected_ips
            .iter()
            .flatten()
            .filter_map(|s| s.value.parse::<IpAddr>().ok())
            .collect();
        let named_ports = h
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                Some(NamedPort {
                    name: p.value.name.value.clone(),
                    protocol: parse_protocol(&p.value.protocol.value)?,
                    port: u16::try_from(p.value.port.value).ok()?,
                })
            })
            .collect();
        let profiles: Vec<String> = h
            .profiles
            .iter()
            .flatten()
            .map(|p| p.value.clone())
            .collect();
        let inherited = profiles
            .iter()
            .filter_map(|p| profile_map.get(p))
            .map(|p| p.labels_to_apply.clone())
            .collect();
        world.endpoints.push(Endpoint {
            kind: EndpointKind::Host,
            name: r.metadata.name().to_string(),
            namespace: None,
            node_index: None,
            node: h.node.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
            ips,
            labels: r.metadata.labels(),
            inherited,
            profiles,
            profile_refs: vec![],
            named_ports,
            interface: h
                .interface_name
                .as_ref()
                .map(|i| i.value.clone())
                .filter(|i| !i.is_empty()),
            plans: Plans::default(),
            member_of: vec![],
        });
    }
    // Network sets.
    for r in inv.resources.values() {
        let Body::NetworkSet(s) = &r.body else {
            continue;
        };
        let nets = s
            .nets
            .iter()
            .flatten()
            .filter_map(|n| parse_net(&n.value))
            .collect();
        let mut labels = r.metadata.labels();
        let mut inherited = Vec::new();
        let namespace = if r.kind == Kind::NetworkSet {
            let ns = r.key().namespace.unwrap_or_default();
            labels.insert(LABEL_NAMESPACE.into(), ns.clone());
            if let Some(p) = profile_map.get(&format!("kns.{ns}")) {
                inherited.push(p.labels_to_apply.clone());
            }
            Some(ns)
        } else {
            None
        };
        world.network_sets.push(NetworkSet {
            name: r.metadata.name().to_string(),
            namespace,
            nets,
            labels,
            inherited,
        });
    }
    world.network_sets.sort_by(|a, b| {
        (a.namespace.is_none(), &a.namespace, &a.name).cmp(&(
            b.namespace.is_none(),
            &b.namespace,
            &b.name,
        ))
    });

    // Tiers.
    let mut tiers: BTreeMap<String, Tier> = BTreeMap::new();
    for r in inv.resources.values() {
        let Body::Tier(t) = &r.body else { continue };
        let name = r.metadata.name().to_string();
        let default_action = match t.default_action.as_ref().map(|a| a.value.as_str()) {
            Some("Pass") => TierAction::Pass,
            _ => TierAction::Deny,
        };
        tiers.insert(
            name.clone(),
            Tier {
                name,
                order: t.order.as_ref().map(|o| o.value),
                default_action,
                valid: true,
                policies: vec![],
            },
        );
    }
    for (name, order, action) in BUILTIN_TIERS {
        tiers.entry((*name).into()).or_insert_with(|| Tier {
            name: (*name).into(),
            order: Some(*order),
            default_action: *action,
            valid: true,
            policies: vec![],
        });
    }

    // Policies.
    let replaced: BTreeSet<ResourceKey> = if preview {
        inv.resources
            .values()
            .filter(|r| matches!(staged_action(r), Some("Set" | "Delete")))
            .map(|r| enforced_counterpart(r))
            .collect()
    } else {
        BTreeSet::new()
    };
    for r in inv.resources.values() {
        if preview && (replaced.contains(&r.key()) || staged_action(r).is_some_and(|a| a != "Set"))
        {
            continue;
        }
        let mut policy = match &r.body {
            Body::Policy(spec) => calico_policy(&mut ctx, r, spec),
            Body::K8sNetworkPolicy(spec) => k8s_policy(&mut ctx, r, spec),
            Body::AdminPolicy(spec) => admin_policy(&mut ctx, r, spec, &mut world.diagnostics),
            _ => continue,
        };
        if preview {
            policy.staged = false;
        }
        let tier = tiers.entry(policy.tier.clone()).or_insert_with(|| {
            world.diagnostics.push(Diagnostic::warning(
                r.span,
                format!(
                    "{} {:?} refers to tier {:?}, which does not exist; like Felix, the tier is \
                     kept as invalid (sorted after every valid tier, default action Deny)",
                    r.kind.name(),
                    r.metadata.name(),
                    policy.tier
                ),
            ));
            Tier {
                name: policy.tier.clone(),
                order: None,
                default_action: TierAction::Deny,
                valid: false,
                policies: vec![],
            }
        });
        tier.policies.push(policy);
    }
    let mut tiers: Vec<Tier> = tiers.into_values().collect();
    for t in &mut tiers {
        t.policies.sort_by(|a, b| {
            let oa = a.order.unwrap_or(f64::INFINITY);
            let ob = b.order.unwrap_or(f64::INFINITY);
            oa.total_cmp(&ob)
                .then_with(|| a.sort_key().as_bytes().cmp(b.sort_key().as_bytes()))
        });
    }
    tiers.sort_by(|a, b| {
        (!a.valid)
            .cmp(&!b.valid)
            .then(a.order.is_none().cmp(&b.order.is_none()))
            .then(a.order.unwrap_or(0.0).total_cmp(&b.order.unwrap_or(0.0)))
            .then_with(|| a.name.cmp(&b.name))
    });
    world.tiers = tiers;

    // Services.
    for r in inv.resources.values() {
        let Body::Service(s) = &r.body else { continue };
        let key = r.key();
        let ns = key.namespace.unwrap_or_default();
        let service_type = match s.service_type.as_ref().map(|t| t.value.as_str()) {
            Some("NodePort") => ServiceType::NodePort,
            Some("LoadBalancer") => ServiceType::LoadBalancer,
            _ => ServiceType::ClusterIp,
        };
        let ports = s
            .ports
            .iter()
            .filter_map(|p| {
                let p = &p.value;
                let port = u16::try_from(p.port.value).ok()?;
                Some(ServicePort {
                    name: p.name.clone(),
                    protocol: p
                        .protocol
                        .as_ref()
                        .and_then(|x| parse_protocol(&IntOrString::Str(x.value.clone())))
                        .unwrap_or(6),
                    port,
                    target: match p.target_port.as_ref().map(|t| &t.value) {
                        None => TargetPort::Number(port),
                        Some(IntOrString::Int(n)) => {
                            TargetPort::Number(u16::try_from(*n).unwrap_or(port))
                        }
                        Some(IntOrString::Str(s)) => match s.parse::<u16>() {
                            Ok(n) => TargetPort::Number(n),
                            Err(_) => TargetPort::Named(s.clone()),
                        },
                    },
                    node_port: p
                        .node_port
                        .as_ref()
                        .and_then(|n| u16::try_from(n.value).ok())
                        .filter(|_| service_type != ServiceType::ClusterIp),
                })
            })
            .collect();
        let endpoints = match &s.selector {
            Some(selector) if !selector.is_empty() => world
                .endpoints
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    e.kind == EndpointKind::Workload
                        && e.namespace.as_deref() == Some(ns.as_str())
                        && selector.iter().all(|(k, v)| e.labels.get(k) == Some(v))
                })
                .map(|(i, _)| i)
                .collect(),
            _ => vec![],
        };
        world.services.push(Service {
            namespace: ns,
            name: key.name,
            service_type,
            cluster_ip: s
                .cluster_ip
                .as_ref()
                .and_then(|c| c.value.parse::<IpAddr>().ok()),
            load_balancer_ip: s
                .load_balancer_ip
                .as_ref()
                .and_then(|c| c.value.parse::<IpAddr>().ok())
                .filter(|_| service_type == ServiceType::LoadBalancer),
            local: s.external_traffic_policy.as_ref().map(|p| p.value.as_str()) == Some("Local"),
            ports,
            endpoints,
        });
    }

    world.profiles = profile_map.into_values().collect();
    // Indexes: endpoint → node and profiles, address → owners, node → eth0 HEP.
    for e in &mut world.endpoints {
        e.node_index = world.nodes.iter().position(|n| n.name == e.node);
        e.profile_refs = e
            .profiles
            .iter()
            .filter_map(|name| {
                world
                    .profiles
                    .binary_search_by(|p| p.name.as_str().cmp(name))
                    .ok()
            })
            .collect();
    }
    let mut index: BTreeMap<IpAddr, IpOwner> = BTreeMap::new();
    for (i, n) in world.nodes.iter().enumerate() {
        for ip in std::iter::once(n.ip).chain(n.ipv6) {
            index.entry(ip).or_default().node.get_or_insert(i);
        }
    }
    for (i, e) in world.endpoints.iter().enumerate() {
        for ip in &e.ips {
            let o = index.entry(*ip).or_default();
            match e.kind {
                EndpointKind::Workload => {
                    o.workload.get_or_insert(i);
                }
                EndpointKind::Host => {
                    o.host_endpoint.get_or_insert(i);
                    // A host endpoint's expected address is an address of its node.
                    if let Some(n) = e.node_index {
                        o.node.get_or_insert(n);
                    }
                }
            }
        }
    }
    for (ip, owner) in index {
        match ip {
            IpAddr::V4(v4) => world.ip_index_v4.push((u32::from(v4), owner)),
            IpAddr::V6(v6) => world.ip_index_v6.push((u128::from(v6), owner)),
        }
    }
    for n in 0..world.nodes.len() {
        world.nodes[n].eth0_hep = world.hep_for(n, "eth0");
        // Decision `ipam-blocks`: a node's ranges are the blocks of its pods.
        let blocks: Vec<ipnet::IpNet> = world
            .endpoints
            .iter()
            .filter(|e| e.kind == EndpointKind::Workload && e.node == world.nodes[n].name)
            .flat_map(|e| e.ips.iter())
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => inv.cluster.block_of(*v4).map(ipnet::IpNet::V4),
                IpAddr::V6(_) => None,
            })
            .collect();
        for b in blocks {
            if !world.nodes[n].pod_ranges.contains(&b) {
                world.nodes[n].pod_ranges.push(b);
            }
        }
    }

    // Selector sets: members.
    world.selector_sets = ctx
        .interner
        .list
        .into_iter()
        .map(|s| selector_set(&world, s))
        .collect();

    let words = world.selector_sets.len().div_ceil(64);
    for e in &mut world.endpoints {
        e.member_of = vec![0; words];
    }
    for (si, set) in world.selector_sets.iter().enumerate() {
        for &e in &set.endpoints {
            world.endpoints[e].member_of[si / 64] |= 1u64 << (si % 64);
        }
    }
    // Rule presence per family (docs/semantics.md#ip-families).
    let mark = |r: &mut Rule| {
        r.absent_v4 = absent_for(r, false);
        r.absent_v6 = absent_for(r, true);
    };
    for t in &mut world.tiers {
        for p in &mut t.policies {
            p.ingress
                .iter_mut()
                .chain(p.egress.iter_mut())
                .for_each(mark);
        }
    }
    for p in &mut world.profiles {
        p.ingress
            .iter_mut()
            .chain(p.egress.iter_mut())
            .for_each(mark);
    }

    // Plans.
    let plans: Vec<Plans> = world
        .endpoints
        .iter()
        .map(|e| plans_for(&world.tiers, e))
        .collect();
    for (e, p) in world.endpoints.iter_mut().zip(plans) {
        e.plans = p;
    }
    world
}

/// docs/semantics.md#ip-families: a rule is not rendered for a family when its ipVersion differs, when a
/// non-empty nets/notNets list keeps no CIDR of that family, or when notNets holds
/// that family's catch-all.
fn absent_for(rule: &Rule, v6: bool) -> bool {
    let fam = |n: &IpNet| matches!(n, IpNet::V6(_)) == v6;
    if rule.ip_version.is_some_and(|v| (v == 6) != v6) {
        return true;
    }
    let lists = [
        &rule.source.nets,
        &rule.source.not_nets,
        &rule.destination.nets,
        &rule.destination.not_nets,
    ];
    if lists.iter().any(|l| !l.is_empty() && !l.iter().any(fam)) {
        return true;
    }
    [&rule.source.not_nets, &rule.destination.not_nets]
        .iter()
        .any(|l| l.iter().any(|n| fam(n) && n.prefix_len() == 0))
}

fn pod_sa(p: &crate::manifest::types::PodSpec) -> String {
    p.service_account_name
        .as_ref()
        .or(p.service_account.as_ref())
        .map(|s| s.value.clone())
        .unwrap_or_else(|| "default".to_string())
}

fn pod_ips(r: &Resource) -> Vec<IpAddr> {
    let Some(text) = r
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(IP_ADDRS_ANNOTATION))
    else {
        return vec![];
    };
    let list: Vec<String> = serde_json::from_str(text).unwrap_or_default();
    list.iter()
        .filter_map(|s| parse_net(s).map(|n| n.addr()))
        .collect()
}

fn selector_set(world: &World, s: Selector) -> SelectorSet {
    let mut hosts = Vec::new();
    let mut nets = Vec::new();
    let mut endpoints = Vec::new();
    for (i, e) in world.endpoints.iter().enumerate() {
        if e.with_labels(|l| s.matches(l)) {
            endpoints.push(i);
            hosts.extend(e.ips.iter().copied());
        }
    }
    for n in &world.network_sets {
        if with_layered(&n.labels, &n.inherited, |l| s.matches(l)) {
            nets.extend(n.nets.iter().copied());
        }
    }
    dedup_sorted(&mut hosts);
    dedup_sorted(&mut nets);
    SelectorSet {
        canonical: s.canonical(),
        selector: s,
        hosts,
        nets,
        endpoints,
    }
}

fn plans_for(tiers: &[Tier], e: &Endpoint) -> Plans {
    let mut plans = Plans::default();
    let host = e.kind == EndpointKind::Host;
    for (ti, tier) in tiers.iter().enumerate() {
        for class in [
            StageClass::Normal,
            StageClass::Untracked,
            StageClass::PreDnat,
            StageClass::Forward,
        ] {
            if !host && class != StageClass::Normal {
                continue;
            }
            // doNotTrack is ignored on `*` host endpoints (docs/semantics.md#donottrack).
            if class == StageClass::Untracked && e.interface.as_deref() == Some("*") {
                continue;
            }
            for dir in [Direction::Ingress, Direction::Egress] {
                if class == StageClass::PreDnat && dir == Direction::Egress {
                    continue;
                }
                let policies: Vec<usize> = tier
                    .policies
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| {
                        !p.staged
                            && p.types.governs(dir)
                            && match class {
                                StageClass::Untracked => p.do_not_track,
                                StageClass::PreDnat => p.pre_dnat && !p.do_not_track,
                                StageClass::Normal => !p.do_not_track && !p.pre_dnat,
                                StageClass::Forward => {
                                    !p.do_not_track && !p.pre_dnat && p.apply_on_forward
                                }
                            }
                            && e.with_labels(|l| p.selector.matches(l))
                    })
                    .map(|(i, _)| i)
                    .collect();
                if policies.is_empty() {
                    continue;
                }
                let end_drop = matches!(class, StageClass::Normal | StageClass::Forward)
                    && tier.default_action == TierAction::Deny;
                plans.by_stage[class as usize][dir as usize].push(TierPlan {
                    tier: ti,
                    policies,
                    end_drop,
                });
            }
        }
    }
    plans
}

fn default_types(
    spec_types: Option<&Vec<crate::diag::Spanned<String>>>,
    ing: bool,
    eg: bool,
) -> Types {
    match spec_types {
        Some(t) if !t.is_empty() => Types {
            ingress: t.iter().any(|x| x.value == "Ingress"),
            egress: t.iter().any(|x| x.value == "Egress"),
        },
        _ => Types {
            ingress: ing || !eg,
            egress: eg,
        },
    }
}

fn calico_policy(ctx: &mut Ctx, r: &Resource, spec: &PolicySpec) -> Policy {
    let key = r.key();
    let kind = match r.kind {
        Kind::NetworkPolicy => PolicyKind::NetworkPolicy,
        Kind::StagedNetworkPolicy => PolicyKind::StagedNetworkPolicy,
        Kind::StagedGlobalNetworkPolicy => PolicyKind::StagedGlobalNetworkPolicy,
        _ => PolicyKind::GlobalNetworkPolicy,
    };
    let ns = key.namespace.clone();
    let text = spec.selector.as_ref().map(|s| s.value.trim()).unwrap_or("");
    let mut selector = sel(text);
    match &ns {
        Some(ns) => {
            let clause = expr_sel(Expr::Eq(LABEL_NAMESPACE.into(), ns.clone()));
            selector = if text.is_empty() {
                clause
            } else {
                and(selector, clause)
            };
            if let Some(sa) = nonempty(&spec.service_account_selector) {
                selector = and(selector, sel(sa).prefix_labels("pcsa."));
            }
        }
        None => {
            if let Some(nss) = nonempty(&spec.namespace_selector) {
                selector = and(selector, sel(nss).prefix_labels("pcns.")).replace_all(ns_has());
            }
            if let Some(sa) = nonempty(&spec.service_account_selector) {
                selector = and(selector, sel(sa).prefix_labels("pcsa."))
                    .replace_all(Expr::Has(LABEL_SERVICE_ACCOUNT.into()));
            }
        }
    }
    let pns = ns.as_deref().unwrap_or("");
    let ingress: Vec<Rule> = spec
        .ingress
        .iter()
        .flatten()
        .map(|r| convert_rule(ctx, &r.value, pns))
        .collect();
    let egress: Vec<Rule> = spec
        .egress
        .iter()
        .flatten()
        .map(|r| convert_rule(ctx, &r.value, pns))
        .collect();
    let flag =
        |f: &Option<crate::diag::Spanned<bool>>| f.as_ref().map(|b| b.value).unwrap_or(false);
    Policy {
        id: PolicyId {
            kind,
            namespace: ns,
            name: key.name,
        },
        tier: spec
            .tier
            .as_ref()
            .map(|t| t.value.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "default".into()),
        order: spec.order.as_ref().map(|o| o.value),
        selector,
        types: default_types(spec.types.as_ref(), !ingress.is_empty(), !egress.is_empty()),
        ingress,
        egress,
        staged: kind.is_staged(),
        do_not_track: flag(&spec.do_not_track),
        pre_dnat: flag(&spec.pre_dnat),
        apply_on_forward: flag(&spec.apply_on_forward),
    }
}

fn nonempty(s: &Option<crate::diag::Spanned<String>>) -> Option<&str> {
    s.as_ref().map(|s| s.value.trim()).filter(|s| !s.is_empty())
}

fn icmp(f: &Option<crate::diag::Spanned<crate::manifest::types::IcmpFields>>) -> Option<IcmpMatch> {
    let f = &f.as_ref()?.value;
    Some(IcmpMatch {
        icmp_type: u8::try_from(f.icmp_type.as_ref()?.value).ok()?,
        code: f.code.as_ref().and_then(|c| u8::try_from(c.value).ok()),
    })
}

/// The IP version a rule without `ipVersion` gets from its protocol, as Felix's
/// `ipVersionToProtoIPVersion` (felix/calc/rule_convert.go) gives it: ICMP -> 4,
/// ICMPv6 -> 6, anything else both (decision `icmp-ip-version`). The nets a rule
/// names narrow it further in [`absent_for`], as Felix's `FilterRuleToIPVersion`.
fn ip_version_of_protocol(protocol: Option<u8>) -> Option<u8> {
    match protocol {
        Some(1) => Some(4),
        Some(58) => Some(6),
        _ => None,
    }
}

fn convert_rule(ctx: &mut Ctx, r: &RawRule, ns: &str) -> Rule {
    let action = match r.action.value.as_str() {
        "Deny" => Action::Deny,
        "Log" => Action::Log,
        "Pass" => Action::Pass,
        _ => Action::Allow,
    };
    let protocol = r.protocol.as_ref().and_then(|p| parse_protocol(&p.value));
    Rule {
        absent_v4: false,
        absent_v6: false,
        action: Some(action),
        ip_version: r
            .ip_version
            .as_ref()
            .and_then(|v| u8::try_from(v.value).ok())
            .or_else(|| ip_version_of_protocol(protocol)),
        protocol,
        not_protocol: r
            .not_protocol
            .as_ref()
            .and_then(|p| parse_protocol(&p.value)),
        icmp: icmp(&r.icmp),
        not_icmp: icmp(&r.not_icmp),
        source: convert_entity(ctx, r.source.as_ref().map(|s| &s.value), ns),
        destination: convert_entity(ctx, r.destination.as_ref().map(|s| &s.value), ns),
    }
}

/// docs/semantics.md#rule-selectors: the effective positive selector and the pass-through notSelector.
fn convert_entity(ctx: &mut Ctx, e: Option<&EntityRule>, ns: &str) -> EntityMatch {
    let Some(e) = e else {
        return EntityMatch::default();
    };
    let strs = |v: &Option<Vec<crate::diag::Spanned<String>>>| -> Vec<IpNet> {
        v.iter()
            .flatten()
            .filter_map(|s| parse_net(&s.value))
            .collect()
    };
    let ports = |v: &Option<Vec<crate::diag::Spanned<IntOrString>>>| -> Vec<PortSpec> {
        v.iter()
            .flatten()
            .filter_map(|p| parse_port(&p.value))
            .collect()
    };
    let ns_selector_text = nonempty(&e.namespace_selector);
    let ns_sel: Option<Selector> = match ns_selector_text {
        Some(t) => Some(
            sel(t)
                .prefix_labels("pcns.")
                .replace_all(ns_has())
                .replace_global(Expr::Not(Box::new(ns_has()))),
        ),
        None if !ns.is_empty() => Some(expr_sel(Expr::Eq(LABEL_NAMESPACE.into(), ns.into()))),
        None => None,
    };
    let mut positive: Option<Selector> = None;
    if let Some(sa) = &e.service_accounts {
        if let Some(names) = &sa.value.names {
            if !names.is_empty() {
                let set: BTreeSet<String> = names.iter().map(|n| n.value.clone()).collect();
                positive = Some(expr_sel(Expr::In(LABEL_SERVICE_ACCOUNT.into(), set)));
            }
        }
        if let Some(s) = nonempty(&sa.value.selector) {
            let s = sel(s).prefix_labels("pcsa.");
            positive = Some(match positive {
                Some(p) => and(p, s),
                None => s,
            });
        }
    }
    if let Some(s) = nonempty(&e.selector) {
        positive = Some(match positive {
            Some(p) => and(p, sel(s)),
            None => sel(s),
        });
    }
    let not_selector = nonempty(&e.not_selector).map(sel);
    if let Some(nss) = ns_sel {
        if positive.is_some() || not_selector.is_some() || ns_selector_text.is_some() {
            positive = Some(match positive {
                Some(p) => and(nss, p),
                None => nss,
            });
        }
    }
    EntityMatch {
        nets: strs(&e.nets),
        not_nets: strs(&e.not_nets),
        selector: positive.map(|s| ctx.interner.intern(s)),
        not_selector: not_selector.map(|s| ctx.interner.intern(s)),
        ports: ports(&e.ports),
        not_ports: ports(&e.not_ports),
        services: e.services.as_ref().map(|s| {
            (
                s.value
                    .namespace
                    .as_ref()
                    .map(|n| n.value.clone())
                    .unwrap_or_else(|| ns.to_string()),
                s.value
                    .name
                    .as_ref()
                    .map(|n| n.value.clone())
                    .unwrap_or_default(),
            )
        }),
    }
}

// ---------------------------------------------------------------------------------
// Kubernetes NetworkPolicy (docs/semantics.md#kubernetes-networkpolicy)

fn k8s_selector(s: &LabelSelector, pod: bool) -> Option<Selector> {
    let mut parts: Vec<Expr> = Vec::new();
    if pod {
        parts.push(Expr::Eq(LABEL_ORCHESTRATOR.into(), "k8s".into()));
    }
    for (k, v) in s.match_labels.iter().flatten() {
        parts.push(Expr::Eq(k.clone(), v.value.clone()));
    }
    for req in s.match_expressions.iter().flatten() {
        let r = &req.value;
        let key = r.key.value.clone();
        let values: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
        parts.push(match r.operator.value.as_str() {
            "In" => Expr::In(key, values),
            "NotIn" => Expr::NotIn(key, values),
            "Exists" => Expr::Has(key),
            "DoesNotExist" => Expr::Not(Box::new(Expr::Has(key))),
            _ => return None, // unconvertible: the rule is dropped (docs/semantics.md#kubernetes-networkpolicy)
        });
    }
    Some(match parts.len() {
        0 => Selector::all(),
        1 => expr_sel(parts.remove(0)),
        _ => expr_sel(Expr::And(parts)),
    })
}

fn k8s_policy(ctx: &mut Ctx, r: &Resource, spec: &K8sNetworkPolicySpec) -> Policy {
    let key = r.key();
    let ns = key.namespace.clone().unwrap_or_default();
    let pod_sel = spec
        .pod_selector
        .as_ref()
        .and_then(|s| k8s_selector(s, true))
        .unwrap_or_else(|| expr_sel(Expr::Eq(LABEL_ORCHESTRATOR.into(), "k8s".into())));
    let selector = and(
        pod_sel,
        expr_sel(Expr::Eq(LABEL_NAMESPACE.into(), ns.clone())),
    );
    // Decision `k8s-policy-types-default`: the API server's defaulting, before
    // Calico's conversion sees the policy.
    let types = match &spec.policy_types {
        Some(t) if !t.is_empty() => Types {
            ingress: t.iter().any(|x| x.value == "Ingress"),
            egress: t.iter().any(|x| x.value == "Egress"),
        },
        _ => Types {
            ingress: true,
            egress: spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
        },
    };
    let mut ingress = Vec::new();
    for rule in spec.ingress.iter().flatten() {
        k8s_rules(
            ctx,
            &ns,
            rule.value.from.as_deref(),
            rule.value.ports.as_deref(),
            true,
            &mut ingress,
        );
    }
    let mut egress = Vec::new();
    for rule in spec.egress.iter().flatten() {
        k8s_rules(
            ctx,
            &ns,
            rule.value.to.as_deref(),
            rule.value.ports.as_deref(),
            false,
            &mut egress,
        );
    }
    let kind = if r.kind == Kind::StagedKubernetesNetworkPolicy {
        PolicyKind::StagedKubernetesNetworkPolicy
    } else {
        PolicyKind::KubernetesNetworkPolicy
    };
    Policy {
        id: PolicyId {
            kind,
            namespace: Some(ns),
            name: key.name,
        },
        tier: "default".into(),
        order: Some(1000.0),
        selector,
        types,
        ingress,
        egress,
        staged: kind.is_staged(),
        do_not_track: false,
        pre_dnat: false,
        apply_on_forward: false,
    }
}

fn k8s_rules(
    ctx: &mut Ctx,
    ns: &str,
    peers: Option<&[crate::diag::Spanned<K8sPeer>]>,
    ports: Option<&[crate::diag::Spanned<K8sPort>]>,
    ingress: bool,
    out: &mut Vec<Rule>,
) {
    // Group ports by protocol (no protocol → TCP), in first-seen order.
    let mut groups: Vec<(u8, Vec<PortSpec>)> = Vec::new();
    let mut any_port = false;
    for p in ports.into_iter().flatten() {
        let p = &p.value;
        let proto = p
            .protocol
            .as_ref()
            .and_then(|s| parse_protocol(&IntOrString::Str(s.value.clone())))
            .unwrap_or(6);
        let pm = match (&p.port, &p.end_port) {
            (None, _) => None,
            (Some(port), Some(end)) => match &port.value {
                IntOrString::Int(a) => Some(PortSpec::Range(
                    u16::try_from(*a).unwrap_or(0),
                    u16::try_from(end.value).unwrap_or(0),
                )),
                other => parse_port(other),
            },
            (Some(port), None) => parse_port(&port.value),
        };
        let idx = match groups.iter().position(|(pr, _)| *pr == proto) {
            Some(i) => i,
            None => {
                groups.push((proto, vec![]));
                groups.len() - 1
            }
        };
        match pm {
            Some(pm) => groups[idx].1.push(pm),
            None => any_port = true,
        }
    }
    let proto_groups: Vec<(Option<u8>, Vec<PortSpec>)> = if groups.is_empty() {
        vec![(None, vec![])]
    } else {
        groups
            .into_iter()
            .map(|(p, ports)| (Some(p), if any_port { vec![] } else { ports }))
            .collect()
    };
    let peer_list: Vec<Option<&K8sPeer>> = match peers {
        Some(p) if !p.is_empty() => p.iter().map(|p| Some(&p.value)).collect(),
        _ => vec![None],
    };
    for (proto, ports) in &proto_groups {
        for peer in &peer_list {
            let mut entity = EntityMatch::default();
            if let Some(peer) = peer {
                if let Some(block) = &peer.ip_block {
                    entity.nets = parse_net(&block.value.cidr.value).into_iter().collect();
                    entity.not_nets = block
                        .value
                        .except
                        .iter()
                        .flatten()
                        .filter_map(|e| parse_net(&e.value))
                        .collect();
                } else {
                    let pod = match &peer.pod_selector {
                        Some(s) => match k8s_selector(s, true) {
                            Some(s) => Some(s),
                            None => continue,
                        },
                        None => None,
                    };
                    let nss = match &peer.namespace_selector {
                        Some(s) => match k8s_selector(s, false) {
                            Some(s) => Some(s),
                            None => continue,
                        },
                        None => None,
                    };
                    let ns_part = match nss {
                        Some(s) => s.prefix_labels("pcns.").replace_all(ns_has()),
                        None => expr_sel(Expr::Eq(LABEL_NAMESPACE.into(), ns.into())),
                    };
                    let positive = match pod {
                        Some(p) => and(ns_part, p),
                        None => ns_part,
                    };
                    entity.selector = Some(ctx.interner.intern(positive));
                }
            }
            let mut rule = Rule {
                action: Some(Action::Allow),
                protocol: *proto,
                ..Rule::default()
            };
            if ingress {
                rule.source = entity;
                rule.destination.ports = ports.clone();
            } else {
                entity.ports = ports.clone();
                rule.destination = entity;
            }
            out.push(rule);
        }
    }
}

// ---------------------------------------------------------------------------------
// AdminNetworkPolicy / BaselineAdminNetworkPolicy (decision `admin-network-policy`)

/// A subject or a `pods` peer as Calico's converter writes it: the pod part
/// (`projectcalico.org/orchestrator == 'k8s'` and the pod selector) and the namespace
/// part (`pcns.`-prefixed, `all()` meaning every namespace).
fn admin_pods(ns: &LabelSelector, pods: Option<&LabelSelector>) -> Option<(Selector, Selector)> {
    let pod = match pods {
        Some(p) => k8s_selector(p, true)?,
        None => expr_sel(Expr::Eq(LABEL_ORCHESTRATOR.into(), "k8s".into())),
    };
    let nss = k8s_selector(ns, false)?
        .prefix_labels("pcns.")
        .replace_all(ns_has());
    Some((pod, nss))
}

/// One peer as a rule's entity; `Err` when Calico cannot convert it (a `nodes` peer,
/// an empty peer, a selector it cannot translate).
fn admin_peer(
    ctx: &mut Ctx,
    peer: &crate::manifest::types::AdminPeer,
) -> Result<EntityMatch, String> {
    let mut e = EntityMatch::default();
    if let Some(ns) = &peer.namespaces {
        let (_, nss) = admin_pods(ns, None).ok_or("unsupported namespace selector")?;
        e.selector = Some(ctx.interner.intern(nss));
    } else if let Some(p) = &peer.pods {
        let (pod, nss) = admin_pods(&p.namespace_selector, Some(&p.pod_selector))
            .ok_or("unsupported selector")?;
        e.selector = Some(ctx.interner.intern(and(nss, pod)));
    } else if let Some(nets) = &peer.networks {
        e.nets = nets
            .iter()
            .filter_map(|n| parse_net(&n.value).map(|n| n.trunc()))
            .collect();
    } else if peer.nodes.is_some() {
        return Err("Calico does not support `nodes` peers".into());
    } else {
        return Err("none of the supported peer fields is set".into());
    }
    Ok(e)
}

fn admin_rules(
    ctx: &mut Ctx,
    rule: &crate::manifest::types::AdminRule,
    ingress: bool,
) -> Result<Vec<Rule>, String> {
    let action = match rule.action.value.as_str() {
        "Allow" => Action::Allow,
        "Deny" => Action::Deny,
        "Pass" => Action::Pass,
        other => return Err(format!("unsupported action {other}")),
    };
    // Ports grouped by protocol name, sorted ("" = no ports: any protocol).
    let mut groups: BTreeMap<&str, Option<Vec<PortSpec>>> = BTreeMap::new();
    for p in rule.ports.iter().flatten() {
        let p = &p.value;
        let (proto, port) = if let Some(n) = &p.port_number {
            (
                n.protocol.as_ref().map_or("TCP", |s| s.value.as_str()),
                PortSpec::Single(u16::try_from(n.port.value).map_err(|e| e.to_string())?),
            )
        } else if let Some(r) = &p.port_range {
            (
                r.value
                    .protocol
                    .as_ref()
                    .map_or("TCP", |s| s.value.as_str()),
                PortSpec::Range(
                    u16::try_from(r.value.start.value).map_err(|e| e.to_string())?,
                    u16::try_from(r.value.end.value).map_err(|e| e.to_string())?,
                ),
            )
        } else if let Some(n) = &p.named_port {
            ("TCP", PortSpec::Named(n.value.clone()))
        } else {
            groups = BTreeMap::from([("", None)]);
            break;
        };
        if let Some(list) = groups.entry(proto).or_insert_with(|| Some(vec![])) {
            list.push(port);
        }
    }
    if groups.is_empty() {
        groups.insert("", None);
    }
    let peers = if ingress { &rule.from } else { &rule.to };
    let mut entities = Vec::new();
    for peer in peers.iter().flatten() {
        entities.push(admin_peer(ctx, &peer.value)?);
    }
    let mut out = Vec::new();
    for (proto, ports) in &groups {
        for entity in &entities {
            let mut r = Rule {
                action: Some(action),
                protocol: (!proto.is_empty())
                    .then(|| parse_protocol(&IntOrString::Str(proto.to_string())))
                    .flatten(),
                ..Rule::default()
            };
            let ports = ports.clone().unwrap_or_default();
            if ingress {
                r.source = entity.clone();
                r.destination.ports = ports;
            } else {
                r.destination = entity.clone();
                r.destination.ports = ports;
            }
            out.push(r);
        }
    }
    Ok(out)
}

fn admin_policy(
    ctx: &mut Ctx,
    r: &Resource,
    spec: &crate::manifest::types::AdminPolicySpec,
    diagnostics: &mut Vec<Diagnostic>,
) -> Policy {
    let baseline = r.kind == Kind::BaselineAdminNetworkPolicy;
    let name = r.metadata.name().to_string();
    let selector = match spec.subject.as_ref().map(|s| &s.value) {
        Some(s) => {
            let converted = match (&s.namespaces, &s.pods) {
                (Some(ns), _) => admin_pods(ns, None),
                (None, Some(p)) => admin_pods(&p.namespace_selector, Some(&p.pod_selector)),
                _ => None,
            };
            match converted {
                Some((pod, nss)) => and(pod, nss).replace_all(ns_has()),
                None => expr_sel(Expr::Not(Box::new(Expr::All))),
            }
        }
        None => expr_sel(Expr::Not(Box::new(Expr::All))),
    };
    let mut convert =
        |rules: &Option<Vec<crate::diag::Spanned<crate::manifest::types::AdminRule>>>,
         ingress: bool| {
            let mut out = Vec::new();
            for rule in rules.iter().flatten() {
                match admin_rules(ctx, &rule.value, ingress) {
                    Ok(rs) => out.extend(rs),
                    Err(why) => {
                        // Calico fails closed: a Deny or Pass rule it cannot convert
                        // becomes "deny all", an Allow rule is dropped.
                        let closed = matches!(rule.value.action.value.as_str(), "Deny" | "Pass");
                        diagnostics.push(Diagnostic::warning(
                            rule.span,
                            format!(
                                "{} {name:?}: Calico cannot convert this rule ({why}); {}",
                                r.kind.name(),
                                if closed {
                                    "like Calico, it is replaced by a rule denying all traffic"
                                } else {
                                    "like Calico, it is dropped"
                                }
                            ),
                        ));
                        if closed {
                            out.push(Rule {
                                action: Some(Action::Deny),
                                ..Rule::default()
                            });
                        }
                    }
                }
            }
            out
        };
    let ingress = convert(&spec.ingress, true);
    let egress = convert(&spec.egress, false);
    Policy {
        id: PolicyId {
            kind: if baseline {
                PolicyKind::KubernetesBaselineAdminNetworkPolicy
            } else {
                PolicyKind::KubernetesAdminNetworkPolicy
            },
            namespace: None,
            name,
        },
        tier: if baseline {
            KUBE_BASELINE_TIER
        } else {
            KUBE_ADMIN_TIER
        }
        .into(),
        order: Some(if baseline {
            1000.0
        } else {
            spec.priority.as_ref().map_or(0.0, |p| p.value as f64)
        }),
        selector,
        types: Types {
            ingress: !ingress.is_empty(),
            egress: !egress.is_empty(),
        },
        ingress,
        egress,
        staged: false,
        do_not_track: false,
        pre_dnat: false,
        apply_on_forward: false,
    }
}
