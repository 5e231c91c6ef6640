//! This module deals with the bodies of the fuzz targets: one function per input
//! policylab reads from users, each taking arbitrary bytes and returning only when
//! every problem came back as a value (a panic, an endless loop or unbounded memory
//! is the bug a fuzzer finds). `fuzz/` (cargo-fuzz, nightly) and the bounded
//! property tests of `tests/fuzz.rs` (stable, in CI) call the same functions.

use std::path::Path;

use crate::diag::{Diagnostics, Sources};

/// Where a fuzzed scenario pretends to live: a folder that does not exist, so
/// every file it names is unreadable and nothing on the machine is read.
const NOWHERE: &str = "/nonexistent-policylab-fuzz";

/// A scenario file: load and check it; when it loads, plan it on the model and
/// render its report in every format.
pub fn scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut sources = Sources::new();
    let path = Path::new(NOWHERE).join("scenario.yaml");
    let file = sources.add(&path, text.as_ref());
    let mut diags = Diagnostics::new();
    let loaded = crate::scenario::load_file(&mut sources, file, &mut diags);
    let _ = diags.render(&sources);
    if let Some(sc) = loaded {
        let plan = crate::run::plan(&sc, &sources);
        let report = crate::report::Report::new(&plan, &plan.model_observations(), "model");
        let _ = report.text();
        let _ = report.json();
        let timed = crate::report::TimedReport::untimed(&report, std::time::UNIX_EPOCH);
        let _ = crate::report::Report::junit(&[timed], &[], "fuzz");
    }
}

/// A manifest stream: YAML, kind detection, schema, typed load, validation.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut sources = Sources::new();
    let file = sources.add("fuzz.yaml", text.as_ref());
    let mut diags = Diagnostics::new();
    let (docs, syntax) = crate::yaml::parse_stream(&text, file, crate::yaml::Origin::default());
    diags.extend(syntax);
    let _ = crate::manifest::load_documents(&docs, &mut diags);
    let _ = diags.render(&sources);
}

/// A selector: parse it; a selector that parses prints in canonical form, and
/// the canonical form parses back to itself.
pub fn selector(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(sel) = crate::selector::parse(&text) {
        let canonical = sel.canonical();
        let again = crate::selector::parse(&canonical).unwrap_or_else(|e| {
            panic!("canonical form {canonical:?} of {text:?} does not parse: {e}")
        });
        assert_eq!(again.canonical(), canonical, "canonical form of {text:?}");
        let _ = sel.unique_id();
    }
}

/// A threat-feed body: the first byte picks the format (newline-delimited,
/// JSON with a path, CSV by column or by header, with or without comments), the
/// rest is the body.
pub fn feed(data: &[u8]) {
    use crate::feed::{CsvField, CsvFormat, FeedFormat};
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(body);
    let csv = |field, header, comment| {
        FeedFormat::Csv(CsvFormat {
            field,
            header,
            column_delimiter: if pick & 0x10 == 0 { b',' } else { b';' },
            comment_delimiter: comment,
            record_size: None,
            disable_record_size_validation: pick & 0x20 != 0,
        })
    };
    let format = match pick % 6 {
        0 => FeedFormat::NewlineDelimited,
        1 => FeedFormat::Json {
            path: "$.ips[*]".to_string(),
        },
        2 => FeedFormat::Json {
            path: "$[*].addr".to_string(),
        },
        3 => csv(CsvField::Num(usize::from(pick >> 6)), false, None),
        4 => csv(CsvField::Name("ip".to_string()), true, Some(b'#')),
        _ => csv(CsvField::Num(0), pick & 0x40 != 0, Some(b'#')),
    };
    let _ = crate::feed::parse(&format, &text);
}
