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
//! allows. Signatures elsewhere in the document are neither checked nor trusted here.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::keys::TrustStore;
use super::path::ElementPath;
use super::verify::{
    check_signature, claimed_targets, enclosing_object, require_parent, signatures_of, Placement,
    Target, Verified, VerifyError, VerifyPolicy,
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
pub fn verify_profile(
    doc: &Document,
    trust: &TrustStore,
    policy: &VerifyPolicy,
    expect: &Expect,
) -> Result<SignedElement, VerifyError> {
    let profile = expect.profile;
    if !expect.also.is_empty() && profile != Profile::Wss {
        return Err(VerifyError::ReferenceNotAccepted {
            uri: String::new(),
            target: expect
                .also
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            profile: profile.to_string(),
            reason: "only wss signs further parts; name one element".into(),
        });
    }
    let ids = doc.id_index()?;
    let soap = match profile {
        Profile::Wss => Some(wss::soap(doc)?),
        _ => None,
    };
    let element = match (&expect.element, profile, &soap) {
        (Some(path), _, _) => path.resolve(doc).map_err(VerifyError::Element)?,
        (None, Profile::Enveloped, _) => doc.root(),
        (None, Profile::Wss, Some(soap)) => soap.body,
        (None, _, _) => {
            return Err(VerifyError::ElementRequired {
                profile: profile.to_string(),
            })
        }
    };
    refuse_wrapped(doc, element, "the element that must be signed")?;
    let also = expect
        .also
        .iter()
        .map(|p| p.resolve(doc).map_err(VerifyError::Element))
        .collect::<Result<Vec<_>, _>>()?;

    let all = signatures_of(doc);
    if all.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let candidates: Vec<NodeId> = all
        .iter()
        .copied()
        .filter(|s| match (profile, &soap) {
            (Profile::Enveloped, _) => doc.parent(*s) == Some(element),
            (Profile::Wss, Some(soap)) => {
                wss::security_of(doc, soap, *s).is_some() && claims(doc, *s, &ids, element)
            }
            _ => claims(doc, *s, &ids, element),
        })
        .collect();
    let sig = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Err(VerifyError::NotCovered {
                path: doc.describe(element),
                profile: profile.to_string(),
                signatures: summary(doc, &all, &ids),
            })
        }
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
    refuse_wrapped(doc, sig, "the signature")?;
    let rules = Rules {
        profile,
        element: Some(element),
        also,
        soap,
    };
    let checked = check_signature(doc, sig, &ids, trust, policy, &rules)?;
    let index = checked
        .targets
        .iter()
        .position(|t| *t == element)
        .ok_or_else(|| VerifyError::NotCovered {
            path: doc.describe(element),
            profile: profile.to_string(),
            signatures: summary(doc, &all, &ids),
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
pub(super) fn summary(
    doc: &Document,
    signatures: &[NodeId],
    ids: &HashMap<String, NodeId>,
) -> String {
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
        if doc.is_ancestor_or_self(t.node, sig) && !t.excludes_signature {
            return Err(self.refuse(
                doc,
                t,
                "it holds the signature (an ancestor of it) and the reference has no enveloped-signature transform",
            ));
        }
        Ok(())
    }

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
        let security = wss::security_of(doc, &soap, sig).ok_or_else(|| {
            self.misplaced(
                doc,
                sig,
                "a WS-Security signature is a child of soap:Header/wsse:Security",
            )
        })?;
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
        let mut covers_element = false;
        for t in targets {
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
            if t.node == element {
                covers_element = true;
            } else if !timestamps.contains(&t.node) && !self.also.contains(&t.node) {
                return Err(self.refuse(
                    doc,
                    t,
                    format!(
                        "accepted are {}, the Security header's wsu:Timestamp and the parts the caller lists",
                        doc.path(element)
                    ),
                ));
            }
        }
        if !covers_element {
            return Err(VerifyError::NotCovered {
                path: doc.describe(element),
                profile: self.profile.to_string(),
                signatures: format!("the signature at {} does not sign it", doc.describe(sig)),
            });
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
