//! A partner state's document at a member's door (docs/mappings.md, "Partner states"): Viet
//! Nam's phytosanitary certificate, translated to the EAEU certificate, is submitted by the
//! national system of the member state of entry (Russia) and delivered to the member state the
//! goods go on to (Kazakhstan), receipt verified and recognised; the partner's own national
//! format is refused at a door whose node does not list the partner, by name and naming the
//! setting, and nothing is queued. With `[[national.signatures.partner]]` listing VN, Russia's
//! door takes in the Vietnamese certificate itself: the signature of Viet Nam's plant
//! protection organisation is verified against its CA, recorded in the envelope, the original
//! attached, and the certificate delivered to Kazakhstan; under `require` one signed by a key
//! outside VN's anchors is refused at intake. Ports 29600– (the first test) and 32000–.

use std::time::Duration;

use serde_json::{json, Value};
use tereze_codecs::translate::Catalog;
use tereze_codecs::xml;
use tereze_reference_data::Directories;

use crate::national_signatures::{ca_and_signer, signed_enveloped};
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
        Some(
            "format: vn.phytosanitary-certificate is VN's national format; this node is RU's \
             (a partner state's formats are taken in when [[national.signatures.partner]] \
             lists it with state = \"VN\")"
        ),
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
    recognised_at_kz(&net, &id);
}

/// Waits until RU's history of message `id` says KZ recognised it; KZ's inbox entry for it.
fn recognised_at_kz(net: &Net, id: &str) -> Value {
    assert!(
        wait_until(SETTLE, || net
            .states("RU", id)
            .contains(&"recognised".into())),
        "not recognised: {:?}\n{}",
        net.states("RU", id),
        net.log("RU")
    );
    let inbox = net.inbox("KZ");
    inbox
        .iter()
        .find(|m| m["message_id"].as_str() == Some(id))
        .cloned()
        .unwrap_or_else(|| panic!("not in KZ's inbox: {inbox:?}"))
}

/// Submits the Vietnamese certificate `document` at RU for KZ over HTTP.
fn submit_vn(net: &Net, document: &str) -> (u16, Value) {
    net.http(
        "RU",
        "POST",
        "/v1/messages",
        Some(&json!({
            "format": "vn.phytosanitary-certificate",
            "document": document,
            "recipient_country": "KZ",
            "recipient_authority": "KGD",
        })),
    )
}

#[test]
fn a_listed_partners_signed_certificate_is_verified_at_the_member_of_entry() {
    let mut net = Net::init("KZ,RU", "", "", 32000, "");
    let ru = net.node_dir("RU");
    // Russia's own national CA: the partner's documents are never judged against it.
    ca_and_signer(
        &ru,
        "national-ca.pem",
        "RU",
        "Rosselkhoznadzor",
        "RU National Test CA",
        "-",
    );
    let nppo = ca_and_signer(
        &ru,
        "vn-nppo-ca.pem",
        "VN",
        "Plant Protection Department",
        "VN NPPO Test CA",
        "Inspector Nguyen",
    );
    let dir = net.dir.path().to_owned();
    let untrusted = ca_and_signer(
        &dir,
        "other-ca.pem",
        "VN",
        "Elsewhere",
        "Other CA",
        "Impostor",
    );
    let toml = ru.join("node.toml");
    let mut config = std::fs::read_to_string(&toml).expect("node.toml");
    config.push_str(
        "\n[national.signatures]\nanchors = [\"national-ca.pem\"]\n\
         [[national.signatures.partner]]\nstate = \"VN\"\nanchors = [\"vn-nppo-ca.pem\"]\n\
         policy = \"require\"\n",
    );
    std::fs::write(&toml, config).expect("node.toml");
    net.start("RU");
    net.start("KZ");

    // Signed by a key VN's anchors do not vouch for: refused at intake, nothing queued.
    let (status, v) = submit_vn(&net, &signed_enveloped(VN_CERTIFICATE, &untrusted));
    assert_eq!(status, 400, "{v}");
    let e = v["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("not valid")
            && e.contains("policy of national.signatures.partner[0] is require"),
        "{v}"
    );
    assert_eq!(net.metric("RU", "submitted_total"), 0);

    let signed = signed_enveloped(VN_CERTIFICATE, &nppo);
    let (status, v) = submit_vn(&net, &signed);
    assert_eq!(status, 202, "{v}");
    let id = v["messages"][0]["message_id"]
        .as_str()
        .expect("a message id")
        .to_owned();
    let envelope = recognised_at_kz(&net, &id)["envelope"]
        .as_str()
        .expect("the envelope")
        .to_owned();
    assert!(
        envelope.contains(r#"<env:NationalSignature verdict="valid">"#)
            && envelope.contains("CN=Inspector Nguyen")
            && envelope.contains(
                "<env:Issuer>C=VN, O=Plant Protection Department, CN=VN NPPO Test CA</env:Issuer>"
            ),
        "{envelope}"
    );
    assert!(
        envelope.contains(r#"id="national-original" mediaType="application/xml""#),
        "{envelope}"
    );
    // Translated to the EAEU certificate from the signed element: no signature in the body.
    let body = &envelope[envelope.find("<env:Body>").expect("body")..];
    let body = &body[..body.find("</env:Body>").expect("end")];
    assert!(
        body.contains("VN0301234567") && !body.contains("SignatureValue"),
        "{body}"
    );

    // Kazakhstan holds the original as Viet Nam's inspector signed it.
    let (status, original) = net.http(
        "KZ",
        "GET",
        &format!("/v1/messages/{id}/attachments/national-original"),
        None,
    );
    assert_eq!(status, 200, "{original}");
    assert_eq!(original.as_str(), Some(signed.as_str()));
}
