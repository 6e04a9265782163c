//! Canonical XML 1.0 (W3C REC-xml-c14n-20010315) and Exclusive XML Canonicalization 1.0
//! (W3C REC-xml-exc-c14n-20020718), with and without comments, over a whole document or over
//! an element subtree, optionally minus one excluded subtree (the enveloped signature).
//!
//! The output is the exact octet stream that digests and signatures are computed over: the
//! same bytes libxml2 and xmlsec1 produce for the same node-set (checked by differential tests).

use crate::xml::serialize::{escape_attribute, escape_text};
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

impl Canonicalizer<'_> {
    fn leaf(&mut self, n: NodeId) {
        match self.doc.kind(n) {
            NodeKind::Text(t) => escape_text(t, &mut self.out),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn check(
        input: &str,
        nodes: impl Fn(&Document) -> NodeSet,
        options: C14nOptions,
        expected: &str,
    ) {
        let doc = parse(input.as_bytes()).expect("test input parses");
        let out = canonicalize(&doc, nodes(&doc), &options);
        assert_eq!(String::from_utf8(out).expect("utf-8"), expected);
    }

    fn by_id(id: &'static str) -> impl Fn(&Document) -> NodeSet {
        move |d| NodeSet::subtree(d.find_by_id(id).expect("id exists"))
    }

    fn whole(_: &Document) -> NodeSet {
        NodeSet::document()
    }

    fn inclusive() -> C14nOptions {
        C14nOptions::default()
    }

    #[test]
    fn spec_3_1_pis_comments_and_outside_whitespace() {
        let input = "<?xml version=\"1.0\"?>\n\n<?xml-stylesheet   href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n\n<doc>Hello, world!<!-- Comment 1 --></doc>\n\n<?pi-without-data     ?>\n\n<!-- Comment 2 -->\n\n<!-- Comment 3 -->";
        check(
            input,
            whole,
            inclusive(),
            "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!</doc>\n<?pi-without-data?>",
        );
        check(
            input,
            whole,
            C14nOptions { with_comments: true, ..inclusive() },
            "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!<!-- Comment 1 --></doc>\n<?pi-without-data?>\n<!-- Comment 2 -->\n<!-- Comment 3 -->",
        );
    }

    #[test]
    fn spec_3_3_start_and_end_tags() {
        let input = r#"<doc>
   <e1   />
   <e2   ></e2>
   <e3   name = "elem3"   id="elem3"   />
   <e4   name="elem4"   id="elem4"   ></e4>
   <e5 a:attr="out" b:attr="sorted" attr2="all" attr="I'm"
      xmlns:b="http://www.ietf.org"
      xmlns:a="http://www.w3.org"
      xmlns="http://example.org"/>
   <e6 xmlns="" xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="" xmlns:a="http://www.w3.org">
            <e9 xmlns="" xmlns:a="http://www.ietf.org"/>
         </e8>
      </e7>
   </e6>
</doc>"#;
        let expected = r#"<doc>
   <e1></e1>
   <e2></e2>
   <e3 id="elem3" name="elem3"></e3>
   <e4 id="elem4" name="elem4"></e4>
   <e5 xmlns="http://example.org" xmlns:a="http://www.w3.org" xmlns:b="http://www.ietf.org" attr="I'm" attr2="all" b:attr="sorted" a:attr="out"></e5>
   <e6 xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="">
            <e9 xmlns:a="http://www.ietf.org"></e9>
         </e8>
      </e7>
   </e6>
</doc>"#;
        check(input, whole, inclusive(), expected);
    }

    #[test]
    fn spec_3_4_character_modifications() {
        let input = "<doc>\n   <text>First line&#x0d;&#10;Second line</text>\n   <value>&#x32;</value>\n   <compute><![CDATA[value>\"0\" && value<\"10\" ?\"valid\":\"error\"]]></compute>\n   <compute expr='value>\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"'>valid</compute>\n   <norm attr=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>\n</doc>";
        let expected = "<doc>\n   <text>First line&#xD;\nSecond line</text>\n   <value>2</value>\n   <compute>value&gt;\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"</compute>\n   <compute expr=\"value>&quot;0&quot; &amp;&amp; value&lt;&quot;10&quot; ?&quot;valid&quot;:&quot;error&quot;\">valid</compute>\n   <norm attr=\" '    &#xD;&#xA;&#x9;   ' \"></norm>\n</doc>";
        check(input, whole, inclusive(), expected);
    }

    #[test]
    fn inclusive_subtree_keeps_in_scope_namespaces_and_inherits_xml_attributes() {
        let input = r#"<r xmlns="urn:d" xmlns:a="urn:a" xml:lang="kk" xml:space="preserve"><m xml:lang="ru"><s Id="x"/></m></r>"#;
        check(
            input,
            by_id("x"),
            inclusive(),
            r#"<s xmlns="urn:d" xmlns:a="urn:a" Id="x" xml:lang="ru" xml:space="preserve"></s>"#,
        );
        check(
            input,
            by_id("x"),
            C14nOptions::exclusive(),
            r#"<s xmlns="urn:d" Id="x"></s>"#,
        );
    }

    #[test]
    fn exclusive_renders_only_visibly_utilised_namespaces() {
        let input = r#"<r xmlns:a="urn:a" xmlns:b="urn:b" xmlns:u="urn:unused"><a:x b:at="1" Id="x"><y xmlns="urn:y"><a:z/></y></a:x></r>"#;
        check(
            input,
            by_id("x"),
            C14nOptions::exclusive(),
            r#"<a:x xmlns:a="urn:a" xmlns:b="urn:b" Id="x" b:at="1"><y xmlns="urn:y"><a:z></a:z></y></a:x>"#,
        );
        let with_list = C14nOptions {
            inclusive_prefixes: vec!["u".into(), "#default".into()],
            ..C14nOptions::exclusive()
        };
        check(
            input,
            by_id("x"),
            with_list,
            r#"<a:x xmlns:a="urn:a" xmlns:b="urn:b" xmlns:u="urn:unused" Id="x" b:at="1"><y xmlns="urn:y"><a:z></a:z></y></a:x>"#,
        );
    }

    #[test]
    fn exclusive_undeclares_the_default_namespace_only_when_rendered_above() {
        check(
            r#"<r xmlns="urn:d"><c xmlns=""><g/></c></r>"#,
            whole,
            C14nOptions::exclusive(),
            r#"<r xmlns="urn:d"><c xmlns=""><g></g></c></r>"#,
        );
        check(
            r#"<p:r xmlns:p="urn:p" xmlns="urn:d"><c xmlns=""/></p:r>"#,
            whole,
            C14nOptions::exclusive(),
            r#"<p:r xmlns:p="urn:p"><c></c></p:r>"#,
        );
    }

    #[test]
    fn excluded_subtree_is_left_out() {
        let doc = parse(b"<r><keep/><sig><x/></sig><tail/></r>").expect("parses");
        let sig = doc.child_elements(doc.root()).nth(1).expect("sig");
        let out = canonicalize(&doc, NodeSet::document().excluding(sig), &inclusive());
        assert_eq!(out, b"<r><keep></keep><tail></tail></r>");
    }

    #[test]
    fn attributes_sort_by_namespace_uri_then_local_name() {
        check(
            r#"<r xmlns:z="urn:a" xmlns:a="urn:z" a:k="1" z:k="2" b="3" a="4"/>"#,
            whole,
            inclusive(),
            r#"<r xmlns:a="urn:z" xmlns:z="urn:a" a="4" b="3" z:k="2" a:k="1"></r>"#,
        );
    }

    #[test]
    fn algorithm_uris_round_trip() {
        for uri in [
            uri::C14N,
            uri::C14N_WITH_COMMENTS,
            uri::EXC_C14N,
            uri::EXC_C14N_WITH_COMMENTS,
        ] {
            assert_eq!(C14nOptions::from_uri(uri).expect("known").uri(), uri);
        }
        assert!(C14nOptions::from_uri("http://www.w3.org/2006/12/xml-c14n11").is_none());
    }
}
