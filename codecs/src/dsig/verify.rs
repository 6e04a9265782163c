//! Verification of one enveloped XML signature.
//!
//! Order: structure and policy (cheap, and the most specific errors) → `SignedInfo` is
//! canonicalised and re-parsed, and only that signed form is read from then on → the signer's
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
use super::{DsigError, DSIG_NAMESPACE, ENVELOPED_SIGNATURE};
use crate::c14n::{self, C14nOptions, Mode, NodeSet};
use crate::xml::{self, Document, IdError, NodeId, NodeKind, ParseError};

const EXC_NAMESPACE: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// The XPath filter transform (XMLDSig §6.6.3).
const XPATH_TRANSFORM: &str = "http://www.w3.org/TR/1999/REC-xpath-19991116";
/// The one XPath expression accepted: with `dsig` bound to the XMLDSig namespace, it keeps
/// every node outside any `Signature`, which after the enveloped-signature transform (one
/// signature per document, checked first) is every node already selected.
const ENVELOPED_XPATH: &str = "not(ancestor-or-self::dsig:Signature)";

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct VerifyPolicy {
    /// Accept SHA-1 digests and signatures (old documents only).
    pub allow_sha1: bool,
    /// Every reference must name the `Signature`'s parent element (the document element for
    /// `URI=""`). Refuses detached same-document references, the shape wrapping attacks use.
    pub require_enveloped: bool,
    /// Accept comments that split signed text. Same-document references never sign comments,
    /// so by default a comment next to non-whitespace text inside signed content is refused.
    pub allow_unsigned_comments: bool,
    pub max_references: usize,
    pub max_transforms: usize,
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
    enveloped: bool,
    c14n: C14nOptions,
    digest: DigestMethod,
    expected: Vec<u8>,
}

/// Verifies the one signature in `doc` against `trust`.
pub fn verify(
    doc: &Document,
    trust: &TrustStore,
    policy: &VerifyPolicy,
) -> Result<Verified, VerifyError> {
    let signatures: Vec<NodeId> = doc
        .descendants_or_self(doc.root())
        .into_iter()
        .filter(|n| {
            doc.element(*n)
                .is_some_and(|e| e.is(DSIG_NAMESPACE, "Signature"))
        })
        .collect();
    let sig = match signatures.as_slice() {
        [] => return Err(VerifyError::NoSignature),
        [one] => *one,
        many => {
            return Err(VerifyError::MultipleSignatures {
                count: many.len(),
                locations: many
                    .iter()
                    .map(|n| doc.describe(*n))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    };
    let ids = doc.id_index()?;

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
    let mut planned = Vec::with_capacity(reference_nodes.len());
    for r in reference_nodes {
        expect_ds(&info, Some(r), "Reference", info.root())?;
        planned.push(plan_reference(doc, &info, r, sig, &ids, policy)?);
    }

    let signature_bytes = decode_base64(doc, signature_value)?;
    let (signer, key) = check_signature_value(
        doc,
        key_info,
        trust,
        policy,
        scheme.as_ref(),
        &info_bytes,
        &signature_bytes,
    )?;

    let mut references = Vec::with_capacity(planned.len());
    let digest_methods = planned.iter().map(|p| p.digest.uri.to_owned()).collect();
    for p in planned {
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
        references.push(SignedReference {
            uri: p.uri,
            path: doc.path(apex),
            canonical,
        });
    }
    Ok(Verified {
        signer,
        signature_method: method_uri,
        references,
        digest_methods,
        key,
    })
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

fn plan_reference(
    doc: &Document,
    info: &Document,
    r: NodeId,
    sig: NodeId,
    ids: &HashMap<String, NodeId>,
    policy: &VerifyPolicy,
) -> Result<PlannedReference, VerifyError> {
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
    if policy.require_enveloped && doc.parent(sig) != Some(target) {
        return Err(VerifyError::NotEnveloped {
            uri,
            target: doc.describe(target),
            parent: doc
                .parent(sig)
                .map(|p| doc.describe(p))
                .unwrap_or_else(|| "the document".into()),
        });
    }

    let mut children = info.child_elements(r).peekable();
    let mut enveloped = false;
    let mut enveloped_xpath = false;
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
            if alg == ENVELOPED_SIGNATURE && !enveloped && c14n.is_none() {
                enveloped = true;
            } else if alg == XPATH_TRANSFORM
                && enveloped
                && !enveloped_xpath
                && c14n.is_none()
                && is_enveloped_xpath(info, tr)
            {
                // Selects exactly what enveloped-signature already removed (xmlsec's and
                // CryptoPro's GOST documents add it): a no-op after it. Any other XPath is
                // refused below (general XPath is issue 27).
                enveloped_xpath = true;
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
        enveloped,
        c14n,
        digest,
        expected,
    })
}

/// Whether transform `tr` is `<ds:XPath>not(ancestor-or-self::dsig:Signature)</ds:XPath>`
/// and nothing else, with the `dsig` prefix bound to the XMLDSig namespace where it is used.
fn is_enveloped_xpath(info: &Document, tr: NodeId) -> bool {
    let children: Vec<NodeId> = info
        .children(tr)
        .iter()
        .copied()
        .filter(|n| !matches!(info.kind(*n), NodeKind::Text(t) if t.trim().is_empty()))
        .collect();
    let [xpath] = children.as_slice() else {
        return false;
    };
    if !info
        .element(*xpath)
        .is_some_and(|e| e.is(DSIG_NAMESPACE, "XPath"))
    {
        return false;
    }
    if info.child_elements(*xpath).next().is_some() {
        return false;
    }
    info.text_content(*xpath).trim() == ENVELOPED_XPATH
        && info
            .in_scope_namespaces(*xpath)
            .get("dsig")
            .is_some_and(|uri| uri == DSIG_NAMESPACE)
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
    doc: &Document,
    key_info: Option<NodeId>,
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
    let mut chain = match key_info {
        Some(ki) => key_info_certificates(doc, ki)?,
        None => Vec::new(),
    };
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
