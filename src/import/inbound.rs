//! `--dialect entra-inbound`: users into Entra ID through its API-driven inbound
//! provisioning endpoint (Microsoft Graph, synchronizationJob: bulkUpload) — the way an
//! HR system feeds Entra, not the way Entra feeds an app.
//!
//! The export's users travel as SCIM BulkRequests of at most 50 `POST /Users`
//! operations (the endpoint's maximum), each user with the enterprise and custom
//! extension attributes the mapping writes and its manager as the manager's externalId
//! (the provisioning job resolves it), paced under 40 requests/s (the endpoint's limit,
//! the `entra-inbound` preset). The endpoint answers 202: a 2xx here says the request was
//! queued, not that anyone was provisioned. So every row stays *pending* under the id of
//! the request that carried it until a status read confirms it (`--inbound-status URL`
//! with `{request_id}`, or the 202's `Location`); what is not confirmed within
//! `--inbound-wait` ends pending, with its request id in pending.csv and in the state,
//! and a re-run asks after those requests instead of sending their rows again.
//!
//! Status answers are read in two shapes: the status resource of `serve --profile
//! entra-inbound` (`operations[]` with `bulkId`, `externalId`, `status`, `id`, `error`),
//! and Graph's provisioning logs (`value[]` with `sourceIdentity.id`,
//! `provisioningStatusInfo.status`), following `@odata.nextLink`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::Value;

use super::config::ImportConfig;
use super::ingest::{ingest, IngestError, IngestOptions, RowOutcome};
use super::rejects::RejectSink;
use super::screen::Duplicates;
use super::state::{KnownUser, Record, State};
use crate::client::retry::{execute, Attempt, Executed};
use crate::client::ScimClient;
use crate::dispatch::InFlight;
use crate::limits::{Preset, TargetLimits, INBOUND_BATCH};
use crate::mapping::build::with_manager;
use crate::mapping::{MappedUser, MappingSpec};
use crate::metrics::{Op, Recorder};
use crate::results::import::ImportSummary;
pub use crate::results::import::InboundOutcome;
use crate::scim::urns;

/// What `--dialect entra-inbound` is told beyond the import's configuration.
#[derive(Debug, Clone)]
pub struct InboundOptions {
    /// The status of one upload: a URL with `{request_id}` (or without, for a log that
    /// covers every upload); `None`: the 202's `Location`, when it carries one.
    pub status_url: Option<String>,
    /// How long, after the last upload, outcomes are polled for before the rows still
    /// unconfirmed are left pending.
    pub wait: Duration,
    /// Users per upload (at most 50).
    pub batch: usize,
}

impl Default for InboundOptions {
    fn default() -> Self {
        InboundOptions {
            status_url: None,
            wait: Duration::from_secs(120),
            batch: INBOUND_BATCH as usize,
        }
    }
}

/// One row on its way: sent, or pending from an earlier run.
#[derive(Debug, Clone)]
struct Row {
    row: u64,
    external_id: String,
    content_hash: u64,
    /// The state knew it (with another content): an outcome is an update.
    known: bool,
}

/// One upload whose rows wait for their outcome.
#[derive(Debug)]
struct Open {
    request_id: String,
    /// Path (and query) of its status resource, when known.
    status: Option<String>,
    /// bulkId → row.
    rows: HashMap<String, Row>,
}

/// Scheme and authority of a URL, and its path with the query.
fn split_url(url: &str) -> Result<(String, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|_| {
        format!("{url} is not a URL; give http(s)://host/… with spaces percent-encoded (%20)")
    })?;
    let (Some(scheme), Some(auth)) = (uri.scheme_str(), uri.authority()) else {
        return Err(format!(
            "{url} is not an absolute URL; give http(s)://host/…"
        ));
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    Ok((format!("{scheme}://{auth}"), path))
}

/// The status path of an upload: the template with its id, else the 202's Location.
fn status_path(
    origin: &str,
    template: Option<&str>,
    request_id: &str,
    location: Option<&str>,
) -> Option<String> {
    let url = match template {
        Some(t) => t.replace("{request_id}", request_id),
        None => location?.to_string(),
    };
    if url.starts_with('/') {
        return Some(url);
    }
    match split_url(&url) {
        Ok((o, p)) if o.eq_ignore_ascii_case(origin) => Some(p),
        _ => None,
    }
}

/// One operation's outcome as a status read tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEntry {
    pub bulk_id: Option<String>,
    pub external_id: Option<String>,
    /// `Some(Ok(id))` provisioned, `Some(Err(why))` refused, `None` still pending.
    pub outcome: Option<Result<String, String>>,
}

/// Reads a status answer in either shape (see the module comment); the second value is
/// the next page of a provisioning log.
pub fn read_status(body: &[u8]) -> (Vec<StatusEntry>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (Vec::new(), None);
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mut out = Vec::new();
    if let Some(ops) = v
        .get("operations")
        .or_else(|| v.get("Operations"))
        .and_then(Value::as_array)
    {
        for op in ops {
            let status = s(op, "status").unwrap_or_default().to_ascii_lowercase();
            let outcome = match status.as_str() {
                "success" | "succeeded" | "completed" => Some(Ok(s(op, "id").unwrap_or_default())),
                "failure" | "failed" => {
                    Some(Err(s(op, "error").unwrap_or_else(|| "refused".into())))
                }
                _ => None,
            };
            out.push(StatusEntry {
                bulk_id: s(op, "bulkId"),
                external_id: s(op, "externalId"),
                outcome,
            });
        }
    }
    if let Some(entries) = v.get("value").and_then(Value::as_array) {
        for e in entries {
            let info = e
                .get("provisioningStatusInfo")
                .or_else(|| e.get("statusInfo"));
            let status = info
                .and_then(|i| s(i, "status"))
                .unwrap_or_default()
                .to_ascii_lowercase();
            let why = info
                .and_then(|i| i.get("errorInformation"))
                .and_then(|x| s(x, "reason").or_else(|| s(x, "errorCode")));
            let target = e.get("targetIdentity").and_then(|t| s(t, "id"));
            let outcome = match status.as_str() {
                "success" | "warning" => Some(Ok(target.unwrap_or_default())),
                "failure" => Some(Err(why.unwrap_or_else(|| "failure".into()))),
                "skipped" => Some(Err(why.unwrap_or_else(|| {
                    "skipped by the provisioning job (out of scope?)".into()
                }))),
                _ => None,
            };
            out.push(StatusEntry {
                bulk_id: None,
                external_id: e.get("sourceIdentity").and_then(|t| s(t, "id")),
                outcome,
            });
        }
    }
    (out, s(&v, "@odata.nextLink"))
}

/// The rate limit the endpoint publishes, unless the caller set one of their own.
fn with_inbound_limit(limits: &TargetLimits) -> TargetLimits {
    let mut l = limits.clone();
    if !l.buckets.iter().any(|b| b.ops.contains(&Op::BulkUpload)) {
        let p = Preset::EntraInbound.limits();
        l.buckets.extend(p.buckets);
        l.users_per_request = p.users_per_request;
        if l.name == "none" {
            l.name = p.name;
            l.source = p.source;
        }
    }
    l
}

/// What the import writes of a row it could not place: failed.csv.
struct Failures(Option<csv::Writer<BufWriter<File>>>);

impl Failures {
    fn write(&mut self, row: &Row, what: &str, status: &str, detail: &str) {
        if let Some(w) = &mut self.0 {
            let _ = w.write_record([
                row.row.to_string().as_str(),
                &row.external_id,
                what,
                status,
                "",
                detail,
            ]);
        }
    }
}

/// An upload as its task hands it back: its rows by bulkId, the exchange.
type Sent = (Vec<(String, Row)>, Executed);

/// A status read: its path, what it said, reads sent (pages), each read's attempts.
type StatusRead = (String, Vec<StatusEntry>, u64, Vec<(Op, Attempt)>);

/// What the uploads came to, owned by the dispatcher alone.
struct Tally {
    rec: Recorder,
    out: InboundOutcome,
    /// Uploads whose rows wait for an outcome.
    open: Vec<Open>,
    failures: Failures,
    failed: u64,
    state: Option<State>,
}

impl Tally {
    fn record(&self, r: Record) {
        if let Some(st) = &self.state {
            st.record(r);
        }
    }

    /// An upload answered: its rows pending under its request id, or failed with it.
    fn settle(&mut self, (rows, mut e): Sent, origin: &str, template: Option<&str>) {
        for (op, a) in e.take_attempts(Op::BulkUpload) {
            self.rec.attempt(op, &a.timing, a.error.as_deref());
        }
        match &e.outcome {
            Ok(r) if r.is_success() => {
                self.out.uploads_accepted += 1;
                let request_id = r
                    .request_id
                    .clone()
                    .or_else(|| {
                        r.location
                            .as_deref()
                            .and_then(|l| l.rsplit('/').next())
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| "(no request id given)".into());
                let status = status_path(origin, template, &request_id, r.location.as_deref());
                for (_, row) in &rows {
                    self.record(Record::Pending {
                        external_id: row.external_id.clone(),
                        content_hash: row.content_hash,
                        request_id: request_id.clone(),
                        status_path: status.clone(),
                    });
                }
                self.open.push(Open {
                    request_id,
                    status,
                    rows: rows.into_iter().collect(),
                });
            }
            other => {
                self.out.uploads_failed += 1;
                let (status, detail) = match other {
                    Ok(r) => (
                        r.status.to_string(),
                        r.error().and_then(|b| b.detail).unwrap_or_default(),
                    ),
                    Err(e) => ("transport".to_string(), e.to_string()),
                };
                for (_, row) in &rows {
                    self.failed += 1;
                    self.failures.write(row, "bulk_upload", &status, &detail);
                }
            }
        }
    }

    /// What a status read said about the rows of the uploads it covers; `counts` gets
    /// the confirmed (created, updated).
    fn apply(&mut self, path: &str, entries: &[StatusEntry], counts: &mut (u64, u64)) {
        // Where each waiting row is, by bulkId and by externalId: a provisioning log
        // covering every upload has an entry per row, and a search of every upload for
        // every entry was 800 × 40,000 comparisons a round for a 40,000-row export.
        let mut by_bulk: HashMap<&str, usize> = HashMap::new();
        let mut by_ext: HashMap<&str, (usize, &str)> = HashMap::new();
        for (i, o) in self.open.iter().enumerate() {
            if o.status.as_deref() != Some(path) {
                continue;
            }
            for (k, r) in &o.rows {
                by_bulk.insert(k.as_str(), i);
                by_ext.insert(r.external_id.as_str(), (i, k.as_str()));
            }
        }
        let found: Vec<(usize, String, Result<String, String>)> = entries
            .iter()
            .filter_map(|e| {
                let outcome = e.outcome.clone()?;
                let (i, key) = match e
                    .bulk_id
                    .as_deref()
                    .and_then(|b| Some((*by_bulk.get(b)?, b)))
                {
                    Some(hit) => hit,
                    None => *by_ext.get(e.external_id.as_deref()?)?,
                };
                Some((i, key.to_string(), outcome))
            })
            .collect();
        let mut settled = Vec::new();
        for (i, key, outcome) in found {
            if let Some(row) = self.open[i].rows.remove(&key) {
                settled.push((row, outcome));
            }
        }
        for (row, outcome) in settled {
            match outcome {
                Ok(id) => {
                    self.out.confirmed += 1;
                    if row.known {
                        counts.1 += 1
                    } else {
                        counts.0 += 1
                    }
                    self.record(Record::User {
                        external_id: row.external_id.clone(),
                        scim_id: if id.is_empty() {
                            "(confirmed)".into()
                        } else {
                            id
                        },
                        content_hash: row.content_hash,
                        outcome: if row.known { "updated" } else { "created" },
                    });
                }
                Err(why) => {
                    self.out.refused += 1;
                    self.failed += 1;
                    self.failures.write(&row, "provisioning", "refused", &why);
                    // Not kept: the next run sends it again.
                    self.record(Record::ForgetUser {
                        external_id: row.external_id.clone(),
                    });
                }
            }
        }
    }
}

pub async fn run(
    path: &Path,
    spec: &MappingSpec,
    ingest_opts: &IngestOptions,
    cfg: &ImportConfig,
    inbound: &InboundOptions,
    progress: impl Fn(String),
) -> Result<ImportSummary, IngestError> {
    let t0 = Instant::now();
    let started = std::time::SystemTime::now();
    let sink = |e: String| IngestError::Sink(e);
    let (origin, upload_path) = split_url(&cfg.base_url).map_err(sink)?;
    if let Some(t) = &inbound.status_url {
        if !t.starts_with('/') && split_url(t).map_err(sink)?.0 != origin {
            return Err(sink(format!(
                "--inbound-status {t} is not on {origin}: the status is read with the target's credentials, so give a URL on the same host"
            )));
        }
    }
    let batch = inbound.batch.clamp(1, INBOUND_BATCH as usize);
    let limits = with_inbound_limit(&cfg.limits);
    let in_flight = cfg
        .limits
        .max_in_flight
        .map_or(cfg.concurrency, |m| cfg.concurrency.min(m))
        .clamp(1, 64);
    let (client, throttle) =
        ScimClient::paced(&origin, &cfg.client, in_flight, cfg.adaptive, &limits)
            .map_err(|e| sink(e.to_string()))?;
    // A refused credential stops the import before a row is read.
    client
        .authenticate()
        .await
        .map_err(|e| sink(format!("cannot reach the target {}: {e}", cfg.base_url)))?;

    let mut state = match &cfg.state {
        Some(p) => Some(
            State::open(p, &cfg.base_url, &path.display().to_string())
                .map_err(|e| sink(e.to_string()))?,
        ),
        None => None,
    };
    let known: HashMap<String, KnownUser> = state
        .as_mut()
        .map(|s| std::mem::take(&mut s.users))
        .unwrap_or_default();

    // Source → map on a thread; accepted users come over in chunks.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<MappedUser>>(8);
    let mut rejects = RejectSink::new(cfg.rejects.as_deref())?;
    let (p2, s2, o2) = (path.to_path_buf(), spec.clone(), ingest_opts.clone());
    let reader = tokio::task::spawn_blocking(
        move || -> Result<(u64, BTreeMap<&'static str, u64>), IngestError> {
            let mut rows = 0u64;
            let mut dups = Duplicates::for_input(&p2);
            ingest(&p2, &s2, &o2, |b| {
                let mut chunk = Vec::with_capacity(b.len());
                for o in b {
                    rows += 1;
                    match dups.screen(o) {
                        RowOutcome::User(u) => chunk.push(u),
                        RowOutcome::Rejected(r) => rejects.take(&r)?,
                    }
                }
                tx.blocking_send(chunk)
                    .map_err(|_| "the dispatcher stopped".to_string())
            })?;
            Ok((rows, rejects.finish()?))
        },
    );

    let failures = Failures(match &cfg.failed {
        Some(p) => {
            let mut w = csv::Writer::from_writer(BufWriter::new(
                File::create(p).map_err(|e| sink(format!("cannot write {}: {e}", p.display())))?,
            ));
            let _ = w.write_record(["row", "externalId", "what", "status", "scimType", "detail"]);
            Some(w)
        }
        None => None,
    });
    let mut t = Tally {
        rec: Recorder::with_live(cfg.live.clone()),
        out: InboundOutcome {
            status_from: match &inbound.status_url {
                Some(u) => u.clone(),
                None => "the 202's Location".into(),
            },
            ..InboundOutcome::default()
        },
        open: Vec::new(),
        failures,
        failed: 0,
        state,
    };
    let (mut unchanged, mut users) = (0u64, 0u64);
    // Rows pending from an earlier run, by their request: asked after, not sent again.
    let mut earlier: HashMap<String, Open> = HashMap::new();
    let mut uploads: InFlight<Sent> = InFlight::new(in_flight);
    let mut body = Vec::new();
    let mut ops: Vec<(String, Row)> = Vec::new();
    let mut seq = 0u64;
    let template = inbound.status_url.as_deref();

    loop {
        let chunk = rx.recv().await;
        let last = chunk.is_none();
        for u in chunk.unwrap_or_default() {
            users += 1;
            let hash = u.content_hash();
            let row = Row {
                row: u.row,
                external_id: u.external_id().to_string(),
                content_hash: hash,
                known: false,
            };
            match known.get(u.external_id()) {
                Some(k) if k.content_hash == hash => match &k.request_id {
                    None => {
                        unchanged += 1;
                        continue;
                    }
                    Some(req) => {
                        // Sent before and not confirmed: ask after that request — when
                        // there is a way to; else it goes again (an upload is
                        // idempotent), or it would stay pending for good.
                        let status = status_path(&origin, template, req, None)
                            .or_else(|| k.status_path.clone());
                        if let Some(status) = status {
                            let entry = earlier.entry(req.clone()).or_insert_with(|| Open {
                                request_id: req.clone(),
                                status: Some(status),
                                rows: HashMap::new(),
                            });
                            entry.rows.insert(format!("x:{}", row.external_id), row);
                            continue;
                        }
                        push_op(&mut body, &mut ops, &u, row);
                    }
                },
                Some(k) => {
                    let mut row = row;
                    row.known = k.request_id.is_none();
                    push_op(&mut body, &mut ops, &u, row);
                }
                None => push_op(&mut body, &mut ops, &u, row),
            }
            if ops.len() >= batch {
                seq += 1;
                let task = upload(&client, cfg, &upload_path, &mut body, &mut ops, seq);
                uploads
                    .start(task, |sent| t.settle(sent, &origin, template))
                    .await;
            }
        }
        if last {
            break;
        }
    }
    if !ops.is_empty() {
        seq += 1;
        let task = upload(&client, cfg, &upload_path, &mut body, &mut ops, seq);
        uploads
            .start(task, |sent| t.settle(sent, &origin, template))
            .await;
    }
    uploads
        .drain(|sent| t.settle(sent, &origin, template))
        .await;
    let (rows, rejected_by) = reader
        .await
        .map_err(|e| sink(format!("the reader thread failed: {e}")))??;
    progress(format!(
        "users: {} uploads accepted (202), {} refused; {} rows unchanged; {} rows pending from earlier runs",
        t.out.uploads_accepted,
        t.out.uploads_failed,
        unchanged,
        earlier.values().map(|o| o.rows.len()).sum::<usize>()
    ));

    // Outcomes: every open upload asked after until all its rows are settled or the
    // wait runs out; uploads sharing a status URL (a provisioning log) read it once.
    t.open.extend(earlier.into_values());
    // (created, updated)
    let mut counts = (0u64, 0u64);
    let deadline = Instant::now() + inbound.wait;
    let mut pause = Duration::from_millis(200);
    while t
        .open
        .iter()
        .any(|o| o.status.is_some() && !o.rows.is_empty())
    {
        let paths: BTreeSet<String> = t
            .open
            .iter()
            .filter(|o| !o.rows.is_empty())
            .filter_map(|o| o.status.clone())
            .collect();
        // One read per status resource, all at once: they are few (one per open upload,
        // or a single provisioning log).
        let mut reads: InFlight<StatusRead> = InFlight::new(usize::MAX);
        for p in paths {
            let (c, retry, origin) = (client.clone(), cfg.retry.clone(), origin.clone());
            reads.start_now(async move {
                let mut entries = Vec::new();
                let mut next = Some(p.clone());
                let (mut n, mut attempts) = (0u64, Vec::new());
                // A log may page; at most 100 pages a read.
                while let Some(path) = next.take().filter(|_| n < 100) {
                    let mut e = execute(&c, &retry, Method::GET, &path, None, false, n).await;
                    n += 1;
                    attempts.extend(e.take_attempts(Op::UploadStatus));
                    if let Ok(r) = &e.outcome {
                        if r.is_success() {
                            let (mut got, more) = read_status(&r.body);
                            entries.append(&mut got);
                            next = more.and_then(|m| status_path(&origin, None, "", Some(&m)));
                        }
                    }
                }
                (p, entries, n, attempts)
            });
        }
        while let Some((p, entries, n, attempts)) = reads.next().await {
            t.out.status_reads += n;
            for (op, a) in &attempts {
                t.rec.attempt(*op, &a.timing, a.error.as_deref());
            }
            t.apply(&p, &entries, &mut counts);
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
    if inbound.status_url.is_none() && t.open.iter().any(|o| o.status.is_none()) {
        t.out.status_from =
            "none: the target's 202 named no status resource; give --inbound-status".into();
    }
    let mut pending_out = match (&cfg.failed, t.open.iter().any(|o| !o.rows.is_empty())) {
        (Some(f), true) => {
            let p = f.with_file_name("pending.csv");
            let mut w = csv::Writer::from_writer(BufWriter::new(
                File::create(&p).map_err(|e| sink(format!("cannot write {}: {e}", p.display())))?,
            ));
            let _ = w.write_record(["row", "externalId", "request_id"]);
            Some(w)
        }
        _ => None,
    };
    let mut pending_requests = BTreeSet::new();
    for o in &t.open {
        if o.rows.is_empty() {
            continue;
        }
        pending_requests.insert(o.request_id.clone());
        let mut rows: Vec<&Row> = o.rows.values().collect();
        rows.sort_by_key(|r| r.row);
        for r in rows {
            t.out.pending += 1;
            if let Some(w) = &mut pending_out {
                let _ = w.write_record([r.row.to_string().as_str(), &r.external_id, &o.request_id]);
            }
        }
    }
    t.out.pending_requests = pending_requests.into_iter().collect();
    for w in [t.failures.0.take(), pending_out.take()]
        .into_iter()
        .flatten()
    {
        w.into_inner()
            .map_err(|e| sink(format!("cannot write failed.csv / pending.csv: {e}")))
            .and_then(|mut b| std::io::Write::flush(&mut b).map_err(|e| sink(e.to_string())))?;
    }
    if let Some(st) = t.state.take() {
        st.close().map_err(|e| sink(e.to_string()))?;
    }
    let elapsed = t0.elapsed();
    let rejected: u64 = rejected_by.values().sum();
    debug_assert_eq!(rows, users + rejected);
    let limits_projection = Some(crate::limits::project(
        &limits.published(),
        &crate::limits::ExportShape {
            users,
            ..Default::default()
        }
        .phases_under(&limits, 1),
    ));
    Ok(ImportSummary {
        limits_projection,
        inbound: Some(t.out.clone()),
        kind: "import".into(),
        tool: concat!("scimload ", env!("CARGO_PKG_VERSION")).into(),
        samples: "attempt".into(),
        started: crate::units::rfc3339(started),
        machine: crate::results::Machine::this(),
        input: path.display().to_string(),
        dialect: "entra-inbound".into(),
        concurrency: in_flight,
        member_batch: 0,
        bulk: format!("bulkUpload, {batch} a request"),
        lookup: "never".into(),
        export_groups: 0,
        export_memberships: 0,
        throttle: throttle.stats(),
        target: cfg.base_url.clone(),
        connection: client.describe(),
        rows,
        created: counts.0,
        updated: counts.1,
        unchanged,
        rejected,
        failed: t.failed,
        pending: t.out.pending,
        not_sent: 0,
        interrupted: false,
        groups_created: 0,
        groups_existing: 0,
        groups_unchanged: 0,
        groups_failed: 0,
        memberships_added: 0,
        memberships_removed: 0,
        memberships_skipped: 0,
        memberships_failed: 0,
        missing: 0,
        deactivated: 0,
        deleted: 0,
        missing_failed: 0,
        missing_refused: None,
        bulk_trial: None,
        managers_set: 0,
        managers_failed: 0,
        managers_unresolved: 0,
        schema: None,
        verification: None,
        rejects_by_reason: rejected_by
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        operations: t.rec.summary(elapsed),
        timeline: Some(t.rec.timeline),
        errors: t.rec.errors,
        elapsed_seconds: elapsed.as_secs_f64(),
        users_per_second: (counts.0 + counts.1) as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}

/// Appends one user to the upload being built.
fn push_op(body: &mut Vec<u8>, ops: &mut Vec<(String, Row)>, u: &MappedUser, row: Row) {
    if ops.is_empty() {
        body.clear();
        body.extend_from_slice(br#"{"schemas":[""#);
        body.extend_from_slice(urns::BULK_REQUEST.as_bytes());
        body.extend_from_slice(br#""],"Operations":["#);
    } else {
        body.push(b',');
    }
    // The row number is unique in the file, so it is unique in the request.
    let bulk_id = format!("r{}", row.row);
    body.extend_from_slice(br#"{"method":"POST","path":"/Users","bulkId":""#);
    body.extend_from_slice(bulk_id.as_bytes());
    body.extend_from_slice(br#"","data":"#);
    // The manager as its externalId: the provisioning job resolves references itself.
    match u.manager() {
        Some(m) => body.extend_from_slice(&with_manager(u.body(), m)),
        None => body.extend_from_slice(u.body()),
    }
    body.push(b'}');
    ops.push((bulk_id, row));
}

/// The upload built so far, to send. An upload is idempotent (users are matched on
/// their externalId), so a lost answer may be resent.
fn upload(
    client: &ScimClient,
    cfg: &ImportConfig,
    path: &str,
    body: &mut Vec<u8>,
    ops: &mut Vec<(String, Row)>,
    seq: u64,
) -> impl std::future::Future<Output = Sent> + Send + 'static {
    body.extend_from_slice(br#"],"failOnErrors":null}"#);
    let (c, retry, path) = (client.clone(), cfg.retry.clone(), path.to_string());
    let (b, rows) = (std::mem::take(body), std::mem::take(ops));
    async move {
        let e = execute(&c, &retry, Method::POST, &path, Some(&b), false, seq).await;
        (rows, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reads_both_shapes() {
        let (e, next) = read_status(
            br#"{"id":"q","status":"completed","operations":[
                {"bulkId":"r2","externalId":"7","status":"success","id":"u-1"},
                {"bulkId":"r3","externalId":"8","status":"failure","error":"no userName"},
                {"bulkId":"r4","externalId":"9","status":"pending"}]}"#,
        );
        assert_eq!(next, None);
        assert_eq!(e[0].outcome, Some(Ok("u-1".into())));
        assert_eq!(e[1].outcome, Some(Err("no userName".into())));
        assert_eq!(
            (e[2].bulk_id.as_deref(), &e[2].outcome),
            (Some("r4"), &None)
        );
        let (e, next) = read_status(
            br#"{"value":[{"sourceIdentity":{"id":"521195"},"targetIdentity":{"id":"aad-1"},
                 "provisioningStatusInfo":{"status":"success"}},
                {"sourceIdentity":{"id":"521196"},"statusInfo":{"status":"failure",
                 "errorInformation":{"reason":"duplicate UPN"}}}],
              "@odata.nextLink":"https://graph.example/beta/auditLogs/provisioning?$skiptoken=x"}"#,
        );
        assert_eq!(e[0].external_id.as_deref(), Some("521195"));
        assert_eq!(e[0].outcome, Some(Ok("aad-1".into())));
        assert_eq!(e[1].outcome, Some(Err("duplicate UPN".into())));
        assert!(next.unwrap().ends_with("skiptoken=x"));
    }

    #[test]
    fn status_urls_stay_on_the_targets_host() {
        let o = "https://graph.example";
        assert_eq!(
            status_path(o, Some("https://graph.example/up/{request_id}"), "7", None).as_deref(),
            Some("/up/7")
        );
        assert_eq!(
            status_path(o, None, "7", Some("/bulkUpload/7")).as_deref(),
            Some("/bulkUpload/7")
        );
        assert_eq!(status_path(o, None, "7", Some("https://elsewhere/x")), None);
        assert_eq!(status_path(o, None, "7", None), None);
    }
}
