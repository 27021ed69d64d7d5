//! `scimload serve`: the embedded SCIM 2.0 service provider.
//!
//! It is the default target of imports and benchmarks, a fault-injecting target for
//! testing clients, and a reference for how fast a SCIM server can be. [`app`] builds the
//! router (tests call it without a socket); [`spawn`] runs it on a listener with the
//! fault layer in front, which sits below axum so that it can drop connections outright.

pub mod auth;
pub mod bulk;
pub mod discovery;
pub mod faults;
pub mod handlers;
pub mod inbound;
pub mod journal;
pub mod limits;
pub mod members;
pub mod oauth;
pub mod order;
pub mod profile;
pub mod render;
pub mod service;
pub mod store;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::scim::error::ScimError;
use faults::{Action, FaultConfig, Faults};
use profile::Profile;
use store::{Kind, Store};

/// Everything `serve` was told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub profile: &'static Profile,
    /// Bearer token; `None` accepts anyone (allowed on loopback only).
    pub token: Option<String>,
    /// Invitation-style creation: POST answers 202 and the user appears after this delay.
    pub async_create: Option<Duration>,
    pub max_body: usize,
    pub bulk_max_operations: usize,
    pub bulk_max_payload: usize,
    pub faults: FaultConfig,
    /// Public base URL for `meta.location`; default: from the Host header.
    pub base_url: Option<String>,
    /// Keep a record of every request received (tests).
    pub journal: Option<Arc<journal::Journal>>,
    /// Serve HTTPS with this configuration (`--tls-cert`, `--tls-key`, `--client-ca`).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Speak HTTP/2 as well as HTTP/1.1 (`--http2`).
    pub http2: bool,
    /// Issue and accept short-lived OAuth tokens (`--oauth`).
    pub oauth: Option<Arc<oauth::Issuer>>,
    /// Header-read and idle timeouts, connection cap, per-request time limit.
    pub limits: limits::ServerLimits,
    /// No uniqueness on userName and externalId (`--allow-duplicates`).
    pub allow_duplicates: bool,
    /// Fraction of member adds answered as done and not kept (`--drop-members`).
    pub drop_members: f64,
    /// A service's published rate limits, enforced (`--profile slack|github-emu|…`):
    /// a request its buckets do not allow answers 429 with the headers that service
    /// sends.
    pub rate_limits: Option<crate::limits::TargetLimits>,
    /// `--profile entra-inbound`: an Entra inbound provisioning `/bulkUpload` endpoint
    /// that processes each upload this long after its 202.
    pub inbound_delay: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            profile: &profile::RFC,
            token: None,
            async_create: None,
            max_body: 10 << 20,
            bulk_max_operations: 1000,
            bulk_max_payload: 1 << 20,
            faults: FaultConfig::default(),
            base_url: None,
            journal: None,
            tls: None,
            http2: false,
            oauth: None,
            limits: limits::ServerLimits::default(),
            allow_duplicates: false,
            drop_members: 0.0,
            rate_limits: None,
            inbound_delay: None,
        }
    }
}

/// Shared server state.
pub struct App {
    pub cfg: ServerConfig,
    pub store: Store,
    /// The uploads of the emulated inbound provisioning endpoint.
    pub inbox: Option<Arc<inbound::Inbox>>,
    /// A service's cap on requests in flight (`--profile okta`: 75 org-wide).
    pub in_flight_cap: Option<InFlightCap>,
}

/// Requests in flight at most, as Okta limits them (a concurrency limit, not a rate):
/// one over it answers 429 at once.
#[derive(Debug)]
pub struct InFlightCap {
    pub limit: usize,
    slots: Arc<tokio::sync::Semaphore>,
    /// The most requests that were in flight at once (tests compare it with the limit).
    pub peak: std::sync::atomic::AtomicUsize,
}

impl InFlightCap {
    fn new(limit: usize) -> Self {
        InFlightCap {
            limit,
            slots: Arc::new(tokio::sync::Semaphore::new(limit.max(1))),
            peak: Default::default(),
        }
    }

    /// A slot for one request, held until it is answered; `None` when all are taken.
    fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let p = self.slots.clone().try_acquire_owned().ok()?;
        let busy = self.limit - self.slots.available_permits();
        self.peak
            .fetch_max(busy, std::sync::atomic::Ordering::Relaxed);
        Some(p)
    }
}

impl App {
    pub fn new(cfg: ServerConfig) -> Arc<Self> {
        let store = Store::lax(cfg.allow_duplicates, cfg.drop_members, cfg.faults.seed);
        let inbox = cfg.inbound_delay.map(inbound::Inbox::new);
        let in_flight_cap = cfg
            .rate_limits
            .as_ref()
            .and_then(|l| l.max_in_flight)
            .map(InFlightCap::new);
        Arc::new(App {
            cfg,
            store,
            inbox,
            in_flight_cap,
        })
    }
}

macro_rules! resource_routes {
    ($router:expr, $path:literal, $kind:expr) => {
        $router
            .route(
                $path,
                get(|s: State<Arc<App>>, r: Request| handlers::list($kind, s, r))
                    .post(|s: State<Arc<App>>, r: Request| handlers::create($kind, s, r)),
            )
            .route(
                concat!($path, "/.search"),
                post(|s: State<Arc<App>>, r: Request| handlers::search($kind, s, r)),
            )
            .route(
                concat!($path, "/{id}"),
                get(|Path(id): Path<String>, s: State<Arc<App>>, r: Request| {
                    handlers::get_one($kind, id, s, r)
                })
                .put(|Path(id): Path<String>, s: State<Arc<App>>, r: Request| {
                    handlers::replace($kind, id, s, r)
                })
                .patch(|Path(id): Path<String>, s: State<Arc<App>>, r: Request| {
                    handlers::patch($kind, id, s, r)
                })
                .delete(|Path(id): Path<String>, s: State<Arc<App>>, r: Request| {
                    handlers::delete($kind, id, s, r)
                }),
            )
    };
}

/// The SCIM router with its state, authentication included, faults not.
pub fn app(state: Arc<App>) -> Router {
    let r = Router::new();
    let r = resource_routes!(r, "/Users", Kind::User);
    let r = resource_routes!(r, "/Groups", Kind::Group);
    r.route("/.search", post(handlers::root_search))
        .route("/Bulk", post(handlers::bulk))
        .route("/bulkUpload", post(inbound::upload))
        .route("/bulkUpload/{id}", get(inbound::status))
        .route(
            "/servicePrincipals/{sp}/synchronization/jobs/{job}/bulkUpload",
            post(inbound::upload_graph),
        )
        .route("/ServiceProviderConfig", get(discovery::spc))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route("/oauth2/token", post(oauth::token))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(|| async {
            ScimError::new(
                405,
                None,
                "method not allowed on this endpoint (RFC 7644 §3.2)",
            )
            .into_response()
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}

fn rejection(status: u16, retry_after: Duration, profile: &Profile) -> Response {
    // Whole seconds, rounded up (RFC 9110 §10.2.3); 0 means "retry now".
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let detail = if status == 429 {
        format!("{}; retry after {secs} s", profile.throttle_detail)
    } else {
        "service temporarily unavailable; retry later".to_string()
    };
    let mut r = ScimError::new(status, None, detail).into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// A request over a published limit: 429, `Retry-After` in whole seconds, and the
/// `X-RateLimit-*` headers GitHub sends (Slack sends `Retry-After` alone; clients that
/// read either find what they expect).
fn rate_limited(wait: Duration, limits: &str) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        + secs;
    let mut r = ScimError::new(
        429,
        None,
        format!("rate limited ({limits} limits); retry after {secs} s"),
    )
    .into_response();
    for (name, value) in [
        ("retry-after", secs.to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-reset", reset.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(name, v);
        }
    }
    r
}

/// The error returned to hyper to make it close a connection without answering.
#[derive(Debug)]
struct DroppedByFault;
impl std::fmt::Display for DroppedByFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for DroppedByFault {}

/// A running server.
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub state: Arc<App>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// `http://127.0.0.1:PORT` (`https://` with TLS)
    pub fn url(&self) -> String {
        let scheme = if self.state.cfg.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s), and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves until [`ServerHandle::shutdown`].
pub async fn spawn(cfg: ServerConfig, addr: SocketAddr) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = App::new(cfg);
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, state.clone(), async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    }));
    Ok(ServerHandle {
        addr,
        state,
        shutdown: tx,
        task,
    })
}

/// Accepts connections until `shutdown` completes, then drains them.
pub async fn serve(
    listener: TcpListener,
    state: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let router = app(state.clone());
    let faults = state
        .cfg
        .faults
        .is_active()
        .then(|| Arc::new(Faults::new(state.cfg.faults.clone())));
    let buckets = state
        .cfg
        .rate_limits
        .as_ref()
        .and_then(|l| crate::limits::Buckets::new(l).map(|b| (b, l.name.clone())));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let tls = state.cfg.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let lim = state.cfg.limits;
    let slots = Arc::new(tokio::sync::Semaphore::new(lim.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => { tokio::time::sleep(Duration::from_millis(10)).await; continue; }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Above --max-connections: refused at once, never queued.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if tls.is_none() {
                tokio::spawn(refuse_connection(stream));
            }
            continue;
        };
        let conn = limits::ConnState::new();
        let stream = limits::Watched::new(stream, conn.clone());
        let router = router.clone();
        let faults = faults.clone();
        let profile = state.cfg.profile;
        let journal = state.cfg.journal.clone();
        let buckets = buckets.clone();
        let svc_conn = conn.clone();
        let app = state.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let router = router.clone();
            let faults = faults.clone();
            let journal = journal.clone();
            let buckets = buckets.clone();
            let in_flight = svc_conn.request();
            let state = app.clone();
            let handle = async move {
                let mut req = req.map(Body::new);
                // Held until the answer is written: what a concurrency limit counts.
                let _slot = match &state.in_flight_cap {
                    Some(cap) if !auth::is_open(req.uri().path()) => match cap.admit() {
                        Some(slot) => Some(slot),
                        None => {
                            return Ok(rate_limited(
                                Duration::from_secs(1),
                                &format!(
                                    "{} concurrency ({} in flight)",
                                    state
                                        .cfg
                                        .rate_limits
                                        .as_ref()
                                        .map_or("", |l| l.name.as_str()),
                                    cap.limit
                                ),
                            ))
                        }
                    },
                    _ => None,
                };
                if let Some((b, name)) = buckets
                    .as_ref()
                    .filter(|_| !auth::is_open(req.uri().path()))
                {
                    let path = req
                        .uri()
                        .path_and_query()
                        .map_or("", |p| p.as_str())
                        .to_string();
                    let op = crate::limits::classify(req.method(), &path);
                    let members = if b.counts_members && op == crate::metrics::Op::PatchMembers {
                        let (parts, body) = req.into_parts();
                        let bytes = http_body_util::BodyExt::collect(body)
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        let n = crate::limits::members_added(&bytes);
                        req = hyper::Request::from_parts(parts, Body::from(bytes));
                        n
                    } else {
                        0
                    };
                    let wait = b.take(op, members, true);
                    if !wait.is_zero() {
                        return Ok(rate_limited(wait, name));
                    }
                }
                if let Some(f) = faults.as_ref().filter(|f| {
                    !auth::is_open(req.uri().path())
                        && (f.cfg.only.is_none() || {
                            let path = req.uri().path_and_query().map_or("", |p| p.as_str());
                            f.applies_to(crate::limits::classify(req.method(), path))
                        })
                }) {
                    match f.apply().await {
                        Action::Proceed => {}
                        Action::Drop => return Err(DroppedByFault),
                        // Applied, then the answer lost: what a client's
                        // lookup-before-resend exists for.
                        Action::LoseAnswer => {
                            let req = req.map(Body::new);
                            let _ = router.oneshot(req).await;
                            return Err(DroppedByFault);
                        }
                        Action::Reject(status) => {
                            return Ok(rejection(status, f.cfg.retry_after, profile))
                        }
                    }
                }
                let req = match &journal {
                    Some(j) => {
                        let (parts, body) = req.into_parts();
                        let bytes = http_body_util::BodyExt::collect(body)
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        j.push(journal::Received {
                            at: std::time::Instant::now(),
                            method: parts.method.to_string(),
                            target: parts
                                .uri
                                .path_and_query()
                                .map_or("", |p| p.as_str())
                                .to_string(),
                            body: bytes.clone(),
                            version: match parts.version {
                                hyper::Version::HTTP_2 => "HTTP/2",
                                _ => "HTTP/1.1",
                            },
                            headers: parts
                                .headers
                                .iter()
                                .map(|(k, v)| {
                                    let v = if k == header::AUTHORIZATION {
                                        "***".to_string()
                                    } else {
                                        String::from_utf8_lossy(v.as_bytes()).into_owned()
                                    };
                                    (k.as_str().to_string(), v)
                                })
                                .collect(),
                        });
                        hyper::Request::from_parts(parts, Body::from(bytes))
                    }
                    None => req.map(Body::new),
                };
                let resp: Result<Response, Infallible> = router.oneshot(req).await;
                Ok(resp.unwrap_or_else(|e| match e {}))
            };
            async move {
                let _in_flight = in_flight;
                // --request-timeout: fault delays, body read and handling together.
                match tokio::time::timeout(lim.request_timeout, handle).await {
                    Ok(r) => r,
                    Err(_) => Ok(ScimError::new(
                        503,
                        None,
                        format!(
                            "the request took longer than this server's limit of {:?} (--request-timeout); retry, or send less per request",
                            lim.request_timeout
                        ),
                    )
                    .into_response()),
                }
            }
        });
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let http2 = state.cfg.http2;
        let keep_alive = lim.keep_alive;
        tokio::spawn(async move {
            let _slot = slot;
            // The handshake runs in the connection's task, so a slow or broken client
            // never holds up the accept loop; it counts against --header-timeout.
            let dog = limits::watchdog(conn.clone(), lim);
            match tls {
                Some(acceptor) => {
                    let s = tokio::select! {
                        s = acceptor.accept(stream) => s,
                        _ = dog => return,
                    };
                    if let Ok(s) = s {
                        conn.handshake_done(s.get_ref().1.alpn_protocol() == Some(b"h2"));
                        let dog = limits::watchdog(conn, lim);
                        serve_connection(TokioIo::new(s), svc, (http2, keep_alive), watcher, dog)
                            .await;
                    }
                }
                None => {
                    serve_connection(TokioIo::new(stream), svc, (http2, keep_alive), watcher, dog)
                        .await
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// Serves one connection: HTTP/1.1 only, or with `http2` whichever the client speaks
/// (hyper-util reads the h2 preface; on TLS, ALPN has already settled it).
async fn serve_connection<I, S>(
    io: I,
    svc: S,
    (http2, keep_alive): (bool, bool),
    watcher: hyper_util::server::graceful::Watcher,
    watchdog: impl Future<Output = &'static str>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = Response>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A connection that breaks a limit is dropped, which closes it.
    if http2 {
        let mut b =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        b.http1().keep_alive(keep_alive);
        let conn = b.serve_connection(io, svc);
        tokio::select! {
            _ = watcher.watch(conn) => {}
            _ = watchdog => {}
        }
    } else {
        let mut b = hyper::server::conn::http1::Builder::new();
        let conn = b.keep_alive(keep_alive).serve_connection(io, svc);
        tokio::select! {
            _ = watcher.watch(conn) => {}
            _ = watchdog => {}
        }
    }
}

/// Answers a connection above `--max-connections` with 503 and closes it (plain HTTP;
/// a TLS connection is closed without a word, as nothing can be said before a
/// handshake).
async fn refuse_connection(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(REFUSED).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
