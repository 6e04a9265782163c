//! Processes the suite starts: each in its own process group, registered so that a deadline,
//! a signal or an error stops them (by their own group id, nothing else), and commands run
//! with a time limit.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Process groups started by this run and not yet stopped.
static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Temporary directories to remove when the run is cut short (a signal or the deadline skips
/// their owners' `Drop`).
static DIRS: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());

/// Registers a temporary directory for removal by [`stop_all_groups`].
pub fn remove_on_abort(dir: &std::path::Path) {
    if let Ok(mut d) = DIRS.lock() {
        d.push(dir.to_path_buf());
    }
}

/// Starts `cmd` as the leader of a new process group and registers the group.
pub fn spawn_group(cmd: &mut Command) -> Result<Child> {
    let child = cmd
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if let Ok(mut g) = GROUPS.lock() {
        g.push(child.id());
    }
    Ok(child)
}

fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Stops one registered group: SIGTERM, then SIGKILL after `grace`; reaps the leader.
pub fn stop_group(child: &mut Child, grace: Duration) {
    let pgid = child.id();
    signal_group(pgid, "-TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) && !group_alive(pgid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if group_alive(pgid) {
        signal_group(pgid, "-KILL");
    }
    let _ = child.kill();
    let _ = child.wait();
    forget_group(pgid);
}

/// Drops a group from the registry (it has stopped).
pub fn forget_group(pgid: u32) {
    if let Ok(mut g) = GROUPS.lock() {
        g.retain(|p| *p != pgid);
    }
}

/// Stops every registered group (on a deadline or a signal), the last started first (a
/// broker before its epmd: a broker stopping without its epmd starts a new one): SIGTERM,
/// up to 8 s, SIGKILL; then removes the registered temporary directories that are still
/// there.
pub fn stop_all_groups() {
    let groups: Vec<u32> = GROUPS.lock().map(|g| g.clone()).unwrap_or_default();
    for g in groups.iter().rev() {
        signal_group(*g, "-TERM");
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline && group_alive(*g) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if group_alive(*g) {
            signal_group(*g, "-KILL");
        }
    }
    if let Ok(mut g) = GROUPS.lock() {
        g.clear();
    }
    let dirs: Vec<std::path::PathBuf> = DIRS.lock().map(|d| d.clone()).unwrap_or_default();
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Runs `cmd` to completion in its own group, killed after `limit`; returns its output.
pub fn run_limited(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let program = format!("{:?}", cmd.get_program());
    let mut child = spawn_group(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut buf);
        }
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            stop_group(&mut child, Duration::from_secs(2));
            bail!("{program} did not finish within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    forget_group(child.id());
    let stdout = out_reader.join().map_err(|_| anyhow!("reader thread"))?;
    let stderr = err_reader.join().map_err(|_| anyhow!("reader thread"))?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Like [`run_limited`], and fails with the command's stderr unless it exits 0.
pub fn run_ok(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let program = format!("{:?}", cmd.get_program());
    let out = run_limited(cmd, limit)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(8).collect();
        bail!(
            "{program} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(out)
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// A base port with `count` consecutive free ports on 127.0.0.1 (for the node bench's range).
pub fn free_range(count: u16) -> Result<u16> {
    for base in (20_000u16..40_000).step_by(997) {
        let all_free =
            (0..count).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return Ok(base);
        }
    }
    bail!("no range of {count} free loopback ports")
}

pub use tereze_support::procfs::cpu_seconds;

/// Resident set size in MB (VmRSS), from /proc.
pub fn rss_mb(pid: u32) -> Option<f64> {
    tereze_support::procfs::rss_kib(pid).map(|kib| kib as f64 / 1024.0)
}

/// Whether `program` is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Machine-wide CPU ticks from /proc/stat: (busy without steal, steal).
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    Some((at(0) + at(1) + at(2) + at(5) + at(6), at(7)))
}

/// CPU ticks of this process and of its children that have been waited for.
pub fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let at = |i: usize| f.get(i).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
    // utime stime cutime cstime are fields 14–17, i.e. 11–14 after the command name.
    Some(at(11) + at(12) + at(13) + at(14))
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
