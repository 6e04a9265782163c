//! The node's TLS server configurations (DESIGN §9): the Exchange's requires a client
//! certificate chaining to a trust-space anchor (with the trust space's CRLs), the national
//! doors ask for (but do not require) client certificates from their own CA, the admin door
//! asks for none. rustls with the ring provider; tonic's own server TLS takes no CRLs, so the
//! node accepts with tokio-rustls (the doors' accept loop) and hands the streams to tonic.
//! Reads only the files it is given: no network.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use serde::Deserialize;

use crate::TrustSpace;

/// A certificate and its key (`[tls]`), the node's identity on its mutual-TLS and admin doors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPair {
    /// PEM certificate (its chain may follow it in the same file).
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8).
    pub key: PathBuf,
}

/// TLS on the national doors (HTTP and `Window`), `[national.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationalTls {
    /// PEM certificate (its chain may follow) the national doors present.
    pub certificate: PathBuf,
    /// Its PEM private key.
    pub key: PathBuf,
    /// CA certificates (PEM) that issue the national clients' certificates; needed for
    /// clients listed by `certificate`.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// The crypto provider refused the protocol versions.
    #[error("TLS configuration: {0}")]
    Protocols(#[source] rustls::Error),
    /// `what` (a certificate and key, a trust anchor) was refused.
    #[error("TLS configuration: {what}: {source}")]
    Refused {
        what: &'static str,
        #[source]
        source: rustls::Error,
    },
    #[error("TLS configuration: client verifier: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

pub fn read_pair(pair: &KeyPair) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| TlsError::File {
            path: p.display().to_string(),
            reason: format!("cannot read: {e}"),
        })
    };
    Ok((read(&pair.certificate)?, read(&pair.key)?))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The node's TLS certificate chain and key.
fn identity(
    pair: &KeyPair,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let (cert_pem, key_pem) = read_pair(pair)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::File {
            path: pair.certificate.display().to_string(),
            reason: format!("not a PEM certificate chain: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::File {
            path: pair.certificate.display().to_string(),
            reason: "no certificate".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::File {
        path: pair.key.display().to_string(),
        reason: format!("not a PEM private key: {e}"),
    })?;
    Ok((chain, key))
}

/// The operator side (the admin API): the node's certificate, no client certificate asked
/// (operators authenticate with a token), HTTP/1.1.
pub fn admin_server_config(pair: &KeyPair) -> Result<rustls::ServerConfig, TlsError> {
    let (chain, key) = identity(pair)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Refused {
            what: "node certificate and key",
            source,
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The national doors (HTTP when `alpn` is `http/1.1`, `Window` when `h2`): the configured
/// certificate, and client certificates from `client_ca` asked for but not required (a client
/// may authenticate with a token instead; which certificates are clients is decided per call).
pub fn national_server_config(
    tls: &NationalTls,
    alpn: &[u8],
) -> Result<rustls::ServerConfig, TlsError> {
    let pair = KeyPair {
        certificate: tls.certificate.clone(),
        key: tls.key.clone(),
    };
    let (chain, key) = identity(&pair)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| TlsError::File {
                path: path.display().to_string(),
                reason: format!("cannot read: {e}"),
            })?;
            let mut roots = RootCertStore::empty();
            for der in CertificateDer::pem_slice_iter(&pem) {
                let der = der.map_err(|e| TlsError::File {
                    path: path.display().to_string(),
                    reason: format!("not a PEM certificate: {e}"),
                })?;
                roots.add(der).map_err(|e| TlsError::File {
                    path: path.display().to_string(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
            if roots.is_empty() {
                return Err(TlsError::File {
                    path: path.display().to_string(),
                    reason: "no certificate".into(),
                });
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(TlsError::Verifier)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Refused {
            what: "national.tls certificate and key",
            source,
        })?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// The server side: mutual TLS, client certificates checked against every anchor and CRL of
/// the trust space. Which state a client is, is decided per request from its certificate.
pub fn server_config(pair: &KeyPair, trust: &TrustSpace) -> Result<rustls::ServerConfig, TlsError> {
    let (chain, key) = identity(pair)?;
    let mut roots = RootCertStore::empty();
    for der in trust.all_anchors_der() {
        roots
            .add(CertificateDer::from(der))
            .map_err(|source| TlsError::Refused {
                what: "trust anchor refused",
                source,
            })?;
    }
    let crls: Vec<CertificateRevocationListDer<'static>> = trust
        .all_crls_der()
        .into_iter()
        .map(CertificateRevocationListDer::from)
        .collect();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .with_crls(crls)
        // A state whose CA publishes no CRL is not thereby refused: the trust space decides
        // which CRLs exist.
        .allow_unknown_revocation_status()
        .build()
        .map_err(TlsError::Verifier)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Refused {
            what: "node certificate and key",
            source,
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
