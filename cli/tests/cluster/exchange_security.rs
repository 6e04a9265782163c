//! Who may deliver to a node, and what it refuses: mutual TLS with certificates chaining to
//! the trust space, the node listed for the state it claims to deliver for, and items that
//! are malformed, oversize or for someone else refused with a reason and nothing stored.

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tereze_codecs::pki::{
    generate_key, issue_certificate, issue_tls_certificate, CertificateSpec, KeyKind,
};
use tereze_proto::exchange_client::ExchangeClient;
use tereze_proto::{deliver_outcome, DeliverItem, DeliverRequest, Route};
use tonic::transport::Channel;

use crate::net::{self, read, Net};

fn key() -> PKey<Private> {
    generate_key(KeyKind::EcP256).expect("key")
}

/// A node-style TLS certificate valid from `from_days` to `to_days` from now, as a client
/// identity (PEM certificate and key); `issuer` None makes a self-signed one.
fn identity(
    issuer: Option<(&X509, &PKey<Private>)>,
    from_days: i64,
    to_days: i64,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let key = key();
    let spec = CertificateSpec {
        subject: &[("CN", "node.kz.tereze.test")],
        not_before_days: from_days,
        not_after_days: to_days,
        is_ca: false,
    };
    let cert = issue_tls_certificate(&spec, &key, issuer, &["node.kz.tereze.test"]).expect("cert");
    Some((
        cert.to_pem().expect("pem"),
        key.private_key_to_pem_pkcs8().expect("pem"),
    ))
}

async fn client(
    net: &Net,
    to: &str,
    identity: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<ExchangeClient<Channel>, String> {
    let channel = net::exchange_channel(net, to, identity)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(ExchangeClient::new(channel))
}

fn item(envelope: &[u8], sender: &str, recipient: &str) -> DeliverItem {
    let digest = openssl::hash::hash(MessageDigest::sha256(), envelope)
        .expect("hash")
        .to_vec();
    DeliverItem {
        route: Some(Route {
            message_id: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            conversation_id: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            sender: sender.into(),
            recipient: recipient.into(),
            digest,
            expires_at_ms: 0,
            attachments: Vec::new(),
        }),
        envelope: envelope.to_vec(),
        ..Default::default()
    }
}

/// Delivers one item; the transport error or the refusal code.
async fn deliver(
    net: &Net,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    item: DeliverItem,
) -> Result<String, String> {
    let mut c = client(net, "RU", identity).await?;
    let r = c
        .deliver(DeliverRequest { items: vec![item] })
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
    match r.into_inner().outcomes.remove(0).outcome {
        Some(deliver_outcome::Outcome::Refused(r)) => {
            Ok(format!("refused {}: {}", r.code, r.reason))
        }
        Some(deliver_outcome::Outcome::Receipt(_)) => Ok("receipt".into()),
        other => Ok(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_nodes_deliver_and_bad_items_are_refused_without_storing() {
    let extra = "\n[limits]\nmax_message_bytes = 20000\n";
    let mut net = Net::init("KZ,RU,BY", "", "", 19600, extra);
    net.start("RU");
    let envelope = b"<not-an-envelope/>".to_vec();
    let kz = (
        read(&net, "KZ", "node-tls.pem"),
        read(&net, "KZ", "node-tls.key"),
    );

    // No client certificate: the TLS handshake is refused.
    let e = deliver(&net, None, item(&envelope, "KZ", "RU"))
        .await
        .expect_err("no client cert");
    assert!(!e.starts_with("refused"), "{e}");

    // A certificate from a CA outside the trust space.
    let rogue_ca_key = key();
    let rogue_ca = issue_certificate(
        &CertificateSpec {
            subject: &[("CN", "Rogue CA")],
            not_before_days: -1,
            not_after_days: 30,
            is_ca: true,
        },
        &rogue_ca_key,
        None,
    )
    .expect("CA");
    let rogue = identity(Some((&rogue_ca, &rogue_ca_key)), -1, 30);
    let e = deliver(&net, rogue, item(&envelope, "KZ", "RU"))
        .await
        .expect_err("wrong CA");
    assert!(!e.starts_with("refused"), "{e}");

    // An expired certificate, issued by KZ's own root.
    let kz_root = X509::from_pem(&read(&net, "KZ", "root.pem")).expect("root");
    let kz_root_key = PKey::private_key_from_pem(&read(&net, "KZ", "root.key")).expect("key");
    let expired = identity(Some((&kz_root, &kz_root_key)), -30, -1);
    let e = deliver(&net, expired, item(&envelope, "KZ", "RU"))
        .await
        .expect_err("expired");
    assert!(!e.starts_with("refused"), "{e}");

    // Valid and issued by KZ's root, but not a node listed in the trust space.
    let stray = identity(Some((&kz_root, &kz_root_key)), -1, 30);
    let e = deliver(&net, stray, item(&envelope, "KZ", "RU"))
        .await
        .expect_err("unlisted");
    assert!(e.starts_with("PermissionDenied"), "{e}");

    // Belarus's real node certificate claiming to deliver for Kazakhstan.
    let by = (
        read(&net, "BY", "node-tls.pem"),
        read(&net, "BY", "node-tls.key"),
    );
    let r = deliver(&net, Some(by), item(&envelope, "KZ", "RU"))
        .await
        .expect("delivered");
    assert!(r.starts_with("refused not-authorised"), "{r}");

    // KZ's real certificate, but items that cannot be taken.
    let r = deliver(&net, Some(kz.clone()), item(&envelope, "KZ", "RU"))
        .await
        .expect("delivered");
    assert!(r.starts_with("refused malformed-envelope"), "{r}");
    let big = vec![b'x'; 30_000];
    let r = deliver(&net, Some(kz.clone()), item(&big, "KZ", "RU"))
        .await
        .expect("delivered");
    assert!(
        r.starts_with("refused oversize") && r.contains("20000"),
        "{r}"
    );
    let r = deliver(&net, Some(kz.clone()), item(&envelope, "KZ", "BY"))
        .await
        .expect("delivered");
    assert!(r.starts_with("refused unknown-recipient"), "{r}");
    let mut wrong_digest = item(&envelope, "KZ", "RU");
    if let Some(route) = wrong_digest.route.as_mut() {
        route.digest = vec![0; 32];
    }
    let r = deliver(&net, Some(kz.clone()), wrong_digest)
        .await
        .expect("delivered");
    assert!(r.starts_with("refused bad-route"), "{r}");

    // Nothing of all that was stored.
    assert_eq!(net.metric("RU", "received_total"), 0);
    assert!(net.inbox("RU").is_empty());
    net.stop("RU");
}

/// `text` (a TOML trust space) with `policy` as `state`'s `[state.algorithms]`, written before
/// the state's first node.
fn with_policy(text: &str, state: &str, policy: &str) -> String {
    let at = text
        .find(&format!("code = \"{state}\"\n"))
        .expect("the state");
    let node = at + text[at..].find("[[state.node]]").expect("its node");
    format!(
        "{}[state.algorithms]\n{policy}\n{}",
        &text[..node],
        &text[node..]
    )
}

/// The algorithm policy in running nodes: RU's node rejects KZ's envelopes, signed with an
/// algorithm KZ's entry does not permit, with `algorithm-not-permitted`; KZ's node refuses
/// RU's receipts, signed with a key under RU's minimum, and keeps retrying.
#[test]
fn nodes_judge_envelopes_and_receipts_by_the_signing_states_algorithm_policy() {
    let mut net = Net::init("KZ,RU", "", "", 21500, "");
    let trust = net.dir.path().join("trust-space.toml");
    let text = std::fs::read_to_string(&trust).expect("trust space");
    // Both nodes sign ECDSA P-256 with SHA-256.
    let text = with_policy(&text, "KZ", "signature = [\"ecdsa-sha512\"]");
    let text = with_policy(&text, "RU", "min_ec_bits = 384");
    std::fs::write(&trust, text).expect("write");
    net.start("KZ");
    net.start("RU");

    let id = net.submit("KZ", "RU", None).expect("submitted");
    let settle = std::time::Duration::from_secs(30);
    assert!(
        net::wait_until(settle, || net
            .states("RU", &id)
            .iter()
            .any(|s| s == "rejected")),
        "{}",
        net.log("RU")
    );
    let (_, v) = net.http("RU", "GET", &format!("/v1/messages/{id}"), None);
    let history = v["history"].to_string();
    assert!(
        history.contains("reasons: algorithm-not-permitted"),
        "{history}"
    );
    // The node logs the reason's words with the code.
    let log = net.log("RU");
    assert!(
        log.contains(
            "KZ's documents: signature method ecdsa-sha256 is not permitted (permitted: \
             ecdsa-sha512)"
        ),
        "{log}"
    );
    assert!(
        net::wait_until(settle, || net.log("KZ").contains(
            "receipt signature by RU: EC key of 256 bits is under the minimum of 384 bits"
        )),
        "{}",
        net.log("KZ")
    );
    let at_kz = net.states("KZ", &id);
    assert!(
        !at_kz.iter().any(|s| s == "rejected" || s == "recognised"),
        "KZ took a receipt it must refuse: {at_kz:?}"
    );
    net.stop("KZ");
    net.stop("RU");
}
