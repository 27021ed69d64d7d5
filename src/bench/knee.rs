//! The knee search: the highest offered rate the server sustains. Geometric steps up
//! until a step fails, then bisection between the last pass and the first failure.
//!
//! A step passes when the server kept up (achieved ≈ offered), errors stayed within the
//! budget, the SLO percentile held, latency did not climb within the step (a queue that
//! grows fails later even if this step's percentile looks fine), and the generator sent
//! on time — otherwise the step measured the generator, not the server.
//!
//! The send-lag bound is absolute (1 ms p99 by default, `--max-send-lag`), as for every
//! other run: a step whose requests left late has response times that include the
//! generator's own delay, so it says nothing about the server. Such a step ends the
//! search, and the result is reported as a lower bound the generator set, never as the
//! server's knee (with a bound relative to the SLO, 75 ms of lag passed at p99<300ms).

use super::engine::PhaseStats;
use crate::metrics::threshold::{Metric, Threshold};
pub use crate::results::knee::{KneeResult, Step};

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
    /// Send-lag p99 above which the generator, not the server, is what a step measured.
    pub max_send_lag_ms: f64,
}

/// The send-lag bound of every run that does not set one (README: 1 ms).
pub const MAX_SEND_LAG_MS: f64 = 1.0;

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
    let generator_behind = lag > cfg.max_send_lag_ms;
    if generator_behind {
        reasons.push(format!(
            "the generator could not keep the rate: send lag p99 {lag:.2} ms > {} ms (too few --connections, or the generator's machine is saturated)",
            cfg.max_send_lag_ms
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
        generator_behind,
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
            max_send_lag_ms: MAX_SEND_LAG_MS,
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

    fn cfg(slo: &str) -> KneeConfig {
        KneeConfig {
            slo: Threshold::parse(slo).unwrap(),
            error_budget: 0.001,
            start_rate: 100.0,
            max_rate: 1e6,
            precision: 0.05,
            max_send_lag_ms: MAX_SEND_LAG_MS,
        }
    }

    /// A step of `secs` seconds: `ok` answers a second, `errors` in all, each second's
    /// answers taking `ms(second)` ms, every request sent `lag_us` late.
    fn stats(secs: u64, ok: u64, errors: u64, ms: impl Fn(u64) -> u64, lag_us: u64) -> PhaseStats {
        let mut response_by_second = Vec::new();
        for i in 0..secs {
            let mut h = crate::metrics::new_histogram();
            h.record_n(ms(i) * 1000, ok + errors / secs).unwrap();
            response_by_second.push(h);
        }
        let mut lag = crate::metrics::new_histogram();
        lag.record_n(lag_us.max(1), ok * secs + errors).unwrap();
        PhaseStats {
            first_intended: std::time::UNIX_EPOCH,
            started: std::time::UNIX_EPOCH,
            measured_from_ms: 0,
            ended_ms: secs * 1000,
            measured_secs: secs as f64,
            planned: ok * secs + errors,
            sent: ok * secs + errors,
            dropped: 0,
            ok: ok * secs,
            errors,
            response_by_second,
            lag,
            created: Vec::new(),
            next_request: 0,
            protocol: "HTTP/1.1",
        }
    }

    /// Each rule alone fails a step that is otherwise healthy, with its own reason.
    #[test]
    fn each_step_rule_fails_a_step_alone() {
        let c = cfg("p99<300ms");
        let healthy = judge(&c, 100.0, &stats(10, 100, 0, |_| 10, 200));
        assert!(healthy.passed, "{healthy:?}");
        let only = |st: Step, what: &str| {
            assert!(!st.passed, "{what}: {st:?}");
            assert_eq!(st.reason.split("; ").count(), 1, "{what}: {}", st.reason);
            assert!(st.reason.contains(what), "{what}: {}", st.reason);
        };
        // Achieved ≈ offered: 90/s of 100/s is a server that did not keep up.
        only(
            judge(&c, 100.0, &stats(10, 90, 0, |_| 10, 200)),
            "achieved 90/s of 100/s",
        );
        assert!(judge(&c, 100.0, &stats(10, 96, 0, |_| 10, 200)).passed);
        // Error budget: 2 of 1,000 is 0.2% > 0.1%; 1 of 1,000 is within.
        only(
            judge(&c, 100.0, &stats(10, 100, 2, |_| 10, 200)),
            "errors 0.20% over the 0.10% budget",
        );
        assert!(judge(&c, 100.0, &stats(10, 100, 1, |_| 10, 200)).passed);
        // The SLO percentile.
        only(
            judge(&c, 100.0, &stats(10, 100, 0, |_| 400, 200)),
            "p99<300ms was",
        );
        // Latency climbing within the step: 10 ms in the first half, 100 ms in the
        // second; p99 (100 ms) holds the SLO, but a growing queue fails later.
        only(
            judge(
                &c,
                100.0,
                &stats(10, 100, 0, |s| if s < 5 { 10 } else { 100 }, 200),
            ),
            "latency climbing within the step",
        );
        assert!(judge(&c, 100.0, &stats(10, 100, 0, |s| 10 + s, 200)).passed);
        // Send lag: over 1 ms p99 the step measured the generator. The old bound,
        // max(SLO/4, 2 ms), let 75 ms pass at p99<300ms.
        let late = judge(&c, 100.0, &stats(10, 100, 0, |_| 10, 1_500));
        only(late.clone(), "the generator could not keep the rate");
        assert!(late.generator_behind);
        only(
            judge(&c, 100.0, &stats(10, 100, 0, |_| 10, 75_000)),
            "send lag p99 75",
        );
        assert!(!judge(&c, 100.0, &stats(10, 100, 0, |_| 10, 900)).generator_behind);
        // --max-send-lag 5ms moves the bound.
        let loose = KneeConfig {
            max_send_lag_ms: 5.0,
            ..cfg("p99<300ms")
        };
        assert!(judge(&loose, 100.0, &stats(10, 100, 0, |_| 10, 1_500)).passed);
    }

    #[test]
    fn a_generator_limit_is_a_lower_bound_not_a_knee() {
        let k = |best, limit| KneeResult {
            searched: true,
            slo: "p99<300ms".into(),
            error_budget: 0.001,
            max_sustainable_rate: best,
            generator_limit: limit,
            steps: Vec::new(),
        };
        assert!(k(800.0, Some(1600.0)).verdict().starts_with(
            "at least 800 requests/s: at 1600/s the generator could not keep the rate"
        ));
        assert!(k(0.0, Some(100.0)).verdict().starts_with("unknown"));
        assert_eq!(k(800.0, None).verdict(), "800 requests/s at SLO p99<300ms");
    }
}
