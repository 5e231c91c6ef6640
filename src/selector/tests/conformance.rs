//! docs/semantics.md#selector-conformance: every row of the conformance table, the must-fail list, the
//! canonicalisation examples and the UIDs (from libcalico-go `parser_test.go`).

use rstest::rstest;

use super::{labels, parse_ok};
use crate::selector::parse;

const QUOTES: &str = r#"a in {"'", '"', "c"}"#;
const NOT_QUOTES: &str = r#"a not in {"'", '"', "c"}"#;

/// One row of the conformance table: every selector variant, evaluated against the labels,
/// gives `expected`, before and after a canonical round trip.
#[rstest]
#[case::r01(1, &[r#"a == "b""#], &[("a", "b")], true)]
#[case::r02(2, &[r#"a == "b""#], &[("a", "b"), ("c", "d")], true)]
#[case::r03(3, &[r#"a == "b""#], &[], false)]
#[case::r04(4, &[r#"a == "b""#], &[("a", "c")], false)]
#[case::r05(5, &[r#"a == "b""#], &[("c", "d")], false)]
#[case::r06(6, &[r#"a == "b" && c == "d""#], &[("a", "b"), ("c", "d")], true)]
#[case::r07(7, &[r#"a == "b" && c == "d""#], &[("a", "b"), ("c", "e")], false)]
#[case::r08(8, &[r#"a == "b" && c == "d""#], &[("a", "b")], false)]
#[case::r09(9, &[r#"a == "b" || c == "d""#], &[("c", "d")], true)]
#[case::r10(10, &[r#"a == "b" || c == "d""#], &[("a", "e"), ("c", "e")], false)]
#[case::r11(11, &[QUOTES], &[("a", "c")], true)]
#[case::r12(12, &[QUOTES], &[("a", "\"")], true)]
#[case::r13(13, &[QUOTES], &[("a", "'")], true)]
#[case::r14(14, &[QUOTES], &[], false)]
#[case::r15(15, &[NOT_QUOTES], &[], true)]
#[case::r16(16, &[NOT_QUOTES], &[("a", "e")], true)]
#[case::r17(17, &[NOT_QUOTES], &[("a", "c")], false)]
#[case::r18(18, &["a == 'a'"], &[("a", "a")], true)]
#[case::r19(19, &[r#"a != "b""#], &[("a", "a")], true)]
#[case::r20(20, &[r#"a != "a""#], &[], true)]
#[case::r21(21, &[r#"a != "a""#], &[("a", "a")], false)]
#[case::r22(22, &[r#"a contains "a""#], &[("a", "bab")], true)]
#[case::r23(23, &[r#"a contains "a""#], &[("a", "b")], false)]
#[case::r24(24, &[r#"a contains "a""#], &[("b", "aaa")], false)]
#[case::r25(25, &[r#"a starts with "a""#], &[("a", "abb")], true)]
#[case::r26(26, &[r#"a starts with "a""#], &[("a", "baa")], false)]
#[case::r27(27, &[r#"a ends with "a""#], &[("a", "bba")], true)]
#[case::r28(28, &[r#"a ends with "a""#], &[("a", "aab")], false)]
#[case::r29(29, &[r#"!a in {"a"}"#], &[("a", "b")], true)]
#[case::r30(30, &[r#"a in {"a", "b"}"#], &[("a", "b")], true)]
#[case::r31(31, &[r#"a in {"a", "b"}"#], &[("a", "c")], false)]
#[case::r32(32, &[r#"a not in {"a"}"#], &[("a", "a")], false)]
#[case::r33(33, &["has(a)"], &[("a", "b")], true)]
#[case::r34(34, &["has(b)"], &[("a", "b")], false)]
#[case::r35(35, &["!has(a)"], &[("b", "b")], true)]
#[case::r36(36, &["!has(a)", "! has(a)", "!!! has(a)", "!! ! has(a)", "! !!has(a)"], &[("a", "b")], false)]
#[case::r37(37, &["!!has(b)"], &[("a", "b")], false)]
#[case::r38_empty(38, &["", " "], &[], true)]
#[case::r38_ab(38, &["", " "], &[("a", "b")], true)]
#[case::r39_empty(39, &["all()", " all()"], &[], true)]
#[case::r39_ab(39, &["all()", " all()"], &[("a", "b")], true)]
#[case::r40_empty(40, &["global()", " global()"], &[], true)]
#[case::r40_ab(40, &["global()", " global()"], &[("a", "b")], true)]
#[case::r41(41, &["a == 'a1' && b != 'b1'"], &[("a", "a1"), ("b", "b1")], false)]
#[case::r42(42, &["a != 'a1' && !b == 'b1'"], &[("a", "a1"), ("b", "b1")], false)]
#[case::r43(43, &["has(a) && !has(b)"], &[("a", "a")], true)]
#[case::r44(44, &["!(!has(a) || has(b))"], &[("a", "a")], true)]
#[case::r45(45, &["!(has(b) || !has(a))"], &[("a", "a")], true)]
#[case::r46(46, &["a == 'a1' || b != 'b1'"], &[("a", "a1"), ("b", "b1")], true)]
#[case::r47(47, &["a != 'a1' || b == 'b1'"], &[("a", "a1"), ("b", "b1")], true)]
#[case::r48(48, &["a != 'a1' || b != 'b1'"], &[("a", "a1"), ("b", "b1")], false)]
#[case::r49(49, &["! a == 'a1' || ! b == 'b1'"], &[("a", "a1"), ("b", "b1")], false)]
#[case::r50(50, &["a in {}"], &[("a", "x")], false)]
#[case::r51(51, &["a not in {}"], &[], true)]
#[case::r52(52, &["has(a)"], &[("a", "")], true)]
#[case::r53(53, &[r#"a == """#], &[], false)]
fn table_row(
    #[case] row: u32,
    #[case] selectors: &[&str],
    #[case] pairs: &[(&str, &str)],
    #[case] expected: bool,
) {
    let labels = labels(pairs);
    for input in selectors {
        let sel = parse_ok(input);
        assert_eq!(
            sel.matches(&labels),
            expected,
            "row {row}: {input:?} on {pairs:?}"
        );
        let again = parse_ok(&sel.canonical());
        assert_eq!(again, sel, "row {row}: {input:?} round trip");
        assert_eq!(
            again.matches(&labels),
            expected,
            "row {row}: canonical {:?} on {pairs:?}",
            sel.canonical()
        );
    }
}

/// The must-fail list: upstream `badSelectors` and the tokenizer-level ones.
#[rstest]
#[case("b == b")]
#[case("b contains b")]
#[case("b starts with b")]
#[case("b ends with b")]
#[case("'b1' == b")]
#[case("b")]
#[case("a b")]
#[case("!")]
#[case(r#"foo == "bar" &"#)]
#[case(r#"foo == "bar" |"#)]
#[case("foo != ||")]
#[case(r#"foo in {"", ||"#)]
#[case(r#"foo in """#)]
#[case(r#""FOO"#)]
#[case(r#""FOO'"#)]
#[case("'FOO")]
#[case("(")]
#[case(r#"(a == "foo""#)]
#[case(")")]
#[case("()")]
#[case("%")]
#[case(r#"a == "b" && %"#)]
#[case(r#"a == "b" || %"#)]
#[case("a ")]
#[case("has(foo) &&")]
#[case(r#"label = "v""#)]
#[case("all(")]
#[case("global(")]
#[case("has()")]
#[case("has(foo")]
#[case(r#"label starts foo "v""#)]
#[case(r#"label ends withs "v""#)]
fn must_fail(#[case] input: &str) {
    let err = parse(input).expect_err(input);
    assert!(
        err.offset <= input.chars().count(),
        "{input:?}: offset {} past the end",
        err.offset
    );
    assert!(!err.message.is_empty());
}

/// Upstream's canonicalisation examples, plus the rest of upstream's
/// `canonicalisationTests`. The canonical text is a fixed point.
#[rstest]
#[case("", "all()")]
#[case(" all() ", "all()")]
#[case(" (all() )", "all()")]
#[case("! (has( b)||! has(a ))", "!(has(b) || !has(a))")]
#[case(r#"! (a == "b"&&! c != "d")"#, r#"!(a == "b" && !c != "d")"#)]
#[case(r#"a == "'""#, r#"a == "'""#)]
#[case(r#"a == '"'"#, r#"a == '"'"#)]
#[case(r#"a contains '"'"#, r#"a contains '"'"#)]
#[case(r#"a contains "'""#, r#"a contains "'""#)]
#[case(r#"a startswith '"'"#, r#"a starts with '"'"#)]
#[case(r#"a endswith "'""#, r#"a ends with "'""#)]
#[case(r#"a!='"'"#, r#"a != '"'"#)]
#[case(r#"a in {"d"}"#, r#"a in {"d"}"#)]
#[case(r#"a in {"a", "b"}"#, r#"a in {"a", "b"}"#)]
#[case(r#"a in {"d", "a", "b"}"#, r#"a in {"a", "b", "d"}"#)]
#[case(r#"a in {"z", "x", "y", "a"}"#, r#"a in {"a", "x", "y", "z"}"#)]
#[case(
    r#"a in {"z", "z", "x", "y", "x", "a"}"#,
    r#"a in {"a", "x", "y", "z"}"#
)]
#[case("a in {'x',}", r#"a in {"x"}"#)]
#[case("a notin {}", "a not in {}")]
#[case(
    "a == 'x' && b == 'y' && c == 'z'",
    r#"(a == "x" && b == "y" && c == "z")"#
)]
#[case(
    "(a == 'x' && b == 'y') && c == 'z'",
    r#"((a == "x" && b == "y") && c == "z")"#
)]
#[case(
    "a == 'x' || b == 'y' && c == 'z'",
    r#"(a == "x" || (b == "y" && c == "z"))"#
)]
#[case("!!(has(a))", "has(a)")]
#[case("!a == 'x'", r#"!a == "x""#)]
fn canonicalisation(#[case] input: &str, #[case] expected: &str) {
    let sel = parse_ok(input);
    assert_eq!(sel.canonical(), expected, "{input:?}");
    assert_eq!(sel.to_string(), expected, "Display of {input:?}");
    let again = parse_ok(expected);
    assert_eq!(
        again.canonical(),
        expected,
        "{expected:?} is not a fixed point"
    );
    assert_eq!(again.unique_id(), sel.unique_id());
}

/// `!(!x)`: the parentheses stop the `!` run, so the tree is `Not(Not(x))` and the
/// canonical text `!!x`, which parses to `x`. Upstream behaves the same way, so the
/// UID of `!(!x)` is the one of the text `!!x`, not the one of `x`.
#[test]
fn parenthesised_double_negation_is_not_a_fixed_point() {
    let sel = parse_ok("!(!has(a))");
    assert_eq!(sel.canonical(), "!!has(a)");
    let again = parse_ok(&sel.canonical());
    assert_eq!(again.canonical(), "has(a)");
    assert_ne!(again.unique_id(), sel.unique_id());
    assert_eq!(again.expr(), &sel.expr().clone().text_normalized());
}

/// The UIDs upstream tests (`hash.MakeUniqueID("s", canonical)`).
#[rstest]
#[case("all()", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug")]
#[case("", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug")]
#[case(" (all() )", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug")]
#[case("! (has( b)||! has(a ))", "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q")]
#[case(
    r#"! (a == "b"&&! c != "d")"#,
    "s:lh3haoY1ikTRkd4UZu0nWSaIBknYLPJLX16d-w"
)]
fn unique_id(#[case] input: &str, #[case] uid: &str) {
    assert_eq!(parse_ok(input).unique_id(), uid, "{input:?}");
}

/// Upstream's `PrefixVisitor` table, with the prefix `visited/`.
#[rstest]
#[case("k == 'v'", r#"visited/k == "v""#)]
#[case("k != 'v'", r#"visited/k != "v""#)]
#[case("k contains 'v'", r#"visited/k contains "v""#)]
#[case("k starts with 'v'", r#"visited/k starts with "v""#)]
#[case("k ends with 'v'", r#"visited/k ends with "v""#)]
#[case("k == 'v' && x == 'y'", r#"(visited/k == "v" && visited/x == "y")"#)]
#[case("k == 'v' || has(x)", r#"(visited/k == "v" || has(visited/x))"#)]
#[case("!(k == 'v')", r#"!visited/k == "v""#)]
#[case("k in {'v'}", r#"visited/k in {"v"}"#)]
#[case("k not in {'v'}", r#"visited/k not in {"v"}"#)]
#[case(
    "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
    r#"!(!((visited/k == "v" && has(visited/t)) || all()) && visited/a in {"b", "c"})"#
)]
fn prefix_visitor(#[case] input: &str, #[case] expected: &str) {
    assert_eq!(
        parse_ok(input).prefix_labels("visited/").canonical(),
        expected
    );
}
