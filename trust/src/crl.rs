//! CRLs by location (DESIGN §5), the checks: a CRL fetched from a state's `crl_urls` is put in
//! force only when one of that state's anchors signed it (the transport needs no trust, as for
//! CRL distribution points in RFC 5280 §4.2.1.13), it is not from the future, and it is not
//! older than the one held (no rollback to a CRL from before a revocation). Fetching, storing
//! and the refresh schedule are the node's; this module sees only bytes and the trust space.

use std::collections::BTreeMap;
use std::sync::Arc;

use openssl::asn1::Asn1Time;
use openssl::error::ErrorStack;
use openssl::x509::X509Crl;
use tereze_codecs::dsig::crl::CrlReadError as ReadError;

use crate::{StateEntry, TrustSpace};

/// Largest CRL document a node fetches.
pub const MAX_CRL_BYTES: usize = 16 << 20;

/// Why bytes are not a CRL set a node may put in force.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    /// The bytes are not CRLs (the reader is `tereze_codecs::dsig::crl`'s, shared with
    /// document verification).
    #[error(transparent)]
    Unreadable(#[from] ReadError),
    #[error("no CRL in it")]
    Empty,
    /// The `index`th (from 1) CRL of a set was refused.
    #[error("CRL {index}: {source}")]
    Refused {
        index: usize,
        #[source]
        source: Box<CrlError>,
    },
    #[error("its issuer is not an anchor of {state} in the trust space")]
    UnknownIssuer { state: String },
    #[error("its signature does not verify with {state}'s anchor")]
    BadSignature { state: String },
    #[error("it was issued in the future ({issued})")]
    FromTheFuture { issued: String },
    /// Accepting it would roll back a revocation.
    #[error("it was issued at {issued}, before the CRL held ({held})")]
    OlderThanHeld { issued: String, held: String },
    /// OpenSSL could not read an anchor's key or the time.
    #[error("{0}")]
    OpenSsl(#[from] ErrorStack),
}

/// Reads one or more PEM CRLs, or one DER CRL.
pub fn parse_crls(bytes: &[u8]) -> Result<Vec<X509Crl>, CrlError> {
    Ok(tereze_codecs::dsig::crl::parse_crls(bytes)?)
}

/// Checks that one of `state`'s anchors issued and signed `crl`, and that it is not from the
/// future (beyond `skew`).
pub fn accept(crl: &X509Crl, state: &StateEntry, skew: i64) -> Result<(), CrlError> {
    let issuer = state.anchors.iter().find(|a| {
        a.subject_name()
            .try_cmp(crl.issuer_name())
            .is_ok_and(|o| o == std::cmp::Ordering::Equal)
    });
    let Some(issuer) = issuer else {
        return Err(CrlError::UnknownIssuer {
            state: state.code.clone(),
        });
    };
    let key = issuer.public_key()?;
    if !crl.verify(&key).unwrap_or(false) {
        return Err(CrlError::BadSignature {
            state: state.code.clone(),
        });
    }
    let latest = Asn1Time::from_unix(chrono::Utc::now().timestamp() + skew)?;
    if crl.last_update() > latest.as_ref() {
        return Err(CrlError::FromTheFuture {
            issued: crl.last_update().to_string(),
        });
    }
    Ok(())
}

/// The CRLs a node holds from CRL locations, by URL: the state that lists the URL, and what
/// was accepted from it (PEM, as stored).
#[derive(Clone, Default)]
pub struct Fetched {
    pub by_url: BTreeMap<String, Vec<Arc<X509Crl>>>,
}

impl Fetched {
    /// The CRLs to put in force for each state, for URLs the trust space still lists.
    pub fn by_state(&self, trust: &TrustSpace) -> BTreeMap<String, Vec<Arc<X509Crl>>> {
        let mut out: BTreeMap<String, Vec<Arc<X509Crl>>> = BTreeMap::new();
        for (code, s) in &trust.states {
            for url in &s.crl_urls {
                if let Some(crls) = self.by_url.get(url) {
                    out.entry(code.clone())
                        .or_default()
                        .extend(crls.iter().cloned());
                }
            }
        }
        out
    }
}

/// Reads a stored or fetched CRL set for `state` and checks every CRL in it.
pub fn verify_set(bytes: &[u8], state: &StateEntry, skew: i64) -> Result<Vec<X509Crl>, CrlError> {
    let crls = parse_crls(bytes)?;
    if crls.is_empty() {
        return Err(CrlError::Empty);
    }
    for (i, c) in crls.iter().enumerate() {
        accept(c, state, skew).map_err(|e| CrlError::Refused {
            index: i + 1,
            source: Box::new(e),
        })?;
    }
    Ok(crls)
}

/// Whether `new` would roll back a revocation: a CRL from an issuer older than the held one.
fn older_than_held(new: &[X509Crl], held: &[Arc<X509Crl>]) -> Option<CrlError> {
    for n in new {
        for h in held {
            let same = n
                .issuer_name()
                .try_cmp(h.issuer_name())
                .is_ok_and(|o| o == std::cmp::Ordering::Equal);
            if same && n.last_update() < h.last_update() {
                return Some(CrlError::OlderThanHeld {
                    issued: n.last_update().to_string(),
                    held: h.last_update().to_string(),
                });
            }
        }
    }
    None
}

/// The decision `install_crls` makes on a verified set.
pub fn compare(new: &[X509Crl], held: Option<&Vec<Arc<X509Crl>>>) -> Result<bool, CrlError> {
    let Some(held) = held else {
        return Ok(true);
    };
    if let Some(why) = older_than_held(new, held) {
        return Err(why);
    }
    let der = |c: &X509Crl| c.to_der().unwrap_or_default();
    let same = new.len() == held.len() && new.iter().zip(held).all(|(a, b)| der(a) == der(b));
    Ok(!same)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_crl() {
        assert!(parse_crls(b"not a crl").is_err());
        assert!(parse_crls(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n").is_err());
        assert!(parse_crls(b"-----BEGIN X509 CRL-----\nAAAA\n").is_err());
    }

    fn refusal(bytes: &[u8]) -> CrlError {
        match parse_crls(bytes) {
            Ok(_) => panic!("read as a CRL"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_errors_say_what_they_said_as_strings() {
        let not = refusal(b"not a crl");
        assert!(
            not.to_string().starts_with("neither PEM nor DER CRL: "),
            "{not}"
        );
        assert!(
            std::error::Error::source(&not).is_some(),
            "keeps OpenSSL's error"
        );
        let open = refusal(b"-----BEGIN X509 CRL-----\nAAAA\n");
        assert_eq!(open.to_string(), "a PEM CRL without its END line");
        let bad = refusal(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
        assert!(bad.to_string().starts_with("CRL 1: "), "{bad}");
    }
}
