//! What the relay keeps per peer while the node runs: the notifier that wakes its workers,
//! its gate, its transfer slots and the places in its attachments lane. Each is created on
//! first use and lives as long as the node, so workers replaced after a trust-space update
//! share them with the ones before.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::config::Config;
use crate::gate::Gate;

/// Messages with attachments the relay hands to a peer's attachments lane at once, per
/// transfer slot (`attachments.max_transfers_per_peer`): enough that a slot never waits for
/// the relay, few enough that a backlog stays in the store.
pub(crate) const LANE_QUEUE: usize = 4;

/// The relay's state for every peer.
#[derive(Debug)]
pub struct Peers {
    /// Wakes the relay worker of a peer.
    wake: Mutex<HashMap<String, Arc<Notify>>>,
    /// Each peer's gate: the pause after calls it did not answer (relay).
    gates: Mutex<BTreeMap<String, Arc<Gate>>>,
    /// Per peer: transfers this node may send at once, and take at once.
    transfers: Mutex<HashMap<(String, bool), Arc<Semaphore>>>,
    /// Per peer, the places in its attachments lane ([`Peers::lane_queue`]).
    lane_queues: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// A new gate's pauses (`relay.min_backoff_ms`, `relay.max_backoff_ms`) and largest
    /// batch (`limits.max_batch`).
    min_backoff: Duration,
    max_backoff: Duration,
    max_batch: usize,
    /// `attachments.max_transfers_per_peer`.
    max_transfers_per_peer: usize,
}

impl Peers {
    pub fn new(relay: &Config, max_batch: usize, max_transfers_per_peer: usize) -> Self {
        Self {
            wake: Mutex::default(),
            gates: Mutex::default(),
            transfers: Mutex::default(),
            lane_queues: Mutex::default(),
            min_backoff: Duration::from_millis(relay.min_backoff_ms),
            max_backoff: Duration::from_millis(relay.max_backoff_ms),
            max_batch,
            max_transfers_per_peer,
        }
    }

    /// `peer`'s gate (created on first use).
    pub(crate) fn gate(&self, peer: &str) -> Arc<Gate> {
        let mut m = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(peer.to_owned())
            .or_insert_with(|| {
                Arc::new(Gate::new(
                    self.min_backoff,
                    self.max_backoff,
                    self.max_batch,
                ))
            })
            .clone()
    }

    /// Every peer's gate so far, by peer.
    pub fn gates(&self) -> Vec<(String, Arc<Gate>)> {
        let m = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The transfers `peer` may have in flight with this node: `outgoing` ones this node
    /// sends, or incoming ones it takes (`attachments.max_transfers_per_peer` each).
    pub fn transfer_slots(&self, peer: &str, outgoing: bool) -> Arc<Semaphore> {
        let mut m = self.transfers.lock().unwrap_or_else(|p| p.into_inner());
        m.entry((peer.to_owned(), outgoing))
            .or_insert_with(|| Arc::new(Semaphore::new(self.max_transfers_per_peer)))
            .clone()
    }

    /// The messages with attachments the relay may hand to `peer`'s attachments lane at once
    /// ([`LANE_QUEUE`] per transfer slot): each holds its outbox entry while it waits for a
    /// slot, so a backlog of them stays in the store, not in memory.
    pub(crate) fn lane_queue(&self, peer: &str) -> Arc<Semaphore> {
        let mut m = self.lane_queues.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(peer.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.lane_places())))
            .clone()
    }

    /// Places in one peer's attachments lane.
    fn lane_places(&self) -> usize {
        self.max_transfers_per_peer.saturating_mul(LANE_QUEUE)
    }

    /// Messages in all peers' attachments lanes now.
    pub fn lane_messages(&self) -> usize {
        let cap = self.lane_places();
        let m = self.lane_queues.lock().unwrap_or_else(|p| p.into_inner());
        m.values()
            .map(|s| cap.saturating_sub(s.available_permits()))
            .sum()
    }

    /// The notifier of `peer`'s relay workers (created on first use).
    pub fn waker(&self, peer: &str) -> Arc<Notify> {
        let mut m = self.wake.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(peer.to_owned()).or_default().clone()
    }
}
