//! The pooled SCIM client every command uses (import, cleanup, seeding, probe): the
//! base URL parsed once, the request headers built once (Accept, User-Agent, what
//! `--header` adds), the bearer token from the one [`Auth`], a 401 answered by one
//! renewal and one resend, and replies reduced to what the dispatcher needs (status,
//! SCIM error, Retry-After, ETag, Location) without parsing bodies it does not need.
//!
//! Its pool is a stack of idle [`Conn`]s — the connections a benchmark drives — taken
//! for one exchange and handed back; on HTTP/2 the requests share one connection as
//! streams.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, USER_AGENT};
use hyper::Method;

use super::auth::{Auth, Credentials, Secret};
use super::conn::{Conn, Endpoint, Negotiated};
use super::reply::Reply;
use super::tls::{TlsOptions, TlsSetupError};
use super::transport::{BaseUrl, HttpVersion, Transport, TransportError, UrlError};
use crate::metrics::sample::Timing;
use crate::scim::urns;

/// How to reach a target: TLS, HTTP version, credentials, extra headers, timeout.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub tls: TlsOptions,
    pub version: HttpVersion,
    pub credentials: Credentials,
    /// `--header 'Name: value'`, in order; a later one replaces an earlier one.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Bound on one request, connect included.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls: TlsOptions::default(),
            version: HttpVersion::Auto,
            credentials: Credentials::None,
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl ClientOptions {
    /// Plain defaults with a static token (tests, the embedded server).
    pub fn with_token(token: Option<&Secret>, timeout: Duration) -> Self {
        ClientOptions {
            credentials: token.map_or(Credentials::None, |t| Credentials::Static(t.clone())),
            timeout,
            ..ClientOptions::default()
        }
    }
}

/// Whether a header carries a credential, so it is shown as `***` wherever headers are
/// shown (results, messages).
pub fn is_credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "key",
        "password",
        "session",
        "signature",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Why a client cannot be built; each says what to change.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    Auth(#[from] TransportError),
}

/// A SCIM service provider at a base URL.
#[derive(Clone)]
pub struct ScimClient {
    inner: Arc<Inner>,
    /// Shared pacing that slows every request down when the target answers 429.
    throttle: Option<Arc<super::throttle::Throttle>>,
    /// The target's published limits (`--target-limits`, `--limit`): every request
    /// waits for the tokens of the buckets that count it, from the first one on.
    pacer: Option<Arc<crate::limits::Buckets>>,
}

struct Inner {
    ep: Arc<Endpoint>,
    options: ClientOptions,
    idle: Mutex<Idle>,
    /// Idle connections kept, at most.
    max_idle: usize,
}

/// Connections between two exchanges.
#[derive(Default)]
struct Idle {
    conns: Vec<Conn>,
    /// A stream handle on the HTTP/2 connection every request shares, once one is open.
    h2: Option<Conn>,
}

/// A connection idle this long is not trusted: servers and load balancers close idle
/// keep-alive connections after 5 s to a few minutes, and a request written into one
/// they are closing is lost with no answer.
const IDLE_MAX: Duration = Duration::from_secs(4);

impl fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimClient")
            .field("base", &self.inner.ep.base.text)
            .field("auth", &self.inner.ep.auth)
            .finish()
    }
}

impl ScimClient {
    /// A client for the SCIM root `base` (`https://host/scim/v2`) keeping up to
    /// `max_connections` connections open.
    pub fn connect(
        base: &str,
        opts: &ClientOptions,
        max_connections: usize,
    ) -> Result<Self, ClientError> {
        let base = BaseUrl::parse(base)?;
        let transport = Transport::new(&opts.tls, opts.version, opts.timeout)?;
        let auth = Auth::new(
            opts.credentials.clone(),
            matches!(opts.credentials, Credentials::OAuth(_)).then(|| transport.clone()),
        )?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(urns::MEDIA_TYPE));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("scimload/", env!("CARGO_PKG_VERSION"))),
        );
        for (k, v) in &opts.headers {
            let mut v = v.clone();
            v.set_sensitive(is_credential_header(k.as_str()));
            headers.insert(k.clone(), v);
        }
        Ok(ScimClient {
            inner: Arc::new(Inner {
                ep: Arc::new(Endpoint {
                    transport,
                    base,
                    headers,
                    auth,
                }),
                options: opts.clone(),
                idle: Mutex::new(Idle::default()),
                max_idle: max_connections.max(1),
            }),
            throttle: None,
            pacer: None,
        })
    }

    /// Plain defaults with an optional static token.
    pub fn new(
        base: &str,
        token: Option<&Secret>,
        timeout: Duration,
        max_connections: usize,
    ) -> Result<Self, ClientError> {
        Self::connect(
            base,
            &ClientOptions::with_token(token, timeout),
            max_connections,
        )
    }

    /// The client an import sends through: at most `max_connections`, under the
    /// target's published `limits` from the first request, and — with `adaptive` —
    /// slowed for everyone when the target answers 429 (the limits may be wrong or
    /// outdated). The throttle is returned for the summary's figures.
    pub fn paced(
        base: &str,
        opts: &ClientOptions,
        max_connections: usize,
        adaptive: bool,
        limits: &crate::limits::TargetLimits,
    ) -> Result<(Self, Arc<super::throttle::Throttle>), ClientError> {
        let client = Self::connect(base, opts, max_connections)?;
        let throttle = Arc::new(super::throttle::Throttle::default());
        let client = if adaptive {
            client.with_throttle(throttle.clone())
        } else {
            client
        };
        Ok((
            client.with_pacer(crate::limits::Buckets::pacing(limits)),
            throttle,
        ))
    }

    /// Paces every request of this client (and its clones) through `throttle`.
    pub fn with_throttle(mut self, throttle: Arc<super::throttle::Throttle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// Paces every request of this client (and its clones) under `buckets`.
    pub fn with_pacer(mut self, buckets: Option<Arc<crate::limits::Buckets>>) -> Self {
        self.pacer = buckets;
        self
    }

    /// Waits for the request's tokens under the target's limits.
    async fn pace(&self, method: &Method, path: &str, body: Option<&[u8]>) {
        if let Some(p) = &self.pacer {
            let op = crate::limits::classify_request(method, path, body);
            let members = match (p.counts_members, op, body) {
                (true, crate::metrics::Op::PatchMembers, Some(b)) => {
                    crate::limits::members_added(b)
                }
                _ => 0,
            };
            p.pace(op, members).await;
        }
    }

    pub fn base(&self) -> &str {
        &self.inner.ep.base.text
    }

    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.ep.base
    }

    pub fn auth(&self) -> &Arc<Auth> {
        &self.inner.ep.auth
    }

    /// A new connection to the target, not connected yet (a benchmark's own).
    pub fn new_conn(&self) -> Conn {
        Conn::new(self.inner.ep.clone())
    }

    /// An idle connection, or a new one: a stream on the shared HTTP/2 connection once
    /// there is one; closed and long-idle ones are let go.
    fn checkout(&self) -> Conn {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = idle.conns.pop() {
            if !c.is_closed()
                && (c.negotiated() == Some(Negotiated::Http2) || c.idle_since.elapsed() < IDLE_MAX)
            {
                return c;
            }
        }
        if let Some(h) = &idle.h2 {
            if !h.is_closed() {
                if let Some(s) = h.stream() {
                    return s;
                }
            }
            idle.h2 = None;
        }
        drop(idle);
        self.new_conn()
    }

    /// Hands a connection back after an exchange.
    fn checkin(&self, mut c: Conn) {
        if c.is_closed() {
            return;
        }
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.h2.is_none() {
            idle.h2 = c.stream();
        }
        if idle.conns.len() < self.inner.max_idle {
            c.idle_since = Instant::now();
            idle.conns.push(c);
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The headers every request carries (credentials marked sensitive).
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.ep.headers
    }

    /// How this client reaches its target, for results and reports: TLS verification,
    /// HTTP version, kind of credential, and the extra headers with credentials as `***`.
    pub fn describe(&self) -> serde_json::Value {
        let o = &self.inner.options;
        let tls = if !self.inner.ep.base.is_tls() {
            "none"
        } else if o.tls.insecure {
            "NOT VERIFIED (--insecure)"
        } else if o.tls.client_identity.is_some() {
            "verified, client certificate"
        } else {
            "verified"
        };
        let headers: serde_json::Map<String, serde_json::Value> = o
            .headers
            .iter()
            .map(|(k, v)| {
                let shown = if is_credential_header(k.as_str()) {
                    "***".to_string()
                } else {
                    v.to_str().unwrap_or("(binary)").to_string()
                };
                (k.as_str().to_string(), shown.into())
            })
            .collect();
        serde_json::json!({
            "http": o.version,
            "tls": tls,
            "insecure": o.tls.insecure,
            "credentials": o.credentials.kind(),
            "headers": headers,
        })
    }

    /// Gets the first token now (OAuth, token command), so a refused credential stops a
    /// command before anything is sent.
    pub async fn authenticate(&self) -> Result<(), TransportError> {
        self.inner.ep.auth.token().await.map(|_| ())
    }

    /// A GET whose 2xx body goes to `sink` frame by frame (see [`Conn::get_streamed`]),
    /// for answers too large to hold; the reply's body is empty then. Credentials, the
    /// renewal after a 401 and the throttle as for [`ScimClient::send`].
    pub async fn get_streamed<F, Fut>(
        &self,
        path: &str,
        mut sink: F,
    ) -> Result<Reply, TransportError>
    where
        F: FnMut(Bytes) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.pace(&Method::GET, path, None).await;
        if let Some(t) = &self.throttle {
            t.acquire().await;
        }
        let mut conn = self.checkout();
        let mut reply = None;
        for _ in 0..2 {
            let (r, generation) = conn.get_streamed(path, &mut sink).await?;
            let renew = r.status == 401 && self.inner.ep.auth.renew_after_401(generation).await?;
            reply = Some(r);
            if !renew {
                break;
            }
        }
        self.checkin(conn);
        let reply = reply.expect("one attempt at least");
        if let Some(t) = &self.throttle {
            t.record(reply.status == 429, Instant::now());
        }
        Ok(reply)
    }

    /// Sends one request; `path` is relative to the base (`/Users?filter=…`). A 401 with
    /// renewable credentials renews the token once and sends again; then a 401 is final.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        if_match: Option<&str>,
    ) -> Result<Reply, TransportError> {
        self.send_bytes(method, path, body.map(Bytes::from), if_match)
            .await
    }

    /// As [`ScimClient::send`], with a body that retries can share without copying.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        if_match: Option<&str>,
    ) -> Result<Reply, TransportError> {
        self.send_timed(method, path, body, if_match).await.0
    }

    /// As [`ScimClient::send_bytes`], with the attempt's times. Its intended send is the
    /// instant the target's limits and the throttle let it go: their waits are the pacing
    /// an import chose, not the server's latency; what follows (credentials, a free
    /// connection) is send lag.
    pub async fn send_timed(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        if_match: Option<&str>,
    ) -> (Result<Reply, TransportError>, Timing) {
        self.pace(&method, path, body.as_deref()).await;
        if let Some(t) = &self.throttle {
            t.acquire().await;
        }
        let intended = Instant::now();
        let mut sent = intended;
        let outcome = self
            .exchange_renewing(&method, path, &body, if_match, &mut sent)
            .await;
        let timing = Timing {
            intended,
            sent,
            done: Instant::now(),
            status: match &outcome {
                Ok(r) => Ok(r.status),
                Err(e) => Err(e.kind()),
            },
        };
        (outcome, timing)
    }

    /// One exchange, and once more after renewing credentials a 401 refused; `sent` is
    /// set when the request is handed to the connection.
    async fn exchange_renewing(
        &self,
        method: &Method,
        path: &str,
        body: &Option<Bytes>,
        if_match: Option<&str>,
        sent: &mut Instant,
    ) -> Result<Reply, TransportError> {
        let mut conn = self.checkout();
        let mut outcome = conn.exchange(method, path, body, if_match, sent).await;
        if let Ok((r, generation)) = &outcome {
            if r.status == 401 && self.inner.ep.auth.renew_after_401(*generation).await? {
                outcome = conn.exchange(method, path, body, if_match, sent).await;
            }
        }
        self.checkin(conn);
        let reply = outcome?.0;
        if let Some(t) = &self.throttle {
            t.record(reply.status == 429, Instant::now());
            // A service that says its limit is spent: nothing more until its reset.
            if let Some(d) = reply.exhausted.filter(|_| reply.is_success()) {
                t.pause(d);
            }
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_never_print_their_token() {
        let s = Secret::new("hunter2");
        let c = ScimClient::new("http://127.0.0.1:1", Some(&s), Duration::from_secs(1), 1).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(ScimClient::new(
            "http://x",
            Some(&Secret::new("a\nb")),
            Duration::from_secs(1),
            1
        )
        .is_err());
        assert!(is_credential_header("X-Api-Key") && !is_credential_header("User-Agent"));
    }
}
