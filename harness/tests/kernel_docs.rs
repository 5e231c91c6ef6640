//! Every complete scenario of the documentation (README.md and `docs/*.md`) runs on
//! the kernel: every expectation holds, no probe or feed pull disagrees with the
//! reference model, and the report text is the model's. `tests/docs.rs` runs the
//! same blocks on the model; this proves the recipes users copy work as written on
//! the real dataplane.

mod common;

#[path = "../../tests/doc_blocks.rs"]
mod doc_blocks;

use std::path::{Path, PathBuf};

use policylab::diag::{Diagnostics, Sources};
use policylab::report::Report;
use policylab_harness::runner::{self, RunnerOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doc_scenarios_hold_on_the_kernel() {
    if !common::kernel_ready("doc_scenarios_hold_on_the_kernel") {
        return;
    }
    let root = root();
    // Relative paths in the blocks are shown and resolved from the repository root.
    std::env::set_current_dir(&root).expect("cd to the repository root");
    let blocks = doc_blocks::scenario_blocks(&root);
    assert!(blocks.len() >= 20, "only {} doc scenarios", blocks.len());
    let mut failures = Vec::new();
    for (page, b, dir) in &blocks {
        let mut sources = Sources::new();
        let mut diags = Diagnostics::new();
        let f = doc_blocks::register(&mut sources, &root, page, dir, b);
        let where_ = format!(
            "{}:{}",
            page.strip_prefix(&root).unwrap_or(page).display(),
            b.line
        );
        let Some(sc) = policylab::scenario::load_file(&mut sources, f, &mut diags) else {
            failures.push(format!("{where_}: {}", diags.render(&sources)));
            continue;
        };
        let plan = policylab::run::plan(&sc, &sources);
        let model = Report::new(&plan, &plan.model_observations(), "model");
        let run = match runner::run_plan(&plan, &RunnerOptions::default()).await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{where_}: {e}"));
                continue;
            }
        };
        let kernel = Report::new(&plan, &run.observations(), "kernel");
        let mut problems = String::new();
        for (i, (_, _, pp)) in plan.probes().enumerate() {
            let d = policylab::run::disagreements(&pp.prediction, &run.probes[i].observation);
            if !d.is_empty() {
                problems.push_str(&format!("  {} -> {}:\n", pp.source, pp.target));
                for x in d {
                    problems.push_str(&format!("    {x}\n"));
                }
                problems.push_str(&run.probes[i].trace());
            }
        }
        for fd in &run.feed_disagreements {
            problems.push_str(&format!("  {fd}\n"));
        }
        if kernel.exit_code() != 0 || kernel.text() != model.text() {
            problems.push_str(&format!(
                "--- model\n{}\n--- kernel\n{}\n",
                model.text(),
                kernel.text()
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{where_} (scenario {}):\n{problems}", sc.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
