//! Element paths: how a caller names the element a signature must cover.
//!
//! A path is absolute and walks child elements from the document element, one step per
//! element, each step a namespace and a local name: `/{urn:a}Envelope/{urn:a}Body` (Clark
//! notation), `/Root/Child` (no namespace), or `/soap:Envelope/soap:Body` with prefixes the
//! caller binds ([`ElementPath::parse_with`]). No positions, wildcards or predicates: a step that
//! matches more than one sibling makes the path ambiguous, and resolving it is refused rather
//! than guessed, because "the first Body" is exactly what signature-wrapping attacks exploit.

use std::fmt;
use std::str::FromStr;

use crate::xml::{Document, NodeId};

/// One step: the element's namespace (`None` for no namespace) and local name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Step {
    pub namespace: Option<String>,
    pub local: String,
}

/// An absolute path of element steps from the document element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ElementPath {
    steps: Vec<Step>,
}

/// Why a path's text was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error(
        "element path {path:?}: must start with '/' (an absolute path from the document element)"
    )]
    NotAbsolute { path: String },
    #[error("element path {path:?}: empty step (\"//\" and a trailing '/' are not accepted)")]
    EmptyStep { path: String },
    #[error("element path {path:?}: step {step:?}: {reason}")]
    BadStep {
        path: String,
        step: String,
        reason: &'static str,
    },
    #[error("element path {path:?}: prefix {prefix:?} is not bound (bind it, or write the step as {{namespace}}{local})")]
    UnboundPrefix {
        path: String,
        prefix: String,
        local: String,
    },
}

/// Why a path did not name exactly one element of a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no element at {path}")]
    NotFound { path: String },
    #[error("{count} elements match {path} ({locations}): the path must name exactly one")]
    Ambiguous {
        path: String,
        count: usize,
        locations: String,
    },
}

impl ElementPath {
    /// Parses Clark-notation or unprefixed steps; a prefixed step is refused as unbound.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        Self::parse_with(text, &[])
    }

    /// Parses steps, resolving `prefix:local` with `bindings` (prefix, namespace URI).
    pub fn parse_with(text: &str, bindings: &[(&str, &str)]) -> Result<Self, PathError> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| PathError::NotAbsolute {
                path: text.to_owned(),
            })?;
        let mut steps = Vec::new();
        let mut chars = rest;
        loop {
            let (step, after) = split_step(chars);
            if step.is_empty() {
                return Err(PathError::EmptyStep {
                    path: text.to_owned(),
                });
            }
            steps.push(parse_step(text, step, bindings)?);
            match after {
                Some(next) => chars = next,
                None => break,
            }
        }
        Ok(Self { steps })
    }

    /// A path from steps given as (namespace, local) pairs.
    pub fn from_steps<'a>(steps: impl IntoIterator<Item = (Option<&'a str>, &'a str)>) -> Self {
        Self {
            steps: steps
                .into_iter()
                .map(|(namespace, local)| Step {
                    namespace: namespace.map(str::to_owned),
                    local: local.to_owned(),
                })
                .collect(),
        }
    }

    /// The path of `node` in `doc` (which may match other elements too).
    pub fn of(doc: &Document, node: NodeId) -> Self {
        let mut steps = Vec::new();
        let mut cur = Some(node);
        while let Some(n) = cur {
            if let Some(e) = doc.element(n) {
                steps.push(Step {
                    namespace: e.namespace.clone(),
                    local: e.name.local.clone(),
                });
            }
            cur = doc.parent(n);
        }
        steps.reverse();
        Self { steps }
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The one element of `doc` this path names.
    pub fn resolve(&self, doc: &Document) -> Result<NodeId, ResolveError> {
        let mut current = vec![doc.root()];
        for (i, step) in self.steps.iter().enumerate() {
            let matches = |n: &NodeId| {
                doc.element(*n).is_some_and(|e| {
                    e.name.local == step.local
                        && e.namespace.as_deref() == step.namespace.as_deref()
                })
            };
            let found: Vec<NodeId> = if i == 0 {
                current.into_iter().filter(matches).collect()
            } else {
                current
                    .iter()
                    .flat_map(|p| doc.child_elements(*p))
                    .filter(matches)
                    .collect()
            };
            match found.len() {
                0 => {
                    return Err(ResolveError::NotFound {
                        path: self.to_string(),
                    })
                }
                1 => {}
                count => {
                    return Err(ResolveError::Ambiguous {
                        path: self.to_string(),
                        count,
                        locations: found
                            .iter()
                            .map(|n| doc.describe(*n))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
            current = found;
        }
        current
            .first()
            .copied()
            .ok_or_else(|| ResolveError::NotFound {
                path: self.to_string(),
            })
    }

    /// Whether `node` of `doc` is the element at this path (by its ancestry, not by lookup).
    pub fn names(&self, doc: &Document, node: NodeId) -> bool {
        let mut chain = Vec::new();
        let mut cur = Some(node);
        while let Some(n) = cur {
            if doc.element(n).is_some() {
                chain.push(n);
            }
            cur = doc.parent(n);
        }
        chain.reverse();
        chain.len() == self.steps.len()
            && chain.iter().zip(&self.steps).all(|(n, s)| {
                doc.element(*n).is_some_and(|e| {
                    e.name.local == s.local && e.namespace.as_deref() == s.namespace.as_deref()
                })
            })
    }
}

/// Splits off the first step; a `{…}` namespace may contain '/'.
fn split_step(text: &str) -> (&str, Option<&str>) {
    let search_from = if text.starts_with('{') {
        text.find('}').map_or(text.len(), |i| i + 1)
    } else {
        0
    };
    match text[search_from..].find('/') {
        Some(i) => (&text[..search_from + i], Some(&text[search_from + i + 1..])),
        None => (text, None),
    }
}

fn parse_step(path: &str, step: &str, bindings: &[(&str, &str)]) -> Result<Step, PathError> {
    let bad = |reason| PathError::BadStep {
        path: path.to_owned(),
        step: step.to_owned(),
        reason,
    };
    let (namespace, local) = if let Some(rest) = step.strip_prefix('{') {
        let (ns, local) = rest.split_once('}').ok_or_else(|| bad("unclosed '{'"))?;
        if ns.is_empty() {
            (None, local)
        } else {
            (Some(ns.to_owned()), local)
        }
    } else if let Some((prefix, local)) = step.split_once(':') {
        let uri = bindings
            .iter()
            .find(|(p, _)| *p == prefix)
            .map(|(_, uri)| (*uri).to_owned())
            .ok_or_else(|| PathError::UnboundPrefix {
                path: path.to_owned(),
                prefix: prefix.to_owned(),
                local: local.to_owned(),
            })?;
        (Some(uri), local)
    } else {
        (None, step)
    };
    if local.is_empty() {
        return Err(bad("no local name"));
    }
    if local.contains([':', '{', '}', '[', ']', '*', '@', '(', ')', ' ']) {
        return Err(bad(
            "a local name only: no predicates, positions, wildcards or axes",
        ));
    }
    Ok(Step {
        namespace,
        local: local.to_owned(),
    })
}

impl fmt::Display for ElementPath {
    /// Clark notation, which [`ElementPath::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            match &s.namespace {
                Some(ns) => write!(f, "/{{{ns}}}{}", s.local)?,
                None => write!(f, "/{}", s.local)?,
            }
        }
        Ok(())
    }
}

impl FromStr for ElementPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";

    #[test]
    fn clark_prefixed_and_unprefixed_steps_name_the_same_kind_of_path() {
        let clark: ElementPath = format!("/{{{SOAP}}}Envelope/{{{SOAP}}}Body")
            .parse()
            .expect("clark");
        let bound = ElementPath::parse_with("/s:Envelope/s:Body", &[("s", SOAP)]).expect("bound");
        assert_eq!(clark, bound);
        assert_eq!(
            ElementPath::parse(&clark.to_string()).expect("round trip"),
            clark
        );
        let plain = ElementPath::parse("/a/b").expect("plain");
        assert_eq!(plain.steps()[1].namespace, None);
        // A namespace holding '/' stays one step.
        let ns = ElementPath::parse("/{urn:x/y}a/{}b").expect("slash in namespace");
        assert_eq!(ns.steps().len(), 2);
        assert_eq!(ns.steps()[0].namespace.as_deref(), Some("urn:x/y"));
    }

    #[test]
    fn malformed_paths_are_refused_with_the_reason() {
        assert!(matches!(
            ElementPath::parse("a/b"),
            Err(PathError::NotAbsolute { .. })
        ));
        assert!(matches!(
            ElementPath::parse("/a//b"),
            Err(PathError::EmptyStep { .. })
        ));
        assert!(matches!(
            ElementPath::parse("/a/"),
            Err(PathError::EmptyStep { .. })
        ));
        assert!(matches!(
            ElementPath::parse("/a/b[2]"),
            Err(PathError::BadStep { .. })
        ));
        assert!(matches!(
            ElementPath::parse("/{urn:a"),
            Err(PathError::BadStep { .. })
        ));
        let e = ElementPath::parse("/soap:Envelope").expect_err("unbound");
        assert!(matches!(e, PathError::UnboundPrefix { ref prefix, .. } if prefix == "soap"));
        assert!(e.to_string().contains("{namespace}Envelope"), "{e}");
    }

    #[test]
    fn resolving_refuses_a_missing_or_ambiguous_element() {
        let doc = crate::xml::parse(b"<a xmlns:s='urn:s'><s:b/><c/><c/></a>").expect("parses");
        let b = ElementPath::parse("/a/{urn:s}b").expect("path");
        let found = b.resolve(&doc).expect("one b");
        assert!(b.names(&doc, found));
        assert_eq!(ElementPath::of(&doc, found), b);
        assert!(matches!(
            ElementPath::parse("/a/b").expect("path").resolve(&doc),
            Err(ResolveError::NotFound { .. })
        ));
        assert!(matches!(
            ElementPath::parse("/x").expect("path").resolve(&doc),
            Err(ResolveError::NotFound { .. })
        ));
        match ElementPath::parse("/a/c").expect("path").resolve(&doc) {
            Err(ResolveError::Ambiguous { count, .. }) => assert_eq!(count, 2),
            other => panic!("expected ambiguous, got {other:?}"),
        }
    }
}
