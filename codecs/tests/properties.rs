//! Property tests, the stable-toolchain fuzz harness for the parser, C14N and signatures.
//! Raise the case count for a longer campaign: `PROPTEST_CASES=100000 cargo test --release
//! -p tereze-codecs --test properties` (see docs/fuzzing.md).

use proptest::prelude::*;
use tereze_codecs::c14n::{self, C14nOptions, Mode, NodeSet};
use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey, TrustStore, VerifyPolicy};
use tereze_codecs::pki::{self_signed_signer, KeyKind};
use tereze_codecs::xml::{self, Document, NodeKind};

/// Fragments that steer random input towards the parser's interesting paths.
const FRAGMENTS: &[&str] = &[
    "<",
    ">",
    "/>",
    "</",
    "<a",
    "</a>",
    "<b:c",
    "</b:c>",
    " x=\"1\"",
    " xmlns=\"urn:d\"",
    " xmlns:b=\"urn:b\"",
    " xmlns=\"\"",
    " xml:lang=\"kk\"",
    "&amp;",
    "&lt;",
    "&#x41;",
    "&#0;",
    "&#xD800;",
    "&foo;",
    "&",
    "<!--",
    "-->",
    "--",
    "<![CDATA[",
    "]]>",
    "<?pi data?>",
    "<?xml",
    "<!DOCTYPE x>",
    "\r\n",
    "\r",
    "\t",
    "\"",
    "'",
    "Қазақ",
    "\u{FEFF}",
    "\u{1}",
    "Id=\"i\"",
    "=",
    " ",
    "x",
];

fn fragment_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..60)
        .prop_map(|parts| parts.concat().into_bytes())
}

fn all_options() -> Vec<C14nOptions> {
    let mut v = Vec::new();
    for mode in [Mode::Inclusive, Mode::Exclusive] {
        for with_comments in [false, true] {
            v.push(C14nOptions {
                mode,
                with_comments,
                inclusive_prefixes: if mode == Mode::Exclusive {
                    vec!["b".into(), "#default".into()]
                } else {
                    Vec::new()
                },
            });
        }
    }
    v
}

fn elements(doc: &Document) -> Vec<xml::NodeId> {
    doc.descendants_or_self(doc.root())
        .into_iter()
        .filter(|n| matches!(doc.kind(*n), NodeKind::Element(_)))
        .collect()
}

/// Canonicalises every way we can: whole document and each element's subtree, all modes.
fn canonicalize_everything(doc: &Document) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for options in all_options() {
        out.push(c14n::canonicalize(doc, NodeSet::document(), &options));
        for e in elements(doc) {
            out.push(c14n::canonicalize(doc, NodeSet::subtree(e), &options));
        }
    }
    out
}

// A generator of valid documents: nested elements with prefixes bound at the root and
// redeclared below, attributes with awkward values, text, CDATA, comments and PIs.
const URIS: &[&str] = &[
    "urn:x",
    "urn:y",
    "http://example.org/ns",
    "urn:EEC:M:SimpleDataObjects",
];
const TEXTS: &[&str] = &[
    "a",
    " ",
    "\n",
    "\r\n",
    "&amp;",
    "&lt;&gt;",
    "\"'",
    "Қазақстан",
    "&#xD;",
    "&#9;",
    "]]&gt;",
    "<![CDATA[<&>]]>",
    "<!-- c -->",
    "<?p d?>",
    "<?q?>",
];

fn element(depth: u32) -> BoxedStrategy<String> {
    let name = (
        prop::sample::select(&["", "a:", "b:"][..]),
        prop::sample::select(&["e", "f", "Декларация"][..]),
    );
    let attrs = prop::collection::btree_map(
        prop::sample::select(&["k", "m", "Id", "n"][..]),
        (
            prop::sample::select(&["", "a:", "b:", "xml:"][..]),
            prop::sample::select(TEXTS),
        ),
        0..4,
    );
    let decl = prop::option::of((
        prop::sample::select(&["", "a", "b"][..]),
        prop::sample::select(URIS),
    ));
    let leaf_children =
        prop::collection::vec(prop::sample::select(TEXTS).prop_map(str::to_owned), 0..3);
    let children = if depth == 0 {
        leaf_children.boxed()
    } else {
        prop::collection::vec(
            prop_oneof![
                1 => prop::sample::select(TEXTS).prop_map(str::to_owned),
                2 => element(depth - 1),
            ],
            1..5,
        )
        .boxed()
    };
    (name, attrs, decl, children, any::<u32>())
        .prop_map(|((prefix, local), attrs, decl, children, salt)| {
            let mut s = format!("<{prefix}{local}");
            if let Some((p, uri)) = decl {
                if p.is_empty() {
                    s.push_str(&format!(" xmlns=\"{uri}\""));
                } else {
                    s.push_str(&format!(" xmlns:{p}=\"{uri}\""));
                }
            }
            for (local, (prefix, value)) in attrs {
                let value = if value.starts_with('<') { "v" } else { value };
                let value = if local == "Id" {
                    format!("i{salt}")
                } else {
                    value.to_owned()
                };
                let prefix = if local == "Id" { "" } else { prefix };
                s.push_str(&format!(
                    " {prefix}{local}=\"{}\"",
                    value.replace('"', "&quot;")
                ));
            }
            s.push('>');
            for c in children {
                s.push_str(&c);
            }
            s.push_str(&format!("</{prefix}{local}>"));
            s
        })
        .boxed()
}

fn document() -> impl Strategy<Value = String> {
    (
        prop::sample::select(URIS),
        prop::sample::select(URIS),
        element(3),
    )
        .prop_map(|(a, b, body)| {
            format!("<?pi top?><r xmlns:a=\"{a}\" xmlns:b=\"{b}\">{body}</r><!--end-->")
        })
}

fn parse_valid(s: &str) -> Option<Document> {
    // Generated Ids can repeat and attribute prefixes can collide on one URI; such documents
    // are legitimately refused and not what these properties are about.
    let doc = xml::parse(s.as_bytes()).ok()?;
    doc.id_index().ok()?;
    Some(doc)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parser_and_c14n_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(doc) = xml::parse(&bytes) {
            canonicalize_everything(&doc);
        }
    }

    #[test]
    fn parser_and_c14n_never_panic_on_fragment_soup(bytes in fragment_soup()) {
        if let Ok(doc) = xml::parse(&bytes) {
            canonicalize_everything(&doc);
            let _ = doc.to_xml();
        }
    }

    #[test]
    fn generated_documents_parse(s in document()) {
        let parsed = xml::parse(s.as_bytes());
        prop_assert!(parsed.is_ok() || matches!(parsed, Err(ref e) if matches!(e.kind, xml::ParseErrorKind::DuplicateAttribute(_))), "{s}: {parsed:?}");
    }

    #[test]
    fn serialising_keeps_the_canonical_form(s in document()) {
        if let Some(doc) = parse_valid(&s) {
            let again = xml::parse(doc.to_xml().as_bytes()).expect("our own output parses");
            prop_assert_eq!(canonicalize_everything(&doc), canonicalize_everything(&again));
        }
    }

    #[test]
    fn canonical_form_is_a_fixed_point(s in document()) {
        if let Some(doc) = parse_valid(&s) {
            for options in all_options() {
                let once = c14n::canonicalize(&doc, NodeSet::document(), &options);
                let reparsed = xml::parse(&once).expect("canonical form parses");
                let twice = c14n::canonicalize(&reparsed, NodeSet::document(), &options);
                prop_assert_eq!(&once, &twice);
            }
        }
    }
}

fn fixture() -> (SigningKey, TrustStore) {
    let (key, cert) = self_signed_signer(KeyKind::EcP256, "property signer", 1).expect("signer");
    let mut trust = TrustStore::new();
    trust.add_certificate(cert);
    (key, trust)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_signed_document_verifies_after_serialisation(s in document(), exclusive in any::<bool>()) {
        let Some(mut doc) = parse_valid(&s) else { return Ok(()) };
        let (key, trust) = fixture();
        let options = SignOptions {
            c14n: if exclusive { C14nOptions::exclusive() } else { C14nOptions::default() },
            ..SignOptions::default()
        };
        dsig::sign_enveloped(&mut doc, &SignTarget::Document, &key, &options).expect("signs");
        let wire = doc.to_xml();
        let received = xml::parse(wire.as_bytes()).expect("parses");
        let policy = VerifyPolicy { allow_unsigned_comments: true, ..VerifyPolicy::default() };
        let verified = dsig::verify(&received, &trust, &policy);
        prop_assert!(verified.is_ok(), "{wire}: {verified:?}");
    }
}

#[test]
fn generator_mostly_produces_documents_the_properties_can_use() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = document();
    let total = 200;
    let mut usable = 0;
    let mut elements_seen = 0;
    for _ in 0..total {
        let s = strategy.new_tree(&mut runner).expect("value").current();
        if let Some(doc) = parse_valid(&s) {
            usable += 1;
            elements_seen += elements(&doc).len();
        }
    }
    assert!(
        usable * 10 >= total * 7,
        "only {usable} of {total} generated documents are usable"
    );
    assert!(
        elements_seen >= usable * 3,
        "generated documents are too shallow: {elements_seen} elements in {usable}"
    );
}
