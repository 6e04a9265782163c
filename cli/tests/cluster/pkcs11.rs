//! A node whose document-signing key is in a PKCS#11 token (SoftHSM2, the key generated
//! inside it): it starts with `signing.key = "pkcs11:…"`, its envelopes and receipts are
//! signed by the token key (checked with xmlsec1 against its state's anchor) and its audit
//! checkpoints too; the PEM key file is not there to fall back on.

use std::process::Command;
use std::time::Duration;

use tereze_testkit::softhsm::{self, SoftHsm};

use crate::net::{wait_until, Net};

const SETTLE: Duration = Duration::from_secs(60);

/// xmlsec1's verdict on `file` against the anchor `root`, and its stderr.
fn xmlsec1_verifies(
    extra: &[&str],
    root: &std::path::Path,
    file: &std::path::Path,
) -> (bool, String) {
    let out = Command::new("xmlsec1")
        .env("SSL_CERT_FILE", "/dev/null")
        .arg("--verify")
        .args(extra)
        .arg("--trusted-pem")
        .arg(root)
        .arg(file)
        .output()
        .expect("xmlsec1 runs (scripts/setup installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Moves `state`'s signing key into a new SoftHSM2 token: a key pair generated in the token,
/// certified by the state's dev CA, configured by URI; the PEM key is deleted.
fn key_in_token(net: &Net, state: &str, hsm: &SoftHsm) -> openssl::x509::X509 {
    let dir = net.node_dir(state);
    let label = format!("{}-signer", state.to_lowercase());
    hsm.token(&label);
    hsm.keygen(&label, "EC:prime256v1", "doc-sign", "01");
    let root_pem = std::fs::read(dir.join("root.pem")).expect("root.pem");
    let root = openssl::x509::X509::from_pem(&root_pem).expect("root");
    let root_key = openssl::pkey::PKey::private_key_from_pem(
        &std::fs::read(dir.join("root.key")).expect("root.key"),
    )
    .expect("root key");
    let cert = softhsm::certificate_for(
        &hsm.public_pem(&label, "01"),
        &format!("{state} document signer in a token"),
        &(root, root_key),
    );
    let mut chain = cert.to_pem().expect("pem");
    chain.extend_from_slice(&root_pem);
    std::fs::write(dir.join("signer.pem"), chain).expect("signer.pem");
    std::fs::remove_file(dir.join("signer.key")).expect("no PEM key left");
    let pin = hsm.pin_file(&format!("{label}.pin"));
    let config = dir.join("node.toml");
    let text = std::fs::read_to_string(&config).expect("node.toml");
    assert!(text.contains("key = \"signer.key\""), "{text}");
    let text = text.replacen(
        "key = \"signer.key\"",
        &format!("key = \"pkcs11:token={label};object=doc-sign\""),
        1,
    );
    let text = format!(
        "{text}\n[pkcs11]\nmodule = \"{}\"\npin_file = \"{}\"\n",
        softhsm::MODULE,
        pin.display()
    );
    std::fs::write(&config, text).expect("node.toml");
    cert
}

#[test]
fn a_node_signing_with_a_key_in_a_token_relays_and_signs_receipts() {
    let mut net = Net::init("KZ,RU", "", "", 28600, "");
    let hsm = SoftHsm::new();
    let cert = key_in_token(&net, "KZ", &hsm);
    let (name, conf) = hsm.env();
    net.start_with_env("KZ", &[(name, conf.to_str().expect("utf-8"))]);
    net.start("RU");

    // KZ → RU: the envelope is signed by the token key.
    let out = net.submit("KZ", "RU", None).expect("accepted");
    // RU → KZ: KZ's receipt is signed by the token key.
    let back = net.submit("RU", "KZ", None).expect("accepted");
    assert!(
        wait_until(SETTLE, || net
            .states("KZ", &out)
            .contains(&"recognised".into())
            && net.states("RU", &back).contains(&"recognised".into())),
        "not delivered: {:?} {:?}\n{}",
        net.states("KZ", &out),
        net.states("RU", &back),
        net.log("KZ")
    );
    let inbox = net.inbox("RU");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let envelope = net.dir.path().join("envelope.xml");
    let text = inbox[0]["envelope"].as_str().expect("envelope");
    std::fs::write(&envelope, text).expect("written");
    let (ok, err) = xmlsec1_verifies(&[], &net.node_dir("KZ").join("root.pem"), &envelope);
    assert!(ok, "xmlsec1: {err}");
    let token_cert = openssl::base64::encode_block(&cert.to_der().expect("der"));
    assert!(
        text.replace(['\n', '\r'], "").contains(&token_cert),
        "the envelope carries the token key's certificate"
    );

    let (_, v) = net.http("RU", "GET", &format!("/v1/messages/{back}"), None);
    let receipt = v["receipt"].as_str().expect("a receipt from KZ");
    let path = net.dir.path().join("receipt.xml");
    std::fs::write(&path, receipt).expect("written");
    let (ok, err) = xmlsec1_verifies(
        &["--id-attr:Id", "urn:tereze:receipt:Batch"],
        &net.node_dir("KZ").join("root.pem"),
        &path,
    );
    assert!(ok, "xmlsec1 on KZ's receipt: {err}");
    assert!(
        receipt.replace(['\n', '\r'], "").contains(&token_cert),
        "the receipt is signed with the token key's certificate"
    );

    // The audit checkpoints, signed in the token, check out.
    net.stop("KZ");
    net.stop("RU");
    let (code, report) = net.audit_verify("KZ");
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("intact"), "{report}");
    assert!(report.contains("document signer in a token"), "{report}");
}
