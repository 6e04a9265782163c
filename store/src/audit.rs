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
//!
//! A checkpoint proves nothing by itself when checked only against the certificate stored
//! with it: whoever rewrites the store can re-sign with a key of their own. Verified with
//! anchors ([`verify_data`]'s `anchors`), each checkpoint's certificate must chain to one of
//! them at the checkpoint's time. A checkpoint may also carry an RFC 3161 time-stamp token
//! over its signature value, added after it was written; the report hands each token to the
//! caller, which verifies it against the time-stamping authority (this crate knows none).

use std::collections::HashMap;

use openssl::hash::{hash, MessageDigest};
use openssl::sign::Verifier;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509StoreContext, X509};
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
    /// The signer's intermediate certificates (PEM), which a verifier with anchors needs;
    /// absent in checkpoints written before they were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    chain: Vec<String>,
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
    let pem = |c: &X509| {
        c.to_pem()
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .map_err(|e| StoreError::engine_failed(format!("audit checkpoint: {e}"), e))
    };
    let certificate = pem(certificate)?;
    let chain = key.chain().iter().map(pem).collect::<Result<_, _>>()?;
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
        certificate,
        chain,
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
    /// Each checkpoint, in entry order, with what was checked of it.
    pub checkpoint_results: Vec<CheckpointResult>,
}

/// One checkpoint as [`verify_data`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointResult {
    /// The entry it covers (its number in reports).
    pub seq: u64,
    /// When it was signed (Unix milliseconds), as it says.
    pub at: i64,
    /// Its signer's subject, when the signature verified.
    pub signer: Option<String>,
    /// The anchor its certificate chains to (its subject), when anchors were given and it does.
    pub anchor: Option<String>,
    /// The signature value: what a time-stamp token over the checkpoint covers.
    pub signature: Vec<u8>,
    /// Its time-stamp token (DER), when one was added.
    pub token: Option<Vec<u8>>,
    /// Why it failed (the first reason), if it did.
    pub failure: Option<String>,
}

/// A checkpoint that waits for its time-stamp token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitingToken {
    /// The entry it covers.
    pub seq: u64,
    /// When it was signed (Unix milliseconds).
    pub at: i64,
    /// The signature value the token must cover.
    pub signature: Vec<u8>,
}

/// The checkpoint stored as `checkpoint` at entry `seq`, as one waiting for its token.
pub(super) fn awaiting_token(seq: u64, checkpoint: &[u8]) -> Result<AwaitingToken, StoreError> {
    let cp: Checkpoint = decode(checkpoint)?;
    let signature = unhex(&cp.signature).ok_or_else(|| {
        StoreError::Engine(format!(
            "audit checkpoint at entry {seq}: signature is not hex"
        ))
    })?;
    Ok(AwaitingToken {
        seq,
        at: cp.at,
        signature,
    })
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
    /// (covered entry, time-stamp token DER) of the checkpoints that have one.
    pub(super) tokens: Vec<(u64, Vec<u8>)>,
}

/// Walks the chain, its checkpoints and the message histories. With `anchors`, each
/// checkpoint's certificate (with the intermediates stored beside it) must chain to one of
/// them at the checkpoint's time; without, it is checked against its own certificate only.
pub(super) fn verify_data(
    data: AuditData,
    anchors: Option<&[X509]>,
) -> Result<AuditReport, StoreError> {
    let tokens: HashMap<u64, Vec<u8>> = data.tokens.iter().cloned().collect();
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
    let mut results = Vec::new();
    for (seq, v) in &data.checkpoints {
        let seq = *seq;
        n_checkpoints += 1;
        let cp: Checkpoint = match decode(v) {
            Ok(c) => c,
            Err(e) => {
                let why = format!("unreadable ({e})");
                problems.push(format!("checkpoint at entry {seq}: {why}"));
                results.push(CheckpointResult {
                    seq,
                    at: 0,
                    signer: None,
                    anchor: None,
                    signature: Vec::new(),
                    token: tokens.get(&seq).cloned(),
                    failure: Some(why),
                });
                continue;
            }
        };
        let mut result = CheckpointResult {
            seq,
            at: cp.at,
            signer: None,
            anchor: None,
            signature: unhex(&cp.signature).unwrap_or_default(),
            token: tokens.get(&seq).cloned(),
            failure: None,
        };
        let mut fail = |result: &mut CheckpointResult, why: String| {
            problems.push(format!("checkpoint at entry {seq}: {why}"));
            result.failure.get_or_insert(why);
        };
        match check_signature(&cp, anchors) {
            Ok((subject, anchor)) => {
                if !signers.contains(&subject) {
                    signers.push(subject.clone());
                }
                result.signer = Some(subject);
                result.anchor = anchor;
            }
            Err(reason) => fail(&mut result, reason),
        }
        match hashes.get(seq as usize) {
            None => fail(
                &mut result,
                "the chain ends before it (entries deleted)".into(),
            ),
            Some(h) if *h != cp.hash => fail(
                &mut result,
                "the chain's hash there differs from the signed one (history rewritten)".into(),
            ),
            Some(_) => {}
        }
        results.push(result);
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
        checkpoint_results: results,
    })
}

/// The checkpoint's signer (and, with `anchors`, the anchor its certificate chains to), or
/// why it does not hold; the text becomes one of the report's problems, which is all a caller
/// does with it.
fn check_signature(
    cp: &Checkpoint,
    anchors: Option<&[X509]>,
) -> Result<(String, Option<String>), String> {
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
    // The chain before the signature: a signature by an untrusted key proves nothing, and
    // the report should say so rather than "verified".
    let anchor = match anchors {
        Some(anchors) => Some(chain_to_anchor(cp, &cert, anchors)?),
        None => None,
    };
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
        Ok((tereze_codecs::dsig::subject_of(&cert), anchor))
    } else {
        Err("signature does not verify (checkpoint forged or edited)".into())
    }
}

/// The subject of the anchor `cert` chains to at the checkpoint's time, through the
/// intermediates stored with it. An anchor may be an intermediate CA (partial chains are
/// accepted, as recognition accepts a state's document anchors).
fn chain_to_anchor(cp: &Checkpoint, cert: &X509, anchors: &[X509]) -> Result<String, String> {
    let failed = |e: openssl::error::ErrorStack| format!("certificate chain check: {e}");
    let mut intermediates = Stack::new().map_err(failed)?;
    for (i, pem) in cp.chain.iter().enumerate() {
        let c = X509::from_pem(pem.as_bytes())
            .map_err(|e| format!("unreadable intermediate certificate {i} ({e})"))?;
        intermediates.push(c).map_err(failed)?;
    }
    let mut builder = X509StoreBuilder::new().map_err(failed)?;
    for a in anchors {
        // Read again now that the checkpoint's scheme has loaded its library: a GOST
        // anchor parsed before the engine was loaded has no usable key, and OpenSSL then
        // finds no issuer for the signer.
        let a = X509::from_der(&a.to_der().map_err(failed)?).map_err(failed)?;
        builder.add_cert(a).map_err(failed)?;
    }
    builder
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(failed)?;
    let mut param = X509VerifyParam::new().map_err(failed)?;
    // The checkpoint's time, not now: a checkpoint signed while its certificate was valid
    // stays proven after the certificate expires.
    param.set_time((cp.at.div_euclid(1000)) as _);
    builder.set_param(&param).map_err(failed)?;
    let store = builder.build();
    let mut ctx = X509StoreContext::new().map_err(failed)?;
    let outcome = ctx
        .init(&store, cert, &intermediates, |c| {
            let ok = c.verify_cert()?;
            let top = c
                .chain()
                .and_then(|chain| chain.iter().last().map(tereze_codecs::dsig::subject_of));
            Ok((ok, c.error(), top))
        })
        .map_err(failed)?;
    match outcome {
        (true, _, Some(anchor)) => Ok(anchor),
        (true, _, None) => Err("certificate chain check: no chain built".into()),
        (false, err, _) => Err(format!(
            "certificate {} does not chain to an anchor at the checkpoint's time ({}): {}",
            tereze_codecs::dsig::subject_of(cert),
            time_of(cp.at),
            err.error_string()
        )),
    }
}

/// Unix milliseconds as OpenSSL prints a certificate time (GMT), for messages.
fn time_of(ms: i64) -> String {
    openssl::asn1::Asn1Time::from_unix(ms.div_euclid(1000) as _)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}
