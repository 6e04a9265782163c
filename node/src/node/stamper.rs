//! Time-stamping (issue 26, docs/timestamps.md): the node obtains RFC 3161 tokens for the
//! signatures it makes (its envelopes, its batch receipts) in batches, one token over the
//! Merkle root of many signature values, and keeps each item's evidence (the token and its
//! inclusion path). It also takes the evidence its peers send after their envelopes.
//!
//! **Guarantees:** what waits for a token is queued in the same store transaction as the
//! signed envelope (or receipt batch) it belongs to, so a crash loses nothing and the stamper
//! resumes after a restart; an authority that is slow or down delays only the tokens (the
//! stamper runs beside the relay and never holds a delivery, unless the state's policy
//! requires a token: then the relay holds the state's own envelopes, `relay::Host`); a token
//! is stored only once it verified against the authorities the trust space lists for this
//! node's state; evidence received from a peer is kept only when it verifies against the
//! envelope kept here and the sender state's authorities (a hub, which keeps no envelope,
//! passes on what the sender sent it, and the recipient verifies).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tereze_codecs::xml;
use tereze_timestamp::{Authority, Client, Evidence, Stamp};
use tokio::sync::Notify;
use uuid::Uuid;

use super::proto::{DeliverEvidenceRequest, DeliverEvidenceResponse, EvidenceOutcome, Refusal};
use super::Node;
use crate::store::StampItem;
use crate::trust::{Role, StateEntry};

/// The kind of a pending item whose leaf is an envelope's signature value.
pub(crate) const ENVELOPE: &str = "envelope";
/// The kind of a pending item whose leaf is a batch receipt's signature value.
pub(crate) const RECEIPTS: &str = "receipts";
/// The history note of an envelope held for its token (the required policy).
pub(crate) const WAITING: &str = "waiting for a time-stamp";

/// A failure to obtain a token, by kind (the timestamp crate's error codes).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FailureKind {
    kind: String,
}

/// What the stamper counts, and how the submit path wakes it.
#[derive(Debug, Default)]
pub(crate) struct Stamping {
    /// Tokens obtained (and verified) from the authorities.
    pub(crate) tokens: Counter,
    /// Signatures whose evidence was stored.
    pub(crate) stamped: Counter,
    /// Requests that gave no usable token, by kind.
    pub(crate) failures: Family<FailureKind, Counter>,
    /// Evidence received from peers and kept, and refused.
    pub(crate) evidence_received: Counter,
    pub(crate) evidence_refused: Counter,
    /// Poked when a signature begins to wait, so an idle stamper looks again.
    pub(crate) wake: Notify,
}

impl Stamping {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "timestamp_tokens",
            "RFC 3161 tokens obtained and verified (each covers a batch of signatures)",
            self.tokens.clone(),
        );
        r.register(
            "timestamp_stamped",
            "Signatures (envelopes, receipt batches) whose time-stamp evidence was stored",
            self.stamped.clone(),
        );
        r.register(
            "timestamp_failures",
            "Token requests that gave no usable token, by kind (the authority unreachable or slow, its refusal, a token that does not verify)",
            self.failures.clone(),
        );
        r.register(
            "timestamp_evidence_received",
            "Time-stamp evidence received from peers, verified and kept",
            self.evidence_received.clone(),
        );
        r.register(
            "timestamp_evidence_refused",
            "Time-stamp evidence received from peers and refused (does not verify, unknown message, not the sender's)",
            self.evidence_refused.clone(),
        );
    }

    pub(crate) fn failed(&self, kind: &str) {
        self.failures
            .get_or_create(&FailureKind {
                kind: kind.to_owned(),
            })
            .inc();
    }
}

/// The time-stamping lag, read at scrape time: signatures waiting and the age of the oldest.
pub(crate) struct Lag {
    pub(crate) node: std::sync::Weak<Node>,
}

impl std::fmt::Debug for Lag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lag")
    }
}

/// How far behind time-stamping is: (signatures waiting, seconds the oldest has waited).
pub(crate) fn lag(node: &Node) -> Result<(u64, f64), crate::store::StoreError> {
    let store = node.store();
    let pending = store.stamp_pending_len()?;
    let oldest = store.stamp_pending(1)?;
    let age = oldest.first().map_or(0.0, |i| {
        (tereze_support::clock::now_ms() - i.queued_at).max(0) as f64 / 1000.0
    });
    Ok((pending, age))
}

impl prometheus_client::collector::Collector for Lag {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let Some(node) = self.node.upgrade() else {
            return Ok(());
        };
        let Ok((pending, age)) = lag(&node) else {
            return Ok(());
        };
        ConstGauge::new(pending as i64).encode(e.encode_descriptor(
            "timestamp_pending",
            "Signatures waiting for a time-stamp token.",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(age).encode(e.encode_descriptor(
            "timestamp_lag_seconds",
            "How long the oldest signature waiting for a token has waited (0: none waits).",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}

/// What `/readyz` says of time-stamping: off, or the lag (it does not make the node unready:
/// an authority that is down delays only the tokens, unless the state requires them, which
/// the body says).
pub(crate) fn readiness(node: &Node) -> String {
    if !enabled(node) {
        return "off (the trust space lists no authority for this state)".into();
    }
    let policy = if required(node) {
        ", required: envelopes wait for their token"
    } else {
        ""
    };
    match lag(node) {
        Ok((0, _)) => format!("up to date{policy}"),
        Ok((pending, age)) => {
            format!("{pending} signatures waiting, the oldest for {age:.0} s{policy}")
        }
        Err(e) => format!("unknown: {e}"),
    }
}

/// The authorities the trust space lists for this node's state: none, no time-stamping.
pub(crate) fn own_authorities(node: &Node) -> Vec<Authority> {
    node.trust()
        .state(&node.config.state)
        .map(|s| s.timestamp_authorities.clone())
        .unwrap_or_default()
}

/// Whether this node obtains tokens (its state lists an authority; a hub signs no envelopes
/// but its receipts, which it stamps too).
pub(crate) fn enabled(node: &Node) -> bool {
    node.trust()
        .state(&node.config.state)
        .is_some_and(|s| !s.timestamp_authorities.is_empty())
}

/// Whether this node's state requires a token before its envelopes are delivered.
pub(crate) fn required(node: &Node) -> bool {
    node.trust()
        .state(&node.config.state)
        .is_some_and(|s| s.timestamp_required)
}

/// The raw `SignatureValue` octets of the one signature in a signed document (an envelope, a
/// receipt): the Merkle leaf its token covers, read as recognition reads it
/// (`dsig::claimed_signature_value`), so the leaf stamped here is the one checked there.
pub(crate) fn signature_value(signed: &[u8]) -> Result<Vec<u8>, String> {
    let doc = xml::parse(signed).map_err(|e| format!("is not XML: {e}"))?;
    tereze_codecs::dsig::claimed_signature_value(&doc)
        .ok_or_else(|| "has not exactly one readable ds:SignatureValue".into())
}

/// The stamper: takes up to `timestamping.batch_size` waiting signatures (once the batch is
/// full or its oldest has waited `max_wait_ms`), asks the state's authorities in turn for one
/// token over their Merkle root, verifies it, and stores every item's evidence in one commit;
/// after a round with no token it pauses (backoff up to `max_backoff_ms`) and tries again.
pub(crate) async fn run(node: Arc<Node>) {
    let cfg = node.config.timestamping.clone();
    let max_wait = Duration::from_millis(cfg.max_wait_ms);
    let mut failures = 0u32;
    loop {
        if node.shutdown.is_cancelled() {
            break;
        }
        let authorities = own_authorities(&node);
        let pause = if authorities.is_empty() {
            // Nothing to ask; a trust-space update may list an authority.
            Some(Duration::from_secs(5))
        } else {
            let n = node.clone();
            let size = cfg.batch_size;
            match tokio::task::spawn_blocking(move || n.store().stamp_pending(size)).await {
                Ok(Ok(items)) if items.is_empty() => Some(max_wait),
                Ok(Ok(items)) => {
                    let age = tereze_support::clock::now_ms() - items[0].queued_at;
                    let wait = max_wait.saturating_sub(Duration::from_millis(age.max(0) as u64));
                    if items.len() < cfg.batch_size && !wait.is_zero() {
                        // A fuller batch costs the authority nothing more.
                        Some(wait)
                    } else if round(&node, &authorities, items).await {
                        failures = 0;
                        None
                    } else {
                        failures += 1;
                        Some(tereze_support::backoff::pause(
                            Duration::from_secs(1),
                            Duration::from_millis(cfg.max_backoff_ms),
                            failures,
                        ))
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot read the signatures waiting for a time-stamp");
                    Some(Duration::from_secs(1))
                }
                Err(_) => Some(Duration::from_secs(1)),
            }
        };
        if let Some(pause) = pause {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                // A new signature only matters to an idle stamper (no pause from failures).
                _ = node.stamping.wake.notified(), if failures == 0 => {}
                _ = node.shutdown.cancelled() => break,
            }
        }
    }
}

/// One batch: a token from the first authority that gives a verified one, then the evidence
/// stored. Whether the batch was stamped.
async fn round(node: &Arc<Node>, authorities: &[Authority], items: Vec<StampItem>) -> bool {
    let leaves: Vec<&[u8]> = items.iter().map(|i| i.leaf.as_slice()).collect();
    let (imprint, paths) = tereze_timestamp::batch(&leaves);
    let timeout = Duration::from_millis(node.config.timestamping.timeout_ms);
    let Some((token, stamp)) = obtain(node, authorities, &imprint, timeout).await else {
        return false;
    };
    node.stamping.tokens.inc();
    // Where each envelope went: its evidence is owed there.
    let n = node.clone();
    let ids: Vec<(Uuid, bool)> = items.iter().map(|i| (i.id, i.kind == ENVELOPE)).collect();
    let peers = tokio::task::spawn_blocking(move || {
        ids.iter()
            .map(|(id, envelope)| {
                if !envelope {
                    return Ok(None);
                }
                Ok(n.store().meta(*id)?.map(|m| m.peer))
            })
            .collect::<Result<Vec<Option<String>>, crate::store::StoreError>>()
    })
    .await;
    let peers = match peers {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read where the stamped messages went");
            return false;
        }
        Err(_) => return false,
    };
    let note = format!(
        "time-stamped by {} ({}) at {}",
        stamp.authority,
        stamp.authority_url,
        stamp
            .gen_time
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let rows: Vec<(Uuid, Vec<u8>, Option<String>)> = items
        .iter()
        .zip(paths)
        .zip(peers)
        .map(|((i, path), peer)| (i.id, Evidence::new(token.clone(), path).to_bytes(), peer))
        .collect();
    let count = rows.len() as u64;
    let wake: Vec<String> = rows.iter().filter_map(|r| r.2.clone()).collect();
    let stored = node
        .committer
        .run(move |t| {
            for (id, evidence, peer) in &rows {
                t.stamped(*id, evidence, peer.as_deref(), note.clone())?;
            }
            Ok(())
        })
        .await;
    match stored {
        Ok(()) => {
            node.stamping.stamped.inc_by(count);
            tracing::info!(items = count, authority = %stamp.authority_url, serial = %stamp.serial, "time-stamped");
            // Envelopes held for their token (the required policy) may go now.
            let mut peers = wake;
            peers.sort();
            peers.dedup();
            for p in peers {
                node.waker(&p).notify_one();
            }
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store the time-stamp evidence");
            false
        }
    }
}

/// A verified token over `imprint` from the first of `authorities` that gives one.
async fn obtain(
    node: &Node,
    authorities: &[Authority],
    imprint: &[u8; 32],
    timeout: Duration,
) -> Option<(Vec<u8>, Stamp)> {
    for a in authorities {
        let client = match Client::new(&a.url, timeout) {
            Ok(c) => c,
            Err(e) => {
                node.stamping.failed(e.code());
                tracing::warn!(authority = %a.url, error = %e, "time-stamping authority unusable");
                continue;
            }
        };
        // The client's own timeout bounds each read; this bounds the whole request.
        let token = match tokio::time::timeout(timeout, client.stamp(imprint)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                node.stamping.failed(e.code());
                tracing::warn!(authority = %a.url, error = %e, "no time-stamp token");
                continue;
            }
            Err(_) => {
                node.stamping.failed("timeout");
                tracing::warn!(authority = %a.url, timeout_ms = timeout.as_millis() as u64, "no time-stamp token in time (timestamping.timeout_ms)");
                continue;
            }
        };
        match tereze_timestamp::verify(&token, imprint, authorities) {
            Ok(stamp) => return Some((token, stamp)),
            Err(e) => {
                node.stamping.failed(e.code());
                tracing::warn!(authority = %a.url, error = %e, "time-stamp token refused");
            }
        }
    }
    None
}

/// What evidence for a received envelope says, when it verifies against the envelope's
/// signature value and the sender state's authorities; otherwise why not (starting with the
/// timestamp crate's code, as recognition's `timestamp-invalid` does).
pub(crate) fn check_evidence(
    sender: Option<&StateEntry>,
    envelope: &[u8],
    evidence: &[u8],
) -> Result<Stamp, String> {
    let sender = sender.ok_or("the sender state is not in the trust space")?;
    if sender.timestamp_authorities.is_empty() {
        return Err(format!(
            "the trust space lists no time-stamping authority for {}",
            sender.code
        ));
    }
    let evidence = Evidence::from_bytes(evidence).map_err(|e| format!("{}: {e}", e.code()))?;
    let value = signature_value(envelope).map_err(|e| format!("the envelope {e}"))?;
    evidence
        .verify(&value, &sender.timestamp_authorities)
        .map_err(|e| format!("{}: {e}", e.code()))
}

/// Where a hub forwarded a message: the peer of its first `queued` transition (the store's
/// `enqueue` notes `for PEER`). Not the search row's peer, which the end receipt's return to
/// the sender replaces.
fn forwarded_to(node: &Node, id: Uuid) -> Option<String> {
    node.store()
        .history(id)
        .ok()?
        .into_iter()
        .find(|t| t.state == crate::store::State::Queued)?
        .note?
        .strip_prefix("for ")
        .map(str::to_owned)
}

fn refused(id: &str, code: &str, reason: String, transient: bool) -> EvidenceOutcome {
    EvidenceOutcome {
        message_id: id.to_owned(),
        refused: Some(Refusal {
            code: code.into(),
            reason,
            transient,
        }),
    }
}

/// `Exchange.DeliverEvidence`: evidence a peer obtained after it delivered. Each item is
/// checked (the caller is the message's sender state's node or the hub that delivered it; the
/// evidence verifies against the envelope kept here), kept and noted in the history; a hub
/// keeps it and owes it to the recipient. Refused items are kept nowhere.
pub(crate) async fn deliver_evidence(
    node: Arc<Node>,
    caller: StateEntry,
    request: DeliverEvidenceRequest,
) -> Result<DeliverEvidenceResponse, tonic::Status> {
    if request.items.len() > node.config.limits.max_batch {
        return Err(tonic::Status::invalid_argument(format!(
            "{} items in one call, over the limit of {}",
            request.items.len(),
            node.config.limits.max_batch
        )));
    }
    let n = node.clone();
    // Token verification is CPU work.
    let (mut outcomes, keep) =
        tokio::task::spawn_blocking(move || check_items(&n, &caller, request))
            .await
            .map_err(|e| tonic::Status::internal(format!("worker: {e}")))?;
    if keep.is_empty() {
        return Ok(DeliverEvidenceResponse { outcomes });
    }
    let rows = keep.clone();
    let stored = node
        .committer
        .run(move |t| {
            let mut kept = Vec::with_capacity(rows.len());
            for (_, id, evidence, forward, note) in &rows {
                kept.push(t.evidence_received(*id, evidence, forward.as_deref(), note.clone())?);
            }
            Ok(kept)
        })
        .await
        .map_err(|e| super::answer::store_status(&e))?;
    for ((index, id, _, _, _), new) in keep.into_iter().zip(stored) {
        if new {
            node.stamping.evidence_received.inc();
            tracing::info!(message_id = %id, "time-stamp evidence received");
        }
        outcomes[index] = EvidenceOutcome {
            message_id: format!("urn:uuid:{id}"),
            refused: None,
        };
    }
    Ok(DeliverEvidenceResponse { outcomes })
}

/// One evidence item to keep: (its place in the answer, message, evidence, the next hop that
/// is owed it at a hub, the history note).
type Keep = (usize, Uuid, Vec<u8>, Option<String>, String);

fn check_items(
    node: &Node,
    caller: &StateEntry,
    request: DeliverEvidenceRequest,
) -> (Vec<EvidenceOutcome>, Vec<Keep>) {
    let trust = node.trust();
    let mut outcomes = Vec::with_capacity(request.items.len());
    let mut keep = Vec::new();
    for (index, item) in request.items.into_iter().enumerate() {
        let mid = item.message_id.clone();
        let Some(id) = mid
            .strip_prefix("urn:uuid:")
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            outcomes.push(refused(
                &mid,
                "bad-id",
                "message_id must be a urn:uuid: value".into(),
                false,
            ));
            continue;
        };
        let received = match node.store().received_message(id) {
            Ok(Some(m)) => m,
            Ok(None) => {
                // Evidence may overtake its envelope (sent again later): worth another try.
                outcomes.push(refused(
                    &mid,
                    "unknown-message",
                    format!("{mid} has not been received here (yet)"),
                    true,
                ));
                continue;
            }
            Err(e) => {
                outcomes.push(refused(&mid, "internal", e.to_string(), true));
                continue;
            }
        };
        if caller.code != received.sender && caller.role != Role::Hub {
            node.stamping.evidence_refused.inc();
            outcomes.push(refused(
                &mid,
                "not-authorised",
                format!(
                    "the client certificate is {}'s node; {mid} came from {}",
                    caller.code, received.sender
                ),
                false,
            ));
            continue;
        }
        let (forward, note) = if received.verdict == "forwarded" {
            // A hub keeps no envelope to check against: it passes the evidence on, and the
            // recipient verifies it (and refuses it if it does not hold).
            let next = forwarded_to(node, id);
            (
                next,
                format!("time-stamp evidence from {}, passed on", caller.code),
            )
        } else {
            match check_evidence(
                trust.state(&received.sender),
                &received.envelope,
                &item.evidence,
            ) {
                Ok(stamp) => (
                    None,
                    format!(
                        "time-stamp evidence received from {}: by {} at {}",
                        caller.code,
                        stamp.authority,
                        stamp
                            .gen_time
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    ),
                ),
                Err(why) if received.envelope.is_empty() => {
                    node.stamping.evidence_refused.inc();
                    outcomes.push(refused(
                        &mid,
                        "evidence-unverifiable",
                        format!("the envelope of {mid} is no longer kept here: {why}"),
                        false,
                    ));
                    continue;
                }
                Err(why) => {
                    node.stamping.evidence_refused.inc();
                    tracing::warn!(message_id = %id, from = %caller.code, reason = %why, "time-stamp evidence refused");
                    outcomes.push(refused(&mid, "evidence-invalid", why, false));
                    continue;
                }
            }
        };
        outcomes.push(EvidenceOutcome {
            message_id: mid,
            refused: None,
        });
        keep.push((index, id, item.evidence, forward, note));
    }
    (outcomes, keep)
}
