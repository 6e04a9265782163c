//! The issuing authority's signature on a national document, judged at intake (issue 27):
//! which trust store and settings apply to a submission, the one call to the verifier, and
//! the records the signed envelope carries (`env:NationalSignatures`).
//!
//! Guarantees: a document whose signature verified is translated from the signed element the
//! verifier returned, re-parsed from the bytes that were digested, never from the original
//! (the signature-wrapping defence); under `require` nothing that is not validly signed is
//! taken in; under `off` nothing is looked at or recorded; the original bytes of a signed
//! document are kept (as the attachment [`ORIGINAL_ID`]) so the receiver can check them again.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use tereze_codecs::dsig::{self, TrustStore, Verified, VerifyError, VerifyPolicy, DSIG_NAMESPACE};
use tereze_codecs::envelope::{NationalSignature, NationalVerdict, SigningTimeSource};
use tereze_codecs::xml::{self, Document, NodeId, ParseError};
use tereze_doors::config::{National, SignaturePolicy, SignatureSettings};

/// The attachment id under which the original signed national document travels.
pub(crate) const ORIGINAL_ID: &str = "national-original";
/// Its media type.
pub(crate) const ORIGINAL_MEDIA_TYPE: &str = "application/xml";
/// XAdES 1.3.2: a `SigningTime` among the signed properties is the signature's own claim.
const XADES_NAMESPACE: &str = "http://uri.etsi.org/01903/v1.3.2#";

/// The node's national trust store and each partner state's, loaded at start.
#[derive(Debug, Default)]
pub(crate) struct NationalTrust {
    national: Option<TrustStore>,
    partners: BTreeMap<String, (usize, TrustStore)>,
}

/// A file of `[national.signatures]` that could not be read (the field and the file named).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {path}: {reason}")]
pub struct TrustStoreError {
    field: String,
    path: String,
    reason: String,
}

/// Reads the PEM (or, for a CRL, DER) files of one list into `store`.
fn add_files(
    store: &mut TrustStore,
    field: &str,
    paths: &[std::path::PathBuf],
    add: fn(&mut TrustStore, &[u8]) -> Result<(), String>,
) -> Result<(), TrustStoreError> {
    for (i, p) in paths.iter().enumerate() {
        let fail = |reason: String| TrustStoreError {
            field: format!("{field}[{i}]"),
            path: p.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(p).map_err(|e| fail(format!("cannot read: {e}")))?;
        add(store, &bytes).map_err(fail)?;
    }
    Ok(())
}

fn add_anchor(store: &mut TrustStore, pem: &[u8]) -> Result<(), String> {
    if openssl::x509::X509::stack_from_pem(pem).map_or(true, |c| c.is_empty()) {
        return Err("no PEM certificate in it".into());
    }
    store.add_pem(pem).map_err(|e| e.to_string())
}

fn add_intermediate(store: &mut TrustStore, pem: &[u8]) -> Result<(), String> {
    store
        .add_untrusted_pem(pem)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn add_crl(store: &mut TrustStore, bytes: &[u8]) -> Result<(), String> {
    store.add_crls(bytes).map(drop).map_err(|e| e.to_string())
}

impl NationalTrust {
    /// Loads `[national.signatures]` (none: an empty trust, every policy `off`).
    pub(crate) fn load(n: &National) -> Result<Self, TrustStoreError> {
        let Some(s) = &n.signatures else {
            return Ok(Self::default());
        };
        let mut national = TrustStore::new();
        add_files(
            &mut national,
            "national.signatures.anchors",
            &s.anchors,
            add_anchor,
        )?;
        add_files(
            &mut national,
            "national.signatures.intermediates",
            &s.intermediates,
            add_intermediate,
        )?;
        add_files(&mut national, "national.signatures.crls", &s.crls, add_crl)?;
        let mut partners = BTreeMap::new();
        for (i, p) in s.partners.iter().enumerate() {
            let mut store = TrustStore::new();
            add_files(
                &mut store,
                &format!("national.signatures.partner[{i}].anchors"),
                &p.anchors,
                add_anchor,
            )?;
            partners.insert(p.state.clone(), (i, store));
        }
        Ok(Self {
            national: Some(national),
            partners,
        })
    }
}

/// What intake goes on with: the document to translate, the records for the envelope, and
/// whether the original bytes are kept as an attachment.
#[derive(Debug)]
pub(crate) struct Judged {
    pub(crate) document: Document,
    pub(crate) records: Vec<NationalSignature>,
    pub(crate) keep_original: bool,
}

/// Why a signature was not accepted; recorded as the reason under `verify`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The profile the configuration names has no verifier in this build yet.
    #[error("verification profile {0:?} is not available in this build")]
    Profile(String),
    /// The signature is good but signs another element than the configured one.
    #[error("the signature covers {covers}, not {wanted} (the configured signed_element)")]
    Element { covers: String, wanted: String },
    /// The signed bytes do not parse as a document of their own.
    #[error("the signed element cannot be read as a document: {0}")]
    Signed(#[source] ParseError),
}

/// A refusal under `require`; `setting` names the configuration entry whose policy it is.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error(
        "document: not signed by its issuing authority, and the policy of {setting} is require"
    )]
    Unsigned { setting: String },
    #[error("document: the issuing authority's signature is not valid, and the policy of {setting} is require: {source}")]
    Invalid {
        setting: String,
        #[source]
        source: Failure,
    },
}

/// The settings and trust store for a submission by `caller` of a document in a format of
/// `format_country` (`None`: an EAEU or a submission format), and the configuration entry
/// that sets them.
fn settings_for<'t>(
    trust: &'t NationalTrust,
    national: &National,
    caller: &str,
    format_country: Option<&str>,
) -> (SignatureSettings, Option<&'t TrustStore>, String) {
    if let Some((i, store)) = format_country.and_then(|c| trust.partners.get(c)) {
        let settings = national
            .signatures
            .as_ref()
            .and_then(|s| s.partners.get(*i))
            .map(|p| p.settings())
            .unwrap_or_else(|| national.signature_settings(None));
        return (
            settings,
            Some(store),
            format!("national.signatures.partner[{i}]"),
        );
    }
    let setting = match national.clients.iter().position(|c| c.name == caller) {
        Some(i) if national.clients[i].signature_policy.is_some() => {
            format!("national.client[{i}]")
        }
        _ => "national.signatures".to_owned(),
    };
    (
        national.signature_settings(Some(caller)),
        trust.national.as_ref(),
        setting,
    )
}

/// Judges the issuing authority's signature(s) on `doc` as the settings for this submission
/// say, at `now` (the intake time).
pub(crate) fn judge(
    trust: &NationalTrust,
    national: &National,
    caller: &str,
    format_country: Option<&str>,
    doc: Document,
    now: DateTime<FixedOffset>,
) -> Result<Judged, Refused> {
    let (settings, store, setting) = settings_for(trust, national, caller, format_country);
    if settings.policy == SignaturePolicy::Off {
        return Ok(Judged {
            document: doc,
            records: Vec::new(),
            keep_original: false,
        });
    }
    if signatures(&doc).is_empty() {
        if settings.policy == SignaturePolicy::Require {
            return Err(Refused::Unsigned { setting });
        }
        return Ok(Judged {
            document: doc,
            records: vec![NationalSignature {
                verdict: NationalVerdict::Unsigned,
                covers: None,
                signer: None,
                issuer: None,
                serial: None,
                signature_method: None,
                signing_time: now,
                time_source: SigningTimeSource::Intake,
            }],
            keep_original: false,
        });
    }
    let empty = TrustStore::new();
    match verify_signed(&doc, store.unwrap_or(&empty), &settings) {
        Ok((signed, verified)) => Ok(Judged {
            document: signed,
            records: verified.iter().map(|v| record_of(v, now)).collect(),
            keep_original: true,
        }),
        Err(source) if settings.policy == SignaturePolicy::Require => {
            Err(Refused::Invalid { setting, source })
        }
        Err(failure) => {
            let claimed = dsig::claimed_signer(&doc);
            Ok(Judged {
                document: without_signatures(&doc),
                records: vec![NationalSignature {
                    verdict: NationalVerdict::Invalid(reason_text(&failure)),
                    covers: None,
                    signer: claimed.as_ref().map(|c| dsig::subject_of(c)),
                    issuer: claimed.as_ref().map(|c| dsig::format_name(c.issuer_name())),
                    serial: claimed.as_ref().and_then(|c| serial_of(c)),
                    signature_method: dsig::claimed_signature_method(doc.to_xml().as_bytes())
                        .filter(|m| m.contains(':') && m.len() <= 256),
                    signing_time: now,
                    time_source: SigningTimeSource::Intake,
                }],
                keep_original: true,
            })
        }
    }
}

/// The verifier's words, on one line and within the record's bound.
fn reason_text(f: &Failure) -> String {
    let one_line: String = f
        .to_string()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    match trimmed.char_indices().nth(1000) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

/// Every `ds:Signature` element of the document.
fn signatures(doc: &Document) -> Vec<NodeId> {
    doc.descendants_or_self(doc.root())
        .into_iter()
        .filter(|n| {
            doc.element(*n)
                .is_some_and(|e| e.is(DSIG_NAMESPACE, "Signature"))
        })
        .collect()
}

/// The one call to the verifier: the profile's verification of every signature, and the
/// signed element (re-parsed from its digested bytes) that translation reads.
fn verify_signed(
    doc: &Document,
    store: &TrustStore,
    settings: &SignatureSettings,
) -> Result<(Document, Vec<Verified>), Failure> {
    if settings.profile != "enveloped" {
        return Err(Failure::Profile(settings.profile.clone()));
    }
    let verified = dsig::verify(doc, store, &VerifyPolicy::default())?;
    let reference = verified
        .references
        .first()
        .ok_or(Failure::Verify(VerifyError::NoSignature))?;
    if let Some(wanted) = &settings.signed_element {
        if plain_path(&reference.path) != plain_path(wanted) {
            return Err(Failure::Element {
                covers: reference.path.clone(),
                wanted: wanted.clone(),
            });
        }
    }
    let signed = reference.document().map_err(Failure::Signed)?;
    Ok((signed, vec![verified]))
}

/// A path without the `[1]` positions the verifier writes, so `/A/B` names `/A[1]/B[1]`.
fn plain_path(p: &str) -> String {
    p.split('/')
        .map(|s| s.strip_suffix("[1]").unwrap_or(s))
        .collect::<Vec<_>>()
        .join("/")
}

/// The record of one verified signature.
fn record_of(v: &Verified, now: DateTime<FixedOffset>) -> NationalSignature {
    let cert = v.signer.certificate.as_ref();
    let (signing_time, time_source) = match claimed_signing_time(v) {
        Some(t) => (t, SigningTimeSource::Signature),
        None => (now, SigningTimeSource::Intake),
    };
    NationalSignature {
        verdict: NationalVerdict::Valid,
        covers: Some(
            v.references
                .first()
                .map(|r| r.path.clone())
                .unwrap_or_else(|| "/".into()),
        ),
        signer: Some(v.signer.subject.clone()),
        issuer: Some(
            cert.map(|c| dsig::format_name(c.issuer_name()))
                .unwrap_or_else(|| "(a trusted bare key)".into()),
        ),
        serial: Some(
            cert.and_then(|c| serial_of(c))
                .unwrap_or_else(|| "0".into()),
        ),
        signature_method: Some(v.signature_method.clone()),
        signing_time,
        time_source,
    }
}

/// The certificate's serial number in uppercase hex.
fn serial_of(c: &openssl::x509::X509Ref) -> Option<String> {
    let hex = c
        .serial_number()
        .to_bn()
        .ok()?
        .to_hex_str()
        .ok()?
        .to_string();
    Some(hex.trim_start_matches('-').to_ascii_uppercase())
}

/// The `xades:SigningTime` of a signed `xades:SignedProperties` reference: the signature's
/// own claim, covered by it. Unsigned properties are not read.
fn claimed_signing_time(v: &Verified) -> Option<DateTime<FixedOffset>> {
    v.references.iter().find_map(|r| {
        let d = r.document().ok()?;
        if !d
            .element(d.root())
            .is_some_and(|e| e.is(XADES_NAMESPACE, "SignedProperties"))
        {
            return None;
        }
        let t = d.descendants_or_self(d.root()).into_iter().find(|n| {
            d.element(*n)
                .is_some_and(|e| e.is(XADES_NAMESPACE, "SigningTime"))
        })?;
        DateTime::parse_from_rfc3339(d.text_content(t).trim()).ok()
    })
}

/// The document without the signatures directly under its document element: what an
/// invalidly signed document (recorded, under `verify`) is translated from.
fn without_signatures(doc: &Document) -> Document {
    let root = doc.root();
    let mut top = doc
        .element(root)
        .cloned()
        .unwrap_or_else(|| xml::Element::new(None, "empty", None));
    top.children.clear();
    for (prefix, uri) in doc.in_scope_namespaces(root) {
        let prefix = (!prefix.is_empty()).then_some(prefix);
        if !top.namespace_decls.iter().any(|d| d.prefix == prefix) {
            top.namespace_decls.push(xml::NamespaceDecl { prefix, uri });
        }
    }
    let mut out = Document::with_root(top);
    let new_root = out.root();
    for &c in doc.children(root) {
        let is_signature = doc
            .element(c)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "Signature"));
        if !is_signature {
            out.import(new_root, doc, c);
        }
    }
    out
}
