//! The SCIM client shared by every command: one transport (hyper over rustls, HTTP/1.1
//! and HTTP/2), one set of credentials, the retry policy that decides what a failure
//! means, and the dialects that shape requests as identity providers send them.
//!
//! Dependencies point one way: tls → transport → auth → reply → conn (one connection,
//! driven by hand) → http (the pooled client: idle connections) → the rest.

pub mod auth;
pub(crate) mod conn;
pub mod dialect;
pub(crate) mod discovery;
pub(crate) mod fan;
pub(crate) mod http;
pub(crate) mod ratelimit;
pub(crate) mod reply;
pub mod retry;
pub(crate) mod schemas;
pub(crate) mod throttle;
pub mod tls;
pub(crate) mod transport;

pub use auth::{Auth, Credentials, Secret};
pub use http::{ClientError, ClientOptions, ScimClient};
pub use reply::Reply;
pub use retry::{Decision, RetryPolicy};
pub use transport::{HttpVersion, TransportError};
