//! The node's command line: bad configurations and arguments are refused with exit 2 and a
//! message naming the file and field; `pki init-dev` writes a usable tree.

use std::process::Command;

use crate::net::tereze;

#[test]
fn init_dev_writes_a_trust_space_and_a_config_per_node() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf-8");
    let (code, stdout, stderr) = tereze(&[
        "pki",
        "init-dev",
        "--out",
        out,
        "--states",
        "KZ,RU",
        "--hub",
        "EEC",
        "--via-hub",
        "RU",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("trust-space.toml") && stdout.contains("EEC "),
        "{stdout}"
    );
    for state in ["kz", "ru", "eec"] {
        for f in [
            "root.pem",
            "tls-root.pem",
            "node-tls.pem",
            "node-tls.key",
            "signer.pem",
            "signer.key",
            "node.toml",
        ] {
            assert!(dir.path().join(state).join(f).exists(), "{state}/{f}");
        }
    }
    let kz = std::fs::read_to_string(dir.path().join("kz/node.toml")).expect("config");
    assert!(
        kz.contains("hub = \"EEC\"") && kz.contains("via_hub = [\"RU\"]"),
        "{kz}"
    );
    // The signer chains to the root, as openssl sees it.
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.path().join("kz/root.pem"))
        .arg(dir.path().join("kz/signer.pem"))
        .output()
        .expect("openssl runs");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("kz/signer.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "private keys are readable by their owner only"
        );
    }
    let (code, _, stderr) = tereze(&["pki", "init-dev", "--out", out, "--states", "kz"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("\"kz\" is not a state code"), "{stderr}");
}

#[test]
fn a_bad_configuration_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf-8");
    let (code, _, stderr) = tereze(&[
        "pki",
        "init-dev",
        "--out",
        out,
        "--states",
        "KZ,RU",
        "--hub",
        "",
        "--base-port",
        "19700",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let config = dir.path().join("kz/node.toml");
    let original = std::fs::read_to_string(&config).expect("config");

    std::fs::write(
        &config,
        original.replace("role = \"member\"", "role = \"boss\""),
    )
    .expect("write");
    let (code, _, stderr) = tereze(&["node", "run", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("node.toml") && stderr.contains("boss"),
        "{stderr}"
    );

    std::fs::write(&config, format!("{original}\n[relay]\nmax_attempts = 0\n")).expect("write");
    let (code, _, stderr) = tereze(&["node", "run", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("relay.max_attempts: must be at least 1"),
        "{stderr}"
    );

    std::fs::write(&config, original.replace("signer.key", "missing.key")).expect("write");
    let (code, _, stderr) = tereze(&["node", "run", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing.key: cannot read"), "{stderr}");

    std::fs::write(
        &config,
        original.replace("state = \"KZ\"", "state = \"BY\""),
    )
    .expect("write");
    let (code, _, stderr) = tereze(&["node", "run", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("BY is not in the trust space"), "{stderr}");

    let (code, _, stderr) = tereze(&["node", "run", "--config", "/nonexistent/node.toml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("/nonexistent/node.toml: cannot read"),
        "{stderr}"
    );
}

#[test]
fn audit_verify_needs_a_node_store() {
    let dir = tempfile::tempdir().expect("dir");
    let (code, _, stderr) = tereze(&["audit", "verify", dir.path().to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no node store here"), "{stderr}");
}
