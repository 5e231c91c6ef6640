//! Kernel tests of the lab topology: every kind of probe between pods on one node, pods
//! on two nodes and an outside host, over IPv4 and IPv6.

mod common;

use std::time::Duration;

use common::{ip, kernel_ready, small_plan};
use policylab_harness::probe::{probe, probe_many, Outcome, ProbeSpec};
use policylab_harness::topology::{BuildOptions, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_nodes_and_outside_hosts_reach_each_other() {
    if !kernel_ready("pods_nodes_and_outside_hosts_reach_each_other") {
        return;
    }
    let cluster = Cluster::build(&small_plan("conn"), &BuildOptions::default())
        .await
        .expect("build");
    eprintln!("timings: {:?}", cluster.timings());
    let a = cluster.pod("default", "a").expect("a").clone();
    let c = cluster.pod("default", "c").expect("c").clone();
    let laptop = cluster.outside_host("laptop").expect("laptop").clone();
    let t = Duration::from_secs(2);

    let cases = vec![
        (
            "a->b http same node",
            a.clone(),
            ProbeSpec::http(ip("10.244.1.11"), 80),
            Some("10.244.1.10"),
        ),
        (
            "a->c http other node",
            a.clone(),
            ProbeSpec::http(ip("10.244.2.10"), 80),
            Some("10.244.1.10"),
        ),
        (
            "a->laptop http",
            a.clone(),
            ProbeSpec::http(ip("198.51.100.7"), 80),
            Some("10.244.1.10"),
        ),
        (
            "laptop->c http",
            laptop.clone(),
            ProbeSpec::http(ip("10.244.2.10"), 80),
            Some("198.51.100.7"),
        ),
        (
            "c->a http v6",
            c.clone(),
            ProbeSpec::http(ip("fd00:10:244:1::10"), 80),
            Some("fd00:10:244:2::10"),
        ),
        (
            "a->laptop http v6",
            a.clone(),
            ProbeSpec::http(ip("2001:db8::7"), 80),
            Some("fd00:10:244:1::10"),
        ),
        (
            "laptop->a http v6",
            laptop.clone(),
            ProbeSpec::http(ip("fd00:10:244:1::10"), 80),
            Some("2001:db8::7"),
        ),
        (
            "a->node-1 tcp 22",
            a.clone(),
            ProbeSpec::tcp(ip("172.18.0.11"), 22),
            None,
        ),
        (
            "c->node-1 tcp 22",
            c.clone(),
            ProbeSpec::tcp(ip("172.18.0.11"), 22),
            None,
        ),
        (
            "a->c udp",
            a.clone(),
            ProbeSpec::udp(ip("10.244.2.10"), 53),
            None,
        ),
        (
            "laptop->b udp",
            laptop.clone(),
            ProbeSpec::udp(ip("10.244.1.11"), 53),
            None,
        ),
        (
            "a->c udp v6",
            a.clone(),
            ProbeSpec::udp(ip("fd00:10:244:2::10"), 53),
            None,
        ),
        (
            "a->c icmp",
            a.clone(),
            ProbeSpec::icmp(ip("10.244.2.10")),
            None,
        ),
        (
            "a->laptop icmp",
            a.clone(),
            ProbeSpec::icmp(ip("198.51.100.7")),
            None,
        ),
        (
            "c->b icmp v6",
            c.clone(),
            ProbeSpec::icmp(ip("fd00:10:244:1::11")),
            None,
        ),
    ];
    for (what, ns, spec, client) in &cases {
        let o = probe(ns, &spec.clone().with_timeout(t), None)
            .await
            .expect(what);
        assert_eq!(o.outcome, Outcome::Connected, "{what}: {o:?}");
        if spec.kind == policylab_harness::probe::ProbeKind::Http {
            assert_eq!(o.http_status, Some(200), "{what}: {o:?}");
        }
        if let Some(client) = client {
            assert_eq!(o.client_ip(), Some(ip(client)), "{what}: {o:?}");
        }
        eprintln!("{what}: {:?} in {:?}", o.outcome, o.elapsed);
    }

    // The same probes at once.
    let many: Vec<_> = cases
        .iter()
        .map(|(_, ns, spec, _)| (ns.clone(), spec.clone().with_timeout(t)))
        .collect();
    for (r, (what, ..)) in probe_many(&many, 32, None).await.into_iter().zip(&cases) {
        let o = r.expect(what);
        assert_eq!(o.outcome, Outcome::Connected, "probe_many {what}: {o:?}");
    }

    // Closed ports are refused, by RST (TCP) or ICMP port unreachable (UDP).
    let closed = [
        ProbeSpec::tcp(ip("10.244.2.10"), 81),
        ProbeSpec::http(ip("10.244.1.11"), 81),
        ProbeSpec::udp(ip("10.244.2.10"), 54),
        ProbeSpec::tcp(ip("fd00:10:244:2::10"), 81),
        ProbeSpec::udp(ip("198.51.100.7"), 9),
    ];
    for spec in &closed {
        let o = probe(&a, &spec.clone().with_timeout(t), None)
            .await
            .expect("probe");
        assert_eq!(o.outcome, Outcome::Refused, "{spec:?}: {o:?}");
        assert!(o.elapsed < Duration::from_millis(500), "{spec:?}: {o:?}");
    }

    // Calico's per-interface settings on the node, read from inside the node.
    let node1 = cluster.node("node-1").expect("node-1").clone();
    let cali = cluster
        .plan()
        .pod("default", "a")
        .expect("a")
        .host_iface
        .clone();
    let read = |rel: String| {
        node1
            .run(move || policylab_harness::netns::read_sysctl(&rel))
            .expect("enter node")
            .expect("read sysctl")
    };
    assert_eq!(read(format!("ipv4/conf/{cali}/proxy_arp")), "1");
    assert_eq!(read(format!("ipv4/neigh/{cali}/proxy_delay")), "0");
    assert_eq!(read("ipv4/conf/eth0/proxy_arp".into()), "0");
    assert_eq!(read("ipv4/conf/eth1/proxy_arp".into()), "0");
    assert_eq!(read("ipv4/ip_forward".into()), "1");

    cluster.teardown().expect("teardown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_only_lab_with_load_balancer_route() {
    if !kernel_ready("ipv4_only_lab_with_load_balancer_route") {
        return;
    }
    use policylab::lab::{LabPlan, NodePlan, OutsideHostPlan, PodPlan, ServerSpec};
    let plan = LabPlan::builder("v4only")
        .node(NodePlan::new("n1", "172.18.0.21".parse().expect("v4")))
        .node(NodePlan::new("n2", "172.18.0.22".parse().expect("v4")))
        .pod(
            PodPlan::new("prod", "web", "n2", "10.244.9.5".parse().expect("v4"))
                .with_server(ServerSpec::tcp(8080)),
        )
        .outside(OutsideHostPlan::new("client", ip("203.0.113.9")))
        .load_balancer(ip("198.51.100.80"), "n2")
        .build()
        .expect("plan");
    let cluster = Cluster::build(&plan, &BuildOptions::default())
        .await
        .expect("build");
    let client = cluster.outside_host("client").expect("client").clone();
    let o = probe(&client, &ProbeSpec::http(ip("10.244.9.5"), 8080), None)
        .await
        .expect("probe");
    assert_eq!(o.outcome, Outcome::Connected, "{o:?}");
    assert_eq!(o.server.as_deref(), Some("prod/web"));
    assert_eq!(o.client_ip(), Some(ip("203.0.113.9")));
    // The fabric routes the load-balancer address to n2.
    let fabric = cluster.fabric().clone();
    let routes = std::process::Command::new("ip")
        .args(["-n", fabric.name(), "route", "show", "198.51.100.80"])
        .output()
        .expect("ip route");
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(routes.contains("via 172.18.0.22"), "{routes}");
    cluster.teardown().expect("teardown");
}

/// `Cluster::route_load_balancer` moves a load-balancer address to another node: before,
/// the address goes to node-1, which has no DNAT for it (no connection); after, it
/// goes to node-2, whose DNAT rule sends it to pod c.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_balancer_route_can_move_to_another_node() {
    if !kernel_ready("a_load_balancer_route_can_move_to_another_node") {
        return;
    }
    let plan = {
        let mut p = small_plan("lbmove");
        p.load_balancers.push(policylab::lab::LoadBalancerPlan {
            address: ip("198.51.100.80"),
            node: "node-1".into(),
        });
        p.normalize();
        p
    };
    let mut cluster = Cluster::build(&plan, &BuildOptions::default())
        .await
        .expect("build");
    let node2 = cluster.node("node-2").expect("node-2").clone();
    policylab_harness::nft::apply_async(
        &node2,
        "table ip lbtest {\n  chain pre {\n    type nat hook prerouting priority -100;\n    ip daddr 198.51.100.80 tcp dport 80 dnat to 10.244.2.10:80\n  }\n}\n",
    )
    .await
    .expect("dnat on node-2");
    let laptop = cluster.outside_host("laptop").expect("laptop").clone();
    let spec = ProbeSpec::http(ip("198.51.100.80"), 80).with_timeout(Duration::from_millis(500));
    let before = probe(&laptop, &spec, None).await.expect("probe");
    assert_ne!(before.outcome, Outcome::Connected, "{before:?}");
    cluster
        .route_load_balancer(ip("198.51.100.80"), "node-2")
        .await
        .expect("move the route");
    let after = probe(&laptop, &spec, None).await.expect("probe");
    assert_eq!(after.outcome, Outcome::Connected, "{after:?}");
    assert_eq!(after.http_status, Some(200));
    assert_eq!(cluster.plan().load_balancers[0].node, "node-2");
    cluster.teardown().expect("teardown");
}

/// `fail:` makes an outside host stop answering (probes time out, nothing is refused);
/// `recover:` makes it answer again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_host_can_fail_and_recover() {
    if !kernel_ready("an_outside_host_can_fail_and_recover") {
        return;
    }
    let cluster = Cluster::build(&small_plan("fail"), &BuildOptions::default())
        .await
        .expect("build");
    let a = cluster.pod("default", "a").expect("a").clone();
    let spec = ProbeSpec::http(ip("198.51.100.7"), 80).with_timeout(Duration::from_millis(300));
    let udp = ProbeSpec::udp(ip("198.51.100.7"), 53).with_timeout(Duration::from_millis(300));
    assert_eq!(
        probe(&a, &spec, None).await.expect("probe").outcome,
        Outcome::Connected
    );
    cluster
        .set_outside_failed("laptop", true)
        .await
        .expect("fail");
    cluster
        .set_outside_failed("laptop", true)
        .await
        .expect("fail twice");
    assert_eq!(
        probe(&a, &spec, None).await.expect("probe").outcome,
        Outcome::TimedOut
    );
    assert_eq!(
        probe(&a, &udp, None).await.expect("probe").outcome,
        Outcome::TimedOut
    );
    cluster
        .set_outside_failed("laptop", false)
        .await
        .expect("recover");
    assert_eq!(
        probe(&a, &spec, None).await.expect("probe").outcome,
        Outcome::Connected
    );
    cluster
        .set_outside_failed("laptop", false)
        .await
        .expect("recover twice");
    cluster.teardown().expect("teardown");
}
