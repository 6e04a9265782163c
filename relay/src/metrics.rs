//! The relay's series in `/metrics`: deliveries and their outcomes, attachments sent, the
//! round trip of each peer's `Deliver` calls and, read at each scrape, each peer's gate and
//! queue. The relay counts and registers them into the node's registry
//! ([`Metrics::register`], docs/decisions/0012-metrics-registry.md) under the names they
//! always had.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::Host;

/// What the relay counts, since start.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages delivered with a verified receipt (the node's Exchange also counts a hub's
    /// deliveries here).
    pub delivered: Counter,
    pub failed_attempts: Counter,
    pub dead: Counter,
    pub expired: Counter,
    /// Attachment files sent complete, and bytes streamed for them.
    pub attachments_sent: Counter,
    pub attachment_bytes_sent: Counter,
    /// Deliver call round trips by peer (seconds).
    deliver_seconds: Mutex<BTreeMap<String, Histogram>>,
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

    /// Registers the relay's counters, and its gates and queues read through `host` at each
    /// scrape. Help texts without their final full stop: the registry adds it.
    pub fn register(&self, r: &mut Registry, host: Weak<dyn Host>) {
        let counters = [
            ("delivered", "Messages delivered with a verified receipt", &self.delivered),
            ("failed_attempts", "Delivery attempts that failed and will be retried", &self.failed_attempts),
            ("dead", "Messages that became dead", &self.dead),
            ("expired", "Messages that expired", &self.expired),
            ("attachments_sent", "Transfers this node streamed that the next hop answered complete", &self.attachments_sent),
            ("attachment_bytes_sent", "Attachment bytes this node streamed to next hops (a part sent again after a refusal or a break counts again)", &self.attachment_bytes_sent),
        ];
        for (name, help, counter) in counters {
            r.register(name, help, counter.clone());
        }
        r.register_collector(Box::new(PeerSeries { host }));
    }

    /// `tereze_deliver_seconds`, written by hand after the registry: prometheus-client's
    /// histogram puts `le` before the family's labels, and this series keeps its labels in
    /// the order it always had (`peer`, then `le`) and its bounds as written (`le="1"`).
    pub fn encode_deliver_seconds(&self, out: &mut String) -> fmt::Result {
        use std::fmt::Write as _;
        out.push_str("# HELP tereze_deliver_seconds Round trip of Deliver calls to each peer (a batch, its receipts included).\n# TYPE tereze_deliver_seconds histogram\n");
        let histograms = self
            .deliver_seconds
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (peer, h) in histograms.iter() {
            for (b, c) in LATENCY_BOUNDS.iter().zip(h.counts.iter()) {
                writeln!(
                    out,
                    "tereze_deliver_seconds_bucket{{peer=\"{peer}\",le=\"{b}\"}} {c}"
                )?;
            }
            writeln!(
                out,
                "tereze_deliver_seconds_bucket{{peer=\"{peer}\",le=\"+Inf\"}} {}",
                h.count
            )?;
            writeln!(
                out,
                "tereze_deliver_seconds_sum{{peer=\"{peer}\"}} {}",
                h.sum
            )?;
            writeln!(
                out,
                "tereze_deliver_seconds_count{{peer=\"{peer}\"}} {}",
                h.count
            )?;
        }
        Ok(())
    }
}

/// A latency histogram: cumulative counts per upper bound, sum and count.
#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; LATENCY_BOUNDS.len()],
    sum: f64,
    count: u64,
}

/// Upper bounds (seconds) of the latency histograms.
const LATENCY_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, b) in LATENCY_BOUNDS.iter().enumerate() {
            if seconds <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Each peer's gate (backoff, calls by result) and queue, read at scrape time.
struct PeerSeries {
    host: Weak<dyn Host>,
}

impl fmt::Debug for PeerSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerSeries")
    }
}

impl Collector for PeerSeries {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let Some(host) = self.host.upgrade() else {
            return Ok(());
        };
        let now = std::time::Instant::now();
        let gates = host.peers().gates();
        let mut m = e.encode_descriptor(
            "peer_backoff_seconds",
            "Time left before the relay calls this peer again, after calls it did not take (0: it answers).",
            None,
            MetricType::Gauge,
        )?;
        for (peer, g) in &gates {
            // Milliseconds are the precision the pause has ever been shown with.
            let left = (g.pause_left(now).as_secs_f64() * 1000.0).round() / 1000.0;
            ConstGauge::new(left).encode(m.encode_family(&[("peer", peer.as_str())])?)?;
        }
        let mut m = e.encode_descriptor(
            "peer_calls",
            "Deliver and ReturnReceipts calls to each peer, by result (answered, failed: no connection, timeout or a status instead of outcomes).",
            None,
            MetricType::Counter,
        )?;
        for (peer, g) in &gates {
            for (result, n) in [("answered", &g.answered_calls), ("failed", &g.failed_calls)] {
                ConstCounter::new(n.load(Ordering::Relaxed))
                    .encode(m.encode_family(&[("peer", peer.as_str()), ("result", result)])?)?;
            }
        }
        let mut m = e.encode_descriptor(
            "peer_queue_messages",
            "Messages queued per next hop.",
            None,
            MetricType::Gauge,
        )?;
        let store = host.committer().store();
        for peer in store.peers_with_queue().unwrap_or_default() {
            let n = store.queued(&peer).unwrap_or(0);
            ConstGauge::new(n).encode(m.encode_family(&[("peer", peer.as_str())])?)?;
        }
        Ok(())
    }
}
