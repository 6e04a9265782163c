//! The relay's counters for `/metrics`: deliveries and their outcomes, attachments sent, and
//! the round trip of each peer's `Deliver` calls. The node renders them under the names it
//! always had; the relay only counts.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

/// What the relay counts, since start.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages delivered with a verified receipt (the node's Exchange also counts a hub's
    /// deliveries here).
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead: AtomicU64,
    pub expired: AtomicU64,
    /// Attachment files sent complete, and bytes streamed for them.
    pub attachments_sent: AtomicU64,
    pub attachment_bytes_sent: AtomicU64,
    /// Deliver call round trips by peer (seconds).
    pub deliver_seconds: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    pub fn deliver_took(&self, peer: &str, seconds: f64) {
        self.deliver_seconds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(peer.to_owned())
            .or_default()
            .observe(seconds);
    }
}

/// A Prometheus histogram: cumulative counts per upper bound, sum and count.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    pub counts: [u64; LATENCY_BOUNDS.len()],
    pub sum: f64,
    pub count: u64,
}

/// Upper bounds (seconds) of the latency histograms.
pub const LATENCY_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        for (i, b) in LATENCY_BOUNDS.iter().enumerate() {
            if seconds <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}
