//! The bytes of messages in memory on their way into the store (`limits.max_queue_bytes`): a
//! submission's document from the moment intake takes it until the group commit that queues
//! its signed envelopes has answered, and a peer's delivered batch until the commit that
//! stores it has answered. Each caller reserves its bytes before any work and gives them back
//! when its [`Held`] drops (each request also counts [`PER_REQUEST`]); past the bound it is refused (429 / `RESOURCE_EXHAUSTED`) before
//! the node allocates for it. So under an offered load above what the node carries, the
//! requests waiting for the store push back instead of piling up in memory: the outbox's
//! length (`limits.max_queue`) only counts what is already on disk.
//! **Invariant:** the bytes held never pass the bound, except by one request alone (a request
//! larger than the bound is taken when nothing else is held, so every request can pass).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What any request costs besides its message bytes (its task, its HTTP/2 stream and
/// buffers, the decoded request), counted with them: a queue of small submissions costs about
/// this much each, measured as a few tens of KiB under `tereze bench` (docs/reliability.md).
pub(crate) const PER_REQUEST: u64 = 16 * 1024;

/// The bytes held and the bound.
#[derive(Debug)]
pub(crate) struct QueueBytes {
    held: Mutex<u64>,
    max: u64,
    /// Requests refused at the bound, for /metrics.
    refused: AtomicU64,
    /// The most held at once since the start, for /metrics.
    peak: AtomicU64,
}

/// No room for a request's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{held} bytes of messages are on their way into the store, {wanted} more would pass limits.max_queue_bytes = {max}; try again later")]
pub(crate) struct Full {
    pub(crate) held: u64,
    pub(crate) wanted: u64,
    pub(crate) max: u64,
}

/// Bytes reserved for one request, given back when dropped.
#[must_use = "dropping the reservation gives the bytes back at once"]
#[derive(Debug)]
pub(crate) struct Held<'a> {
    queue: &'a QueueBytes,
    n: u64,
}

impl QueueBytes {
    /// At most `max` bytes (`limits.max_queue_bytes`).
    pub(crate) fn new(max: u64) -> Self {
        Self {
            held: Mutex::new(0),
            max,
            refused: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // A plain number, consistent after every statement: a panic elsewhere cannot leave it
        // half-changed.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves `n` bytes, or refuses.
    pub(crate) fn reserve(&self, n: u64) -> Result<Held<'_>, Full> {
        let mut held = self.lock();
        if *held > 0 && held.saturating_add(n) > self.max {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Full {
                held: *held,
                wanted: n,
                max: self.max,
            });
        }
        *held += n;
        self.peak.fetch_max(*held, Ordering::Relaxed);
        Ok(Held { queue: self, n })
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> u64 {
        *self.lock()
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Held<'_> {
    /// Holds `n` bytes instead (a document became larger envelopes): growing is never
    /// refused, since the work is done and only waits for the commit, but it counts against
    /// the next reservations.
    pub(crate) fn resize(&mut self, n: u64) {
        let mut held = self.queue.lock();
        *held = held.saturating_sub(self.n).saturating_add(n);
        self.queue.peak.fetch_max(*held, Ordering::Relaxed);
        self.n = n;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut held = self.queue.lock();
        *held = held.saturating_sub(self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        a.resize(80);
        assert_eq!(q.held(), 80);
        assert!(q.reserve(30).is_err());
        drop(a);
        assert_eq!(q.held(), 0);
    }
}
