//! This module deals with reading YAML: every byte of YAML policylab reads goes
//! through here, so the parser can be swapped in one place.
//!
//! - [`de`]: serde deserialization of a node with spans (`from_node`, `Spanned<T>`).
//! - [`node`]: a spanned YAML tree (`parse_stream`, `parse_single`), typed as kubectl types it.
//! - [`locate`]: the position of a character inside a scalar's value (`value_char_span`).
//! - [`schema`]: OpenAPI v3 schemas (the Calico CRDs and hand-written k8s kinds) and a
//!   validator that reports every unknown field and wrong type, as the API server does.
//!
//! Guarantee: positions are exact in the coordinates of the file that holds the text,
//! also for YAML embedded in a block scalar of a scenario (see [`node::Origin`]).

pub mod de;
pub mod locate;
pub mod node;
pub mod schema;

pub use de::{from_node, DeError};
pub use locate::value_char_span;
pub use node::{
    parse_single, parse_stream, Document, Node, Origin, Resolved, Scalar, Style, Value,
};
pub use schema::{Schema, Schemas};
