//! `scimload bench`: load-test a SCIM server with provisioning traffic and measure it
//! the way wrk2 does. A run seeds what its scenario needs, drives load in the open model
//! (send times fixed in advance) or the closed model, records three histograms per
//! operation into an interval log, and summarises the measured window. A knee search
//! repeats that at rising rates and reports the highest rate the server sustains.

pub mod engine;
pub mod knee;
pub mod scenario;
pub(crate) mod seed;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{ClientOptions, ScimClient};
use crate::dispatch::schedule::{RateShape, Shard};
use crate::metrics::threshold::Threshold;
use crate::metrics::timeline::{Timeline, TimelineError};
pub use crate::results::bench::{
    merge, read_results, write_failure, write_results, BenchSummary, ResultsError, ShardFailure,
    FAILED_FILE,
};
use crate::units::rfc3339;
use engine::{Model, Phase, Progress};
use knee::{KneeConfig, KneeResult, Search};
use scenario::{Kind, Params, Scenario};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Seed(#[from] seed::SeedError),
    #[error("{0}")]
    Target(String),
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    #[error("{0}")]
    StartPassed(String),
    #[error(transparent)]
    Results(#[from] ResultsError),
}

/// Everything a run was told, validated.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub scenario: Kind,
    pub params: Params,
    /// The user chose the paging method (else it follows /ServiceProviderConfig).
    pub paging_chosen: bool,
    pub base_url: String,
    /// TLS, HTTP version, credentials and headers; the same client seeds and measures.
    pub client: ClientOptions,
    pub timeout: Duration,
    pub model: Model,
    pub connections: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub streams: usize,
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
    /// `--start-at`: the one instant every shard's schedule starts from.
    pub start_at: Option<std::time::SystemTime>,
    /// `--metrics-listen`: live counters fed by the aggregator.
    pub live: Option<Arc<crate::metrics::live::Live>>,
}

/// Rate steps judged against an SLO: searched (`--find-knee`) or given (`--steps`).
#[derive(Debug, Clone)]
pub struct Sweep {
    pub judge: KneeConfig,
    pub step: Duration,
    /// Fixed rates to step through; `None` searches for the knee.
    pub rates: Option<Vec<f64>>,
}

/// Runs a benchmark; returns its summary and interval log.
pub async fn run(
    cfg: &BenchConfig,
    progress: Progress,
) -> Result<(BenchSummary, Timeline), BenchError> {
    let client = ScimClient::connect(&cfg.base_url, &cfg.client, 64)
        .map_err(|e| BenchError::Target(e.to_string()))?;
    // An unreachable target, a refused certificate or credential stops the run here.
    let caps = crate::client::discovery::discover(&client)
        .await
        .map_err(|e| {
            BenchError::Target(format!("cannot reach the target {}: {e}", cfg.base_url))
        })?;
    // --streams needs HTTP/2: find out on one connection before anything is seeded.
    if cfg.streams > 1 {
        engine::open_connections(&client, 1, cfg.streams)
            .await
            .map_err(BenchError::Target)?;
    }
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
        &caps,
    )
    .await?;
    let scenario = Arc::new(Scenario::new(
        cfg.scenario,
        cfg.run_id.clone(),
        cfg.shard,
        params.clone(),
        data,
    ));
    if let Some(at) = cfg.start_at {
        wait_for_start(at, cfg.interval, &progress).await?;
    }
    let mut timeline = Timeline::new(cfg.interval);
    let mut created = Vec::new();
    let (stats, knee_result) = match &cfg.knee {
        None => {
            let phase = Phase {
                model: cfg.model.clone(),
                connections: cfg.connections,
                streams: cfg.streams,
                warmup: cfg.warmup,
                duration: cfg.duration,
                max_requests: cfg.max_requests,
                first_request: 0,
                start_at: cfg.start_at,
                judged: false,
            };
            let (tl, st) = measure(&scenario, &client, &phase, timeline, &progress, cfg).await?;
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
            let mut generator_limit = None;
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
                    streams: cfg.streams,
                    warmup: Duration::ZERO,
                    duration: sweep.step,
                    max_requests: None,
                    first_request: next_request,
                    start_at: None,
                    judged: true,
                };
                let (tl, st) =
                    measure(&scenario, &client, &phase, timeline, &progress, cfg).await?;
                timeline = tl;
                next_request = st.next_request;
                created.extend(st.created.iter().cloned());
                let j = knee::judge(kc, rate, &st);
                let (passed, behind) = (j.passed, j.generator_behind);
                steps.push(j);
                all.push(st);
                if behind {
                    generator_limit = Some(generator_limit.map_or(rate, |g: f64| g.min(rate)));
                }
                let next = match &mut fixed {
                    Some(it) => it.next(),
                    // A higher rate would lag more, and a bisection below this one
                    // would measure the generator too: the search ends here.
                    None if behind => None,
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
                generator_limit,
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
        first_intended_send: Some(rfc3339(first.first_intended)),
        machine: crate::results::Machine::this(),
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
        params: {
            let mut v = serde_json::to_value(&params).unwrap_or_default();
            let mut conn = client.describe();
            conn["negotiated"] = first.protocol.into();
            conn["streams"] = cfg.streams.into();
            v["connection"] = conn;
            v
        },
    };
    summary.compute(&timeline, &cfg.thresholds);
    Ok((summary, timeline))
}

/// One phase (a run, or a step of a sweep) against the client, fed to the live view.
async fn measure(
    scenario: &Arc<Scenario>,
    client: &ScimClient,
    phase: &Phase,
    timeline: Timeline,
    progress: &Progress,
    cfg: &BenchConfig,
) -> Result<(Timeline, engine::PhaseStats), BenchError> {
    engine::run_phase(
        scenario.clone(),
        client,
        phase,
        timeline,
        progress,
        cfg.live.clone(),
    )
    .await
    .map_err(BenchError::Target)
}

/// How long before `--start-at` the connections are opened: enough for the handshakes,
/// short of the idle timeouts servers close quiet connections after.
const OPEN_BEFORE_START: Duration = Duration::from_secs(2);

/// Waits until shortly before `at` (after seeding, so every shard starts seeded). A start
/// passed by more than one interval is refused: the merged log's first intervals would
/// hold a burst of late sends rather than the planned schedule.
async fn wait_for_start(
    at: std::time::SystemTime,
    interval: Duration,
    progress: &Progress,
) -> Result<(), BenchError> {
    let now = std::time::SystemTime::now();
    match at.duration_since(now) {
        Err(e) if e.duration() > interval => Err(BenchError::StartPassed(format!(
            "--start-at {} passed {:.1} s ago (seeding ended at {}); set a start further ahead, at least the seeding time plus the time to start every shard",
            rfc3339(at),
            e.duration().as_secs_f64(),
            rfc3339(now)
        ))),
        Err(_) => Ok(()),
        Ok(ahead) => {
            if let Some(p) = progress {
                p(&format!(
                    "seeded; the schedule starts at {} (in {:.1} s)",
                    rfc3339(at),
                    ahead.as_secs_f64()
                ));
            }
            tokio::time::sleep(ahead.saturating_sub(OPEN_BEFORE_START)).await;
            Ok(())
        }
    }
}
