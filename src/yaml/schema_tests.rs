use super::*;
use crate::diag::Sources;
use rstest::rstest;

fn parse(yaml: &str) -> (Sources, Node) {
    let mut sources = Sources::new();
    let f = sources.add("t.yaml", yaml);
    let (mut docs, diags) = parse_stream(yaml, f, Origin::default());
    assert!(diags.is_empty(), "test YAML does not parse: {diags:?}");
    assert_eq!(docs.len(), 1, "test YAML must hold one document");
    (sources, docs.swap_remove(0).root)
}

/// Validates a document against the schema of its apiVersion/kind and returns
/// `line:col: message` for every problem, sorted.
fn problems(yaml: &str) -> Vec<String> {
    let (_, root) = parse(yaml);
    let api = root
        .get("apiVersion")
        .and_then(Node::as_str)
        .expect("apiVersion");
    let kind = root.get("kind").and_then(Node::as_str).expect("kind");
    let schema = Schemas::for_kind(api, kind).expect("a known kind");
    let mut diags = Diagnostics::new();
    schema.validate(&root, &mut diags);
    diags
        .sorted()
        .into_iter()
        .map(|d| {
            let s = d.span.unwrap();
            format!("{}:{}: {}", s.line, s.col, d.message)
        })
        .collect()
}

#[track_caller]
fn check(yaml: &str, expected: &[&str]) {
    let got = problems(yaml);
    assert_eq!(got, expected, "\nfor:\n{yaml}");
}

// ---------------------------------------------------------------------------------
// Targeted cases.

#[rstest]
#[case::unknown_field_with_suggestion(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: a}
spec:
  ingress:
  - action: Allow
    destination:
      prts: [80]
",
    &["8:7: unknown field \"spec.ingress[0].destination.prts\" (expected one of: namespaceSelector, nets, notNets, notPorts, notSelector, ports, selector, serviceAccounts, services); did you mean \"ports\"?"]
)]
#[case::unknown_field_without_suggestion(
    "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: a}
spec:
  priority: 3
",
    &["5:3: unknown field \"spec.priority\" (expected one of: defaultAction, order)"]
)]
#[case::unknown_field_differing_in_case(
    "apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: a, namespace: b}
spec:
  Nets: []
",
    &["5:3: unknown field \"spec.Nets\" (expected one of: nets); did you mean \"nets\"?"]
)]
#[case::unknown_metadata_field_on_a_crd_kind(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: a
  lables: {a: b}
spec: {}
",
    &["5:3: unknown field \"metadata.lables\" (expected one of: annotations, creationTimestamp, deletionGracePeriodSeconds, deletionTimestamp, finalizers, generateName, generation, labels, managedFields, name, namespace, ownerReferences, resourceVersion, selfLink, uid); did you mean \"labels\"?"]
)]
#[case::key_typed_as_boolean(
    "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: a}
spec:
  on: 3
",
    &["5:3: unknown field \"spec.true\" (expected one of: defaultAction, order) (YAML reads the key `on` as true; quote it to use it as written)"]
)]
#[case::boolean_label_value_gets_the_quote_hint(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: ip-protect
  labels:
    IP-blacklist: true
spec: {}
",
    &["6:19: metadata.labels.IP-blacklist: expected string, found boolean `true` (quote it: \"true\")"]
)]
#[case::number_and_empty_values_where_strings_are_expected(
    "apiVersion: v1
kind: Namespace
metadata:
  name: a
  labels:
    version: 1.10
    empty:
  annotations:
    app.kubernetes.io/port: 8080
",
    &[
        "6:14: metadata.labels.version: expected string, found number `1.10` (quote it: \"1.10\")",
        "7:10: metadata.labels.empty: expected string, found null (write \"\" for an empty string)",
        "9:29: metadata.annotations[app.kubernetes.io/port]: expected string, found integer `8080` (quote it: \"8080\")",
    ]
)]
#[case::wrong_type_for_number(
    "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: a}
spec:
  order: high
",
    &["5:10: spec.order: expected number, found string \"high\""]
)]
#[case::quoted_number_gets_the_remove_quotes_hint(
    "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: a}
spec:
  order: \"100\"
",
    &["5:10: spec.order: expected number, found string \"100\" (remove the quotes)"]
)]
#[case::wrong_type_for_containers(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: a}
spec:
  ingress:
    action: Allow
  types: Ingress
",
    &[
        "6:5: spec.ingress: expected a list, found a mapping",
        "7:10: spec.types: expected a list, found string \"Ingress\"",
    ]
)]
#[case::enum_value(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: a}
spec:
  types: [Egres]
",
    &["5:11: spec.types[0]: unsupported value \"Egres\" (expected one of: Ingress, Egress)"]
)]
#[case::integer_enum(
    "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: a, namespace: b}
spec:
  egress:
  - action: Allow
    ipVersion: 5
",
    &["7:16: spec.egress[0].ipVersion: unsupported value 5 (expected one of: 4, 6)"]
)]
#[case::tier_default_action_is_the_intersection_of_its_all_of_enums(
    "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: a}
spec:
  defaultAction: Allow
",
    &["5:18: spec.defaultAction: unsupported value \"Allow\" (expected one of: Deny, Pass)"]
)]
#[case::required_fields(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: a}
spec:
  ingress:
  - protocol: TCP
",
    &["6:5: spec.ingress[0].action: required field missing"]
)]
#[case::required_top_level(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: a}
",
    &["1:1: spec: required field missing"]
)]
#[case::required_but_null(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: a}
spec:
",
    &["4:5: spec: required field missing (it is null)"]
)]
#[case::int_or_string_ports(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: a}
spec:
  ingress:
  - action: Allow
    protocol: TCP
    destination:
      ports: [80, '30000:32767', 30000:32767, http, 443.0, 1.5, true, {a: 1}]
",
    &[
        "9:60: spec.ingress[0].destination.ports[5]: expected integer or string, found number `1.5`",
        "9:65: spec.ingress[0].destination.ports[6]: expected integer or string, found boolean `true`",
        "9:71: spec.ingress[0].destination.ports[7]: expected integer or string, found a mapping",
    ]
)]
#[case::integers(
    "apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: a}
spec:
  node: n1
  interfaceName: eth0
  ports:
  - {name: a, protocol: TCP, port: 80.0}
  - {name: b, protocol: TCP, port: 8.5}
  - {name: c, protocol: 6, port: 0}
  - {name: d, protocol: UDP, port: 65536}
",
    &[
        "9:36: spec.ports[1].port: expected integer, found number `8.5`",
        "10:34: spec.ports[2].port: 0 is out of range: must be at least 1",
        "11:36: spec.ports[3].port: 65536 is out of range: must be at most 65535",
    ]
)]
#[case::min_max_length_and_items(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: a}
spec:
  types: [Ingress, Egress, Ingress]
  ingress:
  - action: Allow
    icmp: {type: 255, code: -1}
",
    &[
        "5:10: spec.types: too many items: 3, at most 2 allowed",
        "5:28: spec.types[2]: duplicate value \"Ingress\" (the list is a set)",
        "8:18: spec.ingress[0].icmp.type: 255 is out of range: must be at most 254",
        "8:29: spec.ingress[0].icmp.code: -1 is out of range: must be at least 0",
    ]
)]
#[case::too_few_items(
    "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: a, namespace: b}
spec:
  types: []
",
    &["5:10: spec.types: too few items: 0, at least 1 required"]
)]
#[case::max_length(
    "apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: a}
spec:
  node: n1
  interfaceName: a-very-long-interface-name
",
    &["6:18: spec.interfaceName: too long: 26 characters, at most 15 allowed"]
)]
#[case::pattern(
    "apiVersion: projectcalico.org/v3
kind: GlobalThreatFeed
metadata: {name: f}
spec:
  pull:
    http:
      url: ftp://example.com/list
",
    &["7:12: spec.pull.http.url: \"ftp://example.com/list\" does not match the pattern ^https?://"]
)]
#[case::nested_arrays(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: a}
spec:
  egress:
  - action: Allow
  - action: Deny
    destination:
      nets:
      - 10.0.0.0/8
      - [10.1.0.0/16]
      serviceAccounts:
        names: [a, 7]
",
    &[
        "11:9: spec.egress[1].destination.nets[1]: expected string, found a list",
        "13:20: spec.egress[1].destination.serviceAccounts.names[1]: expected string, found integer `7` (quote it: \"7\")",
    ]
)]
#[case::every_problem_in_one_pass(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: a
spec:
  ordr: 10
  types: [Ingres]
  ingress:
  - action: Allow
    source:
      nets: 10.0.0.0/8
",
    &[
        "6:3: unknown field \"spec.ordr\" (expected one of: applyOnForward, doNotTrack, egress, ingress, namespaceSelector, order, performanceHints, preDNAT, selector, serviceAccountSelector, tier, types); did you mean \"order\"?",
        "7:11: spec.types[0]: unsupported value \"Ingres\" (expected one of: Ingress, Egress)",
        "11:13: spec.ingress[0].source.nets: expected a list, found string \"10.0.0.0/8\"",
    ]
)]
#[case::null_for_optional_fields_is_absent(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: a
  creationTimestamp: null
  labels:
spec:
  order:
  selector: ~
  types: null
  ingress:
  - action: Allow
    source:
    destination: null
",
    &[]
)]
#[case::null_is_not_a_list_item(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: a}
spec:
  nets: [~]
",
    &["5:10: spec.nets[0]: expected string, found null (quote it: \"~\")"]
)]
#[case::date_time_format(
    "apiVersion: v1
kind: Namespace
metadata:
  name: a
  creationTimestamp: 2024-01-31T12:00:00Z
  deletionTimestamp: yesterday
",
    &["6:22: metadata.deletionTimestamp: \"yesterday\" is not a date-time (RFC 3339, e.g. 2024-01-31T12:00:00Z)"]
)]
#[case::label_value_syntax(
    "apiVersion: v1
kind: Namespace
metadata:
  name: a
  labels:
    app.kubernetes.io/name: 'not valid!'
",
    &["6:29: metadata.labels[app.kubernetes.io/name]: \"not valid!\" does not match the pattern ^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"]
)]
#[case::root_must_be_a_mapping("apiVersion: v1\nkind: Namespace\nmetadata: [a]\n", &["3:11: metadata: expected a mapping, found a list"])]
fn validates(#[case] yaml: &str, #[case] expected: &[&str]) {
    check(yaml, expected);
}

#[rstest]
#[case::k8s_network_policy(
    "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a, namespace: b}
spec:
  podSelector:
    matchLabels: {app: web}
    matchExpressions:
    - {key: tier, operator: in, values: [a]}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    - namespaceSelector: {}
      podSelector: {matchLabels: {role: db}}
    ports:
    - {protocol: TCP, port: 80}
    - {protocol: tcp, port: http, endPort: 90}
  egress:
  - to: [{podSelector: {}}]
    ports: [{port: 53, protocol: UDP}]
    action: Allow
",
    &[
        "8:29: spec.podSelector.matchExpressions[0].operator: unsupported value \"in\" (expected one of: In, NotIn, Exists, DoesNotExist)",
        "17:18: spec.ingress[0].ports[1].protocol: unsupported value \"tcp\" (expected one of: TCP, UDP, SCTP)",
        "21:5: unknown field \"spec.egress[0].action\" (expected one of: ports, to)",
    ]
)]
#[case::service_account_has_no_spec(
    "apiVersion: v1
kind: ServiceAccount
metadata: {name: a, namespace: b}
spec: {}
automountServiceAccountToken: false
",
    &["4:1: unknown field \"spec\" (expected one of: apiVersion, automountServiceAccountToken, imagePullSecrets, kind, metadata, secrets)"]
)]
#[case::pod(
    "apiVersion: v1
kind: Pod
metadata: {name: a, namespace: b, labels: {app: web}}
spec:
  serviceAccountName: sa
  restartPolicy: Always
  containers:
  - name: web
    image: nginx
    imagePullPolicy: IfNotPresent
    ports:
    - {name: http, containerPort: 80, protocol: TCP}
    - {name: Bad_Name, containerPort: 0}
  - image: busybox
status:
  phase: Running
",
    &[
        "13:14: spec.containers[0].ports[1].name: \"Bad_Name\" does not match the pattern ^[a-z0-9]+(-[a-z0-9]+)*$",
        "13:39: spec.containers[0].ports[1].containerPort: 0 is out of range: must be at least 1",
        "14:5: spec.containers[1].name: required field missing",
    ]
)]
#[case::service(
    "apiVersion: v1
kind: Service
metadata: {name: web, namespace: b}
spec:
  type: NodePort
  selector: {app: web}
  externalTrafficPolicy: Global
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080, protocol: TCP}
  - {port: 443, targetPort: 8443}
  sessionAfinity: None
",
    &[
        "7:26: spec.externalTrafficPolicy: unsupported value \"Global\" (expected one of: Cluster, Local)",
        "11:3: unknown field \"spec.sessionAfinity\" (expected one of: allocateLoadBalancerNodePorts, clusterIP, clusterIPs, externalIPs, externalName, externalTrafficPolicy, healthCheckNodePort, internalTrafficPolicy, ipFamilies, ipFamilyPolicy, loadBalancerClass, loadBalancerIP, loadBalancerSourceRanges, ports, publishNotReadyAddresses, selector, sessionAffinity, sessionAffinityConfig, trafficDistribution, type); did you mean \"sessionAffinity\"?",
    ]
)]
#[case::deployment(
    "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: b}
spec:
  replicas: 3
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx, ports: [{containerPort: 8080}]}
      volumes: []
  replica: 2
",
    &["14:3: unknown field \"spec.replica\" (expected one of: minReadySeconds, paused, progressDeadlineSeconds, replicas, revisionHistoryLimit, selector, strategy, template); did you mean \"replicas\"?"]
)]
#[case::global_threat_feed_formats(
    "apiVersion: projectcalico.org/v3
kind: GlobalThreatFeed
metadata: {name: f}
spec:
  content: DomainNameSet
  pull:
    period: 1h
    http:
      url: https://example.com/feed
      format:
        csv: {fieldNum: 1, header: true, recordSize: 0}
        newlineDelimited: {delimiter: x}
      headers:
      - name: Authorization
        valueFrom: {secretKeyRef: {name: s, key: token}}
",
    &[
        "11:54: spec.pull.http.format.csv.recordSize: 0 is out of range: must be at least 1",
        "12:28: unknown field \"spec.pull.http.format.newlineDelimited.delimiter\" (this object has no fields)",
    ]
)]
fn validates_other_kinds(#[case] yaml: &str, #[case] expected: &[&str]) {
    check(yaml, expected);
}

#[test]
fn rendered_diagnostics_point_at_each_problem() {
    let yaml = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: a
spec:
  order: high
  ingress:
  - action: Allow
    destination:
      prts: [80]
";
    let (sources, root) = parse(yaml);
    let mut diags = Diagnostics::new();
    Schemas::for_kind("projectcalico.org/v3", "GlobalNetworkPolicy")
        .unwrap()
        .validate(&root, &mut diags);
    insta::assert_snapshot!(diags.render(&sources), @r#"
    t.yaml:6:10: spec.order: expected number, found string "high"
    6 |   order: high
      |          ^
    t.yaml:10:7: unknown field "spec.ingress[0].destination.prts" (expected one of: namespaceSelector, nets, notNets, notPorts, notSelector, ports, selector, serviceAccounts, services); did you mean "ports"?
    10 |       prts: [80]
       |       ^
    "#);
}

// ---------------------------------------------------------------------------------
// The seed tutorials' manifest shapes.

#[rstest]
#[case::gnp_pre_dnat_from_seed_002(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: deny-nodeports
spec:
  applyOnForward: true
  preDNAT: true
  ingress:
  - action: Deny
    destination:
      nets:
      - 203.0.113.7/32
      ports:
      - 30000:32767
      - '30000:32767'
      - 80
    protocol: TCP
    source: {}
  - action: Deny
    destination:
      ports:
      - 30000:32767
    protocol: UDP
    source: {}
  selector: ibm.role=='worker_public'
  order: 1100
  types:
  - Ingress
"
)]
#[case::gnp_do_not_track_from_seed_001(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: ip-protect
spec:
  selector: apply-IP-protect == 'true'
  order: 0
  doNotTrack: true
  applyOnForward: true
  types:
  - Ingress
  ingress:
  - action: Deny
    source:
      selector: IP-blacklist == 'true' && !has(projectcalico.org/namespace)
"
)]
#[case::tier_with_order_from_seed_000(
    "apiVersion: projectcalico.org/v3
kind: Tier
metadata:
  name: security
spec:
  order: 300
"
)]
#[case::gnp_in_a_tier_from_seed_003(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
    name: tigera-security.block-training-ipthreatfeed
spec:
  tier: tigera-security
  selector: all()
  namespaceSelector: ''
  serviceAccountSelector: ''
  egress:
  - action: Deny
    source: {}
    destination:
      selector: feed == \"training-ip-threatfeed\"
  - action: Pass
    source: {}
    destination: {}
  types:
  - Egress
"
)]
#[case::global_network_set_from_seed_000(
    "apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: ip-protect
  labels:
    ip-deny-list: 'true'
spec:
  nets:
    - 192.0.2.55/32
    - 203.0.113.0/24
"
)]
#[case::network_set_from_seed_000(
    "apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata:
  namespace: tigera-gateway
  name: calico-ingress-gateways
  labels:
    calico-ingress-gateway: \"true\"
spec:
  nets:
    - 10.96.0.10/0
"
)]
#[case::calico_network_policy_from_seed_001(
    "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: allow-egress-external
  namespace: production
spec:
  selector:
    color == 'red'
  types:
    - Egress
  egress:
    - action: Allow
      destination:
        nets:
        - 192.0.2.0/24
"
)]
#[case::global_threat_feed_from_seed_003(
    "kind: GlobalThreatFeed
apiVersion: projectcalico.org/v3
metadata:
  name: training.ip.threatfeed
spec:
  content: IPSet
  mode: Enabled
  description: AlienVault IP Block List
  feedType: Builtin
  globalNetworkSet:
    labels:
      feed: training-ip-threatfeed
  pull:
    http:
      format: {}
      url: 'https://raw.githubusercontent.com/example/threat_feed_list?token=X'
"
)]
#[case::pod_from_seed_003(
    "apiVersion: v1
kind: Pod
metadata:
  name: red
spec:
  containers:
  - name: red
    image: wbitt/network-multitool
    command:
      - \"/bin/sh\"
      - \"-c\"
      - \"while true; do sleep 60; done\"
    volumeMounts:
    - name: log-volume
      mountPath: /var/log
  volumes:
  - name: log-volume
    emptyDir: {}
"
)]
#[case::service_from_seed_002(
    "apiVersion: v1
kind: Service
metadata:
  labels:
    run: webserver
  name: webserver-lb
spec:
  type: LoadBalancer
  selector:
    run: webserver
  ports:
  - name: webserver-port
    port: 80
    protocol: TCP
    targetPort: 8080
"
)]
fn seed_manifests_validate(#[case] yaml: &str) {
    check(yaml, &[]);
}

#[test]
fn seed_001_boolean_label_is_rejected() {
    check(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: ip-protect
  labels:
    IP-blacklist: true
spec:
  nets:
  - 192.0.2.55/32
  - 203.0.113.0/24
",
        &["6:19: metadata.labels.IP-blacklist: expected string, found boolean `true` (quote it: \"true\")"],
    );
}

// ---------------------------------------------------------------------------------
// Validation rules are recorded, with where they apply.

#[test]
fn validation_rules_are_listed_with_their_paths() {
    let gnp = Schemas::for_kind("projectcalico.org/v3", "GlobalNetworkPolicy").unwrap();
    let rules: Vec<(String, &ValidationRule)> = gnp.validations().collect();
    let has = |path: &str, msg: &str| {
        rules
            .iter()
            .any(|(p, r)| p == path && r.message.as_deref() == Some(msg))
    };
    assert!(has("spec", "preDNAT and doNotTrack cannot both be true"));
    assert!(has(
        "spec.ingress[*]",
        "HTTP match is only valid on Allow rules"
    ));
    assert!(has(
        "spec.egress[*].destination",
        "cannot specify ServiceAccounts and Services on the same rule"
    ));
    assert!(has(
        "spec.ingress[*].icmp",
        "ICMP code specified without an ICMP type"
    ));
    let (_, r) = rules
        .iter()
        .find(|(p, _)| p == "spec.ingress[*].icmp")
        .unwrap();
    assert_eq!(r.rule, "!has(self.code) || has(self.type)");
    assert_eq!(r.reason.as_deref(), Some("FieldValueInvalid"));

    let tier = Schemas::for_kind("projectcalico.org/v3", "Tier").unwrap();
    assert!(tier
        .validations()
        .any(|(p, r)| p.is_empty()
            && r.message.as_deref() == Some("default tier order must be 1000000")));
    assert!(gnp
        .at("spec.ingress[*].icmp")
        .is_some_and(|s| s.validations.len() == 1));
}

#[test]
fn rule_sites_give_concrete_paths() {
    let (_, root) = parse(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: a}
spec:
  ingress:
  - action: Allow
  - action: Deny
    icmp: {type: 8}
",
    );
    let gnp = Schemas::for_kind("projectcalico.org/v3", "GlobalNetworkPolicy").unwrap();
    let sites: Vec<(String, u32)> = gnp
        .rule_sites(&root)
        .iter()
        .map(|s| (s.path.clone(), s.node.span.line))
        .collect();
    assert_eq!(
        sites,
        [
            ("spec".to_string(), 5),
            ("spec.ingress[0]".to_string(), 6),
            ("spec.ingress[1]".to_string(), 7),
            ("spec.ingress[1].icmp".to_string(), 8),
        ]
    );
}

#[test]
fn defaults_and_descriptions_are_recorded() {
    let gnp = Schemas::for_kind("projectcalico.org/v3", "GlobalNetworkPolicy").unwrap();
    let tier = gnp.at("spec.tier").unwrap();
    assert_eq!(tier.default, Some(Json::String("default".into())));
    assert!(tier.description.as_deref().unwrap().contains("tier"));
    let ports = gnp.at("spec.ingress[*].destination.ports[*]").unwrap();
    assert!(ports.int_or_string);
    assert_eq!(ports.pattern.as_ref().unwrap().source, "^.*");
    let nets = gnp.at("spec.ingress[*].source.nets").unwrap();
    assert_eq!(nets.list_type, Some(ListType::Set));
    assert_eq!(nets.max_items, Some(256));
    let gtf = Schemas::for_kind("projectcalico.org/v3", "GlobalThreatFeed").unwrap();
    assert_eq!(
        gtf.at("spec.content").unwrap().default,
        Some(Json::String("IPSet".into()))
    );
}

// ---------------------------------------------------------------------------------
// Reading schemas.

#[test]
fn schema_keywords_are_checked() {
    let (_, node) = parse("type: object\npropeties:\n  a: {type: strin}\n");
    let errs: Vec<String> = Schema::from_node(&node)
        .unwrap_err()
        .into_iter()
        .map(|d| d.message)
        .collect();
    assert_eq!(errs, ["unsupported schema keyword `propeties`"]);
    let (_, node) = parse("properties:\n  a: {type: strin, pattern: '(', $ref: x}\n");
    let errs: Vec<String> = Schema::from_node(&node)
        .unwrap_err()
        .into_iter()
        .map(|d| d.message)
        .collect();
    assert_eq!(
        errs,
        [
            "`type` cannot be written next to `$ref` (only `description` can)",
            "`pattern` cannot be written next to `$ref` (only `description` can)",
            "`$ref` must be of the form \"#/definitions/<Name>\""
        ]
    );
}

#[test]
fn crd_metadata_is_only_type_object() {
    // The CRDs leave metadata to the API server; we put ObjectMeta there.
    for e in ENTRIES.iter() {
        if let Source::Crd(file, text) = e.source {
            let node = embedded_node(file, text);
            let raw = Schema::from_crd(&node, "v3").unwrap();
            let m = raw.property("metadata").unwrap();
            assert_eq!(m.ty, Some(Type::Object), "{file}");
            assert!(m.properties.is_empty(), "{file}");
            let s = Schemas::for_kind(e.api_version, e.kind).unwrap();
            assert!(s.at("metadata.labels.*").is_some(), "{file}");
        }
    }
}

#[test]
fn unknown_kinds_have_no_schema() {
    assert!(Schemas::for_kind("projectcalico.org/v3", "Profile").is_none());
    assert!(Schemas::for_kind("crd.projectcalico.org/v1", "GlobalNetworkPolicy").is_none());
    assert_eq!(Schemas::kinds().count(), KINDS);
}

#[test]
fn edit_distance_counts_transpositions() {
    assert_eq!(edit_distance("prts", "ports"), 1);
    assert_eq!(edit_distance("prots", "ports"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(suggest("xy", &["to"]), None);
    assert_eq!(suggest("NETS", &["nets", "notNets"]), Some("nets"));
}

// ---------------------------------------------------------------------------------
// The walk over every schema: every property path gets a generated minimal valid
// value that must be accepted, and every closed object along the way rejects an
// unknown sibling field.

#[derive(Debug, Clone)]
enum Seg {
    Prop(String),
    Item,
    Key,
}

fn walk<'s>(s: &'s Schema, segs: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, &'s Schema)>) {
    out.push((segs.clone(), s));
    for (name, p) in &s.properties {
        segs.push(Seg::Prop(name.clone()));
        walk(p, segs, out);
        segs.pop();
    }
    if let Some(items) = &s.items {
        segs.push(Seg::Item);
        walk(items, segs, out);
        segs.pop();
    }
    if let AdditionalProperties::Schema(a) = &s.additional_properties {
        segs.push(Seg::Key);
        walk(a, segs, out);
        segs.pop();
    }
}

fn path_of(segs: &[Seg]) -> String {
    let mut p = String::new();
    for s in segs {
        match s {
            Seg::Prop(n) => push_field(&mut p, n),
            Seg::Item => push_index(&mut p, 0),
            Seg::Key => push_key(&mut p, "k"),
        }
    }
    p
}

fn string_ok(s: &Schema, t: &str) -> bool {
    let n = t.chars().count() as u64;
    s.pattern.as_ref().is_none_or(|p| p.is_match(t))
        && s.all_of.iter().all(|b| string_ok(b, t))
        && s.min_length.is_none_or(|m| n >= m)
        && s.max_length.is_none_or(|m| n <= m)
        && (s.format.as_deref() != Some("date-time") || is_rfc3339(t))
}

/// A valid value for `s` with only the required fields; `i` picks among variants
/// (distinct items of a set).
fn minimal(s: &Schema, i: usize) -> Json {
    if let Some(values) = &s.enum_values {
        return values[i % values.len()].clone();
    }
    if s.int_or_string {
        return Json::from(80 + i as i64);
    }
    match s.ty {
        Some(Type::Object) | None => {
            let mut m = serde_json::Map::new();
            for r in &s.required {
                m.insert(r.clone(), minimal(&s.properties[r], 0));
            }
            Json::Object(m)
        }
        Some(Type::Array) => {
            let n = s.min_items.unwrap_or(0) as usize;
            let items = s.items.as_deref().expect("arrays have items");
            Json::Array((0..n).map(|j| minimal(items, j)).collect())
        }
        Some(Type::String) => {
            let candidates = [
                format!("a{i}"),
                "a".to_string(),
                "A".to_string(),
                "https://example.com/feed".to_string(),
                "2024-01-31T12:00:00Z".to_string(),
                "10s".to_string(),
                "Auto".to_string(),
                "1/second".to_string(),
                String::new(),
            ];
            let t = candidates
                .into_iter()
                .find(|c| string_ok(s, c))
                .unwrap_or_else(|| panic!("no sample string fits {s:?}"));
            Json::String(t)
        }
        Some(Type::Integer) => {
            let lo = s
                .minimum
                .map(|m| m as i64 + i64::from(s.exclusive_minimum))
                .unwrap_or(1);
            Json::from(lo + i as i64)
        }
        Some(Type::Number) => Json::from(s.minimum.unwrap_or(0.0) + 1.5 + i as f64),
        Some(Type::Boolean) => Json::Bool(true),
    }
}

/// Makes sure every step of `segs` exists in `v` (arrays get one item, maps the key
/// `k`), and returns the value at the end of the path.
fn materialize<'v>(s: &Schema, v: &'v mut Json, segs: &[Seg]) -> &'v mut Json {
    let Some((first, rest)) = segs.split_first() else {
        return v;
    };
    match first {
        Seg::Prop(name) => {
            let p = &s.properties[name];
            let child = v
                .as_object_mut()
                .expect("an object on the path")
                .entry(name.clone())
                .or_insert_with(|| minimal(p, 0));
            materialize(p, child, rest)
        }
        Seg::Item => {
            let items = s.items.as_deref().unwrap();
            let arr = v.as_array_mut().expect("an array on the path");
            if arr.is_empty() {
                arr.push(minimal(items, 0));
            }
            materialize(items, &mut arr[0], rest)
        }
        Seg::Key => {
            let AdditionalProperties::Schema(a) = &s.additional_properties else {
                unreachable!()
            };
            let obj = v.as_object_mut().expect("a map on the path");
            let child = obj.entry("k".to_string()).or_insert_with(|| minimal(a, 0));
            materialize(a, child, rest)
        }
    }
}

fn validate_json(s: &Schema, doc: &Json) -> Vec<String> {
    // JSON is YAML: go through the parser so that typing is exercised too.
    let text = serde_json::to_string(doc).unwrap();
    let (_, root) = parse(&text);
    let mut diags = Diagnostics::new();
    s.validate(&root, &mut diags);
    diags.into_iter().map(|d| d.message).collect()
}

#[test]
fn every_schema_path_accepts_a_minimal_value_and_rejects_unknown_siblings() {
    let mut paths_checked = 0;
    let mut objects_checked = 0;
    for (api, kind) in Schemas::kinds() {
        let s = Schemas::for_kind(api, kind).unwrap();
        let mut base = minimal(s, 0);
        base["apiVersion"] = Json::from(api);
        base["kind"] = Json::from(kind);
        let mut all = Vec::new();
        walk(s, &mut Vec::new(), &mut all);
        let mut visited = 0;
        s.for_each(&mut |path, sub| {
            assert!(
                std::ptr::eq(s.at(path).unwrap(), sub),
                "{kind}: at({path:?})"
            );
            visited += 1;
        });
        assert_eq!(
            visited,
            all.len(),
            "{kind}: for_each visits every schema node"
        );
        for (segs, sub) in all {
            let path = path_of(&segs);
            let mut doc = base.clone();
            materialize(s, &mut doc, &segs);
            let errs = validate_json(s, &doc);
            assert!(errs.is_empty(), "{kind} {path}: {errs:?}\n{doc}");
            paths_checked += 1;

            if sub.ty == Some(Type::Object) && sub.additional_properties_schema().is_none() {
                let mut doc = base.clone();
                let target = materialize(s, &mut doc, &segs);
                target
                    .as_object_mut()
                    .unwrap()
                    .insert("zzUnknownField".into(), Json::from(1));
                let errs = validate_json(s, &doc);
                let mut field = path.clone();
                push_field(&mut field, "zzUnknownField");
                if sub.preserve_unknown_fields {
                    assert!(
                        errs.is_empty(),
                        "{kind} {path} keeps unknown fields: {errs:?}"
                    );
                } else {
                    assert_eq!(errs.len(), 1, "{kind} {field}: {errs:?}");
                    let want = format!("unknown field {field:?} (");
                    assert!(errs[0].starts_with(&want), "{kind}: {} vs {want}", errs[0]);
                    objects_checked += 1;
                }
            }
        }
    }
    // Sanity: the walk really covered the schemas.
    eprintln!("checked {paths_checked} paths and {objects_checked} closed objects");
    assert!(paths_checked > 1300, "{paths_checked}");
    assert!(objects_checked > 200, "{objects_checked}");
}

impl Schema {
    fn additional_properties_schema(&self) -> Option<&Schema> {
        match &self.additional_properties {
            AdditionalProperties::Schema(a) => Some(a),
            _ => None,
        }
    }
}

#[test]
fn all_schemas_parse_quickly() {
    // Fresh parses (the registry caches): every CRD and hand-written file.
    let start = std::time::Instant::now();
    for e in ENTRIES.iter() {
        let _ = load(e);
    }
    let took = start.elapsed();
    eprintln!("parsed {} schemas in {took:?}", ENTRIES.len());
    // A few ms in release; generous for debug builds on a busy machine.
    assert!(took.as_secs_f64() < 5.0, "{took:?}");
}

/// `validate_at` against a schema written inline: messages carry the prefix, and each
/// problem comes with the path where it was found.
fn problems_at(schema: &str, yaml: &str, prefix: &str) -> Vec<(String, String)> {
    let (_, s) = parse(schema);
    let schema = Schema::from_node(&s).expect("test schema");
    let (_, root) = parse(yaml);
    schema
        .validate_at(&root, prefix)
        .into_iter()
        .map(|(p, d)| (p, d.message))
        .collect()
}

#[rstest]
#[case::ip_ok("a: 10.0.0.1\nb: 10.0.0.2", vec![])]
#[case::ip_v6_ok("a: fd00::1\nb: 10.0.0.2", vec![])]
#[case::ip_bad("a: 10.0.0\nb: 10.0.0.2", vec![("x.a", "x.a: \"10.0.0\" is not an IP address")])]
#[case::ipv4_rejects_v6("a: 10.0.0.1\nb: fd00::1", vec![("x.b", "x.b: \"fd00::1\" is not an IPv4 address")])]
#[case::enum_any_case("a: 10.0.0.1\nc: tcp", vec![])]
#[case::enum_ignore_case_still_checks("c: icmp", vec![("x.c", "x.c: unsupported value \"icmp\" (expected one of: TCP, UDP)")])]
#[case::enum_case_sensitive("d: tcp", vec![("x.d", "x.d: unsupported value \"tcp\" (expected one of: TCP, UDP)")])]
#[case::unknown_and_missing("e: 1", vec![
    ("x.e", "unknown field \"x.e\" (expected one of: a, b, c, d, r)"),
    ("x.r", "x.r: required field missing"),
])]
fn formats_case_insensitive_enums_and_paths(
    #[case] yaml: &str,
    #[case] expected: Vec<(&str, &str)>,
) {
    let schema = "type: object\nproperties:\n  a: {type: string, format: ip}\n  b: {type: string, format: ipv4}\n  c: {type: string, enum: [TCP, UDP], x-policylab-enum-ignore-case: true}\n  d: {type: string, enum: [TCP, UDP]}\n  r: {type: string}\n";
    let schema = if yaml.contains("e: 1") {
        format!("{schema}required: [r]\n")
    } else {
        schema.to_string()
    };
    let got = problems_at(&schema, yaml, "x");
    let want: Vec<(String, String)> = expected
        .into_iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_scenario_schema_reads_and_defines_every_step_verb() {
    let defs = Schemas::scenario();
    for name in [
        "Scenario",
        "Cluster",
        "Node",
        "Pod",
        "Service",
        "Outside",
        "Probe",
        "Matrix",
        "ApplyStep",
        "CreateStep",
        "DeleteStep",
        "PatchStep",
        "ProbeStep",
        "MatrixStep",
        "ServeStep",
        "AdvanceStep",
        "FailStep",
        "RecoverStep",
    ] {
        assert!(defs.get(name).is_some(), "{name} is not defined");
    }
}
