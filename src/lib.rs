//! policylab's pure core: everything that decides what a scenario means, without root
//! and without I/O beyond reading files.
//!
//! Start here:
//! - [`diag`]: source files, spans, diagnostics (`file:line:col: message`).
//! - [`yaml`]: the spanned YAML tree every input is read into.
//! - [`selector`]: Calico's label-selector language: parse, canonical text and UID,
//!   evaluation against (layered) labels.
//! - [`manifest`]: Calico and Kubernetes manifests, typed and validated.
//! - [`inventory`]: what exists in a scenario's cluster at one step.
//! - [`scenario`]: scenario files: typed steps, address allocation, the state after every step.
//! - [`resolve`]: `Inventory` → `World`: endpoints, sorted tiers and policies,
//!   rewritten selectors and their member sets, services.
//! - [`model`]: the reference evaluator: `World` × `Flow` → `Decision` with the
//!   full trace, `explain`, flow-log policy strings.
//! - [`feed`]: threat-feed lists (newline, JSON, CSV) parsed into networks.
//! - [`fuzz`]: the fuzz targets' bodies (scenario, manifest, selector, feed), shared by
//!   `fuzz/` (cargo-fuzz) and the bounded property tests run in CI.
//! - [`run`]: a scenario's steps on the reference model: the [`run::Plan`] with
//!   every probe's prediction, feed pulls, and the types a dataplane fills in.
//! - [`report`]: the run's report (text snapshot, JSON, JUnit) and exit code.
//! - [`nft`]: nftables rulesets as typed values, rendered to `nft -f` text.
//! - [`compile`]: `World` → one nftables table per node namespace, in Calico's
//!   layout, with the NFLOG legend that tells which stage and rule decided.
//! - [`lab`]: the lab plan, the topology the harness builds in the kernel.

pub mod compile;
pub mod diag;
pub mod feed;
pub mod fuzz;
pub mod inventory;
pub mod lab;
pub mod manifest;
pub mod model;
pub mod nft;
pub mod report;
pub mod resolve;
pub mod run;
pub mod scenario;
pub mod selector;
pub mod yaml;
