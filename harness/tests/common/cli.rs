//! Running the `policylab` binary from a test: from the repository root, without
//! the test-only perturbation hook unless a test sets it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the binary runs there, so scenario paths are relative to it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The binary with `args`, not yet run.
pub fn policylab(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_policylab"));
    c.args(args).current_dir(root());
    c.env_remove(policylab_harness::runner::PERTURB_ENV);
    c
}

/// The binary run with `args` to its end.
pub fn out(args: &[&str]) -> Output {
    policylab(args).output().expect("the policylab binary runs")
}

/// Its exit code (it must have exited, not been killed).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
