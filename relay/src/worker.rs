//! The relay: per peer, `relay.concurrency` workers take due messages from the outbox in
//! batches and deliver them with one `Deliver` call each. A peer's receipt is verified before
//! the message leaves the outbox; a hub's acceptance moves it to "awaiting the end receipt".
//! Failures are classified, not string-matched: transport errors and transient refusals are
//! retried with exponential backoff and jitter, never above `relay.max_backoff_ms` (`backoff`),
//! up to `relay.max_attempts` (then `dead`); permanent refusals are `dead` at once; a message
//! past its expiry is `expired`. Order is per conversation: a message in flight or waiting to retry holds back the later
//! messages of its conversation.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

use tereze_proto::exchange_client::ExchangeClient;
use tereze_proto::{
    deliver_outcome, DeliverItem, DeliverRequest, ReturnReceiptsRequest, ReturnedReceipt, Route,
};
use tereze_store::{OutboxEntry, Payload, State, StoreError};
use tereze_support::clock::now_ms;
use tereze_trust::receipt;

use crate::client::{client_for, target, transfer_client_for, Target};
use crate::gate::{Gate, Pass};
use crate::push::{infos, push, PushFailed};
use crate::Host;

/// The running workers and the task that keeps them in line with the trust space.
pub struct Relay {
    supervisor: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Waits for the workers to finish their batch in flight (after the node's shutdown token
    /// is cancelled).
    pub async fn finish(&mut self) {
        let _ = (&mut self.supervisor).await;
    }

    /// Drops the workers and their calls in flight (the shutdown budget ran out); what they
    /// had not recorded is sent again after the restart.
    pub async fn abort(self) {
        // A finished supervisor may have been awaited already by `finish`.
        if !self.supervisor.is_finished() {
            self.supervisor.abort();
            let _ = self.supervisor.await;
        }
    }
}

/// One peer's running workers.
struct Running {
    target: Target,
    stop: CancellationToken,
}

/// Starts workers for every other node in the trust space, and keeps them in line with it: a
/// trust-space update that adds a state starts its workers, one that moves a node or changes
/// its anchors restarts them with a new connection, one that removes a state stops them. A
/// worker being replaced finishes its batch in flight; old and new workers of a peer share
/// one in-flight set, so no message is taken twice.
pub fn start(node: Arc<dyn Host>) -> Relay {
    let supervisor = tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        let mut running: HashMap<String, Running> = HashMap::new();
        let mut in_flight: HashMap<String, Arc<Mutex<HashSet<Uuid>>>> = HashMap::new();
        let mut changes = node.trust_changes();
        loop {
            reconcile(&node, &mut tasks, &mut running, &mut in_flight);
            tokio::select! {
                _ = node.shutdown().cancelled() => break,
                r = changes.changed() => if r.is_err() { break },
                // Reap finished workers so the set does not grow with every update.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    });
    Relay { supervisor }
}

fn reconcile(
    node: &Arc<dyn Host>,
    tasks: &mut JoinSet<()>,
    running: &mut HashMap<String, Running>,
    in_flight: &mut HashMap<String, Arc<Mutex<HashSet<Uuid>>>>,
) {
    let trust = node.trust();
    let mut wanted: HashMap<String, Target> = HashMap::new();
    for peer in trust.states.keys().filter(|c| **c != node.settings().state) {
        match target(&**node, &trust, peer) {
            Ok(t) => {
                wanted.insert(peer.clone(), t);
            }
            Err(e) => tracing::warn!(peer = %peer, error = %e, "no route to this peer"),
        }
    }
    running.retain(|peer, r| {
        let keep = wanted.get(peer) == Some(&r.target);
        if !keep {
            tracing::info!(peer = %peer, version = trust.version, "trust space changed this peer: stopping its workers");
            r.stop.cancel();
        }
        keep
    });
    for (peer, t) in wanted {
        if running.contains_key(&peer) {
            continue;
        }
        let client = match client_for(&**node, &t) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(peer = %peer, error = %e, "no route to this peer");
                continue;
            }
        };
        let stop = node.shutdown().child_token();
        let shared = in_flight.entry(peer.clone()).or_default().clone();
        let transfers = match transfer_client_for(&**node, &t) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(peer = %peer, error = %e, "no route to this peer");
                continue;
            }
        };
        for worker in 0..node.settings().relay.concurrency {
            let w = Worker {
                node: node.clone(),
                peer: peer.clone(),
                index: worker,
                target: t.clone(),
                client: Mutex::new(client.clone()),
                transfers: transfers.clone(),
                in_flight: shared.clone(),
                gate: node.peers().gate(&peer),
                stop: stop.clone(),
            };
            let span = tracing::info_span!("relay", peer = %peer, worker);
            tasks.spawn(tracing::Instrument::instrument(Arc::new(w).run(), span));
        }
        tracing::info!(peer = %peer, endpoint = %t.endpoint, "relay workers started");
        // Whatever waited for this peer is due now.
        node.peers().waker(&peer).notify_waiters();
        running.insert(peer, Running { target: t, stop });
    }
}

struct Worker {
    node: Arc<dyn Host>,
    peer: String,
    /// This worker among the peer's.
    index: usize,
    target: Target,
    /// Replaced by a new connection after a call that got no answer in time (a connection
    /// stuck in its TLS handshake would hold every later call).
    client: Mutex<ExchangeClient<Channel>>,
    /// The attachments lane's connection, shared by the peer's workers.
    transfers: ExchangeClient<Channel>,
    in_flight: Arc<Mutex<HashSet<Uuid>>>,
    /// Shared by the peer's workers: the pause after calls the peer did not answer.
    gate: Arc<Gate>,
    /// Cancelled at shutdown, or when a trust-space update replaces this peer's workers.
    stop: CancellationToken,
}

/// What to do with one message after an attempt.
enum Outcome {
    Delivered {
        receipt: Vec<u8>,
        verdict: State,
        /// The receipt's reason codes.
        reasons: Vec<String>,
        note: String,
    },
    Forwarded {
        recipient: String,
        hub_receipt: Vec<u8>,
    },
    /// A hub's leg done: record the end receipt and send it back to the original sender.
    DeliveredForSender {
        receipt: Vec<u8>,
        verdict: State,
        sender: String,
        recipient: String,
    },
    ReceiptReturned,
    Retry(String),
    Dead(String),
    Expired,
}

impl Worker {
    async fn run(self: Arc<Self>) {
        let wake = self.node.peers().waker(&self.peer);
        let linger = Duration::from_millis(self.node.settings().relay.linger_ms);
        let mut evidence_sent_at: Option<std::time::Instant> = None;
        loop {
            if self.stop.is_cancelled() {
                break;
            }
            // One worker per peer also sends the evidence obtained after the envelopes went,
            // at most once a second: it reaches the peer whether or not messages follow.
            if self.index == 0
                && evidence_sent_at.is_none_or(|t| t.elapsed() >= crate::evidence::EVERY)
                && self.gate.is_open(std::time::Instant::now())
            {
                evidence_sent_at = Some(std::time::Instant::now());
                crate::evidence::send_owed(&*self.node, &self.peer, |request| {
                    self.within_limit(|mut c| async move { c.deliver_evidence(request).await })
                })
                .await;
            }
            if let Pass::Wait(pause) = self.gate.enter(self.index, std::time::Instant::now()) {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = self.stop.cancelled() => break,
                }
                continue;
            }
            let busy = !self
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty();
            if busy && linger > Duration::ZERO {
                // Another batch to this peer is on the wire: let messages gather for a moment,
                // so each call (and its receipt signature and commits) carries more of them.
                tokio::time::sleep(linger).await;
            }
            let batch = match self.take() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    Vec::new()
                }
            };
            if !batch.is_empty() {
                let ids: Vec<Uuid> = batch.iter().map(|e| e.message.message_id).collect();
                let more = batch.len() >= self.gate.batch();
                let (handed_off, deferred) = self.attempt(batch).await;
                {
                    let mut f = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                    for id in ids.iter().filter(|id| !handed_off.contains(id)) {
                        f.remove(id);
                    }
                }
                if deferred < ids.len() {
                    if more {
                        // Let a sibling worker take the next batch too.
                        wake.notify_one();
                    }
                    continue;
                }
                // Only messages the full attachments lane could not take: wait as when idle,
                // until a transfer ends (it wakes the peer's workers), rather than take them
                // again now.
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = self.stop.cancelled() => break,
            }
        }
    }

    fn take(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut f = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let due = self.node.committer().store().due(
            &self.peer,
            now_ms(),
            self.gate.batch(),
            self.node.settings().max_call_bytes,
            &f,
        )?;
        for e in &due {
            f.insert(e.message.message_id);
        }
        Ok(due)
    }

    /// Delivers a batch; messages with attachments go to the attachments lane (their ids are
    /// returned: they stay in flight until the lane is done with them), as many as its queue
    /// takes ([`crate::Peers::lane_queue`]); the others are left due, untouched, for a later
    /// batch (their count is returned).
    async fn attempt(self: &Arc<Self>, batch: Vec<OutboxEntry>) -> (HashSet<Uuid>, usize) {
        let now = now_ms();
        let mut results: Vec<(OutboxEntry, Outcome)> = Vec::with_capacity(batch.len());
        let mut envelopes = Vec::new();
        let mut receipts = Vec::new();
        let mut handed_off = HashSet::new();
        let mut deferred = 0;
        let lane = self.node.peers().lane_queue(&self.peer);
        let hold = self
            .node
            .holds_for_evidence()
            .then(|| crate::evidence::Hold::new(&*self.node));
        let mut hold = hold;
        for e in batch {
            if hold.as_mut().is_some_and(|h| h.holds(&e)) {
                // The state requires a token first: the envelope waits (with the rest of
                // its conversation) until the stamper has stored its evidence.
                deferred += 1;
                continue;
            }
            let with_attachments = matches!(&e.message.payload, Payload::Envelope { attachments, .. } if !attachments.is_empty());
            if matches!(e.message.payload, Payload::Envelope { .. })
                && e.message.expires_at.is_some_and(|x| x < now)
            {
                results.push((e, Outcome::Expired));
            } else if with_attachments {
                match lane.clone().try_acquire_owned() {
                    Ok(place) => {
                        handed_off.insert(e.message.message_id);
                        tokio::spawn(self.clone().transfer_then_deliver(e, place));
                    }
                    Err(_) => deferred += 1,
                }
            } else if matches!(e.message.payload, Payload::Envelope { .. }) {
                envelopes.push(e);
            } else {
                receipts.push(e);
            }
        }
        if !envelopes.is_empty() {
            results.extend(self.deliver(envelopes).await);
        }
        if !receipts.is_empty() {
            results.extend(self.return_receipts(receipts).await);
        }
        self.record(results).await;
        (handed_off, deferred)
    }

    /// The attachments lane: waits for one of the peer's transfer slots, sends each
    /// attachment (resuming what the peer holds), then delivers the envelope alone. Small
    /// messages meanwhile go on through the other workers and their connection.
    async fn transfer_then_deliver(
        self: Arc<Self>,
        e: OutboxEntry,
        _place: tokio::sync::OwnedSemaphorePermit,
    ) {
        let id = e.message.message_id;
        let slots = self.node.peers().transfer_slots(&self.peer, true);
        let outcome = tokio::select! {
            _ = self.stop.cancelled() => None,
            r = async {
                let _slot = slots.acquire_owned().await.ok()?;
                Some(self.send_attachments(&e).await)
            } => r,
        };
        match outcome {
            // Stopped: the message stays due and the transfer resumes after the restart.
            None => {}
            Some(Ok(())) => {
                let results = self.deliver(vec![e]).await;
                self.record(results).await;
            }
            Some(Err(failed)) => {
                let outcome = if failed.transient {
                    Outcome::Retry(failed.reason)
                } else {
                    Outcome::Dead(failed.reason)
                };
                self.record(vec![(e, outcome)]).await;
            }
        }
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.node.peers().waker(&self.peer).notify_one();
    }

    async fn send_attachments(&self, e: &OutboxEntry) -> Result<(), PushFailed> {
        let Payload::Envelope {
            sender,
            recipient,
            attachments,
            ..
        } = &e.message.payload
        else {
            return Ok(());
        };
        let route = Route {
            message_id: format!("urn:uuid:{}", e.message.message_id),
            conversation_id: format!("urn:uuid:{}", e.message.conversation_id),
            sender: sender.clone(),
            recipient: recipient.clone(),
            digest: Vec::new(),
            expires_at_ms: e.message.expires_at.unwrap_or(0),
            attachments: Vec::new(),
        };
        for a in attachments {
            push(&self.node, &self.transfers, &route, a).await?;
        }
        Ok(())
    }

    async fn deliver(&self, batch: Vec<OutboxEntry>) -> Vec<(OutboxEntry, Outcome)> {
        let items: Vec<DeliverItem> = batch
            .iter()
            .filter_map(|e| match &e.message.payload {
                Payload::Envelope {
                    sender,
                    recipient,
                    envelope,
                    attachments,
                } => Some(DeliverItem {
                    route: Some(Route {
                        message_id: format!("urn:uuid:{}", e.message.message_id),
                        conversation_id: format!("urn:uuid:{}", e.message.conversation_id),
                        sender: sender.clone(),
                        recipient: recipient.clone(),
                        digest: receipt::digest(envelope),
                        expires_at_ms: e.message.expires_at.unwrap_or(0),
                        attachments: infos(attachments),
                    }),
                    envelope: envelope.clone(),
                    evidence: self.node.evidence(e.message.message_id).unwrap_or_default(),
                    hub_received_at_ms: if self.node.settings().hub {
                        self.node.hub_received_at(e.message.message_id).unwrap_or(0)
                    } else {
                        0
                    },
                }),
                Payload::Receipt { .. } => None,
            })
            .collect();
        let started = std::time::Instant::now();
        let response = self
            .within_limit(|mut c| async move { c.deliver(DeliverRequest { items }).await })
            .await;
        self.node
            .metrics()
            .deliver_took(&self.peer, started.elapsed().as_secs_f64());
        let outcomes = match response {
            Ok(r) => {
                self.gate.answered();
                r.into_inner().outcomes
            }
            Err(status) => {
                let reason = format!("{}: {}", self.peer, describe(&status));
                self.call_failed(&status, &reason);
                return batch
                    .into_iter()
                    .map(|e| (e, Outcome::Retry(reason.clone())))
                    .collect();
            }
        };
        if outcomes.len() != batch.len() {
            let reason = format!(
                "{} answered {} outcomes for {} messages",
                self.peer,
                outcomes.len(),
                batch.len()
            );
            return batch
                .into_iter()
                .map(|e| (e, Outcome::Retry(reason.clone())))
                .collect();
        }
        let node = self.node.clone();
        let peer = self.peer.clone();
        // Receipt verification is CPU work.
        tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .zip(outcomes)
                .map(|(e, o)| {
                    let outcome = judge(&*node, &peer, &e, o.outcome);
                    (e, outcome)
                })
                .collect()
        })
        .await
        .unwrap_or_default()
    }

    async fn return_receipts(&self, batch: Vec<OutboxEntry>) -> Vec<(OutboxEntry, Outcome)> {
        let receipts: Vec<ReturnedReceipt> = batch
            .iter()
            .filter_map(|e| match &e.message.payload {
                Payload::Receipt {
                    recipient,
                    receipt,
                    sender,
                } => Some(ReturnedReceipt {
                    message_id: format!("urn:uuid:{}", e.message.message_id),
                    recipient: recipient.clone(),
                    receipt: receipt.clone(),
                    sender: sender.clone().unwrap_or_default(),
                }),
                Payload::Envelope { .. } => None,
            })
            .collect();
        match self
            .within_limit(|mut c| async move {
                c.return_receipts(ReturnReceiptsRequest { receipts }).await
            })
            .await
        {
            Ok(r) => {
                self.gate.answered();
                let accepted: HashSet<String> = r.into_inner().accepted.into_iter().collect();
                batch
                    .into_iter()
                    .map(|e| {
                        let id = format!("urn:uuid:{}", e.message.message_id);
                        let o = if accepted.contains(&id) {
                            Outcome::ReceiptReturned
                        } else {
                            Outcome::Retry(format!("{} did not take the receipt", self.peer))
                        };
                        (e, o)
                    })
                    .collect()
            }
            Err(status) => {
                let reason = format!("{}: {}", self.peer, describe(&status));
                self.call_failed(&status, &reason);
                batch
                    .into_iter()
                    .map(|e| (e, Outcome::Retry(reason.clone())))
                    .collect()
            }
        }
    }

    /// One call to the peer, bounded by `relay.timeout_seconds` from the first byte of the
    /// connection to the answer (tonic's own timeout starts only once connected). After a
    /// call that ran out of time, the next one uses a new connection.
    async fn within_limit<T, F, Fut>(&self, call: F) -> Result<T, tonic::Status>
    where
        F: FnOnce(ExchangeClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let client = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let limit = Duration::from_secs(self.node.settings().relay.timeout_seconds.max(1));
        match tokio::time::timeout(limit, call(client)).await {
            Ok(r) => r,
            Err(_) => {
                match client_for(&*self.node, &self.target) {
                    Ok(fresh) => *self.client.lock().unwrap_or_else(|p| p.into_inner()) = fresh,
                    Err(e) => tracing::warn!(error = %e, "cannot build a new connection"),
                }
                Err(tonic::Status::deadline_exceeded(format!(
                    "no answer within {} s (connection, TLS handshake and call; relay.timeout_seconds)",
                    limit.as_secs()
                )))
            }
        }
    }

    /// A call failed as a whole: every worker of this peer pauses; a call that ran out of time
    /// also halves the batch.
    fn call_failed(&self, status: &tonic::Status, reason: &str) {
        let timed_out = matches!(
            status.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        );
        let pause = self.gate.failed(std::time::Instant::now(), timed_out);
        tracing::warn!(
            failures = self.gate.failures(),
            pause_ms = pause.as_millis() as u64,
            batch = self.gate.batch(),
            reason = %reason,
            "the peer did not take the call: pausing its deliveries"
        );
    }

    /// Stores every outcome of the attempt in one commit.
    async fn record(&self, results: Vec<(OutboxEntry, Outcome)>) {
        let cfg = &self.node.settings().relay;
        let max_attempts = cfg.max_attempts;
        let (min_backoff, max_backoff) = (
            Duration::from_millis(cfg.min_backoff_ms),
            Duration::from_millis(cfg.max_backoff_ms),
        );
        let peer = self.peer.clone();
        let node = self.node.clone();
        let results = Arc::new(results);
        let for_commit = results.clone();
        // Safe to redo (the receiver deduplicates and answers with its first receipt), so the
        // outcomes need not wait for their own fsync; the next durable commit carries them.
        let committed = self
            .node
            .committer()
            .run_lazily(move |t| {
                let mut left_outbox = 0u64;
                let mut forwarded_receipts = Vec::new();
                for (e, outcome) in for_commit.iter() {
                    let id = e.message.message_id;
                    let step = match outcome {
                        Outcome::Delivered {
                            receipt,
                            verdict,
                            reasons,
                            note,
                        } => t.delivered(id, receipt, *verdict, reasons, Some(note.clone())),
                        Outcome::Forwarded {
                            recipient,
                            hub_receipt,
                        } => t.forwarded(
                            id,
                            recipient,
                            hub_receipt,
                            format!("accepted by hub {peer} for {recipient}"),
                        ),
                        Outcome::DeliveredForSender {
                            receipt,
                            verdict,
                            sender,
                            recipient,
                        } => t
                            .delivered(id, receipt, *verdict, &[], Some(format!("by {recipient}")))
                            .and_then(|()| {
                                forwarded_receipts.push(sender.clone());
                                t.enqueue(
                                    &[tereze_store::Outgoing {
                                        message_id: id,
                                        conversation_id: e.message.conversation_id,
                                        peer: sender.clone(),
                                        payload: Payload::Receipt {
                                            recipient: recipient.clone(),
                                            receipt: receipt.clone(),
                                            sender: None,
                                        },
                                        expires_at: None,
                                    }],
                                    &[],
                                )
                            }),
                        Outcome::ReceiptReturned => {
                            let receipt = match &e.message.payload {
                                Payload::Receipt { receipt, .. } => receipt.as_slice(),
                                Payload::Envelope { .. } => &[],
                            };
                            t.receipt_returned(id, receipt, format!("receipt returned to {peer}"))
                        }
                        Outcome::Expired => {
                            t.park(id, State::Expired, "not delivered before its expiry")
                        }
                        Outcome::Dead(reason) => t.park(id, State::Dead, reason),
                        Outcome::Retry(reason) => {
                            let attempts = e.attempts + 1;
                            if attempts >= max_attempts {
                                t.park(
                                    id,
                                    State::Dead,
                                    &format!("{attempts} attempts failed; last: {reason}"),
                                )
                            } else {
                                let delay = tereze_support::backoff::pause(
                                    min_backoff,
                                    max_backoff,
                                    attempts,
                                );
                                t.failed_attempt(id, reason, t.now() + delay.as_millis() as i64)
                                    .map(|_| ())
                            }
                        }
                    };
                    match step {
                        Ok(()) => {
                            if !matches!(outcome, Outcome::Retry(_))
                                || e.attempts + 1 >= max_attempts
                            {
                                left_outbox += 1;
                            }
                        }
                        // Someone else settled it first (an operator, a returned receipt).
                        Err(StoreError::NotQueued(_) | StoreError::NotAwaited(_)) => {}
                        Err(other) => return Err(other),
                    }
                }
                Ok((left_outbox, forwarded_receipts))
            })
            .await;
        match committed {
            Ok((left, forwarded_receipts)) => {
                node.outbox_changed(left, forwarded_receipts.len() as u64);
                for s in forwarded_receipts {
                    node.peers().waker(&s).notify_one();
                }
                for (e, o) in results.iter() {
                    let id = e.message.message_id;
                    match o {
                        Outcome::Delivered { .. } | Outcome::DeliveredForSender { .. } => {
                            node.metrics().delivered.inc();
                            tracing::info!(message_id = %id, conversation_id = %e.message.conversation_id, "delivered");
                        }
                        Outcome::Forwarded { .. } => {
                            tracing::info!(message_id = %id, conversation_id = %e.message.conversation_id, "forwarded by the hub");
                        }
                        Outcome::Retry(r) if e.attempts + 1 >= max_attempts => {
                            node.metrics().dead.inc();
                            tracing::warn!(message_id = %id, conversation_id = %e.message.conversation_id, attempts = e.attempts + 1, reason = %r, "dead: attempts exhausted");
                        }
                        Outcome::Retry(r) => {
                            node.metrics().failed_attempts.inc();
                            tracing::warn!(message_id = %id, conversation_id = %e.message.conversation_id, attempt = e.attempts + 1, reason = %r, "attempt failed");
                        }
                        Outcome::Dead(r) => {
                            node.metrics().dead.inc();
                            tracing::warn!(message_id = %id, conversation_id = %e.message.conversation_id, reason = %r, "dead");
                        }
                        Outcome::Expired => {
                            node.metrics().expired.inc();
                            tracing::warn!(message_id = %id, conversation_id = %e.message.conversation_id, "expired");
                        }
                        Outcome::ReceiptReturned => {}
                    }
                }
            }
            Err(e) => {
                // Nothing was recorded: the messages are still due and will be sent again
                // (the receiver deduplicates).
                tracing::error!(error = %e, "cannot record delivery outcomes");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn describe(status: &tonic::Status) -> String {
    let msg = status.message();
    if msg.is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{:?}: {msg}", status.code())
    }
}

/// Decides what an item's outcome means, verifying any receipt.
fn judge(
    node: &dyn Host,
    peer: &str,
    e: &OutboxEntry,
    outcome: Option<deliver_outcome::Outcome>,
) -> Outcome {
    let Payload::Envelope {
        sender,
        recipient,
        envelope,
        ..
    } = &e.message.payload
    else {
        return Outcome::Dead("not an envelope".into());
    };
    let digest = receipt::digest(envelope);
    let id = e.message.message_id;
    match outcome {
        Some(deliver_outcome::Outcome::Receipt(r)) => {
            let trust = node.trust();
            let Some(anchors) = trust.state(recipient) else {
                return Outcome::Dead(format!("{recipient} left the trust space"));
            };
            match node.receipts().verify(
                &r,
                &anchors.documents,
                anchors.algorithms.as_ref(),
                recipient,
                id,
                &digest,
            ) {
                Ok(facts) => {
                    let verdict = if facts.entry.verdict == "recognised" {
                        State::Recognised
                    } else {
                        State::Rejected
                    };
                    let mut note = format!("receipt by {}", facts.signer);
                    if !facts.entry.reasons.is_empty() {
                        note.push_str(&format!("; reasons: {}", facts.entry.reasons.join(", ")));
                    }
                    if node.settings().hub {
                        Outcome::DeliveredForSender {
                            receipt: r,
                            verdict,
                            sender: sender.clone(),
                            recipient: recipient.clone(),
                        }
                    } else {
                        Outcome::Delivered {
                            receipt: r,
                            verdict,
                            reasons: facts.entry.reasons,
                            note,
                        }
                    }
                }
                Err(err) => Outcome::Retry(format!("{peer}'s receipt refused: {err}")),
            }
        }
        Some(deliver_outcome::Outcome::Forwarded(f)) => {
            let trust = node.trust();
            let Some(hub) = trust.state(peer) else {
                return Outcome::Dead(format!("{peer} left the trust space"));
            };
            match node.receipts().verify(
                &f.hub_receipt,
                &hub.documents,
                hub.algorithms.as_ref(),
                peer,
                id,
                &digest,
            ) {
                Ok(_) => Outcome::Forwarded {
                    recipient: recipient.clone(),
                    hub_receipt: f.hub_receipt,
                },
                Err(err) => Outcome::Retry(format!("hub {peer}'s acceptance refused: {err}")),
            }
        }
        Some(deliver_outcome::Outcome::Refused(r)) => {
            let reason = format!("refused by {peer}: {}: {}", r.code, r.reason);
            if r.transient {
                Outcome::Retry(reason)
            } else {
                Outcome::Dead(reason)
            }
        }
        None => Outcome::Retry(format!("{peer} gave no outcome")),
    }
}
