//! `tereze translate` through the real binary.

use std::path::{Path, PathBuf};

use crate::util::{arg, code, describe, stderr, stdout, Dir};

fn sample(format: &str, name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../codecs/samples"))
        .join(format)
        .join(name)
}

#[test]
fn list_shows_eaeu_and_national_formats() {
    let d = Dir::new();
    let out = d.tereze(&["translate", "--list"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let list = stdout(&out);
    for id in [
        "eaeu.export-declaration",
        "kz.export-declaration",
        "ru.export-declaration",
    ] {
        assert!(
            list.lines().any(|l| l.starts_with(id)),
            "{id} missing from:\n{list}"
        );
    }
    let kz = list
        .lines()
        .find(|l| l.starts_with("kz.export-declaration"))
        .expect("line");
    assert!(
        kz.contains("national") && kz.contains(" KZ ") && kz.contains("eaeu.export-declaration"),
        "{kz}"
    );
}

#[test]
fn list_shows_the_forms_of_all_five_member_states_and_the_partner() {
    let d = Dir::new();
    let out = d.tereze(&["translate", "--list"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let list = stdout(&out);
    for state in ["AM", "BY", "KG", "KZ", "RU", "VN"] {
        let prefix = state.to_ascii_lowercase();
        for document in [
            "export-declaration",
            "phytosanitary-certificate",
            "certificate-of-origin",
            "veterinary-certificate",
        ] {
            // Viet Nam, a partner state, has its phytosanitary certificate only.
            if state == "VN" && document != "phytosanitary-certificate" {
                continue;
            }
            let id = format!("{prefix}.{document}");
            let line = list
                .lines()
                .find(|l| l.split_whitespace().next() == Some(id.as_str()))
                .unwrap_or_else(|| panic!("{id} missing from:\n{list}"));
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                cols.get(1..4),
                Some(&["national", state, &format!("eaeu.{document}")[..]][..]),
                "{line}"
            );
        }
    }
}

#[test]
fn national_to_eaeu_and_on_to_another_state() {
    let d = Dir::new();
    let kz = sample("kz.export-declaration", "valid-grain.xml");
    let out = d.tereze(&[
        "translate",
        "--from",
        "kz.export-declaration",
        "--to",
        "eaeu",
        arg(&kz),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let eaeu = stdout(&out);
    assert!(
        eaeu.contains("<csdo:TaxpayerId>RU7701234560</csdo:TaxpayerId>"),
        "{eaeu}"
    );
    assert!(
        eaeu.contains(
            r#"<ccdo:GoodsMeasure measurementUnitCode="166">125000.000</ccdo:GoodsMeasure>"#
        ),
        "{eaeu}"
    );
    assert!(
        eaeu.contains("<csdo:EDocDateTime>2026-11-24T04:30:00Z</csdo:EDocDateTime>"),
        "{eaeu}"
    );
    d.write("eaeu.xml", &eaeu);

    let out = d.tereze(&[
        "translate",
        "--from",
        "eaeu.export-declaration",
        "--to",
        "ru.export-declaration",
        "eaeu.xml",
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let ru = stdout(&out);
    assert!(
        ru.contains("<NetMassTonnes>125.000000</NetMassTonnes>"),
        "{ru}"
    );
    assert!(
        ru.contains("<IssueDateTime>2026-11-24 07:30:00</IssueDateTime>"),
        "{ru}"
    );
    assert!(
        ru.contains(r#"<InvoiceValue currency="USD">48250.00</InvoiceValue>"#),
        "{ru}"
    );

    let direct = d.tereze(&[
        "translate",
        "--from",
        "kz.export-declaration",
        "--to",
        "ru.export-declaration",
        arg(&kz),
    ]);
    assert_eq!(
        stdout(&direct),
        ru,
        "KZ → RU directly equals KZ → EAEU → RU"
    );
}

#[test]
fn translation_errors_exit_2_and_name_field_rule_and_reason() {
    let d = Dir::new();
    let bad = sample("kz.export-declaration", "invalid-unknown-country.xml");
    let out = d.tereze(&[
        "translate",
        "--from",
        "kz.export-declaration",
        "--to",
        "eaeu",
        arg(&bad),
    ]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(stdout(&out).is_empty(), "nothing half-done on stdout");
    assert!(
        stderr(&out).contains("cannot translate: kz.export-declaration: Получатель/Страна: code: national code \"999\" of KZ has no correspondence in directory P.CLS.019"),
        "{}",
        stderr(&out)
    );
    let kz = sample("kz.export-declaration", "valid-grain.xml");
    let out = d.tereze(&[
        "translate",
        "--from",
        "xx.nothing",
        "--to",
        "eaeu",
        arg(&kz),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("unknown format \"xx.nothing\""),
        "{}",
        stderr(&out)
    );
    let out = d.tereze(&[
        "translate",
        "--from",
        "kz.export-declaration",
        "--to",
        "eaeu.nothing",
        arg(&kz),
    ]);
    assert_eq!(code(&out), 2);
    let out = d.tereze(&["translate", "--from", "kz.export-declaration", arg(&kz)]);
    assert_eq!(code(&out), 2, "--to is required: {}", describe(&out));
}

#[test]
fn a_mapping_file_added_at_run_time_is_a_new_format() {
    let d = Dir::new();
    std::fs::create_dir(d.path("extra")).expect("dir");
    // A minimal Belarusian form: only what the EAEU model requires, read from a file, with no
    // code change.
    let kz_mapping = std::fs::read_to_string(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../codecs/mappings/national/kz-export-declaration.toml"
    )))
    .expect("kz mapping");
    let by = kz_mapping
        .replace(
            "id = \"kz.export-declaration\"",
            "id = \"by.export-declaration\"",
        )
        .replace(
            "title = \"Kazakhstan: export declaration (KGD national form)\"",
            "title = \"Belarus: test form\"",
        )
        .replace("urn:kz:kgd:export-declaration:1", "urn:by:test:1")
        .replace("timezone = \"+05:00\"", "timezone = \"+03:00\"");
    d.write("extra/by-export-declaration.toml", by);
    let out = d.tereze(&["translate", "--mappings", "extra", "--list"]);
    assert!(
        stdout(&out).contains("by.export-declaration"),
        "{}",
        describe(&out)
    );

    // The same data in the new form translates to Russia's.
    let kz = std::fs::read_to_string(sample("kz.export-declaration", "valid-grain.xml"))
        .expect("sample");
    d.write(
        "by.xml",
        kz.replace("urn:kz:kgd:export-declaration:1", "urn:by:test:1"),
    );
    let out = d.tereze(&[
        "translate",
        "--mappings",
        "extra",
        "--from",
        "by.export-declaration",
        "--to",
        "ru.export-declaration",
        "by.xml",
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(stdout(&out).contains("<ExportDeclarationData"));

    // A broken mapping file is refused with its name and the reason.
    d.write("extra/broken.toml", "id = \"by.broken\"\ntitle = \"x\"\ncountry = \"BY\"\ndocument = \"eaeu.export-declaration\"\nroot = \"X\"\n[[field]]\nnational = \"A\"\neaeu = \"csdo:Nowhere\"\n");
    let out = d.tereze(&["translate", "--mappings", "extra", "--list"]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(stderr(&out).contains("broken.toml: field 1 (csdo:Nowhere): csdo:Nowhere is not an element of eaeu.export-declaration"), "{}", stderr(&out));
}

#[test]
fn a_submission_writes_one_file_per_message() {
    let d = Dir::new();
    let sub = sample("kz.export-submission", "valid-grain.xml");
    let out = d.tereze(&[
        "translate",
        "--from",
        "kz.export-submission",
        "--to",
        "eaeu",
        arg(&sub),
    ]);
    assert_eq!(
        code(&out),
        2,
        "several documents need --out-dir: {}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("yields 3 documents; give --out-dir"),
        "{}",
        stderr(&out)
    );
    let out = d.tereze(&[
        "translate",
        "--from",
        "kz.export-submission",
        "--to",
        "eaeu",
        "--out-dir",
        "out",
        arg(&sub),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let listed: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(
        listed,
        [
            "out/01-eaeu.export-declaration-RU-FCS.xml",
            "out/02-eaeu.phytosanitary-certificate-RU-RSHN.xml",
            "out/03-eaeu.certificate-of-origin-RU-FCS.xml"
        ]
    );
    let phyto = d.read("out/02-eaeu.phytosanitary-certificate-RU-RSHN.xml");
    assert!(
        phyto.contains("<phyto:PhytosanitaryCertificateDetails"),
        "{phyto}"
    );
}
