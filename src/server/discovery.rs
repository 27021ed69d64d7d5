//! Discovery endpoints (RFC 7644 §4): ServiceProviderConfig, Schemas, ResourceTypes.
//! The configuration is derived from the active profile and limits, so a client that
//! sizes its requests from it (as scimload's importer does) sees the truth.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::handlers::{base_url, scim_json};
use super::store::Kind;
use super::App;
use crate::scim::error::ScimError;
use crate::scim::model::{
    AuthenticationScheme, BulkConfig, FilterConfig, Meta, PaginationConfig, ServiceProviderConfig,
    Supported,
};
use crate::scim::urns;

pub fn service_provider_config(app: &App, base: &str) -> ServiceProviderConfig {
    let p = app.cfg.profile;
    ServiceProviderConfig {
        schemas: vec![urns::SERVICE_PROVIDER_CONFIG.to_string()],
        documentation_uri: None,
        patch: Supported { supported: true },
        bulk: BulkConfig {
            supported: p.bulk,
            max_operations: if p.bulk {
                app.cfg.bulk_max_operations as u64
            } else {
                0
            },
            max_payload_size: if p.bulk {
                app.cfg.bulk_max_payload as u64
            } else {
                0
            },
        },
        filter: FilterConfig {
            supported: true,
            max_results: p.max_page_size as u64,
        },
        change_password: Supported { supported: false },
        sort: Supported { supported: p.sort },
        etag: Supported { supported: p.etag },
        pagination: Some(PaginationConfig {
            cursor: p.cursor_paging,
            index: p.index_paging,
            default_pagination_method: Some(
                if p.index_paging { "index" } else { "cursor" }.to_string(),
            ),
            default_page_size: Some(p.default_page_size as u64),
            max_page_size: Some(p.max_page_size as u64),
            cursor_timeout: Some(3600),
        }),
        authentication_schemes: vec![AuthenticationScheme {
            kind: "oauthbearertoken".into(),
            name: "OAuth Bearer Token".into(),
            description: "Authentication with a bearer token in the Authorization header".into(),
            spec_uri: Some("https://www.rfc-editor.org/rfc/rfc6750".into()),
            documentation_uri: None,
            primary: Some(true),
        }],
        meta: Some(Meta {
            resource_type: Some("ServiceProviderConfig".into()),
            location: Some(format!("{base}/ServiceProviderConfig")),
            ..Meta::default()
        }),
    }
}

fn list(items: Vec<Value>) -> Vec<u8> {
    let n = items.len();
    serde_json::to_vec(&json!({
        "schemas": [urns::LIST_RESPONSE],
        "totalResults": n,
        "itemsPerPage": n,
        "startIndex": 1,
        "Resources": items,
    }))
    .unwrap_or_default()
}

pub async fn spc(State(app): State<Arc<App>>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    scim_json(
        200,
        serde_json::to_vec(&service_provider_config(&app, &base)).unwrap_or_default(),
    )
}

pub async fn schemas(State(app): State<Arc<App>>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    scim_json(
        200,
        list(
            app.cfg
                .profile
                .schemas()
                .iter()
                .map(|s| s.to_json(&base))
                .collect(),
        ),
    )
}

pub async fn schema(State(app): State<Arc<App>>, Path(id): Path<String>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    match app
        .cfg
        .profile
        .schemas()
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(&id))
    {
        Some(s) => scim_json(
            200,
            serde_json::to_vec(&s.to_json(&base)).unwrap_or_default(),
        ),
        None => ScimError::not_found(format!("no schema '{id}'; GET /Schemas lists them"))
            .into_response(),
    }
}

pub async fn resource_types(State(app): State<Arc<App>>, req: Request) -> Response {
    let base = base_url(&app, req.headers());
    scim_json(
        200,
        list(
            [Kind::User, Kind::Group]
                .map(|k| app.cfg.profile.rt(k).to_json(&base))
                .to_vec(),
        ),
    )
}

pub async fn resource_type(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let base = base_url(&app, req.headers());
    match [Kind::User, Kind::Group]
        .map(|k| app.cfg.profile.rt(k))
        .into_iter()
        .find(|t| t.name.eq_ignore_ascii_case(&id))
    {
        Some(t) => scim_json(
            200,
            serde_json::to_vec(&t.to_json(&base)).unwrap_or_default(),
        ),
        None => ScimError::not_found(format!(
            "no resource type '{id}'; GET /ResourceTypes lists them"
        ))
        .into_response(),
    }
}
