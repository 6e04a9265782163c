//! The node's `/metrics`: one prometheus-client [`Registry`], built when the node opens, into
//! which each component registers its own series beside its own code (the relay in
//! its crate, the doors in `doors.rs`, `calls.rs` and `national.rs`, the disk in `disk.rs`,
//! intake's bytes in `queue_bytes.rs`; the node's own counters and the values it reads at
//! scrape time here). `/metrics` only encodes the registry (OpenMetrics text,
//! docs/decisions/0012-metrics-registry.md). **Guarantees:** every series keeps the name,
//! labels and meaning listed in docs/operations.md; the test below fails on a renamed one.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::Node;

/// The prefix of every series the node exposes.
pub(crate) const PREFIX: &str = "tereze";

/// The content type of the `/metrics` answer.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A message counted by direction, peer, common process and document type (in this order).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MessageKind {
    direction: String,
    peer: String,
    process: String,
    document_type: String,
}

/// The node's own counters (intake, exchange, trust space, CRLs, reference data, admin,
/// attachments received), the relay's, and the doors' connection counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) submitted: Counter,
    pub(crate) received: Counter,
    pub(crate) duplicates: Counter,
    /// Deliveries under a message id already taken for another envelope (refused).
    pub(crate) replayed_ids: Counter,
    /// Trust-space documents offered and refused (bad signature, not newer, unusable).
    pub(crate) trust_refused: Counter,
    pub(crate) refused: Counter,
    /// CRL locations that could not be fetched (each attempt).
    pub(crate) crl_fetch_failures: Counter,
    /// Fetched CRLs refused (not signed by an anchor, from the future, older than held).
    pub(crate) crl_refused: Counter,
    /// Fetched CRLs put in force.
    pub(crate) crl_updates: Counter,
    /// Reference change sets put in force.
    pub(crate) change_sets: Counter,
    pub(crate) change_sets_refused: Counter,
    pub(crate) change_set_gaps: Counter,
    /// Pulls of change sets from a source that answered, and that failed.
    pub(crate) change_set_pulls: Counter,
    pub(crate) change_set_pull_failures: Counter,
    pub(crate) webhooks_sent: Counter,
    pub(crate) webhooks_failed: Counter,
    /// Admin API requests refused for missing or wrong credentials.
    pub(crate) admin_refused: Counter,
    /// Submissions refused for `limits.max_preparing` or `limits.max_preparing_mb`.
    pub(crate) preparing_refused: Counter,
    /// Attachments (docs/attachments.md): uploads stored, files received complete and bytes
    /// written for them, chunks and transfers refused.
    pub(crate) uploads: Counter,
    /// Abandoned partial uploads removed before their retention time, the disk being under
    /// the reserve.
    pub(crate) uploads_collected_for_space: Counter,
    pub(crate) attachments_received: Counter,
    pub(crate) attachment_bytes_received: Counter,
    pub(crate) attachment_refusals: Counter,
    /// Recognition rejections by reason code (also read by the admin API's statistics).
    rejections: Rejections,
    /// Messages by direction, peer, common process and document type.
    messages: Family<MessageKind, Counter>,
    /// The relay's counters and its deliver-time histogram.
    pub(crate) relay: tereze_relay::Metrics,
    /// Connections of the HTTP doors and calls of the Window, against `[connections]`.
    pub(crate) connections: super::doors::Doors,
    /// Each webhook's last acknowledged event and lag (docs/notifications.md).
    pub(crate) event_webhooks: super::webhooks::Progress,
}

impl Metrics {
    pub(crate) fn rejected(&self, reason: &str) {
        *self
            .rejections
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason.to_owned())
            .or_default() += 1;
    }

    /// Recognition rejections so far, by reason code.
    pub(crate) fn rejections(&self) -> BTreeMap<String, u64> {
        self.rejections
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn count_message(
        &self,
        direction: &str,
        peer: &str,
        process: &str,
        document_type: &str,
    ) {
        self.messages
            .get_or_create(&MessageKind {
                direction: direction.into(),
                peer: peer.into(),
                process: process.into(),
                document_type: document_type.into(),
            })
            .inc();
    }

    /// Registers the node's own counters. The help texts are given without their final full
    /// stop: the registry adds it.
    pub(crate) fn register(&self, r: &mut Registry) {
        let counters: &[(&str, &str, &Counter)] = &[
            ("preparing_refused", "Submissions refused (429 / RESOURCE_EXHAUSTED) because limits.max_preparing documents were being prepared or their budgets left too little of limits.max_preparing_mb", &self.preparing_refused),
            ("uploads", "Uploads from the national system stored complete", &self.uploads),
            ("attachments_received", "Attachments received complete from peers (digest checked, fsynced)", &self.attachments_received),
            ("attachment_bytes_received", "Attachment bytes written from peers' chunks", &self.attachment_bytes_received),
            ("attachment_chunks_refused", "Chunks refused (digest or offset mismatch, malformed), each asked for again or refused for good", &self.attachment_refusals),
            ("refused", "Delivered items refused (malformed, unauthorised, unknown recipient...)", &self.refused),
            ("submitted", "Messages accepted from the national system", &self.submitted),
            ("received", "Messages received from peers (first deliveries)", &self.received),
            ("duplicates", "Redeliveries answered with the first receipt", &self.duplicates),
            ("trust_space_refused", "Trust-space documents offered and refused (signature, downgrade, unusable)", &self.trust_refused),
            ("replayed_ids", "Deliveries refused for reusing a taken message id with another envelope", &self.replayed_ids),
            ("crl_updates", "CRLs fetched from CRL locations and put in force", &self.crl_updates),
            ("crl_refused", "Fetched CRLs refused (not signed by the state's anchor, from the future, older than the one held)", &self.crl_refused),
            ("crl_fetch_failures", "Fetches of CRL locations that failed (the CRL held stays in force)", &self.crl_fetch_failures),
            ("reference_change_sets", "Reference-directory change sets put in force", &self.change_sets),
            ("reference_change_sets_refused", "Change sets refused (signature, authority, conflict, invalid content)", &self.change_sets_refused),
            ("reference_gaps", "Change sets that skipped numbers, so the missing ones were pulled", &self.change_set_gaps),
            ("reference_pulls", "Pulls of change sets from a source that answered (with or without new sets)", &self.change_set_pulls),
            ("reference_pull_failures", "Pulls of change sets from a source that failed", &self.change_set_pull_failures),
            ("reference_webhooks_sent", "Change notifications delivered to webhooks", &self.webhooks_sent),
            ("admin_refused", "Admin API requests refused for missing or wrong operator credentials", &self.admin_refused),
            ("reference_webhooks_failed", "Change notifications that no retry delivered", &self.webhooks_failed),
            ("uploads_collected_for_space", "Abandoned partial uploads removed early because the disk was under the reserve", &self.uploads_collected_for_space),
        ];
        for (name, help, counter) in counters {
            r.register(*name, *help, (*counter).clone());
        }
        r.register_collector(Box::new(self.rejections.clone()));
        r.register_collector(Box::new(self.event_webhooks.clone()));
        r.register(
            "messages",
            "Messages submitted here, by peer, common process and document type",
            self.messages.clone(),
        );
    }
}

/// Recognition rejections by reason code, in the codes' order; read by the admin API too,
/// which a prometheus-client family does not allow.
#[derive(Debug, Default, Clone)]
struct Rejections(Arc<Mutex<BTreeMap<String, u64>>>);

impl Collector for Rejections {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let mut m = e.encode_descriptor(
            "recognition_rejections",
            "Documents rejected by recognition, by reason code (docs/recognition.md).",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            ConstCounter::new(*n).encode(m.encode_family(&[("reason", reason.as_str())])?)?;
        }
        Ok(())
    }
}

/// What the node holds, read at scrape time: intake's places, attachments in flight, the
/// trust space and certificates, the store's lengths and size, the reference directories.
pub(crate) struct NodeGauges {
    node: Weak<Node>,
}

impl fmt::Debug for NodeGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeGauges")
    }
}

impl NodeGauges {
    pub(crate) fn register(node: Weak<Node>, r: &mut Registry) {
        r.register_collector(Box::new(Self { node }));
    }
}

/// Writes one unlabelled gauge.
fn gauge<V>(e: &mut DescriptorEncoder, name: &str, help: &str, v: V) -> fmt::Result
where
    ConstGauge<V>: EncodeMetric,
{
    let m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

/// Writes one gauge family whose samples carry one label `key`.
fn labelled_gauge<V>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    key: &str,
    samples: impl IntoIterator<Item = (String, V)>,
) -> fmt::Result
where
    ConstGauge<V>: EncodeMetric,
{
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (value, v) in samples {
        ConstGauge::new(v).encode(m.encode_family(&[(key, value.as_str())])?)?;
    }
    Ok(())
}

impl Collector for NodeGauges {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let Some(node) = self.node.upgrade() else {
            return Ok(());
        };
        let limits = &node.config.limits;
        gauge(
            &mut e,
            "preparing_reserved_mb",
            "MiB of limits.max_preparing_mb reserved by the documents being prepared now.",
            limits
                .max_preparing_mb
                .saturating_sub(node.preparing_mb.available_permits()) as u64,
        )?;
        gauge(&mut e, "documents_preparing", "Documents being prepared at intake now (parsed, translated, signed), at most limits.max_preparing.",
            limits.max_preparing.saturating_sub(node.preparing.available_permits()) as u64)?;
        gauge(
            &mut e,
            "attachments_receiving",
            "Attachments being received now (docs/attachments.md).",
            node.receiving.len() as u64,
        )?;
        gauge(&mut e, "attachment_lane_messages", "Messages with attachments handed to the peers' attachments lanes now (sending, or waiting for a transfer slot).",
            node.lane_messages() as u64)?;
        gauge(
            &mut e,
            "trust_space_version",
            "Version of the trust space in force.",
            node.trust().version,
        )?;
        gauge(
            &mut e,
            "outbox_messages",
            "Messages waiting for their next hop.",
            node.outbox.held(),
        )?;
        gauge(
            &mut e,
            "inbox_messages",
            "Received messages not yet taken by the national system.",
            node.store().inbox_len().unwrap_or(0),
        )?;
        gauge(
            &mut e,
            "awaiting_receipts",
            "Messages sent through a hub awaiting their end receipt.",
            node.store().awaiting_len().unwrap_or(0),
        )?;
        let dirs = node.directories();
        labelled_gauge(
            &mut e,
            "reference_directory_version",
            "Version (last change set) of each reference directory in force.",
            "directory",
            dirs.ids()
                .map(|id| (id.to_string(), dirs.get(id).map_or(0, |d| d.version))),
        )?;
        labelled_gauge(
            &mut e,
            "certificate_expiry_days",
            "Days until each certificate in use expires (negative: expired).",
            "certificate",
            certificate_expiry(&node),
        )?;
        let store_bytes = std::fs::metadata(node.config.data_dir.join("node.redb"))
            .map(|m| m.len())
            .unwrap_or(0);
        gauge(
            &mut e,
            "store_bytes",
            "Size of the embedded store file (0 on a PostgreSQL store).",
            store_bytes,
        )
    }
}

/// Days until `cert` expires (negative once it has; `i64::MIN` if that cannot be told).
pub(crate) fn days_left(cert: &openssl::x509::X509) -> i64 {
    openssl::asn1::Asn1Time::days_from_now(0)
        .ok()
        .and_then(|now| now.diff(cert.not_after()).ok())
        .map_or(i64::MIN, |d| i64::from(d.days))
}

/// Days left of every certificate the node uses: its TLS and signing certificates and each
/// trust-space anchor, by name (`tls`, `signing`, `anchor:KZ:0`…).
fn certificate_expiry(node: &Node) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    if let Ok(pem) = std::fs::read(&node.config.tls.certificate) {
        if let Ok(c) = openssl::x509::X509::from_pem(&pem) {
            out.push(("tls".to_owned(), days_left(&c)));
        }
    }
    if let Some(c) = node.signing.certificate() {
        out.push(("signing".to_owned(), days_left(c)));
    }
    for st in node.trust().states.values() {
        for (i, a) in st.anchors.iter().enumerate() {
            out.push((format!("anchor:{}:{i}", st.code), days_left(a)));
        }
    }
    out
}

/// The node's registry: each component registers its own series.
pub(crate) fn registry(
    node: Weak<Node>,
    metrics: &Metrics,
    national_refusals: &super::national::Refusals,
    queue_bytes: &Arc<super::queue_bytes::QueueBytes>,
    disk: &Arc<super::disk::DiskWatch>,
) -> Registry {
    let mut r = Registry::with_prefix(PREFIX);
    metrics.register(&mut r);
    metrics.relay.register(&mut r, node.clone());
    metrics.connections.register(&mut r);
    national_refusals.register(&mut r);
    queue_bytes.register(&mut r);
    disk.register(&mut r);
    super::checkpoint_token::register(node.clone(), &mut r);
    NodeGauges::register(node, &mut r);
    r
}

/// The `/metrics` text: the registry, the relay's deliver-time histogram (see
/// [`tereze_relay::Metrics::encode_deliver_seconds`]) and the end marker.
pub(crate) fn encode(node: &Node) -> Result<String, fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode_registry(&mut out, &node.registry)?;
    node.metrics.relay.encode_deliver_seconds(&mut out)?;
    prometheus_client::encoding::text::encode_eof(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every series of `/metrics` and its type, under its OpenMetrics family name (a counter
    /// `X` is sampled as `X_total`): renaming one is a change of the node's contract.
    const SERIES: [(&str, &str); 72] = [
        ("preparing_reserved_mb", "gauge"),
        ("documents_preparing", "gauge"),
        ("preparing_refused", "counter"),
        ("attachments_receiving", "gauge"),
        ("attachment_lane_messages", "gauge"),
        ("uploads", "counter"),
        ("attachments_received", "counter"),
        ("attachment_bytes_received", "counter"),
        ("attachments_sent", "counter"),
        ("attachment_bytes_sent", "counter"),
        ("attachment_chunks_refused", "counter"),
        ("trust_space_version", "gauge"),
        ("outbox_messages", "gauge"),
        ("queue_bytes", "gauge"),
        ("queue_bytes_peak", "gauge"),
        ("queue_bytes_limit", "gauge"),
        ("queue_bytes_refused", "counter"),
        ("inbox_messages", "gauge"),
        ("awaiting_receipts", "gauge"),
        ("refused", "counter"),
        ("submitted", "counter"),
        ("delivered", "counter"),
        ("received", "counter"),
        ("duplicates", "counter"),
        ("trust_space_refused", "counter"),
        ("replayed_ids", "counter"),
        ("failed_attempts", "counter"),
        ("dead", "counter"),
        ("expired", "counter"),
        ("crl_updates", "counter"),
        ("crl_refused", "counter"),
        ("crl_fetch_failures", "counter"),
        ("reference_change_sets", "counter"),
        ("reference_change_sets_refused", "counter"),
        ("reference_gaps", "counter"),
        ("reference_pulls", "counter"),
        ("reference_pull_failures", "counter"),
        ("reference_webhooks_sent", "counter"),
        ("admin_refused", "counter"),
        ("reference_webhooks_failed", "counter"),
        ("national_refused", "counter"),
        ("http_connections_open", "gauge"),
        ("http_connections_refused", "counter"),
        ("http_connections_closed", "counter"),
        ("window_calls_in_progress", "gauge"),
        ("window_calls_refused", "counter"),
        ("reference_directory_version", "gauge"),
        ("recognition_rejections", "counter"),
        ("messages", "counter"),
        ("deliver_seconds", "histogram"),
        ("certificate_expiry_days", "gauge"),
        ("store_bytes", "gauge"),
        ("disk_free_bytes", "gauge"),
        ("disk_reserve_bytes", "gauge"),
        ("disk_floor_bytes", "gauge"),
        ("disk_promised_bytes", "gauge"),
        ("disk_refusals", "counter"),
        ("disk_writes_paused", "gauge"),
        ("uploads_collected_for_space", "counter"),
        ("peer_backoff_seconds", "gauge"),
        ("peer_calls", "counter"),
        ("peer_queue_messages", "gauge"),
        ("timestamp_tokens", "counter"),
        ("timestamp_stamped", "counter"),
        ("timestamp_failures", "counter"),
        ("timestamp_evidence_received", "counter"),
        ("timestamp_evidence_refused", "counter"),
        ("timestamp_pending", "gauge"),
        ("timestamp_lag_seconds", "gauge"),
        ("audit_checkpoint_token_lag_seconds", "gauge"),
        ("event_webhook_acknowledged", "gauge"),
        ("event_webhook_lag", "gauge"),
    ];

    /// A node opened (not run) from a development PKI's configuration.
    fn fresh_node(dir: &std::path::Path) -> Arc<Node> {
        let configs = tereze_trust::devpki::init(&tereze_trust::devpki::DevPkiSpec {
            out: dir.to_path_buf(),
            states: vec!["KZ".into(), "RU".into()],
            hub: None,
            via_hub: vec![],
            base_port: 29900,
            days: 30,
        })
        .expect("dev PKI");
        let (_, kz) = configs.iter().find(|(c, _)| c == "KZ").expect("KZ");
        let config = crate::config::NodeConfig::load(kz).expect("config");
        Node::open(config).unwrap_or_else(|e| panic!("open: {e}"))
    }

    #[tokio::test]
    async fn a_fresh_node_registers_every_series_under_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = fresh_node(dir.path());
        node.metrics.submitted.inc_by(2);
        node.metrics.rejected("trader-unknown");
        node.metrics
            .count_message("out", "RU", "export", "export-declaration");
        node.metrics.relay.deliver_took("RU", 0.003);
        node.stamping.failed("timeout");
        let text = encode(&node).expect("encoded");

        for (name, kind) in SERIES {
            assert!(
                text.contains(&format!("\n# TYPE tereze_{name} {kind}\n")),
                "{name} {kind} missing:\n{text}"
            );
        }
        assert_eq!(text.matches("# TYPE ").count(), SERIES.len(), "{text}");
        for lines in [
            "# HELP tereze_submitted Messages accepted from the national system.\n# TYPE tereze_submitted counter\ntereze_submitted_total 2\n",
            "# HELP tereze_queue_bytes_limit limits.max_queue_bytes: above it submissions are refused (429) and deliveries answered RESOURCE_EXHAUSTED.\n# TYPE tereze_queue_bytes_limit gauge\ntereze_queue_bytes_limit 16777216\n",
            "# HELP tereze_window_calls_refused Window calls answered RESOURCE_EXHAUSTED because connections.window_max_calls were in progress.\n# TYPE tereze_window_calls_refused counter\ntereze_window_calls_refused_total 0\n",
            "tereze_recognition_rejections_total{reason=\"trader-unknown\"} 1\n",
            "tereze_messages_total{direction=\"out\",peer=\"RU\",process=\"export\",document_type=\"export-declaration\"} 1\n",
            "tereze_national_refused_total{door=\"window\",reason=\"not-permitted\"} 0\n",
            "tereze_http_connections_closed_total{door=\"admin\",reason=\"idle_timeout\"} 0\n",
            "tereze_deliver_seconds_bucket{peer=\"RU\",le=\"0.0025\"} 0\ntereze_deliver_seconds_bucket{peer=\"RU\",le=\"0.005\"} 1\n",
            "tereze_deliver_seconds_bucket{peer=\"RU\",le=\"+Inf\"} 1\ntereze_deliver_seconds_sum{peer=\"RU\"} 0.003\ntereze_deliver_seconds_count{peer=\"RU\"} 1\n",
            "tereze_certificate_expiry_days{certificate=\"anchor:RU:0\"} ",
            "tereze_disk_writes_paused 0\n",
            "tereze_timestamp_failures_total{kind=\"timeout\"} 1\n",
            "\ntereze_timestamp_pending 0\n",
            "\ntereze_timestamp_lag_seconds 0.0\n",
        ] {
            assert!(text.contains(lines), "{lines:?} missing:\n{text}");
        }
        // The registry adds a full stop to a registered metric's help: none may end in two.
        assert!(!text.contains("..\n"), "{text}");
        assert!(text.ends_with("\n# EOF\n"), "{text}");
    }
}
