//! Users in `/Bulk` requests (RFC 7644 §3.7), when the target offers Bulk and the import
//! may use it (`--bulk auto|always`): up to maxOperations creates per request, within
//! maxPayloadSize. Per-request overhead is paid once per batch instead of once per user.
//!
//! Nothing is lost to a batch: an operation that did not end in 201 (a 409 for a user
//! that exists, a 5xx, a throttled batch) is sent again on its own through the worker,
//! which upserts on 409 — so a batch that was applied but whose answer was lost costs
//! lookups, never duplicates.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::Method;
use serde_json::Value;

use super::bulk_groups::{self, Answer, Done, GroupOp};
use super::worker::{Finished, Job, UserResult, Worker};
use crate::client::retry::execute;
use crate::client::{Reply, TransportError};
use crate::dispatch::InFlight;
use crate::mapping::build::with_manager;
use crate::metrics::Op;
use crate::scim::urns;

/// Bytes one operation adds around its user body.
pub(super) const OP_OVERHEAD: usize = 96;
/// Bytes of the request envelope.
pub(super) const ENVELOPE: usize = 128;

/// The parts of a BulkResponse the import reads; the resources a server may echo in
/// `response` are skipped, not built.
#[derive(serde::Deserialize)]
struct BulkAnswer {
    #[serde(rename = "Operations", default)]
    operations: Vec<OpAnswer>,
}

#[derive(serde::Deserialize)]
struct OpAnswer {
    #[serde(rename = "bulkId")]
    bulk_id: Option<String>,
    #[serde(default)]
    status: Value,
    location: Option<String>,
    response: Option<IdOnly>,
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: Option<String>,
}

/// Operations per Bulk request unless `--bulk-size` says otherwise: measured on 200k
/// users into `scimload serve`, batches of 100 took 10.2 s and 212 MB peak RSS, batches
/// of 1,000 took 14.5 s and 412 MB (long batches hold the server's write lock and the
/// answers are large).
pub(super) const DEFAULT_OPS: usize = 100;

/// Starts a BulkRequest body (RFC 7644 §3.7): the envelope up to the first operation;
/// the caller appends comma-separated operations and `]}`.
pub(super) fn open_request(body: &mut Vec<u8>) {
    body.extend_from_slice(br#"{"schemas":[""#);
    body.extend_from_slice(urns::BULK_REQUEST.as_bytes());
    body.extend_from_slice(br#""],"failOnErrors":0,"Operations":["#);
}

/// The operations of a BulkResponse in answer order — (bulkId, status, the id its
/// location names) — read without building the echoed resources; none when the request
/// itself failed.
pub(super) fn answers(outcome: &Result<Reply, TransportError>) -> Option<Vec<Answer>> {
    let r = outcome.as_ref().ok().filter(|r| r.is_success())?;
    let a = serde_json::from_slice::<BulkAnswer>(&r.body).ok()?;
    Some(
        a.operations
            .into_iter()
            .map(|op| {
                let status = match op.status {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    other => other.get("code").map(|c| c.to_string()).unwrap_or_default(),
                };
                let id = op
                    .location
                    .as_deref()
                    .and_then(|l| l.rsplit('/').next())
                    .map(str::to_string)
                    .or_else(|| op.response.and_then(|r| r.id));
                (op.bulk_id, status, id)
            })
            .collect(),
    )
}

/// Sends one batch of new users, with their group operations, as a Bulk request; every
/// user comes back finished, and the groups' outcome says which memberships went in.
pub(super) async fn provision_bulk(
    worker: Arc<Worker>,
    batch: Vec<(Job, Option<String>)>,
    groups: Vec<GroupOp>,
) -> (Vec<Finished>, Option<Done>) {
    let mut body = Vec::with_capacity(
        ENVELOPE
            + batch
                .iter()
                .map(|(j, _)| j.user.body().len() + OP_OVERHEAD)
                .sum::<usize>(),
    );
    open_request(&mut body);
    for (k, (job, manager)) in batch.iter().enumerate() {
        if k > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"method":"POST","path":"/Users","bulkId":"u"#);
        body.extend_from_slice(job.seq.to_string().as_bytes());
        body.extend_from_slice(br#"","data":"#);
        match manager {
            Some(m) => body.extend_from_slice(&with_manager(job.user.body(), m)),
            None => body.extend_from_slice(job.user.body()),
        }
        body.push(b'}');
    }
    bulk_groups::write(&groups, &mut body);
    body.extend_from_slice(b"]}");

    // A batch is never re-sent blindly after a lost answer: it creates users (and maybe
    // groups), and a server without uniqueness would keep both copies. Its users are
    // then looked up one by one before anything is sent again, its groups looked up.
    let mut e = execute(
        &worker.client,
        &worker.retry,
        Method::POST,
        "/Bulk",
        Some(&body),
        true,
        batch.first().map_or(0, |(j, _)| j.seq as u64),
    )
    .await;
    // The request's attempts, counted with the first user of the batch.
    let mut attempts: Vec<_> = e.take_attempts(Op::Bulk).collect();
    // (bulkId, status, id) in answer order, read without building the echoed resources.
    let answers = answers(&e.outcome);
    let results: HashMap<&str, (&String, &Option<String>)> = answers
        .iter()
        .flatten()
        .filter_map(|(b, s, id)| Some((b.as_deref()?, (s, id))))
        .collect();
    let done = (!groups.is_empty()).then(|| bulk_groups::outcome(groups, answers.as_deref()));
    let mut out = Vec::with_capacity(batch.len());
    // Operations the batch did not create go again one by one, 16 at a time.
    let mut again: InFlight<Finished> = InFlight::new(16);
    let mut first = true;
    for (job, manager) in batch {
        let key = format!("u{}", job.seq);
        match results.get(key.as_str()) {
            Some((status, Some(id))) if status.starts_with("201") => {
                let mut f = Finished::new(&job);
                f.manager_in_body = manager.is_some();
                f.result = UserResult::Created(id.clone());
                if std::mem::take(&mut first) {
                    f.attempts.append(&mut attempts);
                }
                out.push(f);
            }
            other => {
                // Not created in the batch: once more on its own (upsert on 409). When
                // the batch got no answer at all it may have been applied: look first.
                let status = other.map_or("no answer", |(s, _)| s.as_str()).to_string();
                let unanswered = answers.is_none();
                let w = worker.clone();
                let task = async move {
                    if unanswered {
                        let mut f = Finished::new(&job);
                        if let Ok(Some(id)) = w.find(&mut f, job.user.user_name()).await {
                            f.manager_in_body = manager.is_some();
                            f.result = UserResult::Created(id);
                            f.errors
                                .push("bulk request unanswered; found applied".into());
                            return f;
                        }
                    }
                    let mut f = w.provision(job, manager, None).await;
                    f.errors.push(format!("bulk operation {status}"));
                    f
                };
                again.start(task, |f| out.push(f)).await;
            }
        }
    }
    again.drain(|f| out.push(f)).await;
    if first {
        // Nothing was created by the batch itself: still count the request.
        if let Some(f) = out.first_mut() {
            f.attempts.append(&mut attempts);
        }
    }
    (out, done)
}
