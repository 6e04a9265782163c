//! The RFC 3161 request we send (§2.4.1) and the reading of the authority's answer (§2.4.2):
//! version 1, a SHA-256 imprint, a random 63-bit nonce, `certReq` true (so the token carries
//! the signer certificate a verifier needs); an answer counts only with status granted or
//! grantedWithMods, a token, our nonce and our imprint.

use cmpv2::status::PkiStatus;
use der::asn1::{Int, Null, OctetString};
use der::{Decode, Encode};
use x509_cert::spki::AlgorithmIdentifier;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion};

use crate::error::TimestampError;
use crate::oids;

/// A request's nonce (positive, below 2^63).
pub type Nonce = u64;

/// The DER TimeStampReq for `imprint` (a SHA-256 value) and its nonce.
pub fn request(imprint: &[u8; 32]) -> (Vec<u8>, Nonce) {
    let mut raw = [0u8; 8];
    // A failing RNG still gives a valid request; the nonce only binds answer to request.
    if openssl::rand::rand_bytes(&mut raw).is_err() {
        raw = fallback_nonce();
    }
    let nonce = (u64::from_be_bytes(raw) >> 1).max(1);
    (encode_request(imprint, nonce), nonce)
}

fn fallback_nonce() -> [u8; 8] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    t.to_be_bytes()
}

/// A positive integer's minimal two's-complement bytes.
pub(crate) fn int_bytes(v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let first = b.iter().position(|x| *x != 0).unwrap_or(7);
    let mut out = Vec::with_capacity(9);
    if b[first] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&b[first..]);
    out
}

fn encode_request(imprint: &[u8; 32], nonce: Nonce) -> Vec<u8> {
    // Every field is built here within its bounds, so neither step can fail.
    build(imprint, nonce)
        .and_then(|r| r.to_der().ok())
        .unwrap_or_default()
}

fn build(imprint: &[u8; 32], nonce: Nonce) -> Option<TimeStampReq> {
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifier {
                oid: oids::SHA256,
                parameters: Some(Null.into()),
            },
            hashed_message: OctetString::new(imprint.to_vec()).ok()?,
        },
        req_policy: None,
        nonce: Int::new(&int_bytes(nonce)).ok(),
        cert_req: true,
        extensions: None,
    };
    Some(req)
}

/// The token (TimeStampToken ContentInfo DER) in a TimeStampResp, after the status, nonce and
/// imprint checks.
pub fn read_response(
    url: &str,
    answer: &[u8],
    imprint: &[u8; 32],
    nonce: Nonce,
) -> Result<Vec<u8>, TimestampError> {
    let resp = TimeStampResp::from_der(answer).map_err(|source| TimestampError::BadResponse {
        url: url.to_owned(),
        source,
    })?;
    match resp.status.status {
        PkiStatus::Accepted | PkiStatus::GrantedWithMods => {}
        other => {
            return Err(TimestampError::Rejected {
                url: url.to_owned(),
                status: status_name(other).to_owned(),
                fail_info: resp
                    .status
                    .fail_info
                    .as_ref()
                    .map(fail_info_names)
                    .unwrap_or_else(|| "absent".to_owned()),
                text: resp.status.status_string.as_ref().map(|t| {
                    t.iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                }),
            })
        }
    }
    let token = resp
        .time_stamp_token
        .ok_or_else(|| TimestampError::NoToken {
            url: url.to_owned(),
        })?;
    let token = token
        .to_der()
        .map_err(|source| TimestampError::BadResponse {
            url: url.to_owned(),
            source,
        })?;
    let info = crate::verify::tst_info(&token)?;
    if info.nonce.as_ref().map(|n| n.as_bytes()) != Some(int_bytes(nonce).as_slice()) {
        return Err(TimestampError::NonceMismatch {
            url: url.to_owned(),
        });
    }
    if info.message_imprint.hash_algorithm.oid != oids::SHA256
        || info.message_imprint.hashed_message.as_bytes() != imprint
    {
        return Err(TimestampError::OtherImprint);
    }
    Ok(token)
}

fn status_name(s: PkiStatus) -> &'static str {
    match s {
        PkiStatus::Accepted => "granted",
        PkiStatus::GrantedWithMods => "grantedWithMods",
        PkiStatus::Rejection => "rejection",
        PkiStatus::Waiting => "waiting",
        PkiStatus::RevocationWarning => "revocationWarning",
        PkiStatus::RevocationNotification => "revocationNotification",
        PkiStatus::KeyUpdateWarning => "keyUpdateWarning",
    }
}

/// The PKIFailureInfo bits that are set, by name (e.g. `BadAlg, TimeNotAvailable`).
fn fail_info_names(bits: &cmpv2::status::PkiFailureInfo) -> String {
    let names: Vec<String> = bits.into_iter().map(|f| format!("{f:?}")).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_v1_sha256_with_its_nonce_and_cert_req() {
        let imprint = [7u8; 32];
        let (der, nonce) = request(&imprint);
        let req = TimeStampReq::from_der(&der).expect("our own request decodes");
        assert_eq!(req.version, TspVersion::V1);
        assert_eq!(req.message_imprint.hash_algorithm.oid, oids::SHA256);
        assert_eq!(req.message_imprint.hashed_message.as_bytes(), imprint);
        assert!(req.cert_req);
        assert_eq!(
            req.nonce.expect("nonce").as_bytes(),
            int_bytes(nonce).as_slice()
        );
        assert_ne!(request(&imprint).1, nonce, "a fresh nonce each time");
    }

    #[test]
    fn nonces_encode_as_minimal_positive_integers() {
        assert_eq!(int_bytes(1), [1]);
        assert_eq!(int_bytes(0x80), [0, 0x80]);
        assert_eq!(int_bytes(0x7fff_ffff_ffff_ffff).len(), 8);
    }
}
