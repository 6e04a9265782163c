//! The envelope: strict reading with field paths, versioning, byte-exact canonical round trip,
//! and signing under the strict verification policy.

use chrono::{DateTime, FixedOffset, TimeZone};
use proptest::prelude::*;
use tereze_codecs::dsig::{self, SignOptions, SignTarget, TrustStore, VerifyPolicy};
use tereze_codecs::envelope::{
    Body, DocumentRef, Envelope, EnvelopeError, Header, MessageKind, Participant, VERSION,
};
use tereze_codecs::pki::{self_signed_signer, KeyKind};
use tereze_codecs::xml;
use uuid::Uuid;

const SAMPLE: &[u8] = include_bytes!("../samples/eaeu.export-declaration/valid-grain.xml");

fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("test time")
}

fn party(country: &str, authority: &str) -> Participant {
    Participant {
        country: country.into(),
        authority: authority.into(),
    }
}

fn envelope() -> Envelope {
    Envelope {
        version: VERSION,
        header: Header {
            message_id: Uuid::parse_str("6f3c9a0e-58b2-4d1e-9c1a-2f0b7d4e8a11").expect("uuid"),
            conversation_id: Uuid::parse_str("0b9e7c52-1f0a-4c55-8a3e-5d2c9f1b7e44").expect("uuid"),
            procedure_id: Uuid::parse_str("d2a8f0c1-7b3e-4e6a-9f25-11c0e5b8a9d7").expect("uuid"),
            in_reply_to: None,
            process: "P.CC.01".into(),
            message: "P.CC.01.MSG.001".into(),
            transaction: "P.CC.01.TRN.001".into(),
            kind: MessageKind::Request,
            sender: party("KZ", "KGD"),
            recipient: party("RU", "FCS"),
            created_at: at("2026-11-24T09:30:00+05:00"),
            expires_at: Some(at("2026-11-25T09:30:00+05:00")),
            document: DocumentRef {
                type_code: "R.CC.01.001".into(),
                version: "1.0.0".into(),
                issuing_authority: party("KZ", "KGD"),
            },
            traders: vec!["KZ120440789014".into(), "RU7701234560".into()],
        },
        body: Body::from_document(&xml::parse(SAMPLE).expect("sample parses")),
    }
}

#[test]
fn building_around_a_parsed_document_gives_the_same_envelope() {
    let env = envelope();
    let content = xml::parse(SAMPLE).expect("sample parses");
    let built = Envelope::build_document(VERSION, &env.header, &content).expect("builds");
    let canonical = |d: &xml::Document| {
        tereze_codecs::c14n::canonicalize_document(
            d,
            &tereze_codecs::c14n::C14nOptions::exclusive(),
        )
    };
    assert_eq!(
        canonical(&built),
        canonical(&env.to_document().expect("valid")),
        "same exclusive canonical form, hence the same signature input"
    );
    let read = Envelope::from_document(&xml::parse(built.to_xml().as_bytes()).expect("parses"))
        .expect("reads");
    assert_eq!(read, env);
}

#[test]
fn canonical_envelope_round_trips_byte_exactly() {
    let env = envelope();
    let wire = env.to_canonical_xml().expect("valid");
    let back = Envelope::parse(wire.as_bytes()).expect("reads back");
    assert_eq!(back, env);
    assert_eq!(back.to_canonical_xml().expect("valid"), wire);
    assert!(wire.starts_with(r#"<env:Envelope xmlns:env="urn:tereze:envelope" version="1.0"><env:Header><wsa:MessageID xmlns:wsa="http://www.w3.org/2005/08/addressing">urn:uuid:6f3c9a0e-58b2-4d1e-9c1a-2f0b7d4e8a11</wsa:MessageID>"#), "{wire}");
    let body = back.body.document().expect("body parses");
    assert!(body
        .text_content(body.root())
        .contains("KZ-PHY-2026-004417"));
}

#[test]
fn a_signed_envelope_verifies_strictly_and_still_reads() {
    let (key, cert) = self_signed_signer(KeyKind::EcP256, "KZ node", 1).expect("signer");
    let mut doc = envelope().to_document().expect("valid");
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        &key,
        &SignOptions::default(),
    )
    .expect("signs");
    let wire = doc.to_xml();
    let received = xml::parse(wire.as_bytes()).expect("parses");
    let mut trust = TrustStore::new();
    trust.add_certificate(cert);
    let verified = dsig::verify(&received, &trust, &VerifyPolicy::default()).expect("verifies");
    // Read the envelope from the signed bytes only.
    let signed = verified.references[0].document().expect("signed view");
    assert_eq!(Envelope::from_document(&signed).expect("reads"), envelope());
    assert_eq!(
        Envelope::from_document(&received).expect("reads with the signature"),
        envelope()
    );
}

fn refused(wire: &str) -> EnvelopeError {
    Envelope::parse(wire.as_bytes())
        .map(|_| ())
        .expect_err("refused")
}

fn path_of(e: &EnvelopeError) -> &str {
    match e {
        EnvelopeError::Invalid { path, .. } => path,
        other => panic!("expected an invalid field, got {other}"),
    }
}

#[test]
fn each_bad_field_is_named_by_its_path() {
    let wire = envelope().to_canonical_xml().expect("valid");
    let cases = [
        (
            "urn:uuid:6f3c9a0e-58b2-4d1e-9c1a-2f0b7d4e8a11",
            "6f3c9a0e",
            "Envelope/Header/MessageID",
        ),
        (
            "<env:Process>P.CC.01</env:Process>",
            "<env:Process>CC.01</env:Process>",
            "Envelope/Header/Process",
        ),
        (
            "P.CC.01.MSG.001",
            "P.CC.02.MSG.001",
            "Envelope/Header/Message",
        ),
        (
            "P.CC.01.TRN.001",
            "P.CC.01.TRN.1",
            "Envelope/Header/Transaction",
        ),
        (">request<", ">demand<", "Envelope/Header/Kind"),
        (
            r#"<env:Sender authority="KGD" country="KZ">"#,
            r#"<env:Sender authority="KGD" country="kz">"#,
            "Envelope/Header/Sender/@country",
        ),
        (
            r#"<env:Recipient authority="FCS" country="RU">"#,
            r#"<env:Recipient authority="F C S" country="RU">"#,
            "Envelope/Header/Recipient/@authority",
        ),
        (
            "2026-11-24T09:30:00+05:00",
            "24.11.2026 09:30",
            "Envelope/Header/CreatedAt",
        ),
        (
            "2026-11-25T09:30:00+05:00",
            "2026-11-23T09:30:00+05:00",
            "Envelope/Header/ExpiresAt",
        ),
        (
            r#"type="R.CC.01.001""#,
            r#"type="CC.01.001""#,
            "Envelope/Header/Document/@type",
        ),
        (
            r#"version="1.0.0""#,
            r#"version="1.0""#,
            "Envelope/Header/Document/@version",
        ),
        ("KZ120440789014", "kz1", "Envelope/Header/Traders/Trader[1]"),
    ];
    for (from, to, path) in cases {
        assert!(wire.contains(from), "{from}");
        let e = refused(&wire.replacen(from, to, 1));
        assert_eq!(path_of(&e), path, "{from} -> {to}: {e}");
    }
    let renamed = wire.replace("env:ConversationID>", "env:ConversationId>");
    assert_eq!(
        path_of(&refused(&renamed)),
        "Envelope/Header/ConversationID"
    );
}

#[test]
fn missing_unknown_and_misplaced_elements_are_refused() {
    let wire = envelope().to_canonical_xml().expect("valid");
    let start = wire.find("<env:Kind>").expect("kind");
    let end = wire.find("</env:Kind>").expect("kind end") + "</env:Kind>".len();
    let no_kind = format!("{}{}", &wire[..start], &wire[end..]);
    let e = refused(&no_kind);
    assert_eq!(path_of(&e), "Envelope/Header/Kind");
    assert!(e.to_string().contains("required; found env:Sender"), "{e}");

    let extra = wire.replace("<env:Body>", "<env:Extra/><env:Body>");
    assert_eq!(path_of(&refused(&extra)), "Envelope/Body");
    let unknown = wire.replace(
        "</env:Header>",
        "<env:Priority>1</env:Priority></env:Header>",
    );
    let e = refused(&unknown);
    assert_eq!(path_of(&e), "Envelope/Header/env:Priority");
    let two = wire.replace("</env:Body>", "<x/></env:Body>");
    assert!(refused(&two).to_string().contains("exactly one document"));
    let other_root = wire.replace("urn:tereze:envelope", "urn:other");
    assert_eq!(path_of(&refused(&other_root)), "Envelope");
}

#[test]
fn unknown_major_versions_are_refused_minor_ones_read() {
    let wire = envelope().to_canonical_xml().expect("valid");
    let e = refused(&wire.replacen(r#"version="1.0""#, r#"version="2.0""#, 1));
    assert!(
        matches!(e, EnvelopeError::UnsupportedVersion { supported: 1, .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("version 2.0 is not supported"),
        "{e}"
    );
    let newer = Envelope::parse(
        wire.replacen(r#"version="1.0""#, r#"version="1.7""#, 1)
            .as_bytes(),
    )
    .expect("a newer minor version reads");
    assert_eq!(newer.version.minor, 7);
    assert_eq!(
        path_of(&refused(&wire.replacen(
            r#"version="1.0""#,
            r#"version="one""#,
            1
        ))),
        "Envelope/@version"
    );
}

#[test]
fn header_rules_that_span_fields() {
    let mut env = envelope();
    env.header.recipient = env.header.sender.clone();
    assert_eq!(
        path_of(&env.to_canonical_xml().map(|_| ()).expect_err("refused")),
        "Envelope/Header/Recipient"
    );
    let mut env = envelope();
    env.header.in_reply_to = Some(env.header.message_id);
    assert_eq!(
        path_of(&env.to_canonical_xml().map(|_| ()).expect_err("refused")),
        "Envelope/Header/RelatesTo"
    );
}

fn code(prefix: &'static str) -> impl Strategy<Value = String> {
    ("[A-Z]{2}", 0u8..100).prop_map(move |(area, n)| format!("{prefix}.{area}.{n:02}"))
}

fn participant() -> impl Strategy<Value = Participant> {
    ("[A-Z]{2}", "[A-Z0-9_.-]{1,12}")
        .prop_map(|(country, authority)| Participant { country, authority })
}

fn time() -> impl Strategy<Value = DateTime<FixedOffset>> {
    (1_600_000_000i64..2_000_000_000, -12i32..14, 0u32..1000).prop_map(|(secs, tz, millis)| {
        FixedOffset::east_opt(tz * 3600)
            .expect("offset")
            .timestamp_opt(secs, millis * 1_000_000)
            .single()
            .expect("time")
    })
}

fn header() -> impl Strategy<Value = Header> {
    (
        (
            any::<u128>(),
            any::<u128>(),
            any::<u128>(),
            prop::option::of(any::<u128>()),
        ),
        (code("P"), 0u16..1000, 0u16..1000),
        prop::sample::select(MessageKind::ALL.to_vec()),
        (participant(), participant(), participant()),
        (time(), prop::option::of(1i64..10_000_000)),
        (
            "[A-Z]{2}",
            0u8..100,
            0u16..1000,
            (0u16..99, 0u16..99, 0u16..99),
        ),
        prop::collection::vec("[A-Z]{2}[0-9A-Z]{5,20}", 0..4),
    )
        .prop_filter_map(
            "sender differs from recipient",
            |(ids, codes, kind, parties, times, doc, traders)| {
                let (sender, recipient, issuer) = parties;
                if sender == recipient {
                    return None;
                }
                let (process, msg, trn) = codes;
                let (area, nn, nnn, (a, b, c)) = doc;
                let in_reply_to = ids
                    .3
                    .map(Uuid::from_u128)
                    .filter(|u| *u != Uuid::from_u128(ids.0));
                Some(Header {
                    message_id: Uuid::from_u128(ids.0),
                    conversation_id: Uuid::from_u128(ids.1),
                    procedure_id: Uuid::from_u128(ids.2),
                    in_reply_to,
                    message: format!("{process}.MSG.{msg:03}"),
                    transaction: format!("{process}.TRN.{trn:03}"),
                    process,
                    kind,
                    sender,
                    recipient,
                    created_at: times.0,
                    expires_at: times.1.map(|d| times.0 + chrono::Duration::seconds(d)),
                    document: DocumentRef {
                        type_code: format!("R.{area}.{nn:02}.{nnn:03}"),
                        version: format!("{a}.{b}.{c}"),
                        issuing_authority: issuer,
                    },
                    traders,
                })
            },
        )
}

proptest! {
    #[test]
    fn generated_envelopes_serialise_parse_and_compare_equal(h in header()) {
        let env = Envelope { version: VERSION, header: h, body: Body::from_document(&xml::parse(b"<d:Doc xmlns:d=\"urn:EEC:R:CC:01:001:Doc:v1.0.0\"><d:A>1 &amp; 2</d:A></d:Doc>").expect("body")) };
        let wire = env.to_canonical_xml().expect("generated headers are valid");
        let back = Envelope::parse(wire.as_bytes()).expect("reads back");
        prop_assert_eq!(&back, &env);
        prop_assert_eq!(back.to_canonical_xml().expect("valid"), wire);
        // JSON (the operator API's form) round-trips too.
        let json = serde_json::to_string(&env).expect("json");
        prop_assert_eq!(serde_json::from_str::<Envelope>(&json).expect("from json"), env);
    }
}
