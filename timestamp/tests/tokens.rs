//! Tokens from a real authority (`openssl ts -reply`, testkit's test authority): the ones our
//! client obtains verify with `openssl ts -verify` (over `-digest` and over `-data root.bin`)
//! and with [`verify`]; a token made with the openssl CLI alone verifies with [`verify`]; and
//! each bad token is refused with its own error.

use std::path::Path;
use std::time::Duration;

use tereze_testkit::tsa::{arg, openssl_ts_verify, TestAuthority, TsaOptions};
use tereze_timestamp::{batch, request, verify, Authority, Client, Evidence, TimestampError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn authority_of(tsa: &TestAuthority) -> Authority {
    Authority::from_pem("KZ", &tsa.url(), tsa.ca_pem().as_bytes()).expect("authority")
}

fn stamp(tsa: &TestAuthority, imprint: &[u8; 32]) -> Result<Vec<u8>, TimestampError> {
    let client = Client::new(&tsa.url(), Duration::from_secs(20)).expect("client");
    runtime().block_on(client.stamp(imprint))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn tokens_our_client_obtains_verify_here_and_with_openssl() {
    for options in [
        TsaOptions::default(),
        TsaOptions {
            rsa: true,
            ess_v2: true,
            ..TsaOptions::default()
        },
        // The token carries an intermediate CA; the trust space lists the root only.
        TsaOptions {
            intermediate: true,
            ..TsaOptions::default()
        },
    ] {
        let tsa = TestAuthority::with(options.clone());
        let values: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 64]).collect();
        let (imprint, paths) = batch(&values);
        let token = stamp(&tsa, &imprint).expect("token");
        assert_eq!(tsa.answered(), 1);

        let stamp = verify(&token, &imprint, &[authority_of(&tsa)]).expect("verifies");
        assert_eq!(stamp.policy, "1.2.3.4.1");
        assert_eq!(stamp.authority_url, tsa.url());
        assert!(
            stamp.authority.contains("Tereze test TSA"),
            "{}",
            stamp.authority
        );
        assert_eq!(stamp.accuracy, Some(Duration::from_secs(1)));
        let age = chrono::Utc::now() - stamp.gen_time;
        assert!(age.num_seconds().abs() < 120, "genTime is now: {age}");

        let dir = tempfile::tempdir().expect("dir");
        let token_file = dir.path().join("token.der");
        std::fs::write(&token_file, &token).expect("write");
        openssl_ts_verify(&[
            "-digest".as_ref(),
            hex(&imprint).as_ref(),
            "-in".as_ref(),
            arg(&token_file),
            "-token_in".as_ref(),
            "-CAfile".as_ref(),
            arg(&tsa.ca_path()),
        ])
        .expect("openssl ts -verify -digest");
        // The same token over the root itself: the imprint is SHA-256(root).
        let leaves: Vec<_> = values
            .iter()
            .map(|v| tereze_support::merkle::leaf(v))
            .collect();
        let (root, _) = tereze_support::merkle::tree(&leaves);
        let root_file = dir.path().join("root.bin");
        std::fs::write(&root_file, root).expect("write");
        openssl_ts_verify(&[
            "-data".as_ref(),
            arg(&root_file),
            "-in".as_ref(),
            arg(&token_file),
            "-token_in".as_ref(),
            "-CAfile".as_ref(),
            arg(&tsa.ca_path()),
        ])
        .expect("openssl ts -verify -data root.bin");

        for (v, p) in values.iter().zip(paths) {
            let e = Evidence::new(token.clone(), p);
            let back = Evidence::from_bytes(&e.to_bytes()).expect("round trip");
            back.verify(v, &[authority_of(&tsa)])
                .expect("item verifies");
        }
    }
}

/// A token from `tsa` for the query `openssl ts -query` writes to `query`, given `args` (the
/// hash, `-cert` or not, what to stamp).
fn cli_token(tsa: &TestAuthority, query: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(["ts", "-query"])
        .args(args)
        .arg("-out")
        .arg(query)
        .output()
        .expect("openssl ts -query");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tsa.token(&std::fs::read(query).expect("query"))
        .expect("openssl ts -reply -token_out")
}

#[test]
fn a_token_made_with_the_openssl_cli_alone_verifies() {
    let tsa = TestAuthority::new();
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data.bin");
    std::fs::write(&data, b"signature value").expect("write");
    let data = data.to_str().expect("utf-8 path");
    let token = cli_token(
        &tsa,
        &dir.path().join("q.tsq"),
        &["-sha256", "-cert", "-data", data],
    );
    let imprint = openssl::sha::sha256(b"signature value");
    verify(&token, &imprint, &[authority_of(&tsa)]).expect("CLI token verifies");

    // Without -cert the token carries no certificate: it verifies only when the authority
    // lists the signing certificate too.
    let token = cli_token(
        &tsa,
        &dir.path().join("bare.tsq"),
        &["-sha256", "-data", data],
    );
    assert_eq!(
        code(verify(&token, &imprint, &[authority_of(&tsa)])),
        "no-signer-certificate"
    );
    let both = format!(
        "{}{}",
        tsa.ca_pem(),
        std::fs::read_to_string(tsa.tsa_cert_path()).expect("tsa.pem")
    );
    let listed = Authority::from_pem("KZ", &tsa.url(), both.as_bytes()).expect("authority");
    verify(&token, &imprint, &[listed]).expect("the listed signing certificate is used");
}

fn code(r: Result<impl std::fmt::Debug, TimestampError>) -> &'static str {
    r.expect_err("refused").code()
}

#[test]
fn bad_tokens_are_refused_each_with_its_own_error() {
    let tsa = TestAuthority::new();
    let trusted = [authority_of(&tsa)];
    let imprint = [1u8; 32];
    let token = stamp(&tsa, &imprint).expect("token");

    assert_eq!(code(verify(&token, &[2u8; 32], &trusted)), "other-imprint");

    let stranger = TestAuthority::new();
    let foreign = stamp(&stranger, &imprint).expect("token");
    assert_eq!(
        code(verify(&foreign, &imprint, &trusted)),
        "untrusted-authority"
    );
    assert_eq!(code(verify(&token, &imprint, &[])), "untrusted-authority");

    let expired = TestAuthority::with(TsaOptions {
        expired: true,
        ..TsaOptions::default()
    });
    let old = stamp(&expired, &imprint).expect("token");
    assert_eq!(
        code(verify(&old, &imprint, &[authority_of(&expired)])),
        "not-valid-at-gen-time"
    );

    assert_eq!(
        code(verify(&token[..token.len() / 2], &imprint, &trusted)),
        "not-a-token"
    );

    // The signature value is the token's last OCTET STRING when no unsigned attributes follow.
    let mut flipped = token.clone();
    let last = flipped.len() - 5;
    flipped[last] ^= 0x01;
    assert_eq!(code(verify(&flipped, &imprint, &trusted)), "bad-signature");

    // SHA-1 imprint: a query made by the CLI with -sha1.
    let dir = tempfile::tempdir().expect("dir");
    let sha1 = cli_token(
        &tsa,
        &dir.path().join("q.tsq"),
        &["-sha1", "-cert", "-digest", &hex(&[1u8; 20])],
    );
    assert_eq!(code(verify(&sha1, &imprint, &trusted)), "sha1");

    tsa.set_other_imprint(true);
    assert_eq!(code(stamp(&tsa, &imprint)), "other-imprint");
    tsa.set_other_imprint(false);

    let (query, _) = request(&imprint);
    assert!(tsa.reply(&query).is_ok());
}

#[test]
fn the_test_authority_goes_down_and_comes_back_on_the_same_url() {
    let tsa = TestAuthority::new();
    let imprint = [3u8; 32];
    stamp(&tsa, &imprint).expect("serving");
    let url = tsa.url();
    tsa.stop();
    assert_eq!(code(stamp(&tsa, &imprint)), "transport", "down");
    tsa.start();
    assert_eq!(tsa.url(), url);
    stamp(&tsa, &imprint).expect("back on the same port");

    tsa.set_delay(Duration::from_secs(3));
    let client = Client::new(&tsa.url(), Duration::from_millis(500)).expect("client");
    let e = runtime()
        .block_on(client.stamp(&imprint))
        .expect_err("slower than the timeout");
    assert_eq!(e.code(), "transport");
    assert!(e.to_string().contains("no answer within"), "{e}");
    assert_eq!(tsa.received(), 3, "the delayed request was received");
    assert_eq!(
        tsa.answered(),
        2,
        "but not answered before the client gave up"
    );

    assert_eq!(
        code(Client::new("https://tsa.test/", Duration::from_secs(1))),
        "bad-url"
    );
}

#[test]
fn a_token_stays_good_after_its_authority_certificate_expires() {
    let tsa = TestAuthority::with(TsaOptions {
        expires_in: Some(Duration::from_secs(2)),
        ..TsaOptions::default()
    });
    let trusted = [authority_of(&tsa)];
    let imprint = [5u8; 32];
    let before = stamp(&tsa, &imprint).expect("token while valid");
    // Wait out the certificate (its notAfter has one-second resolution).
    std::thread::sleep(Duration::from_secs(4));
    let after = stamp(&tsa, &imprint).expect("the authority still signs");
    let s = verify(&before, &imprint, &trusted).expect("judged at genTime, not now");
    assert!(s.gen_time < chrono::Utc::now());
    assert_eq!(
        code(verify(&after, &imprint, &trusted)),
        "not-valid-at-gen-time"
    );
}
