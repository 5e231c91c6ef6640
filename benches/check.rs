//! What `policylab check` costs: loading and checking every scenario of `scenarios/`
//! (with the manifests they apply) and every manifest of the `tests/bad_input` corpus,
//! against a baseline in the same run: parsing the same bytes (the scenario files and
//! the corpus) with the spanned YAML parser alone. Files are read once, before timing;
//! the scenario loads read their manifests as `check` does.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use policylab::diag::{Diagnostics, Sources};
use policylab::yaml::{parse_stream, Origin};

fn yaml_files(dir: &str) -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            (p, text)
        })
        .collect();
    out.sort();
    out
}

fn parse_only(files: &[(PathBuf, String)]) -> usize {
    let mut sources = Sources::new();
    let mut n = 0;
    for (p, text) in files {
        let id = sources.add(p.display().to_string(), text.as_str());
        let (docs, errs) = parse_stream(text, id, Origin::default());
        n += docs.len() + errs.len();
    }
    n
}

fn bench(c: &mut Criterion) {
    let scenarios: Vec<(PathBuf, String)> = yaml_files("scenarios")
        .into_iter()
        .filter(|(_, t)| policylab::scenario::is_scenario_text(t))
        .collect();
    let corpus = yaml_files("tests/bad_input");
    assert!(!scenarios.is_empty() && !corpus.is_empty());
    let bytes = |fs: &[(PathBuf, String)]| fs.iter().map(|(_, t)| t.len() as u64).sum::<u64>();

    let mut g = c.benchmark_group("check");
    g.throughput(Throughput::Bytes(bytes(&scenarios)));
    g.bench_function("scenarios/ parse only (baseline)", |b| {
        b.iter(|| black_box(parse_only(&scenarios)))
    });
    g.bench_function("scenarios/ load and check", |b| {
        b.iter(|| {
            let mut sources = Sources::new();
            let mut diags = Diagnostics::new();
            let mut ok = 0;
            for (p, text) in &scenarios {
                let id = sources.add(p.clone(), text.as_str());
                ok += usize::from(
                    policylab::scenario::load_file(&mut sources, id, &mut diags).is_some(),
                );
            }
            assert_eq!(ok, scenarios.len(), "{}", diags.render(&sources));
            black_box(ok)
        })
    });
    g.throughput(Throughput::Bytes(bytes(&corpus)));
    g.bench_function("bad_input parse only (baseline)", |b| {
        b.iter(|| black_box(parse_only(&corpus)))
    });
    g.bench_function("bad_input load and check", |b| {
        b.iter(|| {
            let mut sources = Sources::new();
            let mut diags = Diagnostics::new();
            for (p, text) in &corpus {
                let id = sources.add(p.display().to_string(), text.as_str());
                black_box(policylab::manifest::check_stream(text, id, &mut diags));
            }
            assert!(diags.has_errors());
            black_box(diags.error_count())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
