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
use tereze_codecs::dsig::{
    self, ElementPath, Outcome, Profile, Select, SignatureReport, TrustStore, Verified,
    VerifyError, VerifyPolicy, DSIG_NAMESPACE,
};
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

/// A setting of `[national.signatures]` that cannot be used: the field, its value (a file or an
/// element path) and why.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {value}: {source}")]
pub struct TrustStoreError {
    field: String,
    value: String,
    #[source]
    source: Box<SettingError>,
}

/// Why a file or an element path of `[national.signatures]` was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    #[error("no PEM certificate in it")]
    NoCertificate,
    #[error("{0}")]
    Unusable(#[source] dsig::DsigError),
    #[error("{0}")]
    Path(#[source] dsig::PathError),
}

/// Reads the PEM (or, for a CRL, DER) files of one list into `store`.
fn add_files(
    store: &mut TrustStore,
    field: &str,
    paths: &[std::path::PathBuf],
    add: fn(&mut TrustStore, &[u8]) -> Result<(), SettingError>,
) -> Result<(), TrustStoreError> {
    for (i, p) in paths.iter().enumerate() {
        let fail = |source: SettingError| TrustStoreError {
            field: format!("{field}[{i}]"),
            value: p.display().to_string(),
            source: Box::new(source),
        };
        let bytes = std::fs::read(p).map_err(|e| fail(SettingError::Read(e)))?;
        add(store, &bytes).map_err(fail)?;
    }
    Ok(())
}

fn add_anchor(store: &mut TrustStore, pem: &[u8]) -> Result<(), SettingError> {
    if openssl::x509::X509::stack_from_pem(pem).map_or(true, |c| c.is_empty()) {
        return Err(SettingError::NoCertificate);
    }
    store.add_pem(pem).map_err(SettingError::Unusable)
}

fn add_intermediate(store: &mut TrustStore, pem: &[u8]) -> Result<(), SettingError> {
    store
        .add_untrusted_pem(pem)
        .map(drop)
        .map_err(SettingError::Unusable)
}

fn add_crl(store: &mut TrustStore, bytes: &[u8]) -> Result<(), SettingError> {
    store
        .add_crls(bytes)
        .map(drop)
        .map_err(SettingError::Unusable)
}

impl NationalTrust {
    /// Loads `[national.signatures]` (none: an empty trust, every policy `off`).
    pub(crate) fn load(n: &National) -> Result<Self, TrustStoreError> {
        check_paths(n)?;
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

/// Every `signed_element` of the configuration is an element path the verifier reads.
fn check_paths(n: &National) -> Result<(), TrustStoreError> {
    let mut all: Vec<(String, &str)> = Vec::new();
    for (i, c) in n.clients.iter().enumerate() {
        if let Some(e) = &c.signed_element {
            all.push((format!("national.client[{i}].signed_element"), e));
        }
    }
    if let Some(s) = &n.signatures {
        if let Some(e) = &s.signed_element {
            all.push(("national.signatures.signed_element".into(), e));
        }
        for (i, p) in s.partners.iter().enumerate() {
            if let Some(e) = &p.signed_element {
                all.push((
                    format!("national.signatures.partner[{i}].signed_element"),
                    e,
                ));
            }
        }
    }
    for (field, e) in all {
        ElementPath::parse(e).map_err(|why| TrustStoreError {
            field,
            value: e.to_owned(),
            source: Box::new(SettingError::Path(why)),
        })?;
    }
    Ok(())
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
    /// The signature_profile setting names no profile (checked at start too).
    #[error("signature_profile: {0}")]
    Profile(#[source] dsig::UnknownProfile),
    /// The signed_element setting is not an element path (checked at start too).
    #[error("signed_element: {0}")]
    Path(#[source] dsig::PathError),
    /// The signatures are good but none signs the element translation must read.
    #[error("the signatures cover {covers}, not {wanted}")]
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
    if dsig::signatures_of(&doc).is_empty() {
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
            records: verified
                .iter()
                .map(|(v, covers)| record_of(v, covers, now))
                .collect(),
            keep_original: true,
        }),
        Err(source) if settings.policy == SignaturePolicy::Require => {
            Err(Refused::Invalid { setting, source })
        }
        Err(failure) => {
            let records = match &failure {
                Failure::Verify(VerifyError::InvalidAmong { reports, .. }) => reports
                    .iter()
                    .filter_map(|r| report_record(r, now))
                    .collect(),
                _ => Vec::new(),
            };
            let records = if records.is_empty() {
                vec![invalid_record(&doc, &failure, now)]
            } else {
                records
            };
            Ok(Judged {
                document: without_signatures(&doc),
                records,
                keep_original: true,
            })
        }
    }
}

/// The record of one signature of a document refused for another's invalidity: valid ones
/// as such, the invalid one with its reason and the signer it claims; unchecked ones none.
fn report_record(r: &SignatureReport, now: DateTime<FixedOffset>) -> Option<NationalSignature> {
    match &r.outcome {
        Outcome::Valid(v) => Some(record_of(v, &r.covers, now)),
        Outcome::NotChecked => None,
        Outcome::Invalid(why) => {
            let claimed = r.claimed_certificate.as_ref();
            Some(NationalSignature {
                verdict: NationalVerdict::Invalid(bounded(&why.to_string(), 1024)),
                covers: named(&r.covers.join(" "), 512),
                signer: claimed.and_then(|c| named(&dsig::subject_of(c), 1024)),
                issuer: claimed.and_then(|c| named(&dsig::format_name(c.issuer_name()), 1024)),
                serial: claimed.and_then(|c| serial_of(c)),
                signature_method: Some(r.signature_method.clone())
                    .filter(|m| m.contains(':') && m.len() <= 256 && !m.contains(' ')),
                signing_time: now,
                time_source: SigningTimeSource::Intake,
            })
        }
    }
}

/// One record for a document whose signature could not be checked at all.
fn invalid_record(
    doc: &Document,
    failure: &Failure,
    now: DateTime<FixedOffset>,
) -> NationalSignature {
    let claimed = dsig::claimed_signer(doc);
    NationalSignature {
        verdict: NationalVerdict::Invalid(reason_text(failure)),
        covers: None,
        signer: claimed
            .as_ref()
            .map(|c| bounded(&dsig::subject_of(c), 1024)),
        issuer: claimed
            .as_ref()
            .map(|c| bounded(&dsig::format_name(c.issuer_name()), 1024)),
        serial: claimed.as_ref().and_then(|c| serial_of(c)),
        signature_method: dsig::claimed_signature_method(doc.to_xml().as_bytes())
            .filter(|m| m.contains(':') && m.len() <= 256 && !m.contains(' ')),
        signing_time: now,
        time_source: SigningTimeSource::Intake,
    }
}

/// The verifier's words, on one line and within the record's bound.
fn reason_text(f: &Failure) -> String {
    let text = bounded(&f.to_string(), 1024);
    if text.is_empty() {
        "the signature is not valid".to_owned()
    } else {
        text
    }
}

/// `s` bounded, if anything of it is left (a record names nothing rather than an empty name).
fn named(s: &str, max: usize) -> Option<String> {
    Some(bounded(s, max)).filter(|s| !s.is_empty())
}

/// `s` on one line, trimmed, at most `max` characters (cut with an ellipsis).
fn bounded(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    match trimmed.char_indices().nth(max - 1) {
        Some((cut, _)) => format!("{}…", trimmed[..cut].trim_end()),
        None => trimmed.to_owned(),
    }
}

/// A verified signature and the paths of what it signs.
type Covering = (Verified, Vec<String>);

/// The one call to the verifier: every signature checked under the profile (or, when an
/// element is named, every signature covering it), and the signed element, re-parsed from its
/// digested bytes, that translation reads. Several signatures (an inspector's and then the
/// authority's) give one record each; one invalid among them fails the document.
fn verify_signed(
    doc: &Document,
    store: &TrustStore,
    settings: &SignatureSettings,
) -> Result<(Document, Vec<Covering>), Failure> {
    let profile: Profile = settings.profile.parse().map_err(Failure::Profile)?;
    let element = settings
        .signed_element
        .as_deref()
        .map(ElementPath::parse)
        .transpose()
        .map_err(Failure::Path)?;
    let policy = VerifyPolicy::default();
    let select = match &element {
        Some(e) => Select::Covering(e.clone()),
        None => Select::All,
    };
    let reports = dsig::verify_signatures(doc, store, &policy, profile, &select)?;
    let valid: Vec<Covering> = reports
        .into_iter()
        .filter_map(|r| match r.outcome {
            Outcome::Valid(v) => Some((*v, r.covers)),
            Outcome::Invalid(_) | Outcome::NotChecked => None,
        })
        .collect();
    // The element translation reads: the named one, else the profile's own (the document
    // element for `enveloped`), else what the first signature signs.
    let target = match (&element, profile) {
        (Some(e), _) => Some(
            e.resolve(doc)
                .map(|id| doc.path(id))
                .map_err(|e| Failure::Verify(VerifyError::Element(e)))?,
        ),
        (None, Profile::Enveloped) => Some(doc.path(doc.root())),
        (None, Profile::Wss) => soap_body(doc).map(|b| doc.path(b)),
        (None, _) => None,
    };
    let reference = valid
        .iter()
        .flat_map(|(v, _)| v.references.iter())
        .find(|r| target.as_ref().is_none_or(|t| &r.path == t))
        .ok_or_else(|| Failure::Element {
            covers: valid
                .iter()
                .flat_map(|(_, c)| c.iter().cloned())
                .collect::<Vec<_>>()
                .join(", "),
            wanted: target.clone().unwrap_or_default(),
        })?;
    // The signed bytes, without the signatures they hold (a co-signer's signature covers the
    // first signer's): each was verified above, and none is content to translate.
    let signed = without_signatures(&reference.document().map_err(Failure::Signed)?);
    // A SOAP Body carries the national document as its one child: that is what is translated.
    let signed = match soap_body(&signed) {
        Some(body) if body == signed.root() => only_child(&signed, body).unwrap_or(signed),
        _ => signed,
    };
    Ok((signed, valid))
}

/// The SOAP 1.1 or 1.2 `Body` that is the document element or its child.
fn soap_body(doc: &Document) -> Option<NodeId> {
    let is_body = |n: NodeId| {
        doc.element(n).is_some_and(|e| {
            e.is(dsig::SOAP11_NAMESPACE, "Body") || e.is(dsig::SOAP12_NAMESPACE, "Body")
        })
    };
    let root = doc.root();
    if is_body(root) {
        return Some(root);
    }
    doc.child_elements(root).find(|n| is_body(*n))
}

/// The one child element of `parent` as a document of its own (none when there are more).
fn only_child(doc: &Document, parent: NodeId) -> Option<Document> {
    let mut children = doc.child_elements(parent);
    let (Some(child), None) = (children.next(), children.next()) else {
        return None;
    };
    copy_of(doc, child, |_| false)
}

/// The record of one verified signature that signs `covers`.
fn record_of(v: &Verified, covers: &[String], now: DateTime<FixedOffset>) -> NationalSignature {
    let cert = v.signer.certificate.as_ref();
    let (signing_time, time_source) = match claimed_signing_time(v) {
        Some(t) => (t, SigningTimeSource::Signature),
        None => (now, SigningTimeSource::Intake),
    };
    NationalSignature {
        verdict: NationalVerdict::Valid,
        // A valid record names each part; an empty name (an odd certificate) reads as "?".
        covers: Some(named(&covers.join(" "), 512).unwrap_or_else(|| "/".into())),
        signer: Some(named(&v.signer.subject, 1024).unwrap_or_else(|| "?".into())),
        issuer: Some(
            cert.and_then(|c| named(&dsig::format_name(c.issuer_name()), 1024))
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

/// The document without its signatures (at any depth): what a signed document is translated
/// from once its signatures have been judged (they are not content).
fn without_signatures(doc: &Document) -> Document {
    let is_signature = |e: &xml::Element| e.is(DSIG_NAMESPACE, "Signature");
    copy_of(doc, doc.root(), is_signature).unwrap_or_else(|| doc.clone())
}

/// The element `top` as the document element of a document of its own, with the namespaces in
/// scope there, without the elements `skip` names (at any depth).
fn copy_of(doc: &Document, top: NodeId, skip: impl Fn(&xml::Element) -> bool) -> Option<Document> {
    let mut root = doc.element(top)?.clone();
    root.children.clear();
    for (prefix, uri) in doc.in_scope_namespaces(top) {
        let prefix = (!prefix.is_empty()).then_some(prefix);
        if !root.namespace_decls.iter().any(|d| d.prefix == prefix) {
            root.namespace_decls
                .push(xml::NamespaceDecl { prefix, uri });
        }
    }
    let mut out = Document::with_root(root);
    // Iterative, as the parser is: no input depth can overflow the stack.
    let mut stack: Vec<(NodeId, NodeId)> = doc
        .children(top)
        .iter()
        .rev()
        .map(|c| (*c, out.root()))
        .collect();
    while let Some((src, parent)) = stack.pop() {
        if doc.element(src).is_some_and(&skip) {
            continue;
        }
        let mut kind = doc.kind(src).clone();
        if let xml::NodeKind::Element(e) = &mut kind {
            e.children.clear();
        }
        let copy = out.append_child(parent, kind);
        for c in doc.children(src).iter().rev() {
            stack.push((*c, copy));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    //! Judging at intake, without a node: each policy, a valid and a changed signature, the
    //! element that must be signed, and that translation gets only the signed element.

    use super::*;
    use tereze_codecs::dsig::{SignOptions, SignTarget, SigningKey};
    use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};

    const SAMPLE: &[u8] =
        include_bytes!("../../../codecs/samples/kz.phytosanitary-certificate/valid-wheat.xml");

    /// A trust with a national CA, and an inspector's key under it.
    fn trust() -> (NationalTrust, SigningKey) {
        let (t, key, _) = trust_and_key();
        (t, key)
    }

    /// [`trust`], and the inspector's private key (for `xmlsec1`).
    fn trust_and_key() -> (
        NationalTrust,
        SigningKey,
        openssl::pkey::PKey<openssl::pkey::Private>,
    ) {
        let spec = |cn: &'static [(&'static str, &'static str)], is_ca| CertificateSpec {
            subject: cn,
            not_before_days: -1,
            not_after_days: 30,
            is_ca,
        };
        let ca_key = generate_key(KeyKind::EcP256).expect("key");
        let ca =
            issue_certificate(&spec(&[("CN", "National CA")], true), &ca_key, None).expect("CA");
        let key = generate_key(KeyKind::EcP256).expect("key");
        let cert = issue_certificate(
            &spec(&[("CN", "Inspector")], false),
            &key,
            Some((&ca, &ca_key)),
        )
        .expect("inspector");
        let mut store = TrustStore::new();
        store.add_certificate(ca);
        (
            NationalTrust {
                national: Some(store),
                partners: BTreeMap::new(),
            },
            SigningKey::new(key.clone(), Some(cert)).expect("signer"),
            key,
        )
    }

    fn national(lines: &str) -> National {
        toml::from_str(&format!(
            "[signatures]\nanchors = [\"ca.pem\"]\n{lines}\n[[client]]\nname = \"c\"\ntoken_file = \"t\"\noperations = [\"submit\"]\n"
        ))
        .expect("national")
    }

    fn signed(key: &SigningKey) -> Document {
        let mut doc = xml::parse(SAMPLE).expect("sample");
        dsig::sign_enveloped(
            &mut doc,
            &SignTarget::Document,
            key,
            &SignOptions::default(),
        )
        .expect("signs");
        xml::parse(doc.to_xml().as_bytes()).expect("reparses")
    }

    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-24T09:30:00+05:00").expect("time")
    }

    fn judge_with(n: &National, t: &NationalTrust, doc: Document) -> Result<Judged, Refused> {
        judge(t, n, "c", Some("KZ"), doc, now())
    }

    #[test]
    fn the_doors_config_names_exactly_the_verifiers_profiles() {
        // `doors` checks node.toml without the XML core, so it keeps its own list of names.
        let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(tereze_doors::config::SIGNATURE_PROFILES.as_slice(), names);
    }

    #[test]
    fn a_valid_signature_is_recorded_and_only_the_signed_element_is_translated() {
        let (t, key) = trust();
        let j = judge_with(&national(""), &t, signed(&key)).expect("valid");
        assert!(j.keep_original);
        let [r] = j.records.as_slice() else {
            panic!("{:?}", j.records)
        };
        assert_eq!(r.verdict, NationalVerdict::Valid);
        assert_eq!(r.signer.as_deref(), Some("CN=Inspector"));
        assert_eq!(r.issuer.as_deref(), Some("CN=National CA"));
        assert!(r.serial.as_ref().is_some_and(|s| !s.is_empty()));
        assert_eq!(r.time_source, SigningTimeSource::Intake);
        assert_eq!(r.signing_time, now());
        assert!(
            dsig::signatures_of(&j.document).is_empty(),
            "the signature is not translated"
        );
    }

    #[test]
    fn a_changed_document_is_recorded_invalid_under_verify_and_refused_under_require() {
        let (t, key) = trust();
        let text = signed(&key)
            .to_xml()
            .replacen("125 000,000", "126 000,000", 1);
        let changed = || xml::parse(text.as_bytes()).expect("parses");
        let j = judge_with(&national(""), &t, changed()).expect("recorded");
        match &j.records[0].verdict {
            NationalVerdict::Invalid(why) => assert!(why.contains("digest"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(j.records[0].signer.as_deref(), Some("CN=Inspector"));
        assert!(dsig::signatures_of(&j.document).is_empty());
        let e = judge_with(&national("policy = \"require\""), &t, changed())
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("policy of national.signatures is require") && e.contains("digest"),
            "{e}"
        );
    }

    #[test]
    fn unsigned_documents_follow_the_policy() {
        let (t, _) = trust();
        let unsigned = || xml::parse(SAMPLE).expect("sample");
        let j = judge_with(&national(""), &t, unsigned()).expect("recorded");
        assert_eq!(j.records[0].verdict, NationalVerdict::Unsigned);
        assert!(!j.keep_original);
        let e = judge_with(&national("policy = \"require\""), &t, unsigned())
            .expect_err("refused")
            .to_string();
        assert!(e.contains("not signed by its issuing authority"), "{e}");
        let j = judge_with(&national("policy = \"off\""), &t, unsigned()).expect("off");
        assert!(j.records.is_empty() && !j.keep_original);
    }

    #[test]
    fn a_signature_over_another_element_than_the_named_one_is_not_valid() {
        let (t, key) = trust();
        let n = national(
            "signed_element = \"/{urn:kz:agro:phytosanitary-certificate:1}ФитосанитарныйСертификат/{urn:kz:agro:phytosanitary-certificate:1}Продукция\"",
        );
        let j = judge_with(&n, &t, signed(&key)).expect("recorded");
        assert!(
            matches!(j.records[0].verdict, NationalVerdict::Invalid(_)),
            "{:?}",
            j.records
        );
        let n = national(
            "signed_element = \"/{urn:kz:agro:phytosanitary-certificate:1}ФитосанитарныйСертификат\"",
        );
        let j = judge_with(&n, &t, signed(&key)).expect("valid");
        assert_eq!(j.records[0].verdict, NationalVerdict::Valid);
    }

    #[test]
    fn a_signer_outside_the_national_trust_store_is_not_valid() {
        let (t, _) = trust();
        let (_, stranger) = trust();
        let j = judge_with(&national(""), &t, signed(&stranger)).expect("recorded");
        match &j.records[0].verdict {
            NationalVerdict::Invalid(why) => assert!(why.contains("not trusted"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    /// The sample in a SOAP envelope whose `Body` (by `wsu:Id`) `xmlsec1` signed from
    /// `wsse:Security`, with the inspector's key.
    fn wss_signed(
        key: &SigningKey,
        private: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
    ) -> Document {
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path();
        let pem = |b: Vec<u8>| String::from_utf8(b).expect("PEM");
        let cert = key.certificate().expect("certificate");
        std::fs::write(d.join("k.pem"), pem(cert.to_pem().expect("PEM"))).expect("write");
        let private = private.private_key_to_pem_pkcs8().expect("PEM");
        std::fs::write(d.join("k.key"), private).expect("write");
        let sample = std::str::from_utf8(SAMPLE).expect("UTF-8");
        let body = sample.split_once("?>").map_or(sample, |(_, b)| b).trim();
        let template = format!(
            r##"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><soap:Header><wsse:Security><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/><ds:Reference URI="#body"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo></ds:Signature></wsse:Security></soap:Header><soap:Body wsu:Id="body">{body}</soap:Body></soap:Envelope>"##
        );
        std::fs::write(d.join("t.xml"), template).expect("write");
        let out = std::process::Command::new("xmlsec1")
            .current_dir(d)
            .args([
                "--sign",
                "--privkey-pem",
                "k.key,k.pem",
                "--id-attr:Id",
                "http://schemas.xmlsoap.org/soap/envelope/:Body",
                "--output",
                "s.xml",
                "t.xml",
            ])
            .output()
            .expect("xmlsec1 runs (scripts/setup installs it)");
        assert!(
            out.status.success(),
            "xmlsec1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        xml::parse(&std::fs::read(d.join("s.xml")).expect("signed")).expect("parses")
    }

    #[test]
    fn a_ws_security_signature_gives_the_document_in_the_signed_body() {
        let (t, key, private) = trust_and_key();
        let signed = wss_signed(&key, &private);
        let j = judge_with(&national("profile = \"wss\""), &t, signed.clone()).expect("valid");
        assert_eq!(
            j.records[0].verdict,
            NationalVerdict::Valid,
            "{:?}",
            j.records
        );
        assert!(j.records[0]
            .covers
            .as_deref()
            .is_some_and(|c| c.contains("Body")));
        let root = j.document.element(j.document.root()).expect("root");
        assert!(
            root.is(
                "urn:kz:agro:phytosanitary-certificate:1",
                "ФитосанитарныйСертификат"
            ),
            "translation reads the certificate inside the signed Body: {}",
            root.name
        );
        // The same document under the enveloped profile is not validly signed.
        let j = judge_with(&national(""), &t, signed).expect("recorded");
        assert!(matches!(j.records[0].verdict, NationalVerdict::Invalid(_)));
    }

    /// Runs `xmlsec1 --sign` in `dir` with the key files `k.key`/`k.pem` on `input`, signing
    /// the signature `node` (by its `Id`), into `output`.
    fn xmlsec1_sign(dir: &std::path::Path, input: &str, node: &str, output: &str) {
        let out = std::process::Command::new("xmlsec1")
            .current_dir(dir)
            .args([
                "--sign",
                "--privkey-pem",
                "k.key,k.pem",
                "--id-attr:Id",
                "Signature",
                "--id-attr:Id",
                "urn:kz:agro:phytosanitary-certificate:1:Продукция",
            ])
            .args(["--node-id", node, "--output", output, input])
            .output()
            .expect("xmlsec1 runs (scripts/setup installs it)");
        assert!(
            out.status.success(),
            "xmlsec1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn a_certificate_co_signed_by_inspector_and_authority_gives_two_records() {
        let (t, key, private) = trust_and_key();
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path();
        let cert = key.certificate().expect("certificate");
        std::fs::write(d.join("k.pem"), cert.to_pem().expect("PEM")).expect("write");
        std::fs::write(
            d.join("k.key"),
            private.private_key_to_pem_pkcs8().expect("PEM"),
        )
        .expect("write");
        // The inspector signs the goods (by Id), then the authority the whole certificate,
        // the inspector's signature included.
        let signature = |id: &str, uri: &str| {
            format!(
                r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="{id}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/><ds:Reference URI="{uri}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo></ds:Signature>"##
            )
        };
        let sample = std::str::from_utf8(SAMPLE).expect("UTF-8").replacen(
            "<Продукция>",
            "<Продукция Id=\"goods\">",
            1,
        );
        let goods_end = sample.find("</Продукция>").expect("goods");
        let end = sample.rfind("</").expect("end tag");
        let template = format!(
            "{}{}{}{}{}",
            &sample[..goods_end],
            signature("inspector", "#goods"),
            &sample[goods_end..end],
            signature("authority", ""),
            &sample[end..]
        );
        std::fs::write(d.join("t.xml"), template).expect("write");
        xmlsec1_sign(d, "t.xml", "inspector", "one.xml");
        xmlsec1_sign(d, "one.xml", "authority", "two.xml");
        let text = std::fs::read_to_string(d.join("two.xml")).expect("signed");
        let doc = xml::parse(text.as_bytes()).expect("parses");
        let j = judge_with(&national(""), &t, doc).expect("valid");
        assert_eq!(j.records.len(), 2, "{:?}", j.records);
        assert!(j.records[0]
            .covers
            .as_deref()
            .is_some_and(|c| c.ends_with("Продукция[1]")));
        assert!(
            j.records
                .iter()
                .all(|r| r.verdict == NationalVerdict::Valid),
            "{:?}",
            j.records
        );
        assert!(
            dsig::signatures_of(&j.document).is_empty(),
            "no signature is translated"
        );

        // The authority's signature broken: each recorded with its own verdict.
        let start = text.find(r#"Id="authority""#).expect("authority");
        let value = start + text[start..].find("<ds:SignatureValue>").expect("value") + 19;
        let mut broken = text.clone();
        let flip = if &text[value..value + 1] == "A" {
            "B"
        } else {
            "A"
        };
        broken.replace_range(value..value + 1, flip);
        let doc = xml::parse(broken.as_bytes()).expect("parses");
        let j = judge_with(&national(""), &t, doc).expect("recorded");
        let verdicts: Vec<&str> = j.records.iter().map(|r| r.verdict.as_str()).collect();
        assert_eq!(verdicts, ["valid", "invalid"], "{:?}", j.records);
    }
}
