//! The tamper-evident audit log: every state change of every message, appended in the same
//! transaction as the change to a hash chain (each entry's hash covers the previous hash and
//! the entry), with checkpoints signed by the node's key. [`verify_data`] walks the chain and
//! finds any edited, inserted or deleted entry, any history that disagrees with the chain, and
//! any truncation before the last signed checkpoint.
//!
//! This module knows no engine: it makes entries and checkpoints in their stored form and
//! verifies what an engine read ([`AuditData`]); each engine keeps them in its own tables.
//!
//! A checkpoint is signed with the node's document-signing key through the same scheme choice
//! as its XML signatures (`dsig::sign_bytes`), so a GOST key signs GOST checkpoints and a key
//! in a token signs without leaving it; the checkpoint names its scheme's URI, and one without
//! a URI (written before checkpoints named one) is ECDSA or RSA over SHA-256.

use std::collections::HashMap;

use openssl::hash::{hash, MessageDigest};
use openssl::sign::Verifier;
use openssl::x509::X509;
use serde::{Deserialize, Serialize};
use tereze_codecs::dsig::{self, Algorithms, SignOptions, SigningKey};
use uuid::Uuid;

use super::records::{decode, encode, State, StoreError, Transition};
use tereze_support::hex::{hex, unhex};

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

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
    /// The `SignatureMethod` URI of the scheme that signed; absent in checkpoints written
    /// before it was recorded, which are ECDSA or RSA PKCS#1 v1.5 over SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    algorithm: Option<String>,
    signature: String,
    certificate: String,
}

fn entry_hash(prev: &[u8], covered: &Covered<'_>) -> Result<Vec<u8>, StoreError> {
    let mut data = prev.to_vec();
    data.extend(encode(covered)?);
    Ok(hash(MessageDigest::sha256(), &data)
        .map_err(|e| StoreError::engine_failed(e.to_string(), e))?
        .to_vec())
}

pub(crate) fn checkpoint_statement(seq: u64, hash: &str, at: i64) -> Vec<u8> {
    format!("tereze-audit-checkpoint\n{seq}\n{hash}\n{at}\n").into_bytes()
}

/// The chain's head as a transaction sees it: read once, written back once at the end.
#[derive(Debug, Clone)]
pub struct Head {
    count: u64,
    last: Vec<u8>,
    dirty: bool,
}

impl Head {
    /// The head as an engine read it: `count` entries, the last one's hash `last`
    /// ([`GENESIS`] before the first).
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
}

/// The next entry of the chain after `head` for one transition: its sequence number and its
/// stored form; `head` moves past it.
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

/// A checkpoint signed by `key` (which must carry its certificate) over a chain of `count`
/// (> 0) entries ending in `last`: the entry it covers and its stored form.
pub(super) fn sign_checkpoint(
    count: u64,
    last: &[u8],
    key: &SigningKey,
    now: i64,
) -> Result<(u64, Vec<u8>), StoreError> {
    let seq = count.saturating_sub(1);
    let hash_hex = hex(last);
    let certificate = key.certificate().ok_or_else(|| {
        StoreError::Engine(
            "audit checkpoint: the signing key has no certificate (signing.certificate)".into(),
        )
    })?;
    let certificate = certificate
        .to_pem()
        .map_err(|e| StoreError::engine_failed(format!("audit checkpoint: {e}"), e))?;
    let signature = dsig::sign_bytes(
        key,
        &checkpoint_statement(seq, &hash_hex, now),
        &SignOptions::default(),
    )
    .map_err(|e| StoreError::engine_failed(format!("signing the audit checkpoint: {e}"), e))?;
    let cp = Checkpoint {
        seq,
        hash: hash_hex,
        at: now,
        algorithm: Some(signature.algorithm),
        signature: hex(&signature.value),
        certificate: String::from_utf8_lossy(&certificate).into_owned(),
    };
    Ok((seq, encode(&cp)?))
}

/// What [`verify_data`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub entries: u64,
    pub checkpoints: u64,
    /// Entries after the last checkpoint (a truncation there cannot be proven).
    pub unsigned_tail: u64,
    pub signers: Vec<String>,
    pub problems: Vec<String>,
}

/// Everything [`verify_data`] reads, as stored (the same encodings in both engines), taken
/// from one consistent snapshot.
#[derive(Debug, Default)]
pub struct AuditData {
    /// (sequence, entry) in sequence order.
    pub(super) entries: Vec<(u64, Vec<u8>)>,
    pub(super) head_hash: Option<Vec<u8>>,
    pub(super) head_count: Option<u64>,
    /// (covered entry, checkpoint) in entry order.
    pub(super) checkpoints: Vec<(u64, Vec<u8>)>,
    /// (message, transition) in (message, sequence) order.
    pub(super) history: Vec<(Uuid, Vec<u8>)>,
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

/// The checkpoint's signer, or why its signature does not hold; the text becomes one of the
/// report's problems, which is all a caller does with it.
fn check_signature(cp: &Checkpoint) -> Result<String, String> {
    // The scheme before the certificate: it loads its library (the GOST engine), without
    // which OpenSSL parses a GOST certificate but never decodes its key.
    let scheme = match &cp.algorithm {
        Some(uri) => Some(
            dsig::bytes_scheme(&Algorithms::default(), uri)
                .map_err(|e| format!("signature algorithm {uri}: {e}"))?,
        ),
        None => None,
    };
    let cert = X509::from_pem(cp.certificate.as_bytes())
        .map_err(|e| format!("unreadable certificate ({e})"))?;
    let signature = unhex(&cp.signature).ok_or("signature is not hex")?;
    let statement = checkpoint_statement(cp.seq, &cp.hash, cp.at);
    let verified = match scheme {
        Some(scheme) => dsig::verify_bytes(&*scheme, &cert, &statement, &signature)
            .map_err(|e| format!("signature algorithm {}: {e}", scheme.uri()))?,
        None => {
            // Written before checkpoints named their scheme: OpenSSL's own encoding (DER for
            // ECDSA) with SHA-256, the one scheme the node used then.
            let key = cert
                .public_key()
                .map_err(|e| format!("certificate without a usable key ({e})"))?;
            let mut verifier = Verifier::new(MessageDigest::sha256(), &key)
                .map_err(|e| format!("verifier: {e}"))?;
            verifier
                .update(&statement)
                .map_err(|e| format!("verifier: {e}"))?;
            verifier.verify(&signature).unwrap_or(false)
        }
    };
    if verified {
        Ok(tereze_codecs::dsig::subject_of(&cert))
    } else {
        Err("signature does not verify (checkpoint forged or edited)".into())
    }
}
