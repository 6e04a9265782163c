//! A partner state's document at a member's door (docs/mappings.md, "Partner states"): Viet
//! Nam's phytosanitary certificate, translated to the EAEU certificate, is submitted by the
//! national system of the member state of entry (Russia) and delivered to the member state the
//! goods go on to (Kazakhstan), receipt verified and recognised; the partner's own national
//! format is refused at a member's door, by name, and nothing is queued.

use std::time::Duration;

use serde_json::json;
use tereze_codecs::translate::Catalog;
use tereze_codecs::xml;
use tereze_reference_data::Directories;

use crate::net::{wait_until, Net};

const SETTLE: Duration = Duration::from_secs(60);

const VN_CERTIFICATE: &str =
    include_str!("../../../codecs/samples/vn.phytosanitary-certificate/valid-bananas.xml");

/// The Vietnamese certificate as the EAEU phytosanitary certificate.
fn as_eaeu() -> String {
    let catalog = Catalog::builtin().expect("built-in mappings");
    let dirs = Directories::builtin();
    let doc = xml::parse(VN_CERTIFICATE.as_bytes()).expect("the sample parses");
    catalog
        .translate(&dirs.today(), "vn.phytosanitary-certificate", "eaeu", &doc)
        .expect("VN → EAEU")
        .remove(0)
        .document
        .to_xml()
}

#[test]
fn a_partners_certificate_enters_at_the_member_of_entry_and_goes_on() {
    let mut net = Net::init("KZ,RU", "", "", 29600, "");
    net.start("RU");
    net.start("KZ");

    // The partner's own format is not a door's: the member of entry translates it first.
    let (status, v) = net.http(
        "RU",
        "POST",
        "/v1/messages",
        Some(&json!({
            "format": "vn.phytosanitary-certificate",
            "document": VN_CERTIFICATE,
            "recipient_country": "KZ",
            "recipient_authority": "KGD",
        })),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["error"].as_str(),
        Some("format: vn.phytosanitary-certificate is VN's national format; this node is RU's"),
        "{v}"
    );
    assert_eq!(net.metric("RU", "submitted_total"), 0);

    let eaeu = as_eaeu();
    assert!(eaeu.contains("VN0301234567"), "{eaeu}");
    let (status, v) = net.http(
        "RU",
        "POST",
        "/v1/messages",
        Some(&json!({
            "format": "eaeu.phytosanitary-certificate",
            "document": eaeu,
            "recipient_country": "KZ",
            "recipient_authority": "KGD",
        })),
    );
    assert_eq!(status, 202, "{v}");
    let id = v["messages"][0]["message_id"]
        .as_str()
        .expect("a message id")
        .to_owned();
    assert!(
        wait_until(SETTLE, || net
            .states("RU", &id)
            .contains(&"recognised".into())),
        "not recognised: {:?}\n{}",
        net.states("RU", &id),
        net.log("RU")
    );
    let inbox = net.inbox("KZ");
    assert!(
        inbox
            .iter()
            .any(|m| m["message_id"].as_str() == Some(id.as_str())),
        "{inbox:?}"
    );
}
