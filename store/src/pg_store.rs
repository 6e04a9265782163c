//! The store on PostgreSQL, for several replicas of one node (issue 12, DESIGN §8,
//! docs/decisions/0007-postgresql-store.md). The records and their encodings are the embedded
//! store's; what differs is how replicas share them:
//!
//! - Every write transaction first locks the audit chain's head row (`FOR UPDATE`): writes of
//!   all replicas are serialised, the chain stays one chain without gaps, and a check made
//!   before a write (an id already queued, already received) still holds when it is written.
//!   Inbox deduplication is the `received` table's primary key besides.
//! - The outbox is claimed, not just read: [`PgStore::due`] takes a per-peer advisory lock,
//!   selects due rows `FOR UPDATE SKIP LOCKED` and leases them to this replica until
//!   `now + lease`. A message leased by another replica holds back its conversation, so
//!   order per conversation holds across replicas; a crashed replica's leases expire and its
//!   messages are taken over.
//! - An enqueue `NOTIFY`s `tereze_outbox` with the peer, so idle replicas wake at once.
//!
//! The `postgres` crate (the blocking client of `tokio-postgres`) is used from plain threads
//! only: the committer's thread writes, a small pool of connection threads serves reads (a
//! caller on the async runtime waits for its answer as it waits for a redb read), and one
//! thread listens for notifications.
//!
//! This engine only stores: the transitions are [`super::txn`]'s.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

mod event_rows;

use postgres::{Client, Statement};
use uuid::Uuid;

use super::audit::{self, AuditData, Head};
use super::engine::{Area, Body, Engine, EngineTxn};
use super::events::{Event, EventPage, Retention};
use super::records::{
    decode, encode, select, Filter, Found, Incoming, Meta, OutboxEntry, Outgoing, StampItem, State,
    StoreError, Transition,
};

/// The schema migrations, in order; a database at a higher version than the last one here was
/// migrated by a newer node and is refused.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_conformance.sql"),
    ),
    (3, include_str!("../migrations/postgres/0003_events.sql")),
    (
        4,
        include_str!("../migrations/postgres/0004_checkpoint_tokens.sql"),
    ),
    // 3 is the event log's, 4 the audit checkpoints' tokens (issue 26's other slices).
    (
        5,
        include_str!("../migrations/postgres/0005_timestamps.sql"),
    ),
];

/// The advisory lock that serialises migrations of replicas starting together.
const MIGRATION_LOCK: i64 = 0x7465_7265_7a65_0001;

/// Connection threads serving reads.
const READERS: usize = 4;

/// The notification channel an enqueue signals with the peer's code.
const CHANNEL: &str = "tereze_outbox";

/// How to reach the database and how this replica claims work.
#[derive(Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// The connection URL or key-value string, as configured (may hold a password: never
    /// logged; see [`redacted`](Self::redacted)).
    url: String,
    /// How long a claimed message stays this replica's before another may take it over.
    pub lease_ms: i64,
    /// This replica's name in leases: host, process and a random part.
    pub replica: String,
    /// From `store_password_file`, when the URL does not carry it.
    password: Option<String>,
    /// Extra CA certificates (PEM) for verifying the server's TLS certificate.
    ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &self.redacted())
            .field("lease_ms", &self.lease_ms)
            .field("replica", &self.replica)
            .finish()
    }
}

/// The PostgreSQL password kept in `path` (owner-only, or refused; a trailing newline is not
/// part of it). The error names the file, never its content.
pub fn read_password_file(path: &std::path::Path) -> Result<String, PasswordFileError> {
    let text = tereze_support::fs::read_secret(path, "the store's password").map_err(|source| {
        PasswordFileError {
            path: path.display().to_string(),
            source,
        }
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// Why the PostgreSQL password file was refused (`store_password_file`).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct PasswordFileError {
    pub path: String,
    #[source]
    pub source: tereze_support::fs::SecretError,
}

/// Why a PostgreSQL connection string was refused.
#[derive(Debug, thiserror::Error)]
pub enum PgUrlError {
    #[error("not a PostgreSQL connection string: {0}")]
    Syntax(#[source] postgres::Error),
    #[error("the connection string names no database")]
    NoDatabase,
}

impl PgOptions {
    /// Checks `url` (`postgres://user[:password]@host[:port]/database[?…]` or key-value form)
    /// without connecting.
    pub fn parse(
        url: &str,
        lease_ms: i64,
        password: Option<String>,
        ca_file: Option<std::path::PathBuf>,
    ) -> Result<Self, PgUrlError> {
        let config: postgres::Config = url.parse().map_err(PgUrlError::Syntax)?;
        if config.get_dbname().is_none() {
            return Err(PgUrlError::NoDatabase);
        }
        let host = tereze_support::procfs::hostname();
        let random = Uuid::new_v4().simple().to_string();
        Ok(Self {
            url: url.to_owned(),
            lease_ms,
            replica: format!("{host}/{}/{}", std::process::id(), &random[..8]),
            password,
            ca_file,
        })
    }

    /// The connection string without its password, for logs and errors.
    pub fn redacted(&self) -> String {
        match self.url.parse::<postgres::Config>() {
            Ok(c) => {
                let user = c.get_user().unwrap_or("");
                let host = c
                    .get_hosts()
                    .first()
                    .map(|h| match h {
                        postgres::config::Host::Tcp(h) => h.clone(),
                        postgres::config::Host::Unix(p) => p.display().to_string(),
                    })
                    .unwrap_or_default();
                let port = c.get_ports().first().copied().unwrap_or(5432);
                let db = c.get_dbname().unwrap_or("");
                format!("postgresql://{user}@{host}:{port}/{db}")
            }
            Err(_) => "postgresql://(unreadable)".into(),
        }
    }

    fn connect(&self) -> Result<Client, StoreError> {
        let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
            .map_err(|e| StoreError::engine_failed(format!("TLS for PostgreSQL: {e}"), e))?;
        if let Some(ca) = &self.ca_file {
            builder.set_ca_file(ca).map_err(|e| {
                StoreError::engine_failed(format!("store CA file {}: {e}", ca.display()), e)
            })?;
        }
        let tls = postgres_openssl::MakeTlsConnector::new(builder.build());
        let mut config: postgres::Config = self.url.parse().map_err(|e| {
            StoreError::engine_failed(format!("PostgreSQL connection string: {e}"), e)
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("tereze");
        if let Some(p) = &self.password {
            config.password(p);
        }
        config.connect(tls).map_err(|e| {
            StoreError::engine_failed(
                format!("cannot connect to {}: {}", self.redacted(), pg_text(&e)),
                e,
            )
        })
    }
}

/// The server's message for a database error, or the client's.
fn pg_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

fn pg(e: postgres::Error) -> StoreError {
    StoreError::engine_failed(format!("postgresql: {}", pg_text(&e)), e)
}

type Cache = HashMap<&'static str, Statement>;

/// One connection, opened on first use and again after it broke, with its prepared
/// statements.
struct Conn {
    opts: Arc<PgOptions>,
    client: Option<Client>,
    cache: Cache,
}

impl Conn {
    fn new(opts: Arc<PgOptions>) -> Self {
        Self {
            opts,
            client: None,
            cache: HashMap::new(),
        }
    }

    fn parts(&mut self) -> Result<(&mut Client, &mut Cache), StoreError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.cache.clear();
            self.client = Some(self.opts.connect()?);
        }
        match self.client.as_mut() {
            Some(c) => Ok((c, &mut self.cache)),
            None => Err(StoreError::Engine("no PostgreSQL connection".into())),
        }
    }
}

/// A statement prepared once per connection.
fn prepared(
    client: &mut impl postgres::GenericClient,
    cache: &mut Cache,
    sql: &'static str,
) -> Result<Statement, StoreError> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql).map_err(pg)?;
    cache.insert(sql, s.clone());
    Ok(s)
}

type ReadJob = Box<dyn FnOnce(&mut Conn) + Send>;

/// The store on PostgreSQL.
pub struct PgStore {
    opts: Arc<PgOptions>,
    /// Used by the thread that commits (the committer's, or a test's).
    writer: Mutex<Conn>,
    reads: mpsc::Sender<ReadJob>,
    wake: tokio::sync::broadcast::Sender<String>,
    stop: Arc<AtomicBool>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Closing a blocking client blocks: not on the caller's (maybe async) thread.
        let conn = std::mem::replace(
            &mut *self.writer.lock().unwrap_or_else(|p| p.into_inner()),
            Conn::new(self.opts.clone()),
        );
        let _ = std::thread::spawn(move || drop(conn)).join();
    }
}

impl PgStore {
    /// Connects, migrates the schema (under an advisory lock, so replicas starting together
    /// migrate once) and starts the reader and listener threads.
    pub fn open(opts: &PgOptions) -> Result<Self, StoreError> {
        let opts = Arc::new(opts.clone());
        let writer = {
            // The blocking client must not start on an async runtime's thread.
            let opts = opts.clone();
            std::thread::spawn(move || -> Result<Conn, StoreError> {
                let mut writer = Conn::new(opts);
                migrate(writer.parts()?.0)?;
                Ok(writer)
            })
            .join()
            .map_err(|_| StoreError::Engine("the store's opening thread panicked".into()))??
        };
        let (reads, rx) = mpsc::channel::<ReadJob>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..READERS {
            let rx = rx.clone();
            let mut conn = Conn::new(opts.clone());
            std::thread::Builder::new()
                .name(format!("tereze-pg-read-{n}"))
                .spawn(move || loop {
                    let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => break,
                    };
                    job(&mut conn);
                })
                .map_err(|e| {
                    StoreError::engine_failed(format!("cannot start a reader thread: {e}"), e)
                })?;
        }
        let (wake, _) = tokio::sync::broadcast::channel(1024);
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (opts, wake, stop) = (opts.clone(), wake.clone(), stop.clone());
            std::thread::Builder::new()
                .name("tereze-pg-listen".into())
                .spawn(move || listen(&opts, &wake, &stop))
                .map_err(|e| {
                    StoreError::engine_failed(format!("cannot start the listener: {e}"), e)
                })?;
        }
        Ok(Self {
            opts,
            writer: Mutex::new(writer),
            reads,
            wake,
            stop,
        })
    }

    /// Runs `f` on a reader connection and waits for its answer.
    fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client, &mut Cache) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.reads
            .send(Box::new(move |conn: &mut Conn| {
                let r = conn.parts().and_then(|(c, cache)| f(c, cache));
                let _ = tx.send(r);
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    fn count(&self, sql: &'static str, arg: Option<String>) -> Result<u64, StoreError> {
        self.read(move |c, cache| {
            let st = prepared(c, cache, sql)?;
            let row = match &arg {
                Some(a) => c.query_one(&st, &[a]),
                None => c.query_one(&st, &[]),
            }
            .map_err(pg)?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn bytes_by_id(&self, sql: &'static str, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |c, cache| {
            let st = prepared(c, cache, sql)?;
            Ok(c.query_opt(&st, &[&id]).map_err(pg)?.map(|r| r.get(0)))
        })
    }

    fn bytes_by_text(&self, sql: &'static str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let id = id.to_owned();
        self.read(move |c, cache| {
            let st = prepared(c, cache, sql)?;
            Ok(c.query_opt(&st, &[&id]).map_err(pg)?.map(|r| r.get(0)))
        })
    }
}

impl Engine for PgStore {
    fn name(&self) -> &'static str {
        "postgresql"
    }

    /// Locks the audit head first (`FOR UPDATE`), which serialises the writes of every
    /// replica; a non-durable commit is `synchronous_commit = off`.
    fn transact(&self, durable: bool, now: i64, body: &mut Body<'_>) -> Result<(), StoreError> {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let (client, cache) = guard.parts()?;
        let mut tx = client.transaction().map_err(pg)?;
        if !durable {
            // Atomic now, durable with the next synchronous commit (as redb's Durability::None).
            tx.batch_execute("SET LOCAL synchronous_commit = off")
                .map_err(pg)?;
        }
        let st = prepared(
            &mut tx,
            cache,
            "SELECT count, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        )?;
        let row = tx.query_one(&st, &[]).map_err(pg)?;
        let count: i64 = row.get(0);
        let hash: Option<Vec<u8>> = row.get(1);
        let head = Head::new(
            count as u64,
            hash.unwrap_or_else(|| audit::GENESIS.to_vec()),
        );
        let mut t = PgTxn {
            tx,
            cache,
            now,
            head,
            notify: BTreeSet::new(),
            appended: Appended::default(),
            replica: &self.opts.replica,
            events: event_rows::Pending::default(),
        };
        body(&mut t)?;
        t.commit()
    }

    fn wake_ups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.wake.subscribe())
    }

    fn due(
        &self,
        peer: &str,
        now: i64,
        limit: usize,
        max_bytes: usize,
        skip: &HashSet<Uuid>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let peer = peer.to_owned();
        let skip: Vec<Uuid> = skip.iter().copied().collect();
        let (replica, lease) = (self.opts.replica.clone(), self.opts.lease_ms);
        self.read(move |c, cache| {
            let mut tx = c.transaction().map_err(pg)?;
            // Claims for one peer one at a time (any replica): a claim sees the leases of the
            // one before, so two replicas never send one conversation out of order.
            let lock = prepared(
                &mut tx,
                cache,
                "SELECT pg_advisory_xact_lock(hashtext('tereze-claim ' || $1))",
            )?;
            tx.execute(&lock, &[&peer]).map_err(pg)?;
            let claim = prepared(
                &mut tx,
                cache,
                "SELECT o.message_id, o.sequence, o.message, o.payload, o.attempts, \
                        o.next_attempt_at, o.last_error \
                 FROM outbox o \
                 WHERE o.peer = $1 AND o.next_attempt_at <= $2 \
                   AND (o.lease_until IS NULL OR o.lease_until <= $2) \
                   AND NOT (o.message_id = ANY($3)) \
                   AND NOT EXISTS ( \
                     SELECT 1 FROM outbox e \
                     WHERE e.peer = o.peer AND e.conversation_id = o.conversation_id \
                       AND e.sequence < o.sequence \
                       AND (e.next_attempt_at > $2 OR e.lease_until > $2 \
                            OR e.message_id = ANY($3))) \
                 ORDER BY o.sequence LIMIT $4 \
                 FOR UPDATE OF o SKIP LOCKED",
            )?;
            let rows = tx
                .query(&claim, &[&peer, &now, &skip, &(limit as i64)])
                .map_err(pg)?;
            let mut out = Vec::new();
            let mut bytes_taken = 0usize;
            for row in rows {
                let payload: Vec<u8> = row.get(3);
                if !out.is_empty() && bytes_taken.saturating_add(payload.len()) > max_bytes {
                    break;
                }
                bytes_taken = bytes_taken.saturating_add(payload.len());
                out.push(outbox_entry(&row, payload)?);
            }
            if !out.is_empty() {
                let ids: Vec<Uuid> = out.iter().map(|e| e.message.message_id).collect();
                let lease_st = prepared(
                    &mut tx,
                    cache,
                    "UPDATE outbox SET lease_owner = $1, lease_until = $2 \
                     WHERE message_id = ANY($3)",
                )?;
                tx.execute(&lease_st, &[&replica, &(now + lease), &ids])
                    .map_err(pg)?;
            }
            tx.commit().map_err(pg)?;
            Ok(out)
        })
    }

    fn queued(&self, peer: &str) -> Result<u64, StoreError> {
        self.count(
            "SELECT count(*) FROM outbox WHERE peer = $1",
            Some(peer.to_owned()),
        )
    }

    fn outbox_len(&self) -> Result<u64, StoreError> {
        self.count("SELECT count(*) FROM outbox", None)
    }

    fn peers_with_queue(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c, cache| {
            let st = prepared(c, cache, "SELECT DISTINCT peer FROM outbox ORDER BY peer")?;
            Ok(c.query(&st, &[])
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    /// Positions are `inbox.seq`: taken from a sequence by transactions that hold the audit
    /// head's lock, so they grow in commit order and a reader resuming after one misses nothing
    /// committed later by any replica.
    fn inbox_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Incoming)>, StoreError> {
        // Positions start at 1; one past what a bigint holds has nothing after it.
        let after = after.map_or(0, |a| i64::try_from(a).unwrap_or(i64::MAX));
        self.read(move |c, cache| {
            let st = prepared(
                c,
                cache,
                "SELECT i.seq, r.row, r.envelope, r.receipt FROM inbox i \
                 JOIN received r ON r.message_id = i.message_id \
                 WHERE i.seq > $1 ORDER BY i.seq LIMIT $2",
            )?;
            c.query(&st, &[&after, &(limit.min(i64::MAX as usize) as i64)])
                .map_err(pg)?
                .iter()
                .map(|r| {
                    let seq = r.get::<_, i64>(0);
                    let seq = u64::try_from(seq)
                        .map_err(|_| StoreError::Corrupt(format!("inbox position {seq}")))?;
                    let mut m: Incoming = decode(r.get::<_, &[u8]>(1))?;
                    m.envelope = r.get::<_, Option<Vec<u8>>>(2).unwrap_or_default();
                    m.receipt = r.get(3);
                    Ok((seq, m))
                })
                .collect()
        })
    }

    fn quarantined(&self) -> Result<Vec<Incoming>, StoreError> {
        self.read(|c, cache| {
            let st = prepared(
                c,
                cache,
                "SELECT r.row, r.envelope FROM quarantine q \
                 JOIN received r ON r.message_id = q.message_id ORDER BY q.message_id",
            )?;
            c.query(&st, &[])
                .map_err(pg)?
                .iter()
                .map(|r| {
                    let mut m: Incoming = decode(r.get::<_, &[u8]>(0))?;
                    m.envelope = r.get::<_, Option<Vec<u8>>>(1).unwrap_or_default();
                    Ok(m)
                })
                .collect()
        })
    }

    fn conformance(&self) -> Result<Vec<Incoming>, StoreError> {
        self.read(|c, cache| {
            let st = prepared(
                c,
                cache,
                "SELECT r.row FROM conformance a \
                 JOIN received r ON r.message_id = a.message_id ORDER BY a.seq",
            )?;
            c.query(&st, &[])
                .map_err(pg)?
                .iter()
                .map(|r| decode(r.get::<_, &[u8]>(0)))
                .collect()
        })
    }

    fn inbox_len(&self) -> Result<u64, StoreError> {
        self.count("SELECT count(*) FROM inbox", None)
    }

    fn in_inbox(&self, id: Uuid) -> Result<bool, StoreError> {
        self.read(move |c, cache| {
            let st = prepared(c, cache, "SELECT count(*) FROM inbox WHERE message_id = $1")?;
            let row = c.query_one(&st, &[&id]).map_err(pg)?;
            Ok(row.get::<_, i64>(0) > 0)
        })
    }

    #[cfg(test)]
    fn received_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        self.read(|c, _| {
            Ok(
                c.query("SELECT message_id FROM received ORDER BY message_id", &[])
                    .map_err(pg)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            )
        })
    }

    fn history(&self, id: Uuid) -> Result<Vec<Transition>, StoreError> {
        self.read(move |c, cache| {
            let st = prepared(
                c,
                cache,
                "SELECT transition FROM history WHERE message_id = $1 ORDER BY seq",
            )?;
            c.query(&st, &[&id])
                .map_err(pg)?
                .iter()
                .map(|r| decode(r.get::<_, &[u8]>(0)))
                .collect()
        })
    }

    fn receipt(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        self.bytes_by_id("SELECT receipt FROM receipts WHERE message_id = $1", id)
    }

    fn awaited(&self, id: Uuid) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.read(move |c, cache| {
            let st = prepared(
                c,
                cache,
                "SELECT recipient, digest FROM awaiting WHERE message_id = $1",
            )?;
            Ok(c.query_opt(&st, &[&id])
                .map_err(pg)?
                .map(|r| (r.get(0), r.get(1))))
        })
    }

    fn fetched_crls(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.read(|c, _| {
            Ok(
                c.query("SELECT url, crls FROM fetched_crls ORDER BY url", &[])
                    .map_err(pg)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect(),
            )
        })
    }

    fn latest_trust_space(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.read(|c, _| {
            Ok(c.query_opt(
                "SELECT version, document FROM trust_history ORDER BY version DESC LIMIT 1",
                &[],
            )
            .map_err(pg)?
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1))))
        })
    }

    fn meta(&self, id: Uuid) -> Result<Option<Meta>, StoreError> {
        self.bytes_by_id("SELECT meta FROM message_meta WHERE message_id = $1", id)?
            .map(|b| decode(&b))
            .transpose()
    }

    fn search(&self, f: &Filter) -> Result<Vec<Found>, StoreError> {
        let f = f.clone();
        self.read(move |c, _| {
            let rows = c
                .query(
                    "WITH span AS ( \
                       SELECT message_id, min(seq) AS first_seq, max(seq) AS last_seq \
                       FROM history GROUP BY message_id) \
                     SELECT s.message_id, a.at, b.at, b.state, m.meta FROM span s \
                     JOIN history a ON a.message_id = s.message_id AND a.seq = s.first_seq \
                     JOIN history b ON b.message_id = s.message_id AND b.seq = s.last_seq \
                     LEFT JOIN message_meta m ON m.message_id = s.message_id",
                    &[],
                )
                .map_err(pg)?;
            let mut out = Vec::new();
            for r in rows {
                let state = parse_state(r.get(3))?;
                let meta: Option<Vec<u8>> = r.get(4);
                let meta = || meta.as_deref().map(decode::<Meta>).transpose();
                if let Some(found) = select(&f, r.get(0), r.get(1), r.get(2), state, meta)? {
                    out.push(found);
                }
            }
            out.sort_by_key(|f| std::cmp::Reverse(f.last_at));
            out.truncate(f.limit);
            Ok(out)
        })
    }

    fn trader(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bytes_by_text("SELECT record FROM traders WHERE id = $1", id)
    }

    fn trader_count(&self) -> Result<u64, StoreError> {
        self.count("SELECT count(*) FROM traders", None)
    }

    fn trader_answer(&self, id: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let id = id.to_owned();
        self.read(move |c, cache| {
            let st = prepared(
                c,
                cache,
                "SELECT fetched_at, document FROM trader_answers WHERE id = $1",
            )?;
            Ok(c.query_opt(&st, &[&id])
                .map_err(pg)?
                .map(|r| (r.get(0), r.get(1))))
        })
    }

    fn change_sets_of(
        &self,
        directory: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        let directory = directory.to_owned();
        self.read(move |c, cache| {
            let st = prepared(
                c,
                cache,
                "SELECT number, document FROM change_sets \
                 WHERE directory = $1 AND number > $2 ORDER BY number LIMIT $3",
            )?;
            let since = since.min(i64::MAX as u64) as i64;
            let limit = limit.min(i64::MAX as usize) as i64;
            Ok(c.query(&st, &[&directory, &since, &limit])
                .map_err(pg)?
                .iter()
                .map(|r| (directory.clone(), r.get::<_, i64>(0) as u64, r.get(1)))
                .collect())
        })
    }

    fn change_sets_after(
        &self,
        have: &HashMap<String, u64>,
        limit: usize,
    ) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        let have = have.clone();
        self.read(move |c, _| {
            let mut out = Vec::new();
            for r in c
                .query(
                    "SELECT directory, number, document FROM change_sets \
                     ORDER BY directory, number",
                    &[],
                )
                .map_err(pg)?
            {
                let directory: String = r.get(0);
                let number = r.get::<_, i64>(1) as u64;
                if number > have.get(&directory).copied().unwrap_or(0) {
                    out.push((directory, number, r.get(2)));
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    fn awaiting_len(&self) -> Result<u64, StoreError> {
        self.count("SELECT count(*) FROM awaiting", None)
    }

    fn stamp_pending(&self, limit: usize) -> Result<Vec<StampItem>, StoreError> {
        let limit = limit as i64;
        self.read(move |c, cache| {
            let st = prepared(
                c,
                cache,
                "SELECT id, kind, leaf, queued_at FROM stamp_pending \
                 ORDER BY queued_at, id LIMIT $1",
            )?;
            Ok(c.query(&st, &[&limit])
                .map_err(pg)?
                .iter()
                .map(|r| StampItem {
                    id: r.get(0),
                    kind: r.get(1),
                    leaf: r.get(2),
                    queued_at: r.get(3),
                })
                .collect())
        })
    }

    fn stamp_pending_len(&self) -> Result<u64, StoreError> {
        self.count("SELECT count(*) FROM stamp_pending", None)
    }

    fn evidence_of(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        self.bytes_by_id("SELECT evidence FROM evidence WHERE id = $1", id)
    }

    fn evidence_owed(&self, peer: &str, limit: usize) -> Result<Vec<(Uuid, Vec<u8>)>, StoreError> {
        let (peer, limit) = (peer.to_owned(), limit as i64);
        self.read(move |c, cache| {
            let st = prepared(
                c,
                cache,
                "SELECT o.id, e.evidence FROM evidence_out o JOIN evidence e ON e.id = o.id \
                 WHERE o.peer = $1 ORDER BY o.id LIMIT $2",
            )?;
            Ok(c.query(&st, &[&peer, &limit])
                .map_err(pg)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }

    fn received_message(&self, id: Uuid) -> Result<Option<Incoming>, StoreError> {
        self.read(move |c, cache| {
            let st = prepared(
                c,
                cache,
                "SELECT row, envelope FROM received WHERE message_id = $1",
            )?;
            c.query_opt(&st, &[&id])
                .map_err(pg)?
                .map(|r| {
                    let mut m: Incoming = decode(r.get::<_, &[u8]>(0))?;
                    m.envelope = r.get::<_, Option<Vec<u8>>>(1).unwrap_or_default();
                    Ok(m)
                })
                .transpose()
        })
    }

    fn peers_owed_evidence(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c, _| {
            Ok(
                c.query("SELECT DISTINCT peer FROM evidence_out ORDER BY peer", &[])
                    .map_err(pg)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            )
        })
    }

    fn parked(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read(|c, _| {
            c.query("SELECT entry FROM parked ORDER BY message_id", &[])
                .map_err(pg)?
                .iter()
                .map(|r| decode(r.get::<_, &[u8]>(0)))
                .collect()
        })
    }

    fn checkpoints_awaiting_token(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let limit = limit as i64;
        self.read(move |c, _| {
            c.query(
                "SELECT c.seq, c.checkpoint FROM audit_checkpoint_tokens t \
                 JOIN audit_checkpoints c USING (seq) \
                 WHERE t.token IS NULL ORDER BY c.seq LIMIT $1",
                &[&limit],
            )
            .map_err(pg)?
            .iter()
            .map(|r| Ok((r.get::<_, i64>(0) as u64, r.get(1))))
            .collect()
        })
    }

    /// One repeatable-read snapshot.
    fn events_after(&self, after: u64, limit: usize) -> Result<EventPage, StoreError> {
        event_rows::after(self, after, limit)
    }

    fn event_cursor(&self, reader: &str) -> Result<Option<u64>, StoreError> {
        event_rows::cursor(self, reader)
    }

    fn audit_data(&self) -> Result<AuditData, StoreError> {
        self.read(|c, _| {
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(pg)?;
            let mut data = AuditData::default();
            for r in tx
                .query("SELECT seq, entry FROM audit ORDER BY seq", &[])
                .map_err(pg)?
            {
                data.entries.push((r.get::<_, i64>(0) as u64, r.get(1)));
            }
            let head = tx
                .query_one("SELECT count, hash FROM audit_head WHERE id = 1", &[])
                .map_err(pg)?;
            data.head_count = Some(head.get::<_, i64>(0) as u64);
            data.head_hash = head.get(1);
            for r in tx
                .query(
                    "SELECT seq, checkpoint FROM audit_checkpoints ORDER BY seq",
                    &[],
                )
                .map_err(pg)?
            {
                data.checkpoints.push((r.get::<_, i64>(0) as u64, r.get(1)));
            }
            for r in tx
                .query(
                    "SELECT message_id, transition FROM history ORDER BY message_id, seq",
                    &[],
                )
                .map_err(pg)?
            {
                data.history.push((r.get(0), r.get(1)));
            }
            for r in tx
                .query(
                    "SELECT seq, token FROM audit_checkpoint_tokens \
                     WHERE token IS NOT NULL ORDER BY seq",
                    &[],
                )
                .map_err(pg)?
            {
                data.tokens.push((r.get::<_, i64>(0) as u64, r.get(1)));
            }
            tx.commit().map_err(pg)?;
            Ok(data)
        })
    }
}

fn parse_state(s: &str) -> Result<State, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| StoreError::Corrupt(format!("unknown state {s:?} in history")))
}

/// An outbox row (`message_id, sequence, message, payload, attempts, next_attempt_at,
/// last_error` as the first seven columns) as the relay sees it.
fn outbox_entry(row: &postgres::Row, payload: Vec<u8>) -> Result<OutboxEntry, StoreError> {
    let mut message: Outgoing = decode(row.get::<_, &[u8]>(2))?;
    message.payload.set_bytes(payload);
    Ok(OutboxEntry {
        message,
        sequence: row.get::<_, i64>(1) as u64,
        attempts: row.get::<_, i32>(4).max(0) as u32,
        next_attempt_at: row.get(5),
        last_error: row.get(6),
    })
}

/// Brings the schema to the last migration; refuses a database migrated by a newer node.
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg)?;
    let result = (|| {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS tereze_schema ( \
                   version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .map_err(pg)?;
        let at: i32 = client
            .query_one("SELECT coalesce(max(version), 0) FROM tereze_schema", &[])
            .map_err(pg)?
            .get(0);
        let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if at > known {
            return Err(StoreError::Schema(format!(
                "the database is at schema version {at}, this node knows up to {known}: \
                 upgrade the node (a newer one migrated this database)"
            )));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > at) {
            let mut tx = client.transaction().map_err(pg)?;
            tx.batch_execute(sql)
                .map_err(|e| StoreError::SchemaFailed {
                    what: format!("migration {version}: {}", pg_text(&e)),
                    source: std::sync::Arc::new(e),
                })?;
            tx.execute(
                "INSERT INTO tereze_schema (version) VALUES ($1)",
                &[version],
            )
            .map_err(pg)?;
            tx.commit().map_err(pg)?;
            tracing::info!(version, "store schema migrated");
        }
        Ok(())
    })();
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .map_err(pg);
    result.and(unlock.map(|_| ()))
}

/// Listens for enqueue notifications and passes the peers on, reconnecting after a failure,
/// until the store is dropped.
fn listen(opts: &PgOptions, wake: &tokio::sync::broadcast::Sender<String>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let mut client = match opts.connect() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "store notifications: cannot connect; retrying");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")) {
            tracing::warn!(error = %pg_text(&e), "store notifications: LISTEN failed");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        'connected: while !stop.load(Ordering::Relaxed) {
            let mut notes = client.notifications();
            let mut iter = notes.timeout_iter(Duration::from_millis(500));
            loop {
                match postgres::fallible_iterator::FallibleIterator::next(&mut iter) {
                    Ok(Some(n)) => {
                        // No subscriber yet is not an error.
                        let _ = wake.send(n.payload().to_owned());
                    }
                    Err(e) => {
                        tracing::warn!(error = %pg_text(&e), "store notifications: connection lost");
                        break 'connected;
                    }
                    Ok(None) => break,
                }
            }
            drop(iter);
            drop(notes);
            if client.is_closed() {
                break;
            }
        }
    }
}

/// One write transaction on PostgreSQL (see the module's notes on serialisation).
struct PgTxn<'a> {
    tx: postgres::Transaction<'a>,
    cache: &'a mut Cache,
    now: i64,
    /// The audit head, locked by this transaction.
    head: Head,
    /// Peers to notify at commit.
    notify: BTreeSet<String>,
    /// Audit entries and history rows appended by this transaction, written in one
    /// statement at commit (nothing in a transaction reads them back).
    appended: Appended,
    replica: &'a str,
    /// Events appended by this transaction, written at commit.
    events: event_rows::Pending,
}

/// Rows of `audit` and `history`, column by column, for one `unnest` insert.
#[derive(Default)]
struct Appended {
    seq: Vec<i64>,
    entry: Vec<Vec<u8>>,
    message_id: Vec<Uuid>,
    state: Vec<&'static str>,
    at: Vec<i64>,
    transition: Vec<Vec<u8>>,
}

impl PgTxn<'_> {
    fn st(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        prepared(&mut self.tx, self.cache, sql)
    }

    fn exec(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let st = self.st(sql)?;
        self.tx.execute(&st, params).map_err(pg)
    }

    fn opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<postgres::Row>, StoreError> {
        let st = self.st(sql)?;
        self.tx.query_opt(&st, params).map_err(pg)
    }

    /// Writes the appended entries and the audit head, tells listeners, commits.
    fn commit(mut self) -> Result<(), StoreError> {
        if !self.appended.seq.is_empty() {
            let a = std::mem::take(&mut self.appended);
            self.exec(
                "WITH a AS (INSERT INTO audit (seq, entry) \
                   SELECT * FROM unnest($1::bigint[], $2::bytea[])) \
                 INSERT INTO history (message_id, seq, state, at, transition) \
                 SELECT * FROM unnest($3::uuid[], $1::bigint[], $4::text[], $5::bigint[], $6::bytea[])",
                &[&a.seq, &a.entry, &a.message_id, &a.state, &a.at, &a.transition],
            )?;
        }
        event_rows::flush(&mut self)?;
        if self.head.dirty() {
            let count = self.head.count() as i64;
            let last = self.head.last().to_vec();
            self.exec(
                "UPDATE audit_head SET count = $1, hash = $2 WHERE id = 1",
                &[&count, &last],
            )?;
        }
        for peer in std::mem::take(&mut self.notify) {
            self.exec("SELECT pg_notify($1, $2)", &[&CHANNEL, &peer])?;
        }
        self.tx.commit().map_err(pg)
    }
}

impl EngineTxn for PgTxn<'_> {
    fn now(&self) -> i64 {
        self.now
    }

    fn queued_among(&mut self, ids: &[Uuid]) -> Result<Option<Uuid>, StoreError> {
        Ok(self
            .opt(
                "SELECT message_id FROM outbox WHERE message_id = ANY($1) LIMIT 1",
                &[&ids],
            )?
            .map(|r| r.get(0)))
    }

    /// The whole range in one call (writes are serialised, so it is this transaction's alone).
    fn next_sequences(&mut self, n: u64) -> Result<u64, StoreError> {
        let n = i64::try_from(n)
            .map_err(|_| StoreError::Engine(format!("{n} outbox sequence numbers")))?;
        let last: i64 = self
            .opt(
                "SELECT setval('outbox_sequence', nextval('outbox_sequence') + $1 - 1)",
                &[&n],
            )?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::Engine("no outbox sequence".into()))?;
        Ok((last - n + 1) as u64)
    }

    /// One statement for the whole batch (and its search rows); the peers are notified at
    /// commit, so idle replicas wake at once.
    fn put_outbox(&mut self, entries: &[OutboxEntry], metas: &[Meta]) -> Result<(), StoreError> {
        let n = entries.len();
        let mut cols = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in entries {
            let m = &e.message;
            cols.0.push(m.message_id);
            cols.1.push(m.peer.as_str());
            cols.2.push(e.sequence as i64);
            cols.3.push(m.conversation_id);
            cols.4.push(encode(m)?);
            cols.5.push(m.payload.bytes());
            cols.6.push(i32::try_from(e.attempts).unwrap_or(i32::MAX));
            cols.7.push(e.next_attempt_at);
        }
        let rows: [&(dyn postgres::types::ToSql + Sync); 8] = [
            &cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5, &cols.6, &cols.7,
        ];
        if metas.is_empty() {
            self.exec(
                "INSERT INTO outbox (message_id, peer, sequence, conversation_id, message, \
                   payload, attempts, next_attempt_at) \
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::uuid[], \
                   $5::bytea[], $6::bytea[], $7::integer[], $8::bigint[])",
                &rows,
            )?;
        } else {
            let metas = metas.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
            let mut params = rows.to_vec();
            params.push(&metas);
            self.exec(
                "WITH meta AS ( \
                   INSERT INTO message_meta (message_id, meta) \
                   SELECT * FROM unnest($1::uuid[], $9::bytea[]) \
                   ON CONFLICT (message_id) DO UPDATE SET meta = EXCLUDED.meta) \
                 INSERT INTO outbox (message_id, peer, sequence, conversation_id, message, \
                   payload, attempts, next_attempt_at) \
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::uuid[], \
                   $5::bytea[], $6::bytea[], $7::integer[], $8::bigint[])",
                &params,
            )?;
        }
        for e in entries {
            self.notify.insert(e.message.peer.clone());
        }
        Ok(())
    }

    fn take_outbox(&mut self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError> {
        self.opt(
            "DELETE FROM outbox WHERE message_id = $1 \
             RETURNING message_id, sequence, message, payload, attempts, \
                       next_attempt_at, last_error",
            &[&id],
        )?
        .map(|row| outbox_entry(&row, row.get(3)))
        .transpose()
    }

    fn drop_outbox(&mut self, id: Uuid) -> Result<bool, StoreError> {
        Ok(self.exec("DELETE FROM outbox WHERE message_id = $1", &[&id])? > 0)
    }

    /// This replica's lease on the message ends, if it is still this replica's (another may
    /// have taken over).
    fn count_attempt(
        &mut self,
        id: Uuid,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<Option<u32>, StoreError> {
        let replica = self.replica.to_owned();
        let row = self.opt(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, \
               last_error = $3, \
               lease_until = CASE WHEN lease_owner = $4 THEN NULL ELSE lease_until END, \
               lease_owner = CASE WHEN lease_owner = $4 THEN NULL ELSE lease_owner END \
             WHERE message_id = $1 RETURNING attempts",
            &[&id, &next_attempt_at, &error, &replica],
        )?;
        Ok(row.map(|r| r.get::<_, i32>(0).max(0) as u32))
    }

    fn put_parked(&mut self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let id = entry.message.message_id;
        let row = encode(entry)?;
        let payload = entry.message.payload.bytes();
        self.exec(
            "INSERT INTO parked (message_id, entry, payload) VALUES ($1, $2, $3) \
             ON CONFLICT (message_id) DO UPDATE SET entry = EXCLUDED.entry, \
               payload = EXCLUDED.payload",
            &[&id, &row, &payload],
        )
        .map(|_| ())
    }

    /// Locks the row (`FOR UPDATE`) until the transaction ends.
    fn parked_entry(&mut self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError> {
        let Some(row) = self.opt(
            "SELECT entry, payload FROM parked WHERE message_id = $1 FOR UPDATE",
            &[&id],
        )?
        else {
            return Ok(None);
        };
        let mut entry: OutboxEntry = decode(row.get::<_, &[u8]>(0))?;
        entry.message.payload.set_bytes(row.get(1));
        Ok(Some(entry))
    }

    fn drop_parked(&mut self, id: Uuid) -> Result<(), StoreError> {
        self.exec("DELETE FROM parked WHERE message_id = $1", &[&id])
            .map(|_| ())
    }

    fn put_awaiting(
        &mut self,
        id: Uuid,
        recipient: &str,
        digest: &[u8],
        hub_receipt: &[u8],
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO awaiting (message_id, recipient, digest) VALUES ($1, $2, $3) \
             ON CONFLICT (message_id) DO UPDATE SET recipient = EXCLUDED.recipient, \
               digest = EXCLUDED.digest",
            &[&id, &recipient, &digest],
        )?;
        self.exec(
            "INSERT INTO hub_receipts (message_id, receipt) VALUES ($1, $2) \
             ON CONFLICT (message_id) DO UPDATE SET receipt = EXCLUDED.receipt",
            &[&id, &hub_receipt],
        )
        .map(|_| ())
    }

    fn drop_awaiting(&mut self, id: Uuid) -> Result<bool, StoreError> {
        Ok(self.exec("DELETE FROM awaiting WHERE message_id = $1", &[&id])? > 0)
    }

    fn put_receipt(&mut self, id: Uuid, receipt: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO receipts (message_id, receipt) VALUES ($1, $2) \
             ON CONFLICT (message_id) DO UPDATE SET receipt = EXCLUDED.receipt",
            &[&id, &receipt],
        )
        .map(|_| ())
    }

    fn received(&mut self, id: Uuid) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        Ok(self
            .opt(
                "SELECT receipt, digest FROM received WHERE message_id = $1",
                &[&id],
            )?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn received_envelope(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .opt(
                "SELECT envelope FROM received WHERE message_id = $1",
                &[&id],
            )?
            .and_then(|r| r.get(0)))
    }

    /// The primary key is the deduplication: a row already there (which the serialised
    /// writes rule out) writes nothing and is reported, never stored twice.
    fn put_received(&mut self, m: &Incoming, keep_envelope: bool) -> Result<(), StoreError> {
        let id = m.message_id;
        let row = encode(m)?;
        let envelope: Option<&[u8]> = keep_envelope.then_some(m.envelope.as_slice());
        let stored = self.exec(
            "INSERT INTO received (message_id, row, envelope, receipt, digest) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
            &[&id, &row, &envelope, &m.receipt, &m.digest],
        )?;
        if stored != 1 {
            return Err(StoreError::Engine(format!(
                "message {id} was stored by another writer meanwhile"
            )));
        }
        Ok(())
    }

    fn drop_envelope(&mut self, id: Uuid) -> Result<(), StoreError> {
        self.exec(
            "UPDATE received SET envelope = NULL WHERE message_id = $1",
            &[&id],
        )
        .map(|_| ())
    }

    /// Positions come from `inbox_sequence`, taken under the audit head's lock, so they grow
    /// in commit order across replicas.
    fn place(&mut self, id: Uuid, area: Area) -> Result<(), StoreError> {
        let sql = match area {
            Area::Inbox => {
                "INSERT INTO inbox (seq, message_id) VALUES (nextval('inbox_sequence'), $1)"
            }
            Area::Quarantine => {
                "INSERT INTO quarantine (message_id, seq) VALUES ($1, nextval('inbox_sequence'))"
            }
            Area::Conformance => {
                "INSERT INTO conformance (message_id, seq) VALUES ($1, nextval('inbox_sequence'))"
            }
        };
        self.exec(sql, &[&id]).map(|_| ())
    }

    fn unplace(&mut self, id: Uuid, area: Area) -> Result<bool, StoreError> {
        let sql = match area {
            Area::Inbox => "DELETE FROM inbox WHERE message_id = $1",
            Area::Quarantine => "DELETE FROM quarantine WHERE message_id = $1",
            Area::Conformance => "DELETE FROM conformance WHERE message_id = $1",
        };
        Ok(self.exec(sql, &[&id])? > 0)
    }

    fn meta(&mut self, id: Uuid) -> Result<Option<Meta>, StoreError> {
        self.opt(
            "SELECT meta FROM message_meta WHERE message_id = $1",
            &[&id],
        )?
        .map(|row| decode(row.get::<_, &[u8]>(0)))
        .transpose()
    }

    fn put_meta(&mut self, id: Uuid, meta: &Meta) -> Result<(), StoreError> {
        let bytes = encode(meta)?;
        self.exec(
            "INSERT INTO message_meta (message_id, meta) VALUES ($1, $2) \
             ON CONFLICT (message_id) DO UPDATE SET meta = EXCLUDED.meta",
            &[&id, &bytes],
        )
        .map(|_| ())
    }

    /// Locked (`FOR UPDATE`) when the transaction began.
    fn audit_head(&mut self) -> Result<&mut Head, StoreError> {
        Ok(&mut self.head)
    }

    /// Kept until commit, then written in one statement.
    fn append(
        &mut self,
        id: Uuid,
        seq: u64,
        entry: Vec<u8>,
        t: &Transition,
    ) -> Result<(), StoreError> {
        let a = &mut self.appended;
        a.seq.push(seq as i64);
        a.entry.push(entry);
        a.message_id.push(id);
        a.state.push(t.state.as_str());
        a.at.push(t.at);
        a.transition.push(encode(t)?);
        Ok(())
    }

    fn has_checkpoint(&mut self, seq: u64) -> Result<bool, StoreError> {
        let seq = seq as i64;
        Ok(self
            .opt("SELECT 1 FROM audit_checkpoints WHERE seq = $1", &[&seq])?
            .is_some())
    }

    fn put_checkpoint(&mut self, seq: u64, checkpoint: &[u8]) -> Result<(), StoreError> {
        let seq = seq as i64;
        self.exec(
            "INSERT INTO audit_checkpoints (seq, checkpoint) VALUES ($1, $2)",
            &[&seq, &checkpoint],
        )
        .map(|_| ())
    }

    fn want_checkpoint_token(&mut self, seq: u64) -> Result<(), StoreError> {
        let seq = seq as i64;
        self.exec(
            "INSERT INTO audit_checkpoint_tokens (seq) VALUES ($1) ON CONFLICT (seq) DO NOTHING",
            &[&seq],
        )
        .map(|_| ())
    }

    fn put_checkpoint_token(&mut self, seq: u64, token: &[u8]) -> Result<(), StoreError> {
        let seq = seq as i64;
        self.exec(
            "INSERT INTO audit_checkpoint_tokens (seq, token) VALUES ($1, $2) \
             ON CONFLICT (seq) DO UPDATE SET token = EXCLUDED.token",
            &[&seq, &token],
        )
        .map(|_| ())
    }

    fn append_event(&mut self, e: &mut Event) -> Result<(), StoreError> {
        event_rows::append(self, e)
    }

    fn compact_events(&mut self, r: &Retention, now: i64) -> Result<u64, StoreError> {
        event_rows::compact(self, r, now)
    }

    fn put_event_cursor(&mut self, reader: &str, seq: u64) -> Result<(), StoreError> {
        event_rows::put_cursor(self, reader, seq)
    }

    fn put_crls(&mut self, url: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO fetched_crls (url, crls) VALUES ($1, $2) \
             ON CONFLICT (url) DO UPDATE SET crls = EXCLUDED.crls",
            &[&url, &bytes],
        )
        .map(|_| ())
    }

    fn put_trust_space(&mut self, version: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let version = i64::try_from(version)
            .map_err(|_| StoreError::Corrupt(format!("trust space version {version}")))?;
        self.exec(
            "INSERT INTO trust_history (version, document) VALUES ($1, $2) \
             ON CONFLICT (version) DO UPDATE SET document = EXCLUDED.document",
            &[&version, &bytes],
        )
        .map(|_| ())
    }

    fn put_traders(&mut self, records: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        for (id, record) in records {
            self.exec(
                "INSERT INTO traders (id, record) VALUES ($1, $2) \
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
                &[id, record],
            )?;
        }
        Ok(())
    }

    fn put_trader_answer(&mut self, id: &str, at_ms: i64, bytes: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO trader_answers (id, fetched_at, document) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET fetched_at = EXCLUDED.fetched_at, \
               document = EXCLUDED.document",
            &[&id, &at_ms, &bytes],
        )
        .map(|_| ())
    }

    fn forget_trader_answers(&mut self, id: Option<&str>) -> Result<u64, StoreError> {
        match id {
            Some(id) => self.exec("DELETE FROM trader_answers WHERE id = $1", &[&id]),
            None => self.exec("DELETE FROM trader_answers", &[]),
        }
    }

    fn put_change_set(
        &mut self,
        directory: &str,
        number: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let number = i64::try_from(number)
            .map_err(|_| StoreError::Corrupt(format!("change set number {number}")))?;
        self.exec(
            "INSERT INTO change_sets (directory, number, document) VALUES ($1, $2, $3) \
             ON CONFLICT (directory, number) DO UPDATE SET document = EXCLUDED.document",
            &[&directory, &number, &bytes],
        )
        .map(|_| ())
    }

    /// This transaction's own transitions first (kept until commit), then the table's.
    fn last_state(&mut self, id: Uuid) -> Result<Option<State>, StoreError> {
        let a = &self.appended;
        if let Some(i) = a.message_id.iter().rposition(|m| *m == id) {
            return parse_state(a.state[i]).map(Some);
        }
        self.opt(
            "SELECT state FROM history WHERE message_id = $1 ORDER BY seq DESC LIMIT 1",
            &[&id],
        )?
        .map(|r| parse_state(r.get::<_, &str>(0)))
        .transpose()
    }

    fn put_stamp_pending(&mut self, item: &StampItem) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO stamp_pending (id, kind, leaf, queued_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, leaf = EXCLUDED.leaf, \
             queued_at = EXCLUDED.queued_at",
            &[&item.id, &item.kind, &item.leaf, &item.queued_at],
        )
        .map(|_| ())
    }

    fn drop_stamp_pending(&mut self, id: Uuid) -> Result<bool, StoreError> {
        Ok(self.exec("DELETE FROM stamp_pending WHERE id = $1", &[&id])? > 0)
    }

    fn put_evidence(&mut self, id: Uuid, evidence: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO evidence (id, evidence) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET evidence = EXCLUDED.evidence",
            &[&id, &evidence],
        )
        .map(|_| ())
    }

    fn evidence(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .opt("SELECT evidence FROM evidence WHERE id = $1", &[&id])?
            .map(|r| r.get(0)))
    }

    fn put_evidence_out(&mut self, peer: &str, id: Uuid) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO evidence_out (peer, id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&peer, &id],
        )
        .map(|_| ())
    }

    fn drop_evidence_out(&mut self, peer: &str, id: Uuid) -> Result<bool, StoreError> {
        Ok(self.exec(
            "DELETE FROM evidence_out WHERE peer = $1 AND id = $2",
            &[&peer, &id],
        )? > 0)
    }
}
