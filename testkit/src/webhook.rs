//! A webhook receiver for tests: a small HTTP/1.1 server on `127.0.0.1:0` that records every
//! POST it acknowledges (headers and body), can answer 500 for a while, and can be stopped
//! (connections refused) and started again on the same port, as a national system's
//! receiver that fails or restarts would. With [`WebhookReceiver::start_tls`] it speaks HTTPS.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One POST acknowledged with 200.
#[derive(Debug, Clone)]
pub struct Post {
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Post {
    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The sequence numbers of the events in the body, in order.
    pub fn seqs(&self) -> Vec<u64> {
        self.json()["events"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["seq"].as_u64()).collect())
            .unwrap_or_default()
    }

    /// Whether `X-Tereze-Signature` is `sha256=` and the hex HMAC-SHA256 of the body under
    /// `secret`.
    pub fn signed_with(&self, secret: &[u8]) -> bool {
        let Some(sig) = self.headers.get("x-tereze-signature") else {
            return false;
        };
        let mac = openssl::pkey::PKey::hmac(secret)
            .and_then(|k| {
                let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &k)?;
                s.update(&self.body)?;
                s.sign_to_vec()
            })
            .map(|m| tereze_support::hex::hex(&m));
        mac.is_ok_and(|m| sig == &format!("sha256={m}"))
    }
}

#[derive(Default)]
struct Shared {
    posts: Mutex<Vec<Post>>,
    /// Answer 500 to every POST while set.
    failing: AtomicBool,
    /// POSTs answered 500.
    refused: AtomicUsize,
}

/// The receiver; stopped when dropped.
pub struct WebhookReceiver {
    port: u16,
    /// HTTPS with this server configuration.
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("address").port();
        let mut r = Self {
            port,
            tls: None,
            shared: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        r.serve(listener);
        r
    }

    /// Listens on a free port of 127.0.0.1 for HTTPS, with the certificate chain and key of
    /// these PEM files (a development PKI's node TLS identity names `localhost`).
    pub fn start_tls(certificate: &std::path::Path, key: &std::path::Path) -> Self {
        use rustls_pki_types::pem::PemObject;
        let chain = rustls_pki_types::CertificateDer::pem_file_iter(certificate)
            .expect("certificate file")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a usable TLS identity");
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("address").port();
        let mut r = Self {
            port,
            tls: Some(Arc::new(config)),
            shared: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        r.serve(listener);
        r
    }

    /// `http://127.0.0.1:PORT/hooks/tereze`, or `https://localhost:PORT/hooks/tereze`.
    pub fn url(&self) -> String {
        match self.tls {
            None => format!("http://127.0.0.1:{}/hooks/tereze", self.port),
            Some(_) => format!("https://localhost:{}/hooks/tereze", self.port),
        }
    }

    /// Answer 500 (`true`) or 200 (`false`) from now on.
    pub fn fail(&self, on: bool) {
        self.shared.failing.store(on, Ordering::SeqCst);
    }

    /// POSTs answered 500 so far.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Every POST acknowledged, in arrival order.
    pub fn posts(&self) -> Vec<Post> {
        self.shared
            .posts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops listening: connections are refused until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Listens again on the same port, keeping what was recorded.
    pub fn restart(&mut self) {
        self.stop();
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("the same port again");
        self.stop = Arc::new(AtomicBool::new(false));
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).expect("non-blocking");
        let (shared, stop, tls) = (self.shared.clone(), self.stop.clone(), self.tls.clone());
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                        match &tls {
                            None => answer(s, &shared),
                            Some(config) => match rustls::ServerConnection::new(config.clone()) {
                                Ok(conn) => answer(rustls::StreamOwned::new(conn, s), &shared),
                                Err(_) => continue,
                            },
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one request and answers it (one request per connection).
fn answer(mut s: impl Read + Write, shared: &Shared) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut headers = HashMap::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while raw.len() < head_end + length {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let body = raw[head_end..head_end + length].to_vec();
    let status = if !head.starts_with("POST ") {
        "405 Method Not Allowed"
    } else if shared.failing.load(Ordering::SeqCst) {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        "500 Internal Server Error"
    } else {
        shared
            .posts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Post { headers, body });
        "200 OK"
    };
    let _ = s.write_all(
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let _ = s.flush();
}
