//! The suite's GOST R 34.10-2012 part (issue 25): the crypto limit measured on this machine in
//! this run (the signature primitive in process, Streebog with `openssl speed -evp`), Tereze's
//! XMLDSig sign and verify per second for the same documents as table 1, and the checks that
//! make a GOST figure count: the document names the GOST `SignatureMethod`, carries a value of
//! the GOST length, the `openssl` command line with the GOST engine verifies it over the
//! canonical `SignedInfo` (and refuses it over an altered one), and Tereze refuses a tampered
//! copy. A part that cannot run is reported as not measured, never skipped silently.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use tereze_bench::docs::TestDocument;
use tereze_bench::gost::{self, GostAlgorithm, GostMaterial, SignedParts};
use tereze_bench::measure;
use tereze_bench::report::{self, GostRow, GostSpeed, Suite};

use crate::sys;

/// The Debian package of the OpenSSL GOST engine (also what `scripts/setup` installs).
pub const ENGINE_PACKAGE: &str = tereze_gost_engine::PACKAGE;

/// Whether Debian's GOST engine package is installed.
pub fn engine_installed() -> bool {
    Command::new("dpkg")
        .args(["-s", ENGINE_PACKAGE])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What the GOST part needs from the rest of the run.
pub struct Settings<'a> {
    pub seconds: f64,
    pub runs: usize,
    pub speed_seconds: u32,
    pub work: &'a Path,
}

/// Measures and checks everything GOST except the relay; fills `suite.gost`,
/// `suite.gost_speed` and `suite.checks`, and says in `suite.missing` what could not run.
pub fn run(settings: &Settings, documents: &[TestDocument], suite: &mut Suite) {
    let conf = settings.work.join("gost-engine.cnf");
    if let Err(e) = std::fs::write(&conf, gost::ENGINE_CONF) {
        suite.missing.push(format!("GOST: {}: {e}", conf.display()));
        return;
    }
    for algorithm in GostAlgorithm::ALL {
        if let Err(e) = one_key(settings, &conf, algorithm, documents, suite) {
            suite.missing.push(format!("{}: {e:#}", algorithm.label()));
        }
    }
}

fn one_key(
    settings: &Settings,
    conf: &Path,
    algorithm: GostAlgorithm,
    documents: &[TestDocument],
    suite: &mut Suite,
) -> Result<()> {
    let key = GostMaterial::generate(algorithm)
        .with_context(|| format!("a key (the engine is Debian's {ENGINE_PACKAGE})"))?;
    let (raw_sign, raw_verify) = gost::raw_rates(&key, settings.seconds, settings.runs)?;
    let digest = digest_speed(conf, algorithm.digest(), settings.speed_seconds)?;
    let speed = GostSpeed {
        algorithm: algorithm.label().into(),
        raw_sign,
        raw_verify,
        digest,
    };
    // The limit is reported even when the XMLDSig rows below cannot be measured.
    suite.gost_speed.push(speed.clone());
    for d in documents {
        // Checked first: a document that is not really GOST-signed is reported, not timed.
        let signed = measure::sign_full(&d.bytes, &key.bare)
            .with_context(|| format!("signing the {} document", d.label))?;
        let parts = gost::signed_parts(&signed)?;
        check_signed(conf, settings.work, &key, d, &signed, &parts, suite);
        // The primitive right before the document's rows: on a shared machine both then see
        // about the same load.
        let (raw_sign, raw_verify) = gost::raw_rates(&key, settings.seconds, settings.runs)?;
        let (sign, verify) = measure::dsig_rates_with(
            &d.bytes,
            &key.bare,
            &key.trust_key,
            settings.seconds,
            settings.runs,
        )?;
        if let Some(s) = suite.gost_speed.last_mut() {
            s.raw_sign = s.raw_sign.max(raw_sign);
            s.raw_verify = s.raw_verify.max(raw_verify);
        }
        for (op, tereze, primitive) in [("sign", sign, raw_sign), ("verify", verify, raw_verify)] {
            suite.gost.push(GostRow {
                size: d.label.into(),
                bytes: d.bytes.len(),
                algorithm: algorithm.label().into(),
                op: op.into(),
                tereze,
                signed_info: parts.signed_info.len(),
                primitive,
                limit: Some(speed.limit_with(primitive, d.bytes.len(), parts.signed_info.len())),
            });
        }
    }
    Ok(())
}

/// `openssl speed -evp DIGEST` with the engine configured.
fn digest_speed(conf: &Path, digest: &str, seconds: u32) -> Result<report::DigestSpeed> {
    let out = sys::run_ok(
        Command::new("openssl")
            .args(["speed", "-seconds", &seconds.to_string(), "-evp", digest])
            .env("OPENSSL_CONF", conf),
        Duration::from_secs(30 + 8 * seconds as u64),
    )
    .with_context(|| format!("openssl speed -evp {digest}"))?;
    Ok(report::parse_digest_speed(
        &String::from_utf8_lossy(&out.stdout),
        digest,
    )?)
}

/// The checks that make a GOST figure count (module documentation).
fn check_signed(
    conf: &Path,
    work: &Path,
    key: &GostMaterial,
    d: &TestDocument,
    signed: &[u8],
    parts: &SignedParts,
    suite: &mut Suite,
) {
    let what = format!("{}/{}", key.algorithm.slug(), d.label);
    let shape = gost::not_gost(parts, key.algorithm);
    if let Some(why) = &shape {
        eprintln!("tereze-bench: {what}: not a GOST signature: {why}");
    }
    suite.checks.push((
        format!(
            "Tereze's signature names the GOST SignatureMethod and has the GOST length, {what}"
        ),
        shape.is_none(),
    ));
    let verified = gost::openssl_verifies(conf, work, key, parts, false);
    let altered = gost::openssl_verifies(conf, work, key, parts, true);
    for (outcome, expect, text) in [
        (
            &verified,
            true,
            "openssl (GOST engine) verifies Tereze's GOST signature over the canonical SignedInfo",
        ),
        (
            &altered,
            false,
            "openssl (GOST engine) refuses it over an altered SignedInfo",
        ),
    ] {
        if let Err(e) = outcome {
            eprintln!("tereze-bench: {what}: {text}: {e:#}");
        }
        suite.checks.push((
            format!("{text}, {what}"),
            outcome.as_ref().is_ok_and(|ok| *ok == expect),
        ));
    }
    suite.checks.push((
        format!("Tereze refuses a tampered document, {what}"),
        measure::tamper_detected(signed, &key.trust_key),
    ));
}
