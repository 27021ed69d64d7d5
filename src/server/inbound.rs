//! `serve --profile entra-inbound`: Entra ID's API-driven inbound provisioning endpoint,
//! emulated so that an importer can be tested against an answer that is not the outcome.
//!
//! As the real one (Microsoft Graph, synchronizationJob: bulkUpload): `POST /bulkUpload`
//! (also under the Graph path `…/synchronization/jobs/{job}/bulkUpload`) takes a SCIM
//! BulkRequest of at most 50 `POST /Users` operations sent as `application/scim+json`
//! (anything else is 400, as Graph answers "Invalid Data Format"), answers
//! `202 Accepted` with no body and a `request-id` header, and processes it later: each
//! user is matched on its externalId (the join key) and created or replaced. The 40
//! requests/s limit is the `entra-inbound` preset of the server's rate limits.
//!
//! Entra reports outcomes in its provisioning logs; this server offers a status resource
//! per request instead, named by the 202's `Location`: `GET /bulkUpload/{request-id}`,
//! `status` `accepted` until processed, then `completed` with one entry per operation
//! (`success` with the user's id, or `failure` with the reason).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::handlers::{base_url, parse_json};
use super::render::Projection;
use super::service::Ctx;
use super::store::Kind;
use super::App;
use crate::scim::error::ScimError;
use crate::scim::model::BulkRequest;

/// Operations one request may carry (Graph: "a maximum of 50 user operations").
pub const MAX_OPERATIONS: usize = 50;

/// What became of one operation of an upload.
#[derive(Debug, Clone)]
struct OpState {
    bulk_id: Option<String>,
    external_id: Option<String>,
    /// `pending`, `success`, `failure`.
    status: &'static str,
    id: Option<String>,
    error: Option<String>,
}

#[derive(Debug)]
struct Upload {
    completed: bool,
    ops: Vec<OpState>,
}

/// The uploads received and what became of them.
#[derive(Debug)]
pub struct Inbox {
    /// Time between the 202 and the processing of a request.
    pub delay: Duration,
    uploads: Mutex<HashMap<String, Upload>>,
}

impl Inbox {
    pub fn new(delay: Duration) -> Arc<Inbox> {
        Arc::new(Inbox {
            delay,
            uploads: Mutex::new(HashMap::new()),
        })
    }

    fn uploads(&self) -> std::sync::MutexGuard<'_, HashMap<String, Upload>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Uploads received and those processed (tests).
    pub fn counts(&self) -> (usize, usize) {
        let u = self.uploads();
        (u.len(), u.values().filter(|x| x.completed).count())
    }
}

fn inbox(app: &App) -> Result<&Arc<Inbox>, ScimError> {
    app.inbox.as_ref().ok_or_else(|| {
        ScimError::not_found(
            "no inbound provisioning endpoint here; start the server with --profile entra-inbound",
        )
    })
}

/// `POST /bulkUpload`.
pub async fn upload(State(app): State<Arc<App>>, req: Request) -> Response {
    match accept(&app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// `POST /servicePrincipals/{sp}/synchronization/jobs/{job}/bulkUpload`.
pub async fn upload_graph(
    Path(_): Path<(String, String)>,
    s: State<Arc<App>>,
    req: Request,
) -> Response {
    upload(s, req).await
}

async fn accept(app: &Arc<App>, req: Request) -> Result<Response, ScimError> {
    let inbox = inbox(app)?.clone();
    let scim_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(crate::scim::urns::MEDIA_TYPE));
    if !scim_json {
        return Err(ScimError::invalid_syntax(
            "Invalid Data Format: send the bulk request with Content-Type: application/scim+json",
        ));
    }
    let base = base_url(app, req.headers());
    let client_request_id = req.headers().get("client-request-id").cloned();
    let body = axum::body::to_bytes(req.into_body(), app.cfg.max_body)
        .await
        .map_err(|_| ScimError::too_many(413, "request body too large"))?;
    let request: BulkRequest = parse_json(&body)?;
    if request.operations.is_empty() || request.operations.len() > MAX_OPERATIONS {
        return Err(ScimError::new(
            400,
            None,
            format!(
                "a bulk upload carries 1 to {MAX_OPERATIONS} operations, not {}; split it",
                request.operations.len()
            ),
        ));
    }
    let id = app.store.new_id();
    let ops: Vec<OpState> = request
        .operations
        .iter()
        .map(|op| OpState {
            bulk_id: op.bulk_id.clone(),
            external_id: op
                .data
                .as_ref()
                .and_then(|d| d.get("externalId"))
                .and_then(Value::as_str)
                .map(str::to_string),
            status: "pending",
            id: None,
            error: None,
        })
        .collect();
    inbox.uploads().insert(
        id.clone(),
        Upload {
            completed: false,
            ops,
        },
    );
    let (app2, id2, base2) = (app.clone(), id.clone(), base.clone());
    tokio::spawn(async move {
        tokio::time::sleep(inbox.delay).await;
        process(&app2, &inbox, &id2, request, &base2);
    });
    let mut r = StatusCode::ACCEPTED.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("request-id", v);
    }
    if let Some(v) = client_request_id {
        h.insert("client-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{}/bulkUpload/{id}", base.trim_end_matches('/')))
    {
        h.insert(header::LOCATION, v);
    }
    Ok(r)
}

/// Applies an upload: each operation a create or, for a known externalId, a replace.
fn process(app: &App, inbox: &Inbox, id: &str, request: BulkRequest, base: &str) {
    let ctx = Ctx {
        store: &app.store,
        profile: app.cfg.profile,
        base_url: base,
        async_create: None,
    };
    let proj = Projection::default_view();
    let outcomes: Vec<Result<String, String>> = request
        .operations
        .into_iter()
        .map(|op| {
            let data = op.data.ok_or("the operation has no data")?;
            if !op.method.eq_ignore_ascii_case("POST")
                || op.path.as_deref().map(|p| p.trim_end_matches('/')) != Some("/Users")
            {
                return Err(format!(
                    "{} {}: only POST /Users is accepted",
                    op.method,
                    op.path.unwrap_or_default()
                ));
            }
            let ext = data
                .get("externalId")
                .and_then(Value::as_str)
                .ok_or("no externalId: it is the key users are matched on")?
                .to_string();
            let known = app
                .store
                .read()
                .table(Kind::User)
                .lookup_eq("externalId", &ext)
                .and_then(|ids| ids.first().map(|s| s.to_string()));
            let outcome = match &known {
                Some(uid) => ctx.replace(Kind::User, uid, data, None, &proj),
                None => ctx.create(Kind::User, data, &proj),
            }
            .map_err(|e| e.to_string())?;
            Ok(known.unwrap_or_else(|| {
                outcome
                    .location
                    .as_deref()
                    .and_then(|l| l.rsplit('/').next())
                    .unwrap_or_default()
                    .to_string()
            }))
        })
        .collect();
    let mut uploads = inbox.uploads();
    if let Some(u) = uploads.get_mut(id) {
        for (state, outcome) in u.ops.iter_mut().zip(outcomes) {
            match outcome {
                Ok(uid) => {
                    state.status = "success";
                    state.id = Some(uid);
                }
                Err(why) => {
                    state.status = "failure";
                    state.error = Some(why);
                }
            }
        }
        u.completed = true;
    }
}

/// `GET /bulkUpload/{request-id}`: what became of each operation of one upload.
pub async fn status(Path(id): Path<String>, State(app): State<Arc<App>>) -> Response {
    let run = || -> Result<Response, ScimError> {
        let inbox = inbox(&app)?;
        let uploads = inbox.uploads();
        let u = uploads
            .get(&id)
            .ok_or_else(|| ScimError::not_found(format!("no bulk upload {id}")))?;
        let ops: Vec<Value> = u
            .ops
            .iter()
            .map(|o| {
                json!({
                    "bulkId": o.bulk_id,
                    "externalId": o.external_id,
                    "status": o.status,
                    "id": o.id,
                    "error": o.error,
                })
            })
            .collect();
        let body = json!({
            "id": id,
            "status": if u.completed { "completed" } else { "accepted" },
            "operations": ops,
        });
        let mut r = Response::new(axum::body::Body::from(body.to_string()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::scim::urns::MEDIA_TYPE),
        );
        Ok(r)
    };
    run().unwrap_or_else(|e| e.into_response())
}
