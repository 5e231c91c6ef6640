//! JUnit XML of a run, valid against the two schemas CI tools use: the Jenkins
//! xUnit plugin's `junit-10.xsd` and the Apache Ant `JUnit.xsd` (both in
//! `tests/data/junit/`, checked by `harness/tests/junit_xsd.rs`).
//!
//! Shape (the intersection of both schemas): a bare `<testsuites>`; one
//! `<testsuite>` per scenario with `name`, `package` (the dataplane), `id`,
//! `timestamp` (UTC, no zone), `hostname`, `tests`, `failures`, `errors`,
//! `skipped`, `time`, then `<properties>`, the test cases and `<system-out>` (the
//! scenario's text report) and `<system-err>`; one `<testcase>` per probe with
//! `name`, `classname`, `time` and at most one of `<failure>` (an expectation did
//! not hold), `<error>` (the dataplane disagreed with the model, exit 4) or
//! `<skipped>` (the dataplane could not run the probe). A run that stops
//! ([`RunError`], exit 2 or 3) still gives a document: a `policylab` suite with one
//! error test case saying why.
//!
//! Times are real (the harness measures them) and so never in a snapshot.

use std::io;
use std::time::{Duration, SystemTime};

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::{ReportProbe, ReportStep};
use crate::report::Report;

/// One scenario's report with when it ran and how long it took.
#[derive(Debug, Clone)]
pub struct TimedReport<'a> {
    pub report: &'a Report,
    pub started: SystemTime,
    /// The whole scenario (building the lab, every step and probe).
    pub elapsed: Duration,
    /// Each probe's time, in [`crate::run::Plan::probes`] order (missing ones are 0).
    pub probe_times: Vec<Duration>,
}

impl<'a> TimedReport<'a> {
    /// A report with no timings (all 0), started at `started`.
    pub fn untimed(report: &'a Report, started: SystemTime) -> TimedReport<'a> {
        TimedReport {
            report,
            started,
            elapsed: Duration::ZERO,
            probe_times: Vec::new(),
        }
    }
}

/// Why a run stopped, or an error outside any probe: one error test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// The test case's name (`run`, `kernel`).
    pub name: String,
    /// The error's `type` (`invalid-input`, `machine`, `disagreement`, ...).
    pub kind: String,
    /// The exit code the run ends with.
    pub exit: u8,
    /// What went wrong (the diagnostics or the message, as on stderr).
    pub message: String,
    pub at: SystemTime,
}

/// The JUnit document of `reports`, plus a `policylab` suite holding `errors` when
/// there are any.
pub fn render(reports: &[TimedReport<'_>], errors: &[RunError], hostname: &str) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 4);
    let hostname = match xml_safe(hostname).trim() {
        "" => "localhost".to_string(),
        h => h.to_string(),
    };
    let written = (|| -> io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("testsuites").write_inner_content(|w| {
            for (id, t) in reports.iter().enumerate() {
                suite(w, id, t, &hostname)?;
            }
            if !errors.is_empty() {
                error_suite(w, reports.len(), errors, &hostname)?;
            }
            Ok(())
        })?;
        Ok(())
    })();
    let mut out = String::from_utf8_lossy(&w.into_inner()).into_owned();
    if let Err(e) = written {
        // Writing to a Vec cannot fail; keep the document well-formed anyway.
        out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites/>\n<!-- cannot render JUnit: {} -->",
            xml_safe(&e.to_string()).replace("--", "- -")
        );
    }
    out.push('\n');
    out
}

/// `2026-12-04T22:57:13` (UTC; the Ant schema takes no zone).
fn timestamp(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.trim_end_matches('Z').to_string()
}

/// Seconds with microsecond precision (a probe on the kernel takes well under a
/// millisecond), as both schemas take it.
fn seconds(d: Duration) -> String {
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// XML 1.0 cannot hold most control characters, even escaped.
fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// The test case's name: step, line, cell and probe.
fn case_name(st: &ReportStep, p: &ReportProbe) -> String {
    match p.cell {
        Some((r, c)) => format!(
            "step {} (line {}) cell {},{}: {} -> {}",
            st.number,
            st.line,
            r + 1,
            c + 1,
            p.source,
            p.target
        ),
        None => format!(
            "step {} (line {}): {} -> {}",
            st.number, st.line, p.source, p.target
        ),
    }
}

enum Status {
    Passed,
    Failed { message: String, text: String },
    Errored { message: String, text: String },
    Skipped { message: String },
}

fn status(p: &ReportProbe) -> Status {
    if let Some(why) = &p.observed.not_run {
        return Status::Skipped {
            message: format!("not run: {why}"),
        };
    }
    let failed: Vec<String> = p
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| {
            format!(
                "{}: expected {}, observed {}",
                c.what, c.expected, c.observed
            )
        })
        .collect();
    let observed = format!(
        "observed {}; decided by {}",
        p.observed.outcome, p.decided_by
    );
    if !p.disagreements.is_empty() {
        let dis: Vec<String> = p.disagreements.iter().map(|d| d.to_string()).collect();
        let mut text = format!(
            "the dataplane and the reference model disagree (a bug in policylab):\n{}\n{observed}",
            dis.join("\n")
        );
        if !failed.is_empty() {
            text.push_str(&format!(
                "\nexpectations that did not hold: {}",
                failed.join("; ")
            ));
        }
        return Status::Errored {
            message: dis.join("; "),
            text,
        };
    }
    if failed.is_empty() {
        Status::Passed
    } else {
        Status::Failed {
            message: failed.join("; "),
            text: observed,
        }
    }
}

fn suite<W: io::Write>(
    w: &mut Writer<W>,
    id: usize,
    t: &TimedReport<'_>,
    hostname: &str,
) -> io::Result<()> {
    let r = t.report;
    let cases: Vec<(&ReportStep, &ReportProbe, Status)> = r
        .steps
        .iter()
        .flat_map(|st| st.probes.iter().map(move |p| (st, p, status(p))))
        .collect();
    let count = |f: fn(&Status) -> bool| cases.iter().filter(|c| f(&c.2)).count().to_string();
    let name = xml_safe(&r.scenario);
    let package = xml_safe(&r.dataplane);
    let classname = format!("{package}.{name}");
    let report_text = xml_safe(&r.text());
    w.create_element("testsuite")
        .with_attributes([
            ("name", name.as_str()),
            ("package", package.as_str()),
            ("id", id.to_string().as_str()),
            ("timestamp", timestamp(t.started).as_str()),
            ("hostname", hostname),
            ("tests", cases.len().to_string().as_str()),
            (
                "failures",
                count(|s| matches!(s, Status::Failed { .. })).as_str(),
            ),
            (
                "errors",
                count(|s| matches!(s, Status::Errored { .. })).as_str(),
            ),
            (
                "skipped",
                count(|s| matches!(s, Status::Skipped { .. })).as_str(),
            ),
            ("time", seconds(t.elapsed).as_str()),
        ])
        .write_inner_content(|w| {
            w.create_element("properties").write_inner_content(|w| {
                w.create_element("property")
                    .with_attributes([("name", "dataplane"), ("value", package.as_str())])
                    .write_empty()?;
                Ok(())
            })?;
            for (i, (st, p, s)) in cases.iter().enumerate() {
                let time = seconds(t.probe_times.get(i).copied().unwrap_or_default());
                let tc = w.create_element("testcase").with_attributes([
                    ("name", xml_safe(&case_name(st, p)).as_str()),
                    ("classname", classname.as_str()),
                    ("time", time.as_str()),
                ]);
                match s {
                    Status::Passed => {
                        tc.write_empty()?;
                    }
                    Status::Skipped { message } => {
                        tc.write_inner_content(|w| {
                            w.create_element("skipped")
                                .with_attribute(("message", xml_safe(message).as_str()))
                                .write_empty()?;
                            Ok(())
                        })?;
                    }
                    Status::Failed { message, text } => {
                        tc.write_inner_content(|w| {
                            outcome(w, "failure", "expectation", message, text)
                        })?;
                    }
                    Status::Errored { message, text } => {
                        tc.write_inner_content(|w| {
                            outcome(w, "error", "disagreement", message, text)
                        })?;
                    }
                }
            }
            w.create_element("system-out")
                .write_text_content(BytesText::new(&report_text))?;
            w.create_element("system-err").write_empty()?;
            Ok(())
        })?;
    Ok(())
}

fn outcome<W: io::Write>(
    w: &mut Writer<W>,
    element: &str,
    kind: &str,
    message: &str,
    text: &str,
) -> io::Result<()> {
    w.create_element(element)
        .with_attributes([("message", xml_safe(message).as_str()), ("type", kind)])
        .write_text_content(BytesText::new(&xml_safe(text)))?;
    Ok(())
}

fn error_suite<W: io::Write>(
    w: &mut Writer<W>,
    id: usize,
    errors: &[RunError],
    hostname: &str,
) -> io::Result<()> {
    let started = errors
        .iter()
        .map(|e| e.at)
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    w.create_element("testsuite")
        .with_attributes([
            ("name", "policylab"),
            ("package", "policylab"),
            ("id", id.to_string().as_str()),
            ("timestamp", timestamp(started).as_str()),
            ("hostname", hostname),
            ("tests", errors.len().to_string().as_str()),
            ("failures", "0"),
            ("errors", errors.len().to_string().as_str()),
            ("skipped", "0"),
            ("time", "0.000000"),
        ])
        .write_inner_content(|w| {
            w.create_element("properties").write_empty()?;
            for e in errors {
                let message = format!(
                    "exit {}: {}",
                    e.exit,
                    e.message.lines().next().unwrap_or("")
                );
                w.create_element("testcase")
                    .with_attributes([
                        ("name", xml_safe(&e.name).as_str()),
                        ("classname", "policylab"),
                        ("time", "0.000000"),
                    ])
                    .write_inner_content(|w| outcome(w, "error", &e.kind, &message, &e.message))?;
            }
            w.create_element("system-out").write_empty()?;
            w.create_element("system-err").write_empty()?;
            Ok(())
        })?;
    Ok(())
}
