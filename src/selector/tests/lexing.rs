//! Lexical corner cases (docs/semantics.md#selector-syntax), and the error messages with their offsets.

use rstest::rstest;

use super::parse_ok;
use crate::selector::{parse, Expr};

/// Accepted, with the canonical text they give.
#[rstest]
#[case::tab_is_whitespace("\ta\t==\t'x'\t", r#"a == "x""#)]
#[case::contains_glued(r#"label contains"value""#, r#"label contains "value""#)]
#[case::in_glued(r#"a in{"x"}"#, r#"a in {"x"}"#)]
#[case::starts_with_many_spaces("a starts   with 'x'", r#"a starts with "x""#)]
#[case::starts_with_tab("a starts\twith 'x'", r#"a starts with "x""#)]
#[case::startswith("a startswith 'x'", r#"a starts with "x""#)]
#[case::ends_with_many_spaces("a ends    with 'x'", r#"a ends with "x""#)]
#[case::endswith("a endswith 'x'", r#"a ends with "x""#)]
#[case::not_in_many_spaces("a not    in {'x'}", r#"a not in {"x"}"#)]
#[case::notin("a notin {'x'}", r#"a not in {"x"}"#)]
#[case::has_spaces_inside("has( a )", "has(a)")]
#[case::has_tabs_inside("has(\ta\t)", "has(a)")]
#[case::all_space_inside("all( )", "all()")]
#[case::global_space_inside("global(  )", "global()")]
#[case::empty("", "all()")]
#[case::spaces("   ", "all()")]
#[case::tabs("\t \t", "all()")]
#[case::label_chars("calico/k8s_NS-.1/role == 'x'", r#"calico/k8s_NS-.1/role == "x""#)]
#[case::keyword_as_label(
    "all == 'x' && has == 'y' && in == 'z'",
    r#"(all == "x" && has == "y" && in == "z")"#
)]
#[case::word_op_as_label("contains contains 'x'", r#"contains contains "x""#)]
#[case::single_quote_in_double(r#"a == "'""#, r#"a == "'""#)]
#[case::double_quote_in_single(r#"a == '"'"#, r#"a == '"'"#)]
#[case::no_escapes(r#"a == "\""#, r#"a == "\""#)]
#[case::newline_in_string("a == \"x\ny\"", "a == \"x\ny\"")]
#[case::unicode_value("a == 'é'", r#"a == "é""#)]
#[case::trailing_comma("a in {'x', 'y',}", r#"a in {"x", "y"}"#)]
#[case::empty_set("a in { }", "a in {}")]
#[case::ne_glued("a!='x'", r#"a != "x""#)]
#[case::bang_glued("!has(a)&&!has(b)", "(!has(a) && !has(b))")]
fn accepted(#[case] input: &str, #[case] canonical: &str) {
    assert_eq!(parse_ok(input).canonical(), canonical, "{input:?}");
}

#[test]
fn label_length_limit() {
    let max = "a".repeat(512);
    assert_eq!(
        parse_ok(&format!("has({max})")).expr(),
        &Expr::Has(max.clone())
    );
    assert_eq!(
        parse_ok(&format!("{max} == 'x'")).expr(),
        &Expr::Eq(max.clone(), "x".into())
    );
    let long = "a".repeat(513);
    for input in [
        format!("{long} == 'x'"),
        format!("has({long})"),
        format!("x == 'y' && {long} == 'x'"),
    ] {
        let err = parse(&input).unwrap_err();
        assert_eq!(err.message, "label longer than 512 characters");
        assert_eq!(err.offset, input.find(&long).unwrap());
    }
}

/// Rejected: the character offset of the problem and the whole message.
#[rstest]
#[case::single_eq(r#"label = "v""#, 6, "'=' is not an operator; did you mean '=='?")]
#[case::single_amp(
    r#"a == "b" & c == "d""#,
    9,
    "'&' is not an operator; did you mean '&&'?"
)]
#[case::single_pipe(
    r#"a == "b" | c == "d""#,
    9,
    "'|' is not an operator; did you mean '||'?"
)]
#[case::unterminated_double(r#"a == "FOO"#, 5, "unterminated string literal")]
#[case::unterminated_mixed(r#"a == "FOO'"#, 5, "unterminated string literal")]
#[case::unterminated_single("'FOO", 0, "unterminated string literal")]
#[case::percent("%", 0, "unexpected character '%'")]
#[case::percent_after_and(r#"a == "b" && %"#, 12, "unexpected character '%'")]
#[case::newline("a == 'x' &&\nb == 'y'", 11, "newline is not allowed in a selector")]
#[case::newline_after_label("a\n== 'x'", 1, "newline is not allowed in a selector")]
#[case::newline_at_end("has(a)\n", 6, "newline is not allowed in a selector")]
#[case::carriage_return("has(a)\r", 6, "carriage return is not allowed in a selector")]
#[case::vertical_tab("has(a)\u{b}", 6, "unexpected character '\\u{b}'")]
#[case::nbsp("has(a)\u{a0}", 6, "unexpected character '\\u{a0}'")]
#[case::unicode_offset_in_chars("a == 'é' && ü", 12, "unexpected character 'ü'")]
#[case::inf(
    r#"label inf "x""#,
    6,
    "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'label', found 'inf'"
)]
#[case::starts_foo(
    r#"label starts foo "v""#,
    6,
    "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'label', found 'starts'"
)]
#[case::ends_withs(
    r#"label ends withs "v""#,
    6,
    "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'label', found 'ends'"
)]
#[case::containsx(
    r#"a containsx "v""#,
    2,
    "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'a', found 'containsx'"
)]
#[case::label_label(
    "a b",
    2,
    "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'a', found 'b'"
)]
#[case::bare_label(
    "b",
    1,
    "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'b', found end of selector"
)]
#[case::has_space_paren(
    "has (a)",
    4,
    "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'has', found '(' ('has' must be followed directly by '(', without a space)"
)]
#[case::unquoted_value(
    "b == b",
    5,
    "expected a string literal after '==', found 'b' (values must be quoted: \"b\")"
)]
#[case::contains_unquoted(
    "b contains b",
    11,
    "expected a string literal after 'contains', found 'b' (values must be quoted: \"b\")"
)]
#[case::ne_or("foo != ||", 7, "expected a string literal after '!=', found '||'")]
#[case::set_not_brace(
    r#"foo in """#,
    7,
    r#"expected a set literal '{…}' after 'in', found string literal """#
)]
#[case::set_unclosed(
    r#"foo in {"", ||"#,
    12,
    "expected a string literal, ',' or '}' in the set literal, found '||'"
)]
#[case::set_double_comma(
    r#"foo in {"a",,}"#,
    12,
    "expected a string literal, ',' or '}' in the set literal, found ','"
)]
#[case::set_missing_comma(
    r#"foo in {"a" "b"}"#,
    12,
    r#"expected a string literal, ',' or '}' in the set literal, found string literal "b""#
)]
#[case::literal_first(
    "'b1' == b",
    0,
    r#"expected a label, 'has(', 'all()', 'global()', '!' or '(', found string literal "b1""#
)]
#[case::bang_alone(
    "!",
    1,
    "expected a label, 'has(', 'all()', 'global()', '!' or '(', found end of selector"
)]
#[case::and_dangling(
    "has(foo) &&",
    11,
    "expected a label, 'has(', 'all()', 'global()', '!' or '(', found end of selector"
)]
#[case::open_paren(
    "(",
    1,
    "expected a label, 'has(', 'all()', 'global()', '!' or '(', found end of selector"
)]
#[case::empty_parens(
    "()",
    1,
    "expected a label, 'has(', 'all()', 'global()', '!' or '(', found ')'"
)]
#[case::close_paren(
    ")",
    0,
    "expected a label, 'has(', 'all()', 'global()', '!' or '(', found ')'"
)]
#[case::unclosed_paren(
    r#"(a == "foo""#,
    11,
    "expected ')' to close the '(' at character 1, found end of selector"
)]
#[case::trailing(r#"a == "b")"#, 8, "unexpected content at end of selector: ')'")]
#[case::trailing_label(r#"a == "b" c"#, 9, "unexpected content at end of selector: label 'c'")]
#[case::all_unclosed("all(", 4, "expected ')' to close 'all(', found end of selector")]
#[case::global_unclosed("global(", 7, "expected ')' to close 'global(', found end of selector")]
#[case::has_empty("has()", 4, "expected a label name in 'has(…)', found ')'")]
#[case::has_unclosed("has(foo", 7, "expected ')' to close 'has(', found end of selector")]
#[case::has_two_labels("has(a b)", 6, "expected ')' to close 'has(', found 'b'")]
#[case::case_sensitive("ALL()", 3, "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'ALL', found '('")]
fn rejected(#[case] input: &str, #[case] offset: usize, #[case] message: &str) {
    let err = parse(input).expect_err(input);
    assert_eq!(err.message, message, "{input:?}");
    assert_eq!(err.offset, offset, "{input:?}: {message}");
    assert_eq!(err.to_string(), message);
}

#[test]
fn nesting_limit() {
    let ok = format!("{}has(a){}", "(".repeat(200), ")".repeat(200));
    assert_eq!(parse_ok(&ok).canonical(), "has(a)");
    let deep = format!("{}has(a){}", "(".repeat(201), ")".repeat(201));
    let err = parse(&deep).unwrap_err();
    assert_eq!(err.offset, 200);
    assert_eq!(err.message, "parentheses nested more than 200 deep");
    // Long flat chains do not nest.
    let flat = vec!["has(a)"; 10_000].join(" && ");
    assert!(parse_ok(&flat).canonical().starts_with("(has(a) && has(a)"));
}
