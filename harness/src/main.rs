//! `policylab`: the command-line entry point. See [`cli`] for the subcommands.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use policylab::diag::{Diagnostic, Diagnostics, Sources};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("internal error: this is a bug in policylab\n{info}");
    }));
    match std::panic::catch_unwind(move || run(cli)) {
        Ok(code) => code,
        Err(_) => ExitCode::from(70),
    }
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check { paths } => ExitCode::from(check(&paths)),
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>, diags: &mut Diagnostics) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::error_nowhere(format!(
                "{}: cannot read directory: {e}",
                dir.display()
            )));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect(&p, out, diags);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            if policylab::scenario::is_scenario_text(&text) {
                out.push(p);
            }
        }
    }
}

/// Runs `check`; returns the exit code (0 or 2).
fn check(paths: &[PathBuf]) -> u8 {
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let mut scenarios = Vec::new();
    let mut manifests = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect(p, &mut scenarios, &mut diags);
        } else {
            match std::fs::read_to_string(p) {
                Ok(t) if policylab::scenario::is_scenario_text(&t) => scenarios.push(p.clone()),
                Ok(_) => manifests.push(p.clone()),
                Err(e) => diags.push(Diagnostic::error_nowhere(format!(
                    "{}: cannot read: {e}",
                    p.display()
                ))),
            }
        }
    }
    for s in &scenarios {
        policylab::scenario::load(&mut sources, s, &mut diags);
    }
    for m in &manifests {
        if let Ok(f) = sources.read(m) {
            let text = sources.text(f).to_string();
            let (docs, errs) =
                policylab::yaml::parse_stream(&text, f, policylab::yaml::Origin::default());
            diags.extend(errs);
            policylab::manifest::load_documents(&docs, &mut diags);
        }
    }
    print!("{}", diags.render(&sources));
    let problems = diags.error_count();
    if manifests.is_empty() {
        println!("checked {} scenarios: {problems} problems", scenarios.len());
    } else {
        println!(
            "checked {} scenarios and {} manifest files: {problems} problems",
            scenarios.len(),
            manifests.len()
        );
    }
    if problems == 0 {
        0
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn good_scenarios_exit_0() {
        assert_eq!(check(&[root().join("tests/scenarios")]), 0);
    }

    #[test]
    fn bad_scenarios_exit_2() {
        assert_eq!(check(&[root().join("tests/bad_scenarios")]), 2);
    }

    #[test]
    fn help_explains_check() {
        use clap::CommandFactory;
        let help = Cli::command()
            .find_subcommand_mut("check")
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        assert!(help.contains("checked N scenarios"), "{help}");
    }
}
