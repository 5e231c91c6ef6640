//! Bounded fuzzing of the input side: arbitrary bytes and mutated real manifests go
//! through the YAML reader, the schema check and the manifest loader. The property
//! is "never panics"; every failure must come back as diagnostics.

use policylab::diag::{Diagnostics, Sources};
use policylab::manifest;
use policylab::yaml::{parse_stream, Origin};
use proptest::prelude::*;

/// Every fixture manifest, as seeds for mutation.
fn seeds() -> Vec<String> {
    let mut out = Vec::new();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let mut dirs = vec![std::path::PathBuf::from(root)];
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
    assert!(
        out.len() >= 20,
        "expected the seed fixtures, found {}",
        out.len()
    );
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
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

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
