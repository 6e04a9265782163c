//! The node's durable store (DESIGN §2, §8): the outbox of messages waiting for their next hop,
//! the inbox of received messages waiting for the national system, the deduplication memory,
//! each message's state history, receipts and the audit chain. Every change is made inside a
//! [`Txn`] and is durable when the commit returns (redb with `Durability::Immediate`: one
//! `fdatasync`), so a caller acknowledges upstream only after that; [`committer::Committer`]
//! puts the changes of many concurrent callers into one commit (group commit).
//! The engine choice is docs/decisions/0004-embedded-store.md; [`Store`] is one of two engines
//! behind one interface: the embedded redb file (the default, one replica) or PostgreSQL
//! (several replicas of one node sharing it: docs/decisions/0007-postgresql-store.md).
//! **Invariant:** depends only on `support` and `codecs` (for a checkpoint signer's name;
//! ARCHITECTURE.md, "Dependency rules"): it stores bytes and records, and knows nothing of
//! trust, relay or the node.
//!
//! The store keeps bytes and records, not the node's domain types (a trader's register record
//! is the bytes its caller encoded). Modules, each depending only on those before it:
//! [`records`] (what is kept, errors) → [`events`] (the event log's records) → [`audit`] (the hash chain, engine-free) →
//! [`engine`] (the storage primitives an engine implements) → [`txn`] (every transition,
//! written once) → [`redb_store`], [`pg_store`] (the engines) → this facade → [`committer`].
#![forbid(unsafe_code)]

pub mod audit;
pub mod committer;
pub mod engine;
pub mod events;
pub mod pg_store;
pub mod records;
pub mod redb_store;
pub mod sets;
#[cfg(test)]
mod suite;
pub mod txn;

use std::path::Path;

pub use engine::Engine;
pub use events::{Event, EventPage, Retention};
pub use pg_store::{read_password_file, PasswordFileError, PgOptions, PgStore, PgUrlError};
pub use records::*;
pub use redb_store::{AuditFileError, RedbStore};
pub use txn::Txn;

/// The node's store: one engine behind one interface (DESIGN §8). Reads are the engine's
/// own ([`Engine`], reached through `Deref`); writes go through [`Store::write_with`], so
/// every change is one of [`Txn`]'s transitions.
pub struct Store {
    engine: Box<dyn Engine>,
}

impl std::ops::Deref for Store {
    type Target = dyn Engine;

    fn deref(&self) -> &Self::Target {
        self.engine.as_ref()
    }
}

/// Where the store lives, from the configuration's `store` (a PostgreSQL URL) or the data
/// directory's `node.redb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
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
pub const DEFAULT_CACHE_BYTES: usize = 16 << 20;

impl Store {
    /// Opens (or creates) the store; a PostgreSQL database gets its schema migrated first.
    pub fn open(at: &Location) -> Result<Self, StoreError> {
        Self::open_with_cache(at, DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open`] with the embedded store's page cache bounded to `cache_bytes`.
    pub fn open_with_cache(at: &Location, cache_bytes: usize) -> Result<Self, StoreError> {
        let engine: Box<dyn Engine> = match at {
            Location::File(p) => Box::new(RedbStore::open_with_cache(p, cache_bytes)?),
            Location::Postgres(o) => Box::new(PgStore::open(o)?),
        };
        Ok(Self { engine })
    }

    /// Runs `f` in one write transaction and commits it durably if `f` succeeds; returns its
    /// result and the state changes it made.
    #[cfg(test)]
    pub fn write<R>(
        &self,
        now: i64,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Vec<Change>), StoreError> {
        self.write_with(true, now, f)
    }

    /// [`write`](Self::write), durable on return or not (a lazy commit, made durable by the
    /// next durable one; a crash before that loses it whole); only for changes that are safe
    /// to redo: nothing was acknowledged on their strength.
    pub fn write_with<R>(
        &self,
        durable: bool,
        now: i64,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Vec<Change>), StoreError> {
        self.write_logged(durable, now, f)
            .map(|(r, changes, _)| (r, changes))
    }

    /// [`write_with`](Self::write_with), also answering the newest event the write added to
    /// the log, if any.
    pub fn write_logged<R>(
        &self,
        durable: bool,
        now: i64,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Vec<Change>, Option<u64>), StoreError> {
        let mut f = Some(f);
        let mut done = None;
        self.engine.transact(durable, now, &mut |raw| {
            let f = f
                .take()
                .ok_or_else(|| StoreError::Engine("a write transaction ran twice".into()))?;
            let mut txn = Txn::new(raw);
            let r = f(&mut txn)?;
            let last_event = txn.last_event();
            done = Some((r, txn.into_changes(), last_event));
            Ok(())
        })?;
        done.ok_or_else(|| {
            StoreError::Engine("the engine committed without running the write".into())
        })
    }

    /// Up to `limit` inbox messages, oldest first.
    #[cfg(test)]
    pub fn inbox(&self, limit: usize) -> Result<Vec<Incoming>, StoreError> {
        Ok(self
            .inbox_after(None, limit)?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }

    /// Verifies the audit chain, its checkpoints and the histories (one consistent snapshot).
    pub fn verify_audit(&self) -> Result<audit::AuditReport, StoreError> {
        self.verify_audit_with(None)
    }

    /// [`verify_audit`](Self::verify_audit), each checkpoint's certificate also chained to
    /// one of `anchors` at the checkpoint's time when they are given.
    pub fn verify_audit_with(
        &self,
        anchors: Option<&[openssl::x509::X509]>,
    ) -> Result<audit::AuditReport, StoreError> {
        audit::verify_data(self.engine.audit_data()?, anchors)
    }

    /// Up to `limit` checkpoints waiting for their time-stamp token, oldest first.
    pub fn checkpoints_awaiting_token(
        &self,
        limit: usize,
    ) -> Result<Vec<audit::AwaitingToken>, StoreError> {
        self.engine
            .checkpoints_awaiting_token(limit)?
            .iter()
            .map(|(seq, cp)| audit::awaiting_token(*seq, cp))
            .collect()
    }

    /// Up to `limit` events after the cursor `after` (0: from the first), in order, with the
    /// newest number written. A cursor past the newest event, or one whose next events were
    /// compacted away, is refused ([`StoreError::EventsAhead`], [`StoreError::EventsGone`]).
    pub fn events(&self, after: u64, limit: usize) -> Result<EventPage, StoreError> {
        events::check_page(after, self.engine.events_after(after, limit.max(1))?)
    }

    /// `redb` or `postgresql`, for logs and metrics.
    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }
}

/// Verifies the audit chain of an embedded store file (`node.redb`) that no node has open:
/// `tereze audit verify DATA_DIR` after the node stopped.
pub fn verify_audit_file(path: &Path) -> Result<audit::AuditReport, AuditFileError> {
    verify_audit_file_with(path, None)
}

/// [`verify_audit_file`] with anchors ([`Store::verify_audit_with`]).
pub fn verify_audit_file_with(
    path: &Path,
    anchors: Option<&[openssl::x509::X509]>,
) -> Result<audit::AuditReport, AuditFileError> {
    let data = redb_store::audit_data_of_file(path)?;
    Ok(audit::verify_data(data, anchors)?)
}
