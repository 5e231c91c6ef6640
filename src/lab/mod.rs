//! This module deals with the lab plan: a pure description of the small cluster the
//! harness builds out of Linux network namespaces (a fabric router, nodes, pods, hosts
//! outside the cluster, load-balancer routes and the servers each of them runs).
//!
//! Nothing here does I/O. A [`LabPlan`] is made with [`LabPlan::builder`] (or read back
//! with serde and checked with [`LabPlan::validate`]); the harness turns it into
//! namespaces, veth pairs, addresses, routes and sockets.
//!
//! The topology the plan stands for (all of it inside namespaces the run creates):
//! - one fabric namespace routes between every node uplink and every outside host; it
//!   owns the gateway address [`GATEWAY_V4`] and, on each of its ports, the link-local
//!   gateway [`GATEWAY_V6`];
//! - each node has `eth0` (its uplink to the fabric, holding the node address as /32 and
//!   /128, and [`NODE_LINK_LOCAL_V6`]) plus the extra interfaces of
//!   [`NodePlan::interfaces`];
//! - each pod has `eth0` with its /32 (and /128) address; its peer in the node is the
//!   Calico-style host interface [`PodPlan::host_iface`], named like Calico names it
//!   (see [`calico_host_iface`]); the pod's default route goes via [`GATEWAY_V4`] (proxy
//!   ARP on the host interface) and [`GATEWAY_V6`];
//! - an outside host holds its addresses as /32 (/128) with its default route through
//!   the fabric;
//! - a load-balancer address is routed by the fabric to the node that serves it.
//!
//! Guarantees:
//! - A plan that passed [`LabPlan::validate`] (which [`LabPlanBuilder::build`] runs) has
//!   unique names, unique addresses, known node references, valid interface names and no
//!   duplicate servers; every problem is reported at once, sorted.
//! - Plans are deterministic: nodes, pods, outside hosts, load balancers, servers,
//!   interfaces and pod CIDRs are kept sorted; the addresses of an outside host keep the
//!   order they were given in (the first of each family is the host's primary address).

mod from_states;

pub use from_states::{load_balancer_routes, plan_for_states, FromStatesError};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// The IPv4 gateway every pod, node and outside host routes through. Pods reach it by
/// proxy ARP on their node's host interface (as with Calico); nodes and outside hosts
/// reach the fabric, which owns it.
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// The IPv6 link-local gateway: the fabric holds it on every port and each node holds it
/// on every pod host interface.
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// The link-local address of every node's uplink `eth0`; the fabric routes IPv6 pod and
/// load-balancer addresses via it.
pub const NODE_LINK_LOCAL_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

/// The name of the uplink of nodes and outside hosts, and of the interface of every pod.
pub const UPLINK_IFACE: &str = "eth0";

/// The prefix of the host-side interface of a pod, as in Calico.
pub const HOST_IFACE_PREFIX: &str = "cali";

/// The longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFACE_NAME: usize = 15;

/// The longest run prefix a plan may have.
pub const MAX_PREFIX_LEN: usize = 20;

/// The protocol a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerProtocol {
    /// A TCP port served by a minimal HTTP/1.1 echo server (answers `200` naming the
    /// server and the client address it saw).
    Tcp,
    /// A UDP port that echoes every datagram.
    Udp,
    /// An SCTP port that accepts associations (when the kernel supports SCTP).
    Sctp,
}

impl fmt::Display for ServerProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerProtocol::Tcp => "tcp",
            ServerProtocol::Udp => "udp",
            ServerProtocol::Sctp => "sctp",
        })
    }
}

/// One server: a port and a protocol, served on every address of its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServerSpec {
    pub port: u16,
    pub protocol: ServerProtocol,
}

impl ServerSpec {
    pub fn new(port: u16, protocol: ServerProtocol) -> ServerSpec {
        ServerSpec { port, protocol }
    }

    pub fn tcp(port: u16) -> ServerSpec {
        ServerSpec::new(port, ServerProtocol::Tcp)
    }

    pub fn udp(port: u16) -> ServerSpec {
        ServerSpec::new(port, ServerProtocol::Udp)
    }

    pub fn sctp(port: u16) -> ServerSpec {
        ServerSpec::new(port, ServerProtocol::Sctp)
    }
}

impl fmt::Display for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// A node: a namespace with an uplink to the fabric, pods behind Calico-style host
/// interfaces, and host-networked servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    pub name: String,
    pub ipv4: Ipv4Addr,
    pub ipv6: Option<Ipv6Addr>,
    /// Interfaces besides `eth0` (sorted). Each is a veth whose peer sits, unaddressed,
    /// in the fabric, so that host endpoints can name it.
    pub interfaces: Vec<String>,
    /// Pod CIDRs the fabric routes to this node (sorted). Pods outside them get a host
    /// route in the fabric.
    pub pod_cidrs: Vec<IpNet>,
    /// Host-networked servers (sorted).
    pub servers: Vec<ServerSpec>,
}

impl NodePlan {
    pub fn new(name: impl Into<String>, ipv4: Ipv4Addr) -> NodePlan {
        NodePlan {
            name: name.into(),
            ipv4,
            ipv6: None,
            interfaces: Vec::new(),
            pod_cidrs: Vec::new(),
            servers: Vec::new(),
        }
    }

    pub fn with_ipv6(mut self, ipv6: Ipv6Addr) -> NodePlan {
        self.ipv6 = Some(ipv6);
        self
    }

    pub fn with_interface(mut self, name: impl Into<String>) -> NodePlan {
        self.interfaces.push(name.into());
        self
    }

    pub fn with_pod_cidr(mut self, cidr: IpNet) -> NodePlan {
        self.pod_cidrs.push(cidr.trunc());
        self
    }

    pub fn with_server(mut self, server: ServerSpec) -> NodePlan {
        self.servers.push(server);
        self
    }

    /// The node's addresses: IPv4 first.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut out = vec![IpAddr::V4(self.ipv4)];
        out.extend(self.ipv6.map(IpAddr::V6));
        out
    }
}

/// A pod: a namespace with `eth0`, whose peer is a Calico-style host interface in its
/// node's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodPlan {
    /// The Kubernetes namespace.
    pub namespace: String,
    pub name: String,
    /// The node it runs on.
    pub node: String,
    pub ipv4: Ipv4Addr,
    pub ipv6: Option<Ipv6Addr>,
    /// The host-side interface in the node, `cali` + 11 hex characters
    /// ([`calico_host_iface`] of namespace and name).
    pub host_iface: String,
    /// Servers (sorted).
    pub servers: Vec<ServerSpec>,
}

impl PodPlan {
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        node: impl Into<String>,
        ipv4: Ipv4Addr,
    ) -> PodPlan {
        let namespace = namespace.into();
        let name = name.into();
        let host_iface = calico_host_iface(&namespace, &name);
        PodPlan {
            namespace,
            name,
            node: node.into(),
            ipv4,
            ipv6: None,
            host_iface,
            servers: Vec::new(),
        }
    }

    pub fn with_ipv6(mut self, ipv6: Ipv6Addr) -> PodPlan {
        self.ipv6 = Some(ipv6);
        self
    }

    pub fn with_server(mut self, server: ServerSpec) -> PodPlan {
        self.servers.push(server);
        self
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The pod's addresses: IPv4 first.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut out = vec![IpAddr::V4(self.ipv4)];
        out.extend(self.ipv6.map(IpAddr::V6));
        out
    }
}

/// A host outside the cluster, reached through the fabric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideHostPlan {
    pub name: String,
    /// Its addresses, held as /32 or /128, in the order given: the first of each family
    /// is the source address the kernel picks.
    pub addresses: Vec<IpAddr>,
    /// Servers (sorted).
    pub servers: Vec<ServerSpec>,
}

impl OutsideHostPlan {
    pub fn new(name: impl Into<String>, address: IpAddr) -> OutsideHostPlan {
        OutsideHostPlan {
            name: name.into(),
            addresses: vec![address],
            servers: Vec::new(),
        }
    }

    pub fn with_address(mut self, address: IpAddr) -> OutsideHostPlan {
        self.addresses.push(address);
        self
    }

    pub fn with_server(mut self, server: ServerSpec) -> OutsideHostPlan {
        self.servers.push(server);
        self
    }
}

/// A load-balancer address the fabric routes to a node (the node's nft rules decide what
/// happens to it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LoadBalancerPlan {
    pub address: IpAddr,
    pub node: String,
}

/// Something in the plan that owns an address and a namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Endpoint {
    Node { name: String },
    Pod { namespace: String, name: String },
    Outside { name: String },
}

impl Endpoint {
    pub fn node(name: impl Into<String>) -> Endpoint {
        Endpoint::Node { name: name.into() }
    }

    pub fn pod(namespace: impl Into<String>, name: impl Into<String>) -> Endpoint {
        Endpoint::Pod {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn outside(name: impl Into<String>) -> Endpoint {
        Endpoint::Outside { name: name.into() }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node { name } => write!(f, "node {name}"),
            Endpoint::Pod { namespace, name } => write!(f, "pod {namespace}/{name}"),
            Endpoint::Outside { name } => write!(f, "outside host {name}"),
        }
    }
}

/// The whole topology of one lab run. Build it with [`LabPlan::builder`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPlan {
    /// A short label for the run (`[a-z0-9-]`, at most [`MAX_PREFIX_LEN`] characters),
    /// used in namespace names so that `ip netns list` tells runs apart.
    pub prefix: String,
    /// Sorted by name.
    pub nodes: Vec<NodePlan>,
    /// Sorted by (namespace, name).
    pub pods: Vec<PodPlan>,
    /// Sorted by name.
    pub outside: Vec<OutsideHostPlan>,
    /// Sorted by address.
    pub load_balancers: Vec<LoadBalancerPlan>,
}

impl LabPlan {
    pub fn builder(prefix: impl Into<String>) -> LabPlanBuilder {
        LabPlanBuilder {
            plan: LabPlan {
                prefix: prefix.into(),
                nodes: Vec::new(),
                pods: Vec::new(),
                outside: Vec::new(),
                load_balancers: Vec::new(),
            },
        }
    }

    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodPlan> {
        self.pods
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
    }

    pub fn outside_host(&self, name: &str) -> Option<&OutsideHostPlan> {
        self.outside.iter().find(|o| o.name == name)
    }

    /// The pods of one node, in plan order.
    pub fn pods_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a PodPlan> + 'a {
        self.pods.iter().filter(move |p| p.node == node)
    }

    /// Whether any address of the plan is IPv6 (the harness then configures IPv6).
    pub fn has_ipv6(&self) -> bool {
        self.nodes.iter().any(|n| n.ipv6.is_some())
            || self.pods.iter().any(|p| p.ipv6.is_some())
            || self
                .outside
                .iter()
                .any(|o| o.addresses.iter().any(IpAddr::is_ipv6))
            || self.load_balancers.iter().any(|l| l.address.is_ipv6())
            || self
                .nodes
                .iter()
                .any(|n| n.pod_cidrs.iter().any(|c| matches!(c, IpNet::V6(_))))
    }

    /// Every endpoint address and its owner, sorted by address. Load-balancer addresses
    /// are not owned by an endpoint and are not listed.
    pub fn address_owners(&self) -> BTreeMap<IpAddr, Endpoint> {
        let mut out = BTreeMap::new();
        for n in &self.nodes {
            for a in n.addresses() {
                out.insert(a, Endpoint::node(&n.name));
            }
        }
        for p in &self.pods {
            for a in p.addresses() {
                out.insert(a, Endpoint::pod(&p.namespace, &p.name));
            }
        }
        for o in &self.outside {
            for a in &o.addresses {
                out.insert(*a, Endpoint::outside(&o.name));
            }
        }
        out
    }

    /// The servers of an endpoint, if it exists.
    pub fn servers_of(&self, endpoint: &Endpoint) -> Option<&[ServerSpec]> {
        match endpoint {
            Endpoint::Node { name } => self.node(name).map(|n| n.servers.as_slice()),
            Endpoint::Pod { namespace, name } => {
                self.pod(namespace, name).map(|p| p.servers.as_slice())
            }
            Endpoint::Outside { name } => self.outside_host(name).map(|o| o.servers.as_slice()),
        }
    }

    /// Puts every list in its canonical order (see the module guarantees).
    pub fn normalize(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        for n in &mut self.nodes {
            n.interfaces.sort();
            n.pod_cidrs.sort();
            n.servers.sort();
        }
        self.pods
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for p in &mut self.pods {
            p.servers.sort();
        }
        self.outside.sort_by(|a, b| a.name.cmp(&b.name));
        for o in &mut self.outside {
            o.servers.sort();
        }
        self.load_balancers.sort();
    }

    /// Checks the plan and reports every problem at once (sorted, without duplicates).
    pub fn validate(&self) -> Result<(), PlanError> {
        let mut problems = BTreeSet::new();
        let mut add = |p: PlanProblem| {
            problems.insert(p);
        };

        if self.prefix.is_empty()
            || self.prefix.len() > MAX_PREFIX_LEN
            || !self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            add(PlanProblem::BadPrefix(self.prefix.clone()));
        }

        // Names.
        let mut node_names = BTreeSet::new();
        for n in &self.nodes {
            check_name("node", &n.name, &mut add);
            if !node_names.insert(n.name.as_str()) {
                add(PlanProblem::DuplicateName(format!("node {}", n.name)));
            }
        }
        let mut pod_keys = BTreeSet::new();
        let mut host_ifaces: BTreeMap<&str, String> = BTreeMap::new();
        for p in &self.pods {
            check_name("pod namespace", &p.namespace, &mut add);
            check_name("pod", &p.name, &mut add);
            if !pod_keys.insert((p.namespace.as_str(), p.name.as_str())) {
                add(PlanProblem::DuplicateName(format!("pod {}", p.key())));
            }
            if !node_names.contains(p.node.as_str()) {
                add(PlanProblem::UnknownNode {
                    what: format!("pod {}", p.key()),
                    node: p.node.clone(),
                });
            }
            if let Some(reason) = iface_name_problem(&p.host_iface) {
                add(PlanProblem::BadInterface {
                    owner: format!("pod {}", p.key()),
                    name: p.host_iface.clone(),
                    reason,
                });
            } else if !p.host_iface.starts_with(HOST_IFACE_PREFIX) {
                add(PlanProblem::BadInterface {
                    owner: format!("pod {}", p.key()),
                    name: p.host_iface.clone(),
                    reason: "a pod's host interface must start with \"cali\"".into(),
                });
            }
            // Host interfaces share one name space per node; keep them unique plan-wide
            // so that a pod can move between nodes without a clash.
            if let Some(other) = host_ifaces.insert(&p.host_iface, p.key()) {
                add(PlanProblem::DuplicateInterface {
                    name: p.host_iface.clone(),
                    owners: format!("pods {} and {}", other, p.key()),
                });
            }
        }
        let mut outside_names = BTreeSet::new();
        for o in &self.outside {
            check_name("outside host", &o.name, &mut add);
            if !outside_names.insert(o.name.as_str()) {
                add(PlanProblem::DuplicateName(format!(
                    "outside host {}",
                    o.name
                )));
            }
            if o.addresses.is_empty() {
                add(PlanProblem::NoAddress(format!("outside host {}", o.name)));
            }
        }

        // Node interfaces.
        for n in &self.nodes {
            let mut seen = BTreeSet::new();
            for i in &n.interfaces {
                let owner = format!("node {}", n.name);
                if let Some(reason) = iface_name_problem(i) {
                    add(PlanProblem::BadInterface {
                        owner,
                        name: i.clone(),
                        reason,
                    });
                } else if i == UPLINK_IFACE || i == "lo" {
                    add(PlanProblem::BadInterface {
                        owner,
                        name: i.clone(),
                        reason: "is always present; list only extra interfaces".into(),
                    });
                } else if i.starts_with(HOST_IFACE_PREFIX) {
                    add(PlanProblem::BadInterface {
                        owner,
                        name: i.clone(),
                        reason: "\"cali\" names are reserved for pod host interfaces".into(),
                    });
                } else if !seen.insert(i.as_str()) {
                    add(PlanProblem::DuplicateInterface {
                        name: i.clone(),
                        owners: owner,
                    });
                }
            }
        }

        // Addresses: unique across the plan and usable.
        let mut owners: BTreeMap<IpAddr, String> = BTreeMap::new();
        let mut claim = |addr: IpAddr, owner: String, add: &mut dyn FnMut(PlanProblem)| {
            if let Some(reason) = address_problem(addr) {
                add(PlanProblem::BadAddress {
                    owner: owner.clone(),
                    address: addr,
                    reason,
                });
            }
            if let Some(prev) = owners.get(&addr) {
                add(PlanProblem::DuplicateAddress {
                    address: addr,
                    owners: format!("{prev} and {owner}"),
                });
            } else {
                owners.insert(addr, owner);
            }
        };
        for n in &self.nodes {
            for a in n.addresses() {
                claim(a, format!("node {}", n.name), &mut add);
            }
        }
        for p in &self.pods {
            for a in p.addresses() {
                claim(a, format!("pod {}", p.key()), &mut add);
            }
        }
        for o in &self.outside {
            for a in &o.addresses {
                claim(*a, format!("outside host {}", o.name), &mut add);
            }
        }
        for l in &self.load_balancers {
            claim(l.address, format!("load balancer {}", l.address), &mut add);
            if !node_names.contains(l.node.as_str()) {
                add(PlanProblem::UnknownNode {
                    what: format!("load balancer {}", l.address),
                    node: l.node.clone(),
                });
            }
        }

        // Pod CIDRs: disjoint between nodes, and no pod inside another node's CIDR.
        let mut cidrs: Vec<(&IpNet, &str)> = Vec::new();
        for n in &self.nodes {
            for c in &n.pod_cidrs {
                for (other, owner) in &cidrs {
                    if other.contains(c) || c.contains(*other) {
                        add(PlanProblem::OverlappingPodCidr {
                            cidr: *c,
                            other: **other,
                            nodes: format!("{owner} and {}", n.name),
                        });
                    }
                }
                cidrs.push((c, &n.name));
            }
        }
        for p in &self.pods {
            for a in p.addresses() {
                for (c, owner) in &cidrs {
                    if *owner != p.node && c.contains(&a) {
                        add(PlanProblem::PodInForeignCidr {
                            pod: p.key(),
                            address: a,
                            cidr: **c,
                            node: owner.to_string(),
                        });
                    }
                }
            }
        }

        // Servers.
        let endpoints = self
            .nodes
            .iter()
            .map(|n| (format!("node {}", n.name), &n.servers))
            .chain(
                self.pods
                    .iter()
                    .map(|p| (format!("pod {}", p.key()), &p.servers)),
            )
            .chain(
                self.outside
                    .iter()
                    .map(|o| (format!("outside host {}", o.name), &o.servers)),
            );
        for (owner, servers) in endpoints {
            let mut seen = BTreeSet::new();
            for s in servers {
                if s.port == 0 {
                    add(PlanProblem::BadServer {
                        owner: owner.clone(),
                        server: *s,
                        reason: "port 0 cannot be served".into(),
                    });
                } else if !seen.insert(*s) {
                    add(PlanProblem::BadServer {
                        owner: owner.clone(),
                        server: *s,
                        reason: "listed twice".into(),
                    });
                }
            }
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(PlanError {
                problems: problems.into_iter().collect(),
            })
        }
    }
}

/// Collects the parts of a [`LabPlan`]; [`LabPlanBuilder::build`] sorts and validates.
#[derive(Debug, Clone)]
pub struct LabPlanBuilder {
    plan: LabPlan,
}

impl LabPlanBuilder {
    pub fn node(mut self, node: NodePlan) -> LabPlanBuilder {
        self.plan.nodes.push(node);
        self
    }

    pub fn pod(mut self, pod: PodPlan) -> LabPlanBuilder {
        self.plan.pods.push(pod);
        self
    }

    pub fn outside(mut self, host: OutsideHostPlan) -> LabPlanBuilder {
        self.plan.outside.push(host);
        self
    }

    pub fn load_balancer(mut self, address: IpAddr, node: impl Into<String>) -> LabPlanBuilder {
        self.plan.load_balancers.push(LoadBalancerPlan {
            address,
            node: node.into(),
        });
        self
    }

    /// Sorts every list and validates the plan.
    pub fn build(self) -> Result<LabPlan, PlanError> {
        let mut plan = self.plan;
        plan.normalize();
        plan.validate()?;
        Ok(plan)
    }
}

/// The name Calico gives the host side of a pod's veth: `cali` followed by the first 11
/// hex characters of the SHA-1 of `namespace.name` (Calico's `VethNameForWorkload`).
pub fn calico_host_iface(namespace: &str, name: &str) -> String {
    let digest = Sha1::digest(format!("{namespace}.{name}").as_bytes());
    let mut hex = String::with_capacity(40);
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("{HOST_IFACE_PREFIX}{}", &hex[..11])
}

/// One problem in a plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PlanProblem {
    BadPrefix(String),
    BadName {
        what: &'static str,
        name: String,
    },
    DuplicateName(String),
    UnknownNode {
        what: String,
        node: String,
    },
    NoAddress(String),
    BadAddress {
        owner: String,
        address: IpAddr,
        reason: String,
    },
    DuplicateAddress {
        address: IpAddr,
        owners: String,
    },
    BadInterface {
        owner: String,
        name: String,
        reason: String,
    },
    DuplicateInterface {
        name: String,
        owners: String,
    },
    OverlappingPodCidr {
        cidr: IpNet,
        other: IpNet,
        nodes: String,
    },
    PodInForeignCidr {
        pod: String,
        address: IpAddr,
        cidr: IpNet,
        node: String,
    },
    BadServer {
        owner: String,
        server: ServerSpec,
        reason: String,
    },
}

impl fmt::Display for PlanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanProblem::BadPrefix(p) => write!(
                f,
                "run prefix {p:?} must be 1 to {MAX_PREFIX_LEN} characters of [a-z0-9-]"
            ),
            PlanProblem::BadName { what, name } => write!(
                f,
                "{what} name {name:?} must be 1 to 253 characters without '/', whitespace or control characters"
            ),
            PlanProblem::DuplicateName(what) => write!(f, "{what} is defined twice"),
            PlanProblem::UnknownNode { what, node } => {
                write!(f, "{what} names node {node:?}, which the plan does not have")
            }
            PlanProblem::NoAddress(what) => write!(f, "{what} has no address"),
            PlanProblem::BadAddress {
                owner,
                address,
                reason,
            } => write!(f, "{owner}: address {address} {reason}"),
            PlanProblem::DuplicateAddress { address, owners } => {
                write!(f, "address {address} is used by both {owners}")
            }
            PlanProblem::BadInterface {
                owner,
                name,
                reason,
            } => write!(f, "{owner}: interface {name:?} {reason}"),
            PlanProblem::DuplicateInterface { name, owners } => {
                write!(f, "interface {name:?} is used twice ({owners})")
            }
            PlanProblem::OverlappingPodCidr { cidr, other, nodes } => {
                write!(f, "pod CIDRs {other} and {cidr} overlap (nodes {nodes})")
            }
            PlanProblem::PodInForeignCidr {
                pod,
                address,
                cidr,
                node,
            } => write!(
                f,
                "pod {pod}: address {address} lies in pod CIDR {cidr} of node {node}, not of its own node"
            ),
            PlanProblem::BadServer {
                owner,
                server,
                reason,
            } => write!(f, "{owner}: server {server} {reason}"),
        }
    }
}

/// Every problem of an invalid plan, sorted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lab plan:{}", render_problems(.problems))]
pub struct PlanError {
    pub problems: Vec<PlanProblem>,
}

fn render_problems(problems: &[PlanProblem]) -> String {
    problems.iter().map(|p| format!("\n- {p}")).collect()
}

fn check_name(what: &'static str, name: &str, add: &mut dyn FnMut(PlanProblem)) {
    let bad = name.is_empty()
        || name.len() > 253
        || name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control());
    if bad {
        add(PlanProblem::BadName {
            what,
            name: name.to_string(),
        });
    }
}

/// Why Linux would refuse `name` as an interface name, if it would.
fn iface_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > MAX_IFACE_NAME {
        return Some(format!("is longer than {MAX_IFACE_NAME} bytes"));
    }
    if name == "." || name == ".." {
        return Some("is not a valid interface name".into());
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Some("contains '/', ':' or whitespace".into());
    }
    None
}

/// Why an address cannot belong to a lab endpoint, if it cannot.
fn address_problem(addr: IpAddr) -> Option<String> {
    match addr {
        IpAddr::V4(a) => {
            if a == GATEWAY_V4 {
                Some("is the lab's gateway address".into())
            } else if a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast()
            {
                Some("is not a unicast address".into())
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
                Some("is not a unicast address".into())
            } else if (a.segments()[0] & 0xffc0) == 0xfe80 {
                Some("is link-local; the lab uses link-local addresses itself".into())
            } else if a.to_ipv4_mapped().is_some() {
                Some("is IPv4-mapped; give the IPv4 address instead".into())
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    fn small() -> LabPlanBuilder {
        LabPlan::builder("t")
            .node(NodePlan::new("node-2", v4("172.18.0.12")))
            .node(NodePlan::new("node-1", v4("172.18.0.11")).with_interface("eth1"))
            .pod(
                PodPlan::new("default", "b", "node-1", v4("10.244.1.3"))
                    .with_server(ServerSpec::tcp(80)),
            )
            .pod(PodPlan::new("default", "a", "node-2", v4("10.244.2.2")))
            .outside(OutsideHostPlan::new(
                "laptop",
                "198.51.100.7".parse().expect("addr"),
            ))
    }

    #[test]
    fn calico_name_matches_calico() {
        // `printf default.nginx | sha1sum` = c440f455693b69cdd48a37aa5ecd78038f50413d
        let name = calico_host_iface("default", "nginx");
        assert_eq!(name, "calic440f455693");
        assert_ne!(name, calico_host_iface("default", "nginx2"));
    }

    #[test]
    fn builder_sorts() {
        let plan = small().build().expect("valid");
        let names: Vec<_> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node-1", "node-2"]);
        let pods: Vec<_> = plan.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(pods, ["a", "b"]);
        assert_eq!(plan.pods_on("node-1").count(), 1);
        assert!(!plan.has_ipv6());
        let owners = plan.address_owners();
        assert_eq!(
            owners.get(&"10.244.1.3".parse::<IpAddr>().expect("addr")),
            Some(&Endpoint::pod("default", "b"))
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let err = small()
            .pod(PodPlan::new("default", "a", "node-9", v4("10.244.1.3")))
            .node(NodePlan::new("node-3", v4("169.254.1.1")).with_interface("eth0"))
            .load_balancer("198.51.100.7".parse().expect("addr"), "node-1")
            .build()
            .expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("pod default/a is defined twice"), "{text}");
        assert!(text.contains("names node \"node-9\""), "{text}");
        assert!(
            text.contains("address 10.244.1.3 is used by both"),
            "{text}"
        );
        assert!(text.contains("gateway"), "{text}");
        assert!(text.contains("\"eth0\" is always present"), "{text}");
        assert!(
            text.contains("198.51.100.7 is used by both outside host laptop and load balancer"),
            "{text}"
        );
        assert_eq!(err.problems.len(), 7, "{text}");
    }

    #[test]
    fn cidrs_are_checked() {
        let err = LabPlan::builder("t")
            .node(
                NodePlan::new("n1", v4("172.18.0.11"))
                    .with_pod_cidr("10.244.1.0/24".parse().expect("net")),
            )
            .node(
                NodePlan::new("n2", v4("172.18.0.12"))
                    .with_pod_cidr("10.244.0.0/16".parse().expect("net")),
            )
            .pod(PodPlan::new("default", "p", "n2", v4("10.244.1.5")))
            .build()
            .expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("overlap"), "{text}");
        assert!(
            text.contains("lies in pod CIDR 10.244.1.0/24 of node n1"),
            "{text}"
        );
    }

    #[test]
    fn serde_round_trip() {
        let plan = small().build().expect("valid");
        let json = serde_json::to_string(&plan).expect("serialize");
        let back: LabPlan = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(plan, back);
        back.validate().expect("still valid");
    }
}
