//! GOST R 34.10-2012 and 2001 signatures, proven against independent implementations.
//!
//! - ours → independent: documents signed here (our GOST keys and xmlsec's shipped keys) are
//!   checked with the `openssl` CLI and the GOST engine: each Reference digest is
//!   `openssl dgst -binary` of the canonical referenced bytes, and `openssl dgst -verify` with
//!   the public key the CLI takes from the certificate says `Verified OK` for the canonical
//!   SignedInfo (and fails when one byte changes).
//! - independent → ours: xmlsec's and CryptoPro CSP's signed documents
//!   (`tests/data/gost/`, see its README) verify with `dsig::verify`; tampered copies (content,
//!   DigestValue, a SignatureValue bit, halves swapped, truncated) are refused, each for its
//!   reason.
//! - keys of the wrong kind, XPath expressions other than the enveloped one, digests that do
//!   not belong to a GOST key, and a process without the engine give their own clear errors.
//!
//! The `openssl` CLI and the engine are required: a missing one fails with a message naming
//! `scripts/setup`, never a skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::Pki;
use openssl::x509::X509;
use tereze_codecs::c14n::{self, C14nOptions, NodeSet};
use tereze_codecs::dsig::gost::{
    GOST2001_CRYPTOPRO_URI, GOST2001_URI, GOST2012_256_URI, GOST2012_512_URI,
};
use tereze_codecs::dsig::{
    self, DigestMethod, DsigError, SignError, SignOptions, SignTarget, SigningKey, TrustStore,
    VerifyError, VerifyPolicy, DSIG_NAMESPACE,
};
use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};
use tereze_codecs::xml::{self, Document, NodeId};

/// 2026-06-01: inside every vendored certificate's validity (xmlsec's from 2026-03-09,
/// CryptoPro's 512-bit one until 2030), so the verdicts do not depend on the day the tests run.
const AT: i64 = 1_780_272_000;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gost")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(data(name)).expect("vendored GOST file")
}

fn engine() {
    if let Err(e) = tereze_gost_engine::load() {
        panic!("the GOST tests need the OpenSSL GOST engine: {e}; run scripts/setup");
    }
}

/// The `openssl` CLI with the GOST engine loaded by the test configuration.
fn openssl() -> Command {
    let mut c = Command::new("openssl");
    c.env("OPENSSL_CONF", data("gost-engine.cnf"));
    c
}

/// Fails (never skips) when the CLI or its GOST engine is missing.
fn require_cli() {
    let out = openssl()
        .args(["dgst", "-md_gost12_256", "/dev/null"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`openssl dgst -md_gost12_256` fails: the OpenSSL GOST engine is missing; run scripts/setup (installs libengine-gost-openssl): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("the openssl CLI is required; run scripts/setup (installs openssl): {e}"),
    }
}

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        at: Some(AT),
        ..VerifyPolicy::default()
    }
}

fn find(doc: &Document, local: &str) -> NodeId {
    doc.descendants_or_self(doc.root())
        .into_iter()
        .find(|n| doc.element(*n).is_some_and(|e| e.is(DSIG_NAMESPACE, local)))
        .unwrap_or_else(|| panic!("no ds:{local}"))
}

fn base64_of(doc: &Document, local: &str) -> Vec<u8> {
    let text: String = doc
        .text_content(find(doc, local))
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    BASE64.decode(text).expect("base64")
}

/// Replaces the text of the first `<tag>…</tag>` in `xml`.
fn replace_text(xml: &str, tag: &str, f: impl FnOnce(&str) -> String) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).expect("element") + open.len();
    let end = start + xml[start..].find('<').expect("end");
    format!("{}{}{}", &xml[..start], f(&xml[start..end]), &xml[end..])
}

fn replace_signature_value(xml: &str, tag: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
    replace_text(xml, tag, |old| {
        let clean: String = old.chars().filter(|c| !c.is_whitespace()).collect();
        let mut bytes = BASE64.decode(clean).expect("base64");
        f(&mut bytes);
        BASE64.encode(bytes)
    })
}

fn verify_str(xml: &str, trust: &TrustStore) -> Result<dsig::Verified, VerifyError> {
    dsig::verify(
        &xml::parse(xml.as_bytes()).expect("parses"),
        trust,
        &policy(),
    )
}

fn xmlsec_trust() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_pem(read("xmlsec/cacert.pem").as_bytes())
        .expect("xmlsec root");
    t
}

/// The CryptoPro vectors carry only their self-signed signer; the test trusts it directly.
fn cryptopro_trust(xml: &str) -> TrustStore {
    let doc = xml::parse(xml.as_bytes()).expect("parses");
    let mut t = TrustStore::new();
    t.add_certificate(X509::from_der(&base64_of(&doc, "X509Certificate")).expect("certificate"));
    t
}

// ---------------------------------------------------------------------------------------------
// Ours → the openssl CLI

struct Signed {
    xml: String,
    c14n: C14nOptions,
}

fn sign_document(key: &SigningKey, c14n: C14nOptions) -> Signed {
    let mut doc = xml::parse(
        br#"<Declaration xmlns="urn:eaeu:test" Id="d1"><Goods code="1001">Wheat, 120 t</Goods><Note xml:lang="ru">&#1047;&#1077;&#1088;&#1085;&#1086;</Note></Declaration>"#,
    )
    .expect("parses");
    let options = SignOptions {
        c14n: c14n.clone(),
        ..SignOptions::default()
    };
    dsig::sign_enveloped(&mut doc, &SignTarget::Document, key, &options).expect("signs");
    Signed {
        xml: doc.to_xml(),
        c14n,
    }
}

/// Checks `signed` with the CLI alone: digest, signature, and a tampered SignedInfo.
fn check_with_cli(signed: &Signed, cert: &X509, md: &str, dir: &Path) {
    let doc = xml::parse(signed.xml.as_bytes()).expect("parses");
    let sig = find(&doc, "Signature");
    // The referenced bytes: the document without the signature, comment-free, in the
    // reference's canonical form (the transform is the comment-free variant of `c14n`).
    let content_c14n = C14nOptions {
        with_comments: false,
        ..signed.c14n.clone()
    };
    let referenced = c14n::canonicalize(&doc, NodeSet::document().excluding(sig), &content_c14n);
    let signed_info = c14n::canonicalize(
        &doc,
        NodeSet::subtree(find(&doc, "SignedInfo")),
        &signed.c14n,
    );
    let paths = |n: &str| dir.join(n);
    std::fs::write(paths("ref.c14n"), &referenced).expect("write");
    std::fs::write(paths("si.c14n"), &signed_info).expect("write");
    std::fs::write(paths("sig.bin"), base64_of(&doc, "SignatureValue")).expect("write");
    std::fs::write(paths("cert.pem"), cert.to_pem().expect("pem")).expect("write");

    let digest = openssl()
        .args(["dgst", &format!("-{md}"), "-binary"])
        .arg(paths("ref.c14n"))
        .output()
        .expect("openssl dgst");
    assert!(digest.status.success(), "{digest:?}");
    assert_eq!(
        digest.stdout,
        base64_of(&doc, "DigestValue"),
        "DigestValue is openssl's {md} of the canonical referenced bytes"
    );

    let pubkey = openssl()
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(paths("cert.pem"))
        .output()
        .expect("openssl x509");
    assert!(pubkey.status.success(), "{pubkey:?}");
    std::fs::write(paths("pub.pem"), &pubkey.stdout).expect("write");

    let verify = |data: &Path| {
        openssl()
            .args(["dgst", &format!("-{md}"), "-verify"])
            .arg(paths("pub.pem"))
            .arg("-signature")
            .arg(paths("sig.bin"))
            .arg(data)
            .output()
            .expect("openssl dgst -verify")
    };
    let ok = verify(&paths("si.c14n"));
    assert!(
        ok.status.success() && String::from_utf8_lossy(&ok.stdout).contains("Verified OK"),
        "openssl verifies our SignatureValue: {ok:?}"
    );
    let mut tampered = signed_info.clone();
    let i = tampered.len() / 2;
    tampered[i] ^= 0x01;
    std::fs::write(paths("si-tampered.c14n"), &tampered).expect("write");
    let bad = verify(&paths("si-tampered.c14n"));
    assert!(
        !bad.status.success()
            && String::from_utf8_lossy(&bad.stdout).contains("Verification failure"),
        "openssl refuses a changed SignedInfo: {bad:?}"
    );
}

fn gost_pki(kind: KeyKind) -> (SigningKey, X509, X509) {
    let ca_key = generate_key(kind).expect("GOST CA key");
    let ca = issue_certificate(
        &CertificateSpec {
            subject: &[("C", "RU"), ("O", "Tereze test"), ("CN", "GOST root")],
            not_before_days: -1,
            not_after_days: 3650,
            is_ca: true,
        },
        &ca_key,
        None,
    )
    .expect("GOST CA certificate");
    let key = generate_key(kind).expect("GOST signer key");
    let cert = issue_certificate(
        &CertificateSpec {
            subject: &[("C", "RU"), ("O", "Tereze test"), ("CN", "GOST signer")],
            not_before_days: -1,
            not_after_days: 3650,
            is_ca: false,
        },
        &key,
        Some((&ca, &ca_key)),
    )
    .expect("GOST signer certificate");
    // Through PEM, as `tereze pki init-dev` writes the files and the node reads them.
    let signing = SigningKey::from_pem(
        &key.private_key_to_pem_pkcs8().expect("PKCS#8 PEM"),
        Some(&cert.to_pem().expect("PEM")),
    )
    .expect("GOST signing key from PEM");
    (signing, cert, ca)
}

#[test]
fn our_gost_signatures_verify_with_the_openssl_cli() {
    engine();
    require_cli();
    let dir = tempfile::tempdir().expect("temp dir");
    for (kind, md, method, digest) in [
        (
            KeyKind::Gost2012_256,
            "md_gost12_256",
            GOST2012_256_URI,
            DigestMethod::GOST_256,
        ),
        (
            KeyKind::Gost2012_512,
            "md_gost12_512",
            GOST2012_512_URI,
            DigestMethod::GOST_512,
        ),
    ] {
        let (key, cert, ca) = gost_pki(kind);
        for c14n in [C14nOptions::exclusive(), C14nOptions::default()] {
            let signed = sign_document(&key, c14n);
            // The key chose its scheme and its own Streebog for the reference too.
            assert!(signed.xml.contains(method), "{kind:?}: {}", signed.xml);
            assert!(signed.xml.contains(digest.uri), "{kind:?}: {}", signed.xml);
            check_with_cli(&signed, &cert, md, dir.path());
            // And our verifier accepts it against the GOST root.
            let mut trust = TrustStore::new();
            trust.add_certificate(ca.clone());
            let verified = dsig::verify(
                &xml::parse(signed.xml.as_bytes()).expect("parses"),
                &trust,
                &VerifyPolicy::default(),
            )
            .expect("ours verifies");
            assert_eq!(verified.signature_method, method);
            assert!(verified.signer.subject.contains("GOST signer"));
        }
    }
}

#[test]
fn signatures_with_xmlsecs_shipped_keys_verify_with_the_openssl_cli() {
    engine();
    require_cli();
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, md) in [("2012-256", "md_gost12_256"), ("2012-512", "md_gost12_512")] {
        let key = SigningKey::from_pem(
            read(&format!("xmlsec/gost-{name}-key.pem")).as_bytes(),
            Some(read(&format!("xmlsec/gost-{name}-cert.pem")).as_bytes()),
        )
        .expect("xmlsec's GOST key");
        let cert = key.certificate().expect("certificate").clone();
        let signed = sign_document(&key, C14nOptions::default());
        check_with_cli(&signed, &cert, md, dir.path());
        // xmlsec's leaf is issued (RSA) by its second-level CA, which our document does not
        // carry: trust the leaf itself here.
        let mut trust = TrustStore::new();
        trust.add_certificate(cert);
        verify_str(&signed.xml, &trust).expect("ours verifies");
    }
}

#[test]
fn gost_certificates_are_signed_with_gost_and_chain() {
    engine();
    require_cli();
    let dir = tempfile::tempdir().expect("temp dir");
    for (kind, text) in [
        (
            KeyKind::Gost2012_256,
            "GOST R 34.10-2012 with GOST R 34.11-2012 (256 bit)",
        ),
        (
            KeyKind::Gost2012_512,
            "GOST R 34.10-2012 with GOST R 34.11-2012 (512 bit)",
        ),
    ] {
        let (_, cert, ca) = gost_pki(kind);
        std::fs::write(dir.path().join("cert.pem"), cert.to_pem().expect("pem")).expect("write");
        std::fs::write(dir.path().join("ca.pem"), ca.to_pem().expect("pem")).expect("write");
        let shown = openssl()
            .args(["x509", "-noout", "-text", "-in"])
            .arg(dir.path().join("cert.pem"))
            .output()
            .expect("openssl x509");
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(shown.contains(text), "{kind:?}: {shown}");
        let chain = openssl()
            .args(["verify", "-CAfile"])
            .arg(dir.path().join("ca.pem"))
            .arg(dir.path().join("cert.pem"))
            .output()
            .expect("openssl verify");
        assert!(
            chain.status.success(),
            "{kind:?}: the CLI validates our GOST chain: {chain:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Independent → ours

const XMLSEC: [(&str, &str); 3] = [
    ("xmlsec/enveloped-gost2001.xml", GOST2001_URI),
    ("xmlsec/enveloped-gost2012-256.xml", GOST2012_256_URI),
    ("xmlsec/enveloped-gost2012-512.xml", GOST2012_512_URI),
];
const CRYPTOPRO: [(&str, &str); 3] = [
    ("cryptopro/cp2001.xml", GOST2001_CRYPTOPRO_URI),
    ("cryptopro/cp2012_256.xml", GOST2012_256_URI),
    ("cryptopro/cp2012_512.xml", GOST2012_512_URI),
];

#[test]
fn xmlsec_gost_vectors_verify() {
    engine();
    for (name, method) in XMLSEC {
        let xml = read(name);
        let verified = verify_str(&xml, &xmlsec_trust()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.signature_method, method, "{name}");
        assert_eq!(verified.references.len(), 1);
        assert!(
            String::from_utf8_lossy(&verified.references[0].canonical).contains("Hello, World!"),
            "{name}: the signed content"
        );
    }
}

/// xmlsec writes the signer's certificate last in `X509Data`: the verifier and
/// `claimed_signer` (which recognition reads to explain a refusal) both take the leaf.
#[test]
fn the_signer_of_an_xmlsec_vector_is_its_last_certificate() {
    engine();
    for (name, key) in [
        ("xmlsec/enveloped-gost2012-256.xml", "2012-256"),
        ("xmlsec/enveloped-gost2012-512.xml", "2012-512"),
    ] {
        let xml = read(name);
        let doc = xml::parse(xml.as_bytes()).expect("parses");
        let leaf = X509::from_pem(read(&format!("xmlsec/gost-{key}-cert.pem")).as_bytes())
            .expect("leaf certificate");
        let claimed = dsig::claimed_signer(&doc).expect("a certificate in X509Data");
        assert_eq!(
            claimed.to_der().expect("der"),
            leaf.to_der().expect("der"),
            "{name}"
        );
        let verified = verify_str(&xml, &xmlsec_trust()).expect("verifies");
        let signer = verified.signer.certificate.expect("signer certificate");
        assert_eq!(
            signer.to_der().expect("der"),
            leaf.to_der().expect("der"),
            "{name}"
        );
    }
}

#[test]
fn cryptopro_gost_vectors_verify() {
    engine();
    for (name, method) in CRYPTOPRO {
        let xml = read(name);
        let verified =
            verify_str(&xml, &cryptopro_trust(&xml)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.signature_method, method, "{name}");
        assert!(
            String::from_utf8_lossy(&verified.references[0].canonical)
                .contains("Here is some data to sign."),
            "{name}"
        );
    }
}

fn all_vectors() -> Vec<(&'static str, String, TrustStore)> {
    let mut out = Vec::new();
    for (name, _) in XMLSEC {
        out.push((name, read(name), xmlsec_trust()));
    }
    for (name, _) in CRYPTOPRO {
        let xml = read(name);
        let trust = cryptopro_trust(&xml);
        out.push((name, xml, trust));
    }
    out
}

#[test]
fn tampered_vectors_are_refused_each_for_its_reason() {
    engine();
    for (name, xml, trust) in all_vectors() {
        // The signed content.
        let content = if name.starts_with("xmlsec") {
            xml.replacen("Hello, World!", "Hello, World?", 1)
        } else {
            xml.replacen("Here is some data", "Here is some date", 1)
        };
        assert_ne!(content, xml, "{name}: content changed");
        let e = verify_str(&content, &trust).map(|_| ()).expect_err(name);
        assert!(
            matches!(e, VerifyError::DigestMismatch { .. }),
            "{name}: {e}"
        );

        // A DigestValue byte: SignedInfo changes, so the signature no longer verifies.
        let digest = replace_signature_value(&xml, "DigestValue", |b| b[0] ^= 0x01);
        let e = verify_str(&digest, &trust).map(|_| ()).expect_err(name);
        assert!(matches!(e, VerifyError::InvalidSignature(_)), "{name}: {e}");

        // One bit of the SignatureValue.
        let bit = replace_signature_value(&xml, "SignatureValue", |b| b[7] ^= 0x10);
        let e = verify_str(&bit, &trust).map(|_| ()).expect_err(name);
        assert!(matches!(e, VerifyError::InvalidSignature(_)), "{name}: {e}");

        // s and r swapped, and the whole value reversed (the byte orders others get wrong).
        let swapped = replace_signature_value(&xml, "SignatureValue", |b| {
            let half = b.len() / 2;
            b.rotate_left(half);
        });
        let e = verify_str(&swapped, &trust).map(|_| ()).expect_err(name);
        assert!(matches!(e, VerifyError::InvalidSignature(_)), "{name}: {e}");
        let reversed = replace_signature_value(&xml, "SignatureValue", |b| b.reverse());
        let e = verify_str(&reversed, &trust).map(|_| ()).expect_err(name);
        assert!(matches!(e, VerifyError::InvalidSignature(_)), "{name}: {e}");

        // One byte short, and one byte long: refused before OpenSSL sees them.
        for change in [-1i32, 1] {
            let wrong = replace_signature_value(&xml, "SignatureValue", |b| {
                if change < 0 {
                    b.pop();
                } else {
                    b.push(0);
                }
            });
            let e = verify_str(&wrong, &trust).map(|_| ()).expect_err(name);
            assert!(
                matches!(e, VerifyError::Dsig(DsigError::MalformedSignatureValue(_))),
                "{name}: {e}"
            );
        }
    }
}

#[test]
fn a_certificate_whose_key_disagrees_with_the_signature_method_is_refused() {
    engine();
    // xmlsec's 2012-256 document with its leaf swapped for the 512-bit one (same issuer, so
    // the chain is valid): the key type contradicts SignatureMethod.
    let xml = read("xmlsec/enveloped-gost2012-256.xml");
    let der = |pem: &str| {
        BASE64.encode(
            X509::from_pem(read(pem).as_bytes())
                .expect("pem")
                .to_der()
                .expect("der"),
        )
    };
    let leaf256 = der("xmlsec/gost-2012-256-cert.pem");
    assert!(xml.contains(&leaf256) || xml.replace(['\n', '\r'], "").contains(&leaf256));
    let doc = xml::parse(xml.as_bytes()).expect("parses");
    let certs: Vec<NodeId> = doc
        .descendants_or_self(doc.root())
        .into_iter()
        .filter(|n| {
            doc.element(*n)
                .is_some_and(|e| e.is(DSIG_NAMESPACE, "X509Certificate"))
        })
        .collect();
    let mut swapped = doc.clone();
    let last = *certs.last().expect("leaf");
    swapped.set_text(last, &der("xmlsec/gost-2012-512-cert.pem"));
    let e = dsig::verify(&swapped, &xmlsec_trust(), &policy())
        .map(|_| ())
        .expect_err("refused");
    match e {
        VerifyError::Dsig(DsigError::KeyMismatch { method, key, .. }) => {
            assert_eq!(method, GOST2012_256_URI);
            assert!(key.contains("512-bit"), "{key}");
        }
        other => panic!("expected KeyMismatch, got {other}"),
    }
    // An ECDSA signer under a GOST method: the same refusal.
    let ec = Pki::new(KeyKind::EcP256);
    let mut with_ec = doc.clone();
    with_ec.set_text(last, &BASE64.encode(ec.signer.to_der().expect("der")));
    let mut trust = xmlsec_trust();
    trust.add_certificate(ec.ca.clone());
    let e = dsig::verify(&with_ec, &trust, &policy())
        .map(|_| ())
        .expect_err("refused");
    assert!(
        matches!(e, VerifyError::Dsig(DsigError::KeyMismatch { .. })),
        "{e}"
    );
}

#[test]
fn only_the_enveloped_xpath_expression_is_accepted() {
    engine();
    let xml = read("xmlsec/enveloped-gost2012-256.xml");
    let xpath = "<XPath xmlns:dsig=\"http://www.w3.org/2000/09/xmldsig#\">not(ancestor-or-self::dsig:Signature)</XPath>";
    assert!(xml.contains(xpath), "the vector's XPath transform");
    // Each variant changes SignedInfo, but the transform is refused before any signature
    // check: the refusal names the XPath transform (for the XPath moved before the
    // enveloped-signature transform, the enveloped-signature transform that follows it: the
    // XPath alone is an accepted form, an enveloped-signature transform after it is not).
    let variants = [
        // Another expression.
        xml.replace(
            "not(ancestor-or-self::dsig:Signature)",
            "not(ancestor-or-self::dsig:Object)",
        ),
        // The prefix bound to another namespace.
        xml.replace(
            "xmlns:dsig=\"http://www.w3.org/2000/09/xmldsig#\">not",
            "xmlns:dsig=\"urn:not-dsig\">not",
        ),
        // Before the enveloped-signature transform instead of after it.
        {
            let env = "<Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>";
            let xp_start = xml.find("<Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\">").expect("xpath transform");
            let xp_end = xp_start + xml[xp_start..].find("</Transform>").expect("end") + "</Transform>".len();
            let xp = &xml[xp_start..xp_end];
            let without = format!("{}{}", &xml[..xp_start], &xml[xp_end..]);
            without.replacen(env, &format!("{xp}{env}"), 1)
        },
        // Twice.
        xml.replacen(
            "</Transforms>",
            &format!("<Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\">{xpath}</Transform></Transforms>"),
            1,
        ),
        // Extra text after the expression.
        xml.replace(
            "not(ancestor-or-self::dsig:Signature)",
            "not(ancestor-or-self::dsig:Signature) or true()",
        ),
    ];
    for (i, v) in variants.iter().enumerate() {
        assert_ne!(v, &xml, "variant {i} changes the document");
        let e = verify_str(v, &xmlsec_trust())
            .map(|_| ())
            .expect_err("refused");
        match e {
            VerifyError::UnsupportedTransform(t) => {
                let expected = if i == 2 {
                    "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
                } else {
                    "http://www.w3.org/TR/1999/REC-xpath-19991116"
                };
                assert_eq!(t, expected, "variant {i}")
            }
            other => panic!("variant {i}: expected UnsupportedTransform, got {other}"),
        }
    }
    // The exact form (the vector itself) is accepted.
    verify_str(&xml, &xmlsec_trust()).expect("the vector verifies");
}

#[test]
fn a_gost_key_signs_with_its_own_digest_and_refuses_another_explicit_one() {
    engine();
    let (key, _, _) = gost_pki(KeyKind::Gost2012_512);
    // Default options name SHA-256; the GOST key signs with Streebog-512 instead.
    let signed = sign_document(&key, C14nOptions::exclusive());
    assert!(signed.xml.contains(DigestMethod::GOST_512.uri));
    assert!(!signed.xml.contains(DigestMethod::SHA256.uri));
    let mut doc = xml::parse(b"<a>text</a>").expect("parses");
    for digest in [DigestMethod::SHA256, DigestMethod::GOST_256] {
        let options = SignOptions {
            digest,
            digest_explicit: true,
            ..SignOptions::default()
        };
        let e = dsig::sign_enveloped(&mut doc, &SignTarget::Document, &key, &options)
            .map(|_| ())
            .expect_err("refused");
        match e {
            SignError::DigestNotForKey { digest: d, own, .. } => {
                assert_eq!(d, digest.name);
                assert_eq!(own, "gost2012-512");
            }
            other => panic!("expected DigestNotForKey, got {other}"),
        }
    }
    // The key's own digest, given explicitly, is fine.
    let options = SignOptions {
        digest: DigestMethod::GOST_512,
        digest_explicit: true,
        ..SignOptions::default()
    };
    dsig::sign_enveloped(&mut doc, &SignTarget::Document, &key, &options).expect("signs");
    // A non-GOST key with a GOST digest finds no scheme.
    let ec = Pki::new(KeyKind::EcP256);
    let mut doc = xml::parse(b"<a>text</a>").expect("parses");
    let options = SignOptions {
        digest: DigestMethod::GOST_256,
        digest_explicit: true,
        ..SignOptions::default()
    };
    let e = dsig::sign_enveloped(&mut doc, &SignTarget::Document, &ec.signing_key(), &options)
        .map(|_| ())
        .expect_err("refused");
    assert!(matches!(e, SignError::NoScheme("gost2012-256")), "{e}");
}

#[test]
fn gost_r_34_10_2001_verifies_but_never_signs() {
    engine();
    let key = SigningKey::from_pem(
        read("xmlsec/gost-2001-key.pem").as_bytes(),
        Some(read("xmlsec/gost-2001-cert.pem").as_bytes()),
    )
    .expect("xmlsec's 2001 key");
    let mut doc = xml::parse(b"<a>text</a>").expect("parses");
    for digest in [DigestMethod::GOST94, DigestMethod::SHA256] {
        let options = SignOptions {
            digest,
            ..SignOptions::default()
        };
        let e = dsig::sign_enveloped(&mut doc, &SignTarget::Document, &key, &options)
            .map(|_| ())
            .expect_err("2001 does not sign");
        assert!(
            matches!(
                e,
                SignError::Dsig(DsigError::Key(_)) | SignError::NoScheme(_)
            ),
            "{digest:?}: {e}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Without the engine

/// Run by `without_the_engine_gost_fails_naming_the_package` in a child process whose
/// `OPENSSL_ENGINES` points nowhere, so the engine cannot load; ignored in a normal run.
#[test]
#[ignore = "run in a child process without the GOST engine"]
fn child_without_engine() {
    let e = tereze_gost_engine::load().expect_err("the engine must not load here");
    assert!(e.to_string().contains("libengine-gost-openssl"), "{e}");
    let e = generate_key(KeyKind::Gost2012_256).expect_err("no GOST key generation");
    assert!(matches!(e, DsigError::AlgorithmUnavailable { .. }), "{e}");
    assert!(e.to_string().contains("libengine-gost-openssl"), "{e}");
    let e = DigestMethod::GOST_256
        .digest(b"x")
        .expect_err("no Streebog");
    assert!(e.to_string().contains("libengine-gost-openssl"), "{e}");
    let xml = read("xmlsec/enveloped-gost2012-256.xml");
    let e = verify_str(&xml, &xmlsec_trust())
        .map(|_| ())
        .expect_err("no GOST verification");
    match e {
        VerifyError::Dsig(DsigError::AlgorithmUnavailable { uri, engine }) => {
            assert_eq!(uri, GOST2012_256_URI);
            assert!(engine.is_some());
        }
        other => panic!("expected AlgorithmUnavailable, got {other}"),
    }
    // Everything else still works.
    let ec = Pki::new(KeyKind::EcP256);
    let mut doc = xml::parse(b"<a>text</a>").expect("parses");
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        &ec.signing_key(),
        &SignOptions::default(),
    )
    .expect("ECDSA signs without the GOST engine");
}

#[test]
fn without_the_engine_gost_fails_naming_the_package() {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child_without_engine",
            "--nocapture",
        ])
        .env("OPENSSL_ENGINES", "/nonexistent/tereze-no-engines")
        // No configuration file either, in case the machine's loads the engine.
        .env("OPENSSL_CONF", "/dev/null")
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key on the GOST test parameter set (`id-GostR3410-2001-TestParamSet`, 1.2.643.2.2.35.0),
/// made by the CLI: we neither sign with it nor accept a signature by it, even a valid one.
#[test]
fn a_key_on_an_unlisted_parameter_set_is_refused_both_ways() {
    engine();
    require_cli();
    let dir = tempfile::tempdir().expect("temp dir");
    let p = |n: &str| dir.path().join(n);
    let run = |c: &mut Command| {
        let out = c.output().expect("openssl runs");
        assert!(out.status.success(), "{out:?}");
        out
    };
    run(openssl()
        .args([
            "genpkey",
            "-algorithm",
            "gost2012_256",
            "-pkeyopt",
            "paramset:0",
            "-out",
        ])
        .arg(p("test.key")));
    run(openssl()
        .args([
            "req",
            "-x509",
            "-new",
            "-md_gost12_256",
            "-subj",
            "/CN=test paramset",
            "-days",
            "30",
            "-key",
        ])
        .arg(p("test.key"))
        .arg("-out")
        .arg(p("test.pem")));
    let key_pem = std::fs::read(p("test.key")).expect("key");
    let cert_pem = std::fs::read(p("test.pem")).expect("cert");
    let test_key = SigningKey::from_pem(&key_pem, Some(&cert_pem)).expect("reads");

    // Signing is refused.
    let mut doc = xml::parse(b"<a>text</a>").expect("parses");
    let e = dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        &test_key,
        &SignOptions::default(),
    )
    .map(|_| ())
    .expect_err("refused");
    match e {
        SignError::Dsig(DsigError::UnknownParameterSet { oid, .. }) => {
            assert_eq!(oid, "1.2.643.2.2.35.0")
        }
        other => panic!("expected UnknownParameterSet, got {other}"),
    }

    // A document whose (valid) signature the CLI made with that key: sign with a listed key,
    // then put the test certificate in KeyInfo and the CLI's signature of the same SignedInfo.
    let (key, _, _) = gost_pki(KeyKind::Gost2012_256);
    let signed = sign_document(&key, C14nOptions::exclusive());
    let doc = xml::parse(signed.xml.as_bytes()).expect("parses");
    let signed_info = c14n::canonicalize(
        &doc,
        NodeSet::subtree(find(&doc, "SignedInfo")),
        &signed.c14n,
    );
    std::fs::write(p("si.c14n"), &signed_info).expect("write");
    run(openssl()
        .args(["dgst", "-md_gost12_256", "-sign"])
        .arg(p("test.key"))
        .arg("-out")
        .arg(p("sig.bin"))
        .arg(p("si.c14n")));
    let sig = std::fs::read(p("sig.bin")).expect("signature");
    let test_cert = X509::from_pem(&cert_pem).expect("cert");
    let mut forged = doc.clone();
    forged.set_text(find(&forged, "SignatureValue"), &BASE64.encode(&sig));
    forged.set_text(
        find(&forged, "X509Certificate"),
        &BASE64.encode(test_cert.to_der().expect("der")),
    );
    let mut trust = TrustStore::new();
    trust.add_certificate(test_cert);
    let e = dsig::verify(&forged, &trust, &VerifyPolicy::default())
        .map(|_| ())
        .expect_err("refused");
    match e {
        VerifyError::Dsig(DsigError::UnknownParameterSet { oid, .. }) => {
            assert_eq!(oid, "1.2.643.2.2.35.0")
        }
        other => panic!("expected UnknownParameterSet, got {other}"),
    }
}
