//! HTTP handlers: turn requests into [`service`](super::service) calls and outcomes into
//! `application/scim+json` responses. Nothing here decides SCIM semantics.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::render::Projection;
use super::service::{Ctx, ListQuery, Outcome};
use super::store::Kind;
use super::App;
use crate::scim::error::ScimError;
use crate::scim::model::{PatchRequest, SearchRequest};
use crate::scim::urns;

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_body()).unwrap_or_default();
        let mut r = Response::new(Body::from(body));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(urns::MEDIA_TYPE),
        );
        if self.status == 401 {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimload\""),
            );
        }
        r
    }
}

pub fn scim_json(status: u16, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(urns::MEDIA_TYPE),
    );
    r
}

fn respond(o: Outcome) -> Response {
    let mut r = match o.body {
        Some(b) => scim_json(o.status, b),
        None => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::from_u16(o.status).unwrap_or(StatusCode::OK);
            r
        }
    };
    if let Some(e) = o.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        r.headers_mut().insert(header::ETAG, e);
    }
    if o.status == 201 {
        if let Some(l) = o.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            r.headers_mut().insert(header::LOCATION, l);
        }
    }
    r
}

fn result(r: Result<Outcome, ScimError>) -> Response {
    match r {
        Ok(o) => respond(o),
        Err(e) => e.into_response(),
    }
}

/// `http://host:port` as the client addressed us (or the configured public URL).
pub fn base_url(app: &App, headers: &HeaderMap) -> String {
    if let Some(b) = &app.cfg.base_url {
        return b.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn header(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Query parameters by case-insensitive name (`startIndex`, `startindex`).
struct Params(Vec<(String, String)>);

impl Params {
    fn from(req: &Request) -> Result<Self, ScimError> {
        let q: Query<Vec<(String, String)>> = Query::try_from_uri(req.uri())
            .map_err(|e| ScimError::invalid_syntax(format!("malformed query string: {e}")))?;
        Ok(Params(q.0))
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn int(&self, name: &str) -> Result<Option<i64>, ScimError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ScimError::invalid_value(format!("'{name}' must be an integer, got '{v}'"))
            }),
        }
    }
    fn list_query(&self) -> Result<ListQuery, ScimError> {
        Ok(ListQuery {
            filter: self.get("filter").map(str::to_string),
            start_index: self.int("startIndex")?,
            count: self.int("count")?,
            sort_by: self.get("sortBy").map(str::to_string),
            sort_order: self.get("sortOrder").map(str::to_string),
            attributes: self.get("attributes").map(str::to_string),
            excluded_attributes: self.get("excludedAttributes").map(str::to_string),
            cursor: self.get("cursor").map(str::to_string),
        })
    }
    fn projection(&self, kind: Kind) -> Result<Projection, ScimError> {
        Projection::parse(
            kind.rt(),
            self.get("attributes"),
            self.get("excludedAttributes"),
        )
    }
}

async fn body_bytes(app: &App, req: Request) -> Result<Bytes, ScimError> {
    axum::body::to_bytes(req.into_body(), app.cfg.max_body)
        .await
        .map_err(|_| {
            ScimError::new(
                413,
                None,
                format!(
                    "request body larger than {} bytes; send less per request",
                    app.cfg.max_body
                ),
            )
        })
}

pub fn parse_json<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, ScimError> {
    serde_json::from_slice(b)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not valid SCIM JSON: {e}")))
}

fn ctx<'a>(app: &'a App, base: &'a str) -> Ctx<'a> {
    Ctx {
        store: &app.store,
        profile: app.cfg.profile,
        base_url: base,
        async_create: app.cfg.async_create,
    }
}

pub async fn list(kind: Kind, State(app): State<Arc<App>>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    let run = || -> Result<Outcome, ScimError> {
        let q = Params::from(&req)?.list_query()?;
        ctx(&app, &base).list(kind, &q)
    };
    result(run())
}

pub async fn create(kind: Kind, State(app): State<Arc<App>>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    let params = match Params::from(&req).and_then(|p| p.projection(kind)) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let body = match body_bytes(&app, req)
        .await
        .and_then(|b| parse_json::<Value>(&b))
    {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    result(ctx(&app, &base).create(kind, body, &params))
}

pub async fn search(kind: Kind, State(app): State<Arc<App>>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    let run = async {
        let b = body_bytes(&app, req).await?;
        let s: SearchRequest = parse_json(&b)?;
        let q = search_query(s);
        ctx(&app, &base).list(kind, &q)
    };
    result(run.await)
}

fn search_query(s: SearchRequest) -> ListQuery {
    ListQuery {
        filter: s.filter,
        start_index: s.start_index,
        count: s.count,
        sort_by: s.sort_by,
        sort_order: s.sort_order,
        attributes: s.attributes.map(|a| a.join(",")),
        excluded_attributes: s.excluded_attributes.map(|a| a.join(",")),
        cursor: s.cursor,
    }
}

/// POST /.search at the root: users, then groups, paged as one list (RFC 7644 §3.4.3).
pub async fn root_search(State(app): State<Arc<App>>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    let run = async {
        let b = body_bytes(&app, req).await?;
        let q = search_query(parse_json(&b)?);
        if q.cursor.is_some() || !app.cfg.profile.index_paging {
            return Err(ScimError::invalid_value(
                "a search across resource types pages by startIndex only",
            ));
        }
        let c = ctx(&app, &base);
        let count = q
            .count
            .unwrap_or(app.cfg.profile.default_page_size as i64)
            .max(0);
        let start = q.start_index.unwrap_or(1).max(1);
        let mut total = 0i64;
        let mut resources: Vec<Value> = Vec::new();
        let mut skip = start - 1;
        for kind in [Kind::User, Kind::Group] {
            let probe = ListQuery {
                count: Some(0),
                start_index: Some(1),
                ..q.clone()
            };
            let n = lists_total(&c.list(kind, &probe)?)?;
            total += n;
            let want = count - resources.len() as i64;
            if want > 0 && skip < n {
                let page = ListQuery {
                    start_index: Some(skip + 1),
                    count: Some(want),
                    ..q.clone()
                };
                let o = c.list(kind, &page)?;
                let v: Value = parse_json(o.body.as_deref().unwrap_or(b"{}"))?;
                if let Some(Value::Array(items)) = v.get("Resources") {
                    resources.extend(items.iter().cloned());
                }
            }
            skip = (skip - n).max(0);
        }
        let body = serde_json::json!({
            "schemas": [urns::LIST_RESPONSE],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        });
        Ok(Outcome {
            status: 200,
            body: serde_json::to_vec(&body).ok(),
            etag: None,
            location: None,
        })
    };
    result(run.await)
}

fn lists_total(o: &Outcome) -> Result<i64, ScimError> {
    let v: Value = parse_json(o.body.as_deref().unwrap_or(b"{}"))?;
    Ok(v.get("totalResults").and_then(Value::as_i64).unwrap_or(0))
}

pub async fn get_one(
    kind: Kind,
    id: String,
    State(app): State<Arc<App>>,
    req: Request,
) -> Response {
    let base = base_url(&app, req.headers());
    let run = || {
        let proj = Params::from(&req)?.projection(kind)?;
        ctx(&app, &base).get(
            kind,
            &id,
            &proj,
            header(req.headers(), header::IF_NONE_MATCH),
        )
    };
    result(run())
}

pub async fn replace(
    kind: Kind,
    id: String,
    State(app): State<Arc<App>>,
    req: Request,
) -> Response {
    let base = base_url(&app, req.headers());
    let if_match = header(req.headers(), header::IF_MATCH).map(str::to_string);
    let run = async {
        let proj = Params::from(&req)?.projection(kind)?;
        let body: Value = parse_json(&body_bytes(&app, req).await?)?;
        ctx(&app, &base).replace(kind, &id, body, if_match.as_deref(), &proj)
    };
    result(run.await)
}

pub async fn patch(kind: Kind, id: String, State(app): State<Arc<App>>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    let if_match = header(req.headers(), header::IF_MATCH).map(str::to_string);
    let run = async {
        let params = Params::from(&req)?;
        let want_body =
            params.get("attributes").is_some() || params.get("excludedAttributes").is_some();
        let proj = params.projection(kind)?;
        let body: PatchRequest = parse_json(&body_bytes(&app, req).await?)?;
        ctx(&app, &base).patch(kind, &id, body, if_match.as_deref(), &proj, want_body)
    };
    result(run.await)
}

pub async fn delete(kind: Kind, id: String, State(app): State<Arc<App>>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    result(ctx(&app, &base).delete(kind, &id, header(req.headers(), header::IF_MATCH)))
}

pub async fn bulk(State(app): State<Arc<App>>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    let run = async {
        if !app.cfg.profile.bulk {
            return Err(ScimError::new(
                501,
                None,
                "this server does not support /Bulk; send requests one by one",
            ));
        }
        let limit = app.cfg.bulk_max_payload;
        let b = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                ScimError::too_many(
                    413,
                    format!("bulk payload larger than maxPayloadSize ({limit} bytes); split it"),
                )
            })?;
        let request: crate::scim::model::BulkRequest = parse_json(&b)?;
        let ops = request.operations.len() as u32;
        let body = super::bulk::run(&ctx(&app, &base), app.cfg.bulk_max_operations, request)?;
        let delay = app.cfg.faults.bulk_op_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay * ops).await;
        }
        Ok(Outcome {
            status: 200,
            body: Some(body),
            etag: None,
            location: None,
        })
    };
    result(run.await)
}

pub async fn not_found(req: Request) -> Response {
    ScimError::not_found(format!(
        "no SCIM endpoint at {}; use /Users, /Groups, /Bulk, /ServiceProviderConfig, /Schemas or /ResourceTypes",
        req.uri().path()
    ))
    .into_response()
}
