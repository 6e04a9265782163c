//! Signing keys in a PKCS#11 token on the command line: `tereze xml sign --key pkcs11:…`
//! with a key generated inside a SoftHSM2 token signs a document that `tereze xml verify`
//! and `xmlsec1` accept, and a wrong PIN or a missing flag is refused naming the flag.

use std::process::{Command, Output};

use tereze_testkit::softhsm::{self, SoftHsm};

use crate::util::{code, describe, stderr, stdout, Dir};

/// A token `cli` with an EC key `doc-sign` (id 01), a CA and a certificate for the key.
fn token(d: &Dir) -> SoftHsm {
    let hsm = SoftHsm::new();
    hsm.token("cli");
    hsm.keygen("cli", "EC:prime256v1", "doc-sign", "01");
    let ca = softhsm::test_ca();
    let cert = softhsm::certificate_for(&hsm.public_pem("cli", "01"), "Token signer", &ca);
    d.write("ca.pem", ca.0.to_pem().expect("pem"));
    d.write("signer.pem", cert.to_pem().expect("pem"));
    d.write("doc.xml", "<Declaration><Goods>grain</Goods></Declaration>");
    hsm
}

fn tereze(d: &Dir, hsm: &SoftHsm, args: &[&str]) -> Output {
    let (name, value) = hsm.env();
    Command::new(env!("CARGO_BIN_EXE_tereze"))
        .current_dir(d.path(""))
        .env(name, value)
        .args(args)
        .output()
        .expect("tereze runs")
}

#[test]
fn xml_sign_with_a_key_in_a_token_verifies() {
    let d = Dir::new();
    let hsm = token(&d);
    let pin = hsm.pin_file("user.pin");
    let out = tereze(
        &d,
        &hsm,
        &[
            "xml",
            "sign",
            "--key",
            "pkcs11:token=cli;object=doc-sign",
            "--cert",
            "signer.pem",
            "--pkcs11-module",
            softhsm::MODULE,
            "--pin-file",
            pin.to_str().expect("utf-8"),
            "doc.xml",
        ],
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    d.write("signed.xml", stdout(&out));
    let out = d.tereze(&["xml", "verify", "--trusted", "ca.pem", "signed.xml"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        stdout(&out).contains("CN=Token signer"),
        "{}",
        describe(&out)
    );
    let out = Command::new("xmlsec1")
        .env("SSL_CERT_FILE", "/dev/null")
        .env("SSL_CERT_DIR", "/dev/null")
        .args(["--verify", "--trusted-pem"])
        .arg(d.path("ca.pem"))
        .arg(d.path("signed.xml"))
        .output()
        .expect("xmlsec1 is required; run scripts/setup (apt-get install -y xmlsec1)");
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn a_wrong_pin_or_a_missing_flag_is_refused_naming_the_flag() {
    let d = Dir::new();
    let hsm = token(&d);
    let wrong = d.write("wrong.pin", "0000\n");
    softhsm::set_mode(&wrong, 0o600);
    let sign = |extra: &[&str]| {
        let mut args = vec![
            "xml",
            "sign",
            "--key",
            "pkcs11:token=cli;object=doc-sign",
            "--cert",
            "signer.pem",
        ];
        args.extend_from_slice(extra);
        args.push("doc.xml");
        tereze(&d, &hsm, &args)
    };
    let out = sign(&[
        "--pkcs11-module",
        softhsm::MODULE,
        "--pin-file",
        wrong.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        stderr(&out).contains("--pin-file: wrong PIN for token \"cli\""),
        "{}",
        describe(&out)
    );
    assert!(!stderr(&out).contains("0000"), "the PIN is never shown");
    let out = sign(&["--pin-file", wrong.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        stderr(&out).contains("--pkcs11-module is not set, and --key names a key in a token"),
        "{}",
        describe(&out)
    );
}
