//! `probe` against each profile of `scimload serve`: the capability table must say what
//! the profile really does (compared with the profile's own definition), the sandbox must
//! be gone afterwards, and a server that never answers must be reported, not waited on.

use std::time::{Duration, Instant};

use crate::harness::Srv;
use scimload::client::ScimClient;
use scimload::probe::{probe, Outcome, ProbeOptions, ProbeReport};
use scimload::server::profile::{Profile, ALL, AWS};
use scimload::server::ServerConfig;
use serde_json::Value;

async fn run(s: &Srv, bound: Duration) -> ProbeReport {
    let c = ScimClient::new(&s.base, None, bound, 4).unwrap();
    probe(
        &c,
        &ProbeOptions {
            read_only: false,
            check_timeout: bound,
            custom: Vec::new(),
        },
    )
    .await
    .expect("the server answers")
}

fn says(r: &ProbeReport, name: &str) -> Outcome {
    r.check(name)
        .unwrap_or_else(|| panic!("no check {name}: {}", r.human()))
        .outcome
}

fn yes(b: bool) -> Outcome {
    if b {
        Outcome::Yes
    } else {
        Outcome::No
    }
}

async fn total(s: &Srv, what: &str) -> u64 {
    s.get(&format!("/{what}?count=0")).await.body["totalResults"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_what_each_profile_does() {
    for p in ALL {
        let p: &'static Profile = p;
        let s = Srv::start(ServerConfig {
            profile: p,
            ..ServerConfig::default()
        })
        .await;
        let r = run(&s, Duration::from_secs(5)).await;
        let ctx = format!("profile {}:\n{}", p.name, r.human());
        let expect = [
            ("create: 201 with id and Location", Outcome::Yes),
            ("filter: userName eq (case-insensitive)", Outcome::Yes),
            ("filter: externalId eq", Outcome::Yes),
            ("patch: path and value (RFC 7644)", Outcome::Yes),
            ("patch: value object without path", Outcome::Yes),
            ("patch: Replace with \"False\" (Entra)", Outcome::Yes),
            ("put: full replace", Outcome::Yes),
            ("group: member add by PATCH", Outcome::Yes),
            ("group: GET returns members", yes(p.members_in_reads)),
            (
                "paging: index (startIndex, count honoured)",
                yes(p.index_paging),
            ),
            ("paging: cursor (RFC 9865)", yes(p.cursor_paging)),
            ("bulk: POST /Bulk with bulkId references", yes(p.bulk)),
            ("etag: If-Match honoured", yes(p.etag)),
            (
                "round trip: mapped attributes kept",
                yes(!p.user_type.extensions.is_empty()),
            ),
        ];
        for (name, want) in expect {
            assert_eq!(says(&r, name), want, "{name}: {ctx}");
        }
        // Removals can be seen only where members are returned.
        let removal = if p.members_in_reads {
            Outcome::Yes
        } else {
            Outcome::Skipped
        };
        for name in [
            "group: members removed by members[value eq \"id\"]",
            "group: members removed by path members + value list",
            "group: excludedAttributes=members",
        ] {
            assert_eq!(says(&r, name), removal, "{name}: {ctx}");
        }
        // What was lost names the enterprise attributes, manager included.
        if p.user_type.extensions.is_empty() {
            assert!(
                r.not_kept.iter().any(|a| a.ends_with(":department"))
                    && r.not_kept.iter().any(|a| a.ends_with(":manager")),
                "{ctx}"
            );
            assert!(
                r.recommended_flags.iter().any(|f| f == "--verify 1%"),
                "{ctx}"
            );
        }
        assert_eq!(
            r.recommended_flags.contains(&"--bulk auto".to_string()),
            p.bulk,
            "{ctx}"
        );
        // The sandbox is gone.
        assert!(r.left_behind.is_empty(), "{ctx}");
        assert_eq!(
            (total(&s, "Users").await, total(&s, "Groups").await),
            (0, 0),
            "{ctx}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_finds_the_real_page_cap() {
    let s = Srv::start(ServerConfig {
        profile: &AWS,
        ..ServerConfig::default()
    })
    .await;
    for i in 0..150 {
        s.user(&format!("existing{i:03}")).await;
    }
    let r = run(&s, Duration::from_secs(5)).await;
    let cap = r.check("paging: page cap").unwrap();
    assert!(
        cap.detail.starts_with("at most 100 per page"),
        "{}",
        r.human()
    );
    assert_eq!(total(&s, "Users").await, 150, "only the sandbox is deleted");
    // --json carries the same table.
    let v: Value = serde_json::to_value(&r).unwrap();
    assert_eq!(v["checks"].as_array().unwrap().len(), r.checks.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_is_reported_not_waited_on() {
    // Accepts connections and never answers.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = l.accept().await {
            held.push(c);
        }
    });
    let t = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_scimload"))
            .args(["probe", &url, "--timeout", "300ms"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot reach") && err.contains("timed out"),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        t.elapsed()
    );
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_check_is_bounded_and_a_slow_server_is_reported() {
    // Discovery is exempt from the faults; every other request takes 1 s.
    let s = Srv::start(ServerConfig {
        faults: scimload::server::faults::FaultConfig {
            latency: Some(scimload::server::faults::Latency::parse("1s").unwrap()),
            ..Default::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let t = Instant::now();
    let r = run(&s, Duration::from_millis(200)).await;
    assert_eq!(
        says(&r, "create: 201 with id and Location"),
        Outcome::Timeout,
        "{}",
        r.human()
    );
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "waited {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_includes_the_mappings_custom_attributes() {
    let s = Srv::default().await;
    let spec = scimload::mapping::presets::load_file(&crate::harness::fixture_path(
        "exports/acme-mapping.toml",
    ))
    .unwrap();
    let c = ScimClient::new(&s.base, None, Duration::from_secs(5), 4).unwrap();
    let r = probe(
        &c,
        &ProbeOptions {
            read_only: false,
            check_timeout: Duration::from_secs(5),
            custom: ProbeOptions::custom_of(&spec),
        },
    )
    .await
    .unwrap();
    // The embedded server declares no acme extension: the round trip says so, roles kept.
    let acme = "urn:example:params:scim:schemas:extension:acme:2.0:User";
    assert!(
        r.not_kept
            .iter()
            .any(|a| a == &format!("{acme}:badgeNumber")),
        "{:?}",
        r.not_kept
    );
    assert!(
        r.not_kept.iter().all(|a| !a.starts_with("roles")),
        "{:?}",
        r.not_kept
    );
    assert!(
        r.not_kept.iter().all(|a| !a.contains("enterprise")),
        "{:?}",
        r.not_kept
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_cleaned_up_or_named() {
    // Creates applied whose answers never came: the sandbox must still be gone, or what
    // is left named in the report. Several seeds, so that lost answers fall on creates.
    let mut probed = 0;
    for seed in 1..=8 {
        let s = Srv::start(ServerConfig {
            faults: scimload::server::faults::FaultConfig {
                seed,
                lose_answer: 0.15,
                ..Default::default()
            },
            ..ServerConfig::default()
        })
        .await;
        let c = ScimClient::new(&s.base, None, Duration::from_secs(2), 4).unwrap();
        let opts = ProbeOptions {
            read_only: false,
            check_timeout: Duration::from_secs(2),
            custom: Vec::new(),
        };
        // Discovery's own answers may be the lost ones: then there is no sandbox.
        let Ok(r) = probe(&c, &opts).await else {
            continue;
        };
        probed += 1;
        let inner = s._handle.state.store.read();
        let names = |t: &scimload::server::store::Table, key: &str| -> Vec<(String, String)> {
            t.by_id
                .iter()
                .map(|(id, e)| {
                    let n = e.attrs.get(key).and_then(Value::as_str).unwrap_or("");
                    (id.clone(), n.to_string())
                })
                .collect()
        };
        let left = r.left_behind.join("\n");
        for (id, name) in names(&inner.users, "userName")
            .into_iter()
            .chain(names(&inner.groups, "displayName"))
        {
            assert!(
                left.contains(&id) || left.contains(&name),
                "seed {seed}: {name} ({id}) left on the server and not named:\n{}",
                r.human()
            );
        }
    }
    assert!(probed >= 4, "only {probed} probes got past discovery");
}
