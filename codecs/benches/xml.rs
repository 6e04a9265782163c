//! C14N, sign and verify of the 4.6 KB sample export declaration, the shape of document the
//! node signs per message. `cargo bench -p tereze-codecs --bench xml`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tereze_codecs::c14n::{self, C14nOptions, NodeSet};
use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey, TrustStore, VerifyPolicy};
use tereze_codecs::pki::{self_signed_signer, KeyKind};
use tereze_codecs::xml;

const SAMPLE: &[u8] = include_bytes!("../samples/eaeu.export-declaration/valid-grain.xml");

fn signer(kind: KeyKind) -> (SigningKey, TrustStore) {
    let (key, cert) = self_signed_signer(kind, "bench signer", 1).expect("signer");
    let mut trust = TrustStore::new();
    trust.add_certificate(cert);
    (key, trust)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("xml-4.6KB");
    g.throughput(Throughput::Bytes(SAMPLE.len() as u64));
    let doc = xml::parse(SAMPLE).expect("sample parses");
    g.bench_function("parse", |b| b.iter(|| xml::parse(SAMPLE).expect("parses")));
    g.bench_function("c14n-inclusive", |b| {
        b.iter(|| c14n::canonicalize(&doc, NodeSet::document(), &C14nOptions::default()))
    });
    g.bench_function("c14n-exclusive", |b| {
        b.iter(|| c14n::canonicalize(&doc, NodeSet::document(), &C14nOptions::exclusive()))
    });
    for (name, kind) in [
        ("ecdsa-p256", KeyKind::EcP256),
        ("rsa-2048", KeyKind::Rsa(2048)),
    ] {
        let (key, trust) = signer(kind);
        let options = SignOptions::default();
        // "full": bytes in, bytes out, as the node and the python-xmlsec baseline measure it.
        g.bench_with_input(BenchmarkId::new("sign-full", name), &key, |b, key| {
            b.iter(|| {
                let mut d = xml::parse(SAMPLE).expect("parses");
                dsig::sign_enveloped(&mut d, &SignTarget::Document, key, &options).expect("signs");
                d.to_xml()
            })
        });
        let mut signed = xml::parse(SAMPLE).expect("parses");
        dsig::sign_enveloped(&mut signed, &SignTarget::Document, &key, &options).expect("signs");
        let wire = signed.to_xml().into_bytes();
        let policy = VerifyPolicy::default();
        g.bench_with_input(BenchmarkId::new("verify-full", name), &wire, |b, wire| {
            b.iter(|| {
                let d = xml::parse(wire).expect("parses");
                dsig::verify(&d, &trust, &policy).expect("verifies")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
