//! Tests of the selector language against docs/semantics.md#selectors
//! (upstream: libcalico-go/lib/selector).
//!
//! - [`conformance`]: the conformance tables (match rows, must-fail list, canonicalisation,
//!   UIDs) and the upstream visitor examples.
//! - [`lexing`]: the lexical corner cases and error messages with their offsets.
//! - [`eval`]: evaluation details, layered labels, the rewrite helpers.
//! - [`props`]: property tests (round trip, no panics).

mod conformance;
mod eval;
mod lexing;
mod props;

use std::collections::BTreeMap;

use super::{parse, Selector};

/// Labels from `[("k", "v"), …]`.
pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[track_caller]
pub(super) fn parse_ok(input: &str) -> Selector {
    match parse(input) {
        Ok(sel) => sel,
        Err(e) => panic!("{input:?} should parse, got error at {}: {}", e.offset, e),
    }
}
