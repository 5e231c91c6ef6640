//! The `policylab` binary on the kernel dataplane: exit codes 0 to 4, `compile`,
//! and cleanup when the run is signalled or killed.

mod common;

use common::cli::{code, out, policylab, root, text};

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The policylab namespaces whose owner is process `pid`.
fn namespaces_of(pid: u32) -> Vec<String> {
    policylab_harness::netns::list_lab_namespaces()
        .expect("list namespaces")
        .into_iter()
        .filter(|o| o.pid == pid)
        .map(|o| o.name)
        .collect()
}

/// Waits until process `pid` has at least `n` namespaces.
fn wait_for_namespaces(pid: u32, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let names = namespaces_of(pid);
        if names.len() >= n {
            return names;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "process {pid} made no lab namespaces in 30s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_seed_exits_0_with_the_model_report() {
    if !common::kernel_ready("a_seed_exits_0_with_the_model_report") {
        return;
    }
    let k = out(&["run", "scenarios/002-prednat-nlb.yaml"]);
    assert_eq!(code(&k), 0, "{}{}", text(&k.stdout), text(&k.stderr));
    let m = out(&[
        "run",
        "--dataplane",
        "model",
        "scenarios/002-prednat-nlb.yaml",
    ]);
    assert_eq!(text(&k.stdout), text(&m.stdout), "kernel and model reports");
    // The same JSON on both dataplanes when the text is the same.
    let j = out(&["run", "--format", "json", "scenarios/002-prednat-nlb.yaml"]);
    let jm = out(&[
        "run",
        "--dataplane",
        "model",
        "--format",
        "json",
        "scenarios/002-prednat-nlb.yaml",
    ]);
    assert_eq!(code(&j), 0, "{}", text(&j.stderr));
    // Apart from the real source ports in the kernel's own flow-log records
    // (decision `kernel-flow-logs`).
    let without_ports = |o: &Output| {
        let mut v: serde_json::Value = serde_json::from_str(&text(&o.stdout)).expect("JSON");
        for st in v["steps"].as_array_mut().unwrap() {
            for p in st["probes"].as_array_mut().unwrap() {
                for f in p["observed"]["flow_logs"].as_array_mut().unwrap() {
                    f.as_object_mut().unwrap().remove("src_port");
                }
            }
        }
        for f in v["flow_logs"].as_array_mut().unwrap() {
            f.as_object_mut().unwrap().remove("src_port");
        }
        v
    };
    assert_eq!(
        without_ports(&j),
        without_ports(&jm),
        "kernel and model JSON"
    );
    let v: serde_json::Value = serde_json::from_str(&text(&j.stdout)).expect("JSON");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["summary"]["disagreements"], 0);
}

#[test]
fn a_wrong_expectation_exits_1() {
    if !common::kernel_ready("a_wrong_expectation_exits_1") {
        return;
    }
    let o = out(&["run", "tests/run_mismatch/mismatch.yaml"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("MISMATCH expect deny: observed allow"));
    assert!(
        !text(&o.stderr).contains("DISAGREEMENT"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_bad_scenario_exits_2_and_builds_nothing() {
    if !common::kernel_ready("a_bad_scenario_exits_2_and_builds_nothing") {
        return;
    }
    let child = policylab(&["run", "tests/bad_scenarios/unknown_pod.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let o = child.wait_with_output().expect("wait");
    assert_eq!(code(&o), 2);
    assert_eq!(text(&o.stdout), "");
    assert!(text(&o.stderr).contains("nothing was run"));
    assert!(namespaces_of(pid).is_empty());
}

#[test]
fn without_capabilities_it_exits_3_and_says_what_to_do() {
    if !common::kernel_ready("without_capabilities_it_exits_3_and_says_what_to_do") {
        return;
    }
    // Drop CAP_SYS_ADMIN and CAP_NET_ADMIN from the bounding set: the binary runs as
    // root without them, as in an unprivileged container.
    let o = Command::new("setpriv")
        .args([
            "--bounding-set",
            "-sys_admin,-net_admin",
            "--inh-caps",
            "-all",
            env!("CARGO_BIN_EXE_policylab"),
            "run",
            "scenarios/000-network-sets.yaml",
        ])
        .current_dir(root())
        .output()
        .expect("setpriv (util-linux) runs");
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("CAP_SYS_ADMIN and CAP_NET_ADMIN missing"),
        "{err}"
    );
    assert!(err.contains("--dataplane model"), "{err}");
    assert_eq!(text(&o.stdout), "");
}

#[test]
fn a_perturbed_kernel_exits_4_with_both_traces() {
    if !common::kernel_ready("a_perturbed_kernel_exits_4_with_both_traces") {
        return;
    }
    let o = policylab(&["run", "scenarios/000-network-sets.yaml"])
        .env(policylab_harness::runner::PERTURB_ENV, "1")
        .output()
        .expect("runs");
    let err = text(&o.stderr);
    assert_eq!(code(&o), 4, "{err}");
    assert!(
        err.contains("DISAGREEMENT scenario network-sets-and-egress-rules"),
        "{err}"
    );
    assert!(
        err.contains("outcome: the model predicts deny, the dataplane saw allow"),
        "{err}"
    );
    assert!(err.contains("The reference model:"), "{err}");
    assert!(
        err.contains("The kernel (NFLOG attribution, in path order):"),
        "{err}"
    );
    assert!(err.contains("this is a bug in policylab"), "{err}");
}

#[test]
fn compile_prints_each_node_table() {
    let o = out(&["compile", "scenarios/001-external-ips.yaml", "--step", "2"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let s = text(&o.stdout);
    assert!(
        s.starts_with("# node node-1\nadd table inet policylab\n"),
        "{s}"
    );
    assert!(s.contains("cali-po-"), "{s}");
    let last = out(&["compile", "scenarios/001-external-ips.yaml"]);
    let n = out(&["compile", "scenarios/001-external-ips.yaml", "--step", "7"]);
    assert_eq!(
        text(&last.stdout),
        text(&n.stdout),
        "default is the last step"
    );
    let bad = out(&["compile", "scenarios/001-external-ips.yaml", "--step", "99"]);
    assert_eq!(code(&bad), 2);
    assert!(text(&bad.stderr).contains("there is no step 99"));
}

/// SIGTERM or SIGINT during a run removes the run's namespaces before it exits.
#[test]
fn a_signalled_run_removes_its_namespaces() {
    if !common::kernel_ready("a_signalled_run_removes_its_namespaces") {
        return;
    }
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut child = policylab(&["run", "harness/tests/data/slow.yaml"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let names = wait_for_namespaces(pid, 4);
        // SAFETY: signalling the child we spawned, by its pid.
        assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
        let status = child.wait().expect("wait");
        assert!(!status.success());
        assert_eq!(namespaces_of(pid), Vec::<String>::new(), "left: {names:?}");
    }
}

/// SIGKILL leaves the namespaces; `policylab clean` removes exactly those of dead runs.
#[test]
fn a_killed_run_is_cleaned_by_policylab_clean() {
    if !common::kernel_ready("a_killed_run_is_cleaned_by_policylab_clean") {
        return;
    }
    let mut child = policylab(&["run", "harness/tests/data/slow.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    wait_for_namespaces(pid, 4);
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let left = namespaces_of(pid);
    assert!(!left.is_empty(), "SIGKILL cannot clean up");
    let o = out(&["clean"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let s = text(&o.stdout);
    for n in &left {
        assert!(s.contains(&format!("removed {n}\n")), "{s}");
    }
    assert!(s.contains("namespaces of dead policylab runs"), "{s}");
    assert!(namespaces_of(pid).is_empty());
}

/// A table nft refuses is policylab's bug: exit 70 with nft's error and the
/// offending lines, never the machine hint of exit 3 (test hook
/// `POLICYLAB_TEST_BREAK_TABLE`, debug builds).
#[test]
fn a_table_nft_rejects_exits_70_with_the_offending_lines() {
    if !common::kernel_ready("a_table_nft_rejects_exits_70_with_the_offending_lines") {
        return;
    }
    let o = policylab(&["run", "scenarios/000-network-sets.yaml"])
        .env(policylab_harness::runner::BREAK_TABLE_ENV, "1")
        .output()
        .expect("runs");
    let err = text(&o.stderr);
    assert_eq!(code(&o), 70, "{err}");
    assert!(
        err.contains("nft rejected the table policylab compiled for node node-1"),
        "{err}"
    );
    assert!(err.contains("the offending lines of the script:"), "{err}");
    assert!(
        err.contains(": add rule inet policylab no-such-chain accept"),
        "{err}"
    );
    assert!(err.contains("this is a bug in policylab"), "{err}");
    assert!(!err.contains("needs root"), "{err}");
    assert_eq!(text(&o.stdout), "");
}

/// Whether this kernel makes SCTP sockets (a socket in the test's own namespace,
/// closed at once: nothing is created there).
fn kernel_has_sctp() -> bool {
    // SAFETY: socket/close have no preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 132) };
    if fd >= 0 {
        unsafe { libc::close(fd) };
    }
    fd >= 0
}

/// A kernel without SCTP runs every other probe: the SCTP probes are "not run"
/// (apart in the summary, skipped in JUnit) and the exit code is that of the
/// probes that ran. With SCTP, every probe runs and the report is the model's.
#[test]
fn sctp_probes_without_sctp_are_not_run_and_the_rest_runs() {
    if !common::kernel_ready("sctp_probes_without_sctp_are_not_run_and_the_rest_runs") {
        return;
    }
    let file = "harness/tests/data/sctp-and-tcp.yaml";
    let o = out(&["run", file]);
    let report = text(&o.stdout);
    assert_eq!(code(&o), 0, "{report}\n{}", text(&o.stderr));
    let model = out(&["run", "--dataplane", "model", file]);
    if kernel_has_sctp() {
        assert_eq!(report, text(&model.stdout));
        return;
    }
    assert!(
        report.contains(
            "default/client (10.244.1.11) -> default/web:9000/sctp (10.244.1.10): not run: this kernel has no SCTP"
        ),
        "{report}"
    );
    assert!(
        report
            .contains("default/client -> default/web:9000/sctp: not run: this kernel has no SCTP"),
        "{report}"
    );
    assert!(
        report.contains(
            "summary: 3 probes, 4 expectations: every expectation held; 2 probes not run"
        ),
        "{report}"
    );
    // The TCP probes ran and were decided by the kernel as the model says.
    assert!(
        report.contains("ok       by end-of-tier:default"),
        "{report}"
    );
    assert!(
        !text(&o.stderr).contains("DISAGREEMENT"),
        "{}",
        text(&o.stderr)
    );
    let junit = text(&out(&["run", "--format", "junit", file]).stdout);
    assert_eq!(junit.matches("<skipped").count(), 2, "{junit}");
    assert!(
        junit.contains("not run: this kernel has no SCTP"),
        "{junit}"
    );
}

/// `--pcap` with a 240-character scenario name and long pod names: each probe's
/// file is made, its name within the file system's 255 bytes.
#[test]
fn pcap_files_of_long_names_are_made() {
    if !common::kernel_ready("pcap_files_of_long_names_are_made") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("policylab-pcap-long-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = out(&[
        "run",
        "--pcap",
        dir.to_str().expect("utf-8 temp dir"),
        "harness/tests/data/long-pcap-names.yaml",
    ]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 0, "{err}\n{}", text(&o.stdout));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("pcap dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(names.len(), 2, "{names:?}");
    for n in &names {
        assert!(n.len() <= 255 && n.ends_with(".pcap"), "{n}");
        assert!(n.starts_with("a-scenario-name-of-240-characters-"), "{n}");
    }
    assert!(names[0].contains("-step01-probe01-"), "{names:?}");
    assert!(names[1].contains("-step02-probe01-"), "{names:?}");
}
