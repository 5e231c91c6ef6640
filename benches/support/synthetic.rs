//! A generated world for the compiler benchmarks (shared by the core's
//! `benches/compile.rs` and the harness's `benches/compile_load.rs`):
//! `pods` pods in 10 namespaces on 2 nodes (every pod with a named port), and
//! `policies` policies over 4 tiers: GNPs with selector, network-set and named-port
//! rules, and namespaced NPs with namespace selectors and port rules.
//! `world_of_yaml` (two nodes) also loads the model benchmark's own world.

use std::collections::BTreeMap;
use std::fmt::Write;

use policylab::diag::{Diagnostics, FileId, Span};
use policylab::inventory::{ClusterConfig, Inventory, NodeDef};
use policylab::manifest::load_documents;
use policylab::resolve::{resolve, World};
use policylab::yaml::{parse_stream, Origin};

const NAMESPACES: usize = 10;

fn yaml(pods: usize, policies: usize) -> String {
    let mut s = String::new();
    for ns in 0..NAMESPACES {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{ns}, labels: {{team: t{}}}}}\n",
            ns % 3
        );
    }
    for i in 0..pods {
        let ns = i % NAMESPACES;
        let node = if i % 2 == 0 { "node1" } else { "node2" };
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  namespace: ns{ns}\n  labels: {{app: app{}, role: r{}}}\n  annotations:\n    cni.projectcalico.org/ipAddrs: '[\"10.244.{}.{}\"]'\nspec:\n  nodeName: {node}\n  containers:\n    - name: c\n      image: x\n      ports: [{{name: http, containerPort: 8080, protocol: TCP}}]\n",
            i % 20,
            i % 5,
            1 + i % 2,
            10 + i / 2
        );
    }
    s += "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: bad, labels: {deny: 'yes'}}\nspec: {nets: [192.0.2.0/24, 203.0.113.0/24, 198.51.100.7]}\n";
    for t in 0..4 {
        let _ = write!(
            s,
            "---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: tier{t}}}\nspec: {{order: {}, defaultAction: {}}}\n",
            (t + 1) * 100,
            if t % 2 == 0 { "Pass" } else { "Deny" }
        );
    }
    for p in 0..policies {
        let tier = p % 4;
        let app = p % 20;
        if p % 2 == 0 {
            let _ = write!(
                s,
                "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: tier{tier}.gnp{p}}}\nspec:\n  tier: tier{tier}\n  order: {p}\n  selector: app == 'app{app}'\n  types: [Ingress, Egress]\n  ingress:\n    - {{action: Deny, source: {{selector: deny == 'yes'}}}}\n    - {{action: Allow, protocol: TCP, source: {{selector: app == 'app{}'}}, destination: {{ports: [http, 9000]}}}}\n    - {{action: Pass, source: {{nets: [10.244.0.0/16]}}}}\n  egress:\n    - {{action: Deny, destination: {{selector: deny == 'yes'}}}}\n    - {{action: Pass}}\n",
                (app + 1) % 20
            );
        } else {
            let ns = p % NAMESPACES;
            let _ = write!(
                s,
                "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: tier{tier}.np{p}, namespace: ns{ns}}}\nspec:\n  tier: tier{tier}\n  selector: role == 'r{}'\n  ingress:\n    - {{action: Allow, protocol: TCP, source: {{namespaceSelector: team == 't{}'}}, destination: {{ports: [8080, 30000:30100]}}}}\n    - {{action: Pass, source: {{notSelector: app == 'app3'}}}}\n",
                p % 5,
                p % 3
            );
        }
    }
    s
}

/// The generated world.
pub fn world(pods: usize, policies: usize) -> World {
    world_of_yaml(&yaml(pods, policies))
}

/// The world of the manifests in `text` on two nodes, node1 (172.18.0.2) and node2
/// (172.18.0.3); the text must load without a problem.
pub fn world_of_yaml(text: &str) -> World {
    let (docs, errs) = parse_stream(text, FileId(0), Origin::default());
    assert!(errs.is_empty(), "{errs:?}");
    let mut diags = Diagnostics::new();
    let resources = load_documents(&docs, &mut diags);
    assert!(!diags.has_errors(), "{:?}", diags.sorted());
    let node = |name: &str, ip: &str| NodeDef {
        name: name.into(),
        span: Span::UNKNOWN,
        ip: ip.parse().expect("node address"),
        ipv6: None,
        labels: BTreeMap::new(),
        interfaces: vec!["eth0".into()],
        ports: vec![],
    };
    resolve(&Inventory {
        cluster: ClusterConfig::default(),
        nodes: vec![node("node1", "172.18.0.2"), node("node2", "172.18.0.3")],
        outside: vec![],
        resources: resources
            .into_iter()
            .map(|r| (r.key(), std::sync::Arc::new(r)))
            .collect(),
    })
}
