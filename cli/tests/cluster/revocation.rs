//! CRLs by location (docs/recognition.md): KZ's node publishes its CA's CRL, RU's node fetches
//! it from the location the trust space lists, verifies it against KZ's anchor and judges by
//! it; forged and rolled-back CRLs are refused; what was accepted survives a restart while the
//! location is down; a revoked TLS certificate no longer gets through RU's door. CRLs are made
//! with the `openssl ca` command (installed by scripts/setup), as a state's CA would.

use std::path::Path;
use std::time::Duration;

use crate::net::{self, wait_until, Net};

const SETTLE: Duration = Duration::from_secs(30);

/// The testkit's `openssl ca` for a node directory's root CA, waiting out a second before
/// each revocation and CRL.
struct Ca(tereze_testkit::ca::Ca);

impl Ca {
    fn new(node_dir: &Path) -> Self {
        Self(tereze_testkit::ca::Ca::new(node_dir))
    }

    /// Revokes `cert` now. Revocation times have a resolution of a second: wait one out so
    /// that what was signed before stays before.
    fn revoke(&self, cert: &Path) {
        std::thread::sleep(Duration::from_millis(1100));
        self.0.revoke(cert);
    }

    /// Writes the current CRL to `to`. CRL times have a resolution of a second: wait one
    /// out so each CRL is newer than the last.
    fn crl(&self, to: &Path) {
        std::thread::sleep(Duration::from_millis(1100));
        self.0.crl(to);
    }
}

fn last_note(net: &Net, state: &str, id: &str) -> String {
    let (_, v) = net.http(state, "GET", &format!("/v1/messages/{id}"), None);
    v["history"]
        .as_array()
        .and_then(|h| h.last())
        .map(|t| t["note"].to_string())
        .unwrap_or_default()
}

fn judged(net: &Net, id: &str) -> Option<String> {
    let mut last = None;
    wait_until(SETTLE, || {
        last = net
            .states("RU", id)
            .last()
            .cloned()
            .filter(|s| s == "recognised" || s == "rejected");
        last.is_some()
    });
    last
}

#[test]
fn a_crl_fetched_from_the_issuing_states_node_revokes_signatures_and_tls_access() {
    let mut net = Net::init("KZ,RU", "", "", 20400, "");
    let d = net.dir.path().to_path_buf();
    let (kz, ru) = (net.node_dir("KZ"), net.node_dir("RU"));
    // The trust space lists KZ's node (its peer door) as the location of KZ's CRLs.
    let location = format!("http://127.0.0.1:{}/v1/crl", net.peer_port("KZ"));
    let trust = d.join("trust-space.toml");
    let text = std::fs::read_to_string(&trust).expect("trust space");
    assert!(text.contains("code = \"KZ\"\n"), "{text}");
    std::fs::write(
        &trust,
        text.replacen(
            "code = \"KZ\"\n",
            &format!("code = \"KZ\"\ncrl_urls = [\"{location}\"]\n"),
            1,
        ),
    )
    .expect("write");
    net.configure("KZ", "publish_crls = [\"crl.pem\"]");
    net.configure("RU", "crl_refresh_seconds = 1");

    let ca = Ca::new(&kz);
    ca.crl(&kz.join("crl.pem"));
    let first_crl = std::fs::read(kz.join("crl.pem")).expect("crl");
    net.start("KZ");
    net.start("RU");
    assert!(
        wait_until(SETTLE, || net.metric("RU", "crl_updates_total") == 1),
        "RU did not take KZ's CRL: {}",
        net.log("RU")
    );
    let (status, body) = net::http(net.peer_port("KZ"), "GET", "/v1/crl", None);
    assert_eq!(status, 200);
    assert!(body
        .as_str()
        .is_some_and(|b| b.starts_with("-----BEGIN X509 CRL-----")));

    // Nothing revoked yet.
    let id = net.submit("KZ", "RU", None).expect("submitted");
    assert_eq!(judged(&net, &id).as_deref(), Some("recognised"));
    // RU stored it by now: the evidence of when it was signed, for judging it again offline.
    let stored_before_revocation = chrono::Utc::now().to_rfc3339();

    // KZ's CA revokes its document signer; RU learns it from the location.
    ca.revoke(&kz.join("signer.pem"));
    ca.crl(&kz.join("crl.pem"));
    assert!(
        wait_until(SETTLE, || net.metric("RU", "crl_updates_total") == 2),
        "{}",
        net.log("RU")
    );
    let id = net.submit("KZ", "RU", None).expect("submitted");
    assert_eq!(judged(&net, &id).as_deref(), Some("rejected"));
    let note = last_note(&net, "RU", &id);
    assert!(note.contains("certificate-revoked"), "{note}");

    // Offline, with the fetched CRL given by hand: the first document, stored by RU before the
    // revocation, stays recognised; a CRL KZ's anchor did not sign is refused as input.
    let inbox = net.inbox("RU");
    let first = d.join("first.xml");
    std::fs::write(&first, inbox[0]["envelope"].as_str().expect("envelope")).expect("write");
    let crl_arg = format!("KZ={}", kz.join("crl.pem").display());
    let trust_arg = trust.to_str().expect("utf-8");
    let first_arg = first.to_str().expect("utf-8");
    let (code, out, err) = net::tereze(&[
        "recognise",
        "--trust",
        trust_arg,
        "--state",
        "RU",
        "--crl",
        &crl_arg,
        "--received-at",
        &stored_before_revocation,
        first_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let forged = d.join("ru-made.pem");
    Ca::new(&ru).crl(&forged);
    let (code, _, err) = net::tereze(&[
        "recognise",
        "--trust",
        trust_arg,
        "--state",
        "RU",
        "--crl",
        &format!("KZ={}", forged.display()),
        first_arg,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an anchor of KZ"), "{err}");

    // A CRL that KZ's anchor did not sign (RU's CA made it) is refused; so is KZ's first CRL,
    // from before the revocation (a rollback). The revocation stays in force.
    let revoked_crl = std::fs::read(kz.join("crl.pem")).expect("crl");
    std::fs::copy(&forged, kz.join("crl.pem")).expect("copy");
    assert!(
        wait_until(SETTLE, || net.metric("RU", "crl_refused_total") >= 1),
        "{}",
        net.log("RU")
    );
    std::fs::write(kz.join("crl.pem"), &first_crl).expect("rollback");
    // The forged CRL may be refused again meanwhile: wait for the rollback's own refusal.
    assert!(
        wait_until(SETTLE, || net.log("RU").contains("before the CRL held")),
        "{}",
        net.log("RU")
    );
    std::fs::write(kz.join("crl.pem"), &revoked_crl).expect("write");
    assert_eq!(
        net.metric("RU", "crl_updates_total"),
        2,
        "a refused CRL was put in force"
    );
    let id = net.submit("KZ", "RU", None).expect("submitted");
    assert_eq!(judged(&net, &id).as_deref(), Some("rejected"));

    // RU restarts while KZ's location is down: the revocation it accepted is still in force.
    net.stop("RU");
    net.stop("KZ");
    std::fs::remove_file(kz.join("crl.pem")).expect("remove");
    net.start("RU");
    net.start("KZ");
    let failures = net.metric("RU", "crl_fetch_failures_total");
    assert!(
        wait_until(SETTLE, || net.metric("RU", "crl_fetch_failures_total")
            > failures),
        "{}",
        net.log("RU")
    );
    let id = net.submit("KZ", "RU", None).expect("submitted");
    assert_eq!(judged(&net, &id).as_deref(), Some("rejected"));
    assert!(last_note(&net, "RU", &id).contains("certificate-revoked"));

    // KZ's CA revokes the node's TLS certificate too: RU no longer lets KZ's node in, and
    // KZ keeps the message queued, retrying.
    ca.revoke(&kz.join("node-tls.pem"));
    ca.crl(&kz.join("crl.pem"));
    assert!(
        wait_until(SETTLE, || net.metric("RU", "crl_updates_total") >= 1),
        "{}",
        net.log("RU")
    );
    let received = net.metric("RU", "received_total");
    let id = net.submit("KZ", "RU", None).expect("submitted");
    assert!(
        wait_until(SETTLE, || net.metric("KZ", "failed_attempts_total") >= 2),
        "{}",
        net.log("KZ")
    );
    assert_eq!(net.metric("RU", "received_total"), received);
    assert!(net.states("RU", &id).is_empty());
    assert_eq!(net.metric("KZ", "outbox_messages"), 1);
}
