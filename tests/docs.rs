//! The documentation is tested: every YAML block of `README.md` and `docs/*.md`
//! runs, and every `docs/<page>.md#<anchor>` and decision name cited anywhere in
//! the repository exists.
//!
//! A block's fence info string says what it is:
//! - ```` ```yaml ````: a complete scenario (it has `steps:`) is loaded as
//!   `policylab check` loads it, run on the model, and every expectation in it must
//!   hold (it must have at least one); anything else is a manifest stream, checked
//!   as `policylab check FILE` checks one (no error, no warning).
//! - ```` ```yaml fragment ````: intentionally partial (`{ ... }` placeholders, a
//!   step list without its cluster): it must parse as YAML.
//! - ```` dir=PATH ```` (after `yaml`): relative paths in the block are resolved
//!   from PATH (relative to the repository root) instead of the page's directory.
//!
//! A block is loaded with the page's line numbers, so a problem is reported at
//! `docs/page.md:line:col`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use policylab::diag::{Diagnostics, Sources};
use policylab::report::Report;
use policylab::run::plan;
use policylab::scenario::Step;
use pulldown_cmark::{Event, Parser, Tag, TagEnd};

use super::doc_blocks::{blocks, kind, pages, register, Block, Kind};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Checks one block; `Err` says what is wrong. Returns a short description.
fn check_block(page: &Path, b: &Block) -> Result<Option<&'static str>, String> {
    let Some(k) = kind(&root(), page, &b.info)? else {
        return Ok(None);
    };
    // Padding keeps the page's line numbers in every message.
    let text = format!("{}{}", "\n".repeat(b.line - 1), b.text);
    let rel = page.strip_prefix(root()).unwrap_or(page);
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    match k {
        Kind::Fragment => {
            let f = sources.add(rel, text.clone());
            let (_, errs) =
                policylab::yaml::parse_stream(&text, f, policylab::yaml::Origin::default());
            diags.extend(errs);
            if diags.has_errors() {
                return Err(diags.render(&sources));
            }
            Ok(Some("fragment"))
        }
        Kind::Checked(dir) => {
            let f = register(&mut sources, &root(), page, &dir, b);
            if policylab::scenario::is_scenario_text(&text) {
                let Some(sc) = policylab::scenario::load_file(&mut sources, f, &mut diags) else {
                    return Err(diags.render(&sources));
                };
                if !diags.is_empty() {
                    return Err(diags.render(&sources));
                }
                let expectations = sc
                    .steps
                    .iter()
                    .filter(|s| match &s.value {
                        Step::Probe(p) => p.expect.is_some(),
                        Step::Matrix(m) => m.expect.is_some(),
                        _ => false,
                    })
                    .count();
                if expectations == 0 {
                    return Err("a complete scenario without any `expect:` proves nothing".into());
                }
                let p = plan(&sc, &sources);
                let r = Report::new(&p, &p.model_observations(), "model");
                if r.exit_code() != 0 {
                    return Err(format!(
                        "an expectation does not hold on the model:\n{}",
                        r.text()
                    ));
                }
                Ok(Some("scenario"))
            } else {
                let (docs, errs) =
                    policylab::yaml::parse_stream(&text, f, policylab::yaml::Origin::default());
                diags.extend(errs);
                let loaded = policylab::manifest::load_documents(&docs, &mut diags);
                if !diags.is_empty() {
                    return Err(diags.render(&sources));
                }
                if loaded.is_empty() {
                    return Err(
                        "no manifest in the block (mark partial YAML `yaml fragment`)".into(),
                    );
                }
                Ok(Some("manifests"))
            }
        }
    }
}

#[test]
fn every_yaml_block_in_the_docs_is_checked() {
    let mut problems = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for page in pages(&root()) {
        let md = std::fs::read_to_string(&page).expect("read page");
        let rel = page
            .strip_prefix(root())
            .unwrap_or(&page)
            .display()
            .to_string();
        for b in blocks(&md) {
            match check_block(&page, &b) {
                Ok(Some(k)) => *counts.entry(k).or_default() += 1,
                Ok(None) => {}
                Err(e) => problems.push(format!("{rel}:{}: {e}", b.line)),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // The pages hold complete recipes and manifests, not only fragments.
    assert!(
        counts.get("scenario").copied().unwrap_or(0) >= 20,
        "{counts:?}"
    );
    assert!(
        counts.get("manifests").copied().unwrap_or(0) >= 1,
        "{counts:?}"
    );
    eprintln!("YAML blocks checked: {counts:?}");
}

/// A block that breaks is reported at its page line, and an expectation that does
/// not hold fails the block: the checker can fail.
#[test]
fn a_wrong_block_fails_with_the_page_line() {
    let page = root().join("docs/cookbook.md");
    let bad = Block {
        info: "yaml".into(),
        text: "name: x\ncluster:\n  pods: [{name: a, ports: [{port: 80}]}, {name: b}]\nsteps:\n  - probe: b -> a:80\n    expect: deny\n".into(),
        line: 10,
    };
    let e = check_block(&page, &bad).expect_err("the probe is allowed");
    assert!(e.contains("does not hold"), "{e}");
    let typo = Block {
        info: "yaml".into(),
        text: "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: x}\nspec:\n  selector: all()\n  ingress: [{action: Alow}]\n".into(),
        line: 10,
    };
    let e = check_block(&page, &typo).expect_err("Alow is not an action");
    assert!(e.contains("docs/cookbook.md:15:"), "{e}");
    let info = Block {
        info: "yaml fragmnet".into(),
        text: "a: 1\n".into(),
        line: 1,
    };
    assert!(check_block(&page, &info).is_err());
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page: its headings' slugs.
fn anchors(page: &Path) -> BTreeSet<String> {
    let md = std::fs::read_to_string(page).unwrap_or_default();
    let mut out = BTreeSet::new();
    let mut heading: Option<String> = None;
    for ev in Parser::new(&md) {
        match ev {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => out.extend(heading.take().map(|h| slug(&h))),
            _ => {}
        }
    }
    out
}

/// Every text file of the repository that can cite the docs.
fn cited_in() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo: Vec<PathBuf> = [
        "src",
        "harness",
        "tests",
        "docs",
        "scenarios",
        "fixtures",
        "benches",
        ".ci",
    ]
    .iter()
    .map(|d| root().join(d))
    .collect();
    for f in ["README.md", "ARCHITECTURE.md", "CONTRIBUTING.md"] {
        out.push(root().join(f));
    }
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("snapshots") && !p.ends_with("target") {
                    todo.push(p);
                }
            } else if p.extension().is_none_or(|x| {
                ["rs", "md", "yaml", "toml", "sh", "txt"]
                    .iter()
                    .any(|e| x == *e)
            }) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_docs_citation_resolves() {
    let cite = regex::Regex::new(r"docs/([a-z-]+)\.md#([a-z0-9_-]+)").expect("regex");
    let link = regex::Regex::new(r"\]\(([a-z-]+\.md)?#([a-z0-9_-]+)\)").expect("regex");
    let decision = regex::Regex::new(r"decision\s+`([a-z0-9-]+)`").expect("regex");
    let decisions = anchors(&root().join("docs/decisions.md"));
    let mut bad = Vec::new();
    let mut n = 0;
    for f in cited_in() {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let rel = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
        let mut check = |page: &Path, anchor: &str, what: &str| {
            n += 1;
            if !anchors(page).contains(anchor) {
                bad.push(format!("{rel}: {what} has no such section"));
            }
        };
        for c in cite.captures_iter(&text) {
            let page = root().join(format!("docs/{}.md", &c[1]));
            check(&page, &c[2], &c[0]);
        }
        if rel.starts_with("docs/") {
            for c in link.captures_iter(&text) {
                let page = match c.get(1) {
                    Some(p) => root().join("docs").join(p.as_str()),
                    None => f.clone(),
                };
                check(&page, &c[2], &c[0]);
            }
        }
        for c in decision.captures_iter(&text) {
            n += 1;
            if !decisions.contains(&c[1]) {
                bad.push(format!(
                    "{rel}: decision `{}` is not in docs/decisions.md",
                    &c[1]
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(n > 100, "only {n} citations found: is the pattern right?");
}

/// Nothing in the repository sends a reader to documents a clone does not have.
#[test]
fn no_citation_of_documents_outside_the_repository() {
    let gone = regex::Regex::new(
        r"(^|[^A-Za-z_])shared/|calico-semantics|kernel-notes|style-by-example|§",
    )
    .expect("regex");
    let bad: Vec<String> = cited_in()
        .into_iter()
        .filter(|f| !f.ends_with("tests/docs.rs"))
        .flat_map(|f| {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let rel = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
            text.lines()
                .enumerate()
                .filter(|(_, l)| gone.is_match(l))
                .map(|(i, l)| format!("{rel}:{}: {}", i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Collects the property names and enum values of a schema node, recursively.
fn schema_words(n: &policylab::yaml::Node, out: &mut BTreeSet<String>) {
    if let Some(m) = n.as_map() {
        for (k, v) in m {
            match k.scalar_text() {
                Some("properties") => {
                    for (pk, pv) in v.as_map().unwrap_or_default() {
                        out.extend(pk.scalar_text().map(str::to_string));
                        schema_words(pv, out);
                    }
                }
                Some("enum") => {
                    for e in v.as_seq().unwrap_or_default() {
                        out.extend(e.scalar_text().map(str::to_string));
                    }
                }
                _ => schema_words(v, out),
            }
        }
    } else if let Some(s) = n.as_seq() {
        for x in s {
            schema_words(x, out);
        }
    }
}

/// Nothing the loader accepts is undocumented: every key and enum value of the
/// scenario schema (`src/schema/scenario.yaml`, which the loader runs first), every
/// step verb and every kind a reference may name appear in docs/scenario-format.md.
#[test]
fn every_scenario_key_is_documented() {
    let schema = std::fs::read_to_string(root().join("src/schema/scenario.yaml")).expect("schema");
    let mut sources = Sources::new();
    let f = sources.add("src/schema/scenario.yaml", schema.clone());
    let (doc, errs) = policylab::yaml::parse_single(&schema, f);
    assert!(errs.is_empty());
    let mut words = BTreeSet::new();
    schema_words(&doc.expect("schema document").root, &mut words);
    // The step verbs are the `<Verb>Step` schemas' keys: already in `words`.
    for (_, _, k) in policylab::manifest::Kind::ALL {
        words.insert(k.ref_name().to_string());
    }
    assert!(words.len() > 60, "{words:?}");
    let doc = std::fs::read_to_string(root().join("docs/scenario-format.md")).expect("page");
    let missing: Vec<&String> = words
        .iter()
        .filter(|w| {
            // Written as code (`key`, `Kind/...`) or as a key in an example.
            !doc.contains(&format!("`{w}`"))
                && !doc.contains(&format!("`{w}/"))
                && !doc.contains(&format!("{w}:"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "undocumented in docs/scenario-format.md: {missing:?}"
    );
}
