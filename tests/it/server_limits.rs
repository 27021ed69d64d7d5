//! The limits of `serve` over real sockets: slow request heads and idle connections are
//! closed, connections above the cap are refused at once, a request that takes too long
//! is answered 503.

use std::time::{Duration, Instant};

use scimload::server::faults::{FaultConfig, Latency};
use scimload::server::limits::ServerLimits;
use scimload::server::{spawn, ServerConfig, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server(limits: ServerLimits, faults: FaultConfig) -> ServerHandle {
    spawn(
        ServerConfig {
            limits,
            faults,
            ..ServerConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

fn short() -> ServerLimits {
    ServerLimits {
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        max_connections: 10_000,
        request_timeout: Duration::from_secs(10),
        keep_alive: true,
    }
}

/// Reads until the server closes the connection (Ok) or `bound` passes (Err), and
/// returns what was read.
async fn until_closed(c: &mut TcpStream, bound: Duration) -> Result<Vec<u8>, ()> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(end.into(), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(all),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => return Err(()),
        }
    }
}

const GET: &[u8] = b"GET /ServiceProviderConfig HTTP/1.1\r\nHost: x\r\n\r\n";

/// A new connection that gets an answer to one GET (kept open for the caller).
async fn answered(h: &ServerHandle) -> TcpStream {
    let mut c = TcpStream::connect(h.addr).await.unwrap();
    c.write_all(GET).await.unwrap();
    let mut buf = [0u8; 12];
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_request_lines_are_closed_after_the_header_timeout() {
    let h = server(short(), FaultConfig::default()).await;
    // 1,000 connections that send half a request line and then nothing.
    let mut conns = Vec::new();
    for _ in 0..1000 {
        let mut c = TcpStream::connect(h.addr).await.unwrap();
        c.write_all(b"GET /Us").await.unwrap();
        conns.push(c);
    }
    let t = Instant::now();
    for c in &mut conns {
        assert!(
            until_closed(c, Duration::from_secs(5)).await.is_ok(),
            "a half request line held its connection for 5 s"
        );
    }
    // Closed by the header timeout (300 ms), not the idle one, and well before 5 s.
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The server still answers.
    answered(&h).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_busy_ones_kept() {
    let h = server(short(), FaultConfig::default()).await;
    // A connection that answers one request and then says nothing: closed after the
    // idle timeout (600 ms), not the header timeout (300 ms).
    let mut idle = TcpStream::connect(h.addr).await.unwrap();
    idle.write_all(GET).await.unwrap();
    let t = Instant::now();
    let got = until_closed(&mut idle, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(got.starts_with(b"HTTP/1.1 200"));
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(550) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // A connection opened and silent waits under the idle timeout too.
    let mut silent = TcpStream::connect(h.addr).await.unwrap();
    let t = Instant::now();
    until_closed(&mut silent, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(550),
        "{:?}",
        t.elapsed()
    );
    // One that sends a request every 200 ms stays open for 2 s, past both timeouts.
    let mut busy = TcpStream::connect(h.addr).await.unwrap();
    let mut buf = vec![0u8; 8192];
    for _ in 0..10 {
        busy.write_all(GET).await.unwrap();
        let n = busy.read(&mut buf).await.unwrap();
        assert!(
            n > 0 && buf.starts_with(b"HTTP/1.1 200"),
            "closed while in use"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_above_the_cap_are_refused_at_once() {
    let h = server(
        ServerLimits {
            max_connections: 5,
            ..ServerLimits::default()
        },
        FaultConfig::default(),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(answered(&h).await);
    }
    // The sixth: 503 and closed, without waiting for a slot.
    let mut c = TcpStream::connect(h.addr).await.unwrap();
    let t = Instant::now();
    let got = until_closed(&mut c, Duration::from_secs(2)).await.unwrap();
    assert!(
        got.starts_with(b"HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    // A slot freed is a slot for the next.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    answered(&h).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_time_limit_is_answered_503() {
    let h = server(
        ServerLimits {
            request_timeout: Duration::from_millis(200),
            ..ServerLimits::default()
        },
        FaultConfig {
            latency: Some(Latency::Fixed(Duration::from_secs(2))),
            ..FaultConfig::default()
        },
    )
    .await;
    let t = Instant::now();
    let r = reqwest::get(format!("{}/Users", h.url())).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("--request-timeout"),
        "{body}"
    );
    h.shutdown().await;
}

/// `--no-keep-alive`: every answer says `Connection: close` and the connection ends with
/// it; with keep-alive (the default) it stays open for the next request.
#[tokio::test]
async fn without_keep_alive_each_answer_closes_its_connection() {
    for keep_alive in [false, true] {
        let h = server(
            ServerLimits {
                keep_alive,
                ..short()
            },
            FaultConfig::default(),
        )
        .await;
        let mut c = TcpStream::connect(h.addr).await.unwrap();
        c.write_all(GET).await.unwrap();
        let got = until_closed(&mut c, Duration::from_millis(200)).await;
        match keep_alive {
            false => {
                let text = String::from_utf8_lossy(got.as_deref().expect("closed")).to_lowercase();
                assert!(
                    text.starts_with("http/1.1 200") && text.contains("connection: close"),
                    "{text}"
                );
            }
            true => assert!(got.is_err(), "a kept connection stays open"),
        }
    }
}
