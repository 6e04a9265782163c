//! The interoperability corpus for the verification profiles (issue 27): documents in the
//! WS-Security, SMEV 3 detached-by-id, several-signature and XPath shapes signed by `xmlsec1`
//! at test time (`corpus.rs`), other projects' published test vectors (`published.rs`), and the
//! signature-wrapping attacks applied to every valid document (`wrapping.rs`). Each document
//! must verify under its own profile and return the signed element itself, and be refused
//! under the others and in every attacked form, each for its reason.
//!
//! `xmlsec1` is required: a missing one fails naming `scripts/setup`, never a skip.

#[path = "../common/mod.rs"]
mod common;
mod corpus;
mod published;
mod wrapping;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::{run, text, xmlsec1, Pki};
use corpus::*;
use tereze_codecs::dsig::{
    self, verify_profile, verify_signatures, ElementPath, Expect, Outcome, Profile, ResolveError,
    Select, SignedElement, TrustStore, VerifyError, VerifyPolicy,
};
use tereze_codecs::pki::KeyKind;
use tereze_codecs::xml::{self, Document};
use wrapping::{Attack, Target, EVIL};

fn xmlsec1_verifies(pki: &Pki, xml: &str, ids: &[(&str, String)]) -> bool {
    let f = pki.write("check.xml", xml.as_bytes());
    let mut c = xmlsec1();
    c.arg("--verify")
        .arg("--trusted-pem")
        .arg(pki.path("ca.pem"));
    for (a, n) in ids {
        c.arg(format!("--id-attr:{a}")).arg(n);
    }
    let out = run(c.arg(&f));
    if !out.status.success() {
        eprintln!("{}", text(&out));
    }
    out.status.success()
}

/// The corpus is what it claims: xmlsec1 itself verifies every single-signature shape it
/// signed (the several-signature ones are checked signature by signature below through ours),
/// so a refusal by our verifier is ours to explain.
#[test]
fn xmlsec1_verifies_the_corpus_it_signed() {
    let pki = Pki::new(KeyKind::EcP256);
    let wsu_ts = ("Id", format!("{WSU}:Timestamp"));
    for soap12 in [false, true] {
        let body = (
            "Id",
            format!("{}:Body", if soap12 { SOAP12 } else { SOAP11 }),
        );
        let x = wss(&pki, KeyKind::EcP256, soap12, KeyRef::X509Data);
        assert!(xmlsec1_verifies(&pki, &x, &[body, wsu_ts.clone()]));
    }
    let x = smev3(&pki, KeyKind::EcP256);
    let spr = ("Id", format!("{SMEV}:SenderProvidedRequestData"));
    assert!(xmlsec1_verifies(&pki, &x, &[spr]));
    for shape in XPathShape::ALL {
        assert!(
            xmlsec1_verifies(&pki, &xpath(&pki, shape), &[]),
            "{shape:?}"
        );
    }
}

#[test]
fn published_vectors_in_scope_verify_and_their_tampered_copies_do_not() {
    for (name, trust, policy, signed_text) in published::accepted() {
        let doc = published::parse(name);
        let v = dsig::verify(&doc, &trust, &policy)
            .unwrap_or_else(|e| panic!("{name} is refused: {e}"));
        assert!(
            v.signer.subject.starts_with("public key SHA256:"),
            "{name}: named by the shipped key, not a claimed subject"
        );
        let signed = v.references[0].document().expect("signed content parses");
        assert!(
            signed.text_content(signed.root()).contains(signed_text),
            "{name}: the signed content is returned"
        );
        let tampered = String::from_utf8(published::bytes(name))
            .expect("utf-8")
            .replace(signed_text, "Hello, Mallory");
        let doc = tereze_codecs::xml::parse(tampered.as_bytes()).expect("parses");
        assert!(
            matches!(
                dsig::verify(&doc, &trust, &policy),
                Err(VerifyError::DigestMismatch { .. })
            ),
            "{name}: a tampered copy is refused for its digest"
        );
    }
}

#[test]
fn published_vectors_out_of_scope_are_refused_each_for_its_reason() {
    for (name, trust, policy, refusal) in published::refused() {
        let parsed = tereze_codecs::xml::parse(&published::bytes(name));
        match (refusal, parsed) {
            (published::Refusal::Parse(expected), Err(e)) => {
                assert!(expected(&e), "{name}: refused by the parser, but for {e}")
            }
            (published::Refusal::Parse(_), Ok(_)) => panic!("{name}: the parser accepted it"),
            (published::Refusal::Verify(_), Err(e)) => panic!("{name} does not parse: {e}"),
            (published::Refusal::Verify(expected), Ok(doc)) => {
                match dsig::verify(&doc, &trust, &policy) {
                    Ok(_) => panic!("{name} verified"),
                    Err(e) => assert!(expected(&e), "{name}: refused, but for {e:?}"),
                }
                // The enveloped profile refuses it for the same reason.
                // The other profiles refuse it too (wss may first find it is no SOAP message).
                match verify_profile(&doc, &trust, &policy, &Expect::new(Profile::Enveloped)) {
                    Ok(_) => panic!("{name} verified under enveloped"),
                    Err(e) => assert!(expected(&e), "{name}: enveloped refused for {e:?}"),
                }
                let root = doc.element(doc.root()).expect("root");
                let root = ElementPath::from_steps([(
                    root.namespace.as_deref(),
                    root.name.local.as_str(),
                )]);
                for profile in [Profile::DetachedById, Profile::Wss] {
                    let expect = Expect::new(profile).element(root.clone());
                    assert!(
                        verify_profile(&doc, &trust, &policy, &expect).is_err(),
                        "{name} verified under {profile}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn path(text: &str, bindings: &[(&str, &str)]) -> ElementPath {
    ElementPath::parse_with(text, bindings).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn parse(xml: &str) -> Document {
    xml::parse(xml.as_bytes()).unwrap_or_else(|e| panic!("parses: {e}\n{xml}"))
}

fn under(
    xml: &str,
    trust: &TrustStore,
    profile: Profile,
    element: Option<&ElementPath>,
) -> Result<SignedElement, VerifyError> {
    let mut expect = Expect::new(profile);
    if let Some(e) = element {
        expect = expect.element(e.clone());
    }
    verify_profile(&parse(xml), trust, &VerifyPolicy::default(), &expect)
}

/// The signed element's own tree: its root's local name and its whole text.
fn returned(signed: &SignedElement) -> (String, String) {
    let doc = &signed.document;
    let root = doc.element(doc.root()).expect("an element");
    (root.name.local.clone(), doc.text_content(doc.root()))
}

/// The signed element is handed out as exactly the bytes that were digested, re-parsed.
fn assert_returns(signed: &SignedElement, local: &str, content: &str) {
    let (name, text) = returned(signed);
    assert_eq!(name, local, "the returned element is the one signed");
    assert!(text.contains(content), "{local} holds {content}: {text}");
    assert_eq!(
        xml::parse(&signed.canonical)
            .expect("canonical bytes parse")
            .to_xml(),
        signed.document.to_xml(),
        "the tree is the canonical bytes re-parsed"
    );
}

/// The bytes handed out are the ones xmlsec1 digested: SHA-256 of `canonical` is the
/// `DigestValue` xmlsec1 wrote for the reference to the returned element.
fn assert_xmlsec1_digested(xml: &str, signed: &SignedElement) {
    let reference = signed
        .verified
        .references
        .iter()
        .find(|r| r.path == signed.path)
        .unwrap_or_else(|| panic!("a reference to {}", signed.path));
    let open = format!("<ds:Reference URI=\"{}\">", reference.uri);
    let at = xml.find(&open).expect("the reference in the document");
    let value_start = at + xml[at..].find("<ds:DigestValue>").expect("DigestValue") + 16;
    let value_end = value_start + xml[value_start..].find('<').expect("end");
    let written = BASE64
        .decode(xml[value_start..value_end].trim())
        .expect("base64");
    assert_eq!(
        openssl::sha::sha256(&signed.canonical).to_vec(),
        written,
        "{}: the returned bytes are what xmlsec1 digested",
        reference.uri
    );
}

fn wss_body(soap12: bool) -> ElementPath {
    let ns = if soap12 { SOAP12 } else { SOAP11 };
    path("/s:Envelope/s:Body", &[("s", ns)])
}

fn smev_element() -> ElementPath {
    path(
        "/m:SendRequestRequest/m:SenderProvidedRequestData",
        &[("m", SMEV)],
    )
}

fn saml_assertion() -> ElementPath {
    path("/p:Response/a:Assertion", &[("p", SAMLP), ("a", SAML)])
}

fn saml_response() -> ElementPath {
    path("/p:Response", &[("p", SAMLP)])
}

fn phyto_certificate() -> ElementPath {
    path(
        "/ph:PhytosanitaryCertificateDocument/ph:Certificate",
        &[("ph", PHYTO)],
    )
}

fn phyto_document() -> ElementPath {
    path("/ph:PhytosanitaryCertificateDocument", &[("ph", PHYTO)])
}

fn declaration() -> ElementPath {
    path("/e:ExportDeclarationDetails", &[("e", EDEC)])
}

// ---------------------------------------------------------------------------------------------
// 1. xmlsec1's documents under the right profile and the wrong ones

#[test]
fn wss_messages_verify_under_wss_and_return_the_body() {
    let ec = Pki::new(KeyKind::EcP256);
    let rsa = Pki::new(KeyKind::Rsa(2048));
    let cases = [
        (&ec, KeyKind::EcP256, false, KeyRef::X509Data),
        (&ec, KeyKind::EcP256, false, KeyRef::TokenReference),
        (&ec, KeyKind::EcP256, true, KeyRef::X509Data),
        (&ec, KeyKind::EcP256, true, KeyRef::TokenReference),
        (&rsa, KeyKind::Rsa(2048), false, KeyRef::TokenReference),
    ];
    for (pki, kind, soap12, key_ref) in cases {
        let case = format!("{kind:?} SOAP 1.{} {key_ref:?}", if soap12 { 2 } else { 1 });
        let xml = wss(pki, kind, soap12, key_ref);
        // The profile's default element is the Body; naming it gives the same.
        for element in [None, Some(wss_body(soap12))] {
            let signed = under(&xml, &pki.trust(), Profile::Wss, element.as_ref())
                .unwrap_or_else(|e| panic!("{case}: refused under wss: {e}"));
            assert_returns(&signed, "Body", SOAP_BODY_TEXT);
            assert_xmlsec1_digested(&xml, &signed);
            assert_eq!(signed.path, "/soap:Envelope[1]/soap:Body[1]", "{case}");
            assert!(!String::from_utf8_lossy(&signed.canonical).contains("SignatureValue"));
            assert_eq!(signed.verified.signer.subject, SIGNER, "{case}");
            let uris: Vec<&str> = signed
                .verified
                .references
                .iter()
                .map(|r| r.uri.as_str())
                .collect();
            assert_eq!(
                uris,
                ["#Body-1", "#TS-1"],
                "{case}: Body and Timestamp signed"
            );
        }
        // A changed Body breaks its digest.
        let tampered = xml.replace("1500.00", "9500.00");
        assert!(
            matches!(
                under(&tampered, &pki.trust(), Profile::Wss, None),
                Err(VerifyError::DigestMismatch { ref uri }) if uri == "#Body-1"
            ),
            "{case}: a changed Body is refused for its digest"
        );
        // The wrong profiles: the signature is not inside the Body (enveloped), and it has two
        // references where detached-by-id takes exactly one.
        let body = wss_body(soap12);
        let e = under(&xml, &pki.trust(), Profile::Enveloped, Some(&body))
            .expect_err("enveloped refuses a WSS header signature");
        assert!(
            matches!(e, VerifyError::NotCovered { ref signatures, .. }
                if signatures.contains("wsse:Security[1]/ds:Signature")),
            "{case}: enveloped: {e:?}"
        );
        let e = under(&xml, &pki.trust(), Profile::DetachedById, Some(&body))
            .expect_err("detached-by-id refuses a two-reference WSS signature");
        assert!(
            matches!(e, VerifyError::SignatureMisplaced { ref reason, .. }
                if reason.contains("one reference")),
            "{case}: detached-by-id: {e:?}"
        );
    }
}

#[test]
fn a_wss_signature_must_sign_the_body_and_signs_other_headers_only_when_named() {
    let pki = Pki::new(KeyKind::EcP256);
    let trust = pki.trust();
    let policy = VerifyPolicy::default();
    let signing = |ids: &[&str]| {
        parse(&wss_signing(
            &pki,
            KeyKind::EcP256,
            false,
            KeyRef::X509Data,
            ids,
        ))
    };

    // The Body alone (no Timestamp) is enough.
    let signed = verify_profile(
        &signing(&["Body-1"]),
        &trust,
        &policy,
        &Expect::new(Profile::Wss),
    )
    .unwrap_or_else(|e| panic!("Body alone: {e}"));
    assert_returns(&signed, "Body", SOAP_BODY_TEXT);

    // The Timestamp alone: the Body, which the caller consumes, is not signed.
    let e = verify_profile(
        &signing(&["TS-1"]),
        &trust,
        &policy,
        &Expect::new(Profile::Wss),
    )
    .expect_err("an unsigned Body");
    assert!(matches!(e, VerifyError::NotCovered { .. }), "{e:?}");

    // A header the caller did not name is refused; named with `also`, it is accepted.
    let with_to = signing(&["Body-1", "TS-1", "To-1"]);
    let e = verify_profile(&with_to, &trust, &policy, &Expect::new(Profile::Wss))
        .expect_err("an unnamed wsa:To");
    assert!(
        matches!(e, VerifyError::ReferenceNotAccepted { ref uri, .. } if uri == "#To-1"),
        "{e:?}"
    );
    let to = path("/s:Envelope/s:Header/a:To", &[("s", SOAP11), ("a", WSA)]);
    let signed = verify_profile(
        &with_to,
        &trust,
        &policy,
        &Expect::new(Profile::Wss).also(to.clone()),
    )
    .unwrap_or_else(|e| panic!("wsa:To named: {e}"));
    assert_returns(&signed, "Body", SOAP_BODY_TEXT);
    assert_eq!(signed.verified.references.len(), 3);
    // `also` belongs to wss only.
    let e = verify_profile(
        &with_to,
        &trust,
        &policy,
        &Expect::new(Profile::DetachedById)
            .element(wss_body(false))
            .also(to),
    )
    .expect_err("also under detached-by-id");
    assert!(
        matches!(e, VerifyError::ReferenceNotAccepted { ref reason, .. } if reason.contains("only wss")),
        "{e:?}"
    );
}

#[test]
fn a_wss_token_reference_is_trusted_only_through_the_trust_store() {
    let pki = Pki::new(KeyKind::EcP256);
    let xml = wss(&pki, KeyKind::EcP256, false, KeyRef::TokenReference);
    // The BinarySecurityToken names the signer, but a CA it does not chain to is no anchor.
    let stranger = Pki::new(KeyKind::EcP256);
    let e = under(&xml, &stranger.trust(), Profile::Wss, None)
        .expect_err("an untrusted token is refused");
    assert!(
        matches!(e, VerifyError::Dsig(dsig::DsigError::UntrustedSigner(_))),
        "{e:?}"
    );
    // A reference to a token that is not there.
    let dangling = xml.replacen("URI=\"#X509-token-1\"", "URI=\"#no-such-token\"", 1);
    let e = under(&dangling, &pki.trust(), Profile::Wss, None)
        .expect_err("a dangling token reference is refused");
    assert!(matches!(e, VerifyError::SecurityToken { .. }), "{e:?}");
}

#[test]
fn smev3_request_verifies_detached_by_id_and_returns_the_signed_request_data() {
    let pki = Pki::new(KeyKind::EcP256);
    let xml = smev3(&pki, KeyKind::EcP256);
    let element = smev_element();
    let signed = under(&xml, &pki.trust(), Profile::DetachedById, Some(&element))
        .unwrap_or_else(|e| panic!("SMEV 3 refused under detached-by-id: {e}"));
    assert_returns(&signed, "SenderProvidedRequestData", SMEV_CONTENT);
    assert_xmlsec1_digested(&xml, &signed);
    assert!(returned(&signed).1.contains("ООО «Северное зерно»"));
    assert!(signed.location.contains("CallerInformationSystemSignature"));
    assert_eq!(signed.verified.signer.subject, SIGNER);

    // detached-by-id needs the caller to say what must be signed.
    let e = under(&xml, &pki.trust(), Profile::DetachedById, None).expect_err("no element");
    assert!(matches!(e, VerifyError::ElementRequired { .. }), "{e:?}");
    // Naming another element: the signature does not cover it.
    let other = path("/m:SendRequestRequest", &[("m", SMEV)]);
    let e = under(&xml, &pki.trust(), Profile::DetachedById, Some(&other)).expect_err("root");
    assert!(matches!(e, VerifyError::NotCovered { .. }), "{e:?}");
    // The wrong profiles.
    let e = under(&xml, &pki.trust(), Profile::Enveloped, Some(&element)).expect_err("env");
    assert!(
        matches!(e, VerifyError::NotCovered { ref signatures, .. }
            if signatures.contains("CallerInformationSystemSignature[1]/ds:Signature")),
        "enveloped: {e:?}"
    );
    let e = under(&xml, &pki.trust(), Profile::Wss, Some(&element)).expect_err("wss");
    assert!(matches!(e, VerifyError::NotSoap { .. }), "wss: {e:?}");
    // The one-signature enveloped check refuses the shape, naming it.
    let e = dsig::verify(&parse(&xml), &pki.trust(), &VerifyPolicy::default())
        .expect_err("not enveloped");
    assert!(
        matches!(e, VerifyError::NotEnveloped { .. }),
        "verify: {e:?}"
    );
    // An `xml:id` equal to the signed element's Id is a second element with that identifier
    // (libxml2, hence xmlsec1, resolves `#id` to `xml:id` too): refused, not resolved to
    // whichever one a reader meets first.
    let with_xml_id = xml.replacen(
        "<ns1:CallerInformationSystemSignature",
        "<ns1:Evil xml:id=\"SIGNED_BY_CONSUMER\"/><ns1:CallerInformationSystemSignature",
        1,
    );
    assert_ne!(
        with_xml_id, xml,
        "the signature's holder is in the document"
    );
    let e = under(
        &with_xml_id,
        &pki.trust(),
        Profile::DetachedById,
        Some(&element),
    )
    .expect_err("xml:id duplicate");
    assert!(
        matches!(e, VerifyError::DuplicateId(ref d) if d.to_string().contains("SIGNED_BY_CONSUMER")),
        "xml:id: {e:?}"
    );
    // Changed request data.
    let tampered = xml.replace(SMEV_CONTENT, "RU-PHY-2026-999999");
    let e = under(
        &tampered,
        &pki.trust(),
        Profile::DetachedById,
        Some(&element),
    )
    .expect_err("tampered");
    assert!(matches!(e, VerifyError::DigestMismatch { .. }), "{e:?}");
}

/// `xml:id` is an identifier without any `--id-attr` (libxml2 knows it): what xmlsec1 signs
/// by `#id` over an `xml:id` element verifies here, and returns that element.
#[test]
fn a_reference_to_an_xml_id_resolves_as_xmlsec1_resolves_it() {
    let pki = Pki::new(KeyKind::EcP256);
    let sig = signature(
        "sig-xml-id",
        method(KeyKind::EcP256),
        "#data-1",
        &[transform::ENVELOPED, transform::EXC_C14N],
    );
    let tmpl = format!("<Doc><Data xml:id=\"data-1\">{SAMPLE_TEXT}{sig}</Data></Doc>");
    let xml = common::xmlsec1_sign_as(&pki, "signer", &tmpl, &[], None);
    assert!(xmlsec1_verifies(&pki, &xml, &[]), "xmlsec1 reads its own");
    let data = path("/Doc/Data", &[]);
    let signed = under(&xml, &pki.trust(), Profile::Enveloped, Some(&data))
        .unwrap_or_else(|e| panic!("refused: {e}"));
    assert_returns(&signed, "Data", SAMPLE_TEXT);
    assert_xmlsec1_digested(&xml, &signed);
}

fn subjects(reports: &[dsig::SignatureReport]) -> Vec<Option<String>> {
    reports
        .iter()
        .map(|r| r.signer.as_ref().map(|s| s.subject.clone()))
        .collect()
}

/// Every signature of `doc` under the enveloped profile, with the default policy.
fn all_enveloped(
    doc: &Document,
    trust: &TrustStore,
) -> Result<Vec<dsig::SignatureReport>, VerifyError> {
    verify_signatures(
        doc,
        trust,
        &VerifyPolicy::default(),
        Profile::Enveloped,
        &Select::All,
    )
}

/// Asserts the reports, in document order: each signer's subject and the end of the path of
/// the element its first reference covers.
fn assert_signers_cover(reports: &[dsig::SignatureReport], expected: &[(&str, &str)]) {
    let want: Vec<Option<String>> = expected.iter().map(|(s, _)| Some(s.to_string())).collect();
    assert_eq!(subjects(reports), want, "signers in document order");
    for (r, (_, covers)) in reports.iter().zip(expected) {
        assert!(r.covers[0].ends_with(covers), "{:?}", r.covers);
    }
}

#[test]
fn saml_response_and_assertion_signatures_each_verify_and_name_their_signer() {
    let pki = Pki::new(KeyKind::EcP256);
    let xml = saml(&pki);
    let doc = parse(&xml);
    let policy = VerifyPolicy::default();

    let reports = all_enveloped(&doc, &pki.trust())
        .unwrap_or_else(|e| panic!("the two signatures are refused: {e}"));
    // Document order: the response's signature, then the assertion's.
    assert_signers_cover(
        &reports,
        &[(SIGNER, "Response[1]"), (IDP_ASSERTION, "Assertion[1]")],
    );
    assert!(reports
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Valid(_))));

    // Not a SOAP message: the wss profile refuses it, whichever element is named.
    let e = under(&xml, &pki.trust(), Profile::Wss, Some(&saml_assertion())).expect_err("wss");
    assert!(matches!(e, VerifyError::NotSoap { .. }), "{e:?}");
    let e = verify_signatures(&doc, &pki.trust(), &policy, Profile::Wss, &Select::All)
        .expect_err("wss, all");
    assert!(matches!(e, VerifyError::NotSoap { .. }), "{e:?}");
    // detached-by-id takes the assertion's signature too (it is by id, and its
    // enveloped-signature transform removes it from what it signs).
    let signed = under(
        &xml,
        &pki.trust(),
        Profile::DetachedById,
        Some(&saml_assertion()),
    )
    .unwrap_or_else(|e| panic!("the assertion by id: {e}"));
    assert_returns(&signed, "Assertion", SAML_NAME_ID);

    // The one-signature check refuses the document as before.
    assert!(matches!(
        dsig::verify(&doc, &pki.trust(), &policy),
        Err(VerifyError::MultipleSignatures { count: 2, .. })
    ));

    // The assertion alone, by its path: the assertion is returned, the response not checked.
    let assertion = saml_assertion();
    let signed = under(&xml, &pki.trust(), Profile::Enveloped, Some(&assertion))
        .unwrap_or_else(|e| panic!("the assertion is refused: {e}"));
    assert_returns(&signed, "Assertion", SAML_NAME_ID);
    assert_xmlsec1_digested(&xml, &signed);
    assert_eq!(signed.verified.signer.subject, IDP_ASSERTION);
    let signed = under(
        &xml,
        &pki.trust(),
        Profile::Enveloped,
        Some(&saml_response()),
    )
    .unwrap_or_else(|e| panic!("the response is refused: {e}"));
    assert_returns(&signed, "Response", SAML_NAME_ID);
    assert_eq!(signed.verified.signer.subject, SIGNER);
    // The response's view holds the assertion's signature it covers, never its own.
    let canonical = String::from_utf8_lossy(&signed.canonical);
    assert!(canonical.contains("Id=\"sig-assertion\""), "{canonical}");
    assert!(!canonical.contains("Id=\"sig-response\""), "{canonical}");
    let covering = verify_signatures(
        &doc,
        &pki.trust(),
        &policy,
        Profile::Enveloped,
        &Select::Covering(assertion.clone()),
    )
    .expect("the signature covering the assertion verifies");
    assert!(matches!(covering[0].outcome, Outcome::NotChecked));
    assert!(matches!(covering[1].outcome, Outcome::Valid(_)));

    // A change outside the assertion breaks only the response's signature: refused when all
    // are asked for, accepted when only the assertion's is.
    let tampered = xml.replace(
        "https://sp.example.test/acs",
        "https://evil.example.test/acs",
    );
    let tdoc = parse(&tampered);
    match all_enveloped(&tdoc, &pki.trust()) {
        Err(VerifyError::InvalidAmong {
            valid,
            count,
            reason,
            reports,
            ..
        }) => {
            assert_eq!((valid, count), (1, 2));
            assert!(
                matches!(*reason, VerifyError::DigestMismatch { .. }),
                "{reason:?}"
            );
            assert!(matches!(reports[0].outcome, Outcome::Invalid(_)));
            assert!(matches!(reports[1].outcome, Outcome::Valid(_)));
        }
        other => panic!("a document with an invalid signature among valid ones: {other:?}"),
    }
    verify_signatures(
        &tdoc,
        &pki.trust(),
        &policy,
        Profile::Enveloped,
        &Select::Covering(assertion),
    )
    .expect("only the assertion's signature was asked for");
}

#[test]
fn cosigned_phytosanitary_certificate_reports_inspector_and_authority() {
    let pki = Pki::new(KeyKind::EcP256);
    let xml = phyto_cosigned(&pki);
    let doc = parse(&xml);
    let reports = all_enveloped(&doc, &pki.trust())
        .unwrap_or_else(|e| panic!("the co-signed certificate is refused: {e}"));
    assert_signers_cover(
        &reports,
        &[
            (INSPECTOR, "Certificate[1]"),
            (AUTHORITY, "PhytosanitaryCertificateDocument[1]"),
        ],
    );

    let e = under(&xml, &pki.trust(), Profile::Wss, Some(&phyto_certificate())).expect_err("wss");
    assert!(matches!(e, VerifyError::NotSoap { .. }), "{e:?}");
    // The authority signs the whole document (URI=""), which detached-by-id does not take.
    let e = under(
        &xml,
        &pki.trust(),
        Profile::DetachedById,
        Some(&phyto_document()),
    )
    .expect_err("URI=\"\" under detached-by-id");
    assert!(
        matches!(e, VerifyError::ReferenceNotAccepted { ref uri, .. } if uri.is_empty()),
        "{e:?}"
    );
    let signed = under(
        &xml,
        &pki.trust(),
        Profile::Enveloped,
        Some(&phyto_certificate()),
    )
    .unwrap_or_else(|e| panic!("the inspector's signature is refused: {e}"));
    assert_returns(&signed, "Certificate", PHYTO_NUMBER);
    assert_xmlsec1_digested(&xml, &signed);
    assert_eq!(signed.verified.signer.subject, INSPECTOR);
    // The authority's view includes the certificate and the inspector's signature it covers.
    let signed = under(
        &xml,
        &pki.trust(),
        Profile::Enveloped,
        Some(&phyto_document()),
    )
    .unwrap_or_else(|e| panic!("the authority's signature is refused: {e}"));
    assert_eq!(signed.verified.signer.subject, AUTHORITY);
    let canonical = String::from_utf8_lossy(&signed.canonical);
    assert!(canonical.contains("Id=\"sig-inspector\""), "{canonical}");
    assert!(!canonical.contains("Id=\"sig-authority\""), "{canonical}");

    // The inspector's signature altered: the authority's still verifies alone, all do not.
    let tampered = xml.replace("Ячмень фуражный", "Ячмень пивоваренный");
    let e = all_enveloped(&parse(&tampered), &pki.trust()).expect_err("a changed certificate");
    assert!(
        matches!(
            e,
            VerifyError::InvalidAmong {
                valid: 0,
                count: 2,
                ..
            }
        ),
        "{e:?}"
    );
}

/// `not(ancestor-or-self::ds:Signature)` removes every signature from what it signs, so over a
/// co-signed document the authority would not sign the inspector's signature, which
/// enveloped-signature keeps: refused, naming the other signature.
#[test]
fn the_xpath_idiom_over_another_signature_is_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let xml = phyto_cosigned_with(&pki, &[transform::XPATH_NOT_SIGNATURE, transform::EXC_C14N]);
    let e = under(
        &xml,
        &pki.trust(),
        Profile::Enveloped,
        Some(&phyto_document()),
    )
    .expect_err("XPath over the inspector's signature");
    match e {
        VerifyError::XPathOverOtherSignature { other, .. } => {
            assert!(other.contains("Certificate[1]/ds:Signature"), "{other}")
        }
        e => panic!("{e:?}"),
    }
    // The inspector's own signature is unaffected.
    under(
        &xml,
        &pki.trust(),
        Profile::Enveloped,
        Some(&phyto_certificate()),
    )
    .unwrap_or_else(|e| panic!("the inspector's signature: {e}"));
}

#[test]
fn xpath_shapes_verify_as_enveloped_and_return_the_document() {
    let pki = Pki::new(KeyKind::EcP256);
    for shape in XPathShape::ALL {
        let xml = xpath(&pki, shape);
        for element in [None, Some(declaration())] {
            let signed = under(&xml, &pki.trust(), Profile::Enveloped, element.as_ref())
                .unwrap_or_else(|e| panic!("{shape:?} refused: {e}"));
            assert_returns(&signed, "ExportDeclarationDetails", SAMPLE_TEXT);
            assert_xmlsec1_digested(&xml, &signed);
        }
        // The old one-signature entry point reads the idioms too.
        let v = dsig::verify(&parse(&xml), &pki.trust(), &VerifyPolicy::default())
            .unwrap_or_else(|e| panic!("{shape:?} refused by verify: {e}"));
        assert_eq!(v.signer.subject, SIGNER, "{shape:?}");
        let e = under(&xml, &pki.trust(), Profile::Wss, None).expect_err("not SOAP");
        assert!(matches!(e, VerifyError::NotSoap { .. }), "{shape:?}: {e:?}");
        let e = under(
            &xml,
            &pki.trust(),
            Profile::DetachedById,
            Some(&declaration()),
        )
        .expect_err("URI=\"\" is not by id");
        assert!(
            matches!(e, VerifyError::ReferenceNotAccepted { ref uri, .. } if uri.is_empty()),
            "{shape:?}: {e:?}"
        );
        let tampered = xml.replace(SAMPLE_TEXT, "Ячмень пивоваренный");
        let e = under(&tampered, &pki.trust(), Profile::Enveloped, None).expect_err("tampered");
        assert!(
            matches!(e, VerifyError::DigestMismatch { .. }),
            "{shape:?}: {e:?}"
        );
    }
}

#[test]
fn gost_smev3_and_wss_shapes_signed_outside_our_code_verify() {
    let pki = gost_pki();
    let policy = VerifyPolicy::default();
    let xml = gost(&pki, GostShape::Smev3);
    let signed = under(
        &xml,
        &pki.trust(),
        Profile::DetachedById,
        Some(&smev_element()),
    )
    .unwrap_or_else(|e| panic!("GOST SMEV 3 refused: {e}"));
    assert_returns(&signed, "SenderProvidedRequestData", SMEV_CONTENT);
    assert_eq!(signed.verified.signature_method, GOST2012_256);
    let tampered = xml.replace(SMEV_CONTENT, "RU-PHY-2026-999999");
    assert!(matches!(
        under(
            &tampered,
            &pki.trust(),
            Profile::DetachedById,
            Some(&smev_element())
        ),
        Err(VerifyError::DigestMismatch { .. })
    ));

    let xml = gost(&pki, GostShape::WssSoap11);
    let signed = verify_profile(
        &parse(&xml),
        &pki.trust(),
        &policy,
        &Expect::new(Profile::Wss),
    )
    .unwrap_or_else(|e| panic!("GOST WSS refused: {e}"));
    assert_returns(&signed, "Body", SOAP_BODY_TEXT);
    assert_eq!(signed.verified.signer.subject, SIGNER);
}

#[test]
fn published_in_scope_vectors_verify_under_the_enveloped_profile() {
    for (name, trust, policy, signed_text) in published::accepted() {
        let doc = published::parse(name);
        let signed = verify_profile(&doc, &trust, &policy, &Expect::new(Profile::Enveloped))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_returns(&signed, "Envelope", signed_text);
        for profile in [Profile::DetachedById, Profile::Wss] {
            let envelope = path("/e:Envelope", &[("e", "urn:envelope")]);
            let e = verify_profile(
                &doc,
                &trust,
                &policy,
                &Expect::new(profile).element(envelope),
            )
            .expect_err("wrong profile");
            let expected = match profile {
                Profile::Wss => matches!(e, VerifyError::NotSoap { .. }),
                _ => {
                    matches!(e, VerifyError::ReferenceNotAccepted { ref uri, .. } if uri.is_empty())
                }
            };
            assert!(expected, "{name} under {profile}: {e:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The wrapping corpus

struct Valid {
    name: &'static str,
    xml: String,
    trust: TrustStore,
    element: ElementPath,
    target: Target,
}

fn wss_target() -> Target {
    Target {
        open: "<soap:Body",
        close: "</soap:Body>",
        id: Some("Body-1"),
        text: SOAP_BODY_TEXT,
        wrapper_after: "<wsse:Security",
    }
}

fn smev_target() -> Target {
    Target {
        open: "<ns1:SenderProvidedRequestData",
        close: "</ns1:SenderProvidedRequestData>",
        id: Some("SIGNED_BY_CONSUMER"),
        text: SMEV_CONTENT,
        wrapper_after: "<ns1:SendRequestRequest",
    }
}

/// The valid documents and the PKI that signed them (its files stay while it lives).
fn valid_corpus() -> (Pki, Vec<Valid>) {
    let pki = Pki::new(KeyKind::EcP256);
    let declaration_target = Target {
        open: "<edec:ExportDeclarationDetails",
        close: "</edec:ExportDeclarationDetails>",
        id: None,
        text: SAMPLE_TEXT,
        wrapper_after: "<edec:ExportDeclarationDetails",
    };
    let mut corpus = vec![
        Valid {
            name: "wss SOAP 1.1 X509Data",
            xml: wss(&pki, KeyKind::EcP256, false, KeyRef::X509Data),
            trust: pki.trust(),
            element: wss_body(false),
            target: wss_target(),
        },
        Valid {
            name: "wss SOAP 1.2 token reference",
            xml: wss(&pki, KeyKind::EcP256, true, KeyRef::TokenReference),
            trust: pki.trust(),
            element: wss_body(true),
            target: wss_target(),
        },
        Valid {
            name: "SMEV 3",
            xml: smev3(&pki, KeyKind::EcP256),
            trust: pki.trust(),
            element: smev_element(),
            target: smev_target(),
        },
        Valid {
            name: "SAML assertion",
            xml: saml(&pki),
            trust: pki.trust(),
            element: saml_assertion(),
            target: Target {
                open: "<saml:Assertion",
                close: "</saml:Assertion>",
                id: Some("assert-91ab"),
                text: SAML_NAME_ID,
                wrapper_after: "<samlp:Response",
            },
        },
        Valid {
            name: "co-signed phytosanitary certificate",
            xml: phyto_cosigned(&pki),
            trust: pki.trust(),
            element: phyto_certificate(),
            target: Target {
                open: "<ph:Certificate",
                close: "</ph:Certificate>",
                id: Some("cert-KZ-2026-004417"),
                text: PHYTO_NUMBER,
                wrapper_after: "<ph:PhytosanitaryCertificateDocument",
            },
        },
    ];
    for shape in XPathShape::ALL {
        corpus.push(Valid {
            name: shape.name(),
            xml: xpath(&pki, shape),
            trust: pki.trust(),
            element: declaration(),
            target: declaration_target.clone(),
        });
    }
    (pki, corpus)
}

struct Run {
    label: String,
    /// The caller asked for the signature over one element only (a profile's element, or
    /// `Select::Covering`), so other signatures in the document are not its concern.
    one_element: bool,
}

/// Every way a caller can ask: each profile with the element named, each profile's default,
/// and the several-signature entry point (all, and the one covering the element).
/// What one run handed out: the canonical bytes of every element it says were signed.
type Handed = Result<Vec<Vec<u8>>, VerifyError>;

fn every_run(v: &Valid, xml: &str) -> Vec<(Run, Handed)> {
    // An attacked document that does not even parse would make every refusal trivial.
    let doc = match xml::parse(xml.as_bytes()) {
        Ok(d) => d,
        Err(e) => panic!(
            "{}: the attacked document must be well-formed: {e}\n{xml}",
            v.name
        ),
    };
    let policy = VerifyPolicy::default();
    let mut runs = Vec::new();
    for profile in Profile::ALL {
        for expect in [
            Expect::new(profile).element(v.element.clone()),
            Expect::new(profile),
        ] {
            let named = expect.element.is_some();
            let r = verify_profile(&doc, &v.trust, &policy, &expect).map(|s| vec![s.canonical]);
            let label = format!("{profile} (element named: {named})");
            runs.push((
                Run {
                    label,
                    one_element: true,
                },
                r,
            ));
        }
        for (label, select) in [
            ("all", Select::All),
            ("covering", Select::Covering(v.element.clone())),
        ] {
            let r = verify_signatures(&doc, &v.trust, &policy, profile, &select).map(|reports| {
                reports
                    .into_iter()
                    .filter_map(|r| match r.outcome {
                        Outcome::Valid(v) => Some(v.references),
                        _ => None,
                    })
                    .flatten()
                    .map(|r| r.canonical)
                    .collect()
            });
            let one_element = matches!(select, Select::Covering(_));
            let label = format!("{profile} several ({label})");
            runs.push((Run { label, one_element }, r));
        }
    }
    runs
}

#[test]
fn every_wrapping_attack_is_refused_under_every_profile() {
    let mut accepted = Vec::new();
    let mut evil_out = Vec::new();
    let mut checked = 0;
    let (_pki, mut corpus) = valid_corpus();
    // The GOST shapes too: the defences do not depend on the algorithm.
    let gost_pki = gost_pki();
    corpus.push(Valid {
        name: "GOST SMEV 3",
        xml: gost(&gost_pki, GostShape::Smev3),
        trust: gost_pki.trust(),
        element: smev_element(),
        target: smev_target(),
    });
    corpus.push(Valid {
        name: "GOST wss SOAP 1.1",
        xml: gost(&gost_pki, GostShape::WssSoap11),
        trust: gost_pki.trust(),
        element: wss_body(false),
        target: wss_target(),
    });
    for v in corpus {
        // The unattacked document passes at least one way (its own profile), so a refusal of
        // the attacked one is the attack's doing.
        assert!(
            every_run(&v, &v.xml).iter().any(|(_, r)| r.is_ok()),
            "{}: the valid document verifies",
            v.name
        );
        for attack in Attack::ALL {
            let Some(xml) = wrapping::apply(&v.xml, &v.target, attack) else {
                continue;
            };
            for (run, result) in every_run(&v, &xml) {
                checked += 1;
                let Ok(contents) = result else { continue };
                let case = format!("{} / {attack:?} / {}", v.name, run.label);
                if contents
                    .iter()
                    .any(|c| String::from_utf8_lossy(c).contains(EVIL))
                {
                    evil_out.push(case.clone());
                }
                // Issue 27: an invalid signature among valid ones refuses the document unless
                // the caller asked only for a specific one; then the extra signature is not its
                // concern, as long as what it gets is the genuine element (checked above).
                if !(attack == Attack::SecondSignature && run.one_element) {
                    accepted.push(case);
                }
            }
        }
    }
    assert!(checked > 300, "{checked} runs");
    assert!(
        evil_out.is_empty(),
        "evil content handed out: {evil_out:#?}"
    );
    assert!(
        accepted.is_empty(),
        "attacked documents accepted: {accepted:#?}"
    );
}

/// Each attack is refused under each profile, on the document of that profile's shape (WSS
/// for wss, SMEV 3 for detached-by-id, the SAML assertion for enveloped), for the reason that
/// names it.
#[test]
fn wrapping_attacks_are_refused_under_each_profile_for_their_own_reason() {
    let (_pki, corpus) = valid_corpus();
    let find = |name: &str| {
        corpus
            .iter()
            .find(|v| v.name == name)
            .expect("in the corpus")
    };
    let cases = [
        (find("wss SOAP 1.1 X509Data"), Profile::Wss),
        (find("SMEV 3"), Profile::DetachedById),
        (find("SAML assertion"), Profile::Enveloped),
    ];
    let policy = VerifyPolicy::default();
    for (v, profile) in cases {
        for attack in Attack::ALL {
            let case = format!("{} under {profile}, {attack:?}", v.name);
            let xml = wrapping::apply(&v.xml, &v.target, attack).expect("applies");
            let one = under(&xml, &v.trust, profile, Some(&v.element));
            if attack == Attack::SecondSignature {
                // Asked for the one element: its genuine signature is what counts.
                let signed = one.unwrap_or_else(|e| panic!("{case}: {e}"));
                assert!(!returned(&signed).1.contains(EVIL), "{case}");
                // Asked for all: the empty signature refuses the document.
                let all = verify_signatures(&parse(&xml), &v.trust, &policy, profile, &Select::All);
                assert!(
                    matches!(all, Err(VerifyError::InvalidAmong { ref location, .. })
                        if location.contains("evil:Claim")),
                    "{case}: {all:?}"
                );
                continue;
            }
            let e = one.expect_err(&case);
            let ok = match attack {
                Attack::DuplicateId => matches!(e, VerifyError::DuplicateId(_)),
                Attack::Moved => match profile {
                    // Two Body elements: no longer a SOAP message the profile reads.
                    Profile::Wss => matches!(e, VerifyError::NotSoap { ref reason, .. }
                        if reason.contains("2 Body")),
                    _ => matches!(
                        e,
                        VerifyError::Element(ResolveError::Ambiguous { count: 2, .. })
                    ),
                },
                // The reference now points into its own signature: refused for that under
                // every profile, as plain `verify` refuses it.
                Attack::InObject => {
                    matches!(e, VerifyError::ReferenceInsideSignature { ref at, .. }
                    if at.contains("ds:Object"))
                }
                Attack::WrappedInHeader => {
                    matches!(e, VerifyError::NotCovered { ref signatures, .. }
                    if signatures.contains("wrap:Wrapper"))
                }
                Attack::CommentInjection => matches!(e, VerifyError::UnsignedComment { .. }),
                Attack::SecondSignature => unreachable!("handled above"),
            };
            assert!(ok, "{case}: {e:?}");
        }
    }
}

/// The attacks are the real thing: each keeps the signature cryptographically valid, so a
/// verifier that checks digests and the signature value but not where the signed element is
/// (here xmlsec1 itself) accepts the attacked document. A refusal by our profiles is therefore
/// their structural defence, not a broken digest.
#[test]
fn wrapped_documents_still_verify_for_a_verifier_that_ignores_structure() {
    let (pki, corpus) = valid_corpus();
    let ids = |v: &Valid| -> Vec<(&'static str, String)> {
        if v.name.starts_with("wss SOAP 1.1") {
            vec![
                ("Id", format!("{SOAP11}:Body")),
                ("Id", format!("{WSU}:Timestamp")),
            ]
        } else {
            vec![("Id", format!("{SMEV}:SenderProvidedRequestData"))]
        }
    };
    let mut checked = 0;
    for v in corpus
        .iter()
        .filter(|v| v.name.starts_with("wss SOAP 1.1") || v.name == "SMEV 3")
    {
        for attack in [
            Attack::Moved,
            Attack::WrappedInHeader,
            Attack::InObject,
            Attack::CommentInjection,
        ] {
            let xml = wrapping::apply(&v.xml, &v.target, attack).expect("applies");
            assert!(
                xmlsec1_verifies(&pki, &xml, &ids(v)),
                "{} / {attack:?}: xmlsec1 refused it, so the attack broke the signature",
                v.name
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}

/// A WS-Security signature counts only in `soap:Header/wsse:Security`: moved to the Header
/// itself or to the Envelope (still cryptographically valid), it is refused, and the error
/// says where the signature is.
#[test]
fn a_wss_signature_outside_the_security_header_is_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let xml = wss(&pki, KeyKind::EcP256, false, KeyRef::X509Data);
    let start = xml.find("<ds:Signature").expect("signature");
    let end = xml.find("</ds:Signature>").expect("signature end") + "</ds:Signature>".len();
    let sig = &xml[start..end];
    let without = format!("{}{}", &xml[..start], &xml[end..]);
    for (place, moved) in [
        (
            "soap:Header[1]/ds:Signature",
            without.replacen("<soap:Header>", &format!("<soap:Header>{sig}"), 1),
        ),
        (
            "soap:Envelope[1]/ds:Signature",
            without.replacen("</soap:Envelope>", &format!("{sig}</soap:Envelope>"), 1),
        ),
    ] {
        let e = under(&moved, &pki.trust(), Profile::Wss, None).expect_err("misplaced");
        match e {
            VerifyError::SignatureMisplaced { at, reason, .. } => {
                assert!(at.contains(place), "{place}: {at}");
                assert!(reason.contains("wsse:Security"), "{place}: {reason}");
            }
            e => panic!("{place}: {e:?}"),
        }
    }
}
