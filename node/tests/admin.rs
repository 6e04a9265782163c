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
    let (status, v) = https(admin_port, &ca, "/admin/messages?state=dead", Some(token));
    assert_eq!(
        (status, v["messages"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, v) = https(
        admin_port,
        &ca,
        "/admin/messages?since=yesterday",
        Some(token),
    );
    assert_eq!(status, 400, "{v}");
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
    let (code, out, err) = admin(&["peers", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let peers: Value = serde_json::from_str(&out).expect("json");
    let ru = peers["peers"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["state"] == "RU"))
        .cloned()
        .expect("RU");
    assert_eq!(ru["reachable"], true, "{ru}");
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
    }
}
