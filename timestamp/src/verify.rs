//! Checking a time-stamp token (RFC 3161 §2.4.2, CMS per RFC 5652 §5) against the
//! authorities the trust space lists. **Guarantee:** [`verify()`] returns a [`Stamp`] only when
//! every check below passed, in this order (docs/timestamps.md):
//!
//! 1. the bytes are a ContentInfo of SignedData whose eContentType is id-ct-TSTInfo, with one
//!    signer;
//! 2. the imprint's algorithm is SHA-256, -384 or -512 (SHA-1 refused) and the imprint equals
//!    the expected one;
//! 3. signed attributes: content-type is id-ct-TSTInfo, message-digest is the hash of the
//!    encapsulated TSTInfo, and an ESS signing-certificate (v1 or v2) names the signer
//!    certificate, which the token carries (or, for a token requested without certReq, an
//!    authority lists);
//! 4. the signer certificate has extendedKeyUsage timeStamping, marked critical (§2.3);
//! 5. the signature over the DER SET OF the signed attributes verifies with it (RSA PKCS#1
//!    v1.5, ECDSA; GOST R 34.10-2012 when the GOST engine is loaded);
//! 6. the signer certificate chains (through the token's other certificates) to one of an
//!    authority's certificates, valid at the token's genTime (OpenSSL's `X509Store` with the
//!    verification time set to genTime).

use chrono::{DateTime, Utc};
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use openssl::hash::MessageDigest;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509StoreContext, X509VerifyResult, X509};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_tsp::TstInfo;

use crate::error::TimestampError;
use crate::oids;

/// A time-stamping authority a token may chain to: what the trust space lists for a state.
#[derive(Clone)]
pub struct Authority {
    /// Who lists it (the state's code) or another label for messages.
    pub name: String,
    /// Where tokens are requested (`http://…`).
    pub url: String,
    /// At least the certificate a token's signer must chain to (the authority's CA, or its
    /// signing certificate itself); each one is a trust anchor.
    pub certificates: Vec<X509>,
}

impl Authority {
    /// An authority from PEM certificates (one or more, concatenated).
    pub fn from_pem(name: &str, url: &str, pem: &[u8]) -> Result<Authority, TimestampError> {
        let certificates =
            X509::stack_from_pem(pem).map_err(|source| TimestampError::BadAuthority {
                url: url.to_owned(),
                reason: "not PEM certificates".to_owned(),
                source: Some(source),
            })?;
        if certificates.is_empty() {
            return Err(TimestampError::BadAuthority {
                url: url.to_owned(),
                reason: "no certificate (at least the one a token's signer chains to)".to_owned(),
                source: None,
            });
        }
        Ok(Authority {
            name: name.to_owned(),
            url: url.to_owned(),
            certificates,
        })
    }
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// When the authority says the imprint existed (TSTInfo genTime).
    pub gen_time: DateTime<Utc>,
    /// The token's serial number, hexadecimal.
    pub serial: String,
    /// The authority's policy OID, dotted.
    pub policy: String,
    /// The signer certificate's subject (RFC 4514).
    pub authority: String,
    /// The [`Authority::url`] of the listed authority the signer chained to.
    pub authority_url: String,
    /// The [`Authority::name`] of that authority.
    pub authority_name: String,
    /// The stated accuracy of genTime, when given.
    pub accuracy: Option<std::time::Duration>,
}

/// A token taken apart (step 1 only).
struct Parsed {
    signed: SignedData,
    /// The encapsulated TSTInfo's DER (what message-digest covers).
    content: Vec<u8>,
    info: TstInfo,
}

fn not_a_token(what: &str, source: Option<der::Error>) -> TimestampError {
    TimestampError::NotAToken {
        what: what.to_owned(),
        source,
    }
}

fn parse(token: &[u8]) -> Result<Parsed, TimestampError> {
    let ci =
        ContentInfo::from_der(token).map_err(|e| not_a_token("not a DER ContentInfo", Some(e)))?;
    if ci.content_type != oids::SIGNED_DATA {
        return Err(not_a_token(
            &format!("content type {} is not SignedData", ci.content_type),
            None,
        ));
    }
    let der = ci
        .content
        .to_der()
        .map_err(|e| not_a_token("SignedData", Some(e)))?;
    let signed =
        SignedData::from_der(&der).map_err(|e| not_a_token("not a DER SignedData", Some(e)))?;
    let encap = &signed.encap_content_info;
    if encap.econtent_type != oids::TST_INFO {
        return Err(not_a_token(
            &format!("eContentType {} is not id-ct-TSTInfo", encap.econtent_type),
            None,
        ));
    }
    let content = encap
        .econtent
        .as_ref()
        .ok_or_else(|| not_a_token("no encapsulated TSTInfo", None))?
        .decode_as::<OctetString>()
        .map_err(|e| not_a_token("eContent is not an OCTET STRING", Some(e)))?
        .as_bytes()
        .to_vec();
    let info =
        TstInfo::from_der(&content).map_err(|e| not_a_token("not a DER TSTInfo", Some(e)))?;
    Ok(Parsed {
        signed,
        content,
        info,
    })
}

/// The TSTInfo of a token, unverified (the client's nonce and imprint check).
pub(crate) fn tst_info(token: &[u8]) -> Result<TstInfo, TimestampError> {
    parse(token).map(|p| p.info)
}

fn digest_of(oid: &ObjectIdentifier, what: &'static str) -> Result<MessageDigest, TimestampError> {
    let gost = |name: &str| MessageDigest::from_name(name);
    let found = match *oid {
        oids::SHA1 => return Err(TimestampError::Sha1 { what }),
        oids::SHA256 => Some(MessageDigest::sha256()),
        oids::SHA384 => Some(MessageDigest::sha384()),
        oids::SHA512 => Some(MessageDigest::sha512()),
        // GOST R 34.11-2012, known to OpenSSL only with the GOST engine loaded.
        oids::STREEBOG256 => gost("md_gost12_256"),
        oids::STREEBOG512 => gost("md_gost12_512"),
        _ => None,
    };
    found.ok_or_else(|| TimestampError::UnsupportedAlgorithm {
        what,
        oid: oid.to_string(),
    })
}

fn hash(md: MessageDigest, data: &[u8]) -> Result<Vec<u8>, TimestampError> {
    openssl::hash::hash(md, data)
        .map(|d| d.to_vec())
        .map_err(|source| TimestampError::Crypto {
            what: "hashing",
            source,
        })
}

/// ESSCertID (RFC 2634 §5.4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

/// SigningCertificate (RFC 2634 §5.4).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

/// ESSCertIDv2 (RFC 5035 §4); an absent hashAlgorithm means SHA-256.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

/// SigningCertificateV2 (RFC 5035 §3).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

/// The single value of the signed attribute `oid`, if present (twice or empty: an error).
fn attribute<'a>(
    attrs: &'a SetOfVec<x509_cert::attr::Attribute>,
    oid: ObjectIdentifier,
    name: &'static str,
) -> Result<Option<&'a Any>, TimestampError> {
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let Some(a) = found.next() else {
        return Ok(None);
    };
    let bad = |reason: &str| TimestampError::BadSignedAttribute {
        attribute: name,
        reason: reason.to_owned(),
    };
    if found.next().is_some() {
        return Err(bad("present twice"));
    }
    if a.values.len() != 1 {
        return Err(bad("not exactly one value"));
    }
    Ok(a.values.iter().next())
}

fn signer_certificate<'a>(
    signer: &SignerInfo,
    certs: &'a [Certificate],
) -> Result<&'a Certificate, TimestampError> {
    certs
        .iter()
        .find(|c| match &signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(is) => {
                c.tbs_certificate.issuer == is.issuer
                    && c.tbs_certificate.serial_number == is.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => c
                .tbs_certificate
                .extensions
                .iter()
                .flatten()
                .filter(|e| e.extn_id == oids::SUBJECT_KEY_IDENTIFIER)
                .any(|e| {
                    OctetString::from_der(e.extn_value.as_bytes())
                        .is_ok_and(|v| v.as_bytes() == ski.0.as_bytes())
                }),
        })
        .ok_or(TimestampError::NoSignerCertificate)
}

fn check_ess(
    attrs: &SetOfVec<x509_cert::attr::Attribute>,
    cert_der: &[u8],
) -> Result<(), TimestampError> {
    let bad = |attribute: &'static str, reason: &str| TimestampError::BadSignedAttribute {
        attribute,
        reason: reason.to_owned(),
    };
    if let Some(v) = attribute(
        attrs,
        oids::SIGNING_CERTIFICATE_V2,
        "signing-certificate-v2",
    )? {
        let sc: SigningCertificateV2 = v
            .decode_as()
            .map_err(|_| bad("signing-certificate-v2", "not a SigningCertificateV2"))?;
        let first = sc
            .certs
            .first()
            .ok_or_else(|| bad("signing-certificate-v2", "names no certificate"))?;
        let oid = first
            .hash_algorithm
            .as_ref()
            .map_or(oids::SHA256, |a| a.oid);
        let md = digest_of(&oid, "the signing-certificate-v2 hash")?;
        if hash(md, cert_der)? != first.cert_hash.as_bytes() {
            return Err(bad(
                "signing-certificate-v2",
                "does not name the signer certificate",
            ));
        }
        return Ok(());
    }
    if let Some(v) = attribute(attrs, oids::SIGNING_CERTIFICATE, "signing-certificate")? {
        let sc: SigningCertificate = v
            .decode_as()
            .map_err(|_| bad("signing-certificate", "not a SigningCertificate"))?;
        let first = sc
            .certs
            .first()
            .ok_or_else(|| bad("signing-certificate", "names no certificate"))?;
        // ESS v1 fixes SHA-1 as the certificate hash (RFC 2634); it identifies, it does not sign.
        if hash(MessageDigest::sha1(), cert_der)? != first.cert_hash.as_bytes() {
            return Err(bad(
                "signing-certificate",
                "does not name the signer certificate",
            ));
        }
        return Ok(());
    }
    Err(bad(
        "signing-certificate",
        "neither signing-certificate nor signing-certificate-v2 is present",
    ))
}

fn check_eku(cert: &Certificate, subject: &str) -> Result<(), TimestampError> {
    let not = |reason: &str| TimestampError::NotTimestampingCertificate {
        subject: subject.to_owned(),
        reason: reason.to_owned(),
    };
    let mut ekus = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oids::EXTENDED_KEY_USAGE);
    let eku = ekus
        .next()
        .ok_or_else(|| not("no extendedKeyUsage extension"))?;
    if ekus.next().is_some() {
        return Err(not("extendedKeyUsage given twice"));
    }
    if !eku.critical {
        return Err(not("extendedKeyUsage is not critical (RFC 3161 §2.3)"));
    }
    let purposes = Vec::<ObjectIdentifier>::from_der(eku.extn_value.as_bytes())
        .map_err(|_| not("extendedKeyUsage is not a list of purposes"))?;
    if !purposes.contains(&oids::TIME_STAMPING) {
        return Err(not("extendedKeyUsage lacks timeStamping"));
    }
    Ok(())
}

fn check_signature(
    signer: &SignerInfo,
    attrs: &SetOfVec<x509_cert::attr::Attribute>,
    md: MessageDigest,
    cert: &X509,
    subject: &str,
) -> Result<(), TimestampError> {
    let bad = |source| TimestampError::BadSignature {
        subject: subject.to_owned(),
        source,
    };
    let alg = signer.signature_algorithm.oid;
    if alg == oids::RSASSA_PSS {
        return Err(TimestampError::UnsupportedAlgorithm {
            what: "the token's signature",
            oid: alg.to_string(),
        });
    }
    // The signature covers the DER SET OF the attributes, not their [0] IMPLICIT form
    // (RFC 5652 §5.4).
    let signed = attrs
        .to_der()
        .map_err(|_| TimestampError::BadSignedAttribute {
            attribute: "signedAttrs",
            reason: "cannot be written back as DER".to_owned(),
        })?;
    let key = cert.public_key().map_err(|e| bad(Some(e)))?;
    let mut v = openssl::sign::Verifier::new(md, &key).map_err(|e| bad(Some(e)))?;
    match v.verify_oneshot(signer.signature.as_bytes(), &signed) {
        Ok(true) => Ok(()),
        Ok(false) => Err(bad(None)),
        Err(e) => Err(bad(Some(e))),
    }
}

/// Checks the chain of `signer` to one of `authorities` at `at`; returns the one it chains to.
fn check_chain<'a>(
    signer: &X509,
    others: &[X509],
    at: i64,
    subject: &str,
    gen_time: &DateTime<Utc>,
    authorities: &'a [Authority],
) -> Result<&'a Authority, TimestampError> {
    let crypto = |what| move |source| TimestampError::Crypto { what, source };
    let mut untrusted = Stack::new().map_err(crypto("certificate stack"))?;
    for c in others {
        untrusted
            .push(c.clone())
            .map_err(crypto("certificate stack"))?;
    }
    let mut time_error = None;
    let mut last = "no time-stamping authority is listed in the trust space".to_owned();
    for authority in authorities {
        let mut b = X509StoreBuilder::new().map_err(crypto("certificate store"))?;
        for c in &authority.certificates {
            b.add_cert(c.clone()).map_err(crypto("certificate store"))?;
        }
        // Each listed certificate is an anchor, also an intermediate or the signer's own; the
        // chain is judged at genTime, not now.
        let mut param = X509VerifyParam::new().map_err(crypto("verification parameters"))?;
        param
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(crypto("verification parameters"))?;
        param.set_time(at as _);
        b.set_param(&param).map_err(crypto("certificate store"))?;
        let store = b.build();
        let mut ctx = X509StoreContext::new().map_err(crypto("certificate store"))?;
        let result = ctx
            .init(&store, signer, &untrusted, |c| {
                c.verify_cert().map(|ok| (ok, c.error()))
            })
            .map_err(crypto("chain verification"))?;
        match result {
            (true, _) => return Ok(authority),
            (false, e) => {
                let reason = format!("{} ({})", e.error_string(), authority.url);
                if is_time_error(e) {
                    time_error = Some(reason);
                } else {
                    last = reason;
                }
            }
        }
    }
    match time_error {
        Some(reason) => Err(TimestampError::NotValidAtGenTime {
            subject: subject.to_owned(),
            gen_time: gen_time.to_rfc3339(),
            reason,
        }),
        None => Err(TimestampError::UntrustedAuthority {
            subject: subject.to_owned(),
            reason: last,
        }),
    }
}

fn is_time_error(e: X509VerifyResult) -> bool {
    // X509_V_ERR_CERT_NOT_YET_VALID (9) and X509_V_ERR_CERT_HAS_EXPIRED (10), for the signer
    // or any certificate of its chain; no CRL is consulted here.
    matches!(e.as_raw(), 9 | 10)
}

/// Checks `token` (TimeStampToken ContentInfo DER) over `imprint` (a SHA-256 value) against
/// `authorities` (those the trust space lists), in the order of this module's header.
pub fn verify(
    token: &[u8],
    imprint: &[u8; 32],
    authorities: &[Authority],
) -> Result<Stamp, TimestampError> {
    // 1. Structure.
    let p = parse(token)?;
    let signer = match p.signed.signer_infos.0.as_slice() {
        [one] => one,
        _ => return Err(not_a_token("not exactly one signer", None)),
    };
    // 2. Imprint.
    let mi = &p.info.message_imprint;
    digest_of(&mi.hash_algorithm.oid, "the imprint")?;
    if mi.hashed_message.as_bytes() != imprint {
        return Err(TimestampError::OtherImprint);
    }
    // 3. Signed attributes.
    let md = digest_of(&signer.digest_alg.oid, "the signature's digest")?;
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or_else(|| TimestampError::BadSignedAttribute {
            attribute: "signedAttrs",
            reason: "absent (a token must sign its attributes)".to_owned(),
        })?;
    let bad = |attribute: &'static str, reason: &str| TimestampError::BadSignedAttribute {
        attribute,
        reason: reason.to_owned(),
    };
    let ct = attribute(attrs, oids::CONTENT_TYPE, "content-type")?
        .ok_or_else(|| bad("content-type", "absent"))?;
    if ct.decode_as::<ObjectIdentifier>().ok() != Some(oids::TST_INFO) {
        return Err(bad("content-type", "is not id-ct-TSTInfo"));
    }
    let digest = attribute(attrs, oids::MESSAGE_DIGEST, "message-digest")?
        .ok_or_else(|| bad("message-digest", "absent"))?
        .decode_as::<OctetString>()
        .map_err(|_| bad("message-digest", "not an OCTET STRING"))?;
    if digest.as_bytes() != hash(md, &p.content)? {
        return Err(bad(
            "message-digest",
            "is not the hash of the encapsulated TSTInfo",
        ));
    }
    let certs: Vec<Certificate> = p
        .signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    // A token asked for without certReq carries no certificate (`openssl ts -query` without
    // `-cert`): the signer's may then be among the authorities' listed certificates. It is
    // still checked like any other (ESS, EKU, signature, chain).
    let listed: Vec<Certificate> = authorities
        .iter()
        .flat_map(|a| a.certificates.iter())
        .filter_map(|c| c.to_der().ok())
        .filter_map(|d| Certificate::from_der(&d).ok())
        .collect();
    let signer_cert =
        signer_certificate(signer, &certs).or_else(|_| signer_certificate(signer, &listed))?;
    let subject = signer_cert.tbs_certificate.subject.to_string();
    let signer_der = signer_cert
        .to_der()
        .map_err(|e| not_a_token("signer certificate", Some(e)))?;
    check_ess(attrs, &signer_der)?;
    // 4. The certificate's purpose.
    check_eku(signer_cert, &subject)?;
    // 5. Signature.
    let signer_x509 = X509::from_der(&signer_der).map_err(|e| TimestampError::BadSignature {
        subject: subject.clone(),
        source: Some(e),
    })?;
    check_signature(signer, attrs, md, &signer_x509, &subject)?;
    // 6. Chain at genTime.
    let since_epoch = p.info.gen_time.to_unix_duration();
    let at = i64::try_from(since_epoch.as_secs())
        .map_err(|_| not_a_token("genTime out of range", None))?;
    let gen_time = DateTime::<Utc>::from_timestamp(at, since_epoch.subsec_nanos())
        .ok_or_else(|| not_a_token("genTime out of range", None))?;
    let others: Vec<X509> = certs
        .iter()
        .filter(|c| *c != signer_cert)
        .filter_map(|c| c.to_der().ok())
        .filter_map(|d| X509::from_der(&d).ok())
        .collect();
    let authority = check_chain(&signer_x509, &others, at, &subject, &gen_time, authorities)?;
    let accuracy = p.info.accuracy.as_ref().map(|a| {
        std::time::Duration::from_secs(a.seconds.unwrap_or(0))
            + std::time::Duration::from_millis(a.millis.unwrap_or(0).max(0) as u64)
            + std::time::Duration::from_micros(a.micros.unwrap_or(0).max(0) as u64)
    });
    Ok(Stamp {
        gen_time,
        serial: tereze_support::hex::hex(p.info.serial_number.as_bytes()),
        policy: p.info.policy.to_string(),
        authority: subject,
        authority_url: authority.url.clone(),
        authority_name: authority.name.clone(),
        accuracy,
    })
}
