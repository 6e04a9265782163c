//! `tereze ref`: as-of queries over the shipped directories, the integrated tariff, and the
//! authority's path from a national file to a signed change set (import → publish → verify →
//! queries over it), with the refusals a tester would try.

use std::path::Path;

use serde_json::Value;

use crate::net::tereze;
use crate::util::arg;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// `tereze ref import` of `input` as the units directory (P.CLS.025) with `units.toml` in
/// `d` as its mapping, into `out` when given.
fn import_units(d: &Path, out: Option<&Path>, input: &Path) -> (i32, String, String) {
    let mapping = d.join("units.toml");
    let mut args = vec![
        "ref",
        "import",
        "--directory",
        "P.CLS.025",
        "--mapping",
        arg(&mapping),
    ];
    if let Some(out) = out {
        args.extend(["--out", arg(out)]);
    }
    args.push(arg(input));
    tereze(&args)
}

#[test]
fn queries_answer_as_of_a_date() {
    let (code, out, err) = tereze(&["ref", "list"]);
    assert_eq!(code, 0, "{err}");
    for id in ["P.CLS.019", "P.CLS.022", "P.CLS.HS", "P.CLS.NTM"] {
        assert!(out.contains(id), "{out}");
    }

    let (code, out, err) = tereze(&["ref", "list", "P.CLS.019", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert!(
        v["entries"].as_array().expect("entries").len() >= 249,
        "{v}"
    );

    let (code, out, _) = tereze(&["ref", "get", "P.CLS.019", "KZ"]);
    assert_eq!(code, 0);
    assert!(out.contains("name[kk] Қазақстан"), "{out}");
    assert!(out.contains("national[KZ] 398"), "{out}");

    // A duty that changed on 2024-01-01: the last day of the old rate, the first of the new.
    let duty = |day: &str| {
        let (code, out, err) = tereze(&[
            "ref",
            "get",
            "P.CLS.HS",
            "0713400000",
            "--as-of",
            day,
            "--format",
            "json",
        ]);
        assert_eq!(code, 0, "{err}");
        json(&out)["entry"]["attributes"]["duty"].clone()
    };
    assert_eq!(duty("2023-12-31"), Value::from("5"));
    assert_eq!(duty("2024-01-01"), Value::from("0"));
    // Before the nomenclature's start the code is not in force: a negative answer.
    let (code, _, err) = tereze(&[
        "ref",
        "get",
        "P.CLS.HS",
        "0713400000",
        "--as-of",
        "2021-12-31",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not valid on 2021-12-31"), "{err}");
    // A withdrawn currency: in force up to its last day only.
    let (code, _, err) = tereze(&["ref", "get", "P.CLS.022", "HRK", "--as-of", "2022-12-31"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = tereze(&["ref", "get", "P.CLS.022", "HRK", "--as-of", "2023-01-01"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("2023-01-01") && err.contains("..2022-12-31"),
        "{err}"
    );
    let (code, _, err) = tereze(&["ref", "get", "P.CLS.019", "XX"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = tereze(&["ref", "get", "P.CLS.999", "XX"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown directory P.CLS.999"), "{err}");

    let (code, out, _) = tereze(&["ref", "search", "P.CLS.019", "kazakh"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.starts_with("KZ ")), "{out}");

    let (code, out, err) = tereze(&[
        "ref",
        "diff",
        "P.CLS.HS",
        "--from",
        "2023-12-31",
        "--to",
        "2024-01-01",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("changed") && out.contains("0713400000"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2, "only the lentils changed: {out}");

    let (code, _, err) = tereze(&["ref", "list", "P.CLS.019", "--as-of", "25.11.2026"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a date"), "{err}");
    // chrono would read an unpadded month; the CLI says it is not a date, and why.
    let (code, _, err) = tereze(&["ref", "list", "P.CLS.019", "--as-of", "2026-1-05"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "\"2026-1-05\" is not a date (YYYY-MM-DD): the month (MM) takes exactly 2 digits"
        ),
        "{err}"
    );
}

#[test]
fn the_tariff_says_what_goods_need_and_who_issues_it() {
    let (code, out, err) = tereze(&["ref", "tariff", "1001990000", "--as-of", "2026-11-25"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1001        Wheat and meslin"), "{out}");
    assert!(out.contains("01011 Phytosanitary certificate"), "{out}");
    assert!(
        out.contains("KZ: KZ:MSH") && out.contains("RU: RU:RSHN"),
        "{out}"
    );

    let (code, out, err) = tereze(&[
        "ref",
        "tariff",
        "0202300009",
        "--as-of",
        "2026-11-25",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    let docs: Vec<&str> = v["measures"]
        .as_array()
        .expect("measures")
        .iter()
        .filter_map(|m| m["document"].as_str())
        .collect();
    assert!(
        docs.contains(&"01012"),
        "beef needs a veterinary certificate: {v}"
    );
    assert!(v["duty"].is_string(), "{v}");

    let (code, _, err) = tereze(&["ref", "tariff", "9999", "--as-of", "2026-11-25"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not in directory P.CLS.HS"), "{err}");
    let (code, _, _) = tereze(&["ref", "tariff", "10a1"]);
    assert_eq!(code, 1);
}

const MAPPING: &str = r#"
code = "okei"
names = { en = "name_en", ru = "name_ru" }
national = { KZ = "kz", RU = "rec20" }
valid_from = "from"
delimiter = ";"
"#;

#[test]
fn an_import_becomes_a_signed_change_set_that_queries_then_read() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    crate::devpki::init_dev(d, "21900", &["--hub", "EEC"]);
    std::fs::write(d.join("units.toml"), MAPPING).expect("mapping");
    // A new unit, and a new name for the kilogram from 2027.
    std::fs::write(
        d.join("units.csv"),
        "okei;name_en;name_ru;kz;rec20;from\n\
         9991;Test unit;Тестовая единица;тед;ZTU;2026-01-01\n\
         166;Kilogram (SI);Килограмм (СИ);кг;KGM;2027-01-01\n",
    )
    .expect("csv");
    let set = d.join("set-1.toml");
    let (code, _, err) = import_units(d, Some(&set), &d.join("units.csv"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("2 rows read, 2 operations in change set 1 of P.CLS.025"),
        "{err}"
    );
    let draft = std::fs::read_to_string(&set).expect("draft");
    assert!(
        draft.contains("op = \"add\"") && draft.contains("op = \"supersede\""),
        "{draft}"
    );
    assert!(draft.contains("authority = \"EEC\""), "{draft}");

    let sets = d.join("sets");
    std::fs::create_dir(&sets).expect("dir");
    let signed = sets.join("P.CLS.025-1.xml");
    // Signs the draft as the signer in `who` (a node directory of the dev PKI).
    let publish = |who: &str, out: &Path| {
        tereze(&[
            "ref",
            "publish",
            "--key",
            arg(&d.join(who).join("signer.key")),
            "--cert",
            arg(&d.join(who).join("signer.pem")),
            "--out",
            arg(out),
            arg(&set),
        ])
    };
    let (code, _, err) = publish("eec", &signed);
    assert_eq!(code, 0, "{err}");
    let trust = d.join("trust-space.xml");
    let anchor = d.join("eec/root.pem");
    let verify = |file: &Path| {
        tereze(&[
            "ref",
            "verify",
            "--trust",
            arg(&trust),
            "--anchor",
            arg(&anchor),
            arg(file),
        ])
    };
    let (code, out, err) = verify(&signed);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("valid: P.CLS.025 change set 1 by EEC"),
        "{out}"
    );
    assert!(out.contains("1 add, 1 supersede"), "{out}");

    let with_sets = |args: &[&str]| {
        let mut all = vec!["ref"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "--sets",
            arg(&sets),
            "--trust",
            arg(&trust),
            "--anchor",
            arg(&anchor),
        ]);
        tereze(&all)
    };
    let (code, out, err) = with_sets(&["get", "P.CLS.025", "166", "--as-of", "2027-01-01"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("name[en] Kilogram (SI)"), "{out}");
    let (code, out, _) = with_sets(&["get", "P.CLS.025", "166", "--as-of", "2026-12-31"]);
    assert_eq!(code, 0);
    assert!(out.contains("name[en] Kilogram\n"), "{out}");
    let (code, out, err) = with_sets(&[
        "diff",
        "P.CLS.025",
        "--from-version",
        "0",
        "--to-version",
        "1",
        "--as-of",
        "2027-01-01",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("added") && out.contains("9991"), "{out}");
    assert!(out.contains("changed") && out.contains("166"), "{out}");

    // Signed by a state for the Commission's directory: refused by verify and by queries.
    let forged = d.join("forged.xml");
    let (code, _, err) = publish("kz", &forged);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = verify(&forged);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("signature of EEC does not hold"), "{err}");
    // Tampered after signing.
    let text = std::fs::read_to_string(&signed).expect("signed");
    std::fs::write(&forged, text.replace("Test unit", "Tost unit")).expect("tamper");
    let (code, _, err) = verify(&forged);
    assert_eq!(code, 1, "{err}");
    std::fs::copy(&forged, sets.join("P.CLS.025-2.xml")).expect("copy");
    let (code, _, err) = with_sets(&["list", "P.CLS.025"]);
    assert_eq!(
        code, 1,
        "a tampered set in --sets is a negative verdict: {err}"
    );

    // A bad row names where and why; nothing is written.
    std::fs::write(
        d.join("bad.csv"),
        "okei;name_en;name_ru;kz;rec20;from\n9992;X;Х;х\n",
    )
    .expect("csv");
    let (code, _, err) = import_units(d, Some(&d.join("bad.toml")), &d.join("bad.csv"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 2") && err.contains("4 fields"), "{err}");
    assert!(!d.join("bad.toml").exists());
    // A date that is no date: refused before a draft exists, naming the row.
    std::fs::write(
        d.join("date.csv"),
        "okei;name_en;name_ru;kz;rec20;from\n9993;Y;Y;y;ZTY;2026-13-01\n",
    )
    .expect("csv");
    let (code, out, err) = import_units(d, None, &d.join("date.csv"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("row 1") && err.contains("is not a date"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
}

#[test]
fn an_xml_import_in_windows_1251_reads_as_its_utf8_original() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::write(d.join("units.toml"), MAPPING).expect("mapping");
    let doc = |declared: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"{declared}\"?>\n<units>\n  <row okei=\"9991\" \
             name_en=\"Test unit\" name_ru=\"Тестовая единица\" kz=\"тед\" rec20=\"ZTU\" \
             from=\"2026-01-01\"/>\n</units>\n"
        )
    };
    let import = |name: &str, bytes: &[u8]| {
        let file = d.join(format!("{name}.xml"));
        std::fs::write(&file, bytes).expect("xml");
        let out = d.join(format!("{name}.toml"));
        let (code, _, err) = import_units(d, Some(&out), &file);
        // The draft without its issue time, which differs between two imports.
        let draft: String = std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("issued_at"))
            .map(|l| format!("{l}\n"))
            .collect();
        (code, err, draft, file)
    };
    let (code, err, utf8, _) = import("utf8", doc("UTF-8").as_bytes());
    assert_eq!(code, 0, "{err}");
    assert!(utf8.contains("Тестовая единица"), "{utf8}");
    let in_1251 = |declared: &str| {
        encoding_rs::WINDOWS_1251
            .encode(&doc(declared))
            .0
            .into_owned()
    };
    let bytes = in_1251("windows-1251");
    let (code, err, cp1251, _) = import("cp1251", &bytes);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cp1251, utf8, "the same draft from the windows-1251 file");
    // Declared UTF-8, the same bytes are refused in the parser's words after the file name.
    let wrong = in_1251("UTF-8");
    let said = tereze_codecs::xml::parse(&wrong)
        .map(|_| ())
        .expect_err("not UTF-8")
        .to_string();
    let (code, err, _, file) = import("wrong", &wrong);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{}:{said}", file.display())), "{err}");
}
