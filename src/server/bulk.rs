//! `/Bulk` (RFC 7644 §3.7): operations run one by one through the same service calls as
//! single requests, with `bulkId` references resolved — including references to
//! resources created later in the same request (a group listing users that follow it),
//! which are retried once their target exists.

use serde_json::Value;

use super::render::Projection;
use super::service::{Ctx, Outcome};
use super::store::Kind;
use crate::scim::error::ScimError;
use crate::scim::model::{
    BulkOperation, BulkOperationResult, BulkRequest, BulkResponse, PatchRequest,
};
use crate::scim::urns;
use std::collections::HashMap;

const PREFIX: &str = "bulkId:";

/// Replaces `bulkId:x` strings by the ids they name; returns the first unknown bulkId.
fn substitute(v: &mut Value, ids: &HashMap<String, String>) -> Option<String> {
    match v {
        Value::String(s) => {
            let key = s.strip_prefix(PREFIX)?;
            match ids.get(key) {
                Some(id) => {
                    *s = id.clone();
                    None
                }
                None => Some(key.to_string()),
            }
        }
        Value::Array(a) => a.iter_mut().find_map(|x| substitute(x, ids)),
        Value::Object(m) => m.values_mut().find_map(|x| substitute(x, ids)),
        _ => None,
    }
}

fn parse_path(path: &str) -> Result<(Kind, Option<&str>), ScimError> {
    let p = path.trim().trim_start_matches('/');
    let (ep, id) = match p.split_once('/') {
        Some((e, i)) => (e, Some(i)),
        None => (p, None),
    };
    let kind = if ep.eq_ignore_ascii_case("Users") {
        Kind::User
    } else if ep.eq_ignore_ascii_case("Groups") {
        Kind::Group
    } else {
        return Err(ScimError::invalid_path(format!(
            "bulk path '{path}' names no resource endpoint; use /Users or /Groups"
        )));
    };
    Ok((kind, id.filter(|s| !s.is_empty())))
}

enum Step {
    Done(BulkOperationResult),
    /// Waiting for the bulkId it references.
    Blocked(String),
}

fn error_result(op: &BulkOperation, e: &ScimError) -> BulkOperationResult {
    BulkOperationResult {
        method: op.method.clone(),
        bulk_id: op.bulk_id.clone(),
        version: None,
        location: None,
        status: e.status.to_string(),
        response: serde_json::to_value(e.to_body()).ok(),
    }
}

fn execute(
    ctx: &Ctx,
    op: &BulkOperation,
    ids: &HashMap<String, String>,
) -> Result<Step, ScimError> {
    let mut path = op.path.clone().unwrap_or_default();
    if let Some(i) = path.find(PREFIX) {
        let key = &path[i + PREFIX.len()..];
        match ids.get(key) {
            Some(id) => path = format!("{}{id}", &path[..i]),
            None => return Ok(Step::Blocked(key.to_string())),
        }
    }
    let mut data = op.data.clone();
    if let Some(d) = data.as_mut() {
        if let Some(missing) = substitute(d, ids) {
            return Ok(Step::Blocked(missing));
        }
    }
    let (kind, id) = parse_path(&path)?;
    let method = op.method.to_ascii_uppercase();
    let proj = Projection::default_view();
    let need_data = || {
        data.clone()
            .ok_or_else(|| ScimError::invalid_syntax(format!("{method} needs 'data'")))
    };
    let need_id = || {
        id.ok_or_else(|| {
            ScimError::invalid_path(format!(
                "{method} needs a path with an id, e.g. /Users/{{id}}"
            ))
        })
    };
    let out: Outcome = match method.as_str() {
        "POST" => {
            if op.bulk_id.is_none() {
                return Err(ScimError::invalid_value(
                    "a bulk POST needs a 'bulkId' (RFC 7644 §3.7)",
                ));
            }
            if id.is_some() {
                return Err(ScimError::invalid_path(
                    "a bulk POST path names an endpoint, not a resource",
                ));
            }
            ctx.create(kind, need_data()?, &proj)?
        }
        "PUT" => ctx.replace(kind, need_id()?, need_data()?, op.version.as_deref(), &proj)?,
        "PATCH" => {
            let req: PatchRequest = serde_json::from_value(need_data()?).map_err(|e| {
                ScimError::invalid_syntax(format!("bulk PATCH data is not a PatchOp: {e}"))
            })?;
            ctx.patch(kind, need_id()?, req, op.version.as_deref(), &proj, false)?
        }
        "DELETE" => ctx.delete(kind, need_id()?, op.version.as_deref())?,
        other => {
            return Err(ScimError::invalid_syntax(format!(
                "unknown bulk method '{other}'; use POST, PUT, PATCH or DELETE"
            )))
        }
    };
    let location = out
        .location
        .or_else(|| id.map(|i| format!("{}{}/{i}", ctx.base_url, kind.endpoint())));
    Ok(Step::Done(BulkOperationResult {
        method: op.method.clone(),
        bulk_id: op.bulk_id.clone(),
        version: out.etag,
        location,
        status: out.status.to_string(),
        response: None,
    }))
}

/// Runs a bulk request; returns the BulkResponse body.
pub fn run(ctx: &Ctx, max_operations: usize, req: BulkRequest) -> Result<Vec<u8>, ScimError> {
    if req.operations.len() > max_operations {
        return Err(ScimError::too_many(
            413,
            format!(
                "{} operations exceed maxOperations ({max_operations}); split the request",
                req.operations.len()
            ),
        ));
    }
    let fail_limit = req.fail_on_errors.filter(|n| *n > 0);
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<BulkOperationResult>> = vec![None; req.operations.len()];
    let mut pending: Vec<(usize, String)> = (0..req.operations.len())
        .map(|i| (i, String::new()))
        .collect();
    let mut errors = 0u64;
    'passes: loop {
        let mut progressed = false;
        let mut still = Vec::new();
        for (i, _) in std::mem::take(&mut pending) {
            if fail_limit.is_some_and(|n| errors >= n) {
                break 'passes;
            }
            let op = &req.operations[i];
            match execute(ctx, op, &ids) {
                Ok(Step::Blocked(key)) => still.push((i, key)),
                Ok(Step::Done(r)) => {
                    if let (Some(b), Some(loc)) = (&op.bulk_id, &r.location) {
                        if op.method.eq_ignore_ascii_case("POST") {
                            if let Some(id) = loc.rsplit('/').next() {
                                ids.insert(b.clone(), id.to_string());
                            }
                        }
                    }
                    results[i] = Some(r);
                    progressed = true;
                }
                Err(e) => {
                    errors += 1;
                    results[i] = Some(error_result(op, &e));
                    progressed = true;
                }
            }
        }
        pending = still;
        if pending.is_empty() || !progressed {
            break;
        }
    }
    for (i, key) in pending {
        let op = &req.operations[i];
        if fail_limit.is_some_and(|n| errors >= n) {
            break;
        }
        errors += 1;
        let e = ScimError::new(
            409,
            Some(crate::scim::error::ScimType::InvalidValue),
            format!("references bulkId '{key}', which no operation in this request created (or the references are circular)"),
        );
        results[i] = Some(error_result(op, &e));
    }
    let resp = BulkResponse {
        schemas: vec![urns::BULK_RESPONSE.to_string()],
        operations: results.into_iter().flatten().collect(),
    };
    serde_json::to_vec(&resp).map_err(|e| ScimError::new(500, None, e.to_string()))
}
