//! The selector tokenizer (docs/semantics.md#selector-syntax), following libcalico-go's `tokenizer.go`.
//!
//! It is context-sensitive in one place, as upstream: right after a label it reads
//! one of the word operators (`contains`, `starts with`, `ends with`, `not in`, `in`)
//! instead of another label. Everything else is read the same way everywhere.
//!
//! Tokens are produced on demand, so the first problem in the text is the one
//! reported. Positions are byte offsets here; the parser turns them into character
//! offsets when it builds a [`ParseError`].

use super::ParseError;

/// The longest label name libcalico-go accepts (`MaxLabelLength`).
pub const MAX_LABEL_LENGTH: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    Label(&'a str),
    Str(&'a str),
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    In,
    NotIn,
    Not,
    Contains,
    StartsWith,
    EndsWith,
    All,
    Global,
    Has(&'a str),
    LParen,
    RParen,
    And,
    Or,
    Eof,
}

impl Tok<'_> {
    /// How the token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Label(l) => format!("label '{l}'"),
            Tok::Str(s) => {
                let q = if s.contains('"') { '\'' } else { '"' };
                format!("string literal {q}{s}{q}")
            }
            Tok::Has(l) => format!("'has({l})'"),
            Tok::Eof => "end of selector".to_string(),
            other => format!("'{}'", other.spelling()),
        }
    }

    /// The canonical spelling of an operator or punctuation token.
    pub(crate) fn spelling(&self) -> &'static str {
        match self {
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::In => "in",
            Tok::NotIn => "not in",
            Tok::Not => "!",
            Tok::Contains => "contains",
            Tok::StartsWith => "starts with",
            Tok::EndsWith => "ends with",
            Tok::All => "all()",
            Tok::Global => "global()",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Label(_) | Tok::Str(_) | Tok::Has(_) | Tok::Eof => "",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub tok: Tok<'a>,
    /// Byte offset of the token's first character.
    pub start: usize,
}

pub(crate) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    /// The label just read, if the previous token was a label.
    after_label: Option<&'a str>,
}

/// `[a-zA-Z0-9_./-]`.
pub(crate) fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

/// True if `label` is a label name the tokenizer accepts (upstream `ValidLabel`).
pub fn is_valid_label(label: &str) -> bool {
    !label.is_empty() && label.len() <= MAX_LABEL_LENGTH && label.bytes().all(is_label_byte)
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a str) -> Lexer<'a> {
        Lexer {
            input,
            pos: 0,
            after_label: None,
        }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn err(&self, byte_offset: usize, message: impl Into<String>) -> ParseError {
        ParseError::at_byte(self.input, byte_offset, message)
    }

    fn skip_whitespace(&mut self) {
        let skipped = self
            .rest()
            .bytes()
            .take_while(|&b| b == b' ' || b == b'\t')
            .count();
        self.pos += skipped;
    }

    /// Consumes `word` if the input continues with it.
    fn eat(&mut self, word: &str) -> bool {
        if self.rest().starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// True at the end of the input or before a non-label character.
    fn at_word_boundary(&self) -> bool {
        self.rest().bytes().next().is_none_or(|b| !is_label_byte(b))
    }

    /// Consumes the words (with any whitespace between them, none required) if they
    /// are all there and the last one ends at a word boundary; otherwise consumes
    /// nothing.
    ///
    /// Upstream skips the whitespace after the last word before it checks the
    /// boundary. That rejects nothing more (a string or `{` must follow), it only
    /// turns `a starts with b` into an operator error instead of a missing-string one.
    fn eat_words(&mut self, words: &[&str]) -> bool {
        let saved = self.pos;
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                self.skip_whitespace();
            }
            if !self.eat(word) {
                self.pos = saved;
                return false;
            }
        }
        if self.at_word_boundary() {
            true
        } else {
            self.pos = saved;
            false
        }
    }

    /// Reads a label name at the current position.
    fn label(&mut self) -> Result<Option<&'a str>, ParseError> {
        let start = self.pos;
        let len = self
            .rest()
            .bytes()
            .take_while(|&b| is_label_byte(b))
            .count();
        if len == 0 {
            return Ok(None);
        }
        if len > MAX_LABEL_LENGTH {
            return Err(self.err(
                start,
                format!("label longer than {MAX_LABEL_LENGTH} characters"),
            ));
        }
        self.pos += len;
        Ok(Some(&self.input[start..start + len]))
    }

    /// The error for a character that cannot start any token.
    fn bad_char(&self, at: usize) -> ParseError {
        let c = self.input[at..].chars().next().unwrap_or(' ');
        let message = match c {
            '\n' => "newline is not allowed in a selector".to_string(),
            '\r' => "carriage return is not allowed in a selector".to_string(),
            c if c.is_control() || c.is_whitespace() => {
                format!("unexpected character '{}'", c.escape_unicode())
            }
            c => format!("unexpected character '{c}'"),
        };
        self.err(at, message)
    }

    /// The word (or character) at `at`, for error messages.
    fn word_at(&self, at: usize) -> &'a str {
        let rest = &self.input[at..];
        let len = rest.bytes().take_while(|&b| is_label_byte(b)).count();
        if len > 0 {
            &rest[..len.min(40)]
        } else {
            rest.chars().next().map_or("", |c| &rest[..c.len_utf8()])
        }
    }

    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, ParseError> {
        self.skip_whitespace();
        let start = self.pos;
        let tok = self.read_token(start)?;
        self.after_label = match tok {
            Tok::Label(label) => Some(label),
            _ => None,
        };
        Ok(Token { tok, start })
    }

    fn read_token(&mut self, start: usize) -> Result<Tok<'a>, ParseError> {
        let Some(&b) = self.rest().as_bytes().first() else {
            return Ok(Tok::Eof);
        };
        let simple = match b {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'{' => Some(Tok::LBrace),
            b'}' => Some(Tok::RBrace),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(tok) = simple {
            self.pos += 1;
            return Ok(tok);
        }
        match b {
            b'"' | b'\'' => {
                // No escapes: the literal ends at the next matching quote.
                let body_start = start + 1;
                match self.input[body_start..].find(b as char) {
                    Some(len) => {
                        self.pos = body_start + len + 1;
                        Ok(Tok::Str(&self.input[body_start..body_start + len]))
                    }
                    None => Err(self.err(start, "unterminated string literal")),
                }
            }
            b'=' => {
                if self.eat("==") {
                    Ok(Tok::Eq)
                } else {
                    Err(self.err(start, "'=' is not an operator; did you mean '=='?"))
                }
            }
            b'!' => {
                if self.eat("!=") {
                    Ok(Tok::Ne)
                } else {
                    self.pos += 1;
                    Ok(Tok::Not)
                }
            }
            b'&' => {
                if self.eat("&&") {
                    Ok(Tok::And)
                } else {
                    Err(self.err(start, "'&' is not an operator; did you mean '&&'?"))
                }
            }
            b'|' => {
                if self.eat("||") {
                    Ok(Tok::Or)
                } else {
                    Err(self.err(start, "'|' is not an operator; did you mean '||'?"))
                }
            }
            _ => match self.after_label {
                Some(label) => self.word_operator(start, label),
                None => self.word_or_label(start),
            },
        }
    }

    /// After a label: one of the word operators, or an error.
    fn word_operator(&mut self, start: usize, label: &str) -> Result<Tok<'a>, ParseError> {
        if self.eat_words(&["contains"]) {
            Ok(Tok::Contains)
        } else if self.eat_words(&["starts", "with"]) {
            Ok(Tok::StartsWith)
        } else if self.eat_words(&["ends", "with"]) {
            Ok(Tok::EndsWith)
        } else if self.eat_words(&["not", "in"]) {
            Ok(Tok::NotIn)
        } else if self.eat_words(&["in"]) {
            Ok(Tok::In)
        } else if matches!(self.input.as_bytes()[start], b'\n' | b'\r') {
            Err(self.bad_char(start))
        } else {
            Err(self.err(
                start,
                format!(
                    "expected an operator (==, !=, in, not in, contains, starts with, \
                     ends with) after label '{label}', found '{}'",
                    self.word_at(start)
                ),
            ))
        }
    }

    /// `has(label)`, `all()`, `global()` or a label.
    fn word_or_label(&mut self, start: usize) -> Result<Tok<'a>, ParseError> {
        if self.eat("has(") {
            self.skip_whitespace();
            let at = self.pos;
            let Some(label) = self.label()? else {
                return Err(self.err(
                    at,
                    format!(
                        "expected a label name in 'has(…)', found {}",
                        self.found_at(at)
                    ),
                ));
            };
            self.skip_whitespace();
            self.close_paren("has(")?;
            Ok(Tok::Has(label))
        } else if self.eat("all(") {
            self.skip_whitespace();
            self.close_paren("all(")?;
            Ok(Tok::All)
        } else if self.eat("global(") {
            self.skip_whitespace();
            self.close_paren("global(")?;
            Ok(Tok::Global)
        } else if let Some(label) = self.label()? {
            Ok(Tok::Label(label))
        } else {
            Err(self.bad_char(start))
        }
    }

    fn close_paren(&mut self, opened: &str) -> Result<(), ParseError> {
        if self.eat(")") {
            Ok(())
        } else {
            let at = self.pos;
            Err(self.err(
                at,
                format!(
                    "expected ')' to close '{opened}', found {}",
                    self.found_at(at)
                ),
            ))
        }
    }

    fn found_at(&self, at: usize) -> String {
        match self.word_at(at) {
            "" => "end of selector".to_string(),
            "\n" => "a newline".to_string(),
            w => format!("'{w}'"),
        }
    }
}
