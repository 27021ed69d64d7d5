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
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::dry_run::{Duplicates, RejectSink};
use super::ingest::{ingest, IngestError, IngestOptions, RowOutcome};
use crate::client::dialect::Dialect;
use crate::client::retry::{error_key, execute, Executed};
use crate::client::{Decision, Reply, RetryPolicy, ScimClient, Secret, TransportError};
use crate::mapping::build::with_manager;
use crate::mapping::{MappedUser, MappingSpec};
use crate::metrics::{Op, OpSummary, Recorder};
use crate::scim::urns;

/// Whether to look a user up before creating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lookup {
    /// `GET /Users?filter=userName eq` before every create (what IdPs do).
    Always,
    /// Create directly; a fresh tenant goes fastest.
    Never,
    /// Create directly; on 409, look up and update (the default).
    OnConflict,
}

#[derive(Debug, Clone)]
pub struct ImportConfig {
    pub base_url: String,
    pub token: Option<Secret>,
    pub concurrency: usize,
    pub lookup: Lookup,
    /// Request shapes: how lookups, updates and member changes are sent.
    pub dialect: &'static Dialect,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    /// Members added per group PATCH.
    pub member_batch: usize,
    pub rejects: Option<PathBuf>,
    pub failed: Option<PathBuf>,
    /// The state database: skip unchanged rows, resume without duplicates.
    pub state: Option<PathBuf>,
    /// Users sent per second at most (`--rate`); `None`: as fast as `concurrency` allows.
    pub rate: Option<f64>,
    /// What to do with users the state knows but the export no longer has.
    pub missing: Missing,
    /// Refuse to act on missing users when they are more than this fraction of the
    /// users the state knows (a wrong or truncated file must not empty a directory).
    pub missing_limit: f64,
    /// Set (and notified) on Ctrl-C: stop sending, finish what is in flight, record it.
    pub interrupt: Option<Arc<Interrupt>>,
}

/// Users the state knows that are not in this export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    /// Leave them alone (the default).
    #[default]
    Keep,
    /// Deactivate them in the dialect's way (`--deactivate-missing`).
    Deactivate,
    /// Delete them and forget them (`--delete-missing`).
    Delete,
}

/// A request to stop an import cleanly.
#[derive(Debug, Default)]
pub struct Interrupt {
    flag: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Interrupt {
    pub fn fire(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn fired(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn wait(&self) {
        let n = self.notify.notified();
        if !self.fired() {
            n.await;
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub target: String,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    /// Rows the state says the target already has, unchanged: no request sent.
    pub unchanged: u64,
    pub rejected: u64,
    pub failed: u64,
    pub pending: u64,
    /// Rows read but not sent because the import was interrupted (Ctrl-C); a re-run
    /// with the same state sends them.
    pub not_sent: u64,
    pub interrupted: bool,
    pub groups_created: u64,
    pub groups_existing: u64,
    /// Groups whose members are as the state recorded them: no request sent.
    pub groups_unchanged: u64,
    pub groups_failed: u64,
    pub memberships_added: u64,
    /// Members removed because the export no longer puts them in the group.
    pub memberships_removed: u64,
    pub memberships_skipped: u64,
    /// Users the state knew that the export no longer has: how many, and what was done.
    pub missing: u64,
    pub deactivated: u64,
    pub deleted: u64,
    pub missing_failed: u64,
    /// Why missing users were left alone although asked to act on them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_refused: Option<String>,
    pub managers_set: u64,
    pub managers_unresolved: u64,
    pub rejects_by_reason: BTreeMap<&'static str, u64>,
    pub operations: BTreeMap<&'static str, OpSummary>,
    pub errors: BTreeMap<String, u64>,
    pub elapsed_seconds: f64,
    pub users_per_second: f64,
    /// Latencies over time, written as the report's interval log.
    #[serde(skip)]
    pub timeline: Option<crate::metrics::timeline::Timeline>,
}

impl ImportSummary {
    /// Rows that ended as anything but created or updated.
    pub fn incomplete(&self) -> bool {
        self.interrupted
            || self.rejected
                + self.failed
                + self.pending
                + self.not_sent
                + self.groups_failed
                + self.memberships_skipped
                + self.missing_failed
                > 0
            || self.missing_refused.is_some()
    }

    pub fn human(&self) -> String {
        let mut s = format!(
            "import into {}: {} rows -> {} created, {} updated, {} unchanged, {} rejected, {} failed, {} pending{}\n",
            self.target, self.rows, self.created, self.updated, self.unchanged, self.rejected, self.failed, self.pending,
            if self.interrupted { format!(", {} not sent (interrupted; run the same command again to finish)", self.not_sent) } else { String::new() }
        );
        s.push_str(&format!(
            "  groups: {} created, {} existing, {} unchanged, {} failed; {} memberships added, {} skipped; {} managers set, {} not among the accepted rows\n",
            self.groups_created, self.groups_existing, self.groups_unchanged, self.groups_failed, self.memberships_added, self.memberships_skipped, self.managers_set, self.managers_unresolved
        ));
        if self.missing > 0 || self.memberships_removed > 0 {
            s.push_str(&format!(
                "  sync: {} users no longer in the export ({} deactivated, {} deleted, {} failed); {} memberships removed\n",
                self.missing, self.deactivated, self.deleted, self.missing_failed, self.memberships_removed
            ));
        }
        if let Some(r) = &self.missing_refused {
            s.push_str(&format!("  missing users left alone: {r}\n"));
        }
        for (code, n) in &self.rejects_by_reason {
            s.push_str(&format!("  rejected {code}: {n}\n"));
        }
        s.push_str("  operation        requests      req/s    p50 ms    p90 ms    p99 ms  p99.9 ms    max ms\n");
        for (op, o) in &self.operations {
            s.push_str(&format!(
                "  {op:<15} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                o.requests, o.per_second, o.p50_ms, o.p90_ms, o.p99_ms, o.p999_ms, o.max_ms
            ));
        }
        for (e, n) in &self.errors {
            s.push_str(&format!("  answered {e}: {n}\n"));
        }
        s.push_str(&format!(
            "  {:.2} s, {:.0} users/s\n",
            self.elapsed_seconds, self.users_per_second
        ));
        s
    }
}

/// One accepted user on its way to the dispatcher.
struct Job {
    seq: u32,
    user: MappedUser,
    /// The manager's sequence number, when it appeared earlier in the file.
    manager: Option<u32>,
}

/// What the ingest thread learned, for the phases after users.
#[derive(Default)]
struct Ingested {
    rows: u64,
    rejected: BTreeMap<&'static str, u64>,
    /// Group displayName → member sequence numbers.
    groups: BTreeMap<String, Vec<u32>>,
    /// Managers that appear later in the file than their reports: (user, manager).
    forward_managers: Vec<(u32, u32)>,
    unresolved_managers: u64,
    /// externalIds of rejected rows: still in the export, so never "missing".
    rejected_ids: Vec<String>,
}

/// The dispatcher's view of one finished user.
enum UserResult {
    Created(String),
    Updated(String),
    Pending,
    Failed { status: String, detail: String },
}

struct Finished {
    seq: u32,
    row: u64,
    external_id: String,
    user_name: String,
    content_hash: u64,
    result: UserResult,
    timings: Vec<(Op, Duration)>,
    errors: Vec<String>,
}

fn id_from(reply: &Reply) -> Option<String> {
    let v: Value = serde_json::from_slice(&reply.body).ok()?;
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            reply
                .location
                .as_deref()
                .and_then(|l| l.rsplit('/').next())
                .map(str::to_string)
        })
}

fn detail(o: &Result<Reply, TransportError>) -> String {
    match o {
        Ok(r) => r
            .error()
            .and_then(|e| e.detail)
            .unwrap_or_else(|| String::from_utf8_lossy(&r.body).chars().take(200).collect()),
        Err(e) => e.to_string(),
    }
}

/// `attr eq "value"`, percent-encoded for a query string.
fn filter_query(attr: &str, value: &str) -> String {
    crate::scim::filter::query_escape(&format!(
        "{attr} eq {}",
        serde_json::to_string(value).unwrap_or_default()
    ))
}

/// The dispatcher's results, owned by the dispatcher alone.
struct Tally {
    rec: Recorder,
    /// SCIM id of each accepted user, by sequence number.
    ids: Vec<Option<Box<str>>>,
    created: u64,
    updated: u64,
    unchanged: u64,
    state: Option<super::state::State>,
    /// Users accepted but not visible yet (202, or 201 without an id):
    /// (seq, userName, externalId, content hash).
    pending: Vec<(u32, String, String, u64)>,
    failed: u64,
    failed_out: Option<csv::Writer<BufWriter<File>>>,
}

impl Tally {
    fn finish(&mut self, f: Finished) {
        for (op, d) in &f.timings {
            self.rec.record(*op, *d);
        }
        for e in f.errors {
            self.rec.error(e);
        }
        let slot = f.seq as usize;
        if self.ids.len() <= slot {
            self.ids.resize(slot + 1, None);
        }
        let created = matches!(f.result, UserResult::Created(_));
        match f.result {
            UserResult::Created(id) | UserResult::Updated(id) => {
                if created {
                    self.created += 1;
                } else {
                    self.updated += 1;
                }
                if let Some(st) = &self.state {
                    st.record(super::state::Record::User {
                        external_id: f.external_id.clone(),
                        scim_id: id.clone(),
                        content_hash: f.content_hash,
                        outcome: if created { "created" } else { "updated" },
                    });
                }
                self.ids[slot] = Some(id.into_boxed_str());
            }
            UserResult::Pending => {
                self.pending
                    .push((f.seq, f.user_name, f.external_id, f.content_hash))
            }
            UserResult::Failed { status, detail } => {
                self.failed += 1;
                if let Some(w) = self.failed_out.as_mut() {
                    let _ = w.write_record([
                        f.row.to_string().as_str(),
                        f.external_id.as_str(),
                        status.as_str(),
                        detail.as_str(),
                    ]);
                }
            }
        }
    }

    fn id(&self, seq: u32) -> Option<&str> {
        self.ids.get(seq as usize).and_then(|x| x.as_deref())
    }
}

struct Worker {
    client: ScimClient,
    retry: RetryPolicy,
    lookup: Lookup,
    dialect: &'static Dialect,
}

impl Worker {
    async fn timed(
        &self,
        f: &mut Finished,
        op: Op,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        creates: bool,
    ) -> Executed {
        let t = Instant::now();
        let e = execute(
            &self.client,
            &self.retry,
            method,
            path,
            body,
            creates,
            f.seq as u64 ^ 0x5eed,
        )
        .await;
        f.timings.push((op, t.elapsed() / e.attempts.max(1)));
        f.errors.extend(e.errors.iter().cloned());
        e
    }

    /// `GET /Users?filter=userName eq "x"` as the dialect asks it: the id, if the user
    /// exists.
    async fn find(&self, f: &mut Finished, user_name: &str) -> Result<Option<String>, String> {
        let path = self.dialect.lookup(user_name).path;
        let e = self
            .timed(f, Op::LookupUser, Method::GET, &path, None, false)
            .await;
        match &e.outcome {
            Ok(r) if r.is_success() => {
                let v: Value = serde_json::from_slice(&r.body)
                    .map_err(|e| format!("lookup answer is not JSON: {e}"))?;
                Ok(v["Resources"]
                    .get(0)
                    .and_then(|u| u["id"].as_str())
                    .map(str::to_string))
            }
            other => Err(detail(other)),
        }
    }

    /// Brings user `id` to `body` the dialect's way: a PATCH per attribute, one
    /// path-less PATCH, or a GET and a PUT of the full object.
    async fn update(&self, f: &mut Finished, id: &str, body: &[u8]) -> UserResult {
        let user: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return UserResult::Failed {
                    status: "mapping".into(),
                    detail: format!("the mapped user is not JSON: {e}"),
                }
            }
        };
        let shaped = self.dialect.update(id, &user);
        let last = shaped.len().saturating_sub(1);
        for (k, s) in shaped.into_iter().enumerate() {
            let method = Method::from_bytes(s.method.as_bytes()).unwrap_or(Method::PATCH);
            let op = if k < last {
                Op::GetUser
            } else {
                Op::UpdateUser
            };
            let payload = s.body.map(|b| serde_json::to_vec(&b).unwrap_or_default());
            let e = self
                .timed(f, op, method, &s.path, payload.as_deref(), false)
                .await;
            match &e.outcome {
                Ok(r) if r.is_success() => {}
                o => {
                    return UserResult::Failed {
                        status: error_key(o).unwrap_or_default(),
                        detail: detail(o),
                    }
                }
            }
        }
        UserResult::Updated(id.to_string())
    }

    /// Creates or updates one user. `known_id`: the state's SCIM id of a changed user.
    async fn provision(
        self: Arc<Self>,
        job: Job,
        manager_id: Option<String>,
        known_id: Option<String>,
    ) -> Finished {
        let mut f = Finished {
            seq: job.seq,
            row: job.user.row,
            external_id: job.user.external_id.clone(),
            user_name: job.user.user_name.clone(),
            content_hash: job.user.content_hash,
            result: UserResult::Pending,
            timings: Vec::new(),
            errors: Vec::new(),
        };
        let body = match &manager_id {
            Some(m) => with_manager(&job.user.body, m),
            None => job.user.body.clone(),
        };
        if let Some(id) = known_id {
            f.result = self.update(&mut f, &id, &body).await;
            // Deleted on the target since the last run: create it again.
            if !matches!(&f.result, UserResult::Failed { status, .. } if status == "404") {
                return f;
            }
        }
        if self.lookup == Lookup::Always {
            match self.find(&mut f, &job.user.user_name).await {
                Ok(Some(id)) => {
                    f.result = self.update(&mut f, &id, &body).await;
                    return f;
                }
                Ok(None) => {}
                Err(d) => {
                    f.result = UserResult::Failed {
                        status: "lookup".into(),
                        detail: d,
                    };
                    return f;
                }
            }
        }
        // A create that may have reached the server is looked up before it is sent again.
        for _ in 0..3 {
            let e = self
                .timed(
                    &mut f,
                    Op::CreateUser,
                    Method::POST,
                    "/Users",
                    Some(&body),
                    true,
                )
                .await;
            f.result = match (&e.decision, &e.outcome) {
                (Decision::Done, Ok(r)) if r.status == 202 => UserResult::Pending,
                (Decision::Done, Ok(r)) if r.is_success() => match id_from(r) {
                    Some(id) => UserResult::Created(id),
                    // A 201 without an id: an asynchronous provider; verified later.
                    None => UserResult::Pending,
                },
                // 409: the user exists; look it up and update it (upsert), never a retry loop.
                (Decision::Conflict, _) => match self.find(&mut f, &job.user.user_name).await {
                    Ok(Some(id)) => self.update(&mut f, &id, &body).await,
                    Ok(None) => UserResult::Failed { status: "409".into(), detail: "409 on create, but no user with this userName was found; the conflict is on another attribute (externalId?)".into() },
                    Err(d) => UserResult::Failed { status: "409 lookup".into(), detail: d },
                },
                (Decision::LookUpFirst, _) => match self.find(&mut f, &job.user.user_name).await {
                    Ok(Some(id)) => UserResult::Created(id),
                    Ok(None) => continue,
                    Err(d) => UserResult::Failed { status: "lookup".into(), detail: d },
                },
                (_, o) => UserResult::Failed { status: error_key(o).unwrap_or_else(|| "unknown".into()), detail: detail(o) },
            };
            return f;
        }
        f.result = UserResult::Failed {
            status: "transport".into(),
            detail: "the create kept failing before an answer, and the user was not found".into(),
        };
        f
    }
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
    let client = ScimClient::new(
        &cfg.base_url,
        cfg.token.as_ref(),
        cfg.timeout,
        cfg.concurrency,
    )
    .map_err(IngestError::Sink)?;
    let (tx, mut rx) = mpsc::channel::<Job>(cfg.concurrency.max(16) * 4);
    let mut rejects = RejectSink::new(cfg.rejects.as_deref())?;
    let (path_owned, spec_owned, opts_owned) =
        (path.to_path_buf(), spec.clone(), ingest_opts.clone());
    let reader = tokio::task::spawn_blocking(move || -> Result<Ingested, IngestError> {
        let mut out = Ingested::default();
        let mut dups = Duplicates::default();
        let mut seq_of: HashMap<String, u32> = HashMap::new();
        let mut later: Vec<(u32, String)> = Vec::new();
        let mut next_seq = 0u32;
        ingest(&path_owned, &spec_owned, &opts_owned, |batch| {
            for o in batch {
                out.rows += 1;
                match dups.screen(o) {
                    RowOutcome::User(u) => {
                        let seq = next_seq;
                        next_seq += 1;
                        seq_of.insert(u.external_id.clone(), seq);
                        for g in u.groups() {
                            out.groups.entry(g.to_string()).or_default().push(seq);
                        }
                        let manager = match &u.manager {
                            Some(m) => match seq_of.get(m) {
                                Some(&ms) => Some(ms),
                                None => {
                                    later.push((seq, m.clone()));
                                    None
                                }
                            },
                            None => None,
                        };
                        tx.blocking_send(Job {
                            seq,
                            user: u,
                            manager,
                        })
                        .map_err(|_| "the dispatcher stopped".to_string())?;
                    }
                    RowOutcome::Rejected(r) => {
                        if let Some(id) = &r.external_id {
                            out.rejected_ids.push(id.clone());
                        }
                        rejects.take(&r)?
                    }
                }
            }
            Ok(())
        })?;
        out.rejected = rejects.finish()?;
        for (seq, m) in later {
            match seq_of.get(&m) {
                Some(&ms) => out.forward_managers.push((seq, ms)),
                None => out.unresolved_managers += 1,
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
    let worker = Arc::new(Worker {
        client: client.clone(),
        retry: cfg.retry.clone(),
        lookup: cfg.lookup,
        dialect: cfg.dialect,
    });
    let failed_out = match &cfg.failed {
        Some(p) => {
            let mut w =
                csv::Writer::from_writer(BufWriter::new(File::create(p).map_err(|e| {
                    IngestError::Sink(format!("cannot write {}: {e}", p.display()))
                })?));
            let _ = w.write_record(["row", "externalId", "status", "detail"]);
            Some(w)
        }
        None => None,
    };
    let mut t = Tally {
        rec: Recorder::default(),
        ids: Vec::new(),
        created: 0,
        updated: 0,
        unchanged: 0,
        state,
        pending: Vec::new(),
        failed: 0,
        failed_out,
    };
    let known_at_start = t.state.as_ref().map_or(0, |st| st.users.len());
    let mut deferred_managers: Vec<(u32, u32)> = Vec::new();
    let mut managers_set = 0u64;
    let mut inflight: JoinSet<Finished> = JoinSet::new();
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
    while input_open || !inflight.is_empty() {
        let paced = gap.is_some() && !stopping && Instant::now() < next_start;
        tokio::select! {
            biased;
            _ = interrupt.wait(), if !stopping => {
                stopping = true;
                progress(format!("interrupted: finishing {} requests in flight, then recording them (Ctrl-C again aborts)", inflight.len()));
            }
            _ = tokio::time::sleep_until(next_start.into()), if paced && input_open => {}
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok(f) = done {
                    t.finish(f);
                }
                if last_report.elapsed() > Duration::from_secs(2) {
                    last_report = Instant::now();
                    progress(format!("users: {} created, {} updated, {} failed, {} in flight", t.created, t.updated, t.failed, inflight.len()));
                }
            }
            job = rx.recv(), if input_open && (stopping || (!paced && inflight.len() < cfg.concurrency)) => {
                match job {
                    // After Ctrl-C the rest of the file is read (to count it) but not sent.
                    Some(job) if stopping => {
                        not_sent += 1;
                        if let Some(st) = t.state.as_mut() {
                            st.users.remove(&job.user.external_id);
                        }
                    }
                    Some(job) => {
                        if let Some(g) = gap {
                            next_start = next_start.max(Instant::now() - g) + g;
                        }
                        let manager_id = job.manager.and_then(|m| t.id(m)).map(String::from);
                        match (job.manager, &manager_id) {
                            (Some(_), Some(_)) => managers_set += 1,
                            // The manager is still in flight (or failed): set it afterwards.
                            (Some(m), None) => deferred_managers.push((job.seq, m)),
                            _ => {}
                        }
                                                // The state knows this user: unchanged, no request; changed, update it.
                        let known = t.state.as_mut().and_then(|st| st.users.remove(&job.user.external_id));
                        match known {
                            Some(k) if k.content_hash == job.user.content_hash => {
                                let slot = job.seq as usize;
                                if t.ids.len() <= slot {
                                    t.ids.resize(slot + 1, None);
                                }
                                t.ids[slot] = Some(k.scim_id.into_boxed_str());
                                t.unchanged += 1;
                            }
                            k => {
                                inflight.spawn(worker.clone().provision(job, manager_id, k.map(|k| k.scim_id)));
                            }
                        }
                    }
                    None => input_open = false,
                }
            }
        }
    }
    let ingested = reader
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
    if stopping {
        deferred_managers.clear();
    } else {
        deferred_managers.extend(ingested.forward_managers.iter().copied());
    }
    let mut batch: JoinSet<(Executed, Duration)> = JoinSet::new();
    for (seq, m) in deferred_managers {
        let (Some(uid), Some(mid)) = (t.id(seq), t.id(m)) else {
            continue;
        };
        let body = serde_json::to_vec(&json!({
            "schemas": [urns::PATCH_OP],
            "Operations": [{"op": "replace", "path": format!("{}:manager", urns::ENTERPRISE_USER), "value": {"value": mid}}]
        }))
        .unwrap_or_default();
        let (c, r, path) = (client.clone(), cfg.retry.clone(), format!("/Users/{uid}"));
        while batch.len() >= cfg.concurrency {
            if let Some(Ok((e, d))) = batch.join_next().await {
                managers_set += account(&mut t.rec, Op::PatchManager, &e, d);
            }
        }
        batch.spawn(async move {
            let t = Instant::now();
            let e = execute(&c, &r, Method::PATCH, &path, Some(&body), false, seq as u64).await;
            (e, t.elapsed())
        });
    }
    while let Some(Ok((e, d))) = batch.join_next().await {
        managers_set += account(&mut t.rec, Op::PatchManager, &e, d);
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
    for (name, members) in groups {
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
            cfg.lookup,
            cfg.member_batch.max(1),
            cfg.dialect,
        );
        let known_id = known.map(|k| k.0);
        gset.spawn(async move {
            provision_group(
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
            )
            .await
        });
    }
    while let Some(Ok(g)) = gset.join_next().await {
        gt.add(&mut t.rec, t.state.as_ref(), g);
    }

    if let Some(st) = t.state.take() {
        st.close().map_err(|e| IngestError::Sink(e.to_string()))?;
    }
    let elapsed = t0.elapsed();
    let rejected: u64 = ingested.rejected.values().sum();
    Ok(ImportSummary {
        target: cfg.base_url.clone(),
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
        managers_set,
        managers_unresolved: ingested.unresolved_managers,
        rejects_by_reason: ingested.rejected,
        operations: t.rec.summary(elapsed),
        timeline: Some(t.rec.timeline),
        errors: t.rec.errors,
        elapsed_seconds: elapsed.as_secs_f64(),
        users_per_second: (t.created + t.updated) as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}

/// Asynchronously created users (202, or 201 without an id) are looked up by userName
/// until they appear, for at most about 30 s; those that never do stay pending.
async fn verify_pending(
    client: &ScimClient,
    retry: &RetryPolicy,
    dialect: &'static Dialect,
    t: &mut Tally,
    progress: &impl Fn(String),
) {
    let mut wait = Duration::from_millis(200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !t.pending.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
        let worker = Worker {
            client: client.clone(),
            retry: retry.clone(),
            lookup: Lookup::Always,
            dialect,
        };
        let mut still = Vec::new();
        for (seq, name, external_id, content_hash) in std::mem::take(&mut t.pending) {
            let mut f = Finished {
                seq,
                row: 0,
                external_id: external_id.clone(),
                user_name: name.clone(),
                content_hash,
                result: UserResult::Pending,
                timings: Vec::new(),
                errors: Vec::new(),
            };
            match worker.find(&mut f, &name).await {
                Ok(Some(id)) => {
                    f.result = UserResult::Created(id);
                    t.finish(f);
                }
                _ => {
                    for (op, d) in &f.timings {
                        t.rec.record(*op, *d);
                    }
                    still.push((seq, name, external_id, content_hash));
                }
            }
        }
        t.pending = still;
        progress(format!(
            "{} users still pending on the target",
            t.pending.len()
        ));
    }
}

/// How one missing user was handled.
struct Retired {
    external_id: String,
    scim_id: String,
    mode: Missing,
    /// Deactivated or deleted (or already gone: 404).
    ok: bool,
    timings: Vec<(Op, Duration)>,
    errors: Vec<String>,
}

/// Deactivates (the dialect's way) or deletes one user the export no longer has.
async fn retire(
    c: ScimClient,
    r: RetryPolicy,
    d: &'static Dialect,
    mode: Missing,
    external_id: String,
    scim_id: String,
) -> Retired {
    let mut out = Retired {
        external_id,
        scim_id: scim_id.clone(),
        mode,
        ok: false,
        timings: Vec::new(),
        errors: Vec::new(),
    };
    let path = format!("/Users/{scim_id}");
    let mut call = |op: Op, e: &Executed, t: Instant| {
        out.timings.push((op, t.elapsed() / e.attempts.max(1)));
        out.errors.extend(e.errors.iter().cloned());
        matches!(&e.outcome, Ok(rep) if rep.is_success() || rep.status == 404)
    };
    let ok = if mode == Missing::Delete {
        let t = Instant::now();
        let e = execute(&c, &r, Method::DELETE, &path, None, false, 17).await;
        call(Op::DeleteUser, &e, t)
    } else {
        // A dialect that deactivates by PUT sends the whole user back: read it first.
        let mut user = Value::Null;
        if d.deactivate == crate::client::dialect::DeactivateStyle::Put {
            let t = Instant::now();
            let e = execute(&c, &r, Method::GET, &path, None, false, 19).await;
            if !call(Op::GetUser, &e, t) {
                return Retired { ok: false, ..out };
            }
            user = e
                .outcome
                .as_ref()
                .ok()
                .and_then(|rep| serde_json::from_slice(&rep.body).ok())
                .unwrap_or(Value::Null);
            if user.is_null() {
                // 404: the user is gone already; nothing to deactivate.
                return Retired { ok: true, ..out };
            }
        }
        let s = d.deactivate(&scim_id, &user);
        let body = s.body.map(|b| serde_json::to_vec(&b).unwrap_or_default());
        let method = Method::from_bytes(s.method.as_bytes()).unwrap_or(Method::PATCH);
        let t = Instant::now();
        let e = execute(&c, &r, method, &s.path, body.as_deref(), false, 23).await;
        call(Op::DeactivateUser, &e, t)
    };
    out.ok = ok;
    out
}

/// What was done with users no longer in the export.
#[derive(Default)]
struct MissingTotals {
    missing: u64,
    deactivated: u64,
    deleted: u64,
    failed: u64,
    refused: Option<String>,
}

impl MissingTotals {
    fn add(&mut self, rec: &mut Recorder, st: &super::state::State, r: Retired) {
        for (op, d) in r.timings {
            rec.record(op, d);
        }
        for e in r.errors {
            rec.error(e);
        }
        match (r.ok, r.mode) {
            (false, _) => self.failed += 1,
            (true, Missing::Delete) => {
                self.deleted += 1;
                st.record(super::state::Record::ForgetUser {
                    external_id: r.external_id,
                });
            }
            (true, _) => {
                self.deactivated += 1;
                // Hash 0: never equal to a real row's, so a user who comes back is
                // updated (and reactivated) instead of skipped as unchanged.
                st.record(super::state::Record::User {
                    external_id: r.external_id,
                    scim_id: r.scim_id,
                    content_hash: 0,
                    outcome: "deactivated",
                });
            }
        }
    }
}

fn account(rec: &mut Recorder, op: Op, e: &Executed, d: Duration) -> u64 {
    rec.record(op, d / e.attempts.max(1));
    for k in &e.errors {
        rec.error(k.clone());
    }
    matches!(&e.outcome, Ok(r) if r.is_success()) as u64
}

struct GroupResult {
    name: String,
    /// The group's SCIM id, once found or created.
    id: Option<String>,
    members_hash: u64,
    created: bool,
    existed: bool,
    added: u64,
    removed: u64,
    skipped: u64,
    timings: Vec<(Op, Duration)>,
    errors: Vec<String>,
}

/// What the groups phase did, summed over groups.
#[derive(Default)]
struct GroupTotals {
    created: u64,
    existing: u64,
    unchanged: u64,
    failed: u64,
    added: u64,
    removed: u64,
    skipped: u64,
}

impl GroupTotals {
    fn add(&mut self, rec: &mut Recorder, state: Option<&super::state::State>, g: GroupResult) {
        for (op, d) in g.timings {
            rec.record(op, d);
        }
        for e in g.errors {
            rec.error(e);
        }
        self.created += g.created as u64;
        self.existing += g.existed as u64;
        self.failed += (!g.created && !g.existed) as u64;
        self.added += g.added;
        self.removed += g.removed;
        self.skipped += g.skipped;
        // Recorded only when every member went in, so a partial group is retried next run.
        if let (Some(st), Some(id), 0) = (state, &g.id, g.skipped) {
            st.record(super::state::Record::Group {
                name: g.name,
                scim_id: id.clone(),
                members_hash: g.members_hash,
            });
        }
    }
}

/// Hash of a group's sorted member SCIM ids: an unchanged hash means nothing to send.
fn members_hash(members: &[u32], ids: &[Option<Box<str>>]) -> u64 {
    use std::hash::BuildHasher;
    let mut v: Vec<&str> = members
        .iter()
        .filter_map(|&m| ids.get(m as usize).and_then(|x| x.as_deref()))
        .collect();
    v.sort_unstable();
    foldhash::quality::FixedState::with_seed(0x6a0b).hash_one(&v)
}

async fn find_group(
    c: &ScimClient,
    r: &RetryPolicy,
    name: &str,
) -> (Executed, Instant, Option<String>) {
    let t = Instant::now();
    let path = format!(
        "/Groups?filter={}&excludedAttributes=members",
        filter_query("displayName", name)
    );
    let e = execute(c, r, Method::GET, &path, None, false, 7).await;
    let id =
        match &e.outcome {
            Ok(rep) if rep.is_success() => serde_json::from_slice::<Value>(&rep.body)
                .ok()
                .and_then(|v| {
                    v["Resources"]
                        .get(0)
                        .and_then(|x| x["id"].as_str())
                        .map(str::to_string)
                }),
            _ => None,
        };
    (e, t, id)
}

#[allow(clippy::too_many_arguments)]
async fn provision_group(
    c: &ScimClient,
    r: &RetryPolicy,
    dialect: &'static Dialect,
    lookup: Lookup,
    name: &str,
    members: &[u32],
    ids: &[Option<Box<str>>],
    per: usize,
    known_id: Option<String>,
    members_hash: u64,
) -> GroupResult {
    let mut g = GroupResult {
        name: name.to_string(),
        id: None,
        members_hash,
        created: false,
        existed: known_id.is_some(),
        added: 0,
        removed: 0,
        skipped: 0,
        timings: Vec::new(),
        errors: Vec::new(),
    };
    let call = |op: Op, e: &Executed, t: Instant, g: &mut GroupResult| {
        g.timings.push((op, t.elapsed() / e.attempts.max(1)));
        g.errors.extend(e.errors.iter().cloned());
    };
    let mut id = known_id;
    if id.is_none() && lookup != Lookup::Never {
        let (e, t, found) = find_group(c, r, name).await;
        call(Op::LookupGroup, &e, t, &mut g);
        if found.is_some() {
            g.existed = true;
            id = found;
        }
    }
    // As for users: a create that may have reached the server is looked up, and sent
    // again only if it did not.
    let body = serde_json::to_vec(&json!({"schemas": [urns::GROUP], "displayName": name}))
        .unwrap_or_default();
    for _ in 0..3 {
        if id.is_some() {
            break;
        }
        let t = Instant::now();
        let e = execute(c, r, Method::POST, "/Groups", Some(&body), true, 11).await;
        call(Op::CreateGroup, &e, t, &mut g);
        match (&e.decision, &e.outcome) {
            (Decision::Done, Ok(rep)) if rep.is_success() => {
                id = id_from(rep);
                g.created = id.is_some();
                break;
            }
            (d @ (Decision::Conflict | Decision::LookUpFirst), _) => {
                let conflict = *d == Decision::Conflict;
                let (e, t, found) = find_group(c, r, name).await;
                call(Op::LookupGroup, &e, t, &mut g);
                if found.is_some() {
                    // Someone else's group on a 409; ours if only the answer was lost.
                    g.existed = conflict;
                    g.created = !conflict;
                    id = found;
                }
            }
            _ => break,
        }
    }
    let Some(gid) = id else {
        g.skipped = members.len() as u64;
        return g;
    };
    g.id = Some(gid.clone());
    let member_ids: Vec<&str> = members
        .iter()
        .filter_map(|&m| ids.get(m as usize).and_then(|x| x.as_deref()))
        .collect();
    g.skipped += (members.len() - member_ids.len()) as u64;
    // A group that existed: memberships follow the export. Read its members and send
    // only the difference; a target that never returns members (AWS) gets every add
    // again (adds are idempotent) and no removals.
    let mut to_add: Vec<&str> = member_ids.clone();
    if g.existed {
        let t = Instant::now();
        let e = execute(
            c,
            r,
            Method::GET,
            &format!("/Groups/{gid}"),
            None,
            false,
            29,
        )
        .await;
        call(Op::GetGroup, &e, t, &mut g);
        let current: Option<std::collections::HashSet<String>> = e
            .outcome
            .as_ref()
            .ok()
            .filter(|rep| rep.is_success())
            .and_then(|rep| serde_json::from_slice::<Value>(&rep.body).ok())
            .and_then(|v| {
                v.get("members").and_then(Value::as_array).map(|a| {
                    a.iter()
                        .filter_map(|m| m["value"].as_str().map(str::to_string))
                        .collect()
                })
            });
        if let Some(current) = current {
            let wanted: std::collections::HashSet<&str> = member_ids.iter().copied().collect();
            to_add.retain(|id| !current.contains(*id));
            let leaving: Vec<&str> = current
                .iter()
                .map(String::as_str)
                .filter(|id| !wanted.contains(id))
                .collect();
            let batch = per.min(dialect.member_remove_batch).max(1);
            for (chunk, s) in leaving
                .chunks(batch)
                .zip(dialect.remove_members(&gid, &leaving, batch))
            {
                let body = s.body.map(|b| serde_json::to_vec(&b).unwrap_or_default());
                let t = Instant::now();
                let e = execute(c, r, Method::PATCH, &s.path, body.as_deref(), false, 31).await;
                call(Op::RemoveMembers, &e, t, &mut g);
                match &e.outcome {
                    Ok(rep) if rep.is_success() => g.removed += chunk.len() as u64,
                    _ => g.skipped += chunk.len() as u64,
                }
            }
        }
    }
    for (chunk, s) in to_add
        .chunks(per)
        .zip(dialect.add_members(&gid, &to_add, per))
    {
        let body = s.body.map(|b| serde_json::to_vec(&b).unwrap_or_default());
        let t = Instant::now();
        let e = execute(c, r, Method::PATCH, &s.path, body.as_deref(), false, 13).await;
        call(Op::PatchMembers, &e, t, &mut g);
        match &e.outcome {
            Ok(rep) if rep.is_success() => g.added += chunk.len() as u64,
            _ => g.skipped += chunk.len() as u64,
        }
    }
    g
}
