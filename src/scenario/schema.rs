//! The structural check of a scenario file against the scenario schema
//! (`src/schema/scenario.yaml`, read by [`Schemas::scenario`]), run before the typed
//! pass. Every problem is reported with its path
//! (`cluster.pods[1].ports[0].port: ...`), so several mistakes in one entry are all
//! listed in one run.
//!
//! - [`check`]: the whole file but the steps (top level, `cluster:`, `outside:` and
//!   each address of an outside host's `ip:`), before anything else. The result says
//!   which parts were rejected ([`Checked::rejected`]); the typed pass in `build` skips
//!   them, so one problem gets one message.
//! - [`check_step`]: one step against the schema of its verb (and the long form of
//!   `probe:` against `Probe`), run by `build` once the step's verb is known and its
//!   placeholders are substituted; a rejected step goes no further. A step whose verb
//!   cannot be told (none, two, unknown, not a mapping) is reported by `build`, whose
//!   messages name the verbs; a step whose placeholders cannot be substituted is
//!   reported for those only.

use crate::diag::Diagnostics;
use crate::yaml::{Node, Schema, Schemas};

/// Options of a probe step that are written beside `probe:`, not inside it.
const BESIDE_PROBE: &[&str] = &[
    "expect", "status", "clientIP", "by", "alert", "logged", "staged",
];

/// The paths where the schema found problems.
#[derive(Debug, Default)]
pub(super) struct Checked {
    paths: Vec<String>,
}

impl Checked {
    /// Whether a problem was found at `path` (`steps[3]`, `cluster.pods[0]`), inside
    /// it, or at one of its ancestors.
    pub(super) fn rejected(&self, path: &str) -> bool {
        self.paths
            .iter()
            .any(|p| within(p, path) || within(path, p))
    }

    /// Whether a problem was found at `path` itself or at one of its ancestors (a
    /// list or mapping of the wrong type), not counting problems inside it.
    pub(super) fn broken(&self, path: &str) -> bool {
        self.paths.iter().any(|p| within(path, p))
    }
}

/// `inner` is `outer` or below it (`outer.x`, `outer[0]`).
fn within(inner: &str, outer: &str) -> bool {
    match inner.strip_prefix(outer) {
        Some(rest) => outer.is_empty() || rest.is_empty() || rest.starts_with(['.', '[']),
        None => false,
    }
}

fn def(name: &str) -> &'static Schema {
    Schemas::scenario()
        .get(name)
        .unwrap_or_else(|| panic!("src/schema/scenario.yaml defines {name}"))
}

/// The schema of a step with this verb.
fn step_schema(verb: &str) -> Option<&'static Schema> {
    let name = match verb {
        "apply" => "ApplyStep",
        "create" => "CreateStep",
        "delete" => "DeleteStep",
        "patch" => "PatchStep",
        "probe" => "ProbeStep",
        "matrix" => "MatrixStep",
        "serve" => "ServeStep",
        "advance" => "AdvanceStep",
        "fail" => "FailStep",
        "recover" => "RecoverStep",
        _ => return None,
    };
    Some(def(name))
}

/// Checks a scenario's root mapping (all but the steps, see [`check_step`]); reports
/// every structural problem.
pub(super) fn check(root: &Node, diags: &mut Diagnostics) -> Checked {
    let mut found = def("Scenario").validate_at(root, "");
    if let Some(hosts) = root.get("outside").and_then(Node::as_seq) {
        for (i, h) in hosts.iter().enumerate() {
            let Some(ip) = h.as_map().and_then(|_| h.get("ip")) else {
                continue;
            };
            match ip.as_seq() {
                Some(list) => {
                    for (j, a) in list.iter().enumerate() {
                        found.extend(
                            def("Address").validate_at(a, &format!("outside[{i}].ip[{j}]")),
                        );
                    }
                }
                None if ip.is_null() => {}
                None => found.extend(def("Address").validate_at(ip, &format!("outside[{i}].ip"))),
            }
        }
    }
    let mut checked = Checked::default();
    for (path, d) in found {
        checked.paths.push(path);
        diags.push(d);
    }
    checked
}

/// Checks step `index` (a mapping with exactly the one verb `verb`) against the
/// schema of its verb, and the long form of `probe:`. Run on the step after its
/// placeholders are substituted (`port: ${PORT}` is an integer only then). Reports
/// every problem; `false` when there was any.
pub(super) fn check_step(step: &Node, index: usize, verb: &str, diags: &mut Diagnostics) -> bool {
    let Some(schema) = step_schema(verb) else {
        return true;
    };
    let path = format!("steps[{index}]");
    let mut found = schema.validate_at(step, &path);
    if verb == "probe" {
        if let Some(p) = step.get("probe").filter(|p| p.as_map().is_some()) {
            let inner = format!("{path}.probe");
            for (at, mut d) in def("Probe").validate_at(p, &inner) {
                let key = at.strip_prefix(&inner).and_then(|k| k.strip_prefix('.'));
                if let Some(k) = key.filter(|k| BESIDE_PROBE.contains(k)) {
                    if d.message.starts_with("unknown field") {
                        d.message
                            .push_str(&format!("; `{k}` goes beside `probe:`, not inside it"));
                    }
                }
                found.push((at, d));
            }
        }
    }
    let ok = found.is_empty();
    diags.extend(found.into_iter().map(|(_, d)| d));
    ok
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn within_respects_path_boundaries() {
        assert!(within("steps[1]", "steps[1]"));
        assert!(within("steps[1].probe.port", "steps[1]"));
        assert!(within("cluster.pods[0]", "cluster"));
        assert!(within("anything", ""));
        assert!(!within("steps[10]", "steps[1]"));
        assert!(!within("clusterX", "cluster"));
        assert!(!within("steps", "steps[1]"));
    }
}
