//! Nodes on GOST R 34.10-2012 keys (issue 25, "everywhere the node signs"): envelopes,
//! receipts and audit checkpoints carry the signer's own algorithm end to end, a node that
//! needs the OpenSSL GOST engine refuses to start without it naming the package, and one
//! that does not starts anyway and says it cannot verify GOST.
//!
//! The engine is made unavailable the way OpenSSL itself allows: `OPENSSL_ENGINES` pointing
//! at a directory without `gost.so`. These tests need Debian's `libengine-gost-openssl`, which
//! `scripts/setup` installs; without it every node here fails to start, naming the package.

use std::process::Command;
use std::time::Duration;

use crate::net::{bin, wait_until, Net};

const SETTLE: Duration = Duration::from_secs(60);
const GOST_256: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256";
const GOST_512: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512";
const STREEBOG_256: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256";
const STREEBOG_512: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-512";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

/// `Algorithm` of the first `element` (a local name in the XMLDSig namespace) in `xml`.
fn algorithm_of(xml: &str, element: &str) -> Option<String> {
    let doc = tereze_codecs::xml::parse(xml.as_bytes()).ok()?;
    doc.descendants_or_self(doc.root())
        .into_iter()
        .filter_map(|n| doc.element(n))
        .find(|e| e.is(tereze_codecs::dsig::DSIG_NAMESPACE, element))?
        .attribute("Algorithm")
        .map(str::to_owned)
}

/// `tereze node run` for `state` with the GOST engine out of OpenSSL's reach: exit code and
/// stderr (the node must refuse before it listens).
fn start_without_engine(net: &Net, state: &str) -> (Option<i32>, String) {
    let empty = net.dir.path().join("no-engines");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = Command::new(bin())
        .args(["node", "run", "--config"])
        .arg(net.node_dir(state).join("node.toml"))
        .env("OPENSSL_ENGINES", &empty)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn gost_nodes_sign_envelopes_receipts_and_checkpoints_with_their_own_algorithm() {
    let mut net = Net::init_with_algorithms(
        "KZ,RU,BY",
        "",
        "",
        28100,
        "",
        "KZ=gost2012-256,RU=gost2012-512",
    );

    // Without the engine: KZ (its own key is GOST) and BY (ECDSA, but its trust space lists
    // GOST states) refuse to start, naming why and the package.
    let (code, err) = start_without_engine(&net, "KZ");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("signer.pem holds a GOST R 34.10 key")
            && err.contains("install the Debian package libengine-gost-openssl"),
        "{err}"
    );
    let (code, err) = start_without_engine(&net, "BY");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("the trust space's state KZ has a GOST R 34.10 anchor")
            && err.contains("libengine-gost-openssl"),
        "{err}"
    );

    for s in ["KZ", "RU", "BY"] {
        net.start(s);
    }
    let kz_to_ru = net.submit("KZ", "RU", None).expect("accepted");
    let ru_to_kz = net.submit("RU", "KZ", None).expect("accepted");
    let by_to_kz = net.submit("BY", "KZ", None).expect("accepted");
    let recognised = |from: &str, id: &str| net.states(from, id).contains(&"recognised".into());
    assert!(
        wait_until(SETTLE, || recognised("KZ", &kz_to_ru)
            && recognised("RU", &ru_to_kz)
            && recognised("BY", &by_to_kz)),
        "not delivered: {:?} {:?} {:?}\n{}",
        net.states("KZ", &kz_to_ru),
        net.states("RU", &ru_to_kz),
        net.states("BY", &by_to_kz),
        net.log("KZ")
    );

    // Each envelope as its recipient holds it: signed with the sender's algorithm, its
    // reference digested with the matching Streebog (ECDSA with SHA-256 for BY).
    for (recipient, sender, method, digest) in [
        ("RU", "KZ", GOST_256, STREEBOG_256),
        ("KZ", "RU", GOST_512, STREEBOG_512),
        (
            "KZ",
            "BY",
            ECDSA_SHA256,
            "http://www.w3.org/2001/04/xmlenc#sha256",
        ),
    ] {
        let inbox = net.inbox(recipient);
        let envelope = inbox
            .iter()
            .find(|m| m["sender"] == sender)
            .and_then(|m| m["envelope"].as_str())
            .unwrap_or_else(|| panic!("{recipient} holds {sender}'s envelope: {inbox:?}"));
        assert_eq!(
            algorithm_of(envelope, "SignatureMethod").as_deref(),
            Some(method),
            "{sender} → {recipient}"
        );
        assert_eq!(
            algorithm_of(envelope, "DigestMethod").as_deref(),
            Some(digest),
            "{sender} → {recipient}"
        );
    }

    // Each receipt, as its sender verified and kept it: signed by the recipient with the
    // recipient's algorithm, and it verifies offline against the recipient's anchor only.
    for (sender, id, recipient, method) in [
        ("KZ", &kz_to_ru, "RU", GOST_512),
        ("RU", &ru_to_kz, "KZ", GOST_256),
        ("BY", &by_to_kz, "KZ", GOST_256),
    ] {
        let (_, v) = net.http(sender, "GET", &format!("/v1/messages/{id}"), None);
        let receipt = v["receipt"].as_str().expect("a receipt");
        assert_eq!(
            algorithm_of(receipt, "SignatureMethod").as_deref(),
            Some(method),
            "{recipient}'s receipt to {sender}"
        );
        let path = net
            .dir
            .path()
            .join(format!("receipt-{recipient}-{sender}.xml"));
        std::fs::write(&path, receipt).expect("written");
        let verify = |anchor_state: &str| {
            Command::new(bin())
                .args(["xml", "verify", "--trusted"])
                .arg(net.node_dir(anchor_state).join("root.pem"))
                .arg(&path)
                .output()
                .expect("runs")
        };
        let ok = verify(recipient);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let other = if recipient == "RU" { "KZ" } else { "RU" };
        assert_eq!(
            verify(other).status.code(),
            Some(1),
            "{recipient}'s receipt must not verify against {other}'s anchor"
        );
    }

    // Stopped (a last checkpoint signed), each node's audit chain verifies, its checkpoints
    // signed with its own key.
    for (s, signer) in [
        ("KZ", "KZ document signer"),
        ("RU", "RU document signer"),
        ("BY", "BY document signer"),
    ] {
        net.stop(s);
        let (code, out) = net.audit_verify(s);
        assert_eq!(code, 0, "{s}: {out}");
        assert!(out.contains("intact") && out.contains(signer), "{s}: {out}");
        assert!(!out.contains("checkpoints 0\n"), "{s}: {out}");
    }
    // Without the engine a GOST checkpoint cannot be checked, and the report says why.
    let empty = net.dir.path().join("no-engines");
    let out = Command::new(bin())
        .args(["audit", "verify"])
        .arg(net.data_dir("KZ"))
        .env("OPENSSL_ENGINES", &empty)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("signature algorithm {GOST_256}"))
            && err.contains("libengine-gost-openssl"),
        "{err}"
    );
}

#[test]
fn a_node_that_needs_no_gost_starts_without_the_engine_and_says_so() {
    let mut net = Net::init("KZ,RU", "", "", 28150, "");
    let empty = net.dir.path().join("no-engines");
    std::fs::create_dir_all(&empty).expect("dir");
    let engines = empty.to_str().expect("utf-8").to_owned();
    net.start_with_env("KZ", &[("OPENSSL_ENGINES", &engines)]);
    assert!(
        net.log("KZ").contains("OpenSSL GOST engine not available"),
        "{}",
        net.log("KZ")
    );
    net.start("RU");
    assert!(
        net.log("RU").contains("OpenSSL GOST engine loaded"),
        "{}",
        net.log("RU")
    );
    net.stop("KZ");
    net.stop("RU");
}

#[test]
fn the_demo_with_gost_delivers_everything_with_each_recipients_algorithm() {
    // `scripts/demo --gost`, shortened: five members and the hub, KZ, KG, AM, RU and EEC on
    // GOST, BY on ECDSA.
    crate::net::claim_ports(28200, 6);
    let dir = tempfile::tempdir().expect("dir");
    let stdout = crate::demo_of_twelve(dir.path(), "28200", &["--gost"]);
    // Two rounds of the six scenarios: receipts from RU twice a round, from KG, KZ and AM
    // three times, from BY once.
    for line in [
        format!("    4  {GOST_512}"),
        format!("    6  {GOST_256}"),
        format!("    2  {ECDSA_SHA256}"),
    ] {
        assert!(stdout.contains(&line), "{line:?} in {stdout}");
    }
}
