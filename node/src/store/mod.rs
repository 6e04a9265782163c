//! The node's durable store (DESIGN §2, §8): the outbox of messages waiting for their next hop,
//! the inbox of received messages waiting for the national system, the deduplication memory,
//! each message's state history, receipts and the audit chain. Every change is made inside a
//! [`Txn`] and is durable when the commit returns (redb with `Durability::Immediate`: one
//! `fdatasync`), so a caller acknowledges upstream only after that; [`committer::Committer`]
//! puts the changes of many concurrent callers into one commit (group commit).
//! The engine choice is docs/decisions/0004-embedded-store.md; [`Store`] is one of two engines
//! behind one interface: the embedded redb file (the default, one replica) or PostgreSQL
//! (several replicas of one node sharing it: docs/decisions/0007-postgresql-store.md).

pub(crate) mod audit;
pub(crate) mod committer;
pub(crate) mod pg_store;
pub(crate) mod records;
pub(crate) mod redb_store;
#[cfg(test)]
mod suite;

use uuid::Uuid;

pub(crate) use pg_store::{read_password_file, PgOptions, PgStore};
pub(crate) use records::*;
pub(crate) use redb_store::{AuditFileError, RedbStore};

/// The node's store: one engine behind one interface (DESIGN §8).
pub(crate) enum Store {
    Redb(RedbStore),
    Postgres(Box<PgStore>),
}

/// One write transaction of either engine: its changes become durable together at commit.
/// One lives on the committer's stack per group commit, so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Txn<'a> {
    Redb(redb_store::RedbTxn<'a>),
    Postgres(pg_store::PgTxn<'a>),
}

/// Calls the same method on whichever engine `$on` holds.
macro_rules! both {
    ($on:expr, $x:ident => $call:expr) => {
        match $on {
            Store::Redb($x) => $call,
            Store::Postgres($x) => $call,
        }
    };
}

macro_rules! both_txn {
    ($on:expr, $x:ident => $call:expr) => {
        match $on {
            Txn::Redb($x) => $call,
            Txn::Postgres($x) => $call,
        }
    };
}

/// Where the store lives, from the configuration's `store` (a PostgreSQL URL) or the data
/// directory's `node.redb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    File(std::path::PathBuf),
    Postgres(pg_store::PgOptions),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Postgres(o) => write!(f, "{}", o.redacted()),
        }
    }
}

/// The embedded store's page cache unless configured (`limits.store_cache_mb`): 16 MiB
/// carried as many messages per second as 64 MiB under `tereze bench`, and a node holds
/// 60 MB less after load (docs/reliability.md, "Overload").
pub(crate) const DEFAULT_CACHE_BYTES: usize = 16 << 20;

impl Store {
    /// Opens (or creates) the store; a PostgreSQL database gets its schema migrated first.
    pub(crate) fn open(at: &Location) -> Result<Self, StoreError> {
        Self::open_with_cache(at, DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open`] with the embedded store's page cache bounded to `cache_bytes`.
    pub(crate) fn open_with_cache(at: &Location, cache_bytes: usize) -> Result<Self, StoreError> {
        match at {
            Location::File(p) => RedbStore::open_with_cache(p, cache_bytes).map(Self::Redb),
            Location::Postgres(o) => PgStore::open(o).map(|s| Self::Postgres(Box::new(s))),
        }
    }

    /// Runs `f` in one write transaction and commits it durably if `f` succeeds; returns its
    /// result and the state changes it made.
    #[cfg(test)]
    pub(crate) fn write<R>(
        &self,
        now: i64,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Vec<Change>), StoreError> {
        self.write_with(true, now, f)
    }

    /// [`write`](Self::write), durable on return or not (a lazy commit, made durable by the
    /// next durable one); only for changes that are safe to redo.
    pub(crate) fn write_with<R>(
        &self,
        durable: bool,
        now: i64,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Vec<Change>), StoreError> {
        both!(self, s => s.write_with(durable, now, f))
    }

    /// Up to `limit` messages for `peer` that may be sent at `now`, in enqueue order, within
    /// `max_bytes` (a message over it alone goes alone). A message waiting for its retry, in
    /// flight (`skip`) or, on PostgreSQL, claimed by another replica holds back the later
    /// messages of its conversation. On PostgreSQL the messages returned are claimed (leased)
    /// for this replica.
    pub(crate) fn due(
        &self,
        peer: &str,
        now: i64,
        limit: usize,
        max_bytes: usize,
        skip: &std::collections::HashSet<Uuid>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        both!(self, s => s.due(peer, now, limit, max_bytes, skip))
    }

    pub(crate) fn queued(&self, peer: &str) -> Result<u64, StoreError> {
        both!(self, s => s.queued(peer))
    }

    pub(crate) fn outbox_len(&self) -> Result<u64, StoreError> {
        both!(self, s => s.outbox_len())
    }

    pub(crate) fn peers_with_queue(&self) -> Result<Vec<String>, StoreError> {
        both!(self, s => s.peers_with_queue())
    }

    /// Up to `limit` inbox messages after the position `after` (from the oldest when `None`),
    /// oldest first, each with its position. Positions only grow (a message released from
    /// quarantine takes a new one), so a reader that resumes after the last position it saw
    /// misses nothing and sees nothing twice, without acknowledging.
    pub(crate) fn inbox_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Incoming)>, StoreError> {
        both!(self, s => s.inbox_after(after, limit))
    }

    /// Up to `limit` inbox messages, oldest first.
    #[cfg(test)]
    pub(crate) fn inbox(&self, limit: usize) -> Result<Vec<Incoming>, StoreError> {
        Ok(self
            .inbox_after(None, limit)?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }

    pub(crate) fn quarantined(&self) -> Result<Vec<Incoming>, StoreError> {
        both!(self, s => s.quarantined())
    }

    /// Every message held in the conformance area (from a tester state, docs/conformance.md),
    /// in arrival order, without its envelope.
    pub(crate) fn conformance(&self) -> Result<Vec<Incoming>, StoreError> {
        both!(self, s => s.conformance())
    }

    pub(crate) fn inbox_len(&self) -> Result<u64, StoreError> {
        both!(self, s => s.inbox_len())
    }

    /// Whether the message waits in the inbox (not yet taken by the national system).
    pub(crate) fn in_inbox(&self, id: Uuid) -> Result<bool, StoreError> {
        both!(self, s => s.in_inbox(id))
    }

    #[cfg(test)]
    pub(crate) fn received_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        both!(self, s => s.received_ids())
    }

    pub(crate) fn history(&self, id: Uuid) -> Result<Vec<Transition>, StoreError> {
        both!(self, s => s.history(id))
    }

    pub(crate) fn receipt(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        both!(self, s => s.receipt(id))
    }

    pub(crate) fn awaited(&self, id: Uuid) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        both!(self, s => s.awaited(id))
    }

    pub(crate) fn fetched_crls(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        both!(self, s => s.fetched_crls())
    }

    pub(crate) fn latest_trust_space(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        both!(self, s => s.latest_trust_space())
    }

    pub(crate) fn meta(&self, id: Uuid) -> Result<Option<Meta>, StoreError> {
        both!(self, s => s.meta(id))
    }

    pub(crate) fn search(&self, f: &Filter) -> Result<Vec<Found>, StoreError> {
        both!(self, s => s.search(f))
    }

    /// A record of this state's trader register, as [`Txn::put_traders`] got it.
    pub(crate) fn trader(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        both!(self, s => s.trader(id))
    }

    pub(crate) fn trader_count(&self) -> Result<u64, StoreError> {
        both!(self, s => s.trader_count())
    }

    pub(crate) fn trader_answer(&self, id: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        both!(self, s => s.trader_answer(id))
    }

    pub(crate) fn change_sets_of(
        &self,
        directory: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        both!(self, s => s.change_sets_of(directory, since, limit))
    }

    pub(crate) fn change_sets_after(
        &self,
        have: &std::collections::HashMap<String, u64>,
        limit: usize,
    ) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        both!(self, s => s.change_sets_after(have, limit))
    }

    pub(crate) fn awaiting_len(&self) -> Result<u64, StoreError> {
        both!(self, s => s.awaiting_len())
    }

    pub(crate) fn parked(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        both!(self, s => s.parked())
    }

    /// Verifies the audit chain, its checkpoints and the histories (one consistent snapshot).
    pub(crate) fn verify_audit(&self) -> Result<audit::AuditReport, StoreError> {
        match self {
            Self::Redb(s) => audit::verify(s.database()),
            Self::Postgres(s) => s.verify_audit(),
        }
    }

    /// Peers whose queues another replica added to (PostgreSQL `NOTIFY`); `None` for the
    /// embedded store, which has no other writer.
    pub(crate) fn wake_ups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        match self {
            Self::Redb(_) => None,
            Self::Postgres(s) => Some(s.wake_ups()),
        }
    }

    /// `redb` or `postgresql`, for logs and metrics.
    pub(crate) fn engine_name(&self) -> &'static str {
        match self {
            Self::Redb(_) => "redb",
            Self::Postgres(_) => "postgresql",
        }
    }
}

/// Verifies the audit chain of an embedded store file (`node.redb`) that no node has open:
/// `tereze audit verify DATA_DIR` after the node stopped.
pub(crate) fn verify_audit_file(
    path: &std::path::Path,
) -> Result<audit::AuditReport, AuditFileError> {
    let db = redb::Database::open(path).map_err(AuditFileError::Open)?;
    Ok(audit::verify(&db)?)
}

impl Txn<'_> {
    /// The transaction's clock (Unix milliseconds).
    pub(crate) fn now(&self) -> i64 {
        both_txn!(self, t => t.now())
    }

    /// Queues messages for their peers; all or none. `before` are transitions recorded first
    /// (received, translated, signed) for every message.
    pub(crate) fn enqueue(
        &mut self,
        batch: &[Outgoing],
        before: &[(State, Option<String>)],
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.enqueue(batch, before))
    }

    /// Records a failed attempt and when to try again; returns the attempts so far.
    pub(crate) fn failed_attempt(
        &mut self,
        id: Uuid,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<u32, StoreError> {
        both_txn!(self, t => t.failed_attempt(id, error, next_attempt_at))
    }

    /// The final recipient acknowledged the message with `receipt` (its verdict is `verdict`):
    /// it leaves the outbox, or stops being awaited when it went through a hub.
    pub(crate) fn delivered(
        &mut self,
        id: Uuid,
        receipt: &[u8],
        verdict: State,
        note: Option<String>,
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.delivered(id, receipt, verdict, note))
    }

    /// A hub took the message for forwarding: it leaves the outbox and its end receipt is
    /// awaited.
    pub(crate) fn forwarded(
        &mut self,
        id: Uuid,
        recipient: &str,
        hub_receipt: &[u8],
        note: String,
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.forwarded(id, recipient, hub_receipt, note))
    }

    /// Takes a message out of the outbox as `Expired` or `Dead`, keeping it for a requeue.
    pub(crate) fn park(&mut self, id: Uuid, state: State, note: &str) -> Result<(), StoreError> {
        both_txn!(self, t => t.park(id, state, note))
    }

    /// An operator's requeue of a parked message; returns its peer. Refused
    /// ([`StoreError::SignedExpiryPassed`]) once the envelope's signed `ExpiresAt` has passed.
    pub(crate) fn requeue(&mut self, id: Uuid) -> Result<String, StoreError> {
        both_txn!(self, t => t.requeue(id))
    }

    /// Stores a received message once (see [`Accepted`]).
    pub(crate) fn accept(
        &mut self,
        m: &Incoming,
        forward: Option<&Outgoing>,
    ) -> Result<Accepted, StoreError> {
        both_txn!(self, t => t.accept(m, forward))
    }

    /// A quarantined message found acceptable on a second look moves to the inbox.
    pub(crate) fn release_from_quarantine(
        &mut self,
        id: Uuid,
        note: String,
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.release_from_quarantine(id, note))
    }

    /// An operator's purge of a message held in the conformance area: it leaves the area, its
    /// envelope is dropped, and the purge is recorded in its history and the audit chain. The
    /// deduplication memory and the receipt stay, so a redelivery still gets its first
    /// receipt and is not stored again.
    pub(crate) fn purge_conformance(&mut self, id: Uuid, note: String) -> Result<(), StoreError> {
        both_txn!(self, t => t.purge_conformance(id, note))
    }

    /// Keeps the CRL set accepted from `url` (replacing the one held).
    pub(crate) fn record_crls(&mut self, url: &str, bytes: &[u8]) -> Result<(), StoreError> {
        both_txn!(self, t => t.record_crls(url, bytes))
    }

    /// Keeps a signed trust space that is about to be applied.
    pub(crate) fn record_trust_space(
        &mut self,
        version: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.record_trust_space(version, bytes))
    }

    /// Forgets the kept answers about another state's trader `id`, or about all of them
    /// (`None`), so that the next resolution asks the owner again: how many were forgotten.
    pub(crate) fn forget_trader_answers(&mut self, id: Option<&str>) -> Result<u64, StoreError> {
        both_txn!(self, t => t.forget_trader_answers(id))
    }

    /// Adds or replaces records of this state's trader register (all or none): (trader id,
    /// record) pairs, each record as the caller encodes it.
    pub(crate) fn put_traders(&mut self, records: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        both_txn!(self, t => t.put_traders(records))
    }

    /// Keeps a verified answer of another state's node about one of its traders.
    pub(crate) fn record_trader_answer(
        &mut self,
        id: &str,
        at_ms: i64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.record_trader_answer(id, at_ms, bytes))
    }

    /// Adds a message's common process and document type to its index row.
    pub(crate) fn describe(
        &mut self,
        id: Uuid,
        process: &str,
        document_type: &str,
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.describe(id, process, document_type))
    }

    /// Keeps a verified change set that is about to be put in force.
    pub(crate) fn record_change_set(
        &mut self,
        directory: &str,
        number: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.record_change_set(directory, number, bytes))
    }

    /// The national system has taken the message: it leaves the inbox.
    pub(crate) fn ack_inbox(&mut self, id: Uuid) -> Result<(), StoreError> {
        both_txn!(self, t => t.ack_inbox(id))
    }

    /// Records a transition of `id` in its history and the audit log (who did what: the note).
    pub(crate) fn note(&mut self, id: Uuid, state: State, note: String) -> Result<(), StoreError> {
        both_txn!(self, t => t.record(id, state, Some(note)))
    }

    /// Signs an audit checkpoint over the chain's head, unless the last one covers it; the
    /// number of entries covered.
    pub(crate) fn audit_checkpoint(
        &mut self,
        key: &openssl::pkey::PKey<openssl::pkey::Private>,
        certificate: &openssl::x509::X509,
    ) -> Result<Option<u64>, StoreError> {
        both_txn!(self, t => t.audit_checkpoint(key, certificate))
    }
}

/// Lower-case hexadecimal.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bytes of a hexadecimal string, if it is one.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
