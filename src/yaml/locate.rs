//! This module deals with pointing *inside* a scalar: turning "the n-th character of
//! this value" (a selector parse error offset, say) into a file position.
//!
//! A node's span is where its value starts (the opening quote of a quoted scalar, the
//! first content character of a block scalar). The characters of the value do not map
//! one to one onto the source: quotes, escapes (`''`, `\"`), folded line breaks and
//! block indentation all shift them. With the source text the walk is exact for every
//! style; without it (a node built in code) single-line scalars are still exact and
//! multi-line ones are approximated from the value.
//!
//! Guarantee: never panics; an offset past the end points just after the value.

use super::node::{Node, Style, Value};
use crate::diag::Span;

/// The position of character `offset` (counted in `char`s) of `node`'s scalar value.
/// `text` is the text of the file the node's span points into, when known.
pub fn value_char_span(node: &Node, offset: usize, text: Option<&str>) -> Span {
    let Value::Scalar(s) = &node.value else {
        return node.span;
    };
    let from_text = text.and_then(|t| walk_source(t, node.span, s.style, &s.text, offset));
    from_text.unwrap_or_else(|| estimate(node.span, s.style, &s.text, offset))
}

/// Without the source: exact for one-line scalars.
fn estimate(span: Span, style: Style, value: &str, offset: usize) -> Span {
    let before: String = value.chars().take(offset).collect();
    if style == Style::Literal || style == Style::Folded {
        let newlines = before.matches('\n').count() as u32;
        if style == Style::Literal && newlines > 0 {
            let after_last = before.rsplit('\n').next().unwrap_or("").chars().count() as u32;
            return Span::new(
                span.file,
                span.line.saturating_add(newlines),
                span.col.saturating_add(after_last),
            );
        }
        return Span::new(
            span.file,
            span.line,
            span.col.saturating_add(before.chars().count() as u32),
        );
    }
    let extra = match style {
        Style::SingleQuoted => 1 + before.matches('\'').count(),
        Style::DoubleQuoted => 1 + before.chars().filter(|c| matches!(c, '"' | '\\')).count(),
        _ => 0,
    };
    Span::new(
        span.file,
        span.line,
        span.col
            .saturating_add((before.chars().count() + extra) as u32),
    )
}

/// A cursor over the source text that tracks line and column.
struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    col: u32,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// At `[ \t]*\r?\n`? (looks ahead without consuming)
    fn at_line_break(&self) -> bool {
        let mut it = self.chars.clone();
        loop {
            match it.next() {
                Some(' ' | '\t' | '\r') => continue,
                Some('\n') => return true,
                _ => return false,
            }
        }
    }

    /// Consumes a folded line break: trailing blanks, the break (and blank lines), and
    /// the next line's indentation.
    fn skip_line_break(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r' | '\n')) {
            self.bump();
        }
    }
}

fn walk_source(text: &str, span: Span, style: Style, value: &str, offset: usize) -> Option<Span> {
    // Find the start of the span's line, then its column.
    let line_start = if span.line <= 1 {
        0
    } else {
        let mut seen = 1u32;
        let mut idx = None;
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                seen += 1;
                if seen == span.line {
                    idx = Some(i + 1);
                    break;
                }
            }
        }
        idx?
    };
    let mut cur = Cursor {
        chars: text[line_start..].chars().peekable(),
        line: span.line,
        col: 1,
    };
    for _ in 1..span.col {
        match cur.peek() {
            Some('\n') | None => return None,
            _ => {
                cur.bump();
            }
        }
    }
    match style {
        Style::SingleQuoted | Style::DoubleQuoted => {
            let q = if style == Style::SingleQuoted {
                '\''
            } else {
                '"'
            };
            if cur.peek() != Some(q) {
                return None;
            }
            cur.bump();
        }
        _ => {}
    }
    let indent = span.col.saturating_sub(1);
    let mut vchars = value.chars();
    for _ in 0..offset {
        let Some(vc) = vchars.next() else {
            break;
        };
        match style {
            Style::Literal => {
                if vc == '\n' {
                    while !matches!(cur.peek(), Some('\n') | None) {
                        cur.bump();
                    }
                    cur.bump();
                    for _ in 0..indent {
                        if cur.peek() == Some(' ') {
                            cur.bump();
                        }
                    }
                } else {
                    cur.bump()?;
                }
            }
            Style::DoubleQuoted => {
                // Escaped line breaks (`\` at the end of a line) produce nothing.
                while cur.peek() == Some('\\') && {
                    let mut it = cur.chars.clone();
                    it.next();
                    matches!(it.next(), Some('\n' | '\r'))
                } {
                    cur.bump();
                    cur.skip_line_break();
                }
                if cur.at_line_break() {
                    cur.skip_line_break();
                } else if cur.peek() == Some('\\') {
                    cur.bump();
                    let n = match cur.bump() {
                        Some('x') => 2,
                        Some('u') => 4,
                        Some('U') => 8,
                        _ => 0,
                    };
                    for _ in 0..n {
                        cur.bump();
                    }
                } else {
                    cur.bump()?;
                }
            }
            Style::SingleQuoted => {
                if cur.at_line_break() {
                    cur.skip_line_break();
                } else if cur.peek() == Some('\'') {
                    cur.bump();
                    cur.bump();
                } else {
                    cur.bump()?;
                }
            }
            Style::Plain | Style::Folded => {
                if cur.at_line_break() {
                    cur.skip_line_break();
                } else {
                    cur.bump()?;
                }
            }
        }
    }
    Some(Span::new(span.file, cur.line, cur.col))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Sources;
    use crate::yaml::{parse_stream, Origin};
    use rstest::rstest;

    /// Parses `yaml` (one key `s`), returns the (line, col) of char `offset` of its value,
    /// with and without the source text.
    fn locate(yaml: &str, offset: usize) -> ((u32, u32), (u32, u32)) {
        let mut s = Sources::new();
        let f = s.add("t.yaml", yaml);
        let (docs, diags) = parse_stream(yaml, f, Origin::default());
        assert!(diags.is_empty(), "{diags:?}");
        let node = docs[0].root.get("s").expect("key s");
        let a = value_char_span(node, offset, Some(yaml));
        let b = value_char_span(node, offset, None);
        ((a.line, a.col), (b.line, b.col))
    }

    #[rstest]
    #[case("s: a b == x\n", 2, (1, 6), (1, 6))]
    #[case("s: 'a b == x'\n", 2, (1, 7), (1, 7))]
    #[case("s: \"a b == x\"\n", 2, (1, 7), (1, 7))]
    #[case("s: 'a == ''x'' %'\n", 9, (1, 16), (1, 16))]
    #[case("s: \"a == \\\"x\\\" %\"\n", 9, (1, 16), (1, 16))]
    #[case("s:\n  a == 'b'\n", 2, (2, 5), (2, 5))]
    #[case("s: a ==\n  'b' %\n", 9, (2, 7), (1, 13))]
    #[case("s: >\n  a ==\n  'b' %\n", 9, (3, 7), (2, 12))]
    #[case("s: |\n  ab\n  cd\n", 4, (3, 4), (3, 4))]
    #[case("s: 'ab'\n", 99, (1, 7), (1, 7))]
    #[case("s: \"a\\x41b %\"\n", 3, (1, 11), (1, 8))]
    fn positions(
        #[case] yaml: &str,
        #[case] offset: usize,
        #[case] with_text: (u32, u32),
        #[case] without: (u32, u32),
    ) {
        let (a, b) = locate(yaml, offset);
        assert_eq!(a, with_text, "with text");
        assert_eq!(b, without, "without text");
    }
}
