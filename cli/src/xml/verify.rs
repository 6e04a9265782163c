//! `tereze xml verify`: checks a document's signatures by hand and reports, one line (or one
//! JSON object) per signature, where it is, who signed, with what, what it covers and the
//! verdict. The trust (anchors, untrusted intermediates, CRLs) and the time it is judged at
//! come from the command line; the checks are the library's (`dsig`), nothing is decided here.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde_json::{json, Value};
use tereze_codecs::dsig::{
    self, ElementPath, Expect, Outcome, Profile, Select, SignatureMethodName, SignatureReport,
    TrustStore, Verified, VerifyError, VerifyPolicy, DSIG_NAMESPACE,
};
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

/// `tereze xml verify`'s options (the file and parser limits are `xml`'s).
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    trust: TrustArgs,
    /// Where the signature must be and what it may sign: enveloped (the signature inside the
    /// element it signs), detached-by-id (SMEV 3: beside the element, by its Id; needs
    /// --element, or --all/--covering) or wss (WS-Security: in soap:Header/wsse:Security,
    /// signing the Body by wsu:Id). Example: --profile wss
    #[arg(long, value_name = "PROFILE", default_value = "enveloped", value_parser = parse_profile)]
    profile: Profile,
    /// The element that must be signed, as an absolute path of element steps:
    /// {namespace}Local (Clark notation), Local (no namespace) or prefix:Local with the prefix
    /// bound by --ns. The default: the document element (enveloped), the SOAP Body (wss).
    /// Example: --element /{urn:x}Request/{urn:x}Data
    #[arg(long, value_name = "PATH", conflicts_with_all = ["all", "covering"])]
    element: Option<String>,
    /// Check every signature (the default when the document has several): one invalid
    /// signature refuses the document. Example: --all --format json
    #[arg(long, conflicts_with = "covering")]
    all: bool,
    /// Check only the signatures that sign this element (a path as for --element), e.g. the
    /// authority's signature of a co-signed certificate; the others are reported as not
    /// checked. Example: --covering /c:Certificate/c:Authority --ns c=urn:example
    #[arg(long, visible_alias = "signature", value_name = "PATH")]
    covering: Option<String>,
    /// Binds a prefix for the paths of --element and --covering (the document's own prefixes
    /// are not used: the paths mean what you wrote). Repeat for several.
    /// Example: --ns soap=http://schemas.xmlsoap.org/soap/envelope/
    #[arg(long, value_name = "PREFIX=URI")]
    ns: Vec<String>,
    /// The report's form: text (one line per signature) or json (one object; its fields in
    /// docs/xml-security.md). Example: --format json
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Accept SHA-1 digests and signatures (old documents only).
    #[arg(long)]
    allow_sha1: bool,
    /// Also write the signed element (the exact canonical bytes the signature covers) to
    /// this file: read that, not the original document. With several signatures, name the
    /// element with --covering. Example: --signed-out body.xml
    #[arg(long, value_name = "FILE")]
    signed_out: Option<PathBuf>,
}

fn parse_profile(text: &str) -> Result<Profile, String> {
    text.parse::<Profile>().map_err(|e| e.to_string())
}

/// The trust and time a verification is judged with.
#[derive(Debug, clap::Args)]
pub(crate) struct TrustArgs {
    /// A trusted certificate (the signer's or an issuing CA's) or public key, PEM. Repeat
    /// for several.
    #[arg(long, value_name = "PEM", required = true)]
    trusted: Vec<PathBuf>,
    /// Certificates (PEM, one or more per file) that may complete a signer's chain, such as
    /// an intermediate CA the document does not carry; never trusted on their own. Repeat for
    /// several. Example: --trusted root.pem --untrusted issuing-ca.pem
    #[arg(long, value_name = "PEM")]
    untrusted: Vec<PathBuf>,
    /// A CRL (PEM, one or more per file, or DER) from a CA of the signer's chain: a
    /// certificate it lists as revoked at or before the verification time is refused. CRLs of
    /// CAs outside the chain are ignored; a CRL that its issuer did not sign, or that expired
    /// before the verification time, is refused. Repeat for several.
    /// Example: --crl issuing-ca.crl --at 2026-03-01
    #[arg(long, value_name = "FILE")]
    crl: Vec<PathBuf>,
    /// Judge certificates and revocation at TIME instead of now: RFC 3339
    /// (2026-03-01T12:00:00Z, 2026-03-01T15:00:00+03:00) or a date (2026-03-01, meaning
    /// 00:00:00 UTC that day). For an archived document, its signing time.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

impl TrustArgs {
    /// The trust store of the files given.
    fn store(&self) -> Result<TrustStore, Failure> {
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
    fn time(&self) -> Result<Option<i64>, Failure> {
        self.at.as_deref().map(parse_time).transpose()
    }
}

/// RFC 3339, or a date meaning its first second in UTC.
fn parse_time(text: &str) -> Result<i64, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = tereze_reference_data::date::parse(text) {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp());
        }
    }
    Err(Failure::Input(format!(
        "--at {text}: not a time; write RFC 3339 (2026-03-01T12:00:00Z) or a date (2026-03-01)"
    )))
}

/// Verifies `doc` as `args` say, writes the report to stdout and the signed element to
/// `--signed-out`; a refused document is a [`Failure::Verdict`] naming `file` and the reason.
pub(crate) fn run(args: &VerifyArgs, file: &Path, doc: &Document) -> Result<(), Failure> {
    let trust = args.trust.store()?;
    let at = args.trust.time()?;
    let bindings = bindings(&args.ns)?;
    let bound: Vec<(&str, &str)> = bindings
        .iter()
        .map(|(p, u)| (p.as_str(), u.as_str()))
        .collect();
    let path = |flag: &str, text: &str| {
        ElementPath::parse_with(text, &bound).map_err(|e| Failure::Input(format!("--{flag}: {e}")))
    };
    let element = args
        .element
        .as_deref()
        .map(|t| path("element", t))
        .transpose()?;
    let covering = args
        .covering
        .as_deref()
        .map(|t| path("covering", t))
        .transpose()?;
    let policy = VerifyPolicy {
        allow_sha1: args.allow_sha1,
        at,
        ..VerifyPolicy::default()
    };
    let found = dsig::signatures_of(doc);
    let several = args.all || covering.is_some() || (element.is_none() && found.len() > 1);
    let verdict = if several {
        if args.signed_out.is_some() && covering.is_none() {
            return Err(Failure::Input(
                "--signed-out writes one signed element: with several signatures, name it with --covering PATH".into(),
            ));
        }
        several_signatures(doc, &trust, &policy, args.profile, covering)
    } else if element.is_some() || args.profile != Profile::Enveloped {
        if args.profile == Profile::DetachedById && element.is_none() {
            return Err(Failure::Input(
                "--profile detached-by-id needs --element PATH (the element that must be signed)"
                    .into(),
            ));
        }
        let mut expect = Expect::new(args.profile);
        if let Some(e) = element {
            expect = expect.element(e);
        }
        match dsig::verify_profile(doc, &trust, &policy, &expect) {
            Ok(signed) => Verdict {
                entries: vec![Entry::valid(signed.location.clone(), &signed.verified)],
                refused: None,
                signed: Some(signed.canonical),
            },
            Err(e) => one_refused(doc, &found, e),
        }
    } else {
        // One signature, no element named: today's enveloped check, whatever element the
        // signature envelops (the document element or one by Id).
        match dsig::verify(doc, &trust, &policy) {
            Ok(v) => {
                let location = found.first().map(|s| doc.describe(*s)).unwrap_or_default();
                let signed = v
                    .references
                    .iter()
                    .flat_map(|r| r.canonical.iter().copied())
                    .collect();
                Verdict {
                    entries: vec![Entry::valid(location, &v)],
                    refused: None,
                    signed: Some(signed),
                }
            }
            Err(e) => one_refused(doc, &found, e),
        }
    };
    let name = file.display().to_string();
    let text = report(&name, at, args.profile, &verdict, args.format);
    crate::common::write_stdout(text.as_bytes())?;
    if let Some(reason) = verdict.refused {
        return Err(Failure::Verdict(format!(
            "{name}: invalid signature: {reason}"
        )));
    }
    if let (Some(out), Some(bytes)) = (&args.signed_out, verdict.signed) {
        std::fs::write(out, bytes)
            .map_err(|e| Failure::Input(format!("{}: cannot write: {e}", out.display())))?;
    }
    Ok(())
}

/// `--ns PREFIX=URI` values.
fn bindings(ns: &[String]) -> Result<Vec<(String, String)>, Failure> {
    ns.iter()
        .map(|b| match b.split_once('=') {
            Some((p, u)) if !p.is_empty() && !u.is_empty() => Ok((p.to_owned(), u.to_owned())),
            _ => Err(Failure::Input(format!(
                "--ns {b}: write PREFIX=URI, e.g. soap=http://schemas.xmlsoap.org/soap/envelope/"
            ))),
        })
        .collect()
}

/// What a run found: each signature's entry, the document's refusal (if any) and the signed
/// element's canonical bytes (when one was returned).
struct Verdict {
    entries: Vec<Entry>,
    refused: Option<String>,
    signed: Option<Vec<u8>>,
}

/// Every signature checked (or, with `covering`, those signing it), each reported.
fn several_signatures(
    doc: &Document,
    trust: &TrustStore,
    policy: &VerifyPolicy,
    profile: Profile,
    covering: Option<ElementPath>,
) -> Verdict {
    let target = covering.as_ref().and_then(|p| p.resolve(doc).ok());
    let select = covering.map_or(Select::All, Select::Covering);
    match dsig::verify_signatures(doc, trust, policy, profile, &select) {
        Ok(reports) => {
            // The covered element as its first valid signature digested it.
            let signed = target.and_then(|t| {
                let path = doc.path(t);
                reports.iter().find_map(|r| match &r.outcome {
                    Outcome::Valid(v) => v
                        .references
                        .iter()
                        .find(|reference| reference.path == path)
                        .map(|reference| reference.canonical.clone()),
                    _ => None,
                })
            });
            Verdict {
                entries: reports.iter().map(Entry::of_report).collect(),
                refused: None,
                signed,
            }
        }
        Err(e) => {
            let entries = match &e {
                VerifyError::InvalidAmong { reports, .. } => {
                    reports.iter().map(Entry::of_report).collect()
                }
                _ => Vec::new(),
            };
            Verdict {
                entries,
                refused: Some(e.to_string()),
                signed: None,
            }
        }
    }
}

/// A refusal of the one signature checked: its entry when the document has exactly one.
fn one_refused(doc: &Document, found: &[NodeId], e: VerifyError) -> Verdict {
    let entries = match found {
        [one] => vec![Entry {
            location: doc.describe(*one),
            status: Status::Invalid(e.to_string()),
            claimed: dsig::claimed_signer(doc).map(|c| SignerInfo::of_certificate(None, &c)),
            algorithm: doc
                .child(*one, DSIG_NAMESPACE, "SignedInfo")
                .and_then(|si| doc.child(si, DSIG_NAMESPACE, "SignatureMethod"))
                .and_then(|m| doc.element(m)?.attribute("Algorithm").map(str::to_owned)),
            ..Entry::default()
        }],
        _ => Vec::new(),
    };
    Verdict {
        entries,
        refused: Some(e.to_string()),
        signed: None,
    }
}

/// One signature's verdict.
#[derive(Debug, Default)]
enum Status {
    Valid,
    Invalid(String),
    #[default]
    NotChecked,
}

/// One signature as reported.
#[derive(Debug, Default)]
struct Entry {
    /// Where the `ds:Signature` element is (path, and line when known).
    location: String,
    status: Status,
    /// The verified signer (valid signatures only).
    signer: Option<SignerInfo>,
    /// Who an invalid or unchecked signature says signed it: unverified.
    claimed: Option<SignerInfo>,
    /// `SignatureMethod/@Algorithm`.
    algorithm: Option<String>,
    /// What its references sign: the element's path, and the reference's URI when verified.
    covers: Vec<(String, Option<String>)>,
}

/// A signer as its certificate says (only the subject for a bare trusted key).
#[derive(Debug)]
struct SignerInfo {
    subject: String,
    /// Hex, upper case, as OpenSSL prints it.
    serial: Option<String>,
    issuer: Option<String>,
}

impl SignerInfo {
    fn of(signer: &dsig::Signer) -> Self {
        match &signer.certificate {
            Some(c) => Self::of_certificate(Some(&signer.subject), c),
            None => Self {
                subject: signer.subject.clone(),
                serial: None,
                issuer: None,
            },
        }
    }

    /// `subject` as the verifier named the signer, else the certificate's.
    fn of_certificate(subject: Option<&str>, c: &openssl::x509::X509Ref) -> Self {
        Self {
            subject: subject
                .map(str::to_owned)
                .unwrap_or_else(|| dsig::subject_of(c)),
            serial: c
                .serial_number()
                .to_bn()
                .ok()
                .and_then(|b| b.to_hex_str().ok())
                .map(|h| h.to_string()),
            issuer: Some(dsig::format_name(c.issuer_name())),
        }
    }

    fn text(&self) -> String {
        match (&self.serial, &self.issuer) {
            (Some(serial), Some(issuer)) => {
                format!("{} (serial {serial}, issuer {issuer})", self.subject)
            }
            _ => format!("{} (a trusted key, no certificate)", self.subject),
        }
    }

    fn json(&self) -> Value {
        json!({ "subject": self.subject, "serial": self.serial, "issuer": self.issuer })
    }
}

impl Entry {
    fn valid(location: String, v: &Verified) -> Self {
        Self {
            location,
            status: Status::Valid,
            signer: Some(SignerInfo::of(&v.signer)),
            claimed: None,
            algorithm: Some(v.signature_method.clone()),
            covers: v
                .references
                .iter()
                .map(|r| (r.path.clone(), Some(r.uri.clone())))
                .collect(),
        }
    }

    fn of_report(r: &SignatureReport) -> Self {
        if let Outcome::Valid(v) = &r.outcome {
            return Self::valid(r.location.clone(), v);
        }
        Self {
            location: r.location.clone(),
            status: match &r.outcome {
                Outcome::Invalid(e) => Status::Invalid(e.to_string()),
                _ => Status::NotChecked,
            },
            signer: None,
            claimed: r
                .claimed_certificate
                .as_ref()
                .map(|c| SignerInfo::of_certificate(None, c)),
            algorithm: Some(r.signature_method.clone()).filter(|m| !m.is_empty()),
            covers: r.covers.iter().map(|p| (p.clone(), None)).collect(),
        }
    }

    fn algorithm_name(&self) -> Option<String> {
        self.algorithm.as_deref().map(|uri| {
            SignatureMethodName::from_uri(uri)
                .map(|m| m.name.to_owned())
                .unwrap_or_else(|| uri.to_owned())
        })
    }

    /// `LOCATION: valid; signer S (serial N, issuer I); ALG; covers P (URI "U")`, or
    /// `LOCATION: invalid: REASON; claims signer …`, or `LOCATION: not checked; …`.
    fn line(&self) -> String {
        let mut out = format!("{}: ", self.location);
        match &self.status {
            Status::Valid => out.push_str("valid"),
            Status::Invalid(why) => {
                out.push_str("invalid: ");
                out.push_str(why);
            }
            Status::NotChecked => out.push_str("not checked"),
        }
        if let Some(s) = &self.signer {
            out.push_str(&format!("; signer {}", s.text()));
        }
        if let Some(s) = &self.claimed {
            out.push_str(&format!("; claims signer {}", s.text()));
        }
        if let Some(alg) = self.algorithm_name() {
            out.push_str(&format!("; {alg}"));
        }
        if !self.covers.is_empty() {
            let covers: Vec<String> = self
                .covers
                .iter()
                .map(|(path, uri)| match uri {
                    Some(uri) => format!("{path} (URI \"{uri}\")"),
                    None => path.clone(),
                })
                .collect();
            out.push_str(&format!("; covers {}", covers.join(", ")));
        }
        out
    }

    fn json(&self) -> Value {
        let (status, reason) = match &self.status {
            Status::Valid => ("valid", None),
            Status::Invalid(why) => ("invalid", Some(why.as_str())),
            Status::NotChecked => ("not-checked", None),
        };
        json!({
            "location": self.location,
            "status": status,
            "valid": matches!(self.status, Status::Valid),
            "reason": reason,
            "signer": self.signer.as_ref().map(SignerInfo::json),
            "claimed_signer": self.claimed.as_ref().map(SignerInfo::json),
            "algorithm": self.algorithm_name(),
            "algorithm_uri": self.algorithm,
            "covers": self
                .covers
                .iter()
                .map(|(path, uri)| json!({ "path": path, "uri": uri }))
                .collect::<Vec<_>>(),
        })
    }
}

/// The report of a run: every signature's entry, in document order (the field names of the
/// JSON form are documented in docs/xml-security.md and kept stable).
fn report(
    file: &str,
    at: Option<i64>,
    profile: Profile,
    verdict: &Verdict,
    format: Format,
) -> String {
    match format {
        Format::Text => verdict
            .entries
            .iter()
            .map(|e| format!("{}\n", e.line()))
            .collect(),
        Format::Json => {
            let at = at.and_then(|t| {
                chrono::DateTime::from_timestamp(t, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            });
            let v = json!({
                "file": file,
                "profile": profile.name(),
                "at": at,
                "valid": verdict.refused.is_none(),
                "reason": verdict.refused,
                "signatures": verdict.entries.iter().map(Entry::json).collect::<Vec<_>>(),
            });
            format!("{v:#}\n")
        }
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
