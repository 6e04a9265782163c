//! Reference-directory replication between real node processes (issue 7, DESIGN §6): change
//! sets signed by their owning authority travel from where they are published, through the
//! hub, to every member; a node that was down catches up; a set that skips numbers makes the
//! node fetch the missing ones; a replayed set is a no-op; a tampered one is refused; what a
//! node applied survives kill -9; subscribers are told.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tereze_proto::{ReferenceChange, SubscribeReferenceRequest};

use crate::net::{self, http_bytes, tereze, wait_until, Net};

const WAIT: Duration = Duration::from_secs(30);

/// A draft change set of `directory` (TOML); `define` for set 1 of a new directory.
fn draft(directory: &str, number: u64, authority: &str, define: &str, ops: &str) -> String {
    format!(
        "directory = \"{directory}\"\nnumber = {number}\nauthority = \"{authority}\"\nissued_at = \"2026-11-25T10:00:00Z\"\n{define}{ops}"
    )
}

fn add(code: &str, name: &str, from: &str) -> String {
    format!(
        "[[operation]]\nop = \"add\"\n[operation.entry]\ncode = \"{code}\"\nnames = {{ en = \"{name}\", ru = \"{name}\" }}\nattributes = {{ depth = \"{}\" }}\nvalid_from = \"{from}\"\n",
        code.len()
    )
}

fn supersede(code: &str, name: &str, from: &str, depth: &str) -> String {
    format!(
        "[[operation]]\nop = \"supersede\"\n[operation.entry]\ncode = \"{code}\"\nnames = {{ en = \"{name}\", ru = \"{name}\" }}\nattributes = {{ depth = \"{depth}\" }}\nvalid_from = \"{from}\"\n"
    )
}

const DEFINE_PORTS: &str = "[define]\nname = \"Sea and river ports\"\nowner = \"EEC\"\nsource = \"test data\"\nattributes = { depth = \"decimal\" }\n";

/// Signs `text` with the key in `signer_dir` and returns the signed document.
fn sign(net: &Net, text: &str, signer_dir: &str, name: &str) -> Vec<u8> {
    let d = net.dir.path();
    let draft = d.join(format!("{name}.toml"));
    std::fs::write(&draft, text).expect("draft");
    let out = d.join(format!("{name}.xml"));
    let key = d.join(signer_dir).join("signer.key");
    let cert = d.join(signer_dir).join("signer.pem");
    let (code, _, err) = tereze(&[
        "ref",
        "publish",
        "--key",
        key.to_str().expect("utf-8"),
        "--cert",
        cert.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        draft.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::read(out).expect("signed")
}

fn version(net: &Net, state: &str, directory: &str) -> Option<u64> {
    let (status, v) = net.http(state, "GET", "/v1/reference", None);
    if status != 200 {
        return None;
    }
    v["directories"]
        .as_array()?
        .iter()
        .find(|d| d["id"] == directory)
        .and_then(|d| d["version"].as_u64())
}

fn at_version(net: &Net, state: &str, directory: &str, want: u64) -> bool {
    wait_until(WAIT, || version(net, state, directory) == Some(want))
}

fn post_set(net: &Net, state: &str, bytes: &[u8]) -> (u16, Value) {
    http_bytes(
        net.http_port(state),
        "POST",
        "/v1/reference/change-sets",
        "application/xml",
        bytes,
    )
}

fn publish_dir(net: &Net, state: &str) -> PathBuf {
    net.node_dir(state).join("published")
}

/// A webhook receiver: every POST body, answered 200.
fn webhook() -> (u16, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if let Ok(v) = serde_json::from_slice(&body) {
                let _ = tx.send(v);
            }
        }
    });
    (port, rx)
}

/// Follows `directory` on a node's Window gRPC service (`SubscribeReference`) from a thread;
/// returns once the stream is open.
fn subscribe(port: u16, directory: &str) -> mpsc::Receiver<ReferenceChange> {
    let (tx, rx) = mpsc::channel();
    let (open_tx, open_rx) = mpsc::channel();
    let directory = directory.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut client = net::window(port).await;
            let mut stream = client
                .subscribe_reference(SubscribeReferenceRequest {
                    directories: vec![directory],
                })
                .await
                .expect("subscribes")
                .into_inner();
            open_tx.send(()).expect("open");
            while let Ok(Some(change)) = stream.message().await {
                if tx.send(change).is_err() {
                    break;
                }
            }
        });
    });
    open_rx.recv_timeout(WAIT).expect("the stream opens");
    rx
}

#[test]
fn change_sets_replicate_through_the_hub_catch_up_fill_gaps_and_survive_kill_9() {
    let (hook_port, hooks) = webhook();
    let mut net = Net::init(
        "KZ,RU,BY",
        "EEC",
        "*",
        20600,
        "\n[reference]\nrefresh_seconds = 1\npublish_dir = \"published\"\n",
    );
    // RU tells a national system of port changes; BY pulls only at start and on a gap.
    let ru = net.node_dir("RU").join("node.toml");
    let mut text = std::fs::read_to_string(&ru).expect("config");
    text.push_str(&format!(
        "[[reference.webhooks]]\nurl = \"http://127.0.0.1:{hook_port}/changes\"\ndirectories = [\"T.PORTS\"]\n"
    ));
    std::fs::write(&ru, text).expect("config");
    let by = net.node_dir("BY").join("node.toml");
    let text = std::fs::read_to_string(&by).expect("config");
    std::fs::write(
        &by,
        text.replace("refresh_seconds = 1", "refresh_seconds = 3600"),
    )
    .expect("config");
    for s in ["EEC", "KZ", "RU", "BY"] {
        std::fs::create_dir_all(publish_dir(&net, s)).expect("dir");
        net.start(s);
    }
    let stream = subscribe(net.window_port("KZ"), "T.PORTS");
    // BY's round at start is over (answered or failed) before anything is published.
    assert!(
        wait_until(WAIT, || net.metric("BY", "reference_pulls_total")
            + net.metric("BY", "reference_pull_failures_total")
            >= 1),
        "BY never pulled at start: {}",
        net.log("BY")
    );

    // The Commission publishes a new directory at the hub; KZ and RU pull it.
    let one = sign(
        &net,
        &draft(
            "T.PORTS",
            1,
            "EEC",
            DEFINE_PORTS,
            &(add("AKT", "Aktau", "2020-01-01") + &add("NVS", "Novorossiysk", "2020-01-01")),
        ),
        "eec",
        "ports-1",
    );
    std::fs::write(publish_dir(&net, "EEC").join("ports-1.xml"), &one).expect("publish");
    for s in ["EEC", "KZ", "RU"] {
        assert!(at_version(&net, s, "T.PORTS", 1), "{s}: {}", net.log(s));
    }
    let (status, v) = net.http(
        "KZ",
        "GET",
        "/v1/reference/T.PORTS/AKT?as_of=2026-01-01",
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["entry"]["names"]["en"], "Aktau");
    // Bad queries say why.
    for (path, code, says) in [
        (
            "/v1/reference/T.PORTS/AKT?as_of=01.01.2026",
            400,
            "is not a date",
        ),
        (
            "/v1/reference/T.PORTS/AKT?as_of=2019-12-31",
            404,
            "not valid on 2019-12-31",
        ),
        ("/v1/reference/T.NONE", 404, "unknown directory T.NONE"),
        (
            "/v1/reference/change-sets?since=1",
            400,
            "since needs directory",
        ),
        (
            "/v1/reference/tariff/1001990000?flow=sideways",
            400,
            "not export or import",
        ),
    ] {
        let (status, v) = net.http("KZ", "GET", path, None);
        assert_eq!(status, code, "{path}: {v}");
        assert!(
            v["error"].as_str().unwrap_or_default().contains(says),
            "{path}: {v}"
        );
    }
    let (status, v) = net.http(
        "KZ",
        "GET",
        "/v1/reference/change-sets?directory=T.PORTS&since=0",
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["change_sets"][0]["number"], 1);
    let event = stream.recv_timeout(WAIT).expect("KZ's Window stream tells");
    assert_eq!(
        (
            event.directory.as_str(),
            event.version,
            event.authority.as_str()
        ),
        ("T.PORTS", 1, "EEC")
    );
    assert_eq!(event.codes, ["AKT", "NVS"]);
    let told = hooks.recv_timeout(WAIT).expect("RU's webhook is told");
    assert_eq!(told["directory"], "T.PORTS");
    assert_eq!(told["version"], 1);
    assert_eq!(told["codes"], serde_json::json!(["AKT", "NVS"]));

    // RU is down while sets 2 and 3 are published; it catches up when it returns.
    net.stop("RU");
    let two = sign(
        &net,
        &draft(
            "T.PORTS",
            2,
            "EEC",
            "",
            &supersede("AKT", "Aktau", "2026-07-01", "12.5"),
        ),
        "eec",
        "ports-2",
    );
    std::fs::write(publish_dir(&net, "EEC").join("ports-2.xml"), &two).expect("publish");
    let three = sign(
        &net,
        &draft(
            "T.PORTS",
            3,
            "EEC",
            "",
            &add("ALM", "Almaty river", "2026-01-01"),
        ),
        "eec",
        "ports-3",
    );
    std::fs::write(publish_dir(&net, "EEC").join("ports-3.xml"), &three).expect("publish");
    assert!(at_version(&net, "KZ", "T.PORTS", 3), "{}", net.log("KZ"));
    assert_eq!(version(&net, "RU", "T.PORTS"), None, "RU is down");
    net.start("RU");
    assert!(at_version(&net, "RU", "T.PORTS", 3), "{}", net.log("RU"));
    // The supersession is dated: the old depth up to its last day, the new one from its first.
    let depth = |state: &str, day: &str| {
        let (_, v) = net.http(
            state,
            "GET",
            &format!("/v1/reference/T.PORTS/AKT?as_of={day}"),
            None,
        );
        v["entry"]["attributes"]["depth"].clone()
    };
    assert_eq!(depth("RU", "2026-06-30"), Value::from("3"));
    assert_eq!(depth("RU", "2026-07-01"), Value::from("12.5"));

    // Replaying a set is a no-op; a different set under a used number is a conflict.
    let (status, v) = post_set(&net, "KZ", &two);
    assert_eq!(status, 200, "{v}");
    assert!(
        v["result"].as_str().unwrap_or_default().contains("already"),
        "{v}"
    );
    assert_eq!(version(&net, "KZ", "T.PORTS"), Some(3));
    let other_two = sign(
        &net,
        &draft(
            "T.PORTS",
            2,
            "EEC",
            "",
            &add("XXX", "Nowhere", "2026-01-01"),
        ),
        "eec",
        "ports-2-other",
    );
    let (status, v) = post_set(&net, "KZ", &other_two);
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("different change set 2"),
        "{v}"
    );

    // A tampered set is refused, and so is one signed by a state for the Commission.
    let tampered = String::from_utf8(three.clone())
        .expect("utf-8")
        .replace("Almaty river", "Almaty rivers");
    let (status, v) = post_set(&net, "KZ", tampered.as_bytes());
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("signature"),
        "{v}"
    );
    let four_by_kz = sign(
        &net,
        &draft("T.PORTS", 4, "EEC", "", &add("KZP", "Forged", "2026-01-01")),
        "kz",
        "ports-4-forged",
    );
    let (status, v) = post_set(&net, "KZ", &four_by_kz);
    assert_eq!(status, 400, "{v}");
    assert_eq!(version(&net, "KZ", "T.PORTS"), Some(3));

    // BY pulled at start only (before anything existed). Set 4 goes to the hub; set 5 is
    // handed to BY directly: a gap, so BY fetches 1–4 from the hub, then applies 5.
    let four = sign(
        &net,
        &draft(
            "T.PORTS",
            4,
            "EEC",
            "",
            &add("KLP", "Klaipeda", "2026-01-01"),
        ),
        "eec",
        "ports-4",
    );
    let (status, v) = post_set(&net, "EEC", &four);
    assert_eq!(status, 200, "{v}");
    let five = sign(
        &net,
        &draft("T.PORTS", 5, "EEC", "", &add("RIX", "Riga", "2026-01-01")),
        "eec",
        "ports-5",
    );
    assert_eq!(
        version(&net, "BY", "T.PORTS"),
        None,
        "BY has not pulled yet"
    );
    let (status, v) = post_set(&net, "BY", &five);
    assert_eq!(status, 200, "{v}: {}", net.log("BY"));
    assert_eq!(version(&net, "BY", "T.PORTS"), Some(5));
    assert_eq!(net.metric("BY", "reference_gaps_total"), 1);

    // A state's own directory: KZ publishes it, the hub pulls it from KZ, RU from the hub.
    let kz_posts = sign(
        &net,
        &draft(
            "KZ.POSTS",
            1,
            "KZ",
            "[define]\nname = \"Customs posts of Kazakhstan\"\nowner = \"KZ\"\n",
            "[[operation]]\nop = \"add\"\n[operation.entry]\ncode = \"55201\"\nnames = { ru = \"Т/П Достык\", en = \"Dostyk\" }\n",
        ),
        "kz",
        "kz-posts-1",
    );
    std::fs::write(publish_dir(&net, "KZ").join("kz-posts-1.xml"), &kz_posts).expect("publish");
    for s in ["KZ", "EEC", "RU"] {
        assert!(at_version(&net, s, "KZ.POSTS", 1), "{s}: {}", net.log(s));
    }

    // What a node applied survives kill -9, with its sources gone.
    net.stop("EEC");
    net.kill9("RU");
    net.start("RU");
    assert_eq!(version(&net, "RU", "T.PORTS"), Some(5));
    assert_eq!(version(&net, "RU", "KZ.POSTS"), Some(1));
    let (status, v) = net.http("RU", "GET", "/v1/reference/T.PORTS/RIX", None);
    assert_eq!(status, 200, "{v}");

    // tereze ref sync copies a node's sets; tereze ref list --sets answers from them, verified.
    let copy = net.dir.path().join("copy");
    let (code, _, err) = tereze(&[
        "ref",
        "sync",
        "--node",
        &format!("http://127.0.0.1:{}", net.http_port("RU")),
        "--token-file",
        net.node_dir("RU")
            .join("national.token")
            .to_str()
            .expect("utf-8"),
        "--out",
        copy.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("6 change sets written"), "{err}");
    let list = |sets: &Path| {
        tereze(&[
            "ref",
            "list",
            "T.PORTS",
            "--as-of",
            "2026-11-25",
            "--sets",
            sets.to_str().expect("utf-8"),
            "--trust",
            net.dir
                .path()
                .join("trust-space.xml")
                .to_str()
                .expect("utf-8"),
            "--anchor",
            net.dir.path().join("eec/root.pem").to_str().expect("utf-8"),
        ])
    };
    let (code, out, err) = list(&copy);
    assert_eq!(code, 0, "{err}");
    for port in ["AKT", "NVS", "ALM", "KLP", "RIX"] {
        assert!(out.contains(port), "{out}");
    }
    assert!(out.contains("2026-07-01.."), "the superseding entry: {out}");
    std::fs::write(copy.join("T.PORTS-000003.xml"), tampered).expect("tamper");
    let (code, _, err) = list(&copy);
    assert_eq!(code, 1, "a tampered copy is a negative verdict: {err}");
    assert!(err.contains("signature"), "{err}");
}
