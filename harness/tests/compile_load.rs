//! Kernel test of the nft policy compiler: every shipped scenario's compiled tables,
//! at every step, load into lab namespaces (replacing the previous step's table
//! atomically), and the JSON rendering lists exactly like the text rendering.

mod common;

use std::path::{Path, PathBuf};

use common::kernel_ready;
use policylab::compile::{compile, TABLE};
use policylab::diag::{Diagnostics, Sources};
use policylab::resolve::resolve;
use policylab::scenario;
use policylab_harness::netns::Lab;
use policylab_harness::nft;

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// A listing without chain and set comment lines (nft 1.0.6 drops those from JSON
/// input; see `policylab::nft` json docs).
fn without_object_comments(listing: &str) -> String {
    listing
        .lines()
        .filter(|l| !l.trim_start().starts_with("comment \""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_scenario_step_loads_and_json_matches_text() {
    if !kernel_ready("every_scenario_step_loads_and_json_matches_text") {
        return;
    }
    let files = scenario_files();
    assert!(
        files.len() >= 5,
        "expected the shipped scenarios, got {files:?}"
    );
    let lab = Lab::new("compile").expect("lab");
    let mut loaded = 0;
    for (fi, file) in files.iter().enumerate() {
        let mut sources = Sources::new();
        let mut diags = Diagnostics::new();
        let s = scenario::load(&mut sources, file, &mut diags)
            .unwrap_or_else(|| panic!("{}: {}", file.display(), diags.render(&sources)));
        let mut spaces = std::collections::BTreeMap::new();
        for (step, inv) in s.inventories().iter().enumerate() {
            let compiled = compile(&resolve(inv));
            assert!(!compiled.tables.is_empty(), "{}: no node", file.display());
            for (ni, (node, table)) in compiled.tables.iter().enumerate() {
                let (text_ns, json_ns) = spaces.entry(node.clone()).or_insert_with(|| {
                    (
                        lab.create(&format!("t{fi}n{ni}")).expect("namespace"),
                        lab.create(&format!("j{fi}n{ni}")).expect("namespace"),
                    )
                });
                let what = format!("{} step {} node {node}", file.display(), step + 1);
                nft::apply(text_ns, &table.to_string())
                    .unwrap_or_else(|e| panic!("{what}: text rejected: {e}\n{table}"));
                let json = table.to_nftables_json().to_string();
                nft::apply_json(json_ns, &json)
                    .unwrap_or_else(|e| panic!("{what}: JSON rejected: {e}\n{json}"));
                let text_list = nft::list_table(text_ns, TABLE).expect("list text");
                let json_list = nft::list_table(json_ns, TABLE).expect("list json");
                assert_eq!(
                    without_object_comments(&text_list),
                    without_object_comments(&json_list),
                    "{what}: JSON and text load differently"
                );
                assert!(
                    text_list.contains("chain filter-FORWARD"),
                    "{what}: {text_list}"
                );
                // Nothing but our one table in the namespace.
                let ruleset = nft::list_ruleset(text_ns).expect("list ruleset");
                assert_eq!(
                    ruleset.matches("\ntable ").count()
                        + usize::from(ruleset.starts_with("table ")),
                    1,
                    "{what}: {ruleset}"
                );
                loaded += 1;
            }
        }
    }
    eprintln!("loaded {loaded} compiled tables (text and JSON)");
    lab.teardown().expect("teardown");
}
