//! The lab a scenario needs (`lab::plan_for_states`): nodes, pods over every step,
//! servers, outside hosts, load-balancer routes.

use std::path::Path;

use policylab::diag::{Diagnostics, Sources};
use policylab::inventory::Inventory;
use policylab::lab::{self, LabPlan, ServerSpec};
use policylab::resolve::{resolve, World};
use policylab::scenario::{self, load_file};
use rstest::rstest;

fn load(text: &str) -> scenario::Scenario {
    let mut s = Sources::new();
    // In `tests/`, so the repository (its `.policylab-root`) is the root.
    let f = s.add(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenario.yaml"),
        text,
    );
    let mut d = Diagnostics::new();
    match load_file(&mut s, f, &mut d) {
        Some(sc) => sc,
        None => panic!("scenario did not load:\n{}", d.render(&s)),
    }
}

fn plan(sc: &scenario::Scenario) -> Result<LabPlan, lab::FromStatesError> {
    let mut states = vec![sc.inventory0.clone()];
    states.extend(sc.inventories());
    let worlds: Vec<World> = states.iter().map(resolve).collect();
    let all: Vec<(&Inventory, &World)> = states.iter().zip(&worlds).collect();
    lab::plan_for_states("t", &all)
}

#[rstest]
#[case("000-network-sets.yaml")]
#[case("001-external-ips.yaml")]
#[case("002-prednat-nlb.yaml")]
#[case("003-threat-feed.yaml")]
#[case("004-snort-feed.yaml")]
fn every_seed_scenario_has_a_valid_lab(#[case] file: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(file);
    let mut s = Sources::new();
    let mut d = Diagnostics::new();
    let sc = scenario::load(&mut s, &path, &mut d)
        .unwrap_or_else(|| panic!("{file} did not load:\n{}", d.render(&s)));
    let p = plan(&sc).expect("lab plan");
    assert!(!p.nodes.is_empty());
}

#[test]
fn pods_created_by_later_steps_are_in_the_lab_with_their_ports() {
    let text = r#"
name: t
cluster:
  nodes: [{name: node-1}, {name: node-2, ports: [{port: 22, protocol: TCP}]}]
  pods:
    - {name: a, labels: {app: a}, ports: [{port: 80, protocol: TCP}]}
outside:
  - {name: feeds, ip: 203.0.113.200, ports: [{port: 80, protocol: TCP}, {port: 9000, protocol: UDP}], files: {/x: MANIFEST/Cargo.toml}}
steps:
  - apply: |
      apiVersion: v1
      kind: Pod
      metadata: {name: b, namespace: default}
      spec:
        nodeName: node-2
        containers: [{name: c, image: x, ports: [{containerPort: 53, protocol: UDP}, {containerPort: 8080}]}]
      ---
      apiVersion: v1
      kind: Pod
      metadata: {name: hn, namespace: default}
      spec:
        nodeName: node-1
        hostNetwork: true
        containers: [{name: c, image: x, ports: [{containerPort: 9100}]}]
  - probe: a -> b:8080/tcp
"#;
    let sc = load(&text.replace("MANIFEST", ".."));
    let p = plan(&sc).expect("plan");
    let a = p.pod("default", "a").expect("a");
    assert_eq!(a.node, "node-1");
    assert_eq!(a.servers, vec![ServerSpec::tcp(80)]);
    let b = p.pod("default", "b").expect("b created by a step");
    assert_eq!(b.node, "node-2");
    assert_eq!(b.servers, vec![ServerSpec::udp(53), ServerSpec::tcp(8080)]);
    assert!(
        p.pod("default", "hn").is_none(),
        "host-networked pods are the node"
    );
    assert_eq!(
        p.node("node-1").expect("node-1").servers,
        vec![ServerSpec::tcp(9100)]
    );
    assert_eq!(
        p.node("node-2").expect("node-2").servers,
        vec![ServerSpec::tcp(22)]
    );
    assert_eq!(
        p.outside_host("feeds").expect("feeds").servers,
        vec![ServerSpec::udp(9000)],
        "port 80 of a file-serving host belongs to the feed server"
    );
    assert_eq!(
        p.node("node-2").expect("node-2").pod_cidrs,
        vec!["10.244.2.0/24".parse().expect("cidr")]
    );
}

#[test]
fn load_balancer_routes_follow_the_arrival_node() {
    let sc = load(
        r#"
name: t
cluster:
  nodes: [{name: node-1}, {name: node-2}]
  pods:
    - {name: web, node: node-2, labels: {app: web}, ports: [{port: 80, protocol: TCP}]}
  services:
    - name: lb
      type: LoadBalancer
      selector: {app: web}
      ports: [{port: 80, protocol: TCP}]
      loadBalancerIP: 198.51.100.80
steps:
  - patch:
      target: Service/default/lb
      merge: {spec: {externalTrafficPolicy: Local}}
"#,
    );
    let p = plan(&sc).expect("plan");
    assert_eq!(p.load_balancers.len(), 1);
    assert_eq!(
        p.load_balancers[0].node, "node-1",
        "Cluster: the first node"
    );
    let after = policylab::resolve::resolve(&sc.inventories()[0]);
    let routes = lab::load_balancer_routes(&after);
    assert_eq!(routes.len(), 1);
    assert_eq!(
        routes[0].node, "node-2",
        "Local: the first node with an endpoint"
    );
}

/// A pod that moves to another node is rejected when the scenario loads, at the
/// step that moves it (decision `pod-stays-on-its-node`), so a lab is never planned
/// for it.
#[test]
fn a_pod_that_moves_to_another_node_is_an_error() {
    let text = r#"
name: t
cluster:
  nodes: [{name: node-1}, {name: node-2}]
steps:
  - apply: |
      apiVersion: v1
      kind: Pod
      metadata: {name: m, namespace: default}
      spec: {nodeName: node-1, containers: [{name: c, image: x}]}
  - apply: |
      apiVersion: v1
      kind: Pod
      metadata: {name: m, namespace: default}
      spec: {nodeName: node-2, containers: [{name: c, image: x}]}
"#;
    let mut s = Sources::new();
    let f = s.add("t/scenario.yaml", text);
    let mut d = Diagnostics::new();
    assert!(load_file(&mut s, f, &mut d).is_none(), "loaded");
    let rendered = d.render(&s);
    assert!(
        rendered.starts_with(
            "t/scenario.yaml:15:24: pod default/m was on node node-1 in an earlier step and would move to node node-2"
        ),
        "{rendered}"
    );
}
