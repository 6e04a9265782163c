//! `tereze xml verify`: checks a document's signatures by hand and reports, one line (or one
//! JSON object) per signature, where it is, who signed, with what, what it covers and the
//! verdict. The trust (anchors, untrusted intermediates, CRLs) and the time it is judged at
//! come from the command line; the checks are the library's (`dsig`), nothing is decided here.

use std::path::PathBuf;

use clap::ValueEnum;
use serde_json::{json, Value};
use tereze_codecs::dsig::DSIG_NAMESPACE;
use tereze_codecs::dsig::{self, SignatureMethodName, TrustStore, Verified, VerifyPolicy};
use tereze_codecs::xml::{Document, NodeId};

use crate::common::Failure;

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One line per signature.
    Text,
    /// One JSON object (field names in docs/xml-security.md).
    Json,
}

/// The trust and time a verification is judged with.
#[derive(Debug, clap::Args)]
pub(crate) struct TrustArgs {
    /// A trusted certificate (the signer's or an issuing CA's) or public key, PEM. Repeat
    /// for several.
    #[arg(long, value_name = "PEM", required = true)]
    pub(crate) trusted: Vec<PathBuf>,
    /// Certificates (PEM, one or more per file) that may complete a signer's chain, such as
    /// an intermediate CA the document does not carry; never trusted on their own. Repeat for
    /// several. Example: --trusted root.pem --untrusted issuing-ca.pem
    #[arg(long, value_name = "PEM")]
    pub(crate) untrusted: Vec<PathBuf>,
    /// A CRL (PEM, one or more per file, or DER) from a CA of the signer's chain: a
    /// certificate it lists as revoked at or before the verification time is refused. CRLs of
    /// CAs outside the chain are ignored; a CRL that its issuer did not sign, or that expired
    /// before the verification time, is refused. Repeat for several.
    /// Example: --crl issuing-ca.crl --at 2026-03-01
    #[arg(long, value_name = "FILE")]
    pub(crate) crl: Vec<PathBuf>,
    /// Judge certificates and revocation at TIME instead of now: RFC 3339
    /// (2026-03-01T12:00:00Z, 2026-03-01T15:00:00+03:00) or a date (2026-03-01, meaning
    /// 00:00:00 UTC that day). For an archived document, its signing time.
    #[arg(long, value_name = "TIME")]
    pub(crate) at: Option<String>,
}

impl TrustArgs {
    /// The trust store of the files given.
    pub(crate) fn store(&self) -> Result<TrustStore, Failure> {
        let mut trust = TrustStore::new();
        for t in &self.trusted {
            trust
                .add_pem(&crate::common::read_input(t)?)
                .map_err(|e| Failure::Input(format!("{}: {e}", t.display())))?;
        }
        for u in &self.untrusted {
            trust
                .add_untrusted_pem(&crate::common::read_input(u)?)
                .map_err(|e| Failure::Input(format!("--untrusted {}: {e}", u.display())))?;
        }
        for c in &self.crl {
            trust
                .add_crls(&crate::common::read_input(c)?)
                .map_err(|e| Failure::Input(format!("--crl {}: {e}", c.display())))?;
        }
        Ok(trust)
    }

    /// `--at` as Unix seconds; `None` for now.
    pub(crate) fn time(&self) -> Result<Option<i64>, Failure> {
        self.at.as_deref().map(parse_time).transpose()
    }
}

/// RFC 3339, or a date meaning its first second in UTC.
fn parse_time(text: &str) -> Result<i64, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp());
        }
    }
    Err(Failure::Input(format!(
        "--at {text}: not a time; write RFC 3339 (2026-03-01T12:00:00Z) or a date (2026-03-01)"
    )))
}

/// One signature's outcome, as reported.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Where the `ds:Signature` element is (path, and line when known).
    pub(crate) location: String,
    /// `None` when valid; the reason it was refused otherwise.
    pub(crate) refused: Option<String>,
    pub(crate) signer: Option<SignerInfo>,
    /// `SignatureMethod/@Algorithm`.
    pub(crate) algorithm: Option<String>,
    /// What the references sign: (URI, path of the element).
    pub(crate) covers: Vec<(String, String)>,
}

/// Who signed, as the certificate says (only the subject for a bare trusted key).
#[derive(Debug)]
pub(crate) struct SignerInfo {
    pub(crate) subject: String,
    /// Hex, upper case, as OpenSSL prints it.
    pub(crate) serial: Option<String>,
    pub(crate) issuer: Option<String>,
}

impl SignerInfo {
    fn of(signer: &dsig::Signer) -> Self {
        let cert = signer.certificate.as_ref();
        Self {
            subject: signer.subject.clone(),
            serial: cert.and_then(|c| {
                c.serial_number()
                    .to_bn()
                    .ok()
                    .and_then(|b| b.to_hex_str().ok())
                    .map(|h| h.to_string())
            }),
            issuer: cert.map(|c| dsig::format_name(c.issuer_name())),
        }
    }
}

impl Outcome {
    /// A valid signature's outcome.
    pub(crate) fn valid(location: String, v: &Verified) -> Self {
        Self {
            location,
            refused: None,
            signer: Some(SignerInfo::of(&v.signer)),
            algorithm: Some(v.signature_method.clone()),
            covers: v
                .references
                .iter()
                .map(|r| (r.uri.clone(), r.path.clone()))
                .collect(),
        }
    }

    /// A refused signature's outcome: where it is and why (no signer: nothing vouched for the
    /// one it names).
    pub(crate) fn refused(location: String, reason: String) -> Self {
        Self {
            location,
            refused: Some(reason),
            ..Self::default()
        }
    }

    fn algorithm_name(&self) -> Option<String> {
        self.algorithm.as_deref().map(|uri| {
            SignatureMethodName::from_uri(uri)
                .map(|m| m.name.to_owned())
                .unwrap_or_else(|| uri.to_owned())
        })
    }

    /// `LOCATION: valid: signer SUBJECT (serial S, issuer I); ALG; covers P (URI "U")`, or
    /// `LOCATION: invalid: REASON`.
    fn line(&self) -> String {
        let mut out = format!("{}: ", self.location);
        match &self.refused {
            None => out.push_str("valid"),
            Some(why) => {
                out.push_str("invalid: ");
                out.push_str(why);
            }
        }
        if let Some(s) = &self.signer {
            out.push_str(&format!("; signer {}", s.subject));
            match (&s.serial, &s.issuer) {
                (Some(serial), Some(issuer)) => {
                    out.push_str(&format!(" (serial {serial}, issuer {issuer})"))
                }
                _ => out.push_str(" (a trusted key, no certificate)"),
            }
        }
        if let Some(alg) = self.algorithm_name() {
            out.push_str(&format!("; {alg}"));
        }
        if !self.covers.is_empty() {
            let covers: Vec<String> = self
                .covers
                .iter()
                .map(|(uri, path)| format!("{path} (URI \"{uri}\")"))
                .collect();
            out.push_str(&format!("; covers {}", covers.join(", ")));
        }
        out
    }

    fn json(&self) -> Value {
        json!({
            "location": self.location,
            "valid": self.refused.is_none(),
            "reason": self.refused,
            "signer": self.signer.as_ref().map(|s| json!({
                "subject": s.subject,
                "serial": s.serial,
                "issuer": s.issuer,
            })),
            "algorithm": self.algorithm_name(),
            "algorithm_uri": self.algorithm,
            "covers": self.covers.iter().map(|(uri, path)| json!({"uri": uri, "path": path})).collect::<Vec<_>>(),
        })
    }
}

/// The report of a run: every checked signature's outcome, in document order.
pub(crate) fn report(file: &str, at: Option<i64>, outcomes: &[Outcome], format: Format) -> String {
    match format {
        Format::Text => outcomes.iter().map(|o| format!("{}\n", o.line())).collect(),
        Format::Json => {
            let at = at.map(|t| {
                chrono::DateTime::from_timestamp(t, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default()
            });
            let v = json!({
                "file": file,
                "at": at,
                "valid": outcomes.iter().all(|o| o.refused.is_none()),
                "signatures": outcomes.iter().map(Outcome::json).collect::<Vec<_>>(),
            });
            format!("{v:#}\n")
        }
    }
}

/// Every `ds:Signature` element of `doc`, in document order.
pub(crate) fn signatures(doc: &Document) -> Vec<NodeId> {
    doc.descendants_or_self(doc.root())
        .into_iter()
        .filter(|n| {
            doc.element(*n)
                .is_some_and(|e| e.is(DSIG_NAMESPACE, "Signature"))
        })
        .collect()
}

/// Verifies the one signature of `doc` (today's `dsig::verify`).
pub(crate) fn verify_one(
    doc: &Document,
    trust: &TrustStore,
    policy: &VerifyPolicy,
) -> (Outcome, Option<Verified>) {
    let location = signatures(doc)
        .first()
        .map(|s| doc.describe(*s))
        .unwrap_or_else(|| "(no signature)".into());
    match dsig::verify(doc, trust, policy) {
        Ok(v) => (Outcome::valid(location, &v), Some(v)),
        Err(e) => (Outcome::refused(location, e.to_string()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_or_a_date_at_midnight_utc() {
        assert_eq!(parse_time("1970-01-02").ok(), Some(86_400));
        assert_eq!(parse_time("1970-01-01T03:00:00+03:00").ok(), Some(0));
        assert_eq!(parse_time("2026-03-01T12:00:00Z").ok(), Some(1_772_366_400));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-02-30").is_err());
    }
}
