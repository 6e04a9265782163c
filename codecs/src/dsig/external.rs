//! Private keys that live outside this process (a PKCS#11 token, an HSM): what a signature
//! scheme may ask of such a key.
//!
//! A key in a token is a handle: it never leaves the device, so the scheme does the hashing
//! and encoding in software and asks the key for the one private-key operation, a
//! [`RawSign`]. Codecs knows no token library; the crate that talks to the device implements
//! [`ExternalKey`]. **Guarantee:** an implementation returns the signature in exactly the form
//! each [`RawSign`] variant names, or an error; the scheme checks the length before using it.

use openssl::pkey::{PKey, Public};

/// The raw private-key operations a signature scheme asks of an [`ExternalKey`].
///
/// New variants may be added (a GOST token's operations, for instance); an implementation
/// answers those it does not know with an error naming the operation.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RawSign<'a> {
    /// ECDSA over a digest already computed: the answer is `r || s`, each as long as the
    /// curve order (PKCS#11 `CKM_ECDSA`; also the XMLDSig `SignatureValue` form).
    EcdsaDigest { digest: &'a [u8] },
    /// RSA PKCS#1 v1.5 over a DER `DigestInfo` (algorithm identifier and digest): the answer
    /// is the signature, as long as the modulus (PKCS#11 `CKM_RSA_PKCS`).
    RsaPkcs1DigestInfo { digest_info: &'a [u8] },
    /// RSA-PSS over a digest already computed, MGF1 with the same hash and a salt of
    /// `salt_len` bytes (PKCS#11 `CKM_RSA_PKCS_PSS`). `hash` is the digest's short name
    /// (`sha256`, `sha384`, `sha512`, as `DigestMethod::name`).
    RsaPssDigest {
        hash: &'static str,
        digest: &'a [u8],
        salt_len: usize,
    },
}

impl RawSign<'_> {
    /// A short name of the operation for error messages.
    pub fn name(&self) -> String {
        match self {
            RawSign::EcdsaDigest { .. } => "ECDSA".into(),
            RawSign::RsaPkcs1DigestInfo { .. } => "RSA PKCS#1 v1.5".into(),
            RawSign::RsaPssDigest { hash, .. } => format!("RSA-PSS with {hash}"),
        }
    }
}

/// The error an [`ExternalKey`] reports; the implementation's own error type, kept as the
/// cause so callers can tell a wrong PIN from a missing mechanism.
pub type ExternalKeyError = Box<dyn std::error::Error + Send + Sync>;

/// A private key held elsewhere, reached through a handle.
pub trait ExternalKey: Send + Sync + std::fmt::Debug {
    /// The public half, as the device reports it.
    fn public_key(&self) -> PKey<Public>;
    /// Performs one raw private-key operation (see [`RawSign`] for each answer's form).
    fn sign_raw(&self, operation: RawSign<'_>) -> Result<Vec<u8>, ExternalKeyError>;
}

/// The DER `DigestInfo` prefix (RFC 8017 §9.2, note 1) for a digest's short name; the digest
/// value follows it.
pub(crate) fn digest_info_prefix(hash: &str) -> Option<&'static [u8]> {
    const SHA1: &[u8] = &[
        0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
    ];
    const SHA256: &[u8] = &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    const SHA384: &[u8] = &[
        0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
        0x05, 0x00, 0x04, 0x30,
    ];
    const SHA512: &[u8] = &[
        0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
        0x05, 0x00, 0x04, 0x40,
    ];
    match hash {
        "sha1" => Some(SHA1),
        "sha256" => Some(SHA256),
        "sha384" => Some(SHA384),
        "sha512" => Some(SHA512),
        _ => None,
    }
}
