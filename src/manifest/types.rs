//! The manifests as written: serde mirrors of the API objects policylab reads.
//!
//! These are the *raw* representations: field names and shapes exactly as the API
//! server accepts them (the Calico CRD schemas in `src/schema/crds` and the
//! hand-written schemas beside them are the reference). Leaves that later checks must
//! point at are [`Spanned`]. Nothing here is validated beyond YAML types; see
//! [`super::validate`] for Calico's rules and `crate::resolve` for the meaning.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::diag::{Span, Spanned};

/// A string or an integer (Kubernetes `IntOrString`, Calico `numorstring`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

impl std::fmt::Display for IntOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::Str(s) => f.write_str(s),
        }
    }
}

pub type Labels = BTreeMap<String, String>;

/// Kubernetes ObjectMeta, the fields that matter (the schema accepts the rest).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: Option<Spanned<String>>,
    pub namespace: Option<Spanned<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, Spanned<String>>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    pub generate_name: Option<String>,
}

impl ObjectMeta {
    pub fn name(&self) -> &str {
        self.name.as_ref().map(|n| n.value.as_str()).unwrap_or("")
    }
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_ref().map(|n| n.value.as_str())
    }
    pub fn labels(&self) -> Labels {
        self.labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------
// projectcalico.org/v3 policy

/// `spec` of NetworkPolicy, GlobalNetworkPolicy and their staged variants. The
/// global-only and staged-only fields are options; validation rejects them on kinds
/// that do not have them (the schema does first).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    pub tier: Option<Spanned<String>>,
    pub order: Option<Spanned<f64>>,
    pub selector: Option<Spanned<String>>,
    pub namespace_selector: Option<Spanned<String>>,
    pub service_account_selector: Option<Spanned<String>>,
    pub types: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub ingress: Option<Vec<Spanned<Rule>>>,
    #[serde(default)]
    pub egress: Option<Vec<Spanned<Rule>>>,
    pub do_not_track: Option<Spanned<bool>>,
    #[serde(rename = "preDNAT")]
    pub pre_dnat: Option<Spanned<bool>>,
    pub apply_on_forward: Option<Spanned<bool>>,
    pub performance_hints: Option<Vec<String>>,
    pub staged_action: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub action: Spanned<String>,
    pub ip_version: Option<Spanned<i64>>,
    pub protocol: Option<Spanned<IntOrString>>,
    pub not_protocol: Option<Spanned<IntOrString>>,
    pub icmp: Option<Spanned<IcmpFields>>,
    #[serde(rename = "notICMP")]
    pub not_icmp: Option<Spanned<IcmpFields>>,
    pub source: Option<Spanned<EntityRule>>,
    pub destination: Option<Spanned<EntityRule>>,
    pub http: Option<Spanned<HttpMatch>>,
    pub metadata: Option<RuleMetadata>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuleMetadata {
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IcmpFields {
    #[serde(rename = "type")]
    pub icmp_type: Option<Spanned<i64>>,
    pub code: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpMatch {
    pub methods: Option<Vec<String>>,
    pub paths: Option<Vec<HttpPath>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpPath {
    pub exact: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityRule {
    pub nets: Option<Vec<Spanned<String>>>,
    pub not_nets: Option<Vec<Spanned<String>>>,
    pub selector: Option<Spanned<String>>,
    pub not_selector: Option<Spanned<String>>,
    pub namespace_selector: Option<Spanned<String>>,
    pub ports: Option<Vec<Spanned<IntOrString>>>,
    pub not_ports: Option<Vec<Spanned<IntOrString>>>,
    pub service_accounts: Option<Spanned<ServiceAccountMatch>>,
    pub services: Option<Spanned<ServiceMatch>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceAccountMatch {
    pub names: Option<Vec<Spanned<String>>>,
    pub selector: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceMatch {
    pub name: Option<Spanned<String>>,
    pub namespace: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TierSpec {
    pub order: Option<Spanned<f64>>,
    pub default_action: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkSetSpec {
    pub nets: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEndpointSpec {
    pub node: Option<Spanned<String>>,
    pub interface_name: Option<Spanned<String>>,
    #[serde(rename = "expectedIPs")]
    pub expected_ips: Option<Vec<Spanned<String>>>,
    pub profiles: Option<Vec<Spanned<String>>>,
    pub ports: Option<Vec<Spanned<EndpointPort>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndpointPort {
    pub name: Spanned<String>,
    pub protocol: Spanned<IntOrString>,
    pub port: Spanned<i64>,
}

// ---------------------------------------------------------------------------------
// GlobalThreatFeed (Calico Enterprise / Cloud)

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreatFeedSpec {
    pub content: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub feed_type: Option<Spanned<String>>,
    pub global_network_set: Option<Spanned<FeedNetworkSet>>,
    pub pull: Option<Spanned<FeedPull>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FeedNetworkSet {
    pub labels: Option<BTreeMap<String, Spanned<String>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FeedPull {
    pub period: Option<Spanned<String>>,
    pub http: Option<Spanned<FeedHttp>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FeedHttp {
    pub url: Option<Spanned<String>>,
    pub format: Option<Spanned<FeedFormat>>,
    pub headers: Option<Vec<Spanned<FeedHeader>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedFormat {
    pub newline_delimited: Option<serde_json::Value>,
    pub json: Option<FeedJson>,
    pub csv: Option<FeedCsv>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FeedJson {
    pub path: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedCsv {
    pub field_num: Option<Spanned<i64>>,
    pub field_name: Option<Spanned<String>>,
    pub header: Option<bool>,
    pub column_delimiter: Option<Spanned<String>>,
    pub comment_delimiter: Option<Spanned<String>>,
    pub record_size: Option<i64>,
    pub disable_record_size_validation: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedHeader {
    pub name: Spanned<String>,
    pub value: Option<String>,
    pub value_from: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------
// FelixConfiguration

/// The fields policylab gives meaning to (docs/semantics.md#felix-configuration);
/// `fields` holds every top-level key as written, for the "no effect" notes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FelixConfigurationSpec {
    pub default_endpoint_to_host_action: Option<Spanned<String>>,
    pub failsafe_inbound_host_ports: Option<Vec<Spanned<ProtoPort>>>,
    pub failsafe_outbound_host_ports: Option<Vec<Spanned<ProtoPort>>>,
    pub log_prefix: Option<Spanned<String>>,
    pub node_selector: Option<Spanned<String>>,
    pub nat_outgoing_address: Option<Spanned<String>>,
    pub device_route_source_address: Option<Spanned<String>>,
    #[serde(rename = "deviceRouteSourceAddressIPv6")]
    pub device_route_source_address_ipv6: Option<Spanned<String>>,
    pub route_table_range: Option<Spanned<RouteTableRange>>,
    pub route_table_ranges: Option<Vec<Spanned<RouteTableRange>>>,
    /// Fields whose other values would change a probe and are not modelled
    /// (decision `felix-configuration`).
    pub iptables_filter_deny_action: Option<Spanned<String>>,
    pub nftables_filter_deny_action: Option<Spanned<String>>,
    pub interface_prefix: Option<Spanned<String>>,
    pub ip_forwarding: Option<Spanned<String>>,
    #[serde(rename = "ipv6Support")]
    pub ipv6_support: Option<Spanned<bool>>,
    pub disable_conntrack_invalid_check: Option<Spanned<bool>>,
    pub log_action_rate_limit: Option<Spanned<String>>,
    #[serde(rename = "bpfEnabled")]
    pub bpf_enabled: Option<Spanned<bool>>,
    /// Every key of `spec` as written (filled from the document, not by serde).
    #[serde(skip)]
    pub fields: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RouteTableRange {
    pub min: i64,
    pub max: i64,
}

/// One failsafe entry (`ProtoPort`): protocol defaults to tcp, no net means any.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProtoPort {
    pub protocol: Option<Spanned<String>>,
    pub port: Spanned<i64>,
    pub net: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------------
// Kubernetes kinds

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    pub match_labels: Option<BTreeMap<String, Spanned<String>>>,
    pub match_expressions: Option<Vec<Spanned<LabelSelectorRequirement>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LabelSelectorRequirement {
    pub key: Spanned<String>,
    pub operator: Spanned<String>,
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct K8sNetworkPolicySpec {
    /// Only in StagedKubernetesNetworkPolicy (its schema; the k8s one rejects it).
    pub staged_action: Option<Spanned<String>>,
    pub pod_selector: Option<LabelSelector>,
    pub policy_types: Option<Vec<Spanned<String>>>,
    pub ingress: Option<Vec<Spanned<K8sIngressRule>>>,
    pub egress: Option<Vec<Spanned<K8sEgressRule>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct K8sIngressRule {
    pub from: Option<Vec<Spanned<K8sPeer>>>,
    pub ports: Option<Vec<Spanned<K8sPort>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct K8sEgressRule {
    pub to: Option<Vec<Spanned<K8sPeer>>>,
    pub ports: Option<Vec<Spanned<K8sPort>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct K8sPeer {
    pub pod_selector: Option<LabelSelector>,
    pub namespace_selector: Option<LabelSelector>,
    pub ip_block: Option<Spanned<IpBlock>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpBlock {
    pub cidr: Spanned<String>,
    pub except: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct K8sPort {
    pub protocol: Option<Spanned<String>>,
    pub port: Option<Spanned<IntOrString>>,
    pub end_port: Option<Spanned<i64>>,
}

// ---------------------------------------------------------------------------------
// policy.networking.k8s.io/v1alpha1 AdminNetworkPolicy / BaselineAdminNetworkPolicy

/// The spec of an AdminNetworkPolicy or a BaselineAdminNetworkPolicy (which has no
/// priority and only Allow/Deny; the schemas tell them apart).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminPolicySpec {
    pub priority: Option<Spanned<i64>>,
    pub subject: Option<Spanned<AdminPeer>>,
    pub ingress: Option<Vec<Spanned<AdminRule>>>,
    pub egress: Option<Vec<Spanned<AdminRule>>>,
}

/// An ingress rule (`from`) or an egress rule (`to`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdminRule {
    pub name: Option<String>,
    pub action: Spanned<String>,
    pub ports: Option<Vec<Spanned<AdminPort>>>,
    pub from: Option<Vec<Spanned<AdminPeer>>>,
    pub to: Option<Vec<Spanned<AdminPeer>>>,
}

/// A subject or a peer: exactly one field is set.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdminPeer {
    pub namespaces: Option<LabelSelector>,
    pub pods: Option<AdminPods>,
    pub networks: Option<Vec<Spanned<String>>>,
    pub nodes: Option<Spanned<LabelSelector>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminPods {
    #[serde(default)]
    pub namespace_selector: LabelSelector,
    #[serde(default)]
    pub pod_selector: LabelSelector,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminPort {
    pub port_number: Option<AdminPortNumber>,
    pub port_range: Option<Spanned<AdminPortRange>>,
    pub named_port: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdminPortNumber {
    pub protocol: Option<Spanned<String>>,
    pub port: Spanned<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdminPortRange {
    pub protocol: Option<Spanned<String>>,
    pub start: Spanned<i64>,
    pub end: Spanned<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub containers: Vec<Container>,
    pub service_account_name: Option<Spanned<String>>,
    pub service_account: Option<Spanned<String>>,
    pub node_name: Option<Spanned<String>>,
    pub host_network: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Container {
    pub name: Option<String>,
    #[serde(default)]
    pub ports: Vec<Spanned<ContainerPort>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: Option<Spanned<String>>,
    pub container_port: Spanned<i64>,
    pub protocol: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(rename = "type")]
    pub service_type: Option<Spanned<String>>,
    pub selector: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub ports: Vec<Spanned<ServicePort>>,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<Spanned<String>>,
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: Option<Spanned<String>>,
    pub external_traffic_policy: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: Spanned<i64>,
    pub target_port: Option<Spanned<IntOrString>>,
    pub node_port: Option<Spanned<i64>>,
    pub protocol: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    pub replicas: Option<Spanned<i64>>,
    pub selector: Option<LabelSelector>,
    pub template: PodTemplate,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PodTemplate {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
}

// ---------------------------------------------------------------------------------
// The resource envelope

/// Every kind policylab reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Kind {
    NetworkPolicy,
    GlobalNetworkPolicy,
    StagedNetworkPolicy,
    StagedGlobalNetworkPolicy,
    /// projectcalico.org/v3 StagedKubernetesNetworkPolicy: a staged
    /// networking.k8s.io/v1 NetworkPolicy.
    StagedKubernetesNetworkPolicy,
    NetworkSet,
    GlobalNetworkSet,
    Tier,
    HostEndpoint,
    GlobalThreatFeed,
    /// projectcalico.org/v3 FelixConfiguration (`default`, `node.<name>`).
    FelixConfiguration,
    /// networking.k8s.io/v1 NetworkPolicy.
    K8sNetworkPolicy,
    /// policy.networking.k8s.io/v1alpha1.
    AdminNetworkPolicy,
    /// policy.networking.k8s.io/v1alpha1.
    BaselineAdminNetworkPolicy,
    Namespace,
    Pod,
    Service,
    ServiceAccount,
    Deployment,
}

impl Kind {
    /// The `(apiVersion, kind)` pairs accepted, in a stable order.
    pub const ALL: &'static [(&'static str, &'static str, Kind)] = &[
        ("projectcalico.org/v3", "NetworkPolicy", Kind::NetworkPolicy),
        (
            "projectcalico.org/v3",
            "GlobalNetworkPolicy",
            Kind::GlobalNetworkPolicy,
        ),
        (
            "projectcalico.org/v3",
            "StagedNetworkPolicy",
            Kind::StagedNetworkPolicy,
        ),
        (
            "projectcalico.org/v3",
            "StagedGlobalNetworkPolicy",
            Kind::StagedGlobalNetworkPolicy,
        ),
        (
            "projectcalico.org/v3",
            "StagedKubernetesNetworkPolicy",
            Kind::StagedKubernetesNetworkPolicy,
        ),
        ("projectcalico.org/v3", "NetworkSet", Kind::NetworkSet),
        (
            "projectcalico.org/v3",
            "GlobalNetworkSet",
            Kind::GlobalNetworkSet,
        ),
        ("projectcalico.org/v3", "Tier", Kind::Tier),
        ("projectcalico.org/v3", "HostEndpoint", Kind::HostEndpoint),
        (
            "projectcalico.org/v3",
            "GlobalThreatFeed",
            Kind::GlobalThreatFeed,
        ),
        (
            "projectcalico.org/v3",
            "FelixConfiguration",
            Kind::FelixConfiguration,
        ),
        (
            "networking.k8s.io/v1",
            "NetworkPolicy",
            Kind::K8sNetworkPolicy,
        ),
        (
            "policy.networking.k8s.io/v1alpha1",
            "AdminNetworkPolicy",
            Kind::AdminNetworkPolicy,
        ),
        (
            "policy.networking.k8s.io/v1alpha1",
            "BaselineAdminNetworkPolicy",
            Kind::BaselineAdminNetworkPolicy,
        ),
        ("v1", "Namespace", Kind::Namespace),
        ("v1", "Pod", Kind::Pod),
        ("v1", "Service", Kind::Service),
        ("v1", "ServiceAccount", Kind::ServiceAccount),
        ("apps/v1", "Deployment", Kind::Deployment),
    ];

    pub fn from_api(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL
            .iter()
            .find(|(a, k, _)| *a == api_version && *k == kind)
            .map(|(_, _, k)| *k)
    }

    pub fn api_version(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(_, _, k)| *k == self)
            .map(|(a, _, _)| *a)
            .unwrap_or("")
    }

    /// The `kind:` string as written in manifests.
    pub fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(_, _, k)| *k == self)
            .map(|(_, n, _)| *n)
            .unwrap_or("")
    }

    pub fn is_namespaced(self) -> bool {
        matches!(
            self,
            Kind::NetworkPolicy
                | Kind::StagedNetworkPolicy
                | Kind::StagedKubernetesNetworkPolicy
                | Kind::NetworkSet
                | Kind::K8sNetworkPolicy
                | Kind::Pod
                | Kind::Service
                | Kind::ServiceAccount
                | Kind::Deployment
        )
    }

    /// The name used in `delete:` references (`Kind/name`, `Kind/ns/name`).
    /// `networking.k8s.io/v1` NetworkPolicy is `KubernetesNetworkPolicy` there.
    pub fn ref_name(self) -> &'static str {
        match self {
            Kind::K8sNetworkPolicy => "KubernetesNetworkPolicy",
            k => k.name(),
        }
    }
}

/// One API object, as read.
#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: Kind,
    /// Where the document starts (its first key).
    pub span: Span,
    pub metadata: ObjectMeta,
    pub body: Body,
}

// Resources are few and never on a hot path; boxing would only make matching noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Body {
    Policy(PolicySpec),
    Tier(TierSpec),
    NetworkSet(NetworkSetSpec),
    HostEndpoint(HostEndpointSpec),
    ThreatFeed(ThreatFeedSpec),
    FelixConfiguration(FelixConfigurationSpec),
    K8sNetworkPolicy(K8sNetworkPolicySpec),
    AdminPolicy(AdminPolicySpec),
    Namespace,
    ServiceAccount,
    Pod(PodSpec),
    Service(ServiceSpec),
    Deployment(DeploymentSpec),
}

/// Identity of a resource: kind, namespace (for namespaced kinds), name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ResourceKey {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind.ref_name(), ns, self.name),
            None => write!(f, "{}/{}", self.kind.ref_name(), self.name),
        }
    }
}

impl Resource {
    /// The key; namespaced kinds without `metadata.namespace` live in `default`.
    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            kind: self.kind,
            namespace: self
                .kind
                .is_namespaced()
                .then(|| self.metadata.namespace().unwrap_or("default").to_string()),
            name: self.metadata.name().to_string(),
        }
    }
}
