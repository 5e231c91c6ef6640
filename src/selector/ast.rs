//! The selector syntax tree, its evaluation (docs/semantics.md#selector-evaluation) and the structural rewrites Calico
//! applies to selectors (label prefixing, `all()`/`global()` replacement).
//!
//! The tree has exactly the shape libcalico-go's parser builds, because the canonical
//! text (and so the UID) is printed from it:
//! - a chain `x && y && z` is one n-ary [`Expr::And`]; parentheses make no node, so
//!   `(x && y) && z` is `And[And[x, y], z]` and prints differently;
//! - a run of `!` collapses by parity, but `!(!x)` is `Not(Not(x))` (the parentheses
//!   stop the collapse), printed `!!x`.

use std::collections::BTreeSet;

use super::Labels;

/// One node of a selector expression.
///
/// The parser only builds [`Expr::And`] and [`Expr::Or`] with two or more operands.
/// Hand-built nodes with fewer are accepted everywhere: an empty `And` is true, an
/// empty `Or` is false, and a single operand stands for itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Expr {
    /// `all()`: always true.
    All,
    /// `global()`: true as a plain expression; its meaning comes from the
    /// namespaceSelector rewrite (docs/semantics.md#rule-selectors), see [`Selector::replace_global`](super::Selector::replace_global).
    Global,
    /// `has(label)`: the label is present (with any value, even `""`).
    Has(String),
    /// `label == "value"`: false when the label is missing.
    Eq(String, String),
    /// `label != "value"`: true when the label is missing.
    Ne(String, String),
    /// `label in {…}`: false when the label is missing.
    In(String, BTreeSet<String>),
    /// `label not in {…}`: true when the label is missing.
    NotIn(String, BTreeSet<String>),
    /// `label contains "value"`: substring; false when the label is missing.
    Contains(String, String),
    /// `label starts with "value"`: false when the label is missing.
    StartsWith(String, String),
    /// `label ends with "value"`: false when the label is missing.
    EndsWith(String, String),
    /// `!e`.
    Not(Box<Expr>),
    /// `(a && b && …)`, short-circuit, left to right.
    And(Vec<Expr>),
    /// `(a || b || …)`, short-circuit, left to right.
    Or(Vec<Expr>),
}

impl Expr {
    /// `(a && b)`, as the parser builds it from `(a) && (b)`.
    pub fn and(a: Expr, b: Expr) -> Expr {
        Expr::And(vec![a, b])
    }

    /// `(a || b)`, as the parser builds it from `(a) || (b)`.
    pub fn or(a: Expr, b: Expr) -> Expr {
        Expr::Or(vec![a, b])
    }

    /// Evaluates the expression against `labels` (docs/semantics.md#selector-evaluation). Allocation-free.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Expr::All | Expr::Global => true,
            Expr::Has(k) => labels.get(k).is_some(),
            Expr::Eq(k, v) => labels.get(k) == Some(v.as_str()),
            Expr::Ne(k, v) => labels.get(k) != Some(v.as_str()),
            Expr::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
            Expr::NotIn(k, set) => !labels.get(k).is_some_and(|v| set.contains(v)),
            Expr::Contains(k, v) => labels.get(k).is_some_and(|l| l.contains(v.as_str())),
            Expr::StartsWith(k, v) => labels.get(k).is_some_and(|l| l.starts_with(v.as_str())),
            Expr::EndsWith(k, v) => labels.get(k).is_some_and(|l| l.ends_with(v.as_str())),
            Expr::Not(e) => !e.matches(labels),
            Expr::And(es) => es.iter().all(|e| e.matches(labels)),
            Expr::Or(es) => es.iter().any(|e| e.matches(labels)),
        }
    }

    /// True if `global()` appears anywhere in the expression.
    pub fn uses_global(&self) -> bool {
        match self {
            Expr::Global => true,
            Expr::Not(e) => e.uses_global(),
            Expr::And(es) | Expr::Or(es) => es.iter().any(Expr::uses_global),
            _ => false,
        }
    }

    /// The label this node tests, for the leaf nodes that test one.
    pub fn label(&self) -> Option<&str> {
        match self {
            Expr::Has(k)
            | Expr::Eq(k, _)
            | Expr::Ne(k, _)
            | Expr::In(k, _)
            | Expr::NotIn(k, _)
            | Expr::Contains(k, _)
            | Expr::StartsWith(k, _)
            | Expr::EndsWith(k, _) => Some(k),
            _ => None,
        }
    }

    fn label_mut(&mut self) -> Option<&mut String> {
        match self {
            Expr::Has(k)
            | Expr::Eq(k, _)
            | Expr::Ne(k, _)
            | Expr::In(k, _)
            | Expr::NotIn(k, _)
            | Expr::Contains(k, _)
            | Expr::StartsWith(k, _)
            | Expr::EndsWith(k, _) => Some(k),
            _ => None,
        }
    }

    /// Calls `f` on every node, parents before children.
    pub fn visit_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        f(self);
        match self {
            Expr::Not(e) => e.visit_mut(f),
            Expr::And(es) | Expr::Or(es) => es.iter_mut().for_each(|e| e.visit_mut(f)),
            _ => {}
        }
    }

    /// Adds `prefix` in front of every label name (libcalico-go's `PrefixVisitor`).
    pub(crate) fn prefix_labels(&mut self, prefix: &str) {
        self.visit_mut(&mut |e| {
            if let Some(k) = e.label_mut() {
                k.insert_str(0, prefix);
            }
        });
    }

    /// Replaces every node equal to `target` (a leaf: `All` or `Global`) by `with`.
    /// Does not descend into the replacement.
    pub(crate) fn replace_leaf(&mut self, target: &Expr, with: &Expr) {
        if self == target {
            *self = with.clone();
            return;
        }
        match self {
            Expr::Not(e) => e.replace_leaf(target, with),
            Expr::And(es) | Expr::Or(es) => {
                es.iter_mut().for_each(|e| e.replace_leaf(target, with))
            }
            _ => {}
        }
    }

    /// The tree that printing this one canonically and parsing the text back gives
    /// (for printable trees: valid labels, no value with both quote kinds):
    /// - a run of directly nested `Not`s collapses by parity (`Not(Not(x))` prints
    ///   `!!x`, which parses to `x`);
    /// - an `And`/`Or` with one operand becomes that operand (it prints as `(x)`, and
    ///   those parentheses do stop a `!` run above it);
    /// - an empty `And` becomes `All`, an empty `Or` becomes `Not(All)`.
    ///
    /// The result evaluates exactly like `self`. This is what Calico's text-level
    /// rewrites do to a selector: it prints the rewritten tree and parses the text
    /// again.
    pub fn text_normalized(self) -> Expr {
        match self {
            e @ Expr::Not(_) => {
                // A run of k `!` in front of a node that does not print starting with
                // `!` collapses to k mod 2. An empty `Or` prints as `!all()`, so it adds
                // one to the run; every other node either prints without a leading `!`
                // or is wrapped in parentheses, which stop the run.
                let mut negations = 0usize;
                let mut e = e;
                while let Expr::Not(next) = e {
                    negations += 1;
                    e = *next;
                }
                let base = match e {
                    Expr::Or(es) if es.is_empty() => {
                        negations += 1;
                        Expr::All
                    }
                    other => other.text_normalized(),
                };
                if negations % 2 == 1 {
                    !base
                } else {
                    base
                }
            }
            Expr::And(es) => normalize_nary(es, Expr::And, Expr::All),
            Expr::Or(es) => normalize_nary(es, Expr::Or, !Expr::All),
            leaf => leaf,
        }
    }
}

/// `!e` builds `Expr::Not(Box::new(e))`.
impl std::ops::Not for Expr {
    type Output = Expr;

    fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}

fn normalize_nary(es: Vec<Expr>, make: fn(Vec<Expr>) -> Expr, empty: Expr) -> Expr {
    let mut es: Vec<Expr> = es.into_iter().map(Expr::text_normalized).collect();
    match es.len() {
        0 => empty,
        1 => es.pop().expect("one operand"),
        _ => make(es),
    }
}
