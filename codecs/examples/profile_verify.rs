//! Runs parse and verify of the signed sample in a loop, for profilers
//! (`valgrind --tool=callgrind target/release/examples/profile_verify`).
use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey, TrustStore, VerifyPolicy};
use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};
use tereze_codecs::xml;

fn main() {
    let sample = include_bytes!("../samples/export-declaration.xml");
    let key = generate_key(KeyKind::EcP256).expect("key");
    let cert = issue_certificate(
        &CertificateSpec {
            subject: &[("CN", "p")],
            not_before_days: -1,
            not_after_days: 1,
            is_ca: false,
        },
        &key,
        None,
    )
    .expect("cert");
    let signing = SigningKey::from_pem(
        &key.private_key_to_pem_pkcs8().expect("pem"),
        Some(&cert.to_pem().expect("pem")),
    )
    .expect("key");
    let mut trust = TrustStore::new();
    trust.add_certificate(cert);
    let mut doc = xml::parse(sample).expect("parses");
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        &signing,
        &SignOptions::default(),
    )
    .expect("signs");
    let wire = doc.to_xml().into_bytes();
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    for _ in 0..n {
        let d = xml::parse(&wire).expect("parses");
        dsig::verify(&d, &trust, &VerifyPolicy::default()).expect("verifies");
    }
}
