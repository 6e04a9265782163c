//! The operators' admin API (issue 10): HTTPS with the node's certificate, refused without the
//! operator token, an OpenAPI description, and `tereze admin` mirroring it; a token file
//! others may read stops the node from starting.

mod net;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use net::{tereze, wait_until, Net};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;

/// One HTTPS request (HTTP/1.1, connection closed after): status and JSON body.
fn https(port: u16, ca: &Path, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("cert")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("conn");
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn the_admin_api_needs_the_operator_token_and_the_cli_mirrors_it() {
    let mut net = Net::init("KZ,RU", "", "", 21000, "");
    net.start("KZ");
    net.start("RU");
    let d = net.dir.path().to_path_buf();
    let ca = d.join("kz/root.pem");
    let admin_port = net.exchange_port("KZ") + 3;
    let token = std::fs::read_to_string(d.join("kz/admin.token")).expect("token");
    let token = token.trim();
    let id = net.submit("KZ", "RU", None).expect("submitted");
    assert!(wait_until(Duration::from_secs(30), || net
        .states("KZ", &id)
        .iter()
        .any(|s| s == "recognised")));

    // Refused without credentials, and with wrong ones; counted.
    let (status, v) = https(admin_port, &ca, "/admin/messages", None);
    assert_eq!(status, 401, "{v}");
    assert!(v["error"]
        .as_str()
        .unwrap_or_default()
        .contains("operator credentials required"));
    let (status, _) = https(
        admin_port,
        &ca,
        "/admin/versions",
        Some("not-the-token-but-long-enough-0000000"),
    );
    assert_eq!(status, 401);
    assert_eq!(net.metric("KZ", "admin_refused_total"), 2);
    // The OpenAPI description is public and lists every operation.
    let (status, api) = https(admin_port, &ca, "/admin/openapi.json", None);
    assert_eq!(status, 200);
    assert_eq!(api["openapi"], "3.0.3");
    for p in [
        "/admin/messages",
        "/admin/messages/{id}",
        "/admin/messages/{id}/requeue",
        "/admin/recognition/rerun",
        "/admin/peers",
        "/admin/versions",
        "/admin/audit/verify",
    ] {
        assert!(api["paths"][p].is_object(), "{p} missing");
    }
    // With the token: search and the timeline.
    let (status, v) = https(
        admin_port,
        &ca,
        "/admin/messages?state=recognised&peer=RU",
        Some(token),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["messages"][0]["message_id"], id.as_str(), "{v}");
    assert_eq!(v["messages"][0]["direction"], "out");
    assert_eq!(v["messages"][0]["process"], "P.CC.01");
    assert_eq!(v["messages"][0]["document_type"], "R.CC.01.001");
    let (status, v) = https(
        admin_port,
        &ca,
        "/admin/messages?process=P.ZZ.01",
        Some(token),
    );
    assert_eq!(
        (status, v["messages"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, v) = https(admin_port, &ca, "/admin/stats", Some(token));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["per_peer"][0]["peer"], "RU");
    assert_eq!(v["per_peer"][0]["process"], "P.CC.01");
    assert_eq!(v["per_peer"][0]["recognised"], 1);
    assert_eq!(v["electronic_share"], 1.0);
    let (status, v) = https(admin_port, &ca, "/admin/messages?state=dead", Some(token));
    assert_eq!(
        (status, v["messages"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    for path in [
        "/admin/messages?since=yesterday",
        "/admin/stats?until=soon",
        "/admin/stats.csv?since=x",
    ] {
        let (status, v) = https(admin_port, &ca, path, Some(token));
        assert_eq!(status, 400, "{path}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or_default()
                .contains("is not RFC 3339"),
            "{v}"
        );
    }
    let (status, v) = https(
        admin_port,
        &ca,
        &format!("/admin/messages/{id}"),
        Some(token),
    );
    assert_eq!(status, 200, "{v}");
    let states: Vec<&str> = v["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert!(
        states.contains(&"delivered") && states.contains(&"recognised"),
        "{states:?}"
    );
    assert_eq!(v["verdict"]["verdict"], "recognised");
    assert!(v["receipt"]
        .as_str()
        .unwrap_or_default()
        .contains("rc:Receipt"));

    // The CLI mirrors.
    let node_url = format!("https://127.0.0.1:{admin_port}");
    let token_file = d.join("kz/admin.token");
    let admin = |args: &[&str]| {
        let mut all = vec![
            "admin",
            "--node",
            node_url.as_str(),
            "--ca",
            ca.to_str().expect("utf-8"),
            "--token-file",
            token_file.to_str().expect("utf-8"),
        ];
        all.extend_from_slice(args);
        tereze(&all)
    };
    let (code, out, err) = admin(&["messages", "--state", "recognised"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id) && out.contains("recognised"), "{out}");
    let (code, out, err) = admin(&["message", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verdict: recognised"), "{out}");
    // Each probe is a fresh mutual-TLS handshake within 2 s: a slow machine may miss one.
    let mut ru = Value::Null;
    let reachable = wait_until(Duration::from_secs(30), || {
        let (code, out, err) = admin(&["peers", "--format", "json"]);
        assert_eq!(code, 0, "{err}");
        let peers: Value = serde_json::from_str(&out).expect("json");
        ru = peers["peers"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["state"] == "RU"))
            .cloned()
            .expect("RU");
        ru["reachable"] == true
    });
    assert!(reachable, "{ru}");
    let (code, out, _) = admin(&["versions"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("trust space v1") && out.contains("P.CLS.HS"),
        "{out}"
    );
    let (code, out, _) = admin(&["audit"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("intact\n"), "{out}");
    let (code, _, err) = admin(&["requeue", &format!("urn:uuid:{}", uuid::Uuid::new_v4())]);
    assert_eq!(code, 1, "an unknown message is a negative answer: {err}");
    let (code, _, _) = admin(&["recognise"]);
    assert_eq!(code, 0);
    // The log level changes while the node runs.
    let (code, out, _) = admin(&["log-level"]);
    assert_eq!((code, out.as_str()), (0, "log filter: info\n"));
    let (code, _, err) = admin(&["log-level", "info,nonsense=[[["]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("400"), "{err}");
    let (code, out, _) = admin(&["log-level", "debug"]);
    assert_eq!((code, out.as_str()), (0, "log filter: debug\n"));
    assert!(
        wait_until(Duration::from_secs(10), || net.log("KZ").contains("DEBUG")),
        "debug events appear"
    );
    assert!(net.log("KZ").contains("log filter changed by an operator"));

    // A token file others may read: the node does not start.
    net.stop("KZ");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let f = d.join("kz/admin.token");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let out = std::process::Command::new(net::BIN)
            .args(["node", "run", "--config"])
            .arg(d.join("kz/node.toml"))
            .output()
            .expect("runs");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains(token), "the token is never printed");
        // Private keys likewise.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        for key in ["signer.key", "node-tls.key"] {
            let k = d.join("kz").join(key);
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o640)).expect("chmod");
            let out = std::process::Command::new(net::BIN)
                .args(["node", "run", "--config"])
                .arg(d.join("kz/node.toml"))
                .output()
                .expect("runs");
            assert!(!out.status.success(), "{key}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(key) && err.contains("chmod 600"), "{err}");
            assert!(
                !err.contains("PRIVATE KEY"),
                "no key material in the message"
            );
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }
}

/// The value of one series line (`name{labels} value`) in a Prometheus text page.
fn series(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn metrics_and_readiness_show_what_the_node_does() {
    let mut net = Net::init("KZ,RU", "", "", 21100, "");
    net.start("KZ");
    net.start("RU");
    let ok = net.submit("KZ", "RU", None).expect("submitted");
    // A KZ trader KZ's register does not hold: RU rejects the document (trader-unknown).
    let unknown = format!(
        "KZ{}",
        tereze_reference_data::trader::complete(
            tereze_reference_data::trader::Country::KZ,
            "25014000777"
        )
        .expect("check digit")
    );
    let body = serde_json::json!({
        "format": "eaeu.export-declaration", "document": net::SAMPLE,
        "recipient_country": "RU", "recipient_authority": "FCS", "traders": [unknown],
    });
    let (status, v) = net.http("KZ", "POST", "/v1/messages", Some(&body));
    assert_eq!(status, 202, "{v}");
    let rejected = v["messages"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let judged = |id: &str, state: &str| {
        wait_until(Duration::from_secs(30), || {
            net.states("KZ", id).iter().any(|s| s == state)
        })
    };
    assert!(judged(&ok, "recognised"));
    assert!(judged(&rejected, "rejected"));

    let (_, kz) = net.http("KZ", "GET", "/metrics", None);
    let kz = kz.as_str().unwrap_or_default().to_owned();
    let count =
        series(&kz, "tereze_deliver_seconds_count{peer=\"RU\"} ").expect("deliver histogram");
    assert!(count >= 1.0, "{kz}");
    assert_eq!(
        series(
            &kz,
            "tereze_deliver_seconds_bucket{peer=\"RU\",le=\"+Inf\"} "
        ),
        Some(count)
    );
    assert!(series(&kz, "tereze_deliver_seconds_sum{peer=\"RU\"} ").is_some_and(|s| s > 0.0));
    assert!(
        series(&kz, "tereze_certificate_expiry_days{certificate=\"tls\"} ")
            .is_some_and(|d| d > 0.0),
        "{kz}"
    );
    assert!(series(
        &kz,
        "tereze_certificate_expiry_days{certificate=\"anchor:RU:0\"} "
    )
    .is_some_and(|d| d > 0.0));
    assert!(series(&kz, "tereze_store_bytes ").is_some_and(|b| b > 0.0));
    assert_eq!(series(&kz, "tereze_submitted_total "), Some(2.0));
    assert_eq!(
        series(&kz, "tereze_messages_total{direction=\"out\",peer=\"RU\",process=\"P.CC.01\",document_type=\"R.CC.01.001\"} "),
        Some(2.0),
        "{kz}"
    );
    let (_, ru) = net.http("RU", "GET", "/metrics", None);
    let ru = ru.as_str().unwrap_or_default().to_owned();
    assert_eq!(
        series(
            &ru,
            "tereze_recognition_rejections_total{reason=\"trader-unknown\"} "
        ),
        Some(1.0),
        "{ru}"
    );
    assert_eq!(series(&ru, "tereze_received_total "), Some(2.0));
    assert_eq!(
        series(
            &ru,
            "tereze_messages_total{direction=\"in\",peer=\"KZ\",process=\"P.CC.01\",document_type=\"R.CC.01.001\"} "
        ),
        Some(2.0),
        "{ru}"
    );

    let (mut status, mut v) = (0, Value::Null);
    assert!(
        wait_until(Duration::from_secs(30), || {
            (status, v) = net.http("KZ", "GET", "/readyz", None);
            v["checks"]["peers_reachable"] == "1/1"
        }),
        "{v}"
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ready"], true);
    net.stop("RU");
    let (status, v) = net.http("KZ", "GET", "/readyz", None);
    assert_eq!(
        status, 200,
        "a peer down does not make the node unready: {v}"
    );
    assert_eq!(v["checks"]["peers_reachable"], "0/1");
}
