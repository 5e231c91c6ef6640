//! The command line: one enum, one variant per subcommand that fully works.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Where the documentation is, for `--help` (paths in the policylab repository).
pub const DOCS: &str = "Documentation (in the policylab repository):
  docs/scenario-format.md  the scenario format: every key, probe forms, expectations, exit codes
  docs/semantics.md        how verdicts are decided (tiers, selectors, host endpoints, services)
  docs/cookbook.md         complete recipes (default deny, isolation, tiers, NodePort, threat feeds)
  docs/decisions.md        the choices policylab makes where Calico is silent";

#[derive(Debug, Parser)]
#[command(
    name = "policylab",
    version,
    about = "A lab for Calico network policy: scenarios in network namespaces, verdicts with the policy that decided.",
    after_help = DOCS
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check scenario files without building anything (no root needed).
    ///
    /// Every problem is printed as `file:line:col: message` with the offending line,
    /// then a summary `checked N scenarios: M problems`. Exit code 0 when there is no
    /// problem, 2 when there is at least one (or nothing to check: no scenario or
    /// manifest in the paths given, as for `run`).
    ///
    /// A PATH may be a file or a directory. Under a directory, every `*.yaml` /
    /// `*.yml` file (recursively) with a top-level `steps:` key is a scenario; other
    /// YAML files there are not checked on their own (they are fixtures: manifests are
    /// checked as part of the scenarios that apply them). A file named directly is
    /// checked as a scenario when it has `steps:`, else as a manifest stream.
    ///
    /// The scenario format, key by key: docs/scenario-format.md in the policylab
    /// repository; complete examples: docs/cookbook.md.
    Check {
        /// Scenario files, manifest files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The folder every file a scenario names must resolve inside (default:
        /// the nearest folder above the scenario holding a `.policylab-root` file,
        /// else the directory given that holds it, else the scenario's folder).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Run scenarios and report every probe's verdict and who decided it.
    ///
    /// A PATH may be a scenario file or a directory (every `*.yaml` / `*.yml` file
    /// with a top-level `steps:` key under it, recursively). The report goes to
    /// stdout. The kernel dataplane (the default) builds each scenario in network
    /// namespaces, loads the compiled nftables policy and sends real traffic; it
    /// needs root and the `nft` binary. Every kernel verdict is compared with the
    /// reference model's.
    ///
    /// Exit codes: 0 every expectation held; 1 at least one did not (the report
    /// marks it); 2 invalid input (every problem listed, nothing built); 3 this
    /// machine cannot run the kernel dataplane (not root, no nft, no network
    /// namespaces or veth; the message says what to do); 4 the kernel and the
    /// reference model disagreed (a bug in policylab: both traces are printed on
    /// stderr); 70 an internal error (a bug in policylab); 74 the report could not
    /// be written. A closed stdout ends the run quietly (SIGPIPE) after the lab is
    /// torn down. Scenario names must be unique in one run (pcap files and JUnit
    /// suites are named after them).
    ///
    /// The format, expectations and report: docs/scenario-format.md; how each
    /// verdict is decided: docs/semantics.md (both in the policylab repository).
    Run {
        /// Which dataplane runs the probes.
        #[arg(long, value_enum, default_value_t = Dataplane::Kernel)]
        dataplane: Dataplane,
        /// Report format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also write every flow-log record (one JSON object a line) to FILE.
        #[arg(long, value_name = "FILE")]
        flow_logs: Option<PathBuf>,
        /// Also write every Log-rule line to FILE, one a line after its scenario,
        /// step, probe and node: on the kernel the full line the kernel's LOG target
        /// writes (`calico-packet: IN=... OUT=... MAC=... SRC=...`), on the model its
        /// dataplane-neutral form.
        #[arg(long, value_name = "FILE")]
        log_lines: Option<PathBuf>,
        /// Capture each probe's packets (kernel dataplane): one pcap file per probe in
        /// DIR (created if missing), named
        /// `<scenario>-step<NN>-probe<NN>-<source>-to-<target>.pcap`, captured on every
        /// interface of the source's namespace (LINUX_SLL2). Probes then run one at a
        /// time.
        #[arg(long, value_name = "DIR")]
        pcap: Option<PathBuf>,
        /// Scenario files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The folder every file a scenario names must resolve inside (default:
        /// the nearest folder above the scenario holding a `.policylab-root` file,
        /// else the directory given that holds it, else the scenario's folder).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Explain, stage by stage and rule by rule, how the reference model decides
    /// one probe at one step of a scenario.
    ///
    /// The probe is written as in a scenario's `probe:` step, e.g.
    /// `'red -> 5.196.58.96:443/tcp'`, with the scenario's names and `vars`, as the
    /// cluster is after step N (`--step 0`: before the first step). Exit code 0, or
    /// 2 when the scenario or the probe is invalid. The stages, tiers and rules it
    /// walks through are described in docs/semantics.md (policylab repository).
    Explain {
        /// The scenario file.
        scenario: PathBuf,
        /// The state after this step (1-based, as the report numbers steps).
        #[arg(long, default_value_t = 0)]
        step: usize,
        /// The probe, `FROM -> TO[:PORT][/PROTO]`.
        probe: String,
        /// The folder every file a scenario names must resolve inside (default:
        /// the nearest folder above the scenario holding a `.policylab-root` file,
        /// else the directory given that holds it, else the scenario's folder).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Print the nftables policy the kernel dataplane loads: one table per node,
    /// each headed by `# node <name>`, as an `nft -f` script that atomically replaces
    /// that node's table. No root needed. Exit code 0, or 2 when the scenario is
    /// invalid or has no such step. The layout (chains, marks, sets) is described in
    /// docs/semantics.md, "The nftables rendering" (policylab repository).
    Compile {
        /// The scenario file.
        scenario: PathBuf,
        /// The state after this step (1-based; 0: before the first step). Default:
        /// the last step.
        #[arg(long)]
        step: Option<usize>,
        /// The folder every file a scenario names must resolve inside (default:
        /// the nearest folder above the scenario holding a `.policylab-root` file,
        /// else the directory given that holds it, else the scenario's folder).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Remove the network namespaces of policylab runs that died (killed, crashed)
    /// and print their names; with `--all`, also those of runs still going. Nothing
    /// else is touched. Exit code 0, or 3 without the privileges to remove them.
    Clean {
        /// Also remove the namespaces of live runs (stops them).
        #[arg(long)]
        all: bool,
    },
}

/// The dataplane that runs a scenario's probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dataplane {
    /// Linux network namespaces, nftables and real traffic, checked against the
    /// model (needs root and nft).
    Kernel,
    /// The pure-Rust reference model (no root needed).
    Model,
}

impl Dataplane {
    pub fn name(self) -> &'static str {
        match self {
            Dataplane::Kernel => "kernel",
            Dataplane::Model => "model",
        }
    }
}

/// How `run` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The readable report (what snapshot tests store).
    Text,
    /// A JSON array with one report per scenario.
    Json,
    /// JUnit XML: one test suite per scenario, one test case per probe.
    Junit,
}
