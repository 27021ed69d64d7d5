//! One report model for every writer. A bench run, the merged shards of one, or an import
//! all become a [`ReportData`] computed from the interval log and the run's metadata; the
//! terminal, JSON, Markdown and HTML writers only format it, so they can never disagree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::metrics::new_histogram;
use crate::metrics::stats::{operations, CurvePoint, OpStats, Pcts};
use crate::metrics::threshold::{Threshold, Verdict};
use crate::metrics::timeline::{Timeline, TimelineError};
use crate::results::bench::{BenchSummary, ResultsError};
pub use crate::results::import::ImportSummary;
use crate::results::knee::KneeResult;
use crate::results::Machine;

pub(crate) mod capacity;
pub mod charts;
pub(crate) mod compare;
pub mod html;
pub mod markdown;
pub(crate) mod shards;
pub(crate) mod tables;
pub(crate) mod terminal;

/// Names the report format; bumped when a field changes meaning.
pub const SCHEMA: &str = "scimload-report/1";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    #[error("cannot read {path}: {detail}; give a directory written by `scimload bench` or `scimload import --report`")]
    Read { path: PathBuf, detail: String },
    #[error("{0}")]
    Mismatch(String),
    #[error("cannot write {path}: {source}; check the directory exists and is writable")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot draw the chart '{0}': {1}")]
    Chart(String, String),
}

/// What a result directory holds.
#[derive(Debug, Clone)]
pub enum Run {
    Bench(Box<BenchSummary>),
    Import(Box<ImportSummary>),
}

/// Reads one result directory: summary.json and intervals.hlog.
pub fn load(dir: &Path) -> Result<(Run, Timeline), ReportError> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| ReportError::Read {
            path: p,
            detail: e.to_string(),
        })
    };
    let raw = read("summary.json")?;
    let bad = |e: serde_json::Error| ReportError::Read {
        path: dir.join("summary.json"),
        detail: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_slice(&raw).map_err(bad)?;
    let run = if value.get("kind").and_then(|k| k.as_str()) == Some("import") {
        Run::Import(Box::new(serde_json::from_value(value).map_err(bad)?))
    } else {
        Run::Bench(Box::new(serde_json::from_value(value).map_err(bad)?))
    };
    let tl = Timeline::read_log(&read("intervals.hlog")?)?;
    Ok((run, tl))
}

/// Reads and, for several directories (shards of one bench run), merges them exactly.
/// Returns the merged bench result too, for writing it out.
pub fn open(dirs: &[PathBuf], thresholds: &[Threshold]) -> Result<(Run, Timeline), ReportError> {
    if let [one] = dirs {
        let (run, tl) = load(one)?;
        return Ok(match run {
            // Thresholds given to `report` are judged again on the log.
            Run::Bench(mut s) if !thresholds.is_empty() => {
                s.compute(&tl, thresholds);
                (Run::Bench(s), tl)
            }
            other => (other, tl),
        });
    }
    let mut parts: Vec<(BenchSummary, Timeline)> = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        match load(d)? {
            (Run::Bench(s), tl) => {
                if let Some(j) = parts.iter().position(|(p, _)| overlaps(p, &s)) {
                    return Err(ReportError::Mismatch(format!(
                        "{} and {} hold the same run (run id {}, shard {}): merged, every request would count twice; give each shard's directory once",
                        dirs[j].display(),
                        dirs[i].display(),
                        s.run_id,
                        if s.shard == parts[j].0.shard {
                            s.shard.clone()
                        } else {
                            format!("{} and {}", parts[j].0.shard, s.shard)
                        }
                    )));
                }
                parts.push((*s, tl))
            }
            (Run::Import(_), _) => {
                return Err(ReportError::Mismatch(format!(
                    "{} holds an import; only the shards of one bench run merge (report one import at a time, or use --compare)",
                    d.display()
                )))
            }
        }
    }
    let (s, tl) = crate::results::bench::merge(parts, thresholds)?;
    Ok((Run::Bench(Box::new(s)), tl))
}

/// Whether two results hold some of the same requests: one run's same shard twice, the
/// shards of two different splits of it (`1/2` and `1/1` overlap), or a merged result
/// beside a part of the same run (its shards are not listed, so any part overlaps it).
fn overlaps(a: &BenchSummary, b: &BenchSummary) -> bool {
    let count = |s: &str| s.split_once('/').map(|(_, n)| n.to_string());
    a.run_id == b.run_id
        && (a.shard == b.shard
            || a.shard == "merged"
            || b.shard == "merged"
            || count(&a.shard) != count(&b.shard))
}

/// What ran, against what, with which settings, where and when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunInfo {
    pub tool: String,
    /// `bench` or `import`.
    pub kind: String,
    /// The bench scenario, or `import`.
    pub scenario: String,
    pub target: String,
    pub dialect: String,
    /// `open`, `closed`, or `import`.
    pub model: String,
    /// The offered rate as given (`500/s`, a ramp), if any.
    pub rate: Option<String>,
    /// Connections (bench) or requests in flight (import).
    pub concurrency: usize,
    pub started: String,
    pub measured_seconds: f64,
    pub warmup_seconds: f64,
    /// How many shard logs the report holds.
    pub shards: u32,
    pub interval_ms: u64,
    pub machine: Option<Machine>,
    /// Everything else the run was given (scenario parameters, import flags).
    pub settings: serde_json::Value,
}

/// All operations together over the measured window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub per_second: f64,
    pub response: Pcts,
    /// Requests planned but never sent (open model).
    pub dropped: u64,
    pub send_lag_p99_ms: Option<f64>,
    /// False when the generator fell behind its schedule (send lag p99 > 1 ms).
    pub kept_schedule: bool,
}

/// What an import did with the rows, for an import's report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportOutcome {
    pub input: String,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub failed: u64,
    pub pending: u64,
    pub not_sent: u64,
    pub groups: u64,
    pub memberships: u64,
    pub users_per_second: f64,
    pub rejects_by_reason: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    /// Manager PATCHes the target refused.
    #[serde(default)]
    pub managers_failed: u64,
    /// The pre-flight comparison with the target's /Schemas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<crate::results::import::SchemaFindings>,
    /// What reading users back found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<crate::results::import::Verification>,
}

/// One point of a percentile spectrum.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct SpectrumPoint {
    /// 0–100; 100 is the maximum.
    pub percentile: f64,
    pub ms: f64,
}

/// One operation over the measured window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpReport {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub per_second: f64,
    /// From the intended send time (bench) or from the send (import).
    pub response: Pcts,
    /// From the actual send; none when the run did not separate it (import).
    pub service: Option<Pcts>,
    pub send_lag: Option<Pcts>,
    pub errors_by_status: BTreeMap<String, u64>,
    pub spectrum: Vec<SpectrumPoint>,
}

/// One interval of the log, all operations together.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Interval {
    /// Seconds from the start of the window.
    pub t: f64,
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Error answers by status in this interval.
    pub errors: BTreeMap<String, u64>,
}

/// Latency against a property of the request (group size, page position).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Curve {
    pub name: String,
    pub op: String,
    /// What x is: `group size (members)`, `page position (first item)`.
    pub x_label: String,
    pub points: Vec<CurvePoint>,
}

/// The report: everything the writers print, and nothing they compute.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportData {
    pub schema: String,
    pub title: String,
    pub run: RunInfo,
    pub totals: Totals,
    pub import: Option<ImportOutcome>,
    pub operations: Vec<OpReport>,
    pub intervals: Vec<Interval>,
    pub curves: Vec<Curve>,
    pub knee: Option<KneeResult>,
    pub thresholds: Vec<Verdict>,
    pub capacity: capacity::Capacity,
}

/// Percentiles of the spectrum: evenly spaced on the 1/(1-q) log axis HdrHistogram plots
/// use (0, 43.8, 68.4, 82.2, 90, …, 99.999), then the maximum.
fn spectrum(h: &Histogram<u64>) -> Vec<SpectrumPoint> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut v: Vec<SpectrumPoint> = (0..=20)
        .map(|k| {
            let q = 1.0 - 10f64.powf(-(k as f64) / 4.0);
            SpectrumPoint {
                percentile: round(q * 100.0, 4),
                ms: h.value_at_quantile(q) as f64 / 1000.0,
            }
        })
        .collect();
    v.push(SpectrumPoint {
        percentile: 100.0,
        ms: h.max() as f64 / 1000.0,
    });
    v
}

pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn op_report(name: &str, o: &OpStats, tl: &Timeline, window: [u64; 2]) -> OpReport {
    let h = tl.total(&format!("{name}.response"), tl.slot(window[0]), window[1]);
    let some = |p: &Pcts| (p.count > 0).then(|| p.clone());
    OpReport {
        name: name.to_string(),
        requests: o.requests,
        errors: o.errors,
        error_rate: round(o.errors as f64 / o.requests.max(1) as f64, 6),
        per_second: round(o.per_second, 3),
        response: o.response.clone(),
        service: some(&o.service),
        send_lag: some(&o.send_lag),
        errors_by_status: o.errors_by_status.clone(),
        spectrum: spectrum(&h),
    }
}

/// The intervals of the window, every operation's responses and errors together. One
/// interval's sum is built, read and dropped before the next (a sum per interval held at
/// once was ~147 KB each: 265 MB at the end of a 30-minute run).
fn intervals(tl: &Timeline, window: [u64; 2]) -> Vec<Interval> {
    let from = tl.slot(window[0]);
    let secs = tl.interval_ms as f64 / 1000.0;
    let responses: Vec<_> = tl
        .series
        .iter()
        .filter(|(tag, _)| tag.ends_with(".response"))
        .map(|(_, slots)| slots)
        .collect();
    let mut errs: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
    for (tag, slots) in &tl.series {
        if let Some((_, status)) = tag.split_once(".error.") {
            for (slot, h) in slots.range(from..window[1]) {
                *errs
                    .entry(*slot)
                    .or_default()
                    .entry(status.replace('_', " "))
                    .or_default() += h.len();
            }
        }
    }
    let mut slots: Vec<u64> = responses
        .iter()
        .flat_map(|s| s.range(from..window[1]).map(|(k, _)| *k))
        .chain(errs.keys().copied())
        .collect();
    slots.sort_unstable();
    slots.dedup();
    let mut h = new_histogram();
    slots
        .into_iter()
        .map(|slot| {
            h.reset();
            for r in &responses {
                if let Some(x) = r.get(&slot) {
                    let _ = h.add(&*x.histogram());
                }
            }
            let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            Interval {
                t: round((slot.saturating_sub(from)) as f64 / 1000.0, 3),
                requests: h.len(),
                per_second: round(h.len() as f64 / secs, 3),
                p50_ms: ms(0.5),
                p99_ms: ms(0.99),
                max_ms: h.max() as f64 / 1000.0,
                errors: errs.remove(&slot).unwrap_or_default(),
            }
        })
        .collect()
}

fn curves(c: &BTreeMap<String, Vec<CurvePoint>>) -> Vec<Curve> {
    c.iter()
        .map(|(name, points)| {
            let (op, kind) = name.split_once('.').unwrap_or((name, ""));
            Curve {
                name: name.clone(),
                op: op.to_string(),
                x_label: match kind {
                    "by_group_size" => "group size (members)".into(),
                    "by_position" => "page position (first item)".into(),
                    other => other.trim_start_matches("by_").replace('_', " "),
                },
                points: points.clone(),
            }
        })
        .collect()
}

fn totals(ops: &[OpReport], all: &Histogram<u64>, secs: f64, dropped: u64) -> Totals {
    let requests: u64 = ops.iter().map(|o| o.requests).sum();
    let errors: u64 = ops.iter().map(|o| o.errors).sum();
    Totals {
        requests,
        errors,
        error_rate: round(errors as f64 / requests.max(1) as f64, 6),
        per_second: round(requests as f64 / secs.max(1e-9), 3),
        response: Pcts::of(all),
        dropped,
        send_lag_p99_ms: None,
        kept_schedule: true,
    }
}

impl ReportData {
    /// Builds the report of a run from its log. `slo` is the objective of the capacity
    /// section when the run had no knee search of its own (e.g. `p99<300ms`).
    pub fn build(run: &Run, tl: &Timeline, slo: &Threshold) -> ReportData {
        match run {
            Run::Bench(s) => Self::from_bench(s, tl, slo),
            Run::Import(i) => Self::from_import(i, tl, slo),
        }
    }

    fn from_bench(s: &BenchSummary, tl: &Timeline, slo: &Threshold) -> ReportData {
        // Every number again from the log, whatever summary.json says: the log is the
        // result, the summary a convenience.
        let mut s = s.clone();
        let thresholds: Vec<Threshold> = s
            .thresholds
            .iter()
            .filter_map(|v| Threshold::parse(&v.threshold).ok())
            .collect();
        s.compute(tl, &thresholds);
        let s = &s;
        let window = s.window_ms;
        let ops: Vec<OpReport> = s
            .operations
            .iter()
            .map(|(name, o)| op_report(name, o, tl, window))
            .collect();
        let all = crate::metrics::stats::all_responses(tl, window[0], window[1]);
        let mut totals = totals(&ops, &all, s.measured_seconds, s.dropped);
        totals.send_lag_p99_ms = Some(s.send_lag_p99_ms);
        totals.kept_schedule = s.kept_schedule;
        let run = RunInfo {
            tool: s.tool.clone(),
            kind: "bench".into(),
            scenario: s.scenario.clone(),
            target: s.target.clone(),
            dialect: s
                .params
                .get("dialect")
                .and_then(|d| d.as_str())
                .unwrap_or("generic")
                .to_string(),
            model: s.model.clone(),
            rate: s.offered_rate.map(|_| s.rate.clone()),
            concurrency: s.connections,
            started: s.started.clone(),
            measured_seconds: s.measured_seconds,
            warmup_seconds: s.warmup_seconds,
            shards: s.shards,
            interval_ms: tl.interval_ms,
            machine: Some(s.machine.clone()),
            settings: s.params.clone(),
        };
        let curves = curves(&s.curves);
        let capacity = capacity::Capacity::of_bench(s, tl, &ops, &curves, slo);
        ReportData {
            schema: SCHEMA.into(),
            title: format!(
                "scimload bench {} against {}{}",
                s.scenario,
                s.target,
                if s.shards > 1 {
                    format!(" ({} shards)", s.shards)
                } else {
                    String::new()
                }
            ),
            run,
            totals,
            import: None,
            operations: ops,
            intervals: intervals(tl, window),
            curves,
            knee: s.knee.clone(),
            thresholds: s.thresholds.clone(),
            capacity,
        }
    }

    fn from_import(i: &ImportSummary, tl: &Timeline, slo: &Threshold) -> ReportData {
        let window = tl.span().map_or([0, 0], |(a, b)| [a, b]);
        let secs = i.elapsed_seconds;
        let (stats, curve_map) = operations(tl, window[0], window[1], secs);
        let ops: Vec<OpReport> = stats
            .iter()
            .map(|(name, o)| op_report(name, o, tl, window))
            .collect();
        let all = crate::metrics::stats::all_responses(tl, window[0], window[1]);
        let mut totals = totals(&ops, &all, secs, 0);
        // Import errors are counted per answer, not per operation.
        totals.errors = i.errors.values().sum();
        totals.error_rate = round(totals.errors as f64 / totals.requests.max(1) as f64, 6);
        let run = RunInfo {
            tool: i.tool.clone(),
            kind: "import".into(),
            scenario: "import".into(),
            target: i.target.clone(),
            dialect: i.dialect.clone(),
            model: "import".into(),
            rate: None,
            concurrency: i.concurrency,
            started: i.started.clone(),
            measured_seconds: secs,
            warmup_seconds: 0.0,
            shards: 1,
            interval_ms: tl.interval_ms,
            machine: Some(i.machine.clone()),
            settings: serde_json::json!({
                "input": i.input,
                "lookup": i.lookup,
                "bulk": i.bulk,
                "member_batch": i.member_batch,
            }),
        };
        let outcome = ImportOutcome {
            input: i.input.clone(),
            rows: i.rows,
            created: i.created,
            updated: i.updated,
            unchanged: i.unchanged,
            rejected: i.rejected,
            failed: i.failed,
            pending: i.pending,
            not_sent: i.not_sent,
            groups: i.export_groups,
            memberships: i.export_memberships,
            users_per_second: round(i.users_per_second, 3),
            rejects_by_reason: i.rejects_by_reason.clone(),
            errors: i.errors.clone(),
            managers_failed: i.managers_failed,
            schema: i.schema.clone(),
            verification: i.verification.clone(),
        };
        let curves = curves(&curve_map);
        let capacity = capacity::Capacity::of_import(i, &totals, &ops, &curves, slo);
        ReportData {
            schema: SCHEMA.into(),
            title: format!("scimload import of {} into {}", i.input, i.target),
            run,
            totals,
            import: Some(outcome),
            operations: ops,
            intervals: intervals(tl, window),
            curves,
            knee: None,
            thresholds: Vec::new(),
            capacity,
        }
    }

    /// Every threshold held.
    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|v| v.passed)
    }
}

/// Writes report.json, report.md and report.html into `dir`.
pub fn write_all(dir: &Path, r: &ReportData) -> Result<(), ReportError> {
    let html = html::report(r)?;
    write(
        dir,
        "report.json",
        &serde_json::to_vec_pretty(r).expect("report serializes"),
    )?;
    write(dir, "report.md", markdown::report(r).as_bytes())?;
    write(dir, "report.html", html.as_bytes())
}

pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ReportError> {
    let io = |path: PathBuf| move |source| ReportError::Write { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let p = dir.join(name);
    std::fs::write(&p, bytes).map_err(io(p.clone()))
}
