//! Bearer-token authentication (RFC 6750) for the embedded server. The token is compared
//! in constant time so that response timing does not reveal how much of a guess was
//! right.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::App;
use crate::scim::error::ScimError;

pub fn token_ok(expected: &str, authorization: Option<&str>) -> bool {
    let Some(h) = authorization else { return false };
    let Some(given) = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
    else {
        return false;
    };
    given.trim().as_bytes().ct_eq(expected.as_bytes()).into()
}

/// Discovery endpoints stay open: clients read them to learn how to authenticate.
fn is_discovery(path: &str) -> bool {
    ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes"]
        .iter()
        .any(|p| path.starts_with(p))
}

pub async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(expected) = &app.cfg.token {
        if !is_discovery(req.uri().path()) {
            let h = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if !token_ok(expected, h) {
                return ScimError::new(
                    401,
                    None,
                    "missing or wrong bearer token; send 'Authorization: Bearer <token>' with the server's token",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}
