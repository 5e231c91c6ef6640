//! Kernel test of Log lines: a `log prefix "calico-packet: " group N` rule in a node
//! namespace, a real TCP SYN through it, and the LOG-target line made from the NFLOG
//! event.

mod common;

use std::time::{Duration, Instant};

use common::{ip, kernel_ready, small_plan};
use policylab_harness::loglines::{self, InterfaceNames, CALICO_LOG_PREFIX};
use policylab_harness::nflog::{NflogListener, NflogSink};
use policylab_harness::nft;
use policylab_harness::probe::{probe, Outcome, ProbeSpec};
use policylab_harness::topology::{BuildOptions, Cluster};

const GROUP: u16 = 9;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rule_gives_the_kernel_line_for_a_syn() {
    if !kernel_ready("log_rule_gives_the_kernel_line_for_a_syn") {
        return;
    }
    let plan = small_plan("logline");
    let cali = plan.pod("default", "c").expect("c").host_iface.clone();
    let cluster = Cluster::build(&plan, &BuildOptions::default())
        .await
        .expect("build");
    let node2 = cluster.node("node-2").expect("node-2").clone();
    let a = cluster.pod("default", "a").expect("a").clone();

    let sink = NflogSink::new();
    let _listener = NflogListener::start(&node2, GROUP, sink.clone())
        .await
        .expect("listener");
    nft::apply(
        &node2,
        &format!(
            "table inet plablog {{\n  chain forward_f {{\n    type filter hook forward priority 0; policy accept;\n    \
             tcp dport 80 tcp flags & (syn | ack) == syn log prefix \"{CALICO_LOG_PREFIX}\" group {GROUP}\n  }}\n}}\n"
        ),
    )
    .expect("apply");
    let names = InterfaceNames::of(&node2).expect("names");
    assert_eq!(names.name(1), "lo");

    for (target, src, len, ttl_key) in [
        ("10.244.2.10", "10.244.1.10".to_string(), 60, "TTL"),
        (
            "fd00:10:244:2::10",
            loglines::ipv6_as_logged("fd00:10:244:1::10".parse().expect("v6")),
            80,
            "HOPLIMIT",
        ),
    ] {
        let since = Instant::now();
        let o = probe(
            &a,
            &ProbeSpec::tcp(ip(target), 80).with_timeout(Duration::from_secs(2)),
            None,
        )
        .await
        .expect("probe");
        assert_eq!(o.outcome, Outcome::Connected, "{o:?}");
        let port = o.local_addr.expect("local address").port();
        let ev = sink
            .wait_for(since, Duration::from_secs(2), |e| {
                e.tuple.is_some_and(|t| t.src_port == port)
            })
            .await
            .expect("the SYN was logged");
        assert_eq!(ev.prefix, CALICO_LOG_PREFIX);
        let line = loglines::line_of_event(&ev, &names);
        eprintln!("{line}");

        // The run-specific values, checked against what the probe saw.
        assert!(line.contains(&format!(" SPT={port} DPT=80 ")), "{line}");
        let mac = line
            .split(' ')
            .find_map(|t| t.strip_prefix("MAC="))
            .expect("MAC");
        let bytes: Vec<&str> = mac.split(':').collect();
        let ethertype = if target.contains(':') {
            "86:dd"
        } else {
            "08:00"
        };
        assert_eq!(bytes.len(), 14, "{mac}");
        assert!(mac.ends_with(ethertype), "{mac}");
        assert!(line.ends_with("SYN URGP=0 "), "{line:?}");

        // Pod (64) -> node-1 -> fabric -> node-2: forwarded three times by the time
        // node-2's forward hook sees it.
        let dst = if target.contains(':') {
            loglines::ipv6_as_logged(target.parse().expect("v6"))
        } else {
            target.to_string()
        };
        let expected = if target.contains(':') {
            format!(
                "{CALICO_LOG_PREFIX}IN=eth0 OUT={cali} MAC=* SRC={src} DST={dst} LEN={len} TC=0 \
                 {ttl_key}=61 FLOWLBL=* PROTO=TCP SPT=* DPT=80 WINDOW=* RES=0x00 SYN URGP=0"
            )
        } else {
            format!(
                "{CALICO_LOG_PREFIX}IN=eth0 OUT={cali} MAC=* SRC={src} DST={dst} LEN={len} \
                 TOS=0x00 PREC=0x00 {ttl_key}=61 ID=* DF PROTO=TCP SPT=* DPT=80 WINDOW=* \
                 RES=0x00 SYN URGP=0"
            )
        };
        assert_eq!(loglines::normalize(&line, CALICO_LOG_PREFIX), expected);
    }
    cluster.teardown().expect("teardown");
}
