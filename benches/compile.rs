//! Compile time of the nft policy compiler: 1,000 policies over 200 pods on 2 nodes
//! (and 100 policies for scale). The world is resolved once, outside the timing.
//! Loading the result into the kernel is measured by the harness's
//! `benches/compile_load.rs`.

#[path = "support/synthetic.rs"]
mod synthetic;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use policylab::compile::compile;

fn bench(c: &mut Criterion) {
    for policies in [100, 1000] {
        let w = synthetic::world(200, policies);
        let compiled = compile(&w);
        let rules: usize = compiled
            .tables
            .values()
            .flat_map(|t| t.chains.iter())
            .map(|ch| ch.rules.len())
            .sum();
        let chains: usize = compiled.tables.values().map(|t| t.chains.len()).sum();
        let bytes: usize = compiled.tables.values().map(|t| t.to_string().len()).sum();
        eprintln!(
            "{policies} policies, 200 pods: {} tables, {chains} chains, {rules} rules, {bytes} bytes of nft script, {} legend entries",
            compiled.tables.len(),
            compiled.legend.len()
        );
        let mut g = c.benchmark_group(format!("compile/{policies}-policies-200-pods"));
        g.sample_size(20);
        g.bench_function("compile", |b| b.iter(|| black_box(compile(black_box(&w)))));
        g.bench_function("compile + render text", |b| {
            b.iter(|| {
                let c = compile(black_box(&w));
                black_box(
                    c.tables
                        .values()
                        .map(|t| t.to_string().len())
                        .sum::<usize>(),
                )
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
