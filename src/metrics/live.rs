//! Live metrics while a run goes on (`--metrics-listen ADDR`): the counters and latency
//! buckets a Prometheus scrape reads during a 30-minute soak, fed by the same aggregator
//! (bench) or recorder (import) that writes the interval log. They are a view, never the
//! result: fixed buckets cannot be merged into percentiles exactly, so the end-of-run
//! figures stay those of the interval log.
//!
//! The text exposition format is written by hand: it is a few dozen lines for counters,
//! gauges and histograms, where the `prometheus-client` crate would bring its own
//! registry and encoder types for the same output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::Op;

/// Upper bounds of the latency buckets, in seconds: 0.5 ms to 60 s, dense where SCIM
/// answers usually fall (1–500 ms).
pub const BUCKETS_S: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
    30.0, 60.0,
];

/// One latency histogram in Prometheus' form: cumulative only when printed.
#[derive(Debug, Clone, Default)]
struct Buckets {
    counts: [u64; BUCKETS_S.len() + 1],
    sum_us: u64,
}

impl Buckets {
    fn observe(&mut self, us: u64) {
        let s = us as f64 / 1e6;
        let i = BUCKETS_S.partition_point(|b| *b < s);
        self.counts[i] += 1;
        self.sum_us += us;
    }

    fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[derive(Debug, Clone, Default)]
struct OpLive {
    requests: u64,
    /// By HTTP status or transport failure kind.
    errors: BTreeMap<String, u64>,
    response: Buckets,
    service: Buckets,
    lag: Option<Buckets>,
}

/// What the aggregator writes; a scrape takes the lock for the time of one render.
#[derive(Debug, Default)]
pub struct State {
    ops: BTreeMap<&'static str, OpLive>,
    /// Errors an import counts for the run as a whole (its recorder keys them by kind,
    /// not by operation).
    run_errors: BTreeMap<String, u64>,
    offered_rate: Option<f64>,
    /// Completions over the last whole second or more, and where that window started.
    achieved_rate: f64,
    window: Option<(Instant, u64)>,
}

impl State {
    /// One finished request (or attempt): times in microseconds; `lag` only where the
    /// send time was planned (bench's open model).
    pub fn observe(
        &mut self,
        op: Op,
        status: Result<u16, &str>,
        response_us: u64,
        service_us: u64,
        lag_us: Option<u64>,
    ) {
        let o = self.ops.entry(op.as_str()).or_default();
        o.requests += 1;
        o.response.observe(response_us);
        o.service.observe(service_us);
        if let Some(l) = lag_us {
            o.lag.get_or_insert_with(Buckets::default).observe(l);
        }
        let failed = match status {
            Ok(code) if code < 400 => None,
            Ok(code) => Some(code.to_string()),
            Err(kind) => Some(kind.replace(' ', "_")),
        };
        if let Some(k) = failed {
            *o.errors.entry(k).or_default() += 1;
        }
        self.tick();
    }

    /// An error the import counts without an operation: `"503"`, `"409 uniqueness"`.
    pub fn run_error(&mut self, key: &str) {
        let status = key.split([' ', ':']).next().unwrap_or(key).to_string();
        *self.run_errors.entry(status).or_default() += 1;
    }

    pub fn set_offered_rate(&mut self, rate: Option<f64>) {
        self.offered_rate = rate;
    }

    fn done(&self) -> u64 {
        self.ops.values().map(|o| o.requests).sum()
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let done = self.done();
        match self.window {
            None => self.window = Some((now, done)),
            Some((from, at)) => {
                let secs = now.duration_since(from).as_secs_f64();
                if secs >= 1.0 {
                    self.achieved_rate = (done - at) as f64 / secs;
                    self.window = Some((now, done));
                }
            }
        }
    }
}

/// Shared between the aggregator, the engine's senders and the scrape endpoint.
#[derive(Debug)]
pub struct Live {
    state: Mutex<State>,
    /// Requests handed to a connection, and requests the schedule released (open model).
    pub sent: AtomicU64,
    pub planned: AtomicU64,
    labels: String,
}

impl Live {
    /// `kind` is bench or import; run id and shard label every series so the scrapes of
    /// N pods stay apart (and sum up) in Prometheus.
    pub fn new(kind: &str, run_id: &str, shard: &str) -> Arc<Live> {
        Arc::new(Live {
            state: Mutex::new(State::default()),
            sent: AtomicU64::new(0),
            planned: AtomicU64::new(0),
            labels: format!(
                "kind=\"{}\",run_id=\"{}\",shard=\"{}\"",
                escape(kind),
                escape(run_id),
                escape(shard)
            ),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held leaves counters that are still counters.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The OpenMetrics-compatible Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let st = self.lock();
        let l = &self.labels;
        let mut out = String::with_capacity(4096);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut out,
            "scimload_requests_total",
            "counter",
            "Requests (attempts) finished, answered or failed, by operation.",
        );
        for (op, o) in &st.ops {
            let _ = writeln!(
                out,
                "scimload_requests_total{{{l},operation=\"{op}\"}} {}",
                o.requests
            );
        }
        family(
            &mut out,
            "scimload_errors_total",
            "counter",
            "Failed requests by operation and HTTP status or transport failure.",
        );
        for (op, o) in &st.ops {
            for (status, n) in &o.errors {
                let _ = writeln!(
                    out,
                    "scimload_errors_total{{{l},operation=\"{op}\",status=\"{}\"}} {n}",
                    escape(status)
                );
            }
        }
        for (status, n) in &st.run_errors {
            let _ = writeln!(
                out,
                "scimload_errors_total{{{l},operation=\"all\",status=\"{}\"}} {n}",
                escape(status)
            );
        }
        let sent = self.sent.load(Ordering::Relaxed);
        let planned = self.planned.load(Ordering::Relaxed);
        family(
            &mut out,
            "scimload_sent_total",
            "counter",
            "Requests handed to a connection.",
        );
        let _ = writeln!(out, "scimload_sent_total{{{l}}} {sent}");
        family(
            &mut out,
            "scimload_planned_total",
            "counter",
            "Requests the open-model schedule released so far.",
        );
        let _ = writeln!(out, "scimload_planned_total{{{l}}} {planned}");
        family(
            &mut out,
            "scimload_in_flight",
            "gauge",
            "Requests sent and not yet accounted (accounting runs up to 50 ms behind).",
        );
        let _ = writeln!(
            out,
            "scimload_in_flight{{{l}}} {}",
            sent.saturating_sub(st.done())
        );
        if let Some(r) = st.offered_rate {
            family(
                &mut out,
                "scimload_offered_rate",
                "gauge",
                "Requests per second the schedule offers (this shard).",
            );
            let _ = writeln!(out, "scimload_offered_rate{{{l}}} {r}");
        }
        family(
            &mut out,
            "scimload_achieved_rate",
            "gauge",
            "Requests per second finished over the last second or more.",
        );
        let _ = writeln!(out, "scimload_achieved_rate{{{l}}} {:.3}", st.achieved_rate);
        type Pick = fn(&OpLive) -> Option<&Buckets>;
        let histograms: [(&str, &str, Pick); 3] = [
            (
                "scimload_response_seconds",
                "Response time from the intended send (bench) or of the request (import).",
                |o| Some(&o.response),
            ),
            (
                "scimload_service_seconds",
                "Service time from the actual send.",
                |o| Some(&o.service),
            ),
            (
                "scimload_send_lag_seconds",
                "How late requests left against their planned send time.",
                |o| o.lag.as_ref(),
            ),
        ];
        for (name, help, pick) in histograms {
            family(&mut out, name, "histogram", help);
            for (op, o) in &st.ops {
                let Some(b) = pick(o) else { continue };
                let mut cum = 0;
                for (i, le) in BUCKETS_S.iter().enumerate() {
                    cum += b.counts[i];
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{l},operation=\"{op}\",le=\"{le}\"}} {cum}"
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{l},operation=\"{op}\",le=\"+Inf\"}} {}\n{name}_sum{{{l},operation=\"{op}\"}} {}\n{name}_count{{{l},operation=\"{op}\"}} {}",
                    b.count(),
                    b.sum_us as f64 / 1e6,
                    b.count()
                );
            }
        }
        out
    }
}

/// A label value as the exposition format quotes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for metrics on {addr}: {source}; pass a free address, e.g. --metrics-listen 0.0.0.0:9464")]
pub struct ListenError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Serves `GET /metrics` on `addr` until the runtime ends; returns the bound address
/// (port 0 picks one).
pub async fn serve(addr: SocketAddr, live: Arc<Live>) -> Result<SocketAddr, ListenError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ListenError { addr, source })?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let live = live.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    live.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_count_every_observation() {
        let live = Live::new("bench", "r1", "1/1");
        {
            let mut st = live.lock();
            st.observe(Op::GetUser, Ok(200), 300, 200, Some(100));
            st.observe(Op::GetUser, Ok(503), 2_000, 1_500, Some(500));
            st.observe(Op::GetUser, Err("timeout"), 70_000_000, 70_000_000, Some(0));
        }
        let text = live.render();
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} not in\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(line("scimload_requests_total{"), "3");
        assert_eq!(line("status=\"503\""), "1");
        assert_eq!(line("status=\"timeout\""), "1");
        assert_eq!(line("response_seconds_bucket{kind=\"bench\",run_id=\"r1\",shard=\"1/1\",operation=\"get_user\",le=\"0.0005\"}"), "1");
        assert_eq!(line("response_seconds_bucket{kind=\"bench\",run_id=\"r1\",shard=\"1/1\",operation=\"get_user\",le=\"0.0025\"}"), "2");
        assert_eq!(line("response_seconds_bucket{kind=\"bench\",run_id=\"r1\",shard=\"1/1\",operation=\"get_user\",le=\"60\"}"), "2");
        assert_eq!(line("response_seconds_bucket{kind=\"bench\",run_id=\"r1\",shard=\"1/1\",operation=\"get_user\",le=\"+Inf\"}"), "3");
        assert_eq!(line("response_seconds_count{"), "3");
    }
}
