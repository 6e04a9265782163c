//! The signed envelope that carries one EAEU document between nodes (DESIGN §3).
//!
//! [`Envelope::from_document`] reads an envelope strictly: every header field in its place,
//! each value checked, unknown elements and unknown major versions refused, errors naming the
//! field path. [`Envelope::to_canonical_xml`] writes it in exclusive canonical form, so an
//! envelope read from canonical bytes writes back to the same bytes.
//!
//! Files too large or too opaque to carry in the body travel beside the envelope as
//! attachments: the header lists each one by id, media type, size and SHA-256
//! ([`AttachmentRef`]), so the envelope signature covers the files too. The body may then hold,
//! instead of a document, a reference to one of them ([`Body::by_reference`]).
//!
//! A national document that arrived signed by its issuing authority is recorded in the header
//! ([`NationalSignature`], `env:NationalSignatures`, format 1.1): who signed it, with which
//! certificate and algorithm, when, and the sending node's verdict. An envelope without that
//! record is written as 1.0, byte for byte what nodes wrote before it existed.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::c14n::{self, C14nOptions, NodeSet};
use crate::dsig::DSIG_NAMESPACE;
use crate::xml::{self, Document, Element, NamespaceDecl, NodeId, NodeKind, ParseError};

/// Our envelope namespace; the version travels in the `version` attribute.
pub const ENVELOPE_NAMESPACE: &str = "urn:tereze:envelope";
/// WS-Addressing, for the message id and the message it answers (as the EAEU integrated
/// system's exchange rules do).
pub const WSA_NAMESPACE: &str = "http://www.w3.org/2005/08/addressing";

/// The newest envelope format version this code writes (1.1: `env:NationalSignatures`); it
/// reads any `1.x`, refusing elements that the version read does not define.
pub const VERSION: Version = Version { major: 1, minor: 1 };

/// The format without national signatures: what an envelope without them is written as, so
/// that nodes reading only 1.0 still read it.
pub const VERSION_1_0: Version = Version { major: 1, minor: 0 };

/// The first minor version of format 1 that carries `env:NationalSignatures`.
const NATIONAL_SIGNATURES_SINCE: u16 = 1;

/// At most this many national signatures are recorded for one document.
pub const MAX_NATIONAL_SIGNATURES: usize = 16;

/// `major.minor` of the envelope format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl Version {
    /// The version to write `header` as: 1.0 unless it records national signatures (1.1),
    /// so an envelope without them reads the same to a node that reads only 1.0.
    pub fn for_header(header: &Header) -> Version {
        if header.national_signatures.is_empty() {
            VERSION_1_0
        } else {
            VERSION
        }
    }

    fn has_national_signatures(self) -> bool {
        self.major == 1 && self.minor >= NATIONAL_SIGNATURES_SINCE
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Request,
    Response,
    Notification,
    Receipt,
    Error,
}

impl MessageKind {
    pub const ALL: [MessageKind; 5] = [
        Self::Request,
        Self::Response,
        Self::Notification,
        Self::Receipt,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
            Self::Notification => "notification",
            Self::Receipt => "receipt",
            Self::Error => "error",
        }
    }
}

/// A participant: a state (ISO 3166-1 alpha-2) and one of its authorities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub country: String,
    pub authority: String,
}

/// The EAEU document the body carries: its type code, version and issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    /// `R.<area>.<nn>.<nnn>`, e.g. `R.CC.01.001`.
    pub type_code: String,
    /// `major.minor.patch` of the document's schema.
    pub version: String,
    pub issuing_authority: Participant,
}

/// A file sent beside the envelope, bound to it by its digest: the signature covers this reference.
///
/// In XML, `<env:Attachment id="…" mediaType="…" size="…" sha256="…"/>` in
/// `env:Header/env:Attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// The attachment's name among the message's files, and the file name it is stored under:
    /// 1 to 64 of `A-Z a-z 0-9 . _ -`, the first alphanumeric (so never `.`, `..` or a path).
    /// Unique in the envelope, ignoring ASCII case.
    pub id: String,
    /// `type/subtype` (RFC 6838), each part an HTTP token, 3 to 127 characters in all; no
    /// parameters.
    pub media_type: String,
    /// The file's length in bytes.
    pub size: u64,
    /// SHA-256 of the file's bytes; lowercase hex in XML.
    pub sha256: [u8; 32],
}

/// The sending node's verdict on one signature of the issuing authority over the national
/// document, at intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NationalVerdict {
    /// The signature verified against the sending node's national trust store.
    Valid,
    /// The national document carried no signature (recorded under the `verify` policy).
    Unsigned,
    /// The signature did not verify; why (recorded under `verify`, refused under `require`).
    Invalid(String),
}

impl NationalVerdict {
    /// `valid`, `unsigned` or `invalid`: the `verdict` attribute.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Unsigned => "unsigned",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// Where a recorded signing time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningTimeSource {
    /// The signature's own claim (`xades:SigningTime` among its signed properties).
    Signature,
    /// The sending node's clock when it took the document in: the signature claims no time.
    Intake,
}

impl SigningTimeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::Intake => "intake",
        }
    }
}

/// One signature of the issuing authority over the national document, as the sending node
/// judged it at intake (`env:NationalSignatures/env:NationalSignature`, format 1.1).
///
/// A `valid` record names the signer, the certificate's issuer and serial, the algorithm and
/// what it covers; an `unsigned` record names nothing but the intake time; an `invalid` one
/// carries the reason and whatever of the signer could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NationalSignature {
    pub verdict: NationalVerdict,
    /// What the signature covers in the original document: the signed element's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers: Option<String>,
    /// The signer certificate's subject (`CN=…, O=…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The signer certificate's issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The signer certificate's serial number, uppercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The `SignatureMethod` URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_method: Option<String>,
    pub signing_time: DateTime<FixedOffset>,
    pub time_source: SigningTimeSource,
}

/// Everything about a message except its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub procedure_id: Uuid,
    pub in_reply_to: Option<Uuid>,
    /// Common process, `P.<area>.<nn>`.
    pub process: String,
    /// `<process>.MSG.<nnn>`.
    pub message: String,
    /// `<process>.TRN.<nnn>`.
    pub transaction: String,
    pub kind: MessageKind,
    pub sender: Participant,
    pub recipient: Participant,
    pub created_at: DateTime<FixedOffset>,
    pub expires_at: Option<DateTime<FixedOffset>>,
    pub document: DocumentRef,
    /// Unique trader identifiers involved (`CC` + national taxpayer number).
    pub traders: Vec<String>,
    /// Files sent beside the envelope; none is written as no `env:Attachments` element, so an
    /// envelope without attachments has the same bytes (and JSON) as before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
    /// The issuing authority's signatures over the national document this envelope's body
    /// was translated from, as verified at intake (format 1.1); none is written as no
    /// `env:NationalSignatures` element.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub national_signatures: Vec<NationalSignature>,
}

/// The body: one EAEU document, kept as its exclusive canonical form, or a reference to one of
/// the header's attachments (`<env:AttachmentBody ref="ID"/>`, see [`Body::by_reference`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    canonical: String,
    /// The `ref` of an `env:AttachmentBody` marker, kept beside its canonical form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attachment: Option<String>,
}

impl Body {
    /// The document element of `doc` (and everything in it). A document whose element is
    /// `{urn:tereze:envelope}AttachmentBody` makes a by-reference body.
    pub fn from_document(doc: &Document) -> Self {
        Self::from_element(doc, doc.root())
    }

    /// A body that, instead of a document, names the header attachment `id` as the message's
    /// content. The id is checked against the header when the envelope is built or read.
    pub fn by_reference(id: &str) -> Self {
        Self::from_document(&attachment_body(id))
    }

    fn from_element(doc: &Document, id: NodeId) -> Self {
        let bytes = c14n::canonicalize(doc, NodeSet::subtree(id), &C14nOptions::exclusive());
        let attachment = doc
            .element(id)
            .filter(|e| e.is(ENVELOPE_NAMESPACE, ATTACHMENT_BODY))
            .and_then(|e| e.attribute("ref"))
            .map(str::to_owned);
        Self {
            canonical: String::from_utf8_lossy(&bytes).into_owned(),
            attachment,
        }
    }

    /// The id of the header attachment this body refers to, or `None` for a body that holds a
    /// document.
    pub fn attachment(&self) -> Option<&str> {
        self.attachment.as_deref()
    }

    /// The document as a tree of its own. For a by-reference body this is the
    /// `env:AttachmentBody` marker, not the content: callers check [`Body::attachment`] first.
    pub fn document(&self) -> Result<Document, ParseError> {
        xml::parse(self.canonical.as_bytes())
    }

    /// The exclusive canonical form of the document.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

/// A whole envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: Version,
    pub header: Header,
    pub body: Body,
}

/// Why an envelope was refused: the field path and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("Envelope/@version: version {found} is not supported; this node reads {supported}.x")]
    UnsupportedVersion { found: String, supported: u16 },
    #[error(transparent)]
    Parse(#[from] ParseError),
}

fn invalid(path: impl Into<String>, reason: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Invalid {
        path: path.into(),
        reason: reason.into(),
    }
}

fn is_upper(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_uppercase())
}

fn is_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// `P.<AA>.<nn>`.
fn check_process(path: &str, s: &str) -> Result<(), EnvelopeError> {
    match s.split('.').collect::<Vec<_>>().as_slice() {
        ["P", area, nn] if is_upper(area, 2) && is_digits(nn, 2) => Ok(()),
        _ => Err(invalid(
            path,
            format!("{s:?} is not a common-process code P.<area>.<nn>"),
        )),
    }
}

/// `<process>.<part>.<nnn>`, e.g. `P.CC.01.MSG.001`.
fn check_part(path: &str, s: &str, process: &str, part: &str) -> Result<(), EnvelopeError> {
    let ok = s
        .strip_prefix(process)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_prefix(part))
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|nnn| is_digits(nnn, 3));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("{s:?} is not {process}.{part}.<nnn>"),
        ))
    }
}

/// `R.<AA>.<nn>.<nnn>`.
fn check_document_type(path: &str, s: &str) -> Result<(), EnvelopeError> {
    match s.split('.').collect::<Vec<_>>().as_slice() {
        ["R", area, nn, nnn] if is_upper(area, 2) && is_digits(nn, 2) && is_digits(nnn, 3) => {
            Ok(())
        }
        _ => Err(invalid(
            path,
            format!("{s:?} is not a document type code R.<area>.<nn>.<nnn>"),
        )),
    }
}

fn check_semver(path: &str, s: &str) -> Result<(), EnvelopeError> {
    let parts: Vec<&str> = s.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("{s:?} is not a version major.minor.patch"),
        ))
    }
}

fn check_participant(path: &str, p: &Participant) -> Result<(), EnvelopeError> {
    if !is_upper(&p.country, 2) {
        return Err(invalid(
            format!("{path}/@country"),
            format!("{:?} is not an ISO 3166-1 alpha-2 code", p.country),
        ));
    }
    let ok = !p.authority.is_empty()
        && p.authority.len() <= 32
        && p.authority.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if !ok {
        return Err(invalid(
            format!("{path}/@authority"),
            format!(
                "{:?} is not an authority code (1-32 of A-Z 0-9 - _ .)",
                p.authority
            ),
        ));
    }
    Ok(())
}

/// The form of a unique trader identifier: a country code (two capital letters) and 5 to 20
/// capital letters or digits of the national number. Check digits are the trader registry's
/// business (issue 8).
pub fn is_trader_identifier(s: &str) -> bool {
    s.len() >= 7
        && s.len() <= 22
        && s.is_char_boundary(2)
        && is_upper(&s[..2], 2)
        && s[2..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn check_trader(path: &str, s: &str) -> Result<(), EnvelopeError> {
    if is_trader_identifier(s) {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("{s:?} is not a trader identifier (country code + national number)"),
        ))
    }
}

/// `A-Z a-z 0-9 . _ -`, 1 to 64, first alphanumeric: safe as a file name on its own.
fn check_attachment_id(path: &str, s: &str) -> Result<(), EnvelopeError> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!(
                "{s:?} is not an attachment id (1-64 of A-Z a-z 0-9 . _ -, the first alphanumeric)"
            ),
        ))
    }
}

/// An HTTP token character (RFC 9110 `tchar`).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `type/subtype`, both tokens, 3 to 127 characters in all.
fn check_media_type(path: &str, s: &str) -> Result<(), EnvelopeError> {
    let ok = (3..=127).contains(&s.len())
        && s.split_once('/').is_some_and(|(t, sub)| {
            !t.is_empty() && !sub.is_empty() && t.bytes().chain(sub.bytes()).all(is_tchar)
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("{s:?} is not a media type type/subtype (3-127 characters, no parameters)"),
        ))
    }
}

/// A size in bytes: decimal digits, no sign, no leading zeros, within `u64`.
fn parse_size(path: &str, s: &str) -> Result<u64, EnvelopeError> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical
        .then(|| s.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| {
            invalid(
                path,
                format!("{s:?} is not a size in bytes (decimal digits, no leading zeros)"),
            )
        })
}

/// Exactly 64 lowercase hex digits.
fn parse_sha256(path: &str, s: &str) -> Result<[u8; 32], EnvelopeError> {
    let bad = || {
        invalid(
            path,
            format!("{s:?} is not a SHA-256 digest (64 lowercase hex digits)"),
        )
    };
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = (nibble(pair[0]).ok_or_else(bad)? << 4) | nibble(pair[1]).ok_or_else(bad)?;
    }
    Ok(out)
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Header {
    /// Checks every field; the first problem is reported with its path.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        const H: &str = "Envelope/Header";
        check_process(&format!("{H}/Process"), &self.process)?;
        check_part(&format!("{H}/Message"), &self.message, &self.process, "MSG")?;
        check_part(
            &format!("{H}/Transaction"),
            &self.transaction,
            &self.process,
            "TRN",
        )?;
        check_participant(&format!("{H}/Sender"), &self.sender)?;
        check_participant(&format!("{H}/Recipient"), &self.recipient)?;
        if self.sender == self.recipient {
            return Err(invalid(
                format!("{H}/Recipient"),
                "sender and recipient are the same participant",
            ));
        }
        if let Some(expires) = self.expires_at {
            if expires <= self.created_at {
                return Err(invalid(
                    format!("{H}/ExpiresAt"),
                    format!(
                        "{} is not after CreatedAt {}",
                        timestamp(&expires),
                        timestamp(&self.created_at)
                    ),
                ));
            }
        }
        if self.in_reply_to == Some(self.message_id) {
            return Err(invalid(
                format!("{H}/RelatesTo"),
                "a message cannot reply to itself",
            ));
        }
        check_document_type(&format!("{H}/Document/@type"), &self.document.type_code)?;
        check_semver(&format!("{H}/Document/@version"), &self.document.version)?;
        check_participant(
            &format!("{H}/Document/IssuingAuthority"),
            &self.document.issuing_authority,
        )?;
        for (i, t) in self.traders.iter().enumerate() {
            check_trader(&format!("{H}/Traders/Trader[{}]", i + 1), t)?;
        }
        let mut ids = HashSet::new();
        for (i, a) in self.attachments.iter().enumerate() {
            let at = format!("{H}/Attachments/Attachment[{}]", i + 1);
            check_attachment_id(&format!("{at}/@id"), &a.id)?;
            check_media_type(&format!("{at}/@mediaType"), &a.media_type)?;
            // Ids name files: two that differ only in case are the same file on some systems.
            if !ids.insert(a.id.to_ascii_lowercase()) {
                return Err(invalid(
                    format!("{at}/@id"),
                    format!("{:?} is the id of an earlier attachment", a.id),
                ));
            }
        }
        check_national_signatures(&self.national_signatures)
    }
}

/// Text a person reads (a name, a reason, a path): 1 to `max` characters, no control
/// characters, no surrounding whitespace.
fn check_words(path: &str, s: &str, max: usize) -> Result<(), EnvelopeError> {
    let ok = !s.is_empty()
        && s.chars().count() <= max
        && s.trim() == s
        && !s.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("{s:?} is not 1-{max} characters without control characters or surrounding whitespace"),
        ))
    }
}

/// The records' fields agree with their verdicts (the path names the first that does not).
fn check_national_signatures(list: &[NationalSignature]) -> Result<(), EnvelopeError> {
    const N: &str = "Envelope/Header/NationalSignatures";
    if list.len() > MAX_NATIONAL_SIGNATURES {
        return Err(invalid(
            N,
            format!(
                "{} records, over the limit of {MAX_NATIONAL_SIGNATURES}",
                list.len()
            ),
        ));
    }
    for (i, s) in list.iter().enumerate() {
        let at = format!("{N}/NationalSignature[{}]", i + 1);
        let field = |name: &str| format!("{at}/{name}");
        let named = [
            ("Covers", &s.covers),
            ("Signer", &s.signer),
            ("Issuer", &s.issuer),
            ("SerialNumber", &s.serial),
            ("SignatureMethod", &s.signature_method),
        ];
        match &s.verdict {
            NationalVerdict::Valid => {
                for (name, value) in named {
                    if value.is_none() {
                        return Err(invalid(field(name), "required in a valid record"));
                    }
                }
            }
            NationalVerdict::Unsigned => {
                if let Some((name, _)) = named.iter().find(|(_, v)| v.is_some()) {
                    return Err(invalid(
                        field(name),
                        "an unsigned record names no signature",
                    ));
                }
                if s.time_source != SigningTimeSource::Intake {
                    return Err(invalid(
                        format!("{at}/SigningTime/@source"),
                        "an unsigned document has only the intake time",
                    ));
                }
                if list.len() != 1 {
                    return Err(invalid(
                        format!("{at}/@verdict"),
                        "an unsigned record is the only record of its document",
                    ));
                }
            }
            NationalVerdict::Invalid(reason) => check_words(&field("Reason"), reason, 1024)?,
        }
        if let Some(c) = &s.covers {
            check_words(&field("Covers"), c, 512)?;
        }
        if let Some(v) = &s.signer {
            check_words(&field("Signer"), v, 1024)?;
        }
        if let Some(v) = &s.issuer {
            check_words(&field("Issuer"), v, 1024)?;
        }
        if let Some(v) = &s.serial {
            let ok = (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
            if !ok {
                return Err(invalid(
                    field("SerialNumber"),
                    format!("{v:?} is not a serial number (1-64 uppercase hex digits)"),
                ));
            }
        }
        if let Some(v) = &s.signature_method {
            let ok = (1..=256).contains(&v.len())
                && v.contains(':')
                && !v
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
            if !ok {
                return Err(invalid(
                    field("SignatureMethod"),
                    format!("{v:?} is not an algorithm URI"),
                ));
            }
        }
    }
    Ok(())
}

fn timestamp(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn urn(u: &Uuid) -> String {
    format!("urn:uuid:{}", u.hyphenated())
}

/// Reads the envelope's elements in order, refusing anything unexpected.
struct Cursor<'d> {
    doc: &'d Document,
    children: Vec<NodeId>,
    at: usize,
    path: String,
}

impl<'d> Cursor<'d> {
    fn new(doc: &'d Document, parent: NodeId, path: &str) -> Result<Self, EnvelopeError> {
        let mut children = Vec::new();
        for &c in doc.children(parent) {
            match doc.kind(c) {
                NodeKind::Element(_) => children.push(c),
                NodeKind::Text(t) if t.trim().is_empty() => {}
                NodeKind::Text(_) => {
                    return Err(invalid(path, "text is not allowed between header elements"))
                }
                NodeKind::Comment(_) | NodeKind::ProcessingInstruction { .. } => {}
            }
        }
        Ok(Self {
            doc,
            children,
            at: 0,
            path: path.to_owned(),
        })
    }

    fn peek_is(&self, ns: &str, local: &str) -> bool {
        self.children
            .get(self.at)
            .and_then(|c| self.doc.element(*c))
            .is_some_and(|e| e.is(ns, local))
    }

    fn optional(&mut self, ns: &str, local: &str) -> Option<NodeId> {
        if self.peek_is(ns, local) {
            self.at += 1;
            Some(self.children[self.at - 1])
        } else {
            None
        }
    }

    fn required(&mut self, ns: &str, local: &str) -> Result<NodeId, EnvelopeError> {
        self.optional(ns, local).ok_or_else(|| {
            let found = self
                .children
                .get(self.at)
                .and_then(|c| self.doc.element(*c))
                .map(|e| format!("found {}", e.name))
                .unwrap_or_else(|| "found nothing".into());
            invalid(
                format!("{}/{local}", self.path),
                format!("required; {found}"),
            )
        })
    }

    fn finish(&self) -> Result<(), EnvelopeError> {
        match self
            .children
            .get(self.at)
            .and_then(|c| self.doc.element(*c))
        {
            Some(e) => Err(invalid(
                format!("{}/{}", self.path, e.name),
                "unexpected element",
            )),
            None => Ok(()),
        }
    }
}

fn text_of(doc: &Document, id: NodeId, path: &str) -> Result<String, EnvelopeError> {
    if doc.child_elements(id).next().is_some() {
        return Err(invalid(path, "expected text, found elements"));
    }
    let t = doc.text_content(id);
    if t.is_empty() || t.trim() != t {
        return Err(invalid(
            path,
            format!("expected a value without surrounding whitespace, got {t:?}"),
        ));
    }
    Ok(t)
}

fn attr(doc: &Document, id: NodeId, name: &str, path: &str) -> Result<String, EnvelopeError> {
    doc.element(id)
        .and_then(|e| e.attribute(name))
        .map(str::to_owned)
        .ok_or_else(|| invalid(format!("{path}/@{name}"), "required attribute is missing"))
}

fn uuid_of(doc: &Document, id: NodeId, path: &str) -> Result<Uuid, EnvelopeError> {
    let t = text_of(doc, id, path)?;
    t.strip_prefix("urn:uuid:")
        .and_then(|u| Uuid::try_parse(u).ok())
        .ok_or_else(|| invalid(path, format!("{t:?} is not a urn:uuid: identifier")))
}

fn time_of(doc: &Document, id: NodeId, path: &str) -> Result<DateTime<FixedOffset>, EnvelopeError> {
    let t = text_of(doc, id, path)?;
    DateTime::parse_from_rfc3339(&t).map_err(|e| {
        invalid(
            path,
            format!("{t:?} is not an RFC 3339 time with offset: {e}"),
        )
    })
}

/// Refuses any content (elements or text other than whitespace) in an element that carries
/// only attributes.
fn empty_element(doc: &Document, id: NodeId, path: &str) -> Result<(), EnvelopeError> {
    let content = doc.children(id).iter().any(|c| match doc.kind(*c) {
        NodeKind::Element(_) => true,
        NodeKind::Text(t) => !t.trim().is_empty(),
        NodeKind::Comment(_) | NodeKind::ProcessingInstruction { .. } => false,
    });
    if content {
        Err(invalid(path, "must be empty; it carries only attributes"))
    } else {
        Ok(())
    }
}

/// Refuses attributes other than `allowed` (all in no namespace).
fn only_attributes(
    doc: &Document,
    id: NodeId,
    allowed: &[&str],
    path: &str,
) -> Result<(), EnvelopeError> {
    let Some(e) = doc.element(id) else {
        return Ok(());
    };
    match e
        .attributes
        .iter()
        .find(|a| a.namespace.is_some() || !allowed.contains(&a.name.local.as_str()))
    {
        Some(a) => Err(invalid(
            format!("{path}/@{}", a.name),
            "unexpected attribute",
        )),
        None => Ok(()),
    }
}

fn attachment_of(doc: &Document, id: NodeId, path: &str) -> Result<AttachmentRef, EnvelopeError> {
    empty_element(doc, id, path)?;
    only_attributes(doc, id, &["id", "mediaType", "size", "sha256"], path)?;
    let attachment_id = attr(doc, id, "id", path)?;
    let media_type = attr(doc, id, "mediaType", path)?;
    let size = parse_size(&format!("{path}/@size"), &attr(doc, id, "size", path)?)?;
    let sha256 = parse_sha256(&format!("{path}/@sha256"), &attr(doc, id, "sha256", path)?)?;
    Ok(AttachmentRef {
        id: attachment_id,
        media_type,
        size,
        sha256,
    })
}

/// The local name of the header's list of national signatures.
const NATIONAL_SIGNATURES: &str = "NationalSignatures";

fn write_national_signature(doc: &mut Document, list: NodeId, s: &NationalSignature) {
    let mut e = env("NationalSignature");
    e.set_attribute("verdict", s.verdict.as_str());
    let n = doc.append_element(list, e);
    for (name, value) in [
        ("Covers", &s.covers),
        ("Signer", &s.signer),
        ("Issuer", &s.issuer),
        ("SerialNumber", &s.serial),
        ("SignatureMethod", &s.signature_method),
    ] {
        if let Some(v) = value {
            text_element(doc, n, env(name), v);
        }
    }
    let mut t = env("SigningTime");
    t.set_attribute("source", s.time_source.as_str());
    text_element(doc, n, t, &timestamp(&s.signing_time));
    if let NationalVerdict::Invalid(reason) = &s.verdict {
        text_element(doc, n, env("Reason"), reason);
    }
}

/// One `env:NationalSignature`: its elements in order, each checked by `Header::validate`
/// after, the verdict and the time's source read here.
fn national_signature_of(
    doc: &Document,
    id: NodeId,
    path: &str,
) -> Result<NationalSignature, EnvelopeError> {
    only_attributes(doc, id, &["verdict"], path)?;
    let verdict_text = attr(doc, id, "verdict", path)?;
    let mut c = Cursor::new(doc, id, path)?;
    let text = |c: &mut Cursor<'_>, name: &str| -> Result<Option<String>, EnvelopeError> {
        match c.optional(ENVELOPE_NAMESPACE, name) {
            Some(n) => {
                only_attributes(doc, n, &[], &format!("{path}/{name}"))?;
                text_of(doc, n, &format!("{path}/{name}")).map(Some)
            }
            None => Ok(None),
        }
    };
    let covers = text(&mut c, "Covers")?;
    let signer = text(&mut c, "Signer")?;
    let issuer = text(&mut c, "Issuer")?;
    let serial = text(&mut c, "SerialNumber")?;
    let signature_method = text(&mut c, "SignatureMethod")?;
    let tnode = c.required(ENVELOPE_NAMESPACE, "SigningTime")?;
    let tpath = format!("{path}/SigningTime");
    only_attributes(doc, tnode, &["source"], &tpath)?;
    let signing_time = time_of(doc, tnode, &tpath)?;
    let time_source = match attr(doc, tnode, "source", &tpath)?.as_str() {
        "signature" => SigningTimeSource::Signature,
        "intake" => SigningTimeSource::Intake,
        other => {
            return Err(invalid(
                format!("{tpath}/@source"),
                format!("{other:?} is not signature or intake"),
            ))
        }
    };
    let reason = text(&mut c, "Reason")?;
    c.finish()?;
    let verdict = match (verdict_text.as_str(), reason) {
        ("valid", None) => NationalVerdict::Valid,
        ("unsigned", None) => NationalVerdict::Unsigned,
        ("invalid", Some(r)) => NationalVerdict::Invalid(r),
        ("invalid", None) => {
            return Err(invalid(
                format!("{path}/Reason"),
                "required in an invalid record",
            ))
        }
        ("valid" | "unsigned", Some(_)) => {
            return Err(invalid(
                format!("{path}/Reason"),
                format!("only an invalid record gives a reason, this one is {verdict_text}"),
            ))
        }
        (other, _) => {
            return Err(invalid(
                format!("{path}/@verdict"),
                format!("{other:?} is not valid, unsigned or invalid"),
            ))
        }
    };
    Ok(NationalSignature {
        verdict,
        covers,
        signer,
        issuer,
        serial,
        signature_method,
        signing_time,
        time_source,
    })
}

/// The local name of the body-by-reference marker.
const ATTACHMENT_BODY: &str = "AttachmentBody";

/// `<env:AttachmentBody ref="id"/>` as a document of its own.
fn attachment_body(id: &str) -> Document {
    let mut e = env(ATTACHMENT_BODY);
    e.namespace_decls.push(NamespaceDecl {
        prefix: Some("env".into()),
        uri: ENVELOPE_NAMESPACE.into(),
    });
    e.set_attribute("ref", id);
    Document::with_root(e)
}

/// When the body element `id` is the `env:AttachmentBody` marker, checks it: empty, only a
/// `ref` attribute, naming an attachment of `header`.
fn check_body(doc: &Document, id: NodeId, header: &Header) -> Result<(), EnvelopeError> {
    const B: &str = "Envelope/Body/AttachmentBody";
    if !doc
        .element(id)
        .is_some_and(|e| e.is(ENVELOPE_NAMESPACE, ATTACHMENT_BODY))
    {
        return Ok(());
    }
    empty_element(doc, id, B)?;
    only_attributes(doc, id, &["ref"], B)?;
    let r = attr(doc, id, "ref", B)?;
    if header.attachments.iter().any(|a| a.id == r) {
        Ok(())
    } else {
        Err(invalid(
            format!("{B}/@ref"),
            format!("{r:?} names no attachment in Envelope/Header/Attachments"),
        ))
    }
}

/// An attachment's `id` attribute is an XML identifier too (as `Id` and `ID` are): one equal to
/// an identifier in the body would make the signed envelope unverifiable (the verifier refuses
/// duplicate identifiers), so it is refused here, with the attachment's path.
fn check_ids_apart(doc: &Document, body: NodeId, header: &Header) -> Result<(), EnvelopeError> {
    if header.attachments.is_empty() {
        return Ok(());
    }
    for n in doc.descendants_or_self(body) {
        let Some(e) = doc.element(n) else { continue };
        for v in e.id_values() {
            if let Some(i) = header.attachments.iter().position(|a| a.id == v) {
                return Err(invalid(
                    format!("Envelope/Header/Attachments/Attachment[{}]/@id", i + 1),
                    format!(
                        "{v:?} is also an identifier in the body ({}); identifiers must be unique \
                         in the signed envelope",
                        doc.describe(n)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn participant_of(doc: &Document, id: NodeId, path: &str) -> Result<Participant, EnvelopeError> {
    Ok(Participant {
        country: attr(doc, id, "country", path)?,
        authority: attr(doc, id, "authority", path)?,
    })
}

impl Envelope {
    /// Parses and reads an envelope from bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Self::from_document(&xml::parse(bytes)?)
    }

    /// Reads an envelope from a parsed document (a trailing `ds:Signature` is allowed and
    /// left to the verifier).
    pub fn from_document(doc: &Document) -> Result<Self, EnvelopeError> {
        let root = doc.root();
        let re = doc
            .element(root)
            .filter(|e| e.is(ENVELOPE_NAMESPACE, "Envelope"))
            .ok_or_else(|| {
                invalid(
                    "Envelope",
                    format!("the document element is not {{{ENVELOPE_NAMESPACE}}}Envelope"),
                )
            })?;
        let version_text = re
            .attribute("version")
            .ok_or_else(|| invalid("Envelope/@version", "required attribute is missing"))?;
        let version = parse_version(version_text)?;
        if version.major != VERSION.major {
            return Err(EnvelopeError::UnsupportedVersion {
                found: version_text.to_owned(),
                supported: VERSION.major,
            });
        }

        let mut top = Cursor::new(doc, root, "Envelope")?;
        let header_node = top.required(ENVELOPE_NAMESPACE, "Header")?;
        let body_node = top.required(ENVELOPE_NAMESPACE, "Body")?;
        top.optional(DSIG_NAMESPACE, "Signature");
        top.finish()?;

        const H: &str = "Envelope/Header";
        let mut h = Cursor::new(doc, header_node, H)?;
        let p = |name: &str| format!("{H}/{name}");
        let message_id = uuid_of(
            doc,
            h.required(WSA_NAMESPACE, "MessageID")?,
            &p("MessageID"),
        )?;
        let in_reply_to = match h.optional(WSA_NAMESPACE, "RelatesTo") {
            Some(n) => Some(uuid_of(doc, n, &p("RelatesTo"))?),
            None => None,
        };
        let conversation_id = uuid_of(
            doc,
            h.required(ENVELOPE_NAMESPACE, "ConversationID")?,
            &p("ConversationID"),
        )?;
        let procedure_id = uuid_of(
            doc,
            h.required(ENVELOPE_NAMESPACE, "ProcedureID")?,
            &p("ProcedureID"),
        )?;
        let process = text_of(
            doc,
            h.required(ENVELOPE_NAMESPACE, "Process")?,
            &p("Process"),
        )?;
        let message = text_of(
            doc,
            h.required(ENVELOPE_NAMESPACE, "Message")?,
            &p("Message"),
        )?;
        let transaction = text_of(
            doc,
            h.required(ENVELOPE_NAMESPACE, "Transaction")?,
            &p("Transaction"),
        )?;
        let kind_text = text_of(doc, h.required(ENVELOPE_NAMESPACE, "Kind")?, &p("Kind"))?;
        let kind = MessageKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind_text)
            .ok_or_else(|| {
                invalid(
                    p("Kind"),
                    format!(
                        "{kind_text:?} is not request, response, notification, receipt or error"
                    ),
                )
            })?;
        let sender = participant_of(doc, h.required(ENVELOPE_NAMESPACE, "Sender")?, &p("Sender"))?;
        let recipient = participant_of(
            doc,
            h.required(ENVELOPE_NAMESPACE, "Recipient")?,
            &p("Recipient"),
        )?;
        let created_at = time_of(
            doc,
            h.required(ENVELOPE_NAMESPACE, "CreatedAt")?,
            &p("CreatedAt"),
        )?;
        let expires_at = match h.optional(ENVELOPE_NAMESPACE, "ExpiresAt") {
            Some(n) => Some(time_of(doc, n, &p("ExpiresAt"))?),
            None => None,
        };
        let dnode = h.required(ENVELOPE_NAMESPACE, "Document")?;
        let dpath = p("Document");
        let mut dc = Cursor::new(doc, dnode, &dpath)?;
        let issuer = dc.required(ENVELOPE_NAMESPACE, "IssuingAuthority")?;
        dc.finish()?;
        let document = DocumentRef {
            type_code: attr(doc, dnode, "type", &dpath)?,
            version: attr(doc, dnode, "version", &dpath)?,
            issuing_authority: participant_of(doc, issuer, &format!("{dpath}/IssuingAuthority"))?,
        };
        let mut traders = Vec::new();
        if let Some(tnode) = h.optional(ENVELOPE_NAMESPACE, "Traders") {
            let tpath = p("Traders");
            let mut tc = Cursor::new(doc, tnode, &tpath)?;
            while let Some(t) = tc.optional(ENVELOPE_NAMESPACE, "Trader") {
                traders.push(text_of(
                    doc,
                    t,
                    &format!("{tpath}/Trader[{}]", traders.len() + 1),
                )?);
            }
            tc.finish()?;
            if traders.is_empty() {
                return Err(invalid(tpath, "present but empty; omit it instead"));
            }
        }
        let mut attachments = Vec::new();
        if let Some(anode) = h.optional(ENVELOPE_NAMESPACE, "Attachments") {
            let apath = p("Attachments");
            let mut ac = Cursor::new(doc, anode, &apath)?;
            while let Some(a) = ac.optional(ENVELOPE_NAMESPACE, "Attachment") {
                attachments.push(attachment_of(
                    doc,
                    a,
                    &format!("{apath}/Attachment[{}]", attachments.len() + 1),
                )?);
            }
            ac.finish()?;
            if attachments.is_empty() {
                return Err(invalid(apath, "present but empty; omit it instead"));
            }
        }
        let mut national_signatures = Vec::new();
        if !version.has_national_signatures() && h.peek_is(ENVELOPE_NAMESPACE, NATIONAL_SIGNATURES)
        {
            return Err(invalid(
                p(NATIONAL_SIGNATURES),
                format!("not part of envelope format {version}; it needs {VERSION} or later"),
            ));
        }
        if version.has_national_signatures() {
            if let Some(nnode) = h.optional(ENVELOPE_NAMESPACE, NATIONAL_SIGNATURES) {
                let npath = p(NATIONAL_SIGNATURES);
                let mut nc = Cursor::new(doc, nnode, &npath)?;
                while let Some(n) = nc.optional(ENVELOPE_NAMESPACE, "NationalSignature") {
                    if national_signatures.len() == MAX_NATIONAL_SIGNATURES {
                        return Err(invalid(
                            npath,
                            format!("more than {MAX_NATIONAL_SIGNATURES} records"),
                        ));
                    }
                    national_signatures.push(national_signature_of(
                        doc,
                        n,
                        &format!(
                            "{npath}/NationalSignature[{}]",
                            national_signatures.len() + 1
                        ),
                    )?);
                }
                nc.finish()?;
                if national_signatures.is_empty() {
                    return Err(invalid(npath, "present but empty; omit it instead"));
                }
            }
        }
        h.finish()?;

        let body_elements: Vec<NodeId> = doc.child_elements(body_node).collect();
        let body_root = match body_elements.as_slice() {
            [one] => *one,
            _ => {
                return Err(invalid(
                    "Envelope/Body",
                    format!(
                        "must hold exactly one document, holds {}",
                        body_elements.len()
                    ),
                ))
            }
        };
        Cursor::new(doc, body_node, "Envelope/Body")?;
        let header = Header {
            message_id,
            conversation_id,
            procedure_id,
            in_reply_to,
            process,
            message,
            transaction,
            kind,
            sender,
            recipient,
            created_at,
            expires_at,
            document,
            traders,
            attachments,
            national_signatures,
        };
        header.validate()?;
        check_body(doc, body_root, &header)?;
        check_ids_apart(doc, body_root, &header)?;
        Ok(Envelope {
            version,
            header,
            body: Body::from_element(doc, body_root),
        })
    }

    /// Builds the envelope as a tree (to sign it, for instance). A by-reference body is
    /// written as its `env:AttachmentBody` marker, checked against the header's attachments.
    pub fn to_document(&self) -> Result<Document, EnvelopeError> {
        let content = self.body.document()?;
        Self::build_document(self.version, &self.header, &content)
    }

    /// The envelope tree for `header` around the document element of `content`, without
    /// canonicalising and re-reading the body first (what a sender does with a document it has
    /// just built or checked). Signed and canonicalised, it is the same envelope as
    /// `Envelope { body: Body::from_document(content), .. }.to_document()`.
    pub fn build_document(
        version: Version,
        header: &Header,
        content: &Document,
    ) -> Result<Document, EnvelopeError> {
        header.validate()?;
        if !header.national_signatures.is_empty() && !version.has_national_signatures() {
            return Err(invalid(
                "Envelope/@version",
                format!(
                    "{version} has no NationalSignatures; the header records some, which needs {VERSION}"
                ),
            ));
        }
        check_body(content, content.root(), header)?;
        check_ids_apart(content, content.root(), header)?;
        let mut root = Element::new(Some("env"), "Envelope", Some(ENVELOPE_NAMESPACE));
        root.namespace_decls.push(NamespaceDecl {
            prefix: Some("env".into()),
            uri: ENVELOPE_NAMESPACE.into(),
        });
        root.set_attribute("version", &version.to_string());
        let mut doc = Document::with_root(root);
        let r = doc.root();
        let header_node = doc.append_element(r, env("Header"));
        let h = header;
        text_element(&mut doc, header_node, wsa("MessageID"), &urn(&h.message_id));
        if let Some(id) = &h.in_reply_to {
            text_element(&mut doc, header_node, wsa("RelatesTo"), &urn(id));
        }
        text_element(
            &mut doc,
            header_node,
            env("ConversationID"),
            &urn(&h.conversation_id),
        );
        text_element(
            &mut doc,
            header_node,
            env("ProcedureID"),
            &urn(&h.procedure_id),
        );
        text_element(&mut doc, header_node, env("Process"), &h.process);
        text_element(&mut doc, header_node, env("Message"), &h.message);
        text_element(&mut doc, header_node, env("Transaction"), &h.transaction);
        text_element(&mut doc, header_node, env("Kind"), h.kind.as_str());
        doc.append_element(header_node, participant("Sender", &h.sender));
        doc.append_element(header_node, participant("Recipient", &h.recipient));
        text_element(
            &mut doc,
            header_node,
            env("CreatedAt"),
            &timestamp(&h.created_at),
        );
        if let Some(t) = &h.expires_at {
            text_element(&mut doc, header_node, env("ExpiresAt"), &timestamp(t));
        }
        let mut d = env("Document");
        d.set_attribute("type", &h.document.type_code);
        d.set_attribute("version", &h.document.version);
        let d = doc.append_element(header_node, d);
        doc.append_element(
            d,
            participant("IssuingAuthority", &h.document.issuing_authority),
        );
        if !h.traders.is_empty() {
            let t = doc.append_element(header_node, env("Traders"));
            for trader in &h.traders {
                text_element(&mut doc, t, env("Trader"), trader);
            }
        }
        if !h.attachments.is_empty() {
            let list = doc.append_element(header_node, env("Attachments"));
            for a in &h.attachments {
                let mut e = env("Attachment");
                e.set_attribute("id", &a.id);
                e.set_attribute("mediaType", &a.media_type);
                e.set_attribute("size", &a.size.to_string());
                e.set_attribute("sha256", &lower_hex(&a.sha256));
                doc.append_element(list, e);
            }
        }
        if !h.national_signatures.is_empty() {
            let list = doc.append_element(header_node, env(NATIONAL_SIGNATURES));
            for s in &h.national_signatures {
                write_national_signature(&mut doc, list, s);
            }
        }
        let body = doc.append_element(r, env("Body"));
        doc.import(body, content, content.root());
        Ok(doc)
    }

    /// The envelope tree for `header` whose body refers to the header attachment `id` instead
    /// of holding a document: the same envelope as
    /// `Envelope { body: Body::by_reference(id), .. }.to_document()`. `id` must name one of
    /// `header.attachments`.
    pub fn build_document_by_reference(
        version: Version,
        header: &Header,
        id: &str,
    ) -> Result<Document, EnvelopeError> {
        Self::build_document(version, header, &attachment_body(id))
    }

    /// The envelope in exclusive canonical form: what is signed and what goes on the wire.
    pub fn to_canonical_xml(&self) -> Result<String, EnvelopeError> {
        let doc = self.to_document()?;
        let bytes = c14n::canonicalize(&doc, NodeSet::document(), &C14nOptions::exclusive());
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn parse_version(s: &str) -> Result<Version, EnvelopeError> {
    let bad = || invalid("Envelope/@version", format!("{s:?} is not major.minor"));
    let (major, minor) = s.split_once('.').ok_or_else(bad)?;
    let num = |p: &str| {
        (!p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u16>().ok())
            .flatten()
    };
    Ok(Version {
        major: num(major).ok_or_else(bad)?,
        minor: num(minor).ok_or_else(bad)?,
    })
}

fn env(local: &str) -> Element {
    Element::new(Some("env"), local, Some(ENVELOPE_NAMESPACE))
}

fn wsa(local: &str) -> Element {
    let mut e = Element::new(Some("wsa"), local, Some(WSA_NAMESPACE));
    e.namespace_decls.push(NamespaceDecl {
        prefix: Some("wsa".into()),
        uri: WSA_NAMESPACE.into(),
    });
    e
}

fn participant(local: &str, p: &Participant) -> Element {
    let mut e = env(local);
    e.set_attribute("country", &p.country);
    e.set_attribute("authority", &p.authority);
    e
}

fn text_element(doc: &mut Document, parent: NodeId, e: Element, text: &str) {
    let id = doc.append_element(parent, e);
    doc.append_text(id, text);
}
