//! Kernel test of a large threat feed: a list that grows from 2 to 100,000 entries
//! and shrinks back, pulled for real and enforced by a deny policy. The kernel's report
//! equals the model's; the feed updates change the nft set in place (one `nft -f` of
//! element changes per node) instead of reloading the table. The test prints the time
//! of the in-place update next to a whole-table reload of the same tables.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::kernel_ready;
use policylab::compile::compile;
use policylab::diag::{Diagnostics, Sources};
use policylab::nft::{Element, Set};
use policylab::report::Report;
use policylab_harness::netns::Lab;
use policylab_harness::nft;
use policylab_harness::runner::{self, LoadKind, RunnerOptions};

/// Entries of the large list.
const LARGE: usize = 100_000;

/// Writes the scenario and its feed files into `dir`.
fn write_scenario(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("feeds")).expect("feeds dir");
    std::fs::write(
        dir.join("feeds/small.txt"),
        "10.48.255.194\n198.51.100.66\n",
    )
    .expect("small");
    // 10.48.255.194 and 99,999 addresses from 100.64.0.0 up: 100.64.1.1 is on it.
    let mut large = String::from("# a large list\n10.48.255.194\n");
    for i in 0..(LARGE as u32 - 1) {
        let a = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(100, 64, 0, 0)) + i);
        let _ = writeln!(large, "{a}");
    }
    std::fs::write(dir.join("feeds/large.txt"), large).expect("large");
    let path = dir.join("large-feed.yaml");
    std::fs::write(
        &path,
        r#"name: large-feed
outside:
  - {name: suspicious, ip: 10.48.255.194, ports: [{port: 80, protocol: TCP}]}
  - {name: late, ip: 100.64.1.1, ports: [{port: 80, protocol: TCP}]}
  - name: feeds
    ip: 203.0.113.200
    hostnames: [feeds.example.com]
    files:
      /ips: feeds/small.txt
cluster:
  pods:
    - name: client
steps:
  - apply: |
      apiVersion: projectcalico.org/v3
      kind: GlobalThreatFeed
      metadata: {name: big}
      spec:
        pull:
          period: 1h
          http: {url: https://feeds.example.com/ips}
        globalNetworkSet: {labels: {feed: big}}
      ---
      apiVersion: projectcalico.org/v3
      kind: GlobalNetworkPolicy
      metadata: {name: deny-big}
      spec:
        selector: all()
        types: [Egress]
        egress:
          - action: Deny
            destination: {selector: feed == 'big'}
          - action: Allow
  - probe: client -> late:80/tcp
    expect: allow
  - probe: client -> suspicious:80/tcp
    expect: deny
    alert: big
  - serve: {host: feeds, path: /ips, file: feeds/large.txt}
  - advance: 1h
  - probe: client -> late:80/tcp
    expect: deny
    by: deny-big
    alert: big
  - serve: {host: feeds, path: /ips, file: feeds/small.txt}
  - advance: 1h
  - probe: client -> late:80/tcp
    expect: allow
  - probe: client -> suspicious:80/tcp
    expect: deny
    alert: big
"#,
    )
    .expect("scenario");
    path
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_feed_is_pulled_enforced_and_updated_in_place() {
    if !kernel_ready("a_100k_feed_is_pulled_enforced_and_updated_in_place") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("policylab-large-feed-{}", std::process::id()));
    let path = write_scenario(&dir);
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(&mut sources, &path, &mut diags)
        .unwrap_or_else(|| panic!("loads:\n{}", diags.render(&sources)));
    let plan = policylab::run::plan(&sc, &sources);
    let model = Report::new(&plan, &plan.model_observations(), "model");
    assert!(
        model.text().contains("100000 entries (+99999 -1)"),
        "{}",
        &model.text()[..2000.min(model.text().len())]
    );
    let run = runner::run_plan(&plan, &RunnerOptions::default())
        .await
        .expect("kernel run");
    std::fs::remove_dir_all(&dir).ok();
    let kernel = Report::new(&plan, &run.observations(), "kernel");
    assert!(
        run.feed_disagreements.is_empty(),
        "{:?}",
        run.feed_disagreements
    );
    assert_eq!(
        run.pulls
            .iter()
            .map(|p| p.result.clone())
            .collect::<Vec<_>>(),
        vec![Ok(2), Ok(LARGE), Ok(2)]
    );
    for (i, (_, _, pp)) in plan.probes().enumerate() {
        let d = policylab::run::disagreements(&pp.prediction, &run.probes[i].observation);
        assert!(d.is_empty(), "probe {i}: {d:?}\n{}", run.probes[i].trace());
    }
    assert!(kernel.text() == model.text(), "the kernel report differs");
    // Step 1 loads the tables; the feed updates (steps 5 and 8) change elements only.
    let kinds: Vec<(usize, LoadKind)> = run.loads.iter().map(|l| (l.step, l.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (1, LoadKind::Table),
            (5, LoadKind::SetElements),
            (8, LoadKind::SetElements)
        ],
        "{:?}",
        run.loads
    );
    for l in &run.loads {
        eprintln!(
            "runner: step {} node {}: {:?} in {}",
            l.step,
            l.node,
            l.kind,
            ms(l.elapsed)
        );
    }

    // The same tables, loaded both ways into one namespace.
    let small = compile(&plan.steps[0].world);
    let large = compile(&plan.steps[4].world);
    let (node, small_t) = small.tables.iter().next().expect("a node");
    let large_t = &large.tables[node];
    let grow = large_t.set_update_script(small_t).expect("elements only");
    let shrink = small_t.set_update_script(large_t).expect("elements only");
    let lab = Lab::new("largefeed").expect("lab");
    let ns = lab.create("n").expect("namespace");
    let time = |script: &str| {
        let t = Instant::now();
        nft::apply(&ns, script).expect("nft");
        t.elapsed()
    };
    let full_small = time(&small_t.to_string());
    let full_large = time(&large_t.to_string());
    let listed = nft::list_table(&ns, policylab::compile::TABLE).expect("list");
    assert!(listed.contains("100.65.134.158"), "the large set is loaded");
    let in_place_shrink = time(&shrink);
    let listed = nft::list_table(&ns, policylab::compile::TABLE).expect("list");
    assert!(
        !listed.contains("100.65.134.158"),
        "the set shrank in place"
    );
    assert_eq!(
        listed,
        {
            let other = lab.create("m").expect("namespace");
            nft::apply(&other, &small_t.to_string()).expect("nft");
            nft::list_table(&other, policylab::compile::TABLE).expect("list")
        },
        "in place gives the same table as a reload"
    );
    let in_place_grow = time(&grow);
    let full_reload_again = time(&large_t.to_string());
    // A day's churn on the large list: 500 entries leave, 500 arrive.
    let mut churned = large_t.clone();
    let big = churned
        .sets
        .iter_mut()
        .find(|s| s.elements().len() >= LARGE)
        .expect("the feed's set");
    let mut elements: Vec<Element> = big.elements()[500..].to_vec();
    for i in 0..500u32 {
        let a = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(100, 96, 0, 0)) + i);
        elements.push(Element::Addr(std::net::IpAddr::from(a)));
    }
    // A feed of single addresses is a hash set (the compiler keeps interval sets for
    // real prefixes), so the churn is the difference: 500 deleted, 500 added.
    assert!(!big.interval, "a feed of addresses is a hash set");
    let mut replaced = Set::new(big.name.clone(), big.set_type, big.interval, elements);
    replaced.comment = big.comment.clone();
    *big = replaced;
    let churn = churned.set_update_script(large_t).expect("elements only");
    assert!(churn.starts_with("delete element"), "{}", &churn[..100]);
    let in_place_churn = time(&churn);
    let listed = nft::list_table(&ns, policylab::compile::TABLE).expect("list");
    assert!(listed.contains("100.96.1.243") && !listed.contains("100.64.0.1,"));
    let full_churn = time(&churned.to_string());
    eprintln!(
        "100k-entry feed, node {node}: whole table 2 -> 100k entries {}, reload of the 100k table {}; in place: grow 2 -> 100k {}, shrink 100k -> 2 {}; whole table back to 2 entries {}; 500 out + 500 in on 100k: in place {}, whole table {}",
        ms(full_large),
        ms(full_reload_again),
        ms(in_place_grow),
        ms(in_place_shrink),
        ms(full_small),
        ms(in_place_churn),
        ms(full_churn),
    );
    lab.teardown().expect("teardown");
}
