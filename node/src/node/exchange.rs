//! The `Exchange` service between nodes. Who calls is decided by the TLS client certificate
//! (it must be a node listed in the trust space); each item must come from the caller's own
//! state, or from the hub. A member verifies each envelope against the sender state's
//! anchors, stores it once and answers with a signed receipt (redelivery returns the first
//! one). A hub stores and forwards on the route alone, without reading the body, and answers
//! with its own signed acceptance; the final receipt travels back through `ReturnReceipts`.

use std::sync::Arc;

use chrono::Utc;
use tereze_codecs::xml;
use tereze_support::urn::parse_id;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::proto::exchange_server::{Exchange, ExchangeServer};
use super::proto::{
    deliver_outcome, ChangeSetDocument, DeliverOutcome, DeliverRequest, DeliverResponse,
    FetchChangeSetsRequest, FetchTrustSpaceRequest, FetchTrustSpaceResponse, Forwarded, Refusal,
    ResolveTraderRequest, ResolveTraderResponse, ReturnReceiptsRequest, ReturnReceiptsResponse,
};
use super::proto::{
    AttachmentChunk, AttachmentHeader, AttachmentStatusResponse, PutAttachmentResponse,
};
use super::Node;
use crate::class::{Class, Classify};
use crate::config::Role;
use crate::receipt::{self, EntryFacts};
use crate::recognition::{Inbound, Recogniser};
use crate::store::{Accepted, Incoming, Outgoing, Payload, State};
use crate::trust::StateEntry;

pub(crate) fn service(node: Arc<Node>) -> ExchangeServer<ExchangeService> {
    let limit = message_size_limit(&node.config.limits);
    ExchangeServer::new(ExchangeService { node })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit)
}

/// The largest Deliver call or answer: `max_call_bytes` of envelopes plus 1 MiB of framing
/// (routes, receipts).
pub(crate) fn call_size_limit(limits: &crate::config::Limits) -> usize {
    limits.max_call_bytes.saturating_add(1 << 20)
}

/// The largest gRPC message of `Exchange`, either way: a `Deliver` call or answer, or a
/// `PutAttachment` chunk of the largest size a sender may use (4 MiB, with its header), so
/// that a node with a small `limits.max_call_bytes` still takes any peer's chunks.
pub(crate) fn message_size_limit(limits: &crate::config::Limits) -> usize {
    call_size_limit(limits).max(crate::attachments::MAX_CHUNK_BYTES + (64 << 10))
}

pub(crate) struct ExchangeService {
    node: Arc<Node>,
}

fn refusal(id: &str, code: &str, reason: String, transient: bool) -> DeliverOutcome {
    DeliverOutcome {
        message_id: id.to_owned(),
        outcome: Some(deliver_outcome::Outcome::Refused(Refusal {
            code: code.into(),
            reason,
            transient,
        })),
    }
}

impl ExchangeService {
    /// The trust-space state of the calling node.
    fn caller<T>(&self, request: &Request<T>) -> Result<StateEntry, Status> {
        let certs = request
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let state = self
            .node
            .trust()
            .identify(leaf.as_ref())
            .cloned()
            .ok_or_else(|| {
                Status::permission_denied(
                    "the client certificate chains to a trust anchor but is not a node listed in the trust space",
                )
            })?;
        // The handshake checked the CRLs in force then; a connection outlives it, so a CRL
        // that arrived since is checked on every call.
        if !state.revocations.is_empty() {
            let cert = openssl::x509::X509::from_der(leaf.as_ref())
                .map_err(|_| Status::unauthenticated("the client certificate cannot be read"))?;
            if let Some(at) = state.revoked_at(&cert) {
                if at <= chrono::Utc::now() {
                    return Err(Status::permission_denied(format!(
                        "the client certificate of {}'s node was revoked at {}",
                        state.code,
                        at.to_rfc3339()
                    )));
                }
            }
        }
        Ok(state)
    }
}

/// One item that passed the transport checks, with what the receiver says of it.
struct Checked {
    index: usize,
    message_id: Uuid,
    conversation_id: Uuid,
    sender: String,
    recipient: String,
    envelope: Vec<u8>,
    digest: Vec<u8>,
    expires_at: Option<i64>,
    /// What the route says was sent before the envelope.
    attachments: Vec<super::proto::AttachmentInfo>,
    verdict: String,
    reasons: Vec<String>,
    /// The signed header's common process and document type (recognised or rejected here).
    labels: Option<(String, String)>,
    /// From a tester state: kept apart from the national system (docs/conformance.md).
    conformance: bool,
    /// The time-stamp evidence that came with the envelope and verified (empty: none).
    evidence: Vec<u8>,
    /// The judged time and its source, for the arrival's history note (empty: not judged
    /// here, as on a hub).
    judged: String,
}

#[tonic::async_trait]
impl Exchange for ExchangeService {
    async fn deliver(
        &self,
        request: Request<DeliverRequest>,
    ) -> Result<Response<DeliverResponse>, Status> {
        let caller = self.caller(&request)?;
        let node = self.node.clone();
        if node.shutdown.is_cancelled() {
            return Err(Status::unavailable("the node is shutting down"));
        }
        let mut items = request.into_inner().items;
        if items.len() > node.config.limits.max_batch {
            return Err(Status::invalid_argument(format!(
                "{} items in one call, over the limit of {}",
                items.len(),
                node.config.limits.max_batch
            )));
        }
        if let Err(e) = node.disk.check() {
            // The sender keeps the messages and tries again with backoff.
            return Err(Status::unavailable(e.to_string()));
        }
        // Held until the commit has answered (limits.max_queue_bytes): batches from every peer
        // waiting for the store cannot together hold more memory than that; the sender's gate
        // pauses and sends again.
        let bytes = items.iter().map(|i| i.envelope.len() as u64).sum::<u64>()
            + super::queue_bytes::PER_REQUEST;
        let _held = node
            .queue_bytes
            .reserve(bytes)
            .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        // A hub queues what it takes: a place in its outbox for each item before anything is
        // checked; items past the places left are refused for now (the sender retries them).
        let (places, over) = if node.is_hub() {
            let places = node.outbox.reserve_up_to(items.len() as u64).map_err(|e| {
                Status::resource_exhausted(format!("the hub's queues are full: {e}"))
            })?;
            let over = items.split_off((places.len() as usize).min(items.len()));
            (Some(places), over)
        } else {
            (None, Vec::new())
        };
        let n = node.clone();
        let caller_code = caller.code.clone();
        let caller_role = caller.role;
        // Verification and signing are CPU work.
        let (mut outcomes, checked, receipts) = tokio::task::spawn_blocking(move || {
            check_and_sign(&n, &caller_code, caller_role, items)
        })
        .await
        .map_err(|e| Status::internal(format!("worker: {e}")))??;
        let max_queue = node.config.limits.max_queue;
        outcomes.extend(over.iter().map(|item| {
            let id = item
                .route
                .as_ref()
                .map(|r| r.message_id.as_str())
                .unwrap_or("");
            refusal(
                id,
                "hub-queue-full",
                format!("the hub's outbox is at limits.max_queue = {max_queue}; retry later"),
                true,
            )
        }));
        let refused = outcomes.len() - checked.len();
        node.metrics.refused.inc_by(refused as u64);
        if checked.is_empty() {
            return Ok(Response::new(DeliverResponse { outcomes }));
        }
        let hub = node.is_hub();
        let state = node.config.state.clone();
        // The batch receipt's signature waits for its token in the same commit.
        let receipts_leaf = receipts
            .first()
            .filter(|_| super::stamper::enabled(&node))
            .and_then(|r| super::stamper::signature_value(r).ok());
        // Aligned with `checked`.
        let evidence: Vec<(Uuid, Vec<u8>, String)> = checked
            .iter()
            .map(|c| {
                (
                    c.message_id,
                    c.evidence.clone(),
                    format!(
                        "time-stamp evidence received with the envelope from {}",
                        caller.code
                    ),
                )
            })
            .collect();
        let stored = {
            let checked: Vec<(Incoming, Option<Outgoing>, Option<(String, String)>)> = checked
                .iter()
                .zip(&receipts)
                .map(|(c, r)| {
                    let forward = hub.then(|| Outgoing {
                        message_id: c.message_id,
                        conversation_id: c.conversation_id,
                        peer: c.recipient.clone(),
                        payload: Payload::Envelope {
                            sender: c.sender.clone(),
                            recipient: c.recipient.clone(),
                            envelope: c.envelope.clone(),
                            attachments: super::transfer::metas(&c.attachments),
                        },
                        expires_at: c.expires_at,
                    });
                    (
                        Incoming {
                            message_id: c.message_id,
                            sender: c.sender.clone(),
                            envelope: if hub { Vec::new() } else { c.envelope.clone() },
                            receipt: r.clone(),
                            verdict: c.verdict.clone(),
                            reasons: c.reasons.clone(),
                            digest: tereze_support::hex::hex(&c.digest),
                            conformance: c.conformance,
                            judged: c.judged.clone(),
                        },
                        forward,
                        c.labels.clone(),
                    )
                })
                .collect();
            node.committer
                .run(move |t| {
                    let mut results = Vec::with_capacity(checked.len());
                    for (m, f, labels) in &checked {
                        let accepted = t.accept(m, f.as_ref())?;
                        if let (Accepted::New, Some((process, document_type))) = (&accepted, labels)
                        {
                            t.describe(m.message_id, process, document_type)?;
                        }
                        results.push(accepted);
                    }
                    keep_inline_evidence(t, &evidence, &results, receipts_leaf.as_deref())?;
                    Ok(results)
                })
                .await
                .map_err(|e| super::answer::store_status(&e))?
        };
        let mut new_forwards = 0u64;
        for ((c, r), accepted) in checked.iter().zip(receipts).zip(stored) {
            let receipt = match accepted {
                Accepted::New => {
                    node.metrics.received.inc();
                    // A tester's cases would skew the indicators reported on real exchange
                    // (rejections by reason, messages per process).
                    if !c.conformance {
                        for reason in &c.reasons {
                            node.metrics.rejected(reason);
                        }
                        if let Some((process, document_type)) = &c.labels {
                            node.metrics
                                .count_message("in", &c.sender, process, document_type);
                        }
                    }
                    if hub {
                        new_forwards += 1;
                        node.waker(&c.recipient).notify_one();
                    }
                    tracing::info!(
                        message_id = %c.message_id,
                        conversation_id = %c.conversation_id,
                        from = %c.sender,
                        to = %c.recipient,
                        verdict = %c.verdict,
                        conformance = c.conformance,
                        at = %state,
                        "received"
                    );
                    r
                }
                Accepted::Duplicate { receipt } => {
                    node.metrics.duplicates.inc();
                    receipt
                }
                Accepted::OtherDigest { first } => {
                    // Answering with the first receipt would let a replayed id pass for a
                    // delivered message; the operator should know the id was reused.
                    node.metrics.replayed_ids.inc();
                    node.metrics.refused.inc();
                    let now = tereze_support::hex::hex(&c.digest);
                    tracing::warn!(
                        message_id = %c.message_id,
                        from = %c.sender,
                        first_digest = %first,
                        digest = %now,
                        "replayed message id with another envelope refused"
                    );
                    outcomes[c.index] = refusal(
                        &format!("urn:uuid:{}", c.message_id),
                        "replayed-id-different-digest",
                        format!(
                            "message id urn:uuid:{} was taken before for an envelope with SHA-256 {first}; this one is {now}",
                            c.message_id
                        ),
                        false,
                    );
                    continue;
                }
            };
            let outcome = if hub {
                deliver_outcome::Outcome::Forwarded(Forwarded {
                    hub_receipt: receipt,
                })
            } else {
                deliver_outcome::Outcome::Receipt(receipt)
            };
            outcomes[c.index] = DeliverOutcome {
                message_id: format!("urn:uuid:{}", c.message_id),
                outcome: Some(outcome),
            };
        }
        if let Some(places) = places {
            places.commit(new_forwards);
        }
        Ok(Response::new(DeliverResponse { outcomes }))
    }

    async fn put_attachment(
        &self,
        request: Request<tonic::Streaming<AttachmentChunk>>,
    ) -> Result<Response<PutAttachmentResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = super::transfer::receive(&self.node, &caller, request.into_inner()).await?;
        Ok(Response::new(r))
    }

    async fn attachment_status(
        &self,
        request: Request<AttachmentHeader>,
    ) -> Result<Response<AttachmentStatusResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = super::transfer::status(&self.node, &caller, request.into_inner()).await?;
        Ok(Response::new(r))
    }

    async fn deliver_evidence(
        &self,
        request: Request<super::proto::DeliverEvidenceRequest>,
    ) -> Result<Response<super::proto::DeliverEvidenceResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = super::stamper::deliver_evidence(self.node.clone(), caller, request.into_inner())
            .await?;
        Ok(Response::new(r))
    }

    async fn fetch_trust_space(
        &self,
        request: Request<FetchTrustSpaceRequest>,
    ) -> Result<Response<FetchTrustSpaceResponse>, Status> {
        self.caller(&request)?;
        let have = request.into_inner().have_version;
        let trust = self.node.trust();
        // Only a space that came with the Commission's signature is handed on.
        let document = if trust.signer.is_some() && trust.version > have {
            trust.source.clone()
        } else {
            Vec::new()
        };
        Ok(Response::new(FetchTrustSpaceResponse {
            document,
            version: trust.version,
        }))
    }

    type FetchChangeSetsStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<ChangeSetDocument, Status>> + Send>,
    >;

    async fn fetch_change_sets(
        &self,
        request: Request<FetchChangeSetsRequest>,
    ) -> Result<Response<Self::FetchChangeSetsStream>, Status> {
        self.caller(&request)?;
        let r = request.into_inner();
        let limit = match r.limit as usize {
            0 => super::reference::MAX_SETS_PER_FETCH,
            n => n.min(super::reference::MAX_SETS_PER_FETCH),
        };
        let have: std::collections::HashMap<String, u64> = r.have.into_iter().collect();
        let sets = self
            .node
            .store()
            .change_sets_after(&have, limit)
            .map_err(|e| super::answer::store_status(&e))?;
        let items = sets.into_iter().map(|(directory, number, document)| {
            Ok(ChangeSetDocument {
                directory,
                number,
                document,
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn resolve_trader(
        &self,
        request: Request<ResolveTraderRequest>,
    ) -> Result<Response<ResolveTraderResponse>, Status> {
        self.caller(&request)?;
        let r = request.into_inner();
        let parsed = tereze_reference_data::trader::parse(&r.id)
            .map_err(|e| Status::invalid_argument(format!("id: {}: {e}", r.id)))?;
        if parsed.country.as_str() != self.node.config.state {
            return Err(Status::failed_precondition(format!(
                "{} is not a trader of {}: ask {}'s node",
                r.id,
                self.node.config.state,
                parsed.country.as_str()
            )));
        }
        let as_of = if r.as_of.is_empty() {
            Utc::now().date_naive()
        } else {
            tereze_reference_data::date::parse(&r.as_of).map_err(|e| {
                Status::invalid_argument(format!(
                    "as_of: {:?} is not a date (YYYY-MM-DD): {e}",
                    r.as_of
                ))
            })?
        };
        let answer = self
            .node
            .answer_for(&r.id, as_of)
            .map_err(|e| super::answer::status(&e))?;
        Ok(Response::new(ResolveTraderResponse { answer }))
    }

    async fn return_receipts(
        &self,
        request: Request<ReturnReceiptsRequest>,
    ) -> Result<Response<ReturnReceiptsResponse>, Status> {
        let caller = self.caller(&request)?;
        if caller.role != Role::Hub {
            // A member returns only its own later judgements (docs/receipts.md).
            let r = super::verdicts::take_from_member(
                &self.node,
                &caller.code,
                request.into_inner().receipts,
            )
            .await?;
            return Ok(Response::new(r));
        }
        let node = self.node.clone();
        let mut accepted = Vec::new();
        let mut deliveries = Vec::new();
        let mut later = Vec::new();
        for r in request.into_inner().receipts {
            let Some(id) = parse_id(&r.message_id) else {
                continue;
            };
            let awaited = node
                .store()
                .awaited(id)
                .map_err(|e| super::answer::store_status(&e))?;
            let Some((recipient, digest)) = awaited else {
                // Delivered already: a later judgement, or a repeated return (taken); unknown
                // ids are not taken.
                later.push(r);
                continue;
            };
            let trust = node.trust();
            let Some(anchors) = trust.state(&recipient) else {
                continue;
            };
            match node.receipts.verify(
                &r.receipt,
                &anchors.documents,
                anchors.algorithms.as_ref(),
                &recipient,
                id,
                &digest,
            ) {
                Ok(facts) => {
                    deliveries.push((
                        id,
                        r.receipt,
                        facts.entry.verdict,
                        facts.entry.reasons,
                        recipient,
                    ));
                    accepted.push(r.message_id);
                }
                Err(e) => {
                    tracing::warn!(message_id = %id, error = %e, "returned receipt refused");
                }
            }
        }
        let n = deliveries.len() as u64;
        node.committer
            .run(move |t| {
                for (id, receipt, verdict, reasons, recipient) in &deliveries {
                    let state = if verdict == "recognised" {
                        State::Recognised
                    } else {
                        State::Rejected
                    };
                    match t.delivered(
                        *id,
                        receipt,
                        state,
                        reasons,
                        Some(format!("receipt from {recipient} via the hub")),
                    ) {
                        Ok(()) | Err(crate::store::StoreError::NotAwaited(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
            .await
            .map_err(|e| super::answer::store_status(&e))?;
        node.metrics.relay.delivered.inc_by(n);
        accepted.extend(super::verdicts::take_from_hub(&node, later).await?);
        Ok(Response::new(ReturnReceiptsResponse { accepted }))
    }
}

/// Recognition looks up the attachments this node received in its attachment files.
impl crate::recognition::AttachmentLookup for Node {
    fn held(
        &self,
        message: Uuid,
        id: &str,
    ) -> Result<Option<crate::recognition::HeldFile>, crate::recognition::LookupError> {
        Ok(self
            .attachments
            .held(message, id)?
            .map(|h| crate::recognition::HeldFile {
                size: h.size,
                sha256: h.sha256,
            }))
    }

    fn max_checked_body_bytes(&self) -> u64 {
        self.attachments.limits.max_checked_body_bytes
    }

    fn read_small(
        &self,
        message: Uuid,
        id: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, crate::recognition::LookupError> {
        Ok(self.attachments.read_small(message, id, max)?)
    }
}

/// This node's recogniser under `trust` and `directories`.
fn recogniser<'a>(
    node: &'a Node,
    trust: &'a crate::trust::TrustSpace,
    directories: &'a tereze_reference_data::Directories,
    traders: &'a super::traders::NodeTraders<'a>,
) -> Recogniser<'a> {
    Recogniser {
        attachments: Some(node),
        trust,
        state: &node.config.state,
        catalog: &node.catalog,
        directories,
        limits: xml::Limits {
            max_bytes: node.config.limits.max_message_bytes,
            ..xml::Limits::default()
        },
        traders,
    }
}

/// Recognition again, under the trust space in force, of every quarantined message: the ids
/// now recognised, each with the time it was judged at (and its source, as worded for the
/// history), and how many are still rejected.
pub(crate) fn recognise_quarantine(
    node: &Node,
) -> Result<(Vec<(Uuid, String)>, usize), crate::store::StoreError> {
    let trust = node.trust();
    let directories = node.directories();
    let traders = super::traders::NodeTraders { node };
    let recogniser = recogniser(node, &trust, &directories, &traders);
    let mut released = Vec::new();
    let mut still = 0;
    for m in node.store().quarantined()? {
        // Judged as at its arrival (expiry, clock skew), under today's trust space.
        let arrived = node
            .store()
            .history(m.message_id)?
            .iter()
            .find(|t| t.state == crate::store::State::Received)
            .and_then(|t| chrono::DateTime::from_timestamp_millis(t.at))
            .unwrap_or_else(Utc::now);
        // Evidence that came after the envelope counts on a second look.
        let evidence = node.store().evidence_of(m.message_id)?;
        let verdict = recogniser.recognise(&Inbound {
            envelope: &m.envelope,
            sender: &m.sender,
            transport: None,
            message_id: Some(m.message_id),
            received_at: arrived,
            hub_received_at: None,
            evidence: evidence.as_deref(),
        });
        match verdict {
            Ok(v) if v.recognised() => released.push((
                m.message_id,
                v.judged
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            )),
            _ => still += 1,
        }
    }
    Ok((released, still))
}

/// Judges every quarantined message again ([`recognise_quarantine`]) and moves those now
/// recognised to the inbox, their history (and so the audit log) saying who asked: the ids
/// released and how many are still rejected. The receipts given at the time stand; each
/// released message's new verdict is signed and queued for its sender in the same
/// transaction (`verdicts`).
pub(crate) async fn rejudge_quarantine(
    node: &Arc<Node>,
    by: &str,
) -> Result<(Vec<Uuid>, usize), RejudgeError> {
    let n = node.clone();
    let (released, still, judgements, judged) = tokio::task::spawn_blocking(move || {
        let (judged, still) = recognise_quarantine(&n)?;
        let released: Vec<Uuid> = judged.iter().map(|(id, _)| *id).collect();
        let judgements = super::verdicts::sign_releases(&n, &released)?;
        let judged: std::collections::HashMap<Uuid, String> = judged.into_iter().collect();
        Ok::<_, RejudgeError>((released, still, judgements, judged))
    })
    .await
    .map_err(RejudgeError::Worker)??;
    let version = node.trust().version;
    let note = format!("recognised on a second look under trust space v{version}, {by}");
    let queued = node
        .committer
        .run(move |t| {
            let mut queued = Vec::new();
            for j in &judgements {
                let at = judged
                    .get(&j.message_id)
                    .filter(|at| !at.is_empty())
                    .map(|at| format!("; judged at {at}"))
                    .unwrap_or_default();
                match t.release_from_quarantine(j.message_id, format!("{note}{at}{}", j.note)) {
                    Ok(()) => {}
                    Err(crate::store::StoreError::NotQuarantined(_)) => continue,
                    Err(e) => return Err(e),
                }
                if let Some(out) = &j.out {
                    if t.queue_judgement(out)? {
                        queued.push(out.peer.clone());
                    }
                }
            }
            Ok(queued)
        })
        .await?;
    node.outbox_add(queued.len() as u64);
    for peer in queued {
        node.waker(&peer).notify_one();
    }
    Ok((released, still))
}

/// Why the quarantine could not be judged again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RejudgeError {
    /// The blocking worker judging the messages failed (or was stopped by the shutdown).
    #[error("{0}")]
    Worker(#[source] tokio::task::JoinError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The new verdicts could not be prepared (signed).
    #[error(transparent)]
    Verdicts(#[from] super::verdicts::ReleaseError),
}

impl Classify for RejudgeError {
    fn class(&self) -> Class {
        match self {
            RejudgeError::Worker(e) => Class::of_worker(e),
            RejudgeError::Store(e) => e.class(),
            RejudgeError::Verdicts(e) => e.class(),
        }
    }
}

type CheckResult = (Vec<DeliverOutcome>, Vec<Checked>, Vec<Vec<u8>>);

fn check_and_sign(
    node: &Node,
    caller: &str,
    caller_role: Role,
    items: Vec<super::proto::DeliverItem>,
) -> Result<CheckResult, Status> {
    let mut outcomes = Vec::with_capacity(items.len());
    let mut checked = Vec::new();
    let now = tereze_support::clock::now_ms();
    // One trust space for the whole batch: an update arriving meanwhile applies to the next.
    let trust = node.trust();
    for (index, item) in items.into_iter().enumerate() {
        let Some(route) = item.route else {
            outcomes.push(refusal("", "bad-route", "item has no route".into(), false));
            continue;
        };
        let mid = route.message_id.clone();
        let refuse = |code: &str, reason: String| refusal(&mid, code, reason, false);
        let (Some(message_id), Some(conversation_id)) = (
            parse_id(&route.message_id),
            parse_id(&route.conversation_id),
        ) else {
            outcomes.push(refuse(
                "bad-route",
                "route.message_id and route.conversation_id must be urn:uuid: values".into(),
            ));
            continue;
        };
        if item.envelope.len() > node.config.limits.max_message_bytes {
            outcomes.push(refuse(
                "oversize",
                format!(
                    "envelope is {} bytes, over this node's limit of {}",
                    item.envelope.len(),
                    node.config.limits.max_message_bytes
                ),
            ));
            continue;
        }
        let digest = receipt::digest(&item.envelope);
        if route.digest != digest {
            outcomes.push(refuse(
                "bad-route",
                "route.digest is not the SHA-256 of the envelope".into(),
            ));
            continue;
        }
        if route.sender != caller && caller_role != Role::Hub {
            outcomes.push(refuse(
                "not-authorised",
                format!(
                    "the client certificate is {caller}'s node; it may not deliver for {}",
                    route.sender
                ),
            ));
            continue;
        }
        // The route's sender is bound to the caller's TLS identity above (or vouched for by
        // the hub), so a tester state is told by who calls, not by what an envelope claims.
        let Some(conformance) = trust.state(&route.sender).map(|s| s.conformance) else {
            outcomes.push(refuse(
                "unknown-sender",
                format!("{} is not a state in the trust space", route.sender),
            ));
            continue;
        };
        let for_me = route.recipient == node.config.state;
        if !for_me && (!node.is_hub() || trust.state(&route.recipient).is_none()) {
            outcomes.push(refuse(
                "unknown-recipient",
                node.not_this_node(&route.recipient),
            ));
            continue;
        }
        let expires_at = (route.expires_at_ms > 0).then_some(route.expires_at_ms);
        // A redelivery gets its first receipt even after the attachments were collected.
        let known = !route.attachments.is_empty()
            && node
                .store()
                .history(message_id)
                .map(|h| !h.is_empty())
                .unwrap_or(false);
        if !known {
            match super::transfer::all_held(node, message_id, &route.attachments) {
                Ok(()) => {}
                Err(super::transfer::NotHeld::Incomplete(why)) => {
                    // The sender sends attachments before the envelope; it tries again (and
                    // resumes the transfer) later.
                    outcomes.push(refusal(&mid, "attachments-incomplete", why, true));
                    continue;
                }
                Err(super::transfer::NotHeld::OverLimit(why)) => {
                    outcomes.push(refusal(&mid, "attachments-refused", why, false));
                    continue;
                }
            }
        }
        // Recognition verifies the evidence that came with the envelope against the sender
        // state's authorities before it weighs the judged time (`judged` is set only then), so
        // a recognised or rejected envelope whose judged time was weighed has its evidence
        // checked already; the hub, and an envelope refused before that check, check it here.
        let (verdict, reasons, labels, judged, evidence_checked) = if for_me {
            let directories = node.directories();
            let traders = super::traders::NodeTraders { node };
            let recogniser = recogniser(node, &trust, &directories, &traders);
            let inbound = Inbound {
                envelope: &item.envelope,
                sender: &route.sender,
                transport: Some(caller),
                message_id: Some(message_id),
                received_at: Utc::now(),
                // The hub's word, trusted by recognition only from a hub.
                hub_received_at: (item.hub_received_at_ms > 0)
                    .then(|| chrono::DateTime::from_timestamp_millis(item.hub_received_at_ms))
                    .flatten(),
                evidence: (!item.evidence.is_empty()).then_some(item.evidence.as_slice()),
            };
            match recogniser.recognise(&inbound) {
                Ok(v) => {
                    let labels = v.envelope.as_ref().map(|e| {
                        (
                            e.header.process.clone(),
                            e.header.document.type_code.clone(),
                        )
                    });
                    let checked = v.judged.is_some();
                    let judged = v
                        .judged
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    if v.recognised() {
                        ("recognised".to_owned(), Vec::new(), labels, judged, checked)
                    } else {
                        for r in &v.reasons {
                            tracing::info!(message_id = %message_id, reason = r.code, detail = %r.message, "rejected");
                        }
                        (
                            "rejected".to_owned(),
                            v.reasons.iter().map(|r| r.code.to_owned()).collect(),
                            labels,
                            judged,
                            checked,
                        )
                    }
                }
                Err(e) => {
                    outcomes.push(refuse("malformed-envelope", e.to_string()));
                    continue;
                }
            }
        } else {
            if expires_at.is_some_and(|e| e < now) {
                outcomes.push(refuse(
                    "expired",
                    "the message expired before it reached the hub".into(),
                ));
                continue;
            }
            (
                "forwarded".to_owned(),
                Vec::new(),
                None,
                String::new(),
                false,
            )
        };
        let evidence = if evidence_checked {
            item.evidence
        } else {
            inline_evidence(
                &trust,
                &route.sender,
                message_id,
                &item.envelope,
                item.evidence,
            )
        };
        outcomes.push(DeliverOutcome::default());
        checked.push(Checked {
            index,
            message_id,
            conversation_id,
            sender: route.sender,
            recipient: route.recipient,
            envelope: item.envelope,
            digest,
            expires_at,
            attachments: route.attachments,
            verdict,
            reasons,
            labels,
            conformance,
            evidence,
            judged,
        });
    }
    let facts: Vec<EntryFacts> = checked
        .iter()
        .map(|c| EntryFacts {
            message_id: c.message_id,
            digest: c.digest.clone(),
            verdict: c.verdict.clone(),
            reasons: c.reasons.clone(),
            judgement: None,
        })
        .collect();
    let receipts = receipt::issue(&node.signing, &node.config.state, Utc::now(), &facts)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok((outcomes, checked, receipts))
}

/// The evidence that came with an envelope, when it verifies against the envelope and the
/// sender state's authorities; otherwise none (logged): the envelope is judged without it,
/// and evidence that does not hold is kept nowhere (docs/timestamps.md).
fn inline_evidence(
    trust: &crate::trust::TrustSpace,
    sender: &str,
    id: Uuid,
    envelope: &[u8],
    evidence: Vec<u8>,
) -> Vec<u8> {
    if evidence.is_empty() {
        return evidence;
    }
    match super::stamper::check_evidence(trust.state(sender), envelope, &evidence) {
        Ok(_) => evidence,
        Err(why) => {
            tracing::warn!(message_id = %id, from = %sender, reason = %why, "time-stamp evidence with the envelope does not verify; not kept");
            Vec::new()
        }
    }
}

/// In the commit that stores a delivery: the evidence that came with its envelopes (a
/// redelivery's too, when the first came without), and the batch receipt's signature, which
/// waits for its own token.
fn keep_inline_evidence(
    t: &mut crate::store::Txn<'_>,
    evidence: &[(Uuid, Vec<u8>, String)],
    accepted: &[Accepted],
    receipts_leaf: Option<&[u8]>,
) -> Result<(), crate::store::StoreError> {
    for ((id, e, note), accepted) in evidence.iter().zip(accepted) {
        // Another envelope under a taken id: its evidence is not the stored envelope's.
        if e.is_empty() || matches!(accepted, Accepted::OtherDigest { .. }) {
            continue;
        }
        t.evidence_received(*id, e, None, note.clone())?;
    }
    if let Some(leaf) = receipts_leaf {
        t.await_stamp(Uuid::new_v4(), super::stamper::RECEIPTS, leaf, None)?;
    }
    Ok(())
}
