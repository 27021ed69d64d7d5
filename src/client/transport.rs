//! The one HTTP transport under every command: hyper 1 over a hyper-rustls connector
//! (HTTP/1.1 and HTTP/2, ALPN on TLS, prior-knowledge h2c), with the base URL parsed once
//! and failures sorted into [`TransportError`]s that say what to do. Connections are
//! opened through it and driven by `Conn` (conn.rs), for the benchmark's fixed set as for
//! the pooled client's idle stack.

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderMap, HeaderValue, HOST};
use hyper::http::uri::{Authority, Scheme};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use tokio_rustls::rustls;
use tower::Service;

use super::tls::{self, TlsOptions, TlsSetupError};

pub type Connector = HttpsConnector<HttpConnector>;

/// HTTP/2 flow-control window of our side (stream and connection): large, as h2load's
/// default (2^30 - 1), so the server is never held back and never spends frames on
/// WINDOW_UPDATEs for answers we read at once. Measured against `scimload serve` on one
/// core: h2load made 84k requests/s with 64 KiB windows, 89k with 1 GiB ones.
pub const H2_WINDOW: u32 = (1 << 30) - 1;

/// Which HTTP versions to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpVersion {
    /// HTTP/1.1 on plain connections; on TLS whatever ALPN settles (h2 preferred).
    #[default]
    Auto,
    /// HTTP/1.1 only (`--http1`).
    Http1,
    /// HTTP/2 only (`--http2`): ALPN h2 on TLS, prior knowledge (h2c) on plain HTTP.
    Http2,
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("the request timed out")]
    Timeout,
    /// Nothing was sent: refused, unreachable, or the name did not resolve.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The connection broke after the request may have been sent.
    #[error("the connection was closed before an answer: {0}")]
    Reset(String),
    /// The TLS handshake failed; the message names the fix.
    #[error("{0}")]
    Tls(String),
    /// No credential could be had (token endpoint or token command failed).
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Other(String),
}

impl TransportError {
    /// A short name for counting: `timeout`, `connect`, `tls`, `auth`, `connection
    /// closed`, `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportError::Timeout => "timeout",
            TransportError::Connect(_) => "connect",
            TransportError::Tls(_) => "tls",
            TransportError::Auth(_) => "auth",
            TransportError::Reset(_) => "connection closed",
            TransportError::Other(_) => "other",
        }
    }

    /// Whether the server may have acted on the request (it reached the socket).
    pub fn maybe_applied(&self) -> bool {
        !matches!(
            self,
            TransportError::Connect(_) | TransportError::Tls(_) | TransportError::Auth(_)
        )
    }

    /// Whether the same request can never succeed as things stand (a certificate or a
    /// credential problem): retrying only repeats the refusal.
    pub fn is_fatal(&self) -> bool {
        matches!(self, TransportError::Tls(_) | TransportError::Auth(_))
    }
}

/// Why a base URL cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "'{url}' {why}; give the SCIM base URL, e.g. https://host/scim/v2 or http://127.0.0.1:8080"
)]
pub struct UrlError {
    pub url: String,
    pub why: &'static str,
}

/// A SCIM root, parsed once: requests are built from its pieces, never by re-parsing.
#[derive(Debug, Clone)]
pub struct BaseUrl {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Host name as the certificate must name it (no brackets, no port).
    pub host: String,
    /// Path of the SCIM root without a trailing slash (`/scim/v2`, or empty).
    pub prefix: String,
    /// `scheme://authority` + prefix, as given (trailing slash removed).
    pub text: String,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let err = |why| UrlError {
            url: url.to_string(),
            why,
        };
        let after_scheme = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if after_scheme.is_some_and(|r| r.is_empty() || r.starts_with('/')) {
            return Err(err("has no host"));
        }
        let trimmed = url.trim_end_matches('/');
        if trimmed.contains(char::is_whitespace) {
            return Err(err("contains white space"));
        }
        let uri: Uri = trimmed.parse().map_err(|_| err("is not a URL"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| err("has no http:// or https://"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(err("is neither http:// nor https://"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| err("has no host"))?;
        if authority.host().is_empty() {
            return Err(err("has no host"));
        }
        if uri.query().is_some() {
            return Err(err("has a query string"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let prefix = uri.path().trim_end_matches('/').to_string();
        Ok(BaseUrl {
            text: format!("{scheme}://{authority}{prefix}"),
            scheme,
            authority,
            host,
            prefix,
        })
    }

    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// The absolute URI of `path` (relative to the root, starting with `/`).
    pub fn uri(&self, path: &str) -> Result<Uri, TransportError> {
        let mut s = String::with_capacity(self.text.len() + path.len());
        s.push_str(&self.text);
        s.push_str(path);
        Uri::try_from(s).map_err(|e| TransportError::Other(format!("bad request path {path}: {e}")))
    }

    /// `Host` header value for HTTP/1.1.
    pub fn host_header(&self) -> HeaderValue {
        HeaderValue::from_str(self.authority.as_str()).expect("an authority is a valid header")
    }
}

/// A connection's request handle, HTTP/1.1 or HTTP/2 (its driver runs as a task of its
/// own).
pub(crate) enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// The connector for one TLS setup and HTTP version, and the bound on one exchange.
#[derive(Clone)]
pub struct Transport {
    pub connector: Connector,
    pub version: HttpVersion,
    pub timeout: Duration,
}

impl Transport {
    pub fn new(
        tls: &TlsOptions,
        version: HttpVersion,
        timeout: Duration,
    ) -> Result<Self, TlsSetupError> {
        // ALPN is the connector's to set, from the versions enabled below: h2 and
        // http/1.1 for Auto (h2 preferred), one of them when forced.
        let cfg = tls::client_config(tls)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let b = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*cfg).clone())
            .https_or_http();
        let connector = match version {
            HttpVersion::Auto => b.enable_all_versions().wrap_connector(http),
            HttpVersion::Http1 => b.enable_http1().wrap_connector(http),
            HttpVersion::Http2 => b.enable_http2().wrap_connector(http),
        };
        Ok(Transport {
            connector,
            version,
            timeout,
        })
    }

    /// Opens a connection to `base`'s host: TCP (and TLS, with ALPN), then the HTTP/2
    /// handshake when forced or negotiated, else HTTP/1.1.
    pub(crate) async fn open(&self, base: &BaseUrl) -> Result<Sender, TransportError> {
        let host = &base.host;
        let mut connector = self.connector.clone();
        let io = tokio::time::timeout(self.timeout, connector.call(base.uri("")?))
            .await
            .map_err(|_| TransportError::Connect(format!("connecting to {host} timed out")))?
            .map_err(|e| classify(e.as_ref(), host))?;
        if self.version == HttpVersion::Http2 || io.connected().is_negotiated_h2() {
            let (tx, conn) = http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(H2_WINDOW)
                .initial_connection_window_size(H2_WINDOW)
                .handshake(io)
                .await
                .map_err(|e| classify(&e, host))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Sender::H2(tx))
        } else {
            let (tx, conn) = http1::handshake(io).await.map_err(|e| classify(&e, host))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Sender::H1(tx))
        }
    }

    /// One request to the absolute `url` (an OAuth token endpoint: tokens are fetched
    /// once every few minutes, usually from another host than the target) on a
    /// connection of its own, closed after the answer: its status and body.
    pub(crate) async fn one_shot(
        &self,
        url: &BaseUrl,
        method: Method,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<(u16, Bytes), TransportError> {
        let host = &url.host;
        let work = async {
            let mut tx = self.open(url).await?;
            let mut req = Request::new(Full::new(body));
            *req.method_mut() = method;
            let resp = match &mut tx {
                Sender::H1(tx) => {
                    headers.insert(HOST, url.host_header());
                    *req.uri_mut() = Uri::try_from(if url.prefix.is_empty() {
                        "/"
                    } else {
                        url.prefix.as_str()
                    })
                    .map_err(|e| TransportError::Other(e.to_string()))?;
                    *req.headers_mut() = headers;
                    tx.send_request(req).await
                }
                Sender::H2(tx) => {
                    *req.uri_mut() = url.uri("")?;
                    *req.headers_mut() = headers;
                    tx.send_request(req).await
                }
            }
            .map_err(|e| classify(&e, host))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| classify(&e, host))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or(Err(TransportError::Timeout))
    }
}

/// The rustls error somewhere in `e`'s chain (hyper-rustls wraps it in an io::Error,
/// whose `source` skips the wrapped error itself, hence `get_ref`).
fn find_rustls<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(r) = x.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = x
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = find_rustls(inner) {
                return Some(r);
            }
        }
        cur = x.source();
    }
    None
}

fn chain_text(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(x) = cur {
        let s = x.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        if let Some(inner) = x
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let s = inner.to_string();
            if !parts.iter().any(|p| p.contains(&s)) {
                parts.push(s);
            }
        }
        cur = x.source();
    }
    parts.join(": ")
}

fn has_io_kind(e: &(dyn StdError + 'static), kind: std::io::ErrorKind) -> bool {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if x.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
        {
            return true;
        }
        cur = x.source();
    }
    false
}

/// Sorts a failed exchange into what it means for the caller. `host` names the target
/// in messages about certificates.
pub fn classify(e: &(dyn StdError + 'static), host: &str) -> TransportError {
    if let Some(r) = find_rustls(e) {
        return TransportError::Tls(tls::explain(r, host));
    }
    let text = chain_text(e);
    let lower = text.to_ascii_lowercase();
    let is_connect = e
        .downcast_ref::<hyper_util::client::legacy::Error>()
        .is_some_and(|l| l.is_connect());
    if lower.contains("dns error") || lower.contains("failed to lookup address") {
        return TransportError::Connect(format!(
            "cannot resolve the host name '{host}' ({text}); check the URL and this machine's DNS"
        ));
    }
    if has_io_kind(e, std::io::ErrorKind::ConnectionRefused) {
        return TransportError::Connect(format!(
            "{host} refused the connection ({text}); check the port and that the server runs"
        ));
    }
    if has_io_kind(e, std::io::ErrorKind::TimedOut) && is_connect {
        return TransportError::Connect(format!("connecting to {host} timed out ({text})"));
    }
    if is_connect {
        return TransportError::Connect(text);
    }
    if lower.contains("go away")
        || lower.contains("goaway")
        || lower.contains("connection error received")
    {
        return TransportError::Reset(format!(
            "the server ended the HTTP/2 connection (GOAWAY: {text}); requests on it were not all answered"
        ));
    }
    TransportError::Reset(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose chain ends in `inner`, as hyper and hyper-util wrap causes.
    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (SendRequest)")
        }
    }
    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn failures_are_sorted_into_what_to_do() {
        use std::io::{Error, ErrorKind};
        let dns = Wrapped(Error::other(
            "dns error: failed to lookup address information",
        ));
        let e = classify(&dns, "scim.example.org");
        assert!(
            matches!(&e, TransportError::Connect(m) if m.contains("cannot resolve the host name 'scim.example.org'")),
            "{e}"
        );
        assert!(!e.maybe_applied());
        let refused = Wrapped(Error::new(
            ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        let e = classify(&refused, "127.0.0.1");
        assert!(
            matches!(&e, TransportError::Connect(m) if m.contains("refused the connection") && m.contains("server runs")),
            "{e}"
        );
        let goaway = Wrapped(Error::other(
            "connection error received: not a result of an error",
        ));
        let e = classify(&goaway, "h");
        assert!(
            matches!(&e, TransportError::Reset(m) if m.contains("GOAWAY")),
            "{e}"
        );
        assert!(e.maybe_applied());
        // A rustls refusal inside an io::Error (as hyper-rustls reports it).
        let tls = Wrapped(Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        )));
        let e = classify(&tls, "h");
        assert!(
            matches!(&e, TransportError::Tls(m) if m.contains("expired")),
            "{e}"
        );
        assert!(e.is_fatal() && !e.maybe_applied());
    }

    #[test]
    fn base_urls_parse_once() {
        let b = BaseUrl::parse("https://scim.example.com/scim/v2/").unwrap();
        assert_eq!(b.text, "https://scim.example.com/scim/v2");
        assert_eq!(
            (b.host.as_str(), b.prefix.as_str()),
            ("scim.example.com", "/scim/v2")
        );
        assert!(b.is_tls());
        assert_eq!(
            b.uri("/Users?count=1").unwrap().to_string(),
            "https://scim.example.com/scim/v2/Users?count=1"
        );
        let b = BaseUrl::parse("http://[::1]:8080").unwrap();
        assert_eq!((b.host.as_str(), b.prefix.as_str()), ("::1", ""));
        for bad in ["ftp://x", "x", "http://", "http://h/a b", "http://h/?q=1"] {
            let e = BaseUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("give the SCIM base URL"), "{bad}: {e}");
        }
    }
}
