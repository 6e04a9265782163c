//! The envelope: strict reading with field paths, versioning, byte-exact canonical round trip,
//! and signing under the strict verification policy.

use chrono::{DateTime, FixedOffset, TimeZone};
use proptest::prelude::*;
use tereze_codecs::dsig::{self, SignOptions, SignTarget, TrustStore, VerifyPolicy};
use tereze_codecs::envelope::{
    AttachmentRef, Body, DocumentRef, Envelope, EnvelopeError, Header, MessageKind,
    NationalSignature, NationalVerdict, Participant, SigningTimeSource, Version, VERSION,
    VERSION_1_0,
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
        version: VERSION_1_0,
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
            attachments: Vec::new(),
            national_signatures: Vec::new(),
        },
        body: Body::from_document(&xml::parse(SAMPLE).expect("sample parses")),
    }
}

#[test]
fn building_around_a_parsed_document_gives_the_same_envelope() {
    let env = envelope();
    let content = xml::parse(SAMPLE).expect("sample parses");
    let built = Envelope::build_document(VERSION_1_0, &env.header, &content).expect("builds");
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

/// Reads `wire` back, asserting it is `env` and serialises to the same bytes; returns it.
fn read_back(env: &Envelope, wire: &str) -> Envelope {
    let back = Envelope::parse(wire.as_bytes()).expect("reads back");
    assert_eq!(&back, env);
    assert_eq!(back.to_canonical_xml().expect("valid"), wire);
    back
}

/// Asserts that `env` comes back from its JSON unchanged.
fn assert_json_round_trips(env: &Envelope) {
    let json = serde_json::to_string(env).expect("json");
    assert_eq!(
        &serde_json::from_str::<Envelope>(&json).expect("from json"),
        env
    );
}

#[test]
fn canonical_envelope_round_trips_byte_exactly() {
    let env = envelope();
    let wire = env.to_canonical_xml().expect("valid");
    let back = read_back(&env, &wire);
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

// ------------------------------------------------------------------------- attachments

/// What `envelope()` wrote before attachments existed (generated by the code of that commit).
const WITHOUT_ATTACHMENTS: &str = include_str!("fixtures/envelope-without-attachments.xml");

const PDF_SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const PNG_SHA256: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn digest(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("test hex");
    }
    out
}

fn attachments() -> Vec<AttachmentRef> {
    vec![
        AttachmentRef {
            id: "declaration.pdf".into(),
            media_type: "application/pdf".into(),
            size: 1_048_576,
            sha256: digest(PDF_SHA256),
        },
        AttachmentRef {
            id: "scan-1_page.png".into(),
            media_type: "image/png".into(),
            size: 0,
            sha256: digest(PNG_SHA256),
        },
    ]
}

fn with_attachments() -> Envelope {
    let mut env = envelope();
    env.header.attachments = attachments();
    env
}

fn by_reference() -> Envelope {
    let mut env = with_attachments();
    env.body = Body::by_reference("declaration.pdf");
    env
}

fn signed_wire(env: &Envelope) -> (String, TrustStore) {
    let (key, cert) = self_signed_signer(KeyKind::EcP256, "KZ node", 1).expect("signer");
    let mut doc = env.to_document().expect("valid");
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        &key,
        &SignOptions::default(),
    )
    .expect("signs");
    let mut trust = TrustStore::new();
    trust.add_certificate(cert);
    (doc.to_xml(), trust)
}

#[test]
fn an_envelope_without_attachments_writes_the_bytes_it_wrote_before() {
    let env = envelope();
    assert!(env.header.attachments.is_empty());
    let wire = env.to_canonical_xml().expect("valid");
    assert_eq!(wire, WITHOUT_ATTACHMENTS);
    assert!(!wire.contains("Attachment"));
    let back = Envelope::parse(WITHOUT_ATTACHMENTS.as_bytes()).expect("reads");
    assert_eq!(back, env);
    assert_eq!(back.body.attachment(), None);
    // Nor does the JSON form grow a field.
    let json = serde_json::to_string(&env).expect("json");
    assert!(!json.contains("attachment"), "{json}");
}

#[test]
fn attachments_round_trip_byte_exactly() {
    let env = with_attachments();
    let wire = env.to_canonical_xml().expect("valid");
    let expected = format!(
        concat!(
            r#"<env:Trader>RU7701234560</env:Trader></env:Traders><env:Attachments>"#,
            r#"<env:Attachment id="declaration.pdf" mediaType="application/pdf" sha256="{}" size="1048576"></env:Attachment>"#,
            r#"<env:Attachment id="scan-1_page.png" mediaType="image/png" sha256="{}" size="0"></env:Attachment>"#,
            r#"</env:Attachments></env:Header><env:Body>"#
        ),
        PDF_SHA256, PNG_SHA256
    );
    assert!(wire.contains(&expected), "{wire}");
    let back = read_back(&env, &wire);
    assert_eq!(back.header.attachments, attachments());
    // Apart from the new element, the bytes are those of the envelope without attachments.
    let start = wire.find("<env:Attachments>").expect("attachments");
    let end = wire.find("</env:Attachments>").expect("end") + "</env:Attachments>".len();
    assert_eq!(
        format!("{}{}", &wire[..start], &wire[end..]),
        WITHOUT_ATTACHMENTS
    );
    assert_json_round_trips(&env);
}

#[test]
fn the_signature_covers_the_attachment_references() {
    let (wire, trust) = signed_wire(&with_attachments());
    let received = xml::parse(wire.as_bytes()).expect("parses");
    let verified = dsig::verify(&received, &trust, &VerifyPolicy::default()).expect("verifies");
    let signed = verified.references[0].document().expect("signed view");
    assert_eq!(
        Envelope::from_document(&signed).expect("reads"),
        with_attachments()
    );

    // One hex digit of one digest changed (still a well-formed, valid envelope): refused.
    let tampered_digest = PNG_SHA256.replacen("0123", "1123", 1);
    let tampered = wire.replacen(PNG_SHA256, &tampered_digest, 1);
    assert_ne!(tampered, wire);
    Envelope::parse(tampered.as_bytes()).expect("still a valid envelope");
    let doc = xml::parse(tampered.as_bytes()).expect("parses");
    assert!(dsig::verify(&doc, &trust, &VerifyPolicy::default()).is_err());
    // Nor can a size or a media type be changed.
    for (from, to) in [
        (r#"size="1048576""#, r#"size="1048577""#),
        (r#"mediaType="image/png""#, r#"mediaType="image/gif""#),
    ] {
        let doc = xml::parse(wire.replacen(from, to, 1).as_bytes()).expect("parses");
        assert!(
            dsig::verify(&doc, &trust, &VerifyPolicy::default()).is_err(),
            "{from} -> {to}"
        );
    }
}

#[test]
fn each_bad_attachment_value_is_named_by_its_path() {
    let wire = with_attachments().to_canonical_xml().expect("valid");
    const A1: &str = "Envelope/Header/Attachments/Attachment[1]";
    const A2: &str = "Envelope/Header/Attachments/Attachment[2]";
    let upper = PNG_SHA256.to_uppercase();
    let short = &PNG_SHA256[..62];
    let long = format!("{PNG_SHA256}00");
    let not_hex = PNG_SHA256.replacen('a', "g", 1);
    let too_long_id = format!(r#"id="{}""#, "a".repeat(65));
    let longest_id = format!(r#"id="{}""#, "a".repeat(64));
    let cases: Vec<(&str, String, String)> = vec![
        (
            r#"id="scan-1_page.png""#,
            r#"id="scan 1.png""#.into(),
            format!("{A2}/@id"),
        ),
        (
            r#"id="declaration.pdf""#,
            r#"id="..""#.into(),
            format!("{A1}/@id"),
        ),
        (
            r#"id="declaration.pdf""#,
            r#"id=".""#.into(),
            format!("{A1}/@id"),
        ),
        (
            r#"id="declaration.pdf""#,
            r#"id=".hidden""#.into(),
            format!("{A1}/@id"),
        ),
        (
            r#"id="declaration.pdf""#,
            r#"id="-rf""#.into(),
            format!("{A1}/@id"),
        ),
        (
            r#"id="declaration.pdf""#,
            r#"id="a/b.pdf""#.into(),
            format!("{A1}/@id"),
        ),
        (
            r#"id="declaration.pdf""#,
            r#"id="a\b.pdf""#.into(),
            format!("{A1}/@id"),
        ),
        (
            r#"id="declaration.pdf""#,
            r#"id="""#.into(),
            format!("{A1}/@id"),
        ),
        (
            r#"id="declaration.pdf""#,
            r#"id="déclaration.pdf""#.into(),
            format!("{A1}/@id"),
        ),
        (r#"id="declaration.pdf""#, too_long_id, format!("{A1}/@id")),
        (
            r#"id="scan-1_page.png""#,
            r#"id="declaration.pdf""#.into(),
            format!("{A2}/@id"),
        ),
        (
            r#"id="scan-1_page.png""#,
            r#"id="Declaration.PDF""#.into(),
            format!("{A2}/@id"),
        ),
        (
            r#"mediaType="application/pdf""#,
            r#"mediaType="pdf""#.into(),
            format!("{A1}/@mediaType"),
        ),
        (
            r#"mediaType="application/pdf""#,
            r#"mediaType="application/pdf/x""#.into(),
            format!("{A1}/@mediaType"),
        ),
        (
            r#"mediaType="application/pdf""#,
            r#"mediaType="application /pdf""#.into(),
            format!("{A1}/@mediaType"),
        ),
        (
            r#"mediaType="application/pdf""#,
            r#"mediaType="/pdf""#.into(),
            format!("{A1}/@mediaType"),
        ),
        (
            r#"mediaType="application/pdf""#,
            r#"mediaType="a/""#.into(),
            format!("{A1}/@mediaType"),
        ),
        (
            r#"mediaType="application/pdf""#,
            r#"mediaType="text/plain;charset=utf-8""#.into(),
            format!("{A1}/@mediaType"),
        ),
        (
            r#"mediaType="application/pdf""#,
            format!(r#"mediaType="application/{}""#, "x".repeat(116)),
            format!("{A1}/@mediaType"),
        ),
        (
            r#"size="1048576""#,
            r#"size="1 MiB""#.into(),
            format!("{A1}/@size"),
        ),
        (
            r#"size="1048576""#,
            r#"size="-1""#.into(),
            format!("{A1}/@size"),
        ),
        (
            r#"size="1048576""#,
            r#"size="+1""#.into(),
            format!("{A1}/@size"),
        ),
        (
            r#"size="1048576""#,
            r#"size="01048576""#.into(),
            format!("{A1}/@size"),
        ),
        (
            r#"size="1048576""#,
            r#"size="""#.into(),
            format!("{A1}/@size"),
        ),
        (
            r#"size="1048576""#,
            r#"size="18446744073709551616""#.into(),
            format!("{A1}/@size"),
        ),
        (PNG_SHA256, upper, format!("{A2}/@sha256")),
        (PNG_SHA256, short.into(), format!("{A2}/@sha256")),
        (PNG_SHA256, long, format!("{A2}/@sha256")),
        (PNG_SHA256, not_hex, format!("{A2}/@sha256")),
        (r#" size="1048576""#, String::new(), format!("{A1}/@size")),
        (
            r#" id="declaration.pdf""#,
            String::new(),
            format!("{A1}/@id"),
        ),
        (
            r#" size="0""#,
            r#" size="0" name="x""#.into(),
            format!("{A2}/@name"),
        ),
        (
            r#"size="0"></env:Attachment>"#,
            r#"size="0">text</env:Attachment>"#.into(),
            A2.into(),
        ),
        (
            r#"size="0"></env:Attachment>"#,
            r#"size="0"><env:Part/></env:Attachment>"#.into(),
            A2.into(),
        ),
        (
            "</env:Attachments>",
            "<env:File/></env:Attachments>".into(),
            "Envelope/Header/Attachments/env:File".into(),
        ),
    ];
    for (from, to, path) in &cases {
        assert!(wire.contains(from), "{from}");
        let e = refused(&wire.replacen(from, to, 1));
        assert_eq!(path_of(&e), path, "{from} -> {to}: {e}");
    }
    // The limits themselves are accepted.
    for (from, to) in [
        (r#"id="declaration.pdf""#, longest_id),
        (
            r#"mediaType="application/pdf""#,
            r#"mediaType="a/b""#.into(),
        ),
        (
            r#"mediaType="application/pdf""#,
            format!(r#"mediaType="application/{}""#, "x".repeat(115)),
        ),
        (r#"size="1048576""#, r#"size="18446744073709551615""#.into()),
    ] {
        Envelope::parse(wire.replacen(from, &to, 1).as_bytes())
            .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
    }

    // Present but empty, like Traders.
    let start = wire.find("<env:Attachments>").expect("attachments");
    let end = wire.find("</env:Attachments>").expect("end");
    let empty = format!(
        "{}{}",
        &wire[..start + "<env:Attachments>".len()],
        &wire[end..]
    );
    let e = refused(&empty);
    assert_eq!(path_of(&e), "Envelope/Header/Attachments", "{e}");
    assert!(e.to_string().contains("present but empty"), "{e}");

    // In its place: the last child of the header, after Traders.
    let ts = wire.find("<env:Traders>").expect("traders");
    let te = wire.find("</env:Traders>").expect("end") + "</env:Traders>".len();
    let attachments_xml = &wire[start..end + "</env:Attachments>".len()];
    let swapped = format!(
        "{}{}{}{}",
        &wire[..ts],
        attachments_xml,
        &wire[ts..te],
        &wire[end + "</env:Attachments>".len()..]
    );
    assert_eq!(path_of(&refused(&swapped)), "Envelope/Header/env:Traders");

    // The writer checks the same rules.
    for (i, change) in [
        (
            0usize,
            AttachmentRef {
                id: "..".into(),
                ..attachments()[0].clone()
            },
        ),
        (
            1,
            AttachmentRef {
                id: "declaration.pdf".into(),
                ..attachments()[1].clone()
            },
        ),
        (
            1,
            AttachmentRef {
                media_type: "image".into(),
                ..attachments()[1].clone()
            },
        ),
    ] {
        let mut env = with_attachments();
        env.header.attachments[i] = change;
        let e = env.to_canonical_xml().map(|_| ()).expect_err("refused");
        assert!(
            path_of(&e).starts_with(&format!(
                "Envelope/Header/Attachments/Attachment[{}]/@",
                i + 1
            )),
            "{e}"
        );
    }
}

#[test]
fn an_attachment_id_may_not_repeat_an_identifier_of_the_body() {
    // The sample declaration has Id="declaration"; an attachment `id` is an XML identifier
    // too, and the verifier refuses duplicates, so the envelope could never verify.
    let mut env = with_attachments();
    env.header.attachments[1].id = "declaration".into();
    let e = env.to_canonical_xml().map(|_| ()).expect_err("refused");
    assert_eq!(
        path_of(&e),
        "Envelope/Header/Attachments/Attachment[2]/@id",
        "{e}"
    );
    let content = xml::parse(SAMPLE).expect("sample parses");
    let e = Envelope::build_document(VERSION_1_0, &env.header, &content)
        .map(|_| ())
        .expect_err("refused");
    assert_eq!(path_of(&e), "Envelope/Header/Attachments/Attachment[2]/@id");
    let wire = with_attachments().to_canonical_xml().expect("valid");
    let e = refused(&wire.replacen(r#"id="scan-1_page.png""#, r#"id="phyto-ref""#, 1));
    assert_eq!(
        path_of(&e),
        "Envelope/Header/Attachments/Attachment[2]/@id",
        "{e}"
    );
}

#[test]
fn a_body_by_reference_reads_back_and_is_signed() {
    let env = by_reference();
    assert_eq!(env.body.attachment(), Some("declaration.pdf"));
    assert_eq!(envelope().body.attachment(), None);
    let wire = env.to_canonical_xml().expect("valid");
    assert!(
        wire.ends_with(r#"<env:Body><env:AttachmentBody ref="declaration.pdf"></env:AttachmentBody></env:Body></env:Envelope>"#),
        "{wire}"
    );
    let back = read_back(&env, &wire);
    assert_eq!(back.body.attachment(), Some("declaration.pdf"));
    // document() is the marker itself.
    let marker = back.body.document().expect("marker parses");
    assert!(marker
        .element(marker.root())
        .is_some_and(|e| e.is("urn:tereze:envelope", "AttachmentBody")));

    // Built directly, it is the same envelope.
    let built = Envelope::build_document_by_reference(VERSION_1_0, &env.header, "declaration.pdf")
        .expect("builds");
    let canonical = |d: &xml::Document| {
        tereze_codecs::c14n::canonicalize_document(
            d,
            &tereze_codecs::c14n::C14nOptions::exclusive(),
        )
    };
    assert_eq!(canonical(&built), wire.as_bytes());
    let e = Envelope::build_document_by_reference(VERSION_1_0, &env.header, "missing.pdf")
        .map(|_| ())
        .expect_err("refused");
    assert_eq!(path_of(&e), "Envelope/Body/AttachmentBody/@ref", "{e}");
    let mut unlisted = env.clone();
    unlisted.header.attachments.remove(0);
    assert_eq!(
        path_of(
            &unlisted
                .to_canonical_xml()
                .map(|_| ())
                .expect_err("refused")
        ),
        "Envelope/Body/AttachmentBody/@ref"
    );

    // Signed and verified, read from the signed bytes.
    let (signed, trust) = signed_wire(&env);
    let received = xml::parse(signed.as_bytes()).expect("parses");
    let verified = dsig::verify(&received, &trust, &VerifyPolicy::default()).expect("verifies");
    let view = verified.references[0].document().expect("signed view");
    let read = Envelope::from_document(&view).expect("reads");
    assert_eq!(read.body.attachment(), Some("declaration.pdf"));
    let redirected = signed.replacen(r#"ref="declaration.pdf""#, r#"ref="scan-1_page.png""#, 1);
    let doc = xml::parse(redirected.as_bytes()).expect("parses");
    assert!(dsig::verify(&doc, &trust, &VerifyPolicy::default()).is_err());

    // JSON keeps the reference.
    let json = serde_json::to_string(&env).expect("json");
    let from_json = serde_json::from_str::<Envelope>(&json).expect("from json");
    assert_eq!(from_json, env);
    assert_eq!(from_json.body.attachment(), Some("declaration.pdf"));
}

#[test]
fn a_bad_body_reference_is_named_by_its_path() {
    let wire = by_reference().to_canonical_xml().expect("valid");
    const B: &str = "Envelope/Body/AttachmentBody";
    let cases = [
        (
            r#"ref="declaration.pdf""#,
            r#"ref="nothing.pdf""#,
            format!("{B}/@ref"),
        ),
        (
            r#"ref="declaration.pdf""#,
            r#"ref="DECLARATION.pdf""#,
            format!("{B}/@ref"),
        ),
        (r#"ref="declaration.pdf""#, r#"ref="""#, format!("{B}/@ref")),
        (r#" ref="declaration.pdf""#, "", format!("{B}/@ref")),
        (
            r#" ref="declaration.pdf""#,
            r#" id="x" ref="declaration.pdf""#,
            format!("{B}/@id"),
        ),
        (
            "></env:AttachmentBody>",
            "><d:Doc xmlns:d=\"urn:d\"/></env:AttachmentBody>",
            B.to_owned(),
        ),
        (
            "></env:AttachmentBody>",
            ">inline</env:AttachmentBody>",
            B.to_owned(),
        ),
    ];
    for (from, to, path) in &cases {
        assert!(wire.contains(from), "{from}");
        let e = refused(&wire.replacen(from, to, 1));
        assert_eq!(path_of(&e), path, "{from} -> {to}: {e}");
    }
    // Without attachments in the header, any reference is refused.
    let start = wire.find("<env:Attachments>").expect("attachments");
    let end = wire.find("</env:Attachments>").expect("end") + "</env:Attachments>".len();
    let bare = format!("{}{}", &wire[..start], &wire[end..]);
    assert_eq!(path_of(&refused(&bare)), format!("{B}/@ref"));
    // A reference beside a document is two body elements.
    let two = wire.replace("</env:Body>", "<x/></env:Body>");
    assert!(refused(&two).to_string().contains("exactly one document"));
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

fn attachment() -> impl Strategy<Value = AttachmentRef> {
    (
        "[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
        "[a-z]{1,12}/[a-z0-9.+-]{1,20}",
        any::<u64>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(id, media_type, size, sha256)| AttachmentRef {
            id,
            media_type,
            size,
            sha256,
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
        prop::collection::vec(attachment(), 0..4),
    )
        .prop_filter_map(
            "sender differs from recipient",
            |(ids, codes, kind, parties, times, doc, traders, mut attachments)| {
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
                    attachments: {
                        // Ids are unique ignoring case.
                        let mut seen = std::collections::HashSet::new();
                        attachments
                            .retain(|a: &AttachmentRef| seen.insert(a.id.to_ascii_lowercase()));
                        attachments
                    },
                    national_signatures: Vec::new(),
                })
            },
        )
}

proptest! {
    #[test]
    fn generated_envelopes_serialise_parse_and_compare_equal(h in header(), by_ref in any::<prop::sample::Index>()) {
        let body = match h.attachments.len() {
            // Half the envelopes with attachments carry one of them as the body.
            n if n > 0 && by_ref.index(2 * n) < n => Body::by_reference(&h.attachments[by_ref.index(n)].id),
            _ => Body::from_document(&xml::parse(b"<d:Doc xmlns:d=\"urn:EEC:R:CC:01:001:Doc:v1.0.0\"><d:A>1 &amp; 2</d:A></d:Doc>").expect("body")),
        };
        let env = Envelope { version: VERSION_1_0, header: h, body };
        let wire = env.to_canonical_xml().expect("generated headers are valid");
        let back = Envelope::parse(wire.as_bytes()).expect("reads back");
        prop_assert_eq!(&back, &env);
        prop_assert_eq!(back.to_canonical_xml().expect("valid"), wire);
        // JSON (the operator API's form) round-trips too.
        let json = serde_json::to_string(&env).expect("json");
        prop_assert_eq!(serde_json::from_str::<Envelope>(&json).expect("from json"), env);
    }
}

/// A valid record: the inspector's signature, as intake writes it.
fn inspector_signature() -> NationalSignature {
    NationalSignature {
        verdict: NationalVerdict::Valid,
        covers: Some("/ФитосанитарныйСертификат".into()),
        signer: Some("CN=Inspector Aidarov, O=KZ Phytosanitary Inspection, C=KZ".into()),
        issuer: Some("CN=KZ National CA, C=KZ".into()),
        serial: Some("1F3A".into()),
        signature_method: Some("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256".into()),
        signing_time: at("2026-11-24T09:29:00+05:00"),
        time_source: SigningTimeSource::Intake,
    }
}

fn with_national(records: Vec<NationalSignature>) -> Envelope {
    let mut env = envelope();
    env.header.national_signatures = records;
    env.version = Version::for_header(&env.header);
    env
}

#[test]
fn national_signatures_round_trip_as_format_1_1() {
    let refused_record = NationalSignature {
        verdict: NationalVerdict::Invalid(
            "digest of reference \"\" does not match: the signed content was changed".into(),
        ),
        covers: None,
        signer: None,
        issuer: None,
        serial: None,
        signature_method: None,
        signing_time: at("2026-11-24T09:30:00+05:00"),
        time_source: SigningTimeSource::Signature,
    };
    let env = with_national(vec![inspector_signature(), refused_record]);
    assert_eq!(env.version, VERSION);
    let wire = env.to_canonical_xml().expect("valid");
    assert!(wire.contains(r#"version="1.1""#), "{wire}");
    assert!(
        wire.contains(
            r#"<env:NationalSignatures><env:NationalSignature verdict="valid"><env:Covers>"#
        ),
        "{wire}"
    );
    assert!(
        wire.contains(r#"<env:SigningTime source="signature">"#),
        "{wire}"
    );
    read_back(&env, &wire);
    assert_json_round_trips(&env);
}

#[test]
fn an_envelope_without_national_signatures_stays_1_0_and_1_0_envelopes_are_read() {
    let env = envelope();
    assert_eq!(Version::for_header(&env.header), VERSION_1_0);
    let wire = env.to_canonical_xml().expect("valid");
    assert!(wire.contains(r#"version="1.0""#));
    assert!(!wire.contains("NationalSignatures"));
    let back = Envelope::parse(wire.as_bytes()).expect("a 1.0 envelope reads");
    assert!(back.header.national_signatures.is_empty());
    // A 1.1 envelope without the element reads too.
    let v11 = Envelope::parse(
        wire.replacen(r#"version="1.0""#, r#"version="1.1""#, 1)
            .as_bytes(),
    )
    .expect("1.1 without records");
    assert!(v11.header.national_signatures.is_empty());
}

#[test]
fn national_signatures_in_a_1_0_envelope_are_refused_naming_the_version() {
    let wire = with_national(vec![inspector_signature()])
        .to_canonical_xml()
        .expect("valid");
    let e = refused(&wire.replacen(r#"version="1.1""#, r#"version="1.0""#, 1));
    assert_eq!(path_of(&e), "Envelope/Header/NationalSignatures");
    assert!(
        e.to_string().contains("not part of envelope format 1.0"),
        "{e}"
    );
    // And a writer cannot put them in a 1.0 envelope either.
    let content = xml::parse(SAMPLE).expect("sample");
    let mut h = envelope().header;
    h.national_signatures = vec![inspector_signature()];
    let e = Envelope::build_document(VERSION_1_0, &h, &content).expect_err("1.0 cannot");
    assert_eq!(path_of(&e), "Envelope/@version");
}

#[test]
fn national_signature_records_are_read_strictly_with_their_paths() {
    let wire = with_national(vec![inspector_signature()])
        .to_canonical_xml()
        .expect("valid");
    let n = "Envelope/Header/NationalSignatures/NationalSignature[1]";
    let cases: &[(&str, &str, String)] = &[
        (
            r#"verdict="valid""#,
            r#"verdict="ok""#,
            format!("{n}/@verdict"),
        ),
        (
            r#"verdict="valid""#,
            r#"verdict="invalid""#,
            format!("{n}/Reason"),
        ),
        (
            r#"verdict="valid""#,
            r#"verdict="unsigned""#,
            format!("{n}/Covers"),
        ),
        (
            r#"source="intake""#,
            r#"source="clock""#,
            format!("{n}/SigningTime/@source"),
        ),
        (
            "<env:SerialNumber>1F3A<",
            "<env:SerialNumber>1f3a<",
            format!("{n}/SerialNumber"),
        ),
        (
            "<env:SerialNumber>1F3A</env:SerialNumber>",
            "",
            format!("{n}/SerialNumber"),
        ),
        (
            "2026-11-24T09:29:00+05:00",
            "24.11.2026",
            format!("{n}/SigningTime"),
        ),
        (
            "</env:SigningTime>",
            "</env:SigningTime><env:Note>x</env:Note>",
            format!("{n}/env:Note"),
        ),
        (
            "<env:NationalSignature verdict",
            "<env:NationalSignature extra=\"1\" verdict",
            format!("{n}/@extra"),
        ),
        (
            "#ecdsa-sha256</env:SignatureMethod>",
            "#ecdsa-sha256 </env:SignatureMethod>",
            format!("{n}/SignatureMethod"),
        ),
    ];
    for (from, to, path) in cases {
        assert!(wire.contains(from), "{from}");
        let e = refused(&wire.replacen(from, to, 1));
        assert_eq!(path_of(&e), path.as_str(), "{from} -> {to}: {e}");
    }
    let start = wire.find("<env:NationalSignature ").expect("record");
    let end = wire.find("</env:NationalSignatures>").expect("end");
    let empty = format!("{}{}", &wire[..start], &wire[end..]);
    assert_eq!(
        path_of(&refused(&empty)),
        "Envelope/Header/NationalSignatures"
    );
}

#[test]
fn an_unsigned_record_names_nothing_but_the_intake_time() {
    let unsigned = NationalSignature {
        verdict: NationalVerdict::Unsigned,
        covers: None,
        signer: None,
        issuer: None,
        serial: None,
        signature_method: None,
        signing_time: at("2026-11-24T09:30:00+05:00"),
        time_source: SigningTimeSource::Intake,
    };
    let env = with_national(vec![unsigned.clone()]);
    let back = Envelope::parse(env.to_canonical_xml().expect("valid").as_bytes()).expect("reads");
    assert_eq!(back.header.national_signatures, vec![unsigned.clone()]);
    let mut h = env.header.clone();
    h.national_signatures = vec![unsigned.clone(), inspector_signature()];
    let e = h.validate().expect_err("unsigned beside a signature");
    assert_eq!(
        path_of(&e),
        "Envelope/Header/NationalSignatures/NationalSignature[1]/@verdict"
    );
    h.national_signatures = vec![NationalSignature {
        time_source: SigningTimeSource::Signature,
        ..unsigned
    }];
    let e = h
        .validate()
        .expect_err("an unsigned document claims no time");
    assert!(path_of(&e).ends_with("SigningTime/@source"), "{e}");
}
