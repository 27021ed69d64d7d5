//! When each request is meant to start. In the open model the send time of request *i*
//! is fixed before the run (constant rate, a linear ramp, or seeded Poisson gaps) and
//! never depends on how fast the server answers — the only way latency under load is
//! measured without coordinated omission (wrk2, vegeta, k6's arrival-rate executors).
//!
//! Shards split one global schedule: shard k of N owns every request whose global number
//! is k modulo N, so N generators together send exactly what one would, each at 1/N of
//! the rate, and no two send the same request.

use std::time::{Duration, Instant};

use crate::gen::Rng;

/// The Job controller's 0-based completion index of an Indexed Job's pod.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The shard count of `--shard auto`.
pub const COUNT_ENV: &str = "SCIMLOAD_SHARDS";

/// `--shard i/N`, 0-based on the wire as `i` in 1..=N for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index.
    pub index: u64,
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// `1/2`, `2/2` (1-based, as people count), or `auto`: the shard of a Kubernetes
    /// Indexed Job, from `JOB_COMPLETION_INDEX` (0-based, set by the Job controller) and
    /// the shard count in `SCIMLOAD_SHARDS` (set by the manifest to the Job's
    /// completions: the controller does not expose them to the pod).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim() == "auto" {
            return Shard::from_env(
                std::env::var(INDEX_ENV).ok().as_deref(),
                std::env::var(COUNT_ENV).ok().as_deref(),
            );
        }
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not a shard; write i/N, e.g. 1/4"))?;
        let (i, n): (u64, u64) = (
            i.trim()
                .parse()
                .map_err(|_| format!("'{i}' is not a shard number"))?,
            n.trim()
                .parse()
                .map_err(|_| format!("'{n}' is not a shard count"))?,
        );
        if n == 0 || i == 0 || i > n {
            return Err(format!("shard {i}/{n}: i must be between 1 and N"));
        }
        Ok(Shard {
            index: i - 1,
            count: n,
        })
    }

    /// `--shard auto` from the two variables' values (absent: `None`).
    pub fn from_env(index: Option<&str>, count: Option<&str>) -> Result<Self, String> {
        let (Some(index), Some(count)) = (index, count) else {
            return Err(format!(
                "--shard auto needs {INDEX_ENV} (0-based, set by a Kubernetes Indexed Job) and {COUNT_ENV} (the Job's completions); set both, or pass --shard i/N"
            ));
        };
        let index: u64 = index
            .trim()
            .parse()
            .map_err(|_| format!("{INDEX_ENV}='{index}' is not a shard index; set it to 0..N-1"))?;
        let count: u64 = count.trim().parse().map_err(|_| {
            format!("{COUNT_ENV}='{count}' is not a shard count; set it to the Job's completions")
        })?;
        if count == 0 {
            return Err(format!(
                "{COUNT_ENV}=0: a run needs at least one shard; set it to the Job's completions"
            ));
        }
        if index >= count {
            return Err(format!(
                "{INDEX_ENV}={index} is out of range for {COUNT_ENV}={count}; the index runs 0..{}: set {COUNT_ENV} to the Job's completions",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// The global number of this shard's `m`-th request.
    pub fn global(&self, m: u64) -> u64 {
        m * self.count + self.index
    }
}

/// How the offered rate moves over a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateShape {
    Constant(f64),
    /// Linear from the first to the second rate over the run's duration.
    Ramp(f64, f64),
}

impl RateShape {
    /// `500`, `500/s`, or a ramp `100..2000`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some((a, b)) = s.split_once("..") {
            let (a, b) = (crate::units::parse_rate(a)?, crate::units::parse_rate(b)?);
            if a <= 0.0 && b <= 0.0 {
                return Err(format!("'{s}': a ramp must rise above 0, e.g. 0..1000"));
            }
            return Ok(RateShape::Ramp(a, b));
        }
        match crate::units::parse_rate(s)? {
            r if r > 0.0 => Ok(RateShape::Constant(r)),
            _ => Err(format!(
                "'{s}': a rate of 0 sends nothing; give requests per second, e.g. 200"
            )),
        }
    }

    pub fn mean(&self) -> f64 {
        match *self {
            RateShape::Constant(r) => r,
            RateShape::Ramp(a, b) => (a + b) / 2.0,
        }
    }
}

/// The global arrival times of one run: offsets from its start.
#[derive(Debug, Clone)]
pub struct Arrivals {
    shape: RateShape,
    duration: f64,
    poisson: Option<Rng>,
    /// Poisson: the time of the last generated arrival and its number.
    clock: f64,
    next: u64,
}

impl Arrivals {
    pub fn new(shape: RateShape, duration: Duration, poisson_seed: Option<u64>) -> Self {
        Arrivals {
            shape,
            duration: duration.as_secs_f64(),
            poisson: poisson_seed.map(Rng::new),
            clock: 0.0,
            next: 0,
        }
    }

    /// The rate at offset `t` seconds.
    fn rate_at(&self, t: f64) -> f64 {
        match self.shape {
            RateShape::Constant(r) => r,
            RateShape::Ramp(a, b) => a + (b - a) * (t / self.duration.max(1e-9)).min(1.0),
        }
    }

    /// The offset of global request `i` for deterministic schedules: the time at which
    /// the integral of the rate reaches `i`.
    fn offset(&self, i: u64) -> f64 {
        let i = i as f64;
        match self.shape {
            RateShape::Constant(r) => i / r,
            RateShape::Ramp(a, b) => {
                // a·t + (b−a)·t²/(2D) = i, solved for t ≥ 0.
                let k = (b - a) / (2.0 * self.duration.max(1e-9));
                if k.abs() < 1e-12 {
                    i / a
                } else {
                    (-a + (a * a + 4.0 * k * i).max(0.0).sqrt()) / (2.0 * k)
                }
            }
        }
    }

    /// The next global arrival as (number, offset in seconds); arrivals are generated in
    /// order, so a shard calls this and keeps its own.
    pub fn next_arrival(&mut self) -> (u64, f64) {
        let i = self.next;
        self.next += 1;
        let t = match &mut self.poisson {
            None => self.offset(i),
            Some(rng) => {
                // Exponential gaps at the rate of the moment (a thinned Poisson process
                // is overkill for rates that change slowly against the gap).
                let gap = -(1.0 - rng.f64()).max(1e-12).ln();
                let rate = self.rate_at(self.clock).max(1e-9);
                if i > 0 {
                    self.clock += gap / rate;
                }
                self.clock
            }
        };
        (i, t)
    }
}

/// A capped rate (`import --rate`): unit k starts no earlier than one gap after unit
/// k−1's slot. Unlike `Arrivals` it is a ceiling, not a plan: a slot missed while the
/// target was slow is not made up by a burst, so the cap holds over any window.
#[derive(Debug, Clone)]
pub struct CappedRate {
    gap: Duration,
    next: Instant,
}

impl CappedRate {
    /// `None` for a rate of 0 or less: no cap.
    pub fn new(per_second: f64, now: Instant) -> Option<Self> {
        (per_second > 0.0 && per_second.is_finite()).then(|| CappedRate {
            gap: Duration::from_secs_f64(1.0 / per_second),
            next: now,
        })
    }

    /// Whether the next unit may start at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// When the next unit may start.
    pub fn next_at(&self) -> Instant {
        self.next
    }

    /// A unit started at `now`: the next slot is one gap after this one's, which is
    /// never taken as more than one gap in the past (a credit of one slot, no burst).
    pub fn take(&mut self, now: Instant) {
        self.reserve(now);
    }

    /// The slot of a unit that asks at `now` and sleeps to it (many senders sharing one
    /// cap, as the adaptive throttle's do): never before `now`, one gap after the slot
    /// before it, with the same one-slot credit as [`CappedRate::take`].
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let at = self.next.max(now.checked_sub(self.gap).unwrap_or(now));
        self.next = at + self.gap;
        at.max(now)
    }

    /// A new rate from the next slot on (the slot already reserved stands).
    pub fn set_rate(&mut self, per_second: f64) {
        if per_second > 0.0 && per_second.is_finite() {
            self.gap = Duration::from_secs_f64(1.0 / per_second);
        }
    }

    /// Forgets the slots reserved so far: the next unit may start at `now`.
    pub fn restart(&mut self, now: Instant) {
        self.next = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_requests() {
        let s = Shard::parse("2/3").unwrap();
        assert_eq!((s.index, s.count), (1, 3));
        assert_eq!((0..3).map(|m| s.global(m)).collect::<Vec<_>>(), [1, 4, 7]);
        assert!(Shard::parse("0/2").is_err());
        assert!(Shard::parse("3/2").is_err());
    }

    #[test]
    fn shard_auto_reads_the_indexed_job_and_says_what_to_set() {
        let s = Shard::from_env(Some("2"), Some("3")).unwrap();
        assert_eq!((s.index, s.count), (2, 3));
        for (index, count, says) in [
            (None, Some("3"), INDEX_ENV),
            (Some("0"), None, COUNT_ENV),
            (Some("0"), Some("0"), "at least one shard"),
            (Some("3"), Some("3"), "out of range"),
            (Some("x"), Some("3"), "0..N-1"),
        ] {
            let e = Shard::from_env(index, count).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn constant_ramp_and_poisson_offer_the_planned_count() {
        let d = Duration::from_secs(10);
        let count = |mut a: Arrivals| {
            std::iter::from_fn(|| Some(a.next_arrival()))
                .take_while(|(_, t)| *t < 10.0)
                .count()
        };
        assert_eq!(
            count(Arrivals::new(RateShape::Constant(200.0), d, None)),
            2000
        );
        // 100 → 300 over 10 s: 2,000 requests, more of them late in the run.
        let ramp = Arrivals::new(RateShape::Ramp(100.0, 300.0), d, None);
        assert!((1999..=2001).contains(&count(ramp.clone())));
        let first_half = std::iter::successors(Some(ramp), |a| Some(a.clone()))
            .next()
            .map(|mut a| {
                std::iter::from_fn(|| Some(a.next_arrival()))
                    .take_while(|(_, t)| *t < 5.0)
                    .count()
            })
            .unwrap();
        assert!((740..=760).contains(&first_half), "{first_half}");
        let p = count(Arrivals::new(RateShape::Constant(200.0), d, Some(7)));
        assert!((1850..=2150).contains(&p), "{p}");
        assert_eq!(
            p,
            count(Arrivals::new(RateShape::Constant(200.0), d, Some(7)))
        );
        assert_eq!(
            RateShape::parse("100..2000/s").unwrap(),
            RateShape::Ramp(100.0, 2000.0)
        );
    }

    /// 100/s: ten starts as fast as allowed take 90 ms of slots; after a stall of two
    /// seconds one slot of credit is left, not the ~190 missed ones.
    #[test]
    fn a_capped_rate_spaces_starts_and_does_not_catch_up() {
        let t0 = Instant::now();
        let mut c = CappedRate::new(100.0, t0).unwrap();
        for k in 0..10 {
            assert!(c.ready(c.next_at()));
            let at = c.next_at();
            assert_eq!(at, t0 + Duration::from_millis(10) * k);
            c.take(at);
        }
        let late = t0 + Duration::from_secs(2);
        assert!(c.ready(late));
        c.take(late);
        assert_eq!(c.next_at(), late);
        c.take(late);
        assert_eq!(c.next_at(), late + Duration::from_millis(10));
        assert!(!c.ready(late + Duration::from_millis(5)));
        assert!(CappedRate::new(0.0, t0).is_none());
    }

    /// Senders that reserve at the same instant get slots a gap apart, none before
    /// the instant they asked; a new rate spaces the slots after the one reserved.
    #[test]
    fn reserved_slots_are_spaced_for_senders_sharing_a_cap() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = CappedRate::new(100.0, t0).unwrap();
        let slots: Vec<Duration> = (0..3).map(|_| c.reserve(t0) - t0).collect();
        assert_eq!(slots, [ms(0), ms(10), ms(20)]);
        c.set_rate(50.0);
        assert_eq!(c.reserve(t0) - t0, ms(30));
        assert_eq!(c.reserve(t0) - t0, ms(50));
        // After an idle second: one slot of credit, then the gap again.
        let late = t0 + Duration::from_secs(1);
        assert_eq!(c.reserve(late), late);
        assert_eq!(c.reserve(late), late);
        assert_eq!(c.reserve(late) - late, ms(20));
        c.restart(late);
        assert_eq!(c.reserve(late), late);
    }
}
