//! This module deals with meaning: it turns an [`Inventory`] (raw resources as written)
//! into a [`World`] (what Calico's calculation graph would derive from them).
//!
//! Input: a validated [`Inventory`]. Output: a [`World`] holding
//! - workload endpoints (pods, with the labels and profiles Calico adds, docs/semantics.md#endpoint-labels) and
//!   host endpoints, each with its applicable policies precomputed per stage class and
//!   direction;
//! - network sets (only feeding rule selectors, docs/semantics.md#network-sets);
//! - tiers sorted as Felix sorts them, each with its policies sorted
//!   (docs/semantics.md#ordering), types defaulted (docs/semantics.md#policy-types),
//!   selectors rewritten (docs/semantics.md#policies) and rules converted with entity
//!   selectors rewritten (docs/semantics.md#rule-selectors); Kubernetes
//!   NetworkPolicies converted (docs/semantics.md#kubernetes-networkpolicy);
//! - profiles `kns.<ns>` / `ksa.<ns>.<sa>` (and the static `projectcalico-default-allow`);
//! - services with their endpoints;
//! - every distinct rule selector interned once with its member addresses.
//!
//! Guarantees: pure and deterministic (sorted `Vec`s and `BTreeMap`s only); never panics
//! on validated input. The only user-facing problem it reports is a policy naming a
//! tier that does not exist (see [`World::diagnostics`]).

mod convert;
mod felix;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::diag::Diagnostic;
use crate::inventory::Inventory;
use crate::selector::{Expr, Layered, Selector};

pub use convert::parse_protocol;
pub use felix::{
    EndpointToHostAction, Failsafe, FelixConfig, DEFAULT_LOG_PREFIX, FAILSAFE_INBOUND,
    FAILSAFE_OUTBOUND,
};

/// Label every namespaced Calico entity carries.
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";
pub const LABEL_SERVICE_ACCOUNT: &str = "projectcalico.org/serviceaccount";
pub const LABEL_NAME: &str = "projectcalico.org/name";
/// The label the API server puts on every Namespace (decision `namespace-name-label`).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The static allow-all profile auto host endpoints carry.
pub const DEFAULT_ALLOW_PROFILE: &str = "projectcalico-default-allow";
/// Order of the implicit `default` tier (docs/semantics.md#tiers).
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;
/// Order of the built-in `kube-admin` tier (AdminNetworkPolicy).
pub const KUBE_ADMIN_TIER_ORDER: f64 = 1_000.0;
/// Order of the built-in `kube-baseline` tier (BaselineAdminNetworkPolicy).
pub const KUBE_BASELINE_TIER_ORDER: f64 = 10_000_000.0;

/// The tiers Calico creates itself (decision `builtin-tiers`): name, order, default
/// action. They exist without being declared; a declared one replaces its defaults
/// (the Tier CRD's CEL rules fix the same values).
pub const BUILTIN_TIERS: &[(&str, f64, TierAction)] = &[
    ("default", DEFAULT_TIER_ORDER, TierAction::Deny),
    ("kube-admin", KUBE_ADMIN_TIER_ORDER, TierAction::Pass),
    ("kube-baseline", KUBE_BASELINE_TIER_ORDER, TierAction::Pass),
];
/// The tier Calico enforces AdminNetworkPolicy in (decision `admin-network-policy`).
pub const KUBE_ADMIN_TIER: &str = "kube-admin";
/// The tier Calico enforces BaselineAdminNetworkPolicy in.
pub const KUBE_BASELINE_TIER: &str = "kube-baseline";

/// Everything the evaluator needs, derived once from an inventory.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub nodes: Vec<Node>,
    /// Workload endpoints sorted by (namespace, name), then host endpoints by name.
    pub endpoints: Vec<Endpoint>,
    /// NetworkSets (sorted by namespace, name) then GlobalNetworkSets (by name).
    pub network_sets: Vec<NetworkSet>,
    /// Sorted as Felix sorts them (docs/semantics.md#ordering); policies inside sorted too.
    pub tiers: Vec<Tier>,
    /// Sorted by name; see [`World::profile`].
    pub profiles: Vec<Profile>,
    /// Sorted by (namespace, name).
    pub services: Vec<Service>,
    /// Every distinct rule selector (by canonical text), with its members.
    pub selector_sets: Vec<SelectorSet>,
    /// Problems found while resolving (missing tiers, decision `missing-tier`).
    pub diagnostics: Vec<Diagnostic>,
    /// Sorted notes for the report: FelixConfiguration fields without effect in
    /// the lab (decision `felix-configuration`).
    pub notes: Vec<String>,
    /// The world as it would be with the staged policies enforced (decision
    /// `staged-preview`); `None` when no staged policy would change anything.
    pub staged_preview: Option<std::sync::Arc<World>>,
    /// Who owns each known IPv4 address, sorted (for O(log n) lookups).
    pub ip_index_v4: Vec<(u32, IpOwner)>,
    /// Who owns each known IPv6 address, sorted.
    pub ip_index_v6: Vec<(u128, IpOwner)>,
}

/// The owners of one address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpOwner {
    pub workload: Option<usize>,
    pub host_endpoint: Option<usize>,
    pub node: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub ip: IpAddr,
    pub ipv6: Option<IpAddr>,
    pub interfaces: Vec<String>,
    /// The host endpoint that covers eth0 (the uplink), see [`World::hep_for`].
    pub eth0_hep: Option<usize>,
    /// The node's pod ranges (its /24 and /64, or the IPAM blocks its pods are in):
    /// the node blackholes the addresses in them that no pod holds (decision
    /// `unroutable-address`).
    pub pod_ranges: Vec<ipnet::IpNet>,
    /// Its Felix's configuration (decision `felix-configuration`).
    pub felix: FelixConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndpointKind {
    Workload,
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    pub name: String,
    /// IP protocol number (6 tcp, 17 udp, 132 sctp).
    pub protocol: u8,
    pub port: u16,
}

/// A workload (pod) or host endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub kind: EndpointKind,
    pub name: String,
    /// Pod namespace; `None` for host endpoints.
    pub namespace: Option<String>,
    pub node: String,
    /// Index of `node` in [`World::nodes`], when the node exists.
    pub node_index: Option<usize>,
    /// Pod IPs, or a HEP's `expectedIPs`.
    pub ips: Vec<IpAddr>,
    /// Own labels, plus those Calico adds (docs/semantics.md#endpoint-labels).
    pub labels: BTreeMap<String, String>,
    /// `labelsToApply` of the parent profiles, in profile order (own labels win).
    pub inherited: Vec<BTreeMap<String, String>>,
    pub profiles: Vec<String>,
    /// `profiles` resolved to indexes into [`World::profiles`] (missing ones left out).
    pub profile_refs: Vec<usize>,
    pub named_ports: Vec<NamedPort>,
    /// HEP only: the interface (`"*"` for all, `None` when bound by expectedIPs).
    pub interface: Option<String>,
    /// Applicable policies per stage class and direction.
    pub plans: Plans,
    /// Bitset over [`World::selector_sets`]: the sets this endpoint's labels match.
    pub member_of: Vec<u64>,
}

impl Endpoint {
    /// `ns/name` for workloads, the name for host endpoints.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Runs `f` with the endpoint's layered labels (own first, then profiles).
    pub fn with_labels<R>(&self, f: impl FnOnce(&Layered<'_>) -> R) -> R {
        with_layered(&self.labels, &self.inherited, f)
    }

    /// The endpoint's first address of the given family.
    pub fn ip_of_family(&self, v6: bool) -> Option<IpAddr> {
        self.ips.iter().copied().find(|ip| ip.is_ipv6() == v6)
    }

    /// Whether the endpoint's labels match rule selector set `set`.
    #[inline]
    pub fn in_set(&self, set: usize) -> bool {
        self.member_of
            .get(set / 64)
            .is_some_and(|w| w & (1u64 << (set % 64)) != 0)
    }
}

pub(crate) fn with_layered<R>(
    own: &BTreeMap<String, String>,
    inherited: &[BTreeMap<String, String>],
    f: impl FnOnce(&Layered<'_>) -> R,
) -> R {
    let refs: Vec<&dyn crate::selector::Labels> = inherited
        .iter()
        .map(|m| m as &dyn crate::selector::Labels)
        .collect();
    let layered = Layered {
        own,
        inherited: &refs,
    };
    f(&layered)
}

/// The classes of policy stages (docs/semantics.md#stages), each with its own tier lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageClass {
    /// Workload chains and HEP filter INPUT/OUTPUT.
    Normal,
    /// HEP raw table (doNotTrack).
    Untracked,
    /// HEP mangle PREROUTING (preDNAT), ingress only.
    PreDnat,
    /// HEP filter FORWARD (applyOnForward).
    Forward,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

/// The tiers that apply to one endpoint in one stage class and direction.
#[derive(Debug, Clone, Default)]
pub struct Plans {
    /// Indexed by `[class as usize][direction as usize]`.
    pub by_stage: [[Vec<TierPlan>; 2]; 4],
}

impl Plans {
    pub fn get(&self, class: StageClass, dir: Direction) -> &[TierPlan] {
        &self.by_stage[class as usize][dir as usize]
    }
}

/// One tier as it applies to one endpoint-direction: only tiers with at least one
/// applicable, non-staged policy governing the direction appear (docs/semantics.md#per-direction-evaluation).
#[derive(Debug, Clone)]
pub struct TierPlan {
    /// Index into [`World::tiers`].
    pub tier: usize,
    /// Indexes into that tier's `policies`, in order.
    pub policies: Vec<usize>,
    /// Whether the tier drops at its end (normal/forward with defaultAction Deny).
    pub end_drop: bool,
}

#[derive(Debug, Clone)]
pub struct NetworkSet {
    pub name: String,
    /// `None` for a GlobalNetworkSet.
    pub namespace: Option<String>,
    pub nets: Vec<IpNet>,
    pub labels: BTreeMap<String, String>,
    /// NetworkSet: the namespace's `pcns.*` labels (parent `kns.<ns>`).
    pub inherited: Vec<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierAction {
    Deny,
    Pass,
}

#[derive(Debug, Clone)]
pub struct Tier {
    pub name: String,
    pub order: Option<f64>,
    pub default_action: TierAction,
    /// False when policies refer to it but no Tier object exists (decision `missing-tier`).
    pub valid: bool,
    pub policies: Vec<Policy>,
}

/// The kinds of policy, named as Felix 3.32 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyKind {
    NetworkPolicy,
    GlobalNetworkPolicy,
    StagedNetworkPolicy,
    StagedGlobalNetworkPolicy,
    StagedKubernetesNetworkPolicy,
    KubernetesNetworkPolicy,
    /// policy.networking.k8s.io AdminNetworkPolicy (tier `kube-admin`).
    KubernetesAdminNetworkPolicy,
    /// policy.networking.k8s.io BaselineAdminNetworkPolicy (tier `kube-baseline`).
    KubernetesBaselineAdminNetworkPolicy,
}

impl PolicyKind {
    /// The `Kind` string of Felix's `PolicyKey` (used in the sort tie-break).
    pub fn key_name(self) -> &'static str {
        match self {
            PolicyKind::NetworkPolicy => "NetworkPolicy",
            PolicyKind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
            PolicyKind::StagedNetworkPolicy => "StagedNetworkPolicy",
            PolicyKind::StagedGlobalNetworkPolicy => "StagedGlobalNetworkPolicy",
            PolicyKind::StagedKubernetesNetworkPolicy => "StagedKubernetesNetworkPolicy",
            PolicyKind::KubernetesNetworkPolicy => "KubernetesNetworkPolicy",
            PolicyKind::KubernetesAdminNetworkPolicy => "KubernetesAdminNetworkPolicy",
            PolicyKind::KubernetesBaselineAdminNetworkPolicy => {
                "KubernetesBaselineAdminNetworkPolicy"
            }
        }
    }

    /// Short name used in chain names and flow logs (docs/semantics.md#chains,
    /// docs/semantics.md#flow-log-records).
    pub fn short(self) -> &'static str {
        match self {
            PolicyKind::NetworkPolicy => "np",
            PolicyKind::GlobalNetworkPolicy => "gnp",
            PolicyKind::StagedNetworkPolicy => "snp",
            PolicyKind::StagedGlobalNetworkPolicy => "sgnp",
            PolicyKind::StagedKubernetesNetworkPolicy => "sknp",
            PolicyKind::KubernetesNetworkPolicy => "knp",
            PolicyKind::KubernetesAdminNetworkPolicy => "kanp",
            PolicyKind::KubernetesBaselineAdminNetworkPolicy => "kbanp",
        }
    }

    pub fn is_staged(self) -> bool {
        matches!(
            self,
            PolicyKind::StagedNetworkPolicy
                | PolicyKind::StagedGlobalNetworkPolicy
                | PolicyKind::StagedKubernetesNetworkPolicy
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyId {
    pub kind: PolicyKind,
    /// `None` for global kinds.
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for PolicyId {
    /// `kindShort:ns/name` or `kindShort:name` (flow-log form, docs/semantics.md#flow-log-records).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}:{ns}/{}", self.kind.short(), self.name),
            None => write!(f, "{}:{}", self.kind.short(), self.name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Types {
    pub ingress: bool,
    pub egress: bool,
}

impl Types {
    pub fn governs(self, dir: Direction) -> bool {
        match dir {
            Direction::Ingress => self.ingress,
            Direction::Egress => self.egress,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub id: PolicyId,
    pub tier: String,
    pub order: Option<f64>,
    /// The backend selector (namespace clause, pcns/pcsa add-ons, all() rewrites).
    pub selector: Selector,
    pub types: Types,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    pub staged: bool,
    pub do_not_track: bool,
    pub pre_dnat: bool,
    pub apply_on_forward: bool,
}

impl Policy {
    pub fn rules(&self, dir: Direction) -> &[Rule] {
        match dir {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// `"<name>/<namespace>/<kind>"`, Felix's tie-break key (docs/semantics.md#ordering).
    pub fn sort_key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.id.name,
            self.id.namespace.as_deref().unwrap_or(""),
            self.id.kind.key_name()
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Allow,
    Deny,
    Log,
    Pass,
}

impl Action {
    pub fn lower(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Log => "log",
            Action::Pass => "pass",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpMatch {
    pub icmp_type: u8,
    pub code: Option<u8>,
}

pub use crate::manifest::values::PortSpec;

/// A Calico rule, converted: selectors interned, protocols numeric.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    /// Not rendered for IPv4 / IPv6 (docs/semantics.md#ip-families: ipVersion, nets/notNets filtering).
    pub absent_v4: bool,
    pub absent_v6: bool,
    pub action: Option<Action>,
    pub ip_version: Option<u8>,
    pub protocol: Option<u8>,
    pub not_protocol: Option<u8>,
    pub icmp: Option<IcmpMatch>,
    pub not_icmp: Option<IcmpMatch>,
    pub source: EntityMatch,
    pub destination: EntityMatch,
}

impl Rule {
    pub fn action(&self) -> Action {
        self.action.unwrap_or(Action::Allow)
    }
}

#[derive(Debug, Clone, Default)]
pub struct EntityMatch {
    pub nets: Vec<IpNet>,
    pub not_nets: Vec<IpNet>,
    /// Effective positive selector (docs/semantics.md#rule-selectors), index into [`World::selector_sets`].
    pub selector: Option<usize>,
    /// notSelector, never namespace-scoped.
    pub not_selector: Option<usize>,
    pub ports: Vec<PortSpec>,
    pub not_ports: Vec<PortSpec>,
    /// `services: {namespace, name}`.
    pub services: Option<(String, String)>,
}

/// One interned rule selector and the addresses in its IP set (docs/semantics.md#ip-sets).
#[derive(Debug, Clone)]
pub struct SelectorSet {
    pub selector: Selector,
    pub canonical: String,
    /// Sorted, deduplicated addresses of matching WEPs and HEP expectedIPs.
    pub hosts: Vec<IpAddr>,
    /// Sorted, deduplicated nets of matching network sets.
    pub nets: Vec<IpNet>,
    /// Endpoint indexes that match (for named ports and explanations).
    pub endpoints: Vec<usize>,
}

impl SelectorSet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.hosts.binary_search(&ip).is_ok() || self.contains_in_nets(ip)
    }

    /// Membership through network-set nets only (enough for an address no
    /// endpoint owns, since `hosts` holds only endpoint addresses).
    #[inline]
    pub fn contains_in_nets(&self, ip: IpAddr) -> bool {
        !self.nets.is_empty() && self.nets.iter().any(|n| n.contains(&ip))
    }
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    pub labels_to_apply: BTreeMap<String, String>,
}

impl Profile {
    pub fn rules(&self, dir: Direction) -> &[Rule] {
        match dir {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    ClusterIp,
    NodePort,
    LoadBalancer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    Named(String),
}

#[derive(Debug, Clone)]
pub struct ServicePort {
    pub name: Option<String>,
    pub protocol: u8,
    pub port: u16,
    pub target: TargetPort,
    pub node_port: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub service_type: ServiceType,
    pub cluster_ip: Option<IpAddr>,
    pub load_balancer_ip: Option<IpAddr>,
    /// `externalTrafficPolicy: Local`.
    pub local: bool,
    pub ports: Vec<ServicePort>,
    /// Endpoint indexes (pods matching the selector), sorted by (namespace, name).
    pub endpoints: Vec<usize>,
}

impl World {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The owners of an address, if any.
    pub fn owner(&self, ip: IpAddr) -> IpOwner {
        let found = match ip {
            IpAddr::V4(v4) => {
                let k = u32::from(v4);
                self.ip_index_v4
                    .binary_search_by(|(x, _)| x.cmp(&k))
                    .ok()
                    .map(|i| self.ip_index_v4[i].1)
            }
            IpAddr::V6(v6) => {
                let k = u128::from(v6);
                self.ip_index_v6
                    .binary_search_by(|(x, _)| x.cmp(&k))
                    .ok()
                    .map(|i| self.ip_index_v6[i].1)
            }
        };
        found.unwrap_or_default()
    }

    /// The node owning a host address, if any.
    pub fn node_by_ip(&self, ip: IpAddr) -> Option<usize> {
        self.owner(ip).node
    }

    /// The workload endpoint that owns an address, if any.
    pub fn workload_by_ip(&self, ip: IpAddr) -> Option<usize> {
        self.owner(ip).workload
    }

    /// The host endpoint covering `iface` on node `node`: an explicit interface name
    /// wins (lowest name), then for eth0 a HEP with no interface name whose
    /// expectedIPs hold the node's address, then a `*` HEP (docs/semantics.md#host-endpoints).
    pub fn hep_for(&self, node: usize, iface: &str) -> Option<usize> {
        let n = self.nodes.get(node)?;
        let on_node = || {
            self.endpoints
                .iter()
                .enumerate()
                .filter(move |(_, e)| e.kind == EndpointKind::Host && e.node == n.name)
        };
        if let Some((i, _)) = on_node().find(|(_, e)| e.interface.as_deref() == Some(iface)) {
            return Some(i);
        }
        if iface == "eth0" {
            if let Some((i, _)) = on_node().find(|(_, e)| {
                e.interface.is_none() && e.ips.iter().any(|ip| *ip == n.ip || Some(*ip) == n.ipv6)
            }) {
                return Some(i);
            }
        }
        on_node()
            .find(|(_, e)| e.interface.as_deref() == Some("*"))
            .map(|(i, _)| i)
    }

    /// A workload by `ns/name` or a HEP by name.
    pub fn endpoint_by_name(&self, name: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.display_name() == name)
    }

    /// A profile by name.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.profiles[i])
    }

    pub fn policy(&self, tier: usize, policy: usize) -> &Policy {
        &self.tiers[tier].policies[policy]
    }
}

/// Resolves an inventory into a world. Pure and deterministic.
impl World {
    /// The `logPrefix` of the Felix on node `node` (decision `felix-configuration`).
    pub fn log_prefix(&self, node: &str) -> &str {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map_or(DEFAULT_LOG_PREFIX, |n| n.felix.log_prefix.as_str())
    }
}

pub fn resolve(inv: &Inventory) -> World {
    let mut world = convert::build(inv, false);
    if convert::has_effective_staged(inv) {
        world.staged_preview = Some(std::sync::Arc::new(convert::build(inv, true)));
    }
    world
}

pub(crate) fn ns_has() -> Expr {
    Expr::Has(LABEL_NAMESPACE.to_string())
}

pub(crate) fn dedup_sorted<T: Ord + Clone>(v: &mut Vec<T>) {
    let set: BTreeSet<T> = v.drain(..).collect();
    v.extend(set);
}
