//! Property tests: canonical printing and parsing are inverse on every tree the
//! parser can build, and `parse` never panics.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

use crate::selector::{parse, Expr, Selector};

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_./-]{1,16}",
        1 => "[a-c]{1,2}",
    ]
}

/// A value the selector language can write: it may hold one kind of quote, not both.
fn value() -> impl Strategy<Value = String> {
    prop_oneof!["[^\"]{0,10}", "[^']{0,10}", "[a-c\"]{0,3}", "[a-c']{0,3}",]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        Just(Expr::All),
        Just(Expr::Global),
        label().prop_map(Expr::Has),
        (label(), value()).prop_map(|(k, v)| Expr::Eq(k, v)),
        (label(), value()).prop_map(|(k, v)| Expr::Ne(k, v)),
        (label(), btree_set(value(), 0..4)).prop_map(|(k, v)| Expr::In(k, v)),
        (label(), btree_set(value(), 0..4)).prop_map(|(k, v)| Expr::NotIn(k, v)),
        (label(), value()).prop_map(|(k, v)| Expr::Contains(k, v)),
        (label(), value()).prop_map(|(k, v)| Expr::StartsWith(k, v)),
        (label(), value()).prop_map(|(k, v)| Expr::EndsWith(k, v)),
    ]
}

/// Trees of the shape `parse` builds: no `Not` directly under a `Not`, and n-ary
/// nodes with at least two operands.
fn parser_shaped() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| match e {
                Expr::Not(e) => *e,
                e => !e,
            }),
            vec(inner.clone(), 2..5).prop_map(Expr::And),
            vec(inner, 2..5).prop_map(Expr::Or),
        ]
    })
}

/// Any tree, including `Not` runs and n-ary nodes with zero or one operand.
fn any_shape() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| !e),
            vec(inner.clone(), 0..4).prop_map(Expr::And),
            vec(inner, 0..4).prop_map(Expr::Or),
        ]
    })
}

fn some_labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map("[a-c]{1,2}", "[a-c\"']{0,2}", 0..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn canonical_round_trip(e in parser_shaped()) {
        let sel = Selector::from(e);
        let text = sel.canonical();
        let back = parse(&text).map_err(|err| {
            TestCaseError::fail(format!("{text:?} does not parse: {} at {}", err, err.offset))
        })?;
        prop_assert_eq!(&back, &sel, "text {:?}", text);
        prop_assert_eq!(back.canonical(), text);
        prop_assert_eq!(back.unique_id(), sel.unique_id());
    }

    #[test]
    fn reparse_is_text_normalized(e in any_shape(), l in some_labels()) {
        let text = e.to_string();
        let back = parse(&text).map_err(|err| {
            TestCaseError::fail(format!("{text:?} does not parse: {} at {}", err, err.offset))
        })?;
        let normalized = e.clone().text_normalized();
        prop_assert_eq!(back.expr(), &normalized, "text {:?}", text);
        prop_assert_eq!(normalized.to_string(), back.canonical());
        // Normalising never changes the meaning.
        prop_assert_eq!(e.matches(&l), normalized.matches(&l));
    }

    #[test]
    fn parse_never_panics(input in any::<String>()) {
        check_parse_result(&input)?;
    }

    #[test]
    fn parse_never_panics_on_selector_like_text(
        input in "([a-c]{1,3}|[ \t!&|(){},=]|'[a-c\"]?'|\"[a-c']?\"|==|!=|&&|\\|\\||has\\(|all\\(|global\\(| in | not in | contains |starts|ends| with |\n|%|é){0,16}"
    ) {
        check_parse_result(&input)?;
    }
}

/// If `input` parses, its canonical text parses to the same tree; if not, the
/// error offset is inside the input.
fn check_parse_result(input: &str) -> Result<(), TestCaseError> {
    match parse(input) {
        Ok(sel) => {
            let text = sel.canonical();
            let back = parse(&text).map_err(|err| {
                TestCaseError::fail(format!("{input:?} -> {text:?} does not parse: {err}"))
            })?;
            prop_assert_eq!(back, sel, "{:?} -> {:?}", input, text);
        }
        Err(err) => {
            prop_assert!(
                err.offset <= input.chars().count(),
                "{:?}: {:?}",
                input,
                err
            );
            prop_assert!(!err.message.is_empty());
        }
    }
    Ok(())
}
