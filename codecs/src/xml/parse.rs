//! The secure XML parser: XML 1.0 with namespaces into a [`Document`].
//!
//! The bytes are first decoded to UTF-8 (module `encoding`: UTF-8, UTF-16 with a BOM,
//! windows-1251, KOI8-R, ISO-8859-1/-5, US-ASCII; the declared encoding must match the
//! bytes), so the tree, its canonical form and everything written from it are UTF-8. UTF-8
//! input is parsed where it lies, without a copy.
//!
//! It refuses, with the line and column (of the decoded text: columns count characters): any
//! DOCTYPE (so no DTD, no entity declarations, no external entities: XXE and "billion laughs"
//! cannot start), references to entities other than the five predefined ones, characters
//! outside the XML `Char` production, undeclared prefixes, duplicate attributes, and anything
//! past the configured [`Limits`].

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::encoding::{self, EncodingError, Handed};
use super::tree::{
    position_of, Attribute, Document, Element, NamespaceDecl, Node, NodeId, NodeKind, Position,
    QualifiedName, XML_NAMESPACE,
};

const XMLNS_NAMESPACE: &str = "http://www.w3.org/2000/xmlns/";

/// Bounds on what the parser accepts. The defaults suit signed trade documents; large
/// attachments travel outside the XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes: the bytes as handed over, and again the UTF-8 text
    /// they decode to (windows-1251 Cyrillic doubles in UTF-8; UTF-16 Latin halves).
    pub max_bytes: usize,
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one element.
    pub max_attributes: usize,
    /// Longest element or attribute name, in bytes.
    pub max_name_len: usize,
    /// Most nodes (elements, text, comments, PIs) in the document.
    pub max_nodes: usize,
    /// Most memory the parsed tree may take per byte of input, with [`MEMORY_SLACK`] more for
    /// every document. The parser adds up what each node costs (its slot in the arena, its
    /// names, namespace, attributes and text) and refuses before the tree passes the budget,
    /// so a document of many tiny elements cannot cost memory out of proportion to its size.
    pub max_memory_per_byte: usize,
}

/// Memory every document's tree may take beyond [`Limits::max_memory_per_byte`] times its
/// size, so that small documents are never refused for their proportions.
pub const MEMORY_SLACK: usize = 1 << 20;

/// The default [`Limits::max_memory_per_byte`]. A node costs 168 bytes in the arena and its
/// strings on top, so an indented document of short elements (each line's indentation a text
/// node) needs more than 20: the project's samples, repeated to 4 MiB, need 14 to 25 (unit
/// test `samples_fit_the_memory_budget_with_room`). Nothing but tiny elements in a long
/// namespace needs more than 40.
pub const DEFAULT_MEMORY_PER_BYTE: usize = 32;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_depth: 128,
            max_attributes: 128,
            max_name_len: 256,
            max_nodes: 1_000_000,
            max_memory_per_byte: DEFAULT_MEMORY_PER_BYTE,
        }
    }
}

/// What was wrong with the input.
// Each `String` here is the offending name, reference, value or text from the input: the
// payload itself, which keeps the kind comparable (`PartialEq`) for callers and tests;
// `Syntax` is the tokenizer's message, kept as text for the same reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("DOCTYPE declarations are not accepted (no DTDs, no entity declarations, no external entities)")]
    DoctypeForbidden,
    #[error("reference to undeclared entity &{0}; (only &lt; &gt; &amp; &apos; &quot; and character references are allowed)")]
    UndeclaredEntity(String),
    #[error("invalid character reference &{0};")]
    InvalidCharacterReference(String),
    #[error("character U+{0:04X} is not allowed in XML")]
    IllegalCharacter(u32),
    #[error("input is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("elements nested deeper than the limit of {limit}")]
    TooDeep { limit: usize },
    #[error("element has more than the limit of {limit} attributes")]
    TooManyAttributes { limit: usize },
    #[error("name is {len} bytes long, over the limit of {limit} bytes")]
    NameTooLong { len: usize, limit: usize },
    #[error("document has more than the limit of {limit} nodes")]
    TooManyNodes { limit: usize },
    #[error("document of {size} bytes would need more than {limit} bytes of memory as a tree ({per_byte} per byte of input): too many elements, attributes or namespace copies for its size")]
    TooMuchMemory {
        size: usize,
        limit: usize,
        per_byte: usize,
    },
    /// The bytes cannot be read as text: an unsupported encoding, a declaration that does not
    /// match the bytes, bytes malformed in the encoding in force.
    #[error(transparent)]
    Encoding(EncodingError),
    #[error("XML version {0:?} is not supported; only 1.0")]
    UnsupportedVersion(String),
    #[error("namespace prefix {0:?} is not declared")]
    UndeclaredPrefix(String),
    #[error("attribute {0} appears more than once")]
    DuplicateAttribute(String),
    #[error("invalid namespace declaration: {0}")]
    InvalidNamespaceDeclaration(String),
    #[error("invalid name {0:?}")]
    InvalidName(String),
    #[error("'<' is not allowed in an attribute value")]
    LessThanInAttribute,
    #[error("the document has no root element")]
    NoRootElement,
    #[error("content after the root element: {0}")]
    ContentAfterRoot(String),
    #[error("text outside the root element")]
    TextOutsideRoot,
    #[error("{0}")]
    Syntax(String),
}

/// A parse failure with the place it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {kind}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub position: Position,
}

/// Parses with the default [`Limits`].
pub fn parse(input: &[u8]) -> Result<Document, ParseError> {
    parse_with_limits(input, &Limits::default())
}

/// Parses `input` under `limits`.
pub fn parse_with_limits(input: &[u8], limits: &Limits) -> Result<Document, ParseError> {
    let decoded = decode(input, limits, Handed::Bytes)?;
    Parser::new(&decoded.text, limits, decoded.declared).run()
}

/// Parses a document handed over as characters (a JSON string, say) rather than bytes: its
/// bytes here are UTF-8, so an XML declaration naming another encoding is refused
/// ([`EncodingError::Mismatch`]) rather than believed.
pub fn parse_text(input: &str, limits: &Limits) -> Result<Document, ParseError> {
    let decoded = decode(input.as_bytes(), limits, Handed::Text)?;
    Parser::new(&decoded.text, limits, decoded.declared).run()
}

/// The document's text in UTF-8, under the same encoding rules and errors as
/// [`parse_with_limits`] (and its size limit), for readers of XML outside this parser (the
/// reference imports): borrowed when the input is UTF-8 already.
pub fn to_utf8<'a>(input: &'a [u8], limits: &Limits) -> Result<Cow<'a, str>, ParseError> {
    decode(input, limits, Handed::Bytes).map(|d| d.text)
}

fn decode<'a>(
    input: &'a [u8],
    limits: &Limits,
    handed: Handed,
) -> Result<encoding::Decoded<'a>, ParseError> {
    if input.len() > limits.max_bytes {
        return Err(ParseError {
            kind: ParseErrorKind::TooLarge {
                size: input.len(),
                limit: limits.max_bytes,
            },
            position: Position { line: 1, column: 1 },
        });
    }
    encoding::decode(input, limits.max_bytes, handed).map_err(|f| ParseError {
        kind: ParseErrorKind::Encoding(f.error),
        position: f.position,
    })
}

/// Bytes of a node's place in its parent's list of children (4, doubled for the list's
/// growth).
const CHILD_SLOT: usize = 8;

/// What a string's allocation costs: its bytes in the allocator's 16-byte size classes.
fn string_held(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        s.len().div_ceil(16) * 16
    }
}

/// What an element holds beyond its slot: names, its copy of its namespace URI, namespace
/// declarations and attributes.
fn element_held(e: &Element) -> usize {
    let name =
        |n: &QualifiedName| n.prefix.as_deref().map_or(0, string_held) + string_held(&n.local);
    let uri = |u: &Option<String>| u.as_deref().map_or(0, string_held);
    let decls: usize = e
        .namespace_decls
        .iter()
        .map(|d| d.prefix.as_deref().map_or(0, string_held) + string_held(&d.uri))
        .sum::<usize>()
        + e.namespace_decls.capacity() * std::mem::size_of::<NamespaceDecl>();
    let attributes: usize = e
        .attributes
        .iter()
        .map(|a| name(&a.name) + uri(&a.namespace) + string_held(&a.value))
        .sum::<usize>()
        + e.attributes.capacity() * std::mem::size_of::<Attribute>();
    name(&e.name) + uri(&e.namespace) + decls + attributes
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Replaces CR LF and lone CR with LF, as XML 1.0 §2.11 requires of a parser.
fn normalize_line_ends(s: &str) -> Cow<'_, str> {
    if !s.contains('\r') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_name_start(c: char) -> bool {
    c == '_'
        || c.is_alphabetic()
        || matches!(c, '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || c.is_ascii_digit()
        || matches!(c, '-' | '.' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
        || c.is_alphanumeric()
}

/// True when a URI reference starts with a scheme (RFC 3986 §3.1), i.e. is not relative.
fn has_scheme(uri: &str) -> bool {
    match uri.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// Checks an NCName (a name without colon).
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_name_start(c) => chars.all(is_name_char),
        _ => false,
    }
}

struct Parser<'a> {
    text: &'a str,
    limits: &'a Limits,
    doc: Document,
    /// Open elements.
    stack: Vec<NodeId>,
    /// Namespace bindings in scope: (prefix, uri), with the number pushed per open element.
    bindings: Vec<(String, String)>,
    bindings_per_level: Vec<usize>,
    seen_root: bool,
    /// Offset where the current event started.
    event_start: usize,
    /// Bytes the tree holds outside the arena's slots (names, namespaces, attributes, text,
    /// child lists, the copy of the source), as far as the parser can tell.
    held: usize,
    /// Most bytes the tree may take: [`Limits::max_memory_per_byte`] times the size of the
    /// UTF-8 text (what the tree holds), plus [`MEMORY_SLACK`].
    budget: usize,
    /// The XML declaration's `encoding` as the decoder read it: the tokenizer's reading must
    /// agree.
    declared: Option<String>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, limits: &'a Limits, declared: Option<String>) -> Self {
        let doc = Document {
            nodes: Vec::new(),
            top: Vec::new(),
            root: NodeId(0),
            source: None,
        };
        Self {
            text,
            limits,
            doc,
            stack: Vec::new(),
            bindings: Vec::new(),
            bindings_per_level: Vec::new(),
            seen_root: false,
            event_start: 0,
            held: text.len(),
            budget: text
                .len()
                .saturating_mul(limits.max_memory_per_byte)
                .saturating_add(MEMORY_SLACK),
            declared,
        }
    }

    fn error_at(&self, offset: usize, kind: ParseErrorKind) -> ParseError {
        ParseError {
            kind,
            position: position_of(self.text, offset),
        }
    }

    fn error(&self, kind: ParseErrorKind) -> ParseError {
        self.error_at(self.event_start, kind)
    }

    /// In valid UTF-8 the only characters outside XML's `Char` are the C0 controls other than
    /// tab, LF and CR, and U+FFFE/U+FFFF (EF BF BE/BF): a byte scan finds them.
    fn check_chars(&self) -> Result<(), ParseError> {
        let bytes = self.text.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let bad = match b {
                0x09 | 0x0A | 0x0D => None,
                0x00..=0x1F => Some(u32::from(b)),
                0xEF if bytes.get(i + 1) == Some(&0xBF) => match bytes.get(i + 2) {
                    Some(0xBE) => Some(0xFFFE),
                    Some(0xBF) => Some(0xFFFF),
                    _ => None,
                },
                _ => None,
            };
            if let Some(c) = bad {
                return Err(self.error_at(i, ParseErrorKind::IllegalCharacter(c)));
            }
        }
        Ok(())
    }

    fn run(mut self) -> Result<Document, ParseError> {
        self.check_chars()?;
        let mut reader = Reader::from_str(self.text);
        {
            let cfg = reader.config_mut();
            cfg.check_end_names = true;
            cfg.check_comments = true;
            cfg.expand_empty_elements = false;
            cfg.trim_text(false);
        }
        let mut first_event = true;
        loop {
            self.event_start = reader.buffer_position() as usize;
            let event = match reader.read_event() {
                Ok(e) => e,
                Err(e) => {
                    let offset = reader.error_position() as usize;
                    return Err(self.error_at(offset, ParseErrorKind::Syntax(e.to_string())));
                }
            };
            let is_first = std::mem::replace(&mut first_event, false);
            match event {
                Event::Decl(decl) => {
                    if !is_first {
                        return Err(self.error(ParseErrorKind::Syntax(
                            "XML declaration is only allowed at the very start".into(),
                        )));
                    }
                    let version = decl
                        .version()
                        .map_err(|e| self.error(ParseErrorKind::Syntax(e.to_string())))?;
                    if version.as_ref() != "1.0" {
                        return Err(
                            self.error(ParseErrorKind::UnsupportedVersion(version.into_owned()))
                        );
                    }
                    let enc = decl
                        .encoding()
                        .transpose()
                        .map_err(|e| self.error(ParseErrorKind::Syntax(e.to_string())))?
                        .map(|e| e.into_owned());
                    // The text was decoded by what the decoder read in the declaration; a
                    // declaration it could not read is one the tokenizer must not read
                    // otherwise.
                    if enc != self.declared {
                        return Err(self.error(ParseErrorKind::Syntax(format!(
                            "malformed XML declaration (encoding {:?})",
                            enc.unwrap_or_default()
                        ))));
                    }
                }
                Event::DocType(_) => return Err(self.error(ParseErrorKind::DoctypeForbidden)),
                Event::Start(start) => self.open(&start, false)?,
                Event::Empty(start) => self.open(&start, true)?,
                Event::End(_) => self.close(),
                Event::Text(t) => {
                    let raw = t.into_inner();
                    if let Some(i) = raw.find("]]>") {
                        return Err(self.error_at(
                            self.event_start + i,
                            ParseErrorKind::Syntax("']]>' is not allowed in text".into()),
                        ));
                    }
                    let s = normalize_line_ends(&raw);
                    self.text_node(&s)?;
                }
                Event::CData(t) => {
                    let raw = t.into_inner();
                    let s = normalize_line_ends(&raw);
                    if self.stack.is_empty() {
                        return Err(self.error(ParseErrorKind::TextOutsideRoot));
                    }
                    self.text_node(&s)?;
                }
                Event::GeneralRef(r) => {
                    let name = r.into_inner().into_owned();
                    let c = self.resolve_reference(&name)?;
                    if self.stack.is_empty() {
                        return Err(self.error(ParseErrorKind::TextOutsideRoot));
                    }
                    self.text_node(&c.to_string())?;
                }
                Event::Comment(t) => {
                    let raw = t.into_inner();
                    let s = normalize_line_ends(&raw).into_owned();
                    self.misc_node(NodeKind::Comment(s))?;
                }
                Event::PI(pi) => {
                    let target = pi.target().to_owned();
                    if target.eq_ignore_ascii_case("xml") {
                        return Err(self.error(ParseErrorKind::Syntax(
                            "processing instruction target 'xml' is reserved".into(),
                        )));
                    }
                    if !is_ncname(&target) {
                        return Err(self.error(ParseErrorKind::InvalidName(target)));
                    }
                    // Only XML's S separates target and data; U+00A0 and friends are data.
                    let data = pi.content().trim_start_matches([' ', '\t', '\r', '\n']);
                    let data = normalize_line_ends(data).into_owned();
                    self.misc_node(NodeKind::ProcessingInstruction { target, data })?;
                }
                Event::Eof => break,
            }
        }
        if !self.stack.is_empty() {
            return Err(self.error_at(
                self.text.len(),
                ParseErrorKind::Syntax("unexpected end of input: elements left open".into()),
            ));
        }
        if !self.seen_root {
            return Err(self.error_at(self.text.len(), ParseErrorKind::NoRootElement));
        }
        self.doc.source = Some(std::sync::Arc::from(self.text));
        Ok(self.doc)
    }

    fn resolve_reference(&self, name: &str) -> Result<char, ParseError> {
        if let Some(num) = name.strip_prefix('#') {
            let value = if let Some(hex) = num.strip_prefix('x') {
                u32::from_str_radix(hex, 16).ok()
            } else {
                num.parse::<u32>().ok()
            };
            let valid = !num.is_empty()
                && !num.starts_with('+')
                && !num.starts_with("x+")
                && !num.starts_with('-');
            return match value.and_then(char::from_u32) {
                Some(c) if valid && is_xml_char(c) => Ok(c),
                Some(c) if valid => Err(self.error(ParseErrorKind::IllegalCharacter(c as u32))),
                _ => Err(self.error(ParseErrorKind::InvalidCharacterReference(name.to_owned()))),
            };
        }
        match name {
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "amp" => Ok('&'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            _ => Err(self.error(ParseErrorKind::UndeclaredEntity(name.to_owned()))),
        }
    }

    /// Resolves references in an attribute value after line-end and whitespace normalisation
    /// (XML 1.0 §3.3.3 for CDATA attributes).
    fn attribute_value(&self, raw: &str) -> Result<String, ParseError> {
        if raw.contains('<') {
            return Err(self.error(ParseErrorKind::LessThanInAttribute));
        }
        let normalized = normalize_line_ends(raw);
        let mut out = String::with_capacity(normalized.len());
        let mut rest: &str = &normalized;
        while let Some(amp) = rest.find('&') {
            out.extend(rest[..amp].chars().map(|c| match c {
                '\t' | '\n' => ' ',
                c => c,
            }));
            let after = &rest[amp + 1..];
            let Some(semi) = after.find(';') else {
                return Err(self.error(ParseErrorKind::Syntax(
                    "'&' in attribute value is not the start of a reference".into(),
                )));
            };
            out.push(self.resolve_reference(&after[..semi])?);
            rest = &after[semi + 1..];
        }
        out.extend(rest.chars().map(|c| match c {
            '\t' | '\n' => ' ',
            c => c,
        }));
        Ok(out)
    }

    fn lookup(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(XML_NAMESPACE);
        }
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
            .filter(|u| !(prefix.is_empty() && u.is_empty()))
    }

    fn split_name(&self, raw: &str) -> Result<QualifiedName, ParseError> {
        if raw.len() > self.limits.max_name_len {
            return Err(self.error(ParseErrorKind::NameTooLong {
                len: raw.len(),
                limit: self.limits.max_name_len,
            }));
        }
        match raw.split_once(':') {
            Some((p, l)) if is_ncname(p) && is_ncname(l) => Ok(QualifiedName::new(Some(p), l)),
            None if is_ncname(raw) => Ok(QualifiedName::new(None, raw)),
            _ => Err(self.error(ParseErrorKind::InvalidName(raw.to_owned()))),
        }
    }

    fn count_node(&self) -> Result<(), ParseError> {
        if self.doc.nodes.len() >= self.limits.max_nodes {
            return Err(self.error(ParseErrorKind::TooManyNodes {
                limit: self.limits.max_nodes,
            }));
        }
        Ok(())
    }

    /// Accounts for a node about to be added (`held` bytes of its own beyond its slot) and
    /// refuses when the tree would then pass its budget, counting the arena's next growth
    /// before it happens.
    fn charge(&mut self, held: usize) -> Result<(), ParseError> {
        let nodes = &self.doc.nodes;
        let slots = if nodes.len() == nodes.capacity() {
            nodes.capacity().saturating_mul(2).max(4)
        } else {
            nodes.capacity()
        };
        let held = held.saturating_add(CHILD_SLOT);
        let need = slots
            .saturating_mul(std::mem::size_of::<Node>())
            .saturating_add(self.held)
            .saturating_add(held);
        self.grow(need, held)
    }

    /// Accounts for `held` more bytes (text appended to a text node) within the budget.
    fn charge_text(&mut self, held: usize) -> Result<(), ParseError> {
        let need = self
            .doc
            .nodes
            .capacity()
            .saturating_mul(std::mem::size_of::<Node>())
            .saturating_add(self.held)
            .saturating_add(held);
        self.grow(need, held)
    }

    fn grow(&mut self, need: usize, held: usize) -> Result<(), ParseError> {
        if need > self.budget {
            return Err(self.error(ParseErrorKind::TooMuchMemory {
                size: self.text.len(),
                limit: self.budget,
                per_byte: self.limits.max_memory_per_byte,
            }));
        }
        self.held += held;
        Ok(())
    }

    fn open(&mut self, start: &BytesStart<'_>, empty: bool) -> Result<(), ParseError> {
        if self.stack.is_empty() && self.seen_root {
            return Err(self.error(ParseErrorKind::ContentAfterRoot(
                "a second root element".into(),
            )));
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.error(ParseErrorKind::TooDeep {
                limit: self.limits.max_depth,
            }));
        }
        self.count_node()?;
        let raw_name = start.name().into_inner().to_owned();
        let name = self.split_name(&raw_name)?;

        let mut decls = Vec::new();
        let mut raw_attrs = Vec::new();
        let mut attributes = start.attributes();
        attributes.with_checks(true);
        for attr in attributes {
            let attr = attr.map_err(|e| self.error(ParseErrorKind::Syntax(e.to_string())))?;
            if decls.len() + raw_attrs.len() >= self.limits.max_attributes {
                return Err(self.error(ParseErrorKind::TooManyAttributes {
                    limit: self.limits.max_attributes,
                }));
            }
            let key = attr.key.into_inner().to_owned();
            let qname = self.split_name(&key)?;
            let value = self.attribute_value(&attr.value)?;
            match (qname.prefix.as_deref(), qname.local.as_str()) {
                (None, "xmlns") => decls.push(NamespaceDecl {
                    prefix: None,
                    uri: value,
                }),
                (Some("xmlns"), p) => {
                    if p == "xmlns" {
                        return Err(self.error(ParseErrorKind::InvalidNamespaceDeclaration(
                            "the prefix xmlns cannot be declared".into(),
                        )));
                    }
                    if (p == "xml") != (value == XML_NAMESPACE) {
                        return Err(self.error(ParseErrorKind::InvalidNamespaceDeclaration(
                            format!("the prefix xml is bound only to {XML_NAMESPACE}"),
                        )));
                    }
                    if value.is_empty() {
                        return Err(self.error(ParseErrorKind::InvalidNamespaceDeclaration(
                            format!("prefix {p:?} cannot be bound to an empty URI in XML 1.0"),
                        )));
                    }
                    if value == XMLNS_NAMESPACE {
                        return Err(self.error(ParseErrorKind::InvalidNamespaceDeclaration(
                            format!("{XMLNS_NAMESPACE} cannot be bound to a prefix"),
                        )));
                    }
                    decls.push(NamespaceDecl {
                        prefix: Some(p.to_owned()),
                        uri: value,
                    });
                }
                _ => raw_attrs.push((qname, value)),
            }
        }
        if let Some(d) = decls
            .iter()
            .find(|d| !d.uri.is_empty() && !has_scheme(&d.uri))
        {
            return Err(
                self.error(ParseErrorKind::InvalidNamespaceDeclaration(format!(
                    "relative namespace URI {:?} (deprecated by the W3C; Canonical XML cannot \
                 canonicalise it)",
                    d.uri
                ))),
            );
        }
        if decls
            .iter()
            .any(|d| d.prefix.is_none() && d.uri == XML_NAMESPACE)
        {
            return Err(
                self.error(ParseErrorKind::InvalidNamespaceDeclaration(format!(
                    "{XML_NAMESPACE} cannot be the default namespace"
                ))),
            );
        }
        for d in &decls {
            self.bindings
                .push((d.prefix.clone().unwrap_or_default(), d.uri.clone()));
        }
        self.bindings_per_level.push(decls.len());

        let namespace = match &name.prefix {
            Some(p) => Some(
                self.lookup(p)
                    .ok_or_else(|| self.error(ParseErrorKind::UndeclaredPrefix(p.clone())))?
                    .to_owned(),
            ),
            None => self.lookup("").map(str::to_owned),
        };
        let mut attrs: Vec<Attribute> = Vec::with_capacity(raw_attrs.len());
        for (qname, value) in raw_attrs {
            let ns = match &qname.prefix {
                Some(p) => Some(
                    self.lookup(p)
                        .ok_or_else(|| self.error(ParseErrorKind::UndeclaredPrefix(p.clone())))?
                        .to_owned(),
                ),
                None => None,
            };
            if attrs
                .iter()
                .any(|a| a.namespace == ns && a.name.local == qname.local)
            {
                return Err(self.error(ParseErrorKind::DuplicateAttribute(qname.to_string())));
            }
            attrs.push(Attribute {
                name: qname,
                namespace: ns,
                value,
            });
        }

        let element = Element {
            name,
            namespace,
            namespace_decls: decls,
            attributes: attrs,
            children: Vec::new(),
        };
        self.charge(element_held(&element))?;
        let parent = self.stack.last().copied();
        let id = self
            .doc
            .push_node(parent, NodeKind::Element(element), Some(self.event_start));
        match parent {
            Some(p) => {
                if let Some(e) = self.doc.element_mut(p) {
                    e.children.push(id);
                }
            }
            None => {
                self.doc.top.push(id);
                self.doc.root = id;
                self.seen_root = true;
            }
        }
        self.stack.push(id);
        if empty {
            self.close();
        }
        Ok(())
    }

    fn close(&mut self) {
        self.stack.pop();
        let n = self.bindings_per_level.pop().unwrap_or(0);
        self.bindings.truncate(self.bindings.len() - n);
    }

    fn text_node(&mut self, s: &str) -> Result<(), ParseError> {
        let Some(&parent) = self.stack.last() else {
            if s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
                return Ok(());
            }
            return Err(self.error(if self.seen_root {
                ParseErrorKind::ContentAfterRoot("text".into())
            } else {
                ParseErrorKind::TextOutsideRoot
            }));
        };
        if s.is_empty() {
            return Ok(());
        }
        // Adjacent text, CDATA and references form one text node, as in the XPath data model.
        let last = self
            .doc
            .element(parent)
            .and_then(|e| e.children.last().copied());
        if let Some(last) = last {
            if matches!(self.doc.nodes[last.index()].kind, NodeKind::Text(_)) {
                self.charge_text(s.len())?;
                if let NodeKind::Text(t) = &mut self.doc.nodes[last.index()].kind {
                    t.push_str(s);
                }
                return Ok(());
            }
        }
        self.count_node()?;
        self.charge(string_held(s))?;
        let id = self.doc.push_node(
            Some(parent),
            NodeKind::Text(s.to_owned()),
            Some(self.event_start),
        );
        if let Some(e) = self.doc.element_mut(parent) {
            e.children.push(id);
        }
        Ok(())
    }

    fn misc_node(&mut self, kind: NodeKind) -> Result<(), ParseError> {
        self.count_node()?;
        let held = match &kind {
            NodeKind::Comment(c) => string_held(c),
            NodeKind::ProcessingInstruction { target, data } => {
                string_held(target) + string_held(data)
            }
            NodeKind::Element(e) => element_held(e),
            NodeKind::Text(t) => string_held(t),
        };
        self.charge(held)?;
        let parent = self.stack.last().copied();
        let id = self.doc.push_node(parent, kind, Some(self.event_start));
        match parent {
            Some(p) => {
                if let Some(e) = self.doc.element_mut(p) {
                    e.children.push(id);
                }
            }
            None => self.doc.top.push(id),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> ParseError {
        match parse(input.as_bytes()) {
            Ok(_) => panic!("expected a parse error for {input:?}"),
            Err(e) => e,
        }
    }

    fn err_with(input: &str, limits: Limits) -> ParseErrorKind {
        match parse_with_limits(input.as_bytes(), &limits) {
            Ok(_) => panic!("expected a parse error for {input:?}"),
            Err(e) => e.kind,
        }
    }

    #[test]
    fn doctype_is_refused_with_its_position() {
        let e = err("<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<r>&x;</r>");
        assert_eq!(e.kind, ParseErrorKind::DoctypeForbidden);
        assert_eq!(e.position, Position { line: 2, column: 1 });
    }

    #[test]
    fn undeclared_entity_is_refused_not_expanded() {
        let e = err("<r>\n  a &lol; b</r>");
        assert_eq!(e.kind, ParseErrorKind::UndeclaredEntity("lol".into()));
        assert_eq!(e.position.line, 2);
    }

    #[test]
    fn predefined_and_character_references_resolve() {
        let doc =
            parse(b"<r a=\"&lt;&#x41;&#66;&quot;\">&amp;&apos;&#x10348;</r>").expect("parses");
        let root = doc.element(doc.root()).expect("root");
        assert_eq!(root.attribute("a"), Some("<AB\""));
        assert_eq!(doc.text_content(doc.root()), "&'\u{10348}");
    }

    #[test]
    fn character_reference_to_a_non_xml_char_is_refused() {
        assert_eq!(err("<r>&#0;</r>").kind, ParseErrorKind::IllegalCharacter(0));
        assert_eq!(
            err("<r>&#xFFFE;</r>").kind,
            ParseErrorKind::IllegalCharacter(0xFFFE)
        );
        assert!(matches!(
            err("<r>&#xZZ;</r>").kind,
            ParseErrorKind::InvalidCharacterReference(_)
        ));
    }

    #[test]
    fn control_characters_in_the_input_are_refused() {
        let e = err("<r>a\u{1}</r>");
        assert_eq!(e.kind, ParseErrorKind::IllegalCharacter(1));
        assert_eq!(e.position, Position { line: 1, column: 5 });
    }

    #[test]
    fn line_ends_are_normalised_in_text_and_attributes() {
        let doc = parse(b"<r a=\"x\r\ny\tz&#13;\">1\r\n2\r3&#13;</r>").expect("parses");
        let root = doc.element(doc.root()).expect("root");
        assert_eq!(root.attribute("a"), Some("x y z\r"));
        assert_eq!(doc.text_content(doc.root()), "1\n2\n3\r");
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            err_with("<r>0123456789</r>", limits),
            ParseErrorKind::TooLarge {
                size: 17,
                limit: 10
            }
        ));
        let deep = format!("{}{}", "<a>".repeat(5), "</a>".repeat(5));
        let limits = Limits {
            max_depth: 4,
            ..Limits::default()
        };
        assert_eq!(
            err_with(&deep, limits),
            ParseErrorKind::TooDeep { limit: 4 }
        );
        let limits = Limits {
            max_attributes: 2,
            ..Limits::default()
        };
        assert_eq!(
            err_with("<r a=\"1\" b=\"2\" c=\"3\"/>", limits),
            ParseErrorKind::TooManyAttributes { limit: 2 }
        );
        let limits = Limits {
            max_name_len: 3,
            ..Limits::default()
        };
        assert_eq!(
            err_with("<abcd/>", limits),
            ParseErrorKind::NameTooLong { len: 4, limit: 3 }
        );
        let limits = Limits {
            max_nodes: 3,
            ..Limits::default()
        };
        assert_eq!(
            err_with("<r><a/><b/><c/></r>", limits),
            ParseErrorKind::TooManyNodes { limit: 3 }
        );
    }

    /// A document of `elements` empty elements in one namespace, each `<p:e/>`.
    fn tiny_elements(elements: usize) -> String {
        format!(
            "<p:r xmlns:p=\"urn:EEC:M:ComplexDataObjects\">{}</p:r>",
            "<p:e/>".repeat(elements)
        )
    }

    #[test]
    fn many_tiny_elements_are_refused_for_their_memory_before_the_node_limit() {
        // 3.5 MB of tiny elements: 580,000 nodes, under max_nodes, but each costs over 200
        // bytes in the tree (slot, names, its copy of the namespace URI).
        let doc = tiny_elements(580_000);
        let e = parse(doc.as_bytes()).map(|_| ()).unwrap_err();
        let limit = doc.len() * DEFAULT_MEMORY_PER_BYTE + MEMORY_SLACK;
        assert_eq!(
            e.kind,
            ParseErrorKind::TooMuchMemory {
                size: doc.len(),
                limit,
                per_byte: DEFAULT_MEMORY_PER_BYTE
            }
        );
        assert!(e.to_string().contains("too many elements"), "{e}");
        // The same elements in a document padded with text are within the budget.
        let padded = format!(
            "<p:r xmlns:p=\"urn:x\">{}{}</p:r>",
            "<p:e/>".repeat(1_000),
            "x".repeat(1_000 * 40)
        );
        assert!(parse(padded.as_bytes()).is_ok());
    }

    #[test]
    fn memory_budget_counts_namespace_copies() {
        // One long namespace URI declared once, copied into every element that uses it: the
        // bytes of the input are few, the copies many.
        let uri = format!("urn:{}", "u".repeat(4_000));
        let doc = format!("<p:r xmlns:p=\"{uri}\">{}</p:r>", "<p:e/>".repeat(2_000));
        assert!(matches!(
            err(&doc).kind,
            ParseErrorKind::TooMuchMemory { .. }
        ));
        // Small documents always have the slack.
        assert!(parse(tiny_elements(2_000).as_bytes()).is_ok());
    }

    #[test]
    fn samples_fit_the_memory_budget_with_room() {
        // A fifth of the default to spare.
        let limits = Limits {
            max_memory_per_byte: DEFAULT_MEMORY_PER_BYTE * 4 / 5,
            ..Limits::default()
        };
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let mut seen = 0;
        for dir in std::fs::read_dir(&samples).expect("samples").flatten() {
            for file in std::fs::read_dir(dir.path()).expect("sample dir").flatten() {
                let path = file.path();
                if path.extension().is_none_or(|e| e != "xml") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("sample");
                // Repeated to well past the slack, as a document with many goods items would
                // be: the root's content many times over.
                let body = &text[text.find("?>").map_or(0, |i| i + 2)..];
                let root_end = body.find('>').expect("root") + 1;
                let close = body.rfind("</").expect("root end");
                let inner = &body[root_end..close];
                let big = format!(
                    "{}{}{}",
                    &body[..root_end],
                    inner.repeat((4 << 20) / inner.len().max(1)),
                    &body[close..]
                );
                let parsed = parse_with_limits(
                    big.as_bytes(),
                    &Limits {
                        max_bytes: 16 << 20,
                        ..limits
                    },
                );
                assert!(
                    !matches!(
                        parsed.as_ref().map_err(|e| &e.kind),
                        Err(ParseErrorKind::TooMuchMemory { .. })
                    ),
                    "{}: {:?}",
                    path.display(),
                    parsed.map(|_| ())
                );
                seen += 1;
            }
        }
        assert!(seen > 10, "{seen} samples");
    }

    #[test]
    fn default_depth_limit_stops_deep_nesting() {
        let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
        assert_eq!(
            parse(deep.as_bytes()).map(|_| ()).unwrap_err().kind,
            ParseErrorKind::TooDeep { limit: 128 }
        );
    }

    #[test]
    fn namespaces_resolve_and_undeclared_prefixes_are_refused() {
        let doc = parse(b"<a:r xmlns:a=\"urn:a\" xmlns=\"urn:d\"><c a:x=\"1\" y=\"2\"/></a:r>")
            .expect("parses");
        let root = doc.element(doc.root()).expect("root");
        assert_eq!(root.namespace.as_deref(), Some("urn:a"));
        let child = doc.child_elements(doc.root()).next().expect("child");
        let c = doc.element(child).expect("element");
        assert_eq!(c.namespace.as_deref(), Some("urn:d"));
        assert_eq!(c.attribute_ns("urn:a", "x"), Some("1"));
        assert_eq!(c.attribute("y"), Some("2"));
        assert_eq!(
            err("<r><b:c/></r>").kind,
            ParseErrorKind::UndeclaredPrefix("b".into())
        );
    }

    #[test]
    fn default_namespace_can_be_undeclared() {
        let doc = parse(b"<r xmlns=\"urn:d\"><c xmlns=\"\"/></r>").expect("parses");
        let child = doc.child_elements(doc.root()).next().expect("child");
        assert_eq!(doc.element(child).expect("element").namespace, None);
    }

    #[test]
    fn duplicate_attributes_are_refused_also_through_prefixes() {
        assert!(matches!(
            err("<r a=\"1\" a=\"2\"/>").kind,
            ParseErrorKind::Syntax(_) | ParseErrorKind::DuplicateAttribute(_)
        ));
        assert_eq!(
            err("<r xmlns:p=\"urn:x\" xmlns:q=\"urn:x\" p:a=\"1\" q:a=\"2\"/>").kind,
            ParseErrorKind::DuplicateAttribute("q:a".into())
        );
    }

    #[test]
    fn reserved_namespace_bindings_are_refused() {
        for input in [
            "<r xmlns:xml=\"urn:other\"/>",
            "<r xmlns:xmlns=\"urn:x\"/>",
            "<r xmlns:p=\"\"/>",
            "<r xmlns:p=\"http://www.w3.org/2000/xmlns/\"/>",
            "<r xmlns=\"http://www.w3.org/XML/1998/namespace\"/>",
        ] {
            assert!(
                matches!(
                    err(input).kind,
                    ParseErrorKind::InvalidNamespaceDeclaration(_)
                ),
                "{input}"
            );
        }
    }

    #[test]
    fn only_xml_1_0_is_accepted() {
        assert_eq!(
            err("<?xml version=\"1.1\"?><r/>").kind,
            ParseErrorKind::UnsupportedVersion("1.1".into())
        );
    }

    /// Russian with ё, which each Cyrillic encoding puts elsewhere.
    const RU: &str = "Пшеница твёрдая, 3-й класс";

    fn encoded(label: &str, with: &'static encoding_rs::Encoding, text: &str) -> Vec<u8> {
        let doc =
            format!("<?xml version=\"1.0\" encoding=\"{label}\"?>\n<r a=\"{text}\">{text}</r>");
        let (bytes, used, lossy) = with.encode(&doc);
        assert!(!lossy && used == with, "{label} encodes the test text");
        bytes.into_owned()
    }

    fn utf16(bom: bool, little: bool, doc: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let units = std::iter::once(0xFEFF)
            .filter(|_| bom)
            .chain(doc.encode_utf16());
        for u in units {
            out.extend(if little {
                u.to_le_bytes()
            } else {
                u.to_be_bytes()
            });
        }
        out
    }

    fn reads_as(bytes: &[u8], text: &str) {
        let doc = parse(bytes).unwrap_or_else(|e| panic!("{e}"));
        let root = doc.element(doc.root()).expect("root");
        assert_eq!(root.attribute("a"), Some(text));
        assert_eq!(doc.text_content(doc.root()), text);
    }

    #[test]
    fn cyrillic_encodings_read_to_the_same_text() {
        for (label, with, ya) in [
            ("windows-1251", encoding_rs::WINDOWS_1251, 0xFF),
            ("KOI8-R", encoding_rs::KOI8_R, 0xD1),
            ("ISO-8859-5", encoding_rs::ISO_8859_5, 0xEF),
            ("cp1251", encoding_rs::WINDOWS_1251, 0xFF),
        ] {
            let bytes = encoded(label, with, RU);
            reads_as(&bytes, RU);
            // The encoder is not checked against itself alone: 'я' is where the standard puts it.
            let doc = format!("<?xml version=\"1.0\" encoding=\"{label}\"?><r>\u{44F}</r>");
            let b = with.encode(&doc).0.into_owned();
            assert_eq!(b[b.len() - 5], ya, "{label}");
        }
    }

    #[test]
    fn iso_8859_1_is_latin_1_and_not_windows_1252() {
        for label in ["ISO-8859-1", "latin1", "iso_8859-1:1987"] {
            let mut bytes = format!("<?xml version=\"1.0\" encoding=\"{label}\"?><r>").into_bytes();
            bytes.extend(b"\xE9\x80\xFF</r>");
            let doc = parse(&bytes).expect("parses");
            // 0x80 is the C1 control U+0080 (XML 1.0 allows it), not WHATWG's euro sign.
            assert_eq!(
                doc.text_content(doc.root()),
                "\u{E9}\u{80}\u{FF}",
                "{label}"
            );
        }
    }

    #[test]
    fn utf16_with_a_byte_order_mark_reads_in_both_orders() {
        for little in [true, false] {
            for decl in ["", "<?xml version=\"1.0\" encoding=\"UTF-16\"?>"] {
                let doc = format!("{decl}<r a=\"{RU}\">{RU}</r>");
                reads_as(&utf16(true, little, &doc), RU);
            }
            let own = if little { "UTF-16LE" } else { "UTF-16BE" };
            let doc = format!("<?xml version=\"1.0\" encoding=\"{own}\"?><r a=\"x\">x</r>");
            reads_as(&utf16(true, little, &doc), "x");
        }
        // Outside the BMP: a surrogate pair.
        reads_as(
            &utf16(true, true, "<r a=\"\u{10348}\">\u{10348}</r>"),
            "\u{10348}",
        );
    }

    fn encoding_err(bytes: &[u8]) -> (EncodingError, Position, String) {
        match parse(bytes) {
            Ok(_) => panic!(
                "expected an encoding error for {:?}",
                String::from_utf8_lossy(bytes)
            ),
            Err(e) => match e.kind.clone() {
                ParseErrorKind::Encoding(k) => (k, e.position, e.to_string()),
                other => panic!("expected an encoding error, got {other:?}"),
            },
        }
    }

    #[test]
    fn windows_1251_declared_utf8_names_the_declaration_the_bytes_and_the_offset() {
        let doc = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r a=\"{RU}\"/>");
        let bytes = encoding_rs::WINDOWS_1251.encode(&doc).0.into_owned();
        let at = bytes.iter().position(|b| *b >= 0x80).expect("Cyrillic");
        let (e, position, text) = encoding_err(&bytes);
        assert_eq!(
            e,
            EncodingError::Malformed {
                by: encoding::InForce::Declared("UTF-8".into()),
                encoding: "UTF-8",
                found: format!("byte 0x{:02X}", bytes[at]),
                offset: at,
            }
        );
        assert_eq!(position, Position { line: 2, column: 7 });
        assert_eq!(
            text,
            format!(
                "2:7: declared encoding \"UTF-8\": byte 0xCF at byte offset {at}: not valid UTF-8"
            )
        );
    }

    #[test]
    fn non_utf8_without_a_declaration_is_refused_as_utf8() {
        let (e, position, text) = encoding_err(b"<r>\n ab\xCF\xF8</r>");
        assert!(
            matches!(
                e,
                EncodingError::Malformed {
                    by: encoding::InForce::Default,
                    offset: 7,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(position, Position { line: 2, column: 4 });
        assert!(text.contains("no encoding declaration, so UTF-8"), "{text}");
        // After a UTF-8 BOM the offset still counts from the first byte.
        let (e, _, _) = encoding_err(b"\xEF\xBB\xBF<r>\xFF</r>");
        assert!(
            matches!(e, EncodingError::Malformed { offset: 6, .. }),
            "{e:?}"
        );
        assert!(
            parse("\u{FEFF}<r/>".as_bytes()).is_ok(),
            "a UTF-8 BOM is allowed"
        );
    }

    #[test]
    fn a_byte_order_mark_of_another_encoding_than_declared_is_refused() {
        let decl = |enc: &str| format!("<?xml version=\"1.0\" encoding=\"{enc}\"?><r/>");
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (
                utf16(true, true, &decl("windows-1251")),
                "windows-1251",
                "a UTF-16LE byte order mark",
            ),
            (
                utf16(true, false, &decl("UTF-8")),
                "UTF-8",
                "a UTF-16BE byte order mark",
            ),
            (
                utf16(true, true, &decl("UTF-16BE")),
                "UTF-16BE",
                "a UTF-16LE byte order mark",
            ),
            (
                [b"\xEF\xBB\xBF".as_slice(), decl("KOI8-R").as_bytes()].concat(),
                "KOI8-R",
                "a UTF-8 byte order mark",
            ),
            (
                decl("UTF-16").into_bytes(),
                "UTF-16",
                "no UTF-16 byte order mark",
            ),
        ];
        for (bytes, declared, found) in cases {
            let (e, position, text) = encoding_err(&bytes);
            assert!(
                matches!(&e, EncodingError::Mismatch { declared: d, found: f, offset: 0 } if d == declared && f.contains(found)),
                "{declared}: {e:?}"
            );
            assert_eq!(position, Position { line: 1, column: 1 });
            assert!(
                text.contains(&format!(
                    "declared encoding \"{declared}\" does not match the bytes"
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn utf16_without_a_byte_order_mark_is_refused() {
        for (little, order) in [(true, "LE"), (false, "BE")] {
            let (e, _, text) = encoding_err(&utf16(
                false,
                little,
                "<?xml version=\"1.0\" encoding=\"UTF-16\"?><r/>",
            ));
            assert_eq!(e, EncodingError::Utf16WithoutBom(order));
            assert!(
                text.contains("requires UTF-16 documents to begin with one"),
                "{text}"
            );
            let (e, _, _) = encoding_err(&utf16(false, little, "<r/>"));
            assert_eq!(e, EncodingError::Utf16WithoutBom(order));
        }
    }

    #[test]
    fn malformed_utf16_is_refused_at_its_offset() {
        // An unpaired high surrogate, then 'x'.
        let mut bytes = utf16(true, true, "<r>ab");
        let at = bytes.len();
        bytes.extend([0x00, 0xD8, b'x', 0x00]);
        bytes.extend(utf16(false, true, "</r>"));
        let (e, position, text) = encoding_err(&bytes);
        assert!(
            matches!(&e, EncodingError::Malformed { by: encoding::InForce::ByteOrderMark("UTF-16LE"), encoding: "UTF-16LE", offset, .. } if *offset == at),
            "{e:?}"
        );
        assert_eq!(position, Position { line: 1, column: 6 });
        assert!(text.contains("a UTF-16LE byte order mark"), "{text}");
        // An odd byte at the end.
        let mut odd = utf16(true, false, "<r/>");
        odd.push(b'\n');
        assert!(matches!(
            encoding_err(&odd).0,
            EncodingError::Malformed {
                encoding: "UTF-16BE",
                ..
            }
        ));
    }

    #[test]
    fn bytes_outside_the_declared_encoding_are_refused() {
        let (e, _, _) = encoding_err(b"<?xml version=\"1.0\" encoding=\"US-ASCII\"?><r>\xE9</r>");
        assert!(
            matches!(
                e,
                EncodingError::Malformed {
                    encoding: "US-ASCII",
                    offset: 44,
                    ..
                }
            ),
            "{e:?}"
        );
        // windows-1251 leaves 0x98 unassigned (WHATWG reads it as U+0098, iconv and Microsoft's
        // table refuse it): refused, never replaced.
        let (e, _, _) =
            encoding_err(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><r>\xCF\x98</r>");
        assert!(
            matches!(
                e,
                EncodingError::Malformed {
                    encoding: "windows-1251",
                    offset: 49,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn unsupported_encodings_are_refused_by_name() {
        for name in [
            "EBCDIC-CP-US",
            "UTF-32",
            "UTF-7",
            "windows-1252",
            "Shift_JIS",
            "nonsense",
        ] {
            let (e, _, text) =
                encoding_err(format!("<?xml version=\"1.0\" encoding=\"{name}\"?><r/>").as_bytes());
            assert_eq!(e, EncodingError::Unsupported(name.into()));
            assert!(text.contains("supported: UTF-8, UTF-16 (with a byte order mark), windows-1251, KOI8-R, ISO-8859-1, ISO-8859-5"), "{text}");
        }
        for (bytes, what) in [
            (&b"\xFF\xFE\x00\x00<\x00\x00\x00"[..], "UTF-32LE"),
            (&b"\x00\x00\xFE\xFF"[..], "UTF-32BE"),
            (&b"\x00\x00\x00<"[..], "UTF-32BE"),
            (&b"\x4C\x6F\xA7\x94\x93\x40"[..], "EBCDIC"),
        ] {
            let (e, _, _) = encoding_err(bytes);
            assert!(
                matches!(e, EncodingError::UnsupportedDetected(w) if w.starts_with(what)),
                "{what}: {e:?}"
            );
        }
    }

    #[test]
    fn the_size_limit_counts_the_decoded_text_too() {
        let bytes = encoded("windows-1251", encoding_rs::WINDOWS_1251, &RU.repeat(20));
        let limits = Limits {
            max_bytes: bytes.len(),
            ..Limits::default()
        };
        let e = parse_with_limits(&bytes, &limits).map(|_| ()).unwrap_err();
        assert!(
            matches!(&e.kind, ParseErrorKind::Encoding(EncodingError::TooLarge { encoding: "windows-1251", size, limit }) if *size > *limit && *limit == bytes.len()),
            "{e}"
        );
        let limits = Limits {
            max_bytes: bytes.len() * 2,
            ..Limits::default()
        };
        assert!(parse_with_limits(&bytes, &limits).is_ok());
    }

    #[test]
    fn positions_are_of_the_decoded_text() {
        let doc = format!("<?xml version=\"1.0\" encoding=\"KOI8-R\"?>\n<r>{RU}<p:x/></r>");
        let bytes = encoding_rs::KOI8_R.encode(&doc).0.into_owned();
        let e = parse(&bytes).map(|_| ()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::UndeclaredPrefix("p".into()));
        assert_eq!(
            e.position,
            Position {
                line: 2,
                column: 4 + RU.chars().count()
            }
        );
        let e = parse(&utf16(true, true, &format!("\n<r>{RU}<p:x/></r>")))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            e.position,
            Position {
                line: 2,
                column: 4 + RU.chars().count()
            }
        );
    }

    #[test]
    fn text_handed_as_characters_must_not_declare_another_encoding() {
        let limits = Limits::default();
        let doc = format!("<?xml version=\"1.0\" encoding=\"windows-1251\"?><r>{RU}</r>");
        let e = parse_text(&doc, &limits).map(|_| ()).unwrap_err();
        assert!(
            matches!(&e.kind, ParseErrorKind::Encoding(EncodingError::Mismatch { declared, found, .. }) if declared == "windows-1251" && found.contains("handed over as text")),
            "{e}"
        );
        for ok in [
            format!("<?xml version=\"1.0\" encoding=\"utf-8\"?><r>{RU}</r>"),
            format!("\u{FEFF}<r>{RU}</r>"),
        ] {
            let d = parse_text(&ok, &limits).expect("parses");
            assert_eq!(d.text_content(d.root()), RU);
        }
    }

    #[test]
    fn utf8_input_is_not_copied_to_be_decoded() {
        let input = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><r>ё</r>".as_bytes();
        assert!(matches!(
            to_utf8(input, &Limits::default()),
            Ok(Cow::Borrowed(_))
        ));
        let koi = b"<?xml version='1.0' encoding='KOI8-R'?><r>\xA3</r>";
        assert_eq!(
            to_utf8(koi, &Limits::default()).expect("decodes"),
            "<?xml version='1.0' encoding='KOI8-R'?><r>ё</r>"
        );
    }

    #[test]
    fn a_declaration_the_decoder_cannot_read_is_refused() {
        // The tokenizer reads an encoding where the decoder saw none: refused, not guessed.
        let e = err("<?xml version=\"1.0\" encoding=\"KOI8-R\" standalone=\"yes\" ?\n><r/>");
        assert!(matches!(e.kind, ParseErrorKind::Syntax(_)), "{e}");
    }

    #[test]
    fn the_decoder_never_panics_on_arbitrary_bytes_after_any_start() {
        let starts: [&[u8]; 9] = [
            b"",
            b"\xEF\xBB\xBF",
            b"\xFF\xFE",
            b"\xFE\xFF",
            b"<?xml version='1.0' encoding='windows-1251'?>",
            b"<?xml version='1.0' encoding='KOI8-R'?>",
            b"<?xml version='1.0' encoding='ISO-8859-1'?>",
            b"<?xml version='1.0' encoding='US-ASCII'?>",
            b"<?xml version='1.0' encoding='UTF-16'?>",
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for start in starts {
            for _ in 0..300 {
                let len = (next() % 24) as usize;
                let mut bytes = start.to_vec();
                bytes.extend((0..len).map(|_| next() as u8));
                // Errors carry a position inside the input; success is fine too.
                if let Err(e) = parse(&bytes) {
                    assert!(e.position.line >= 1 && e.position.column >= 1, "{e}");
                }
            }
        }
    }

    #[test]
    fn document_structure_is_checked() {
        assert_eq!(err("").kind, ParseErrorKind::NoRootElement);
        assert_eq!(err("<!-- c -->").kind, ParseErrorKind::NoRootElement);
        assert!(matches!(
            err("<a/><b/>").kind,
            ParseErrorKind::ContentAfterRoot(_)
        ));
        assert!(matches!(
            err("<a/>text").kind,
            ParseErrorKind::ContentAfterRoot(_)
        ));
        assert_eq!(err("text<a/>").kind, ParseErrorKind::TextOutsideRoot);
        assert!(matches!(err("<a><b></a>").kind, ParseErrorKind::Syntax(_)));
        assert!(matches!(err("<a>").kind, ParseErrorKind::Syntax(_)));
        assert!(matches!(
            err("<a b=\"<\"/>").kind,
            ParseErrorKind::LessThanInAttribute
        ));
        assert!(matches!(err("<1a/>").kind, ParseErrorKind::InvalidName(_)));
        assert!(matches!(
            err("<a:b:c xmlns:a=\"urn:a\"/>").kind,
            ParseErrorKind::InvalidName(_)
        ));
    }

    #[test]
    fn errors_report_line_and_column() {
        let e = err("<r>\n  <a>\n    <b:x/>\n  </a>\n</r>");
        assert_eq!(e.position, Position { line: 3, column: 5 });
        assert_eq!(e.to_string(), "3:5: namespace prefix \"b\" is not declared");
    }

    #[test]
    fn text_cdata_and_references_merge_into_one_text_node() {
        let doc = parse(b"<r>a<![CDATA[<b>]]>&amp;c</r>").expect("parses");
        assert_eq!(doc.children(doc.root()).len(), 1);
        assert_eq!(doc.text_content(doc.root()), "a<b>&c");
    }

    #[test]
    fn pi_data_keeps_leading_non_xml_whitespace() {
        let doc = parse("<r><?p \u{A0}x?><?q \t\u{3000}y?></r>".as_bytes()).expect("parses");
        let kids = doc.children(doc.root());
        assert_eq!(
            doc.kind(kids[0]),
            &NodeKind::ProcessingInstruction {
                target: "p".into(),
                data: "\u{A0}x".into()
            }
        );
        assert_eq!(
            doc.kind(kids[1]),
            &NodeKind::ProcessingInstruction {
                target: "q".into(),
                data: "\u{3000}y".into()
            }
        );
    }

    #[test]
    fn cdata_end_marker_in_text_is_refused() {
        let e = err("<r>\n a ]]> b</r>");
        assert!(matches!(e.kind, ParseErrorKind::Syntax(_)), "{e}");
        assert_eq!(e.position, Position { line: 2, column: 4 });
        assert!(parse(b"<r>]]&gt; <![CDATA[ ]] ]]></r>").is_ok());
    }

    #[test]
    fn relative_namespace_uris_are_refused() {
        for input in [
            "<r xmlns=\"relative/path\"/>",
            "<p:r xmlns:p=\"../x\"/>",
            "<r xmlns=\"1x:y\"/>",
        ] {
            assert!(
                matches!(
                    err(input).kind,
                    ParseErrorKind::InvalidNamespaceDeclaration(_)
                ),
                "{input}"
            );
        }
        for input in [
            "<r xmlns=\"urn:x\"/>",
            "<r xmlns=\"http://e.org/a\"/>",
            "<r xmlns=\"\"/>",
            "<r xmlns=\"a+b.c-d:x\"/>",
        ] {
            assert!(parse(input.as_bytes()).is_ok(), "{input}");
        }
    }

    #[test]
    fn comments_and_pis_are_kept() {
        let doc =
            parse(b"<?p  data here?><!--c--><r><?q?><!-- x --></r><!--after-->").expect("parses");
        assert_eq!(doc.top_level().len(), 4);
        assert_eq!(
            doc.kind(doc.top_level()[0]),
            &NodeKind::ProcessingInstruction {
                target: "p".into(),
                data: "data here".into()
            }
        );
        assert!(err("<r><!-- a -- b --></r>").to_string().contains("1:"));
    }
}
