//! The SCIM client shared by import and bench: an HTTP transport that never shows its
//! token, and the retry policy that decides what a failure means.

pub mod conn;
pub mod dialect;
pub mod discovery;
pub mod fan;
pub mod http;
pub mod retry;
pub mod throttle;

pub use http::{Reply, ScimClient, Secret, TransportError};
pub use retry::{Decision, RetryPolicy};
