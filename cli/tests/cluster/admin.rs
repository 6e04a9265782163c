//! The operators' admin API (issue 10): HTTPS with the node's certificate, refused without the
//! operator token, an OpenAPI description, and `tereze admin` mirroring it; a token file
//! others may read stops the node from starting.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::net::{self, tereze, wait_until, Net};

/// A GET of the admin API at `port` with `token` (none: no credential).
fn https(port: u16, ca: &Path, path: &str, token: Option<&str>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    net::https(port, ca, "GET", path, auth.as_deref(), None)
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
        "/admin/traders/flush",
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
        let out = std::process::Command::new(net::bin())
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
            let out = std::process::Command::new(net::bin())
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

/// Writes `token` to `path`, readable by the owner only (as the node demands).
fn write_token(path: &Path, token: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{token}\n")).expect("token");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("mode");
}

/// The gRPC code of a call's result.
fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> tonic::Code {
    match r {
        Ok(_) => tonic::Code::Ok,
        Err(s) => s.code(),
    }
}

/// A GET over TLS to a national door that asks for client certificates: with the client
/// certificate chain and key given (PEM files), or none.
fn https_with_identity(
    port: u16,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    path: &str,
) -> (u16, Value) {
    net::https_as(port, ca, identity, "GET", path, None, None)
}

/// What a national call needs: one of the operations of `[[national.client]]`, or any client.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    Sender,
    Reader,
    Anyone,
}

#[test]
fn every_door_refuses_calls_without_the_right_credentials_and_says_who_did_what() {
    let mut net = Net::init("KZ,RU", "", "", 21200, "");
    let (kz, ru) = (net.node_dir("KZ"), net.node_dir("RU"));
    // Two national clients per node: the sender (submits, uploads, keeps the register) and the
    // reader (reads and acknowledges the inbox).
    let reader = "r".repeat(48);
    for dir in [&kz, &ru] {
        let config = dir.join("node.toml");
        let text = std::fs::read_to_string(&config).expect("config");
        let text = text.replace(
            "operations = [\"submit\", \"inbox\", \"ack\", \"upload\", \"traders\", \"reference\"]",
            "operations = [\"submit\", \"upload\", \"traders\", \"reference\"]",
        );
        std::fs::write(
            &config,
            format!("{text}\n[[national.client]]\nname = \"reader\"\ntoken_file = \"reader.token\"\noperations = [\"inbox\", \"ack\"]\n"),
        )
        .expect("config");
        write_token(&dir.join("reader.token"), &reader);
    }
    let ru_sender = std::fs::read_to_string(ru.join("national.token")).expect("token");
    let ru_sender = ru_sender.trim().to_owned();
    net.start("KZ");
    net.start("RU");
    let id = net.submit("KZ", "RU", None).expect("the sender submits");
    assert!(wait_until(Duration::from_secs(30), || net
        .states("KZ", &id)
        .iter()
        .any(|s| s == "recognised")));

    let upload = Uuid::new_v4();
    let routes: Vec<(&str, String, Needs)> = vec![
        ("POST", "/v1/messages".into(), Needs::Sender),
        ("GET", format!("/v1/messages/{id}"), Needs::Sender),
        ("PUT", "/v1/attachments".into(), Needs::Sender),
        ("POST", "/v1/uploads".into(), Needs::Sender),
        ("GET", format!("/v1/uploads/{upload}"), Needs::Sender),
        (
            "PATCH",
            format!("/v1/uploads/{upload}?offset=0"),
            Needs::Sender,
        ),
        ("POST", "/v1/traders".into(), Needs::Sender),
        ("POST", "/v1/reference/change-sets".into(), Needs::Sender),
        ("GET", "/v1/inbox".into(), Needs::Reader),
        (
            "GET",
            format!("/v1/messages/{id}/attachments/a"),
            Needs::Reader,
        ),
        ("POST", "/v1/inbox/ack".into(), Needs::Reader),
        ("GET", "/v1/reference".into(), Needs::Anyone),
        ("GET", "/v1/traders/KZ120440789014".into(), Needs::Anyone),
    ];
    let port = net.http_port("RU");
    let bearer = |t: &str| format!("Bearer {t}");
    let wrong = bearer(&"w".repeat(48));
    let empty = serde_json::json!({});
    for (method, path, needs) in &routes {
        let body = (*method != "GET").then_some(&empty);
        let call = |auth: Option<&str>| net::http_as(port, method, path, auth, body).0;
        assert_eq!(call(None), 401, "{method} {path} without a credential");
        assert_eq!(
            call(Some(&wrong)),
            401,
            "{method} {path} with a wrong token"
        );
        let (right, other) = match needs {
            Needs::Sender => (bearer(&ru_sender), Some(bearer(&reader))),
            Needs::Reader => (bearer(&reader), Some(bearer(&ru_sender))),
            Needs::Anyone => (bearer(&reader), None),
        };
        if let Some(other) = other {
            assert_eq!(
                call(Some(&other)),
                403,
                "{method} {path} with another client's token"
            );
        }
        let status = call(Some(&right));
        assert!(
            ![401, 403].contains(&status),
            "{method} {path} with the right token: {status}"
        );
        // The scheme is case-insensitive; whitespace around the token is not part of it.
        let spaced = format!("bEaReR   {}  ", right.trim_start_matches("Bearer "));
        assert!(
            ![401, 403].contains(&call(Some(&spaced))),
            "{method} {path}"
        );
    }
    // Health, readiness and metrics stay open; operator actions are gone from this door.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(net::http_as(port, "GET", path, None, None).0, 200, "{path}");
    }
    for (method, path) in [
        ("POST", format!("/v1/messages/{id}/requeue")),
        ("GET", "/v1/parked".into()),
        ("GET", "/v1/quarantine".into()),
        ("POST", "/v1/quarantine/recognise".into()),
        ("GET", "/v1/crl".into()),
    ] {
        let (status, _) = net::http_as(port, method, &path, Some(&bearer(&ru_sender)), None);
        assert!(
            [404, 405].contains(&status),
            "{method} {path} on the national door: {status}"
        );
    }
    // The peer door serves the CRL route and nothing else.
    let peer = net.peer_port("RU");
    assert_eq!(net::http_as(peer, "GET", "/v1/crl", None, None).0, 404);
    assert_eq!(net::http_as(peer, "POST", "/v1/crl", None, None).0, 405);
    for path in ["/v1/messages", "/v1/inbox", "/metrics", "/admin/messages"] {
        assert_eq!(
            net::http_as(peer, "GET", path, Some(&bearer(&ru_sender)), None).0,
            404,
            "{path} on the peer door"
        );
    }
    // The admin door takes the operator token only, on every route but its description and
    // the console page.
    let admin_ca = ru.join("root.pem");
    let operator = std::fs::read_to_string(ru.join("admin.token")).expect("token");
    let empty_json = serde_json::json!({});
    for (method, path) in [
        ("GET", "/admin/messages".to_owned()),
        ("GET", format!("/admin/messages/{id}")),
        (
            "POST",
            format!("/admin/messages/urn:uuid:{}/requeue", Uuid::new_v4()),
        ),
        ("POST", "/admin/recognition/rerun".to_owned()),
        ("GET", "/admin/parked".to_owned()),
        ("GET", "/admin/quarantine".to_owned()),
        ("GET", "/admin/conformance".to_owned()),
        ("GET", "/admin/peers".to_owned()),
        ("GET", "/admin/versions".to_owned()),
        ("POST", "/admin/audit/verify".to_owned()),
        ("GET", "/admin/log-level".to_owned()),
        ("GET", "/admin/stats".to_owned()),
        ("GET", "/admin/stats.csv".to_owned()),
    ] {
        let body = (method == "POST").then_some(&empty_json);
        let call = |auth: Option<&str>| {
            net::https(net.admin_port("RU"), &admin_ca, method, &path, auth, body).0
        };
        assert_eq!(call(None), 401, "{method} {path}");
        assert_eq!(call(Some(&wrong)), 401, "{method} {path}");
        assert_eq!(
            call(Some(&bearer(&ru_sender))),
            401,
            "{method} {path} with a national token"
        );
        let status = call(Some(&bearer(operator.trim())));
        assert!(
            status != 401 && status != 0,
            "{method} {path} with the operator token: {status}"
        );
    }

    // The Window asks the same of every call.
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            use tereze_proto::{
                BeginUploadRequest, FetchAttachmentRequest, InboxAckRequest, InboxPullRequest,
                StatusRequest, SubmitRequest, SubscribeReferenceRequest, SubscribeRequest,
                UploadChunk, UploadStatusRequest,
            };
            let window = net.window_port("RU");
            let unknown = format!("urn:uuid:{}", Uuid::new_v4());
            let calls = |mut w: net::Window| {
                let unknown = unknown.clone();
                async move {
                    vec![
                        (
                            "Submit",
                            Needs::Sender,
                            code(w.submit(SubmitRequest::default()).await),
                        ),
                        (
                            "Status",
                            Needs::Sender,
                            code(
                                w.status(StatusRequest {
                                    message_id: unknown.clone(),
                                })
                                .await,
                            ),
                        ),
                        (
                            "Subscribe",
                            Needs::Sender,
                            code(w.subscribe(SubscribeRequest::default()).await),
                        ),
                        (
                            "UploadAttachment",
                            Needs::Sender,
                            code(
                                w.upload_attachment(tokio_stream::iter(vec![
                                    UploadChunk::default(),
                                ]))
                                .await,
                            ),
                        ),
                        (
                            "BeginUpload",
                            Needs::Sender,
                            code(
                                w.begin_upload(BeginUploadRequest {
                                    size: 1,
                                    sha256: String::new(),
                                })
                                .await,
                            ),
                        ),
                        (
                            "UploadStatus",
                            Needs::Sender,
                            code(
                                w.upload_status(UploadStatusRequest {
                                    upload_id: Uuid::new_v4().to_string(),
                                })
                                .await,
                            ),
                        ),
                        (
                            "InboxPull",
                            Needs::Reader,
                            code(w.inbox_pull(InboxPullRequest::default()).await),
                        ),
                        (
                            "InboxAck",
                            Needs::Reader,
                            code(w.inbox_ack(InboxAckRequest::default()).await),
                        ),
                        (
                            "FetchAttachment",
                            Needs::Reader,
                            code(
                                w.fetch_attachment(FetchAttachmentRequest {
                                    message_id: unknown.clone(),
                                    id: "a".into(),
                                    offset: 0,
                                })
                                .await,
                            ),
                        ),
                        (
                            "SubscribeReference",
                            Needs::Anyone,
                            code(
                                w.subscribe_reference(SubscribeReferenceRequest::default())
                                    .await,
                            ),
                        ),
                    ]
                }
            };
            let denied = [tonic::Code::Unauthenticated, tonic::Code::PermissionDenied];
            for auth in [None, Some(wrong.clone())] {
                for (call, _, got) in calls(net::window_as(window, auth.as_deref()).await).await {
                    assert_eq!(got, tonic::Code::Unauthenticated, "{call} with {auth:?}");
                }
            }
            for (who, token) in [(Needs::Sender, &ru_sender), (Needs::Reader, &reader)] {
                let w = net::window_as(window, Some(&bearer(token))).await;
                for (call, needs, got) in calls(w).await {
                    if needs == who || needs == Needs::Anyone {
                        assert!(!denied.contains(&got), "{call} as its client: {got:?}");
                    } else {
                        assert_eq!(got, tonic::Code::PermissionDenied, "{call} as {who:?}");
                    }
                }
            }
        });

    // Refusals are counted by door and reason, and logged with the source and the name.
    let metrics = net::http_as(port, "GET", "/metrics", None, None).1;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    for (door, reason) in [
        ("http", "no-credential"),
        ("http", "unknown-credential"),
        ("http", "not-permitted"),
        ("window", "no-credential"),
        ("window", "not-permitted"),
    ] {
        let line = format!("tereze_national_refused_total{{door=\"{door}\",reason=\"{reason}\"}} ");
        assert!(
            series(&metrics, &line).is_some_and(|n| n > 0.0),
            "{line}: {metrics}"
        );
    }
    let log = net.log("RU");
    assert!(
        log.lines().any(|l| l.contains("national call refused")
            && l.contains("127.0.0.1")
            && l.contains("reader")
            && l.contains("not-permitted")),
        "{log}"
    );
    assert!(
        !log.contains(&reader) && !log.contains(&ru_sender),
        "tokens are never logged"
    );

    // Who did it is in the history and the audit log: the submitter, the client that took a
    // message from the inbox, the client that changed the register.
    let (_, timeline) = net.http("KZ", "GET", &format!("/v1/messages/{id}"), None);
    assert!(
        timeline
            .to_string()
            .contains("by national client national-system"),
        "{timeline}"
    );
    let (status, v) = net::http_as(
        port,
        "POST",
        "/v1/inbox/ack",
        Some(&bearer(&reader)),
        Some(&serde_json::json!({ "message_ids": [id] })),
    );
    assert_eq!((status, v["acknowledged"].as_u64()), (200, Some(1)), "{v}");
    let (_, timeline) = net.admin("RU", "GET", &format!("/admin/messages/{id}"), None);
    assert!(
        timeline
            .to_string()
            .contains("taken from the inbox by national client reader"),
        "{timeline}"
    );
    let trader = serde_json::json!([{
        "id": "RU7707083893", "name": "Sberbank",
        "statuses": [{"status": "active", "from": "1991-06-20"}]
    }]);
    let (status, v) = net.http("RU", "POST", "/v1/traders", Some(&trader));
    assert_eq!(status, 200, "{v}");
    let (_, changed) = net.admin("RU", "GET", "/admin/messages?state=changed", None);
    assert_eq!(
        changed["messages"].as_array().map(Vec::len),
        Some(1),
        "{changed}"
    );
    net.stop("RU");
    let (code, out) = net.audit_verify("RU");
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_national_client_can_be_known_by_its_certificate_on_the_national_tls_door() {
    let mut net = Net::init("KZ,RU", "", "", 21300, "");
    let kz = net.node_dir("KZ");
    // The national doors present the node's certificate and ask for client certificates
    // issued by KZ's root; the "customs" client is KZ's node certificate itself.
    let config = kz.join("node.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!("{text}\n[national.tls]\ncertificate = \"node-tls.pem\"\nkey = \"node-tls.key\"\nclient_ca = \"root.pem\"\n\n[[national.client]]\nname = \"customs\"\ncertificate = \"node-tls.pem\"\noperations = [\"inbox\"]\n"),
    )
    .expect("config");
    net.start("KZ");
    let port = net.http_port("KZ");
    let ca = kz.join("root.pem");
    let identity = (kz.join("node-tls.pem"), kz.join("node-tls.key"));
    let (status, v) = https_with_identity(port, &ca, Some((&identity.0, &identity.1)), "/v1/inbox");
    assert_eq!(
        status, 200,
        "the listed certificate is the customs client: {v}"
    );
    let (status, v) = https_with_identity(
        port,
        &ca,
        Some((&identity.0, &identity.1)),
        "/v1/messages/urn:uuid:00000000-0000-4000-8000-000000000000",
    );
    assert_eq!(status, 403, "customs may not follow submissions: {v}");
    let (status, _) = https_with_identity(port, &ca, None, "/v1/inbox");
    assert_eq!(status, 401, "no certificate and no token");
    // Plaintext to a TLS door gets no answer.
    assert_eq!(net::http_as(port, "GET", "/healthz", None, None).0, 0);

    // The Window too: the certificate is the client; without it (and no token) nothing.
    let pem = |p: &Path| std::fs::read(p).expect("pem");
    let window = net.window_port("KZ");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
            let connect = |identity: Option<Identity>| {
                let mut tls = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(pem(&ca)))
                    .domain_name("localhost");
                if let Some(i) = identity {
                    tls = tls.identity(i);
                }
                Endpoint::from_shared(format!("https://127.0.0.1:{window}"))
                    .expect("endpoint")
                    .tls_config(tls)
                    .expect("tls")
                    .connect_lazy()
            };
            let pull = tereze_proto::InboxPullRequest::default;
            let mut customs = tereze_proto::window_client::WindowClient::new(connect(Some(
                Identity::from_pem(pem(&identity.0), pem(&identity.1)),
            )));
            assert_eq!(code(customs.inbox_pull(pull()).await), tonic::Code::Ok);
            let mut nobody = tereze_proto::window_client::WindowClient::new(connect(None));
            assert_eq!(
                code(nobody.inbox_pull(pull()).await),
                tonic::Code::Unauthenticated
            );
        });
}

#[test]
fn a_plaintext_national_door_beyond_loopback_is_warned_of_at_start() {
    let mut net = Net::init("KZ,RU", "", "", 21400, "");
    let config = net.node_dir("KZ").join("node.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let http = format!("http = \"127.0.0.1:{}\"", net.http_port("KZ"));
    assert!(text.contains(&http), "{text}");
    std::fs::write(
        &config,
        text.replace(
            &http,
            &format!("http = \"0.0.0.0:{}\"", net.http_port("KZ")),
        ),
    )
    .expect("config");
    net.start("KZ");
    let log = net.log("KZ");
    assert!(
        log.contains("a national door listens in plaintext beyond loopback")
            && log.contains("listen.http"),
        "{log}"
    );
    net.start("RU");
    assert!(
        !net.log("RU").contains("plaintext beyond loopback"),
        "loopback is not warned of"
    );
}
