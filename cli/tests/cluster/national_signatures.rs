//! The issuing authority's signature on a national document, between real nodes (issue 27):
//! a KZ phytosanitary certificate signed by an inspector whose certificate a test national CA
//! issued is verified at KZ's intake (HTTP and gRPC), recorded in the signed envelope and
//! carried as the attachment `national-original`, which `tereze xml verify` checks again
//! offline; RU's recognition requires the record for phytosanitary certificates (its
//! `[[state.national_signature]]`), so a valid one is recognised, an invalid one recorded under
//! `verify` is rejected `national-signature-invalid`, and one sent without a record (policy
//! `off`) or recorded unsigned is rejected `national-signature-missing`. Under `require` KZ
//! refuses at intake what is not validly signed. Ports 29000–29190.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey};
use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};
use tereze_codecs::xml;

use crate::net::{self, wait_until, Net};

const SETTLE: Duration = Duration::from_secs(60);
const SAMPLE: &str =
    include_str!("../../../codecs/samples/kz.phytosanitary-certificate/valid-wheat.xml");
const FORMAT: &str = "kz.phytosanitary-certificate";

/// A CA (its certificate written to `dir/file`) of `org` in `country`, and a signer's key and
/// certificate issued by it.
pub(crate) fn ca_and_signer(
    dir: &Path,
    file: &str,
    country: &str,
    org: &str,
    ca: &str,
    signer: &str,
) -> SigningKey {
    let ca_key = generate_key(KeyKind::EcP256).expect("CA key");
    let ca_cert = issue_certificate(
        &CertificateSpec {
            subject: &[("C", country), ("O", org), ("CN", ca)],
            not_before_days: -1,
            not_after_days: 30,
            is_ca: true,
        },
        &ca_key,
        None,
    )
    .expect("CA");
    std::fs::write(dir.join(file), ca_cert.to_pem().expect("PEM")).expect("write");
    let key = generate_key(KeyKind::EcP256).expect("signer key");
    let cert = issue_certificate(
        &CertificateSpec {
            subject: &[("C", country), ("O", org), ("CN", signer)],
            not_before_days: -1,
            not_after_days: 30,
            is_ca: false,
        },
        &key,
        Some((&ca_cert, &ca_key)),
    )
    .expect("signer");
    SigningKey::new(key, Some(cert)).expect("signing key")
}

/// A national CA (its certificate written to `dir/national-ca.pem`) and an inspector's key
/// and certificate issued by it.
fn national_ca(dir: &Path) -> SigningKey {
    ca_and_signer(
        dir,
        "national-ca.pem",
        "KZ",
        "Agro Inspection",
        "KZ National Test CA",
        "Inspector Aidarov",
    )
}

/// `document` with `signer`'s enveloped signature over the whole of it.
pub(crate) fn signed_enveloped(document: &str, signer: &SigningKey) -> String {
    let mut doc = xml::parse(document.as_bytes()).expect("sample");
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        signer,
        &SignOptions::default(),
    )
    .expect("signs");
    doc.to_xml()
}

/// Signed, then changed: the signature no longer holds.
fn tampered(signed: &str) -> String {
    assert!(signed.contains("125 000,000"));
    signed.replacen("125 000,000", "126 000,000", 1)
}

/// RU requires a national signature on phytosanitary certificates (R.SF.01.001); KZ's node
/// verifies with `policy` (none: the default, `verify`) against the national CA.
fn cluster(base: u16, policy: Option<&str>) -> (Net, SigningKey) {
    let net = Net::init("KZ,RU", "", "", base, "");
    let p = net.dir.path().join("trust-space.toml");
    let text = std::fs::read_to_string(&p).expect("trust space");
    let code = "[[state]]\ncode = \"RU\"\n";
    let start = text.find(code).expect("RU's table") + code.len();
    let end = text[start..]
        .find("[[state]]")
        .or_else(|| text[start..].find("# Recognition"))
        .map_or(text.len(), |i| start + i);
    let with = format!(
        "{}\n[[state.national_signature]]\ndocument = \"R.SF.01.001\"\nrequired = true\n\n{}",
        &text[..end],
        &text[end..]
    );
    std::fs::write(&p, with).expect("trust space");
    let kz = net.node_dir("KZ");
    let inspector = national_ca(&kz);
    let toml = kz.join("node.toml");
    let mut config = std::fs::read_to_string(&toml).expect("node.toml");
    if let Some(policy) = policy {
        let ops = "operations = [\"submit\", \"inbox\", \"ack\", \"upload\", \"traders\", \"reference\"]\n";
        assert!(config.contains(ops), "{config}");
        config = config.replacen(ops, &format!("{ops}signature_policy = \"{policy}\"\n"), 1);
    }
    config.push_str("\n[national.signatures]\nanchors = [\"national-ca.pem\"]\n");
    std::fs::write(&toml, config).expect("node.toml");
    (net, inspector)
}

/// Submits `document` at KZ for RU over HTTP: the message id, or the refusal.
fn submit(net: &Net, document: &str) -> Result<String, (u16, Value)> {
    let body = json!({
        "format": FORMAT,
        "document": document,
        "recipient_country": "RU",
        "recipient_authority": "RSHN",
    });
    match net.http("KZ", "POST", "/v1/messages", Some(&body)) {
        (202, v) => Ok(v["messages"][0]["message_id"]
            .as_str()
            .expect("id")
            .to_owned()),
        other => Err(other),
    }
}

/// Submits `document` at KZ for RU over gRPC: the message id, or the refusal.
fn submit_grpc(net: &Net, document: &str) -> Result<String, tonic::Status> {
    let port = net.window_port("KZ");
    let document = document.as_bytes().to_vec();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async move {
            let mut w = net::window(port).await;
            w.submit(tereze_proto::SubmitRequest {
                format: FORMAT.into(),
                document,
                recipient_country: "RU".into(),
                recipient_authority: "RSHN".into(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().messages[0].message_id.clone())
        })
}

/// RU's verdict on message `id`, once KZ has it: `recognised`, or the reasons RU gave.
fn verdict(net: &Net, id: &str) -> Vec<String> {
    assert!(
        wait_until(SETTLE, || net
            .states("KZ", id)
            .iter()
            .any(|s| s == "recognised" || s == "rejected")),
        "{id}: {:?}\n{}",
        net.states("KZ", id),
        net.log("KZ")
    );
    if net.states("KZ", id).iter().any(|s| s == "recognised") {
        return vec!["recognised".into()];
    }
    crate::traders::reasons(net, id)
}

/// The envelope of message `id` in RU's inbox.
fn envelope_at_ru(net: &Net, id: &str) -> String {
    net.inbox("RU")
        .iter()
        .find(|m| m["message_id"] == id)
        .and_then(|m| m["envelope"].as_str())
        .expect("the message is in RU's inbox")
        .to_owned()
}

#[test]
fn a_certificate_signed_by_its_inspector_is_verified_recorded_kept_and_recognised() {
    let (mut net, inspector) = cluster(29000, None);
    net.start("KZ");
    net.start("RU");
    let signed = signed_enveloped(SAMPLE, &inspector);

    let by_http = submit(&net, &signed).expect("a validly signed certificate is taken in");
    let by_grpc = submit_grpc(&net, &signed).expect("and over gRPC");
    for id in [&by_http, &by_grpc] {
        assert_eq!(verdict(&net, id), ["recognised"], "{id}");
        let envelope = envelope_at_ru(&net, id);
        assert!(envelope.contains(r#"version="1.1""#), "{envelope}");
        assert!(
            envelope.contains(r#"<env:NationalSignature verdict="valid">"#),
            "{envelope}"
        );
        assert!(
            envelope.contains("CN=Inspector Aidarov")
                && envelope.contains(
                    "<env:Issuer>C=KZ, O=Agro Inspection, CN=KZ National Test CA</env:Issuer>"
                )
                && envelope.contains(r#"<env:SigningTime source="intake">"#),
            "{envelope}"
        );
        assert!(
            envelope.contains(r#"id="national-original" mediaType="application/xml""#),
            "{envelope}"
        );
        // The translation read the signed element only: no trace of the signature.
        let body = &envelope[envelope.find("<env:Body>").expect("body")..];
        assert!(!body[..body.find("</env:Body>").expect("end")].contains("SignatureValue"));
    }

    // RU holds the original as the inspector signed it, and it verifies offline.
    let (status, original) = net.http(
        "RU",
        "GET",
        &format!("/v1/messages/{by_http}/attachments/national-original"),
        None,
    );
    assert_eq!(status, 200, "{original}");
    let original = original.as_str().expect("the XML as text").to_owned();
    assert_eq!(original, signed);
    let file = net.dir.path().join("original.xml");
    std::fs::write(&file, &original).expect("write");
    let ca = net.node_dir("KZ").join("national-ca.pem");
    let (code, out, err) = net::tereze(&[
        "xml",
        "verify",
        "--trusted",
        ca.to_str().expect("utf-8"),
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CN=Inspector Aidarov"), "{out}");

    // Under `verify` an invalid signature is recorded, not refused; RU requires a valid one.
    let bad = submit(&net, &tampered(&signed)).expect("recorded, not refused");
    assert_eq!(verdict(&net, &bad), ["national-signature-invalid"]);
    // An unsigned certificate is recorded as unsigned: missing, for RU.
    let unsigned = submit_grpc(&net, SAMPLE).expect("recorded as unsigned");
    assert_eq!(verdict(&net, &unsigned), ["national-signature-missing"]);
}

#[test]
fn require_refuses_at_intake_and_off_sends_without_a_record() {
    let (mut net, inspector) = cluster(29100, Some("require"));
    net.start("KZ");
    net.start("RU");
    let signed = signed_enveloped(SAMPLE, &inspector);
    let (status, v) = submit(&net, &tampered(&signed)).expect_err("refused at intake");
    assert_eq!(status, 400, "{v}");
    let e = v["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("policy of national.client[0] is require") && e.contains("digest"),
        "{v}"
    );
    let status = submit_grpc(&net, SAMPLE).expect_err("unsigned, refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains("not signed by its issuing authority"),
        "{status:?}"
    );
    let id = submit(&net, &signed).expect("a valid one is taken in");
    assert_eq!(verdict(&net, &id), ["recognised"]);

    // With the policy off KZ records nothing, and RU, which requires it, rejects.
    net.stop("KZ");
    let toml = net.node_dir("KZ").join("node.toml");
    let config = std::fs::read_to_string(&toml).expect("node.toml");
    std::fs::write(
        &toml,
        config.replacen(
            "signature_policy = \"require\"",
            "signature_policy = \"off\"",
            1,
        ),
    )
    .expect("node.toml");
    net.start("KZ");
    let id = submit(&net, SAMPLE).expect("taken in without looking");
    assert_eq!(verdict(&net, &id), ["national-signature-missing"]);
}
