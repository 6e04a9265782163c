//! The XPath transforms accepted, recognised by their exact form, each meaning "remove this
//! signature" like the enveloped-signature transform. There is no XPath engine: any other
//! expression, axis, prefix binding or filter is not recognised and the verifier refuses it.
//!
//! - XPath filtering (XMLDSig §6.6.3) with `not(ancestor-or-self::P:Signature)`: keeps every
//!   node outside any `Signature` element. Older toolkits (and GOST ones) write it for
//!   "enveloped"; it equals the enveloped-signature transform when the signature is the only
//!   one in what is signed, which the verifier checks.
//! - XPath Filter 2.0 (W3C REC xmldsig-filter2, 2002) with one `XPath Filter="subtract"`
//!   whose expression is `here()/ancestor::P:Signature[1]`: subtracts the subtree of the
//!   signature holding the transform, exactly the enveloped-signature transform. This is the
//!   form xmlsec and Apache Santuario write.
//!
//! In both, `P` is any prefix bound to the XMLDSig namespace where the expression is written.

use super::DSIG_NAMESPACE;
use crate::xml::{Document, NodeId, NodeKind};

/// The XPath filtering transform (XMLDSig §6.6.3).
pub(super) const XPATH_TRANSFORM: &str = "http://www.w3.org/TR/1999/REC-xpath-19991116";
/// XPath Filter 2.0, its transform URI and its element's namespace.
pub(super) const XPATH_FILTER2: &str = "http://www.w3.org/2002/06/xmldsig-filter2";

/// Which recognised form a transform is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Idiom {
    /// `not(ancestor-or-self::P:Signature)` (XPath filtering).
    NotAncestorOrSelfSignature,
    /// `here()/ancestor::P:Signature[1]`, `Filter="subtract"` (XPath Filter 2.0).
    SubtractOwnSignature,
}

/// Recognises transform `tr` (algorithm `alg`) of the canonical `SignedInfo` `info`;
/// `namespace_at(node, prefix)` says what `prefix` is bound to at `node`.
pub(super) fn recognise(
    info: &Document,
    tr: NodeId,
    alg: &str,
    namespace_at: &dyn Fn(NodeId, &str) -> Option<String>,
) -> Option<Idiom> {
    let (namespace, expression_of): (&str, fn(&str) -> Option<&str>) = match alg {
        XPATH_TRANSFORM => (DSIG_NAMESPACE, |e| {
            e.strip_prefix("not(ancestor-or-self::")?
                .strip_suffix(":Signature)")
        }),
        XPATH_FILTER2 => (XPATH_FILTER2, |e| {
            e.strip_prefix("here()/ancestor::")?
                .strip_suffix(":Signature[1]")
        }),
        _ => return None,
    };
    let xpath = only_child_element(info, tr)?;
    let element = info.element(xpath)?;
    if !element.is(namespace, "XPath") || info.child_elements(xpath).next().is_some() {
        return None;
    }
    if alg == XPATH_FILTER2 {
        // Exactly the one `Filter` attribute, and it subtracts.
        if element.attributes.len() != 1 || element.attribute("Filter") != Some("subtract") {
            return None;
        }
    } else if !element.attributes.is_empty() {
        return None;
    }
    let text = info.text_content(xpath);
    let prefix = expression_of(text.trim())?;
    if !is_ncname(prefix) {
        return None;
    }
    (namespace_at(xpath, prefix).as_deref() == Some(DSIG_NAMESPACE)).then_some(
        if alg == XPATH_FILTER2 {
            Idiom::SubtractOwnSignature
        } else {
            Idiom::NotAncestorOrSelfSignature
        },
    )
}

/// The one child element of `tr`, with nothing but whitespace beside it.
fn only_child_element(info: &Document, tr: NodeId) -> Option<NodeId> {
    let children: Vec<NodeId> = info
        .children(tr)
        .iter()
        .copied()
        .filter(|n| !matches!(info.kind(*n), NodeKind::Text(t) if t.trim().is_empty()))
        .collect();
    match children.as_slice() {
        [one] if info.element(*one).is_some() => Some(*one),
        _ => None,
    }
}

/// A prefix as XML names allow it, kept to what real documents use: ASCII letters, digits,
/// `_`, `-` and `.`, not starting with a digit, `-` or `.`.
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recognised(transform: &str) -> Option<Idiom> {
        let doc = crate::xml::parse(transform.as_bytes()).expect("parses");
        let alg = doc
            .element(doc.root())
            .and_then(|e| e.attribute("Algorithm"))
            .expect("Algorithm")
            .to_owned();
        recognise(&doc, doc.root(), &alg, &|node, prefix| {
            doc.in_scope_namespaces(node).get(prefix).cloned()
        })
    }

    const DS: &str = r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#""#;

    #[test]
    fn the_xpath_idiom_is_recognised_with_any_prefix_bound_to_xmldsig() {
        for prefix in ["ds", "dsig", "sig-1"] {
            let bind = if prefix == "ds" {
                String::new()
            } else {
                format!(r#"xmlns:{prefix}="http://www.w3.org/2000/09/xmldsig#""#)
            };
            let t = format!(
                r#"<ds:Transform {DS} Algorithm="{XPATH_TRANSFORM}"><ds:XPath {bind}> not(ancestor-or-self::{prefix}:Signature) </ds:XPath></ds:Transform>"#
            );
            assert_eq!(
                recognised(&t),
                Some(Idiom::NotAncestorOrSelfSignature),
                "{t}"
            );
        }
    }

    #[test]
    fn other_xpath_expressions_and_bindings_are_not_recognised() {
        let xpath = |body: &str| {
            format!(r#"<ds:Transform {DS} Algorithm="{XPATH_TRANSFORM}">{body}</ds:Transform>"#)
        };
        for t in [
            xpath("<ds:XPath>not(ancestor-or-self::ds:Object)</ds:XPath>"),
            xpath("<ds:XPath>not(ancestor-or-self::ds:Signature) or true()</ds:XPath>"),
            xpath("<ds:XPath>not(ancestor-or-self::x:Signature)</ds:XPath>"),
            xpath(r#"<ds:XPath xmlns:x="urn:x">not(ancestor-or-self::x:Signature)</ds:XPath>"#),
            xpath("<ds:XPath>not( ancestor-or-self::ds:Signature)</ds:XPath>"),
            xpath("<ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath><ds:XPath>1</ds:XPath>"),
            xpath("text<ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath>"),
            xpath("<XPath>not(ancestor-or-self::ds:Signature)</XPath>"),
            // The Filter 2.0 expression under the XPath filtering transform.
            xpath("<ds:XPath>here()/ancestor::ds:Signature[1]</ds:XPath>"),
        ] {
            assert_eq!(recognised(&t), None, "{t}");
        }
    }

    #[test]
    fn filter2_subtract_of_the_own_signature_is_recognised_and_nothing_else() {
        let f2 = |attrs: &str, expr: &str| {
            format!(
                r#"<ds:Transform {DS} Algorithm="{XPATH_FILTER2}"><f:XPath xmlns:f="{XPATH_FILTER2}" {attrs}>{expr}</f:XPath></ds:Transform>"#
            )
        };
        assert_eq!(
            recognised(&f2(
                r#"Filter="subtract""#,
                "here()/ancestor::ds:Signature[1]"
            )),
            Some(Idiom::SubtractOwnSignature)
        );
        for t in [
            f2(r#"Filter="intersect""#, "here()/ancestor::ds:Signature[1]"),
            f2(r#"Filter="union""#, "here()/ancestor::ds:Signature[1]"),
            f2("", "here()/ancestor::ds:Signature[1]"),
            f2(
                r#"Filter="subtract" Other="x""#,
                "here()/ancestor::ds:Signature[1]",
            ),
            f2(r#"Filter="subtract""#, "here()/ancestor::ds:Signature[2]"),
            f2(r#"Filter="subtract""#, "//ds:Signature"),
            f2(r#"Filter="subtract""#, "here()/ancestor::q:Signature[1]"),
        ] {
            assert_eq!(recognised(&t), None, "{t}");
        }
    }

    /// A document signed (by the template filler) with `transforms` before exclusive C14N.
    fn signed_with(transforms: &str) -> (String, crate::dsig::TrustStore) {
        use crate::dsig::template::{fill, signature, x509_data};
        let (key, cert) =
            crate::pki::self_signed_signer(crate::pki::KeyKind::EcP256, "XPath signer", 30)
                .expect("signer");
        let mut trust = crate::dsig::TrustStore::new();
        trust.add_certificate(cert);
        let tmpl = format!(
            "<Doc><Data>ok</Data>{}</Doc>",
            signature(&[("", transforms)], &x509_data(&key))
        );
        (fill(&tmpl, &[&key], &[0]), trust)
    }

    #[test]
    fn each_accepted_form_verifies_as_the_enveloped_signature_transform() {
        use crate::dsig::template::ENVELOPED;
        use crate::dsig::{verify, verify_profile, Expect, VerifyPolicy};
        let idiom = format!(
            r#"<ds:Transform Algorithm="{XPATH_TRANSFORM}"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>"#
        );
        let filter2 = format!(
            r#"<ds:Transform Algorithm="{XPATH_FILTER2}"><dsig-xpath:XPath xmlns:dsig-xpath="{XPATH_FILTER2}" Filter="subtract">here()/ancestor::ds:Signature[1]</dsig-xpath:XPath></ds:Transform>"#
        );
        // Exclusive C14N drops a declaration only the expression uses: the binding is then
        // read where the document writes it.
        let own_binding = format!(
            r#"<ds:Transform Algorithm="{XPATH_TRANSFORM}"><ds:XPath xmlns:dsig="{DSIG_NAMESPACE}">not(ancestor-or-self::dsig:Signature)</ds:XPath></ds:Transform>"#
        );
        for transforms in [
            idiom.clone(),
            format!("{ENVELOPED}{idiom}"),
            own_binding,
            filter2.clone(),
            format!("{ENVELOPED}{filter2}"),
        ] {
            let (xml, trust) = signed_with(&transforms);
            let doc = crate::xml::parse(xml.as_bytes()).expect("parses");
            let v = verify(&doc, &trust, &VerifyPolicy::default())
                .unwrap_or_else(|e| panic!("{transforms}: {e}"));
            assert_eq!(v.references[0].canonical, b"<Doc><Data>ok</Data></Doc>");
            let signed = verify_profile(&doc, &trust, &VerifyPolicy::default(), &Expect::default())
                .unwrap_or_else(|e| panic!("{transforms}: {e}"));
            assert_eq!(signed.canonical, b"<Doc><Data>ok</Data></Doc>");
        }
        // Twice, or both idioms: refused, naming the transform.
        for transforms in [format!("{idiom}{idiom}"), format!("{idiom}{filter2}")] {
            let (xml, trust) = signed_with(&transforms);
            let doc = crate::xml::parse(xml.as_bytes()).expect("parses");
            match verify(&doc, &trust, &VerifyPolicy::default()) {
                Err(crate::dsig::VerifyError::UnsupportedTransform(_)) => {}
                other => panic!("{transforms}: expected UnsupportedTransform, got {other:?}"),
            }
        }
    }
}
