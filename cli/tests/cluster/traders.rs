//! Trader identifiers across two real nodes (issue 8): KZ imports its register; RU resolves
//! KZ's traders through KZ's node and gets a signed answer, kept with a TTL and usable offline
//! as evidence; a forged or tampered answer is refused; recognition at RU rejects documents
//! naming an unknown or no-longer-active trader, with their own reason codes. A "not
//! registered" answer kept at RU is forgotten on an operator's flush, so a trader KZ adds to
//! its register is known at once.

use std::time::Duration;

use serde_json::{json, Value};
use tereze_reference_data::trader::{complete, Country};

use crate::net::{self, tereze, wait_until, Net};

const WAIT: Duration = Duration::from_secs(30);

fn kz(body: &str) -> String {
    format!(
        "KZ{}",
        complete(Country::KZ, body).expect("a KZ number with its check digit")
    )
}

/// The state a message reached at the sender (the receiver's verdict comes back in the
/// receipt).
fn judged(net: &Net, id: &str) -> Option<String> {
    let mut last = None;
    wait_until(WAIT, || {
        last = net
            .states("KZ", id)
            .into_iter()
            .rfind(|s| s == "recognised" || s == "rejected");
        last.is_some()
    });
    last
}

fn submit_with(net: &Net, trader: &str) -> String {
    let body = json!({
        "format": "eaeu.export-declaration",
        "document": net::SAMPLE,
        "recipient_country": "RU",
        "recipient_authority": "FCS",
        "traders": [trader],
    });
    let (status, v) = net.http("KZ", "POST", "/v1/messages", Some(&body));
    assert_eq!(status, 202, "{v}");
    v["messages"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// The reasons RU gave for quarantining message `id` (none when it is not in quarantine);
/// the national-signature tests read them too.
pub(crate) fn reasons(net: &Net, id: &str) -> Vec<String> {
    let (_, v) = net.admin("RU", "GET", "/admin/quarantine", None);
    v["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["message_id"] == id)
        .flat_map(|m| m["reasons"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn traders_resolve_across_nodes_with_signed_answers_and_recognition_uses_them() {
    let mut net = Net::init("KZ,RU", "", "", 20700, "");
    net.start("KZ");
    net.start("RU");
    let d = net.dir.path().to_path_buf();
    let active = kz("99034000045");
    let liquidated = kz("98114000155");
    let unregistered = kz("01024000123");
    std::fs::write(
        d.join("register.csv"),
        format!(
            "id,name,address,status,status_from\n\
             {active},Astyq Grain LLP,\"Astana, Mangilik El 55\",active,2015-03-01\n\
             {liquidated},Old Mill JSC,\"Kostanay, Baitursynov 12\",active,2010-01-15\n\
             {liquidated},Old Mill JSC,\"Kostanay, Baitursynov 12\",liquidated,2025-06-01\n"
        ),
    )
    .expect("register");
    let kz_http = format!("http://127.0.0.1:{}", net.http_port("KZ"));
    let ru_http = format!("http://127.0.0.1:{}", net.http_port("RU"));
    let kz_token = net.node_dir("KZ").join("national.token");
    let ru_token = net.node_dir("RU").join("national.token");
    let (code, _, err) = tereze(&[
        "trader",
        "import",
        "--node",
        &kz_http,
        "--token-file",
        kz_token.to_str().expect("utf-8"),
        d.join("register.csv").to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("2 traders imported; the register holds 2"),
        "{err}"
    );
    // A node keeps only its own state's register.
    let (status, v) = net.http(
        "RU",
        "POST",
        "/v1/traders",
        Some(&json!([{"id": active, "name": "x", "statuses": [{"status": "active", "from": "2020-01-01"}]}])),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not a trader of RU"),
        "{v}"
    );
    // Bad records are refused whole, naming the record; nothing of the batch is kept.
    for (body, says) in [
        (
            json!([{"id": "KZ123", "name": "x", "statuses": [{"status": "active", "from": "2020-01-01"}]}]),
            "record 1: KZ123",
        ),
        (
            json!([{"id": active, "name": " ", "statuses": [{"status": "active", "from": "2020-01-01"}]}]),
            "no name",
        ),
        (
            json!([{"id": active, "name": "x", "statuses": []}]),
            "no status",
        ),
        (
            json!([{"id": active, "name": "x", "statuses": [{"status": "dormant", "from": "2020-01-01"}]}]),
            "dormant",
        ),
    ] {
        let (status, v) = net.http("KZ", "POST", "/v1/traders", Some(&body));
        assert_eq!(status, 400, "{body}: {v}");
        assert!(
            v["error"].as_str().unwrap_or_default().contains(says),
            "{says}: {v}"
        );
    }
    let (status, v) = net.http("KZ", "GET", &format!("/v1/traders/{active}"), None);
    assert_eq!((status, v["name"].clone()), (200, json!("Astyq Grain LLP")));
    let (status, _) = net.http("KZ", "GET", "/v1/traders/KZ12", None);
    assert_eq!(status, 400);
    let (status, v) = net.http(
        "RU",
        "GET",
        &format!("/v1/traders/{active}/resolve?as_of=tomorrow"),
        None,
    );
    assert_eq!(status, 400, "{v}");

    // RU resolves KZ's trader through KZ's node: a signed answer, then kept.
    let answer = d.join("answer.xml");
    let resolve = |id: &str, as_of: &str, out: Option<&std::path::Path>| {
        let mut args = vec![
            "trader",
            "resolve",
            id,
            "--via",
            &ru_http,
            "--as-of",
            as_of,
            "--format",
            "json",
            "--token-file",
            ru_token.to_str().expect("utf-8"),
        ];
        if let Some(o) = out {
            args.extend_from_slice(&["--out", o.to_str().expect("utf-8")]);
        }
        let (code, out, err) = tereze(&args);
        let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        (code, v, err)
    };
    let (code, v, err) = resolve(&active, "2026-11-25", Some(&answer));
    assert_eq!(code, 0, "{err} {v}");
    assert_eq!(v["source"], "owner", "{v}");
    assert_eq!(v["status"], "active");
    assert_eq!(v["answer"]["trader"]["name"], "Astyq Grain LLP");
    assert!(
        v["answer"]["signer"]
            .as_str()
            .unwrap_or_default()
            .contains("KZ"),
        "{v}"
    );
    let (code, v, _) = resolve(&active, "2026-11-25", None);
    assert_eq!(code, 0);
    assert_eq!(v["source"], "cache", "{v}");
    // Liquidated on 2025-06-01: active before, not after.
    let (code, v, _) = resolve(&liquidated, "2025-05-31", None);
    assert_eq!((code, v["status"].clone()), (0, Value::from("active")));
    let (code, v, _) = resolve(&liquidated, "2025-06-01", None);
    assert_eq!((code, v["status"].clone()), (1, Value::from("liquidated")));
    let (code, v, _) = resolve(&unregistered, "2026-11-25", None);
    assert_eq!(code, 1);
    assert_eq!(v["registered"], false, "{v}");
    // An invalid identifier never leaves the node.
    let bad = format!(
        "{}{}",
        &active[..13],
        (active.as_bytes()[13] - b'0' + 1) % 10
    );
    let (code, _, err) = tereze(&[
        "trader",
        "resolve",
        &bad,
        "--via",
        &ru_http,
        "--token-file",
        ru_token.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2, "{err}");

    // Recognition at RU: an active trader passes; a liquidated or unknown one is rejected.
    let ok = submit_with(&net, &active);
    assert_eq!(
        judged(&net, &ok).as_deref(),
        Some("recognised"),
        "{}",
        net.log("RU")
    );
    let gone = submit_with(&net, &liquidated);
    assert_eq!(judged(&net, &gone).as_deref(), Some("rejected"));
    assert_eq!(reasons(&net, &gone), ["trader-inactive"]);
    let nobody = submit_with(&net, &unregistered);
    assert_eq!(judged(&net, &nobody).as_deref(), Some("rejected"));
    assert_eq!(reasons(&net, &nobody), ["trader-unknown"]);
    // Intake refuses an identifier whose check digit is wrong.
    let (status, v) = net.http(
        "KZ",
        "POST",
        "/v1/messages",
        Some(
            &json!({"format": "eaeu.export-declaration", "document": net::SAMPLE,
            "recipient_country": "RU", "traders": [bad]}),
        ),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("traders[0]"),
        "{v}"
    );

    // The kept answer is evidence offline; a tampered one and one signed by another state's
    // key are refused.
    let evidence = d.join("evidence");
    std::fs::create_dir(&evidence).expect("dir");
    std::fs::copy(&answer, evidence.join("a.xml")).expect("copy");
    let trust = d.join("trust-space.toml");
    let envelope = d.join("envelope.xml");
    let (status, v) = net.http("RU", "GET", "/v1/inbox", None);
    assert_eq!(status, 200);
    let env = v["messages"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["message_id"] == ok.as_str()))
        .and_then(|m| m["envelope"].as_str())
        .expect("the recognised envelope is in RU's inbox")
        .to_owned();
    std::fs::write(&envelope, env).expect("envelope");
    let recognise = || {
        tereze(&[
            "recognise",
            "--trust",
            trust.to_str().expect("utf-8"),
            "--state",
            "RU",
            "--trader-answers",
            evidence.to_str().expect("utf-8"),
            envelope.to_str().expect("utf-8"),
        ])
    };
    let (code, out, err) = recognise();
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&answer).expect("answer");
    std::fs::write(
        evidence.join("a.xml"),
        text.replace("Astyq Grain LLP", "Astyq Grain LTD"),
    )
    .expect("tamper");
    let (code, _, err) = recognise();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not signed by KZ's node"), "{err}");
    // Re-signed whole by RU's signer: well formed and validly signed, by the wrong state.
    let unsigned = text[..text.find("<ds:Signature").expect("signed")].to_owned()
        + &text[text.find("</ds:Signature>").expect("signed") + "</ds:Signature>".len()..];
    std::fs::write(d.join("unsigned.xml"), unsigned).expect("unsigned");
    let (code, forged, err) = tereze(&[
        "xml",
        "sign",
        "--key",
        d.join("ru/signer.key").to_str().expect("utf-8"),
        "--cert",
        d.join("ru/signer.pem").to_str().expect("utf-8"),
        d.join("unsigned.xml").to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(evidence.join("a.xml"), forged).expect("forged");
    let (code, _, err) = recognise();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not signed by KZ's node"), "{err}");
}

#[test]
fn a_trader_added_to_its_register_is_resolved_after_a_flush_without_waiting() {
    // "Not registered" kept for an hour: only the flush can make RU ask KZ again in time.
    let mut net = Net::init(
        "KZ,RU",
        "",
        "",
        25250,
        "\n[traders]\nnegative_ttl_seconds = 3600\n",
    );
    net.start("KZ");
    net.start("RU");
    let d = net.dir.path().to_path_buf();
    let newcomer = kz("21054000321");
    let resolve = || {
        let (status, v) = net.http(
            "RU",
            "GET",
            &format!("/v1/traders/{newcomer}/resolve"),
            None,
        );
        assert_eq!(status, 200, "{v}");
        (v["registered"].clone(), v["source"].clone())
    };
    assert_eq!(resolve(), (json!(false), json!("owner")));
    assert_eq!(resolve(), (json!(false), json!("cache")));
    // A document naming the trader is rejected at RU on the kept answer.
    let id = submit_with(&net, &newcomer);
    assert_eq!(judged(&net, &id).as_deref(), Some("rejected"));

    // KZ's register is corrected; RU still holds the answer it was given.
    let (status, v) = net.http(
        "KZ",
        "POST",
        "/v1/traders",
        Some(
            &json!([{"id": newcomer, "name": "Newcomer LLP", "address": "Almaty",
            "statuses": [{"status": "active", "from": "2020-01-01"}]}]),
        ),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(resolve(), (json!(false), json!("cache")));

    let admin =
        |token_file: &std::path::Path, args: &[&str]| net.admin_cli_as("RU", token_file, args);
    let token = d.join("ru/admin.token");
    let (code, out, err) = admin(&token, &["recognise", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(&id), "still rejected before the flush: {out}");
    // Flushing is an operator action: refused without the operator's token; an identifier
    // that is not one is refused.
    let wrong = d.join("wrong.token");
    std::fs::write(&wrong, "not-the-operator-token-but-long-enough-00000\n").expect("token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let (code, _, err) = admin(&wrong, &["flush-traders", &newcomer]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("401"), "{err}");
    assert_eq!(resolve(), (json!(false), json!("cache")), "nothing flushed");
    let (code, _, err) = admin(&token, &["flush-traders", "KZ123"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("400") && err.contains("KZ123"), "{err}");

    // Flushed: asked again at once, registered; recognition run again takes the document.
    let (code, out, err) = admin(&token, &["flush-traders", &newcomer]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("flushed 1 kept trader answer(s) about {newcomer}\n")
    );
    assert_eq!(resolve(), (json!(true), json!("owner")));
    let (code, out, err) = admin(&token, &["recognise", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["recognised_now"], json!([id]), "{v}");
    // Without an identifier every kept answer goes.
    let (code, out, err) = admin(&token, &["flush-traders", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["flushed"], 1, "{v}");
    assert_eq!(resolve(), (json!(true), json!("owner")));
}
