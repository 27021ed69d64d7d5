//! The one reply type of every exchange (the pooled client's and the load connections'):
//! status and body, and — when the caller asks for them — the headers that steer an
//! import (Retry-After and rate-limit resets, ETag, Location, request-id), read once
//! from the answer's head without parsing the body.

use std::time::Duration;

use hyper::header::{HeaderMap, HeaderName, HeaderValue, ETAG, LOCATION};

use crate::scim::error::ErrorBody;

/// An HTTP answer: the one reply type of the pooled client and the load connections.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub body: bytes::Bytes,
    /// How long a refused request waits: `Retry-After`, else the reset of a spent
    /// limit (see `ratelimit`).
    pub retry_after: Option<Duration>,
    /// On an answer that went through: nothing is left of the service's limit until
    /// this long from now (`X-RateLimit-Remaining: 0` and its reset).
    pub exhausted: Option<Duration>,
    pub etag: Option<String>,
    pub location: Option<String>,
    /// The service's id for this request (`request-id`, as Microsoft Graph sends it):
    /// what an asynchronous answer (202) is traced by.
    pub request_id: Option<String>,
}

impl Reply {
    /// Status, body and the headers an import reads.
    pub fn with_headers(status: u16, headers: &HeaderMap, body: bytes::Bytes) -> Self {
        let header = |n| {
            headers
                .get(n)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let now = std::time::SystemTime::now();
        Reply {
            status,
            retry_after: super::ratelimit::retry_after(headers, now),
            exhausted: super::ratelimit::exhausted(headers, now),
            etag: header(ETAG),
            location: header(LOCATION),
            request_id: header(HeaderName::from_static("request-id")),
            body,
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The SCIM Error body, when the server sent one.
    pub fn error(&self) -> Option<ErrorBody> {
        (!self.is_success())
            .then(|| serde_json::from_slice(&self.body).ok())
            .flatten()
    }

    /// The `id` of the resource an answer carries (its body), else the last segment of
    /// its Location.
    pub fn resource_id(&self) -> Option<String> {
        id_in(&self.body).or_else(|| {
            self.location
                .as_deref()
                .and_then(|l| l.rsplit('/').next())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
    }

    /// `scimType` of a SCIM Error body.
    pub fn scim_type(&self) -> Option<String> {
        self.error()
            .and_then(|e| e.scim_type)
            .map(|t| t.as_str().to_string())
    }
}

/// The `id` member of a SCIM resource body. Read by a typed visitor that skips every
/// other member without building it: parsing a created user into a `Value` (ordered
/// maps, every string allocated) was the importer's largest cost per create.
pub fn id_in(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Id>(body)
        .ok()?
        .id
        .map(|c| c.into_owned())
        .filter(|s| !s.is_empty())
}
