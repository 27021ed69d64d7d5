//! Single connections for load generation, opened through the client's own connector
//! (same TLS, ALPN, headers and credentials as [`super::ScimClient`]) but driven by hand:
//! a benchmark controls exactly how many connections exist (as wrk and h2load do) and
//! pays no pool lookup per request. On HTTP/2 one connection carries several streams:
//! [`Conn::stream`] hands out another sender on the same connection.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::TokioExecutor;
use tower::Service;

use super::http::{Reply, ScimClient};
use super::transport::{classify, HttpVersion, TransportError};
use crate::scim::urns;

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One connection (or one stream's handle on a shared HTTP/2 connection); reconnects
/// lazily after a failure.
pub struct Conn {
    client: ScimClient,
    /// Headers of every request on this connection, built once (Host included on
    /// HTTP/1.1; HTTP/2 carries the authority in the URI).
    headers: HeaderMap,
    tx: Option<Sender>,
}

/// The protocol a connection settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    Http1,
    Http2,
}

impl Conn {
    pub fn new(client: ScimClient) -> Self {
        Conn {
            client,
            headers: HeaderMap::new(),
            tx: None,
        }
    }

    /// Another sender on the same HTTP/2 connection (`None` on HTTP/1.1 or when not
    /// connected).
    pub fn stream(&self) -> Option<Conn> {
        match &self.tx {
            Some(Sender::H2(tx)) => Some(Conn {
                client: self.client.clone(),
                headers: self.headers.clone(),
                tx: Some(Sender::H2(tx.clone())),
            }),
            _ => None,
        }
    }

    pub fn negotiated(&self) -> Option<Negotiated> {
        match self.tx {
            Some(Sender::H1(_)) => Some(Negotiated::Http1),
            Some(Sender::H2(_)) => Some(Negotiated::Http2),
            None => None,
        }
    }

    async fn connect(&mut self) -> Result<(), TransportError> {
        let base = self.client.base_url();
        let host = base.host.clone();
        let mut connector = self.client.transport().connector.clone();
        let root = base.uri("")?;
        let io = tokio::time::timeout(self.client.options().timeout, connector.call(root))
            .await
            .map_err(|_| TransportError::Connect(format!("connecting to {host} timed out")))?
            .map_err(|e| classify(e.as_ref(), &host))?;
        let h2 = self.client.transport().version == HttpVersion::Http2
            || io.connected().is_negotiated_h2();
        let mut headers = self.client.headers().clone();
        if h2 {
            let (tx, conn) = http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(super::transport::H2_WINDOW)
                .initial_connection_window_size(super::transport::H2_WINDOW)
                .handshake(io)
                .await
                .map_err(|e| classify(&e, &host))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.tx = Some(Sender::H2(tx));
        } else {
            let (tx, conn) = http1::handshake(io)
                .await
                .map_err(|e| classify(&e, &host))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            headers.insert(HOST, base.host_header());
            self.tx = Some(Sender::H1(tx));
        }
        self.headers = headers;
        Ok(())
    }

    /// Opens the connection now, so the first measured request does not pay for it.
    pub async fn warm(&mut self) -> Result<(), TransportError> {
        if self.tx.is_none() {
            self.connect().await?;
        }
        Ok(())
    }

    /// After a failed or timed-out exchange: an HTTP/1.1 connection may still deliver
    /// the late answer, so a fresh one keeps the next request from reading it. An HTTP/2
    /// stream fails alone (its late frames are discarded), and the connection is shared
    /// by the other streams: keep it, or every timeout would add a connection; a closed
    /// one is noticed at the next send.
    fn drop_after_failure(&mut self) {
        if matches!(self.tx, Some(Sender::H1(_))) {
            self.tx = None;
        }
    }

    fn is_closed(&self) -> bool {
        match &self.tx {
            Some(Sender::H1(t)) => t.is_closed(),
            Some(Sender::H2(t)) => t.is_closed(),
            None => true,
        }
    }

    /// Sends one request (`path` relative to the SCIM root) and reads the whole answer.
    /// A 401 with renewable credentials renews the token for the requests that follow;
    /// this one is answered 401 (every attempt is a sample).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Reply, TransportError> {
        if self.is_closed() {
            self.tx = None;
            self.connect().await?;
        }
        let base = self.client.base_url();
        let mut req = Request::new(Full::new(body.clone().unwrap_or_default()));
        *req.method_mut() = method;
        // HTTP/1.1 sends the origin form; HTTP/2 needs scheme and authority.
        *req.uri_mut() = match self.tx {
            Some(Sender::H2(_)) => base.uri(path)?,
            _ => {
                let mut s = String::with_capacity(base.prefix.len() + path.len());
                s.push_str(&base.prefix);
                s.push_str(path);
                hyper::Uri::try_from(s).map_err(|e| TransportError::Other(e.to_string()))?
            }
        };
        *req.headers_mut() = self.headers.clone();
        let auth = self.client.auth();
        let token = auth.token().await?;
        if let Some(t) = &token {
            req.headers_mut().insert(AUTHORIZATION, t.header.clone());
        }
        if body.is_some() {
            req.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(urns::MEDIA_TYPE));
        }
        let host = &base.host;
        let exchange = async {
            let resp = match self.tx.as_mut().expect("connected above") {
                Sender::H1(tx) => {
                    tx.ready().await.map_err(|e| classify(&e, host))?;
                    tx.send_request(req).await
                }
                Sender::H2(tx) => {
                    tx.ready().await.map_err(|e| classify(&e, host))?;
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
            // Status and body only: a benchmark's hot path reads no headers (the
            // limits and ids an import needs are the pooled client's business).
            Ok::<_, TransportError>(Reply {
                status,
                body,
                ..Reply::default()
            })
        };
        match tokio::time::timeout(self.client.options().timeout, exchange).await {
            Ok(Ok(r)) => {
                if r.status == 401 {
                    if let Some(t) = token {
                        let _ = auth.renew_after_401(t.generation).await;
                    }
                }
                Ok(r)
            }
            Ok(Err(e)) => {
                self.drop_after_failure();
                Err(e)
            }
            Err(_) => {
                self.drop_after_failure();
                Err(TransportError::Timeout)
            }
        }
    }
}
