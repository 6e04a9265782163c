//! A real RFC 3161 time-stamping authority for the tests: OpenSSL's `openssl ts -reply` behind
//! a small HTTP/1.1 server on `127.0.0.1:0` (RFC 3161 §3.4: a POST of
//! `application/timestamp-query`, answered with `application/timestamp-reply`). Each authority
//! makes its own CA and TSA certificate (extendedKeyUsage timeStamping, critical), so a token
//! from one authority checked against another's CA is a token from an authority nobody
//! trusts; [`TsaOptions::expired`] gives one whose TSA certificate has already expired, and
//! [`TsaOptions::expires_in`] one whose certificate expires while the test runs.
//!
//! Controls for the tests: [`TestAuthority::stop`] and [`TestAuthority::start`] (down and back
//! on the same port), [`TestAuthority::set_delay`], [`TestAuthority::set_other_imprint`] (answers
//! with a token for another imprint) and the counters of requests received and answered.
//! `openssl` is required: a missing one fails the test with a pointer to `scripts/setup`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Name, X509};

/// How a test authority is made.
#[derive(Debug, Clone, Default)]
pub struct TsaOptions {
    /// The TSA certificate expired yesterday (its CA is still valid).
    pub expired: bool,
    /// RSA-2048 keys instead of ECDSA P-256.
    pub rsa: bool,
    /// ESS signing-certificate v2 (SHA-256) instead of v1 (SHA-1) in the tokens.
    pub ess_v2: bool,
    /// The TSA certificate is issued by an intermediate CA, which the tokens carry; the
    /// root alone is what [`TestAuthority::ca_pem`] gives.
    pub intermediate: bool,
    /// The TSA certificate expires this long after the authority is made (tokens made before
    /// stay valid; the authority keeps signing after, as a careless one would).
    pub expires_in: Option<Duration>,
}

struct Shared {
    dir: PathBuf,
    delay: Mutex<Duration>,
    other_imprint: AtomicBool,
    received: AtomicU64,
    answered: AtomicU64,
    /// `openssl ts -reply` rewrites its serial file: one reply at a time.
    reply: Mutex<u64>,
}

struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A running test authority; stops when dropped.
pub struct TestAuthority {
    _dir: tempfile::TempDir,
    shared: Arc<Shared>,
    addr: SocketAddr,
    running: Mutex<Option<Running>>,
}

fn require_openssl() {
    let found = Command::new("openssl").arg("version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "openssl is required by the time-stamp tests (openssl ts -reply / -verify); run \
         scripts/setup (apt-get install -y openssl)"
    );
}

fn key(rsa: bool) -> PKey<Private> {
    if rsa {
        PKey::from_rsa(Rsa::generate(2048).expect("RSA key")).expect("RSA key")
    } else {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("EC key")
    }
}

fn name(cn: &str) -> X509Name {
    let mut n = X509Name::builder().expect("name");
    n.append_entry_by_text("O", "Tereze test TSA").expect("O");
    n.append_entry_by_text("CN", cn).expect("CN");
    n.build()
}

fn days_from_now(days: i64) -> Asn1Time {
    seconds_from_now(days * 86_400)
}

fn seconds_from_now(seconds: i64) -> Asn1Time {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    Asn1Time::from_unix(now + seconds).expect("time")
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().expect("bn");
    bn.rand(63, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .expect("random serial");
    bn.to_asn1_integer().expect("serial")
}

/// A CA certificate for `key`, self-signed when `issuer` is `None`.
fn ca_certificate(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
    let subject = name(cn);
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    b.set_serial_number(&serial()).expect("serial");
    b.set_subject_name(&subject).expect("subject");
    b.set_issuer_name(issuer.map_or(&subject, |(c, _)| c.subject_name()))
        .expect("issuer");
    b.set_pubkey(key).expect("key");
    b.set_not_before(&days_from_now(-60)).expect("nb");
    b.set_not_after(&days_from_now(3650)).expect("na");
    b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
        .expect("bc");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .expect("ski");
    b.append_extension(ski).expect("ski");
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
        .expect("sign CA");
    b.build()
}

/// The root CA, the intermediate CA if asked for, the TSA certificate and its key.
fn certificates(options: &TsaOptions) -> (X509, Option<X509>, X509, PKey<Private>) {
    let root_key = key(options.rsa);
    let root = ca_certificate("Tereze test TSA CA", &root_key, None);
    let mid = options.intermediate.then(|| {
        let k = key(options.rsa);
        let c = ca_certificate(
            "Tereze test TSA intermediate CA",
            &k,
            Some((&root, &root_key)),
        );
        (c, k)
    });
    let (ca, ca_key) = mid.as_ref().map_or((&root, &root_key), |(c, k)| (c, k));

    let tsa_key = key(options.rsa);
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    b.set_serial_number(&serial()).expect("serial");
    b.set_subject_name(&name("Tereze test TSA"))
        .expect("subject");
    b.set_issuer_name(ca.subject_name()).expect("issuer");
    b.set_pubkey(&tsa_key).expect("key");
    let (from, to) = if options.expired {
        (-30, -1)
    } else {
        (-30, 1825)
    };
    b.set_not_before(&days_from_now(from)).expect("nb");
    match options.expires_in {
        Some(d) => b.set_not_after(&seconds_from_now(d.as_secs() as i64)),
        None => b.set_not_after(&days_from_now(to)),
    }
    .expect("na");
    b.append_extension(BasicConstraints::new().build().expect("bc"))
        .expect("bc");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .non_repudiation()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    // RFC 3161 §2.3: timeStamping only, critical.
    b.append_extension(
        ExtendedKeyUsage::new()
            .critical()
            .time_stamping()
            .build()
            .expect("eku"),
    )
    .expect("eku");
    b.sign(ca_key, MessageDigest::sha256()).expect("sign TSA");
    let tsa = b.build();
    (root, mid.map(|(c, _)| c), tsa, tsa_key)
}

impl TestAuthority {
    /// A valid authority (ECDSA P-256, ESS v1), serving.
    pub fn new() -> TestAuthority {
        TestAuthority::with(TsaOptions::default())
    }

    /// An authority made as `options` say, serving.
    pub fn with(options: TsaOptions) -> TestAuthority {
        require_openssl();
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let (ca, intermediate, tsa, tsa_key) = certificates(&options);
        std::fs::write(d.join("ca.pem"), ca.to_pem().expect("pem")).expect("ca.pem");
        // The certificates a token carries besides the signer's (`certs` below).
        let chain = match &intermediate {
            Some(c) => {
                std::fs::write(d.join("chain.pem"), c.to_pem().expect("pem")).expect("chain.pem");
                "certs = $dir/chain.pem\n"
            }
            None => "",
        };
        std::fs::write(d.join("tsa.pem"), tsa.to_pem().expect("pem")).expect("tsa.pem");
        std::fs::write(
            d.join("tsa.key"),
            tsa_key.private_key_to_pem_pkcs8().expect("pem"),
        )
        .expect("tsa.key");
        std::fs::write(d.join("serial"), "01\n").expect("serial");
        let ess = if options.ess_v2 { "sha256" } else { "sha1" };
        std::fs::write(
            d.join("openssl.cnf"),
            format!(
                "[ tsa ]\n\
                 default_tsa = tsa_config1\n\
                 [ tsa_config1 ]\n\
                 dir = {dir}\n\
                 serial = $dir/serial\n\
                 crypto_device = builtin\n\
                 signer_cert = $dir/tsa.pem\n\
                 signer_key = $dir/tsa.key\n\
                 signer_digest = sha256\n\
                 default_policy = 1.2.3.4.1\n\
                 other_policies = 1.2.3.4.5\n\
                 digests = sha1, sha256, sha384, sha512\n\
                 accuracy = secs:1\n\
                 ordering = no\n\
                 tsa_name = yes\n\
                 ess_cert_id_chain = no\n\
                 ess_cert_id_alg = {ess}\n\
                 {chain}",
                dir = d.display()
            ),
        )
        .expect("openssl.cnf");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("address");
        let shared = Arc::new(Shared {
            dir: d.to_path_buf(),
            delay: Mutex::new(Duration::ZERO),
            other_imprint: AtomicBool::new(false),
            received: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            reply: Mutex::new(0),
        });
        let authority = TestAuthority {
            _dir: dir,
            shared,
            addr,
            running: Mutex::new(None),
        };
        authority.serve(listener);
        authority
    }

    fn serve(&self, listener: TcpListener) {
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let shared = self.shared.clone();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || accept_loop(listener, shared, flag));
        if let Ok(mut r) = self.running.lock() {
            *r = Some(Running { stop, thread });
        }
    }

    /// The URL to request tokens at.
    pub fn url(&self) -> String {
        format!("http://{}/tsa", self.addr)
    }

    /// The CA certificate (PEM) a trust space lists for this authority.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.ca_path()).expect("ca.pem")
    }

    /// The CA certificate file (`openssl ts -verify -CAfile`).
    pub fn ca_path(&self) -> PathBuf {
        self.shared.dir.join("ca.pem")
    }

    /// The TSA's signing certificate file (`openssl ts -verify -untrusted`).
    pub fn tsa_cert_path(&self) -> PathBuf {
        self.shared.dir.join("tsa.pem")
    }

    /// The `openssl.cnf` with the `[tsa]` section.
    pub fn config_path(&self) -> PathBuf {
        self.shared.dir.join("openssl.cnf")
    }

    /// Stops serving: connections are refused until [`TestAuthority::start`].
    pub fn stop(&self) {
        let running = self.running.lock().ok().and_then(|mut r| r.take());
        if let Some(r) = running {
            r.stop.store(true, Ordering::SeqCst);
            let _ = r.thread.join();
        }
    }

    /// Serves again on the same port (after [`TestAuthority::stop`]; serving already: no-op).
    pub fn start(&self) {
        if self.running.lock().is_ok_and(|r| r.is_some()) {
            return;
        }
        // The port was ours a moment ago; another process may take it in between, rarely:
        // retry for a while.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("test authority: cannot bind {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Waits this long before answering each request.
    pub fn set_delay(&self, delay: Duration) {
        if let Ok(mut d) = self.shared.delay.lock() {
            *d = delay;
        }
    }

    /// Answers with a token over another imprint (same nonce), or normally again.
    pub fn set_other_imprint(&self, on: bool) {
        self.shared.other_imprint.store(on, Ordering::SeqCst);
    }

    /// Requests received (each POST).
    pub fn received(&self) -> u64 {
        self.shared.received.load(Ordering::SeqCst)
    }

    /// Requests answered with a time-stamp reply.
    pub fn answered(&self) -> u64 {
        self.shared.answered.load(Ordering::SeqCst)
    }

    /// The TimeStampResp (DER) `openssl ts -reply` gives for `query` (a DER TimeStampReq),
    /// without HTTP.
    pub fn reply(&self, query: &[u8]) -> Result<Vec<u8>, String> {
        reply(&self.shared, query, false)
    }

    /// The bare token (`openssl ts -reply -token_out`) for `query`, without HTTP.
    pub fn token(&self, query: &[u8]) -> Result<Vec<u8>, String> {
        reply(&self.shared, query, true)
    }
}

impl Default for TestAuthority {
    fn default() -> Self {
        TestAuthority::new()
    }
}

impl Drop for TestAuthority {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for TestAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestAuthority")
            .field("url", &self.url())
            .finish()
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &shared);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// One HTTP/1.1 exchange on `stream`, then the connection closes.
fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(1024 * 1024);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    shared.received.fetch_add(1, Ordering::SeqCst);
    let delay = shared.delay.lock().map(|d| *d).unwrap_or_default();
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let query = &buf[head_end..head_end + length];
    let answer = if head.starts_with("post ") {
        reply(shared, query, false)
    } else {
        Err("only POST".to_owned())
    };
    match answer {
        Ok(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)?;
            shared.answered.fetch_add(1, Ordering::SeqCst);
        }
        Err(e) => {
            write!(
                stream,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{e}",
                e.len()
            )?;
        }
    }
    stream.flush()
}

/// The SHA-256 AlgorithmIdentifier's OID as it stands in a query, then the imprint's header.
const SHA256_OID: &[u8] = &[
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
];

/// `query` with its SHA-256 imprint's bytes inverted (everything else kept: the nonce too).
fn other_imprint(query: &[u8]) -> Vec<u8> {
    let mut q = query.to_vec();
    if let Some(at) = q.windows(SHA256_OID.len()).position(|w| w == SHA256_OID) {
        let from = at + SHA256_OID.len();
        if let Some(i) = q[from..].windows(2).position(|w| w == [0x04, 0x20]) {
            let start = from + i + 2;
            if let Some(imprint) = q.get_mut(start..start + 32) {
                imprint.iter_mut().for_each(|b| *b ^= 0xff);
            }
        }
    }
    q
}

fn reply(shared: &Shared, query: &[u8], token_only: bool) -> Result<Vec<u8>, String> {
    let mut n = shared.reply.lock().map_err(|_| "reply lock".to_owned())?;
    *n += 1;
    let query = if shared.other_imprint.load(Ordering::SeqCst) {
        other_imprint(query)
    } else {
        query.to_vec()
    };
    let q = shared.dir.join(format!("q{n}.tsq"));
    let r = shared.dir.join(format!("r{n}.tsr"));
    std::fs::write(&q, &query).map_err(|e| format!("write query: {e}"))?;
    let mut cmd = Command::new("openssl");
    cmd.args(["ts", "-reply", "-config"])
        .arg(shared.dir.join("openssl.cnf"))
        .arg("-queryfile")
        .arg(&q)
        .arg("-out")
        .arg(&r);
    if token_only {
        cmd.arg("-token_out");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("openssl ts -reply: {e}"))?;
    let _ = std::fs::remove_file(&q);
    if !out.status.success() {
        return Err(format!(
            "openssl ts -reply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let bytes = std::fs::read(&r).map_err(|e| format!("read reply: {e}"))?;
    let _ = std::fs::remove_file(&r);
    Ok(bytes)
}

/// Runs `openssl ts -verify` with `args` (`-digest HEX` or `-data FILE`, `-in TOKEN -token_in`,
/// `-CAfile`, `-untrusted`); `Ok` when it says "Verification: OK", else its output.
pub fn openssl_ts_verify(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    require_openssl();
    let out = Command::new("openssl")
        .args(["ts", "-verify"])
        .args(args)
        .output()
        .map_err(|e| format!("openssl ts -verify: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains("Verification: OK") {
        Ok(())
    } else {
        Err(text)
    }
}

/// A path as an argument.
pub fn arg(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}
