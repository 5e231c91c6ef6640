//! This module deals with the kernel dataplane: running a scenario's [`Plan`] for real
//! in network namespaces and turning what the kernel did into one
//! [`policylab::run::Observation`] per probe, to be compared with the reference model.
//!
//! Input: a [`Plan`] (`policylab::run::plan`). Output: a [`KernelRun`]: the
//! observations in [`Plan::probes`] order, the kernel's attribution of each probe
//! (its NFLOG events, decoded) and every feed pull whose real result differs from
//! the model's.
//!
//! How a run goes:
//! 1. The lab is built once ([`policylab::lab::plan_for_states`] over the plan's
//!    step inventories and worlds: every pod of every step, servers, LB routes); dead runs'
//!    namespaces are swept first ([`crate::netns::Lab::new`]).
//! 2. In every node namespace NFLOG listeners bind the compiler's groups:
//!    [`compile::NFLOG_GROUP_DENY`] (rules that drop: probes watch it to end
//!    early), [`compile::NFLOG_GROUP_ALLOW`] (allow and pass),
//!    [`compile::NFLOG_GROUP_REJECT`] (a service without endpoints) and
//!    [`compile::NFLOG_GROUP_LOG_RULE`] (Log-action rules).
//! 3. Outside hosts with `files:` get a [`FeedServer`] (HTTP on 80, HTTPS on 443 with
//!    a certificate from a CA made for the run); feed pulls run from the fabric
//!    namespace with a [`Puller`] that trusts only that CA and resolves only the
//!    scenario's `hostnames` (feedio's documented choice: control-plane traffic, no
//!    scenario policy applies to it).
//! 4. Per step: `fail`/`recover` ([`Cluster::set_outside_failed`]), `serve` (the feed
//!    server's file), the step's feed pulls (real HTTP(S), parsed with
//!    [`policylab::feed::parse`] and checked against the model's list), then, when
//!    the world changed, [`compile::compile`] and one atomic `nft -f` per node (a
//!    probe right after sees the new policy; a node whose table changed only in set
//!    elements, as after a feed pull, gets those elements changed in place, see
//!    [`policylab::nft::Table::set_update_script`]), LB routes moved when
//!    [`policylab::lab::load_balancer_routes`] changes, then the step's probes (all
//!    of a matrix concurrently; one at a time, each captured into its own pcap file,
//!    with [`RunnerOptions::pcap_dir`]) from the source's namespace, bound to the
//!    planned source address.
//!
//! The feed sets loaded are compiled from the plan's world, that is the model's
//! list; the real pull of the same step must give exactly that list, or the run
//! reports a [`FeedDisagreement`] (exit 4), so what the kernel enforces is what the
//! lab's feed server served.
//!
//! # Attribution
//! A probe's events are the NFLOG events of its flow in every node namespace (the
//! deny, allow and reject groups): same
//! protocol and source port, and either the probe's own source address or, after
//! source NAT, a node address or the client address the echo server reported. After
//! a probe batch every listener is drained ([`NflogListener::drain`]): the kernel
//! queues an NFLOG message while it still processes the logged packet, so the events
//! are complete when the probes have their answers (no settle time). A denied probe
//! ends as soon as a denying event of its flow arrives (no timeout wait).
//!
//! Events are put in path order: a packet visits the source's node first and the
//! destination's node last, and the events of one node arrive in the order its rules
//! logged them (one socket per group per namespace: the allowing events, whose
//! order matters, share one). So a node with a source-side
//! stage (workload or host egress) ranks first, one with a destination-side stage
//! (workload or host ingress) last, any other node in between. From the ordered
//! events, as the model defines them (`run::Prediction`): the decider is the first
//! denying event, else the last allowing one; the allowing deciders are the allowing
//! events, each once; `logged`/`log_lines` come from the Log-rule events (one line per
//! Log rule and stage, the packet as that rule saw it). Pass events only trace.
//! A denied probe with no denying event whose source or destination is a `fail:`ed
//! outside host is decided by [`Decider::HostDown`], as the model says.
//!
//! # What the kernel cannot see
//! The client address a server saw is known from the lab's echo servers (TCP, HTTP,
//! UDP); ICMP and SCTP probes report none (and are not compared on it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use policylab::compile::{self, Compiled, LogTag};
use policylab::feed;
use policylab::inventory::{Inventory, OutsideHost};
use policylab::lab::{self, LabPlan};
use policylab::manifest::{Body, Kind, ResourceKey};
use policylab::model::{Decider, StageKind};
use policylab::resolve::{Action, Direction, EndpointToHostAction, World};
use policylab::run::{
    FeedPull, LogLine, Observation, ObservedStage, Outcome, Plan, PlannedProbe, PlannedStep,
    ProbeFlow, PullResult,
};
use policylab::scenario::{Endpoint, ProbeProtocol};

use crate::feedserver::{FeedServer, FeedServerError, FeedServerOptions, ScenarioCa};
use crate::loglines::{self, InterfaceNames, LoggedPacket};
use crate::netns::{NetNs, NetnsError};
use crate::nflog::{proto, FiveTuple, NflogError, NflogEvent, NflogListener, NflogSink};
use crate::pcap::{Capture, CaptureScope};
use crate::probe::{self, ProbeError, ProbeKind, ProbeSpec};
use crate::puller::{PullHeader, PullRequest, Puller};
use crate::topology::{BuildOptions, Cluster, TopologyError};

/// The prefix of Calico's Log-action lines (Felix's `LogPrefix` default).
pub const LOG_PREFIX: &str = "calico-packet: ";
/// How long one feed pull may take (a failed host times out after this).
pub const PULL_TIMEOUT: Duration = Duration::from_secs(2);
/// Probes in flight at once.
pub const PROBE_CONCURRENCY: usize = 128;
/// Probes per batch (events are collected and the listeners drained per batch; the
/// sinks remember [`crate::nflog::HISTORY`] events).
pub const PROBE_BATCH: usize = 256;
/// The environment variable of the test hook that perturbs the kernel side (debug
/// builds only): when set to `1`, the first denying policy rule compiled for each
/// node accepts instead (and does not log), so the kernel disagrees with the model.
pub const PERTURB_ENV: &str = "POLICYLAB_TEST_PERTURB_KERNEL";

/// What went wrong running on the kernel (the machine, not the scenario).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("planning the lab: {0}")]
    Lab(#[from] lab::FromStatesError),
    #[error("building the lab: {0}")]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("listening to NFLOG: {0}")]
    Nflog(#[from] NflogError),
    #[error("feed server: {0}")]
    FeedServer(#[from] FeedServerError),
    #[error("loading the policy of node {node}: {source}")]
    Nft {
        node: String,
        #[source]
        source: crate::nft::NftError,
    },
    /// nft refused a table policylab compiled: a bug in policylab, never the
    /// machine's (exit 70).
    #[error("nft rejected the table policylab compiled for node {node}:\n{stderr}\nthe offending lines of the script:\n{lines}")]
    TableRejected {
        node: String,
        stderr: String,
        lines: String,
    },
    #[error("probe {probe}: {source}")]
    Probe {
        probe: String,
        #[source]
        source: ProbeError,
    },
    #[error("packet capture: {0}")]
    Capture(#[from] crate::pcap::CaptureError),
    #[error("{0}")]
    Missing(String),
}

impl RunnerError {
    /// The exit code a command ends with after this error.
    pub fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self {
            // The scenario asks for what a lab built once per run cannot be
            // (a pod moving between nodes): invalid input, nothing was built.
            RunnerError::Lab(_) => Exit::Invalid,
            // The machine refused to build or run the lab.
            RunnerError::Topology(_)
            | RunnerError::Netns(_)
            | RunnerError::Nflog(_)
            | RunnerError::FeedServer(_)
            | RunnerError::Nft { .. }
            | RunnerError::Probe { .. }
            | RunnerError::Capture(_) => Exit::Machine,
            // The plan and the lab built from it do not match, or nft refused a
            // table policylab compiled (decision kernel-table-rejected): a bug.
            RunnerError::Missing(_) | RunnerError::TableRejected { .. } => Exit::Internal,
        }
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub build: BuildOptions,
    pub pull_timeout: Duration,
    /// Flip the first denying policy rule of every node (test hook, see
    /// [`PERTURB_ENV`]).
    pub perturb: bool,
    /// Capture every probe's packets into one pcap file per probe in this directory
    /// ([`pcap_file_name`]); probes then run one at a time.
    pub pcap_dir: Option<std::path::PathBuf>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            build: BuildOptions::default(),
            pull_timeout: PULL_TIMEOUT,
            perturb: perturb_requested(),
            pcap_dir: None,
        }
    }
}

/// Why an SCTP probe is not run on a kernel without SCTP (the report's words).
pub const NO_SCTP: &str = "this kernel has no SCTP";

/// The environment variable of the test hook that makes nft reject every table
/// load (debug builds only): a rule naming a chain that does not exist is appended
/// to each node's script, to test the exit code of a rejected table (70).
pub const BREAK_TABLE_ENV: &str = "POLICYLAB_TEST_BREAK_TABLE";

fn break_table_requested() -> bool {
    cfg!(debug_assertions) && std::env::var(BREAK_TABLE_ENV).is_ok_and(|v| v == "1")
}

/// Whether the test hook [`PERTURB_ENV`] is on (never in release builds).
pub fn perturb_requested() -> bool {
    cfg!(debug_assertions) && std::env::var(PERTURB_ENV).is_ok_and(|v| v == "1")
}

/// One NFLOG event of a probe's flow, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelEvent {
    pub node: String,
    /// `None` when the prefix is not in the legend (a bug; shown in the trace).
    pub tag: Option<LogTag>,
    pub prefix: String,
    pub packet: Option<FiveTuple>,
    pub log_rule: bool,
    /// The event logged the probe's reply, not its own packet (an untracked
    /// flow's reply dropped).
    pub reply: bool,
    /// For a Log-rule event, the kernel's LOG line of the packet.
    pub line: Option<String>,
}

impl std::fmt::Display for KernelEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let packet = match &self.packet {
            Some(t) => format!(
                "{}:{} -> {}:{} proto {}",
                t.src, t.src_port, t.dst, t.dst_port, t.protocol
            ),
            None => "packet not parsed".into(),
        };
        match &self.tag {
            Some(t) => write!(
                f,
                "{}: {}: {}{} [{packet}]",
                self.node,
                t.stage.describe(),
                t.decider,
                if t.group == compile::NFLOG_GROUP_LOG_RULE {
                    " (log rule)"
                } else {
                    ""
                }
            ),
            None => write!(
                f,
                "{}: unknown NFLOG prefix {:?} [{packet}]",
                self.node, self.prefix
            ),
        }
    }
}

/// What the kernel did with one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelProbe {
    pub observation: Observation,
    /// The probe's events in path order (verdict group, then Log rules).
    pub events: Vec<KernelEvent>,
    /// The harness's own words on the probe (a refusal's errno, a drop's prefix).
    pub detail: Option<String>,
    /// The probe's Log-rule lines as the kernel's LOG target would write them
    /// (`calico-packet: IN=... OUT=... MAC=... SRC=...`, [`crate::loglines`]), each
    /// after its node's name and a colon, in path order.
    pub kernel_log_lines: Vec<String>,
    /// From the start of the connection attempt to the verdict (JUnit's time;
    /// never in a report's text).
    pub elapsed: Duration,
}

impl KernelProbe {
    /// The kernel's attribution, one line per event.
    pub fn trace(&self) -> String {
        let mut out = String::new();
        if self.events.is_empty() {
            out.push_str("  (no NFLOG event of this flow)\n");
        }
        for e in &self.events {
            out.push_str(&format!("  {e}\n"));
        }
        if let Some(d) = &self.detail {
            out.push_str(&format!("  probe: {d}\n"));
        }
        out
    }
}

/// A feed pull whose real result differs from the model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedDisagreement {
    pub step: usize,
    pub feed: String,
    pub model: String,
    pub kernel: String,
}

impl std::fmt::Display for FeedDisagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {}: feed {}: the model pulled {}, the kernel lab pulled {}",
            self.step, self.feed, self.model, self.kernel
        )
    }
}

/// One real feed pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPull {
    pub step: usize,
    pub feed: String,
    pub url: String,
    /// The number of entries, or the error.
    pub result: Result<usize, String>,
}

/// How a node's policy was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadKind {
    /// The whole table replaced (`nft -f` of the table's script).
    Table,
    /// Only set elements added and deleted, in place.
    SetElements,
}

/// One `nft -f` of a node's policy, with how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLoad {
    pub step: usize,
    pub node: String,
    pub kind: LoadKind,
    pub elapsed: Duration,
}

/// A scenario's run on the kernel.
#[derive(Debug, Clone, Default)]
pub struct KernelRun {
    /// Every policy load, in step order (timings: never in a report).
    pub loads: Vec<TableLoad>,
    /// In [`Plan::probes`] order.
    pub probes: Vec<KernelProbe>,
    /// Every real feed pull, in order.
    pub pulls: Vec<KernelPull>,
    pub feed_disagreements: Vec<FeedDisagreement>,
}

impl KernelRun {
    pub fn observations(&self) -> Vec<Observation> {
        self.probes.iter().map(|p| p.observation.clone()).collect()
    }
}

/// Allow, deny or pass: what a decider does to the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
    Pass,
}

fn direction_of(stage: StageKind) -> Direction {
    match stage {
        StageKind::WorkloadEgress
        | StageKind::HostNormalEgress
        | StageKind::HostForwardEgress
        | StageKind::HostUntrackedEgress => Direction::Egress,
        _ => Direction::Ingress,
    }
}

fn effect(world: &World, tag: &LogTag) -> Effect {
    let of = |a: Action| match a {
        Action::Allow => Effect::Allow,
        Action::Deny => Effect::Deny,
        Action::Pass | Action::Log => Effect::Pass,
    };
    match &tag.decider {
        Decider::Rule { action, .. } | Decider::EndOfTier { action, .. } => of(*action),
        Decider::Profile { name, rule_index } => world
            .profiles
            .iter()
            .find(|p| p.name == *name)
            .and_then(|p| p.rules(direction_of(tag.stage)).get(*rule_index))
            .map(|r| of(r.action()))
            .unwrap_or(Effect::Allow),
        Decider::NoProfile
        | Decider::NoServiceEndpoint
        | Decider::UntrackedReply
        | Decider::Unroutable
        | Decider::HostDown { .. }
        | Decider::EndpointToHost(EndpointToHostAction::Drop) => Effect::Deny,
        Decider::Failsafe
        | Decider::DefaultForwardAllow
        | Decider::NotPoliced
        | Decider::EndpointToHost(EndpointToHostAction::Accept | EndpointToHostAction::Return) => {
            Effect::Allow
        }
    }
}

/// Where a stage is on a packet's path across nodes: 0 source side, 2 destination
/// side, 1 neither.
fn side(stage: StageKind) -> Option<u8> {
    match stage {
        StageKind::WorkloadEgress
        | StageKind::HostNormalEgress
        | StageKind::HostUntrackedEgress
        | StageKind::EndpointToHost => Some(0),
        StageKind::WorkloadIngress | StageKind::HostNormalIngress | StageKind::Unpoliced => Some(2),
        _ => None,
    }
}

/// Puts events in path order (see the module docs): stable sort by node rank.
fn path_order(events: &mut [KernelEvent]) {
    let mut rank: BTreeMap<String, u8> = BTreeMap::new();
    for e in events.iter() {
        let Some(t) = &e.tag else { continue };
        let r = rank.entry(e.node.clone()).or_insert(1);
        match side(t.stage) {
            Some(0) => *r = 0,
            Some(2) if *r != 0 => *r = 2,
            _ => {}
        }
    }
    events.sort_by_key(|e| rank.get(&e.node).copied().unwrap_or(1));
}

/// Where a stage sits in one node's pipeline (raw, mangle, filter FORWARD or
/// INPUT, POSTROUTING; raw and filter OUTPUT for the host's own traffic).
fn stage_rank(k: StageKind) -> u8 {
    match k {
        StageKind::HostUntrackedIngress => 0,
        StageKind::HostPreDnat => 1,
        StageKind::ServiceDnat => 2,
        StageKind::HostForwardIngress => 3,
        StageKind::WorkloadEgress => 4,
        StageKind::EndpointToHost | StageKind::HostNormalIngress | StageKind::Unpoliced => 5,
        StageKind::HostForwardEgress => 6,
        StageKind::ServiceSnat => 7,
        StageKind::WorkloadIngress => 8,
        StageKind::HostUntrackedEgress => 9,
        StageKind::HostNormalEgress => 10,
    }
}

/// The stages of a probe from its path-ordered verdict events (decision
/// `kernel-flow-logs`): per node in path order, per stage in pipeline order; in a
/// stage its passes, then its verdict (they come from different NFLOG groups, so
/// arrival order does not tell); the packet as the stage's first event logged it.
/// Replies and Log rules are left out.
fn observed_stages(world: &World, events: &[KernelEvent]) -> Vec<ObservedStage> {
    type Entry = (usize, u8, ObservedStage, Vec<(Decider, Action)>);
    let mut nodes: Vec<&str> = Vec::new();
    let mut stages: Vec<Entry> = Vec::new();
    for e in events.iter().filter(|e| !e.log_rule && !e.reply) {
        let (Some(t), Some(p)) = (&e.tag, &e.packet) else {
            continue;
        };
        let np = match nodes.iter().position(|n| *n == e.node) {
            Some(i) => i,
            None => {
                nodes.push(&e.node);
                nodes.len() - 1
            }
        };
        let i = match stages
            .iter()
            .position(|(n, _, s, _)| *n == np && s.kind == t.stage)
        {
            Some(i) => i,
            None => {
                stages.push((
                    np,
                    stage_rank(t.stage),
                    ObservedStage {
                        kind: t.stage,
                        src: p.src,
                        src_port: p.src_port,
                        dst: p.dst,
                        dst_port: p.dst_port,
                        proto: p.protocol,
                        deciders: Vec::new(),
                    },
                    Vec::new(),
                ));
                stages.len() - 1
            }
        };
        let (_, _, st, verdicts) = &mut stages[i];
        match effect(world, t) {
            Effect::Pass => st.deciders.push((t.decider.clone(), Action::Pass)),
            Effect::Allow => verdicts.push((t.decider.clone(), Action::Allow)),
            Effect::Deny => verdicts.push((t.decider.clone(), Action::Deny)),
        }
    }
    stages.sort_by_key(|(n, r, _, _)| (*n, *r));
    stages
        .into_iter()
        .map(|(_, _, mut st, verdicts)| {
            st.deciders.extend(verdicts);
            st
        })
        .collect()
}

/// The deciding decider and the allowing ones, from path-ordered verdict events.
fn attribute(world: &World, events: &[KernelEvent]) -> (Option<Decider>, Vec<Decider>) {
    let mut allowing: Vec<Decider> = Vec::new();
    let mut last_allow = None;
    let mut deny = None;
    for e in events.iter().filter(|e| !e.log_rule) {
        let Some(t) = &e.tag else { continue };
        match effect(world, t) {
            Effect::Allow => {
                // The last allowing event decides, even when an earlier stage (on
                // another node) named the same decider: a profile allowing on both
                // ends of a forwarded flow still decides after the forward stage
                // in between (`hep-forward-default-allow`).
                last_allow = Some(t.decider.clone());
                if !allowing.contains(&t.decider) {
                    allowing.push(t.decider.clone());
                }
            }
            Effect::Deny => {
                deny.get_or_insert_with(|| t.decider.clone());
            }
            Effect::Pass => {}
        }
    }
    match deny {
        Some(d) => (Some(d), Vec::new()),
        None => (last_allow, allowing),
    }
}

fn log_line(prefix: &str, t: &FiveTuple) -> LogLine {
    LogLine {
        prefix: prefix.to_string(),
        src: t.src,
        dst: t.dst,
        proto: t.protocol,
        dst_port: matches!(t.protocol, proto::TCP | proto::UDP | proto::SCTP).then_some(t.dst_port),
    }
}

/// Applies the test hook: the first denying policy rule (a rule that logs and drops,
/// in a policy or profile chain) accepts instead, without logging.
fn perturb(compiled: &mut Compiled) {
    for table in compiled.tables.values_mut() {
        let rule = table
            .chains
            .iter_mut()
            .filter(|c| c.base.is_none() && c.name.as_str().starts_with("cali-p"))
            .flat_map(|c| c.rules.iter_mut())
            .find(|r| r.verdict == Some(policylab::nft::Verdict::Drop));
        if let Some(r) = rule {
            // Silently: a denying log would end the probe early as denied.
            r.verdict = Some(policylab::nft::Verdict::Accept);
            r.statements
                .retain(|s| !matches!(s, policylab::nft::Statement::Nflog { .. }));
        }
    }
}

/// A built lab with its listeners, feed servers and current policy. Reusable: a
/// differential test applies many worlds to one lab.
pub struct KernelLab {
    // Field order is drop order: listeners and servers go before the namespaces.
    listeners: Vec<NflogListener>,
    feed_servers: BTreeMap<String, FeedServer>,
    served: BTreeMap<String, BTreeMap<String, String>>,
    puller: Puller,
    /// Deny, allow and reject groups.
    drops: NflogSink,
    allows: NflogSink,
    rejects: NflogSink,
    logs: NflogSink,
    compiled: Arc<Compiled>,
    world: Option<Arc<World>>,
    lb_routes: BTreeMap<IpAddr, String>,
    node_addrs: BTreeSet<IpAddr>,
    /// Every pod address of the lab (with node and outside addresses: what the
    /// fabric routes somewhere; anything else meets its blackhole route).
    pod_addrs: BTreeSet<IpAddr>,
    outside_addrs: BTreeMap<IpAddr, String>,
    failed: BTreeSet<String>,
    perturb: bool,
    /// Interface names of every node namespace, by namespace name (Log lines).
    iface_names: BTreeMap<String, InterfaceNames>,
    cluster: Cluster,
}

impl std::fmt::Debug for KernelLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelLab")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl KernelLab {
    /// Builds `plan`, listens to NFLOG in every node and starts a feed server for
    /// every outside host in `outside` with files. Must run inside a multi-thread
    /// tokio runtime.
    pub async fn build(
        plan: &LabPlan,
        outside: &[OutsideHost],
        opts: &RunnerOptions,
    ) -> Result<KernelLab, RunnerError> {
        let cluster = Cluster::build(plan, &opts.build).await?;
        let drops = NflogSink::new();
        let allows = NflogSink::new();
        let rejects = NflogSink::new();
        let logs = NflogSink::new();
        let mut listeners = Vec::new();
        for ns in cluster.nodes().values() {
            for (group, sink) in [
                (compile::NFLOG_GROUP_DENY, &drops),
                (compile::NFLOG_GROUP_ALLOW, &allows),
                (compile::NFLOG_GROUP_REJECT, &rejects),
                (compile::NFLOG_GROUP_LOG_RULE, &logs),
            ] {
                listeners.push(NflogListener::start(ns, group, sink.clone()).await?);
            }
        }
        let ca = ScenarioCa::generate(&plan.prefix)?;
        let mut puller = Puller::new(cluster.fabric()).trust(ca.cert_der().clone());
        let mut feed_servers = BTreeMap::new();
        let mut served = BTreeMap::new();
        let mut outside_addrs = BTreeMap::new();
        for h in outside {
            for ip in &h.ips {
                outside_addrs.insert(*ip, h.name.clone());
            }
            for name in &h.hostnames {
                puller = puller.resolve(name, &h.ips);
            }
            if h.files.is_empty() {
                continue;
            }
            let ns = cluster.outside_host(&h.name).ok_or_else(|| {
                RunnerError::Missing(format!("outside host {} is not in the lab", h.name))
            })?;
            let files: BTreeMap<String, String> = h
                .files
                .iter()
                .map(|(p, f)| (p.clone(), f.contents.clone()))
                .collect();
            let identity = ca.issue(&h.hostnames, &h.ips)?;
            let server = FeedServer::start(
                ns,
                files
                    .iter()
                    .map(|(p, c)| (p.clone(), c.clone().into_bytes()))
                    .collect(),
                FeedServerOptions::http(&h.ips).with_https(identity),
            )
            .await?;
            feed_servers.insert(h.name.clone(), server);
            served.insert(h.name.clone(), files);
        }
        let mut iface_names = BTreeMap::new();
        for ns in cluster.nodes().values() {
            iface_names.insert(ns.name().to_string(), InterfaceNames::of(ns)?);
        }
        let node_addrs = plan.nodes.iter().flat_map(|n| n.addresses()).collect();
        let pod_addrs = plan
            .pods
            .iter()
            .flat_map(|p| std::iter::once(IpAddr::V4(p.ipv4)).chain(p.ipv6.map(IpAddr::V6)))
            .collect();
        let lb_routes = plan
            .load_balancers
            .iter()
            .map(|l| (l.address, l.node.clone()))
            .collect();
        Ok(KernelLab {
            listeners,
            feed_servers,
            served,
            puller,
            drops,
            allows,
            rejects,
            logs,
            compiled: Arc::new(Compiled::default()),
            world: None,
            lb_routes,
            node_addrs,
            pod_addrs,
            outside_addrs,
            failed: BTreeSet::new(),
            perturb: opts.perturb,
            iface_names,
            cluster,
        })
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The compiled policy now loaded.
    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    /// Compiles `world` and loads every node's table (one atomic `nft -f` per node,
    /// all nodes concurrently), then moves LB routes that changed. A node whose table
    /// differs from the loaded one only in set elements (a feed update) gets them
    /// changed in place ([`policylab::nft::Table::set_update_script`]); a node whose
    /// table did not change is not touched. Returns the loads made (their `step` is 0).
    pub async fn apply(&mut self, world: Arc<World>) -> Result<Vec<TableLoad>, RunnerError> {
        let mut compiled = compile::compile(&world);
        if self.perturb {
            perturb(&mut compiled);
        }
        let mut loads = Vec::new();
        for (node, table) in &compiled.tables {
            let ns = self
                .cluster
                .node(node)
                .ok_or_else(|| RunnerError::Missing(format!("node {node} is not in the lab")))?
                .clone();
            // Only set elements changed (a feed's list): change them in place.
            let (kind, script) = match self
                .compiled
                .tables
                .get(node)
                .and_then(|old| table.set_update_script(old))
            {
                Some(script) if script.is_empty() => continue,
                Some(script) => (LoadKind::SetElements, script),
                None => (LoadKind::Table, table.to_string()),
            };
            let script = if break_table_requested() {
                format!(
                    "{script}add rule inet {} no-such-chain accept\n",
                    table.name
                )
            } else {
                script
            };
            let node = node.clone();
            loads.push(async move {
                let started = std::time::Instant::now();
                crate::nft::apply_async(&ns, &script)
                    .await
                    .map_err(|source| match source {
                        crate::nft::NftError::Rejected { stderr, .. } => {
                            RunnerError::TableRejected {
                                node: node.clone(),
                                lines: offending_lines(&stderr, &script),
                                stderr,
                            }
                        }
                        source => RunnerError::Nft {
                            node: node.clone(),
                            source,
                        },
                    })?;
                Ok::<_, RunnerError>(TableLoad {
                    step: 0,
                    node,
                    kind,
                    elapsed: started.elapsed(),
                })
            });
        }
        let mut done = Vec::new();
        for r in futures::future::join_all(loads).await {
            done.push(r?);
        }
        for lb in lab::load_balancer_routes(&world) {
            if self.lb_routes.get(&lb.address) != Some(&lb.node) {
                self.cluster
                    .route_load_balancer(lb.address, &lb.node)
                    .await?;
                self.lb_routes.insert(lb.address, lb.node);
            }
        }
        self.compiled = Arc::new(compiled);
        self.world = Some(world);
        Ok(done)
    }

    /// Makes the failed outside hosts exactly `failed`.
    pub async fn set_failed(&mut self, failed: &BTreeSet<String>) -> Result<(), RunnerError> {
        for h in failed.difference(&self.failed) {
            self.cluster.set_outside_failed(h, true).await?;
        }
        for h in self.failed.difference(failed) {
            self.cluster.set_outside_failed(h, false).await?;
        }
        self.failed = failed.clone();
        Ok(())
    }

    /// Serves the files the outside hosts have in `inv` (a `serve:` step).
    pub fn sync_files(&mut self, inv: &Inventory) {
        for h in &inv.outside {
            let Some(server) = self.feed_servers.get(&h.name) else {
                continue;
            };
            let now = self.served.entry(h.name.clone()).or_default();
            for (path, f) in &h.files {
                if now.get(path) != Some(&f.contents) {
                    server.serve(path, f.contents.clone().into_bytes());
                    now.insert(path.clone(), f.contents.clone());
                }
            }
            for path in now.keys().cloned().collect::<Vec<_>>() {
                if !h.files.contains_key(&path) {
                    server.remove(&path);
                    now.remove(&path);
                }
            }
        }
    }

    /// Pulls a step's feeds for real and compares each result with the model's.
    pub async fn check_pulls(
        &self,
        step: &PlannedStep,
        timeout: Duration,
    ) -> (Vec<KernelPull>, Vec<FeedDisagreement>) {
        let mut pulls = Vec::new();
        let mut out = Vec::new();
        for (i, pull) in step.pulls.iter().enumerate() {
            let last = !step.pulls[i + 1..].iter().any(|p| p.feed == pull.feed);
            let expected_list = last
                .then(|| step.feeds.iter().find(|f| f.name == pull.feed))
                .flatten()
                .map(|f| f.nets.clone());
            let kernel = self.pull(&step.inventory, pull, timeout).await;
            pulls.push(KernelPull {
                step: step.number,
                feed: pull.feed.clone(),
                url: pull.url.clone(),
                result: kernel.as_ref().map(|l| l.nets.len()).map_err(Clone::clone),
            });
            let model = match &pull.result {
                PullResult::Ok { entries, .. } => Ok(*entries),
                PullResult::Failed { message, .. } => Err(message.clone()),
            };
            let disagreement = match (&model, &kernel) {
                (Ok(n), Ok(list)) => {
                    let same = match &expected_list {
                        Some(nets) => *nets == list.nets,
                        None => *n == list.nets.len(),
                    };
                    (!same).then(|| {
                        (
                            format!("{n} entries"),
                            format!(
                                "{} entries{}",
                                list.nets.len(),
                                if expected_list.is_some() {
                                    " (a different list)"
                                } else {
                                    ""
                                }
                            ),
                        )
                    })
                }
                (Err(_), Err(_)) => None,
                (Ok(n), Err(e)) => Some((format!("{n} entries"), format!("nothing ({e})"))),
                (Err(m), Ok(list)) => Some((
                    format!("nothing ({m})"),
                    format!("{} entries", list.nets.len()),
                )),
            };
            if let Some((model, kernel)) = disagreement {
                out.push(FeedDisagreement {
                    step: step.number,
                    feed: pull.feed.clone(),
                    model,
                    kernel,
                });
            }
        }
        (pulls, out)
    }

    async fn pull(
        &self,
        inv: &Inventory,
        pull: &FeedPull,
        timeout: Duration,
    ) -> Result<feed::FeedList, String> {
        let key = ResourceKey {
            kind: Kind::GlobalThreatFeed,
            namespace: None,
            name: pull.feed.clone(),
        };
        let spec = match inv.resources.get(&key).map(|r| &r.body) {
            Some(Body::ThreatFeed(spec)) => spec,
            _ => return Err(format!("feed {} is not in the cluster", pull.feed)),
        };
        let mut req = PullRequest::new(pull.url.clone()).with_timeout(timeout);
        let headers = spec
            .pull
            .as_ref()
            .and_then(|p| p.value.http.as_ref())
            .and_then(|h| h.value.headers.as_ref());
        for h in headers.into_iter().flatten() {
            req = req.with_header(PullHeader::from_manifest(&h.value));
        }
        let body = self
            .puller
            .pull(&req)
            .await
            .map_err(|e| e.to_string())?
            .body;
        feed::parse(&feed::FeedFormat::from_spec(spec), &body).map_err(|e| e.to_string())
    }

    /// The namespace a probe is sent from. A host-networked pod is no pod of the lab:
    /// its traffic is its node's (the node holding the planned source address).
    fn source_ns(&self, from: &Endpoint, src_ip: IpAddr) -> Result<NetNs, RunnerError> {
        let node_with_src = || {
            self.cluster
                .plan()
                .nodes
                .iter()
                .find(|n| n.addresses().contains(&src_ip))
                .and_then(|n| self.cluster.node(&n.name))
        };
        let ns = match from {
            Endpoint::Pod { namespace, name } => {
                self.cluster.pod(namespace, name).or_else(node_with_src)
            }
            Endpoint::Outside(h) => self.cluster.outside_host(h),
            Endpoint::Node(n) => self.cluster.node(n),
        };
        ns.cloned().ok_or_else(|| {
            RunnerError::Missing(format!(
                "the probe source {} has no namespace in the lab",
                policylab::run::endpoint_name(from)
            ))
        })
    }

    /// Whether a pod, node or outside host of the lab has the address.
    fn holds(&self, ip: IpAddr) -> bool {
        self.pod_addrs.contains(&ip)
            || self.node_addrs.contains(&ip)
            || self.outside_addrs.contains_key(&ip)
    }

    /// Runs probes (concurrently, in batches) and attributes each from NFLOG.
    pub async fn probe(&self, flows: &[&ProbeFlow]) -> Result<Vec<KernelProbe>, RunnerError> {
        let mut out = Vec::with_capacity(flows.len());
        for batch in flows.chunks(PROBE_BATCH) {
            let mut specs = Vec::with_capacity(batch.len());
            for f in batch {
                specs.push((self.source_ns(&f.from, f.src_ip)?, spec_of(f)));
            }
            for sink in [&self.drops, &self.allows, &self.rejects, &self.logs] {
                sink.clear();
            }
            let results = probe::probe_many(&specs, PROBE_CONCURRENCY, Some(&self.drops)).await;
            for l in &self.listeners {
                l.drain().await?;
            }
            let mut verdicts = self.drops.events();
            verdicts.extend(self.rejects.events());
            verdicts.extend(self.allows.events());
            let logs = self.logs.events();
            for (f, r) in batch.iter().zip(results) {
                if let Err(ProbeError::SctpUnsupported(_)) = &r {
                    // The machine lacks a kernel feature for this probe only: every
                    // other probe runs (README, exit codes).
                    out.push(Self::not_run(NO_SCTP));
                    continue;
                }
                let o = r.map_err(|source| RunnerError::Probe {
                    probe: format!(
                        "{} -> {}",
                        policylab::run::endpoint_name(&f.from),
                        policylab::run::target_name(&f.to, f.port, f.protocol)
                    ),
                    source,
                })?;
                out.push(self.observe(f, &o, &verdicts, &logs));
            }
        }
        Ok(out)
    }

    fn observe(
        &self,
        flow: &ProbeFlow,
        o: &probe::Observation,
        verdicts: &[Arc<NflogEvent>],
        logs: &[Arc<NflogEvent>],
    ) -> KernelProbe {
        let outcome = match o.outcome {
            probe::Outcome::Connected => Outcome::Allow,
            probe::Outcome::Refused => Outcome::Refused,
            probe::Outcome::TimedOut => Outcome::Deny,
        };
        let client = (outcome == Outcome::Allow).then(|| o.client_ip()).flatten();
        let ours = |t: &FiveTuple| -> bool {
            let Some(local) = o.local_addr else {
                return false;
            };
            t.protocol == protocol_number(flow)
                && t.src_port == local.port()
                && (t.src == local.ip()
                    || self.node_addrs.contains(&t.src)
                    || Some(t.src) == client)
        };
        // The drop of a reply decides an untracked flow (its reply has no conntrack
        // entry: INVALID, or a new flow policy drops); a reply's allows only trace
        // the reply, as in the model, and are not the probe's.
        let sent = o.local_addr.map(|local| FiveTuple {
            protocol: protocol_number(flow),
            src: local.ip(),
            src_port: local.port(),
            dst: flow.dst_ip,
            dst_port: flow.port.unwrap_or(0),
        });
        let reply_drop = |e: &NflogEvent, t: &FiveTuple| -> bool {
            e.group == compile::NFLOG_GROUP_DENY && sent.is_some_and(|s| s.reply_of(t))
        };
        let decode = |events: &[Arc<NflogEvent>], log_rule: bool| -> Vec<KernelEvent> {
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            let mut lines = Vec::new();
            for e in events {
                let Some(t) = e.tuple.as_ref().filter(|t| ours(t) || reply_drop(e, t)) else {
                    continue;
                };
                let reply = !ours(t);
                // A connected TCP probe: drops of its later segments (no SYN) come
                // after the handshake that decided it (model decision `notracked-reply`).
                if outcome == Outcome::Allow
                    && flow.protocol == ProbeProtocol::Tcp
                    && probe::is_post_handshake_tcp(&e.payload)
                {
                    continue;
                }
                if !seen.insert((e.namespace.clone(), e.prefix.clone())) {
                    continue;
                }
                let tag = self.compiled.decode(&e.prefix).cloned();
                if log_rule {
                    let names = self.iface_names.get(&e.namespace);
                    let mut p = LoggedPacket::from_event(
                        e,
                        names.unwrap_or(&InterfaceNames::from_pairs([])),
                    );
                    // The logging node's `logPrefix` (decision `felix-configuration`).
                    let node = tag
                        .as_ref()
                        .map_or(e.namespace.as_str(), |t| t.node.as_str());
                    let prefix = match self.world.as_ref() {
                        Some(w) => format!("{}: ", w.log_prefix(node)),
                        None => LOG_PREFIX.to_string(),
                    };
                    p.prefix = &prefix;
                    lines.push(loglines::format_line(&p));
                }
                out.push(KernelEvent {
                    node: tag
                        .as_ref()
                        .map(|t| t.node.clone())
                        .unwrap_or_else(|| e.namespace.clone()),
                    tag,
                    prefix: e.prefix.clone(),
                    packet: Some(*t),
                    log_rule,
                    reply,
                    line: lines.pop(),
                });
            }
            path_order(&mut out);
            out
        };
        let mut events = decode(verdicts, false);
        let log_events = decode(logs, true);
        let kernel_log_lines: Vec<String> = log_events
            .iter()
            .filter_map(|e| e.line.as_ref().map(|l| format!("{}: {l}", e.node)))
            .collect();
        let world = self.world.as_deref();
        let (mut decider, allowing) = match world {
            Some(w) => attribute(w, &events),
            None => (None, Vec::new()),
        };
        let denied_by_policy = decider.as_ref().zip(world).is_some_and(|(d, w)| {
            events
                .iter()
                .filter_map(|e| e.tag.as_ref())
                .any(|t| t.decider == *d && effect(w, t) == Effect::Deny)
        });
        if outcome == Outcome::Deny && !denied_by_policy {
            let src_host = match &flow.from {
                Endpoint::Outside(h) => Some(h.clone()),
                _ => None,
            };
            let dst_host = self.outside_addrs.get(&flow.dst_ip).cloned();
            if let Some(h) = src_host
                .filter(|h| self.failed.contains(h))
                .or(dst_host.filter(|h| self.failed.contains(h)))
            {
                decider = Some(Decider::HostDown { host: h });
            } else if !self.holds(flow.dst_ip)
                && !events
                    .iter()
                    .any(|e| e.packet.is_some_and(|p| p.dst != flow.dst_ip))
            {
                // Nothing in the lab holds the address and no node rewrote it
                // (DNAT): the fabric's blackhole route dropped it, silently, as the
                // model's `Unroutable` says (decision `unroutable-address`).
                decider = Some(Decider::Unroutable);
            }
        }
        let log_lines: Vec<LogLine> = log_events
            .iter()
            .filter_map(|e| {
                let prefix = self
                    .world
                    .as_ref()
                    .map_or(policylab::resolve::DEFAULT_LOG_PREFIX, |w| {
                        w.log_prefix(&e.node)
                    });
                e.packet.as_ref().map(|t| log_line(prefix, t))
            })
            .collect();
        let status = if flow.protocol == ProbeProtocol::Http && outcome == Outcome::Allow {
            o.http_status
        } else {
            None
        };
        let allowing = if outcome == Outcome::Deny {
            Vec::new()
        } else {
            allowing
        };
        let flow_logs = match world {
            Some(w) => policylab::run::observed_records(w, flow, &observed_stages(w, &events)),
            None => Vec::new(),
        };
        events.extend(log_events);
        KernelProbe {
            observation: Observation {
                outcome,
                status,
                client_ip_seen: client,
                decider,
                allowing,
                logged: !log_lines.is_empty(),
                log_lines,
                flow_logs,
                not_run: None,
            },
            events,
            detail: o.detail.clone(),
            kernel_log_lines,
            elapsed: o.elapsed,
        }
    }

    /// A probe this machine cannot run (a kernel without SCTP): reported as not
    /// run, with nothing observed.
    fn not_run(why: &str) -> KernelProbe {
        KernelProbe {
            observation: Observation {
                outcome: Outcome::Deny,
                status: None,
                client_ip_seen: None,
                decider: None,
                allowing: Vec::new(),
                logged: false,
                log_lines: Vec::new(),
                flow_logs: Vec::new(),
                not_run: Some(why.to_string()),
            },
            events: Vec::new(),
            detail: Some(why.to_string()),
            kernel_log_lines: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// Stops everything and removes the lab's namespaces.
    pub fn teardown(self) -> Result<(), NetnsError> {
        let KernelLab {
            listeners,
            feed_servers,
            cluster,
            ..
        } = self;
        drop(listeners);
        drop(feed_servers);
        cluster.teardown()
    }
}

fn protocol_number(flow: &ProbeFlow) -> u8 {
    match flow.protocol {
        ProbeProtocol::Tcp | ProbeProtocol::Http => proto::TCP,
        ProbeProtocol::Udp => proto::UDP,
        ProbeProtocol::Sctp => proto::SCTP,
        ProbeProtocol::Icmp if flow.dst_ip.is_ipv6() => proto::ICMPV6,
        ProbeProtocol::Icmp => proto::ICMP,
    }
}

/// Source ports probes are sent from, in turn: below the kernel's ephemeral range
/// (32768 and up), so they never meet a port the kernel picked.
const PROBE_PORTS: std::ops::Range<u16> = 10_000..32_768;

/// The next probe source port (every probe of a process gets a different one until
/// the range wraps).
fn next_probe_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let span = u32::from(PROBE_PORTS.end - PROBE_PORTS.start);
    PROBE_PORTS.start + (n % span) as u16
}

/// The harness probe of a planned flow: from the planned source address and a
/// source port of its own (the bind reserves it, so concurrent probes never share a
/// flow key, and no probe meets a conntrack entry of an earlier one).
fn spec_of(f: &ProbeFlow) -> ProbeSpec {
    let kind = match f.protocol {
        ProbeProtocol::Tcp => ProbeKind::TcpEcho,
        ProbeProtocol::Http => ProbeKind::Http,
        ProbeProtocol::Udp => ProbeKind::Udp,
        ProbeProtocol::Sctp => ProbeKind::Sctp,
        ProbeProtocol::Icmp => ProbeKind::Icmp,
    };
    ProbeSpec::new(kind, f.dst_ip, f.port.unwrap_or(0))
        .with_source(f.src_ip)
        .with_source_port(next_probe_port())
        .with_timeout(f.timeout)
}

/// A namespace label from a scenario name: `[a-z0-9-]`, at most
/// [`lab::MAX_PREFIX_LEN`] characters, never empty.
pub fn label_for(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(lab::MAX_PREFIX_LEN);
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "run".into()
    } else {
        out
    }
}

/// Runs a plan on the kernel. Must run inside a multi-thread tokio runtime.
pub async fn run_plan(plan: &Plan, opts: &RunnerOptions) -> Result<KernelRun, RunnerError> {
    let states: Vec<(&Inventory, &World)> = plan
        .steps
        .iter()
        .map(|s| (s.inventory.as_ref(), s.world.as_ref()))
        .collect();
    let lab_plan = lab::plan_for_states(&label_for(&plan.name), &states)?;
    let outside = plan
        .steps
        .first()
        .map(|s| s.inventory.outside.clone())
        .unwrap_or_default();
    let mut lab = KernelLab::build(&lab_plan, &outside, opts).await?;
    let result = run_steps(&mut lab, plan, opts).await;
    let teardown = lab.teardown();
    let run = result?;
    teardown?;
    Ok(run)
}

async fn run_steps(
    lab: &mut KernelLab,
    plan: &Plan,
    opts: &RunnerOptions,
) -> Result<KernelRun, RunnerError> {
    let mut run = KernelRun::default();
    for step in &plan.steps {
        lab.set_failed(&step.failed_hosts).await?;
        lab.sync_files(&step.inventory);
        let (pulls, disagreements) = lab.check_pulls(step, opts.pull_timeout).await;
        run.pulls.extend(pulls);
        run.feed_disagreements.extend(disagreements);
        if step.world_changed || lab.world.is_none() {
            for mut l in lab.apply(step.world.clone()).await? {
                l.step = step.number;
                run.loads.push(l);
            }
        }
        if let Some(dir) = &opts.pcap_dir {
            // One probe at a time, each captured alone in its source namespace.
            for (i, p) in step.probes.iter().enumerate() {
                let ns = lab.source_ns(&p.flow.from, p.flow.src_ip)?;
                let path = dir.join(pcap_file_name(&plan.name, step.number, i, p));
                let capture = Capture::start(&ns, CaptureScope::All, path).await?;
                let probed = lab.probe(&[&p.flow]).await;
                capture.stop().await?;
                run.probes.extend(probed?);
            }
        } else if !step.probes.is_empty() {
            let flows: Vec<&ProbeFlow> = step.probes.iter().map(|p| &p.flow).collect();
            run.probes.extend(lab.probe(&flows).await?);
        }
    }
    Ok(run)
}

/// The pcap file of a probe: `<scenario>-step<NN>-probe<NN>-<source>-to-<target>.pcap`
/// (step number, the probe's index in its step from 1; names reduced to
/// `[A-Za-z0-9._-]`), so a run's files are the same names every time. A name longer
/// than [`PCAP_NAME_PART`] bytes keeps its head and ends in `~` and 12 hex digits of
/// its SHA-256, so the file name stays under the 255 bytes a file system takes
/// (decision `scenario-names`) and distinct names stay distinct.
pub fn pcap_file_name(scenario: &str, step: usize, index: usize, p: &PlannedProbe) -> String {
    format!(
        "{}-step{step:02}-probe{:02}-{}-to-{}.pcap",
        pcap_part(scenario),
        index + 1,
        pcap_part(&p.source),
        pcap_part(&p.target)
    )
}

/// The longest a part of a pcap file name gets (3 parts + 40 bytes < 255).
pub const PCAP_NAME_PART: usize = 64;

fn pcap_part(s: &str) -> String {
    use sha2::{Digest, Sha256};
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.len() <= PCAP_NAME_PART {
        return clean;
    }
    let hash: String = Sha256::digest(s.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}~{hash}", &clean[..PCAP_NAME_PART - 13])
}

/// The lines of `script` that nft's `stderr` names (`<file>:<line>:<col>: Error:`),
/// each as `<line>: <text>`, in order, once each.
pub fn offending_lines(stderr: &str, script: &str) -> String {
    let lines: Vec<&str> = script.lines().collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = String::new();
    for l in stderr.lines() {
        let Some(pos) = l.find(": Error:") else {
            continue;
        };
        let mut fields = l[..pos].rsplitn(3, ':');
        let (_col, line) = (fields.next(), fields.next());
        let Some(n) = line.and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        if n == 0 || !seen.insert(n) {
            continue;
        }
        if let Some(text) = lines.get(n - 1) {
            out.push_str(&format!("{n}: {}\n", text.trim()));
        }
    }
    if out.is_empty() {
        out.push_str("(nft named no line)\n");
    }
    out
}

/// Linux capability numbers the kernel dataplane needs.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// The capabilities named in `needed` that the `CapEff:` line of a
/// `/proc/<pid>/status` text lacks (all of them when the line is missing).
pub fn missing_capabilities(status: &str) -> Vec<&'static str> {
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| eff.is_none_or(|e| e & (1u64 << bit) == 0))
    .map(|(_, name)| name)
    .collect()
}

/// Why this machine cannot run the kernel dataplane, each with what to do (empty
/// when it can). Checks the process's capabilities, the `nft` binary and network
/// namespace support; veth, nf_tables and NFLOG show up when the lab is built.
pub fn machine_problems() -> Vec<String> {
    let mut out = Vec::new();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let missing = missing_capabilities(&status);
    if !missing.is_empty() {
        out.push(format!(
            "the kernel dataplane needs root ({} missing) to create network namespaces, links and nftables rules: run it as root (e.g. `sudo policylab run ...`), or use `--dataplane model`",
            missing.join(" and ")
        ));
    }
    if let Err(e) = crate::nft::nft_binary() {
        out.push(format!(
            "{e} (Debian/Ubuntu: `apt-get install -y nftables`)"
        ));
    }
    if !std::path::Path::new("/proc/self/ns/net").exists() {
        out.push(
            "this kernel has no network namespaces (/proc/self/ns/net is missing): use a kernel built with CONFIG_NET_NS, or `--dataplane model`"
                .into(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offending_lines_are_the_lines_nft_names() {
        let script =
            "table inet t {\n\tchain c {\n\t\tbad thing\n\t}\n}\nadd rule inet t x accept\n";
        let stderr = "/dev/stdin:3:3-11: Error: syntax error\n\t\tbad thing\n\t\t^^^^^^^^^\n/dev/stdin:6:16-16: Error: Could not process rule: No such file or directory\n/dev/stdin:3:3-5: Error: again\n";
        assert_eq!(
            offending_lines(stderr, script),
            "3: bad thing\n6: add rule inet t x accept\n"
        );
        assert_eq!(
            offending_lines("nft: oops", script),
            "(nft named no line)\n"
        );
    }

    #[test]
    fn pcap_parts_stay_short_and_distinct() {
        let short = "default/web";
        assert_eq!(pcap_part(short), "default_web");
        let a = format!("{}a", "s".repeat(240));
        let b = format!("{}b", "s".repeat(240));
        let (pa, pb) = (pcap_part(&a), pcap_part(&b));
        assert_eq!(pa.len(), PCAP_NAME_PART);
        assert_ne!(pa, pb);
        assert!(pa.starts_with("sss") && pa.contains('~'), "{pa}");
        assert_eq!(pcap_part("läptop"), "l_ptop");
    }

    #[test]
    fn capabilities_are_read_from_cap_eff() {
        let root = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        assert!(missing_capabilities(root).is_empty());
        let none = "CapEff:\t0000000000000000\n";
        assert_eq!(
            missing_capabilities(none),
            vec!["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
        );
        // CAP_NET_ADMIN (bit 12) only.
        let net_admin = "CapEff:\t0000000000001000\n";
        assert_eq!(missing_capabilities(net_admin), vec!["CAP_SYS_ADMIN"]);
        assert_eq!(missing_capabilities("garbage").len(), 2);
    }

    fn world() -> World {
        policylab::resolve::resolve(&Inventory {
            cluster: Default::default(),
            nodes: vec![],
            outside: vec![],
            resources: Default::default(),
        })
    }

    fn rule(name: &str, action: Action) -> Decider {
        Decider::Rule {
            tier: "default".into(),
            policy: policylab::resolve::PolicyId {
                kind: policylab::resolve::PolicyKind::GlobalNetworkPolicy,
                namespace: None,
                name: name.into(),
            },
            rule_index: 0,
            action,
        }
    }

    fn event(node: &str, stage: StageKind, decider: Decider) -> KernelEvent {
        KernelEvent {
            node: node.into(),
            tag: Some(LogTag {
                node: node.into(),
                stage,
                decider,
                group: compile::NFLOG_GROUP_ALLOW,
            }),
            prefix: String::new(),
            packet: None,
            log_rule: false,
            reply: false,
            line: None,
        }
    }

    #[test]
    fn events_are_put_in_path_order_and_attributed() {
        let w = world();
        // Arrival order: the destination node's ingress came in first.
        let mut events = vec![
            event(
                "node-2",
                StageKind::WorkloadIngress,
                rule("in", Action::Allow),
            ),
            event(
                "node-1",
                StageKind::WorkloadEgress,
                rule("pass", Action::Pass),
            ),
            event(
                "node-1",
                StageKind::WorkloadEgress,
                rule("out", Action::Allow),
            ),
        ];
        path_order(&mut events);
        let order: Vec<&str> = events.iter().map(|e| e.node.as_str()).collect();
        assert_eq!(order, ["node-1", "node-1", "node-2"]);
        let (decider, allowing) = attribute(&w, &events);
        // The last allowing stage decides; a pass only traces.
        assert_eq!(decider, Some(rule("in", Action::Allow)));
        assert_eq!(
            allowing,
            vec![rule("out", Action::Allow), rule("in", Action::Allow)]
        );
        // A deny anywhere decides, and nothing allowed the flow.
        events.push(event(
            "node-2",
            StageKind::WorkloadIngress,
            rule("no", Action::Deny),
        ));
        assert_eq!(
            attribute(&w, &events),
            (Some(rule("no", Action::Deny)), vec![])
        );
        // A host endpoint's forward stage between two allows by the same profile:
        // the last allowing event decides, not the first occurrence of each
        // decider (decision `hep-forward-default-allow`).
        let profile = Decider::Profile {
            name: "kns.default".into(),
            rule_index: 0,
        };
        let hep = vec![
            event("node-1", StageKind::WorkloadEgress, profile.clone()),
            event(
                "node-1",
                StageKind::HostForwardEgress,
                Decider::DefaultForwardAllow,
            ),
            event("node-2", StageKind::WorkloadIngress, profile.clone()),
        ];
        assert_eq!(
            attribute(&w, &hep),
            (
                Some(profile.clone()),
                vec![profile.clone(), Decider::DefaultForwardAllow]
            )
        );
        // A forwarding node without source or destination stages sits between.
        let mut fwd = vec![
            event(
                "node-2",
                StageKind::WorkloadIngress,
                rule("in", Action::Allow),
            ),
            event("node-1", StageKind::HostPreDnat, rule("pre", Action::Allow)),
        ];
        path_order(&mut fwd);
        assert_eq!(fwd[0].node, "node-1");
    }

    /// The same decider allowing twice (a profile at the source's egress and at the
    /// destination's ingress) with another between: the last event decides, as in
    /// the model, though the list holds each decider once (found by the conformance
    /// case apply-on-forward-named-heps.yaml).
    #[test]
    fn a_decider_allowing_twice_decides_at_its_last_event() {
        let w = world();
        let profile = || Decider::Profile {
            name: "kns.default".into(),
            rule_index: 0,
        };
        let events = vec![
            event("node-1", StageKind::WorkloadEgress, profile()),
            event(
                "node-2",
                StageKind::HostForwardIngress,
                Decider::DefaultForwardAllow,
            ),
            event("node-2", StageKind::WorkloadIngress, profile()),
        ];
        let (decider, allowing) = attribute(&w, &events);
        assert_eq!(decider, Some(profile()));
        assert_eq!(allowing, vec![profile(), Decider::DefaultForwardAllow]);
    }

    #[test]
    fn log_lines_keep_ports_of_port_protocols_only() {
        let t = |protocol| FiveTuple {
            protocol,
            src: "10.0.0.1".parse().expect("ip"),
            src_port: 1000,
            dst: "10.0.0.2".parse().expect("ip"),
            dst_port: 80,
        };
        assert_eq!(log_line("calico-packet", &t(proto::TCP)).dst_port, Some(80));
        assert_eq!(log_line("calico-packet", &t(proto::ICMP)).dst_port, None);
    }

    #[test]
    fn probe_ports_rotate_below_the_ephemeral_range() {
        let a = next_probe_port();
        let b = next_probe_port();
        assert_ne!(a, b);
        assert!(PROBE_PORTS.contains(&a) && PROBE_PORTS.contains(&b));
        const { assert!(PROBE_PORTS.end <= 32_768) };
    }

    #[test]
    fn labels_are_namespace_safe() {
        assert_eq!(label_for("threat-feed-red-pod"), "threat-feed-red-pod");
        assert_eq!(
            label_for("Network Sets & egress rules"),
            "network-sets---egres"
        );
        assert_eq!(label_for("!!!"), "run");
    }
}
