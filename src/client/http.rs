//! HTTP transport for SCIM requests (reqwest): base URL, bearer token, SCIM media type,
//! and replies reduced to what the dispatcher needs (status, SCIM error, Retry-After,
//! ETag, Location) without parsing bodies it does not need.

use std::fmt;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, LOCATION, RETRY_AFTER,
};

use crate::scim::error::ErrorBody;
use crate::scim::urns;

/// A bearer token. Its Debug and Display never show it: tokens must not reach logs,
/// reports or error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("the request timed out")]
    Timeout,
    #[error("could not connect: {0}")]
    Connect(String),
    /// The connection broke after the request may have been sent.
    #[error("the connection was closed before an answer: {0}")]
    Reset(String),
    /// The TLS handshake failed: the target's certificate is not trusted or not valid.
    #[error("the target's TLS certificate was refused ({0}); if it comes from a private CA or is self-signed, pass --ca-cert FILE with the CA's PEM certificate")]
    Tls(String),
    #[error("{0}")]
    Other(String),
}

impl TransportError {
    fn from_reqwest(e: reqwest::Error) -> Self {
        // reqwest's messages can carry the URL; never the token, which is a header. The
        // cause (a refused connection, an untrusted certificate) is in the source chain.
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        if e.is_connect() && (msg.contains("certificate") || msg.contains("Certificate")) {
            if msg.contains("CaUsedAsEndEntity") {
                // `openssl req -x509` marks a self-signed certificate as a CA by default,
                // and WebPKI rules refuse a CA certificate as the server's own.
                msg.push_str(" — the server's certificate is marked as a CA; make it with -addext basicConstraints=critical,CA:FALSE (openssl) or sign it with a separate CA");
            }
            return TransportError::Tls(msg);
        }
        if e.is_timeout() {
            TransportError::Timeout
        } else if e.is_connect() {
            TransportError::Connect(msg)
        } else if e.is_request() || e.is_body() || e.is_decode() {
            TransportError::Reset(msg)
        } else {
            TransportError::Other(msg)
        }
    }

    /// A short name for counting: `timeout`, `connect`, `reset`, `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportError::Timeout => "timeout",
            TransportError::Connect(_) => "connect",
            TransportError::Tls(_) => "tls",
            TransportError::Reset(_) => "connection closed",
            TransportError::Other(_) => "other",
        }
    }

    /// Whether the server may have acted on the request (it reached the socket).
    pub fn maybe_applied(&self) -> bool {
        !matches!(self, TransportError::Connect(_) | TransportError::Tls(_))
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: bytes::Bytes,
    pub retry_after: Option<Duration>,
    pub etag: Option<String>,
    pub location: Option<String>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The SCIM Error body, when the server sent one.
    pub fn error(&self) -> Option<ErrorBody> {
        (!self.is_success())
            .then(|| serde_json::from_slice(&self.body).ok())
            .flatten()
    }

    /// `scimType` of a SCIM Error body.
    pub fn scim_type(&self) -> Option<String> {
        self.error()
            .and_then(|e| e.scim_type)
            .map(|t| t.as_str().to_string())
    }
}

/// `Retry-After` as seconds (RFC 9110 §10.2.3; the HTTP-date form is rare from SCIM
/// servers and treated as absent).
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

/// A SCIM service provider at a base URL.
#[derive(Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    base: String,
    auth: Option<HeaderValue>,
    /// Shared pacing that slows every request down when the target answers 429.
    throttle: Option<std::sync::Arc<super::throttle::Throttle>>,
}

impl fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimClient")
            .field("base", &self.base)
            .field("token", &self.auth.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ScimClient {
    /// `base` is the SCIM root (`https://host/scim/v2`); `timeout` bounds each request.
    pub fn new(
        base: &str,
        token: Option<&Secret>,
        timeout: Duration,
        max_connections: usize,
    ) -> Result<Self, String> {
        Self::with_ca(base, token, timeout, max_connections, None)
    }

    /// As [`ScimClient::new`], also trusting the PEM certificates in `ca_pem` (a private
    /// CA, a self-signed test server) besides the public roots.
    pub fn with_ca(
        base: &str,
        token: Option<&Secret>,
        timeout: Duration,
        max_connections: usize,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let mut auth = None;
        if let Some(t) = token {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                .map_err(|_| "the token contains characters that cannot go in an HTTP header; check for a stray newline".to_string())?;
            v.set_sensitive(true);
            auth = Some(v);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(max_connections.max(1))
            .tcp_nodelay(true)
            .use_rustls_tls();
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("the CA file holds no usable PEM certificate ({e}); give the PEM certificate(s) of the CA that signed the target's"))?;
            if certs.is_empty() {
                return Err("the CA file holds no PEM certificate; give the PEM certificate(s) of the CA that signed the target's".into());
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(ScimClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth,
            throttle: None,
        })
    }

    /// Paces every request of this client (and its clones) through `throttle`.
    pub fn with_throttle(mut self, throttle: std::sync::Arc<super::throttle::Throttle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request; `path` is relative to the base (`/Users?filter=…`).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        if_match: Option<&str>,
    ) -> Result<Reply, TransportError> {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(ACCEPT, HeaderValue::from_static(urns::MEDIA_TYPE));
        if let Some(a) = &self.auth {
            rb = rb.header(AUTHORIZATION, a.clone());
        }
        if let Some(m) = if_match {
            rb = rb.header(reqwest::header::IF_MATCH, m);
        }
        if let Some(b) = body {
            rb = rb
                .header(CONTENT_TYPE, HeaderValue::from_static(urns::MEDIA_TYPE))
                .body(b);
        }
        if let Some(t) = &self.throttle {
            t.acquire().await;
        }
        let resp = rb.send().await.map_err(TransportError::from_reqwest)?;
        let status = resp.status().as_u16();
        if let Some(t) = &self.throttle {
            t.record(status == 429, std::time::Instant::now());
        }
        let headers = resp.headers();
        let retry_after = retry_after(headers);
        let header = |n| {
            headers
                .get(n)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let (etag, location) = (header(ETAG), header(LOCATION));
        let body = resp.bytes().await.map_err(TransportError::from_reqwest)?;
        Ok(Reply {
            status,
            body,
            retry_after,
            etag,
            location,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        let c = ScimClient::new("http://127.0.0.1:1", Some(&s), Duration::from_secs(1), 1).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(ScimClient::new(
            "http://x",
            Some(&Secret::new("a\nb")),
            Duration::from_secs(1),
            1
        )
        .is_err());
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }
}
