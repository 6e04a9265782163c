//! The signed envelope that carries one EAEU document between nodes (DESIGN §3).
//!
//! [`Envelope::from_document`] reads an envelope strictly: every header field in its place,
//! each value checked, unknown elements and unknown major versions refused, errors naming the
//! field path. [`Envelope::to_canonical_xml`] writes it in exclusive canonical form, so an
//! envelope read from canonical bytes writes back to the same bytes.

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
}

/// The body: one EAEU document, kept as its exclusive canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    canonical: String,
}

impl Body {
    /// The document element of `doc` (and everything in it).
    pub fn from_document(doc: &Document) -> Self {
        Self::from_element(doc, doc.root())
    }

    fn from_element(doc: &Document, id: NodeId) -> Self {
        let bytes = c14n::canonicalize(doc, NodeSet::subtree(id), &C14nOptions::exclusive());
        Self {
            canonical: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// The document as a tree of its own.
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
        };
        header.validate()?;
        Ok(Envelope {
            version,
            header,
            body: Body::from_element(doc, body_root),
        })
    }

    /// Builds the envelope as a tree (to sign it, for instance).
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
        let body = doc.append_element(r, env("Body"));
        doc.import(body, content, content.root());
        Ok(doc)
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
