//! One user's way to the target: the worker that looks it up, creates or updates it in
//! the dialect's form (upsert on 409, lookup before re-sending a create that may have
//! been applied), and the dispatcher's tally of what became of every user.

use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::Value;

use super::config::Lookup;
use crate::client::dialect::Dialect;
use crate::client::retry::{error_key, execute, Attempt, Executed};
use crate::client::{Decision, Reply, RetryPolicy, ScimClient, TransportError};
use crate::mapping::build::with_manager;
use crate::mapping::MappedUser;
use crate::metrics::{Op, Recorder};

/// One accepted user on its way to the dispatcher.
pub(super) struct Job {
    pub(super) seq: u32,
    pub(super) user: MappedUser,
    /// The manager's sequence number, when it appeared earlier in the file.
    pub(super) manager: Option<u32>,
}

/// The dispatcher's view of one finished user.
pub(super) enum UserResult {
    Created(String),
    Updated(String),
    Pending,
    Failed { status: String, detail: String },
}

pub(super) struct Finished {
    pub(super) seq: u32,
    pub(super) row: u64,
    pub(super) external_id: String,
    pub(super) user_name: String,
    pub(super) content_hash: u64,
    pub(super) result: UserResult,
    /// Every attempt sent for this user, each its own sample.
    pub(super) attempts: Vec<(Op, Attempt)>,
    /// Errors that were no attempt's answer (one operation of a /Bulk reply).
    pub(super) errors: Vec<String>,
    /// The manager travelled in the create or update body: set if the user was.
    pub(super) manager_in_body: bool,
    /// The row names a manager.
    pub(super) has_manager: bool,
}

/// Mixed into the content hash the state records for a user whose manager is still to
/// be set by PATCH: a run killed before that PATCH leaves a hash no row matches, so the
/// next run updates the user, manager included, instead of finding it unchanged.
pub(super) const MANAGER_PENDING: u64 = 0x6d67_7270_656e_6421;

impl Finished {
    /// A user not sent yet.
    pub(super) fn new(job: &Job) -> Self {
        Finished {
            seq: job.seq,
            row: job.user.row,
            external_id: job.user.external_id().to_string(),
            user_name: job.user.user_name().to_string(),
            content_hash: job.user.content_hash(),
            result: UserResult::Pending,
            attempts: Vec::new(),
            errors: Vec::new(),
            manager_in_body: false,
            has_manager: job.user.manager().is_some(),
        }
    }
}

pub(super) fn detail(o: &Result<Reply, TransportError>) -> String {
    match o {
        Ok(r) => {
            let said = r
                .error()
                .and_then(|e| e.detail)
                .unwrap_or_else(|| String::from_utf8_lossy(&r.body).chars().take(200).collect());
            match r.status {
                // Renewable credentials were renewed once already (ScimClient::send).
                401 => format!("{said} — the target refused the credentials; check SCIM_TOKEN / --token-file, or the OAuth client's --oauth-scope / --oauth-audience"),
                403 => format!("{said} — the credentials lack a permission; grant the client provisioning rights on the target"),
                _ => said,
            }
        }
        Err(e) => e.to_string(),
    }
}

/// `attr eq "value"`, percent-encoded for a query string.
pub(super) fn filter_query(attr: &str, value: &str) -> String {
    crate::scim::filter::query_escape(&format!(
        "{attr} eq {}",
        serde_json::to_string(value).unwrap_or_default()
    ))
}

/// failed.csv: one line per row reference the target refused.
pub(super) type FailedWriter = csv::Writer<BufWriter<File>>;

/// The dispatcher's results, owned by the dispatcher alone.
pub(super) struct Tally {
    pub(super) rec: Recorder,
    /// SCIM id of each accepted user, by sequence number.
    pub(super) ids: super::ids::IdTable,
    pub(super) created: u64,
    pub(super) updated: u64,
    pub(super) unchanged: u64,
    pub(super) state: Option<super::state::State>,
    /// Users accepted but not visible yet (202, or 201 without an id):
    /// (seq, userName, externalId, content hash).
    pub(super) pending: Vec<(u32, String, String, u64)>,
    pub(super) failed: u64,
    pub(super) failed_out: Option<FailedWriter>,
    /// Managers that travelled in a body the target accepted.
    pub(super) managers_set: u64,
}

impl Tally {
    pub(super) fn new(
        rec: Recorder,
        state: Option<super::state::State>,
        failed_out: Option<FailedWriter>,
    ) -> Self {
        Tally {
            rec,
            ids: Default::default(),
            created: 0,
            updated: 0,
            unchanged: 0,
            state,
            pending: Vec::new(),
            failed: 0,
            failed_out,
            managers_set: 0,
        }
    }

    pub(super) fn finish(&mut self, f: Finished) {
        for (op, a) in &f.attempts {
            self.rec.attempt(*op, &a.timing, a.error.as_deref());
        }
        for e in f.errors {
            self.rec.error(e);
        }
        let created = matches!(f.result, UserResult::Created(_));
        match f.result {
            UserResult::Created(id) | UserResult::Updated(id) => {
                if created {
                    self.created += 1;
                } else {
                    self.updated += 1;
                }
                self.managers_set += f.manager_in_body as u64;
                self.ids.set(f.seq, &id);
                if let Some(st) = &self.state {
                    let pending = f.has_manager && !f.manager_in_body;
                    st.record(super::state::Record::User {
                        external_id: f.external_id.clone(),
                        scim_id: id,
                        content_hash: f.content_hash ^ if pending { MANAGER_PENDING } else { 0 },
                        outcome: if created { "created" } else { "updated" },
                    });
                }
            }
            UserResult::Pending => {
                self.pending
                    .push((f.seq, f.user_name, f.external_id, f.content_hash))
            }
            UserResult::Failed { status, detail } => {
                self.failed += 1;
                self.write_failed(f.row, &f.external_id, "user", &status, &detail);
            }
        }
    }

    /// One line of failed.csv: the row, what of it failed (the user, or its manager or
    /// membership reference), the status and the SCIM error type apart, and why.
    pub(super) fn write_failed(
        &mut self,
        row: u64,
        external_id: &str,
        what: &str,
        status: &str,
        detail: &str,
    ) {
        if let Some(w) = self.failed_out.as_mut() {
            // `status` is "400 invalidPath" for a SCIM error, a bare code otherwise.
            let (code, scim_type) = match status.split_once(' ') {
                Some((c, t))
                    if c.bytes().all(|b| b.is_ascii_digit())
                        && t != "lookup"
                        && !t.contains(' ') =>
                {
                    (c, t)
                }
                _ => (status, ""),
            };
            let _ = w.write_record([&row.to_string(), external_id, what, code, scim_type, detail]);
        }
    }

    pub(super) fn id(&self, seq: u32) -> Option<&str> {
        self.ids.get(seq)
    }
}

pub(super) struct Worker {
    pub(super) client: ScimClient,
    pub(super) retry: RetryPolicy,
    pub(super) lookup: Lookup,
    pub(super) dialect: &'static Dialect,
}

impl Worker {
    pub(super) async fn timed(
        &self,
        f: &mut Finished,
        op: Op,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        creates: bool,
    ) -> Executed {
        let mut e = execute(
            &self.client,
            &self.retry,
            method,
            path,
            body,
            creates,
            f.seq as u64 ^ 0x5eed,
        )
        .await;
        f.attempts.extend(e.take_attempts(op));
        e
    }

    /// `GET /Users?filter=userName eq "x"` as the dialect asks it: the id, if the user
    /// exists.
    pub(super) async fn find(
        &self,
        f: &mut Finished,
        user_name: &str,
    ) -> Result<Option<String>, String> {
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
    pub(super) async fn update(&self, f: &mut Finished, id: &str, body: &[u8]) -> UserResult {
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
            let payload = s.body;
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
    pub(super) async fn provision(
        self: Arc<Self>,
        job: Job,
        manager_id: Option<String>,
        known_id: Option<String>,
    ) -> Finished {
        let mut f = Finished::new(&job);
        f.manager_in_body = manager_id.is_some();
        let body: std::borrow::Cow<[u8]> = match &manager_id {
            Some(m) => with_manager(job.user.body(), m).into(),
            None => job.user.body().into(),
        };
        if let Some(id) = known_id {
            f.result = self.update(&mut f, &id, &body).await;
            // Deleted on the target since the last run: create it again.
            if !matches!(&f.result, UserResult::Failed { status, .. } if status == "404") {
                return f;
            }
        }
        if self.lookup == Lookup::Always {
            match self.find(&mut f, job.user.user_name()).await {
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
                (Decision::Done, Ok(r)) if r.is_success() => match r.resource_id() {
                    Some(id) => UserResult::Created(id),
                    // A 201 without an id: an asynchronous provider; verified later.
                    None => UserResult::Pending,
                },
                // 409: the user exists; look it up and update it (upsert), never a retry loop.
                (Decision::Conflict, _) => match self.find(&mut f, job.user.user_name()).await {
                    Ok(Some(id)) => self.update(&mut f, &id, &body).await,
                    Ok(None) => UserResult::Failed { status: "409".into(), detail: "409 on create, but no user with this userName was found; the conflict is on another attribute (externalId?)".into() },
                    Err(d) => UserResult::Failed { status: "409 lookup".into(), detail: d },
                },
                (Decision::LookUpFirst, _) => match self.find(&mut f, job.user.user_name()).await {
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

/// Asynchronously created users (202, or 201 without an id) are looked up by userName
/// until they appear, for at most about 30 s; those that never do stay pending.
pub(super) async fn verify_pending(
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
                attempts: Vec::new(),
                errors: Vec::new(),
                manager_in_body: false,
                has_manager: false,
            };
            match worker.find(&mut f, &name).await {
                Ok(Some(id)) => {
                    f.result = UserResult::Created(id);
                    t.finish(f);
                }
                _ => {
                    for (op, a) in &f.attempts {
                        t.rec.attempt(*op, &a.timing, a.error.as_deref());
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

/// Records every attempt of `e` as `op`; 1 if it ended 2xx.
pub(super) fn account(rec: &mut Recorder, op: Op, e: &mut Executed) -> u64 {
    for (op, a) in e.take_attempts(op) {
        rec.attempt(op, &a.timing, a.error.as_deref());
    }
    matches!(&e.outcome, Ok(r) if r.is_success()) as u64
}
