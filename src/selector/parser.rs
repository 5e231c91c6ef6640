//! The selector parser (docs/semantics.md#selector-syntax), following libcalico-go's `parser.go`: a recursive
//! descent over the tokens of [`lexer`](super::lexer), one token of lookahead.
//!
//! ```text
//! selector  := ε | or_expr
//! or_expr   := and_expr { "||" and_expr }
//! and_expr  := unary { "&&" unary }
//! unary     := { "!" } primary
//! primary   := has(label) | all() | global() | "(" or_expr ")"
//!            | label ("==" | "!=" | "contains" | "starts with" | "ends with") string
//!            | label ("in" | "not in") "{" [ string { "," string } [","] ] "}"
//! ```
//!
//! The tree is built exactly as upstream builds it (see [`ast`](super::ast)), so that
//! the canonical text and the UID match Calico's.

use std::collections::BTreeSet;

use super::ast::Expr;
use super::lexer::{Lexer, Tok, Token};
use super::ParseError;

/// How deeply parentheses may nest. Upstream has no limit (Go stacks grow); this one
/// keeps hostile input from overflowing the stack, far above anything written by hand.
pub const MAX_NESTING: usize = 200;

pub(crate) fn parse_expr(input: &str) -> Result<Expr, ParseError> {
    let mut lexer = Lexer::new(input);
    let cur = lexer.next_token()?;
    let mut p = Parser {
        input,
        lexer,
        cur,
        depth: 0,
    };
    if p.cur.tok == Tok::Eof {
        return Ok(Expr::All);
    }
    let expr = p.or_expr()?;
    if p.cur.tok != Tok::Eof {
        return Err(p.err_here(format!(
            "unexpected content at end of selector: {}",
            p.cur.tok.describe()
        )));
    }
    Ok(expr)
}

struct Parser<'a> {
    input: &'a str,
    lexer: Lexer<'a>,
    cur: Token<'a>,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn advance(&mut self) -> Result<Token<'a>, ParseError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.cur, next))
    }

    fn err_at(&self, token: Token<'_>, message: impl Into<String>) -> ParseError {
        ParseError::at_byte(self.input, token.start, message)
    }

    fn err_here(&self, message: impl Into<String>) -> ParseError {
        self.err_at(self.cur, message)
    }

    fn or_expr(&mut self) -> Result<Expr, ParseError> {
        let mut operands = vec![self.and_expr()?];
        while self.cur.tok == Tok::Or {
            self.advance()?;
            operands.push(self.and_expr()?);
        }
        Ok(collapse(operands, Expr::Or))
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let mut operands = vec![self.unary()?];
        while self.cur.tok == Tok::And {
            self.advance()?;
            operands.push(self.unary()?);
        }
        Ok(collapse(operands, Expr::And))
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let mut negated = false;
        while self.cur.tok == Tok::Not {
            negated = !negated;
            self.advance()?;
        }
        let e = self.primary()?;
        Ok(if negated { !e } else { e })
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let first = self.advance()?;
        match first.tok {
            Tok::Has(label) => Ok(Expr::Has(label.to_string())),
            Tok::All => Ok(Expr::All),
            Tok::Global => Ok(Expr::Global),
            Tok::LParen => {
                if self.depth >= MAX_NESTING {
                    return Err(self.err_at(
                        first,
                        format!("parentheses nested more than {MAX_NESTING} deep"),
                    ));
                }
                self.depth += 1;
                let e = self.or_expr()?;
                self.depth -= 1;
                if self.cur.tok != Tok::RParen {
                    return Err(self.err_here(format!(
                        "expected ')' to close the '(' at character {}, found {}",
                        char_offset(self.input, first.start) + 1,
                        self.cur.tok.describe()
                    )));
                }
                self.advance()?;
                Ok(e)
            }
            Tok::Label(label) => self.operation(label),
            other => Err(self.err_at(
                first,
                format!(
                    "expected a label, 'has(', 'all()', 'global()', '!' or '(', found {}",
                    other.describe()
                ),
            )),
        }
    }

    /// The rest of `label <op> <operand>`, the label already read.
    fn operation(&mut self, label: &str) -> Result<Expr, ParseError> {
        let op = self.advance()?;
        let label = label.to_string();
        match op.tok {
            Tok::Eq | Tok::Ne | Tok::Contains | Tok::StartsWith | Tok::EndsWith => {
                let value = self.string_after(op.tok)?;
                Ok(match op.tok {
                    Tok::Eq => Expr::Eq(label, value),
                    Tok::Ne => Expr::Ne(label, value),
                    Tok::Contains => Expr::Contains(label, value),
                    Tok::StartsWith => Expr::StartsWith(label, value),
                    _ => Expr::EndsWith(label, value),
                })
            }
            Tok::In | Tok::NotIn => {
                let values = self.set_literal(op.tok)?;
                Ok(if op.tok == Tok::In {
                    Expr::In(label, values)
                } else {
                    Expr::NotIn(label, values)
                })
            }
            other => {
                let hint = match (label.as_str(), other) {
                    ("has" | "all" | "global", Tok::LParen) => {
                        format!(" ('{label}' must be followed directly by '(', without a space)")
                    }
                    _ => String::new(),
                };
                Err(self.err_at(
                    op,
                    format!(
                        "expected an operator (==, !=, in, not in, contains, starts with, \
                         ends with) after label '{label}', found {}{hint}",
                        other.describe()
                    ),
                ))
            }
        }
    }

    fn string_after(&mut self, op: Tok<'_>) -> Result<String, ParseError> {
        match self.cur.tok {
            Tok::Str(value) => {
                self.advance()?;
                Ok(value.to_string())
            }
            other => Err(self.err_here(format!(
                "expected a string literal after '{}', found {}",
                op.spelling(),
                found(other)
            ))),
        }
    }

    fn set_literal(&mut self, op: Tok<'_>) -> Result<BTreeSet<String>, ParseError> {
        if self.cur.tok != Tok::LBrace {
            return Err(self.err_here(format!(
                "expected a set literal '{{…}}' after '{}', found {}",
                op.spelling(),
                found(self.cur.tok)
            )));
        }
        self.advance()?;
        let mut values = BTreeSet::new();
        while let Tok::Str(value) = self.cur.tok {
            values.insert(value.to_string());
            self.advance()?;
            if self.cur.tok == Tok::Comma {
                self.advance()?;
            } else {
                break;
            }
        }
        if self.cur.tok != Tok::RBrace {
            return Err(self.err_here(format!(
                "expected a string literal, ',' or '}}' in the set literal, found {}",
                found(self.cur.tok)
            )));
        }
        self.advance()?;
        Ok(values)
    }
}

/// `found X` for an error message; a bare label is the common mistake of an unquoted
/// value, so say so.
fn found(tok: Tok<'_>) -> String {
    match tok {
        Tok::Label(l) => format!("'{l}' (values must be quoted: \"{l}\")"),
        other => other.describe(),
    }
}

fn collapse(mut operands: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if operands.len() == 1 {
        operands.pop().expect("one operand")
    } else {
        make(operands)
    }
}

/// The character offset of byte offset `byte` in `input`.
pub(crate) fn char_offset(input: &str, byte: usize) -> usize {
    input.get(..byte).map_or(byte, |s| s.chars().count())
}
