//! A node whose document-signing key is in a PKCS#11 token (SoftHSM2, the key generated
//! inside it): it starts with `signing.key = "pkcs11:…"`, its envelopes and receipts are
//! signed by the token key (checked with xmlsec1 against its state's anchor) and its audit
//! checkpoints too; the PEM key file is not there to fall back on.

use std::process::Command;
use std::time::Duration;

use tereze_testkit::softhsm::{self, SoftHsm};

use crate::net::{wait_until, xmlsec1_verifies, Net};

const SETTLE: Duration = Duration::from_secs(60);

/// One message KZ → RU (KZ signs the envelope) and one RU → KZ (KZ signs the receipt), each
/// recognised by its recipient within [`SETTLE`]: their ids, (out, back).
fn exchange_both_ways(net: &Net) -> (String, String) {
    let out = net.submit("KZ", "RU", None).expect("accepted");
    let back = net.submit("RU", "KZ", None).expect("accepted");
    assert!(
        wait_until(SETTLE, || net
            .states("KZ", &out)
            .contains(&"recognised".into())
            && net.states("RU", &back).contains(&"recognised".into())),
        "not delivered: {:?} {:?}\n{}\n{}",
        net.states("KZ", &out),
        net.states("RU", &back),
        net.log("KZ"),
        net.log("RU")
    );
    (out, back)
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
    // RU → KZ: KZ's receipt is signed by the token key.
    let (_out, back) = exchange_both_ways(&net);
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

/// A TLS certificate for the public key `public_pem` (read from a token) with the subject
/// and subjectAltName of `old` (the node's dev certificate), issued by `ca`: what an operator
/// gets from the state's CA for a TLS key generated in the token.
fn tls_certificate_for(
    public_pem: &[u8],
    old: &openssl::x509::X509,
    ca: &(
        openssl::x509::X509,
        openssl::pkey::PKey<openssl::pkey::Private>,
    ),
) -> openssl::x509::X509 {
    use openssl::x509::extension::{
        BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    };
    let public = openssl::pkey::PKey::public_key_from_pem(public_pem).expect("public key");
    let mut b = openssl::x509::X509::builder().expect("builder");
    b.set_version(2).expect("version");
    let serial = openssl::bn::BigNum::from_u32(0x7115).expect("serial");
    b.set_serial_number(&serial.to_asn1_integer().expect("serial"))
        .expect("serial");
    b.set_subject_name(old.subject_name()).expect("subject");
    b.set_issuer_name(ca.0.subject_name()).expect("issuer");
    b.set_pubkey(&public).expect("public key");
    b.set_not_before(old.not_before()).expect("not before");
    b.set_not_after(old.not_after()).expect("not after");
    b.append_extension(BasicConstraints::new().critical().build().expect("bc"))
        .expect("bc");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    b.append_extension(
        ExtendedKeyUsage::new()
            .server_auth()
            .client_auth()
            .build()
            .expect("eku"),
    )
    .expect("eku");
    let mut san = SubjectAlternativeName::new();
    for name in old
        .subject_alt_names()
        .expect("the dev certificate has names")
    {
        if let Some(dns) = name.dnsname() {
            san.dns(dns);
        }
        if let Some(ip) = name.ipaddress() {
            let ip: std::net::IpAddr = match ip.len() {
                4 => <[u8; 4]>::try_from(ip).expect("v4").into(),
                _ => <[u8; 16]>::try_from(ip).expect("v6").into(),
            };
            san.ip(&ip.to_string());
        }
    }
    let san = san
        .build(&b.x509v3_context(Some(&ca.0), None))
        .expect("san");
    b.append_extension(san).expect("san");
    b.sign(&ca.1, openssl::hash::MessageDigest::sha256())
        .expect("sign");
    b.build()
}

/// Moves `state`'s TLS key into the token `token` (made by [`key_in_token`]): a key pair of
/// `key_type` (`EC:prime256v1`, `rsa:2048`) generated there, certified by the state's TLS CA with the old certificate's names,
/// listed in the trust space in place of the old certificate (peers know a node by its TLS
/// certificate), configured by URI; the PEM key is deleted.
fn tls_key_in_token(net: &Net, state: &str, hsm: &SoftHsm, token: &str, key_type: &str) {
    let dir = net.node_dir(state);
    hsm.keygen(token, key_type, "node-tls", "02");
    let ca_pem = std::fs::read(dir.join("tls-root.pem")).expect("tls-root.pem");
    let ca_key = if dir.join("tls-root.key").exists() {
        dir.join("tls-root.key")
    } else {
        dir.join("root.key")
    };
    let ca = (
        openssl::x509::X509::from_pem(&ca_pem).expect("CA"),
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(ca_key).expect("CA key"))
            .expect("CA key"),
    );
    let old_pem = std::fs::read(dir.join("node-tls.pem")).expect("node-tls.pem");
    let old = openssl::x509::X509::from_pem(&old_pem).expect("old leaf");
    let cert = tls_certificate_for(&hsm.public_pem(token, "02"), &old, &ca);
    let new_leaf = String::from_utf8(cert.to_pem().expect("pem")).expect("utf-8");
    let old_leaf = String::from_utf8(old.to_pem().expect("pem")).expect("utf-8");
    let mut chain = new_leaf.clone().into_bytes();
    chain.extend_from_slice(&ca_pem);
    std::fs::write(dir.join("node-tls.pem"), chain).expect("node-tls.pem");
    std::fs::remove_file(dir.join("node-tls.key")).expect("no PEM TLS key left");
    let listing = net.dir.path().join("trust-space.toml");
    let text = std::fs::read_to_string(&listing).expect("trust-space.toml");
    assert!(
        text.contains(old_leaf.trim()),
        "the old certificate is listed"
    );
    std::fs::write(&listing, text.replace(old_leaf.trim(), new_leaf.trim())).expect("listing");
    let config = dir.join("node.toml");
    let text = std::fs::read_to_string(&config).expect("node.toml");
    assert!(text.contains("key = \"node-tls.key\""), "{text}");
    let text = text.replacen(
        "key = \"node-tls.key\"",
        &format!("key = \"pkcs11:token={token};object=node-tls\""),
        1,
    );
    std::fs::write(&config, text).expect("node.toml");
}

/// `tereze node run` on `state`'s configuration, expected to refuse to start: its stderr.
fn start_error(net: &Net, state: &str, env: (&str, &std::path::Path)) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tereze"))
        .args(["node", "run", "--config"])
        .arg(net.node_dir(state).join("node.toml"))
        .env(env.0, env.1)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let started = std::time::Instant::now();
    while child.try_wait().expect("waits").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("node {state} started though it should not have");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(!out.status.success(), "a refusal exits non-zero");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_node_with_its_tls_and_signing_keys_in_a_token_relays_over_mutual_tls() {
    let mut net = Net::init("KZ,RU", "", "", 28760, "");
    let hsm = SoftHsm::new();
    key_in_token(&net, "KZ", &hsm);
    tls_key_in_token(&net, "KZ", &hsm, "kz-signer", "EC:prime256v1");
    let (name, conf) = hsm.env();

    // A missing token object and a wrong PIN stop the start, naming the field to fix.
    let config = net.node_dir("KZ").join("node.toml");
    let good = std::fs::read_to_string(&config).expect("node.toml");
    std::fs::write(
        &config,
        good.replace("object=node-tls", "object=no-such-key"),
    )
    .expect("w");
    let err = start_error(&net, "KZ", (name, &conf));
    assert!(
        err.contains("tls.key") && err.contains("no-such-key"),
        "{err}"
    );
    let wrong = hsm.pin_file("wrong.pin");
    std::fs::write(&wrong, "9999\n").expect("wrong PIN");
    let pin_line = good
        .lines()
        .find(|l| l.starts_with("pin_file"))
        .expect("pin_file line");
    std::fs::write(
        &config,
        good.replace(pin_line, &format!("pin_file = \"{}\"", wrong.display())),
    )
    .expect("w");
    let err = start_error(&net, "KZ", (name, &conf));
    assert!(err.contains("pkcs11.pin_file"), "{err}");
    assert!(!err.contains("9999"), "the PIN is never shown: {err}");
    std::fs::write(&config, &good).expect("restored");

    net.start_with_env("KZ", &[(name, conf.to_str().expect("utf-8"))]);
    net.start("RU");
    // KZ dials RU presenting its token-held TLS key; RU dials KZ, whose server side signs
    // the handshake in the token. Envelopes one way, receipts the other, both ways.
    let (out, _back) = exchange_both_ways(&net);
    assert_eq!(net.inbox("RU").len(), 1);
    assert_eq!(net.inbox("KZ").len(), 1);
    // The admin door presents the same token-held identity.
    let (code, timeline) = net.admin("KZ", "GET", &format!("/admin/messages/{out}"), None);
    assert_eq!(code, 200, "{timeline}");
    assert!(
        !net.node_dir("KZ").join("node-tls.key").exists(),
        "no PEM TLS key to fall back on"
    );
    net.stop("KZ");
    net.stop("RU");
}

#[test]
fn an_rsa_tls_key_in_a_token_signs_handshakes_with_rsa_pss() {
    let mut net = Net::init("KZ,RU", "", "", 28780, "");
    let hsm = SoftHsm::new();
    key_in_token(&net, "KZ", &hsm);
    // SoftHSM2 offers CKM_RSA_PKCS_PSS, the only RSA signature TLS 1.3 takes.
    tls_key_in_token(&net, "KZ", &hsm, "kz-signer", "rsa:2048");
    let (name, conf) = hsm.env();
    net.start_with_env("KZ", &[(name, conf.to_str().expect("utf-8"))]);
    net.start("RU");
    exchange_both_ways(&net);
    net.stop("KZ");
    net.stop("RU");
}
