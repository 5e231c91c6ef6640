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
