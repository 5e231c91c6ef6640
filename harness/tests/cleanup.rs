//! Kernel tests of cleanup and isolation: teardown, drop while panicking, SIGKILL of
//! the owning process (swept at the next start), and a root namespace left untouched.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ip, kernel_ready, small_plan};
use policylab_harness::netns::{self, Lab};
use policylab_harness::probe::{probe, Outcome, ProbeSpec};
use policylab_harness::topology::{BuildOptions, Cluster};

const CHILD_ENV: &str = "POLICYLAB_TEST_SIGKILL_CHILD";

fn netns_names() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Read-only views of the root namespace (this test never writes there).
fn root_snapshot() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let cmds: &[&[&str]] = &[
        &["ip", "-j", "link", "show"],
        &["ip", "-j", "addr", "show"],
        &["ip", "-j", "route", "show", "table", "all"],
        &["ip", "-6", "-j", "route", "show", "table", "all"],
        &["ip", "-j", "rule", "show"],
        &["nft", "list", "ruleset"],
    ];
    for c in cmds {
        let o = Command::new(c[0])
            .args(&c[1..])
            .output()
            .expect("read root state");
        out.push((c.join(" "), String::from_utf8_lossy(&o.stdout).into_owned()));
    }
    for f in [
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/ipv6/conf/all/forwarding",
        "/proc/sys/net/ipv4/conf/all/proxy_arp",
        "/proc/sys/net/ipv4/ping_group_range",
    ] {
        out.push((
            f.to_string(),
            std::fs::read_to_string(f).unwrap_or_default(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_namespace_is_untouched_and_teardown_removes_everything() {
    if !kernel_ready("root_namespace_is_untouched_and_teardown_removes_everything") {
        return;
    }
    let before = root_snapshot();
    let cluster = Cluster::build(&small_plan("root"), &BuildOptions::default())
        .await
        .expect("build");
    let names = cluster.lab().namespaces();
    assert_eq!(names.len(), 1 + 2 + 1 + 3, "{names:?}");
    let listed = netns_names();
    for n in &names {
        assert!(listed.contains(n), "{n} not in {listed:?}");
        assert!(netns::parse_name(n).is_some());
    }
    let a = cluster.pod("default", "a").expect("a").clone();
    let o = probe(&a, &ProbeSpec::http(ip("198.51.100.7"), 80), None)
        .await
        .expect("probe");
    assert_eq!(o.outcome, Outcome::Connected);
    // Probes cannot reach the machine's own addresses: the lab has no route out.
    let out = probe(
        &a,
        &ProbeSpec::tcp(ip("127.0.0.1"), 22).with_timeout(Duration::from_millis(300)),
        None,
    )
    .await
    .expect("probe");
    assert_ne!(out.outcome, Outcome::Connected);
    let during = root_snapshot();
    cluster.teardown().expect("teardown");
    let after = root_snapshot();
    let listed = netns_names();
    for n in &names {
        assert!(!listed.contains(n), "{n} left behind");
    }
    for ((what, b), (_, d)) in before.iter().zip(&during) {
        assert_eq!(b, d, "root state changed while the lab was up: {what}");
    }
    for ((what, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(b, a, "root state changed after the run: {what}");
    }
}

#[test]
fn a_panic_removes_the_lab() {
    if !kernel_ready("a_panic_removes_the_lab") {
        return;
    }
    let names = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = names.clone();
    let r = std::thread::spawn(move || {
        let lab = Lab::new("panic").expect("lab");
        lab.create("one").expect("ns");
        lab.create("two").expect("ns");
        *seen.lock().expect("lock") = lab.namespaces();
        panic!("boom while the lab is alive");
    })
    .join();
    assert!(r.is_err());
    let names = names.lock().expect("lock").clone();
    assert_eq!(names.len(), 2);
    let listed = netns_names();
    for n in &names {
        assert!(!listed.contains(n), "{n} left behind after a panic");
    }
}

#[test]
fn remove_where_removes_only_what_it_picks() {
    if !kernel_ready("remove_where_removes_only_what_it_picks") {
        return;
    }
    let keep = Lab::new("keep").expect("lab");
    let gone = Lab::new("gone").expect("lab");
    keep.create("k").expect("ns");
    gone.create("g").expect("ns");
    let removed = netns::remove_where(|o| gone.owns(&o.name)).expect("remove");
    assert_eq!(removed, gone.namespaces());
    let listed = netns_names();
    assert!(listed.contains(&keep.namespaces()[0]));
    assert!(!listed.contains(&gone.namespaces()[0]));
    // Dropping a lab whose namespaces are already gone is fine.
    gone.teardown().expect("teardown of removed namespaces");
    keep.teardown().expect("teardown");
}

/// Not a test on its own: the body of the child process of the SIGKILL test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_child_builds_and_waits() {
    if std::env::var(CHILD_ENV).as_deref() != Ok("1") {
        return;
    }
    let cluster = Cluster::build(&small_plan("killed"), &BuildOptions::default())
        .await
        .expect("build");
    println!("READY {}", cluster.lab().namespaces().join(" "));
    tokio::time::sleep(Duration::from_secs(60)).await;
    // Only reached if the parent did not kill us.
    drop(cluster);
}

/// Starts the child that builds a lab and waits; returns it with its namespace names.
fn spawn_lab_child() -> (std::process::Child, Vec<String>) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "sigkill_child_builds_and_waits",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut names = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child");
        // libtest prints "test <name> ... " before the test's own output.
        if let Some(at) = line.find("READY ") {
            names = line[at + 6..]
                .split_whitespace()
                .map(str::to_string)
                .collect();
            break;
        }
    }
    assert_eq!(names.len(), 7, "child did not build: {names:?}");
    let listed = netns_names();
    for n in &names {
        assert!(listed.contains(n), "{n} missing while the child lives");
    }
    (child, names)
}

#[test]
fn sigkilled_runs_are_swept() {
    if !kernel_ready("sigkilled_runs_are_swept") {
        return;
    }
    let (mut child, names) = spawn_lab_child();
    // SIGKILL: no destructor, no signal handler runs.
    child.kill().expect("kill child");
    child.wait().expect("reap child");
    let owners: Vec<_> = names.iter().filter_map(|n| netns::parse_name(n)).collect();
    assert!(owners.iter().all(netns::owner_is_gone));
    // The sweep (also run by every Lab::new) removes them; another test's sweep may
    // have been first.
    netns::sweep_stale().expect("sweep");
    let listed = netns_names();
    for n in &names {
        assert!(!listed.contains(n), "{n} not swept");
    }
}

#[test]
fn sigterm_and_sigint_clean_up_before_exit() {
    if !kernel_ready("sigterm_and_sigint_clean_up_before_exit") {
        return;
    }
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let (mut child, names) = spawn_lab_child();
        let pid = i32::try_from(child.id()).expect("pid");
        // SAFETY: signalling our own child by its pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
        let status = child.wait().expect("reap child");
        assert!(!status.success());
        // No sweep here: the child's own handler removed everything.
        let listed = netns_names();
        for n in &names {
            assert!(!listed.contains(n), "{n} left behind after signal {sig}");
        }
    }
}
