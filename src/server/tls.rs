//! HTTPS for `scimload serve`: identity providers (Entra ID, Okta) provision only over
//! TLS, so pointing one at this server — or testing a client's certificate handling —
//! needs a certificate and key in PEM. rustls with the ring provider, chosen explicitly so
//! no process-wide default has to be installed.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up; every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain in {path}: {detail}; give a PEM file with the server certificate first, then its intermediates")]
    Cert { path: String, detail: String },
    #[error("cannot read the private key in {path}: {detail}; give the PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate")]
    Key { path: String, detail: String },
    #[error("the certificate and key do not go together: {0}")]
    Mismatch(String),
    #[error("cannot use the client CA file {path}: {detail}; give the PEM certificate(s) of the CA that issues client certificates")]
    ClientCa { path: String, detail: String },
}

/// A rustls server configuration from PEM files. With `client_ca`, clients must present
/// a certificate that CA issued (mutual TLS); with `http2`, ALPN offers h2 first.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    http2: bool,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.display().to_string(),
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert.display().to_string(),
            detail: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        detail: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(p) => {
            let bad = |detail: String| TlsError::ClientCa {
                path: p.display().to_string(),
                detail,
            };
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(p).map_err(|e| bad(e.to_string()))? {
                roots
                    .add(c.map_err(|e| bad(e.to_string()))?)
                    .map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("no CERTIFICATE block".into()));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| bad(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(cfg))
}
