//! The users phase of an import: the dispatcher. It takes users from the ingest thread's
//! feed and sends each one its own request (or packs them into /Bulk batches with the
//! memberships that can travel along), keeps at most `--concurrency` in flight, paces
//! starts to `--rate`, runs the `--bulk auto` trial, and is the only owner of results:
//! the engine's lanes (the ones a benchmark's connections are) run the users and batches
//! and hand back small outcomes that it counts into the tally. Ctrl-C stops sending; the
//! rest of the file is still read, to count what was not sent.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bulk;
use super::bulk_groups::{self, BulkGroups};
use super::config::{BulkMode, ImportConfig, Lookup};
use super::early_groups::{EarlyGroups, Step};
use super::reader::{Deferred, JobFeed};
use super::trial::{BulkTrial, TrialPhase};
use super::worker::{account, Finished, Job, Tally, UserResult, Worker};
use crate::client::retry::Executed;
use crate::client::throttle::Throttle;
use crate::dispatch::engine::{Engine, Lane};
use crate::dispatch::inflight::Budget;
use crate::dispatch::pacer::Slot;
use crate::dispatch::InFlight;
use crate::dispatch::Pacer;
use crate::metrics::Op;

/// What the users phase works with.
pub(super) struct Users<'a> {
    pub(super) cfg: &'a ImportConfig,
    pub(super) worker: Arc<Worker>,
    pub(super) lookup: Lookup,
    /// /Bulk: (users a batch, bytes a batch); `None`: one request per user.
    pub(super) bulk_limits: Option<(usize, usize)>,
    /// The target's maxOperations (users and the memberships that travel with them).
    pub(super) bulk_max_ops: usize,
    pub(super) meter: Meter,
}

/// What the phases after users need from it.
pub(super) struct UsersDone {
    /// Interrupted: nothing more is sent.
    pub(super) stopping: bool,
    /// Users read after Ctrl-C.
    pub(super) not_sent: u64,
    /// Managers still in flight (or failed) when their reports were sent.
    pub(super) deferred_managers: Vec<Deferred>,
    pub(super) trial: Option<BulkTrial>,
    /// What the /Bulk batches did for groups.
    pub(super) bulk_groups: Option<BulkGroups>,
}

/// The progress line: users done of the rows the file is estimated to hold, ETA, rate.
pub(super) struct Meter {
    t0: Instant,
    file_size: u64,
    rows_at_start: u64,
    bytes_at_start: u64,
    throttle: Arc<Throttle>,
}

impl Meter {
    /// Before the ingest thread starts: the read counters are process-wide.
    pub(super) fn start(path: &Path, t0: Instant, throttle: Arc<Throttle>) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        Meter {
            t0,
            file_size: std::fs::metadata(path).map_or(0, |m| m.len()),
            rows_at_start: crate::source::ROWS_READ.load(Relaxed),
            bytes_at_start: crate::source::BYTES_READ.load(Relaxed),
            throttle,
        }
    }

    fn line(&self, t: &Tally, in_flight: usize) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let done = t.created + t.updated + t.unchanged + t.failed;
        let read = crate::source::BYTES_READ
            .load(Relaxed)
            .saturating_sub(self.bytes_at_start);
        // Rows parsed so far over the share of the file read: the rows in all.
        let seen = crate::source::ROWS_READ
            .load(Relaxed)
            .saturating_sub(self.rows_at_start);
        let share = (read as f64 / self.file_size.max(1) as f64).clamp(1e-9, 1.0);
        let total = (seen as f64 / share).max(seen as f64);
        let secs = self.t0.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-3);
        let eta = if rate > 0.0 && total > 0.0 {
            format!(", ETA {:.0} s", (total - done as f64).max(0.0) / rate)
        } else {
            String::new()
        };
        let throttled = self.throttle.limit().map_or(String::new(), |l| {
            format!(" · throttled to {l:.0} requests/s (429s)")
        });
        format!(
            "users: {done} of ~{total:.0} rows ({:.0}%{eta}) · {} created · {} updated · {} unchanged · {} failed · {rate:.0}/s · {in_flight} in flight{throttled}",
            done as f64 * 100.0 / total.max(1.0),
            t.created,
            t.updated,
            t.unchanged,
            t.failed
        )
    }
}

/// (bulk?, finished users, group outcome): a unit is one user, or one /Bulk batch.
type Launched = (bool, Vec<Finished>, Option<bulk_groups::Done>);

/// What a lane of the users phase runs.
enum Unit {
    /// A user on its own: created, or updated when the state knows its id.
    User {
        job: Job,
        manager_id: Option<String>,
        known_id: Option<String>,
    },
    /// New users in one /Bulk request, with the group operations that travel along.
    Batch {
        batch: Vec<(Job, Option<String>)>,
        ops: Vec<bulk_groups::GroupOp>,
    },
}

/// A lane of the users phase: users and batches through the shared worker.
struct UserLane(Arc<Worker>);

impl Lane for UserLane {
    type Unit = Unit;
    type Out = Launched;

    async fn run(&mut self, unit: Unit, _: Slot) -> Option<Launched> {
        Some(match unit {
            Unit::User {
                job,
                manager_id,
                known_id,
            } => {
                let f = self.0.clone().provision(job, manager_id, known_id).await;
                (false, vec![f], None)
            }
            Unit::Batch { batch, ops } => {
                let (fs, done) = bulk::provision_bulk(self.0.clone(), batch, ops).await;
                (true, fs, done)
            }
        })
    }
}

/// The users phase's units on the engine's lanes, counted against the `--concurrency`
/// budget they share with the early member batches and the /Bulk groups' lookups.
struct UserLanes {
    engine: Engine<UserLane>,
    running: usize,
    limit: usize,
    budget: Budget,
    started: u64,
}

impl UserLanes {
    fn new(worker: &Arc<Worker>, budget: &Budget, limit: usize) -> Self {
        let limit = limit.max(1);
        UserLanes {
            engine: Engine::fed((0..limit).map(|_| UserLane(worker.clone())).collect()),
            running: 0,
            limit,
            budget: budget.clone(),
            started: 0,
        }
    }

    fn len(&self) -> usize {
        self.running
    }

    fn is_empty(&self) -> bool {
        self.running == 0
    }

    /// Below this phase's limit and the shared budget's.
    fn has_room(&self) -> bool {
        self.running < self.limit && self.budget.has_room()
    }

    /// Hands `unit` to the next free lane, meant to start at `intended`.
    fn start(&mut self, unit: Unit, intended: Instant) {
        self.budget.enter();
        self.running += 1;
        self.engine.submit(
            unit,
            Slot {
                n: self.started,
                intended,
            },
        );
        self.started += 1;
    }

    /// The next unit to finish (cancel-safe).
    async fn next(&mut self) -> Option<Launched> {
        let done = self.engine.next().await?;
        self.running -= 1;
        self.budget.leave();
        Some(done)
    }
}

/// Sends a /Bulk batch with the memberships of its users that can travel with it.
#[allow(clippy::too_many_arguments)]
fn launch(
    batch: Vec<(Job, Option<String>)>,
    batch_bytes: usize,
    (max_ops, max_bytes): (usize, usize),
    groups: Option<&mut BulkGroups>,
    lookups: &mut InFlight<(String, Executed, Option<String>)>,
    worker: &Arc<Worker>,
    lookup: Lookup,
    lanes: &mut UserLanes,
) -> bool {
    let ops = match groups {
        Some(bg) => {
            for name in bg.unseen(&batch) {
                if lookup == Lookup::Never {
                    bg.assume_absent(name);
                } else {
                    let (c, r, name) = (
                        worker.client.clone(),
                        worker.retry.clone(),
                        name.to_string(),
                    );
                    lookups.start_now(async move {
                        let (e, id) = super::groups::find_group(&c, &r, &name).await;
                        (name, e, id)
                    });
                }
            }
            bg.plan(
                &batch,
                max_ops.saturating_sub(batch.len()),
                max_bytes.saturating_sub(batch_bytes),
            )
        }
        None => Vec::new(),
    };
    let creates = ops
        .iter()
        .any(|o| matches!(o, bulk_groups::GroupOp::Create { .. }));
    lanes.start(Unit::Batch { batch, ops }, Instant::now());
    creates
}

/// Sends every user of the feed; returns when the feed is empty and nothing is in flight.
pub(super) async fn provision(
    u: Users<'_>,
    t: &mut Tally,
    mut rx: JobFeed,
    progress: &impl Fn(String),
) -> UsersDone {
    let Users {
        cfg,
        worker,
        lookup,
        bulk_limits,
        bulk_max_ops,
        meter,
    } = u;
    let mut deferred_managers: Vec<Deferred> = Vec::new();
    // One --concurrency for the users (or /Bulk batches), the early member batches and
    // the /Bulk groups' lookups together.
    let budget = Budget::new(cfg.concurrency);
    let mut inflight = UserLanes::new(&worker, &budget, cfg.concurrency);
    // Memberships travel with their users' batches (groups created there, members by
    // bulkId); group lookups run beside the batches.
    let mut bulk_groups = bulk_limits.map(|_| {
        let known = t.state.as_ref().map_or_else(HashMap::new, |st| {
            st.groups
                .iter()
                .map(|(n, (id, _))| (n.clone(), id.clone()))
                .collect()
        });
        BulkGroups::new(known, cfg.member_batch)
    });
    let mut group_lookups: InFlight<(String, Executed, Option<String>)> =
        InFlight::within(&budget, cfg.concurrency);
    // One request per user: big groups take their members while the users go on (see
    // early_groups.rs). Not with a --rate cap, which paces users alone.
    let mut early =
        (bulk_limits.is_none() && lookup == Lookup::Never && cfg.rate.is_none()).then(|| {
            let known = t
                .state
                .as_ref()
                .map(|st| st.groups.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            EarlyGroups::new(worker.clone(), cfg.member_batch, known, &budget)
        });
    // The groups of each user in flight alone, for `early`.
    let mut groups_of: HashMap<u32, Vec<String>> = HashMap::new();
    let mut input_open = true;
    let mut last_report = Instant::now();
    // --rate: one user start every 1/rate seconds, scheduled (not reactive), so the
    // cap holds over any window; slept to on the precise timer bench sends with.
    let mut pacer = Pacer::capped(cfg.rate, Instant::now());
    let mut stopping = false;
    let mut not_sent = 0u64;
    let interrupt = cfg.interrupt.clone().unwrap_or_default();
    // /Bulk batches of new users; a couple in flight overlap transfer and processing.
    let bulk_parallel = cfg.bulk_in_flight.min(cfg.concurrency).max(1);
    if let Some((users, _)) = bulk_limits {
        progress(format!(
            "/Bulk: batches of up to {users} users, {bulk_parallel} in flight (--bulk-in-flight); --concurrency {} bounds the requests outside /Bulk (lookups, updates, one-by-one resends, managers, groups)",
            cfg.concurrency
        ));
    }
    let mut batch: Vec<(Job, Option<String>)> = Vec::new();
    let mut batch_bytes = bulk::ENVELOPE;
    let mut bulk_running = 0usize;
    // Bulk batches in flight that create groups.
    let mut creating = 0usize;
    // --bulk auto decides by measurement: what a ServiceProviderConfig offers is not
    // what is faster (one server's /Bulk was 1.5× slower than one POST per user).
    let mut trial = (cfg.bulk == BulkMode::Auto && bulk_limits.is_some())
        .then(|| BulkTrial::new(cfg.bulk_trial));
    let mut route_bulk = bulk_limits.is_some();
    if let Some(tr) = &trial {
        route_bulk = tr.phase == TrialPhase::Bulk;
    }
    while input_open || !inflight.is_empty() || !batch.is_empty() {
        let draining = trial.as_ref().is_some_and(|tr| tr.draining);
        if draining && inflight.is_empty() && batch.is_empty() {
            if let Some(tr) = trial.as_mut() {
                tr.next_phase();
                route_bulk = match tr.phase {
                    TrialPhase::Bulk => true,
                    TrialPhase::Single => false,
                    TrialPhase::Done => tr.chose_bulk(),
                };
                progress(tr.describe());
            }
            continue;
        }
        if let Some((ops, bytes)) = bulk_limits {
            let full = batch.len() >= ops || batch_bytes >= bytes;
            // While a batch creates groups, the next waits: it would name the same
            // groups before their ids are known, and their members would then need
            // requests of their own after the users.
            if !batch.is_empty()
                && (full || !input_open || stopping || draining)
                && bulk_running < bulk_parallel
                && creating == 0
            {
                let b = std::mem::take(&mut batch);
                creating += launch(
                    b,
                    batch_bytes,
                    (bulk_max_ops, bytes),
                    bulk_groups.as_mut(),
                    &mut group_lookups,
                    &worker,
                    lookup,
                    &mut inflight,
                ) as usize;
                batch_bytes = bulk::ENVELOPE;
                bulk_running += 1;
            }
        }
        let batch_blocked = bulk_limits.is_some_and(|(ops, bytes)| {
            (batch.len() >= ops || batch_bytes >= bytes)
                && (bulk_running >= bulk_parallel || creating > 0)
        });
        let paced = !stopping && !pacer.ready(Instant::now());
        let early_len = early.as_ref().map_or(0, EarlyGroups::len);
        // Within the budget the early member batches and group lookups share.
        let room = inflight.has_room();
        tokio::select! {
            biased;
            _ = interrupt.wait(), if !stopping => {
                stopping = true;
                progress(format!("interrupted: finishing {} requests in flight, then recording them (Ctrl-C again aborts)", inflight.len()));
            }
            _ = pacer.wait(), if paced && input_open => {}
            Some(found) = group_lookups.next(), if !group_lookups.is_empty() => {
                if let (Some(bg), (name, mut e, id)) = (bulk_groups.as_mut(), found) {
                    account(&mut t.rec, Op::LookupGroup, &mut e);
                    let failed = !e.outcome.as_ref().is_ok_and(|r| r.is_success());
                    bg.found(name, id, failed);
                }
            }
            Some(step) = next_step(&mut early), if early_len > 0 => {
                if let Some(e) = early.as_mut() {
                    e.settle(step, &mut t.rec, t.state.as_ref(), &t.ids, stopping);
                }
            }
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                {
                    let (was_bulk, fs, groups) = done;
                    bulk_running -= was_bulk as usize;
                    if let Some(tr) = trial.as_mut() {
                        tr.finished(fs.len() as u64);
                    }
                    for f in fs {
                        let joined = matches!(f.result, UserResult::Created(_) | UserResult::Updated(_));
                        let seq = f.seq;
                        t.finish(f);
                        if let (Some(e), Some(names)) = (early.as_mut(), groups_of.remove(&seq)) {
                            if joined && !stopping {
                                e.joined(seq, names.iter().map(String::as_str), &t.ids);
                            }
                        }
                    }
                    if let (Some(bg), Some(d)) = (bulk_groups.as_mut(), groups) {
                        creating -= d.had_creates as usize;
                        // Recorded at once: a re-run after a crash finds the group in
                        // the state instead of creating it again (members hash 0: its
                        // members are compared with the target's then).
                        if let Some(st) = t.state.as_ref() {
                            for (name, id) in &d.created {
                                st.record(super::state::Record::Group {
                                    name: name.clone(),
                                    scim_id: id.clone(),
                                    members_hash: 0,
                                });
                            }
                        }
                        bg.settle(d);
                    }
                }
                if last_report.elapsed() > Duration::from_millis(250) {
                    last_report = Instant::now();
                    progress(meter.line(t, inflight.len()));
                }
            }
            job = rx.recv(), if input_open && (stopping || (!paced && !draining && !batch_blocked && room)) => {
                match job {
                    // After Ctrl-C the rest of the file is read (to count it) but not sent.
                    Some(job) if stopping => {
                        not_sent += 1;
                        if let Some(st) = t.state.as_mut() {
                            st.users.remove(job.user.external_id());
                        }
                    }
                    Some(job) => {
                        let intended = pacer.take(Instant::now()).map_or_else(Instant::now, |s| s.intended);
                        if let Some(tr) = trial.as_mut() {
                            tr.dispatched();
                        }
                        let manager_id = job.manager.and_then(|m| t.id(m)).map(String::from);
                        // The manager is still in flight (or failed): set it afterwards.
                        // One known now travels in the body, counted once the user is in.
                        if let (Some(m), None) = (job.manager, &manager_id) {
                            deferred_managers.push(Deferred {
                                seq: job.seq,
                                manager: m,
                                row: job.user.row,
                                external_id: job.user.external_id().into(),
                                content_hash: job.user.content_hash(),
                            });
                        }
                        // The state knows this user: unchanged, no request; changed, update it.
                        let known = t.state.as_mut().and_then(|st| st.users.remove(job.user.external_id()));
                        match known {
                            Some(k) if k.content_hash == job.user.content_hash() => {
                                t.ids.set(job.seq, &k.scim_id);
                                t.unchanged += 1;
                            }
                            None if route_bulk && bulk_limits.is_some_and(|(_, bytes)| job.user.body().len() + bulk::OP_OVERHEAD + bulk::ENVELOPE < bytes) => {
                                let (_, bytes) = bulk_limits.unwrap_or_default();
                                let add = job.user.body().len() + bulk::OP_OVERHEAD + manager_id.as_ref().map_or(0, |m| m.len() + 64);
                                if !batch.is_empty() && batch_bytes + add > bytes {
                                    // This user would overflow maxPayloadSize: send the batch as it is.
                                    let b = std::mem::take(&mut batch);
                                    bulk_running += 1;
                                    creating += launch(b, batch_bytes, (bulk_max_ops, bytes), bulk_groups.as_mut(), &mut group_lookups, &worker, lookup, &mut inflight) as usize;
                                    batch_bytes = bulk::ENVELOPE;
                                }
                                batch_bytes += add;
                                batch.push((job, manager_id));
                            }
                            k => {
                                if early.is_some() {
                                    groups_of.insert(job.seq, job.user.groups().map(String::from).collect());
                                }
                                let known_id = k.map(|k| k.scim_id);
                                inflight.start(Unit::User { job, manager_id, known_id }, intended);
                            }
                        }
                    }
                    None => input_open = false,
                }
            }
        }
    }
    // Nothing is in flight on the lanes any more: they end.
    inflight.engine.join().await;
    // The early group requests still in flight finish; the phase sends the rest.
    if let Some(mut e) = early {
        while let Some(step) = e.next().await {
            e.settle(step, &mut t.rec, t.state.as_ref(), &t.ids, true);
        }
        bulk_groups = Some(e.finish());
    }
    UsersDone {
        stopping,
        not_sent,
        deferred_managers,
        trial,
        bulk_groups,
    }
}

/// The next early group request to finish; never, without early groups.
async fn next_step(early: &mut Option<EarlyGroups>) -> Option<Step> {
    match early {
        Some(e) => e.next().await,
        None => std::future::pending().await,
    }
}
