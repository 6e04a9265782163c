//! The trust space as the Commission publishes it (DESIGN §5): an XML document, versioned, with
//! an enveloped XMLDSig by the Commission's key. `tereze trust build` writes it from the TOML
//! source, `tereze trust sign` signs it, nodes verify it against the Commission's anchor and
//! read only the signed bytes. The fields are those of the TOML source (docs/protocol.md).
//!
//! ```xml
//! <ts:TrustSpace xmlns:ts="urn:tereze:trust-space" Version="2" IssuedAt="…" MaxClockSkewSeconds="300">
//!   <ts:State Code="KZ" Name="Kazakhstan" Role="member" Partner="false" [Conformance="true"] [TimestampRequired="true"]>
//!     <ts:Process>P.CC.01</ts:Process> <ts:Anchor>PEM</ts:Anchor> <ts:Crl>PEM</ts:Crl>
//!     <ts:CrlLocation>http://…/v1/crl</ts:CrlLocation>
//!     [<ts:Algorithms [MinRsaBits="3072"] [MinEcBits="256"]>
//!        <ts:SignatureMethod Algorithm="URI"/>… <ts:DigestMethod Algorithm="URI"/>…
//!      </ts:Algorithms>]
//!     [<ts:TimestampAuthority Url="http://…"><ts:Certificate>PEM</ts:Certificate>…</ts:TimestampAuthority>]…
//!     [<ts:NationalSignature Document="R.SF.01.001" Required="true"/>]…
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

use crate::algorithms::AlgorithmPolicy;
use crate::file::{
    File, FileAlgorithms, FileNationalSignature, FileNode, FileRecognition, FileState,
    FileTimestampAuthority,
};
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
        // Likewise: absent means tokens are not required.
        if s.timestamp_required {
            e.set_attribute("TimestampRequired", "true");
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
        // Written only when set: a document without it (every one before policies existed)
        // means the verifier's defaults.
        if let Some(a) = &s.algorithms {
            write_algorithms(&mut doc, st, a);
        }
        // Written only when listed: older documents have none, which means none.
        for a in &s.timestamp_authorities {
            let mut e = ts("TimestampAuthority");
            e.set_attribute("Url", &a.url);
            let t = doc.append_element(st, e);
            for pem in split_pem(&a.certificates) {
                text_child(&mut doc, t, "Certificate", &pem);
            }
        }
        // Written only when listed: older documents have none, which means none required.
        for n in &s.national_signatures {
            let mut e = ts("NationalSignature");
            e.set_attribute("Document", &n.document);
            e.set_attribute("Required", if n.required { "true" } else { "false" });
            doc.append_element(st, e);
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

/// Each PEM block of `pem` on its own (one `ts:Certificate` each); text that is no PEM
/// block is kept whole, for the reader to refuse.
fn split_pem(pem: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem.trim();
    while let Some(i) = rest.find(END) {
        out.push(rest[..i + END.len()].trim().to_owned());
        rest = rest[i + END.len()..].trim();
    }
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// `ts:Algorithms`, with URIs: names are resolved so that a reader needs no name table. An
/// entry that names nothing known is written as it is, for the reader to refuse.
fn write_algorithms(doc: &mut Document, state: NodeId, written: &FileAlgorithms) {
    let a = AlgorithmPolicy::read(written).map_or_else(|_| written.clone(), |p| p.to_file());
    let mut e = ts("Algorithms");
    if let Some(b) = a.min_rsa_bits {
        e.set_attribute("MinRsaBits", &b.to_string());
    }
    if let Some(b) = a.min_ec_bits {
        e.set_attribute("MinEcBits", &b.to_string());
    }
    let id = doc.append_element(state, e);
    for (local, list) in [
        ("SignatureMethod", &a.signature),
        ("DigestMethod", &a.digest),
    ] {
        for uri in list.iter().flatten() {
            let mut m = ts(local);
            m.set_attribute("Algorithm", uri);
            doc.append_element(id, m);
        }
    }
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
    // Absent in documents written before time-stamping authorities existed: not required.
    let timestamp_required = match doc
        .element(id)
        .and_then(|e| e.attribute("TimestampRequired"))
    {
        Some(v) => flag("TimestampRequired", v)?,
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
        algorithms: None,
        timestamp_authorities: Vec::new(),
        timestamp_required,
        national_signatures: Vec::new(),
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
        } else if e.is(TRUST_NAMESPACE, "Algorithms") {
            if s.algorithms.is_some() {
                return Err(format!("{}: ts:Algorithms given twice", doc.path(c)));
            }
            s.algorithms = Some(read_algorithms(doc, c)?);
        } else if e.is(TRUST_NAMESPACE, "TimestampAuthority") {
            let mut certificates = String::new();
            for cert in doc.child_elements(c) {
                if !doc
                    .element(cert)
                    .is_some_and(|e| e.is(TRUST_NAMESPACE, "Certificate"))
                {
                    return Err(format!("{}: unexpected element", doc.path(cert)));
                }
                certificates.push_str(doc.text_content(cert).trim());
                certificates.push('\n');
            }
            s.timestamp_authorities.push(FileTimestampAuthority {
                url: attr(doc, c, "Url")?,
                certificates,
            });
        } else if e.is(TRUST_NAMESPACE, "NationalSignature") {
            if let Some(x) = doc.child_elements(c).next() {
                return Err(format!("{}: unexpected element", doc.path(x)));
            }
            s.national_signatures.push(FileNationalSignature {
                document: attr(doc, c, "Document")?,
                required: flag_of(doc, c, "Required")?,
            });
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

/// A required `true`/`false` attribute.
fn flag_of(doc: &Document, id: NodeId, name: &str) -> Result<bool, String> {
    match attr(doc, id, name)?.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!(
            "{}/@{name}: {other:?} is not true or false",
            doc.path(id)
        )),
    }
}

/// `ts:Algorithms` as written; [`AlgorithmPolicy::read`] judges the URIs.
fn read_algorithms(doc: &Document, id: NodeId) -> Result<FileAlgorithms, String> {
    let bits = |name: &str| -> Result<Option<u32>, String> {
        doc.element(id)
            .and_then(|e| e.attribute(name))
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("{}/@{name}: {v:?} is not a number of bits", doc.path(id)))
            })
            .transpose()
    };
    let mut a = FileAlgorithms {
        min_rsa_bits: bits("MinRsaBits")?,
        min_ec_bits: bits("MinEcBits")?,
        ..FileAlgorithms::default()
    };
    for c in doc.child_elements(id) {
        let list = match doc.element(c) {
            Some(e) if e.is(TRUST_NAMESPACE, "SignatureMethod") => &mut a.signature,
            Some(e) if e.is(TRUST_NAMESPACE, "DigestMethod") => &mut a.digest,
            _ => return Err(format!("{}: unexpected element", doc.path(c))),
        };
        list.get_or_insert_with(Vec::new)
            .push(attr(doc, c, "Algorithm")?);
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    //! The algorithm policy and the time-stamping authorities in the signed document: written
    //! only when set, read back to the same values, and documents signed before they existed
    //! still verify.

    use super::*;
    use crate::devpki::{self, DevPkiSpec};
    use crate::TrustSpace;
    use std::path::Path;

    fn dev_pki() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("dir");
        devpki::init(&DevPkiSpec {
            out: dir.path().to_path_buf(),
            states: vec!["KZ".into(), "RU".into()],
            hub: Some("EEC".into()),
            via_hub: vec![],
            base_port: 21000,
            days: 30,
        })
        .expect("dev PKI");
        dir
    }

    /// The TOML source with `policy` as KZ's `[state.algorithms]`.
    fn source_with_kz_policy(dir: &Path, policy: &str) -> String {
        let text = std::fs::read_to_string(dir.join("trust-space.toml")).expect("source");
        let kz = text.find("code = \"KZ\"").expect("KZ");
        let end = kz + text[kz..].find("[[state]]").expect("a state after KZ");
        format!(
            "{}[state.algorithms]\n{policy}\n{}",
            &text[..end],
            &text[end..]
        )
    }

    fn read_toml(text: &str) -> File {
        toml::from_str(text).expect("TOML")
    }

    fn eec_signer(dir: &Path) -> SigningKey {
        let read = |p: &str| std::fs::read(dir.join(p)).expect("read");
        SigningKey::from_pem(&read("eec/signer.key"), Some(&read("eec/signer.pem"))).expect("key")
    }

    fn eec_anchor(dir: &Path) -> TrustStore {
        crate::read_anchor(&dir.join("eec/root.pem")).expect("anchor")
    }

    const POLICY: &str = "signature = [\"ecdsa-sha384\", \"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512\"]\ndigest = [\"sha384\"]\nmin_rsa_bits = 3072\nmin_ec_bits = 384\n";

    #[test]
    fn a_policy_is_written_as_uris_and_read_back_to_the_same_policy() {
        let dir = dev_pki();
        let file = read_toml(&source_with_kz_policy(dir.path(), POLICY));
        let written = file.states[0].algorithms.clone().expect("KZ's policy");
        assert_eq!(written.signature.as_ref().map(Vec::len), Some(2));
        let doc = to_document(&file);
        let xml = doc.to_xml();
        assert_eq!(xml.matches("<ts:Algorithms").count(), 1, "KZ's only");
        assert!(xml.contains(r#"<ts:Algorithms MinRsaBits="3072" MinEcBits="384">"#));
        assert!(xml.contains(
            r#"<ts:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"/>"#
        ));
        assert!(xml.contains(
            r#"<ts:DigestMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#sha384"/>"#
        ));
        let back = from_document(&xml::parse(xml.as_bytes()).expect("parses")).expect("reads");
        assert_eq!(back.states[1].algorithms, None, "RU has none");
        let policy = |f: &File| {
            AlgorithmPolicy::read(f.states[0].algorithms.as_ref().expect("policy")).expect("ok")
        };
        assert_eq!(policy(&back), policy(&file));
        // And once more: the URIs read as they were written.
        let again = to_document(&back).to_xml();
        assert_eq!(again, xml);
    }

    #[test]
    fn a_signed_document_with_a_policy_verifies_and_an_older_one_without_still_does() {
        let dir = dev_pki();
        let file = read_toml(&source_with_kz_policy(dir.path(), POLICY));
        let mut doc = to_document(&file);
        sign(&mut doc, &eec_signer(dir.path())).expect("signs");
        let (read, _) = verify(doc.to_xml().as_bytes(), &eec_anchor(dir.path())).expect("verifies");
        let space = TrustSpace::from_file(read, Path::new("signed")).expect("in force");
        let kz = space.state("KZ").expect("KZ");
        let policy = kz.algorithms.as_ref().expect("KZ's policy");
        assert_eq!(policy.min_ec_bits, Some(384));
        assert_eq!(
            policy.to_string(),
            "signature ecdsa-sha384, ecdsa-sha512; digest sha384; RSA keys of at least 3072 \
             bits; EC keys of at least 384 bits"
        );
        assert!(space.state("RU").expect("RU").algorithms.is_none());

        // init-dev's document predates any policy: it verifies and restricts nothing.
        let old = std::fs::read(dir.path().join("trust-space.xml")).expect("old");
        assert!(!String::from_utf8_lossy(&old).contains("Algorithms"));
        let (read, _) = verify(&old, &eec_anchor(dir.path())).expect("verifies");
        let space = TrustSpace::from_file(read, Path::new("old")).expect("in force");
        assert!(space.states.values().all(|s| s.algorithms.is_none()));
    }

    #[test]
    fn an_unknown_algorithm_is_refused_with_its_state_and_position() {
        let dir = dev_pki();
        let file = read_toml(&source_with_kz_policy(
            dir.path(),
            "signature = [\"ecdsa-sha256\", \"ecdsa-sha3-256\"]",
        ));
        let e = TrustSpace::from_file(file, Path::new("ts.toml")).expect_err("refused");
        let e = e.to_string();
        assert!(
            e.starts_with(
                "ts.toml: state[0] (KZ).algorithms.signature[1]: \"ecdsa-sha3-256\" is not a \
                 known signature method"
            ),
            "{e}"
        );

        // The same in a signed document: an unknown URI, or an element the layout lacks.
        let file = read_toml(&source_with_kz_policy(dir.path(), POLICY));
        let xml = to_document(&file).to_xml();
        let unknown = xml.replace("xmldsig-more#sha384", "xmldsig-more#sha3-384");
        let read = from_document(&xml::parse(unknown.as_bytes()).expect("parses")).expect("read");
        let e = TrustSpace::from_file(read, Path::new("signed")).expect_err("refused");
        assert!(
            e.to_string()
                .contains("state[0] (KZ).algorithms.digest[0]: \"http://www.w3.org/2001/04/xmldsig-more#sha3-384\" is not a known digest method"),
            "{e}"
        );
        let bits = xml.replace("MinRsaBits=\"3072\"", "MinRsaBits=\"many\"");
        let e =
            from_document(&xml::parse(bits.as_bytes()).expect("parses")).expect_err("not a number");
        assert!(
            e.ends_with("ts:Algorithms[1]/@MinRsaBits: \"many\" is not a number of bits"),
            "{e}"
        );
        let stray = xml.replace("<ts:DigestMethod ", "<ts:KeySize ");
        let e = from_document(&xml::parse(stray.as_bytes()).expect("parses"))
            .expect_err("unexpected element");
        assert!(
            e.contains("ts:KeySize") && e.contains("unexpected element"),
            "{e}"
        );
    }

    #[test]
    fn a_state_without_a_policy_has_none() {
        let dir = dev_pki();
        let space = TrustSpace::load(&dir.path().join("trust-space.toml"), None).expect("loads");
        assert!(space.states.values().all(|s| s.algorithms.is_none()));
        // An empty table restricts nothing: in force, the same as none.
        let file = read_toml(&source_with_kz_policy(dir.path(), ""));
        assert!(file.states[0].algorithms.is_some());
        let space = TrustSpace::from_file(file, Path::new("ts.toml")).expect("loads");
        assert!(space.state("KZ").expect("KZ").algorithms.is_none());
        assert_eq!(
            crate::algorithms::describe(None),
            "no restriction (the node's defaults)"
        );
    }

    /// The TOML source with KZ given `required` and time-stamping authorities (`urls`, each
    /// with the EEC root as its certificate).
    fn source_with_kz_authorities(dir: &Path, required: &str, urls: &[&str]) -> String {
        let text = std::fs::read_to_string(dir.join("trust-space.toml")).expect("source");
        let cert = std::fs::read_to_string(dir.join("eec/root.pem")).expect("root");
        let kz = text.find("code = \"KZ\"\n").expect("KZ") + "code = \"KZ\"\n".len();
        let end = kz + text[kz..].find("[[state]]").expect("a state after KZ");
        let tables: String = urls
            .iter()
            .map(|u| {
                format!("[[state.timestamp_authority]]\nurl = \"{u}\"\ncertificates = \"\"\"\n{cert}\"\"\"\n")
            })
            .collect();
        format!(
            "{}{required}\n{}{tables}\n{}",
            &text[..kz],
            &text[kz..end],
            &text[end..]
        )
    }

    #[test]
    fn time_stamping_authorities_survive_the_signed_document_and_are_listed() {
        let dir = dev_pki();
        let file = read_toml(&source_with_kz_authorities(
            dir.path(),
            "timestamp_required = true",
            &["http://tsa.kz.test/tsa", "http://127.0.0.1:9/other"],
        ));
        assert_eq!(file.states[0].timestamp_authorities.len(), 2);
        let mut doc = to_document(&file);
        let xml = doc.to_xml();
        assert_eq!(xml.matches("<ts:TimestampAuthority ").count(), 2);
        assert_eq!(
            xml.matches("TimestampRequired=\"true\"").count(),
            1,
            "KZ only"
        );
        sign(&mut doc, &eec_signer(dir.path())).expect("signs");
        let (read, _) = verify(doc.to_xml().as_bytes(), &eec_anchor(dir.path())).expect("verifies");
        assert_eq!(
            read.states[0].timestamp_authorities,
            file.states[0].timestamp_authorities
        );
        assert!(read.states[0].timestamp_required);
        let space = TrustSpace::from_file(read, Path::new("signed")).expect("in force");
        let kz = space.state("KZ").expect("KZ");
        assert!(kz.timestamp_required);
        let urls: Vec<&str> = kz
            .timestamp_authorities
            .iter()
            .map(|a| a.url.as_str())
            .collect();
        assert_eq!(urls, ["http://tsa.kz.test/tsa", "http://127.0.0.1:9/other"]);
        assert!(kz
            .timestamp_authorities
            .iter()
            .all(|a| a.name == "KZ" && a.certificates.len() == 1));
        let ru = space.state("RU").expect("RU");
        assert!(ru.timestamp_authorities.is_empty() && !ru.timestamp_required);
        assert_eq!(
            space.timestamp_authorities().len(),
            2,
            "every state's, listed once"
        );

        // init-dev's document predates authorities: it verifies and lists none.
        let old = std::fs::read(dir.path().join("trust-space.xml")).expect("old");
        assert!(!String::from_utf8_lossy(&old).contains("TimestampAuthority"));
        let (read, _) = verify(&old, &eec_anchor(dir.path())).expect("verifies");
        let space = TrustSpace::from_file(read, Path::new("old")).expect("in force");
        assert!(space.timestamp_authorities().is_empty());
        assert!(space.states.values().all(|s| !s.timestamp_required));
    }

    #[test]
    fn bad_time_stamping_entries_are_refused_with_their_field() {
        let dir = dev_pki();
        let refused = |required: &str, urls: &[&str]| {
            let file = read_toml(&source_with_kz_authorities(dir.path(), required, urls));
            TrustSpace::from_file(file, Path::new("ts.toml"))
                .expect_err("refused")
                .to_string()
        };
        let e = refused("timestamp_required = true", &[]);
        assert!(
            e.starts_with("ts.toml: state[0] (KZ).timestamp_required: a state that requires"),
            "{e}"
        );
        let e = refused("", &["https://tsa.kz.test/"]);
        assert!(
            e.starts_with("ts.toml: state[0] (KZ).timestamp_authority[0].url:")
                && e.contains("https is not supported"),
            "{e}"
        );
        let text = source_with_kz_authorities(dir.path(), "", &["http://tsa.kz.test/"]);
        let begin = text.find("certificates = \"\"\"").expect("certificates");
        let open = begin + "certificates = \"\"\"".len();
        let end = open + text[open..].find("\"\"\"").expect("closing quotes") + 3;
        let garbage = format!(
            "{}certificates = \"not PEM\"{}",
            &text[..begin],
            &text[end..]
        );
        let file = read_toml(&garbage);
        let e = TrustSpace::from_file(file, Path::new("ts.toml"))
            .expect_err("refused")
            .to_string();
        assert!(
            e.starts_with("ts.toml: state[0] (KZ).timestamp_authority[0].certificates:"),
            "{e}"
        );
        // In the signed document: a stray element inside an authority, a bad flag.
        let file = read_toml(&source_with_kz_authorities(
            dir.path(),
            "",
            &["http://tsa.kz.test/"],
        ));
        let xml = to_document(&file).to_xml();
        let stray = xml
            .replace("<ts:Certificate>", "<ts:Anchor>")
            .replace("</ts:Certificate>", "</ts:Anchor>");
        let e = from_document(&xml::parse(stray.as_bytes()).expect("parses")).expect_err("stray");
        assert!(
            e.contains("ts:Anchor") && e.contains("unexpected element"),
            "{e}"
        );
        let flag = xml.replace(
            "<ts:State Code=\"KZ\"",
            "<ts:State TimestampRequired=\"yes\" Code=\"KZ\"",
        );
        let e = from_document(&xml::parse(flag.as_bytes()).expect("parses")).expect_err("flag");
        assert!(
            e.contains("@TimestampRequired: \"yes\" is not true or false"),
            "{e}"
        );
    }

    /// The TOML source with `tables` appended to RU's entry.
    fn source_with_ru(dir: &Path, tables: &str) -> String {
        let text = std::fs::read_to_string(dir.join("trust-space.toml")).expect("source");
        let ru = text.find("code = \"RU\"\n").expect("RU");
        let end = text[ru..].find("[[state]]").map_or(text.len(), |e| ru + e);
        format!("{}\n{tables}\n{}", &text[..end], &text[end..])
    }

    const PHYTO_REQUIRED: &str = "[[state.national_signature]]\ndocument = \"R.SF.01.001\"\nrequired = true\n[[state.national_signature]]\ndocument = \"R.CC.01.001\"\nrequired = false\n";

    #[test]
    fn required_national_signatures_survive_the_signed_document() {
        let dir = dev_pki();
        let file = read_toml(&source_with_ru(dir.path(), PHYTO_REQUIRED));
        let mut doc = to_document(&file);
        let xml = doc.to_xml();
        assert!(
            xml.contains(r#"<ts:NationalSignature Document="R.SF.01.001" Required="true"/>"#),
            "{xml}"
        );
        assert_eq!(
            xml.matches("<ts:NationalSignature ").count(),
            2,
            "RU's only"
        );
        sign(&mut doc, &eec_signer(dir.path())).expect("signs");
        let (read, _) = verify(doc.to_xml().as_bytes(), &eec_anchor(dir.path())).expect("verifies");
        assert_eq!(
            read.states[1].national_signatures,
            file.states[1].national_signatures
        );
        let space = TrustSpace::from_file(read, Path::new("signed")).expect("in force");
        let ru = space.state("RU").expect("RU");
        assert!(ru.requires_national_signature("R.SF.01.001"));
        assert!(
            !ru.requires_national_signature("R.CC.01.001"),
            "listed, not required"
        );
        assert!(!space
            .state("KZ")
            .expect("KZ")
            .requires_national_signature("R.SF.01.001"));

        // init-dev's document predates the requirement: it verifies and requires nothing.
        let old = std::fs::read(dir.path().join("trust-space.xml")).expect("old");
        assert!(!String::from_utf8_lossy(&old).contains("NationalSignature"));
        let (read, _) = verify(&old, &eec_anchor(dir.path())).expect("verifies");
        let space = TrustSpace::from_file(read, Path::new("old")).expect("in force");
        assert!(space
            .states
            .values()
            .all(|s| !s.requires_national_signature("R.SF.01.001")));
    }

    #[test]
    fn bad_national_signature_entries_are_refused_with_their_field() {
        let dir = dev_pki();
        let refused = |tables: &str| {
            let file = read_toml(&source_with_ru(dir.path(), tables));
            TrustSpace::from_file(file, Path::new("ts.toml"))
                .expect_err("refused")
                .to_string()
        };
        let e = refused("[[state.national_signature]]\ndocument = \"eaeu.phytosanitary-certificate\"\nrequired = true\n");
        assert!(
            e.starts_with("ts.toml: state[1] (RU).national_signature[0].document: \"eaeu.phytosanitary-certificate\" is not a document type code"),
            "{e}"
        );
        let twice = format!("{PHYTO_REQUIRED}[[state.national_signature]]\ndocument = \"R.SF.01.001\"\nrequired = false\n");
        let e = refused(&twice);
        assert!(
            e.contains("state[1] (RU).national_signature[2].document: R.SF.01.001 is listed twice"),
            "{e}"
        );
        let file = read_toml(&source_with_ru(dir.path(), PHYTO_REQUIRED));
        let xml = to_document(&file).to_xml();
        let bad = xml.replacen(r#"Required="true""#, r#"Required="yes""#, 1);
        let e = from_document(&xml::parse(bad.as_bytes()).expect("parses")).expect_err("flag");
        assert!(
            e.ends_with(r#"@Required: "yes" is not true or false"#),
            "{e}"
        );
    }
}
