//! Differential test: random tiers and policies (Calico GlobalNetworkPolicy and
//! NetworkPolicy, Kubernetes NetworkPolicy; selectors over a small label alphabet,
//! nets, ports, protocols, Allow/Deny/Pass/Log, order ties, tier default actions)
//! over one fixed topology (2 nodes, 4 pods, 1 outside host). For every case the
//! world is compiled and loaded into ONE lab built for the whole run (only the nft
//! tables change), a fixed matrix of flows is probed, and the kernel's verdict and
//! deciding rule must equal the model's. On failure proptest shrinks to a minimal
//! policy set, printed with both traces.
//!
//! `POLICYLAB_DIFF_CASES` sets the number of cases (default 250).
//!
//! Flows from an endpoint to its own address are left out: the kernel delivers
//! them inside the sender's namespace (`lo`), so no node policy sees them, while
//! the model polices them like any other flow (a pod's egress and ingress, an
//! outside host "unroutable"). Calico behaves like the kernel here; the model's
//! answer for such flows is a known difference, reported to the model's owners.
//! Hairpin flows (a pod through a service to itself) are in: kube-proxy
//! masquerades them to the node's address, and so do the model and the compiler
//! (decision `service-hairpin`).

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;

use policylab::diag::{Diagnostics, Sources};
use policylab::run::{disagreements, Plan};
use policylab_harness::runner::{KernelLab, RunnerOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// The fixed part of every case's scenario.
const TOPOLOGY: &str = r#"
cluster:
  nodes:
    - {name: node-1, ip: 172.18.0.11}
    - {name: node-2, ip: 172.18.0.12}
  namespaces:
    - {name: other, labels: {team: blue}}
  pods:
    - {name: a, node: node-1, labels: {app: web, tier: fe}, ports: [{port: 80, protocol: TCP}]}
    - {name: b, node: node-1, labels: {app: db}, ports: [{port: 80, protocol: TCP}, {port: 81, protocol: TCP}, {port: 53, protocol: UDP}]}
    - {name: c, namespace: other, node: node-2, labels: {app: web}, ports: [{port: 80, protocol: TCP}]}
    - {name: d, node: node-2, ports: [{port: 80, protocol: TCP}]}
  services:
    - {name: db, namespace: default, type: NodePort, selector: {app: db}, ports: [{port: 8081, targetPort: 81, nodePort: 30081, protocol: TCP}]}
outside:
  - {name: laptop, ip: 198.51.100.7, ports: [{port: 80, protocol: TCP}]}
"#;

// 300 ms: allowed probes answer in milliseconds, drops by policy end at their NFLOG
// event; only a drop without one (an outside host to a cluster IP: unroutable) waits.
const MATRIX: &str = r#"
  - matrix:
      timeout: 300ms
      from: [default/a, default/b, other/c, default/d, laptop]
      to: [default/a:80/tcp, default/a:81/tcp, default/b:81/tcp, default/b:53/udp, other/c:80/tcp, default/d:80/tcp, laptop:80/tcp, svc/default/db:8081/tcp, node-2:30081/tcp, other/c/icmp]
"#;

const SELECTORS: &[&str] = &[
    "all()",
    "app == 'web'",
    "app == 'db'",
    "app != 'web'",
    "has(tier)",
    "!has(app)",
    "app in {'web', 'db'}",
];
const NETS: &[&str] = &[
    "10.244.1.0/24",
    "10.244.2.10/32",
    "198.51.100.0/24",
    "172.18.0.0/24",
    "0.0.0.0/0", // last: not used in notNets
];

#[derive(Debug, Clone)]
enum Peer {
    Any,
    Selector(&'static str),
    Nets(&'static str),
    NotNets(&'static str),
    NamespaceSelector(&'static str),
}

#[derive(Debug, Clone)]
struct RuleSpec {
    action: &'static str,
    tcp_port: Option<Option<u16>>,
    peer: Peer,
    /// The peer is the source (else the destination).
    peer_is_source: bool,
}

#[derive(Debug, Clone)]
struct PolicySpec {
    /// 0 GlobalNetworkPolicy, 1 Calico NetworkPolicy, 2 Kubernetes NetworkPolicy.
    kind: u8,
    namespace: &'static str,
    /// Index into the tiers (`None`: default).
    tier: Option<usize>,
    order: Option<u8>,
    selector: &'static str,
    ingress: Option<Vec<RuleSpec>>,
    egress: Option<Vec<RuleSpec>>,
}

#[derive(Debug, Clone)]
struct TierSpec {
    order: Option<u8>,
    pass_at_end: bool,
}

#[derive(Debug, Clone)]
struct Case {
    tiers: Vec<TierSpec>,
    policies: Vec<PolicySpec>,
}

fn peer() -> impl Strategy<Value = Peer> {
    prop_oneof![
        2 => Just(Peer::Any),
        3 => proptest::sample::select(SELECTORS).prop_map(Peer::Selector),
        2 => proptest::sample::select(NETS).prop_map(Peer::Nets),
        // Calico rejects a catch-all CIDR in notNets.
        1 => proptest::sample::select(&NETS[..NETS.len() - 1]).prop_map(Peer::NotNets),
        1 => proptest::sample::select(&["team == 'blue'", "all()", "!has(team)"][..])
            .prop_map(Peer::NamespaceSelector),
    ]
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    (
        proptest::sample::select(&["Allow", "Deny", "Pass", "Log"][..]),
        proptest::option::of(proptest::option::of(proptest::sample::select(
            &[80u16, 81][..],
        ))),
        peer(),
        any::<bool>(),
    )
        .prop_map(|(action, tcp_port, peer, peer_is_source)| RuleSpec {
            action,
            tcp_port,
            peer,
            peer_is_source,
        })
}

fn rules() -> impl Strategy<Value = Option<Vec<RuleSpec>>> {
    proptest::option::of(proptest::collection::vec(rule(), 0..3))
}

fn policy(tiers: usize) -> impl Strategy<Value = PolicySpec> {
    (
        0u8..3,
        proptest::sample::select(&["default", "other"][..]),
        proptest::option::of(0..tiers.max(1)),
        proptest::option::of(proptest::sample::select(&[1u8, 2, 5][..])),
        proptest::sample::select(SELECTORS),
        rules(),
        rules(),
    )
        .prop_map(
            move |(kind, namespace, tier, order, selector, ingress, egress)| {
                let (ingress, egress) = match (ingress, egress) {
                    (None, None) => (Some(Vec::new()), None),
                    x => x,
                };
                PolicySpec {
                    kind,
                    namespace,
                    tier: if tiers == 0 || kind == 2 { None } else { tier },
                    order,
                    selector,
                    ingress,
                    egress,
                }
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    proptest::collection::vec(
        (
            proptest::option::of(proptest::sample::select(&[10u8, 20][..])),
            any::<bool>(),
        )
            .prop_map(|(order, pass_at_end)| TierSpec { order, pass_at_end }),
        0..3,
    )
    .prop_flat_map(|tiers| {
        let n = tiers.len();
        (Just(tiers), proptest::collection::vec(policy(n), 1..5))
    })
    .prop_map(|(tiers, policies)| Case { tiers, policies })
}

/// A Calico rule in YAML (flow style).
fn calico_rule(r: &RuleSpec) -> String {
    let mut parts = vec![format!("action: {}", r.action)];
    let mut destination = Vec::new();
    if let Some(port) = r.tcp_port {
        parts.push("protocol: TCP".into());
        if let Some(p) = port {
            destination.push(format!("ports: [{p}]"));
        }
    }
    let peer = match r.peer {
        Peer::Any => None,
        Peer::Selector(s) => Some(format!("selector: \"{s}\"")),
        Peer::Nets(n) => Some(format!("nets: [{n}]")),
        Peer::NotNets(n) => Some(format!("notNets: [{n}]")),
        Peer::NamespaceSelector(s) => Some(format!("namespaceSelector: \"{s}\"")),
    };
    if let Some(p) = peer {
        if r.peer_is_source {
            parts.push(format!("source: {{{p}}}"));
        } else {
            destination.insert(0, p);
        }
    }
    if !destination.is_empty() {
        parts.push(format!("destination: {{{}}}", destination.join(", ")));
    }
    format!("{{{}}}", parts.join(", "))
}

/// A Kubernetes NetworkPolicy peer list entry for a rule (only Allow exists there).
fn k8s_peer(r: &RuleSpec) -> Option<String> {
    match r.peer {
        Peer::Any => None,
        Peer::Selector(_) => Some("podSelector: {matchLabels: {app: web}}".into()),
        Peer::Nets(n) | Peer::NotNets(n) => Some(format!("ipBlock: {{cidr: {n}}}")),
        Peer::NamespaceSelector(_) => Some("namespaceSelector: {matchLabels: {team: blue}}".into()),
    }
}

fn manifests(c: &Case) -> String {
    let mut out = String::new();
    for (i, t) in c.tiers.iter().enumerate() {
        let _ = write!(
            out,
            "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: t{i}}}\nspec: {{"
        );
        let mut spec = Vec::new();
        if let Some(o) = t.order {
            spec.push(format!("order: {o}"));
        }
        if t.pass_at_end {
            spec.push("defaultAction: Pass".into());
        }
        let _ = writeln!(out, "{}}}\n---", spec.join(", "));
    }
    for (i, p) in c.policies.iter().enumerate() {
        let tier = p.tier.map(|t| format!("t{t}"));
        let name = match &tier {
            Some(t) => format!("{t}.p{i}"),
            None => format!("p{i}"),
        };
        if p.kind == 2 {
            // Kubernetes NetworkPolicy: podSelector by label, Allow rules only.
            let mut types = Vec::new();
            let mut body = String::new();
            for (dir, rules, key) in [("Ingress", &p.ingress, "from"), ("Egress", &p.egress, "to")]
            {
                let Some(rules) = rules else { continue };
                types.push(dir);
                let _ = writeln!(body, "  {}:", dir.to_lowercase());
                if rules.is_empty() {
                    body.truncate(body.len() - 1);
                    body.push_str(" []\n");
                }
                for r in rules {
                    let mut parts = Vec::new();
                    if let Some(peer) = k8s_peer(r) {
                        parts.push(format!("{key}: [{{{peer}}}]"));
                    }
                    if let Some(port) = r.tcp_port {
                        match port {
                            Some(n) => parts.push(format!("ports: [{{protocol: TCP, port: {n}}}]")),
                            None => parts.push("ports: [{protocol: TCP}]".into()),
                        }
                    }
                    let _ = writeln!(body, "    - {{{}}}", parts.join(", "));
                }
            }
            let selector = match p.selector {
                "all()" => "{}".to_string(),
                _ => "{matchLabels: {app: web}}".to_string(),
            };
            let _ = writeln!(
                out,
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {}}}\nspec:\n  podSelector: {selector}\n  policyTypes: [{}]\n{body}---",
                p.namespace,
                types.join(", ")
            );
            continue;
        }
        let (kind, ns) = if p.kind == 0 {
            ("GlobalNetworkPolicy", String::new())
        } else {
            ("NetworkPolicy", format!(", namespace: {}", p.namespace))
        };
        let _ = writeln!(
            out,
            "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {{name: {name}{ns}}}\nspec:"
        );
        if let Some(t) = &tier {
            let _ = writeln!(out, "  tier: {t}");
        }
        if let Some(o) = p.order {
            let _ = writeln!(out, "  order: {o}");
        }
        let _ = writeln!(out, "  selector: \"{}\"", p.selector);
        let mut types = Vec::new();
        for (dir, rules) in [("Ingress", &p.ingress), ("Egress", &p.egress)] {
            let Some(rules) = rules else { continue };
            types.push(dir);
            let list: Vec<String> = rules.iter().map(calico_rule).collect();
            let _ = writeln!(out, "  {}: [{}]", dir.to_lowercase(), list.join(", "));
        }
        let _ = writeln!(out, "  types: [{}]\n---", types.join(", "));
    }
    out
}

fn scenario_text(c: &Case) -> String {
    let m = manifests(c);
    let m = m.trim_end().trim_end_matches("---").trim_end();
    let mut s = format!("name: differential\n{TOPOLOGY}steps:\n");
    if !m.trim().is_empty() {
        s.push_str("  - apply: |\n");
        for line in m.lines() {
            let _ = writeln!(s, "      {line}");
        }
    }
    s.push_str(MATRIX);
    s
}

fn plan_of(text: &str, dir: &std::path::Path, n: usize) -> Result<Plan, String> {
    let path: PathBuf = dir.join(format!("case-{n}.yaml"));
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(&mut sources, &path, &mut diags);
    let _ = std::fs::remove_file(&path);
    match sc {
        Some(sc) if !diags.has_errors() => Ok(policylab::run::plan(&sc, &sources)),
        _ => Err(diags.render(&sources)),
    }
}

#[test]
fn kernel_and_model_agree_on_random_policies() {
    if !common::kernel_ready("kernel_and_model_agree_on_random_policies") {
        return;
    }
    let cases: u32 = std::env::var("POLICYLAB_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let dir = std::env::temp_dir().join(format!("policylab-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The lab is built once, from the topology with no policy.
    let empty = plan_of(
        &scenario_text(&Case {
            tiers: vec![],
            policies: vec![],
        }),
        &dir,
        0,
    )
    .expect("the topology loads");
    let states: Vec<_> = empty
        .steps
        .iter()
        .map(|s| (s.inventory.as_ref(), s.world.as_ref()))
        .collect();
    let lab_plan = policylab::lab::plan_for_states("diff", &states).expect("lab plan");
    let lab = std::cell::RefCell::new(
        rt.block_on(KernelLab::build(&lab_plan, &[], &RunnerOptions::default()))
            .expect("lab builds"),
    );
    let counter = std::cell::Cell::new(0usize);
    // (allowed, denied, refused, logged, decided by a policy rule) probes seen.
    let seen_kinds = std::cell::Cell::new([0usize; 5]);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let result = runner.run(&case(), |c| {
        counter.set(counter.get() + 1);
        let text = scenario_text(&c);
        let plan = plan_of(&text, &dir, counter.get()).map_err(|d| {
            TestCaseError::fail(format!("generated an invalid scenario:\n{d}\n{text}"))
        })?;
        let step = plan.steps.last().expect("a matrix step");
        let mut lab = lab.borrow_mut();
        rt.block_on(lab.apply(step.world.clone()))
            .map_err(|e| TestCaseError::fail(format!("loading the policy: {e}")))?;
        // A flow to the sender's own address never leaves its namespace (the kernel
        // delivers it on `lo`); see the module docs. Hairpins through a service
        // are compared like every other flow.
        let probes: Vec<_> = step
            .probes
            .iter()
            .filter(|p| p.flow.src_ip != p.flow.dst_ip)
            .collect();
        let flows: Vec<_> = probes.iter().map(|p| &p.flow).collect();
        let seen = rt
            .block_on(lab.probe(&flows))
            .map_err(|e| TestCaseError::fail(format!("probing: {e}")))?;
        let mut kinds = seen_kinds.get();
        for k in &seen {
            let o = &k.observation;
            kinds[match o.outcome {
                policylab::run::Outcome::Allow => 0,
                policylab::run::Outcome::Deny => 1,
                policylab::run::Outcome::Refused => 2,
            }] += 1;
            kinds[3] += usize::from(o.logged);
            kinds[4] += usize::from(matches!(
                o.decider,
                Some(policylab::model::Decider::Rule { .. })
            ));
        }
        seen_kinds.set(kinds);
        let mut report = String::new();
        for (p, k) in probes.iter().zip(&seen) {
            let d = disagreements(&p.prediction, &k.observation);
            if d.is_empty() {
                continue;
            }
            let _ = writeln!(report, "{} -> {}:", p.source, p.target);
            for x in d {
                let _ = writeln!(report, "  {x}");
            }
            let _ = writeln!(report, " model:");
            for l in policylab::model::explain(&step.world, &p.flow.model_flow()).lines() {
                let _ = writeln!(report, "  {l}");
            }
            let _ = writeln!(report, " kernel:\n{}", k.trace());
        }
        if report.is_empty() {
            Ok(())
        } else {
            Err(TestCaseError::fail(format!(
                "{report}\nmanifests:\n{}",
                manifests(&c)
            )))
        }
    });
    let lab = lab.into_inner();
    let _ = lab.teardown();
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => {
            let [allowed, denied, refused, logged, by_rule] = seen_kinds.get();
            eprintln!(
                "{cases} cases: {allowed} allowed, {denied} denied, {refused} refused, {logged} logged, {by_rule} decided by a policy rule"
            );
            if cases >= 50 {
                // The generator reaches every kind of verdict.
                assert!(allowed > 0 && denied > 0 && refused > 0 && logged > 0 && by_rule > 0);
            }
        }
        Err(TestError::Fail(reason, minimal)) => panic!(
            "the kernel and the model disagree; minimal case:\n{}\n{reason}",
            manifests(&minimal)
        ),
        Err(e) => panic!("{e}"),
    }
}
