//! policylab's integration tests (pure: no root needed).

mod fuzz; // bounded fuzzing of YAML reading and manifest loading: never a panic
mod model; // the reference model: resolve + evaluate over small YAML worlds
