//! Loading: the scenario's tree → cluster, outside hosts, steps, the state after
//! every step. See the module doc of [`super`] for allocation and decisions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::{json, Value as Json};

use super::raw::{
    RawNamespace, RawNode, RawOutside, RawPod, RawPort, RawService, RawServiceAccount,
};
use super::short::{self, DestRef, TargetRef};
use super::vars::{self, Lookup};
use super::*;
use crate::diag::Span;
use crate::inventory::{
    ClusterConfig, NodeDef, OutsideHost, PortDef, ServedFile, IP_ADDRS_ANNOTATION, L4,
};
use crate::manifest::types::PolicySpec;
use crate::manifest::{load_document, load_document_in, Body, Kind};
use crate::yaml::{from_node, parse_stream, Document, Node, Origin, Style, Value};

const VERBS: &[&str] = &[
    "apply", "create", "delete", "patch", "probe", "matrix", "serve", "advance", "fail", "recover",
];
const PROBE_OPTIONS: &[&str] = &[
    "expect", "status", "clientIP", "by", "alert", "logged", "staged", "timeout", "family",
];
const OWNER_ANNOTATION: &str = "policylab.dev/owner";
/// The tiers that exist without being declared (decision `builtin-tiers`).
const BUILTIN_TIERS: &[&str] = &["default", "kube-admin", "kube-baseline"];

fn tier_key(name: &str) -> ResourceKey {
    ResourceKey {
        kind: Kind::Tier,
        namespace: None,
        name: name.to_string(),
    }
}

fn one_of(list: &[&str]) -> String {
    let mut v = list.to_vec();
    v.sort_unstable();
    v.join(", ")
}

/// Everything that exists at one step, plus what the allocator remembers.
struct World {
    cluster: ClusterConfig,
    lb_cidr: Ipv4Net,
    nodes: Vec<NodeDef>,
    outside: Vec<OutsideHost>,
    resources: BTreeMap<ResourceKey, std::sync::Arc<Resource>>,
    /// The document each resource was read from (for merge patches).
    docs: BTreeMap<ResourceKey, Node>,
    /// Addresses given to pods, kept when a pod is replaced.
    pod_ips: BTreeMap<ResourceKey, Vec<IpAddr>>,
    /// The node each (not host-networked) pod was first placed on, kept after a
    /// delete: the lab is built once per run, so a pod never changes node.
    pod_nodes: BTreeMap<ResourceKey, String>,
    svc_ips: BTreeMap<ResourceKey, (Option<IpAddr>, Option<IpAddr>)>,
    /// IPAM block affinities with `cluster.blockSize` (block -> node index), kept
    /// when the block empties, as Calico keeps a node's block affinity.
    blocks: BTreeMap<Ipv4Net, usize>,
}

impl World {
    fn inventory(&self) -> Inventory {
        Inventory {
            cluster: self.cluster.clone(),
            nodes: self.nodes.clone(),
            outside: self.outside.clone(),
            resources: self.resources.clone(),
        }
    }

    fn pods(&self) -> impl Iterator<Item = (&ResourceKey, &Resource)> {
        self.resources
            .iter()
            .filter(|(k, _)| k.kind == Kind::Pod)
            .map(|(k, r)| (k, &**r))
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn node_range_v4(&self, idx: usize) -> Option<Ipv4Net> {
        self.cluster.node_pod_range_v4(idx)
    }

    fn node_range_v6(&self, idx: usize) -> Option<Ipv6Net> {
        self.cluster.node_pod_range_v6(idx)
    }

    /// Whether a node, outside host, pod or service (cluster or load-balancer
    /// address) has `ip` now.
    fn holds(&self, ip: IpAddr) -> bool {
        self.nodes
            .iter()
            .any(|n| IpAddr::V4(n.ip) == ip || n.ipv6.map(IpAddr::V6) == Some(ip))
            || self.outside.iter().any(|h| h.ips.contains(&ip))
            || self
                .pod_ips
                .iter()
                .any(|(k, ips)| ips.contains(&ip) && self.resources.contains_key(k))
            || self.svc_ips.iter().any(|(k, (c, l))| {
                (*c == Some(ip) || *l == Some(ip)) && self.resources.contains_key(k)
            })
    }

    /// Every address in use and who holds it.
    fn taken(&self) -> BTreeMap<IpAddr, String> {
        let mut m = BTreeMap::new();
        for n in &self.nodes {
            m.insert(IpAddr::V4(n.ip), format!("node {}", n.name));
        }
        for h in &self.outside {
            for ip in &h.ips {
                m.insert(*ip, format!("outside host {}", h.name));
            }
        }
        for (k, ips) in &self.pod_ips {
            if self.resources.contains_key(k) {
                for ip in ips {
                    m.insert(*ip, format!("pod {}", ns_name(k)));
                }
            }
        }
        for (k, (c, l)) in &self.svc_ips {
            if self.resources.contains_key(k) {
                for ip in [c, l].into_iter().flatten() {
                    m.insert(*ip, format!("service {}", ns_name(k)));
                }
            }
        }
        m
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        ns == "default"
            || self.resources.contains_key(&ResourceKey {
                kind: Kind::Namespace,
                namespace: None,
                name: ns.to_string(),
            })
    }

    fn pod_ips_of(&self, ns: &str, name: &str) -> Vec<IpAddr> {
        self.pod_ips
            .get(&pod_key(ns, name))
            .cloned()
            .unwrap_or_default()
    }

    fn service(&self, ns: &str, name: &str) -> Option<&crate::manifest::types::ServiceSpec> {
        match &self
            .resources
            .get(&ResourceKey {
                kind: Kind::Service,
                namespace: Some(ns.to_string()),
                name: name.to_string(),
            })?
            .body
        {
            Body::Service(s) => Some(s),
            _ => None,
        }
    }

    /// Resolves a bare name or `ns/name`.
    fn resolve_name(&self, s: &str) -> Result<Target, String> {
        if let Some((ns, name)) = s.split_once('/') {
            return if self.resources.contains_key(&pod_key(ns, name)) {
                Ok(Target::Pod {
                    namespace: ns.into(),
                    name: name.into(),
                })
            } else {
                Err(format!("unknown pod `{s}`"))
            };
        }
        let mut found = Vec::new();
        for (k, _) in self.pods() {
            if k.name == s {
                found.push(Target::Pod {
                    namespace: k.namespace.clone().unwrap_or_default(),
                    name: s.into(),
                });
            }
        }
        if self.outside.iter().any(|h| h.name == s) {
            found.push(Target::Outside(s.into()));
        }
        if self.nodes.iter().any(|n| n.name == s) {
            found.push(Target::Node(s.into()));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(format!("unknown pod, outside host or node `{s}`")),
            _ => Err(format!(
                "`{s}` is ambiguous: it names {}; write `namespace/name` for a pod",
                found
                    .iter()
                    .map(describe_target)
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
        }
    }

    /// The node of a pod with `spec.hostNetwork: true`.
    fn host_network_node(&self, ns: &str, name: &str) -> Option<String> {
        match &self.resources.get(&pod_key(ns, name))?.body {
            Body::Pod(p) if p.host_network == Some(true) => {
                p.node_name.as_ref().map(|n| n.value.clone())
            }
            _ => None,
        }
    }

    fn addresses(&self, t: &Target) -> Vec<IpAddr> {
        match t {
            Target::Pod { namespace, name } => match self.host_network_node(namespace, name) {
                Some(node) => self.addresses(&Target::Node(node)),
                None => self.pod_ips_of(namespace, name),
            },
            Target::Outside(h) => self
                .outside
                .iter()
                .find(|x| &x.name == h)
                .map(|x| x.ips.clone())
                .unwrap_or_default(),
            Target::Node(n) => self
                .nodes
                .iter()
                .find(|x| &x.name == n)
                .map(|x| vec![IpAddr::V4(x.ip)])
                .unwrap_or_default(),
            Target::Ip(ip) => vec![*ip],
            Target::Service { namespace, name } => self
                .svc_ips
                .get(&ResourceKey {
                    kind: Kind::Service,
                    namespace: Some(namespace.clone()),
                    name: name.clone(),
                })
                .and_then(|(c, _)| *c)
                .into_iter()
                .collect(),
        }
    }
}

fn describe_target(t: &Target) -> String {
    match t {
        Target::Pod { namespace, name } => format!("pod {namespace}/{name}"),
        Target::Outside(h) => format!("outside host {h}"),
        Target::Node(n) => format!("node {n}"),
        Target::Ip(ip) => format!("address {ip}"),
        Target::Service { namespace, name } => format!("service {namespace}/{name}"),
    }
}

fn ns_name(k: &ResourceKey) -> String {
    match &k.namespace {
        Some(ns) => format!("{ns}/{}", k.name),
        None => k.name.clone(),
    }
}

fn pod_key(ns: &str, name: &str) -> ResourceKey {
    ResourceKey {
        kind: Kind::Pod,
        namespace: Some(ns.to_string()),
        name: name.to_string(),
    }
}

struct Ctx<'a> {
    vars: &'a BTreeMap<String, String>,
    world: &'a World,
}

impl Lookup for Ctx<'_> {
    fn lookup(&self, name: &str) -> Result<String, String> {
        if let Some(v) = self.vars.get(name) {
            return Ok(v.clone());
        }
        let Some((what, attr)) = name.rsplit_once('.') else {
            return Err(format!(
                "undefined placeholder `{name}`: define it under `vars:`"
            ));
        };
        let w = self.world;
        if let Some(svc) = what.strip_prefix("svc/") {
            let (ns, n) = svc.split_once('/').unwrap_or(("default", svc));
            let key = ResourceKey {
                kind: Kind::Service,
                namespace: Some(ns.into()),
                name: n.into(),
            };
            let Some((c, l)) = w
                .svc_ips
                .get(&key)
                .filter(|_| w.resources.contains_key(&key))
            else {
                return Err(format!("`${{{name}}}`: unknown service `{ns}/{n}`"));
            };
            let v = match attr {
                "clusterIP" => *c,
                "loadBalancerIP" => *l,
                _ => {
                    return Err(format!(
                    "`${{{name}}}`: a service has `clusterIP` and `loadBalancerIP`, not `{attr}`"
                ))
                }
            };
            return v
                .map(|ip| ip.to_string())
                .ok_or_else(|| format!("`${{{name}}}`: service {ns}/{n} has no {attr}"));
        }
        let t = w
            .resolve_name(what)
            .map_err(|m| format!("`${{{name}}}`: {m}"))?;
        let want_v6 = match attr {
            "ip" => false,
            "ipv6" => true,
            _ => {
                return Err(format!(
                    "`${{{name}}}`: expected `.ip` or `.ipv6` after a pod, host or node name"
                ))
            }
        };
        w.addresses(&t)
            .into_iter()
            .find(|ip| ip.is_ipv6() == want_v6)
            .map(|ip| ip.to_string())
            .ok_or_else(|| format!("`${{{name}}}`: {} has no such address", describe_target(&t)))
    }
}

struct Loader<'a> {
    /// What the structural check rejected: skipped here (already reported).
    checked: super::schema::Checked,
    sources: &'a mut Sources,
    diags: &'a mut Diagnostics,
    file: FileId,
    dir: PathBuf,
    /// Every file the scenario names resolves inside this (canonical) folder.
    root: PathBuf,
    vars: BTreeMap<String, String>,
    world: World,
}

pub(super) fn load(
    sources: &mut Sources,
    file: FileId,
    root: &Path,
    diags: &mut Diagnostics,
) -> Option<Scenario> {
    let before = diags.error_count();
    let text = sources.text(file).to_string();
    let dir = sources
        .path(file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let root_dir = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let (doc, ds) = crate::yaml::parse_single(&text, file);
    diags.extend(ds);
    let doc = doc?;
    let root = &doc.root;
    if root.as_map().is_none() {
        diags.error(
            root.span,
            format!(
                "a scenario is a mapping with `name` and `steps`, found {}",
                root.describe()
            ),
        );
        return None;
    }
    let checked = super::schema::check(root, diags);
    let name_span = root.get("name").map_or(root.span, |n| n.span);
    let name = match root.get("name") {
        Some(_) if checked.rejected("name") => String::new(),
        None => {
            diags.error(root.span, "missing `name`: every scenario needs a name");
            String::new()
        }
        Some(n) => match n.as_str() {
            Some(s)
                if !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
            {
                s.to_string()
            }
            _ => {
                diags.error(
                    n.span,
                    format!("`name` must match [a-z0-9-]+, found {}", n.describe()),
                );
                String::new()
            }
        },
    };
    let description = root
        .get("description")
        .filter(|_| !checked.rejected("description"))
        .and_then(|d| {
            let s = d.as_str().map(str::to_string);
            if s.is_none() && !d.is_null() {
                diags.error(
                    d.span,
                    format!("`description` must be text, found {}", d.describe()),
                );
            }
            s
        });
    let mut vars = BTreeMap::new();
    if let Some(v) = root.get("vars").filter(|_| !checked.rejected("vars")) {
        match v.as_map() {
            Some(entries) => {
                for (k, val) in entries {
                    let key = k.scalar_text().unwrap_or_default();
                    if key.is_empty()
                        || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        || key.starts_with(|c: char| c.is_ascii_digit())
                    {
                        diags.error(
                            k.span,
                            format!(
                                "`{key}` is not a variable name: expected [A-Za-z_][A-Za-z0-9_]*"
                            ),
                        );
                    }
                    match val.scalar_text() {
                        Some(t) if !val.is_null() => {
                            vars.insert(key.to_string(), t.to_string());
                        }
                        _ => diags.error(
                            val.span,
                            format!(
                                "the value of `{key}` must be a string or a number, found {}",
                                val.describe()
                            ),
                        ),
                    }
                }
            }
            None if v.is_null() => {}
            None => diags.error(
                v.span,
                format!(
                    "`vars` must be a mapping of NAME: value, found {}",
                    v.describe()
                ),
            ),
        }
    }
    let mut ld = Loader {
        checked,
        sources,
        diags,
        file,
        dir,
        root: root_dir,
        vars,
        world: World {
            cluster: ClusterConfig::default(),
            lb_cidr: "172.19.0.0/24".parse().ok()?,
            nodes: Vec::new(),
            outside: Vec::new(),
            resources: BTreeMap::new(),
            docs: BTreeMap::new(),
            pod_ips: BTreeMap::new(),
            pod_nodes: BTreeMap::new(),
            svc_ips: BTreeMap::new(),
            blocks: BTreeMap::new(),
        },
    };
    ld.cluster(root.get("cluster"));
    ld.outside(root.get("outside"));
    let pending = ld.short_form_resources(root.get("cluster"));
    for (doc, span) in pending {
        ld.apply_docs(vec![doc], false, span, false);
    }
    let inventory0 = ld.world.inventory();
    let mut steps = Vec::new();
    let mut states = Vec::new();
    match root.get("steps") {
        None => ld.diags.error(
            root.span,
            "missing `steps`: a scenario needs at least one step",
        ),
        Some(s) => match s.as_seq() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(step) = ld.step(item, i) {
                        steps.push(Spanned::new(item.span, step));
                        states.push(ld.world.inventory());
                    }
                }
            }
            None => ld.diags.error(
                s.span,
                format!("`steps` must be a list, found {}", s.describe()),
            ),
        },
    }
    if ld.diags.error_count() > before {
        return None;
    }
    Some(Scenario {
        name,
        name_span,
        description,
        file,
        vars: ld.vars.clone(),
        inventory0,
        steps,
        states,
    })
}

/// Why `h` cannot be one of an outside host's `hostnames:` (empty when it can): the
/// feed puller resolves it and the lab's CA writes it into a certificate as a DNS
/// name (an IA5String: ASCII only), so it must be an ASCII DNS name, any case
/// (decision `scenario-names`).
fn hostname_problems(h: &str) -> Vec<String> {
    if !h.is_ascii() {
        return vec![
            "must be ASCII (a DNS name; write an internationalized name in its punycode form, `xn--...`)"
                .into(),
        ];
    }
    let lower = h.to_ascii_lowercase();
    let mut out = Vec::new();
    if h.len() > 253 {
        out.push("must be no more than 253 characters".into());
    }
    if !crate::manifest::names::dns1123_subdomain(&lower).is_empty()
        || h.split('.').any(|l| l.len() > 63)
    {
        out.push(
            "must be a DNS name: dot-separated labels of 1 to 63 letters, digits or '-', each starting and ending with a letter or digit (any case)"
                .into(),
        );
    }
    out
}

/// Rebuilds the allocator's view of an inventory (addresses of pods and services
/// as written into the resources), for reading probes against a later state.
fn world_of(inv: &Inventory) -> World {
    let mut pod_ips = BTreeMap::new();
    let mut svc_ips = BTreeMap::new();
    for (k, r) in &inv.resources {
        match &r.body {
            Body::Pod(_) => {
                let list: Vec<String> = r
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(IP_ADDRS_ANNOTATION))
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default();
                let ips = list
                    .iter()
                    .filter_map(|s| s.split('/').next().and_then(|a| a.parse::<IpAddr>().ok()))
                    .collect();
                pod_ips.insert(k.clone(), ips);
            }
            Body::Service(svc) => {
                let ip = |v: &Option<Spanned<String>>| {
                    v.as_ref().and_then(|s| s.value.parse::<IpAddr>().ok())
                };
                svc_ips.insert(k.clone(), (ip(&svc.cluster_ip), ip(&svc.load_balancer_ip)));
            }
            _ => {}
        }
    }
    World {
        cluster: inv.cluster.clone(),
        lb_cidr: "172.19.0.0/24".parse().unwrap_or_default(),
        nodes: inv.nodes.clone(),
        outside: inv.outside.clone(),
        resources: inv.resources.clone(),
        docs: BTreeMap::new(),
        pod_ips,
        pod_nodes: BTreeMap::new(),
        svc_ips,
        blocks: BTreeMap::new(),
    }
}

/// Reads a probe written on its own (the short form `FROM -> TO[:PORT][/PROTO]`,
/// or a flow mapping `{from: ..., to: ..., port: ...}`) against the cluster `inv`,
/// with the scenario's `vars`. `file` holds the text; problems point into it.
pub(super) fn parse_probe(
    sources: &mut Sources,
    file: FileId,
    inv: &Inventory,
    vars: &BTreeMap<String, String>,
    diags: &mut Diagnostics,
) -> Option<Probe> {
    let before = diags.error_count();
    let text = sources.text(file).to_string();
    let (doc, ds) = crate::yaml::parse_single(&text, file);
    diags.extend(ds);
    let mut node = doc?.root;
    let world = world_of(inv);
    {
        let ctx = Ctx {
            vars,
            world: &world,
        };
        vars::substitute_node(&mut node, &ctx, diags);
    }
    if diags.error_count() > before {
        return None;
    }
    let mut ld = Loader {
        sources,
        diags,
        file,
        dir: PathBuf::new(),
        // A probe names no file.
        root: PathBuf::new(),
        vars: vars.clone(),
        world,
        checked: Default::default(),
    };
    let p = ld.probe_step(&node, &node);
    if ld.diags.error_count() > before {
        return None;
    }
    p
}

fn parse_l4(s: &Spanned<String>, diags: &mut Diagnostics) -> Option<L4> {
    match s.value.to_ascii_uppercase().as_str() {
        "TCP" => Some(L4::Tcp),
        "UDP" => Some(L4::Udp),
        "SCTP" => Some(L4::Sctp),
        _ => {
            diags.error(
                s.span,
                format!(
                    "unknown protocol `{}` (expected one of: TCP, UDP, SCTP)",
                    s.value
                ),
            );
            None
        }
    }
}

fn l4_name(p: L4) -> &'static str {
    match p {
        L4::Tcp => "TCP",
        L4::Udp => "UDP",
        L4::Sctp => "SCTP",
    }
}

fn port_num(p: &Spanned<i64>, diags: &mut Diagnostics) -> Option<u16> {
    match u16::try_from(p.value) {
        Ok(n) if n > 0 => Some(n),
        _ => {
            diags.error(p.span, format!("`{}` is not a port (1-65535)", p.value));
            None
        }
    }
}

fn ports(raw: &Option<Vec<Spanned<RawPort>>>, diags: &mut Diagnostics) -> Vec<PortDef> {
    let mut out = Vec::new();
    for p in raw.iter().flatten() {
        let port = port_num(&p.port, diags);
        let proto = match &p.protocol {
            Some(s) => parse_l4(s, diags),
            None => Some(L4::Tcp),
        };
        if let (Some(port), Some(protocol)) = (port, proto) {
            out.push(PortDef {
                name: p.name.as_ref().map(|n| n.value.clone()),
                port,
                protocol,
            });
        }
    }
    out
}

/// Each label of the short form points at its own value.
fn labels_respan(at: &[&str], l: &Option<super::raw::Labels>) -> Vec<(Vec<String>, Span)> {
    l.iter()
        .flatten()
        .map(|(k, v)| {
            let mut path: Vec<String> = at.iter().map(|s| s.to_string()).collect();
            path.push(k.clone());
            (path, v.span)
        })
        .collect()
}

fn labels_json(l: &Option<super::raw::Labels>) -> Json {
    Json::Object(
        l.iter()
            .flatten()
            .map(|(k, v)| (k.clone(), Json::String(v.value.clone())))
            .collect(),
    )
}

fn parse_ip(s: &Spanned<String>, diags: &mut Diagnostics) -> Option<IpAddr> {
    match s.value.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            diags.error(s.span, format!("`{}` is not an IP address", s.value));
            None
        }
    }
}

/// Converts the text of a string node that holds YAML into the Origin of its first
/// character in the file.
fn embedded_origin(file_text: &str, node: &Node) -> Origin {
    let style = node.scalar().map(|s| s.style).unwrap_or(Style::Plain);
    let line = node.span.line;
    if style.is_block() {
        // The content starts on the line after the indicator, at the indentation of
        // its first non-blank line.
        // The node's span is at the indicator or (depending on the parser) at the
        // first content line; look at the text to know which.
        let at_indicator = file_text
            .split('\n')
            .nth(line.saturating_sub(1) as usize)
            .and_then(|l| l.chars().nth(node.span.col.saturating_sub(1) as usize))
            .is_some_and(|c| c == '|' || c == '>');
        let line = if at_indicator {
            line
        } else {
            line.saturating_sub(1)
        };
        let indent = file_text
            .split('\n')
            .skip(line as usize)
            .find(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start_matches(' ').len())
            .unwrap_or(0);
        Origin {
            line_offset: line,
            col_offset: indent as u32,
        }
    } else {
        let quote = u32::from(style != Style::Plain);
        Origin {
            line_offset: line.saturating_sub(1),
            col_offset: node.span.col.saturating_sub(1) + quote,
        }
    }
}

fn json_merge(target: &mut Json, patch: &Json) {
    match patch {
        Json::Object(p) => {
            if !target.is_object() {
                *target = Json::Object(Default::default());
            }
            if let Json::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.shift_remove(k);
                    } else {
                        json_merge(t.entry(k.clone()).or_insert(Json::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

impl Loader<'_> {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.error(span, msg);
    }

    fn typed<'n, T: serde::Deserialize<'n>>(&mut self, node: &'n Node) -> Option<T> {
        from_node(node).map_err(|d| self.diags.push(d)).ok()
    }

    fn cidr<N: std::str::FromStr>(&mut self, n: &Node, what: &str) -> Option<N> {
        let t = n.scalar_text().unwrap_or_default();
        match t.parse::<N>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(
                    n.span,
                    format!(
                        "`{what}` must be a CIDR such as 10.244.0.0/16, found {}",
                        n.describe()
                    ),
                );
                None
            }
        }
    }

    fn list<'n>(&mut self, n: Option<&'n Node>, what: &str) -> &'n [Node] {
        match n {
            None => &[],
            Some(n) if n.is_null() => &[],
            Some(n) => match n.as_seq() {
                Some(s) => s,
                None => {
                    self.err(
                        n.span,
                        format!("`{what}` must be a list, found {}", n.describe()),
                    );
                    &[]
                }
            },
        }
    }

    /// The entries of a list of the file at `path` that the structural check
    /// accepted (none when the list itself was rejected).
    fn entries<'n>(&self, n: Option<&'n Node>, path: &str) -> Vec<&'n Node> {
        if self.checked.broken(path) {
            return Vec::new();
        }
        let items = n.and_then(Node::as_seq).unwrap_or_default();
        items
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.checked.rejected(&format!("{path}[{i}]")))
            .map(|(_, n)| n)
            .collect()
    }

    fn cluster(&mut self, node: Option<&Node>) {
        let mut node_list: Vec<&Node> = Vec::new();
        let node = node.filter(|_| !self.checked.broken("cluster"));
        if let Some(c) = node.filter(|c| !c.is_null()) {
            if c.as_map().is_none() {
                self.err(
                    c.span,
                    format!("`cluster` must be a mapping, found {}", c.describe()),
                );
                return self.default_node();
            }
            let checked = std::mem::take(&mut self.checked);
            let field = |k: &str| {
                c.get(k)
                    .filter(|_| !checked.rejected(&format!("cluster.{k}")))
            };
            if let Some(n) = field("blockSize") {
                match n.scalar_text().and_then(|t| t.parse::<u8>().ok()) {
                    // Calico's IPPool validation: an IPv4 block is /20 to /32.
                    Some(b) if (20..=32).contains(&b) => self.world.cluster.block_size = Some(b),
                    _ => self.err(
                        n.span,
                        format!(
                            "`blockSize` must be a prefix length from 20 to 32 (Calico's default is 26), found {}",
                            n.describe()
                        ),
                    ),
                }
            }
            if let Some(n) = field("podCIDR") {
                if let Some(v) = self.cidr::<Ipv4Net>(n, "podCIDR") {
                    match self.world.cluster.block_size {
                        Some(b) if v.prefix_len() > b => self.err(
                            n.span,
                            format!("`podCIDR` must hold at least one /{b} block (`blockSize`)"),
                        ),
                        Some(_) => {}
                        None if v.prefix_len() > 23 => self.err(
                            n.span,
                            "`podCIDR` must be /23 or larger: node n gets its n-th /24",
                        ),
                        None => {}
                    }
                    self.world.cluster.pod_cidr = v.trunc();
                }
            }
            if let Some(n) = field("podCIDRv6") {
                if let Some(v) = self.cidr::<Ipv6Net>(n, "podCIDRv6") {
                    if v.prefix_len() > 63 {
                        self.err(
                            n.span,
                            "`podCIDRv6` must be /63 or larger: node n gets its n-th /64",
                        );
                    }
                    self.world.cluster.pod_cidr_v6 = Some(v.trunc());
                }
            }
            if let Some(n) = field("serviceCIDR") {
                if let Some(v) = self.cidr::<Ipv4Net>(n, "serviceCIDR") {
                    self.world.cluster.service_cidr = v.trunc();
                }
            }
            if let Some(n) = field("loadBalancerCIDR") {
                if let Some(v) = self.cidr::<Ipv4Net>(n, "loadBalancerCIDR") {
                    self.world.lb_cidr = v.trunc();
                }
            }
            let cl = &self.world.cluster;
            let ranges = [
                ("podCIDR", IpNet::V4(cl.pod_cidr)),
                ("serviceCIDR", IpNet::V4(cl.service_cidr)),
                ("the fabric", IpNet::V4(cl.node_cidr)),
                ("loadBalancerCIDR", IpNet::V4(self.world.lb_cidr)),
            ];
            for i in 0..ranges.len() {
                for j in i + 1..ranges.len() {
                    let (a, b) = (ranges[i].1, ranges[j].1);
                    if a.contains(&b.network()) || b.contains(&a.network()) {
                        self.err(
                            c.span,
                            format!("{} ({a}) overlaps {} ({b})", ranges[i].0, ranges[j].0),
                        );
                    }
                }
            }
            self.checked = checked;
            node_list = self.entries(c.get("nodes"), "cluster.nodes");
        }
        let mut next = 11u32;
        for n in node_list {
            let Some(raw) = self.typed::<RawNode>(n) else {
                continue;
            };
            if self.world.nodes.iter().any(|x| x.name == raw.name.value) {
                self.err(
                    raw.name.span,
                    format!("duplicate node name `{}`", raw.name.value),
                );
                continue;
            }
            // A node is a Kubernetes Node: its name is a DNS-1123 subdomain
            // (decision `scenario-names`).
            if self.bad_name(&raw.name, "node") {
                continue;
            }
            let ip = match &raw.ip {
                Some(s) => match parse_ip(s, self.diags) {
                    Some(IpAddr::V4(ip)) => ip,
                    Some(IpAddr::V6(_)) => {
                        self.err(s.span, "a node's `ip` is its IPv4 address on the fabric");
                        continue;
                    }
                    None => continue,
                },
                None => loop {
                    let base = u32::from(self.world.cluster.node_cidr.network());
                    let ip = Ipv4Addr::from(base + next);
                    next += 1;
                    if !self.world.nodes.iter().any(|x| x.ip == ip) {
                        break ip;
                    }
                },
            };
            let span = raw.ip.as_ref().map_or(raw.name.span, |s| s.span);
            self.check_free(IpAddr::V4(ip), span, &format!("node {}", raw.name.value));
            self.check_not_in_ranges(IpAddr::V4(ip), span, true);
            let mut interfaces = vec!["eth0".to_string()];
            for i in raw.interfaces.iter().flatten() {
                if !interfaces.contains(&i.value) {
                    interfaces.push(i.value.clone());
                }
            }
            let ports = ports(&raw.ports, self.diags);
            self.world.nodes.push(NodeDef {
                name: raw.name.value.clone(),
                span: raw.name.span,
                ip,
                ipv6: None,
                labels: raw
                    .labels
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect(),
                interfaces,
                ports,
            });
        }
        if self.world.nodes.is_empty() {
            self.default_node();
        }
    }

    fn default_node(&mut self) {
        if self.world.nodes.is_empty() {
            self.world.nodes.push(NodeDef {
                name: "node-1".into(),
                span: Span::new(self.file, 1, 1),
                ip: Ipv4Addr::new(172, 18, 0, 11),
                ipv6: None,
                labels: BTreeMap::new(),
                interfaces: vec!["eth0".into()],
                ports: Vec::new(),
            });
        }
    }

    /// Reports a node or outside host name that is not a DNS-1123 subdomain
    /// (decision `scenario-names`); true when it is not.
    fn bad_name(&mut self, name: &Spanned<String>, what: &str) -> bool {
        let problems = crate::manifest::names::dns1123_subdomain(&name.value);
        for p in &problems {
            self.err(name.span, format!("{what} name `{}`: {p}", name.value));
        }
        !problems.is_empty()
    }

    /// An address must not be in the pod, service or fabric ranges (unless `fabric_ok`).
    fn check_not_in_ranges(&mut self, ip: IpAddr, span: Span, fabric_ok: bool) {
        let cl = &self.world.cluster;
        let hit = match ip {
            IpAddr::V4(v4) => {
                if cl.pod_cidr.contains(&v4) {
                    Some(("podCIDR", cl.pod_cidr.to_string()))
                } else if cl.service_cidr.contains(&v4) {
                    Some(("serviceCIDR", cl.service_cidr.to_string()))
                } else if !fabric_ok && cl.node_cidr.contains(&v4) {
                    Some(("the fabric", cl.node_cidr.to_string()))
                } else {
                    None
                }
            }
            IpAddr::V6(v6) => cl
                .pod_cidr_v6
                .filter(|n| n.contains(&v6))
                .map(|n| ("podCIDRv6", n.to_string())),
        };
        if let Some((what, net)) = hit {
            self.err(
                span,
                format!("{ip} is in {what} ({net}): use an address outside the cluster's ranges"),
            );
        }
    }

    fn check_free(&mut self, ip: IpAddr, span: Span, who: &str) -> bool {
        if let Some(owner) = self.world.taken().get(&ip) {
            if owner != who {
                self.err(span, format!("{ip} is already the address of {owner}"));
                return false;
            }
        }
        true
    }

    fn outside(&mut self, node: Option<&Node>) {
        for n in self.entries(node, "outside") {
            let mut stripped = n.clone();
            let mut ip_node = None;
            if let Value::Map(entries) = &mut stripped.value {
                if let Some(i) = entries
                    .iter()
                    .position(|(k, _)| k.scalar_text() == Some("ip"))
                {
                    ip_node = Some(entries.remove(i).1);
                }
            }
            let Some(raw) = self.typed::<RawOutside>(&stripped) else {
                continue;
            };
            let name = raw.name.value.clone();
            if self.world.outside.iter().any(|h| h.name == name) {
                self.err(raw.name.span, format!("duplicate outside host `{name}`"));
                continue;
            }
            // Decision `scenario-names`: probes name hosts in `FROM -> TO:PORT/PROTO`.
            if self.bad_name(&raw.name, "outside host") {
                continue;
            }
            for h in raw.hostnames.iter().flatten() {
                for problem in hostname_problems(&h.value) {
                    self.err(h.span, format!("hostname `{}`: {problem}", h.value));
                }
            }
            let mut ips = Vec::new();
            match &ip_node {
                None => self.err(
                    n.span,
                    format!("outside host `{name}` needs `ip` (one address or a list)"),
                ),
                Some(i) => {
                    let items: Vec<&Node> = match i.as_seq() {
                        Some(s) => s.iter().collect(),
                        None => vec![i],
                    };
                    for item in items {
                        let s = Spanned::new(
                            item.span,
                            item.scalar_text().unwrap_or_default().to_string(),
                        );
                        if let Some(ip) = parse_ip(&s, self.diags) {
                            if self.check_free(ip, s.span, &format!("outside host {name}")) {
                                self.check_not_in_ranges(ip, s.span, false);
                            }
                            if self.world.nodes.iter().any(|x| IpAddr::V4(x.ip) == ip) {
                                continue;
                            }
                            ips.push(ip);
                        }
                    }
                }
            }
            let mut files = BTreeMap::new();
            for (url, f) in raw.files.iter().flatten() {
                if !url.starts_with('/') {
                    self.err(f.span, format!("served path `{url}` must start with `/`"));
                }
                if let Some((path, contents)) = self.read_aux(f) {
                    files.insert(url.clone(), ServedFile { path, contents });
                }
            }
            let ports = ports(&raw.ports, self.diags);
            self.world.outside.push(OutsideHost {
                name,
                span: raw.name.span,
                ips,
                ports,
                hostnames: raw
                    .hostnames
                    .iter()
                    .flatten()
                    .map(|h| h.value.clone())
                    .collect(),
                files,
            });
        }
    }

    /// The real path of a file named relative to the scenario's directory, when
    /// it stays inside the scenario's root (else an error at `span`).
    fn confined(&mut self, named: &str, span: Span, what: &str) -> Option<PathBuf> {
        match super::paths::confine(&self.root, &self.dir, named) {
            Ok(real) => Some(real),
            Err(super::paths::Refused::Unreadable(e)) => {
                // The messages of before confinement: "cannot read manifest `p`"
                // and, for served files, "cannot read `p`".
                let path = crate::diag::display_path(&self.dir.join(named));
                let what = if what == "manifest" { "manifest " } else { "" };
                self.err(span, format!("cannot read {what}`{path}`: {e}"));
                None
            }
            Err(why) => {
                self.err(span, super::paths::refusal(named, &self.root, &why, what));
                None
            }
        }
    }

    /// Reads a file named relative to the scenario's directory, inside its root.
    fn read_aux(&mut self, f: &Spanned<String>) -> Option<(PathBuf, String)> {
        let path = self.dir.join(&f.value);
        let real = self.confined(&f.value, f.span, "file")?;
        match crate::diag::read_regular_file(&real) {
            Ok(t) => Some((path, t)),
            Err(e) => {
                self.err(
                    f.span,
                    format!("cannot read `{}`: {e}", crate::diag::display_path(&path)),
                );
                None
            }
        }
    }

    /// The short form as manifests (documents at the short form's positions).
    fn short_form_resources(&mut self, node: Option<&Node>) -> Vec<(Document, Span)> {
        let mut out = Vec::new();
        let Some(c) = node
            .filter(|c| c.as_map().is_some())
            .filter(|_| !self.checked.broken("cluster"))
        else {
            return out;
        };
        // `re`: subtrees that point at their own entry of the short form instead of
        // the object's name (a bad port's caret is on the port).
        let mut doc = |v: Json, span: Span, re: Vec<(Vec<String>, Span)>| {
            let mut root = Node::from_json(&v, span);
            for (path, s) in &re {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                root.respan(&path, *s);
            }
            out.push((Document { span, root }, span))
        };
        for n in self.entries(c.get("namespaces"), "cluster.namespaces") {
            let Some(raw) = self.typed::<RawNamespace>(n) else {
                continue;
            };
            doc(
                json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": raw.name.value, "labels": labels_json(&raw.labels)}}),
                raw.name.span,
                labels_respan(&["metadata", "labels"], &raw.labels),
            );
        }
        for n in self.entries(c.get("serviceAccounts"), "cluster.serviceAccounts") {
            let Some(raw) = self.typed::<RawServiceAccount>(n) else {
                continue;
            };
            let ns = raw
                .namespace
                .as_ref()
                .map_or("default", |s| s.value.as_str());
            doc(
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": raw.name.value, "namespace": ns, "labels": labels_json(&raw.labels)}}),
                raw.name.span,
                labels_respan(&["metadata", "labels"], &raw.labels),
            );
        }
        let first_node = self
            .world
            .nodes
            .first()
            .map(|n| n.name.clone())
            .unwrap_or_default();
        for n in self.entries(c.get("pods"), "cluster.pods") {
            let Some(raw) = self.typed::<RawPod>(n) else {
                continue;
            };
            let ns = raw
                .namespace
                .as_ref()
                .map_or("default", |s| s.value.as_str());
            let node = raw
                .node
                .as_ref()
                .map_or(first_node.as_str(), |s| s.value.as_str());
            let sa = raw
                .service_account
                .as_ref()
                .map_or("default", |s| s.value.as_str());
            let mut cports = Vec::new();
            let mut re = labels_respan(&["metadata", "labels"], &raw.labels);
            for (i, p) in raw.ports.iter().flatten().enumerate() {
                let at = |f: &str| -> Vec<String> {
                    ["spec", "containers", "0", "ports", &i.to_string(), f]
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                };
                re.push((at("containerPort"), p.port.span));
                if let Some(n) = &p.name {
                    re.push((at("name"), n.span));
                }
                if let Some(pr) = &p.protocol {
                    re.push((at("protocol"), pr.span));
                }
                let proto = match &p.protocol {
                    Some(s) => parse_l4(s, self.diags),
                    None => Some(L4::Tcp),
                };
                let mut cp = json!({"containerPort": p.port.value, "protocol": proto.map_or("TCP", l4_name)});
                if let Some(name) = &p.name {
                    cp["name"] = json!(name.value);
                }
                cports.push(cp);
            }
            let replicas = match &raw.replicas {
                None => None,
                Some(r) if (1..=1000).contains(&r.value) => Some(r.value),
                Some(r) => {
                    self.err(
                        r.span,
                        format!("`replicas` must be 1 to 1000, found {}", r.value),
                    );
                    continue;
                }
            };
            if let (Some(ip), Some(r)) = (&raw.ip, replicas) {
                if r > 1 {
                    self.err(
                        ip.span,
                        "`ip` pins one address; it cannot be used with `replicas` above 1",
                    );
                    continue;
                }
            }
            let names: Vec<String> = match replicas {
                None => vec![raw.name.value.clone()],
                Some(r) => (0..r).map(|i| format!("{}-{i}", raw.name.value)).collect(),
            };
            for name in names {
                let mut v = json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": ns, "labels": labels_json(&raw.labels)},
                    "spec": {"nodeName": node, "serviceAccountName": sa,
                        "containers": [{"name": "main", "image": "policylab/echoserver", "ports": cports.clone()}]}});
                if let Some(ip) = &raw.ip {
                    v["metadata"]["annotations"] =
                        json!({IP_ADDRS_ANNOTATION: json!([ip.value]).to_string()});
                }
                doc(v, raw.name.span, re.clone());
            }
        }
        for n in self.entries(c.get("services"), "cluster.services") {
            let Some(raw) = self.typed::<RawService>(n) else {
                continue;
            };
            let ns = raw
                .namespace
                .as_ref()
                .map_or("default", |s| s.value.as_str());
            let mut sports = Vec::new();
            let mut re = labels_respan(&["spec", "selector"], &raw.selector);
            for (i, entry) in raw.ports.iter().flatten().enumerate() {
                let p = &entry.value;
                let at = |f: Option<&str>| -> Vec<String> {
                    ["spec", "ports", &i.to_string()]
                        .into_iter()
                        .chain(f)
                        .map(|s| s.to_string())
                        .collect()
                };
                re.push((at(None), entry.span));
                re.push((at(Some("port")), p.port.span));
                if let Some(t) = &p.target_port {
                    re.push((at(Some("targetPort")), t.span));
                }
                if let Some(np) = &p.node_port {
                    re.push((at(Some("nodePort")), np.span));
                }
                if let Some(pr) = &p.protocol {
                    re.push((at(Some("protocol")), pr.span));
                }
                if let Some(name) = &p.name {
                    re.push((at(Some("name")), name.span));
                }
                let mut sp = json!({"port": p.port.value});
                if let Some(t) = &p.target_port {
                    sp["targetPort"] = serde_json::to_value(&t.value).unwrap_or(Json::Null);
                }
                if let Some(np) = &p.node_port {
                    sp["nodePort"] = json!(np.value);
                }
                if let Some(pr) = &p.protocol {
                    sp["protocol"] = json!(pr.value.to_ascii_uppercase());
                }
                if let Some(name) = &p.name {
                    sp["name"] = json!(name.value);
                }
                sports.push(sp);
            }
            let mut spec = json!({"ports": sports, "selector": labels_json(&raw.selector)});
            if let Some(t) = &raw.service_type {
                spec["type"] = json!(t.value);
            }
            if let Some(l) = &raw.load_balancer_ip {
                spec["loadBalancerIP"] = json!(l.value);
            }
            if let Some(e) = &raw.external_traffic_policy {
                spec["externalTrafficPolicy"] = json!(e.value);
            }
            doc(
                json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": raw.name.value, "namespace": ns}, "spec": spec}),
                raw.name.span,
                re,
            );
        }
        out
    }

    // ------------------------------------------------------------------ steps

    fn step(&mut self, item: &Node, index: usize) -> Option<Step> {
        let Some(map) = item.as_map() else {
            self.err(
                item.span,
                format!(
                    "a step is a mapping with one verb ({}), found {}",
                    one_of(VERBS),
                    item.describe()
                ),
            );
            return None;
        };
        let verbs: Vec<&(Node, Node)> = map
            .iter()
            .filter(|(k, _)| VERBS.contains(&k.scalar_text().unwrap_or_default()))
            .collect();
        let Some((vk, vv)) = verbs.first().map(|(k, v)| (k, v)) else {
            let keys: Vec<&str> = map.iter().filter_map(|(k, _)| k.scalar_text()).collect();
            let (span, msg) = match map
                .iter()
                .find(|(k, _)| !PROBE_OPTIONS.contains(&k.scalar_text().unwrap_or_default()))
            {
                Some((k, _)) => (
                    k.span,
                    format!(
                        "unknown step verb `{}` (expected one of: {})",
                        k.scalar_text().unwrap_or_default(),
                        one_of(VERBS)
                    ),
                ),
                None => (
                    item.span,
                    format!(
                        "a step needs one verb ({}); found only {}",
                        one_of(VERBS),
                        keys.join(", ")
                    ),
                ),
            };
            self.err(span, msg);
            return None;
        };
        let verb = vk.scalar_text().unwrap_or_default();
        if let Some((k2, _)) = verbs.get(1) {
            self.err(k2.span, format!("two verbs in one step: `{verb}` and `{}` (a step has exactly one; split it into two steps)", k2.scalar_text().unwrap_or_default()));
            return None;
        }
        match verb {
            // Their strings are paths, references and manifests: not substituted here.
            "apply" | "create" | "delete"
                if !super::schema::check_step(item, index, verb, self.diags) =>
            {
                None
            }
            "apply" | "create" => self.apply_step(vv, verb == "create"),
            "delete" => self.delete_step(vv),
            _ => {
                // Every string of the step gets placeholders substituted.
                let mut step = item.clone();
                let before = self.diags.error_count();
                let ctx = Ctx {
                    vars: &self.vars,
                    world: &self.world,
                };
                vars::substitute_node(&mut step, &ctx, self.diags);
                if self.diags.error_count() > before
                    || !super::schema::check_step(&step, index, verb, self.diags)
                {
                    return None;
                }
                let v = step.get(verb)?;
                match verb {
                    "patch" => self.patch_step(v),
                    "probe" => self.probe_step(&step, v).map(Step::Probe),
                    "matrix" => self.matrix_step(&step, v).map(Step::Matrix),
                    "serve" => self.serve_step(v),
                    "advance" => self.duration(v).map(Step::Advance),
                    "fail" => self.host(v).map(Step::Fail),
                    "recover" => self.host(v).map(Step::Recover),
                    _ => None,
                }
            }
        }
    }

    fn string<'n>(&mut self, v: &'n Node, what: &str) -> Option<&'n str> {
        match v.scalar_text() {
            Some(s) if !v.is_null() => Some(s),
            _ => {
                self.err(
                    v.span,
                    format!("{what} must be a string, found {}", v.describe()),
                );
                None
            }
        }
    }

    fn duration(&mut self, v: &Node) -> Option<Duration> {
        let s = self.string(v, "a duration")?;
        short::parse_duration(s)
            .map_err(|m| self.err(v.span, m))
            .ok()
    }

    fn host(&mut self, v: &Node) -> Option<String> {
        let s = self.string(v, "a host name")?;
        if self.world.outside.iter().any(|h| h.name == s) {
            Some(s.to_string())
        } else {
            self.err(v.span, format!("unknown outside host `{s}`"));
            None
        }
    }

    /// The manifests named by an apply/create/delete value: documents, and (for
    /// delete) `Kind/[ns/]name` references.
    fn manifest_docs(
        &mut self,
        v: &Node,
        refs_ok: bool,
    ) -> (Vec<Document>, Vec<(ResourceKey, Span)>) {
        let mut docs = Vec::new();
        let mut refs = Vec::new();
        let items: Vec<&Node> = match v.as_seq() {
            Some(s) => s.iter().collect(),
            None => vec![v],
        };
        for item in items {
            let Some(text) = item.as_str().filter(|_| item.scalar().is_some()) else {
                self.err(
                    item.span,
                    format!(
                        "expected a manifest file path or inline YAML text, found {}",
                        item.describe()
                    ),
                );
                continue;
            };
            if text.contains('\n') {
                let origin = embedded_origin(self.sources.text(self.file), item);
                let (ds, errs) = parse_stream(text, self.file, origin);
                self.diags.extend(errs);
                docs.extend(ds);
                continue;
            }
            if refs_ok {
                if let Some(k) = parse_ref(text) {
                    match k {
                        Ok(key) => refs.push((key, item.span)),
                        Err(m) => self.err(item.span, m),
                    }
                    continue;
                }
            }
            let ctx = Ctx {
                vars: &self.vars,
                world: &self.world,
            };
            let rel = match vars::substitute(text, &ctx) {
                Ok(t) => t,
                Err(es) => {
                    for (off, m) in es {
                        let sp = vars::offset_span(
                            item.span,
                            item.scalar().map_or(Style::Plain, |s| s.style),
                            text,
                            off,
                        );
                        self.err(sp, m);
                    }
                    continue;
                }
            };
            let path = self.dir.join(&rel);
            let Some(real) = self.confined(&rel, item.span, "manifest") else {
                continue;
            };
            match self.sources.read_as(&path, &real) {
                Ok(f) => {
                    let t = self.sources.text(f).to_string();
                    let (ds, errs) = parse_stream(&t, f, Origin::default());
                    self.diags.extend(errs);
                    docs.extend(ds);
                }
                Err(e) => self.err(
                    item.span,
                    format!(
                        "cannot read manifest `{}`: {e}",
                        crate::diag::display_path(&path)
                    ),
                ),
            }
        }
        let ctx = Ctx {
            vars: &self.vars,
            world: &self.world,
        };
        for d in &mut docs {
            vars::substitute_node(&mut d.root, &ctx, self.diags);
        }
        (docs, refs)
    }

    fn apply_step(&mut self, v: &Node, create: bool) -> Option<Step> {
        let before = self.diags.error_count();
        let (docs, _) = self.manifest_docs(v, false);
        let resources = self.apply_docs(docs, create, v.span, true);
        (self.diags.error_count() == before).then_some(Step::Apply { resources, create })
    }

    fn apply_docs(
        &mut self,
        docs: Vec<Document>,
        create: bool,
        span: Span,
        from_text: bool,
    ) -> Vec<Resource> {
        let mut out = Vec::new();
        for d in docs {
            // Documents read from text (a manifest file, or inline in the scenario)
            // get the text of their file, so that a problem inside a multi-line
            // string (a selector's bad character) is placed exactly.
            let text = from_text.then(|| self.sources.text(d.span.file));
            let Some(res) = load_document_in(&d, text, self.diags) else {
                continue;
            };
            if let Some(r) = self.admit(res, Some(d.root), create, span) {
                out.push(r);
            }
        }
        out
    }

    /// Puts a resource into the world (allocating addresses); `None` on error.
    /// A feed URL whose host is an IP literal must name an outside host of the
    /// scenario: the lab has nothing else to connect to (and a kernel run must
    /// not try to reach anything outside it).
    fn check_feed_address(&mut self, spec: &crate::manifest::types::ThreatFeedSpec) -> Option<()> {
        let Some(url) = spec
            .pull
            .as_ref()
            .and_then(|p| p.value.http.as_ref())
            .and_then(|h| h.value.url.as_ref())
        else {
            return Some(());
        };
        let Some(host) = crate::run::feeds::url_host(&url.value) else {
            return Some(());
        };
        let Ok(ip) = host.parse::<IpAddr>() else {
            return Some(());
        };
        if self.world.outside.iter().any(|h| h.ips.contains(&ip)) {
            return Some(());
        }
        self.err(
            url.span,
            format!("feed URL `{}`: the address {ip} belongs to no outside host of the scenario (a feed is pulled from an outside host: name one of their addresses or `hostnames`)", url.value),
        );
        None
    }

    fn admit(
        &mut self,
        mut res: Resource,
        doc: Option<Node>,
        create: bool,
        _span: Span,
    ) -> Option<Resource> {
        let key = res.key();
        let name_span = res.metadata.name.as_ref().map_or(res.span, |n| n.span);
        if key.name.is_empty() {
            self.err(res.span, "missing `metadata.name`");
            return None;
        }
        if let Some(ns) = &key.namespace {
            if !self.world.namespace_exists(ns) {
                let sp = res.metadata.namespace.as_ref().map_or(res.span, |n| n.span);
                self.err(sp, format!("namespace `{ns}` does not exist: list it under `cluster.namespaces` or apply a Namespace first"));
                return None;
            }
        }
        if create && self.world.resources.contains_key(&key) {
            self.err(
                name_span,
                format!("{key} already exists (`create` does not replace; use `apply`)"),
            );
            return None;
        }
        if let Body::ThreatFeed(spec) = &res.body {
            self.check_feed_address(spec)?;
        }
        if let Body::Policy(spec) = &res.body {
            self.check_tier_exists(spec, res.span)?;
        }
        if let Body::HostEndpoint(spec) = &res.body {
            self.check_hep_interface(spec)?;
        }
        if res.kind == Kind::Tier && create && BUILTIN_TIERS.contains(&key.name.as_str()) {
            self.err(
                name_span,
                format!(
                    "{key} already exists: Calico creates the tiers {} itself (`create` does \
                     not replace; use `apply`)",
                    BUILTIN_TIERS.join(", ")
                ),
            );
            return None;
        }
        match res.kind {
            Kind::Pod => self.prepare_pod(&mut res, &key)?,
            Kind::Service => self.prepare_service(&mut res, &key)?,
            Kind::Deployment => {
                self.remove_owned(&key);
                self.expand_deployment(&res, &key)?;
            }
            _ => {}
        }
        if let Some(d) = doc {
            self.world.docs.insert(key.clone(), d);
        }
        self.world
            .resources
            .insert(key, std::sync::Arc::new(res.clone()));
        Some(res)
    }

    /// A policy's tier must exist when the policy is written, as Calico's API
    /// server requires (decision `builtin-tiers`); the built-in tiers always do.
    fn check_tier_exists(&mut self, spec: &PolicySpec, span: Span) -> Option<()> {
        let (tier, sp) = spec
            .tier
            .as_ref()
            .map_or(("default", span), |t| (t.value.as_str(), t.span));
        if BUILTIN_TIERS.contains(&tier) || self.world.resources.contains_key(&tier_key(tier)) {
            return Some(());
        }
        self.err(
            sp,
            format!(
                "tier {tier:?} does not exist: apply a Tier named {tier:?} first (Calico's API \
                 rejects a policy in a missing tier; the built-in tiers are {})",
                BUILTIN_TIERS.join(", ")
            ),
        );
        None
    }

    /// The lab's nodes carry their traffic on `eth0` only: a HostEndpoint for
    /// another interface would police nothing, so it is an error rather than
    /// silently ignored (decision `hep-interfaces`).
    fn check_hep_interface(
        &mut self,
        spec: &crate::manifest::types::HostEndpointSpec,
    ) -> Option<()> {
        let Some(i) = spec.interface_name.as_ref() else {
            return Some(());
        };
        if matches!(i.value.as_str(), "" | "eth0" | "*") {
            return Some(());
        }
        self.err(
            i.span,
            format!(
                "interfaceName {:?}: the lab's nodes send and receive every packet on eth0 \
                 (the uplink to the fabric), so a HostEndpoint on another interface would \
                 police nothing; use \"eth0\" or \"*\"",
                i.value
            ),
        );
        None
    }

    /// Why a tier cannot be deleted now, as Calico's client refuses it
    /// (libcalico-go/lib/clientv3/tier.go `Delete`; decision `builtin-tiers`).
    fn tier_delete_problem(&self, name: &str) -> Option<String> {
        if BUILTIN_TIERS.contains(&name) {
            return Some(format!(
                "the {name:?} tier is built in: Calico does not delete it"
            ));
        }
        let user = self.world.resources.values().find(|r| match &r.body {
            Body::Policy(spec) => spec.tier.as_ref().is_some_and(|t| t.value == name),
            _ => false,
        })?;
        Some(format!(
            "tier {name:?} is not empty ({} is in it): Calico cannot delete a non-empty tier; \
             delete its policies first",
            user.key()
        ))
    }

    fn prepare_pod(&mut self, res: &mut Resource, key: &ResourceKey) -> Option<()> {
        let ns = key.namespace.clone().unwrap_or_default();
        let who = format!("pod {}", ns_name(key));
        let Body::Pod(spec) = &mut res.body else {
            return None;
        };
        let node = match &spec.node_name {
            Some(n) => n.clone(),
            None => {
                let first = self
                    .world
                    .nodes
                    .first()
                    .map(|n| n.name.clone())
                    .unwrap_or_default();
                spec.node_name = Some(Spanned::new(res.span, first.clone()));
                Spanned::new(res.span, first)
            }
        };
        let Some(idx) = self.world.node_index(&node.value) else {
            self.err(
                node.span,
                format!("pod {} runs on unknown node `{}`", ns_name(key), node.value),
            );
            return None;
        };
        let sa = spec
            .service_account_name
            .clone()
            .or_else(|| spec.service_account.clone());
        if let Some(sa) = sa {
            let exists = sa.value == "default"
                || self.world.resources.contains_key(&ResourceKey {
                    kind: Kind::ServiceAccount,
                    namespace: Some(ns.clone()),
                    name: sa.value.clone(),
                });
            if !exists {
                self.err(
                    sa.span,
                    format!(
                        "service account `{}` does not exist in namespace `{ns}`",
                        sa.value
                    ),
                );
                return None;
            }
        }
        if spec.host_network == Some(true) {
            // A host-networked pod has its node's addresses, not a pod address.
            return Some(());
        }
        // Decision `pod-stays-on-its-node`: the lab is built once per run.
        match self.world.pod_nodes.get(key) {
            Some(was) if *was != node.value => {
                self.err(
                    node.span,
                    format!(
                        "pod {} was on node {was} in an earlier step and would move to node {}: policylab builds the lab once per run and cannot move a pod between nodes (give the pod on {} another name)",
                        ns_name(key),
                        node.value,
                        node.value
                    ),
                );
                return None;
            }
            Some(_) => {}
            None => {
                self.world.pod_nodes.insert(key.clone(), node.value.clone());
            }
        }
        let range4 = self.world.node_range_v4(idx);
        let range6 = self.world.node_range_v6(idx);
        let pinned = res
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(IP_ADDRS_ANNOTATION))
            .cloned();
        let ips: Vec<IpAddr> = match pinned {
            Some(text) => {
                let Ok(list) = serde_json::from_str::<Vec<String>>(&text) else {
                    self.err(res.span, format!("annotation {IP_ADDRS_ANNOTATION} must be a JSON list of addresses, found {text:?}"));
                    return None;
                };
                let mut ips = Vec::new();
                for s in list {
                    let Ok(ip) = s.parse::<IpAddr>() else {
                        self.err(res.span, format!("`{s}` is not an IP address"));
                        return None;
                    };
                    if let (IpAddr::V4(v4), Some(_)) = (ip, self.world.cluster.block_size) {
                        if !self.claim_block_of(v4, idx, res.span, &node.value) {
                            return None;
                        }
                        if !self.check_free(ip, res.span, &who) {
                            return None;
                        }
                        ips.push(ip);
                        continue;
                    }
                    let in_range = match ip {
                        IpAddr::V4(v4) => range4.is_some_and(|r| r.contains(&v4)),
                        IpAddr::V6(v6) => range6.is_some_and(|r| r.contains(&v6)),
                    };
                    if !in_range {
                        let r = match ip {
                            IpAddr::V4(_) => range4.map(|r| r.to_string()),
                            IpAddr::V6(_) => range6.map(|r| r.to_string()),
                        };
                        self.err(
                            res.span,
                            format!(
                                "pod {} address {ip} is outside the pod range of node {} ({})",
                                ns_name(key),
                                node.value,
                                r.unwrap_or_else(|| "none".into())
                            ),
                        );
                        return None;
                    }
                    if !self.check_free(ip, res.span, &who) {
                        return None;
                    }
                    ips.push(ip);
                }
                ips
            }
            None => match self.world.pod_ips.get(key) {
                Some(ips) if self.same_node_ips(ips, idx, range4, range6) => ips.clone(),
                _ => {
                    let taken = self.world.taken();
                    let mut ips = Vec::new();
                    if self.world.cluster.block_size.is_some() {
                        match self.block_address(idx, &taken) {
                            Some(ip) => ips.push(IpAddr::V4(ip)),
                            None => {
                                self.err(
                                    res.span,
                                    format!(
                                        "podCIDR {} has no free pod address left for node {} (every /{} block is full or belongs to another node)",
                                        self.world.cluster.pod_cidr,
                                        node.value,
                                        self.world.cluster.block_size.unwrap_or_default()
                                    ),
                                );
                                return None;
                            }
                        }
                    }
                    if let Some(r) = range4 {
                        let base = u32::from(r.network());
                        let ip = (10..255)
                            .map(|o| IpAddr::V4(Ipv4Addr::from(base + o)))
                            .find(|ip| !taken.contains_key(ip));
                        match ip {
                            Some(ip) => ips.push(ip),
                            None => {
                                self.err(
                                    res.span,
                                    format!("node {} has no free pod address left", node.value),
                                );
                                return None;
                            }
                        }
                    }
                    if let Some(r) = range6 {
                        let base = u128::from(r.network());
                        if let Some(ip) = (10..0xffffu128)
                            .map(|o| IpAddr::V6(Ipv6Addr::from(base + o)))
                            .find(|ip| !taken.contains_key(ip))
                        {
                            ips.push(ip);
                        }
                    }
                    ips
                }
            },
        };
        if let Some(was) = self.world.pod_ips.get(key).filter(|was| **was != ips) {
            let was: Vec<String> = was.iter().map(ToString::to_string).collect();
            self.err(
                res.span,
                format!(
                    "pod {} had the addresses {} in an earlier step: policylab builds the lab once per run and cannot readdress a pod (give the pod another name)",
                    ns_name(key),
                    was.join(", ")
                ),
            );
            return None;
        }
        let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
        res.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(IP_ADDRS_ANNOTATION.into(), json!(list).to_string());
        self.world.pod_ips.insert(key.clone(), ips);
        Some(())
    }

    fn same_node_ips(
        &self,
        ips: &[IpAddr],
        idx: usize,
        r4: Option<Ipv4Net>,
        r6: Option<Ipv6Net>,
    ) -> bool {
        let cl = &self.world.cluster;
        ips.iter().all(|ip| match ip {
            IpAddr::V4(v) if cl.block_size.is_some() => cl
                .block_of(*v)
                .is_some_and(|b| self.world.blocks.get(&b) == Some(&idx)),
            IpAddr::V4(v) => r4.is_some_and(|r| r.contains(v)),
            IpAddr::V6(v) => r6.is_some_and(|r| r.contains(v)),
        })
    }

    /// Decision `ipam-blocks`: the lowest free address of the node's blocks (in
    /// block order, from each block's first address, as Calico's IPAM assigns
    /// ordinals); when they are full, the node claims the lowest free block of
    /// `podCIDR`.
    fn block_address(&mut self, idx: usize, taken: &BTreeMap<IpAddr, String>) -> Option<Ipv4Addr> {
        let bs = self.world.cluster.block_size?;
        let free_in = |b: &Ipv4Net| {
            let first = u32::from(b.network());
            let last = u32::from(b.broadcast());
            (first..=last)
                .map(Ipv4Addr::from)
                .find(|a| !taken.contains_key(&IpAddr::V4(*a)))
        };
        for (b, _) in self.world.blocks.iter().filter(|(_, n)| **n == idx) {
            if let Some(a) = free_in(b) {
                return Some(a);
            }
        }
        let pool = self.world.cluster.pod_cidr;
        let block = pool
            .subnets(bs)
            .ok()?
            .find(|b| !self.world.blocks.contains_key(b) && free_in(b).is_some())?;
        self.world.blocks.insert(block, idx);
        free_in(&block)
    }

    /// A pinned address with `cluster.blockSize`: inside `podCIDR`, in a block that
    /// is free (the node claims it) or already the node's.
    fn claim_block_of(&mut self, ip: Ipv4Addr, idx: usize, span: Span, node: &str) -> bool {
        let cl = &self.world.cluster;
        let Some(block) = cl.block_of(ip).filter(|_| cl.pod_cidr.contains(&ip)) else {
            let msg = format!("pod address {ip} is outside podCIDR {}", cl.pod_cidr);
            self.err(span, msg);
            return false;
        };
        match self.world.blocks.get(&block) {
            Some(n) if *n != idx => {
                let owner = self.world.nodes.get(*n).map_or("", |n| n.name.as_str());
                let msg = format!(
                    "pod address {ip} is in IPAM block {block}, which belongs to node {owner}, not {node}"
                );
                self.err(span, msg);
                false
            }
            Some(_) => true,
            None => {
                self.world.blocks.insert(block, idx);
                true
            }
        }
    }

    fn prepare_service(&mut self, res: &mut Resource, key: &ResourceKey) -> Option<()> {
        let who = format!("service {}", ns_name(key));
        let cl = self.world.cluster.clone();
        let lb_cidr = self.world.lb_cidr;
        let prev = self.world.svc_ips.get(key).copied();
        let taken = self.world.taken();
        let used_node_ports: BTreeSet<i64> = self
            .world
            .resources
            .iter()
            .filter(|(k, _)| *k != key)
            .filter_map(|(_, r)| match &r.body {
                Body::Service(s) => Some(
                    s.ports
                        .iter()
                        .filter_map(|p| p.node_port.as_ref().map(|n| n.value))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        let span = res.span;
        let Body::Service(spec) = &mut res.body else {
            return None;
        };
        let ty = spec
            .service_type
            .as_ref()
            .map_or("ClusterIP", |t| t.value.as_str())
            .to_string();
        if !matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
            let sp = spec.service_type.as_ref().map_or(span, |t| t.span);
            self.err(sp, format!("unknown service type `{ty}` (expected one of: ClusterIP, LoadBalancer, NodePort)"));
            return None;
        }
        if let Some(e) = &spec.external_traffic_policy {
            if !matches!(e.value.as_str(), "Cluster" | "Local") {
                self.err(
                    e.span,
                    format!(
                        "unknown externalTrafficPolicy `{}` (expected one of: Cluster, Local)",
                        e.value
                    ),
                );
                return None;
            }
        }
        let cluster_ip = match &spec.cluster_ip {
            Some(c) if c.value == "None" => None,
            Some(c) => {
                let ip = parse_ip(c, self.diags)?;
                if !matches!(ip, IpAddr::V4(v) if cl.service_cidr.contains(&v)) {
                    self.err(
                        c.span,
                        format!(
                            "clusterIP {ip} is outside serviceCIDR ({})",
                            cl.service_cidr
                        ),
                    );
                    return None;
                }
                if !self.check_free(ip, c.span, &who) {
                    return None;
                }
                Some(ip)
            }
            None => match prev.and_then(|p| p.0) {
                Some(ip) => Some(ip),
                None => {
                    let base = u32::from(cl.service_cidr.network());
                    let Some(ip) = (10..cl.service_cidr.hosts().count() as u32)
                        .map(|o| IpAddr::V4(Ipv4Addr::from(base + o)))
                        .find(|ip| !taken.contains_key(ip))
                    else {
                        self.err(span, "serviceCIDR has no free address left");
                        return None;
                    };
                    Some(ip)
                }
            },
        };
        if let Some(ip) = cluster_ip {
            if spec.cluster_ip.is_none() {
                spec.cluster_ip = Some(Spanned::new(span, ip.to_string()));
            }
        }
        let mut lb_ip = None;
        if ty == "LoadBalancer" {
            lb_ip = match &spec.load_balancer_ip {
                Some(l) => {
                    let ip = parse_ip(l, self.diags)?;
                    let sp = l.span;
                    if !self.check_free(ip, sp, &who) {
                        return None;
                    }
                    self.check_not_in_ranges(ip, sp, false);
                    Some(ip)
                }
                None => match prev.and_then(|p| p.1) {
                    Some(ip) => Some(ip),
                    None => {
                        let base = u32::from(lb_cidr.network());
                        let Some(ip) = (10..lb_cidr.hosts().count() as u32)
                            .map(|o| IpAddr::V4(Ipv4Addr::from(base + o)))
                            .find(|ip| !taken.contains_key(ip))
                        else {
                            self.err(span, "loadBalancerCIDR has no free address left");
                            return None;
                        };
                        Some(ip)
                    }
                },
            };
            if let (None, Some(ip)) = (&spec.load_balancer_ip, lb_ip) {
                spec.load_balancer_ip = Some(Spanned::new(span, ip.to_string()));
            }
        } else if let Some(l) = &spec.load_balancer_ip {
            self.err(
                l.span,
                "`loadBalancerIP` is for services of type LoadBalancer",
            );
            return None;
        }
        if ty != "ClusterIP" {
            let mut used = used_node_ports;
            for p in &spec.ports {
                if let Some(np) = &p.node_port {
                    if !(30000..=32767).contains(&np.value) {
                        self.err(
                            np.span,
                            format!("nodePort {} is outside 30000-32767", np.value),
                        );
                        return None;
                    }
                    if !used.insert(np.value) {
                        self.err(
                            np.span,
                            format!("nodePort {} is already used by another service", np.value),
                        );
                        return None;
                    }
                }
            }
            for p in &mut spec.ports {
                if p.node_port.is_none() {
                    let n = (30000..=32767).find(|n| !used.contains(n))?;
                    used.insert(n);
                    p.value.node_port = Some(Spanned::new(p.port.span, n));
                }
            }
        }
        self.world.svc_ips.insert(key.clone(), (cluster_ip, lb_ip));
        Some(())
    }

    fn expand_deployment(&mut self, res: &Resource, key: &ResourceKey) -> Option<()> {
        let Body::Deployment(d) = &res.body else {
            return None;
        };
        let replicas = d.replicas.as_ref().map_or(1, |r| r.value);
        if !(0..=1000).contains(&replicas) {
            let sp = d.replicas.as_ref().map_or(res.span, |r| r.span);
            self.err(
                sp,
                format!("`replicas` must be 0 to 1000, found {replicas}"),
            );
            return None;
        }
        for i in 0..replicas {
            let mut meta = d.template.metadata.clone();
            meta.name = Some(Spanned::new(res.span, format!("{}-{i}", key.name)));
            meta.namespace = res.metadata.namespace.clone();
            meta.annotations
                .get_or_insert_with(Default::default)
                .insert(OWNER_ANNOTATION.into(), key.to_string());
            let pod = Resource {
                kind: Kind::Pod,
                span: res.span,
                metadata: meta,
                body: Body::Pod(d.template.spec.clone()),
            };
            let pk = pod.key();
            if self.world.resources.contains_key(&pk) {
                self.err(
                    res.span,
                    format!("replica {pk} of {key} clashes with an existing pod"),
                );
                return None;
            }
            self.admit(pod, None, false, res.span)?;
        }
        Some(())
    }

    fn remove_owned(&mut self, owner: &ResourceKey) {
        let owner = owner.to_string();
        let owned: Vec<ResourceKey> = self
            .world
            .resources
            .iter()
            .filter(|(_, r)| {
                r.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(OWNER_ANNOTATION))
                    == Some(&owner)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in owned {
            self.world.resources.remove(&k);
        }
    }

    fn remove(&mut self, key: &ResourceKey) {
        self.world.resources.remove(key);
        self.world.docs.remove(key);
        self.remove_owned(key);
        if key.kind == Kind::Namespace {
            let inside: Vec<ResourceKey> = self
                .world
                .resources
                .keys()
                .filter(|k| k.namespace.as_deref() == Some(key.name.as_str()))
                .cloned()
                .collect();
            for k in inside {
                self.world.resources.remove(&k);
            }
        }
    }

    /// For a reference to a missing NetworkPolicy of one API group, the policy of
    /// the same namespace and name in the other group, if it exists.
    fn other_network_policy(&self, k: &ResourceKey) -> Option<ResourceKey> {
        let other = match k.kind {
            Kind::NetworkPolicy => Kind::K8sNetworkPolicy,
            Kind::K8sNetworkPolicy => Kind::NetworkPolicy,
            _ => return None,
        };
        let o = ResourceKey {
            kind: other,
            ..k.clone()
        };
        self.world.resources.contains_key(&o).then_some(o)
    }

    fn delete_step(&mut self, v: &Node) -> Option<Step> {
        let before = self.diags.error_count();
        let (docs, mut refs) = self.manifest_docs(v, true);
        for d in &docs {
            let text = self.sources.text(d.span.file);
            if let Some(r) = load_document_in(d, Some(text), self.diags) {
                refs.push((r.key(), r.metadata.name.as_ref().map_or(r.span, |n| n.span)));
            }
        }
        let mut keys = Vec::new();
        for (k, span) in refs {
            if k.kind == Kind::Tier {
                if let Some(problem) = self.tier_delete_problem(&k.name) {
                    self.err(span, format!("{k} cannot be deleted: {problem}"));
                    continue;
                }
            }
            if self.world.resources.contains_key(&k) {
                self.remove(&k);
                keys.push(k);
            } else {
                let hint = self.other_network_policy(&k).map_or(String::new(), |o| {
                    format!(
                        " ({o} exists: `{}` names Calico's projectcalico.org/v3 NetworkPolicy, \
                         `{}` the networking.k8s.io/v1 one)",
                        Kind::NetworkPolicy.ref_name(),
                        Kind::K8sNetworkPolicy.ref_name()
                    )
                });
                self.err(
                    span,
                    format!("{k} does not exist, so it cannot be deleted{hint}"),
                );
            }
        }
        (self.diags.error_count() == before).then_some(Step::Delete(keys))
    }

    fn patch_step(&mut self, v: &Node) -> Option<Step> {
        if v.as_map().is_none() {
            self.err(
                v.span,
                format!("`patch` takes {{target, merge}}, found {}", v.describe()),
            );
            return None;
        }
        let (Some(t), Some(m)) = (v.get("target"), v.get("merge")) else {
            self.err(
                v.span,
                "`patch` needs `target` (Kind/namespace/name) and `merge` (a mapping)",
            );
            return None;
        };
        let text = self.string(t, "`target`")?;
        let key = match parse_ref(text) {
            Some(Ok(k)) => k,
            Some(Err(m)) => {
                self.err(t.span, m);
                return None;
            }
            None => {
                self.err(
                    t.span,
                    format!(
                        "`{text}` is not a reference: expected Kind/name or Kind/namespace/name"
                    ),
                );
                return None;
            }
        };
        if m.as_map().is_none() {
            self.err(
                m.span,
                format!("`merge` must be a mapping, found {}", m.describe()),
            );
            return None;
        }
        if !self.world.resources.contains_key(&key) {
            let hint = self
                .other_network_policy(&key)
                .map_or(String::new(), |o| format!(" ({o} exists: write `{o}`)"));
            self.err(
                t.span,
                format!("{key} does not exist, so it cannot be patched{hint}"),
            );
            return None;
        }
        let Some(doc) = self.world.docs.get(&key) else {
            self.err(
                t.span,
                format!("{key} is managed by a Deployment; patch the Deployment"),
            );
            return None;
        };
        let merge = m.to_json();
        let mut merged = doc.to_json();
        json_merge(&mut merged, &merge);
        let node = Node::from_json(&merged, m.span);
        let d = Document {
            span: m.span,
            root: node,
        };
        let before = self.diags.error_count();
        let res = load_document(&d, self.diags)?;
        if res.key() != key {
            self.err(m.span, "a patch cannot change kind, namespace or name");
            return None;
        }
        self.admit(res, Some(d.root), false, m.span)?;
        (self.diags.error_count() == before).then_some(Step::Patch { target: key, merge })
    }

    fn serve_step(&mut self, v: &Node) -> Option<Step> {
        if v.as_map().is_none() {
            self.err(
                v.span,
                format!("`serve` takes {{host, path, file}}, found {}", v.describe()),
            );
            return None;
        };
        let (Some(h), Some(p), Some(f)) = (v.get("host"), v.get("path"), v.get("file")) else {
            self.err(v.span, "`serve` needs `host`, `path` and `file`");
            return None;
        };
        let host = self.host(h)?;
        let path = self.string(p, "`path`")?.to_string();
        let file = Spanned::new(f.span, self.string(f, "`file`")?.to_string());
        let (fpath, contents) = self.read_aux(&file)?;
        if let Some(hd) = self.world.outside.iter_mut().find(|x| x.name == host) {
            hd.files.insert(
                path.clone(),
                ServedFile {
                    path: fpath,
                    contents: contents.clone(),
                },
            );
        }
        Some(Step::Serve {
            host,
            path,
            contents,
        })
    }

    fn endpoint(&mut self, v: &Node, s: &str) -> Option<Endpoint> {
        if let Err(m) = short::parse_endpoint_name(s) {
            self.err(v.span, m);
            return None;
        }
        match self.world.resolve_name(s) {
            Ok(Target::Pod { namespace, name }) => Some(Endpoint::Pod { namespace, name }),
            Ok(Target::Outside(h)) => Some(Endpoint::Outside(h)),
            Ok(Target::Node(n)) => Some(Endpoint::Node(n)),
            Ok(_) => None,
            Err(m) => {
                self.err(v.span, m);
                None
            }
        }
    }

    /// Resolves a written target and completes port and protocol.
    fn dest(&mut self, span: Span, d: &DestRef, family: Option<Family>) -> Option<(Dest, Family)> {
        let to = match &d.target {
            TargetRef::Ip(ip) => {
                if !self.world.holds(*ip) {
                    // Decision `unroutable-address`.
                    self.diags.warning(
                        span,
                        format!(
                            "no pod, node, outside host or service has the address {ip} at this step: \
                             the probe will be denied as unroutable (a mistyped address, or an outside \
                             host missing from `outside:`?)"
                        ),
                    );
                }
                Target::Ip(*ip)
            }
            TargetRef::Service { namespace, name } => {
                if self.world.service(namespace, name).is_none() {
                    self.err(span, format!("unknown service `{namespace}/{name}`"));
                    return None;
                }
                Target::Service {
                    namespace: namespace.clone(),
                    name: name.clone(),
                }
            }
            TargetRef::Name(n) => match self.world.resolve_name(n) {
                Ok(t) => t,
                Err(m) => {
                    self.err(span, m);
                    return None;
                }
            },
        };
        let protocol = d.protocol.unwrap_or(ProbeProtocol::Tcp);
        let port = match (protocol, d.port) {
            (ProbeProtocol::Icmp, Some(_)) => {
                self.err(span, "an icmp probe takes no port");
                return None;
            }
            (ProbeProtocol::Icmp, None) => None,
            (_, Some(p)) => Some(p),
            (_, None) => {
                let one = match &to {
                    Target::Service { namespace, name } => self
                        .world
                        .service(namespace, name)
                        .filter(|s| s.ports.len() == 1)
                        .and_then(|s| u16::try_from(s.ports[0].port.value).ok()),
                    _ => None,
                };
                match one {
                    Some(p) => Some(p),
                    None => {
                        self.err(
                            span,
                            format!(
                                "a {} probe needs a port (`TARGET:PORT`, or `port:`)",
                                protocol.as_str()
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        let family = match (family, &to) {
            (Some(f), _) => f,
            (None, Target::Ip(IpAddr::V6(_))) => Family::V6,
            _ => Family::V4,
        };
        let addrs = self.world.addresses(&to);
        if !addrs
            .iter()
            .any(|ip| ip.is_ipv6() == (family == Family::V6))
        {
            let fam = if family == Family::V6 { "IPv6" } else { "IPv4" };
            self.err(
                span,
                format!(
                    "{} has no {fam} address (family {})",
                    describe_target(&to),
                    if family == Family::V6 { 6 } else { 4 }
                ),
            );
            return None;
        }
        Some((Dest { to, port, protocol }, family))
    }

    fn check_source_family(&mut self, span: Span, from: &Endpoint, family: Family) -> Option<()> {
        let t = match from {
            Endpoint::Pod { namespace, name } => Target::Pod {
                namespace: namespace.clone(),
                name: name.clone(),
            },
            Endpoint::Outside(h) => Target::Outside(h.clone()),
            Endpoint::Node(n) => Target::Node(n.clone()),
        };
        if self
            .world
            .addresses(&t)
            .iter()
            .any(|ip| ip.is_ipv6() == (family == Family::V6))
        {
            Some(())
        } else {
            self.err(
                span,
                format!(
                    "the source {} has no IPv{} address",
                    describe_target(&t),
                    if family == Family::V6 { 6 } else { 4 }
                ),
            );
            None
        }
    }

    fn family(&mut self, v: &Node) -> Option<Family> {
        match v.scalar_text() {
            Some("4") => Some(Family::V4),
            Some("6") => Some(Family::V6),
            _ => {
                self.err(
                    v.span,
                    format!("`family` is 4 or 6, found {}", v.describe()),
                );
                None
            }
        }
    }

    fn probe_step(&mut self, step: &Node, v: &Node) -> Option<Probe> {
        let before = self.diags.error_count();
        let mut family = None;
        let mut timeout = None;
        let (from_node, from, dest_node, dest) = if let Some(text) = v.as_str() {
            match short::parse_short_probe(text) {
                Ok(sp) => (v, sp.from, v, sp.dest),
                Err(m) => {
                    self.err(v.span, m);
                    return None;
                }
            }
        } else if v.as_map().is_some() {
            let (Some(f), Some(t)) = (v.get("from"), v.get("to")) else {
                self.err(v.span, "a probe needs `from` and `to`");
                return None;
            };
            let from = self.string(f, "`from`")?.to_string();
            let ttext = self.string(t, "`to`")?;
            let mut dest = match short::parse_dest(ttext) {
                Ok(d) => d,
                Err(m) => {
                    self.err(t.span, m);
                    return None;
                }
            };
            if let Some(p) = v.get("port") {
                match p.resolved() {
                    Some(crate::yaml::Resolved::Int(n))
                        if (1..=65535).contains(&n) && dest.port.is_none() =>
                    {
                        dest.port = Some(n as u16)
                    }
                    _ if dest.port.is_some() => {
                        self.err(p.span, "the port is given twice (in `to` and in `port`)")
                    }
                    _ => self.err(
                        p.span,
                        format!("`port` must be 1-65535, found {}", p.describe()),
                    ),
                }
            }
            if let Some(p) = v.get("protocol") {
                match p.scalar_text().and_then(short::parse_protocol) {
                    Some(pr) if dest.protocol.is_none() => dest.protocol = Some(pr),
                    Some(_) => self.err(
                        p.span,
                        "the protocol is given twice (in `to` and in `protocol`)",
                    ),
                    None => self.err(
                        p.span,
                        format!(
                            "unknown protocol {} (expected one of: http, icmp, sctp, tcp, udp)",
                            p.describe()
                        ),
                    ),
                }
            }
            if let Some(f) = v.get("family") {
                family = self.family(f);
            }
            if let Some(t) = v.get("timeout") {
                timeout = self.duration(t);
            }
            (f, from, t, dest)
        } else {
            self.err(
                v.span,
                format!(
                    "`probe` takes `FROM -> TO[:PORT][/PROTO]` or a mapping, found {}",
                    v.describe()
                ),
            );
            return None;
        };
        if let Some(f) = step.get("family") {
            if family.is_some() {
                self.err(f.span, "`family` is given twice");
            }
            family = self.family(f);
        }
        if let Some(t) = step.get("timeout") {
            if timeout.is_some() {
                self.err(t.span, "`timeout` is given twice");
            }
            timeout = self.duration(t);
        }
        let from = self.endpoint(from_node, &from);
        let dest = self.dest(dest_node.span, &dest, family);
        let (from, (dest, family)) = (from?, dest?);
        self.check_source_family(from_node.span, &from, family)?;
        let expect = step.get("expect").and_then(|e| match e.scalar_text() {
            Some("allow") => Some(Expect::Allow),
            Some("deny") => Some(Expect::Deny),
            Some("refused") => Some(Expect::Refused),
            _ => {
                self.err(
                    e.span,
                    format!("`expect` is allow, deny or refused, found {}", e.describe()),
                );
                None
            }
        });
        let status = step.get("status").and_then(|s| match s.resolved() {
            Some(crate::yaml::Resolved::Int(n)) if (100..=599).contains(&n) => Some(n as u16),
            _ => {
                self.err(
                    s.span,
                    format!(
                        "`status` is an HTTP status code (100-599), found {}",
                        s.describe()
                    ),
                );
                None
            }
        });
        if let (Some(s), true) = (step.get("status"), dest.protocol != ProbeProtocol::Http) {
            self.err(s.span, "`status` needs an http probe");
        }
        let client_ip = step.get("clientIP").and_then(|c| {
            let s = Spanned::new(c.span, c.scalar_text().unwrap_or_default().to_string());
            parse_ip(&s, self.diags)
        });
        let by = step.get("by").and_then(|b| {
            let s = self.string(b, "`by`")?;
            parse_by(s).map_err(|m| self.err(b.span, m)).ok()
        });
        let alert = step
            .get("alert")
            .and_then(|a| self.string(a, "`alert`").map(str::to_string));
        let logged = step.get("logged").and_then(|l| match l.resolved() {
            Some(crate::yaml::Resolved::Bool(b)) => Some(b),
            _ => {
                self.err(
                    l.span,
                    format!("`logged` is true or false, found {}", l.describe()),
                );
                None
            }
        });
        // Decision `staged-preview`: the policy verdict with the staged policies enforced.
        let staged = step.get("staged").and_then(|e| match e.scalar_text() {
            Some("allow") => Some(Expect::Allow),
            Some("deny") => Some(Expect::Deny),
            Some("refused") => Some(Expect::Refused),
            _ => {
                self.err(
                    e.span,
                    format!("`staged` is allow, deny or refused, found {}", e.describe()),
                );
                None
            }
        });
        if self.diags.error_count() > before {
            return None;
        }
        Some(Probe {
            from,
            to: dest.to,
            port: dest.port,
            protocol: dest.protocol,
            family,
            timeout: timeout.unwrap_or(Duration::from_secs(1)),
            expect,
            status,
            client_ip,
            by,
            alert,
            logged,
            staged,
        })
    }

    fn matrix_step(&mut self, step: &Node, v: &Node) -> Option<Matrix> {
        let before = self.diags.error_count();
        if v.as_map().is_none() {
            self.err(
                v.span,
                format!(
                    "`matrix` takes {{from: [...], to: [...]}}, found {}",
                    v.describe()
                ),
            );
            return None;
        };
        let family = v.get("family").and_then(|f| self.family(f));
        let timeout = v.get("timeout").and_then(|t| self.duration(t));
        let froms = self.list(v.get("from"), "matrix.from");
        let tos = self.list(v.get("to"), "matrix.to");
        if froms.is_empty() || tos.is_empty() {
            self.err(v.span, "a matrix needs non-empty `from` and `to` lists");
            return None;
        }
        let mut from = Vec::new();
        for f in froms {
            if let Some(s) = self.string(f, "a source") {
                if let Some(e) = self.endpoint(f, s) {
                    if let Some(fam) = family {
                        self.check_source_family(f.span, &e, fam);
                    }
                    from.push(e);
                }
            }
        }
        let mut to = Vec::new();
        let mut fam_all = family.unwrap_or(Family::V4);
        for t in tos {
            let Some(s) = self.string(t, "a target") else {
                continue;
            };
            match short::parse_dest(s) {
                Ok(d) => {
                    if let Some((d, f)) = self.dest(t.span, &d, family) {
                        fam_all = f;
                        to.push(d);
                    }
                }
                Err(m) => self.err(t.span, m),
            }
        }
        let expect = match step.get("expect") {
            None => None,
            Some(e) => {
                let text = self.string(e, "`expect` (a truth table)")?;
                match short::parse_table(text, froms.len(), tos.len()) {
                    Ok(t) => Some(
                        t.into_iter()
                            .map(|r| r.into_iter().map(Expect::from).collect())
                            .collect(),
                    ),
                    Err(errs) => {
                        let origin = embedded_origin(self.sources.text(self.file), e);
                        for te in errs {
                            let sp = if e.scalar().is_some_and(|s| s.style.is_block()) {
                                Span::new(
                                    self.file,
                                    origin.line_offset + 1 + te.line as u32,
                                    origin.col_offset + 1 + te.col as u32,
                                )
                            } else {
                                e.span
                            };
                            self.err(sp, te.message);
                        }
                        None
                    }
                }
            }
        };
        if self.diags.error_count() > before {
            return None;
        }
        Some(Matrix {
            from,
            to,
            family: fam_all,
            timeout: timeout.unwrap_or(Duration::from_secs(1)),
            expect,
        })
    }
}

/// `by:` forms.
pub(super) fn parse_by(s: &str) -> Result<ByRef, String> {
    if s == "no-profile" {
        return Ok(ByRef::NoProfile);
    }
    if s == "failsafe" {
        return Ok(ByRef::Failsafe);
    }
    if let Some(t) = s.strip_prefix("end-of-tier:") {
        return if t.is_empty() {
            Err("`end-of-tier:` needs a tier name".into())
        } else {
            Ok(ByRef::EndOfTier(t.into()))
        };
    }
    if let Some(p) = s.strip_prefix("profile:") {
        return if p.is_empty() {
            Err("`profile:` needs a profile name".into())
        } else {
            Ok(ByRef::Profile(p.into()))
        };
    }
    match s.split('/').collect::<Vec<_>>().as_slice() {
        [name] if !name.is_empty() => Ok(ByRef::Policy { namespace: None, name: name.to_string() }),
        [ns, name] if !ns.is_empty() && !name.is_empty() => Ok(ByRef::Policy { namespace: Some(ns.to_string()), name: name.to_string() }),
        _ => Err(format!("`{s}` is not a `by:` value: expected a policy name, namespace/name, end-of-tier:<tier>, profile:<name>, no-profile or failsafe")),
    }
}

/// `Kind/name` or `Kind/namespace/name`. `None` when the text does not start with a
/// kind (so it may be a path).
pub(super) fn parse_ref(s: &str) -> Option<Result<ResourceKey, String>> {
    let parts: Vec<&str> = s.split('/').collect();
    let kind = match parts[0] {
        "NetworkPolicy" => Kind::NetworkPolicy,
        k => Kind::ALL
            .iter()
            .map(|(_, _, k)| *k)
            .find(|x| x.ref_name() == k)?,
    };
    Some(match parts.as_slice() {
        [_, name] if !name.is_empty() => Ok(ResourceKey {
            kind,
            namespace: kind.is_namespaced().then(|| "default".to_string()),
            name: name.to_string(),
        }),
        [_, ns, name] if kind.is_namespaced() && !ns.is_empty() && !name.is_empty() => {
            Ok(ResourceKey {
                kind,
                namespace: Some(ns.to_string()),
                name: name.to_string(),
            })
        }
        [_, _, _] => Err(format!(
            "{} is not namespaced: write `{}/name`",
            kind.ref_name(),
            kind.ref_name()
        )),
        _ => Err(format!(
            "`{s}` is not a reference: expected `Kind/name` or `Kind/namespace/name`"
        )),
    })
}
