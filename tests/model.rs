//! The reference model: resolve + evaluate, table-driven over small YAML worlds.

use std::collections::BTreeMap;
use std::net::IpAddr;

use policylab::model::{
    evaluate, evaluate_fast, explain, flow_log_policies, DecidedBy, Destination, Flow, FlowSource,
    Proto, StageKind, Step, Verdict,
};
use policylab::resolve::{Action, EndpointToHostAction, PolicyKind, World};
use rstest::rstest;

use super::support::{self, pod};

const NODE1: &str = "172.18.0.2";
const NODE2: &str = "172.18.0.3";
const OUTSIDE: &str = "198.51.100.7";

/// The base cluster: namespaces default (team=blue) and other; pods
/// default/client (node1), default/server (node1, named port http=8080),
/// other/remote (node2).
fn base() -> String {
    let s = String::from(
        r#"---
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {team: blue}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
"#,
    );
    s + &support::base_pods()
}

fn world(extra: &str) -> World {
    support::world(
        &format!("{}{}", base(), extra),
        vec![
            support::node("node1", NODE1, BTreeMap::new()),
            support::node("node2", NODE2, BTreeMap::new()),
        ],
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ep(w: &World, name: &str) -> FlowSource {
    FlowSource::Endpoint(
        w.endpoint_by_name(name)
            .unwrap_or_else(|| panic!("no {name}")),
    )
}

fn tcp(w: &World, from: &str, to: &str, port: u16) -> Flow {
    let src = if from.contains('/') {
        ep(w, from)
    } else {
        FlowSource::Ip(ip(from))
    };
    let dst = match w.endpoint_by_name(to) {
        Some(e) => w.endpoints[e].ips[0],
        None => ip(to),
    };
    Flow::new(src, dst, Proto::Tcp, port)
}

/// Evaluates with and without the trace and checks they agree.
fn verdict<'w>(w: &'w World, f: &Flow) -> (Verdict, DecidedBy<'w>) {
    let full = evaluate(w, f);
    let fast = evaluate_fast(w, f);
    assert_eq!(
        (full.verdict, full.decided_by, full.notracked_reply),
        fast,
        "{}",
        explain(w, f)
    );
    (fast.0, fast.1)
}

fn rule_by(d: DecidedBy<'_>) -> Option<(String, String, usize, Action)> {
    match d {
        DecidedBy::Rule {
            tier,
            policy,
            rule_index,
            action,
        } => Some((tier.into(), policy.name.clone(), rule_index, action)),
        _ => None,
    }
}

fn profile_allow(d: DecidedBy<'_>) -> bool {
    matches!(
        d,
        DecidedBy::Profile {
            name: "kns.default",
            rule_index: 0
        }
    )
}

fn tier(name: &str, order: &str, default_action: &str) -> String {
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}}}\nspec: {{order: {order}, defaultAction: {default_action}}}\n"
    )
}

fn gnp(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    )
}

fn np(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}"
    )
}

// ---------------------------------------------------------------------------------

#[test]
fn profile_kns_allows_when_no_tier_applies() {
    let w = world("");
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
    assert!(profile_allow(by), "{by:?}");
}

#[test]
fn pass_crosses_tiers() {
    let extra = tier("t1", "100", "Deny")
        + &gnp(
            "t1-pass",
            "  tier: t1\n  selector: app == 'server'\n  ingress: [{action: Pass}]\n",
        )
        + &np(
            "default",
            "deny-client",
            "  selector: app == 'server'\n  ingress:\n    - {action: Deny, source: {selector: app == 'client'}}\n",
        );
    let w = world(&extra);
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
    assert_eq!(
        rule_by(by),
        Some(("default".into(), "deny-client".into(), 0, Action::Deny))
    );
    // remote is not denied by default tier rule 0; end of default tier drops it.
    let (v, by) = verdict(&w, &tcp(&w, "other/remote", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
    assert!(
        matches!(
            by,
            DecidedBy::EndOfTier {
                tier: "default",
                ..
            }
        ),
        "{by:?}"
    );
}

#[rstest]
#[case::deny_default("Deny", Verdict::Deny)]
#[case::pass_default("Pass", Verdict::Allow)]
fn end_of_tier(#[case] default_action: &str, #[case] expected: Verdict) {
    let extra = tier("t1", "100", default_action)
        + &gnp(
            "only-remote",
            "  tier: t1\n  selector: app == 'server'\n  ingress:\n    - {action: Allow, source: {selector: app == 'remote'}}\n",
        );
    let w = world(&extra);
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, expected);
    match expected {
        Verdict::Deny => assert!(
            matches!(
                by,
                DecidedBy::EndOfTier {
                    tier: "t1",
                    action: Action::Deny,
                    ..
                }
            ),
            "{by:?}"
        ),
        _ => assert!(profile_allow(by), "{by:?}"),
    }
    let (v, by) = verdict(&w, &tcp(&w, "other/remote", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
    assert_eq!(
        rule_by(by),
        Some(("t1".into(), "only-remote".into(), 0, Action::Allow))
    );
}

#[test]
fn egress_only_tier_does_not_drop_ingress() {
    let extra = tier("t1", "100", "Deny")
        + &gnp(
            "egress-only",
            "  tier: t1\n  selector: all()\n  types: [Egress]\n  egress:\n    - {action: Allow, destination: {nets: [10.0.0.0/8]}}\n",
        );
    let w = world(&extra);
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
    // egress of the client: rule 0 allows; ingress of the server: no tier, profile.
    assert!(profile_allow(by), "{by:?}");
    // client egress to an outside address: end of tier t1 drops it.
    let (v, by) = verdict(&w, &tcp(&w, "default/client", OUTSIDE, 443));
    assert_eq!(v, Verdict::Deny);
    assert!(
        matches!(by, DecidedBy::EndOfTier { tier: "t1", .. }),
        "{by:?}"
    );
}

#[test]
fn staged_only_tier_has_no_end_of_tier_drop() {
    let extra = tier("t1", "100", "Deny")
        + "---\napiVersion: projectcalico.org/v3\nkind: StagedGlobalNetworkPolicy\nmetadata: {name: staged-deny}\nspec:\n  tier: t1\n  selector: all()\n  ingress: [{action: Deny}]\n";
    let w = world(&extra);
    assert!(w.tiers.iter().any(|t| t.policies.iter().any(|p| p.staged)));
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
    assert!(profile_allow(by), "{by:?}");
}

#[test]
fn order_ties_and_absent_order() {
    // All in tier default. "a-b" sorts before "a" (b'-' < b'/'); absent order is last.
    let extra = gnp(
        "a",
        "  selector: app == 'server'\n  ingress: [{action: Allow}]\n",
    ) + &gnp(
        "a-b",
        "  selector: app == 'server'\n  ingress: [{action: Deny}]\n",
    ) + &gnp(
        "z-ordered",
        "  order: 10\n  selector: app == 'server'\n  ingress: [{action: Log}]\n",
    );
    let w = world(&extra);
    let default = w.tiers.iter().find(|t| t.name == "default").unwrap();
    let names: Vec<&str> = default
        .policies
        .iter()
        .map(|p| p.id.name.as_str())
        .collect();
    assert_eq!(names, ["z-ordered", "a-b", "a"]);
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
    assert_eq!(
        rule_by(by),
        Some(("default".into(), "a-b".into(), 0, Action::Deny))
    );
}

#[test]
fn tiers_sorted_with_implicit_default() {
    let extra = tier("late", "2000000", "Deny") + &tier("early", "10", "Deny");
    let w = world(&extra);
    let names: Vec<&str> = w.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["early", "kube-admin", "default", "late", "kube-baseline"]
    );
}

/// Decision `builtin-tiers`: kube-admin and kube-baseline exist undeclared, with
/// default action Pass: a policy there that gives no verdict passes to the next tier.
#[test]
fn builtin_admin_tiers_pass_at_their_end() {
    let extra = gnp(
        "admin-nothing",
        "  tier: kube-admin\n  selector: app == 'server'\n  ingress:\n    - {action: Allow, source: {selector: app == 'nobody'}}\n",
    ) + &gnp(
        "baseline-deny",
        "  tier: kube-baseline\n  selector: app == 'server'\n  ingress: [{action: Deny}]\n",
    );
    let w = world(&extra);
    assert!(w.diagnostics.is_empty(), "{:?}", w.diagnostics);
    assert!(w.tiers.iter().all(|t| t.valid));
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
    assert_eq!(
        rule_by(by),
        Some((
            "kube-baseline".into(),
            "baseline-deny".into(),
            0,
            Action::Deny
        ))
    );
}

#[rstest]
// NetworkPolicy: the positive part is namespace-scoped: only Calico entities of
// namespace default that are not app=client.
#[case::np_same_ns_other_label("np", "default/server2", Verdict::Allow)]
#[case::np_excluded("np", "default/client", Verdict::Deny)]
#[case::np_other_ns("np", "other/remote", Verdict::Deny)]
#[case::np_outside("np", OUTSIDE, Verdict::Deny)]
// GlobalNetworkPolicy: any address outside set(app=client).
#[case::gnp_excluded("gnp", "default/client", Verdict::Deny)]
#[case::gnp_other_ns("gnp", "other/remote", Verdict::Allow)]
#[case::gnp_outside("gnp", OUTSIDE, Verdict::Allow)]
fn not_selector_alone(#[case] kind: &str, #[case] from: &str, #[case] expected: Verdict) {
    let spec = "  selector: app == 'server'\n  ingress:\n    - {action: Allow, source: {notSelector: app == 'client'}}\n";
    let mut extra = pod(
        "default",
        "server2",
        "app: server2",
        r#"["10.244.0.21"]"#,
        "node1",
        "",
    );
    extra += &if kind == "np" {
        np("default", "not-client", spec)
    } else {
        gnp("not-client", spec)
    };
    let w = world(&extra);
    let (v, by) = verdict(&w, &tcp(&w, from, "default/server", 8080));
    assert_eq!(
        v,
        expected,
        "{}",
        explain(&w, &tcp(&w, from, "default/server", 8080))
    );
    if expected == Verdict::Deny {
        assert!(
            matches!(
                by,
                DecidedBy::EndOfTier {
                    tier: "default",
                    ..
                }
            ),
            "{by:?}"
        );
    }
}

#[rstest]
#[case::named(8080, Verdict::Allow)]
#[case::other_port(9090, Verdict::Deny)]
fn named_ports(#[case] port: u16, #[case] expected: Verdict) {
    let extra = np(
        "default",
        "http-only",
        "  selector: app == 'server'\n  ingress:\n    - {action: Allow, protocol: TCP, destination: {ports: [http]}}\n",
    );
    let w = world(&extra);
    let (v, _) = verdict(&w, &tcp(&w, "default/client", "default/server", port));
    assert_eq!(v, expected);
}

#[rstest]
#[case::gns_member("203.0.113.5", Verdict::Deny)]
#[case::netset_member("192.0.2.5", Verdict::Allow)]
fn not_has_namespace_selects_only_global_sets(#[case] dst: &str, #[case] expected: Verdict) {
    let extra = String::from(
        r#"---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: ns-set, namespace: default, labels: {blocked: "true"}}
spec: {nets: [192.0.2.0/24]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: global-set, labels: {blocked: "true"}}
spec: {nets: [203.0.113.0/24]}
"#,
    ) + &gnp(
        "block-global",
        "  selector: all()\n  types: [Egress]\n  egress:\n    - {action: Deny, destination: {selector: blocked == 'true' && !has(projectcalico.org/namespace)}}\n    - {action: Allow}\n",
    );
    let w = world(&extra);
    let (v, by) = verdict(&w, &tcp(&w, "default/client", dst, 443));
    assert_eq!(v, expected);
    let rule = if expected == Verdict::Deny { 0 } else { 1 };
    assert_eq!(rule_by(by).map(|r| r.2), Some(rule));
}

fn hep(name: &str, node: &str, iface: &str, ip: &str, labels: &str, profiles: &str) -> String {
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {{name: {name}, labels: {{{labels}}}}}\nspec: {{node: {node}, interfaceName: '{iface}', expectedIPs: ['{ip}'], profiles: [{profiles}]}}\n"
    )
}

#[rstest]
#[case::one_direction(false, Verdict::Deny)]
#[case::both_directions(true, Verdict::Allow)]
fn do_not_track_needs_both_directions(#[case] egress_too: bool, #[case] expected: Verdict) {
    let mut spec = String::from(
        "  selector: role == 'host'\n  doNotTrack: true\n  applyOnForward: true\n  types: [Ingress, Egress]\n  ingress:\n    - {action: Allow, protocol: TCP, destination: {ports: [8000]}}\n",
    );
    if egress_too {
        spec += "  egress:\n    - {action: Allow, protocol: TCP, source: {ports: [8000]}}\n";
    }
    let extra = hep(
        "node1-eth0",
        "node1",
        "eth0",
        NODE1,
        "role: host",
        "projectcalico-default-allow",
    ) + &gnp("untracked", &spec);
    let w = world(&extra);
    let f = tcp(&w, OUTSIDE, NODE1, 8000);
    let (v, by) = verdict(&w, &f);
    assert_eq!(v, expected, "{}", explain(&w, &f));
    if expected == Verdict::Deny {
        assert_eq!(by, DecidedBy::UntrackedReply);
    } else {
        let d = evaluate(&w, &f);
        assert!(d
            .trace
            .iter()
            .any(|s| s.reply && s.kind == StageKind::HostUntrackedEgress));
    }
}

fn nodeport_service(policy: &str) -> String {
    format!(
        r#"---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  type: NodePort
  selector: {{app: server}}
  clusterIP: 10.96.0.50
  externalTrafficPolicy: {policy}
  ports: [{{port: 80, targetPort: http, nodePort: 30080, protocol: TCP}}]
"#
    )
}

#[rstest]
#[case::node_port_denied(30080, Verdict::Deny)]
#[case::other_port_passes(30081, Verdict::Allow)]
fn pre_dnat_sees_the_node_port(#[case] deny_port: u16, #[case] expected: Verdict) {
    let extra = nodeport_service("Cluster")
        + &hep("node1-eth0", "node1", "eth0", NODE1, "role: host", "")
        + &gnp(
            "block-nodeport",
            &format!(
                "  selector: role == 'host'\n  preDNAT: true\n  applyOnForward: true\n  ingress:\n    - {{action: Deny, protocol: TCP, destination: {{ports: [{deny_port}]}}}}\n"
            ),
        );
    let w = world(&extra);
    let f = tcp(&w, OUTSIDE, NODE1, 30080);
    let (v, by) = verdict(&w, &f);
    assert_eq!(v, expected, "{}", explain(&w, &f));
    let d = evaluate(&w, &f);
    if expected == Verdict::Deny {
        assert_eq!(rule_by(by).map(|r| r.1), Some("block-nodeport".to_string()));
        assert!(d.trace.iter().all(|s| s.kind != StageKind::ServiceDnat));
    } else {
        // DNAT to the server's named target port; forwarded traffic is allowed by
        // default through the HEP (no applyOnForward normal policy).
        assert_eq!(d.final_dst_ip, ip("10.244.0.20"));
        assert_eq!(d.final_dst_port, 8080);
        assert!(d.trace.iter().any(|s| matches!(
            s.result,
            policylab::model::StageResult::Allow(DecidedBy::DefaultForwardAllow)
        )));
    }
}

#[rstest]
#[case::cluster_remote_node("Cluster", NODE2, Verdict::Allow, Some(NODE2))]
#[case::cluster_local_node("Cluster", NODE1, Verdict::Allow, Some(NODE1))]
#[case::local_on_endpoint_node("Local", NODE1, Verdict::Allow, Some(OUTSIDE))]
#[case::local_without_endpoint("Local", NODE2, Verdict::Deny, None)]
fn cluster_vs_local_client_address(
    #[case] policy: &str,
    #[case] node: &str,
    #[case] expected: Verdict,
    #[case] seen: Option<&str>,
) {
    let w = world(&nodeport_service(policy));
    let f = tcp(&w, OUTSIDE, node, 30080);
    let d = evaluate(&w, &f);
    assert_eq!(d.verdict, expected, "{}", explain(&w, &f));
    if let Some(seen) = seen {
        assert_eq!(d.client_ip_seen, ip(seen));
        assert!(matches!(d.destination, Destination::Workload(_)));
    } else {
        assert_eq!(d.decided_by, DecidedBy::NoServiceEndpoint);
    }
}

#[test]
fn cluster_ip_keeps_the_client_address_and_empty_service_refuses() {
    let extra = nodeport_service("Cluster")
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: default}\nspec:\n  selector: {app: nobody}\n  clusterIP: 10.96.0.60\n  ports: [{port: 80}]\n";
    let w = world(&extra);
    let d = evaluate(&w, &tcp(&w, "default/client", "10.96.0.50", 80));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.client_ip_seen, ip("10.244.0.10"));
    assert_eq!(d.final_dst_port, 8080);
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "10.96.0.60", 80));
    assert_eq!((v, by), (Verdict::Refused, DecidedBy::NoServiceEndpoint));
}

#[rstest]
#[case::ssh_failsafe(22, Verdict::Allow)]
#[case::bgp_failsafe(179, Verdict::Allow)]
#[case::other_port(8080, Verdict::Deny)]
fn failsafes_on_a_host_endpoint_without_policy(#[case] port: u16, #[case] expected: Verdict) {
    let w = world(&hep("node1-eth0", "node1", "eth0", NODE1, "role: host", ""));
    let (v, by) = verdict(&w, &tcp(&w, OUTSIDE, NODE1, port));
    assert_eq!(v, expected);
    assert_eq!(
        by,
        if expected == Verdict::Allow {
            DecidedBy::Failsafe
        } else {
            DecidedBy::NoProfile
        }
    );
}

#[test]
fn specific_interface_hep_wins_over_wildcard() {
    let extra = hep(
        "all-ifaces",
        "node1",
        "*",
        "10.0.0.1",
        "",
        "projectcalico-default-allow",
    ) + &hep("node1-eth0", "node1", "eth0", NODE1, "", "");
    let w = world(&extra);
    let (v, by) = verdict(&w, &tcp(&w, OUTSIDE, NODE1, 8080));
    assert_eq!((v, by), (Verdict::Deny, DecidedBy::NoProfile));
    // Without the specific one, the wildcard's profile allows.
    let w = world(&hep(
        "all-ifaces",
        "node1",
        "*",
        "10.0.0.1",
        "",
        "projectcalico-default-allow",
    ));
    let (v, by) = verdict(&w, &tcp(&w, OUTSIDE, NODE1, 8080));
    assert_eq!(v, Verdict::Allow);
    assert!(matches!(
        by,
        DecidedBy::Profile {
            name: "projectcalico-default-allow",
            ..
        }
    ));
}

#[rstest]
#[case::same_namespace("default/client", Verdict::Allow)]
#[case::other_namespace("other/remote", Verdict::Deny)]
fn k8s_peer_without_namespace_selector_is_own_namespace(
    #[case] from: &str,
    #[case] expected: Verdict,
) {
    let extra = r#"---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: same-ns, namespace: default}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - from: [{podSelector: {}}]
      ports: [{port: 8080}, {port: 9000, endPort: 9010}]
"#;
    let w = world(extra);
    let knp = w
        .tiers
        .iter()
        .flat_map(|t| &t.policies)
        .find(|p| p.id.kind == PolicyKind::KubernetesNetworkPolicy)
        .unwrap();
    assert_eq!(knp.order, Some(1000.0));
    assert_eq!(
        knp.ingress.len(),
        1,
        "ports of one protocol merge into one rule"
    );
    assert_eq!(knp.ingress[0].protocol, Some(6), "no protocol means TCP");
    let (v, by) = verdict(&w, &tcp(&w, from, "default/server", 8080));
    assert_eq!(v, expected);
    if expected == Verdict::Allow {
        let (v, _) = verdict(&w, &tcp(&w, from, "default/server", 9005));
        assert_eq!(v, Verdict::Allow, "endPort range");
        let (v, _) = verdict(&w, &tcp(&w, from, "default/server", 9011));
        assert_eq!(v, Verdict::Deny);
    } else {
        assert!(matches!(
            by,
            DecidedBy::EndOfTier {
                tier: "default",
                ..
            }
        ));
    }
}

#[test]
fn k8s_ip_block_except_becomes_not_nets() {
    let extra = r#"---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ipblock, namespace: default}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - from: [{ipBlock: {cidr: 198.51.100.0/24, except: [198.51.100.7/32]}}]
"#;
    let w = world(extra);
    let (v, _) = verdict(&w, &tcp(&w, "198.51.100.8", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
    let (v, _) = verdict(&w, &tcp(&w, OUTSIDE, "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
}

#[rstest]
#[case::v4("10.244.0.20", Verdict::Deny)]
#[case::v6("fd00::20", Verdict::Allow)]
fn ipv6_only_rule_is_absent_for_v4(#[case] dst: &str, #[case] expected: Verdict) {
    let extra = gnp(
        "v6-only",
        "  selector: app == 'server'\n  ingress:\n    - {action: Allow, ipVersion: 6}\n",
    );
    let w = world(&extra);
    let f = Flow::new(ep(&w, "default/client"), ip(dst), Proto::Tcp, 8080);
    let (v, _) = verdict(&w, &f);
    assert_eq!(v, expected);
    if expected == Verdict::Deny {
        let d = evaluate(&w, &f);
        assert!(d
            .trace
            .iter()
            .flat_map(|s| &s.steps)
            .any(|s| matches!(s, Step::Rule { absent: true, .. })));
    }
}

#[test]
fn log_rule_continues() {
    let extra = gnp(
        "log-then-deny",
        "  selector: app == 'server'\n  ingress:\n    - {action: Log}\n    - {action: Deny}\n",
    );
    let w = world(&extra);
    let f = tcp(&w, "default/client", "default/server", 8080);
    let (v, by) = verdict(&w, &f);
    assert_eq!(v, Verdict::Deny);
    assert_eq!(rule_by(by).map(|r| r.2), Some(1));
    let d = evaluate(&w, &f);
    assert!(d.trace.iter().flat_map(|s| &s.steps).any(|s| matches!(
        s,
        Step::Rule {
            rule_index: 0,
            action: Action::Log,
            matched: true,
            ..
        }
    )));
}

fn seed0() -> World {
    world(&seed0_yaml())
}

fn seed0_yaml() -> String {
    tier("security", "300", "Deny")
        + &gnp(
            "security.block-ip-list",
            "  tier: security\n  order: 300\n  selector: all()\n  types: [Egress]\n  egress:\n    - {action: Deny, destination: {selector: ip-deny-list == 'true'}}\n    - {action: Pass}\n",
        )
        + "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: threatfeed.deny, labels: {ip-deny-list: 'true'}}\nspec: {nets: [192.0.2.55/32, 203.0.113.3/32]}\n"
}

#[rstest]
#[case::listed("192.0.2.55", Verdict::Deny)]
#[case::listed_too("203.0.113.3", Verdict::Deny)]
#[case::neighbour("192.0.2.56", Verdict::Allow)]
fn seed0_scenario(#[case] dst: &str, #[case] expected: Verdict) {
    let w = seed0();
    let f = tcp(&w, "default/client", dst, 80);
    let (v, by) = verdict(&w, &f);
    assert_eq!(v, expected);
    let d = evaluate(&w, &f);
    let logs = flow_log_policies(&d);
    if expected == Verdict::Deny {
        assert_eq!(
            rule_by(by),
            Some((
                "security".into(),
                "security.block-ip-list".into(),
                0,
                Action::Deny
            ))
        );
        assert_eq!(
            logs[0].policies,
            ["0|security|gnp:security.block-ip-list|deny|0"]
        );
    } else {
        assert!(profile_allow(by), "{by:?}");
        assert_eq!(
            logs[0].policies,
            [
                "0|security|gnp:security.block-ip-list|pass|1",
                "1|__PROFILE__|pro:kns.default|allow|0"
            ]
        );
    }
}

#[test]
fn flow_log_end_of_tier_has_rule_index_minus_one() {
    let extra = tier("tier1", "100", "Deny")
        + &np(
            "default",
            "np1",
            "  tier: tier1\n  selector: app == 'server'\n  ingress:\n    - {action: Allow, source: {selector: app == 'nobody'}}\n",
        );
    let w = world(&extra);
    let d = evaluate(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(d.verdict, Verdict::Deny);
    let logs = flow_log_policies(&d);
    let ingress = logs
        .iter()
        .find(|l| l.stage == StageKind::WorkloadIngress)
        .unwrap();
    assert_eq!(ingress.policies, ["0|tier1|np:default/np1|deny|-1"]);
}

#[test]
fn missing_tier_is_reported_kept_invalid_and_sorted_last() {
    let extra = tier("late", "5000000", "Pass")
        + &gnp(
            "orphan",
            "  tier: ghost\n  selector: app == 'server'\n  ingress:\n    - {action: Allow, source: {selector: app == 'nobody'}}\n",
        );
    let w = world(&extra);
    assert_eq!(w.diagnostics.len(), 1);
    assert!(w.diagnostics[0].message.contains("ghost"));
    let last = w.tiers.last().unwrap();
    assert_eq!((last.name.as_str(), last.valid), ("ghost", false));
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
    assert!(matches!(by, DecidedBy::EndOfTier { tier: "ghost", .. }));
}

#[test]
fn host_to_local_pod_is_not_policed_and_pod_to_own_host_is_accepted() {
    let extra = gnp("deny-all", "  selector: all()\n  types: [Ingress]\n");
    let w = world(&extra);
    let (v, by) = verdict(&w, &tcp(&w, NODE1, "default/server", 8080));
    assert_eq!((v, by), (Verdict::Allow, DecidedBy::NotPoliced));
    // From the other node, the pod's ingress policy applies.
    let (v, _) = verdict(&w, &tcp(&w, NODE2, "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
    let (v, by) = verdict(&w, &tcp(&w, "default/client", NODE1, 10250));
    assert_eq!(
        (v, by),
        (
            Verdict::Allow,
            DecidedBy::EndpointToHost(EndpointToHostAction::Accept)
        )
    );
}

fn felix(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    )
}

/// Decision `felix-configuration`: `defaultEndpointToHostAction` of the `default`
/// object, overridden per node by `node.<name>` (felix/fv ep_to_host_action_test.go).
#[rstest]
#[case::drop("Drop", Verdict::Deny, EndpointToHostAction::Drop)]
#[case::return_to_input("Return", Verdict::Allow, EndpointToHostAction::Return)]
#[case::accept("accept", Verdict::Allow, EndpointToHostAction::Accept)]
fn endpoint_to_host_action(
    #[case] action: &str,
    #[case] want: Verdict,
    #[case] want_by: EndpointToHostAction,
) {
    let w = world(&felix(
        "default",
        &format!("  defaultEndpointToHostAction: {action}\n"),
    ));
    let (v, by) = verdict(&w, &tcp(&w, "default/client", NODE1, 10250));
    assert_eq!((v, by), (want, DecidedBy::EndpointToHost(want_by)));
    // node2's own object wins over `default` there; node1 keeps `default`.
    let w = world(
        &(felix(
            "default",
            &format!("  defaultEndpointToHostAction: {action}\n"),
        ) + &felix("node.node2", "  defaultEndpointToHostAction: Drop\n")),
    );
    let (v, _) = verdict(&w, &tcp(&w, "other/remote", NODE2, 10250));
    assert_eq!(v, Verdict::Deny);
    let (v, _) = verdict(&w, &tcp(&w, "default/client", NODE1, 10250));
    assert_eq!(v, want);
    // Pod to pod is not endpoint-to-host traffic.
    let (v, _) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
}

/// Decision `felix-configuration`: custom failsafe lists replace Felix's defaults;
/// a `net` limits the remote side; an empty list means none.
#[test]
fn custom_failsafe_ports() {
    let deny_all = hep("node1-eth0", "node1", "eth0", NODE1, "hep: 'true'", "")
        + &gnp(
            "hep-deny",
            "  selector: hep == 'true'\n  ingress: [{action: Deny}]\n  egress: [{action: Deny}]\n",
        );
    // Felix's defaults: 22 in, 53/udp out.
    let w = world(&deny_all);
    assert_eq!(
        verdict(&w, &tcp(&w, OUTSIDE, NODE1, 22)).1,
        DecidedBy::Failsafe
    );
    assert_eq!(verdict(&w, &tcp(&w, OUTSIDE, NODE1, 8055)).0, Verdict::Deny);
    let w = world(
        &(deny_all.clone()
            + &felix(
                "default",
                "  failsafeInboundHostPorts: [{protocol: TCP, port: 8055, net: 198.51.100.0/24}, {port: 9000}]\n  failsafeOutboundHostPorts: []\n",
            )),
    );
    assert_eq!(
        verdict(&w, &tcp(&w, OUTSIDE, NODE1, 8055)).1,
        DecidedBy::Failsafe
    );
    // The protocol defaults to TCP and no net means any source.
    assert_eq!(
        verdict(&w, &tcp(&w, NODE2, NODE1, 9000)).1,
        DecidedBy::Failsafe
    );
    // 22 is no longer a failsafe; 8055 only from the net.
    assert_eq!(verdict(&w, &tcp(&w, OUTSIDE, NODE1, 22)).0, Verdict::Deny);
    assert_eq!(verdict(&w, &tcp(&w, NODE2, NODE1, 8055)).0, Verdict::Deny);
    // Outbound: empty, so node1's own traffic is policed.
    assert_eq!(verdict(&w, &tcp(&w, NODE1, OUTSIDE, 2379)).0, Verdict::Deny);
}

/// Decision `felix-configuration`: `logPrefix` per node, and fields without
/// effect listed in the world's notes (sorted).
#[test]
fn log_prefix_and_notes() {
    let w = world("");
    assert_eq!(w.log_prefix("node1"), "calico-packet");
    assert!(w.notes.is_empty());
    let w = world(
        &(felix(
            "default",
            "  logPrefix: lab\n  reportingInterval: 30s\n  bpfLogLevel: Debug\n",
        ) + &felix("node.node2", "  logPrefix: n2\n")),
    );
    assert_eq!(w.log_prefix("node1"), "lab");
    assert_eq!(w.log_prefix("node2"), "n2");
    assert_eq!(
        w.notes,
        [
            "FelixConfiguration default: bpfLogLevel has no effect in the lab",
            "FelixConfiguration default: reportingInterval has no effect in the lab",
        ]
    );
}

#[test]
fn gnp_namespace_selector_all_does_not_select_host_endpoints() {
    let extra = hep(
        "node1-eth0",
        "node1",
        "eth0",
        NODE1,
        "",
        "projectcalico-default-allow",
    ) + &gnp(
        "pods-only",
        "  selector: all()\n  namespaceSelector: all()\n  ingress: [{action: Deny}]\n",
    );
    let w = world(&extra);
    let (v, _) = verdict(&w, &tcp(&w, OUTSIDE, NODE1, 8080));
    assert_eq!(v, Verdict::Allow);
    let (v, _) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
}

#[test]
fn namespace_selector_uses_pcns_labels() {
    let extra = gnp(
        "blue-only",
        "  selector: app == 'server'\n  ingress:\n    - {action: Allow, source: {namespaceSelector: team == 'blue'}}\n",
    );
    let w = world(&extra);
    let (v, _) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
    let (v, _) = verdict(&w, &tcp(&w, "other/remote", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
    let client = &w.endpoints[w.endpoint_by_name("default/client").unwrap()];
    assert_eq!(
        client.inherited[0]
            .get("pcns.projectcalico.org/name")
            .map(String::as_str),
        Some("default")
    );
    assert_eq!(client.profiles, ["kns.default", "ksa.default.default"]);
}

#[test]
fn explain_walks_through_every_level() {
    let w = seed0();
    let text = explain(&w, &tcp(&w, "default/client", "192.0.2.55", 80));
    for needle in [
        "Stage 1: source workload egress",
        "tier security",
        "policy gnp:security.block-ip-list",
        "rule 0 (Deny): matches",
        "Verdict: DENY",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

fn lb_service(policy: &str) -> String {
    format!(
        r#"---
apiVersion: v1
kind: Service
metadata: {{name: lb, namespace: default}}
spec:
  type: LoadBalancer
  selector: {{app: remote-web}}
  clusterIP: 10.96.0.70
  loadBalancerIP: 198.51.100.80
  externalTrafficPolicy: {policy}
  ports: [{{port: 80, targetPort: 8080, nodePort: 31024, protocol: TCP}}]
"#
    )
}

#[rstest]
// Cluster: the first node receives it and masquerades (endpoint on node2).
#[case::cluster("Cluster", NODE1)]
// Local: the first node with a local endpoint announces it; the client is kept.
#[case::local("Local", OUTSIDE)]
fn load_balancer_arrival_node(#[case] policy: &str, #[case] seen: &str) {
    let extra = pod(
        "default",
        "web2",
        "app: remote-web",
        r#"["10.244.1.20"]"#,
        "node2",
        "",
    ) + &lb_service(policy);
    let w = world(&extra);
    let f = tcp(&w, OUTSIDE, "198.51.100.80", 80);
    let d = evaluate(&w, &f);
    assert_eq!(d.verdict, Verdict::Allow, "{}", explain(&w, &f));
    assert_eq!(d.client_ip_seen, ip(seen));
    assert_eq!(
        (d.final_dst_ip, d.final_dst_port),
        (ip("10.244.1.20"), 8080)
    );
    let dnat = d
        .trace
        .iter()
        .find(|s| s.kind == StageKind::ServiceDnat)
        .unwrap();
    let expected_node = if policy == "Local" { "node2" } else { "node1" };
    assert_eq!(dnat.node, expected_node);
}

#[test]
fn untracked_flow_to_a_local_pod_is_denied() {
    let extra = hep("node1-eth0", "node1", "eth0", NODE1, "role: host", "")
        + &gnp(
            "untracked-allow",
            "  selector: role == 'host'\n  doNotTrack: true\n  applyOnForward: true\n  types: [Ingress, Egress]\n  ingress: [{action: Allow}]\n  egress: [{action: Allow}]\n",
        );
    let w = world(&extra);
    let (v, by) = verdict(&w, &tcp(&w, OUTSIDE, "default/server", 8080));
    assert_eq!((v, by), (Verdict::Deny, DecidedBy::UntrackedReply));
    // Untracked both ways to the host itself works (normal policy skipped).
    let (v, by) = verdict(&w, &tcp(&w, OUTSIDE, NODE1, 8080));
    assert_eq!(v, Verdict::Allow);
    assert_eq!(
        rule_by(by).map(|r| r.1),
        Some("untracked-allow".to_string())
    );
}

/// Untracked ingress Allow on node1's uplink, as seed 001's `forward-default-allow`.
const UNTRACKED_INGRESS_ALLOW: &str = "  selector: role == 'host'\n  order: 1000\n  doNotTrack: true\n  applyOnForward: true\n  types: [Ingress]\n  ingress: [{action: Allow}]\n";
/// Untracked egress Allow only: the host's replies leave untracked.
const UNTRACKED_EGRESS_ALLOW: &str = "  selector: role == 'host'\n  doNotTrack: true\n  applyOnForward: true\n  types: [Egress]\n  egress: [{action: Allow}]\n";
/// Untracked both ways for TCP 8000 (the request itself is untracked).
const UNTRACKED_BOTH_8000: &str = "  selector: role == 'host'\n  doNotTrack: true\n  applyOnForward: true\n  types: [Ingress, Egress]\n  ingress: [{action: Allow, protocol: TCP, destination: {ports: [8000]}}]\n  egress: [{action: Allow, protocol: TCP, source: {ports: [8000]}}]\n";

/// Decision `notracked-reply`: a tracked flow whose reply untracked policy allows is allowed and
/// flagged where the reply is NOTRACKed; TCP is cut after the handshake, UDP and
/// ICMP are not.
#[rstest]
#[case::pod_egress_tcp(
    UNTRACKED_INGRESS_ALLOW,
    "default/client",
    OUTSIDE,
    Proto::Tcp,
    443,
    Some(StageKind::HostUntrackedIngress),
    true
)]
#[case::pod_egress_udp(
    UNTRACKED_INGRESS_ALLOW,
    "default/client",
    OUTSIDE,
    Proto::Udp,
    5353,
    Some(StageKind::HostUntrackedIngress),
    false
)]
#[case::failsafe_udp_reply_stays_tracked(
    UNTRACKED_INGRESS_ALLOW,
    "default/client",
    OUTSIDE,
    Proto::Udp,
    53,
    None,
    false
)]
#[case::pod_egress_icmp(
    UNTRACKED_INGRESS_ALLOW,
    "default/client",
    OUTSIDE,
    Proto::Icmp,
    0,
    Some(StageKind::HostUntrackedIngress),
    false
)]
#[case::pod_egress_sctp(
    UNTRACKED_INGRESS_ALLOW,
    "default/client",
    OUTSIDE,
    Proto::Sctp,
    9000,
    Some(StageKind::HostUntrackedIngress),
    false
)]
#[case::pod_to_remote_pod(
    UNTRACKED_INGRESS_ALLOW,
    "default/client",
    "other/remote",
    Proto::Tcp,
    8080,
    Some(StageKind::HostUntrackedIngress),
    true
)]
#[case::host_egress_tcp(
    UNTRACKED_INGRESS_ALLOW,
    NODE1,
    OUTSIDE,
    Proto::Tcp,
    443,
    Some(StageKind::HostUntrackedIngress),
    true
)]
#[case::host_reply_leaves_untracked(
    UNTRACKED_EGRESS_ALLOW,
    OUTSIDE,
    NODE1,
    Proto::Tcp,
    8080,
    Some(StageKind::HostUntrackedEgress),
    true
)]
#[case::failsafe_reply_stays_tracked(
    UNTRACKED_EGRESS_ALLOW,
    OUTSIDE,
    NODE1,
    Proto::Tcp,
    22,
    None,
    false
)]
#[case::untracked_request(UNTRACKED_BOTH_8000, OUTSIDE, NODE1, Proto::Tcp, 8000, None, false)]
#[case::reply_not_allowed_untracked(
    UNTRACKED_BOTH_8000,
    OUTSIDE,
    NODE1,
    Proto::Tcp,
    8080,
    None,
    false
)]
fn untracked_reply_of_a_tracked_flow(
    #[case] spec: &str,
    #[case] from: &str,
    #[case] to: &str,
    #[case] proto: Proto,
    #[case] port: u16,
    #[case] stage: Option<StageKind>,
    #[case] cut: bool,
) {
    let extra = hep(
        "node1-eth0",
        "node1",
        "eth0",
        NODE1,
        "role: host",
        "projectcalico-default-allow",
    ) + &gnp("untracked", spec);
    let w = world(&extra);
    let mut f = tcp(&w, from, to, port);
    f.protocol = proto;
    if proto == Proto::Icmp {
        f.dst_port = 0;
    }
    let (v, _) = verdict(&w, &f);
    assert_eq!(v, Verdict::Allow, "{}", explain(&w, &f));
    let d = evaluate(&w, &f);
    let r = d.notracked_reply;
    assert_eq!(r.map(|r| r.stage), stage, "{}", explain(&w, &f));
    if let Some(r) = r {
        assert_eq!(r.node, "node1");
        assert_eq!(
            rule_by(r.allowed_by).map(|r| r.1),
            Some("untracked".to_string())
        );
        assert_eq!(r.cuts_after_handshake(proto), cut);
        let text = explain(&w, &f);
        assert!(text.contains("conntrack never sees it"), "{text}");
        assert_eq!(text.contains("no data passes"), cut, "{text}");
    }
}

/// Without the untracked Allow the reply is tracked: no flag.
#[test]
fn tracked_reply_without_untracked_policy_is_not_flagged() {
    let extra = hep(
        "node1-eth0",
        "node1",
        "eth0",
        NODE1,
        "role: host",
        "projectcalico-default-allow",
    );
    let w = world(&extra);
    let d = evaluate(&w, &tcp(&w, "default/client", OUTSIDE, 443));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.notracked_reply, None);
}

#[rstest]
#[case::endpoint_and_target_port("default/server", 8080, Verdict::Allow)]
#[case::wrong_port("default/server", 9090, Verdict::Deny)]
#[case::not_an_endpoint("other/remote", 8080, Verdict::Deny)]
fn services_match_endpoints_and_target_ports(
    #[case] to: &str,
    #[case] port: u16,
    #[case] expected: Verdict,
) {
    let extra = nodeport_service("Cluster")
        + &gnp(
            "to-web",
            "  selector: app == 'client'\n  types: [Egress]\n  egress:\n    - {action: Allow, destination: {services: {name: web, namespace: default}}}\n",
        );
    let w = world(&extra);
    let (v, _) = verdict(&w, &tcp(&w, "default/client", to, port));
    assert_eq!(v, expected);
}

#[test]
fn flow_log_profile_entry_and_pod_to_pod_trace() {
    let w = world("");
    let d = evaluate(&w, &tcp(&w, "default/client", "default/server", 8080));
    let logs = flow_log_policies(&d);
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0].stage, StageKind::WorkloadEgress);
    assert_eq!(logs[1].stage, StageKind::WorkloadIngress);
    for l in &logs {
        assert_eq!(l.policies, ["0|__PROFILE__|pro:kns.default|allow|0"]);
    }
}

#[test]
fn resolve_is_deterministic() {
    let extra = seed0_yaml() + &nodeport_service("Local");
    let a = format!("{:?}", world(&extra));
    let b = format!("{:?}", world(&extra));
    assert_eq!(a, b);
}

/// Counts allocations per thread, to check that `evaluate_fast` allocates nothing.
mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        pub static ALLOCS: Cell<usize> = const { Cell::new(0) };
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub fn count() -> usize {
        ALLOCS.with(|c| c.get())
    }
}

#[test]
fn evaluate_fast_does_not_allocate() {
    let extra = seed0_yaml()
        + &nodeport_service("Cluster")
        + &hep("node1-eth0", "node1", "eth0", NODE1, "role: host", "")
        + &gnp(
            "untracked",
            "  selector: role == 'host'\n  doNotTrack: true\n  applyOnForward: true\n  types: [Ingress, Egress]\n  ingress: [{action: Allow, protocol: TCP, destination: {ports: [8000]}}]\n  egress: [{action: Allow, protocol: TCP, source: {ports: [8000]}}]\n",
        );
    let w = world(&extra);
    let flows = [
        tcp(&w, "default/client", "192.0.2.55", 80),
        tcp(&w, "default/client", "default/server", 8080),
        tcp(&w, "other/remote", "default/server", 8080),
        tcp(&w, OUTSIDE, NODE2, 30080),
        tcp(&w, OUTSIDE, NODE1, 8000),
        tcp(&w, OUTSIDE, NODE1, 22),
        tcp(&w, NODE1, "10.96.0.50", 80),
    ];
    let before = alloc_count::count();
    let mut allowed = 0;
    for f in &flows {
        if evaluate_fast(&w, f).0 == Verdict::Allow {
            allowed += 1;
        }
    }
    assert_eq!(alloc_count::count(), before, "evaluate_fast allocated");
    assert!(allowed > 0);
}

#[rstest]
// From outside through node1 (no local endpoint): dropped.
#[case::outside(OUTSIDE, Verdict::Deny)]
// From a pod: kube-proxy short-circuits to every endpoint, client kept.
#[case::pod("default/client", Verdict::Allow)]
fn local_service_short_circuits_pod_traffic(#[case] from: &str, #[case] expected: Verdict) {
    let w = world(&nodeport_service("Local"));
    let f = tcp(&w, from, NODE2, 30080);
    let d = evaluate(&w, &f);
    assert_eq!(d.verdict, expected, "{}", explain(&w, &f));
    if expected == Verdict::Allow {
        assert_eq!(d.client_ip_seen, ip("10.244.0.10"));
        assert_eq!(d.final_dst_ip, ip("10.244.0.20"));
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn rich_world() -> World {
        let extra = seed0_yaml()
            + &nodeport_service("Local")
            + &lb_service("Cluster")
            + &hep("node1-eth0", "node1", "eth0", NODE1, "role: host", "")
            + &hep("node2-any", "node2", "*", NODE2, "role: host", "projectcalico-default-allow")
            + &gnp(
                "untracked",
                "  selector: role == 'host'\n  doNotTrack: true\n  applyOnForward: true\n  types: [Ingress]\n  ingress: [{action: Allow, protocol: TCP, destination: {ports: [8000]}}]\n",
            )
            + &gnp(
                "prednat",
                "  selector: role == 'host'\n  preDNAT: true\n  applyOnForward: true\n  ingress: [{action: Deny, protocol: UDP}, {action: Pass}]\n",
            )
            + &np(
                "default",
                "server-in",
                "  selector: app == 'server'\n  ingress:\n    - {action: Allow, protocol: TCP, destination: {ports: [http]}}\n    - {action: Deny, source: {notSelector: app == 'client'}}\n",
            );
        world(&extra)
    }

    const ADDRS: &[&str] = &[
        NODE1,
        NODE2,
        OUTSIDE,
        "10.244.0.10",
        "10.244.0.20",
        "10.244.1.10",
        "10.96.0.50",
        "10.96.0.70",
        "198.51.100.80",
        "192.0.2.55",
        "fd00::20",
    ];

    proptest! {
        #[test]
        fn fast_and_full_agree_and_never_panic(
            src in 0usize..ADDRS.len() + 3,
            dst in 0usize..ADDRS.len(),
            proto in 0usize..4,
            port in prop::sample::select(vec![22u16, 53, 80, 179, 8000, 8080, 30080, 31024, 65535]),
        ) {
            let w = rich_world();
            let source = if src < ADDRS.len() {
                FlowSource::Ip(ip(ADDRS[src]))
            } else {
                FlowSource::Endpoint(src - ADDRS.len())
            };
            let protocol = [Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Icmp][proto];
            let f = Flow::new(source, ip(ADDRS[dst]), protocol, port);
            let full = evaluate(&w, &f);
            prop_assert_eq!(
                (full.verdict, full.decided_by, full.notracked_reply),
                evaluate_fast(&w, &f)
            );
            let text = explain(&w, &f);
            prop_assert!(text.contains("Verdict: "));
            let _ = flow_log_policies(&full);
        }
    }
}

/// Decision `own-address-local`: a packet to the sender's own address stays in its namespace (`lo`):
/// no policy, even a deny-all one, sees it; an outside host reaching its own address
/// is not unroutable.
#[test]
fn a_flow_to_the_senders_own_address_is_not_policed() {
    let w = world(&gnp(
        "deny-all",
        "  selector: all()\n  types: [Ingress, Egress]\n  ingress: [{action: Deny}]\n  egress: [{action: Deny}]\n",
    ));
    let f = tcp(&w, "default/client", "default/client", 80);
    assert_eq!(verdict(&w, &f), (Verdict::Allow, DecidedBy::NotPoliced));
    let d = policylab::model::evaluate(&w, &f);
    assert_eq!(d.trace.len(), 1, "{:?}", d.trace);
    // Not to itself: the same policy denies.
    let g = tcp(&w, "default/client", "default/server", 8080);
    assert_eq!(verdict(&w, &g).0, Verdict::Deny);
    let outside = tcp(&w, "198.51.100.7", "198.51.100.7", 80);
    assert_eq!(
        verdict(&w, &outside),
        (Verdict::Allow, DecidedBy::NotPoliced)
    );
}

// ---------------------------------------------------------------------------------
// Defaults a real cluster adds (issue 10)

fn knp(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}"
    )
}

/// Decision `namespace-name-label`: `kubernetes.io/metadata.name` is on every
/// namespace without being written (here `other` has no labels at all).
#[test]
fn namespace_name_label_is_there_without_being_written() {
    let extra = knp(
        "default",
        "from-other-only",
        "  podSelector: {matchLabels: {app: server}}\n  ingress:\n    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: other}}}]\n",
    );
    let w = world(&extra);
    let (v, _) = verdict(&w, &tcp(&w, "other/remote", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
    assert!(
        matches!(
            by,
            DecidedBy::EndOfTier {
                tier: "default",
                ..
            }
        ),
        "{by:?}"
    );
    // Calico's recommended global default deny excludes namespaces by that label.
    let extra = gnp(
        "default-deny",
        "  namespaceSelector: kubernetes.io/metadata.name not in {\"other\"}\n  types: [Ingress]\n",
    );
    let w = world(&extra);
    let (v, _) = verdict(&w, &tcp(&w, "default/server", "other/remote", 8080));
    assert_eq!(v, Verdict::Allow);
    let (v, _) = verdict(&w, &tcp(&w, "other/remote", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
}

/// Decision `k8s-policy-types-default`: without `policyTypes`, a policy with egress
/// rules governs egress too (and ingress, always).
#[rstest]
#[case::without_policy_types("", true)]
#[case::ingress_only("  policyTypes: [Ingress]\n", false)]
fn k8s_policy_types_default(#[case] types: &str, #[case] egress_governed: bool) {
    let extra = knp(
        "default",
        "client-to-other",
        &format!("  podSelector: {{matchLabels: {{app: client}}}}\n{types}  egress:\n    - to: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: other}}}}}}]\n"),
    );
    let w = world(&extra);
    let (v, _) = verdict(&w, &tcp(&w, "default/client", "other/remote", 8080));
    assert_eq!(v, Verdict::Allow);
    let (v, _) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(
        v,
        if egress_governed {
            Verdict::Deny
        } else {
            Verdict::Allow
        }
    );
    // Ingress to the client is isolated either way (no ingress rule).
    let (v, _) = verdict(&w, &tcp(&w, "default/server", "default/client", 8080));
    assert_eq!(v, Verdict::Deny);
}

// ---------------------------------------------------------------------------------
// AdminNetworkPolicy / BaselineAdminNetworkPolicy (decision `admin-network-policy`)

fn anp(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    )
}

fn banp(spec: &str) -> String {
    format!(
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {{name: default}}\nspec:\n{spec}"
    )
}

const TO_SERVER: &str = "  subject: {pods: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: default}}, podSelector: {matchLabels: {app: server}}}}\n";

/// ANP actions against a Kubernetes NetworkPolicy that allows only `remote`:
/// Allow and Deny decide in kube-admin, Pass hands over to the default tier.
#[rstest]
#[case::allow("Allow", Verdict::Allow, Some(("kube-admin", Action::Allow)))]
#[case::deny("Deny", Verdict::Deny, Some(("kube-admin", Action::Deny)))]
#[case::pass("Pass", Verdict::Deny, None)]
fn anp_actions_come_before_network_policy(
    #[case] action: &str,
    #[case] expected: Verdict,
    #[case] decider: Option<(&str, Action)>,
) {
    let extra = anp(
        "admin",
        &format!("  priority: 10\n{TO_SERVER}  ingress:\n    - {{name: r0, action: {action}, from: [{{namespaces: {{matchLabels: {{team: blue}}}}}}]}}\n"),
    ) + &knp(
        "default",
        "only-remote",
        "  podSelector: {matchLabels: {app: server}}\n  ingress:\n    - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: remote}}}]\n",
    );
    let w = world(&extra);
    assert!(w.diagnostics.is_empty(), "{:?}", w.diagnostics);
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(
        v,
        expected,
        "{}",
        explain(&w, &tcp(&w, "default/client", "default/server", 8080))
    );
    match decider {
        Some((tier, action)) => {
            assert_eq!(rule_by(by), Some((tier.into(), "admin".into(), 0, action)));
            let DecidedBy::Rule { policy, .. } = by else {
                unreachable!()
            };
            assert_eq!(policy.kind, PolicyKind::KubernetesAdminNetworkPolicy);
        }
        None => assert!(
            matches!(
                by,
                DecidedBy::EndOfTier {
                    tier: "default",
                    ..
                }
            ),
            "{by:?}"
        ),
    }
    // The ANP's peer does not cover `other`: the KNP decides.
    let (v, _) = verdict(&w, &tcp(&w, "other/remote", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
}

/// Lower priority values are evaluated first (priority is the order).
#[test]
fn anp_priority_orders_policies() {
    let deny = |name: &str, prio: u32, action: &str| {
        anp(
            name,
            &format!("  priority: {prio}\n{TO_SERVER}  ingress:\n    - {{action: {action}, from: [{{namespaces: {{}}}}]}}\n"),
        )
    };
    let w = world(&(deny("b-deny", 20, "Deny") + &deny("a-allow", 30, "Allow")));
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
    assert_eq!(
        rule_by(by),
        Some(("kube-admin".into(), "b-deny".into(), 0, Action::Deny))
    );
    let w = world(&(deny("b-deny", 40, "Deny") + &deny("a-allow", 30, "Allow")));
    let (v, _) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
}

/// The baseline applies only where no NetworkPolicy decided: after the default tier.
#[test]
fn banp_is_the_last_word_before_profiles() {
    let base = banp(&format!(
        "{}  ingress:\n    - {{action: Deny, from: [{{namespaces: {{}}}}]}}\n",
        TO_SERVER.replace("priority: 10\n", "")
    ));
    let w = world(&base);
    let (v, by) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
    assert_eq!(
        rule_by(by),
        Some(("kube-baseline".into(), "default".into(), 0, Action::Deny))
    );
    let DecidedBy::Rule { policy, .. } = by else {
        unreachable!()
    };
    assert_eq!(
        policy.kind,
        PolicyKind::KubernetesBaselineAdminNetworkPolicy
    );
    // A NetworkPolicy allowing the client wins over the baseline.
    let w = world(&(base
        + &knp(
            "default",
            "allow-client",
            "  podSelector: {matchLabels: {app: server}}\n  ingress:\n    - from: [{podSelector: {matchLabels: {app: client}}}]\n",
        )));
    let (v, _) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Allow);
}

/// Egress to networks, with a port; a `nodes` peer Calico cannot convert fails
/// closed (Deny becomes deny-all) with a warning.
#[test]
fn anp_egress_networks_and_fail_closed() {
    let extra = anp(
        "egress",
        &format!("  priority: 5\n  subject: {{namespaces: {{matchLabels: {{kubernetes.io/metadata.name: other}}}}}}\n  egress:\n    - {{action: Deny, to: [{{networks: [\"{OUTSIDE}/32\"]}}], ports: [{{portNumber: {{port: 443}}}}]}}\n"),
    );
    let w = world(&extra);
    let (v, by) = verdict(&w, &tcp(&w, "other/remote", OUTSIDE, 443));
    assert_eq!(v, Verdict::Deny);
    assert_eq!(
        rule_by(by),
        Some(("kube-admin".into(), "egress".into(), 0, Action::Deny))
    );
    let (v, _) = verdict(&w, &tcp(&w, "other/remote", OUTSIDE, 80));
    assert_eq!(v, Verdict::Allow);
    let (v, _) = verdict(&w, &tcp(&w, "default/client", OUTSIDE, 443));
    assert_eq!(v, Verdict::Allow);

    let extra = anp(
        "nodes",
        "  priority: 5\n  subject: {namespaces: {}}\n  egress:\n    - {action: Deny, to: [{nodes: {matchLabels: {role: worker}}}]}\n",
    );
    let w = world(&extra);
    assert_eq!(w.diagnostics.len(), 1, "{:?}", w.diagnostics);
    assert!(
        w.diagnostics[0].message.contains("nodes"),
        "{:?}",
        w.diagnostics
    );
    let (v, _) = verdict(&w, &tcp(&w, "default/client", "default/server", 8080));
    assert_eq!(v, Verdict::Deny);
}
