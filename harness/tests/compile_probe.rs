//! Kernel test of the compiled policy against the reference model: a small cluster
//! (pods a, b on node-1, c on node-2, an outside laptop), the compiled tables loaded
//! into its node namespaces, and probes whose kernel verdict and NFLOG-decoded
//! decider must equal the model's.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use common::{ip, kernel_ready, small_plan};
use policylab::compile::{
    compile, Compiled, NFLOG_GROUP_ALLOW, NFLOG_GROUP_DENY, NFLOG_GROUP_REJECT,
};
use policylab::diag::{Diagnostics, FileId, Span};
use policylab::inventory::{ClusterConfig, Inventory, NodeDef};
use policylab::lab::{LabPlan, NodePlan, OutsideHostPlan, PodPlan, ServerSpec};
use policylab::manifest::load_documents;
use policylab::model::{evaluate, Decider, Flow, FlowSource, Proto, Verdict};
use policylab::resolve::{resolve, World};
use policylab::yaml::{parse_stream, Origin};
use policylab_harness::netns::NetNs;
use policylab_harness::nflog::{NflogListener, NflogSink};
use policylab_harness::nft;
use policylab_harness::probe::{probe, Outcome, ProbeKind, ProbeSpec};
use policylab_harness::topology::{BuildOptions, Cluster};

/// The small plan's pods as an inventory, plus `extra` manifests.
fn world(extra: &str) -> World {
    let pod = |name: &str, node: &str, ips: &str| {
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{app: {name}}}\n  annotations:\n    cni.projectcalico.org/ipAddrs: '{ips}'\nspec:\n  nodeName: {node}\n  containers:\n    - name: c\n      image: x\n      ports: [{{containerPort: 80, protocol: TCP}}]\n"
        )
    };
    let mut text =
        String::from("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n");
    text += &pod("a", "node-1", r#"["10.244.1.10","fd00:10:244:1::10"]"#);
    text += &pod("b", "node-1", r#"["10.244.1.11","fd00:10:244:1::11"]"#);
    text += &pod("c", "node-2", r#"["10.244.2.10","fd00:10:244:2::10"]"#);
    text += extra;
    let (docs, errs) = parse_stream(&text, FileId(0), Origin::default());
    assert!(errs.is_empty(), "{errs:?}");
    let mut diags = Diagnostics::new();
    let resources = load_documents(&docs, &mut diags);
    assert!(!diags.has_errors(), "{:?}", diags.sorted());
    let node = |name: &str, v4: &str, v6: Option<&str>| NodeDef {
        name: name.into(),
        span: Span::UNKNOWN,
        ip: v4.parse().expect("v4"),
        ipv6: v6.map(|a| a.parse().expect("v6")),
        labels: BTreeMap::new(),
        interfaces: vec!["eth0".into()],
        ports: vec![],
    };
    resolve(&Inventory {
        cluster: ClusterConfig::default(),
        nodes: vec![
            node("node-1", "172.18.0.11", Some("fd00:18::11")),
            node("node-2", "172.18.0.12", None),
        ],
        outside: vec![],
        resources: resources
            .into_iter()
            .map(|r| (r.key(), std::sync::Arc::new(r)))
            .collect(),
    })
}

const POLICY: &str = r#"---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: guard-c}
spec:
  selector: app == 'c'
  ingress:
    - {action: Deny, protocol: TCP, source: {selector: app == 'a'}, destination: {ports: [80]}}
    - {action: Allow}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: b-egress, namespace: default}
spec:
  selector: app == 'b'
  types: [Egress]
  egress:
    - {action: Allow, protocol: TCP, destination: {nets: [198.51.100.7/32]}}
---
apiVersion: v1
kind: Service
metadata: {name: to-c, namespace: default}
spec:
  clusterIP: 10.96.0.20
  selector: {app: c}
  ports: [{port: 8080, targetPort: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  clusterIP: 10.96.0.21
  selector: {app: nobody}
  ports: [{port: 80, protocol: TCP}]
"#;

const HOST_ENDPOINT: &str = r#"---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-1-eth0, labels: {hep: "yes"}}
spec:
  node: node-1
  interfaceName: eth0
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-nodeports}
spec:
  selector: hep == 'yes'
  preDNAT: true
  applyOnForward: true
  ingress:
    - {action: Deny, protocol: TCP, source: {nets: [198.51.100.7/32]}, destination: {ports: ["30000:32767"]}}
---
apiVersion: v1
kind: Service
metadata: {name: np-b, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.30
  selector: {app: b}
  ports: [{port: 80, nodePort: 30080, protocol: TCP}]
"#;

const UNTRACKED: &str = r#"---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-2-eth0, labels: {hep: "yes"}}
spec:
  node: node-2
  interfaceName: eth0
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: untracked-web}
spec:
  selector: hep == 'yes'
  doNotTrack: true
  applyOnForward: true
  ingress:
    - {action: Allow, protocol: TCP, source: {nets: [198.51.100.7/32]}, destination: {ports: [80]}}
  egress:
    - {action: Allow, protocol: TCP, destination: {nets: [198.51.100.7/32]}, source: {ports: [80]}}
"#;

struct Probe {
    from: &'static str,
    dst: &'static str,
    port: u16,
}

async fn check(
    cluster: &Cluster,
    w: &World,
    c: &Compiled,
    sink: &NflogSink,
    allows: &NflogSink,
    p: &Probe,
) {
    let (ns, src): (&NetNs, FlowSource) = match p.from {
        "laptop" => (
            cluster.outside_host("laptop").expect("laptop"),
            FlowSource::Ip(ip("198.51.100.7")),
        ),
        "node-1" => (
            cluster.node("node-1").expect("node"),
            FlowSource::Ip(ip("172.18.0.11")),
        ),
        pod => (
            cluster.pod("default", pod).expect("pod"),
            FlowSource::Endpoint(w.endpoint_by_name(&format!("default/{pod}")).expect("ep")),
        ),
    };
    let dst: IpAddr = ip(p.dst);
    let model = evaluate(w, &Flow::new(src, dst, Proto::Tcp, p.port));
    let want = Decider::from(model.decided_by);
    sink.clear();
    allows.clear();
    let spec = ProbeSpec::http(dst, p.port).with_timeout(Duration::from_secs(2));
    let o = probe(ns, &spec, Some(sink)).await.expect("probe");
    let what = format!("{} -> {}:{}", p.from, p.dst, p.port);
    let decode = |prefix: &str| {
        c.decode(prefix)
            .unwrap_or_else(|| panic!("{what}: prefix {prefix:?} not in the legend"))
            .decider
            .clone()
    };
    match model.verdict {
        Verdict::Deny => {
            assert_eq!(o.outcome, Outcome::TimedOut, "{what}: {o:?}");
            let ev = o
                .dropped_by
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no NFLOG"));
            assert_eq!(decode(&ev.prefix), want, "{what}");
        }
        Verdict::Refused => {
            assert_eq!(o.outcome, Outcome::Refused, "{what}: {o:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            let logged: Vec<Decider> = allows.events().iter().map(|e| decode(&e.prefix)).collect();
            assert!(logged.contains(&want), "{what}: {logged:?}, want {want}");
        }
        Verdict::Allow => {
            assert_eq!(o.outcome, Outcome::Connected, "{what}: {o:?}");
            if o.http_status.is_some() && o.client_ip().is_some() {
                assert_eq!(
                    o.client_ip(),
                    Some(model.client_ip_seen),
                    "{what}: client seen"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            let port = o.local_addr.map(|l| l.port());
            let logged: Vec<Decider> = allows
                .events()
                .iter()
                .filter(|e| e.tuple.as_ref().is_some_and(|t| Some(t.src_port) == port))
                .map(|e| decode(&e.prefix))
                .collect();
            assert!(logged.contains(&want), "{what}: {logged:?}, want {want}");
        }
    }
    eprintln!("{what}: {:?} by {want}", model.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_policy_decides_like_the_model() {
    if !kernel_ready("compiled_policy_decides_like_the_model") {
        return;
    }
    let cluster = Cluster::build(&small_plan("cprobe"), &BuildOptions::default())
        .await
        .expect("build");
    // Drops in one sink (the probe's "dropped by"), allows in another.
    let sink = NflogSink::new();
    let allows = NflogSink::new();
    let mut listeners = vec![];
    for node in ["node-1", "node-2"] {
        let ns = cluster.node(node).expect("node");
        for (group, s) in [
            (NFLOG_GROUP_DENY, &sink),
            (NFLOG_GROUP_ALLOW, &allows),
            (NFLOG_GROUP_REJECT, &allows),
        ] {
            listeners.push(
                NflogListener::start(ns, group, s.clone())
                    .await
                    .expect("listener"),
            );
        }
    }
    for (extra, probes) in [
        (
            "",
            vec![
                Probe {
                    from: "a",
                    dst: "10.244.2.10",
                    port: 80,
                },
                Probe {
                    from: "laptop",
                    dst: "10.244.1.11",
                    port: 80,
                },
            ],
        ),
        (
            POLICY,
            vec![
                Probe {
                    from: "a",
                    dst: "10.244.2.10",
                    port: 80,
                },
                Probe {
                    from: "a",
                    dst: "10.96.0.20",
                    port: 8080,
                },
                Probe {
                    from: "laptop",
                    dst: "10.244.2.10",
                    port: 80,
                },
                Probe {
                    from: "b",
                    dst: "10.244.2.10",
                    port: 80,
                },
                Probe {
                    from: "b",
                    dst: "198.51.100.7",
                    port: 80,
                },
                Probe {
                    from: "a",
                    dst: "10.244.1.11",
                    port: 80,
                },
                Probe {
                    from: "a",
                    dst: "10.96.0.21",
                    port: 80,
                },
                Probe {
                    from: "a",
                    dst: "172.18.0.11",
                    port: 22,
                },
                Probe {
                    from: "a",
                    dst: "fd00:10:244:2::10",
                    port: 80,
                },
                Probe {
                    from: "b",
                    dst: "fd00:10:244:1::10",
                    port: 80,
                },
            ],
        ),
        (
            HOST_ENDPOINT,
            vec![
                Probe {
                    from: "laptop",
                    dst: "172.18.0.11",
                    port: 22,
                },
                Probe {
                    from: "laptop",
                    dst: "172.18.0.11",
                    port: 30080,
                },
                Probe {
                    from: "c",
                    dst: "172.18.0.11",
                    port: 30080,
                },
                Probe {
                    from: "a",
                    dst: "10.244.2.10",
                    port: 80,
                },
                Probe {
                    from: "laptop",
                    dst: "10.244.1.10",
                    port: 80,
                },
                Probe {
                    from: "node-1",
                    dst: "198.51.100.7",
                    port: 80,
                },
                Probe {
                    from: "node-1",
                    dst: "10.244.1.10",
                    port: 80,
                },
            ],
        ),
        (
            UNTRACKED,
            vec![
                Probe {
                    from: "laptop",
                    dst: "10.244.2.10",
                    port: 80,
                },
                Probe {
                    from: "a",
                    dst: "10.244.2.10",
                    port: 80,
                },
            ],
        ),
    ] {
        let w = world(extra);
        let compiled = compile(&w);
        for (node, table) in &compiled.tables {
            let ns = cluster.node(node).expect("node");
            nft::apply(ns, &table.to_string()).expect("load");
        }
        for p in &probes {
            check(&cluster, &w, &compiled, &sink, &allows, p).await;
        }
    }
    drop(listeners);
    cluster.teardown().expect("teardown");
}

/// Seed 001's `forward-default-allow` on node-1's uplink: untracked ingress Allow
/// of everything, so the replies of pod a's tracked egress arrive NOTRACKed.
const UNTRACKED_REPLY: &str = r#"---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-1-eth0, labels: {apply-IP-protect: "true"}}
spec:
  node: node-1
  interfaceName: eth0
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: forward-default-allow}
spec:
  selector: apply-IP-protect == 'true'
  order: 1000
  doNotTrack: true
  applyOnForward: true
  types: [Ingress]
  ingress:
    - action: Allow
"#;

/// The small cluster's node-1 and pod a, and an outside host serving TCP 80 and UDP
/// 5353 (not a failsafe port). No SCTP: the test machine's kernel has no SCTP.
fn untracked_reply_plan() -> LabPlan {
    LabPlan::builder("cdnt")
        .node(
            NodePlan::new("node-1", "172.18.0.11".parse().expect("v4"))
                .with_pod_cidr("10.244.1.0/24".parse().expect("net")),
        )
        .node(
            NodePlan::new("node-2", "172.18.0.12".parse().expect("v4"))
                .with_pod_cidr("10.244.2.0/24".parse().expect("net")),
        )
        .pod(PodPlan::new(
            "default",
            "a",
            "node-1",
            "10.244.1.10".parse().expect("v4"),
        ))
        .outside(
            OutsideHostPlan::new("laptop", ip("198.51.100.7"))
                .with_server(ServerSpec::tcp(80))
                .with_server(ServerSpec::udp(5353)),
        )
        .build()
        .expect("valid plan")
}

/// Model decision `notracked-reply` on the kernel: pod a's tracked egress to the laptop gets its
/// replies NOTRACKed by node-1's untracked ingress Allow. TCP connects (the SYN-ACK
/// reaches a) but an HTTP request never passes: a's ACK is conntrack INVALID on
/// node-1 and dropped, logged as the model's `UntrackedReply`. UDP and ICMP are
/// answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untracked_reply_of_a_tracked_flow_cuts_tcp_after_the_handshake() {
    if !kernel_ready("untracked_reply_of_a_tracked_flow_cuts_tcp_after_the_handshake") {
        return;
    }
    let cluster = Cluster::build(&untracked_reply_plan(), &BuildOptions::default())
        .await
        .expect("build");
    let sink = NflogSink::new();
    let node1 = cluster.node("node-1").expect("node");
    let listener = NflogListener::start(node1, NFLOG_GROUP_DENY, sink.clone())
        .await
        .expect("listener");
    let w = world(UNTRACKED_REPLY);
    let compiled = compile(&w);
    for (node, table) in &compiled.tables {
        nft::apply(cluster.node(node).expect("node"), &table.to_string()).expect("load");
    }
    let a = cluster.pod("default", "a").expect("pod");
    let src = FlowSource::Endpoint(w.endpoint_by_name("default/a").expect("ep"));
    let laptop = ip("198.51.100.7");
    for (kind, proto, port) in [
        (ProbeKind::Tcp, Proto::Tcp, 80),
        (ProbeKind::Http, Proto::Tcp, 80),
        (ProbeKind::Udp, Proto::Udp, 5353),
        (ProbeKind::Icmp, Proto::Icmp, 0),
    ] {
        let what = format!("a -> laptop:{port} {kind:?}");
        let d = evaluate(&w, &Flow::new(src, laptop, proto, port));
        assert_eq!(d.verdict, Verdict::Allow, "{what}");
        let r = d
            .notracked_reply
            .unwrap_or_else(|| panic!("{what}: the model sees no untracked reply"));
        assert_eq!(r.node, "node-1", "{what}");
        let cut = r.cuts_after_handshake(proto) && kind == ProbeKind::Http;
        sink.clear();
        let spec = ProbeSpec::new(kind, laptop, port).with_timeout(Duration::from_secs(2));
        let o = probe(a, &spec, Some(&sink)).await.expect("probe");
        if cut {
            assert_eq!(o.outcome, Outcome::TimedOut, "{what}: {o:?}");
            let ev = o
                .dropped_by
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no NFLOG"));
            let tag = compiled
                .decode(&ev.prefix)
                .unwrap_or_else(|| panic!("{what}: prefix {:?} not in the legend", ev.prefix));
            assert_eq!(tag.decider, Decider::UntrackedReply, "{what}");
            assert_eq!(tag.node, "node-1", "{what}");
        } else {
            assert_eq!(o.outcome, Outcome::Connected, "{what}: {o:?}");
        }
        eprintln!("{what}: {:?}", o.outcome);
    }
    drop(listener);
    cluster.teardown().expect("teardown");
}
