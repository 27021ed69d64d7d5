//! Credentials, one [`Auth`] for every command: a static bearer token, OAuth 2.0 client
//! credentials (RFC 6749 §4.4) or a command that prints a token. Tokens that expire are
//! fetched before the run, renewed shortly before they run out and once more after a
//! 401; concurrent requests share one renewal. No token or secret is ever shown: the
//! [`Secret`] type prints as `***`, and messages name files and variables instead.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::Method;

use super::transport::{BaseUrl, Transport, TransportError};
use crate::oauth::{form_encode, TokenError, TokenResponse};

/// A token or a client secret. Its Debug and Display never show it: secrets must not
/// reach logs, reports or error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-encoded id and secret (`client_secret_basic`).
    #[default]
    Basic,
    /// Id and secret in the form body (`client_secret_post`).
    Post,
}

/// An OAuth 2.0 client-credentials client.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: Option<String>,
    /// Auth0-style `audience`.
    pub audience: Option<String>,
    /// RFC 8707 `resource` (Entra's v1 endpoints call it that too).
    pub resource: Option<String>,
    pub method: ClientAuthMethod,
}

/// Where the bearer token comes from.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    Static(Secret),
    OAuth(OAuthClient),
    /// A command run by `sh -c` that prints a token (or a JSON object with
    /// `access_token`/`accessToken` and `expires_in`/`expires_on`), re-run every `every`
    /// unless its answer says when the token expires.
    Command {
        command: String,
        every: Duration,
    },
}

impl Credentials {
    /// What kind of credential, for reports (never the value).
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::None => "none",
            Credentials::Static(_) => "bearer token",
            Credentials::OAuth(_) => "oauth2 client credentials",
            Credentials::Command { .. } => "token command",
        }
    }
}

/// A bearer token ready to send.
#[derive(Debug)]
pub struct Token {
    pub header: HeaderValue,
    /// Counts renewals: a 401 on generation g renews only if nobody renewed since.
    pub generation: u64,
    /// From here one request renews it while the others go on with it...
    refresh_at: Option<Instant>,
    /// ...until here; after this they wait for the renewal, so that no request leaves
    /// with a token that may be expired by the time it arrives.
    usable_until: Option<Instant>,
}

/// The credentials of one client and the token currently in use.
pub struct Auth {
    creds: Credentials,
    /// For token endpoints: the same TLS setup as the target's.
    transport: Option<Transport>,
    current: RwLock<Option<Arc<Token>>>,
    renewing: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("kind", &self.creds.kind())
            .field("fetches", &self.fetches())
            .finish()
    }
}

fn bearer(token: &str) -> Result<HeaderValue, TransportError> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        TransportError::Auth(
            "the token contains characters that cannot go in an HTTP header; check for a stray newline or quote".into(),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// When to renew a token that lives `lifetime` from `asked` (when its request was sent:
/// the server counts `expires_in` from issuing it, which is later, so the client's clock
/// errs early by the fetch's own latency): a minute early, or a quarter of its life for
/// short ones; and from when on no request may leave with it (half that margin before
/// expiry), so the one that uses it last still arrives in time.
fn renewal(asked: Instant, lifetime: Duration) -> (Instant, Instant) {
    let margin = (lifetime / 4).min(Duration::from_secs(60));
    (asked + lifetime - margin, asked + lifetime - margin / 2)
}

impl Auth {
    pub fn new(
        creds: Credentials,
        transport: Option<Transport>,
    ) -> Result<Arc<Self>, TransportError> {
        let current = match &creds {
            Credentials::Static(s) => Some(Arc::new(Token {
                header: bearer(s.expose())?,
                generation: 0,
                refresh_at: None,
                usable_until: None,
            })),
            _ => None,
        };
        Ok(Arc::new(Auth {
            creds,
            transport,
            current: RwLock::new(current),
            renewing: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }))
    }

    pub fn none() -> Arc<Self> {
        Auth::new(Credentials::None, None).expect("no token to check")
    }

    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// Whether a 401 can be answered with a new token.
    pub fn renewable(&self) -> bool {
        matches!(
            self.creds,
            Credentials::OAuth(_) | Credentials::Command { .. }
        )
    }

    /// Tokens fetched so far (token endpoint calls or command runs).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn cached(&self) -> Option<Arc<Token>> {
        self.current.read().expect("token lock").clone()
    }

    /// The token to send now, renewing it when it is due. `None`: no credentials.
    pub async fn token(&self) -> Result<Option<Arc<Token>>, TransportError> {
        if matches!(self.creds, Credentials::None) {
            return Ok(None);
        }
        let now = Instant::now();
        if let Some(t) = self.cached() {
            if t.refresh_at.is_none_or(|r| now < r) {
                return Ok(Some(t));
            }
            // Due for renewal but still usable: one request renews, the rest go on with
            // the old token instead of queueing behind the token endpoint.
            if t.usable_until.is_none_or(|e| now < e) {
                return match self.renewing.try_lock() {
                    Ok(_g) => match self.fetch().await {
                        Ok(n) => Ok(Some(n)),
                        // The old one still works; the next request tries again.
                        Err(_) => Ok(Some(t)),
                    },
                    Err(_) => Ok(Some(t)),
                };
            }
        }
        let _g = self.renewing.lock().await;
        if let Some(t) = self.cached() {
            if t.refresh_at.is_none_or(|r| Instant::now() < r) {
                return Ok(Some(t));
            }
        }
        self.fetch().await.map(Some)
    }

    /// After a 401 to a request sent with generation `seen`: renew unless someone did
    /// since. `false` when these credentials cannot be renewed (the 401 is final).
    pub async fn renew_after_401(&self, seen: u64) -> Result<bool, TransportError> {
        if !self.renewable() {
            return Ok(false);
        }
        let _g = self.renewing.lock().await;
        if self.cached().is_some_and(|t| t.generation != seen) {
            return Ok(true);
        }
        self.fetch().await.map(|_| true)
    }

    /// Gets a new token and makes it current. Callers hold `renewing`.
    ///
    /// Boxed: a fetch opens a connection of its own (TCP, TLS, HTTP/2) or runs a
    /// command, a state machine of ~7 KB that would otherwise sit inside every request's
    /// future (which an import moves into a task per user) for a path taken once every
    /// few minutes.
    fn fetch(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Arc<Token>, TransportError>> + Send + '_>,
    > {
        Box::pin(self.fetch_now())
    }

    async fn fetch_now(&self) -> Result<Arc<Token>, TransportError> {
        let asked = Instant::now();
        let (token, lifetime) = match &self.creds {
            Credentials::None | Credentials::Static(_) => unreachable!("nothing to renew"),
            Credentials::OAuth(c) => self.client_credentials(c).await?,
            Credentials::Command { command, every } => run_token_command(command, *every).await?,
        };
        let generation = self.fetches.fetch_add(1, Ordering::Relaxed) + 1;
        let (refresh_at, usable_until) = match lifetime {
            Some(l) => {
                let (r, u) = renewal(asked, l);
                (Some(r), Some(u))
            }
            None => (None, None),
        };
        let t = Arc::new(Token {
            header: bearer(token.expose())?,
            generation,
            refresh_at,
            usable_until,
        });
        *self.current.write().expect("token lock") = Some(t.clone());
        Ok(t)
    }

    async fn client_credentials(
        &self,
        c: &OAuthClient,
    ) -> Result<(Secret, Option<Duration>), TransportError> {
        let transport = self
            .transport
            .as_ref()
            .expect("OAuth credentials come with a transport");
        let url = BaseUrl::parse(&c.token_url)
            .map_err(|e| TransportError::Auth(format!("--oauth-token-url: {e}")))?;
        let mut form = String::from("grant_type=client_credentials");
        for (k, v) in [
            ("scope", &c.scope),
            ("audience", &c.audience),
            ("resource", &c.resource),
        ] {
            if let Some(v) = v {
                form.push_str(&format!("&{k}={}", form_encode(v)));
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        match c.method {
            ClientAuthMethod::Basic => {
                let pair = format!(
                    "{}:{}",
                    form_encode(&c.client_id),
                    form_encode(c.client_secret.expose())
                );
                let mut v = HeaderValue::from_str(&format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
                .map_err(|_| {
                    TransportError::Auth("the client id or secret cannot go in a header".into())
                })?;
                v.set_sensitive(true);
                headers.insert(AUTHORIZATION, v);
            }
            ClientAuthMethod::Post => {
                form.push_str(&format!(
                    "&client_id={}&client_secret={}",
                    form_encode(&c.client_id),
                    form_encode(c.client_secret.expose())
                ));
            }
        }
        let (status, body) = transport
            .one_shot(&url, Method::POST, headers, Bytes::from(form))
            .await
            .map_err(|e| {
                TransportError::Auth(format!("cannot get a token from {}: {e}", c.token_url))
            })?;
        if !(200..300).contains(&status) {
            let why = serde_json::from_slice::<TokenError>(&body).ok();
            let fix = match why.as_ref().map(|w| w.error.as_str()) {
                Some("invalid_client") => "check the client id (SCIM_OAUTH_CLIENT_ID or --oauth-client-id) and secret (SCIM_OAUTH_CLIENT_SECRET or --oauth-client-secret-file), and --oauth-auth basic|post",
                Some("invalid_scope") => "check --oauth-scope (Entra ID: api://APP-ID/.default)",
                Some("unauthorized_client") => "allow the client-credentials grant for this client in the identity provider",
                Some("invalid_target") => "check --oauth-resource / --oauth-audience",
                _ => "check --oauth-token-url and the client's settings in the identity provider",
            };
            let detail = match &why {
                Some(w) => format!(
                    "{}{}",
                    w.error,
                    w.error_description
                        .as_ref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
                None => "no OAuth error in the answer".into(),
            };
            return Err(TransportError::Auth(format!(
                "the token endpoint {} refused the client credentials (HTTP {status}, {detail}); {fix}",
                c.token_url
            )));
        }
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            TransportError::Auth(format!(
                "the token endpoint {} answered without a usable access_token ({e}); is --oauth-token-url the token endpoint (…/oauth2/v2.0/token)?",
                c.token_url
            ))
        })?;
        if let Some(tt) = &t.token_type {
            if !tt.eq_ignore_ascii_case("bearer") {
                return Err(TransportError::Auth(format!(
                    "the token endpoint issued a '{tt}' token; SCIM needs a bearer token"
                )));
            }
        }
        let lifetime = t
            .expires_in
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Duration::from_secs_f64(s.min(1e7)));
        Ok((Secret::new(t.access_token), lifetime))
    }
}

/// Runs `--token-command` and reads its token.
async fn run_token_command(
    command: &str,
    every: Duration,
) -> Result<(Secret, Option<Duration>), TransportError> {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| TransportError::Auth("--token-command did not finish within 60 s".into()))?
    .map_err(|e| TransportError::Auth(format!("cannot run --token-command: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        return Err(TransportError::Auth(format!(
            "--token-command failed ({}): {first}; run it by hand to see why (logged in? right account?)",
            out.status
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    parse_command_output(text.trim(), every)
}

/// A bare token (first non-empty line), or the JSON that `az account
/// get-access-token` and similar tools print.
fn parse_command_output(
    text: &str,
    every: Duration,
) -> Result<(Secret, Option<Duration>), TransportError> {
    if text.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|_| {
            TransportError::Auth("--token-command printed JSON that does not parse; print the token alone (az: --query accessToken -o tsv)".into())
        })?;
        let token = v
            .get("access_token")
            .or_else(|| v.get("accessToken"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| {
                TransportError::Auth(
                    "--token-command printed JSON without access_token or accessToken".into(),
                )
            })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let num = |k: &str| {
            v.get(k).and_then(|x| {
                x.as_f64()
                    .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
            })
        };
        let lifetime = num("expires_in")
            .or_else(|| num("expires_on").map(|on| on - now))
            .filter(|s| *s > 0.0)
            .map(|s| Duration::from_secs_f64(s.min(1e7)))
            .unwrap_or(every);
        return Ok((Secret::new(token), Some(lifetime)));
    }
    let token = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| {
            TransportError::Auth(
                "--token-command printed nothing; it must print the token on standard output"
                    .into(),
            )
        })?;
    Ok((Secret::new(token), Some(every)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        let c = Credentials::OAuth(OAuthClient {
            token_url: "https://login/x".into(),
            client_id: "id".into(),
            client_secret: Secret::new("hunter2"),
            scope: None,
            audience: None,
            resource: None,
            method: ClientAuthMethod::Basic,
        });
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(bearer("a\nb").is_err());
    }

    #[test]
    fn renews_before_expiry() {
        let now = Instant::now();
        // Renewed at 1.5 s; from 1.75 s no request leaves with the old token.
        let (r, u) = renewal(now, Duration::from_secs(2));
        assert_eq!(
            (r - now, u - now),
            (Duration::from_millis(1500), Duration::from_millis(1750))
        );
        let (r, u) = renewal(now, Duration::from_secs(3600));
        assert_eq!(
            (r - now, u - now),
            (Duration::from_secs(3540), Duration::from_secs(3570))
        );
    }

    #[test]
    fn token_command_output() {
        let every = Duration::from_secs(300);
        let (t, l) = parse_command_output("\n  abc.def  \nmore", every).unwrap();
        assert_eq!((t.expose(), l), ("abc.def", Some(every)));
        let (t, l) =
            parse_command_output(r#"{"accessToken":"x","expires_in":"120"}"#, every).unwrap();
        assert_eq!((t.expose(), l), ("x", Some(Duration::from_secs(120))));
        assert!(parse_command_output("", every).is_err());
        assert!(parse_command_output(r#"{"token":"x"}"#, every).is_err());
    }

    #[tokio::test]
    async fn static_tokens_are_not_renewed() {
        let a = Auth::new(Credentials::Static(Secret::new("t")), None).unwrap();
        let t = a.token().await.unwrap().unwrap();
        assert!(t.header.is_sensitive());
        assert!(!a.renew_after_401(t.generation).await.unwrap());
        assert!(Auth::none().token().await.unwrap().is_none());
    }
}
