//! The `policylab run` side files on the kernel dataplane: `--log-lines` holds the
//! kernel's full `calico-packet:` line of seed 002's Log rule (whose normalized form
//! is what the report shows), `--flow-logs` the flow-log records (JSON lines, the same
//! as on the model), `--pcap` one file per probe; `--pcap` on the model is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_policylab"))
        .args(args)
        .current_dir(root())
        .env_remove(policylab_harness::runner::PERTURB_ENV)
        .output()
        .expect("the policylab binary runs")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("policylab-{name}-{}", std::process::id()))
}

#[test]
fn log_lines_flow_logs_and_pcap_files_of_a_kernel_run() {
    if !common::kernel_ready("log_lines_flow_logs_and_pcap_files_of_a_kernel_run") {
        return;
    }
    let (logs, flows, pcaps, model_flows) = (
        tmp("log-lines"),
        tmp("flow-logs"),
        tmp("pcap"),
        tmp("model-flow-logs"),
    );
    let seed = "scenarios/002-prednat-nlb.yaml";
    let o = run(&[
        "run",
        "--log-lines",
        logs.to_str().unwrap_or_default(),
        "--flow-logs",
        flows.to_str().unwrap_or_default(),
        "--pcap",
        pcaps.to_str().unwrap_or_default(),
        seed,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report
            .contains("logged: calico-packet: SRC=198.51.100.7 DST=198.51.100.80 PROTO=TCP DPT=80"),
        "{report}"
    );
    // The kernel's own line: interfaces, MAC, IP and TCP fields as the LOG target
    // prints them.
    let lines = std::fs::read_to_string(&logs).expect("log lines written");
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = lines[0];
    let head = "prednat-policies-for-an-nlb step 19 laptop -> 198.51.100.80:80/http: node-1: calico-packet: IN=eth0 OUT= MAC=";
    assert!(line.starts_with(head), "{line}");
    for part in [
        " SRC=198.51.100.7 DST=198.51.100.80 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=",
        " PROTO=TCP SPT=",
        " DPT=80 WINDOW=",
        " RES=0x00 SYN URGP=0",
    ] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }
    // Flow logs: JSON lines, equal to the model run's but for the source port: the
    // kernel's are what it logged (the probes' own ports, below 32768), the model's
    // a placeholder (decision `kernel-flow-logs`).
    let kernel_flows = std::fs::read_to_string(&flows).expect("flow logs written");
    let o = run(&[
        "run",
        "--dataplane",
        "model",
        "--flow-logs",
        model_flows.to_str().unwrap_or_default(),
        seed,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let model_text = std::fs::read_to_string(&model_flows).expect("model flow logs");
    let without_src_port = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).expect("JSON");
                if let Some(o) = v.as_object_mut() {
                    o.remove("src_port");
                }
                v
            })
            .collect()
    };
    assert_eq!(
        without_src_port(&kernel_flows),
        without_src_port(&model_text)
    );
    let kernel_ports: Vec<u64> = kernel_flows
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("src_port").and_then(serde_json::Value::as_u64))
        .collect();
    assert!(!kernel_ports.is_empty());
    assert!(
        kernel_ports.iter().all(|p| (10_000..32_768).contains(p)),
        "{kernel_ports:?}"
    );
    let first: serde_json::Value =
        serde_json::from_str(kernel_flows.lines().next().expect("a record")).expect("JSON");
    for key in [
        "reporter", "src_ip", "dst_ip", "proto", "action", "policies",
    ] {
        assert!(first.get(key).is_some(), "{key} missing in {first}");
    }
    // One pcap per probe.
    let probes =
        report.matches("\n  laptop (").count() + report.matches("\n  other-system (").count();
    let files = std::fs::read_dir(&pcaps).expect("pcap dir").count();
    assert!(probes >= 10, "{report}");
    assert_eq!(files, probes, "{report}");
    for p in [&logs, &flows, &model_flows] {
        std::fs::remove_file(p).ok();
    }
    std::fs::remove_dir_all(&pcaps).ok();
    // --pcap needs the kernel.
    let o = run(&[
        "run",
        "--dataplane",
        "model",
        "--pcap",
        "/nonexistent/x",
        seed,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--dataplane kernel"));
}
