//! One file per mistake: every manifest in `tests/bad_input/` holds one mistake a user
//! would plausibly make (one file holds three, in three documents, to show that a
//! single run lists them all), and its snapshot is exactly what policylab prints.
//!
//! Each file starts with two comment lines:
//! - `# mistake: ...` says what is wrong (it becomes the snapshot's description);
//! - `# expect: N error(s)[, M warning(s)]` is checked here, so a snapshot cannot
//!   silently lose or gain a diagnostic.
//!
//! The diagnostics are rendered with the file's path relative to the repository root,
//! as `policylab` prints them. Review every `.snap`: the caret must sit on the
//! offending character.

use std::path::Path;

use policylab::diag::{Diagnostics, Severity, Sources};
use policylab::manifest;
use policylab::yaml::{parse_stream, Origin};

/// `(errors, warnings)` from the `# expect:` line.
fn expectation(text: &str) -> Option<(usize, usize)> {
    let line = text.lines().find_map(|l| l.strip_prefix("# expect: "))?;
    let mut errors = 0;
    let mut warnings = 0;
    for part in line.split(',') {
        let mut words = part.split_whitespace();
        let n: usize = words.next()?.parse().ok()?;
        match words.next()? {
            "error" | "errors" => errors = n,
            "warning" | "warnings" => warnings = n,
            _ => return None,
        }
    }
    Some((errors, warnings))
}

#[test]
fn every_bad_manifest_and_its_message() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wrong_counts = Vec::new();
    insta::glob!("bad_input/*.yaml", |path| {
        let text = std::fs::read_to_string(path).expect("corpus files are UTF-8");
        let rel = path.strip_prefix(root).unwrap_or(path);
        let mut sources = Sources::new();
        let file = sources.add(rel, text.clone());
        let mut diags = Diagnostics::new();
        let (docs, syntax) = parse_stream(&text, file, Origin::default());
        diags.extend(syntax);
        manifest::load_documents_in(&docs, &sources, &mut diags);

        let (want_errors, want_warnings) = expectation(&text)
            .unwrap_or_else(|| panic!("{}: no `# expect: N errors` line", rel.display()));
        let rendered = diags.render(&sources);
        let warnings = diags
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        if (diags.error_count(), warnings) != (want_errors, want_warnings) {
            wrong_counts.push(format!(
                "{}: expected {want_errors} errors and {want_warnings} warnings, got:\n{rendered}",
                rel.display()
            ));
        }
        let mistake = text
            .lines()
            .find_map(|l| l.strip_prefix("# mistake: "))
            .unwrap_or_else(|| panic!("{}: no `# mistake:` line", rel.display()));
        insta::with_settings!({ description => mistake, omit_expression => true }, {
            insta::assert_snapshot!("diagnostics", rendered);
        });
    });
    assert!(wrong_counts.is_empty(), "{}", wrong_counts.join("\n"));
}

#[test]
fn the_corpus_is_big_enough() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let n = std::fs::read_dir(dir)
        .expect("tests/bad_input exists")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        })
        .count();
    assert!(n >= 60, "only {n} bad-input files");
}
