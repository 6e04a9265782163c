//! Signing keys and the trust a verifier starts from.
//!
//! A verifier never trusts a key because a document carries it: `KeyInfo` certificates are
//! only candidates, accepted when they are (or chain to) a certificate or key the caller
//! trusts. Untrusted intermediates given to the store only help build chains, never end
//! them; CRLs given to it judge each certificate of a chain at the verification time (a
//! certificate revoked after that time was good then).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Crl, X509NameRef, X509Ref, X509StoreContext, X509};

use super::algorithm::{public_of, SignatureScheme};
use super::crl::{self, rfc3339, unix_of};
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

/// What a verifier trusts: certificates (signers or issuing CAs) and bare public keys; and
/// what it checks chains with: untrusted intermediates and CRLs.
///
/// Chains it has accepted are remembered (keyed by the SHA-256 of the certificates' DER, with
/// the window in which every certificate of the chain is valid, not revoked and covered by a
/// current CRL), because a peer signs every message with the same certificate and parsing plus
/// chain building costs more than the signature check itself. Changing the store (anchors,
/// keys, intermediates or CRLs) forgets them, so a remembered chain was always judged with the
/// store's present CRLs, and a verification time outside its window judges afresh.
///
/// Revocation: when the store holds CRLs, every certificate of an accepted chain below a
/// self-signed anchor is looked up in the CRLs of its issuer (same issuer name, signed by the
/// issuer's key: the next certificate of the chain, or a certificate of the store). Revoked at
/// or before the verification time: refused ([`DsigError::Revoked`]); revoked after it:
/// accepted. A CRL whose issuer is not in the chain says nothing about it and is ignored (a
/// CRL set may cover several CAs); a CRL naming a chain issuer that did not sign it, or whose
/// issuer certificate is not at hand, is refused ([`DsigError::CrlNotAuthentic`]); an issuer's
/// CRLs that all expired (`nextUpdate`) before the verification time, without listing the
/// certificate, are refused ([`DsigError::CrlNotCurrent`]): they cannot say it was good then.
/// A chain accepted for a trusted bare key has no issuer to check and is not looked up.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    pub(crate) certificates: Vec<X509>,
    pub(crate) keys: Vec<PKey<Public>>,
    /// Certificates that may complete a chain, never anchors.
    untrusted: Vec<X509>,
    crls: Crls,
    /// Each bare key's fingerprint (its name as a signer), worked out once when it is added:
    /// it goes through OpenSSL 3's encoder framework, which cost half of a 1 KB document's
    /// verification when done per document.
    key_names: Vec<Option<String>>,
    accepted: Arc<Mutex<HashMap<[u8; 32], Arc<AcceptedSigner>>>>,
}

/// The CRLs of a [`TrustStore`] (OpenSSL's CRL type is neither `Debug` nor `Clone`).
#[derive(Clone, Default)]
struct Crls(Vec<Arc<X509Crl>>);

impl std::fmt::Debug for Crls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} CRLs", self.0.len())
    }
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

    /// Adds every certificate of a PEM input as an untrusted intermediate: used to build a
    /// signer's chain to an anchor (as if the document carried it), never an anchor itself.
    /// Returns how many were added; a PEM input without a certificate is refused.
    pub fn add_untrusted_pem(&mut self, pem: &[u8]) -> Result<usize, DsigError> {
        let _ = tereze_gost_engine::load();
        let certs = X509::stack_from_pem(pem).map_err(|source| DsigError::KeyUnreadable {
            what: "not a PEM certificate",
            source,
        })?;
        if certs.is_empty() {
            return Err(DsigError::Key("no certificate in the PEM input".into()));
        }
        let n = certs.len();
        self.untrusted.extend(certs);
        self.forget_accepted();
        Ok(n)
    }

    /// Adds the CRLs of an input: one or more PEM CRLs, or one DER CRL. Returns how many.
    /// Nothing is checked here: a CRL is authenticated against the chain it judges.
    pub fn add_crls(&mut self, bytes: &[u8]) -> Result<usize, DsigError> {
        let crls = crl::parse_crls(bytes).map_err(DsigError::CrlUnreadable)?;
        let n = crls.len();
        self.crls.0.extend(crls.into_iter().map(Arc::new));
        self.forget_accepted();
        Ok(n)
    }

    /// Adds one CRL (see [`add_crls`](Self::add_crls)).
    pub fn add_crl(&mut self, crl: Arc<X509Crl>) {
        self.crls.0.push(crl);
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
            // No issuer vouches for a bare key, so no CRL can speak for or against it.
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
        for c in intermediates.iter().chain(&self.untrusted) {
            chain.push(c.clone())?;
        }
        let mut ctx = X509StoreContext::new()?;
        let outcome = ctx.init(&store, leaf, &chain, |c| {
            let ok = c.verify_cert()?;
            let mut window = (i64::MIN, i64::MAX);
            let mut verified_chain = Vec::new();
            if let Some(verified) = c.chain() {
                for cert in verified {
                    window.0 = window.0.max(unix_of(cert.not_before()).unwrap_or(i64::MAX));
                    window.1 = window.1.min(unix_of(cert.not_after()).unwrap_or(i64::MIN));
                    verified_chain.push(cert.to_owned());
                }
            }
            Ok((ok, c.error(), window, verified_chain))
        })?;
        match outcome {
            (true, _, window, verified) => {
                let until = self.judge_revocation(&verified, when)?;
                Ok(((window.0, window.1.min(until)), false))
            }
            (false, err, _, _) => Err(DsigError::UntrustedSigner(format!(
                "{}: {}",
                subject_of(leaf),
                err.error_string()
            ))),
        }
    }

    /// Judges each certificate of a verified chain (leaf first, anchor last) against the
    /// store's CRLs at `when` (see [`TrustStore`]'s revocation rules); returns the last second
    /// until which this judgement holds (before a later revocation or the CRLs' expiry).
    fn judge_revocation(&self, chain: &[X509], when: i64) -> Result<i64, DsigError> {
        let mut until = i64::MAX;
        if self.crls.0.is_empty() {
            return Ok(until);
        }
        for (i, cert) in chain.iter().enumerate() {
            let self_signed = cert.issued(cert) == openssl::x509::X509VerifyResult::OK;
            if self_signed {
                continue;
            }
            let from_issuer: Vec<&X509Crl> = self
                .crls
                .0
                .iter()
                .map(|c| &**c)
                .filter(|c| {
                    c.issuer_name()
                        .try_cmp(cert.issuer_name())
                        .is_ok_and(|o| o == std::cmp::Ordering::Equal)
                })
                .collect();
            if from_issuer.is_empty() {
                continue;
            }
            let issuer_name = format_name(cert.issuer_name());
            // The next certificate of the chain issued this one; for a trusted certificate
            // that ends a partial chain, the issuer may be among the store's certificates.
            let issuer = chain.get(i + 1).or_else(|| {
                self.certificates
                    .iter()
                    .chain(&self.untrusted)
                    .find(|c| c.issued(cert) == openssl::x509::X509VerifyResult::OK)
            });
            let Some(issuer) = issuer else {
                return Err(DsigError::CrlNotAuthentic {
                    issuer: issuer_name,
                    why: "its issuer's certificate is not in the chain or the store",
                });
            };
            let issuer_key = issuer.public_key()?;
            let mut latest_next: Option<i64> = None;
            let mut open_ended = false;
            for c in &from_issuer {
                if !c.verify(&issuer_key).unwrap_or(false) {
                    return Err(DsigError::CrlNotAuthentic {
                        issuer: issuer_name,
                        why: "its signature does not verify with the issuer's key",
                    });
                }
                if let Some(r) = crl::revocation_in(c, cert) {
                    if r.at <= when {
                        return Err(DsigError::Revoked {
                            subject: subject_of(cert),
                            at: rfc3339(r.at),
                            reason: r.reason,
                        });
                    }
                    until = until.min(r.at - 1);
                }
                match c.next_update() {
                    Some(next) => {
                        let next = unix_of(next)?;
                        latest_next = Some(latest_next.map_or(next, |l| l.max(next)));
                    }
                    None => open_ended = true,
                }
            }
            if !open_ended {
                if let Some(next) = latest_next {
                    if next < when {
                        return Err(DsigError::CrlNotCurrent {
                            issuer: issuer_name,
                            at: rfc3339(when),
                            next_update: rfc3339(next),
                        });
                    }
                    until = until.min(next);
                }
            }
        }
        Ok(until)
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
        let Pki {
            root,
            mid,
            leaf,
            key,
            ..
        } = pki();
        let mut pem = leaf.to_pem().expect("pem");
        pem.extend(mid.to_pem().expect("pem"));
        pem.extend(root.to_pem().expect("pem"));
        let signing =
            SigningKey::from_pem(&key.private_key_to_pem_pkcs8().expect("pem"), Some(&pem))
                .expect("loads");
        let chain: Vec<String> = signing.chain.iter().map(|c| subject_of(c)).collect();
        assert_eq!(chain, ["CN=intermediate"]);
    }

    /// A root, an intermediate it issued and a signer the intermediate issued, each valid
    /// from a day ago to a day ahead.
    struct Pki {
        root: X509,
        root_key: PKey<Private>,
        mid: X509,
        mid_key: PKey<Private>,
        leaf: X509,
        /// The signer's key.
        key: PKey<Private>,
    }

    /// A certificate named `CN=cn` for `key`, valid from a day ago to a day ahead.
    fn issue(
        cn: &str,
        is_ca: bool,
        key: &PKey<Private>,
        issuer: Option<(&X509, &PKey<Private>)>,
    ) -> X509 {
        let spec = CertificateSpec {
            subject: &[("CN", cn)],
            not_before_days: -1,
            not_after_days: 1,
            is_ca,
        };
        issue_certificate(&spec, key, issuer).expect("certificate")
    }

    fn pki() -> Pki {
        let root_key = generate_key(KeyKind::EcP256).expect("key");
        let root = issue("root", true, &root_key, None);
        let mid_key = generate_key(KeyKind::EcP256).expect("key");
        let mid = issue("intermediate", true, &mid_key, Some((&root, &root_key)));
        let key = generate_key(KeyKind::EcP256).expect("key");
        let leaf = issue("signer", false, &key, Some((&mid, &mid_key)));
        Pki {
            root,
            root_key,
            mid,
            mid_key,
            leaf,
            key,
        }
    }

    /// A trust store anchored at the root, with the intermediate as an untrusted certificate.
    fn root_with_intermediate(p: &Pki) -> TrustStore {
        let mut trust = TrustStore::new();
        trust.add_certificate(p.root.clone());
        trust
            .add_untrusted_pem(&p.mid.to_pem().expect("pem"))
            .expect("adds");
        trust
    }

    /// A CRL from `issuer` listing `revoked` (certificate, Unix seconds), issued now and next
    /// updated at `next_update`.
    fn crl(
        issuer: &X509,
        key: &PKey<Private>,
        revoked: &[(&X509, i64)],
        next_update: i64,
    ) -> Arc<X509Crl> {
        use openssl::x509::{X509CrlBuilder, X509RevokedBuilder};
        let mut b = X509CrlBuilder::new().expect("builder");
        b.set_issuer_name(issuer.subject_name()).expect("issuer");
        b.set_last_update(&Asn1Time::from_unix(now_unix()).expect("time"))
            .expect("last");
        b.set_next_update(&Asn1Time::from_unix(next_update).expect("time"))
            .expect("next");
        for (cert, at) in revoked {
            let mut r = X509RevokedBuilder::new().expect("entry");
            r.set_serial_number(cert.serial_number()).expect("serial");
            r.set_revocation_date(&Asn1Time::from_unix(*at).expect("time"))
                .expect("date");
            b.add_revoked(r.build()).expect("add");
        }
        // What the builder insists on (RFC 5280 §5.2.1, §5.2.3): an authority key identifier
        // (any key id: nothing here matches by it) and a CRL number, both as DER.
        let ext = |oid: &str, der: &[u8]| {
            let oid = openssl::asn1::Asn1Object::from_str(oid).expect("oid");
            let value = openssl::asn1::Asn1OctetString::new_from_bytes(der).expect("octets");
            openssl::x509::X509Extension::new_from_der(&oid, false, &value).expect("extension")
        };
        let mut aki = vec![0x30, 22, 0x80, 20];
        aki.extend(&openssl::sha::sha256(&issuer.to_der().expect("der"))[..20]);
        b.append_extension(ext("2.5.29.35", &aki)).expect("aki");
        b.append_extension(ext("2.5.29.20", &[0x02, 0x01, 0x01]))
            .expect("number");
        b.sign(key, openssl::hash::MessageDigest::sha256())
            .expect("sign");
        Arc::new(b.build().expect("crl"))
    }

    fn der(cert: &X509) -> Vec<u8> {
        cert.to_der().expect("der")
    }

    #[test]
    fn an_untrusted_intermediate_completes_a_chain_but_never_anchors_one() {
        let p = pki();
        let mut trust = TrustStore::new();
        trust.add_certificate(p.root.clone());
        let chain = [der(&p.leaf)];
        assert!(trust.accept_chain(&chain, None).is_err(), "no intermediate");
        let n = trust
            .add_untrusted_pem(&p.mid.to_pem().expect("pem"))
            .expect("adds");
        assert_eq!(n, 1);
        let accepted = trust.accept_chain(&chain, None).expect("chains through it");
        assert_eq!(accepted.subject, "CN=signer");

        let mut only_untrusted = TrustStore::new();
        only_untrusted.add_certificate(p.leaf.clone());
        only_untrusted
            .add_untrusted_pem(&p.mid.to_pem().expect("pem"))
            .expect("adds");
        let e = only_untrusted
            .accept_chain(&[der(&p.mid)], None)
            .expect_err("an untrusted certificate is no anchor");
        assert!(matches!(e, DsigError::UntrustedSigner(_)), "{e}");
    }

    #[test]
    fn revoked_before_the_verification_time_is_refused_after_it_accepted_and_the_memory_follows() {
        let p = pki();
        let now = now_unix();
        let mut trust = root_with_intermediate(&p);
        trust.add_crl(crl(&p.mid, &p.mid_key, &[(&p.leaf, now)], now + 3600));
        let chain = [der(&p.leaf)];
        // Before the revocation: accepted, and remembered.
        trust
            .accept_chain(&chain, Some(now - 600))
            .expect("good before its revocation");
        // After it the memory must not answer for the earlier judgement.
        let e = trust
            .accept_chain(&chain, Some(now + 60))
            .expect_err("revoked by then");
        let DsigError::Revoked {
            subject, reason, ..
        } = &e
        else {
            panic!("{e}");
        };
        assert_eq!(subject, "CN=signer");
        assert_eq!(*reason, "unspecified");
        assert!(e.to_string().contains("revoked at "), "{e}");
        // A revoked intermediate refuses every signer below it.
        let mut trust = root_with_intermediate(&p);
        trust.add_crl(crl(&p.root, &p.root_key, &[(&p.mid, now - 60)], now + 3600));
        let e = trust.accept_chain(&chain, None).expect_err("revoked CA");
        assert!(
            matches!(&e, DsigError::Revoked { subject, .. } if subject == "CN=intermediate"),
            "{e}"
        );
    }

    #[test]
    fn a_crl_outside_the_chain_is_ignored_and_a_forged_one_refused() {
        let p = pki();
        let other = pki();
        let now = now_unix();
        let mut trust = root_with_intermediate(&p);
        // Another CA's CRL (same names, but not this chain's issuer key) listing the signer's
        // serial: its issuer name matches, its signature does not.
        trust.add_crl(crl(
            &other.mid,
            &other.mid_key,
            &[(&p.leaf, now - 60)],
            now + 3600,
        ));
        let e = trust
            .accept_chain(&[der(&p.leaf)], None)
            .expect_err("forged CRL");
        assert!(matches!(e, DsigError::CrlNotAuthentic { .. }), "{e}");

        let unrelated_key = generate_key(KeyKind::EcP256).expect("key");
        let unrelated = issue("unrelated CA", true, &unrelated_key, None);
        let mut trust = root_with_intermediate(&p);
        trust.add_crl(crl(
            &unrelated,
            &unrelated_key,
            &[(&p.leaf, now - 60)],
            now + 3600,
        ));
        trust
            .accept_chain(&[der(&p.leaf)], None)
            .expect("a CRL of another issuer says nothing about this chain");
    }

    #[test]
    fn crls_expired_before_the_verification_time_cannot_vouch_for_it() {
        let p = pki();
        let now = now_unix();
        let mut trust = root_with_intermediate(&p);
        trust.add_crl(crl(&p.mid, &p.mid_key, &[], now + 60));
        let chain = [der(&p.leaf)];
        trust
            .accept_chain(&chain, Some(now))
            .expect("current CRL, not listed");
        let e = trust
            .accept_chain(&chain, Some(now + 3600))
            .expect_err("the CRL expired before then");
        assert!(matches!(e, DsigError::CrlNotCurrent { .. }), "{e}");
        // A later CRL of the same issuer covers the time.
        trust.add_crl(crl(&p.mid, &p.mid_key, &[], now + 7200));
        trust
            .accept_chain(&chain, Some(now + 3600))
            .expect("the newer CRL vouches for it");
    }

    #[test]
    fn unreadable_crls_and_intermediates_are_refused() {
        let mut trust = TrustStore::new();
        assert!(matches!(
            trust.add_crls(b"junk"),
            Err(DsigError::CrlUnreadable(_))
        ));
        assert!(trust.add_untrusted_pem(b"junk").is_err());
    }
}
