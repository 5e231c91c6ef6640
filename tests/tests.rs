//! policylab's integration tests (pure: no root needed).
mod model;
