//! GOST R 34.10-2012 (256 and 512 bit, with Streebog) signatures, and GOST R 34.10-2001
//! (with GOST R 34.11-94) for verifying archived documents only, through the OpenSSL GOST
//! engine that `tereze-gost-engine` loads.
//!
//! Guarantees: `SignatureValue` is exactly the engine's `EVP_DigestSign` output, `s || r` as
//! two big-endian halves (RFC 4491 §2.2.2, carried to 2012 by RFC 9215; what xmlsec,
//! CryptoPro CSP, Botan and GnuTLS write), and a value of any other length than 64 or 128
//! bytes is refused before OpenSSL sees it. A key is used only when its type matches the
//! scheme and its parameter set is one of the published sets below; each refusal is its own
//! [`DsigError`]. When the engine is missing, every GOST operation fails with
//! [`DsigError::AlgorithmUnavailable`] naming the Debian package.

use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, Id, PKeyRef, Private, Public};
use openssl::sign::{Signer, Verifier};
use tereze_gost_engine::{ID_GOST2001, ID_GOST2012_256, ID_GOST2012_512};

use std::sync::Arc;

use super::algorithm::{Algorithms, DigestMethod, SignatureScheme};
use super::DsigError;
use crate::der;

/// GOST R 34.10-2012 256-bit with GOST R 34.11-2012 (Streebog-256).
pub const GOST2012_256_URI: &str =
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256";
/// GOST R 34.10-2012 512-bit with GOST R 34.11-2012 (Streebog-512).
pub const GOST2012_512_URI: &str =
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512";
/// GOST R 34.10-2001 with GOST R 34.11-94, as RFC 4051 (now RFC 9231) names it.
pub const GOST2001_URI: &str = "http://www.w3.org/2001/04/xmldsig-more#gostr34102001-gostr3411";
/// The same algorithm as CryptoPro's software names it.
pub const GOST2001_CRYPTOPRO_URI: &str =
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102001-gostr3411";

/// Public-key parameter sets accepted for 256-bit keys (2012-256 and 2001): CryptoPro A, B, C
/// (RFC 4357 §11.4), CryptoPro XchA, XchB, and TC26 256 A–D (RFC 7836 / R 1323565.1.024).
const PARAMSETS_256: [&str; 9] = [
    "1.2.643.2.2.35.1",
    "1.2.643.2.2.35.2",
    "1.2.643.2.2.35.3",
    "1.2.643.2.2.36.0",
    "1.2.643.2.2.36.1",
    "1.2.643.7.1.2.1.1.1",
    "1.2.643.7.1.2.1.1.2",
    "1.2.643.7.1.2.1.1.3",
    "1.2.643.7.1.2.1.1.4",
];
/// Parameter sets accepted for 512-bit keys: TC26 512 A, B, C (the test set 512-0 is not).
const PARAMSETS_512: [&str; 3] = [
    "1.2.643.7.1.2.1.2.1",
    "1.2.643.7.1.2.1.2.2",
    "1.2.643.7.1.2.1.2.3",
];
/// Parameter sets accepted for GOST R 34.10-2001 keys: the CryptoPro sets of RFC 4357.
const PARAMSETS_2001: [&str; 5] = [
    "1.2.643.2.2.35.1",
    "1.2.643.2.2.35.2",
    "1.2.643.2.2.35.3",
    "1.2.643.2.2.36.0",
    "1.2.643.2.2.36.1",
];

pub use super::algorithm::require_gost_engine as require_engine;
/// Why the engine could not be loaded (the source of `AlgorithmUnavailable` for GOST), for
/// callers outside `codecs` that may not depend on `tereze-gost-engine` themselves.
pub use tereze_gost_engine::EngineError;

/// Adds the GOST schemes to `algorithms`: 2012-256 and 2012-512 (sign and verify) and 2001
/// under both its URIs (verify only). GOST keys can be read only once the engine is loaded,
/// and `Algorithms` is built before any key is: it is loaded here (once per process). Without
/// the engine the schemes stay registered and answer `AlgorithmUnavailable` naming the
/// package.
pub(crate) fn register_all(algorithms: &mut Algorithms) {
    let _ = tereze_gost_engine::load();
    algorithms.register(Arc::new(Gost::gost2012_256()));
    algorithms.register(Arc::new(Gost::gost2012_512()));
    algorithms.register(Arc::new(Gost::gost2001(GOST2001_URI)));
    algorithms.register(Arc::new(Gost::gost2001(GOST2001_CRYPTOPRO_URI)));
}

/// Whether `key` is a GOST key of any kind (its type identifier).
pub fn is_gost_key<T: HasPublic>(key: &PKeyRef<T>) -> bool {
    [ID_GOST2012_256, ID_GOST2012_512, ID_GOST2001].contains(&key.id())
}

/// The digest a GOST key signs with (its own Streebog), `None` for other keys and for
/// GOST R 34.10-2001 keys, which do not sign here.
pub fn own_digest<T: HasPublic>(key: &PKeyRef<T>) -> Option<DigestMethod> {
    match key.id() {
        id if id == ID_GOST2012_256 => Some(DigestMethod::GOST_256),
        id if id == ID_GOST2012_512 => Some(DigestMethod::GOST_512),
        _ => None,
    }
}

/// A GOST signature scheme.
#[derive(Debug)]
pub struct Gost {
    uri: &'static str,
    digest: DigestMethod,
    key_id: Id,
    /// What the key type is called in errors.
    key_name: &'static str,
    paramsets: &'static [&'static str],
    /// Bytes in `SignatureValue` (`s || r`).
    value_len: usize,
    /// GOST R 34.10-2001 is accepted for verifying only.
    signs: bool,
}

impl Gost {
    pub fn gost2012_256() -> Self {
        Self {
            uri: GOST2012_256_URI,
            digest: DigestMethod::GOST_256,
            key_id: ID_GOST2012_256,
            key_name: "GOST R 34.10-2012 256-bit",
            paramsets: &PARAMSETS_256,
            value_len: 64,
            signs: true,
        }
    }

    pub fn gost2012_512() -> Self {
        Self {
            uri: GOST2012_512_URI,
            digest: DigestMethod::GOST_512,
            key_id: ID_GOST2012_512,
            key_name: "GOST R 34.10-2012 512-bit",
            paramsets: &PARAMSETS_512,
            value_len: 128,
            signs: true,
        }
    }

    /// GOST R 34.10-2001 under one of its two URIs (`GOST2001_URI`, `GOST2001_CRYPTOPRO_URI`).
    pub fn gost2001(uri: &'static str) -> Self {
        Self {
            uri,
            digest: DigestMethod::GOST94,
            key_id: ID_GOST2001,
            key_name: "GOST R 34.10-2001",
            paramsets: &PARAMSETS_2001,
            value_len: 64,
            signs: false,
        }
    }

    fn message_digest(&self) -> Result<MessageDigest, DsigError> {
        require_engine(self.uri)?;
        self.digest.message_digest()
    }
}

/// What a key is, for errors: the GOST kind or OpenSSL's name of its type.
fn key_kind<T: HasPublic>(key: &PKeyRef<T>) -> String {
    match key.id() {
        id if id == ID_GOST2012_256 => "a GOST R 34.10-2012 256-bit key".into(),
        id if id == ID_GOST2012_512 => "a GOST R 34.10-2012 512-bit key".into(),
        id if id == ID_GOST2001 => "a GOST R 34.10-2001 key".into(),
        Id::RSA => format!("an RSA {}-bit key", key.bits()),
        Id::EC => format!("an EC {}-bit key", key.bits()),
        id => format!("a key of OpenSSL type {}", id.as_raw()),
    }
}

impl SignatureScheme for Gost {
    fn uri(&self) -> &str {
        self.uri
    }
    fn digest(&self) -> DigestMethod {
        self.digest
    }
    fn fits(&self, key: &PKeyRef<Public>) -> bool {
        self.check_key(key).is_ok()
    }
    fn check_key(&self, key: &PKeyRef<Public>) -> Result<(), DsigError> {
        if key.id() != self.key_id {
            return Err(DsigError::KeyMismatch {
                method: self.uri.to_owned(),
                needs: self.key_name,
                key: key_kind(key),
            });
        }
        let der = key.public_key_to_der()?;
        let oid = public_key_paramset(&der).map_err(|why| {
            DsigError::Key(format!(
                "{} public key: its SubjectPublicKeyInfo cannot be read: {why}",
                self.key_name
            ))
        })?;
        if !self.paramsets.contains(&oid.as_str()) {
            return Err(DsigError::UnknownParameterSet {
                key: self.key_name,
                oid,
                accepted: self.paramsets.join(", "),
            });
        }
        Ok(())
    }
    fn check_available(&self) -> Result<(), DsigError> {
        require_engine(self.uri)
    }
    fn sign(&self, key: &PKeyRef<Private>, data: &[u8]) -> Result<Vec<u8>, DsigError> {
        if !self.signs {
            return Err(DsigError::Key(format!(
                "{} ({}) is accepted for verifying archived documents only; sign with GOST R 34.10-2012",
                self.key_name, self.uri
            )));
        }
        let md = self.message_digest()?;
        let public = super::algorithm::public_of(key)?;
        self.check_key(&public)?;
        let mut signer = Signer::new(md, key)?;
        signer.update(data)?;
        let value = signer.sign_to_vec()?;
        if value.len() != self.value_len {
            return Err(DsigError::Key(format!(
                "the GOST engine made a {}-byte signature, {} are expected",
                value.len(),
                self.value_len
            )));
        }
        Ok(value)
    }
    fn verify(
        &self,
        key: &PKeyRef<Public>,
        data: &[u8],
        signature: &[u8],
    ) -> Result<bool, DsigError> {
        // Checked before OpenSSL sees the value: the engine reads the halves by position.
        if signature.len() != self.value_len {
            return Err(DsigError::MalformedSignatureValue(format!(
                "{} signature is {} bytes, {} are required (s || r, {} each)",
                self.key_name,
                signature.len(),
                self.value_len,
                self.value_len / 2
            )));
        }
        let md = self.message_digest()?;
        self.check_key(key)?;
        let mut verifier = Verifier::new(md, key)?;
        verifier.update(data)?;
        Ok(verifier.verify(signature).unwrap_or(false))
    }
}

/// The public-key parameter set OID of a GOST SubjectPublicKeyInfo:
/// `SEQUENCE { SEQUENCE { algorithm OID, SEQUENCE { publicKeyParamSet OID, … } }, BIT STRING }`
/// (RFC 4491 §2.3.1, RFC 9215). Reads only what it needs, never past the input.
fn public_key_paramset(spki: &[u8]) -> Result<String, &'static str> {
    let (spki, _) = der::element(spki, 0x30).ok_or("not a DER SEQUENCE")?;
    let (alg, _) = der::element(spki, 0x30).ok_or("no AlgorithmIdentifier")?;
    let (_, params) = der::element(alg, 0x06).ok_or("no algorithm OID")?;
    let (params, _) =
        der::element(params, 0x30).ok_or("no GOST key parameters (a SEQUENCE is required)")?;
    let (oid, _) = der::element(params, 0x06).ok_or("no public-key parameter set OID")?;
    der::oid_text(oid).ok_or("malformed parameter set OID")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_outside_the_accepted_parameter_sets_and_a_key_of_another_type_are_refused() {
        tereze_gost_engine::load()
            .expect("GOST engine (scripts/setup installs libengine-gost-openssl)");
        let key = tereze_gost_engine::generate_key(tereze_gost_engine::GostKey::Gost2012_256A)
            .expect("key");
        let public = crate::dsig::algorithm::public_of(&key).expect("public");
        assert!(Gost::gost2012_256().fits(&public));
        let narrow = Gost {
            paramsets: &["1.2.643.7.1.2.1.1.4"],
            ..Gost::gost2012_256()
        };
        match narrow.check_key(&public) {
            Err(DsigError::UnknownParameterSet { oid, .. }) => assert_eq!(oid, "1.2.643.2.2.35.1"),
            other => panic!("expected UnknownParameterSet, got {other:?}"),
        }
        assert!(!narrow.fits(&public));
        match Gost::gost2012_512().check_key(&public) {
            Err(DsigError::KeyMismatch { key, .. }) => assert!(key.contains("256-bit"), "{key}"),
            other => panic!("expected KeyMismatch, got {other:?}"),
        }
        // A value of the wrong length is refused before OpenSSL is asked.
        match Gost::gost2012_256().verify(&public, b"data", &[0u8; 63]) {
            Err(DsigError::MalformedSignatureValue(why)) => assert!(why.contains("63"), "{why}"),
            other => panic!("expected MalformedSignatureValue, got {other:?}"),
        }
        // GOST R 34.10-2001 never signs.
        assert!(matches!(
            Gost::gost2001(GOST2001_URI).sign(&key, b"data"),
            Err(DsigError::Key(_))
        ));
    }

    #[test]
    fn bad_der_is_refused_without_panic() {
        assert!(public_key_paramset(&[]).is_err());
        assert!(public_key_paramset(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(public_key_paramset(&[0x30, 0x03, 0x30, 0x01]).is_err());
        for n in 0..64u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x30).collect();
            let _ = public_key_paramset(&bytes);
        }
    }
}
