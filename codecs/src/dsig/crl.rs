//! Certificate revocation lists: reading them (one or more PEM CRLs, or one DER CRL) and
//! finding when, and why, a CRL says a certificate was revoked. The one copy of both: the
//! node's trust space (`tereze_trust`) and [`TrustStore`](super::TrustStore)'s checks at a
//! verification time use it. Nothing here trusts a CRL: whoever holds one checks its
//! signature against its issuer first.

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;
use openssl::x509::{CrlReason, CrlStatus, ReasonCode, X509Crl, X509CrlRef, X509Ref};

/// Why bytes are not CRLs.
#[derive(Debug, thiserror::Error)]
pub enum CrlReadError {
    #[error("neither PEM nor DER CRL: {0}")]
    NotACrl(#[source] ErrorStack),
    #[error("a PEM CRL without its END line")]
    NoEndLine,
    /// The `index`th (from 1) PEM CRL of a file could not be read.
    #[error("CRL {index}: {source}")]
    BadPem {
        index: usize,
        #[source]
        source: ErrorStack,
    },
}

/// Reads one or more PEM CRLs, or one DER CRL. A PEM input without any CRL block is read as
/// DER (and refused as neither).
pub fn parse_crls(bytes: &[u8]) -> Result<Vec<X509Crl>, CrlReadError> {
    const BEGIN: &[u8] = b"-----BEGIN X509 CRL-----";
    const END: &[u8] = b"-----END X509 CRL-----";
    if !bytes.windows(BEGIN.len()).any(|w| w == BEGIN) {
        return X509Crl::from_der(bytes)
            .map(|c| vec![c])
            .map_err(CrlReadError::NotACrl);
    }
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(start) = rest.windows(BEGIN.len()).position(|w| w == BEGIN) {
        let after = &rest[start..];
        let end = after
            .windows(END.len())
            .position(|w| w == END)
            .ok_or(CrlReadError::NoEndLine)?
            + END.len();
        let crl = X509Crl::from_pem(&after[..end]).map_err(|source| CrlReadError::BadPem {
            index: out.len() + 1,
            source,
        })?;
        out.push(crl);
        rest = &after[end..];
    }
    Ok(out)
}

/// A CRL entry for a certificate: when it was revoked and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Unix seconds.
    pub at: i64,
    /// The RFC 5280 §5.3.1 name of the entry's reason code (`keyCompromise`), or
    /// `unspecified` when the entry gives none.
    pub reason: &'static str,
}

/// Whether `crl` names `cert`'s issuer and lists `cert` as revoked. Does not check the CRL's
/// signature.
pub fn revocation_in(crl: &X509CrlRef, cert: &X509Ref) -> Option<Revocation> {
    let same_issuer = crl
        .issuer_name()
        .try_cmp(cert.issuer_name())
        .is_ok_and(|o| o == std::cmp::Ordering::Equal);
    if !same_issuer {
        return None;
    }
    let CrlStatus::Revoked(entry) = crl.get_by_serial(cert.serial_number()) else {
        return None;
    };
    let reason = entry
        .extension::<ReasonCode>()
        .ok()
        .flatten()
        .and_then(|(_, code)| code.get_i64().ok())
        .map_or("unspecified", reason_name);
    Some(Revocation {
        at: unix_of(entry.revocation_date()).ok()?,
        reason,
    })
}

/// The first revocation of `cert` that one of `crls` lists (see [`revocation_in`]).
pub fn revoked_in<'a>(
    crls: impl IntoIterator<Item = &'a X509CrlRef>,
    cert: &X509Ref,
) -> Option<Revocation> {
    crls.into_iter().find_map(|crl| revocation_in(crl, cert))
}

/// RFC 5280 §5.3.1's name of a CRL reason code.
fn reason_name(code: i64) -> &'static str {
    let known = [
        (CrlReason::UNSPECIFIED, "unspecified"),
        (CrlReason::KEY_COMPROMISE, "keyCompromise"),
        (CrlReason::CA_COMPROMISE, "cACompromise"),
        (CrlReason::AFFILIATION_CHANGED, "affiliationChanged"),
        (CrlReason::SUPERSEDED, "superseded"),
        (CrlReason::CESSATION_OF_OPERATION, "cessationOfOperation"),
        (CrlReason::CERTIFICATE_HOLD, "certificateHold"),
        (CrlReason::REMOVE_FROM_CRL, "removeFromCRL"),
        (CrlReason::PRIVILEGE_WITHDRAWN, "privilegeWithdrawn"),
        (CrlReason::AA_COMPROMISE, "aACompromise"),
    ];
    known
        .iter()
        .find(|(r, _)| i64::from(r.as_raw()) == code)
        .map_or("unknown reason code", |(_, name)| name)
}

/// Unix seconds of an ASN.1 time.
pub(crate) fn unix_of(t: &Asn1TimeRef) -> Result<i64, ErrorStack> {
    let epoch = Asn1Time::from_unix(0)?;
    let d = epoch.diff(t)?;
    Ok(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

/// Unix seconds as RFC 3339 UTC (`2026-12-08T00:15:00Z`), for messages.
pub(crate) fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{unix} (Unix seconds)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_have_their_rfc_5280_names() {
        assert_eq!(reason_name(1), "keyCompromise");
        assert_eq!(reason_name(6), "certificateHold");
        assert_eq!(reason_name(0), "unspecified");
        assert_eq!(reason_name(42), "unknown reason code");
    }

    #[test]
    fn garbage_and_truncated_pem_are_refused_with_their_reason() {
        assert!(matches!(
            parse_crls(b"not a crl"),
            Err(CrlReadError::NotACrl(_))
        ));
        assert!(matches!(
            parse_crls(b"-----BEGIN X509 CRL-----\nAAAA\n"),
            Err(CrlReadError::NoEndLine)
        ));
        assert!(matches!(
            parse_crls(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"),
            Err(CrlReadError::BadPem { index: 1, .. })
        ));
    }
}
