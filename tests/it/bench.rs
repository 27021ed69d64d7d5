//! `scimload bench` against the embedded server on port 0: the server's journal says
//! what was really sent, the histograms must count exactly that, and latency must be
//! measured from the intended send (coordinated omission), a rate cap must be found by
//! the knee search, and shards must merge into what one run measures.

use std::sync::Arc;
use std::time::Duration;

use scimload::bench::engine::Model;
use scimload::bench::knee::KneeConfig;
use scimload::bench::scenario::{Kind, Params};
use scimload::bench::{self, BenchConfig, BenchSummary, Sweep};
use scimload::dispatch::schedule::{RateShape, Shard};
use scimload::metrics::threshold::Threshold;
use scimload::metrics::timeline::Timeline;
use scimload::server::faults::{FaultConfig, Latency, Stall};
use scimload::server::journal::{Journal, Received};
use scimload::server::{profile, spawn, ServerConfig, ServerHandle};

async fn server(faults: FaultConfig) -> (ServerHandle, Arc<Journal>) {
    let journal = Arc::new(Journal::default());
    let h = spawn(
        ServerConfig {
            faults,
            journal: Some(journal.clone()),
            ..ServerConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    (h, journal)
}

fn config(kind: Kind, base: &str) -> BenchConfig {
    BenchConfig {
        scenario: kind,
        params: Params {
            users: 200,
            group_size: 1000,
            member_batch: 100,
            ..Params::default()
        },
        paging_chosen: false,
        base_url: base.to_string(),
        client: Default::default(),
        timeout: Duration::from_secs(10),
        model: Model::Closed,
        connections: 4,
        streams: 1,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(20),
        max_requests: Some(300),
        shard: Shard::default(),
        run_id: "t1".into(),
        cleanup: false,
        knee: None,
        thresholds: Vec::new(),
        interval: Duration::from_secs(1),
        start_at: None,
        live: None,
    }
}

/// Requests received after seeding (which is not measured): those after the first
/// `seeded`, not counting the configuration read that opens every run.
fn measured(all: &[Received], seeded: usize) -> &[Received] {
    let start = usize::from(
        all.first()
            .is_some_and(|r| r.target == "/ServiceProviderConfig"),
    );
    &all[start + seeded..]
}

fn count(s: &BenchSummary, op: &str) -> u64 {
    s.operations.get(op).map_or(0, |o| o.requests)
}

async fn run(cfg: &BenchConfig, journal: &Journal) -> (BenchSummary, Timeline, Vec<Received>) {
    let (s, tl) = bench::run(cfg, None).await.expect("bench runs");
    (s, tl, journal.entries())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_update_send_what_they_count() {
    let (h, journal) = server(FaultConfig::default()).await;
    let (s, tl, all) = run(&config(Kind::Get, &h.url()), &journal).await;
    // 200 seeding POSTs, then exactly the 300 measured GETs by id.
    let m = measured(&all, 200);
    assert_eq!(m.len(), 300);
    assert!(m
        .iter()
        .all(|r| r.method == "GET" && r.target.starts_with("/Users/")));
    assert_eq!((count(&s, "get_user"), s.ok, s.errors), (300, 300, 0));
    let (from, to) = tl.span().unwrap();
    assert_eq!(tl.total("get_user.service", from, to).len(), 300);
    assert_eq!(tl.total("get_user.lag", from, to).len(), 300);

    journal.clear();
    let mut cfg = config(Kind::Update, &h.url());
    cfg.run_id = "t2".into();
    let (s, _, all) = run(&cfg, &journal).await;
    let m = measured(&all, 200);
    let puts = m.iter().filter(|r| r.method == "PUT").count();
    let patches: Vec<_> = m.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!((puts, patches.len()), (150, 150));
    assert_eq!(patches[0].json()["Operations"][0]["path"], "title");
    assert_eq!((count(&s, "put_user"), count(&s, "patch_user")), (150, 150));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_mix_covers_every_filter_shape() {
    let (h, journal) = server(FaultConfig::default()).await;
    let (s, _, all) = run(&config(Kind::Filter, &h.url()), &journal).await;
    let m = measured(&all, 200);
    assert_eq!(m.len(), 300);
    assert_eq!(count(&s, "filter_users"), 300);
    let decoded: Vec<String> = m
        .iter()
        .map(|r| {
            let q = r.target.split_once("filter=").unwrap().1;
            let q = q.split('&').next().unwrap();
            let bytes: Vec<u8> = {
                let b = q.as_bytes();
                let mut out = Vec::new();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'%' {
                        out.push(u8::from_str_radix(&q[i + 1..i + 3], 16).unwrap());
                        i += 3;
                    } else {
                        out.push(b[i]);
                        i += 1;
                    }
                }
                out
            };
            String::from_utf8(bytes).unwrap()
        })
        .collect();
    for shape in [
        "userName eq",
        "externalId eq",
        "userName sw",
        "displayName co",
        "emails[type eq \"work\" and value eq",
        " or externalId eq",
        "active eq true and",
        "missing.",
    ] {
        assert!(
            decoded.iter().any(|f| f.contains(shape)),
            "no filter with '{shape}' in {decoded:?}"
        );
    }
    // Every filter parses on the server: no 400s.
    assert_eq!(s.errors, 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paginate_walks_pages_by_index_and_by_cursor() {
    let (h, journal) = server(FaultConfig::default()).await;
    let mut cfg = config(Kind::Paginate, &h.url());
    cfg.params.page_size = 50;
    cfg.max_requests = Some(40);
    let (s, _, all) = run(&cfg, &journal).await;
    let m: Vec<_> = measured(&all, 200)
        .iter()
        .filter(|r| r.target.contains("count=50"))
        .collect();
    assert_eq!(m.len(), 40);
    // 200 users in pages of 50: startIndex 1, 51, 101, 151 in turn.
    for k in [1, 51, 101, 151] {
        assert!(m
            .iter()
            .any(|r| r.target.contains(&format!("startIndex={k}&"))));
    }
    assert_eq!(count(&s, "list_page"), 40);
    assert_eq!(
        s.curves["list_page.by_position"]
            .iter()
            .map(|p| p.requests)
            .sum::<u64>(),
        40
    );
    h.shutdown().await;

    // A cursor-only server (the entra-api profile): the walk follows nextCursor.
    let journal = Arc::new(Journal::default());
    let h = spawn(
        ServerConfig {
            profile: &profile::ENTRA_API,
            journal: Some(journal.clone()),
            ..ServerConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut cfg = config(Kind::Paginate, &h.url());
    cfg.params.page_size = 50;
    cfg.max_requests = Some(20);
    cfg.connections = 1;
    let (s, _, all) = run(&cfg, &journal).await;
    assert_eq!(s.params["paging"], "cursor");
    let pages: Vec<_> = all
        .iter()
        .filter(|r| r.target.contains("cursor="))
        .collect();
    assert_eq!(pages.len(), 20);
    assert!(pages[0].target.contains("cursor=&"));
    assert!(pages[1].target.contains("cursor=") && !pages[1].target.contains("cursor=&"));
    assert_eq!(s.errors, 0, "{:?}", s.operations);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_builds_and_empties_a_group_with_a_size_curve() {
    let (h, journal) = server(FaultConfig::default()).await;
    let mut cfg = config(Kind::GroupMembers, &h.url());
    cfg.max_requests = None;
    cfg.connections = 1;
    let (s, _, all) = run(&cfg, &journal).await;
    // 1000 users + 1 group seeded; then 10 adds of 100, 10 removes, and reads.
    let m = measured(&all, 1001);
    let adds: Vec<_> = m
        .iter()
        .filter(|r| r.method == "PATCH" && r.json()["Operations"][0]["op"] == "add")
        .collect();
    assert_eq!(adds.len(), 10);
    assert!(adds
        .iter()
        .all(|r| r.json()["Operations"][0]["value"].as_array().unwrap().len() == 100));
    let removes = m
        .iter()
        .filter(|r| r.method == "PATCH" && r.json()["Operations"][0]["op"] == "remove")
        .count();
    assert_eq!(removes, 10);
    assert_eq!(
        (
            count(&s, "patch_members"),
            count(&s, "remove_members"),
            count(&s, "get_group"),
            count(&s, "get_group_no_members")
        ),
        (10, 10, 11, 10)
    );
    assert!(m
        .iter()
        .any(|r| r.target.ends_with("excludedAttributes=members")));
    let curve = &s.curves["patch_members.by_group_size"];
    assert_eq!(curve.first().unwrap().x, 0);
    assert_eq!(curve.last().unwrap().x, 900);
    // The group ends empty: every member added was removed.
    let gid = m[0].target.rsplit('/').next().unwrap().to_string();
    let r = reqwest::get(format!("{}/Groups/{gid}", h.url()))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(v["members"].as_array().is_none_or(|a| a.is_empty()), "{v}");
    assert_eq!(s.errors, 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_mixed_count_every_request_and_cleanup_removes_them() {
    let (h, journal) = server(FaultConfig::default()).await;
    let mut cfg = config(Kind::Create, &h.url());
    cfg.cleanup = true;
    let (s, _, all) = run(&cfg, &journal).await;
    let posts = all.iter().filter(|r| r.method == "POST").count();
    let deletes = all.iter().filter(|r| r.method == "DELETE").count();
    assert_eq!((posts, deletes, count(&s, "create_user")), (300, 300, 300));
    let r = reqwest::get(format!("{}/Users?count=0", h.url()))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["totalResults"], 0);

    journal.clear();
    let mut cfg = config(Kind::Mixed, &h.url());
    cfg.run_id = "t3".into();
    cfg.max_requests = Some(1000);
    let (s, _, all) = run(&cfg, &journal).await;
    let total: u64 = s.operations.values().map(|o| o.requests).sum();
    assert_eq!(total, 1000);
    // A config read, seeding (200 POSTs and a count); the rest is the measured mix.
    assert_eq!(all.len(), 200 + 2 + 1000);
    for op in ["get_user", "filter_users", "create_user", "list_page"] {
        assert!(count(&s, op) > 0, "{op} missing from the mix");
    }
    assert!(count(&s, "put_user") + count(&s, "patch_user") > 0);
    h.shutdown().await;
}

/// The server stalls for 1 s in the middle of an open-model run at 200 requests/s for
/// 10 s. Measured from the intended send, the requests that waited behind the stall
/// push p99 past 0.5 s; measured from the actual send (the service time), only the few
/// requests on the wire during the stall are slow, and p99 stays small. A generator
/// that measured from the actual send would report the second figure as the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinated_omission_is_corrected() {
    let (h, _journal) = server(FaultConfig {
        stalls: vec![Stall {
            at: Duration::from_secs(5),
            duration: Duration::from_secs(1),
        }],
        ..FaultConfig::default()
    })
    .await;
    let mut cfg = config(Kind::Create, &h.url());
    cfg.model = Model::Open {
        shape: RateShape::Constant(200.0),
        poisson: None,
    };
    cfg.max_requests = None;
    cfg.duration = Duration::from_secs(10);
    let (s, _) = bench::run(&cfg, None).await.unwrap();
    let o = &s.operations["create_user"];
    assert_eq!(o.requests, 2000);
    assert!(
        o.response.p99_ms >= 500.0,
        "response p99 {} ms",
        o.response.p99_ms
    );
    assert!(
        o.response.max_ms >= 900.0,
        "response max {} ms",
        o.response.max_ms
    );
    assert!(
        o.service.p99_ms < 100.0,
        "service p99 {} ms",
        o.service.p99_ms
    );
    // The stall shows up as late starts, and the run says it fell behind.
    assert!(o.late_starts >= 100, "{}", o.late_starts);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knee_search_finds_the_rate_cap() {
    // A cap the machine sustains with room to spare while other tests run beside this
    // one, and steps (150, 300, 600, …) that do not land on the cap itself, where the
    // limiter's burst tolerance decides a step by chance.
    let cap = 500.0;
    let (h, _journal) = server(FaultConfig {
        rate_cap: Some(cap),
        ..FaultConfig::default()
    })
    .await;
    let mut cfg = config(Kind::Create, &h.url());
    cfg.connections = 16;
    cfg.knee = Some(Sweep {
        judge: KneeConfig {
            slo: Threshold::parse("p99<300ms").unwrap(),
            error_budget: 0.001,
            start_rate: 150.0,
            max_rate: 100_000.0,
            precision: 0.05,
            // This test is about the cap; it runs beside others on a shared machine,
            // where a debug build's send lag passes 1 ms now and then.
            max_send_lag_ms: 50.0,
        },
        step: Duration::from_secs(2),
        rates: None,
    });
    let (s, _) = bench::run(&cfg, None).await.unwrap();
    let k = s.knee.as_ref().unwrap();
    let found = k.max_sustainable_rate;
    assert!(
        (found - cap).abs() <= cap * 0.1,
        "found {found}/s for a cap of {cap}/s: {:#?}",
        k.steps
    );
    assert!(k
        .steps
        .iter()
        .any(|s| !s.passed && s.reason.contains("errors")));
    h.shutdown().await;
}

/// README's exit codes: a `--steps` run with a failing step, or a knee search where not
/// even the first rate holds, has not passed (exit 1); steps that all hold have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_steps_and_a_knee_with_no_sustainable_rate_do_not_pass() {
    let (h, _journal) = server(FaultConfig {
        latency: Some(Latency::Fixed(Duration::from_millis(30))),
        ..FaultConfig::default()
    })
    .await;
    let sweep = |slo: &str, rates: Option<Vec<f64>>| Sweep {
        judge: KneeConfig {
            slo: Threshold::parse(slo).unwrap(),
            error_budget: 0.001,
            start_rate: 50.0,
            max_rate: 200.0,
            precision: 0.25,
            max_send_lag_ms: 50.0,
        },
        step: Duration::from_secs(1),
        rates,
    };
    let mut cfg = config(Kind::Get, &h.url());
    cfg.connections = 16;
    // Every request takes 30 ms: p99<10ms fails each step, p99<300ms holds.
    cfg.knee = Some(sweep("p99<10ms", Some(vec![50.0, 100.0])));
    let (s, _) = bench::run(&cfg, None).await.unwrap();
    assert!(s.knee.as_ref().unwrap().steps.iter().all(|st| !st.passed));
    assert!(!s.passed(), "failing steps passed");
    cfg.knee = Some(sweep("p99<300ms", Some(vec![50.0, 100.0])));
    let (s, _) = bench::run(&cfg, None).await.unwrap();
    assert!(s.passed(), "{:#?}", s.knee);
    cfg.knee = Some(sweep("p99<10ms", None));
    let (s, _) = bench::run(&cfg, None).await.unwrap();
    let k = s.knee.as_ref().unwrap();
    assert!(!k.steps[0].passed && k.searched);
    assert!(!s.passed(), "a knee with no sustainable rate passed");
    h.shutdown().await;
}

/// One connection to a server that takes 30 ms a request keeps about 33 requests/s: at
/// 100/s the generator cannot send on time. That step is the generator's limit, not the
/// server's knee: the search ends there and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generator_that_cannot_keep_the_rate_is_not_the_servers_knee() {
    let (h, _journal) = server(FaultConfig {
        latency: Some(Latency::Fixed(Duration::from_millis(30))),
        ..FaultConfig::default()
    })
    .await;
    let mut cfg = config(Kind::Get, &h.url());
    cfg.connections = 1;
    cfg.knee = Some(Sweep {
        judge: KneeConfig {
            slo: Threshold::parse("p99<300ms").unwrap(),
            error_budget: 0.001,
            start_rate: 100.0,
            max_rate: 10_000.0,
            precision: 0.05,
            max_send_lag_ms: scimload::bench::knee::MAX_SEND_LAG_MS,
        },
        step: Duration::from_secs(1),
        rates: None,
    });
    let (s, _) = bench::run(&cfg, None).await.unwrap();
    let k = s.knee.as_ref().unwrap();
    assert_eq!(k.steps.len(), 1, "the search went on: {:#?}", k.steps);
    assert!(k.steps[0].generator_behind, "{:#?}", k.steps);
    assert!(k.steps[0]
        .reason
        .contains("the generator could not keep the rate"));
    assert_eq!(k.generator_limit, Some(100.0));
    assert!(k
        .verdict()
        .starts_with("unknown: the generator could not keep 100/s"));
    assert!(!s.passed());
    let human = s.human();
    assert!(human.contains("the generator could not keep"), "{human}");
    h.shutdown().await;
}

/// Two shards of 1/2 each, run at the same time, merged: the same request count as one
/// run carrying both halves, and histograms that agree within their precision (the
/// server adds a fixed 20 ms, so latencies are comparable between runs).
#[test]
fn shards_merge_into_one_run() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let h = rt
        .block_on(server(FaultConfig {
            latency: Some(Latency::Fixed(Duration::from_millis(20))),
            ..FaultConfig::default()
        }))
        .0;
    let base = h.url();
    let dir = std::env::temp_dir().join(format!("scimload-shards-{}", std::process::id()));
    let bin = env!("CARGO_BIN_EXE_scimload");
    let run = |shard: Option<&str>, out: &str| {
        let mut c = std::process::Command::new(bin);
        c.args([
            "bench",
            "get",
            "--target",
            &base,
            "--rate",
            "200",
            "--duration",
            "4s",
        ])
        .args([
            "--users",
            "100",
            "--connections",
            "8",
            "--quiet",
            "--run-id",
            "shards",
        ])
        .arg("--report")
        .arg(dir.join(out));
        if let Some(s) = shard {
            c.args(["--shard", s]);
        }
        c.stdout(std::process::Stdio::null()).spawn().unwrap()
    };
    let single = run(None, "single").wait_with_output().unwrap();
    assert!(single.status.success());
    let (a, b) = (run(Some("1/2"), "s1"), run(Some("2/2"), "s2"));
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    let merged = std::process::Command::new(bin)
        .args(["report", "--json", "--out"])
        .arg(dir.join("merged"))
        .arg(dir.join("s1"))
        .arg(dir.join("s2"))
        .output()
        .unwrap();
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let m: scimload::report::ReportData = serde_json::from_slice(&merged.stdout).unwrap();
    let (one, _) = bench::read_results(&dir.join("single")).unwrap();
    assert_eq!(m.run.shards, 2);
    assert!(m.title.contains("2 shards"), "{}", m.title);
    let x = &one.operations["get_user"];
    let y = m.operations.iter().find(|o| o.name == "get_user").unwrap();
    assert_eq!(x.requests, 800);
    assert_eq!(y.requests, x.requests);
    for (p, q) in [
        (x.response.p50_ms, y.response.p50_ms),
        (x.response.p90_ms, y.response.p90_ms),
        (x.service.p50_ms, y.service.as_ref().unwrap().p50_ms),
    ] {
        assert!((p - q).abs() <= p * 0.1 + 0.5, "{p} vs {q}");
    }
    // The same run twice, or a merged result beside one of its shards, would count
    // requests twice: refused.
    for pair in [
        ["s1", "s1"],
        ["merged", "s2"],
        ["single", "single"],
        ["single", "s1"],
    ] {
        let out = std::process::Command::new(bin)
            .args(["report", "--out"])
            .arg(dir.join("twice"))
            .arg(dir.join(pair[0]))
            .arg(dir.join(pair[1]))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{pair:?}: {err}");
        assert!(
            err.contains("hold the same run (run id shards"),
            "{pair:?}: {err}"
        );
        assert!(!dir.join("twice").exists());
    }
    // The merged log re-read gives the same numbers.
    let (again, _) = bench::read_results(&dir.join("merged")).unwrap();
    assert_eq!(again.operations["get_user"].response, y.response);
    assert!(dir.join("merged/report.html").exists() && dir.join("single/report.html").exists());
    let _ = std::fs::remove_dir_all(&dir);
    rt.block_on(h.shutdown());
}

/// `replay` sends an identity provider's cycle in its own shapes; the server's journal
/// shows each dialect's signature requests, and every one of them is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_speaks_each_dialect() {
    use scimload::client::dialect::DialectName;
    let (h, journal) = server(FaultConfig::default()).await;
    for (n, dialect) in [
        DialectName::Generic,
        DialectName::Entra,
        DialectName::EntraLegacy,
        DialectName::Okta,
        DialectName::OktaAiw,
        DialectName::Aws,
    ]
    .into_iter()
    .enumerate()
    {
        journal.clear();
        let mut cfg = config(Kind::Replay, &h.url());
        cfg.params.users = 40;
        cfg.params.dialect = dialect;
        cfg.run_id = format!("r{n}");
        cfg.connections = 1;
        // Ten cycles of the dialect's program (8 or 9 requests each).
        let per_cycle = if matches!(dialect, DialectName::Okta | DialectName::OktaAiw) {
            9
        } else {
            8
        };
        cfg.max_requests = Some(10 * per_cycle);
        let (s, _, all) = run(&cfg, &journal).await;
        assert_eq!(s.errors, 0, "{dialect:?}: {:#?}", s.operations);
        // Seeding: 40 users, a group, one PATCH with the first 20 as members.
        let m = measured(&all, 42);
        assert_eq!(m.len() as u64, 10 * per_cycle, "{dialect:?}");
        let ops = |r: &Received| r.json()["Operations"].clone();
        let deactivations: Vec<&Received> = m
            .iter()
            .filter(|r| {
                let o = ops(r);
                r.body.windows(6).any(|w| w == b"active")
                    && (o[0]["path"] == "active"
                        || o[0]["value"]["active"] == false
                        || r.method == "PUT" && r.json()["active"] == false)
            })
            .collect();
        assert_eq!(
            deactivations.len(),
            10,
            "{dialect:?}: {:?}",
            deactivations
                .iter()
                .map(|r| (&r.method, &r.target, r.json()))
                .collect::<Vec<_>>()
        );
        let d = deactivations[0];
        match dialect {
            DialectName::EntraLegacy => {
                assert_eq!(
                    ops(d)[0],
                    serde_json::json!({"op": "Replace", "path": "active", "value": "False"})
                );
                let rm = m.iter().find(|r| ops(r)[0]["op"] == "Remove").unwrap();
                assert_eq!(ops(rm)[0]["path"], "members");
                assert!(m
                    .iter()
                    .any(|r| r.target.ends_with("?excludedAttributes=members")));
            }
            DialectName::Entra => {
                let upd = m
                    .iter()
                    .find(|r| r.method == "PATCH" && ops(r)[0]["value"]["title"].is_string())
                    .unwrap();
                assert!(ops(upd)[0].get("path").is_none(), "path-less replace");
                let adds: Vec<_> = m.iter().filter(|r| ops(r)[0]["op"] == "add").collect();
                assert!(adds
                    .iter()
                    .all(|r| ops(r)[0]["value"].as_array().unwrap().len() == 1));
            }
            DialectName::Okta => {
                assert_eq!(
                    ops(d)[0],
                    serde_json::json!({"op": "replace", "value": {"active": false}})
                );
                assert!(m
                    .iter()
                    .any(|r| r.target.contains("&startIndex=1&count=100")));
                assert!(m.iter().any(|r| r.method == "PUT"));
            }
            DialectName::OktaAiw => assert_eq!(d.method, "PUT"),
            DialectName::EntraInbound => unreachable!("bench refuses it"),
            DialectName::Generic | DialectName::Aws => {
                assert_eq!(
                    ops(d)[0],
                    serde_json::json!({"op": "replace", "path": "active", "value": false})
                );
                let rm = m.iter().find(|r| ops(r)[0]["op"] == "remove").unwrap();
                assert!(ops(rm)[0]["path"]
                    .as_str()
                    .unwrap()
                    .starts_with("members[value eq"));
            }
        }
        // One member in and one out per cycle: the group keeps its 20 members.
        let gid = all[42].target.rsplit('/').next().unwrap().to_string();
        let r = reqwest::get(format!("{}/Groups/{gid}", h.url()))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(
            v["members"].as_array().map_or(0, Vec::len),
            20,
            "{dialect:?}"
        );
        assert_eq!(count(&s, "create_user"), 10);
    }
    h.shutdown().await;
}

/// The warm-up is recorded in the interval log but left out of the results, cut at an
/// interval boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_is_recorded_but_trimmed() {
    let (h, _journal) = server(FaultConfig::default()).await;
    let mut cfg = config(Kind::Get, &h.url());
    cfg.model = Model::Open {
        shape: RateShape::Constant(200.0),
        poisson: None,
    };
    cfg.max_requests = None;
    cfg.warmup = Duration::from_secs(2);
    cfg.duration = Duration::from_secs(3);
    let (s, tl) = bench::run(&cfg, None).await.unwrap();
    let (from, to) = tl.span().unwrap();
    assert_eq!(
        tl.total("get_user.response", from, to).len(),
        1000,
        "all recorded"
    );
    let measured = s.operations["get_user"].requests;
    // 3 s at 200/s, less at most the one interval that straddles the warm-up's end.
    assert!((400..=600).contains(&measured), "{measured}");
    assert_eq!(s.window_ms[0] % 1000, 0);
    h.shutdown().await;
}

/// The value of the one series whose line starts with `prefix` (labels included).
fn series(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `--metrics-listen`, scraped while a run goes on and once it is over: the counters and
/// the histogram of each operation are there during the run, and at the end they count
/// what the summary counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_scraped_during_a_run_agree_with_its_summary() {
    use scimload::metrics::live::{self, Live};
    let (h, _journal) = server(FaultConfig::default()).await;
    let live = Live::new("bench", "t1", "1/1");
    let addr = live::serve("127.0.0.1:0".parse().unwrap(), live.clone())
        .await
        .unwrap();
    let mut cfg = config(Kind::Mixed, &h.url());
    cfg.model = Model::Open {
        shape: RateShape::Constant(400.0),
        poisson: None,
    };
    cfg.max_requests = None;
    cfg.duration = Duration::from_secs(3);
    cfg.live = Some(live.clone());
    let run = tokio::spawn(async move { bench::run(&cfg, None).await });
    let scrape = || async {
        let r = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        r.text().await.unwrap()
    };
    // Seeding, then 3 s of load: a scrape 1.5 s into the load sees it going on.
    let mut during = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        during = scrape().await;
        if series(&during, "scimload_sent_total{").unwrap_or(0.0) >= 600.0 {
            break;
        }
    }
    let (s, _) = run.await.unwrap().unwrap();
    assert!(
        s.operations.len() >= 3,
        "a mix of operations: {:?}",
        s.operations.keys()
    );
    let ongoing = series(&during, "scimload_sent_total{").unwrap();
    assert!(ongoing >= 600.0 && ongoing < s.sent as f64, "{during}");
    assert_eq!(
        series(&during, "scimload_offered_rate{"),
        Some(400.0),
        "{during}"
    );
    for op in s.operations.keys() {
        let l = format!("kind=\"bench\",run_id=\"t1\",shard=\"1/1\",operation=\"{op}\"");
        assert!(
            during.contains(&format!(
                "scimload_response_seconds_bucket{{{l},le=\"0.001\"}}"
            )),
            "{op} has a histogram during the run:\n{during}"
        );
    }
    let end = scrape().await;
    let mut total = 0.0;
    for (op, o) in &s.operations {
        let l = format!("kind=\"bench\",run_id=\"t1\",shard=\"1/1\",operation=\"{op}\"");
        let n = series(&end, &format!("scimload_requests_total{{{l}}}")).unwrap();
        assert_eq!(n, o.requests as f64, "{op}");
        for h in ["response", "service", "send_lag"] {
            let name = format!("scimload_{h}_seconds");
            let count = series(&end, &format!("{name}_count{{{l}}}")).unwrap();
            let inf = series(&end, &format!("{name}_bucket{{{l},le=\"+Inf\"}}")).unwrap();
            assert_eq!((count, inf), (n, n), "{name} of {op}");
            // Cumulative buckets never fall.
            let buckets: Vec<f64> = end
                .lines()
                .filter(|x| x.starts_with(&format!("{name}_bucket{{{l},")))
                .map(|x| x.rsplit(' ').next().unwrap().parse().unwrap())
                .collect();
            assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{name} {op}");
        }
        total += n;
    }
    assert_eq!(total, (s.ok + s.errors) as f64);
    assert_eq!(series(&end, "scimload_sent_total{"), Some(s.sent as f64));
    assert_eq!(
        series(&end, "scimload_planned_total{"),
        Some(s.planned as f64)
    );
    assert_eq!(series(&end, "scimload_in_flight{"), Some(0.0));
}
