//! The RFC 3161 request we send (§2.4.1) and the reading of the authority's answer (§2.4.2):
//! version 1, a SHA-256 imprint, a random 63-bit nonce, `certReq` true (so the token carries
//! the signer certificate a verifier needs); an answer counts only with status granted or
//! grantedWithMods, a token, our nonce and our imprint.

use der::asn1::{BitString, Int, Null, OctetString};
use der::{Any, Decode, Encode, Sequence};
use x509_cert::spki::AlgorithmIdentifier;
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion};

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

/// PKIStatusInfo (RFC 3161 §2.4.2), read here rather than with `cmpv2`: its 0.2 flags are
/// bit positions used as masks, so decoding drops every failInfo bit past 4
/// (timeNotAvailable, systemFailure), the ones an operator most needs to see.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct StatusInfo {
    status: u8,
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

/// TimeStampResp; the token is kept as the bytes received.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct Response {
    status: StatusInfo,
    #[asn1(optional = "true")]
    token: Option<Any>,
}

/// The token (TimeStampToken ContentInfo DER) in a TimeStampResp, after the status, nonce and
/// imprint checks.
pub fn read_response(
    url: &str,
    answer: &[u8],
    imprint: &[u8; 32],
    nonce: Nonce,
) -> Result<Vec<u8>, TimestampError> {
    let resp = Response::from_der(answer).map_err(|source| TimestampError::BadResponse {
        url: url.to_owned(),
        source,
    })?;
    // granted (0) and grantedWithMods (1) carry a token; everything else is a refusal.
    if resp.status.status > 1 {
        return Err(TimestampError::Rejected {
            url: url.to_owned(),
            status: status_name(resp.status.status),
            fail_info: resp
                .status
                .fail_info
                .as_ref()
                .map(fail_info_names)
                .unwrap_or_else(|| "absent".to_owned()),
            text: resp.status.status_string.map(|t| t.join("; ")),
        });
    }
    let token = resp.token.ok_or_else(|| TimestampError::NoToken {
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

/// PKIStatus by its RFC 3161 name.
fn status_name(s: u8) -> String {
    match s {
        0 => "granted".to_owned(),
        1 => "grantedWithMods".to_owned(),
        2 => "rejection".to_owned(),
        3 => "waiting".to_owned(),
        4 => "revocationWarning".to_owned(),
        5 => "revocationNotification".to_owned(),
        other => format!("unknown ({other})"),
    }
}

/// The PKIFailureInfo bits that are set, by their RFC 3161 §2.4.2 names.
fn fail_info_names(bits: &BitString) -> String {
    const NAMES: [(usize, &str); 8] = [
        (0, "badAlg"),
        (2, "badRequest"),
        (5, "badDataFormat"),
        (14, "timeNotAvailable"),
        (15, "unacceptedPolicy"),
        (16, "unacceptedExtension"),
        (17, "addInfoNotAvailable"),
        (25, "systemFailure"),
    ];
    let names: Vec<String> = bits
        .bits()
        .enumerate()
        .filter(|(_, on)| *on)
        .map(|(i, _)| {
            NAMES
                .iter()
                .find(|(n, _)| *n == i)
                .map_or_else(|| format!("bit {i}"), |(_, name)| (*name).to_owned())
        })
        .collect();
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

    #[test]
    fn a_refusal_names_its_status_and_fail_info() {
        // badAlg (bit 0) and timeNotAvailable (bit 14): bits 0..=14, MSB first, 1 unused.
        let mut bits = [0u8; 2];
        bits[0] |= 0x80;
        bits[1] |= 0x02;
        let resp = Response {
            status: StatusInfo {
                status: 2,
                status_string: Some(vec!["clock not synchronised".into()]),
                fail_info: Some(BitString::new(1, bits.to_vec()).expect("bits")),
            },
            token: None,
        };
        let der = resp.to_der().expect("encodes");
        let e = read_response("http://tsa.test/", &der, &[0; 32], 1).expect_err("refused");
        assert_eq!(e.code(), "rejected");
        assert_eq!(
            e.to_string(),
            "time-stamping authority http://tsa.test/ refused the request: status rejection, \
             failInfo badAlg, timeNotAvailable, \"clock not synchronised\""
        );
        let granted = Response {
            status: StatusInfo {
                status: 0,
                status_string: None,
                fail_info: None,
            },
            token: None,
        };
        let der = granted.to_der().expect("encodes");
        let e = read_response("http://tsa.test/", &der, &[0; 32], 1).expect_err("no token");
        assert_eq!(e.code(), "no-token");
        let e = read_response("http://tsa.test/", b"<html>", &[0; 32], 1).expect_err("junk");
        assert_eq!(e.code(), "bad-response");
    }
}
