//! The knee search: the highest offered rate the server sustains. Geometric steps up
//! until a step fails, then bisection between the last pass and the first failure.
//!
//! A step passes when the server kept up (achieved ≈ offered), errors stayed within the
//! budget, the SLO percentile held, latency did not climb within the step (a queue that
//! grows fails later even if this step's percentile looks fine), and the generator sent
//! on time (send lag small) — otherwise the step measured the generator, not the server.

use serde::{Deserialize, Serialize};

use super::engine::PhaseStats;
use super::threshold::{Metric, Threshold};

#[derive(Debug, Clone)]
pub struct KneeConfig {
    /// A latency percentile bound over all operations, e.g. `p99<300ms`.
    pub slo: Threshold,
    /// Failed requests allowed, as a fraction.
    pub error_budget: f64,
    pub start_rate: f64,
    pub max_rate: f64,
    /// Stop bisecting when the bracket is narrower than this fraction of its low end.
    pub precision: f64,
}

/// One step of the search.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub offered: f64,
    pub achieved: f64,
    pub error_rate: f64,
    /// The SLO percentile over the step, and over its first and second half.
    pub slo_ms: f64,
    pub first_half_ms: f64,
    pub second_half_ms: f64,
    pub send_lag_p99_ms: f64,
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub reason: String,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// The result: the highest passing rate and every step on the way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KneeResult {
    /// True for a knee search, false for fixed `--steps`.
    pub searched: bool,
    pub slo: String,
    pub error_budget: f64,
    pub max_sustainable_rate: f64,
    pub steps: Vec<Step>,
}

fn quantile(cfg: &KneeConfig) -> f64 {
    match cfg.slo.metric {
        Metric::Quantile(q) => q,
        _ => 0.99,
    }
}

/// Judges one step from what the engine counted.
pub fn judge(cfg: &KneeConfig, offered: f64, s: &PhaseStats) -> Step {
    let q = quantile(cfg);
    let ms = |h: &hdrhistogram::Histogram<u64>| h.value_at_quantile(q) as f64 / 1000.0;
    let done = s.ok + s.errors;
    // Throughput until the last answer came in: a server that falls behind finishes
    // the step's requests late, and that lowers what it achieved.
    let span =
        ((s.ended_ms.saturating_sub(s.measured_from_ms)) as f64 / 1000.0).max(s.measured_secs);
    let achieved = done as f64 / span.max(1e-3);
    let error_rate = (s.errors + s.dropped) as f64 / (done + s.dropped).max(1) as f64;
    let half = s.response_by_second.len() / 2;
    let sum = |part: &[hdrhistogram::Histogram<u64>]| {
        let mut h = crate::metrics::new_histogram();
        for x in part {
            let _ = h.add(x);
        }
        h
    };
    let (first, second) = (
        sum(&s.response_by_second[..half]),
        sum(&s.response_by_second[half..]),
    );
    let slo_ms = ms(&s.response());
    let lag = s.lag.value_at_quantile(0.99) as f64 / 1000.0;
    let mut reasons = Vec::new();
    if achieved < offered * 0.95 {
        reasons.push(format!("achieved {achieved:.0}/s of {offered:.0}/s"));
    }
    if error_rate > cfg.error_budget {
        reasons.push(format!(
            "errors {:.2}% over the {:.2}% budget",
            error_rate * 100.0,
            cfg.error_budget * 100.0
        ));
    }
    if !cfg.slo.holds(slo_ms) {
        reasons.push(format!("{} was {slo_ms:.1} ms", cfg.slo.text));
    }
    let (a, b) = (ms(&first), ms(&second));
    if !first.is_empty() && b > a * 1.5 + cfg.slo.limit * 0.1 {
        reasons.push(format!(
            "latency climbing within the step ({a:.1} → {b:.1} ms)"
        ));
    }
    if lag > (cfg.slo.limit / 4.0).max(2.0) {
        reasons.push(format!(
            "send lag p99 {lag:.1} ms: too few connections or a busy generator"
        ));
    }
    Step {
        offered,
        achieved,
        error_rate,
        slo_ms,
        first_half_ms: a,
        second_half_ms: b,
        send_lag_p99_ms: lag,
        passed: reasons.is_empty(),
        reason: reasons.join("; "),
        from_ms: s.measured_from_ms,
        to_ms: s.ended_ms,
    }
}

/// Chooses the next rate to try.
#[derive(Debug, Clone)]
pub struct Search {
    cfg: KneeConfig,
    lo: Option<f64>,
    hi: Option<f64>,
}

impl Search {
    pub fn new(cfg: KneeConfig) -> Self {
        Search {
            cfg,
            lo: None,
            hi: None,
        }
    }

    pub fn first(&self) -> f64 {
        self.cfg.start_rate
    }

    /// After a step at `rate`, the next rate, or `None` when the search is done.
    pub fn next(&mut self, rate: f64, passed: bool) -> Option<f64> {
        if passed {
            self.lo = Some(self.lo.map_or(rate, |l| l.max(rate)));
        } else {
            self.hi = Some(self.hi.map_or(rate, |h| h.min(rate)));
        }
        match (self.lo, self.hi) {
            (Some(lo), None) => {
                let up = lo * 2.0;
                (up <= self.cfg.max_rate)
                    .then_some(up)
                    .or_else(|| (lo < self.cfg.max_rate).then_some(self.cfg.max_rate))
            }
            // Nothing passed yet: come down until something does.
            (None, Some(hi)) => (hi / 2.0 >= 1.0).then_some(hi / 2.0),
            (Some(lo), Some(hi)) => {
                if hi - lo <= self.cfg.precision * lo {
                    None
                } else {
                    Some(((lo + hi) / 2.0).round())
                }
            }
            (None, None) => Some(self.cfg.start_rate),
        }
    }

    /// The highest rate that passed.
    pub fn result(&self) -> f64 {
        self.lo.unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_brackets_a_cap() {
        let cfg = KneeConfig {
            slo: Threshold::parse("p99<300ms").unwrap(),
            error_budget: 0.001,
            start_rate: 100.0,
            max_rate: 1e6,
            precision: 0.05,
        };
        let cap = 1234.0;
        let mut s = Search::new(cfg);
        let mut rate = s.first();
        let mut steps = 0;
        while let Some(r) = s.next(rate, rate <= cap) {
            rate = r;
            steps += 1;
            assert!(steps < 30);
        }
        let found = s.result();
        assert!(found <= cap && found >= cap * 0.95, "{found}");
    }
}
