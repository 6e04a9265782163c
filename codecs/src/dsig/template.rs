//! Test support: fills signature templates (a `ds:Signature` with empty `DigestValue` and
//! `SignatureValue`) as `xmlsec1 --sign` does, so unit tests can build detached, WS-Security
//! and several-signature documents that `sign_enveloped` does not write. Templates use
//! exclusive C14N and SHA-256; a reference whose transforms include enveloped-signature or one
//! of the XPath idioms excludes its own signature.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::algorithm::{Algorithms, DigestMethod, RsaPadding};
use super::keys::SigningKey;
use super::{DSIG_NAMESPACE, ENVELOPED_SIGNATURE};
use crate::c14n::{self, C14nOptions, NodeSet};
use crate::xml::{Document, NodeId};

/// Fills the signatures of `xml` with `keys[i]` for the i-th `ds:Signature` in document order,
/// in the order `order` gives (inner signatures before the ones that sign them).
pub(crate) fn fill(xml: &str, keys: &[&SigningKey], order: &[usize]) -> String {
    let mut doc = crate::xml::parse(xml.as_bytes()).expect("template parses");
    let sigs: Vec<NodeId> = doc
        .descendants_or_self(doc.root())
        .into_iter()
        .filter(|n| {
            doc.element(*n)
                .is_some_and(|e| e.is(DSIG_NAMESPACE, "Signature"))
        })
        .collect();
    for &i in order {
        fill_one(&mut doc, sigs[i], keys[i]);
    }
    doc.to_xml()
}

fn fill_one(doc: &mut Document, sig: NodeId, key: &SigningKey) {
    let signed_info = doc
        .child(sig, DSIG_NAMESPACE, "SignedInfo")
        .expect("SignedInfo");
    let references: Vec<NodeId> = doc
        .child_elements(signed_info)
        .filter(|r| {
            doc.element(*r)
                .is_some_and(|e| e.is(DSIG_NAMESPACE, "Reference"))
        })
        .collect();
    let ids = doc.id_index().expect("unique ids");
    for r in references {
        let uri = doc
            .element(r)
            .and_then(|e| e.attribute("URI"))
            .expect("URI")
            .to_owned();
        let excludes = doc
            .child(r, DSIG_NAMESPACE, "Transforms")
            .map(|t| {
                doc.child_elements(t).any(|tr| {
                    let alg = doc
                        .element(tr)
                        .and_then(|e| e.attribute("Algorithm"))
                        .unwrap_or("");
                    alg == ENVELOPED_SIGNATURE
                        || alg == super::xpath::XPATH_TRANSFORM
                        || alg == super::xpath::XPATH_FILTER2
                })
            })
            .unwrap_or(false);
        let mut nodes = if uri.is_empty() {
            NodeSet::document()
        } else {
            NodeSet::subtree(ids[uri.trim_start_matches('#')])
        };
        if excludes {
            nodes = nodes.excluding(sig);
        }
        let bytes = c14n::canonicalize(doc, nodes, &C14nOptions::exclusive());
        let value = DigestMethod::SHA256.digest(&bytes).expect("digest");
        let dv = doc
            .child(r, DSIG_NAMESPACE, "DigestValue")
            .expect("DigestValue");
        doc.set_text(dv, &BASE64.encode(value));
    }
    let scheme = Algorithms::default()
        .for_key(
            key.public_key(),
            DigestMethod::SHA256,
            RsaPadding::default(),
        )
        .expect("scheme");
    let method = doc
        .child(signed_info, DSIG_NAMESPACE, "SignatureMethod")
        .expect("SignatureMethod");
    doc.element_mut(method)
        .expect("element")
        .set_attribute("Algorithm", scheme.uri());
    let info = c14n::canonicalize(
        doc,
        NodeSet::subtree(signed_info),
        &C14nOptions::exclusive(),
    );
    let value = key.sign_with(scheme.as_ref(), &info).expect("signs");
    let sv = doc
        .child(sig, DSIG_NAMESPACE, "SignatureValue")
        .expect("SignatureValue");
    doc.set_text(sv, &BASE64.encode(value));
}

/// A `ds:Signature` template (prefix `ds`, declared on it) with one reference per
/// `(uri, transforms)`; `transforms` is the inner XML of `ds:Transforms` before the exclusive
/// C14N transform, e.g. [`ENVELOPED`]. `key_info` is the inner XML of `ds:KeyInfo`.
pub(crate) fn signature(refs: &[(&str, &str)], key_info: &str) -> String {
    let references: String = refs
        .iter()
        .map(|(uri, transforms)| {
            format!(
                r#"<ds:Reference URI="{uri}"><ds:Transforms>{transforms}<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference>"#
            )
        })
        .collect();
    format!(
        r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm=""/>{references}</ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo>{key_info}</ds:KeyInfo></ds:Signature>"#
    )
}

/// The enveloped-signature transform, as template XML.
pub(crate) const ENVELOPED: &str =
    r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#;

/// `KeyInfo` content carrying `key`'s certificate.
pub(crate) fn x509_data(key: &SigningKey) -> String {
    let der = key
        .certificate()
        .expect("certificate")
        .to_der()
        .expect("der");
    format!(
        "<ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data>",
        BASE64.encode(der)
    )
}
