//! Every scenario in `scenarios/` runs on the kernel: its report text equals the
//! model's (and so the committed snapshot), with no disagreement.

mod common;

use std::path::{Path, PathBuf};

use policylab::diag::{Diagnostics, Sources};
use policylab::report::Report;
use policylab_harness::runner::{self, RunnerOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scenarios() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .expect("scenarios dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_agrees_with_the_model() {
    if !common::kernel_ready("every_scenario_agrees_with_the_model") {
        return;
    }
    let mut failures = Vec::new();
    let mut pulled = 0;
    for path in scenarios() {
        let mut sources = Sources::new();
        let mut diags = Diagnostics::new();
        let sc = policylab::scenario::load(&mut sources, &path, &mut diags)
            .unwrap_or_else(|| panic!("{} loads:\n{}", path.display(), diags.render(&sources)));
        let plan = policylab::run::plan(&sc, &sources);
        let model = Report::new(&plan, &plan.model_observations(), "model");
        let run = runner::run_plan(&plan, &RunnerOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let kernel = Report::new(&plan, &run.observations(), "kernel");
        let mut problems = String::new();
        for (i, (s, p, pp)) in plan.probes().enumerate() {
            let d = policylab::run::disagreements(&pp.prediction, &run.probes[i].observation);
            if !d.is_empty() {
                problems.push_str(&format!(
                    "step {} probe {} ({} -> {}):\n",
                    plan.steps[s].number,
                    p + 1,
                    pp.source,
                    pp.target
                ));
                for x in d {
                    problems.push_str(&format!("  {x}\n"));
                }
                problems.push_str(&run.probes[i].trace());
            }
        }
        // Seeds with feeds pull them for real from the feed server (003 over HTTPS).
        let model_pulls: Vec<_> = plan.steps.iter().flat_map(|s| &s.pulls).collect();
        assert_eq!(run.pulls.len(), model_pulls.len(), "{}", path.display());
        for (k, m) in run.pulls.iter().zip(&model_pulls) {
            assert_eq!((&k.feed, &k.url), (&m.feed, &m.url));
        }
        pulled += run.pulls.iter().filter(|p| p.result.is_ok()).count();
        for f in &run.feed_disagreements {
            problems.push_str(&format!("{f}\n"));
        }
        if kernel.text() != model.text() {
            problems.push_str(&format!(
                "report text differs:\n--- model\n{}\n--- kernel\n{}\n",
                model.text(),
                kernel.text()
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{}:\n{problems}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        pulled >= 2,
        "seeds 003 and 004 pull their feeds ({pulled} pulls)"
    );
}
