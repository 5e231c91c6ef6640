//! Property test (issue 9): whatever `policylab check` accepts loads into nftables.
//!
//! Each case is a valid scenario at the edges of what the formats allow: the longest
//! legal pod, host endpoint, service, policy and label names, long selectors, a dozen and more
//! named ports, overlapping network sets under one label (and a pod address inside
//! them), dual stack, and every ICMP form without `ipVersion`. The scenario must
//! load (the generator writes only valid input), and every node's table of every
//! step must load with `nft -f` into a scratch namespace the test creates (and
//! removes), first as a whole table, then as the in-place update of the step before
//! when the runner would make one. `POLICYLAB_LOAD_EDGE_CASES` sets the number of
//! cases (default 64, about 10 s; 300 took 52 s).

mod common;

use std::fmt::Write as _;

use common::kernel_ready;
use policylab::compile::compile;
use policylab::diag::{Diagnostics, Sources};
use policylab::resolve::resolve;
use policylab_harness::netns::Lab;
use policylab_harness::nft;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// A DNS-1123 label of exactly `len` characters (1..=63), from `seed`.
fn label(seed: &str, len: usize) -> String {
    let mut s: String = seed
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .collect();
    if s.is_empty() {
        s.push('a');
    }
    while s.len() < len {
        s.push_str("-x");
        s.push(char::from(b'a' + (s.len() % 26) as u8));
    }
    s.truncate(len);
    while s.ends_with('-') {
        s.pop();
        s.push('z');
    }
    s
}

/// One generated world, as the parts of a scenario.
#[derive(Debug, Clone)]
struct Edges {
    dual_stack: bool,
    pod_name_len: usize,
    policy_name_len: usize,
    service_name_len: usize,
    label_value_len: usize,
    selector_terms: usize,
    named_ports: usize,
    /// Nets of the two network sets sharing a label (indices into `NETS`).
    set_a: Vec<usize>,
    set_b: Vec<usize>,
    /// ICMP forms of the policy's rules (indices into `ICMP_FORMS`).
    icmp: Vec<usize>,
    nets_in_rule: Vec<usize>,
}

/// Overlapping prefixes: the pod range of node-1, nested and equal ones, the pods'
/// own addresses, and IPv6 ones.
const NETS: &[&str] = &[
    "10.244.1.0/24",
    "10.244.1.0/25",
    "10.244.1.0/26",
    "10.244.1.10/32",
    "10.244.1.11/32",
    "10.244.1.16/28",
    "10.244.1.128/25",
    "10.0.0.0/8",
    "192.0.2.0/24",
    "192.0.2.10/32",
    "fd00:10:244:1::/64",
    "fd00:10:244:1::a/128",
    "fd00::/16",
];

/// Every ICMP form of a rule without `ipVersion`.
const ICMP_FORMS: &[&str] = &[
    "protocol: ICMP",
    "protocol: ICMPv6",
    "protocol: ICMP\n            icmp: {type: 8}",
    "protocol: ICMP\n            icmp: {type: 3, code: 1}",
    "protocol: ICMPv6\n            icmp: {type: 128}",
    "protocol: ICMPv6\n            icmp: {type: 1, code: 4}",
    "protocol: ICMP\n            notICMP: {type: 3}",
    "protocol: ICMPv6\n            notICMP: {type: 128, code: 0}",
    "protocol: ICMP\n            icmp: {type: 8}\n            notICMP: {type: 8, code: 1}",
    "protocol: 1\n            icmp: {type: 0}",
    "protocol: 58\n            icmp: {type: 129}",
    "notProtocol: ICMP",
];

fn edges() -> impl Strategy<Value = Edges> {
    (
        any::<bool>(),
        (1usize..=253, 1usize..=200, 1usize..=63, 1usize..=63),
        (1usize..=8, 0usize..=20),
        (
            prop::collection::vec(0..NETS.len(), 1..6),
            prop::collection::vec(0..NETS.len(), 1..4),
        ),
        prop::collection::vec(0..ICMP_FORMS.len(), 1..6),
        prop::collection::vec(0..NETS.len(), 0..4),
    )
        .prop_map(
            |(
                dual_stack,
                (pod_name_len, policy_name_len, service_name_len, label_value_len),
                (selector_terms, named_ports),
                (set_a, set_b),
                icmp,
                nets_in_rule,
            )| Edges {
                dual_stack,
                pod_name_len,
                policy_name_len,
                service_name_len,
                label_value_len,
                selector_terms,
                named_ports,
                set_a,
                set_b,
                icmp,
                nets_in_rule,
            },
        )
}

/// A subdomain of exactly `len` characters (labels of at most 63 joined by dots).
fn subdomain(seed: &str, len: usize) -> String {
    let mut parts = Vec::new();
    let mut left = len;
    let mut i = 0;
    while left > 0 {
        let take = left.min(63);
        // A dot costs one character; the last label takes what is left.
        let take = if left > take {
            take.min(left - 2)
        } else {
            take
        };
        parts.push(label(&format!("{seed}{i}"), take.max(1)));
        left -= take.max(1);
        // The dot before the next label.
        left = left.saturating_sub(1);
        i += 1;
    }
    parts.join(".")
}

fn scenario(e: &Edges) -> String {
    let pod = subdomain("web", e.pod_name_len);
    let policy = label("policy", e.policy_name_len.min(63))
        + &"-y".repeat(e.policy_name_len.saturating_sub(63) / 2);
    let service = {
        // A DNS-1035 label: starts with a letter.
        let mut s = label("svc", e.service_name_len);
        s.replace_range(0..1, "s");
        s
    };
    let value = label("value", e.label_value_len);
    let mut labels = String::new();
    let mut selector = Vec::new();
    for i in 0..e.selector_terms {
        let key = format!("app.kubernetes.io/{}", label(&format!("key{i}"), 40 + i));
        let _ = write!(labels, "{key}: {value}, ");
        selector.push(format!("{key} == '{value}'"));
    }
    // The API takes selectors of at most 1,024 characters: as many terms as fit.
    while selector.len() > 1 && selector.join(" && ").len() > 1024 {
        selector.pop();
    }
    let mut ports = String::new();
    let mut port_names = Vec::new();
    for i in 0..e.named_ports {
        let name = label(&format!("p{i}name"), 15);
        let proto = ["TCP", "UDP", "SCTP"][i % 3];
        let _ = writeln!(
            ports,
            "        - {{name: {name}, port: {}, protocol: {proto}}}",
            1000 + i
        );
        port_names.push(name);
    }
    let v6 = if e.dual_stack {
        "  podCIDRv6: fd00:10:244::/56\n"
    } else {
        ""
    };
    // Each list is a set (the API rejects duplicates): each net once.
    let nets = |ix: &[usize]| -> String {
        ix.iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|i| NETS[*i])
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rules = String::new();
    for i in &e.icmp {
        let _ = writeln!(
            rules,
            "          - action: Allow\n            {}\n            source: {{selector: trusted == 'yes'}}",
            ICMP_FORMS[*i]
        );
    }
    // A rule's nets are of one family (libcalico-go's validator): those of the first.
    let rule_nets: Vec<usize> = e
        .nets_in_rule
        .iter()
        .copied()
        .filter(|i| NETS[*i].contains(':') == NETS[e.nets_in_rule[0]].contains(':'))
        .collect();
    if !rule_nets.is_empty() {
        let _ = writeln!(
            rules,
            "          - action: Deny\n            source: {{nets: [{}]}}\n            destination: {{notNets: [{}]}}",
            nets(&rule_nets),
            nets(&rule_nets)
        );
    }
    let dports = if port_names.is_empty() {
        String::new()
    } else {
        format!(
            "\n            destination: {{ports: [{}]}}",
            port_names.join(", ")
        )
    };
    let _ = writeln!(
        rules,
        "          - action: Allow\n            protocol: TCP\n            source:\n              selector: {}{dports}",
        selector.join(" && ")
    );
    format!(
        r#"name: load-edge
cluster:
{v6}  pods:
    - name: {pod}
      labels: {{{labels}trusted: "yes"}}
      ports:
        - {{name: http, port: 80, protocol: TCP}}
{ports}    - name: client
      labels: {{{labels}role: client}}
  services:
    - name: {service}
      selector: {{trusted: "yes"}}
      ports: [{{port: 80, targetPort: http, protocol: TCP}}]
steps:
  - apply: |
      apiVersion: projectcalico.org/v3
      kind: GlobalNetworkSet
      metadata: {{name: set-a, labels: {{trusted: "yes"}}}}
      spec:
        nets: [{set_a}]
      ---
      apiVersion: projectcalico.org/v3
      kind: GlobalNetworkSet
      metadata: {{name: set-b, labels: {{trusted: "yes"}}}}
      spec:
        nets: [{set_b}]
      ---
      apiVersion: projectcalico.org/v3
      kind: HostEndpoint
      metadata: {{name: {hep}, labels: {{trusted: "yes"}}}}
      spec:
        node: node-1
        interfaceName: eth0
        ports: [{{name: {hep_port}, port: 2000, protocol: TCP}}]
      ---
      apiVersion: projectcalico.org/v3
      kind: GlobalNetworkPolicy
      metadata: {{name: {policy}}}
      spec:
        selector: {sel}
        ingress:
{rules}        egress:
          - action: Allow
            destination: {{selector: trusted == 'yes'}}
  - delete: GlobalNetworkSet/set-b
  - probe: client -> {pod}:80/tcp
"#,
        set_a = nets(&e.set_a),
        set_b = nets(&e.set_b),
        sel = selector.join(" && "),
        hep = subdomain("hep", e.pod_name_len),
        hep_port = label("hostport", 15),
    )
}

#[test]
fn valid_worlds_at_the_edges_load_into_nftables() {
    if !kernel_ready("valid_worlds_at_the_edges_load_into_nftables") {
        return;
    }
    let cases: u32 = std::env::var("POLICYLAB_LOAD_EDGE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let lab = Lab::new("edges").expect("lab");
    let ns = lab.create("load").expect("scratch namespace");
    let dir = std::env::temp_dir().join(format!("policylab-load-edges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&edges(), |e| {
        let text = scenario(&e);
        let file = dir.join("edge.yaml");
        std::fs::write(&file, &text).expect("write scenario");
        let mut sources = Sources::new();
        let mut diags = Diagnostics::new();
        let Some(sc) = policylab::scenario::load(&mut sources, &file, &mut diags) else {
            return Err(TestCaseError::fail(format!(
                "the generated scenario does not load:\n{}\n{text}",
                diags.render(&sources)
            )));
        };
        let mut before: Option<policylab::compile::Compiled> = None;
        for (step, inv) in sc.inventories().iter().enumerate() {
            let compiled = compile(&resolve(inv));
            for (node, table) in &compiled.tables {
                let script = table.to_string();
                if let Err(err) = nft::apply(&ns, &script) {
                    return Err(TestCaseError::fail(format!(
                        "step {} node {node}: nft rejected the table: {err}\n{text}",
                        step + 1
                    )));
                }
                // The in-place update from the step before, on that step's table.
                let update = before
                    .as_ref()
                    .and_then(|b| b.tables.get(node))
                    .and_then(|old| table.set_update_script(old).map(|s| (old, s)));
                if let Some((old, script)) = update.filter(|(_, s)| !s.is_empty()) {
                    nft::apply(&ns, &old.to_string()).expect("the step before loaded");
                    if let Err(err) = nft::apply(&ns, &script) {
                        return Err(TestCaseError::fail(format!(
                            "step {} node {node}: nft rejected the in-place update: {err}\n{script}\n{text}",
                            step + 1
                        )));
                    }
                }
            }
            before = Some(compiled);
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    drop(ns);
    drop(lab);
    if let Err(e) = result {
        panic!("{e}");
    }
}
