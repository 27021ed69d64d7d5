//! The SCIM 2.0 protocol core shared by the client and the embedded server: models,
//! schemas, filters, PATCH.

pub mod error;
pub mod filter;
pub mod model;
pub mod patch;
pub mod schema;
pub mod urns;
pub mod value;

pub use error::{ScimError, ScimType};
