//! RFC 3161 time-stamp tokens over the node's audit checkpoints, when its state lists a
//! time-stamping authority in the trust space. **Guarantees:** a checkpoint never waits for
//! the authority: it is written first, marked as waiting in the same transaction (so a crash
//! loses no wish), and its token is obtained later by [`stamp_every_interval`], which retries
//! every waiting checkpoint each round until a token that verifies is kept; how long the oldest
//! has waited is the gauge `tereze_audit_checkpoint_token_lag_seconds`.
//!
//! Kept small and apart on purpose: the general stamper (envelopes, receipts) may later take
//! checkpoints in its batches; each checkpoint is an `Evidence` for a batch of one, the form
//! the stamper keeps.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tereze_timestamp::{batch, Authority, Client, Evidence};

use super::Node;
use crate::store::audit::AwaitingToken;

/// Checkpoints stamped per round at most: they are rare (one per `audit_checkpoint_seconds`),
/// so a round catches up after a long outage in a few rounds.
const PER_ROUND: usize = 16;

/// How long one request to an authority may take before the next authority is tried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The time-stamping authorities of this node's state in the trust space in force (none: its
/// checkpoints are not stamped).
pub(crate) fn authorities(node: &Node) -> Vec<Authority> {
    node.trust()
        .state(&node.config.state)
        .map(|s| s.timestamp_authorities.clone())
        .unwrap_or_default()
}

/// Every `audit_checkpoint_seconds` (at most every 10 s, so a token follows its checkpoint
/// soon), stamps the checkpoints waiting for a token.
pub(crate) async fn stamp_every_interval(node: Arc<Node>) {
    let every = Duration::from_secs(node.config.audit_checkpoint_seconds.clamp(1, 10));
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => stamp_waiting(&node).await,
        }
    }
}

/// One round: each waiting checkpoint, oldest first, stamped by the first authority that
/// answers with a token that verifies. The round stops at the first checkpoint no authority
/// stamped (they are down: the rest waits for the next round).
async fn stamp_waiting(node: &Arc<Node>) {
    let n = node.clone();
    let waiting = match tokio::task::spawn_blocking(move || {
        n.store().checkpoints_awaiting_token(PER_ROUND)
    })
    .await
    {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "checkpoint tokens: cannot read the waiting checkpoints");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint tokens: the reading task failed");
            return;
        }
    };
    if waiting.is_empty() {
        return;
    }
    let authorities = authorities(node);
    if authorities.is_empty() {
        // The state's authority was removed from the trust space: they wait until one is
        // listed again, visibly (the lag gauge).
        return;
    }
    for cp in waiting {
        let Some(evidence) = stamp_checkpoint(&cp, &authorities).await else {
            return;
        };
        let bytes = evidence.to_bytes();
        let seq = cp.seq;
        if let Err(e) = node
            .committer
            .run(move |t| t.record_checkpoint_token(seq, &bytes))
            .await
        {
            tracing::warn!(error = %e, checkpoint = seq, "checkpoint tokens: cannot keep a token");
            return;
        }
        tracing::debug!(checkpoint = seq, "checkpoint time-stamped");
    }
}

/// The evidence (a batch of one) over the checkpoint's signature value, from the first of
/// `authorities` whose token verifies; `None` when none gave one (each failure logged).
pub(crate) async fn stamp_checkpoint(
    cp: &AwaitingToken,
    authorities: &[Authority],
) -> Option<Evidence> {
    let (imprint, mut paths) = batch(&[&cp.signature]);
    let path = paths.pop().unwrap_or_default();
    for authority in authorities {
        let token = match Client::new(&authority.url, REQUEST_TIMEOUT) {
            Ok(client) => client.stamp(&imprint).await,
            Err(e) => Err(e),
        };
        // The token is checked before it is kept: one that does not verify proves nothing.
        let checked = token.and_then(|token| {
            let evidence = Evidence::new(token, path.clone());
            evidence
                .verify(&cp.signature, std::slice::from_ref(authority))
                .map(|_| evidence)
        });
        match checked {
            Ok(evidence) => return Some(evidence),
            Err(e) => tracing::warn!(
                error = %e,
                code = e.code(),
                authority = %authority.url,
                checkpoint = cp.seq,
                "checkpoint tokens: no token from this authority"
            ),
        }
    }
    None
}

/// `audit_checkpoint_token_lag_seconds`, read at scrape time.
struct TokenLag {
    node: Weak<Node>,
}

impl fmt::Debug for TokenLag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenLag")
    }
}

/// Registers the gauge of how long the oldest checkpoint has waited for its token.
pub(crate) fn register(node: Weak<Node>, r: &mut Registry) {
    r.register_collector(Box::new(TokenLag { node }));
}

impl Collector for TokenLag {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let Some(node) = self.node.upgrade() else {
            return Ok(());
        };
        let lag = node
            .store()
            .checkpoints_awaiting_token(1)
            .ok()
            .and_then(|w| w.first().map(|c| c.at))
            .map_or(0, |at| {
                (tereze_support::clock::now_ms().saturating_sub(at) / 1000).max(0)
            });
        let m = e.encode_descriptor(
            "audit_checkpoint_token_lag_seconds",
            "Seconds the oldest audit checkpoint has waited for its time-stamp token (0: none waits).",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(lag).encode(m)
    }
}
