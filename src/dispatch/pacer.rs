//! The one pacer that bench runs and import phases start their units by: a plan of
//! send times (the open model's arrivals, a capped rate, or none) slept to on the one
//! precise timer. What a unit is stays the caller's business; the pacer hands out a
//! number and the instant the unit was meant to start, from which its response time is
//! measured (so a late start is charged to the target, not hidden: DESIGN, coordinated
//! omission).

use std::time::{Duration, Instant};

use super::schedule::{Arrivals, CappedRate, RateShape, Shard};
use super::timer::{self, PreciseTimer};

/// A unit's turn: its number among this pacer's units (0-based; a shard counts its
/// own) and when it was meant to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub n: u64,
    pub intended: Instant,
}

enum Plan {
    /// Send times fixed in advance: this shard's arrivals from `origin` until the
    /// `horizon` (seconds) or `limit` units, whichever comes first.
    Open {
        arrivals: Arrivals,
        origin: Instant,
        horizon: f64,
        shard: Shard,
        limit: Option<u64>,
        /// The next arrival of this shard, once looked at; `None` inside once spent.
        next: Option<Option<Instant>>,
    },
    /// A ceiling (`import --rate`): a unit starts no earlier than one gap after the
    /// slot of the one before.
    Capped(CappedRate),
    /// As soon as the caller asks (the closed model, an import without a cap).
    Unpaced,
}

/// Hands out [`Slot`]s by its plan; create one per run or phase.
pub struct Pacer {
    plan: Plan,
    /// Opened at the first sleep: an unpaced run never needs it.
    timer: Option<Option<PreciseTimer>>,
    taken: u64,
}

impl Pacer {
    /// The open model: `shape` over `horizon` from `origin` (Poisson gaps with a seed),
    /// this shard's share, at most `limit` units.
    pub fn open(
        shape: RateShape,
        poisson: Option<u64>,
        origin: Instant,
        horizon: Duration,
        shard: Shard,
        limit: Option<u64>,
    ) -> Self {
        Self::with(Plan::Open {
            arrivals: Arrivals::new(shape, horizon, poisson),
            origin,
            horizon: horizon.as_secs_f64(),
            shard,
            limit,
            next: None,
        })
    }

    /// At most `per_second` starts a second from `now`; no rate (or 0): unpaced.
    pub fn capped(per_second: Option<f64>, now: Instant) -> Self {
        match per_second.and_then(|r| CappedRate::new(r, now)) {
            Some(c) => Self::with(Plan::Capped(c)),
            None => Self::unpaced(),
        }
    }

    /// Every unit may start when the caller asks.
    pub fn unpaced() -> Self {
        Self::with(Plan::Unpaced)
    }

    fn with(plan: Plan) -> Self {
        Pacer {
            plan,
            timer: None,
            taken: 0,
        }
    }

    /// When the next unit may start (`now` for an unpaced plan); `None` once the plan
    /// is spent.
    pub fn next_at(&mut self, now: Instant) -> Option<Instant> {
        match &mut self.plan {
            Plan::Unpaced => Some(now),
            Plan::Capped(c) => Some(c.next_at()),
            Plan::Open {
                arrivals,
                origin,
                horizon,
                shard,
                limit,
                next,
            } => *next.get_or_insert_with(|| {
                if limit.is_some_and(|l| self.taken >= l) {
                    return None;
                }
                loop {
                    let (i, t) = arrivals.next_arrival();
                    if t >= *horizon {
                        return None;
                    }
                    if i % shard.count == shard.index {
                        return Some(*origin + Duration::from_secs_f64(t));
                    }
                }
            }),
        }
    }

    /// Whether the next unit may start at `now`.
    pub fn ready(&mut self, now: Instant) -> bool {
        self.next_at(now).is_some_and(|at| at <= now)
    }

    /// The next unit starts at `now` (the caller has waited for it, or starts it late):
    /// its slot. `None` once the plan is spent.
    pub fn take(&mut self, now: Instant) -> Option<Slot> {
        let intended = match &mut self.plan {
            Plan::Unpaced => now,
            Plan::Capped(c) => c.reserve(now),
            Plan::Open { .. } => {
                let at = self.next_at(now)?;
                if let Plan::Open { next, .. } = &mut self.plan {
                    *next = None;
                }
                at
            }
        };
        let n = self.taken;
        self.taken += 1;
        Some(Slot { n, intended })
    }

    /// Sleeps until the next unit may start, without taking its slot (a dispatcher that
    /// waits for this or for other work). Never returns once the plan is spent.
    pub async fn wait(&mut self) {
        match self.next_at(Instant::now()) {
            Some(at) => {
                let t = self.timer.get_or_insert_with(|| PreciseTimer::new().ok());
                timer::sleep_until(t, at).await;
            }
            None => std::future::pending().await,
        }
    }

    /// Sleeps until the next unit's send time and takes its slot; `None` once the plan
    /// is spent.
    pub async fn next(&mut self) -> Option<Slot> {
        let at = self.next_at(Instant::now())?;
        if at > Instant::now() {
            let t = self.timer.get_or_insert_with(|| PreciseTimer::new().ok());
            timer::sleep_until(t, at).await;
        }
        self.take(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two shards of one open plan at 1,000/s for 50 ms: each gets every other arrival
    /// at its planned instant (not when it asked), and together they send the plan.
    #[test]
    fn open_plans_hand_out_their_shards_planned_instants() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let plan = |index| {
            Pacer::open(
                RateShape::Constant(1000.0),
                None,
                t0,
                ms(50),
                Shard { index, count: 2 },
                None,
            )
        };
        let late = t0 + Duration::from_secs(1);
        let (mut a, mut b) = (plan(0), plan(1));
        let slots = |p: &mut Pacer| std::iter::from_fn(|| p.take(late)).collect::<Vec<_>>();
        let (sa, sb) = (slots(&mut a), slots(&mut b));
        assert_eq!((sa.len(), sb.len()), (25, 25));
        assert_eq!(
            sa[1],
            Slot {
                n: 1,
                intended: t0 + ms(2)
            }
        );
        assert_eq!(sb[0].intended, t0 + ms(1));
        assert!(a.next_at(late).is_none() && !a.ready(late));
        // A limit ends the plan before its horizon.
        let mut p = Pacer::open(
            RateShape::Constant(1000.0),
            None,
            t0,
            ms(50),
            Shard::default(),
            Some(3),
        );
        assert_eq!(std::iter::from_fn(|| p.take(late)).count(), 3);
    }

    /// A capped plan is a ceiling: ready once a gap has passed, never before; an
    /// unpaced one is always ready.
    #[test]
    fn capped_plans_space_starts_and_unpaced_ones_do_not() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::capped(Some(100.0), t0);
        assert!(p.ready(t0));
        assert_eq!(p.take(t0).map(|s| s.intended), Some(t0));
        assert!(!p.ready(t0 + ms(5)));
        assert_eq!(p.next_at(t0), Some(t0 + ms(10)));
        assert!(p.ready(t0 + ms(10)));
        let mut u = Pacer::capped(None, t0);
        for k in 0..3 {
            assert!(u.ready(t0));
            assert_eq!(u.take(t0), Some(Slot { n: k, intended: t0 }));
        }
    }

    /// `next` sleeps to the slot: never early.
    #[tokio::test]
    async fn next_sleeps_to_the_planned_instant() {
        let t0 = Instant::now() + Duration::from_millis(5);
        let mut p = Pacer::open(
            RateShape::Constant(500.0),
            None,
            t0,
            Duration::from_millis(20),
            Shard::default(),
            None,
        );
        let mut n = 0;
        while let Some(s) = p.next().await {
            assert!(Instant::now() >= s.intended);
            n += 1;
        }
        assert_eq!(n, 10);
    }
}
