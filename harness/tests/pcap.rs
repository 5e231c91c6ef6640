//! Kernel test of packet capture: two namespaces joined by a veth pair, an allowed
//! probe (SYN, SYN-ACK, ACK, ...) and a probe denied by an nft drop rule (SYN
//! retransmissions, no reply), captured to pcap files and read back.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use common::kernel_ready;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use policylab::lab::ServerSpec;
use policylab_harness::netns::{Lab, NetNs};
use policylab_harness::nft;
use policylab_harness::pcap::{self, Capture, CaptureScope};
use policylab_harness::probe::{probe, Outcome, ProbeSpec};
use policylab_harness::server::{Families, ServerSet};

const LEFT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const RIGHT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

/// Runs `ip args…` inside `ns` (the child enters the namespace before exec).
fn ip_in(ns: &NetNs, args: &[&str]) {
    let fd = ns.open().expect("open namespace");
    let raw = fd.as_raw_fd();
    let mut cmd = Command::new("ip");
    cmd.args(args);
    // SAFETY: setns is async-signal-safe; `fd` outlives the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(raw, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(fd);
}

/// One TCP segment of a capture, as (source port, destination port, SYN, ACK, RST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    src: IpAddr,
    sport: u16,
    dport: u16,
    syn: bool,
    ack: bool,
    rst: bool,
}

fn segments(frames: &[pcap::FilePacket], ethernet: bool) -> Vec<Seg> {
    let mut out = Vec::new();
    for f in frames {
        let sliced = if ethernet {
            SlicedPacket::from_ethernet(&f.data)
        } else {
            // LINUX_SLL2: a 20-byte header (protocol first), then the IP packet.
            if f.data.get(0..2) != Some(&[0x08, 0x00][..]) {
                continue;
            }
            SlicedPacket::from_ip(&f.data[20..])
        };
        let Ok(p) = sliced else { continue };
        let src = match &p.net {
            Some(NetSlice::Ipv4(v4)) => IpAddr::V4(v4.header().source_addr()),
            _ => continue,
        };
        if let Some(TransportSlice::Tcp(t)) = &p.transport {
            out.push(Seg {
                src,
                sport: t.source_port(),
                dport: t.destination_port(),
                syn: t.syn(),
                ack: t.ack(),
                rst: t.rst(),
            });
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_allowed_and_denied_probes() {
    if !kernel_ready("captures_allowed_and_denied_probes") {
        return;
    }
    let lab = Lab::new("pcap").expect("lab");
    let left = lab.create("left").expect("left");
    let right = lab.create("right").expect("right");
    // The veth is made inside `left` with its peer put straight into `right`.
    let right_path = right.path().display().to_string();
    ip_in(
        &left,
        &[
            "link",
            "add",
            "vl",
            "type",
            "veth",
            "peer",
            "name",
            "vr",
            "netns",
            &right_path,
        ],
    );
    for (ns, dev, addr) in [(&left, "vl", LEFT), (&right, "vr", RIGHT)] {
        ip_in(ns, &["addr", "add", &format!("{addr}/24"), "dev", dev]);
        ip_in(ns, &["link", "set", dev, "up"]);
        ip_in(ns, &["link", "set", "lo", "up"]);
    }
    let mut servers = ServerSet::new();
    let v4 = Families {
        v4: true,
        v6: false,
    };
    servers
        .serve(&right, "right", ServerSpec::tcp(80), v4)
        .await
        .expect("serve 80");
    servers
        .serve(&right, "right", ServerSpec::tcp(81), v4)
        .await
        .expect("serve 81");
    nft::apply(
        &right,
        "table inet plabpcap {\n  chain input_f {\n    type filter hook input priority 0; policy accept;\n    tcp dport 81 drop\n  }\n}\n",
    )
    .expect("drop rule");

    let dir = std::env::temp_dir().join(format!("plab-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    // Allowed: the handshake and the HTTP exchange.
    let on_left = Capture::start(
        &left,
        CaptureScope::Interface("vl".into()),
        dir.join("allowed-vl.pcap"),
    )
    .await
    .expect("capture vl");
    let on_right = Capture::start(&right, CaptureScope::All, dir.join("allowed-right.pcap"))
        .await
        .expect("capture right");
    let o = probe(
        &left,
        &ProbeSpec::http(IpAddr::V4(RIGHT), 80).with_timeout(Duration::from_secs(2)),
        None,
    )
    .await
    .expect("probe");
    assert_eq!(o.outcome, Outcome::Connected, "{o:?}");
    let sport = o.local_addr.expect("local").port();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s_left = on_left.stop().await.expect("stop");
    let s_right = on_right.stop().await.expect("stop");
    assert_eq!(s_left.datalink, pcap_file::DataLink::ETHERNET);
    assert_eq!(s_right.datalink, pcap_file::DataLink::LINUX_SLL2);

    let (dl, frames) = pcap::read_file(&s_left.path).expect("read");
    assert_eq!(dl, pcap_file::DataLink::ETHERNET);
    assert_eq!(frames.len() as u64, s_left.packets);
    let segs: Vec<Seg> = segments(&frames, true)
        .into_iter()
        .filter(|s| s.sport == sport || s.dport == sport)
        .collect();
    let syn = Seg {
        src: IpAddr::V4(LEFT),
        sport,
        dport: 80,
        syn: true,
        ack: false,
        rst: false,
    };
    let syn_ack = Seg {
        src: IpAddr::V4(RIGHT),
        sport: 80,
        dport: sport,
        syn: true,
        ack: true,
        rst: false,
    };
    assert!(segs.len() >= 5, "handshake, request, response: {segs:?}");
    assert_eq!(segs[0], syn, "{segs:?}");
    assert_eq!(segs[1], syn_ack, "{segs:?}");
    assert!(
        segs[2].ack && !segs[2].syn && segs[2].src == IpAddr::V4(LEFT),
        "{segs:?}"
    );
    assert!(segs.iter().all(|s| !s.rst), "{segs:?}");
    // The same flow, seen from the other namespace's all-interfaces capture.
    let (dl, frames) = pcap::read_file(&s_right.path).expect("read");
    assert_eq!(dl, pcap_file::DataLink::LINUX_SLL2);
    let right_segs: Vec<Seg> = segments(&frames, false)
        .into_iter()
        .filter(|s| s.sport == sport || s.dport == sport)
        .collect();
    assert_eq!(right_segs.first(), Some(&syn), "{right_segs:?}");
    assert_eq!(right_segs.get(1), Some(&syn_ack), "{right_segs:?}");

    // Denied: the SYN is retransmitted, nothing comes back.
    let on_left = Capture::start(
        &left,
        CaptureScope::Interface("vl".into()),
        dir.join("denied-vl.pcap"),
    )
    .await
    .expect("capture vl");
    let o = probe(
        &left,
        &ProbeSpec::tcp(IpAddr::V4(RIGHT), 81).with_timeout(Duration::from_millis(1500)),
        None,
    )
    .await
    .expect("probe");
    assert_eq!(o.outcome, Outcome::TimedOut, "{o:?}");
    let sport = o.local_addr.expect("local").port();
    let s = on_left.stop().await.expect("stop");
    let (_, frames) = pcap::read_file(&s.path).expect("read");
    let segs: Vec<Seg> = segments(&frames, true)
        .into_iter()
        .filter(|s| s.sport == sport || s.dport == sport)
        .collect();
    let syn = Seg {
        sport,
        dport: 81,
        ..syn
    };
    assert!(segs.len() >= 2, "a SYN and its retransmission: {segs:?}");
    assert!(
        segs.iter().all(|s| *s == syn),
        "only SYNs, no reply: {segs:?}"
    );

    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    servers.stop();
    lab.teardown().expect("teardown");
}
