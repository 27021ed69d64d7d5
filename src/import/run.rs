//! `scimload import`: provision the users and groups of an export into a SCIM server.
//!
//! Pipeline: the ingest thread (read → map → validate → deduplicate) feeds accepted users
//! through a bounded channel to the dispatcher, which keeps up to `concurrency` requests in
//! flight and is the only owner of results — workers hand back small outcomes, nothing is
//! shared under a lock. Then the managers that were not known at create time are patched,
//! then groups are created and their members added in batches. Every row ends as exactly
//! one of: created, updated, rejected, failed or pending.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::bulk;
use super::bulk_groups::{self, BulkGroups, Slot};
pub use super::config::{BulkMode, ImportConfig, Interrupt, Lookup, Missing};
use super::dry_run::{Duplicates, RejectSink};
use super::groups::{members_hash, provision_group, GroupResult, GroupTotals};
use super::ingest::{ingest, IngestError, IngestOptions, RowOutcome};
pub use super::preflight::SchemaCheck;
use super::preflight::SchemaFindings;
pub use super::readback::Verify;
use super::sync::{retire, MissingTotals, Retired};
use super::worker::{account, verify_pending, Finished, Job, Tally, Worker};
use crate::client::discovery::discover;
use crate::client::retry::{execute, Executed};
use crate::client::ScimClient;
use crate::mapping::MappingSpec;
use crate::metrics::{Op, Recorder};
pub use crate::results::import::ImportSummary;
use crate::scim::urns;

/// What the ingest thread learned, for the phases after users.
#[derive(Default)]
struct Ingested {
    rows: u64,
    rejected: BTreeMap<&'static str, u64>,
    /// Group displayName → member sequence numbers.
    groups: BTreeMap<String, Vec<u32>>,
    /// Managers that appear later in the file than their reports.
    forward_managers: Vec<Deferred>,
    /// Users whose manager is not among the accepted rows: nothing will be set.
    unresolved: Vec<Deferred>,
    unresolved_managers: u64,
    /// externalIds of rejected rows: still in the export, so never "missing".
    rejected_ids: Vec<String>,
}

/// What a dispatched task returns: whether it was a /Bulk batch, its finished users, and
/// what its group operations did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrialPhase {
    Single,
    Bulk,
    Done,
}

/// `--bulk auto` by measurement: users go one request each for a phase, then in /Bulk
/// batches for a phase; each phase ends by draining what is in flight, so its rate is
/// users finished over the time from its first dispatch to its last answer. Then the
/// faster way carries the rest.
struct BulkTrial {
    phase: TrialPhase,
    length: Duration,
    started: Option<Instant>,
    done_in_phase: u64,
    draining: bool,
    single: Option<f64>,
    bulk: Option<f64>,
}

/// Users a phase must have finished before its rate counts.
const TRIAL_MIN_USERS: u64 = 500;

impl BulkTrial {
    fn new(length: Duration) -> Self {
        BulkTrial {
            phase: TrialPhase::Single,
            length,
            started: None,
            done_in_phase: 0,
            draining: false,
            single: None,
            bulk: None,
        }
    }

    fn dispatched(&mut self) {
        if self.phase != TrialPhase::Done && self.started.is_none() {
            self.started = Some(Instant::now());
        }
    }

    fn finished(&mut self, users: u64) {
        if self.phase == TrialPhase::Done {
            return;
        }
        self.done_in_phase += users;
        let long = self.started.is_some_and(|t| t.elapsed() >= self.length);
        if long && self.done_in_phase >= TRIAL_MIN_USERS {
            self.draining = true;
        }
    }

    fn next_phase(&mut self) {
        let secs = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let rate = self.done_in_phase as f64 / secs.max(1e-6);
        match self.phase {
            TrialPhase::Single => {
                self.single = Some(rate);
                self.phase = TrialPhase::Bulk;
            }
            TrialPhase::Bulk => {
                self.bulk = Some(rate);
                self.phase = TrialPhase::Done;
            }
            TrialPhase::Done => {}
        }
        self.started = None;
        self.done_in_phase = 0;
        self.draining = false;
    }

    fn chose_bulk(&self) -> bool {
        matches!((self.single, self.bulk), (Some(s), Some(b)) if b > s)
    }

    fn describe(&self) -> String {
        match (self.single, self.bulk) {
            (Some(s), None) => format!("bulk trial: {s:.0} users/s one request each; now /Bulk"),
            (Some(s), Some(b)) => format!(
                "bulk trial: {s:.0} users/s one request each, {b:.0} users/s in /Bulk: continuing {}",
                if self.chose_bulk() { "with /Bulk" } else { "one request per user" }
            ),
            _ => String::new(),
        }
    }

    fn outcome(self) -> crate::results::import::BulkTrialOutcome {
        let complete = self.phase == TrialPhase::Done;
        crate::results::import::BulkTrialOutcome {
            single_users_per_second: self.single,
            bulk_users_per_second: self.bulk,
            chosen: if !complete {
                match self.phase {
                    TrialPhase::Single => {
                        "per-user: the export ended within the trial's first phase".into()
                    }
                    _ => "both: the export ended within the trial's /Bulk phase".into(),
                }
            } else if self.chose_bulk() {
                "bulk".into()
            } else {
                "per-user".into()
            },
        }
    }
}

/// A manager to set by PATCH once both users exist.
pub(super) struct Deferred {
    seq: u32,
    manager: u32,
    row: u64,
    external_id: Box<str>,
    content_hash: u64,
}

type Launched = (bool, Vec<Finished>, Option<bulk_groups::Done>);

/// Sends a /Bulk batch with the memberships of its users that can travel with it.
#[allow(clippy::too_many_arguments)]
fn launch(
    batch: Vec<(Job, Option<String>)>,
    batch_bytes: usize,
    (max_ops, max_bytes): (usize, usize),
    groups: Option<&mut BulkGroups>,
    lookups: &mut JoinSet<(String, Executed, Option<String>)>,
    worker: &Arc<Worker>,
    lookup: Lookup,
    inflight: &mut JoinSet<Launched>,
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
                    lookups.spawn(async move {
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
    let w = worker.clone();
    inflight.spawn(async move {
        let (fs, done) = bulk::provision_bulk(w, batch, ops).await;
        (true, fs, done)
    });
    creates
}

/// Users per message from the reader thread to the dispatcher.
const JOB_CHUNK: usize = 64;

/// The dispatcher's end of the reader's channel: chunks in, one user at a time out.
/// `recv` is cancel-safe (it is polled in a `select!`): a user is taken from the chunk
/// only when it is returned.
struct JobFeed {
    rx: mpsc::Receiver<Vec<Job>>,
    chunk: std::vec::IntoIter<Job>,
}

impl JobFeed {
    fn new(rx: mpsc::Receiver<Vec<Job>>) -> Self {
        JobFeed {
            rx,
            chunk: Vec::new().into_iter(),
        }
    }

    async fn recv(&mut self) -> Option<Job> {
        loop {
            if let Some(j) = self.chunk.next() {
                return Some(j);
            }
            self.chunk = self.rx.recv().await?.into_iter();
        }
    }
}

/// A flag value as the command line spells it (`on-conflict`, `entra-legacy`).
/// The pre-flight schema check: what the mapping writes that the target does not
/// declare, with row counts; `strict` stops the import here, before anything is sent.
async fn schema_check(
    client: &ScimClient,
    path: &Path,
    spec: &MappingSpec,
    opts: &IngestOptions,
    mode: SchemaCheck,
    progress: &impl Fn(String),
) -> Result<SchemaFindings, IngestError> {
    let published = crate::client::schemas::read(client)
        .await
        .map_err(|e| IngestError::Sink(format!("cannot read the target's schemas: {e}")))?;
    let mut f = super::preflight::compare(spec, &published);
    if !f.undeclared.is_empty() {
        let (p, s, o) = (path.to_path_buf(), spec.clone(), opts.clone());
        f = tokio::task::spawn_blocking(move || {
            super::preflight::count_rows(&p, &s, &o, &mut f).map(|_| f)
        })
        .await
        .map_err(|e| IngestError::Sink(format!("the schema check failed: {e}")))??;
    }
    for n in &f.notes {
        progress(format!("schema: {n}"));
    }
    if let Some(w) = f.warning() {
        if mode == SchemaCheck::Strict {
            return Err(IngestError::Sink(format!(
                "{w}. Nothing was sent (--schema-check strict); drop these attributes from the mapping, or import with --schema-check warn to send the rest"
            )));
        }
        progress(format!("warning: {w}"));
    }
    Ok(f)
}

fn value_name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

/// Runs the whole import. `progress` gets a line now and then (stderr, when not quiet).
pub async fn run(
    path: &Path,
    spec: &MappingSpec,
    ingest_opts: &IngestOptions,
    cfg: &ImportConfig,
    progress: impl Fn(String),
) -> Result<ImportSummary, IngestError> {
    let t0 = Instant::now();
    let started = std::time::SystemTime::now();
    // A service that caps requests in flight (Okta: 75 org-wide) is never sent more.
    let capped;
    let cfg = match cfg.limits.max_in_flight {
        Some(m) if m < cfg.concurrency => {
            capped = ImportConfig {
                concurrency: m.max(1),
                ..cfg.clone()
            };
            &capped
        }
        _ => cfg,
    };
    let (client, throttle) = ScimClient::paced(
        &cfg.base_url,
        &cfg.client,
        cfg.concurrency,
        cfg.adaptive,
        &cfg.limits,
    )
    .map_err(|e| IngestError::Sink(e.to_string()))?;
    // What the target offers, asked before a row is read: a target that cannot be
    // reached (or whose certificate is refused) stops the import here.
    let caps = discover(&client).await.map_err(|e| {
        let hint = match e {
            crate::client::TransportError::Tls(_)
            | crate::client::TransportError::Auth(_)
            | crate::client::TransportError::Connect(_) => "",
            _ => "; check the URL and that the server runs",
        };
        IngestError::Sink(format!(
            "cannot reach the target {}: {e}{hint}",
            cfg.base_url
        ))
    })?;
    let schema = match cfg.schema_check {
        SchemaCheck::Off => None,
        mode => Some(schema_check(&client, path, spec, ingest_opts, mode, &progress).await?),
    };
    // Users travel to the dispatcher JOB_CHUNK at a time: one wake-up of the reader
    // thread per chunk rather than per user (each was a futex round trip on cores the
    // target shares).
    let (tx, rx) =
        mpsc::channel::<Vec<Job>>((cfg.concurrency.max(16) * 4).div_ceil(JOB_CHUNK).max(2));
    let mut rx = JobFeed::new(rx);
    let file_size = std::fs::metadata(path).map_or(0, |m| m.len());
    let rows_at_start = crate::source::ROWS_READ.load(std::sync::atomic::Ordering::Relaxed);
    let bytes_at_start = crate::source::BYTES_READ.load(std::sync::atomic::Ordering::Relaxed);
    let mut rejects = RejectSink::new(cfg.rejects.as_deref())?;
    let (path_owned, spec_owned, opts_owned) =
        (path.to_path_buf(), spec.clone(), ingest_opts.clone());
    let reader = tokio::task::spawn_blocking(move || -> Result<Ingested, IngestError> {
        let mut out = Ingested::default();
        let mut dups = Duplicates::for_input(&path_owned);
        // externalId → sequence number, keyed by a 64-bit fingerprint (as the duplicate
        // index is): 16 bytes a row instead of ~64 with the String, which made this map
        // the largest thing in a 1M-row import.
        let key = |s: &str| {
            use std::hash::BuildHasher;
            foldhash::quality::FixedState::with_seed(0x5e9_u64).hash_one(s)
        };
        let mut seq_of: HashMap<u64, u32> = HashMap::new();
        let mut later: Vec<(Deferred, String)> = Vec::new();
        let mut next_seq = 0u32;
        ingest(&path_owned, &spec_owned, &opts_owned, |batch| {
            let mut chunk: Vec<Job> = Vec::with_capacity(JOB_CHUNK);
            for o in batch {
                out.rows += 1;
                match dups.screen(o) {
                    RowOutcome::User(u) => {
                        let seq = next_seq;
                        next_seq += 1;
                        seq_of.insert(key(u.external_id()), seq);
                        for g in u.groups() {
                            out.groups.entry(g.to_string()).or_default().push(seq);
                        }
                        let manager = match u.manager() {
                            Some(m) => match seq_of.get(&key(m)) {
                                Some(&ms) => Some(ms),
                                None => {
                                    later.push((
                                        Deferred {
                                            seq,
                                            manager: 0,
                                            row: u.row,
                                            external_id: u.external_id().into(),
                                            content_hash: u.content_hash(),
                                        },
                                        m.to_string(),
                                    ));
                                    None
                                }
                            },
                            None => None,
                        };
                        chunk.push(Job {
                            seq,
                            user: u,
                            manager,
                        });
                        if chunk.len() == JOB_CHUNK {
                            tx.blocking_send(std::mem::replace(
                                &mut chunk,
                                Vec::with_capacity(JOB_CHUNK),
                            ))
                            .map_err(|_| "the dispatcher stopped".to_string())?;
                        }
                    }
                    RowOutcome::Rejected(r) => {
                        if let Some(id) = &r.external_id {
                            out.rejected_ids.push(id.clone());
                        }
                        rejects.take(&r)?
                    }
                }
            }
            if !chunk.is_empty() {
                tx.blocking_send(chunk)
                    .map_err(|_| "the dispatcher stopped".to_string())?;
            }
            Ok(())
        })?;
        out.rejected = rejects.finish()?;
        for (mut d, m) in later {
            match seq_of.get(&key(&m)) {
                Some(&ms) => {
                    d.manager = ms;
                    out.forward_managers.push(d)
                }
                None => {
                    out.unresolved_managers += 1;
                    out.unresolved.push(d);
                }
            }
        }
        Ok(out)
    });

    let state = match &cfg.state {
        Some(p) => Some(
            super::state::State::open(p, &cfg.base_url, &path.display().to_string())
                .map_err(|e| IngestError::Sink(e.to_string()))?,
        ),
        None => None,
    };
    // After a run that was killed, a create it had sent may have been applied without
    // an answer being recorded; on a target without uniqueness a second create would be
    // a second user. Everything the state does not know is looked up first this time.
    let lookup = match &state {
        Some(st) if st.unclean && cfg.lookup != Lookup::Always => {
            progress("the previous run did not finish (killed?): users and groups the state does not know are looked up before they are created".into());
            Lookup::Always
        }
        _ => cfg.lookup,
    };
    // What the target offers; /Bulk only when allowed and useful (a lookup before every
    // create, as IdP dialects do, cannot travel in a batch).
    let bulk_limits = match cfg.bulk {
        BulkMode::Never => None,
        _ if lookup == Lookup::Always => None,
        BulkMode::Auto => caps.bulk,
        BulkMode::Always => caps.bulk.or(Some((1000, 1 << 20))),
    }
    .map(|(ops, bytes)| {
        // A quarter of maxOperations is left for the memberships of the batch's users.
        let users = cfg
            .bulk_size
            .unwrap_or(bulk::DEFAULT_OPS)
            .min(ops - ops / 4)
            .max(1);
        // Keep a margin under maxPayloadSize for what the estimate misses.
        (users, bytes - bytes / 10, ops)
    });
    let bulk_max_ops = bulk_limits.map_or(0, |(_, _, ops)| ops);
    let bulk_limits = bulk_limits.map(|(users, bytes, _)| (users, bytes));
    let worker = Arc::new(Worker {
        client: client.clone(),
        retry: cfg.retry.clone(),
        lookup,
        dialect: cfg.dialect,
    });
    let failed_out = match &cfg.failed {
        Some(p) => {
            let mut w =
                csv::Writer::from_writer(BufWriter::new(File::create(p).map_err(|e| {
                    IngestError::Sink(format!("cannot write {}: {e}", p.display()))
                })?));
            let _ = w.write_record(["row", "externalId", "what", "status", "scimType", "detail"]);
            Some(w)
        }
        None => None,
    };
    let mut t = Tally {
        rec: Recorder::with_live(cfg.live.clone()),
        ids: Default::default(),
        created: 0,
        updated: 0,
        unchanged: 0,
        state,
        pending: Vec::new(),
        failed: 0,
        failed_out,
        managers_set: 0,
    };
    let known_at_start = t.state.as_ref().map_or(0, |st| st.users.len());
    let mut deferred_managers: Vec<Deferred> = Vec::new();
    // (bulk?, finished users, group outcome): a task is one user, or one /Bulk batch.
    let mut inflight: JoinSet<Launched> = JoinSet::new();
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
    let mut group_lookups: JoinSet<(String, Executed, Option<String>)> = JoinSet::new();
    let mut input_open = true;
    let mut last_report = Instant::now();
    // --rate: one user start every 1/rate seconds, scheduled (not reactive), so the
    // cap holds over any window.
    let gap = cfg
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let mut next_start = Instant::now();
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
        let paced = gap.is_some() && !stopping && Instant::now() < next_start;
        tokio::select! {
            biased;
            _ = interrupt.wait(), if !stopping => {
                stopping = true;
                progress(format!("interrupted: finishing {} requests in flight, then recording them (Ctrl-C again aborts)", inflight.len()));
            }
            _ = tokio::time::sleep_until(next_start.into()), if paced && input_open => {}
            Some(found) = group_lookups.join_next(), if !group_lookups.is_empty() => {
                if let (Ok((name, mut e, id)), Some(bg)) = (found, bulk_groups.as_mut()) {
                    account(&mut t.rec, Op::LookupGroup, &mut e);
                    let failed = !e.outcome.as_ref().is_ok_and(|r| r.is_success());
                    bg.found(name, id, failed);
                }
            }
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok((was_bulk, fs, groups)) = done {
                    bulk_running -= was_bulk as usize;
                    if let Some(tr) = trial.as_mut() {
                        tr.finished(fs.len() as u64);
                    }
                    for f in fs {
                        t.finish(f);
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
                    let done = t.created + t.updated + t.unchanged + t.failed;
                    let read = crate::source::BYTES_READ.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(bytes_at_start);
                    // Rows parsed so far over the share of the file read: the rows in all.
                    let seen = crate::source::ROWS_READ.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(rows_at_start);
                    let share = (read as f64 / file_size.max(1) as f64).clamp(1e-9, 1.0);
                    let total = (seen as f64 / share).max(seen as f64);
                    let secs = t0.elapsed().as_secs_f64();
                    let rate = done as f64 / secs.max(1e-3);
                    let eta = if rate > 0.0 && total > 0.0 {
                        format!(", ETA {:.0} s", (total - done as f64).max(0.0) / rate)
                    } else {
                        String::new()
                    };
                    let throttled = throttle
                        .limit()
                        .map_or(String::new(), |l| format!(" · throttled to {l:.0} requests/s (429s)"));
                    progress(format!(
                        "users: {done} of ~{total:.0} rows ({:.0}%{eta}) · {} created · {} updated · {} unchanged · {} failed · {rate:.0}/s · {} in flight{throttled}",
                        done as f64 * 100.0 / total.max(1.0), t.created, t.updated, t.unchanged, t.failed, inflight.len()
                    ));
                }
            }
            job = rx.recv(), if input_open && (stopping || (!paced && !draining && !batch_blocked && inflight.len() < cfg.concurrency)) => {
                match job {
                    // After Ctrl-C the rest of the file is read (to count it) but not sent.
                    Some(job) if stopping => {
                        not_sent += 1;
                        if let Some(st) = t.state.as_mut() {
                            st.users.remove(job.user.external_id());
                        }
                    }
                    Some(job) => {
                        if let Some(g) = gap {
                            next_start = next_start.max(Instant::now() - g) + g;
                        }
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
                                let w = worker.clone();
                                let known_id = k.map(|k| k.scim_id);
                                inflight.spawn(async move { (false, vec![w.provision(job, manager_id, known_id).await], None) });
                            }
                        }
                    }
                    None => input_open = false,
                }
            }
        }
    }
    let mut ingested = reader
        .await
        .map_err(|e| IngestError::Sink(format!("the reader failed: {e}")))??;
    if let Some(w) = t.failed_out.as_mut() {
        let _ = w.flush();
    }

    if !stopping {
        verify_pending(&client, &cfg.retry, cfg.dialect, &mut t, &progress).await;
    }

    // Managers not known when their reports were created (not after Ctrl-C: nothing
    // more is sent; a re-run sets them).
    let forward_managers = ingested.forward_managers.len() as u64;
    if stopping {
        deferred_managers.clear();
    } else {
        deferred_managers.extend(std::mem::take(&mut ingested.forward_managers));
    }
    // A manager PATCH that fails is a failure of that row's reference: in failed.csv
    // with its status and scimType, never counted as set.
    let mut batch: JoinSet<(Executed, Deferred)> = JoinSet::new();
    let mut managers_failed = 0u64;
    let mut settle = |t: &mut Tally, (mut e, m): (Executed, Deferred)| {
        if account(&mut t.rec, Op::PatchManager, &mut e) == 1 {
            t.managers_set += 1;
            if let (Some(st), Some(uid)) = (&t.state, t.ids.get(m.seq)) {
                // The user is now as its row says: the state can call it unchanged.
                st.record(super::state::Record::User {
                    external_id: m.external_id.to_string(),
                    scim_id: uid.to_string(),
                    content_hash: m.content_hash,
                    outcome: "updated",
                });
            }
        } else {
            managers_failed += 1;
            let status = crate::client::retry::error_key(&e.outcome).unwrap_or_default();
            t.write_failed(
                m.row,
                &m.external_id,
                "manager",
                &status,
                &super::worker::detail(&e.outcome),
            );
        }
    };
    for m in deferred_managers {
        let (Some(uid), Some(mid)) = (t.id(m.seq), t.id(m.manager)) else {
            continue;
        };
        let body = serde_json::to_vec(&json!({
            "schemas": [urns::PATCH_OP],
            "Operations": [{"op": "replace", "path": format!("{}:manager", urns::ENTERPRISE_USER), "value": {"value": mid}}]
        }))
        .unwrap_or_default();
        let (c, r, path) = (client.clone(), cfg.retry.clone(), format!("/Users/{uid}"));
        while batch.len() >= cfg.concurrency {
            if let Some(Ok(x)) = batch.join_next().await {
                settle(&mut t, x);
            }
        }
        batch.spawn(async move {
            let e = execute(
                &c,
                &r,
                Method::PATCH,
                &path,
                Some(&body),
                false,
                m.seq as u64,
            )
            .await;
            (e, m)
        });
    }
    while let Some(Ok(x)) = batch.join_next().await {
        settle(&mut t, x);
    }
    if let Some(w) = t.failed_out.as_mut() {
        let _ = w.flush();
    }
    // A manager that is not in the export will not be set by any run: record these
    // users as they are, or every re-run would update them.
    if let (false, Some(st)) = (stopping, &t.state) {
        for m in std::mem::take(&mut ingested.unresolved) {
            if let Some(uid) = t.ids.get(m.seq) {
                st.record(super::state::Record::User {
                    external_id: m.external_id.to_string(),
                    scim_id: uid.to_string(),
                    content_hash: m.content_hash,
                    outcome: "updated",
                });
            }
        }
    }

    // Users the state knows that this export no longer has (not after Ctrl-C: the rest
    // of the file was not looked at).
    let mut sync = MissingTotals::default();
    if let (false, Some(st)) = (stopping, t.state.as_mut()) {
        let rejected: std::collections::HashSet<&str> =
            ingested.rejected_ids.iter().map(String::as_str).collect();
        let missing: Vec<(String, super::state::KnownUser)> = st
            .users
            .drain()
            .filter(|(ext, _)| !rejected.contains(ext.as_str()))
            .collect();
        sync.missing = missing.len() as u64;
        // A content hash of 0 marks a user already deactivated by an earlier run.
        let todo: Vec<_> = missing
            .into_iter()
            .filter(|(_, k)| cfg.missing == Missing::Delete || k.content_hash != 0)
            .collect();
        let limit = (cfg.missing_limit * known_at_start as f64).max(10.0);
        if cfg.missing != Missing::Keep && sync.missing as f64 > limit {
            sync.refused = Some(format!(
                "{} of the {} users the state knows are not in this export, more than --missing-limit {:.0}%; check that the file is complete, or raise --missing-limit",
                sync.missing,
                known_at_start,
                cfg.missing_limit * 100.0
            ));
        } else if cfg.missing != Missing::Keep {
            let mut set: JoinSet<Retired> = JoinSet::new();
            for (external_id, k) in todo {
                while set.len() >= cfg.concurrency {
                    if let Some(Ok(r)) = set.join_next().await {
                        sync.add(&mut t.rec, st, r);
                    }
                }
                let (c, r, d, mode) = (client.clone(), cfg.retry.clone(), cfg.dialect, cfg.missing);
                set.spawn(retire(c, r, d, mode, external_id, k.scim_id));
            }
            while let Some(Ok(r)) = set.join_next().await {
                sync.add(&mut t.rec, st, r);
            }
        }
    }

    // Groups: find or create, then add members in batches; groups run in parallel, the
    // batches of one group one after the other (servers that read-modify-write lose
    // members when one group is patched concurrently).
    let mut gt = GroupTotals::default();
    let mut gset: JoinSet<GroupResult> = JoinSet::new();
    let ids = Arc::new(std::mem::take(&mut t.ids));
    let export_groups = ingested.groups.len() as u64;
    let export_memberships: u64 = ingested.groups.values().map(|m| m.len() as u64).sum();
    let group_sizes: Vec<u64> = ingested.groups.values().map(|m| m.len() as u64).collect();
    let groups = if stopping {
        BTreeMap::new()
    } else {
        // A group the state knows that no row names any more keeps no members from
        // the export: it is visited with an empty member list, so its members leave.
        let mut g = ingested.groups;
        if let Some(st) = &t.state {
            for name in st.groups.keys() {
                g.entry(name.clone()).or_default();
            }
        }
        g
    };
    // What verification will look for in each group: the members this import put in.
    let mut group_members: HashMap<String, Arc<[u32]>> = HashMap::new();
    for (name, members) in groups {
        let members: Arc<[u32]> = members.into();
        if cfg.verify != Verify::Off {
            group_members.insert(name.clone(), members.clone());
        }
        while gset.len() >= cfg.concurrency.clamp(1, 16) {
            if let Some(Ok(g)) = gset.join_next().await {
                gt.add(&mut t.rec, t.state.as_ref(), g);
            }
        }
        let members_hash = members_hash(&members, &ids);
        let known = t
            .state
            .as_ref()
            .and_then(|st| st.groups.get(&name))
            .cloned();
        if let Some((_, h)) = &known {
            if *h == members_hash {
                // Same members as last time: nothing to send.
                gt.unchanged += 1;
                continue;
            }
        }
        let (c, r, ids, lookup, per, dialect) = (
            client.clone(),
            cfg.retry.clone(),
            ids.clone(),
            lookup,
            cfg.member_batch.max(1),
            cfg.dialect,
        );
        // What the Bulk batches did for this group.
        let (sent, created_in_bulk, slot) = match bulk_groups.as_mut() {
            Some(bg) => (
                bg.sent.remove(&name),
                bg.created.contains(&name),
                bg.slots.get(&name).cloned(),
            ),
            None => (None, false, None),
        };
        let known_id = known.map(|k| k.0).or(match &slot {
            Some(Slot::Known(id)) => Some(id.clone()),
            _ => None,
        });
        let lookup = match slot {
            // A create that may have been applied unanswered: look before creating.
            Some(Slot::Unsure) if lookup == Lookup::Never => Lookup::OnConflict,
            // Looked up during the import and not there.
            Some(Slot::Absent) => Lookup::Never,
            _ => lookup,
        };
        // Members added by PATCH in batches to a group that existed: counted here, the
        // rest found missing when its members are compared.
        // Adds packed into /Bulk too: as many `per`-member operations as fit.
        let bulk_adds =
            bulk_limits.map(|(_, bytes)| bulk_max_ops.min(bytes / (per * 48 + 256)).max(1));
        let (exact, pre_added) = if created_in_bulk {
            (Some(sent.unwrap_or_default()), 0)
        } else {
            (None, sent.map_or(0, |s| s.len() as u64))
        };
        gset.spawn(async move {
            let mut g = provision_group(
                &c,
                &r,
                dialect,
                lookup,
                &name,
                &members,
                &ids,
                per,
                known_id,
                members_hash,
                exact,
                bulk_adds,
            )
            .await;
            g.added += pre_added;
            g
        });
    }
    while let Some(Ok(g)) = gset.join_next().await {
        gt.add(&mut t.rec, t.state.as_ref(), g);
    }

    // Member adds the target refused: each a failure of that row's reference.
    let members_failed = gt.refused.len() as u64;
    if !gt.refused.is_empty() && t.failed_out.is_some() {
        // One user may be refused by several groups: SCIM id → sequence number once.
        let mut seq_of_id: HashMap<&str, Option<u32>> = gt
            .refused
            .iter()
            .map(|(id, _, _)| (id.as_str(), None))
            .collect();
        for seq in 0..ids.len() as u32 {
            if let Some(slot) = ids.get(seq).and_then(|id| seq_of_id.get_mut(id)) {
                *slot = Some(seq);
            }
        }
        let seq_of_ref: Vec<Option<u32>> = gt
            .refused
            .iter()
            .map(|(id, _, _)| seq_of_id.get(id.as_str()).copied().flatten())
            .collect();
        let seqs: std::collections::HashSet<u32> = seq_of_ref.iter().flatten().copied().collect();
        let (p, sp, o) = (path.to_path_buf(), spec.clone(), ingest_opts.clone());
        let rows =
            tokio::task::spawn_blocking(move || super::readback::rows_of(&p, &sp, &o, &seqs))
                .await
                .map_err(|e| IngestError::Sink(format!("failed.csv: {e}")))??;
        for ((_, status, detail), seq) in gt.refused.iter().zip(seq_of_ref) {
            let (row, ext) = seq
                .and_then(|s| rows.get(&s).cloned())
                .unwrap_or((0, String::new()));
            t.write_failed(row, &ext, "member", status, detail);
        }
        if let Some(w) = t.failed_out.as_mut() {
            let _ = w.flush();
        }
    }
    if let Some(st) = t.state.take() {
        st.close().map_err(|e| IngestError::Sink(e.to_string()))?;
    }
    let verification = if stopping || cfg.verify == Verify::Off {
        None
    } else {
        let groups = std::mem::take(&mut gt.ids)
            .into_iter()
            .filter_map(|(name, id)| {
                let want = group_members.get(&name)?.clone();
                Some((name, id, want))
            })
            .collect();
        let inputs = super::readback::Inputs {
            path,
            spec,
            opts: ingest_opts,
            client: &client,
            retry: &cfg.retry,
            concurrency: cfg.concurrency,
            ids: &ids,
            groups,
            members_in_reads: None,
        };
        Some(super::readback::verify(cfg.verify, inputs, &progress).await?)
    };
    let elapsed = t0.elapsed();
    let rejected: u64 = ingested.rejected.values().sum();
    // The export's onboarding under the published limits the import was paced by: the
    // same arithmetic as `scimload plan`, next to the measured-speed projection.
    let limits_projection = (!cfg.limits.buckets.is_empty()).then(|| {
        let shape = crate::limits::ExportShape {
            users: ingested.rows - rejected,
            manager_patches: forward_managers,
            memberships: export_memberships,
            group_sizes,
        };
        crate::limits::project(
            &cfg.limits.published(),
            &shape.phases_under(&cfg.limits, cfg.member_batch as u64),
        )
    });
    Ok(ImportSummary {
        limits_projection,
        kind: "import".into(),
        tool: concat!("scimload ", env!("CARGO_PKG_VERSION")).into(),
        samples: "attempt".into(),
        started: crate::units::rfc3339(started),
        machine: crate::results::Machine::this(),
        input: path.display().to_string(),
        dialect: value_name(cfg.dialect.name),
        concurrency: cfg.concurrency,
        member_batch: cfg.member_batch,
        bulk: value_name(cfg.bulk),
        lookup: value_name(lookup),
        export_groups,
        export_memberships,
        throttle: throttle.stats(),
        target: cfg.base_url.clone(),
        connection: client.describe(),
        rows: ingested.rows,
        created: t.created,
        updated: t.updated,
        unchanged: t.unchanged,
        rejected,
        failed: t.failed,
        pending: t.pending.len() as u64,
        not_sent,
        interrupted: stopping,
        groups_created: gt.created,
        groups_existing: gt.existing,
        groups_unchanged: gt.unchanged,
        groups_failed: gt.failed,
        memberships_added: gt.added,
        memberships_removed: gt.removed,
        missing: sync.missing,
        deactivated: sync.deactivated,
        deleted: sync.deleted,
        missing_failed: sync.failed,
        missing_refused: sync.refused,
        memberships_skipped: gt.skipped,
        bulk_trial: trial.map(|tr| tr.outcome()),
        inbound: None,
        managers_set: t.managers_set,
        managers_failed,
        memberships_failed: members_failed,
        managers_unresolved: ingested.unresolved_managers,
        schema,
        verification,
        rejects_by_reason: ingested
            .rejected
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        operations: t.rec.summary(elapsed),
        timeline: Some(t.rec.timeline),
        errors: t.rec.errors,
        elapsed_seconds: elapsed.as_secs_f64(),
        users_per_second: (t.created + t.updated) as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}
