//! `scimload bench`: load-test a SCIM server with provisioning traffic and measure it
//! the way wrk2 does. A run seeds what its scenario needs, drives load in the open model
//! (send times fixed in advance) or the closed model, records three histograms per
//! operation into an interval log, and summarises the measured window. A knee search
//! repeats that at rising rates and reports the highest rate the server sustains.

pub mod engine;
pub mod knee;
pub mod scenario;
pub mod schedule;
pub mod seed;
pub mod summary;
pub mod threshold;
pub mod timer;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::conn::Endpoint;
use crate::client::{ScimClient, Secret};
use crate::metrics::timeline::{Timeline, TimelineError};
use engine::{Model, Phase, Progress};
use knee::{KneeConfig, KneeResult, Search};
use scenario::{Kind, Params, Scenario};
use schedule::{RateShape, Shard};
use summary::{CurvePoint, OpStats};
use threshold::{Threshold, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Seed(#[from] seed::SeedError),
    #[error("{0}")]
    Target(String),
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {detail}; pass directories written by `scimload bench --report`")]
    Read { path: PathBuf, detail: String },
}

/// Everything a run was told, validated.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub scenario: Kind,
    pub params: Params,
    /// The user chose the paging method (else it follows /ServiceProviderConfig).
    pub paging_chosen: bool,
    pub base_url: String,
    pub token: Option<Secret>,
    pub timeout: Duration,
    pub model: Model,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub max_requests: Option<u64>,
    pub shard: Shard,
    pub run_id: String,
    pub cleanup: bool,
    /// A knee search, or fixed rate steps (`--steps`), each step lasting the duration.
    pub knee: Option<Sweep>,
    pub thresholds: Vec<Threshold>,
    pub interval: Duration,
}

/// Rate steps judged against an SLO: searched (`--find-knee`) or given (`--steps`).
#[derive(Debug, Clone)]
pub struct Sweep {
    pub judge: KneeConfig,
    pub step: Duration,
    /// Fixed rates to step through; `None` searches for the knee.
    pub rates: Option<Vec<f64>>,
}

/// What ran on which machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub os: String,
    pub arch: String,
    pub cores: usize,
}

impl Machine {
    pub fn this() -> Self {
        Machine {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
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
    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|v| v.passed)
    }

    /// Fills the numbers computed from the log: operations, curves, lag, thresholds.
    fn compute(&mut self, tl: &Timeline, thresholds: &[Threshold]) {
        let [from, to] = self.window_ms;
        let (ops, curves) = summary::operations(tl, from, to, self.measured_seconds);
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
            let _ = writeln!(
                s,
                "  max sustainable rate: {:.0} requests/s",
                k.max_sustainable_rate
            );
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

fn rfc3339(t: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Runs a benchmark; returns its summary and interval log.
pub async fn run(
    cfg: &BenchConfig,
    progress: Progress,
) -> Result<(BenchSummary, Timeline), BenchError> {
    let client = ScimClient::new(&cfg.base_url, cfg.token.as_ref(), cfg.timeout, 64)
        .map_err(BenchError::Target)?;
    let ep = Endpoint::parse(&cfg.base_url, cfg.token.as_ref(), cfg.timeout)
        .map_err(BenchError::Target)?;
    let mut params = cfg.params.clone();
    if let Some(p) = &progress {
        p(&format!(
            "seeding for {} (run id {})",
            cfg.scenario.name(),
            cfg.run_id
        ));
    }
    let data = seed::seed(
        &client,
        cfg.scenario,
        &mut params,
        &cfg.run_id,
        cfg.shard,
        cfg.paging_chosen,
    )
    .await?;
    let scenario = Arc::new(Scenario::new(
        cfg.scenario,
        cfg.run_id.clone(),
        cfg.shard,
        params.clone(),
        data,
    ));
    let mut timeline = Timeline::new(cfg.interval);
    let mut created = Vec::new();
    let (stats, knee_result) = match &cfg.knee {
        None => {
            let phase = Phase {
                model: cfg.model.clone(),
                connections: cfg.connections,
                warmup: cfg.warmup,
                duration: cfg.duration,
                max_requests: cfg.max_requests,
                first_request: 0,
            };
            let (tl, st) =
                engine::run_phase(scenario.clone(), ep.clone(), &phase, timeline, &progress).await;
            timeline = tl;
            created.extend(st.created.iter().cloned());
            (vec![st], None)
        }
        Some(sweep) => {
            let kc = &sweep.judge;
            let mut search = Search::new(kc.clone());
            let mut fixed = sweep.rates.clone().map(|r| r.into_iter());
            let mut rate = match &mut fixed {
                Some(it) => it.next().unwrap_or(kc.start_rate),
                None => search.first(),
            };
            let mut steps = Vec::new();
            let mut all = Vec::new();
            let mut next_request = 0;
            loop {
                if let Some(p) = &progress {
                    p(&format!("step at {rate:.0} requests/s"));
                }
                let phase = Phase {
                    model: Model::Open {
                        shape: RateShape::Constant(rate),
                        poisson: None,
                    },
                    connections: cfg.connections,
                    warmup: Duration::ZERO,
                    duration: sweep.step,
                    max_requests: None,
                    first_request: next_request,
                };
                let (tl, st) =
                    engine::run_phase(scenario.clone(), ep.clone(), &phase, timeline, &progress)
                        .await;
                timeline = tl;
                next_request = st.next_request;
                created.extend(st.created.iter().cloned());
                let j = knee::judge(kc, rate, &st);
                let passed = j.passed;
                steps.push(j);
                all.push(st);
                let next = match &mut fixed {
                    Some(it) => it.next(),
                    None => search.next(rate, passed),
                };
                match next {
                    Some(r) => rate = r,
                    None => break,
                }
                // Let the server drain the last step's queue before the next.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let best = match &fixed {
                Some(_) => steps
                    .iter()
                    .filter(|s| s.passed)
                    .map(|s| s.offered)
                    .fold(0.0, f64::max),
                None => search.result(),
            };
            let result = KneeResult {
                slo: kc.slo.text.clone(),
                error_budget: kc.error_budget,
                searched: fixed.is_none(),
                max_sustainable_rate: best,
                steps,
            };
            (all, Some(result))
        }
    };
    if cfg.cleanup {
        let mut paths: Vec<String> = created.iter().map(|id| format!("/Users/{id}")).collect();
        paths.extend(
            scenario
                .seed
                .users
                .iter()
                .map(|u| format!("/Users/{}", u.id)),
        );
        if let Some(g) = &scenario.seed.group {
            paths.push(format!("/Groups/{g}"));
        }
        let n = paths.len();
        let gone = crate::client::fan::delete_all(&client, paths, 16)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        if let Some(p) = &progress {
            p(&format!("cleanup: deleted {gone} of {n} resources"));
        }
    }
    let first = &stats[0];
    let last = stats.last().unwrap_or(first);
    let measured_seconds: f64 = stats.iter().map(|s| s.measured_secs).sum();
    let (model, offered_rate, rate) = match (&cfg.knee, &cfg.model) {
        (Some(sw), _) => (
            "open".to_string(),
            None,
            if sw.rates.is_some() {
                "rate steps"
            } else {
                "knee search"
            }
            .to_string(),
        ),
        (None, Model::Closed) => (
            "closed".to_string(),
            None,
            "as fast as answered".to_string(),
        ),
        (None, Model::Open { shape, poisson }) => {
            // A shard offers 1/N of the planned rate; merging shards adds them back up.
            let n = cfg.shard.count as f64;
            let per = |r: f64| r / n;
            (
                "open".to_string(),
                Some(per(shape.mean())),
                format!(
                    "{}{}{}",
                    match shape {
                        RateShape::Constant(r) => format!("{}/s", per(*r)),
                        RateShape::Ramp(a, b) => format!("{}/s → {}/s", per(*a), per(*b)),
                    },
                    if poisson.is_some() {
                        " (Poisson arrivals)"
                    } else {
                        ""
                    },
                    if cfg.shard.count > 1 {
                        format!(
                            " (shard {}/{} of {})",
                            cfg.shard.index + 1,
                            cfg.shard.count,
                            shape.mean()
                        )
                    } else {
                        String::new()
                    }
                ),
            )
        }
    };
    let sum = |f: fn(&engine::PhaseStats) -> u64| stats.iter().map(f).sum::<u64>();
    let ok = sum(|s| s.ok);
    let errors = sum(|s| s.errors);
    let mut summary = BenchSummary {
        tool: format!("scimload {}", env!("CARGO_PKG_VERSION")),
        scenario: cfg.scenario.name().into(),
        target: cfg.base_url.clone(),
        run_id: cfg.run_id.clone(),
        shard: format!("{}/{}", cfg.shard.index + 1, cfg.shard.count),
        shards: 1,
        model,
        offered_rate,
        rate,
        connections: cfg.connections,
        warmup_seconds: cfg.warmup.as_secs_f64(),
        duration_seconds: cfg.duration.as_secs_f64(),
        started: rfc3339(first.started),
        machine: Machine::this(),
        // With a warm-up, the window starts at the first interval boundary after it:
        // the interval holding the end of the warm-up is left out whole.
        window_ms: [
            if cfg.warmup.is_zero() {
                first.measured_from_ms
            } else {
                timeline.slot(first.measured_from_ms + timeline.interval_ms - 1)
            },
            last.ended_ms + 1,
        ],
        measured_seconds,
        planned: sum(|s| s.planned),
        sent: sum(|s| s.sent),
        dropped: sum(|s| s.dropped),
        ok,
        errors,
        achieved_rate: (ok + errors) as f64 / measured_seconds.max(1e-3),
        send_lag_p99_ms: 0.0,
        kept_schedule: true,
        operations: BTreeMap::new(),
        curves: BTreeMap::new(),
        knee: knee_result,
        thresholds: Vec::new(),
        params: serde_json::to_value(&params).unwrap_or_default(),
    };
    summary.compute(&timeline, &cfg.thresholds);
    Ok((summary, timeline))
}

/// Writes `intervals.hlog` and `summary.json` into `dir`.
pub fn write_results(dir: &Path, summary: &BenchSummary, tl: &Timeline) -> Result<(), BenchError> {
    let io = |path: PathBuf| move |source| BenchError::Write { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let log = dir.join("intervals.hlog");
    let mut buf = Vec::new();
    tl.write_log(
        &mut buf,
        &[format!(
            "scenario={} target={} shard={} run_id={}",
            summary.scenario, summary.target, summary.shard, summary.run_id
        )],
    )?;
    std::fs::write(&log, buf).map_err(io(log.clone()))?;
    let path = dir.join("summary.json");
    let json = serde_json::to_vec_pretty(summary).expect("summary serializes");
    std::fs::write(&path, json).map_err(io(path.clone()))?;
    Ok(())
}

/// Reads a result directory.
pub fn read_results(dir: &Path) -> Result<(BenchSummary, Timeline), BenchError> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| BenchError::Read {
            path: p,
            detail: e.to_string(),
        })
    };
    let summary: BenchSummary =
        serde_json::from_slice(&read("summary.json")?).map_err(|e| BenchError::Read {
            path: dir.join("summary.json"),
            detail: e.to_string(),
        })?;
    let tl = Timeline::read_log(&read("intervals.hlog")?)?;
    Ok((summary, tl))
}

/// Merges shard results exactly: histograms added per tag and interval, counts summed,
/// then every percentile recomputed from the merged log.
pub fn merge(
    parts: Vec<(BenchSummary, Timeline)>,
    thresholds: &[Threshold],
) -> Result<(BenchSummary, Timeline), BenchError> {
    let mut it = parts.into_iter();
    let (mut summary, mut tl) = it.next().ok_or_else(|| BenchError::Read {
        path: PathBuf::from("(none)"),
        detail: "no result directories given".into(),
    })?;
    let mut measured = summary.measured_seconds;
    for (s, t) in it {
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
