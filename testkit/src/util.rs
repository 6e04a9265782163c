//! Runs the real `tereze` binary (the one [`bin`](crate::binary::bin) finds) in a temporary
//! directory, ripgrep style.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};

pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Default for Dir {
    fn default() -> Self {
        Self::new()
    }
}

impl Dir {
    /// A new temporary directory, removed when dropped.
    pub fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).expect("write");
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read")
    }

    /// Writes `ca.pem`, `signer.key`, `signer.pem` (issued by the CA) and `other-ca.pem`.
    pub fn pki(&self, kind: KeyKind) {
        let issue = |cn: &str,
                     ca: bool,
                     key: &openssl_key::Key,
                     issuer: Option<(&openssl_key::Cert, &openssl_key::Key)>| {
            issue_certificate(
                &CertificateSpec {
                    subject: &[("C", "KZ"), ("O", "Tereze test"), ("CN", cn)],
                    not_before_days: -1,
                    not_after_days: 30,
                    is_ca: ca,
                },
                key,
                issuer,
            )
            .expect("certificate")
        };
        let ca_key = generate_key(KeyKind::EcP256).expect("key");
        let ca = issue("Test root CA", true, &ca_key, None);
        let key = generate_key(kind).expect("key");
        let cert = issue("Test signer", false, &key, Some((&ca, &ca_key)));
        let other_key = generate_key(KeyKind::EcP256).expect("key");
        let other = issue("Other CA", true, &other_key, None);
        self.write("ca.pem", ca.to_pem().expect("pem"));
        self.write("signer.pem", cert.to_pem().expect("pem"));
        self.write("signer.key", key.private_key_to_pem_pkcs8().expect("pem"));
        self.write("signer.pub", key.public_key_to_pem().expect("pem"));
        self.write("other-ca.pem", other.to_pem().expect("pem"));
    }

    pub fn tereze(&self, args: &[&str]) -> Output {
        Command::new(crate::binary::bin())
            .current_dir(self.tmp.path())
            .args(args)
            .output()
            .expect("tereze runs")
    }
}

/// The key and certificate types the codecs PKI helpers return.
pub mod openssl_key {
    pub type Key = openssl::pkey::PKey<openssl::pkey::Private>;
    pub type Cert = openssl::x509::X509;
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn describe(o: &Output) -> String {
    format!(
        "exit {}\nstdout: {}\nstderr: {}",
        code(o),
        stdout(o),
        stderr(o)
    )
}

/// `path` as a command-line argument (the test tree's paths are UTF-8).
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

pub fn sample() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../codecs/samples/eaeu.export-declaration/valid-grain.xml"
    ))
}

pub fn negative(name: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../codecs/tests/corpus/negative"
    ))
    .join(name)
}
