//! What the model and compiler tests share: a small hand-made cluster as YAML, and
//! the world it resolves to.

use std::collections::BTreeMap;

use policylab::diag::{Diagnostics, FileId, Span};
use policylab::inventory::{ClusterConfig, Inventory, NodeDef};
use policylab::manifest::load_documents;
use policylab::resolve::{resolve, World};
use policylab::yaml::{parse_stream, Origin};

/// A Pod manifest with pinned addresses (`ips` is the annotation's JSON list).
pub fn pod(ns: &str, name: &str, labels: &str, ips: &str, node: &str, ports: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{{labels}}}\n  annotations:\n    cni.projectcalico.org/ipAddrs: '{ips}'\nspec:\n  nodeName: {node}\n  containers:\n    - name: c\n      image: busybox\n      ports: [{ports}]\n"
    )
}

/// The pods of the small cluster: default/client and default/server (named port
/// http = TCP 8080) on node1 (dual-stack), other/remote on node2.
pub fn base_pods() -> String {
    let mut s = pod(
        "default",
        "client",
        "app: client",
        r#"["10.244.0.10","fd00::10"]"#,
        "node1",
        "",
    );
    s += &pod(
        "default",
        "server",
        "app: server",
        r#"["10.244.0.20","fd00::20"]"#,
        "node1",
        "{name: http, containerPort: 8080, protocol: TCP}",
    );
    s += &pod(
        "other",
        "remote",
        "app: remote",
        r#"["10.244.1.10"]"#,
        "node2",
        "",
    );
    s
}

/// A node with `eth0` only.
pub fn node(name: &str, ip: &str, labels: BTreeMap<String, String>) -> NodeDef {
    NodeDef {
        name: name.into(),
        span: Span::UNKNOWN,
        ip: ip.parse().expect("node ip"),
        ipv6: None,
        labels,
        interfaces: vec!["eth0".into()],
        ports: vec![],
    }
}

/// The world of the manifests in `text` on `nodes` (no outside hosts); the text
/// must load without a problem.
pub fn world(text: &str, nodes: Vec<NodeDef>) -> World {
    let (docs, errs) = parse_stream(text, FileId(0), Origin::default());
    assert!(errs.is_empty(), "{errs:?}");
    let mut diags = Diagnostics::new();
    let resources = load_documents(&docs, &mut diags);
    assert!(!diags.has_errors(), "{:?}", diags.sorted());
    let inv = Inventory {
        cluster: ClusterConfig::default(),
        nodes,
        outside: vec![],
        resources: resources
            .into_iter()
            .map(|r| (r.key(), std::sync::Arc::new(r)))
            .collect(),
    };
    resolve(&inv)
}
