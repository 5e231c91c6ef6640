//! The nft policy compiler over the shipped scenarios: snapshots of the compiled
//! tables (the exact `nft -f` text the harness loads) and their legends.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use policylab::compile::{compile, Compiled};
use policylab::diag::{Diagnostics, Sources};
use policylab::resolve::{resolve, EndpointToHostAction, World};
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
            match tag.group {
                1 => " (deny group)",
                2 => " (allow group)",
                4 => " (reject group)",
                _ => " (log rule)",
            }
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

// ---------------------------------------------------------------------------------
// Chain layout pieces over a small hand-made world (rstest tables).

use std::collections::BTreeMap;

use policylab::model::{Decider, StageKind};
use rstest::rstest;

use super::support::{self, pod};

/// Namespaces default and other; default/client and default/server (named port
/// http = TCP 8080) on node1 (dual-stack), other/remote on node2.
fn small_world(extra: &str) -> World {
    let text = format!(
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: default}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: other}}\n{}{extra}",
        support::base_pods()
    );
    let node = |name: &str, ip: &str| {
        support::node(
            name,
            ip,
            BTreeMap::from([("role".to_string(), name.to_string())]),
        )
    };
    support::world(
        &text,
        vec![node("node1", "172.18.0.2"), node("node2", "172.18.0.3")],
    )
}

/// The rules of one chain, with NFLOG prefixes replaced by their legend entry and
/// hashed set names masked.
fn chain(c: &Compiled, node: &str, name: &str) -> String {
    let table = &c.tables[node];
    let chain = table
        .chains
        .iter()
        .find(|ch| ch.name.as_str() == name)
        .unwrap_or_else(|| panic!("no chain {name} in\n{table}"));
    let prefix = regex::Regex::new(r#"log prefix "([^"]+)" group (\d)"#).expect("regex");
    let sets = regex::Regex::new(r"@cali(40|60)([a-z]+)-[A-Za-z0-9_-]+").expect("regex");
    chain
        .rules
        .iter()
        .map(|r| {
            let text = r.to_string();
            let text = prefix.replace_all(&text, |cap: &regex::Captures<'_>| {
                let tag = c.decode(&cap[1]).expect("every prefix is in the legend");
                assert_eq!(tag.node, node);
                format!("log[{}] <{:?}: {}>", &cap[2], tag.stage, tag.decider)
            });
            sets.replace_all(&text, "@cali$1$2-X").into_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const GNP_T: &str = r#"---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: t}
spec:
  selector: app == 'server'
  ingress:
    - action: Log
      protocol: TCP
    - action: Deny
      protocol: TCP
      source: {nets: [10.9.0.0/16]}
      destination: {ports: [81]}
    - action: Pass
      protocol: UDP
    - action: Allow
      protocol: TCP
      source: {selector: app == 'client'}
      destination: {ports: [http, 9000]}
"#;

const TIERED: &str = r#"---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: soft}
spec: {order: 200, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.a}
spec:
  tier: security
  order: 1
  selector: app == 'server'
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [8080]}}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.b}
spec:
  tier: security
  order: 2
  selector: all()
  ingress: [{action: Pass, protocol: UDP}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: soft.c}
spec:
  tier: soft
  selector: app == 'server'
  ingress: [{action: Deny, protocol: ICMP}]
"#;

fn iface(ns: &str, name: &str) -> String {
    policylab::lab::calico_host_iface(ns, name)
}

#[rstest]
#[case::policy_rules_allow_deny_pass_log(GNP_T, "node1", "cali-pi-gnp.t", "\
meta l4proto 6 log[3] <WorkloadIngress: tier default, gnp:t rule 0 (log)>
meta nfproto ipv4 meta l4proto 6 ip saddr 10.9.0.0/16 th dport 81 log[1] <WorkloadIngress: tier default, gnp:t rule 1 (deny)> drop
meta l4proto 17 meta mark set meta mark | 0x20000 log[2] <WorkloadIngress: tier default, gnp:t rule 2 (pass)> return
meta nfproto ipv4 meta l4proto 6 ip saddr @cali40s-X th dport 9000 meta mark set meta mark | 0x10000 log[2] <WorkloadIngress: tier default, gnp:t rule 3 (allow)> return
meta nfproto ipv4 meta l4proto 6 ip saddr @cali40s-X ip daddr . meta l4proto . th dport @cali40n-X meta mark set meta mark | 0x10000 log[2] <WorkloadIngress: tier default, gnp:t rule 3 (allow)> return
meta nfproto ipv6 meta l4proto 6 ip6 saddr @cali60s-X th dport 9000 meta mark set meta mark | 0x10000 log[2] <WorkloadIngress: tier default, gnp:t rule 3 (allow)> return
meta nfproto ipv6 meta l4proto 6 ip6 saddr @cali60s-X ip6 daddr . meta l4proto . th dport @cali60n-X meta mark set meta mark | 0x10000 log[2] <WorkloadIngress: tier default, gnp:t rule 3 (allow)> return")]
#[case::tier_walk_end_of_tier_and_default_pass(TIERED, "node1", "cali-tw-SERVER", "\
meta mark set meta mark & 0xfffcffff
meta mark set meta mark & 0xfffdffff comment \"Start of tier security\"
meta mark & 0x20000 == 0x0 jump cali-pi-gnp.security.a
meta mark & 0x10000 == 0x10000 return comment \"Return if policy accepted\"
meta mark & 0x20000 == 0x0 jump cali-pi-gnp.security.b
meta mark & 0x10000 == 0x10000 return comment \"Return if policy accepted\"
meta mark & 0x20000 == 0x0 log[1] <WorkloadIngress: end of tier security (deny, last policy gnp:security.b)> drop comment \"End of tier security. Drop if no policies passed packet\"
meta mark set meta mark & 0xfffdffff comment \"Start of tier soft\"
meta mark & 0x20000 == 0x0 jump cali-pi-gnp.soft.c
meta mark & 0x10000 == 0x10000 return comment \"Return if policy accepted\"
meta mark & 0x20000 == 0x0 log[2] <WorkloadIngress: end of tier soft (pass, last policy gnp:soft.c)> comment \"End of tier soft. Pass if no policy decided\"
jump cali-pri-kns.default
meta mark & 0x10000 == 0x10000 return comment \"Return if profile accepted\"
jump cali-pri-ksa.default.default
meta mark & 0x10000 == 0x10000 return comment \"Return if profile accepted\"
log[1] <WorkloadIngress: no profile (drop)> drop comment \"Drop if no profiles matched\"")]
#[case::egress_without_policy_goes_to_profiles(
    TIERED,
    "node1",
    "cali-fw-SERVER",
    "\
meta mark set meta mark & 0xfffcffff
jump cali-pro-kns.default
meta mark & 0x10000 == 0x10000 return comment \"Return if profile accepted\"
jump cali-pro-ksa.default.default
meta mark & 0x10000 == 0x10000 return comment \"Return if profile accepted\"
log[1] <WorkloadEgress: no profile (drop)> drop comment \"Drop if no profiles matched\""
)]
#[case::profile_rules(
    TIERED,
    "node1",
    "cali-pri-kns.default",
    "\
meta mark set meta mark | 0x10000 log[2] <WorkloadIngress: profile kns.default rule 0> return"
)]
// ICMP without ipVersion is IPv4 only (decision `icmp-ip-version`: Felix's
// ipVersionToProtoIPVersion), so it is rendered for IPv4 alone.
#[case::icmp_rule_per_family(
    TIERED,
    "node1",
    "cali-pi-gnp.soft.c",
    "\
meta nfproto ipv4 meta l4proto 1 log[1] <WorkloadIngress: tier soft, gnp:soft.c rule 0 (deny)> drop"
)]
fn layout(#[case] manifests: &str, #[case] node: &str, #[case] name: &str, #[case] want: &str) {
    let c = compile(&small_world(manifests));
    let mut name = name.replace("SERVER", &iface("default", "server"));
    if name.starts_with("cali-tw-") || name.starts_with("cali-fw-") {
        // A workload's chain is one goto to the policy walk it shares with
        // workloads that have the same rules.
        let own = chain(&c, node, &name);
        let shared = own.strip_prefix("goto ").expect("a goto").to_string();
        let prefix = if name.starts_with("cali-tw-") {
            "cali-twp-"
        } else {
            "cali-fwp-"
        };
        assert!(shared.starts_with(prefix), "{own}");
        name = shared;
    }
    assert_eq!(chain(&c, node, &name), want);
}

const SERVICES: &str = r#"---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  selector: {app: server}
  ports: [{port: 80, targetPort: http, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  clusterIP: 10.96.0.11
  selector: {app: nobody}
  ports: [{port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: other}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.12
  externalTrafficPolicy: Local
  selector: {app: remote}
  ports: [{port: 80, nodePort: 30080, protocol: TCP}]
status:
  loadBalancer:
    ingress: [{ip: 198.51.100.80}]
"#;

// A connection from the endpoint itself (hairpin) is marked for masquerade before
// its DNAT, as kube-proxy's KUBE-SEP chains do (`-s <endpoint> -j KUBE-MARK-MASQ`;
// decision `service-hairpin`).
#[rstest]
#[case::dnat_named_target_port_and_local_policy("node1", "kube-services", "\
meta l4proto 6 ip daddr 10.96.0.11/32 th dport 80 accept comment \"default/empty port 80\"
meta l4proto 6 ip daddr 10.96.0.10/32 th dport 80 ip saddr 10.244.0.20/32 meta mark set meta mark | 0x4000 dnat ip to 10.244.0.20:8080 comment \"default/web port 80 hairpin\"
meta l4proto 6 ip daddr 10.96.0.10/32 th dport 80 dnat ip to 10.244.0.20:8080 comment \"default/web port 80\"
meta l4proto 6 ip daddr 10.96.0.12/32 th dport 80 ip saddr 10.244.1.10/32 meta mark set meta mark | 0x4000 dnat ip to 10.244.1.10:80 comment \"other/lb port 80 hairpin\"
meta l4proto 6 ip daddr 10.96.0.12/32 th dport 80 dnat ip to 10.244.1.10:80 comment \"other/lb port 80\"
meta l4proto 6 ip daddr 172.18.0.2/32 th dport 30080 ip saddr @cali40all-X ip saddr 10.244.1.10/32 meta mark set meta mark | 0x4000 dnat ip to 10.244.1.10:80 comment \"other/lb port 80 hairpin\"
meta l4proto 6 ip daddr 172.18.0.2/32 th dport 30080 ip saddr @cali40all-X dnat ip to 10.244.1.10:80 comment \"other/lb port 80 from pods\"
meta l4proto 6 ip daddr 172.18.0.2/32 th dport 30080 accept comment \"other/lb port 80 local endpoints\"")]
#[case::no_endpoint_rejects_none_local_drops("node1", "kube-noep", "\
meta l4proto 6 ip daddr 10.96.0.11/32 th dport 80 log[4] <ServiceDnat: no service endpoint> reject comment \"default/empty port 80 has no endpoints\"
meta l4proto 6 ip daddr 172.18.0.2/32 th dport 30080 ip saddr != @cali40all-X log[1] <ServiceDnat: no service endpoint> drop comment \"other/lb port 80 has no local endpoints\"")]
#[case::local_endpoint_on_its_node("node2", "kube-services", "\
meta l4proto 6 ip daddr 10.96.0.11/32 th dport 80 accept comment \"default/empty port 80\"
meta l4proto 6 ip daddr 10.96.0.10/32 th dport 80 ip saddr 10.244.0.20/32 meta mark set meta mark | 0x4000 dnat ip to 10.244.0.20:8080 comment \"default/web port 80 hairpin\"
meta l4proto 6 ip daddr 10.96.0.10/32 th dport 80 dnat ip to 10.244.0.20:8080 comment \"default/web port 80\"
meta l4proto 6 ip daddr 10.96.0.12/32 th dport 80 ip saddr 10.244.1.10/32 meta mark set meta mark | 0x4000 dnat ip to 10.244.1.10:80 comment \"other/lb port 80 hairpin\"
meta l4proto 6 ip daddr 10.96.0.12/32 th dport 80 dnat ip to 10.244.1.10:80 comment \"other/lb port 80\"
meta l4proto 6 ip daddr 172.18.0.3/32 th dport 30080 ip saddr @cali40all-X ip saddr 10.244.1.10/32 meta mark set meta mark | 0x4000 dnat ip to 10.244.1.10:80 comment \"other/lb port 80 hairpin\"
meta l4proto 6 ip daddr 172.18.0.3/32 th dport 30080 ip saddr @cali40all-X dnat ip to 10.244.1.10:80 comment \"other/lb port 80 from pods\"
meta l4proto 6 ip daddr 172.18.0.3/32 th dport 30080 dnat ip to 10.244.1.10:80 comment \"other/lb port 80 local endpoints\"")]
fn services(#[case] node: &str, #[case] name: &str, #[case] want: &str) {
    let c = compile(&small_world(SERVICES));
    let masked = chain(&c, node, name).replace("@cali40all-pods", "@cali40all-X");
    assert_eq!(masked, want);
}

const HEP: &str = r#"---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node1-eth0, labels: {hep: "yes"}}
spec:
  node: node1
  interfaceName: eth0
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: untracked}
spec:
  selector: hep == 'yes'
  doNotTrack: true
  applyOnForward: true
  ingress: [{action: Allow, protocol: UDP, destination: {ports: [53]}}]
  egress: [{action: Allow, protocol: UDP, source: {ports: [53]}}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: pre}
spec:
  selector: hep == 'yes'
  preDNAT: true
  applyOnForward: true
  ingress: [{action: Deny, protocol: TCP, destination: {ports: [30000:32767]}}]
"#;

#[rstest]
#[case::untracked_allow_notracks(
    "cali-ufh-eth0",
    "\
meta mark set meta mark & 0xfffcffff
meta l4proto 6 th dport { 22, 179, 2379, 2380, 5473, 6443, 6666, 6667 } accept comment \"Failsafe\"
meta l4proto 17 th dport 68 accept comment \"Failsafe\"
meta l4proto 6 th sport { 179, 2379, 2380, 5473, 6443, 6666, 6667 } accept comment \"Failsafe\"
meta l4proto 17 th sport { 53, 67 } accept comment \"Failsafe\"
meta mark set meta mark & 0xfffdffff comment \"Start of tier default\"
meta mark & 0x20000 == 0x0 jump cali-upi-gnp.untracked
meta mark & 0x10000 == 0x10000 notrack accept comment \"Return if policy accepted\"
meta mark & 0x20000 == 0x0 log[2] <HostUntrackedIngress: end of tier default (pass, last policy gnp:untracked)> comment \"End of tier default. Pass if no policy decided\""
)]
#[case::prednat_allow_accepts_and_never_drops_at_the_end(
    "cali-dfh-eth0",
    "\
meta mark set meta mark & 0xfffcffff
meta l4proto 6 th dport { 22, 179, 2379, 2380, 5473, 6443, 6666, 6667 } accept comment \"Failsafe\"
meta l4proto 17 th dport 68 accept comment \"Failsafe\"
meta mark set meta mark & 0xfffdffff comment \"Start of tier default\"
meta mark & 0x20000 == 0x0 jump cali-dpi-gnp.pre
meta mark & 0x10000 == 0x10000 accept comment \"Return if policy accepted\"
meta mark & 0x20000 == 0x0 log[2] <HostPreDnat: end of tier default (pass, last policy gnp:pre)> comment \"End of tier default. Pass if no policy decided\""
)]
#[case::forward_without_policy_allows_by_default("cali-thfw-eth0", "\
meta mark set meta mark & 0xfffcffff
meta mark set meta mark | 0x10000 log[2] <HostForwardEgress: default forward allow> return comment \"Allow forwarded traffic by default\"")]
#[case::normal_ingress_failsafe_then_no_profile("cali-fh-eth0", "\
meta mark set meta mark & 0xfffcffff
meta l4proto 6 th dport { 22, 179, 2379, 2380, 5473, 6443, 6666, 6667 } log[2] <HostNormalIngress: failsafe> accept comment \"Failsafe\"
meta l4proto 17 th dport 68 log[2] <HostNormalIngress: failsafe> accept comment \"Failsafe\"
log[1] <HostNormalIngress: no profile (drop)> drop comment \"Drop if no profiles matched\"")]
#[case::untracked_policy_chain("cali-upo-gnp.untracked", "\
meta l4proto 17 th sport 53 meta mark set meta mark | 0x10000 log[2] <HostUntrackedEgress: tier default, gnp:untracked rule 0 (allow)> return")]
#[case::prednat_policy_chain(
    "cali-dpi-gnp.pre",
    "\
meta l4proto 6 th dport 30000-32767 log[1] <HostPreDnat: tier default, gnp:pre rule 0 (deny)> drop"
)]
#[case::raw_prerouting_dispatch(
    "raw-PREROUTING",
    "\
icmpv6 type { 130, 131, 132, 133, 134, 135, 136, 143 } accept
iifname \"eth0\" jump cali-ufh-eth0"
)]
fn host_endpoint(#[case] name: &str, #[case] want: &str) {
    let c = compile(&small_world(HEP));
    assert_eq!(chain(&c, "node1", name), want);
}

#[test]
fn node_without_host_endpoint_has_no_hep_chains_and_logs_not_policed() {
    let c = compile(&small_world(HEP));
    let t = c.tables["node2"].to_string();
    assert!(
        !t.contains("cali-fh-eth0") && !t.contains("cali-ufh-eth0"),
        "{t}"
    );
    assert!(chain(&c, "node2", "filter-INPUT")
        .contains("iifname \"eth0\" log[2] <Unpoliced: not policed> accept"));
}

#[test]
fn legend_decodes_every_prefix_and_prefixes_are_short() {
    let c = compile(&small_world(&format!("{GNP_T}{TIERED}{SERVICES}{HEP}")));
    let re = regex::Regex::new(r#"log prefix "([^"]+)""#).expect("regex");
    let mut used = std::collections::BTreeSet::new();
    for t in c.tables.values() {
        for cap in re.captures_iter(&t.to_string()) {
            used.insert(cap[1].to_string());
        }
    }
    assert_eq!(
        used,
        c.legend.keys().cloned().collect(),
        "legend = prefixes used"
    );
    assert!(c.legend.keys().all(|p| p.len() < 64), "short prefixes");
    let (p, tag) = c.legend.iter().next().expect("some tag");
    assert_eq!(
        c.decode(&format!("{p} ")),
        Some(tag),
        "trailing space ignored"
    );
    assert_eq!(c.decode("nope"), None);
    let e2h: Vec<_> = c
        .legend
        .values()
        .filter(|t| t.decider == Decider::EndpointToHost(EndpointToHostAction::Accept))
        .collect();
    assert_eq!(e2h.len(), 2, "one per node");
    assert!(e2h.iter().all(|t| t.stage == StageKind::EndpointToHost));
    // Deterministic.
    let again = compile(&small_world(&format!("{GNP_T}{TIERED}{SERVICES}{HEP}")));
    assert_eq!(again.legend, c.legend);
    for (n, t) in &c.tables {
        assert_eq!(again.tables[n].to_string(), t.to_string());
    }
}

#[test]
fn equal_workloads_share_their_policy_walk() {
    // client and server differ (a policy selects the server), client and a second
    // client share.
    let extra = format!(
        "{GNP_T}{}",
        pod(
            "default",
            "client2",
            "app: client",
            r#"["10.244.0.11","fd00::11"]"#,
            "node1",
            ""
        )
    );
    let c = compile(&small_world(&extra));
    let walk = |name: &str| chain(&c, "node1", &format!("cali-tw-{}", iface("default", name)));
    assert_eq!(walk("client"), walk("client2"));
    assert_ne!(walk("client"), walk("server"));
}

#[test]
fn ipv4_only_worlds_render_no_ipv6_rule_variants() {
    let v6 = compile(&small_world(GNP_T)).tables["node1"].to_string();
    assert!(
        v6.contains("ip6 saddr @cali60s-"),
        "dual-stack pods: IPv6 variants"
    );
    let text = GNP_T.to_string();
    let mut w = small_world(&text);
    for e in &mut w.endpoints {
        e.ips.retain(|ip| ip.is_ipv4());
    }
    let v4 = compile(&w).tables["node1"].to_string();
    assert!(!v4.contains("ip6 ") && !v4.contains("nfproto ipv6"), "{v4}");
    assert!(v4.contains("ip saddr @cali40s-"), "{v4}");
}

#[test]
fn selector_sets_are_hash_sets_unless_a_network_set_adds_cidrs() {
    let netset = r#"---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: bad, labels: {app: client}}
spec: {nets: [192.0.2.0/24, 198.51.100.7]}
"#;
    let plain = compile(&small_world(GNP_T));
    let with_nets = compile(&small_world(&format!("{GNP_T}{netset}")));
    let sel = |c: &Compiled| {
        c.tables["node1"]
            .sets
            .iter()
            .find(|s| s.name.as_str().starts_with("cali40s-"))
            .cloned()
            .expect("selector set")
    };
    let a = sel(&plain);
    assert!(!a.interval);
    assert_eq!(
        a.elements()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>(),
        ["10.244.0.10"]
    );
    let b = sel(&with_nets);
    assert!(b.interval);
    assert_eq!(
        b.elements()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>(),
        ["10.244.0.10/32", "192.0.2.0/24", "198.51.100.7/32"]
    );
    assert_eq!(a.name, b.name, "named after the selector");
    // Host networks only (a threat feed's list): still a hash set.
    let hosts = netset.replace("192.0.2.0/24, ", "192.0.2.9/32, ");
    let c = sel(&compile(&small_world(&format!("{GNP_T}{hosts}"))));
    assert!(!c.interval, "host networks are single addresses");
    assert_eq!(
        c.elements()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>(),
        ["10.244.0.10", "192.0.2.9", "198.51.100.7"]
    );
}
