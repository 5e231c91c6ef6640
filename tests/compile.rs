//! The nft policy compiler over the shipped scenarios: snapshots of the compiled
//! tables (the exact `nft -f` text the harness loads) and their legends.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use policylab::compile::{compile, Compiled};
use policylab::diag::{Diagnostics, Sources};
use policylab::resolve::{resolve, World};
use policylab::scenario;

/// Every step's world of a scenario file.
pub fn worlds(path: &Path) -> Vec<World> {
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let s = scenario::load(&mut sources, path, &mut diags)
        .unwrap_or_else(|| panic!("{}: {}", path.display(), diags.render(&sources)));
    s.inventories().iter().map(resolve).collect()
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Every table of a compilation, then the legend, as one text.
fn render(c: &Compiled) -> String {
    let mut out = String::new();
    for (node, table) in &c.tables {
        let _ = writeln!(out, "# node {node}\n{table}");
    }
    let _ = writeln!(out, "# legend");
    for (prefix, tag) in &c.legend {
        let _ = writeln!(
            out,
            "{prefix} {} {:?} {}{}",
            tag.node,
            tag.stage,
            tag.decider,
            if tag.log_rule { " (log rule)" } else { "" }
        );
    }
    out
}

#[test]
fn scenarios_at_their_last_step() {
    insta::glob!("../scenarios", "*.yaml", |path| {
        let worlds = worlds(path);
        let last = worlds.last().expect("a scenario has steps");
        insta::assert_snapshot!(render(&compile(last)));
    });
}

#[test]
fn seed_002_with_host_endpoint_and_cluster_policy() {
    let worlds = worlds(&scenarios_dir().join("002-prednat-nlb.yaml"));
    // After step 4 (deny-nodeports applied): the public host endpoint's pre-DNAT
    // chain, and the LoadBalancer still under externalTrafficPolicy Cluster
    // (masquerade mark).
    insta::assert_snapshot!(render(&compile(&worlds[3])));
}
