//! TLS for every connection the client opens (import, cleanup, bench, token endpoints):
//! the webpki (Mozilla) roots plus `--ca-cert`, a client certificate for mutual TLS,
//! ALPN for HTTP/2, and `--insecure` only as an explicit choice. rustls with the ring
//! provider, chosen per config so no process-wide default has to be installed.
//!
//! A refused handshake is turned into a message that names the fix: rustls reports
//! *why* (unknown issuer, wrong name, expired), and each cause has a different remedy.

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// What to trust and what to present.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// Extra trusted roots (PEM), with the file they came from for messages.
    pub ca: Option<(String, Vec<u8>)>,
    /// Client certificate chain and key (PEM) for mutual TLS, with their file names.
    pub client_identity: Option<ClientIdentity>,
    /// Accept any certificate (`--insecure`): for test servers only.
    pub insecure: bool,
}

#[derive(Clone)]
pub struct ClientIdentity {
    pub cert_path: String,
    pub cert_pem: Vec<u8>,
    pub key_path: String,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca", &self.ca.as_ref().map(|c| &c.0))
            .field(
                "client_cert",
                &self.client_identity.as_ref().map(|c| &c.cert_path),
            )
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// Why a TLS configuration could not be built; each says what to give instead.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the CA file {0} holds no PEM certificate; give the PEM certificate(s) of the CA that signed the target's")]
    NoCa(String),
    #[error("the CA file {path} has a certificate that cannot be used as a root ({detail}); give the PEM certificate of the CA itself")]
    BadCa { path: String, detail: String },
    #[error("cannot read the client certificate {path} ({detail}); give a PEM file with the client certificate first, then its intermediates")]
    ClientCert { path: String, detail: String },
    #[error("cannot read the client key {path} ({detail}); give the PEM private key (PKCS#8, PKCS#1 or SEC1) of --client-cert")]
    ClientKey { path: String, detail: String },
    #[error("the client certificate and key do not go together ({0}); give the key that was issued with --client-cert")]
    Mismatch(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration. ALPN is left empty: the connector sets it from the
/// HTTP versions it enables.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some((path, pem)) = &opts.ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsSetupError::BadCa {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsSetupError::NoCa(path.clone()));
        }
        for c in certs {
            roots.add(c).map_err(|e| TlsSetupError::BadCa {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots);
    let mut cfg = match &opts.client_identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&id.cert_pem)
                .collect::<Result<_, _>>()
                .map_err(|e| TlsSetupError::ClientCert {
                    path: id.cert_path.clone(),
                    detail: e.to_string(),
                })?;
            if chain.is_empty() {
                return Err(TlsSetupError::ClientCert {
                    path: id.cert_path.clone(),
                    detail: "no CERTIFICATE block".into(),
                });
            }
            let key = PrivateKeyDer::from_pem_slice(&id.key_pem).map_err(|e| {
                TlsSetupError::ClientKey {
                    path: id.key_path.clone(),
                    detail: e.to_string(),
                }
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsSetupError::Mismatch(e.to_string()))?
        }
    };
    if opts.insecure {
        cfg.dangerous()
            .set_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())));
    }
    Ok(Arc::new(cfg))
}

/// `--insecure`: any certificate, any name. Signatures are still checked, so the
/// handshake is a real one (the peer holds the key of the certificate it shows).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The fix for a refused handshake, from rustls's reason. `host` is the name the
/// certificate was checked against.
pub fn explain(e: &rustls::Error, host: &str) -> String {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the target's certificate is signed by a CA this machine does not trust ({e}); if it comes from a private CA or is self-signed, pass --ca-cert FILE with the CA's PEM certificate (--insecure skips the check, for test servers only)"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "the target's certificate is not valid for the host name '{host}' ({e}); use a host name the certificate lists in its subjectAltName (see `openssl s_client -connect HOST:PORT`), or have the certificate reissued for '{host}'"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                "the target's certificate has expired ({e}); it must be renewed on the server (check this machine's clock too)"
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                "the target's certificate is not valid yet ({e}); check this machine's clock and the certificate's notBefore"
            ),
            CertificateError::Other(o) if o.to_string().contains("CaUsedAsEndEntity") => format!(
                // `openssl req -x509` marks a self-signed certificate as a CA by default,
                // and WebPKI rules refuse a CA certificate as the server's own.
                "the target's certificate is marked as a CA and cannot be a server's own ({e}); make it with -addext basicConstraints=critical,CA:FALSE (openssl) or sign it with a separate CA"
            ),
            _ => format!("the target's TLS certificate was refused ({e}); if it comes from a private CA, pass --ca-cert FILE"),
        },
        rustls::Error::AlertReceived(A::CertificateRequired)
        | rustls::Error::AlertReceived(A::HandshakeFailure)
        | rustls::Error::AlertReceived(A::BadCertificate) => format!(
            "the target refused the TLS handshake ({e}); it probably requires a client certificate: pass --client-cert FILE and --client-key FILE (PEM) with one its CA issued"
        ),
        rustls::Error::AlertReceived(A::UnknownCA) => format!(
            "the target does not trust the client certificate ({e}); use one issued by the CA the server was given for client certificates"
        ),
        rustls::Error::NoApplicationProtocol => format!(
            "the target speaks none of the HTTP versions offered ({e}); drop --http2 (or --http1)"
        ),
        _ => format!("the TLS handshake failed ({e})"),
    }
}
