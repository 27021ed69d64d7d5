//! Nothing lost without saying so: the Workday sample imported into a target that
//! declares only the core schemas and drops the rest (`serve --profile core-only`),
//! and into one that keeps everything. The schema check must name what will be lost
//! before sending, strict mode must send nothing, read-back verification must find
//! what was dropped, and refused manager PATCHes must be failures in failed.csv.

use std::process::{Command, Output};

use scimload::server::profile::{Profile, CORE_ONLY, RFC};
use scimload::server::{spawn, ServerConfig, ServerHandle};
use serde_json::Value;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/workday-1k.csv");
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn server(p: &'static Profile) -> ServerHandle {
    spawn(
        ServerConfig {
            profile: p,
            ..ServerConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// Runs an import with a state file of its own (never next to the sample).
fn import(url: &str, extra: &[&str]) -> Output {
    let port = url.rsplit(':').next().unwrap_or("0");
    let state = std::env::temp_dir().join(format!(
        "scimload-fidelity-{}-{port}.sqlite",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&state);
    Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args([
            "import", SAMPLE, "--target", url, "--lookup", "never", "--quiet",
        ])
        .arg("--state")
        .arg(&state)
        .args(extra)
        .env_remove("SCIM_TOKEN")
        .output()
        .unwrap()
}

/// Rows of the sample with a value in `column`, counted with the csv crate.
fn rows_with(column: &str) -> u64 {
    let mut r = csv::Reader::from_path(SAMPLE).unwrap();
    let i = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == column)
        .unwrap();
    r.records()
        .filter(|rec| !rec.as_ref().unwrap()[i].trim().is_empty())
        .count() as u64
}

async fn users_on(url: &str) -> u64 {
    let text = reqwest::get(format!("{url}/Users?count=0"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    body["totalResults"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_schema_check_sends_nothing_to_a_core_only_target() {
    let srv = server(&CORE_ONLY).await;
    let out = import(&srv.url(), &["--schema-check", "strict"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for name in [
        "enterprise.department",
        "enterprise.costCenter",
        "enterprise.employeeNumber",
        "enterprise.manager",
    ] {
        assert!(err.contains(name), "{name} not named: {err}");
    }
    let managers = rows_with("Manager_Employee_ID");
    assert!(
        err.contains(&format!("enterprise.manager {managers})")),
        "manager rows ({managers}) not counted: {err}"
    );
    assert!(err.contains(&format!("has no schema {ENT}")), "{err}");
    assert!(err.contains("Nothing was sent"), "{err}");
    assert_eq!(users_on(&srv.url()).await, 0, "strict mode created users");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_only_target_drops_are_warned_verified_and_failed() {
    let srv = server(&CORE_ONLY).await;
    let dir = std::env::temp_dir().join(format!("scimload-fidelity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = import(&srv.url(), &["--json", "--report", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Before sending: each enterprise attribute with the rows that carry it.
    let undeclared = s["schema"]["undeclared"].as_array().unwrap();
    let rows_of = |m: &str| {
        undeclared
            .iter()
            .find(|u| u["mapping"] == m)
            .unwrap_or_else(|| panic!("{m} not in {undeclared:?}"))["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        rows_of("enterprise.department"),
        rows_with("Supervisory_Organization")
    );
    assert_eq!(rows_of("enterprise.costCenter"), rows_with("Cost_Center"));
    assert_eq!(
        rows_of("enterprise.manager"),
        rows_with("Manager_Employee_ID")
    );
    assert_eq!(s["created"], 1000, "every user is still sent");
    // After: the read-back names what the target did not keep.
    let v = &s["verification"];
    assert!(v["users_checked"].as_u64().unwrap() >= 100, "{v}");
    assert_eq!(v["users_differing"], v["users_checked"], "{v}");
    for a in ["department", "costCenter", "employeeNumber"] {
        assert!(
            v["attributes"][format!("{ENT}:{a}")].as_u64().unwrap() > 0,
            "{a}: {v}"
        );
    }
    assert!(
        v["attributes"][format!("{ENT}:manager")].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(v["attributes"].get("userName").is_none(), "{v}");
    // Managers that went by PATCH were refused: failures, in failed.csv, never "set".
    let failed = s["managers_failed"].as_u64().unwrap();
    assert!(failed > 0, "no manager PATCH failed: {s}");
    let mut csv = csv::Reader::from_path(dir.join("failed.csv")).unwrap();
    assert_eq!(
        csv.headers().unwrap(),
        vec!["row", "externalId", "what", "status", "scimType", "detail"]
    );
    let lines: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let manager_lines: Vec<_> = lines.iter().filter(|l| &l[2] == "manager").collect();
    assert_eq!(manager_lines.len() as u64, failed);
    assert!(manager_lines
        .iter()
        .all(|l| &l[3] == "400" && &l[4] == "invalidPath" && l[1].starts_with('E')));
    // The human summary and the HTML report say so too.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("Read-back verification"),
        "no verification in the report"
    );
    assert!(html.contains(&format!("{ENT}:department")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_keeps_everything_verifies_clean() {
    let srv = server(&RFC).await;
    let out = import(&srv.url(), &["--json", "--verify", "all"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["schema"]["undeclared"], serde_json::json!([]));
    let v = &s["verification"];
    assert_eq!(v["users_checked"], 1000, "{v}");
    assert_eq!(v["users_matching"], 1000, "{v}");
    assert_eq!(v["groups_checked"], s["export_groups"], "{v}");
    assert_eq!(v["groups_differing"], 0, "{v}");
    assert_eq!(s["managers_failed"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_extension_the_target_lacks_is_named_before_and_after() {
    let srv = server(&RFC).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/exports");
    let state = std::env::temp_dir().join(format!("scimload-acme-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&state);
    let out = Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args([
            "import",
            &format!("{dir}/acme.csv"),
            "--map",
            &format!("{dir}/acme-mapping.toml"),
        ])
        .args([
            "--target",
            &srv.url(),
            "--quiet",
            "--json",
            "--verify",
            "all",
            "--state",
        ])
        .arg(&state)
        .env_remove("SCIM_TOKEN")
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let acme = "urn:example:params:scim:schemas:extension:acme:2.0:User";
    let undeclared = s["schema"]["undeclared"].as_array().unwrap();
    let badge = undeclared
        .iter()
        .find(|u| u["attribute"] == format!("{acme}:badgeNumber"))
        .unwrap_or_else(|| panic!("{undeclared:?}"));
    // Counted over the rows that will be sent: the other three are rejected (bad types).
    assert_eq!(badge["rows"], 1, "only accepted rows are sent: {badge}");
    // roles are core: declared by the target.
    assert!(
        undeclared.iter().all(|u| u["mapping"] != "roles"),
        "{undeclared:?}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        s["verification"]["users_differing"], 1,
        "{}",
        s["verification"]
    );
    assert!(s["verification"]["attributes"][format!("{acme}:badgeNumber")].as_u64() == Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_member_adds_are_failures_of_their_rows() {
    // AWS allows 100 member changes per PATCH: batches of 150 are refused.
    let srv = server(&scimload::server::profile::AWS).await;
    let dir = std::env::temp_dir().join(format!("scimload-members-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = import(
        &srv.url(),
        &[
            "--json",
            "--member-batch",
            "150",
            "--report",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let refused = s["memberships_failed"].as_u64().unwrap();
    assert!(refused > 0, "{s}");
    // Each refused member is a line with its row and externalId, as the export has them.
    let emit = dir.join("payloads.ndjson");
    let dry = Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args(["import", SAMPLE, "--dry-run", "--quiet", "--emit"])
        .arg(&emit)
        .output()
        .unwrap();
    assert!(dry.status.success());
    let ext_of_row: std::collections::HashMap<u64, String> = std::fs::read_to_string(&emit)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["row"].as_u64().unwrap(),
                v["externalId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut csv = csv::Reader::from_path(dir.join("failed.csv")).unwrap();
    let lines: Vec<csv::StringRecord> = csv
        .records()
        .map(Result::unwrap)
        .filter(|l| &l[2] == "member")
        .collect();
    assert_eq!(lines.len() as u64, refused);
    for l in &lines {
        let row: u64 = l[0].parse().unwrap();
        assert_eq!(
            ext_of_row.get(&row).map(String::as_str),
            Some(&l[1]),
            "{l:?}"
        );
        assert_eq!(&l[3], "400", "{l:?}");
        assert!(l[5].contains("not added to group"), "{l:?}");
    }
}

/// displayName → member count of every group on the server at `url`.
async fn member_counts(url: &str) -> std::collections::HashMap<String, u64> {
    let text = reqwest::get(format!("{url}/Groups?count=1000"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let groups: Value = serde_json::from_str(&text).unwrap();
    groups["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["displayName"].as_str().unwrap().to_string(),
                g["members"].as_array().map_or(0, Vec::len) as u64,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_answered_as_added_and_not_kept_are_found() {
    // A server that answers every member add with success and keeps about 80% of them,
    // and one that keeps all, for what the groups should hold.
    let lax = spawn(
        ServerConfig {
            drop_members: 0.2,
            ..ServerConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let full = server(&RFC).await;
    let o = import(&full.url(), &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = import(&lax.url(), &["--json", "--verify", "all"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every add was answered as done: the import alone cannot tell.
    assert_eq!(s["memberships_failed"], 0, "{s}");
    let should = member_counts(&full.url()).await;
    let kept = member_counts(&lax.url()).await;
    assert_eq!(should.len() as u64, s["export_groups"].as_u64().unwrap());
    let (mut missing, mut short) = (0, 0);
    for (name, n) in &should {
        let k = kept[name];
        assert!(k <= *n, "{name}: {k} > {n}");
        missing += n - k;
        short += (k < *n) as u64;
    }
    let expected = s["export_memberships"].as_u64().unwrap();
    assert!(
        missing > 0 && missing < expected / 2,
        "{missing} of {expected}"
    );
    let v = &s["verification"];
    assert_eq!(v["groups_checked"], s["export_groups"], "{v}");
    assert_eq!(v["members_missing"].as_u64(), Some(missing), "{v}");
    assert_eq!(v["groups_differing"].as_u64(), Some(short), "{v}");
}
