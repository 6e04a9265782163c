//! Tereze's side of the XML measurements, in process, one thread: the same loop shape as the
//! python side (`xmlsec_bench.py`): run for a fixed time, count operations, median of runs.

use std::time::{Duration, Instant};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tereze_codecs::c14n::{self, C14nOptions, NodeSet};
use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey, TrustStore, VerifyPolicy};
use tereze_codecs::pki::{self, CertificateSpec, KeyKind};
use tereze_codecs::xml;

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("key or certificate: {0}")]
    Key(String),
    #[error("parse: {0}")]
    Parse(String),
    #[error("sign: {0}")]
    Sign(String),
    #[error("verify: {0}")]
    Verify(String),
}

/// The two key types of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    EcdsaP256,
    Rsa2048,
}

impl Algorithm {
    pub const ALL: [Algorithm; 2] = [Algorithm::EcdsaP256, Algorithm::Rsa2048];

    pub fn label(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256 => "ECDSA P-256",
            Algorithm::Rsa2048 => "RSA-2048",
        }
    }

    /// Short name used in file names and the python script's keys.
    pub fn slug(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256 => "ecdsa",
            Algorithm::Rsa2048 => "rsa",
        }
    }

    fn kind(self) -> KeyKind {
        match self {
            Algorithm::EcdsaP256 => KeyKind::EcP256,
            Algorithm::Rsa2048 => KeyKind::Rsa(2048),
        }
    }
}

/// A fresh key with its PEM forms and the trust a verifier starts from.
pub struct KeyMaterial {
    pub algorithm: Algorithm,
    /// Signs without `KeyInfo`, as the python-xmlsec side does.
    pub bare: SigningKey,
    /// Signs with the certificate in `KeyInfo/X509Data`, as the node and `tereze xml sign` do.
    pub with_certificate: SigningKey,
    /// The public key alone (for signatures without `KeyInfo`).
    pub trust_key: TrustStore,
    /// The certificate (for signatures that carry it).
    pub trust_certificate: TrustStore,
    pub private_pem: Vec<u8>,
    pub public_pem: Vec<u8>,
    pub certificate_pem: Vec<u8>,
}

fn key_err(e: impl std::fmt::Display) -> MeasureError {
    MeasureError::Key(e.to_string())
}

impl KeyMaterial {
    pub fn generate(algorithm: Algorithm) -> Result<Self, MeasureError> {
        let key: PKey<Private> = pki::generate_key(algorithm.kind()).map_err(key_err)?;
        let cert: X509 = pki::issue_certificate(
            &CertificateSpec {
                subject: &[("CN", "tereze bench signer")],
                not_before_days: -1,
                not_after_days: 30,
                is_ca: false,
            },
            &key,
            None,
        )
        .map_err(key_err)?;
        let public = PKey::public_key_from_pem(&key.public_key_to_pem().map_err(key_err)?)
            .map_err(key_err)?;
        let mut trust_key = TrustStore::new();
        trust_key.add_key(public.clone());
        let mut trust_certificate = TrustStore::new();
        trust_certificate.add_certificate(cert.clone());
        Ok(Self {
            algorithm,
            bare: SigningKey::new(key.clone(), None).map_err(key_err)?,
            with_certificate: SigningKey::new(key.clone(), Some(cert.clone())).map_err(key_err)?,
            trust_key,
            trust_certificate,
            private_pem: key.private_key_to_pem_pkcs8().map_err(key_err)?,
            public_pem: public.public_key_to_pem().map_err(key_err)?,
            certificate_pem: cert.to_pem().map_err(key_err)?,
        })
    }
}

/// Operations per second: `runs` runs of `seconds` each, the median run.
pub fn rate<F>(seconds: f64, runs: usize, mut op: F) -> Result<f64, MeasureError>
where
    F: FnMut() -> Result<(), MeasureError>,
{
    let mut rates = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        let mut n = 0u64;
        let elapsed = loop {
            op()?;
            n += 1;
            let now = Instant::now();
            if now >= end {
                break now - start;
            }
        };
        rates.push(n as f64 / elapsed.as_secs_f64());
    }
    Ok(median(&mut rates))
}

/// The median of some figures (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let m = values.len() / 2;
    if !values.len().is_multiple_of(2) {
        values[m]
    } else {
        (values[m - 1] + values[m]) / 2.0
    }
}

fn sign_options(include_certificate: bool) -> SignOptions {
    SignOptions {
        include_certificate,
        ..SignOptions::default()
    }
}

/// "full" sign: bytes in → parse → enveloped signature (exclusive C14N, SHA-256) → bytes out.
pub fn sign_full(document: &[u8], key: &SigningKey) -> Result<Vec<u8>, MeasureError> {
    sign_with(document, key, &sign_options(key.certificate().is_some()))
}

fn sign_with(
    document: &[u8],
    key: &SigningKey,
    options: &SignOptions,
) -> Result<Vec<u8>, MeasureError> {
    let mut doc = xml::parse(document).map_err(|e| MeasureError::Parse(e.to_string()))?;
    dsig::sign_enveloped(&mut doc, &SignTarget::Document, key, options)
        .map_err(|e| MeasureError::Sign(e.to_string()))?;
    Ok(doc.to_xml().into_bytes())
}

/// "full" verify: bytes in → parse → verify the one enveloped signature.
pub fn verify_full(signed: &[u8], trust: &TrustStore) -> Result<(), MeasureError> {
    verify_with(signed, trust, &VerifyPolicy::default())
}

fn verify_with(
    signed: &[u8],
    trust: &TrustStore,
    policy: &VerifyPolicy,
) -> Result<(), MeasureError> {
    let doc = xml::parse(signed).map_err(|e| MeasureError::Parse(e.to_string()))?;
    dsig::verify(&doc, trust, policy)
        .map(|_| ())
        .map_err(|e| MeasureError::Verify(e.to_string()))
}

/// Signs and verifies per second ("full", one thread) for one document and key.
pub fn dsig_rates(
    document: &[u8],
    key: &KeyMaterial,
    seconds: f64,
    runs: usize,
) -> Result<(f64, f64), MeasureError> {
    dsig_rates_with(document, &key.bare, &key.trust_key, seconds, runs)
}

/// [`dsig_rates`] for any signing key and the trust that verifies it. Every verification in
/// the loop must succeed, or the measurement fails.
pub fn dsig_rates_with(
    document: &[u8],
    key: &SigningKey,
    trust: &TrustStore,
    seconds: f64,
    runs: usize,
) -> Result<(f64, f64), MeasureError> {
    let options = sign_options(false);
    let signed = sign_with(document, key, &options)?;
    let sign = rate(seconds, runs, || {
        sign_with(document, key, &options).map(|_| ())
    })?;
    let policy = VerifyPolicy::default();
    let verify = rate(seconds, runs, || verify_with(&signed, trust, &policy))?;
    Ok((sign, verify))
}

/// Exclusive C14N of the whole document: (canonicalisation only, parse + canonicalisation)
/// in MB/s of input.
pub fn c14n_rates(document: &[u8], seconds: f64, runs: usize) -> Result<(f64, f64), MeasureError> {
    let options = C14nOptions::exclusive();
    let doc = xml::parse(document).map_err(|e| MeasureError::Parse(e.to_string()))?;
    let mb = document.len() as f64 / 1e6;
    let only = rate(seconds, runs, || {
        std::hint::black_box(c14n::canonicalize(&doc, NodeSet::document(), &options));
        Ok(())
    })?;
    let with_parse = rate(seconds, runs, || {
        let d = xml::parse(document).map_err(|e| MeasureError::Parse(e.to_string()))?;
        std::hint::black_box(c14n::canonicalize(&d, NodeSet::document(), &options));
        Ok(())
    })?;
    Ok((only * mb, with_parse * mb))
}

/// Whether a document altered after signing fails verification (a sanity check that the
/// verifier measured is really checking).
pub fn tamper_detected(signed: &[u8], trust: &TrustStore) -> bool {
    let text = String::from_utf8_lossy(signed);
    let tampered = text.replacen("KZT", "USD", 1);
    tampered != text && verify_full(tampered.as_bytes(), trust).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn sign_verify_and_c14n_loops_run_on_every_document() {
        // A smoke run with tiny durations: nothing here is timed against a goal.
        let key = KeyMaterial::generate(Algorithm::EcdsaP256).expect("key");
        for d in crate::docs::all() {
            let (s, v) = dsig_rates(&d.bytes, &key, 0.001, 1).expect("dsig");
            assert!(s > 0.0 && v > 0.0);
            let (c, p) = c14n_rates(&d.bytes, 0.001, 1).expect("c14n");
            assert!(c > 0.0 && p > 0.0);
            let signed = sign_full(&d.bytes, &key.bare).expect("signs");
            assert!(tamper_detected(&signed, &key.trust_key));
            let with_cert = sign_full(&d.bytes, &key.with_certificate).expect("signs");
            verify_full(&with_cert, &key.trust_certificate).expect("verifies");
        }
    }
}

/// Milliseconds at percentile `p` (0–100) of sorted durations (nearest rank); NaN when empty.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

#[cfg(test)]
mod percentile_tests {
    use super::*;

    #[test]
    fn percentiles_of_sorted_durations() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&v, 50.0), 51.0);
        assert_eq!(percentile_ms(&v, 99.0), 99.0);
        assert_eq!(percentile_ms(&v, 100.0), 100.0);
        assert!(percentile_ms(&[], 50.0).is_nan());
    }
}
