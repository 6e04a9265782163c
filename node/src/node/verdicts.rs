//! Later judgements (docs/receipts.md, "Later judgements"): when this node judges a received
//! message again and its verdict changes (today: a quarantined message recognised on a second
//! look), it signs a new receipt numbered above the one given on arrival and queues it for the
//! sender's state (through the hub where the route goes) in the transaction that releases the
//! message, so a crash loses neither. The sender takes it through `ReturnReceipts` only when
//! it verifies over the receipt it holds (the receiving state's signature, the envelope it
//! sent, a higher judgement number): a replayed or older one is taken and changes nothing.
//! A hub relays a member's later judgement to the sender its own store names.

use std::sync::Arc;

use chrono::Utc;
use tereze_support::urn::parse_id;
use tonic::Status;
use uuid::Uuid;

use super::proto::{ReturnReceiptsResponse, ReturnedReceipt};
use super::Node;
use crate::receipt::{self, EntryFacts, Judgement, ReceiptError};
use crate::store::{Outgoing, Payload, State, StoreError};
use crate::trust::StateEntry;

/// A released message's new verdict, signed and ready to queue, with what its history says.
pub(crate) struct LaterJudgement {
    pub(crate) message_id: Uuid,
    /// `None` when the sender's state has left the trust space: nothing can reach it.
    pub(crate) out: Option<Outgoing>,
    /// Appended to the release's history note.
    pub(crate) note: String,
}

/// Signs, in one batch, the later judgement (recognised) of each of `released`, messages
/// found acceptable on a second look while still in quarantine.
pub(crate) fn sign_releases(
    node: &Node,
    released: &[Uuid],
) -> Result<Vec<LaterJudgement>, ReleaseError> {
    if released.is_empty() {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let mut found = Vec::new();
    for m in node.store().quarantined()? {
        if !released.contains(&m.message_id) {
            continue;
        }
        // The number follows the judgements the history holds (the arrival's verdict is 1).
        let judged = node
            .store()
            .history(m.message_id)?
            .iter()
            .filter(|t| matches!(t.state, State::Recognised | State::Rejected))
            .count();
        let number = u32::try_from(judged + 1).unwrap_or(u32::MAX).max(2);
        let digest = tereze_support::hex::unhex(&m.digest)
            .filter(|d| d.len() == 32)
            .unwrap_or_else(|| receipt::digest(&m.envelope));
        found.push((
            m.sender,
            EntryFacts {
                message_id: m.message_id,
                digest,
                verdict: "recognised".into(),
                reasons: Vec::new(),
                judgement: Some(Judgement { number, at: now }),
            },
        ));
    }
    let facts: Vec<EntryFacts> = found.iter().map(|(_, f)| f.clone()).collect();
    let receipts = receipt::issue(&node.signing, &node.config.state, now, &facts)
        .map_err(ReleaseError::Sign)?;
    Ok(found
        .into_iter()
        .zip(receipts)
        .map(|((sender, f), receipt)| {
            let number = receipt::judgement_number(&f);
            match node.next_hop(&sender) {
                Some(peer) => LaterJudgement {
                    message_id: f.message_id,
                    note: if peer == sender {
                        format!("; new verdict (judgement {number}) queued for {sender}")
                    } else {
                        format!(
                            "; new verdict (judgement {number}) queued for {sender} through {peer}"
                        )
                    },
                    out: Some(Outgoing {
                        message_id: f.message_id,
                        // A conversation of its own: it holds back nothing else.
                        conversation_id: f.message_id,
                        peer: peer.clone(),
                        payload: Payload::Receipt {
                            recipient: node.config.state.clone(),
                            receipt,
                            // A hub may not have forwarded the message (the route back can
                            // differ from the route there): it is told where to.
                            sender: (peer != sender).then(|| sender.clone()),
                        },
                        expires_at: None,
                    }),
                },
                None => LaterJudgement {
                    message_id: f.message_id,
                    note: format!(
                        "; {sender} is not in the trust space any more: no new verdict sent"
                    ),
                    out: None,
                },
            }
        })
        .collect())
}

/// Why later judgements could not be prepared: nothing was released.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReleaseError {
    #[error("cannot sign the new verdicts: {0}")]
    Sign(#[source] ReceiptError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::class::Classify for ReleaseError {
    fn class(&self) -> crate::class::Class {
        match self {
            // The node's own key failed: nothing the caller can change.
            ReleaseError::Sign(_) => crate::class::Class::Internal,
            ReleaseError::Store(e) => e.class(),
        }
    }
}

/// A later judgement to record: its verdict and the history's note.
struct Judged {
    id: Uuid,
    receipt: Vec<u8>,
    verdict: State,
    /// The receipt's reason codes.
    reasons: Vec<String>,
    note: String,
}

/// What to do with one returned receipt that is not an awaited first receipt.
enum Taken {
    /// A later judgement to record.
    Judged(Judged),
    /// Known already (a repeated return, a replayed or older judgement): taken, no change.
    Known,
    /// Refused (logged); the caller retries it or gives up after its attempts.
    Refused,
}

/// A receipt returned for `id`, a message this node sent to `recipient` and holds `held`
/// for: a later judgement verified over it, or a repetition.
fn judge_returned(node: &Node, id: Uuid, recipient: &str, receipt: &[u8], held: &[u8]) -> Taken {
    let trust = node.trust();
    let Some(anchors): Option<&StateEntry> = trust.state(recipient) else {
        tracing::warn!(message_id = %id, recipient, "later judgement from a state not in the trust space refused");
        return Taken::Refused;
    };
    match node.receipts.verify_later(
        receipt,
        &anchors.documents,
        anchors.algorithms.as_ref(),
        recipient,
        id,
        held,
    ) {
        Ok(facts) => {
            let e = facts.entry;
            let (verdict, said) = if e.verdict == "recognised" {
                (State::Recognised, "recognised".to_owned())
            } else {
                (
                    State::Rejected,
                    format!("rejected (reasons: {})", e.reasons.join(", ")),
                )
            };
            Taken::Judged(Judged {
                id,
                receipt: receipt.to_vec(),
                verdict,
                note: format!(
                    "judged again by {recipient}: {said} (judgement {})",
                    receipt::judgement_number(&e)
                ),
                reasons: e.reasons,
            })
        }
        // Signed by the receiver and for this envelope, but the first receipt returned again
        // or a judgement no newer than the one held: nothing to change.
        Err(ReceiptError::NotAJudgement | ReceiptError::NotNewer { .. }) => Taken::Known,
        Err(e) => {
            tracing::warn!(message_id = %id, recipient, error = %e, "returned later judgement refused");
            Taken::Refused
        }
    }
}

/// Receipts a hub returns for messages no longer awaited: later judgements, or repetitions.
/// The ids taken (recorded, or known already).
pub(crate) async fn take_from_hub(
    node: &Arc<Node>,
    returned: Vec<ReturnedReceipt>,
) -> Result<Vec<String>, Status> {
    take(node, None, returned).await
}

/// Judges and records `returned`, the ids taken (recorded, or known already). From a member
/// (`caller`), only the receipts its state signed are considered, and what is passed over is
/// logged.
async fn take(
    node: &Arc<Node>,
    caller: Option<&str>,
    returned: Vec<ReturnedReceipt>,
) -> Result<Vec<String>, Status> {
    let mut accepted = Vec::new();
    let mut judged = Vec::new();
    for r in returned {
        let Some(id) = parse_id(&r.message_id) else {
            continue;
        };
        if let Some(caller) = caller.filter(|c| r.recipient != *c) {
            tracing::warn!(message_id = %id, caller, recipient = %r.recipient, "a member may return only its own judgements");
            continue;
        }
        let held = node
            .store()
            .receipt(id)
            .map_err(|e| super::answer::store_status(&e))?;
        let Some(held) = held else {
            if let Some(caller) = caller {
                tracing::warn!(message_id = %id, caller, "later judgement of a message this node holds no receipt for");
            }
            continue;
        };
        match judge_returned(node, id, &r.recipient, &r.receipt, &held) {
            Taken::Judged(j) => judged.push(j),
            Taken::Known => {}
            Taken::Refused => continue,
        }
        accepted.push(r.message_id);
    }
    record(node, judged).await?;
    Ok(accepted)
}

/// Records later judgements, each in its message's history (and so its events).
async fn record(node: &Arc<Node>, judged: Vec<Judged>) -> Result<(), Status> {
    if judged.is_empty() {
        return Ok(());
    }
    node.committer
        .run(move |t| {
            for j in &judged {
                t.judged_again(j.id, &j.receipt, j.verdict, &j.reasons, j.note.clone())?;
            }
            Ok(())
        })
        .await
        .map_err(|e| super::answer::store_status(&e))
}

/// A member returns its own later judgements (`ReturnReceipts` from a member): to this node
/// as the sender, or to this hub, which relays each to the state its store names as the
/// message's sender. Only receipts the caller's state signed are considered.
pub(crate) async fn take_from_member(
    node: &Arc<Node>,
    caller: &str,
    returned: Vec<ReturnedReceipt>,
) -> Result<ReturnReceiptsResponse, Status> {
    if node.is_hub() {
        return relay_for_member(node, caller, returned).await;
    }
    let accepted = take(node, Some(caller), returned).await?;
    Ok(ReturnReceiptsResponse { accepted })
}

/// The hub's part: a later judgement from member `caller` goes on to the message's sender,
/// the state the member names. For a message the hub forwarded itself, its search row names
/// the sender once the first receipt went back to it: a judgement that names another is
/// refused, and one that comes before the first receipt went back is not taken yet (the
/// member retries), so the sender gets the first receipt first. The hub cannot read the
/// digest of a message it did not forward; the sender verifies the signature and the digest.
async fn relay_for_member(
    node: &Arc<Node>,
    caller: &str,
    returned: Vec<ReturnedReceipt>,
) -> Result<ReturnReceiptsResponse, Status> {
    let mut queued = Vec::new();
    for r in returned {
        let Some(id) = parse_id(&r.message_id) else {
            continue;
        };
        if r.recipient != caller {
            continue;
        }
        let meta = node
            .store()
            .meta(id)
            .map_err(|e| super::answer::store_status(&e))?;
        let forwarded_to = meta.filter(|m| m.direction == "out").map(|m| m.peer);
        let sender = match forwarded_to {
            Some(p) if p == caller => {
                tracing::info!(message_id = %id, caller, "later judgement before the first receipt went back: not taken yet");
                continue;
            }
            Some(p) if r.sender.is_empty() || r.sender == p => p,
            None if node.trust().state(&r.sender).is_some() => r.sender.clone(),
            _ => {
                tracing::warn!(message_id = %id, caller, sender = %r.sender, "later judgement for a sender this hub cannot relay to refused");
                continue;
            }
        };
        queued.push((
            r.message_id,
            Outgoing {
                message_id: id,
                conversation_id: id,
                peer: sender,
                payload: Payload::Receipt {
                    recipient: caller.to_owned(),
                    receipt: r.receipt,
                    sender: None,
                },
                expires_at: None,
            },
        ));
    }
    let outs: Vec<Outgoing> = queued.iter().map(|(_, o)| o.clone()).collect();
    let taken = node
        .committer
        .run(move |t| {
            let mut taken = Vec::with_capacity(outs.len());
            for o in &outs {
                // A receipt for it still waiting here goes first: the member retries.
                match t.enqueue(std::slice::from_ref(o), &[]) {
                    Ok(()) => taken.push(true),
                    Err(StoreError::AlreadyQueued(_)) => taken.push(false),
                    Err(e) => return Err(e),
                }
            }
            Ok(taken)
        })
        .await
        .map_err(|e| super::answer::store_status(&e))?;
    let mut accepted = Vec::new();
    let mut added = 0;
    for ((id, o), took) in queued.into_iter().zip(taken) {
        if took {
            added += 1;
            node.waker(&o.peer).notify_one();
            accepted.push(id);
        }
    }
    node.outbox_add(added);
    Ok(ReturnReceiptsResponse { accepted })
}

/// An inbox entry as the national system sees it: its current verdict and newest receipt. The
/// stored row keeps what was said on arrival; one that reached the inbox from quarantine was
/// recognised on a second look, and its later judgement is the message's newest receipt.
pub(crate) fn current(node: &Node, mut m: crate::store::Incoming) -> crate::store::Incoming {
    if m.verdict != "recognised" {
        m.verdict = "recognised".into();
        m.reasons.clear();
        if let Ok(Some(r)) = node.store().receipt(m.message_id) {
            m.receipt = r;
        }
    }
    m
}
