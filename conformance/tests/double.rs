//! Proves the cases can fail: the suite against a deliberately broken node, a test double that
//! speaks the protocol over mutual TLS but recognises every well-formed envelope it is sent
//! (it skips the signature, envelope and recognition checks), knows no change sets or
//! traders, and answers UNIMPLEMENTED to the attachment transfers. The cases for the checks it
//! skips must fail; the transport cases, which it does honour, must pass.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tereze_codecs::pki::{
    generate_key, issue_certificate, issue_tls_certificate, CertificateSpec, KeyKind,
};
use tereze_conformance::proto::ChangeSetDocument;
use tereze_conformance::{Config, Outcome, Target, Tester};
use tereze_testkit::stub::{self, Deliver, StubExchange};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

const RECEIPT: &[u8] = b"<rc:Receipt xmlns:rc=\"urn:tereze:receipt\" version=\"1.0\"><rc:Entry><rc:Verdict>recognised</rc:Verdict></rc:Entry></rc:Receipt>";

/// Recognises whatever parses as XML, is not a hub, offers an empty trust space, streams
/// two change sets out of order (set 2 before set 1) and answers any trader with an unsigned
/// document.
fn gullible() -> StubExchange {
    let set = |n: u64| ChangeSetDocument {
        directory: "X".into(),
        number: n,
        document: format!(
            "<rd:ChangeSet xmlns:rd=\"urn:tereze:reference-data\" Directory=\"X\" Number=\"{n}\"/>"
        )
        .into_bytes(),
    };
    StubExchange {
        deliver: Arc::new(Deliver::WellFormed(RECEIPT.to_vec())),
        takes_receipts: false,
        trust: Arc::new((Vec::new(), 1)),
        change_sets: Arc::new(vec![set(2), set(1)]),
        trader_answer: Some(Arc::new(b"<unsigned/>".to_vec())),
        ..Default::default()
    }
}

fn pem(c: &openssl::x509::X509) -> Vec<u8> {
    c.to_pem().expect("pem")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_skips_its_checks_fails_the_matching_cases() {
    // One CA for the double's TLS and the tester (as a trust space would list them).
    let ca_key = generate_key(KeyKind::EcP256).expect("key");
    let ca = issue_certificate(
        &CertificateSpec {
            subject: &[("C", "RU"), ("CN", "double CA")],
            not_before_days: -1,
            not_after_days: 30,
            is_ca: true,
        },
        &ca_key,
        None,
    )
    .expect("ca");
    let leaf = |cn: &'static str, tls: bool| {
        let key = generate_key(KeyKind::EcP256).expect("key");
        let s = CertificateSpec {
            subject: &[("C", "KZ"), ("CN", cn)],
            not_before_days: -1,
            not_after_days: 30,
            is_ca: false,
        };
        let cert = if tls {
            issue_tls_certificate(&s, &key, Some((&ca, &ca_key)), &["double.test"])
        } else {
            issue_certificate(&s, &key, Some((&ca, &ca_key)))
        }
        .expect("cert");
        (pem(&cert), key.private_key_to_pem_pkcs8().expect("pem"))
    };
    let (server_cert, server_key) = leaf("double node", true);
    let (client_cert, client_key) = leaf("tester node", true);
    let (signer_cert, signer_key) = leaf("tester signer", false);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&server_cert, &server_key))
        .client_ca_root(Certificate::from_pem(pem(&ca)));
    let server = stub::serve(listener, tls, gullible()).expect("tls");

    let config = Config {
        target: Target {
            address: address.to_string(),
            server_name: "double.test".into(),
            ca_pem: pem(&ca),
            state: "RU".into(),
        },
        tester: Tester {
            state: "KZ".into(),
            tls_cert_pem: client_cert,
            tls_key_pem: client_key,
            signer_cert_pem: signer_cert,
            signer_key_pem: signer_key,
            issuer: Some((pem(&ca), ca_key.private_key_to_pem_pkcs8().expect("pem"))),
            listen: None,
        },
        case_timeout: Duration::from_secs(30),
    };
    let report = tereze_conformance::run(&config, &[], |_, _, _| {}).await;
    server.abort();
    let by_id: BTreeMap<&str, &Outcome> = report
        .results
        .iter()
        .map(|r| (r.info.id, &r.outcome))
        .collect();
    let failed = |id: &str| matches!(by_id.get(id), Some(Outcome::Fail { .. }));
    let passed = |id: &str| matches!(by_id.get(id), Some(Outcome::Pass { .. }));
    // The checks the double skips: each matching case fails, saying what it expected.
    for id in [
        "envelope.unknown-major-version",
        "envelope.missing-message-id",
        "envelope.bad-digest",
        "envelope.batch-too-large",
        "signature.receipt-signed",
        "signature.tampered-body",
        "signature.sha1",
        "signature.partial",
        "signature.missing",
        "signature.xsw-duplicate-id",
        "signature.unknown-transform",
        "signature.untrusted-signer",
        "signature.expired-signer",
        "recognition.signing-time-in-future",
        "recognition.process-not-permitted",
        "recognition.document-invalid",
        "recognition.permits-missing",
        "recognition.trader-invalid",
        "recognition.trader-unknown",
        "reference.change-sets-in-order",
        "reference.code-ended-before-the-document",
        "traders.signed-answer",
        "traders.other-state-refused",
        "attachments.tampered-chunk-refused-and-re-requested",
        "attachments.wrong-offset-refused",
        "attachments.digest-mismatch-discarded",
        "attachments.forged-digest-rejected",
        "attachments.undeclared-transfer-not-enough",
        "attachments.declared-never-sent",
    ] {
        assert!(failed(id), "{id}: {:?}", by_id.get(id));
        if let Some(Outcome::Fail { message }) = by_id.get(id) {
            assert!(!message.trim().is_empty(), "{id}: a failure says why");
        }
    }
    // A node without the attachment RPCs fails the cases that transfer, for that reason.
    for id in [
        "attachments.tampered-chunk-refused-and-re-requested",
        "attachments.wrong-offset-refused",
        "attachments.digest-mismatch-discarded",
        "attachments.forged-digest-rejected",
    ] {
        let Some(Outcome::Fail { message }) = by_id.get(id) else {
            panic!("{id}: {:?}", by_id.get(id));
        };
        assert!(message.contains("Unimplemented"), "{id}: {message}");
    }
    // What it does honour passes: the suite does not fail everything.
    for id in [
        "transport.mutual-tls",
        "transport.no-client-certificate",
        "transport.unknown-ca",
        "transport.plaintext-refused",
        "transport.unknown-protocol-version",
        "envelope.valid",
        "envelope.not-well-formed",
        "envelope.doctype",
    ] {
        assert!(passed(id), "{id}: {:?}", by_id.get(id));
    }
    assert!(report.failed() >= 20, "{} failed", report.failed());
}
