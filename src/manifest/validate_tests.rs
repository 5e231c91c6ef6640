//! Table-driven tests of Calico's and Kubernetes' rules: one `check` per area, each
//! case a manifest (or a piece of one) and the exact diagnostics, `line:col: message`.

use rstest::rstest;

use crate::diag::{Diagnostics, Severity, Sources};
use crate::manifest::check_stream;

/// Loads `yaml` as a manifest stream; the diagnostics as `line:col: message` lines.
fn run(yaml: &str) -> String {
    let mut sources = Sources::new();
    let f = sources.add("t.yaml", yaml);
    let mut diags = Diagnostics::new();
    check_stream(yaml, f, &mut diags);
    diags
        .sorted()
        .iter()
        .map(|d| {
            let at = d
                .span
                .map(|s| format!("{}:{}", s.line, s.col))
                .unwrap_or_default();
            let w = if d.severity == Severity::Warning {
                "warning: "
            } else {
                ""
            };
            format!("{at}: {w}{}", d.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn check(yaml: &str, expected: &str) {
    let got = run(yaml);
    assert_eq!(got, expected, "\n--- input ---\n{yaml}--- got ---\n{got}\n");
}

fn np_rule(direction: &str, rule: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: default\nspec:\n  {direction}:\n  - {rule}\n"
    )
}

fn gnp_rule(direction: &str, rule: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: p\nspec:\n  {direction}:\n  - {rule}\n"
    )
}

fn gnp_spec(spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: p\nspec:\n{spec}")
}

fn np_selector(selector: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: default\nspec:\n  selector:{selector}"
    )
}

fn threat_feed(spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: GlobalThreatFeed\nmetadata:\n  name: feed\nspec:\n{spec}")
}

fn k8s_np(spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: np\n  namespace: default\nspec:\n  podSelector: {{}}\n{spec}"
    )
}

fn service(spec: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n{spec}")
}

fn pod(spec: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: red\nspec:\n{spec}")
}

fn deployment(spec: &str) -> String {
    format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n{spec}")
}

/// The seed tutorials' manifests (fixtures/), with sample values for their
/// placeholders, load without a single diagnostic.
#[test]
fn seed_manifests_are_clean() {
    let vars = [
        ("GATEWAY_SERVICE_IP", "10.96.0.50"),
        ("NODE_IP", "172.18.0.11"),
        ("WORKER_IP", "172.18.0.11"),
        ("LOADBALANCER_IP", "198.51.100.80"),
        ("NODE_PORT", "31024"),
        ("CLIENT_ADDRESS", "198.51.100.7"),
    ];
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let mut files = Vec::new();
    for d in std::fs::read_dir(root).expect("fixtures/") {
        let d = d.expect("entry").path();
        if d.is_dir() {
            for f in std::fs::read_dir(&d).expect("fixture dir") {
                let f = f.expect("entry").path();
                if f.extension().is_some_and(|x| x == "yaml") {
                    files.push(f);
                }
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    let mut report = String::new();
    for f in &files {
        let mut text = std::fs::read_to_string(f).expect("utf-8");
        for (k, v) in vars {
            text = text
                .replace(&format!("${{{k}}}"), v)
                .replace(&format!("${k}"), v);
        }
        let got = run(&text);
        if !got.is_empty() {
            report.push_str(&format!("{}:\n{got}\n", f.display()));
        }
    }
    assert!(report.is_empty(), "{report}");
}

/// Rules of a NetworkPolicy's ingress: ports, protocols, ICMP, nets, HTTP, services,
/// entity selectors. The rule is on line 8, from column 5.
#[rstest]
#[case::tcp_ports_of_every_form(
    "{action: Allow, protocol: TCP, destination: {ports: [80, '8000:8080', http]}}",
    ""
)]
#[case::numeric_port_without_protocol(
    "{action: Allow, destination: {ports: [http, 80]}}",
    "8:49: spec.ingress[0].destination.ports[1]: rules with numeric port or port range must set protocol to TCP or UDP or SCTP"
)]
#[case::named_ports_without_protocol_are_fine(
    "{action: Allow, destination: {ports: [http, metrics]}}",
    ""
)]
#[case::numeric_not_ports_without_protocol(
    "{action: Allow, source: {notPorts: ['1024:65535']}}",
    "8:41: spec.ingress[0].source.notPorts[0]: rules with numeric port or port range must set protocol to TCP or UDP or SCTP"
)]
#[case::ports_with_icmp(
    "{action: Allow, protocol: ICMP, destination: {ports: [80]}}",
    "8:59: spec.ingress[0].destination.ports: rules that specify ports must set protocol to TCP or UDP or SCTP (protocol is ICMP)"
)]
#[case::ports_with_udplite(
    "{action: Allow, protocol: UDPLite, source: {ports: [53]}}",
    "8:57: spec.ingress[0].source.ports: rules that specify ports must set protocol to TCP or UDP or SCTP (protocol is UDPLite)"
)]
#[case::ports_with_protocol_47(
    "{action: Allow, protocol: 47, destination: {ports: [http]}}",
    "8:57: spec.ingress[0].destination.ports: rules that specify ports must set protocol to TCP or UDP or SCTP (protocol is 47)"
)]
#[case::protocol_numbers_with_ports("{action: Allow, protocol: 6, destination: {ports: [80]}}", "")]
#[case::protocol_number_as_string(
    "{action: Allow, protocol: '17', destination: {ports: [53]}}",
    ""
)]
#[case::protocol_lowercase(
    "{action: Allow, protocol: tcp}",
    "8:31: spec.ingress[0].protocol: protocol name invalid (names are case-sensitive: write TCP)"
)]
#[case::protocol_lowercase_icmpv6(
    "{action: Allow, notProtocol: icmpv6}",
    "8:34: spec.ingress[0].notProtocol: protocol name invalid (names are case-sensitive: write ICMPv6)"
)]
#[case::protocol_zero(
    "{action: Allow, protocol: 0}",
    "8:31: spec.ingress[0].protocol: protocol number invalid"
)]
#[case::protocol_256(
    "{action: Allow, protocol: 256}",
    "8:31: spec.ingress[0].protocol: protocol number invalid: 256 is not between 1 and 255"
)]
#[case::protocol_unknown_name(
    "{action: Allow, protocol: GRE}",
    "8:31: spec.ingress[0].protocol: protocol name invalid (expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255)"
)]
#[case::port_zero(
    "{action: Allow, protocol: TCP, destination: {ports: [0]}}",
    "8:58: spec.ingress[0].destination.ports[0]: port range invalid, port number must be between 1 and 65535"
)]
#[case::port_65536(
    "{action: Allow, protocol: TCP, destination: {ports: [65536]}}",
    "8:58: spec.ingress[0].destination.ports[0]: port range invalid, port number must be between 1 and 65535"
)]
#[case::port_string_65536(
    "{action: Allow, protocol: TCP, destination: {ports: ['65536']}}",
    "8:58: spec.ingress[0].destination.ports[0]: invalid port format (65536); port range invalid, port number must be between 1 and 65535"
)]
#[case::range_min_above_max(
    "{action: Allow, protocol: TCP, destination: {ports: ['100:10']}}",
    "8:58: spec.ingress[0].destination.ports[0]: minimum port number (100) is greater than maximum port number (10) in port range"
)]
#[case::range_from_zero(
    "{action: Allow, protocol: TCP, destination: {ports: ['0:10']}}",
    "8:58: spec.ingress[0].destination.ports[0]: port range invalid, port number must be between 1 and 65535"
)]
#[case::range_max_too_big(
    "{action: Allow, protocol: UDP, destination: {ports: ['1:70000']}}",
    "8:58: spec.ingress[0].destination.ports[0]: invalid maximum port number in range (1:70000)"
)]
#[case::named_port_with_underscore(
    "{action: Allow, protocol: TCP, destination: {ports: [http_alt]}}",
    "8:58: spec.ingress[0].destination.ports[0]: invalid name for named port (http_alt): must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
)]
#[case::named_port_with_space(
    "{action: Allow, protocol: TCP, destination: {ports: ['web port']}}",
    "8:58: spec.ingress[0].destination.ports[0]: invalid name for named port (web port)"
)]
#[case::icmp_type_and_code("{action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}}", "")]
#[case::icmp_code_without_type(
    "{action: Allow, protocol: ICMP, icmp: {code: 0}}",
    "8:50: spec.ingress[0].icmp.code: ICMP code specified without an ICMP type"
)]
#[case::not_icmp_code_without_type(
    "{action: Allow, protocol: ICMP, notICMP: {code: 1}}",
    "8:53: spec.ingress[0].notICMP.code: ICMP code specified without an ICMP type"
)]
#[case::icmp_without_protocol(
    "{action: Allow, icmp: {type: 8}}",
    "8:21: spec.ingress[0].icmp: ICMP fields require protocol to be ICMP or ICMPv6"
)]
#[case::icmp_with_tcp(
    "{action: Allow, protocol: TCP, icmp: {type: 8}}",
    "8:36: spec.ingress[0].icmp: ICMP fields require protocol to be ICMP or ICMPv6"
)]
#[case::icmp_type_255(
    "{action: Allow, protocol: ICMP, icmp: {type: 255}}",
    "8:50: spec.ingress[0].icmp.type: 255 is out of range: must be at most 254"
)]
#[case::icmp_with_ip_version_6(
    "{action: Allow, protocol: ICMP, ipVersion: 6}",
    "8:48: spec.ingress[0].ipVersion: protocol ICMP requires ipVersion 4"
)]
#[case::icmp_number_with_ip_version_6(
    "{action: Allow, protocol: 1, ipVersion: 6}",
    "8:45: spec.ingress[0].ipVersion: protocol ICMP requires ipVersion 4"
)]
#[case::icmpv6_with_ip_version_4(
    "{action: Allow, protocol: ICMPv6, ipVersion: 4}",
    "8:50: spec.ingress[0].ipVersion: protocol ICMPv6 requires ipVersion 6"
)]
#[case::not_protocol_icmp_with_ip_version_6(
    "{action: Allow, notProtocol: ICMP, ipVersion: 6}",
    "8:51: spec.ingress[0].ipVersion: protocol ICMP requires ipVersion 4"
)]
#[case::icmpv6_number_fine("{action: Allow, protocol: 58, ipVersion: 6, icmp: {type: 128}}", "")]
#[case::ip_version_5(
    "{action: Allow, ipVersion: 5}",
    "8:32: spec.ingress[0].ipVersion: unsupported value 5 (expected one of: 4, 6)"
)]
#[case::action_lowercase(
    "{action: allow}",
    "8:14: spec.ingress[0].action: unsupported value \"allow\" (expected one of: Allow, Deny, Log, Pass)"
)]
#[case::nets_of_both_families(
    "{action: Allow, source: {nets: [10.0.0.0/8, 'fd00::/8']}}",
    "8:49: spec.ingress[0].source.nets[1]: rule contains both IPv4 and IPv6 CIDRs"
)]
#[case::families_mixed_across_fields(
    "{action: Allow, source: {nets: [10.0.0.0/8]}, destination: {notNets: ['fd00::/8']}}",
    "8:75: spec.ingress[0].destination.notNets[0]: rule contains both IPv4 and IPv6 CIDRs"
)]
#[case::cidr_family_vs_ip_version(
    "{action: Allow, ipVersion: 6, destination: {nets: [10.0.0.0/8]}}",
    "8:56: spec.ingress[0].destination.nets[0]: rule IP version doesn't match CIDR version"
)]
#[case::not_nets_catch_all_v4(
    "{action: Allow, destination: {notNets: [0.0.0.0/0]}}",
    "8:45: spec.ingress[0].destination.notNets[0]: catch-all CIDR in negation creates logical contradiction (matches no traffic)"
)]
#[case::not_nets_catch_all_v6(
    "{action: Allow, source: {notNets: ['::/0']}}",
    "8:40: spec.ingress[0].source.notNets[0]: catch-all CIDR in negation creates logical contradiction (matches no traffic)"
)]
#[case::nets_catch_all_is_fine("{action: Allow, destination: {nets: [0.0.0.0/0]}}", "")]
#[case::bare_ip_in_nets(
    "{action: Allow, destination: {nets: [192.0.2.7]}}",
    "8:42: spec.ingress[0].destination.nets[0]: invalid CIDR \"192.0.2.7\": rule nets need a prefix length (for one address write 192.0.2.7/32)"
)]
#[case::host_bits_in_nets(
    "{action: Allow, destination: {nets: [192.0.2.7/24]}}",
    "8:42: spec.ingress[0].destination.nets[0]: invalid CIDR \"192.0.2.7/24\": host bits are set (the network is 192.0.2.0/24)"
)]
#[case::prefix_too_long(
    "{action: Allow, destination: {nets: [192.0.2.0/33]}}",
    "8:42: spec.ingress[0].destination.nets[0]: invalid CIDR: prefix length \"33\" is out of range for IPv4 (0-32)"
)]
#[case::v6_prefix_too_long(
    "{action: Allow, destination: {nets: ['2001:db8::/129']}}",
    "8:42: spec.ingress[0].destination.nets[0]: invalid CIDR: prefix length \"129\" is out of range for IPv6 (0-128)"
)]
#[case::not_a_cidr(
    "{action: Allow, destination: {nets: [gateway]}}",
    "8:42: spec.ingress[0].destination.nets[0]: invalid CIDR: \"gateway\" is not an IP address or CIDR"
)]
#[case::http_on_deny(
    "{action: Deny, http: {methods: [GET]}}",
    "8:20: spec.ingress[0].http: HTTP match is only valid on Allow rules"
)]
#[case::http_with_udp(
    "{action: Allow, protocol: UDP, http: {methods: [GET]}}",
    "8:31: spec.ingress[0].protocol: rules with HTTP match must have protocol TCP or unset"
)]
#[case::http_with_tcp_is_fine(
    "{action: Allow, protocol: TCP, http: {methods: [GET], paths: [{prefix: /api}]}}",
    ""
)]
#[case::http_duplicate_methods(
    "{action: Allow, http: {methods: [GET, GET]}}",
    "8:37: spec.ingress[0].http.methods: Invalid methods (duplicates): [GET GET]"
)]
#[case::http_path_exact_and_prefix(
    "{action: Allow, http: {paths: [{exact: /a, prefix: /b}]}}",
    "8:36: spec.ingress[0].http.paths[0]: Invalid path match. Both 'exact' and 'prefix' are set"
)]
#[case::http_path_without_slash(
    "{action: Allow, http: {paths: [{exact: a}]}}",
    "8:36: spec.ingress[0].http.paths[0]: Invalid path a. (must start with `/` and not contain `?` or `#`"
)]
#[case::services_in_source(
    "{action: Allow, source: {services: {name: web, namespace: default}}}",
    ""
)]
#[case::services_in_ingress_destination(
    "{action: Allow, destination: {services: {name: web}}}",
    "8:35: spec.ingress[0].destination.services: not allowed in ingress rule destination"
)]
#[case::services_without_name(
    "{action: Allow, source: {services: {namespace: default}}}",
    "8:30: spec.ingress[0].source.services: services must specify a service name"
)]
#[case::services_with_selector(
    "{action: Allow, source: {services: {name: web}, selector: app == 'x'}}",
    "8:30: spec.ingress[0].source.services: cannot specify Selector/NotSelector and Services on the same rule"
)]
#[case::services_with_nets(
    "{action: Allow, source: {services: {name: web}, nets: [10.0.0.0/8]}}",
    "8:30: spec.ingress[0].source.services: cannot specify Nets/NotNets and Services on the same rule"
)]
#[case::services_with_namespace_selector(
    "{action: Allow, source: {services: {name: web}, namespaceSelector: all()}}",
    "8:30: spec.ingress[0].source.services: cannot specify NamespaceSelector and Services on the same rule"
)]
#[case::services_with_service_accounts(
    "{action: Allow, source: {services: {name: web}, serviceAccounts: {names: [api]}}}",
    "8:30: spec.ingress[0].source.services: cannot specify ServiceAccounts and Services on the same rule"
)]
#[case::global_in_entity_selector(
    "{action: Allow, source: {selector: 'global()'}}",
    "8:41: spec.ingress[0].source.selector: global() can only be used in an EntityRule namespaceSelector"
)]
#[case::global_namespace_selector_is_fine(
    "{action: Allow, source: {namespaceSelector: global()}}",
    ""
)]
#[case::global_namespace_selector_with_spaces_is_fine(
    "{action: Allow, source: {namespaceSelector: '  global() '}}",
    ""
)]
#[case::global_negated_in_namespace_selector(
    "{action: Allow, source: {namespaceSelector: '!global()'}}",
    "8:49: spec.ingress[0].source.namespaceSelector: global() cannot be combined with other selectors"
)]
#[case::global_combined_in_namespace_selector(
    "{action: Allow, source: {namespaceSelector: global() && env == 'prod'}}",
    "8:49: spec.ingress[0].source.namespaceSelector: global() cannot be combined with other selectors"
)]
#[case::bad_not_selector(
    "{action: Allow, source: {notSelector: 'a = \"b\"'}}",
    "8:46: spec.ingress[0].source.notSelector: invalid selector: '=' is not an operator; did you mean '=='?"
)]
#[case::bad_service_account_selector(
    "{action: Allow, source: {serviceAccounts: {selector: 'has(team'}}}",
    "8:67: spec.ingress[0].source.serviceAccounts.selector: invalid selector: expected ')' to close 'has(', found end of selector"
)]
fn np_ingress_rules(#[case] rule: &str, #[case] expected: &str) {
    check(&np_rule("ingress", rule), expected);
}

/// Rules of a NetworkPolicy's egress: where services and HTTP may appear.
#[rstest]
#[case::services_in_destination("{action: Allow, destination: {services: {name: web}}}", "")]
#[case::services_with_ports(
    "{action: Allow, protocol: TCP, destination: {services: {name: web}, ports: [80]}}",
    "8:81: spec.egress[0].destination.ports: ports and notPorts cannot be specified with services"
)]
#[case::services_with_not_ports(
    "{action: Allow, protocol: TCP, destination: {services: {name: web}, notPorts: [80]}}",
    "8:84: spec.egress[0].destination.notPorts: ports and notPorts cannot be specified with services"
)]
#[case::services_in_egress_source(
    "{action: Allow, source: {services: {name: web}}}",
    "8:30: spec.egress[0].source.services: not allowed in egress rule source"
)]
#[case::http_in_egress(
    "{action: Allow, http: {methods: [GET]}}",
    "8:21: spec.egress[0].http: not allowed in egress rule"
)]
fn np_egress_rules(#[case] rule: &str, #[case] expected: &str) {
    check(&np_rule("egress", rule), expected);
}

/// Rules of a GlobalNetworkPolicy's egress (line 7): services need a namespace.
#[rstest]
#[case::services_need_a_namespace(
    "{action: Allow, destination: {services: {name: web}}}",
    "7:35: spec.egress[0].destination.services.namespace: must specify a namespace (a global policy has no namespace of its own)"
)]
#[case::services_with_namespace(
    "{action: Allow, destination: {services: {name: web, namespace: prod}}}",
    ""
)]
#[case::http_in_egress(
    "{action: Allow, http: {methods: [GET]}}",
    "7:21: spec.egress[0].http: not allowed in egress rules"
)]
fn gnp_egress_rules(#[case] rule: &str, #[case] expected: &str) {
    check(&gnp_rule("egress", rule), expected);
}

/// The GlobalNetworkPolicy spec: CEL rules on preDNAT/doNotTrack/applyOnForward,
/// global() outside entity namespaceSelectors, types, tier.
#[rstest]
#[case::prednat_done_right(
    "  preDNAT: true\n  applyOnForward: true\n  selector: has(host)\n  ingress:\n  - action: Deny\n",
    ""
)]
#[case::prednat_and_do_not_track(
    "  preDNAT: true\n  doNotTrack: true\n  applyOnForward: true\n",
    "6:12: spec.preDNAT: preDNAT and doNotTrack cannot both be true"
)]
#[case::prednat_with_egress_rules(
    "  preDNAT: true\n  applyOnForward: true\n  egress:\n  - action: Allow\n",
    "8:3: spec.egress: preDNAT policy cannot have any egress rules"
)]
#[case::prednat_with_egress_type(
    "  preDNAT: true\n  applyOnForward: true\n  types: [Ingress, Egress]\n",
    "8:20: spec.types[1]: preDNAT policy cannot have 'Egress' type"
)]
#[case::prednat_without_apply_on_forward(
    "  preDNAT: true\n",
    "6:12: spec.applyOnForward: applyOnForward must be true if either preDNAT or doNotTrack is true (this policy sets preDNAT)"
)]
#[case::do_not_track_with_apply_on_forward_false(
    "  doNotTrack: true\n  applyOnForward: false\n",
    "7:19: spec.applyOnForward: applyOnForward must be true if either preDNAT or doNotTrack is true (this policy sets doNotTrack)"
)]
#[case::global_in_selector(
    "  selector: \"global()\"\n",
    "6:14: spec.selector: global() can only be used in an EntityRule namespaceSelector"
)]
#[case::global_in_namespace_selector(
    "  namespaceSelector: global()\n",
    "6:22: spec.namespaceSelector: global() can only be used in an EntityRule namespaceSelector"
)]
#[case::global_in_service_account_selector(
    "  serviceAccountSelector: role == 'x' || global()\n",
    "6:42: spec.serviceAccountSelector: global() can only be used in an EntityRule namespaceSelector"
)]
#[case::duplicate_types(
    "  types:\n  - Egress\n  - Egress\n",
    "8:5: spec.types[1]: duplicate value \"Egress\" (the list is a set)"
)]
#[case::three_types(
    "  types: [Ingress, Egress, Ingress]\n",
    concat!(
        "6:10: spec.types: too many items: 3, at most 2 allowed\n",
        "6:28: spec.types[2]: duplicate value \"Ingress\" (the list is a set)",
    )
)]
#[case::types_lowercase(
    "  types: [ingress]\n",
    "6:11: spec.types[0]: unsupported value \"ingress\" (expected one of: Ingress, Egress)"
)]
#[case::tier_name_with_dot(
    "  tier: a.b\n",
    "6:9: spec.tier: name must consist of lower case alphanumeric characters or '-' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?)"
)]
#[case::every_selector_field_checked(
    "  selector: a ==\n  namespaceSelector: b ==\n  serviceAccountSelector: c ==\n",
    concat!(
        "6:17: spec.selector: invalid selector: expected a string literal after '==', found end of selector\n",
        "7:26: spec.namespaceSelector: invalid selector: expected a string literal after '==', found end of selector\n",
        "8:31: spec.serviceAccountSelector: invalid selector: expected a string literal after '==', found end of selector",
    )
)]
fn gnp_specs(#[case] spec: &str, #[case] expected: &str) {
    check(&gnp_spec(spec), expected);
}

/// A selector's syntax error is reported at the exact character, whatever the YAML
/// style of the string (the selector starts on line 7).
#[rstest]
#[case::plain(
    " a == b\n",
    "7:18: spec.selector: invalid selector: expected a string literal after '==', found 'b' (values must be quoted: \"b\")"
)]
#[case::single_quoted(
    " 'a == b'\n",
    "7:19: spec.selector: invalid selector: expected a string literal after '==', found 'b' (values must be quoted: \"b\")"
)]
#[case::double_quoted(
    " \"a == b\"\n",
    "7:19: spec.selector: invalid selector: expected a string literal after '==', found 'b' (values must be quoted: \"b\")"
)]
#[case::single_quoted_with_escaped_quotes(
    " 'a in {''x'', ''y''} b'\n",
    "7:34: spec.selector: invalid selector: unexpected content at end of selector: label 'b'"
)]
#[case::double_quoted_with_escapes(
    " \"a == \\\"x\\\" b\"\n",
    "7:25: spec.selector: invalid selector: unexpected content at end of selector: label 'b'"
)]
#[case::on_the_next_line(
    "\n    a == 'x' && b\n",
    "8:18: spec.selector: invalid selector: expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'b', found end of selector"
)]
#[case::folded_plain_over_two_lines(
    " a == 'x' &&\n    b == c\n",
    "8:10: spec.selector: invalid selector: expected a string literal after '==', found 'c' (values must be quoted: \"c\")"
)]
#[case::folded_block(
    " >-\n    a == 'x' &&\n    b == c\n",
    "9:10: spec.selector: invalid selector: expected a string literal after '==', found 'c' (values must be quoted: \"c\")"
)]
#[case::literal_block_newline(
    " |\n    a == 'x' &&\n    b == 'y'\n",
    "8:16: spec.selector: invalid selector: newline is not allowed in a selector"
)]
#[case::tab_inside(
    " \"a ==\\t'x' && %\"\n",
    "7:27: spec.selector: invalid selector: unexpected character '%'"
)]
#[case::unicode_before_the_error(
    " \"a == 'zürich' &&& b\"\n",
    "7:30: spec.selector: invalid selector: '&' is not an operator; did you mean '&&'?"
)]
#[case::trailing_operator(
    " has(a) &&\n",
    "7:22: spec.selector: invalid selector: expected a label, 'has(', 'all()', 'global()', '!' or '(', found end of selector"
)]
#[case::empty_is_all(" ''\n", "")]
fn selector_error_positions(#[case] selector: &str, #[case] expected: &str) {
    check(&np_selector(selector), expected);
}

/// Names (per kind), namespaces, labels and annotations.
#[rstest]
#[case::missing_name(
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  labels: {a: b}\nspec:\n  nets: [10.0.0.0/8]\n",
    "3:1: metadata.name: required field missing"
)]
#[case::no_metadata_at_all(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nspec:\n  order: 10\n",
    "1:1: metadata: required field missing"
)]
#[case::generate_name_only(
    "apiVersion: v1\nkind: Pod\nmetadata:\n  generateName: web-\nspec:\n  containers: [{name: web, image: nginx}]\n",
    "3:1: metadata.name: required field missing (policylab refers to objects by name; generateName is not supported)"
)]
#[case::empty_name(
    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ''\n",
    "4:9: metadata.name: must not be empty"
)]
#[case::policy_name_with_capitals(
    "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: Allow-All\n  namespace: default\nspec: {}\n",
    "4:9: metadata.name: name must consist of lower case alphanumeric characters or '-' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?) with at most one '.'"
)]
#[case::policy_name_with_two_dots(
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: a.b.c\nspec: {}\n",
    "4:9: metadata.name: name must consist of lower case alphanumeric characters or '-' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?) with at most one '.'"
)]
#[case::policy_name_with_one_dot(
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: security.block-ip-list\nspec: {}\n",
    ""
)]
#[case::tier_name_with_dot(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: sec.urity\nspec: {}\n",
    "4:9: metadata.name: name must consist of lower case alphanumeric characters or '-' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?)"
)]
#[case::network_set_name_with_underscore(
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: ip_protect\nspec: {}\n",
    "4:9: metadata.name: name must consist of lower case alphanumeric characters, '-' or '.' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)"
)]
#[case::service_name_starting_with_digit(
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: 1web\nspec:\n  ports: [{port: 80}]\n",
    "4:9: metadata.name: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)]
#[case::namespace_on_global_kind(
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: p\n  namespace: default\nspec: {}\n",
    "5:14: metadata.namespace: GlobalNetworkPolicy is cluster-scoped and has no namespace; remove metadata.namespace"
)]
#[case::namespace_on_tier(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: t\n  namespace: default\nspec:\n  order: 1\n",
    "5:14: metadata.namespace: Tier is cluster-scoped and has no namespace; remove metadata.namespace"
)]
#[case::namespace_with_capitals(
    "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata:\n  name: s\n  namespace: Prod\nspec: {}\n",
    "5:14: metadata.namespace: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)]
#[case::label_key_with_space(
    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels:\n    'team name': a\n",
    "6:5: metadata.labels: invalid label key \"team name\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)]
#[case::label_key_with_bad_prefix(
    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels:\n    Example.COM/team: a\n",
    "6:5: metadata.labels: invalid label key \"Example.COM/team\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)]
#[case::label_value_with_space(
    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels:\n    team: a b\n",
    "6:11: metadata.labels.team: \"a b\" does not match the pattern ^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
)]
#[case::boolean_label_value(
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: ip-protect\n  labels:\n    IP-blacklist: true\nspec: {}\n",
    "6:19: metadata.labels.IP-blacklist: expected string, found boolean `true` (quote it: \"true\")"
)]
#[case::network_set_namespace_label(
    "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata:\n  name: s\n  namespace: default\n  labels:\n    projectcalico.org/namespace: default\nspec: {}\n",
    "7:5: metadata.labels: projectcalico.org/namespace is not a valid label name (Calico sets it on namespaced network sets itself)"
)]
#[case::global_network_set_namespace_label(
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: s\n  labels:\n    projectcalico.org/namespace: x\nspec: {}\n",
    "6:5: metadata.labels: projectcalico.org/namespace is not a valid label name (Calico sets it on namespaced network sets itself)"
)]
#[case::annotation_key(
    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  annotations:\n    'a/b/c': x\n",
    "6:5: metadata.annotations: invalid key \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
)]
fn metadata(#[case] yaml: &str, #[case] expected: &str) {
    check(yaml, expected);
}

/// Tier defaultAction and the CEL rules of the reserved tiers.
#[rstest]
#[case::ordinary(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: security\nspec:\n  order: 300\n  defaultAction: Pass\n",
    ""
)]
#[case::default_done_right(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: default\nspec:\n  order: 1000000\n",
    ""
)]
#[case::default_with_wrong_order(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: default\nspec:\n  order: 100\n",
    "6:10: spec.order: default tier order must be 1000000"
)]
#[case::default_without_order(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: default\nspec: {}\n",
    "5:1: spec.order: default tier order must be 1000000"
)]
#[case::default_with_pass(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: default\nspec:\n  order: 1000000\n  defaultAction: Pass\n",
    "7:18: spec.defaultAction: The 'default' tier must have default action 'Deny'"
)]
#[case::kube_admin_without_action(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: kube-admin\nspec:\n  order: 1000\n",
    "5:1: spec.defaultAction: The 'kube-admin' tier must have default action 'Pass' (it defaults to Deny)"
)]
#[case::kube_baseline_done_right(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: kube-baseline\nspec:\n  order: 10000000\n  defaultAction: Pass\n",
    ""
)]
#[case::kube_baseline_wrong_order(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: kube-baseline\nspec:\n  order: 1e6\n  defaultAction: Pass\n",
    "6:10: spec.order: kube-baseline tier order must be 10000000"
)]
#[case::default_action_allow(
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: t\nspec:\n  defaultAction: Allow\n",
    "6:18: spec.defaultAction: unsupported value \"Allow\" (expected one of: Deny, Pass)"
)]
fn tiers(#[case] yaml: &str, #[case] expected: &str) {
    check(yaml, expected);
}

/// HostEndpoint: node, interfaceName/expectedIPs, named ports.
#[rstest]
#[case::with_interface(
    "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: h\nspec:\n  node: node-1\n  interfaceName: eth0\n  expectedIPs: [172.18.0.11]\n",
    ""
)]
#[case::wildcard_interface(
    "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: h\nspec:\n  node: node-1\n  interfaceName: '*'\n",
    ""
)]
#[case::neither_interface_nor_ips(
    "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: h\nspec:\n  node: node-1\n",
    "5:1: spec: at least one of interfaceName or expectedIPs must be specified"
)]
#[case::empty_interface_and_ips(
    "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: h\nspec:\n  node: node-1\n  interfaceName: ''\n  expectedIPs: []\n",
    "5:1: spec: at least one of interfaceName or expectedIPs must be specified"
)]
#[case::no_node(
    "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: h\nspec:\n  interfaceName: eth0\n",
    "5:1: spec.node: node must be specified"
)]
#[case::cidr_as_expected_ip(
    "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: h\nspec:\n  node: node-1\n  expectedIPs: [172.18.0.0/24, nope]\n",
    concat!(
        "7:17: spec.expectedIPs[0]: invalid IP address \"172.18.0.0/24\" (expectedIPs are single addresses, not CIDRs)\n",
        "7:32: spec.expectedIPs[1]: invalid IP address \"nope\"",
    )
)]
#[case::interface_name_too_long(
    "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: h\nspec:\n  node: node-1\n  interfaceName: a-very-long-interface\n",
    "7:18: spec.interfaceName: too long: 21 characters, at most 15 allowed"
)]
#[case::port_with_icmp(
    "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: h\nspec:\n  node: node-1\n  interfaceName: eth0\n  ports:\n  - {name: ping, protocol: ICMP, port: 1}\n",
    "9:28: spec.ports[0].protocol: EndpointPort protocol does not support ports."
)]
#[case::port_bad_name_and_number(
    "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: h\nspec:\n  node: node-1\n  interfaceName: eth0\n  ports:\n  - {name: Web_Port, protocol: TCP, port: 0}\n",
    "9:43: spec.ports[0].port: 0 is out of range: must be at least 1"
)]
fn host_endpoints(#[case] yaml: &str, #[case] expected: &str) {
    check(yaml, expected);
}

/// NetworkSet/GlobalNetworkSet nets (ParseCIDROrIP: bare addresses are fine).
#[rstest]
#[case::cidrs_and_addresses(
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: s\nspec:\n  nets: [192.0.2.55/32, 203.0.113.0/24, 198.51.100.7, '2001:db8::/32']\n",
    ""
)]
#[case::host_bits_are_a_warning(
    "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata:\n  name: s\n  namespace: default\nspec:\n  nets: [10.96.0.50/0]\n",
    "7:10: warning: spec.nets[0]: \"10.96.0.50/0\" has host bits set; the set holds the whole network 0.0.0.0/0"
)]
#[case::bad_cidrs(
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: s\nspec:\n  nets: [10.0.0.0/40, 10.0.0, 'fd00::/200']\n",
    concat!(
        "6:10: spec.nets[0]: invalid CIDR: prefix length \"40\" is out of range for IPv4 (0-32)\n",
        "6:23: spec.nets[1]: invalid CIDR: \"10.0.0\" is not an IP address or CIDR\n",
        "6:31: spec.nets[2]: invalid CIDR: prefix length \"200\" is out of range for IPv6 (0-128)",
    )
)]
fn network_sets(#[case] yaml: &str, #[case] expected: &str) {
    check(yaml, expected);
}

/// GlobalThreatFeed: URL, period, formats, the GlobalNetworkSet sync.
#[rstest]
#[case::seed_003(
    "  content: IPSet\n  globalNetworkSet:\n    labels: {feed: training}\n  pull:\n    period: 24h\n    http:\n      format: {newlineDelimited: {}}\n      url: https://example.org/ips\n",
    ""
)]
#[case::ftp_url(
    "  pull:\n    http:\n      url: ftp://example.org/ips\n",
    "8:12: spec.pull.http.url: \"ftp://example.org/ips\" does not match the pattern ^https?://"
)]
#[case::url_without_host(
    "  pull:\n    http:\n      url: 'https:///ips'\n",
    "8:12: spec.pull.http.url: invalid URL: no host"
)]
#[case::no_http(
    "  pull:\n    period: 1h\n",
    "7:5: spec.pull.http: required field missing"
)]
#[case::period_not_a_duration(
    "  pull:\n    period: 1 day\n    http: {url: https://e.org/x}\n",
    "7:13: spec.pull.period: invalid duration \"1 day\": expected a Go duration such as 24h, 30m or 1h30m (policylab does not fall back to the default 24h)"
)]
#[case::period_in_days(
    "  pull:\n    period: 1d\n    http: {url: https://e.org/x}\n",
    "7:13: spec.pull.period: invalid duration \"1d\": expected a Go duration such as 24h, 30m or 1h30m (policylab does not fall back to the default 24h)"
)]
#[case::period_below_minimum(
    "  pull:\n    period: 30s\n    http: {url: https://e.org/x}\n",
    "7:13: spec.pull.period: \"30s\" is below the minimum pull period 5m"
)]
#[case::csv_field_num_and_name(
    "  pull:\n    http:\n      url: https://e.org/x\n      format:\n        csv: {fieldNum: 1, fieldName: ip}\n",
    "10:39: spec.pull.http.format.csv: fieldNum and fieldName are mutually exclusive"
)]
#[case::csv_without_field(
    "  pull:\n    http:\n      url: https://e.org/x\n      format:\n        csv: {header: true}\n",
    "10:9: spec.pull.http.format.csv: one of fieldNum or fieldName is required"
)]
#[case::two_formats(
    "  pull:\n    http:\n      url: https://e.org/x\n      format:\n        json: {path: '$.ips'}\n        newlineDelimited: {}\n",
    "9:7: spec.pull.http.format: only one format type may be specified"
)]
#[case::json_without_path(
    "  pull:\n    http:\n      url: https://e.org/x\n      format: {json: {}}\n",
    "9:22: spec.pull.http.format.json.path: required field missing"
)]
#[case::domain_set_with_network_set(
    "  content: DomainNameSet\n  globalNetworkSet: {labels: {a: b}}\n  pull:\n    http: {url: https://e.org/x}\n",
    "7:3: spec.globalNetworkSet: DomainNameSet does not support syncing with a GlobalNetworkSet"
)]
#[case::network_set_without_pull(
    "  globalNetworkSet: {labels: {a: b}}\n",
    "6:3: spec.globalNetworkSet: a feed synced into a GlobalNetworkSet needs spec.pull (there is nothing to sync without it)"
)]
#[case::network_set_bad_label(
    "  globalNetworkSet: {labels: {'bad key': b}}\n  pull:\n    http: {url: https://e.org/x}\n",
    "6:31: spec.globalNetworkSet.labels: invalid label key \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)]
#[case::header_value_and_value_from(
    "  pull:\n    http:\n      url: https://e.org/x\n      headers:\n      - name: token\n        value: x\n        valueFrom: {secretKeyRef: {name: s, key: k}}\n",
    "10:9: spec.pull.http.headers[0]: value and valueFrom are mutually exclusive"
)]
#[case::description_too_long(
    "  description: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    "6:16: spec.description: too long: 257 characters, at most 256 allowed"
)]
fn threat_feeds(#[case] spec: &str, #[case] expected: &str) {
    check(&threat_feed(spec), expected);
}

/// Kubernetes NetworkPolicy: ports/endPort, peers, ipBlock, label selectors.
#[rstest]
#[case::fine(
    "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}\n    - podSelector: {matchLabels: {app: web}}\n    ports:\n    - {port: 8000, endPort: 8080}\n    - {port: http, protocol: TCP}\n",
    ""
)]
#[case::end_port_below_port(
    "  egress:\n  - ports:\n    - {port: 8080, endPort: 8000}\n",
    "10:29: spec.egress[0].ports[0].endPort: must be greater than or equal to `port` (8080)"
)]
#[case::end_port_with_named_port(
    "  egress:\n  - ports:\n    - {port: http, endPort: 8000}\n",
    "10:29: spec.egress[0].ports[0].endPort: may not be specified when `port` is non-numeric"
)]
#[case::end_port_without_port(
    "  egress:\n  - ports:\n    - {endPort: 8000}\n",
    "10:17: spec.egress[0].ports[0].endPort: may not be specified when `port` is not specified"
)]
#[case::port_zero(
    "  ingress:\n  - ports:\n    - {port: 0}\n",
    "10:14: spec.ingress[0].ports[0].port: must be between 1 and 65535, inclusive"
)]
#[case::protocol_icmp(
    "  ingress:\n  - ports:\n    - {protocol: ICMP}\n",
    "10:18: spec.ingress[0].ports[0].protocol: unsupported value \"ICMP\" (expected one of: TCP, UDP, SCTP)"
)]
#[case::in_without_values(
    "  ingress:\n  - from:\n    - podSelector:\n        matchExpressions:\n        - {key: app, operator: In}\n",
    "12:32: spec.ingress[0].from[0].podSelector.matchExpressions[0].values: must be specified when `operator` is 'In' or 'NotIn'"
)]
#[case::exists_with_values(
    "  ingress:\n  - from:\n    - namespaceSelector:\n        matchExpressions:\n        - {key: env, operator: Exists, values: [prod]}\n",
    "12:40: spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
)]
#[case::ip_block_bad_cidr(
    "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.300/8}\n",
    "10:23: spec.ingress[0].from[0].ipBlock.cidr: must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64): \"10.0.0.300\" is not an IP address"
)]
#[case::ip_block_bare_address(
    "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.1}\n",
    "10:23: spec.ingress[0].from[0].ipBlock.cidr: must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64); for one address write 10.0.0.1/32"
)]
#[case::except_outside_cidr(
    "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24, 10.0.0.0/16]}\n",
    concat!(
        "10:45: spec.ingress[0].from[0].ipBlock.except[0]: must be a strict subset of `cidr` (10.0.0.0/16)\n",
        "10:58: spec.ingress[0].from[0].ipBlock.except[1]: must be a strict subset of `cidr` (10.0.0.0/16)",
    )
)]
#[case::ip_block_with_selector(
    "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      podSelector: {}\n",
    "10:7: spec.ingress[0].from[0]: may not specify both ipBlock and another peer"
)]
#[case::empty_peer(
    "  ingress:\n  - from:\n    - {}\n",
    "10:7: spec.ingress[0].from[0]: must specify a peer"
)]
#[case::bad_match_label_value(
    "  ingress:\n  - from:\n    - podSelector: {matchLabels: {app: 'web server'}}\n",
    "10:40: spec.ingress[0].from[0].podSelector.matchLabels.app: invalid label value: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)]
fn k8s_network_policies(#[case] spec: &str, #[case] expected: &str) {
    check(&k8s_np(spec), expected);
}

/// Service: type, ports, nodePort range, type-specific fields.
#[rstest]
#[case::seed_002_load_balancer(
    "  type: LoadBalancer\n  selector: {run: webserver}\n  ports:\n  - {name: webserver-port, port: 80, protocol: TCP, targetPort: 8080, nodePort: 31024}\n  loadBalancerIP: 198.51.100.80\n  externalTrafficPolicy: Local\n",
    ""
)]
#[case::node_port_out_of_range(
    "  type: NodePort\n  ports:\n  - {port: 80, nodePort: 40000}\n",
    "8:26: spec.ports[0].nodePort: 40000: provided port is not in the valid range. The range of valid ports is 30000-32767"
)]
#[case::node_port_on_cluster_ip(
    "  ports:\n  - {port: 80, nodePort: 31000}\n",
    "7:26: spec.ports[0].nodePort: may not be used when `type` is 'ClusterIP'"
)]
#[case::external_traffic_policy_on_cluster_ip(
    "  type: ClusterIP\n  externalTrafficPolicy: Local\n  ports:\n  - {port: 80}\n",
    "7:26: spec.externalTrafficPolicy: may only be set when `type` is 'NodePort' or 'LoadBalancer'"
)]
#[case::load_balancer_ip_on_node_port(
    "  type: NodePort\n  loadBalancerIP: 198.51.100.80\n  ports:\n  - {port: 80}\n",
    "7:19: spec.loadBalancerIP: may only be used when `type` is 'LoadBalancer'"
)]
#[case::load_balancer_ip_not_an_ip(
    "  type: LoadBalancer\n  loadBalancerIP: lb.example.org\n  ports:\n  - {port: 80}\n",
    "7:19: spec.loadBalancerIP: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
)]
#[case::port_zero(
    "  ports:\n  - {port: 0}\n",
    "7:12: spec.ports[0].port: 0 is out of range: must be at least 1"
)]
#[case::target_port_name(
    "  ports:\n  - {port: 80, targetPort: Web_Port}\n",
    "7:28: spec.ports[0].targetPort: must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
)]
#[case::target_port_too_big(
    "  ports:\n  - {port: 80, targetPort: 70000}\n",
    "7:28: spec.ports[0].targetPort: must be between 1 and 65535, inclusive"
)]
#[case::two_ports_without_names(
    "  ports:\n  - {port: 80}\n  - {port: 443}\n",
    concat!(
        "7:5: spec.ports[0].name: required field missing (every port needs a name when there are several)\n",
        "8:5: spec.ports[1].name: required field missing (every port needs a name when there are several)",
    )
)]
#[case::duplicate_port_names(
    "  ports:\n  - {name: http, port: 80}\n  - {name: http, port: 8080}\n",
    "8:12: spec.ports[1].name: duplicate port name \"http\""
)]
#[case::duplicate_ports(
    "  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 80}\n",
    "8:21: spec.ports[1]: duplicate port 80/TCP"
)]
#[case::no_ports(
    "  selector: {app: web}\n",
    "6:3: spec.ports: required field missing (a service needs at least one port)"
)]
#[case::type_external_name(
    "  type: ExternalName\n  ports:\n  - {port: 80}\n",
    "6:9: spec.type: ExternalName services are not supported by policylab (expected one of: ClusterIP, NodePort, LoadBalancer)"
)]
#[case::type_lowercase(
    "  type: nodeport\n  ports:\n  - {port: 80}\n",
    "6:9: spec.type: unsupported value \"nodeport\" (expected one of: ClusterIP, NodePort, LoadBalancer, ExternalName)"
)]
#[case::bad_cluster_ip(
    "  clusterIP: 10.96.0.300\n  ports:\n  - {port: 80}\n",
    "6:14: spec.clusterIP: must be empty, 'None', or a valid IP address"
)]
fn services(#[case] spec: &str, #[case] expected: &str) {
    check(&service(spec), expected);
}

/// Pod: container ports and their names.
#[rstest]
#[case::fine(
    "  containers:\n  - name: red\n    image: nginx\n    ports:\n    - {name: http, containerPort: 80}\n    - {containerPort: 53, protocol: UDP}\n",
    ""
)]
#[case::container_port_zero(
    "  containers:\n  - name: red\n    image: nginx\n    ports:\n    - {containerPort: 0}\n",
    "10:23: spec.containers[0].ports[0].containerPort: 0 is out of range: must be at least 1"
)]
#[case::container_port_protocol_icmp(
    "  containers:\n  - name: red\n    image: nginx\n    ports:\n    - {containerPort: 80, protocol: ICMP}\n",
    "10:37: spec.containers[0].ports[0].protocol: unsupported value \"ICMP\" (expected one of: TCP, UDP, SCTP)"
)]
#[case::duplicate_port_names(
    "  containers:\n  - name: a\n    image: nginx\n    ports:\n    - {name: http, containerPort: 80}\n  - name: b\n    image: nginx\n    ports:\n    - {name: http, containerPort: 8080}\n",
    "14:14: spec.containers[1].ports[0].name: duplicate port name \"http\""
)]
#[case::no_containers(
    "  containers: []\n",
    "6:15: spec.containers: too few items: 0, at least 1 required"
)]
#[case::bad_service_account_name(
    "  serviceAccountName: Builder\n  containers:\n  - {name: a, image: nginx}\n",
    "6:23: spec.serviceAccountName: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)]
fn pods(#[case] spec: &str, #[case] expected: &str) {
    check(&pod(spec), expected);
}

/// Deployment: replicas and the selector against the template's labels.
#[rstest]
#[case::fine(
    "  replicas: 3\n  selector: {matchLabels: {run: webserver}}\n  template:\n    metadata: {labels: {run: webserver, tier: web}}\n    spec:\n      containers: [{name: web, image: echoserver}]\n",
    ""
)]
#[case::selector_does_not_match(
    "  selector: {matchLabels: {run: webserver}}\n  template:\n    metadata:\n      labels: {run: web}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
    "9:7: spec.template.metadata.labels: selector does not match template labels"
)]
#[case::expression_does_not_match(
    "  selector:\n    matchExpressions:\n    - {key: tier, operator: In, values: [db]}\n  template:\n    metadata:\n      labels: {tier: web}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
    "11:7: spec.template.metadata.labels: selector does not match template labels"
)]
#[case::negative_replicas(
    "  replicas: -1\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
    "6:13: spec.replicas: -1 is out of range: must be at least 0"
)]
#[case::empty_selector(
    "  selector: {}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
    "6:3: spec.selector: empty selector is invalid for deployment"
)]
#[case::template_port_zero(
    "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n        ports: [{containerPort: 0}]\n",
    "13:33: spec.template.spec.containers[0].ports[0].containerPort: 0 is out of range: must be at least 1"
)]
fn deployments(#[case] spec: &str, #[case] expected: &str) {
    check(&deployment(spec), expected);
}
