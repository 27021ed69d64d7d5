//! The limits a real deployment of a SCIM endpoint needs, so that slow or idle clients
//! cannot hold the server's connections forever (1,000 connections that sent half a
//! request line used to stay open indefinitely):
//!
//! - a header-read timeout: a request's head must be complete within it of its first
//!   byte (a TLS handshake, likewise, within it of the ClientHello) — the slowloris case;
//! - an idle timeout: a connection with no request in flight is closed after it has been
//!   silent this long (a pool's pre-opened connection waits under this one, not the
//!   header timeout);
//! - a maximum number of connections: the ones above it are answered 503 (plain HTTP) or
//!   closed at once, never queued without bound;
//! - a per-request time limit: a request whose handling (body read included) takes longer
//!   is answered 503.
//!
//! hyper's own header timeout starts when it waits for a head, idle time included, so it
//! cannot tell the two apart; the connection's reads, writes and requests are watched
//! here instead, by one timer task per connection that closes it by dropping it.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `serve --header-timeout`, `--idle-timeout`, `--max-connections`, `--request-timeout`,
/// `--no-keep-alive`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub request_timeout: Duration,
    /// Keep HTTP/1.1 connections open between requests; off, every answer says
    /// `Connection: close` and the connection ends with it.
    pub keep_alive: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            request_timeout: Duration::from_secs(60),
            keep_alive: true,
        }
    }
}

/// The HTTP/2 connection preface (RFC 9113 §3.4): a prior-knowledge h2 client's first
/// bytes. HTTP/2 has no request line to time out on; its idle time still counts.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// What one connection is doing, shared by its reader and writer, its requests and its
/// watchdog. Only relaxed atomics on the byte path, no lock and no clock read per read
/// or write: the watchdog counts its own ticks instead.
#[derive(Debug, Default)]
pub struct ConnState {
    /// Reads and writes so far; the watchdog sees whether it moved since its last tick.
    activity: AtomicU64,
    in_flight: AtomicUsize,
    /// Bytes of a request head (or of a TLS handshake) have come and no request started.
    head_pending: AtomicBool,
    h2: AtomicBool,
    /// The first read has been looked at for the HTTP/2 preface.
    seen_first: AtomicBool,
}

impl ConnState {
    /// A connection that has just opened.
    pub fn new() -> Arc<Self> {
        Arc::new(ConnState::default())
    }

    /// A request's head has arrived; the guard marks its end when dropped (answered or
    /// cancelled).
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_pending.store(false, Ordering::Relaxed);
        self.activity.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn read(&self, bytes: &[u8]) {
        self.activity.fetch_add(1, Ordering::Relaxed);
        // A load first: the swap (a read-modify-write) only on the connection's first read.
        if !self.seen_first.load(Ordering::Relaxed)
            && !self.seen_first.swap(true, Ordering::Relaxed)
            && bytes.starts_with(H2_PREFACE)
        {
            self.h2.store(true, Ordering::Relaxed);
        }
        if self.in_flight.load(Ordering::Relaxed) == 0 && !self.h2.load(Ordering::Relaxed) {
            self.head_pending.store(true, Ordering::Relaxed);
        }
    }

    /// The TLS handshake is done (`h2`: ALPN chose HTTP/2, which has no request line to
    /// wait for); the first request's bytes start the header timer again.
    pub fn handshake_done(&self, h2: bool) {
        self.h2.store(h2, Ordering::Relaxed);
        self.head_pending.store(false, Ordering::Relaxed);
        // What follows is encrypted: no preface to look for below TLS.
        self.seen_first.store(true, Ordering::Relaxed);
    }

    fn wrote(&self) {
        self.activity.fetch_add(1, Ordering::Relaxed);
    }
}

/// One request in flight on a connection.
pub struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.activity.fetch_add(1, Ordering::Relaxed);
    }
}

/// Resolves when the connection has broken a limit, with the reason. It wakes four
/// times per the shorter timeout (at most once a second), so a limit holds to within a
/// quarter of itself.
pub async fn watchdog(state: Arc<ConnState>, limits: ServerLimits) -> &'static str {
    let tick = (limits.header_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut seen = state.activity.load(Ordering::Relaxed);
    let (mut idle, mut heading) = (Duration::ZERO, Duration::ZERO);
    loop {
        tokio::time::sleep(tick).await;
        let now = state.activity.load(Ordering::Relaxed);
        let busy = state.in_flight.load(Ordering::Relaxed) > 0;
        idle = if now != seen || busy {
            Duration::ZERO
        } else {
            idle + tick
        };
        seen = now;
        heading = if state.head_pending.load(Ordering::Relaxed) && !busy {
            heading + tick
        } else {
            Duration::ZERO
        };
        if heading > limits.header_timeout {
            return "no complete request head within --header-timeout";
        }
        if idle > limits.idle_timeout {
            return "idle for --idle-timeout";
        }
    }
}

/// A connection's byte stream (below TLS, so a stalled handshake counts too), reporting
/// its reads and writes to its [`ConnState`].
pub struct Watched<T> {
    inner: T,
    state: Arc<ConnState>,
}

impl<T> Watched<T> {
    pub fn new(inner: T, state: Arc<ConnState>) -> Self {
        Watched { inner, state }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                self.state.read(&new[..new.len().min(H2_PREFACE.len())]);
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.state.wrote();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.state.wrote();
        }
        r
    }
}
