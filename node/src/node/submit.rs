//! Intake from the national system: a national document (translated here), a submission set
//! ("submit once": one message per recipient it names) or a ready EAEU document is checked,
//! wrapped in an envelope, signed and queued durably. The answer comes only after the commit.

use std::sync::Arc;

use chrono::{Duration as ChronoDuration, Utc};
use tereze_codecs::dsig::{self, SignOptions, SignTarget};
use tereze_codecs::envelope::{
    AttachmentRef, DocumentRef, Envelope, Header, MessageKind, NationalSignature, Participant,
    Version,
};
use tereze_codecs::translate::{FormatKind, TranslateError, Translated};
use tereze_codecs::xml;
use uuid::Uuid;

use super::queue_bytes::{Held, PER_REQUEST};
use super::Node;
use crate::attachments::AttachmentError;
use crate::class::{Class, Classify};
use crate::store::{AttachmentMeta, Outgoing, Payload, SetMember, State, StoreError};

/// One submission, whichever door it came through.
#[derive(Debug, Clone)]
pub(crate) struct Submission {
    pub(crate) format: String,
    pub(crate) document: Vec<u8>,
    /// The document came as characters (the HTTP door's JSON string), so `document` is UTF-8
    /// whatever its XML declaration says: parsed with `xml::parse_text`, which refuses a
    /// declaration of another encoding instead of misreading these bytes in it.
    pub(crate) document_is_text: bool,
    pub(crate) recipient_country: String,
    pub(crate) recipient_authority: String,
    pub(crate) sender_authority: String,
    pub(crate) conversation_id: Option<Uuid>,
    pub(crate) ttl_seconds: Option<u64>,
    pub(crate) traders: Vec<String>,
    /// Uploads to attach (docs/attachments.md).
    pub(crate) attachments: Vec<SubmitAttachment>,
    /// The id of one of `attachments` that is the body (then `document` is empty).
    pub(crate) body_attachment: Option<String>,
    /// Who submitted it (the national client), for the history and the audit log.
    pub(crate) by: super::national::Caller,
}

/// An upload named by a submission (also the HTTP intake's JSON form).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitAttachment {
    pub(crate) upload_id: String,
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) media_type: String,
}

impl From<super::proto::SubmitAttachment> for SubmitAttachment {
    fn from(a: super::proto::SubmitAttachment) -> Self {
        Self {
            upload_id: a.upload_id,
            id: a.id,
            media_type: a.media_type,
        }
    }
}

/// What was queued.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) message_id: Uuid,
    pub(crate) conversation_id: Uuid,
    pub(crate) recipient: Participant,
    /// The submission set it was queued in (a submission format's), the same for all of
    /// them: the handle of the set's one decision (`GET /v1/submissions/{id}`).
    pub(crate) set_id: Option<Uuid>,
}

/// Why a submission was refused. A refusal caused by another error keeps it as its source;
/// the text names the field either way, for the client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    /// The input is wrong; the message names the field and says why from the values involved.
    #[error("{0}")]
    Invalid(String),
    /// `traders[index]` is not a trader identifier.
    #[error("traders[{index}]: {trader}: {source}")]
    Trader {
        index: usize,
        trader: String,
        #[source]
        source: tereze_reference_data::trader::TraderError,
    },
    /// The body (`at`: `document`, or `body_attachment ID`) is not well-formed XML within the
    /// limits.
    #[error("{at}:{source}")]
    Xml {
        at: String,
        #[source]
        source: xml::ParseError,
    },
    /// The EAEU document does not meet its model.
    #[error("document: {0}")]
    Document(#[source] TranslateError),
    /// The national document could not be translated.
    #[error("document: cannot translate: {0}")]
    Translate(#[source] TranslateError),
    /// The header made from the submission is refused by the envelope's rules.
    #[error("envelope: {0}")]
    Envelope(#[source] tereze_codecs::envelope::EnvelopeError),
    /// The envelope could not be signed (e.g. the document carries the signature's ids).
    #[error("signing: {0}")]
    Signing(#[source] dsig::SignError),
    /// An upload named by `field` is refused (unknown, incomplete, a bad id), or the node
    /// could not read or link its files (a disk error; try again later).
    #[error("{field}: {source}")]
    Attachment {
        field: String,
        #[source]
        source: AttachmentError,
    },
    /// The node's queues are full (`limits.max_queue`); try again later.
    #[error(transparent)]
    Busy(#[from] super::outbox::Full),
    /// The messages on their way into the store hold `limits.max_queue_bytes`; try again later.
    #[error(transparent)]
    QueueBytes(#[from] super::queue_bytes::Full),
    /// The data disk is under its reserve; try again later.
    #[error(transparent)]
    DiskLow(#[from] super::disk::DiskLow),
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The worker preparing the document failed (or was stopped by the shutdown).
    #[error("internal: {0}")]
    Worker(#[source] tokio::task::JoinError),
    /// `limits.max_preparing` documents were being prepared for as long as a submission
    /// waits for a place; try again later.
    #[error("{0} documents are being prepared, the limit (limits.max_preparing), and none finished in time; try again later")]
    PreparingBusy(usize),
    /// The documents being prepared hold so much of `limits.max_preparing_mb` that this one's
    /// budget does not fit; try again later.
    #[error("this document's budget of {need} MiB does not fit in the {free} MiB of limits.max_preparing_mb ({limit}) the documents being prepared leave; try again later")]
    PreparingMemory {
        need: u32,
        free: usize,
        limit: usize,
    },
    /// A body by reference is read and checked in one of the national-transfer slots, and
    /// all are taken; try again later.
    #[error("body_attachment: {0} uploads, fetches and bodies by reference are in flight (attachments.max_national_transfers); try again later")]
    TransfersBusy(usize),
    /// The issuing authority's signature is missing or not valid and the client's (or
    /// partner's) `signature_policy` is `require`; the message names the setting and why.
    #[error(transparent)]
    NationalSignature(#[from] super::national_signature::Refused),
    /// The envelope this node just signed has no signature value to time-stamp (a bug).
    #[error("internal: time-stamping: {0}")]
    Unstampable(String),
}

impl Classify for SubmitError {
    fn class(&self) -> Class {
        use SubmitError as S;
        match self {
            S::Invalid(_)
            | S::Trader { .. }
            | S::Xml { .. }
            | S::Document(_)
            | S::Translate(_)
            | S::Envelope(_)
            | S::Signing(_)
            | S::NationalSignature(_) => Class::Invalid,
            // The client's mistake (an unknown or incomplete upload, a bad id), unless the
            // node's own disk failed.
            S::Attachment { source, .. } => match source {
                AttachmentError::Io { .. } | AttachmentError::Record { .. } => Class::Unavailable,
                _ => Class::Invalid,
            },
            S::Busy(_)
            | S::QueueBytes(_)
            | S::PreparingBusy(_)
            | S::PreparingMemory { .. }
            | S::TransfersBusy(_) => Class::Busy,
            S::DiskLow(_) | S::ShuttingDown | S::Store(_) => Class::Unavailable,
            S::Worker(e) => Class::of_worker(e),
            S::Unstampable(_) => Class::Internal,
        }
    }

    fn retry_after(&self) -> Option<u32> {
        match self {
            // Intake's own bounds free up in a fraction of a second: come back in one.
            SubmitError::QueueBytes(_)
            | SubmitError::PreparingBusy(_)
            | SubmitError::PreparingMemory { .. } => Some(1),
            // The outbox and the transfer slots free up as the peers take work: no promise.
            SubmitError::Busy(_) | SubmitError::TransfersBusy(_) => None,
            // The client comes back once the operator has made room or mended the disk.
            e if e.class() == Class::Unavailable => Some(30),
            _ => None,
        }
    }
}

fn invalid(s: impl Into<String>) -> SubmitError {
    SubmitError::Invalid(s.into())
}

/// An attachment error about `field`.
fn attachment_failure(field: &str, source: AttachmentError) -> SubmitError {
    SubmitError::Attachment {
        field: field.to_owned(),
        source,
    }
}

/// How long a submission may wait to be admitted: for its bytes in `limits.max_queue_bytes`
/// and then for a place among `limits.max_preparing`, together. Preparing a small document
/// takes milliseconds, so a client with many in flight (`tereze bench`: 128) waits its turn
/// rather than being refused; not admitted by then means the node is overloaded.
const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A submission taken in at intake: its bytes held in `limits.max_queue_bytes` until its
/// commit has answered, and the deadline by which it must have a place to be prepared.
#[derive(Debug)]
pub(crate) struct Admitted {
    held: Held,
    deadline: tokio::time::Instant,
}

/// Admits a submission of `bytes` (what the request holds in memory: for the HTTP intake the
/// body and the document decoded from it, reserved before the body is read), waiting in line
/// up to [`ADMISSION_WAIT`]; refused with [`SubmitError::QueueBytes`] when no room comes.
/// This is intake's one admission point: every bound after it (places, parse memory, the
/// outbox) is checked against the same deadline.
pub(crate) async fn admit(node: &Node, bytes: u64) -> Result<Admitted, SubmitError> {
    let deadline = tokio::time::Instant::now() + ADMISSION_WAIT;
    let held = node
        .queue_bytes
        .reserve_until(bytes.saturating_add(PER_REQUEST), deadline)
        .await?;
    Ok(Admitted { held, deadline })
}

/// Turns a submission into signed envelopes and queues them (the Window's path: the request
/// is already decoded, so it is admitted for its document's bytes).
pub(crate) async fn submit(node: &Arc<Node>, s: Submission) -> Result<Vec<Queued>, SubmitError> {
    let admitted = admit(node, s.document.len() as u64).await?;
    submit_admitted(node, s, admitted).await
}

/// Turns an admitted submission into signed envelopes and queues them.
pub(crate) async fn submit_admitted(
    node: &Arc<Node>,
    s: Submission,
    admitted: Admitted,
) -> Result<Vec<Queued>, SubmitError> {
    if node.shutdown.is_cancelled() {
        return Err(SubmitError::ShuttingDown);
    }
    if node.is_hub() {
        return Err(invalid(
            "this node is a hub: it forwards, it does not take submissions",
        ));
    }
    // A cheap refusal when full; the places are reserved once the messages are counted.
    node.outbox.full()?;
    node.disk.check()?;
    if s.document.len() > node.config.limits.max_message_bytes {
        return Err(invalid(format!(
            "document: {} bytes, over the limit of {}",
            s.document.len(),
            node.config.limits.max_message_bytes
        )));
    }
    let Admitted { mut held, deadline } = admitted;
    // A body by reference is read into memory (up to attachments.max_checked_body_bytes) by a
    // request of a few bytes: it takes a national-transfer slot, so that many at once cannot
    // exhaust the node's memory.
    let slot = s
        .body_attachment
        .is_some()
        .then(|| super::transfer::national_slot(node))
        .transpose()
        .map_err(|_| SubmitError::TransfersBusy(node.config.attachments.max_national_transfers))?;
    // A document being prepared holds its tree, its translation and its envelope in memory:
    // a few at a time, each within its budget, bound what intake can take.
    let preparing = reserve(node, &s, deadline).await?;
    let sub_by = s.by.by();
    let set_id = node
        .catalog
        .format(&s.format)
        .is_some_and(|f| f.kind == FormatKind::Submission)
        .then(Uuid::new_v4);
    let n = node.clone();
    let stamping = super::stamper::enabled(node);
    // Parsing, translation and signing are CPU work: keep them off the async workers.
    let (prepared, leaves) = tokio::task::spawn_blocking(move || {
        let prepared = prepare(&n, s);
        drop(preparing);
        let prepared = prepared?;
        let leaves = if stamping {
            stamp_leaves(&prepared)?
        } else {
            Vec::new()
        };
        Ok::<_, SubmitError>((prepared, leaves))
    })
    .await
    .map_err(SubmitError::Worker)??;
    // Under the required policy the envelope waits in the outbox for its token, visibly.
    let waiting = super::stamper::required(node).then(|| super::stamper::WAITING.to_owned());
    drop(slot);
    held.resize(
        &node.queue_bytes,
        prepared
            .iter()
            .map(|p| p.0.payload.bytes().len() as u64 + PER_REQUEST)
            .sum(),
    );
    let count = prepared.len() as u64;
    // All of a set's messages or none: dropped on any error below, the places go back.
    let places = node.outbox.reserve(count)?;
    let outgoing: Vec<Outgoing> = prepared.iter().map(|p| p.0.clone()).collect();
    let labels: Vec<(uuid::Uuid, String, String)> = prepared
        .iter()
        .map(|p| (p.0.message_id, p.3 .0.clone(), p.3 .1.clone()))
        .collect();
    let translated = prepared.first().is_some_and(|p| p.2);
    let mut before = vec![(
        State::Received,
        Some(format!("from the national system, {}", sub_by)),
    )];
    if translated {
        before.push((State::Translated, None));
    }
    before.push((State::Signed, None));
    let members: Vec<SetMember> = prepared
        .iter()
        .map(|p| SetMember {
            message_id: p.0.message_id,
            country: p.1.country.clone(),
            authority: p.1.authority.clone(),
            ..SetMember::default()
        })
        .collect();
    node.committer
        .run(move |t| {
            t.enqueue(&outgoing, &before)?;
            for (id, process, document_type) in &labels {
                t.describe(*id, process, document_type)?;
            }
            // In the same commit as the envelope: a crash loses neither.
            for (id, leaf) in &leaves {
                t.await_stamp(*id, super::stamper::ENVELOPE, leaf, waiting.clone())?;
            }
            // The set's membership with its messages: its decision can never miss one.
            if let Some(set) = set_id {
                t.record_set(set, &members)?;
            }
            Ok(())
        })
        .await?;
    places.commit(count);
    drop(held);
    for (o, _, _, (process, document_type)) in &prepared {
        node.metrics
            .count_message("out", &o.peer, process, document_type);
    }
    node.metrics.submitted.inc_by(count);
    if stamping {
        node.stamping.wake.notify_one();
    }
    let mut out = Vec::new();
    for (o, recipient, _, _) in prepared {
        node.waker(&o.peer).notify_one();
        tracing::info!(
            message_id = %o.message_id,
            conversation_id = %o.conversation_id,
            peer = %o.peer,
            "queued"
        );
        out.push(Queued {
            message_id: o.message_id,
            conversation_id: o.conversation_id,
            recipient,
            set_id,
        });
    }
    Ok(out)
}

/// What a document being prepared holds: a place among `limits.max_preparing` and its
/// memory budget in `limits.max_preparing_mb`.
type Reservation = (
    tokio::sync::OwnedSemaphorePermit,
    tokio::sync::OwnedSemaphorePermit,
);

/// Reserves a place and memory for preparing `s`, or refuses it. A place is waited for up to
/// the submission's admission deadline; the memory is not waited for (a document that does not fit is refused at
/// once and holds nothing here). The memory is what parsing may take (the parser's budget for
/// the document's size, or for the largest checked body by reference), at most the whole of
/// `limits.max_preparing_mb` so that any document can be prepared alone.
async fn reserve(
    node: &Node,
    s: &Submission,
    deadline: tokio::time::Instant,
) -> Result<Reservation, SubmitError> {
    let refused = |e| {
        node.metrics.preparing_refused.inc();
        e
    };
    let limits = &node.config.limits;
    let place = tokio::time::timeout_at(deadline, node.preparing.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| refused(SubmitError::PreparingBusy(limits.max_preparing)))?;
    let size = match s.body_attachment {
        None => s.document.len(),
        Some(_) => {
            usize::try_from(node.config.attachments.max_checked_body_bytes).unwrap_or(usize::MAX)
        }
    };
    let budget = size
        .saturating_mul(xml::DEFAULT_MEMORY_PER_BYTE)
        .saturating_add(xml::MEMORY_SLACK);
    let need =
        u32::try_from(budget.div_ceil(1 << 20).min(limits.max_preparing_mb)).unwrap_or(u32::MAX);
    let memory = node
        .preparing_mb
        .clone()
        .try_acquire_many_owned(need)
        .map_err(|_| {
            refused(SubmitError::PreparingMemory {
                need,
                free: node.preparing_mb.available_permits(),
                limit: limits.max_preparing_mb,
            })
        })?;
    Ok((place, memory))
}

/// The signed messages, each with its recipient and whether it was translated here.
/// One prepared message: what goes in the outbox, its recipient, whether it was translated
/// here, and its common process and document type (for the operators' index).
type Prepared = (Outgoing, Participant, bool, (String, String));

fn prepare(node: &Node, s: Submission) -> Result<Vec<Prepared>, SubmitError> {
    check_traders(&s)?;
    let mut attachments = attachment_refs(node, &s.attachments)?;
    let format = node.catalog.format(&s.format).ok_or_else(|| {
        invalid(format!(
            "format: unknown format {:?}; `tereze translate --list` shows them",
            s.format
        ))
    })?;
    if format.kind != FormatKind::Eaeu {
        door_accepts(
            &node.config.state,
            &node.config.national,
            &s.format,
            format.country.as_deref(),
        )
        .map_err(invalid)?;
    }
    let doc = match &s.body_attachment {
        None => {
            let limits = xml::Limits {
                max_bytes: node.config.limits.max_message_bytes,
                ..xml::Limits::default()
            };
            let parsed = match (s.document_is_text, std::str::from_utf8(&s.document)) {
                (true, Ok(text)) => xml::parse_text(text, &limits),
                _ => xml::parse_with_limits(&s.document, &limits),
            };
            parsed.map_err(|source| SubmitError::Xml {
                at: "document".into(),
                source,
            })?
        }
        Some(id) => body_by_reference(node, &s, format.kind, id, &attachments)?,
    };
    let translated = format.kind != FormatKind::Eaeu;
    let common = Common::of(node, &s);
    // A national document's own signature is judged before translation, and only what it
    // signed is translated.
    let (doc, national) = if translated {
        let judged = super::national_signature::judge(
            &node.national_trust,
            &node.config.national,
            &s.by.0,
            format.country.as_deref(),
            doc,
            common.now,
        )?;
        if judged.keep_original {
            attachments.push(keep_original(node, &s, &attachments)?);
        }
        (judged.document, judged.records)
    } else {
        (doc, Vec::new())
    };
    let results = eaeu_documents(node, &s, &format, doc)?;
    check_set_recipients(&s, &results)?;
    let mut out = Vec::new();
    for r in results {
        let recipient = recipient_of(&s, &r)?;
        let (outgoing, kind) = seal(node, &s, &common, (&attachments, &national), &recipient, r)?;
        out.push((outgoing, recipient, translated, kind));
    }
    Ok(out)
}

/// A national format `id` of `country` is taken in at the doors of the node of `state` when
/// it is that state's own, or a partner state's that `[[national.signatures.partner]]` lists
/// (its signature is then judged against that partner's anchors); checked before anything
/// is parsed or verified, so a refused format costs nothing and says why.
pub(crate) fn door_accepts(
    state: &str,
    national: &tereze_doors::config::National,
    id: &str,
    country: Option<&str>,
) -> Result<(), String> {
    let Some(c) = country else {
        return Ok(());
    };
    let partner = national
        .signatures
        .as_ref()
        .is_some_and(|s| s.partners.iter().any(|p| p.state == c));
    if c == state || partner {
        return Ok(());
    }
    let refused = format!("format: {id} is {c}'s national format; this node is {state}'s");
    if crate::config::MEMBER_STATES.contains(&c) {
        // A member's documents come from its own node: no setting admits them here.
        return Err(refused);
    }
    Err(format!(
        "{refused} (a partner state's formats are taken in when \
         [[national.signatures.partner]] lists it with state = \"{c}\")"
    ))
}

/// Every trader identifier is well-formed, with valid check digits.
fn check_traders(s: &Submission) -> Result<(), SubmitError> {
    for (i, t) in s.traders.iter().enumerate() {
        tereze_reference_data::trader::parse(t).map_err(|source| SubmitError::Trader {
            index: i,
            trader: t.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The EAEU documents a submission stands for: an EAEU document checked against its model, or
/// the translation of this state's national document or submission set, each checked against
/// its model when the tariff asks for permits.
fn eaeu_documents(
    node: &Node,
    s: &Submission,
    format: &tereze_codecs::translate::FormatInfo,
    doc: xml::Document,
) -> Result<Vec<Translated>, SubmitError> {
    let directories = node.directories();
    let today = directories.today();
    match format.kind {
        FormatKind::Eaeu => {
            let record = node
                .catalog
                .check_eaeu(&today, &s.format, &doc)
                .map_err(SubmitError::Document)?;
            check_permits(node, &today, &s.format, &record)?;
            Ok(vec![Translated {
                format: s.format.clone(),
                document: doc,
                model: node.catalog.model(&s.format).cloned(),
                recipient: None,
            }])
        }
        FormatKind::National | FormatKind::Submission => {
            let results = node
                .catalog
                .translate(&today, &s.format, "eaeu", &doc)
                .map_err(SubmitError::Translate)?;
            for r in &results {
                if r.model.as_ref().is_some_and(|m| m.completeness.is_some()) {
                    let record = node
                        .catalog
                        .check_eaeu(&today, &r.format, &r.document)
                        .map_err(SubmitError::Document)?;
                    check_permits(node, &today, &r.format, &record)?;
                }
            }
            Ok(results)
        }
    }
}

/// The permits the integrated tariff asks for must be listed (the receiver checks the same).
fn check_permits(
    node: &Node,
    today: &tereze_reference_data::On<'_>,
    id: &str,
    record: &tereze_codecs::translate::Record,
) -> Result<(), SubmitError> {
    let missing = node.catalog.missing_documents(today, id, record);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!(
            "document: permits missing: {}",
            tereze_codecs::translate::describe_missing(&missing, today)
        )))
    }
}

/// What every message of one submission shares in its header.
struct Common {
    conversation_id: Uuid,
    now: chrono::DateTime<chrono::FixedOffset>,
    expires: chrono::DateTime<chrono::FixedOffset>,
    sender: Participant,
}

impl Common {
    fn of(node: &Node, s: &Submission) -> Self {
        let now = Utc::now().fixed_offset();
        let ttl = s
            .ttl_seconds
            .unwrap_or(node.config.relay.ttl_seconds)
            .min(365 * 86_400);
        let authority = if s.sender_authority.is_empty() {
            node.config.signing.authority.clone()
        } else {
            s.sender_authority.clone()
        };
        Self {
            conversation_id: s.conversation_id.unwrap_or_else(Uuid::new_v4),
            now,
            expires: now + ChronoDuration::seconds(ttl as i64),
            sender: Participant {
                country: node.config.state.clone(),
                authority,
            },
        }
    }
}

/// The recipient a translation names (a submission set's), else the submission's.
fn recipient_of(s: &Submission, r: &Translated) -> Result<Participant, SubmitError> {
    if let Some(p) = r.recipient.clone() {
        return Ok(p);
    }
    if s.recipient_country.is_empty() {
        return Err(invalid(
            "recipient_country: required (the format names no recipient)",
        ));
    }
    Ok(Participant {
        country: s.recipient_country.clone(),
        authority: if s.recipient_authority.is_empty() {
            "SW".into()
        } else {
            s.recipient_authority.clone()
        },
    })
}

/// The original signed national document as an upload to attach ([`ORIGINAL_ID`]), counted
/// against the attachments' limits with the client's own.
///
/// [`ORIGINAL_ID`]: super::national_signature::ORIGINAL_ID
fn keep_original(
    node: &Node,
    s: &Submission,
    named: &[(AttachmentRef, Uuid)],
) -> Result<(AttachmentRef, Uuid), SubmitError> {
    use super::national_signature::{ORIGINAL_ID, ORIGINAL_MEDIA_TYPE};
    let field = format!("attachments: {ORIGINAL_ID}");
    if let Some(i) = named
        .iter()
        .position(|(r, _)| r.id.eq_ignore_ascii_case(ORIGINAL_ID))
    {
        return Err(invalid(format!(
            "attachments[{i}].id: {ORIGINAL_ID:?} is the id under which the original signed national document is kept; name it otherwise"
        )));
    }
    let limits = &node.attachments.limits;
    if named.len() + 1 > limits.max_per_message {
        return Err(invalid(format!(
            "attachments: {} named and the original signed national document ({ORIGINAL_ID}) make {}, over the limit of {} (attachments.max_per_message)",
            named.len(),
            named.len() + 1,
            limits.max_per_message
        )));
    }
    let (upload, mut sink) = node
        .attachments
        .upload()
        .map_err(|e| attachment_failure(&field, e))?;
    let mut offset = 0u64;
    for chunk in s.document.chunks(crate::attachments::MAX_CHUNK_BYTES) {
        sink.write(offset, chunk, None)
            .map_err(|e| attachment_failure(&field, e))?;
        offset += chunk.len() as u64;
    }
    let held = sink.finish().map_err(|e| attachment_failure(&field, e))?;
    Ok((
        AttachmentRef {
            id: ORIGINAL_ID.to_owned(),
            media_type: ORIGINAL_MEDIA_TYPE.to_owned(),
            size: held.size,
            sha256: held.sha256,
        },
        upload,
    ))
}

/// One EAEU document for `recipient` as a signed envelope in an outbox entry, its attachments
/// adopted under the new message id, the national signatures recorded in its header; with its
/// common process and document type.
fn seal(
    node: &Node,
    s: &Submission,
    common: &Common,
    (attachments, national): (&[(AttachmentRef, Uuid)], &[NationalSignature]),
    recipient: &Participant,
    r: Translated,
) -> Result<(Outgoing, (String, String)), SubmitError> {
    if recipient.country == node.config.state {
        return Err(invalid(format!(
            "recipient_country: {} is this node's own state",
            recipient.country
        )));
    }
    let peer = node.next_hop(&recipient.country).ok_or_else(|| {
        invalid(format!(
            "recipient_country: {} is not a state in the trust space",
            recipient.country
        ))
    })?;
    let model = r
        .model
        .as_ref()
        .ok_or_else(|| invalid(format!("format: {} has no EAEU document model", r.format)))?;
    let message_id = Uuid::new_v4();
    let header = Header {
        message_id,
        conversation_id: common.conversation_id,
        procedure_id: common.conversation_id,
        in_reply_to: None,
        process: model.process.clone(),
        message: model.message.clone(),
        transaction: model.transaction.clone(),
        kind: MessageKind::Request,
        sender: common.sender.clone(),
        recipient: recipient.clone(),
        created_at: common.now,
        expires_at: Some(common.expires),
        document: DocumentRef {
            type_code: model.type_code.clone(),
            version: model.version.clone(),
            issuing_authority: common.sender.clone(),
        },
        traders: s.traders.clone(),
        attachments: attachments.iter().map(|(r, _)| r.clone()).collect(),
        national_signatures: national.to_vec(),
    };
    for (r, upload) in attachments {
        node.attachments
            .adopt(*upload, message_id, &r.id)
            .map_err(|e| attachment_failure(&format!("attachments: {}", r.id), e))?;
    }
    let bytes = signed_envelope(node, s, &header, &r.document)?;
    let outgoing = Outgoing {
        message_id,
        conversation_id: common.conversation_id,
        peer,
        payload: Payload::Envelope {
            sender: node.config.state.clone(),
            recipient: recipient.country.clone(),
            envelope: bytes,
            attachments: attachments
                .iter()
                .map(|(r, _)| AttachmentMeta {
                    id: r.id.clone(),
                    size: r.size,
                    sha256: tereze_support::hex::hex(&r.sha256),
                })
                .collect(),
        },
        expires_at: Some(common.expires.timestamp_millis()),
    };
    Ok((outgoing, (model.process.clone(), model.type_code.clone())))
}

/// Each prepared envelope's signature value, the leaf its time-stamp token will cover.
fn stamp_leaves(prepared: &[Prepared]) -> Result<Vec<(uuid::Uuid, Vec<u8>)>, SubmitError> {
    prepared
        .iter()
        .map(|p| {
            super::stamper::signature_value(p.0.payload.bytes())
                .map(|leaf| (p.0.message_id, leaf))
                .map_err(|why| SubmitError::Unstampable(format!("the signed envelope {why}")))
        })
        .collect()
}

/// The envelope of `header` around `document` (or the body attachment), signed by this node,
/// within `limits.max_message_bytes`.
fn signed_envelope(
    node: &Node,
    s: &Submission,
    header: &Header,
    document: &xml::Document,
) -> Result<Vec<u8>, SubmitError> {
    // 1.0 unless the header records national signatures, so peers that read only 1.0 keep
    // reading everything else.
    let version = Version::for_header(header);
    let mut env_doc = match &s.body_attachment {
        None => Envelope::build_document(version, header, document),
        Some(id) => Envelope::build_document_by_reference(version, header, id),
    }
    .map_err(SubmitError::Envelope)?;
    dsig::sign_enveloped(
        &mut env_doc,
        &SignTarget::Document,
        &node.signing,
        &SignOptions::default(),
    )
    .map_err(SubmitError::Signing)?;
    let bytes = env_doc.to_xml().into_bytes();
    if bytes.len() > node.config.limits.max_message_bytes {
        return Err(invalid(format!(
            "document: the signed envelope is {} bytes, over the limit of {}",
            bytes.len(),
            node.config.limits.max_message_bytes
        )));
    }
    Ok(bytes)
}

/// A submission set names the recipient of each of its messages; a `recipient_country` that
/// disagrees would be silently ignored (the messages would go elsewhere than the client
/// asked), so it is refused. Empty, or the set's only recipient, is accepted.
fn check_set_recipients(s: &Submission, results: &[Translated]) -> Result<(), SubmitError> {
    if s.recipient_country.is_empty() {
        return Ok(());
    }
    let named: std::collections::BTreeSet<&str> = results
        .iter()
        .filter_map(|r| r.recipient.as_ref())
        .map(|p| p.country.as_str())
        .collect();
    if named.iter().all(|c| *c == s.recipient_country) {
        return Ok(());
    }
    let named: Vec<&str> = named.into_iter().collect();
    Err(invalid(format!(
        "recipient_country: {} given, but the submission set {} sends its messages to {} (the set names its recipients); leave recipient_country empty",
        s.recipient_country,
        s.format,
        named.join(", ")
    )))
}

/// The envelope's references to the named uploads, checked against the limits.
fn attachment_refs(
    node: &Node,
    named: &[SubmitAttachment],
) -> Result<Vec<(AttachmentRef, Uuid)>, SubmitError> {
    let limits = &node.attachments.limits;
    if named.len() > limits.max_per_message {
        return Err(invalid(format!(
            "attachments: {} named, over the limit of {} (attachments.max_per_message)",
            named.len(),
            limits.max_per_message
        )));
    }
    let mut out: Vec<(AttachmentRef, Uuid)> = Vec::with_capacity(named.len());
    let mut total = 0u64;
    for (i, a) in named.iter().enumerate() {
        let at = format!("attachments[{i}]");
        if !crate::attachments::valid_id(&a.id) {
            return Err(invalid(format!(
                "{at}.id: {:?} is not 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit",
                a.id
            )));
        }
        if out.iter().any(|(r, _)| r.id == a.id) {
            return Err(invalid(format!("{at}.id: {:?} is named twice", a.id)));
        }
        let upload = Uuid::parse_str(&a.upload_id).map_err(|_| {
            invalid(format!(
                "{at}.upload_id: {:?} is not an upload id",
                a.upload_id
            ))
        })?;
        let held = node
            .attachments
            .upload_held(upload)
            .map_err(|e| attachment_failure(&format!("{at}.upload_id"), e))?;
        total = total.saturating_add(held.size);
        if total > limits.max_message_bytes {
            return Err(invalid(format!(
                "attachments: {total} bytes together, over the limit of {} (attachments.max_message_bytes)",
                limits.max_message_bytes
            )));
        }
        let media_type = if a.media_type.is_empty() {
            "application/octet-stream".to_owned()
        } else {
            a.media_type.clone()
        };
        out.push((
            AttachmentRef {
                id: a.id.clone(),
                media_type,
                size: held.size,
                sha256: held.sha256,
            },
            upload,
        ));
    }
    Ok(out)
}

/// The body by reference, read from its upload and parsed for the same checks an inline body
/// gets: only an EAEU document (no translation), only within
/// `attachments.max_checked_body_bytes`.
fn body_by_reference(
    node: &Node,
    s: &Submission,
    kind: FormatKind,
    id: &str,
    attachments: &[(AttachmentRef, Uuid)],
) -> Result<xml::Document, SubmitError> {
    if kind != FormatKind::Eaeu {
        return Err(invalid(format!(
            "body_attachment: {} is not an EAEU format; a body by reference is sent as it is, never translated",
            s.format
        )));
    }
    if !s.document.is_empty() {
        return Err(invalid(
            "document: must be empty when body_attachment names the body",
        ));
    }
    let Some((r, upload)) = attachments.iter().find(|(r, _)| r.id == id) else {
        return Err(invalid(format!(
            "body_attachment: {id:?} is not one of the attachments named"
        )));
    };
    let max = node.attachments.limits.max_checked_body_bytes;
    let bytes = node
        .attachments
        .read_upload(*upload, max)
        .map_err(|e| attachment_failure("body_attachment", e))?
        .ok_or_else(|| {
            invalid(format!(
                "body_attachment: {} bytes, over the {max} this node checks against the model (attachments.max_checked_body_bytes)",
                r.size
            ))
        })?;
    let limits = xml::Limits {
        max_bytes: max as usize,
        max_nodes: xml::Limits::default().max_nodes.max(max as usize / 16),
        ..xml::Limits::default()
    };
    xml::parse_with_limits(&bytes, &limits).map_err(|source| SubmitError::Xml {
        at: format!("body_attachment {id}"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::door_accepts;
    use tereze_doors::config::{National, NationalSignatures, PartnerSignatures};

    fn with_partners(states: &[&str]) -> National {
        National {
            signatures: Some(NationalSignatures {
                anchors: vec!["national-ca.pem".into()],
                partners: states
                    .iter()
                    .map(|s| PartnerSignatures {
                        state: (*s).into(),
                        anchors: vec!["partner-ca.pem".into()],
                        policy: None,
                        profile: None,
                        signed_element: None,
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn national_formats_pass_the_door_when_own_or_a_listed_partners() {
        let id = "vn.phytosanitary-certificate";
        let listed = with_partners(&["VN"]);
        assert_eq!(door_accepts("RU", &listed, id, Some("VN")), Ok(()));
        assert_eq!(door_accepts("RU", &listed, "ru.x", Some("RU")), Ok(()));
        assert_eq!(door_accepts("RU", &listed, "eaeu.x", None), Ok(()));
        for unlisted in [National::default(), with_partners(&["CN"])] {
            let e = door_accepts("RU", &unlisted, id, Some("VN")).expect_err("refused");
            assert!(
                e.starts_with(
                    "format: vn.phytosanitary-certificate is VN's national format; \
                     this node is RU's"
                ) && e.contains("[[national.signatures.partner]]")
                    && e.contains("state = \"VN\""),
                "{e}"
            );
        }
        // Another member's format is refused whatever the partners: it has its own node.
        let e = door_accepts("RU", &listed, "kz.x", Some("KZ")).expect_err("refused");
        assert_eq!(
            e, "format: kz.x is KZ's national format; this node is RU's",
            "no hint to list a member as a partner"
        );
    }
}
