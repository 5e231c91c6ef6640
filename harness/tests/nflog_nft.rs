//! Kernel tests of nft loading and NFLOG: a drop in a node namespace decides a probe
//! within milliseconds instead of after its timeout.

mod common;

use std::time::Duration;

use common::{ip, kernel_ready, small_plan};
use policylab_harness::nflog::{NflogListener, NflogSink};
use policylab_harness::nft::{self, NftError};
use policylab_harness::probe::{probe, probe_many, Outcome, ProbeSpec};
use policylab_harness::topology::{BuildOptions, Cluster};

const GROUP: u16 = 7;

fn deny_script(dest: &str, port: u16) -> String {
    format!(
        "table inet plabtest {{\n  chain forward_f {{\n    type filter hook forward priority 0; policy accept;\n    \
         ct state established,related accept\n    \
         ip daddr {dest} tcp dport {port} log prefix \"deny-c \" group {GROUP} drop\n    \
         ip daddr {dest} udp dport 53 log prefix \"deny-c-udp \" group {GROUP} drop\n    \
         ip daddr {dest} icmp type echo-request log prefix \"deny-c-icmp \" group {GROUP} drop\n  }}\n}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nflog_decides_denied_probes_quickly() {
    if !kernel_ready("nflog_decides_denied_probes_quickly") {
        return;
    }
    let cluster = Cluster::build(&small_plan("nflog"), &BuildOptions::default())
        .await
        .expect("build");
    let node2 = cluster.node("node-2").expect("node-2").clone();
    let a = cluster.pod("default", "a").expect("a").clone();
    let b = cluster.pod("default", "b").expect("b").clone();

    let sink = NflogSink::new();
    let _listener = NflogListener::start(&node2, GROUP, sink.clone())
        .await
        .expect("nflog listener");
    // The kernel allows one listener per group and namespace.
    assert!(NflogListener::start(&node2, GROUP, NflogSink::new())
        .await
        .is_err());

    nft::apply(&node2, &deny_script("10.244.2.10", 80)).expect("apply");
    let listed = nft::list_ruleset(&node2).expect("list");
    assert!(listed.contains("deny-c"), "{listed}");

    let timeout = Duration::from_secs(2);
    let deny = ProbeSpec::tcp(ip("10.244.2.10"), 80).with_timeout(timeout);
    let o = probe(&a, &deny, Some(&sink)).await.expect("probe");
    assert_eq!(o.outcome, Outcome::TimedOut, "{o:?}");
    let ev = o.dropped_by.clone().expect("decided by NFLOG");
    assert_eq!(ev.prefix, "deny-c ");
    let tuple = ev.tuple.expect("parsed packet");
    assert_eq!(tuple.src, ip("10.244.1.10"));
    assert_eq!(tuple.dst_port, 80);
    assert_eq!(Some(tuple.src_port), o.local_addr.map(|l| l.port()));
    assert!(ev.indev.is_some() && ev.outdev.is_some(), "{ev:?}");
    assert!(
        o.elapsed < Duration::from_millis(100),
        "took {:?}",
        o.elapsed
    );
    eprintln!("denied tcp decided in {:?}", o.elapsed);

    // UDP and ICMP drops too, and probes not dropped are unaffected.
    let udp = probe(
        &a,
        &ProbeSpec::udp(ip("10.244.2.10"), 53).with_timeout(timeout),
        Some(&sink),
    )
    .await
    .expect("udp");
    assert_eq!(udp.outcome, Outcome::TimedOut, "{udp:?}");
    assert!(udp.dropped_by.is_some(), "{udp:?}");
    let icmp = probe(
        &b,
        &ProbeSpec::icmp(ip("10.244.2.10")).with_timeout(timeout),
        Some(&sink),
    )
    .await
    .expect("icmp");
    assert_eq!(icmp.outcome, Outcome::TimedOut, "{icmp:?}");
    assert_eq!(
        icmp.dropped_by.as_ref().map(|e| e.prefix.as_str()),
        Some("deny-c-icmp ")
    );
    let v6 = probe(
        &a,
        &ProbeSpec::http(ip("fd00:10:244:2::10"), 80).with_timeout(timeout),
        Some(&sink),
    )
    .await
    .expect("v6");
    assert_eq!(v6.outcome, Outcome::Connected, "{v6:?}");

    // Many denied probes at once: each is matched to its own flow.
    let many: Vec<_> = (0..20)
        .map(|i| (if i % 2 == 0 { a.clone() } else { b.clone() }, deny.clone()))
        .collect();
    for r in probe_many(&many, 20, Some(&sink)).await {
        let o = r.expect("probe");
        assert_eq!(o.outcome, Outcome::TimedOut, "{o:?}");
        assert!(o.dropped_by.is_some(), "{o:?}");
    }

    // Without the sink, the same probe waits for its timeout.
    let slow = probe(
        &a,
        &deny.clone().with_timeout(Duration::from_millis(300)),
        None,
    )
    .await
    .expect("probe");
    assert_eq!(slow.outcome, Outcome::TimedOut);
    assert!(slow.elapsed >= Duration::from_millis(300));

    // A bad script is rejected as a whole, with nft's message.
    let err =
        nft::apply(&node2, "table inet broken { chain c { nonsense } }\n").expect_err("rejected");
    match err {
        NftError::Rejected { stderr, .. } => assert!(stderr.contains("Error"), "{stderr}"),
        other => panic!("unexpected error {other}"),
    }
    assert!(!nft::list_ruleset(&node2).expect("list").contains("broken"));
    nft::apply_async(&node2, "delete table inet plabtest\n")
        .await
        .expect("delete");
    assert!(!nft::list_ruleset(&node2)
        .expect("list")
        .contains("plabtest"));
    let ok = probe(&a, &deny, Some(&sink)).await.expect("probe");
    assert_eq!(ok.outcome, Outcome::Connected, "{ok:?}");

    cluster.teardown().expect("teardown");
}
