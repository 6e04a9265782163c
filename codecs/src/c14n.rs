//! Canonical XML 1.0 (W3C REC-xml-c14n-20010315) and Exclusive XML Canonicalization 1.0
//! (W3C REC-xml-exc-c14n-20020718), with and without comments, over a whole document or over
//! an element subtree, optionally minus one excluded subtree (the enveloped signature).
//!
//! The output is the exact octet stream that digests and signatures are computed over: the
//! same bytes libxml2 and xmlsec1 produce for the same node-set (checked by differential tests).

use crate::xml::serialize::escape_attribute;
use crate::xml::{Attribute, Document, NodeId, NodeKind, XML_NAMESPACE};

/// Algorithm identifiers used in XMLDSig `Algorithm` attributes.
pub mod uri {
    pub const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
    pub const C14N_WITH_COMMENTS: &str =
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
    pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
    pub const EXC_C14N_WITH_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
}

/// Inclusive or exclusive canonicalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inclusive,
    Exclusive,
}

/// How to canonicalise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C14nOptions {
    pub mode: Mode,
    pub with_comments: bool,
    /// Exclusive mode only: prefixes treated as in inclusive mode (`#default` for the default
    /// namespace), the `InclusiveNamespaces PrefixList`.
    pub inclusive_prefixes: Vec<String>,
}

impl Default for C14nOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Inclusive,
            with_comments: false,
            inclusive_prefixes: Vec::new(),
        }
    }
}

impl C14nOptions {
    pub fn exclusive() -> Self {
        Self {
            mode: Mode::Exclusive,
            ..Self::default()
        }
    }

    /// The options an `Algorithm` URI names, or `None` when it is not a supported C14N 1.0.
    pub fn from_uri(algorithm: &str) -> Option<Self> {
        let (mode, with_comments) = match algorithm {
            uri::C14N => (Mode::Inclusive, false),
            uri::C14N_WITH_COMMENTS => (Mode::Inclusive, true),
            uri::EXC_C14N => (Mode::Exclusive, false),
            uri::EXC_C14N_WITH_COMMENTS => (Mode::Exclusive, true),
            _ => return None,
        };
        Some(Self {
            mode,
            with_comments,
            inclusive_prefixes: Vec::new(),
        })
    }

    /// The `Algorithm` URI of these options.
    pub fn uri(&self) -> &'static str {
        match (self.mode, self.with_comments) {
            (Mode::Inclusive, false) => uri::C14N,
            (Mode::Inclusive, true) => uri::C14N_WITH_COMMENTS,
            (Mode::Exclusive, false) => uri::EXC_C14N,
            (Mode::Exclusive, true) => uri::EXC_C14N_WITH_COMMENTS,
        }
    }
}

/// Which nodes to canonicalise: the whole document or the subtree of `apex`, in both cases
/// without the subtree of `exclude`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeSet {
    pub apex: Option<NodeId>,
    pub exclude: Option<NodeId>,
}

impl NodeSet {
    pub fn document() -> Self {
        Self::default()
    }

    pub fn subtree(apex: NodeId) -> Self {
        Self {
            apex: Some(apex),
            exclude: None,
        }
    }

    #[must_use]
    pub fn excluding(mut self, node: NodeId) -> Self {
        self.exclude = Some(node);
        self
    }
}

/// Canonicalises the whole document.
pub fn canonicalize_document(doc: &Document, options: &C14nOptions) -> Vec<u8> {
    canonicalize(doc, NodeSet::document(), options)
}

/// Canonicalises `nodes` of `doc`.
pub fn canonicalize(doc: &Document, nodes: NodeSet, options: &C14nOptions) -> Vec<u8> {
    let mut c = Canonicalizer {
        doc,
        options,
        exclude: nodes.exclude,
        apex: nodes.apex,
        in_scope: Vec::new(),
        rendered: Vec::new(),
        out: String::new(),
    };
    match nodes.apex {
        None => {
            let mut after_root = false;
            for &n in doc.top_level() {
                if Some(n) == c.exclude {
                    continue;
                }
                if n == doc.root() {
                    c.subtree(n);
                    after_root = true;
                    continue;
                }
                let written = match doc.kind(n) {
                    NodeKind::Comment(_) => options.with_comments,
                    NodeKind::ProcessingInstruction { .. } => true,
                    _ => false,
                };
                if !written {
                    continue;
                }
                if after_root {
                    c.out.push('\n');
                }
                c.leaf(n);
                if !after_root {
                    c.out.push('\n');
                }
            }
        }
        Some(apex) => {
            if let Some(parent) = doc.parent(apex) {
                c.in_scope = doc.in_scope_namespaces(parent).into_iter().collect();
            }
            c.subtree(apex);
        }
    }
    c.out.into_bytes()
}

struct Canonicalizer<'a> {
    doc: &'a Document,
    options: &'a C14nOptions,
    exclude: Option<NodeId>,
    apex: Option<NodeId>,
    /// Namespace bindings in scope, innermost last: (prefix, uri), `""` the default.
    in_scope: Vec<(String, String)>,
    /// Namespace declarations already written by output ancestors, innermost last.
    rendered: Vec<(String, String)>,
    out: String,
}

fn lookup<'v>(stack: &'v [(String, String)], prefix: &str) -> Option<&'v str> {
    stack
        .iter()
        .rev()
        .find(|(p, _)| p == prefix)
        .map(|(_, u)| u.as_str())
}

fn escape_c14n_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

impl Canonicalizer<'_> {
    fn leaf(&mut self, n: NodeId) {
        match self.doc.kind(n) {
            NodeKind::Text(t) => escape_c14n_text(t, &mut self.out),
            NodeKind::Comment(t) => {
                if self.options.with_comments {
                    self.out.push_str("<!--");
                    self.out.push_str(t);
                    self.out.push_str("-->");
                }
            }
            NodeKind::ProcessingInstruction { target, data } => {
                self.out.push_str("<?");
                self.out.push_str(target);
                if !data.is_empty() {
                    self.out.push(' ');
                    self.out.push_str(data);
                }
                self.out.push_str("?>");
            }
            NodeKind::Element(_) => {}
        }
    }

    /// Writes the element `top` and everything under it, iteratively.
    fn subtree(&mut self, top: NodeId) {
        enum Step {
            Open(NodeId),
            Close(NodeId, usize, usize),
        }
        let mut stack = vec![Step::Open(top)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Close(n, scope_len, rendered_len) => {
                    if let Some(e) = self.doc.element(n) {
                        self.out.push_str("</");
                        self.out.push_str(&e.name.to_string());
                        self.out.push('>');
                    }
                    self.in_scope.truncate(scope_len);
                    self.rendered.truncate(rendered_len);
                }
                Step::Open(n) => {
                    if Some(n) == self.exclude {
                        continue;
                    }
                    if self.doc.element(n).is_none() {
                        self.leaf(n);
                        continue;
                    }
                    let marks = (self.in_scope.len(), self.rendered.len());
                    self.start_tag(n);
                    stack.push(Step::Close(n, marks.0, marks.1));
                    for c in self.doc.children(n).iter().rev() {
                        stack.push(Step::Open(*c));
                    }
                }
            }
        }
    }

    fn start_tag(&mut self, n: NodeId) {
        let Some(e) = self.doc.element(n) else { return };
        for d in &e.namespace_decls {
            self.in_scope
                .push((d.prefix.clone().unwrap_or_default(), d.uri.clone()));
        }

        // Which namespace prefixes this element must consider rendering.
        let mut candidates: Vec<String> = Vec::new();
        match self.options.mode {
            Mode::Inclusive => {
                for (p, _) in &self.in_scope {
                    if !candidates.contains(p) {
                        candidates.push(p.clone());
                    }
                }
            }
            Mode::Exclusive => {
                candidates.push(e.name.prefix.clone().unwrap_or_default());
                for a in &e.attributes {
                    if let Some(p) = &a.name.prefix {
                        if !candidates.contains(p) {
                            candidates.push(p.clone());
                        }
                    }
                }
                for p in &self.options.inclusive_prefixes {
                    let p = if p == "#default" { "" } else { p.as_str() };
                    if !candidates.iter().any(|c| c == p) {
                        candidates.push(p.to_owned());
                    }
                }
            }
        }
        let mut emitted: Vec<(String, String)> = Vec::new();
        for p in candidates {
            if p == "xml" {
                continue;
            }
            let uri = match lookup(&self.in_scope, &p) {
                Some(u) => u.to_owned(),
                None if p.is_empty() => String::new(),
                None => continue,
            };
            let rendered = lookup(&self.rendered, &p);
            let already = match rendered {
                Some(r) => r == uri,
                // Nothing rendered yet: an empty default namespace is the initial state.
                None => p.is_empty() && uri.is_empty(),
            };
            if !already {
                emitted.push((p, uri));
            }
        }
        emitted.sort();

        let mut attrs: Vec<&Attribute> = e.attributes.iter().collect();
        let mut inherited: Vec<Attribute> = Vec::new();
        if self.options.mode == Mode::Inclusive && Some(n) == self.apex {
            // C14N 1.0 §2.4: an apex whose parent is not in the node-set inherits the xml:*
            // attributes of its ancestors.
            let mut cur = self.doc.parent(n);
            while let Some(a) = cur {
                if let Some(ae) = self.doc.element(a) {
                    for at in &ae.attributes {
                        if at.namespace.as_deref() == Some(XML_NAMESPACE)
                            && !attrs.iter().any(|x| {
                                x.namespace.as_deref() == Some(XML_NAMESPACE)
                                    && x.name.local == at.name.local
                            })
                            && !inherited.iter().any(|x| x.name.local == at.name.local)
                        {
                            inherited.push(at.clone());
                        }
                    }
                }
                cur = self.doc.parent(a);
            }
        }
        attrs.extend(inherited.iter());
        attrs.sort_by(|a, b| {
            let ka = (a.namespace.as_deref().unwrap_or(""), a.name.local.as_str());
            let kb = (b.namespace.as_deref().unwrap_or(""), b.name.local.as_str());
            ka.cmp(&kb)
        });

        self.out.push('<');
        self.out.push_str(&e.name.to_string());
        for (p, u) in &emitted {
            if p.is_empty() {
                self.out.push_str(" xmlns=\"");
            } else {
                self.out.push_str(" xmlns:");
                self.out.push_str(p);
                self.out.push_str("=\"");
            }
            escape_attribute(u, &mut self.out);
            self.out.push('"');
        }
        for a in attrs {
            self.out.push(' ');
            self.out.push_str(&a.name.to_string());
            self.out.push_str("=\"");
            escape_attribute(&a.value, &mut self.out);
            self.out.push('"');
        }
        self.out.push('>');
        self.rendered.extend(emitted);
    }
}
