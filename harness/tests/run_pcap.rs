//! Kernel test of `run --pcap`: seed 003 on the kernel with one capture per probe;
//! the files are named by step, probe, source and target, and hold the probe's
//! packets as seen in the source namespace: the allowed probe's handshake is
//! answered, the denied probe's SYNs are not.

mod common;

use std::path::Path;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use policylab::diag::{Diagnostics, Sources};
use policylab_harness::pcap::read_file;
use policylab_harness::runner::{self, RunnerOptions};

/// (src, dst, src port, dst port, SYN, ACK) of each TCP packet of a LINUX_SLL2 file.
fn tcp_packets(path: &Path) -> Vec<(String, String, u16, u16, bool, bool)> {
    let (link, packets) = read_file(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(link, pcap_file::DataLink::LINUX_SLL2);
    let mut out = Vec::new();
    for p in packets {
        let Some(ip) = p.data.get(20..) else { continue };
        let Ok(s) = SlicedPacket::from_ip(ip) else {
            continue;
        };
        let (src, dst) = match &s.net {
            Some(NetSlice::Ipv4(v4)) => (
                v4.header().source_addr().to_string(),
                v4.header().destination_addr().to_string(),
            ),
            _ => continue,
        };
        if let Some(TransportSlice::Tcp(t)) = &s.transport {
            out.push((
                src,
                dst,
                t.source_port(),
                t.destination_port(),
                t.syn(),
                t.ack(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_probe_is_captured_in_its_own_file() {
    if !common::kernel_ready("each_probe_is_captured_in_its_own_file") {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/003-threat-feed.yaml");
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(&mut sources, &path, &mut diags).expect("seed 003 loads");
    let plan = policylab::run::plan(&sc, &sources);
    let dir = std::env::temp_dir().join(format!("policylab-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let opts = RunnerOptions {
        pcap_dir: Some(dir.clone()),
        ..RunnerOptions::default()
    };
    let run = runner::run_plan(&plan, &opts).await.expect("kernel run");
    for (i, (_, _, pp)) in plan.probes().enumerate() {
        let d = policylab::run::disagreements(&pp.prediction, &run.probes[i].observation);
        assert!(d.is_empty(), "probe {i}: {d:?}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [3, 5, 7]
            .iter()
            .map(|s| format!(
                "threat-feed-red-pod-step0{s}-probe01-default_red-to-suspicious_80_http.pcap"
            ))
            .collect::<Vec<_>>()
    );
    let (red, suspicious) = ("10.244.1.10", "10.48.255.194");
    // Step 3, allowed: the SYN goes out and the SYN-ACK comes back.
    let allowed = tcp_packets(&dir.join(&names[0]));
    assert!(
        allowed
            .iter()
            .any(|p| p.0 == red && p.1 == suspicious && p.3 == 80 && p.4 && !p.5),
        "{allowed:?}"
    );
    assert!(
        allowed
            .iter()
            .any(|p| p.0 == suspicious && p.1 == red && p.2 == 80 && p.4 && p.5),
        "{allowed:?}"
    );
    // Step 5, denied by the feed policy: SYNs only, nothing from the address.
    let denied = tcp_packets(&dir.join(&names[1]));
    assert!(
        denied
            .iter()
            .any(|p| p.0 == red && p.1 == suspicious && p.3 == 80 && p.4),
        "{denied:?}"
    );
    assert!(
        denied.iter().all(|p| p.0 != suspicious),
        "a denied probe got an answer: {denied:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
