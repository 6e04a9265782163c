//! The event log's records (docs/notifications.md): what the national system reads from a
//! cursor, over HTTP, gRPC and webhooks. Every event is written in the same transaction as the
//! change it reports ([`super::Txn::event`]) and numbered there: sequence numbers start at 1,
//! only grow and have no gaps, so a reader that resumes after the last number it saw misses
//! nothing and sees nothing twice. Compaction drops the oldest events, never the newest one,
//! so a reader can always tell "nothing new" from "your cursor was dropped" ([`EventPage`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::records::StoreError;

/// A message changed state (its `state` and `note` say how): written for every transition
/// recorded in a message's history.
pub const MESSAGE: &str = "message";
/// A record of this state's trader register was written (`subject`: the record's key;
/// `note`: which trader and who).
pub const REGISTER: &str = "register";
/// A reference change set was put in force (`subject`: `DIRECTORY/NUMBER`).
pub const CHANGE_SET: &str = "change-set";
/// A signed trust space was applied (`subject`: its version).
pub const TRUST_SPACE: &str = "trust-space";

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its place in the log: 1 for the first, one more for each next.
    pub seq: u64,
    /// When the transaction that wrote it ran (Unix milliseconds).
    pub at: i64,
    /// What happened: [`MESSAGE`], [`CHANGE_SET`], [`TRUST_SPACE`] or a kind another part
    /// of the node adds through [`super::Txn::event`].
    pub kind: String,
    /// What it happened to: a message id (hyphenated), `DIRECTORY/NUMBER`, a version.
    pub subject: String,
    /// The message, for [`MESSAGE`] events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    /// The message's new state (`recognised`, `delivered`, …), for [`MESSAGE`] events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Who or what caused it, in words (the history's note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Anything else the kind carries (JSON), for kinds added with [`super::Txn::event`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// Events read after a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// In sequence order, consecutive, the first one the cursor's next.
    pub events: Vec<Event>,
    /// The newest sequence number written (0: none yet).
    pub newest: u64,
}

/// How much of the log is kept (`[notifications]` in node.toml): events older than
/// `max_age_ms` or beyond the newest `max_events` are dropped; the newest is always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age_ms: i64,
    pub max_events: u64,
}

/// The first sequence number to drop nothing before, under `r` at `now`, for a log whose
/// newest event is `newest`: events numbered below it may go by count (the age test is the
/// engine's, as it reads the times).
pub fn keep_from_by_count(r: &Retention, newest: u64) -> u64 {
    newest.saturating_sub(r.max_events.max(1)) + 1
}

/// Checks a page read after `after` against the log's bounds: a cursor past the newest
/// event is refused ([`StoreError::EventsAhead`]), and one whose next events were compacted
/// away is told which is the oldest kept ([`StoreError::EventsGone`]).
pub fn check_page(after: u64, page: EventPage) -> Result<EventPage, StoreError> {
    if after > page.newest {
        return Err(StoreError::EventsAhead {
            after,
            newest: page.newest,
        });
    }
    match page.events.first() {
        // Numbers have no gaps and the newest is never dropped: a first event further on
        // means the ones between were compacted.
        Some(first) if first.seq > after + 1 => Err(StoreError::EventsGone {
            after,
            oldest: first.seq,
        }),
        _ => Ok(page),
    }
}
