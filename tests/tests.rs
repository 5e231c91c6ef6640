//! policylab's integration tests (pure: no root needed).
//!
//! - `bad_scenarios`: every file under tests/bad_scenarios/ holds one mistake; the
//!   rendered diagnostics are snapshotted.
//! - `scenario`: table-driven checks of scenario loading (short form, vars,
//!   allocation, inventories, checks).

mod bad_scenarios; // one snapshot of rendered diagnostics per bad scenario file
mod scenario; // table-driven scenario loading tests

mod bad_input; // one file per mistake: every bad manifest and its exact message
mod compile; // the nft policy compiler: snapshots of every scenario's tables
mod doc_blocks; // the YAML blocks of README and docs/ (shared with the kernel docs test)
mod docs; // README and docs/: every YAML block runs, every citation resolves
mod fuzz; // bounded fuzzing of YAML reading and manifest loading: never a panic
mod lab_plan; // the lab a scenario needs: pods over every step, servers, LB routes
mod model; // the reference model: resolve + evaluate over small YAML worlds
mod run; // plans, feed schedule, report rendering, JSON and JUnit shapes
mod scenarios; // every scenario's model report, snapshotted; every expectation holds
mod support; // the small hand-made cluster the model and compiler tests share
