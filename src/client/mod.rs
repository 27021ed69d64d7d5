//! The SCIM client shared by every command: one transport (hyper over rustls, HTTP/1.1
//! and HTTP/2), one set of credentials, the retry policy that decides what a failure
//! means, and the dialects that shape requests as identity providers send them.
//!
//! Dependencies point one way: tls → transport → auth → http (pooled client) → conn
//! (load connections) → the rest.

pub mod auth;
pub mod conn;
pub mod dialect;
pub mod discovery;
pub mod fan;
pub mod http;
pub mod ratelimit;
pub mod retry;
pub mod schemas;
pub mod throttle;
pub mod tls;
pub mod transport;

pub use auth::{Auth, Credentials, Secret};
pub use http::{ClientError, ClientOptions, Reply, ScimClient};
pub use retry::{Decision, RetryPolicy};
pub use transport::{HttpVersion, TransportError};
