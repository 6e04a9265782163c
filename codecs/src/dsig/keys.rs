//! Signing keys and the trust a verifier starts from.
//!
//! A verifier never trusts a key because a document carries it: `KeyInfo` certificates are
//! only candidates, accepted when they are (or chain to) a certificate or key the caller
//! trusts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509NameRef, X509Ref, X509StoreContext, X509};

use super::algorithm::{public_of, SignatureScheme};
use super::external::ExternalKey;
use super::DsigError;

/// A signer's PEM certificate file: the first certificate is the signer's, the rest its
/// intermediates. A self-signed certificate among them is a trust anchor a verifier must
/// already hold, so it is left out (sending it would only make every signature bigger, as TLS
/// omits the root).
pub fn certificate_chain(pem: &[u8]) -> Result<(X509, Vec<X509>), DsigError> {
    let mut certs = X509::stack_from_pem(pem).map_err(|source| DsigError::KeyUnreadable {
        what: "not a PEM certificate",
        source,
    })?;
    if certs.is_empty() {
        return Err(DsigError::Key("no certificate in the PEM input".into()));
    }
    let leaf = certs.remove(0);
    certs.retain(|c| c.issued(c) != openssl::x509::X509VerifyResult::OK);
    Ok((leaf, certs))
}

/// A private key with the certificate that names its holder. The key is either in this
/// process (an OpenSSL key) or a handle to one held in a token ([`SigningKey::external`]);
/// every private-key use goes through [`SigningKey::sign_with`], so callers need not know
/// which.
#[derive(Debug, Clone)]
pub struct SigningKey {
    key: PrivateKey,
    pub(crate) public: PKey<Public>,
    pub(crate) certificate: Option<X509>,
    /// Intermediate certificates to send along in `X509Data`, leaf first excluded.
    pub(crate) chain: Vec<X509>,
}

impl SigningKey {
    /// Loads a PEM private key (PKCS#8 or traditional, unencrypted) and optionally a PEM
    /// certificate file (the first certificate is the signer's; the rest are intermediates, and
    /// a self-signed root among them is left out of signatures).
    /// Refuses a certificate whose public key is not the key's.
    pub fn from_pem(key_pem: &[u8], cert_pem: Option<&[u8]>) -> Result<Self, DsigError> {
        // OpenSSL reads a GOST key only once the engine is loaded; without it a GOST PEM is
        // "unreadable" and the other key types are unaffected.
        let _ = tereze_gost_engine::load();
        let key =
            PKey::private_key_from_pem(key_pem).map_err(|source| DsigError::KeyUnreadable {
                what: "not a PEM private key",
                source,
            })?;
        let Some(pem) = cert_pem else {
            return Self::new(key, None);
        };
        let (leaf, chain) = certificate_chain(pem)?;
        let mut signing = Self::new(key, Some(leaf))?;
        signing.chain = chain;
        Ok(signing)
    }

    /// A key and, optionally, its certificate; refuses a certificate for another key.
    pub fn new(key: PKey<Private>, certificate: Option<X509>) -> Result<Self, DsigError> {
        let public = public_of(&key)?;
        if let Some(c) = &certificate {
            if !c.public_key()?.public_eq(&public) {
                return Err(DsigError::Key(
                    "the certificate's public key does not match the private key".into(),
                ));
            }
        }
        Ok(Self {
            key: PrivateKey::Software(key),
            public,
            certificate,
            chain: Vec::new(),
        })
    }

    /// A key held in a token, with its certificate (refused when it is for another key) and
    /// the intermediates to send along (leaf excluded).
    pub fn external(
        key: Arc<dyn ExternalKey>,
        certificate: Option<X509>,
        chain: Vec<X509>,
    ) -> Result<Self, DsigError> {
        let public = key.public_key();
        if let Some(c) = &certificate {
            if !c.public_key()?.public_eq(&public) {
                return Err(DsigError::Key(
                    "the certificate's public key does not match the key in the token".into(),
                ));
            }
        }
        Ok(Self {
            key: PrivateKey::External(key),
            public,
            certificate,
            chain,
        })
    }

    /// Signs `data` with `scheme` (which must fit [`public_key`](Self::public_key)),
    /// returning the signature in the scheme's XMLDSig form (`r || s` for ECDSA). The one
    /// place a private key is used: XML signatures and any other signed bytes go through it.
    pub fn sign_with(
        &self,
        scheme: &dyn SignatureScheme,
        data: &[u8],
    ) -> Result<Vec<u8>, DsigError> {
        if !scheme.fits(&self.public) {
            return Err(DsigError::Key(format!(
                "algorithm {} does not fit this key",
                scheme.uri()
            )));
        }
        match &self.key {
            PrivateKey::Software(key) => scheme.sign(key, data),
            PrivateKey::External(key) => scheme.sign_external(key.as_ref(), data),
        }
    }

    /// Whether the private key is held in a token rather than in this process.
    pub fn is_external(&self) -> bool {
        matches!(self.key, PrivateKey::External(_))
    }

    /// The intermediate certificates sent along with the signer's (no self-signed root).
    pub fn chain(&self) -> &[X509] {
        &self.chain
    }

    pub fn certificate(&self) -> Option<&X509> {
        self.certificate.as_ref()
    }

    pub fn public_key(&self) -> &PKeyRef<Public> {
        &self.public
    }
}

/// Where a [`SigningKey`]'s private half is.
#[derive(Debug, Clone)]
enum PrivateKey {
    Software(PKey<Private>),
    External(Arc<dyn ExternalKey>),
}

/// What a verifier trusts: certificates (signers or issuing CAs) and bare public keys.
///
/// Chains it has accepted are remembered (keyed by the SHA-256 of the certificates' DER, with
/// the window in which every certificate of the chain is valid), because a peer signs every
/// message with the same certificate and parsing plus chain building costs more than the
/// signature check itself. Changing the store forgets them.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    pub(crate) certificates: Vec<X509>,
    pub(crate) keys: Vec<PKey<Public>>,
    /// Each bare key's fingerprint (its name as a signer), worked out once when it is added:
    /// it goes through OpenSSL 3's encoder framework, which cost half of a 1 KB document's
    /// verification when done per document.
    key_names: Vec<Option<String>>,
    accepted: Arc<Mutex<HashMap<[u8; 32], Arc<AcceptedSigner>>>>,
}

/// Most chains remembered at once; past that the memory starts afresh.
const ACCEPTED_CAPACITY: usize = 1024;

/// A signer certificate that chains to the trust store, and when that holds.
#[derive(Debug)]
pub(crate) struct AcceptedSigner {
    pub(crate) certificate: X509,
    pub(crate) key: PKey<Public>,
    pub(crate) subject: String,
    /// Unix seconds: the latest `notBefore` and the earliest `notAfter` along the chain.
    valid_from: i64,
    valid_until: i64,
}

fn unix_of(t: &Asn1TimeRef) -> Result<i64, DsigError> {
    let epoch = Asn1Time::from_unix(0)?;
    let d = epoch.diff(t)?;
    Ok(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every certificate in a PEM input, or, when it holds none, its public key.
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<(), DsigError> {
        let _ = tereze_gost_engine::load();
        let certs = X509::stack_from_pem(pem).unwrap_or_default();
        if !certs.is_empty() {
            self.certificates.extend(certs);
            self.forget_accepted();
            return Ok(());
        }
        let key = PKey::public_key_from_pem(pem)
            .map_err(|_| DsigError::Key("neither a PEM certificate nor a PEM public key".into()))?;
        self.add_key(key);
        Ok(())
    }

    pub fn add_certificate(&mut self, cert: X509) {
        self.certificates.push(cert);
        self.forget_accepted();
    }

    pub fn add_key(&mut self, key: PKey<Public>) {
        self.key_names.push(key_fingerprint(&key).ok());
        self.keys.push(key);
        self.forget_accepted();
    }

    fn forget_accepted(&mut self) {
        self.accepted = Arc::default();
    }

    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty() && self.keys.is_empty()
    }

    /// Accepts the signer certificate `chain[0]` (DER, with intermediates from the document
    /// after it) when it is a trusted certificate, carries a trusted public key, or chains to a
    /// trusted certificate, and is valid at `at` (Unix seconds; `None` for now).
    pub(crate) fn accept_chain(
        &self,
        chain: &[Vec<u8>],
        at: Option<i64>,
    ) -> Result<Arc<AcceptedSigner>, DsigError> {
        let when = at.unwrap_or_else(now_unix);
        let mut hasher = openssl::sha::Sha256::new();
        for der in chain {
            hasher.update(&(der.len() as u64).to_be_bytes());
            hasher.update(der);
        }
        let fingerprint = hasher.finish();
        let cached = self
            .accepted
            .lock()
            .ok()
            .and_then(|m| m.get(&fingerprint).cloned());
        if let Some(a) = cached {
            if a.valid_from <= when && when <= a.valid_until {
                return Ok(a);
            }
        }
        let Some((leaf, rest)) = chain.split_first() else {
            return Err(DsigError::Key("no certificate".into()));
        };
        let leaf = X509::from_der(leaf)
            .map_err(|e| DsigError::UntrustedSigner(format!("unreadable certificate: {e}")))?;
        let mut intermediates = Vec::with_capacity(rest.len());
        for der in rest {
            intermediates.push(X509::from_der(der).map_err(|e| {
                DsigError::UntrustedSigner(format!("unreadable intermediate certificate: {e}"))
            })?);
        }
        let (window, trusted_by_key) = self.accept(&leaf, &intermediates, when)?;
        let key = leaf.public_key()?;
        // A certificate accepted only for carrying a trusted bare key vouches for nothing but
        // the key: its subject is whatever its maker wrote, so name the key instead.
        let subject = if trusted_by_key {
            key_fingerprint(&key)?
        } else {
            subject_of(&leaf)
        };
        let accepted = Arc::new(AcceptedSigner {
            key,
            subject,
            certificate: leaf,
            valid_from: window.0,
            valid_until: window.1,
        });
        if let Ok(mut m) = self.accepted.lock() {
            if m.len() >= ACCEPTED_CAPACITY {
                m.clear();
            }
            m.insert(fingerprint, accepted.clone());
        }
        Ok(accepted)
    }

    /// Checks `leaf` against the store at `when` and returns the window (Unix seconds) in which
    /// the whole accepted chain is valid, and whether it was accepted for a trusted bare key.
    fn accept(
        &self,
        leaf: &X509Ref,
        intermediates: &[X509],
        when: i64,
    ) -> Result<((i64, i64), bool), DsigError> {
        let leaf_key = leaf.public_key()?;
        if self.keys.iter().any(|k| k.public_eq(&leaf_key)) {
            check_validity(leaf, when)?;
            let window = (unix_of(leaf.not_before())?, unix_of(leaf.not_after())?);
            return Ok((window, true));
        }
        if self.certificates.is_empty() {
            return Err(DsigError::UntrustedSigner(format!(
                "{}: no trusted certificate or key matches",
                subject_of(leaf)
            )));
        }
        let mut builder = X509StoreBuilder::new()?;
        for c in &self.certificates {
            builder.add_cert(c.clone())?;
        }
        // A trusted intermediate or a trusted signer certificate is an anchor of its own.
        builder.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        let mut param = openssl::x509::verify::X509VerifyParam::new()?;
        param.set_time(when as _);
        builder.set_param(&param)?;
        let store = builder.build();
        let mut chain = Stack::new()?;
        for c in intermediates {
            chain.push(c.clone())?;
        }
        let mut ctx = X509StoreContext::new()?;
        let outcome = ctx.init(&store, leaf, &chain, |c| {
            let ok = c.verify_cert()?;
            let mut window = (i64::MIN, i64::MAX);
            if let Some(verified) = c.chain() {
                for cert in verified {
                    window.0 = window.0.max(unix_of(cert.not_before()).unwrap_or(i64::MAX));
                    window.1 = window.1.min(unix_of(cert.not_after()).unwrap_or(i64::MIN));
                }
            }
            Ok((ok, c.error(), window))
        })?;
        match outcome {
            (true, _, window) => Ok((window, false)),
            (false, err, _) => Err(DsigError::UntrustedSigner(format!(
                "{}: {}",
                subject_of(leaf),
                err.error_string()
            ))),
        }
    }

    /// The trusted keys to try when the document names no certificate, each with where it
    /// comes from; the signer's name is worked out only for the key that verifies
    /// ([`Candidate::name`]).
    pub(crate) fn candidate_keys(&self) -> Result<Vec<(PKey<Public>, Candidate<'_>)>, DsigError> {
        let mut out = Vec::with_capacity(self.certificates.len() + self.keys.len());
        for c in &self.certificates {
            out.push((c.public_key()?, Candidate::Certificate(c)));
        }
        for (i, k) in self.keys.iter().enumerate() {
            let name = self.key_names.get(i).and_then(|n| n.as_deref());
            out.push((k.clone(), Candidate::Key(name)));
        }
        Ok(out)
    }
}

/// Where a candidate key of [`TrustStore::candidate_keys`] comes from.
pub(crate) enum Candidate<'a> {
    Certificate(&'a X509),
    /// A bare key, with its fingerprint when it was worked out on adding.
    Key(Option<&'a str>),
}

impl Candidate<'_> {
    /// The signer's name: the certificate's subject, or the key's fingerprint.
    pub(crate) fn name(&self, key: &PKeyRef<Public>) -> Result<String, DsigError> {
        match self {
            Candidate::Certificate(c) => Ok(subject_of(c)),
            Candidate::Key(Some(n)) => Ok((*n).to_owned()),
            Candidate::Key(None) => key_fingerprint(key),
        }
    }
}

fn check_validity(cert: &X509Ref, when: i64) -> Result<(), DsigError> {
    let now = Asn1Time::from_unix(when as _)?;
    if cert.not_before() > now || cert.not_after() < now {
        return Err(DsigError::UntrustedSigner(format!(
            "{}: certificate not valid at the verification time (valid {} to {})",
            subject_of(cert),
            cert.not_before(),
            cert.not_after()
        )));
    }
    Ok(())
}

/// A distinguished name as `CN=…, O=…, C=…` in the certificate's order.
pub fn format_name(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e
                .object()
                .nid()
                .short_name()
                .map(str::to_owned)
                .unwrap_or_else(|_| e.object().to_string());
            let value = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The subject of a certificate, formatted with [`format_name`].
pub fn subject_of(cert: &X509Ref) -> String {
    format_name(cert.subject_name())
}

/// `key SHA256:<hex>` over the DER SubjectPublicKeyInfo, naming a bare trusted key.
pub fn key_fingerprint(key: &PKeyRef<Public>) -> Result<String, DsigError> {
    let der = key.public_key_to_der()?;
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::sha256(), &der)?;
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("public key SHA256:{hex}"))
}

/// The common name of a certificate, if it has one.
pub fn common_name(cert: &X509Ref) -> Option<String> {
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};

    #[test]
    fn a_bare_trusted_key_names_the_signer_by_its_fingerprint_and_another_key_fails() {
        use crate::dsig::{sign_enveloped, verify, SignOptions, SignTarget, VerifyPolicy};
        let key = generate_key(KeyKind::EcP256).expect("key");
        let public = super::super::algorithm::public_of(&key).expect("public");
        let other = generate_key(KeyKind::EcP256).expect("key");
        let options = SignOptions {
            include_certificate: false,
            ..SignOptions::default()
        };
        let mut doc = crate::xml::parse(b"<a><b>x</b></a>").expect("parses");
        let signer = SigningKey::new(key, None).expect("signer");
        sign_enveloped(&mut doc, &SignTarget::Document, &signer, &options).expect("signs");
        let mut trust = TrustStore::new();
        trust.add_key(super::super::algorithm::public_of(&other).expect("public"));
        assert!(verify(&doc, &trust, &VerifyPolicy::default()).is_err());
        trust.add_key(public.clone());
        let verified = verify(&doc, &trust, &VerifyPolicy::default()).expect("verifies");
        assert_eq!(
            verified.signer.subject,
            key_fingerprint(&public).expect("fingerprint")
        );
    }

    #[test]
    fn a_self_signed_root_after_the_leaf_is_not_carried_but_intermediates_are() {
        let root_key = generate_key(KeyKind::EcP256).expect("key");
        let root = issue_certificate(
            &CertificateSpec {
                subject: &[("CN", "root")],
                not_before_days: -1,
                not_after_days: 1,
                is_ca: true,
            },
            &root_key,
            None,
        )
        .expect("root");
        let mid_key = generate_key(KeyKind::EcP256).expect("key");
        let mid = issue_certificate(
            &CertificateSpec {
                subject: &[("CN", "intermediate")],
                not_before_days: -1,
                not_after_days: 1,
                is_ca: true,
            },
            &mid_key,
            Some((&root, &root_key)),
        )
        .expect("intermediate");
        let key = generate_key(KeyKind::EcP256).expect("key");
        let leaf = issue_certificate(
            &CertificateSpec {
                subject: &[("CN", "signer")],
                not_before_days: -1,
                not_after_days: 1,
                is_ca: false,
            },
            &key,
            Some((&mid, &mid_key)),
        )
        .expect("leaf");
        let mut pem = leaf.to_pem().expect("pem");
        pem.extend(mid.to_pem().expect("pem"));
        pem.extend(root.to_pem().expect("pem"));
        let signing =
            SigningKey::from_pem(&key.private_key_to_pem_pkcs8().expect("pem"), Some(&pem))
                .expect("loads");
        let chain: Vec<String> = signing.chain.iter().map(|c| subject_of(c)).collect();
        assert_eq!(chain, ["CN=intermediate"]);
    }
}
