//! Crash durability of the embedded engines: a writer process acknowledges 4 KiB records only
//! after the engine says they are durable, and is killed with SIGKILL at random moments; after
//! every kill, every acknowledged record must be present and intact. (SIGKILL tests crash
//! consistency and "acknowledged before written"; power loss needs fsync on top, which each
//! engine's durability call provides — see docs/decisions/0004-embedded-store.md.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn tereze() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tereze"))
}

/// xorshift64*: reproducible pseudo-random kill times from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn crash_repeatedly(engine: &str, rounds: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(1);
    let mut rng = Rng(seed);
    let mut acked: Option<u64> = None;
    let mut kills_with_progress = 0;
    for round in 0..rounds {
        let start = acked.map_or(0, |a| a + 1);
        let mut child = tereze()
            .args([
                "store", "probe", "--engine", engine, "--batch", "16", "--start",
            ])
            .arg(start.to_string())
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("probe starts");
        let last = Arc::new(Mutex::new(None::<u64>));
        let reader = {
            let last = last.clone();
            let stdout = child.stdout.take().expect("piped");
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(n) = line.strip_prefix("acked ").and_then(|n| n.parse().ok()) {
                        *last.lock().expect("lock") = Some(n);
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(80 + rng.next() % 400));
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        reader.join().expect("reader");
        let got = *last.lock().expect("lock");
        if got.is_some() {
            kills_with_progress += 1;
            acked = got;
        }
        if let Some(through) = acked {
            let out = tereze()
                .args(["store", "probe", "--engine", engine, "--check-through"])
                .arg(through.to_string())
                .arg("--dir")
                .arg(dir.path())
                .output()
                .expect("check runs");
            assert!(
                out.status.success(),
                "{engine}, round {round}, seed {seed}: acknowledged records 0..={through} did not all survive SIGKILL: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert!(
        kills_with_progress * 2 >= rounds,
        "{engine}: the writer made progress before only {kills_with_progress} of {rounds} kills"
    );
}

#[test]
fn redb_keeps_every_acknowledged_record_through_sigkill() {
    crash_repeatedly("redb", 12);
}

#[test]
fn sled_keeps_every_acknowledged_record_through_sigkill() {
    crash_repeatedly("sled", 12);
}
