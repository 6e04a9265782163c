//! A TLS private key held outside the process (a PKCS#11 token) as a rustls
//! [`SigningKey`]: rustls hands us the handshake bytes, we hash them and ask the key, through
//! codecs' [`ExternalKey`], for the one raw private-key operation, then put the answer in the
//! form TLS wants.
//!
//! **Guarantees:** only schemes the key can really perform are offered (ECDSA on P-256 or
//! P-384 with the curve's own hash; RSA-PSS, which TLS 1.3 requires of RSA — the caller
//! refuses an RSA key whose token lacks `CKM_RSA_PKCS_PSS`); an ECDSA answer is checked to be
//! `r ‖ s` of the curve's length before it is converted to DER; the public key reported to
//! rustls is the token's, so a certificate of another key is refused up front.

use std::fmt;
use std::sync::Arc;

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::Id;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use tereze_codecs::dsig::{ExternalKey, RawSign, MIN_RSA_BITS};

/// What kind of key it is, which fixes the schemes offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// ECDSA with the curve's scheme; `half` is the length of `r` (and of `s`).
    Ecdsa {
        scheme: SignatureScheme,
        hash: Hash,
        half: usize,
    },
    RsaPss,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => openssl::sha::sha256(data).to_vec(),
            Hash::Sha384 => openssl::sha::sha384(data).to_vec(),
            Hash::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }

    /// The short name codecs' [`RawSign::RsaPssDigest`] takes.
    fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }
}

/// The RSA-PSS schemes in our order of preference, with their hash.
const PSS: [(SignatureScheme, Hash); 3] = [
    (SignatureScheme::RSA_PSS_SHA256, Hash::Sha256),
    (SignatureScheme::RSA_PSS_SHA384, Hash::Sha384),
    (SignatureScheme::RSA_PSS_SHA512, Hash::Sha512),
];

/// Why a key outside the process cannot be a TLS key.
#[derive(Debug, thiserror::Error)]
pub enum TlsKeyError {
    #[error("a {0} key cannot be a TLS key here; use an EC key on P-256 (or P-384) or an RSA key")]
    Unsupported(String),
    #[error("an RSA TLS key of {bits} bits is too small; at least {MIN_RSA_BITS} are required")]
    TooSmall { bits: u32 },
    #[error("the key's public half cannot be encoded: {0}")]
    Public(#[source] openssl::error::ErrorStack),
}

/// A TLS signing key whose private half is an [`ExternalKey`].
pub struct ExternalTlsKey {
    key: Arc<dyn ExternalKey>,
    kind: Kind,
    /// The public key's SubjectPublicKeyInfo, DER, for rustls' certificate check.
    spki: Vec<u8>,
}

impl fmt::Debug for ExternalTlsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalTlsKey")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl ExternalTlsKey {
    /// Wraps `key`, refusing kinds TLS cannot use from here (other curves, GOST, DSA).
    pub fn new(key: Arc<dyn ExternalKey>) -> Result<Self, TlsKeyError> {
        let public = key.public_key();
        let kind = match public.id() {
            Id::EC => {
                let ec = public.ec_key().map_err(TlsKeyError::Public)?;
                match ec.group().curve_name() {
                    Some(Nid::X9_62_PRIME256V1) => Kind::Ecdsa {
                        scheme: SignatureScheme::ECDSA_NISTP256_SHA256,
                        hash: Hash::Sha256,
                        half: 32,
                    },
                    Some(Nid::SECP384R1) => Kind::Ecdsa {
                        scheme: SignatureScheme::ECDSA_NISTP384_SHA384,
                        hash: Hash::Sha384,
                        half: 48,
                    },
                    other => {
                        let curve = other
                            .and_then(|n| n.short_name().ok())
                            .unwrap_or("unnamed curve");
                        return Err(TlsKeyError::Unsupported(format!("EC ({curve})")));
                    }
                }
            }
            Id::RSA if public.bits() < MIN_RSA_BITS => {
                return Err(TlsKeyError::TooSmall {
                    bits: public.bits(),
                })
            }
            Id::RSA => Kind::RsaPss,
            other => return Err(TlsKeyError::Unsupported(format!("{other:?}"))),
        };
        let spki = public.public_key_to_der().map_err(TlsKeyError::Public)?;
        Ok(Self { key, kind, spki })
    }
}

impl SigningKey for ExternalTlsKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let (scheme, hash) = match self.kind {
            Kind::Ecdsa { scheme, hash, .. } => offered.contains(&scheme).then_some((scheme, hash)),
            Kind::RsaPss => PSS.into_iter().find(|(s, _)| offered.contains(s)),
        }?;
        Some(Box::new(ExternalSigner {
            key: self.key.clone(),
            kind: self.kind,
            scheme,
            hash,
        }))
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(&self.spki[..]))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.kind {
            Kind::Ecdsa { .. } => SignatureAlgorithm::ECDSA,
            Kind::RsaPss => SignatureAlgorithm::RSA,
        }
    }
}

/// One handshake's signer: the scheme rustls chose.
struct ExternalSigner {
    key: Arc<dyn ExternalKey>,
    kind: Kind,
    scheme: SignatureScheme,
    hash: Hash,
}

impl fmt::Debug for ExternalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalSigner")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Signer for ExternalSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let digest = self.hash.digest(message);
        // rustls reports a signer's failure as a string; the token's error text says which
        // token and why (never the PIN).
        let fail = |what: String| rustls::Error::General(format!("TLS key in a token: {what}"));
        match self.kind {
            Kind::Ecdsa { half, .. } => {
                let raw = self
                    .key
                    .sign_raw(RawSign::EcdsaDigest { digest: &digest })
                    .map_err(|e| fail(e.to_string()))?;
                ecdsa_der(&raw, half).map_err(fail)
            }
            Kind::RsaPss => self
                .key
                .sign_raw(RawSign::RsaPssDigest {
                    hash: self.hash.name(),
                    digest: &digest,
                    // TLS 1.3 (RFC 8446 §4.2.3): the salt is as long as the digest.
                    salt_len: digest.len(),
                })
                .map_err(|e| fail(e.to_string())),
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// The DER `ECDSA-Sig-Value` (what TLS carries) of a token's `r ‖ s` answer.
fn ecdsa_der(raw: &[u8], half: usize) -> Result<Vec<u8>, String> {
    if raw.len() != 2 * half {
        return Err(format!(
            "the token answered ECDSA with {} bytes, {} expected",
            raw.len(),
            2 * half
        ));
    }
    let (r, s) = raw.split_at(half);
    let bn = |b: &[u8]| BigNum::from_slice(b).map_err(|e| e.to_string());
    EcdsaSig::from_private_components(bn(r)?, bn(s)?)
        .and_then(|sig| sig.to_der())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private, Public};
    use openssl::rsa::Rsa;
    use openssl::sign::{RsaPssSaltlen, Verifier};
    use tereze_codecs::dsig::ExternalKeyError;

    /// A software key posing as a token one: answers raw operations the way a token does.
    #[derive(Debug)]
    struct SoftKey(PKey<Private>);

    impl ExternalKey for SoftKey {
        fn public_key(&self) -> PKey<Public> {
            PKey::public_key_from_der(&self.0.public_key_to_der().expect("spki")).expect("pub")
        }

        fn sign_raw(&self, operation: RawSign<'_>) -> Result<Vec<u8>, ExternalKeyError> {
            match operation {
                RawSign::EcdsaDigest { digest } => {
                    let sig = EcdsaSig::sign(digest, &*self.0.ec_key()?)?;
                    let half = (self.0.bits() as usize).div_ceil(8);
                    Ok([
                        sig.r().to_vec_padded(half as i32)?,
                        sig.s().to_vec_padded(half as i32)?,
                    ]
                    .concat())
                }
                RawSign::RsaPssDigest { digest, .. } => {
                    let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&self.0)?;
                    ctx.sign_init()?;
                    ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)?;
                    ctx.set_signature_md(openssl::md::Md::sha256())?;
                    ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                    let mut out = Vec::new();
                    ctx.sign_to_vec(digest, &mut out)?;
                    Ok(out)
                }
                other => Err(format!("{} not offered", other.name()).into()),
            }
        }
    }

    fn ec_key(nid: Nid) -> PKey<Private> {
        let group = EcGroup::from_curve_name(nid).expect("group");
        PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey")
    }

    #[test]
    fn an_ecdsa_p256_signature_is_der_and_verifies_with_openssl() {
        let private = ec_key(Nid::X9_62_PRIME256V1);
        let key = ExternalTlsKey::new(Arc::new(SoftKey(private.clone()))).expect("P-256");
        assert_eq!(key.algorithm(), SignatureAlgorithm::ECDSA);
        assert_eq!(
            key.public_key().expect("spki").as_ref(),
            &private.public_key_to_der().expect("spki")[..]
        );
        assert!(key
            .choose_scheme(&[SignatureScheme::RSA_PSS_SHA256])
            .is_none());
        let signer = key
            .choose_scheme(&[
                SignatureScheme::RSA_PSS_SHA256,
                SignatureScheme::ECDSA_NISTP256_SHA256,
            ])
            .expect("P-256 scheme offered");
        assert_eq!(signer.scheme(), SignatureScheme::ECDSA_NISTP256_SHA256);
        let message = b"TLS 1.3, server CertificateVerify\x00 transcript hash";
        let der = signer.sign(message).expect("signs");
        assert_eq!(der[0], 0x30, "a DER SEQUENCE");
        let mut verifier = Verifier::new(MessageDigest::sha256(), &private).expect("verifier");
        verifier.update(message).expect("update");
        assert!(
            verifier.verify(&der).expect("verify"),
            "openssl verifies it"
        );
        let mut verifier = Verifier::new(MessageDigest::sha256(), &private).expect("verifier");
        verifier.update(b"other bytes").expect("update");
        assert!(
            !verifier.verify(&der).expect("verify"),
            "only over its data"
        );
    }

    #[test]
    fn an_rsa_key_under_the_minimum_size_is_refused() {
        let private = PKey::from_rsa(Rsa::generate(1024).expect("rsa")).expect("pkey");
        let e = ExternalTlsKey::new(Arc::new(SoftKey(private))).expect_err("1024 bits");
        assert!(matches!(e, TlsKeyError::TooSmall { bits: 1024 }), "{e}");
    }

    #[test]
    fn an_rsa_key_signs_with_pss_and_openssl_verifies_it() {
        let private = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
        let key = ExternalTlsKey::new(Arc::new(SoftKey(private.clone()))).expect("RSA");
        assert!(
            key.choose_scheme(&[SignatureScheme::RSA_PKCS1_SHA256])
                .is_none(),
            "PKCS#1 v1.5 is never offered"
        );
        let signer = key
            .choose_scheme(&[SignatureScheme::RSA_PSS_SHA256])
            .expect("PSS");
        let message = b"handshake";
        let sig = signer.sign(message).expect("signs");
        let mut verifier = Verifier::new(MessageDigest::sha256(), &private).expect("verifier");
        verifier
            .set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)
            .expect("pss");
        verifier
            .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
            .expect("salt");
        verifier.update(message).expect("update");
        assert!(verifier.verify(&sig).expect("verify"));
    }

    #[test]
    fn another_curve_is_refused_and_a_short_answer_is_an_error() {
        let e = ExternalTlsKey::new(Arc::new(SoftKey(ec_key(Nid::SECP256K1))))
            .expect_err("secp256k1 refused");
        assert!(e.to_string().contains("secp256k1"), "{e}");
        assert!(ecdsa_der(&[1; 63], 32).is_err());
        assert!(ecdsa_der(&[1; 64], 32).is_ok());
    }

    #[test]
    fn a_node_identity_takes_a_token_key_only_with_its_own_certificate() {
        use crate::tls::{client_config, KeyPair, NodeIdentity, TlsError};
        use tereze_codecs::pki::{issue_tls_certificate, CertificateSpec};
        let dir = tempfile::tempdir().expect("dir");
        let private = ec_key(Nid::X9_62_PRIME256V1);
        let spec = CertificateSpec {
            subject: &[("CN", "node.kz")],
            not_before_days: -1,
            not_after_days: 30,
            is_ca: false,
        };
        let write = |name: &str, key: &PKey<Private>| {
            let cert = issue_tls_certificate(&spec, key, None, &["node.kz"]).expect("cert");
            let path = dir.path().join(name);
            std::fs::write(&path, cert.to_pem().expect("pem")).expect("write");
            path
        };
        let pair = |certificate| KeyPair {
            certificate,
            key: "pkcs11:token=kz;object=node-tls".into(),
        };
        let own = write("own.pem", &private);
        let other = write("other.pem", &ec_key(Nid::X9_62_PRIME256V1));
        let key: Arc<dyn ExternalKey> = Arc::new(SoftKey(private));
        let id = NodeIdentity::with_token_key(pair(own), key.clone()).expect("its own certificate");
        let certified = id.certified_key().expect("certified");
        client_config(
            certified,
            &std::fs::read(dir.path().join("own.pem")).expect("pem"),
        )
        .expect("a client configuration presenting it");
        let e = NodeIdentity::with_token_key(pair(other), key).expect_err("another key's");
        assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e:?}");
        assert!(e.to_string().contains("tls.certificate"), "{e}");
    }
}
