//! A partner state's export document becomes a member state's import data: Viet Nam's
//! phytosanitary certificate (a non-member, trading under the EAEU–Viet Nam FTA) translates to
//! the EAEU phytosanitary certificate and on to the import form of the member state of entry,
//! every value in that state's conventions; what the partner's code lists cannot say is
//! refused by name, never guessed (docs/mappings.md, "Partner states").

use std::path::Path;

use tereze_codecs::translate::Catalog;
use tereze_codecs::xml::{self, Document};
use tereze_reference_data::Directories;

fn sample(format: &str, name: &str) -> Document {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(format)
        .join(name);
    xml::parse(&std::fs::read(&path).expect("read sample"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture() -> (Catalog, Directories) {
    (
        Catalog::builtin().expect("built-in mappings load"),
        Directories::builtin(),
    )
}

fn vn_certificate() -> Document {
    sample("vn.phytosanitary-certificate", "valid-bananas.xml")
}

#[test]
fn the_partner_form_is_listed_with_its_own_country() {
    let (catalog, _) = fixture();
    let vn = catalog
        .format("vn.phytosanitary-certificate")
        .expect("listed");
    assert_eq!(vn.country.as_deref(), Some("VN"));
    assert_eq!(
        vn.document.as_deref(),
        Some("eaeu.phytosanitary-certificate")
    );
}

#[test]
fn a_vietnamese_certificate_becomes_the_eaeu_certificate_with_union_codes() {
    let (catalog, dirs) = fixture();
    let on = dirs.today();
    let eaeu = catalog
        .translate(
            &on,
            "vn.phytosanitary-certificate",
            "eaeu",
            &vn_certificate(),
        )
        .expect("VN → EAEU");
    let text = eaeu[0].document.to_xml();
    for want in [
        // The consignor keeps its Vietnamese tax code as a third-country number.
        "<csdo:TaxpayerId>VN0301234567</csdo:TaxpayerId>",
        // The consignee's number is checked as its member state's (Russian INN).
        "<csdo:TaxpayerId>RU7701234560</csdo:TaxpayerId>",
        // UN/ECE Rec. 19 "1" (maritime) is the union's 10; Rec. 20 KGM is OKEI 166.
        ">10</csdo:TransportModeCode>",
        "measurementUnitCode=\"166\"",
        ">19200.000</ccdo:NetMass>",
        "<csdo:DocCreationDate>2026-11-20</csdo:DocCreationDate>",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    catalog
        .check_eaeu(&on, "eaeu.phytosanitary-certificate", &eaeu[0].document)
        .expect("the EAEU result checks against its model");
}

#[test]
fn the_member_state_of_entry_reads_it_in_its_own_import_form() {
    let (catalog, dirs) = fixture();
    let on = dirs.today();
    // Russia's import form: alpha-2 countries, two-digit transport codes, mass in tonnes.
    let ru = catalog
        .translate(
            &on,
            "vn.phytosanitary-certificate",
            "ru.phytosanitary-certificate",
            &vn_certificate(),
        )
        .expect("VN → RU");
    let text = ru[0].document.to_xml();
    for want in [
        "<Country>VN</Country><TaxId>0301234567</TaxId>",
        "<ImportingCountry>RU</ImportingCountry>",
        "<MeansOfConveyance>10</MeansOfConveyance>",
        "<NetMassTonnes>19.200000</NetMassTonnes>",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    // Kazakhstan's form writes the partner's country as ISO numeric (Viet Nam is 704).
    let kz = catalog
        .translate(
            &on,
            "vn.phytosanitary-certificate",
            "kz.phytosanitary-certificate",
            &vn_certificate(),
        )
        .expect("VN → KZ");
    let text = kz[0].document.to_xml();
    assert!(text.contains("<Страна>704</Страна>"), "{text}");
    assert!(text.contains("<Вес ед=\"кг\">19 200,000</Вес>"), "{text}");
}

#[test]
fn a_union_code_the_partner_cannot_express_is_refused_by_name() {
    let (catalog, dirs) = fixture();
    let on = dirs.today();
    // Kazakhstan's "АВТО-П" is the union's 31 (a road train): UN/ECE Rec. 19 has one road
    // code only, so the Vietnamese form cannot carry the distinction and says so.
    let kz = sample("kz.phytosanitary-certificate", "valid-wheat.xml");
    let wire = kz.to_xml().replace(
        "<ВидТранспорта>ЖД</ВидТранспорта>",
        "<ВидТранспорта>АВТО-П</ВидТранспорта>",
    );
    assert_ne!(wire, kz.to_xml(), "the sample's transport element changed");
    let eaeu = catalog
        .translate(
            &on,
            "kz.phytosanitary-certificate",
            "eaeu",
            &xml::parse(wire.as_bytes()).expect("parses"),
        )
        .expect("KZ → EAEU");
    let err = catalog
        .translate(
            &on,
            "eaeu.phytosanitary-certificate",
            "vn.phytosanitary-certificate",
            &eaeu[0].document,
        )
        .map(|_| ())
        .expect_err("31 has no Vietnamese code");
    assert_eq!(
        err.to_string(),
        "vn.phytosanitary-certificate: csdo:TransportModeCode: code: union code \"31\" of directory P.CLS.024 has no national code for VN"
    );
}
