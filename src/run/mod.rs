//! This module deals with executing a scenario on the reference model: the
//! [`Plan`] of a run, and the types a dataplane fills in.
//!
//! Input: a loaded [`Scenario`] (and the [`Sources`] it was read from, for the
//! names of manifest files). Output: a [`Plan`]: per step its title, the scenario
//! clock, the inventory and resolved [`World`] (threat-feed sets injected), the
//! feed pulls it caused and every probe (single or matrix cell) resolved to
//! concrete addresses with the model's [`Prediction`].
//!
//! A dataplane turns the plan into one [`Observation`] per probe, in plan order
//! ([`Plan::probes`]): the model with [`Observation::from_prediction`], the kernel by
//! running real traffic. [`disagreements`] lists where a dataplane's observation
//! and the model's prediction differ (exit code 4 when the kernel disagrees).
//!
//! # Decisions where the format is silent
//! - **Servers.** What answers: the declared ports of pods, nodes and outside hosts,
//!   plus HTTP on TCP port 80 of every outside host with `files:`. A probe the
//!   model allows to a port nobody serves (with its protocol) is `Refused` (tcp,
//!   udp, http, sctp); an icmp echo is always answered. An allowed probe to an
//!   address no pod, node or outside host holds is `Deny` ([`Decider::Unroutable`]).
//! - **HTTP status.** The built-in echo server answers 200. An outside host's
//!   file server (port 80 of a host with `files:`) answers a probe's `GET /` with
//!   404 unless `/` is one of its files (then 200), as a static file server does.
//! - **Failed hosts.** A `fail:`ed outside host neither answers nor sends: probes
//!   to or from it are `Deny` ([`Decider::HostDown`]).
//! - **Alerts.** A probe whose source address, dialled address or final destination
//!   address is on an enabled feed's current list raises an alert naming the feed,
//!   whatever the verdict (the feed's list is what its last good pull returned).
//! - **Log lines** are reported in a dataplane-neutral form,
//!   `calico-packet: SRC=… DST=… PROTO=… DPT=…` (no interface names), one per Log
//!   rule that matched, with the packet as the logging stage saw it.
//! - **Host-networked pods** (`spec.hostNetwork: true`) are not workload endpoints:
//!   they have their node's addresses, their probes are the node's traffic, and
//!   their declared ports are served on the node.
//! - **Untracked reply of a tracked flow** (model decision `notracked-reply`): an `http` probe
//!   whose TCP reply is NOTRACKed where its request was tracked is `Deny`
//!   ([`Decider::UntrackedReply`], the kernel's `ct state invalid` drop of the
//!   client's ACK); a `tcp` probe (handshake only) is allowed, with a note; `udp`,
//!   `sctp` and `icmp` probes are allowed. A port nobody serves stays `Refused` (the
//!   reset is the reply, and reaches the client).
//! - Feed pulls and statuses: see [`feeds`].

pub mod feeds;
mod flowlog;
mod predict;

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::diag::Sources;
use crate::inventory::Inventory;
use crate::manifest::{Resource, ResourceKey};
use crate::model::{self, Decider, FlowSource};
use crate::resolve::{self, World};
use crate::scenario::{
    ByRef, Endpoint, Expect, Family, Probe, ProbeProtocol, Scenario, Step, Target,
};

pub use feeds::{FeedPull, FeedStatus, PullResult};
pub use flowlog::{observed_records, EndpointMeta, FlowLogRecord, ObservedStage, Reporter};

/// What a probe saw.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    Deny,
    Refused,
}

impl Outcome {
    /// The truth-table character: `.` allow, `X` deny, `R` refused.
    pub fn cell(self) -> char {
        match self {
            Outcome::Allow => '.',
            Outcome::Deny => 'X',
            Outcome::Refused => 'R',
        }
    }
}

impl From<Expect> for Outcome {
    fn from(e: Expect) -> Outcome {
        match e {
            Expect::Allow => Outcome::Allow,
            Expect::Deny => Outcome::Deny,
            Expect::Refused => Outcome::Refused,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::Refused => "refused",
        })
    }
}

/// A Log rule's line, dataplane-neutral.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema)]
pub struct LogLine {
    /// The logging node's `logPrefix` (decision `felix-configuration`), without
    /// the `: ` Felix appends.
    pub prefix: String,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number.
    pub proto: u8,
    /// For tcp, udp and sctp.
    pub dst_port: Option<u16>,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: SRC={} DST={} PROTO={}",
            self.prefix,
            self.src,
            self.dst,
            proto_upper(self.proto)
        )?;
        if let Some(p) = self.dst_port {
            write!(f, " DPT={p}")?;
        }
        Ok(())
    }
}

fn proto_upper(p: u8) -> String {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        132 => "SCTP".into(),
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        n => n.to_string(),
    }
}

/// What the model predicts for one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    pub outcome: Outcome,
    /// HTTP status, for an allowed http probe.
    pub status: Option<u16>,
    /// The denying decider, or for an allowed flow the last stage that allowed.
    pub decider: Decider,
    /// Every stage decider that allowed the flow, in path order (what `by:` may name
    /// for an allowed probe).
    pub allowing: Vec<Decider>,
    /// The source address the server sees (after SNAT), for an allowed probe.
    pub client_ip_seen: Option<IpAddr>,
    /// Where the packet ends up after DNAT.
    pub final_dst: (IpAddr, u16),
    /// Names of the feeds whose list holds the probe's source or destination.
    pub alerts: Vec<String>,
    pub logged: bool,
    pub log_lines: Vec<LogLine>,
    /// Flow-log records (docs/semantics.md#flow-log-records), one per reporting stage.
    pub flow_logs: Vec<FlowLogRecord>,
    /// Why the outcome differs from the policy verdict (nothing listens, host down).
    pub note: Option<String>,
    /// The policy verdict with the staged policies enforced (decision
    /// `staged-preview`; the enforced policy verdict when no staged policy changes
    /// anything); computed by the model on both dataplanes (the kernel does not
    /// enforce staged policies).
    pub staged: StagedPreview,
}

/// The policy verdict of a probe with the staged policies enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedPreview {
    /// `allow` or `deny` (or `refused`: a service without endpoints).
    pub verdict: Outcome,
    pub decider: Decider,
    /// Whether it differs from the enforced policy verdict.
    pub differs: bool,
}

/// What a dataplane saw for one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Observation {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub client_ip_seen: Option<IpAddr>,
    /// Who decided, when the dataplane can tell (the kernel: from NFLOG).
    pub decider: Option<Decider>,
    pub allowing: Vec<Decider>,
    pub logged: bool,
    pub log_lines: Vec<LogLine>,
    /// The flow-log records of what the dataplane saw (the kernel: from NFLOG, with
    /// the probe's real source port; decision `kernel-flow-logs`).
    pub flow_logs: Vec<FlowLogRecord>,
    /// Why the dataplane could not run this probe (the kernel: "this kernel has no
    /// SCTP"); nothing else of the observation then means anything, and the report
    /// counts the probe apart, neither held nor failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
}

impl Observation {
    /// The model dataplane: it sees exactly what it predicts.
    pub fn from_prediction(p: &Prediction) -> Observation {
        Observation {
            outcome: p.outcome,
            status: p.status,
            client_ip_seen: p.client_ip_seen,
            decider: Some(p.decider.clone()),
            allowing: p.allowing.clone(),
            logged: p.logged,
            log_lines: p.log_lines.clone(),
            flow_logs: p.flow_logs.clone(),
            not_run: None,
        }
    }
}

/// One difference between a dataplane's observation and the model's prediction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Disagreement {
    /// `outcome`, `status`, `clientIP`, `decider`, `logged`.
    pub what: &'static str,
    pub model: String,
    pub dataplane: String,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the model predicts {}, the dataplane saw {}",
            self.what, self.model, self.dataplane
        )
    }
}

/// Where a dataplane's observation differs from the prediction. The decider and the
/// client address are compared only when the dataplane names one; allowing deciders
/// are not compared (a dataplane cannot see every allowing stage).
pub fn disagreements(p: &Prediction, o: &Observation) -> Vec<Disagreement> {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "nothing".into());
    let mut out = Vec::new();
    if o.not_run.is_some() {
        // Nothing was observed: nothing to compare.
        return out;
    }
    if p.outcome != o.outcome {
        out.push(Disagreement {
            what: "outcome",
            model: p.outcome.to_string(),
            dataplane: o.outcome.to_string(),
        });
    }
    if p.status != o.status {
        out.push(Disagreement {
            what: "status",
            model: opt(p.status.map(|s| s.to_string())),
            dataplane: opt(o.status.map(|s| s.to_string())),
        });
    }
    // A dataplane may not see the client address (the kernel learns it only from
    // the lab's echo servers: not over icmp or sctp); an unseen one is no disagreement.
    if o.client_ip_seen.is_some() && p.client_ip_seen != o.client_ip_seen {
        out.push(Disagreement {
            what: "clientIP",
            model: opt(p.client_ip_seen.map(|s| s.to_string())),
            dataplane: opt(o.client_ip_seen.map(|s| s.to_string())),
        });
    }
    if let Some(d) = &o.decider {
        if *d != p.decider {
            out.push(Disagreement {
                what: "decider",
                model: p.decider.to_string(),
                dataplane: d.to_string(),
            });
        }
    }
    if p.logged != o.logged {
        out.push(Disagreement {
            what: "logged",
            model: p.logged.to_string(),
            dataplane: o.logged.to_string(),
        });
    }
    // Flow logs, but for the source port (the model's is a placeholder).
    let unported = |r: &[FlowLogRecord]| -> Vec<FlowLogRecord> {
        r.iter()
            .map(|x| FlowLogRecord {
                src_port: None,
                pending_policies: Vec::new(),
                ..x.clone()
            })
            .collect()
    };
    if o.not_run.is_none() && unported(&p.flow_logs) != unported(&o.flow_logs) {
        let show = |r: &[FlowLogRecord]| {
            r.iter()
                .map(|x| {
                    format!(
                        "{:?} {} -> {} {} [{}]",
                        x.reporter,
                        x.src_ip,
                        x.dst_ip,
                        x.action,
                        x.policies.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        out.push(Disagreement {
            what: "flow logs",
            model: show(&p.flow_logs),
            dataplane: show(&o.flow_logs),
        });
    }
    out
}

/// The verb of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepAction {
    Apply,
    Create,
    Delete,
    Patch,
    Probe,
    Matrix,
    Serve,
    Advance,
    Fail,
    Recover,
}

/// A probe resolved to addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFlow {
    pub from: Endpoint,
    pub to: Target,
    /// The model's view of the source (a workload endpoint or an address).
    pub src: FlowSource,
    /// The address the probe is sent from.
    pub src_ip: IpAddr,
    /// The address dialled (a service, node port or LB address before DNAT).
    pub dst_ip: IpAddr,
    /// `None` for icmp.
    pub port: Option<u16>,
    pub protocol: ProbeProtocol,
    pub family: Family,
    pub timeout: Duration,
}

impl ProbeFlow {
    /// The model's flow.
    pub fn model_flow(&self) -> model::Flow {
        let proto = match self.protocol {
            ProbeProtocol::Tcp | ProbeProtocol::Http => model::Proto::Tcp,
            ProbeProtocol::Udp => model::Proto::Udp,
            ProbeProtocol::Sctp => model::Proto::Sctp,
            ProbeProtocol::Icmp => model::Proto::Icmp,
        };
        model::Flow::new(self.src, self.dst_ip, proto, self.port.unwrap_or(0))
    }
}

/// What a probe step (or a matrix) expects of one probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    pub outcome: Option<Outcome>,
    pub status: Option<u16>,
    pub client_ip: Option<IpAddr>,
    pub by: Option<ByRef>,
    pub alert: Option<String>,
    pub logged: Option<bool>,
    /// `staged:` (decision `staged-preview`).
    pub staged: Option<Outcome>,
}

/// One probe of a step (a matrix has one per cell, row by row).
#[derive(Debug, Clone)]
pub struct PlannedProbe {
    /// How the report names the source: `default/red`, `laptop`, `node-1`.
    pub source: String,
    /// How the report names the target: `suspicious:80/http`, `svc/default/web:80/tcp`.
    pub target: String,
    /// `(row, column)` in a matrix.
    pub cell: Option<(usize, usize)>,
    pub flow: ProbeFlow,
    pub expect: Expectations,
    pub prediction: Prediction,
}

/// A matrix's axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixShape {
    pub sources: Vec<String>,
    pub targets: Vec<String>,
}

/// One step of the plan.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// 1-based.
    pub number: usize,
    /// Line of the step in the scenario file.
    pub line: u32,
    pub action: StepAction,
    /// The step in words: `apply fixtures/x.yaml: GlobalNetworkPolicy security.block`.
    pub title: String,
    /// Scenario time after the step (starts at 0; `advance` moves it).
    pub clock: Duration,
    /// The cluster after the step, threat-feed network sets included.
    pub inventory: Arc<Inventory>,
    /// `resolve(inventory)`; shared with the previous step when unchanged.
    pub world: Arc<World>,
    /// Whether the world differs from the previous step's (the dataplane must
    /// reprogram). True for the first step.
    pub world_changed: bool,
    /// Outside hosts that are failed after this step.
    pub failed_hosts: BTreeSet<String>,
    /// Feed pulls this step caused, in order.
    pub pulls: Vec<FeedPull>,
    /// Every feed that exists after this step, by name.
    pub feeds: Vec<FeedStatus>,
    pub probes: Vec<PlannedProbe>,
    pub matrix: Option<MatrixShape>,
}

/// A scenario's run on the reference model.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    /// Every probe in order: `(step index, probe index in the step, probe)`.
    pub fn probes(&self) -> impl Iterator<Item = (usize, usize, &PlannedProbe)> {
        self.steps
            .iter()
            .enumerate()
            .flat_map(|(s, st)| st.probes.iter().enumerate().map(move |(i, p)| (s, i, p)))
    }

    /// The model dataplane's observations, in [`Plan::probes`] order.
    pub fn model_observations(&self) -> Vec<Observation> {
        self.probes()
            .map(|(_, _, p)| Observation::from_prediction(&p.prediction))
            .collect()
    }
}

/// Plans a scenario: walks its steps with the scenario clock and the feeds' state,
/// resolves each step's world and predicts every probe.
pub fn plan(scenario: &Scenario, sources: &Sources) -> Plan {
    let states = scenario.inventories();
    let base = scenario_base_dir(sources, scenario);
    let mut feeds = feeds::Feeds::default();
    let mut clock = Duration::ZERO;
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut prev: Option<(Arc<World>, Arc<Inventory>)> = None;
    let mut steps = Vec::new();
    for (i, (step, inv)) in scenario.steps.iter().zip(states.iter()).enumerate() {
        let mut pulls = Vec::new();
        match &step.value {
            Step::Advance(d) => {
                clock += *d;
                pulls.extend(feeds.advance(clock, inv, &failed));
            }
            Step::Fail(h) => {
                failed.insert(h.clone());
            }
            Step::Recover(h) => {
                failed.remove(h);
            }
            _ => {}
        }
        pulls.extend(feeds.sync(clock, inv, &failed));
        let mut inventory = inv.clone();
        feeds.inject(&mut inventory);
        let inventory = Arc::new(inventory);
        let (world, changed) = match &prev {
            Some((w, before)) if same_world_input(before, &inventory) => (w.clone(), false),
            _ => (Arc::new(resolve::resolve(&inventory)), true),
        };
        prev = Some((world.clone(), inventory.clone()));
        let statuses = feeds.statuses();
        let (action, title) = describe_step(&step.value, sources, scenario.file, &base, inv);
        let mut planned = PlannedStep {
            number: i + 1,
            line: step.span.line,
            action,
            title,
            clock,
            inventory,
            world,
            world_changed: changed,
            failed_hosts: failed.clone(),
            pulls,
            feeds: statuses,
            probes: Vec::new(),
            matrix: None,
        };
        match &step.value {
            Step::Probe(p) => {
                let pp = planned_probe(&planned, p, None);
                planned.probes.push(pp);
            }
            Step::Matrix(m) => {
                let sources_n: Vec<String> = m.from.iter().map(endpoint_name).collect();
                let targets_n: Vec<String> =
                    m.to.iter()
                        .map(|d| target_name(&d.to, d.port, d.protocol))
                        .collect();
                for (r, from) in m.from.iter().enumerate() {
                    for (c, dest) in m.to.iter().enumerate() {
                        let p = Probe {
                            from: from.clone(),
                            to: dest.to.clone(),
                            port: dest.port,
                            protocol: dest.protocol,
                            family: m.family,
                            timeout: m.timeout,
                            expect: m
                                .expect
                                .as_ref()
                                .and_then(|t| t.get(r))
                                .and_then(|row| row.get(c))
                                .copied(),
                            status: None,
                            client_ip: None,
                            by: None,
                            alert: None,
                            logged: None,
                            staged: None,
                        };
                        let pp = planned_probe(&planned, &p, Some((r, c)));
                        planned.probes.push(pp);
                    }
                }
                planned.matrix = Some(MatrixShape {
                    sources: sources_n,
                    targets: targets_n,
                });
            }
            _ => {}
        }
        steps.push(planned);
    }
    Plan {
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        steps,
    }
}

/// A cheap identity of what `resolve` reads, to share unchanged worlds.
/// Whether two states resolve to the same world: equal cluster, nodes, outside
/// hosts (but their files) and resources. Resources a step did not touch are the
/// same shared objects, so this costs a pointer comparison for each of them.
fn same_world_input(a: &Inventory, b: &Inventory) -> bool {
    let hosts = |i: &Inventory| {
        i.outside
            .iter()
            .map(|h| (h.name.clone(), h.ips.clone(), format!("{:?}", h.ports)))
            .collect::<Vec<_>>()
    };
    a.cluster == b.cluster
        && a.nodes == b.nodes
        && hosts(a) == hosts(b)
        && a.resources.len() == b.resources.len()
        && a.resources
            .iter()
            .zip(&b.resources)
            .all(|((ka, ra), (kb, rb))| {
                ka == kb && (Arc::ptr_eq(ra, rb) || format!("{ra:?}") == format!("{rb:?}"))
            })
}

fn planned_probe(step: &PlannedStep, p: &Probe, cell: Option<(usize, usize)>) -> PlannedProbe {
    let flow = probe_flow(&step.world, &step.inventory, p);
    let prediction = predict::predict(
        &step.world,
        &step.inventory,
        &step.failed_hosts,
        &step.feeds,
        &flow,
    );
    PlannedProbe {
        source: endpoint_name(&p.from),
        target: target_name(&p.to, p.port, p.protocol),
        cell,
        flow,
        expect: Expectations {
            outcome: p.expect.map(Outcome::from),
            status: p.status,
            client_ip: p.client_ip,
            by: p.by.clone(),
            alert: p.alert.clone(),
            logged: p.logged,
            staged: p.staged.map(Outcome::from),
        },
        prediction,
    }
}

/// `policylab explain`: the model's walk-through of one probe in a step's world,
/// then what the probe would observe (servers, failed hosts, alerts).
pub fn explain_probe(
    world: &World,
    inv: &Inventory,
    failed: &BTreeSet<String>,
    feeds: &[FeedStatus],
    probe: &Probe,
) -> String {
    let flow = probe_flow(world, inv, probe);
    let mut out = format!(
        "Probe: {} ({}) -> {} ({})\n",
        endpoint_name(&probe.from),
        flow.src_ip,
        target_name(&probe.to, probe.port, probe.protocol),
        flow.dst_ip
    );
    out.push_str(&model::explain(world, &flow.model_flow()));
    let p = predict::predict(world, inv, failed, feeds, &flow);
    let mut line = format!("The probe observes: {}", p.outcome);
    if let Some(s) = p.status {
        line.push_str(&format!(" (HTTP {s})"));
    }
    if let Some(n) = &p.note {
        line.push_str(&format!(": {n}"));
    }
    out.push_str(&line);
    out.push_str(".\n");
    for a in &p.alerts {
        out.push_str(&format!(
            "Threat-feed alert: an address of this flow is on feed {a}.\n"
        ));
    }
    out
}

/// The addresses of a probe. The scenario checked that both ends have an address
/// of the family; a missing one (impossible after loading) falls back to the
/// unspecified address, which no stage owns.
pub fn probe_flow(world: &World, inv: &Inventory, p: &Probe) -> ProbeFlow {
    let v6 = p.family == Family::V6;
    let unspecified = if v6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    };
    let (src, src_ip) = match &p.from {
        Endpoint::Pod { namespace, name } if host_network_node(inv, namespace, name).is_some() => {
            let node = host_network_node(inv, namespace, name).unwrap_or_default();
            let ip = node_ip(inv, &node, v6).unwrap_or(unspecified);
            (FlowSource::Ip(ip), ip)
        }
        Endpoint::Pod { namespace, name } => {
            let idx = world.endpoints.iter().position(|e| {
                e.kind == resolve::EndpointKind::Workload
                    && e.namespace.as_deref() == Some(namespace.as_str())
                    && e.name == *name
            });
            let ip = idx
                .and_then(|i| world.endpoints[i].ip_of_family(v6))
                .unwrap_or(unspecified);
            (
                idx.map(FlowSource::Endpoint).unwrap_or(FlowSource::Ip(ip)),
                ip,
            )
        }
        Endpoint::Outside(h) => {
            let ip = outside_ip(inv, h, v6).unwrap_or(unspecified);
            (FlowSource::Ip(ip), ip)
        }
        Endpoint::Node(n) => {
            let ip = node_ip(inv, n, v6).unwrap_or(unspecified);
            (FlowSource::Ip(ip), ip)
        }
    };
    let dst_ip = match &p.to {
        Target::Pod { namespace, name } if host_network_node(inv, namespace, name).is_some() => {
            node_ip(
                inv,
                &host_network_node(inv, namespace, name).unwrap_or_default(),
                v6,
            )
        }
        Target::Pod { namespace, name } => world
            .endpoints
            .iter()
            .find(|e| {
                e.kind == resolve::EndpointKind::Workload
                    && e.namespace.as_deref() == Some(namespace.as_str())
                    && e.name == *name
            })
            .and_then(|e| e.ip_of_family(v6)),
        Target::Outside(h) => outside_ip(inv, h, v6),
        Target::Node(n) => node_ip(inv, n, v6),
        Target::Ip(ip) => Some(*ip),
        Target::Service { namespace, name } => world
            .services
            .iter()
            .find(|s| s.namespace == *namespace && s.name == *name)
            .and_then(|s| s.cluster_ip),
    }
    .unwrap_or(unspecified);
    ProbeFlow {
        from: p.from.clone(),
        to: p.to.clone(),
        src,
        src_ip,
        dst_ip,
        port: p.port,
        protocol: p.protocol,
        family: p.family,
        timeout: p.timeout,
    }
}

/// The node of a pod with `spec.hostNetwork: true` (its traffic is the node's).
pub(crate) fn host_network_node(inv: &Inventory, ns: &str, name: &str) -> Option<String> {
    let key = ResourceKey {
        kind: crate::manifest::Kind::Pod,
        namespace: Some(ns.to_string()),
        name: name.to_string(),
    };
    match &inv.resources.get(&key)?.body {
        crate::manifest::Body::Pod(p) if p.host_network == Some(true) => {
            p.node_name.as_ref().map(|n| n.value.clone())
        }
        _ => None,
    }
}

fn outside_ip(inv: &Inventory, host: &str, v6: bool) -> Option<IpAddr> {
    inv.outside
        .iter()
        .find(|h| h.name == host)?
        .ips
        .iter()
        .copied()
        .find(|ip| ip.is_ipv6() == v6)
}

fn node_ip(inv: &Inventory, node: &str, v6: bool) -> Option<IpAddr> {
    let n = inv.nodes.iter().find(|n| n.name == node)?;
    if v6 {
        n.ipv6.map(IpAddr::V6)
    } else {
        Some(IpAddr::V4(n.ip))
    }
}

/// `default/red`, `laptop`, `node-1`.
pub fn endpoint_name(e: &Endpoint) -> String {
    match e {
        Endpoint::Pod { namespace, name } => format!("{namespace}/{name}"),
        Endpoint::Outside(h) => h.clone(),
        Endpoint::Node(n) => n.clone(),
    }
}

/// `suspicious:80/http`, `svc/default/web:80/tcp`, `10.0.0.1/icmp`.
pub fn target_name(t: &Target, port: Option<u16>, proto: ProbeProtocol) -> String {
    let base = match t {
        Target::Pod { namespace, name } => format!("{namespace}/{name}"),
        Target::Outside(h) => h.clone(),
        Target::Node(n) => n.clone(),
        Target::Ip(IpAddr::V6(ip)) if port.is_some() => format!("[{ip}]"),
        Target::Ip(ip) => ip.to_string(),
        Target::Service { namespace, name } => format!("svc/{namespace}/{name}"),
    };
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    format!("{base}{port}/{}", proto.as_str())
}

/// The directory paths in titles are relative to: the parent of the scenario's
/// directory (the suite root: `scenarios/x.yaml`, `fixtures/...`).
fn scenario_base_dir(sources: &Sources, scenario: &Scenario) -> PathBuf {
    let p = normalize(sources.path(scenario.file));
    p.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Lexical normalization (`a/b/../c` -> `a/c`), no file system access.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

fn display_rel(base: &Path, p: &Path) -> String {
    let n = normalize(p);
    n.strip_prefix(base)
        .map(|r| r.to_path_buf())
        .unwrap_or(n)
        .display()
        .to_string()
}

fn resource_title(r: &Resource) -> String {
    let k = r.key();
    match &k.namespace {
        Some(ns) => format!("{} {ns}/{}", r.kind.name(), k.name),
        None => format!("{} {}", r.kind.name(), k.name),
    }
}

fn key_title(k: &ResourceKey) -> String {
    match &k.namespace {
        Some(ns) => format!("{} {ns}/{}", k.kind.name(), k.name),
        None => format!("{} {}", k.kind.name(), k.name),
    }
}

fn describe_step(
    step: &Step,
    sources: &Sources,
    scenario_file: crate::diag::FileId,
    base: &Path,
    inv: &Inventory,
) -> (StepAction, String) {
    match step {
        Step::Apply { resources, create } => {
            let verb = if *create { "create" } else { "apply" };
            // Group the resources by the file they came from, in order.
            let mut groups: Vec<(String, Vec<String>)> = Vec::new();
            for r in resources {
                // Inline manifests are in the scenario's own file (comparing
                // the file, not parsing its text for each resource, keeps this
                // linear).
                let file = sources.path(r.span.file);
                let name = if file.extension().is_some_and(|e| e == "yaml" || e == "yml")
                    && r.span.file != scenario_file
                {
                    display_rel(base, file)
                } else {
                    "inline manifest".to_string()
                };
                match groups.last_mut() {
                    Some((f, list)) if *f == name => list.push(resource_title(r)),
                    _ => groups.push((name, vec![resource_title(r)])),
                }
            }
            let text = groups
                .iter()
                .map(|(f, l)| format!("{f}: {}", l.join(", ")))
                .collect::<Vec<_>>()
                .join("; ");
            (
                if *create {
                    StepAction::Create
                } else {
                    StepAction::Apply
                },
                format!("{verb} {text}"),
            )
        }
        Step::Delete(keys) => (
            StepAction::Delete,
            format!(
                "delete {}",
                keys.iter().map(key_title).collect::<Vec<_>>().join(", ")
            ),
        ),
        Step::Patch { target, merge } => (
            StepAction::Patch,
            format!("patch {} with {merge}", key_title(target)),
        ),
        Step::Probe(p) => (
            StepAction::Probe,
            format!(
                "probe {} -> {}",
                endpoint_name(&p.from),
                target_name(&p.to, p.port, p.protocol)
            ),
        ),
        Step::Matrix(m) => (
            StepAction::Matrix,
            format!(
                "matrix of {} source{} x {} target{}",
                m.from.len(),
                if m.from.len() == 1 { "" } else { "s" },
                m.to.len(),
                if m.to.len() == 1 { "" } else { "s" }
            ),
        ),
        Step::Serve { host, path, .. } => {
            let file = inv
                .outside
                .iter()
                .find(|h| h.name == *host)
                .and_then(|h| h.files.get(path))
                .map(|f| display_rel(base, &f.path))
                .unwrap_or_default();
            (
                StepAction::Serve,
                format!("serve {file} as {path} on outside host {host}"),
            )
        }
        Step::Advance(d) => (
            StepAction::Advance,
            format!("advance the scenario clock by {}", fmt_duration(*d)),
        ),
        Step::Fail(h) => (
            StepAction::Fail,
            format!("fail outside host {h} (it stops answering)"),
        ),
        Step::Recover(h) => (
            StepAction::Recover,
            format!("recover outside host {h} (it answers again)"),
        ),
    }
}

/// `0s`, `90s` -> `1m30s`, `24h`, `1h30m`.
pub fn fmt_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return if d.is_zero() {
            "0s".into()
        } else {
            format!("{}ms", d.as_millis())
        };
    }
    let mut out = String::new();
    for (unit, n) in [("h", 3600), ("m", 60), ("s", 1)] {
        if s >= n {
            out.push_str(&format!("{}{unit}", s / n));
            s %= n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
        assert_eq!(fmt_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(fmt_duration(Duration::from_secs(86400)), "24h");
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(
            normalize(Path::new("a/scenarios/../fixtures/./x.yaml")),
            PathBuf::from("a/fixtures/x.yaml")
        );
        assert_eq!(display_rel(Path::new("a"), Path::new("a/b/../c")), "c");
    }
}
