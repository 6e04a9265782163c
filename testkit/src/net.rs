//! Real node processes on loopback for the multi-process tests: a development PKI written by
//! `tereze pki init-dev`, nodes started with `tereze node run`, killed with SIGKILL or stopped
//! with SIGTERM, and a small HTTP/1.1 client for their JSON interface; clients that speak to
//! a node as another node would, a stand-in that answers on a node's address with its TLS
//! identity ([`impersonate`], serving a [`StubExchange`]), and the `/proc` figures and
//! environment settings the stress tests read. The one copy of these helpers for the `tereze`
//! package's three test binaries (`cli`, `cluster`, `stress`). They drive the binary that
//! [`bin`] finds.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{FixedOffset, Utc};
use serde_json::Value;
use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey};
use tereze_codecs::envelope::{DocumentRef, Envelope, Header, MessageKind, Participant, VERSION};
use tereze_codecs::xml;
use tereze_proto::exchange_client::ExchangeClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use uuid::Uuid;

pub use crate::binary::bin;
use crate::stub::{Running, StubExchange};

/// Runs `tereze` with `args`: exit code, stdout, stderr.
pub fn tereze(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub struct Net {
    pub dir: tempfile::TempDir,
    pub base: u16,
    index: HashMap<String, usize>,
    /// A replica's port shift within its state's block of ten, and its state.
    replicas: HashMap<String, (u16, String)>,
    children: HashMap<String, Child>,
}

impl Net {
    /// Writes a dev PKI for `states` (comma-separated) and the hub, with `extra` appended to
    /// every node.toml. Each node takes a block of ten ports from `base` on; the tests of one
    /// binary run in parallel threads, so every test passes a `base` whose blocks overlap no
    /// other test's.
    pub fn init(states: &str, hub: &str, via_hub: &str, base: u16, extra: &str) -> Self {
        Self::init_with_algorithms(states, hub, via_hub, base, extra, "")
    }

    /// [`init`](Self::init) with `init-dev --algorithm ALGORITHMS` (`KZ=gost2012-256,…`; none
    /// when empty): those states' CAs and document signers on their own key algorithm.
    pub fn init_with_algorithms(
        states: &str,
        hub: &str,
        via_hub: &str,
        base: u16,
        extra: &str,
        algorithms: &str,
    ) -> Self {
        let nodes = states.split(',').count() + usize::from(!hub.is_empty());
        claim_ports(base, nodes);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut init = Command::new(bin());
        init.args(["pki", "init-dev", "--out"])
            .arg(dir.path())
            .args(["--states", states, "--hub", hub, "--via-hub", via_hub])
            .args(["--base-port", &base.to_string()]);
        if !algorithms.is_empty() {
            init.args(["--algorithm", algorithms]);
        }
        let out = init.output().expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut index = HashMap::new();
        let mut all: Vec<&str> = states.split(',').collect();
        if !hub.is_empty() {
            all.push(hub);
        }
        for (i, s) in all.iter().enumerate() {
            index.insert(s.to_string(), i);
            let token =
                std::fs::read_to_string(dir.path().join(s.to_lowercase()).join("national.token"))
                    .expect("init-dev writes a national client token");
            let block = base + (i as u16) * 10;
            register_token(block + 1, token.trim());
            register_token(block + 2, token.trim());
            if !extra.is_empty() {
                let p = dir.path().join(s.to_lowercase()).join("node.toml");
                let mut text = std::fs::read_to_string(&p).expect("config");
                text.push_str(extra);
                std::fs::write(&p, text).expect("config");
            }
        }
        Self {
            dir,
            base,
            index,
            replicas: HashMap::new(),
            children: HashMap::new(),
        }
    }

    /// A second replica `name` of `state`'s node (for a shared PostgreSQL store): the same
    /// configuration, keys and certificates in its own directory, on ports 5 to 8 of the
    /// state's block, with its own data directory. Configure `state` (its `store`) first.
    pub fn add_replica(&mut self, state: &str, name: &str) {
        let from = self.node_dir(state);
        let to = self.dir.path().join(name.to_lowercase());
        std::fs::create_dir_all(&to).expect("replica dir");
        for e in std::fs::read_dir(&from).expect("node dir").flatten() {
            if e.path().is_file() && e.file_name() != "node.log" {
                std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
            }
        }
        self.index.insert(name.into(), self.index[state]);
        let mut text = std::fs::read_to_string(to.join("node.toml")).expect("config");
        for offset in 0..5u16 {
            let port = self.port(state, offset);
            text = text.replace(&format!(":{port}\""), &format!(":{}\"", port + 5));
        }
        if let Some(token) = national_token(self.http_port(state)) {
            register_token(self.window_port(state) + 5, &token);
            register_token(self.http_port(state) + 5, &token);
        }
        std::fs::write(to.join("node.toml"), text).expect("config");
        self.replicas.insert(name.into(), (5, state.into()));
    }

    /// Adds a top-level `line` (`key = value`) to `state`'s node.toml, before its first table.
    pub fn configure(&self, state: &str, line: &str) {
        let p = self.node_dir(state).join("node.toml");
        let text = std::fs::read_to_string(&p).expect("config");
        assert!(text.contains("\n[listen]"), "{text}");
        std::fs::write(
            &p,
            text.replacen("\n[listen]", &format!("\n{line}\n[listen]"), 1),
        )
        .expect("write");
    }

    pub fn node_dir(&self, state: &str) -> PathBuf {
        self.dir.path().join(state.to_lowercase())
    }

    pub fn data_dir(&self, state: &str) -> PathBuf {
        self.node_dir(state).join("data")
    }

    fn port(&self, state: &str, offset: u16) -> u16 {
        let shift = self.replicas.get(state).map(|r| r.0).unwrap_or(0);
        self.base + (self.index[state] as u16) * 10 + shift + offset
    }

    pub fn exchange_port(&self, state: &str) -> u16 {
        self.port(state, 0)
    }

    pub fn window_port(&self, state: &str) -> u16 {
        self.port(state, 1)
    }

    pub fn http_port(&self, state: &str) -> u16 {
        self.port(state, 2)
    }

    pub fn admin_port(&self, state: &str) -> u16 {
        self.port(state, 3)
    }

    /// The peer door (`GET /v1/crl`).
    pub fn peer_port(&self, state: &str) -> u16 {
        self.port(state, 4)
    }

    /// Starts a node and waits for its "ready" line.
    pub fn start(&mut self, state: &str) {
        self.start_with_env(state, &[]);
    }

    /// [`start`](Self::start) with `env` added to the node's environment (e.g. libfaketime's
    /// `LD_PRELOAD` and `FAKETIME`).
    pub fn start_with_env(&mut self, state: &str, env: &[(&str, &str)]) {
        let dir = self.node_dir(state);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .expect("log");
        let mut child = Command::new(bin())
            .args(["node", "run", "--config"])
            .arg(dir.join("node.toml"))
            .env("TEREZE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawns");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).expect("reads");
        let code = self
            .replicas
            .get(state)
            .map(|r| r.1.as_str())
            .unwrap_or(state);
        assert_eq!(
            line.trim(),
            format!("ready {code}"),
            "node {state} did not start: {}",
            self.log(state)
        );
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        self.children.insert(state.into(), child);
    }

    /// The process id of `state`'s running node.
    /// Whether `state`'s node process has exited.
    pub fn exited(&mut self, state: &str) -> bool {
        self.children
            .get_mut(state)
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)))
    }

    pub fn log(&self, state: &str) -> String {
        std::fs::read_to_string(self.node_dir(state).join("node.log")).unwrap_or_default()
    }

    /// SIGKILL: no chance to flush or drain anything.
    pub fn kill9(&mut self, state: &str) {
        if let Some(mut c) = self.children.remove(state) {
            c.kill().expect("SIGKILL");
            c.wait().expect("reaped");
        }
    }

    /// The node's process id.
    pub fn pid(&self, state: &str) -> u32 {
        self.children[state].id()
    }

    /// The node's resident memory in KiB (VmRSS).
    pub fn rss_kib(&self, state: &str) -> u64 {
        rss_kib(self.pid(state)).expect("VmRSS of a running node")
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to the node's process.
    pub fn signal(&self, state: &str, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid(state).to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} {state}");
    }

    /// Waits up to `timeout` for the node to exit on its own: its exit code.
    pub fn wait_exit(&mut self, state: &str, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.children.get_mut(state)?;
            if let Ok(Some(status)) = c.try_wait() {
                self.children.remove(state);
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `tereze audit verify` on a stopped node's data directory: exit code and output.
    pub fn audit_verify(&self, state: &str) -> (i32, String) {
        let (code, out, err) = tereze(&[
            "audit",
            "verify",
            self.data_dir(state).to_str().expect("utf-8"),
        ]);
        (code, format!("{out}{err}"))
    }

    /// A labelled sample of `/metrics`: the value on the line starting with `series` (e.g.
    /// `tereze_peer_calls_total{peer="RU",result="failed"}`), 0 if absent.
    pub fn sample(&self, state: &str, series: &str) -> f64 {
        let (_, v) = self.http(state, "GET", "/metrics", None);
        v.as_str()
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// SIGTERM, then wait for the orderly exit.
    pub fn stop(&mut self, state: &str) {
        if let Some(mut c) = self.children.remove(state) {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .expect("kill -TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = c.try_wait() {
                    assert!(
                        status.success(),
                        "{state} exited with {status}: {}",
                        self.log(state)
                    );
                    return;
                }
                assert!(Instant::now() < deadline, "{state} did not stop on SIGTERM");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn http(
        &self,
        state: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        http(self.http_port(state), method, path, body)
    }

    /// A call to `state`'s admin API with its operator token.
    pub fn admin(
        &self,
        state: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let dir = self.node_dir(state);
        let token = std::fs::read_to_string(dir.join("admin.token")).expect("admin token");
        https(
            self.port(state, 3),
            &dir.join("tls-root.pem"),
            method,
            path,
            Some(&format!("Bearer {}", token.trim())),
            body,
        )
    }

    /// `tereze admin ARGS` against `state`'s node: the exit code and stdout with stderr.
    pub fn admin_cli(&self, state: &str, args: &[&str]) -> (i32, String) {
        let token = self.node_dir(state).join("admin.token");
        let (code, out, err) = self.admin_cli_as(state, &token, args);
        (code, format!("{out}{err}"))
    }

    /// `tereze admin ARGS` against `state`'s node with the token in `token`: exit code,
    /// stdout, stderr.
    pub fn admin_cli_as(
        &self,
        state: &str,
        token: &std::path::Path,
        args: &[&str],
    ) -> (i32, String, String) {
        let node = format!("https://127.0.0.1:{}", self.port(state, 3));
        let ca = self.node_dir(state).join("tls-root.pem");
        let mut all = vec![
            "admin",
            "--node",
            &node,
            "--ca",
            ca.to_str().expect("utf-8"),
            "--token-file",
            token.to_str().expect("utf-8"),
        ];
        all.extend_from_slice(args);
        tereze(&all)
    }

    /// Submits the EAEU sample export declaration from `from` to `to`.
    pub fn submit(
        &self,
        from: &str,
        to: &str,
        conversation: Option<&str>,
    ) -> Result<String, (u16, Value)> {
        let mut body = serde_json::json!({
            "format": "eaeu.export-declaration",
            "document": SAMPLE,
            "recipient_country": to,
            "recipient_authority": "FCS",
        });
        if let Some(c) = conversation {
            body["conversation_id"] = Value::String(c.into());
        }
        let (status, v) = self.http(from, "POST", "/v1/messages", Some(&body));
        if status == 202 {
            Ok(v["messages"][0]["message_id"]
                .as_str()
                .expect("id")
                .to_owned())
        } else {
            Err((status, v))
        }
    }

    /// The states a message went through at `state`'s node.
    pub fn states(&self, state: &str, id: &str) -> Vec<String> {
        let (status, v) = self.http(state, "GET", &format!("/v1/messages/{id}"), None);
        if status != 200 {
            return Vec::new();
        }
        v["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|t| t["state"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every message in `state`'s inbox (ids in arrival order).
    pub fn inbox(&self, state: &str) -> Vec<Value> {
        let (status, v) = self.http(state, "GET", "/v1/inbox?limit=100000", None);
        assert_eq!(status, 200, "{v}");
        v["messages"].as_array().cloned().unwrap_or_default()
    }

    /// The ids in `state`'s inbox, in arrival order.
    pub fn inbox_ids(&self, state: &str) -> Vec<String> {
        self.inbox(state)
            .iter()
            .map(|m| m["message_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every id of `acknowledged` is in `state`'s inbox, and no id is there twice; the
    /// inbox's length.
    pub fn assert_exactly_once(&self, state: &str, acknowledged: &[String]) -> usize {
        let inbox = self.inbox_ids(state);
        let unique: std::collections::HashSet<&String> = inbox.iter().collect();
        assert_eq!(
            unique.len(),
            inbox.len(),
            "a message is in {state}'s inbox twice"
        );
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|id| !unique.contains(id))
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged messages are missing from {state}'s inbox, e.g. {:?}",
            missing.len(),
            acknowledged.len(),
            missing.first()
        );
        inbox.len()
    }

    /// Builds the trust-space `source` (TOML) as `version`, signs it with the Commission's
    /// (the hub's) key and puts it where the hub publishes (`trust-space.xml`).
    pub fn publish_trust(&self, version: &str, source: &std::path::Path) {
        let d = self.dir.path();
        let tool = |args: &[&str]| {
            let out = Command::new(bin()).args(args).output().expect("runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let at = d.join(format!("v{version}-unsigned.xml"));
        let unsigned = tool(&[
            "trust",
            "build",
            "--version",
            version,
            source.to_str().expect("utf-8"),
        ]);
        std::fs::write(&at, unsigned).expect("write");
        let eec = d.join("eec");
        let signed = tool(&[
            "trust",
            "sign",
            "--key",
            eec.join("signer.key").to_str().expect("utf-8"),
            "--cert",
            eec.join("signer.pem").to_str().expect("utf-8"),
            at.to_str().expect("utf-8"),
        ]);
        std::fs::write(d.join("trust-space.xml"), signed).expect("publish");
    }

    pub fn metric(&self, state: &str, name: &str) -> u64 {
        let (_, v) = self.http(state, "GET", "/metrics", None);
        let text = v.as_str().unwrap_or_default().to_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("tereze_{name} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (_, mut c) in self.children.drain() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub const SAMPLE: &str =
    include_str!("../../codecs/samples/eaeu.export-declaration/valid-grain.xml");

/// One HTTPS request (HTTP/1.1, connection closed after) to a node's admin API, trusting
/// `ca`, with `authorization` as given: status and JSON body.
pub fn https(
    port: u16,
    ca: &std::path::Path,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    https_as(port, ca, None, method, path, authorization, body)
}

/// [`https`] presenting a client certificate: the PEM chain and key files given.
pub fn https_as(
    port: u16,
    ca: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("cert")).expect("root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(chain)
                    .expect("chain")
                    .map(|c| c.expect("cert"))
                    .collect(),
                PrivateKeyDer::from_pem_file(key).expect("key"),
            )
            .expect("identity"),
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("conn");
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        tls,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
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

/// The blocks of ports the tests of this binary have claimed: `(first, past the last)`.
static CLAIMED: std::sync::Mutex<Vec<(u16, u16)>> = std::sync::Mutex::new(Vec::new());

/// Claims the ports of `nodes` nodes from `base` on (a block of ten each) for the calling test.
/// The tests of one binary run in parallel threads, so a block two tests share would make one
/// fail at random with "address in use"; this fails the second to claim it, every time, naming
/// both. For tests that start nodes without [`Net::init`] (`tereze demo`, `tereze bench`).
pub fn claim_ports(base: u16, nodes: usize) {
    let end = base + 10 * nodes as u16;
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((a, b)) = claimed.iter().find(|(a, b)| base < *b && *a < end) {
        panic!(
            "ports {base}..{end} overlap {a}..{b}, claimed by another test of this binary: \
             give this test a base of its own"
        );
    }
    claimed.push((base, end));
}

/// The national client tokens of the nodes these tests started, by the port of their
/// national doors (HTTP and Window): the helpers below present them, as a national system would.
static TOKENS: std::sync::Mutex<Option<HashMap<u16, String>>> = std::sync::Mutex::new(None);

fn register_token(port: u16, token: &str) {
    TOKENS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(port, token.to_owned());
}

/// An `Authorization` header line with the national client token of the node at `port`
/// (empty when none is registered), for tests that write requests by hand.
pub fn auth_line(port: u16) -> String {
    national_token(port)
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default()
}

/// The national client token of the node whose national door is at `port`.
pub fn national_token(port: u16) -> Option<String> {
    TOKENS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|t| t.get(&port).cloned())
}

/// A gRPC `Window` client that presents a bearer token on every call.
pub type Window = tereze_proto::window_client::WindowClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

/// Puts `authorization: <value>` on every call (none: no credential).
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            r.metadata_mut().insert("authorization", v.clone());
        }
        Ok(r)
    }
}

/// The `Window` at `port` as its national client (the token registered for the port).
pub async fn window(port: u16) -> Window {
    let auth = national_token(port).map(|t| format!("Bearer {t}"));
    window_as(port, auth.as_deref()).await
}

/// The `Window` at `port` with `authorization` as given (none: no credential).
pub async fn window_as(port: u16, authorization: Option<&str>) -> Window {
    let channel = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("the window connects");
    let auth = authorization.map(|a| a.parse().expect("an ASCII header value"));
    tereze_proto::window_client::WindowClient::with_interceptor(channel, Bearer(auth))
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(usize::MAX)
}

/// A minimal HTTP/1.1 client: one request per connection, with the national client token
/// registered for `port` (if any). Non-JSON bodies come back as a JSON string.
pub fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    http_bytes(port, method, path, "application/json", payload.as_bytes())
}

/// [`http`] with `authorization` as given instead (none: no credential).
pub fn http_as(
    port: u16,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = authorization.map(str::to_owned);
    http_request(
        port,
        method,
        path,
        "application/json",
        payload.as_bytes(),
        auth,
    )
}

/// [`http`] with a body of any type.
pub fn http_bytes(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    payload: &[u8],
) -> (u16, Value) {
    let auth = national_token(port).map(|t| format!("Bearer {t}"));
    http_request(port, method, path, content_type, payload, auth)
}

fn http_request(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    payload: &[u8],
    authorization: Option<String>,
) -> (u16, Value) {
    let mut s = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(_) => return (0, Value::Null),
    };
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    )
    .into_bytes();
    req.extend_from_slice(payload);
    // A node that refuses before reading the whole body answers and closes: the write can
    // fail, and the read end in a reset, with the answer already here. Keep what arrived.
    let _ = s.write_all(&req);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, Value::Null);
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, v)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

// ------------------------------------------------------------------ the machine

/// Who may run beside whom in the `stress` binary. The campaigns that had a test binary to
/// themselves before the tests were grouped (chaos, crash, fuzz_grpc) load the machine and
/// state bounds that assume it; the other stress tests ran in pairs and could fail their own
/// timing bounds beside a campaign on a two-core machine. So a campaign holds the machine
/// alone, and the others share it among themselves, as they did in their own binaries.
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Holds the machine for the calling test alone until the guard is dropped.
pub fn machine_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}

/// Shares the machine with the other sharing tests until the guard is dropped.
pub fn machine_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------ processes and settings

pub use tereze_support::procfs::{rss_kib, status_kib as proc_status_kib};

/// `name` from the environment, or `default` when it is unset or does not parse: how a test
/// is run at full size (deploy/chaos) without a change to its code.
pub fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A random number below `below` from the standard library's randomly keyed hasher, which
/// is enough for picking kill moments and victims and needs no dependency.
pub fn random(below: u64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(below);
    h.finish() % below.max(1)
}

/// An independent check of a signed file: xmlsec1's verdict on `file` against the anchor
/// `root` only (no system CAs), with `extra` arguments before it, and its stderr.
pub fn xmlsec1_verifies(
    extra: &[&str],
    root: &std::path::Path,
    file: &std::path::Path,
) -> (bool, String) {
    let out = Command::new("xmlsec1")
        .env("SSL_CERT_FILE", "/dev/null")
        .arg("--verify")
        .args(extra)
        .arg("--trusted-pem")
        .arg(root)
        .arg(file)
        .output()
        .expect("xmlsec1 runs (scripts/setup installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `f` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Client threads submitting the sample KZ → `to` to the national intake on `port` until
/// `messages` submissions are acknowledged; a submission answered with anything but 202 (the
/// node is down or restarting) is not counted.
pub struct Flood {
    pub acknowledged: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The port that acknowledged each, in the same order.
    pub taken_by: std::sync::Arc<std::sync::Mutex<Vec<u16>>>,
    pub done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Flood {
    pub fn start(port: u16, to: &str, messages: usize, threads: usize) -> Self {
        Self::spread(&[port], to, messages, threads)
    }

    /// [`start`](Self::start) over several replicas' intakes (one address in front of them):
    /// each thread takes them in turn, and a refused or failed submission goes to the next.
    pub fn spread(ports: &[u16], to: &str, messages: usize, threads: usize) -> Self {
        use std::sync::atomic::Ordering;
        let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let taken_by = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let body = serde_json::json!({
            "format": "eaeu.export-declaration",
            "document": SAMPLE,
            "recipient_country": to,
        });
        let threads = (0..threads)
            .map(|t| {
                let (acknowledged, taken_by, done, body) = (
                    acknowledged.clone(),
                    taken_by.clone(),
                    done.clone(),
                    body.clone(),
                );
                let ports = ports.to_vec();
                std::thread::spawn(move || {
                    let mut turn = t;
                    while acknowledged.lock().expect("lock").len() < messages {
                        let port = ports[turn % ports.len()];
                        turn += 1;
                        let (status, v) = http(port, "POST", "/v1/messages", Some(&body));
                        if status == 202 {
                            let id = v["messages"][0]["message_id"]
                                .as_str()
                                .expect("id")
                                .to_owned();
                            let mut a = acknowledged.lock().expect("lock");
                            a.push(id);
                            taken_by.lock().expect("lock").push(port);
                        } else {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    done.store(true, Ordering::SeqCst);
                })
            })
            .collect();
        Self {
            acknowledged,
            taken_by,
            done,
            threads,
        }
    }

    /// How many are acknowledged so far.
    pub fn count(&self) -> usize {
        self.acknowledged.lock().expect("lock").len()
    }

    pub fn is_done(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits for the threads: the acknowledged ids.
    pub fn join(self) -> Vec<String> {
        for t in self.threads {
            t.join().expect("submitter");
        }
        self.acknowledged.lock().expect("lock").clone()
    }
}

// ------------------------------------------------------------------ speaking as a node

pub fn read(net: &Net, state: &str, file: &str) -> Vec<u8> {
    std::fs::read(net.node_dir(state).join(file)).expect("read")
}

/// A TLS connection to `to`'s Exchange that trusts `to`'s TLS root and presents `identity` (a
/// certificate chain and its key, PEM; none: no client certificate).
pub async fn exchange_channel(
    net: &Net,
    to: &str,
    identity: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(net, to, "tls-root.pem")))
        .domain_name(format!("node.{}.tereze.test", to.to_lowercase()));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://127.0.0.1:{}", net.exchange_port(to)))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
}

/// `as_state`'s real node certificate and key, PEM, as [`exchange_channel`] presents them.
pub fn node_identity(net: &Net, as_state: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    Some((
        read(net, as_state, "node-tls.pem"),
        read(net, as_state, "node-tls.key"),
    ))
}

/// A client of `to`'s Exchange with `as_state`'s real node certificate.
pub async fn exchange(net: &Net, to: &str, as_state: &str) -> ExchangeClient<Channel> {
    let channel = exchange_channel(net, to, node_identity(net, as_state))
        .await
        .expect("connects");
    ExchangeClient::new(channel)
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX)
}

pub fn urn(id: Uuid) -> String {
    format!("urn:uuid:{id}")
}

/// A valid header from `from` to `to` for the sample export declaration.
pub fn header(from: &str, to: &str) -> Header {
    let now = Utc::now().with_timezone(&FixedOffset::east_opt(0).expect("UTC"));
    let party = |c: &str, a: &str| Participant {
        country: c.into(),
        authority: a.into(),
    };
    Header {
        message_id: Uuid::new_v4(),
        conversation_id: Uuid::new_v4(),
        procedure_id: Uuid::new_v4(),
        in_reply_to: None,
        process: "P.CC.01".into(),
        message: "P.CC.01.MSG.001".into(),
        transaction: "P.CC.01.TRN.001".into(),
        kind: MessageKind::Request,
        sender: party(from, "SW"),
        recipient: party(to, "FCS"),
        created_at: now,
        expires_at: Some(now + chrono::Duration::days(1)),
        document: DocumentRef {
            type_code: "R.CC.01.001".into(),
            version: "1.0.0".into(),
            issuing_authority: party(from, "SW"),
        },
        traders: Vec::new(),
        attachments: Vec::new(),
        national_signatures: Vec::new(),
    }
}

pub fn sign(h: &Header, body: &str, key: &SigningKey, target: SignTarget) -> Vec<u8> {
    let content = xml::parse(body.as_bytes()).expect("body");
    let mut doc = Envelope::build_document(VERSION, h, &content).expect("envelope");
    dsig::sign_enveloped(&mut doc, &target, key, &SignOptions::default()).expect("signs");
    doc.to_xml().into_bytes()
}

pub fn signer(net: &Net, state: &str) -> SigningKey {
    SigningKey::from_pem(
        &read(net, state, "signer.key"),
        Some(&read(net, state, "signer.pem")),
    )
    .expect("signer")
}

/// Serves `stub` on `state`'s Exchange address with `state`'s TLS identity (as a thief of its
/// TLS key would), taking clients of any state of the dev PKI. Stop `state`'s node first.
pub async fn impersonate(net: &Net, state: &str, stub: StubExchange) -> Running {
    let mut roots = Vec::new();
    for s in ["KZ", "RU", "BY", "EEC"] {
        roots.extend(read(net, s, "root.pem"));
    }
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(Identity::from_pem(
            read(net, state, "node-tls.pem"),
            read(net, state, "node-tls.key"),
        ))
        .client_ca_root(Certificate::from_pem(roots));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", net.exchange_port(state)))
        .await
        .expect("bind the impostor");
    crate::stub::serve(listener, tls, stub).expect("tls")
}
