//! This module deals with the kernel side of the command line: `run --dataplane
//! kernel` (with the comparison against the model and exit codes 3 and 4),
//! `compile` and `clean`.

use std::path::Path;
use std::time::Duration;

use policylab::diag::{Diagnostics, Sources};
use policylab::run::{disagreements, Observation, Plan};
use policylab_harness::exit::Exit;
use policylab_harness::runner::{self, RunnerError, RunnerOptions};

use crate::stdout::{out, outln};

/// What to tell a user whose machine failed while building or running a lab.
const MACHINE_HINT: &str = "policylab's kernel dataplane needs root, the nft binary, and a kernel with network namespaces, veth, nf_tables and nfnetlink_log (NFLOG); `--dataplane model` runs without them";

/// Why a kernel run stopped: the exit code and the message already on stderr
/// (JUnit's error test case repeats it).
#[derive(Debug)]
pub struct Stop {
    pub exit: Exit,
    pub message: String,
}

impl Stop {
    /// Prints `message` on stderr and keeps it.
    fn new(exit: Exit, message: String) -> Stop {
        eprintln!("{message}");
        Stop { exit, message }
    }
}

/// The kernel dataplane, ready to run plans.
pub struct Kernel {
    rt: tokio::runtime::Runtime,
    opts: RunnerOptions,
}

impl Kernel {
    /// Checks the machine and starts a runtime; `Err` (exit 3) after saying what
    /// is missing.
    /// `pcap_dir`: capture every probe there (`--pcap`).
    pub fn start(pcap_dir: Option<&Path>) -> Result<Kernel, Stop> {
        let problems = runner::machine_problems();
        if !problems.is_empty() {
            let mut message = "this machine cannot run the kernel dataplane:".to_string();
            for p in &problems {
                message.push_str(&format!("\n  - {p}"));
            }
            return Err(Stop::new(Exit::Machine, message));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| {
                Stop::new(
                    Exit::Machine,
                    format!("cannot start the async runtime: {e}"),
                )
            })?;
        Ok(Kernel {
            rt,
            opts: RunnerOptions {
                pcap_dir: pcap_dir.map(Path::to_path_buf),
                ..RunnerOptions::default()
            },
        })
    }

    /// Runs a plan on the kernel. Every disagreement with the model goes to stderr
    /// with both traces and sets `disagreed`.
    /// The kernel's Log-rule lines are appended to `log_lines`, one a line after the
    /// scenario, step, probe and node.
    pub fn observe(
        &self,
        plan: &Plan,
        disagreed: &mut bool,
        log_lines: &mut String,
    ) -> Result<(Vec<Observation>, Vec<Duration>), Stop> {
        let run = match self.rt.block_on(runner::run_plan(plan, &self.opts)) {
            Ok(r) => r,
            Err(e @ RunnerError::TableRejected { .. }) => {
                // A table policylab compiled that nft refuses is policylab's bug,
                // whatever the machine (README, exit codes).
                return Err(Stop::new(
                    e.exit(),
                    format!(
                        "scenario {}: {e}\nthis is a bug in policylab (the compiler wrote a table nft does not take), not a problem of this machine: please report it with the scenario",
                        plan.name
                    ),
                ));
            }
            Err(e) => {
                let code = e.exit();
                let mut message = format!("scenario {}: {e}", plan.name);
                if code == Exit::Machine {
                    message.push_str(&format!("\n{MACHINE_HINT}"));
                }
                return Err(Stop::new(code, message));
            }
        };
        for (i, (s, _, pp)) in plan.probes().enumerate() {
            let Some(k) = run.probes.get(i) else { continue };
            for l in &k.kernel_log_lines {
                log_lines.push_str(&format!(
                    "{} step {} {} -> {}: {}\n",
                    plan.name,
                    plan.steps[s].number,
                    pp.source,
                    pp.target,
                    l.trim_end()
                ));
            }
            let d = disagreements(&pp.prediction, &k.observation);
            if d.is_empty() {
                continue;
            }
            *disagreed = true;
            let st = &plan.steps[s];
            eprintln!(
                "DISAGREEMENT scenario {}, step {} (line {}), probe {} -> {} ({} -> {}):",
                plan.name, st.number, st.line, pp.source, pp.target, pp.flow.src_ip, pp.flow.dst_ip
            );
            for x in &d {
                eprintln!("  {x}");
            }
            eprintln!("The reference model:");
            for l in policylab::model::explain(&st.world, &pp.flow.model_flow()).lines() {
                eprintln!("  {l}");
            }
            eprintln!("The kernel (NFLOG attribution, in path order):");
            eprint!("{}", k.trace());
        }
        for f in &run.feed_disagreements {
            *disagreed = true;
            eprintln!("DISAGREEMENT scenario {}, {f}", plan.name);
        }
        if *disagreed {
            eprintln!(
                "the kernel dataplane and the reference model disagree: this is a bug in policylab, please report it with the scenario"
            );
        }
        Ok((
            run.observations(),
            run.probes.iter().map(|p| p.elapsed).collect(),
        ))
    }
}

/// `policylab compile`: every node's table after a step.
pub fn compile(scenario: &Path, root: Option<&Path>, step: Option<usize>) -> Exit {
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let Some(sc) = crate::load_one(scenario, root, &mut sources, &mut diags) else {
        eprint!("{}", diags.render(&sources));
        return Exit::Invalid;
    };
    let plan = policylab::run::plan(&sc, &sources);
    let n = step.unwrap_or(plan.steps.len());
    let world = match n {
        0 => std::sync::Arc::new(policylab::resolve::resolve(&sc.inventory0)),
        n => match plan.steps.get(n - 1) {
            Some(st) => st.world.clone(),
            None => {
                eprintln!(
                    "{}: there is no step {n} (the scenario has {} steps)",
                    scenario.display(),
                    plan.steps.len()
                );
                return Exit::Invalid;
            }
        },
    };
    let compiled = policylab::compile::compile(&world);
    let mut first = true;
    for (node, table) in &compiled.tables {
        if !first {
            outln!();
        }
        first = false;
        outln!("# node {node}");
        out!("{table}");
    }
    Exit::Ok
}

/// `policylab clean`.
pub fn clean(all: bool) -> Exit {
    let result = if all {
        policylab_harness::netns::clean_all()
    } else {
        policylab_harness::netns::sweep_stale()
    };
    match result {
        Ok(removed) => {
            for n in &removed {
                outln!("removed {n}");
            }
            outln!(
                "removed {} namespace{} of {}policylab runs",
                removed.len(),
                if removed.len() == 1 { "" } else { "s" },
                if all { "all " } else { "dead " }
            );
            Exit::Ok
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("removing namespaces needs root: run `sudo policylab clean`");
            Exit::Machine
        }
    }
}
