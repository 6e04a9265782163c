//! The one way a signing key named in configuration or on the command line becomes a
//! [`SigningKey`]: a key string is either a PEM file's path or a `pkcs11:` URI; for a token
//! key the module library and the PIN file come from `[pkcs11]` (node.toml) or the command
//! line's `--pkcs11-module` and `--pin-file`.
//!
//! **Guarantee:** every refusal names the configuration field to fix ([`Fields`]), and a token
//! key is accepted only when its public half (read from the token) is the certificate's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tereze_codecs::dsig::{self, DsigError, SigningKey};

use crate::error::Pkcs11Error;
use crate::key::{Pin, TokenKey};
use crate::uri::{Pkcs11Uri, UriError};

/// Where a private key is: a PEM file or a key in a PKCS#11 token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Pem(PathBuf),
    Pkcs11(Pkcs11Uri),
}

impl KeySource {
    /// Reads a key string: `pkcs11:…` is a token key, anything else a file path.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        if text.starts_with("pkcs11:") {
            Pkcs11Uri::parse(text).map(KeySource::Pkcs11)
        } else {
            Ok(KeySource::Pem(PathBuf::from(text)))
        }
    }
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Pem(p) => write!(f, "{}", p.display()),
            KeySource::Pkcs11(u) => write!(f, "{u}"),
        }
    }
}

/// How to reach a token: the module library and the PIN file (both needed for a `pkcs11:`
/// key, unused for a PEM key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Settings {
    pub module: Option<PathBuf>,
    pub pin_file: Option<PathBuf>,
}

/// The names of the configuration fields (or flags) a caller took each value from, so that
/// an error says which one to fix.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub key: &'static str,
    pub certificate: &'static str,
    pub module: &'static str,
    pub pin_file: &'static str,
}

impl Fields {
    /// The node's `node.toml` fields for its signing key.
    pub const NODE_SIGNING: Fields = Fields {
        key: "signing.key",
        certificate: "signing.certificate",
        module: "pkcs11.module",
        pin_file: "pkcs11.pin_file",
    };
    /// The node's `node.toml` fields for its TLS key.
    pub const NODE_TLS: Fields = Fields {
        key: "tls.key",
        certificate: "tls.certificate",
        module: "pkcs11.module",
        pin_file: "pkcs11.pin_file",
    };
    /// The command line's flags.
    pub const CLI: Fields = Fields {
        key: "--key",
        certificate: "--cert",
        module: "--pkcs11-module",
        pin_file: "--pin-file",
    };
}

/// Why a signing key could not be loaded; the text starts with the field to fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    #[error("{field}: {uri}: {source}")]
    Uri {
        field: &'static str,
        uri: String,
        #[source]
        source: UriError,
    },
    #[error("{field} ({}): cannot read: {source}", path.display())]
    Read {
        field: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{field} ({key}): {source}")]
    Key {
        field: &'static str,
        /// The key's path or URI.
        key: String,
        #[source]
        source: DsigError,
    },
    #[error("{field}: {source}")]
    Certificate {
        field: &'static str,
        #[source]
        source: DsigError,
    },
    #[error("{field} is not set, and {key} names a key in a token ({uri})")]
    NotSet {
        field: &'static str,
        key: &'static str,
        uri: String,
    },
    #[error("{field}: {source}")]
    Pkcs11 {
        field: &'static str,
        #[source]
        source: Pkcs11Error,
    },
}

/// Opens the key a key string names, with the token's public key checked against
/// `certificate_pem` (the first certificate is the signer's; the others are intermediates,
/// and a self-signed one among them is left out of signatures).
pub fn load_signing_key(
    key: &str,
    certificate_pem: Option<&[u8]>,
    settings: &Pkcs11Settings,
    fields: &Fields,
) -> Result<SigningKey, KeyLoadError> {
    let source = KeySource::parse(key).map_err(|source| KeyLoadError::Uri {
        field: fields.key,
        uri: key.to_owned(),
        source,
    })?;
    match source {
        KeySource::Pem(path) => {
            let pem = std::fs::read(&path).map_err(|source| KeyLoadError::Read {
                field: fields.key,
                path: path.clone(),
                source,
            })?;
            SigningKey::from_pem(&pem, certificate_pem).map_err(|source| KeyLoadError::Key {
                field: fields.key,
                key: path.display().to_string(),
                source,
            })
        }
        KeySource::Pkcs11(uri) => {
            let token = open_token_key(&uri, settings, fields)?;
            let (leaf, chain) = match certificate_pem {
                Some(pem) => {
                    let (leaf, chain) = dsig::certificate_chain(pem).map_err(|source| {
                        KeyLoadError::Certificate {
                            field: fields.certificate,
                            source,
                        }
                    })?;
                    (Some(leaf), chain)
                }
                None => (None, Vec::new()),
            };
            SigningKey::external(Arc::new(token), leaf, chain).map_err(|source| KeyLoadError::Key {
                field: fields.key,
                key: uri.to_string(),
                source,
            })
        }
    }
}

/// Opens the token key `uri` names with the module and PIN file of `settings`.
pub fn open_token_key(
    uri: &Pkcs11Uri,
    settings: &Pkcs11Settings,
    fields: &Fields,
) -> Result<TokenKey, KeyLoadError> {
    let not_set = |field| KeyLoadError::NotSet {
        field,
        key: fields.key,
        uri: uri.to_string(),
    };
    let module = settings
        .module
        .as_deref()
        .ok_or_else(|| not_set(fields.module))?;
    let pin_file = settings
        .pin_file
        .as_deref()
        .ok_or_else(|| not_set(fields.pin_file))?;
    let classify = |source: Pkcs11Error| KeyLoadError::Pkcs11 {
        field: if source.is_pin() {
            fields.pin_file
        } else if source.is_module() {
            fields.module
        } else {
            fields.key
        },
        source,
    };
    let pin = Pin::read(pin_file).map_err(classify)?;
    TokenKey::open(uri, module, &pin).map_err(classify)
}

/// Opens the token key a `pkcs11:` key string names to be the node's TLS key: an EC key, or
/// an RSA key only when the token offers `CKM_RSA_PKCS_PSS` (TLS 1.3 signs with RSA-PSS only,
/// and the node offers nothing weaker). The certificate is checked by the TLS configuration.
pub fn open_tls_key(
    key: &str,
    settings: &Pkcs11Settings,
    fields: &Fields,
) -> Result<TokenKey, KeyLoadError> {
    let uri = Pkcs11Uri::parse(key).map_err(|source| KeyLoadError::Uri {
        field: fields.key,
        uri: key.to_owned(),
        source,
    })?;
    let token = open_token_key(&uri, settings, fields)?;
    if let Some(source) = token.tls_refusal() {
        return Err(KeyLoadError::Pkcs11 {
            field: fields.key,
            source,
        });
    }
    Ok(token)
}

/// Whether `path` could be a key string naming a token key (for callers that check a PEM
/// key file's permissions only when it is a file).
pub fn is_pkcs11(key: &Path) -> bool {
    key.to_str().is_some_and(|s| s.starts_with("pkcs11:"))
}
