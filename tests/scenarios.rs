//! Every scenario is one test: its model report text is snapshotted, and every
//! expectation in it must hold on the model.
//!
//! - `scenarios/*.yaml`: the shipped tutorial scenarios.
//! - `tests/run_scenarios/*.yaml`: runner behaviour (feed schedule, formats,
//!   failed hosts, refused ports, HTTP status of file servers).
//! - `scenarios/conformance/**/*.yaml`: cases ported from upstream suites and
//!   documentation (each file names its source); their expectations come from the
//!   source, so they are checked by their expectations, not by snapshots.

use std::path::Path;

use policylab::diag::{Diagnostics, Sources};
use policylab::report::Report;
use policylab::run::{plan, Plan};

fn load_plan(path: &Path) -> Plan {
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(&mut sources, path, &mut diags)
        .unwrap_or_else(|| panic!("{}", diags.render(&sources)));
    plan(&sc, &sources)
}

fn model_report(path: &Path) -> Report {
    let p = load_plan(path);
    Report::new(&p, &p.model_observations(), "model")
}

#[test]
fn shipped_scenarios_hold_on_the_model() {
    insta::glob!("../scenarios", "*.yaml", |path| {
        let r = model_report(path);
        insta::assert_snapshot!(r.text());
        assert_eq!(r.exit_code(), 0, "{}", r.text());
    });
}

#[test]
fn runner_scenarios_hold_on_the_model() {
    insta::glob!("run_scenarios/*.yaml", |path| {
        let r = model_report(path);
        insta::assert_snapshot!(r.text());
        assert_eq!(r.exit_code(), 0, "{}", r.text());
    });
}

/// Every `*.yaml` under `dir`, recursively, sorted.
fn yaml_files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn conformance_scenarios_hold_on_the_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/conformance");
    let files = yaml_files_under(&dir);
    assert!(
        !files.is_empty(),
        "no conformance scenarios under {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &files {
        let r = model_report(path);
        if r.exit_code() != 0 {
            failures.push(format!("{}:\n{}", path.display(), r.text()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
