//! Hostile and careless input to the `policylab` binary (issue "hostile and huge
//! input"): closed pipes, empty folders, duplicate names, and the exit codes
//! they end with.

mod common;

use common::cli::{code, out, policylab, root, text};

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};

use policylab_harness::exit::Exit;

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

/// A minimal valid scenario whose first step is `step` (YAML lines, indented
/// as a list item under `steps:`), with `outside` extra outside hosts.
fn scenario(step: &str, outside: &str) -> String {
    format!(
        "name: hostile\ncluster:\n  pods:\n    - name: red\noutside:\n  - name: feeds\n    ip: 203.0.113.200\n{outside}steps:\n{step}  - probe: red -> feeds:80/tcp\n    expect: refused\n"
    )
}

/// `policylab check ARGS...` with a 60 s bound (a hang fails the test).
fn check_bounded(args: &[&str]) -> (Output, std::time::Duration) {
    let start = std::time::Instant::now();
    let mut c = policylab(&[]);
    c.arg("check")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("the policylab binary runs");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(o) => (o.expect("wait for policylab"), start.elapsed()),
        Err(_) => {
            // SAFETY: kill on the pid of the child this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("policylab check {args:?} did not finish in 60 s");
        }
    }
}

fn all_output(o: &Output) -> String {
    text(&o.stdout) + &text(&o.stderr)
}

/// Writes `text` as `dir/name` and checks it; the output and how long it took.
fn check_text(dir: &Path, name: &str, text: &str, extra: &[&str]) -> (Output, std::time::Duration) {
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    let mut args: Vec<&str> = extra.to_vec();
    args.push(f.to_str().unwrap());
    check_bounded(&args)
}

fn assert_refused(o: &Output, needle: &str) {
    let all = all_output(o);
    assert_eq!(code(o), 2, "{all}");
    assert!(all.contains(needle), "expected `{needle}` in:\n{all}");
    // Nothing of the files it tried to read is shown.
    for secret in ["root:x:0:0", "root:*:", "root:!", "PATH=", "HOME="] {
        assert!(!all.contains(secret), "leaked `{secret}`:\n{all}");
    }
}

#[test]
fn apply_of_an_absolute_path_is_refused() {
    let dir = temp_dir("abs");
    let (o, _) = check_text(
        &dir,
        "s.yaml",
        &scenario("  - apply: /etc/passwd\n", ""),
        &[],
    );
    assert_refused(
        &o,
        "s.yaml:9:12: manifest `/etc/passwd` is an absolute path",
    );
    let (o, _) = check_text(
        &dir,
        "s.yaml",
        &scenario("  - apply: /proc/self/environ\n", ""),
        &[],
    );
    assert_refused(&o, "manifest `/proc/self/environ` is an absolute path");
    let (o, _) = check_text(&dir, "s.yaml", &scenario("  - apply: /dev/zero\n", ""), &[]);
    assert_refused(&o, "manifest `/dev/zero` is an absolute path");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn apply_escaping_with_dot_dot_is_refused() {
    let dir = temp_dir("dotdot");
    let (o, _) = check_text(
        &dir,
        "s.yaml",
        &scenario("  - apply: ../../../../../../../../etc/shadow\n", ""),
        &[],
    );
    assert_refused(&o, "manifest `../../../../../../../../etc/shadow` resolves to /etc/shadow, outside the scenario's root");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn outside_host_files_outside_the_root_are_refused() {
    let dir = temp_dir("files");
    let (o, _) = check_text(
        &dir,
        "s.yaml",
        &scenario("", "    files: {/ips: /etc/shadow}\n"),
        &[],
    );
    assert_refused(&o, "file `/etc/shadow` is an absolute path");
    let (o, _) = check_text(
        &dir,
        "s.yaml",
        &scenario("", "    files: {/ips: ../../../../../../../etc/passwd}\n"),
        &[],
    );
    assert_refused(&o, "resolves to /etc/passwd, outside the scenario's root");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_symbolic_link_leaving_the_root_is_refused() {
    let dir = temp_dir("link");
    std::os::unix::fs::symlink("/proc/self/environ", dir.join("env.yaml")).unwrap();
    let (o, _) = check_text(&dir, "s.yaml", &scenario("  - apply: env.yaml\n", ""), &[]);
    assert_refused(
        &o,
        "manifest `env.yaml` resolves through a symbolic link to /proc/",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn root_widens_the_folder_a_scenario_may_read() {
    let dir = temp_dir("root");
    std::fs::create_dir_all(dir.join("sc")).unwrap();
    std::fs::create_dir_all(dir.join("fix")).unwrap();
    std::fs::write(
        dir.join("fix/p.yaml"),
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: all()}\n",
    )
    .unwrap();
    let text = scenario("  - apply: ../fix/p.yaml\n", "");
    let (o, _) = check_text(&dir.join("sc"), "s.yaml", &text, &[]);
    assert_refused(&o, "outside the scenario's root");
    let root = dir.to_str().unwrap().to_string();
    let (o, _) = check_text(&dir.join("sc"), "s.yaml", &text, &["--root", &root]);
    assert_eq!(code(&o), 0, "{}", all_output(&o));
    // A directory given to `check` is the root of the scenarios under it.
    let (o, _) = check_bounded(&[&root]);
    assert_eq!(code(&o), 0, "{}", all_output(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn only_regular_files_are_read_fifos_and_devices_are_refused() {
    let dir = temp_dir("fifo");
    let fifo = dir.join("pipe.yaml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path this test owns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.yaml")).unwrap();
    // Named by a scenario (inside the root): refused, at once.
    let (o, t) = check_text(&dir, "s.yaml", &scenario("  - apply: pipe.yaml\n", ""), &[]);
    assert_refused(&o, "cannot read manifest");
    assert!(
        all_output(&o).contains("it is a FIFO, not a regular file"),
        "{}",
        all_output(&o)
    );
    assert!(t.as_secs() < 10, "{t:?}");
    let (o, _) = check_text(
        &dir,
        "s.yaml",
        &scenario("  - apply: zero.yaml\n", ""),
        &["--root", "/"],
    );
    assert_refused(&o, "it is a character device, not a regular file");
    // Named on the command line.
    let (o, _) = check_bounded(&[fifo.to_str().unwrap()]);
    assert_refused(&o, "it is a FIFO, not a regular file");
    // Under a directory: skipped (not a regular file), the walk ends.
    std::fs::remove_file(dir.join("s.yaml")).unwrap();
    let (o, _) = check_bounded(&[dir.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", all_output(&o));
    assert!(
        all_output(&o).contains("nothing to check"),
        "{}",
        all_output(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_over_the_size_cap_are_refused_with_the_cap() {
    let dir = temp_dir("big");
    let big = dir.join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(policylab::diag::MAX_FILE_BYTES + 1).unwrap();
    let (o, _) = check_text(&dir, "s.yaml", &scenario("  - apply: big.yaml\n", ""), &[]);
    assert_refused(
        &o,
        "big.yaml`: it is larger than 64 MiB, the most policylab reads from one file",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn symbolic_link_loops_do_not_stop_check_or_run() {
    let dir = temp_dir("loop");
    std::fs::write(dir.join("s.yaml"), scenario("", "")).unwrap();
    std::os::unix::fs::symlink(".", dir.join("a")).unwrap();
    std::os::unix::fs::symlink(".", dir.join("b")).unwrap();
    let d = dir.to_str().unwrap();
    let (o, _) = check_bounded(&[d]);
    assert_eq!(code(&o), 0, "{}", all_output(&o));
    assert!(
        all_output(&o).contains("checked 1 scenarios: 0 problems"),
        "{}",
        all_output(&o)
    );
    assert!(
        all_output(&o).contains("not searched: this symbolic link leads back to"),
        "{}",
        all_output(&o)
    );
    let mut c = policylab(&["run", "--dataplane", "model", d]);
    let o = c.output().unwrap();
    assert_eq!(code(&o), 0, "{}", all_output(&o));
    assert_eq!(text(&o.stdout).matches("summary: ").count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn feed_urls_with_an_address_of_no_outside_host_are_refused() {
    let dir = temp_dir("feed");
    let step = "  - apply: |\n      apiVersion: projectcalico.org/v3\n      kind: GlobalThreatFeed\n      metadata: {name: f}\n      spec:\n        pull:\n          http: {url: \"http://192.0.2.99/ips\"}\n";
    let (o, _) = check_text(&dir, "s.yaml", &scenario(step, ""), &[]);
    assert_refused(&o, "s.yaml:15:23: feed URL `http://192.0.2.99/ips`: the address 192.0.2.99 belongs to no outside host of the scenario");
    // An outside host's address is fine.
    let ok = step.replace("192.0.2.99", "203.0.113.200");
    let (o, _) = check_text(
        &dir,
        "s.yaml",
        &scenario(&ok, "    files: {/ips: ips.txt}\n"),
        &[],
    );
    std::fs::write(dir.join("ips.txt"), "192.0.2.1\n").unwrap();
    let (o2, _) = check_bounded(&[dir.join("s.yaml").to_str().unwrap()]);
    let _ = o;
    assert_eq!(code(&o2), 0, "{}", all_output(&o2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The alias bomb (nine levels of ten aliases: 10^9 nodes) grew past
/// 23 GB; it is now refused at the alias that passes the limit.
#[test]
fn the_alias_bomb_is_refused_quickly() {
    let dir = temp_dir("bomb");
    let mut t = format!("a1: &a1 [{}]\n", ["lol"; 10].join(", "));
    for n in 2..=9 {
        t.push_str(&format!(
            "a{n}: &a{n} [{}]\n",
            vec![format!("*a{}", n - 1); 10].join(", ")
        ));
    }
    t.push_str("name: x\nsteps: []\n");
    let (o, time) = check_text(&dir, "bomb.yaml", &t, &[]);
    assert_eq!(code(&o), 2, "{}", all_output(&o));
    assert!(
        all_output(&o).contains(
            "bomb.yaml:4:50: this alias would make this document's anchors and aliases copy"
        ),
        "{}",
        all_output(&o)
    );
    assert!(time.as_secs() < 10, "{time:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// 32,000 `vars:` keys took 9.7 s (quadratic duplicate-key search).
#[test]
fn many_vars_check_in_linear_time() {
    let dir = temp_dir("vars");
    let mut t = String::from("name: many-vars\nvars:\n");
    for i in 0..32_000 {
        t.push_str(&format!("  v{i}: value{i}\n"));
    }
    t.push_str("steps: []\n");
    let (o, time) = check_text(&dir, "vars.yaml", &t, &[]);
    assert!(time.as_secs() < 20, "{time:?}");
    assert!(
        all_output(&o).contains("checked 1 scenarios"),
        "{}",
        all_output(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An unknown `kind:` of a megabyte cost 5.5 s (edit distances to every known
/// kind); it is now quoted in part, at once.
#[test]
fn a_huge_unknown_kind_is_reported_quickly() {
    let dir = temp_dir("kind");
    let t = format!(
        "apiVersion: v1\nkind: {}\nmetadata: {{name: a}}\n",
        "X".repeat(1 << 20)
    );
    let (o, time) = check_text(&dir, "m.yaml", &t, &[]);
    assert_eq!(code(&o), 2);
    assert!(
        all_output(&o).contains("unknown kind \"XXXX"),
        "{}",
        &all_output(&o)[..200]
    );
    assert!(all_output(&o).contains("\"... (1048576 characters)"));
    assert!(time.as_secs() < 10, "{time:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
