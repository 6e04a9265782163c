//! Signing with a key held outside the process ([`ExternalKey`]): a stand-in that performs
//! each raw operation with OpenSSL, the way a PKCS#11 token does, must give signatures our
//! verifier accepts for ECDSA, RSA PKCS#1 v1.5 and RSA-PSS; a scheme without token support
//! refuses clearly; a wrong-length answer is caught.

mod common;

use std::sync::Arc;

use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use tereze_codecs::dsig::{
    self, DsigError, ExternalKey, ExternalKeyError, RawSign, RsaPadding, SignOptions, SignTarget,
    SigningKey, VerifyPolicy,
};
use tereze_codecs::pki::KeyKind;

/// Performs raw operations with an in-memory key, as a token would.
#[derive(Debug)]
struct FakeToken {
    key: PKey<Private>,
    /// Bytes dropped from each answer, to provoke a malformed answer.
    truncate: usize,
}

impl ExternalKey for FakeToken {
    fn public_key(&self) -> PKey<Public> {
        PKey::public_key_from_der(&self.key.public_key_to_der().expect("der")).expect("public")
    }
    fn sign_raw(&self, operation: RawSign<'_>) -> Result<Vec<u8>, ExternalKeyError> {
        let mut out = match operation {
            RawSign::EcdsaDigest { digest } => {
                let ec = self.key.ec_key()?;
                let sig = EcdsaSig::sign(digest, &ec)?;
                let n = (self.key.bits() as i32 + 7) / 8;
                let mut raw = sig.r().to_vec_padded(n)?;
                raw.extend(sig.s().to_vec_padded(n)?);
                raw
            }
            RawSign::RsaPkcs1DigestInfo { digest_info } => {
                let rsa = self.key.rsa()?;
                let mut out = vec![0; rsa.size() as usize];
                let n = rsa.private_encrypt(digest_info, &mut out, Padding::PKCS1)?;
                out.truncate(n);
                out
            }
            RawSign::RsaPssDigest {
                hash,
                digest,
                salt_len,
            } => {
                let md = MessageDigest::from_name(hash).ok_or("unknown hash")?;
                let md = openssl::md::Md::fetch(None, md.type_().short_name()?, None)?;
                let mut ctx = PkeyCtx::new(&self.key)?;
                ctx.sign_init()?;
                ctx.set_rsa_padding(Padding::PKCS1_PSS)?;
                ctx.set_signature_md(&md)?;
                ctx.set_rsa_mgf1_md(&md)?;
                ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt_len as i32))?;
                let mut out = Vec::new();
                ctx.sign_to_vec(digest, &mut out)?;
                out
            }
            other => return Err(format!("{} is not offered", other.name()).into()),
        };
        out.truncate(out.len() - self.truncate);
        Ok(out)
    }
}

fn sign_and_verify(kind: KeyKind, padding: RsaPadding) {
    let pki = common::Pki::new(kind);
    let token = FakeToken {
        key: pki.signer_key.clone(),
        truncate: 0,
    };
    let key = SigningKey::external(Arc::new(token), Some(pki.signer.clone()), Vec::new())
        .expect("external key");
    assert!(key.is_external());
    let options = SignOptions {
        rsa_padding: padding,
        ..SignOptions::default()
    };
    let mut doc = tereze_codecs::xml::parse(b"<a><b>signed in a token</b></a>").expect("parses");
    dsig::sign_enveloped(&mut doc, &SignTarget::Document, &key, &options).expect("signs");
    let verified = dsig::verify(&doc, &pki.trust(), &VerifyPolicy::default()).expect("verifies");
    assert_eq!(
        verified.signer.subject,
        "C=KZ, O=Tereze test, CN=Test signer"
    );
}

#[test]
fn ecdsa_with_an_external_key_verifies() {
    sign_and_verify(KeyKind::EcP256, RsaPadding::Pkcs1v15);
    sign_and_verify(KeyKind::EcP384, RsaPadding::Pkcs1v15);
}

#[test]
fn rsa_pkcs1_with_an_external_key_verifies() {
    sign_and_verify(KeyKind::Rsa(2048), RsaPadding::Pkcs1v15);
}

#[test]
fn rsa_pss_with_an_external_key_verifies() {
    sign_and_verify(KeyKind::Rsa(2048), RsaPadding::Pss);
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let pki = common::Pki::new(KeyKind::EcP256);
    let token = FakeToken {
        key: tereze_codecs::pki::generate_key(KeyKind::EcP256).expect("key"),
        truncate: 0,
    };
    let e = SigningKey::external(Arc::new(token), Some(pki.signer.clone()), Vec::new())
        .expect_err("mismatch");
    assert!(
        e.to_string()
            .contains("does not match the key in the token"),
        "{e}"
    );
}

#[test]
fn a_short_answer_from_the_token_is_an_error() {
    let pki = common::Pki::new(KeyKind::EcP256);
    let token = FakeToken {
        key: pki.signer_key.clone(),
        truncate: 1,
    };
    let key = SigningKey::external(Arc::new(token), None, Vec::new()).expect("key");
    let mut doc = tereze_codecs::xml::parse(b"<a/>").expect("parses");
    let e = dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        &key,
        &SignOptions::default(),
    )
    .expect_err("short answer");
    assert!(
        e.to_string()
            .contains("answered ECDSA with 63 bytes, 64 expected"),
        "{e}"
    );
}

/// A scheme that does not override `sign_external` refuses a token key by its URI.
#[derive(Debug)]
struct SoftwareOnly;

impl dsig::SignatureScheme for SoftwareOnly {
    fn uri(&self) -> &str {
        "urn:example:software-only"
    }
    fn digest(&self) -> dsig::DigestMethod {
        dsig::DigestMethod::SHA256
    }
    fn fits(&self, _: &openssl::pkey::PKeyRef<Public>) -> bool {
        true
    }
    fn sign(&self, _: &openssl::pkey::PKeyRef<Private>, _: &[u8]) -> Result<Vec<u8>, DsigError> {
        Ok(vec![1])
    }
    fn verify(
        &self,
        _: &openssl::pkey::PKeyRef<Public>,
        _: &[u8],
        _: &[u8],
    ) -> Result<bool, DsigError> {
        Ok(true)
    }
}

#[test]
fn a_scheme_without_token_support_refuses_an_external_key() {
    let pki = common::Pki::new(KeyKind::EcP256);
    let token = FakeToken {
        key: pki.signer_key.clone(),
        truncate: 0,
    };
    let key = SigningKey::external(Arc::new(token), None, Vec::new()).expect("key");
    let e = key.sign_with(&SoftwareOnly, b"data").expect_err("refused");
    assert!(
        matches!(e, DsigError::NotForExternalKey(ref uri) if uri == "urn:example:software-only")
    );
    assert!(
        e.to_string().contains("cannot sign with a key in a token"),
        "{e}"
    );
    // The same scheme signs with a key in the process.
    let software = pki.signing_key();
    assert_eq!(
        software.sign_with(&SoftwareOnly, b"data").expect("signs"),
        [1]
    );
}
