//! The secure XML parser: UTF-8 XML 1.0 with namespaces into a [`Document`].
//!
//! It refuses, with the line and column: any DOCTYPE (so no DTD, no entity declarations, no
//! external entities: XXE and "billion laughs" cannot start), references to entities other than
//! the five predefined ones, characters outside the XML `Char` production, undeclared prefixes,
//! duplicate attributes, and anything past the configured [`Limits`].

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::tree::{
    position_of, Attribute, Document, Element, NamespaceDecl, Node, NodeId, NodeKind, Position,
    QualifiedName, XML_NAMESPACE,
};

const XMLNS_NAMESPACE: &str = "http://www.w3.org/2000/xmlns/";

/// Bounds on what the parser accepts. The defaults suit signed trade documents; large
/// attachments travel outside the XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes.
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
    #[error("input is not valid UTF-8 (byte offset {0})")]
    InvalidUtf8(usize),
    #[error("encoding {0:?} is not supported; documents must be UTF-8")]
    UnsupportedEncoding(String),
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
    let at_start = Position { line: 1, column: 1 };
    if input.len() > limits.max_bytes {
        return Err(ParseError {
            kind: ParseErrorKind::TooLarge {
                size: input.len(),
                limit: limits.max_bytes,
            },
            position: at_start,
        });
    }
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = std::str::from_utf8(input).map_err(|e| {
        let offset = e.valid_up_to();
        let prefix = String::from_utf8_lossy(&input[..offset]).into_owned();
        ParseError {
            kind: ParseErrorKind::InvalidUtf8(offset),
            position: position_of(&prefix, offset),
        }
    })?;
    Parser::new(text, limits).run()
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
    /// Most bytes the tree may take: [`Limits::max_memory_per_byte`] times the input's size,
    /// plus [`MEMORY_SLACK`].
    budget: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, limits: &'a Limits) -> Self {
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
                    if let Some(enc) = decl.encoding() {
                        let enc =
                            enc.map_err(|e| self.error(ParseErrorKind::Syntax(e.to_string())))?;
                        let enc = enc.into_owned();
                        if !enc.eq_ignore_ascii_case("utf-8") {
                            return Err(self.error(ParseErrorKind::UnsupportedEncoding(enc)));
                        }
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
    fn only_utf8_xml_1_0_is_accepted() {
        assert_eq!(
            err("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r/>").kind,
            ParseErrorKind::UnsupportedEncoding("ISO-8859-1".into())
        );
        assert_eq!(
            err("<?xml version=\"1.1\"?><r/>").kind,
            ParseErrorKind::UnsupportedVersion("1.1".into())
        );
        let e = parse(b"<r>\xff</r>").map(|_| ()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::InvalidUtf8(3));
        assert!(
            parse("\u{FEFF}<r/>".as_bytes()).is_ok(),
            "a UTF-8 BOM is allowed"
        );
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
