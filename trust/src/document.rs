//! The trust space as the Commission publishes it (DESIGN §5): an XML document, versioned, with
//! an enveloped XMLDSig by the Commission's key. `tereze trust build` writes it from the TOML
//! source, `tereze trust sign` signs it, nodes verify it against the Commission's anchor and
//! read only the signed bytes. The fields are those of the TOML source (docs/protocol.md).
//!
//! ```xml
//! <ts:TrustSpace xmlns:ts="urn:tereze:trust-space" Version="2" IssuedAt="…" MaxClockSkewSeconds="300">
//!   <ts:State Code="KZ" Name="Kazakhstan" Role="member" Partner="false" [Conformance="true"]>
//!     <ts:Process>P.CC.01</ts:Process> <ts:Anchor>PEM</ts:Anchor> <ts:Crl>PEM</ts:Crl>
//!     <ts:CrlLocation>http://…/v1/crl</ts:CrlLocation>
//!     <ts:Node Endpoint="https://…" ServerName="…"><ts:TlsCertificate>PEM</ts:TlsCertificate></ts:Node>
//!   </ts:State>
//!   <ts:Recognition Document="R.CC.01.001" Issuer="KZ" ValidFrom="2026-01-01" ValidTo="">
//!     <ts:RecognisedBy>RU</ts:RecognisedBy>
//!   </ts:Recognition>
//!   <ds:Signature>…</ds:Signature>
//! </ts:TrustSpace>
//! ```

use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey, TrustStore, VerifyPolicy};
use tereze_codecs::xml::{self, Document, Element, NamespaceDecl, NodeId};

use crate::file::{File, FileNode, FileRecognition, FileState};
use crate::Role;

pub const TRUST_NAMESPACE: &str = "urn:tereze:trust-space";

fn ts(local: &str) -> Element {
    Element::new(Some("ts"), local, Some(TRUST_NAMESPACE))
}

fn text_child(doc: &mut Document, parent: NodeId, local: &str, text: &str) {
    let e = doc.append_element(parent, ts(local));
    doc.append_text(e, text);
}

/// The unsigned document for `file`.
pub fn to_document(file: &File) -> Document {
    let mut root = ts("TrustSpace");
    root.namespace_decls.push(NamespaceDecl {
        prefix: Some("ts".into()),
        uri: TRUST_NAMESPACE.into(),
    });
    root.set_attribute("Version", &file.version.to_string());
    root.set_attribute("IssuedAt", &file.issued_at);
    root.set_attribute(
        "MaxClockSkewSeconds",
        &file.max_clock_skew_seconds.to_string(),
    );
    let mut doc = Document::with_root(root);
    let r = doc.root();
    for s in &file.states {
        let mut e = ts("State");
        e.set_attribute("Code", &s.code);
        e.set_attribute("Name", &s.name);
        e.set_attribute("Role", role_name(s.role));
        e.set_attribute("Partner", if s.partner { "true" } else { "false" });
        // Written only when set, so a document without tester states reads the same to nodes
        // that predate the attribute.
        if s.conformance {
            e.set_attribute("Conformance", "true");
        }
        let st = doc.append_element(r, e);
        for p in &s.processes {
            text_child(&mut doc, st, "Process", p);
        }
        for a in &s.anchors {
            text_child(&mut doc, st, "Anchor", a.trim());
        }
        for c in &s.crls {
            text_child(&mut doc, st, "Crl", c.trim());
        }
        for u in &s.crl_urls {
            text_child(&mut doc, st, "CrlLocation", u);
        }
        for n in &s.nodes {
            let mut e = ts("Node");
            e.set_attribute("Endpoint", &n.endpoint);
            e.set_attribute("ServerName", &n.server_name);
            let node = doc.append_element(st, e);
            text_child(&mut doc, node, "TlsCertificate", n.tls_certificate.trim());
        }
    }
    for rule in &file.recognition {
        let mut e = ts("Recognition");
        e.set_attribute("Document", &rule.document);
        e.set_attribute("Issuer", &rule.issuer);
        e.set_attribute("ValidFrom", &rule.valid_from);
        e.set_attribute("ValidTo", &rule.valid_to);
        let row = doc.append_element(r, e);
        for by in &rule.recognised_by {
            text_child(&mut doc, row, "RecognisedBy", by);
        }
    }
    doc
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Member => "member",
        Role::Hub => "hub",
    }
}

/// Signs the document with the Commission's key (enveloped, whole document).
pub fn sign(doc: &mut Document, key: &SigningKey) -> Result<(), dsig::SignError> {
    dsig::sign_enveloped(doc, &SignTarget::Document, key, &SignOptions::default()).map(|_| ())
}

/// Why a signed trust space was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("trust space:{0}")]
    Xml(#[source] xml::ParseError),
    #[error("the Commission's signature does not hold: {0}")]
    Signature(#[source] dsig::VerifyError),
    #[error("the signature signs nothing")]
    SignsNothing,
    #[error("signed content: {0}")]
    SignedContent(#[source] xml::ParseError),
    /// What is wrong with the signed content, as [`from_document`] reads it.
    #[error("{0}")]
    Content(String),
}

/// Verifies a signed trust space against the Commission's anchor and reads it from the signed
/// bytes only; returns it and the signer's subject.
pub fn verify(bytes: &[u8], anchor: &TrustStore) -> Result<(File, String), VerifyError> {
    let doc = xml::parse(bytes).map_err(VerifyError::Xml)?;
    let verified =
        dsig::verify(&doc, anchor, &VerifyPolicy::default()).map_err(VerifyError::Signature)?;
    let signed = verified
        .references
        .first()
        .ok_or(VerifyError::SignsNothing)?
        .document()
        .map_err(VerifyError::SignedContent)?;
    let file = from_document(&signed).map_err(VerifyError::Content)?;
    Ok((file, verified.signer.subject))
}

fn attr(doc: &Document, id: NodeId, name: &str) -> Result<String, String> {
    doc.element(id)
        .and_then(|e| e.attribute(name))
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: missing attribute {name}", doc.path(id)))
}

/// Reads the document (already verified, or freshly built) strictly: unknown elements are
/// refused with their path.
pub fn from_document(doc: &Document) -> Result<File, String> {
    let r = doc.root();
    if !doc
        .element(r)
        .is_some_and(|e| e.is(TRUST_NAMESPACE, "TrustSpace"))
    {
        return Err(format!("{}: not a ts:TrustSpace", doc.path(r)));
    }
    let number = |id: NodeId, name: &str| -> Result<i64, String> {
        let v = attr(doc, id, name)?;
        v.parse()
            .map_err(|_| format!("{}/@{name}: {v:?} is not a number", doc.path(id)))
    };
    let version = number(r, "Version")?;
    let mut file = File {
        version: u64::try_from(version)
            .map_err(|_| format!("{}/@Version: must be positive", doc.path(r)))?,
        issued_at: attr(doc, r, "IssuedAt")?,
        max_clock_skew_seconds: number(r, "MaxClockSkewSeconds")?,
        states: Vec::new(),
        recognition: Vec::new(),
    };
    for child in doc.child_elements(r) {
        let Some(e) = doc.element(child) else {
            continue;
        };
        if e.is(dsig::DSIG_NAMESPACE, "Signature") {
            continue;
        }
        if e.is(TRUST_NAMESPACE, "State") {
            file.states.push(read_state(doc, child)?);
        } else if e.is(TRUST_NAMESPACE, "Recognition") {
            let recognised_by = doc
                .child_elements(child)
                .map(|c| {
                    if doc
                        .element(c)
                        .is_some_and(|x| x.is(TRUST_NAMESPACE, "RecognisedBy"))
                    {
                        Ok(doc.text_content(c).trim().to_owned())
                    } else {
                        Err(format!("{}: unexpected element", doc.path(c)))
                    }
                })
                .collect::<Result<_, _>>()?;
            file.recognition.push(FileRecognition {
                document: attr(doc, child, "Document")?,
                issuer: attr(doc, child, "Issuer")?,
                recognised_by,
                valid_from: attr(doc, child, "ValidFrom")?,
                valid_to: attr(doc, child, "ValidTo")?,
            });
        } else {
            return Err(format!("{}: unexpected element", doc.path(child)));
        }
    }
    Ok(file)
}

fn read_state(doc: &Document, id: NodeId) -> Result<FileState, String> {
    let role = match attr(doc, id, "Role")?.as_str() {
        "member" => Role::Member,
        "hub" => Role::Hub,
        other => {
            return Err(format!(
                "{}/@Role: {other:?} is not member or hub",
                doc.path(id)
            ))
        }
    };
    let flag = |name: &str, value: &str| match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!(
            "{}/@{name}: {other:?} is not true or false",
            doc.path(id)
        )),
    };
    let partner = flag("Partner", &attr(doc, id, "Partner")?)?;
    // Absent in documents written before tester states existed: normal traffic.
    let conformance = match doc.element(id).and_then(|e| e.attribute("Conformance")) {
        Some(v) => flag("Conformance", v)?,
        None => false,
    };
    let mut s = FileState {
        code: attr(doc, id, "Code")?,
        name: attr(doc, id, "Name")?,
        role,
        anchors: Vec::new(),
        crls: Vec::new(),
        crl_urls: Vec::new(),
        nodes: Vec::new(),
        processes: Vec::new(),
        partner,
        conformance,
    };
    for c in doc.child_elements(id) {
        let Some(e) = doc.element(c) else {
            continue;
        };
        let text = || format!("{}\n", doc.text_content(c).trim());
        if e.is(TRUST_NAMESPACE, "Process") {
            s.processes.push(doc.text_content(c).trim().to_owned());
        } else if e.is(TRUST_NAMESPACE, "Anchor") {
            s.anchors.push(text());
        } else if e.is(TRUST_NAMESPACE, "Crl") {
            s.crls.push(text());
        } else if e.is(TRUST_NAMESPACE, "CrlLocation") {
            s.crl_urls.push(doc.text_content(c).trim().to_owned());
        } else if e.is(TRUST_NAMESPACE, "Node") {
            let cert = doc
                .child(c, TRUST_NAMESPACE, "TlsCertificate")
                .ok_or_else(|| format!("{}: missing ts:TlsCertificate", doc.path(c)))?;
            s.nodes.push(FileNode {
                endpoint: attr(doc, c, "Endpoint")?,
                server_name: attr(doc, c, "ServerName")?,
                tls_certificate: format!("{}\n", doc.text_content(cert).trim()),
            });
        } else {
            return Err(format!("{}: unexpected element", doc.path(c)));
        }
    }
    Ok(s)
}
