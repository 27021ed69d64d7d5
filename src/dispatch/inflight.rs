//! The one bound on work in flight. Every phase that fans requests out (users, /Bulk
//! resends, managers, missing users, groups, read-back, inbound uploads, bench seeding,
//! cleanup deletes) keeps at most `limit` tasks running and hands each result back to
//! its single owner as it finishes, so results are never shared under a lock.

use std::future::Future;

use tokio::task::{JoinError, JoinSet};

/// Tasks in flight, at most `limit` of them.
pub struct InFlight<T> {
    set: JoinSet<T>,
    limit: usize,
}

/// A task that panicked is a bug: its panic continues in the owner rather than the
/// result being dropped (which would lose the rows it carried without a trace).
fn joined<T>(r: Result<T, JoinError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: only by `abort`, which nothing here calls.
        Err(_) => None,
    }
}

impl<T: Send + 'static> InFlight<T> {
    /// At most `limit` (at least 1) at a time.
    pub fn new(limit: usize) -> Self {
        InFlight {
            set: JoinSet::new(),
            limit: limit.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Whether one more may start now.
    pub fn has_room(&self) -> bool {
        self.set.len() < self.limit
    }

    /// Starts `task` once a slot is free; what finishes while it waits goes to `done`.
    pub async fn start<F>(&mut self, task: F, mut done: impl FnMut(T))
    where
        F: Future<Output = T> + Send + 'static,
    {
        while !self.has_room() {
            match self.set.join_next().await {
                Some(r) => {
                    if let Some(v) = joined(r) {
                        done(v)
                    }
                }
                None => break,
            }
        }
        self.set.spawn(task);
    }

    /// Starts `task` now: for a dispatcher that checked `has_room` itself (or that lets a
    /// batch through beside the limit, as /Bulk batches are counted on their own).
    pub fn start_now<F>(&mut self, task: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.set.spawn(task);
    }

    /// The next task to finish, `None` when none is in flight. Cancel-safe (for
    /// `select!`).
    pub async fn next(&mut self) -> Option<T> {
        loop {
            match self.set.join_next().await {
                Some(r) => {
                    if let Some(v) = joined(r) {
                        return Some(v);
                    }
                }
                None => return None,
            }
        }
    }

    /// Waits for everything in flight, handing each result to `done`.
    pub async fn drain(&mut self, mut done: impl FnMut(T)) {
        while let Some(v) = self.next().await {
            done(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// 40 tasks under a limit of 3: never more than 3 run at once, and every result
    /// comes back exactly once.
    #[tokio::test]
    async fn never_more_than_the_limit_and_every_result_once() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut f = InFlight::new(3);
        let mut got = Vec::new();
        for k in 0..40u32 {
            let (running, peak) = (running.clone(), peak.clone());
            f.start(
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(1 + (k % 3) as u64)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
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
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    #[should_panic(expected = "a bug")]
    async fn a_panicking_task_is_not_swallowed() {
        let mut f: InFlight<()> = InFlight::new(2);
        f.start_now(async { panic!("a bug") });
        f.drain(|_| {}).await;
    }
}
