//! A minimal `openssl ca` (the command scripts/setup installs) for a development PKI's root
//! CA: it revokes certificates and writes CRLs as a state's CA would, for the tests of
//! revocation (the `cli` and the `cluster` tests alike).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `openssl ca` for the root CA in a node directory (`root.pem`, `root.key`), its database in
/// the directory's `ca/`.
pub struct Ca {
    dir: PathBuf,
}

impl Ca {
    /// A fresh database (no revocations, CRL number 1) in `node_dir/ca`.
    pub fn new(node_dir: &Path) -> Self {
        let dir = node_dir.join("ca");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("index.txt"), "").expect("index");
        std::fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n",
        )
        .expect("config");
        Self { dir }
    }

    /// Runs `openssl ca` with the root's key and certificate and `args`; panics when it fails.
    pub fn run(&self, args: &[&str]) {
        let root = self.dir.parent().expect("node dir");
        let out = Command::new("openssl")
            .current_dir(&self.dir)
            .arg("ca")
            .args(["-config", "ca.cnf", "-keyfile"])
            .arg(root.join("root.key"))
            .arg("-cert")
            .arg(root.join("root.pem"))
            .args(args)
            .output()
            .expect("openssl runs (scripts/setup installs it)");
        assert!(
            out.status.success(),
            "openssl ca {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Revokes `cert` now (revocation times have a resolution of a second).
    pub fn revoke(&self, cert: &Path) {
        self.run(&["-revoke", cert.to_str().expect("utf-8")]);
    }

    /// Writes the current CRL to `to` (CRL times have a resolution of a second).
    pub fn crl(&self, to: &Path) {
        self.run(&["-gencrl", "-out", to.to_str().expect("utf-8")]);
    }
}
