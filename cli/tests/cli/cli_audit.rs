//! `tereze audit verify` against an anchor (issue 26): a store whose checkpoints an attacker
//! re-signed with a key of their own passes the old check (which says it checked only the
//! stored certificates) and fails against the state's anchor, naming the checkpoint; a genuine
//! store passes against it, ECDSA and GOST alike. GOST needs Debian's
//! `libengine-gost-openssl` (`scripts/setup` installs it).

use std::path::{Path, PathBuf};

use tereze_codecs::dsig::SigningKey;
use tereze_store::{Location, State, Store};
use tereze_testkit::tsa::TestAuthority;
use tereze_timestamp::{batch, request, Evidence};

use crate::devpki::{self, kz_signer};
use crate::net::tereze;
use crate::util::arg;

/// A development PKI for KZ and RU in `d` (KZ's keys of `algorithm`, e.g. `ecdsa-p256`).
fn init_dev(d: &Path, kz_algorithm: &str) {
    devpki::init_dev(
        d,
        "31600",
        &["--hub", "EEC", "--algorithm", &format!("KZ={kz_algorithm}")],
    );
}

/// Writes a node store in `data_dir` holding three messages' transitions, with a checkpoint
/// after each message signed by `key`. An attacker who can write the store does exactly this
/// with a key of their own: any history, checkpoints that verify against the certificate
/// stored with them.
fn write_store(data_dir: &Path, key: &SigningKey) {
    write_store_wanting_tokens(data_dir, key, false)
}

/// [`write_store`], each checkpoint marked as waiting for a time-stamp token when `tokens`.
fn write_store_wanting_tokens(data_dir: &Path, key: &SigningKey, tokens: bool) {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let store = Store::open(&Location::File(data_dir.join("node.redb"))).expect("store");
    for _ in 0..3 {
        let id = uuid::Uuid::new_v4();
        let now = tereze_support::clock::now_ms();
        store
            .write_with(true, now, |t| {
                t.note(id, State::Received, "national-system".into())?;
                t.note(id, State::Queued, "to RU".into())?;
                let covered = t.audit_checkpoint(key)?;
                if let (true, Some(n)) = (tokens, covered) {
                    t.want_checkpoint_token(n - 1)?;
                }
                Ok(covered)
            })
            .expect("write");
    }
}

/// Stamps, through `tsa`, the signature of the checkpoint at entry `of` and keeps the
/// evidence (a batch of one) at entry `at`: the same entry for a genuine token, another for a
/// token over another imprint.
fn stamp(data_dir: &Path, tsa: &TestAuthority, of: u64, at: u64) {
    let store = Store::open(&Location::File(data_dir.join("node.redb"))).expect("store");
    let report = store.verify_audit().expect("report");
    let cp = report
        .checkpoint_results
        .iter()
        .find(|c| c.seq == of)
        .expect("the checkpoint");
    let (imprint, paths) = batch(&[&cp.signature]);
    let (query, _) = request(&imprint);
    let token = tsa.token(&query).expect("a token");
    let evidence = Evidence::new(token, paths[0].clone());
    store
        .write_with(true, tereze_support::clock::now_ms(), |t| {
            t.record_checkpoint_token(at, &evidence.to_bytes())
        })
        .expect("kept");
}

/// A genuine store: an ECDSA development PKI in `d/pki` and, in `d/data`, a store KZ's signer
/// of it wrote, its checkpoints waiting for tokens when `tokens`; the PKI's and the store's
/// paths.
fn genuine_store(d: &Path, tokens: bool) -> (PathBuf, PathBuf) {
    let pki = d.join("pki");
    init_dev(&pki, "ecdsa-p256");
    let data = d.join("data");
    write_store_wanting_tokens(&data, &kz_signer(&pki), tokens);
    (pki, data)
}

/// Runs `tereze audit verify` on the store in `data_dir` with the `extra` flags, which must
/// exit with `code`; its stdout and stderr.
fn verify(data_dir: &Path, extra: &[&str], code: i32) -> (String, String) {
    let mut args = vec!["audit", "verify", arg(data_dir)];
    args.extend_from_slice(extra);
    let (got, out, err) = tereze(&args);
    assert_eq!(got, code, "{out}{err}");
    (out, err)
}

#[test]
fn a_store_re_signed_by_an_attacker_passes_without_an_anchor_and_fails_with_one() {
    let d = tempfile::tempdir().expect("dir");
    let (genuine, attacker) = (d.path().join("pki"), d.path().join("attacker-pki"));
    init_dev(&genuine, "ecdsa-p256");
    // The attacker's own development PKI: the same names, another CA and keys.
    init_dev(&attacker, "ecdsa-p256");
    let data = d.path().join("data");
    write_store(&data, &kz_signer(&attacker));

    let (out, _) = verify(&data, &[], 0);
    assert!(
        out.contains("checked: 3 of 3 checkpoints against the certificate stored with each checkpoint only: no anchor given"),
        "{out}"
    );
    assert!(out.contains("intact\n"), "{out}");

    let anchor = genuine.join("kz/root.pem");
    let (out, err) = verify(&data, &["--anchor", arg(&anchor)], 1);
    assert!(
        out.contains("first failure: checkpoint at entry 1: certificate C=KZ, O=Kazakhstan, CN=KZ document signer (Tereze dev)"),
        "{out}"
    );
    assert!(
        out.contains("does not chain to an anchor at the checkpoint's time"),
        "{out}"
    );
    assert!(
        out.contains("checked: 0 of 3 checkpoints against anchor"),
        "{out}"
    );
    assert!(err.contains("checkpoint at entry 5: certificate"), "{err}");

    // The same through the trust space: the state's document anchors.
    let (out, _) = verify(
        &data,
        &[
            "--trust-space",
            arg(&genuine.join("trust-space.xml")),
            "--trust-space-anchor",
            arg(&genuine.join("eec/root.pem")),
            "--state",
            "KZ",
        ],
        1,
    );
    assert!(
        out.contains("first failure: checkpoint at entry 1:"),
        "{out}"
    );
}

#[test]
fn a_genuine_store_passes_against_its_states_anchor_and_says_so() {
    let d = tempfile::tempdir().expect("dir");
    let (pki, data) = genuine_store(d.path(), false);

    let (out, _) = verify(&data, &["--anchor", arg(&pki.join("kz/root.pem"))], 0);
    assert!(
        out.contains("checked: 3 of 3 checkpoints against anchor C=KZ, O=Kazakhstan, CN=KZ root CA (Tereze dev)\n"),
        "{out}"
    );
    assert!(!out.contains("first failure"), "{out}");

    let (out, _) = verify(
        &data,
        &[
            "--trust-space",
            arg(&pki.join("trust-space.toml")),
            "--state",
            "KZ",
        ],
        0,
    );
    assert!(
        out.contains(
            "checkpoints against anchor C=KZ, O=Kazakhstan, CN=KZ root CA (Tereze dev) (KZ)\n"
        ),
        "{out}"
    );

    // RU's anchor is not KZ's: the genuine store fails against it.
    verify(&data, &["--anchor", arg(&pki.join("ru/root.pem"))], 1);
}

#[test]
fn a_genuine_gost_store_passes_against_its_anchor_and_an_attackers_fails() {
    let d = tempfile::tempdir().expect("dir");
    let (genuine, attacker) = (d.path().join("pki"), d.path().join("attacker-pki"));
    init_dev(&genuine, "gost2012-256");
    init_dev(&attacker, "gost2012-256");
    let anchor = genuine.join("kz/root.pem");

    let data = d.path().join("data");
    write_store(&data, &kz_signer(&genuine));
    let (out, _) = verify(&data, &["--anchor", arg(&anchor)], 0);
    assert!(
        out.contains("checked: 3 of 3 checkpoints against anchor"),
        "{out}"
    );

    let forged = d.path().join("forged");
    write_store(&forged, &kz_signer(&attacker));
    let (out, _) = verify(&forged, &["--anchor", arg(&anchor)], 1);
    assert!(
        out.contains("first failure: checkpoint at entry 1:"),
        "{out}"
    );
}

#[test]
fn audit_verify_refuses_an_anchor_file_without_a_certificate() {
    let d = tempfile::tempdir().expect("dir");
    let (pki, data) = genuine_store(d.path(), false);
    let bad = d.path().join("anchor.pem");
    std::fs::write(&bad, "not a certificate\n").expect("write");
    let (_, err) = verify(&data, &["--anchor", arg(&bad)], 2);
    assert!(
        err.contains("--anchor") && err.contains("anchor.pem"),
        "{err}"
    );

    let (_, err) = verify(
        &data,
        &[
            "--trust-space",
            arg(&pki.join("trust-space.toml")),
            "--state",
            "BY",
        ],
        2,
    );
    assert!(err.contains("--state: BY is not a state"), "{err}");
}

#[test]
fn a_time_stamped_checkpoint_verifies_with_its_authority_and_fails_against_another() {
    let d = tempfile::tempdir().expect("dir");
    let (pki, data) = genuine_store(d.path(), true);
    let tsa = TestAuthority::new();
    // Checkpoints at entries 1 and 3 get their tokens; the one at 5 still waits.
    stamp(&data, &tsa, 1, 1);
    stamp(&data, &tsa, 3, 3);
    let anchor = pki.join("kz/root.pem");

    let (out, _) = verify(&data, &["--anchor", arg(&anchor)], 0);
    assert!(
        out.contains("time-stamps: not checked (no --tsa-cert, no authority of the --trust-space state); 2 of 3 checkpoints carry one"),
        "{out}"
    );

    let (out, _) = verify(
        &data,
        &["--anchor", arg(&anchor), "--tsa-cert", arg(&tsa.ca_path())],
        0,
    );
    assert!(
        out.contains("time-stamps: 2 of 2 tokens verified by authority "),
        "{out}"
    );
    assert!(
        out.contains("time-stamps: 1 checkpoints without a token (entries 5)"),
        "{out}"
    );

    let other = TestAuthority::new();
    let (out, _) = verify(
        &data,
        &[
            "--anchor",
            arg(&anchor),
            "--tsa-cert",
            arg(&other.ca_path()),
        ],
        1,
    );
    assert!(
        out.contains("time-stamps: 0 of 2 tokens verified\n"),
        "{out}"
    );
    assert!(
        out.contains("first failure: checkpoint at entry 1: time-stamp:")
            && out.contains("(untrusted-authority)"),
        "{out}"
    );
}

#[test]
fn a_token_over_another_checkpoints_signature_fails() {
    let d = tempfile::tempdir().expect("dir");
    let (_, data) = genuine_store(d.path(), true);
    let tsa = TestAuthority::new();
    stamp(&data, &tsa, 1, 1);
    // The token of entry 1's checkpoint, kept as entry 3's: a genuine token, another imprint.
    stamp(&data, &tsa, 1, 3);
    let (out, _) = verify(&data, &["--tsa-cert", arg(&tsa.ca_path())], 1);
    assert!(
        out.contains("first failure: checkpoint at entry 3: time-stamp:")
            && out.contains("(other-imprint)"),
        "{out}"
    );
    assert!(
        out.contains("time-stamps: 1 of 2 tokens verified by authority"),
        "{out}"
    );
}
