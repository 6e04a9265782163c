//! GOST R 34.10-2012 in the suite: the keys, the raw signature primitive that sets the crypto
//! limit, and what a signed document must show to count as GOST-signed. Debian's xmlsec1 is
//! built without GOST and no other XMLDSig tool here was found to sign it, so Tereze's
//! figures stand next to the crypto limit instead: `openssl speed` has no GOST
//! signature test, so the primitive (`EVP_PKEY_sign`/`EVP_PKEY_verify` over a digest, the
//! operation `openssl speed` times for ECDSA) is timed here in process, through the same
//! OpenSSL and engine, and Streebog's throughput comes from `openssl speed -evp`.
//! Guarantees: a rate is only reported when every verification it timed succeeded, and a
//! document only counts as GOST-signed when its `SignatureMethod` is the GOST URI, its value
//! has the GOST length and the `openssl` command line verifies it ([`openssl_verifies`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use openssl::pkey::{PKey, Private, Public};
use openssl::pkey_ctx::PkeyCtx;
use tereze_codecs::c14n::{self, C14nOptions, NodeSet};
use tereze_codecs::dsig::{SigningKey, TrustStore, DSIG_NAMESPACE};
use tereze_codecs::xml;

use crate::measure::{rate, MeasureError};

/// The GOST key sizes measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GostAlgorithm {
    Gost2012_256,
    Gost2012_512,
}

impl GostAlgorithm {
    pub const ALL: [GostAlgorithm; 2] = [GostAlgorithm::Gost2012_256, GostAlgorithm::Gost2012_512];

    pub fn label(self) -> &'static str {
        match self {
            GostAlgorithm::Gost2012_256 => "GOST R 34.10-2012-256",
            GostAlgorithm::Gost2012_512 => "GOST R 34.10-2012-512",
        }
    }

    /// Short name used in file names.
    pub fn slug(self) -> &'static str {
        match self {
            GostAlgorithm::Gost2012_256 => "gost2012-256",
            GostAlgorithm::Gost2012_512 => "gost2012-512",
        }
    }

    /// The Streebog digest the signature hashes with (OpenSSL's name).
    pub fn digest(self) -> &'static str {
        match self {
            GostAlgorithm::Gost2012_256 => "md_gost12_256",
            GostAlgorithm::Gost2012_512 => "md_gost12_512",
        }
    }

    /// The XMLDSig `SignatureMethod` a signature with this key must name.
    pub fn signature_method(self) -> &'static str {
        match self {
            GostAlgorithm::Gost2012_256 => {
                "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256"
            }
            GostAlgorithm::Gost2012_512 => {
                "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512"
            }
        }
    }

    /// Bytes of a signature value (`s ‖ r`) and of the digest it signs.
    pub fn signature_len(self) -> usize {
        match self {
            GostAlgorithm::Gost2012_256 => 64,
            GostAlgorithm::Gost2012_512 => 128,
        }
    }

    fn digest_len(self) -> usize {
        self.signature_len() / 2
    }

    fn engine_kind(self) -> tereze_gost_engine::GostKey {
        match self {
            GostAlgorithm::Gost2012_256 => tereze_gost_engine::GostKey::Gost2012_256A,
            GostAlgorithm::Gost2012_512 => tereze_gost_engine::GostKey::Gost2012_512A,
        }
    }
}

/// A fresh GOST key (parameter set A), as the suite signs with it: without `KeyInfo`, the
/// verifier given the bare public key, like the ECDSA and RSA rows.
pub struct GostMaterial {
    pub algorithm: GostAlgorithm,
    pub key: PKey<Private>,
    pub public: PKey<Public>,
    pub bare: SigningKey,
    pub trust_key: TrustStore,
    pub public_pem: Vec<u8>,
}

fn key_err(e: impl std::fmt::Display) -> MeasureError {
    MeasureError::Key(e.to_string())
}

impl GostMaterial {
    /// Loads the GOST engine (once per process) and generates a key.
    pub fn generate(algorithm: GostAlgorithm) -> Result<Self, MeasureError> {
        let key = tereze_gost_engine::generate_key(algorithm.engine_kind()).map_err(key_err)?;
        let public_pem = key.public_key_to_pem().map_err(key_err)?;
        let public = PKey::public_key_from_pem(&public_pem).map_err(key_err)?;
        let mut trust_key = TrustStore::new();
        trust_key.add_key(public.clone());
        Ok(Self {
            algorithm,
            bare: SigningKey::new(key.clone(), None).map_err(key_err)?,
            key,
            public,
            trust_key,
            public_pem,
        })
    }
}

/// The signature primitive per second, one thread: (sign, verify) over a digest-sized input,
/// without hashing, one context initialised once per loop as `openssl speed` does. Each
/// verification must succeed; the last signature of the sign loop is verified too.
pub fn raw_rates(m: &GostMaterial, seconds: f64, runs: usize) -> Result<(f64, f64), MeasureError> {
    let digest = vec![0x5a_u8; m.algorithm.digest_len()];
    let sign_err = |e: openssl::error::ErrorStack| MeasureError::Sign(e.to_string());
    let verify_err = |e: openssl::error::ErrorStack| MeasureError::Verify(e.to_string());
    let mut signer = PkeyCtx::new(&m.key).map_err(sign_err)?;
    signer.sign_init().map_err(sign_err)?;
    let mut verifier = PkeyCtx::new(&m.public).map_err(verify_err)?;
    verifier.verify_init().map_err(verify_err)?;
    let label = m.algorithm.label();
    let mut signature = Vec::with_capacity(m.algorithm.signature_len());
    let sign = rate(seconds, runs, || {
        signature.clear();
        signer
            .sign_to_vec(&digest, &mut signature)
            .map(|_| ())
            .map_err(sign_err)
    })?;
    if signature.len() != m.algorithm.signature_len() {
        return Err(MeasureError::Sign(format!(
            "{label}: a raw signature of {} bytes, not {}",
            signature.len(),
            m.algorithm.signature_len()
        )));
    }
    let verify = rate(seconds, runs, || {
        if verifier.verify(&digest, &signature).map_err(verify_err)? {
            Ok(())
        } else {
            Err(MeasureError::Verify(format!(
                "{label}: a raw signature did not verify"
            )))
        }
    })?;
    Ok((sign, verify))
}

/// What a signed document says about its signature, read back from its bytes.
#[derive(Debug, Clone)]
pub struct SignedParts {
    /// `SignatureMethod/@Algorithm`.
    pub signature_method: String,
    /// `SignatureValue`, decoded.
    pub signature_value: Vec<u8>,
    /// `SignedInfo` canonicalised with its own `CanonicalizationMethod`: the bytes signed.
    pub signed_info: Vec<u8>,
}

/// Reads the one signature of an enveloped-signed document.
pub fn signed_parts(signed: &[u8]) -> Result<SignedParts, MeasureError> {
    let bad = |what: &str| MeasureError::Verify(format!("signed document: {what}"));
    let doc = xml::parse(signed).map_err(|e| MeasureError::Parse(e.to_string()))?;
    let find = |local: &str| {
        doc.descendants_or_self(doc.root()).into_iter().find(|id| {
            doc.element(*id)
                .is_some_and(|e| e.is(DSIG_NAMESPACE, local))
        })
    };
    let signed_info = find("SignedInfo").ok_or_else(|| bad("no ds:SignedInfo"))?;
    let attribute = |local: &str| {
        find(local)
            .and_then(|id| doc.element(id))
            .and_then(|e| e.attribute("Algorithm"))
            .map(str::to_owned)
    };
    let signature_method = attribute("SignatureMethod").ok_or_else(|| bad("no SignatureMethod"))?;
    let c14n_uri =
        attribute("CanonicalizationMethod").ok_or_else(|| bad("no CanonicalizationMethod"))?;
    let options = C14nOptions::from_uri(&c14n_uri)
        .ok_or_else(|| bad(&format!("unknown CanonicalizationMethod {c14n_uri}")))?;
    let value = find("SignatureValue").ok_or_else(|| bad("no SignatureValue"))?;
    let text: String = doc
        .text_content(value)
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let signature_value =
        openssl::base64::decode_block(&text).map_err(|_| bad("SignatureValue is not base64"))?;
    Ok(SignedParts {
        signature_method,
        signature_value,
        signed_info: c14n::canonicalize(&doc, NodeSet::subtree(signed_info), &options),
    })
}

/// Why a document does not count as signed with `algorithm`, if it does not: the
/// `SignatureMethod` and the length of the value, checked before any cryptography.
pub fn not_gost(parts: &SignedParts, algorithm: GostAlgorithm) -> Option<String> {
    if parts.signature_method != algorithm.signature_method() {
        return Some(format!(
            "SignatureMethod is {}, not {}",
            parts.signature_method,
            algorithm.signature_method()
        ));
    }
    if parts.signature_value.len() != algorithm.signature_len() {
        return Some(format!(
            "SignatureValue has {} bytes, not {}",
            parts.signature_value.len(),
            algorithm.signature_len()
        ));
    }
    None
}

/// An OpenSSL configuration that loads the GOST engine for the `openssl` command line (its
/// `-engine gost` does not reach `speed -evp`). No `dynamic_path`: OpenSSL's ENGINESDIR is
/// used, so the file is not tied to one architecture.
pub const ENGINE_CONF: &str = "openssl_conf = openssl_def\n\
[openssl_def]\nengines = engine_section\n\
[engine_section]\ngost = gost_section\n\
[gost_section]\nengine_id = gost\ndefault_algorithms = ALL\n";

/// Whether `openssl dgst -DIGEST -verify` (with the engine configuration `conf`) accepts the
/// signature over the canonical `SignedInfo`, with one byte of it changed when `alter`; an
/// error when the command could not run or answered neither way. Files go to `dir`.
pub fn openssl_verifies(
    conf: &Path,
    dir: &Path,
    key: &GostMaterial,
    parts: &SignedParts,
    alter: bool,
) -> Result<bool, MeasureError> {
    let fail = |why: String| MeasureError::Verify(format!("openssl dgst: {why}"));
    let stem = format!(
        "gost-{}-{}",
        key.algorithm.slug(),
        if alter { "altered" } else { "as-signed" }
    );
    let file = |ext: &str| -> PathBuf { dir.join(format!("{stem}.{ext}")) };
    let mut signed_info = parts.signed_info.clone();
    if alter {
        let at = signed_info
            .len()
            .checked_sub(20)
            .ok_or_else(|| fail(format!("a SignedInfo of {} bytes", signed_info.len())))?;
        signed_info[at] ^= 0x01;
    }
    for (ext, bytes) in [
        ("pub.pem", &key.public_pem),
        ("sig", &parts.signature_value),
        ("c14n", &signed_info),
    ] {
        std::fs::write(file(ext), bytes).map_err(|e| fail(format!("{ext}: {e}")))?;
    }
    let out = Command::new("openssl")
        .arg("dgst")
        .arg(format!("-{}", key.algorithm.digest()))
        .arg("-verify")
        .arg(file("pub.pem"))
        .arg("-signature")
        .arg(file("sig"))
        .arg(file("c14n"))
        .env("OPENSSL_CONF", conf)
        .output()
        .map_err(|e| fail(format!("cannot run openssl: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("Verified OK") {
        Ok(true)
    } else if stdout.contains("Verification failure") {
        Ok(false)
    } else {
        Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecdsa_signed() -> Vec<u8> {
        let key = crate::measure::KeyMaterial::generate(crate::measure::Algorithm::EcdsaP256)
            .expect("key");
        crate::measure::sign_full(&crate::docs::invoice(1024), &key.bare).expect("signs")
    }

    #[test]
    fn signed_parts_read_the_method_the_value_and_the_signed_bytes() {
        let parts = signed_parts(&ecdsa_signed()).expect("parts");
        assert_eq!(
            parts.signature_method,
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
        );
        assert_eq!(parts.signature_value.len(), 64);
        let si = String::from_utf8(parts.signed_info).expect("utf-8");
        assert!(si.starts_with("<ds:SignedInfo"), "{si}");
        assert!(si.ends_with("</ds:SignedInfo>"), "{si}");
        assert!(signed_parts(b"<a/>").is_err());
    }

    #[test]
    fn an_ecdsa_signature_is_not_taken_for_gost() {
        let parts = signed_parts(&ecdsa_signed()).expect("parts");
        let why = not_gost(&parts, GostAlgorithm::Gost2012_256).expect("refused");
        assert!(why.contains("ecdsa-sha256"), "{why}");
        let claimed = SignedParts {
            signature_method: GostAlgorithm::Gost2012_256.signature_method().into(),
            ..parts
        };
        // Method and length alone would let a 64-byte ECDSA value pass for GOST-256: that is
        // why the suite also has the `openssl` command line verify every GOST signature.
        assert!(not_gost(&claimed, GostAlgorithm::Gost2012_256).is_none());
        let why = not_gost(&claimed, GostAlgorithm::Gost2012_512).expect("refused");
        assert!(why.contains("not urn"), "{why}");
        let short = SignedParts {
            signature_value: vec![0; 63],
            ..claimed
        };
        let why = not_gost(&short, GostAlgorithm::Gost2012_256).expect("refused");
        assert!(why.contains("63 bytes"), "{why}");
    }

    #[test]
    fn gost_documents_are_signed_and_verified_as_gost() {
        for a in GostAlgorithm::ALL {
            let m = GostMaterial::generate(a).expect("GOST engine and key");
            let signed =
                crate::measure::sign_full(&crate::docs::invoice(1024), &m.bare).expect("signs");
            let parts = signed_parts(&signed).expect("parts");
            assert_eq!(not_gost(&parts, a), None, "{}", a.label());
            crate::measure::verify_full(&signed, &m.trust_key).expect("verifies");
            assert!(crate::measure::tamper_detected(&signed, &m.trust_key));
        }
    }

    #[test]
    fn the_openssl_command_line_verifies_gost_signatures_and_refuses_altered_ones() {
        // Needs the openssl command and the GOST engine: scripts/setup installs both.
        let dir = tempfile::tempdir().expect("temporary directory");
        let conf = dir.path().join("gost-engine.cnf");
        std::fs::write(&conf, ENGINE_CONF).expect("config");
        for a in GostAlgorithm::ALL {
            let m = GostMaterial::generate(a).expect("GOST engine and key");
            let signed =
                crate::measure::sign_full(&crate::docs::invoice(4096), &m.bare).expect("signs");
            let parts = signed_parts(&signed).expect("parts");
            let ok = openssl_verifies(&conf, dir.path(), &m, &parts, false);
            assert!(matches!(ok, Ok(true)), "{}: {ok:?}", a.label());
            let altered = openssl_verifies(&conf, dir.path(), &m, &parts, true);
            assert!(matches!(altered, Ok(false)), "{}: {altered:?}", a.label());
        }
    }

    #[test]
    fn raw_gost_signatures_are_timed_and_verified() {
        // Needs the engine (scripts/setup installs libengine-gost-openssl); a missing engine
        // fails here with the package name, never skips.
        for a in GostAlgorithm::ALL {
            let m = GostMaterial::generate(a).expect("GOST engine and key");
            let (s, v) = raw_rates(&m, 0.001, 1).expect("raw rates");
            assert!(s > 0.0 && v > 0.0);
        }
    }
}
