//! The tamper-evident audit log: every state change of every message, appended in the same
//! transaction as the change to a hash chain (each entry's hash covers the previous hash and
//! the entry), with checkpoints signed by the node's key. [`verify`] walks the chain and
//! finds any edited, inserted or deleted entry, any history that disagrees with the chain, and
//! any truncation before the last signed checkpoint.

use std::collections::HashMap;

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{PKey, Private};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::records::{decode, encode};
use super::redb_store::{engine, HISTORY};
use super::{hex, unhex, State, StoreError, Transition};

const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const AUDIT_HEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_head");
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_checkpoints");

/// The hash before the first entry.
pub(super) const GENESIS: [u8; 32] = [0; 32];

/// What an entry's hash covers, besides the previous hash.
#[derive(Debug, Serialize)]
struct Covered<'a> {
    seq: u64,
    message_id: Uuid,
    state: State,
    at: i64,
    note: &'a Option<String>,
}

/// One stored entry.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    seq: u64,
    message_id: Uuid,
    state: State,
    at: i64,
    note: Option<String>,
    prev: String,
    hash: String,
}

/// A signed statement that the chain had `seq + 1` entries ending in `hash`.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    seq: u64,
    hash: String,
    at: i64,
    signature: String,
    certificate: String,
}

fn entry_hash(prev: &[u8], covered: &Covered<'_>) -> Result<Vec<u8>, StoreError> {
    let mut data = prev.to_vec();
    data.extend(encode(covered)?);
    Ok(hash(MessageDigest::sha256(), &data)
        .map_err(|e| StoreError::Engine(e.to_string()))?
        .to_vec())
}

fn checkpoint_statement(seq: u64, hash: &str, at: i64) -> Vec<u8> {
    format!("tereze-audit-checkpoint\n{seq}\n{hash}\n{at}\n").into_bytes()
}

pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(AUDIT).map_err(engine)?;
    txn.open_table(AUDIT_HEAD).map_err(engine)?;
    txn.open_table(CHECKPOINTS).map_err(engine)?;
    Ok(())
}

/// The chain's head: the number of entries and the last hash.
fn head(txn: &WriteTransaction) -> Result<(u64, Vec<u8>), StoreError> {
    let t = txn.open_table(AUDIT_HEAD).map_err(engine)?;
    let last = t
        .get("hash")
        .map_err(engine)?
        .map(|v| v.value().to_vec())
        .unwrap_or_else(|| GENESIS.to_vec());
    let count = t
        .get("count")
        .map_err(engine)?
        .map(|v| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v.value()[..8.min(v.value().len())]);
            u64::from_be_bytes(b)
        })
        .unwrap_or(0);
    Ok((count, last))
}

/// The chain's head as a transaction sees it: read once, written back once at the end.
#[derive(Debug, Clone)]
pub(super) struct Head {
    count: u64,
    last: Vec<u8>,
    dirty: bool,
}

impl Head {
    /// A head read by another engine (PostgreSQL).
    pub(super) fn new(count: u64, last: Vec<u8>) -> Self {
        Self {
            count,
            last,
            dirty: false,
        }
    }

    pub(super) fn count(&self) -> u64 {
        self.count
    }

    pub(super) fn last(&self) -> &[u8] {
        &self.last
    }

    /// Whether entries were appended since it was read.
    pub(super) fn dirty(&self) -> bool {
        self.dirty
    }

    pub(super) fn load(txn: &WriteTransaction) -> Result<Self, StoreError> {
        let (count, last) = head(txn)?;
        Ok(Self {
            count,
            last,
            dirty: false,
        })
    }

    /// Writes the head back if entries were appended.
    pub(super) fn store(&self, txn: &WriteTransaction) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        let mut head = txn.open_table(AUDIT_HEAD).map_err(engine)?;
        head.insert("hash", self.last.as_slice()).map_err(engine)?;
        head.insert("count", self.count.to_be_bytes().as_slice())
            .map_err(engine)?;
        Ok(())
    }
}

/// The next entry of the chain after `head` for one transition: its sequence number and its
/// stored form; `head` moves past it. Shared by both engines.
pub(super) fn next_entry(
    head: &mut Head,
    message_id: Uuid,
    t: &Transition,
) -> Result<(u64, Vec<u8>), StoreError> {
    let seq = head.count;
    let covered = Covered {
        seq,
        message_id,
        state: t.state,
        at: t.at,
        note: &t.note,
    };
    let h = entry_hash(&head.last, &covered)?;
    let entry = Entry {
        seq,
        message_id,
        state: t.state,
        at: t.at,
        note: t.note.clone(),
        prev: hex(&head.last),
        hash: hex(&h),
    };
    let bytes = encode(&entry)?;
    head.count = seq + 1;
    head.last = h;
    head.dirty = true;
    Ok((seq, bytes))
}

/// Appends one transition to the chain; returns its sequence number. The caller stores the
/// head before committing.
pub(super) fn append(
    txn: &WriteTransaction,
    head: &mut Head,
    message_id: Uuid,
    t: &Transition,
) -> Result<u64, StoreError> {
    let (seq, bytes) = next_entry(head, message_id, t)?;
    txn.open_table(AUDIT)
        .map_err(engine)?
        .insert(seq, bytes.as_slice())
        .map_err(engine)?;
    Ok(seq)
}

/// A checkpoint signed by `key` over a chain of `count` (> 0) entries ending in `last`: the
/// entry it covers and its stored form.
pub(super) fn sign_checkpoint(
    count: u64,
    last: &[u8],
    key: &PKey<Private>,
    certificate: &X509,
    now: i64,
) -> Result<(u64, Vec<u8>), StoreError> {
    let seq = count.saturating_sub(1);
    let hash_hex = hex(last);
    let crypto = |e: openssl::error::ErrorStack| StoreError::Engine(e.to_string());
    let mut signer = Signer::new(MessageDigest::sha256(), key).map_err(crypto)?;
    signer
        .update(&checkpoint_statement(seq, &hash_hex, now))
        .map_err(crypto)?;
    let signature = signer.sign_to_vec().map_err(crypto)?;
    let cp = Checkpoint {
        seq,
        hash: hash_hex,
        at: now,
        signature: hex(&signature),
        certificate: String::from_utf8_lossy(&certificate.to_pem().map_err(crypto)?).into_owned(),
    };
    Ok((seq, encode(&cp)?))
}

/// Signs the current head, unless the last checkpoint already covers it. Returns the number
/// of entries covered.
pub(crate) fn checkpoint(
    txn: &WriteTransaction,
    key: &PKey<Private>,
    certificate: &X509,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    let (count, last) = head(txn)?;
    if count == 0 {
        return Ok(None);
    }
    let seq = count - 1;
    let mut checkpoints = txn.open_table(CHECKPOINTS).map_err(engine)?;
    if checkpoints.get(seq).map_err(engine)?.is_some() {
        return Ok(None);
    }
    let (seq, cp) = sign_checkpoint(count, &last, key, certificate, now)?;
    checkpoints.insert(seq, cp.as_slice()).map_err(engine)?;
    Ok(Some(count))
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditReport {
    pub(crate) entries: u64,
    pub(crate) checkpoints: u64,
    /// Entries after the last checkpoint (a truncation there cannot be proven).
    pub(crate) unsigned_tail: u64,
    pub(crate) signers: Vec<String>,
    pub(crate) problems: Vec<String>,
}

/// Everything [`verify_data`] reads, as stored (the same encodings in both engines), taken
/// from one consistent snapshot.
#[derive(Debug, Default)]
pub(super) struct AuditData {
    /// (sequence, entry) in sequence order.
    pub(super) entries: Vec<(u64, Vec<u8>)>,
    pub(super) head_hash: Option<Vec<u8>>,
    pub(super) head_count: Option<u64>,
    /// (covered entry, checkpoint) in entry order.
    pub(super) checkpoints: Vec<(u64, Vec<u8>)>,
    /// (message, transition) in (message, sequence) order.
    pub(super) history: Vec<(Uuid, Vec<u8>)>,
}

/// Reads the chain, its checkpoints and the message histories of a redb store file (opened
/// read-only by the caller after the node stopped) and verifies them.
pub(crate) fn verify(db: &redb::Database) -> Result<AuditReport, StoreError> {
    let txn = db.begin_read().map_err(engine)?;
    let mut data = AuditData::default();
    for row in txn
        .open_table(AUDIT)
        .map_err(engine)?
        .iter()
        .map_err(engine)?
    {
        let (k, v) = row.map_err(engine)?;
        data.entries.push((k.value(), v.value().to_vec()));
    }
    let head = txn.open_table(AUDIT_HEAD).map_err(engine)?;
    data.head_hash = head
        .get("hash")
        .map_err(engine)?
        .map(|h| h.value().to_vec());
    data.head_count = head.get("count").map_err(engine)?.map(|c| {
        let mut b = [0u8; 8];
        let v = c.value();
        b[..8.min(v.len())].copy_from_slice(&v[..8.min(v.len())]);
        u64::from_be_bytes(b)
    });
    for row in txn
        .open_table(CHECKPOINTS)
        .map_err(engine)?
        .iter()
        .map_err(engine)?
    {
        let (k, v) = row.map_err(engine)?;
        data.checkpoints.push((k.value(), v.value().to_vec()));
    }
    for row in txn
        .open_table(HISTORY)
        .map_err(engine)?
        .iter()
        .map_err(engine)?
    {
        let (k, v) = row.map_err(engine)?;
        data.history
            .push((Uuid::from_u128(k.value().0), v.value().to_vec()));
    }
    verify_data(data)
}

/// Walks the chain, its checkpoints and the message histories.
pub(super) fn verify_data(data: AuditData) -> Result<AuditReport, StoreError> {
    let mut problems = Vec::new();
    let mut prev = GENESIS.to_vec();
    let mut expected_seq = 0u64;
    let mut hashes: Vec<String> = Vec::new();
    let mut rebuilt: HashMap<Uuid, Vec<Transition>> = HashMap::new();
    for (seq, v) in &data.entries {
        let seq = *seq;
        let entry: Entry = match decode(v) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("entry {seq}: unreadable ({e})"));
                prev = Vec::new();
                expected_seq = seq + 1;
                hashes.push(String::new());
                continue;
            }
        };
        if seq != expected_seq {
            problems.push(format!(
                "entries {expected_seq}..{} are missing (deleted)",
                seq.saturating_sub(1)
            ));
            while (hashes.len() as u64) < seq {
                hashes.push(String::new());
            }
        }
        if entry.seq != seq {
            problems.push(format!("entry {seq}: says it is entry {}", entry.seq));
        }
        if unhex(&entry.prev).as_deref() != Some(prev.as_slice()) {
            problems.push(format!(
                "entry {seq}: does not follow the entry before it (chain broken)"
            ));
        }
        let covered = Covered {
            seq: entry.seq,
            message_id: entry.message_id,
            state: entry.state,
            at: entry.at,
            note: &entry.note,
        };
        let recomputed = entry_hash(&unhex(&entry.prev).unwrap_or_default(), &covered)?;
        if hex(&recomputed) != entry.hash {
            problems.push(format!(
                "entry {seq}: content does not match its hash (edited): message {} {}",
                entry.message_id,
                entry.state.as_str()
            ));
        }
        rebuilt
            .entry(entry.message_id)
            .or_default()
            .push(Transition {
                state: entry.state,
                at: entry.at,
                note: entry.note.clone(),
            });
        prev = unhex(&entry.hash).unwrap_or_default();
        hashes.push(entry.hash);
        expected_seq = seq + 1;
    }
    let entries = expected_seq;

    if let Some(h) = &data.head_hash {
        if *h != prev {
            problems.push(
                "the chain's recorded head is not its last entry (entries removed from the end)"
                    .into(),
            );
        }
    }
    if let Some(count) = data.head_count {
        if count != entries {
            problems.push(format!(
                "the chain records {count} entries but holds {entries} (entries removed)"
            ));
        }
    }

    let mut n_checkpoints = 0;
    let mut last_signed: Option<u64> = None;
    let mut signers = Vec::new();
    for (seq, v) in &data.checkpoints {
        let seq = *seq;
        n_checkpoints += 1;
        let cp: Checkpoint = match decode(v) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("checkpoint at entry {seq}: unreadable ({e})"));
                continue;
            }
        };
        match check_signature(&cp) {
            Ok(subject) => {
                if !signers.contains(&subject) {
                    signers.push(subject);
                }
            }
            Err(reason) => problems.push(format!("checkpoint at entry {seq}: {reason}")),
        }
        match hashes.get(seq as usize) {
            None => problems.push(format!(
                "checkpoint at entry {seq}: the chain ends before it (entries deleted)"
            )),
            Some(h) if *h != cp.hash => problems.push(format!(
                "checkpoint at entry {seq}: the chain's hash there differs from the signed one (history rewritten)"
            )),
            Some(_) => {}
        }
        last_signed = Some(last_signed.map_or(seq, |l: u64| l.max(seq)));
    }

    let mut stored: HashMap<Uuid, Vec<Transition>> = HashMap::new();
    for (id, v) in &data.history {
        stored.entry(*id).or_default().push(decode(v)?);
    }
    for (id, transitions) in stored {
        match rebuilt.remove(&id) {
            Some(chain) if chain == transitions => {}
            Some(_) => problems.push(format!(
                "message {id}: its stored history differs from the audit chain"
            )),
            None => problems.push(format!("message {id}: has a history but no audit entries")),
        }
    }
    for id in rebuilt.keys() {
        problems.push(format!(
            "message {id}: in the audit chain but its history was deleted"
        ));
    }
    problems.sort();
    problems.dedup();
    Ok(AuditReport {
        entries,
        checkpoints: n_checkpoints,
        unsigned_tail: match last_signed {
            Some(s) => entries.saturating_sub(s + 1),
            None => entries,
        },
        signers,
        problems,
    })
}

fn check_signature(cp: &Checkpoint) -> Result<String, String> {
    let cert = X509::from_pem(cp.certificate.as_bytes())
        .map_err(|e| format!("unreadable certificate ({e})"))?;
    let key = cert
        .public_key()
        .map_err(|e| format!("certificate without a usable key ({e})"))?;
    let signature = unhex(&cp.signature).ok_or("signature is not hex")?;
    let mut verifier =
        Verifier::new(MessageDigest::sha256(), &key).map_err(|e| format!("verifier: {e}"))?;
    verifier
        .update(&checkpoint_statement(cp.seq, &cp.hash, cp.at))
        .map_err(|e| format!("verifier: {e}"))?;
    match verifier.verify(&signature) {
        Ok(true) => Ok(tereze_codecs::dsig::subject_of(&cert)),
        _ => Err("signature does not verify (checkpoint forged or edited)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{test_message, Outgoing, RedbStore};
    use super::*;
    use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};

    fn signer() -> (PKey<Private>, X509) {
        let key = generate_key(KeyKind::EcP256).expect("key");
        let cert = issue_certificate(
            &CertificateSpec {
                subject: &[("CN", "KZ node")],
                not_before_days: -1,
                not_after_days: 1,
                is_ca: false,
            },
            &key,
            None,
        )
        .expect("cert");
        (key, cert)
    }

    fn msg(n: u128) -> Outgoing {
        test_message(n, "RU")
    }

    /// A store with 3 messages (2 transitions each: received, queued), checkpointed after the
    /// first 4 entries.
    fn store(dir: &tempfile::TempDir) -> RedbStore {
        let s = RedbStore::open(&dir.path().join("node.redb")).expect("opens");
        let (key, cert) = signer();
        let before = [(State::Received, None)];
        s.write(1, |t| t.enqueue(&[msg(1), msg(2)], &before))
            .expect("written");
        s.write(2, |t| t.audit_checkpoint(&key, &cert))
            .expect("checkpoint");
        s.write(3, |t| t.enqueue(&[msg(3)], &before))
            .expect("written");
        s
    }

    fn problems(s: &RedbStore) -> Vec<String> {
        verify(s.db_for_tests()).expect("verifies").problems
    }

    fn raw_write(s: &RedbStore, f: impl FnOnce(&WriteTransaction)) {
        let txn = s.db_for_tests().begin_write().expect("txn");
        f(&txn);
        txn.commit().expect("commit");
    }

    #[test]
    fn an_untouched_chain_verifies_and_reports_its_unsigned_tail() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        let r = verify(s.db_for_tests()).expect("verifies");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!((r.entries, r.checkpoints, r.unsigned_tail), (6, 1, 2));
        assert_eq!(r.signers, ["CN=KZ node"]);
    }

    #[test]
    fn an_edited_entry_is_found() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        raw_write(&s, |txn| {
            let mut t = txn.open_table(AUDIT).expect("table");
            let v = t.get(1).expect("get").expect("entry").value().to_vec();
            let edited = String::from_utf8(v)
                .expect("utf-8")
                .replace("queued", "dead");
            t.insert(1, edited.as_bytes()).expect("insert");
        });
        let p = problems(&s);
        assert!(
            p.iter()
                .any(|x| x.contains("entry 1: content does not match its hash")),
            "{p:?}"
        );
    }

    #[test]
    fn a_deleted_entry_and_a_rewritten_chain_are_found() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        raw_write(&s, |txn| {
            txn.open_table(AUDIT)
                .expect("table")
                .remove(2)
                .expect("remove");
        });
        let p = problems(&s);
        assert!(p.iter().any(|x| x.contains("missing (deleted)")), "{p:?}");
    }

    #[test]
    fn truncation_before_a_checkpoint_is_found() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        raw_write(&s, |txn| {
            let mut t = txn.open_table(AUDIT).expect("table");
            for seq in 2..6 {
                t.remove(seq).expect("remove");
            }
            // Even with the head rewritten to match, the signed checkpoint at entry 3 remains.
            let last: Entry =
                decode(t.get(1).expect("get").expect("entry").value()).expect("entry");
            let mut head = txn.open_table(AUDIT_HEAD).expect("head");
            head.insert("hash", unhex(&last.hash).expect("hex").as_slice())
                .expect("insert");
            head.insert("count", 2u64.to_be_bytes().as_slice())
                .expect("insert");
        });
        let p = problems(&s);
        assert!(
            p.iter().any(|x| x.contains("the chain ends before it")),
            "{p:?}"
        );
    }

    #[test]
    fn a_history_edited_outside_the_chain_is_found() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        raw_write(&s, |txn| {
            let mut t = txn.open_table(HISTORY).expect("table");
            let edited = Transition {
                state: State::Delivered,
                at: 1,
                note: None,
            };
            t.insert((3u128, 4u64), encode(&edited).expect("json").as_slice())
                .expect("insert");
        });
        let p = problems(&s);
        assert!(
            p.iter().any(|x| x.contains("differs from the audit chain")),
            "{p:?}"
        );
    }

    #[test]
    fn a_forged_checkpoint_is_found() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        raw_write(&s, |txn| {
            let mut t = txn.open_table(CHECKPOINTS).expect("table");
            let mut cp: Checkpoint =
                decode(t.get(3).expect("get").expect("cp").value()).expect("cp");
            cp.at += 1;
            t.insert(3, encode(&cp).expect("json").as_slice())
                .expect("insert");
        });
        let p = problems(&s);
        assert!(
            p.iter().any(|x| x.contains("signature does not verify")),
            "{p:?}"
        );
    }
}
