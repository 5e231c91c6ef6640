//! This module deals with building a [`LabPlan`] in the kernel: namespaces, veth pairs,
//! addresses, routes, sysctls and servers, all inside namespaces the run creates.
//!
//! What gets built (see `policylab::lab` for the plan's side):
//! - the fabric namespace: `lo` holds [`GATEWAY_V4`]/32, so every attached host's ARP
//!   for its gateway is answered; one port per node (`nodeN`, peer `eth0` in the node),
//!   one unaddressed port per extra node interface, one port per outside host
//!   (`hostN`, peer `eth0` in the host); each port holds [`GATEWAY_V6`] (no DAD); host
//!   routes to node and outside addresses, pod CIDRs (or pod host routes) and
//!   load-balancer addresses via the node; a blackhole default route (an address
//!   nobody holds is dropped silently); forwarding on;
//! - each node: `eth0` with the node's /32 (/128) and [`NODE_LINK_LOCAL_V6`], a link
//!   route to the gateway and default routes through the fabric; per pod a `cali…`
//!   interface (created together with the pod's `eth0` in one RTM_NEWLINK whose peer is
//!   put straight into the pod namespace) with `proxy_arp=1` (inherited from the
//!   node's `conf/default`, switched off again on `eth0` and extra interfaces), `proxy_delay=0`,
//!   [`GATEWAY_V6`], and a /32 (/128) route to the pod; a blackhole route for each
//!   of its pod CIDRs (Calico's for its IPAM blocks); forwarding on;
//! - each pod: `eth0` with its /32 (/128), a link route to [`GATEWAY_V4`] and default
//!   routes via [`GATEWAY_V4`] and [`GATEWAY_V6`], as Calico configures pods;
//! - each outside host: `eth0` with its /32 (/128) addresses and default routes through
//!   the fabric.
//!
//! Every namespace gets `lo` up, `ping_group_range` open (ping sockets for ICMP probes)
//! and, when the plan has IPv6, DAD off (IPv6 off when it has none). Netlink work uses one rtnetlink connection per
//! namespace, opened on the thread that made the namespace; links are checked for
//! carrier (LOWER_UP and RUNNING) before the build returns.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use policylab::lab::{
    Endpoint, LabPlan, PlanError, ServerProtocol, GATEWAY_V4, GATEWAY_V6, NODE_LINK_LOCAL_V6,
    UPLINK_IFACE,
};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkFlags};
use rtnetlink::packet_route::route::{RouteScope, RouteType};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::netns::{write_sysctl, Lab, NetNs, NetnsError};
use crate::server::{Families, ServerError, ServerSet};

/// The ifindex of `lo` in every namespace.
const LO: u32 = 1;
/// The ifindex of `eth0` in nodes, pods and outside hosts.
const ETH0: u32 = 2;
/// Extra node interfaces get ifindex `EXTRA_BASE + j` in the node.
const EXTRA_BASE: u32 = 3;
/// Pod host interfaces get ifindex `CALI_BASE + j` in their node.
const CALI_BASE: u32 = 10_000;
/// The MAC of every pod host interface, as Calico sets it.
const CALI_MAC: [u8; 6] = [0xee; 6];

/// What went wrong building a lab.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("{context}: {source}")]
    Netlink {
        context: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("links still without carrier after {waited:?}: {links}")]
    NoCarrier { links: String, waited: Duration },
    #[error(
        "the plan has IPv6 addresses but the kernel has no IPv6 (/proc/sys/net/ipv6 is missing)"
    )]
    NoIpv6,
    #[error(transparent)]
    Server(#[from] ServerError),
}

fn nl(context: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> TopologyError {
    let context = context.into();
    move |source| TopologyError::Netlink { context, source }
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Helper threads that make namespaces (each one also opens the namespace's netlink
    /// socket and writes its sysctls).
    pub threads: usize,
    /// Pods wired at the same time.
    pub concurrency: usize,
    /// Start the servers of the plan.
    pub start_servers: bool,
    /// How long to wait for every link to have carrier.
    pub carrier_timeout: Duration,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 4),
            concurrency: 64,
            start_servers: true,
            carrier_timeout: Duration::from_secs(3),
        }
    }
}

/// How long each build phase took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildTimings {
    pub namespaces: Duration,
    pub links: Duration,
    pub sysctls: Duration,
    pub carrier: Duration,
    pub servers: Duration,
    pub total: Duration,
}

/// A built lab. Dropping it (or [`Cluster::teardown`]) stops the servers and removes
/// every namespace.
#[derive(Debug)]
pub struct Cluster {
    // Field order is drop order: servers close their sockets before the namespaces go.
    servers: ServerSet,
    unsupported: Vec<String>,
    plan: LabPlan,
    fabric: NetNs,
    nodes: BTreeMap<String, NetNs>,
    pods: BTreeMap<(String, String), NetNs>,
    outside: BTreeMap<String, NetNs>,
    timings: BuildTimings,
    lab: Lab,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Fabric,
    Node,
    Leaf,
}

/// Keeps a short role name within the namespace label limits.
fn short_name(kind: &str, index: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(28)
        .collect();
    format!("{kind}{index}-{clean}")
}

impl Cluster {
    /// Builds `plan`. Must run inside a tokio runtime.
    pub async fn build(plan: &LabPlan, opts: &BuildOptions) -> Result<Cluster, TopologyError> {
        let t0 = Instant::now();
        plan.validate()?;
        let v6 = plan.has_ipv6();
        if v6 && !std::path::Path::new("/proc/sys/net/ipv6").exists() {
            return Err(TopologyError::NoIpv6);
        }
        let lab = Lab::new(&plan.prefix)?;

        // Phase 1: namespaces, each with its sysctls and its netlink connection.
        let mut shorts = vec!["fabric".to_string()];
        let mut roles = vec![Role::Fabric];
        for (i, n) in plan.nodes.iter().enumerate() {
            shorts.push(short_name("n", i, &n.name));
            roles.push(Role::Node);
        }
        for (i, o) in plan.outside.iter().enumerate() {
            shorts.push(short_name("o", i, &o.name));
            roles.push(Role::Leaf);
        }
        for (i, p) in plan.pods.iter().enumerate() {
            shorts.push(short_name("p", i, &format!("{}.{}", p.namespace, p.name)));
            roles.push(Role::Leaf);
        }
        let role_of: BTreeMap<String, Role> = shorts
            .iter()
            .zip(&roles)
            .map(|(s, r)| (lab.name_for(s), *r))
            .collect();
        let rt = tokio::runtime::Handle::current();
        let init = |ns: &NetNs| -> Result<Handle, TopologyError> {
            let role = role_of.get(ns.name()).copied().unwrap_or(Role::Leaf);
            init_namespace(role, v6)?;
            let _guard = rt.enter();
            let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| TopologyError::Io {
                context: format!("opening a netlink socket in {}", ns.name()),
                source: e,
            })?;
            rt.spawn(conn);
            Ok(handle)
        };
        let made = blocking(|| lab.create_many(&shorts, opts.threads, init))?;
        let t_ns = t0.elapsed();

        let mut made = made.into_iter();
        let (fabric, fabric_h) = made.next().ok_or_else(|| missing("fabric"))?;
        let mut nodes = Vec::new();
        for _ in &plan.nodes {
            nodes.push(made.next().ok_or_else(|| missing("node"))?);
        }
        let mut outside = Vec::new();
        for _ in &plan.outside {
            outside.push(made.next().ok_or_else(|| missing("outside host"))?);
        }
        let pods: Vec<(NetNs, Handle)> = made.collect();

        // Phase 2: links, addresses, routes.
        let t1 = Instant::now();
        wire_fabric_and_nodes(plan, &fabric_h, &nodes, v6).await?;
        wire_outside(plan, &fabric_h, &outside, v6).await?;
        let node_index: BTreeMap<&str, usize> = plan
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        let mut per_node_count = vec![0u32; plan.nodes.len()];
        let mut jobs = Vec::with_capacity(plan.pods.len());
        for (p, (ns, h)) in plan.pods.iter().zip(&pods) {
            let ni = *node_index
                .get(p.node.as_str())
                .ok_or_else(|| missing("pod's node"))?;
            let cali_index = CALI_BASE + per_node_count[ni];
            per_node_count[ni] += 1;
            jobs.push((p, ns, h, ni, cali_index));
        }
        futures::stream::iter(jobs.into_iter().map(|(p, ns, h, ni, cali_index)| {
            let node_h = &nodes[ni].1;
            async move { wire_pod(p, ns, h, node_h, cali_index, v6).await }
        }))
        .buffer_unordered(opts.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
        let t_links = t1.elapsed();

        // Phase 3: per-interface sysctls: proxy_delay 0 on pod host interfaces (there
        // is no per-namespace default for it), proxy ARP off on the other interfaces.
        let t2 = Instant::now();
        let mut sysctl_jobs = Vec::new();
        for (ni, n) in plan.nodes.iter().enumerate() {
            let cali: Vec<String> = plan
                .pods_on(&n.name)
                .map(|p| p.host_iface.clone())
                .collect();
            let mut others = vec![UPLINK_IFACE.to_string()];
            others.extend(n.interfaces.iter().cloned());
            let ns = nodes[ni].0.clone();
            sysctl_jobs.push(async move {
                ns.run_async(move || -> Result<(), NetnsError> {
                    for i in &cali {
                        write_sysctl(&format!("ipv4/neigh/{i}/proxy_delay"), "0")?;
                    }
                    for i in &others {
                        write_sysctl(&format!("ipv4/conf/{i}/proxy_arp"), "0")?;
                    }
                    Ok(())
                })
                .await?
            });
        }
        futures::future::try_join_all(sysctl_jobs).await?;
        let t_sysctl = t2.elapsed();

        // Phase 4: carrier on every veth end the routers transmit on.
        let t3 = Instant::now();
        let mut checks = vec![wait_carrier(&fabric_h, fabric.name(), opts.carrier_timeout)];
        for (ns, h) in &nodes {
            checks.push(wait_carrier(h, ns.name(), opts.carrier_timeout));
        }
        futures::future::try_join_all(checks).await?;
        let t_carrier = t3.elapsed();

        // The netlink connections end when their handles go.
        drop(fabric_h);
        let nodes: Vec<NetNs> = nodes.into_iter().map(|(ns, _)| ns).collect();
        let outside: Vec<NetNs> = outside.into_iter().map(|(ns, _)| ns).collect();
        let pods: Vec<NetNs> = pods.into_iter().map(|(ns, _)| ns).collect();

        let mut cluster = Cluster {
            servers: ServerSet::new(),
            unsupported: Vec::new(),
            plan: plan.clone(),
            fabric,
            nodes: plan
                .nodes
                .iter()
                .map(|n| n.name.clone())
                .zip(nodes)
                .collect(),
            pods: plan
                .pods
                .iter()
                .map(|p| (p.namespace.clone(), p.name.clone()))
                .zip(pods)
                .collect(),
            outside: plan
                .outside
                .iter()
                .map(|o| o.name.clone())
                .zip(outside)
                .collect(),
            timings: BuildTimings::default(),
            lab,
        };

        // Phase 5: servers.
        let t4 = Instant::now();
        if opts.start_servers {
            cluster.start_servers().await?;
        }
        cluster.timings = BuildTimings {
            namespaces: t_ns,
            links: t_links,
            sysctls: t_sysctl,
            carrier: t_carrier,
            servers: t4.elapsed(),
            total: t0.elapsed(),
        };
        Ok(cluster)
    }

    async fn start_servers(&mut self) -> Result<(), TopologyError> {
        let mut work: Vec<(NetNs, String, Vec<policylab::lab::ServerSpec>, Families)> = Vec::new();
        for n in &self.plan.nodes {
            if let Some(ns) = self.nodes.get(&n.name) {
                work.push((
                    ns.clone(),
                    n.name.clone(),
                    n.servers.clone(),
                    Families::of(&n.addresses()),
                ));
            }
        }
        for p in &self.plan.pods {
            if let Some(ns) = self.pods.get(&(p.namespace.clone(), p.name.clone())) {
                work.push((
                    ns.clone(),
                    p.key(),
                    p.servers.clone(),
                    Families::of(&p.addresses()),
                ));
            }
        }
        for o in &self.plan.outside {
            if let Some(ns) = self.outside.get(&o.name) {
                work.push((
                    ns.clone(),
                    o.name.clone(),
                    o.servers.clone(),
                    Families::of(&o.addresses),
                ));
            }
        }
        for (ns, name, specs, families) in work {
            for spec in specs {
                match self.servers.serve(&ns, &name, spec, families).await {
                    Ok(()) => {}
                    Err(ServerError::SctpUnsupported { reason })
                        if spec.protocol == ServerProtocol::Sctp =>
                    {
                        self.unsupported.push(format!(
                            "{name}: {spec} not served: no SCTP in this kernel ({reason})"
                        ));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    pub fn plan(&self) -> &LabPlan {
        &self.plan
    }

    /// The namespaces' guard (names, run id).
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    pub fn fabric(&self) -> &NetNs {
        &self.fabric
    }

    pub fn node(&self, name: &str) -> Option<&NetNs> {
        self.nodes.get(name)
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<&NetNs> {
        self.pods.get(&(namespace.to_string(), name.to_string()))
    }

    pub fn outside_host(&self, name: &str) -> Option<&NetNs> {
        self.outside.get(name)
    }

    /// The namespace of an endpoint.
    pub fn namespace_of(&self, endpoint: &Endpoint) -> Option<&NetNs> {
        match endpoint {
            Endpoint::Node { name } => self.node(name),
            Endpoint::Pod { namespace, name } => self.pod(namespace, name),
            Endpoint::Outside { name } => self.outside_host(name),
        }
    }

    /// Every node namespace, by node name.
    pub fn nodes(&self) -> &BTreeMap<String, NetNs> {
        &self.nodes
    }

    pub fn servers(&self) -> &ServerSet {
        &self.servers
    }

    /// Servers of the plan that could not be started because the kernel lacks the
    /// protocol (SCTP), one line each.
    pub fn unsupported_servers(&self) -> &[String] {
        &self.unsupported
    }

    pub fn timings(&self) -> &BuildTimings {
        &self.timings
    }

    /// Routes load-balancer `address` to node `node` in the fabric, replacing the route
    /// it had (a patch from `externalTrafficPolicy: Cluster` to `Local` can move it, see
    /// `lab::load_balancer_routes`). Only the fabric namespace is touched.
    pub async fn route_load_balancer(
        &mut self,
        address: IpAddr,
        node: &str,
    ) -> Result<(), TopologyError> {
        let Some(i) = self.plan.nodes.iter().position(|n| n.name == node) else {
            return Err(TopologyError::Io {
                context: format!("routing load balancer {address}"),
                source: std::io::Error::other(format!("node {node} is not in the lab")),
            });
        };
        let via = match address {
            IpAddr::V4(_) => IpAddr::V4(self.plan.nodes[i].ipv4),
            IpAddr::V6(_) => IpAddr::V6(NODE_LINK_LOCAL_V6),
        };
        let port = fabric_node_port(i);
        let rt = tokio::runtime::Handle::current();
        let fabric = self.fabric.clone();
        let h = blocking(|| {
            fabric.run(|| {
                let _guard = rt.enter();
                rtnetlink::new_connection().map(|(conn, handle, _)| {
                    rt.spawn(conn);
                    handle
                })
            })
        })?
        .map_err(|e| TopologyError::Io {
            context: format!("opening a netlink socket in {}", self.fabric.name()),
            source: e,
        })?;
        let what = format!("the fabric (load balancer {address} to node {node})");
        let msg = route_message(host_net(address), port, Some(via), &what)?;
        h.route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(nl(format!("replacing the route to {address} on {what}")))?;
        if let Some(lb) = self
            .plan
            .load_balancers
            .iter_mut()
            .find(|l| l.address == address)
        {
            lb.node = node.to_string();
        }
        Ok(())
    }

    /// Makes outside host `name` stop answering (`fail: host`) or answer again
    /// (`recover: host`), with [`crate::feedserver::fail_host`]: a table in the host's
    /// own namespace drops everything but loopback, so clients time out (nothing is
    /// refused). Idempotent.
    pub async fn set_outside_failed(&self, name: &str, failed: bool) -> Result<(), TopologyError> {
        let ns = self.outside_host(name).ok_or_else(|| TopologyError::Io {
            context: format!("failing outside host {name}"),
            source: std::io::Error::other("no such outside host in the lab"),
        })?;
        let r = if failed {
            crate::feedserver::fail_host(ns).await
        } else {
            crate::feedserver::recover_host(ns).await
        };
        r.map_err(|e| TopologyError::Io {
            context: format!("outside host {name}"),
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// Stops the servers and removes every namespace, reporting the first failure.
    pub fn teardown(mut self) -> Result<(), NetnsError> {
        self.servers.stop();
        let Cluster { lab, .. } = self;
        lab.teardown()
    }
}

fn missing(what: &str) -> TopologyError {
    TopologyError::Io {
        context: format!("building the lab: the {what} namespace is missing"),
        source: std::io::Error::other("namespace creation returned too few namespaces"),
    }
}

/// Runs blocking work from async code without stalling a multi-thread runtime's worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Sysctls of a fresh namespace, written on the thread that made it (inside it).
fn init_namespace(role: Role, v6: bool) -> Result<(), TopologyError> {
    write_sysctl("ipv4/ping_group_range", "0 2147483647")?;
    if v6 {
        write_sysctl("ipv6/conf/all/accept_dad", "0")?;
        write_sysctl("ipv6/conf/default/accept_dad", "0")?;
    } else if std::path::Path::new("/proc/sys/net/ipv6").exists() {
        // An IPv4-only lab spares the kernel IPv6 autoconfiguration (link-local
        // addresses, DAD, router solicitations) on every one of its interfaces.
        write_sysctl("ipv6/conf/all/disable_ipv6", "1")?;
        write_sysctl("ipv6/conf/default/disable_ipv6", "1")?;
    }
    if role == Role::Node {
        // Every pod host interface is created with proxy ARP on (Calico's setting);
        // the uplink and extra interfaces get it switched off again.
        write_sysctl("ipv4/conf/default/proxy_arp", "1")?;
    }
    if matches!(role, Role::Fabric | Role::Node) {
        write_sysctl("ipv4/ip_forward", "1")?;
        if v6 {
            write_sysctl("ipv6/conf/all/forwarding", "1")?;
        }
    }
    Ok(())
}

async fn link_up(h: &Handle, index: u32, what: &str) -> Result<(), TopologyError> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl(format!("setting {what} up")))
}

/// Creates a veth in the namespace of `h`: `name` (ifindex `index`, up) here, its peer
/// `peer_name` (ifindex `peer_index`, down) directly inside `peer_ns`; `mac` and
/// `peer_mac` set their addresses (else the kernel picks random ones).
#[allow(clippy::too_many_arguments)]
async fn add_veth(
    h: &Handle,
    name: &str,
    index: u32,
    peer_ns: &NetNs,
    peer_name: &str,
    peer_index: u32,
    mac: Option<[u8; 6]>,
    peer_mac: Option<[u8; 6]>,
) -> Result<(), TopologyError> {
    let fd = peer_ns.open()?;
    let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer_name)
        .index(peer_index)
        .setns_by_fd(fd.as_raw_fd());
    if let Some(mac) = peer_mac {
        peer = peer.address(mac.to_vec());
    }
    let peer = peer.build();
    let mut b = LinkVeth::new(name, peer_name)
        .index(index)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .up();
    if let Some(mac) = mac {
        b = b.address(mac.to_vec());
    }
    let r = h.link().add(b.build()).execute().await;
    drop(fd);
    r.map_err(nl(format!(
        "creating veth {name} with peer {peer_name} in {}",
        peer_ns.name()
    )))
}

async fn add_addr(
    h: &Handle,
    index: u32,
    addr: IpAddr,
    prefix: u8,
    what: &str,
) -> Result<(), TopologyError> {
    let mut req = h.address().add(index, addr, prefix);
    if addr.is_ipv6() {
        // Usable at once: no duplicate address detection.
        let m = req.message_mut();
        m.header.flags |= AddressHeaderFlags::Nodad;
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute()
        .await
        .map_err(nl(format!("adding address {addr}/{prefix} on {what}")))
}

/// A route to `dest` out of `oif`, directly (scope link) or via a gateway.
async fn add_route(
    h: &Handle,
    dest: IpNet,
    oif: u32,
    via: Option<IpAddr>,
    what: &str,
) -> Result<(), TopologyError> {
    let msg = route_message(dest, oif, via, what)?;
    h.route().add(msg).execute().await.map_err(nl(format!(
        "adding route to {dest}{} on {what}",
        via.map(|g| format!(" via {g}")).unwrap_or_default()
    )))
}

/// The route message for [`add_route`] and [`Cluster::route_load_balancer`].
fn route_message(
    dest: IpNet,
    oif: u32,
    via: Option<IpAddr>,
    what: &str,
) -> Result<netlink_packet_route::route::RouteMessage, TopologyError> {
    Ok(match (dest, via) {
        (IpNet::V4(d), None) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(d.addr(), d.prefix_len())
            .output_interface(oif)
            .scope(RouteScope::Link)
            .build(),
        (IpNet::V4(d), Some(IpAddr::V4(g))) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(d.addr(), d.prefix_len())
            .output_interface(oif)
            .gateway(g)
            .build(),
        (IpNet::V6(d), None) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(d.addr(), d.prefix_len())
            .output_interface(oif)
            .build(),
        (IpNet::V6(d), Some(IpAddr::V6(g))) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(d.addr(), d.prefix_len())
            .output_interface(oif)
            .gateway(g)
            .build(),
        (d, Some(g)) => {
            return Err(TopologyError::Io {
                context: format!("route to {d} via {g} on {what}"),
                source: std::io::Error::other("gateway and destination families differ"),
            })
        }
    })
}

/// A blackhole route to `dest` (dropped without an ICMP error).
async fn add_blackhole(h: &Handle, dest: IpNet, what: &str) -> Result<(), TopologyError> {
    let msg = match dest {
        IpNet::V4(d) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(d.addr(), d.prefix_len())
            .kind(RouteType::BlackHole)
            .build(),
        IpNet::V6(d) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(d.addr(), d.prefix_len())
            .kind(RouteType::BlackHole)
            .build(),
    };
    h.route().add(msg).execute().await.map_err(nl(format!(
        "adding the blackhole route to {dest} on {what}"
    )))
}

fn host_net(a: IpAddr) -> IpNet {
    IpNet::from(a)
}

/// The addressing every host behind a gateway gets on `eth0`: its /32 and /128
/// addresses, a link route to [`GATEWAY_V4`], default routes via [`GATEWAY_V4`] and
/// [`GATEWAY_V6`] for the families it has, plus `extra_v6` (a link-local address, which
/// also makes it route IPv6: a node forwards its pods' IPv6 traffic even when it has no
/// IPv6 address of its own).
async fn configure_leaf(
    h: &Handle,
    addrs: &[IpAddr],
    extra_v6: Option<Ipv6Addr>,
    what: &str,
) -> Result<(), TopologyError> {
    link_up(h, LO, &format!("lo of {what}")).await?;
    link_up(h, ETH0, &format!("eth0 of {what}")).await?;
    for a in addrs {
        let prefix = if a.is_ipv4() { 32 } else { 128 };
        add_addr(h, ETH0, *a, prefix, what).await?;
    }
    if let Some(ll) = extra_v6 {
        add_addr(h, ETH0, IpAddr::V6(ll), 64, what).await?;
    }
    if addrs.iter().any(IpAddr::is_ipv4) {
        let gw = IpAddr::V4(GATEWAY_V4);
        add_route(h, host_net(gw), ETH0, None, what).await?;
        add_route(
            h,
            "0.0.0.0/0".parse().map_err(bad_net)?,
            ETH0,
            Some(gw),
            what,
        )
        .await?;
    }
    if extra_v6.is_some() || addrs.iter().any(IpAddr::is_ipv6) {
        add_route(
            h,
            "::/0".parse().map_err(bad_net)?,
            ETH0,
            Some(IpAddr::V6(GATEWAY_V6)),
            what,
        )
        .await?;
    }
    Ok(())
}

fn bad_net(e: ipnet::AddrParseError) -> TopologyError {
    TopologyError::Io {
        context: "parsing a built-in network".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// The fabric's ifindex of node `i`'s uplink port and of its extra interface `j`.
fn fabric_node_port(i: usize) -> u32 {
    100 + i as u32
}

fn fabric_extra_port(plan: &LabPlan, i: usize, j: usize) -> u32 {
    let before: usize = plan.nodes[..i].iter().map(|n| n.interfaces.len()).sum();
    100 + plan.nodes.len() as u32 + (before + j) as u32
}

fn fabric_outside_port(plan: &LabPlan, k: usize) -> u32 {
    let extras: usize = plan.nodes.iter().map(|n| n.interfaces.len()).sum();
    100 + (plan.nodes.len() + extras + k) as u32
}

async fn wire_fabric_and_nodes(
    plan: &LabPlan,
    fh: &Handle,
    nodes: &[(NetNs, Handle)],
    v6: bool,
) -> Result<(), TopologyError> {
    link_up(fh, LO, "lo of the fabric").await?;
    add_addr(fh, LO, IpAddr::V4(GATEWAY_V4), 32, "lo of the fabric").await?;
    // Links first (the fabric's netlink socket makes every one of them).
    for (i, (n, (ns, _))) in plan.nodes.iter().zip(nodes).enumerate() {
        add_veth(
            fh,
            &format!("node{i}"),
            fabric_node_port(i),
            ns,
            UPLINK_IFACE,
            ETH0,
            None,
            None,
        )
        .await?;
        for (j, iface) in n.interfaces.iter().enumerate() {
            add_veth(
                fh,
                &format!("n{i}x{j}"),
                fabric_extra_port(plan, i, j),
                ns,
                iface,
                EXTRA_BASE + j as u32,
                None,
                None,
            )
            .await?;
        }
    }
    // Each node's own side, concurrently.
    futures::future::try_join_all(plan.nodes.iter().zip(nodes).map(|(n, (_, h))| async move {
        let what = format!("node {}", n.name);
        for j in 0..n.interfaces.len() {
            link_up(h, EXTRA_BASE + j as u32, &what).await?;
        }
        configure_leaf(h, &n.addresses(), v6.then_some(NODE_LINK_LOCAL_V6), &what).await?;
        // As Calico (BIRD) does for a node's IPAM blocks: a free address of the
        // node's pod range is dropped silently, not sent back to the fabric until
        // its TTL runs out (decision `unroutable-address`).
        for c in &n.pod_cidrs {
            add_blackhole(h, *c, &what).await?;
        }
        Ok::<(), TopologyError>(())
    }))
    .await?;
    // The fabric's routes to each node.
    for (i, n) in plan.nodes.iter().enumerate() {
        let port = fabric_node_port(i);
        let what = format!("the fabric port of node {}", n.name);
        if v6 {
            add_addr(fh, port, IpAddr::V6(GATEWAY_V6), 64, &what).await?;
        }
        for a in n.addresses() {
            add_route(fh, host_net(a), port, None, &what).await?;
        }
        let via4 = IpAddr::V4(n.ipv4);
        let via6 = IpAddr::V6(NODE_LINK_LOCAL_V6);
        let via = |net: &IpNet| {
            if matches!(net, IpNet::V4(_)) {
                via4
            } else {
                via6
            }
        };
        for c in &n.pod_cidrs {
            add_route(fh, *c, port, Some(via(c)), &what).await?;
        }
        for p in plan.pods_on(&n.name) {
            for a in p.addresses() {
                if !n.pod_cidrs.iter().any(|c| c.contains(&a)) {
                    let net = host_net(a);
                    add_route(fh, net, port, Some(via(&net)), &what).await?;
                }
            }
        }
        for lb in plan.load_balancers.iter().filter(|l| l.node == n.name) {
            let net = host_net(lb.address);
            add_route(fh, net, port, Some(via(&net)), &what).await?;
        }
    }
    // An address nobody in the lab holds (a cluster IP sent from outside, an unknown
    // address) is dropped without an answer, as the model's `Unroutable` says: a
    // blackhole default route sends no ICMP unreachable.
    let blackhole4 = RouteMessageBuilder::<Ipv4Addr>::new()
        .kind(RouteType::BlackHole)
        .build();
    fh.route()
        .add(blackhole4)
        .execute()
        .await
        .map_err(nl("adding the blackhole default route on the fabric"))?;
    if v6 {
        let blackhole6 = RouteMessageBuilder::<Ipv6Addr>::new()
            .kind(RouteType::BlackHole)
            .build();
        fh.route()
            .add(blackhole6)
            .execute()
            .await
            .map_err(nl("adding the IPv6 blackhole default route on the fabric"))?;
    }
    Ok(())
}

async fn wire_outside(
    plan: &LabPlan,
    fh: &Handle,
    hosts: &[(NetNs, Handle)],
    v6: bool,
) -> Result<(), TopologyError> {
    for (k, (_, (ns, _))) in plan.outside.iter().zip(hosts).enumerate() {
        add_veth(
            fh,
            &format!("host{k}"),
            fabric_outside_port(plan, k),
            ns,
            UPLINK_IFACE,
            ETH0,
            None,
            None,
        )
        .await?;
    }
    futures::future::try_join_all(
        plan.outside
            .iter()
            .zip(hosts)
            .map(|(o, (_, h))| async move {
                configure_leaf(h, &o.addresses, None, &format!("outside host {}", o.name)).await
            }),
    )
    .await?;
    for (k, o) in plan.outside.iter().enumerate() {
        let port = fabric_outside_port(plan, k);
        let what = format!("the fabric port of outside host {}", o.name);
        if v6 {
            add_addr(fh, port, IpAddr::V6(GATEWAY_V6), 64, &what).await?;
        }
        for a in &o.addresses {
            add_route(fh, host_net(*a), port, None, &what).await?;
        }
    }
    Ok(())
}

async fn wire_pod(
    p: &policylab::lab::PodPlan,
    ns: &NetNs,
    h: &Handle,
    node_h: &Handle,
    cali_index: u32,
    v6: bool,
) -> Result<(), TopologyError> {
    let what = format!("pod {}", p.key());
    add_veth(
        node_h,
        &p.host_iface,
        cali_index,
        ns,
        UPLINK_IFACE,
        ETH0,
        Some(CALI_MAC),
        Some(pod_mac(p.ipv4)),
    )
    .await?;
    configure_leaf(h, &p.addresses(), None, &what).await?;
    // Static neighbours, as Calico programs them: the gateway in the pod, the pod
    // on the host side. Permanent entries do not count against the kernel's
    // neighbour-table garbage-collection thresholds (`gc_thresh3`, global to the
    // machine and never changed by policylab), so a lab of thousands of pods does
    // not overflow the table.
    add_neighbour(h, ETH0, IpAddr::V4(GATEWAY_V4), CALI_MAC, &what).await?;
    if v6 && p.ipv6.is_some() {
        add_neighbour(h, ETH0, IpAddr::V6(GATEWAY_V6), CALI_MAC, &what).await?;
    }
    let node_what = format!("{} of node {}", p.host_iface, p.node);
    if v6 {
        add_addr(node_h, cali_index, IpAddr::V6(GATEWAY_V6), 64, &node_what).await?;
    }
    for a in p.addresses() {
        add_route(node_h, host_net(a), cali_index, None, &node_what).await?;
        add_neighbour(node_h, cali_index, a, pod_mac(p.ipv4), &node_what).await?;
    }
    Ok(())
}

/// The MAC of a pod's `eth0`: `0a:58` and its IPv4 address (as the Kubernetes
/// bridge plugin derives it), so the node's static neighbour entry is known before
/// the link exists.
pub fn pod_mac(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x0a, 0x58, o[0], o[1], o[2], o[3]]
}

/// A permanent neighbour entry: `ip` is at `mac` on link `index`.
async fn add_neighbour(
    h: &Handle,
    index: u32,
    ip: IpAddr,
    mac: [u8; 6],
    what: &str,
) -> Result<(), TopologyError> {
    h.neighbours()
        .add(index, ip)
        .link_layer_address(&mac)
        .execute()
        .await
        .map_err(nl(format!("adding the static neighbour {ip} on {what}")))
}

/// Waits until every link of a namespace but `lo` has LOWER_UP and RUNNING.
async fn wait_carrier(h: &Handle, ns_name: &str, timeout: Duration) -> Result<(), TopologyError> {
    let start = Instant::now();
    loop {
        let mut missing = Vec::new();
        let mut links = h.link().get().execute();
        while let Some(msg) = links
            .try_next()
            .await
            .map_err(nl(format!("listing links of {ns_name}")))?
        {
            if msg.header.index == LO {
                continue;
            }
            let name = msg
                .attributes
                .iter()
                .find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let f = msg.header.flags;
            if !(f.contains(LinkFlags::LowerUp) && f.contains(LinkFlags::Running)) {
                missing.push(name);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(TopologyError::NoCarrier {
                links: format!("{ns_name}: {}", missing.join(", ")),
                waited: start.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
