//! The scenario file as written (raw, spanned): serde mirrors of `cluster:` and
//! `outside:` entries of docs/scenario-format.md#cluster and
//! docs/scenario-format.md#outside. Unknown keys are errors with
//! "expected one of" (`deny_unknown_fields`); each list entry is read on its own so
//! one run lists the problems of every entry. Steps are read by hand in
//! [`super::build`] because a step is "exactly one verb key plus options".

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::diag::Spanned;

/// Label maps.
pub type Labels = BTreeMap<String, Spanned<String>>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNode {
    pub name: Spanned<String>,
    pub ip: Option<Spanned<String>>,
    pub labels: Option<Labels>,
    pub interfaces: Option<Vec<Spanned<String>>>,
    pub ports: Option<Vec<Spanned<RawPort>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPort {
    pub name: Option<Spanned<String>>,
    pub port: Spanned<i64>,
    pub protocol: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNamespace {
    pub name: Spanned<String>,
    pub labels: Option<Labels>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawServiceAccount {
    pub name: Spanned<String>,
    pub namespace: Option<Spanned<String>>,
    pub labels: Option<Labels>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPod {
    pub name: Spanned<String>,
    pub namespace: Option<Spanned<String>>,
    pub node: Option<Spanned<String>>,
    pub labels: Option<Labels>,
    pub service_account: Option<Spanned<String>>,
    pub ip: Option<Spanned<String>>,
    pub ports: Option<Vec<Spanned<RawPort>>>,
    pub replicas: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawService {
    pub name: Spanned<String>,
    pub namespace: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub service_type: Option<Spanned<String>>,
    pub selector: Option<Labels>,
    pub ports: Option<Vec<Spanned<RawServicePort>>>,
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: Option<Spanned<String>>,
    pub external_traffic_policy: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawServicePort {
    pub port: Spanned<i64>,
    pub target_port: Option<Spanned<crate::manifest::types::IntOrString>>,
    pub node_port: Option<Spanned<i64>>,
    pub protocol: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
/// `ip:` (one address or a list) is taken out of the mapping and read by hand.
pub struct RawOutside {
    pub name: Spanned<String>,
    pub ports: Option<Vec<Spanned<RawPort>>>,
    pub hostnames: Option<Vec<Spanned<String>>>,
    pub files: Option<BTreeMap<String, Spanned<String>>>,
}
