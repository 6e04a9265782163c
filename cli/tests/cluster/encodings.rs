//! One encoding refusal, one wording, at every door (issue 27): the same windows-1251 document
//! declared UTF-8 is refused at the HTTP national door (its bytes in `document_base64`), at the
//! gRPC Window door and by the CLI (`xml`, `translate`, `recognise`), each with the parser's
//! own message after the door's context; declared windows-1251, the same bytes are accepted at
//! both node doors. A JSON `document` string declaring windows-1251 is refused: the characters
//! arrived, not the bytes.

use base64::Engine as _;
use serde_json::json;

use crate::net::{self, tereze, Net, SAMPLE};

/// The EAEU sample in windows-1251 under the declaration `declared`. The sample's Kazakh
/// letters are outside windows-1251: they become character references, as a windows-1251
/// system writes them.
fn in_1251(declared: &str) -> Vec<u8> {
    let text = SAMPLE.replacen("encoding=\"UTF-8\"", &format!("encoding=\"{declared}\""), 1);
    assert!(
        text.contains(&format!("encoding=\"{declared}\"")),
        "the sample declares UTF-8"
    );
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&text);
    bytes.into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_encoding_refusal_reads_alike_at_http_grpc_and_the_cli() {
    let mut net = Net::init("KZ,RU", "", "", 29200, "");
    net.start("KZ");
    let wrong = in_1251("UTF-8");
    let right = in_1251("windows-1251");
    // What the parser says, once: every door must say exactly this after its context.
    let said = tereze_codecs::xml::parse(&wrong)
        .map(|_| ())
        .expect_err("windows-1251 bytes are not UTF-8")
        .to_string();
    assert!(
        said.contains("declared encoding \"UTF-8\": byte 0x") && said.contains("not valid UTF-8"),
        "{said}"
    );

    // HTTP: the bytes in base64.
    let submit = |bytes: &[u8]| {
        json!({
            "format": "eaeu.export-declaration",
            "document_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
            "recipient_country": "RU",
            "recipient_authority": "FCS",
        })
    };
    let (status, v) = net.http("KZ", "POST", "/v1/messages", Some(&submit(&wrong)));
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["error"].as_str(),
        Some(format!("document:{said}").as_str()),
        "{v}"
    );
    let (status, v) = net.http("KZ", "POST", "/v1/messages", Some(&submit(&right)));
    assert_eq!(
        status, 202,
        "windows-1251 declared as such is accepted: {v}"
    );

    // HTTP: a JSON string carries characters: declaring UTF-8 for them is right, declaring
    // windows-1251 is refused.
    net.submit("KZ", "RU", None)
        .expect("the sample as a JSON string, declared UTF-8, is accepted");
    let text = SAMPLE.replacen("encoding=\"UTF-8\"", "encoding=\"windows-1251\"", 1);
    let body = json!({"format": "eaeu.export-declaration", "document": text, "recipient_country": "RU", "recipient_authority": "FCS"});
    let (status, v) = net.http("KZ", "POST", "/v1/messages", Some(&body));
    assert_eq!(status, 400, "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("document:1:1: declared encoding \"windows-1251\" does not match the bytes: the document was handed over as text"),
        "{error}"
    );
    let both = json!({"format": "eaeu.export-declaration", "document": "<r/>", "document_base64": "PHIvPg==", "recipient_country": "RU"});
    let (status, v) = net.http("KZ", "POST", "/v1/messages", Some(&both));
    assert_eq!(
        (status, v["error"].as_str()),
        (
            400,
            Some("document, document_base64: give one of them, not both")
        )
    );
    let garbled = json!({"format": "eaeu.export-declaration", "document_base64": "<r/>", "recipient_country": "RU"});
    let (status, v) = net.http("KZ", "POST", "/v1/messages", Some(&garbled));
    assert_eq!(status, 400, "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("document_base64: not base64: "),
        "{error}"
    );

    // gRPC: the same bytes in `document`.
    let mut window = net::window(net.window_port("KZ")).await;
    let request = |bytes: &[u8]| tereze_proto::SubmitRequest {
        format: "eaeu.export-declaration".into(),
        document: bytes.to_vec(),
        recipient_country: "RU".into(),
        recipient_authority: "FCS".into(),
        ..Default::default()
    };
    let status = window
        .submit(request(&wrong))
        .await
        .map(|_| ())
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), format!("document:{said}"));
    window
        .submit(request(&right))
        .await
        .expect("windows-1251 declared as such is accepted");

    // The CLI: the file's name, then the same words.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("declaration.xml");
    std::fs::write(&file, &wrong).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let trust = net.dir.path().join("trust-space.toml");
    let trust = trust.to_str().expect("utf-8 path");
    for args in [
        vec!["recognise", "--trust", trust, "--state", "RU", path],
        vec!["xml", "c14n", path],
        vec![
            "translate",
            "--from",
            "eaeu.export-declaration",
            "--to",
            "eaeu",
            path,
        ],
    ] {
        let (code, _, stderr) = tereze(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{path}:{said}")),
            "{args:?}: {stderr}"
        );
    }
    std::fs::write(&file, &right).expect("write");
    let (code, out, stderr) = tereze(&["xml", "c14n", path]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("<csdo:CityName>Алматы</csdo:CityName>"),
        "the canonical form is UTF-8: {out}"
    );
}
