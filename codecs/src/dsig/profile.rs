//! Named verification profiles: where a signature may sit, what it may sign, and which element
//! the caller gets back. [`verify_profile`] finds the one signature its profile accepts over
//! the element the caller names, runs every shared check on it
//! ([`check_signature`](super::verify)), and returns that element as the exact canonical bytes
//! that were digested, re-parsed: the caller reads only what was signed.
//!
//! - `enveloped`: the signature is a child of the element it signs, every reference names that
//!   element (`URI=""` for the document element). Default element: the document element.
//! - `detached-by-id` (Russia's SMEV 3 shape): one reference, `#id`, to the named element; the
//!   signature sits beside it (or inside it only with the enveloped-signature transform). The
//!   element must be named.
//! - `wss` (OASIS WS-Security): the signature is a child of `soap:Header/wsse:Security`; its
//!   references, by `#id`, sign the named element (default: the one `soap:Body`), and may also
//!   sign that header's `wsu:Timestamp` and the further elements the caller lists, nothing
//!   else; the key comes from `X509Data` or a `BinarySecurityToken` in the same header.
//!
//! Every profile refuses duplicate identifiers anywhere in the document, a named path that
//! matches two elements, a signature or a signed element inside `ds:Object` or inside a
//! signature, and references to ancestors of the signature other than the ones its profile
//! allows. Signatures elsewhere in the document are neither checked nor trusted here. When no
//! signature fits, the refusal is the most specific one the document allows (see
//! `none_accepted`): what the sender must fix, not only "nothing covers it".

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::keys::TrustStore;
use super::path::ElementPath;
use super::verify::{
    check_signature, claimed_targets, enclosing_object, multiple_signatures, read_signature,
    require_parent, signatures_of, Placement, Target, Verified, VerifyError, VerifyPolicy,
};
use super::wss::{self, Soap};
use super::DSIG_NAMESPACE;
use crate::xml::{self, Document, NodeId};

/// A verification profile, named as the command line and `node.toml` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// `enveloped`: the signature inside the element it signs (the default).
    #[default]
    Enveloped,
    /// `detached-by-id`: the signature beside the element it signs, which it names by `Id`.
    DetachedById,
    /// `wss`: WS-Security, the signature in `soap:Header/wsse:Security` signing the `Body`.
    Wss,
}

impl Profile {
    /// Every profile, in the order help texts list them.
    pub const ALL: [Profile; 3] = [Profile::Enveloped, Profile::DetachedById, Profile::Wss];

    /// The profile's name: `enveloped`, `detached-by-id` or `wss`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Enveloped => "enveloped",
            Profile::DetachedById => "detached-by-id",
            Profile::Wss => "wss",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name that is not one of [`Profile::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?}; expected one of enveloped, detached-by-id, wss")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}

/// What the caller expects to be signed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expect {
    pub profile: Profile,
    /// The element that must be signed; `None` for the profile's default (enveloped: the
    /// document element; wss: the SOAP `Body`; detached-by-id has none and refuses).
    pub element: Option<ElementPath>,
    /// `wss` only: further elements the signature may also sign (besides the element and the
    /// header's `wsu:Timestamp`). Other profiles refuse a non-empty list.
    pub also: Vec<ElementPath>,
}

impl Expect {
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            element: None,
            also: Vec::new(),
        }
    }

    #[must_use]
    pub fn element(mut self, path: ElementPath) -> Self {
        self.element = Some(path);
        self
    }

    #[must_use]
    pub fn also(mut self, path: ElementPath) -> Self {
        self.also.push(path);
        self
    }
}

/// The element a profile's signature covers: what the caller reads instead of the document.
#[derive(Debug, Clone)]
pub struct SignedElement {
    /// The signature's verdict: signer, algorithm, every reference.
    pub verified: Verified,
    /// Where the `ds:Signature` is in the document.
    pub location: String,
    /// Path of the signed element in the document.
    pub path: String,
    /// The canonical octets of the element that the digest covers.
    pub canonical: Vec<u8>,
    /// `canonical`, parsed: the signed element as a document of its own.
    pub document: Document,
}

/// Verifies the signature that `expect.profile` accepts over the element `expect` names, and
/// returns that element as it was signed.
///
/// ```no_run
/// use tereze_codecs::dsig::{verify_profile, Expect, Profile, TrustStore, VerifyPolicy};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let doc = tereze_codecs::xml::parse(&std::fs::read("message.xml")?)?;
/// let mut trust = TrustStore::new();
/// trust.add_pem(&std::fs::read("ca.pem")?)?;
/// let body = verify_profile(&doc, &trust, &VerifyPolicy::default(), &Expect::new(Profile::Wss))?;
/// println!("{} signed {}", body.verified.signer.subject, body.path);
/// let signed = &body.document; // read this, never `doc`
/// # let _ = signed;
/// # Ok(())
/// # }
/// ```
pub fn verify_profile(
    doc: &Document,
    trust: &TrustStore,
    policy: &VerifyPolicy,
    expect: &Expect,
) -> Result<SignedElement, VerifyError> {
    let profile = expect.profile;
    refuse_also_outside_wss(expect)?;
    let ids = doc.id_index()?;
    let soap = match profile {
        Profile::Wss => Some(wss::soap(doc)?),
        _ => None,
    };
    let element = named_element(doc, expect, soap.as_ref())?;
    refuse_wrapped(doc, element, "the element that must be signed")?;
    let also = expect
        .also
        .iter()
        .map(|p| p.resolve(doc).map_err(VerifyError::Element))
        .collect::<Result<Vec<_>, _>>()?;
    let sig = choose_signature(doc, &ids, policy, profile, element, soap.as_ref())?;
    refuse_wrapped(doc, sig, "the signature")?;
    let rules = Rules {
        profile,
        element: Some(element),
        also,
        soap,
    };
    let checked = check_signature(doc, sig, &ids, trust, policy, &rules)?;
    // Each profile's rules refuse a signature that does not sign `element`, so it is found;
    // the error is for a rule that someday forgets to.
    let index = checked
        .targets
        .iter()
        .position(|t| *t == element)
        .ok_or_else(|| VerifyError::NotCovered {
            path: doc.describe(element),
            profile: profile.to_string(),
            signatures: summary(doc, &[sig], &ids),
        })?;
    let reference = &checked.verified.references[index];
    let canonical = reference.canonical.clone();
    let document = xml::parse(&canonical).map_err(|e| VerifyError::Malformed {
        at: reference.path.clone(),
        reason: format!("the signed element's canonical form does not parse: {e}"),
    })?;
    Ok(SignedElement {
        location: doc.describe(sig),
        path: reference.path.clone(),
        canonical,
        document,
        verified: checked.verified,
    })
}

/// `Expect::also` lists further parts a WS-Security signature may sign; the other profiles
/// sign one element, so a list there is a caller's mistake, not something to ignore.
fn refuse_also_outside_wss(expect: &Expect) -> Result<(), VerifyError> {
    if expect.also.is_empty() || expect.profile == Profile::Wss {
        return Ok(());
    }
    Err(VerifyError::ReferenceNotAccepted {
        uri: String::new(),
        target: expect
            .also
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        profile: expect.profile.to_string(),
        reason: "only wss signs further parts; name one element".into(),
    })
}

/// The element that must be signed: the one `expect` names, or the profile's default.
fn named_element(
    doc: &Document,
    expect: &Expect,
    soap: Option<&Soap>,
) -> Result<NodeId, VerifyError> {
    match (&expect.element, expect.profile, soap) {
        (Some(path), _, _) => path.resolve(doc).map_err(VerifyError::Element),
        (None, Profile::Enveloped, _) => Ok(doc.root()),
        (None, Profile::Wss, Some(soap)) => Ok(soap.body),
        (None, profile, _) => Err(VerifyError::ElementRequired {
            profile: profile.to_string(),
        }),
    }
}

/// The one signature of `profile`'s shape over `element`: enveloped, a child of it; wss, one
/// in `wsse:Security` claiming it; detached-by-id, one claiming it. Two are refused rather
/// than one picked, since which one a reader means is then a guess.
fn choose_signature(
    doc: &Document,
    ids: &HashMap<String, NodeId>,
    policy: &VerifyPolicy,
    profile: Profile,
    element: NodeId,
    soap: Option<&Soap>,
) -> Result<NodeId, VerifyError> {
    let all = signatures_of(doc);
    if all.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let claiming: Vec<NodeId> = all
        .iter()
        .copied()
        .filter(|s| claims(doc, *s, ids, element))
        .collect();
    let candidates: Vec<NodeId> = match (profile, soap) {
        (Profile::Enveloped, _) => all
            .iter()
            .copied()
            .filter(|s| doc.parent(*s) == Some(element))
            .collect(),
        (Profile::Wss, Some(soap)) => claiming
            .iter()
            .copied()
            .filter(|s| wss::security_of(doc, soap, *s).is_some())
            .collect(),
        _ => claiming.clone(),
    };
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => Err(none_accepted(
            doc, ids, policy, profile, element, &all, &claiming,
        )),
        many => Err(multiple_signatures(doc, many)),
    }
}

/// Why no signature of `profile`'s shape covers `element`, as specifically as the document
/// allows, since the reason is what the sender must fix: a signature that signs the element
/// from inside a `ds:Object` is wrapped; a WS-Security one that signs it from outside
/// `wsse:Security` is misplaced, not missing; a document whose only signature would be
/// refused under any profile (its algorithm, its reference URI, its structure) is refused for
/// that, as [`verify`](super::verify) refuses it; otherwise no signature covers the element,
/// and the refusal says what the signatures do cover. `claiming`: the signatures whose
/// references resolve to `element` (none when the caller already checks those itself).
pub(super) fn none_accepted(
    doc: &Document,
    ids: &HashMap<String, NodeId>,
    policy: &VerifyPolicy,
    profile: Profile,
    element: NodeId,
    all: &[NodeId],
    claiming: &[NodeId],
) -> VerifyError {
    if let Some(sig) = claiming.first() {
        if let Err(e) = refuse_wrapped(doc, *sig, "the signature") {
            return e;
        }
        if profile == Profile::Wss {
            return VerifyError::SignatureMisplaced {
                at: doc.describe(*sig),
                profile: profile.to_string(),
                reason: WSS_PLACE.into(),
            };
        }
    }
    if let [only] = all {
        if let Err(e) = read_signature(doc, *only, ids, policy) {
            return e;
        }
    }
    VerifyError::NotCovered {
        path: doc.describe(element),
        profile: profile.to_string(),
        signatures: summary(doc, all, ids),
    }
}

/// Where a WS-Security signature must be, for refusals of one that is elsewhere.
const WSS_PLACE: &str = "a WS-Security signature is a child of soap:Header/wsse:Security";

/// Whether one of `sig`'s references (as `SignedInfo` states them, before verification)
/// resolves to `element`.
pub(super) fn claims(
    doc: &Document,
    sig: NodeId,
    ids: &HashMap<String, NodeId>,
    element: NodeId,
) -> bool {
    claimed_targets(doc, sig, ids)
        .iter()
        .any(|(_, t)| *t == Some(element))
}

/// "signature at X covers Y, Z; …": for refusals that say what the document's signatures do.
fn summary(doc: &Document, signatures: &[NodeId], ids: &HashMap<String, NodeId>) -> String {
    if signatures.is_empty() {
        return "the document has no signature".into();
    }
    signatures
        .iter()
        .map(|s| {
            let covers = claimed_targets(doc, *s, ids)
                .iter()
                .map(|(uri, t)| match t {
                    Some(t) => doc.path(*t),
                    None => format!("{uri:?} (unresolved)"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("signature at {} covers [{covers}]", doc.describe(*s))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Refuses `node` inside a `ds:Object` or inside any signature.
pub(super) fn refuse_wrapped(
    doc: &Document,
    node: NodeId,
    what: &'static str,
) -> Result<(), VerifyError> {
    if enclosing_object(doc, node).is_some() {
        return Err(VerifyError::InsideObject {
            what,
            at: doc.describe(node),
        });
    }
    let mut cur = doc.parent(node);
    while let Some(n) = cur {
        if doc
            .element(n)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "Signature"))
        {
            return Err(VerifyError::InsideObject {
                what,
                at: doc.describe(node),
            });
        }
        cur = doc.parent(n);
    }
    Ok(())
}

/// A profile's placement rules for one signature. `element`: the element that must be signed
/// (`None` when every signature of a document is checked and each names its own).
pub(super) struct Rules {
    pub profile: Profile,
    pub element: Option<NodeId>,
    /// `wss`: further elements the caller allows.
    pub also: Vec<NodeId>,
    pub soap: Option<Soap>,
}

impl Rules {
    fn refuse(&self, doc: &Document, t: &Target<'_>, reason: impl Into<String>) -> VerifyError {
        VerifyError::ReferenceNotAccepted {
            uri: t.uri.to_owned(),
            target: doc.describe(t.node),
            profile: self.profile.to_string(),
            reason: reason.into(),
        }
    }

    fn misplaced(&self, doc: &Document, sig: NodeId, reason: impl Into<String>) -> VerifyError {
        VerifyError::SignatureMisplaced {
            at: doc.describe(sig),
            profile: self.profile.to_string(),
            reason: reason.into(),
        }
    }

    /// `enveloped`: every reference names the signature's parent and removes the signature
    /// from what it digests.
    fn check_enveloped(
        &self,
        doc: &Document,
        sig: NodeId,
        targets: &[Target<'_>],
    ) -> Result<(), VerifyError> {
        for t in targets {
            require_parent(doc, sig, t)?;
            if !t.excludes_signature {
                return Err(self.refuse(
                    doc,
                    t,
                    "the element holds the signature, so the reference needs the enveloped-signature transform",
                ));
            }
        }
        Ok(())
    }

    /// `detached-by-id`: exactly one reference, by `#id`, to the named element (when one is
    /// named), in a place [`Self::check_detached_place`] accepts.
    fn check_detached(
        &self,
        doc: &Document,
        sig: NodeId,
        targets: &[Target<'_>],
    ) -> Result<(), VerifyError> {
        let [t] = targets else {
            return Err(self.misplaced(
                doc,
                sig,
                format!(
                    "detached-by-id accepts one reference, this signature has {}",
                    targets.len()
                ),
            ));
        };
        if t.whole_document {
            return Err(self.refuse(doc, t, "detached-by-id signs an element by \"#id\""));
        }
        if let Some(element) = self.element {
            if t.node != element {
                return Err(self.refuse(
                    doc,
                    t,
                    format!(
                        "the element that must be signed is {}",
                        doc.describe(element)
                    ),
                ));
            }
        }
        self.check_detached_place(doc, sig, t)
    }

    /// Where a detached-by-id signed element may be: beside its signature, or holding it with
    /// the signature removed from what is digested; with no element named, also the only
    /// element at its path.
    fn check_detached_place(
        &self,
        doc: &Document,
        sig: NodeId,
        t: &Target<'_>,
    ) -> Result<(), VerifyError> {
        let inside = doc.is_ancestor_or_self(t.node, sig);
        if inside && !t.excludes_signature {
            return Err(self.refuse(
                doc,
                t,
                "it holds the signature (an ancestor of it) and the reference has no enveloped-signature transform",
            ));
        }
        // Beside: a sibling of the signature, or of the element holding it (SMEV 3's
        // CallerInformationSystemSignature beside SenderProvidedRequestData). A signed element
        // anywhere else is one moved away from where the message is read.
        let holder = doc.parent(sig);
        let beside = doc
            .parent(t.node)
            .is_some_and(|p| holder == Some(p) || holder.and_then(|h| doc.parent(h)) == Some(p));
        if !inside && !beside {
            return Err(self.refuse(
                doc,
                t,
                "detached-by-id signs an element beside the signature (a sibling of it or of the element holding it)",
            ));
        }
        // Without a named element, the signed one must at least be the only element at its
        // path: an unsigned copy beside it is what a reader by path would take.
        if self.element.is_none() {
            let path = ElementPath::of(doc, t.node);
            if path.resolve(doc) != Ok(t.node) {
                return Err(self.refuse(
                    doc,
                    t,
                    format!("another element has the same path {path}"),
                ));
            }
        }
        Ok(())
    }

    /// `wss`: the signature a child of `soap:Header/wsse:Security` with at most one
    /// `wsu:Timestamp`, each reference one [`Self::check_wss_target`] accepts, the element among
    /// them.
    fn check_wss(
        &self,
        doc: &Document,
        sig: NodeId,
        targets: &[Target<'_>],
    ) -> Result<(), VerifyError> {
        let soap = match &self.soap {
            Some(soap) => *soap,
            None => wss::soap(doc)?,
        };
        let security =
            wss::security_of(doc, &soap, sig).ok_or_else(|| self.misplaced(doc, sig, WSS_PLACE))?;
        let timestamps = wss::timestamps(doc, security);
        if timestamps.len() > 1 {
            return Err(self.misplaced(
                doc,
                sig,
                format!(
                    "its Security header has {} wsu:Timestamp elements",
                    timestamps.len()
                ),
            ));
        }
        let element = self.element.unwrap_or(soap.body);
        for t in targets {
            self.check_wss_target(doc, sig, t, element, &timestamps)?;
        }
        if !targets.iter().any(|t| t.node == element) {
            return Err(VerifyError::NotCovered {
                path: doc.describe(element),
                profile: self.profile.to_string(),
                signatures: format!("the signature at {} does not sign it", doc.describe(sig)),
            });
        }
        Ok(())
    }

    /// One WS-Security reference: by `#id`, never to an ancestor of the signature (that would
    /// sign the header it sits in), and only to `element`, the header's `wsu:Timestamp` or a
    /// part the caller listed.
    fn check_wss_target(
        &self,
        doc: &Document,
        sig: NodeId,
        t: &Target<'_>,
        element: NodeId,
        timestamps: &[NodeId],
    ) -> Result<(), VerifyError> {
        if t.whole_document {
            return Err(self.refuse(
                doc,
                t,
                "WS-Security signs parts by \"#id\", not the whole message",
            ));
        }
        if doc.is_ancestor_or_self(t.node, sig) {
            return Err(self.refuse(doc, t, "it is an ancestor of the signature"));
        }
        if t.node != element && !timestamps.contains(&t.node) && !self.also.contains(&t.node) {
            return Err(self.refuse(
                doc,
                t,
                format!(
                    "accepted are {}, the Security header's wsu:Timestamp and the parts the caller lists",
                    doc.path(element)
                ),
            ));
        }
        Ok(())
    }
}

impl Placement for Rules {
    fn check(
        &self,
        doc: &Document,
        sig: NodeId,
        targets: &[Target<'_>],
    ) -> Result<(), VerifyError> {
        for t in targets {
            refuse_wrapped(doc, t.node, "a signed element")?;
        }
        match self.profile {
            Profile::Enveloped => self.check_enveloped(doc, sig, targets),
            Profile::DetachedById => self.check_detached(doc, sig, targets),
            Profile::Wss => self.check_wss(doc, sig, targets),
        }
    }

    fn certificates(
        &self,
        doc: &Document,
        sig: NodeId,
        key_info: NodeId,
        ids: &HashMap<String, NodeId>,
    ) -> Result<Option<Vec<Vec<u8>>>, VerifyError> {
        if self.profile != Profile::Wss {
            return Ok(None);
        }
        Ok(wss::token_certificate(doc, sig, key_info, ids)?.map(|der| vec![der]))
    }
}

#[cfg(test)]
mod tests {
    // Each profile: what it accepts and returns, and the signature-wrapping shapes it refuses
    // (duplicate ids, the signed element moved, content in `ds:Object`, references to ancestors
    // of the signature, comments in signed text).

    use super::*;
    use crate::dsig::path::ResolveError;
    use crate::dsig::template::{fill, signature, x509_data, ENVELOPED};
    use crate::dsig::{SigningKey, TrustStore};
    use crate::dsig::{
        BASE64_ENCODING, SOAP11_NAMESPACE, SOAP12_NAMESPACE, WSSE_NAMESPACE, X509V3_TOKEN,
    };
    use crate::pki::{self_signed_signer, KeyKind};

    struct Signer {
        key: SigningKey,
        trust: TrustStore,
    }

    fn signer(name: &str) -> Signer {
        let (key, cert) = self_signed_signer(KeyKind::EcP256, name, 30).expect("signer");
        let mut trust = TrustStore::new();
        trust.add_certificate(cert);
        Signer { key, trust }
    }

    fn check(xml: &str, trust: &TrustStore, expect: &Expect) -> Result<SignedElement, VerifyError> {
        let doc = crate::xml::parse(xml.as_bytes()).expect("parses");
        verify_profile(&doc, trust, &VerifyPolicy::default(), expect)
    }

    /// Asserts that `xml` is refused under `expect` with an error matching the pattern (`why`,
    /// when given, says what must be refused), and returns that error for further checks.
    macro_rules! assert_refused {
        ($xml:expr, $trust:expr, $expect:expr, $why:literal, $($pattern:tt)+) => {{
            let e = check($xml, $trust, $expect).expect_err($why);
            assert!(matches!(e, $($pattern)+), "{e}");
            e
        }};
        ($xml:expr, $trust:expr, $expect:expr, $($pattern:tt)+) => {
            assert_refused!($xml, $trust, $expect, "refused", $($pattern)+)
        };
    }

    /// Every signature of `xml` checked under `profile` (no element named).
    fn check_all(
        xml: &str,
        trust: &TrustStore,
        profile: Profile,
    ) -> Result<Vec<crate::dsig::SignatureReport>, VerifyError> {
        let doc = crate::xml::parse(xml.as_bytes()).expect("parses");
        crate::dsig::verify_signatures(
            &doc,
            trust,
            &VerifyPolicy::default(),
            profile,
            &crate::dsig::Select::All,
        )
    }

    /// The reason an every-signature check gave for its invalid signature.
    fn reason_among(e: VerifyError) -> std::sync::Arc<VerifyError> {
        match e {
            VerifyError::InvalidAmong { reason, .. } => reason,
            other => panic!("expected InvalidAmong, got {other}"),
        }
    }

    fn path(p: &str) -> ElementPath {
        ElementPath::parse(p).expect("path")
    }

    /// The text of the first element that starts with `open` and ends with `close` in `xml`.
    fn span<'a>(xml: &'a str, open: &str, close: &str) -> &'a str {
        let start = xml.find(open).expect("the element");
        let end = xml[start..].find(close).expect("its end") + start + close.len();
        &xml[start..end]
    }

    /// `signed` with the element `data` carried in its signature's `ds:Object` and `evil` in
    /// its place: the classic wrapping of signed content in the signature.
    fn carried_in_object(signed: &str, data: &str, evil: &str) -> String {
        signed.replacen(data, evil, 1).replace(
            "</ds:Signature>",
            &format!("<ds:Object>{data}</ds:Object></ds:Signature>"),
        )
    }

    /// The canonical text of the returned element, for asserting what the caller gets.
    fn text(s: &SignedElement) -> String {
        String::from_utf8(s.canonical.clone()).expect("utf-8")
    }

    #[test]
    fn profile_names_round_trip_and_an_unknown_one_is_refused_with_the_choices() {
        for p in Profile::ALL {
            assert_eq!(p.to_string().parse::<Profile>(), Ok(p));
        }
        assert_eq!(Profile::default(), Profile::Enveloped);
        let e = "wsse".parse::<Profile>().expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "unknown profile \"wsse\"; expected one of enveloped, detached-by-id, wss"
        );
    }

    /// An enveloping signature (the document element) that signs its own `ds:Object`, with
    /// `method` and one reference to `uri`: the shapes of the published HMAC, MD5 and
    /// external-reference vectors. Never filled: they are refused before any cryptography.
    fn enveloping(method: &str, uri: &str) -> String {
        format!(
            "<ds:Signature xmlns:ds=\"{DSIG_NAMESPACE}\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"{method}\"/><ds:Reference URI=\"{uri}\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue><ds:Object Id=\"obj\">data</ds:Object></ds:Signature>"
        )
    }

    #[test]
    fn a_document_whose_only_signature_is_refused_anyway_gets_that_reason_under_a_profile() {
        let s = signer("Enveloping signer");
        let ecdsa = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
        let cases = [
            (
                enveloping("http://www.w3.org/2000/09/xmldsig#hmac-sha1", "#obj"),
                "HMAC",
            ),
            (
                enveloping(ecdsa, "http://www.ietf.org/rfc/rfc3161.txt"),
                "external reference",
            ),
        ];
        for (xml, case) in cases {
            let doc = crate::xml::parse(xml.as_bytes()).expect("parses");
            let plain = crate::dsig::verify(&doc, &s.trust, &VerifyPolicy::default())
                .expect_err("verify refuses");
            assert!(
                matches!(
                    plain,
                    VerifyError::UnsupportedAlgorithm(_) | VerifyError::UnsupportedReferenceUri(_)
                ),
                "{case}: {plain}"
            );
            let under = check(&xml, &s.trust, &Expect::default()).expect_err("refused");
            assert_eq!(under.to_string(), plain.to_string(), "{case}");
            // The same when the signatures covering the document element are asked for.
            let covering = crate::dsig::verify_signatures(
                &doc,
                &s.trust,
                &VerifyPolicy::default(),
                Profile::Enveloped,
                &crate::dsig::Select::Covering(ElementPath::of(&doc, doc.root())),
            )
            .expect_err("refused");
            assert_eq!(covering.to_string(), plain.to_string(), "{case}");
        }
    }

    // ---- enveloped ----

    fn enveloped_doc(s: &Signer) -> String {
        let tmpl = format!(
            "<Doc><Data Id=\"d\">ok</Data>{}</Doc>",
            signature(&[("", ENVELOPED)], &x509_data(&s.key))
        );
        fill(&tmpl, &[&s.key], &[0])
    }

    #[test]
    fn enveloped_returns_the_document_element_as_it_was_signed() {
        let s = signer("Enveloped signer");
        let signed = check(&enveloped_doc(&s), &s.trust, &Expect::default()).expect("verifies");
        assert_eq!(signed.path, "/Doc[1]");
        assert_eq!(text(&signed), "<Doc><Data Id=\"d\">ok</Data></Doc>");
        let root = signed.document.root();
        assert_eq!(
            signed.document.element(root).map(|e| e.name.local.as_str()),
            Some("Doc")
        );
        assert_eq!(signed.verified.signer.subject, "CN=Enveloped signer");
        // The element named explicitly is the same.
        let named = check(
            &enveloped_doc(&s),
            &s.trust,
            &Expect::new(Profile::Enveloped).element(path("/Doc")),
        )
        .expect("verifies");
        assert_eq!(named.canonical, signed.canonical);
    }

    #[test]
    fn enveloped_refuses_a_named_element_the_signature_is_not_in() {
        let s = signer("Enveloped signer");
        assert_refused!(
            &enveloped_doc(&s),
            &s.trust,
            &Expect::new(Profile::Enveloped).element(path("/Doc/Data")),
            "the signature is not in Data",
            VerifyError::NotCovered { .. }
        );
    }

    #[test]
    fn enveloped_refuses_duplicate_ids() {
        let s = signer("Enveloped signer");
        let attacked = enveloped_doc(&s).replace("<Doc>", "<Doc><Evil Id=\"d\">evil</Evil>");
        assert_refused!(
            &attacked,
            &s.trust,
            &Expect::default(),
            VerifyError::DuplicateId(_)
        );
    }

    #[test]
    fn enveloped_refuses_the_signed_element_moved_behind_an_unsigned_one() {
        let s = signer("Enveloped signer");
        let tmpl = format!(
            "<Doc><Data Id=\"d\">ok{}</Data></Doc>",
            signature(&[("#d", ENVELOPED)], &x509_data(&s.key))
        );
        let signed = fill(&tmpl, &[&s.key], &[0]);
        let expect = Expect::new(Profile::Enveloped).element(path("/Doc/Data"));
        let ok = check(&signed, &s.trust, &expect).expect("verifies");
        assert!(text(&ok).contains(">ok</Data>"), "{}", text(&ok));
        // The signed Data moved into a wrapper, an unsigned Data in its place.
        let moved = signed
            .replace("<Doc>", "<Doc><Data>evil</Data><Wrapper>")
            .replace("</Doc>", "</Wrapper></Doc>");
        assert_refused!(&moved, &s.trust, &expect, VerifyError::NotCovered { .. });
        // Both Data siblings: the path is ambiguous.
        let twice = signed.replace("<Doc>", "<Doc><Data>evil</Data>");
        assert_refused!(
            &twice,
            &s.trust,
            &expect,
            VerifyError::Element(ResolveError::Ambiguous { count: 2, .. })
        );
    }

    #[test]
    fn enveloped_refuses_the_signed_element_inside_an_object() {
        let s = signer("Enveloped signer");
        let tmpl = format!(
            "<Doc><Data Id=\"d\">ok</Data>{}</Doc>",
            signature(&[("#d", "")], &x509_data(&s.key))
        );
        let signed = fill(&tmpl, &[&s.key], &[0]);
        // The signed Data carried in the signature's Object, an evil Data where it was.
        let data = span(&signed, "<Data", "</Data>");
        let attacked = carried_in_object(&signed, data, "<Data>evil</Data>");
        assert_refused!(&attacked, &s.trust, &Expect::new(Profile::Enveloped).element(path("/Doc/Data")), VerifyError::ReferenceInsideSignature { ref at, .. } if at.contains("ds:Object"));
        // Naming the element inside the Object is refused as such.
        let named_inside = check(
            &attacked,
            &s.trust,
            &Expect::new(Profile::Enveloped).element(path(&format!(
                "/Doc/{{{DSIG_NAMESPACE}}}Signature/{{{DSIG_NAMESPACE}}}Object/Data"
            ))),
        )
        .expect_err("refused");
        assert!(
            matches!(named_inside, VerifyError::InsideObject { .. }),
            "{named_inside}"
        );
    }

    #[test]
    fn enveloped_refuses_a_reference_to_an_ancestor_above_the_signature_parent() {
        let s = signer("Enveloped signer");
        let tmpl = format!(
            "<Doc><Data>ok{}</Data></Doc>",
            signature(&[("", ENVELOPED)], &x509_data(&s.key))
        );
        let signed = fill(&tmpl, &[&s.key], &[0]);
        assert_refused!(
            &signed,
            &s.trust,
            &Expect::new(Profile::Enveloped).element(path("/Doc/Data")),
            VerifyError::NotEnveloped { .. }
        );
    }

    #[test]
    fn enveloped_refuses_a_reference_to_an_element_other_than_the_signature_parent() {
        let s = signer("Enveloped signer");
        let tmpl = format!(
            "<Doc><Data Id=\"d\">ok</Data>{}</Doc>",
            signature(&[("#d", ENVELOPED)], &x509_data(&s.key))
        );
        assert_refused!(
            &fill(&tmpl, &[&s.key], &[0]),
            &s.trust,
            &Expect::default(),
            VerifyError::NotEnveloped { .. }
        );
    }

    #[test]
    fn enveloped_refuses_a_comment_splitting_signed_text() {
        let s = signer("Enveloped signer");
        let attacked = enveloped_doc(&s).replace(">ok<", ">o<!---->k<");
        assert_refused!(
            &attacked,
            &s.trust,
            &Expect::default(),
            VerifyError::UnsignedComment { .. }
        );
    }

    // ---- detached-by-id (SMEV 3 shape) ----

    const SMEV: &str = "urn://x-artefacts-smev-gov-ru/services/message-exchange/types/1.1";

    fn smev_path() -> ElementPath {
        path(&format!(
            "/{{{SMEV}}}SendRequestRequest/{{{SMEV}}}SenderProvidedRequestData"
        ))
    }

    fn smev_doc(s: &Signer, transforms: &str) -> String {
        let tmpl = format!(
            "<SendRequestRequest xmlns=\"{SMEV}\"><SenderProvidedRequestData Id=\"SIGNED_BY_CONSUMER\"><MessageID>1</MessageID><Content>ok</Content></SenderProvidedRequestData><CallerInformationSystemSignature>{}</CallerInformationSystemSignature></SendRequestRequest>",
            signature(&[("#SIGNED_BY_CONSUMER", transforms)], &x509_data(&s.key))
        );
        fill(&tmpl, &[&s.key], &[0])
    }

    fn detached() -> Expect {
        Expect::new(Profile::DetachedById).element(smev_path())
    }

    #[test]
    fn detached_returns_the_element_signed_from_a_sibling() {
        let s = signer("SMEV consumer");
        let signed = check(&smev_doc(&s, ""), &s.trust, &detached()).expect("verifies");
        assert_eq!(
            signed.path,
            "/SendRequestRequest[1]/SenderProvidedRequestData[1]"
        );
        assert!(
            text(&signed).starts_with("<SenderProvidedRequestData xmlns=\""),
            "{}",
            text(&signed)
        );
        assert!(text(&signed).contains("<Content>ok</Content>"));
        assert!(signed.location.contains("CallerInformationSystemSignature"));
        // The enveloped-signature transform on a detached reference changes nothing: accepted.
        check(&smev_doc(&s, ENVELOPED), &s.trust, &detached()).expect("verifies");
    }

    #[test]
    fn detached_needs_the_element_named() {
        let s = signer("SMEV consumer");
        let e = assert_refused!(
            &smev_doc(&s, ""),
            &s.trust,
            &Expect::new(Profile::DetachedById),
            VerifyError::ElementRequired { .. }
        );
        assert_eq!(
            e.to_string(),
            "profile detached-by-id needs the element that must be signed (an element path)"
        );
    }

    #[test]
    fn detached_refuses_a_second_reference_and_a_whole_document_reference() {
        let s = signer("SMEV consumer");
        let tmpl = format!(
            "<SendRequestRequest xmlns=\"{SMEV}\"><SenderProvidedRequestData Id=\"a\">ok</SenderProvidedRequestData><Other Id=\"b\">x</Other><Sig>{}</Sig></SendRequestRequest>",
            signature(&[("#a", ""), ("#b", "")], &x509_data(&s.key))
        );
        assert_refused!(
            &fill(&tmpl, &[&s.key], &[0]),
            &s.trust,
            &detached(),
            VerifyError::SignatureMisplaced { .. }
        );

        let tmpl = format!(
            "<SendRequestRequest xmlns=\"{SMEV}\"><Sig>{}</Sig></SendRequestRequest>",
            signature(&[("", ENVELOPED)], &x509_data(&s.key))
        );
        assert_refused!(
            &fill(&tmpl, &[&s.key], &[0]),
            &s.trust,
            &Expect::new(Profile::DetachedById)
                .element(path(&format!("/{{{SMEV}}}SendRequestRequest"))),
            VerifyError::ReferenceNotAccepted { .. }
        );
    }

    #[test]
    fn detached_refuses_duplicate_ids() {
        let s = signer("SMEV consumer");
        let attacked = smev_doc(&s, "").replace(
            "<CallerInformationSystemSignature>",
            "<Evil Id=\"SIGNED_BY_CONSUMER\"/><CallerInformationSystemSignature>",
        );
        assert_refused!(
            &attacked,
            &s.trust,
            &detached(),
            VerifyError::DuplicateId(_)
        );
    }

    #[test]
    fn detached_refuses_the_signed_element_moved_or_in_an_object() {
        let s = signer("SMEV consumer");
        let signed = smev_doc(&s, "");
        let data = span(
            &signed,
            "<SenderProvidedRequestData",
            "</SenderProvidedRequestData>",
        );
        let evil = "<SenderProvidedRequestData><MessageID>1</MessageID><Content>evil</Content></SenderProvidedRequestData>";
        // Moved into a wrapper, an unsigned one in its place.
        let moved = signed.replacen(data, &format!("{evil}<Wrapper>{data}</Wrapper>"), 1);
        assert_refused!(
            &moved,
            &s.trust,
            &detached(),
            VerifyError::NotCovered { .. }
        );
        // Carried in the signature's ds:Object.
        let in_object = carried_in_object(&signed, data, evil);
        assert_refused!(&in_object, &s.trust, &detached(), VerifyError::ReferenceInsideSignature { ref at, .. } if at.contains("ds:Object"));
    }

    #[test]
    fn detached_without_a_named_element_refuses_the_signed_element_moved() {
        // Every signature checked, so no element is named: the signed element must still sit
        // beside the signature and be the only one at its path.
        let s = signer("SMEV consumer");
        let signed = smev_doc(&s, "");
        let reports = check_all(&signed, &s.trust, Profile::DetachedById).expect("verifies");
        assert_eq!(
            reports[0].covers,
            ["/SendRequestRequest[1]/SenderProvidedRequestData[1]"]
        );
        let data = span(
            &signed,
            "<SenderProvidedRequestData",
            "</SenderProvidedRequestData>",
        );
        let evil = "<SenderProvidedRequestData><Content>evil</Content></SenderProvidedRequestData>";
        let moved_to_end = signed.replacen(data, evil, 1).replace(
            "</SendRequestRequest>",
            &format!("{data}</SendRequestRequest>"),
        );
        let wrapped = signed.replacen(data, &format!("{evil}<Wrapper>{data}</Wrapper>"), 1);
        for attacked in [moved_to_end, wrapped] {
            let e = check_all(&attacked, &s.trust, Profile::DetachedById).expect_err("refused");
            let reason = reason_among(e);
            assert!(
                matches!(*reason, VerifyError::ReferenceNotAccepted { .. }),
                "{reason}"
            );
        }
    }

    #[test]
    fn detached_refuses_a_second_element_at_the_named_path() {
        let s = signer("SMEV consumer");
        let twice = smev_doc(&s, "").replace(
            "<CallerInformationSystemSignature>",
            "<SenderProvidedRequestData><Content>evil</Content></SenderProvidedRequestData><CallerInformationSystemSignature>",
        );
        assert_refused!(
            &twice,
            &s.trust,
            &detached(),
            VerifyError::Element(ResolveError::Ambiguous { count: 2, .. })
        );
    }

    #[test]
    fn detached_refuses_a_reference_to_an_ancestor_without_the_enveloped_transform() {
        let s = signer("SMEV consumer");
        let tmpl = format!(
            "<SendRequestRequest xmlns=\"{SMEV}\"><SenderProvidedRequestData Id=\"a\">ok<Sig>{}</Sig></SenderProvidedRequestData></SendRequestRequest>",
            signature(&[("#a", "")], &x509_data(&s.key))
        );
        assert_refused!(
            &fill(&tmpl, &[&s.key], &[0]),
            &s.trust,
            &detached(),
            VerifyError::ReferenceNotAccepted { .. }
        );
        // With the transform, the signature inside the element it signs is accepted.
        let tmpl = tmpl.replace("<ds:Transforms>", &format!("<ds:Transforms>{ENVELOPED}"));
        let ok = check(&fill(&tmpl, &[&s.key], &[0]), &s.trust, &detached()).expect("verifies");
        assert!(!text(&ok).contains("Signature"), "{}", text(&ok));
    }

    #[test]
    fn detached_refuses_a_comment_splitting_signed_text() {
        let s = signer("SMEV consumer");
        let attacked = smev_doc(&s, "").replace(">ok<", ">o<!---->k<");
        assert_refused!(
            &attacked,
            &s.trust,
            &detached(),
            VerifyError::UnsignedComment { .. }
        );
    }

    // ---- wss ----

    const WSU: &str = crate::xml::WSU_NAMESPACE;

    /// A SOAP message (`soap` namespace) whose Security header signs the Body and the Timestamp;
    /// `token` puts the certificate in a BinarySecurityToken referenced from KeyInfo.
    fn wss_doc(s: &Signer, soap: &str, token: bool) -> String {
        let der = s.key.certificate().expect("cert").to_der().expect("der");
        let (bst, key_info) = if token {
            (
                format!(
                    "<wsse:BinarySecurityToken wsu:Id=\"X509Token\" ValueType=\"{X509V3_TOKEN}\" EncodingType=\"{BASE64_ENCODING}\">{}</wsse:BinarySecurityToken>",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der)
                ),
                format!(
                    "<wsse:SecurityTokenReference><wsse:Reference URI=\"#X509Token\" ValueType=\"{X509V3_TOKEN}\"/></wsse:SecurityTokenReference>"
                ),
            )
        } else {
            (String::new(), x509_data(&s.key))
        };
        let tmpl = format!(
            "<soap:Envelope xmlns:soap=\"{soap}\" xmlns:wsse=\"{WSSE_NAMESPACE}\" xmlns:wsu=\"{WSU}\"><soap:Header><wsse:Security>{bst}<wsu:Timestamp wsu:Id=\"TS\"><wsu:Created>2026-12-08T00:00:00Z</wsu:Created></wsu:Timestamp>{}</wsse:Security></soap:Header><soap:Body wsu:Id=\"Body\"><m:Order xmlns:m=\"urn:m\">ok</m:Order></soap:Body></soap:Envelope>",
            signature(&[("#Body", ""), ("#TS", "")], &key_info)
        );
        fill(&tmpl, &[&s.key], &[0])
    }

    fn wss() -> Expect {
        Expect::new(Profile::Wss)
    }

    #[test]
    fn wss_returns_the_body_in_soap_11_and_12_with_either_key_info() {
        let s = signer("WSS client");
        for soap in [SOAP11_NAMESPACE, SOAP12_NAMESPACE] {
            for token in [false, true] {
                let signed = check(&wss_doc(&s, soap, token), &s.trust, &wss())
                    .unwrap_or_else(|e| panic!("{soap} token={token}: {e}"));
                assert_eq!(signed.path, "/soap:Envelope[1]/soap:Body[1]");
                assert!(text(&signed).starts_with("<soap:Body"), "{}", text(&signed));
                assert!(text(&signed).contains(">ok</m:Order>"));
                assert_eq!(signed.verified.signer.subject, "CN=WSS client");
                assert_eq!(signed.verified.references.len(), 2);
            }
        }
        // The Body named explicitly, with the caller's prefix.
        let named = ElementPath::parse_with("/s:Envelope/s:Body", &[("s", SOAP11_NAMESPACE)])
            .expect("path");
        check(
            &wss_doc(&s, SOAP11_NAMESPACE, true),
            &s.trust,
            &wss().element(named),
        )
        .expect("verifies");
    }

    #[test]
    fn wss_refuses_a_message_that_is_not_soap_or_has_two_bodies() {
        let s = signer("WSS client");
        assert_refused!(
            &enveloped_doc(&s),
            &s.trust,
            &wss(),
            VerifyError::NotSoap { .. }
        );
        let two = wss_doc(&s, SOAP11_NAMESPACE, false).replace(
            "</soap:Header>",
            "</soap:Header><soap:Body><m:Order xmlns:m=\"urn:m\">evil</m:Order></soap:Body>",
        );
        let e = assert_refused!(&two, &s.trust, &wss(), VerifyError::NotSoap { .. });
        assert!(e.to_string().contains("2 Body elements"), "{e}");
    }

    #[test]
    fn wss_refuses_the_signed_body_wrapped_in_a_header_with_an_unsigned_body_in_place() {
        let s = signer("WSS client");
        let signed = wss_doc(&s, SOAP11_NAMESPACE, false);
        let body = span(&signed, "<soap:Body", "</soap:Body>");
        let attacked = signed
            .replacen(
                body,
                "<soap:Body><m:Order xmlns:m=\"urn:m\">evil</m:Order></soap:Body>",
                1,
            )
            .replace(
                "</soap:Header>",
                &format!("<Wrapper>{body}</Wrapper></soap:Header>"),
            );
        assert_refused!(&attacked, &s.trust, &wss(), VerifyError::NotCovered { .. });
    }

    #[test]
    fn wss_refuses_duplicate_ids() {
        let s = signer("WSS client");
        let attacked = wss_doc(&s, SOAP11_NAMESPACE, false)
            .replace("<soap:Header>", "<soap:Header><Evil wsu:Id=\"Body\"/>");
        assert_refused!(&attacked, &s.trust, &wss(), VerifyError::DuplicateId(_));
    }

    #[test]
    fn wss_refuses_a_signature_outside_the_security_header_or_in_an_object() {
        let s = signer("WSS client");
        let signed = wss_doc(&s, SOAP11_NAMESPACE, false);
        let sig = span(&signed, "<ds:Signature", "</ds:Signature>");
        let outside = signed
            .replacen(sig, "", 1)
            .replace("</soap:Header>", &format!("{sig}</soap:Header>"));
        assert_refused!(&outside, &s.trust, &wss(), VerifyError::SignatureMisplaced { ref at, .. } if at.contains("soap:Header[1]/ds:Signature"));
        // Under every-signature checking the misplaced signature is named as such.
        let e = check_all(&outside, &s.trust, Profile::Wss).expect_err("refused");
        let reason = reason_among(e);
        assert!(
            matches!(*reason, VerifyError::SignatureMisplaced { .. }),
            "{reason}"
        );
        // Wrapped in another (decoy) signature's Object inside the Security header.
        let decoy = format!(
            "<ds:Signature xmlns:ds=\"{DSIG_NAMESPACE}\"><ds:Object>{sig}</ds:Object></ds:Signature>"
        );
        let in_object = signed.replacen(sig, &decoy, 1);
        assert_refused!(
            &in_object,
            &s.trust,
            &wss(),
            VerifyError::InsideObject {
                what: "the signature",
                ..
            }
        );
    }

    #[test]
    fn wss_refuses_references_outside_body_timestamp_and_listed_parts() {
        let s = signer("WSS client");
        let with_part = |refs: &[(&str, &str)]| {
            let tmpl = format!(
                "<soap:Envelope xmlns:soap=\"{SOAP11_NAMESPACE}\" xmlns:wsse=\"{WSSE_NAMESPACE}\" xmlns:wsu=\"{WSU}\" wsu:Id=\"Env\"><soap:Header wsu:Id=\"Hdr\"><To wsu:Id=\"To\">urn:to</To><wsse:Security wsu:Id=\"Sec\">{}</wsse:Security></soap:Header><soap:Body wsu:Id=\"Body\">ok</soap:Body></soap:Envelope>",
                signature(refs, &x509_data(&s.key))
            );
            fill(&tmpl, &[&s.key], &[0])
        };
        let doc = with_part(&[("#Body", ""), ("#To", "")]);
        assert_refused!(
            &doc,
            &s.trust,
            &wss(),
            "To not listed",
            VerifyError::ReferenceNotAccepted { .. }
        );
        let to = ElementPath::parse_with("/s:Envelope/s:Header/To", &[("s", SOAP11_NAMESPACE)])
            .expect("path");
        check(&doc, &s.trust, &wss().also(to)).expect("To listed");
        // References to ancestors of the signature, even with the enveloped transform.
        for id in ["#Sec", "#Hdr", "#Env"] {
            let doc = with_part(&[("#Body", ""), (id, ENVELOPED)]);
            let e = check(&doc, &s.trust, &wss()).expect_err("ancestor");
            assert!(
                matches!(e, VerifyError::ReferenceNotAccepted { .. }),
                "{id}: {e}"
            );
        }
        // A signature that does not sign the Body.
        let doc = with_part(&[("#To", "")]);
        assert_refused!(
            &doc,
            &s.trust,
            &wss(),
            "no Body",
            VerifyError::NotCovered { .. }
        );
    }

    #[test]
    fn wss_refuses_a_token_outside_the_signature_security_header_or_of_another_type() {
        let s = signer("WSS client");
        let signed = wss_doc(&s, SOAP11_NAMESPACE, true);
        let bst = span(
            &signed,
            "<wsse:BinarySecurityToken",
            "</wsse:BinarySecurityToken>",
        );
        let elsewhere = signed.replacen(bst, "", 1).replace(
            "</soap:Header>",
            &format!("<Other>{bst}</Other></soap:Header>"),
        );
        assert_refused!(
            &elsewhere,
            &s.trust,
            &wss(),
            VerifyError::SecurityToken { .. }
        );
        let other_type =
            signed.replacen("#X509v3\" EncodingType", "#X509PKIPathv1\" EncodingType", 1);
        assert_refused!(
            &other_type,
            &s.trust,
            &wss(),
            VerifyError::SecurityToken { .. }
        );
    }

    #[test]
    fn wss_refuses_a_comment_splitting_signed_text() {
        let s = signer("WSS client");
        let attacked = wss_doc(&s, SOAP11_NAMESPACE, false).replace(">ok<", ">o<!---->k<");
        assert_refused!(
            &attacked,
            &s.trust,
            &wss(),
            VerifyError::UnsignedComment { .. }
        );
    }

    #[test]
    fn a_profile_other_than_wss_refuses_further_parts() {
        let s = signer("Enveloped signer");
        assert_refused!(
            &enveloped_doc(&s),
            &s.trust,
            &Expect::default().also(path("/Doc/Data")),
            VerifyError::ReferenceNotAccepted { .. }
        );
    }
}
