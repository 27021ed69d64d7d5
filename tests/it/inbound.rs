//! `--dialect entra-inbound` against `serve --profile entra-inbound`: the Workday sample
//! goes in uploads of at most 50 users, each answered 202; a row counts as created only
//! once a status read confirms it, else it ends pending under its request id, and a
//! re-run with the state sends nothing for unchanged rows (it asks after the pending
//! requests instead).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use scimload::import::inbound::{self, InboundOptions};
use scimload::import::ingest::IngestOptions;
use scimload::import::run::ImportConfig;
use scimload::limits::Preset;
use scimload::mapping::presets;
use scimload::server::journal::Journal;
use scimload::server::{spawn, ServerConfig, ServerHandle};
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scimload-inbound-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("datasets/workday-1k.csv")
}

async fn server(
    delay: Duration,
    limits: scimload::limits::TargetLimits,
) -> (ServerHandle, Arc<Journal>) {
    let journal = Arc::new(Journal::default());
    let srv = spawn(
        ServerConfig {
            inbound_delay: Some(delay),
            rate_limits: Some(limits),
            journal: Some(journal.clone()),
            ..ServerConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    (srv, journal)
}

fn config(srv: &ServerHandle, state: &std::path::Path, failed: &std::path::Path) -> ImportConfig {
    ImportConfig {
        state: Some(state.to_path_buf()),
        failed: Some(failed.to_path_buf()),
        limits: Preset::EntraInbound.limits(),
        ..super::import::config(format!("{}/bulkUpload", srv.url()))
    }
}

fn uploads(j: &Journal) -> Vec<Value> {
    j.entries()
        .iter()
        .filter(|r| r.method == "POST" && r.target.ends_with("/bulkUpload"))
        .map(|r| {
            assert!(
                r.headers
                    .iter()
                    .any(|(k, v)| k == "content-type" && v.starts_with("application/scim+json")),
                "an upload without Content-Type application/scim+json"
            );
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect()
}

/// The Workday sample through the inbound dialect.
async fn import(cfg: &ImportConfig, opts: &InboundOptions) -> scimload::import::run::ImportSummary {
    let spec = presets::load("workday").unwrap();
    inbound::run(
        &sample(),
        &spec,
        &IngestOptions::default(),
        cfg,
        opts,
        |_| {},
    )
    .await
    .unwrap()
}

async fn user(srv: &ServerHandle, external_id: &str) -> Value {
    let c = scimload::client::ScimClient::new(&srv.url(), None, Duration::from_secs(5), 1).unwrap();
    let r = c
        .send(
            hyper::Method::GET,
            &format!("/Users?filter=externalId%20eq%20%22{external_id}%22"),
            None,
            None,
        )
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["totalResults"], 1, "{external_id}: {v}");
    v["Resources"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workday_sample_is_confirmed_row_by_row_and_a_rerun_sends_nothing() {
    let (srv, journal) = server(Duration::from_millis(300), Preset::EntraInbound.limits()).await;
    let (state, failed) = (tmp("confirmed.sqlite"), tmp("confirmed-failed.csv"));
    let cfg = config(&srv, &state, &failed);
    let opts = InboundOptions {
        wait: Duration::from_secs(30),
        ..InboundOptions::default()
    };
    let s = import(&cfg, &opts).await;
    assert_eq!(
        (s.rows, s.created, s.pending, s.failed, s.rejected),
        (1000, 1000, 0, 0, 0),
        "{}",
        s.human()
    );
    assert!(!s.incomplete());
    let i = s.inbound.as_ref().unwrap();
    assert_eq!((i.uploads_accepted, i.confirmed), (20, 1000));
    assert!(i.status_reads >= 20, "{i:?}");
    // Every upload a BulkRequest of at most 50 POST /Users, each user once.
    let sent = uploads(&journal);
    assert_eq!(sent.len(), 20);
    let mut ids = std::collections::HashSet::new();
    for u in &sent {
        let ops = u["Operations"].as_array().unwrap();
        assert!(ops.len() <= 50);
        for op in ops {
            assert_eq!(
                (op["method"].as_str(), op["path"].as_str()),
                (Some("POST"), Some("/Users"))
            );
            assert!(ids.insert(op["data"]["externalId"].as_str().unwrap().to_string()));
        }
    }
    assert_eq!(ids.len(), 1000);
    // What the mapping writes arrived: the enterprise extension, the manager as the
    // manager's externalId (the inbound job resolves it).
    let u = user(&srv, "E0100001").await;
    let ent = &u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ent["department"], "Retail Stores", "{u}");
    assert_eq!(ent["costCenter"], "CC-1045", "{u}");
    assert_eq!(ent["manager"]["value"], "E0100000", "{u}");
    assert_eq!(srv.state.inbox.as_ref().unwrap().counts(), (20, 20));

    // Again with the same state: nothing is sent.
    let before = journal.entries().len();
    let s2 = import(&cfg, &opts).await;
    assert_eq!(
        (s2.unchanged, s2.created, s2.pending),
        (1000, 0, 0),
        "{}",
        s2.human()
    );
    assert_eq!(journal.entries().len(), before, "the re-run sent requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_not_confirmed_in_time_end_pending_and_a_rerun_asks_after_their_requests() {
    // Processing takes 4 s; the import waits 0.5 s for outcomes.
    let (srv, journal) = server(Duration::from_secs(4), Preset::EntraInbound.limits()).await;
    let (state, failed) = (tmp("pending.sqlite"), tmp("pending-failed.csv"));
    let cfg = config(&srv, &state, &failed);
    let mut opts = InboundOptions {
        wait: Duration::from_millis(500),
        ..InboundOptions::default()
    };
    let s = import(&cfg, &opts).await;
    assert_eq!((s.created, s.pending), (0, 1000), "{}", s.human());
    assert!(s.incomplete(), "a 202 is not a created user");
    let i = s.inbound.clone().unwrap();
    assert_eq!(i.pending_requests.len(), 20);
    // pending.csv: every row with the id the server gave its upload.
    let text = std::fs::read_to_string(failed.with_file_name("pending.csv")).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1000);
    for row in &rows {
        assert!(i.pending_requests.iter().any(|q| q == &row[2]), "{row:?}");
    }
    let posts = uploads(&journal).len();
    assert_eq!(posts, 20);

    // Once processed, a re-run confirms them without uploading anything again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    opts.wait = Duration::from_secs(10);
    let s2 = import(&cfg, &opts).await;
    assert_eq!(
        (s2.created, s2.pending, s2.failed),
        (1000, 0, 0),
        "{}",
        s2.human()
    );
    assert_eq!(
        uploads(&journal).len(),
        posts,
        "the re-run uploaded rows again"
    );
    assert_eq!(s2.inbound.unwrap().uploads_accepted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_keep_to_forty_a_second() {
    // Uploads of 5 users: 200 of them, a burst of 4, then the endpoint's 40/s.
    let limits = Preset::EntraInbound.limits().bursts_scaled(0.1);
    let (srv, journal) = server(Duration::from_millis(50), limits.clone()).await;
    let (state, failed) = (tmp("paced.sqlite"), tmp("paced-failed.csv"));
    let cfg = ImportConfig {
        limits: limits.clone(),
        ..config(&srv, &state, &failed)
    };
    let opts = InboundOptions {
        batch: 5,
        wait: Duration::from_secs(30),
        ..InboundOptions::default()
    };
    let s = import(&cfg, &opts).await;
    assert_eq!((s.created, s.pending), (1000, 0), "{}", s.human());
    assert_eq!(s.errors.get("429"), None, "{}", s.human());
    let mut at: Vec<std::time::Instant> = journal
        .entries()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.at)
        .collect();
    at.sort();
    assert_eq!(at.len(), 200);
    // From the 50th upload on (past the burst), arrivals at the endpoint's rate.
    let secs = at[199].duration_since(at[49]).as_secs_f64();
    let rate = 150.0 / secs;
    eprintln!("bulkUpload: {rate:.1} requests/s at the server");
    assert!((38.0..=42.0).contains(&rate), "{rate:.1} requests/s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_rows_nobody_can_ask_after_are_uploaded_again() {
    let (srv, journal) = server(Duration::from_secs(4), Preset::EntraInbound.limits()).await;
    let (state, failed) = (tmp("lost.sqlite"), tmp("lost-failed.csv"));
    let cfg = config(&srv, &state, &failed);
    let opts = InboundOptions {
        wait: Duration::from_millis(300),
        ..InboundOptions::default()
    };
    let s = import(&cfg, &opts).await;
    assert_eq!(s.pending, 1000, "{}", s.human());
    // As a service whose 202 names no status resource: the state knows no way to ask.
    rusqlite::Connection::open(&state)
        .unwrap()
        .execute("UPDATE users SET status_path = NULL", [])
        .unwrap();
    let opts = InboundOptions {
        wait: Duration::from_secs(15),
        ..InboundOptions::default()
    };
    let s2 = import(&cfg, &opts).await;
    assert_eq!((s2.created, s2.pending), (1000, 0), "{}", s2.human());
    assert_eq!(
        uploads(&journal).len(),
        40,
        "the rows were not uploaded again"
    );
}
