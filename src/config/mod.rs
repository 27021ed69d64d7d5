//! What we will do: the validated plan built once from the command line. Checks that
//! involve several flags, files or the environment happen here, with errors that say
//! what to change.

use std::path::Path;

mod bench;
mod import;
pub use bench::{bench_config, thresholds};
pub use import::{
    check_import_args, import_config, import_limits, import_report_file, import_state_path,
};

use crate::cli::{ConnectArgs, FaultArgs, ServeArgs};
use crate::client::auth::{Credentials, OAuthClient, Secret};
use crate::client::tls::{ClientIdentity, TlsOptions};
use crate::client::{ClientOptions, HttpVersion};
use crate::server::faults::FaultConfig;
use crate::server::profile::Profile;
use crate::server::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("bad {0}: {1}")]
    Flag(&'static str, String),
    #[error("group-members builds one group to --group-size and tears it down, so its length is set by the group, not by a rate; run it at one --rate (and --find-knee with another scenario)")]
    SweepOfGroupMembers,
    #[error("--find-knee and --steps drive the open model; drop --closed")]
    SweepClosed,
    #[error("--dialect entra-inbound is an import target (Entra's /bulkUpload takes users only, answered 202); benchmark with another dialect, or import with `scimload import --dialect entra-inbound`")]
    InboundBench,
    #[error("--run-id '{0}': use letters and digits only (it goes into userNames)")]
    RunId(String),
    #[error("--start-at {at} passed {ago:.1} s ago; set a time ahead, e.g. --start-at $(date -u -d '+2 min' +%FT%TZ)")]
    StartAtPassed { at: String, ago: f64 },
    #[error(
        "--emit writes the mapped payloads of a dry run; add --dry-run, or drop --emit to import"
    )]
    EmitWithoutDryRun,
    #[error("--inbound-status reads the outcome of Entra inbound uploads; add --dialect entra-inbound, or drop it")]
    InboundStatusWithoutInbound,
    #[error("--deactivate-missing and --delete-missing compare the export with a state file; give --state (the embedded server keeps none)")]
    MissingWithoutState,
    #[error("refusing to listen on {0} without a token: anyone on the network could write to it; set SCIM_TOKEN, --token-file or --token (or --oauth), or listen on 127.0.0.1")]
    OpenToNetwork(std::net::SocketAddr),
    #[error("cannot read the token file {path}: {source}; check the path and permissions")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the token file {0} is empty; put the token on its first line")]
    EmptyToken(String),
    #[error("unknown profile '{0}'; use rfc, aws or entra-api")]
    Profile(String),
    #[error("the delimiter must be one character (or \"tab\"), got '{0}'")]
    Delimiter(String),
    #[error(transparent)]
    Tls(#[from] crate::server::tls::TlsError),
    #[error("cannot read {what} {path}: {source}; check the path and permissions")]
    File {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("--oauth-token-url needs a client id: set SCIM_OAUTH_CLIENT_ID or --oauth-client-id")]
    NoClientId,
    #[error("--oauth-token-url needs a client secret: set SCIM_OAUTH_CLIENT_SECRET or give --oauth-client-secret-file (never a flag value)")]
    NoClientSecret,
    #[error(
        "give one credential: --token-file, --oauth-token-url or --token-command, not several"
    )]
    TwoCredentials,
    #[error("--header '{0}' is not 'Name: value'; e.g. --header 'User-Agent: acme-sync/1.0'")]
    Header(String),
    #[error("serve --oauth needs the client secret it accepts: set SCIM_OAUTH_CLIENT_SECRET or --oauth-client-secret-file")]
    NoServerSecret,
}

fn read_file(what: &'static str, p: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(p).map_err(|source| ConfigError::File {
        what,
        path: p.display().to_string(),
        source,
    })
}

/// `Name: value` of `--header`.
pub fn parse_header(
    h: &str,
) -> Result<(hyper::header::HeaderName, hyper::header::HeaderValue), ConfigError> {
    let bad = || ConfigError::Header(h.to_string());
    let (name, value) = h.split_once(':').ok_or_else(bad)?;
    let name = hyper::header::HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
    let value = hyper::header::HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
    Ok((name, value))
}

/// A secret from a file (first line), else from an environment variable.
fn secret_from(file: Option<&Path>, var: &str) -> Result<Option<Secret>, ConfigError> {
    Ok(match (file, std::env::var(var)) {
        (Some(p), _) => Some(Secret::new(read_token_file(p)?)),
        (None, Ok(t)) if !t.trim().is_empty() => Some(Secret::new(t.trim())),
        _ => None,
    })
}

/// How every command reaches its target, from the connection flags.
pub fn client_options(
    a: &ConnectArgs,
    timeout: std::time::Duration,
) -> Result<ClientOptions, ConfigError> {
    let credentials = match (&a.oauth_token_url, &a.token_command) {
        (Some(_), _) | (_, Some(_)) if a.token_file.is_some() => {
            return Err(ConfigError::TwoCredentials)
        }
        (Some(url), None) => Credentials::OAuth(OAuthClient {
            token_url: url.clone(),
            client_id: a
                .oauth_client_id
                .clone()
                .filter(|c| !c.trim().is_empty())
                .ok_or(ConfigError::NoClientId)?,
            client_secret: secret_from(
                a.oauth_client_secret_file.as_deref(),
                "SCIM_OAUTH_CLIENT_SECRET",
            )?
            .ok_or(ConfigError::NoClientSecret)?,
            scope: a.oauth_scope.clone(),
            audience: a.oauth_audience.clone(),
            resource: a.oauth_resource.clone(),
            method: a.oauth_auth,
        }),
        (None, Some(cmd)) => Credentials::Command {
            command: cmd.clone(),
            every: a.token_refresh.max(std::time::Duration::from_secs(1)),
        },
        (Some(_), Some(_)) => return Err(ConfigError::TwoCredentials),
        (None, None) => match client_token(a.token_file.as_deref())? {
            Some(t) => Credentials::Static(t),
            None => Credentials::None,
        },
    };
    let tls = TlsOptions {
        ca: a
            .ca_cert
            .as_deref()
            .map(|p| {
                Ok::<_, ConfigError>((
                    p.display().to_string(),
                    read_file("the CA certificate file", p)?,
                ))
            })
            .transpose()?,
        client_identity: match (&a.client_cert, &a.client_key) {
            (Some(c), Some(k)) => Some(ClientIdentity {
                cert_path: c.display().to_string(),
                cert_pem: read_file("the client certificate", c)?,
                key_path: k.display().to_string(),
                key_pem: read_file("the client key", k)?,
            }),
            _ => None,
        },
        insecure: a.insecure,
    };
    Ok(ClientOptions {
        tls,
        version: if a.http2 {
            HttpVersion::Http2
        } else if a.http1 {
            HttpVersion::Http1
        } else {
            HttpVersion::Auto
        },
        credentials,
        headers: a
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<_, _>>()?,
        timeout,
    })
}

/// `,` `;` `|` or `tab`.
pub fn delimiter(s: &str) -> Result<u8, ConfigError> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(ConfigError::Delimiter(s.to_string())),
    }
}

pub fn read_token_file(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::TokenFile {
        path: path.display().to_string(),
        source,
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(ConfigError::EmptyToken(path.display().to_string()));
    }
    Ok(token)
}

impl From<&FaultArgs> for FaultConfig {
    fn from(f: &FaultArgs) -> Self {
        FaultConfig {
            seed: f.fault_seed,
            latency: f.latency,
            error_503: f.fail_503,
            error_429: f.fail_429,
            retry_after: f.retry_after,
            rate_cap: f.rate_cap,
            drop: f.drop,
            lose_answer: f.lose_answer,
            stalls: f.stalls.clone(),
            bulk_op_delay: f.bulk_op_delay,
            only: f.faults_on,
        }
    }
}

/// The client's bearer token: from --token-file, else SCIM_TOKEN, never from a flag value.
pub fn client_token(file: Option<&Path>) -> Result<Option<Secret>, ConfigError> {
    secret_from(file, "SCIM_TOKEN")
}

pub fn serve_config(a: &ServeArgs) -> Result<ServerConfig, ConfigError> {
    let token = match (&a.token, &a.token_file) {
        (Some(t), _) if !t.is_empty() => Some(t.clone()),
        (_, Some(p)) => Some(read_token_file(p)?),
        _ => None,
    };
    // Issued OAuth tokens protect the server as a static token does.
    if token.is_none() && !a.oauth && !a.listen.ip().is_loopback() {
        return Err(ConfigError::OpenToNetwork(a.listen));
    }
    // Services known by their published rate limits behave as RFC 7644 otherwise.
    let preset = match a.profile.as_str() {
        "slack" => Some(crate::limits::Preset::Slack),
        "github-emu" => Some(crate::limits::Preset::GithubEmu),
        "entra-graph" => Some(crate::limits::Preset::EntraGraph),
        "entra-inbound" => Some(crate::limits::Preset::EntraInbound),
        "okta" => Some(crate::limits::Preset::Okta),
        _ => None,
    };
    let profile = match preset {
        Some(_) => &crate::server::profile::RFC,
        None => {
            Profile::by_name(&a.profile).ok_or_else(|| ConfigError::Profile(a.profile.clone()))?
        }
    };
    // Buckets of the server's own (`--limit`) join the preset's, on any profile.
    let rate_limits = match (preset, a.limits.is_empty()) {
        (None, true) => None,
        (p, _) => Some(
            p.unwrap_or(crate::limits::Preset::None)
                .limits()
                .with(a.limits.clone()),
        ),
    }
    .map(|l| l.scaled(a.limits_speedup));
    Ok(ServerConfig {
        inbound_delay: (a.profile == "entra-inbound").then_some(a.inbound_delay),
        rate_limits,
        profile,
        token,
        async_create: a.async_create,
        max_body: a.max_body as usize,
        bulk_max_operations: a.bulk_max_operations as usize,
        bulk_max_payload: (a.bulk_max_payload as usize).min(a.max_body as usize),
        faults: FaultConfig::from(&a.faults),
        base_url: a.base_url.clone(),
        journal: None,
        tls: match (&a.tls_cert, &a.tls_key) {
            (Some(c), Some(k)) => Some(crate::server::tls::server_config(
                c,
                k,
                a.client_ca.as_deref(),
                a.http2,
            )?),
            _ => None,
        },
        http2: a.http2,
        limits: crate::server::limits::ServerLimits {
            header_timeout: a.header_timeout,
            idle_timeout: a.idle_timeout,
            max_connections: a.max_connections.max(1) as usize,
            request_timeout: a.request_timeout,
            keep_alive: !a.no_keep_alive,
        },
        allow_duplicates: a.allow_duplicates,
        drop_members: a.drop_members,
        oauth: match a.oauth {
            false => None,
            true => Some(crate::server::oauth::Issuer::new(
                a.oauth_client_id.clone(),
                secret_from(
                    a.oauth_client_secret_file.as_deref(),
                    "SCIM_OAUTH_CLIENT_SECRET",
                )?
                .ok_or(ConfigError::NoServerSecret)?
                .expose()
                .to_string(),
                a.token_ttl,
            )),
        },
    })
}
