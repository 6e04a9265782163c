//! HTTP/JSON for national systems without gRPC (the same operations as `Window`), health,
//! readiness and metrics (OpenMetrics text). Errors are JSON `{"error": "..."}` with 400 for bad
//! input, 413 for a body over the size limit, 404 for unknown messages, 429 when the queues
//! are full, 503 when the node cannot take work.

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
        .route("/v1/messages/{id}", get(get_message))
        .route("/v1/submissions/{id}", get(get_submission));
    let inbox = Router::new().route("/v1/inbox", get(get_inbox)).route(
        "/v1/messages/{id}/attachments/{attachment}",
        get(get_attachment),
    );
    let ack = Router::new().route("/v1/inbox/ack", post(post_ack));
    // Following messages (as Window.Subscribe does): the submitters' operation.
    let events = Router::new().route("/v1/events", get(super::events::get_events));
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
        .merge(guarded(Some(Operation::Submit), events))
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
    /// The document's XML text (empty when `body_attachment` names the body, or when
    /// `document_base64` holds it). Characters, so its XML declaration may name UTF-8 only.
    #[serde(default)]
    document: String,
    /// The document's bytes in base64, in any encoding the parser reads (windows-1251,
    /// UTF-16, …: docs/xml-security.md#encodings), instead of `document`.
    document_base64: Option<String>,
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
    let (document, document_is_text) = match &b.document_base64 {
        None => (b.document.into_bytes(), true),
        Some(_) if !b.document.is_empty() => {
            return error(
                StatusCode::BAD_REQUEST,
                "document, document_base64: give one of them, not both".to_owned(),
            )
        }
        Some(encoded) => {
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD.decode(encoded.trim()) {
                Ok(bytes) => (bytes, false),
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("document_base64: not base64: {e}"),
                    )
                }
            }
        }
    };
    let r = submit::submit_admitted(
        &node,
        Submission {
            format: b.format,
            document,
            document_is_text,
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
                "set_id": queued.first().and_then(|q| q.set_id).map(|s| format!("urn:uuid:{s}")),
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
    // The envelope signature's time-stamp evidence (docs/timestamps.md), obtained here or
    // received: base64 of its documented encoding.
    let evidence = node.store().evidence_of(uuid).ok().flatten().map(|e| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(e)
    });
    Json(json!({
        "message_id": format!("urn:uuid:{uuid}"),
        "history": history.iter().map(|t| json!({
            "state": t.state.as_str(), "at_ms": t.at, "note": t.note,
        })).collect::<Vec<Value>>(),
        "receipt": receipt.map(|r| String::from_utf8_lossy(&r).into_owned()),
        "evidence": evidence,
    }))
    .into_response()
}

/// A submission set's one decision (docs/protocol.md, "Submission sets").
async fn get_submission(State(node): Shared, Path(id): Path<String>) -> Response {
    let Some(set) = parse_id(&id) else {
        return error(StatusCode::BAD_REQUEST, format!("{id:?} is not a urn:uuid"));
    };
    match super::submission_sets::view(&node, set) {
        Ok(Some(v)) => Json(v.to_json()).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no submission set {id}")),
        Err(e) => answer::response(&e),
    }
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
            "messages": page.into_iter().map(|(_, m)| super::verdicts::current(&node, m)).map(|m| json!({
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
    let signing_days = node
        .signing
        .certificate()
        .map_or(i64::MIN, super::metrics::days_left);
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
            "timestamping": super::stamper::readiness(&node),
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

/// `/metrics`: the node's registry in the OpenMetrics text format.
async fn metrics(State(node): Shared) -> Response {
    match super::metrics::encode(&node) {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                super::metrics::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(std::fmt::Error) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded",
        ),
    }
}
