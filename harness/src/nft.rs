//! This module deals with loading nftables rulesets into a lab namespace and reading
//! them back, with the `nft` binary run inside that namespace.
//!
//! The child process enters the namespace in `pre_exec` (`setns` on the namespace's fd
//! between fork and exec), so it never runs in the namespace of whichever thread spawned
//! it. A script is loaded with `nft -f -`, which nft applies as one atomic batch: when it
//! fails, nothing of it is loaded.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::netns::{NetNs, NetnsError};

/// What went wrong running nft.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("the nft binary is not installed (looked in PATH, /usr/sbin, /sbin); install the nftables package")]
    NotInstalled,
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("running nft in namespace {namespace}: {source}")]
    Spawn {
        namespace: String,
        #[source]
        source: std::io::Error,
    },
    #[error("nft rejected the ruleset in namespace {namespace} (exit status {status}):\n{stderr}")]
    Rejected {
        namespace: String,
        status: i32,
        stderr: String,
    },
}

/// The path of the `nft` binary.
pub fn nft_binary() -> Result<PathBuf, NftError> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/sbin"));
    dirs.push(PathBuf::from("/sbin"));
    dirs.into_iter()
        .map(|d| d.join("nft"))
        .find(|p| is_executable(p))
        .ok_or(NftError::NotInstalled)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A `Command` for `nft args…` that runs inside `ns`. The returned fd must outlive the
/// spawn.
fn nft_command(ns: &NetNs, args: &[&str]) -> Result<(Command, OwnedFd), NftError> {
    let nft = nft_binary()?;
    let fd = ns.open()?;
    let raw = fd.as_raw_fd();
    let mut cmd = Command::new(nft);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setns is async-signal-safe; `raw` stays open in the child until exec
    // (the parent keeps `fd` alive until the spawn returns).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(raw, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok((cmd, fd))
}

fn run(ns: &NetNs, args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
    let spawn_err = |source| NftError::Spawn {
        namespace: ns.name().to_string(),
        source,
    };
    let (mut cmd, fd) = nft_command(ns, args)?;
    let mut child = cmd.spawn().map_err(spawn_err)?;
    drop(fd);
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(text) = stdin {
            // nft reads the whole script before it answers; a failed write shows up as
            // an nft error below.
            let _ = pipe.write_all(text.as_bytes());
        }
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    finish(ns, out)
}

fn finish(ns: &NetNs, out: std::process::Output) -> Result<String, NftError> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NftError::Rejected {
            namespace: ns.name().to_string(),
            status: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        })
    }
}

/// Loads an nft script (text, as for `nft -f`) into `ns` atomically. Blocks for the
/// time nft takes (a few ms for small scripts).
pub fn apply(ns: &NetNs, script: &str) -> Result<(), NftError> {
    run(ns, &["-f", "-"], Some(script)).map(|_| ())
}

/// Loads an nft JSON document (as for `nft -j -f`, e.g.
/// `policylab::nft::Table::to_nftables_json`) into `ns` atomically.
pub fn apply_json(ns: &NetNs, json: &str) -> Result<(), NftError> {
    run(ns, &["-j", "-f", "-"], Some(json)).map(|_| ())
}

/// `nft list table inet <name>` in `ns`.
pub fn list_table(ns: &NetNs, name: &str) -> Result<String, NftError> {
    run(ns, &["list", "table", "inet", name], None)
}

/// Like [`apply`], without blocking the async caller.
pub async fn apply_async(ns: &NetNs, script: &str) -> Result<(), NftError> {
    let spawn_err = |source| NftError::Spawn {
        namespace: ns.name().to_string(),
        source,
    };
    let (cmd, fd) = nft_command(ns, &["-f", "-"])?;
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    drop(fd);
    if let Some(mut pipe) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = pipe.write_all(script.as_bytes()).await;
    }
    let out = child.wait_with_output().await.map_err(spawn_err)?;
    finish(ns, out).map(|_| ())
}

/// `nft list ruleset` in `ns`.
pub fn list_ruleset(ns: &NetNs) -> Result<String, NftError> {
    run(ns, &["list", "ruleset"], None)
}
