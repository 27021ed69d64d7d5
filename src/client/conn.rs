//! One raw HTTP/1.1 connection for load generation: a hyper `SendRequest` over a TCP
//! stream that the caller owns, so a benchmark controls exactly how many connections
//! exist (as wrk does) and pays no pool lookup per request. The import keeps using the
//! pooled reqwest client in [`super::http`]; this is the lean path where generator CPU
//! decides how much of a shared machine is left for the server under test.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::http::{Secret, TransportError};
use crate::scim::urns;

/// Where to connect and what every request carries.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port` to connect to.
    pub authority: String,
    /// Path prefix of the SCIM root (`/scim/v2`), without a trailing slash.
    pub prefix: String,
    host: HeaderValue,
    auth: Option<HeaderValue>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("authority", &self.authority)
            .field("prefix", &self.prefix)
            .field("token", &self.auth.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Endpoint {
    /// From a base URL `http://host:port/prefix`. Only plain HTTP: a load generator on
    /// loopback or in a private network namespace has no use for TLS, and the handshake
    /// cost would be measured as the server's.
    pub fn parse(base: &str, token: Option<&Secret>, timeout: Duration) -> Result<Self, String> {
        let rest = base.strip_prefix("http://").ok_or_else(|| {
            format!("'{base}': the benchmark speaks plain http:// only; run it next to the server or through a local TLS-terminating proxy")
        })?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("'{base}' has no host"));
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let auth = match token {
            Some(t) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                    .map_err(|_| "the token contains characters that cannot go in an HTTP header; check for a stray newline".to_string())?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(Endpoint {
            host: HeaderValue::from_str(&authority).map_err(|e| e.to_string())?,
            authority,
            prefix: prefix.to_string(),
            auth,
            timeout,
        })
    }
}

/// An HTTP answer as a benchmark needs it.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub body: Bytes,
}

/// A single keep-alive connection; reconnects lazily after a failure.
pub struct Conn {
    ep: Endpoint,
    tx: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(ep: Endpoint) -> Self {
        Conn { ep, tx: None }
    }

    async fn connect(&mut self) -> Result<(), TransportError> {
        let stream = TcpStream::connect(&self.ep.authority)
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.tx = Some(tx);
        Ok(())
    }

    /// Opens the connection now, so the first measured request does not pay for it.
    pub async fn warm(&mut self) -> Result<(), TransportError> {
        if self.tx.is_none() {
            self.connect().await?;
        }
        Ok(())
    }

    /// Sends one request (`path` relative to the SCIM root) and reads the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<RawReply, TransportError> {
        if self.tx.as_ref().is_none_or(|t| t.is_closed()) {
            self.tx = None;
            self.connect().await?;
        }
        let tx = self.tx.as_mut().expect("connected above");
        if tx.ready().await.is_err() {
            self.tx = None;
            return Err(TransportError::Reset("connection closed".into()));
        }
        let mut rb = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.ep.prefix))
            .header(HOST, self.ep.host.clone())
            .header(ACCEPT, HeaderValue::from_static(urns::MEDIA_TYPE));
        if let Some(a) = &self.ep.auth {
            rb = rb.header(AUTHORIZATION, a.clone());
        }
        let has_body = body.is_some();
        if has_body {
            rb = rb.header(CONTENT_TYPE, HeaderValue::from_static(urns::MEDIA_TYPE));
        }
        let req = rb
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| TransportError::Other(e.to_string()))?;
        let exchange = async {
            let resp = tx.send_request(req).await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>(RawReply { status, body })
        };
        match tokio::time::timeout(self.ep.timeout, exchange).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.tx = None;
                Err(TransportError::Reset(e.to_string()))
            }
            Err(_) => {
                // The answer may still come on this connection; a fresh one keeps the
                // next request from reading it.
                self.tx = None;
                Err(TransportError::Timeout)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let t = Duration::from_secs(1);
        let e = Endpoint::parse("http://127.0.0.1:8080/scim/v2/", None, t).unwrap();
        assert_eq!(
            (e.authority.as_str(), e.prefix.as_str()),
            ("127.0.0.1:8080", "/scim/v2")
        );
        let e = Endpoint::parse("http://localhost", None, t).unwrap();
        assert_eq!(
            (e.authority.as_str(), e.prefix.as_str()),
            ("localhost:80", "")
        );
        assert!(Endpoint::parse("https://x", None, t)
            .unwrap_err()
            .contains("http://"));
        let e = Endpoint::parse("http://h:1", Some(&Secret::new("s3cret")), t).unwrap();
        assert!(!format!("{e:?}").contains("s3cret"));
    }
}
