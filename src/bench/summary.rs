//! The numbers of a run, computed from its interval log alone — so a single run, a
//! merged set of shards and a re-read log all give the same summary for the same data.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::knee::KneeResult;
pub use crate::metrics::stats::{all_responses, operations, CurvePoint, OpStats, Pcts};
use crate::metrics::threshold::{Threshold, Verdict};
use crate::metrics::timeline::Timeline;
pub use crate::results::Machine;

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
