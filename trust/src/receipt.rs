//! Signed receipts (DESIGN §2): proof that a node received exactly this message (its digest)
//! at that time, with its verdict. One signature covers a whole batch: the receiving node
//! signs the root of a Merkle tree over the batch's entries, and each message's receipt
//! carries its entry, the path from it to the root, and the signed batch. A receipt is a
//! self-contained XML document that verifies on its own, offline: with `tereze`, or with
//! `xmlsec1 --verify --id-attr:Id urn:tereze:receipt:Batch` for the signature plus the
//! Merkle path (docs/receipts.md).
//!
//! Leaf = SHA-256(0x00 ‖ exclusive C14N of `rc:Entry`); node = SHA-256(0x01 ‖ left ‖ right);
//! an odd node at the end of a level moves up unchanged (`support::merkle`, shared with the
//! time-stamp batch evidence).
//!
//! A receiver that judges a message again and changes its verdict signs a *later judgement*:
//! the same entry with an `rc:Judgement` (its number, 2 and up, and when it was made) inside
//! the signed leaf. [`ReceiptVerifier::verify`] refuses it, so it never passes for the first
//! receipt; [`ReceiptVerifier::verify_later`] takes only a judgement numbered above the one
//! held, so a replayed or older one changes nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use tereze_codecs::c14n::{self, C14nOptions, NodeSet};
use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey, TrustStore, VerifyPolicy};
use tereze_codecs::xml::{self, Document, Element, NamespaceDecl, NodeId};
use tereze_support::digest::sha256;
use tereze_support::merkle;

use crate::algorithms::{AlgorithmPolicy, NotPermitted};
use uuid::Uuid;

pub const RECEIPT_NAMESPACE: &str = "urn:tereze:receipt";
const SHA256_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// What the receiver says of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    pub message_id: Uuid,
    /// SHA-256 of the envelope bytes as received.
    pub digest: Vec<u8>,
    /// `recognised`, `rejected` or `forwarded` (a hub's acceptance).
    pub verdict: String,
    /// Reason codes for a rejection.
    pub reasons: Vec<String>,
    /// Set on a later judgement of the same message; `None` on the first receipt.
    pub judgement: Option<Judgement>,
}

/// Which judgement of a message a receipt carries, when it is not the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// 2 for the first judgement after the receipt given on arrival, and so on: each later
    /// judgement of a message has a higher number than the one before.
    pub number: u32,
    /// When the receiver judged again (the batch's `ReceivedAt` stays the arrival time).
    pub at: DateTime<Utc>,
}

/// The judgement number of a receipt: 1 for the first one, given on arrival.
pub fn judgement_number(facts: &EntryFacts) -> u32 {
    facts.judgement.map_or(1, |j| j.number)
}

/// What a verified receipt proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFacts {
    pub entry: EntryFacts,
    pub receiver: String,
    pub received_at: DateTime<Utc>,
    pub signer: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("cannot sign the receipt batch: {0}")]
    Sign(#[source] dsig::SignError),
    #[error("receipt is not well-formed XML: {0}")]
    Parse(#[from] xml::ParseError),
    #[error("receipt signature: {0}")]
    Signature(#[from] dsig::VerifyError),
    /// What is wrong with the receipt's content, as read.
    #[error("receipt {0}")]
    Malformed(String),
    #[error(
        "receipt's entry is not in the signed batch (Merkle path does not lead to the signed root)"
    )]
    NotInBatch,
    #[error("receipt is for {found}, expected {expected}")]
    Mismatch { expected: String, found: String },
    /// A later judgement where the first receipt is expected: it must never stand for it.
    #[error("receipt is a later judgement (number {0}) of its message, not the receipt given on arrival")]
    LaterJudgement(u32),
    /// A receipt given on arrival where a later judgement is expected.
    #[error("receipt is the one given on arrival, not a later judgement")]
    NotAJudgement,
    /// A later judgement no newer than the one held: a replay or an older one.
    #[error("receipt is judgement {found} of its message; judgement {held} is held already")]
    NotNewer { held: u32, found: u32 },
    /// The batch signature holds but uses an algorithm the receiver's state does not permit.
    #[error("receipt signature by {receiver}: {source}")]
    AlgorithmNotPermitted {
        receiver: String,
        #[source]
        source: NotPermitted,
    },
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The entry in its exclusive canonical form (written directly: we control every byte, and
/// a test checks it equals what the canonicaliser produces).
fn entry_c14n(e: &EntryFacts) -> String {
    let mut s = format!(
        "<rc:Entry xmlns:rc=\"{RECEIPT_NAMESPACE}\"><rc:MessageId>urn:uuid:{}</rc:MessageId><rc:Digest Algorithm=\"{SHA256_URI}\">{}</rc:Digest><rc:Verdict>{}</rc:Verdict>",
        e.message_id,
        B64.encode(&e.digest),
        escape(&e.verdict)
    );
    for r in &e.reasons {
        s.push_str(&format!("<rc:Reason>{}</rc:Reason>", escape(r)));
    }
    if let Some(j) = &e.judgement {
        // Attributes in the order exclusive C14N writes them (by name).
        s.push_str(&format!(
            "<rc:Judgement At=\"{}\" Number=\"{}\"></rc:Judgement>",
            j.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            j.number
        ));
    }
    s.push_str("</rc:Entry>");
    s
}

fn rc(local: &str) -> Element {
    Element::new(Some("rc"), local, Some(RECEIPT_NAMESPACE))
}

/// Signs a batch and returns one receipt document per entry, in order.
pub fn issue(
    key: &SigningKey,
    receiver: &str,
    received_at: DateTime<Utc>,
    entries: &[EntryFacts],
) -> Result<Vec<Vec<u8>>, ReceiptError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(e) = entries
        .iter()
        .find(|e| e.judgement.is_some_and(|j| j.number < 2))
    {
        return Err(ReceiptError::Malformed(format!(
            "for message {} would number a later judgement {}: later judgements start at 2",
            e.message_id,
            judgement_number(e)
        )));
    }
    let canon: Vec<String> = entries.iter().map(entry_c14n).collect();
    let leaves: Vec<merkle::Hash> = canon.iter().map(|c| merkle::leaf(c.as_bytes())).collect();
    let (root, paths) = merkle::tree(&leaves);

    let mut batch = rc("Batch");
    batch.namespace_decls.push(NamespaceDecl {
        prefix: Some("rc".into()),
        uri: RECEIPT_NAMESPACE.into(),
    });
    batch.set_attribute("Id", "batch");
    let mut doc = Document::with_root(batch);
    let b = doc.root();
    for (name, value) in [
        ("Receiver", receiver.to_owned()),
        (
            "ReceivedAt",
            received_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
        ("Size", entries.len().to_string()),
    ] {
        let e = doc.append_element(b, rc(name));
        doc.append_text(e, &value);
    }
    let mut r = rc("Root");
    r.set_attribute("Algorithm", SHA256_URI);
    let r = doc.append_element(b, r);
    doc.append_text(r, &B64.encode(root));
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Id("batch".into()),
        key,
        &SignOptions::default(),
    )
    .map_err(ReceiptError::Sign)?;
    let signed_batch = doc.subtree_to_xml(doc.root());

    let mut out = Vec::with_capacity(entries.len());
    for (c, path) in canon.iter().zip(&paths) {
        let mut s = String::with_capacity(c.len() + signed_batch.len() + 200);
        s.push_str("<rc:Receipt xmlns:rc=\"");
        s.push_str(RECEIPT_NAMESPACE);
        s.push_str("\" version=\"1.0\">");
        s.push_str(c);
        s.push_str("<rc:Path>");
        for step in path {
            let tag = if step.sibling_left { "Left" } else { "Right" };
            s.push_str(&format!(
                "<rc:{tag}>{}</rc:{tag}>",
                B64.encode(step.sibling)
            ));
        }
        s.push_str("</rc:Path>");
        s.push_str(&signed_batch);
        s.push_str("</rc:Receipt>");
        out.push(s.into_bytes());
    }
    Ok(out)
}

fn child(doc: &Document, parent: NodeId, local: &str) -> Result<NodeId, ReceiptError> {
    doc.child(parent, RECEIPT_NAMESPACE, local).ok_or_else(|| {
        ReceiptError::Malformed(format!("has no rc:{local} in {}", doc.describe(parent)))
    })
}

fn text(doc: &Document, parent: NodeId, local: &str) -> Result<String, ReceiptError> {
    Ok(doc.text_content(child(doc, parent, local)?))
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, ReceiptError> {
    B64.decode(s.trim())
        .map_err(|_| ReceiptError::Malformed(format!("{what} is not base64")))
}

/// The signed part of a batch: verified once, remembered by the batch's bytes.
#[derive(Debug, Clone)]
struct SignedBatch {
    receiver: String,
    received_at: DateTime<Utc>,
    root: Vec<u8>,
    signer: String,
    /// What the batch signature used, judged on every receipt: the policy may have changed
    /// since the batch was remembered.
    signature_method: String,
    digest_methods: Vec<String>,
    key: dsig::SignerKey,
}

/// Verifies receipts; remembers batches it has verified, so the receipts of one batch cost
/// one signature check.
#[derive(Debug, Default)]
pub struct ReceiptVerifier {
    batches: Mutex<HashMap<Vec<u8>, SignedBatch>>,
}

impl ReceiptVerifier {
    /// Checks `receipt` against the anchors in `trust` and the algorithms `policy` permits
    /// (the receiver state's, from the trust space), and that it is for `message_id` with
    /// envelope digest `digest` from node `receiver`, and that it is the receipt given on
    /// arrival (a later judgement is refused: [`ReceiptError::LaterJudgement`]).
    pub fn verify(
        &self,
        receipt: &[u8],
        trust: &TrustStore,
        policy: Option<&AlgorithmPolicy>,
        receiver: &str,
        message_id: Uuid,
        digest: &[u8],
    ) -> Result<ReceiptFacts, ReceiptError> {
        let facts = self.verify_any(receipt, trust, policy, receiver, message_id, digest)?;
        match facts.entry.judgement {
            Some(j) => Err(ReceiptError::LaterJudgement(j.number)),
            None => Ok(facts),
        }
    }

    /// Checks a later judgement of `message_id` as [`verify`](Self::verify) checks a receipt,
    /// against `held`, the receipt the sender holds for it (verified when it was taken; its
    /// envelope digest is the one the new judgement must name). Refused unless it is a later
    /// judgement numbered above the held one: the receipt given on arrival never passes for
    /// one, and a replayed or older judgement changes nothing.
    pub fn verify_later(
        &self,
        receipt: &[u8],
        trust: &TrustStore,
        policy: Option<&AlgorithmPolicy>,
        receiver: &str,
        message_id: Uuid,
        held: &[u8],
    ) -> Result<ReceiptFacts, ReceiptError> {
        let (held, held_receiver) = read_held(held)?;
        if held_receiver != receiver {
            return Err(ReceiptError::Mismatch {
                expected: format!("a judgement of a message sent to {held_receiver}"),
                found: format!("one from {receiver}"),
            });
        }
        if held.message_id != message_id {
            return Err(ReceiptError::Mismatch {
                expected: format!("message {message_id}"),
                found: format!("a held receipt for message {}", held.message_id),
            });
        }
        let facts = self.verify_any(receipt, trust, policy, receiver, message_id, &held.digest)?;
        let Some(j) = facts.entry.judgement else {
            return Err(ReceiptError::NotAJudgement);
        };
        let held_number = judgement_number(&held);
        if j.number <= held_number {
            return Err(ReceiptError::NotNewer {
                held: held_number,
                found: j.number,
            });
        }
        Ok(facts)
    }

    fn verify_any(
        &self,
        receipt: &[u8],
        trust: &TrustStore,
        policy: Option<&AlgorithmPolicy>,
        receiver: &str,
        message_id: Uuid,
        digest: &[u8],
    ) -> Result<ReceiptFacts, ReceiptError> {
        let limits = xml::Limits {
            max_bytes: 1 << 20,
            ..xml::Limits::default()
        };
        let doc = xml::parse_with_limits(receipt, &limits)?;
        let root = doc.root();
        if !doc
            .element(root)
            .is_some_and(|e| e.is(RECEIPT_NAMESPACE, "Receipt"))
        {
            return Err(ReceiptError::Malformed("root is not rc:Receipt".into()));
        }
        let children: Vec<NodeId> = doc.child_elements(root).collect();
        let [entry, path, batch] = children.as_slice() else {
            return Err(ReceiptError::Malformed(
                "must hold exactly rc:Entry, rc:Path and rc:Batch".into(),
            ));
        };
        for (id, name) in [(entry, "Entry"), (path, "Path"), (batch, "Batch")] {
            if !doc
                .element(*id)
                .is_some_and(|e| e.is(RECEIPT_NAMESPACE, name))
            {
                return Err(ReceiptError::Malformed(format!(
                    "expected rc:{name} at {}",
                    doc.describe(*id)
                )));
            }
        }
        let batch_key = sha256(&c14n::canonicalize(
            &doc,
            NodeSet::subtree(*batch),
            &C14nOptions::exclusive(),
        ));
        let cached = self
            .batches
            .lock()
            .ok()
            .and_then(|m| m.get(&batch_key).cloned());
        let signed = match cached {
            Some(s) => s,
            None => {
                let s = verify_batch(&doc, *batch, trust)?;
                if let Ok(mut m) = self.batches.lock() {
                    if m.len() > 4096 {
                        m.clear();
                    }
                    m.insert(batch_key, s.clone());
                }
                s
            }
        };
        // Read the entry only from its canonical bytes: exactly what the leaf hash covers.
        let entry_bytes =
            c14n::canonicalize(&doc, NodeSet::subtree(*entry), &C14nOptions::exclusive());
        let mut h = merkle::leaf(&entry_bytes);
        for step in doc.child_elements(*path) {
            let e = doc.element(step).ok_or(ReceiptError::NotInBatch)?;
            let sibling = b64(&doc.text_content(step), "a Merkle path step")?;
            // A sibling of another length cannot be a SHA-256 on the path to the root.
            let sibling: merkle::Hash = sibling
                .as_slice()
                .try_into()
                .map_err(|_| ReceiptError::NotInBatch)?;
            h = if e.is(RECEIPT_NAMESPACE, "Left") {
                merkle::node(&sibling, &h)
            } else if e.is(RECEIPT_NAMESPACE, "Right") {
                merkle::node(&h, &sibling)
            } else {
                return Err(ReceiptError::Malformed(format!(
                    "unexpected {} in rc:Path",
                    doc.describe(step)
                )));
            };
        }
        if h.as_slice() != signed.root {
            return Err(ReceiptError::NotInBatch);
        }
        if let Some(policy) = policy {
            policy
                .judge_parts(
                    &signed.signature_method,
                    &signed.digest_methods,
                    &signed.key,
                )
                .map_err(|source| ReceiptError::AlgorithmNotPermitted {
                    receiver: receiver.to_owned(),
                    source,
                })?;
        }
        let entry = entry_facts(&entry_bytes)?;
        let found_id = entry.message_id;
        let found_digest = entry.digest.clone();
        if found_id != message_id {
            return Err(ReceiptError::Mismatch {
                expected: format!("message {message_id}"),
                found: format!("message {found_id}"),
            });
        }
        if found_digest != digest {
            return Err(ReceiptError::Mismatch {
                expected: "the digest of the envelope sent".into(),
                found: "another digest".into(),
            });
        }
        if signed.receiver != receiver {
            return Err(ReceiptError::Mismatch {
                expected: format!("a receipt from {receiver}"),
                found: format!("one from {}", signed.receiver),
            });
        }
        Ok(ReceiptFacts {
            entry,
            receiver: signed.receiver,
            received_at: signed.received_at,
            signer: signed.signer,
        })
    }
}

/// The entry of a receipt, read without checking its signature: for a receipt this node
/// verified when it took it (the one it holds for a message), never for one from outside.
pub fn read_entry(receipt: &[u8]) -> Result<EntryFacts, ReceiptError> {
    read_held(receipt).map(|(entry, _)| entry)
}

/// [`read_entry`] and the state whose node signed the batch (`rc:Receiver`).
fn read_held(receipt: &[u8]) -> Result<(EntryFacts, String), ReceiptError> {
    let limits = xml::Limits {
        max_bytes: 1 << 20,
        ..xml::Limits::default()
    };
    let doc = xml::parse_with_limits(receipt, &limits)?;
    let entry = child(&doc, doc.root(), "Entry")?;
    let batch = child(&doc, doc.root(), "Batch")?;
    let receiver = text(&doc, batch, "Receiver")?;
    let bytes = c14n::canonicalize(&doc, NodeSet::subtree(entry), &C14nOptions::exclusive());
    Ok((entry_facts(&bytes)?, receiver))
}

/// What an entry says, from its canonical bytes. Only the elements the format defines, in
/// its order: an unknown element could carry a meaning this reader would drop.
fn entry_facts(entry_bytes: &[u8]) -> Result<EntryFacts, ReceiptError> {
    let entry_doc = xml::parse(entry_bytes)?;
    let e = entry_doc.root();
    let id_text = text(&entry_doc, e, "MessageId")?;
    let message_id = id_text
        .strip_prefix("urn:uuid:")
        .and_then(|u| Uuid::parse_str(u).ok())
        .ok_or_else(|| ReceiptError::Malformed(format!("MessageId {id_text:?} is not urn:uuid")))?;
    let digest = b64(&text(&entry_doc, e, "Digest")?, "Digest")?;
    let verdict = text(&entry_doc, e, "Verdict")?;
    let mut reasons = Vec::new();
    let mut judgement = None;
    for (i, c) in entry_doc.child_elements(e).enumerate() {
        let Some(x) = entry_doc.element(c) else {
            continue;
        };
        let expected = match i {
            0 => "MessageId",
            1 => "Digest",
            2 => "Verdict",
            _ if judgement.is_none() && x.is(RECEIPT_NAMESPACE, "Reason") => {
                reasons.push(entry_doc.text_content(c));
                continue;
            }
            _ if judgement.is_none() && x.is(RECEIPT_NAMESPACE, "Judgement") => {
                judgement = Some(read_judgement(x)?);
                continue;
            }
            _ => "",
        };
        if expected.is_empty() || !x.is(RECEIPT_NAMESPACE, expected) {
            return Err(ReceiptError::Malformed(format!(
                "entry holds an unexpected {}",
                entry_doc.describe(c)
            )));
        }
    }
    Ok(EntryFacts {
        message_id,
        digest,
        verdict,
        reasons,
        judgement,
    })
}

fn read_judgement(x: &Element) -> Result<Judgement, ReceiptError> {
    let number = x
        .attribute("Number")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n >= 2)
        .ok_or_else(|| {
            ReceiptError::Malformed("rc:Judgement's Number must be a whole number from 2 up".into())
        })?;
    let at = x
        .attribute("At")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or_else(|| ReceiptError::Malformed("rc:Judgement's At is not a time".into()))?
        .with_timezone(&Utc);
    Ok(Judgement { number, at })
}

fn verify_batch(
    doc: &Document,
    batch: NodeId,
    trust: &TrustStore,
) -> Result<SignedBatch, ReceiptError> {
    // Verify the batch as a document of its own: its signature must be its only one.
    let bytes = c14n::canonicalize(doc, NodeSet::subtree(batch), &C14nOptions::exclusive());
    let batch_doc = xml::parse(&bytes)?;
    let verified = dsig::verify(&batch_doc, trust, &VerifyPolicy::default())?;
    let signed = verified
        .references
        .first()
        .ok_or_else(|| ReceiptError::Malformed("batch signature has no reference".into()))?
        .document()?;
    let b = signed.root();
    if !signed
        .element(b)
        .is_some_and(|e| e.is(RECEIPT_NAMESPACE, "Batch"))
    {
        return Err(ReceiptError::Malformed(
            "the signature does not sign rc:Batch".into(),
        ));
    }
    let received_at = text(&signed, b, "ReceivedAt")?;
    let received_at = DateTime::parse_from_rfc3339(&received_at)
        .map_err(|_| ReceiptError::Malformed(format!("ReceivedAt {received_at:?} is not a time")))?
        .with_timezone(&Utc);
    Ok(SignedBatch {
        receiver: text(&signed, b, "Receiver")?,
        received_at,
        root: b64(&text(&signed, b, "Root")?, "Root")?,
        signer: verified.signer.subject,
        signature_method: verified.signature_method,
        digest_methods: verified.digest_methods,
        key: verified.key,
    })
}

/// SHA-256 of an envelope, as receipts and routes carry it.
pub fn digest(envelope: &[u8]) -> Vec<u8> {
    sha256(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tereze_codecs::pki::{self_signed_signer, KeyKind};

    fn facts(n: u128) -> EntryFacts {
        EntryFacts {
            message_id: Uuid::from_u128(n),
            digest: digest(format!("envelope {n}").as_bytes()),
            verdict: "recognised".into(),
            reasons: vec![],
            judgement: None,
        }
    }

    /// Judgement `number` of message `n`, recognised now.
    fn later(n: u128, number: u32) -> EntryFacts {
        EntryFacts {
            judgement: Some(Judgement {
                number,
                at: DateTime::from_timestamp_millis(1_800_000_000_000 + i64::from(number))
                    .expect("time"),
            }),
            ..facts(n)
        }
    }

    /// The receipt given on arrival for message `n`: rejected.
    fn first_rejection(key: &SigningKey, n: u128) -> Vec<u8> {
        let mut f = facts(n);
        f.verdict = "rejected".into();
        f.reasons = vec!["document-not-recognised".into()];
        issue(key, "RU", Utc::now(), &[f])
            .expect("issued")
            .remove(0)
    }

    #[test]
    fn a_later_judgement_is_written_in_canonical_form_and_read_back() {
        let mut f = later(1, 3);
        f.reasons = vec!["signature-invalid".into()];
        let written = entry_c14n(&f);
        let doc = xml::parse(written.as_bytes()).expect("parses");
        let canon = c14n::canonicalize(&doc, NodeSet::document(), &C14nOptions::exclusive());
        assert_eq!(String::from_utf8(canon).expect("utf-8"), written);
        assert_eq!(entry_facts(written.as_bytes()).expect("reads"), f);
    }

    #[test]
    fn a_later_judgement_verifies_against_the_receipt_held() {
        let (key, cert) = self_signed_signer(KeyKind::EcP256, "RU node", 1).expect("signer");
        let held = first_rejection(&key, 7);
        let new = issue(&key, "RU", Utc::now(), &[later(7, 2)]).expect("issued");
        let f = verify_later(&new[0], &cert, 7, &held).expect("a later judgement verifies");
        assert_eq!(f.entry.verdict, "recognised");
        assert_eq!(f.entry.judgement.map(|j| j.number), Some(2));
        // And a third judgement over the second.
        let third = issue(&key, "RU", Utc::now(), &[later(7, 3)]).expect("issued");
        let f = verify_later(&third[0], &cert, 7, &new[0]).expect("the third over the second");
        assert_eq!(judgement_number(&f.entry), 3);
    }

    #[test]
    fn a_later_judgement_never_passes_for_the_first_receipt() {
        let (key, cert) = self_signed_signer(KeyKind::EcP256, "RU node", 1).expect("signer");
        let f = later(7, 2);
        let new = issue(&key, "RU", Utc::now(), std::slice::from_ref(&f)).expect("issued");
        let e = ReceiptVerifier::default()
            .verify(&new[0], &trust(&cert), None, "RU", f.message_id, &f.digest)
            .expect_err("not a first receipt");
        assert!(matches!(e, ReceiptError::LaterJudgement(2)), "{e}");
    }

    #[test]
    fn the_first_receipt_cannot_pass_as_a_later_judgement() {
        let (key, cert) = self_signed_signer(KeyKind::EcP256, "RU node", 1).expect("signer");
        let held = first_rejection(&key, 7);
        let other_first = issue(&key, "RU", Utc::now(), &[facts(7)]).expect("issued");
        let e = verify_later(&other_first[0], &cert, 7, &held).expect_err("a first receipt");
        assert!(matches!(e, ReceiptError::NotAJudgement), "{e}");
        // Nor can a judgement number below 2 be issued.
        let e = issue(&key, "RU", Utc::now(), &[later(7, 1)]).expect_err("number 1");
        assert!(matches!(e, ReceiptError::Malformed(_)), "{e}");
    }

    #[test]
    fn a_replayed_or_older_judgement_is_refused() {
        let (key, cert) = self_signed_signer(KeyKind::EcP256, "RU node", 1).expect("signer");
        let second = issue(&key, "RU", Utc::now(), &[later(7, 2)]).expect("issued");
        let third = issue(&key, "RU", Utc::now(), &[later(7, 3)]).expect("issued");
        let v = ReceiptVerifier::default();
        let t = trust(&cert);
        let id = Uuid::from_u128(7);
        let e = v
            .verify_later(&second[0], &t, None, "RU", id, &second[0])
            .expect_err("replayed");
        assert!(
            matches!(e, ReceiptError::NotNewer { held: 2, found: 2 }),
            "{e}"
        );
        let e = v
            .verify_later(&second[0], &t, None, "RU", id, &third[0])
            .expect_err("older");
        assert!(
            matches!(e, ReceiptError::NotNewer { held: 3, found: 2 }),
            "{e}"
        );
    }

    #[test]
    fn a_later_judgement_of_another_envelope_or_message_is_refused() {
        let (key, cert) = self_signed_signer(KeyKind::EcP256, "RU node", 1).expect("signer");
        let held = first_rejection(&key, 7);
        let mut other_digest = later(7, 2);
        other_digest.digest = digest(b"another envelope");
        let new = issue(&key, "RU", Utc::now(), &[other_digest]).expect("issued");
        let e = verify_later(&new[0], &cert, 7, &held).expect_err("another digest");
        assert!(matches!(e, ReceiptError::Mismatch { .. }), "{e}");
        let new = issue(&key, "RU", Utc::now(), &[later(8, 2)]).expect("issued");
        let e = verify_later(&new[0], &cert, 8, &held)
            .expect_err("the held receipt is another message's");
        assert!(matches!(e, ReceiptError::Mismatch { .. }), "{e}");
    }

    /// `receipt` checked by a fresh verifier as RU's later judgement of message `n` over the
    /// receipt `held`, RU's certificate `cert` trusted.
    fn verify_later(
        receipt: &[u8],
        cert: &openssl::x509::X509,
        n: u128,
        held: &[u8],
    ) -> Result<ReceiptFacts, ReceiptError> {
        ReceiptVerifier::default().verify_later(
            receipt,
            &trust(cert),
            None,
            "RU",
            Uuid::from_u128(n),
            held,
        )
    }

    fn trust(cert: &openssl::x509::X509) -> TrustStore {
        let mut t = TrustStore::new();
        t.add_certificate(cert.clone());
        t
    }

    #[test]
    fn the_written_entry_is_its_exclusive_canonical_form() {
        let mut f = facts(1);
        f.reasons = vec!["signature-invalid".into(), "a<b&c".into()];
        let written = entry_c14n(&f);
        let doc = xml::parse(written.as_bytes()).expect("parses");
        let canon = c14n::canonicalize(&doc, NodeSet::document(), &C14nOptions::exclusive());
        assert_eq!(String::from_utf8(canon).expect("utf-8"), written);
    }

    #[test]
    fn every_receipt_of_a_batch_verifies_on_its_own() {
        let (key, cert) = self_signed_signer(KeyKind::EcP256, "RU node", 1).expect("signer");
        for n in [1usize, 2, 3, 5, 8, 13] {
            let entries: Vec<EntryFacts> = (0..n as u128).map(facts).collect();
            let receipts = issue(&key, "RU", Utc::now(), &entries).expect("issued");
            assert_eq!(receipts.len(), n);
            for (r, e) in receipts.iter().zip(&entries) {
                // A fresh verifier each time: nothing cached.
                let v = ReceiptVerifier::default();
                let f = v
                    .verify(r, &trust(&cert), None, "RU", e.message_id, &e.digest)
                    .expect("verifies");
                assert_eq!(f.entry, *e);
                assert_eq!(f.receiver, "RU");
            }
        }
    }

    #[test]
    fn a_receipt_for_another_message_or_digest_or_receiver_is_refused() {
        let (key, cert) = self_signed_signer(KeyKind::EcP256, "RU node", 1).expect("signer");
        let entries: Vec<EntryFacts> = (0..4).map(facts).collect();
        let receipts = issue(&key, "RU", Utc::now(), &entries).expect("issued");
        let v = ReceiptVerifier::default();
        let t = trust(&cert);
        let e = v
            .verify(
                &receipts[0],
                &t,
                None,
                "RU",
                Uuid::from_u128(1),
                &entries[0].digest,
            )
            .expect_err("other id");
        assert!(matches!(e, ReceiptError::Mismatch { .. }), "{e}");
        let e = v
            .verify(
                &receipts[0],
                &t,
                None,
                "RU",
                entries[0].message_id,
                &entries[1].digest,
            )
            .expect_err("other digest");
        assert!(matches!(e, ReceiptError::Mismatch { .. }), "{e}");
        let e = v
            .verify(
                &receipts[0],
                &t,
                None,
                "BY",
                entries[0].message_id,
                &entries[0].digest,
            )
            .expect_err("other receiver");
        assert!(matches!(e, ReceiptError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn an_edited_entry_or_path_or_batch_is_refused() {
        let (key, cert) = self_signed_signer(KeyKind::EcP256, "RU node", 1).expect("signer");
        let entries: Vec<EntryFacts> = (0..4).map(facts).collect();
        let receipts = issue(&key, "RU", Utc::now(), &entries).expect("issued");
        let r = String::from_utf8(receipts[2].clone()).expect("utf-8");
        let t = trust(&cert);
        let check = |s: String| {
            ReceiptVerifier::default().verify(
                s.as_bytes(),
                &t,
                None,
                "RU",
                entries[2].message_id,
                &entries[2].digest,
            )
        };
        let rejected = r.replace("<rc:Verdict>recognised", "<rc:Verdict>rejected");
        assert!(matches!(check(rejected), Err(ReceiptError::NotInBatch)));
        let first_step = r
            .find("<rc:Left>")
            .or_else(|| r.find("<rc:Right>"))
            .expect("a step");
        let mut broken = r.clone();
        broken.replace_range(first_step + 10..first_step + 11, "A");
        assert!(check(broken).is_err());
        let later = r.replace("<rc:Size>4", "<rc:Size>5");
        assert!(matches!(check(later), Err(ReceiptError::Signature(_))));
        let (_, other) = self_signed_signer(KeyKind::EcP256, "impostor", 1).expect("signer");
        let e = ReceiptVerifier::default()
            .verify(
                r.as_bytes(),
                &trust(&other),
                None,
                "RU",
                entries[2].message_id,
                &entries[2].digest,
            )
            .expect_err("untrusted signer");
        assert!(matches!(e, ReceiptError::Signature(_)), "{e}");
    }

    #[test]
    fn a_receipt_signed_with_an_algorithm_the_receivers_state_does_not_permit_is_refused() {
        let (key, cert) = self_signed_signer(KeyKind::EcP256, "RU node", 1).expect("signer");
        let entries: Vec<EntryFacts> = (0..2).map(facts).collect();
        let receipts = issue(&key, "RU", Utc::now(), &entries).expect("issued");
        let t = trust(&cert);
        let policy = |signature: &str| {
            AlgorithmPolicy::read(&crate::FileAlgorithms {
                signature: Some(vec![signature.into()]),
                ..crate::FileAlgorithms::default()
            })
            .expect("policy")
        };
        let v = ReceiptVerifier::default();
        let check = |r: &[u8], e: &EntryFacts, p: Option<&AlgorithmPolicy>| {
            v.verify(r, &t, p, "RU", e.message_id, &e.digest)
        };
        check(&receipts[0], &entries[0], Some(&policy("ecdsa-sha256"))).expect("permitted");
        // The batch is remembered now; the policy is still judged for its next receipt.
        let e = check(&receipts[1], &entries[1], Some(&policy("gost2012-256")))
            .expect_err("not permitted");
        assert_eq!(
            e.to_string(),
            "receipt signature by RU: signature method ecdsa-sha256 is not permitted \
             (permitted: gost2012-256)"
        );
        assert!(matches!(e, ReceiptError::AlgorithmNotPermitted { .. }));
        check(&receipts[1], &entries[1], None).expect("no policy, no restriction");
    }
}
