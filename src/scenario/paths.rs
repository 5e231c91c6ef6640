//! This module deals with which files a scenario may name: every path a scenario
//! names (`apply`/`create`/`patch` files, outside hosts' `files:`, `serve` files)
//! resolves inside the scenario's **root** folder. Absolute paths are refused;
//! `..` and symbolic links may move around inside the root but not leave it.
//!
//! The root is, first that applies: the folder given with `--root`; the nearest
//! folder, from the scenario's own folder upwards, holding a file named
//! [`ROOT_MARKER`] (the repository has one at its top, so `scenarios/*.yaml` may
//! name `../fixtures/...`); the directory given to `run`/`check` that holds the
//! scenario; the scenario file's folder.

use std::path::{Component, Path, PathBuf};

/// The file that makes a folder the default root of the scenarios under it.
pub const ROOT_MARKER: &str = ".policylab-root";

/// The folder of a scenario file (`.` for a bare file name).
pub fn scenario_dir(scenario: &Path) -> PathBuf {
    match scenario.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The default root of the scenario at `scenario` (see the module's rule):
/// `given_dir` is the directory named on the command line that holds it.
pub fn default_root(scenario: &Path, given_dir: Option<&Path>) -> PathBuf {
    let dir = scenario_dir(scenario);
    if let Ok(start) = dir.canonicalize() {
        if let Some(marked) = start.ancestors().find(|d| d.join(ROOT_MARKER).is_file()) {
            return marked.to_path_buf();
        }
    }
    given_dir.map_or(dir, Path::to_path_buf)
}

/// Why a named path is refused.
pub(crate) enum Refused {
    Absolute,
    /// Leaves the root, lexically (`..`) or through a symbolic link.
    Outside {
        resolved: PathBuf,
        by_link: bool,
    },
    Unreadable(std::io::Error),
}

/// The real path of `named` (relative to `dir`), when it stays inside `root`
/// (canonical).
pub(crate) fn confine(root: &Path, dir: &Path, named: &str) -> Result<PathBuf, Refused> {
    if Path::new(named).is_absolute() {
        return Err(Refused::Absolute);
    }
    let joined = dir.join(named);
    let real = joined.canonicalize().map_err(Refused::Unreadable)?;
    if real.starts_with(root) {
        return Ok(real);
    }
    // Lexically inside (after `..`) but really outside: a symbolic link left.
    let lexical = dir
        .canonicalize()
        .map(|d| normalize(&d.join(named)))
        .unwrap_or_default();
    Err(Refused::Outside {
        by_link: lexical.starts_with(root),
        resolved: real,
    })
}

/// `path` with `.` and `..` applied, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The message for a refused path.
pub(crate) fn refusal(named: &str, root: &Path, why: &Refused, what: &str) -> String {
    let root_d = crate::diag::display_path(root);
    match why {
        Refused::Absolute => format!(
            "{what} `{named}` is an absolute path: a scenario names files relative to its folder, inside its root {root_d} (`--root DIR` widens the root)"
        ),
        Refused::Outside { resolved, by_link } => format!(
            "{what} `{named}` resolves{} to {}, outside the scenario's root {root_d}: a scenario reads only files inside its root (`--root DIR` widens it)",
            if *by_link { " through a symbolic link" } else { "" },
            crate::diag::display_path(resolved),
        ),
        Refused::Unreadable(e) => format!("cannot read {what} `{named}`: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_applies_parent_dirs() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(normalize(Path::new("/a/../../..")), PathBuf::from("/"));
    }

    #[test]
    fn the_repository_is_the_root_of_its_scenarios() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = default_root(&repo.join("scenarios/000-network-sets.yaml"), None);
        assert_eq!(root, repo.canonicalize().unwrap());
    }

    #[test]
    fn without_a_marker_the_given_directory_or_the_folder_is_the_root() {
        let tmp = std::env::temp_dir().join(format!("policylab-root-{}", std::process::id()));
        let sub = tmp.join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let sc = sub.join("s.yaml");
        assert_eq!(default_root(&sc, None), sub);
        assert_eq!(default_root(&sc, Some(&tmp)), tmp);
        std::fs::write(tmp.join("a").join(ROOT_MARKER), "").unwrap();
        assert_eq!(
            default_root(&sc, Some(&tmp)),
            tmp.join("a").canonicalize().unwrap()
        );
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
