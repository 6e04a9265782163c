//! A namespace-aware XML tree that keeps everything canonicalisation needs: prefixes as
//! written, the namespace declarations of each element, attributes, text exactly as parsed
//! (after XML line-end and attribute-value normalisation), comments and processing instructions.
//!
//! Nodes live in one arena and are addressed by [`NodeId`]; the tree never holds a DTD,
//! entity declarations or unexpanded references, because the parser refuses them.

use std::collections::HashMap;

/// The namespace bound to the `xml` prefix by the Namespaces in XML recommendation.
pub const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of WS-Security utility attributes (`wsu:Id`).
pub const WSU_NAMESPACE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";

/// Index of a node in its [`Document`]'s arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) u32);

impl NodeId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// A name as written in the document: optional prefix and local part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualifiedName {
    pub prefix: Option<String>,
    pub local: String,
}

impl QualifiedName {
    pub fn new(prefix: Option<&str>, local: &str) -> Self {
        Self {
            prefix: prefix.map(str::to_owned),
            local: local.to_owned(),
        }
    }
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.prefix {
            Some(p) => write!(f, "{p}:{}", self.local),
            None => f.write_str(&self.local),
        }
    }
}

/// A namespace declaration written on an element. `prefix == None` is the default namespace;
/// an empty `uri` with no prefix is `xmlns=""` (undeclaring the default namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDecl {
    pub prefix: Option<String>,
    pub uri: String,
}

/// An attribute other than a namespace declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: QualifiedName,
    /// The namespace URI the prefix resolves to; unprefixed attributes have none.
    pub namespace: Option<String>,
    /// The normalised value (references resolved, literal whitespace folded to spaces).
    pub value: String,
}

/// An element node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: QualifiedName,
    /// The namespace URI the element's prefix (or the default namespace) resolves to.
    pub namespace: Option<String>,
    pub namespace_decls: Vec<NamespaceDecl>,
    pub attributes: Vec<Attribute>,
    pub children: Vec<NodeId>,
}

impl Element {
    /// Builds an element with no attributes or children.
    pub fn new(prefix: Option<&str>, local: &str, namespace: Option<&str>) -> Self {
        Self {
            name: QualifiedName::new(prefix, local),
            namespace: namespace.map(str::to_owned),
            namespace_decls: Vec::new(),
            attributes: Vec::new(),
            children: Vec::new(),
        }
    }

    /// True when the element has this namespace URI and local name.
    pub fn is(&self, namespace: &str, local: &str) -> bool {
        self.namespace.as_deref() == Some(namespace) && self.name.local == local
    }

    /// The value of an attribute in no namespace.
    pub fn attribute(&self, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_none() && a.name.local == local)
            .map(|a| a.value.as_str())
    }

    /// The value of a namespaced attribute.
    pub fn attribute_ns(&self, namespace: &str, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.as_deref() == Some(namespace) && a.name.local == local)
            .map(|a| a.value.as_str())
    }

    /// Values of the attributes that act as identifiers for same-document references:
    /// unprefixed `Id`, `ID`, `id`, WS-Security `wsu:Id` and `xml:id`. `xml:id` is an ID
    /// without a DTD (W3C xml:id Recommendation), and libxml2, hence xmlsec1, resolves `#x`
    /// to it: leaving it out would let two tools resolve one reference differently.
    pub fn id_values(&self) -> impl Iterator<Item = &str> {
        self.attributes
            .iter()
            .filter(|a| match a.namespace.as_deref() {
                None => matches!(a.name.local.as_str(), "Id" | "ID" | "id"),
                Some(WSU_NAMESPACE) => a.name.local == "Id",
                Some(XML_NAMESPACE) => a.name.local == "id",
                Some(_) => false,
            })
            .map(|a| a.value.as_str())
    }

    /// Sets (or replaces) an attribute in no namespace.
    pub fn set_attribute(&mut self, local: &str, value: &str) {
        if let Some(a) = self
            .attributes
            .iter_mut()
            .find(|a| a.namespace.is_none() && a.name.local == local)
        {
            a.value = value.to_owned();
        } else {
            self.attributes.push(Attribute {
                name: QualifiedName::new(None, local),
                namespace: None,
                value: value.to_owned(),
            });
        }
    }
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Element(Element),
    Text(String),
    Comment(String),
    ProcessingInstruction { target: String, data: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) parent: Option<NodeId>,
    pub(crate) kind: NodeKind,
    /// Byte offset of the node's markup in the source, when it came from a parse.
    pub(crate) offset: Option<usize>,
}

/// A parsed (or built) XML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub(crate) nodes: Vec<Node>,
    /// Children of the document node: comments and PIs around exactly one element.
    pub(crate) top: Vec<NodeId>,
    pub(crate) root: NodeId,
    pub(crate) source: Option<std::sync::Arc<str>>,
}

/// Line and column (both 1-based, column in characters) of a place in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Computes a [`Position`] from a byte offset. Only errors and diagnostics ask, so a scan is
/// cheaper overall than keeping a line index for every parse.
pub(crate) fn position_of(source: &str, offset: usize) -> Position {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line,
        column: before[line_start..].chars().count() + 1,
    }
}

/// Errors from looking up elements by identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier looked up.
    #[error("no element has the identifier {0:?}")]
    NotFound(String),
    #[error("the identifier {value:?} is used by more than one element (at {first} and {second})")]
    Duplicate {
        value: String,
        first: String,
        second: String,
    },
}

impl Document {
    /// A document whose only content is `root`.
    pub fn with_root(root: Element) -> Self {
        let mut doc = Document {
            nodes: Vec::new(),
            top: Vec::new(),
            root: NodeId(0),
            source: None,
        };
        doc.root = doc.push_node(None, NodeKind::Element(root), None);
        doc.top.push(doc.root);
        doc
    }

    pub(crate) fn push_node(
        &mut self,
        parent: Option<NodeId>,
        kind: NodeKind,
        offset: Option<usize>,
    ) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(Node {
            parent,
            kind,
            offset,
        });
        id
    }

    /// The document element.
    pub fn root(&self) -> NodeId {
        self.root
    }

    /// The children of the document node (comments, PIs and the document element), in order.
    pub fn top_level(&self) -> &[NodeId] {
        &self.top
    }

    pub fn kind(&self, id: NodeId) -> &NodeKind {
        &self.nodes[id.index()].kind
    }

    pub fn element(&self, id: NodeId) -> Option<&Element> {
        match &self.nodes.get(id.index())?.kind {
            NodeKind::Element(e) => Some(e),
            _ => None,
        }
    }

    pub fn element_mut(&mut self, id: NodeId) -> Option<&mut Element> {
        match &mut self.nodes.get_mut(id.index())?.kind {
            NodeKind::Element(e) => Some(e),
            _ => None,
        }
    }

    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.nodes.get(id.index())?.parent
    }

    /// Children of an element (empty for other nodes).
    pub fn children(&self, id: NodeId) -> &[NodeId] {
        self.element(id)
            .map(|e| e.children.as_slice())
            .unwrap_or(&[])
    }

    /// Element children only.
    pub fn child_elements(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.children(id)
            .iter()
            .copied()
            .filter(|c| self.element(*c).is_some())
    }

    /// The first child element with this namespace and local name.
    pub fn child(&self, id: NodeId, namespace: &str, local: &str) -> Option<NodeId> {
        self.child_elements(id)
            .find(|c| self.element(*c).is_some_and(|e| e.is(namespace, local)))
    }

    /// True when `ancestor` is `node` or one of its ancestors.
    pub fn is_ancestor_or_self(&self, ancestor: NodeId, node: NodeId) -> bool {
        let mut cur = Some(node);
        while let Some(n) = cur {
            if n == ancestor {
                return true;
            }
            cur = self.parent(n);
        }
        false
    }

    /// All nodes of the subtree rooted at `id`, in document order.
    pub fn descendants_or_self(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            out.push(n);
            for c in self.children(n).iter().rev() {
                stack.push(*c);
            }
        }
        out
    }

    /// Concatenation of every text node below `id`.
    pub fn text_content(&self, id: NodeId) -> String {
        let mut s = String::new();
        for n in self.descendants_or_self(id) {
            if let NodeKind::Text(t) = self.kind(n) {
                s.push_str(t);
            }
        }
        s
    }

    /// Appends a child node to an element and returns its id.
    ///
    /// # Panics
    /// When `parent` is not an element of this document: a programming error, never input.
    pub fn append_child(&mut self, parent: NodeId, kind: NodeKind) -> NodeId {
        let id = self.push_node(Some(parent), kind, None);
        match &mut self.nodes[parent.index()].kind {
            NodeKind::Element(e) => e.children.push(id),
            _ => panic!("append_child: parent {parent:?} is not an element"),
        }
        id
    }

    /// Appends a new element under `parent`.
    pub fn append_element(&mut self, parent: NodeId, element: Element) -> NodeId {
        self.append_child(parent, NodeKind::Element(element))
    }

    /// Appends text under `parent`.
    pub fn append_text(&mut self, parent: NodeId, text: &str) -> NodeId {
        self.append_child(parent, NodeKind::Text(text.to_owned()))
    }

    /// Copies the subtree of `node` in `from` under `parent`, and returns the copy's root.
    /// In-scope namespace declarations of the source element are written on the copy, so
    /// its meaning does not depend on where it lands.
    pub fn import(&mut self, parent: NodeId, from: &Document, node: NodeId) -> NodeId {
        let mut stack = vec![(node, parent, true)];
        let mut top = None;
        while let Some((src, dst_parent, is_top)) = stack.pop() {
            let mut kind = from.kind(src).clone();
            if let NodeKind::Element(e) = &mut kind {
                e.children.clear();
                if is_top {
                    for (prefix, uri) in from.in_scope_namespaces(src) {
                        let prefix = (!prefix.is_empty()).then_some(prefix);
                        if !e.namespace_decls.iter().any(|d| d.prefix == prefix) {
                            e.namespace_decls.push(NamespaceDecl { prefix, uri });
                        }
                    }
                }
            }
            let copy = self.append_child(dst_parent, kind);
            top.get_or_insert(copy);
            for c in from.children(src).iter().rev() {
                stack.push((*c, copy, false));
            }
        }
        top.unwrap_or(parent)
    }

    /// Replaces all children of `id` with one text node.
    pub fn set_text(&mut self, id: NodeId, text: &str) {
        if let Some(e) = self.element_mut(id) {
            e.children.clear();
        }
        self.append_text(id, text);
    }

    /// Source position of a node, if it came from a parse.
    pub fn position(&self, id: NodeId) -> Option<Position> {
        let offset = self.nodes.get(id.index())?.offset?;
        let source = self.source.as_deref()?;
        Some(position_of(source, offset))
    }

    /// A readable location: the element path, with line:column when known.
    pub fn describe(&self, id: NodeId) -> String {
        match self.position(id) {
            Some(p) => format!("{} (line {p})", self.path(id)),
            None => self.path(id),
        }
    }

    /// An XPath-like path to an element: `/Envelope[1]/Body[1]`, by qualified name as written.
    pub fn path(&self, id: NodeId) -> String {
        let mut parts = Vec::new();
        let mut cur = Some(id);
        while let Some(n) = cur {
            if let Some(e) = self.element(n) {
                let siblings: &[NodeId] = match self.parent(n) {
                    Some(p) => self.children(p),
                    None => &self.top,
                };
                let index = siblings
                    .iter()
                    .filter(|s| {
                        self.element(**s).is_some_and(|se| {
                            se.name.local == e.name.local && se.namespace == e.namespace
                        })
                    })
                    .position(|s| *s == n)
                    .unwrap_or(0)
                    + 1;
                parts.push(format!("{}[{index}]", e.name));
            }
            cur = self.parent(n);
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// Maps every identifier value (see [`Element::id_values`]) to its element, refusing
    /// duplicates anywhere in the document.
    pub fn id_index(&self) -> Result<HashMap<String, NodeId>, IdError> {
        let mut map: HashMap<String, NodeId> = HashMap::new();
        for n in self.descendants_or_self(self.root) {
            let Some(e) = self.element(n) else { continue };
            for v in e.id_values() {
                if let Some(prev) = map.insert(v.to_owned(), n) {
                    return Err(IdError::Duplicate {
                        value: v.to_owned(),
                        first: self.describe(prev),
                        second: self.describe(n),
                    });
                }
            }
        }
        Ok(map)
    }

    /// The element whose identifier is `value`; duplicates anywhere in the document are refused.
    pub fn find_by_id(&self, value: &str) -> Result<NodeId, IdError> {
        self.id_index()?
            .get(value)
            .copied()
            .ok_or_else(|| IdError::NotFound(value.to_owned()))
    }

    /// The in-scope namespaces of an element: prefix (`""` for the default) to URI, nearest
    /// declaration winning. An undeclared default namespace maps to `""`.
    pub fn in_scope_namespaces(&self, id: NodeId) -> std::collections::BTreeMap<String, String> {
        let mut chain = Vec::new();
        let mut cur = Some(id);
        while let Some(n) = cur {
            chain.push(n);
            cur = self.parent(n);
        }
        let mut map = std::collections::BTreeMap::new();
        for n in chain.into_iter().rev() {
            if let Some(e) = self.element(n) {
                for d in &e.namespace_decls {
                    map.insert(d.prefix.clone().unwrap_or_default(), d.uri.clone());
                }
            }
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(xml: &str) -> Document {
        crate::xml::parse(xml.as_bytes()).expect("parses")
    }

    #[test]
    fn a_reference_resolves_to_the_element_with_that_xml_id() {
        let d = doc("<Doc><Data xml:id=\"x\">ok</Data></Doc>");
        let found = d.find_by_id("x").expect("resolves");
        assert_eq!(d.path(found), "/Doc[1]/Data[1]");
    }

    #[test]
    fn an_xml_id_equal_to_another_identifier_is_a_duplicate() {
        for other in ["Id", "ID", "id", "wsu:Id"] {
            let xml = format!(
                "<Doc xmlns:wsu=\"{WSU_NAMESPACE}\"><A {other}=\"x\"/><B xml:id=\"x\"/></Doc>"
            );
            let e = doc(&xml).id_index().expect_err(other);
            assert!(
                matches!(&e, IdError::Duplicate { value, first, second }
                    if value == "x" && first.contains("A[1]") && second.contains("B[1]")),
                "{other}: {e}"
            );
        }
    }

    #[test]
    fn two_equal_xml_ids_are_a_duplicate() {
        let e = doc("<Doc><A xml:id=\"x\"/><B xml:id=\"x\"/></Doc>")
            .find_by_id("x")
            .expect_err("duplicate");
        assert!(matches!(e, IdError::Duplicate { .. }), "{e}");
    }

    #[test]
    fn an_id_attribute_in_another_namespace_is_no_identifier() {
        let d = doc("<Doc xmlns:o=\"urn:other\"><A o:id=\"x\"/><B o:Id=\"x\"/></Doc>");
        assert_eq!(d.find_by_id("x"), Err(IdError::NotFound("x".into())));
    }
}
