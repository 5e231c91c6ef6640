//! This module deals with the state of a scenario's cluster at one step: what exists,
//! before any meaning is given to it.
//!
//! An [`Inventory`] is what `resolve` turns into a world. It holds the scenario-only
//! things (nodes, outside hosts, cluster address ranges) and every API object that
//! exists at this step, keyed by identity. The scenario's `cluster:` short form is
//! converted into the same Kubernetes objects an `apply` step would create (Namespace,
//! ServiceAccount, Pod, Service), so both routes give the same inventory.
//!
//! Pinned addresses of short-form pods travel as Calico's own annotation
//! `cni.projectcalico.org/ipAddrs` (a JSON list), as with real Calico IPAM.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::diag::Span;
use crate::manifest::{Resource, ResourceKey};

/// The annotation that pins a pod's addresses.
pub const IP_ADDRS_ANNOTATION: &str = "cni.projectcalico.org/ipAddrs";

#[derive(Debug, Clone)]
pub struct Inventory {
    pub cluster: ClusterConfig,
    /// In the order the scenario lists them (the first is the default node).
    pub nodes: Vec<NodeDef>,
    pub outside: Vec<OutsideHost>,
    /// Shared between the states of a scenario: a step copies pointers, not objects.
    pub resources: BTreeMap<ResourceKey, std::sync::Arc<Resource>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub pod_cidr: Ipv4Net,
    pub pod_cidr_v6: Option<Ipv6Net>,
    pub service_cidr: Ipv4Net,
    /// The fabric's range; nodes without `ip:` get addresses from it.
    pub node_cidr: Ipv4Net,
    /// `cluster.blockSize`: IPv4 pod addresses come from Calico-style IPAM blocks
    /// of this prefix length, claimed by a node as it fills (decision
    /// `ipam-blocks`); `None` keeps one /24 per node.
    pub block_size: Option<u8>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            pod_cidr: "10.244.0.0/16".parse().expect("literal"),
            pod_cidr_v6: None,
            service_cidr: "10.96.0.0/16".parse().expect("literal"),
            node_cidr: "172.18.0.0/24".parse().expect("literal"),
            block_size: None,
        }
    }
}

impl ClusterConfig {
    /// The IPv4 pod range of the node at `idx` (0-based, scenario order): the
    /// (idx+1)-th /24 of `podCIDR`.
    pub fn node_pod_range_v4(&self, idx: usize) -> Option<Ipv4Net> {
        if self.block_size.is_some() {
            // A node's ranges are the blocks it claimed (`Inventory::node_blocks`).
            return None;
        }
        self.pod_cidr.subnets(24).ok()?.nth(idx + 1)
    }

    /// The IPAM block holding `ip`, with `cluster.blockSize`.
    pub fn block_of(&self, ip: Ipv4Addr) -> Option<Ipv4Net> {
        let bs = self.block_size?;
        Ipv4Net::new(ip, bs).ok().map(|n| n.trunc())
    }

    /// The IPv6 pod range of the node at `idx`: the (idx+1)-th /64 of `podCIDRv6`.
    pub fn node_pod_range_v6(&self, idx: usize) -> Option<Ipv6Net> {
        self.pod_cidr_v6?.subnets(64).ok()?.nth(idx + 1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDef {
    pub name: String,
    pub span: Span,
    pub ip: Ipv4Addr,
    pub ipv6: Option<std::net::Ipv6Addr>,
    pub labels: BTreeMap<String, String>,
    /// Always starts with `eth0`, the uplink to the fabric.
    pub interfaces: Vec<String>,
    /// Host-networked servers on the node itself.
    pub ports: Vec<PortDef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideHost {
    pub name: String,
    pub span: Span,
    pub ips: Vec<IpAddr>,
    pub ports: Vec<PortDef>,
    /// Names the feed puller resolves to this host.
    pub hostnames: Vec<String>,
    /// URL path -> file served over HTTP on port 80 (contents read at load time).
    pub files: BTreeMap<String, ServedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedFile {
    pub path: std::path::PathBuf,
    pub contents: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4 {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortDef {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: L4,
}
