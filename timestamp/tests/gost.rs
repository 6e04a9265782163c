//! A token signed with GOST R 34.10-2012 (256) and GOST R 34.11-2012 by `openssl ts -reply`
//! through Debian's GOST engine verifies once the engine is loaded into the process, and is
//! refused for another imprint. The engine is required (`scripts/setup` installs
//! libengine-gost-openssl), as for the rest of the GOST tests.

use std::path::Path;
use std::process::Command;

use tereze_timestamp::{verify, Authority};

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run openssl ({e}); run scripts/setup"));
    assert!(
        out.status.success(),
        "{what} failed (scripts/setup installs openssl and libengine-gost-openssl): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

#[test]
fn a_gost_token_verifies_with_the_engine_loaded() {
    tereze_gost_engine::load().expect("the GOST engine (scripts/setup installs it)");
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    run(
        Command::new("openssl")
            .args(["genpkey", "-engine", "gost", "-algorithm", "gost2012_256"])
            .args(["-pkeyopt", "paramset:A", "-out"])
            .arg(d.join("key.pem")),
        "GOST key",
    );
    write(
        d,
        "req.cnf",
        "[req]\ndistinguished_name = dn\n[dn]\n[v3]\nbasicConstraints = CA:FALSE\n\
         keyUsage = critical, digitalSignature\nextendedKeyUsage = critical, timeStamping\n",
    );
    run(
        Command::new("openssl")
            .args(["req", "-engine", "gost", "-new", "-x509", "-days", "30"])
            .args(["-subj", "/CN=Tereze GOST test TSA", "-extensions", "v3"])
            .arg("-config")
            .arg(d.join("req.cnf"))
            .arg("-key")
            .arg(d.join("key.pem"))
            .arg("-out")
            .arg(d.join("cert.pem")),
        "GOST TSA certificate",
    );
    write(d, "serial", "01\n");
    write(
        d,
        "tsa.cnf",
        &format!(
            "[ tsa ]\ndefault_tsa = t\n[ t ]\ndir = {}\nserial = $dir/serial\n\
             crypto_device = gost\nsigner_cert = $dir/cert.pem\nsigner_key = $dir/key.pem\n\
             signer_digest = md_gost12_256\ndefault_policy = 1.2.3.4.1\ndigests = sha256\n\
             tsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            d.display()
        ),
    );
    let imprint = [0x5a; 32];
    let hex: String = imprint.iter().map(|b| format!("{b:02x}")).collect();
    run(
        Command::new("openssl")
            .args(["ts", "-query", "-sha256", "-cert", "-digest", &hex, "-out"])
            .arg(d.join("q.tsq")),
        "query",
    );
    run(
        Command::new("openssl")
            .args(["ts", "-reply", "-engine", "gost", "-token_out", "-config"])
            .arg(d.join("tsa.cnf"))
            .arg("-queryfile")
            .arg(d.join("q.tsq"))
            .arg("-out")
            .arg(d.join("token.der")),
        "openssl ts -reply with the GOST engine",
    );
    let token = std::fs::read(d.join("token.der")).expect("token");
    let pem = std::fs::read(d.join("cert.pem")).expect("certificate");
    let authority = Authority::from_pem("RU", "http://tsa.ru.test/", &pem).expect("authority");
    let stamp = verify(&token, &imprint, std::slice::from_ref(&authority)).expect("GOST token");
    assert_eq!(stamp.authority, "CN=Tereze GOST test TSA");
    // The signature value (64 octets) ends the token: one flipped bit and it does not verify.
    let mut flipped = token.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x01;
    assert_eq!(
        verify(&flipped, &imprint, std::slice::from_ref(&authority))
            .expect_err("flipped")
            .code(),
        "bad-signature"
    );
    assert_eq!(
        verify(&token, &[0x5b; 32], &[authority])
            .expect_err("another imprint")
            .code(),
        "other-imprint"
    );
}
