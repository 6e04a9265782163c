//! `tereze xml verify` as one checks a document by hand: judged at a time (`--at`), with an
//! intermediate the document does not carry (`--untrusted`), against CRLs (`--crl`), and the
//! report of every signature (text and `--format json`). Certificates are made here with the
//! codecs PKI helpers, CRLs with `openssl ca` (testkit's `Ca`).

use std::path::Path;
use std::process::Output;

use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};
use tereze_testkit::ca::Ca;

use crate::util::{code, describe, sample, stderr, stdout, Dir};

type Key = openssl::pkey::PKey<openssl::pkey::Private>;
type Cert = openssl::x509::X509;

/// Issues a certificate for a new key, valid from `from` to `until` days from now, and writes
/// `NAME.pem` and `NAME.key` into `d`.
fn issue(
    d: &Dir,
    name: &str,
    is_ca: bool,
    (from, until): (i64, i64),
    issuer: Option<(&Cert, &Key)>,
) -> (Cert, Key) {
    let key = generate_key(KeyKind::EcP256).expect("key");
    let cert = issue_certificate(
        &CertificateSpec {
            subject: &[("C", "KZ"), ("O", "Tereze test"), ("CN", name)],
            not_before_days: from,
            not_after_days: until,
            is_ca,
        },
        &key,
        issuer,
    )
    .expect("certificate");
    d.write(&format!("{name}.pem"), cert.to_pem().expect("pem"));
    d.write(
        &format!("{name}.key"),
        key.private_key_to_pem_pkcs8().expect("pem"),
    );
    (cert, key)
}

/// Signs the sample with `NAME.key` and `NAME.pem` (only the signer's certificate in
/// `KeyInfo`) into `signed.xml`.
fn sign(d: &Dir, name: &str) {
    let s = sample().to_str().expect("path");
    sign_file(d, name, &[], s, "signed.xml");
}

/// Signs `input` with `NAME.key` and `NAME.pem` and the `tereze xml sign` options `extra`,
/// writing the signed document to `output` in `d`.
fn sign_file(d: &Dir, name: &str, extra: &[&str], input: &str, output: &str) {
    let key = format!("{name}.key");
    let cert = format!("{name}.pem");
    let mut args = vec!["xml", "sign", "--key", &key, "--cert", &cert];
    args.extend_from_slice(extra);
    args.push(input);
    let out = d.tereze(&args);
    exits(&out, 0);
    d.write(output, &out.stdout);
}

fn verify(d: &Dir, extra: &[&str]) -> Output {
    let mut args = vec!["xml", "verify"];
    args.extend_from_slice(extra);
    args.push("signed.xml");
    d.tereze(&args)
}

/// A root CA (`root.pem`) and a `signer` under it, both valid `days` around today, and the
/// sample signed by the signer into `signed.xml`.
fn signed_under_root(d: &Dir, days: (i64, i64)) {
    let root = issue(d, "root", true, days, None);
    issue(d, "signer", false, days, Some((&root.0, &root.1)));
    sign(d, "signer");
}

/// Asserts that the command exited with `expected`.
fn exits(out: &Output, expected: i32) {
    assert_eq!(code(out), expected, "{}", describe(out));
}

/// Asserts that the command exited with `expected` and its stderr says `text`.
fn exits_saying(out: &Output, expected: i32, text: &str) {
    exits(out, expected);
    says(out, text);
}

/// Asserts that stderr says `text`.
fn says(out: &Output, text: &str) {
    assert!(stderr(out).contains(text), "{}", stderr(out));
}

/// Asserts that the report (stdout) says `text`.
fn reports(out: &Output, text: &str) {
    assert!(stdout(out).contains(text), "{}", stdout(out));
}

/// Runs `program` with `args` in `d`, which must succeed; a missing program fails naming
/// `scripts/setup`, which installs it.
fn run_tool(d: &Dir, program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .current_dir(d.tmp.path())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is required (run scripts/setup): {e}"));
    assert!(out.status.success(), "{program}: {}", describe(&out));
}

/// RFC 3339 for now plus `seconds`.
fn from_now(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[test]
fn an_archived_document_verifies_at_a_time_inside_its_certificate_and_not_now() {
    let d = Dir::new();
    let root = issue(&d, "root", true, (-400, 400), None);
    issue(&d, "archived", false, (-40, -10), Some((&root.0, &root.1)));
    sign(&d, "archived");
    let out = verify(&d, &["--trusted", "root.pem"]);
    assert_eq!(code(&out), 1, "expired today: {}", describe(&out));
    says(&out, "CN=archived: certificate has expired");
    reports(&out, ": invalid: ");
    let date = (chrono::Utc::now() - chrono::Duration::days(20))
        .format("%Y-%m-%d")
        .to_string();
    for at in [date.as_str(), &from_now(-20 * 86_400)] {
        let out = verify(&d, &["--trusted", "root.pem", "--at", at]);
        assert_eq!(code(&out), 0, "--at {at}: {}", describe(&out));
        reports(&out, ": valid; signer C=KZ, O=Tereze test, CN=archived");
    }
    let out = verify(&d, &["--trusted", "root.pem", "--at", "last tuesday"]);
    exits_saying(&out, 2, "--at last tuesday: not a time");
    // chrono's `%Y-%m-%d` reads an unpadded date; `--at` does not.
    let out = verify(&d, &["--trusted", "root.pem", "--at", "2026-1-5"]);
    exits_saying(&out, 2, "--at 2026-1-5: not a time");
}

#[test]
fn a_chain_needing_an_intermediate_verifies_with_untrusted_and_not_without() {
    let d = Dir::new();
    let root = issue(&d, "root", true, (-1, 30), None);
    let mid = issue(&d, "issuing", true, (-1, 30), Some((&root.0, &root.1)));
    issue(&d, "signer", false, (-1, 30), Some((&mid.0, &mid.1)));
    sign(&d, "signer");
    let out = verify(&d, &["--trusted", "root.pem"]);
    assert_eq!(code(&out), 1, "no intermediate: {}", describe(&out));
    says(&out, "signer not trusted");
    let out = verify(&d, &["--trusted", "root.pem", "--untrusted", "issuing.pem"]);
    exits(&out, 0);
    reports(&out, "issuer C=KZ, O=Tereze test, CN=issuing");
    // An untrusted certificate is never an anchor.
    issue(&d, "other", true, (-1, 30), None);
    let out = verify(
        &d,
        &["--trusted", "other.pem", "--untrusted", "issuing.pem"],
    );
    exits(&out, 1);
    let out = verify(&d, &["--trusted", "root.pem", "--untrusted", "missing.pem"]);
    exits(&out, 2);
    d.write("junk.pem", "not a certificate");
    let out = verify(&d, &["--trusted", "root.pem", "--untrusted", "junk.pem"]);
    exits_saying(&out, 2, "--untrusted junk.pem: ");
}

#[test]
fn a_revoked_signer_is_refused_after_its_revocation_and_accepted_before() {
    let d = Dir::new();
    signed_under_root(&d, (-10, 30));
    let ca = Ca::new(d.tmp.path());
    ca.run(&["-revoke", "../signer.pem", "-crl_reason", "keyCompromise"]);
    ca.crl(&d.path("root.crl"));
    let later = from_now(60);
    let out = verify(
        &d,
        &["--trusted", "root.pem", "--crl", "root.crl", "--at", &later],
    );
    exits(&out, 1);
    assert!(
        stderr(&out).contains("CN=signer: revoked at ")
            && stderr(&out).contains("reason keyCompromise"),
        "{}",
        stderr(&out)
    );
    let earlier = from_now(-3600);
    let out = verify(
        &d,
        &[
            "--trusted",
            "root.pem",
            "--crl",
            "root.crl",
            "--at",
            &earlier,
        ],
    );
    assert_eq!(
        code(&out),
        0,
        "good before its revocation: {}",
        describe(&out)
    );
    // Without the CRL nothing says it was revoked.
    let out = verify(&d, &["--trusted", "root.pem", "--at", &later]);
    exits(&out, 0);
    // The same CRL as DER.
    run_tool(
        &d,
        "openssl",
        &[
            "crl",
            "-in",
            "root.crl",
            "-outform",
            "DER",
            "-out",
            "root.crl.der",
        ],
    );
    let out = verify(
        &d,
        &[
            "--trusted",
            "root.pem",
            "--crl",
            "root.crl.der",
            "--at",
            &later,
        ],
    );
    exits(&out, 1);
    d.write("junk.crl", "not a CRL");
    let out = verify(&d, &["--trusted", "root.pem", "--crl", "junk.crl"]);
    exits_saying(&out, 2, "--crl junk.crl: CRL: ");
}

/// A CA of its own in a directory of its own (`root.pem`, `root.key`, as testkit's `Ca`
/// wants them), named `cn`, that revoked a certificate of its own: its CRL in `to`.
fn foreign_crl(cn: &str, to: &Path) {
    let other = Dir::new();
    let key = generate_key(KeyKind::EcP256).expect("key");
    let named = issue_certificate(
        &CertificateSpec {
            subject: &[("C", "KZ"), ("O", "Tereze test"), ("CN", cn)],
            not_before_days: -10,
            not_after_days: 30,
            is_ca: true,
        },
        &key,
        None,
    )
    .expect("certificate");
    other.write("root.pem", named.to_pem().expect("pem"));
    other.write("root.key", key.private_key_to_pem_pkcs8().expect("pem"));
    issue(&other, "victim", false, (-10, 30), Some((&named, &key)));
    let ca = Ca::new(other.tmp.path());
    ca.run(&["-revoke", "../victim.pem"]);
    ca.crl(to);
}

#[test]
fn a_crl_of_a_ca_outside_the_chain_is_ignored_and_one_under_its_issuers_name_refused() {
    let d = Dir::new();
    signed_under_root(&d, (-10, 30));
    foreign_crl("elsewhere", &d.path("elsewhere.crl"));
    let out = verify(&d, &["--trusted", "root.pem", "--crl", "elsewhere.crl"]);
    assert_eq!(
        code(&out),
        0,
        "says nothing of this chain: {}",
        describe(&out)
    );
    // Same issuer name as the signer's CA, another key: not the issuer's CRL.
    foreign_crl("root", &d.path("impostor.crl"));
    let out = verify(&d, &["--trusted", "root.pem", "--crl", "impostor.crl"]);
    exits_saying(
        &out,
        1,
        "CRL of C=KZ, O=Tereze test, CN=root cannot be used",
    );
}

#[test]
fn the_json_report_names_the_signature_the_signer_and_what_it_covers() {
    let d = Dir::new();
    signed_under_root(&d, (-1, 30));
    let out = verify(
        &d,
        &[
            "--trusted",
            "root.pem",
            "--format",
            "json",
            "--at",
            "2030-01-01",
        ],
    );
    exits(&out, 1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["valid"], false);
    assert_eq!(v["at"], "2030-01-01T00:00:00Z");
    assert_eq!(v["signatures"][0]["valid"], false);
    assert!(v["signatures"][0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("certificate has expired")));

    let out = verify(&d, &["--trusted", "root.pem", "--format", "json"]);
    exits(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["valid"], true);
    assert_eq!(v["file"], "signed.xml");
    let s = &v["signatures"][0];
    assert_eq!(s["valid"], true);
    assert!(s["reason"].is_null());
    assert!(
        s["location"]
            .as_str()
            .is_some_and(|l| l.contains("ds:Signature[1]")),
        "{s}"
    );
    assert_eq!(s["signer"]["subject"], "C=KZ, O=Tereze test, CN=signer");
    assert_eq!(s["signer"]["issuer"], "C=KZ, O=Tereze test, CN=root");
    let serial = root_serial_of(&d.path("signer.pem"));
    assert_eq!(s["signer"]["serial"], serial);
    assert_eq!(s["algorithm"], "ecdsa-sha256");
    assert_eq!(
        s["algorithm_uri"],
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    );
    assert_eq!(s["covers"][0]["uri"], "");
    assert!(
        s["covers"][0]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/edec:ExportDeclaration")),
        "{s}"
    );
}

/// The serial of a PEM certificate as OpenSSL's hex.
fn root_serial_of(pem: &Path) -> String {
    let cert = Cert::from_pem(&std::fs::read(pem).expect("read")).expect("pem");
    cert.serial_number()
        .to_bn()
        .expect("bn")
        .to_hex_str()
        .expect("hex")
        .to_string()
}

const EDEC: &str = "urn:EEC:R:CC:01:001:ExportDeclarationDetails:v1.0.0";

/// The sample co-signed: the inspector (`inspector.pem`, under `inspector-ca.pem`) signs the
/// permit (`#phyto-ref`), then the authority (`authority.pem`, under `root.pem`) the whole
/// declaration, its envelope around the first signature.
fn co_signed(d: &Dir) {
    let root = issue(d, "root", true, (-1, 30), None);
    let inspectors = issue(d, "inspector-ca", true, (-1, 30), None);
    issue(d, "authority", false, (-1, 30), Some((&root.0, &root.1)));
    issue(
        d,
        "inspector",
        false,
        (-1, 30),
        Some((&inspectors.0, &inspectors.1)),
    );
    let s = sample().to_str().expect("path");
    sign_file(d, "inspector", &["--id", "phyto-ref"], s, "inspected.xml");
    sign_file(d, "authority", &[], "inspected.xml", "signed.xml");
}

#[test]
fn a_document_with_two_signatures_reports_both() {
    let d = Dir::new();
    co_signed(&d);
    let out = verify(
        &d,
        &["--trusted", "root.pem", "--trusted", "inspector-ca.pem"],
    );
    exits(&out, 0);
    let report = stdout(&out);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 2, "{report}");
    assert!(
        lines[0].contains("ccdo:PermitDocument[1]/ds:Signature[1]")
            && lines[0].contains(": valid; signer C=KZ, O=Tereze test, CN=inspector")
            && lines[0].contains("(URI \"#phyto-ref\")"),
        "{report}"
    );
    assert!(
        lines[1].starts_with("/edec:ExportDeclarationDetails[1]/ds:Signature[1]")
            && lines[1].contains(": valid; signer C=KZ, O=Tereze test, CN=authority")
            && lines[1].contains("issuer C=KZ, O=Tereze test, CN=root")
            && lines[1].contains("covers /edec:ExportDeclarationDetails[1] (URI \"\")"),
        "{report}"
    );
    let out = verify(
        &d,
        &[
            "--trusted",
            "root.pem",
            "--trusted",
            "inspector-ca.pem",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["valid"], true);
    assert_eq!(v["signatures"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        v["signatures"][0]["signer"]["subject"],
        "C=KZ, O=Tereze test, CN=inspector"
    );
    assert_eq!(
        v["signatures"][1]["signer"]["subject"],
        "C=KZ, O=Tereze test, CN=authority"
    );
}

#[test]
fn one_invalid_signature_of_two_refuses_with_all_and_not_when_only_the_valid_one_is_asked() {
    let d = Dir::new();
    co_signed(&d);
    // The inspectors' CA is not trusted: the inspector's signature is invalid.
    for extra in [&[][..], &["--all"][..]] {
        let mut args = vec!["--trusted", "root.pem"];
        args.extend_from_slice(extra);
        let out = verify(&d, &args);
        assert_eq!(code(&out), 1, "{extra:?}: {}", describe(&out));
        let report = stdout(&out);
        assert!(
            report.lines().count() == 2
                && report.contains("ccdo:PermitDocument[1]/ds:Signature[1] (line ")
                && report.contains("): invalid: signer not trusted")
                && report.contains("; claims signer C=KZ, O=Tereze test, CN=inspector")
                && report.contains(": valid; signer C=KZ, O=Tereze test, CN=authority"),
            "{report}"
        );
        says(&out, "is not valid (1 of 2 signatures are)");
    }
    let ns = format!("edec={EDEC}");
    let out = verify(
        &d,
        &[
            "--trusted",
            "root.pem",
            "--ns",
            &ns,
            "--covering",
            "/edec:ExportDeclarationDetails",
            "--signed-out",
            "declaration.xml",
        ],
    );
    exits(&out, 0);
    reports(
        &out,
        ": not checked; claims signer C=KZ, O=Tereze test, CN=inspector",
    );
    let signed = d.read("declaration.xml");
    assert!(
        signed.starts_with("<edec:ExportDeclarationDetails "),
        "{signed}"
    );
    // --signature is the same option; Clark notation needs no --ns.
    let clark = format!("/{{{EDEC}}}ExportDeclarationDetails");
    let out = verify(&d, &["--trusted", "root.pem", "--signature", &clark]);
    exits(&out, 0);
    // Asking only for the inspector's signature: that one is checked, and refused.
    let permit = format!("{clark}/{{urn:EEC:M:ComplexDataObjects}}PermitDocumentList/{{urn:EEC:M:ComplexDataObjects}}PermitDocument");
    let out = verify(&d, &["--trusted", "root.pem", "--covering", &permit]);
    exits(&out, 1);
    // Which signed element to write is ambiguous without --covering.
    let out = verify(&d, &["--trusted", "root.pem", "--signed-out", "x.xml"]);
    exits_saying(&out, 2, "name it with --covering PATH");
    let out = verify(
        &d,
        &[
            "--trusted",
            "root.pem",
            "--ns",
            "edec",
            "--covering",
            "/edec:X",
        ],
    );
    exits_saying(&out, 2, "--ns edec: write PREFIX=URI");
    let out = verify(&d, &["--trusted", "root.pem", "--covering", "/edec:X"]);
    assert_eq!(code(&out), 2, "an unbound prefix: {}", describe(&out));
    says(&out, "--covering: element path");
}

/// A SOAP 1.1 message whose `ds:Signature` in `Header/wsse:Security` signs the `Body` by
/// `wsu:Id`, signed by xmlsec1 from this template (the signer's certificate in X509Data).
const WSS_TEMPLATE: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">
  <soap:Header>
    <wsse:Security>
      <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:SignedInfo>
          <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
          <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>
          <ds:Reference URI="#Body-1">
            <ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
            <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
            <ds:DigestValue/>
          </ds:Reference>
        </ds:SignedInfo>
        <ds:SignatureValue/>
        <ds:KeyInfo><ds:X509Data/></ds:KeyInfo>
      </ds:Signature>
    </wsse:Security>
  </soap:Header>
  <soap:Body wsu:Id="Body-1">
    <m:GetCertificateStatus xmlns:m="urn:tereze:test:wss"><m:Number>KZ-PHY-2026-004417</m:Number></m:GetCertificateStatus>
  </soap:Body>
</soap:Envelope>
"##;

#[test]
fn a_ws_security_message_verifies_under_the_wss_profile_only() {
    let d = Dir::new();
    let root = issue(&d, "root", true, (-1, 30), None);
    issue(&d, "signer", false, (-1, 30), Some((&root.0, &root.1)));
    d.write("template.xml", WSS_TEMPLATE);
    run_tool(
        &d,
        "xmlsec1",
        &[
            "--sign",
            "--privkey-pem",
            "signer.key,signer.pem",
            "--id-attr:Id",
            "http://schemas.xmlsoap.org/soap/envelope/:Body",
            "--output",
            "signed.xml",
            "template.xml",
        ],
    );
    let out = verify(
        &d,
        &[
            "--trusted",
            "root.pem",
            "--profile",
            "wss",
            "--signed-out",
            "body.xml",
        ],
    );
    exits(&out, 0);
    assert!(
        stdout(&out)
            .starts_with("/soap:Envelope[1]/soap:Header[1]/wsse:Security[1]/ds:Signature[1]")
            && stdout(&out).contains(": valid; signer C=KZ, O=Tereze test, CN=signer")
            && stdout(&out).contains("covers /soap:Envelope[1]/soap:Body[1] (URI \"#Body-1\")"),
        "{}",
        stdout(&out)
    );
    let body = d.read("body.xml");
    assert!(
        body.starts_with("<soap:Body ") && body.contains("KZ-PHY-2026-004417"),
        "the signed Body, as digested: {body}"
    );
    // The same message under the default profile: not an enveloped signature.
    let out = verify(&d, &["--trusted", "root.pem"]);
    exits(&out, 1);
    // The Body named explicitly is the same check.
    let out = verify(
        &d,
        &[
            "--trusted",
            "root.pem",
            "--profile",
            "wss",
            "--ns",
            "s=http://schemas.xmlsoap.org/soap/envelope/",
            "--element",
            "/s:Envelope/s:Body",
        ],
    );
    exits(&out, 0);
}

#[test]
fn a_crl_expired_before_the_verification_time_is_reported() {
    let d = Dir::new();
    signed_under_root(&d, (-10, 90));
    let ca = Ca::new(d.tmp.path());
    // testkit's CA writes CRLs with a next update 30 days on.
    ca.crl(&d.path("root.crl"));
    let out = verify(&d, &["--trusted", "root.pem", "--crl", "root.crl"]);
    assert_eq!(code(&out), 0, "current CRL: {}", describe(&out));
    let later = from_now(40 * 86_400);
    let out = verify(
        &d,
        &["--trusted", "root.pem", "--crl", "root.crl", "--at", &later],
    );
    exits(&out, 1);
    assert!(
        stderr(&out)
            .contains("CRL of C=KZ, O=Tereze test, CN=root is not valid at the verification time"),
        "{}",
        stderr(&out)
    );
}
