//! Hostile and careless input to the `policylab` binary (issue "hostile and huge
//! input"): closed pipes, empty folders, duplicate names, and the exit codes
//! they end with.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use policylab_harness::exit::Exit;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn policylab(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_policylab"));
    c.args(args).current_dir(root());
    c.env_remove(policylab_harness::runner::PERTURB_ENV);
    c
}

fn out(args: &[&str]) -> Output {
    policylab(args).output().expect("the policylab binary runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh, empty directory for one test.
fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("policylab-hostile-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a temp dir");
    d
}

/// Runs policylab with its stdout a pipe whose reader is already gone (as
/// `policylab ... | head -0`): the status, the stderr and the pid.
fn into_closed_pipe(args: &[&str]) -> (ExitStatus, String, u32) {
    let mut child = policylab(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the policylab binary runs");
    drop(child.stdout.take());
    let pid = child.id();
    let o = child.wait_with_output().expect("wait for policylab");
    (o.status, text(&o.stderr), pid)
}

/// Ends as a Unix tool does on a closed stdout: killed by SIGPIPE, nothing on
/// stderr (no panic, no "internal error").
fn assert_quiet_sigpipe(args: &[&str]) -> u32 {
    let (status, err, pid) = into_closed_pipe(args);
    assert_eq!(
        status.signal(),
        Some(libc::SIGPIPE),
        "{args:?}: {status:?}, stderr: {err}"
    );
    assert!(!err.contains("internal error"), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert_eq!(err, "", "{args:?}: stderr");
    pid
}

#[test]
fn closed_stdout_ends_compile_quietly() {
    assert_quiet_sigpipe(&["compile", "scenarios/002-prednat-nlb.yaml"]);
}

#[test]
fn closed_stdout_ends_run_json_and_junit_quietly() {
    for format in ["json", "junit", "text"] {
        assert_quiet_sigpipe(&[
            "run",
            "--dataplane",
            "model",
            "--format",
            format,
            "scenarios/",
        ]);
    }
}

#[test]
fn closed_stdout_ends_explain_and_check_quietly() {
    assert_quiet_sigpipe(&[
        "explain",
        "scenarios/004-snort-feed.yaml",
        "--step",
        "4",
        "tf-ubuntu -> 5.196.58.96:443/tcp",
    ]);
    assert_quiet_sigpipe(&["check", "scenarios/"]);
}

/// The kernel run into a closed pipe still tears its lab down first.
#[test]
fn closed_stdout_ends_a_kernel_run_after_teardown() {
    if !common::kernel_ready("closed_stdout_ends_a_kernel_run_after_teardown") {
        return;
    }
    let pid = assert_quiet_sigpipe(&["run", "--format", "junit", "scenarios/002-prednat-nlb.yaml"]);
    let left: Vec<_> = policylab_harness::netns::list_lab_namespaces()
        .expect("list namespaces")
        .into_iter()
        .filter(|o| o.pid == pid)
        .map(|o| o.name)
        .collect();
    assert_eq!(left, Vec::<String>::new(), "namespaces left by pid {pid}");
}

#[test]
fn check_and_run_agree_on_an_empty_folder() {
    let dir = temp_dir("empty");
    let d = dir.to_str().unwrap();
    let c = out(&["check", d]);
    let r = out(&["run", "--dataplane", "model", d]);
    assert_eq!(
        code(&c),
        i32::from(Exit::Invalid.code()),
        "{}",
        text(&c.stderr)
    );
    assert_eq!(
        code(&r),
        i32::from(Exit::Invalid.code()),
        "{}",
        text(&r.stderr)
    );
    for o in [&c, &r] {
        let all = text(&o.stdout) + &text(&o.stderr);
        assert!(all.contains("nothing to check: no scenario found"), "{all}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn duplicate_scenario_names_in_one_run_are_rejected() {
    let o = out(&[
        "run",
        "--dataplane",
        "model",
        "scenarios/002-prednat-nlb.yaml",
        "scenarios/002-prednat-nlb.yaml",
    ]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "", "nothing was run");
    let err = text(&o.stderr);
    assert!(
        err.contains("scenario name `prednat-policies-for-an-nlb` is also the name of scenarios/002-prednat-nlb.yaml:"),
        "{err}"
    );
    assert!(err.contains("names must be unique"), "{err}");
}

/// The README's exit-code table lists exactly the codes of [`Exit`].
#[test]
fn the_readme_lists_every_exit_code() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for e in Exit::ALL {
        let row = format!("| {} |", e.code());
        assert!(readme.contains(&row), "README has no row `{row}` for {e:?}");
    }
}
