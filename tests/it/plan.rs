//! `scimload plan`: the onboarding time under a service's published limits, checked
//! against a simulation of the preset's token buckets request by request (not the
//! plan's own arithmetic), on the counts a dry run finds.

use std::process::Command;

use scimload::limits::{Cost, Preset};
use scimload::metrics::Op;
use serde_json::Value;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/workday-1k.csv");

fn run(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Sends `requests` (operation, members) one after another, each as soon as every bucket
/// that counts it has the tokens; returns when the last one went and leaves the buckets'
/// state for the next phase.
fn simulate(
    buckets: &[scimload::limits::Bucket],
    tokens: &mut [f64],
    clock: &mut f64,
    requests: impl Iterator<Item = (Op, f64)>,
) {
    for (op, members) in requests {
        let cost = |b: &scimload::limits::Bucket| match b.cost {
            Cost::Requests => 1.0,
            Cost::Members => members,
        };
        let wait = buckets
            .iter()
            .zip(tokens.iter())
            .filter(|(b, _)| b.ops.contains(&op))
            .map(|(b, t)| ((cost(b) - t) / b.rate()).max(0.0))
            .fold(0.0, f64::max);
        for (b, t) in buckets.iter().zip(tokens.iter_mut()) {
            *t = (*t + b.rate() * wait).min(b.burst);
            if b.ops.contains(&op) {
                *t -= cost(b);
            }
        }
        *clock += wait;
    }
}

#[test]
fn a_plan_under_slacks_limits_matches_a_simulation_of_its_buckets() {
    let plan = run(&["plan", SAMPLE, "--target-limits", "slack", "--json"]);
    let dry = run(&["import", SAMPLE, "--dry-run", "--json"]);
    for (k, d) in [
        ("users", "users"),
        ("groups", "groups"),
        ("memberships", "memberships"),
        ("managers", "users_with_manager"),
    ] {
        assert_eq!(
            plan[k], dry[d],
            "{k}: the plan counts what the dry run finds"
        );
    }
    let n = |v: &Value| v.as_u64().unwrap();
    let phases = plan["projection"]["phases"].as_array().unwrap();
    // The groups phase: a lookup and a create per group, then the member PATCHes.
    let patches = n(&phases[2]["requests"]) - 2 * n(&plan["groups"]);
    let limits = Preset::Slack.limits();
    let mut tokens: Vec<f64> = limits.buckets.iter().map(|b| b.burst).collect();
    let mut clock = 0.0;
    let mut ends = Vec::new();
    let users = n(&plan["users"]);
    simulate(
        &limits.buckets,
        &mut tokens,
        &mut clock,
        (0..users).map(|_| (Op::CreateUser, 0.0)),
    );
    ends.push(clock);
    simulate(
        &limits.buckets,
        &mut tokens,
        &mut clock,
        (0..n(&plan["manager_patches"])).map(|_| (Op::PatchManager, 0.0)),
    );
    ends.push(clock);
    simulate(
        &limits.buckets,
        &mut tokens,
        &mut clock,
        (0..n(&plan["groups"]))
            .map(|_| (Op::LookupGroup, 0.0))
            .chain((0..n(&plan["groups"])).map(|_| (Op::CreateGroup, 0.0)))
            .chain((0..patches).map(|_| (Op::PatchMembers, 100.0))),
    );
    ends.push(clock);
    let mut start = 0.0;
    for (i, end) in ends.iter().enumerate() {
        let planned = phases[i]["seconds"].as_f64().unwrap();
        let simulated = end - start;
        // Requests one at a time against a continuous drain: they agree to within a
        // request's spacing at the slowest rate (20 s at most here) — and exactly for a
        // phase of one operation.
        assert!(
            (planned - simulated).abs() <= 1.0 + 0.01 * simulated,
            "phase {}: planned {planned} s, simulated {simulated} s",
            phases[i]["phase"]
        );
        start = *end;
    }
    assert!((phases[0]["seconds"].as_f64().unwrap() - (users as f64 - 20.0) / 3.0).abs() < 1e-6);
    assert_eq!(phases[0]["binding"], "POST /Users");
    assert_eq!(plan["projection"]["binding"], "POST /Users");
    let total = plan["projection"]["seconds"].as_f64().unwrap();
    assert!(
        (total - clock).abs() <= 3.0 + 0.01 * clock,
        "{total} vs {clock}"
    );

    // The text says the same: the binding limit and the total time.
    let out = Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args(["plan", SAMPLE, "--target-limits", "slack"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the limit that binds longest: POST /Users"),
        "{text}"
    );
    assert!(
        text.contains(&scimload::commands::plan::duration_text(total)),
        "{text}"
    );
}

#[test]
fn a_limit_of_your_own_adds_a_bucket_and_a_bad_one_says_the_form() {
    let plan = run(&[
        "plan",
        SAMPLE,
        "--limit",
        "create_user=60/min,burst=1",
        "--json",
    ]);
    let users = plan["users"].as_f64().unwrap();
    let t = plan["projection"]["phases"][0]["seconds"].as_f64().unwrap();
    assert!((t - (users - 1.0)).abs() < 1e-6, "{t}");
    assert_eq!(plan["limits"]["name"], "--limit");
    let out = Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args(["plan", SAMPLE, "--limit", "create_user=60/fortnight"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("create_user=180/min,burst=20"));
}

/// An import paced by a preset carries the plan of its export under the published
/// limits in report.json's capacity section: the same numbers `scimload plan` prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_paced_by_a_preset_reports_the_plans_numbers() {
    use scimload::import::ingest::IngestOptions;
    use scimload::import::run::{self, ImportConfig};
    use scimload::report::{ReportData, Run};
    let plan = tokio::task::spawn_blocking(|| {
        run(&["plan", SAMPLE, "--target-limits", "slack", "--json"])
    })
    .await
    .unwrap();
    let srv = scimload::server::spawn(
        scimload::server::ServerConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    // Paced 200 times faster than Slack allows, so the test ends in seconds; the report
    // still plans the published limits.
    let cfg = ImportConfig {
        limits: Preset::Slack.limits().scaled(200.0),
        ..super::import::config(srv.url())
    };
    let spec = scimload::mapping::presets::load("workday").unwrap();
    let s = run::run(
        std::path::Path::new(SAMPLE),
        &spec,
        &IngestOptions::default(),
        &cfg,
        |_| {},
    )
    .await
    .unwrap();
    let tl = s.timeline.clone().unwrap();
    let slo = scimload::metrics::threshold::Threshold::parse("p99<300ms").unwrap();
    let report = ReportData::build(&Run::Import(Box::new(s)), &tl, &slo);
    let json = serde_json::to_value(&report).unwrap();
    let mine = &json["capacity"]["under_limits"];
    assert_eq!(mine, &plan["projection"], "report.json and plan agree");
    assert_eq!(mine["binding"], "POST /Users");
    let (schemas, idx) = super::report::schema();
    if let Err(e) = schemas.validate(&json, idx) {
        panic!("report.json with a limits projection: {e:#}");
    }
    let md = scimload::report::markdown::report(&report);
    assert!(
        md.contains("Onboarding under the target's published limits") && md.contains("POST /Users"),
        "{md}"
    );
}
