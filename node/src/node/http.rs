//! HTTP/JSON for national systems without gRPC (the same operations as `Window`), health,
//! readiness and Prometheus metrics. Errors are JSON `{"error": "..."}` with 400 for bad
//! input, 413 for a body over the size limit, 404 for unknown messages, 429 when the queues
//! are full, 503 when the node cannot take work.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::answer;
use super::submit::{self, Submission};
use super::Node;
use crate::class::Classify;
use tereze_support::urn::parse_id;

/// The JSON error bodies every door answers with.
pub(crate) use tereze_doors::response::{bad_body, error};

type Shared = State<Arc<Node>>;

/// The national door: every route but health, readiness and metrics needs a national client
/// allowed to call its operation ([`super::national::guard`]). Operator actions are on the
/// admin API only; what peers fetch is on the peer door ([`peer_router`]).
pub(crate) fn router(node: Arc<Node>) -> Router {
    use crate::config::Operation;
    let limit = json_body_limit(&node.config.limits);
    let guarded = |operation: Option<Operation>, routes: Router<Arc<Node>>| {
        routes.route_layer(axum::middleware::from_fn_with_state(
            super::national::Guarded {
                door: node.national.clone(),
                operation,
            },
            super::national::guard,
        ))
    };
    let submit = Router::new()
        .route("/v1/messages", post(post_message))
        .route("/v1/messages/{id}", get(get_message));
    let inbox = Router::new().route("/v1/inbox", get(get_inbox)).route(
        "/v1/messages/{id}/attachments/{attachment}",
        get(get_attachment),
    );
    let ack = Router::new().route("/v1/inbox/ack", post(post_ack));
    let begin_upload = Router::new().route("/v1/uploads", post(post_upload));
    // Streamed to and from disk, never buffered: limits are attachments.max_attachment_bytes,
    // checked as bytes arrive.
    let upload = Router::new()
        .route("/v1/attachments", axum::routing::put(put_attachment))
        .route("/v1/uploads/{id}", get(get_upload).patch(patch_upload))
        .layer(axum::extract::DefaultBodyLimit::disable());
    Router::new()
        .merge(guarded(Some(Operation::Submit), submit))
        .merge(guarded(Some(Operation::Inbox), inbox))
        .merge(guarded(Some(Operation::Ack), ack))
        .merge(guarded(Some(Operation::Upload), begin_upload))
        .merge(guarded(
            Some(Operation::Traders),
            super::traders::register_routes(),
        ))
        .merge(guarded(
            None,
            super::http_reference::lookup_routes().merge(super::traders::lookup_routes()),
        ))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .merge(guarded(
            Some(Operation::Reference),
            super::http_reference::publish_routes(),
        ))
        .merge(guarded(Some(Operation::Upload), upload))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(node)
}

/// The largest JSON body the national door reads: a document of `max_message_bytes` with
/// room for its JSON escaping and the other fields.
fn json_body_limit(limits: &crate::config::Limits) -> usize {
    limits.max_message_bytes.saturating_mul(2)
}

/// The peer door: what other states' nodes may fetch, read-only, and nothing else.
pub(crate) fn peer_router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/v1/crl", get(get_crl))
        .layer(axum::extract::DefaultBodyLimit::max(0))
        .with_state(node)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    format: String,
    /// The document's XML text (empty when `body_attachment` names the body).
    #[serde(default)]
    document: String,
    #[serde(default)]
    recipient_country: String,
    #[serde(default)]
    recipient_authority: String,
    #[serde(default)]
    sender_authority: String,
    conversation_id: Option<String>,
    ttl_seconds: Option<u64>,
    #[serde(default)]
    traders: Vec<String>,
    #[serde(default)]
    attachments: Vec<submit::SubmitAttachment>,
    /// One of `attachments` that is the body (then `document` is empty).
    body_attachment: Option<String>,
}

/// `PUT /v1/attachments`: the body (chunked or with a length) is the file; the answer names
/// the upload for a later `POST /v1/messages`. A `Content-Length` is promised against the
/// disk reserve before the first byte is read (507 when it does not fit).
async fn put_attachment(
    State(node): Shared,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Response {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match super::transfer::upload(&node, declared, body.into_data_stream()).await {
        Ok((upload, held)) => upload_answer(
            StatusCode::CREATED,
            upload,
            &crate::attachments::UploadState::Complete(held),
        ),
        Err(e) => transfer_error(e),
    }
}

/// An upload's state as JSON: `upload_id`, `size`, `have`, `complete`, and `sha256` once
/// complete.
fn upload_answer(
    code: StatusCode,
    upload: uuid::Uuid,
    st: &crate::attachments::UploadState,
) -> Response {
    let r = super::window::upload_response(upload, st);
    let mut v = json!({
        "upload_id": r.upload_id,
        "size": r.size,
        "have": r.have,
        "complete": r.complete,
    });
    if r.complete {
        v["sha256"] = Value::String(r.sha256);
    }
    (code, Json(v)).into_response()
}

/// The HTTP answer to a failed upload, from the error's class ([`answer::http_status`]): 400
/// bad input, 404 unknown upload, 409 an offset other than the bytes held (with `have`) or
/// another request writing the upload, 413 over the limits, 422 bytes of another SHA-256 than
/// declared, 429 too many transfers, 507 (with `Retry-After`) when the disk has no room for
/// it, 503 (with `Retry-After`) when the node cannot take it now.
fn transfer_error(e: super::transfer::TransferError) -> Response {
    use super::transfer::TransferError as T;
    use crate::attachments::AttachmentError as A;
    match e {
        // The client continues from `have`: say it in a field, not only in the text.
        T::Refused(ref a @ A::Offset { have, .. }) => (
            answer::http_status(a.class()),
            Json(json!({
                "error": a.to_string(),
                "have": have,
            })),
        )
            .into_response(),
        e => answer::response(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BeginUploadBody {
    size: u64,
    #[serde(default)]
    sha256: Option<String>,
}

/// `POST /v1/uploads` `{"size": N, "sha256": "…"}`: begins a resumable upload.
async fn post_upload(
    State(node): Shared,
    body: Result<Json<BeginUploadBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(b) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(e),
    };
    let want = match super::window::upload_want(b.size, b.sha256.as_deref().unwrap_or_default()) {
        Ok(w) => w,
        Err(m) => return answer::response(&m),
    };
    match super::transfer::begin_upload(&node, want.clone()).await {
        Ok(upload) => upload_answer(
            StatusCode::CREATED,
            upload,
            &crate::attachments::UploadState::Partial { have: 0, want },
        ),
        Err(e) => transfer_error(e),
    }
}

/// An upload id in a path, or the `400` answer.
fn upload_path(id: &str) -> Result<uuid::Uuid, Box<Response>> {
    uuid::Uuid::parse_str(id).map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not an upload id"),
        ))
    })
}

/// `GET /v1/uploads/{id}`: where the upload stands (`have` is durable).
async fn get_upload(State(node): Shared, Path(id): Path<String>) -> Response {
    let upload = match upload_path(&id) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    match super::transfer::upload_state(&node, upload).await {
        Ok(st) => upload_answer(StatusCode::OK, upload, &st),
        Err(e) => transfer_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AtOffset {
    offset: u64,
}

/// `PATCH /v1/uploads/{id}?offset=N`: the body (chunked or with a length) continues the upload
/// from `N`, which must be the bytes held; the answer says where it stands (complete once the
/// declared size is reached).
async fn patch_upload(
    State(node): Shared,
    Path(id): Path<String>,
    q: Result<Query<AtOffset>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Body,
) -> Response {
    let upload = match upload_path(&id) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "?offset=N is required (the bytes held, from GET /v1/uploads/{id}): {}",
                    e.body_text()
                ),
            )
        }
    };
    match super::transfer::append(&node, upload, q.offset, body.into_data_stream()).await {
        Ok(st) => upload_answer(StatusCode::OK, upload, &st),
        Err(e) => transfer_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FromOffset {
    #[serde(default)]
    offset: u64,
}

/// `GET /v1/messages/{id}/attachments/{attachment}[?offset=N]`: the attachment's bytes from
/// `offset`, with its SHA-256 in `x-tereze-sha256`.
async fn get_attachment(
    State(node): Shared,
    Path((id, attachment)): Path<(String, String)>,
    Query(q): Query<FromOffset>,
) -> Response {
    use tokio_stream::StreamExt;
    let Some(message) = parse_id(&id) else {
        return error(StatusCode::BAD_REQUEST, format!("{id:?} is not a urn:uuid"));
    };
    if !crate::attachments::valid_id(&attachment) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{attachment:?} is not an attachment id"),
        );
    }
    let held = match node.attachments.held(message, &attachment) {
        Ok(Some(h)) => h,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("message {id} has no attachment {attachment} here"),
            )
        }
        Err(e) => return answer::response(&e),
    };
    let rx = match super::window::read_attachment(&node, message, attachment, q.offset) {
        Ok(rx) => rx,
        Err(e) => return answer::response(&e),
    };
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(|r| {
        r.map(|d| axum::body::Bytes::from(d.data))
            .map_err(|s| std::io::Error::other(s.message().to_owned()))
    });
    // Ends the download at shutdown (the connection is cut before Content-Length bytes: the
    // client resumes with `offset`), or the server's graceful shutdown would wait for it.
    let stream = crate::shutdown::until_shutdown(
        stream,
        node.shutdown.clone(),
        Err(std::io::Error::other(crate::shutdown::SHUTTING_DOWN)),
    );
    let mut r = Response::new(axum::body::Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        axum::http::header::CONTENT_LENGTH,
        axum::http::HeaderValue::from(held.size - q.offset),
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&tereze_support::hex::hex(&held.sha256)) {
        h.insert("x-tereze-sha256", v);
    }
    r
}

/// How long a submission's body may take to arrive once admitted: it holds its declared size
/// of `limits.max_queue_bytes` meanwhile, so a client trickling its body cannot hold intake's
/// bytes for longer (4 MiB in this time needs about 0.6 Mbit/s).
const SUBMISSION_BODY_TIME: std::time::Duration = std::time::Duration::from_secs(60);

async fn post_message(
    State(node): Shared,
    Extension(by): Extension<super::national::Caller>,
    request: axum::extract::Request,
) -> Response {
    // Admitted before the body is read: the body and the document decoded from it are held
    // in memory together, so a burst of large submissions waits (or is refused) here instead
    // of being read all at once.
    let body_limit = json_body_limit(&node.config.limits) as u64;
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .map_or(body_limit, |n| n.min(body_limit));
    let admitted = match submit::admit(&node, declared.saturating_mul(2)).await {
        Ok(a) => a,
        Err(e) => return answer::response(&e),
    };
    let body = <Json<SubmitBody> as axum::extract::FromRequest<()>>::from_request(request, &());
    let Json(b) = match tokio::time::timeout(SUBMISSION_BODY_TIME, body).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return bad_body(e),
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s of the submission's admission",
                    SUBMISSION_BODY_TIME.as_secs()
                ),
            )
        }
    };
    let conversation_id = match &b.conversation_id {
        None => None,
        Some(s) => match parse_id(s) {
            Some(id) => Some(id),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("conversation_id: {s:?} is not a urn:uuid"),
                )
            }
        },
    };
    let r = submit::submit_admitted(
        &node,
        Submission {
            format: b.format,
            document: b.document.into_bytes(),
            recipient_country: b.recipient_country,
            recipient_authority: b.recipient_authority,
            sender_authority: b.sender_authority,
            conversation_id,
            ttl_seconds: b.ttl_seconds,
            traders: b.traders,
            attachments: b.attachments,
            body_attachment: b.body_attachment,
            by,
        },
        admitted,
    )
    .await;
    match r {
        Ok(queued) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "messages": queued.iter().map(|q| json!({
                    "message_id": format!("urn:uuid:{}", q.message_id),
                    "conversation_id": format!("urn:uuid:{}", q.conversation_id),
                    "recipient_country": q.recipient.country,
                    "recipient_authority": q.recipient.authority,
                })).collect::<Vec<Value>>()
            })),
        )
            .into_response(),
        Err(e) => answer::response(&e),
    }
}

async fn get_message(State(node): Shared, Path(id): Path<String>) -> Response {
    let Some(uuid) = parse_id(&id) else {
        return error(StatusCode::BAD_REQUEST, format!("{id:?} is not a urn:uuid"));
    };
    let history = match node.store().history(uuid) {
        Ok(h) => h,
        Err(e) => return answer::response(&e),
    };
    if history.is_empty() {
        return error(StatusCode::NOT_FOUND, format!("no message {id}"));
    }
    let receipt = node.store().receipt(uuid).ok().flatten();
    Json(json!({
        "message_id": format!("urn:uuid:{uuid}"),
        "history": history.iter().map(|t| json!({
            "state": t.state.as_str(), "at_ms": t.at, "note": t.note,
        })).collect::<Vec<Value>>(),
        "receipt": receipt.map(|r| String::from_utf8_lossy(&r).into_owned()),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct InboxQuery {
    limit: Option<usize>,
    /// The `next` of an earlier answer: the messages after it.
    after: Option<String>,
}

async fn get_inbox(State(node): Shared, Query(q): Query<InboxQuery>) -> Response {
    let max = node.config.limits.max_inbox_pull;
    let limit = q.limit.unwrap_or(max).clamp(1, max);
    let after = match super::window::parse_cursor(q.after.as_deref().unwrap_or_default(), "after") {
        Ok(a) => a,
        Err(e) => return answer::response(&e),
    };
    match node.store().inbox_after(after, limit) {
        Ok(page) => Json(json!({
            "next": super::window::next_cursor(&page, after),
            "messages": page.iter().map(|(_, m)| json!({
                "message_id": format!("urn:uuid:{}", m.message_id),
                "sender": m.sender,
                "verdict": m.verdict,
                "envelope": String::from_utf8_lossy(&m.envelope),
                "receipt": String::from_utf8_lossy(&m.receipt),
            })).collect::<Vec<Value>>()
        }))
        .into_response(),
        Err(e) => answer::response(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    message_ids: Vec<String>,
}

async fn post_ack(
    State(node): Shared,
    Extension(by): Extension<super::national::Caller>,
    body: Result<Json<AckBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(b) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(e),
    };
    let mut ids = Vec::new();
    for s in &b.message_ids {
        match parse_id(s) {
            Some(id) => ids.push(id),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("message_ids: {s:?} is not a urn:uuid"),
                )
            }
        }
    }
    match super::window::ack(&node, ids, &by).await {
        Ok(n) => Json(json!({ "acknowledged": n })).into_response(),
        Err(e) => answer::response(&e),
    }
}

/// Days until `cert` expires (negative once it has; `i64::MIN` if that cannot be told).
fn days_left(cert: &openssl::x509::X509) -> i64 {
    openssl::asn1::Asn1Time::days_from_now(0)
        .ok()
        .and_then(|now| now.diff(cert.not_after()).ok())
        .map_or(i64::MIN, |d| i64::from(d.days))
}

/// Days left of every certificate the node uses: its TLS and signing certificates and each
/// trust-space anchor, by name (`tls`, `signing`, `anchor:KZ:0`…).
pub(crate) fn certificate_expiry(node: &Node) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    if let Ok(pem) = std::fs::read(&node.config.tls.certificate) {
        if let Ok(c) = openssl::x509::X509::from_pem(&pem) {
            out.push(("tls".to_owned(), days_left(&c)));
        }
    }
    out.push(("signing".to_owned(), days_left(&node.audit_cert)));
    for st in node.trust().states.values() {
        for (i, a) in st.anchors.iter().enumerate() {
            out.push((format!("anchor:{}:{i}", st.code), days_left(a)));
        }
    }
    out
}

/// Readiness: the store takes a write, the signing certificate is valid, the trust space in
/// force lists this node (and came signed when a Commission anchor is configured). Peers'
/// reachability is reported but does not make the node unready: it stores and forwards.
async fn ready(State(node): Shared) -> Response {
    if node.shutdown.is_cancelled() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    // A store whose writes wait for space is not writable; asking it would wait too.
    let store = match node.committer.paused() {
        Some(why) => Err(why),
        None => node
            .committer
            .run_lazily(|_| Ok(()))
            .await
            .map_err(|e| e.to_string()),
    };
    let signing_days = days_left(&node.audit_cert);
    let trust = node.trust();
    let trust_ok = trust.state(&node.config.state).is_some()
        && (node.trust_anchor.is_none() || trust.signer.is_some());
    let probes = super::relay::probe_peers(&node, std::time::Duration::from_secs(1)).await;
    let peers_up = probes.iter().filter(|p| p.answer.is_ok()).count();
    let peers = probes.len();
    let disk = node.disk.check();
    let ready = store.is_ok() && signing_days >= 0 && trust_ok && disk.is_ok();
    let body = json!({
        "ready": ready,
        "checks": {
            "store_writable": store.as_ref().map(|_| "ok".to_owned()).unwrap_or_else(|e| e.clone()),
            "signing_certificate_days_left": signing_days,
            "trust_space": if trust_ok { format!("v{} in force", trust.version) } else { "does not list this node, or is not signed".to_owned() },
            "peers_reachable": format!("{peers_up}/{peers}"),
            "disk": match disk {
                Ok(()) => node.disk.free().map_or_else(|| "free space unknown".to_owned(), |b| format!("{} MiB free", b / (1024 * 1024))),
                Err(e) => e.to_string(),
            },
        }
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// This state's CRLs (`publish_crls`), for peers that fetch them from the CRL location the
/// trust space lists; read from disk on each request.
async fn get_crl(State(node): Shared) -> Response {
    if node.config.publish_crls.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "this node publishes no CRL (publish_crls)",
        );
    }
    let mut out = Vec::new();
    for path in &node.config.publish_crls {
        let bytes = match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot read a published CRL");
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a published CRL cannot be read",
                );
            }
        };
        // Served as PEM whatever the file holds, so several concatenate.
        match crate::trust::crl::parse_crls(&bytes) {
            Ok(crls) => {
                for c in crls {
                    match c.to_pem() {
                        Ok(pem) => out.extend_from_slice(&pem),
                        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
                    }
                }
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "a published CRL is not a CRL");
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a published CRL is not a CRL",
                );
            }
        }
    }
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
        out,
    )
        .into_response()
}

async fn metrics(State(node): Shared) -> Response {
    let m = &node.metrics;
    let inbox = node.store().inbox_len().unwrap_or(0);
    let awaiting = node.store().awaiting_len().unwrap_or(0);
    let gauges_and_counters: [(&str, &str, &str, u64); 40] = [
        (
            "preparing_reserved_mb",
            "gauge",
            "MiB of limits.max_preparing_mb reserved by the documents being prepared now.",
            node.config
                .limits
                .max_preparing_mb
                .saturating_sub(node.preparing_mb.available_permits()) as u64,
        ),
        (
            "documents_preparing",
            "gauge",
            "Documents being prepared at intake now (parsed, translated, signed), at most limits.max_preparing.",
            node.config
                .limits
                .max_preparing
                .saturating_sub(node.preparing.available_permits()) as u64,
        ),
        (
            "preparing_refused_total",
            "counter",
            "Submissions refused (429 / RESOURCE_EXHAUSTED) because limits.max_preparing documents were being prepared or their budgets left too little of limits.max_preparing_mb.",
            m.preparing_refused.load(Ordering::Relaxed),
        ),
        (
            "attachments_receiving",
            "gauge",
            "Attachments being received now (docs/attachments.md).",
            node.receiving.len() as u64,
        ),
        (
            "attachment_lane_messages",
            "gauge",
            "Messages with attachments handed to the peers' attachments lanes now (sending, or waiting for a transfer slot).",
            node.lane_messages() as u64,
        ),
        (
            "uploads_total",
            "counter",
            "Uploads from the national system stored complete.",
            m.uploads.load(Ordering::Relaxed),
        ),
        (
            "attachments_received_total",
            "counter",
            "Attachments received complete from peers (digest checked, fsynced).",
            m.attachments_received.load(Ordering::Relaxed),
        ),
        (
            "attachment_bytes_received_total",
            "counter",
            "Attachment bytes written from peers' chunks.",
            m.attachment_bytes_received.load(Ordering::Relaxed),
        ),
        (
            "attachments_sent_total",
            "counter",
            "Transfers this node streamed that the next hop answered complete.",
            m.relay.attachments_sent.load(Ordering::Relaxed),
        ),
        (
            "attachment_bytes_sent_total",
            "counter",
            "Attachment bytes this node streamed to next hops (a part sent again after a refusal or a break counts again).",
            m.relay.attachment_bytes_sent.load(Ordering::Relaxed),
        ),
        (
            "attachment_chunks_refused_total",
            "counter",
            "Chunks refused (digest or offset mismatch, malformed), each asked for again or refused for good.",
            m.attachment_refusals.load(Ordering::Relaxed),
        ),
        (
            "trust_space_version",
            "gauge",
            "Version of the trust space in force.",
            node.trust().version,
        ),
        (
            "outbox_messages",
            "gauge",
            "Messages waiting for their next hop.",
            node.outbox.held(),
        ),
        (
            "queue_bytes",
            "gauge",
            "Bytes of messages in memory on their way into the store (submissions and delivered batches before their commit).",
            node.queue_bytes.held(),
        ),
        (
            "queue_bytes_peak",
            "gauge",
            "The most bytes of messages on their way into the store at once since the start.",
            node.queue_bytes.peak(),
        ),
        (
            "queue_bytes_limit",
            "gauge",
            "limits.max_queue_bytes: above it submissions are refused (429) and deliveries answered RESOURCE_EXHAUSTED.",
            node.queue_bytes.max(),
        ),
        (
            "queue_bytes_refused_total",
            "counter",
            "Submissions and Deliver calls refused at limits.max_queue_bytes.",
            node.queue_bytes.refused(),
        ),
        (
            "inbox_messages",
            "gauge",
            "Received messages not yet taken by the national system.",
            inbox,
        ),
        (
            "awaiting_receipts",
            "gauge",
            "Messages sent through a hub awaiting their end receipt.",
            awaiting,
        ),
        (
            "refused_total",
            "counter",
            "Delivered items refused (malformed, unauthorised, unknown recipient...).",
            m.refused.load(Ordering::Relaxed),
        ),
        (
            "submitted_total",
            "counter",
            "Messages accepted from the national system.",
            m.submitted.load(Ordering::Relaxed),
        ),
        (
            "delivered_total",
            "counter",
            "Messages delivered with a verified receipt.",
            m.relay.delivered.load(Ordering::Relaxed),
        ),
        (
            "received_total",
            "counter",
            "Messages received from peers (first deliveries).",
            m.received.load(Ordering::Relaxed),
        ),
        (
            "duplicates_total",
            "counter",
            "Redeliveries answered with the first receipt.",
            m.duplicates.load(Ordering::Relaxed),
        ),
        (
            "trust_space_refused_total",
            "counter",
            "Trust-space documents offered and refused (signature, downgrade, unusable).",
            m.trust_refused.load(Ordering::Relaxed),
        ),
        (
            "replayed_ids_total",
            "counter",
            "Deliveries refused for reusing a taken message id with another envelope.",
            m.replayed_ids.load(Ordering::Relaxed),
        ),
        (
            "failed_attempts_total",
            "counter",
            "Delivery attempts that failed and will be retried.",
            m.relay.failed_attempts.load(Ordering::Relaxed),
        ),
        (
            "dead_total",
            "counter",
            "Messages that became dead.",
            m.relay.dead.load(Ordering::Relaxed),
        ),
        (
            "expired_total",
            "counter",
            "Messages that expired.",
            m.relay.expired.load(Ordering::Relaxed),
        ),
        (
            "crl_updates_total",
            "counter",
            "CRLs fetched from CRL locations and put in force.",
            m.crl_updates.load(Ordering::Relaxed),
        ),
        (
            "crl_refused_total",
            "counter",
            "Fetched CRLs refused (not signed by the state's anchor, from the future, older than the one held).",
            m.crl_refused.load(Ordering::Relaxed),
        ),
        (
            "crl_fetch_failures_total",
            "counter",
            "Fetches of CRL locations that failed (the CRL held stays in force).",
            m.crl_fetch_failures.load(Ordering::Relaxed),
        ),
        (
            "reference_change_sets_total",
            "counter",
            "Reference-directory change sets put in force.",
            m.change_sets.load(Ordering::Relaxed),
        ),
        (
            "reference_change_sets_refused_total",
            "counter",
            "Change sets refused (signature, authority, conflict, invalid content).",
            m.change_sets_refused.load(Ordering::Relaxed),
        ),
        (
            "reference_gaps_total",
            "counter",
            "Change sets that skipped numbers, so the missing ones were pulled.",
            m.change_set_gaps.load(Ordering::Relaxed),
        ),
        (
            "reference_pulls_total",
            "counter",
            "Pulls of change sets from a source that answered (with or without new sets).",
            m.change_set_pulls.load(Ordering::Relaxed),
        ),
        (
            "reference_pull_failures_total",
            "counter",
            "Pulls of change sets from a source that failed.",
            m.change_set_pull_failures.load(Ordering::Relaxed),
        ),
        (
            "reference_webhooks_sent_total",
            "counter",
            "Change notifications delivered to webhooks.",
            m.webhooks_sent.load(Ordering::Relaxed),
        ),
        (
            "admin_refused_total",
            "counter",
            "Admin API requests refused for missing or wrong operator credentials.",
            m.admin_refused.load(Ordering::Relaxed),
        ),
        (
            "reference_webhooks_failed_total",
            "counter",
            "Change notifications that no retry delivered.",
            m.webhooks_failed.load(Ordering::Relaxed),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, v) in gauges_and_counters {
        out.push_str(&format!(
            "# HELP tereze_{name} {help}\n# TYPE tereze_{name} {kind}\ntereze_{name} {v}\n"
        ));
    }
    node.national.refusals.render(&mut out);
    m.connections.render(&mut out);
    out.push_str("# HELP tereze_reference_directory_version Version (last change set) of each reference directory in force.\n# TYPE tereze_reference_directory_version gauge\n");
    let dirs = node.directories();
    for id in dirs.ids() {
        let v = dirs.get(id).map_or(0, |d| d.version);
        out.push_str(&format!(
            "tereze_reference_directory_version{{directory=\"{id}\"}} {v}\n"
        ));
    }
    out.push_str("# HELP tereze_recognition_rejections_total Documents rejected by recognition, by reason code (docs/recognition.md).\n# TYPE tereze_recognition_rejections_total counter\n");
    for (reason, n) in m
        .rejections
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        out.push_str(&format!(
            "tereze_recognition_rejections_total{{reason=\"{reason}\"}} {n}\n"
        ));
    }
    out.push_str("# HELP tereze_messages_total Messages submitted here, by peer, common process and document type.\n# TYPE tereze_messages_total counter\n");
    for ([direction, peer, process, doc], n) in
        m.messages.lock().unwrap_or_else(|p| p.into_inner()).iter()
    {
        out.push_str(&format!(
            "tereze_messages_total{{direction=\"{direction}\",peer=\"{peer}\",process=\"{process}\",document_type=\"{doc}\"}} {n}\n"
        ));
    }
    out.push_str("# HELP tereze_deliver_seconds Round trip of Deliver calls to each peer (a batch, its receipts included).\n# TYPE tereze_deliver_seconds histogram\n");
    for (peer, h) in m
        .relay
        .deliver_seconds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        for (b, c) in tereze_relay::metrics::LATENCY_BOUNDS
            .iter()
            .zip(h.counts.iter())
        {
            out.push_str(&format!(
                "tereze_deliver_seconds_bucket{{peer=\"{peer}\",le=\"{b}\"}} {c}\n"
            ));
        }
        out.push_str(&format!(
            "tereze_deliver_seconds_bucket{{peer=\"{peer}\",le=\"+Inf\"}} {}\ntereze_deliver_seconds_sum{{peer=\"{peer}\"}} {}\ntereze_deliver_seconds_count{{peer=\"{peer}\"}} {}\n",
            h.count, h.sum, h.count
        ));
    }
    out.push_str("# HELP tereze_certificate_expiry_days Days until each certificate in use expires (negative: expired).\n# TYPE tereze_certificate_expiry_days gauge\n");
    for (name, days) in certificate_expiry(&node) {
        out.push_str(&format!(
            "tereze_certificate_expiry_days{{certificate=\"{name}\"}} {days}\n"
        ));
    }
    let store_bytes = std::fs::metadata(node.config.data_dir.join("node.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    out.push_str(&format!(
        "# HELP tereze_store_bytes Size of the embedded store file (0 on a PostgreSQL store).\n# TYPE tereze_store_bytes gauge\ntereze_store_bytes {store_bytes}\n# HELP tereze_disk_free_bytes Free space of the data directory's file system (last sample).\n# TYPE tereze_disk_free_bytes gauge\ntereze_disk_free_bytes {}\n",
        node.disk.free().unwrap_or(0)
    ));
    out.push_str(&format!(
        "# HELP tereze_disk_reserve_bytes Free space under which no new work is taken (limits.min_free_disk_mb).\n# TYPE tereze_disk_reserve_bytes gauge\ntereze_disk_reserve_bytes {}\n# HELP tereze_disk_floor_bytes Free space under which the node's own writes wait (half the reserve).\n# TYPE tereze_disk_floor_bytes gauge\ntereze_disk_floor_bytes {}\n# HELP tereze_disk_promised_bytes Bytes promised to uploads and transfers in flight, not yet written.\n# TYPE tereze_disk_promised_bytes gauge\ntereze_disk_promised_bytes {}\n# HELP tereze_disk_refusals_total Uploads and transfers refused or stopped for lack of space.\n# TYPE tereze_disk_refusals_total counter\ntereze_disk_refusals_total {}\n# HELP tereze_disk_writes_paused 1 while the store's writes wait for space (under the floor).\n# TYPE tereze_disk_writes_paused gauge\ntereze_disk_writes_paused {}\n# HELP tereze_uploads_collected_for_space_total Abandoned partial uploads removed early because the disk was under the reserve.\n# TYPE tereze_uploads_collected_for_space_total counter\ntereze_uploads_collected_for_space_total {}\n",
        node.disk.reserve(),
        node.disk.floor(),
        node.disk.promised(),
        node.disk.refusals(),
        u8::from(node.disk.writes_paused()),
        node.metrics.uploads_collected_for_space.load(std::sync::atomic::Ordering::Relaxed),
    ));
    let now = std::time::Instant::now();
    let gates = node.gates();
    out.push_str("# HELP tereze_peer_backoff_seconds Time left before the relay calls this peer again, after calls it did not take (0: it answers).\n# TYPE tereze_peer_backoff_seconds gauge\n");
    for (peer, g) in &gates {
        out.push_str(&format!(
            "tereze_peer_backoff_seconds{{peer=\"{peer}\"}} {:.3}\n",
            g.pause_left(now).as_secs_f64()
        ));
    }
    out.push_str("# HELP tereze_peer_calls_total Deliver and ReturnReceipts calls to each peer, by result (answered, failed: no connection, timeout or a status instead of outcomes).\n# TYPE tereze_peer_calls_total counter\n");
    for (peer, g) in &gates {
        out.push_str(&format!(
            "tereze_peer_calls_total{{peer=\"{peer}\",result=\"answered\"}} {}\ntereze_peer_calls_total{{peer=\"{peer}\",result=\"failed\"}} {}\n",
            g.answered_calls.load(Ordering::Relaxed),
            g.failed_calls.load(Ordering::Relaxed)
        ));
    }
    out.push_str("# HELP tereze_peer_queue_messages Messages queued per next hop.\n# TYPE tereze_peer_queue_messages gauge\n");
    for peer in node.store().peers_with_queue().unwrap_or_default() {
        let n = node.store().queued(&peer).unwrap_or(0);
        out.push_str(&format!(
            "tereze_peer_queue_messages{{peer=\"{peer}\"}} {n}\n"
        ));
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}
