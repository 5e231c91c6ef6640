//! Evaluation (docs/semantics.md#selector-evaluation) beyond the table, layered
//! labels (docs/semantics.md#profiles), and the rewrite helpers Calico applies to
//! namespace and service-account selectors (docs/semantics.md#rule-selectors).

use std::collections::{BTreeSet, HashMap};

use rstest::rstest;

use super::{labels, parse_ok};
use crate::selector::{parse, Expr, Labels, Layered, Selector};

#[test]
fn labels_impls_agree() {
    let sel = parse_ok("a == 'x' && !has(b)");
    let btree = labels(&[("a", "x")]);
    let hash: HashMap<String, String> = btree.clone().into_iter().collect();
    let index: indexmap::IndexMap<String, String> = btree.clone().into_iter().collect();
    assert!(sel.matches(&btree));
    assert!(sel.matches(&hash));
    assert!(sel.matches(&index));
    assert!(sel.matches_labels(&btree));
    assert!(!sel.matches(&()));
    assert!(parse_ok("a != 'x'").matches(&()));
}

/// Own labels win over inherited ones; inherited ones are consulted in order.
#[rstest]
#[case::own_wins("role == 'db'", true)]
#[case::own_hides_inherited("role == 'web'", false)]
#[case::first_profile("pcns.team == 'a'", true)]
#[case::first_profile_wins("pcns.team == 'b'", false)]
#[case::second_profile("pcsa.name == 'sa1'", true)]
#[case::has_inherited("has(pcns.team) && has(pcsa.name)", true)]
#[case::missing_everywhere("has(nope)", false)]
#[case::ne_missing("nope != 'x'", true)]
#[case::not_in_inherited("pcns.team not in {'a'}", false)]
fn layered(#[case] selector: &str, #[case] expected: bool) {
    let own = labels(&[("role", "db")]);
    let ns = labels(&[("pcns.team", "a"), ("role", "web")]);
    let sa = labels(&[("pcsa.name", "sa1"), ("pcns.team", "b")]);
    let inherited: [&dyn Labels; 2] = [&ns, &sa];
    let layered = Layered {
        own: &own,
        inherited: &inherited,
    };
    assert_eq!(parse_ok(selector).matches(&layered), expected, "{selector}");
}

#[test]
fn layered_empty_inheritance_is_own() {
    let own = labels(&[("a", "")]);
    let layered = Layered {
        own: &own,
        inherited: &[],
    };
    assert_eq!(layered.get("a"), Some(""));
    assert_eq!(layered.get("b"), None);
}

#[test]
fn short_circuit_order_does_not_matter_for_results() {
    let l = labels(&[("a", "1")]);
    assert!(parse_ok("has(a) || b == 'x'").matches(&l));
    assert!(!parse_ok("has(b) && a == '1'").matches(&l));
}

#[test]
fn global_is_true_as_plain_expression() {
    let sel = parse_ok("global()");
    assert!(sel.matches(&labels(&[])));
    assert!(sel.uses_global());
    assert!(parse_ok("has(a) || !global()").uses_global());
    assert!(!parse_ok("has(a) || !all()").uses_global());
}

#[test]
fn is_all_is_structural() {
    assert!(Selector::all().is_all());
    assert!(parse_ok("").is_all());
    assert!(parse_ok("((all()))").is_all());
    assert!(!parse_ok("all() && all()").is_all());
    assert!(!parse_ok("!all()").is_all());
    assert_eq!(Selector::default(), Selector::all());
}

#[test]
fn expr_shape_matches_upstream() {
    let set = |vs: &[&str]| vs.iter().map(|v| v.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        parse_ok("a in {'y', 'x', 'y'} || !b not in {}").expr(),
        &Expr::Or(vec![
            Expr::In("a".into(), set(&["x", "y"])),
            !Expr::NotIn("b".into(), set(&[])),
        ])
    );
    assert_eq!(
        parse_ok("(has(a) && has(b)) && has(c)").expr(),
        &Expr::And(vec![
            Expr::and(Expr::Has("a".into()), Expr::Has("b".into())),
            Expr::Has("c".into()),
        ])
    );
    assert_eq!(parse_ok("!(!has(a))").expr(), &!!Expr::Has("a".into()));
}

#[test]
fn and_is_parse_of_parenthesised_conjunction() {
    for (a, b) in [
        ("has(a)", "b == 'x'"),
        ("a == 'x' || b == 'y'", "c in {'z'}"),
        ("a == 'x' && b == 'y'", "!(c == 'z' && d == 'w')"),
        ("", "has(x)"),
    ] {
        let combined = Selector::and(parse_ok(a), parse_ok(b));
        let (a, b) = (if a.is_empty() { "all()" } else { a }, b);
        assert_eq!(combined, parse_ok(&format!("({a}) && ({b})")), "{a} / {b}");
    }
}

/// docs/semantics.md#rule-selectors: a namespaceSelector gets the `pcns.` prefix, then `all()` becomes
/// `has(projectcalico.org/namespace)` and `global()` becomes its negation.
#[rstest]
#[case("all()", "has(projectcalico.org/namespace)")]
#[case("", "has(projectcalico.org/namespace)")]
#[case("global()", "!has(projectcalico.org/namespace)")]
#[case("!global()", "has(projectcalico.org/namespace)")]
#[case("!(global())", "has(projectcalico.org/namespace)")]
#[case("!!all()", "has(projectcalico.org/namespace)")]
#[case("name == 'prod'", r#"pcns.name == "prod""#)]
#[case(
    "team in {'a','b'} || all()",
    r#"(pcns.team in {"a", "b"} || has(projectcalico.org/namespace))"#
)]
#[case("!(!has(x))", "has(pcns.x)")]
fn namespace_selector_rewrite(#[case] input: &str, #[case] expected: &str) {
    let ns = "projectcalico.org/namespace";
    let rewritten = parse_ok(input)
        .prefix_labels("pcns.")
        .replace_all(Expr::Has(ns.into()))
        .replace_global(!Expr::Has(ns.into()));
    assert_eq!(rewritten.canonical(), expected, "{input:?}");
    // What Calico does: print, replace text, parse again.
    let text = parse_ok(input)
        .prefix_labels("pcns.")
        .canonical()
        .replace("all()", &format!("has({ns})"))
        .replace("global()", &format!("!has({ns})"));
    assert_eq!(rewritten, parse_ok(&text), "{input:?} vs textual {text:?}");
}

#[test]
fn replace_does_not_descend_into_replacement() {
    let sel = parse_ok("all() || has(a)").replace_all(Expr::and(Expr::All, Expr::Global));
    assert_eq!(sel.canonical(), "((all() && global()) || has(a))");
}

#[test]
fn parse_error_is_std_error() {
    let err: Box<dyn std::error::Error> = Box::new(parse("a =").unwrap_err());
    assert_eq!(
        err.to_string(),
        "'=' is not an operator; did you mean '=='?"
    );
    assert_eq!("has(a)".parse::<Selector>().unwrap(), parse_ok("has(a)"));
}
