//! This module deals with threat-feed lists: the text a GlobalThreatFeed pulls over
//! HTTP, parsed into the addresses of its GlobalNetworkSet (docs/semantics.md#threat-feeds).
//!
//! Input: a [`FeedFormat`] (from the feed's `spec.pull.http.format`, see
//! [`FeedFormat::from_spec`]) and the downloaded text. Output: a [`FeedList`], the
//! sorted, de-duplicated networks and the problems of the lines that were skipped,
//! or a [`FeedError`] when the text as a whole cannot be read (the puller then keeps
//! the last good list).
//!
//! The same pure [`parse`] serves the reference model (files served by outside
//! hosts in a scenario) and the kernel's feed puller.
//!
//! # Formats
//! - `newlineDelimited` (the default): everything from the first `#` is cut, then
//!   whitespace is trimmed at both ends; empty lines are skipped; each other line is
//!   one address (`/32`, `/128`) or CIDR (host bits cleared).
//! - `json: {path}`: a JSONPath subset (Kubernetes style, braces optional):
//!   `$`, `.key`, `['key']`, `["key"]`, `[n]`, `[*]`, `.*`, and `{.a[*].b}`. Every
//!   value the path selects is taken; an array is taken element by element. Strings
//!   are addresses; other values are skipped with one problem.
//! - `csv: {fieldNum | fieldName, header, columnDelimiter, commentDelimiter,
//!   recordSize, disableRecordSizeValidation}`, Go `encoding/csv` rules: quoted
//!   fields, the record size is `recordSize` or, when 0/absent, the first record's
//!   size; `disableRecordSizeValidation` lets every record have its own size. A
//!   record of the wrong size, or shorter than the field, is skipped with a problem.
//!   `fieldName` needs `header: true` and names a header column.
//!
//! # Decisions where the controller's behaviour is not documented
//! - A line that is not an address or CIDR is skipped with a problem naming its
//!   line; it is never fatal. But a text with at least one entry and not a single
//!   valid address (an HTML error page, a wrong format) is a [`FeedError`]: an
//!   empty list is only accepted from a text that has no entries at all.
//! - JSON that does not parse, or a path that selects nothing, is a [`FeedError`];
//!   so is a CSV `fieldName` missing from the header.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::manifest::types::ThreatFeedSpec;
use crate::manifest::values::parse_cidr_or_ip;

/// How a feed's text is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedFormat {
    NewlineDelimited,
    Json { path: String },
    Csv(CsvFormat),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvFormat {
    pub field: CsvField,
    pub header: bool,
    pub column_delimiter: u8,
    pub comment_delimiter: Option<u8>,
    /// Expected fields per record; `None` (or 0 written) means "the first record's".
    pub record_size: Option<usize>,
    pub disable_record_size_validation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvField {
    /// 0-based column.
    Num(usize),
    /// A header column.
    Name(String),
}

impl FeedFormat {
    /// The format a feed's spec asks for (`newlineDelimited` when none is set). The
    /// spec has been validated, so a delimiter is one character and at most one
    /// format is set.
    pub fn from_spec(spec: &ThreatFeedSpec) -> FeedFormat {
        let Some(fmt) = spec
            .pull
            .as_ref()
            .and_then(|p| p.value.http.as_ref())
            .and_then(|h| h.value.format.as_ref())
        else {
            return FeedFormat::NewlineDelimited;
        };
        let f = &fmt.value;
        if let Some(j) = &f.json {
            return FeedFormat::Json {
                path: j.path.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
            };
        }
        if let Some(c) = &f.csv {
            let field = match (&c.field_num, &c.field_name) {
                (_, Some(n)) if !n.value.is_empty() => CsvField::Name(n.value.clone()),
                (Some(n), _) => CsvField::Num(usize::try_from(n.value).unwrap_or(0)),
                _ => CsvField::Num(0),
            };
            let byte = |d: &Option<crate::diag::Spanned<String>>| {
                d.as_ref().and_then(|s| s.value.bytes().next())
            };
            return FeedFormat::Csv(CsvFormat {
                field,
                header: c.header.unwrap_or(false),
                column_delimiter: byte(&c.column_delimiter).unwrap_or(b','),
                comment_delimiter: byte(&c.comment_delimiter),
                record_size: c
                    .record_size
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| *n > 0),
                disable_record_size_validation: c.disable_record_size_validation.unwrap_or(false),
            });
        }
        FeedFormat::NewlineDelimited
    }
}

/// A parsed list.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FeedList {
    /// Sorted, de-duplicated.
    pub nets: Vec<IpNet>,
    /// Skipped entries, in text order.
    pub problems: Vec<LineProblem>,
}

/// One skipped entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineProblem {
    /// 1-based line; `None` when the problem is not tied to one line (JSON values).
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The text as a whole could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FeedError(pub String);

/// Parses a feed's text.
pub fn parse(format: &FeedFormat, text: &str) -> Result<FeedList, FeedError> {
    let mut acc = Acc::default();
    match format {
        FeedFormat::NewlineDelimited => newline(text, &mut acc),
        FeedFormat::Json { path } => json(path, text, &mut acc)?,
        FeedFormat::Csv(c) => csv_records(c, text, &mut acc)?,
    }
    acc.finish()
}

#[derive(Default)]
struct Acc {
    nets: Vec<IpNet>,
    problems: Vec<LineProblem>,
    entries: usize,
}

impl Acc {
    fn entry(&mut self, line: Option<usize>, s: &str) {
        self.entries += 1;
        let s = s.trim();
        match parse_cidr_or_ip(s) {
            Some(n) => self.nets.push(n),
            None => {
                let addr_part = s.split('/').next().unwrap_or("");
                let what = if s.contains('/') && addr_part.parse::<IpAddr>().is_ok() {
                    "not a CIDR"
                } else {
                    "not an IP address or CIDR"
                };
                self.problems.push(LineProblem {
                    line,
                    message: format!("`{}` is {what}; skipped", shorten(s)),
                });
            }
        }
    }

    fn finish(mut self) -> Result<FeedList, FeedError> {
        if self.entries > 0 && self.nets.is_empty() {
            let first = self
                .problems
                .first()
                .map(|p| format!(" (first: {p})"))
                .unwrap_or_default();
            return Err(FeedError(format!(
                "no valid address in {} entries{first}",
                self.entries
            )));
        }
        self.nets.sort();
        self.nets.dedup();
        Ok(FeedList {
            nets: self.nets,
            problems: self.problems,
        })
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 60 {
        let mut t: String = s.chars().take(57).collect();
        t.push_str("...");
        t
    } else {
        s.to_string()
    }
}

fn newline(text: &str, acc: &mut Acc) {
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if !content.is_empty() {
            acc.entry(Some(i + 1), content);
        }
    }
}

// ---------------------------------------------------------------------------------
// JSON

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
    All,
}

fn json_path(path: &str) -> Result<Vec<Seg>, FeedError> {
    let bad = |why: &str| FeedError(format!("json path `{path}`: {why}"));
    let mut p = path.trim();
    if let Some(inner) = p.strip_prefix('{') {
        p = inner
            .strip_suffix('}')
            .ok_or_else(|| bad("a `{` without its `}`"))?
            .trim();
    }
    let mut p = p.strip_prefix('$').unwrap_or(p);
    let mut segs = Vec::new();
    while !p.is_empty() {
        if let Some(rest) = p.strip_prefix('[') {
            let end = rest.find(']').ok_or_else(|| bad("a `[` without its `]`"))?;
            let inside = rest[..end].trim();
            let seg = if inside == "*" {
                Seg::All
            } else if let Some(k) = inside
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inside.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
            {
                Seg::Key(k.to_string())
            } else {
                Seg::Index(inside.parse().map_err(|_| {
                    bad(&format!(
                        "`[{inside}]` is not an index, `*` or a quoted key"
                    ))
                })?)
            };
            segs.push(seg);
            p = &rest[end + 1..];
        } else if let Some(rest) = p.strip_prefix('.') {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let key = &rest[..end];
            match key {
                "" => {} // `.` alone (the root) or `.[`
                "*" => segs.push(Seg::All),
                k => segs.push(Seg::Key(k.to_string())),
            }
            p = &rest[end..];
        } else {
            let end = p.find(['.', '[']).unwrap_or(p.len());
            segs.push(Seg::Key(p[..end].to_string()));
            p = &p[end..];
        }
    }
    Ok(segs)
}

fn select<'v>(v: &'v serde_json::Value, segs: &[Seg], out: &mut Vec<&'v serde_json::Value>) {
    let Some((first, rest)) = segs.split_first() else {
        out.push(v);
        return;
    };
    match (first, v) {
        (Seg::Key(k), serde_json::Value::Object(m)) => {
            if let Some(x) = m.get(k) {
                select(x, rest, out);
            }
        }
        (Seg::Index(i), serde_json::Value::Array(a)) => {
            if let Some(x) = a.get(*i) {
                select(x, rest, out);
            }
        }
        (Seg::All, serde_json::Value::Array(a)) => a.iter().for_each(|x| select(x, rest, out)),
        (Seg::All, serde_json::Value::Object(m)) => m.values().for_each(|x| select(x, rest, out)),
        _ => {}
    }
}

fn json(path: &str, text: &str, acc: &mut Acc) -> Result<(), FeedError> {
    let segs = json_path(path)?;
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| FeedError(format!("the text is not JSON: {e}")))?;
    let mut found = Vec::new();
    select(&doc, &segs, &mut found);
    if found.is_empty() {
        return Err(FeedError(format!("json path `{path}` selects nothing")));
    }
    let mut skipped = 0usize;
    let mut take = |v: &serde_json::Value, acc: &mut Acc| match v {
        serde_json::Value::String(s) => acc.entry(None, s),
        _ => skipped += 1,
    };
    for v in found {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| take(x, acc)),
            x => take(x, acc),
        }
    }
    if skipped > 0 {
        acc.entries += skipped;
        acc.problems.push(LineProblem {
            line: None,
            message: format!("{skipped} values selected by `{path}` are not strings; skipped"),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// CSV

fn csv_records(c: &CsvFormat, text: &str, acc: &mut Acc) -> Result<(), FeedError> {
    let mut rb = csv::ReaderBuilder::new();
    rb.has_headers(false)
        .flexible(true)
        .delimiter(c.column_delimiter)
        .comment(c.comment_delimiter);
    let mut reader = rb.from_reader(text.as_bytes());
    let mut size = c.record_size;
    let mut field = match &c.field {
        CsvField::Num(n) => Some(*n),
        CsvField::Name(_) => None,
    };
    let mut first = true;
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                acc.entries += 1;
                acc.problems.push(LineProblem {
                    line,
                    message: format!("not a CSV record ({e}); skipped"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line() as usize);
        if first {
            first = false;
            if size.is_none() && !c.disable_record_size_validation {
                size = Some(rec.len());
            }
            if c.header {
                if let CsvField::Name(name) = &c.field {
                    field = rec.iter().position(|h| h.trim() == name);
                    if field.is_none() {
                        return Err(FeedError(format!(
                            "the header has no column `{name}` (it has: {})",
                            rec.iter().collect::<Vec<_>>().join(", ")
                        )));
                    }
                }
                continue;
            }
        }
        let Some(f) = field else {
            return Err(FeedError(
                "`fieldName` needs `header: true` (the column is found by its header)".into(),
            ));
        };
        if let (Some(n), false) = (size, c.disable_record_size_validation) {
            if rec.len() != n {
                acc.entries += 1;
                acc.problems.push(LineProblem {
                    line,
                    message: format!("{} fields, expected {n}; skipped", rec.len()),
                });
                continue;
            }
        }
        match rec.get(f) {
            Some(v) => acc.entry(line, v),
            None => {
                acc.entries += 1;
                acc.problems.push(LineProblem {
                    line,
                    message: format!("{} fields, no field {f}; skipped", rec.len()),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    /// `text` parses to the networks `want` with the per-line `problems`.
    fn check(f: &FeedFormat, text: &str, want: &[&str], problems: &[(usize, &str)]) {
        let got = parse(f, text).unwrap();
        assert_eq!(got.nets, nets(want));
        let p: Vec<(usize, &str)> = got
            .problems
            .iter()
            .map(|p| (p.line.unwrap(), p.message.as_str()))
            .collect();
        assert_eq!(p, problems);
    }

    fn csv_fmt(field: CsvField, header: bool) -> FeedFormat {
        FeedFormat::Csv(CsvFormat {
            field,
            header,
            column_delimiter: b',',
            comment_delimiter: None,
            record_size: None,
            disable_record_size_validation: false,
        })
    }

    #[rstest]
    #[case::bare_v4("10.0.0.1\n", &["10.0.0.1/32"], &[])]
    #[case::bare_v6("2001:db8::1\n", &["2001:db8::1/128"], &[])]
    #[case::cidr_host_bits_cleared("10.1.2.3/24", &["10.1.2.0/24"], &[])]
    #[case::comments_blank_spaces(
        "# header\n\n  10.0.0.1  \n10.0.0.2 # inline\n\t\n",
        &["10.0.0.1/32", "10.0.0.2/32"],
        &[]
    )]
    #[case::sorted_dedup("10.0.0.2\n10.0.0.1\n10.0.0.2/32\n", &["10.0.0.1/32", "10.0.0.2/32"], &[])]
    #[case::garbage_skipped(
        "10.0.0.1\nnot-an-ip\n10.0.0.300\n10.0.0.0/33\n",
        &["10.0.0.1/32"],
        &[(2, "`not-an-ip` is not an IP address or CIDR; skipped"),
          (3, "`10.0.0.300` is not an IP address or CIDR; skipped"),
          (4, "`10.0.0.0/33` is not a CIDR; skipped")]
    )]
    #[case::only_comments("# nothing\n\n", &[], &[])]
    #[case::crlf("10.0.0.1\r\n10.0.0.2\r\n", &["10.0.0.1/32", "10.0.0.2/32"], &[])]
    fn newline_delimited(
        #[case] text: &str,
        #[case] want: &[&str],
        #[case] problems: &[(usize, &str)],
    ) {
        check(&FeedFormat::NewlineDelimited, text, want, problems);
    }

    #[test]
    fn all_garbage_is_an_error() {
        let e = parse(&FeedFormat::NewlineDelimited, "<html>\n<body>oops</body>\n").unwrap_err();
        assert_eq!(
            e.0,
            "no valid address in 2 entries (first: line 1: `<html>` is not an IP address or CIDR; skipped)"
        );
    }

    #[rstest]
    #[case::root_list("$", r#"["10.0.0.1", "10.0.0.0/8"]"#, &["10.0.0.0/8", "10.0.0.1/32"])]
    #[case::k8s_braces("{.ips}", r#"{"ips": ["10.0.0.1"]}"#, &["10.0.0.1/32"])]
    #[case::nested_wildcard(
        "$.data[*].ip",
        r#"{"data": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"other": 1}]}"#,
        &["10.0.0.1/32", "10.0.0.2/32"]
    )]
    #[case::quoted_key_and_index("$['feed'][1]", r#"{"feed": ["10.0.0.1", "10.0.0.2"]}"#, &["10.0.0.2/32"])]
    #[case::dot_root(".", r#"["192.0.2.1"]"#, &["192.0.2.1/32"])]
    fn json_paths(#[case] path: &str, #[case] text: &str, #[case] want: &[&str]) {
        let f = FeedFormat::Json { path: path.into() };
        assert_eq!(parse(&f, text).unwrap().nets, nets(want));
    }

    #[test]
    fn json_non_strings_one_problem() {
        let f = FeedFormat::Json { path: "$".into() };
        let got = parse(&f, r#"["10.0.0.1", 5, {"a": 1}, "bad"]"#).unwrap();
        assert_eq!(got.nets, nets(&["10.0.0.1/32"]));
        let msgs: Vec<String> = got.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            msgs,
            [
                "`bad` is not an IP address or CIDR; skipped",
                "2 values selected by `$` are not strings; skipped"
            ]
        );
    }

    #[rstest]
    #[case::not_json("$", "10.0.0.1", "the text is not JSON")]
    #[case::selects_nothing("$.nope", r#"{"a": []}"#, "json path `$.nope` selects nothing")]
    #[case::bad_path("$[x]", "[]", "json path `$[x]`: `[x]` is not an index")]
    fn json_errors(#[case] path: &str, #[case] text: &str, #[case] msg: &str) {
        let e = parse(&FeedFormat::Json { path: path.into() }, text).unwrap_err();
        assert!(e.0.starts_with(msg), "{}", e.0);
    }

    #[rstest]
    #[case::field_num(csv_fmt(CsvField::Num(1), false), "a,10.0.0.1\nb,10.0.0.2\n", &["10.0.0.1/32", "10.0.0.2/32"], &[])]
    #[case::header_by_name(
        csv_fmt(CsvField::Name("ip".into()), true),
        "name,ip\nx,10.0.0.1\ny,\"10.0.0.2\"\n",
        &["10.0.0.1/32", "10.0.0.2/32"],
        &[]
    )]
    #[case::header_skipped_with_num(csv_fmt(CsvField::Num(0), true), "ip\n10.0.0.1\n", &["10.0.0.1/32"], &[])]
    #[case::record_size_from_first(
        csv_fmt(CsvField::Num(0), false),
        "10.0.0.1,a\n10.0.0.2\n10.0.0.3,c\n",
        &["10.0.0.1/32", "10.0.0.3/32"],
        &[(2, "1 fields, expected 2; skipped")]
    )]
    #[case::validation_disabled(
        FeedFormat::Csv(CsvFormat { disable_record_size_validation: true, ..match csv_fmt(CsvField::Num(0), false) { FeedFormat::Csv(c) => c, _ => unreachable!() } }),
        "10.0.0.1,a\n10.0.0.2\n",
        &["10.0.0.1/32", "10.0.0.2/32"],
        &[]
    )]
    #[case::short_row_with_validation_off(
        FeedFormat::Csv(CsvFormat { disable_record_size_validation: true, ..match csv_fmt(CsvField::Num(1), false) { FeedFormat::Csv(c) => c, _ => unreachable!() } }),
        "a,10.0.0.1\nb\n",
        &["10.0.0.1/32"],
        &[(2, "1 fields, no field 1; skipped")]
    )]
    #[case::explicit_record_size(
        FeedFormat::Csv(CsvFormat { record_size: Some(3), ..match csv_fmt(CsvField::Num(0), false) { FeedFormat::Csv(c) => c, _ => unreachable!() } }),
        "10.0.0.1,a\n10.0.0.2,b,c\n",
        &["10.0.0.2/32"],
        &[(1, "2 fields, expected 3; skipped")]
    )]
    #[case::delimiter_and_comment(
        FeedFormat::Csv(CsvFormat { column_delimiter: b';', comment_delimiter: Some(b'#'), ..match csv_fmt(CsvField::Num(1), false) { FeedFormat::Csv(c) => c, _ => unreachable!() } }),
        "# comment\nx;10.0.0.1\ny;nope\n",
        &["10.0.0.1/32"],
        &[(3, "`nope` is not an IP address or CIDR; skipped")]
    )]
    fn csv_formats(
        #[case] f: FeedFormat,
        #[case] text: &str,
        #[case] want: &[&str],
        #[case] problems: &[(usize, &str)],
    ) {
        check(&f, text, want, problems);
    }

    #[test]
    fn csv_missing_header_column() {
        let e = parse(&csv_fmt(CsvField::Name("ip".into()), true), "a,b\n1,2\n").unwrap_err();
        assert_eq!(e.0, "the header has no column `ip` (it has: a, b)");
    }

    #[test]
    fn from_spec_defaults_to_newline() {
        assert_eq!(
            FeedFormat::from_spec(&ThreatFeedSpec::default()),
            FeedFormat::NewlineDelimited
        );
    }
}
