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
