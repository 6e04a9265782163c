//! A throwaway PostgreSQL server on loopback, for the store's tests, the HA tests and
//! `tereze bench --store postgres`: `initdb` into a temporary directory and `postgres` on a
//! free port, both as an unprivileged user (`nobody` when run as root, which PostgreSQL
//! refuses), with fsync on. The server dies with the thread that started it
//! (`setpriv --pdeathsig KILL`) and is killed when the value is dropped.
//!
//! The binaries are found in `$TEREZE_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`
//! (Debian's `postgresql` package, which `scripts/setup` installs), else `PATH`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server; stopped when dropped.
pub struct PgCluster {
    /// Where `initdb` and `postgres` are.
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// The directory holding `initdb` and `postgres`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("TEREZE_PG_BIN") {
        return Ok(PathBuf::from(d));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .find(|d| d.join("postgres").exists() && d.join("initdb").exists())
        })
        .ok_or_else(|| {
            "PostgreSQL server binaries not found (install Debian's postgresql: scripts/setup does)"
                .into()
        })
}

/// The unprivileged user and group the server runs as when we are root (`nobody`,
/// `nogroup` on Debian), by number: the data directory is given to them with `chown`.
const NOBODY: u32 = 65534;

/// `program` under `setpriv`: dies with this thread, and as [`NOBODY`] when we are root.
fn command(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.arg("--pdeathsig").arg("KILL");
    if tereze_support::procfs::is_root() {
        c.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups");
    }
    c.arg("--").arg(program);
    c
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Runs `f` on a plain thread (the blocking PostgreSQL client must not run on an async
/// runtime's thread).
fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R, String> {
    std::thread::spawn(f)
        .join()
        .map_err(|_| "a PostgreSQL client thread panicked".to_string())
}

impl PgCluster {
    /// Creates and starts a server; waits until it takes connections.
    pub fn start() -> Result<Self, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("tereze-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        if tereze_support::procfs::is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
                .map_err(|e| format!("{}: {e}", dir.path().display()))?;
            std::os::unix::fs::chown(&data, Some(NOBODY), Some(NOBODY))
                .map_err(|e| format!("chown {}: {e}", data.display()))?;
        }
        let out = command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "tereze", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let port = free_port()?;
        let mut cluster = Self {
            bin,
            dir,
            port,
            child: None,
        };
        cluster.launch()?;
        Ok(cluster)
    }

    /// Starts `postgres` on the cluster's directory and port; waits until it takes
    /// connections.
    fn launch(&mut self) -> Result<(), String> {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = command(&self.bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg(format!("unix_socket_directories={}", data.display()))
            .args(["-c", "max_connections=300", "-c", "fsync=on"])
            .args(["-c", "synchronous_commit=on", "-c", "shared_buffers=64MB"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let url = self.url("postgres");
            let ok = blocking(move || postgres::Client::connect(&url, postgres::NoTls).is_ok())?;
            if ok {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    return Err(format!("postgres exited ({status}): {}", text.trim()));
                }
            }
            if Instant::now() > deadline {
                return Err("postgres did not take connections within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL to the server (its backends follow): a crash, with no shutdown checkpoint.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data and port (crash recovery replays its WAL);
    /// retried while the killed server's backends still hold its shared memory.
    pub fn start_again(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db` (no password: the test server trusts loopback).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://tereze@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name`; its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!("{name:?}: database names here are [a-z0-9_]"));
        }
        let url = self.url("postgres");
        let sql = format!("CREATE DATABASE {name}");
        blocking(move || {
            postgres::Client::connect(&url, postgres::NoTls)
                .and_then(|mut c| c.batch_execute(&sql))
                .map_err(|e| format!("create database: {e}"))
        })??;
        Ok(self.url(name))
    }

    /// The server's processes: the postmaster and its children (backends, writers), for CPU
    /// accounting.
    pub fn pids(&self) -> Vec<u32> {
        let Some(main) = self.child.as_ref().map(Child::id) else {
            return Vec::new();
        };
        let mut out = vec![main];
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let parent = std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                });
            if parent == Some(main) {
                out.push(pid);
            }
        }
        out
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // setpriv exec'd postgres: this is the postmaster; its backends follow it.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One server for a whole test binary, started on first use on a thread that lives as long
/// as the process (the server dies with it); each test takes its own database. Panics when
/// the server cannot start: it is for tests.
pub fn shared() -> &'static PgCluster {
    static SHARED: std::sync::OnceLock<PgCluster> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(PgCluster::start());
            loop {
                std::thread::park();
            }
        });
        match rx.recv() {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => panic!("cannot start PostgreSQL for the tests: {e}"),
            Err(_) => panic!("cannot start PostgreSQL for the tests"),
        }
    })
}

/// A fresh database on the shared server; its URL.
pub fn fresh_database() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    match shared().create_database(&name) {
        Ok(url) => url,
        Err(e) => panic!("{e}"),
    }
}
