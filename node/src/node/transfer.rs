//! Moving attachments (docs/attachments.md): the national system's uploads, the receiving side
//! of `PutAttachment` and `AttachmentStatus`, and their collection; the sending side is the
//! relay's (`tereze_relay::push`). Every byte goes through a bounded channel or one chunk buffer
//! to or from a file in the data directory, so memory per transfer does not grow with size.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::{Stream, StreamExt};
use tonic::{Status, Streaming};
use uuid::Uuid;

use super::proto::{
    AttachmentChunk, AttachmentHeader, AttachmentInfo, AttachmentStatusResponse,
    PutAttachmentResponse, Refusal, Route,
};
use super::Node;
use crate::attachments::{AttachmentError, Held, Progress, Sink, UploadState, UploadWant};
use crate::class::{Class, Classify};
use crate::config::Role;
use crate::store::AttachmentMeta;
use crate::trust::StateEntry;
use tereze_support::hex::hex;
use tereze_support::urn::parse_id;

/// The attachments being received now, each with the count of bytes written.
#[derive(Default)]
pub(crate) struct Receiving(
    std::sync::Mutex<HashMap<(Uuid, String), tokio::sync::watch::Sender<u64>>>,
);

/// One transfer's hold on its attachment; released when dropped.
pub(crate) struct Receipt<'a> {
    of: &'a Receiving,
    key: (Uuid, String),
    written: tokio::sync::watch::Sender<u64>,
}

impl Receiving {
    /// How many attachments are being received now.
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Runs `f` (removing `message`'s files) unless an attachment of `message` is being
    /// received, with no transfer of it able to begin meanwhile; `None` when one is.
    fn unless_receiving<T>(&self, message: Uuid, f: impl FnOnce() -> T) -> Option<T> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.keys().any(|(msg, _)| *msg == message) {
            return None;
        }
        Some(f())
    }

    /// Holds (`message`, `id`) for one transfer; `None` while another holds it (two streams
    /// writing one file would corrupt it).
    fn begin(&self, message: Uuid, id: &str) -> Option<Receipt<'_>> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (message, id.to_owned());
        if m.contains_key(&key) {
            return None;
        }
        let (tx, _) = tokio::sync::watch::channel(0);
        m.insert(key.clone(), tx.clone());
        Some(Receipt {
            of: self,
            key,
            written: tx,
        })
    }
}

impl Drop for Receipt<'_> {
    fn drop(&mut self) {
        self.of
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// Why a transfer did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransferError {
    /// The input is wrong or over a limit, or the node's files failed.
    #[error(transparent)]
    Refused(#[from] AttachmentError),
    #[error(transparent)]
    Disk(#[from] super::disk::DiskLow),
    /// `attachments.max_national_transfers` uploads, fetches and bodies by reference being
    /// checked are in flight.
    #[error("{0} uploads, fetches and bodies by reference are in flight, the limit (attachments.max_national_transfers); retry later")]
    Busy(usize),
    /// The caller's stream failed or ended early.
    #[error("the upload stopped: {0}")]
    Stream(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The caller sent nothing for `attachments.stall_seconds`.
    #[error("the upload stopped: no bytes for {seconds} s (attachments.stall_seconds)")]
    Stalled { seconds: u64 },
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The blocking worker writing the files failed (or was stopped by the shutdown).
    #[error("internal: worker: {0}")]
    Worker(#[source] tokio::task::JoinError),
}

impl Classify for TransferError {
    fn class(&self) -> Class {
        match self {
            TransferError::Refused(e) => e.class(),
            TransferError::Disk(_) => Class::NoRoom,
            TransferError::Busy(_) => Class::Busy,
            TransferError::Stream(_) | TransferError::Stalled { .. } => Class::Cancelled,
            TransferError::ShuttingDown => Class::Unavailable,
            TransferError::Worker(e) => Class::of_worker(e),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TransferError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(TransferError::Worker)
}

/// Writes one chunk on a blocking thread; the sink and the buffer (cleared, for the next
/// chunk) come back with the outcome.
async fn write_chunk(
    mut sink: Sink,
    offset: u64,
    mut data: Vec<u8>,
    sha256: Option<Vec<u8>>,
) -> Result<(Sink, Vec<u8>, Result<(), AttachmentError>), TransferError> {
    blocking(move || {
        let r = sink.write(offset, &data, sha256.as_deref());
        data.clear();
        (sink, data, r)
    })
    .await
}

/// Takes an upload from the national system sent whole in one request (gRPC or HTTP). Durable
/// on return. A `declared` size (HTTP `Content-Length`) is promised against the disk reserve
/// before the first byte is taken; without one, each chunk is promised as it comes.
pub(crate) async fn upload<S, B, E>(
    node: &Arc<Node>,
    declared: Option<u64>,
    mut pieces: S,
) -> Result<(Uuid, Held), TransferError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    open_for_uploads(node)?;
    let _slot = national_slot(node)?;
    if let Some(size) = declared {
        node.attachments.check_size(size)?;
    }
    node.disk.check()?;
    let mut room = node.disk.promise(declared.unwrap_or(0))?;
    let n = node.clone();
    let (upload, sink) = blocking(move || n.attachments.upload()).await??;
    let sink = fill(node, sink, &mut room, &mut pieces).await?;
    let held = blocking(move || sink.finish()).await??;
    node.metrics.uploads.inc();
    tracing::info!(upload = %upload, size = held.size, sha256 = %hex(&held.sha256), "upload stored");
    Ok((upload, held))
}

/// Begins a resumable upload (docs/attachments.md, "Resumable uploads"): its id.
pub(crate) async fn begin_upload(
    node: &Arc<Node>,
    want: UploadWant,
) -> Result<Uuid, TransferError> {
    open_for_uploads(node)?;
    // Over the limit is the answer for a size that would also not fit the disk.
    node.attachments.check_size(want.size)?;
    // Promised while each request writes (`append`); here only whether it fits now.
    drop(node.disk.promise(want.size)?);
    let n = node.clone();
    let size = want.size;
    let upload = blocking(move || n.attachments.begin_upload(&want)).await??;
    tracing::info!(upload = %upload, size, "upload begun");
    Ok(upload)
}

/// Where a resumable upload stands (the bytes held are synced first).
pub(crate) async fn upload_state(
    node: &Arc<Node>,
    upload: Uuid,
) -> Result<UploadState, TransferError> {
    let n = node.clone();
    Ok(blocking(move || n.attachments.upload_state(upload)).await??)
}

/// Continues a resumable upload from `offset` (the bytes held) with the pieces of one
/// request. When they reach the declared size the upload is complete: its digest is checked
/// against the declared one, if any, and it is durable on return; when they end before, what
/// arrived is synced and the answer says how much is held.
pub(crate) async fn append<S, B, E>(
    node: &Arc<Node>,
    upload: Uuid,
    offset: u64,
    mut pieces: S,
) -> Result<UploadState, TransferError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    open_for_uploads(node)?;
    let _slot = national_slot(node)?;
    let n = node.clone();
    let sink = blocking(move || n.attachments.resume_upload(upload, offset)).await??;
    if let Some(h) = sink.already() {
        // Complete already (an answer the client did not get): nothing to take.
        return Ok(UploadState::Complete(h));
    }
    let want = UploadWant {
        size: sink.size().unwrap_or(0),
        sha256: sink.expected(),
    };
    let mut room = node
        .disk
        .promise(want.size.saturating_sub(sink.written()))?;
    let began_at = sink.written();
    let mut sink = fill(node, sink, &mut room, &mut pieces).await?;
    if sink.written() < want.size {
        let have = blocking(move || sink.pause()).await??;
        tracing::info!(upload = %upload, have, size = want.size, "upload paused; it continues from here");
        return Ok(UploadState::Partial { have, want });
    }
    let held = blocking(move || sink.finish()).await??;
    node.metrics.uploads.inc();
    tracing::info!(upload = %upload, size = held.size, resumed_at = began_at, sha256 = %hex(&held.sha256), "upload stored");
    Ok(UploadState::Complete(held))
}

/// Writes a request's pieces, whatever their sizes, to `sink` through one chunk buffer, a
/// chunk at a time, until they end: memory stays one buffer whatever the client sends. Each
/// chunk is checked against the disk (`room`) before it is written.
async fn fill<S, B, E>(
    node: &Arc<Node>,
    mut sink: Sink,
    room: &mut super::disk::Promise<'_>,
    pieces: &mut S,
) -> Result<Sink, TransferError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let chunk = node.config.attachments.chunk_bytes;
    let stall = Duration::from_secs(node.config.attachments.stall_seconds);
    let mut buf: Vec<u8> = Vec::with_capacity(chunk);
    let mut ended = false;
    while !ended {
        let next = match tokio::time::timeout(stall, pieces.next()).await {
            Ok(Some(Ok(piece))) => Some(Ok(piece)),
            Ok(Some(Err(e))) => Some(Err(TransferError::Stream(e.into()))),
            Ok(None) => None,
            Err(_) => Some(Err(TransferError::Stalled {
                seconds: stall.as_secs(),
            })),
        };
        match next {
            Some(Err(e)) => {
                // The client went away: keep every byte that arrived, for a resumed upload
                // (if the disk has room for them).
                let len = buf.len() as u64;
                if len > 0 && room.before_write(len).is_ok() {
                    let at = sink.written();
                    let (_, _, r) = write_chunk(sink, at, buf, None).await?;
                    room.landed(len);
                    r?;
                }
                return Err(e);
            }
            Some(Ok(piece)) => {
                let mut rest = piece.as_ref();
                while !rest.is_empty() {
                    let take = rest.len().min(chunk - buf.len());
                    buf.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if buf.len() == chunk {
                        room.before_write(chunk as u64)?;
                        let at = sink.written();
                        let (s, b, r) = write_chunk(sink, at, buf, None).await?;
                        room.landed(chunk as u64);
                        (sink, buf) = (s, b);
                        r?;
                    }
                }
            }
            None => ended = true,
        }
        if ended && !buf.is_empty() {
            let len = buf.len() as u64;
            room.before_write(len)?;
            let at = sink.written();
            let (s, b, r) = write_chunk(sink, at, buf, None).await?;
            room.landed(len);
            (sink, buf) = (s, b);
            r?;
        }
    }
    Ok(sink)
}

/// Whether the node takes uploads now (not while it shuts down).
fn open_for_uploads(node: &Node) -> Result<(), TransferError> {
    if node.shutdown.is_cancelled() {
        return Err(TransferError::ShuttingDown);
    }
    Ok(())
}

/// One of the national system's transfer slots (uploads and fetches).
pub(crate) fn national_slot(
    node: &Node,
) -> Result<tokio::sync::OwnedSemaphorePermit, TransferError> {
    node.national_transfers
        .clone()
        .try_acquire_owned()
        .map_err(|_| TransferError::Busy(node.config.attachments.max_national_transfers))
}

fn refused(have: u64, code: &str, reason: String, transient: bool) -> PutAttachmentResponse {
    PutAttachmentResponse {
        have,
        complete: false,
        refused: Some(Refusal {
            code: code.into(),
            reason,
            transient,
        }),
    }
}

/// What an `AttachmentHeader` names, checked against the caller and the limits.
struct Named {
    message: Uuid,
    from: String,
    to: String,
    route: Route,
    info: AttachmentInfo,
    sha256: [u8; 32],
}

fn named(node: &Node, caller: &StateEntry, h: Option<AttachmentHeader>) -> Result<Named, Status> {
    let h = h.ok_or_else(|| Status::invalid_argument("the first chunk must carry the header"))?;
    let route: Route = h
        .route
        .ok_or_else(|| Status::invalid_argument("header.route is required"))?;
    let info = h
        .attachment
        .ok_or_else(|| Status::invalid_argument("header.attachment is required"))?;
    let message = parse_id(&route.message_id).ok_or_else(|| {
        Status::invalid_argument(format!(
            "header.route.message_id: {:?} is not a urn:uuid",
            route.message_id
        ))
    })?;
    if route.sender != caller.code && caller.role != Role::Hub {
        return Err(Status::permission_denied(format!(
            "the client certificate is {}'s node; it may not send for {}",
            caller.code, route.sender
        )));
    }
    let trust = node.trust();
    let for_me = route.recipient == node.config.state;
    if !for_me && (!node.is_hub() || trust.state(&route.recipient).is_none()) {
        return Err(Status::failed_precondition(format!(
            "header.route.recipient: {}",
            node.not_this_node(&route.recipient)
        )));
    }
    if !crate::attachments::valid_id(&info.id) {
        return Err(Status::invalid_argument(format!(
            "header.attachment.id: {:?} is not 1-64 of A-Z a-z 0-9 . _ -",
            info.id
        )));
    }
    let sha256 = <[u8; 32]>::try_from(info.sha256.as_slice()).map_err(|_| {
        Status::invalid_argument("header.attachment.sha256: must be 32 bytes (SHA-256)")
    })?;
    let limit = node.attachments.limits.max_attachment_bytes;
    if info.size > limit {
        return Err(Status::invalid_argument(format!(
            "header.attachment.size: {} bytes, over this node's limit of {limit} (attachments.max_attachment_bytes)",
            info.size
        )));
    }
    Ok(Named {
        message,
        from: route.sender.clone(),
        to: route.recipient.clone(),
        route,
        info,
        sha256,
    })
}

/// `AttachmentStatus`: the bytes held durably.
pub(crate) async fn status(
    node: &Arc<Node>,
    caller: &StateEntry,
    h: AttachmentHeader,
) -> Result<AttachmentStatusResponse, Status> {
    let n = named(node, caller, Some(h))?;
    let node = node.clone();
    let p = blocking(move || {
        node.attachments
            .progress_of(n.message, &n.info.id, &n.sha256, n.info.size, &n.from)
    })
    .await
    .map_err(|e| Status::internal(e.to_string()))?
    .map_err(|e| match e {
        AttachmentError::Conflict { .. } => Status::already_exists(e.to_string()),
        e => Status::unavailable(e.to_string()),
    })?;
    Ok(match p {
        Progress::Absent => AttachmentStatusResponse {
            have: 0,
            complete: false,
        },
        Progress::Partial(have) => AttachmentStatusResponse {
            have,
            complete: false,
        },
        Progress::Complete(h) => AttachmentStatusResponse {
            have: h.size,
            complete: true,
        },
    })
}

/// `PutAttachment`: receives chunks into the attachment's file until the stream ends (then the
/// size and digest must be right) or a chunk is refused (then the bytes before it are synced
/// and the answer says where to continue).
pub(crate) async fn receive(
    node: &Arc<Node>,
    caller: &StateEntry,
    mut stream: Streaming<AttachmentChunk>,
) -> Result<PutAttachmentResponse, Status> {
    if node.shutdown.is_cancelled() {
        return Err(Status::unavailable("the node is shutting down"));
    }
    let first = stream.message().await?.ok_or_else(|| {
        Status::invalid_argument("an empty stream: the first chunk carries the header")
    })?;
    let n = named(node, caller, first.header.clone())?;
    let slots = node.transfer_slots(&caller.code, false);
    let Ok(_slot) = slots.try_acquire_owned() else {
        return Ok(refused(
            0,
            "busy",
            format!(
                "{} transfers from {} are in flight, the limit (attachments.max_transfers_per_peer); retry later",
                node.attachments.limits.max_transfers_per_peer, caller.code
            ),
            true,
        ));
    };
    let Some(hold) = node.receiving.begin(n.message, &n.info.id) else {
        return Ok(refused(
            0,
            "in-progress",
            format!(
                "attachment {} of message {} is being received on another stream; retry later",
                n.info.id, n.message
            ),
            true,
        ));
    };
    let mut room = node
        .disk
        .promise(n.info.size.saturating_sub(first.offset))
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let sink = match open_sink(node, &n, first.offset).await? {
        Ok(sink) => sink,
        Err(answer) => return Ok(answer),
    };
    if let Some(h) = sink.already() {
        return Ok(complete(h.size));
    }
    let started = std::time::Instant::now();
    let began_at = sink.written();
    hold.written.send_replace(began_at);
    if node.is_hub() && n.to != node.config.state {
        // Stream through: forward to the recipient while the bytes arrive.
        tokio::spawn(tereze_relay::push::stream_through(
            node.clone(),
            n.route.clone(),
            n.info.clone(),
            hold.written.subscribe(),
        ));
    }
    let mut receiving = Receiver {
        node,
        caller,
        n: &n,
        hold: &hold,
        room: &mut room,
    };
    let sink = match receiving.take_chunks(sink, first, stream).await? {
        Ok(sink) => sink,
        Err(answer) => return Ok(answer),
    };
    finish(node, caller, &n, sink, began_at, started).await
}

/// A step of [`receive`] that may end the call early: `Err` fails it with a status,
/// `Ok(Err(answer))` answers with a refusal (saying where to continue), `Ok(Ok(_))` goes on.
type Step<T> = Result<Result<T, PutAttachmentResponse>, Status>;

/// The answer for an attachment held whole.
fn complete(have: u64) -> PutAttachmentResponse {
    PutAttachmentResponse {
        have,
        complete: true,
        refused: None,
    }
}

/// Opens the attachment's file at the stream's first offset, which must be where the bytes
/// held end.
async fn open_sink(node: &Arc<Node>, n: &Named, offset: u64) -> Step<Sink> {
    let (message, id, from) = (n.message, n.info.id.clone(), n.from.clone());
    let (sha256, size) = (n.sha256, n.info.size);
    let nd = node.clone();
    let opened = blocking(move || {
        nd.attachments
            .receive(message, &id, sha256, size, &from, offset)
    })
    .await
    .map_err(|e| Status::internal(e.to_string()))?;
    match opened {
        Ok(s) => Ok(Ok(s)),
        Err(AttachmentError::Offset { offered, have }) => Ok(Err(refused(
            have,
            "offset-mismatch",
            format!("the stream began at {offered}; {have} bytes are held: continue from there"),
            true,
        ))),
        Err(e @ AttachmentError::Io { .. }) => Err(Status::unavailable(e.to_string())),
        Err(e @ AttachmentError::Conflict { .. }) => {
            Ok(Err(refused(0, "conflict", e.to_string(), false)))
        }
        Err(e) => Ok(Err(refused(0, "refused", e.to_string(), false))),
    }
}

/// One transfer's chunks going into its file.
struct Receiver<'a, 'r> {
    node: &'a Arc<Node>,
    caller: &'a StateEntry,
    n: &'a Named,
    hold: &'a Receipt<'a>,
    room: &'a mut super::disk::Promise<'r>,
}

impl Receiver<'_, '_> {
    /// Writes `first` and then every chunk until the stream ends; a sender quiet for
    /// `attachments.stall_seconds`, or gone, leaves what arrived for a resumed transfer.
    async fn take_chunks(
        &mut self,
        mut sink: Sink,
        first: AttachmentChunk,
        mut stream: Streaming<AttachmentChunk>,
    ) -> Step<Sink> {
        let n = self.n;
        let mut next = Some(first);
        let stall = Duration::from_secs(self.node.config.attachments.stall_seconds);
        loop {
            let chunk = match next.take() {
                Some(c) => c,
                None => match tokio::time::timeout(stall, stream.message()).await {
                    Ok(Ok(Some(c))) => c,
                    Ok(Ok(None)) => return Ok(Ok(sink)),
                    Err(_) => {
                        // A sender that went quiet (or a connection nobody closed) would hold
                        // this attachment and a slot for ever: stop, keeping what arrived.
                        let have = pause(sink).await?;
                        tracing::warn!(message_id = %n.message, attachment = %n.info.id, from = %self.caller.code, have, "transfer stalled: no chunk for attachments.stall_seconds; it resumes from here");
                        return Err(Status::deadline_exceeded(format!(
                            "no chunk for {} s (attachments.stall_seconds); {have} bytes are held: continue from there",
                            stall.as_secs()
                        )));
                    }
                    Ok(Err(e)) => {
                        // The sender went away: keep what arrived for a resumed transfer.
                        let have = pause(sink).await?;
                        tracing::info!(message_id = %n.message, attachment = %n.info.id, have, error = %e, "transfer interrupted; it resumes from here");
                        return Err(e);
                    }
                },
            };
            sink = match self.write(sink, chunk).await? {
                Ok(sink) => sink,
                Err(answer) => return Ok(Err(answer)),
            };
        }
    }

    /// Writes one chunk within the disk's reserve, after checking its digest.
    async fn write(&mut self, sink: Sink, chunk: AttachmentChunk) -> Step<Sink> {
        let n = self.n;
        if chunk.data.is_empty() {
            return Ok(Ok(sink));
        }
        if let Err(e) = self.room.before_write(chunk.data.len() as u64) {
            let have = blocking(move || {
                let mut sink = sink;
                sink.pause()
            })
            .await
            .ok()
            .and_then(|r| r.ok());
            tracing::warn!(message_id = %n.message, have, error = %e, "transfer paused: disk reserve");
            return Err(Status::unavailable(e.to_string()));
        }
        if chunk.sha256.len() != 32 {
            let have = pause(sink).await?;
            return Ok(Err(refused(
                have,
                "refused",
                format!(
                    "the chunk at offset {} carries a sha256 of {} bytes; every chunk carries the 32-byte SHA-256 of its data",
                    chunk.offset,
                    chunk.sha256.len()
                ),
                false,
            )));
        }
        let len = chunk.data.len();
        let (sink, _, r) = write_chunk(sink, chunk.offset, chunk.data, Some(chunk.sha256))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        self.room.landed(len as u64);
        let Err(e) = r else {
            self.hold.written.send_replace(sink.written());
            self.node
                .metrics
                .attachment_bytes_received
                .inc_by(len as u64);
            return Ok(Ok(sink));
        };
        let have = pause(sink).await?;
        let (code, transient) = match &e {
            AttachmentError::ChunkDigest { .. } => ("chunk-digest-mismatch", true),
            AttachmentError::Offset { .. } => ("offset-mismatch", true),
            AttachmentError::Io { .. } => return Err(Status::unavailable(e.to_string())),
            _ => ("refused", false),
        };
        self.node.metrics.attachment_refusals.inc();
        tracing::warn!(message_id = %n.message, attachment = %n.info.id, from = %self.caller.code, have, reason = %e, "chunk refused");
        Ok(Err(refused(have, code, e.to_string(), transient)))
    }
}

/// Ends a stream that ended: the attachment is whole, with the declared size and digest, or
/// the answer says where to continue.
async fn finish(
    node: &Node,
    caller: &StateEntry,
    n: &Named,
    sink: Sink,
    began_at: u64,
    started: std::time::Instant,
) -> Result<PutAttachmentResponse, Status> {
    let finished = blocking(move || sink.finish())
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    match finished {
        Ok(h) => {
            node.metrics.attachments_received.inc();
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(
                message_id = %n.message,
                attachment = %n.info.id,
                from = %caller.code,
                size = h.size,
                resumed_at = began_at,
                mib_per_s = ((h.size - began_at) as f64 / (1 << 20) as f64 / secs.max(1e-6)) as u64,
                "attachment received"
            );
            Ok(complete(h.size))
        }
        Err(AttachmentError::Short { written, size }) => Ok(refused(
            written,
            "incomplete",
            format!("the stream ended after {written} of {size} bytes: continue from {written}"),
            true,
        )),
        Err(e @ AttachmentError::DigestMismatch { .. }) => {
            // The bytes are discarded either way. When they all came in this one stream, the
            // sender's file is not what its signed envelope declares: sending it again cannot
            // help. When the stream resumed from bytes this node had on disk, those may be
            // what is wrong (a crash of the machine can damage an unsynced tail): once more,
            // from zero.
            let transient = began_at > 0;
            tracing::warn!(message_id = %n.message, attachment = %n.info.id, from = %caller.code, resumed_at = began_at, transient, reason = %e, "attachment refused");
            Ok(refused(0, "digest-mismatch", e.to_string(), transient))
        }
        Err(e) => Err(Status::unavailable(e.to_string())),
    }
}

/// Makes what a transfer received durable before it stops early: the bytes held, to
/// continue from.
async fn pause(mut sink: Sink) -> Result<u64, Status> {
    blocking(move || sink.pause())
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::unavailable(e.to_string()))
}

/// The outbox form of a route's list (a hub forwards on it).
pub(crate) fn metas(infos: &[AttachmentInfo]) -> Vec<AttachmentMeta> {
    infos
        .iter()
        .map(|i| AttachmentMeta {
            id: i.id.clone(),
            size: i.size,
            sha256: hex(&i.sha256),
        })
        .collect()
}

/// Why a Deliver's attachments are not acceptable yet (or at all).
pub(crate) enum NotHeld {
    /// Over this node's limits: sending again cannot help.
    OverLimit(String),
    /// Not (all) transferred yet: the sender transfers and tries again.
    Incomplete(String),
}

/// Whether every attachment the route lists is held complete with the size and digest it
/// declares; the first one that is not, and why.
pub(crate) fn all_held(
    node: &Node,
    message: Uuid,
    infos: &[AttachmentInfo],
) -> Result<(), NotHeld> {
    if infos.len() > node.attachments.limits.max_per_message {
        return Err(NotHeld::OverLimit(format!(
            "{} attachments, over the limit of {} (attachments.max_per_message)",
            infos.len(),
            node.attachments.limits.max_per_message
        )));
    }
    let total: u64 = infos.iter().map(|i| i.size).fold(0, u64::saturating_add);
    if total > node.attachments.limits.max_message_bytes {
        return Err(NotHeld::OverLimit(format!(
            "{total} bytes of attachments, over the limit of {} (attachments.max_message_bytes)",
            node.attachments.limits.max_message_bytes
        )));
    }
    for i in infos {
        match node.attachments.held(message, &i.id) {
            Ok(Some(h)) if h.size == i.size && h.sha256.as_slice() == i.sha256.as_slice() => {}
            Ok(Some(_)) => {
                return Err(NotHeld::OverLimit(format!(
                    "attachment {} is held with another size or digest than the route says",
                    i.id
                )))
            }
            Ok(None) => {
                return Err(NotHeld::Incomplete(format!(
                    "attachment {} has not been transferred (complete)",
                    i.id
                )))
            }
            Err(e) => return Err(NotHeld::Incomplete(format!("attachment {}: {e}", i.id))),
        }
    }
    Ok(())
}

/// Uploads no Submit named and transfers of unknown messages are kept at least this long
/// whatever `attachments.retention_hours` says (0 there collects settled messages at once, but
/// must not take a file that is still arriving).
const UNSETTLED_FLOOR_MS: i64 = 3_600_000;

/// What one garbage-collection sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Swept {
    pub(crate) messages: usize,
    pub(crate) bytes: u64,
    pub(crate) uploads: usize,
}

/// Whether a message's attachments may go at `now` (Unix ms), `retention` ms after it was
/// settled: at a sender or hub once delivered, rejected, dead or expired; at the final
/// recipient once it has left the inbox (taken by the national system, quarantined, or held
/// or purged as conformance traffic). A message this node does not know (an upload adopted by
/// a Submit that never committed, a transfer whose envelope never came) goes `retention` after
/// its files were last touched.
fn collectable(
    node: &Node,
    message: Uuid,
    now: i64,
    retention: i64,
) -> Result<bool, crate::store::StoreError> {
    use crate::store::State;
    let history = node.store().history(message)?;
    let Some(last) = history.last() else {
        return Ok(node.attachments.touched_at(message) + retention.max(UNSETTLED_FLOOR_MS) < now);
    };
    let settled = matches!(
        last.state,
        State::Delivered
            | State::Recognised
            | State::Rejected
            | State::Expired
            | State::Dead
            | State::Purged
    );
    if !settled || last.at + retention >= now {
        return Ok(false);
    }
    Ok(!node.store().in_inbox(message)?)
}

/// One sweep (blocking: it lists directories and asks the store).
pub(crate) fn sweep(node: &Node, now: i64) -> Swept {
    let retention = (node.config.attachments.retention_hours as i64).saturating_mul(3_600_000);
    let mut swept = Swept::default();
    let messages = match node.attachments.messages() {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "attachments: cannot list the directory");
            return swept;
        }
    };
    for m in messages {
        match collectable(node, m, now, retention) {
            // Not while a transfer of it runs (a resumed one would find its prefix gone).
            Ok(true) => match node
                .receiving
                .unless_receiving(m, || node.attachments.remove(m))
            {
                None => {}
                Some(Ok(bytes)) => {
                    swept.messages += 1;
                    swept.bytes += bytes;
                }
                Some(Err(e)) => {
                    tracing::warn!(message_id = %m, error = %e, "attachments: cannot remove")
                }
            },
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(message_id = %m, error = %e, "attachments: cannot ask the store")
            }
        }
    }
    swept.uploads = node
        .attachments
        .remove_uploads_before(now - retention.max(UNSETTLED_FLOOR_MS));
    swept
}

/// Removes abandoned partial uploads, oldest first, while the disk is under the reserve
/// (blocking): whole-file uploads whose request broke off, and resumable ones untouched for
/// `attachments.stall_seconds`, before their retention time.
pub(crate) fn collect_for_space(node: &Node, now: i64) -> (usize, u64) {
    let idle = (node.config.attachments.stall_seconds as i64).saturating_mul(1000);
    let (n, bytes) = node
        .attachments
        .remove_partial_uploads(now.saturating_sub(idle), || {
            node.disk.sample();
            node.disk.check().is_ok()
        });
    node.metrics.uploads_collected_for_space.inc_by(n as u64);
    (n, bytes)
}

/// Sweeps every `attachments.gc_interval_seconds` until shutdown; every second while the disk
/// is under the reserve, collects abandoned partial uploads first ([`collect_for_space`]).
pub(crate) async fn collect(node: Arc<Node>) {
    let every = Duration::from_secs(node.config.attachments.gc_interval_seconds.max(1));
    let mut next_sweep = tokio::time::Instant::now() + every;
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if node.disk.check().is_err() {
            let n = node.clone();
            match tokio::task::spawn_blocking(move || collect_for_space(&n, tereze_support::clock::now_ms())).await {
                Ok((0, _)) => {}
                Ok((uploads, bytes)) => tracing::warn!(
                    uploads,
                    bytes,
                    "disk under the reserve: abandoned partial uploads removed before their retention time"
                ),
                Err(e) => tracing::warn!(error = %e, "attachments: collection for space failed"),
            }
        }
        if tokio::time::Instant::now() < next_sweep {
            continue;
        }
        next_sweep = tokio::time::Instant::now() + every;
        let n = node.clone();
        match tokio::task::spawn_blocking(move || sweep(&n, tereze_support::clock::now_ms())).await
        {
            Ok(s) if s.messages > 0 || s.uploads > 0 => {
                tracing::info!(
                    messages = s.messages,
                    bytes = s.bytes,
                    uploads = s.uploads,
                    "attachments collected"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "attachments: sweep failed"),
        }
    }
}
