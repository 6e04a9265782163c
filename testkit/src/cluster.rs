//! A local cluster of real node processes on loopback, for `tereze demo` and `tereze bench`
//! (which run it from inside the `tereze` binary: the nodes are `current_exe()`):
//! a development PKI, one `tereze node run` child process per node, readiness by the
//! "ready" line, and a Window client per node. The children are stopped (SIGTERM, then
//! SIGKILL after a grace period) when the cluster is dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use tereze_proto::window_client::WindowClient;
use tereze_trust::devpki::{self, DevPkiSpec};

/// A `Window` client that presents its node's national client token on every call.
pub type Window = WindowClient<InterceptedService<Channel, NationalToken>>;

/// Puts the national client token (`Authorization: Bearer …`) on every call.
#[derive(Clone)]
pub struct NationalToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for NationalToken {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

pub struct Cluster {
    pub dir: PathBuf,
    /// Removed on drop when the cluster made it.
    _temp: Option<tempfile::TempDir>,
    children: BTreeMap<String, Child>,
    pub window_ports: BTreeMap<String, u16>,
    pub http_ports: BTreeMap<String, u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Setup(String),
    #[error("node {state} did not start: {reason}")]
    Start { state: String, reason: String },
}

/// `tereze node run --config CONFIG`, its stderr in `node.log` beside the configuration.
fn spawn_node(exe: &Path, config: &Path, name: &str) -> Result<Child, ClusterError> {
    let log_path = config.with_file_name("node.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| ClusterError::Setup(format!("{}: {e}", log_path.display())))?;
    Command::new(exe)
        .args(["node", "run", "--config"])
        .arg(config)
        .env(
            "TEREZE_LOG",
            std::env::var("TEREZE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| ClusterError::Start {
            state: name.into(),
            reason: e.to_string(),
        })
}

impl Cluster {
    /// Writes a dev PKI to `dir` (a temporary directory when `None`) and starts the nodes.
    pub fn start(
        dir: Option<&Path>,
        states: &[&str],
        hub: Option<&str>,
        via_hub: &[&str],
        base_port: u16,
        extra_config: &str,
    ) -> Result<Self, ClusterError> {
        Self::start_configured(
            dir,
            states,
            hub,
            via_hub,
            base_port,
            extra_config,
            &BTreeMap::new(),
        )
    }

    /// [`start`](Self::start), with top-level `key = value` lines added to some nodes'
    /// configuration (e.g. a `store` URL), by state.
    pub fn start_configured(
        dir: Option<&Path>,
        states: &[&str],
        hub: Option<&str>,
        via_hub: &[&str],
        base_port: u16,
        extra_config: &str,
        top_level: &BTreeMap<String, String>,
    ) -> Result<Self, ClusterError> {
        Self::start_with_algorithms(
            dir,
            states,
            hub,
            via_hub,
            base_port,
            extra_config,
            top_level,
            &[],
        )
    }

    /// [`start_configured`](Self::start_configured), with the listed states' CAs and
    /// document signers on their own key algorithm (`tereze pki init-dev --algorithm`).
    #[allow(clippy::too_many_arguments)]
    pub fn start_with_algorithms(
        dir: Option<&Path>,
        states: &[&str],
        hub: Option<&str>,
        via_hub: &[&str],
        base_port: u16,
        extra_config: &str,
        top_level: &BTreeMap<String, String>,
        algorithms: &[(String, devpki::KeyAlgorithm)],
    ) -> Result<Self, ClusterError> {
        let (temp, dir) = match dir {
            Some(d) => (None, d.to_path_buf()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("tereze-cluster-")
                    .tempdir()
                    .map_err(|e| ClusterError::Setup(format!("temporary directory: {e}")))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let spec = DevPkiSpec {
            out: dir.clone(),
            states: states.iter().map(|s| s.to_string()).collect(),
            hub: hub.map(str::to_owned),
            via_hub: via_hub.iter().map(|s| s.to_string()).collect(),
            base_port,
            days: 30,
        };
        let configs = devpki::init_with(&spec, algorithms)
            .map_err(|e| ClusterError::Setup(format!("dev PKI: {e}")))?;
        let exe = std::env::current_exe()
            .map_err(|e| ClusterError::Setup(format!("cannot find the tereze binary: {e}")))?;
        let mut cluster = Self {
            dir: dir.clone(),
            _temp: temp,
            children: BTreeMap::new(),
            window_ports: BTreeMap::new(),
            http_ports: BTreeMap::new(),
        };
        for (i, (code, config)) in configs.iter().enumerate() {
            let top = top_level.get(code);
            if !extra_config.is_empty() || top.is_some() {
                let mut text = std::fs::read_to_string(config)
                    .map_err(|e| ClusterError::Setup(format!("{}: {e}", config.display())))?;
                if let Some(line) = top {
                    text = text.replacen("\n[listen]", &format!("\n{line}\n[listen]"), 1);
                }
                text.push_str(extra_config);
                std::fs::write(config, text)
                    .map_err(|e| ClusterError::Setup(format!("{}: {e}", config.display())))?;
            }
            let child = spawn_node(&exe, config, code)?;
            let ports = devpki::ports(base_port, i);
            cluster.window_ports.insert(code.clone(), ports.window);
            cluster.http_ports.insert(code.clone(), ports.http);
            cluster.children.insert(code.clone(), child);
        }
        for (code, config) in &configs {
            cluster.wait_ready(code, code, &config.with_file_name("node.log"))?;
        }
        Ok(cluster)
    }

    /// Starts a second replica `name` of `state`'s node (which must use a shared PostgreSQL
    /// store): the same configuration, keys and certificates in their own directory, on the
    /// state's ports shifted by 5, with its own data directory.
    pub fn start_replica(&mut self, state: &str, name: &str) -> Result<(), ClusterError> {
        let setup = |e: std::io::Error| ClusterError::Setup(format!("replica {name}: {e}"));
        let from = self.dir.join(state.to_lowercase());
        let to = self.dir.join(name.to_lowercase());
        std::fs::create_dir_all(&to).map_err(setup)?;
        for e in std::fs::read_dir(&from).map_err(setup)?.flatten() {
            if e.path().is_file() && e.file_name() != "node.log" {
                std::fs::copy(e.path(), to.join(e.file_name())).map_err(setup)?;
            }
        }
        let config = to.join("node.toml");
        let mut text = std::fs::read_to_string(&config).map_err(setup)?;
        let window = *self
            .window_ports
            .get(state)
            .ok_or_else(|| ClusterError::Setup(format!("no node {state}")))?;
        // The state's block: exchange, window, http, admin, peer at +0..+4 (devpki::ports).
        let first = window - 1;
        for port in first..first + 5 {
            text = text.replace(&format!(":{port}\""), &format!(":{}\"", port + 5));
        }
        std::fs::write(&config, text).map_err(setup)?;
        let exe = std::env::current_exe()
            .map_err(|e| ClusterError::Setup(format!("cannot find the tereze binary: {e}")))?;
        let log_path = to.join("node.log");
        let child = spawn_node(&exe, &config, name)?;
        self.window_ports.insert(name.into(), window + 5);
        if let Some(http) = self.http_ports.get(state).copied() {
            self.http_ports.insert(name.into(), http + 5);
        }
        self.children.insert(name.into(), child);
        self.wait_ready(name, state, &log_path)
    }

    /// Waits for child `key`'s "ready CODE" line.
    fn wait_ready(&mut self, key: &str, code: &str, log: &Path) -> Result<(), ClusterError> {
        let child = self
            .children
            .get_mut(key)
            .ok_or_else(|| ClusterError::Setup(format!("no child for {code}")))?;
        let stdout = child.stdout.take().ok_or_else(|| ClusterError::Start {
            state: code.into(),
            reason: "no stdout".into(),
        })?;
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        if line.trim() == format!("ready {code}") {
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                    sink.clear();
                }
            });
            return Ok(());
        }
        let logged = std::fs::read_to_string(log).unwrap_or_default();
        Err(ClusterError::Start {
            state: code.into(),
            reason: format!(
                "{}; log {}:\n{}",
                if line.is_empty() {
                    "exited"
                } else {
                    line.trim()
                },
                log.display(),
                logged.lines().rev().take(5).collect::<Vec<_>>().join("\n")
            ),
        })
    }

    /// A Window client for `state`'s node.
    pub async fn window(&self, state: &str) -> Result<Window, ClusterError> {
        let port = self
            .window_ports
            .get(state)
            .ok_or_else(|| ClusterError::Setup(format!("no node {state}")))?;
        let token_file = self.dir.join(state.to_lowercase()).join("national.token");
        let token = std::fs::read_to_string(&token_file)
            .map_err(|e| ClusterError::Setup(format!("{}: {e}", token_file.display())))?;
        let bearer = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| ClusterError::Setup(format!("{}: not a token", token_file.display())))?;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .map_err(|e| ClusterError::Setup(e.to_string()))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| ClusterError::Setup(format!("window of {state}: {e}")))?;
        Ok(
            WindowClient::with_interceptor(channel, NationalToken(bearer))
                .max_decoding_message_size(64 << 20),
        )
    }

    /// The node processes' ids.
    pub fn pids(&self) -> Vec<u32> {
        self.children.values().map(Child::id).collect()
    }

    /// Each node's state code with its process id, in state order.
    pub fn members(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .map(|(code, child)| (code.clone(), child.id()))
            .collect()
    }

    /// Stops every node: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        for child in self.children.values() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + grace;
        for child in self.children.values_mut() {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Uploads `mib` MiB of generated bytes through a node's `Window.UploadAttachment` (each 1 MiB
/// chunk made as the stream is read, so the caller holds one), checks the SHA-256 and size the
/// node answers against its own, and returns the node's answer.
pub async fn upload_generated(
    window: &Window,
    mib: u64,
) -> Result<tereze_proto::UploadResponse, String> {
    use tokio_stream::StreamExt;
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(Some(openssl::sha::Sha256::new())));
    let h = hasher.clone();
    let chunks = tokio_stream::iter(0..mib).map(move |i| {
        let mut data = vec![0u8; 1 << 20];
        let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for b in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
        }
        if let Ok(mut g) = h.lock() {
            if let Some(s) = g.as_mut() {
                s.update(&data);
            }
        }
        tereze_proto::UploadChunk {
            data,
            ..Default::default()
        }
    });
    let up = window
        .clone()
        .upload_attachment(chunks)
        .await
        .map_err(|e| format!("upload: {}", e.message()))?
        .into_inner();
    let ours = hasher
        .lock()
        .ok()
        .and_then(|mut g| g.take())
        .map(|s| tereze_support::hex::hex(&s.finish()))
        .unwrap_or_default();
    if up.sha256 != ours || up.size != mib << 20 {
        return Err(format!(
            "the node stored {} bytes with SHA-256 {}; {} bytes with {ours} were sent",
            up.size,
            up.sha256,
            mib << 20
        ));
    }
    Ok(up)
}
