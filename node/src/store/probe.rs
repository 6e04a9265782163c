//! A crash-durability probe for embedded storage engines: write 4 KiB records in batches, make
//! each batch durable the engine's way, and only then acknowledge it on stdout; after the
//! process is killed, check that every acknowledged record is there and intact. Run by
//! `node/tests/store_crash.rs`, which kills the writer with SIGKILL at random moments.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use redb::ReadableDatabase;

/// Which engine to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Engine {
    /// sled 0.34; durability by `Db::flush()` after each batch.
    Sled,
    /// redb 4; durability by committing with `Durability::Immediate` (the default).
    Redb,
}

const RECORD: usize = 4096;
const TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("probe");

/// The record for key `k`: its key repeated, so a torn or misplaced value shows.
fn record(k: u64) -> Vec<u8> {
    k.to_be_bytes()
        .iter()
        .copied()
        .cycle()
        .take(RECORD)
        .collect()
}

/// What went wrong in a probe run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("redb: {0}")]
    Redb(String),
    #[error("stdout: {0}")]
    Io(#[from] std::io::Error),
    #[error("record {0} was acknowledged but is missing")]
    Missing(u64),
    #[error("record {0} is corrupt")]
    Corrupt(u64),
}

fn redb_err(e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Redb(e.to_string())
}

/// Writes records `start..start+count` (or until killed when `count` is `None`) in batches,
/// printing `acked N` after each durable batch, where N is the last key of the batch.
/// Returns records written per second.
pub(crate) fn write(
    engine: Engine,
    dir: &Path,
    start: u64,
    count: Option<u64>,
    batch: u64,
) -> Result<f64, ProbeError> {
    let batch = batch.max(1);
    let end = count.map(|c| start + c);
    let mut out = std::io::stdout().lock();
    let began = Instant::now();
    let mut next = start;
    match engine {
        Engine::Sled => {
            let db = sled::open(dir.join("sled"))?;
            while end.is_none_or(|e| next < e) {
                let last = end.map_or(next + batch, |e| (next + batch).min(e));
                for k in next..last {
                    db.insert(k.to_be_bytes(), record(k))?;
                }
                db.flush()?;
                writeln!(out, "acked {}", last - 1)?;
                out.flush()?;
                next = last;
            }
        }
        Engine::Redb => {
            let db = redb::Database::create(dir.join("redb")).map_err(redb_err)?;
            while end.is_none_or(|e| next < e) {
                let last = end.map_or(next + batch, |e| (next + batch).min(e));
                let txn = db.begin_write().map_err(redb_err)?;
                {
                    let mut t = txn.open_table(TABLE).map_err(redb_err)?;
                    for k in next..last {
                        t.insert(k, record(k).as_slice()).map_err(redb_err)?;
                    }
                }
                txn.commit().map_err(redb_err)?;
                writeln!(out, "acked {}", last - 1)?;
                out.flush()?;
                next = last;
            }
        }
    }
    let secs = began.elapsed().as_secs_f64().max(f64::EPSILON);
    Ok((next - start) as f64 / secs)
}

/// Checks that records `0..=through` are all present and intact; returns how many records the
/// store holds.
pub(crate) fn check(engine: Engine, dir: &Path, through: Option<u64>) -> Result<u64, ProbeError> {
    match engine {
        Engine::Sled => {
            let db = sled::open(dir.join("sled"))?;
            if let Some(t) = through {
                for k in 0..=t {
                    match db.get(k.to_be_bytes())? {
                        None => return Err(ProbeError::Missing(k)),
                        Some(v) if v.as_ref() != record(k).as_slice() => {
                            return Err(ProbeError::Corrupt(k))
                        }
                        Some(_) => {}
                    }
                }
            }
            Ok(db.len() as u64)
        }
        Engine::Redb => {
            let db = redb::Database::create(dir.join("redb")).map_err(redb_err)?;
            let txn = db.begin_read().map_err(redb_err)?;
            let table = match txn.open_table(TABLE) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => {
                    return match through {
                        Some(_) => Err(ProbeError::Missing(0)),
                        None => Ok(0),
                    }
                }
                Err(e) => return Err(redb_err(e)),
            };
            if let Some(t) = through {
                for k in 0..=t {
                    match table.get(k).map_err(redb_err)? {
                        None => return Err(ProbeError::Missing(k)),
                        Some(v) if v.value() != record(k).as_slice() => {
                            return Err(ProbeError::Corrupt(k))
                        }
                        Some(_) => {}
                    }
                }
            }
            Ok(redb::ReadableTableMetadata::len(&table).map_err(redb_err)?)
        }
    }
}
