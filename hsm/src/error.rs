//! What can go wrong between the node and a PKCS#11 token, each failure its own variant so
//! that the operator is told what to fix (the module path, the token's label, the PIN, the
//! key's label or id, the token model). **Guarantee:** no message carries a PIN.

use std::path::PathBuf;

use tereze_support::fs::SecretError;

/// Debian's SoftHSM2 is built without GOST; a GOST key needs a vendor token.
pub(crate) const GOST_HINT: &str = "; Debian's SoftHSM2 has no GOST mechanisms: a GOST R 34.10 \
     key needs a vendor token (Rutoken, JaCarta) offering CKM_GOSTR3410 or the TC26 mechanisms \
     (docs/keys.md, Keys in hardware)";

/// A PKCS#11 failure.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    #[error("cannot load the PKCS#11 module {}: {source}", module.display())]
    ModuleMissing {
        module: PathBuf,
        #[source]
        source: cryptoki::error::Error,
    },
    #[error("the PKCS#11 module {} failed to start (C_Initialize): {source}{hint}", module.display())]
    Initialize {
        module: PathBuf,
        #[source]
        source: cryptoki::error::Error,
        /// What to check for a known module (SoftHSM2's configuration file).
        hint: &'static str,
    },
    #[error("no token labelled {token:?} in {} (tokens present: {present})", module.display())]
    TokenMissing {
        token: String,
        module: PathBuf,
        /// The labels found, comma-separated, or "none".
        present: String,
    },
    #[error("{count} tokens are labelled {token:?}; add serial=… to the URI to choose one")]
    TokenAmbiguous { token: String, count: usize },
    #[error("PIN file {}: {source}", path.display())]
    PinFile {
        path: PathBuf,
        #[source]
        source: SecretError,
    },
    #[error("PIN file {} is empty", path.display())]
    PinEmpty { path: PathBuf },
    #[error("wrong PIN for token {token:?} (read from {})", path.display())]
    WrongPin { token: String, path: PathBuf },
    #[error(
        "the user PIN of token {token:?} is locked after too many wrong attempts; the token's \
         security officer must unblock it"
    )]
    PinLocked { token: String },
    #[error("no private key {what} in token {token:?}")]
    ObjectMissing { token: String, what: String },
    #[error("{count} private keys match {what} in token {token:?}; name one with id=…")]
    ObjectAmbiguous {
        token: String,
        what: String,
        count: usize,
    },
    #[error(
        "token {token:?} holds no public key or certificate object for the private key {what}, \
         so its public half cannot be read (store the public key with the same id)"
    )]
    PublicKeyMissing { token: String, what: String },
    #[error(
        "{count} {objects} in token {token:?} could be the public half of {what}; keep one \
         per key id"
    )]
    PublicKeyAmbiguous {
        token: String,
        what: String,
        objects: &'static str,
        count: usize,
    },
    #[error(
        "the private key {what} in token {token:?} and the public key stored beside it are not \
         one pair: {reason}"
    )]
    KeyPairMismatch {
        token: String,
        what: String,
        reason: &'static str,
        #[source]
        source: Option<Box<tereze_codecs::dsig::DsigError>>,
    },
    #[error("the public key of {what} in token {token:?} is unreadable: {source}")]
    PublicKeyUnreadable {
        token: String,
        what: String,
        #[source]
        source: openssl::error::ErrorStack,
    },
    #[error("the private key {what} in token {token:?} is of type {key_type}; only EC and RSA keys can sign here{hint}")]
    UnsupportedKeyType {
        token: String,
        what: String,
        key_type: String,
        hint: &'static str,
    },
    #[error("token {token:?} does not offer {mechanism} for the key {what}{hint}")]
    MechanismMissing {
        token: String,
        what: String,
        mechanism: String,
        hint: &'static str,
    },
    #[error("token {token:?}: {operation}: {source}")]
    Token {
        token: String,
        operation: &'static str,
        #[source]
        source: cryptoki::error::Error,
    },
}

impl Pkcs11Error {
    /// Whether the failure is about the PIN (its file, its value, its lock), so that a caller
    /// names the PIN file's configuration field rather than the key's.
    pub fn is_pin(&self) -> bool {
        matches!(
            self,
            Pkcs11Error::PinFile { .. }
                | Pkcs11Error::PinEmpty { .. }
                | Pkcs11Error::WrongPin { .. }
                | Pkcs11Error::PinLocked { .. }
        )
    }

    /// Whether the failure is about the module library.
    pub fn is_module(&self) -> bool {
        matches!(
            self,
            Pkcs11Error::ModuleMissing { .. } | Pkcs11Error::Initialize { .. }
        )
    }
}
