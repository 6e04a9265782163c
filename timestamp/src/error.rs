//! Every way obtaining or checking a time-stamp can fail, each its own variant, with the
//! cause kept (`#[source]`) and one classification ([`Classify`]).

use tereze_support::class::{Class, Classify};

/// Why a time-stamp could not be obtained, or a token or evidence was refused.
#[derive(Debug, thiserror::Error)]
pub enum TimestampError {
    /// The authority URL cannot be used (`https://`, no host, …).
    #[error("time-stamping authority URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// The authority did not answer, or not with HTTP success.
    #[error("time-stamping authority {url}: {reason}")]
    Transport { url: String, reason: String },
    /// The authority's answer is not a DER TimeStampResp.
    #[error("time-stamping authority {url}: the answer is not an RFC 3161 TimeStampResp")]
    BadResponse {
        url: String,
        #[source]
        source: der::Error,
    },
    /// The authority refused the request (PKIStatus other than granted / grantedWithMods).
    #[error("time-stamping authority {url} refused the request: status {status}, failInfo {fail_info}{}", .text.as_deref().map(|t| format!(", {t:?}")).unwrap_or_default())]
    Rejected {
        url: String,
        status: String,
        fail_info: String,
        text: Option<String>,
    },
    /// The authority said granted but sent no token.
    #[error("time-stamping authority {url}: status granted but no token in the answer")]
    NoToken { url: String },
    /// The token's nonce is not the request's (a replayed or misrouted answer).
    #[error("time-stamping authority {url}: the token's nonce is not the request's")]
    NonceMismatch { url: String },
    /// The bytes are not a time-stamp token (CMS SignedData over a TSTInfo).
    #[error("not a time-stamp token: {what}")]
    NotAToken {
        what: String,
        #[source]
        source: Option<der::Error>,
    },
    /// The token stamps another imprint than the expected one.
    #[error("the token stamps another imprint than the expected one")]
    OtherImprint,
    /// SHA-1 (for the imprint or the signature's digest) is refused.
    #[error("the token uses SHA-1 ({what}), which is refused")]
    Sha1 { what: &'static str },
    /// A digest or signature algorithm this verifier does not accept.
    #[error("unsupported algorithm {oid} for {what}")]
    UnsupportedAlgorithm { what: &'static str, oid: String },
    /// A signed attribute is missing, repeated or wrong.
    #[error("signed attribute {attribute}: {reason}")]
    BadSignedAttribute {
        attribute: &'static str,
        reason: String,
    },
    /// The signer certificate is not among the token's certificates.
    #[error("the token does not carry its signer's certificate")]
    NoSignerCertificate,
    /// The signer certificate is not usable for time-stamping (RFC 3161 §2.3).
    #[error("the signer certificate ({subject}) is not a time-stamping certificate: {reason}")]
    NotTimestampingCertificate { subject: String, reason: String },
    /// The signature over the signed attributes does not verify.
    #[error("the token's signature does not verify with its signer certificate ({subject})")]
    BadSignature {
        subject: String,
        #[source]
        source: Option<openssl::error::ErrorStack>,
    },
    /// The signer certificate chains to no listed authority.
    #[error("the token's signer ({subject}) does not chain to a trusted time-stamping authority: {reason}")]
    UntrustedAuthority { subject: String, reason: String },
    /// The signer's chain to a listed authority is not valid at the token's genTime.
    #[error("the token's signer ({subject}) or its chain was not valid at the token's time {gen_time}: {reason}")]
    NotValidAtGenTime {
        subject: String,
        gen_time: String,
        reason: String,
    },
    /// Batch evidence bytes that are not in the documented encoding.
    #[error("time-stamp evidence: {0}")]
    BadEvidence(String),
    /// An authority's configured certificates cannot be read.
    #[error("time-stamping authority {url}: certificates: {reason}")]
    BadAuthority {
        url: String,
        reason: String,
        #[source]
        source: Option<openssl::error::ErrorStack>,
    },
    /// OpenSSL failed where it does not for valid input (hashing, store building).
    #[error("OpenSSL: {what}")]
    Crypto {
        what: &'static str,
        #[source]
        source: openssl::error::ErrorStack,
    },
}

impl Classify for TimestampError {
    fn class(&self) -> Class {
        use TimestampError::*;
        match self {
            BadUrl { .. } | BadAuthority { .. } => Class::Invalid,
            Transport { .. }
            | BadResponse { .. }
            | Rejected { .. }
            | NoToken { .. }
            | NonceMismatch { .. } => Class::Upstream,
            NotAToken { .. }
            | OtherImprint
            | Sha1 { .. }
            | UnsupportedAlgorithm { .. }
            | BadSignedAttribute { .. }
            | NoSignerCertificate
            | NotTimestampingCertificate { .. }
            | BadSignature { .. }
            | UntrustedAuthority { .. }
            | NotValidAtGenTime { .. }
            | BadEvidence(_) => Class::Invalid,
            Crypto { .. } => Class::Internal,
        }
    }
}

impl TimestampError {
    /// A short stable name of the variant, for metrics, reason codes and tests.
    pub fn code(&self) -> &'static str {
        use TimestampError::*;
        match self {
            BadUrl { .. } => "bad-url",
            Transport { .. } => "transport",
            BadResponse { .. } => "bad-response",
            Rejected { .. } => "rejected",
            NoToken { .. } => "no-token",
            NonceMismatch { .. } => "nonce-mismatch",
            NotAToken { .. } => "not-a-token",
            OtherImprint => "other-imprint",
            Sha1 { .. } => "sha1",
            UnsupportedAlgorithm { .. } => "unsupported-algorithm",
            BadSignedAttribute { .. } => "bad-signed-attribute",
            NoSignerCertificate => "no-signer-certificate",
            NotTimestampingCertificate { .. } => "not-timestamping-certificate",
            BadSignature { .. } => "bad-signature",
            UntrustedAuthority { .. } => "untrusted-authority",
            NotValidAtGenTime { .. } => "not-valid-at-gen-time",
            BadEvidence(_) => "bad-evidence",
            BadAuthority { .. } => "bad-authority",
            Crypto { .. } => "crypto",
        }
    }
}
