//! `tereze recognise` judges a signer's key at the judged time, the earliest evidence of when
//! the signature existed (docs/recognition.md, "The judged time"), so the attack, a
//! revoked key signing with a backdated `CreatedAt`, is rejected. CRLs are made with the
//! `openssl ca` command (installed by scripts/setup), as a state's CA would; tokens by the test
//! authority (`openssl ts -reply`, testkit::tsa).

use std::path::Path;

use chrono::{Duration, Utc};

use tereze_testkit::ca::Ca;
use tereze_testkit::tsa::TestAuthority;

use crate::devpki::{init_dev, kz_signer, write_envelope};
use crate::net::tereze;
use crate::util::arg;

/// Revokes `cert` with the CA in `ca_dir` (root.pem, root.key) now, and writes its CRL to
/// `crl`.
fn revoke(ca_dir: &Path, cert: &Path, crl: &Path) {
    let ca = Ca::new(ca_dir);
    ca.revoke(cert);
    ca.crl(crl);
}

/// Runs `tereze recognise` as RU on `file`, with the trust space of the dev PKI in `d`, KZ's
/// CRL `crl` and the `extra` flags.
fn recognise_as_ru(d: &Path, crl: &Path, extra: &[&str], file: &Path) -> (i32, String, String) {
    let trust = d.join("trust-space.toml");
    let crl_arg = format!("KZ={}", crl.display());
    let mut args = vec![
        "recognise",
        "--trust",
        arg(&trust),
        "--state",
        "RU",
        "--crl",
        &crl_arg,
    ];
    args.extend(extra);
    args.push(arg(file));
    tereze(&args)
}

/// The reproduction: KZ's CA revokes its document signer; an envelope signed with that
/// key afterwards, its `CreatedAt` set five minutes before the revocation, is rejected when
/// nothing but its arrival shows when it was signed. Stored before the revocation, the same
/// envelope stands.
#[test]
fn a_revoked_key_gains_nothing_by_backdating_created_at() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    init_dev(d, "30000", &[]);
    let before_revocation = Utc::now() - Duration::seconds(2);
    let crl = d.join("kz-crl.pem");
    revoke(&d.join("kz"), &d.join("kz/signer.pem"), &crl);

    let stolen = kz_signer(d);
    let mut h = crate::net::header("KZ", "RU");
    h.created_at -= Duration::minutes(5);
    let env = d.join("backdated.xml");
    write_envelope(&env, &h, &stolen);
    let recognise = |extra: &[&str]| recognise_as_ru(d, &crl, extra, &env);

    let (code, out, err) = recognise(&[]);
    assert_eq!(code, 1, "recognised with a backdated CreatedAt\n{out}{err}");
    assert!(err.contains(": certificate-revoked: "), "{err}");
    assert!(
        err.contains("\njudged at ") && err.contains(" (first stored by this node)"),
        "{err}"
    );

    // Judged again with the time RU first stored it, before the revocation: it stands. `--at`
    // is the older name of `--received-at`.
    let stored = before_revocation.to_rfc3339();
    for flag in ["--received-at", "--at"] {
        let (code, out, err) = recognise(&[flag, &stored]);
        assert_eq!(code, 0, "{flag}: {out}{err}");
        assert!(out.starts_with("recognised R.CC.01.001 "), "{out}");
        assert!(
            out.contains(&format!(
                "\njudged at {} (first stored by this node)\n",
                before_revocation.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            )),
            "{out}"
        );
    }
    let (code, _, err) = recognise(&["--received-at", "yesterday"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--received-at: \"yesterday\" is not an RFC 3339 time"),
        "{err}"
    );
}

/// A dev PKI for KZ and RU in `d`, KZ's document signer and its envelopes time-stamped by
/// `tsa` (listed for KZ in the trust space); returns KZ's signing key.
fn init_with_authority(
    d: &Path,
    base_port: &str,
    tsa: &TestAuthority,
) -> tereze_codecs::dsig::SigningKey {
    init_dev(d, base_port, &[]);
    let path = d.join("trust-space.toml");
    let text = std::fs::read_to_string(&path).expect("trust space");
    let ru = "[[state]]\ncode = \"RU\"\n";
    assert!(text.contains(ru), "{text}");
    let listed = format!(
        "[[state.timestamp_authority]]\nurl = \"{}\"\ncertificates = \"\"\"\n{}\"\"\"\n\n{ru}",
        tsa.url(),
        tsa.ca_pem()
    );
    std::fs::write(&path, text.replacen(ru, &listed, 1)).expect("write");
    kz_signer(d)
}

/// Evidence from `tsa` over the signature of the envelope in `file`, a batch of one, as the
/// node stores and sends it.
fn stamp(tsa: &TestAuthority, file: &Path) -> Vec<u8> {
    let doc = tereze_codecs::xml::parse(&std::fs::read(file).expect("read")).expect("envelope");
    let value = tereze_codecs::dsig::claimed_signature_value(&doc).expect("a signature value");
    let (imprint, paths) = tereze_timestamp::batch(&[value]);
    let (query, _) = tereze_timestamp::request(&imprint);
    let token = tsa.token(&query).expect("a token");
    tereze_timestamp::Evidence::new(token, paths[0].clone()).to_bytes()
}

/// With the test authority listed for KZ: a token obtained before the revocation shows the
/// signature existed then, so `recognise` accepts it and says it judged at the token's time;
/// a token obtained for the backdated envelope after the revocation changes nothing; a token
/// over another envelope is `timestamp-invalid`.
#[test]
fn recognise_judges_at_a_tokens_time_from_the_test_authority() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let tsa = TestAuthority::new();
    let kz = init_with_authority(d, "30020", &tsa);
    let write = |name: &str, h: &tereze_codecs::envelope::Header| {
        let path = d.join(name);
        write_envelope(&path, h, &kz);
        path
    };
    let honest = write("honest.xml", &crate::net::header("KZ", "RU"));
    let honest_token = d.join("honest.tst");
    std::fs::write(&honest_token, stamp(&tsa, &honest)).expect("write");
    // Revocation times have a resolution of a second: the token stays before.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let crl = d.join("kz-crl.pem");
    revoke(&d.join("kz"), &d.join("kz/signer.pem"), &crl);
    let mut h = crate::net::header("KZ", "RU");
    h.created_at -= Duration::minutes(5);
    let backdated = write("backdated.xml", &h);
    let backdated_token = d.join("backdated.tst");
    std::fs::write(&backdated_token, stamp(&tsa, &backdated)).expect("write");

    let recognise = |file: &Path, token: Option<&Path>| match token {
        Some(t) => recognise_as_ru(d, &crl, &["--timestamp", arg(t)], file),
        None => recognise_as_ru(d, &crl, &[], file),
    };

    let (code, out, err) = recognise(&honest, Some(&honest_token));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("recognised R.CC.01.001 "), "{out}");
    assert!(
        out.contains("\njudged at ")
            && out.contains("(time-stamp token ")
            && out.contains("Tereze test TSA"),
        "{out}"
    );
    // Without its token, only its arrival (now) shows when it existed: revoked.
    let (code, _, err) = recognise(&honest, None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(": certificate-revoked: "), "{err}");

    // The attack with a token: the token is as late as the signature really is.
    let (code, _, err) = recognise(&backdated, Some(&backdated_token));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(": certificate-revoked: "), "{err}");
    assert!(err.contains("(time-stamp token "), "{err}");
    // Another envelope's token is no evidence for this one.
    let (code, _, err) = recognise(&backdated, Some(&honest_token));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(": timestamp-invalid: other-imprint: "),
        "{err}"
    );
    // A file that cannot be read is bad input, named by its flag.
    let (code, _, err) = recognise(&honest, Some(&d.join("missing.tst")));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--timestamp ") && err.contains("cannot read"),
        "{err}"
    );
}
