use policylab::diag::{Diagnostics, Sources};

#[test]
fn bad_scenarios_render_their_diagnostics() {
    insta::glob!("bad_scenarios/*.yaml", |path| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let rel = path.strip_prefix(root).unwrap_or(path);
        let mut sources = Sources::new();
        let mut diags = Diagnostics::new();
        let loaded = policylab::scenario::load(&mut sources, rel, &mut diags);
        assert!(loaded.is_none(), "{} loaded without errors", rel.display());
        assert!(diags.has_errors());
        insta::assert_snapshot!(diags.render(&sources));
    });
}

#[test]
fn good_scenarios_load() {
    insta::glob!("scenarios/*.yaml", |path| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let rel = path.strip_prefix(root).unwrap_or(path);
        let mut sources = Sources::new();
        let mut diags = Diagnostics::new();
        let loaded = policylab::scenario::load(&mut sources, rel, &mut diags);
        assert!(loaded.is_some(), "{}", diags.render(&sources));
    });
}

/// Decision `unroutable-address`: `check` warns at each probe whose target address
/// nobody holds at that step, and only there; the scenario still loads.
#[test]
fn probes_to_addresses_nobody_holds_are_warned_about() {
    let rel = std::path::Path::new("tests/run_scenarios/unroutable-address.yaml");
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let loaded = policylab::scenario::load(&mut sources, rel, &mut diags);
    assert!(loaded.is_some(), "{}", diags.render(&sources));
    assert!(!diags.has_errors());
    let text = diags.render(&sources);
    let warned: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(": warning: no pod, node, outside host or service has the address"))
        .collect();
    let at = |line: u32, ip: &str| {
        format!("unroutable-address.yaml:{line}:12: warning: no pod, node, outside host or service has the address {ip} at this step")
    };
    let expected = [
        at(18, "192.0.2.77"),
        at(20, "192.0.2.77"),
        at(22, "192.0.2.77"),
        at(25, "10.244.2.99"),
        at(27, "10.244.1.99"),
        at(29, "203.0.113.50"),
    ];
    assert_eq!(warned.len(), expected.len(), "{text}");
    for (w, e) in warned.iter().zip(&expected) {
        assert!(w.contains(e.as_str()), "{w}\n  expected {e}");
    }
}
