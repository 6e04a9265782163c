//! The event log's readers on the node (docs/notifications.md): `GET /v1/events` (a long
//! poll from a cursor), the events' JSON, and the compaction that keeps the log within
//! `[notifications]`'s retention. A reader resumes after the last sequence number it saw and
//! misses nothing: events are numbered in the transaction of their change
//! ([`crate::store::events`]); waiting readers wake at the commit that adds events (and look
//! again every second, for events another replica of a PostgreSQL store wrote).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::answer::{self, Malformed};
use super::Node;
use crate::class::Classify;
use crate::store::{Event, EventPage, StoreError};

/// Most events in one answer.
const MAX_LIMIT: usize = 1_000;
/// Events in an answer when the request names no limit.
const DEFAULT_LIMIT: usize = 100;
/// The longest long poll (`wait`), under the doors' idle timeouts' defaults.
pub(crate) const MAX_WAIT_SECONDS: u64 = 60;
/// How often a waiting reader looks at the log again without a local commit: events another
/// replica of a PostgreSQL store wrote are seen within it.
const RECHECK: Duration = Duration::from_secs(1);

/// An event as readers receive it (HTTP, webhooks): `message_id` as a `urn:uuid`, time also
/// as RFC 3339.
pub(crate) fn event_json(e: &Event) -> Value {
    let mut v = json!({
        "seq": e.seq,
        "at_ms": e.at,
        "at": rfc3339(e.at),
        "kind": e.kind,
        "subject": e.subject,
    });
    if let Some(id) = e.message_id {
        v["message_id"] = json!(format!("urn:uuid:{id}"));
    }
    if let Some(s) = &e.state {
        v["state"] = json!(s);
    }
    if let Some(n) = &e.note {
        v["note"] = json!(n);
    }
    if let Some(b) = &e.body {
        v["body"] = b.clone();
    }
    v
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Reads up to `limit` events after `after`, waiting up to `wait` for the first one when
/// there is none yet. An empty page means the wait ended with nothing new.
pub(crate) async fn read_after(
    node: &Node,
    after: u64,
    limit: usize,
    wait: Duration,
) -> Result<EventPage, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut newest = node.committer.newest_event();
    loop {
        // Marked seen before the read, so a commit between the read and the wait wakes it.
        newest.borrow_and_update();
        let page = node.store().events(after, limit)?;
        let now = tokio::time::Instant::now();
        if !page.events.is_empty() || now >= deadline {
            return Ok(page);
        }
        let until = deadline.min(now + RECHECK);
        tokio::select! {
            _ = node.shutdown.cancelled() => return Ok(page),
            _ = newest.changed() => {}
            _ = tokio::time::sleep_until(until) => {}
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    after: Option<String>,
    limit: Option<String>,
    wait: Option<String>,
}

fn number(
    q: &Option<String>,
    field: &'static str,
    wanted: &'static str,
) -> Result<Option<u64>, Malformed> {
    q.as_deref()
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| Malformed::new(field, s, wanted))
        })
        .transpose()
}

/// `GET /v1/events?after=N&limit=M&wait=S`: the events after `N` (0, or omitted: from the
/// first kept), at most `M`; with none yet, waits up to `S` seconds for the next. `next` is
/// the cursor to send next time.
pub(crate) async fn get_events(
    State(node): State<Arc<Node>>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let parsed = (|| {
        Ok::<_, Malformed>((
            number(&q.after, "after", "a sequence number (0 or more)")?.unwrap_or(0),
            number(&q.limit, "limit", "a count from 1 to 1000")?,
            number(&q.wait, "wait", "seconds from 0 to 60")?.unwrap_or(0),
        ))
    })();
    let (after, limit, wait) = match parsed {
        Ok(p) => p,
        Err(e) => return answer::response(&e),
    };
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => n as usize,
        Some(n) => {
            return answer::response(&Malformed::new(
                "limit",
                &n.to_string(),
                "a count from 1 to 1000",
            ))
        }
    };
    if wait > MAX_WAIT_SECONDS {
        return answer::response(&Malformed::new(
            "wait",
            &wait.to_string(),
            "seconds from 0 to 60",
        ));
    }
    match read_after(&node, after, limit, Duration::from_secs(wait)).await {
        Ok(page) => {
            let next = page.events.last().map_or(after, |e| e.seq);
            Json(json!({
                "events": page.events.iter().map(event_json).collect::<Vec<Value>>(),
                "next": next,
                "newest": page.newest,
            }))
            .into_response()
        }
        Err(e) => cursor_refused(&e),
    }
}

/// The answer to a refused read: the usual JSON error, plus the bound a cursor must respect
/// (`oldest` kept, or `newest` written) so a client can resume without parsing the text.
fn cursor_refused(e: &StoreError) -> Response {
    let status = answer::http_status(e.class());
    let mut body = json!({ "error": e.to_string() });
    match e {
        StoreError::EventsGone { oldest, .. } => body["oldest"] = json!(oldest),
        StoreError::EventsAhead { newest, .. } => body["newest"] = json!(newest),
        _ => return answer::response(e),
    }
    (status, Json(body)).into_response()
}

/// Compacts the event log every `notifications.compact_seconds` (and once at start), until
/// the shutdown.
pub(crate) async fn compact(node: Arc<Node>) {
    let n = &node.config.notifications;
    let retention = n.retention();
    let every = Duration::from_secs(n.compact_seconds);
    loop {
        // Safe to redo (a lost compaction is done again), so not waited on to be durable.
        match node
            .committer
            .run_lazily(move |t| t.compact_events(&retention))
            .await
        {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "event log compacted"),
            Err(e) => tracing::warn!(error = %e, "event log compaction failed; tried again later"),
        }
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn an_event_reads_as_json_with_its_message_as_a_urn() {
        let id = uuid::Uuid::from_u128(7);
        let v = event_json(&Event {
            seq: 3,
            at: 1_700_000_000_123,
            kind: "message".into(),
            subject: id.to_string(),
            message_id: Some(id),
            state: Some("recognised".into()),
            note: None,
            body: None,
        });
        assert_eq!(v["seq"], 3);
        assert_eq!(v["message_id"], format!("urn:uuid:{id}"));
        assert_eq!(v["at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["state"], "recognised");
        assert!(v.get("note").is_none() && v.get("body").is_none(), "{v}");
    }

    #[test]
    fn a_compacted_cursor_is_told_the_oldest_kept() {
        let r = cursor_refused(&StoreError::EventsGone {
            after: 2,
            oldest: 9,
        });
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    }
}
