//! The data directory's free space, sampled once a second: below `limits.min_free_disk_mb`
//! the node takes no new work (the national intake answers 503 with `Retry-After`, the
//! Exchange UNAVAILABLE), so the store is not driven into a full disk in the middle of a
//! commit. What is already queued keeps moving. A write the disk refuses anyway (another
//! process filled it) ends the node with exit status 75, for its service manager to restart it
//! on a reopened store (docs/reliability.md).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Free space of the data directory, as last sampled.
#[derive(Debug)]
pub(crate) struct DiskWatch {
    dir: PathBuf,
    reserve: u64,
    /// Bytes available to the node (u64::MAX until the first sample, or if it cannot be read).
    free: AtomicU64,
}

/// Why new work is refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "disk-full: the data directory {dir} has {free_mib} MiB free, under the reserve of {reserve_mib} MiB (limits.min_free_disk_mb); retry later"
)]
pub(crate) struct DiskLow {
    pub(crate) dir: String,
    pub(crate) free_mib: u64,
    pub(crate) reserve_mib: u64,
}

const MIB: u64 = 1024 * 1024;

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
pub(crate) fn available(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

impl DiskWatch {
    pub(crate) fn new(dir: &Path, reserve_mib: u64) -> Self {
        let w = Self {
            dir: dir.to_path_buf(),
            reserve: reserve_mib.saturating_mul(MIB),
            free: AtomicU64::new(u64::MAX),
        };
        w.sample();
        w
    }

    /// Reads the free space now.
    pub(crate) fn sample(&self) {
        match available(&self.dir) {
            Ok(b) => self.free.store(b, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the free space");
                self.free.store(u64::MAX, Ordering::Relaxed);
            }
        }
    }

    /// Bytes free at the last sample (`None` if unknown).
    pub(crate) fn free(&self) -> Option<u64> {
        Some(self.free.load(Ordering::Relaxed)).filter(|b| *b != u64::MAX)
    }

    /// Whether new work may be taken.
    pub(crate) fn check(&self) -> Result<(), DiskLow> {
        let free = self.free.load(Ordering::Relaxed);
        if free >= self.reserve {
            return Ok(());
        }
        Err(DiskLow {
            dir: self.dir.display().to_string(),
            free_mib: free / MIB,
            reserve_mib: self.reserve / MIB,
        })
    }

    /// Whether `bytes` more (a file about to arrive) still leave the reserve free; reads the
    /// free space now.
    pub(crate) fn check_room(&self, bytes: u64) -> Result<(), DiskLow> {
        let free = available(&self.dir).unwrap_or(u64::MAX);
        if free.saturating_sub(bytes) >= self.reserve {
            return Ok(());
        }
        Err(DiskLow {
            dir: self.dir.display().to_string(),
            free_mib: free / MIB,
            reserve_mib: (self.reserve.saturating_add(bytes)) / MIB,
        })
    }

    /// Samples every second until `stop`; says once when the node stops and resumes taking
    /// work.
    pub(crate) async fn watch(&self, stop: CancellationToken) {
        let mut low = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            self.sample();
            match (self.check(), low) {
                (Err(e), false) => {
                    tracing::error!(error = %e, "no new work is taken until space returns");
                    low = true;
                }
                (Ok(()), true) => {
                    tracing::info!(dir = %self.dir.display(), "disk space returned: taking new work again");
                    low = false;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_above_the_free_space_refuses_and_names_the_figures() {
        let dir = tempfile::tempdir().expect("dir");
        let free = available(dir.path()).expect("statvfs");
        assert!(free > 0);
        assert!(DiskWatch::new(dir.path(), 0).check().is_ok());
        let huge = DiskWatch::new(dir.path(), u64::MAX / MIB);
        let e = huge.check().expect_err("refused");
        assert_eq!(e.free_mib, free / MIB);
        assert!(
            e.to_string().starts_with("disk-full: the data directory"),
            "{e}"
        );
        assert!(e.to_string().contains("limits.min_free_disk_mb"), "{e}");
    }

    #[test]
    fn an_unreadable_directory_does_not_stop_work() {
        let w = DiskWatch::new(Path::new("/nonexistent/tereze"), 100);
        assert_eq!(w.free(), None);
        assert!(w.check().is_ok());
    }
}
