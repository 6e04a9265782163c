//! Runs parse and verify of the signed sample in a loop, for profilers
//! (`valgrind --tool=callgrind target/release/examples/profile_verify`).
use tereze_codecs::dsig::{self, SignOptions, SignTarget, TrustStore, VerifyPolicy};
use tereze_codecs::pki::{self_signed_signer, KeyKind};
use tereze_codecs::xml;

fn main() {
    let sample = include_bytes!("../samples/eaeu.export-declaration/valid-grain.xml");
    let (signing, cert) = self_signed_signer(KeyKind::EcP256, "profile signer", 1).expect("signer");
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
