//! Users the state knows that the export no longer has: deactivated in the dialect's
//! form, or deleted and forgotten (`--deactivate-missing`, `--delete-missing`).

use std::collections::HashSet;

use hyper::Method;
use serde_json::Value;

use super::config::{ImportConfig, Missing};
use super::state::KnownUser;
use super::worker::Tally;
use crate::client::dialect::Dialect;
use crate::client::retry::{execute, Attempt, Executed};
use crate::client::{RetryPolicy, ScimClient};
use crate::dispatch::InFlight;
use crate::metrics::{Op, Recorder};

/// How one missing user was handled.
pub(super) struct Retired {
    pub(super) external_id: String,
    pub(super) scim_id: String,
    pub(super) mode: Missing,
    /// Deactivated or deleted (or already gone: 404).
    pub(super) ok: bool,
    /// Every attempt sent for this user, each its own sample.
    pub(super) attempts: Vec<(Op, Attempt)>,
}

/// Deactivates (the dialect's way) or deletes one user the export no longer has.
pub(super) async fn retire(
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
        attempts: Vec::new(),
    };
    let path = format!("/Users/{scim_id}");
    let mut call = |op: Op, e: &mut Executed| {
        out.attempts.extend(e.take_attempts(op));
        matches!(&e.outcome, Ok(rep) if rep.is_success() || rep.status == 404)
    };
    let ok = if mode == Missing::Delete {
        let mut e = execute(&c, &r, Method::DELETE, &path, None, false, 17).await;
        call(Op::DeleteUser, &mut e)
    } else {
        // A dialect that deactivates by PUT sends the whole user back: read it first.
        let mut user = Value::Null;
        if d.deactivate == crate::client::dialect::DeactivateStyle::Put {
            let mut e = execute(&c, &r, Method::GET, &path, None, false, 19).await;
            if !call(Op::GetUser, &mut e) {
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
        let body = s.body;
        let method = Method::from_bytes(s.method.as_bytes()).unwrap_or(Method::PATCH);
        let mut e = execute(&c, &r, method, &s.path, body.as_deref(), false, 23).await;
        call(Op::DeactivateUser, &mut e)
    };
    out.ok = ok;
    out
}

/// What was done with users no longer in the export.
#[derive(Default)]
pub(super) struct MissingTotals {
    pub(super) missing: u64,
    pub(super) deactivated: u64,
    pub(super) deleted: u64,
    pub(super) failed: u64,
    pub(super) refused: Option<String>,
}

impl MissingTotals {
    pub(super) fn add(&mut self, rec: &mut Recorder, st: &super::state::State, r: Retired) {
        for (op, a) in &r.attempts {
            rec.attempt(*op, &a.timing, a.error.as_deref());
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

/// Users the state knows that the export no longer has (rejected rows are still in it):
/// deactivated or deleted at most `--concurrency` at a time, unless more of them are
/// missing than `--missing-limit` allows (a truncated file must not empty a tenant).
pub(super) async fn sync_missing(
    client: &ScimClient,
    cfg: &ImportConfig,
    t: &mut Tally,
    rejected_ids: &[String],
    known_at_start: usize,
) -> MissingTotals {
    let mut sync = MissingTotals::default();
    let Some(st) = t.state.as_mut() else {
        return sync;
    };
    let rejected: HashSet<&str> = rejected_ids.iter().map(String::as_str).collect();
    let missing: Vec<(String, KnownUser)> = st
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
    if cfg.missing == Missing::Keep {
        return sync;
    }
    if sync.missing as f64 > limit {
        sync.refused = Some(format!(
            "{} of the {} users the state knows are not in this export, more than --missing-limit {:.0}%; check that the file is complete, or raise --missing-limit",
            sync.missing,
            known_at_start,
            cfg.missing_limit * 100.0
        ));
        return sync;
    }
    let (rec, st) = (&mut t.rec, &*st);
    let mut inflight: InFlight<Retired> = InFlight::new(cfg.concurrency);
    for (external_id, k) in todo {
        let (c, r, d, mode) = (client.clone(), cfg.retry.clone(), cfg.dialect, cfg.missing);
        inflight
            .start(retire(c, r, d, mode, external_id, k.scim_id), |r| {
                sync.add(rec, st, r)
            })
            .await;
    }
    inflight.drain(|r| sync.add(rec, st, r)).await;
    sync
}
