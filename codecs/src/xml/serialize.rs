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
        self.serialise(false)
    }

    /// Like [`to_xml`](Self::to_xml), but elements that hold only elements put each child on
    /// its own indented line. Text content is never touched, so this is for documents built
    /// without whitespace between elements (translation output, for instance).
    pub fn to_xml_pretty(&self) -> String {
        self.serialise(true)
    }

    fn serialise(&self, pretty: bool) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let mut after_root = false;
        for &n in &self.top {
            if n == self.root {
                write_node(self, n, &mut out, pretty);
                after_root = true;
            } else {
                if after_root {
                    out.push('\n');
                }
                write_node(self, n, &mut out, pretty);
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
        write_node(self, id, &mut out, false);
        out
    }
}

fn write_node(doc: &Document, id: NodeId, out: &mut String, pretty: bool) {
    // Iterative, so a built tree of any depth cannot overflow the stack.
    enum Step {
        Open(NodeId, usize),
        Close(NodeId, usize),
        Indent(usize),
    }
    let element_only = |n: NodeId| {
        let kids = doc.children(n);
        !kids.is_empty() && kids.iter().all(|c| doc.element(*c).is_some())
    };
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut stack = vec![Step::Open(id, 0)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Indent(depth) => newline(out, depth),
            Step::Close(n, depth) => {
                if pretty && element_only(n) {
                    newline(out, depth);
                }
                if let Some(e) = doc.element(n) {
                    out.push_str("</");
                    out.push_str(&e.name.to_string());
                    out.push('>');
                }
            }
            Step::Open(n, depth) => match doc.kind(n) {
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
                        stack.push(Step::Close(n, depth));
                        let indent = pretty && element_only(n);
                        for c in e.children.iter().rev() {
                            stack.push(Step::Open(*c, depth + 1));
                            if indent {
                                stack.push(Step::Indent(depth + 1));
                            }
                        }
                    }
                }
            },
        }
    }
}
