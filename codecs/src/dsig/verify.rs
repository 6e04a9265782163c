//! Verification of one XML signature: the checks every profile shares ([`check_signature`]),
//! and [`verify`], the original one-enveloped-signature entry point.
//!
//! Order: structure and policy (cheap, and the most specific errors) → `SignedInfo` is
//! canonicalised and re-parsed, and only that signed form is read from then on → where each
//! reference points, judged by the caller's [`Placement`] (a profile's rules) → the signer's
//! key is found among the trusted ones → `SignatureValue` → each reference's digest. The result
//! carries each signed subtree as the exact canonical bytes that were digested.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::x509::X509;

use super::algorithm::{Algorithms, DigestMethod, SignatureScheme};
use super::keys::TrustStore;
use super::path::ResolveError;
use super::xpath::{self, Idiom};
use super::{DsigError, DSIG_NAMESPACE, ENVELOPED_SIGNATURE};
use crate::c14n::{self, C14nOptions, Mode, NodeSet};
use crate::xml::{self, Document, IdError, NodeId, NodeKind, ParseError};

const EXC_NAMESPACE: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct VerifyPolicy {
    /// Accept SHA-1 digests and signatures (old documents only).
    pub allow_sha1: bool,
    /// [`verify`] only: every reference must name the `Signature`'s parent element (the
    /// document element for `URI=""`). Refuses detached same-document references, the shape
    /// wrapping attacks use. The profiles ([`verify_profile`](super::verify_profile)) have
    /// their own placement rules and ignore it.
    pub require_enveloped: bool,
    /// Accept comments that split signed text. Same-document references never sign comments,
    /// so by default a comment next to non-whitespace text inside signed content is refused.
    pub allow_unsigned_comments: bool,
    pub max_references: usize,
    pub max_transforms: usize,
    /// [`verify_signatures`](super::verify_signatures): at most this many signatures in a
    /// document, each verified in full (a bound on the work one document can ask for).
    pub max_signatures: usize,
    /// Time (Unix seconds) at which the signer's certificate must be valid; `None` for now.
    pub at: Option<i64>,
    pub algorithms: Algorithms,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        Self {
            allow_sha1: false,
            require_enveloped: true,
            allow_unsigned_comments: false,
            max_references: 16,
            max_transforms: 4,
            max_signatures: 16,
            at: None,
            algorithms: Algorithms::default(),
        }
    }
}

/// Who signed.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The certificate subject (`CN=…, O=…`), or the key fingerprint for a bare trusted key.
    pub subject: String,
    pub certificate: Option<X509>,
}

/// One verified reference: what was signed, where it is, and the exact signed bytes.
#[derive(Debug, Clone)]
pub struct SignedReference {
    pub uri: String,
    /// Path of the signed element in the verified document.
    pub path: String,
    /// The canonical octets that the digest covers.
    pub canonical: Vec<u8>,
}

impl SignedReference {
    /// The signed content as a tree of its own. Read this, never the original document.
    pub fn document(&self) -> Result<Document, ParseError> {
        xml::parse(&self.canonical)
    }
}

/// The signer's key as an algorithm policy sees it: its family and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerKey {
    /// `rsa`, `ec`, or OpenSSL's short name for another family (`gost2012_256`).
    pub family: String,
    /// The modulus (RSA) or the group order (EC, GOST) in bits.
    pub bits: u32,
}

impl SignerKey {
    fn of(key: &PKey<Public>) -> Self {
        let family = match key.id() {
            Id::RSA => "rsa".to_owned(),
            Id::EC => "ec".to_owned(),
            other => Nid::from_raw(other.as_raw())
                .short_name()
                .map(str::to_owned)
                .unwrap_or_else(|_| format!("nid-{}", other.as_raw())),
        };
        Self {
            family,
            bits: key.bits(),
        }
    }
}

impl std::fmt::Display for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} bits", self.family, self.bits)
    }
}

/// A valid signature.
#[derive(Debug, Clone)]
pub struct Verified {
    pub signer: Signer,
    pub signature_method: String,
    pub references: Vec<SignedReference>,
    /// Each reference's `DigestMethod` URI, in `references`' order: with `signature_method`
    /// and `key`, what an algorithm policy judges.
    pub digest_methods: Vec<String>,
    /// The key that verified `SignatureValue`.
    pub key: SignerKey,
}

/// One signature of a document, as [`verify_signatures`](super::verify_signatures) found it.
#[derive(Debug)]
pub struct SignatureReport {
    /// Where the `ds:Signature` element is (its path, with line:column when known).
    pub location: String,
    /// The verified signer; `None` unless `outcome` is [`Outcome::Valid`].
    pub signer: Option<Signer>,
    /// The certificate the signature names as its signer (`X509Data`, or for `wss` a
    /// `BinarySecurityToken`), **unverified**: for saying who an invalid or unchecked
    /// signature claims to be from, never for a verdict.
    pub claimed_certificate: Option<X509>,
    /// The `SignatureMethod` URI as the signature states it.
    pub signature_method: String,
    /// Paths of the elements its references sign (verified when valid, as stated otherwise;
    /// an unresolved reference is shown as its URI).
    pub covers: Vec<String>,
    pub outcome: Outcome,
}

/// What became of one signature.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It verified: signer, algorithm and each signed element's canonical bytes.
    Valid(Box<Verified>),
    /// It was checked and refused, for this reason.
    Invalid(std::sync::Arc<VerifyError>),
    /// The caller asked for another signature only.
    NotChecked,
}

impl Outcome {
    pub fn is_valid(&self) -> bool {
        matches!(self, Outcome::Valid(_))
    }
}

/// Why a signature was not accepted. Every variant is a negative verdict on the document.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no ds:Signature element in the document")]
    NoSignature,
    #[error("{count} ds:Signature elements ({locations}); exactly one is accepted")]
    MultipleSignatures { count: usize, locations: String },
    #[error("malformed signature at {at}: {reason}")]
    Malformed { at: String, reason: String },
    // The `String`s below are the URI, reference or reason read from the signature: the
    // payload itself.
    #[error("unsupported canonicalization method {0}")]
    UnsupportedCanonicalization(String),
    #[error("unsupported transform {0}")]
    UnsupportedTransform(String),
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("SHA-1 ({0}) is refused; pass --allow-sha1 to accept old documents")]
    Sha1NotAllowed(String),
    #[error("reference URI {0:?} is not accepted: only \"\" and \"#id\" same-document references")]
    UnsupportedReferenceUri(String),
    #[error("reference {0:?} does not resolve to any element")]
    ReferenceNotFound(String),
    #[error("duplicate identifier: {0}")]
    DuplicateId(IdError),
    #[error("reference {uri:?} points inside the signature itself ({at}): signed content wrapped in the signature")]
    ReferenceInsideSignature { uri: String, at: String },
    #[error("reference {uri:?} signs {target}, but the signature sits in {parent}: a signature must be enveloped by the element it signs")]
    NotEnveloped {
        uri: String,
        target: String,
        parent: String,
    },
    #[error("{count} signatures, over the limit of {limit}")]
    TooManySignatures { count: usize, limit: usize },
    #[error("{count} references, over the limit of {limit}")]
    TooManyReferences { count: usize, limit: usize },
    #[error("{count} transforms in reference {uri:?}, over the limit of {limit}")]
    TooManyTransforms {
        uri: String,
        count: usize,
        limit: usize,
    },
    #[error("digest of reference {uri:?} does not match: the signed content was changed")]
    DigestMismatch { uri: String },
    #[error("signature value does not verify: {0}")]
    InvalidSignature(String),
    #[error("comment splitting signed text at {at} is not covered by the signature")]
    UnsignedComment { at: String },
    #[error(transparent)]
    Dsig(#[from] DsigError),
    /// The profile (named) needs the element that must be signed, and none was named.
    #[error("profile {profile} needs the element that must be signed (an element path)")]
    ElementRequired { profile: String },
    /// The element the caller named is not exactly one element of the document: missing, or
    /// matched twice (a second `Body`, the shape of a moved-element wrapping attack).
    #[error("the element that must be signed: {0}")]
    Element(#[source] ResolveError),
    /// No signature the profile accepts covers the named element; `signatures` says where the
    /// document's signatures are and what they cover.
    #[error("no signature that profile {profile} accepts covers {path} ({signatures})")]
    NotCovered {
        path: String,
        profile: String,
        signatures: String,
    },
    /// A reference signs something the profile does not accept (the reason says what it
    /// accepts), e.g. a `Body` other than the message's, or an element the caller did not name.
    #[error("reference {uri:?} signs {target}, which profile {profile} does not accept: {reason}")]
    ReferenceNotAccepted {
        uri: String,
        target: String,
        profile: String,
        reason: String,
    },
    /// The signature sits where its profile does not put one (the reason says where it must).
    #[error("the signature at {at} is not where profile {profile} accepts one: {reason}")]
    SignatureMisplaced {
        at: String,
        profile: String,
        reason: String,
    },
    /// A signature, or the element it signs, sits inside a `ds:Object` or another part of a
    /// signature: content carried in a signature is never what a document says.
    #[error("{what} at {at} sits inside a ds:Object or another signature: content wrapped in a signature is refused")]
    InsideObject { what: &'static str, at: String },
    /// The `wss` profile's document is not a SOAP message it can read (the reason says why).
    #[error("profile wss needs a SOAP 1.1 or 1.2 message: {reason}")]
    NotSoap { reason: String },
    /// `KeyInfo`'s `wsse:SecurityTokenReference` cannot be followed (the reason says why).
    #[error("security token reference at {at}: {reason}")]
    SecurityToken { at: String, reason: String },
    /// `not(ancestor-or-self::Signature)` removes every signature in what it signs, the
    /// enveloped-signature transform only its own: with another signature there (`other`)
    /// the two differ, and only the enveloped reading is implemented.
    #[error("reference {uri:?}: the XPath not(ancestor-or-self::Signature) would also remove the signature at {other}; only the enveloped-signature transform or XPath Filter 2.0 subtract is accepted there")]
    XPathOverOtherSignature { uri: String, other: String },
    /// One of several signatures (at `location`) did not verify, so the document is refused;
    /// `reports` has every signature's outcome, for showing them all.
    #[error(
        "the signature at {location} is not valid ({valid} of {count} signatures are): {reason}"
    )]
    InvalidAmong {
        location: String,
        valid: usize,
        count: usize,
        #[source]
        reason: std::sync::Arc<VerifyError>,
        reports: Vec<SignatureReport>,
    },
}

impl From<IdError> for VerifyError {
    fn from(e: IdError) -> Self {
        VerifyError::DuplicateId(e)
    }
}

fn malformed(doc: &Document, at: NodeId, reason: impl Into<String>) -> VerifyError {
    VerifyError::Malformed {
        at: doc.describe(at),
        reason: reason.into(),
    }
}

/// Strips XML whitespace and decodes base64.
fn decode_base64(doc: &Document, at: NodeId) -> Result<Vec<u8>, VerifyError> {
    let text: String = doc
        .text_content(at)
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r'))
        .collect();
    if text.is_empty() {
        return Err(malformed(doc, at, "empty base64 value"));
    }
    BASE64
        .decode(text.as_bytes())
        .map_err(|e| malformed(doc, at, format!("invalid base64: {e}")))
}

fn ds_children(doc: &Document, id: NodeId) -> Vec<NodeId> {
    doc.child_elements(id).collect()
}

fn expect_ds(
    doc: &Document,
    id: Option<NodeId>,
    local: &str,
    within: NodeId,
) -> Result<NodeId, VerifyError> {
    match id {
        Some(n) if doc.element(n).is_some_and(|e| e.is(DSIG_NAMESPACE, local)) => Ok(n),
        Some(n) => Err(malformed(doc, n, format!("expected ds:{local}"))),
        None => Err(malformed(doc, within, format!("missing ds:{local}"))),
    }
}

fn algorithm_of(doc: &Document, id: NodeId) -> Result<String, VerifyError> {
    doc.element(id)
        .and_then(|e| e.attribute("Algorithm"))
        .map(str::to_owned)
        .ok_or_else(|| malformed(doc, id, "missing Algorithm attribute"))
}

/// C14N options for a canonicalisation `Algorithm` element, with its `InclusiveNamespaces`.
fn c14n_options(doc: &Document, id: NodeId, algorithm: &str) -> Option<C14nOptions> {
    let mut options = C14nOptions::from_uri(algorithm)?;
    if options.mode == Mode::Exclusive {
        if let Some(list) = doc.child(id, EXC_NAMESPACE, "InclusiveNamespaces") {
            options.inclusive_prefixes = doc
                .element(list)
                .and_then(|e| e.attribute("PrefixList"))
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        }
    }
    Some(options)
}

fn check_digest(method: DigestMethod, policy: &VerifyPolicy) -> Result<(), VerifyError> {
    if method.weak && !policy.allow_sha1 {
        return Err(VerifyError::Sha1NotAllowed(method.uri.to_owned()));
    }
    Ok(())
}

/// A reference read from the signed `SignedInfo`, resolved against the document.
struct PlannedReference {
    uri: String,
    /// `None` for the whole document.
    apex: Option<NodeId>,
    /// The signature's own subtree is removed before canonicalisation: the enveloped-signature
    /// transform, or one of the XPath idioms recognised as it.
    enveloped: bool,
    /// `not(ancestor-or-self::P:Signature)` was used: it removes every signature, so it is
    /// accepted only where the signature is the only one in what is signed.
    removes_all_signatures: bool,
    c14n: C14nOptions,
    digest: DigestMethod,
    expected: Vec<u8>,
}

/// Where one reference of a signature points, as a [`Placement`] judges it.
pub(super) struct Target<'a> {
    pub uri: &'a str,
    /// The element signed: the document element for `URI=""`.
    pub node: NodeId,
    /// `URI=""`: the whole document.
    pub whole_document: bool,
    /// The signature's own subtree is removed from what is digested.
    pub excludes_signature: bool,
}

/// A profile's rules for where a signature's references may point and how its key is named.
/// Called after `SignedInfo` is read and before any cryptography.
pub(super) trait Placement {
    /// Accepts or refuses the references' targets, all at once (in `SignedInfo`'s order).
    fn check(&self, doc: &Document, sig: NodeId, targets: &[Target<'_>])
        -> Result<(), VerifyError>;

    /// The certificates `KeyInfo` names (DER, any order) when the profile knows a way other
    /// than `X509Data`; `None` to read `X509Data`.
    fn certificates(
        &self,
        _doc: &Document,
        _sig: NodeId,
        _key_info: NodeId,
        _ids: &HashMap<String, NodeId>,
    ) -> Result<Option<Vec<Vec<u8>>>, VerifyError> {
        Ok(None)
    }
}

/// [`verify`]'s placement: with `require_enveloped`, every reference names the signature's
/// parent; without it, any same-document element outside the signature.
struct Legacy {
    require_enveloped: bool,
}

impl Placement for Legacy {
    fn check(
        &self,
        doc: &Document,
        sig: NodeId,
        targets: &[Target<'_>],
    ) -> Result<(), VerifyError> {
        if self.require_enveloped {
            for t in targets {
                require_parent(doc, sig, t)?;
            }
        }
        Ok(())
    }
}

/// Refuses a reference that does not sign the signature's parent element.
pub(super) fn require_parent(
    doc: &Document,
    sig: NodeId,
    target: &Target<'_>,
) -> Result<(), VerifyError> {
    if doc.parent(sig) == Some(target.node) {
        return Ok(());
    }
    Err(VerifyError::NotEnveloped {
        uri: target.uri.to_owned(),
        target: doc.describe(target.node),
        parent: doc
            .parent(sig)
            .map(|p| doc.describe(p))
            .unwrap_or_else(|| "the document".into()),
    })
}

/// Every `ds:Signature` element of `doc`, in document order, wherever it stands (inside
/// another signature's `ds:Object` too): what a verifier must account for.
pub fn signatures_of(doc: &Document) -> Vec<NodeId> {
    doc.descendants_or_self(doc.root())
        .into_iter()
        .filter(|n| {
            doc.element(*n)
                .is_some_and(|e| e.is(DSIG_NAMESPACE, "Signature"))
        })
        .collect()
}

/// The refusal of a choice between `many` signatures, naming where each is.
pub(super) fn multiple_signatures(doc: &Document, many: &[NodeId]) -> VerifyError {
    VerifyError::MultipleSignatures {
        count: many.len(),
        locations: many
            .iter()
            .map(|n| doc.describe(*n))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The nearest `ds:Object` that holds `node`, if any.
pub(super) fn enclosing_object(doc: &Document, node: NodeId) -> Option<NodeId> {
    let mut cur = doc.parent(node);
    while let Some(n) = cur {
        if doc
            .element(n)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "Object"))
        {
            return Some(n);
        }
        cur = doc.parent(n);
    }
    None
}

/// Verifies the one signature in `doc` against `trust`.
pub fn verify(
    doc: &Document,
    trust: &TrustStore,
    policy: &VerifyPolicy,
) -> Result<Verified, VerifyError> {
    let sig = match signatures_of(doc).as_slice() {
        [] => return Err(VerifyError::NoSignature),
        [one] => *one,
        many => return Err(multiple_signatures(doc, many)),
    };
    let ids = doc.id_index()?;
    let placement = Legacy {
        require_enveloped: policy.require_enveloped,
    };
    check_signature(doc, sig, &ids, trust, policy, &placement).map(|c| c.verified)
}

/// A verified signature with the element each reference signed, in `references`' order.
pub(super) struct Checked {
    pub verified: Verified,
    pub targets: Vec<NodeId>,
}

/// A signature as read before any cryptography: its `SignedInfo` canonicalised and re-read,
/// algorithms accepted by the policy, each reference resolved and its transforms accepted.
pub(super) struct Read {
    signature_value: NodeId,
    key_info: Option<NodeId>,
    /// The canonical `SignedInfo`: the bytes `SignatureValue` signs.
    info_bytes: Vec<u8>,
    method_uri: String,
    scheme: std::sync::Arc<dyn SignatureScheme>,
    planned: Vec<PlannedReference>,
}

/// The checks every signature gets, whatever its profile: the signature at `sig`, with
/// `placement` judging its references; `ids` is the document's identifier index (built once,
/// duplicates already refused).
pub(super) fn check_signature(
    doc: &Document,
    sig: NodeId,
    ids: &HashMap<String, NodeId>,
    trust: &TrustStore,
    policy: &VerifyPolicy,
    placement: &dyn Placement,
) -> Result<Checked, VerifyError> {
    let read = read_signature(doc, sig, ids, policy)?;
    check_placement(doc, sig, &read.planned, placement)?;

    let signature_bytes = decode_base64(doc, read.signature_value)?;
    let chain = match read.key_info {
        Some(ki) => match placement.certificates(doc, sig, ki, ids)? {
            Some(chain) => chain,
            None => key_info_certificates(doc, ki)?,
        },
        None => Vec::new(),
    };
    let (signer, key) = check_signature_value(
        chain,
        trust,
        policy,
        read.scheme.as_ref(),
        &read.info_bytes,
        &signature_bytes,
    )?;

    let digest_methods = read
        .planned
        .iter()
        .map(|p| p.digest.uri.to_owned())
        .collect();
    let mut references = Vec::with_capacity(read.planned.len());
    let mut targets = Vec::with_capacity(read.planned.len());
    for p in read.planned {
        let (apex, reference) = check_reference(doc, sig, p, policy)?;
        targets.push(apex);
        references.push(reference);
    }
    Ok(Checked {
        verified: Verified {
            signer,
            signature_method: read.method_uri,
            references,
            digest_methods,
            key,
        },
        targets,
    })
}

/// The structure and policy checks of `sig`, in the order [`check_signature`] runs them, and
/// nothing that depends on where the signature sits: the part of a refusal that holds under
/// every profile. A profile that finds no signature of its shape asks this first, so that a
/// signature refused for its algorithm or its reference URI is refused for that.
pub(super) fn read_signature(
    doc: &Document,
    sig: NodeId,
    ids: &HashMap<String, NodeId>,
    policy: &VerifyPolicy,
) -> Result<Read, VerifyError> {
    let parts = ds_children(doc, sig);
    let signed_info = expect_ds(doc, parts.first().copied(), "SignedInfo", sig)?;
    let signature_value = expect_ds(doc, parts.get(1).copied(), "SignatureValue", sig)?;
    let key_info = parts.get(2).copied().filter(|n| {
        doc.element(*n)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "KeyInfo"))
    });
    for extra in parts.iter().skip(if key_info.is_some() { 3 } else { 2 }) {
        expect_ds(doc, Some(*extra), "Object", sig)?;
    }

    // SignedInfo: canonicalise as its own CanonicalizationMethod says, then read only that.
    let cm = expect_ds(
        doc,
        doc.child_elements(signed_info).next(),
        "CanonicalizationMethod",
        signed_info,
    )?;
    let cm_uri = algorithm_of(doc, cm)?;
    let cm_options = c14n_options(doc, cm, &cm_uri)
        .ok_or_else(|| VerifyError::UnsupportedCanonicalization(cm_uri.clone()))?;
    let info_bytes = c14n::canonicalize(doc, NodeSet::subtree(signed_info), &cm_options);
    let info = xml::parse(&info_bytes).map_err(|e| {
        malformed(
            doc,
            signed_info,
            format!("canonical SignedInfo does not parse: {e}"),
        )
    })?;
    let info_parts = ds_children(&info, info.root());
    let method = expect_ds(
        &info,
        info_parts.get(1).copied(),
        "SignatureMethod",
        info.root(),
    )?;
    let method_uri = algorithm_of(&info, method)?;
    let scheme = policy
        .algorithms
        .by_uri(&method_uri)
        .ok_or_else(|| VerifyError::UnsupportedAlgorithm(method_uri.clone()))?;
    scheme.check_available()?;
    check_digest(scheme.digest(), policy)?;

    let reference_nodes: Vec<NodeId> = info_parts.iter().skip(2).copied().collect();
    if reference_nodes.is_empty() {
        return Err(malformed(doc, signed_info, "no ds:Reference"));
    }
    if reference_nodes.len() > policy.max_references {
        return Err(VerifyError::TooManyReferences {
            count: reference_nodes.len(),
            limit: policy.max_references,
        });
    }
    let signed = SignedInfoPair {
        doc,
        signed_info,
        info: &info,
    };
    let mut planned = Vec::with_capacity(reference_nodes.len());
    for r in reference_nodes {
        expect_ds(&info, Some(r), "Reference", info.root())?;
        planned.push(plan_reference(&signed, r, sig, ids, policy)?);
    }
    Ok(Read {
        signature_value,
        key_info,
        info_bytes,
        method_uri,
        scheme,
        planned,
    })
}

/// `placement`'s verdict on where the references point, then the XPath idiom's limit: it
/// removes every signature, so it may not sign content holding another one.
fn check_placement(
    doc: &Document,
    sig: NodeId,
    planned: &[PlannedReference],
    placement: &dyn Placement,
) -> Result<(), VerifyError> {
    let targets: Vec<Target<'_>> = planned
        .iter()
        .map(|p| Target {
            uri: &p.uri,
            node: p.apex.unwrap_or(doc.root()),
            whole_document: p.apex.is_none(),
            excludes_signature: p.enveloped,
        })
        .collect();
    placement.check(doc, sig, &targets)?;
    for p in planned.iter().filter(|p| p.removes_all_signatures) {
        let apex = p.apex.unwrap_or(doc.root());
        if let Some(other) = signatures_of(doc).into_iter().find(|s| {
            // One inside this signature is removed either way.
            doc.is_ancestor_or_self(apex, *s) && !doc.is_ancestor_or_self(sig, *s)
        }) {
            return Err(VerifyError::XPathOverOtherSignature {
                uri: p.uri.clone(),
                other: doc.describe(other),
            });
        }
    }
    Ok(())
}

/// One reference's digest over its canonical content, and the comment check on that
/// content; returns the signed element and the reference with the bytes that were digested.
fn check_reference(
    doc: &Document,
    sig: NodeId,
    p: PlannedReference,
    policy: &VerifyPolicy,
) -> Result<(NodeId, SignedReference), VerifyError> {
    let mut nodes = match p.apex {
        Some(apex) => NodeSet::subtree(apex),
        None => NodeSet::document(),
    };
    if p.enveloped {
        nodes = nodes.excluding(sig);
    }
    let canonical = c14n::canonicalize(doc, nodes, &p.c14n);
    let actual = p.digest.digest(&canonical)?;
    if actual.len() != p.expected.len() || !openssl::memcmp::eq(&actual, &p.expected) {
        return Err(VerifyError::DigestMismatch { uri: p.uri });
    }
    let apex = p.apex.unwrap_or(doc.root());
    if !policy.allow_unsigned_comments {
        for n in doc.descendants_or_self(apex) {
            if splits_text(doc, n) && !(p.enveloped && doc.is_ancestor_or_self(sig, n)) {
                return Err(VerifyError::UnsignedComment {
                    at: doc
                        .position(n)
                        .map(|pos| format!("line {pos} in {}", doc.path(apex)))
                        .unwrap_or_else(|| doc.path(apex)),
                });
            }
        }
    }
    Ok((
        apex,
        SignedReference {
            uri: p.uri,
            path: doc.path(apex),
            canonical,
        },
    ))
}

/// A comment with non-whitespace text right before or after it: the shape of a comment
/// injected into signed text (`<Name>admin<!---->.evil</Name>`), which the signature does not
/// cover and which makes "the first text node" differ from the signed text.
fn splits_text(doc: &Document, n: NodeId) -> bool {
    if !matches!(doc.kind(n), NodeKind::Comment(_)) {
        return false;
    }
    let Some(parent) = doc.parent(n) else {
        return false;
    };
    let siblings = doc.children(parent);
    let Some(i) = siblings.iter().position(|s| *s == n) else {
        return false;
    };
    let is_text = |s: Option<&NodeId>| {
        s.is_some_and(|s| matches!(doc.kind(*s), NodeKind::Text(t) if !t.trim().is_empty()))
    };
    is_text(i.checked_sub(1).and_then(|j| siblings.get(j))) || is_text(siblings.get(i + 1))
}

/// `SignedInfo` twice: as it stands in the document, and its canonical form re-parsed (the
/// one read for everything signed). Namespace declarations that exclusive C14N drops (those
/// an XPath expression uses in its text) are looked up in the document's form.
struct SignedInfoPair<'a> {
    doc: &'a Document,
    signed_info: NodeId,
    info: &'a Document,
}

impl SignedInfoPair<'_> {
    /// The namespace `prefix` is bound to at `node` of the canonical form, or, when the
    /// canonical form dropped the declaration, at the same element of the document.
    fn namespace_at(&self, node: NodeId, prefix: &str) -> Option<String> {
        if let Some(uri) = self.info.in_scope_namespaces(node).get(prefix) {
            return Some(uri.clone());
        }
        // Child-element positions from the canonical root down to `node`, replayed in the
        // document: C14N keeps every element of SignedInfo, in order.
        let mut positions = Vec::new();
        let mut cur = node;
        while let Some(parent) = self.info.parent(cur) {
            positions.push(self.info.child_elements(parent).position(|c| c == cur)?);
            cur = parent;
        }
        let mut there = self.signed_info;
        for i in positions.into_iter().rev() {
            there = self.doc.child_elements(there).nth(i)?;
        }
        self.doc.in_scope_namespaces(there).get(prefix).cloned()
    }
}

fn plan_reference(
    signed: &SignedInfoPair<'_>,
    r: NodeId,
    sig: NodeId,
    ids: &HashMap<String, NodeId>,
    policy: &VerifyPolicy,
) -> Result<PlannedReference, VerifyError> {
    let (doc, info) = (signed.doc, signed.info);
    let element = info
        .element(r)
        .ok_or_else(|| malformed(info, r, "not an element"))?;
    let uri = element
        .attribute("URI")
        .ok_or_else(|| VerifyError::UnsupportedReferenceUri("(absent)".into()))?
        .to_owned();
    let apex = if uri.is_empty() {
        None
    } else {
        let id = uri
            .strip_prefix('#')
            .filter(|id| !id.is_empty() && !id.contains('(') && !id.contains('#'))
            .ok_or_else(|| VerifyError::UnsupportedReferenceUri(uri.clone()))?;
        Some(
            *ids.get(id)
                .ok_or_else(|| VerifyError::ReferenceNotFound(uri.clone()))?,
        )
    };
    let target = apex.unwrap_or(doc.root());
    if doc.is_ancestor_or_self(sig, target) {
        return Err(VerifyError::ReferenceInsideSignature {
            uri,
            at: doc.describe(target),
        });
    }

    let mut children = info.child_elements(r).peekable();
    // Transforms: at most one enveloped-signature transform, then at most one XPath idiom
    // (which means the same), then at most one C14N; anything else is refused.
    let mut enveloped = false;
    let mut idiom: Option<Idiom> = None;
    let mut removes_all_signatures = false;
    let mut c14n: Option<C14nOptions> = None;
    if let Some(t) = children.next_if(|n| {
        info.element(*n)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "Transforms"))
    }) {
        let transforms: Vec<NodeId> = info.child_elements(t).collect();
        if transforms.len() > policy.max_transforms {
            return Err(VerifyError::TooManyTransforms {
                uri,
                count: transforms.len(),
                limit: policy.max_transforms,
            });
        }
        for tr in transforms {
            expect_ds(info, Some(tr), "Transform", t)?;
            let alg = algorithm_of(info, tr)?;
            let recognised = || {
                xpath::recognise(info, tr, &alg, &|node, prefix| {
                    signed.namespace_at(node, prefix)
                })
            };
            if alg == ENVELOPED_SIGNATURE && !enveloped && idiom.is_none() && c14n.is_none() {
                enveloped = true;
            } else if let Some(found) = recognised().filter(|_| idiom.is_none() && c14n.is_none()) {
                removes_all_signatures = found == Idiom::NotAncestorOrSelfSignature;
                idiom = Some(found);
            } else if let Some(o) = c14n_options(info, tr, &alg).filter(|_| c14n.is_none()) {
                c14n = Some(o);
            } else {
                return Err(VerifyError::UnsupportedTransform(alg));
            }
        }
    }
    let dm = expect_ds(info, children.next(), "DigestMethod", r)?;
    let dm_uri = algorithm_of(info, dm)?;
    let digest = DigestMethod::from_uri(&dm_uri)
        .ok_or_else(|| VerifyError::UnsupportedAlgorithm(dm_uri.clone()))?;
    check_digest(digest, policy)?;
    let dv = expect_ds(info, children.next(), "DigestValue", r)?;
    let expected = decode_base64(info, dv)?;
    // Same-document references select nodes without comments (XMLDSig §4.4.3.3), whatever the
    // canonicalisation variant; no transform means inclusive C14N 1.0.
    let c14n = C14nOptions {
        with_comments: false,
        ..c14n.unwrap_or_default()
    };
    Ok(PlannedReference {
        uri,
        apex,
        enveloped: enveloped || idiom.is_some(),
        removes_all_signatures,
        c14n,
        digest,
        expected,
    })
}

/// Puts the signer's certificate first. XMLDSig does not order `X509Data` (§4.5.4: the
/// certificates relate to the key by containing it or by chaining to one that does); Tereze
/// writes the leaf first, xmlsec writes it last. The leaf is the one certificate that issued
/// none of the others; when that is not a single certificate, the order is left as it is and
/// the first is taken as the signer, as before.
fn leaf_first(chain: &mut [Vec<u8>]) {
    if chain.len() < 2 {
        return;
    }
    let Ok(certs) = chain
        .iter()
        .map(|der| X509::from_der(der))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let issues_another = |i: usize| {
        certs.iter().enumerate().any(|(j, other)| {
            j != i && certs[i].issued(other) == openssl::x509::X509VerifyResult::OK
        })
    };
    let leaves: Vec<usize> = (0..certs.len()).filter(|&i| !issues_another(i)).collect();
    if let [leaf] = leaves.as_slice() {
        chain[..=*leaf].rotate_right(1);
    }
}

/// The DER of every `X509Data/X509Certificate` under `KeyInfo`, in document order.
fn key_info_certificates(doc: &Document, key_info: NodeId) -> Result<Vec<Vec<u8>>, VerifyError> {
    let mut chain = Vec::new();
    for data in doc.child_elements(key_info) {
        if !doc
            .element(data)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "X509Data"))
        {
            continue;
        }
        for c in doc.child_elements(data) {
            if doc
                .element(c)
                .is_some_and(|e| e.is(DSIG_NAMESPACE, "X509Certificate"))
            {
                chain.push(decode_base64(doc, c)?);
            }
        }
    }
    Ok(chain)
}

/// Each reference of `sig` as its `SignedInfo` states it, unverified: the URI and the element
/// it resolves to (the document element for `""`), for choosing and describing signatures.
pub(super) fn claimed_targets(
    doc: &Document,
    sig: NodeId,
    ids: &HashMap<String, NodeId>,
) -> Vec<(String, Option<NodeId>)> {
    let Some(signed_info) = doc.child(sig, DSIG_NAMESPACE, "SignedInfo") else {
        return Vec::new();
    };
    doc.child_elements(signed_info)
        .filter_map(|r| doc.element(r).filter(|e| e.is(DSIG_NAMESPACE, "Reference")))
        .map(|r| {
            let uri = r.attribute("URI").unwrap_or("(absent)").to_owned();
            let target = if uri.is_empty() {
                Some(doc.root())
            } else {
                uri.strip_prefix('#').and_then(|id| ids.get(id).copied())
            };
            (uri, target)
        })
        .collect()
}

/// The `SignatureMethod` URI `sig` states, unverified (empty when it states none).
pub(super) fn claimed_method_of(doc: &Document, sig: NodeId) -> String {
    doc.child(sig, DSIG_NAMESPACE, "SignedInfo")
        .and_then(|si| doc.child(si, DSIG_NAMESPACE, "SignatureMethod"))
        .and_then(|m| doc.element(m))
        .and_then(|e| e.attribute("Algorithm"))
        .unwrap_or("")
        .to_owned()
}

/// The leaf certificate of `sig`'s `KeyInfo/X509Data`, unverified.
pub(super) fn claimed_certificate_of(doc: &Document, sig: NodeId) -> Option<X509> {
    let key_info = doc.child(sig, DSIG_NAMESPACE, "KeyInfo")?;
    let mut chain = key_info_certificates(doc, key_info).ok()?;
    leaf_first(&mut chain);
    X509::from_der(chain.first()?).ok()
}

/// The certificate the document's first signature names as its signer (the leaf of its
/// `X509Data`, chosen as [`verify`] chooses it), without judging it: for explaining a
/// refusal, e.g. whether the certificate was valid at the signing time.
pub fn claimed_signer(doc: &Document) -> Option<X509> {
    let signature = doc.descendants_or_self(doc.root()).into_iter().find(|n| {
        doc.element(*n)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "Signature"))
    })?;
    let key_info = doc.child_elements(signature).find(|n| {
        doc.element(*n)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "KeyInfo"))
    })?;
    let mut chain = key_info_certificates(doc, key_info).ok()?;
    leaf_first(&mut chain);
    X509::from_der(chain.first()?).ok()
}

/// The decoded `SignatureValue` of the document's signature, read where [`verify`] reads it
/// (the second child of the one `ds:Signature`), without judging it: what a time-stamp token
/// over the signature stamps. `None` when there is not exactly one signature or its value
/// cannot be read; [`verify`] then refuses the document too.
pub fn claimed_signature_value(doc: &Document) -> Option<Vec<u8>> {
    let mut signatures = doc.descendants_or_self(doc.root()).into_iter().filter(|n| {
        doc.element(*n)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "Signature"))
    });
    let signature = signatures.next()?;
    if signatures.next().is_some() {
        return None;
    }
    let value = doc.child_elements(signature).nth(1).filter(|n| {
        doc.element(*n)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "SignatureValue"))
    })?;
    decode_base64(doc, value).ok()
}

/// The `SignatureMethod` URI of the first signature in `xml`, unverified: for reports of what
/// a peer signed with (the demo and the benchmark show it), never for a verdict.
pub fn claimed_signature_method(xml: &[u8]) -> Option<String> {
    let doc = crate::xml::parse(xml).ok()?;
    doc.descendants_or_self(doc.root())
        .into_iter()
        .filter_map(|n| doc.element(n))
        .find(|e| e.is(DSIG_NAMESPACE, "SignatureMethod"))?
        .attribute("Algorithm")
        .map(str::to_owned)
}

fn check_signature_value(
    mut chain: Vec<Vec<u8>>,
    trust: &TrustStore,
    policy: &VerifyPolicy,
    scheme: &dyn SignatureScheme,
    signed: &[u8],
    signature: &[u8],
) -> Result<(Signer, SignerKey), VerifyError> {
    if trust.is_empty() {
        return Err(
            DsigError::UntrustedSigner("no trusted certificate or key was given".into()).into(),
        );
    }
    let verify_with = |key: &PKey<Public>| -> Result<bool, VerifyError> {
        if !scheme.fits(key) {
            return Ok(false);
        }
        Ok(scheme.verify(key, signed, signature)?)
    };
    if !chain.is_empty() {
        leaf_first(&mut chain);
        let accepted = trust.accept_chain(&chain, policy.at)?;
        // A certificate whose key disagrees with SignatureMethod (type, or a GOST parameter
        // set) is refused with the reason, before the value is looked at.
        scheme.check_key(&accepted.key)?;
        if !verify_with(&accepted.key)? {
            return Err(VerifyError::InvalidSignature(format!(
                "SignatureValue does not verify with the key of {}",
                accepted.subject
            )));
        }
        return Ok((
            Signer {
                subject: accepted.subject.clone(),
                certificate: Some(accepted.certificate.clone()),
            },
            SignerKey::of(&accepted.key),
        ));
    }
    let mut last_error = None;
    for (key, candidate) in trust.candidate_keys()? {
        match verify_with(&key) {
            Ok(true) => {
                let name = candidate.name(&key)?;
                let certificate = trust
                    .certificates
                    .iter()
                    .find(|c| c.public_key().is_ok_and(|k| k.public_eq(&key)))
                    .cloned();
                if let Some(c) = &certificate {
                    trust.accept_chain(&[c.to_der().map_err(DsigError::from)?], policy.at)?;
                }
                return Ok((
                    Signer {
                        subject: name,
                        certificate,
                    },
                    SignerKey::of(&key),
                ));
            }
            Ok(false) => {}
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        VerifyError::InvalidSignature(
            "the document names no certificate and no trusted key verifies the SignatureValue"
                .into(),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsig::{sign_enveloped, SignOptions, SignTarget, SigningKey};
    use crate::pki::{generate_key, KeyKind};

    fn signed(xml: &str) -> String {
        let key = SigningKey::new(generate_key(KeyKind::EcP256).expect("key"), None).expect("key");
        let mut doc = crate::xml::parse(xml.as_bytes()).expect("parses");
        sign_enveloped(
            &mut doc,
            &SignTarget::Document,
            &key,
            &SignOptions::default(),
        )
        .expect("signs");
        doc.to_xml()
    }

    #[test]
    fn the_claimed_signature_value_is_the_decoded_value_of_the_one_signature() {
        let xml = signed("<a><b>text</b></a>");
        let doc = crate::xml::parse(xml.as_bytes()).expect("parses");
        let value = claimed_signature_value(&doc).expect("a value");
        // ECDSA P-256 in XML Signature: r and s, 32 octets each.
        assert_eq!(value.len(), 64);
        let (_, rest) = xml.split_once("SignatureValue>").expect("a SignatureValue");
        let (text, _) = rest.split_once('<').expect("its end");
        assert_eq!(BASE64.decode(text.trim()).expect("base64"), value);

        // Two signatures (the verifier refuses them): none.
        let twice = xml.replacen(
            "</a>",
            &format!(
                "{}</a>",
                &xml[xml
                    .find("<ds:Signature")
                    .or_else(|| xml.find("<Signature"))
                    .expect("signature")..xml.rfind("</a>").expect("end")]
            ),
            1,
        );
        assert_eq!(twice.matches("SignatureValue>").count(), 4, "{twice}");
        let doc = crate::xml::parse(twice.as_bytes()).expect("parses");
        assert_eq!(claimed_signature_value(&doc), None);
        // A value that is not base64: none.
        let broken = xml.replacen(text, "!!!", 1);
        let doc = crate::xml::parse(broken.as_bytes()).expect("parses");
        assert_eq!(claimed_signature_value(&doc), None);
    }
}
