//! policylab's integration tests (pure: no root needed).

mod bad_input; // one file per mistake: every bad manifest and its exact message
mod fuzz; // bounded fuzzing of YAML reading and manifest loading: never a panic
