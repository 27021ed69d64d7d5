//! Adaptive throttling: when the target answers 429, every request of the import slows
//! down, not only the one that was refused — then the rate climbs back.
//!
//! The controller judges one window (half a second, at least 20 answers) at a time:
//! - more than 1% of answers were 429: the limit becomes 90% of the rate the server
//!   admitted in that window, but at most halves at once (a window where many senders
//!   sat out a Retry-After admits little, which says nothing about the server);
//! - no 429s (within 1%): the limit climbs, by 25% per window while it is well below the
//!   rate that was refused or after three clean windows in a row, by 5% near that rate
//!   (slow where the server said no, faster away from it, like TCP CUBIC), and is lifted
//!   once it is well above the fastest rate ever answered, so an unthrottled import runs
//!   unhindered;
//! - if a decrease did not lower the share of 429s, the 429s do not follow the rate (a
//!   server that refuses a fixed share, a noisy neighbour): the decrease is undone,
//!   decreases are held off for 10 s, and that share becomes the baseline — only
//!   refusals well above it count from then on — instead of crawling toward zero the way
//!   a plain AIMD does under random refusals (TCP's problem with random loss).
//!
//! A successful answer that says the service's limit is spent (`ratelimit`) pauses
//! every send until its reset, throttled or not.
//!
//! The refused request itself waits its Retry-After before it is sent again (see
//! `retry`), and its retry is paced like any other send, so the refused requests of one
//! burst do not all come back in the same millisecond.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::dispatch::schedule::CappedRate;

const WINDOW: Duration = Duration::from_millis(500);
/// A window is judged once it holds this many answers (or after MAX_WINDOW).
const MIN_ANSWERS: u64 = 20;
const MAX_WINDOW: Duration = Duration::from_secs(5);
/// Share of 429s tolerated without slowing down.
const TOLERATED: f64 = 0.01;
/// Fraction of the admitted rate the limit drops to.
const DECREASE: f64 = 0.9;
/// Climb per window: fast while far below the refused rate, careful near it.
const CLIMB_FAST: f64 = 1.25;
const CLIMB: f64 = 1.05;
/// How long decreases stay off after one did not help.
const HOLD: Duration = Duration::from_secs(10);
/// Never below this, so an import always moves.
const MIN_RATE: f64 = 1.0;

/// What the throttle did, for the summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThrottleStats {
    /// Times the rate was lowered after 429s.
    pub decreases: u64,
    /// Decreases undone because the share of 429s did not fall.
    pub futile: u64,
    /// The lowest limit set, requests/s.
    pub lowest: Option<f64>,
    /// The limit now; none when unlimited.
    pub current: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
enum Last {
    Nothing,
    Increased,
    Decreased { fraction: f64, before: Option<f64> },
}

#[derive(Debug)]
struct State {
    limit: Option<f64>,
    /// The send slots under the limit: the capped rate `import --rate` paces by, here
    /// shared by every sender (each reserves its slot and sleeps to it).
    slots: CappedRate,
    window_start: Instant,
    /// First and last answer of the window: its rate over the time it was busy.
    first: Option<Instant>,
    last_answer: Instant,
    answered: u64,
    throttled: u64,
    last: Last,
    hold_until: Option<Instant>,
    /// The fastest answered rate seen in a window without 429s.
    fastest: f64,
    /// The send rate at which the server last refused.
    refused_at: f64,
    /// Windows in a row without refusals.
    clean: u32,
    /// No sends before this (`pause`).
    paused_until: Option<Instant>,
    /// Share of 429s that does not follow the rate (learnt from futile decreases).
    baseline: f64,
    stats: ThrottleStats,
}

#[derive(Debug)]
pub struct Throttle {
    state: Mutex<State>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl Throttle {
    pub fn new(now: Instant) -> Self {
        Throttle {
            state: Mutex::new(State {
                limit: None,
                slots: CappedRate::new(MIN_RATE, now).expect("MIN_RATE is above 0"),
                window_start: now,
                first: None,
                last_answer: now,
                answered: 0,
                throttled: 0,
                last: Last::Nothing,
                hold_until: None,
                fastest: 0.0,
                refused_at: 0.0,
                clean: 0,
                paused_until: None,
                baseline: 0.0,
                stats: ThrottleStats::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long to wait before sending one request at `now` (and takes its slot).
    pub fn slot(&self, now: Instant) -> Duration {
        let mut s = self.lock();
        let paused = s.paused_until.filter(|p| *p > now);
        let Some(limit) = s.limit else {
            return paused.map_or(Duration::ZERO, |p| p - now);
        };
        s.slots.set_rate(limit);
        s.slots.reserve(now.max(paused.unwrap_or(now))) - now
    }

    /// Waits for a send slot, on the precise timer the pacer uses (the runtime's own
    /// timer rounds to 1 ms, which at a few hundred requests/s bunches the slots).
    pub async fn acquire(&self) {
        let now = Instant::now();
        let wait = self.slot(now);
        if !wait.is_zero() {
            crate::dispatch::timer::sleep_precisely(now + wait).await;
        }
    }

    /// Holds every send for `d` (a service said its limit is spent until then), limited
    /// or not.
    pub fn pause(&self, d: Duration) {
        let mut s = self.lock();
        let until = Instant::now() + d;
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
    }

    /// Counts one answer; `refused` for a 429.
    pub fn record(&self, refused: bool, now: Instant) {
        let mut s = self.lock();
        s.answered += 1;
        s.throttled += refused as u64;
        s.first.get_or_insert(now);
        s.last_answer = now;
        let elapsed = now.saturating_duration_since(s.window_start);
        if (elapsed >= WINDOW && s.answered >= MIN_ANSWERS) || elapsed >= MAX_WINDOW {
            judge(&mut s, elapsed, now);
        }
    }

    pub fn stats(&self) -> ThrottleStats {
        let s = self.lock();
        ThrottleStats {
            current: s.limit,
            ..s.stats.clone()
        }
    }

    /// The limit now, requests/s; none when unlimited.
    pub fn limit(&self) -> Option<f64> {
        self.lock().limit
    }
}

fn judge(s: &mut State, elapsed: Duration, now: Instant) {
    // The window's rates over the time answers came in (an import starting up, or
    // waiting for its file, is not a slow server).
    let busy = s
        .first
        .map_or(elapsed, |f| s.last_answer.saturating_duration_since(f))
        .as_secs_f64()
        .max(elapsed.as_secs_f64() * 0.5)
        .max(1e-3);
    let rate = s.answered as f64 / busy;
    let fraction = s.throttled as f64 / s.answered.max(1) as f64;
    let admitted = (s.answered - s.throttled) as f64 / busy;
    s.answered = 0;
    s.throttled = 0;
    s.first = None;
    s.window_start = now;
    let tolerated = if s.baseline > 0.0 {
        TOLERATED.max(s.baseline * 1.5 + 0.02)
    } else {
        TOLERATED
    };
    if fraction > tolerated {
        s.clean = 0;
        if s.hold_until.is_some_and(|h| now < h) {
            return;
        }
        if let Last::Decreased {
            fraction: before_fraction,
            before,
        } = s.last
        {
            if fraction >= before_fraction * 0.8 {
                // Slowing down did not reduce the refusals: they are not about rate.
                s.baseline = s.baseline.max(fraction.min(before_fraction));
                s.limit = before;
                s.slots.restart(now);
                s.hold_until = Some(now + HOLD);
                s.stats.futile += 1;
                s.last = Last::Nothing;
                return;
            }
        }
        let current = s
            .limit
            .map_or(rate.max(s.fastest), |l| l.min(rate.max(l * 0.5)));
        s.refused_at = current;
        let new = (admitted * DECREASE)
            .max(current * 0.5)
            .min(s.limit.unwrap_or(f64::MAX))
            .max(MIN_RATE);
        s.last = Last::Decreased {
            fraction,
            before: s.limit,
        };
        s.limit = Some(new);
        s.stats.decreases += 1;
        s.stats.lowest = Some(s.stats.lowest.map_or(new, |l| l.min(new)));
    } else {
        s.hold_until = None;
        s.clean += 1;
        if fraction < s.baseline * 0.5 {
            // The fixed share of refusals is going away.
            s.baseline *= 0.9;
        }
        match s.limit {
            None => s.fastest = s.fastest.max(rate),
            Some(l) => {
                let up = l * if l < s.refused_at * 0.8 || s.clean > 3 {
                    CLIMB_FAST
                } else {
                    CLIMB
                };
                // Well above anything the server ever answered: no limit at all.
                s.limit = (up <= s.fastest.max(s.refused_at).max(rate) * 1.5).then_some(up);
                s.last = Last::Increased;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the throttle against a simulated server for `secs` seconds with a client
    /// that would send `offered` requests/s, pacing each send by the limit of the moment;
    /// `refuse(rate, i)` says whether answer i at the current rate is a 429. Returns the
    /// requests sent in each second.
    fn simulate(
        offered: f64,
        secs: u32,
        refuse: impl Fn(f64, u64) -> bool,
    ) -> (Vec<f64>, Throttle) {
        let t0 = Instant::now();
        let th = Throttle::new(t0);
        let mut per_second = vec![0.0; secs as usize];
        let (mut t, mut i) = (0.0f64, 0u64);
        while t < secs as f64 {
            let rate = th.limit().map_or(offered, |l| l.min(offered));
            per_second[t as usize] += 1.0;
            th.record(refuse(rate, i), t0 + Duration::from_secs_f64(t));
            i += 1;
            t += 1.0 / rate;
        }
        (per_second, th)
    }

    #[test]
    fn settles_near_a_rate_limit() {
        // A server admitting 1,000/s and refusing the excess, hit at 3,000/s.
        let limit = 1000.0;
        let (rates, th) = simulate(3000.0, 60, |rate, i| {
            let share = (1.0 - limit / rate).max(0.0);
            (i as f64 * 0.618_034).fract() < share
        });
        let tail = &rates[20..];
        let mean = tail.iter().sum::<f64>() / tail.len() as f64;
        assert!((700.0..=1150.0).contains(&mean), "mean {mean}: {rates:?}");
        assert!(th.stats().decreases >= 1);
    }

    #[test]
    fn random_refusals_do_not_make_it_crawl() {
        // 10% of answers refused whatever the rate: slowing down cannot help.
        let (rates, th) = simulate(2000.0, 60, |_, i| i % 10 == 0);
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        assert!(mean > 1700.0, "mean {mean}: {rates:?}");
        assert!(th.stats().futile >= 1, "{:?}", th.stats());
        assert!(rates.iter().all(|r| *r >= 1500.0), "{rates:?}");
    }

    #[test]
    fn climbs_back_and_lifts_the_limit_once_the_server_recovers() {
        // Limited to 500/s for 10 s, then no limit.
        let (rates, th) = simulate(2000.0, 60, |rate, i| {
            let share = if i < 12_000 {
                (1.0 - 500.0 / rate).max(0.0)
            } else {
                0.0
            };
            (i as f64 * 0.618_034).fract() < share
        });
        assert!(rates[5..10].iter().all(|r| *r < 1000.0), "{rates:?}");
        assert_eq!(rates.last(), Some(&2000.0), "{rates:?}");
        assert_eq!(th.limit(), None);
    }

    #[test]
    fn a_pause_holds_every_send_limited_or_not() {
        let th = Throttle::default();
        th.pause(Duration::from_secs(3));
        let w = th.slot(Instant::now());
        assert!(w > Duration::from_millis(2900), "{w:?}");
        th.lock().limit = Some(100.0);
        let w = th.slot(Instant::now());
        assert!(w > Duration::from_millis(2900), "{w:?}");
        // Once it has passed (and the slot taken under it too), sends go at the limit.
        {
            let mut s = th.lock();
            s.paused_until = None;
            s.slots.restart(Instant::now());
        }
        assert!(th.slot(Instant::now()) < Duration::from_millis(100));
    }

    #[test]
    fn slots_are_spaced_by_the_limit() {
        let t0 = Instant::now();
        let th = Throttle::new(t0);
        assert_eq!(th.slot(t0), Duration::ZERO, "unlimited");
        th.lock().limit = Some(100.0);
        let waits: Vec<Duration> = (0..3).map(|_| th.slot(t0)).collect();
        assert_eq!(waits[0], Duration::ZERO);
        assert!((waits[2].as_secs_f64() - 0.02).abs() < 1e-6, "{waits:?}");
    }
}
