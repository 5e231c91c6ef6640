//! This module deals with what the kernel tests share: the check that the machine can
//! run them, and a small lab plan.

#![allow(dead_code)]

pub mod cli;

use std::net::IpAddr;

use policylab::lab::{LabPlan, NodePlan, OutsideHostPlan, PodPlan, ServerSpec};

/// Whether kernel tests should run. Without root or without `nft` they fail with a
/// message naming what is missing, unless POLICYLAB_SKIP_KERNEL_TESTS=1 is set, in which
/// case they print a skip notice and pass.
pub fn kernel_ready(test: &str) -> bool {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root privileges (run the tests as root, e.g. `sudo -E cargo test`)");
    }
    if policylab_harness::nft::nft_binary().is_err() {
        missing
            .push("the nft binary (install the nftables package: `apt-get install -y nftables`)");
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var("POLICYLAB_SKIP_KERNEL_TESTS").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED {test}: kernel test needs {} (POLICYLAB_SKIP_KERNEL_TESTS=1)",
            missing.join(" and ")
        );
        return false;
    }
    panic!(
        "{test}: this kernel test needs {}; set POLICYLAB_SKIP_KERNEL_TESTS=1 to skip kernel tests",
        missing.join(" and ")
    );
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// Two nodes, three pods (a and b on node-1, c on node-2), dual-stack, one outside
/// host; every pod serves TCP 80 and UDP 53, the outside host TCP 80 and UDP 53, node-1
/// TCP 22.
pub fn small_plan(prefix: &str) -> LabPlan {
    let pod = |name: &str, node: &str, v4: &str, v6: &str| {
        PodPlan::new("default", name, node, v4.parse().expect("v4"))
            .with_ipv6(v6.parse().expect("v6"))
            .with_server(ServerSpec::tcp(80))
            .with_server(ServerSpec::udp(53))
    };
    LabPlan::builder(prefix)
        .node(
            NodePlan::new("node-1", "172.18.0.11".parse().expect("v4"))
                .with_ipv6("fd00:18::11".parse().expect("v6"))
                .with_interface("eth1")
                .with_pod_cidr("10.244.1.0/24".parse().expect("net"))
                .with_server(ServerSpec::tcp(22)),
        )
        .node(
            NodePlan::new("node-2", "172.18.0.12".parse().expect("v4"))
                .with_pod_cidr("10.244.2.0/24".parse().expect("net"))
                .with_pod_cidr("fd00:10:244:2::/64".parse().expect("net")),
        )
        .pod(pod("a", "node-1", "10.244.1.10", "fd00:10:244:1::10"))
        .pod(pod("b", "node-1", "10.244.1.11", "fd00:10:244:1::11"))
        .pod(pod("c", "node-2", "10.244.2.10", "fd00:10:244:2::10"))
        .outside(
            OutsideHostPlan::new("laptop", ip("198.51.100.7"))
                .with_address(ip("2001:db8::7"))
                .with_server(ServerSpec::tcp(80))
                .with_server(ServerSpec::udp(53)),
        )
        .build()
        .expect("valid plan")
}
