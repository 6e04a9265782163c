//! Other projects' published XMLDSig test vectors (`tests/vectors/published/`, sources and
//! licences in `tests/vectors/README.md`), each with the verdict it must get: the in-scope ones
//! (ECDSA, RSA-PSS; RSA-SHA-1 only under `allow_sha1`) verify against the keys their project
//! ships, and the rest are refused, each naming its reason (DSA, HMAC, MD5, a 1024-bit RSA key,
//! an XPath other than the enveloped idioms, a detached external reference, an enveloping
//! signature (also a real Austrian citizen-card XAdES signature), a DTD).

use std::path::{Path, PathBuf};

use openssl::pkey::PKey;
use openssl::x509::X509;
use tereze_codecs::dsig::{DsigError, TrustStore, VerifyError, VerifyPolicy};
use tereze_codecs::xml::{self, Document};

pub fn published(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/published")
        .join(rel)
}

pub fn bytes(rel: &str) -> Vec<u8> {
    std::fs::read(published(rel)).unwrap_or_else(|e| panic!("vendored vector {rel}: {e}"))
}

pub fn parse(rel: &str) -> Document {
    xml::parse(&bytes(rel)).unwrap_or_else(|e| panic!("{rel} parses: {e}"))
}

/// A bare public key that xmlsec's tests hand to `xmlsec1 --pubkey-pem` (the vectors name it
/// only by `KeyName`).
pub fn xmlsec_key(name: &str) -> TrustStore {
    let key = PKey::public_key_from_pem(&bytes(&format!("xmlsec/{name}"))).expect("public key");
    let mut t = TrustStore::new();
    t.add_key(key);
    t
}

/// Phaos's test CA (2002, RSA 1024), the anchor its vectors chain to.
pub fn phaos_ca() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_certificate(X509::from_der(&bytes("phaos/rsa-ca-cert.der")).expect("Phaos CA"));
    t
}

/// 2009-01-01, the time xmlsec's own test run verifies Phaos's vectors at (their certificates
/// expired in 2012).
pub const PHAOS_AT: i64 = 1_230_768_000;

pub fn sha1_policy() -> VerifyPolicy {
    VerifyPolicy {
        allow_sha1: true,
        ..VerifyPolicy::default()
    }
}

/// (vector, trust, policy) for each vector that must verify as an enveloped signature over the
/// whole document, and the text its signed content holds.
pub fn accepted() -> Vec<(&'static str, TrustStore, VerifyPolicy, &'static str)> {
    vec![
        (
            "xmlsec/enveloped-sha256-ecdsa-sha256.xml",
            xmlsec_key("ec-prime256v1-pubkey.pem"),
            VerifyPolicy::default(),
            "Hello, World!",
        ),
        (
            "xmlsec/enveloped-sha512-ecdsa-sha512.xml",
            xmlsec_key("ec-prime521v1-pubkey.pem"),
            VerifyPolicy::default(),
            "Hello, World!",
        ),
        (
            "xmlsec/enveloped-sha256-rsa-pss-sha256.xml",
            xmlsec_key("rsa-4096-pubkey.pem"),
            VerifyPolicy::default(),
            "Hello, World!",
        ),
        (
            "xmlsec/enveloped-sha1-rsa-sha1.xml",
            xmlsec_key("rsa-4096-pubkey.pem"),
            sha1_policy(),
            "Hello, World!",
        ),
    ]
}

/// How a refused vector must be refused.
pub enum Refusal {
    Parse(fn(&xml::ParseError) -> bool),
    Verify(fn(&VerifyError) -> bool),
}

pub fn refused() -> Vec<(&'static str, TrustStore, VerifyPolicy, Refusal)> {
    use Refusal::*;
    let at_2009 = VerifyPolicy {
        at: Some(PHAOS_AT),
        ..sha1_policy()
    };
    vec![
        (
            "xmlsec/enveloped-sha1-rsa-sha1.xml",
            xmlsec_key("rsa-4096-pubkey.pem"),
            VerifyPolicy::default(),
            Verify(
                |e| matches!(e, VerifyError::Sha1NotAllowed(u) if u.ends_with("#rsa-sha1") || u.ends_with("#sha1")),
            ),
        ),
        (
            "xmlsec/enveloped-sha1-dsa-sha1.xml",
            TrustStore::new(),
            sha1_policy(),
            Verify(
                |e| matches!(e, VerifyError::UnsupportedAlgorithm(u) if u.ends_with("#dsa-sha1")),
            ),
        ),
        (
            "xmlsec/enveloping-sha256-hmac-sha256.xml",
            TrustStore::new(),
            VerifyPolicy::default(),
            Verify(
                |e| matches!(e, VerifyError::UnsupportedAlgorithm(u) if u.ends_with("#hmac-sha256")),
            ),
        ),
        (
            "xmlsec/enveloping-md5-rsa-md5.xml",
            xmlsec_key("rsa-4096-pubkey.pem"),
            sha1_policy(),
            Verify(|e| matches!(e, VerifyError::UnsupportedAlgorithm(u) if u.ends_with("md5"))),
        ),
        (
            "xmlsec/enveloping-sha256-ecdsa-sha256.xml",
            xmlsec_key("ec-prime256v1-pubkey.pem"),
            VerifyPolicy::default(),
            Verify(|e| matches!(e, VerifyError::ReferenceInsideSignature { .. })),
        ),
        (
            "phaos/signature-rsa-enveloped.xml",
            phaos_ca(),
            at_2009.clone(),
            Verify(|e| matches!(e, VerifyError::Dsig(DsigError::WeakKey(_)))),
        ),
        (
            "phaos/signature-rsa-xpath-transform-enveloped.xml",
            phaos_ca(),
            at_2009.clone(),
            Verify(|e| matches!(e, VerifyError::UnsupportedTransform(_))),
        ),
        (
            "phaos/signature-rsa-detached.xml",
            phaos_ca(),
            at_2009,
            Verify(
                |e| matches!(e, VerifyError::UnsupportedReferenceUri(u) if u.starts_with("http")),
            ),
        ),
        (
            "merlin-xpath-filter2-three/sign-spec.xml",
            TrustStore::new(),
            sha1_policy(),
            Verify(
                |e| matches!(e, VerifyError::UnsupportedAlgorithm(u) if u.ends_with("#dsa-sha1")),
            ),
        ),
        (
            "santuario/buergerkarte-testresp.xml",
            TrustStore::new(),
            sha1_policy(),
            // Enveloping (the signed data sits in its ds:Object): refused for that before its
            // XPath Filter 2.0 intersect, base64, XSLT and XPointer references are reached.
            Verify(|e| matches!(e, VerifyError::ReferenceInsideSignature { .. })),
        ),
        (
            "santuario/manifestSignatureWrapping.xml",
            TrustStore::new(),
            VerifyPolicy::default(),
            Parse(|e| matches!(e.kind, xml::ParseErrorKind::DoctypeForbidden)),
        ),
    ]
}
