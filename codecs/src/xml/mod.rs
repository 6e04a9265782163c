//! Secure XML: a parser that refuses DTDs, entities and oversize input, a namespace-aware tree
//! that keeps what canonicalisation needs, and a serialiser.

mod parse;
pub(crate) mod serialize;
mod tree;

pub use parse::{
    parse, parse_with_limits, Limits, ParseError, ParseErrorKind, DEFAULT_MEMORY_PER_BYTE,
    MEMORY_SLACK,
};
pub use tree::{
    Attribute, Document, Element, IdError, NamespaceDecl, NodeId, NodeKind, Position,
    QualifiedName, WSU_NAMESPACE, XML_NAMESPACE,
};
