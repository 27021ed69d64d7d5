//! Connections to one SCIM root, opened through the client's connector (TLS, ALPN,
//! HTTP/1.1 or HTTP/2) and driven by hand. Every request of every command goes through
//! a [`Conn`]: the benchmark holds exactly the connections it was asked for (as wrk and
//! h2load do), the pooled client (`http.rs`) keeps a stack of idle ones for imports,
//! cleanup, seeding and probes. No pool lookup, no URI rewriting and no boxed future per
//! request: hyper-util's pooled client cost the importer ~7% of its CPU for those.
//!
//! On HTTP/2 one connection carries several streams: [`Conn::stream`] hands out another
//! sender on the same connection.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, IF_MATCH,
};
use hyper::{Method, Request, Response, Uri};

use super::auth::Auth;
use super::reply::Reply;
use super::transport::{classify, BaseUrl, Sender, Transport, TransportError};
use crate::scim::urns;

/// Where requests go and what each carries: the connector, the SCIM root (parsed once),
/// the headers built once (Accept, User-Agent, `--header`) and the credentials.
pub struct Endpoint {
    pub transport: Transport,
    pub base: BaseUrl,
    pub headers: HeaderMap,
    pub auth: Arc<Auth>,
}

/// One connection (or one stream's handle on a shared HTTP/2 connection); reconnects
/// lazily after a failure.
pub struct Conn {
    ep: Arc<Endpoint>,
    /// Headers of every request on this connection, built once (Host included on
    /// HTTP/1.1; HTTP/2 carries the authority in the URI).
    headers: HeaderMap,
    tx: Option<Sender>,
    /// When it was last handed back idle (the pooled client retires old ones).
    pub(crate) idle_since: Instant,
}

/// The protocol a connection settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    Http1,
    Http2,
}

/// What an exchange keeps of the answer: the status and body a benchmark reads, or
/// also the headers an import steers by.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Body,
    BodyAndHeaders,
}

impl Conn {
    pub fn new(ep: Arc<Endpoint>) -> Self {
        Conn {
            ep,
            headers: HeaderMap::new(),
            tx: None,
            idle_since: Instant::now(),
        }
    }

    /// Another sender on the same HTTP/2 connection (`None` on HTTP/1.1 or when not
    /// connected).
    pub fn stream(&self) -> Option<Conn> {
        match &self.tx {
            Some(Sender::H2(tx)) => Some(Conn {
                ep: self.ep.clone(),
                headers: self.headers.clone(),
                tx: Some(Sender::H2(tx.clone())),
                idle_since: self.idle_since,
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
        let ep = &*self.ep;
        // Boxed: opening a connection (TCP, TLS, the HTTP/2 handshake) is a large state
        // machine, and without the box it sits inside every request's future — which
        // the importer moves into a task per user (copying ~10 KB more each time).
        let tx = Box::pin(ep.transport.open(&ep.base)).await?;
        let mut headers = ep.headers.clone();
        if matches!(tx, Sender::H1(_)) {
            headers.insert(HOST, ep.base.host_header());
        }
        self.tx = Some(tx);
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

    /// Whether the connection is gone (the server closed it, or it failed).
    pub fn is_closed(&self) -> bool {
        match &self.tx {
            Some(Sender::H1(t)) => t.is_closed(),
            Some(Sender::H2(t)) => t.is_closed(),
            None => true,
        }
    }

    /// Connects if needed and builds the request for `path` (relative to the SCIM root)
    /// with this connection's headers, the current credential and, on a body, the SCIM
    /// media type; with the credential's generation, for a renewal after a 401.
    async fn prepare(
        &mut self,
        method: &Method,
        path: &str,
        body: &Option<Bytes>,
        if_match: Option<&str>,
    ) -> Result<(Request<Full<Bytes>>, u64), TransportError> {
        if self.is_closed() {
            self.tx = None;
            self.connect().await?;
        }
        let token = self.ep.auth.token().await?;
        let req = self.request(
            method,
            path,
            body,
            if_match,
            token.as_ref().map(|t| &t.header),
        )?;
        Ok((req, token.as_ref().map_or(0, |t| t.generation)))
    }

    fn request(
        &self,
        method: &Method,
        path: &str,
        body: &Option<Bytes>,
        if_match: Option<&str>,
        token: Option<&HeaderValue>,
    ) -> Result<Request<Full<Bytes>>, TransportError> {
        let base = &self.ep.base;
        let mut req = Request::new(Full::new(body.clone().unwrap_or_default()));
        *req.method_mut() = method.clone();
        // HTTP/1.1 sends the origin form; HTTP/2 needs scheme and authority.
        *req.uri_mut() = match self.tx {
            Some(Sender::H2(_)) => base.uri(path)?,
            _ => {
                let mut s = String::with_capacity(base.prefix.len() + path.len() + 1);
                s.push_str(&base.prefix);
                s.push_str(path);
                if s.is_empty() {
                    s.push('/');
                }
                Uri::try_from(s)
                    .map_err(|e| TransportError::Other(format!("bad request path {path}: {e}")))?
            }
        };
        *req.headers_mut() = self.headers.clone();
        let h = req.headers_mut();
        if let Some(t) = token {
            h.insert(AUTHORIZATION, t.clone());
        }
        // A body is SCIM unless the endpoint's headers say otherwise (a token request's
        // form).
        if body.is_some() && !h.contains_key(CONTENT_TYPE) {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(urns::MEDIA_TYPE));
        }
        if let Some(m) = if_match {
            let v = HeaderValue::from_str(m)
                .map_err(|_| TransportError::Other(format!("bad ETag {m:?}")))?;
            h.insert(IF_MATCH, v);
        }
        Ok(req)
    }

    /// Hands `req` to the connection and waits for the answer's head. A request the
    /// connection never wrote (the server had closed it while it sat idle) goes once
    /// more on a fresh connection: nothing of it reached the server.
    async fn head(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, TransportError> {
        let host = self.ep.base.host.clone();
        let mut req = Some(req);
        for fresh in [false, true] {
            if fresh || self.is_closed() {
                self.tx = None;
                self.connect().await?;
            }
            let r = req.take().expect("a request to send");
            let tx = self.tx.as_mut().expect("connected above");
            let ready = match tx {
                Sender::H1(tx) => tx.ready().await,
                Sender::H2(tx) => tx.ready().await,
            };
            match ready {
                Ok(()) => {}
                // Closed before it took the request: nothing was written.
                Err(e) if e.is_closed() && !fresh => {
                    req = Some(r);
                    continue;
                }
                Err(e) => return Err(classify(&e, &host)),
            }
            let sent = match tx {
                Sender::H1(tx) => tx.try_send_request(r).await,
                Sender::H2(tx) => tx.try_send_request(r).await,
            };
            match sent {
                Ok(resp) => return Ok(resp),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh => req = Some(unsent),
                    _ => return Err(classify(e.error(), &host)),
                },
            }
        }
        unreachable!("the second try returns")
    }

    /// One exchange within the client's timeout; `sent` is set when the request is
    /// handed to the connection (a reconnect before it is send lag, not service time).
    async fn exchange_with(
        &mut self,
        method: &Method,
        path: &str,
        body: &Option<Bytes>,
        if_match: Option<&str>,
        sent: &mut Instant,
        keep: Keep,
    ) -> Result<(Reply, u64), TransportError> {
        let (req, generation) = self.prepare(method, path, body, if_match).await?;
        *sent = Instant::now();
        let timeout = self.ep.transport.timeout;
        let host = self.ep.base.host.clone();
        let mut closing = false;
        let work = async {
            let resp = self.head(req).await?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| classify(&e, &host))?
                .to_bytes();
            let status = parts.status.as_u16();
            // A server that closes after this answer (`Connection: close`, HTTP/1.0):
            // the connection is not handed back, or the next request would meet it
            // closing.
            if parts.version < hyper::Version::HTTP_11
                || parts
                    .headers
                    .get(CONNECTION)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
            {
                closing = true;
            }
            Ok::<_, TransportError>(match keep {
                // Status and body only: a benchmark's hot path reads no headers.
                Keep::Body => Reply {
                    status,
                    body,
                    ..Reply::default()
                },
                Keep::BodyAndHeaders => Reply::with_headers(status, &parts.headers, body),
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(r)) => {
                if closing {
                    self.tx = None;
                }
                Ok((r, generation))
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

    /// Sends one request (`path` relative to the SCIM root) and reads the whole answer,
    /// status and body: the benchmark's form. A 401 with renewable credentials renews
    /// the token for the requests that follow; this one is answered 401 (every attempt
    /// is a sample).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Reply, TransportError> {
        let mut sent = Instant::now();
        let (r, generation) = self
            .exchange_with(&method, path, &body, None, &mut sent, Keep::Body)
            .await?;
        if r.status == 401 && self.ep.auth.renewable() {
            let _ = self.ep.auth.renew_after_401(generation).await;
        }
        Ok(r)
    }

    /// One exchange with the headers an import reads; returns the credential's
    /// generation too, for a renewal after a 401 (the caller decides to resend).
    pub(crate) async fn exchange(
        &mut self,
        method: &Method,
        path: &str,
        body: &Option<Bytes>,
        if_match: Option<&str>,
        sent: &mut Instant,
    ) -> Result<(Reply, u64), TransportError> {
        self.exchange_with(method, path, body, if_match, sent, Keep::BodyAndHeaders)
            .await
    }

    /// A GET whose 2xx body goes to `sink` frame by frame instead of being held whole (a
    /// million-member group is a 70 MB answer); `sink` answers false to stop reading.
    /// Other answers are read whole: they are small error bodies the caller classifies.
    /// The timeout bounds the head and each wait for a frame, not the whole transfer,
    /// which a large answer may rightly outlast.
    pub(crate) async fn get_streamed<F, Fut>(
        &mut self,
        path: &str,
        sink: &mut F,
    ) -> Result<(Reply, u64), TransportError>
    where
        F: FnMut(Bytes) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let timeout = self.ep.transport.timeout;
        let host = self.ep.base.host.clone();
        let (req, generation) = self.prepare(&Method::GET, path, &None, None).await?;
        let outcome = async {
            let resp = tokio::time::timeout(timeout, self.head(req))
                .await
                .map_err(|_| TransportError::Timeout)??;
            let (parts, mut body) = resp.into_parts();
            let status = parts.status.as_u16();
            if !parts.status.is_success() {
                let bytes = tokio::time::timeout(timeout, body.collect())
                    .await
                    .map_err(|_| TransportError::Timeout)?
                    .map_err(|e| classify(&e, &host))?
                    .to_bytes();
                return Ok(Reply::with_headers(status, &parts.headers, bytes));
            }
            loop {
                let frame = tokio::time::timeout(timeout, body.frame())
                    .await
                    .map_err(|_| TransportError::Timeout)?;
                match frame {
                    None => break,
                    Some(Err(e)) => return Err(classify(&e, &host)),
                    Some(Ok(f)) => {
                        if let Ok(data) = f.into_data() {
                            if !sink(data).await {
                                // The rest of the answer is not read: this connection
                                // cannot carry another request.
                                self.drop_after_failure();
                                break;
                            }
                        }
                    }
                }
            }
            Ok(Reply::with_headers(status, &parts.headers, Bytes::new()))
        }
        .await;
        if outcome.is_err() {
            self.drop_after_failure();
        }
        outcome.map(|r| (r, generation))
    }
}
