//! Canonical printing, byte for byte as libcalico-go's `selectorRoot.String()`.
//!
//! - `label == "value"`; the value is single-quoted only when it contains `"`.
//! - `label in {"a", "b"}` with the values sorted and de-duplicated (a `BTreeSet`).
//! - `(x && y && z)` and `(x || y)`: every n-ary node is parenthesised, nothing else.
//! - `!` is attached without a space: `!has(a)`, `!(a == "b" || c == "d")`.
//!
//! Nodes the parser never builds print as text that parses to an equivalent
//! expression: an `And`/`Or` with one operand as `(x)`, an empty `And` as `all()`, an
//! empty `Or` as `!all()`. A value holding both `'` and `"` cannot be written in the
//! selector language (there are no escapes); it prints single-quoted, as upstream
//! does, and that text does not parse.

use std::fmt::{self, Write};

use super::ast::Expr;

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self)
    }
}

pub(crate) fn write_expr(w: &mut dyn Write, e: &Expr) -> fmt::Result {
    match e {
        Expr::All => w.write_str("all()"),
        Expr::Global => w.write_str("global()"),
        Expr::Has(k) => write!(w, "has({k})"),
        Expr::Eq(k, v) => write_op(w, k, " == ", v),
        Expr::Ne(k, v) => write_op(w, k, " != ", v),
        Expr::Contains(k, v) => write_op(w, k, " contains ", v),
        Expr::StartsWith(k, v) => write_op(w, k, " starts with ", v),
        Expr::EndsWith(k, v) => write_op(w, k, " ends with ", v),
        Expr::In(k, set) => write_set(w, k, " in {", set.iter()),
        Expr::NotIn(k, set) => write_set(w, k, " not in {", set.iter()),
        Expr::Not(inner) => {
            w.write_char('!')?;
            write_expr(w, inner)
        }
        Expr::And(es) if es.is_empty() => w.write_str("all()"),
        Expr::Or(es) if es.is_empty() => w.write_str("!all()"),
        Expr::And(es) => write_nary(w, es, " && "),
        Expr::Or(es) => write_nary(w, es, " || "),
    }
}

fn write_nary(w: &mut dyn Write, es: &[Expr], op: &str) -> fmt::Result {
    w.write_char('(')?;
    for (i, e) in es.iter().enumerate() {
        if i > 0 {
            w.write_str(op)?;
        }
        write_expr(w, e)?;
    }
    w.write_char(')')
}

fn write_op(w: &mut dyn Write, label: &str, op: &str, value: &str) -> fmt::Result {
    w.write_str(label)?;
    w.write_str(op)?;
    write_quoted(w, value)
}

fn write_set<'a>(
    w: &mut dyn Write,
    label: &str,
    op: &str,
    values: impl Iterator<Item = &'a String>,
) -> fmt::Result {
    w.write_str(label)?;
    w.write_str(op)?;
    for (i, v) in values.enumerate() {
        if i > 0 {
            w.write_str(", ")?;
        }
        write_quoted(w, v)?;
    }
    w.write_char('}')
}

fn write_quoted(w: &mut dyn Write, value: &str) -> fmt::Result {
    let quote = if value.contains('"') { '\'' } else { '"' };
    w.write_char(quote)?;
    w.write_str(value)?;
    w.write_char(quote)
}
