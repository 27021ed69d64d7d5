//! Each fault mode of the embedded server, over a real socket.

use std::time::{Duration, Instant};

use crate::harness::Srv;
use scimload::server::faults::{FaultConfig, Latency, Stall};
use scimload::server::ServerConfig;

async fn with(f: FaultConfig) -> Srv {
    Srv::start(ServerConfig {
        faults: f,
        ..ServerConfig::default()
    })
    .await
}

async fn statuses(s: &Srv, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            s.http
                .get(format!("{}/Users", s.base))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0),
        );
    }
    out
}

#[tokio::test]
async fn added_latency_delays_every_request() {
    let s = with(FaultConfig {
        latency: Some(Latency::Fixed(Duration::from_millis(80))),
        ..Default::default()
    })
    .await;
    let t = Instant::now();
    assert_eq!(s.get("/Users").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(80));
    // Discovery is exempt, so a client can always learn the configuration.
    let t = Instant::now();
    s.get("/ServiceProviderConfig").await;
    assert!(t.elapsed() < Duration::from_millis(80));
}

#[tokio::test]
async fn a_fraction_of_503s_with_retry_after_reproducible_by_seed() {
    let cfg = FaultConfig {
        error_503: 0.3,
        seed: 42,
        ..Default::default()
    };
    let s = with(cfg.clone()).await;
    let a = statuses(&s, 300).await;
    let n503 = a.iter().filter(|&&c| c == 503).count();
    assert!((60..=120).contains(&n503), "{n503} of 300");
    assert!(a.iter().all(|&c| c == 200 || c == 503));
    let again = statuses(&with(cfg).await, 300).await;
    assert_eq!(a, again, "same seed, same sequence of faults");
    let r = with(FaultConfig {
        error_503: 1.0,
        ..Default::default()
    })
    .await
    .get("/Users")
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.body["status"], "503");
}

#[tokio::test]
async fn a_fraction_of_429s_carry_retry_after() {
    let s = with(FaultConfig {
        error_429: 0.5,
        retry_after: Duration::from_secs(3),
        ..Default::default()
    })
    .await;
    let st = statuses(&s, 100).await;
    let n = st.iter().filter(|&&c| c == 429).count();
    assert!((30..=70).contains(&n), "{n}");
    let r = with(FaultConfig {
        error_429: 1.0,
        retry_after: Duration::from_secs(3),
        ..Default::default()
    })
    .await
    .get("/Users")
    .await;
    assert_eq!(
        (r.status, r.headers["retry-after"].to_str().unwrap()),
        (429, "3")
    );
}

#[tokio::test]
async fn rate_cap_answers_429_above_the_cap() {
    let s = with(FaultConfig {
        rate_cap: Some(100.0),
        ..Default::default()
    })
    .await;
    let t = Instant::now();
    let mut ok = 0;
    let mut limited = 0;
    // Offer as fast as one connection goes for 1.5 s.
    while t.elapsed() < Duration::from_millis(1500) {
        match s
            .http
            .get(format!("{}/Users?count=0", s.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
        {
            200 => ok += 1,
            429 => limited += 1,
            c => panic!("unexpected {c}"),
        }
    }
    let rate = ok as f64 / t.elapsed().as_secs_f64();
    assert!(limited > 0, "the cap was never hit");
    assert!(
        (80.0..=115.0).contains(&rate),
        "admitted {rate:.0}/s against a cap of 100/s"
    );
}

#[tokio::test]
async fn dropped_connections_get_no_answer() {
    let s = with(FaultConfig {
        drop: 1.0,
        ..Default::default()
    })
    .await;
    let r = s.http.get(format!("{}/Users", s.base)).send().await;
    let e = r.expect_err("a dropped connection must not produce a response");
    assert!(!e.is_status());
    let s = with(FaultConfig {
        drop: 0.2,
        seed: 3,
        ..Default::default()
    })
    .await;
    let st = statuses(&s, 200).await;
    let dropped = st.iter().filter(|&&c| c == 0).count();
    assert!((20..=60).contains(&dropped), "{dropped} of 200 dropped");
}

#[tokio::test]
async fn a_stall_holds_every_answer_until_it_ends() {
    let s = with(FaultConfig {
        stalls: vec![Stall {
            at: Duration::from_millis(300),
            duration: Duration::from_millis(1000),
        }],
        ..Default::default()
    })
    .await;
    let t0 = Instant::now();
    assert_eq!(s.get("/Users").await.status, 200);
    assert!(t0.elapsed() < Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(400).saturating_sub(t0.elapsed())).await;
    let t = Instant::now();
    assert_eq!(s.get("/Users").await.status, 200);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(700),
        "answered after {waited:?} during a stall"
    );
    let t = Instant::now();
    s.get("/Users").await;
    assert!(t.elapsed() < Duration::from_millis(200), "the stall ended");
}
