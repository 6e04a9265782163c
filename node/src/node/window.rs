//! The `Window` gRPC service for the national system: submit, status, a stream of status
//! changes, and the inbox (pull, then acknowledge what was taken).

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::answer::{self, Malformed};
use super::national::Caller;
use super::proto::window_server::{Window, WindowServer};
use super::proto::{
    AttachmentData, BeginUploadRequest, FetchAttachmentRequest, UploadChunk, UploadResponse,
    UploadStatusRequest,
};
use super::proto::{GetSubmissionRequest, SubmissionDecision, SubmissionMember};
use super::proto::{
    InboxAckRequest, InboxAckResponse, InboxMessage, InboxPullRequest, InboxPullResponse,
    ReferenceChange, StatusEvent, StatusRequest, StatusResponse, SubmitRequest, SubmitResponse,
    SubmittedMessage, SubscribeReferenceRequest, SubscribeRequest, Transition,
};
use super::submit::{self, Submission};
use super::Node;
use crate::attachments::{AttachmentError, UploadState, UploadWant};
use crate::class::{Class, Classify};
use crate::config::Operation;
use crate::shutdown::{until_shutdown, UntilShutdown, SHUTTING_DOWN};
use crate::store::StoreError;
use tereze_support::urn::parse_id;

pub(crate) fn service(node: Arc<Node>) -> WindowServer<WindowService> {
    let limit = node.config.limits.max_message_bytes.saturating_add(1 << 16);
    WindowServer::new(WindowService { node })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX)
}

pub(crate) struct WindowService {
    node: Arc<Node>,
}

fn id_arg(s: &str, field: &str) -> Result<Uuid, Status> {
    parse_id(s).ok_or_else(|| Status::invalid_argument(format!("{field}: {s:?} is not a urn:uuid")))
}

/// Events read from the log per look, and held for a slow reader.
const REPLAY_PAGE: usize = 100;

/// `Subscribe` with `after`: the log's events after it (those of `wanted` messages, or all),
/// then each new one as it is committed. A slow reader holds the reading task back (the
/// events wait in the log, not in memory); a cursor compacted away ends the stream with
/// `OUT_OF_RANGE` naming the oldest event kept.
fn replay_and_follow(
    node: Arc<Node>,
    after: u64,
    wanted: Vec<Uuid>,
) -> Result<tokio_stream::wrappers::ReceiverStream<Result<StatusEvent, Status>>, Status> {
    // A cursor past the end is refused now rather than as the stream's first item.
    node.store()
        .events(after, 1)
        .map_err(|e| answer::store_status(&e))?;
    let (tx, rx) = tokio::sync::mpsc::channel(REPLAY_PAGE);
    tokio::spawn(async move {
        let mut cursor = after;
        loop {
            let wait = std::time::Duration::from_secs(super::events::MAX_WAIT_SECONDS);
            let read = tokio::select! {
                _ = tx.closed() => return,
                r = super::events::read_after(&node, cursor, REPLAY_PAGE, wait) => r,
            };
            let page = match read {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(answer::store_status(&e))).await;
                    return;
                }
            };
            if node.shutdown.is_cancelled() {
                return;
            }
            for e in &page.events {
                cursor = e.seq;
                if !wanted.is_empty() && !e.message_id.is_some_and(|id| wanted.contains(&id)) {
                    continue;
                }
                if tx.send(Ok(status_event(e))).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// A logged event as the Window streams it.
fn status_event(e: &crate::store::Event) -> StatusEvent {
    StatusEvent {
        message_id: e
            .message_id
            .map(|id| format!("urn:uuid:{id}"))
            .unwrap_or_default(),
        transition: Some(Transition {
            state: e.state.clone().unwrap_or_default(),
            at_ms: e.at,
            note: e.note.clone().unwrap_or_default(),
        }),
        seq: e.seq,
        kind: e.kind.clone(),
        subject: e.subject.clone(),
        body_json: e.body.as_ref().map(|b| b.to_string()).unwrap_or_default(),
    }
}

pub(crate) fn transition(t: &crate::store::Transition) -> Transition {
    Transition {
        state: t.state.as_str().into(),
        at_ms: t.at,
        note: t.note.clone().unwrap_or_default(),
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<StatusEvent, Status>> + Send>>;

impl WindowService {
    /// The calling national client, if it may call `operation` ([`super::national`]).
    fn authorise<T>(
        &self,
        request: &Request<T>,
        operation: Option<Operation>,
        what: &str,
    ) -> Result<Caller, Status> {
        super::national::authorise_grpc(&self.node.national, request, operation, what)
    }

    /// A stream this service answers with, ended by `UNAVAILABLE` when the node begins to shut
    /// down (the server's graceful shutdown waits for it otherwise).
    fn until_shutdown<S, T>(&self, stream: S) -> UntilShutdown<S>
    where
        S: Stream<Item = Result<T, Status>> + Unpin,
    {
        until_shutdown(
            stream,
            self.node.shutdown.clone(),
            Err(Status::unavailable(SHUTTING_DOWN)),
        )
    }
}

#[tonic::async_trait]
impl Window for WindowService {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let by = self.authorise(&request, Some(Operation::Submit), "Window.Submit")?;
        let r = request.into_inner();
        let conversation_id = if r.conversation_id.is_empty() {
            None
        } else {
            Some(id_arg(&r.conversation_id, "conversation_id")?)
        };
        let queued = submit::submit(
            &self.node,
            Submission {
                format: r.format,
                document: r.document,
                document_is_text: false,
                recipient_country: r.recipient_country,
                recipient_authority: r.recipient_authority,
                sender_authority: r.sender_authority,
                conversation_id,
                ttl_seconds: (r.ttl_seconds > 0).then_some(r.ttl_seconds),
                traders: r.traders,
                attachments: r.attachments.into_iter().map(Into::into).collect(),
                body_attachment: (!r.body_attachment.is_empty()).then_some(r.body_attachment),
                by,
            },
        )
        .await
        .map_err(|e| answer::status(&e))?;
        Ok(Response::new(SubmitResponse {
            set_id: queued
                .first()
                .and_then(|q| q.set_id)
                .map(|s| format!("urn:uuid:{s}"))
                .unwrap_or_default(),
            messages: queued
                .into_iter()
                .map(|q| SubmittedMessage {
                    message_id: format!("urn:uuid:{}", q.message_id),
                    conversation_id: format!("urn:uuid:{}", q.conversation_id),
                    recipient_country: q.recipient.country,
                    recipient_authority: q.recipient.authority,
                })
                .collect(),
        }))
    }

    async fn get_submission(
        &self,
        request: Request<GetSubmissionRequest>,
    ) -> Result<Response<SubmissionDecision>, Status> {
        self.authorise(&request, Some(Operation::Submit), "Window.GetSubmission")?;
        let r = request.into_inner();
        let id = id_arg(&r.set_id, "set_id")?;
        let v = super::submission_sets::view(&self.node, id)
            .map_err(|e| answer::store_status(&e))?
            .ok_or_else(|| Status::not_found(format!("no submission set {}", r.set_id)))?;
        let member = |m: &super::submission_sets::MemberView| SubmissionMember {
            message_id: format!("urn:uuid:{}", m.message_id),
            recipient_country: m.country.clone(),
            recipient_authority: m.authority.clone(),
            state: m.state.clone(),
            verdict: m.verdict.clone().unwrap_or_default(),
            reasons: m.reasons.clone(),
            note: m.note.clone().unwrap_or_default(),
        };
        Ok(Response::new(SubmissionDecision {
            set_id: format!("urn:uuid:{id}"),
            result: v.result.into(),
            messages: v.members.iter().map(member).collect(),
            refused: v
                .members
                .iter()
                .filter(|m| m.refused())
                .map(member)
                .collect(),
        }))
    }

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        self.authorise(&request, Some(Operation::Submit), "Window.Status")?;
        let r = request.into_inner();
        let id = id_arg(&r.message_id, "message_id")?;
        let history = self
            .node
            .store()
            .history(id)
            .map_err(|e| answer::store_status(&e))?;
        if history.is_empty() {
            return Err(Status::not_found(format!("no message {}", r.message_id)));
        }
        let receipt = self
            .node
            .store()
            .receipt(id)
            .map_err(|e| answer::store_status(&e))?
            .unwrap_or_default();
        Ok(Response::new(StatusResponse {
            message_id: format!("urn:uuid:{id}"),
            history: history.iter().map(transition).collect(),
            receipt,
        }))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.authorise(&request, Some(Operation::Submit), "Window.Subscribe")?;
        let request = request.into_inner();
        let wanted: Vec<Uuid> = request
            .message_ids
            .iter()
            .map(|s| id_arg(s, "message_ids"))
            .collect::<Result<_, _>>()?;
        if let Some(after) = request.after {
            let stream = replay_and_follow(self.node.clone(), after, wanted)?;
            return Ok(Response::new(Box::pin(self.until_shutdown(stream))));
        }
        let rx = self.node.committer.subscribe();
        let stream =
            tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |c| match c {
                Ok(c) if wanted.is_empty() || wanted.contains(&c.message_id) => {
                    Some(Ok(StatusEvent {
                        message_id: format!("urn:uuid:{}", c.message_id),
                        transition: Some(transition(&c.transition)),
                        ..Default::default()
                    }))
                }
                Ok(_) => None,
                Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                    Some(Err(Status::data_loss(format!(
                        "{n} events were missed; use Status to catch up"
                    ))))
                }
            });
        Ok(Response::new(Box::pin(self.until_shutdown(stream))))
    }

    type SubscribeReferenceStream =
        Pin<Box<dyn Stream<Item = Result<ReferenceChange, Status>> + Send>>;

    async fn subscribe_reference(
        &self,
        request: Request<SubscribeReferenceRequest>,
    ) -> Result<Response<Self::SubscribeReferenceStream>, Status> {
        self.authorise(&request, None, "Window.SubscribeReference")?;
        let wanted = request.into_inner().directories;
        let rx = self.node.reference.subscribe();
        let stream =
            tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |c| match c {
                Ok(c) if wanted.is_empty() || wanted.contains(&c.directory) => {
                    Some(Ok(ReferenceChange {
                        directory: c.directory,
                        version: c.version,
                        authority: c.authority,
                        issued_at: c.issued_at,
                        codes: c.codes,
                    }))
                }
                Ok(_) => None,
                Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                    Some(Err(Status::data_loss(format!(
                        "{n} changes were missed; read the directories' versions to catch up"
                    ))))
                }
            });
        Ok(Response::new(Box::pin(self.until_shutdown(stream))))
    }

    async fn upload_attachment(
        &self,
        request: Request<tonic::Streaming<UploadChunk>>,
    ) -> Result<Response<UploadResponse>, Status> {
        self.authorise(&request, Some(Operation::Upload), "Window.UploadAttachment")?;
        let mut stream = request.into_inner();
        // An empty stream is an empty file sent whole.
        let first = stream.message().await?.unwrap_or_default();
        let resume = if first.upload_id.is_empty() {
            if first.offset != 0 {
                return Err(Status::invalid_argument(format!(
                    "offset {} without upload_id: an offset continues a resumable upload (BeginUpload)",
                    first.offset
                )));
            }
            None
        } else {
            Some((upload_arg(&first.upload_id)?, first.offset))
        };
        let chunks = tokio_stream::once(Ok(first.data)).chain(stream.map(|c| c.map(|c| c.data)));
        match resume {
            None => {
                let (upload, held) = super::transfer::upload(&self.node, None, chunks)
                    .await
                    .map_err(|e| answer::status(&e))?;
                Ok(Response::new(upload_response(
                    upload,
                    &UploadState::Complete(held),
                )))
            }
            Some((upload, offset)) => {
                let st = super::transfer::append(&self.node, upload, offset, chunks)
                    .await
                    .map_err(|e| answer::status(&e))?;
                Ok(Response::new(upload_response(upload, &st)))
            }
        }
    }

    async fn begin_upload(
        &self,
        request: Request<BeginUploadRequest>,
    ) -> Result<Response<UploadResponse>, Status> {
        self.authorise(&request, Some(Operation::Upload), "Window.BeginUpload")?;
        let r = request.into_inner();
        let want = upload_want(r.size, &r.sha256).map_err(|e| answer::status(&e))?;
        let upload = super::transfer::begin_upload(&self.node, want.clone())
            .await
            .map_err(|e| answer::status(&e))?;
        Ok(Response::new(upload_response(
            upload,
            &UploadState::Partial { have: 0, want },
        )))
    }

    async fn upload_status(
        &self,
        request: Request<UploadStatusRequest>,
    ) -> Result<Response<UploadResponse>, Status> {
        self.authorise(&request, Some(Operation::Upload), "Window.UploadStatus")?;
        let upload = upload_arg(&request.into_inner().upload_id)?;
        let st = super::transfer::upload_state(&self.node, upload)
            .await
            .map_err(|e| answer::status(&e))?;
        Ok(Response::new(upload_response(upload, &st)))
    }

    type FetchAttachmentStream = Pin<Box<dyn Stream<Item = Result<AttachmentData, Status>> + Send>>;

    async fn fetch_attachment(
        &self,
        request: Request<FetchAttachmentRequest>,
    ) -> Result<Response<Self::FetchAttachmentStream>, Status> {
        self.authorise(&request, Some(Operation::Inbox), "Window.FetchAttachment")?;
        let r = request.into_inner();
        let message = id_arg(&r.message_id, "message_id")?;
        if !crate::attachments::valid_id(&r.id) {
            return Err(Status::invalid_argument(format!(
                "id: {:?} is not an attachment id",
                r.id
            )));
        }
        let rx =
            read_attachment(&self.node, message, r.id, r.offset).map_err(|e| answer::status(&e))?;
        Ok(Response::new(Box::pin(self.until_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))))
    }

    async fn inbox_pull(
        &self,
        request: Request<InboxPullRequest>,
    ) -> Result<Response<InboxPullResponse>, Status> {
        self.authorise(&request, Some(Operation::Inbox), "Window.InboxPull")?;
        let max = self.node.config.limits.max_inbox_pull;
        let r = request.into_inner();
        let limit = match r.limit as usize {
            0 => max,
            n => n.min(max),
        };
        let after = parse_cursor(&r.after, "after").map_err(|e| answer::status(&e))?;
        let page = self
            .node
            .store()
            .inbox_after(after, limit)
            .map_err(|e| answer::store_status(&e))?;
        let next = next_cursor(&page, after).unwrap_or_default();
        Ok(Response::new(InboxPullResponse {
            next,
            messages: page
                .into_iter()
                .map(|(_, m)| super::verdicts::current(&self.node, m))
                .map(|m| InboxMessage {
                    message_id: format!("urn:uuid:{}", m.message_id),
                    sender: m.sender,
                    envelope: m.envelope,
                    receipt: m.receipt,
                    verdict: m.verdict,
                })
                .collect(),
        }))
    }

    async fn inbox_ack(
        &self,
        request: Request<InboxAckRequest>,
    ) -> Result<Response<InboxAckResponse>, Status> {
        let by = self.authorise(&request, Some(Operation::Ack), "Window.InboxAck")?;
        let ids: Vec<Uuid> = request
            .into_inner()
            .message_ids
            .iter()
            .map(|s| id_arg(s, "message_ids"))
            .collect::<Result<_, _>>()?;
        let acknowledged = ack(&self.node, ids, &by)
            .await
            .map_err(|e| answer::store_status(&e))?;
        Ok(Response::new(InboxAckResponse { acknowledged }))
    }
}

/// Reads an inbox cursor given back by the national system (`field` names the parameter).
/// The text is a message's position in the inbox, in decimal; clients treat it as opaque.
/// Empty: from the oldest message.
pub(crate) fn parse_cursor(text: &str, field: &'static str) -> Result<Option<u64>, Malformed> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(p) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(p)),
        _ => Err(Malformed::new(
            field,
            text,
            "an inbox cursor (pass the `next` of an earlier answer)",
        )),
    }
}

/// The cursor after a page read from `after`: the last message's position, or `after` itself
/// when the page is empty (so a reader that polls keeps its place).
pub(crate) fn next_cursor(
    page: &[(u64, crate::store::Incoming)],
    after: Option<u64>,
) -> Option<String> {
    page.last()
        .map(|(p, _)| *p)
        .or(after)
        .map(|p| p.to_string())
}

/// Takes messages out of the inbox; ids no longer there (acknowledged before) are skipped.
/// Each message's history (and so the audit log) says which client took it.
pub(crate) async fn ack(node: &Node, ids: Vec<Uuid>, by: &Caller) -> Result<u32, StoreError> {
    let note = format!("taken from the inbox {}", by.by());
    node.committer
        .run(move |t| {
            let mut n = 0;
            for id in &ids {
                match t.ack_inbox(*id) {
                    Ok(()) => {
                        t.note(*id, crate::store::State::Recognised, note.clone())?;
                        n += 1;
                    }
                    Err(StoreError::NotInInbox(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(n)
        })
        .await
}

/// An upload id argument (a UUID, as the node gave it).
pub(crate) fn upload_arg(s: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(s)
        .map_err(|_| Status::invalid_argument(format!("upload_id: {s:?} is not an upload id")))
}

/// What a request beginning an upload declares: its size and, unless `sha256` is empty, the
/// SHA-256 (64 hex digits) its bytes must have.
pub(crate) fn upload_want(size: u64, sha256: &str) -> Result<UploadWant, Malformed> {
    let sha256 = match sha256 {
        "" => None,
        s => Some(
            tereze_support::hex::unhex(s)
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or_else(|| Malformed::new("sha256", s, "a SHA-256 (64 hex digits)"))?,
        ),
    };
    Ok(UploadWant { size, sha256 })
}

/// An upload's state as the national system's doors answer it (gRPC; HTTP as JSON).
pub(crate) fn upload_response(upload: Uuid, st: &UploadState) -> UploadResponse {
    match st {
        UploadState::Complete(h) => UploadResponse {
            upload_id: upload.to_string(),
            size: h.size,
            sha256: tereze_support::hex::hex(&h.sha256),
            have: h.size,
            complete: true,
        },
        UploadState::Partial { have, want } => UploadResponse {
            upload_id: upload.to_string(),
            size: want.size,
            sha256: String::new(),
            have: *have,
            complete: false,
        },
    }
}

/// Why a fetch of a held attachment could not begin.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The node's files could not be read.
    #[error(transparent)]
    Files(#[from] AttachmentError),
    #[error("message {message} has no attachment {id} here")]
    NotHeld { message: Uuid, id: String },
    #[error("offset {offset} is past the end ({size} bytes)")]
    PastEnd { offset: u64, size: u64 },
    /// No national-transfer slot is free.
    #[error(transparent)]
    Busy(#[from] super::transfer::TransferError),
}

impl Classify for FetchError {
    fn class(&self) -> Class {
        match self {
            FetchError::Files(_) => Class::Unavailable,
            FetchError::NotHeld { .. } => Class::NotFound,
            FetchError::PastEnd { .. } => Class::OutOfRange,
            FetchError::Busy(e) => e.class(),
        }
    }
}

/// Streams a held attachment from `offset`: a blocking reader feeding a small channel.
pub(crate) fn read_attachment(
    node: &Arc<Node>,
    message: Uuid,
    id: String,
    offset: u64,
) -> Result<tokio::sync::mpsc::Receiver<Result<AttachmentData, Status>>, FetchError> {
    let held = node
        .attachments
        .held(message, &id)?
        .ok_or_else(|| FetchError::NotHeld {
            message,
            id: id.clone(),
        })?;
    if offset > held.size {
        return Err(FetchError::PastEnd {
            offset,
            size: held.size,
        });
    }
    let slot = super::transfer::national_slot(node)?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let node = node.clone();
    let chunk = node.config.attachments.chunk_bytes;
    let stall = std::time::Duration::from_secs(node.config.attachments.stall_seconds);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // Held until the last chunk is handed over, or the client stops reading for
        // attachments.stall_seconds.
        let _slot = slot;
        let send = |m: Result<AttachmentData, Status>| {
            let sent = runtime.block_on(tokio::time::timeout(stall, tx.send(m)));
            if sent.is_err() {
                tracing::warn!(message_id = %message, attachment = %id, "fetch stopped: the client read nothing for attachments.stall_seconds");
            }
            matches!(sent, Ok(Ok(())))
        };
        let mut src = match crate::attachments::Source::open(
            &node.attachments,
            message,
            &id,
            offset,
            chunk,
        ) {
            Ok((s, _)) => s,
            Err(e) => {
                let _ = send(Err(Status::unavailable(e.to_string())));
                return;
            }
        };
        let mut first = true;
        if offset == held.size {
            // Nothing left to read: one message with the size and digest.
            let _ = send(Ok(AttachmentData {
                offset,
                data: Vec::new(),
                size: held.size,
                sha256: tereze_support::hex::hex(&held.sha256),
            }));
            return;
        }
        loop {
            match src.next_chunk() {
                Ok(Some((at, data))) => {
                    let m = AttachmentData {
                        offset: at,
                        data,
                        size: if first { held.size } else { 0 },
                        sha256: if first {
                            tereze_support::hex::hex(&held.sha256)
                        } else {
                            String::new()
                        },
                    };
                    first = false;
                    if !send(Ok(m)) {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = send(Err(Status::unavailable(e.to_string())));
                    return;
                }
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Incoming;

    #[test]
    fn an_inbox_cursor_is_a_position_in_decimal_and_nothing_else() {
        assert_eq!(parse_cursor("", "after"), Ok(None));
        assert_eq!(parse_cursor("0", "after"), Ok(Some(0)));
        assert_eq!(parse_cursor("17", "after"), Ok(Some(17)));
        for bad in ["+17", "-1", " 17", "1e3", "x", "18446744073709551616"] {
            let e = parse_cursor(bad, "after").expect_err(bad).to_string();
            assert!(e.starts_with("after: ") && e.contains("next"), "{e}");
        }
        let m = Incoming {
            message_id: Uuid::from_u128(1),
            sender: "KZ".into(),
            envelope: Vec::new(),
            receipt: Vec::new(),
            verdict: "recognised".into(),
            reasons: Vec::new(),
            digest: String::new(),
            conformance: false,
            judged: String::new(),
        };
        let page = [(3, m.clone()), (8, m)];
        assert_eq!(next_cursor(&page, None).as_deref(), Some("8"));
        assert_eq!(next_cursor(&page, Some(1)).as_deref(), Some("8"));
        assert_eq!(next_cursor(&[], Some(8)).as_deref(), Some("8"));
        assert_eq!(next_cursor(&[], None), None);
    }
}
