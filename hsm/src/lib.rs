//! Signing keys in PKCS#11 tokens (hardware security modules, smart cards, SoftHSM2): the
//! `pkcs11:` URIs naming them, the process-wide module contexts, a token key as a codecs
//! [`ExternalKey`](tereze_codecs::dsig::ExternalKey), and the one loader every command and the
//! node use to turn a key string (a PEM path or a `pkcs11:` URI) into a
//! [`SigningKey`](tereze_codecs::dsig::SigningKey).
//!
//! **Invariant:** the only crate that speaks PKCS#11 (through `cryptoki`); codecs signs with a
//! token key without knowing it is one. No PIN is ever logged or put in an error.

mod error;
mod key;
mod loader;
mod module;
mod uri;

pub use error::Pkcs11Error;
pub use key::TokenKey;
pub use loader::{
    is_pkcs11, load_signing_key, open_tls_key, open_token_key, Fields, KeyLoadError, KeySource,
    Pkcs11Settings,
};
pub use uri::{Pkcs11Uri, UriError};
