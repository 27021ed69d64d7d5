//! Reports: golden JSON and Markdown from fixed interval logs, the JSON Schema checked
//! against real output (a fixture bench run and a live import), shard merging through
//! result directories, --compare with its exit code, and the self-contained HTML.
//!
//! Set UPDATE_GOLDEN=1 to rewrite the expected files after an intended change.

use std::path::{Path, PathBuf};
use std::process::Command;

use scimload::bench::{self, BenchSummary};
use scimload::metrics::threshold::Threshold;
use scimload::metrics::timeline::Timeline;
use scimload::report::{self, ReportData, Run};
use serde_json::Value;

use crate::harness::fixture_path;

const FIXTURES: [&str; 2] = ["report/mixed-steps", "report/group-members"];

fn slo() -> Threshold {
    Threshold::parse("p99<300ms").unwrap()
}

fn build(dir: &Path) -> ReportData {
    let (run, tl) = report::open(&[dir.to_path_buf()], &[]).unwrap();
    ReportData::build(&run, &tl, &slo())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scimload-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn golden(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).unwrap();
    }
    std::fs::read_to_string(path).ok()
}

#[test]
fn json_and_markdown_match_the_golden_files() {
    for f in FIXTURES {
        let dir = fixture_path(f);
        let r = build(&dir);
        let json = serde_json::to_string_pretty(&r).unwrap();
        let expected = golden(&dir.join("expected-report.json"), &json)
            .unwrap_or_else(|| panic!("{f}: no expected-report.json; run with UPDATE_GOLDEN=1"));
        let (a, e): (Value, Value) = (
            serde_json::from_str(&json).unwrap(),
            serde_json::from_str(&expected).unwrap(),
        );
        assert_eq!(a, e, "{f}: report.json differs from the golden file");
        let md = report::markdown::report(&r);
        let expected = golden(&dir.join("expected-report.md"), &md).unwrap();
        assert_eq!(md, expected, "{f}: report.md differs from the golden file");
    }
}

/// The fixtures hold what each writer must show: a knee table and an error chart for
/// the stepped run, group-size effects for the group run.
#[test]
fn fixtures_carry_knee_errors_and_group_size_effects() {
    let steps = build(&fixture_path(FIXTURES[0]));
    let k = steps.knee.as_ref().unwrap();
    assert_eq!(k.steps.len(), 3);
    assert_eq!(steps.capacity.max_rate, k.max_sustainable_rate);
    assert!(steps.intervals.iter().any(|i| i.errors.contains_key("503")));
    let errors: u64 = steps.intervals.iter().flat_map(|i| i.errors.values()).sum();
    assert_eq!(
        errors, steps.totals.errors,
        "errors over time add up to the total"
    );
    // Little's law, as written.
    let c = &steps.capacity;
    assert!((c.concurrency - c.max_rate * c.mean_latency_ms / 1000.0).abs() < 0.01);
    assert_eq!(c.projections.len(), 3);
    assert!(c.projections[2].seconds > c.projections[1].seconds * 9.0);

    let group = build(&fixture_path(FIXTURES[1]));
    let ops: Vec<&str> = group
        .capacity
        .group_size
        .iter()
        .map(|g| g.op.as_str())
        .collect();
    assert!(
        ops.contains(&"patch_members") && ops.contains(&"get_group"),
        "{ops:?}"
    );
    let get = group
        .capacity
        .group_size
        .iter()
        .find(|g| g.op == "get_group")
        .unwrap();
    assert!(get.largest_measured >= 19_000, "{get:?}");
    assert!(
        get.p50_ms_per_1000 > 0.0,
        "reading a group grows with its members: {get:?}"
    );
}

pub(crate) fn schema() -> (boon::Schemas, boon::SchemaIndex) {
    let raw: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/report.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut schemas = boon::Schemas::new();
    let mut c = boon::Compiler::new();
    c.add_resource("report.schema.json", raw).unwrap();
    let idx = c.compile("report.schema.json", &mut schemas).unwrap();
    (schemas, idx)
}

#[test]
fn report_json_follows_its_schema_and_broken_ones_do_not() {
    let (schemas, idx) = schema();
    for f in FIXTURES {
        let v = serde_json::to_value(build(&fixture_path(f))).unwrap();
        if let Err(e) = schemas.validate(&v, idx) {
            panic!("{f}: {e:#}");
        }
        let mut broken = v.clone();
        broken["operations"][0]["requests"] = Value::from(-1);
        assert!(schemas.validate(&broken, idx).is_err());
        let mut broken = v.clone();
        broken.as_object_mut().unwrap().remove("capacity");
        assert!(schemas.validate(&broken, idx).is_err());
        let mut broken = v;
        broken["totals"]["surprise"] = Value::from(1);
        assert!(schemas.validate(&broken, idx).is_err());
    }
}

/// A live import writes report.json/.md/.html next to its summary; the report holds the
/// import's outcome and follows the schema, and `scimload report` reads the directory.
#[test]
fn an_import_report_is_written_and_follows_the_schema() {
    let dir = tmp("import");
    let out = Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args(["import", "--quiet", "--report"])
        .arg(&dir)
        .arg(fixture_path("../../datasets/workday-1k.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    let (schemas, idx) = schema();
    if let Err(e) = schemas.validate(&v, idx) {
        panic!("{e:#}");
    }
    let r: ReportData = serde_json::from_value(v).unwrap();
    let i = r.import.as_ref().unwrap();
    assert_eq!((i.rows, i.created, i.rejected), (1000, 1000, 0));
    assert_eq!((i.groups, i.memberships), (115, 3864));
    assert_eq!(r.capacity.shape.groups, 115.0);
    assert!(r
        .operations
        .iter()
        .any(|o| o.name == "create_user" || o.name == "bulk"));
    assert!(std::fs::read_to_string(dir.join("report.html"))
        .unwrap()
        .contains("<svg"));
    let again = Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args(["report", "--format", "markdown"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        std::fs::read_to_string(dir.join("report.md")).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Splits every histogram of a log into two halves: the logs two shards of one run
/// would have written.
fn halves(tl: &Timeline) -> (Timeline, Timeline) {
    let (mut a, mut b) = (tl.clone(), tl.clone());
    for (tag, slots) in &tl.series {
        for (slot, h) in slots {
            let (ha, hb) = (
                a.series
                    .get_mut(tag)
                    .unwrap()
                    .get_mut(slot)
                    .unwrap()
                    .histogram_mut(),
                b.series
                    .get_mut(tag)
                    .unwrap()
                    .get_mut(slot)
                    .unwrap()
                    .histogram_mut(),
            );
            ha.reset();
            hb.reset();
            let mut turn = false;
            for v in h.histogram().iter_recorded() {
                let n = v.count_at_value();
                let (first, second) = if turn {
                    (n / 2, n - n / 2)
                } else {
                    (n - n / 2, n / 2)
                };
                turn ^= n % 2 == 1;
                ha.record_n(v.value_iterated_to(), first).unwrap();
                hb.record_n(v.value_iterated_to(), second).unwrap();
            }
        }
    }
    (a, b)
}

#[test]
fn two_shards_merge_into_the_report_of_the_whole_run() {
    let src = fixture_path(FIXTURES[0]);
    let (whole_summary, whole_tl) = bench::read_results(&src).unwrap();
    let (ta, tb) = halves(&whole_tl);
    let shard = |n: &str, tl: &Timeline, part: u64| {
        let mut s: BenchSummary = whole_summary.clone();
        s.shard = format!("{n}/2");
        s.planned = whole_summary.planned / 2 + part * (whole_summary.planned % 2);
        let dir = tmp(&format!("shard{n}"));
        bench::write_results(&dir, &s, tl).unwrap();
        dir
    };
    let (d1, d2) = (shard("1", &ta, 0), shard("2", &tb, 1));
    let (run, tl) = report::open(&[d1.clone(), d2.clone()], &[]).unwrap();
    let merged = ReportData::build(&run, &tl, &slo());
    let whole = ReportData::build(&Run::Bench(Box::new(whole_summary)), &whole_tl, &slo());
    assert_eq!(merged.run.shards, 2);
    assert_eq!(merged.operations, whole.operations);
    assert_eq!(merged.intervals, whole.intervals);
    assert_eq!(merged.curves, whole.curves);
    assert_eq!(merged.totals.response, whole.totals.response);
    // Through the command line too, with the merged result written out.
    let out = tmp("merged");
    let cli = Command::new(env!("CARGO_BIN_EXE_scimload"))
        .args(["report", "--json", "--out"])
        .arg(&out)
        .args([&d1, &d2])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let printed: ReportData = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(printed.operations, whole.operations);
    for f in [
        "report.json",
        "report.md",
        "report.html",
        "intervals.hlog",
        "summary.json",
    ] {
        assert!(out.join(f).exists(), "{f} not written");
    }
    for d in [d1, d2, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The same run twice is no regression; a run whose every latency doubled (plus 5 ms)
/// is, and --fail-on-regression turns that into exit code 1.
#[test]
fn compare_flags_a_slower_run_and_fails_when_asked() {
    let base = fixture_path(FIXTURES[0]);
    let (s, tl) = bench::read_results(&base).unwrap();
    let mut slow_tl = tl.clone();
    for (tag, slots) in slow_tl.series.iter_mut() {
        if !tag.ends_with(".response") {
            continue;
        }
        for slot in slots.values_mut() {
            let h = slot.histogram_mut();
            let old = h.clone();
            h.reset();
            for v in old.iter_recorded() {
                h.record_n(v.value_iterated_to() * 2 + 5000, v.count_at_value())
                    .unwrap();
            }
        }
    }
    let slow = tmp("slow");
    bench::write_results(&slow, &s, &slow_tl).unwrap();
    let run = |new: &Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_scimload"))
            .args(["report", "--compare"])
            .arg(&base)
            .arg(new)
            .args(extra)
            .output()
            .unwrap()
    };
    let same = run(&base, &["--fail-on-regression", "--json"]);
    assert!(
        same.status.success(),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    let c: Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(c["regressions"], 0);

    let out = tmp("compare");
    let worse = run(
        &slow,
        &["--fail-on-regression", "--out", out.to_str().unwrap()],
    );
    assert_eq!(worse.status.code(), Some(1));
    let text = String::from_utf8(worse.stdout).unwrap();
    assert!(text.contains("REGRESSION"), "{text}");
    let c: Value =
        serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    let flagged: Vec<(&str, &str)> = c["deltas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["regression"] == true)
        .map(|d| (d["op"].as_str().unwrap(), d["metric"].as_str().unwrap()))
        .collect();
    assert!(flagged.contains(&("get_user", "p50 ms")), "{flagged:?}");
    assert!(flagged.contains(&("create_user", "p99 ms")), "{flagged:?}");
    // Latency only: no throughput or error regression is invented.
    assert!(
        flagged.iter().all(|(_, m)| m.ends_with("ms")),
        "{flagged:?}"
    );
    assert!(std::fs::read_to_string(out.join("compare.html"))
        .unwrap()
        .contains("<svg"));
    // Without --fail-on-regression the comparison is information, exit 0.
    assert!(run(&slow, &[]).status.success());
    for d in [slow, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The HTML stands alone: no scripts, no stylesheets or images from elsewhere, one
/// inline SVG per chart, each with its title drawn in it.
#[test]
fn html_is_self_contained_with_a_titled_svg_per_chart() {
    for f in FIXTURES {
        let r = build(&fixture_path(f));
        let html = report::html::report(&r).unwrap();
        for banned in [
            "<script",
            "<link",
            "<img",
            "src=\"http",
            "url(http",
            "@import",
        ] {
            assert!(!html.contains(banned), "{f}: {banned}");
        }
        let charts = report::charts::all(&r).unwrap();
        assert!(charts.len() >= 4, "{f}: {} charts", charts.len());
        assert_eq!(
            html.matches("<figure class=\"chart\"").count(),
            charts.len()
        );
        for c in &charts {
            assert!(c.svg.starts_with("<svg"), "{}", c.title);
            assert!(c.svg.contains(&format!(">{}<", c.title)) || c.svg.contains(&c.title));
            assert!(c.svg.matches("<polyline").count() + c.svg.matches("<path").count() > 2);
        }
    }
}

/// Charts over time need a few intervals: a run shorter than that (the README's quick
/// start has one 1 s interval) gets no such chart instead of an empty frame; and no
/// axis label is float noise.
#[test]
fn short_runs_get_no_empty_chart_over_time_and_labels_are_round() {
    let mut r = build(&fixture_path("report/mixed-steps"));
    let titles = |r: &ReportData| -> Vec<String> {
        report::charts::all(r)
            .unwrap()
            .into_iter()
            .map(|c| c.title)
            .collect()
    };
    let over_time = "Latency and throughput over time";
    assert!(titles(&r).iter().any(|t| t == over_time));
    let noise = is_float_noise();
    for c in report::charts::all(&r).unwrap() {
        for label in c.svg.split('>').filter_map(|p| p.split('<').next()) {
            let l = label.trim();
            assert!(!noise(l), "'{}': label {l:?}", c.title);
        }
    }
    r.intervals.truncate(1);
    let t = titles(&r);
    assert!(!t.iter().any(|t| t == over_time), "{t:?}");
    assert!(!t.iter().any(|t| t.contains("rrors over time")), "{t:?}");
    assert!(!t.is_empty(), "the other charts stay");
}

/// A numeric label that is float noise: more than four decimals.
fn is_float_noise() -> impl Fn(&str) -> bool {
    |l: &str| {
        let Some((int, frac)) = l.split_once('.') else {
            return false;
        };
        int.trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit())
            && !frac.is_empty()
            && frac.chars().all(|c| c.is_ascii_digit())
            && (frac.len() > 4 || frac.ends_with('0'))
    }
}
