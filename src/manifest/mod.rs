//! This module deals with Calico and Kubernetes manifests: from YAML documents to
//! typed [`Resource`]s, with every problem reported at its position.
//!
//! - [`types`]: serde mirrors of the API objects (raw, spanned).
//! - [`values`]: ports, protocols, CIDRs, durations: parsed once, with Calico's messages.
//! - [`names`]: the name and label formats of the Kubernetes and Calico APIs.
//! - [`validate`]: Calico's and Kubernetes' validation rules on the typed resources.
//!
//! Pipeline per document: `apiVersion`/`kind` → schema check → typed value → Calico's
//! own validation. A document with any error yields no resource; every document is
//! checked, so one run lists every problem.

pub mod names;
pub mod types;
pub mod validate;
pub mod values;

pub use types::{Body, Kind, Resource, ResourceKey};

use serde::Deserialize;

use crate::diag::{Diagnostic, Diagnostics, FileId, Sources};
use crate::yaml::{from_node, parse_stream, Document, Node, Origin, Schemas};

#[derive(Deserialize)]
struct Envelope<S> {
    #[serde(default)]
    metadata: types::ObjectMeta,
    #[serde(default = "Option::default")]
    spec: Option<S>,
}

/// Reads one document as a resource. Reports problems and returns `None` when the
/// document is not a valid resource. Without the file text, positions inside
/// multi-line strings are approximate; see [`load_document_in`].
pub fn load_document(doc: &Document, diags: &mut Diagnostics) -> Option<Resource> {
    load_document_in(doc, None, diags)
}

/// [`load_document`] with the text of the file the document's spans point into (for
/// an inline manifest, the scenario file), so that errors inside strings (a selector's
/// bad character) are placed exactly whatever the YAML style.
///
/// Steps: kind detection; the kind's schema (every problem of the document is listed;
/// if there is any, the document stops here); typed deserialization; Calico's and
/// Kubernetes' own rules ([`validate`]).
pub fn load_document_in(
    doc: &Document,
    text: Option<&str>,
    diags: &mut Diagnostics,
) -> Option<Resource> {
    let root = &doc.root;
    if root.as_map().is_none() {
        diags.error(
            root.span,
            format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                root.describe()
            ),
        );
        return None;
    }
    let kind = match detect_kind(root) {
        Ok(k) => k,
        Err(d) => {
            diags.push(d);
            return None;
        }
    };
    if let Some(d) = api_mixup(kind, root) {
        diags.push(d);
        return None;
    }
    let before = diags.error_count();
    if let Some(schema) = Schemas::for_kind(kind.api_version(), kind.name()) {
        schema.validate(root, diags);
        if diags.error_count() > before {
            return None;
        }
    }
    let resource = typed(kind, root).map_err(|d| diags.push(d)).ok()?;
    let ctx = validate::Context::new(root, text);
    validate::validate(&resource, &ctx, diags);
    (diags.error_count() == before).then_some(resource)
}

/// Reads every document; returns the resources of the documents without errors.
pub fn load_documents(docs: &[Document], diags: &mut Diagnostics) -> Vec<Resource> {
    docs.iter()
        .filter_map(|d| load_document(d, diags))
        .collect()
}

/// [`load_documents`] with the file texts at hand (see [`load_document_in`]).
pub fn load_documents_in(
    docs: &[Document],
    sources: &Sources,
    diags: &mut Diagnostics,
) -> Vec<Resource> {
    docs.iter()
        .filter_map(|d| {
            let file = d.span.file;
            let text = ((file.0 as usize) < sources.len()).then(|| sources.text(file));
            load_document_in(d, text, diags)
        })
        .collect()
}

/// Parses a manifest stream (a whole file) and loads every document: YAML syntax
/// errors, schema errors and validation errors all end up in `diags`, and the valid
/// documents come back as resources.
pub fn check_stream(text: &str, file: FileId, diags: &mut Diagnostics) -> Vec<Resource> {
    let (docs, errors) = parse_stream(text, file, Origin::default());
    diags.extend(errors);
    docs.iter()
        .filter_map(|d| load_document_in(d, Some(text), diags))
        .collect()
}

/// A Kubernetes NetworkPolicy written with the Calico apiVersion, or the other way
/// round: both kinds are called NetworkPolicy, and the schema would only list every
/// field of one as unknown to the other. Say which apiVersion was meant instead.
fn api_mixup(kind: Kind, root: &Node) -> Option<Diagnostic> {
    let spec = root.get("spec")?;
    let (api, _) = root.entry("apiVersion")?;
    let api = root.get("apiVersion").map(|v| v.span).unwrap_or(api.span);
    let (field, meant) = match kind {
        Kind::NetworkPolicy | Kind::StagedNetworkPolicy => {
            let f = ["podSelector", "policyTypes"]
                .into_iter()
                .find(|f| spec.get(f).is_some())?;
            (
                f,
                "a Kubernetes NetworkPolicy: use apiVersion networking.k8s.io/v1",
            )
        }
        Kind::K8sNetworkPolicy => {
            let f = ["selector", "types", "tier", "order"]
                .into_iter()
                .find(|f| spec.get(f).is_some())?;
            (
                f,
                "a Calico NetworkPolicy: use apiVersion projectcalico.org/v3",
            )
        }
        _ => return None,
    };
    Some(Diagnostic::error(
        api,
        format!("this NetworkPolicy has spec.{field}, so it is {meant}"),
    ))
}

fn detect_kind(root: &Node) -> Result<Kind, Diagnostic> {
    let api = root.entry("apiVersion");
    let kind = root.entry("kind");
    let (Some((_, api)), Some((_, kind))) = (api, kind) else {
        let missing = if api.is_none() { "apiVersion" } else { "kind" };
        return Err(Diagnostic::error(
            root.span,
            format!("missing `{missing}`: every manifest needs apiVersion and kind"),
        ));
    };
    let (Some(a), Some(k)) = (api.as_str(), kind.as_str()) else {
        return Err(Diagnostic::error(
            kind.span,
            "apiVersion and kind must be strings",
        ));
    };
    if let Some(found) = Kind::from_api(a, k) {
        return Ok(found);
    }
    let list = || {
        Kind::ALL
            .iter()
            .map(|(a, n, _)| format!("{a} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Kinds are short identifiers: a long one is quoted in part and not compared
    // with the known names (the edit distance costs its length times theirs).
    if k.chars().count() > 64 {
        let head: String = k.chars().take(64).collect();
        return Err(Diagnostic::error(
            kind.span,
            format!(
                "unknown kind {head:?}... ({} characters); policylab reads: {}",
                k.chars().count(),
                list()
            ),
        ));
    }
    let known_kind = Kind::ALL
        .iter()
        .filter(|(_, n, _)| *n == k)
        .map(|(a, _, _)| *a)
        .collect::<Vec<_>>();
    if !known_kind.is_empty() {
        return Err(Diagnostic::error(
            api.span,
            format!(
                "kind {k} is not served by apiVersion {a:?} (expected {})",
                known_kind.join(" or ")
            ),
        ));
    }
    if let Some(close) = closest_kind(k) {
        return Err(Diagnostic::error(
            kind.span,
            format!("unknown kind {k:?}; did you mean {close:?}?"),
        ));
    }
    Err(Diagnostic::error(
        kind.span,
        format!(
            "unknown kind {k:?} (apiVersion {a}); policylab reads: {}",
            list()
        ),
    ))
}

/// The known kind a misspelt one most likely means: same letters ignoring case, a
/// plural, or within a small edit distance.
fn closest_kind(k: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    let lower = k.to_ascii_lowercase();
    let singular = lower
        .strip_suffix("ies")
        .map(|s| format!("{s}y"))
        .or_else(|| lower.strip_suffix('s').map(str::to_string))
        .unwrap_or_else(|| lower.clone());
    Kind::ALL
        .iter()
        .map(|(_, n, _)| *n)
        .filter_map(|n| {
            let ln = n.to_ascii_lowercase();
            let d = distance(&lower, &ln).min(distance(&singular, &ln));
            (d <= 2 || (d <= 3 && ln.len() >= 12)).then_some((d, n))
        })
        .min()
        .map(|(_, n)| n)
}

fn typed(kind: Kind, root: &Node) -> Result<Resource, Diagnostic> {
    fn env<'a, S: Deserialize<'a> + Default>(
        root: &'a Node,
    ) -> Result<(types::ObjectMeta, S), Diagnostic> {
        let e: Envelope<S> = from_node(root)?;
        Ok((e.metadata, e.spec.unwrap_or_default()))
    }
    let (metadata, body) = match kind {
        Kind::NetworkPolicy
        | Kind::GlobalNetworkPolicy
        | Kind::StagedNetworkPolicy
        | Kind::StagedGlobalNetworkPolicy => {
            let (m, s) = env(root)?;
            (m, Body::Policy(s))
        }
        Kind::Tier => {
            let (m, s) = env(root)?;
            (m, Body::Tier(s))
        }
        Kind::NetworkSet | Kind::GlobalNetworkSet => {
            let (m, s) = env(root)?;
            (m, Body::NetworkSet(s))
        }
        Kind::HostEndpoint => {
            let (m, s) = env(root)?;
            (m, Body::HostEndpoint(s))
        }
        Kind::GlobalThreatFeed => {
            let (m, s) = env(root)?;
            (m, Body::ThreatFeed(s))
        }
        Kind::FelixConfiguration => {
            let (m, mut s): (_, types::FelixConfigurationSpec) = env(root)?;
            if let Some(map) = root.get("spec").and_then(Node::as_map) {
                s.fields = map
                    .iter()
                    .filter_map(|(k, _)| {
                        Some(crate::diag::Spanned::new(k.span, k.as_str()?.to_string()))
                    })
                    .collect();
            }
            (m, Body::FelixConfiguration(s))
        }
        Kind::K8sNetworkPolicy | Kind::StagedKubernetesNetworkPolicy => {
            let (m, s) = env(root)?;
            (m, Body::K8sNetworkPolicy(s))
        }
        Kind::AdminNetworkPolicy | Kind::BaselineAdminNetworkPolicy => {
            let (m, s) = env(root)?;
            (m, Body::AdminPolicy(s))
        }
        Kind::Namespace => (env::<serde_json::Value>(root)?.0, Body::Namespace),
        Kind::ServiceAccount => (env::<serde_json::Value>(root)?.0, Body::ServiceAccount),
        Kind::Pod => {
            let (m, s) = env(root)?;
            (m, Body::Pod(s))
        }
        Kind::Service => {
            let (m, s) = env(root)?;
            (m, Body::Service(s))
        }
        Kind::Deployment => {
            let (m, s) = env(root)?;
            (m, Body::Deployment(s))
        }
    };
    Ok(Resource {
        kind,
        span: root.span,
        metadata,
        body,
    })
}
