//! Change sets of the reference directories as their owning authority publishes them
//! (DESIGN §6, docs/reference-data.md): an XML document carrying the change set's TOML text,
//! with an enveloped XMLDSig by the authority's key. `tereze ref publish` signs a draft; nodes
//! verify it against the authority's anchor and read only the signed bytes.
//!
//! ```xml
//! <rd:ChangeSet xmlns:rd="urn:tereze:reference-data" Directory="P.CLS.HS" Number="3"
//!               Authority="EEC" IssuedAt="2026-11-25T10:00:00Z">
//!   <rd:Content MediaType="application/toml">directory = "P.CLS.HS" …</rd:Content>
//!   <ds:Signature>…</ds:Signature>
//! </rd:ChangeSet>
//! ```
//!
//! Who may sign: a directory owned by `EEC` is signed under the Commission's anchor (the one
//! that signs the trust space); one owned by a state (`KZ`) or a state's authority (`KZ:KGD`)
//! under that state's document anchors in the trust space in force, by a certificate not
//! revoked there. The attributes repeat the content's directory, number and authority so a
//! node can route and pick the anchor before parsing the content; after verification they
//! must agree with the signed content.

use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey, TrustStore, VerifyPolicy};
use tereze_codecs::xml::{self, Document, Element, NamespaceDecl};
use tereze_reference_data::ChangeSet;

use crate::TrustSpace;

pub const NAMESPACE: &str = "urn:tereze:reference-data";

/// The authority whose directories the Commission's anchor signs.
pub const COMMISSION: &str = "EEC";

/// Why a signed change set was refused (before it reached the directories).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// What is wrong with the document's content, as read.
    #[error("change set document: {0}")]
    Malformed(String),
    #[error("change set document: {0}")]
    Xml(#[source] xml::ParseError),
    #[error("change set document: signed content: {0}")]
    SignedContent(#[source] xml::ParseError),
    #[error("change set {directory} #{number}: no anchor for authority {authority}: {reason}")]
    UnknownAuthority {
        directory: String,
        number: u64,
        authority: String,
        reason: String,
    },
    #[error(
        "change set {directory} #{number}: the signature of {authority} does not hold: {reason}"
    )]
    Signature {
        directory: String,
        number: u64,
        authority: String,
        reason: String,
    },
    #[error("change set {directory} #{number}: the signer {subject} was revoked at {at}")]
    Revoked {
        directory: String,
        number: u64,
        subject: String,
        at: String,
    },
    /// The signature holds but uses an algorithm the authority's state does not permit (its
    /// trust-space policy).
    #[error("change set {directory} #{number} by {authority}: {source}")]
    AlgorithmNotPermitted {
        directory: String,
        number: u64,
        authority: String,
        /// Boxed: the rare case should not grow every `DocumentError`.
        #[source]
        source: Box<crate::algorithms::NotPermitted>,
    },
}

/// What the root says, before verification: enough to pick the anchor and to route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub directory: String,
    pub number: u64,
    pub authority: String,
}

fn rd(local: &str) -> Element {
    Element::new(Some("rd"), local, Some(NAMESPACE))
}

/// Why a change set could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{0}")]
    Toml(#[source] toml::ser::Error),
    #[error("{0}")]
    Signature(#[source] dsig::SignError),
}

/// The signed document of `set`.
pub fn sign(set: &ChangeSet, key: &SigningKey) -> Result<Vec<u8>, SignError> {
    let content = set.to_toml().map_err(SignError::Toml)?;
    let mut root = rd("ChangeSet");
    root.namespace_decls.push(NamespaceDecl {
        prefix: Some("rd".into()),
        uri: NAMESPACE.into(),
    });
    root.set_attribute("Directory", &set.directory);
    root.set_attribute("Number", &set.number.to_string());
    root.set_attribute("Authority", &set.authority);
    root.set_attribute("IssuedAt", &set.issued_at);
    let mut doc = Document::with_root(root);
    let r = doc.root();
    let mut c = rd("Content");
    c.set_attribute("MediaType", "application/toml");
    let c = doc.append_element(r, c);
    doc.append_text(c, &content);
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        key,
        &SignOptions::default(),
    )
    .map_err(SignError::Signature)?;
    Ok(doc.to_xml().into_bytes())
}

fn header_of(doc: &Document) -> Result<Header, DocumentError> {
    let r = doc.root();
    let e = doc
        .element(r)
        .filter(|e| e.is(NAMESPACE, "ChangeSet"))
        .ok_or_else(|| DocumentError::Malformed(format!("{}: not an rd:ChangeSet", doc.path(r))))?;
    let attr = |name: &str| {
        e.attribute(name)
            .map(str::to_owned)
            .ok_or_else(|| DocumentError::Malformed(format!("rd:ChangeSet: no attribute {name}")))
    };
    let number = attr("Number")?;
    Ok(Header {
        directory: attr("Directory")?,
        number: number.parse().map_err(|_| {
            DocumentError::Malformed(format!("rd:ChangeSet/@Number {number:?} is not a number"))
        })?,
        authority: attr("Authority")?,
    })
}

/// The change set inside a document, with no signature check: for sets this node verified
/// before it stored them, and for showing a document.
pub fn read_unverified(bytes: &[u8]) -> Result<(Header, ChangeSet), DocumentError> {
    let doc = xml::parse(bytes).map_err(DocumentError::Xml)?;
    content(&doc)
}

fn content(doc: &Document) -> Result<(Header, ChangeSet), DocumentError> {
    let header = header_of(doc)?;
    let c = doc
        .child(doc.root(), NAMESPACE, "Content")
        .ok_or_else(|| DocumentError::Malformed("rd:ChangeSet: no rd:Content".into()))?;
    let media = doc.element(c).and_then(|e| e.attribute("MediaType"));
    if media != Some("application/toml") {
        return Err(DocumentError::Malformed(format!(
            "rd:Content: MediaType {media:?} is not \"application/toml\""
        )));
    }
    let set = ChangeSet::from_toml(&doc.text_content(c))
        .map_err(|e| DocumentError::Malformed(format!("rd:Content: {e}")))?;
    if set.directory != header.directory
        || set.number != header.number
        || set.authority != header.authority
    {
        return Err(DocumentError::Malformed(format!(
            "the attributes say {} #{} by {}, the content {} #{} by {}",
            header.directory,
            header.number,
            header.authority,
            set.directory,
            set.number,
            set.authority
        )));
    }
    Ok((header, set))
}

/// Reads only the header (routing, picking the anchor): not a verdict on anything.
pub fn peek(bytes: &[u8]) -> Result<Header, DocumentError> {
    let doc = xml::parse(bytes).map_err(DocumentError::Xml)?;
    header_of(&doc)
}

/// Verifies a signed change set against its authority's anchor (module docs) and reads it from
/// the signed bytes only. Returns the set and the signer's subject.
pub fn verify(
    bytes: &[u8],
    trust: &TrustSpace,
    commission: Option<&TrustStore>,
) -> Result<(ChangeSet, String), DocumentError> {
    let doc = xml::parse(bytes).map_err(DocumentError::Xml)?;
    let claimed = header_of(&doc)?;
    let unknown = |reason: String| DocumentError::UnknownAuthority {
        directory: claimed.directory.clone(),
        number: claimed.number,
        authority: claimed.authority.clone(),
        reason,
    };
    let state_code = claimed
        .authority
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let (anchors, state) = if claimed.authority == COMMISSION {
        let a = commission.ok_or_else(|| {
            unknown("this node has no Commission anchor (trust_anchor) configured".into())
        })?;
        (a, None)
    } else {
        let s = trust.state(&state_code).ok_or_else(|| {
            unknown(format!(
                "{state_code} is not a state of trust space v{}",
                trust.version
            ))
        })?;
        (&s.documents, Some(s))
    };
    let verified = dsig::verify(&doc, anchors, &VerifyPolicy::default()).map_err(|e| {
        DocumentError::Signature {
            directory: claimed.directory.clone(),
            number: claimed.number,
            authority: claimed.authority.clone(),
            reason: e.to_string(),
        }
    })?;
    // A Commission set has no state, so no policy: the node's defaults judge it.
    if let Some(policy) = state.and_then(|s| s.algorithms.as_ref()) {
        policy
            .judge(&verified)
            .map_err(|source| DocumentError::AlgorithmNotPermitted {
                directory: claimed.directory.clone(),
                number: claimed.number,
                authority: claimed.authority.clone(),
                source: Box::new(source),
            })?;
    }
    if let (Some(state), Some(cert)) = (state, verified.signer.certificate.as_ref()) {
        if let Some(when) = state.revoked_at(cert) {
            return Err(DocumentError::Revoked {
                directory: claimed.directory,
                number: claimed.number,
                subject: verified.signer.subject,
                at: when.to_rfc3339(),
            });
        }
    }
    let signed = verified
        .references
        .first()
        .ok_or_else(|| DocumentError::Malformed("the signature signs nothing".into()))?
        .document()
        .map_err(DocumentError::SignedContent)?;
    let (header, set) = content(&signed)?;
    if header != claimed {
        return Err(DocumentError::Malformed(
            "the signed attributes differ from the document's".into(),
        ));
    }
    Ok((set, verified.signer.subject))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devpki::fixture::DevPki;

    #[test]
    fn a_set_signed_with_an_algorithm_its_state_does_not_permit_is_refused() {
        let pki = DevPki::kz_ru(20950, &[]);
        let mut trust = pki.trust.clone();
        let kz = pki.signer("kz");
        let set = ChangeSet {
            directory: "P.CLS.KZ.TEST".into(),
            number: 1,
            authority: "KZ:KGD".into(),
            issued_at: "2026-11-25T00:00:00Z".into(),
            define: None,
            operations: Vec::new(),
        };
        let signed = sign(&set, &kz).expect("signs");
        verify(&signed, &trust, None).expect("no policy: verifies");
        let policy = crate::algorithms::AlgorithmPolicy::read(&crate::FileAlgorithms {
            min_ec_bits: Some(384),
            ..crate::FileAlgorithms::default()
        })
        .expect("policy");
        trust.states.get_mut("KZ").expect("KZ").algorithms = Some(policy);
        let e = verify(&signed, &trust, None).expect_err("a P-256 key under KZ's minimum");
        assert!(
            matches!(e, DocumentError::AlgorithmNotPermitted { .. }),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "change set P.CLS.KZ.TEST #1 by KZ:KGD: EC key of 256 bits is under the minimum of \
             384 bits"
        );
    }
}
