//! The lab bench's benchmarks (they need root and print numbers; run with
//! `cargo bench -p policylab-harness`):
//! - building 100 pods on 3 nodes, against `ip -batch` making the same namespaces, veth
//!   pairs, addresses and routes in the same run;
//! - building 1,000 pods on 3 nodes;
//! - the time to a verdict for a denied probe decided by NFLOG, against an allowed one.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use policylab::lab::{LabPlan, NodePlan, PodPlan, ServerSpec};
use policylab_harness::netns::{self, Lab};
use policylab_harness::nflog::{NflogListener, NflogSink};
use policylab_harness::nft;
use policylab_harness::probe::{probe, Outcome, ProbeSpec};
use policylab_harness::topology::{BuildOptions, Cluster};

fn plan(prefix: &str, pods: usize, servers: bool) -> LabPlan {
    let mut b = LabPlan::builder(prefix);
    for n in 0..3u8 {
        b = b.node(
            NodePlan::new(format!("node-{n}"), Ipv4Addr::new(172, 18, 0, 11 + n))
                .with_pod_cidr(format!("10.{}.0.0/16", 100 + n).parse().expect("cidr")),
        );
    }
    for i in 0..pods {
        let n = i % 3;
        let k = i / 3 + 2;
        let addr = Ipv4Addr::new(10, 100 + n as u8, (k / 250) as u8, (k % 250) as u8 + 2);
        let mut p = PodPlan::new("default", format!("pod-{i}"), format!("node-{n}"), addr);
        if servers {
            p = p.with_server(ServerSpec::tcp(80));
        }
        b = b.pod(p);
    }
    b.build().expect("bench plan")
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "min {:8.2} ms  p50 {:8.2} ms  p90 {:8.2} ms  max {:8.2} ms  (n={})",
        ms(v[0]),
        ms(p(0.5)),
        ms(p(0.9)),
        ms(v[v.len() - 1]),
        v.len()
    )
}

async fn bench_build(pods: usize, runs: usize) {
    let mut builds = Vec::new();
    let mut teardowns = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let p = plan("bench", pods, false);
        let opts = BuildOptions {
            start_servers: false,
            ..BuildOptions::default()
        };
        let t = Instant::now();
        let c = Cluster::build(&p, &opts).await.expect("build");
        builds.push(t.elapsed());
        last = Some(c.timings().clone());
        let t = Instant::now();
        c.teardown().expect("teardown");
        teardowns.push(t.elapsed());
        settle();
    }
    println!(
        "build {pods:>4} pods / 3 nodes (rtnetlink): {}",
        stats(builds)
    );
    if let Some(t) = last {
        println!("    last run phases: {t:?}");
    }
    println!(
        "  teardown {pods:>4} pods:                  {}",
        stats(teardowns)
    );
}

/// The kernel destroys removed namespaces in the background (under the RTNL lock);
/// let it finish so that one run does not pay for the previous one's teardown.
fn settle() {
    std::thread::sleep(Duration::from_millis(1500));
}

fn ip_batch(ns: Option<&str>, script: &str) {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("ip");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    let st = child.wait().expect("ip");
    assert!(st.success(), "ip -batch failed:\n{script}");
}

/// The same namespaces, veths, addresses and routes with `ip -batch`: one process adds
/// the namespaces, one configures the fabric, one per node, one per pod. Every
/// configuring command runs with `-n <lab namespace>`.
fn baseline_ip_batch(pods: usize) -> Duration {
    let lab = Lab::new("ipbatch").expect("lab");
    let p = plan("ipbatch", pods, false);
    let fabric = lab.name_for("fabric");
    let node_ns: Vec<String> = (0..3).map(|n| lab.name_for(&format!("n{n}"))).collect();
    let pod_ns: Vec<String> = (0..pods).map(|i| lab.name_for(&format!("p{i}"))).collect();
    let t = Instant::now();
    let mut adds = format!("netns add {fabric}\n");
    for n in node_ns.iter().chain(&pod_ns) {
        adds.push_str(&format!("netns add {n}\n"));
    }
    ip_batch(None, &adds);
    let mut f = String::from("link set lo up\naddress add 169.254.1.1/32 dev lo\n");
    for (i, ns) in node_ns.iter().enumerate() {
        f.push_str(&format!(
            "link add node{i} type veth peer name eth0 netns {ns}\nlink set node{i} up\n"
        ));
    }
    ip_batch(Some(&fabric), &f);
    for (i, n) in p.nodes.iter().enumerate() {
        let mut s = format!(
            "link set lo up\nlink set eth0 up\naddress add {}/32 dev eth0\nroute add 169.254.1.1/32 dev eth0 scope link\nroute add default via 169.254.1.1 dev eth0\n",
            n.ipv4
        );
        for (j, pod) in p.pods.iter().enumerate().filter(|(_, q)| q.node == n.name) {
            s.push_str(&format!(
                "link add {} type veth peer name eth0 netns {}\nlink set {} up\n",
                pod.host_iface, pod_ns[j], pod.host_iface
            ));
        }
        ip_batch(Some(&node_ns[i]), &s);
    }
    let mut f = String::new();
    for (i, n) in p.nodes.iter().enumerate() {
        f.push_str(&format!("route add {}/32 dev node{i} scope link\n", n.ipv4));
        for c in &n.pod_cidrs {
            f.push_str(&format!("route add {c} via {} dev node{i}\n", n.ipv4));
        }
    }
    ip_batch(Some(&fabric), &f);
    for (j, pod) in p.pods.iter().enumerate() {
        ip_batch(
            Some(&pod_ns[j]),
            &format!(
                "link set lo up\nlink set eth0 up\naddress add {}/32 dev eth0\nroute add 169.254.1.1/32 dev eth0 scope link\nroute add default via 169.254.1.1 dev eth0\n",
                pod.ipv4
            ),
        );
    }
    for (i, n) in p.nodes.iter().enumerate() {
        let mut s = String::new();
        for pod in p.pods.iter().filter(|q| q.node == n.name) {
            s.push_str(&format!(
                "route add {}/32 dev {} scope link\n",
                pod.ipv4, pod.host_iface
            ));
        }
        ip_batch(Some(&node_ns[i]), &s);
    }
    let took = t.elapsed();
    netns::remove_where(|o| lab.owns(&o.name)).expect("remove baseline namespaces");
    drop(lab);
    settle();
    took
}

async fn bench_nflog(runs: usize) {
    let p = plan("nflogbench", 6, true);
    let c = Cluster::build(&p, &BuildOptions::default())
        .await
        .expect("build");
    let src = c.pod("default", "pod-0").expect("pod").clone();
    let denied = p.pod("default", "pod-1").expect("pod").ipv4;
    let allowed = p.pod("default", "pod-4").expect("pod").ipv4;
    let node = c.node("node-1").expect("node").clone();
    let sink = NflogSink::new();
    let _l = NflogListener::start(&node, 5, sink.clone())
        .await
        .expect("listener");
    nft::apply(
        &node,
        &format!(
            "table inet bench {{\n chain forward_f {{\n  type filter hook forward priority 0;\n  \
             ct state established,related accept\n  ip daddr {denied} tcp dport 80 log prefix \"deny \" group 5 drop\n }}\n}}\n"
        ),
    )
    .expect("nft");
    let mut deny = Vec::new();
    let mut allow = Vec::new();
    for _ in 0..runs {
        let o = probe(&src, &ProbeSpec::tcp(denied.into(), 80), Some(&sink))
            .await
            .expect("probe");
        assert!(
            o.outcome == Outcome::TimedOut && o.dropped_by.is_some(),
            "{o:?}"
        );
        deny.push(o.elapsed);
        let o = probe(&src, &ProbeSpec::tcp(allowed.into(), 80), Some(&sink))
            .await
            .expect("probe");
        assert_eq!(o.outcome, Outcome::Connected, "{o:?}");
        allow.push(o.elapsed);
    }
    println!("denied TCP probe, verdict via NFLOG:       {}", stats(deny));
    println!(
        "allowed TCP probe (handshake):             {}",
        stats(allow)
    );
    c.teardown().expect("teardown");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary
    // without it, and then it only says how to run it.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "lab_bench: run it with `cargo bench -p policylab-harness --bench lab_bench` (as root)"
        );
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || nft::nft_binary().is_err() {
        println!("lab_bench skipped: needs root and the nft binary");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Warm up caches (binary pages, kernel slabs) once.
        bench_build(100, 1).await;
        println!("--- measured ---");
        bench_build(100, 7).await;
        let base: Vec<Duration> = (0..5).map(|_| baseline_ip_batch(100)).collect();
        println!("build  100 pods / 3 nodes (ip -batch):     {}", stats(base));
        bench_build(1000, 3).await;
        bench_nflog(200).await;
    });
}
