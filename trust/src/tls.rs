//! The node's TLS server configurations (DESIGN §9): the Exchange's requires a client
//! certificate chaining to a trust-space anchor (with the trust space's CRLs), the national
//! doors ask for (but do not require) client certificates from their own CA, the admin door
//! asks for none. rustls with the ring provider; tonic's own server TLS takes no CRLs, so the
//! node accepts with tokio-rustls (the doors' accept loop) and hands the streams to tonic.
//! The node's TLS key is a PEM file or a key in a token ([`NodeIdentity`]); the relay's
//! client connections present the same identity ([`client_config`]).
//! Reads only the files it is given: no network.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use serde::Deserialize;
use tereze_codecs::dsig::ExternalKey;

use crate::tls_signer::{ExternalTlsKey, TlsKeyError};
use crate::TrustSpace;

/// A certificate and its key (`[tls]`), the node's identity on its mutual-TLS and admin doors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPair {
    /// PEM certificate (its chain may follow it in the same file).
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8), or a `pkcs11:` URI naming a key in a token.
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
    /// The key in a token cannot serve TLS (its kind).
    #[error("tls.key ({key}): {source}")]
    TokenKey {
        key: String,
        #[source]
        source: TlsKeyError,
    },
    /// `tls.certificate` certifies another key than the token's.
    #[error("tls.certificate ({certificate}) does not certify the key tls.key names ({key})")]
    KeyMismatch { certificate: String, key: String },
    /// The peers' anchors for a client connection are not PEM certificates.
    #[error("TLS configuration: peer anchors: not PEM certificates: {0}")]
    AnchorsUnreadable(#[source] rustls_pki_types::pem::Error),
    /// None of the peers' anchors is a certificate webpki can use.
    #[error("TLS configuration: peer anchors: no usable anchor")]
    NoUsableAnchor,
}

/// The node's TLS identity (`[tls]`): the certificate file, and the key, read from its PEM
/// file at each use (a renewed key takes effect at the next connection) or held in a token,
/// opened once at start.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pair: KeyPair,
    token: Option<Arc<ExternalTlsKey>>,
}

impl NodeIdentity {
    /// Both halves from PEM files.
    pub fn files(pair: KeyPair) -> Self {
        Self { pair, token: None }
    }

    /// The certificate from its file and the key in a token; refused now when the key cannot
    /// sign TLS handshakes or the certificate is not of it.
    pub fn with_token_key(pair: KeyPair, key: Arc<dyn ExternalKey>) -> Result<Self, TlsError> {
        let token = ExternalTlsKey::new(key).map_err(|source| TlsError::TokenKey {
            key: pair.key.display().to_string(),
            source,
        })?;
        let identity = Self {
            pair,
            token: Some(Arc::new(token)),
        };
        identity.certified_key()?;
        Ok(identity)
    }

    /// The certificate chain and key as rustls uses them, the certificate checked to be the
    /// key's.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let Some(token) = &self.token else {
            let (chain, key) = identity(&self.pair)?;
            let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|source| {
                TlsError::Refused {
                    what: "node certificate and key",
                    source,
                }
            })?;
            return Ok(Arc::new(certified));
        };
        let chain = read_chain(&self.pair.certificate)?;
        let certified = CertifiedKey::new(chain, token.clone());
        match certified.keys_match() {
            Ok(()) => Ok(Arc::new(certified)),
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                Err(TlsError::KeyMismatch {
                    certificate: self.pair.certificate.display().to_string(),
                    key: self.pair.key.display().to_string(),
                })
            }
            Err(source) => Err(TlsError::Refused {
                what: "tls.certificate",
                source,
            }),
        }
    }

    fn resolver(&self) -> Result<Arc<SingleCertAndKey>, TlsError> {
        Ok(Arc::new(SingleCertAndKey::from(self.certified_key()?)))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The node's TLS certificate chain and key.
fn identity(
    pair: &KeyPair,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = read_chain(&pair.certificate)?;
    let key_pem = std::fs::read(&pair.key).map_err(|e| TlsError::File {
        path: pair.key.display().to_string(),
        reason: format!("cannot read: {e}"),
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::File {
        path: pair.key.display().to_string(),
        reason: format!("not a PEM private key: {e}"),
    })?;
    Ok((chain, key))
}

/// A PEM certificate chain file's certificates (at least one).
fn read_chain(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::File {
        path: path.display().to_string(),
        reason: format!("cannot read: {e}"),
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::File {
            path: path.display().to_string(),
            reason: format!("not a PEM certificate chain: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::File {
            path: path.display().to_string(),
            reason: "no certificate".into(),
        });
    }
    Ok(chain)
}

/// The relay's side of mutual TLS: a peer's server certificate must chain to its state's
/// anchors (`anchors_pem`), and the node presents `identity`; ALPN `h2` only (gRPC).
pub fn client_config(
    identity: Arc<CertifiedKey>,
    anchors_pem: &[u8],
) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    let anchors: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(anchors_pem)
        .collect::<Result<_, _>>()
        .map_err(TlsError::AnchorsUnreadable)?;
    // As tonic did: an anchor webpki cannot parse is skipped, not fatal (another of the
    // state's anchors may still chain).
    roots.add_parsable_certificates(anchors);
    if roots.is_empty() {
        return Err(TlsError::NoUsableAnchor);
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity)));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The operator side (the admin API): the node's certificate, no client certificate asked
/// (operators authenticate with a token), HTTP/1.1.
pub fn admin_server_config(id: &NodeIdentity) -> Result<rustls::ServerConfig, TlsError> {
    let resolver = id.resolver()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
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
pub fn server_config(
    id: &NodeIdentity,
    trust: &TrustSpace,
) -> Result<rustls::ServerConfig, TlsError> {
    let resolver = id.resolver()?;
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
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
