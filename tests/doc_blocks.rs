//! The YAML blocks of the documentation (README.md and `docs/*.md`), shared by the
//! pure test `tests/docs.rs` (every block checked, scenarios on the model) and the
//! kernel test `harness/tests/kernel_docs.rs` (scenarios on the kernel), which
//! includes this file with `#[path]`.
//!
//! A block's fence info string says what it is: ```` ```yaml ```` is a complete
//! scenario (it has `steps:`) or a manifest stream; ```` ```yaml fragment ```` is
//! intentionally partial and must only parse; ```` dir=PATH ```` (after `yaml`)
//! resolves the block's relative paths from PATH (relative to the repository root)
//! instead of the page's directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use policylab::diag::{FileId, Sources};
use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

/// The pages whose YAML blocks are checked: README.md and every `docs/*.md`.
pub fn pages(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    v.sort();
    v.insert(0, root.join("README.md"));
    v
}

/// One fenced code block: its info string, text and first line (1-based).
pub struct Block {
    pub info: String,
    pub text: String,
    pub line: usize,
}

pub fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut cur: Option<Block> = None;
    for (ev, range) in Parser::new(md).into_offset_iter() {
        match ev {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                // The block's text starts on the line after the fence.
                let line = md[..range.start].matches('\n').count() + 2;
                cur = Some(Block {
                    info: info.to_string(),
                    text: String::new(),
                    line,
                });
            }
            Event::Text(t) => {
                if let Some(b) = cur.as_mut() {
                    b.text.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => out.extend(cur.take()),
            _ => {}
        }
    }
    out
}

/// What a YAML block is, from its info string.
pub enum Kind {
    /// Complete scenario or manifests; relative paths from this directory.
    Checked(PathBuf),
    Fragment,
}

pub fn kind(root: &Path, page: &Path, info: &str) -> Result<Option<Kind>, String> {
    let mut words = info.split_whitespace();
    if words.next() != Some("yaml") {
        return Ok(None);
    }
    let mut dir = page.parent().expect("page dir").to_path_buf();
    let mut fragment = false;
    for w in words {
        match w {
            "fragment" => fragment = true,
            _ if w.starts_with("dir=") => dir = root.join(&w["dir=".len()..]),
            _ => return Err(format!("unknown word `{w}` in the fence info `{info}`")),
        }
    }
    Ok(Some(if fragment {
        Kind::Fragment
    } else {
        Kind::Checked(dir)
    }))
}

/// Registers a checked block in `sources` under the page's name (so messages say
/// `docs/page.md:line:col`, the page's line numbers kept by padding) in `dir`, for
/// its relative paths. Paths are shown relative to `root`, where tests run.
pub fn register(sources: &mut Sources, root: &Path, page: &Path, dir: &Path, b: &Block) -> FileId {
    let text = format!("{}{}", "\n".repeat(b.line - 1), b.text);
    let name = page.file_name().unwrap_or_default();
    let dir = dir.strip_prefix(root).unwrap_or(dir);
    sources.add(dir.join(name), text)
}

/// Every complete scenario block of the docs: (page, block, directory for its paths).
pub fn scenario_blocks(root: &Path) -> Vec<(PathBuf, Block, PathBuf)> {
    let mut out = Vec::new();
    for page in pages(root) {
        let md = std::fs::read_to_string(&page).unwrap_or_default();
        for b in blocks(&md) {
            if let Ok(Some(Kind::Checked(dir))) = kind(root, &page, &b.info) {
                if policylab::scenario::is_scenario_text(&b.text) {
                    out.push((page.clone(), b, dir));
                }
            }
        }
    }
    out
}
