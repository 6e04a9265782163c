//! The data directory's free space and who may still use it (docs/reliability.md, "Disk").
//!
//! Three figures bound the disk: the reserve `limits.min_free_disk_mb` (R), the node's own
//! floor R/2 (F), and the bytes promised to uploads and transfers in flight (P).
//! - New work (intake, uploads, a peer's deliveries and transfers) is taken only while
//!   `free - P >= R`; an upload promises its declared size before its first byte is accepted
//!   (an upload without a size promises chunk by chunk), so parallel uploads cannot together
//!   take more than the space above the reserve. Promises are released as their bytes land.
//! - The node's own writes (receipts, audit, a backlog draining, records of attempts) may use
//!   the band between R and F; under F the store's writer waits for space
//!   ([`DiskWatch::own_write`]) instead of letting the disk run out, so the node stays up,
//!   serves reads and reports itself not ready. A write the disk refuses anyway (another
//!   process took the space in between) still ends the node with 75, once: restarted, it waits
//!   at F instead of failing again.
//!
//! The free space is read afresh (a `statvfs`) by every check, promise, chunk and commit, and
//! sampled once a second for the log and `/metrics`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use tereze_store::committer::Room;

/// Free space of the data directory, as last sampled, and the bytes promised.
#[derive(Debug)]
pub struct DiskWatch {
    dir: PathBuf,
    /// R: under it (less the promises) no new work is taken.
    reserve: u64,
    /// F: under it the node's own writes wait.
    floor: u64,
    /// Bytes available to the node (u64::MAX until the first sample, or if it cannot be read).
    free: AtomicU64,
    /// Bytes promised to uploads and transfers in flight, not yet written.
    promised: AtomicU64,
    /// Uploads and transfers refused, or stopped, for lack of space.
    refusals: AtomicU64,
    /// Whether the store's writer is waiting for space now.
    paused: AtomicBool,
    /// Set when the node shuts down: a writer waiting for space gives up.
    closing: AtomicBool,
    /// Tests set the free space here instead of reading the file system.
    #[cfg(test)]
    pretend: Option<std::sync::Arc<AtomicU64>>,
}

/// Why work is refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "disk-full: the data directory {dir} has {free_mib} MiB free ({promised_mib} MiB of it promised to uploads in flight); {wanted} needs the reserve of {reserve_mib} MiB (limits.min_free_disk_mb) to stay free; retry later"
)]
pub struct DiskLow {
    pub dir: String,
    pub free_mib: u64,
    pub promised_mib: u64,
    pub reserve_mib: u64,
    /// What was asked ("new work", "an upload of 70 MiB"…).
    pub wanted: String,
}

const MIB: u64 = 1024 * 1024;

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
pub(crate) fn available(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Bytes promised to one upload or transfer; what is left of it is released when dropped.
#[must_use = "the promise is released when dropped"]
#[derive(Debug)]
pub struct Promise<'a> {
    of: &'a DiskWatch,
    left: u64,
}

impl Promise<'_> {
    /// Before writing `bytes` of this transfer: whether they fit. Within the promise, only a
    /// disk that something else filled refuses (the free space less every promise under the
    /// floor); past it (an upload without a declared size), the bytes are promised first as
    /// new work.
    pub fn before_write(&mut self, bytes: u64) -> Result<(), DiskLow> {
        if bytes > self.left {
            let more = bytes - self.left;
            self.of.take(more, "the next chunk of an upload")?;
            self.left += more;
        }
        let free = self.of.free_now();
        let promised = self.of.promised.load(Ordering::Relaxed);
        if free.saturating_sub(promised) < self.of.floor {
            self.of.refusals.fetch_add(1, Ordering::Relaxed);
            return Err(self
                .of
                .low(free, "an upload in flight (the disk filled under it)"));
        }
        Ok(())
    }

    /// `bytes` of this transfer are on disk now: the free space shows them.
    pub fn landed(&mut self, bytes: u64) {
        let n = bytes.min(self.left);
        self.left -= n;
        self.of.promised.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Drop for Promise<'_> {
    fn drop(&mut self) {
        self.of.promised.fetch_sub(self.left, Ordering::Relaxed);
    }
}

impl DiskWatch {
    pub fn new(dir: &Path, reserve_mib: u64) -> Self {
        let reserve = reserve_mib.saturating_mul(MIB);
        let w = Self {
            dir: dir.to_path_buf(),
            reserve,
            floor: reserve / 2,
            free: AtomicU64::new(u64::MAX),
            promised: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            #[cfg(test)]
            pretend: None,
        };
        w.sample();
        w
    }

    /// Reads the free space now (without storing it).
    fn free_now(&self) -> u64 {
        #[cfg(test)]
        if let Some(p) = &self.pretend {
            return p.load(Ordering::Relaxed);
        }
        match available(&self.dir) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the free space");
                u64::MAX
            }
        }
    }

    /// Reads the free space now and keeps it for [`check`](Self::check).
    pub fn sample(&self) {
        self.free.store(self.free_now(), Ordering::Relaxed);
    }

    /// Bytes free at the last sample (`None` if unknown).
    pub fn free(&self) -> Option<u64> {
        Some(self.free.load(Ordering::Relaxed)).filter(|b| *b != u64::MAX)
    }

    /// The reserve (R), in bytes.
    pub fn reserve(&self) -> u64 {
        self.reserve
    }

    /// The node's own floor (F), in bytes.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Bytes promised to uploads and transfers in flight.
    pub fn promised(&self) -> u64 {
        self.promised.load(Ordering::Relaxed)
    }

    /// Uploads and transfers refused or stopped for lack of space, since the start.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Whether the store's writer waits for space now.
    pub fn writes_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    fn low(&self, free: u64, wanted: impl Into<String>) -> DiskLow {
        DiskLow {
            dir: self.dir.display().to_string(),
            free_mib: free / MIB,
            promised_mib: self.promised() / MIB,
            reserve_mib: self.reserve / MIB,
            wanted: wanted.into(),
        }
    }

    /// Whether new work may be taken: the free space now, less the promises. Read afresh (a
    /// `statvfs`, microseconds) so that a burst of intake between two samples cannot take the
    /// node's own band.
    pub fn check(&self) -> Result<(), DiskLow> {
        let free = self.free_now();
        self.free.store(free, Ordering::Relaxed);
        if free.saturating_sub(self.promised()) >= self.reserve {
            return Ok(());
        }
        Err(self.low(free, "new work"))
    }

    /// Promises `bytes` to an upload or transfer about to begin, if they fit above the reserve
    /// with every other promise; reads the free space now.
    pub fn promise(&self, bytes: u64) -> Result<Promise<'_>, DiskLow> {
        self.take(bytes, format!("an upload of {} MiB", bytes.div_ceil(MIB)))?;
        Ok(Promise {
            of: self,
            left: bytes,
        })
    }

    fn take(&self, bytes: u64, wanted: impl Into<String>) -> Result<(), DiskLow> {
        let free = self.free_now();
        let mut refused = false;
        let r = self
            .promised
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                let after = free.saturating_sub(p).checked_sub(bytes);
                refused = !matches!(after, Some(a) if a >= self.reserve);
                (!refused).then(|| p.saturating_add(bytes))
            });
        if r.is_err() {
            self.refusals.fetch_add(1, Ordering::Relaxed);
            return Err(self.low(free, wanted));
        }
        Ok(())
    }

    /// Whether the store's writer may commit now: only while the free space is at the floor
    /// or above. Reads the free space now; remembers a pause for `/readyz` and the metrics.
    pub fn own_write(&self) -> Room {
        let free = self.free_now();
        if free >= self.floor {
            self.paused.store(false, Ordering::Relaxed);
            return Room::Go;
        }
        if self.closing.load(Ordering::Relaxed) {
            return Room::GiveUp;
        }
        if !self.paused.swap(true, Ordering::Relaxed) {
            tracing::error!(
                dir = %self.dir.display(),
                free_mib = free / MIB,
                floor_mib = self.floor / MIB,
                "the store's writes wait for space: the free space is under the node's own floor (half of limits.min_free_disk_mb); reads are served"
            );
        }
        Room::Wait(format!(
            "paused: the data directory {} has {} MiB free, under the node's own floor of {} MiB (half of limits.min_free_disk_mb); writes resume when space returns",
            self.dir.display(),
            free / MIB,
            self.floor / MIB
        ))
    }

    /// Samples every second until `stop`; says once when the node stops and resumes taking
    /// work. Once `stop` is cancelled, a writer waiting for space gives up.
    pub async fn watch(&self, stop: CancellationToken) {
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
        self.closing.store(true, Ordering::Relaxed);
    }
}

impl DiskWatch {
    /// Registers the free space, the reserve, the floor, the bytes promised, the refusals and
    /// the writers' pause, read at each scrape.
    pub fn register(self: &std::sync::Arc<Self>, r: &mut prometheus_client::registry::Registry) {
        r.register_collector(Box::new(Gauges(self.clone())));
    }
}

/// [`DiskWatch`] as `/metrics` series.
#[derive(Debug)]
struct Gauges(std::sync::Arc<DiskWatch>);

impl prometheus_client::collector::Collector for Gauges {
    fn encode(&self, mut e: prometheus_client::encoding::DescriptorEncoder) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        use prometheus_client::metrics::MetricType;
        let d = &self.0;
        for (name, help, v) in [
            (
                "disk_free_bytes",
                "Free space of the data directory's file system (last sample).",
                d.free().unwrap_or(0),
            ),
            (
                "disk_reserve_bytes",
                "Free space under which no new work is taken (limits.min_free_disk_mb).",
                d.reserve(),
            ),
            (
                "disk_floor_bytes",
                "Free space under which the node's own writes wait (half the reserve).",
                d.floor(),
            ),
            (
                "disk_promised_bytes",
                "Bytes promised to uploads and transfers in flight, not yet written.",
                d.promised(),
            ),
        ] {
            ConstGauge::new(v).encode(e.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)?;
        }
        ConstCounter::new(d.refusals()).encode(e.encode_descriptor(
            "disk_refusals",
            "Uploads and transfers refused or stopped for lack of space.",
            None,
            MetricType::Counter,
        )?)?;
        ConstGauge::new(u64::from(d.writes_paused())).encode(e.encode_descriptor(
            "disk_writes_paused",
            "1 while the store's writes wait for space (under the floor).",
            None,
            MetricType::Gauge,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A watch of `reserve_mib` over a disk whose free space the test sets.
    fn pretending(reserve_mib: u64, free_mib: u64) -> (DiskWatch, Arc<AtomicU64>) {
        let free = Arc::new(AtomicU64::new(free_mib * MIB));
        let mut w = DiskWatch::new(Path::new("/nonexistent/tereze"), reserve_mib);
        w.pretend = Some(free.clone());
        w.sample();
        (w, free)
    }

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
        assert_eq!(w.own_write(), Room::Go);
    }

    #[test]
    fn parallel_uploads_are_promised_only_the_space_above_the_reserve() {
        // 300 MiB free, 100 reserved: six uploads of 70 MiB, two fit (140 of 200).
        let (w, _) = pretending(100, 300);
        let held: Vec<_> = (0..6).filter_map(|_| w.promise(70 * MIB).ok()).collect();
        assert_eq!(held.len(), 2);
        assert_eq!(w.promised(), 140 * MIB);
        assert_eq!(w.refusals(), 4);
        let e = w.promise(70 * MIB).expect_err("no room");
        assert!(e.to_string().contains("an upload of 70 MiB"), "{e}");
        assert!(e.to_string().contains("140 MiB of it promised"), "{e}");
        // The promises count against new work too: 300 - 140 is over 100, 300 - 210 would not be.
        assert!(w.check().is_ok());
        drop(held);
        assert_eq!(w.promised(), 0);
        assert!(w.promise(190 * MIB).is_ok());
    }

    #[test]
    fn bytes_that_land_release_their_promise() {
        let (w, free) = pretending(100, 300);
        let mut p = w.promise(150 * MIB).expect("fits");
        for _ in 0..10 {
            p.before_write(10 * MIB).expect("within the promise");
            free.fetch_sub(10 * MIB, Ordering::Relaxed);
            p.landed(10 * MIB);
        }
        assert_eq!(w.promised(), 50 * MIB);
        drop(p);
        assert_eq!(w.promised(), 0);
    }

    #[test]
    fn an_upload_without_a_size_is_promised_chunk_by_chunk_up_to_the_reserve() {
        let (w, free) = pretending(100, 130);
        let mut p = w.promise(0).expect("nothing yet");
        let mut written = 0;
        while p.before_write(10 * MIB).is_ok() {
            free.fetch_sub(10 * MIB, Ordering::Relaxed);
            p.landed(10 * MIB);
            written += 10;
        }
        assert_eq!(written, 30);
        assert!(free.load(Ordering::Relaxed) >= 100 * MIB);
    }

    #[test]
    fn a_disk_filled_under_an_upload_stops_it_at_the_floor() {
        let (w, free) = pretending(100, 300);
        let mut p = w.promise(100 * MIB).expect("fits");
        p.before_write(MIB).expect("room");
        // Another process takes 160 MiB: 140 free, 100 promised, 40 above nothing: under 50.
        free.store(140 * MIB, Ordering::Relaxed);
        let e = p.before_write(MIB).expect_err("stopped");
        assert!(e.to_string().contains("filled under it"), "{e}");
    }

    #[test]
    fn own_writes_go_down_to_half_the_reserve_then_wait_and_give_up_at_shutdown() {
        let (w, free) = pretending(100, 80);
        assert!(w.check().is_err(), "new work is refused under the reserve");
        assert_eq!(w.own_write(), Room::Go, "own writes use the band down to F");
        assert!(!w.writes_paused());
        free.store(49 * MIB, Ordering::Relaxed);
        match w.own_write() {
            Room::Wait(why) => assert!(why.contains("floor of 50 MiB"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(w.writes_paused());
        w.closing.store(true, Ordering::Relaxed);
        assert_eq!(w.own_write(), Room::GiveUp);
        free.store(60 * MIB, Ordering::Relaxed);
        assert_eq!(w.own_write(), Room::Go);
        assert!(!w.writes_paused());
    }
}
