//! `policylab run --format junit` validates against the two JUnit schemas CI tools
//! use (tests/data/junit: the Jenkins xUnit plugin's junit-10.xsd and the Apache
//! Ant JUnit.xsd), with `xmllint --schema` (Debian: libxml2-utils): passing,
//! failing, erroring (a disagreement, exit 4) and skipped (not run) probes, and a
//! run that stops with exit 2 or 3.
//!
//! Without xmllint these tests fail, saying so, unless
//! `POLICYLAB_SKIP_XSD=1` is set (then each prints that it validated nothing).

mod common;

use common::cli::{code, policylab, root, text};

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use policylab::diag::{Diagnostics, Sources};
use policylab::report::{Report, RunError, TimedReport};
use policylab::run::Outcome;

const SCHEMAS: [&str; 2] = ["junit-10.xsd", "JUnit.xsd"];

/// Whether xmllint can run; panics with what to do when it cannot, unless the
/// user opted out with `POLICYLAB_SKIP_XSD=1` (then false).
fn xmllint_ready(test: &str) -> bool {
    let found = Command::new("xmllint")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    if std::env::var("POLICYLAB_SKIP_XSD").is_ok_and(|v| v == "1") {
        eprintln!("{test}: xmllint missing and POLICYLAB_SKIP_XSD=1: validated nothing");
        return false;
    }
    panic!(
        "{test}: xmllint is missing: install libxml2-utils (Debian: `apt-get install libxml2-utils`) to validate JUnit output against the XSDs, or set POLICYLAB_SKIP_XSD=1 to skip this check"
    );
}

/// Validates `xml` against every schema; panics with xmllint's errors.
fn assert_valid(xml: &str, what: &str) {
    assert!(xml.starts_with("<?xml"), "{what}: not XML:\n{xml}");
    for schema in SCHEMAS {
        let xsd = root().join("tests/data/junit").join(schema);
        let mut child = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xmllint runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(xml.as_bytes())
            .expect("write to xmllint");
        let o = child.wait_with_output().expect("xmllint ends");
        assert!(
            o.status.success(),
            "{what}: invalid against {schema}:\n{}\n{xml}",
            text(&o.stderr)
        );
    }
}

fn count(xml: &str, pat: &str) -> usize {
    xml.matches(pat).count()
}

/// Every shipped scenario, the test scenarios and one with failing expectations.
#[test]
fn a_model_run_with_failures_validates() {
    if !xmllint_ready("a_model_run_with_failures_validates") {
        return;
    }
    let o = policylab(&[
        "run",
        "--dataplane",
        "model",
        "--format",
        "junit",
        "scenarios",
        "tests/scenarios",
        "tests/run_mismatch",
    ])
    .output()
    .expect("runs");
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let xml = text(&o.stdout);
    assert_valid(&xml, "model run");
    assert!(count(&xml, "<failure ") > 0, "{xml}");
    assert_eq!(count(&xml, "<error "), 0, "{xml}");
    // Every test case has a time, every suite a timestamp and host.
    assert_eq!(
        count(&xml, "<testcase "),
        count(&xml, "\" time=\"") - count(&xml, "<testsuite ")
    );
    assert!(!xml.contains("hostname=\"\""), "{xml}");
}

/// A disagreement is an error, a probe not run is skipped, an error outside the
/// probes is a test case of the `policylab` suite; the counts add up.
#[test]
fn errors_and_skipped_probes_validate() {
    if !xmllint_ready("errors_and_skipped_probes_validate") {
        return;
    }
    let path = root().join("tests/run_mismatch/mismatch.yaml");
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(&mut sources, &path, &mut diags)
        .unwrap_or_else(|| panic!("{}", diags.render(&sources)));
    let plan = policylab::run::plan(&sc, &sources);
    let mut obs = plan.model_observations();
    // Probe 1 (step 2) is a disagreement; probe 3 (step 4, cell 1,1) was not run.
    obs[0].outcome = match obs[0].outcome {
        Outcome::Allow => Outcome::Deny,
        _ => Outcome::Allow,
    };
    obs[2].not_run = Some("this kernel has no SCTP".into());
    let report = Report::new(&plan, &obs, "kernel");
    let times: Vec<Duration> = (0..obs.len() as u64)
        .map(|i| Duration::from_micros(1500 * (i + 1)))
        .collect();
    let t = TimedReport {
        report: &report,
        started: SystemTime::now(),
        elapsed: Duration::from_millis(2345),
        probe_times: times,
    };
    let err = RunError {
        name: "kernel".into(),
        kind: "disagreement".into(),
        exit: 4,
        message: "a feed's entries differ & <more>".into(),
        at: SystemTime::now(),
    };
    let xml = Report::junit(&[t], &[err], "build-7.example");
    assert_valid(&xml, "errors and skipped");
    assert_eq!(count(&xml, "type=\"disagreement\""), 2, "{xml}");
    assert_eq!(count(&xml, "<skipped "), 1, "{xml}");
    assert!(
        xml.contains("message=\"not run: this kernel has no SCTP\""),
        "{xml}"
    );
    assert!(
        xml.contains(" errors=\"1\" skipped=\"1\" time=\"2.345000\""),
        "{xml}"
    );
    assert!(xml.contains(" time=\"0.001500\""), "{xml}");
    assert!(xml.contains("hostname=\"build-7.example\""), "{xml}");
    assert!(xml.contains("&amp; &lt;more&gt;"), "{xml}");
}

/// Invalid input (exit 2): a JUnit document with one error test case holding the
/// diagnostics.
#[test]
fn invalid_input_exit_2_gives_a_junit_error() {
    if !xmllint_ready("invalid_input_exit_2_gives_a_junit_error") {
        return;
    }
    for args in [
        &["tests/bad_scenarios"][..],
        &[
            "--pcap",
            "/tmp/policylab-junit-pcap-unused",
            "scenarios/000-network-sets.yaml",
        ][..],
    ] {
        let mut all = vec!["run", "--dataplane", "model", "--format", "junit"];
        all.extend_from_slice(args);
        let o = policylab(&all).output().expect("runs");
        assert_eq!(code(&o), 2, "{}", text(&o.stderr));
        let xml = text(&o.stdout);
        assert_valid(&xml, "exit 2");
        assert_eq!(count(&xml, "<testcase "), 1, "{xml}");
        assert_eq!(count(&xml, "<error "), 1, "{xml}");
        assert!(xml.contains("type=\"invalid-input\""), "{xml}");
        assert!(xml.contains("message=\"exit 2: "), "{xml}");
    }
    let o = policylab(&[
        "run",
        "--dataplane",
        "model",
        "--format",
        "junit",
        "tests/bad_scenarios",
    ])
    .output()
    .expect("runs");
    assert!(text(&o.stdout).contains("problems: nothing was run"));
}

/// A machine that cannot run the kernel dataplane (exit 3): the error says why.
#[test]
fn machine_exit_3_gives_a_junit_error() {
    if !common::kernel_ready("machine_exit_3_gives_a_junit_error")
        || !xmllint_ready("machine_exit_3_gives_a_junit_error")
    {
        return;
    }
    let o = Command::new("setpriv")
        .args([
            "--bounding-set",
            "-sys_admin,-net_admin",
            "--inh-caps",
            "-all",
            env!("CARGO_BIN_EXE_policylab"),
            "run",
            "--format",
            "junit",
            "scenarios/000-network-sets.yaml",
        ])
        .current_dir(root())
        .output()
        .expect("setpriv (util-linux) runs");
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    let xml = text(&o.stdout);
    assert_valid(&xml, "exit 3");
    assert!(xml.contains("type=\"machine\""), "{xml}");
    assert!(
        xml.contains("CAP_SYS_ADMIN and CAP_NET_ADMIN missing"),
        "{xml}"
    );
}

/// The kernel disagreeing with the model (exit 4): errors, not failures.
#[test]
fn disagreement_exit_4_gives_junit_errors() {
    if !common::kernel_ready("disagreement_exit_4_gives_junit_errors")
        || !xmllint_ready("disagreement_exit_4_gives_junit_errors")
    {
        return;
    }
    let o = policylab(&[
        "run",
        "--format",
        "junit",
        "scenarios/000-network-sets.yaml",
    ])
    .env(policylab_harness::runner::PERTURB_ENV, "1")
    .output()
    .expect("runs");
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    let xml = text(&o.stdout);
    assert_valid(&xml, "exit 4");
    assert!(count(&xml, "<error ") > 0, "{xml}");
    assert!(xml.contains("type=\"disagreement\""), "{xml}");
    assert!(!xml.contains(" errors=\"0\""), "{xml}");
}
