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
}

/// A rustls server configuration from PEM files (HTTP/1.1 only, as the server speaks).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
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
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Mismatch(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
