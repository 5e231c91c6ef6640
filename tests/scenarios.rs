//! Every scenario is one test: its model report text is snapshotted, and every
//! expectation in it must hold on the model.
//!
//! - `scenarios/*.yaml`: the shipped tutorial scenarios.
//! - `tests/run_scenarios/*.yaml`: runner behaviour (feed schedule, formats,
//!   failed hosts, refused ports, HTTP status of file servers).

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
