//! The trust space as written (TOML, or what the signed XML document says): states, their
//! anchors, CRLs and nodes, and the recognition matrix, before it is checked and put in force.

use serde::Deserialize;

use crate::Role;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNode {
    pub endpoint: String,
    pub server_name: String,
    pub tls_certificate: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileState {
    pub code: String,
    pub name: String,
    pub role: Role,
    pub anchors: Vec<String>,
    #[serde(default)]
    pub crls: Vec<String>,
    /// CRL locations (`http://…`, usually a peer node's `/v1/crl`): fetched and verified
    /// against this state's anchors by every node (docs/recognition.md).
    #[serde(default)]
    pub crl_urls: Vec<String>,
    #[serde(default, rename = "node")]
    pub nodes: Vec<FileNode>,
    /// Common processes (`P.CC.01`) this state's nodes may use; `"*"` for all.
    #[serde(default)]
    pub processes: Vec<String>,
    /// A non-member partner state ("export of one = import of another").
    #[serde(default)]
    pub partner: bool,
    /// A tester state that exists only to test (docs/conformance.md): its messages are
    /// recognised and receipted like any other, but kept out of the national inbox and
    /// quarantine. Absent: normal traffic.
    #[serde(default)]
    pub conformance: bool,
    /// The algorithms this state's documents may be signed with (`[state.algorithms]`,
    /// docs/protocol.md). Absent: the verifier's defaults, nothing narrower.
    #[serde(default)]
    pub algorithms: Option<FileAlgorithms>,
    /// The time-stamping authorities whose tokens count for this state's signatures
    /// (`[[state.timestamp_authority]]`, docs/timestamps.md). Absent: none.
    #[serde(default, rename = "timestamp_authority")]
    pub timestamp_authorities: Vec<FileTimestampAuthority>,
    /// This state's envelopes must carry a time-stamp token before delivery (its outbox
    /// waits for one). Needs at least one authority. Absent: tokens follow when they can.
    #[serde(default)]
    pub timestamp_required: bool,
    /// The document types whose envelopes this state, as the receiving state, requires to
    /// record a valid signature of the issuing authority (`[[state.national_signature]]`,
    /// docs/recognition.md). Absent: none required.
    #[serde(default, rename = "national_signature")]
    pub national_signatures: Vec<FileNationalSignature>,
}

/// One document type and whether a national signature is required on it, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNationalSignature {
    /// Document type code (`R.SF.01.001`) or `"*"` for every type.
    pub document: String,
    /// Whether recognition requires the record (`false` lists the type without requiring).
    pub required: bool,
}

/// One RFC 3161 time-stamping authority, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTimestampAuthority {
    /// Where tokens are requested (`http://host[:port]/path`, RFC 3161 §3.4).
    pub url: String,
    /// PEM certificates, at least the one a token's signer must chain to (the authority's
    /// CA or its signing certificate).
    pub certificates: String,
}

/// A state's algorithm policy as written: names (`ecdsa-sha256`, `sha256`) or XMLDSig URIs.
/// Each key left out restricts nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAlgorithms {
    /// Permitted `SignatureMethod`s.
    #[serde(default)]
    pub signature: Option<Vec<String>>,
    /// Permitted `DigestMethod`s of the references.
    #[serde(default)]
    pub digest: Option<Vec<String>>,
    /// Smallest RSA modulus, in bits.
    #[serde(default)]
    pub min_rsa_bits: Option<u32>,
    /// Smallest EC group order, in bits (256: P-256 and larger).
    #[serde(default)]
    pub min_ec_bits: Option<u32>,
}

/// One row of the recognition matrix, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecognition {
    /// Document type code (`R.CC.01.001`) or `"*"`.
    pub document: String,
    /// Issuing state (`KZ`), state and authority (`KZ:KGD`), or `"*"`.
    pub issuer: String,
    /// Recognising states, or `["*"]`.
    pub recognised_by: Vec<String>,
    /// `YYYY-MM-DD`, inclusive.
    pub valid_from: String,
    /// `YYYY-MM-DD`, inclusive; empty for an open interval.
    #[serde(default)]
    pub valid_to: String,
}

/// The trust space as written: the TOML source, or what the signed XML document says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub version: u64,
    pub issued_at: String,
    /// How far in the future a signing time may lie (clock skew between states).
    #[serde(default = "default_skew")]
    pub max_clock_skew_seconds: i64,
    #[serde(rename = "state")]
    pub states: Vec<FileState>,
    #[serde(default, rename = "recognition")]
    pub recognition: Vec<FileRecognition>,
}

fn default_skew() -> i64 {
    300
}
