//! A benchmark's record: summary.json and intervals.hlog of a result directory, their one
//! writer and one reader, and the exact merge of shards. Every number of the summary is
//! computed from the interval log alone, so a single run, merged shards and a re-read log
//! give the same summary for the same data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::knee::KneeResult;
use super::Machine;
use crate::metrics::stats::{operations, CurvePoint, OpStats};
use crate::metrics::threshold::{Threshold, Verdict};
use crate::metrics::timeline::{Timeline, TimelineError};

/// Why a result directory could not be written, read or merged.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Mismatch(String),
    #[error("cannot read {path}: {detail}; pass directories written by `scimload bench --report`")]
    Read { path: PathBuf, detail: String },
}

/// summary.json of a run (or of merged shards).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchSummary {
    pub tool: String,
    pub scenario: String,
    pub target: String,
    pub run_id: String,
    /// `i/N` of the shard that wrote it; `merged` after a merge.
    pub shard: String,
    /// How many shard logs this summary holds.
    pub shards: u32,
    pub model: String,
    /// The offered rate (open model): constant, or the mean of a ramp.
    pub offered_rate: Option<f64>,
    pub rate: String,
    pub connections: usize,
    pub warmup_seconds: f64,
    pub duration_seconds: f64,
    pub started: String,
    /// The intended send time of the first request (of this shard; the earliest after a
    /// merge): shards of one run started together when these lie within 1/rate × N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_intended_send: Option<String>,
    pub machine: Machine,
    /// Measured window, epoch milliseconds [from, to).
    pub window_ms: [u64; 2],
    pub measured_seconds: f64,
    pub planned: u64,
    pub sent: u64,
    /// Planned but never sent before the run ended.
    pub dropped: u64,
    pub ok: u64,
    pub errors: u64,
    pub achieved_rate: f64,
    pub send_lag_p99_ms: f64,
    /// False when the send lag p99 exceeded 1 ms: the run fell behind its schedule.
    pub kept_schedule: bool,
    pub operations: BTreeMap<String, OpStats>,
    pub curves: BTreeMap<String, Vec<CurvePoint>>,
    pub knee: Option<KneeResult>,
    pub thresholds: Vec<Verdict>,
    pub params: serde_json::Value,
}

impl BenchSummary {
    /// Whether the run met what it was asked (README's exit codes): every threshold;
    /// with `--steps`, every step (a failing step is a missed SLO); with a knee search,
    /// at least the first rate (otherwise no rate was sustainable at all).
    pub fn passed(&self) -> bool {
        let steps = match &self.knee {
            None => true,
            Some(k) if !k.searched => k.steps.iter().all(|s| s.passed),
            Some(k) => k.steps.first().is_some_and(|s| s.passed),
        };
        steps && self.thresholds.iter().all(|v| v.passed)
    }

    /// Fills the numbers computed from the log: operations, curves, lag, thresholds.
    pub(crate) fn compute(&mut self, tl: &Timeline, thresholds: &[Threshold]) {
        let [from, to] = self.window_ms;
        let (ops, curves) = operations(tl, from, to, self.measured_seconds);
        let mut lag = crate::metrics::new_histogram();
        for tag in tl.series.keys().filter(|t| t.ends_with(".lag")) {
            let _ = lag.add(tl.total(tag, tl.slot(from), to));
        }
        self.send_lag_p99_ms = lag.value_at_quantile(0.99) as f64 / 1000.0;
        // A knee search overloads on purpose; its steps judge their own send lag.
        self.kept_schedule =
            self.model == "closed" || self.knee.is_some() || self.send_lag_p99_ms <= 1.0;
        self.thresholds = thresholds
            .iter()
            .map(|t| {
                let observed = t.observe(tl, from, to, &ops);
                Verdict {
                    threshold: t.text.clone(),
                    observed,
                    passed: observed.is_some_and(|o| t.holds(o)),
                }
            })
            .collect();
        self.operations = ops;
        self.curves = curves;
    }

    /// The terminal summary.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scimload bench {} against {} — {} model{}, {} connections, {:.1} s measured{}",
            self.scenario,
            self.target,
            self.model,
            self.offered_rate
                .map(|_| format!(" at {}", self.rate))
                .unwrap_or_default(),
            self.connections,
            self.measured_seconds,
            if self.shards > 1 {
                format!(", {} shards merged", self.shards)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "  requests: {} planned, {} sent, {} ok, {} errors, {} dropped · achieved {:.0}/s",
            self.planned, self.sent, self.ok, self.errors, self.dropped, self.achieved_rate
        );
        if let Some(t) = &self.first_intended_send {
            let _ = writeln!(
                s,
                "  schedule: first intended send {t} (shard {})",
                self.shard
            );
        }
        let _ = writeln!(
            s,
            "  {:<22} {:>8} {:>9} {:>7} │ response time from intended send (ms)      │ service p99 │ send lag p99",
            "operation", "requests", "rate/s", "errors"
        );
        let _ = writeln!(
            s,
            "  {:<22} {:>8} {:>9} {:>7} │ {:>8} {:>8} {:>8} {:>8} {:>8} │ {:>11} │ {:>12}",
            "", "", "", "", "p50", "p90", "p99", "p99.9", "max", "(ms)", "(ms)"
        );
        for (op, o) in &self.operations {
            let _ = writeln!(
                s,
                "  {:<22} {:>8} {:>9.1} {:>7} │ {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} │ {:>11.2} │ {:>12.3}",
                op,
                o.requests,
                o.per_second,
                o.errors,
                o.response.p50_ms,
                o.response.p90_ms,
                o.response.p99_ms,
                o.response.p999_ms,
                o.response.max_ms,
                o.service.p99_ms,
                o.send_lag.p99_ms
            );
            for (status, n) in &o.errors_by_status {
                let _ = writeln!(s, "  {:<22}   {n} × {status}", "");
            }
        }
        for (name, points) in &self.curves {
            let _ = writeln!(s, "  curve {name} (x: p50 / p99 ms):");
            let line: Vec<String> = points
                .iter()
                .map(|p| format!("{}: {:.2}/{:.2}", p.x, p.p50_ms, p.p99_ms))
                .collect();
            for chunk in line.chunks(5) {
                let _ = writeln!(s, "    {}", chunk.join(" · "));
            }
        }
        if !self.kept_schedule {
            let _ = writeln!(
                s,
                "  WARNING: send lag p99 {:.2} ms > 1 ms: the run could not keep its rate (too few --connections, or the generator's machine is saturated); response times include that delay",
                self.send_lag_p99_ms
            );
        }
        if let Some(k) = &self.knee {
            let _ = writeln!(
                s,
                "  {} ({}, error budget {:.2}%):",
                if k.searched {
                    "knee search"
                } else {
                    "rate steps"
                },
                k.slo,
                k.error_budget * 100.0
            );
            for st in &k.steps {
                let _ =
                    writeln!(
                    s,
                    "    {:>9.0}/s offered · {:>9.0}/s achieved · {} {:.1} ms · errors {:.2}% · {}",
                    st.offered,
                    st.achieved,
                    k.slo.split('<').next().unwrap_or("p99"),
                    st.slo_ms,
                    st.error_rate * 100.0,
                    if st.passed { "pass".to_string() } else { format!("FAIL: {}", st.reason) }
                );
            }
            let _ = writeln!(s, "  max sustainable rate: {}", k.verdict());
        }
        for v in &self.thresholds {
            let _ = writeln!(
                s,
                "  threshold {}: {} (observed {})",
                v.threshold,
                if v.passed { "ok" } else { "MISSED" },
                v.observed.map_or("nothing".into(), |o| format!("{o:.3}"))
            );
        }
        s
    }
}

/// What a shard that could not run leaves in its result directory.
pub const FAILED_FILE: &str = "failed.json";

/// A shard's failure, as `scimload report --shards` reads it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ShardFailure {
    pub run_id: String,
    /// `i/N`.
    pub shard: String,
    pub error: String,
}

/// Records in `dir` that this shard failed and why (best effort: the error itself is
/// what the caller reports).
/// `shard` is its `i/N`.
pub fn write_failure(dir: &Path, run_id: &str, shard: &str, error: &str) {
    let f = ShardFailure {
        run_id: run_id.into(),
        shard: shard.into(),
        error: error.into(),
    };
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::remove_file(dir.join("summary.json"));
    let _ = write_atomic(
        &dir.join(FAILED_FILE),
        &serde_json::to_vec_pretty(&f).expect("failure serializes"),
    );
}

/// Writes through a temporary name and a rename, so a reader (a merge waiting on a
/// shared volume) sees the whole file or none.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Writes `intervals.hlog` and then `summary.json` into `dir`: a summary present means
/// the results are complete.
pub fn write_results(
    dir: &Path,
    summary: &BenchSummary,
    tl: &Timeline,
) -> Result<(), ResultsError> {
    let io = |path: PathBuf| move |source| ResultsError::Write { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let _ = std::fs::remove_file(dir.join(FAILED_FILE));
    let log = dir.join("intervals.hlog");
    let mut buf = Vec::new();
    tl.write_log(
        &mut buf,
        &[format!(
            "scenario={} target={} shard={} run_id={}",
            summary.scenario, summary.target, summary.shard, summary.run_id
        )],
    )?;
    write_atomic(&log, &buf).map_err(io(log.clone()))?;
    let path = dir.join("summary.json");
    let json = serde_json::to_vec_pretty(summary).expect("summary serializes");
    write_atomic(&path, &json).map_err(io(path.clone()))?;
    Ok(())
}

/// Reads a result directory.
pub fn read_results(dir: &Path) -> Result<(BenchSummary, Timeline), ResultsError> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| ResultsError::Read {
            path: p,
            detail: e.to_string(),
        })
    };
    let summary: BenchSummary =
        serde_json::from_slice(&read("summary.json")?).map_err(|e| ResultsError::Read {
            path: dir.join("summary.json"),
            detail: e.to_string(),
        })?;
    let tl = Timeline::read_log(&read("intervals.hlog")?)?;
    Ok((summary, tl))
}

/// The earlier of two RFC 3339 times (compared as times: their texts need not sort).
fn earliest(a: &Option<String>, b: &Option<String>) -> Option<String> {
    let at = |s: &Option<String>| {
        s.as_deref().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    match (at(a), at(b)) {
        (Some(x), Some(y)) if y < x => b.clone(),
        (None, Some(_)) => b.clone(),
        _ => a.clone(),
    }
}

/// Merges shard results exactly: histograms added per tag and interval, counts summed,
/// then every percentile recomputed from the merged log.
pub fn merge(
    parts: Vec<(BenchSummary, Timeline)>,
    thresholds: &[Threshold],
) -> Result<(BenchSummary, Timeline), ResultsError> {
    let mut it = parts.into_iter();
    let (mut summary, mut tl) = it.next().ok_or_else(|| ResultsError::Read {
        path: PathBuf::from("(none)"),
        detail: "no result directories given".into(),
    })?;
    let mut measured = summary.measured_seconds;
    for (s, t) in it {
        if s.scenario != summary.scenario {
            return Err(ResultsError::Mismatch(format!(
                "these results come from different scenarios ({} and {}); merge the shards of one run, and compare different runs side by side",
                summary.scenario, s.scenario
            )));
        }
        tl.merge(&t)?;
        summary.window_ms[0] = summary.window_ms[0].min(s.window_ms[0]);
        summary.window_ms[1] = summary.window_ms[1].max(s.window_ms[1]);
        measured = measured.max(s.measured_seconds);
        summary.planned += s.planned;
        summary.sent += s.sent;
        summary.dropped += s.dropped;
        summary.ok += s.ok;
        summary.errors += s.errors;
        summary.connections += s.connections;
        summary.first_intended_send =
            earliest(&summary.first_intended_send, &s.first_intended_send);
        summary.offered_rate = match (summary.offered_rate, s.offered_rate) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    summary.shards = tl.sources;
    if summary.shards > 1 {
        summary.shard = "merged".into();
        if let Some(r) = summary.offered_rate {
            summary.rate = format!("{r}/s in all");
        }
    }
    summary.measured_seconds = measured;
    summary.achieved_rate = (summary.ok + summary.errors) as f64 / measured.max(1e-3);
    summary.compute(&tl, thresholds);
    Ok((summary, tl))
}
