//! The documentation is tested: every `docs/<page>.md#<anchor>` and decision name
//! cited anywhere in the repository exists, and nothing cites documents a clone
//! does not have.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
    let mut todo: Vec<PathBuf> = ["src", "harness", "tests", "docs", "scenarios", "fixtures"]
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
            } else if p
                .extension()
                .is_some_and(|x| x == "rs" || x == "md" || x == "yaml" || x == "toml")
            {
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
        r"\.\./shared|shared/docs|calico-semantics|kernel-notes|style-by-example|§",
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
