//! The load engine: a pacer thread that releases requests at their planned send times,
//! a fixed set of connections that send them, and one aggregator that owns every
//! histogram. Workers hand the aggregator small samples and never share a lock on
//! metrics.
//!
//! Each sample carries three instants: when the request was meant to go (intended),
//! when it went (sent) and when its answer was read (done). Response time is measured
//! from the intended send, so a stalled server is charged for every request it kept
//! waiting — not only for the few that were on the wire (coordinated omission).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;

use super::scenario::{Scenario, Walker};
use crate::client::conn::{Conn, Negotiated};
use crate::client::ScimClient;
use crate::dispatch::engine::{Counted, Engine, Lane};
use crate::dispatch::pacer::Slot;
use crate::dispatch::schedule::RateShape;
use crate::dispatch::Pacer;
use crate::metrics::live::Live;
use crate::metrics::sample::{Sample, Timing};
use crate::metrics::timeline::{epoch_ms, Timeline};
use crate::metrics::{new_histogram, Recorder};

/// How requests arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Send times fixed in advance; `poisson` seeds exponential gaps.
    Open {
        shape: RateShape,
        poisson: Option<u64>,
    },
    /// Each connection sends its next request when the previous answer is in.
    Closed,
}

/// One phase of load: a run, or one step of a knee search.
#[derive(Debug, Clone)]
pub struct Phase {
    pub model: Model,
    pub connections: usize,
    /// Streams per HTTP/2 connection (1 on HTTP/1.1).
    pub streams: usize,
    /// Warm-up, recorded but outside the measured window.
    pub warmup: Duration,
    /// Measured duration after the warm-up.
    pub duration: Duration,
    /// Requests of this shard, at most.
    pub max_requests: Option<u64>,
    /// First request number (a knee search continues numbering across its steps).
    pub first_request: u64,
    /// The instant the schedule starts (`--start-at`, shared by every shard of a run);
    /// `None`: as soon as the connections are open.
    pub start_at: Option<SystemTime>,
    /// A step of a sweep: keeps a response histogram per second (the step's judge reads
    /// latency climbing within it). A single run does not: ~147 KB a second adds up
    /// over a soak, and its figures come from the interval log.
    pub judged: bool,
}

/// What a phase did, counted by the engine itself (not from interval slots).
#[derive(Debug, Clone)]
pub struct PhaseStats {
    pub started: SystemTime,
    /// The intended send time of this shard's first request.
    pub first_intended: SystemTime,
    /// Epoch ms where the measured window begins (after the warm-up) and ends.
    pub measured_from_ms: u64,
    pub ended_ms: u64,
    pub measured_secs: f64,
    /// Requests planned within the phase (open model).
    pub planned: u64,
    pub sent: u64,
    /// Planned but never sent: the phase ended with them still waiting for a connection.
    pub dropped: u64,
    /// Measured requests (intended after the warm-up) answered 2xx/3xx, and otherwise.
    pub ok: u64,
    pub errors: u64,
    /// All operations' response times of measured requests, per second of the phase
    /// (steps of a sweep only).
    pub response_by_second: Vec<Histogram<u64>>,
    pub lag: Histogram<u64>,
    /// Ids of resources the phase created (for cleanup).
    pub created: Vec<String>,
    /// Next request number after this phase.
    pub next_request: u64,
    /// What the connections speak: `HTTP/1.1` or `HTTP/2`.
    pub protocol: &'static str,
}

impl PhaseStats {
    pub fn response(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for s in &self.response_by_second {
            let _ = h.add(s);
        }
        h
    }
}

/// How long a worker holds samples before handing them to the aggregator.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Live progress: a line per second.
pub type Progress = Option<Box<dyn Fn(&str) + Send + Sync>>;

/// A phase's aggregator: every sample goes into the one recorder every run records
/// through (interval log, live view); what only a phase needs — its measured counts,
/// per-second response histograms of a sweep step, send lag and the progress line — is
/// kept beside it.
struct Aggregator {
    rec: Recorder,
    judged: bool,
    measure_from: Instant,
    ok: u64,
    errors: u64,
    response_by_second: Vec<Histogram<u64>>,
    lag: Histogram<u64>,
    // For the progress line.
    tick_done: u64,
    tick_errors: u64,
    tick_response: Histogram<u64>,
    tick_lag: Histogram<u64>,
}

impl Aggregator {
    fn add_batch(&mut self, batch: Vec<Sample>) {
        batch.into_iter().for_each(|s| self.add(s));
    }

    fn add(&mut self, s: Sample) {
        let (response, _, lag) = s.timing.times();
        self.rec.sample(&s);
        let failed = s.timing.failed();
        self.tick_done += 1;
        self.tick_errors += failed as u64;
        let _ = self
            .tick_response
            .record(response.min(self.tick_response.high()));
        let _ = self.tick_lag.record(lag.min(self.tick_lag.high()));
        if s.timing.intended >= self.measure_from {
            if failed {
                self.errors += 1;
            } else {
                self.ok += 1;
            }
            if self.judged {
                let sec = s
                    .timing
                    .intended
                    .duration_since(self.measure_from)
                    .as_secs() as usize;
                if self.response_by_second.len() <= sec {
                    self.response_by_second.resize_with(sec + 1, new_histogram);
                }
                let h = &mut self.response_by_second[sec];
                let _ = h.record(response.min(h.high()));
            }
            let _ = self.lag.record(lag.min(self.lag.high()));
        }
    }

    fn progress_line(&mut self, elapsed: Duration, sent: u64) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        let line = format!(
            "[{:>4.0}s] sent {sent} · {}/s · errors {} · p99 {:.2} ms · max {:.2} ms · send lag p99 {:.3} ms",
            elapsed.as_secs_f64(),
            self.tick_done,
            self.tick_errors,
            ms(self.tick_response.value_at_quantile(0.99)),
            ms(self.tick_response.max()),
            ms(self.tick_lag.value_at_quantile(0.99)),
        );
        self.tick_done = 0;
        self.tick_errors = 0;
        self.tick_response.reset();
        self.tick_lag.reset();
        line
    }
}

/// Opens `connections` connections (the handshakes are no request's latency) and, on
/// HTTP/2, `streams` senders on each. A TLS or credential failure stops the run here.
pub async fn open_connections(
    client: &ScimClient,
    connections: usize,
    streams: usize,
) -> Result<Vec<Conn>, String> {
    let mut pool = Vec::with_capacity(connections * streams);
    for i in 0..connections.max(1) {
        let mut c = client.new_conn();
        match c.warm().await {
            Ok(()) => {}
            Err(e) if e.is_fatal() || i == 0 => return Err(e.to_string()),
            // A connection that cannot open now retries at its first request.
            Err(_) => {}
        }
        if streams > 1 {
            if c.negotiated() == Some(Negotiated::Http1) {
                return Err(format!(
                    "--streams {streams} needs HTTP/2, and {} answered with HTTP/1.1; pass --http2 (h2c or ALPN h2) or drop --streams",
                    client.base()
                ));
            }
            for _ in 1..streams {
                if let Some(s) = c.stream() {
                    pool.push(s);
                }
            }
        }
        pool.push(c);
    }
    Ok(pool)
}

/// The schedule's origin as a monotonic instant and the wall-clock time it stands for:
/// 20 ms from now (the pacer's lead), or the given start, which may lie a little in the
/// past (then the first requests go out late and their send lag says so).
fn origin(start_at: Option<SystemTime>) -> (Instant, SystemTime) {
    let (now, wall) = (Instant::now(), SystemTime::now());
    match start_at {
        None => {
            let lead = Duration::from_millis(20);
            (now + lead, wall + lead)
        }
        Some(at) => match at.duration_since(wall) {
            Ok(ahead) => (now + ahead, at),
            Err(e) => (now.checked_sub(e.duration()).unwrap_or(now), at),
        },
    }
}

/// One connection (or HTTP/2 stream) of a phase and what it gathers: the engine's lane.
struct BenchLane {
    conn: Conn,
    scenario: Arc<Scenario>,
    walker: Walker,
    /// Samples not yet handed to the aggregator.
    batch: Vec<Sample>,
    flushed: Instant,
    /// Ids of resources this lane created (for cleanup).
    created: Vec<String>,
    /// Requests that were still waiting for a connection well after the schedule ended.
    dropped: u64,
    drop_after: Instant,
    sent: Arc<AtomicU64>,
    live: Option<Arc<Live>>,
}

impl Lane for BenchLane {
    type Unit = u64;
    type Out = Vec<Sample>;

    async fn run(&mut self, m: u64, slot: Slot) -> Option<Vec<Sample>> {
        // Requests still waiting for a connection this long after the schedule ends are
        // counted as dropped, so a run against a dead server still stops.
        if Instant::now() > self.drop_after {
            self.dropped += 1;
            return None;
        }
        let req = self.scenario.request(m, &mut self.walker);
        let sent_at = Instant::now();
        self.sent.fetch_add(1, Ordering::Relaxed);
        if let Some(l) = &self.live {
            l.sent.fetch_add(1, Ordering::Relaxed);
        }
        let reply = self
            .conn
            .send(req.method.clone(), &req.path, req.body.clone())
            .await;
        let done = Instant::now();
        let status = match &reply {
            Ok(r) => {
                self.scenario.on_reply(&mut self.walker, &req, &r.body);
                if req.keep_id && r.status == 201 {
                    if let Some(id) = crate::client::reply::id_in(&r.body) {
                        self.created.push(id);
                    }
                }
                Ok(r.status)
            }
            Err(e) => Err(e.kind()),
        };
        self.batch.push(Sample {
            op: req.op,
            curve: req.curve,
            timing: Timing {
                intended: slot.intended,
                sent: sent_at,
                done,
                status,
            },
        });
        // Samples travel in batches: one channel wake-up per 64 requests (or per 50 ms)
        // instead of one per request, measured 0.81x → see scripts/bench-vs-wrk.sh.
        if self.batch.len() >= 64 || done.duration_since(self.flushed) >= FLUSH_EVERY {
            self.flushed = done;
            return Some(std::mem::replace(&mut self.batch, Vec::with_capacity(64)));
        }
        None
    }

    fn finish(&mut self) -> Option<Vec<Sample>> {
        (!self.batch.is_empty()).then(|| std::mem::take(&mut self.batch))
    }
}

/// Runs one phase against `client`'s target, recording into `timeline`.
pub async fn run_phase(
    scenario: Arc<Scenario>,
    client: &ScimClient,
    phase: &Phase,
    timeline: Timeline,
    progress: &Progress,
    live: Option<Arc<Live>>,
) -> Result<(Timeline, PhaseStats), String> {
    let pool = open_connections(client, phase.connections, phase.streams.max(1)).await?;
    let protocol = match pool.first().and_then(|c| c.negotiated()) {
        Some(Negotiated::Http2) => "HTTP/2",
        _ => "HTTP/1.1",
    };
    let (t0, wall0) = origin(phase.start_at);
    let measure_from = t0 + phase.warmup;
    let total = phase.warmup + phase.duration;
    let end = t0 + total;
    // Requests still waiting for a connection this long after the schedule ends are
    // counted as dropped, so a run against a dead server still stops.
    let grace = client.options().timeout.min(Duration::from_secs(5));
    let limit = {
        let by_scenario = scenario
            .finite_len()
            .map(|n| n.saturating_sub(phase.first_request));
        match (phase.max_requests, by_scenario) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };

    // The open model's plan of send times for this shard; a closed run takes its units
    // as its connections free up.
    let plan = || match &phase.model {
        Model::Open { shape, poisson } => {
            Pacer::open(*shape, *poisson, t0, total, scenario.shard, limit)
        }
        Model::Closed => Pacer::unpaced(),
    };
    // The schedule is deterministic for a seed: its first arrival of this shard is known
    // before the run (shards of one run compare these to show they started together).
    let first_intended = wall0 + plan().next_at(t0).map_or(Duration::ZERO, |at| at - t0);

    let sent = Arc::new(AtomicU64::new(0));
    let planned = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let lanes: Vec<BenchLane> = pool
        .into_iter()
        .map(|conn| BenchLane {
            conn,
            scenario: scenario.clone(),
            walker: Walker::default(),
            batch: Vec::with_capacity(64),
            flushed: Instant::now(),
            created: Vec::new(),
            dropped: 0,
            drop_after: end + grace,
            sent: sent.clone(),
            live: live.clone(),
        })
        .collect();

    // The open model: the pacer hands each request's (number, intended send) to the
    // lanes. It is a task on the runtime, woken by a precise timer (see timer.rs), so the
    // request it releases starts on the same thread without a cross-CPU hand-off. The
    // closed model: each lane takes the next number itself when its answer is in.
    let (mut engine, pacer) = match &phase.model {
        Model::Open { shape, .. } => {
            let mut engine = Engine::fed(lanes);
            let feeder = engine.feeder().expect("a fed engine has a feeder");
            engine.close();
            let (planned, stop) = (planned.clone(), stop.clone());
            let first = phase.first_request;
            let live = live.clone();
            if let Some(l) = &live {
                l.lock()
                    .set_offered_rate(Some(shape.mean() / scenario.shard.count as f64));
            }
            let mut pacer = plan();
            let task = tokio::spawn(async move {
                while let Some(slot) = pacer.next().await {
                    if stop.load(Ordering::Relaxed) || !feeder.send(first + slot.n, slot) {
                        break;
                    }
                    planned.fetch_add(1, Ordering::Relaxed);
                    if let Some(l) = &live {
                        l.planned.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            (engine, Some(task))
        }
        Model::Closed => (
            Engine::counted(
                lanes,
                Counted {
                    first: phase.first_request,
                    last: limit.map(|l| phase.first_request + l),
                    from: t0,
                    until: end,
                },
            ),
            None,
        ),
    };

    let mut agg = Aggregator {
        rec: Recorder::continuing(timeline, (t0, epoch_ms(wall0)), live.clone()),
        judged: phase.judged,
        measure_from,
        ok: 0,
        errors: 0,
        response_by_second: Vec::new(),
        lag: new_histogram(),
        tick_done: 0,
        tick_errors: 0,
        tick_response: new_histogram(),
        tick_lag: new_histogram(),
    };
    let mut tick =
        tokio::time::interval_at((t0 + Duration::from_secs(1)).into(), Duration::from_secs(1));
    loop {
        tokio::select! {
            s = engine.next() => match s {
                Some(batch) => agg.add_batch(batch),
                None => break,
            },
            _ = tick.tick() => {
                if let Some(p) = progress {
                    let line = agg.progress_line(t0.elapsed(), sent.load(Ordering::Relaxed));
                    p(&line);
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(p) = pacer {
        let _ = p.await;
    }
    let mut created = Vec::new();
    let mut dropped = 0;
    for lane in engine.join().await {
        created.extend(lane.created);
        dropped += lane.dropped;
    }
    let ended = Instant::now();
    let sent = sent.load(Ordering::Relaxed);
    let planned = match phase.model {
        Model::Open { .. } => planned.load(Ordering::Relaxed),
        Model::Closed => sent,
    };
    let measured_secs = ended
        .min(end.max(measure_from))
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .max(1e-3);
    let stats = PhaseStats {
        started: wall0,
        first_intended,
        measured_from_ms: agg.rec.epoch_ms(measure_from),
        ended_ms: agg.rec.epoch_ms(ended),
        measured_secs,
        planned,
        sent,
        dropped,
        ok: agg.ok,
        errors: agg.errors,
        response_by_second: std::mem::take(&mut agg.response_by_second),
        lag: agg.lag.clone(),
        created,
        next_request: phase.first_request + planned.max(sent),
        protocol,
    };
    Ok((agg.rec.timeline, stats))
}
