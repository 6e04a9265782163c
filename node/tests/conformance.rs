//! The conformance suite against a freshly started node (issue 9): every case must pass, the
//! reports must be written, and the catalogue must match docs/conformance.md.

mod net;

use net::{tereze, Net};

#[test]
fn the_full_suite_passes_against_a_fresh_node_and_writes_its_reports() {
    let mut net = Net::init("KZ,RU", "", "", 20800, "");
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
}

#[test]
fn docs_conformance_md_lists_the_catalogue() {
    let (code, md, err) = tereze(&["conformance", "list", "--markdown"]);
    assert_eq!(code, 0, "{err}");
    let doc = include_str!("../../docs/conformance.md");
    assert!(
        doc.contains(md.trim()),
        "docs/conformance.md is out of date: regenerate its catalogue with `tereze conformance list --markdown`"
    );
}
