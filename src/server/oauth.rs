//! `serve --oauth`: a client-credentials token endpoint (RFC 6749 §4.4) at
//! `POST /oauth2/token` that issues short-lived bearer tokens, as Entra ID and other
//! identity platforms do in front of SCIM APIs. With `--token-ttl 2s` a test can run an
//! import across several expiries and see whether the client renews in time. Expired
//! tokens are refused with 401 and `error="invalid_token"` (RFC 6750 §3.1).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use subtle::ConstantTimeEq;

use super::App;
use crate::oauth::{form_pairs, TokenError, TokenResponse};

/// Issues tokens to one client and remembers them until they expire.
#[derive(Debug)]
pub struct Issuer {
    client_id: String,
    client_secret: String,
    pub ttl: Duration,
    tokens: Mutex<HashMap<String, Instant>>,
    issued: AtomicU64,
    refused_expired: AtomicU64,
    counter: AtomicU64,
}

/// Whether a presented token is good.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Valid,
    Expired,
    Unknown,
}

impl Issuer {
    pub fn new(client_id: String, client_secret: String, ttl: Duration) -> Arc<Self> {
        Arc::new(Issuer {
            client_id,
            client_secret,
            ttl,
            tokens: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
            refused_expired: AtomicU64::new(0),
            counter: AtomicU64::new(0),
        })
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// Requests refused because their token had expired.
    pub fn refused_expired(&self) -> u64 {
        self.refused_expired.load(Ordering::Relaxed)
    }

    /// Forgets every token issued so far, as a provider does when it rotates keys or an
    /// admin revokes sessions: the next request with one is answered 401.
    pub fn revoke_all(&self) {
        self.tokens.lock().expect("token table").clear();
    }

    pub fn check(&self, token: &str) -> Check {
        let tokens = self.tokens.lock().expect("token table");
        match tokens.get(token) {
            Some(exp) if Instant::now() < *exp => Check::Valid,
            Some(_) => {
                self.refused_expired.fetch_add(1, Ordering::Relaxed);
                Check::Expired
            }
            None => Check::Unknown,
        }
    }

    fn mint(&self) -> String {
        // Unguessable enough for a test bed: the clock, a counter and the process id
        // through a keyed hash; not a production token service.
        use std::hash::BuildHasher;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let s = foldhash::quality::RandomState::default();
        let (a, b) = (s.hash_one((n, t)), s.hash_one((t, n, std::process::id())));
        let token = format!("sl.{a:016x}{b:016x}");
        let now = Instant::now();
        let mut tokens = self.tokens.lock().expect("token table");
        tokens.retain(|_, exp| *exp + Duration::from_secs(60) > now);
        tokens.insert(token.clone(), now + self.ttl);
        self.issued.fetch_add(1, Ordering::Relaxed);
        token
    }

    fn client_ok(&self, id: &str, secret: &str) -> bool {
        let id_ok: bool = id.as_bytes().ct_eq(self.client_id.as_bytes()).into();
        let secret_ok: bool = secret
            .as_bytes()
            .ct_eq(self.client_secret.as_bytes())
            .into();
        id_ok & secret_ok
    }
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = TokenError {
        error: error.into(),
        error_description: Some(description.into()),
    };
    let mut r = json(status, &body);
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"scimload\""),
        );
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// Client id and secret from HTTP Basic (id and secret form-encoded, RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    Some((
        crate::oauth::form_decode(id)?,
        crate::oauth::form_decode(secret)?,
    ))
}

/// `POST /oauth2/token`.
pub async fn token(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(issuer) = &app.cfg.oauth else {
        return oauth_error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "this server issues no tokens; start it with --oauth",
        );
    };
    let Some(form) = std::str::from_utf8(&body).ok().and_then(form_pairs) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    };
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match field("grant_type").as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            )
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            )
        }
    }
    let creds = basic_credentials(&headers)
        .or_else(|| Some((field("client_id")?, field("client_secret")?)));
    match creds {
        Some((id, secret)) if issuer.client_ok(&id, &secret) => {}
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret",
            )
        }
    }
    let body = TokenResponse {
        access_token: issuer.mint(),
        token_type: Some("Bearer".into()),
        expires_in: Some(issuer.ttl.as_secs_f64().floor().max(1.0)),
    };
    let mut r = json(StatusCode::OK, &body);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}
