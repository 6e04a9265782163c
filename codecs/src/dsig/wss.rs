//! The SOAP and WS-Security structure the `wss` profile reads (OASIS Web Services Security:
//! SOAP Message Security 1.1, and its X.509 Certificate Token Profile 1.1): the envelope's one
//! `Body`, the `wsse:Security` headers, their `wsu:Timestamp`, and the certificate a
//! `wsse:SecurityTokenReference` names in a `wsse:BinarySecurityToken`.
//!
//! Guarantee: a message with two `Body` or two `Header` elements, or a token outside the
//! signature's own `Security` header, is refused rather than read one way or the other.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::verify::VerifyError;
use crate::xml::{Document, NodeId, WSU_NAMESPACE};

/// SOAP 1.1's envelope namespace.
pub const SOAP11_NAMESPACE: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.2's envelope namespace.
pub const SOAP12_NAMESPACE: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Security 1.0/1.1 `wsse` namespace (`Security`, `BinarySecurityToken`, …).
pub const WSSE_NAMESPACE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// `ValueType` of an X.509 v3 certificate token (X.509 Token Profile).
pub const X509V3_TOKEN: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
/// `EncodingType` of a base64 token (SOAP Message Security), the default when absent.
pub const BASE64_ENCODING: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// The parts of a SOAP message the profile reads.
#[derive(Debug, Clone, Copy)]
pub(super) struct Soap {
    pub header: Option<NodeId>,
    pub body: NodeId,
}

fn not_soap(reason: impl Into<String>) -> VerifyError {
    VerifyError::NotSoap {
        reason: reason.into(),
    }
}

/// Reads the envelope: the document element must be a SOAP 1.1 or 1.2 `Envelope` with
/// exactly one `Body` and at most one `Header`.
pub(super) fn soap(doc: &Document) -> Result<Soap, VerifyError> {
    let root = doc
        .element(doc.root())
        .ok_or_else(|| not_soap("no document element"))?;
    let namespace = [SOAP11_NAMESPACE, SOAP12_NAMESPACE]
        .into_iter()
        .find(|ns| root.is(ns, "Envelope"))
        .ok_or_else(|| {
            not_soap(format!(
                "the document element is {} in namespace {:?}, not a SOAP Envelope",
                root.name,
                root.namespace.as_deref().unwrap_or("")
            ))
        })?;
    let named = |local: &str| -> Vec<NodeId> {
        doc.child_elements(doc.root())
            .filter(|c| doc.element(*c).is_some_and(|e| e.is(namespace, local)))
            .collect()
    };
    let bodies = named("Body");
    let headers = named("Header");
    let body = match bodies.as_slice() {
        [one] => *one,
        [] => return Err(not_soap("the Envelope has no Body")),
        many => {
            return Err(not_soap(format!(
                "the Envelope has {} Body elements ({})",
                many.len(),
                describe_all(doc, many)
            )))
        }
    };
    let header = match headers.as_slice() {
        [] => None,
        [one] => Some(*one),
        many => {
            return Err(not_soap(format!(
                "the Envelope has {} Header elements ({})",
                many.len(),
                describe_all(doc, many)
            )))
        }
    };
    Ok(Soap { header, body })
}

fn describe_all(doc: &Document, nodes: &[NodeId]) -> String {
    nodes
        .iter()
        .map(|n| doc.describe(*n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `wsse:Security` header holding `sig` as a child, if that is where it sits.
pub(super) fn security_of(doc: &Document, soap: &Soap, sig: NodeId) -> Option<NodeId> {
    let security = doc.parent(sig)?;
    let is_security = doc
        .element(security)
        .is_some_and(|e| e.is(WSSE_NAMESPACE, "Security"));
    (is_security && soap.header.is_some() && doc.parent(security) == soap.header)
        .then_some(security)
}

/// The `wsu:Timestamp` children of a `Security` header (a header has at most one; two are
/// returned so the caller can refuse them).
pub(super) fn timestamps(doc: &Document, security: NodeId) -> Vec<NodeId> {
    doc.child_elements(security)
        .filter(|c| {
            doc.element(*c)
                .is_some_and(|e| e.is(WSU_NAMESPACE, "Timestamp"))
        })
        .collect()
}

/// The certificate `KeyInfo` names through `wsse:SecurityTokenReference/wsse:Reference`,
/// DER-encoded; `None` when `KeyInfo` holds no token reference (then `X509Data` is read).
/// The token must be a `wsse:BinarySecurityToken` of type X.509 v3, base64, in the same
/// `Security` header as the signature: a token elsewhere is not part of the security header
/// the signature belongs to.
pub(super) fn token_certificate(
    doc: &Document,
    sig: NodeId,
    key_info: NodeId,
    ids: &HashMap<String, NodeId>,
) -> Result<Option<Vec<u8>>, VerifyError> {
    let Some(str_node) = doc.child(key_info, WSSE_NAMESPACE, "SecurityTokenReference") else {
        return Ok(None);
    };
    let fail = |at: NodeId, reason: String| VerifyError::SecurityToken {
        at: doc.describe(at),
        reason,
    };
    let reference = doc
        .child(str_node, WSSE_NAMESPACE, "Reference")
        .ok_or_else(|| {
            let found = doc
                .child_elements(str_node)
                .filter_map(|c| doc.element(c).map(|e| e.name.to_string()))
                .collect::<Vec<_>>()
                .join(", ");
            fail(
                str_node,
                format!(
                    "only a direct wsse:Reference to a BinarySecurityToken is accepted, found [{found}]"
                ),
            )
        })?;
    let element = doc
        .element(reference)
        .ok_or_else(|| fail(reference, "not an element".into()))?;
    let uri = element.attribute("URI").unwrap_or("");
    let id = uri
        .strip_prefix('#')
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            fail(
                reference,
                format!("URI {uri:?} is not a same-document \"#id\" reference"),
            )
        })?;
    if let Some(value_type) = element.attribute("ValueType") {
        if value_type != X509V3_TOKEN {
            return Err(fail(
                reference,
                format!("ValueType {value_type:?} is not an X.509 v3 token ({X509V3_TOKEN})"),
            ));
        }
    }
    let token = *ids
        .get(id)
        .ok_or_else(|| fail(reference, format!("no element has the identifier {id:?}")))?;
    let token_element = doc
        .element(token)
        .filter(|e| e.is(WSSE_NAMESPACE, "BinarySecurityToken"))
        .ok_or_else(|| {
            fail(
                reference,
                format!(
                    "{uri} names {}, not a wsse:BinarySecurityToken",
                    doc.describe(token)
                ),
            )
        })?;
    if doc.parent(token) != doc.parent(sig) {
        return Err(fail(
            reference,
            format!(
                "the token {} is not in the signature's own Security header",
                doc.describe(token)
            ),
        ));
    }
    if token_element.attribute("ValueType") != Some(X509V3_TOKEN) {
        return Err(fail(
            token,
            format!("the token's ValueType is not {X509V3_TOKEN}"),
        ));
    }
    if let Some(encoding) = token_element.attribute("EncodingType") {
        if encoding != BASE64_ENCODING {
            return Err(fail(
                token,
                format!("EncodingType {encoding:?} is not {BASE64_ENCODING}"),
            ));
        }
    }
    let text: String = doc
        .text_content(token)
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r'))
        .collect();
    let der = BASE64
        .decode(text.as_bytes())
        .map_err(|e| fail(token, format!("invalid base64: {e}")))?;
    if der.is_empty() {
        return Err(fail(token, "empty token".into()));
    }
    Ok(Some(der))
}
