//! Every sample under `codecs/samples/<format>/` is exercised: each `valid-*.xml` translates
//! (national → EAEU, or checks as an EAEU document), each `invalid-*.xml` fails with exactly
//! the error in its `.expected` file, and every national form round-trips through the EAEU
//! document to every other form of the same document, keeping every mapped data element.
//! New mappings and samples are picked up without touching this file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tereze_codecs::c14n::{self, C14nOptions, NodeSet};
use tereze_codecs::translate::{Catalog, FormatKind};
use tereze_codecs::xml::{self, Document};
use tereze_reference_data::{Directories, On};

struct Sample {
    format: String,
    path: PathBuf,
    valid: bool,
}

fn samples() -> Vec<Sample> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("samples dir").flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        let format = dir.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(dir.path()).expect("format dir").flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".xml") {
                continue;
            }
            out.push(Sample {
                format: format.clone(),
                path: f.path(),
                valid: name.starts_with("valid"),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn load(path: &Path) -> Document {
    xml::parse(&std::fs::read(path).expect("read sample"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn canonical(doc: &Document) -> String {
    String::from_utf8(c14n::canonicalize(
        doc,
        NodeSet::document(),
        &C14nOptions::exclusive(),
    ))
    .expect("utf-8")
}

fn fixture() -> (Catalog, Directories) {
    (
        Catalog::builtin().expect("built-in mappings load"),
        Directories::builtin(),
    )
}

/// National → EAEU, or the EAEU document itself re-emitted through its model.
fn to_eaeu(
    catalog: &Catalog,
    dirs: &On<'_>,
    format: &str,
    doc: &Document,
) -> Result<Document, String> {
    let kind = catalog
        .formats()
        .into_iter()
        .find(|f| f.id == format)
        .map(|f| f.kind)
        .unwrap_or_else(|| panic!("samples/{format}/ names no known format"));
    let to = match kind {
        FormatKind::Eaeu => {
            catalog
                .check_eaeu(dirs, format, doc)
                .map_err(|e| e.to_string())?;
            return Ok(doc.clone());
        }
        FormatKind::National => "eaeu",
        FormatKind::Submission => return Err("submission sets are tested on their own".into()),
    };
    let mut results = catalog
        .translate(dirs, format, to, doc)
        .map_err(|e| e.to_string())?;
    assert_eq!(results.len(), 1);
    Ok(results.remove(0).document)
}

#[test]
fn every_format_has_a_valid_sample_and_every_sample_behaves() {
    let (catalog, all_dirs) = fixture();
    let dirs = all_dirs.today();
    let all = samples();
    for f in catalog.formats() {
        if f.kind != FormatKind::Submission {
            assert!(
                all.iter().any(|s| s.format == f.id && s.valid),
                "format {} has no samples/{}/valid-*.xml",
                f.id,
                f.id
            );
        }
    }
    let mut failures = Vec::new();
    for s in &all {
        if catalog
            .formats()
            .iter()
            .any(|f| f.id == s.format && f.kind == FormatKind::Submission)
        {
            continue;
        }
        let doc = load(&s.path);
        let result = to_eaeu(&catalog, &dirs, &s.format, &doc);
        match (s.valid, result) {
            (true, Ok(eaeu)) => {
                let model = catalog
                    .mapping(&s.format)
                    .map_or(s.format.clone(), |m| m.document.clone());
                if let Err(e) = catalog.check_eaeu(&dirs, &model, &eaeu) {
                    failures.push(format!(
                        "{}: the EAEU result does not check: {e}",
                        s.path.display()
                    ));
                }
            }
            (true, Err(e)) => {
                failures.push(format!("{}: valid sample refused: {e}", s.path.display()))
            }
            (false, Ok(_)) => {
                failures.push(format!("{}: invalid sample accepted", s.path.display()))
            }
            (false, Err(e)) => {
                let expected_path = s.path.with_extension("expected");
                let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
                    panic!("{} needs {}", s.path.display(), expected_path.display())
                });
                if e != expected.trim() {
                    failures.push(format!(
                        "{}:\n  expected: {}\n  got:      {e}",
                        s.path.display(),
                        expected.trim()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn national_forms_round_trip_through_the_eaeu_document() {
    let (catalog, all_dirs) = fixture();
    let dirs = all_dirs.today();
    // EAEU document id → its national formats.
    let mut forms: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in catalog.formats() {
        if let (FormatKind::National, Some(d)) = (f.kind, f.document) {
            forms.entry(d).or_default().push(f.id);
        }
    }
    let mut checked = 0;
    for s in samples()
        .iter()
        .filter(|s| s.valid && catalog.mapping(&s.format).is_some())
    {
        let doc = load(&s.path);
        let first = to_eaeu(&catalog, &dirs, &s.format, &doc)
            .unwrap_or_else(|e| panic!("{}: {e}", s.path.display()));
        let document = catalog
            .mapping(&s.format)
            .map_or(s.format.clone(), |m| m.document.clone());
        for target in forms.get(&document).into_iter().flatten() {
            // EAEU → target national form → EAEU again: nothing mapped may change or vanish.
            let national = catalog
                .translate(&dirs, &document, target, &first)
                .unwrap_or_else(|e| panic!("{} → {target}: {e}", s.path.display()));
            let national = &national[0].document;
            let reparsed =
                xml::parse(national.to_xml_pretty().as_bytes()).expect("our output parses");
            let again = catalog
                .translate(&dirs, target, "eaeu", &reparsed)
                .unwrap_or_else(|e| {
                    panic!(
                        "{} → {target} → eaeu: {e}\n{}",
                        s.path.display(),
                        national.to_xml_pretty()
                    )
                });
            assert_eq!(
                canonical(&again[0].document),
                canonical(&first),
                "{} → {target} → eaeu changed the document",
                s.path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no round trip was checked");
}

#[test]
fn a_submission_yields_one_message_per_document_and_authority() {
    let (catalog, all_dirs) = fixture();
    let dirs = all_dirs.today();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/kz.export-submission");
    let out = catalog
        .translate(
            &dirs,
            "kz.export-submission",
            "eaeu",
            &load(&dir.join("valid-grain.xml")),
        )
        .expect("translates");
    let got: Vec<(String, String)> = out
        .iter()
        .map(|t| {
            let r = t.recipient.as_ref().expect("a recipient per message");
            (t.format.clone(), format!("{}/{}", r.country, r.authority))
        })
        .collect();
    assert_eq!(
        got,
        [
            ("eaeu.export-declaration".to_string(), "RU/FCS".to_string()),
            ("eaeu.phytosanitary-certificate".into(), "RU/RSHN".into()),
            ("eaeu.certificate-of-origin".into(), "RU/FCS".into()),
        ]
    );
    // Each message is exactly what its part alone translates to.
    let alone = catalog
        .translate(
            &dirs,
            "kz.export-declaration",
            "eaeu",
            &load(
                &Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("samples/kz.export-declaration/valid-grain.xml"),
            ),
        )
        .expect("translates");
    assert_eq!(canonical(&out[0].document), canonical(&alone[0].document));
    for (name, expected) in [
        ("invalid-no-declaration", "invalid-no-declaration.expected"),
        ("invalid-unknown-part", "invalid-unknown-part.expected"),
        (
            "invalid-bad-declaration",
            "invalid-bad-declaration.expected",
        ),
    ] {
        let e = catalog
            .translate(
                &dirs,
                "kz.export-submission",
                "eaeu",
                &load(&dir.join(format!("{name}.xml"))),
            )
            .map(|_| ())
            .expect_err(name);
        let want = std::fs::read_to_string(dir.join(expected)).expect("expected file");
        assert_eq!(e.to_string(), want.trim(), "{name}");
    }
}

#[test]
fn eaeu_documents_normalise_to_a_fixed_point() {
    let (catalog, all_dirs) = fixture();
    let dirs = all_dirs.today();
    for s in samples()
        .iter()
        .filter(|s| s.valid && catalog.model(&s.format).is_some())
    {
        let doc = load(&s.path);
        let once = catalog
            .translate(&dirs, &s.format, &s.format, &doc)
            .expect("normalises");
        let twice = catalog
            .translate(&dirs, &s.format, "eaeu", &once[0].document)
            .expect("normalises again");
        assert_eq!(
            canonical(&once[0].document),
            canonical(&twice[0].document),
            "{}",
            s.path.display()
        );
    }
}

#[test]
fn kz_to_ru_keeps_every_data_element() {
    let (catalog, all_dirs) = fixture();
    let dirs = all_dirs.today();
    let kz = load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples/kz.export-declaration/valid-grain.xml"),
    );
    let ru = catalog
        .translate(&dirs, "kz.export-declaration", "ru.export-declaration", &kz)
        .expect("translates");
    let ru_sample = load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples/ru.export-declaration/valid-grain.xml"),
    );
    // The Russian sample is the same declaration written by hand in the Russian form.
    assert_eq!(
        canonical(&ru[0].document),
        canonical(&xml::parse(ru_sample_compact(&ru_sample).as_bytes()).expect("parses"))
    );
}

/// The hand-written sample without the indentation whitespace, as the engine writes it.
fn ru_sample_compact(doc: &Document) -> String {
    let pretty = doc.to_xml();
    let mut out = String::new();
    for line in pretty.lines() {
        out.push_str(line.trim());
    }
    out
}
