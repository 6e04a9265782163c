//! The deployment files (`deploy/`) against the real binary: the systemd unit passes
//! `systemd-analyze verify` and keeps its hardening; the compose file's PKI step and node
//! commands work; the Kubernetes node.toml is a valid configuration and the probes and ports
//! match it. (Building the container image needs a Docker daemon, which CI does not have.)

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::net::{bin, tereze};

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(rel)
}

/// YAML documents as JSON, read by python3-yaml (scripts/setup installs it).
fn yaml(path: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path)
        .output()
        .expect("python3 runs (scripts/setup installs python3-yaml)");
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("JSON")
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(deploy("systemd/tereze.service")).expect("unit");
    for key in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
        "UMask=0077",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(key), "{key} missing");
    }
    assert!(
        unit.contains("ExecStart=/usr/local/bin/tereze node run --config /etc/tereze/node.toml")
    );
    // Verified with this build's binary in place of /usr/local/bin/tereze.
    let dir = tempfile::tempdir().expect("dir");
    let copy = dir.path().join("tereze.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/tereze", bin())).expect("write");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs (scripts/setup installs systemd)");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(
        !said.contains("Unknown key") && !said.contains("Failed"),
        "{said}"
    );
    // The command line is the node's: it parses and fails only on the missing config.
    let (code, _, err) = tereze(&["node", "run", "--config", "/nonexistent/node.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/node.toml: cannot read"), "{err}");
}

#[test]
fn the_compose_demo_commands_work_with_this_binary() {
    let docs = yaml(&deploy("compose.yaml"));
    let services = docs[0]["services"].as_object().expect("services");
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().to_str().expect("utf-8");
    // The PKI step, run as compose would run it (into a temporary directory).
    let pki = services["pki"]["command"][0].as_str().expect("pki command");
    let init = pki.split("|| ").nth(1).expect("the init-dev command");
    let args: Vec<String> = init
        .split_whitespace()
        .skip(1)
        .map(|a| a.replace("/srv/tereze", root))
        .collect();
    let (code, _, err) = tereze(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    let mut nodes = 0;
    for (name, svc) in services {
        if name == "pki" {
            continue;
        }
        nodes += 1;
        let cmd: Vec<String> = svc["command"]
            .as_array()
            .expect("command")
            .iter()
            .map(|a| a.as_str().expect("string").replace("/srv/tereze", root))
            .collect();
        assert_eq!(&cmd[..3], ["node", "run", "--config"], "{name}");
        let config =
            std::fs::read_to_string(&cmd[3]).unwrap_or_else(|e| panic!("{name}: {}: {e}", cmd[3]));
        assert!(
            config.contains(&format!("state = \"{}\"", name.to_uppercase())),
            "{name}"
        );
        assert_eq!(
            svc["network_mode"], "host",
            "{name}: the dev PKI's endpoints are loopback"
        );
    }
    assert_eq!(nodes, 6, "five member states and the hub");
}

#[test]
fn the_kubernetes_node_config_is_valid_and_its_probes_and_ports_match() {
    let docs = yaml(&deploy("kubernetes/tereze-kz.yaml"));
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let config = kind("ConfigMap")["data"]["node.toml"]
        .as_str()
        .expect("node.toml")
        .to_owned();
    // The configuration loads: it fails only on the placeholder trust space, not on a field.
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("node.toml"), &config).expect("write");
    let (code, _, err) = tereze(&[
        "node",
        "run",
        "--config",
        dir.path().join("node.toml").to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("commission-root.pem"),
        "the next thing missing is the anchor, not a field: {err}"
    );
    let pod = &kind("StatefulSet")["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let ports: Vec<(String, u64)> = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name").to_owned(),
                p["containerPort"].as_u64().expect("port"),
            )
        })
        .collect();
    for (name, port) in &ports {
        let key = if name == "admin" {
            "listen".to_owned()
        } else {
            name.clone()
        };
        assert!(
            config.contains(&format!("{key} = \"0.0.0.0:{port}\"")),
            "{name} {port}"
        );
    }
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http");
    // Keys reach the node owner-only (it refuses an operator token others may read).
    assert!(pod["initContainers"][0]["command"][2]
        .as_str()
        .unwrap_or_default()
        .contains("install -m 0600"));
    assert!(config.contains("token_file = \"/run/tereze/keys/admin.token\""));
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    // The keys and the token come from a Secret, the one the pod mounts.
    let secret = kind("Secret");
    for key in ["node-tls.key", "signer.key", "admin.token"] {
        assert!(secret["stringData"][key].is_string(), "{key}");
    }
    let mounted = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find_map(|v| v["secret"]["secretName"].as_str())
        .expect("a secret volume");
    assert_eq!(secret["metadata"]["name"], mounted);
}
