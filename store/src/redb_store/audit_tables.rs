//! The audit chain's tables in the redb store: the entries, the chain's head, the signed
//! checkpoints and the message histories the chain must agree with. What an entry or a
//! checkpoint is, and how a chain is verified, is [`crate::audit`]'s; this module only
//! keeps and reads them.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use crate::audit::{AuditData, Head, GENESIS};
use crate::records::StoreError;

const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const AUDIT_HEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_head");
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_checkpoints");
/// Checkpoint (covered entry) → its RFC 3161 time-stamp token (DER), added after it.
const CHECKPOINT_TOKENS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("audit_checkpoint_tokens");
/// Checkpoints that wait for their token: a small table, so the node's retry reads only them.
const TOKENS_WANTED: TableDefinition<u64, ()> = TableDefinition::new("audit_tokens_wanted");
/// (message, audit sequence) → one transition: appending never rewrites earlier ones.
pub(super) const HISTORY: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("history");

fn engine(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::engine_failed(e.to_string(), e)
}

/// Why a store file's audit chain could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuditFileError {
    #[error("cannot open: {0} (is the node still running?)")]
    Open(#[source] redb::DatabaseError),
    #[error(transparent)]
    Read(#[from] StoreError),
}

pub(super) fn create(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(AUDIT).map_err(engine)?;
    txn.open_table(AUDIT_HEAD).map_err(engine)?;
    txn.open_table(CHECKPOINTS).map_err(engine)?;
    txn.open_table(HISTORY).map_err(engine)?;
    txn.open_table(CHECKPOINT_TOKENS).map_err(engine)?;
    txn.open_table(TOKENS_WANTED).map_err(engine)?;
    Ok(())
}

/// The head's entry count as stored: 8 bytes, big-endian (a shorter value reads as its
/// prefix, which the verification then reports as a count that does not match).
fn count_of(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = v.len().min(8);
    b[..n].copy_from_slice(&v[..n]);
    u64::from_be_bytes(b)
}

/// The chain's head as this transaction sees it.
pub(super) fn load_head(txn: &WriteTransaction) -> Result<Head, StoreError> {
    let t = txn.open_table(AUDIT_HEAD).map_err(engine)?;
    let last = t
        .get("hash")
        .map_err(engine)?
        .map(|v| v.value().to_vec())
        .unwrap_or_else(|| GENESIS.to_vec());
    let count = t
        .get("count")
        .map_err(engine)?
        .map(|v| count_of(v.value()))
        .unwrap_or(0);
    Ok(Head::new(count, last))
}

/// Writes the head back if entries were appended.
pub(super) fn store_head(txn: &WriteTransaction, head: &Head) -> Result<(), StoreError> {
    if !head.dirty() {
        return Ok(());
    }
    let mut t = txn.open_table(AUDIT_HEAD).map_err(engine)?;
    t.insert("hash", head.last()).map_err(engine)?;
    t.insert("count", head.count().to_be_bytes().as_slice())
        .map_err(engine)?;
    Ok(())
}

/// Appends the chain's entry `seq` and the message's transition (both in stored form).
pub(super) fn append(
    txn: &WriteTransaction,
    id: Uuid,
    seq: u64,
    entry: &[u8],
    transition: &[u8],
) -> Result<(), StoreError> {
    txn.open_table(AUDIT)
        .map_err(engine)?
        .insert(seq, entry)
        .map_err(engine)?;
    txn.open_table(HISTORY)
        .map_err(engine)?
        .insert((id.as_u128(), seq), transition)
        .map_err(engine)?;
    Ok(())
}

pub(super) fn has_checkpoint(txn: &WriteTransaction, seq: u64) -> Result<bool, StoreError> {
    let t = txn.open_table(CHECKPOINTS).map_err(engine)?;
    let found = t.get(seq).map_err(engine)?.is_some();
    Ok(found)
}

pub(super) fn put_checkpoint(
    txn: &WriteTransaction,
    seq: u64,
    checkpoint: &[u8],
) -> Result<(), StoreError> {
    txn.open_table(CHECKPOINTS)
        .map_err(engine)?
        .insert(seq, checkpoint)
        .map_err(engine)?;
    Ok(())
}

/// Marks the checkpoint at `seq` as waiting for its time-stamp token.
pub(super) fn want_token(txn: &WriteTransaction, seq: u64) -> Result<(), StoreError> {
    txn.open_table(TOKENS_WANTED)
        .map_err(engine)?
        .insert(seq, ())
        .map_err(engine)?;
    Ok(())
}

/// Keeps the checkpoint's token; it no longer waits.
pub(super) fn put_token(txn: &WriteTransaction, seq: u64, token: &[u8]) -> Result<(), StoreError> {
    txn.open_table(CHECKPOINT_TOKENS)
        .map_err(engine)?
        .insert(seq, token)
        .map_err(engine)?;
    txn.open_table(TOKENS_WANTED)
        .map_err(engine)?
        .remove(seq)
        .map_err(engine)?;
    Ok(())
}

/// Up to `limit` checkpoints waiting for their token, oldest first: (covered entry, checkpoint).
pub(super) fn awaiting_tokens(
    db: &Database,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let txn = db.begin_read().map_err(engine)?;
    let wanted = txn.open_table(TOKENS_WANTED).map_err(engine)?;
    let checkpoints = txn.open_table(CHECKPOINTS).map_err(engine)?;
    let mut out = Vec::new();
    for row in wanted.iter().map_err(engine)?.take(limit) {
        let seq = row.map_err(engine)?.0.value();
        if let Some(cp) = checkpoints.get(seq).map_err(engine)? {
            out.push((seq, cp.value().to_vec()));
        }
    }
    Ok(out)
}

/// Reads the chain, its checkpoints and the message histories in one snapshot.
pub(super) fn read(db: &Database) -> Result<AuditData, StoreError> {
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
    data.head_count = head
        .get("count")
        .map_err(engine)?
        .map(|c| count_of(c.value()));
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
    // A store written before tokens were kept has no such table: no tokens.
    match txn.open_table(CHECKPOINT_TOKENS) {
        Ok(t) => {
            for row in t.iter().map_err(engine)? {
                let (k, v) = row.map_err(engine)?;
                data.tokens.push((k.value(), v.value().to_vec()));
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(engine(e)),
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use tereze_codecs::dsig::SigningKey;
    use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};

    use super::*;
    use crate::audit::AuditReport;
    use crate::records::{decode, encode, test_message, Outgoing, State, Transition};
    use crate::{verify_audit_file, Location, Store};
    use tereze_support::hex::unhex;

    fn signer() -> SigningKey {
        signer_of(KeyKind::EcP256)
    }

    fn signer_of(kind: KeyKind) -> SigningKey {
        let (key, cert) = signer_parts(kind);
        SigningKey::new(key, Some(cert)).expect("signing key")
    }

    fn signer_parts(
        kind: KeyKind,
    ) -> (
        openssl::pkey::PKey<openssl::pkey::Private>,
        openssl::x509::X509,
    ) {
        let key = generate_key(kind).expect("key");
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

    /// A store file with 3 messages (2 transitions each: received, queued), checkpointed
    /// after the first 4 entries; closed again.
    fn store(dir: &tempfile::TempDir) -> PathBuf {
        store_signed_by(dir, &signer())
    }

    fn store_signed_by(dir: &tempfile::TempDir, key: &SigningKey) -> PathBuf {
        let path = dir.path().join("node.redb");
        let s = Store::open(&Location::File(path.clone())).expect("opens");
        let before = [(State::Received, None)];
        s.write(1, |t| t.enqueue(&[msg(1), msg(2)], &before))
            .expect("written");
        s.write(2, |t| t.audit_checkpoint(key)).expect("checkpoint");
        s.write(3, |t| t.enqueue(&[msg(3)], &before))
            .expect("written");
        path
    }

    fn verify(s: &Path) -> AuditReport {
        verify_audit_file(s).expect("verifies")
    }

    fn problems(s: &Path) -> Vec<String> {
        verify(s).problems
    }

    fn raw_write(s: &Path, f: impl FnOnce(&WriteTransaction)) {
        let db = Database::open(s).expect("opens");
        let txn = db.begin_write().expect("txn");
        f(&txn);
        txn.commit().expect("commit");
    }

    #[test]
    fn an_untouched_chain_verifies_and_reports_its_unsigned_tail() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        let r = verify(&s);
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
            let last: serde_json::Value =
                decode(t.get(1).expect("get").expect("entry").value()).expect("entry");
            let last_hash = last["hash"].as_str().expect("a hash");
            let mut head = txn.open_table(AUDIT_HEAD).expect("head");
            head.insert("hash", unhex(last_hash).expect("hex").as_slice())
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
            let mut cp: serde_json::Value =
                decode(t.get(3).expect("get").expect("cp").value()).expect("cp");
            cp["at"] = (cp["at"].as_i64().expect("a time") + 1).into();
            t.insert(3, encode(&cp).expect("json").as_slice())
                .expect("insert");
        });
        let p = problems(&s);
        assert!(
            p.iter().any(|x| x.contains("signature does not verify")),
            "{p:?}"
        );
    }

    fn edit_checkpoint(s: &Path, f: impl FnOnce(&mut serde_json::Value)) {
        raw_write(s, |txn| {
            let mut t = txn.open_table(CHECKPOINTS).expect("table");
            let mut cp: serde_json::Value =
                decode(t.get(3).expect("get").expect("cp").value()).expect("cp");
            f(&mut cp);
            t.insert(3, encode(&cp).expect("json").as_slice())
                .expect("insert");
        });
    }

    #[test]
    fn a_checkpoint_names_the_scheme_of_the_key_that_signed_it() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        let db = Database::open(&s).expect("opens");
        let txn = db.begin_read().expect("txn");
        let t = txn.open_table(CHECKPOINTS).expect("table");
        let cp: serde_json::Value =
            decode(t.get(3).expect("get").expect("cp").value()).expect("cp");
        assert_eq!(
            cp["algorithm"],
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
        );
        // XMLDSig's r || s form, 32 bytes each for P-256, not OpenSSL's DER.
        assert_eq!(cp["signature"].as_str().expect("hex").len(), 128);
    }

    #[test]
    fn a_checkpoint_written_before_schemes_were_named_still_verifies() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        let (private, cert) = signer_parts(KeyKind::EcP256);
        edit_checkpoint(&s, |cp| {
            // The form every checkpoint had before: no algorithm, a DER ECDSA-SHA-256 value.
            let statement = crate::audit::checkpoint_statement(
                cp["seq"].as_u64().expect("seq"),
                cp["hash"].as_str().expect("hash"),
                cp["at"].as_i64().expect("at"),
            );
            let mut signer =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &private)
                    .expect("signer");
            signer.update(&statement).expect("update");
            let der = signer.sign_to_vec().expect("sign");
            let cert = cert.to_pem().expect("pem");
            cp.as_object_mut().expect("object").remove("algorithm");
            cp["signature"] = tereze_support::hex::hex(&der).into();
            cp["certificate"] = String::from_utf8(cert).expect("pem").into();
        });
        let r = verify(&s);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.signers, ["CN=KZ node"]);
    }

    #[test]
    fn a_checkpoint_whose_scheme_was_removed_or_changed_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        edit_checkpoint(&s, |cp| {
            cp.as_object_mut().expect("object").remove("algorithm");
        });
        let p = problems(&s);
        assert!(
            p.iter()
                .any(|x| x.contains("checkpoint at entry 3: signature does not verify")),
            "{p:?}"
        );

        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        edit_checkpoint(&s, |cp| {
            cp["algorithm"] = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256".into();
        });
        let p = problems(&s);
        assert!(
            p.iter().any(|x| x.contains(
                "checkpoint at entry 3: signature algorithm http://www.w3.org/2001/04/xmldsig-more#rsa-sha256: http://www.w3.org/2001/04/xmldsig-more#rsa-sha256 needs"
            )),
            "{p:?}"
        );

        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        edit_checkpoint(&s, |cp| {
            cp["algorithm"] = "urn:example:no-such-scheme".into()
        });
        let p = problems(&s);
        assert!(
            p.iter()
                .any(|x| x.contains("urn:example:no-such-scheme is not available")),
            "{p:?}"
        );
    }

    #[test]
    fn a_gost_key_signs_gost_checkpoints_that_verify_and_tampering_is_found() {
        for (kind, uri, hex_len) in [
            (
                KeyKind::Gost2012_256,
                "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256",
                128,
            ),
            (
                KeyKind::Gost2012_512,
                "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512",
                256,
            ),
        ] {
            let dir = tempfile::tempdir().expect("dir");
            let s = store_signed_by(&dir, &signer_of(kind));
            let r = verify(&s);
            assert!(r.problems.is_empty(), "{uri}: {:?}", r.problems);
            assert_eq!(r.checkpoints, 1);
            edit_checkpoint(&s, |cp| {
                assert_eq!(cp["algorithm"], uri);
                assert_eq!(cp["signature"].as_str().expect("hex").len(), hex_len);
                cp["at"] = (cp["at"].as_i64().expect("a time") + 1).into();
            });
            let p = problems(&s);
            assert!(
                p.iter()
                    .any(|x| x.contains("checkpoint at entry 3: signature does not verify")),
                "{uri}: {p:?}"
            );
        }
    }

    /// A root CA, an intermediate it issued and a document signer the intermediate issued;
    /// the signing key carries the whole chain, as a node's `signer.pem` does.
    fn signer_under_intermediate() -> (SigningKey, openssl::x509::X509) {
        let ca = |subject| CertificateSpec {
            subject,
            not_before_days: -1,
            not_after_days: 30,
            is_ca: true,
        };
        let root_key = generate_key(KeyKind::EcP256).expect("key");
        let root = issue_certificate(&ca(&[("CN", "KZ root")]), &root_key, None).expect("root");
        let mid_key = generate_key(KeyKind::EcP256).expect("key");
        let mid = issue_certificate(
            &ca(&[("CN", "KZ signing CA")]),
            &mid_key,
            Some((&root, &root_key)),
        )
        .expect("mid");
        let key = generate_key(KeyKind::EcP256).expect("key");
        let cert = issue_certificate(
            &CertificateSpec {
                subject: &[("CN", "KZ node")],
                not_before_days: -1,
                not_after_days: 1,
                is_ca: false,
            },
            &key,
            Some((&mid, &mid_key)),
        )
        .expect("cert");
        let mut chain = cert.to_pem().expect("pem");
        chain.extend(mid.to_pem().expect("pem"));
        chain.extend(root.to_pem().expect("pem"));
        let key_pem = key.private_key_to_pem_pkcs8().expect("pem");
        (
            SigningKey::from_pem(&key_pem, Some(&chain)).expect("signing key"),
            root,
        )
    }

    fn store_at(dir: &tempfile::TempDir, now: i64, key: &SigningKey) -> PathBuf {
        let path = dir.path().join("node.redb");
        let s = Store::open(&Location::File(path.clone())).expect("opens");
        s.write(now, |t| t.enqueue(&[msg(1)], &[(State::Received, None)]))
            .expect("written");
        s.write(now, |t| t.audit_checkpoint(key))
            .expect("checkpoint");
        path
    }

    #[test]
    fn a_checkpoint_chains_to_its_anchor_through_the_intermediate_stored_with_it() {
        let dir = tempfile::tempdir().expect("dir");
        let (key, root) = signer_under_intermediate();
        let path = store_at(&dir, tereze_support::clock::now_ms(), &key);
        let r = crate::verify_audit_file_with(&path, Some(std::slice::from_ref(&root)))
            .expect("verifies");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.checkpoint_results.len(), 1);
        assert_eq!(
            r.checkpoint_results[0].anchor.as_deref(),
            Some("CN=KZ root"),
            "the anchor it chains to is named"
        );

        // Another state's (or an attacker's) anchor: the same signature, no chain.
        let (_, other_root) = signer_under_intermediate();
        let r = crate::verify_audit_file_with(&path, Some(&[other_root])).expect("verifies");
        assert!(
            r.problems.iter().any(|p| p.starts_with(
                "checkpoint at entry 1: certificate CN=KZ node does not chain to an anchor"
            )),
            "{:?}",
            r.problems
        );
        assert_eq!(r.checkpoint_results[0].anchor, None);
    }

    #[test]
    fn a_checkpoint_is_judged_against_its_anchor_at_its_own_time() {
        // Signed "in 1970" (2 ms), before the certificate was valid: the chain is checked at
        // the checkpoint's time, not now, so it fails.
        let dir = tempfile::tempdir().expect("dir");
        let (key, root) = signer_under_intermediate();
        let path = store_at(&dir, 2, &key);
        let r = crate::verify_audit_file_with(&path, Some(&[root])).expect("verifies");
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("checkpoint at entry 1:") && p.contains("not yet valid")),
            "{:?}",
            r.problems
        );
        // Without an anchor the stored certificate alone is checked, whatever the time.
        let r = crate::verify_audit_file_with(&path, None).expect("verifies");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    /// What an attacker who can write the store does: every checkpoint record re-signed, over
    /// the same entry, hash and time, with `key` (their own, its certificate stored instead).
    fn re_sign_checkpoints(s: &Path, key: &SigningKey) {
        raw_write(s, |txn| {
            let mut t = txn.open_table(CHECKPOINTS).expect("table");
            let records: Vec<(u64, Vec<u8>)> = t
                .iter()
                .expect("iter")
                .map(|r| {
                    let (k, v) = r.expect("row");
                    (k.value(), v.value().to_vec())
                })
                .collect();
            for (seq, record) in records {
                let cp: serde_json::Value = decode(&record).expect("cp");
                let hash = unhex(cp["hash"].as_str().expect("hash")).expect("hex");
                let at = cp["at"].as_i64().expect("at");
                let (covered, forged) =
                    crate::audit::sign_checkpoint(seq + 1, &hash, key, at).expect("signed");
                assert_eq!(covered, seq);
                t.insert(seq, forged.as_slice()).expect("insert");
            }
        });
    }

    #[test]
    fn checkpoints_re_signed_with_another_key_pass_alone_and_fail_against_the_anchor() {
        let dir = tempfile::tempdir().expect("dir");
        let (key, root) = signer_under_intermediate();
        let path = store_at(&dir, tereze_support::clock::now_ms(), &key);
        let (attacker, _) = signer_under_intermediate();
        re_sign_checkpoints(&path, &attacker);

        let alone = crate::verify_audit_file_with(&path, None).expect("verifies");
        assert!(alone.problems.is_empty(), "{:?}", alone.problems);
        let anchored = crate::verify_audit_file_with(&path, Some(&[root])).expect("verifies");
        assert_eq!(
            anchored.checkpoint_results[0]
                .failure
                .as_deref()
                .map(|f| f.starts_with("certificate CN=KZ node does not chain to an anchor")),
            Some(true),
            "{:?}",
            anchored.problems
        );
        assert!(
            anchored
                .problems
                .iter()
                .any(|p| p.starts_with("checkpoint at entry 1: certificate CN=KZ node")),
            "{:?}",
            anchored.problems
        );
    }
}
