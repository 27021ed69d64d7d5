//! HR exports in: every injected defect ends in the rejects file with its row and the
//! right reason, no clean row is rejected, counts add up, and each preset maps its sample
//! to the golden payloads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use scimload::import::dry_run::{self, DryRunOptions};
use scimload::import::ingest::IngestOptions;
use scimload::mapping::presets;
use serde_json::Value;

fn dataset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("datasets")
        .join(name)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scimload-it-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// The reject code each injected defect must produce, per format.
fn expected_code(defect: &str, format: &str) -> &'static str {
    match (defect, format) {
        ("missing_required", _) => "missing_required",
        ("malformed_email", _) => "invalid_email",
        ("duplicate_username", _) => "duplicate_username",
        ("duplicate_employee_id", _) => "duplicate_external_id",
        ("overlong_value", _) => "too_long",
        ("bad_date", _) => "invalid_date",
        ("stray_quote", _) => "invalid_character",
        ("invalid_utf8", _) => "invalid_utf8",
        ("wrong_field_count", "csv") => "wrong_field_count",
        ("wrong_field_count", "ndjson") => "broken_json",
        ("wrong_field_count", _) => "not_an_object",
        (d, _) => panic!("unknown defect {d}"),
    }
}

fn check_dirty(file: &str, preset: &str, format: &str) {
    let spec = presets::load(preset).unwrap();
    let rejects = tmp(&format!("{file}.rejects.csv"));
    let summary = dry_run::run(
        &dataset(file),
        &spec,
        &IngestOptions::default(),
        &DryRunOptions {
            rejects: Some(rejects.clone()),
            emit: None,
            forward_managers: false,
        },
    )
    .unwrap();
    assert_eq!(summary.rows, 1000, "{file}");
    assert_eq!(
        summary.users + summary.rejected,
        summary.rows,
        "{file}: counts add up"
    );

    let stem = file.rsplit_once('.').unwrap().0;
    let manifest: BTreeMap<u64, Value> =
        std::fs::read_to_string(dataset(&format!("{stem}.manifest.ndjson")))
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["row"].as_u64().unwrap(), v)
            })
            .collect();
    let mut r = csv::Reader::from_path(&rejects).unwrap();
    assert_eq!(
        r.headers().unwrap(),
        vec!["row", "externalId", "field", "code", "reason", "original"]
    );
    let mut seen = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        let row: u64 = rec[0].parse().unwrap();
        let m = manifest
            .get(&row)
            .unwrap_or_else(|| panic!("{file}: clean row {row} was rejected: {rec:?}"));
        let defect = m["defect"].as_str().unwrap();
        assert_eq!(
            &rec[3],
            expected_code(defect, format),
            "{file} row {row} ({defect}): {}",
            &rec[4]
        );
        if let Some(first) = m.get("clashes_with").and_then(Value::as_u64) {
            assert!(
                rec[4].contains(&format!("row {first}")),
                "{file} row {row}: '{}' should name row {first}",
                &rec[4]
            );
        }
        assert!(
            !rec[5].is_empty(),
            "{file} row {row}: the original row is kept"
        );
        seen.insert(row, ());
    }
    let missing: Vec<&u64> = manifest.keys().filter(|r| !seen.contains_key(r)).collect();
    assert!(
        missing.is_empty(),
        "{file}: defective rows not rejected: {missing:?}"
    );
    assert_eq!(summary.rejected as usize, manifest.len());
    // Every defect kind that applies to the format is exercised.
    let kinds: std::collections::BTreeSet<&str> = manifest
        .values()
        .map(|m| m["defect"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 9, "{file}: {kinds:?}");
}

#[test]
fn workday_csv_defects_are_rejected_exactly() {
    check_dirty("workday-1k-dirty.csv", "workday", "csv");
}

#[test]
fn bamboohr_json_array_defects_are_rejected_exactly() {
    check_dirty("bamboohr-1k-dirty.json", "bamboohr", "json");
}

#[test]
fn generic_ndjson_defects_are_rejected_exactly() {
    check_dirty("generic-1k-dirty.ndjson", "generic", "ndjson");
}

#[test]
fn clean_samples_map_every_row() {
    for (file, preset) in [
        ("workday-1k.csv", "workday"),
        ("bamboohr-1k.json", "bamboohr"),
        ("generic-1k.ndjson", "generic"),
    ] {
        let s = dry_run::run(
            &dataset(file),
            &presets::load(preset).unwrap(),
            &IngestOptions::default(),
            &DryRunOptions::default(),
        )
        .unwrap();
        assert_eq!(
            (s.rows, s.users, s.rejected),
            (1000, 1000, 0),
            "{file}: {:?}",
            s.rejects_by_reason
        );
        assert!(
            s.groups > 10 && s.memberships > 2000,
            "{file}: {} groups",
            s.groups
        );
        // Skewed sizes: the largest department-like group holds a big share.
        assert!(s.largest_group.as_ref().unwrap().1 > 150, "{file}");
    }
}

/// Golden payloads: the first rows of each clean sample, compared as JSON values. To
/// refresh after an intended change: SCIMLOAD_BLESS=1 cargo test golden.
#[test]
fn golden_payloads_per_preset() {
    for (file, preset) in [
        ("workday-1k.csv", "workday"),
        ("bamboohr-1k.json", "bamboohr"),
        ("generic-1k.ndjson", "generic"),
    ] {
        let emit = tmp(&format!("{preset}.emit.ndjson"));
        dry_run::run(
            &dataset(file),
            &presets::load(preset).unwrap(),
            &IngestOptions::default(),
            &DryRunOptions {
                rejects: None,
                emit: Some(emit.clone()),
                forward_managers: false,
            },
        )
        .unwrap();
        let got: Vec<Value> = std::fs::read_to_string(&emit)
            .unwrap()
            .lines()
            .take(8)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/golden/{preset}.json"));
        if std::env::var_os("SCIMLOAD_BLESS").is_some() {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, serde_json::to_string_pretty(&got).unwrap()).unwrap();
        }
        let want: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
        assert_eq!(got, want, "{preset} payloads changed");
    }
}

#[test]
fn gzip_input_is_read_transparently() {
    use std::io::Write;
    let gz = tmp("workday.csv.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    e.write_all(&std::fs::read(dataset("workday-1k-dirty.csv")).unwrap())
        .unwrap();
    e.finish().unwrap();
    let s = dry_run::run(
        &gz,
        &presets::load("workday").unwrap(),
        &IngestOptions::default(),
        &DryRunOptions::default(),
    )
    .unwrap();
    let plain = dry_run::run(
        &dataset("workday-1k-dirty.csv"),
        &presets::load("workday").unwrap(),
        &IngestOptions::default(),
        &DryRunOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (s.rows, s.users, s.rejects_by_reason),
        (plain.rows, plain.users, plain.rejects_by_reason)
    );
}

#[test]
fn batch_size_does_not_change_the_outcome() {
    let spec = presets::load("workday").unwrap();
    let a = dry_run::run(
        &dataset("workday-1k-dirty.csv"),
        &spec,
        &IngestOptions {
            batch_rows: 7,
            ..Default::default()
        },
        &DryRunOptions::default(),
    )
    .unwrap();
    let b = dry_run::run(
        &dataset("workday-1k-dirty.csv"),
        &spec,
        &IngestOptions::default(),
        &DryRunOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (a.users, a.rejects_by_reason, a.memberships),
        (b.users, b.rejects_by_reason, b.memberships)
    );
}

#[test]
fn mapping_mistakes_are_reported_with_what_to_do() {
    let bad_column: scimload::mapping::MappingSpec = presets::parse(
        "[user]\nuserName = \"{Email}\"\nexternalId = \"{Employee_ID}\"\n",
        "t",
    )
    .unwrap();
    let e = dry_run::run(
        &dataset("workday-1k.csv"),
        &bad_column,
        &IngestOptions::default(),
        &DryRunOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("'Email'") && e.contains("Email_Work"), "{e}");
    let no_external: scimload::mapping::MappingSpec =
        presets::parse("[user]\nuserName = \"{Email_Work}\"\n", "t").unwrap();
    let e = dry_run::run(
        &dataset("workday-1k.csv"),
        &no_external,
        &IngestOptions::default(),
        &DryRunOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("externalId"), "{e}");
    let e = presets::parse("[user]\nuserName = 5\n", "m.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("m.toml"), "{e}");
    let typo: scimload::mapping::MappingSpec = presets::parse("[user]\nuserName = \"{Email_Work}\"\nexternalId = \"{Employee_ID}\"\n\"name.givenNam\" = \"{Legal_First_Name}\"\n", "t").unwrap();
    let e = dry_run::run(
        &dataset("workday-1k.csv"),
        &typo,
        &IngestOptions::default(),
        &DryRunOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("name.givenNam") && e.contains("name.givenName"),
        "{e}"
    );
    let e = dry_run::run(
        &dataset("no-such-file.csv"),
        &presets::load("workday").unwrap(),
        &IngestOptions::default(),
        &DryRunOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("cannot open") && e.contains("check the path"),
        "{e}"
    );
}

#[tokio::test]
async fn mapped_payloads_are_accepted_by_the_embedded_server() {
    for (file, preset) in [
        ("workday-1k.csv", "workday"),
        ("bamboohr-1k.json", "bamboohr"),
        ("generic-1k.ndjson", "generic"),
    ] {
        // One server per sample: they share a seed, hence userNames.
        let srv = crate::harness::Srv::default().await;
        let emit = tmp(&format!("{preset}.server.ndjson"));
        dry_run::run(
            &dataset(file),
            &presets::load(preset).unwrap(),
            &IngestOptions::default(),
            &DryRunOptions {
                rejects: None,
                emit: Some(emit.clone()),
                forward_managers: false,
            },
        )
        .unwrap();
        for line in std::fs::read_to_string(&emit).unwrap().lines().take(40) {
            let v: Value = serde_json::from_str(line).unwrap();
            let r = srv.post("/Users", v["user"].clone()).await;
            assert_eq!(r.status, 201, "{preset}: {}", r.body);
            assert_eq!(r.body["userName"], v["user"]["userName"]);
        }
    }
}

fn export_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/exports")
        .join(name)
}

/// (row, field, code, reason) of each line of a rejects file.
fn rejects_of(path: &std::path::Path) -> Vec<(u64, String, String, String)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records()
        .map(|x| {
            let x = x.unwrap();
            (
                x[0].parse().unwrap(),
                x[2].to_string(),
                x[3].to_string(),
                x[4].to_string(),
            )
        })
        .collect()
}

#[test]
fn json_values_are_read_by_type() {
    let rejects = tmp("typed.rejects.csv");
    let s = dry_run::run(
        &export_fixture("typed.ndjson"),
        &presets::load("generic").unwrap(),
        &IngestOptions::default(),
        &DryRunOptions {
            rejects: Some(rejects.clone()),
            emit: None,
            forward_managers: false,
        },
    )
    .unwrap();
    assert_eq!((s.rows, s.users, s.rejected), (8, 2, 6));
    let got: Vec<(u64, String, String)> = rejects_of(&rejects)
        .into_iter()
        .map(|(row, field, code, reason)| {
            // The reason says what was expected and what came.
            if code == "wrong_type" {
                assert!(reason.contains("expected a string, got an"), "{reason}");
            }
            (row, field, code)
        })
        .collect();
    let want: Vec<(u64, String, String)> = [
        (2, "email", "wrong_type"),          // an array where text is expected
        (3, "email", "wrong_type"),          // an object
        (4, "email", "duplicate_key"),       // flat record, read in place
        (6, "userName", "missing_required"), // null counts as missing
        (7, "department", "wrong_type"),
        (8, "email", "duplicate_key"), // escaped text: read through the tape
    ]
    .map(|(r, f, c)| (r, f.to_string(), c.to_string()))
    .to_vec();
    assert_eq!(got, want);
}

#[test]
fn an_empty_json_array_is_an_export_of_no_rows() {
    let s = dry_run::run(
        &export_fixture("empty.json"),
        &presets::load("bamboohr").unwrap(),
        &IngestOptions::default(),
        &DryRunOptions::default(),
    )
    .unwrap();
    assert_eq!((s.rows, s.users, s.rejected), (0, 0, 0));
}

#[test]
fn an_object_wrapping_the_records_is_read_as_its_array() {
    // BambooHR's report API: {"title", "fields": [...], "employees": [...]}.
    let s = dry_run::run(
        &export_fixture("bamboohr-report.json"),
        &presets::load("bamboohr").unwrap(),
        &IngestOptions::default(),
        &DryRunOptions::default(),
    )
    .unwrap();
    assert_eq!((s.rows, s.users, s.rejected), (3, 3, 0));
    let note = scimload::source::wrapped::note(&export_fixture("bamboohr-report.json"));
    assert!(note.is_some_and(|n| n.contains("'employees'")));
    // Two arrays of records and no telling which: refused, naming them.
    let e = dry_run::run(
        &export_fixture("two-arrays.json"),
        &presets::load("bamboohr").unwrap(),
        &IngestOptions::default(),
        &DryRunOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("employees, contractors") && e.contains("jq"),
        "{e}"
    );
}

fn cli_dry_run(file: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args([
            "import",
            export_fixture(file).to_str().unwrap(),
            "--dry-run",
            "--json",
        ])
        .output()
        .unwrap()
}

#[test]
fn presets_need_only_their_required_columns() {
    // Workday without Phone_Work and Worker_Type: a warning each, the rest imported.
    let out = cli_dry_run("workday-no-phone-type.csv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("no column 'Phone_Work'; phoneNumbers.work will not be set"),
        "{err}"
    );
    assert!(
        err.contains("no column 'Worker_Type'; userType will not be set"),
        "{err}"
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["rows"].as_u64(), s["users"].as_u64()),
        (Some(5), Some(5))
    );
    // BambooHR without employeeNumber.
    let out = cli_dry_run("bamboohr-no-employee-number.json");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("'employeeNumber'; enterprise.employeeNumber will not be set"),
        "{err}"
    );
    // A required column missing still stops the run.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args([
            "import",
            export_fixture("workday-no-email.csv").to_str().unwrap(),
            "--preset",
            "workday",
            "--dry-run",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("'Email_Work'"), "{err}");
}

#[test]
fn custom_extension_attributes_are_typed_per_row() {
    let spec = presets::load_file(&export_fixture("acme-mapping.toml")).unwrap();
    let rejects = tmp("acme.rejects.csv");
    let emit = tmp("acme.emit.ndjson");
    let s = dry_run::run(
        &export_fixture("acme.csv"),
        &spec,
        &IngestOptions::default(),
        &DryRunOptions {
            rejects: Some(rejects.clone()),
            emit: Some(emit.clone()),
            forward_managers: false,
        },
    )
    .unwrap();
    assert_eq!((s.rows, s.users, s.rejected), (5, 1, 4));
    let acme = "urn:example:params:scim:schemas:extension:acme:2.0:User";
    let got: Vec<(u64, String, String, String)> = rejects_of(&rejects);
    let want = [
        (2, "badgeNumber", "'10x' is not an integer"),
        (3, "remote", "'maybe' is not a boolean"),
        (4, "office.floor", "'two' is not an integer"),
        (5, "hired", "'2021-13-04' is not a date-time"),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((row, field, code, reason), (wr, wf, why)) in got.iter().zip(want) {
        assert_eq!(
            (*row, field.as_str(), code.as_str()),
            (wr, format!("{acme}:{wf}").as_str(), "invalid_value")
        );
        assert!(reason.starts_with(why), "{reason}");
    }
    // The accepted row, as JSON values: typed, grouped under its schema, roles split.
    let line = std::fs::read_to_string(&emit).unwrap();
    let user: Value =
        serde_json::from_str::<Value>(line.lines().next().unwrap()).unwrap()["user"].clone();
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(export_fixture("acme-row1.golden.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(user, golden);
    assert_eq!(user[acme]["badgeNumber"], 1042);
    assert_eq!(
        user["roles"],
        serde_json::json!([{"value": "admin"}, {"value": "auditor"}])
    );
}
