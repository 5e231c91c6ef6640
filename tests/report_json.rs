//! The JSON report format (docs/report-json.md): versioned, its JSON Schema
//! generated from the types and checked in (docs/report.schema.json), real run
//! output valid against it, deciders as fields.

use std::path::{Path, PathBuf};

use policylab::diag::{Diagnostics, Sources};
use policylab::report::{json_schema, Report, FORMAT_VERSION};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

const SCHEMA: &str = "docs/report.schema.json";

/// The checked-in schema is the generated one. To regenerate:
/// `UPDATE_REPORT_SCHEMA=1 cargo test -p policylab --test integration report_json`.
#[test]
fn the_checked_in_schema_is_the_generated_one() {
    let generated = json_schema();
    let path = root().join(SCHEMA);
    if std::env::var("UPDATE_REPORT_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write the schema");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{SCHEMA} differs from the schema the report types generate: regenerate it with UPDATE_REPORT_SCHEMA=1 cargo test -p policylab --test integration report_json, and raise FORMAT_VERSION if a field was removed or changed meaning"
    );
}

fn scenario_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            scenario_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml")
            && policylab::scenario::is_scenario_text(&std::fs::read_to_string(&p).unwrap())
        {
            out.push(p);
        }
    }
}

/// Every shipped and test scenario's report (and one with every kind of failed
/// expectation) is valid against the checked-in schema.
#[test]
fn every_report_is_valid_against_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(SCHEMA)).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let mut files = Vec::new();
    for d in ["scenarios", "tests/scenarios", "tests/run_mismatch"] {
        scenario_files(&root().join(d), &mut files);
    }
    assert!(files.len() > 10, "{files:?}");
    let mut checked = 0;
    for f in &files {
        let mut sources = Sources::new();
        let mut diags = Diagnostics::new();
        let Some(sc) = policylab::scenario::load(&mut sources, f, &mut diags) else {
            continue; // a scenario meant to be invalid
        };
        let plan = policylab::run::plan(&sc, &sources);
        let r = Report::new(&plan, &plan.model_observations(), "model");
        let json = r.json();
        assert!(!json.contains('\n'), "one line: {}", f.display());
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&v)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
        assert_eq!(v["format_version"], FORMAT_VERSION);
        checked += 1;
    }
    assert!(checked > 10);
    // The schema is not vacuous: a report missing its steps is refused.
    let mut bad: serde_json::Value = serde_json::from_str(&{
        let mut sources = Sources::new();
        let mut diags = Diagnostics::new();
        let sc = policylab::scenario::load(
            &mut sources,
            &root().join("tests/run_mismatch/mismatch.yaml"),
            &mut diags,
        )
        .unwrap();
        let plan = policylab::run::plan(&sc, &sources);
        Report::new(&plan, &plan.model_observations(), "model").json()
    })
    .unwrap();
    bad.as_object_mut().unwrap().remove("steps");
    assert!(!validator.is_valid(&bad));
}

/// A decider is an object: type, tier, kind, namespace, name, rule, action and
/// the report's text.
#[test]
fn deciders_are_structured() {
    let mut sources = Sources::new();
    let mut diags = Diagnostics::new();
    let sc = policylab::scenario::load(
        &mut sources,
        &root().join("tests/run_mismatch/mismatch.yaml"),
        &mut diags,
    )
    .unwrap();
    let plan = policylab::run::plan(&sc, &sources);
    let r = Report::new(&plan, &plan.model_observations(), "model");
    let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    let probe = &v["steps"][2]["probes"][0];
    assert_eq!(
        probe["decider"],
        serde_json::json!({
            "type": "rule",
            "tier": "default",
            "kind": "GlobalNetworkPolicy",
            "name": "deny-laptop",
            "rule": 1,
            "action": "deny",
            "text": "tier default, gnp:deny-laptop rule 1 (deny)"
        }),
        "{probe}"
    );
    assert_eq!(probe["decided_by"], probe["decider"]["text"]);
    assert_eq!(probe["observed"]["decider"], probe["decider"]);
    let allowed = &v["steps"][1]["probes"][0]["allowing"][0];
    assert_eq!(allowed["type"], "profile");
    assert_eq!(allowed["kind"], "Profile");
    assert_eq!(allowed["name"], "kns.default");
    assert_eq!(allowed["rule"], 0);
    assert!(allowed.get("tier").is_none(), "{allowed}");
}
