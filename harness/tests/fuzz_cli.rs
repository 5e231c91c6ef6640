//! Bounded fuzzing of the `policylab` binary (stable, in CI): mutated scenarios
//! (every scenario of the repository as a seed) run through `policylab run
//! --dataplane model` and `policylab check`. Each case must end with exit code 0,
//! 1 or 2 (never a panic's 70, never a signal), within [`TIME_BOUND`] and with a
//! peak resident memory under [`MEMORY_BOUND_KB`] (read with `wait4`). Cases per
//! CI run: `POLICYLAB_FUZZ_CLI_CASES`, default 1,000.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;

/// The most one case may take (a debug build on a busy 2-core machine).
const TIME_BOUND: Duration = Duration::from_secs(10);
/// The most memory one case may hold at its peak: 256 MiB.
const MEMORY_BOUND_KB: i64 = 256 * 1024;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scratch root: `fixtures/` and the runner scenarios' `feeds/` copied, a
/// `.policylab-root`, and `scenarios/` where each case is written.
fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        copy_dir(&repo().join("fixtures"), &d.join("fixtures"));
        copy_dir(
            &repo().join("tests/run_scenarios/feeds"),
            &d.join("scenarios/feeds"),
        );
        std::fs::write(d.join(".policylab-root"), "").unwrap();
        d
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let t = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// Every scenario file of the repository.
fn seeds() -> &'static [String] {
    static SEEDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out = Vec::new();
        for dir in [
            "scenarios",
            "tests/scenarios",
            "tests/bad_scenarios",
            "tests/run_scenarios",
        ] {
            for e in walkdir::WalkDir::new(repo().join(dir)).sort_by_file_name() {
                let e = e.unwrap();
                if e.path().extension().is_some_and(|x| x == "yaml") {
                    let t = std::fs::read_to_string(e.path()).unwrap();
                    if t.contains("steps:") {
                        out.push(t);
                    }
                }
            }
        }
        assert!(out.len() >= 20, "{}", out.len());
        out
    })
}

/// How a case ended.
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    max_rss_kb: i64,
    took: Duration,
}

/// Runs policylab on `text` written as `scenarios/case-N.yaml` in the scratch
/// root, reaping it with `wait4` for its peak memory; killed past the time bound.
fn run_case(n: u64, text: &str, args: &[&str]) -> Ended {
    let file = scratch().join(format!("scenarios/case-{n}.yaml"));
    std::fs::write(&file, text).unwrap();
    let start = Instant::now();
    // Reaped below with wait4 (for its rusage), not with `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_policylab"))
        .args(args)
        .arg(&file)
        .current_dir(scratch())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the policylab binary runs");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits only for the child this function started.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if start.elapsed() > TIME_BOUND {
            // SAFETY: kills and reaps the child this function started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!(
                "case {n} ({args:?}) ran past {TIME_BOUND:?}:\n{}",
                head(text)
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = std::fs::remove_file(&file);
    Ended {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        max_rss_kb: usage.ru_maxrss,
        took: start.elapsed(),
    }
}

fn assert_bounded(n: u64, text: &str, args: &[&str]) -> Ended {
    let e = run_case(n, text, args);
    assert!(
        matches!(e.code, Some(0..=2)),
        "case {n} ({args:?}): exit {:?}, signal {:?}:\n{}",
        e.code,
        e.signal,
        head(text)
    );
    assert!(
        e.max_rss_kb < MEMORY_BOUND_KB,
        "case {n} ({args:?}): peak memory {} KiB:\n{}",
        e.max_rss_kb,
        head(text)
    );
    assert!(e.took < TIME_BOUND);
    e
}

/// The first 2,000 bytes of a case, for a failure's message.
fn head(text: &str) -> &str {
    let mut end = text.len().min(2000);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, &'static str),
    Delete(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let piece = prop::sample::select(vec![
        ":",
        "- ",
        "\n",
        "  ",
        "{",
        "}",
        "[",
        "'",
        "\"",
        "&a ",
        "*a",
        "---\n",
        "$X",
        "${",
        "../",
        "/etc/passwd",
        "65536",
        "0.0.0.0/0",
        "all() &&",
        "null",
        "->",
        ":80/tcp",
        "expect: deny\n",
        "advance: 1h",
        "fail: ",
        "recover: ",
    ]);
    prop_oneof![
        (any::<usize>(), piece).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
    ]
}

fn apply(mut text: String, edits: &[Edit]) -> String {
    for e in edits {
        let len = text.len().max(1);
        let at = |i: usize| {
            let mut i = i % len;
            while i > 0 && !text.is_char_boundary(i) {
                i -= 1;
            }
            i.min(text.len())
        };
        match e {
            Edit::Insert(i, s) => {
                let i = at(*i);
                text.insert_str(i, s);
            }
            Edit::Delete(i, n) => {
                let i = at(*i);
                let mut j = (i + n).min(text.len());
                while !text.is_char_boundary(j) {
                    j -= 1;
                }
                text.replace_range(i..j, "");
            }
        }
    }
    text
}

fn cases() -> u32 {
    std::env::var("POLICYLAB_FUZZ_CLI_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_scenarios_end_with_0_1_or_2_in_bounded_time_and_memory(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 0..5),
        check in any::<bool>(),
    ) {
        let n = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let text = apply(seeds()[which.index(seeds().len())].clone(), &edits);
        let args: &[&str] = if check { &["check"] } else { &["run", "--dataplane", "model"] };
        assert_bounded(n, &text, args);
    }
}

/// The hostile inputs through the binary, with their figures printed
/// (`--nocapture`): the alias bomb, deep nesting, 32,000 vars, a 1 MB kind.
#[test]
fn hostile_inputs_end_within_the_bounds() {
    let mut bomb = format!("a1: &a1 [{}]\n", ["lol"; 10].join(", "));
    for n in 2..=9 {
        bomb.push_str(&format!(
            "a{n}: &a{n} [{}]\n",
            vec![format!("*a{}", n - 1); 10].join(", ")
        ));
    }
    bomb.push_str("name: x\nsteps: []\n");
    let deep = format!("name: x\nsteps:\n  - {}x\n", "- ".repeat(100_000));
    let mut vars = String::from("name: many-vars\nvars:\n");
    for i in 0..32_000 {
        vars.push_str(&format!("  v{i}: value{i}\n"));
    }
    vars.push_str("steps: []\n");
    let kind = format!(
        "name: x\nsteps:\n  - apply: |\n      apiVersion: v1\n      kind: {}\n",
        "X".repeat(1 << 20)
    );
    for (name, text) in [
        ("alias bomb", bomb),
        ("deep", deep),
        ("32,000 vars", vars),
        ("1 MB kind", kind),
    ] {
        let e = assert_bounded(u64::MAX, &text, &["check"]);
        println!(
            "{name}: exit {:?}, {:.2} s, peak {} KiB",
            e.code,
            e.took.as_secs_f64(),
            e.max_rss_kb
        );
    }
}

/// 500 single-policy `apply` steps took 1.3 GB on the model (every state a full
/// copy, every step's title parsing the whole scenario again, every world
/// compared by formatting every resource). Figures printed with `--nocapture`.
#[test]
fn many_apply_steps_stay_within_bounds() {
    let mut t =
        String::from("name: many-steps\ncluster:\n  pods:\n    - name: a\n    - name: b\nsteps:\n");
    for i in 0..500 {
        t.push_str(&format!(
            "  - apply: |\n      apiVersion: projectcalico.org/v3\n      kind: GlobalNetworkPolicy\n      metadata: {{name: p{i}}}\n      spec:\n        selector: all()\n        ingress: [{{action: Allow}}]\n"
        ));
    }
    t.push_str("  - probe: a -> b:80/tcp\n    expect: refused\n");
    for (args, bound_kb) in [
        (&["check"][..], 128 * 1024),
        (&["run", "--dataplane", "model"][..], 640 * 1024),
    ] {
        let e = run_case(u64::MAX - 1, &t, args);
        println!(
            "500 apply steps, {args:?}: exit {:?}, {:.2} s, peak {} KiB",
            e.code,
            e.took.as_secs_f64(),
            e.max_rss_kb
        );
        assert_eq!(e.code, Some(0), "{args:?}");
        assert!(e.max_rss_kb < bound_kb, "{args:?}: {} KiB", e.max_rss_kb);
    }
}
