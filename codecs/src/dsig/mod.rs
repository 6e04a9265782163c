//! XML Signature (W3C XMLDSig 1.1 core): enveloped signatures over the whole document or an
//! element by identifier, exclusive or inclusive C14N, SHA-2 digests, RSA and ECDSA through
//! OpenSSL, `X509Data` certificates; verification under named profiles (enveloped, detached
//! by id, WS-Security) and of documents with several signatures.
//!
//! Verification returns the signed content, re-parsed from the exact bytes that were digested,
//! and callers must read only that: this is the defence against signature wrapping. Strict
//! rules (the signature where its profile puts it, references only to the element the caller
//! names, no unsigned comments in signed content, unique identifiers) refuse the known wrapping
//! shapes outright.

mod algorithm;
pub mod crl;
mod defaults;
mod external;
pub mod gost;
mod keys;
mod names;
mod path;
mod profile;
mod several;
mod sign;
#[cfg(test)]
mod template;
mod verify;
mod wss;
mod xpath;

pub use algorithm::{
    Algorithms, DigestMethod, Ecdsa, RsaPadding, RsaPkcs1, RsaPss, SignatureScheme, MIN_RSA_BITS,
};
pub use external::{ExternalKey, ExternalKeyError, RawSign};
pub use keys::{
    certificate_chain, common_name, format_name, key_fingerprint, subject_of, SigningKey,
    TrustStore,
};
pub use path::{ElementPath, PathError, ResolveError, Step};
pub use profile::{verify_profile, Expect, Profile, SignedElement, UnknownProfile};
pub use several::{verify_signatures, Select};
pub use sign::{
    bytes_scheme, sign_bytes, sign_enveloped, verify_bytes, BytesSignature, SignError, SignOptions,
    SignTarget,
};
pub use verify::{
    claimed_signature_method, claimed_signature_value, claimed_signer, signatures_of, verify,
    Outcome, SignatureReport, SignedReference, Signer, Verified, VerifyError, VerifyPolicy,
};
pub use wss::{BASE64_ENCODING, SOAP11_NAMESPACE, SOAP12_NAMESPACE, WSSE_NAMESPACE, X509V3_TOKEN};

/// The XMLDSig namespace.
pub const DSIG_NAMESPACE: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The enveloped-signature transform.
pub const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

// What an algorithm policy (the trust space's `[state.algorithms]`) reads and judges.
pub use names::{SignatureMethodName, SIGNATURE_METHODS};
pub use verify::SignerKey;

/// Failures of keys, algorithms and the crypto library, shared by signing and verifying.
#[derive(Debug, thiserror::Error)]
pub enum DsigError {
    /// A key or certificate that cannot be used (the text says why).
    #[error("key: {0}")]
    Key(String),
    /// Key or certificate bytes OpenSSL could not read (`what` they should have been).
    #[error("key: {what}: {source}")]
    KeyUnreadable {
        what: &'static str,
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// Too short for its algorithm (the text names the size and the minimum).
    #[error("weak key: {0}")]
    WeakKey(String),
    /// No loaded provider implements the algorithm `uri`; for a GOST algorithm, `engine` says
    /// why the GOST engine could not be loaded (and names the package to install).
    #[error("algorithm {uri} is not available: {}", match engine {
        Some(e) => e.to_string(),
        None => "no OpenSSL provider implements it".to_owned(),
    })]
    AlgorithmUnavailable {
        uri: String,
        #[source]
        engine: Option<tereze_gost_engine::EngineError>,
    },
    /// The key's type does not match the `SignatureMethod` (`needs` is the key type it
    /// takes, `key` what was found), e.g. a 512-bit GOST certificate under the 256-bit method.
    #[error("{method} needs {needs}, but the key is {key}")]
    KeyMismatch {
        method: String,
        needs: &'static str,
        key: String,
    },
    /// A GOST key whose public-key parameter set is not one of the published sets accepted.
    #[error("{key} key with parameter set {oid}, which is not accepted (accepted: {accepted})")]
    UnknownParameterSet {
        key: &'static str,
        oid: String,
        accepted: String,
    },
    /// The text says what is wrong with the value.
    #[error("malformed SignatureValue: {0}")]
    MalformedSignatureValue(String),
    /// Why the signer is not trusted: the verdict's reason is the payload, matched by callers
    /// (recognition tells an expired certificate from an unknown chain by it).
    #[error("signer not trusted: {0}")]
    UntrustedSigner(String),
    /// A CRL from the signer's chain lists a certificate of it as revoked at or before the
    /// verification time (`at` and `reason` as the CRL gives them).
    #[error("signer not trusted: {subject}: revoked at {at}, reason {reason}")]
    Revoked {
        subject: String,
        at: String,
        reason: &'static str,
    },
    /// The CRLs from `issuer` cannot vouch for the verification time `at`: the latest
    /// `nextUpdate` among them (`next_update`) is before it.
    #[error("CRL of {issuer} is not valid at the verification time {at} (next update {next_update}): give a CRL current at that time")]
    CrlNotCurrent {
        issuer: String,
        at: String,
        next_update: String,
    },
    /// A CRL names an issuer of the chain, but that issuer did not sign it, or the issuer's
    /// certificate is not at hand to check it (`why` says which).
    #[error("CRL of {issuer} cannot be used: {why}")]
    CrlNotAuthentic { issuer: String, why: &'static str },
    /// Bytes given as CRLs could not be read.
    #[error("CRL: {0}")]
    CrlUnreadable(#[source] crl::CrlReadError),
    /// The algorithm's URI: its scheme cannot sign with a key held in a token.
    #[error("algorithm {0} cannot sign with a key in a token (it needs the private key in this process)")]
    NotForExternalKey(String),
    /// The key in a token refused or failed the operation (named); the cause says why.
    #[error("key in a token: {operation} signing failed: {source}")]
    ExternalKey {
        operation: String,
        #[source]
        source: ExternalKeyError,
    },
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}
