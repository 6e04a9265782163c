//! A peer's gate: after a call to the peer that failed as a whole (no connection, a timeout, a
//! handshake that never finished, a status instead of outcomes), every relay worker of that
//! peer pauses for an exponentially growing time with jitter (`relay.min_backoff_ms` up to
//! `relay.max_backoff_ms`, jitter included: `backoff`). When the pause ends one worker probes with a real batch; the
//! others wait for its answer. A peer that is down therefore costs one call per pause,
//! whatever the load, instead of one call per message: no retry storm when it returns, and
//! the messages queued meanwhile are not charged attempts they never had. The pause shows in
//! `/metrics` (`tereze_peer_backoff_seconds`, `tereze_peer_failed_calls_total`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a worker may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    Go,
    Wait(Duration),
}

#[derive(Debug, Default)]
struct Pause {
    /// Calls failed in a row.
    failures: u32,
    /// Until when the peer is left alone; `None` while it answers.
    until: Option<Instant>,
    /// The worker probing after the pause.
    prober: Option<usize>,
}

/// One peer's gate, shared by its workers.
#[derive(Debug)]
pub struct Gate {
    pause: Mutex<Pause>,
    min: Duration,
    max: Duration,
    /// Calls that failed as a whole, since start.
    pub failed_calls: AtomicU64,
    /// Calls answered, since start.
    pub answered_calls: AtomicU64,
    /// Most messages per call now: halved after a call that timed out (a slow peer gets
    /// batches it can answer in time), doubled after each answer up to `max_batch`.
    batch: AtomicUsize,
    max_batch: usize,
}

/// How often a worker that waits on another's probe looks again.
const PROBE_POLL: Duration = Duration::from_millis(100);

impl Gate {
    pub(crate) fn new(min: Duration, max: Duration, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        Self {
            pause: Mutex::new(Pause::default()),
            min,
            max: max.max(min),
            failed_calls: AtomicU64::new(0),
            answered_calls: AtomicU64::new(0),
            batch: AtomicUsize::new(max_batch),
            max_batch,
        }
    }

    /// Most messages to put in the next call.
    pub(crate) fn batch(&self) -> usize {
        self.batch.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pause> {
        self.pause.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `worker` may call the peer now, or how long to wait.
    pub(crate) fn enter(&self, worker: usize, now: Instant) -> Pass {
        let mut p = self.lock();
        let Some(until) = p.until else {
            return Pass::Go;
        };
        if now < until {
            return Pass::Wait(until - now);
        }
        match p.prober {
            Some(w) if w != worker => Pass::Wait(PROBE_POLL),
            _ => {
                p.prober = Some(worker);
                Pass::Go
            }
        }
    }

    /// Whether no pause holds the peer now (nothing is probed or changed: for calls on the
    /// side, such as the evidence sent after the envelopes).
    pub(crate) fn is_open(&self, now: Instant) -> bool {
        self.lock().until.is_none_or(|until| now >= until)
    }

    /// The peer answered a call: the gate opens.
    pub(crate) fn answered(&self) {
        self.answered_calls.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .batch
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_mul(2).min(self.max_batch))
            });
        let mut p = self.lock();
        if p.until.is_some() {
            tracing::info!(after_failures = p.failures, "peer answers again");
        }
        *p = Pause::default();
    }

    /// A call failed as a whole (`timed_out`: it got no answer in time): the next pause,
    /// longer than the last.
    pub(crate) fn failed(&self, now: Instant, timed_out: bool) -> Duration {
        self.failed_calls.fetch_add(1, Ordering::Relaxed);
        if timed_out {
            let _ = self
                .batch
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some((b / 2).max(1))
                });
        }
        let mut p = self.lock();
        p.failures = p.failures.saturating_add(1);
        let delay = tereze_support::backoff::pause(self.min, self.max, p.failures);
        p.until = Some(now + delay);
        p.prober = None;
        delay
    }

    /// Time left in the current pause (zero while the peer answers or a probe is due).
    pub fn pause_left(&self, now: Instant) -> Duration {
        self.lock()
            .until
            .map(|u| u.saturating_duration_since(now))
            .unwrap_or_default()
    }

    /// Calls failed in a row.
    pub(crate) fn failures(&self) -> u32 {
        self.lock().failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate::new(Duration::from_millis(200), Duration::from_secs(5), 256)
    }

    #[test]
    fn an_open_gate_lets_every_worker_through() {
        let g = gate();
        let now = Instant::now();
        assert_eq!(g.enter(0, now), Pass::Go);
        assert_eq!(g.enter(1, now), Pass::Go);
    }

    #[test]
    fn failures_pause_all_workers_for_growing_times_up_to_the_maximum() {
        let g = gate();
        let now = Instant::now();
        let mut last = Duration::ZERO;
        let mut pauses = Vec::new();
        for _ in 0..12 {
            let d = g.failed(now, false);
            pauses.push(d);
            assert!(d <= Duration::from_secs(5), "never above the cap: {d:?}");
            assert!(matches!(g.enter(0, now), Pass::Wait(w) if w == d));
            assert!(matches!(g.enter(3, now), Pass::Wait(_)));
            last = d;
        }
        // Jitter adds up to one more delay; the base doubles until the cap, where pauses
        // spread over its upper half.
        assert!(pauses[0] < Duration::from_millis(401), "{pauses:?}");
        assert!(last >= Duration::from_millis(2_500), "{pauses:?}");
        assert_eq!(g.failures(), 12);
        assert_eq!(g.failed_calls.load(Ordering::Relaxed), 12);
    }

    #[test]
    fn after_the_pause_one_worker_probes_and_the_others_wait_for_its_answer() {
        let g = gate();
        let now = Instant::now();
        let d = g.failed(now, false);
        let later = now + d;
        assert_eq!(g.enter(2, later), Pass::Go);
        assert_eq!(g.enter(0, later), Pass::Wait(PROBE_POLL));
        // The prober may come back (it found nothing to send the first time).
        assert_eq!(g.enter(2, later), Pass::Go);
        g.answered();
        assert_eq!(g.enter(0, later), Pass::Go);
        assert_eq!(g.failures(), 0);
        assert_eq!(g.pause_left(later), Duration::ZERO);
    }

    #[test]
    fn a_failed_probe_pauses_longer() {
        let g = gate();
        let now = Instant::now();
        let first = g.failed(now, false);
        assert_eq!(g.enter(1, now + first), Pass::Go);
        let second = g.failed(now + first, false);
        assert!(g.pause_left(now + first) == second);
        assert!(matches!(g.enter(1, now + first), Pass::Wait(_)));
        assert_eq!(g.failures(), 2);
    }

    #[test]
    fn timeouts_halve_the_batch_and_answers_double_it_back() {
        let g = gate();
        let now = Instant::now();
        assert_eq!(g.batch(), 256);
        g.failed(now, false);
        assert_eq!(g.batch(), 256, "a refused connection says nothing of speed");
        for want in [128, 64, 32, 16, 8, 4, 2, 1, 1] {
            g.failed(now, true);
            assert_eq!(g.batch(), want);
        }
        for want in [2, 4, 8, 16, 32, 64, 128, 256, 256] {
            g.answered();
            assert_eq!(g.batch(), want);
        }
    }
}
