//! Digest and signature algorithms, named by their XMLDSig URIs.
//!
//! Digests are a table over OpenSSL's digest names, so a provider-supplied digest (GOST
//! R 34.11-2012 "Streebog") needs only a table row. Signatures go through the
//! [`SignatureScheme`] trait: RSA PKCS#1 v1.5, RSA-PSS and ECDSA are built in; another family
//! (GOST R 34.10-2012, Belarus STB 34.101) is added by implementing the trait over an OpenSSL
//! provider and registering it in [`Algorithms`] (see `docs/algorithms.md`).

use std::sync::Arc;

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};

use super::DsigError;

/// Smallest RSA modulus accepted for signing or verifying.
pub const MIN_RSA_BITS: u32 = 2048;

/// A message digest: its XMLDSig URI, its OpenSSL name, and whether it is too weak to accept
/// by default (SHA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestMethod {
    pub uri: &'static str,
    /// The short name a user gives (`--digest sha256`).
    pub name: &'static str,
    /// The name OpenSSL (or a loaded provider) knows the digest by.
    pub openssl_name: &'static str,
    pub weak: bool,
}

impl DigestMethod {
    pub const SHA1: DigestMethod = DigestMethod {
        uri: "http://www.w3.org/2000/09/xmldsig#sha1",
        name: "sha1",
        openssl_name: "SHA1",
        weak: true,
    };
    pub const SHA256: DigestMethod = DigestMethod {
        uri: "http://www.w3.org/2001/04/xmlenc#sha256",
        name: "sha256",
        openssl_name: "SHA256",
        weak: false,
    };
    pub const SHA384: DigestMethod = DigestMethod {
        uri: "http://www.w3.org/2001/04/xmldsig-more#sha384",
        name: "sha384",
        openssl_name: "SHA384",
        weak: false,
    };
    pub const SHA512: DigestMethod = DigestMethod {
        uri: "http://www.w3.org/2001/04/xmlenc#sha512",
        name: "sha512",
        openssl_name: "SHA512",
        weak: false,
    };
    /// GOST R 34.11-2012 (256 bit, Streebog), available when the OpenSSL GOST engine is
    /// loaded (`tereze-gost-engine`).
    pub const GOST_256: DigestMethod = DigestMethod {
        uri: "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256",
        name: "gost2012-256",
        openssl_name: "md_gost12_256",
        weak: false,
    };
    /// GOST R 34.11-2012 (512 bit, Streebog), available when the OpenSSL GOST engine is
    /// loaded.
    pub const GOST_512: DigestMethod = DigestMethod {
        uri: "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-512",
        name: "gost2012-512",
        openssl_name: "md_gost12_512",
        weak: false,
    };

    /// GOST R 34.11-94, for verifying archived GOST R 34.10-2001 documents (RFC 4051's URI).
    pub const GOST94: DigestMethod = DigestMethod {
        uri: "http://www.w3.org/2001/04/xmldsig-more#gostr3411",
        name: "gost94",
        openssl_name: "md_gost94",
        weak: false,
    };
    /// GOST R 34.11-94 under the name CryptoPro's software writes.
    pub const GOST94_CRYPTOPRO: DigestMethod = DigestMethod {
        uri: "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr3411",
        name: "gost94-cryptopro",
        openssl_name: "md_gost94",
        weak: false,
    };

    const ALL: [DigestMethod; 8] = [
        Self::SHA1,
        Self::SHA256,
        Self::SHA384,
        Self::SHA512,
        Self::GOST_256,
        Self::GOST_512,
        Self::GOST94,
        Self::GOST94_CRYPTOPRO,
    ];

    /// Whether this is a GOST digest (provided by the GOST engine).
    pub fn is_gost(&self) -> bool {
        self.openssl_name.starts_with("md_gost")
    }

    /// The digest an XMLDSig `Algorithm` URI names.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.uri == uri)
    }

    /// The digest a short name (`sha256`) names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// The OpenSSL digest, or [`DsigError::AlgorithmUnavailable`] when no loaded provider
    /// implements it (for a GOST digest: when the GOST engine cannot be loaded).
    pub fn message_digest(&self) -> Result<MessageDigest, DsigError> {
        if self.is_gost() {
            require_gost_engine(self.uri)?;
        }
        MessageDigest::from_name(self.openssl_name).ok_or_else(|| DsigError::AlgorithmUnavailable {
            uri: self.uri.to_owned(),
            engine: None,
        })
    }

    /// Hashes `data`.
    pub fn digest(&self, data: &[u8]) -> Result<Vec<u8>, DsigError> {
        let md = self.message_digest()?;
        Ok(openssl::hash::hash(md, data)?.to_vec())
    }
}

/// Loads the GOST engine, as [`DsigError::AlgorithmUnavailable`] for `uri` naming the package
/// when it cannot be.
pub fn require_gost_engine(uri: &str) -> Result<(), DsigError> {
    tereze_gost_engine::load().map_err(|e| DsigError::AlgorithmUnavailable {
        uri: uri.to_owned(),
        engine: Some(e),
    })
}

/// A signature algorithm as XMLDSig names it. Implement this to add an algorithm family.
pub trait SignatureScheme: Send + Sync + std::fmt::Debug {
    /// The `SignatureMethod/@Algorithm` URI.
    fn uri(&self) -> &str;
    /// The digest the scheme hashes with (for the SHA-1 policy).
    fn digest(&self) -> DigestMethod;
    /// Whether this scheme can use `key` (its type, curve and size).
    fn fits(&self, key: &PKeyRef<Public>) -> bool;
    /// Why this scheme cannot use `key` (a [`DsigError`] naming the mismatch), or `Ok`.
    /// Schemes with several reasons (a GOST key's type and parameter set) override it.
    fn check_key(&self, key: &PKeyRef<Public>) -> Result<(), DsigError> {
        if self.fits(key) {
            Ok(())
        } else {
            Err(DsigError::KeyMismatch {
                method: self.uri().to_owned(),
                needs: "another key type",
                key: format!(
                    "a key of OpenSSL type {} ({} bits)",
                    key.id().as_raw(),
                    key.bits()
                ),
            })
        }
    }
    /// Whether the library behind the scheme is loaded: [`DsigError::AlgorithmUnavailable`]
    /// (naming what to install) when not. Checked before any key is read, since a key of a
    /// family whose engine is missing cannot even be decoded.
    fn check_available(&self) -> Result<(), DsigError> {
        Ok(())
    }
    /// Signs `data`, returning the `SignatureValue` octets in XMLDSig form.
    fn sign(&self, key: &PKeyRef<Private>, data: &[u8]) -> Result<Vec<u8>, DsigError>;
    /// Checks `signature` (XMLDSig form) over `data`. `Ok(false)` means a well-formed signature
    /// that does not verify; malformed signatures are errors.
    fn verify(
        &self,
        key: &PKeyRef<Public>,
        data: &[u8],
        signature: &[u8],
    ) -> Result<bool, DsigError>;
}

fn rsa_bits<T: HasPublic>(key: &PKeyRef<T>) -> Option<u32> {
    (key.id() == Id::RSA).then(|| key.bits())
}

/// RSA PKCS#1 v1.5 (`rsa-sha256` and friends).
#[derive(Debug)]
pub struct RsaPkcs1 {
    uri: &'static str,
    digest: DigestMethod,
}

/// RSA-PSS with MGF1 over the same digest and a salt as long as the digest (RFC 9231
/// `sha256-rsa-MGF1` and friends).
#[derive(Debug)]
pub struct RsaPss {
    uri: &'static str,
    digest: DigestMethod,
}

/// ECDSA over the NIST curves; `SignatureValue` is `r || s`, each as long as the curve order.
#[derive(Debug)]
pub struct Ecdsa {
    uri: &'static str,
    digest: DigestMethod,
}

fn check_rsa_size<T: HasPublic>(key: &PKeyRef<T>) -> Result<(), DsigError> {
    match rsa_bits(key) {
        Some(bits) if bits < MIN_RSA_BITS => Err(DsigError::WeakKey(format!(
            "RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"
        ))),
        _ => Ok(()),
    }
}

impl SignatureScheme for RsaPkcs1 {
    fn uri(&self) -> &str {
        self.uri
    }
    fn digest(&self) -> DigestMethod {
        self.digest
    }
    fn fits(&self, key: &PKeyRef<Public>) -> bool {
        key.id() == Id::RSA
    }
    fn sign(&self, key: &PKeyRef<Private>, data: &[u8]) -> Result<Vec<u8>, DsigError> {
        check_rsa_size(key)?;
        let mut signer = Signer::new(self.digest.message_digest()?, key)?;
        signer.set_rsa_padding(Padding::PKCS1)?;
        signer.update(data)?;
        Ok(signer.sign_to_vec()?)
    }
    fn verify(
        &self,
        key: &PKeyRef<Public>,
        data: &[u8],
        signature: &[u8],
    ) -> Result<bool, DsigError> {
        check_rsa_size(key)?;
        let expected = (key.bits() as usize).div_ceil(8);
        if signature.len() != expected {
            return Err(DsigError::MalformedSignatureValue(format!(
                "RSA signature is {} bytes, the key needs {expected}",
                signature.len()
            )));
        }
        let mut verifier = Verifier::new(self.digest.message_digest()?, key)?;
        verifier.set_rsa_padding(Padding::PKCS1)?;
        verifier.update(data)?;
        Ok(verifier.verify(signature).unwrap_or(false))
    }
}

impl SignatureScheme for RsaPss {
    fn uri(&self) -> &str {
        self.uri
    }
    fn digest(&self) -> DigestMethod {
        self.digest
    }
    fn fits(&self, key: &PKeyRef<Public>) -> bool {
        key.id() == Id::RSA
    }
    fn sign(&self, key: &PKeyRef<Private>, data: &[u8]) -> Result<Vec<u8>, DsigError> {
        check_rsa_size(key)?;
        let md = self.digest.message_digest()?;
        let mut signer = Signer::new(md, key)?;
        signer.set_rsa_padding(Padding::PKCS1_PSS)?;
        signer.set_rsa_mgf1_md(md)?;
        signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
        signer.update(data)?;
        Ok(signer.sign_to_vec()?)
    }
    fn verify(
        &self,
        key: &PKeyRef<Public>,
        data: &[u8],
        signature: &[u8],
    ) -> Result<bool, DsigError> {
        check_rsa_size(key)?;
        let md = self.digest.message_digest()?;
        let mut verifier = Verifier::new(md, key)?;
        verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
        verifier.set_rsa_mgf1_md(md)?;
        verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
        verifier.update(data)?;
        Ok(verifier.verify(signature).unwrap_or(false))
    }
}

/// Bytes in each of r and s: the curve order's size. `bits()` reads it without copying the key
/// into a legacy EC_KEY, which costs as much as a fifth of a verification.
fn ec_scalar_len<T: HasPublic>(key: &PKeyRef<T>) -> Result<usize, DsigError> {
    if key.id() != Id::EC {
        return Err(DsigError::Key("ECDSA needs an EC key".into()));
    }
    Ok((key.bits() as usize).div_ceil(8))
}

impl SignatureScheme for Ecdsa {
    fn uri(&self) -> &str {
        self.uri
    }
    fn digest(&self) -> DigestMethod {
        self.digest
    }
    fn fits(&self, key: &PKeyRef<Public>) -> bool {
        key.id() == Id::EC
    }
    fn sign(&self, key: &PKeyRef<Private>, data: &[u8]) -> Result<Vec<u8>, DsigError> {
        let n = ec_scalar_len(key)?;
        let mut signer = Signer::new(self.digest.message_digest()?, key)?;
        signer.update(data)?;
        let der = signer.sign_to_vec()?;
        let sig = EcdsaSig::from_der(&der)?;
        let mut raw = sig.r().to_vec_padded(n as i32)?;
        raw.extend(sig.s().to_vec_padded(n as i32)?);
        Ok(raw)
    }
    fn verify(
        &self,
        key: &PKeyRef<Public>,
        data: &[u8],
        signature: &[u8],
    ) -> Result<bool, DsigError> {
        let n = ec_scalar_len(key)?;
        if signature.len() != 2 * n {
            return Err(DsigError::MalformedSignatureValue(format!(
                "ECDSA signature is {} bytes, the curve needs {} (r || s)",
                signature.len(),
                2 * n
            )));
        }
        let r = BigNum::from_slice(&signature[..n])?;
        let s = BigNum::from_slice(&signature[n..])?;
        let der = EcdsaSig::from_private_components(r, s)?.to_der()?;
        let mut verifier = Verifier::new(self.digest.message_digest()?, key)?;
        verifier.update(data)?;
        Ok(verifier.verify(&der).unwrap_or(false))
    }
}

/// The signature schemes a signer or verifier knows, by URI.
#[derive(Debug, Clone)]
pub struct Algorithms {
    schemes: Vec<Arc<dyn SignatureScheme>>,
}

impl Algorithms {
    /// RSA PKCS#1 v1.5, ECDSA and RSA-PSS: the families this module implements.
    /// `Algorithms::default()` (in `defaults.rs`) adds the GOST schemes to these.
    pub(crate) fn builtin() -> Self {
        let mut schemes: Vec<Arc<dyn SignatureScheme>> = Vec::new();
        let rsa = [
            (
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                DigestMethod::SHA1,
            ),
            (
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                DigestMethod::SHA256,
            ),
            (
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
                DigestMethod::SHA384,
            ),
            (
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
                DigestMethod::SHA512,
            ),
        ];
        for (uri, digest) in rsa {
            schemes.push(Arc::new(RsaPkcs1 { uri, digest }));
        }
        let ecdsa = [
            (
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
                DigestMethod::SHA1,
            ),
            (
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
                DigestMethod::SHA256,
            ),
            (
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
                DigestMethod::SHA384,
            ),
            (
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
                DigestMethod::SHA512,
            ),
        ];
        for (uri, digest) in ecdsa {
            schemes.push(Arc::new(Ecdsa { uri, digest }));
        }
        let pss = [
            (
                "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
                DigestMethod::SHA256,
            ),
            (
                "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1",
                DigestMethod::SHA384,
            ),
            (
                "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
                DigestMethod::SHA512,
            ),
        ];
        for (uri, digest) in pss {
            schemes.push(Arc::new(RsaPss { uri, digest }));
        }
        Self { schemes }
    }
}

/// Which signature family to use with an RSA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RsaPadding {
    #[default]
    Pkcs1v15,
    Pss,
}

impl Algorithms {
    /// Adds (or replaces, by URI) a scheme.
    pub fn register(&mut self, scheme: Arc<dyn SignatureScheme>) {
        self.schemes.retain(|s| s.uri() != scheme.uri());
        self.schemes.push(scheme);
    }

    /// The scheme an XMLDSig `SignatureMethod` URI names.
    pub fn by_uri(&self, uri: &str) -> Option<Arc<dyn SignatureScheme>> {
        self.schemes.iter().find(|s| s.uri() == uri).cloned()
    }

    /// Why no scheme signs with `key` and `digest` when one of the key's own type refuses it
    /// for another reason than the type (a GOST key on an unlisted parameter set), so that the
    /// signer hears that reason rather than "no algorithm".
    pub fn refusal(&self, key: &PKeyRef<Public>, digest: DigestMethod) -> Option<DsigError> {
        self.schemes
            .iter()
            .filter(|s| s.digest() == digest)
            .filter_map(|s| s.check_key(key).err())
            .find(|e| !matches!(e, DsigError::KeyMismatch { .. }))
    }

    /// The scheme to sign with `key` and `digest`.
    pub fn for_key(
        &self,
        key: &PKeyRef<Public>,
        digest: DigestMethod,
        rsa: RsaPadding,
    ) -> Option<Arc<dyn SignatureScheme>> {
        self.schemes
            .iter()
            .filter(|s| s.digest() == digest && s.fits(key))
            .find(|s| key.id() != Id::RSA || (rsa == RsaPadding::Pss) == s.uri().ends_with("-MGF1"))
            .cloned()
    }
}

/// The public half of a private key.
pub(crate) fn public_of(key: &PKeyRef<Private>) -> Result<PKey<Public>, DsigError> {
    Ok(PKey::public_key_from_der(&key.public_key_to_der()?)?)
}
