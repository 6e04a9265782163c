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

/// The envelope format version this code writes; it reads any `1.x`.
pub const VERSION: Version = Version { major: 1, minor: 0 };

/// `major.minor` of the envelope format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
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
        Ok(())
    }
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
