//! `tereze trust`: the Commission-signed trust space is built, signed, verified, shown and
//! compared; tampering and the wrong anchor are caught; nodes refuse an unsigned space when
//! they are told whose signature to expect.

use std::path::Path;

use crate::net::tereze;
use crate::util::arg;

/// A dev PKI for KZ and RU with the hub EEC in `d`.
fn init_dev(d: &Path, base_port: &str) {
    crate::devpki::init_dev(d, base_port, &[]);
}

/// Runs `tereze trust <command> --anchor <anchor> <files>`.
fn anchored(command: &str, anchor: &Path, files: &[&Path]) -> (i32, String, String) {
    let mut args = vec!["trust", command, "--anchor", arg(anchor)];
    args.extend(files.iter().map(|f| arg(f)));
    tereze(&args)
}

/// Writes `unsigned` to `<name>-unsigned.xml` in `d` and signs it with `trust sign` as the
/// Commission of the dev PKI there.
fn sign(d: &Path, unsigned: &str, name: &str) -> (i32, String, String) {
    let file = d.join(format!("{name}-unsigned.xml"));
    std::fs::write(&file, unsigned).expect("write");
    tereze(&[
        "trust",
        "sign",
        "--key",
        arg(&d.join("eec/signer.key")),
        "--cert",
        arg(&d.join("eec/signer.pem")),
        arg(&file),
    ])
}

/// Signs `unsigned` (see [`sign`]) into `v2.xml` in `d`; returns the signed text.
fn sign_v2(d: &Path, unsigned: &str) -> String {
    let (code, signed, err) = sign(d, unsigned, "v2");
    assert_eq!(code, 0, "{err}");
    std::fs::write(d.join("v2.xml"), &signed).expect("write");
    signed
}

/// `trust diff` of `trust-space.xml` and `v2.xml` in `d`, which must succeed: its output.
fn diff_v1_v2(d: &Path, anchor: &Path) -> String {
    let (code, out, err) = anchored(
        "diff",
        anchor,
        &[&d.join("trust-space.xml"), &d.join("v2.xml")],
    );
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn build_sign_verify_show_and_diff() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    init_dev(d, "19900");
    let anchor = d.join("eec/root.pem");

    // init-dev's own signed space verifies against the Commission's anchor only.
    let (code, out, err) = anchored("verify", &anchor, &[&d.join("trust-space.xml")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("valid: trust space v1") && out.contains("EEC document signer"),
        "{out}"
    );
    let (code, _, err) = anchored(
        "verify",
        &d.join("kz/root.pem"),
        &[&d.join("trust-space.xml")],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("the Commission's signature does not hold"),
        "{err}"
    );

    // Version 2: RU may use one more process.
    let source = std::fs::read_to_string(d.join("trust-space.toml")).expect("source");
    let v2 = source.replacen("\"P.TS.01\"]", "\"P.TS.01\", \"P.SS.01\"]", 2);
    assert_ne!(v2, source);
    std::fs::write(d.join("v2.toml"), v2).expect("write");
    let (code, unsigned, err) =
        tereze(&["trust", "build", "--version", "2", arg(&d.join("v2.toml"))]);
    assert_eq!(code, 0, "{err}");
    let signed = sign_v2(d, &unsigned);
    let (code, out, err) = anchored("verify", &anchor, &[&d.join("v2.xml")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("valid: trust space v2"), "{out}");

    let (code, out, _) = anchored("show", &anchor, &[&d.join("v2.xml")]);
    assert_eq!(code, 0);
    assert!(
        out.contains("state KZ (Kazakhstan) member") && out.contains("P.SS.01"),
        "{out}"
    );
    assert!(
        out.contains("recognition: * from * recognised by *"),
        "{out}"
    );

    let out = diff_v1_v2(d, &anchor);
    assert!(out.contains("~ version 1 -> 2"), "{out}");
    assert!(
        out.contains("~ state KZ: processes") && out.contains("~ state RU: processes"),
        "{out}"
    );
    assert!(!out.contains("anchors"), "{out}");

    // Tampering with the signed document (another endpoint for RU) is caught.
    let tampered = signed.replacen("https://127.0.0.1:19910", "https://203.0.113.9:19910", 1);
    assert_ne!(tampered, signed);
    std::fs::write(d.join("tampered.xml"), tampered).expect("write");
    let (code, _, err) = anchored("verify", &anchor, &[&d.join("tampered.xml")]);
    assert_eq!(code, 1, "{err}");

    // A signed space without the anchor to check it, and a broken source, are input errors.
    let (code, _, err) = tereze(&["trust", "show", arg(&d.join("v2.xml"))]);
    assert_eq!(code, 2);
    assert!(err.contains("needs the Commission's anchor"), "{err}");
    std::fs::write(
        d.join("bad.toml"),
        source.replacen("valid_from = \"", "valid_from = \"x", 1),
    )
    .expect("write");
    let (code, _, err) = tereze(&["trust", "build", arg(&d.join("bad.toml"))]);
    assert_eq!(code, 2);
    assert!(err.contains("recognition[0].valid_from"), "{err}");
    // A signed year chrono would read is refused too, saying why.
    std::fs::write(
        d.join("bad.toml"),
        source.replacen("valid_from = \"", "valid_from = \"+", 1),
    )
    .expect("write");
    let (code, _, err) = tereze(&["trust", "build", arg(&d.join("bad.toml"))]);
    assert_eq!(code, 2);
    assert!(
        err.contains("recognition[0].valid_from: \"+")
            && err.contains("is not a date (YYYY-MM-DD): the year (YYYY) takes exactly 4 digits"),
        "{err}"
    );
}

#[test]
fn a_node_told_the_commission_anchor_refuses_an_unsigned_trust_space() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    init_dev(d, "19950");
    let config = d.join("kz/node.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace("trust-space.xml", "trust-space.toml")).expect("write");
    let (code, _, err) = tereze(&["node", "run", "--config", arg(&config)]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unsigned (TOML) trust space is refused"),
        "{err}"
    );
}

#[test]
fn a_tester_state_is_marked_through_build_sign_show_and_diff_and_absent_means_normal() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    init_dev(d, "19900");
    let anchor = d.join("eec/root.pem");

    // A space written before the flag existed carries no attribute: normal traffic.
    let v1 = std::fs::read_to_string(d.join("trust-space.xml")).expect("v1");
    assert!(!v1.contains("Conformance"), "{v1}");
    let (code, out, err) = anchored("show", &anchor, &[&d.join("trust-space.xml")]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("conformance"), "{out}");

    // KZ becomes a tester state.
    let source = std::fs::read_to_string(d.join("trust-space.toml")).expect("source");
    let v2 = source.replacen("code = \"KZ\"\n", "code = \"KZ\"\nconformance = true\n", 1);
    assert_ne!(v2, source);
    std::fs::write(d.join("v2.toml"), v2).expect("write");
    let (code, out, err) = tereze(&["trust", "show", arg(&d.join("v2.toml"))]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("state KZ (Kazakhstan) member, conformance"),
        "{out}"
    );
    let (code, unsigned, err) =
        tereze(&["trust", "build", "--version", "2", arg(&d.join("v2.toml"))]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        unsigned.matches("Conformance=\"true\"").count(),
        1,
        "{unsigned}"
    );
    sign_v2(d, &unsigned);
    let (code, out, err) = anchored("show", &anchor, &[&d.join("v2.xml")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("state KZ (Kazakhstan) member, conformance"),
        "{out}"
    );
    assert!(out.contains("state RU (Russia) member\n"), "{out}");
    let out = diff_v1_v2(d, &anchor);
    assert!(
        out.contains("~ state KZ: conformance false -> true"),
        "{out}"
    );
    assert!(!out.contains("state RU: conformance"), "{out}");

    // A value other than true or false is refused with its path.
    let (code, _, err) = sign(
        d,
        &unsigned.replacen("Conformance=\"true\"", "Conformance=\"yes\"", 1),
        "bad",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("@Conformance: \"yes\" is not true or false"),
        "{err}"
    );
}

/// `source` with `policy` as KZ's `[state.algorithms]` (KZ's `[[state]]` ends where RU's begins).
fn with_kz_policy(source: &str, policy: &str) -> String {
    let kz = source.find("code = \"KZ\"").expect("KZ");
    let end = kz + source[kz..].find("[[state]]").expect("a state after KZ");
    format!(
        "{}[state.algorithms]\n{policy}\n{}",
        &source[..end],
        &source[end..]
    )
}

#[test]
fn a_states_algorithm_policy_is_shown_diffed_signed_and_enforced_by_recognise() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    init_dev(d, "19950");
    let anchor = d.join("eec/root.pem");

    // An envelope KZ's signer signs as every node does today: ECDSA P-256, SHA-256.
    let env = d.join("envelope.xml");
    crate::devpki::write_envelope(
        &env,
        &crate::net::header("KZ", "RU"),
        &crate::devpki::kz_signer(d),
    );
    let recognise = |trust: &Path, anchor: Option<&Path>| {
        let mut args = vec!["recognise", "--trust", arg(trust), "--state", "RU"];
        if let Some(a) = anchor {
            args.extend(["--anchor", arg(a)]);
        }
        args.push(arg(&env));
        tereze(&args)
    };
    let (code, out, err) = recognise(&d.join("trust-space.toml"), None);
    assert_eq!(code, 0, "no policy: recognised as before\n{out}{err}");

    // KZ is listed for GOST only.
    let source = std::fs::read_to_string(d.join("trust-space.toml")).expect("source");
    let gost = with_kz_policy(
        &source,
        "signature = [\"gost2012-256\", \"gost2012-512\"]\ndigest = [\"gost2012-256\"]",
    );
    std::fs::write(d.join("gost.toml"), gost).expect("write");
    let (code, out, err) = tereze(&["trust", "show", arg(&d.join("gost.toml"))]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("  algorithms: signature gost2012-256, gost2012-512; digest gost2012-256\n"),
        "{out}"
    );
    assert!(
        out.contains("  algorithms: no restriction (the node's defaults)\n"),
        "RU has none: {out}"
    );

    // Through the signed document, as nodes read it.
    let (code, unsigned, err) = tereze(&[
        "trust",
        "build",
        "--version",
        "2",
        arg(&d.join("gost.toml")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(unsigned.matches("<ts:Algorithms").count(), 1, "{unsigned}");
    let (code, signed, err) = sign(d, &unsigned, "gost");
    assert_eq!(code, 0, "{err}");
    std::fs::write(d.join("gost.xml"), signed).expect("write");
    let (code, out, _) = anchored(
        "diff",
        &anchor,
        &[&d.join("trust-space.xml"), &d.join("gost.xml")],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "~ state KZ: algorithms no restriction (the node's defaults) -> signature \
             gost2012-256, gost2012-512; digest gost2012-256"
        ),
        "{out}"
    );
    assert!(!out.contains("state RU: algorithms"), "{out}");

    // The ECDSA envelope is now a downgrade, refused by the TOML and by the signed version.
    for (trust, anchor) in [
        (d.join("gost.toml"), None),
        (d.join("gost.xml"), Some(anchor.as_path())),
    ] {
        let (code, out, err) = recognise(&trust, anchor);
        assert_eq!(code, 1, "{out}{err}");
        let said = format!("{out}{err}");
        assert!(
            said.contains("algorithm-not-permitted: KZ's documents: signature method ecdsa-sha256 is not permitted (permitted: gost2012-256, gost2012-512)"),
            "{said}"
        );
    }

    // An unknown name is refused at build, with its state and position.
    let bad = with_kz_policy(&source, "signature = [\"ecdsa-sha256\", \"gost2015\"]");
    std::fs::write(d.join("bad.toml"), bad).expect("write");
    let (code, _, err) = tereze(&["trust", "build", arg(&d.join("bad.toml"))]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "state[0] (KZ).algorithms.signature[1]: \"gost2015\" is not a known signature method"
        ),
        "{err}"
    );
}

#[test]
fn time_stamping_authorities_are_shown_diffed_and_signed() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    init_dev(d, "19900");
    let anchor = d.join("eec/root.pem");
    let before = d.join("before.xml");
    std::fs::copy(d.join("trust-space.xml"), &before).expect("copy");
    let pem = std::fs::read_to_string(d.join("kz/root.pem")).expect("a certificate");
    tereze_trust::devpki::add_timestamp_authority(
        d,
        Some("EEC"),
        "KZ",
        "http://127.0.0.1:9/tsa",
        &pem,
        true,
    )
    .expect("added");
    let (code, out, err) = anchored("show", &anchor, &[&d.join("trust-space.xml")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("  time-stamping authority http://127.0.0.1:9/tsa\n  time-stamp token required before delivery\n"),
        "{out}"
    );
    assert_eq!(
        out.matches("time-stamping authority").count(),
        1,
        "KZ only: {out}"
    );
    let (code, out, err) = anchored("diff", &anchor, &[&before, &d.join("trust-space.xml")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("~ state KZ: time-stamping authorities"),
        "{out}"
    );
    assert!(
        out.contains("~ state KZ: timestamp_required false -> true"),
        "{out}"
    );
}

#[test]
fn required_national_signatures_are_built_signed_diffed_and_shown() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    init_dev(d, "19900");
    let anchor = d.join("eec/root.pem");
    // RU requires the issuing authority's signature on phytosanitary certificates.
    let source = std::fs::read_to_string(d.join("trust-space.toml")).expect("source");
    let ru = source.find("code = \"RU\"").expect("RU");
    let end = source[ru..]
        .find("[[state]]")
        .map_or(source.len(), |e| ru + e);
    let v2 = format!(
        "{}\n[[state.national_signature]]\ndocument = \"R.SF.01.001\"\nrequired = true\n\n{}",
        &source[..end],
        &source[end..]
    );
    std::fs::write(d.join("v2.toml"), v2).expect("write");
    let (code, unsigned, err) =
        tereze(&["trust", "build", "--version", "2", arg(&d.join("v2.toml"))]);
    assert_eq!(code, 0, "{err}");
    assert!(
        unsigned.contains(r#"<ts:NationalSignature Document="R.SF.01.001" Required="true"/>"#),
        "{unsigned}"
    );
    sign_v2(d, &unsigned);
    let out = diff_v1_v2(d, &anchor);
    assert!(
        out.contains("~ state RU: national signatures required [] -> [\"R.SF.01.001\"]"),
        "{out}"
    );
    assert!(!out.contains("state KZ: national"), "{out}");
    let (code, out, err) = anchored("show", &anchor, &[&d.join("v2.xml")]);
    assert_eq!(code, 0, "{err}");
    // One state's lines of `trust show`: from its "state XX" line to the next state's.
    let section = |code: &str| {
        let start = out.find(&format!("state {code} ")).expect("state shown");
        let rest = &out[start..];
        rest[..rest[1..].find("\nstate ").map_or(rest.len(), |e| e + 1)].to_owned()
    };
    let line = "national authority's signature required for: R.SF.01.001";
    assert!(section("RU").contains(line), "{out}");
    assert!(!section("KZ").contains("national authority"), "{out}");
}
