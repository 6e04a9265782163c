//! The negative corpus: every attack is refused with its own specific error.
//!
//! Parser attacks come from `tests/corpus/negative/`; signature-wrapping (XSW) variants are
//! built from a fresh, valid signature by moving the signed content around, which keeps every
//! digest and the signature value valid: only the structural rules can catch them.

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::{xmlsec1_sign, Pki};
use tereze_codecs::dsig::{
    self, DigestMethod, DsigError, SignOptions, SignTarget, TrustStore, VerifyError, VerifyPolicy,
};
use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};
use tereze_codecs::xml::{self, Limits, ParseErrorKind, Position};

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/corpus/negative/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("corpus file")
}

#[test]
fn dtd_based_attacks_are_refused_before_any_expansion() {
    for name in [
        "xxe-external-entity.xml",
        "billion-laughs.xml",
        "external-dtd.xml",
        "parameter-entity.xml",
    ] {
        let e = xml::parse(&corpus(name)).map(|_| ()).expect_err(name);
        assert_eq!(e.kind, ParseErrorKind::DoctypeForbidden, "{name}");
        assert_eq!(e.position, Position { line: 2, column: 1 }, "{name}");
    }
}

#[test]
fn undeclared_entity_is_refused() {
    let e = xml::parse(&corpus("undeclared-entity.xml"))
        .map(|_| ())
        .expect_err("refused");
    assert_eq!(e.kind, ParseErrorKind::UndeclaredEntity("nbsp".into()));
    assert_eq!(
        e.position,
        Position {
            line: 3,
            column: 12
        }
    );
}

#[test]
fn deep_nesting_is_refused() {
    let depth = 100_000;
    let doc = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    let e = xml::parse(doc.as_bytes()).map(|_| ()).expect_err("refused");
    assert_eq!(
        e.kind,
        ParseErrorKind::TooDeep {
            limit: Limits::default().max_depth
        }
    );
}

#[test]
fn oversize_input_is_refused_before_parsing() {
    let limit = Limits::default().max_bytes;
    let mut doc = b"<a>".to_vec();
    doc.resize(limit + 1, b'x');
    let e = xml::parse(&doc).map(|_| ()).expect_err("refused");
    assert_eq!(
        e.kind,
        ParseErrorKind::TooLarge {
            size: limit + 1,
            limit
        }
    );
}

/// Signs `input` (enveloped, by `id` or whole) and returns the serialised signed document and
/// the `<ds:Signature>…</ds:Signature>` text in it.
fn signed(pki: &Pki, input: &str, id: Option<&str>) -> (String, String) {
    let mut doc = xml::parse(input.as_bytes()).expect("test input parses");
    let target = id.map_or(SignTarget::Document, |i| SignTarget::Id(i.into()));
    dsig::sign_enveloped(
        &mut doc,
        &target,
        &pki.signing_key(),
        &SignOptions::default(),
    )
    .expect("signs");
    let out = doc.to_xml();
    let start = out.find("<ds:Signature").expect("signature start");
    let end = out.find("</ds:Signature>").expect("signature end") + "</ds:Signature>".len();
    let sig = out[start..end].to_owned();
    (out, sig)
}

fn verify(pki: &Pki, doc: &str) -> Result<dsig::Verified, VerifyError> {
    verify_with(pki, doc, &VerifyPolicy::default())
}

fn verify_with(pki: &Pki, doc: &str, policy: &VerifyPolicy) -> Result<dsig::Verified, VerifyError> {
    let doc = xml::parse(doc.as_bytes()).expect("attack document parses");
    dsig::verify(&doc, &pki.trust(), policy)
}

const PAYLOAD: &str = r#"<Root><Payload Id="p"><Amount>100</Amount></Payload></Root>"#;

#[test]
fn the_untouched_signature_verifies() {
    // The control for the wrapping cases below: they all start from this valid signature.
    let pki = Pki::new(KeyKind::EcP256);
    let (doc, _) = signed(&pki, PAYLOAD, Some("p"));
    let v = verify(&pki, &doc).expect("valid");
    assert_eq!(
        v.references[0].canonical,
        br#"<Payload Id="p"><Amount>100</Amount></Payload>"#
    );
}

#[test]
fn the_verdict_names_the_signature_method_digests_and_key_it_accepted() {
    // What an algorithm policy (the trust space's, per state) judges after verification.
    for (kind, family, bits, method) in [
        (
            KeyKind::EcP384,
            "ec",
            384,
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        ),
        (
            KeyKind::Rsa(2048),
            "rsa",
            2048,
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        ),
    ] {
        let pki = Pki::new(kind);
        let (doc, _) = signed(&pki, PAYLOAD, Some("p"));
        let v = verify(&pki, &doc).expect("valid");
        assert_eq!(v.signature_method, method);
        assert_eq!(
            v.digest_methods,
            ["http://www.w3.org/2001/04/xmlenc#sha256"]
        );
        assert_eq!((v.key.family.as_str(), v.key.bits), (family, bits));
    }
}

#[test]
fn xsw_moved_signed_element_is_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let (_, sig) = signed(&pki, PAYLOAD, Some("p"));
    let attack = format!(
        r#"<Root><Payload Id="forged"><Amount>999</Amount>{sig}</Payload><Wrapper><Payload Id="p"><Amount>100</Amount></Payload></Wrapper></Root>"#
    );
    let e = verify(&pki, &attack).map(|_| ()).expect_err("refused");
    assert!(matches!(e, VerifyError::NotEnveloped { .. }), "{e}");
    // The digests and signature value are intact: only the enveloping rule catches it.
    let relaxed = VerifyPolicy {
        require_enveloped: false,
        ..VerifyPolicy::default()
    };
    let v = verify_with(&pki, &attack, &relaxed).expect("digest and value still verify");
    assert_eq!(v.references[0].path, "/Root[1]/Wrapper[1]/Payload[1]");
    let view = v.references[0].document().expect("signed view");
    assert_eq!(
        view.text_content(view.root()),
        "100",
        "the signed view is the original"
    );
}

#[test]
fn xsw_duplicate_id_is_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let (_, sig) = signed(&pki, PAYLOAD, Some("p"));
    let attack = format!(
        r#"<Root><Payload Id="p"><Amount>999</Amount>{sig}</Payload><Wrapper><Payload Id="p"><Amount>100</Amount></Payload></Wrapper></Root>"#
    );
    let e = verify(&pki, &attack).map(|_| ()).expect_err("refused");
    assert!(matches!(e, VerifyError::DuplicateId(_)), "{e}");
    assert!(e.to_string().contains("\"p\""), "{e}");
}

#[test]
fn xsw_signed_element_wrapped_in_object_is_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let (_, sig) = signed(&pki, PAYLOAD, Some("p"));
    let wrapped = sig.replace(
        "</ds:Signature>",
        r#"<ds:Object><Payload Id="p"><Amount>100</Amount></Payload></ds:Object></ds:Signature>"#,
    );
    let attack =
        format!(r#"<Root><Payload Id="forged"><Amount>999</Amount>{wrapped}</Payload></Root>"#);
    let e = verify(&pki, &attack).map(|_| ()).expect_err("refused");
    assert!(
        matches!(e, VerifyError::ReferenceInsideSignature { .. }),
        "{e}"
    );
}

#[test]
fn xsw_signature_over_a_different_element_is_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let input = r#"<Root><Order Id="o"><Amount>100</Amount></Order><Note Id="n">ok</Note></Root>"#;
    let (_, sig) = signed(&pki, input, Some("n"));
    let attack = format!(
        r#"<Root><Order Id="o"><Amount>999</Amount>{sig}</Order><Note Id="n">ok</Note></Root>"#
    );
    let e = verify(&pki, &attack).map(|_| ()).expect_err("refused");
    match e {
        VerifyError::NotEnveloped {
            uri,
            target,
            parent,
        } => {
            assert_eq!(uri, "#n");
            assert!(target.starts_with("/Root[1]/Note[1]"), "{target}");
            assert!(parent.starts_with("/Root[1]/Order[1]"), "{parent}");
        }
        other => panic!("expected NotEnveloped, got {other}"),
    }
}

#[test]
fn comment_injected_into_signed_text_is_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let (doc, _) = signed(
        &pki,
        r#"<Root><User><Name>admin.evil</Name></User></Root>"#,
        None,
    );
    let attack = doc.replace("admin.evil", "admin<!---->.evil");
    let e = verify(&pki, &attack).map(|_| ()).expect_err("refused");
    assert!(matches!(e, VerifyError::UnsignedComment { .. }), "{e}");
    // Even when a caller allows it, the signed view has the signed text, not the split one.
    let relaxed = VerifyPolicy {
        allow_unsigned_comments: true,
        ..VerifyPolicy::default()
    };
    let v = verify_with(&pki, &attack, &relaxed).expect("digest unaffected by comments");
    let view = v.references[0].document().expect("signed view");
    let name = view
        .child_elements(view.child_elements(view.root()).next().expect("User"))
        .next()
        .expect("Name");
    assert_eq!(view.children(name).len(), 1);
    assert_eq!(view.text_content(name), "admin.evil");
}

#[test]
fn comments_between_elements_are_allowed() {
    let pki = Pki::new(KeyKind::EcP256);
    let (doc, _) = signed(&pki, "<Root>\n  <!-- a note -->\n  <A>1</A>\n</Root>", None);
    verify(&pki, &doc).expect("comments that split no text are harmless");
}

#[test]
fn signer_outside_the_trust_store_is_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let other = Pki::new(KeyKind::EcP256);
    let (doc, _) = signed(&pki, PAYLOAD, None);
    let parsed = xml::parse(doc.as_bytes()).expect("parses");
    let e = dsig::verify(&parsed, &other.trust(), &VerifyPolicy::default())
        .map(|_| ())
        .expect_err("refused");
    assert!(
        matches!(e, VerifyError::Dsig(DsigError::UntrustedSigner(_))),
        "{e}"
    );
    assert!(e.to_string().contains("CN=Test signer"), "{e}");
}

#[test]
fn wrong_trusted_key_does_not_verify_a_bare_signature() {
    let pki = Pki::new(KeyKind::EcP256);
    let (doc, _) = signed(&pki, PAYLOAD, None);
    let start = doc.find("<ds:KeyInfo>").expect("key info");
    let end = doc.find("</ds:KeyInfo>").expect("key info end") + "</ds:KeyInfo>".len();
    let bare = format!("{}{}", &doc[..start], &doc[end..]);
    let mut trust = TrustStore::new();
    let wrong = generate_key(KeyKind::EcP256).expect("key");
    trust
        .add_pem(&wrong.public_key_to_pem().expect("pem"))
        .expect("public key");
    let e = dsig::verify(
        &xml::parse(bare.as_bytes()).expect("parses"),
        &trust,
        &VerifyPolicy::default(),
    )
    .map(|_| ())
    .expect_err("refused");
    assert!(matches!(e, VerifyError::InvalidSignature(_)), "{e}");
    // The right bare key verifies it, and is named by its fingerprint.
    let mut right = TrustStore::new();
    right
        .add_pem(&pki.signer_key.public_key_to_pem().expect("pem"))
        .expect("public key");
    let v = dsig::verify(
        &xml::parse(bare.as_bytes()).expect("parses"),
        &right,
        &VerifyPolicy::default(),
    )
    .expect("verifies");
    assert!(v.signer.subject.starts_with("public key SHA256:"));
}

#[test]
fn a_certificate_trusted_only_for_its_key_is_named_by_the_key() {
    // The certificate's subject is the maker's free text; only the key is trusted.
    let pki = Pki::new(KeyKind::EcP256);
    let (doc, _) = signed(&pki, PAYLOAD, None);
    let mut trust = TrustStore::new();
    trust
        .add_pem(&pki.signer_key.public_key_to_pem().expect("pem"))
        .expect("public key");
    let parsed = xml::parse(doc.as_bytes()).expect("parses");
    let v = dsig::verify(&parsed, &trust, &VerifyPolicy::default()).expect("verifies");
    assert!(
        v.signer.subject.starts_with("public key SHA256:"),
        "{}",
        v.signer.subject
    );
}

#[test]
fn certificate_forged_with_the_signers_name_is_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let attacker_key = generate_key(KeyKind::EcP256).expect("key");
    let forged = issue_certificate(
        &CertificateSpec {
            subject: &[("C", "KZ"), ("O", "Tereze test"), ("CN", "Test signer")],
            not_before_days: -1,
            not_after_days: 30,
            is_ca: false,
        },
        &attacker_key,
        None,
    )
    .expect("certificate");
    let key = dsig::SigningKey::from_pem(
        &attacker_key.private_key_to_pem_pkcs8().expect("pem"),
        Some(&forged.to_pem().expect("pem")),
    )
    .expect("signing key");
    let mut doc = xml::parse(PAYLOAD.as_bytes()).expect("parses");
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        &key,
        &SignOptions::default(),
    )
    .expect("signs");
    let e = verify(&pki, &doc.to_xml())
        .map(|_| ())
        .expect_err("refused");
    assert!(
        matches!(e, VerifyError::Dsig(DsigError::UntrustedSigner(_))),
        "{e}"
    );
}

#[test]
fn expired_signer_certificate_is_refused() {
    let ca_key = generate_key(KeyKind::EcP256).expect("key");
    let ca = issue_certificate(
        &CertificateSpec {
            subject: &[("CN", "Older CA")],
            not_before_days: -60,
            not_after_days: 60,
            is_ca: true,
        },
        &ca_key,
        None,
    )
    .expect("CA");
    let key = generate_key(KeyKind::EcP256).expect("key");
    let expired = issue_certificate(
        &CertificateSpec {
            subject: &[("CN", "Expired signer")],
            not_before_days: -30,
            not_after_days: -1,
            is_ca: false,
        },
        &key,
        Some((&ca, &ca_key)),
    )
    .expect("certificate");
    let signing = dsig::SigningKey::from_pem(
        &key.private_key_to_pem_pkcs8().expect("pem"),
        Some(&expired.to_pem().expect("pem")),
    )
    .expect("signing key");
    let mut doc = xml::parse(PAYLOAD.as_bytes()).expect("parses");
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        &signing,
        &SignOptions::default(),
    )
    .expect("signs");
    let doc = doc.to_xml();
    let mut trust = TrustStore::new();
    trust.add_certificate(ca);
    let parsed = xml::parse(doc.as_bytes()).expect("parses");
    let e = dsig::verify(&parsed, &trust, &VerifyPolicy::default())
        .map(|_| ())
        .expect_err("refused");
    assert!(
        matches!(e, VerifyError::Dsig(DsigError::UntrustedSigner(_))),
        "{e}"
    );
    assert!(e.to_string().contains("expired"), "{e}");
    // Verified as of a time inside its validity, it is accepted.
    let then = VerifyPolicy {
        at: Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs() as i64
                - 10 * 86_400,
        ),
        ..VerifyPolicy::default()
    };
    dsig::verify(&parsed, &trust, &then).expect("valid at signing time");
    // The accepted chain is remembered, but only inside its validity window.
    let e = dsig::verify(&parsed, &trust, &VerifyPolicy::default())
        .map(|_| ())
        .expect_err("still refused now, with the chain remembered");
    assert!(e.to_string().contains("expired"), "{e}");
}

#[test]
fn a_changed_trust_store_forgets_accepted_chains() {
    let pki = Pki::new(KeyKind::EcP256);
    let (doc, _) = signed(&pki, PAYLOAD, None);
    let parsed = xml::parse(doc.as_bytes()).expect("parses");
    let mut trust = pki.trust();
    dsig::verify(&parsed, &trust, &VerifyPolicy::default()).expect("accepted and remembered");
    // Replacing the anchors with another CA must not let the remembered chain through.
    let other = Pki::new(KeyKind::EcP256);
    trust = TrustStore::new();
    trust.add_certificate(other.ca.clone());
    assert!(dsig::verify(&parsed, &trust, &VerifyPolicy::default()).is_err());
    let mut grown = pki.trust();
    dsig::verify(&parsed, &grown, &VerifyPolicy::default()).expect("accepted");
    grown.add_certificate(other.ca.clone());
    dsig::verify(&parsed, &grown, &VerifyPolicy::default())
        .expect("still accepted after adding an anchor");
}

fn replace_signature_value(doc: &str, f: impl Fn(&mut Vec<u8>)) -> String {
    let start = doc.find("<ds:SignatureValue>").expect("value") + "<ds:SignatureValue>".len();
    let end = doc.find("</ds:SignatureValue>").expect("value end");
    let mut bytes = BASE64.decode(&doc[start..end]).expect("base64");
    f(&mut bytes);
    format!("{}{}{}", &doc[..start], BASE64.encode(bytes), &doc[end..])
}

#[test]
fn truncated_signature_value_is_refused() {
    for kind in [KeyKind::EcP256, KeyKind::Rsa(2048)] {
        let pki = Pki::new(kind);
        let (doc, _) = signed(&pki, PAYLOAD, None);
        let attack = replace_signature_value(&doc, |b| b.truncate(b.len() - 2));
        let e = verify(&pki, &attack).map(|_| ()).expect_err("refused");
        assert!(
            matches!(e, VerifyError::Dsig(DsigError::MalformedSignatureValue(_))),
            "{kind:?}: {e}"
        );
        let flipped = replace_signature_value(&doc, |b| b[5] ^= 0x01);
        let e = verify(&pki, &flipped).map(|_| ()).expect_err("refused");
        assert!(
            matches!(e, VerifyError::InvalidSignature(_)),
            "{kind:?}: {e}"
        );
    }
}

#[test]
fn changed_signed_info_breaks_the_signature_value() {
    let pki = Pki::new(KeyKind::EcP256);
    let (doc, _) = signed(&pki, PAYLOAD, Some("p"));
    // Point the digest at other content by swapping in a new, correct digest value.
    let forged = r#"<Payload Id="p"><Amount>999</Amount></Payload>"#;
    let digest = BASE64.encode(
        DigestMethod::SHA256
            .digest(forged.as_bytes())
            .expect("digest"),
    );
    let start = doc.find("<ds:DigestValue>").expect("dv") + "<ds:DigestValue>".len();
    let end = doc.find("</ds:DigestValue>").expect("dv end");
    let attack = format!("{}{}{}", &doc[..start], digest, &doc[end..]).replace(">100<", ">999<");
    let e = verify(&pki, &attack).map(|_| ()).expect_err("refused");
    assert!(matches!(e, VerifyError::InvalidSignature(_)), "{e}");
}

#[test]
fn unknown_transforms_and_reference_uris_are_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let (doc, _) = signed(&pki, PAYLOAD, Some("p"));
    let xpath = doc.replace(
        "<ds:Transforms>",
        r#"<ds:Transforms><ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>1</ds:XPath></ds:Transform>"#,
    );
    let e = verify(&pki, &xpath).map(|_| ()).expect_err("refused");
    assert!(
        matches!(&e, VerifyError::UnsupportedTransform(t) if t.ends_with("REC-xpath-19991116")),
        "{e}"
    );
    let xslt = doc.replace(
        "<ds:Transforms>",
        r#"<ds:Transforms><ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>"#,
    );
    assert!(matches!(
        verify(&pki, &xslt),
        Err(VerifyError::UnsupportedTransform(_))
    ));
    for uri in [
        "http://attacker.invalid/doc.xml",
        "#xpointer(/)",
        "#xpointer(id('p'))",
        "doc.xml#p",
    ] {
        let attack = doc.replace(r##"URI="#p""##, &format!(r#"URI="{uri}""#));
        let e = verify(&pki, &attack).map(|_| ()).expect_err(uri);
        assert!(
            matches!(e, VerifyError::UnsupportedReferenceUri(_)),
            "{uri}: {e}"
        );
    }
    let missing = doc.replace(r##"URI="#p""##, r##"URI="#nowhere""##);
    assert!(matches!(
        verify(&pki, &missing),
        Err(VerifyError::ReferenceNotFound(_))
    ));
}

#[test]
fn several_or_no_signatures_are_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let (doc, sig) = signed(&pki, PAYLOAD, Some("p"));
    let twice = doc.replace("</Root>", &format!("{sig}</Root>"));
    let e = verify(&pki, &twice).map(|_| ()).expect_err("refused");
    assert!(
        matches!(e, VerifyError::MultipleSignatures { count: 2, .. }),
        "{e}"
    );
    assert!(matches!(
        verify(&pki, PAYLOAD),
        Err(VerifyError::NoSignature)
    ));
}

#[test]
fn weak_algorithms_and_keys_are_refused_for_signing() {
    let pki = Pki::new(KeyKind::EcP256);
    let mut doc = xml::parse(PAYLOAD.as_bytes()).expect("parses");
    let sha1 = SignOptions {
        digest: DigestMethod::SHA1,
        ..SignOptions::default()
    };
    let e = dsig::sign_enveloped(&mut doc, &SignTarget::Document, &pki.signing_key(), &sha1)
        .map(|_| ())
        .expect_err("refused");
    assert!(e.to_string().contains("sha1"), "{e}");

    let small = generate_key(KeyKind::Rsa(1024)).expect("key");
    let key = dsig::SigningKey::from_pem(&small.private_key_to_pem_pkcs8().expect("pem"), None)
        .expect("key loads");
    let e = dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        &key,
        &SignOptions::default(),
    )
    .map(|_| ())
    .expect_err("refused");
    assert!(
        matches!(e, dsig::SignError::Dsig(DsigError::WeakKey(_))),
        "{e}"
    );
}

#[test]
fn sha1_signatures_need_allow_sha1() {
    // Made by xmlsec1, since our signer never produces SHA-1.
    let pki = Pki::new(KeyKind::Rsa(2048));
    let tmpl = concat!(
        r#"<Root><Payload>100</Payload><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
        r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
        r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>"#,
        r#"<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></ds:Transforms>"#,
        r#"<ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/><ds:DigestValue/></ds:Reference>"#,
        r#"</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature></Root>"#
    );
    let signed = xmlsec1_sign(&pki, tmpl, None);
    let e = verify(&pki, &signed).map(|_| ()).expect_err("refused");
    assert!(matches!(e, VerifyError::Sha1NotAllowed(_)), "{e}");
    let allow = VerifyPolicy {
        allow_sha1: true,
        ..VerifyPolicy::default()
    };
    // No transform but the enveloped one: the default inclusive C14N applies.
    verify_with(&pki, &signed, &allow).expect("accepted with allow_sha1");
}

#[test]
fn structurally_broken_signatures_are_refused() {
    let pki = Pki::new(KeyKind::EcP256);
    let (doc, _) = signed(&pki, PAYLOAD, Some("p"));
    let no_info = doc
        .replace("<ds:SignedInfo>", "<ds:Info>")
        .replace("</ds:SignedInfo>", "</ds:Info>");
    assert!(matches!(
        verify(&pki, &no_info),
        Err(VerifyError::Malformed { .. })
    ));
    let bad_b64 = replace_signature_value(&doc, |_| {})
        .replace("<ds:SignatureValue>", "<ds:SignatureValue>!!");
    assert!(matches!(
        verify(&pki, &bad_b64),
        Err(VerifyError::Malformed { .. })
    ));
    let c14n11 = doc.replace(
        r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
        r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2006/12/xml-c14n11"/>"#,
    );
    assert!(matches!(
        verify(&pki, &c14n11),
        Err(VerifyError::UnsupportedCanonicalization(_))
    ));
}
