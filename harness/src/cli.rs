//! The command line: one enum, one variant per subcommand that fully works.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "policylab",
    version,
    about = "A lab for Calico network policy: scenarios in network namespaces, verdicts with the policy that decided."
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
    /// problem, 2 when there is at least one.
    ///
    /// A PATH may be a file or a directory. Under a directory, every `*.yaml` /
    /// `*.yml` file (recursively) with a top-level `steps:` key is a scenario; other
    /// YAML files there are not checked on their own (they are fixtures: manifests are
    /// checked as part of the scenarios that apply them). A file named directly is
    /// checked as a scenario when it has `steps:`, else as a manifest stream.
    Check {
        /// Scenario files, manifest files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run scenarios and report every probe's verdict and who decided it.
    ///
    /// A PATH may be a scenario file or a directory (every `*.yaml` / `*.yml` file
    /// with a top-level `steps:` key under it, recursively). The report goes to
    /// stdout. Exit codes: 0 every expectation held; 1 at least one did not (the
    /// report marks it); 2 invalid input (every problem listed, nothing run);
    /// 70 an internal error (a bug in policylab).
    Run {
        /// Which dataplane runs the probes.
        #[arg(long, value_enum, default_value_t = Dataplane::Model)]
        dataplane: Dataplane,
        /// Report format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also write every flow-log record (one JSON object a line) to FILE.
        #[arg(long, value_name = "FILE")]
        flow_logs: Option<PathBuf>,
        /// Scenario files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Explain, stage by stage and rule by rule, how the reference model decides
    /// one probe at one step of a scenario.
    ///
    /// The probe is written as in a scenario's `probe:` step, e.g.
    /// `'red -> 5.196.58.96:443/tcp'`, with the scenario's names and `vars`, as the
    /// cluster is after step N (`--step 0`: before the first step). Exit code 0, or
    /// 2 when the scenario or the probe is invalid.
    Explain {
        /// The scenario file.
        scenario: PathBuf,
        /// The state after this step (1-based, as the report numbers steps).
        #[arg(long, default_value_t = 0)]
        step: usize,
        /// The probe, `FROM -> TO[:PORT][/PROTO]`.
        probe: String,
    },
}

/// The dataplane that runs a scenario's probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dataplane {
    /// The pure-Rust reference model (no root needed).
    Model,
}

impl Dataplane {
    pub fn name(self) -> &'static str {
        match self {
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
