//! The sending half of attachment transfers (docs/attachments.md): `push` sends one file of
//! an outbox message to the next hop before the relay delivers its envelope, resuming from
//! what the peer holds; `stream_through` is a hub forwarding a file while it still arrives.
//! **Invariant:** every byte passes through a bounded channel ([`READ_AHEAD`] chunks) between
//! the file and the network, so memory per transfer does not grow with its size, and a
//! transfer's time is bounded by `attachments.min_rate_kib`.

use std::sync::Arc;
use std::time::Duration;

use tereze_attachments::{AttachmentError, Source};
use tereze_proto::exchange_client::ExchangeClient;
use tereze_proto::{AttachmentChunk, AttachmentHeader, AttachmentInfo, Route};
use tereze_store::AttachmentMeta;
use tereze_support::urn::parse_id;
use tonic::transport::Channel;

use crate::client::transfer_client;
use crate::Host;

/// Chunks read ahead of the network by a sender.
const READ_AHEAD: usize = 2;

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(f).await
}

/// Why sending an attachment failed.
#[derive(Debug)]
pub(crate) struct PushFailed {
    pub(crate) reason: String,
    /// Whether trying again later may succeed.
    pub(crate) transient: bool,
}

/// Whether a peer's status means sending again cannot succeed.
fn permanent(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::InvalidArgument
            | tonic::Code::PermissionDenied
            | tonic::Code::FailedPrecondition
            | tonic::Code::AlreadyExists
    )
}

/// Refused rounds of one push before the attempt is given up (a later attempt resumes).
const MAX_ROUNDS: usize = 8;

/// Sends one attachment of `route`'s message to the peer behind `client`, resuming from what
/// it holds; returns once the peer holds it complete and durable.
pub(crate) async fn push(
    node: &Arc<dyn Host>,
    client: &ExchangeClient<Channel>,
    route: &Route,
    meta: &AttachmentMeta,
) -> Result<(), PushFailed> {
    let message = parse_id(&route.message_id).ok_or_else(|| PushFailed {
        reason: format!("{:?} is not a message id", route.message_id),
        transient: false,
    })?;
    let header = AttachmentHeader {
        route: Some(route.clone()),
        attachment: Some(AttachmentInfo {
            id: meta.id.clone(),
            size: meta.size,
            sha256: meta.digest().to_vec(),
        }),
    };
    let short = Duration::from_secs(node.settings().relay.timeout_seconds.max(1));
    let rate = node.attachments().limits.min_rate_kib.max(1) * 1024;
    let mut last = String::new();
    for _ in 0..MAX_ROUNDS {
        let status = tokio::time::timeout(short, client.clone().attachment_status(header.clone()))
            .await
            .map_err(|_| PushFailed {
                reason: format!("AttachmentStatus: no answer within {} s", short.as_secs()),
                transient: true,
            })?
            .map_err(|s| PushFailed {
                reason: format!("AttachmentStatus: {:?}: {}", s.code(), s.message()),
                transient: !permanent(s.code()),
            })?
            .into_inner();
        if status.complete {
            return Ok(());
        }
        let from = status.have;
        if from > meta.size {
            return Err(PushFailed {
                reason: format!(
                    "attachment {}: the peer says it holds {from} bytes of a {}-byte file",
                    meta.id, meta.size
                ),
                transient: true,
            });
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<AttachmentChunk>(READ_AHEAD);
        let (n, id, chunk) = (
            node.clone(),
            meta.id.clone(),
            node.attachments().limits.chunk_bytes,
        );
        let first_header = header.clone();
        let pace = node.attachments().limits.send_rate_kib * 1024;
        let reader = tokio::task::spawn_blocking(move || -> Result<(), AttachmentError> {
            let (mut src, _) = Source::open(n.attachments(), message, &id, from, chunk)?;
            let mut header = Some(first_header);
            let began = std::time::Instant::now();
            let mut sent = 0u64;
            loop {
                if pace > 0 {
                    // attachments.send_rate_kib: no faster than the configured rate.
                    let due = Duration::from_secs_f64(sent as f64 / pace as f64);
                    if let Some(wait) = due.checked_sub(began.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                let Some((offset, data)) = src.next_chunk()? else {
                    if let Some(h) = header.take() {
                        // Nothing left to send (an empty file): the header alone.
                        let _ = tx.blocking_send(AttachmentChunk {
                            header: Some(h),
                            offset: from,
                            data: Vec::new(),
                            sha256: Vec::new(),
                        });
                    }
                    return Ok(());
                };
                let sha256 = openssl::sha::sha256(&data).to_vec();
                sent += data.len() as u64;
                n.metrics().attachment_bytes_sent.inc_by(data.len() as u64);
                let c = AttachmentChunk {
                    header: header.take(),
                    offset,
                    data,
                    sha256,
                };
                if tx.blocking_send(c).is_err() {
                    return Ok(());
                }
            }
        });
        let budget = short + Duration::from_secs(meta.size.saturating_sub(from) / rate);
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let answer = tokio::time::timeout(budget, client.clone().put_attachment(stream)).await;
        let read = reader.await;
        if let Ok(Err(e)) = read {
            // A file this node no longer holds cannot be sent, ever; any other error reading
            // it (too many open files, a disk error) may pass.
            let gone = match &e {
                AttachmentError::NotHeld { .. } => true,
                AttachmentError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
                _ => false,
            };
            return Err(PushFailed {
                reason: format!("cannot read attachment {}: {e}", meta.id),
                transient: !gone,
            });
        }
        let r = match answer {
            Err(_) => {
                return Err(PushFailed {
                    reason: format!(
                        "attachment {}: not sent within {} s, the time attachments.min_rate_kib allows for its size; it resumes from what arrived",
                        meta.id,
                        budget.as_secs()
                    ),
                    transient: true,
                })
            }
            Ok(Err(s)) => {
                return Err(PushFailed {
                    reason: format!("attachment {}: {:?}: {}", meta.id, s.code(), s.message()),
                    transient: !permanent(s.code()),
                })
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        if r.complete {
            node.metrics().attachments_sent.inc();
            tracing::info!(message_id = %message, attachment = %meta.id, size = meta.size, resumed_at = from, "attachment sent");
            return Ok(());
        }
        let Some(refusal) = r.refused else {
            last = format!(
                "attachment {}: the peer holds {} bytes but did not say why it stopped",
                meta.id, r.have
            );
            continue;
        };
        last = format!(
            "attachment {}: {}: {}",
            meta.id, refusal.code, refusal.reason
        );
        tracing::warn!(message_id = %message, attachment = %meta.id, code = %refusal.code, have = r.have, reason = %refusal.reason, "transfer refused by the peer");
        if !refusal.transient {
            return Err(PushFailed {
                reason: last,
                transient: false,
            });
        }
        if refusal.code == "busy" || refusal.code == "in-progress" {
            return Err(PushFailed {
                reason: last,
                transient: true,
            });
        }
    }
    Err(PushFailed {
        reason: format!("{MAX_ROUNDS} rounds refused; last: {last}"),
        transient: true,
    })
}

/// The route's list of attachments, as the sender's outbox row has it.
pub(crate) fn infos(metas: &[AttachmentMeta]) -> Vec<AttachmentInfo> {
    metas
        .iter()
        .map(|m| AttachmentInfo {
            id: m.id.clone(),
            size: m.size,
            sha256: m.digest().to_vec(),
        })
        .collect()
}

/// A hub's forwarding of an attachment while it is still arriving: reads the bytes already
/// written (and synced by nobody yet: the recipient checks every chunk and the whole digest)
/// and sends them on, waiting for more as `written` grows. Best effort: if it cannot start or
/// breaks off, the hub's relay sends the attachment from disk before it forwards the envelope,
/// resuming from what the recipient holds.
pub async fn stream_through(
    node: Arc<dyn Host>,
    route: Route,
    info: AttachmentInfo,
    mut written: tokio::sync::watch::Receiver<u64>,
) {
    let peer = route.recipient.clone();
    let Ok(_slot) = node.peers().transfer_slots(&peer, true).try_acquire_owned() else {
        return;
    };
    let client = match transfer_client(&*node, &peer) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(peer = %peer, error = %e, "cannot stream the attachment through");
            return;
        }
    };
    let Some(message) = parse_id(&route.message_id) else {
        return;
    };
    let header = AttachmentHeader {
        route: Some(route.clone()),
        attachment: Some(info.clone()),
    };
    let short = Duration::from_secs(node.settings().relay.timeout_seconds.max(1));
    let from =
        match tokio::time::timeout(short, client.clone().attachment_status(header.clone())).await {
            Ok(Ok(s)) if s.get_ref().complete => return,
            Ok(Ok(s)) => s.into_inner().have,
            _ => return,
        };
    let n = node.clone();
    let id = info.id.clone();
    let file = match blocking(move || n.attachments().open_data(message, &id)).await {
        Ok(Ok(f)) => f,
        _ => return,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<AttachmentChunk>(READ_AHEAD);
    let chunk = node.attachments().limits.chunk_bytes as u64;
    let size = info.size;
    let n = node.clone();
    let id = info.id.clone();
    let producer = tokio::spawn(async move {
        let mut file = Some(file);
        let mut at = from;
        let mut header = Some(header);
        while at < size {
            let mut avail = *written.borrow_and_update();
            if avail <= at {
                if written.changed().await.is_err() {
                    // The incoming transfer ended: complete (then read to the end) or broken.
                    match n.attachments().held(message, &id) {
                        Ok(Some(h)) if h.size == size => avail = size,
                        _ => return,
                    }
                } else {
                    continue;
                }
            }
            let len = (avail - at).min(chunk) as usize;
            let Some(f) = file.take() else { return };
            let read = blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; len];
                let r = f.read_exact_at(&mut buf, at).map(|()| buf);
                (f, r)
            })
            .await;
            let Ok((f, Ok(data))) = read else { return };
            file = Some(f);
            let c = AttachmentChunk {
                header: header.take(),
                offset: at,
                sha256: openssl::sha::sha256(&data).to_vec(),
                data,
            };
            at += len as u64;
            if tx.send(c).await.is_err() {
                return;
            }
            n.metrics().attachment_bytes_sent.inc_by(len as u64);
        }
    });
    let rate = node.attachments().limits.min_rate_kib.max(1) * 1024;
    let budget = short + Duration::from_secs(size.saturating_sub(from) / rate);
    let answer = tokio::time::timeout(
        budget,
        client
            .clone()
            .put_attachment(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
    .await;
    producer.abort();
    match answer {
        Ok(Ok(r)) if r.get_ref().complete => {
            node.metrics().attachments_sent.inc();
            tracing::info!(message_id = %message, attachment = %info.id, to = %peer, size, resumed_at = from, "attachment streamed through");
        }
        Ok(Ok(r)) => {
            let r = r.into_inner();
            tracing::info!(message_id = %message, attachment = %info.id, to = %peer, have = r.have, refused = ?r.refused.map(|x| x.code), "streaming through stopped; the relay resumes it");
        }
        Ok(Err(s)) => {
            tracing::info!(message_id = %message, attachment = %info.id, to = %peer, error = %s.message(), "streaming through stopped; the relay resumes it");
        }
        Err(_) => {
            tracing::info!(message_id = %message, attachment = %info.id, to = %peer, "streaming through ran out of time; the relay resumes it");
        }
    }
}
