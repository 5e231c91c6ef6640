//! `${NAME}` / `$NAME` placeholders.
//!
//! A placeholder is `${...}` or `$` followed by `[A-Za-z_][A-Za-z0-9_]*`; `$$` is a
//! literal `$`, and a `$` followed by anything else stays as written. Inside braces,
//! a name with a `.` is an address reference (`${node-1.ip}`, `${default/red.ip}`,
//! `${laptop.ip}`, `${svc/default/web.clusterIP}`, `${svc/default/web.loadBalancerIP}`);
//! anything else is a `vars:` name. Substitution happens in the scalars of the
//! spanned tree, so positions stay those of the file; a plain scalar is typed again
//! from its new text (`port: $PORT` becomes an integer).

use crate::diag::{Diagnostics, Span};
use crate::yaml::{Node, Style};

/// Looks a placeholder up: `Ok(value)` or `Err(message)`.
pub trait Lookup {
    fn lookup(&self, name: &str) -> Result<String, String>;
}

/// Substitutes placeholders in `text`. Errors are `(char offset, message)`.
pub fn substitute(text: &str, lookup: &dyn Lookup) -> Result<String, Vec<(usize, String)>> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut errs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let Some(end) = chars[i + 2..].iter().position(|&c| c == '}') else {
                    errs.push((i, "unclosed `${`: expected `}`".to_string()));
                    out.extend(&chars[i..]);
                    break;
                };
                let name: String = chars[i + 2..i + 2 + end].iter().collect();
                match lookup.lookup(name.trim()) {
                    Ok(v) => out.push_str(&v),
                    Err(m) => errs.push((i, m)),
                }
                i += end + 3;
            }
            Some(&n) if n.is_ascii_alphabetic() || n == '_' => {
                let len = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                let name: String = chars[i + 1..i + 1 + len].iter().collect();
                match lookup.lookup(&name) {
                    Ok(v) => out.push_str(&v),
                    Err(m) => errs.push((i, m)),
                }
                i += len + 1;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// The position of char `offset` of a scalar's value: exact for single-line plain
/// and quoted scalars without escapes, the scalar's start otherwise.
pub fn offset_span(span: Span, style: Style, text: &str, offset: usize) -> Span {
    if text.contains('\n') || style.is_block() {
        return span;
    }
    let quote = match style {
        Style::Plain => 0,
        Style::SingleQuoted => {
            if text.contains('\'') {
                return span;
            }
            1
        }
        _ => {
            if text.contains('\\') || text.contains('"') {
                return span;
            }
            1
        }
    };
    Span::new(span.file, span.line, span.col + quote + offset as u32)
}

/// Substitutes in every scalar of `node` (values only, not keys).
pub fn substitute_node(node: &mut Node, lookup: &dyn Lookup, diags: &mut Diagnostics) {
    node.for_each_scalar_mut(&mut |span, scalar| match substitute(&scalar.text, lookup) {
        Ok(t) => scalar.text = t,
        Err(errs) => {
            for (off, m) in errs {
                diags.error(offset_span(span, scalar.style, &scalar.text, off), m);
            }
        }
    });
}
