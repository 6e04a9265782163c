//! Writes a [`Document`] back as XML, keeping namespace declarations where they were written
//! and attributes in their order. Parsing the output gives a tree with the same canonical form,
//! so a document can be signed, written and verified elsewhere.

use super::tree::{Document, NodeId, NodeKind};

/// Escapes character data: `&`, `<`, `>` and CR (which a parser would otherwise turn into LF).
/// This is also exactly Canonical XML's escaping of text nodes.
pub(crate) fn escape_text(s: &str, out: &mut String) {
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

/// Escapes an attribute value so that attribute-value normalisation gives it back unchanged.
pub(crate) fn escape_attribute(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

impl Document {
    /// Serialises the document with an XML declaration.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let mut after_root = false;
        for &n in &self.top {
            if n == self.root {
                write_node(self, n, &mut out);
                after_root = true;
            } else {
                if after_root {
                    out.push('\n');
                }
                write_node(self, n, &mut out);
                if !after_root {
                    out.push('\n');
                }
            }
        }
        out.push('\n');
        out
    }

    /// Serialises one subtree (no declaration, no inherited namespace declarations).
    pub fn subtree_to_xml(&self, id: NodeId) -> String {
        let mut out = String::new();
        write_node(self, id, &mut out);
        out
    }
}

fn write_node(doc: &Document, id: NodeId, out: &mut String) {
    // Iterative, so a built tree of any depth cannot overflow the stack.
    enum Step {
        Open(NodeId),
        Close(NodeId),
    }
    let mut stack = vec![Step::Open(id)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Close(n) => {
                if let Some(e) = doc.element(n) {
                    out.push_str("</");
                    out.push_str(&e.name.to_string());
                    out.push('>');
                }
            }
            Step::Open(n) => match doc.kind(n) {
                NodeKind::Text(t) => escape_text(t, out),
                NodeKind::Comment(c) => {
                    out.push_str("<!--");
                    out.push_str(c);
                    out.push_str("-->");
                }
                NodeKind::ProcessingInstruction { target, data } => {
                    out.push_str("<?");
                    out.push_str(target);
                    if !data.is_empty() {
                        out.push(' ');
                        out.push_str(data);
                    }
                    out.push_str("?>");
                }
                NodeKind::Element(e) => {
                    out.push('<');
                    out.push_str(&e.name.to_string());
                    for d in &e.namespace_decls {
                        match &d.prefix {
                            Some(p) => {
                                out.push_str(" xmlns:");
                                out.push_str(p);
                            }
                            None => out.push_str(" xmlns"),
                        }
                        out.push_str("=\"");
                        escape_attribute(&d.uri, out);
                        out.push('"');
                    }
                    for a in &e.attributes {
                        out.push(' ');
                        out.push_str(&a.name.to_string());
                        out.push_str("=\"");
                        escape_attribute(&a.value, out);
                        out.push('"');
                    }
                    if e.children.is_empty() {
                        out.push_str("/>");
                    } else {
                        out.push('>');
                        stack.push(Step::Close(n));
                        for c in e.children.iter().rev() {
                            stack.push(Step::Open(*c));
                        }
                    }
                }
            },
        }
    }
}
