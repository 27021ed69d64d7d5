//! Bearer-token authentication (RFC 6750) for the embedded server: the static token, and
//! with `--oauth` the short-lived tokens its token endpoint issued. The static token is
//! compared in constant time so that response timing does not reveal how much of a
//! guess was right.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::App;
use crate::scim::error::ScimError;

fn bearer(authorization: Option<&str>) -> Option<&str> {
    let h = authorization?;
    h.strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .map(str::trim)
}

pub fn token_ok(expected: &str, authorization: Option<&str>) -> bool {
    bearer(authorization).is_some_and(|given| given.as_bytes().ct_eq(expected.as_bytes()).into())
}

/// Discovery endpoints and the token endpoint stay open: clients read them to learn
/// how to authenticate, or to get a token.
pub fn is_open(path: &str) -> bool {
    [
        "/ServiceProviderConfig",
        "/Schemas",
        "/ResourceTypes",
        "/oauth2/token",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

pub async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let cfg = &app.cfg;
    if (cfg.token.is_some() || cfg.oauth.is_some()) && !is_open(req.uri().path()) {
        let h = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let static_ok = cfg.token.as_deref().is_some_and(|t| token_ok(t, h));
        let issued = match (&cfg.oauth, bearer(h)) {
            (Some(i), Some(t)) if !static_ok => Some(i.check(t)),
            _ => None,
        };
        if !static_ok && issued != Some(super::oauth::Check::Valid) {
            let (detail, challenge) = match issued {
                Some(super::oauth::Check::Expired) => (
                    "the access token has expired; get a new one from POST /oauth2/token",
                    "Bearer error=\"invalid_token\", error_description=\"The access token expired\"",
                ),
                _ if cfg.oauth.is_some() => (
                    "missing or unknown bearer token; get one from POST /oauth2/token (client credentials)",
                    "Bearer error=\"invalid_token\"",
                ),
                _ => (
                    "missing or wrong bearer token; send 'Authorization: Bearer <token>' with the server's token",
                    "Bearer realm=\"scimload\"",
                ),
            };
            let mut r = ScimError::new(401, None, detail).into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(challenge),
            );
            return r;
        }
    }
    next.run(req).await
}
