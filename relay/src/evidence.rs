//! The relay's share of time-stamping (docs/timestamps.md): evidence obtained after an
//! envelope went is owed to the peer it went to (the store keeps what is owed); one worker
//! per peer sends it with `DeliverEvidence`, so it arrives even when no further message
//! does. Under a state's `timestamp_required`, its own envelopes wait in the outbox until
//! their evidence exists ([`Hold`]). **Guarantee:** evidence stops being owed only when the
//! peer kept it, held it already, or refused it for good (logged).

use std::collections::HashSet;
use std::time::Duration;

use tereze_proto::{DeliverEvidenceRequest, DeliverEvidenceResponse, EvidenceItem};
use tereze_store::{OutboxEntry, Payload};
use uuid::Uuid;

use crate::Host;

/// How often a peer's owed evidence is sent (while its gate is open).
pub(crate) const EVERY: Duration = Duration::from_secs(1);

/// Items in one `DeliverEvidence` call.
const PER_CALL: usize = 200;

/// Which envelopes of a batch wait for their evidence: this node's own without evidence,
/// and every later one of their conversations (order per conversation holds).
pub(crate) struct Hold<'a> {
    node: &'a dyn Host,
    conversations: HashSet<Uuid>,
}

impl<'a> Hold<'a> {
    pub(crate) fn new(node: &'a dyn Host) -> Self {
        Self {
            node,
            conversations: HashSet::new(),
        }
    }

    pub(crate) fn holds(&mut self, e: &OutboxEntry) -> bool {
        let Payload::Envelope { sender, .. } = &e.message.payload else {
            return false;
        };
        if sender != self.node.settings().state {
            return false;
        }
        let conversation = e.message.conversation_id;
        if self.conversations.contains(&conversation) {
            return true;
        }
        if self.node.evidence(e.message.message_id).is_none() {
            self.conversations.insert(conversation);
            return true;
        }
        false
    }
}

/// Sends up to [`PER_CALL`] items of the evidence owed to `peer` through `call` (one
/// `DeliverEvidence` within the relay's time limit) and clears those the peer answered for. A
/// failed call leaves everything owed for the next round.
pub(crate) async fn send_owed<F, Fut>(node: &dyn Host, peer: &str, call: F)
where
    F: FnOnce(DeliverEvidenceRequest) -> Fut,
    Fut: std::future::Future<
        Output = Result<tonic::Response<DeliverEvidenceResponse>, tonic::Status>,
    >,
{
    let store = node.committer().store();
    let owed = match store.evidence_owed(peer, PER_CALL) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the evidence owed");
            return;
        }
    };
    if owed.is_empty() {
        return;
    }
    let items: Vec<EvidenceItem> = owed
        .iter()
        .map(|(id, evidence)| EvidenceItem {
            message_id: format!("urn:uuid:{id}"),
            evidence: evidence.clone(),
        })
        .collect();
    let answer = call(DeliverEvidenceRequest { items }).await;
    let outcomes = match answer {
        Ok(r) => r.into_inner().outcomes,
        Err(status) => {
            tracing::warn!(peer = %peer, code = ?status.code(), error = %status.message(), items = owed.len(), "the peer did not take the evidence; it stays owed");
            return;
        }
    };
    let mut done = Vec::new();
    for o in outcomes {
        let Some(id) = o
            .message_id
            .strip_prefix("urn:uuid:")
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            continue;
        };
        if !owed.iter().any(|(i, _)| *i == id) {
            continue;
        }
        match o.refused {
            None => done.push(id),
            Some(r) if r.transient => {
                tracing::debug!(message_id = %id, code = %r.code, reason = %r.reason, "evidence not taken yet")
            }
            Some(r) => {
                tracing::warn!(peer = %peer, message_id = %id, code = %r.code, reason = %r.reason, "evidence refused for good");
                done.push(id);
            }
        }
    }
    if done.is_empty() {
        return;
    }
    let owner = peer.to_owned();
    let n = done.len();
    let result = node
        .committer()
        .run(move |t| {
            for id in &done {
                t.evidence_sent(&owner, *id)?;
            }
            Ok(())
        })
        .await;
    match result {
        Ok(()) => tracing::debug!(peer = %peer, items = n, "evidence sent"),
        Err(e) => tracing::error!(error = %e, "cannot record the evidence sent"),
    }
}
