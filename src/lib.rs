//! policylab's pure core: everything that decides what a scenario means, without root
//! and without I/O beyond reading files.
//!
//! Start here:
//! - [`diag`]: source files, spans, diagnostics (`file:line:col: message`).
//! - [`yaml`]: the spanned YAML tree every input is read into.
//! - [`lab`]: the lab plan, the topology the harness builds in the kernel.

pub mod diag;
pub mod lab;
pub mod yaml;
