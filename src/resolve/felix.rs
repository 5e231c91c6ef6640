//! FelixConfiguration: what Felix on each node is configured with (decision
//! `felix-configuration`, docs/semantics.md#felix-configuration).
//!
//! Felix reads the `default` object and its node's `node.<name>` object and merges
//! them field by field, the node's value winning (felix/config: the per-host
//! datastore source has a higher priority than the global one). Fields the lab
//! gives meaning to: `defaultEndpointToHostAction`, `failsafeInboundHostPorts`,
//! `failsafeOutboundHostPorts`, `logPrefix`. Every other field written is listed
//! by [`notes`] as having no effect in the lab (validation rejects the few values
//! that would change a probe and are not modelled).

use std::collections::BTreeSet;

use ipnet::IpNet;

use crate::inventory::Inventory;
use crate::manifest::types::{FelixConfigurationSpec, ProtoPort};
use crate::manifest::values::parse_cidr_or_ip;
use crate::manifest::{Body, Kind};

/// `defaultEndpointToHostAction`: what happens to a workload's packet to its own
/// host once the workload's egress policy allowed it (felix/rules/static.go,
/// `filterWorkloadToHostChain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum EndpointToHostAction {
    /// Accepted.
    Accept,
    /// Returned to the host's own INPUT chain, whose policy (ACCEPT in the lab's
    /// nodes, which have no other rules) decides; host endpoint policy is not
    /// applied (felix/fv ep_to_host_action_test.go).
    Return,
    /// Dropped.
    Drop,
}

impl EndpointToHostAction {
    pub fn upper(self) -> &'static str {
        match self {
            EndpointToHostAction::Accept => "ACCEPT",
            EndpointToHostAction::Return => "RETURN",
            EndpointToHostAction::Drop => "DROP",
        }
    }
}

/// One failsafe port: protocol number, port, and the remote network (any when
/// `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Failsafe {
    pub protocol: u8,
    pub port: u16,
    pub net: Option<IpNet>,
}

/// The Felix configuration of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FelixConfig {
    pub endpoint_to_host: EndpointToHostAction,
    pub failsafe_inbound: Vec<Failsafe>,
    pub failsafe_outbound: Vec<Failsafe>,
    /// The prefix of Log-rule lines, without the `: ` Felix appends.
    pub log_prefix: String,
}

/// Felix's default `FailsafeInboundHostPorts` (docs/semantics.md#failsafe-ports).
pub const FAILSAFE_INBOUND: &[(u8, u16)] = &[
    (6, 22),
    (17, 68),
    (6, 179),
    (6, 2379),
    (6, 2380),
    (6, 5473),
    (6, 6443),
    (6, 6666),
    (6, 6667),
];
/// Felix's default `FailsafeOutboundHostPorts` (docs/semantics.md#failsafe-ports).
pub const FAILSAFE_OUTBOUND: &[(u8, u16)] = &[
    (17, 53),
    (17, 67),
    (6, 179),
    (6, 2379),
    (6, 2380),
    (6, 5473),
    (6, 6443),
    (6, 6666),
    (6, 6667),
];
/// Felix's default `LogPrefix`.
pub const DEFAULT_LOG_PREFIX: &str = "calico-packet";

fn defaults(list: &[(u8, u16)]) -> Vec<Failsafe> {
    list.iter()
        .map(|&(protocol, port)| Failsafe {
            protocol,
            port,
            net: None,
        })
        .collect()
}

impl Default for FelixConfig {
    /// What the lab's Felix runs with when no FelixConfiguration says otherwise:
    /// Felix's defaults, except `defaultEndpointToHostAction` ACCEPT as the
    /// calico-node manifests set it (decision `pod-to-own-host`).
    fn default() -> Self {
        FelixConfig {
            endpoint_to_host: EndpointToHostAction::Accept,
            failsafe_inbound: defaults(FAILSAFE_INBOUND),
            failsafe_outbound: defaults(FAILSAFE_OUTBOUND),
            log_prefix: DEFAULT_LOG_PREFIX.to_string(),
        }
    }
}

/// The fields of FelixConfiguration the lab gives meaning to.
pub const EFFECTIVE_FIELDS: &[&str] = &[
    "defaultEndpointToHostAction",
    "failsafeInboundHostPorts",
    "failsafeOutboundHostPorts",
    "logPrefix",
];

fn ports(list: &[crate::diag::Spanned<ProtoPort>]) -> Vec<Failsafe> {
    let mut out: Vec<Failsafe> = list
        .iter()
        .filter_map(|p| {
            let p = &p.value;
            let protocol = match p.protocol.as_ref().map(|s| s.value.to_ascii_lowercase()) {
                None => 6,
                Some(s) if s == "tcp" => 6,
                Some(s) if s == "udp" => 17,
                Some(s) if s == "sctp" => 132,
                Some(_) => return None,
            };
            let port = u16::try_from(p.port.value).ok()?;
            let net = match &p.net {
                Some(n) if !n.value.is_empty() => Some(parse_cidr_or_ip(&n.value)?),
                _ => None,
            };
            Some(Failsafe {
                protocol,
                port,
                net,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn overlay(cfg: &mut FelixConfig, spec: &FelixConfigurationSpec) {
    if let Some(a) = &spec.default_endpoint_to_host_action {
        match a.value.to_ascii_lowercase().as_str() {
            "accept" => cfg.endpoint_to_host = EndpointToHostAction::Accept,
            "return" => cfg.endpoint_to_host = EndpointToHostAction::Return,
            "drop" => cfg.endpoint_to_host = EndpointToHostAction::Drop,
            // The empty string (the schema allows it) means "unset".
            _ => {}
        }
    }
    if let Some(l) = &spec.failsafe_inbound_host_ports {
        cfg.failsafe_inbound = ports(l);
    }
    if let Some(l) = &spec.failsafe_outbound_host_ports {
        cfg.failsafe_outbound = ports(l);
    }
    if let Some(p) = &spec.log_prefix {
        if !p.value.is_empty() {
            cfg.log_prefix = p.value.clone();
        }
    }
}

fn spec<'a>(inv: &'a Inventory, name: &str) -> Option<&'a FelixConfigurationSpec> {
    inv.resources
        .iter()
        .find(|(k, _)| k.kind == Kind::FelixConfiguration && k.name == name)
        .and_then(|(_, r)| match &r.body {
            Body::FelixConfiguration(s) => Some(s),
            _ => None,
        })
}

/// The configuration of node `node`: the `default` object, then `node.<node>`.
pub fn for_node(inv: &Inventory, node: &str) -> FelixConfig {
    let mut cfg = FelixConfig::default();
    if let Some(s) = spec(inv, "default") {
        overlay(&mut cfg, s);
    }
    if let Some(s) = spec(inv, &format!("node.{node}")) {
        overlay(&mut cfg, s);
    }
    cfg
}

/// "FelixConfiguration <name>: <field> has no effect in the lab", for every field
/// written that the lab gives no meaning to, sorted.
pub fn notes(inv: &Inventory) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (k, r) in &inv.resources {
        let Body::FelixConfiguration(s) = &r.body else {
            continue;
        };
        for f in &s.fields {
            if !EFFECTIVE_FIELDS.contains(&f.value.as_str()) {
                out.insert(format!(
                    "FelixConfiguration {}: {} has no effect in the lab",
                    k.name, f.value
                ));
            }
        }
    }
    out.into_iter().collect()
}
