//! The bytes of messages in memory on their way into the store (`limits.max_queue_bytes`): a
//! submission from the moment intake takes it (for the HTTP intake, before its body is read)
//! until the group commit that queues its signed envelopes has answered, and a peer's
//! delivered batch until the commit that stores it has answered. Each caller reserves its
//! bytes before it allocates for them and gives them back when its [`Held`] drops (each
//! request also counts [`PER_REQUEST`]). Intake waits its turn for a few seconds
//! ([`QueueBytes::reserve_until`], first come first served), then is refused (429 /
//! `RESOURCE_EXHAUSTED`); a peer's `Deliver` is refused at once ([`QueueBytes::reserve`]) and
//! its sender's gate pauses. So under an offered load above what the node carries, requests
//! push back instead of piling up in memory: the outbox's length (`limits.max_queue`) only
//! counts what is already on disk.
//! **Invariant:** the bytes held never pass the bound. A request larger than the bound counts
//! as the whole bound, so it passes when nothing else is held.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What any request costs besides its message bytes (its task, its HTTP/2 stream and
/// buffers, the decoded request), counted with them: a queue of small submissions costs about
/// this much each, measured as a few tens of KiB under `tereze bench` (docs/reliability.md).
pub const PER_REQUEST: u64 = 16 * 1024;

/// The bytes held (a semaphore's permits, one per byte) and the bound.
#[derive(Debug)]
pub struct QueueBytes {
    /// One permit per byte not held; FIFO, so a large request waiting is not starved by
    /// small ones arriving after it.
    free: Arc<Semaphore>,
    /// The bound, in bytes (permits).
    max: u32,
    /// Requests refused at the bound, for /metrics.
    refused: AtomicU64,
    /// The most held at once since the start, for /metrics.
    peak: AtomicU64,
}

/// No room for a request's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{held} bytes of messages are on their way into the store, {wanted} more would pass limits.max_queue_bytes = {max}; try again later")]
pub struct Full {
    pub held: u64,
    pub wanted: u64,
    pub max: u64,
}

/// Bytes reserved for one request, given back when dropped.
#[must_use = "dropping the reservation gives the bytes back at once"]
#[derive(Debug)]
pub struct Held {
    permit: OwnedSemaphorePermit,
}

impl QueueBytes {
    /// At most `max` bytes (`limits.max_queue_bytes`; more than 4 GiB counts as 4 GiB).
    pub fn new(max: u64) -> Self {
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        Self {
            free: Arc::new(Semaphore::new(max as usize)),
            max,
            refused: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    /// The permits a request of `n` bytes takes: at most the whole bound.
    fn permits(&self, n: u64) -> u32 {
        u32::try_from(n).unwrap_or(u32::MAX).min(self.max)
    }

    fn taken(&self, permit: OwnedSemaphorePermit) -> Held {
        self.peak.fetch_max(self.held(), Ordering::Relaxed);
        Held { permit }
    }

    fn refuse(&self, n: u64) -> Full {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Full {
            held: self.held(),
            wanted: n,
            max: u64::from(self.max),
        }
    }

    /// Reserves `n` bytes now, or refuses.
    pub fn reserve(&self, n: u64) -> Result<Held, Full> {
        match self.free.clone().try_acquire_many_owned(self.permits(n)) {
            Ok(p) => Ok(self.taken(p)),
            Err(_) => Err(self.refuse(n)),
        }
    }

    /// Reserves `n` bytes, waiting in line until `deadline` for them to be given back, or
    /// refuses.
    pub async fn reserve_until(
        &self,
        n: u64,
        deadline: tokio::time::Instant,
    ) -> Result<Held, Full> {
        let wait = self.free.clone().acquire_many_owned(self.permits(n));
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(Ok(p)) => Ok(self.taken(p)),
            // Timed out (the semaphore is never closed).
            _ => Err(self.refuse(n)),
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        u64::from(self.max).saturating_sub(self.free.available_permits() as u64)
    }

    pub fn max(&self) -> u64 {
        u64::from(self.max)
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Held {
    /// Holds `n` bytes instead (a document became envelopes of another size). Shrinking gives
    /// bytes back; growing takes what is free without waiting, since the work is done and
    /// only waits for the commit: the bound is never passed, at the cost of counting a little
    /// less than is held while the node is full.
    pub fn resize(&mut self, queue: &QueueBytes, n: u64) {
        let want = queue.permits(n) as usize;
        let have = self.permit.num_permits();
        if want < have {
            if let Some(back) = self.permit.split(have - want) {
                drop(back);
            }
        } else if want > have {
            let more = u32::try_from(want - have).unwrap_or(u32::MAX);
            if let Ok(p) = queue.free.clone().try_acquire_many_owned(more) {
                self.permit.merge(p);
                queue.peak.fetch_max(queue.held(), Ordering::Relaxed);
            }
        }
    }
}

impl QueueBytes {
    /// Registers the bytes held, their peak, the bound and the refusals, read at each scrape.
    pub fn register(self: &Arc<Self>, r: &mut prometheus_client::registry::Registry) {
        r.register_collector(Box::new(Gauges(self.clone())));
    }
}

/// [`QueueBytes`] as `/metrics` series.
#[derive(Debug)]
struct Gauges(Arc<QueueBytes>);

impl prometheus_client::collector::Collector for Gauges {
    fn encode(&self, mut e: prometheus_client::encoding::DescriptorEncoder) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        use prometheus_client::metrics::MetricType;
        let q = &self.0;
        for (name, help, v) in [
            ("queue_bytes", "Bytes of messages in memory on their way into the store (submissions and delivered batches before their commit).", q.held()),
            ("queue_bytes_peak", "The most bytes of messages on their way into the store at once since the start.", q.peak()),
            ("queue_bytes_limit", "limits.max_queue_bytes: above it submissions are refused (429) and deliveries answered RESOURCE_EXHAUSTED.", q.max()),
        ] {
            ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        ConstCounter::new(q.refused()).encode(e.encode_descriptor(
            "queue_bytes_refused",
            "Submissions and Deliver calls refused at limits.max_queue_bytes.",
            None,
            MetricType::Counter,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bytes_past_the_bound_are_refused_until_some_are_given_back() {
        let q = QueueBytes::new(100);
        let a = q.reserve(60).expect("fits");
        let err = q.reserve(50).expect_err("60 + 50 > 100");
        assert_eq!(
            err,
            Full {
                held: 60,
                wanted: 50,
                max: 100
            }
        );
        assert!(
            err.to_string().contains("limits.max_queue_bytes = 100"),
            "{err}"
        );
        let b = q.reserve(40).expect("60 + 40 fits");
        assert_eq!(q.held(), 100);
        drop(a);
        assert_eq!(q.held(), 40);
        let _c = q.reserve(50).expect("fits again");
        drop(b);
        assert_eq!((q.held(), q.peak(), q.refused()), (50, 100, 1));
    }

    #[test]
    fn one_request_larger_than_the_bound_passes_alone() {
        let q = QueueBytes::new(100);
        let big = q.reserve(500).expect("alone");
        assert!(q.reserve(1).is_err());
        drop(big);
        assert_eq!(q.held(), 0);
    }

    #[test]
    fn a_resized_reservation_gives_back_what_it_holds_now() {
        let q = QueueBytes::new(100);
        let mut a = q.reserve(10).expect("fits");
        a.resize(&q, 80);
        assert_eq!(q.held(), 80);
        assert!(q.reserve(30).is_err());
        a.resize(&q, 20);
        assert_eq!(q.held(), 20);
        let b = q.reserve(70).expect("fits after shrinking");
        // Growing past the bound takes only what is free: the bound holds.
        a.resize(&q, 50);
        assert_eq!(q.held(), 90);
        drop((a, b));
        assert_eq!(q.held(), 0);
    }

    #[tokio::test]
    async fn a_waiting_reservation_is_served_when_bytes_come_back_or_refused_at_its_deadline() {
        let q = Arc::new(QueueBytes::new(100));
        let a = q.reserve(80).expect("fits");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.reserve_until(50, deadline).await.map(drop) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(a);
        assert_eq!(waiter.await.expect("task"), Ok(()));
        assert_eq!(q.refused(), 0);
        let _b = q.reserve(80).expect("fits");
        let e = q
            .reserve_until(50, tokio::time::Instant::now() + Duration::from_millis(50))
            .await
            .expect_err("nothing comes back");
        assert_eq!((e.held, q.refused()), (80, 1));
    }
}
