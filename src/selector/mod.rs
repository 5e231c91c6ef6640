//! This module deals with Calico's label-selector language (docs/semantics.md#selectors): parsing,
//! canonical printing, the selector UID, evaluation against labels, and the
//! rewrites libcalico-go applies to namespace and service-account selectors.
//!
//! - [`parse`] reads a selector as libcalico-go's tokenizer and parser read it, and
//!   reports the first problem with a character offset ([`ParseError`]).
//! - [`Selector::canonical`] prints it byte for byte as Calico's `String()`, and
//!   [`Selector::unique_id`] hashes that text as Calico's `UniqueID()` does; both
//!   decide IP-set identity, so they must match upstream exactly.
//! - [`Selector::matches`] evaluates against any [`Labels`], including
//!   [`Layered`] labels (own labels first, then each parent profile in order, docs/semantics.md#profiles).
//!
//! Guarantees:
//! - `parse` never panics; it accepts exactly the selectors upstream accepts, except
//!   that parentheses may nest at most [`MAX_NESTING`] deep.
//! - For every tree `parse` returns, `parse(canonical)` gives the same tree back,
//!   and so the same canonical text and UID, unless the input negates a
//!   parenthesised negation (`!(!x)`, see below). In every case `parse(canonical)`
//!   is [`Expr::text_normalized`] of the tree, which means the same thing.
//! - `matches` does not allocate.
//!
//! Decisions the spec leaves open:
//! - A newline (or any character) *inside* a string literal is accepted, as upstream
//!   accepts it; outside string literals only space and tab are whitespace.
//! - `!(!x)` is kept as `Not(Not(x))`, as upstream keeps it (the parentheses stop
//!   the `!` run), so its canonical text is `!!x` and its UID is the UID of that
//!   text, as in Calico; parsing `!!x` gives `x`, whose UID differs. Canonical
//!   printing is therefore not idempotent on such input, exactly as upstream.

mod ast;
mod lexer;
mod parser;
mod print;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

use base64::Engine as _;
use sha2::{Digest, Sha224};

pub use ast::Expr;
pub use lexer::{is_valid_label, MAX_LABEL_LENGTH};
pub use parser::MAX_NESTING;

/// A parsed selector.
///
/// Equality is equality of trees, which is equality of canonical texts for trees
/// that `parse` builds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector {
    root: Expr,
}

/// Why a selector did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Offset, in characters (not bytes) from the start of the selector text, of the
    /// character where the problem is.
    pub offset: usize,
    /// What is wrong, without the position (`Display` prints only this).
    pub message: String,
}

impl ParseError {
    pub(crate) fn at_byte(input: &str, byte_offset: usize, message: impl Into<String>) -> Self {
        ParseError {
            offset: parser::char_offset(input, byte_offset),
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a selector. The empty and the whitespace-only selector are `all()`.
pub fn parse(input: &str) -> Result<Selector, ParseError> {
    parser::parse_expr(input).map(|root| Selector { root })
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Selector, ParseError> {
        parse(s)
    }
}

impl From<Expr> for Selector {
    fn from(root: Expr) -> Selector {
        Selector { root }
    }
}

impl Default for Selector {
    fn default() -> Selector {
        Selector::all()
    }
}

impl Selector {
    /// `all()`, which is also what the empty selector means.
    pub fn all() -> Selector {
        Selector { root: Expr::All }
    }

    pub fn expr(&self) -> &Expr {
        &self.root
    }

    pub fn into_expr(self) -> Expr {
        self.root
    }

    /// Evaluates the selector against `labels` (docs/semantics.md#selector-evaluation). Allocation-free.
    pub fn matches(&self, labels: &dyn Labels) -> bool {
        self.root.matches(labels)
    }

    /// [`matches`](Selector::matches) without dynamic dispatch, for hot loops over a
    /// concrete label type.
    pub fn matches_labels<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.root.matches(labels)
    }

    /// The canonical text, byte for byte as libcalico-go's `Selector.String()`:
    /// `a == "v"` (single quotes only when the value contains `"`), n-ary `&&`/`||`
    /// fully parenthesised, `!` attached, `in` sets sorted and de-duplicated.
    pub fn canonical(&self) -> String {
        self.root.to_string()
    }

    /// Calico's selector UID (libcalico-go `hash.MakeUniqueID("s", canonical)`):
    /// `"s:"` followed by the unpadded URL-safe base64 of the SHA-224 of
    /// `"s:" + canonical`. The hash input includes the prefix.
    pub fn unique_id(&self) -> String {
        let content = format!("s:{}", self.canonical());
        let digest = Sha224::digest(content.as_bytes());
        format!(
            "s:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        )
    }

    /// `(a) && (b)`: the tree that parsing Calico's `fmt.Sprintf("(%s) && (%s)", a, b)`
    /// gives, when `a` and `b` are the texts the two selectors were parsed from.
    /// Purely structural: `and(all(), x)` is `(all() && x)`, not `x`; deciding to
    /// leave out an empty selector is the caller's business, as it is upstream.
    pub fn and(a: Selector, b: Selector) -> Selector {
        Selector {
            root: Expr::and(a.root, b.root),
        }
    }

    /// True if `global()` appears anywhere.
    pub fn uses_global(&self) -> bool {
        self.root.uses_global()
    }

    /// True if the selector is exactly `all()` (also the empty selector and `(all())`).
    /// Structural: `all() && all()` is not `is_all`, though it matches everything.
    pub fn is_all(&self) -> bool {
        self.root == Expr::All
    }

    /// Adds `prefix` (e.g. `pcns.`, `pcsa.`) in front of every label name, as
    /// libcalico-go does to namespaceSelector and serviceAccountSelector
    /// (`PrefixVisitor`, then `String()`): `k == "v"` becomes `pcns.k == "v"`.
    ///
    /// Calico hands the result on as text, which is parsed again later; the tree
    /// returned here is the one that re-parse gives
    /// ([`Expr::text_normalized`]: e.g. `!(!x)` comes back as `x`).
    /// `prefix` should consist of label characters, or the text would not parse.
    pub fn prefix_labels(&self, prefix: &str) -> Selector {
        let mut root = self.root.clone();
        root.prefix_labels(prefix);
        Selector {
            root: root.text_normalized(),
        }
    }

    /// Replaces every `all()` node with `with`, e.g. `has(projectcalico.org/namespace)`
    /// for a namespaceSelector (docs/semantics.md#rule-selectors).
    ///
    /// Calico does this with `strings.Replace` on the canonical text and re-parses.
    /// Replacing nodes and then normalising as the re-parse would
    /// ([`Expr::text_normalized`]) gives the same tree, with one exception that
    /// cannot arise from real label values: the text `all()` inside a quoted string
    /// value is replaced upstream but not here.
    pub fn replace_all(&self, with: Expr) -> Selector {
        self.replace_leaf(&Expr::All, &with)
    }

    /// Replaces every `global()` node with `with`, e.g.
    /// `!has(projectcalico.org/namespace)` for a namespaceSelector (docs/semantics.md#rule-selectors). Same
    /// text-versus-tree remarks as [`replace_all`](Selector::replace_all); note that
    /// `!global()` becomes `has(…)`, because the text `!!has(…)` collapses.
    pub fn replace_global(&self, with: Expr) -> Selector {
        self.replace_leaf(&Expr::Global, &with)
    }

    fn replace_leaf(&self, target: &Expr, with: &Expr) -> Selector {
        let mut root = self.root.clone();
        root.replace_leaf(target, with);
        Selector {
            root: root.text_normalized(),
        }
    }
}

impl fmt::Display for Selector {
    /// The canonical text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.root, f)
    }
}

/// A set of labels a selector can be evaluated against.
pub trait Labels {
    /// The value of label `key`, if present (an empty value is present).
    fn get(&self, key: &str) -> Option<&str>;
}

impl<T: Labels + ?Sized> Labels for &T {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for indexmap::IndexMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        indexmap::IndexMap::get(self, key).map(String::as_str)
    }
}

/// No labels at all.
impl Labels for () {
    fn get(&self, _key: &str) -> Option<&str> {
        None
    }
}

/// An endpoint's labels with inherited profile labels as a fallback (docs/semantics.md#profiles): `own`
/// first, then each of `inherited` in order; the first that has the key wins.
#[derive(Clone, Copy)]
pub struct Layered<'a> {
    pub own: &'a dyn Labels,
    pub inherited: &'a [&'a dyn Labels],
}

impl Labels for Layered<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.own.get(key) {
            Some(v) => Some(v),
            None => self.inherited.iter().find_map(|l| l.get(key)),
        }
    }
}

impl fmt::Debug for Layered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layered")
            .field("inherited", &self.inherited.len())
            .finish_non_exhaustive()
    }
}
