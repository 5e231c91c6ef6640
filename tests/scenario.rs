use policylab::diag::{Diagnostics, Sources};
use policylab::inventory::IP_ADDRS_ANNOTATION;
use policylab::scenario::short::{
    parse_dest, parse_duration, parse_short_probe, DestRef, TargetRef,
};
use policylab::scenario::{load_file, ProbeProtocol, Step};
use rstest::rstest;

/// Loads `text` as `t/scenario.yaml`; returns Ok(summary) or Err(rendered diagnostics).
fn load(text: &str) -> Result<policylab::scenario::Scenario, String> {
    let mut s = Sources::new();
    let f = s.add("t/scenario.yaml", text);
    let mut d = Diagnostics::new();
    load_file(&mut s, f, &mut d).ok_or_else(|| d.render(&s))
}

fn check_short(input: &str, expected: &str) {
    let got = match parse_short_probe(input) {
        Ok(p) => format!("{} -> {}", p.from, fmt_dest(&p.dest)),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expected, "{input}");
}

fn fmt_dest(d: &DestRef) -> String {
    let t = match &d.target {
        TargetRef::Name(n) => n.clone(),
        TargetRef::Service { namespace, name } => format!("svc {namespace}/{name}"),
        TargetRef::Ip(ip) => format!("ip {ip}"),
    };
    format!("{t} port={:?} proto={:?}", d.port, d.protocol)
}

#[rstest]
#[case(
    "red -> suspicious:80/http",
    "red -> suspicious port=Some(80) proto=Some(Http)"
)]
#[case(
    "default/red -> default/blue:80/tcp",
    "default/red -> default/blue port=Some(80) proto=Some(Tcp)"
)]
#[case(
    "red -> svc/default/web:80",
    "red -> svc default/web port=Some(80) proto=None"
)]
#[case("red -> svc/web", "red -> svc default/web port=None proto=None")]
#[case(
    "laptop -> node-1:31024",
    "laptop -> node-1 port=Some(31024) proto=None"
)]
#[case("red -> [fd00::1]:80", "red -> ip fd00::1 port=Some(80) proto=None")]
#[case("red -> fd00::1/icmp", "red -> ip fd00::1 port=None proto=Some(Icmp)")]
#[case(
    "red -> 5.196.58.96:443/udp",
    "red -> ip 5.196.58.96 port=Some(443) proto=Some(Udp)"
)]
#[case("red => blue", "error: expected `FROM -> TO[:PORT][/PROTO]` (for example `default/red -> web:80/http`), found \"red => blue\"")]
#[case("red -> blue:0", "error: `0` is not a port (1-65535)")]
#[case(" -> blue", "error: missing the source before `->`")]
#[case("red -> ", "error: missing the target after `->`")]
#[case("a/b/c -> blue", "error: `a/b/c` is not a source: expected a pod (`ns/name` or `name`), an outside host or a node")]
#[case(
    "red -> [fd00::1",
    "error: `[fd00::1`: missing `]` after the IPv6 address"
)]
fn probe_short_form(#[case] input: &str, #[case] expected: &str) {
    check_short(input, expected);
}

#[rstest]
#[case("1s", Some(1_000))]
#[case("500ms", Some(500))]
#[case("1h30m", Some(5_400_000))]
#[case("1.5s", Some(1_500))]
#[case("0", Some(0))]
#[case("1 day", None)]
#[case("10", None)]
#[case("", None)]
fn durations(#[case] input: &str, #[case] millis: Option<u128>) {
    assert_eq!(
        parse_duration(input).ok().map(|d| d.as_millis()),
        millis,
        "{input}"
    );
}

#[test]
fn dest_protocol_suffix_always_wins() {
    assert_eq!(
        parse_dest("ns/tcp").map(|d| d.protocol),
        Ok(Some(ProbeProtocol::Tcp))
    );
}

const BASE: &str = "name: t\ncluster:\n  nodes: [{name: node-1}, {name: node-2}]\n  pods:\n    - {name: red}\n    - {name: blue, node: node-2}\n    - {name: web, replicas: 2}\n  services:\n    - {name: lb, type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}\n";

fn pod_ips(s: &policylab::scenario::Scenario, ns: &str, name: &str) -> String {
    let key = policylab::manifest::ResourceKey {
        kind: policylab::manifest::Kind::Pod,
        namespace: Some(ns.into()),
        name: name.into(),
    };
    s.inventory0.resources[&key]
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(IP_ADDRS_ANNOTATION))
        .cloned()
        .unwrap_or_default()
}

#[rstest]
#[case("red", r#"["10.244.1.10"]"#)]
#[case("blue", r#"["10.244.2.10"]"#)]
#[case("web-0", r#"["10.244.1.11"]"#)]
#[case("web-1", r#"["10.244.1.12"]"#)]
fn allocation(#[case] pod: &str, #[case] ips: &str) {
    let s = load(&format!("{BASE}steps:\n  - advance: 1s\n")).unwrap();
    assert_eq!(pod_ips(&s, "default", pod), ips);
    assert_eq!(s.inventory0.nodes[1].ip.to_string(), "172.18.0.12");
}

/// Decision `ipam-blocks`: with `cluster.blockSize`, a node claims the lowest free
/// block of `podCIDR` when its blocks are full, and a pod gets the lowest free
/// address (ordinal) of its node's blocks, in block order (Calico IPAM's
/// `autoAssign`: affine blocks first, then a new block; ordinals from 0).
#[rstest]
// node-1 fills 10.244.0.0/26 .. 10.244.1.64/26 (333 = 5 x 64 + 13).
#[case("web-0", r#"["10.244.0.0"]"#)]
#[case("web-64", r#"["10.244.0.64"]"#)]
#[case("web-332", r#"["10.244.1.76"]"#)]
// node-2 starts at the next free block, not in node-1's partly used one.
#[case("api-0", r#"["10.244.1.128"]"#)]
#[case("api-332", r#"["10.244.2.204"]"#)]
#[case("db-0", r#"["10.244.3.0"]"#)]
#[case("db-333", r#"["10.244.4.77"]"#)]
fn ipam_blocks(#[case] pod: &str, #[case] ips: &str) {
    static SCALE: std::sync::OnceLock<policylab::scenario::Scenario> = std::sync::OnceLock::new();
    let s = SCALE.get_or_init(|| {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/scale/pods-1000-on-3-nodes.yaml"),
        )
        .expect("scale scenario");
        load(&text).unwrap()
    });
    assert_eq!(pod_ips(s, "default", pod), ips);
}

/// Blocks interleave as nodes fill in turn; a deleted pod's address is reused, and
/// the block stays with its node.
#[test]
fn ipam_blocks_interleave_and_stay_with_their_node() {
    let text = "name: t\ncluster:\n  podCIDR: 10.250.0.0/28\n  blockSize: 30\n  nodes: [{name: node-1}, {name: node-2}]\n  pods:\n    - {name: a, replicas: 5}\n    - {name: b, node: node-2}\n    - {name: c}\nsteps:\n  - delete: Pod/default/a-1\n  - create: |\n      apiVersion: v1\n      kind: Pod\n      metadata: {name: d}\n      spec: {nodeName: node-2, containers: [{name: m, image: x}]}\n";
    let s = load(text).unwrap();
    // a-0..a-3 fill 10.250.0.0/30, a-4 claims 10.250.0.4/30; b (node-2) claims
    // 10.250.0.8/30; c (node-1) goes into node-1's second block.
    for (pod, ip) in [
        ("a-0", "10.250.0.0"),
        ("a-3", "10.250.0.3"),
        ("a-4", "10.250.0.4"),
        ("b", "10.250.0.8"),
        ("c", "10.250.0.5"),
    ] {
        assert_eq!(pod_ips(&s, "default", pod), format!(r#"["{ip}"]"#), "{pod}");
    }
    // d on node-2 after a-1 is gone: a-1's address is in node-1's block, so d
    // takes node-2's next free address.
    let states = s.inventories();
    let last = states.last().expect("states");
    let key = policylab::manifest::ResourceKey {
        kind: policylab::manifest::Kind::Pod,
        namespace: Some("default".into()),
        name: "d".into(),
    };
    let d = last.resources[&key]
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(IP_ADDRS_ANNOTATION))
        .cloned();
    assert_eq!(d.as_deref(), Some(r#"["10.250.0.9"]"#));
    // The pool has 4 blocks: a fifth node-1 block does not exist.
    let full = "name: t\ncluster:\n  podCIDR: 10.250.0.0/29\n  blockSize: 30\n  pods:\n    - {name: a, replicas: 9}\nsteps:\n  - advance: 1s\n";
    let err = load(full).unwrap_err();
    assert!(
        err.contains("has no free pod address left for node node-1"),
        "{err}"
    );
}

#[rstest]
#[case("blockSize: 19", "`blockSize` must be a prefix length from 20 to 32")]
#[case("blockSize: 33", "`blockSize` must be a prefix length from 20 to 32")]
#[case(
    "blockSize: 26\n  podCIDR: 10.244.0.0/27",
    "`podCIDR` must hold at least one /26 block"
)]
fn ipam_block_size_is_checked(#[case] cluster: &str, #[case] message: &str) {
    let text = format!("name: t\ncluster:\n  {cluster}\nsteps:\n  - advance: 1s\n");
    let err = load(&text).unwrap_err();
    assert!(err.contains(message), "{err}");
}

#[test]
fn service_allocation() {
    let s = load(&format!(
        "{BASE}steps:\n  - probe: red -> ${{svc/default/lb.loadBalancerIP}}:80\n"
    ))
    .unwrap();
    let Step::Probe(p) = &s.steps[0].value else {
        panic!()
    };
    assert_eq!(format!("{:?}", p.to), "Ip(172.19.0.10)");
    let lb = s
        .inventory0
        .resources
        .values()
        .find(|r| r.metadata.name() == "lb")
        .unwrap();
    let policylab::manifest::Body::Service(spec) = &lb.body else {
        panic!()
    };
    assert_eq!(
        spec.cluster_ip.as_ref().map(|c| c.value.as_str()),
        Some("10.96.0.10")
    );
    assert_eq!(
        spec.ports[0].node_port.as_ref().map(|n| n.value),
        Some(30000)
    );
}

const NP: &str = "      apiVersion: projectcalico.org/v3\n      kind: GlobalNetworkPolicy\n      metadata: {name: p}\n      spec: {selector: all()}\n";

#[rstest]
#[case(&format!("  - apply: |\n{NP}  - apply: |\n{NP}"), "ok [1, 1]")]
#[case(&format!("  - create: |\n{NP}  - create: |\n{NP}"), "t/scenario.yaml:11:24: GlobalNetworkPolicy/p already exists")]
#[case(&format!("  - apply: |\n{NP}  - delete: GlobalNetworkPolicy/p\n"), "ok [1, 0]")]
#[case(
    "  - delete: GlobalNetworkPolicy/p\n",
    "t/scenario.yaml:3:13: GlobalNetworkPolicy/p does not exist"
)]
#[case(&format!("  - apply: |\n{NP}  - patch: {{target: GlobalNetworkPolicy/p, merge: {{spec: {{order: 10}}}}}}\n"), "ok [1, 1]")]
#[case(
    "  - patch: {target: GlobalNetworkPolicy/p, merge: {}}\n",
    "t/scenario.yaml:3:21: GlobalNetworkPolicy/p does not exist"
)]
fn inventories(#[case] steps: &str, #[case] expected: &str) {
    let got = match load(&format!("name: t\nsteps:\n{steps}")) {
        Ok(s) => format!(
            "ok {:?}",
            s.inventories()
                .iter()
                .map(|i| i
                    .resources
                    .keys()
                    .filter(|k| k.kind == policylab::manifest::Kind::GlobalNetworkPolicy)
                    .count())
                .collect::<Vec<_>>()
        ),
        Err(e) => e,
    };
    assert!(got.starts_with(expected), "{got}");
}

#[rstest]
#[case("vars: {P: 80}\n", "  - probe: red -> blue:$P\n", "ok")]
#[case("vars: {P: 80}\n", "  - probe: red -> blue:${P}/udp\n", "ok")]
#[case("", "  - probe: red -> ${default/blue.ip}:80\n", "ok")]
#[case(
    "",
    "  - probe: red -> blue:$P\n",
    "t/scenario.yaml:11:24: undefined placeholder `P`"
)]
#[case(
    "",
    "  - probe: red -> ${default/green.ip}:80\n",
    "t/scenario.yaml:11:19: `${default/green.ip}`: unknown pod `default/green`"
)]
#[case(
    "",
    "  - probe: red -> green:80\n",
    "t/scenario.yaml:11:12: unknown pod, outside host or node `green`"
)]
#[case(
    "",
    "  - fail: nobody\n",
    "t/scenario.yaml:11:11: unknown outside host `nobody`"
)]
#[case("", "  - probe: red -> svc/default/lb\n", "ok")]
#[case(
    "",
    "  - probe: red -> blue\n",
    "t/scenario.yaml:11:12: a tcp probe needs a port"
)]
fn vars_and_references(#[case] vars: &str, #[case] steps: &str, #[case] expected: &str) {
    let got = match load(&format!("{vars}{BASE}steps:\n{steps}")) {
        Ok(_) => "ok".to_string(),
        Err(e) => e,
    };
    // `vars` shifts lines by one when present.
    let got = if vars.is_empty() {
        got
    } else {
        got.replace(":12:", ":11:")
    };
    assert!(got.starts_with(expected), "{got}");
}
