//! Secure XML: a parser that reads the region's encodings (as UTF-8 from then on) and refuses
//! DTDs, entities and oversize input, a namespace-aware tree that keeps what canonicalisation
//! needs, and a serialiser.

mod encoding;
mod parse;
pub(crate) mod serialize;
mod tree;

pub use encoding::{EncodingError, InForce, SUPPORTED as SUPPORTED_ENCODINGS};
pub use parse::{
    parse, parse_text, parse_with_limits, to_utf8, Limits, ParseError, ParseErrorKind,
    DEFAULT_MEMORY_PER_BYTE, MEMORY_SLACK,
};
pub use tree::{
    Attribute, Document, Element, IdError, NamespaceDecl, NodeId, NodeKind, Position,
    QualifiedName, WSU_NAMESPACE, XML_NAMESPACE,
};
