//! `tereze xml c14n|sign|verify` through the real binary: output, exit codes (0 valid, 1
//! negative verdict, 2 usage or input error) and what stderr says.

use std::process::Command;

use tereze_codecs::pki::KeyKind;

use crate::util::{code, describe, negative, sample, stderr, stdout, Dir};

#[test]
fn c14n_writes_the_canonical_form_in_each_mode() {
    let d = Dir::new();
    let f = d.write(
        "in.xml",
        "<?xml version=\"1.0\"?>\n<r xmlns:u=\"urn:unused\" b=\"2\" a=\"1\"><!-- c --><s Id=\"x\" xmlns:p=\"urn:p\" p:k=\"v\"/></r>\n",
    );
    let f = f.to_str().expect("utf-8 path");
    let out = d.tereze(&["xml", "c14n", f]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(
        stdout(&out),
        "<r xmlns:u=\"urn:unused\" a=\"1\" b=\"2\"><s xmlns:p=\"urn:p\" Id=\"x\" p:k=\"v\"></s></r>"
    );
    let out = d.tereze(&["xml", "c14n", "--with-comments", f]);
    assert!(stdout(&out).contains("<!-- c -->"));
    let out = d.tereze(&["xml", "c14n", "--exclusive", f]);
    assert_eq!(
        stdout(&out),
        "<r a=\"1\" b=\"2\"><s xmlns:p=\"urn:p\" Id=\"x\" p:k=\"v\"></s></r>"
    );
    let out = d.tereze(&[
        "xml",
        "c14n",
        "--exclusive",
        "--prefixes",
        "u",
        "--id",
        "x",
        f,
    ]);
    assert_eq!(
        stdout(&out),
        "<s xmlns:p=\"urn:p\" xmlns:u=\"urn:unused\" Id=\"x\" p:k=\"v\"></s>"
    );
}

#[test]
fn c14n_reads_stdin() {
    let out = Command::new(env!("CARGO_BIN_EXE_tereze"))
        .args(["xml", "c14n", "-"])
        .stdin(std::fs::File::open(sample()).expect("sample"))
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(stdout(&out).starts_with("<edec:ExportDeclaration"));
}

#[test]
fn input_errors_exit_2_and_name_file_line_and_column() {
    let d = Dir::new();
    let xxe = negative("xxe-external-entity.xml");
    let out = d.tereze(&["xml", "c14n", xxe.to_str().expect("path")]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        stderr(&out).contains("xxe-external-entity.xml:2:1: DOCTYPE declarations are not accepted"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());

    let out = d.tereze(&["xml", "c14n", "missing.xml"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("missing.xml: cannot read"),
        "{}",
        stderr(&out)
    );

    let f = d.write("bad.xml", "<r>\n  <a></b>\n</r>");
    let out = d.tereze(&["xml", "c14n", f.to_str().expect("path")]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("bad.xml:2:"), "{}", stderr(&out));

    let f = d.write("ok.xml", "<r/>");
    let out = d.tereze(&["xml", "c14n", "--id", "nope", f.to_str().expect("path")]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no element has the identifier \"nope\""),
        "{}",
        stderr(&out)
    );

    let out = d.tereze(&["xml", "c14n", "--prefixes", "a", f.to_str().expect("path")]);
    assert_eq!(
        code(&out),
        2,
        "--prefixes needs --exclusive: {}",
        describe(&out)
    );
    let out = d.tereze(&["xml", "frobnicate"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn sign_then_verify_prints_the_signer() {
    for kind in [KeyKind::EcP256, KeyKind::Rsa(2048)] {
        let d = Dir::new();
        d.pki(kind);
        let s = sample().to_str().expect("path");
        let out = d.tereze(&[
            "xml",
            "sign",
            "--key",
            "signer.key",
            "--cert",
            "signer.pem",
            s,
        ]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        d.write("signed.xml", &out.stdout);
        let out = d.tereze(&["xml", "verify", "--trusted", "ca.pem", "signed.xml"]);
        assert_eq!(code(&out), 0, "{kind:?}: {}", describe(&out));
        let report = stdout(&out);
        assert!(
            report.starts_with("/edec:ExportDeclarationDetails[1]/ds:Signature[1] (line ")
                && report.contains(": valid; signer C=KZ, O=Tereze test, CN=Test signer (serial ")
                && report.ends_with("\n")
                && report.lines().count() == 1,
            "one line for the one signature: {report}"
        );

        // The bare public key is trusted too.
        let out = d.tereze(&["xml", "verify", "--trusted", "signer.pub", "signed.xml"]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
    }
}

#[test]
fn cli_signatures_verify_with_xmlsec1_and_xmlsec1_rejects_tampering() {
    let d = Dir::new();
    d.pki(KeyKind::EcP256);
    let s = sample().to_str().expect("path");
    let out = d.tereze(&[
        "xml",
        "sign",
        "--key",
        "signer.key",
        "--cert",
        "signer.pem",
        "--id",
        "phyto-ref",
        "--digest",
        "sha384",
        s,
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    d.write("signed.xml", &out.stdout);
    let xmlsec = |file: &str| {
        Command::new("xmlsec1")
            .env("SSL_CERT_FILE", "/dev/null")
            .current_dir(d.tmp.path())
            .args([
                "--verify",
                "--trusted-pem",
                "ca.pem",
                "--id-attr:Id",
                "urn:EEC:M:ComplexDataObjects:PermitDocument",
                file,
            ])
            .output()
            .expect("xmlsec1 is required: run scripts/setup")
    };
    let out = xmlsec("signed.xml");
    assert!(out.status.success(), "{}", describe(&out));
    let tampered = d
        .read("signed.xml")
        .replace("KZ-PHY-2026-004417", "KZ-PHY-2026-004418");
    d.write("tampered.xml", tampered);
    assert!(!xmlsec("tampered.xml").status.success());
    let out = d.tereze(&["xml", "verify", "--trusted", "ca.pem", "tampered.xml"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        stdout(&out).contains(": invalid: digest of reference"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains(
            "tampered.xml: invalid signature: digest of reference \"#phyto-ref\" does not match"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verify_says_why_a_signature_is_refused() {
    let d = Dir::new();
    d.pki(KeyKind::EcP256);
    let s = sample().to_str().expect("path");
    let out = d.tereze(&[
        "xml",
        "sign",
        "--key",
        "signer.key",
        "--cert",
        "signer.pem",
        s,
    ]);
    d.write("signed.xml", &out.stdout);

    let out = d.tereze(&["xml", "verify", "--trusted", "other-ca.pem", "signed.xml"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        stderr(&out).contains("signer not trusted: C=KZ, O=Tereze test, CN=Test signer"),
        "{}",
        stderr(&out)
    );

    let out = d.tereze(&["xml", "verify", "--trusted", "ca.pem", s]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no ds:Signature element"),
        "{}",
        stderr(&out)
    );

    let out = d.tereze(&["xml", "verify", "signed.xml"]);
    assert_eq!(code(&out), 2, "--trusted is required: {}", describe(&out));

    d.write("junk.pem", "not a pem");
    let out = d.tereze(&["xml", "verify", "--trusted", "junk.pem", "signed.xml"]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        stderr(&out).contains("junk.pem: key: neither a PEM certificate nor a PEM public key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verify_writes_the_signed_content_on_request() {
    let d = Dir::new();
    d.pki(KeyKind::EcP256);
    let s = sample().to_str().expect("path");
    let out = d.tereze(&[
        "xml",
        "sign",
        "--key",
        "signer.key",
        "--cert",
        "signer.pem",
        "--id",
        "phyto-ref",
        s,
    ]);
    d.write("signed.xml", &out.stdout);
    let out = d.tereze(&[
        "xml",
        "verify",
        "--trusted",
        "ca.pem",
        "--signed-out",
        "signed-view.xml",
        "signed.xml",
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let view = d.read("signed-view.xml");
    assert!(
        view.starts_with("<ccdo:PermitDocument xmlns:ccdo=\"urn:EEC:M:ComplexDataObjects\""),
        "{view}"
    );
    assert!(
        !view.contains("Signature"),
        "the enveloped signature is not part of the signed content"
    );
    let c14n = d.tereze(&["xml", "c14n", "--exclusive", "--id", "phyto-ref", s]);
    assert_eq!(
        view,
        stdout(&c14n),
        "the signed content is the exclusive C14N of the element"
    );
}

/// A GOST key signs with its own Streebog when `--digest` is left out, the binary verifies it
/// (the engine loads in the process), and another explicit digest is a clear error.
#[test]
fn a_gost_key_signs_with_its_own_digest_and_refuses_another() {
    for (kind, own, method) in [
        (
            KeyKind::Gost2012_256,
            "gost2012-256",
            "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256",
        ),
        (
            KeyKind::Gost2012_512,
            "gost2012-512",
            "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512",
        ),
    ] {
        let d = Dir::new();
        d.pki(kind);
        let s = sample().to_str().expect("path");
        let sign = |extra: &[&str]| {
            let mut args = vec!["xml", "sign", "--key", "signer.key", "--cert", "signer.pem"];
            args.extend_from_slice(extra);
            args.push(s);
            d.tereze(&args)
        };
        let out = sign(&[]);
        assert_eq!(code(&out), 0, "{kind:?}: {}", describe(&out));
        let signed = stdout(&out);
        assert!(signed.contains(method), "{kind:?}");
        let digest_uri = format!(
            "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr3411{}",
            &own[4..]
        );
        assert!(signed.contains(&digest_uri), "{kind:?}: {digest_uri}");
        d.write("signed.xml", &out.stdout);
        let out = d.tereze(&["xml", "verify", "--trusted", "ca.pem", "signed.xml"]);
        assert_eq!(code(&out), 0, "{kind:?}: {}", describe(&out));

        let out = sign(&["--digest", own]);
        assert_eq!(code(&out), 0, "{kind:?}: {}", describe(&out));
        let out = sign(&["--digest", "sha256"]);
        assert_eq!(code(&out), 2, "{kind:?}: {}", describe(&out));
        assert!(
            stderr(&out).contains("digest sha256 cannot be used with")
                && stderr(&out).contains(own),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn sign_refuses_bad_options_and_keys() {
    let d = Dir::new();
    d.pki(KeyKind::EcP256);
    let s = sample().to_str().expect("path");
    let out = d.tereze(&[
        "xml",
        "sign",
        "--key",
        "signer.key",
        "--cert",
        "signer.pem",
        "--digest",
        "sha1",
        s,
    ]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        stderr(&out).contains("sha1 is not allowed for new signatures"),
        "{}",
        stderr(&out)
    );
    let out = d.tereze(&[
        "xml",
        "sign",
        "--key",
        "signer.key",
        "--cert",
        "signer.pem",
        "--digest",
        "md5",
        s,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--digest md5: unknown digest"),
        "{}",
        stderr(&out)
    );
    let out = d.tereze(&[
        "xml",
        "sign",
        "--key",
        "signer.key",
        "--cert",
        "other-ca.pem",
        s,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("does not match the private key"),
        "{}",
        stderr(&out)
    );
    let out = d.tereze(&[
        "xml",
        "sign",
        "--key",
        "signer.pem",
        "--cert",
        "signer.pem",
        s,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("not a PEM private key"),
        "{}",
        stderr(&out)
    );
    let out = d.tereze(&[
        "xml",
        "sign",
        "--key",
        "signer.key",
        "--cert",
        "signer.pem",
        "--id",
        "nope",
        s,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no element has the identifier \"nope\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn parser_limits_can_be_changed_on_the_command_line() {
    let d = Dir::new();
    let f = d.write(
        "deep.xml",
        format!("{}{}", "<a>".repeat(200), "</a>".repeat(200)),
    );
    let f = f.to_str().expect("path");
    let out = d.tereze(&["xml", "c14n", f]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        stderr(&out).contains("nested deeper than the limit of 128"),
        "{}",
        stderr(&out)
    );
    let out = d.tereze(&["xml", "c14n", "--max-depth", "256", f]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let s = sample().to_str().expect("path");
    let out = d.tereze(&["xml", "c14n", "--max-bytes", "1000", s]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("over the limit of 1000 bytes"),
        "{}",
        stderr(&out)
    );
    let out = d.tereze(&["xml", "c14n", "--max-depth", "lots", s]);
    assert_eq!(code(&out), 2, "a bad number is a usage error");
}

#[test]
fn help_lists_the_xml_commands() {
    let d = Dir::new();
    let out = d.tereze(&["xml", "--help"]);
    assert_eq!(code(&out), 0);
    for word in ["c14n", "sign", "verify"] {
        assert!(stdout(&out).contains(word), "{}", stdout(&out));
    }
    let out = d.tereze(&["xml", "verify", "--help"]);
    assert!(stdout(&out).contains("--allow-sha1"));
}
