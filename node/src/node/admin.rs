//! The operators' admin API (issue 10, docs/operations.md): HTTPS with the node's TLS
//! certificate; every request but the OpenAPI document must carry the operator token
//! (`Authorization: Bearer …`), compared in constant time. The token file is refused at start
//! if it is readable by group or others, and the token is never logged.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::answer::{self, Malformed};
use super::Node;
use crate::store::{State as MessageState, StoreError};
use tereze_support::urn::parse_id;

#[derive(Clone)]
struct Shared {
    node: Arc<Node>,
    token: Arc<String>,
}

/// Lets through requests with the operator token; counts and logs the others (with the
/// source address, never the token given).
async fn authorised(
    State(s): State<Shared>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(super::national::bearer);
    if given.is_some_and(|t| super::national::same(t.as_bytes(), s.token.as_bytes())) {
        return next.run(req).await;
    }
    s.node.metrics.admin_refused.inc();
    let source = req
        .extensions()
        .get::<super::national::Connection>()
        .and_then(|c| c.source)
        .map_or_else(|| "-".to_owned(), |a| a.to_string());
    tracing::warn!(
        door = "admin",
        source = %source,
        reason = if given.is_some() { "wrong-token" } else { "no-credential" },
        call = %format!("{} {}", req.method(), req.uri().path()),
        "admin call refused"
    );
    match given {
        Some(_) => error(StatusCode::UNAUTHORIZED, "the operator token is wrong"),
        None => {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "operator credentials required: Authorization: Bearer <token>",
            );
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            r
        }
    }
}

use tereze_doors::response::error;

pub(crate) fn router(node: Arc<Node>, token: String) -> Router {
    let shared = Shared {
        node,
        token: Arc::new(token),
    };
    let protected = Router::new()
        .route("/admin/messages", get(search))
        .route("/admin/messages/{id}", get(timeline))
        .route("/admin/messages/{id}/requeue", post(requeue))
        .route("/admin/recognition/rerun", post(rerun))
        .route("/admin/traders/flush", post(flush_traders))
        .route("/admin/parked", get(parked))
        .route("/admin/quarantine", get(quarantine))
        .route("/admin/conformance", get(conformance))
        .route("/admin/conformance/purge", post(purge_conformance))
        .route("/admin/peers", get(peers))
        .route("/admin/versions", get(versions))
        .route("/admin/audit/verify", post(audit_verify))
        .route("/admin/log-level", get(log_level).put(set_log_level))
        .route("/admin/stats", get(stats))
        .route("/admin/stats.csv", get(stats_csv))
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            authorised,
        ));
    Router::new()
        .route("/admin/openapi.json", get(openapi))
        .route("/console/", get(console))
        .route(
            "/console",
            get(|| async { axum::response::Redirect::permanent("/console/") }),
        )
        .merge(protected)
        .with_state(shared)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    /// A message id (urn:uuid or bare) or its prefix.
    id: Option<String>,
    /// The current state (queued, delivered, dead, recognised, rejected…).
    state: Option<String>,
    /// The peer: next hop of an outgoing message, sender of an incoming one.
    peer: Option<String>,
    conversation: Option<String>,
    /// The common process (`P.CC.01`).
    process: Option<String>,
    /// First transition at or after / before these RFC 3339 times.
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

fn time_ms(s: &Option<String>, field: &'static str) -> Result<Option<i64>, Malformed> {
    match s {
        None => Ok(None),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| Some(d.timestamp_millis()))
            .map_err(|_| Malformed::new(field, t, "RFC 3339")),
    }
}

/// A period from optional RFC 3339 `since` and `until` (Unix ms).
fn period(
    since: &Option<String>,
    until: &Option<String>,
) -> Result<(Option<i64>, Option<i64>), Malformed> {
    Ok((time_ms(since, "since")?, time_ms(until, "until")?))
}

async fn search(State(s): State<Shared>, Query(q): Query<Search>) -> Response {
    let (since, until) = match period(&q.since, &q.until) {
        Ok(p) => p,
        Err(e) => return answer::response(&e),
    };
    let conversation = match &q.conversation {
        None => None,
        Some(c) => match parse_id(c) {
            Some(id) => Some(id),
            None => return answer::response(&Malformed::new("conversation", c, "a urn:uuid")),
        },
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let id_prefix = q.id.as_deref().map(|i| {
        i.strip_prefix("urn:uuid:")
            .unwrap_or(i)
            .to_ascii_lowercase()
    });
    let found = s.node.store().search(&crate::store::Filter {
        id_prefix,
        state: q.state.clone(),
        peer: q.peer.clone(),
        conversation,
        process: q.process.clone(),
        since,
        until,
        limit,
    });
    match found {
        Ok(list) => {
            let parked = list.iter().any(|m| matches!(m.state, "dead" | "expired"));
            let refused = if parked {
                requeue_refusals(&s.node)
            } else {
                Default::default()
            };
            Json(json!({
                "messages": list.iter().map(|m| json!({
                    "message_id": format!("urn:uuid:{}", m.message_id),
                    "state": m.state,
                    "first_at_ms": m.first_at,
                    "last_at_ms": m.last_at,
                    "direction": m.direction,
                    "peer": m.peer,
                    "conversation_id": m.conversation.map(|c| format!("urn:uuid:{c}")),
                    "process": m.process,
                    "document_type": m.document_type,
                    "requeue_refused": refused.get(&m.message_id),
                })).collect::<Vec<Value>>(),
            }))
            .into_response()
        }
        Err(e) => answer::response(&e),
    }
}

/// Why each parked message that cannot be requeued cannot (its signed expiry has passed), so
/// the console shows the reason instead of a button that would fail.
fn requeue_refusals(node: &Node) -> std::collections::HashMap<Uuid, String> {
    let now = tereze_support::clock::now_ms();
    match node.store().parked() {
        Ok(parked) => parked
            .iter()
            .filter_map(|e| {
                crate::store::requeue_refusal(e, now).map(|r| (e.message.message_id, r.to_string()))
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the parked messages");
            Default::default()
        }
    }
}

fn message_id(id: &str) -> Result<Uuid, Malformed> {
    parse_id(id).ok_or_else(|| Malformed::new("", id, "a urn:uuid"))
}

async fn timeline(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let uuid = match message_id(&id) {
        Ok(u) => u,
        Err(e) => return answer::response(&e),
    };
    let store = s.node.store();
    let history = match store.history(uuid) {
        Ok(h) if !h.is_empty() => h,
        Ok(_) => return error(StatusCode::NOT_FOUND, format!("no message {id}")),
        Err(e) => return answer::response(&e),
    };
    let meta = store.meta(uuid).ok().flatten();
    let receipt = store
        .receipt(uuid)
        .ok()
        .flatten()
        .map(|r| String::from_utf8_lossy(&r).into_owned());
    let verdict = history
        .iter()
        .rev()
        .find(|t| matches!(t.state, MessageState::Recognised | MessageState::Rejected))
        .map(|t| json!({"verdict": t.state.as_str(), "note": t.note}));
    let requeue_refused = history
        .last()
        .is_some_and(|t| matches!(t.state, MessageState::Dead | MessageState::Expired))
        .then(|| requeue_refusals(&s.node).remove(&uuid))
        .flatten();
    Json(json!({
        "message_id": format!("urn:uuid:{uuid}"),
        "direction": meta.as_ref().map(|m| m.direction.clone()),
        "peer": meta.as_ref().map(|m| m.peer.clone()),
        "conversation_id": meta.as_ref().and_then(|m| m.conversation).map(|c| format!("urn:uuid:{c}")),
        "process": meta.as_ref().and_then(|m| m.process.clone()),
        "document_type": meta.as_ref().and_then(|m| m.document_type.clone()),
        "timeline": history.iter().map(|t| json!({"state": t.state.as_str(), "at_ms": t.at, "note": t.note})).collect::<Vec<Value>>(),
        "verdict": verdict,
        "requeue_refused": requeue_refused,
        "receipt": receipt,
    }))
    .into_response()
}

async fn requeue(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let uuid = match message_id(&id) {
        Ok(u) => u,
        Err(e) => return answer::response(&e),
    };
    // A requeued message counts against limits.max_queue like a submitted one.
    let places = match s.node.outbox.reserve(1) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::TOO_MANY_REQUESTS, e),
    };
    match s.node.committer.run(move |t| t.requeue(uuid)).await {
        Ok(peer) => {
            places.commit(1);
            s.node.waker(&peer).notify_one();
            Json(json!({"message_id": format!("urn:uuid:{uuid}"), "requeued_to": peer}))
                .into_response()
        }
        Err(e) => answer::response(&e),
    }
}

/// Judges the quarantine again under the trust space in force and releases what is now
/// recognised to the inbox.
async fn rerun(State(s): State<Shared>) -> Response {
    match super::exchange::rejudge_quarantine(&s.node, OPERATOR).await {
        Ok((released, still)) => Json(json!({
            "recognised_now": released.iter().map(|u| format!("urn:uuid:{u}")).collect::<Vec<_>>(),
            "still_rejected": still,
            "trust_space_version": s.node.trust().version,
        }))
        .into_response(),
        Err(e) => answer::response(&e),
    }
}

/// How the audit log names an action taken with the operator token.
const OPERATOR: &str = "by the operator";

/// Rejected messages kept in quarantine, with their reasons.
async fn quarantine(State(s): State<Shared>) -> Response {
    match s.node.store().quarantined() {
        Ok(messages) => Json(json!({
            "messages": messages.iter().map(|m| json!({
                "message_id": format!("urn:uuid:{}", m.message_id),
                "sender": m.sender,
                "reasons": m.reasons,
            })).collect::<Vec<Value>>()
        }))
        .into_response(),
        Err(e) => answer::response(&e),
    }
}

/// Expired and dead messages, for an operator to requeue.
async fn parked(State(s): State<Shared>) -> Response {
    let now = tereze_support::clock::now_ms();
    match s.node.store().parked() {
        Ok(entries) => Json(json!({
            "messages": entries.iter().map(|e| json!({
                "message_id": format!("urn:uuid:{}", e.message.message_id),
                "conversation_id": format!("urn:uuid:{}", e.message.conversation_id),
                "peer": e.message.peer,
                "attempts": e.attempts,
                "last_error": e.last_error,
                "requeue_refused": crate::store::requeue_refusal(e, now).map(|r| r.to_string()),
            })).collect::<Vec<Value>>()
        }))
        .into_response(),
        Err(e) => answer::response(&e),
    }
}

/// The conformance area: messages from tester states (docs/conformance.md), kept out of the
/// national inbox and quarantine.
async fn conformance(State(s): State<Shared>) -> Response {
    let node = s.node.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let store = node.store();
        let mut out = Vec::new();
        for m in store.conformance()? {
            let received_at = store.history(m.message_id)?.first().map(|t| t.at);
            out.push(json!({
                "message_id": format!("urn:uuid:{}", m.message_id),
                "sender": m.sender,
                "verdict": m.verdict,
                "reasons": m.reasons,
                "received_at_ms": received_at,
            }));
        }
        Ok::<_, crate::store::StoreError>(out)
    })
    .await;
    match listed {
        Ok(Ok(messages)) => Json(json!({ "messages": messages })).into_response(),
        Ok(Err(e)) => answer::response(&e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// Purges the conformance area: every message held there leaves it with its envelope, and
/// each purge is a transition in the message's history and the audit chain. The receipts and
/// the deduplication memory stay.
async fn purge_conformance(State(s): State<Shared>) -> Response {
    let ids: Vec<Uuid> = match s.node.store().conformance() {
        Ok(list) => list.iter().map(|m| m.message_id).collect(),
        Err(e) => return answer::response(&e),
    };
    let purged = s
        .node
        .committer
        .run(move |t| {
            let mut purged = Vec::with_capacity(ids.len());
            for id in ids {
                let note = "conformance traffic purged by an operator (admin API)".to_owned();
                match t.purge_conformance(id, note) {
                    Ok(()) => purged.push(id),
                    // Purged meanwhile by another request or replica.
                    Err(crate::store::StoreError::NotConformance(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(purged)
        })
        .await;
    match purged {
        Ok(purged) => {
            tracing::info!(
                count = purged.len(),
                "conformance traffic purged by an operator"
            );
            Json(json!({
                "purged": purged.iter().map(|u| format!("urn:uuid:{u}")).collect::<Vec<_>>(),
            }))
            .into_response()
        }
        Err(e) => answer::response(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlushTraders {
    /// One trader of another state; none: every kept answer.
    id: Option<String>,
}

/// Forgets kept answers about other states' traders (one, or all), so the owner is asked
/// again: after its register was corrected, without waiting for the TTL.
async fn flush_traders(State(s): State<Shared>, Query(q): Query<FlushTraders>) -> Response {
    match s.node.flush_trader_answers(q.id.clone()).await {
        Ok(n) => Json(json!({"flushed": n, "id": q.id})).into_response(),
        Err(e) => answer::response(&e),
    }
}

async fn peers(State(s): State<Shared>) -> Response {
    let node = &s.node;
    let trust = node.trust();
    let mut out = Vec::new();
    for p in super::relay::probe_peers(node, Duration::from_secs(2)).await {
        let Some(st) = trust.state(&p.state) else {
            continue;
        };
        out.push(json!({
            "state": st.code,
            "role": format!("{:?}", st.role).to_lowercase(),
            "endpoint": st.nodes.first().map(|n| n.endpoint.clone()),
            "queued": node.store().queued(&st.code).unwrap_or(0),
            "reachable": p.answer.is_ok(),
            "error": p.answer.err(),
            "round_trip_ms": p.elapsed.as_millis() as u64,
        }));
    }
    Json(json!({ "peers": out })).into_response()
}

async fn versions(State(s): State<Shared>) -> Response {
    let trust = s.node.trust();
    let dirs = s.node.directories();
    Json(json!({
        "state": s.node.config.state,
        "version": env!("CARGO_PKG_VERSION"),
        "trust_space": {"version": trust.version, "issued_at": trust.issued_at, "signed_by": trust.signer},
        "directories": dirs.ids().filter_map(|id| dirs.get(id)).map(|d| json!({"id": d.id, "version": d.version, "owner": d.owner, "entries": d.entries.len()})).collect::<Vec<Value>>(),
    }))
    .into_response()
}

async fn audit_verify(State(s): State<Shared>) -> Response {
    let node = s.node.clone();
    let report = tokio::task::spawn_blocking(move || node.store().verify_audit()).await;
    match report {
        Ok(Ok(r)) => Json(json!({
            "intact": r.problems.is_empty(),
            "entries": r.entries,
            "checkpoints": r.checkpoints,
            "after_last_checkpoint": r.unsigned_tail,
            "signers": r.signers,
            "problems": r.problems,
        }))
        .into_response(),
        Ok(Err(e)) => answer::response(&e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// The web console: one self-contained page that calls this API with the operator's token.
async fn console() -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:",
            ),
        ],
        include_str!("console.html"),
    )
        .into_response()
}

/// The effectiveness indicators of the seeds: per peer, how many documents went out, how many
/// were exchanged electronically to the end (a receipt came back), and the time from
/// submission to the receiving state's verdict (median, p95); rejections by reason.
#[derive(Debug, Clone, serde::Serialize)]
struct PeerStats {
    peer: String,
    process: String,
    messages: u64,
    recognised: u64,
    rejected: u64,
    in_flight: u64,
    dead_or_expired: u64,
    median_ms: Option<i64>,
    p95_ms: Option<i64>,
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn compute_stats(node: &Node, since: Option<i64>, until: Option<i64>) -> Result<Value, StoreError> {
    let found = node.store().search(&crate::store::Filter {
        since,
        until,
        limit: usize::MAX,
        ..Default::default()
    })?;
    let mut peers: std::collections::BTreeMap<(String, String), (PeerStats, Vec<i64>)> =
        Default::default();
    let (mut outgoing, mut electronic, mut incoming) = (0u64, 0u64, 0u64);
    for m in &found {
        if m.direction.as_deref() != Some("out") {
            incoming += 1;
            continue;
        }
        outgoing += 1;
        let peer = m.peer.clone().unwrap_or_default();
        let process = m.process.clone().unwrap_or_default();
        let (st, times) = peers
            .entry((peer.clone(), process.clone()))
            .or_insert_with(|| {
                (
                    PeerStats {
                        peer,
                        process,
                        messages: 0,
                        recognised: 0,
                        rejected: 0,
                        in_flight: 0,
                        dead_or_expired: 0,
                        median_ms: None,
                        p95_ms: None,
                    },
                    Vec::new(),
                )
            });
        st.messages += 1;
        match m.state {
            "recognised" => {
                st.recognised += 1;
                electronic += 1;
                times.push(m.last_at - m.first_at);
            }
            "rejected" => {
                st.rejected += 1;
                electronic += 1;
                times.push(m.last_at - m.first_at);
            }
            "dead" | "expired" => st.dead_or_expired += 1,
            _ => st.in_flight += 1,
        }
    }
    let per_peer: Vec<PeerStats> = peers
        .into_values()
        .map(|(mut st, mut times)| {
            times.sort_unstable();
            st.median_ms = percentile(&times, 0.5);
            st.p95_ms = percentile(&times, 0.95);
            st
        })
        .collect();
    let mut rejections = node.metrics.rejections();
    if rejections.is_empty() {
        for q in node.store().quarantined()? {
            for r in q.reasons {
                *rejections.entry(r).or_default() += 1;
            }
        }
    }
    Ok(json!({
        "outgoing": outgoing,
        "incoming": incoming,
        "exchanged_electronically": electronic,
        "electronic_share": if outgoing == 0 { Value::Null } else { json!(electronic as f64 / outgoing as f64) },
        "per_peer": per_peer,
        "rejections_by_reason": rejections,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Period {
    since: Option<String>,
    until: Option<String>,
}

async fn stats(State(s): State<Shared>, Query(q): Query<Period>) -> Response {
    let (since, until) = match period(&q.since, &q.until) {
        Ok(p) => p,
        Err(e) => return answer::response(&e),
    };
    match compute_stats(&s.node, since, until) {
        Ok(v) => Json(v).into_response(),
        Err(e) => answer::response(&e),
    }
}

/// The same per peer as CSV ("reports at the press of a button").
async fn stats_csv(State(s): State<Shared>, Query(q): Query<Period>) -> Response {
    let (since, until) = match period(&q.since, &q.until) {
        Ok(p) => p,
        Err(e) => return answer::response(&e),
    };
    let v = match compute_stats(&s.node, since, until) {
        Ok(v) => v,
        Err(e) => return answer::response(&e),
    };
    let mut csv = String::from(
        "peer,process,messages,recognised,rejected,in_flight,dead_or_expired,median_ms,p95_ms\n",
    );
    for p in v["per_peer"].as_array().into_iter().flatten() {
        let f = |k: &str| match &p[k] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            f("peer"),
            f("process"),
            f("messages"),
            f("recognised"),
            f("rejected"),
            f("in_flight"),
            f("dead_or_expired"),
            f("median_ms"),
            f("p95_ms")
        ));
    }
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"tereze-stats.csv\"",
            ),
        ],
        csv,
    )
        .into_response()
}

async fn log_level() -> Response {
    Json(json!({ "filter": crate::logging::filter() })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogLevel {
    /// `tracing` EnvFilter syntax: `debug`, `info,tereze_node::node::relay=debug`…
    filter: String,
}

async fn set_log_level(
    body: Result<Json<LogLevel>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(b) = match body {
        Ok(b) => b,
        Err(e) => return tereze_doors::response::bad_body(e),
    };
    match crate::logging::set_filter(&b.filter) {
        Ok(()) => {
            tracing::info!(filter = %b.filter, "log filter changed by an operator");
            Json(json!({ "filter": b.filter })).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

/// The OpenAPI 3.0 description of this API.
async fn openapi() -> Response {
    let bearer = json!([{"operator": []}]);
    let id_param = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "urn:uuid:… or a bare UUID"});
    let ok = |what: &str| json!({"200": {"description": what, "content": {"application/json": {}}}, "401": {"description": "no or wrong operator token"}});
    let mut requeue_responses = ok("requeued");
    requeue_responses["404"] =
        json!({"description": "the message is not parked (dead or expired)"});
    requeue_responses["409"] = json!({"description": "the envelope's signed ExpiresAt has passed: the receiver would reject it; submit the document again"});
    requeue_responses["429"] = json!({"description": "the outbox is at limits.max_queue"});
    Json(json!({
        "openapi": "3.0.3",
        "info": {"title": "Tereze node admin API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Operators' API of a Tereze node (docs/operations.md). HTTPS; every call but this document needs the operator token."},
        "components": {"securitySchemes": {"operator": {"type": "http", "scheme": "bearer", "description": "The token in the node's admin.token_file"}}},
        "security": bearer,
        "paths": {
            "/admin/messages": {"get": {"summary": "Search messages", "parameters": [
                {"name": "id", "in": "query", "schema": {"type": "string"}, "description": "id or its prefix"},
                {"name": "state", "in": "query", "schema": {"type": "string"}},
                {"name": "peer", "in": "query", "schema": {"type": "string"}},
                {"name": "conversation", "in": "query", "schema": {"type": "string"}},
                {"name": "process", "in": "query", "schema": {"type": "string"}, "description": "common process, e.g. P.CC.01"},
                {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                "responses": ok("matching messages, newest first")}},
            "/admin/messages/{id}": {"get": {"summary": "A message's timeline, receipt and recognition verdict", "parameters": [id_param], "responses": ok("the timeline")}},
            "/admin/messages/{id}/requeue": {"post": {"summary": "Requeue a dead or expired message whose signed expiry has not passed", "parameters": [id_param], "responses": requeue_responses}},
            "/admin/recognition/rerun": {"post": {"summary": "Run recognition again on the quarantine under the trust space in force", "responses": ok("what is recognised now")}},
            "/admin/conformance": {"get": {"summary": "Messages from tester states (conformance = true in the trust space), kept out of the national inbox and quarantine", "responses": ok("the messages held, oldest first")}},
            "/admin/conformance/purge": {"post": {"summary": "Purge the conformance area: envelopes dropped, each purge recorded in the audit chain; receipts and deduplication kept", "responses": ok("the ids purged")}},
            "/admin/traders/flush": {"post": {"summary": "Forget kept answers about other states' traders (all, or one), so the owner state's node is asked again; then re-run recognition for the quarantine", "parameters": [
                {"name": "id", "in": "query", "schema": {"type": "string"}, "description": "a trader identifier (e.g. KZ990340000450); none: every kept answer"}],
                "responses": {"200": {"description": "how many answers were forgotten: {\"flushed\": n, \"id\"}", "content": {"application/json": {}}}, "400": {"description": "not a valid trader identifier"}, "401": {"description": "no or wrong operator token"}}}},
            "/admin/peers": {"get": {"summary": "Peers' health: queue depth and a live probe", "responses": ok("peers")}},
            "/admin/versions": {"get": {"summary": "Node, trust-space and reference-directory versions", "responses": ok("versions")}},
            "/admin/audit/verify": {"post": {"summary": "Verify the audit chain", "responses": ok("the audit report")}},
            "/admin/stats": {"get": {"summary": "Effectiveness indicators: per peer and common process messages, share exchanged electronically, time from submission to verdict (median, p95); rejections by reason", "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}}], "responses": ok("the indicators")}},
            "/admin/stats.csv": {"get": {"summary": "The per-peer indicators as CSV", "responses": {"200": {"description": "CSV", "content": {"text/csv": {}}}, "401": {"description": "no or wrong operator token"}}}},
            "/admin/log-level": {
                "get": {"summary": "The log filter in force", "responses": ok("the filter")},
                "put": {"summary": "Change the log filter while running (EnvFilter syntax)",
                        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["filter"], "properties": {"filter": {"type": "string"}}}}}},
                        "responses": ok("the filter now in force")}},
        }
    }))
    .into_response()
}
