//! The node as the relay sees it: [`tereze_relay::Host`] over `Node`'s configuration and
//! state. Nothing here decides anything; each method hands over one part of the node.

use std::sync::Arc;

use tereze_relay::{Host, Metrics, Peers, Settings};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Node;
use crate::attachments::Attachments;
use crate::receipt::ReceiptVerifier;
use crate::store::committer::Committer;
use crate::trust::TrustSpace;

impl Host for Node {
    fn settings(&self) -> Settings<'_> {
        Settings {
            state: &self.config.state,
            hub: self.is_hub(),
            relay: &self.config.relay,
            peers: &self.config.peers,
            max_call_bytes: self.config.limits.max_call_bytes,
        }
    }

    fn tls_identity(
        &self,
    ) -> Result<Arc<rustls::sign::CertifiedKey>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.tls_identity.certified_key()?)
    }

    fn trust(&self) -> Arc<TrustSpace> {
        Node::trust(self)
    }

    fn trust_changes(&self) -> watch::Receiver<u64> {
        Node::trust_changes(self)
    }

    fn committer(&self) -> &Committer {
        &self.committer
    }

    fn receipts(&self) -> &ReceiptVerifier {
        &self.receipts
    }

    fn attachments(&self) -> &Attachments {
        &self.attachments
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics.relay
    }

    fn peers(&self) -> &Peers {
        &self.peers
    }

    fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    fn outbox_changed(&self, removed: u64, added: u64) {
        self.outbox_sub(removed);
        self.outbox_add(added);
    }

    /// Only a node that may hold evidence asks the store (a hub passes on its senders').
    fn evidence(&self, id: uuid::Uuid) -> Option<Vec<u8>> {
        if !self.is_hub() && !super::stamper::enabled(self) {
            return None;
        }
        match self.store().evidence_of(id) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "cannot read the evidence; sent without it");
                None
            }
        }
    }

    /// The first `received` of the message's history: when this hub first stored it.
    fn hub_received_at(&self, id: uuid::Uuid) -> Option<i64> {
        self.store()
            .history(id)
            .ok()?
            .iter()
            .find(|t| t.state == crate::store::State::Received)
            .map(|t| t.at)
    }

    fn holds_for_evidence(&self) -> bool {
        super::stamper::required(self)
    }
}
