//! Real node processes on loopback doing what they are for: store-and-forward with receipts,
//! the admin API and console, trader and reference-data exchange, revocation, who may deliver,
//! the event log and webhooks,
//! large attachments, the conformance suite, high availability and shutdown. Each test starts
//! its own nodes on its own block of ports (`net::Net::init`), so the tests of all modules run
//! in parallel threads.
//!
//! One module per former test binary, so `cargo test -p tereze --test cluster -- relay::`
//! runs what `--test relay` used to.

use tereze_testkit::net;

mod admin;
mod attachments;
mod audit;
mod conformance;
mod console;
mod encodings;
mod events;
mod exchange_security;
mod gost;
mod ha;
mod national_signatures;
mod partner;
mod pkcs11;
mod reference;
mod relay;
mod revocation;
mod shutdown;
mod timestamps;
mod traders;
mod verdicts;

/// Writes `v2.toml` beside the cluster's trust space: the same space, whose matrix recognises
/// phytosanitary certificates (R.SF.01.001) only, so export declarations are rejected as
/// `document-not-recognised`; the path, for `Net::publish_trust`.
fn phytosanitary_only_trust_space(net: &net::Net) -> std::path::PathBuf {
    let d = net.dir.path();
    let source = std::fs::read_to_string(d.join("trust-space.toml")).expect("source");
    let (head, _) = source.split_once("[[recognition]]").expect("matrix");
    let v2 = d.join("v2.toml");
    std::fs::write(
        &v2,
        format!("{head}[[recognition]]\ndocument = \"R.SF.01.001\"\nissuer = \"*\"\nrecognised_by = [\"*\"]\nvalid_from = \"2020-01-01\"\nvalid_to = \"\"\n"),
    )
    .expect("write");
    v2
}

/// Runs `tereze demo --messages 12 --exit` on ports from `base` in `dir`, with `extra`
/// arguments, and returns its standard output once it has succeeded and delivered 12/12.
fn demo_of_twelve(dir: &std::path::Path, base: &str, extra: &[&str]) -> String {
    let out = std::process::Command::new(net::bin())
        .args(["demo"])
        .args(extra)
        .args([
            "--messages",
            "12",
            "--exit",
            "--base-port",
            base,
            "--timeout",
            "120",
            "--dir",
        ])
        .arg(dir)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("delivered 12/12"), "{stdout}");
    stdout
}
