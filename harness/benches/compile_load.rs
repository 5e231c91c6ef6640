//! Compile + load: the nft policy compiler on 1,000 policies over 200 pods (2 nodes),
//! then `nft -f` of one node's table into a lab namespace (text), and the same
//! through `nft -j -f` (JSON). Needs root and nft; run with
//! `cargo bench -p policylab-harness --bench compile_load`. Product target: compile
//! + load under 0.5 s.

#[path = "../../benches/support/synthetic.rs"]
mod synthetic;

use std::time::{Duration, Instant};

use policylab::compile::compile;
use policylab_harness::netns::Lab;
use policylab_harness::nft;

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "min {:>7.1} ms  median {:>7.1} ms  max {:>7.1} ms",
        v[0].as_secs_f64() * 1e3,
        v[v.len() / 2].as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "compile_load: run it with `cargo bench -p policylab-harness --bench compile_load` (as root)"
        );
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || nft::nft_binary().is_err() {
        println!("compile_load skipped: needs root and the nft binary");
        return;
    }
    let world = synthetic::world(200, 1000);
    let lab = Lab::new("cbench").expect("lab");
    let ns = lab.create("n1").expect("namespace");
    let runs = 7;
    let (mut comp, mut text_load, mut json_load, mut total) = (vec![], vec![], vec![], vec![]);
    let mut rules = 0;
    for i in 0..runs {
        let t0 = Instant::now();
        let compiled = compile(&world);
        let table = &compiled.tables["node1"];
        let script = table.to_string();
        let t1 = Instant::now();
        // Each load replaces the previous run's table atomically.
        nft::apply(&ns, &script).expect("load text");
        let t2 = Instant::now();
        let json = table.to_nftables_json().to_string();
        let t3 = Instant::now();
        nft::apply_json(&ns, &json).expect("load json");
        let t4 = Instant::now();
        rules = table.chains.iter().map(|c| c.rules.len()).sum();
        if i > 0 {
            comp.push(t1 - t0);
            text_load.push(t2 - t1);
            json_load.push(t4 - t3);
            total.push(t2 - t0);
        }
    }
    println!("1,000 policies / 200 pods, node1 table: {rules} rules");
    println!("compile (both nodes) + render:  {}", stats(comp));
    println!("nft -f load (text):             {}", stats(text_load));
    println!("nft -j -f load (JSON):          {}", stats(json_load));
    println!("compile + text load:            {}", stats(total));
    lab.teardown().expect("teardown");
}
