//! Reading non-UTF-8 documents, differentially against libxml2 (issue 27).
//!
//! Documents in each supported encoding, with Russian, Armenian, Kazakh and Latin-1 text, are
//! made by Python's codecs (an encoder independent of `encoding_rs`, which decodes here); lxml
//! (`etree.tostring(method="c14n")`) and `xmllint --c14n` read the same bytes. Where libxml2
//! accepts, our canonical form (with comments) must be byte-identical to both; where it
//! refuses, we must refuse too, except for the cases in `EXCEPTIONS`, each with its reason
//! (docs/decisions/0017-encodings-through-encoding-rs.md), and the cases in `LIBXML2_SPLIT`,
//! where the two libxml2 versions disagree and we side with the newer. Characters an encoding cannot carry
//! become character references (`xmlcharrefreplace`), as a windows-1251 system writes them.
//!
//! Also: a national sample transcoded to windows-1251 translates to the same EAEU document as
//! the UTF-8 original, and a windows-1251 document signed by `xmlsec1` verifies here.

mod common;

use std::process::Command;

use tereze_codecs::c14n::{self, C14nOptions, NodeSet};
use tereze_codecs::dsig::{self, VerifyPolicy};
use tereze_codecs::pki::KeyKind;
use tereze_codecs::translate::Catalog;
use tereze_codecs::xml;
use tereze_reference_data::Directories;

const LXML_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/reference/encodings_lxml.py"
);

const RUSSIAN: &str = "Пшеница твёрдая «Алтын», класс №3 — ЁЖЩЪЭЮЯ";
const ARMENIAN: &str = "Հայաստանի Հանրապետություն, Երևան";
const KAZAKH: &str = "Қатты бидай, Қазақстан Республикасы: әғқңөұүһі";
const LATIN: &str = "Café crème, Zürich — ÿ ß Æ \u{80}\u{9F}";

/// The references are the point of this test: a missing tool is a failure, never a skip.
fn require_tools() {
    let test = "the encodings differential test";
    common::require_tool(
        test,
        "python3 with lxml",
        &["python3", "-c", "import lxml"],
        "pip install lxml",
    );
    common::require_tool(
        test,
        "xmllint",
        &["xmllint", "--version"],
        "apt-get install -y libxml2-utils",
    );
}

/// One document for the reference script to encode.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Case {
    #[serde(skip)]
    name: String,
    text: String,
    /// Python's codec name.
    codec: String,
    errors: String,
    /// A byte order mark, hex.
    bom: String,
    prefix_hex: String,
    suffix_hex: String,
    /// Text after `suffix_hex`, in the same codec.
    tail: String,
}

/// The document: text in an attribute (both quotes), an element, a comment, a PI and CDATA,
/// with a CR LF to normalise and a character reference; `name` as an element name when the
/// encoding can carry it.
fn document(declared: Option<&str>, text: &str, name: &str) -> String {
    let decl = declared
        .map(|d| format!("<?xml version=\"1.0\" encoding=\"{d}\"?>\n"))
        .unwrap_or_default();
    format!(
        "{decl}<d:doc xmlns:d=\"urn:tereze:test\" a=\"{text}\" b='{text}'>\r\n  <d:{name} xml:lang=\"x\">{text}</d:{name}>\n  <!-- {text} -->\n  <?pi {text}?>\n  <d:q>&#x10348;&amp;<![CDATA[{text} <>]]></d:q>\n</d:doc>\n"
    )
}

/// Declared label, Python codec, BOM hex, texts, and an element name the encoding carries.
type Encoding = (
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

const ENCODINGS: &[Encoding] = &[
    (
        Some("UTF-8"),
        "utf-8",
        "",
        &[RUSSIAN, ARMENIAN, KAZAKH, LATIN],
        "товар",
    ),
    (
        None,
        "utf-8",
        "",
        &[RUSSIAN, ARMENIAN, KAZAKH, LATIN],
        "ապրանք",
    ),
    (None, "utf-8", "efbbbf", &[KAZAKH], "тауар"),
    (
        Some("UTF-16"),
        "utf-16-le",
        "fffe",
        &[RUSSIAN, ARMENIAN, KAZAKH, LATIN],
        "тауар",
    ),
    (
        Some("UTF-16"),
        "utf-16-be",
        "feff",
        &[RUSSIAN, ARMENIAN, KAZAKH, LATIN],
        "ապրանք",
    ),
    (None, "utf-16-le", "fffe", &[ARMENIAN, KAZAKH], "товар"),
    (None, "utf-16-be", "feff", &[RUSSIAN], "товар"),
    (
        Some("windows-1251"),
        "cp1251",
        "",
        &[RUSSIAN, KAZAKH, ARMENIAN],
        "товар",
    ),
    (Some("cp1251"), "cp1251", "", &[RUSSIAN], "товар"),
    (Some("KOI8-R"), "koi8-r", "", &[RUSSIAN, KAZAKH], "товар"),
    (
        Some("ISO-8859-5"),
        "iso8859-5",
        "",
        &[RUSSIAN, KAZAKH],
        "товар",
    ),
    (Some("cyrillic"), "iso8859-5", "", &[RUSSIAN], "товар"),
    (Some("ISO-8859-1"), "latin-1", "", &[LATIN, RUSSIAN], "item"),
    (Some("latin1"), "latin-1", "", &[LATIN], "café"),
    (Some("US-ASCII"), "ascii", "", &[ARMENIAN, LATIN], "item"),
];

/// Cases libxml2 accepts and we refuse, by name, with why.
const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "UTF-16LE without a BOM, declared UTF-16",
        "XML 1.0 §4.3.3: UTF-16 entities must begin with a byte order mark; libxml2 guesses",
    ),
    (
        "UTF-16LE BOM, declared windows-1251",
        "the declared encoding must match the bytes; libxml2 lets the BOM win",
    ),
    (
        "UTF-16LE BOM, declared UTF-16BE",
        "the declared byte order must match the BOM's; libxml2 lets the BOM win",
    ),
    (
        "declared UTF-7",
        "not in the supported list (libxml2 reads it through iconv)",
    ),
    (
        "declared windows-1252",
        "not in the supported list (libxml2 reads it through iconv)",
    ),
];

/// Cases the two libxml2 versions judge differently (the system's, 2.9 on Debian 12, under
/// `xmllint`; lxml's bundled one, 2.14, newer): lxml refuses, `xmllint` reads, we refuse with
/// the newer one.
const LIBXML2_SPLIT: &[(&str, &str)] = &[
    (
        "UTF-8 BOM, declared KOI8-R",
        "libxml2 2.9 lets the declaration win over the BOM; 2.14 and we refuse the mismatch",
    ),
    (
        "UTF-16BE with an odd byte at the end",
        "libxml2 2.9 drops the odd byte; 2.14 and we refuse it as malformed",
    ),
];

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (declared, codec, bom, texts, name) in ENCODINGS {
        for text in *texts {
            out.push(Case {
                name: format!(
                    "{} ({codec}{}) {}…",
                    declared.unwrap_or("no declaration"),
                    if bom.is_empty() { "" } else { " with BOM" },
                    text.chars().take(12).collect::<String>()
                ),
                text: document(*declared, text, name),
                codec: (*codec).into(),
                errors: "xmlcharrefreplace".into(),
                bom: (*bom).into(),
                ..Case::default()
            });
        }
    }
    let plain = |name: &str, declared: Option<&str>, codec: &str, bom: &str, text: &str| Case {
        name: name.into(),
        text: document(declared, text, "item"),
        codec: codec.into(),
        errors: "xmlcharrefreplace".into(),
        bom: bom.into(),
        ..Case::default()
    };
    // Refused by both.
    out.push(plain(
        "windows-1251 bytes declared UTF-8",
        Some("UTF-8"),
        "cp1251",
        "",
        RUSSIAN,
    ));
    out.push(plain(
        "windows-1251 bytes without a declaration",
        None,
        "cp1251",
        "",
        RUSSIAN,
    ));
    out.push(plain(
        "KOI8-R bytes declared UTF-8",
        Some("UTF-8"),
        "koi8-r",
        "",
        RUSSIAN,
    ));
    out.push(plain(
        "UTF-8 BOM, declared KOI8-R",
        Some("KOI8-R"),
        "koi8-r",
        "efbbbf",
        RUSSIAN,
    ));
    out.push(plain(
        "Latin-1 bytes declared US-ASCII",
        Some("US-ASCII"),
        "latin-1",
        "",
        LATIN,
    ));
    out.push(plain(
        "declared EBCDIC-CP-US",
        Some("EBCDIC-CP-US"),
        "ascii",
        "",
        "x",
    ));
    out.push(Case {
        name: "windows-1251 with its unassigned byte 0x98".into(),
        text: "<?xml version=\"1.0\" encoding=\"windows-1251\"?><r>".into(),
        codec: "cp1251".into(),
        suffix_hex: "98".into(),
        tail: "</r>".into(),
        ..Case::default()
    });
    out.push(Case {
        name: "UTF-16LE with an unpaired surrogate".into(),
        text: "<r>".into(),
        codec: "utf-16-le".into(),
        bom: "fffe".into(),
        suffix_hex: "00d8".into(),
        tail: "x</r>".into(),
        ..Case::default()
    });
    out.push(Case {
        name: "UTF-16BE with an odd byte at the end".into(),
        text: "<r/>".into(),
        codec: "utf-16-be".into(),
        bom: "feff".into(),
        suffix_hex: "0a".into(),
        ..Case::default()
    });
    // The exceptions.
    out.push(plain(
        EXCEPTIONS[0].0,
        Some("UTF-16"),
        "utf-16-le",
        "",
        RUSSIAN,
    ));
    out.push(plain(
        EXCEPTIONS[1].0,
        Some("windows-1251"),
        "utf-16-le",
        "fffe",
        RUSSIAN,
    ));
    out.push(plain(
        EXCEPTIONS[2].0,
        Some("UTF-16BE"),
        "utf-16-le",
        "fffe",
        RUSSIAN,
    ));
    out.push(plain(EXCEPTIONS[3].0, Some("UTF-7"), "ascii", "", "x"));
    out.push(plain(
        EXCEPTIONS[4].0,
        Some("windows-1252"),
        "cp1252",
        "",
        LATIN,
    ));
    out
}

/// What libxml2 made of a case: the bytes (as the script encoded them) and lxml's canonical
/// form or its error.
struct Reference {
    bytes: Vec<u8>,
    lxml: Result<Vec<u8>, String>,
}

fn lxml(cases: &[Case]) -> Vec<Reference> {
    let input = serde_json::to_vec(cases).expect("cases serialise");
    common::python_answers(LXML_SCRIPT, input, cases.len())
        .into_iter()
        .map(|a| Reference {
            bytes: common::from_hex(&a["bytes"]),
            lxml: common::ok_or_error(&a),
        })
        .collect()
}

/// `xmllint --c14n` of the bytes: the canonical form, or its complaint.
fn xmllint(dir: &std::path::Path, i: usize, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let file = dir.join(format!("case-{i}.xml"));
    std::fs::write(&file, bytes).expect("write case");
    let out = Command::new("xmllint")
        .args(["--nonet", "--c14n"])
        .arg(&file)
        .output()
        .expect("xmllint runs");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn ours(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let doc = xml::parse(bytes).map_err(|e| e.to_string())?;
    Ok(c14n::canonicalize(
        &doc,
        NodeSet::document(),
        &C14nOptions {
            with_comments: true,
            ..C14nOptions::default()
        },
    ))
}

#[test]
fn documents_in_each_encoding_canonicalise_as_libxml2_does() {
    require_tools();
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = cases();
    let references = lxml(&cases);
    let mut failures = Vec::new();
    let (mut agreed, mut refused) = (0, 0);
    for (i, (case, r)) in cases.iter().zip(&references).enumerate() {
        let ours = ours(&r.bytes);
        let lint = xmllint(dir.path(), i, &r.bytes);
        let exception = EXCEPTIONS.iter().find(|(name, _)| *name == case.name);
        let split = LIBXML2_SPLIT.iter().find(|(name, _)| *name == case.name);
        if let Some((_, why)) = split {
            if ours.is_err() && r.lxml.is_err() && lint.is_ok() {
                eprintln!("libxml2 versions differ: {}: {why}", case.name);
                refused += 1;
            } else {
                failures.push(format!(
                    "{}: listed as judged differently by the libxml2 versions, but ours {}, lxml {}, xmllint {}",
                    case.name,
                    show(&ours),
                    show(&r.lxml),
                    show(&lint)
                ));
            }
            continue;
        }
        match (exception, &ours, &r.lxml, &lint) {
            (Some((_, why)), Err(_), Ok(_), _) => {
                eprintln!(
                    "known difference: {}: libxml2 reads it, we refuse: {why}",
                    case.name
                )
            }
            (Some(_), _, _, _) => failures.push(format!(
                "{}: listed as a difference (we refuse, libxml2 reads) but ours {:?}, lxml {:?}",
                case.name,
                ours.as_ref().map(|_| "reads"),
                r.lxml.as_ref().map(|_| "reads")
            )),
            (None, Ok(a), Ok(b), Ok(c)) if a == b && a == c => agreed += 1,
            (None, Err(_), Err(_), Err(_)) => refused += 1,
            _ => failures.push(format!(
                "{}:\n  bytes {}\n  ours    {}\n  lxml    {}\n  xmllint {}",
                case.name,
                String::from_utf8_lossy(&r.bytes).escape_debug(),
                show(&ours),
                show(&r.lxml),
                show(&lint)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from libxml2:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Every encoding × text case read alike, and every refusal case refused alike.
    let readable: usize = ENCODINGS.iter().map(|e| e.3.len()).sum();
    assert_eq!(
        (agreed, refused),
        (readable, cases.len() - readable - EXCEPTIONS.len())
    );
}

fn show(r: &Result<Vec<u8>, String>) -> String {
    match r {
        Ok(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Err(e) => format!("refused: {}", e.trim()),
    }
}

/// `text` in windows-1251, characters outside it as character references.
fn windows_1251(text: &str) -> Vec<u8> {
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(text);
    bytes.into_owned()
}

#[test]
fn a_national_document_in_windows_1251_translates_as_its_utf8_original() {
    let catalog = Catalog::builtin().expect("built-in mappings load");
    let all = Directories::builtin();
    let dirs = all.today();
    for (format, sample) in [
        (
            "kz.export-declaration",
            "kz.export-declaration/valid-grain.xml",
        ),
        (
            "ru.export-declaration",
            "ru.export-declaration/valid-grain.xml",
        ),
    ] {
        let path = format!("{}/samples/{sample}", env!("CARGO_MANIFEST_DIR"));
        let original = std::fs::read_to_string(&path).expect("sample");
        assert!(
            original.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{sample}"
        );
        let transcoded = windows_1251(&original.replacen("UTF-8", "windows-1251", 1));
        assert!(
            std::str::from_utf8(&transcoded).is_err(),
            "{sample}: the transcoded bytes are not UTF-8"
        );
        let translate = |bytes: &[u8]| {
            let doc = xml::parse(bytes).unwrap_or_else(|e| panic!("{sample}: {e}"));
            let mut out = catalog
                .translate(&dirs, format, "eaeu", &doc)
                .unwrap_or_else(|e| panic!("{sample}: {e}"));
            assert_eq!(out.len(), 1);
            let eaeu = out.remove(0).document;
            c14n::canonicalize(&eaeu, NodeSet::document(), &C14nOptions::default())
        };
        let from_utf8 = translate(original.as_bytes());
        let from_1251 = translate(&transcoded);
        assert!(
            String::from_utf8_lossy(&from_utf8).contains("Алматы"),
            "{sample}: the EAEU document carries the Russian text"
        );
        assert_eq!(
            String::from_utf8_lossy(&from_1251),
            String::from_utf8_lossy(&from_utf8),
            "{sample}"
        );
    }
}

/// An enveloped signature over the whole document for `xmlsec1 --sign` to fill in.
const SIGNATURE_TEMPLATE: &str = concat!(
    "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">\n",
    "<ds:SignedInfo>\n",
    "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\n",
    "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/>\n",
    "<ds:Reference URI=\"\">\n",
    "<ds:Transforms>\n",
    "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\n",
    "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\n",
    "</ds:Transforms>\n",
    "<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\n",
    "<ds:DigestValue/>\n",
    "</ds:Reference>\n",
    "</ds:SignedInfo>\n",
    "<ds:SignatureValue/>\n",
    "<ds:KeyInfo><ds:X509Data/></ds:KeyInfo>\n",
    "</ds:Signature>\n"
);

#[test]
fn a_windows_1251_document_signed_by_xmlsec1_verifies() {
    let pki = common::Pki::new(KeyKind::EcP256);
    let template = format!(
        "<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n<Declaration xmlns=\"urn:tereze:test\">\n  <Goods>{RUSSIAN}</Goods>\n  <Exporter>{KAZAKH}</Exporter>\n{}</Declaration>\n",
        SIGNATURE_TEMPLATE
    );
    let input = pki.write("template-1251.xml", &windows_1251(&template));
    let output = pki.path("signed-1251.xml");
    let out = common::run(
        common::xmlsec1()
            .arg("--sign")
            .arg("--privkey-pem")
            .arg(format!(
                "{},{}",
                pki.path("signer.key").display(),
                pki.path("signer.pem").display()
            ))
            .arg("--output")
            .arg(&output)
            .arg(&input),
    );
    assert!(
        out.status.success(),
        "xmlsec1 --sign: {}",
        common::text(&out)
    );
    let signed = std::fs::read(&output).expect("signed");
    assert!(
        std::str::from_utf8(&signed).is_err()
            && signed.starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>"),
        "xmlsec1 writes the document in windows-1251"
    );
    let doc = xml::parse(&signed).expect("the signed windows-1251 document parses");
    let verified = dsig::verify(&doc, &pki.trust(), &VerifyPolicy::default())
        .expect("xmlsec1's signature over the windows-1251 document verifies");
    let signed_text = String::from_utf8_lossy(&verified.references[0].canonical).into_owned();
    assert!(signed_text.contains(RUSSIAN), "{signed_text}");
    assert!(
        signed_text.contains(KAZAKH),
        "Kazakh, written as references, is signed as characters: {signed_text}"
    );
    // And the same bytes with one Cyrillic letter changed do not.
    let at = signed
        .windows(2)
        .position(|w| w == windows_1251("Пш").as_slice())
        .expect("the goods text");
    let mut tampered = signed.clone();
    tampered[at] = windows_1251("Р")[0];
    let doc = xml::parse(&tampered).expect("parses");
    assert!(dsig::verify(&doc, &pki.trust(), &VerifyPolicy::default()).is_err());
}

#[test]
fn the_c14n_spec_example_in_iso_8859_1_gives_its_utf8_output() {
    // Canonical XML 1.0 §3.6 ("UTF-8 Encoding"): the input is declared ISO-8859-1, the
    // canonical form is `<doc>©</doc>` in UTF-8. Here the character also as its Latin-1 byte.
    for input in [
        &b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<doc>&#169;</doc>"[..],
        &b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<doc>\xA9</doc>"[..],
    ] {
        let doc = xml::parse(input).expect("parses");
        let out = c14n::canonicalize(&doc, NodeSet::document(), &C14nOptions::default());
        assert_eq!(out, "<doc>\u{A9}</doc>".as_bytes());
    }
}
