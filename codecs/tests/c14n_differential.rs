//! Differential test of our canonicalisation against libxml2, byte for byte.
//!
//! Signatures made here must verify elsewhere, so "close to the spec" is not enough: the bytes
//! must be the ones libxml2 produces. Two references are used:
//!
//! * lxml (libxml2's `xmlC14NDocDumpMemory`) for whole documents, and for exclusive-mode
//!   subtrees. Its element-level C14N copies the element into a fake document, which loses the
//!   xml:* attributes an inclusive apex inherits (C14N 1.0 §2.4), so inclusive subtrees are not
//!   asked of it; and it cannot pass `#default` in a PrefixList (see below).
//! * `xmlsec1 --sign`, whose references go through libxml2's real document-subset path:
//!   subtrees by `#id` (comments stripped, XMLDSig §4.4.3.3) and by `#xpointer(id('id'))`
//!   (comments kept), and the whole document minus the signature by `""` and `#xpointer(/)`
//!   with the enveloped-signature transform. The assertion is on the DigestValue xmlsec1
//!   writes; the "PreDigest" buffer it prints is only there to explain a mismatch.
//!
//! lxml wheels bundle their own libxml2 while xmlsec1 links the system one, so the two
//! references are usually different libxml2 versions; agreeing with both is the goal.
//!
//! Inputs are the hand-written corpus in `tests/corpus/c14n/` (see its README.md) and
//! documents from a seeded generator below. All mismatches are collected and reported together.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use tereze_codecs::c14n::{self, C14nOptions, Mode, NodeSet};
use tereze_codecs::pki::{generate_key, KeyKind};
use tereze_codecs::xml::{self, Document, NodeId, WSU_NAMESPACE};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/c14n");
const LXML_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/c14n_lxml.py");
const GENERATED_DOCUMENTS: usize = 40;
const SEED: u64 = 0x7e7e_2e2e_c14e_0001;

const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

// ---------------------------------------------------------------------------------------------
// Tools

/// The references are the point of this test: a missing tool is a failure, never a skip.
fn require_tools() {
    let test = "the C14N differential test";
    common::require_tool(
        test,
        "python3 with lxml",
        &["python3", "-c", "import lxml"],
        "pip install lxml",
    );
    common::require_tool(
        test,
        "xmlsec1",
        &["xmlsec1", "--version"],
        "apt-get install -y xmlsec1",
    );
}

// ---------------------------------------------------------------------------------------------
// Inputs

struct Source {
    label: String,
    path: PathBuf,
    bytes: Vec<u8>,
    /// Generated documents live in a temporary directory that is gone when a failure is read,
    /// so their text goes into the report.
    generated: bool,
}

fn sources(dir: &Path) -> Vec<Source> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("the C14N corpus directory exists")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 20,
        "the C14N corpus in {CORPUS} looks incomplete"
    );
    let mut out: Vec<Source> = paths
        .into_iter()
        .map(|path| Source {
            label: format!(
                "corpus/c14n/{}",
                path.file_name().expect("file name").to_string_lossy()
            ),
            bytes: std::fs::read(&path).expect("read corpus file"),
            path,
            generated: false,
        })
        .collect();
    let mut rng = Rng(SEED);
    for n in 0..GENERATED_DOCUMENTS {
        let text = Generator::new(&mut rng, n).document();
        let path = dir.join(format!("generated-{n:02}.xml"));
        std::fs::write(&path, text.as_bytes()).expect("write generated document");
        out.push(Source {
            label: format!("generated-{n:02}.xml (seed {SEED:#x})"),
            path,
            bytes: text.into_bytes(),
            generated: true,
        });
    }
    out
}

/// An element that a reference can address by identifier.
struct Target {
    id: String,
    node: NodeId,
    /// Local name of the identifier attribute (`Id`, `ID`, `id`, or `Id` of `wsu:Id`).
    attribute: String,
    namespaced_attribute: bool,
    /// How xmlsec1's `--id-attr` names the element: `local` or `namespace-uri:local`.
    element: String,
}

/// Identifier values that survive being written into `URI="#..."` and `id('...')` unchanged.
fn is_plain_id(v: &str) -> bool {
    let mut chars = v.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn targets(doc: &Document) -> Vec<Target> {
    let mut out = Vec::new();
    for n in doc.descendants_or_self(doc.root()) {
        // The signature template goes under the root, and it must stay outside the subtree.
        if n == doc.root() {
            continue;
        }
        let Some(e) = doc.element(n) else { continue };
        for a in &e.attributes {
            let is_id = match a.namespace.as_deref() {
                None => matches!(a.name.local.as_str(), "Id" | "ID" | "id"),
                Some(ns) => ns == WSU_NAMESPACE && a.name.local == "Id",
            };
            if !is_id || !is_plain_id(&a.value) {
                continue;
            }
            out.push(Target {
                id: a.value.clone(),
                node: n,
                attribute: a.name.local.clone(),
                namespaced_attribute: a.namespace.is_some(),
                element: match &e.namespace {
                    Some(ns) => format!("{ns}:{}", e.name.local),
                    None => e.name.local.clone(),
                },
            });
        }
    }
    out
}

/// An `InclusiveNamespaces PrefixList` for the document: every declared prefix but the
/// alphabetically first (so one declared prefix always stays exclusive) plus `#default` when a
/// default namespace is declared anywhere.
fn prefix_list(doc: &Document) -> Option<Vec<String>> {
    let mut prefixes = BTreeSet::new();
    let mut default = false;
    for n in doc.descendants_or_self(doc.root()) {
        let Some(e) = doc.element(n) else { continue };
        for d in &e.namespace_decls {
            match &d.prefix {
                Some(p) if p != "xml" => {
                    prefixes.insert(p.clone());
                }
                Some(_) => {}
                None => default = true,
            }
        }
    }
    let mut list: Vec<String> = prefixes.into_iter().skip(1).collect();
    if default {
        list.push("#default".into());
    }
    (!list.is_empty()).then_some(list)
}

// ---------------------------------------------------------------------------------------------
// Variants and mismatches

#[derive(Clone)]
struct Variant {
    mode: Mode,
    with_comments: bool,
    prefixes: Vec<String>,
}

impl Variant {
    fn options(&self) -> C14nOptions {
        C14nOptions {
            mode: self.mode,
            with_comments: self.with_comments,
            inclusive_prefixes: self.prefixes.clone(),
        }
    }

    fn describe(&self) -> String {
        let mut s = match self.mode {
            Mode::Inclusive => "inclusive".to_owned(),
            Mode::Exclusive => "exclusive".to_owned(),
        };
        if self.with_comments {
            s.push_str(" with comments");
        }
        if !self.prefixes.is_empty() {
            s.push_str(&format!(" PrefixList=\"{}\"", self.prefixes.join(" ")));
        }
        s
    }
}

/// Each mode with and without comments, plus exclusive with and without comments under the
/// document's PrefixList when it has one.
fn variants(prefixes: &Option<Vec<String>>, modes: &[Mode]) -> Vec<Variant> {
    let mut out = Vec::new();
    for &mode in modes {
        for with_comments in [false, true] {
            out.push(Variant {
                mode,
                with_comments,
                prefixes: Vec::new(),
            });
        }
    }
    if let Some(p) = prefixes {
        for with_comments in [false, true] {
            out.push(Variant {
                mode: Mode::Exclusive,
                with_comments,
                prefixes: p.clone(),
            });
        }
    }
    out
}

struct Mismatch {
    source: String,
    case: String,
    ours: Vec<u8>,
    reference: Result<Vec<u8>, String>,
    note: String,
    document: Option<String>,
}

fn escaped(bytes: &[u8]) -> String {
    format!("\"{}\"", String::from_utf8_lossy(bytes).escape_debug())
}

/// Whole outputs when short, otherwise a window around the first difference.
fn excerpt(bytes: &[u8], at: usize) -> String {
    const SHORT: usize = 800;
    const WINDOW: usize = 160;
    if bytes.len() <= SHORT {
        return escaped(bytes);
    }
    let mut start = at.saturating_sub(WINDOW).min(bytes.len());
    let mut end = (at + WINDOW).min(bytes.len());
    // Cut on character boundaries so the excerpt shows real text, not replacement characters.
    while start > 0 && (bytes[start] & 0xC0) == 0x80 {
        start -= 1;
    }
    while end < bytes.len() && (bytes[end] & 0xC0) == 0x80 {
        end += 1;
    }
    format!(
        "[{} bytes, {start}..{end}] ...{}...",
        bytes.len(),
        escaped(&bytes[start..end])
    )
}

fn render(m: &Mismatch) -> String {
    let mut s = format!("--- {} [{}]\n", m.source, m.case);
    match &m.reference {
        Ok(reference) => {
            let at = m
                .ours
                .iter()
                .zip(reference.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(m.ours.len().min(reference.len()));
            s.push_str(&format!("  first difference at byte {at}\n"));
            s.push_str(&format!("  ours:      {}\n", excerpt(&m.ours, at)));
            s.push_str(&format!("  reference: {}\n", excerpt(reference, at)));
        }
        Err(e) => {
            s.push_str(&format!("  ours:      {}\n", excerpt(&m.ours, 0)));
            s.push_str(&format!("  reference: (no bytes) {e}\n"));
        }
    }
    if !m.note.is_empty() {
        s.push_str(&format!("  {}\n", m.note));
    }
    s
}

fn assert_no_mismatches(what: &str, compared: usize, mismatches: &[Mismatch]) {
    eprintln!(
        "{what}: {compared} cases compared, {} mismatches",
        mismatches.len()
    );
    if mismatches.is_empty() {
        return;
    }
    let mut report = format!(
        "{what}: {} of {compared} cases differ from libxml2\n",
        mismatches.len()
    );
    for m in mismatches {
        report.push_str(&render(m));
    }
    // Generated documents exist only in a deleted temporary directory: show each one once.
    let mut shown = BTreeSet::new();
    for m in mismatches {
        if let Some(d) = &m.document {
            if shown.insert(&m.source) {
                report.push_str(&format!("=== {}:\n{}\n", m.source, escaped(d.as_bytes())));
            }
        }
    }
    panic!("{report}");
}

fn document_text(source: &Source) -> Option<String> {
    source
        .generated
        .then(|| String::from_utf8_lossy(&source.bytes).into_owned())
}

fn parse_failure(source: &Source, error: &xml::ParseError) -> Mismatch {
    Mismatch {
        source: source.label.clone(),
        case: "parse".into(),
        ours: Vec::new(),
        reference: Err("not compared".into()),
        note: format!("our parser rejects a document libxml2 accepts: {error}"),
        document: document_text(source),
    }
}

// ---------------------------------------------------------------------------------------------
// lxml

struct LxmlCase {
    source: usize,
    id: Option<String>,
    variant: Variant,
    ours: Vec<u8>,
}

/// Runs every case through one python process.
fn run_lxml(sources: &[Source], cases: &[LxmlCase]) -> Vec<Result<Vec<u8>, String>> {
    let input: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "file": sources[c.source].path.to_string_lossy(),
                "exclusive": c.variant.mode == Mode::Exclusive,
                "with_comments": c.variant.with_comments,
                "prefixes": c.variant.prefixes,
                "id": c.id,
            })
        })
        .collect();
    let input = serde_json::to_vec(&input).expect("cases serialise");
    // The script answers `[{"ok": "hex"} | {"error": "message"}, ...]`.
    common::python_answers(LXML_SCRIPT, input, cases.len())
        .iter()
        .map(common::ok_or_error)
        .collect()
}

#[test]
fn whole_documents_and_exclusive_subtrees_match_lxml() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let sources = sources(dir.path());
    let mut mismatches = Vec::new();
    let mut cases = Vec::new();
    let (mut whole, mut subtrees) = (0, 0);
    for (i, source) in sources.iter().enumerate() {
        let doc = match xml::parse(&source.bytes) {
            Ok(d) => d,
            Err(e) => {
                mismatches.push(parse_failure(source, &e));
                continue;
            }
        };
        // lxml passes on only prefixes that occur as names in the document (serializer.pxi,
        // _convert_ns_prefixes), so `#default` never reaches libxml2 through it; the xmlsec1
        // test covers `#default`.
        let prefixes = prefix_list(&doc)
            .map(|p| {
                p.into_iter()
                    .filter(|p| p != "#default")
                    .collect::<Vec<_>>()
            })
            .filter(|p| !p.is_empty());
        for variant in variants(&prefixes, &[Mode::Inclusive, Mode::Exclusive]) {
            let ours = c14n::canonicalize(&doc, NodeSet::document(), &variant.options());
            cases.push(LxmlCase {
                source: i,
                id: None,
                variant,
                ours,
            });
            whole += 1;
        }
        // The script finds subtrees by unprefixed Id/ID/id only.
        for target in targets(&doc).iter().filter(|t| !t.namespaced_attribute) {
            for variant in variants(&prefixes, &[Mode::Exclusive]) {
                let ours =
                    c14n::canonicalize(&doc, NodeSet::subtree(target.node), &variant.options());
                cases.push(LxmlCase {
                    source: i,
                    id: Some(target.id.clone()),
                    variant,
                    ours,
                });
                subtrees += 1;
            }
        }
    }
    let results = run_lxml(&sources, &cases);
    for (case, reference) in cases.iter().zip(results) {
        if reference.as_ref().is_ok_and(|r| *r == case.ours) {
            continue;
        }
        let source = &sources[case.source];
        mismatches.push(Mismatch {
            source: source.label.clone(),
            case: match &case.id {
                Some(id) => format!("lxml, subtree #{id}, {}", case.variant.describe()),
                None => format!("lxml, whole document, {}", case.variant.describe()),
            },
            ours: case.ours.clone(),
            reference,
            note: String::new(),
            document: document_text(source),
        });
    }
    assert_no_mismatches(
        &format!("lxml ({whole} whole-document and {subtrees} exclusive subtree cases)"),
        cases.len(),
        &mismatches,
    );
}

// ---------------------------------------------------------------------------------------------
// xmlsec1

struct Reference {
    uri: String,
    /// `None` for the whole document minus the signature.
    target: Option<String>,
    variant: Variant,
}

impl Reference {
    fn xml(&self) -> String {
        let mut transforms = String::new();
        if self.target.is_none() {
            transforms.push_str(&format!("<ds:Transform Algorithm=\"{ENVELOPED}\"/>"));
        }
        let algorithm = self.variant.options().uri();
        if self.variant.prefixes.is_empty() {
            transforms.push_str(&format!("<ds:Transform Algorithm=\"{algorithm}\"/>"));
        } else {
            transforms.push_str(&format!(
                "<ds:Transform Algorithm=\"{algorithm}\"><ec:InclusiveNamespaces xmlns:ec=\"{}\" \
                 PrefixList=\"{}\"/></ds:Transform>",
                c14n::uri::EXC_C14N,
                self.variant.prefixes.join(" ")
            ));
        }
        format!(
            "<ds:Reference URI=\"{}\"><ds:Transforms>{transforms}</ds:Transforms>\
             <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
             <ds:DigestValue/></ds:Reference>",
            self.uri
        )
    }

    fn describe(&self) -> String {
        match &self.target {
            Some(id) => format!(
                "xmlsec1, URI=\"{}\" (subtree #{id}), {}",
                self.uri,
                self.variant.describe()
            ),
            None => format!(
                "xmlsec1, URI=\"{}\" + enveloped (whole document), {}",
                self.uri,
                self.variant.describe()
            ),
        }
    }
}

fn signature(references: &[&Reference]) -> String {
    let refs: String = references.iter().map(|r| r.xml()).collect();
    format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"{}\"/>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/>\
         {refs}</ds:SignedInfo><ds:SignatureValue/></ds:Signature>",
        c14n::uri::EXC_C14N
    )
}

/// Where the signature template goes: just before the root's end tag. `None` when the root is
/// written `<r/>`; such a document has no subtrees and lxml covers it whole.
fn template_insertion_point(source: &[u8], doc: &Document) -> Option<usize> {
    let name = doc.element(doc.root())?.name.to_string();
    let needle = format!("</{name}");
    let at = source
        .windows(needle.len())
        .rposition(|w| w == needle.as_bytes())?;
    let rest = &source[at + needle.len()..];
    let close = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    (rest[close] == b'>').then_some(at)
}

/// What xmlsec1 computed for one reference.
struct Computed {
    digest: String,
    pre_digest: Option<Vec<u8>>,
}

struct Xmlsec<'a> {
    dir: &'a Path,
    key: PathBuf,
    runs: usize,
}

impl Xmlsec<'_> {
    /// Signs `before + template + after` and returns, per reference in order, its digest and
    /// pre-digest bytes, or xmlsec1's complaint.
    fn sign(
        &mut self,
        before: &[u8],
        after: &[u8],
        references: &[&Reference],
        id_args: &BTreeSet<(String, String)>,
    ) -> Result<Vec<Computed>, String> {
        self.runs += 1;
        let input = self.dir.join(format!("xmlsec-{}.xml", self.runs));
        let output = self.dir.join(format!("xmlsec-{}.out.xml", self.runs));
        let mut bytes = before.to_vec();
        bytes.extend_from_slice(signature(references).as_bytes());
        bytes.extend_from_slice(after);
        std::fs::write(&input, &bytes).expect("write xmlsec1 input");
        let mut cmd = Command::new("xmlsec1");
        // The system CA bundle is never used here and costs several times the signing itself.
        cmd.env("SSL_CERT_FILE", "/dev/null")
            .env("SSL_CERT_DIR", "/dev/null")
            .arg("--sign")
            .arg("--privkey-pem")
            .arg(&self.key);
        for (attribute, element) in id_args {
            cmd.arg(format!("--id-attr:{attribute}")).arg(element);
        }
        cmd.args(["--store-references", "--print-debug", "--output"])
            .arg(&output)
            .arg(&input);
        let out = cmd.output().expect("xmlsec1 runs");
        if !out.status.success() {
            return Err(format!(
                "xmlsec1 failed ({:?}): {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let signed = std::fs::read(&output).expect("xmlsec1 wrote its output");
        let digests = digest_values(&signed);
        if digests.len() != references.len() {
            return Err(format!(
                "expected {} DigestValues in xmlsec1's output, found {}",
                references.len(),
                digests.len()
            ));
        }
        let pre_digests = pre_digests(&out.stdout);
        let complete = pre_digests.len() == references.len();
        Ok(digests
            .into_iter()
            .enumerate()
            .map(|(i, digest)| Computed {
                digest,
                pre_digest: complete.then(|| pre_digests[i].clone()),
            })
            .collect())
    }
}

fn digest_values(signed: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(signed);
    // Only the signature, which is last, holds DigestValues; the document is not searched.
    let Some(start) = text.rfind("<ds:Signature ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = &text[start..];
    while let Some(open) = rest.find("<ds:DigestValue>") {
        rest = &rest[open + "<ds:DigestValue>".len()..];
        let Some(close) = rest.find("</ds:DigestValue>") else {
            break;
        };
        out.push(rest[..close].trim().to_owned());
        rest = &rest[close..];
    }
    out
}

/// The buffers `--print-debug` prints between these markers; xmlsec1 adds a newline after the
/// buffer, before the end marker, which is not part of the data.
fn pre_digests(debug: &[u8]) -> Vec<Vec<u8>> {
    const START: &[u8] = b"== PreDigest data - start buffer:\n";
    const END: &[u8] = b"\n== PreDigest data - end buffer\n";
    let mut out = Vec::new();
    let mut rest = debug;
    while let Some(s) = find(rest, START) {
        rest = &rest[s + START.len()..];
        let Some(e) = find(rest, END) else { break };
        out.push(rest[..e].to_vec());
        rest = &rest[e + END.len()..];
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn digest(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(openssl::sha::sha256(bytes))
}

#[test]
fn subtrees_and_enveloped_documents_match_xmlsec1() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let sources = sources(dir.path());
    let key = dir.path().join("signer.key");
    let pem = generate_key(KeyKind::EcP256)
        .expect("EC key")
        .private_key_to_pem_pkcs8()
        .expect("PEM");
    std::fs::write(&key, pem).expect("write key");
    let mut xmlsec = Xmlsec {
        dir: dir.path(),
        key,
        runs: 0,
    };

    let mut mismatches = Vec::new();
    let (mut compared, mut whole, mut subtrees, mut skipped) = (0, 0, 0, Vec::new());
    for source in &sources {
        let doc = match xml::parse(&source.bytes) {
            Ok(d) => d,
            Err(e) => {
                mismatches.push(parse_failure(source, &e));
                continue;
            }
        };
        let Some(at) = template_insertion_point(&source.bytes, &doc) else {
            skipped.push(source.label.clone());
            continue;
        };
        let prefixes = prefix_list(&doc);
        let targets = targets(&doc);
        let modes = [Mode::Inclusive, Mode::Exclusive];
        let mut references = Vec::new();
        for variant in variants(&prefixes, &modes) {
            let uri = if variant.with_comments {
                "#xpointer(/)"
            } else {
                ""
            };
            references.push(Reference {
                uri: uri.to_owned(),
                target: None,
                variant,
            });
        }
        for t in &targets {
            for variant in variants(&prefixes, &modes) {
                // A bare-name reference strips comments (XMLDSig §4.4.3.3); XPointer keeps them.
                let uri = if variant.with_comments {
                    format!("#xpointer(id('{}'))", t.id)
                } else {
                    format!("#{}", t.id)
                };
                references.push(Reference {
                    uri,
                    target: Some(t.id.clone()),
                    variant,
                });
            }
        }
        let id_args: BTreeSet<(String, String)> = targets
            .iter()
            .map(|t| (t.attribute.clone(), t.element.clone()))
            .collect();

        // Ours runs on the very bytes xmlsec1 sees, template included.
        let (before, after) = source.bytes.split_at(at);
        let all: Vec<&Reference> = references.iter().collect();
        let mut templated = before.to_vec();
        templated.extend_from_slice(signature(&all).as_bytes());
        templated.extend_from_slice(after);
        let tdoc = xml::parse(&templated).expect("the document with the template parses");
        let sig = tdoc
            .child_elements(tdoc.root())
            .last()
            .filter(|s| tdoc.element(*s).is_some_and(|e| e.is(DSIG_NS, "Signature")))
            .unwrap_or_else(|| {
                panic!(
                    "{}: the template is not the root's last element",
                    source.label
                )
            });

        // One process per document; only when xmlsec1 refuses the lot is each reference
        // retried alone, so one bad reference cannot hide the others.
        let computed: Vec<Result<Computed, String>> =
            match xmlsec.sign(before, after, &all, &id_args) {
                Ok(c) => c.into_iter().map(Ok).collect(),
                Err(_) => all
                    .iter()
                    .map(|r| {
                        xmlsec
                            .sign(before, after, &[*r], &id_args)
                            .map(|mut c| c.remove(0))
                    })
                    .collect(),
            };

        for (reference, computed) in references.iter().zip(computed) {
            compared += 1;
            let nodes = match &reference.target {
                None => {
                    whole += 1;
                    NodeSet::document().excluding(sig)
                }
                Some(id) => {
                    subtrees += 1;
                    match tdoc.find_by_id(id) {
                        Ok(n) => NodeSet::subtree(n),
                        Err(e) => {
                            mismatches.push(Mismatch {
                                source: source.label.clone(),
                                case: reference.describe(),
                                ours: Vec::new(),
                                reference: Err("not compared".into()),
                                note: format!("find_by_id: {e}"),
                                document: document_text(source),
                            });
                            continue;
                        }
                    }
                }
            };
            let ours = c14n::canonicalize(&tdoc, nodes, &reference.variant.options());
            let (reference_bytes, note) = match computed {
                Err(e) => (Err(e), String::new()),
                Ok(c) => {
                    let ours_digest = digest(&ours);
                    let extraction_ok = c
                        .pre_digest
                        .as_deref()
                        .is_some_and(|p| digest(p) == c.digest);
                    if ours_digest == c.digest && extraction_ok {
                        continue;
                    }
                    let note = if extraction_ok {
                        format!("digest ours {ours_digest}, xmlsec1 {}", c.digest)
                    } else {
                        format!(
                            "digest ours {ours_digest}, xmlsec1 {}; the PreDigest text could not \
                             be matched to xmlsec1's DigestValue (harness problem)",
                            c.digest
                        )
                    };
                    match c.pre_digest {
                        Some(p) => (Ok(p), note),
                        None => (Err("PreDigest buffer not found".into()), note),
                    }
                }
            };
            mismatches.push(Mismatch {
                source: source.label.clone(),
                case: reference.describe(),
                ours,
                reference: reference_bytes,
                note,
                document: document_text(source),
            });
        }
    }
    eprintln!(
        "xmlsec1: {} runs; not templated (root written <r/>): {skipped:?}",
        xmlsec.runs
    );
    assert_no_mismatches(
        &format!("xmlsec1 ({whole} enveloped whole-document and {subtrees} subtree cases)"),
        compared,
        &mismatches,
    );
}

// ---------------------------------------------------------------------------------------------
// Generator

/// SplitMix64: a few lines, deterministic on every platform, and good enough to vary documents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn join(&mut self, pieces: &[&str], max: usize) -> String {
        (0..=self.below(max)).map(|_| self.pick(pieces)).collect()
    }
}

const PREFIXES: &[&str] = &["a", "b", "c", "д"];
// Repeated URIs make different prefixes share a namespace, which the attribute sort must see.
const URIS: &[&str] = &["urn:x", "urn:y", "http://example.org/z", "urn:x", "urn:a:b"];
const DEFAULT_URIS: &[&str] = &["urn:x", "urn:d", "", "http://example.org/z"];
const ELEMENT_NAMES: &[&str] = &["e", "f", "item", "Тауар", "g"];
const ATTRIBUTE_NAMES: &[&str] = &["a", "b", "k", "Z", "ё", "n1", "_x", "Ә"];
const TEXT: &[&str] = &[
    "plain",
    " ",
    "&amp;",
    "&lt;",
    "&gt;",
    ">",
    "\"",
    "'",
    "&#13;",
    "&#xD;",
    "&#10;",
    "&#9;",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "Қазақстан",
    "Декларация",
    "€",
    "]]&gt;",
    "&#x1F600;",
    "&quot;",
    "&apos;",
    "  ",
];
const ATTRIBUTE_TEXT: &[&str] = &[
    "v",
    " ",
    "&amp;",
    "&lt;",
    ">",
    "&quot;",
    "'",
    "&#13;",
    "&#10;",
    "&#9;",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "Қ",
    "&#x20;",
    "&#xD;&#xA;",
    "&gt;",
];
const CDATA_TEXT: &[&str] = &[
    "x", "<", ">", "&", "]", "\r\n", "\r", "Ә", " ", "\"", "&amp;",
];
const COMMENT_TEXT: &[&str] = &["c", " ", "-", "Қ", "<x/>", "&amp;", "\r\n", ">", "\t"];
const PI_TARGETS: &[&str] = &["pi", "x-pi", "тест", "p.q"];
const PI_DATA: &[&str] = &["d", "x=\"1\"", " ", "<&>", "Қ", "\r\n", "?", "  ", "\t"];
const MAX_DEPTH: usize = 6;

struct Generator<'r> {
    rng: &'r mut Rng,
    document: usize,
    /// Namespace bindings in scope: (prefix, `""` for the default; uri).
    scope: Vec<(&'static str, &'static str)>,
    next_id: usize,
    wsu: bool,
}

impl<'r> Generator<'r> {
    fn new(rng: &'r mut Rng, document: usize) -> Self {
        let wsu = rng.percent(30);
        Self {
            rng,
            document,
            scope: Vec::new(),
            next_id: 0,
            wsu,
        }
    }

    fn document(mut self) -> String {
        let mut out = String::new();
        if self.rng.percent(30) {
            out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        }
        for _ in 0..self.rng.below(3) {
            self.misc(&mut out);
            out.push_str(self.rng.pick(&["\n", "\r\n", " ", ""]));
        }
        self.element(&mut out, 0);
        for _ in 0..self.rng.below(3) {
            out.push_str(self.rng.pick(&["\n", "\r\n", " ", ""]));
            self.misc(&mut out);
        }
        out.push('\n');
        out
    }

    fn lookup(&self, prefix: &str) -> Option<&'static str> {
        self.scope
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map(|(_, u)| *u)
    }

    fn element(&mut self, out: &mut String, depth: usize) {
        let mark = self.scope.len();
        let mut attributes: Vec<String> = Vec::new();
        if depth == 0 && self.wsu {
            attributes.push(format!("xmlns:wsu=\"{WSU_NAMESPACE}\""));
        }
        let mut declared: Vec<&str> = Vec::new();
        for _ in 0..self.rng.below(3) {
            let prefix = if self.rng.percent(30) {
                ""
            } else {
                self.rng.pick(PREFIXES)
            };
            if declared.contains(&prefix) {
                continue;
            }
            declared.push(prefix);
            let uri = if prefix.is_empty() {
                let uri = self.rng.pick(DEFAULT_URIS);
                attributes.push(format!("xmlns=\"{uri}\""));
                uri
            } else {
                let uri = self.rng.pick(URIS);
                attributes.push(format!("xmlns:{prefix}=\"{uri}\""));
                uri
            };
            self.scope.push((prefix, uri));
        }
        let bound: Vec<(&str, &str)> = PREFIXES
            .iter()
            .filter_map(|p| self.lookup(p).map(|u| (*p, u)))
            .collect();

        let local = self.rng.pick(ELEMENT_NAMES);
        let name = if !bound.is_empty() && self.rng.percent(40) {
            format!("{}:{local}", self.rng.pick(&bound).0)
        } else {
            local.to_owned()
        };
        // Expanded names, so two prefixes bound to one URI cannot make a duplicate attribute.
        let mut expanded: Vec<(&str, &str)> = Vec::new();
        for _ in 0..self.rng.below(5) {
            let local = self.rng.pick(ATTRIBUTE_NAMES);
            let (qname, key) = if !bound.is_empty() && self.rng.percent(50) {
                let (p, u) = self.rng.pick(&bound);
                (format!("{p}:{local}"), (u, local))
            } else {
                (local.to_owned(), ("", local))
            };
            if expanded.contains(&key) {
                continue;
            }
            expanded.push(key);
            let value = self.rng.join(ATTRIBUTE_TEXT, 5);
            attributes.push(format!("{qname}=\"{value}\""));
        }
        if self.rng.percent(12) {
            let lang = self.rng.pick(&["kk", "ru", "en", ""]);
            attributes.push(format!("xml:lang=\"{lang}\""));
        }
        if self.rng.percent(8) {
            let space = self.rng.pick(&["preserve", "default"]);
            attributes.push(format!("xml:space=\"{space}\""));
        }
        if depth > 0 && self.rng.percent(35) {
            let id = format!("g{}n{}", self.document, self.next_id);
            self.next_id += 1;
            let attribute = if self.wsu && self.rng.percent(30) {
                "wsu:Id"
            } else {
                self.rng.pick(&["Id", "Id", "ID", "id"])
            };
            attributes.push(format!("{attribute}=\"{id}\""));
        }
        for i in (1..attributes.len()).rev() {
            let j = self.rng.below(i + 1);
            attributes.swap(i, j);
        }

        out.push('<');
        out.push_str(&name);
        for a in &attributes {
            out.push_str(self.rng.pick(&[" ", " ", "\n  ", "\t", "\r\n "]));
            out.push_str(a);
        }
        // A root with content, so every generated document can carry the signature template.
        let children = match depth {
            0 => 1 + self.rng.below(5),
            d if d >= MAX_DEPTH => 0,
            _ => self.rng.below(6),
        };
        if children == 0 && self.rng.percent(50) {
            out.push_str(self.rng.pick(&["/>", " />"]));
        } else {
            out.push('>');
            for _ in 0..children {
                match self.rng.below(20) {
                    0..=8 => self.element(out, depth + 1),
                    9..=13 => out.push_str(&self.rng.join(TEXT, 5)),
                    14..=15 => {
                        let mut data = self.rng.join(CDATA_TEXT, 6);
                        while data.contains("]]>") {
                            data = data.replace("]]>", "]] >");
                        }
                        out.push_str(&format!("<![CDATA[{data}]]>"));
                    }
                    _ => self.misc(out),
                }
            }
            out.push_str(&format!("</{name}>"));
        }
        self.scope.truncate(mark);
    }

    /// A comment or processing instruction.
    fn misc(&mut self, out: &mut String) {
        if self.rng.percent(50) {
            let mut text = self.rng.join(COMMENT_TEXT, 6);
            while text.contains("--") {
                text = text.replace("--", "- -");
            }
            if text.ends_with('-') {
                text.push(' ');
            }
            out.push_str(&format!("<!--{text}-->"));
        } else {
            let target = self.rng.pick(PI_TARGETS);
            if self.rng.percent(30) {
                out.push_str(&format!("<?{target}?>"));
            } else {
                let mut data = self.rng.join(PI_DATA, 5);
                while data.contains("?>") {
                    data = data.replace("?>", "? >");
                }
                out.push_str(&format!("<?{target} {data}?>"));
            }
        }
    }
}
