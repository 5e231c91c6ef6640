//! The command line: one enum, one variant per subcommand that fully works.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
}
