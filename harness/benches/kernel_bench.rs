//! The kernel dataplane's benchmarks (they need root and print numbers; run with
//! `cargo bench -p policylab-harness --bench kernel_bench`). Each has its target and,
//! where one exists, its baseline measured in the same run:
//! - compile + load 1,000 policies over 200 pods on 2 nodes (target < 0.5 s);
//! - a network set of 100,000 entries: compiled and loaded, against plain `nft -f`
//!   loading the same set (target within 1.2x of the baseline);
//! - a 30x30 pod matrix (900 probes, half denied) on 2 nodes (target < 2 s);
//! - the shipped scenarios end to end on the kernel: build, every step, teardown
//!   (target < 5 s together).

#[path = "../../benches/support/synthetic.rs"]
mod synthetic;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use policylab::diag::{Diagnostics, FileId, Sources, Span};
use policylab::inventory::{ClusterConfig, Inventory, NodeDef};
use policylab::manifest::load_documents;
use policylab::resolve::{resolve, World};
use policylab::yaml::{parse_stream, Origin};
use policylab_harness::netns::Lab;
use policylab_harness::nft;
use policylab_harness::runner::{self, KernelLab, RunnerOptions};

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Loads every table of `compiled` into its node namespace, all nodes at once.
async fn load(
    nodes: &BTreeMap<String, policylab_harness::netns::NetNs>,
    scripts: &[(String, String)],
) {
    let loads = scripts.iter().map(|(node, script)| {
        let ns = nodes[node].clone();
        async move { nft::apply_async(&ns, script).await.expect("nft loads") }
    });
    futures::future::join_all(loads).await;
}

async fn compile_and_load_1000_policies(lab: &Lab) {
    let world = synthetic::world(200, 1000);
    let nodes: BTreeMap<String, _> = ["node1", "node2"]
        .iter()
        .map(|n| (n.to_string(), lab.create(n).expect("namespace")))
        .collect();
    let mut compile_t = Vec::new();
    let mut load_t = Vec::new();
    let mut total_t = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let compiled = policylab::compile::compile(&world);
        let scripts: Vec<(String, String)> = compiled
            .tables
            .iter()
            .map(|(n, t)| (n.clone(), t.to_string()))
            .collect();
        let compiled_at = start.elapsed();
        load(&nodes, &scripts).await;
        let total = start.elapsed();
        compile_t.push(compiled_at);
        load_t.push(total - compiled_at);
        total_t.push(total);
    }
    println!(
        "compile + load 1,000 policies / 200 pods / 2 nodes: median {} (compile + render {}, load {}), target < 0.5 s",
        secs(median(total_t)),
        secs(median(compile_t)),
        secs(median(load_t))
    );
}

/// A world with one node, one pod and a GlobalNetworkSet of `n` entries (half /32,
/// half /24) that a GlobalNetworkPolicy denies egress to.
fn big_set_world(n: usize) -> (World, Vec<String>) {
    let mut nets = Vec::with_capacity(n);
    for i in 0..n / 2 {
        // 50,000 /32 in 11.0.0.0/8 and 50,000 /24 in 12.0.0.0/8 and up.
        nets.push(format!("11.{}.{}.{}/32", i >> 16, (i >> 8) & 255, i & 255));
        nets.push(format!(
            "{}.{}.{}.0/24",
            12 + (i >> 16),
            (i >> 8) & 255,
            i & 255
        ));
    }
    let mut s = String::from(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\n  annotations:\n    cni.projectcalico.org/ipAddrs: '[\"10.244.1.10\"]'\nspec:\n  nodeName: node1\n  containers: [{name: c, image: x}]\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: deny-big}\nspec:\n  selector: all()\n  types: [Egress]\n  egress:\n    - {action: Deny, destination: {selector: big == 'yes'}}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: big, labels: {big: 'yes'}}\nspec:\n  nets:\n",
    );
    for net in &nets {
        let _ = writeln!(s, "    - {net}");
    }
    let (docs, errs) = parse_stream(&s, FileId(0), Origin::default());
    assert!(errs.is_empty(), "{errs:?}");
    let mut diags = Diagnostics::new();
    let resources = load_documents(&docs, &mut diags);
    assert!(!diags.has_errors(), "{:?}", diags.sorted());
    let world = resolve(&Inventory {
        cluster: ClusterConfig::default(),
        nodes: vec![NodeDef {
            name: "node1".into(),
            span: Span::UNKNOWN,
            ip: "172.18.0.2".parse().expect("address"),
            ipv6: None,
            labels: BTreeMap::new(),
            interfaces: vec!["eth0".into()],
            ports: vec![],
        }],
        outside: vec![],
        resources: resources
            .into_iter()
            .map(|r| (r.key(), std::sync::Arc::new(r)))
            .collect(),
    });
    (world, nets)
}

async fn network_set_100k(lab: &Lab) {
    let (world, nets) = big_set_world(100_000);
    let node = lab.create("node1-set").expect("namespace");
    let plain_ns = lab.create("plain-set").expect("namespace");
    let plain = format!(
        "add table inet plain\ndelete table inet plain\ntable inet plain {{\n\tset s {{\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = {{ {} }}\n\t}}\n}}\n",
        nets.join(", ")
    );
    let mut ours = Vec::new();
    let mut compile_t = Vec::new();
    let mut baseline = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let compiled = policylab::compile::compile(&world);
        let script = compiled.tables["node1"].to_string();
        compile_t.push(start.elapsed());
        let loading = Instant::now();
        nft::apply_async(&node, &script).await.expect("loads");
        ours.push(loading.elapsed());
        let start = Instant::now();
        nft::apply_async(&plain_ns, &plain).await.expect("loads");
        baseline.push(start.elapsed());
    }
    let (ours, base) = (median(ours), median(baseline));
    println!(
        "network set of 100,000 entries: load {} (compile + render {} more) vs plain nft -f of the same set {}: {:.2}x, target within 1.2x",
        secs(ours),
        secs(median(compile_t)),
        secs(base),
        ours.as_secs_f64() / base.as_secs_f64()
    );
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn plan_text(text: &str, name: &str) -> policylab::run::Plan {
    let dir = std::env::temp_dir().join(format!("policylab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    let plan = plan_file(&path);
    let _ = std::fs::remove_dir_all(&dir);
    plan
}

fn plan_file(path: &Path) -> policylab::run::Plan {
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(&mut sources, path, &mut diags)
        .unwrap_or_else(|| panic!("{}", diags.render(&sources)));
    policylab::run::plan(&sc, &sources)
}

async fn matrix_30x30() {
    let mut s = String::from(
        "name: matrix\ncluster:\n  nodes: [{name: node-1}, {name: node-2}]\n  pods:\n",
    );
    let pods: Vec<String> = (0..30).map(|i| format!("p{i}")).collect();
    for (i, p) in pods.iter().enumerate() {
        let _ = writeln!(
            s,
            "    - {{name: {p}, node: node-{}, labels: {{half: h{}}}, ports: [{{port: 80, protocol: TCP}}]}}",
            1 + i % 2,
            i % 2
        );
    }
    s.push_str("steps:\n  - apply: |\n      apiVersion: projectcalico.org/v3\n      kind: GlobalNetworkPolicy\n      metadata: {name: halves}\n      spec:\n        selector: half == 'h0'\n        types: [Ingress]\n        ingress: [{action: Allow, source: {selector: half == 'h0'}}]\n");
    let _ = writeln!(
        s,
        "  - matrix:\n      from: [{}]\n      to: [{}]",
        pods.join(", "),
        pods.iter()
            .map(|p| format!("{p}:80/tcp"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let plan = plan_text(&s, "matrix.yaml");
    let states: Vec<_> = plan
        .steps
        .iter()
        .map(|s| (s.inventory.as_ref(), s.world.as_ref()))
        .collect();
    let lab_plan = policylab::lab::plan_for_states("bench-matrix", &states).expect("lab plan");
    let mut lab = KernelLab::build(&lab_plan, &[], &RunnerOptions::default())
        .await
        .expect("lab");
    let step = plan.steps.last().expect("matrix step");
    lab.apply(step.world.clone()).await.expect("policy loads");
    let flows: Vec<_> = step.probes.iter().map(|p| &p.flow).collect();
    let mut times = Vec::new();
    let mut summary = String::new();
    for _ in 0..5 {
        let start = Instant::now();
        let seen = lab.probe(&flows).await.expect("probes");
        times.push(start.elapsed());
        let agree = step
            .probes
            .iter()
            .zip(&seen)
            .filter(|(p, k)| {
                p.flow.src_ip == p.flow.dst_ip
                    || policylab::run::disagreements(&p.prediction, &k.observation).is_empty()
            })
            .count();
        let denied = seen
            .iter()
            .filter(|k| k.observation.outcome == policylab::run::Outcome::Deny)
            .count();
        summary = format!(
            "{} probes, {denied} denied, {agree} agree with the model",
            seen.len()
        );
    }
    println!(
        "30x30 pod matrix on 2 nodes: median {} ({summary}), target < 2 s",
        secs(median(times))
    );
    lab.teardown().expect("teardown");
}

async fn seeds_end_to_end() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .expect("scenarios")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut times = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let mut per = Vec::new();
        for f in &files {
            let t = Instant::now();
            let plan = plan_file(f);
            let run = runner::run_plan(&plan, &RunnerOptions::default())
                .await
                .expect("runs");
            assert!(run.feed_disagreements.is_empty());
            per.push(format!(
                "{} {}",
                f.file_stem().and_then(|s| s.to_str()).unwrap_or("?"),
                secs(t.elapsed())
            ));
        }
        times.push((start.elapsed(), per.join(", ")));
    }
    times.sort();
    let (t, per) = &times[times.len() / 2];
    println!(
        "the {} shipped scenarios end to end on the kernel: median {} ({per}), target < 5 s",
        files.len(),
        secs(*t)
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "kernel_bench: run it with `cargo bench -p policylab-harness --bench kernel_bench` (as root)"
        );
        return;
    }
    if !runner::machine_problems().is_empty() {
        println!(
            "kernel_bench skipped: {}",
            runner::machine_problems().join("; ")
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let lab = Lab::new("kbench").expect("lab");
        compile_and_load_1000_policies(&lab).await;
        network_set_100k(&lab).await;
        lab.teardown().expect("teardown");
        matrix_30x30().await;
        seeds_end_to_end().await;
    });
}
