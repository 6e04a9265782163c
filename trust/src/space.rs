//! The trust space as this node reads it (DESIGN §5): the states, their trust anchors (for
//! document signatures and TLS), their CRLs, and their nodes with endpoints and TLS
//! certificates. It answers the two questions the relay asks: which state's node is on the
//! other end of this TLS connection, and which anchors a state's document signatures must
//! chain to. (The signed, versioned trust-space document that the Commission publishes and
//! nodes fetch is issue 6; this file is its unsigned predecessor, written by
//! `tereze pki init-dev`.)

use std::collections::BTreeMap;
use std::path::Path;

use crate::file::File;
use openssl::hash::MessageDigest;
use openssl::x509::{X509Crl, X509};
use tereze_codecs::dsig::TrustStore;
use tereze_timestamp::Authority;

use crate::algorithms::AlgorithmPolicy;
use crate::Role;

/// One row of the recognition matrix: documents of this type from this issuer are
/// recognised by these states between these dates (DESIGN §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecognitionRule {
    pub document: String,
    pub issuer_state: String,
    /// `None`: every authority of the issuing state.
    pub issuer_authority: Option<String>,
    pub recognised_by: Vec<String>,
    pub valid_from: chrono::NaiveDate,
    pub valid_to: Option<chrono::NaiveDate>,
}

impl RecognitionRule {
    /// Whether this rule recognises `document` issued by `state`/`authority` for `recogniser`
    /// on `date`.
    pub fn covers(
        &self,
        document: &str,
        state: &str,
        authority: &str,
        recogniser: &str,
        date: chrono::NaiveDate,
    ) -> bool {
        let any = |v: &str, x: &str| v == "*" || v == x;
        any(&self.document, document)
            && any(&self.issuer_state, state)
            && self
                .issuer_authority
                .as_deref()
                .is_none_or(|a| a == authority)
            && self.recognised_by.iter().any(|r| any(r, recogniser))
            && self.valid_from <= date
            && self.valid_to.is_none_or(|to| date <= to)
    }
}

/// One node of a state.
#[derive(Debug, Clone)]
pub struct NodeEntry {
    pub endpoint: String,
    pub server_name: String,
    fingerprint: Vec<u8>,
}

/// One state (or the hub).
#[derive(Clone)]
pub struct StateEntry {
    pub code: String,
    pub role: Role,
    pub anchors: Vec<X509>,
    pub anchors_pem: String,
    /// DER.
    pub crls: Vec<Vec<u8>>,
    pub nodes: Vec<NodeEntry>,
    /// The anchors as a document-signature trust store (it caches accepted chains).
    pub documents: TrustStore,
    /// Common processes its nodes may use (`"*"`: all).
    pub processes: Vec<String>,
    pub partner: bool,
    /// Conformance traffic only: what this state sends is kept apart from the national
    /// system (docs/conformance.md).
    pub conformance: bool,
    /// The CRLs, parsed (`crls` holds their DER for TLS): inline ones and, in the trust
    /// space in force at a node, those fetched from `crl_urls`.
    pub revocations: Vec<std::sync::Arc<X509Crl>>,
    /// Where this state publishes its CRLs.
    pub crl_urls: Vec<String>,
    /// The algorithms its documents may use; `None`: the verifier's defaults.
    pub algorithms: Option<AlgorithmPolicy>,
    /// The RFC 3161 authorities whose tokens count for this state's signatures (each named
    /// by this state's code); empty: none (docs/timestamps.md).
    pub timestamp_authorities: Vec<Authority>,
    /// This state's envelopes must carry a token before delivery.
    pub timestamp_required: bool,
    /// Document types (`R.SF.01.001`, or `*`) whose envelopes this state, receiving them,
    /// requires to record a valid signature of the issuing authority; empty: none.
    pub national_signature_required: Vec<String>,
}

impl StateEntry {
    pub fn may_use(&self, process: &str) -> bool {
        self.processes.iter().any(|p| p == "*" || p == process)
    }

    /// Whether this state, receiving a document of `type_code`, requires the envelope to
    /// record a valid signature of its issuing authority.
    pub fn requires_national_signature(&self, type_code: &str) -> bool {
        self.national_signature_required
            .iter()
            .any(|d| d == "*" || d == type_code)
    }

    /// When `cert` was revoked according to one of this state's CRLs from its issuer.
    pub fn revoked_at(&self, cert: &X509) -> Option<chrono::DateTime<chrono::Utc>> {
        let revocation =
            tereze_codecs::dsig::crl::revoked_in(self.revocations.iter().map(|c| &***c), cert)?;
        chrono::DateTime::from_timestamp(revocation.at, 0)
    }
}

impl std::fmt::Debug for StateEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateEntry")
            .field("code", &self.code)
            .field("role", &self.role)
            .field("partner", &self.partner)
            .field("conformance", &self.conformance)
            .field("anchors", &self.anchors.len())
            .field("crls", &self.crls.len())
            .field("nodes", &self.nodes.len())
            .field("algorithms", &self.algorithms)
            .field("timestamp_authorities", &self.timestamp_authorities)
            .field("timestamp_required", &self.timestamp_required)
            .field(
                "national_signature_required",
                &self.national_signature_required,
            )
            .finish()
    }
}

/// The loaded trust space.
#[derive(Debug, Clone)]
pub struct TrustSpace {
    pub version: u64,
    pub issued_at: String,
    pub max_clock_skew_seconds: i64,
    pub states: BTreeMap<String, StateEntry>,
    pub recognition: Vec<RecognitionRule>,
    /// Who signed it (the Commission's signer), for a signed document.
    pub signer: Option<String>,
    /// The bytes it was read from (what a hub hands to nodes).
    pub source: Vec<u8>,
}

/// Why trust-space bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("a signed trust space needs the Commission's anchor (trust_anchor in node.toml, --anchor on the command line)")]
    NeedsAnchor,
    #[error("an unsigned (TOML) trust space is refused when a Commission anchor is configured; sign it with `tereze trust build` and `tereze trust sign`")]
    UnsignedRefused,
    #[error(transparent)]
    Unverified(#[from] crate::document::VerifyError),
    #[error("not UTF-8")]
    NotUtf8,
    /// On one line: the parser's message spans several.
    #[error("{}", .0.to_string().trim_end().replace('\n', " "))]
    Toml(#[source] toml::de::Error),
}

/// A CRL in force that OpenSSL could not write back as DER.
#[derive(Debug, thiserror::Error)]
#[error("{state}: CRL: {source}")]
pub struct CrlDerError {
    pub state: String,
    #[source]
    pub source: openssl::error::ErrorStack,
}

/// Why a trust space was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TrustError {
    path: String,
    reason: String,
}

pub fn fingerprint(der: &[u8]) -> Vec<u8> {
    openssl::hash::hash(MessageDigest::sha256(), der)
        .map(|d| d.to_vec())
        .unwrap_or_default()
}

/// `R.<AA>.<nn>.<nnn>`: the envelope's document type code.
fn is_document_type(s: &str) -> bool {
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    matches!(
        s.split('.').collect::<Vec<_>>().as_slice(),
        ["R", area, nn, nnn]
            if area.len() == 2
                && area.bytes().all(|b| b.is_ascii_uppercase())
                && digits(nn, 2)
                && digits(nnn, 3)
    )
}

/// Reads a PEM anchor file into a trust store.
pub fn read_anchor(path: &Path) -> Result<TrustStore, TrustError> {
    let err = |reason: String| TrustError {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let mut store = TrustStore::new();
    store
        .add_pem(&pem)
        .map_err(|e| err(format!("not a PEM certificate: {e}")))?;
    Ok(store)
}

impl TrustSpace {
    /// Loads a trust space: the Commission-signed XML document (verified against `anchor`,
    /// which it then requires), or, for development only, the unsigned TOML source.
    pub fn load(path: &Path, anchor: Option<&TrustStore>) -> Result<Self, TrustError> {
        let err = |reason: String| TrustError {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let (file, signer) = Self::read(&bytes, anchor).map_err(|e| err(e.to_string()))?;
        let mut space = Self::from_file(file, path)?;
        space.signer = signer;
        space.source = bytes;
        Ok(space)
    }

    /// Reads trust-space bytes: a signed XML document (checked against `anchor`) or TOML
    /// (accepted only when no anchor is configured).
    pub fn read(
        bytes: &[u8],
        anchor: Option<&TrustStore>,
    ) -> Result<(File, Option<String>), ReadError> {
        let looks_xml = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'<');
        if looks_xml {
            let Some(anchor) = anchor else {
                return Err(ReadError::NeedsAnchor);
            };
            let (file, signer) = crate::document::verify(bytes, anchor)?;
            return Ok((file, Some(signer)));
        }
        if anchor.is_some() {
            return Err(ReadError::UnsignedRefused);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)?;
        let file: File = toml::from_str(text).map_err(ReadError::Toml)?;
        Ok((file, None))
    }

    /// Checks and indexes what a trust space says; errors name the field.
    pub fn from_file(file: File, path: &Path) -> Result<Self, TrustError> {
        let err = |reason: String| TrustError {
            path: path.display().to_string(),
            reason,
        };
        let mut states = BTreeMap::new();
        for (i, s) in file.states.into_iter().enumerate() {
            let at = |f: &str| format!("state[{i}] ({}).{f}", s.code);
            let mut anchors = Vec::new();
            for (j, pem) in s.anchors.iter().enumerate() {
                let certs = X509::stack_from_pem(pem.as_bytes()).map_err(|e| {
                    err(format!(
                        "{}[{j}]: not a PEM certificate: {e}",
                        at("anchors")
                    ))
                })?;
                if certs.is_empty() {
                    return Err(err(format!("{}[{j}]: no certificate", at("anchors"))));
                }
                anchors.extend(certs);
            }
            if anchors.is_empty() {
                return Err(err(format!(
                    "{}: a state needs a trust anchor",
                    at("anchors")
                )));
            }
            let mut crls = Vec::new();
            let mut revocations = Vec::new();
            for (j, pem) in s.crls.iter().enumerate() {
                let crl = X509Crl::from_pem(pem.as_bytes())
                    .map_err(|e| err(format!("{}[{j}]: not a PEM CRL: {e}", at("crls"))))?;
                crls.push(
                    crl.to_der()
                        .map_err(|e| err(format!("{}[{j}]: {e}", at("crls"))))?,
                );
                revocations.push(std::sync::Arc::new(crl));
            }
            for (j, url) in s.crl_urls.iter().enumerate() {
                if let Err(e) = tereze_support::http::parse_url(url) {
                    return Err(err(format!("{}[{j}]: {e}", at("crl_urls"))));
                }
            }
            let mut nodes = Vec::new();
            for (j, n) in s.nodes.iter().enumerate() {
                let cert = X509::from_pem(n.tls_certificate.as_bytes())
                    .map_err(|e| err(format!("{}[{j}].tls_certificate: {e}", at("node"))))?;
                let der = cert
                    .to_der()
                    .map_err(|e| err(format!("{}[{j}].tls_certificate: {e}", at("node"))))?;
                nodes.push(NodeEntry {
                    endpoint: n.endpoint.clone(),
                    server_name: n.server_name.clone(),
                    fingerprint: fingerprint(&der),
                });
            }
            let algorithms = s
                .algorithms
                .as_ref()
                .map(AlgorithmPolicy::read)
                .transpose()
                .map_err(|e| err(format!("{}.{e}", at("algorithms"))))?
                // An empty table restricts nothing: the same as none.
                .filter(|p| !p.restricts_nothing());
            let mut timestamp_authorities = Vec::new();
            for (j, a) in s.timestamp_authorities.iter().enumerate() {
                let field = format!("{}[{j}]", at("timestamp_authority"));
                if let Err(e) = tereze_timestamp::Client::new(&a.url, std::time::Duration::ZERO) {
                    return Err(err(format!("{field}.url: {e}")));
                }
                let authority = Authority::from_pem(&s.code, &a.url, a.certificates.as_bytes())
                    .map_err(|e| err(format!("{field}.certificates: {e}")))?;
                timestamp_authorities.push(authority);
            }
            if s.timestamp_required && timestamp_authorities.is_empty() {
                return Err(err(format!(
                    "{}: a state that requires time-stamp tokens needs a [[state.timestamp_authority]]",
                    at("timestamp_required")
                )));
            }
            let mut national_signature_required = Vec::new();
            for (j, n) in s.national_signatures.iter().enumerate() {
                let field = format!("{}[{j}].document", at("national_signature"));
                if !(n.document == "*" || is_document_type(&n.document)) {
                    return Err(err(format!(
                        "{field}: {:?} is not a document type code R.<area>.<nn>.<nnn> or \"*\"",
                        n.document
                    )));
                }
                if s.national_signatures[..j]
                    .iter()
                    .any(|o| o.document == n.document)
                {
                    return Err(err(format!("{field}: {} is listed twice", n.document)));
                }
                if n.required {
                    national_signature_required.push(n.document.clone());
                }
            }
            let mut documents = TrustStore::new();
            for a in &anchors {
                documents.add_certificate(a.clone());
            }
            let anchors_pem = s.anchors.join("\n");
            if states.contains_key(&s.code) {
                return Err(err(format!("{}: listed twice", at("code"))));
            }
            states.insert(
                s.code.clone(),
                StateEntry {
                    code: s.code,
                    role: s.role,
                    anchors,
                    anchors_pem,
                    crls,
                    nodes,
                    documents,
                    processes: s.processes,
                    partner: s.partner,
                    conformance: s.conformance,
                    revocations,
                    crl_urls: s.crl_urls,
                    algorithms,
                    timestamp_authorities,
                    timestamp_required: s.timestamp_required,
                    national_signature_required,
                },
            );
        }
        let mut recognition = Vec::new();
        for (i, r) in file.recognition.into_iter().enumerate() {
            let at = |f: &str| format!("recognition[{i}].{f}");
            let date = |field: &str, v: &str| {
                tereze_reference_data::date::parse(v).map_err(|e| {
                    err(format!(
                        "{}: {v:?} is not a date (YYYY-MM-DD): {e}",
                        at(field)
                    ))
                })
            };
            let (issuer_state, issuer_authority) = match r.issuer.split_once(':') {
                Some((s, a)) => (s.to_owned(), Some(a.to_owned())),
                None => (r.issuer.clone(), None),
            };
            if issuer_state != "*" && !states.contains_key(&issuer_state) {
                return Err(err(format!(
                    "{}: {issuer_state} is not a state in this trust space",
                    at("issuer")
                )));
            }
            recognition.push(RecognitionRule {
                document: r.document,
                issuer_state,
                issuer_authority,
                recognised_by: r.recognised_by,
                valid_from: date("valid_from", &r.valid_from)?,
                valid_to: if r.valid_to.is_empty() {
                    None
                } else {
                    Some(date("valid_to", &r.valid_to)?)
                },
            });
        }
        Ok(Self {
            version: file.version,
            issued_at: file.issued_at,
            max_clock_skew_seconds: file.max_clock_skew_seconds,
            states,
            recognition,
            signer: None,
            source: Vec::new(),
        })
    }

    /// The state whose listed node presented this TLS certificate (DER).
    pub fn identify(&self, der: &[u8]) -> Option<&StateEntry> {
        let fp = fingerprint(der);
        self.states
            .values()
            .find(|s| s.nodes.iter().any(|n| n.fingerprint == fp))
    }

    pub fn state(&self, code: &str) -> Option<&StateEntry> {
        self.states.get(code)
    }

    /// Every anchor of every state, DER: the roots a client certificate may chain to.
    pub fn all_anchors_der(&self) -> Vec<Vec<u8>> {
        self.states
            .values()
            .flat_map(|s| s.anchors.iter())
            .filter_map(|c| c.to_der().ok())
            .collect()
    }

    /// This trust space with `extra` CRLs (by state: fetched from CRL locations) in force next
    /// to the inline ones.
    pub fn with_crls(
        &self,
        extra: &BTreeMap<String, Vec<std::sync::Arc<X509Crl>>>,
    ) -> Result<TrustSpace, CrlDerError> {
        let mut t = self.clone();
        for (code, crls) in extra {
            let Some(s) = t.states.get_mut(code) else {
                continue;
            };
            for c in crls {
                s.crls.push(c.to_der().map_err(|source| CrlDerError {
                    state: code.clone(),
                    source,
                })?);
                s.revocations.push(c.clone());
            }
        }
        Ok(t)
    }

    /// Every time-stamping authority of every state: the ones whose tokens count anywhere in
    /// this trust space (each named by its state's code).
    pub fn timestamp_authorities(&self) -> Vec<Authority> {
        self.states
            .values()
            .flat_map(|s| s.timestamp_authorities.iter().cloned())
            .collect()
    }

    /// Every CRL, DER.
    pub fn all_crls_der(&self) -> Vec<Vec<u8>> {
        self.states
            .values()
            .flat_map(|s| s.crls.iter().cloned())
            .collect()
    }
}
