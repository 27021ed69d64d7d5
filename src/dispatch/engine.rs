//! The one engine under bench runs and the import's users phase: a fixed set of lanes —
//! long-lived tasks, each with its own state (a benchmark lane holds its connection) —
//! that take units with their slots from one feed and hand what they produce back to one
//! owner over one channel. What a unit is and what running it means is the lane's
//! business; the engine never parses input.
//!
//! Two feeds: units the owner hands in with the slot they were meant to start in (the
//! open model's pacer, the import's dispatcher), or a shared count that each lane takes
//! its next unit from the moment it is free (the closed model: no hand-off at all).
//!
//! Lanes rather than a task per unit: a unit then costs no task allocation, no copy of
//! its future into a task and no join bookkeeping — a task per user was ~5% of the
//! importer's instructions — and a benchmark's lanes are exactly its connections.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;

use super::pacer::Slot;

/// One lane's state and how it runs a unit.
pub(crate) trait Lane: Send + 'static {
    type Unit: Send + 'static;
    type Out: Send + 'static;

    /// Runs `unit`, meant to start at `slot.intended`; what it returns goes to the owner
    /// (a lane that batches its results returns `None` until a batch is full).
    fn run(
        &mut self,
        unit: Self::Unit,
        slot: Slot,
    ) -> impl Future<Output = Option<Self::Out>> + Send;

    /// What the lane still holds once its feed has ended.
    fn finish(&mut self) -> Option<Self::Out> {
        None
    }
}

/// The closed model's feed: unit numbers `first..last` taken by lanes as they free up,
/// from `from` (the lanes wait for it) until `until`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counted {
    pub first: u64,
    pub last: Option<u64>,
    pub from: Instant,
    pub until: Instant,
}

enum Feed<U> {
    Given(Arc<Mutex<mpsc::UnboundedReceiver<(U, Slot)>>>),
    Counted(Counted, Arc<AtomicU64>),
}

impl<U> Clone for Feed<U> {
    fn clone(&self) -> Self {
        match self {
            Feed::Given(rx) => Feed::Given(rx.clone()),
            Feed::Counted(c, next) => Feed::Counted(*c, next.clone()),
        }
    }
}

/// Hands units to the lanes; cloneable, so a pacer task can feed them.
pub(crate) struct Feeder<U> {
    tx: mpsc::UnboundedSender<(U, Slot)>,
}

impl<U> Clone for Feeder<U> {
    fn clone(&self) -> Self {
        Feeder {
            tx: self.tx.clone(),
        }
    }
}

impl<U> Feeder<U> {
    /// Queues `unit` for the next free lane; false once the lanes are gone.
    pub(crate) fn send(&self, unit: U, slot: Slot) -> bool {
        self.tx.send((unit, slot)).is_ok()
    }
}

/// A fed engine's feed and result channel, for lanes added later.
type Grow<L> = (
    Feed<<L as Lane>::Unit>,
    mpsc::UnboundedSender<<L as Lane>::Out>,
);

/// The lanes at work, their results, and — for a fed engine — the owner's feeder.
pub(crate) struct Engine<L: Lane> {
    feeder: Option<Feeder<L::Unit>>,
    /// What a lane added later needs (a fed engine until it is closed).
    grow: Option<Grow<L>>,
    outs: mpsc::UnboundedReceiver<L::Out>,
    lanes: JoinSet<L>,
    /// Lanes that ended, kept for [`Engine::join`].
    ended: Vec<L>,
}

async fn lane_loop<L: Lane>(
    mut lane: L,
    feed: Feed<L::Unit>,
    to: fn(u64) -> Option<L::Unit>,
    outs: mpsc::UnboundedSender<L::Out>,
) -> L {
    loop {
        let (unit, slot) = match &feed {
            Feed::Given(rx) => match rx.lock().await.recv().await {
                Some(x) => x,
                None => break,
            },
            Feed::Counted(c, next) => {
                if Instant::now() < c.from {
                    tokio::time::sleep_until(c.from.into()).await;
                }
                let m = next.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if c.last.is_some_and(|l| m >= l) || now >= c.until {
                    break;
                }
                match to(m) {
                    Some(u) => (
                        u,
                        Slot {
                            n: m - c.first,
                            intended: now,
                        },
                    ),
                    None => break,
                }
            }
        };
        if let Some(o) = lane.run(unit, slot).await {
            if outs.send(o).is_err() {
                break;
            }
        }
    }
    if let Some(o) = lane.finish() {
        let _ = outs.send(o);
    }
    lane
}

impl<L: Lane> Engine<L> {
    fn start(lanes: Vec<L>, feed: Feed<L::Unit>, to: fn(u64) -> Option<L::Unit>) -> Self {
        let (out_tx, outs) = mpsc::unbounded_channel();
        let mut set = JoinSet::new();
        for lane in lanes {
            set.spawn(lane_loop(lane, feed.clone(), to, out_tx.clone()));
        }
        Engine {
            feeder: None,
            grow: None,
            outs,
            lanes: set,
            ended: Vec::new(),
        }
    }

    /// Lanes that run the units handed in with [`Engine::feeder`] or [`Engine::submit`].
    pub(crate) fn fed(lanes: Vec<L>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (out_tx, outs) = mpsc::unbounded_channel();
        let feed = Feed::Given(Arc::new(Mutex::new(rx)));
        let mut e = Engine {
            feeder: Some(Feeder { tx }),
            grow: Some((feed, out_tx)),
            outs,
            lanes: JoinSet::new(),
            ended: Vec::new(),
        };
        for lane in lanes {
            e.add(lane);
        }
        e
    }

    /// One more lane on a fed engine's feed (ignored once it is closed).
    pub(crate) fn add(&mut self, lane: L) {
        if let Some((feed, out)) = &self.grow {
            self.lanes
                .spawn(lane_loop(lane, feed.clone(), |_| None, out.clone()));
        }
    }

    /// Lanes running or waiting for a unit.
    pub(crate) fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// A handle to feed the lanes from elsewhere (a pacer task); `None` once closed.
    pub(crate) fn feeder(&self) -> Option<Feeder<L::Unit>> {
        self.feeder.clone()
    }

    /// Queues `unit` for the next free lane.
    pub(crate) fn submit(&mut self, unit: L::Unit, slot: Slot) {
        if let Some(f) = &self.feeder {
            f.send(unit, slot);
        }
    }

    /// No more units from the owner: the lanes end once the feed is empty and every
    /// feeder handed out is dropped.
    pub(crate) fn close(&mut self) {
        self.feeder = None;
        self.grow = None;
    }

    /// The next result; `None` once every lane has ended and its results are taken. A
    /// lane that panicked panics its owner here (its unit's result would otherwise be
    /// waited for forever). Cancel-safe.
    pub(crate) async fn next(&mut self) -> Option<L::Out> {
        loop {
            tokio::select! {
                biased;
                o = self.outs.recv() => match o {
                    Some(o) => return Some(o),
                    // Every lane has ended (or died): account for them all.
                    None => {
                        while let Some(r) = self.lanes.join_next().await {
                            self.ended(r);
                        }
                        return None;
                    }
                },
                Some(r) = self.lanes.join_next(), if !self.lanes.is_empty() => self.ended(r),
            }
        }
    }

    fn ended(&mut self, r: Result<L, tokio::task::JoinError>) {
        match r {
            Ok(lane) => self.ended.push(lane),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }

    /// Closes the feed, waits for every lane to end and hands them back (what they
    /// gathered besides their results: a benchmark lane's created ids). Results not yet
    /// taken are dropped.
    pub(crate) async fn join(mut self) -> Vec<L> {
        self.close();
        while let Some(r) = self.lanes.join_next().await {
            self.ended(r);
        }
        self.ended
    }
}

impl<L: Lane<Unit = u64>> Engine<L> {
    /// Lanes that each take the next number of `c` when free (the closed model).
    pub(crate) fn counted(lanes: Vec<L>, c: Counted) -> Self {
        let next = Arc::new(AtomicU64::new(c.first));
        Self::start(lanes, Feed::Counted(c, next), Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A lane that records which units it ran, and in how many at a time over all lanes.
    struct Probe {
        ran: Vec<u64>,
        busy: Arc<AtomicU64>,
        peak: Arc<AtomicU64>,
    }

    impl Lane for Probe {
        type Unit = u64;
        type Out = (u64, Slot);

        async fn run(&mut self, unit: u64, slot: Slot) -> Option<(u64, Slot)> {
            let now = self.busy.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.busy.fetch_sub(1, Ordering::SeqCst);
            self.ran.push(unit);
            unit.is_multiple_of(2).then_some((unit, slot))
        }

        fn finish(&mut self) -> Option<(u64, Slot)> {
            Some((
                u64::MAX,
                Slot {
                    n: self.ran.len() as u64,
                    intended: Instant::now(),
                },
            ))
        }
    }

    fn probes(n: usize) -> (Vec<Probe>, Arc<AtomicU64>) {
        let busy = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let lanes = (0..n)
            .map(|_| Probe {
                ran: Vec::new(),
                busy: busy.clone(),
                peak: peak.clone(),
            })
            .collect();
        (lanes, peak)
    }

    /// Fed: every unit runs once, on at most as many lanes as there are, with the slot
    /// it was handed in with; a lane's results and its last words reach the owner, and
    /// the lanes come back with what they did.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fed_units_run_once_each_within_the_lanes() {
        let (lanes, peak) = probes(3);
        let mut e = Engine::fed(lanes);
        let t0 = Instant::now();
        for n in 0..40u64 {
            e.submit(
                n,
                Slot {
                    n,
                    intended: t0 + Duration::from_micros(n),
                },
            );
        }
        e.close();
        let mut outs = Vec::new();
        while let Some(o) = e.next().await {
            outs.push(o);
        }
        let evens: Vec<u64> = {
            let mut v: Vec<u64> = outs
                .iter()
                .map(|o| o.0)
                .filter(|u| *u != u64::MAX)
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            evens,
            (0..40)
                .filter(|u: &u64| u.is_multiple_of(2))
                .collect::<Vec<_>>()
        );
        for (u, s) in outs.iter().filter(|o| o.0 != u64::MAX) {
            assert_eq!((s.n, s.intended), (*u, t0 + Duration::from_micros(*u)));
        }
        assert_eq!(
            outs.iter().filter(|o| o.0 == u64::MAX).count(),
            3,
            "one finish a lane"
        );
        assert!(peak.load(Ordering::SeqCst) <= 3);
        let lanes = e.join().await;
        let mut ran: Vec<u64> = lanes.into_iter().flat_map(|l| l.ran).collect();
        ran.sort();
        assert_eq!(ran, (0..40).collect::<Vec<_>>());
    }

    /// Counted: the lanes take the numbers `first..last` themselves, each once, and stop
    /// at the last; a later `until` is the other bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counted_lanes_take_each_number_once() {
        let (lanes, peak) = probes(4);
        let now = Instant::now();
        let e = Engine::counted(
            lanes,
            Counted {
                first: 100,
                last: Some(130),
                from: now,
                until: now + Duration::from_secs(30),
            },
        );
        let lanes = e.join().await;
        let mut ran: Vec<u64> = lanes.into_iter().flat_map(|l| l.ran).collect();
        ran.sort();
        assert_eq!(ran, (100..130).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 4);
    }

    struct Panics;
    impl Lane for Panics {
        type Unit = u64;
        type Out = u64;
        async fn run(&mut self, unit: u64, _: Slot) -> Option<u64> {
            if unit == 3 {
                panic!("lane bug");
            }
            Some(unit)
        }
    }

    /// A lane that panics panics its owner, instead of leaving it waiting for the
    /// result of the unit it took down with it.
    #[tokio::test]
    #[should_panic(expected = "lane bug")]
    async fn a_panicking_lane_panics_its_owner() {
        let mut e = Engine::fed(vec![Panics]);
        for n in 0..5 {
            e.submit(
                n,
                Slot {
                    n,
                    intended: Instant::now(),
                },
            );
        }
        // Not closed: the owner waits for five results and must not wait forever.
        for _ in 0..5 {
            let _ = tokio::time::timeout(Duration::from_secs(5), e.next())
                .await
                .expect("no hang");
        }
    }
}
