//! Translation and envelope building for the 4 KB Kazakh export declaration: national bytes
//! in → EAEU document → envelope in canonical form out, what a node does per submission
//! before signing. `cargo bench -p tereze-codecs --bench translate`.

use chrono::DateTime;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tereze_codecs::envelope::{
    Body, DocumentRef, Envelope, Header, MessageKind, Participant, VERSION,
};
use tereze_codecs::translate::Catalog;
use tereze_codecs::xml;
use tereze_reference_data::Directories;
use uuid::Uuid;

const KZ: &[u8] = include_bytes!("../samples/kz.export-declaration/valid-grain.xml");

fn party(country: &str, authority: &str) -> Participant {
    Participant {
        country: country.into(),
        authority: authority.into(),
    }
}

fn bench(c: &mut Criterion) {
    let catalog = Catalog::builtin().expect("mappings");
    let all_dirs = Directories::builtin();
    let dirs = all_dirs.today();
    let created = DateTime::parse_from_rfc3339("2026-11-24T09:30:00+05:00").expect("time");
    let mut g = c.benchmark_group("translate-kz-export-declaration");
    g.throughput(Throughput::Bytes(KZ.len() as u64));
    g.bench_function("national-to-eaeu", |b| {
        b.iter(|| {
            let doc = xml::parse(KZ).expect("parses");
            catalog
                .translate(&dirs, "kz.export-declaration", "eaeu", &doc)
                .expect("translates")
        })
    });
    g.bench_function("national-to-envelope", |b| {
        b.iter(|| {
            let doc = xml::parse(KZ).expect("parses");
            let out = catalog
                .translate(&dirs, "kz.export-declaration", "eaeu", &doc)
                .expect("translates");
            let model = out[0].model.as_ref().expect("EAEU result");
            let env = Envelope {
                version: VERSION,
                header: Header {
                    message_id: Uuid::new_v4(),
                    conversation_id: Uuid::new_v4(),
                    procedure_id: Uuid::new_v4(),
                    in_reply_to: None,
                    process: model.process.clone(),
                    message: model.message.clone(),
                    transaction: model.transaction.clone(),
                    kind: MessageKind::Request,
                    sender: party("KZ", "KGD"),
                    recipient: party("RU", "FCS"),
                    created_at: created,
                    expires_at: None,
                    document: DocumentRef {
                        type_code: model.type_code.clone(),
                        version: model.version.clone(),
                        issuing_authority: party("KZ", "KGD"),
                    },
                    traders: vec!["KZ120440789014".into(), "RU7701234560".into()],
                    attachments: Vec::new(),
                    national_signatures: Vec::new(),
                },
                body: Body::from_document(&out[0].document),
            };
            env.to_canonical_xml().expect("valid")
        })
    });
    g.bench_function("kz-to-ru", |b| {
        b.iter(|| {
            let doc = xml::parse(KZ).expect("parses");
            catalog
                .translate(
                    &dirs,
                    "kz.export-declaration",
                    "ru.export-declaration",
                    &doc,
                )
                .expect("translates")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
