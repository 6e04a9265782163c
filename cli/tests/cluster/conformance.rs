//! The conformance suite against a freshly started node (issue 9): every case must pass, the
//! reports must be written, and the catalogue must match docs/conformance.md. The tester
//! state is marked `conformance = true` in the trust space, so the target keeps the suite's
//! envelopes out of its national inbox and quarantine until an operator purges them (issue 22).

use std::time::Duration;

use serde_json::Value;

use crate::net::{tereze, wait_until, Net};

#[test]
fn the_full_suite_passes_against_a_fresh_node_and_writes_its_reports() {
    // BY sends normal traffic beside the tester KZ.
    let mut net = Net::init("KZ,RU,BY", "", "", 20800, "");
    let source = net.dir.path().join("trust-space.toml");
    let text = std::fs::read_to_string(&source).expect("trust space");
    let marked = text.replacen("code = \"KZ\"\n", "code = \"KZ\"\nconformance = true\n", 1);
    assert_ne!(marked, text, "KZ's state entry");
    std::fs::write(&source, marked).expect("write");
    net.start("RU");
    let d = net.dir.path();
    let p = |s: &str| d.join(s).to_str().expect("utf-8").to_owned();
    let target = format!("127.0.0.1:{}", net.exchange_port("RU"));
    // The suite serves as KZ's node where the trust space lists it (KZ's node is not started).
    let listen = format!("127.0.0.1:{}", net.exchange_port("KZ"));
    // The tester's identity and the target, common to every run below.
    let base: Vec<String> = [
        "conformance",
        "run",
        "--target",
        &target,
        "--server-name",
        "node.ru.tereze.test",
        "--ca",
        &p("ru/root.pem"),
        "--target-state",
        "RU",
        "--cert",
        &p("kz/node-tls.pem"),
        "--key",
        &p("kz/node-tls.key"),
        "--state",
        "KZ",
        "--signer-cert",
        &p("kz/signer.pem"),
        "--signer-key",
        &p("kz/signer.key"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        tereze(&args)
    };
    let (code, out, err) = with(&[
        "--issuer-cert",
        &p("kz/root.pem"),
        "--issuer-key",
        &p("kz/root.key"),
        "--listen",
        &listen,
        "--junit",
        &p("conformance.xml"),
        "--html",
        &p("conformance.html"),
        "--json",
        &p("conformance.json"),
    ]);
    assert_eq!(code, 0, "{out}{err}\n{}", net.log("RU"));
    let cases = tereze_conformance::catalogue().len();
    assert!(cases >= 40, "{cases} cases");
    assert!(
        out.lines()
            .any(|l| l == format!("conformance: {cases} passed, 0 failed")),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("conformance.json")).expect("json"))
            .expect("JSON");
    assert_eq!(json["passed"], cases);
    let junit = std::fs::read_to_string(d.join("conformance.xml")).expect("junit");
    assert!(
        junit.contains(&format!("tests=\"{cases}\" failures=\"0\"")),
        "{junit}"
    );
    tereze_codecs::xml::parse(junit.as_bytes()).expect("JUnit is well-formed XML");
    let html = std::fs::read_to_string(d.join("conformance.html")).expect("html");
    assert!(
        html.contains("signature.tampered-body"),
        "the page lists the cases"
    );

    // Only one suite, by name; an unknown one is a usage error.
    let (code, out, _) = with(&["--suite", "traders"]);
    assert_eq!(
        code, 1,
        "without --listen the owner-answer cases are not run: {out}"
    );
    assert!(
        out.contains("conformance: 3 passed, 0 failed, 5 not run"),
        "{out}"
    );
    let (code, _, err) = with(&["--suite", "nonsense"]);
    assert_eq!(code, 2, "{err}");
    // Without the tester state's CA the cases that need it are not run, and the run says no.
    let (code, out, _) = with(&["--suite", "signature"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 not run"), "{out}");

    // Nothing of the suite reached the national system: the inbox and the quarantine are
    // empty, and the conformance area holds the suite's messages, recognised and rejected.
    assert_eq!(net.inbox_ids("RU"), Vec::<String>::new());
    let admin_port = net.exchange_port("RU") + 3;
    let node_url = format!("https://127.0.0.1:{admin_port}");
    let (ca, token_file) = (p("ru/root.pem"), p("ru/admin.token"));
    let admin = |args: &[&str]| {
        let mut all = vec![
            "admin",
            "--node",
            &node_url,
            "--ca",
            &ca,
            "--token-file",
            &token_file,
        ];
        all.extend_from_slice(args);
        let (code, out, err) = tereze(&all);
        assert_eq!(code, 0, "tereze {all:?}: {err}");
        out
    };
    let json = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--format", "json"]);
        serde_json::from_str(&admin(&all)).expect("JSON")
    };
    let rerun = json(&["recognise"]);
    assert_eq!(
        rerun["still_rejected"], 0,
        "the quarantine is empty: {rerun}"
    );
    // Nor do the suite's cases count in the indicators of real exchange.
    let (_, metrics) = net.http("RU", "GET", "/metrics", None);
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(metrics.contains("tereze_received_total "), "{metrics}");
    for series in [
        "tereze_recognition_rejections_total{",
        "tereze_messages_total{direction=\"in\"",
    ] {
        assert!(!metrics.contains(series), "{series} counted: {metrics}");
    }
    let held = json(&["conformance", "list"])["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(held.iter().all(|m| m["sender"] == "KZ"));
    for verdict in ["recognised", "rejected"] {
        assert!(
            held.iter().any(|m| m["verdict"] == verdict),
            "a {verdict} message held"
        );
    }

    // Normal traffic from another state still reaches the inbox.
    net.start("BY");
    let normal = net.submit("BY", "RU", None).expect("submitted");
    assert!(
        wait_until(Duration::from_secs(60), || !net.inbox_ids("RU").is_empty()),
        "{}",
        net.log("RU")
    );
    assert_eq!(net.inbox_ids("RU"), std::slice::from_ref(&normal));

    // The operator purges the conformance area; each purge is in the audit chain.
    let out = admin(&["conformance", "purge"]);
    assert_eq!(out, format!("purged {} conformance messages\n", held.len()));
    let out = admin(&["conformance", "list"]);
    assert!(out.ends_with("0 conformance messages held\n"), "{out}");
    let one = held[0]["message_id"].as_str().expect("id");
    let timeline = json(&["message", one]);
    assert_eq!(
        timeline["timeline"]
            .as_array()
            .and_then(|t| t.last())
            .map(|t| t["state"].clone()),
        Some(Value::from("purged")),
        "{timeline}"
    );
    assert!(admin(&["audit"]).ends_with("intact\n"));
    assert_eq!(net.inbox_ids("RU"), [normal]);
}

#[test]
fn docs_conformance_md_lists_the_catalogue() {
    let (code, md, err) = tereze(&["conformance", "list", "--markdown"]);
    assert_eq!(code, 0, "{err}");
    let doc = include_str!("../../../docs/conformance.md");
    assert!(
        doc.contains(md.trim()),
        "docs/conformance.md is out of date: regenerate its catalogue with `tereze conformance list --markdown`"
    );
}
