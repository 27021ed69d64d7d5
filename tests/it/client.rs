//! The client's retry policy against the embedded server's faults.

use std::time::{Duration, Instant};

use crate::harness::Srv;
use scimload::client::retry::execute;
use scimload::client::{Decision, RetryPolicy, ScimClient, Secret};
use scimload::server::faults::FaultConfig;
use scimload::server::ServerConfig;

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 12,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

async fn faulty(f: FaultConfig) -> (Srv, ScimClient) {
    let s = Srv::start(ServerConfig {
        faults: f,
        token: Some("t0k".into()),
        ..ServerConfig::default()
    })
    .await;
    let c = ScimClient::new(
        &s.base,
        Some(&Secret::new("t0k")),
        Duration::from_secs(5),
        8,
    )
    .unwrap();
    (s, c)
}

#[tokio::test]
async fn transient_failures_are_retried_until_they_pass() {
    let (_s, c) = faulty(FaultConfig {
        error_503: 0.3,
        drop: 0.1,
        seed: 9,
        retry_after: Duration::from_secs(0),
        ..Default::default()
    })
    .await;
    let mut retried = 0;
    for i in 0..100 {
        let e = execute(
            &c,
            &fast(),
            reqwest::Method::GET,
            "/Users?count=1",
            None,
            false,
            i,
        )
        .await;
        assert_eq!(e.decision, Decision::Done, "request {i}: {:?}", e.outcome);
        assert_eq!(e.outcome.as_ref().unwrap().status, 200);
        retried += (e.attempts > 1) as u32;
    }
    assert!(
        retried > 20,
        "faults were injected: {retried} requests needed retries"
    );
}

#[tokio::test]
async fn throttling_honours_retry_after() {
    let (_s, c) = faulty(FaultConfig {
        error_429: 1.0,
        retry_after: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let t = Instant::now();
    let p = RetryPolicy {
        max_attempts: 2,
        ..fast()
    };
    let e = execute(&c, &p, reqwest::Method::GET, "/Users", None, false, 1).await;
    assert_eq!(
        (e.decision, e.attempts, e.throttled),
        (Decision::GiveUp, 2, 1)
    );
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "waited {:?}, Retry-After said 1 s",
        t.elapsed()
    );
}

#[tokio::test]
async fn a_dropped_create_is_looked_up_not_resent() {
    let (_s, c) = faulty(FaultConfig {
        drop: 1.0,
        ..Default::default()
    })
    .await;
    let body = br#"{"userName":"once"}"#;
    let e = execute(
        &c,
        &fast(),
        reqwest::Method::POST,
        "/Users",
        Some(body),
        true,
        1,
    )
    .await;
    assert_eq!((e.decision, e.attempts), (Decision::LookUpFirst, 1));
}

#[tokio::test]
async fn conflicts_and_client_errors_are_final() {
    let (_s, c) = faulty(FaultConfig::default()).await;
    let body = br#"{"userName":"dup"}"#;
    let first = execute(
        &c,
        &fast(),
        reqwest::Method::POST,
        "/Users",
        Some(body),
        true,
        1,
    )
    .await;
    assert_eq!(first.outcome.as_ref().unwrap().status, 201);
    assert!(first.outcome.as_ref().unwrap().location.is_some());
    let again = execute(
        &c,
        &fast(),
        reqwest::Method::POST,
        "/Users",
        Some(body),
        true,
        1,
    )
    .await;
    assert_eq!((again.decision, again.attempts), (Decision::Conflict, 1));
    assert_eq!(
        again.outcome.unwrap().scim_type().as_deref(),
        Some("uniqueness")
    );
    let bad = execute(
        &c,
        &fast(),
        reqwest::Method::POST,
        "/Users",
        Some(b"{}"),
        true,
        1,
    )
    .await;
    assert_eq!(
        (bad.decision, bad.attempts, bad.outcome.unwrap().status),
        (Decision::Done, 1, 400)
    );
    let unauth = ScimClient::new(c.base(), None, Duration::from_secs(5), 1).unwrap();
    let e = execute(
        &unauth,
        &fast(),
        reqwest::Method::GET,
        "/Users",
        None,
        false,
        1,
    )
    .await;
    assert_eq!(e.outcome.unwrap().status, 401);
}
