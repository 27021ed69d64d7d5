//! The managers phase: a user whose manager was still in flight when it was sent (or
//! came later in the file) gets its manager by one PATCH once both exist. A PATCH that
//! fails is a failure of that row's reference — in failed.csv with its status and
//! scimType, never counted as set.

use hyper::Method;
use serde_json::json;

use super::config::ImportConfig;
use super::reader::Deferred;
use super::state::Record;
use super::worker::{account, detail, Tally};
use crate::client::retry::{error_key, execute, Executed};
use crate::client::ScimClient;
use crate::dispatch::InFlight;
use crate::metrics::Op;
use crate::scim::urns;

/// Counts one manager PATCH; true when it failed.
fn settle(t: &mut Tally, (mut e, m): (Executed, Deferred)) -> bool {
    if account(&mut t.rec, Op::PatchManager, &mut e) == 1 {
        t.managers_set += 1;
        if let (Some(st), Some(uid)) = (&t.state, t.ids.get(m.seq)) {
            // The user is now as its row says: the state can call it unchanged.
            st.record(Record::User {
                external_id: m.external_id.to_string(),
                scim_id: uid.to_string(),
                content_hash: m.content_hash,
                outcome: "updated",
            });
        }
        false
    } else {
        let status = error_key(&e.outcome).unwrap_or_default();
        t.write_failed(
            m.row,
            &m.external_id,
            "manager",
            &status,
            &detail(&e.outcome),
        );
        true
    }
}

/// Sets every deferred manager whose user and manager both have an id, at most
/// `--concurrency` at a time; returns how many failed.
pub(super) async fn set(
    client: &ScimClient,
    cfg: &ImportConfig,
    t: &mut Tally,
    deferred: Vec<Deferred>,
) -> u64 {
    let mut failed = 0u64;
    let mut inflight: InFlight<(Executed, Deferred)> = InFlight::new(cfg.concurrency);
    for m in deferred {
        let (Some(uid), Some(mid)) = (t.id(m.seq), t.id(m.manager)) else {
            continue;
        };
        let body = serde_json::to_vec(&json!({
            "schemas": [urns::PATCH_OP],
            "Operations": [{"op": "replace", "path": format!("{}:manager", urns::ENTERPRISE_USER), "value": {"value": mid}}]
        }))
        .unwrap_or_default();
        let (c, r, path) = (client.clone(), cfg.retry.clone(), format!("/Users/{uid}"));
        let task = async move {
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
        };
        inflight
            .start(task, |x| failed += settle(t, x) as u64)
            .await;
    }
    inflight.drain(|x| failed += settle(t, x) as u64).await;
    if let Some(w) = t.failed_out.as_mut() {
        let _ = w.flush();
    }
    failed
}

/// A manager that is not in the export will not be set by any run: these users are
/// recorded as they are, or every re-run would update them.
pub(super) fn record_unresolved(t: &Tally, unresolved: Vec<Deferred>) {
    let Some(st) = &t.state else { return };
    for m in unresolved {
        if let Some(uid) = t.ids.get(m.seq) {
            st.record(Record::User {
                external_id: m.external_id.to_string(),
                scim_id: uid.to_string(),
                content_hash: m.content_hash,
                outcome: "updated",
            });
        }
    }
}
