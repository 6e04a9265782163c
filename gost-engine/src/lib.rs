//! Loads the OpenSSL GOST engine into this process, so that GOST R 34.10-2012 keys,
//! signatures and GOST R 34.11 digests (Streebog) work through the ordinary `openssl` crate.
//!
//! Debian's `libengine-gost-openssl` offers signatures only as an OpenSSL ENGINE (its provider
//! has digests, not signatures), and neither `openssl` nor `openssl-sys` binds the ENGINE
//! functions: the few calls live in [`ffi`], the one module allowed `unsafe` code
//! (docs/decisions/0013-gost-through-openssl-engine.md).
//!
//! Guarantees: [`load`] runs once per process (later calls return the first outcome); it
//! succeeds only when a GOST R 34.10-2012 key could be generated and a signature made with
//! Streebog-256 verified, so a caller that got `Ok` can sign and verify; every failure names
//! the Debian package that provides the engine.
#![deny(unsafe_code)]

mod ffi;

use std::sync::OnceLock;

use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private};
use openssl::sign::{Signer, Verifier};

/// The Debian package that installs the engine (`engines-3/gost.so`).
pub const PACKAGE: &str = "libengine-gost-openssl";

/// OpenSSL's key type identifiers (`NID_id_GostR3410_2012_256` and friends); the `openssl`
/// crate has no named constants for them.
pub const ID_GOST2012_256: Id = Id::from_raw(979);
pub const ID_GOST2012_512: Id = Id::from_raw(980);
pub const ID_GOST2001: Id = Id::from_raw(811);

/// Why the GOST engine is not usable. Each message says what failed and what to install.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("the OpenSSL GOST engine (id \"gost\") was not found: install the Debian package {PACKAGE} (scripts/setup does)")]
    NotFound {
        #[source]
        source: ErrorStack,
    },
    #[error("the OpenSSL GOST engine was found but did not initialise (ENGINE_init); reinstall the Debian package {PACKAGE}")]
    Init {
        #[source]
        source: ErrorStack,
    },
    #[error("the OpenSSL GOST engine could not be made the default for its algorithms (ENGINE_set_default); reinstall the Debian package {PACKAGE}")]
    SetDefault {
        #[source]
        source: ErrorStack,
    },
    #[error("the OpenSSL GOST engine's self-test failed at {step}: GOST R 34.10-2012 signatures are not available (install the Debian package {PACKAGE})")]
    SelfTest {
        step: &'static str,
        #[source]
        source: ErrorStack,
    },
    #[error("the OpenSSL GOST engine's self-test signature did not verify: the engine is broken (reinstall the Debian package {PACKAGE})")]
    SelfTestMismatch,
    #[error("GOST key generation failed at {step} (is the engine loaded? install the Debian package {PACKAGE})")]
    KeyGeneration {
        step: &'static str,
        #[source]
        source: ErrorStack,
    },
}

static LOADED: OnceLock<Result<(), EngineError>> = OnceLock::new();

/// Loads the engine and makes it the default for its algorithms, then runs the self-test.
/// Idempotent: the first call does the work, every later one returns its outcome.
pub fn load() -> Result<(), EngineError> {
    LOADED
        .get_or_init(|| {
            openssl_sys::init();
            ffi::load_engine()?;
            self_test()
        })
        .clone()
}

/// Whether [`load`] has succeeded (without trying to load).
pub fn is_loaded() -> bool {
    matches!(LOADED.get(), Some(Ok(())))
}

/// A GOST R 34.10-2012 key type with its parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GostKey {
    /// 256-bit key, parameter set A (`id-GostR3410-2001-CryptoPro-A-ParamSet`, 1.2.643.2.2.35.1).
    Gost2012_256A,
    /// 512-bit key, parameter set A (`id-tc26-gost-3410-12-512-paramSetA`, 1.2.643.7.1.2.1.2.1).
    Gost2012_512A,
}

/// Generates a GOST R 34.10-2012 private key (loads the engine first).
pub fn generate_key(kind: GostKey) -> Result<PKey<Private>, EngineError> {
    load()?;
    generate(kind)
}

fn generate(kind: GostKey) -> Result<PKey<Private>, EngineError> {
    let id = match kind {
        GostKey::Gost2012_256A => ID_GOST2012_256,
        GostKey::Gost2012_512A => ID_GOST2012_512,
    };
    let err = |step| move |source| EngineError::KeyGeneration { step, source };
    let mut ctx = openssl::pkey_ctx::PkeyCtx::new_id(id).map_err(err("EVP_PKEY_CTX_new_id"))?;
    ctx.keygen_init().map_err(err("EVP_PKEY_keygen_init"))?;
    // The engine has no default parameter set: without one, key generation fails.
    ffi::set_ctrl_str(&mut ctx, c"paramset", c"A").map_err(err("paramset A"))?;
    ctx.keygen().map_err(err("EVP_PKEY_keygen"))
}

/// A provider can supply the Streebog digests without any GOST signature, so a found digest
/// proves nothing: generate a key, sign and verify.
fn self_test() -> Result<(), EngineError> {
    let fail = |step| move |source| EngineError::SelfTest { step, source };
    let key = generate(GostKey::Gost2012_256A).map_err(|e| match e {
        EngineError::KeyGeneration { source, .. } => EngineError::SelfTest {
            step: "generating a GOST R 34.10-2012 key",
            source,
        },
        other => other,
    })?;
    let md = MessageDigest::from_name("md_gost12_256").ok_or_else(|| EngineError::SelfTest {
        step: "finding the md_gost12_256 digest",
        source: ErrorStack::get(),
    })?;
    let data = b"tereze gost self-test";
    let mut signer = Signer::new(md, &key).map_err(fail("EVP_DigestSignInit"))?;
    signer.update(data).map_err(fail("EVP_DigestSignUpdate"))?;
    let signature = signer.sign_to_vec().map_err(fail("EVP_DigestSignFinal"))?;
    let mut verifier = Verifier::new(md, &key).map_err(fail("EVP_DigestVerifyInit"))?;
    verifier
        .update(data)
        .map_err(fail("EVP_DigestVerifyUpdate"))?;
    match verifier.verify(&signature) {
        Ok(true) => Ok(()),
        Ok(false) => Err(EngineError::SelfTestMismatch),
        Err(source) => Err(EngineError::SelfTest {
            step: "EVP_DigestVerifyFinal",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_generates_both_key_sizes() {
        load().expect("the GOST engine loads (scripts/setup installs libengine-gost-openssl)");
        assert!(is_loaded());
        // Nothing left on this thread's OpenSSL error queue for a later call to trip over.
        let left = ErrorStack::get();
        assert!(left.errors().is_empty(), "{left}");
        // A second call returns the first outcome without loading again.
        load().expect("second load");
        let k256 = generate_key(GostKey::Gost2012_256A).expect("256-bit key");
        assert_eq!(k256.id(), ID_GOST2012_256);
        assert_eq!(k256.bits(), 256);
        let k512 = generate_key(GostKey::Gost2012_512A).expect("512-bit key");
        assert_eq!(k512.id(), ID_GOST2012_512);
        assert_eq!(k512.bits(), 512);
    }

    #[test]
    fn errors_name_the_package() {
        let e = EngineError::NotFound {
            source: ErrorStack::get(),
        };
        assert!(e.to_string().contains(PACKAGE), "{e}");
        assert!(EngineError::SelfTestMismatch.to_string().contains(PACKAGE));
    }
}
