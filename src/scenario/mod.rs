//! This module deals with scenario files: from YAML to a validated [`Scenario`]
//! (the `cluster:` short form as resources, the steps typed and resolved) and the
//! [`Inventory`] of the cluster after every step. See `docs/scenario-format.md`.
//!
//! - [`raw`]: serde mirrors of `cluster:` / `outside:` entries (unknown keys are errors).
//! - [`short`]: the probe short form, durations, matrix truth tables.
//! - [`vars`]: `${NAME}` / `$NAME` placeholders, including address references.
//! - `schema` (private): the structural check against `src/schema/scenario.yaml`,
//!   run first; the parts it rejects are skipped by the typed pass.
//! - `build` (private): allocation, step semantics, checks.
//!
//! Every problem is reported (file:line:col) and loading goes on, so one run lists
//! them all; a scenario with any error yields no [`Scenario`].
//!
//! # Address allocation (deterministic)
//!
//! - Nodes without `ip:` get 172.18.0.11, .12, ... (the fabric 172.18.0.0/24), in order.
//! - Node n (1-based) owns the n-th /24 of `podCIDR` (10.244.n.0/24) and, when
//!   `podCIDRv6` is set, the n-th /64 of it. Pods without `ip:` get host addresses
//!   .10, .11, ... of their node's range (and ::a, ::b, ... in v6) in order of
//!   creation: short-form pods first (in order, `replicas` as `name-0`, `name-1`, ...),
//!   then pods created by apply steps (Deployment replicas are pods
//!   `<deployment>-<i>`). An address taken (pinned or earlier) is skipped. A pod
//!   keeps its addresses when it is replaced by a later apply.
//! - Pods without `spec.nodeName` run on the first node.
//! - Services get cluster IPs .10, .11, ... of `serviceCIDR` in order of creation;
//!   NodePort/LoadBalancer ports without `nodePort` get 30000, 30001, ...; a
//!   LoadBalancer without `loadBalancerIP` gets .10, .11, ... of
//!   `cluster.loadBalancerCIDR` (extension, default 172.19.0.0/24).
//! - Allocated values are written into the resources: pods get the annotation
//!   [`IP_ADDRS_ANNOTATION`](crate::inventory::IP_ADDRS_ANNOTATION), services
//!   `spec.clusterIP`, `nodePort` and `loadBalancerIP`.
//!
//! # Decisions where the format is silent
//!
//! - A pod (or any namespaced resource) in a namespace that does not exist is an
//!   error, except in `default`; a pod's service account other than `default` must exist.
//! - Probes with tcp/udp/sctp/http need a port, unless the target is a service with
//!   exactly one port (that port is used). icmp takes no port.
//! - A trailing `/tcp`, `/udp`, `/sctp`, `/http`, `/icmp` of a target is always the
//!   protocol. A bare name is a pod when exactly one pod has it, else an outside host,
//!   else a node; a name that is more than one of these is an error (write `ns/name`).
//! - `family` defaults to the family of an IP target, else 4.
//! - Port protocols in `cluster:`/`outside:` are TCP, UDP or SCTP, any case.
//! - Placeholders are substituted in manifests and in the strings of steps, not in
//!   `cluster:`/`outside:`.
//! - An invalid document in a step is reported, and the valid ones of that step are
//!   still applied for checking the later steps (fewer follow-on errors).
//! - A pod with `spec.hostNetwork: true` gets no pod address: its addresses (in
//!   `${pod.ip}` and as a probe end) are its node's.
//! - Deleting a Namespace deletes everything in it; deleting or replacing a
//!   Deployment deletes its replica pods.

mod build;
pub mod paths;
pub mod raw;
mod schema;
pub mod short;
pub mod vars;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use crate::diag::{Diagnostics, FileId, Sources, Spanned};
use crate::inventory::Inventory;
use crate::manifest::{Resource, ResourceKey};

pub use short::Cell as Expectation;

/// A loaded, checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// Where `name` is written (the file's first position when it is missing).
    pub name_span: crate::diag::Span,
    pub description: Option<String>,
    pub file: FileId,
    /// `vars:` (placeholder values).
    pub vars: std::collections::BTreeMap<String, String>,
    /// The cluster before the first step (the `cluster:` short form applied).
    pub inventory0: Inventory,
    pub steps: Vec<Spanned<Step>>,
    /// The state after each step (same length as `steps`).
    states: Vec<Inventory>,
}

impl Scenario {
    /// The state after each step, in order (`inventories()[i]` is after `steps[i]`).
    pub fn inventories(&self) -> Vec<Inventory> {
        self.states.clone()
    }
}

#[derive(Debug, Clone)]
pub enum Step {
    /// `apply:` (create = false) or `create:` (create = true).
    Apply {
        resources: Vec<Resource>,
        create: bool,
    },
    Delete(Vec<ResourceKey>),
    Patch {
        target: ResourceKey,
        merge: serde_json::Value,
    },
    Probe(Probe),
    Matrix(Matrix),
    Serve {
        host: String,
        path: String,
        contents: String,
    },
    Advance(Duration),
    Fail(String),
    Recover(String),
}

/// Who sends a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Pod { namespace: String, name: String },
    Outside(String),
    Node(String),
}

/// Where a probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pod { namespace: String, name: String },
    Outside(String),
    Node(String),
    Ip(IpAddr),
    Service { namespace: String, name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeProtocol {
    Tcp,
    Udp,
    Sctp,
    Http,
    Icmp,
}

impl ProbeProtocol {
    /// The lower-case name used in the short form (`/tcp`, `/http`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeProtocol::Tcp => "tcp",
            ProbeProtocol::Udp => "udp",
            ProbeProtocol::Sctp => "sctp",
            ProbeProtocol::Http => "http",
            ProbeProtocol::Icmp => "icmp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Allow,
    Deny,
    Refused,
}

impl From<short::Cell> for Expect {
    fn from(c: short::Cell) -> Expect {
        match c {
            short::Cell::Allow => Expect::Allow,
            short::Cell::Deny => Expect::Deny,
            short::Cell::Refused => Expect::Refused,
        }
    }
}

/// `by:`: who decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByRef {
    Policy {
        namespace: Option<String>,
        name: String,
    },
    EndOfTier(String),
    Profile(String),
    NoProfile,
    Failsafe,
}

/// A target with port and protocol. `port` is `None` only for icmp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub to: Target,
    pub port: Option<u16>,
    pub protocol: ProbeProtocol,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub from: Endpoint,
    pub to: Target,
    pub port: Option<u16>,
    pub protocol: ProbeProtocol,
    pub family: Family,
    pub timeout: Duration,
    pub expect: Option<Expect>,
    pub status: Option<u16>,
    pub client_ip: Option<IpAddr>,
    pub by: Option<ByRef>,
    pub alert: Option<String>,
    pub logged: Option<bool>,
    /// What the staged policies would decide (decision `staged-preview`).
    pub staged: Option<Expect>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub from: Vec<Endpoint>,
    pub to: Vec<Dest>,
    pub family: Family,
    pub timeout: Duration,
    /// `expect[row][col]`: rows are `from`, columns are `to`.
    pub expect: Option<Vec<Vec<Expect>>>,
}

/// Loads and checks a scenario file, confined to its default root
/// ([`paths::default_root`]). Every problem goes to `diags`; `None` when there
/// was any error.
pub fn load(sources: &mut Sources, path: &Path, diags: &mut Diagnostics) -> Option<Scenario> {
    load_in(sources, path, &paths::default_root(path, None), diags)
}

/// [`load`] with the root given: every file the scenario names must resolve
/// inside `root` ([`paths`]).
pub fn load_in(
    sources: &mut Sources,
    path: &Path,
    root: &Path,
    diags: &mut Diagnostics,
) -> Option<Scenario> {
    match sources.read(path) {
        Ok(file) => build::load(sources, file, root, diags),
        Err(e) => {
            diags.push(crate::diag::Diagnostic::error_nowhere(format!(
                "{}: cannot read: {e}",
                crate::diag::display_path(path)
            )));
            None
        }
    }
}

/// Reports every scenario whose name an earlier one in `scenarios` already has:
/// one run's pcap files and JUnit suites are named after scenarios, so names
/// must be unique in it.
pub fn check_unique_names(scenarios: &[Scenario], sources: &Sources, diags: &mut Diagnostics) {
    let mut first: std::collections::BTreeMap<&str, &Scenario> = Default::default();
    for sc in scenarios {
        match first.get(sc.name.as_str()) {
            Some(f) => diags.error(
                sc.name_span,
                format!(
                    "scenario name `{}` is also the name of {}:{}: one run's pcap files and JUnit suites are named after scenarios, so names must be unique",
                    sc.name,
                    crate::diag::display_path(sources.path(f.file)),
                    f.name_span.line
                ),
            ),
            None => {
                first.insert(&sc.name, sc);
            }
        }
    }
}

/// Loads and checks a scenario already registered in `sources`. Relative paths in
/// it are resolved against the directory of the file's path.
pub fn load_file(sources: &mut Sources, file: FileId, diags: &mut Diagnostics) -> Option<Scenario> {
    let root = paths::default_root(sources.path(file), None);
    build::load(sources, file, &root, diags)
}

/// Reads a probe given on its own (as `policylab explain` takes it: the short form
/// `FROM -> TO[:PORT][/PROTO]` or a flow mapping `{from: ..., to: ..., port: ...}`)
/// in the context of the state after step `after_step` (1-based; 0 is the cluster
/// before the first step): the same names, short-form rules and `vars` as a probe
/// step there. The text is registered in `sources` as a file named `name`, so every
/// problem goes to `diags` with a position in it. `None` when there was an error.
pub fn parse_probe_at(
    scenario: &Scenario,
    after_step: usize,
    sources: &mut Sources,
    name: &str,
    text: &str,
    diags: &mut Diagnostics,
) -> Option<Probe> {
    let inv = match after_step {
        0 => &scenario.inventory0,
        n => match scenario.states.get(n - 1) {
            Some(i) => i,
            None => {
                diags.push(crate::diag::Diagnostic::error_nowhere(format!(
                    "step {n} does not exist: the scenario has {} steps",
                    scenario.steps.len()
                )));
                return None;
            }
        },
    };
    let file = sources.add(name, text);
    build::parse_probe(sources, file, inv, &scenario.vars, diags)
}

/// Whether YAML text looks like a scenario: a mapping with a top-level `steps:` key.
pub fn is_scenario_text(text: &str) -> bool {
    let mut s = Sources::new();
    let f = s.add("", text);
    let (doc, _) = crate::yaml::parse_single(text, f);
    doc.is_some_and(|d| d.root.get("steps").is_some())
}
