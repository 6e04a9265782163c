//! Later judgements and submission sets across real nodes (issue 26). A message rejected for a
//! reason a trust-space update removes is recognised on the receiver's second look; the new
//! signed verdict reaches the sender directly (KZ ↔ RU) and through the hub (KZ ↔ BY via EEC),
//! whose status then shows it; the receiver's inbox shows the current verdict. A submission
//! set with refused messages is `refused`, naming them and why, then `recognised` once they
//! are judged again.

use std::time::Duration;

use serde_json::{json, Value};

use crate::net::{self, wait_until, Net};

const SETTLE: Duration = Duration::from_secs(60);

/// The last verdict transition of `id` at `state`'s node, with its note.
fn verdict(net: &Net, state: &str, id: &str) -> Option<(String, String)> {
    let (status, v) = net.http(state, "GET", &format!("/v1/messages/{id}"), None);
    if status != 200 {
        return None;
    }
    v["history"].as_array()?.iter().rev().find_map(|t| {
        let s = t["state"].as_str()?;
        (s == "recognised" || s == "rejected")
            .then(|| (s.to_owned(), t["note"].as_str().unwrap_or("").to_owned()))
    })
}

fn set_decision(net: &Net, set: &str) -> Value {
    let (status, v) = net.http("KZ", "GET", &format!("/v1/submissions/{set}"), None);
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn a_later_judgement_reaches_the_sender_directly_and_through_the_hub_and_decides_a_set() {
    let mut net = Net::init("KZ,RU,BY", "EEC", "BY,KZ", 31200, "");
    // KZ and BY reach each other through the hub; RU and KZ directly, both ways.
    let ru = net.node_dir("RU").join("node.toml");
    let text = std::fs::read_to_string(&ru).expect("config");
    assert!(text.contains("via_hub = [\"BY\", \"KZ\"]"), "{text}");
    std::fs::write(
        &ru,
        text.replace("via_hub = [\"BY\", \"KZ\"]", "via_hub = [\"BY\"]"),
    )
    .expect("write");
    for s in ["KZ", "RU", "BY", "EEC"] {
        net.configure(s, "trust_refresh_seconds = 1");
    }
    // Version 2 recognises phytosanitary certificates only: export declarations (and
    // certificates of origin) are rejected as document-not-recognised.
    let d = net.dir.path().to_path_buf();
    let v2 = crate::phytosanitary_only_trust_space(&net);
    net.publish_trust("2", &v2);
    for s in ["EEC", "KZ", "RU", "BY"] {
        net.start(s);
    }

    let to_ru = net.submit("KZ", "RU", None).expect("submitted to RU");
    let to_by = net.submit("KZ", "BY", None).expect("submitted to BY");
    let set = include_str!("../../../codecs/samples/kz.export-submission/valid-grain.xml");
    let (status, v) = net.http(
        "KZ",
        "POST",
        "/v1/messages",
        Some(&json!({"format": "kz.export-submission", "document": set})),
    );
    assert_eq!(status, 202, "{v}");
    let set_id = v["set_id"].as_str().expect("a set id").to_owned();
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(3), "{v}");
    // A single message is no set.
    let (_, single) = net.http("KZ", "GET", &format!("/v1/submissions/{to_ru}"), None);
    assert!(single["error"].is_string(), "{single}");

    for (id, receiver) in [(&to_ru, "RU"), (&to_by, "BY")] {
        assert!(
            wait_until(SETTLE, || verdict(&net, "KZ", id)
                .is_some_and(|(s, _)| s == "rejected")),
            "{receiver}'s first verdict: {:?}\n{}",
            net.states("KZ", id),
            net.log("KZ")
        );
    }
    assert!(
        wait_until(SETTLE, || set_decision(&net, &set_id)["result"]
            == "refused"),
        "{}",
        set_decision(&net, &set_id)
    );
    let decision = set_decision(&net, &set_id);
    let refused = decision["refused"].as_array().expect("refused");
    assert!(!refused.is_empty(), "{decision}");
    for r in refused {
        assert_eq!(r["verdict"], "rejected", "{decision}");
        assert_eq!(
            r["reasons"],
            json!(["document-not-recognised"]),
            "{decision}"
        );
        assert_eq!(r["recipient_country"], "RU", "{decision}");
    }
    assert!(
        decision["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["recipient_authority"] == "RSHN" && m["verdict"] == "recognised"),
        "the phytosanitary certificate is recognised: {decision}"
    );

    // Version 3 recognises them again; each receiver's operator has the quarantine judged
    // again, and the new verdicts go back.
    net.publish_trust("3", &d.join("trust-space.toml"));
    assert!(wait_until(SETTLE, || net
        .metric("RU", "trust_space_version")
        == 3
        && net.metric("BY", "trust_space_version") == 3));
    for receiver in ["RU", "BY"] {
        let (code, out) = net.admin_cli(receiver, &["recognise"]);
        assert_eq!(code, 0, "{out}");
    }
    for (id, receiver) in [(&to_ru, "RU"), (&to_by, "BY")] {
        assert!(
            wait_until(SETTLE, || verdict(&net, "KZ", id)
                .is_some_and(|(s, _)| s == "recognised")),
            "{receiver}'s new verdict did not reach KZ: {:?}\n{}\n{}",
            net.states("KZ", id),
            net.log(receiver),
            net.log("KZ")
        );
        let (_, note) = verdict(&net, "KZ", id).expect("a verdict");
        assert!(
            note.starts_with(&format!("judged again by {receiver}: recognised")),
            "{note}"
        );
        // The newest receipt is the message's receipt: the later judgement, signed.
        let (_, status) = net.http("KZ", "GET", &format!("/v1/messages/{id}"), None);
        let receipt = status["receipt"].as_str().expect("a receipt");
        assert!(receipt.contains("<rc:Judgement"), "{receipt}");
        assert!(receipt.contains("<rc:Verdict>recognised"), "{receipt}");
        // The receiver's inbox shows the current verdict.
        let entry = net
            .inbox(receiver)
            .into_iter()
            .find(|m| m["message_id"] == id.as_str())
            .expect("in the inbox");
        assert_eq!(entry["verdict"], "recognised", "{entry}");
        // The receiver's history says it was sent; its state stays the verdict.
        assert_eq!(
            net.states(receiver, id).last().map(String::as_str),
            Some("recognised")
        );
        let (_, note) = verdict(&net, receiver, id).expect("a verdict");
        assert!(
            note.ends_with(if receiver == "BY" {
                "new verdict (judgement 2) queued for KZ through EEC"
            } else {
                "new verdict (judgement 2) queued for KZ"
            }),
            "{note}"
        );
    }
    assert!(
        wait_until(SETTLE, || set_decision(&net, &set_id)["result"]
            == "recognised"),
        "{}",
        set_decision(&net, &set_id)
    );
    assert_eq!(set_decision(&net, &set_id)["refused"], json!([]));

    // RU's judgement replayed to KZ is taken and changes nothing; BY may not return RU's.
    let (_, status) = net.http("KZ", "GET", &format!("/v1/messages/{to_ru}"), None);
    let later = status["receipt"].as_str().expect("a receipt").to_owned();
    let before = net.states("KZ", &to_ru);
    let returned = |from: &str| tereze_proto::ReturnReceiptsRequest {
        receipts: vec![tereze_proto::ReturnedReceipt {
            message_id: to_ru.clone(),
            recipient: "RU".into(),
            receipt: later.clone().into_bytes(),
            sender: if from == "RU" {
                String::new()
            } else {
                "KZ".into()
            },
        }],
    };
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let mut as_ru = net::exchange(&net, "KZ", "RU").await;
            let taken = as_ru
                .return_receipts(returned("RU"))
                .await
                .expect("answered")
                .into_inner();
            assert_eq!(
                taken.accepted,
                std::slice::from_ref(&to_ru),
                "a replay is taken"
            );
            let mut as_by = net::exchange(&net, "KZ", "BY").await;
            let taken = as_by
                .return_receipts(returned("BY"))
                .await
                .expect("answered")
                .into_inner();
            assert!(taken.accepted.is_empty(), "BY returned RU's judgement");
        });
    assert_eq!(net.states("KZ", &to_ru), before, "nothing recorded");

    // The same decision on the Window, and each change of the result was an event.
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let mut window = net::window(net.window_port("KZ")).await;
            let d = window
                .get_submission(tereze_proto::GetSubmissionRequest {
                    set_id: set_id.clone(),
                })
                .await
                .expect("the set")
                .into_inner();
            assert_eq!(d.result, "recognised");
            assert_eq!(d.messages.len(), 3);
        });
    let (status, events) = net.http("KZ", "GET", "/v1/events?after=0&limit=1000", None);
    assert_eq!(status, 200, "{events}");
    let bodies: Vec<&Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "submission-set" && e["subject"] == set_id.as_str())
        .map(|e| &e["body"])
        .collect();
    let results: Vec<&str> = bodies.iter().filter_map(|b| b["result"].as_str()).collect();
    assert_eq!(results, ["refused", "recognised"], "{events}");
    // The refusal's event gives the reasons as GET /v1/submissions/{id} gave them.
    let refused = bodies[0]["refused"].as_array().expect("refused");
    assert!(!refused.is_empty(), "{events}");
    for r in refused {
        assert_eq!(r["verdict"], "rejected", "{events}");
        assert_eq!(r["reasons"], json!(["document-not-recognised"]), "{events}");
    }
    assert_eq!(
        bodies[0]["messages"].as_array().map(Vec::len),
        Some(3),
        "every message's verdict: {events}"
    );
}
