//! Key and certificate issuance for test PKIs and demos: EC P-256/P-384, RSA or GOST
//! R 34.10-2012 keys, a CA certificate, and signer certificates issued by it (signed with the
//! issuer key's own algorithm: Streebog for a GOST issuer). Production nodes use certificates from
//! their state's accredited CA; this exists so tests and the demo use real X.509 chains.

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509NameBuilder, X509};

use tereze_gost_engine::GostKey;

use crate::dsig::gost::{own_digest, require_engine, GOST2012_256_URI, GOST2012_512_URI};
use crate::dsig::{DsigError, SigningKey};

/// The kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    EcP256,
    EcP384,
    EcP521,
    Rsa(u32),
    /// GOST R 34.10-2012 256-bit, parameter set A (needs the OpenSSL GOST engine).
    Gost2012_256,
    /// GOST R 34.10-2012 512-bit, TC26 parameter set A (needs the OpenSSL GOST engine).
    Gost2012_512,
}

/// Generates a private key.
pub fn generate_key(kind: KeyKind) -> Result<PKey<Private>, DsigError> {
    Ok(match kind {
        KeyKind::EcP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
        KeyKind::EcP384 => {
            let group = EcGroup::from_curve_name(Nid::SECP384R1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
        KeyKind::EcP521 => {
            let group = EcGroup::from_curve_name(Nid::SECP521R1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
        KeyKind::Rsa(bits) => PKey::from_rsa(Rsa::generate(bits)?)?,
        KeyKind::Gost2012_256 => gost_key(GostKey::Gost2012_256A, GOST2012_256_URI)?,
        KeyKind::Gost2012_512 => gost_key(GostKey::Gost2012_512A, GOST2012_512_URI)?,
    })
}

fn gost_key(kind: GostKey, uri: &str) -> Result<PKey<Private>, DsigError> {
    require_engine(uri)?;
    tereze_gost_engine::generate_key(kind).map_err(|e| DsigError::AlgorithmUnavailable {
        uri: uri.to_owned(),
        engine: Some(e),
    })
}

/// What to put in a certificate.
#[derive(Debug, Clone)]
pub struct CertificateSpec<'a> {
    /// Subject entries in order, e.g. `[("C", "KZ"), ("O", "Customs"), ("CN", "signer")]`.
    pub subject: &'a [(&'a str, &'a str)],
    /// Validity starts this many days from now (negative for the past).
    pub not_before_days: i64,
    /// Validity ends this many days from now (negative for an expired certificate).
    pub not_after_days: i64,
    pub is_ca: bool,
}

/// Issues a certificate for `key`, signed by `issuer` (certificate and key), or self-signed
/// when `issuer` is `None`: a CA (`spec.is_ca`) or a document signer.
pub fn issue_certificate(
    spec: &CertificateSpec<'_>,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> Result<X509, DsigError> {
    issue(spec, key, issuer, None)
}

/// Issues a TLS certificate for a node: server and client authentication, the given DNS
/// names and 127.0.0.1 in subjectAltName (what rustls and mutual TLS between nodes need).
pub fn issue_tls_certificate(
    spec: &CertificateSpec<'_>,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    dns_names: &[&str],
) -> Result<X509, DsigError> {
    issue(spec, key, issuer, Some(dns_names))
}

fn issue(
    spec: &CertificateSpec<'_>,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    tls_names: Option<&[&str]>,
) -> Result<X509, DsigError> {
    let mut name = X509NameBuilder::new()?;
    for (k, v) in spec.subject {
        name.append_entry_by_text(k, v)?;
    }
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    match issuer {
        Some((cert, _)) => b.set_issuer_name(cert.subject_name())?,
        None => b.set_issuer_name(&name)?,
    }
    b.set_pubkey(key)?;
    let day = 86_400i64;
    let base = now_unix();
    let not_before = Asn1Time::from_unix((base + spec.not_before_days * day) as _)?;
    let not_after = Asn1Time::from_unix((base + spec.not_after_days * day) as _)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    if spec.is_ca {
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
    } else if let Some(names) = tls_names {
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        b.append_extension(
            ExtendedKeyUsage::new()
                .server_auth()
                .client_auth()
                .build()?,
        )?;
        let mut san = SubjectAlternativeName::new();
        for n in names {
            san.dns(n);
        }
        san.ip("127.0.0.1");
        let san = san.build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))?;
        b.append_extension(san)?;
    } else {
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .non_repudiation()
                .build()?,
        )?;
    }
    let context = b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None);
    let ski = SubjectKeyIdentifier::new().build(&context)?;
    b.append_extension(ski)?;
    if issuer.is_some() {
        let context = b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None);
        let aki = AuthorityKeyIdentifier::new().keyid(true).build(&context)?;
        b.append_extension(aki)?;
    }
    let signing_key = issuer.map(|(_, k)| k).unwrap_or(key);
    // A GOST key signs with its own Streebog (OpenSSL then writes the GOST R 34.10-2012
    // signature algorithm OID); every other key with SHA-256.
    let md = match own_digest(signing_key) {
        Some(d) => d.message_digest()?,
        None => MessageDigest::sha256(),
    };
    b.sign(signing_key, md)?;
    Ok(b.build())
}

/// A key with a self-signed end-entity certificate valid from yesterday for `days` days: the
/// quickest real signer for tests, benchmarks and examples.
pub fn self_signed_signer(
    kind: KeyKind,
    common_name: &str,
    days: i64,
) -> Result<(SigningKey, X509), DsigError> {
    let key = generate_key(kind)?;
    let cert = issue_certificate(
        &CertificateSpec {
            subject: &[("CN", common_name)],
            not_before_days: -1,
            not_after_days: days,
            is_ca: false,
        },
        &key,
        None,
    )?;
    Ok((SigningKey::new(key, Some(cert.clone()))?, cert))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
