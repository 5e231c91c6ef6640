//! `policylab`: the command-line entry point. See [`cli`] for the subcommands.

mod cli;
mod kernel;
mod stdout;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use policylab::diag::{Diagnostic, Diagnostics, Sources};

use cli::{Cli, Command, Dataplane, Format};
use policylab::report::{Report, RunError, TimedReport};
use policylab::run::{Observation, Plan};
use policylab_harness::exit::Exit;
use stdout::{out, outln};

fn main() -> ExitCode {
    let cli = Cli::parse();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("internal error: this is a bug in policylab\n{info}");
    }));
    let code = match std::panic::catch_unwind(move || run(cli)) {
        Ok(code) => code,
        Err(_) => Exit::Internal,
    };
    stdout::finish(code)
}

fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Check { paths, root } => check(&paths, root.as_deref()),
        Command::Run {
            dataplane,
            format,
            flow_logs,
            log_lines,
            pcap,
            paths,
            root,
        } => run_scenarios(
            &paths,
            root.as_deref(),
            dataplane,
            format,
            Outputs {
                flow_logs: flow_logs.as_deref(),
                log_lines: log_lines.as_deref(),
                pcap: pcap.as_deref(),
            },
        ),
        Command::Explain {
            scenario,
            step,
            probe,
            root,
        } => explain(&scenario, root.as_deref(), step, &probe),
        Command::Compile {
            scenario,
            step,
            root,
        } => kernel::compile(&scenario, root.as_deref(), step),
        Command::Clean { all } => kernel::clean(all),
    }
}

/// `check` and `run` on paths holding no scenario (exit 2).
const NOTHING_TO_CHECK: &str =
    "nothing to check: no scenario found (a scenario is a YAML file with a top-level `steps:` key)";

/// Files `run` writes besides the report.
struct Outputs<'a> {
    flow_logs: Option<&'a Path>,
    log_lines: Option<&'a Path>,
    pcap: Option<&'a Path>,
}

/// Runs a plan's probes on a dataplane: one observation and one time per probe,
/// in [`Plan::probes`] order (the model's times are 0: it predicted every probe
/// while planning). The kernel prints every disagreement with the model on
/// stderr (`disagreed` is then set); an `Err` is why the run stops, after its
/// message.
fn observe(
    dataplane: Dataplane,
    plan: &Plan,
    kernel: Option<&kernel::Kernel>,
    disagreed: &mut bool,
    log_lines: &mut String,
) -> Result<(Vec<Observation>, Vec<Duration>), kernel::Stop> {
    match (dataplane, kernel) {
        (Dataplane::Model, _) => {
            let obs = plan.model_observations();
            for ((s, _, pp), o) in plan.probes().zip(&obs) {
                for l in &o.log_lines {
                    log_lines.push_str(&format!(
                        "{} step {} {} -> {}: {l}\n",
                        plan.name, plan.steps[s].number, pp.source, pp.target
                    ));
                }
            }
            let times = vec![Duration::ZERO; obs.len()];
            Ok((obs, times))
        }
        (Dataplane::Kernel, Some(k)) => k.observe(plan, disagreed, log_lines),
        (Dataplane::Kernel, None) => Err(kernel::Stop {
            exit: Exit::Machine,
            message: "the kernel dataplane is not started".into(),
        }),
    }
}

/// A scenario file found on the command line, with the directory named there
/// that holds it (for its default root).
struct Found {
    path: PathBuf,
    given_dir: Option<PathBuf>,
}

impl Found {
    /// Loads it, confined to `--root` or its default root.
    fn load(
        &self,
        root: Option<&Path>,
        sources: &mut Sources,
        diags: &mut Diagnostics,
    ) -> Option<policylab::scenario::Scenario> {
        let root = root.map_or_else(
            || policylab::scenario::paths::default_root(&self.path, self.given_dir.as_deref()),
            Path::to_path_buf,
        );
        policylab::scenario::load_in(sources, &self.path, &root, diags)
    }
}

/// Loads the scenario at `path` (named directly) with `--root` or its default
/// root.
fn load_one(
    path: &Path,
    root: Option<&Path>,
    sources: &mut Sources,
    diags: &mut Diagnostics,
) -> Option<policylab::scenario::Scenario> {
    Found {
        path: path.to_path_buf(),
        given_dir: None,
    }
    .load(root, sources, diags)
}

/// The machine's host name for JUnit (`localhost` when it has none).
fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// When each scenario started, how long it took, and its probes' times.
type Timing = (SystemTime, Duration, Vec<Duration>);

/// The reports with their timings, for JUnit.
fn timed<'a>(reports: &'a [Report], timings: &[Timing]) -> Vec<TimedReport<'a>> {
    reports
        .iter()
        .zip(timings)
        .map(|(report, (started, elapsed, probes))| TimedReport {
            report,
            started: *started,
            elapsed: *elapsed,
            probe_times: probes.clone(),
        })
        .collect()
}

/// Prints the JUnit document of the reports so far and of why the run stopped.
fn print_junit(reports: &[TimedReport<'_>], stop: Option<(Exit, &str, String)>, at: SystemTime) {
    let errors: Vec<RunError> = stop
        .into_iter()
        .map(|(exit, name, message)| RunError {
            name: name.to_string(),
            kind: match exit {
                Exit::Invalid => "invalid-input",
                Exit::Machine => "machine",
                Exit::Disagreement => "disagreement",
                Exit::Io => "io",
                _ => "internal",
            }
            .to_string(),
            exit: exit.code(),
            message,
            at,
        })
        .collect();
    outln!(
        "{}",
        Report::junit(reports, &errors, &hostname()).trim_end()
    );
}

/// The scenario files named by `paths` (directories searched like `check`).
fn scenario_files(paths: &[PathBuf], diags: &mut Diagnostics) -> Vec<Found> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect(p, &mut out, diags);
        } else {
            match policylab::diag::read_regular_file(p) {
                Ok(t) if policylab::scenario::is_scenario_text(&t) => out.push(Found {
                    path: p.clone(),
                    given_dir: None,
                }),
                Ok(_) => diags.push(Diagnostic::error_nowhere(format!(
                    "{}: not a scenario (no top-level `steps:`); `policylab check` checks manifests",
                    p.display()
                ))),
                Err(e) => diags.push(Diagnostic::error_nowhere(format!(
                    "{}: cannot read: {e}",
                    p.display()
                ))),
            }
        }
    }
    out
}

/// Runs `run`; returns the exit code. With `--format junit`, a run that stops
/// (exit 2, 3, ...) still prints a JUnit document, with an error test case
/// saying why.
fn run_scenarios(
    paths: &[PathBuf],
    root: Option<&Path>,
    dataplane: Dataplane,
    format: Format,
    outputs: Outputs<'_>,
) -> Exit {
    let run_started = SystemTime::now();
    let junit = format == Format::Junit;
    // Ends the run before any report: the message on stderr, and in JUnit.
    let stop = |exit: Exit, message: String| {
        eprintln!("{message}");
        if junit {
            print_junit(&[], Some((exit, "run", message)), run_started);
        }
        exit
    };
    let flow_logs = outputs.flow_logs;
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let files = scenario_files(paths, &mut diags);
    let scenarios: Vec<_> = files
        .iter()
        .filter_map(|f| f.load(root, &mut sources, &mut diags))
        .collect();
    if files.is_empty() && !diags.has_errors() {
        diags.push(Diagnostic::error_nowhere(NOTHING_TO_CHECK));
    }
    policylab::scenario::check_unique_names(&scenarios, &sources, &mut diags);
    if diags.has_errors() {
        return stop(
            Exit::Invalid,
            format!(
                "{}{} problems: nothing was run",
                diags.render(&sources),
                diags.error_count()
            ),
        );
    }
    if !diags.is_empty() {
        eprint!("{}", diags.render(&sources));
    }
    if let Some(dir) = outputs.pcap {
        if dataplane == Dataplane::Model {
            return stop(
                Exit::Invalid,
                "--pcap captures the kernel's packets: it needs `--dataplane kernel`".into(),
            );
        }
        if let Err(e) = std::fs::create_dir_all(dir) {
            return stop(
                Exit::Invalid,
                format!("{}: cannot create the pcap directory: {e}", dir.display()),
            );
        }
    }
    let kernel = match dataplane {
        Dataplane::Kernel => match kernel::Kernel::start(outputs.pcap) {
            Ok(k) => Some(k),
            Err(s) => {
                if junit {
                    print_junit(&[], Some((s.exit, "run", s.message)), run_started);
                }
                return s.exit;
            }
        },
        Dataplane::Model => None,
    };
    let mut log_text = String::new();
    let mut disagreed = false;
    let mut reports = Vec::new();
    let mut timings: Vec<Timing> = Vec::new();
    for sc in &scenarios {
        let started = SystemTime::now();
        let clock = Instant::now();
        let plan = policylab::run::plan(sc, &sources);
        // Warnings of resolve (a policy naming a missing tier), once each.
        let mut warnings = Diagnostics::new();
        for st in plan.steps.iter().filter(|s| s.world_changed) {
            warnings.extend(st.world.diagnostics.iter().cloned());
        }
        if !warnings.is_empty() {
            eprint!("{}", warnings.render(&sources));
        }
        let (obs, times) = match observe(
            dataplane,
            &plan,
            kernel.as_ref(),
            &mut disagreed,
            &mut log_text,
        ) {
            Ok(o) => o,
            Err(s) => {
                if junit {
                    let name = format!("scenario {}", plan.name);
                    print_junit(
                        &timed(&reports, &timings),
                        Some((s.exit, &name, s.message)),
                        started,
                    );
                }
                return s.exit;
            }
        };
        reports.push(Report::new(&plan, &obs, dataplane.name()));
        timings.push((started, clock.elapsed(), times));
    }
    match format {
        Format::Text => {
            let texts: Vec<String> = reports.iter().map(Report::text).collect();
            out!("{}", texts.join("\n"));
        }
        Format::Json => {
            let json = serde_json::to_string_pretty(&reports)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            outln!("{json}");
        }
        Format::Junit => {
            // A disagreement outside any probe (a feed's entries) is an error too.
            let probe_disagreed = reports.iter().any(|r| r.summary.disagreements > 0);
            let stop = (disagreed && !probe_disagreed).then(|| {
                (
                    Exit::Disagreement,
                    "kernel",
                    "the kernel dataplane and the reference model disagree (see stderr): this is a bug in policylab".to_string(),
                )
            });
            print_junit(&timed(&reports, &timings), stop, run_started);
        }
    }
    if let Some(file) = flow_logs {
        let mut text = String::new();
        for r in &reports {
            for f in &r.flow_logs {
                let mut v = serde_json::to_value(f).unwrap_or_default();
                if let Some(m) = v.as_object_mut() {
                    m.insert("scenario".into(), r.scenario.clone().into());
                }
                text.push_str(&v.to_string());
                text.push('\n');
            }
        }
        if let Err(e) = std::fs::write(file, text) {
            eprintln!("{}: cannot write flow logs: {e}", file.display());
            return Exit::Io;
        }
    }
    if let Some(file) = outputs.log_lines {
        if let Err(e) = std::fs::write(file, &log_text) {
            eprintln!("{}: cannot write Log lines: {e}", file.display());
            return Exit::Io;
        }
    }
    if disagreed {
        return Exit::Disagreement;
    }
    match reports.iter().map(Report::exit_code).max().unwrap_or(0) {
        0 => Exit::Ok,
        _ => Exit::Failed,
    }
}

/// Runs `explain`; returns the exit code (0 or 2).
fn explain(scenario: &Path, root: Option<&Path>, step: usize, probe_text: &str) -> Exit {
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let Some(sc) = load_one(scenario, root, &mut sources, &mut diags) else {
        eprint!("{}", diags.render(&sources));
        return Exit::Invalid;
    };
    let Some(probe) = policylab::scenario::parse_probe_at(
        &sc,
        step,
        &mut sources,
        "<probe>",
        probe_text,
        &mut diags,
    ) else {
        eprint!("{}", diags.render(&sources));
        return Exit::Invalid;
    };
    let plan = policylab::run::plan(&sc, &sources);
    let text = match step.checked_sub(1).and_then(|i| plan.steps.get(i)) {
        Some(st) => policylab::run::explain_probe(
            &st.world,
            &st.inventory,
            &st.failed_hosts,
            &st.feeds,
            &probe,
        ),
        None => {
            let inv = sc.inventory0.clone();
            let world = policylab::resolve::resolve(&inv);
            policylab::run::explain_probe(&world, &inv, &Default::default(), &[], &probe)
        }
    };
    let when = match step {
        0 => "before the first step".to_string(),
        n => format!("after step {n}"),
    };
    outln!("Scenario {}, {when}: {probe_text}", sc.name);
    out!("{text}");
    Exit::Ok
}

/// Every scenario under `dir`, in path order. Symbolic links are followed, but
/// one leading back to a folder being walked is not (walkdir detects the loop):
/// the walk always ends. Only regular files are read.
fn collect(dir: &Path, out: &mut Vec<Found>, diags: &mut Diagnostics) {
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walk {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.loop_ancestor().is_some() => {
                let at = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                diags.push(Diagnostic::warning_nowhere(format!(
                    "{at}: not searched: this symbolic link leads back to {}",
                    e.loop_ancestor()
                        .map(|a| a.display().to_string())
                        .unwrap_or_default()
                )));
                continue;
            }
            Err(e) => {
                let at = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                diags.push(Diagnostic::error_nowhere(format!(
                    "{at}: cannot read: {}",
                    e.io_error()
                        .map_or_else(|| e.to_string(), ToString::to_string)
                )));
                continue;
            }
        };
        let p = entry.path();
        if !entry.file_type().is_file()
            || !matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        {
            continue;
        }
        match policylab::diag::read_regular_file(p) {
            Ok(text) if policylab::scenario::is_scenario_text(&text) => out.push(Found {
                path: p.to_path_buf(),
                given_dir: Some(dir.to_path_buf()),
            }),
            Ok(_) => {}
            Err(e) => diags.push(Diagnostic::error_nowhere(format!(
                "{}: cannot read: {e}",
                p.display()
            ))),
        }
    }
}

/// Runs `check`; returns the exit code (0 or 2).
fn check(paths: &[PathBuf], root: Option<&Path>) -> Exit {
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let mut scenarios = Vec::new();
    let mut manifests = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect(p, &mut scenarios, &mut diags);
        } else {
            match policylab::diag::read_regular_file(p) {
                Ok(t) if policylab::scenario::is_scenario_text(&t) => scenarios.push(Found {
                    path: p.clone(),
                    given_dir: None,
                }),
                Ok(_) => manifests.push(p.clone()),
                Err(e) => diags.push(Diagnostic::error_nowhere(format!(
                    "{}: cannot read: {e}",
                    p.display()
                ))),
            }
        }
    }
    if scenarios.is_empty() && manifests.is_empty() && !diags.has_errors() {
        diags.push(Diagnostic::error_nowhere(NOTHING_TO_CHECK));
    }
    let loaded: Vec<_> = scenarios
        .iter()
        .filter_map(|s| s.load(root, &mut sources, &mut diags))
        .collect();
    policylab::scenario::check_unique_names(&loaded, &sources, &mut diags);
    for m in &manifests {
        if let Ok(f) = sources.read(m) {
            let text = sources.text(f).to_string();
            let (docs, errs) =
                policylab::yaml::parse_stream(&text, f, policylab::yaml::Origin::default());
            diags.extend(errs);
            policylab::manifest::load_documents(&docs, &mut diags);
        }
    }
    out!("{}", diags.render(&sources));
    let problems = diags.error_count();
    if manifests.is_empty() {
        outln!("checked {} scenarios: {problems} problems", scenarios.len());
    } else {
        outln!(
            "checked {} scenarios and {} manifest files: {problems} problems",
            scenarios.len(),
            manifests.len()
        );
    }
    if problems == 0 {
        Exit::Ok
    } else {
        Exit::Invalid
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
        assert_eq!(check(&[root().join("tests/scenarios")], None), Exit::Ok);
    }

    #[test]
    fn bad_scenarios_exit_2() {
        assert_eq!(
            check(&[root().join("tests/bad_scenarios")], None),
            Exit::Invalid
        );
    }

    /// `--help` and the subcommands' long help point to the docs, and the pages
    /// they name exist.
    #[test]
    fn help_points_to_the_docs() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let top = cmd.render_help().to_string();
        for page in [
            "docs/scenario-format.md",
            "docs/semantics.md",
            "docs/cookbook.md",
            "docs/decisions.md",
        ] {
            assert!(top.contains(page), "{page} missing from --help:\n{top}");
            assert!(root().join(page).is_file(), "{page} does not exist");
        }
        for (sub, page) in [
            ("check", "docs/scenario-format.md"),
            ("run", "docs/scenario-format.md"),
            ("run", "docs/semantics.md"),
            ("explain", "docs/semantics.md"),
            ("compile", "docs/semantics.md"),
        ] {
            let help = cmd
                .find_subcommand_mut(sub)
                .map(|c| c.render_long_help().to_string())
                .unwrap_or_default();
            assert!(help.contains(page), "{sub} --help lacks {page}:\n{help}");
        }
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
