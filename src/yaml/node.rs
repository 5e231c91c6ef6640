//! A YAML tree that remembers where every node was written.
//!
//! `parse_stream` turns a multi-document YAML text into [`Document`]s whose nodes
//! carry a [`Span`] in the coordinates of the file the text lives in. For text that is
//! embedded in another file (an inline manifest in a scenario's block scalar), an
//! [`Origin`] shifts lines and columns so that positions point into the outer file.
//!
//! Plain scalars are typed the way `kubectl` types them (go-yaml v2, YAML 1.1 core
//! schema): `true`, `yes`, `on`, `y` are booleans, `0x1f` and `017` are integers, `~`
//! and the empty value are null. Quoted and block scalars are always strings. This
//! is why `IP-blacklist: true` is a boolean label value, which the API rejects.
//!
//! Syntax errors are reported per document: the stream is cut at every `---` line
//! and each piece is parsed on its own, so a broken document does not hide the
//! problems of the next one.
//!
//! Hostile input is bounded: anchors and aliases may copy at most
//! [`ALIAS_COPY_BASE`] + [`ALIAS_COPY_PER_BYTE`] nodes per byte of the document
//! (never more than [`ALIAS_COPY_MAX`]): past that, the alias is an error (a
//! "billion laughs" file is refused at its first alias over the limit instead of
//! filling memory); collections nest at most [`MAX_DEPTH`] deep. Duplicate keys
//! are found with a hash set, so a mapping's cost is linear in its entries.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, SpannedEventReceiver};

use crate::diag::{Diagnostic, FileId, Span};

/// Nodes that anchors and aliases may copy in any document.
pub const ALIAS_COPY_BASE: usize = 10_000;
/// Nodes that anchors and aliases may copy per byte of the document, beyond
/// [`ALIAS_COPY_BASE`].
pub const ALIAS_COPY_PER_BYTE: usize = 4;
/// Nodes that anchors and aliases may copy in one document, however large.
pub const ALIAS_COPY_MAX: usize = 1_000_000;
/// How deep sequences and mappings may nest.
pub const MAX_DEPTH: usize = 500;

/// Where a piece of YAML text sits inside its file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin {
    /// Added to every (1-based) line.
    pub line_offset: u32,
    /// Added to every (1-based) column.
    pub col_offset: u32,
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

impl Style {
    pub fn is_block(self) -> bool {
        matches!(self, Style::Literal | Style::Folded)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub style: Style,
    /// An explicit tag such as `!!str` (the suffix, e.g. `str`), when one was written.
    pub tag: Option<String>,
}

/// The value of a plain scalar after YAML typing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Resolved<'_> {
    /// The JSON-schema type name of this value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Resolved::Null => "null",
            Resolved::Bool(_) => "boolean",
            Resolved::Int(_) => "integer",
            Resolved::Float(_) => "number",
            Resolved::Str(_) => "string",
        }
    }
}

impl Scalar {
    /// Types the scalar as kubectl's YAML reader does.
    pub fn resolve(&self) -> Resolved<'_> {
        match self.tag.as_deref() {
            Some("str") => return Resolved::Str(&self.text),
            Some("null") => return Resolved::Null,
            Some("bool") => {
                if let Some(b) = resolve_bool(&self.text) {
                    return Resolved::Bool(b);
                }
            }
            Some("int") => {
                if let Some(i) = resolve_int(&self.text) {
                    return Resolved::Int(i);
                }
            }
            Some("float") => {
                if let Some(f) = resolve_float(&self.text) {
                    return Resolved::Float(f);
                }
            }
            _ => {}
        }
        if self.style != Style::Plain {
            return Resolved::Str(&self.text);
        }
        resolve_plain(&self.text)
    }
}

pub(crate) fn resolve_plain(t: &str) -> Resolved<'_> {
    if matches!(t, "" | "~" | "null" | "Null" | "NULL") {
        return Resolved::Null;
    }
    if let Some(b) = resolve_bool(t) {
        return Resolved::Bool(b);
    }
    if let Some(i) = resolve_int(t) {
        return Resolved::Int(i);
    }
    if let Some(f) = resolve_float(t) {
        return Resolved::Float(f);
    }
    Resolved::Str(t)
}

fn resolve_bool(t: &str) -> Option<bool> {
    match t {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

fn resolve_int(t: &str) -> Option<i64> {
    let cleaned: String = t.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match cleaned.as_bytes().first()? {
        b'-' => (true, &cleaned[1..]),
        b'+' => (false, &cleaned[1..]),
        _ => (false, &cleaned[..]),
    };
    if body.is_empty() || !body.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let v = if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = body.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        if !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        body.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

fn resolve_float(t: &str) -> Option<f64> {
    match t {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let b = t.as_bytes();
    let body = match b.first()? {
        b'-' | b'+' => &t[1..],
        _ => t,
    };
    // [0-9]*\.?[0-9]+([eE][-+]?[0-9]+)? or [0-9]+\.[0-9]*...
    let mut chars = body.chars().peekable();
    let mut digits = 0;
    let mut seen_dot = false;
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() || c == '_' {
            digits += 1;
            chars.next();
        } else if c == '.' && !seen_dot {
            seen_dot = true;
            chars.next();
        } else {
            break;
        }
    }
    if digits == 0 {
        return None;
    }
    if let Some(&c) = chars.peek() {
        if c == 'e' || c == 'E' {
            chars.next();
            if let Some(&s) = chars.peek() {
                if s == '+' || s == '-' {
                    chars.next();
                }
            }
            let mut exp = 0;
            while let Some(&c) = chars.peek() {
                if c.is_ascii_digit() {
                    exp += 1;
                    chars.next();
                } else {
                    break;
                }
            }
            if exp == 0 {
                return None;
            }
        }
    }
    if chars.next().is_some() {
        return None;
    }
    t.replace('_', "").parse::<f64>().ok()
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in the order written. Duplicate keys are reported while parsing and
    /// the later entry is dropped.
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The typed value of a scalar node.
    pub fn resolved(&self) -> Option<Resolved<'_>> {
        self.scalar().map(Scalar::resolve)
    }

    /// The text of a node that is a string (quoted, block, or a plain scalar that
    /// types as a string).
    pub fn as_str(&self) -> Option<&str> {
        match self.resolved()? {
            Resolved::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The raw text of any scalar, whatever its YAML type.
    pub fn scalar_text(&self) -> Option<&str> {
        self.scalar().map(|s| s.text.as_str())
    }

    pub fn is_null(&self) -> bool {
        matches!(self.resolved(), Some(Resolved::Null))
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under a string key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value node under a string key of a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.scalar_text() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// The JSON-schema type name of this node ("object", "array", "string", ...).
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Map(_) => "object",
            Value::Seq(_) => "array",
            Value::Scalar(s) => s.resolve().type_name(),
        }
    }

    /// A short rendering for messages: scalars as written, collections by kind.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Scalar(s) => match s.resolve() {
                Resolved::Str(t) => format!("string {t:?}"),
                Resolved::Null => "null".to_string(),
                r => format!("{} `{}`", r.type_name(), s.text),
            },
            Value::Seq(_) => "a list".to_string(),
            Value::Map(_) => "a mapping".to_string(),
        }
    }

    /// Converts to JSON (for merge patches and JSON output). Plain scalars are typed.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => serde_json::Value::Null,
                Resolved::Bool(b) => serde_json::Value::Bool(b),
                Resolved::Int(i) => serde_json::Value::from(i),
                Resolved::Float(f) => serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .unwrap_or_else(|| serde_json::Value::String(s.text.clone())),
                Resolved::Str(t) => serde_json::Value::String(t.to_string()),
            },
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default().to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Builds a node tree from JSON, every node at `span` (for values that came
    /// from a merge patch or from code).
    pub fn from_json(v: &serde_json::Value, span: Span) -> Node {
        let value = match v {
            serde_json::Value::Null => Value::Scalar(Scalar {
                text: "null".into(),
                style: Style::Plain,
                tag: None,
            }),
            serde_json::Value::Bool(b) => Value::Scalar(Scalar {
                text: b.to_string(),
                style: Style::Plain,
                tag: None,
            }),
            serde_json::Value::Number(n) => Value::Scalar(Scalar {
                text: n.to_string(),
                style: Style::Plain,
                tag: None,
            }),
            serde_json::Value::String(s) => Value::Scalar(Scalar {
                text: s.clone(),
                style: Style::DoubleQuoted,
                tag: None,
            }),
            serde_json::Value::Array(a) => {
                Value::Seq(a.iter().map(|x| Node::from_json(x, span)).collect())
            }
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, x)| {
                        (
                            Node {
                                span,
                                value: Value::Scalar(Scalar {
                                    text: k.clone(),
                                    style: Style::DoubleQuoted,
                                    tag: None,
                                }),
                            },
                            Node::from_json(x, span),
                        )
                    })
                    .collect(),
            ),
        };
        Node { span, value }
    }

    /// Gives the node at `path` (map keys, or decimal indexes into sequences) and
    /// everything under it the position `span`; used when a tree built from JSON
    /// (the scenario's short form) should point at the entry it came from.
    pub fn respan(&mut self, path: &[&str], span: Span) {
        let Some((first, rest)) = path.split_first() else {
            self.set_span_deep(span);
            return;
        };
        match &mut self.value {
            Value::Map(entries) => {
                if let Some((k, v)) = entries
                    .iter_mut()
                    .find(|(k, _)| k.scalar_text() == Some(*first))
                {
                    if rest.is_empty() {
                        k.span = span;
                    }
                    v.respan(rest, span);
                }
            }
            Value::Seq(items) => {
                if let Some(n) = first.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    n.respan(rest, span);
                }
            }
            Value::Scalar(_) => {}
        }
    }

    fn set_span_deep(&mut self, span: Span) {
        self.span = span;
        match &mut self.value {
            Value::Scalar(_) => {}
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_span_deep(span)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.span = span;
                v.set_span_deep(span);
            }),
        }
    }

    /// Visits every scalar mutably (used for `${VAR}` substitution).
    pub fn for_each_scalar_mut(&mut self, f: &mut dyn FnMut(Span, &mut Scalar)) {
        let span = self.span;
        match &mut self.value {
            Value::Scalar(s) => f(span, s),
            Value::Seq(items) => items.iter_mut().for_each(|n| n.for_each_scalar_mut(f)),
            Value::Map(entries) => entries
                .iter_mut()
                .for_each(|(_, v)| v.for_each_scalar_mut(f)),
        }
    }
}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Span of the document's first node.
    pub span: Span,
    pub root: Node,
}

/// Parses a multi-document YAML stream. Returns the documents that parsed and a
/// diagnostic for every document that did not. Empty documents (only comments or
/// nothing) are skipped.
pub fn parse_stream(text: &str, file: FileId, origin: Origin) -> (Vec<Document>, Vec<Diagnostic>) {
    let mut docs = Vec::new();
    let mut diags = Vec::new();
    for (first_line, chunk) in split_documents(text) {
        let origin = Origin {
            line_offset: origin.line_offset + first_line,
            col_offset: origin.col_offset,
        };
        let mut b = Builder::new(file, origin, chunk.len());
        // Events are pulled one by one (the parser's `load` recurses once per
        // nesting level, which a hostile file can use to overflow the stack), and
        // the pull stops at the first limit passed.
        let mut parser = Parser::new_from_str(chunk);
        let mut res = Ok(());
        while let Some(ev) = parser.next_event() {
            match ev {
                Ok((ev, span)) => b.on_event(ev, span),
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
            if b.refused {
                break;
            }
        }
        if !b.refused {
            docs.append(&mut b.docs);
        }
        diags.append(&mut b.diags);
        if let Err(e) = res {
            if !b.refused {
                diags.push(scan_error(&e, chunk, file, origin));
            }
        }
    }
    (docs, diags)
}

/// Parses text that must hold exactly one document (a scenario file).
pub fn parse_single(text: &str, file: FileId) -> (Option<Document>, Vec<Diagnostic>) {
    let (mut docs, mut diags) = parse_stream(text, file, Origin::default());
    if docs.len() > 1 {
        let extra = &docs[1];
        diags.push(Diagnostic::error(
            extra.span,
            "a scenario file holds exactly one YAML document; found another one here",
        ));
    }
    if docs.is_empty() && diags.is_empty() {
        diags.push(Diagnostic::error(
            Span::new(file, 1, 1),
            "the file is empty: expected a YAML mapping",
        ));
    }
    let first = if docs.is_empty() {
        None
    } else {
        Some(docs.swap_remove(0))
    };
    (first, diags)
}

fn scan_error(e: &ScanError, chunk: &str, file: FileId, origin: Origin) -> Diagnostic {
    let m = e.marker();
    let info = e.info();
    let at = |line: usize, col: usize| {
        Span::new(
            file,
            line as u32 + origin.line_offset,
            col as u32 + origin.col_offset,
        )
    };
    // The scanner notices some mistakes only after them; point at the cause instead.
    if info == "mapping values are not allowed in this context" {
        if let Some((line, col, msg)) = explain_mapping_value(chunk, m.line()) {
            return Diagnostic::error(at(line, col), msg);
        }
    }
    if let Some((line, col, open)) = unclosed_flow(chunk) {
        if (line, col) < (m.line(), m.col() + 1) {
            let close = if open == '[' { ']' } else { '}' };
            return Diagnostic::error(
                at(line, col),
                format!("invalid YAML: this `{open}` is never closed (expected ',' or '{close}')"),
            );
        }
    }
    if info.starts_with("tabs disallowed") {
        let tab = chunk
            .lines()
            .nth(m.line().saturating_sub(1))
            .and_then(|l| l.chars().position(|c| c == '\t'));
        if let Some(col) = tab {
            return Diagnostic::error(
                at(m.line(), col + 1),
                format!("invalid YAML: {info}: indent with spaces"),
            );
        }
    }
    let msg = match info {
        "mapping values are not allowed in this context" => {
            "invalid YAML: mapping values are not allowed in this context (is a space missing after a `:`, or is the indentation off?)".to_string()
        }
        other => format!("invalid YAML: {other}"),
    };
    Diagnostic::error(at(m.line(), m.col() + 1), msg)
}

/// For "mapping values are not allowed" at 1-based `line` of `chunk`: the two usual
/// causes, found on the line before, as (line, col, message), both 1-based.
/// - `key:value` with no space after the colon (seed 000's `selector:{}`): a plain
///   string, so the next `key:` cannot start a mapping.
/// - A key indented deeper than the `key: value` line above it: it continues that
///   value.
fn explain_mapping_value(chunk: &str, line: usize) -> Option<(usize, usize, String)> {
    let lines: Vec<&str> = chunk.lines().collect();
    let here = *lines.get(line.checked_sub(1)?)?;
    let (prev_no, prev) = lines[..line - 1]
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    let body = prev.trim_start();
    let body = body.strip_prefix("- ").unwrap_or(body);
    let key_len = body.find(|c: char| !is_key_char(c)).unwrap_or(body.len());
    let rest = &body[key_len..];
    if key_len > 0
        && rest.starts_with(':')
        && rest[1..].starts_with(|c: char| c != ' ' && c != ':' && c != '/')
    {
        let key = &body[..key_len];
        let value = rest[1..].trim_end();
        let col = prev.len() - body.len() + key_len + 2;
        return Some((
            prev_no + 1,
            col,
            format!(
                "invalid YAML: `{key}:{value}` has no space after the colon, so it is a string, not the key `{key}` (write `{key}: {value}`)"
            ),
        ));
    }
    let here_body = here.trim_start();
    let here_key_len = here_body.find(|c: char| !is_key_char(c)).unwrap_or(0);
    let prev_value = rest.strip_prefix(": ").map(str::trim).unwrap_or("");
    if key_len > 0
        && here_key_len > 0
        && here_body[here_key_len..].starts_with(':')
        && indent(here) > indent(prev)
        && !prev_value.is_empty()
        && !prev_value.starts_with(['|', '>', '#'])
    {
        let key = &body[..key_len];
        let here_key = &here_body[..here_key_len];
        return Some((
            line,
            indent(here) + 1,
            format!(
                "invalid YAML: `{here_key}` is indented more than `{key}` above it, so it reads as part of `{key}`'s value (indent both keys the same)"
            ),
        ));
    }
    None
}

/// The last `[` or `{` of `chunk` that starts a flow collection and is never closed,
/// as (1-based line, 1-based column, the bracket).
fn unclosed_flow(chunk: &str) -> Option<(usize, usize, char)> {
    let mut stack: Vec<(usize, usize, char)> = Vec::new();
    let mut quote: Option<char> = None;
    for (ln, line) in chunk.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut prev = None; // previous non-space character on this line
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if let Some(q) = quote {
                if c == '\\' && q == '"' {
                    i += 2;
                    continue;
                }
                if c == q {
                    if q == '\'' && chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    quote = None;
                    prev = Some(c);
                }
                i += 1;
                continue;
            }
            let starts_token = match prev {
                None => true,
                Some(p) if stack.is_empty() => matches!(p, ':' | '-'),
                Some(p) => matches!(p, '[' | '{' | ',' | ':'),
            };
            match c {
                '#' if i == 0 || chars[i - 1] == ' ' => break,
                '\'' | '"' if starts_token => quote = Some(c),
                '[' | '{' if starts_token => stack.push((ln + 1, i + 1, c)),
                ']' | '}' if !stack.is_empty() => {
                    stack.pop();
                }
                _ => {}
            }
            if c != ' ' && c != '\t' {
                prev = Some(c);
            }
            i += 1;
        }
    }
    stack.pop()
}

/// Cuts a stream at lines that start a new document (`---` at column 0), so that each
/// document is parsed on its own. Returns (lines before the piece, piece).
fn split_documents(text: &str) -> Vec<(u32, &str)> {
    let mut pieces = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0u32;
    let mut pos = 0usize;
    for (line_no, line) in (0u32..).zip(text.split_inclusive('\n')) {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_marker =
            trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t");
        if is_marker && pos > start {
            pieces.push((start_line, &text[start..pos]));
            start = pos;
            start_line = line_no;
        }
        pos += line.len();
    }
    if start < text.len() || pieces.is_empty() {
        pieces.push((start_line, &text[start..]));
    }
    pieces
}

enum Frame {
    Seq {
        span: Span,
        anchor: usize,
        items: Vec<Node>,
        /// Nodes in this collection, itself included.
        size: usize,
    },
    Map {
        span: Span,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        /// The text of every scalar key so far (duplicate keys in O(1)).
        keys: HashSet<String>,
        size: usize,
    },
}

struct Builder {
    file: FileId,
    origin: Origin,
    stack: Vec<Frame>,
    /// Each anchored node with its number of nodes.
    anchors: HashMap<usize, (Node, usize)>,
    docs: Vec<Document>,
    diags: Vec<Diagnostic>,
    /// Nodes copied by anchors and aliases so far, and the most allowed.
    copied: usize,
    copy_limit: usize,
    /// A limit was passed: the rest of the text is ignored and no document of it
    /// is returned (its error is in `diags`).
    refused: bool,
}

impl Builder {
    fn new(file: FileId, origin: Origin, text_len: usize) -> Builder {
        Builder {
            file,
            origin,
            stack: Vec::new(),
            anchors: HashMap::new(),
            docs: Vec::new(),
            diags: Vec::new(),
            copied: 0,
            copy_limit: ALIAS_COPY_BASE
                .saturating_add(ALIAS_COPY_PER_BYTE.saturating_mul(text_len))
                .min(ALIAS_COPY_MAX),
            refused: false,
        }
    }

    fn span(&self, s: saphyr_parser::Span) -> Span {
        Span::new(
            self.file,
            s.start.line() as u32 + self.origin.line_offset,
            s.start.col() as u32 + 1 + self.origin.col_offset,
        )
    }

    /// Counts `n` more copied nodes (an anchor's or alias's); false, after the
    /// error at `at`, when that passes the limit.
    fn copy(&mut self, n: usize, at: Span, what: &str) -> bool {
        let total = self.copied.saturating_add(n);
        if total > self.copy_limit {
            self.diags.push(Diagnostic::error(
                at,
                format!(
                    "{what} would make this document's anchors and aliases copy {total} nodes; at most {} are allowed here ({ALIAS_COPY_BASE} + {ALIAS_COPY_PER_BYTE} per byte of the document, never more than {ALIAS_COPY_MAX}): refused as an alias bomb",
                    self.copy_limit
                ),
            ));
            self.refused = true;
            return false;
        }
        self.copied = total;
        true
    }

    /// Stores an anchored node (a copy: counted against the limit).
    fn anchor(&mut self, anchor: usize, node: &Node, size: usize) -> bool {
        if anchor == 0 {
            return true;
        }
        if !self.copy(size, node.span, "this anchor") {
            return false;
        }
        self.anchors.insert(anchor, (node.clone(), size));
        true
    }

    fn push_node(&mut self, node: Node, size: usize) {
        match self.stack.last_mut() {
            None => self.docs.push(Document {
                span: node.span,
                root: node,
            }),
            Some(Frame::Seq {
                items, size: total, ..
            }) => {
                items.push(node);
                *total = total.saturating_add(size);
            }
            Some(Frame::Map {
                entries,
                pending_key,
                keys,
                size: total,
                ..
            }) => {
                *total = total.saturating_add(size);
                match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => match key.scalar_text() {
                        None => self
                            .diags
                            .push(Diagnostic::error(key.span, "mapping keys must be scalars")),
                        Some(k) if keys.contains(k) => {
                            self.diags.push(Diagnostic::error(
                                key.span,
                                format!("duplicate key `{k}` in this mapping"),
                            ));
                        }
                        Some(k) => {
                            keys.insert(k.to_string());
                            entries.push((key, node));
                        }
                    },
                }
            }
        }
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, ev: Event<'input>, span: saphyr_parser::Span) {
        if self.refused {
            return;
        }
        let sp = self.span(span);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                let tag = tag.map(|t: Cow<'_, saphyr_parser::Tag>| t.suffix.clone());
                let node = Node {
                    span: sp,
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        style,
                        tag,
                    }),
                };
                if self.anchor(anchor, &node, 1) {
                    self.push_node(node, 1);
                }
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.diags.push(Diagnostic::error(
                    sp,
                    format!("sequences and mappings nest more than {MAX_DEPTH} deep here"),
                ));
                self.refused = true;
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                span: sp,
                anchor,
                items: Vec::new(),
                size: 1,
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                span: sp,
                anchor,
                entries: Vec::new(),
                pending_key: None,
                keys: HashSet::new(),
                size: 1,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (anchor, node, size) = match self.stack.pop() {
                    Some(Frame::Seq {
                        span,
                        anchor,
                        items,
                        size,
                    }) => (
                        anchor,
                        Node {
                            span,
                            value: Value::Seq(items),
                        },
                        size,
                    ),
                    Some(Frame::Map {
                        span,
                        anchor,
                        entries,
                        size,
                        ..
                    }) => (
                        anchor,
                        Node {
                            span,
                            value: Value::Map(entries),
                        },
                        size,
                    ),
                    None => return,
                };
                if self.anchor(anchor, &node, size) {
                    self.push_node(node, size);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).map(|(_, size)| *size) {
                Some(size) => {
                    if self.copy(size, sp, "this alias") {
                        if let Some((n, _)) = self.anchors.get(&id) {
                            let mut n = n.clone();
                            n.span = sp;
                            self.push_node(n, size);
                        }
                    }
                }
                None => self
                    .diags
                    .push(Diagnostic::error(sp, "alias refers to an unknown anchor")),
            },
            // Anchors belong to their document.
            Event::DocumentStart(_) => self.anchors.clear(),
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Sources;

    fn parse(text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
        let mut s = Sources::new();
        let f = s.add("t.yaml", text);
        parse_stream(text, f, Origin::default())
    }

    #[test]
    fn spans_point_at_values() {
        let (docs, diags) = parse("a: 1\nb:\n  c: 'x'\n");
        assert!(diags.is_empty(), "{diags:?}");
        let root = &docs[0].root;
        let c = root.get("b").unwrap().get("c").unwrap();
        assert_eq!((c.span.line, c.span.col), (3, 6));
        assert_eq!(c.as_str(), Some("x"));
        assert_eq!(root.get("a").unwrap().resolved(), Some(Resolved::Int(1)));
    }

    #[test]
    fn kubectl_typing_of_plain_scalars() {
        for (t, want) in [
            ("true", "boolean"),
            ("yes", "boolean"),
            ("Off", "boolean"),
            ("y", "boolean"),
            ("80", "integer"),
            ("0x1F", "integer"),
            ("1.5", "number"),
            ("~", "null"),
            ("", "null"),
            ("10.0.0.1/32", "string"),
            ("all()", "string"),
            ("1e3", "number"),
            ("1.2.3", "string"),
        ] {
            assert_eq!(resolve_plain(t).type_name(), want, "{t:?}");
        }
    }

    #[test]
    fn every_broken_document_is_reported() {
        let (docs, diags) = parse("a: [\n---\nb: 1\n---\nc: {\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(diags.len(), 2, "{diags:?}");
        // The unclosed `{` itself, not the end of the document.
        assert_eq!(diags[1].span.unwrap().line, 5);
        assert!(
            diags[1].message.contains("never closed"),
            "{}",
            diags[1].message
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let (_, diags) = parse("a: 1\na: 2\n");
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("duplicate key `a`"));
    }

    /// The alias bomb: nine levels of ten aliases each (10^9 nodes).
    fn alias_bomb(levels: usize) -> String {
        let mut t = format!("a1: &a1 [{}]\n", ["lol"; 10].join(", "));
        for n in 2..=levels {
            t.push_str(&format!(
                "a{n}: &a{n} [{}]\n",
                vec![format!("*a{}", n - 1); 10].join(", ")
            ));
        }
        t + "name: x\nsteps: []\n"
    }

    #[test]
    fn an_alias_bomb_is_refused_at_the_alias_over_the_limit() {
        let text = alias_bomb(9);
        let start = std::time::Instant::now();
        let (docs, diags) = parse(&text);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert!(docs.is_empty(), "no half-built document");
        assert_eq!(diags.len(), 1, "{diags:?}");
        let d = &diags[0];
        // Lines 1-3 copy 2,453 nodes, each `*a3` 1,111 more: the budget
        // (10,000 + 4 x 549 bytes = 12,196) ends at the ninth alias of line 4.
        let sp = d.span.expect("a position");
        assert_eq!((sp.line, sp.col), (4, 50), "{}", d.message);
        assert!(
            d.message
                .starts_with("this alias would make this document's anchors and aliases copy "),
            "{}",
            d.message
        );
        assert!(d.message.contains("at most 12196 are allowed here (10000 + 4 per byte of the document, never more than 1000000): refused as an alias bomb"), "{}", d.message);
    }

    #[test]
    fn ordinary_aliases_are_expanded() {
        let (docs, diags) = parse("base: &b {app: web, tier: x}\nuse: *b\nlist: [*b, *b]\n");
        assert!(diags.is_empty(), "{diags:?}");
        let root = &docs[0].root;
        assert_eq!(
            root.get("use").unwrap().get("app").unwrap().as_str(),
            Some("web")
        );
        assert_eq!(root.get("list").unwrap().as_seq().unwrap().len(), 2);
        // The alias's node is placed where the alias is written.
        assert_eq!(root.get("use").unwrap().span.line, 2);
    }

    #[test]
    fn very_deep_nesting_ends_with_an_error_not_a_stack_overflow() {
        let deep = format!("{}x\n", "- ".repeat(200_000));
        let (docs, diags) = parse(&deep);
        assert!(docs.is_empty());
        assert!(diags[0].message.contains("nest more than 500 deep"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        // Block sequences nest two bytes a level (flow ones stop at 255 in the
        // scanner).
        let deep = format!("{}x\n", "- ".repeat(MAX_DEPTH + 1));
        let (docs, diags) = parse(&deep);
        assert!(docs.is_empty());
        assert_eq!(diags.len(), 1, "{diags:?}");
        let sp = diags[0].span.expect("a position");
        assert_eq!((sp.line, sp.col), (1, 2 * MAX_DEPTH as u32 + 1));
        assert!(diags[0].message.contains("nest more than 500 deep"));
        let ok = format!("{}x\n", "- ".repeat(MAX_DEPTH));
        let (docs, diags) = parse(&ok);
        assert!(diags.is_empty() && docs.len() == 1, "{diags:?}");
    }

    #[test]
    fn many_keys_are_linear() {
        // 32,000 keys took 9.7 s with a linear duplicate search per key.
        let text: String = (0..64_000).map(|i| format!("k{i}: v\n")).collect();
        let start = std::time::Instant::now();
        let (docs, diags) = parse(&(text + "k5: again\n"));
        assert!(start.elapsed() < std::time::Duration::from_secs(3));
        assert_eq!(docs[0].root.as_map().unwrap().len(), 64_000);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("duplicate key `k5`"));
    }

    #[test]
    fn origin_shifts_positions() {
        let mut s = Sources::new();
        let f = s.add("t.yaml", "");
        let (docs, _) = parse_stream(
            "kind: X\nspec: 1\n",
            f,
            Origin {
                line_offset: 10,
                col_offset: 4,
            },
        );
        let spec = docs[0].root.get("spec").unwrap();
        assert_eq!((spec.span.line, spec.span.col), (12, 11));
    }

    #[test]
    fn syntax_errors_point_at_their_cause() {
        // (yaml, line, col, start of message)
        for (yaml, line, col, msg) in [
            (
                "spec:\n  selector:{}\n  types:\n    - Egress\n",
                2,
                12,
                "invalid YAML: `selector:{}` has no space after the colon",
            ),
            (
                "spec:\n  selector: a == 'b'\n   types:\n    - Egress\n",
                3,
                4,
                "invalid YAML: `types` is indented more than `selector`",
            ),
            (
                "a:\n  ports: [80, 443\n",
                2,
                10,
                "invalid YAML: this `[` is never closed",
            ),
            (
                "a: {b: 'x]', c: [1, 2]\nd: 1\n",
                1,
                4,
                "invalid YAML: this `{` is never closed",
            ),
        ] {
            let (_, diags) = parse(yaml);
            assert_eq!(diags.len(), 1, "{yaml}: {diags:?}");
            let d = &diags[0];
            let span = d.span.unwrap();
            assert_eq!((span.line, span.col), (line, col), "{yaml}: {}", d.message);
            assert!(d.message.starts_with(msg), "{yaml}: {}", d.message);
        }
    }

    #[test]
    fn seed_000_selector_line_is_a_syntax_error() {
        let (_, diags) = parse("spec:\n  selector:{}\n  types:\n    - Egress\n");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(
            diags[0].message.starts_with("invalid YAML"),
            "{}",
            diags[0].message
        );
    }
}
