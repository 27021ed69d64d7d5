//! What we will do: the validated plan built once from the command line. Checks that
//! involve several flags, files or the environment happen here, with errors that say
//! what to change.

use std::path::Path;

use crate::cli::{FaultArgs, ServeArgs};
use crate::server::faults::FaultConfig;
use crate::server::profile::Profile;
use crate::server::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("refusing to listen on {0} without a token: anyone on the network could write to it; set SCIM_TOKEN, --token-file or --token, or listen on 127.0.0.1")]
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
    #[error("cannot read the CA certificate file {path}: {source}; give a PEM file with the certificate(s) that signed the target's")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
}

/// The PEM bytes of `--ca-cert`, checked when the client is built.
pub fn read_ca(path: Option<&Path>) -> Result<Option<Vec<u8>>, ConfigError> {
    path.map(|p| {
        std::fs::read(p).map_err(|source| ConfigError::CaFile {
            path: p.display().to_string(),
            source,
        })
    })
    .transpose()
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
            stalls: f.stalls.clone(),
        }
    }
}

/// The client's bearer token: from --token-file, else SCIM_TOKEN, never from a flag value.
pub fn client_token(file: Option<&Path>) -> Result<Option<crate::client::Secret>, ConfigError> {
    use crate::client::Secret;
    Ok(match (file, std::env::var("SCIM_TOKEN")) {
        (Some(p), _) => Some(Secret::new(read_token_file(p)?)),
        (None, Ok(t)) if !t.trim().is_empty() => Some(Secret::new(t.trim())),
        _ => None,
    })
}

pub fn serve_config(a: &ServeArgs) -> Result<ServerConfig, ConfigError> {
    let token = match (&a.token, &a.token_file) {
        (Some(t), _) if !t.is_empty() => Some(t.clone()),
        (_, Some(p)) => Some(read_token_file(p)?),
        _ => None,
    };
    if token.is_none() && !a.listen.ip().is_loopback() {
        return Err(ConfigError::OpenToNetwork(a.listen));
    }
    let profile =
        Profile::by_name(&a.profile).ok_or_else(|| ConfigError::Profile(a.profile.clone()))?;
    Ok(ServerConfig {
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
            (Some(c), Some(k)) => Some(crate::server::tls::server_config(c, k)?),
            _ => None,
        },
    })
}
