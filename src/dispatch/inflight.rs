//! The one bound on work in flight. Every phase that fans requests out (/Bulk resends,
//! managers, missing users, groups, read-back, inbound uploads, bench seeding, cleanup
//! deletes) keeps at most `limit` units running and hands each result back to its
//! single owner as it finishes, so results are never shared under a lock. Sets that
//! serve one phase side by side (the users, the big groups' early member batches, the
//! /Bulk groups' lookups) share one [`Budget`], so `--concurrency` bounds them together.
//!
//! A set runs on the engine's lanes (`engine.rs`), a unit being the task's future:
//! lanes are added as units need them, up to the most ever running at once, and run
//! the next unit when one ends — no task spawned per unit.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::engine::{Engine, Lane};
use super::pacer::Slot;

/// Requests in flight across every set that shares it: one `--concurrency`.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: usize,
    used: Arc<AtomicUsize>,
}

impl Budget {
    /// At most `limit` (at least 1) in flight over all sets that share it.
    pub fn new(limit: usize) -> Self {
        Budget {
            limit: limit.max(1),
            used: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Tasks started and not yet handed back, in every set.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn has_room(&self) -> bool {
        self.used() < self.limit
    }

    /// One more in flight outside an [`InFlight`] (a unit on the engine's lanes).
    pub(crate) fn enter(&self) {
        self.used.fetch_add(1, Ordering::Relaxed);
    }

    /// One fewer: what [`Budget::enter`] counted is back.
    pub(crate) fn leave(&self) {
        self.used.fetch_sub(1, Ordering::Relaxed);
    }
}

type Task<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A lane that runs tasks: a unit is the task's future.
struct TaskLane<T>(PhantomData<fn() -> T>);

impl<T: Send + 'static> Lane for TaskLane<T> {
    type Unit = Task<T>;
    type Out = T;

    async fn run(&mut self, task: Task<T>, _: Slot) -> Option<T> {
        Some(task.await)
    }
}

/// Tasks in flight, at most `limit` of them and within the [`Budget`] they share. A task
/// that panics is a bug: its panic continues in the owner rather than the result being
/// dropped (which would lose the rows it carried without a trace).
pub struct InFlight<T: Send + 'static> {
    engine: Engine<TaskLane<T>>,
    running: usize,
    limit: usize,
    budget: Budget,
}

impl<T: Send + 'static> InFlight<T> {
    /// At most `limit` (at least 1) at a time, a budget of its own.
    pub fn new(limit: usize) -> Self {
        Self::within(&Budget::new(limit), limit)
    }

    /// At most `limit` of this set at a time, and its tasks count against `budget` with
    /// those of every other set sharing it.
    pub fn within(budget: &Budget, limit: usize) -> Self {
        InFlight {
            engine: Engine::fed(Vec::new()),
            running: 0,
            limit: limit.max(1),
            budget: budget.clone(),
        }
    }

    pub fn len(&self) -> usize {
        self.running
    }

    pub fn is_empty(&self) -> bool {
        self.running == 0
    }

    /// Whether one more may start now: below this set's limit and the shared budget's.
    pub fn has_room(&self) -> bool {
        self.running < self.limit && self.budget.has_room()
    }

    /// Whether this set is below its own limit, whatever the others sharing its budget
    /// hold: for work that goes ahead of theirs (the early member batches, which the
    /// users then leave room for).
    pub fn below_own_limit(&self) -> bool {
        self.running < self.limit
    }

    fn spawn<F>(&mut self, task: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.budget.enter();
        self.running += 1;
        // Every task starts at once, as a spawned one would: a lane more when all are busy.
        if self.engine.lanes() < self.running {
            self.engine.add(TaskLane(PhantomData));
        }
        self.engine.submit(
            Box::pin(task),
            Slot {
                n: 0,
                intended: Instant::now(),
            },
        );
    }

    /// Starts `task` once a slot is free; what finishes while it waits goes to `done`.
    /// When the budget is held by the other sets alone, it starts with nothing of its
    /// own in flight (it has nothing of its own to wait for; they hand theirs back).
    pub async fn start<F>(&mut self, task: F, mut done: impl FnMut(T))
    where
        F: Future<Output = T> + Send + 'static,
    {
        while !self.has_room() {
            match self.next().await {
                Some(v) => done(v),
                None => break,
            }
        }
        self.spawn(task);
    }

    /// Starts `task` now: for a dispatcher that checked `has_room` itself (or that lets a
    /// batch through beside the limit, as /Bulk batches are counted on their own).
    pub fn start_now<F>(&mut self, task: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.spawn(task);
    }

    /// The next task to finish, `None` when none is in flight. Cancel-safe (for
    /// `select!`).
    pub async fn next(&mut self) -> Option<T> {
        if self.running == 0 {
            return None;
        }
        let v = self.engine.next().await?;
        self.running -= 1;
        self.budget.leave();
        Some(v)
    }

    /// Waits for everything in flight, handing each result to `done`.
    pub async fn drain(&mut self, mut done: impl FnMut(T)) {
        while let Some(v) = self.next().await {
            done(v);
        }
    }
}

/// Tasks still in the set are aborted with it (the lanes go with the engine): their
/// share of the budget is given back.
impl<T: Send + 'static> Drop for InFlight<T> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.running, Ordering::Relaxed);
    }
}

/// For tests of every bound on work in flight: counts the tasks running at once and
/// the most that ever were.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Gauge {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

#[cfg(test)]
impl Gauge {
    /// A task that counts itself as running for `ms` milliseconds.
    pub(crate) fn task(&self, ms: u64) -> impl Future<Output = ()> + Send + 'static {
        let g = self.clone();
        async move {
            let now = g.running.fetch_add(1, Ordering::SeqCst) + 1;
            g.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            g.running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The most tasks that ran at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40 tasks under a limit of 3: never more than 3 run at once, and every result
    /// comes back exactly once.
    #[tokio::test]
    async fn never_more_than_the_limit_and_every_result_once() {
        let gauge = Gauge::default();
        let mut f = InFlight::new(3);
        let mut got = Vec::new();
        for k in 0..40u32 {
            let held = gauge.task(1 + (k % 3) as u64);
            f.start(
                async move {
                    held.await;
                    k
                },
                |v| got.push(v),
            )
            .await;
            assert!(f.len() <= 3);
        }
        f.drain(|v| got.push(v)).await;
        got.sort();
        assert_eq!(got, (0..40).collect::<Vec<_>>());
        assert_eq!(gauge.peak(), 3);
    }

    #[tokio::test]
    #[should_panic(expected = "a bug")]
    async fn a_panicking_task_is_not_swallowed() {
        let mut f: InFlight<()> = InFlight::new(2);
        f.start_now(async { panic!("a bug") });
        f.drain(|_| {}).await;
    }

    /// Two sets under one budget of 4: the second has no room while the first holds all
    /// four, together they never run more than four, and what one hands back (or drops
    /// unfinished) the other can use.
    #[tokio::test]
    async fn sets_sharing_a_budget_are_bounded_together() {
        let budget = Budget::new(4);
        let gauge = Gauge::default();
        let task = |ms: u64| gauge.task(ms);
        let mut users: InFlight<()> = InFlight::within(&budget, 4);
        let mut groups: InFlight<()> = InFlight::within(&budget, 2);
        for _ in 0..4 {
            assert!(users.has_room());
            users.start_now(task(5));
        }
        assert!(!groups.has_room(), "the users hold the whole budget");
        assert!(groups.below_own_limit());
        assert_eq!(budget.used(), 4);
        for k in 0..30u64 {
            if k % 3 == 0 {
                groups.start(task(1 + k % 4), |_| {}).await;
            } else {
                while !users.has_room() {
                    tokio::select! {
                        Some(_) = users.next(), if !users.is_empty() => {}
                        Some(_) = groups.next(), if !groups.is_empty() => {}
                    }
                }
                users.start_now(task(1 + k % 5));
            }
            assert!(
                budget.used() <= 5,
                "at most one beyond: a start with none of its own"
            );
        }
        users.drain(|_| {}).await;
        groups.drain(|_| {}).await;
        assert_eq!(budget.used(), 0);
        groups.start_now(task(50));
        groups.start_now(task(50));
        assert_eq!(budget.used(), 2);
        drop(groups);
        assert_eq!(budget.used(), 0, "a dropped set gives its share back");
        assert!(gauge.peak() <= 5, "{}", gauge.peak());
    }
}
