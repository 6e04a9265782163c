//! A throwaway SoftHSM2 token directory for the PKCS#11 tests: its own `softhsm2.conf`,
//! tokens made with `softhsm2-util` and keys generated inside them with `pkcs11-tool`, so no
//! private key ever exists outside the token.
//!
//! The tools are required: a missing one fails the test with a pointer to `scripts/setup`,
//! never a skip. SoftHSM2 reads `SOFTHSM2_CONF` once per process (at `C_Initialize`), so a
//! process that opens tokens itself uses one directory, made up front
//! ([`SoftHsm::export_conf`]); child processes get theirs through [`SoftHsm::env`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's SoftHSM2 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every test token.
pub const PIN: &str = "1234";
const SO_PIN: &str = "12345678";

/// A token directory and its configuration file.
#[derive(Debug)]
pub struct SoftHsm {
    dir: tempfile::TempDir,
}

fn require(tool: &str, package: &str) {
    let found = Command::new(tool).arg("--help").output();
    assert!(
        found.is_ok(),
        "{tool} is required by the PKCS#11 tests; run scripts/setup (apt-get install -y {package})"
    );
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl SoftHsm {
    /// A new, empty token directory.
    pub fn new() -> Self {
        require("softhsm2-util", "softhsm2");
        require("pkcs11-tool", "opensc");
        assert!(
            Path::new(MODULE).exists(),
            "{MODULE} is missing; run scripts/setup (apt-get install -y softhsm2)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("tokens")).expect("token dir");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .expect("softhsm2.conf");
        Self { dir }
    }

    /// Exports this directory as the process's `SOFTHSM2_CONF`, for tests that open tokens
    /// in-process. Call it once, after making every token the process will use and before
    /// the first one is opened: SoftHSM2 reads the variable and lists its tokens when the
    /// module is initialised, and does not see tokens made later.
    pub fn export_conf(&self) {
        std::env::set_var("SOFTHSM2_CONF", self.conf());
    }

    /// The configuration file to give as `SOFTHSM2_CONF`.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The environment a child process needs to see these tokens.
    pub fn env(&self) -> (&'static str, PathBuf) {
        ("SOFTHSM2_CONF", self.conf())
    }

    fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        c.env("SOFTHSM2_CONF", self.conf());
        c
    }

    /// Makes a token labelled `label` with the user PIN [`PIN`].
    pub fn token(&self, label: &str) {
        run(
            self.tool("softhsm2-util").args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                SO_PIN,
                "--pin",
                PIN,
            ]),
            "softhsm2-util --init-token",
        );
    }

    /// Generates a key pair inside `token` (`key_type`: `EC:prime256v1`, `rsa:2048`), with
    /// label `label` and id `id` (hex), never extractable.
    pub fn keygen(&self, token: &str, key_type: &str, label: &str, id: &str) {
        run(
            self.tool("pkcs11-tool").args([
                "--module",
                MODULE,
                "--token-label",
                token,
                "--login",
                "--pin",
                PIN,
                "--keypairgen",
                "--key-type",
                key_type,
                "--label",
                label,
                "--id",
                id,
                "--usage-sign",
            ]),
            "pkcs11-tool --keypairgen",
        );
    }

    /// Replaces the public-key object `id` in `token` with a copy of key pair `from`'s public
    /// key: a stale public half, as re-keying under the same id can leave behind.
    pub fn replace_public(&self, token: &str, id: &str, from: &str) {
        let der = self
            .dir
            .path()
            .join(format!("{token}-{from}-for-{id}.pub.der"));
        let with_token = |c: &mut Command| {
            c.args(["--module", MODULE, "--token-label", token]);
        };
        let mut read = self.tool("pkcs11-tool");
        with_token(&mut read);
        run(
            read.args([
                "--read-object",
                "--type",
                "pubkey",
                "--id",
                from,
                "--output-file",
            ])
            .arg(&der),
            "pkcs11-tool --read-object",
        );
        let mut delete = self.tool("pkcs11-tool");
        with_token(&mut delete);
        run(
            delete.args([
                "--login",
                "--pin",
                PIN,
                "--delete-object",
                "--type",
                "pubkey",
                "--id",
                id,
            ]),
            "pkcs11-tool --delete-object",
        );
        let mut write = self.tool("pkcs11-tool");
        with_token(&mut write);
        run(
            write
                .args(["--login", "--pin", PIN, "--write-object"])
                .arg(&der)
                .args(["--type", "pubkey", "--id", id]),
            "pkcs11-tool --write-object",
        );
    }

    /// The public key of the key pair `id` in `token`, as PEM (read from the token).
    pub fn public_pem(&self, token: &str, id: &str) -> Vec<u8> {
        let der = self.dir.path().join(format!("{token}-{id}.pub.der"));
        run(
            self.tool("pkcs11-tool")
                .args([
                    "--module",
                    MODULE,
                    "--token-label",
                    token,
                    "--read-object",
                    "--type",
                    "pubkey",
                    "--id",
                    id,
                    "--output-file",
                ])
                .arg(&der),
            "pkcs11-tool --read-object",
        );
        let der = std::fs::read(&der).expect("public key");
        openssl::pkey::PKey::public_key_from_der(&der)
            .expect("DER public key")
            .public_key_to_pem()
            .expect("PEM")
    }

    /// Writes an owner-only PIN file holding [`PIN`] and returns its path.
    pub fn pin_file(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, format!("{PIN}\n")).expect("PIN file");
        set_mode(&p, 0o600);
        p
    }

    /// The directory, for the tests' other files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for SoftHsm {
    fn default() -> Self {
        Self::new()
    }
}

/// Sets a file's permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A test CA (EC P-256, self-signed) for certificates of keys held in tokens.
pub fn test_ca() -> (
    openssl::x509::X509,
    openssl::pkey::PKey<openssl::pkey::Private>,
) {
    use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};
    let key = generate_key(KeyKind::EcP256).expect("CA key");
    let cert = issue_certificate(
        &CertificateSpec {
            subject: &[("C", "KZ"), ("O", "Tereze test"), ("CN", "Token test CA")],
            not_before_days: -1,
            not_after_days: 30,
            is_ca: true,
        },
        &key,
        None,
    )
    .expect("CA certificate");
    (cert, key)
}

/// A document-signing certificate for a public key read from a token, issued by `ca`.
pub fn certificate_for(
    public_pem: &[u8],
    common_name: &str,
    ca: &(
        openssl::x509::X509,
        openssl::pkey::PKey<openssl::pkey::Private>,
    ),
) -> openssl::x509::X509 {
    use openssl::x509::extension::{BasicConstraints, KeyUsage};
    let public = openssl::pkey::PKey::public_key_from_pem(public_pem).expect("public key");
    let mut name = openssl::x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("C", "KZ").expect("C");
    name.append_entry_by_text("CN", common_name).expect("CN");
    let name = name.build();
    let mut b = openssl::x509::X509::builder().expect("builder");
    b.set_version(2).expect("version");
    let serial = openssl::bn::BigNum::from_u32(fastrand_serial()).expect("serial");
    b.set_serial_number(&serial.to_asn1_integer().expect("serial"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(ca.0.subject_name()).expect("issuer");
    b.set_pubkey(&public).expect("public key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    b.set_not_before(&openssl::asn1::Asn1Time::from_unix(now - 86_400).expect("time"))
        .expect("not before");
    b.set_not_after(&openssl::asn1::Asn1Time::from_unix(now + 30 * 86_400).expect("time"))
        .expect("not after");
    b.append_extension(BasicConstraints::new().critical().build().expect("bc"))
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
    b.sign(&ca.1, openssl::hash::MessageDigest::sha256())
        .expect("sign");
    b.build()
}

fn fastrand_serial() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(1);
    nanos | 1
}
