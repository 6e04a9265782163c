//! The integrated tariff over the shipped directories: the path from chapter to line, the
//! duty as of a date (on both sides of a change), the non-tariff measures and who issues
//! their documents, the documents a set lacks; and the consistency of the shipped
//! nomenclature (P.CLS.HS), measures (P.CLS.NTM) and document kinds (P.CLS.009).

use tereze_reference_data::tariff::{missing_documents, tariff, Flow, Missing, HS, MEASURES};
use tereze_reference_data::{Directories, LookupError, Value};

const DOCUMENTS: &str = "P.CLS.009";

fn d(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn text<'a>(e: &'a tereze_reference_data::Entry, name: &str) -> &'a str {
    match e.attributes.get(name) {
        Some(Value::Text(t)) => t,
        other => panic!("{}: attribute {name} is {other:?}", e.code),
    }
}

#[test]
fn wheat_goes_from_chapter_to_line_with_a_duty_and_a_phytosanitary_measure() {
    let dirs = Directories::builtin();
    let t = tariff(&dirs, "1001990000", d("2025-03-01")).expect("known");
    let path: Vec<&str> = t.path.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(path, ["10", "1001", "100199", "1001990000"]);
    assert_eq!(t.path[0].name("en"), "Cereals");
    assert_eq!(t.path[1].name("ru"), "Пшеница и меслин");
    assert_eq!(t.duty.as_deref(), Some("5"));

    let phyto: Vec<_> = t
        .measures
        .iter()
        .filter(|m| m.document == "01011")
        .collect();
    assert_eq!(phyto.len(), 1, "{:?}", t.measures);
    let m = phyto[0];
    assert_eq!(m.id, "NTM-PHYTO-10");
    assert_eq!(m.kind, "certificate");
    assert_eq!(m.hs, "10");
    assert!(m.applies_to(Flow::Export) && m.applies_to(Flow::Import));
    assert_eq!(m.authorities.get("KZ").map(String::as_str), Some("KZ:MSH"));
    assert_eq!(m.authorities.get("RU").map(String::as_str), Some("RU:RSHN"));
    // Grain is not under veterinary control.
    assert!(t.measures.iter().all(|m| m.document != "01012"));
}

#[test]
fn barley_and_rapeseed_of_the_samples_are_answered_too() {
    let dirs = Directories::builtin();
    let on = d("2025-03-01");
    let barley = tariff(&dirs, "1003900000", on).expect("barley");
    assert_eq!(barley.path.len(), 4);
    assert_eq!(barley.duty.as_deref(), Some("5"));
    let rape = tariff(&dirs, "1205109000", on).expect("rapeseed");
    let path: Vec<&str> = rape.path.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(path, ["12", "1205", "120510", "1205109000"]);
    assert_eq!(rape.duty.as_deref(), Some("0"));
    assert!(rape.measures.iter().any(|m| m.id == "NTM-PHYTO-12"));
}

#[test]
fn frozen_beef_needs_a_veterinary_certificate() {
    let dirs = Directories::builtin();
    let t = tariff(&dirs, "0202300009", d("2025-03-01")).expect("known");
    let path: Vec<&str> = t.path.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(path, ["02", "0202", "020230", "0202300009"]);
    assert!(t.duty.is_some());
    let vet: Vec<_> = t
        .measures
        .iter()
        .filter(|m| m.document == "01012")
        .collect();
    assert_eq!(vet.len(), 1, "{:?}", t.measures);
    assert_eq!(vet[0].id, "NTM-VET-02");
    assert_eq!(
        vet[0].authorities.get("RU").map(String::as_str),
        Some("RU:RSHN")
    );
    assert!(vet[0].authorities.contains_key("KZ"));
    // Offal of the same samples: the same control.
    let offal = tariff(&dirs, "0206290000", d("2025-03-01")).expect("offal");
    assert!(offal.measures.iter().any(|m| m.id == "NTM-VET-02"));
}

#[test]
fn a_code_is_answered_down_to_the_most_specific_known_level() {
    let dirs = Directories::builtin();
    // 1001 is known, 100100 and 1001000000 are not: the path stops at the heading.
    let t = tariff(&dirs, "1001000000", d("2025-03-01")).expect("chapter known");
    let path: Vec<&str> = t.path.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(path, ["10", "1001"]);
    assert_eq!(
        t.duty, None,
        "no rate is stated above the ten-digit lines of 1001"
    );
    assert!(t.measures.iter().any(|m| m.id == "NTM-PHYTO-10"));
    // A shorter code is answered as far as it goes.
    let t = tariff(&dirs, "1003", d("2025-03-01")).expect("heading");
    let path: Vec<&str> = t.path.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(path, ["10", "1003"]);
}

#[test]
fn an_unknown_chapter_or_a_malformed_code_is_an_error() {
    let dirs = Directories::builtin();
    let on = d("2025-03-01");
    assert_eq!(
        tariff(&dirs, "9999000000", on).map(|t| t.code),
        Err(LookupError::UnknownCode {
            directory: HS.into(),
            code: "99".into()
        })
    );
    for bad in ["", "1", "10019900001", "1001 99 000 0", "10O1990000"] {
        assert!(tariff(&dirs, bad, on).is_err(), "{bad:?}");
    }
    // Before the nomenclature's validity nothing is in force.
    assert!(matches!(
        tariff(&dirs, "1001990000", d("2021-12-31")),
        Err(LookupError::NotValidOn { .. })
    ));
}

#[test]
fn a_changed_duty_is_answered_by_date_on_both_sides_of_the_change() {
    let dirs = Directories::builtin();
    let history = dirs.history(HS, "0713400000").expect("known");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].valid_to, Some(d("2023-12-31")));
    assert_eq!(history[1].valid_from, Some(d("2024-01-01")));

    let duty = |on: &str| tariff(&dirs, "0713400000", d(on)).expect("known").duty;
    assert_eq!(duty("2022-01-01").as_deref(), Some("5"));
    assert_eq!(
        duty("2023-12-31").as_deref(),
        Some("5"),
        "last day of the old rate"
    );
    assert_eq!(
        duty("2024-01-01").as_deref(),
        Some("0"),
        "first day of the new"
    );
    assert_eq!(duty("2025-03-01").as_deref(), Some("0"));
    // The path is the same on both sides.
    let before = tariff(&dirs, "0713400000", d("2023-12-31")).expect("known");
    let after = tariff(&dirs, "0713400000", d("2024-01-01")).expect("known");
    let codes = |t: &tereze_reference_data::tariff::Tariff| {
        t.path.iter().map(|e| e.code.clone()).collect::<Vec<_>>()
    };
    assert_eq!(codes(&before), ["07", "0713", "071340", "0713400000"]);
    assert_eq!(codes(&before), codes(&after));
}

#[test]
fn missing_documents_names_the_phytosanitary_certificate_for_wheat_export() {
    let dirs = Directories::builtin();
    let on = d("2025-03-01");
    // The declaration alone (with an invoice and a contract) is not enough.
    let missing = missing_documents(
        &dirs,
        &["1001990000"],
        &["04021", "03011"],
        Flow::Export,
        on,
    );
    assert_eq!(
        missing,
        [Missing {
            code: "1001990000".into(),
            measure: "NTM-PHYTO-10".into(),
            document: "01011".into(),
        }]
    );
    // With the certificate nothing is missing.
    assert!(missing_documents(&dirs, &["1001990000"], &["01011"], Flow::Export, on).is_empty());
    // Two goods: each measure is reported once per code.
    let missing = missing_documents(
        &dirs,
        &["1001990000", "0202300009"],
        &["01011"],
        Flow::Export,
        on,
    );
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].document, "01012");
    // Codes the nomenclature does not know are left to the code checks.
    assert!(missing_documents(&dirs, &["9999000000"], &[], Flow::Export, on).is_empty());
}

#[test]
fn a_licensed_good_needs_its_licence_and_names_the_licensing_authorities() {
    let dirs = Directories::builtin();
    let on = d("2025-03-01");
    let missing = missing_documents(&dirs, &["9302000000"], &[], Flow::Import, on);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].measure, "NTM-LIC-9302");
    assert_eq!(missing[0].document, "01013");
    let t = tariff(&dirs, "9302000000", on).expect("known");
    let lic = t
        .measures
        .iter()
        .find(|m| m.id == "NTM-LIC-9302")
        .expect("listed");
    assert_eq!(lic.kind, "licence");
    assert_eq!(
        lic.authorities.get("KZ").map(String::as_str),
        Some("KZ:MTI")
    );
    assert_eq!(
        lic.authorities.get("RU").map(String::as_str),
        Some("RU:MINPROMTORG")
    );
}

#[test]
fn every_measure_names_a_known_document_kind_and_a_known_commodity_code() {
    let dirs = Directories::builtin();
    let on = today();
    let measures = dirs.list(MEASURES, on).expect("shipped");
    assert!(measures.len() >= 20, "{}", measures.len());
    for m in measures {
        let document = text(m, "document");
        assert!(
            dirs.valid(DOCUMENTS, document, on),
            "{}: document {document} is not in {DOCUMENTS}",
            m.code
        );
        let hs = text(m, "hs");
        assert!(
            !hs.is_empty() && hs.bytes().all(|b| b.is_ascii_digit()),
            "{}: hs {hs:?}",
            m.code
        );
        assert!(
            dirs.valid(HS, hs, on),
            "{}: hs prefix {hs} is not a code of {HS} on {on}",
            m.code
        );
        assert!(
            ["licence", "permit", "certificate"].contains(&text(m, "kind")),
            "{}",
            m.code
        );
        assert!(
            ["export", "import", "both"].contains(&text(m, "flow")),
            "{}",
            m.code
        );
        for state in ["KZ", "RU"] {
            let a = text(m, &format!("authority_{state}"));
            assert!(
                a.starts_with(&format!("{state}:")),
                "{}: authority_{state} {a:?}",
                m.code
            );
        }
        for (name, v) in &m.attributes {
            if let Some(state) = name.strip_prefix("authority_") {
                assert!(
                    v.to_string().starts_with(&format!("{state}:")),
                    "{}: {name} = {v}",
                    m.code
                );
            }
        }
    }
}

#[test]
fn the_nomenclature_is_a_tree_of_digit_codes_with_decimal_duties() {
    let dirs = Directories::builtin();
    let on = today();
    let codes = dirs.list(HS, on).expect("shipped");
    assert!(codes.len() >= 300, "{}", codes.len());
    for e in &codes {
        let c = e.code.as_str();
        assert!(
            [2, 4, 6, 10].contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()),
            "{c:?}"
        );
        for len in [2, 4, 6] {
            if c.len() > len {
                assert!(
                    dirs.valid(HS, &c[..len], on),
                    "{c}: no parent {}",
                    &c[..len]
                );
            }
        }
        if let Some(duty) = e.attributes.get("duty") {
            assert!(matches!(duty, Value::Decimal(_)), "{c}: {duty:?}");
        }
    }
    // Every ten-digit code of the sample documents is there, with its parents.
    for code in [
        "0202300009",
        "0206290000",
        "1001990000",
        "1003900000",
        "1104120000",
        "1205109000",
    ] {
        let t = tariff(&dirs, code, on).expect(code);
        assert_eq!(t.path.len(), 4, "{code}");
        assert!(t.duty.is_some(), "{code}: no duty");
    }
}
