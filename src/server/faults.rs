//! Fault injection: the embedded server misbehaves on purpose, reproducibly, so clients
//! can be tested against what real service providers do under load — latency, 503s,
//! 429 throttling with Retry-After (a fraction of requests, or a rate cap), dropped
//! connections, and stalls during which nothing is answered.
//!
//! Decisions come from a hash of (seed, request number), not a shared RNG: the same seed
//! and the same request sequence give the same faults, with no lock on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::units::parse_duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    Fixed(Duration),
    Uniform(Duration, Duration),
    /// Exponentially distributed with this mean: a long tail, as real servers have.
    Exponential(Duration),
}

impl Latency {
    /// `5ms`, `2ms..10ms`, `exp:5ms`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(m) = s.strip_prefix("exp:") {
            return Ok(Latency::Exponential(parse_duration(m)?));
        }
        if let Some((a, b)) = s.split_once("..") {
            let (a, b) = (parse_duration(a)?, parse_duration(b)?);
            if b < a {
                return Err(format!(
                    "'{s}': the upper bound must not be below the lower"
                ));
            }
            return Ok(Latency::Uniform(a, b));
        }
        parse_duration(s)
            .map(Latency::Fixed)
            .map_err(|e| format!("{e} (or MIN..MAX, or exp:MEAN)"))
    }

    fn sample(&self, u: f64) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform(a, b) => a + (b - a).mul_f64(u),
            Latency::Exponential(m) => m.mul_f64(-(1.0 - u).max(1e-12).ln()),
        }
    }
}

/// The server stops answering `at` after start, for `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub at: Duration,
    pub duration: Duration,
}

impl Stall {
    /// `AT+DURATION`, e.g. `5s+3s`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, d) = s
            .split_once('+')
            .ok_or_else(|| format!("'{s}' is not a stall; use AT+DURATION, e.g. 5s+3s"))?;
        Ok(Stall {
            at: parse_duration(a)?,
            duration: parse_duration(d)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    pub seed: u64,
    pub latency: Option<Latency>,
    /// Fraction of requests answered 503.
    pub error_503: f64,
    /// Fraction of requests answered 429 with Retry-After.
    pub error_429: f64,
    pub retry_after: Duration,
    /// Requests per second above which the server answers 429.
    pub rate_cap: Option<f64>,
    /// Fraction of requests whose connection is closed without an answer.
    pub drop: f64,
    /// Fraction of requests that are applied and whose answer is then lost (the
    /// connection closed instead).
    pub lose_answer: f64,
    pub stalls: Vec<Stall>,
    /// Time each operation of a /Bulk request costs, as servers that run a batch's
    /// operations one after the other (one real server's /Bulk was 1.5× slower than
    /// one request per user at the same concurrency).
    pub bulk_op_delay: Duration,
    /// Faults for requests of this operation only (`--faults-on create_user`): services
    /// throttle their writes and leave reads alone. `None`: every request.
    pub only: Option<crate::metrics::Op>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: 1,
            latency: None,
            error_503: 0.0,
            error_429: 0.0,
            retry_after: Duration::from_secs(1),
            rate_cap: None,
            drop: 0.0,
            lose_answer: 0.0,
            stalls: Vec::new(),
            bulk_op_delay: Duration::ZERO,
            only: None,
        }
    }
}

impl FaultConfig {
    pub fn is_active(&self) -> bool {
        self.latency.is_some()
            || self.error_503 > 0.0
            || self.error_429 > 0.0
            || self.rate_cap.is_some()
            || self.drop > 0.0
            || self.lose_answer > 0.0
            || !self.stalls.is_empty()
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Proceed,
    /// Close the connection without answering.
    Drop,
    /// Apply the request, then close the connection without answering.
    LoseAnswer,
    /// Answer with this status (429 or 503) and a Retry-After.
    Reject(u16),
}

/// GCRA limiter: one request per `interval`, with a burst of `tolerance`.
#[derive(Debug)]
struct Gcra {
    tat: f64,
}

pub struct Faults {
    pub cfg: FaultConfig,
    start: Instant,
    counter: AtomicU64,
    limiter: Mutex<Gcra>,
}

fn mix(seed: u64, n: u64, stream: u64) -> f64 {
    let z = seed ^ n.wrapping_mul(crate::rng::GOLDEN) ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    crate::rng::unit(crate::rng::mix(z))
}

impl Faults {
    pub fn new(cfg: FaultConfig) -> Self {
        Faults {
            cfg,
            start: Instant::now(),
            counter: AtomicU64::new(0),
            limiter: Mutex::new(Gcra { tat: 0.0 }),
        }
    }

    /// Time until the current stall ends, if one is under way.
    fn stalled_for(&self, now: Instant) -> Option<Duration> {
        let t = now.duration_since(self.start);
        self.cfg
            .stalls
            .iter()
            .filter(|s| t >= s.at && t < s.at + s.duration)
            .map(|s| s.at + s.duration - t)
            .max()
    }

    fn over_cap(&self, now: Instant) -> bool {
        let Some(rate) = self.cfg.rate_cap else {
            return false;
        };
        let interval = 1.0 / rate;
        // A burst of 2% of a second's worth: enough to absorb scheduling jitter, small
        // enough that the cap holds over any window a knee search measures.
        let tolerance = (rate * 0.02).max(1.0) * interval;
        let t = now.duration_since(self.start).as_secs_f64();
        let mut g = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        let tat = g.tat.max(t);
        if tat - t > tolerance {
            return true;
        }
        g.tat = tat + interval;
        false
    }

    /// Whether requests of `op` get faults at all.
    pub fn applies_to(&self, op: crate::metrics::Op) -> bool {
        self.cfg.only.is_none_or(|o| o == op)
    }

    /// Decides the fate of one request, sleeping through stalls and added latency.
    pub async fn apply(&self) -> Action {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let seed = self.cfg.seed;
        while let Some(wait) = self.stalled_for(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        if self.cfg.drop > 0.0 && mix(seed, n, 1) < self.cfg.drop {
            return Action::Drop;
        }
        if self.over_cap(Instant::now()) {
            return Action::Reject(429);
        }
        if self.cfg.error_429 > 0.0 && mix(seed, n, 2) < self.cfg.error_429 {
            return Action::Reject(429);
        }
        if self.cfg.error_503 > 0.0 && mix(seed, n, 3) < self.cfg.error_503 {
            return Action::Reject(503);
        }
        if let Some(l) = self.cfg.latency {
            tokio::time::sleep(l.sample(mix(seed, n, 4))).await;
        }
        if self.cfg.lose_answer > 0.0 && mix(seed, n, 5) < self.cfg.lose_answer {
            return Action::LoseAnswer;
        }
        Action::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fault_specs() {
        assert_eq!(
            Latency::parse("5ms").unwrap(),
            Latency::Fixed(Duration::from_millis(5))
        );
        assert_eq!(
            Latency::parse("2ms..10ms").unwrap(),
            Latency::Uniform(Duration::from_millis(2), Duration::from_millis(10))
        );
        assert_eq!(
            Latency::parse("exp:5ms").unwrap(),
            Latency::Exponential(Duration::from_millis(5))
        );
        assert!(Latency::parse("10ms..2ms").is_err());
        assert_eq!(
            Stall::parse("5s+3s").unwrap(),
            Stall {
                at: Duration::from_secs(5),
                duration: Duration::from_secs(3)
            }
        );
        assert!(Stall::parse("5s").unwrap_err().contains("AT+DURATION"));
    }

    #[test]
    fn fractions_are_reproducible_and_close_to_requested() {
        let n = 100_000;
        let hits = |seed| (0..n).filter(|&i| mix(seed, i, 3) < 0.05).count();
        assert_eq!(hits(7), hits(7));
        let h = hits(7) as f64 / n as f64;
        assert!((0.045..0.055).contains(&h), "{h}");
    }

    #[test]
    fn rate_cap_admits_about_the_cap() {
        let f = Faults::new(FaultConfig {
            rate_cap: Some(1000.0),
            ..FaultConfig::default()
        });
        // Offer 10,000 requests spread evenly over one simulated second.
        let t0 = f.start;
        let admitted = (0..10_000)
            .filter(|i| !f.over_cap(t0 + Duration::from_micros(i * 100)))
            .count();
        assert!((990..=1030).contains(&admitted), "{admitted}");
    }
}
