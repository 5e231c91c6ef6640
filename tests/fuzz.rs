//! Bounded fuzzing of the input side, on stable (CI): the bodies of the cargo-fuzz
//! targets (`policylab::fuzz`: scenario, manifest, selector, feed) on arbitrary
//! bytes and on mutated real inputs (scenarios, fixtures, the bad-input corpora).
//! The property is "never panics" (and for selectors, the canonical form parses
//! back to itself); every failure must come back as diagnostics. Cases per CI
//! run: see `CASES` (`POLICYLAB_FUZZ_CASES` scales them).

use policylab::diag::{Diagnostics, Sources};
use policylab::manifest;
use policylab::yaml::{parse_stream, Origin};
use proptest::prelude::*;

/// Every fixture manifest, as seeds for mutation.
fn seeds() -> Vec<String> {
    files_under(&["fixtures"])
}

/// Cases of each property per run (CI): `POLICYLAB_FUZZ_CASES`, default 600.
fn cases() -> u32 {
    std::env::var("POLICYLAB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600)
}

/// Every scenario of the repository (shipped, tests, bad ones), as seeds.
fn scenario_seeds() -> Vec<String> {
    let mut s = files_under(&[
        "scenarios",
        "tests/scenarios",
        "tests/bad_scenarios",
        "tests/run_scenarios",
    ]);
    s.retain(|t| t.contains("steps:"));
    s
}

/// Every `*.yaml` file under `dirs` (relative to the repository), sorted.
fn files_under(dirs: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs: Vec<std::path::PathBuf> = dirs
        .iter()
        .map(|d| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(d))
        .collect();
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("fixtures directory is readable") {
            let p = e.expect("directory entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(std::fs::read_to_string(&p).expect("fixture is UTF-8"));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 5, "expected seed files, found {}", out.len());
    out
}

/// Selectors written in the fixtures and scenarios, as seeds.
fn selector_seeds() -> Vec<String> {
    let mut out: Vec<String> = files_under(&["fixtures", "scenarios", "tests/bad_input"])
        .iter()
        .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| {
            let (_, v) = l.split_once("elector:")?;
            Some(v.trim().trim_matches(['\'', '"']).to_string())
        })
        .filter(|v| !v.is_empty())
        .collect();
    out.sort();
    out.dedup();
    assert!(out.len() >= 10, "{out:?}");
    out
}

fn load(text: &str) -> Diagnostics {
    let mut sources = Sources::new();
    let f = sources.add("fuzz.yaml", text);
    let mut diags = Diagnostics::new();
    let (docs, syntax) = parse_stream(text, f, Origin::default());
    diags.extend(syntax);
    let _ = manifest::load_documents(&docs, &mut diags);
    // Rendering must not panic either (positions may point anywhere).
    let _ = diags.render(&sources);
    diags
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, String),
    Delete(usize, usize),
    Replace(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let piece = prop_oneof![
        Just(":".to_string()),
        Just("- ".to_string()),
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("{".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("---\n".to_string()),
        Just("!!int ".to_string()),
        Just("65536".to_string()),
        Just("0.0.0.0/0".to_string()),
        Just("all() &&".to_string()),
        Just("null".to_string()),
        "[ -~]{0,8}",
    ];
    prop_oneof![
        (any::<usize>(), piece.clone()).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<usize>(), 1usize..12).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), piece).prop_map(|(i, s)| Edit::Replace(i, s)),
    ]
}

fn apply(mut text: String, edits: &[Edit]) -> String {
    for e in edits {
        let len = text.len().max(1);
        let at = |i: usize, t: &String| {
            let mut i = i % len;
            while i > 0 && !t.is_char_boundary(i) {
                i -= 1;
            }
            i.min(t.len())
        };
        match e {
            Edit::Insert(i, s) => {
                let i = at(*i, &text);
                text.insert_str(i, s);
            }
            Edit::Delete(i, n) => {
                let i = at(*i, &text);
                let mut j = (i + n).min(text.len());
                while !text.is_char_boundary(j) {
                    j -= 1;
                }
                text.replace_range(i..j, "");
            }
            Edit::Replace(i, s) => {
                let i = at(*i, &text);
                let mut j = (i + s.len()).min(text.len());
                while !text.is_char_boundary(j) {
                    j -= 1;
                }
                text.replace_range(i..j, s);
            }
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        load(&text);
    }

    #[test]
    fn arbitrary_bytes_as_lossy_utf8_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        load(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_manifests_never_panic(
        which in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let seeds = seeds();
        let text = apply(seeds[which.index(seeds.len())].clone(), &edits);
        load(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_scenarios_never_panic(
        which in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        static SEEDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let seeds = SEEDS.get_or_init(scenario_seeds);
        let text = apply(seeds[which.index(seeds.len())].clone(), &edits);
        policylab::fuzz::scenario(text.as_bytes());
    }

    #[test]
    fn arbitrary_scenario_text_never_panics(text in "(name: x\n|steps:\n|  - |probe: |a -> b|[ -~]{0,6}|\n){0,40}") {
        policylab::fuzz::scenario(text.as_bytes());
    }

    #[test]
    fn mutated_selectors_keep_their_canonical_form(
        which in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec(edit(), 0..4),
    ) {
        static SEEDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let seeds = SEEDS.get_or_init(selector_seeds);
        let text = apply(seeds[which.index(seeds.len())].clone(), &edits);
        policylab::fuzz::selector(text.as_bytes());
    }

    #[test]
    fn arbitrary_selectors_never_panic(text in "[a-z()!&|=' \"]{0,12}( in | contains | has\\(|global\\(\\)|all\\(\\)|\\{|\\})?[a-z()!&|=' \",{}]{0,12}") {
        policylab::fuzz::selector(text.as_bytes());
    }

    #[test]
    fn arbitrary_feed_bodies_never_panic(
        pick in any::<u8>(),
        body in "([0-9./:a-f,;#\"{}\\[\\] ]|ips|addr|ip|\n|\r){0,120}",
    ) {
        let mut data = vec![pick];
        data.extend_from_slice(body.as_bytes());
        policylab::fuzz::feed(&data);
    }

    /// Alias bombs and deep nesting of any shape end at once, with an error.
    #[test]
    fn alias_bombs_end_quickly(levels in 3usize..12, fan in 2usize..30, deep in 0usize..2000) {
        let mut t = format!("a1: &a1 [{}]\n", vec!["x"; fan].join(","));
        for n in 2..=levels {
            t.push_str(&format!("a{n}: &a{n} [{}]\n", vec![format!("*a{}", n - 1); fan].join(",")));
        }
        t.push_str(&format!("deep: {}x\n", "- ".repeat(deep)));
        let start = std::time::Instant::now();
        policylab::fuzz::manifest(t.as_bytes());
        policylab::fuzz::scenario(t.as_bytes());
        prop_assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}

#[test]
fn every_fixture_manifest_loads_cleanly_before_variables() {
    // Fixtures use $VARS; loading them raw must still give diagnostics, not panics,
    // and the ones without variables must load with none.
    for text in seeds() {
        let d = load(&text);
        if !text.contains('$') {
            assert!(!d.has_errors(), "{text}\n{d:?}");
        }
    }
}
