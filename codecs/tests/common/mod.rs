//! Shared fixtures for the codecs integration tests: a real test PKI (a CA and signers it
//! issued, written as PEM files), the `xmlsec1` command, which the tests require, and the
//! exchange with the Python (lxml) scripts of the differential tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tereze_codecs::dsig::{SigningKey, TrustStore};
use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};

pub const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/samples/eaeu.export-declaration/valid-grain.xml"
);

/// A CA with one signer, on disk.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: X509,
    pub ca_key: PKey<Private>,
    pub signer: X509,
    pub signer_key: PKey<Private>,
}

impl Pki {
    pub fn new(kind: KeyKind) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = generate_key(KeyKind::EcP256).expect("CA key");
        let ca = issue_certificate(
            &CertificateSpec {
                subject: &[("C", "KZ"), ("O", "Tereze test"), ("CN", "Test root CA")],
                not_before_days: -1,
                not_after_days: 30,
                is_ca: true,
            },
            &ca_key,
            None,
        )
        .expect("CA certificate");
        let signer_key = generate_key(kind).expect("signer key");
        let signer = issue_certificate(
            &CertificateSpec {
                subject: &[("C", "KZ"), ("O", "Tereze test"), ("CN", "Test signer")],
                not_before_days: -1,
                not_after_days: 30,
                is_ca: false,
            },
            &signer_key,
            Some((&ca, &ca_key)),
        )
        .expect("signer certificate");
        let pki = Self {
            dir,
            ca,
            ca_key,
            signer,
            signer_key,
        };
        std::fs::write(pki.path("ca.pem"), pki.ca.to_pem().expect("pem")).expect("write");
        std::fs::write(pki.path("signer.pem"), pki.signer.to_pem().expect("pem")).expect("write");
        std::fs::write(
            pki.path("signer.key"),
            pki.signer_key.private_key_to_pem_pkcs8().expect("pem"),
        )
        .expect("write");
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_pem(
            &self.signer_key.private_key_to_pem_pkcs8().expect("pem"),
            Some(&self.signer.to_pem().expect("pem")),
        )
        .expect("signing key")
    }

    pub fn trust(&self) -> TrustStore {
        let mut t = TrustStore::new();
        t.add_certificate(self.ca.clone());
        t
    }

    /// Issues a further signer under the same CA (subject `C=KZ, O=Tereze test, CN=<cn>`) and
    /// writes it as `<name>.key` and `<name>.pem`, for documents with several signers.
    pub fn add_signer(&self, name: &str, cn: &str, kind: KeyKind) -> (X509, PKey<Private>) {
        let key = generate_key(kind).expect("signer key");
        let cert = issue_certificate(
            &CertificateSpec {
                subject: &[("C", "KZ"), ("O", "Tereze test"), ("CN", cn)],
                not_before_days: -1,
                not_after_days: 30,
                is_ca: false,
            },
            &key,
            Some((&self.ca, &self.ca_key)),
        )
        .expect("signer certificate");
        self.write(&format!("{name}.pem"), &cert.to_pem().expect("pem"));
        self.write(
            &format!("{name}.key"),
            &key.private_key_to_pem_pkcs8().expect("pem"),
        );
        (cert, key)
    }

    pub fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).expect("write");
        p
    }
}

/// Fails unless the command `probe` runs and succeeds, saying that `what` is required by
/// `test` and that `scripts/setup` installs it (`install`): a missing tool is a failure,
/// never a skip.
pub fn require_tool(test: &str, what: &str, probe: &[&str], install: &str) {
    let found = Command::new(probe[0]).args(&probe[1..]).output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{what} is required by {test}; run scripts/setup ({install})"
    );
}

/// `xmlsec1`, with the system CA bundle switched off (it is not used and costs 15 ms a run).
/// The interop tests need it: a missing tool is a failure, never a skip.
pub fn xmlsec1() -> Command {
    require_tool(
        "the interop tests",
        "xmlsec1",
        &["xmlsec1", "--version"],
        "apt-get install -y xmlsec1",
    );
    let mut c = Command::new("xmlsec1");
    c.env("SSL_CERT_FILE", "/dev/null")
        .env("SSL_CERT_DIR", "/dev/null");
    c
}

/// Signs a template (a document holding an empty `ds:Signature`) with xmlsec1 and the signer's
/// key and certificate, and returns the signed document.
pub fn xmlsec1_sign(pki: &Pki, tmpl: &str, id_attr: Option<&str>) -> String {
    let ids: Vec<(&str, &str)> = id_attr.map(|node| ("Id", node)).into_iter().collect();
    xmlsec1_sign_as(pki, "signer", tmpl, &ids, None)
}

/// Signs a template with xmlsec1 as the signer written as `<signer>.key`/`<signer>.pem` in the
/// PKI's directory. `id_attrs` are `(attribute, [namespace:]element)` pairs for xmlsec1's
/// `--id-attr`; `node_xpath` picks which empty `ds:Signature` to fill when there are several
/// (xmlsec1 otherwise takes the first in document order).
pub fn xmlsec1_sign_as(
    pki: &Pki,
    signer: &str,
    tmpl: &str,
    id_attrs: &[(&str, &str)],
    node_xpath: Option<&str>,
) -> String {
    let input = pki.write("template.xml", tmpl.as_bytes());
    let output = pki.path("xmlsec1-signed.xml");
    let mut c = xmlsec1();
    c.arg("--sign")
        .arg("--privkey-pem")
        .arg(format!(
            "{},{}",
            pki.path(&format!("{signer}.key")).display(),
            pki.path(&format!("{signer}.pem")).display()
        ))
        .arg("--output")
        .arg(&output);
    for (attr, node) in id_attrs {
        c.arg(format!("--id-attr:{attr}")).arg(node);
    }
    if let Some(xpath) = node_xpath {
        c.arg("--node-xpath").arg(xpath);
    }
    let out = run(c.arg(&input));
    assert!(out.status.success(), "xmlsec1 --sign: {}", text(&out));
    read(&output)
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("command runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read")
}

/// One answer of a differential script: `ok` (the result, hex) or `error` (libxml2's
/// complaint), and whatever other fields that script adds.
pub type Answer = HashMap<String, String>;

/// Runs the Python `script` with the JSON `input` on its stdin and returns its answers, a
/// JSON list of string-valued objects, asserting there are `count` of them.
pub fn python_answers(script: &str, input: Vec<u8>, count: usize) -> Vec<Answer> {
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    // Written from a thread so a large answer cannot deadlock against a full stdin pipe.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("python3 runs");
    writer
        .join()
        .expect("writer thread")
        .expect("write cases to python3");
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<Answer> =
        serde_json::from_slice(&output.stdout).expect("the script writes a JSON list");
    assert_eq!(answers.len(), count, "one answer per case");
    answers
}

/// An answer's result bytes, or its error.
pub fn ok_or_error(a: &Answer) -> Result<Vec<u8>, String> {
    match (a.get("ok"), a.get("error")) {
        (Some(hex), _) => Ok(from_hex(hex)),
        (None, Some(e)) => Err(e.clone()),
        (None, None) => panic!("an answer with neither ok nor error: {a:?}"),
    }
}

/// Bytes from the hex a script writes.
pub fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex from the script"))
        .collect()
}
