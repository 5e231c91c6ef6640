//! Every scenario runs on the kernel: its report text equals the model's and the
//! committed model snapshot, with no disagreement (probes and feed pulls).
//!
//! - `scenarios/*.yaml`: the shipped tutorial scenarios;
//! - `tests/run_scenarios/*.yaml`: runner behaviour (feed schedule and formats,
//!   failed hosts, refused ports, file servers' HTTP status);
//! - `tests/scale/pods-1000-on-3-nodes.yaml`: 1,000 pods on 3 nodes (IPAM blocks,
//!   static neighbours) and a 30x30 matrix, without a committed snapshot (its
//!   report is compared with the model's);
//! - `scenarios/conformance/**/*.yaml`: cases ported from upstream suites (no
//!   snapshot: the kernel report must equal the model's, every expectation hold).

mod common;

use std::path::{Path, PathBuf};

use policylab::diag::{Diagnostics, Sources};
use policylab::report::Report;
use policylab_harness::runner::{self, RunnerOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `*.yaml` files of `dir` (and of its subfolders when `recursive`), sorted.
fn yaml_files(dir: &str, recursive: bool) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut todo = vec![root().join(dir)];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                if recursive {
                    todo.push(p);
                }
            } else if p.extension().is_some_and(|e| e == "yaml") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// The committed snapshot's text (after insta's header).
fn snapshot(test: &str, path: &Path) -> String {
    let file = root().join(format!(
        "tests/snapshots/integration__scenarios__{test}@{}.snap",
        path.file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
    ));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let body = text.splitn(3, "---\n").nth(2).unwrap_or_default();
    body.trim_end().to_string()
}

/// Runs one scenario on the kernel; returns its problems (empty when it agrees).
/// With a snapshot test name, the report must also equal that committed snapshot;
/// without one, every expectation must hold.
async fn run_one(path: &Path, snapshot_test: Option<&str>) -> (String, usize) {
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(&mut sources, path, &mut diags)
        .unwrap_or_else(|| panic!("{} loads:\n{}", path.display(), diags.render(&sources)));
    let plan = policylab::run::plan(&sc, &sources);
    let model = Report::new(&plan, &plan.model_observations(), "model");
    let run = runner::run_plan(&plan, &RunnerOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let kernel = Report::new(&plan, &run.observations(), "kernel");
    let mut problems = String::new();
    assert_eq!(run.probes.len(), plan.probes().count());
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
    // Feeds are pulled for real from the feed server, once per model pull.
    let model_pulls: Vec<_> = plan.steps.iter().flat_map(|s| &s.pulls).collect();
    assert_eq!(run.pulls.len(), model_pulls.len(), "{}", path.display());
    for (k, m) in run.pulls.iter().zip(&model_pulls) {
        assert_eq!((&k.feed, &k.url), (&m.feed, &m.url));
    }
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
    match snapshot_test {
        Some(test) if kernel.text().trim_end() != snapshot(test, path) => {
            problems.push_str("the kernel report differs from the committed model snapshot\n");
        }
        None if kernel.exit_code() != 0 => {
            problems.push_str(&format!(
                "an expectation did not hold:\n{}\n",
                kernel.text()
            ));
        }
        _ => {}
    }
    let ok_pulls = run.pulls.iter().filter(|p| p.result.is_ok()).count();
    (problems, ok_pulls)
}

async fn run_dir(dir: &str, recursive: bool, snapshot_test: Option<&str>) -> usize {
    let mut failures = Vec::new();
    let mut pulled = 0;
    let files = yaml_files(dir, recursive);
    assert!(!files.is_empty(), "no scenarios under {dir}");
    for path in files {
        let (problems, ok) = run_one(&path, snapshot_test).await;
        pulled += ok;
        if !problems.is_empty() {
            failures.push(format!("{}:\n{problems}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    pulled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_scenarios_agree_with_the_model() {
    if !common::kernel_ready("shipped_scenarios_agree_with_the_model") {
        return;
    }
    let pulled = run_dir(
        "scenarios",
        false,
        Some("shipped_scenarios_hold_on_the_model"),
    )
    .await;
    assert!(
        pulled >= 2,
        "seeds 003 and 004 pull their feeds ({pulled} pulls)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_scenarios_agree_with_the_model() {
    if !common::kernel_ready("runner_scenarios_agree_with_the_model") {
        return;
    }
    run_dir(
        "tests/run_scenarios",
        false,
        Some("runner_scenarios_hold_on_the_model"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_scenarios_agree_with_the_model() {
    if !common::kernel_ready("conformance_scenarios_agree_with_the_model") {
        return;
    }
    run_dir("scenarios/conformance", true, None).await;
}

/// Issue 9 ("scale"): 1,000 pods on 3 nodes in /26 IPAM blocks, a 30x30 matrix,
/// clean on the kernel: no disagreement, the same report as the model. Without
/// static neighbour entries the kernel's neighbour table (gc_thresh3, 1,024 for
/// the whole machine) overflowed at 400 pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_pods_on_three_nodes_agree_with_the_model() {
    if !common::kernel_ready("thousand_pods_on_three_nodes_agree_with_the_model") {
        return;
    }
    let path = root().join("tests/scale/pods-1000-on-3-nodes.yaml");
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(&mut sources, &path, &mut diags)
        .unwrap_or_else(|| panic!("loads:\n{}", diags.render(&sources)));
    let plan = policylab::run::plan(&sc, &sources);
    let states: Vec<_> = plan
        .steps
        .iter()
        .map(|s| (s.inventory.as_ref(), s.world.as_ref()))
        .collect();
    let lab = policylab::lab::plan_for_states("scale", &states).expect("lab plan");
    assert_eq!(lab.pods.len(), 1000);
    for n in &lab.nodes {
        // 333 or 334 pods: 6 blocks of 64 addresses each.
        assert_eq!(n.pod_cidrs.len(), 6, "{}: {:?}", n.name, n.pod_cidrs);
        assert!(n.pod_cidrs.iter().all(|c| c.prefix_len() == 26));
    }
    let model = Report::new(&plan, &plan.model_observations(), "model");
    let started = std::time::Instant::now();
    let run = runner::run_plan(&plan, &RunnerOptions::default())
        .await
        .expect("the kernel run");
    eprintln!(
        "1,000 pods on 3 nodes, 30x30 matrix: {:.2} s on the kernel (build, probes, teardown)",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(run.probes.len(), 900);
    let mut problems = Vec::new();
    for (i, (_, _, pp)) in plan.probes().enumerate() {
        let d = policylab::run::disagreements(&pp.prediction, &run.probes[i].observation);
        if !d.is_empty() {
            problems.push(format!("{} -> {}: {d:?}", pp.source, pp.target));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let kernel = Report::new(&plan, &run.observations(), "kernel");
    assert_eq!(kernel.exit_code(), 0);
    assert!(
        kernel.text() == model.text(),
        "the kernel report differs from the model's"
    );
}
