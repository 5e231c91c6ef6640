//! The `policylab` binary's exit codes and outputs for `run` and `explain`
//! (pure: the model dataplane needs no root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn policylab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_policylab"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the policylab binary runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The number of scenario files (YAML with a top-level `steps:`) under `dir`.
fn scenario_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += scenario_files(&p);
        } else if p.extension().is_some_and(|x| x == "yaml")
            && std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .any(|l| l.starts_with("steps:"))
        {
            n += 1;
        }
    }
    n
}

#[test]
fn run_shipped_scenarios_on_the_model_exits_0() {
    let o = policylab(&["run", "--dataplane", "model", "scenarios/"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        out.matches("summary: ").count(),
        scenario_files(&root().join("scenarios")),
        "{out}"
    );
    assert!(out.contains("every expectation held"));
    assert!(!out.contains("model"), "the text never names the dataplane");
}

#[test]
fn run_with_a_failed_expectation_exits_1() {
    let o = policylab(&[
        "run",
        "--dataplane",
        "model",
        "tests/run_mismatch/mismatch.yaml",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stdout(&o).contains("MISMATCH expect deny: observed allow"));
}

#[test]
fn run_with_invalid_input_exits_2_and_runs_nothing() {
    let o = policylab(&["run", "tests/bad_scenarios/unknown_pod.yaml", "scenarios/"]);
    assert_eq!(code(&o), 2);
    assert_eq!(stdout(&o), "", "nothing was run");
    let err = stderr(&o);
    assert!(
        err.contains("tests/bad_scenarios/unknown_pod.yaml:"),
        "{err}"
    );
    assert!(err.contains("nothing was run"), "{err}");
}

#[test]
fn run_a_manifest_is_not_a_scenario() {
    let o = policylab(&["run", "fixtures/000-network-sets/ip-protect.yaml"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a scenario"), "{}", stderr(&o));
}

#[test]
fn run_json_junit_and_flow_logs() {
    let dir = std::env::temp_dir().join(format!("policylab-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let logs = dir.join("flows.jsonl");
    let o = policylab(&[
        "run",
        "--dataplane",
        "model",
        "--format",
        "json",
        "--flow-logs",
        logs.to_str().unwrap(),
        "scenarios/003-threat-feed.yaml",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v[0]["scenario"], "threat-feed-red-pod");
    assert_eq!(v[0]["dataplane"], "model");
    assert_eq!(v[0]["alerts"].as_array().map(Vec::len), Some(3));
    let lines = std::fs::read_to_string(&logs).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["scenario"], "threat-feed-red-pod");
    assert_eq!(
        first["destination"]["name"],
        "threatfeed.training.ip.threatfeed"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let o = policylab(&[
        "run",
        "--dataplane",
        "model",
        "--format",
        "junit",
        "scenarios/003-threat-feed.yaml",
    ]);
    assert_eq!(code(&o), 0);
    let x = stdout(&o);
    assert!(x.starts_with("<?xml"), "{x}");
    assert_eq!(x.matches("<testcase ").count(), 3, "{x}");
}

#[test]
fn explain_walks_through_the_decision() {
    let o = policylab(&[
        "explain",
        "scenarios/004-snort-feed.yaml",
        "--step",
        "4",
        "tf-ubuntu -> 5.196.58.96:443/tcp",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "Probe: default/tf-ubuntu (10.244.1.10) -> 5.196.58.96:443/tcp (5.196.58.96)",
        "Stage 1: source workload egress on node node-1, endpoint default/tf-ubuntu",
        "policy gnp:block-snort-ip-block-list (order 100, applies here: its selector `all()` matches):",
        "rule 0 (Deny): matches: Deny",
        "Verdict: DENY",
        "Threat-feed alert: an address of this flow is on feed snort-ip-block-list.",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // Before the policy exists (after step 2) the same probe is allowed.
    let o = policylab(&[
        "explain",
        "scenarios/004-snort-feed.yaml",
        "--step",
        "2",
        "tf-ubuntu -> 5.196.58.96:443/tcp",
    ]);
    assert!(stdout(&o).contains("Verdict: ALLOW"), "{}", stdout(&o));
}

#[test]
fn explain_points_into_a_bad_probe() {
    let o = policylab(&[
        "explain",
        "scenarios/004-snort-feed.yaml",
        "--step",
        "4",
        "tf-ubuntu -> blocked-host:99999/tcp",
    ]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(err.starts_with("<probe>:1:"), "{err}");
    let o = policylab(&[
        "explain",
        "scenarios/004-snort-feed.yaml",
        "--step",
        "9",
        "a -> b:1",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("step 9 does not exist: the scenario has 5 steps"),
        "{}",
        stderr(&o)
    );
}
