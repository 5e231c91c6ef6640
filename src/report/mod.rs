//! This module deals with the report of a run: a [`Report`] value built from the
//! [`Plan`], a dataplane's [`Observation`]s and the dataplane's name, rendered as
//! the deterministic text that snapshot tests store, as JSON, or as JUnit XML
//! ([`junit`]).
//!
//! The text holds no timings and no dataplane name, so the model's and the
//! kernel's reports of one scenario are the same text when they agree. Who decided
//! is the model's attribution (the prediction); a dataplane that names another
//! decider shows up as a disagreement on the probe.
//!
//! Checks of a probe: `expect` (the outcome), `status`, `clientIP`, `by` (for a
//! denied probe the decider; for an allowed or refused one any allowing decider
//! along the path), `alert` (the feed is among the probe's alerts) and `logged`.
//! [`Report::exit_code`] is 0 when every check held, else 1.

mod junit;
mod text;

pub use junit::{RunError, TimedReport};

use std::net::IpAddr;

use serde::Serialize;

use crate::model::Decider;
use crate::resolve::PolicyKind;
use crate::run::{
    disagreements, Disagreement, FeedPull, FeedStatus, FlowLogRecord, LogLine, Observation,
    Outcome, Plan, StepAction,
};
use crate::scenario::ByRef;

/// The version of the JSON report format (`"format_version"`): raised when a
/// field is removed or changes meaning; new fields keep it.
pub const FORMAT_VERSION: u32 = 1;

/// The JSON Schema of [`Report::json`], generated from the types (checked in as
/// `docs/report.schema.json`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Report);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

/// A matrix cell the dataplane could not run.
pub const NOT_RUN_CELL: char = '-';

/// One expectation of a probe and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Check {
    /// `expect`, `status`, `clientIP`, `by`, `alert`, `logged`.
    pub what: &'static str,
    pub expected: String,
    pub observed: String,
    pub ok: bool,
}

/// One probe in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ReportProbe {
    pub source: String,
    pub target: String,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// `(row, column)` in a matrix.
    pub cell: Option<(usize, usize)>,
    pub observed: Observation,
    /// The model's decider, in the report's words.
    pub decided_by: String,
    /// Every allowing decider along the path (allowed probes).
    pub allowed_by: Vec<String>,
    /// The model's decider as fields (`decided_by` is its `text`).
    pub decider: Decider,
    /// The allowing deciders as fields (`allowed_by` are their `text`s).
    pub allowing: Vec<Decider>,
    pub alerts: Vec<String>,
    pub note: Option<String>,
    /// `would <verdict> by <decider>` when the staged policies would decide
    /// otherwise than the enforced ones (decision `staged-preview`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged: Option<String>,
    pub checks: Vec<Check>,
    /// Where the dataplane and the model differ (always empty for the model).
    pub disagreements: Vec<Disagreement>,
    #[serde(skip)]
    pub flow_logs: Vec<FlowLogRecord>,
}

impl ReportProbe {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// A matrix as a truth table: rows are sources, columns targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TruthTable {
    pub sources: Vec<String>,
    pub targets: Vec<String>,
    /// `rows[r][c]`: `.` allow, `X` deny, `R` refused (observed).
    pub rows: Vec<Vec<char>>,
    pub expected: Option<Vec<Vec<char>>>,
}

/// One step in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ReportStep {
    pub number: usize,
    pub line: u32,
    pub action: StepAction,
    pub title: String,
    pub pulls: Vec<FeedPull>,
    pub probes: Vec<ReportProbe>,
    pub matrix: Option<TruthTable>,
}

/// A threat-feed alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Alert {
    pub step: usize,
    pub feed: String,
    pub source: String,
    pub target: String,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub outcome: Outcome,
}

/// A flow-log record with the probe it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FlowLogEntry {
    pub step: usize,
    pub probe: String,
    #[serde(flatten)]
    pub record: FlowLogRecord,
}

/// A Log rule's line with the probe it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LogEntry {
    pub step: usize,
    pub probe: String,
    pub line: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Summary {
    pub probes: usize,
    pub failed_probes: usize,
    pub checks: usize,
    pub failed_checks: usize,
    pub disagreements: usize,
    /// Probes the dataplane could not run (not in `probes`; see
    /// [`Observation::not_run`]).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub not_run: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The report of one scenario's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// [`FORMAT_VERSION`]: the JSON format's version (docs/report-json.md).
    pub format_version: u32,
    pub scenario: String,
    pub description: Option<String>,
    /// `model` or `kernel` (JUnit only: never in the text nor the JSON, which are
    /// the same on both dataplanes when they agree).
    #[serde(skip)]
    pub dataplane: String,
    pub steps: Vec<ReportStep>,
    /// Every feed's status at the end of the run.
    pub feeds: Vec<FeedStatus>,
    pub alerts: Vec<Alert>,
    pub flow_logs: Vec<FlowLogEntry>,
    pub log_lines: Vec<LogEntry>,
    /// Sorted, once each: FelixConfiguration fields without effect in the lab
    /// (decision `felix-configuration`), from every step.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
    pub summary: Summary,
}

/// Whether a `by:` value names a decider. A policy name matches the policy's
/// `metadata.name` as written, with or without its tier prefix (`default.` for
/// the default tier), and a Kubernetes NetworkPolicy's name without `knp.default.`.
pub fn by_matches(by: &ByRef, d: &Decider) -> bool {
    match (by, d) {
        (ByRef::Policy { namespace, name }, Decider::Rule { policy, tier, .. })
        | (ByRef::Policy { namespace, name }, Decider::EndOfTier { policy, tier, .. }) => {
            if policy.namespace != *namespace {
                return false;
            }
            let n = policy.name.as_str();
            n == name
                || n.strip_prefix(tier.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|r| r == name)
                || (policy.kind == PolicyKind::KubernetesNetworkPolicy
                    && n.strip_prefix("knp.default.") == Some(name.as_str()))
        }
        (ByRef::EndOfTier(t), Decider::EndOfTier { tier, .. }) => t == tier,
        (ByRef::Profile(p), Decider::Profile { name, .. }) => p == name,
        (ByRef::NoProfile, Decider::NoProfile) => true,
        (ByRef::Failsafe, Decider::Failsafe) => true,
        _ => false,
    }
}

/// `by:` as written.
pub fn by_text(by: &ByRef) -> String {
    match by {
        ByRef::Policy {
            namespace: Some(ns),
            name,
        } => format!("{ns}/{name}"),
        ByRef::Policy {
            namespace: None,
            name,
        } => name.clone(),
        ByRef::EndOfTier(t) => format!("end-of-tier:{t}"),
        ByRef::Profile(p) => format!("profile:{p}"),
        ByRef::NoProfile => "no-profile".into(),
        ByRef::Failsafe => "failsafe".into(),
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "none".into())
}

impl Report {
    /// Builds the report. `observations` are in [`Plan::probes`] order; missing
    /// ones (a dataplane that stopped early) are taken from the model.
    pub fn new(plan: &Plan, observations: &[Observation], dataplane: &str) -> Report {
        let mut obs = observations.iter();
        let mut steps = Vec::new();
        let mut alerts = Vec::new();
        let mut flow_logs = Vec::new();
        let mut log_lines = Vec::new();
        let mut summary = Summary {
            probes: 0,
            failed_probes: 0,
            checks: 0,
            failed_checks: 0,
            disagreements: 0,
            not_run: 0,
        };
        for st in &plan.steps {
            let mut probes = Vec::new();
            for pp in &st.probes {
                let pred = &pp.prediction;
                let o = obs
                    .next()
                    .cloned()
                    .unwrap_or_else(|| Observation::from_prediction(pred));
                let decider = o.decider.clone().unwrap_or_else(|| pred.decider.clone());
                let allowing = if o.allowing.is_empty() {
                    pred.allowing.clone()
                } else {
                    o.allowing.clone()
                };
                let e = if o.not_run.is_some() {
                    &crate::run::Expectations::default()
                } else {
                    &pp.expect
                };
                let mut checks = Vec::new();
                if let Some(x) = e.outcome {
                    checks.push(Check {
                        what: "expect",
                        expected: x.to_string(),
                        observed: o.outcome.to_string(),
                        ok: x == o.outcome,
                    });
                }
                if let Some(s) = e.status {
                    checks.push(Check {
                        what: "status",
                        expected: s.to_string(),
                        observed: opt(o.status),
                        ok: o.status == Some(s),
                    });
                }
                if let Some(ip) = e.client_ip {
                    checks.push(Check {
                        what: "clientIP",
                        expected: ip.to_string(),
                        observed: opt(o.client_ip_seen),
                        ok: o.client_ip_seen == Some(ip),
                    });
                }
                if let Some(by) = &e.by {
                    let candidates: Vec<&Decider> = if o.outcome == Outcome::Deny {
                        vec![&decider]
                    } else {
                        allowing.iter().collect()
                    };
                    let hit = candidates.iter().find(|d| by_matches(by, d));
                    checks.push(Check {
                        what: "by",
                        expected: by_text(by),
                        observed: match hit {
                            Some(d) => d.to_string(),
                            None if candidates.is_empty() => decider.to_string(),
                            None => candidates
                                .iter()
                                .map(|d| d.to_string())
                                .collect::<Vec<_>>()
                                .join("; "),
                        },
                        ok: hit.is_some(),
                    });
                }
                if let Some(a) = &e.alert {
                    checks.push(Check {
                        what: "alert",
                        expected: a.clone(),
                        observed: if pred.alerts.is_empty() {
                            "none".into()
                        } else {
                            pred.alerts.join(", ")
                        },
                        ok: pred.alerts.contains(a),
                    });
                }
                if let Some(l) = e.logged {
                    checks.push(Check {
                        what: "logged",
                        expected: l.to_string(),
                        observed: o.logged.to_string(),
                        ok: o.logged == l,
                    });
                }
                if let Some(x) = e.staged {
                    let seen = pred.staged.verdict;
                    checks.push(Check {
                        what: "staged",
                        expected: x.to_string(),
                        observed: seen.to_string(),
                        ok: x == seen,
                    });
                }
                let dis = disagreements(pred, &o);
                if o.not_run.is_some() {
                    summary.not_run += 1;
                } else {
                    summary.probes += 1;
                }
                summary.checks += checks.len();
                summary.failed_checks += checks.iter().filter(|c| !c.ok).count();
                summary.disagreements += dis.len();
                let probe_name = format!("{} -> {}", pp.source, pp.target);
                let ran = o.not_run.is_none();
                for a in pred.alerts.iter().filter(|_| ran) {
                    alerts.push(Alert {
                        step: st.number,
                        feed: a.clone(),
                        source: pp.source.clone(),
                        target: pp.target.clone(),
                        src_ip: pp.flow.src_ip,
                        dst_ip: pp.flow.dst_ip,
                        outcome: o.outcome,
                    });
                }
                // What the dataplane saw (the model: its prediction; the kernel:
                // NFLOG, real source ports), shown without source ports.
                // Staged policies are not enforced: their preview
                // (`pending_policies`) is the model's on every dataplane.
                let mut seen_flow_logs = o.flow_logs.clone();
                for (s, p) in seen_flow_logs.iter_mut().zip(&pred.flow_logs) {
                    if s.reporter == p.reporter {
                        s.pending_policies = p.pending_policies.clone();
                    }
                }
                for r in seen_flow_logs.iter().filter(|_| ran) {
                    flow_logs.push(FlowLogEntry {
                        step: st.number,
                        probe: probe_name.clone(),
                        record: r.clone(),
                    });
                }
                for l in &o.log_lines {
                    log_lines.push(LogEntry {
                        step: st.number,
                        probe: probe_name.clone(),
                        line: LogLine::to_string(l),
                    });
                }
                let rp = ReportProbe {
                    source: pp.source.clone(),
                    target: pp.target.clone(),
                    src_ip: pp.flow.src_ip,
                    dst_ip: pp.flow.dst_ip,
                    cell: pp.cell,
                    decided_by: pred.decider.to_string(),
                    allowed_by: pred.allowing.iter().map(|d| d.to_string()).collect(),
                    decider: pred.decider.clone(),
                    allowing: pred.allowing.clone(),
                    alerts: pred.alerts.clone(),
                    note: pred.note.clone(),
                    staged: pred.staged.differs.then(|| {
                        format!("would {} by {}", pred.staged.verdict, pred.staged.decider)
                    }),
                    observed: o,
                    checks,
                    disagreements: dis,
                    flow_logs: seen_flow_logs,
                };
                if !rp.ok() {
                    summary.failed_probes += 1;
                }
                probes.push(rp);
            }
            let matrix = st.matrix.as_ref().map(|m| {
                let mut rows = vec![vec!['?'; m.targets.len()]; m.sources.len()];
                let mut expected: Option<Vec<Vec<char>>> = None;
                for p in &probes {
                    if let Some((r, c)) = p.cell {
                        rows[r][c] = match p.observed.not_run {
                            Some(_) => NOT_RUN_CELL,
                            None => p.observed.outcome.cell(),
                        };
                    }
                }
                let any_expect = st.probes.iter().any(|p| p.expect.outcome.is_some());
                if any_expect {
                    let mut ex = vec![vec!['?'; m.targets.len()]; m.sources.len()];
                    for p in &st.probes {
                        if let (Some((r, c)), Some(o)) = (p.cell, p.expect.outcome) {
                            ex[r][c] = o.cell();
                        }
                    }
                    expected = Some(ex);
                }
                TruthTable {
                    sources: m.sources.clone(),
                    targets: m.targets.clone(),
                    rows,
                    expected,
                }
            });
            steps.push(ReportStep {
                number: st.number,
                line: st.line,
                action: st.action,
                title: st.title.clone(),
                pulls: st.pulls.clone(),
                probes,
                matrix,
            });
        }
        Report {
            format_version: FORMAT_VERSION,
            scenario: plan.name.clone(),
            description: plan.description.clone(),
            dataplane: dataplane.to_string(),
            steps,
            feeds: plan
                .steps
                .last()
                .map(|s| s.feeds.clone())
                .unwrap_or_default(),
            alerts,
            flow_logs,
            log_lines,
            notes: plan
                .steps
                .iter()
                .flat_map(|s| s.world.notes.iter().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            summary,
        }
    }

    /// 0 when every expectation held, 1 otherwise (exit 4 for a disagreement with
    /// the model is the kernel runner's, from [`Summary::disagreements`]).
    pub fn exit_code(&self) -> u8 {
        if self.summary.failed_checks == 0 {
            0
        } else {
            1
        }
    }

    /// The deterministic text (the snapshot).
    pub fn text(&self) -> String {
        text::render(self)
    }

    /// The report as JSON on one line (`policylab run --format json` prints one
    /// a line, JSON Lines), valid against [`json_schema`] (docs/report-json.md).
    pub fn json(&self) -> String {
        // Every map key is a string and every value serializable: this cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// JUnit XML: one test suite per scenario, one test case per probe, plus a
    /// `policylab` suite with one error test case per [`RunError`] (see
    /// [`junit`] for the shape).
    pub fn junit(reports: &[TimedReport<'_>], errors: &[RunError], hostname: &str) -> String {
        junit::render(reports, errors, hostname)
    }
}
