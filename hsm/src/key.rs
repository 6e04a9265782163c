//! A private key in a PKCS#11 token, used as a [`tereze_codecs::dsig::ExternalKey`]: opening
//! it (token by label, login with the PIN, the one key matching the URI, its public half
//! read from the token) and the raw signing operations the signature schemes ask for.
//!
//! **Guarantees:** a key is opened only when exactly one token and exactly one private key
//! match; its public key comes from the token (`CKA_EC_POINT` / modulus, or the stored
//! certificate) so the caller can check it against the configured certificate; the PIN is
//! handed to the token and never kept in a message or a log.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use openssl::bn::BigNum;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509;
use tereze_codecs::der;
use tereze_codecs::dsig::{
    Algorithms, DigestMethod, ExternalKey, ExternalKeyError, RawSign, RsaPadding,
};

use crate::error::{Pkcs11Error, GOST_HINT};
use crate::module;
use crate::uri::Pkcs11Uri;

/// `CKK_GOSTR3410_512` (TC26 vendor range), to name a GOST key rather than call it unknown.
const CKK_GOSTR3410_512: u64 = 0xD432_1003;

/// The family of a key in a token, which decides the mechanisms it is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Ec,
    Rsa,
}

/// A signing key held in a PKCS#11 token.
pub struct TokenKey {
    /// Sessions are `Send` but not `Sync`: one signature at a time per key. Node signing is
    /// a few operations per message, far below a token's own rate.
    session: Mutex<Session>,
    handle: ObjectHandle,
    family: Family,
    public: PKey<Public>,
    mechanisms: Vec<MechanismType>,
    token: String,
    what: String,
    uri: String,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("uri", &self.uri)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// The PIN, read from its owner-only file; only the token sees it.
pub(crate) struct Pin {
    pin: AuthPin,
    path: std::path::PathBuf,
}

impl Pin {
    /// Reads the PIN file (refused when group or others may read it); one trailing line end
    /// is not part of the PIN.
    pub(crate) fn read(path: &Path) -> Result<Self, Pkcs11Error> {
        let text = tereze_support::fs::read_secret(path, "the token PIN").map_err(|source| {
            Pkcs11Error::PinFile {
                path: path.to_owned(),
                source,
            }
        })?;
        let pin = without_line_end(&text);
        if pin.is_empty() {
            return Err(Pkcs11Error::PinEmpty {
                path: path.to_owned(),
            });
        }
        Ok(Self {
            pin: AuthPin::new(pin.into()),
            path: path.to_owned(),
        })
    }
}

/// `text` without one final `\n` or `\r\n`: an editor's line end is not part of a PIN, but
/// other spaces may be.
fn without_line_end(text: &str) -> &str {
    text.strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text)
}

impl TokenKey {
    /// Opens the key `uri` names through the module at `module`, logging in with `pin`.
    pub(crate) fn open(uri: &Pkcs11Uri, module: &Path, pin: &Pin) -> Result<Self, Pkcs11Error> {
        let ctx = module::context(module)?;
        let token = uri.token.clone();
        let fail = |operation: &'static str| {
            let token = token.clone();
            move |source| Pkcs11Error::Token {
                token,
                operation,
                source,
            }
        };
        let slot = find_slot(&ctx, uri, module)?;
        let session = ctx
            .open_ro_session(slot)
            .map_err(fail("opening a session"))?;
        match session.login(UserType::User, Some(&pin.pin)) {
            // Login state is per process and token: a second key from this token is in.
            Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(Error::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid, _)) => {
                return Err(Pkcs11Error::WrongPin {
                    token,
                    path: pin.path.clone(),
                })
            }
            Err(Error::Pkcs11(RvError::PinLocked, _)) => {
                return Err(Pkcs11Error::PinLocked { token })
            }
            Err(e) => return Err(fail("logging in")(e)),
        }
        let what = describe(uri);
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        template.extend(selector(uri));
        let found = session
            .find_objects(&template)
            .map_err(fail("finding the key"))?;
        let handle = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(Pkcs11Error::ObjectMissing {
                    token,
                    what: what.clone(),
                })
            }
            many => {
                return Err(Pkcs11Error::ObjectAmbiguous {
                    token,
                    what,
                    count: many.len(),
                })
            }
        };
        let attrs = session
            .get_attributes(handle, &[AttributeType::KeyType, AttributeType::Id])
            .map_err(fail("reading the key's attributes"))?;
        let mut key_type = None;
        let mut id = None;
        for a in attrs {
            match a {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::Id(i) => id = Some(i),
                _ => {}
            }
        }
        let family = match key_type {
            Some(t) if t == KeyType::EC => Family::Ec,
            Some(t) if t == KeyType::RSA => Family::Rsa,
            other => {
                let gost =
                    other.is_some_and(|t| t == KeyType::GOSTR3410 || *t == CKK_GOSTR3410_512);
                return Err(Pkcs11Error::UnsupportedKeyType {
                    token,
                    what,
                    key_type: other.map_or("unknown".into(), |t| t.to_string()),
                    hint: if gost { GOST_HINT } else { "" },
                });
            }
        };
        let public = read_public(&session, handle, family, id.as_deref(), uri).map_err(
            |detail| match detail {
                PublicError::Missing => Pkcs11Error::PublicKeyMissing {
                    token: token.clone(),
                    what: what.clone(),
                },
                PublicError::Ambiguous(objects, count) => Pkcs11Error::PublicKeyAmbiguous {
                    token: token.clone(),
                    what: what.clone(),
                    objects,
                    count,
                },
                PublicError::Token(source) => fail("reading the public key")(source),
                PublicError::Unreadable(source) => Pkcs11Error::PublicKeyUnreadable {
                    token: token.clone(),
                    what: what.clone(),
                    source,
                },
            },
        )?;
        let mechanisms = ctx
            .get_mechanism_list(slot)
            .map_err(fail("listing the mechanisms"))?;
        let key = Self {
            session: Mutex::new(session),
            handle,
            family,
            public,
            mechanisms,
            token,
            what,
            uri: uri.to_string(),
        };
        key.check_pair()?;
        Ok(key)
    }

    /// Proves that the private key and the public half read beside it are one pair, by
    /// signing a fixed message in the token and verifying it here. The public half comes from
    /// another object (a public key or certificate under the same id): a stale one left after
    /// re-keying would pass the certificate check at start, and every signature would fail
    /// at the peers later.
    fn check_pair(&self) -> Result<(), Pkcs11Error> {
        const PROBE: &[u8] = b"tereze: is this the token key's public half?";
        let algorithms = Algorithms::default();
        let padding =
            if self.family == Family::Rsa && !self.mechanisms.contains(&MechanismType::RSA_PKCS) {
                RsaPadding::Pss
            } else {
                RsaPadding::Pkcs1v15
            };
        let mismatch = |reason, source| Pkcs11Error::KeyPairMismatch {
            token: self.token.clone(),
            what: self.what.clone(),
            reason,
            source,
        };
        let scheme = algorithms
            .for_key(&self.public, DigestMethod::SHA256, padding)
            .ok_or_else(|| mismatch("no SHA-256 signature scheme fits its public key", None))?;
        let signature = scheme
            .sign_external(self, PROBE)
            .map_err(|e| mismatch("the test signature failed", Some(Box::new(e))))?;
        match scheme.verify(&self.public, PROBE, &signature) {
            Ok(true) => Ok(()),
            Ok(false) => Err(mismatch(
                "a test signature made with the private key does not verify with the public key \
                 or certificate stored beside it",
                None,
            )),
            Err(e) => Err(mismatch(
                "the test signature is malformed",
                Some(Box::new(e)),
            )),
        }
    }

    fn missing(&self, mechanism: &str) -> Pkcs11Error {
        Pkcs11Error::MechanismMissing {
            token: self.token.clone(),
            what: self.what.clone(),
            mechanism: mechanism.to_owned(),
            hint: if mechanism.contains("GOST") {
                GOST_HINT
            } else {
                ""
            },
        }
    }

    /// Signs `data` with `mechanism` after checking the token offers it for this key family.
    fn sign(
        &self,
        family: Family,
        mechanism: Mechanism<'_>,
        data: &[u8],
    ) -> Result<Vec<u8>, Pkcs11Error> {
        let kind = mechanism.mechanism_type();
        if self.family != family || !self.mechanisms.contains(&kind) {
            return Err(self.missing(&kind.to_string()));
        }
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        session
            .sign(&mechanism, self.handle, data)
            .map_err(|source| Pkcs11Error::Token {
                token: self.token.clone(),
                operation: "signing",
                source,
            })
    }

    /// A raw ECDSA signature (`r || s`) over a digest; what a TLS signer needs too.
    pub fn sign_ecdsa_digest(&self, digest: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        self.sign(Family::Ec, Mechanism::Ecdsa, digest)
    }

    /// An RSA-PSS signature over a digest (`hash`: `sha256`, `sha384`, `sha512`).
    pub fn sign_rsa_pss_digest(
        &self,
        hash: &str,
        digest: &[u8],
        salt_len: usize,
    ) -> Result<Vec<u8>, Pkcs11Error> {
        let (hash_alg, mgf) = match hash {
            "sha256" => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            "sha384" => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
            "sha512" => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
            other => return Err(self.missing(&format!("RSA-PSS with {other}"))),
        };
        let params = PkcsPssParams {
            hash_alg,
            mgf,
            s_len: (salt_len as u64).into(),
        };
        self.sign(Family::Rsa, Mechanism::RsaPkcsPss(params), digest)
    }

    /// Whether the token offers RSA-PSS over a digest for this key (TLS 1.3 needs it).
    pub fn offers_rsa_pss(&self) -> bool {
        self.family == Family::Rsa && self.mechanisms.contains(&MechanismType::RSA_PKCS_PSS)
    }

    /// Why the key cannot sign TLS handshakes, if it cannot: an RSA key whose token lacks
    /// RSA-PSS (TLS 1.3 signs with RSA only by PSS, and the node offers nothing weaker).
    pub fn tls_refusal(&self) -> Option<Pkcs11Error> {
        (self.family == Family::Rsa && !self.offers_rsa_pss()).then(|| {
            Pkcs11Error::MechanismMissing {
                token: self.token.clone(),
                what: self.what.clone(),
                mechanism: "CKM_RSA_PKCS_PSS".into(),
                hint: "; an RSA TLS key signs with RSA-PSS only: use an EC P-256 key, or a token that offers it",
            }
        })
    }

    /// Whether the key is an EC key.
    pub fn is_ec(&self) -> bool {
        self.family == Family::Ec
    }
}

impl ExternalKey for TokenKey {
    fn public_key(&self) -> PKey<Public> {
        self.public.clone()
    }

    fn sign_raw(&self, operation: RawSign<'_>) -> Result<Vec<u8>, ExternalKeyError> {
        Ok(match operation {
            RawSign::EcdsaDigest { digest } => self.sign_ecdsa_digest(digest)?,
            RawSign::RsaPkcs1DigestInfo { digest_info } => {
                self.sign(Family::Rsa, Mechanism::RsaPkcs, digest_info)?
            }
            RawSign::RsaPssDigest {
                hash,
                digest,
                salt_len,
            } => self.sign_rsa_pss_digest(hash, digest, salt_len)?,
            other => return Err(Box::new(self.missing(&other.name()))),
        })
    }
}

/// The one token labelled as the URI says (and with its serial number, if given).
fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri, module: &Path) -> Result<Slot, Pkcs11Error> {
    let fail = |source| Pkcs11Error::Token {
        token: uri.token.clone(),
        operation: "listing the tokens",
        source,
    };
    let mut present = Vec::new();
    let mut matching = Vec::new();
    for slot in ctx.get_slots_with_token().map_err(fail)? {
        let info = ctx.get_token_info(slot).map_err(fail)?;
        if !info.token_initialized() {
            continue;
        }
        let label = info.label().trim_end().to_owned();
        let serial_fits = uri
            .serial
            .as_deref()
            .is_none_or(|s| info.serial_number().trim_end() == s);
        if label == uri.token && serial_fits {
            matching.push(slot);
        }
        present.push(format!("{label:?}"));
    }
    match matching.as_slice() {
        [one] => Ok(*one),
        [] => Err(Pkcs11Error::TokenMissing {
            token: uri.token.clone(),
            module: module.to_owned(),
            present: if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            },
        }),
        many => Err(Pkcs11Error::TokenAmbiguous {
            token: uri.token.clone(),
            count: many.len(),
        }),
    }
}

/// The attributes that pick the key: its label and/or id.
fn selector(uri: &Pkcs11Uri) -> Vec<Attribute> {
    let mut t = Vec::new();
    if let Some(label) = &uri.object {
        t.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

/// How the key is named in messages: `labelled "x"`, `with id 01`.
fn describe(uri: &Pkcs11Uri) -> String {
    let mut parts = Vec::new();
    if let Some(label) = &uri.object {
        parts.push(format!("labelled {label:?}"));
    }
    if let Some(id) = &uri.id {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        parts.push(format!("with id {hex}"));
    }
    parts.join(" and ")
}

enum PublicError {
    Missing,
    /// More than one object could be the key's public half: which kind, how many.
    Ambiguous(&'static str, usize),
    Token(Error),
    Unreadable(openssl::error::ErrorStack),
}

/// The key's public half: the public-key object with the same id (or label), else the
/// certificate object; for RSA the private key's own modulus and exponent also do.
fn read_public(
    session: &Session,
    private: ObjectHandle,
    family: Family,
    id: Option<&[u8]>,
    uri: &Pkcs11Uri,
) -> Result<PKey<Public>, PublicError> {
    let unreadable = PublicError::Unreadable;
    let same_key = |class| {
        let mut t = vec![Attribute::Class(class)];
        match id {
            Some(id) if !id.is_empty() => t.push(Attribute::Id(id.to_vec())),
            _ => t.extend(selector(uri)),
        }
        t
    };
    if family == Family::Rsa {
        if let Some(key) = rsa_public(session, private)? {
            return Ok(key);
        }
    }
    let publics = session
        .find_objects(&same_key(ObjectClass::PUBLIC_KEY))
        .map_err(PublicError::Token)?;
    if publics.len() > 1 {
        return Err(PublicError::Ambiguous("public-key objects", publics.len()));
    }
    if let Some(&handle) = publics.first() {
        return match family {
            Family::Rsa => rsa_public(session, handle)?.ok_or(PublicError::Missing),
            Family::Ec => ec_public(session, handle),
        };
    }
    let certs = session
        .find_objects(&same_key(ObjectClass::CERTIFICATE))
        .map_err(PublicError::Token)?;
    if certs.len() > 1 {
        return Err(PublicError::Ambiguous("certificate objects", certs.len()));
    }
    let Some(&cert) = certs.first() else {
        return Err(PublicError::Missing);
    };
    let attrs = session
        .get_attributes(cert, &[AttributeType::Value])
        .map_err(PublicError::Token)?;
    for a in attrs {
        if let Attribute::Value(der) = a {
            let cert = X509::from_der(&der).map_err(unreadable)?;
            return cert.public_key().map_err(unreadable);
        }
    }
    Err(PublicError::Missing)
}

/// An RSA public key from `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT`, when the object has them.
fn rsa_public(
    session: &Session,
    handle: ObjectHandle,
) -> Result<Option<PKey<Public>>, PublicError> {
    let unreadable = PublicError::Unreadable;
    let attrs = session
        .get_attributes(
            handle,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .map_err(PublicError::Token)?;
    let (mut n, mut e) = (None, None);
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            _ => {}
        }
    }
    let (Some(n), Some(e)) = (n, e) else {
        return Ok(None);
    };
    let rsa = Rsa::from_public_components(
        BigNum::from_slice(&n).map_err(unreadable)?,
        BigNum::from_slice(&e).map_err(unreadable)?,
    )
    .map_err(unreadable)?;
    Ok(Some(PKey::from_rsa(rsa).map_err(unreadable)?))
}

/// An EC public key from `CKA_EC_PARAMS` (the curve's DER) and `CKA_EC_POINT` (the point, as
/// a DER OCTET STRING per PKCS#11; some tokens give the bare point).
fn ec_public(session: &Session, handle: ObjectHandle) -> Result<PKey<Public>, PublicError> {
    let attrs = session
        .get_attributes(handle, &[AttributeType::EcParams, AttributeType::EcPoint])
        .map_err(PublicError::Token)?;
    let (mut params, mut point) = (None, None);
    for a in attrs {
        match a {
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    let (Some(params), Some(point)) = (params, point) else {
        return Err(PublicError::Missing);
    };
    // A bare point can look like an OCTET STRING by chance (its second byte equal to its
    // length less two), but then the other reading is not a point of the curve: try both.
    let mut last = None;
    for candidate in der::whole(&point, 0x04).into_iter().chain([&point[..]]) {
        match ec_spki(&params, candidate) {
            Ok(key) => return Ok(key),
            Err(e) => last = Some(e),
        }
    }
    // The loop ran at least once (the bare reading), so `last` holds its error.
    Err(PublicError::Unreadable(
        last.unwrap_or_else(openssl::error::ErrorStack::get),
    ))
}

/// The public key of `point` on the curve `params` names, through its SubjectPublicKeyInfo:
/// `SEQUENCE { SEQUENCE { id-ecPublicKey, params }, BIT STRING point }`.
fn ec_spki(params: &[u8], point: &[u8]) -> Result<PKey<Public>, openssl::error::ErrorStack> {
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let algorithm = der::write(0x30, &[EC_PUBLIC_KEY, params].concat());
    let bits = der::write(0x03, &[&[0u8][..], point].concat());
    PKey::public_key_from_der(&der::write(0x30, &[algorithm, bits].concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin_file(content: &str, mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("token.pin");
        std::fs::write(&path, content).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        (dir, path)
    }

    #[test]
    fn a_pin_file_loses_one_line_end_and_an_empty_one_is_refused() {
        assert_eq!(without_line_end("12 34\r\n"), "12 34");
        assert_eq!(without_line_end("1234\n\n"), "1234\n");
        assert_eq!(without_line_end("1234"), "1234");
        let (_d, path) = pin_file("1234\n", 0o600);
        assert_eq!(Pin::read(&path).expect("reads").path, path);
        let (_d, path) = pin_file("\n", 0o600);
        let e = Pin::read(&path).err().expect("empty");
        assert!(matches!(e, Pkcs11Error::PinEmpty { .. }), "{e:?}");
        let (_d, path) = pin_file("1234", 0o604);
        let e = Pin::read(&path).err().expect("world-readable");
        assert!(matches!(e, Pkcs11Error::PinFile { .. }), "{e:?}");
    }
}
