//! Every change to the store, written once for both engines: what each transition of a
//! message checks, writes and records in its history and the audit chain, over the storage
//! primitives of [`EngineTxn`].
//!
//! A request that is refused (an id already queued, a message not in the outbox) is refused
//! before it writes anything, so one transaction can carry the requests of many callers and
//! still give each its own answer.

use uuid::Uuid;

use super::audit;
use super::engine::{Area, EngineTxn};
use super::events::{self, Event, Retention};
use super::records::{
    received_note, requeue_refusal, Accepted, Change, Incoming, Meta, OutboxEntry, Outgoing,
    Payload, SetMember, State, StoreError, Transition, SET_DIRECTION,
};
use tereze_support::hex::hex;

/// One write transaction: its changes become durable together at commit.
pub struct Txn<'a> {
    raw: &'a mut dyn EngineTxn,
    changes: Vec<Change>,
    /// The newest event this transaction wrote.
    last_event: Option<u64>,
}

impl<'a> Txn<'a> {
    pub(super) fn new(raw: &'a mut dyn EngineTxn) -> Self {
        Self {
            raw,
            changes: Vec::new(),
            last_event: None,
        }
    }

    /// The newest event written, for readers waiting for the log to grow once committed.
    pub(super) fn last_event(&self) -> Option<u64> {
        self.last_event
    }

    /// The state changes made, for subscribers once committed.
    pub(super) fn into_changes(self) -> Vec<Change> {
        self.changes
    }
}

impl Txn<'_> {
    /// The transaction's clock (Unix milliseconds).
    pub fn now(&self) -> i64 {
        self.raw.now()
    }

    /// Appends a transition to a message's history and to the audit chain.
    fn record(&mut self, id: Uuid, state: State, note: Option<String>) -> Result<(), StoreError> {
        let transition = Transition {
            state,
            at: self.raw.now(),
            note,
        };
        let (seq, entry) = audit::next_entry(self.raw.audit_head()?, id, &transition)?;
        self.raw.append(id, seq, entry, &transition)?;
        // A trader register record is no message: its event says so.
        let (kind, message_id) = match state {
            State::Changed => (events::REGISTER, None),
            _ => (events::MESSAGE, Some(id)),
        };
        self.append_event(Event {
            seq: 0,
            at: transition.at,
            kind: kind.to_owned(),
            subject: id.hyphenated().to_string(),
            message_id,
            state: Some(state.as_str().to_owned()),
            note: transition.note.clone(),
            body: None,
        })?;
        self.changes.push(Change {
            message_id: id,
            transition,
        });
        Ok(())
    }

    /// Appends `e` to the event log, numbered: its sequence number.
    fn append_event(&mut self, mut e: Event) -> Result<u64, StoreError> {
        self.raw.append_event(&mut e)?;
        self.last_event = Some(e.seq);
        Ok(e.seq)
    }

    /// Writes an event of `kind` about `subject` (with `body`, if not JSON `null`) in this
    /// transaction, so it is committed with the change it reports or not at all: its sequence
    /// number. For kinds other parts of the node add (docs/notifications.md lists them).
    pub fn event(
        &mut self,
        kind: &str,
        subject: &str,
        body: serde_json::Value,
    ) -> Result<u64, StoreError> {
        let at = self.raw.now();
        self.append_event(Event {
            seq: 0,
            at,
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            message_id: None,
            state: None,
            note: None,
            body: (!body.is_null()).then_some(body),
        })
    }

    /// Drops the events `retention` no longer keeps, never the newest: how many.
    pub fn compact_events(&mut self, retention: &Retention) -> Result<u64, StoreError> {
        let now = self.raw.now();
        self.raw.compact_events(retention, now)
    }

    /// Keeps a reader's cursor (a webhook's last acknowledged sequence number), written in
    /// the transaction that follows its acknowledgement.
    pub fn set_event_cursor(&mut self, reader: &str, seq: u64) -> Result<(), StoreError> {
        self.raw.put_event_cursor(reader, seq)
    }

    /// Records a transition of `id` in its history and the audit log (who did what: the note).
    pub fn note(&mut self, id: Uuid, state: State, note: String) -> Result<(), StoreError> {
        self.record(id, state, Some(note))
    }

    /// Queues messages for their peers; all or none. `before` are transitions recorded first
    /// (received, translated, signed) for every message.
    pub fn enqueue(
        &mut self,
        batch: &[Outgoing],
        before: &[(State, Option<String>)],
    ) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = batch.iter().find(|m| !seen.insert(m.message_id)) {
            return Err(StoreError::AlreadyQueued(twice.message_id));
        }
        let ids: Vec<Uuid> = batch.iter().map(|m| m.message_id).collect();
        if let Some(queued) = self.raw.queued_among(&ids)? {
            return Err(StoreError::AlreadyQueued(queued));
        }
        if batch.is_empty() {
            return Ok(());
        }
        let first = self.raw.next_sequences(batch.len() as u64)?;
        let now = self.raw.now();
        let entries: Vec<OutboxEntry> = batch
            .iter()
            .zip(first..)
            .map(|(m, sequence)| OutboxEntry {
                message: m.clone(),
                sequence,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
            })
            .collect();
        let metas: Vec<Meta> = batch
            .iter()
            .map(|m| Meta {
                direction: "out".into(),
                peer: m.peer.clone(),
                conversation: Some(m.conversation_id),
                ..Meta::default()
            })
            .collect();
        self.raw.put_outbox(&entries, &metas)?;
        for m in batch {
            for (state, note) in before {
                self.record(m.message_id, *state, note.clone())?;
            }
            self.record(m.message_id, State::Queued, Some(format!("for {}", m.peer)))?;
        }
        Ok(())
    }

    /// Takes a message out of the outbox, with its payload.
    fn take_from_outbox(&mut self, id: Uuid) -> Result<OutboxEntry, StoreError> {
        self.raw.take_outbox(id)?.ok_or(StoreError::NotQueued(id))
    }

    /// Records a failed attempt and when to try again; returns the attempts so far. On
    /// PostgreSQL this replica's claim on the message ends.
    pub fn failed_attempt(
        &mut self,
        id: Uuid,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<u32, StoreError> {
        self.raw
            .count_attempt(id, error, next_attempt_at)?
            .ok_or(StoreError::NotQueued(id))
    }

    /// The final recipient acknowledged the message with `receipt` (its verdict is `verdict`,
    /// with the receipt's reason codes `reasons`, kept in its submission set's record when it
    /// is a rejection): it leaves the outbox, or stops being awaited when it went through a
    /// hub.
    pub fn delivered(
        &mut self,
        id: Uuid,
        receipt: &[u8],
        verdict: State,
        reasons: &[String],
        note: Option<String>,
    ) -> Result<(), StoreError> {
        if !self.raw.drop_outbox(id)? && !self.raw.drop_awaiting(id)? {
            return Err(StoreError::NotAwaited(id));
        }
        self.raw.put_receipt(id, receipt)?;
        self.record(id, State::Delivered, note)?;
        if matches!(verdict, State::Recognised | State::Rejected) {
            self.record(id, verdict, None)?;
            self.set_member_judged(id, Some(verdict.as_str()), reasons, None)?;
        }
        Ok(())
    }

    /// A hub took the message for forwarding: it leaves the outbox and its end receipt is
    /// awaited.
    pub fn forwarded(
        &mut self,
        id: Uuid,
        recipient: &str,
        hub_receipt: &[u8],
        note: String,
    ) -> Result<(), StoreError> {
        let entry = self.take_from_outbox(id)?;
        let digest = match &entry.message.payload {
            Payload::Envelope { envelope, .. } => tereze_support::digest::sha256(envelope),
            Payload::Receipt { .. } => Vec::new(),
        };
        self.raw.put_awaiting(id, recipient, &digest, hub_receipt)?;
        self.record(id, State::Sent, Some(note))
    }

    /// Takes a message out of the outbox as `Expired` or `Dead`, keeping it for a requeue.
    pub fn park(&mut self, id: Uuid, state: State, note: &str) -> Result<(), StoreError> {
        let entry = self.take_from_outbox(id)?;
        self.raw.put_parked(&entry)?;
        self.record(id, state, Some(note.to_owned()))?;
        self.set_member_judged(
            id,
            Some(crate::sets::UNDELIVERED),
            &[state.as_str().to_owned()],
            Some(note),
        )
    }

    /// An operator's requeue of a parked message: back at the end of its peer's queue, with
    /// fresh attempts; returns its peer. Refused ([`StoreError::SignedExpiryPassed`], before
    /// any write) once the envelope's signed `ExpiresAt` has passed.
    pub fn requeue(&mut self, id: Uuid) -> Result<String, StoreError> {
        let mut entry = self
            .raw
            .parked_entry(id)?
            .ok_or(StoreError::NotParked(id))?;
        if let Some(refusal) = requeue_refusal(&entry, self.raw.now()) {
            return Err(refusal);
        }
        self.raw.drop_parked(id)?;
        entry.sequence = self.raw.next_sequences(1)?;
        entry.attempts = 0;
        entry.next_attempt_at = self.raw.now();
        entry.last_error = None;
        let peer = entry.message.peer.clone();
        self.raw.put_outbox(std::slice::from_ref(&entry), &[])?;
        self.record(id, State::Queued, Some("requeued by the operator".into()))?;
        self.set_member_judged(id, None, &[], None)?;
        Ok(peer)
    }

    /// Stores a received message once: a redelivery stores nothing and returns the first
    /// receipt (see [`Accepted`]). Recognised messages go to the inbox, rejected ones to
    /// quarantine, a tester state's to the conformance area whatever their verdict; a hub's
    /// (`forward`) go to its outbox instead.
    pub fn accept(
        &mut self,
        m: &Incoming,
        forward: Option<&Outgoing>,
    ) -> Result<Accepted, StoreError> {
        let id = m.message_id;
        if let Some((receipt, first)) = self.raw.received(id)? {
            let first = self.earlier_digest(id, first)?;
            if !first.is_empty() && !m.digest.is_empty() && first != m.digest {
                return Ok(Accepted::OtherDigest { first });
            }
            return Ok(Accepted::Duplicate { receipt });
        }
        match forward {
            Some(out) => self.enqueue(
                std::slice::from_ref(out),
                &[(State::Received, Some(format!("from {}", m.sender)))],
            )?,
            None => self.raw.put_meta(
                id,
                &Meta {
                    direction: "in".into(),
                    peer: m.sender.clone(),
                    conversation: None,
                    ..Meta::default()
                },
            )?,
        }
        self.raw.put_received(m, forward.is_none())?;
        if forward.is_some() {
            return Ok(Accepted::New);
        }
        let area = if m.conformance {
            Area::Conformance
        } else if m.verdict == "recognised" {
            Area::Inbox
        } else {
            Area::Quarantine
        };
        self.raw.place(id, area)?;
        self.record(id, State::Received, Some(received_note(m)))?;
        if m.verdict == "recognised" {
            self.record(id, State::Recognised, None)?;
        } else {
            let reasons = format!("reasons: {}", m.reasons.join(", "));
            self.record(id, State::Rejected, Some(reasons))?;
        }
        Ok(Accepted::New)
    }

    /// The envelope digest (hex) kept for a received message: `kept`, or for rows written
    /// before digests were kept, that of its stored envelope; empty when neither is known.
    fn earlier_digest(&mut self, id: Uuid, kept: String) -> Result<String, StoreError> {
        if !kept.is_empty() {
            return Ok(kept);
        }
        Ok(self
            .raw
            .received_envelope(id)?
            .map(|e| hex(&tereze_support::digest::sha256(&e)))
            .unwrap_or_default())
    }

    /// A quarantined message found acceptable on a second look (after a trust-space update)
    /// moves to the inbox. Refused when it is not in quarantine.
    pub fn release_from_quarantine(&mut self, id: Uuid, note: String) -> Result<(), StoreError> {
        if !self.raw.unplace(id, Area::Quarantine)? {
            return Err(StoreError::NotQuarantined(id));
        }
        self.raw.place(id, Area::Inbox)?;
        self.record(id, State::Recognised, Some(note))
    }

    /// An operator's purge of a message held in the conformance area: it leaves the area, its
    /// envelope is dropped, and the purge is recorded in its history and the audit chain. The
    /// deduplication memory and the receipt stay, so a redelivery still gets its first
    /// receipt and is not stored again.
    pub fn purge_conformance(&mut self, id: Uuid, note: String) -> Result<(), StoreError> {
        if !self.raw.unplace(id, Area::Conformance)? {
            return Err(StoreError::NotConformance(id));
        }
        self.raw.drop_envelope(id)?;
        self.record(id, State::Purged, Some(note))
    }

    /// The national system has taken the message: it leaves the inbox (and is still
    /// remembered for deduplication).
    pub fn ack_inbox(&mut self, id: Uuid) -> Result<(), StoreError> {
        if !self.raw.unplace(id, Area::Inbox)? {
            return Err(StoreError::NotInInbox(id));
        }
        Ok(())
    }

    /// Adds a message's common process and document type to its search row (written by
    /// `enqueue` or `accept` before, in the same transaction or earlier; none: nothing done).
    pub fn describe(
        &mut self,
        id: Uuid,
        process: &str,
        document_type: &str,
    ) -> Result<(), StoreError> {
        let Some(mut meta) = self.raw.meta(id)? else {
            return Ok(());
        };
        meta.process = Some(process.to_owned());
        meta.document_type = Some(document_type.to_owned());
        self.raw.put_meta(id, &meta)
    }

    /// Signs an audit checkpoint over the chain's head, unless the last one covers it; the
    /// number of entries covered. `key` must carry its certificate, which the checkpoint keeps
    /// to be verified by; it signs with the scheme its XML signatures use.
    pub fn audit_checkpoint(
        &mut self,
        key: &tereze_codecs::dsig::SigningKey,
    ) -> Result<Option<u64>, StoreError> {
        let head = self.raw.audit_head()?;
        let (count, last) = (head.count(), head.last().to_vec());
        if count == 0 || self.raw.has_checkpoint(count - 1)? {
            return Ok(None);
        }
        let (seq, checkpoint) = audit::sign_checkpoint(count, &last, key, self.raw.now())?;
        self.raw.put_checkpoint(seq, &checkpoint)?;
        Ok(Some(count))
    }

    /// Marks the checkpoint covering entry `seq` as waiting for an RFC 3161 time-stamp token,
    /// in the transaction that signs it, so a crash never loses the wish.
    pub fn want_checkpoint_token(&mut self, seq: u64) -> Result<(), StoreError> {
        self.raw.want_checkpoint_token(seq)
    }

    /// Keeps the time-stamp token (DER) obtained for the checkpoint covering entry `seq`; it
    /// no longer waits. The caller has checked that the token covers the checkpoint.
    pub fn record_checkpoint_token(&mut self, seq: u64, token: &[u8]) -> Result<(), StoreError> {
        if !self.raw.has_checkpoint(seq)? {
            return Err(StoreError::Engine(format!(
                "a time-stamp token for a checkpoint at entry {seq}, which does not exist"
            )));
        }
        self.raw.put_checkpoint_token(seq, token)
    }

    /// Keeps the CRL set accepted from `url` (replacing the one held).
    pub fn record_crls(&mut self, url: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.raw.put_crls(url, bytes)
    }

    /// Keeps a signed trust space that is about to be applied, with its event.
    pub fn record_trust_space(&mut self, version: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.raw.put_trust_space(version, bytes)?;
        self.event(
            events::TRUST_SPACE,
            &version.to_string(),
            serde_json::Value::Null,
        )
        .map(|_| ())
    }

    /// Adds or replaces records of this state's trader register (all or none): (trader id,
    /// record) pairs, each record as the caller encodes it.
    pub fn put_traders(&mut self, records: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.raw.put_traders(records)
    }

    /// Keeps a verified answer of another state's node about one of its traders.
    pub fn record_trader_answer(
        &mut self,
        id: &str,
        at_ms: i64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.raw.put_trader_answer(id, at_ms, bytes)
    }

    /// Forgets the kept answers about another state's trader `id`, or about all of them
    /// (`None`), so that the next resolution asks the owner again: how many were forgotten.
    pub fn forget_trader_answers(&mut self, id: Option<&str>) -> Result<u64, StoreError> {
        self.raw.forget_trader_answers(id)
    }

    /// Keeps a verified change set that is about to be put in force.
    pub fn record_change_set(
        &mut self,
        directory: &str,
        number: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.raw.put_change_set(directory, number, bytes)?;
        self.event(
            events::CHANGE_SET,
            &format!("{directory}/{number}"),
            serde_json::json!({ "directory": directory, "number": number }),
        )
        .map(|_| ())
    }

    /// Keeps a submission set: its record under `set` and, on each member's search row
    /// (written by `enqueue` before, in the same transaction), the set it belongs to. Refused
    /// when the id is taken or a member is unknown.
    pub fn record_set(&mut self, set: Uuid, members: &[SetMember]) -> Result<(), StoreError> {
        if self.raw.meta(set)?.is_some() {
            return Err(StoreError::Engine(format!(
                "submission set {set}: the id is taken"
            )));
        }
        for m in members {
            let mut meta = self
                .raw
                .meta(m.message_id)?
                .ok_or(StoreError::NotQueued(m.message_id))?;
            meta.set = Some(set);
            self.raw.put_meta(m.message_id, &meta)?;
        }
        self.raw.put_meta(
            set,
            &Meta {
                direction: SET_DIRECTION.into(),
                members: members.to_vec(),
                ..Meta::default()
            },
        )
    }

    /// A later judgement of a message this node sent, verified by the caller against the
    /// receipt held: it becomes the message's receipt, and its verdict (`Recognised` or
    /// `Rejected`, with the receipt's reason codes `reasons`) a transition with `note`.
    pub fn judged_again(
        &mut self,
        id: Uuid,
        receipt: &[u8],
        verdict: State,
        reasons: &[String],
        note: String,
    ) -> Result<(), StoreError> {
        self.raw.put_receipt(id, receipt)?;
        self.record(id, verdict, Some(note.clone()))?;
        self.set_member_judged(id, Some(verdict.as_str()), reasons, Some(&note))
    }

    /// Keeps the new verdict of `id` in its submission set's record, if it is in one, with
    /// the reasons of a refusing verdict and the note of its transition, and writes a
    /// [`crate::sets::SET_DECIDED`] event when the set's result changes with it.
    fn set_member_judged(
        &mut self,
        id: Uuid,
        verdict: Option<&str>,
        reasons: &[String],
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        let Some(set) = self.raw.meta(id)?.and_then(|m| m.set) else {
            return Ok(());
        };
        let Some(mut record) = self.raw.meta(set)? else {
            return Ok(());
        };
        let before = crate::sets::result(&record.members);
        let Some(member) = record.members.iter_mut().find(|m| m.message_id == id) else {
            return Ok(());
        };
        member.verdict = verdict.map(str::to_owned);
        member.reasons = if crate::sets::refuses(verdict) {
            reasons.to_vec()
        } else {
            Vec::new()
        };
        member.note = note.map(str::to_owned);
        self.raw.put_meta(set, &record)?;
        if crate::sets::result(&record.members) != before {
            let body = crate::sets::decided_body(set, &record.members);
            self.event(crate::sets::SET_DECIDED, &format!("urn:uuid:{set}"), body)?;
        }
        Ok(())
    }

    /// Queues this node's later judgement of a message it received (a receipt payload, for the
    /// sender's state or the hub on the way), in the transaction that changed the verdict.
    /// The message's search row and history stay those of a received message, and the
    /// receipt is kept as the message's newest one; a judgement still queued for it is
    /// replaced, as the newer one supersedes it. Whether the outbox gained an entry.
    pub fn queue_judgement(&mut self, out: &Outgoing) -> Result<bool, StoreError> {
        let id = out.message_id;
        let Payload::Receipt { receipt, .. } = &out.payload else {
            return Err(StoreError::Engine(format!(
                "message {id}: only a receipt is queued as a later judgement"
            )));
        };
        self.raw.put_receipt(id, receipt)?;
        let replaced = self.raw.queued_among(&[id])?.is_some() && self.raw.drop_outbox(id)?;
        let sequence = self.raw.next_sequences(1)?;
        let entry = OutboxEntry {
            message: out.clone(),
            sequence,
            attempts: 0,
            next_attempt_at: self.raw.now(),
            last_error: None,
        };
        self.raw.put_outbox(std::slice::from_ref(&entry), &[])?;
        Ok(!replaced)
    }

    /// A receipt in the outbox reached the next hop. A hub's (a receipt it relays) ends the
    /// message there as [`Txn::delivered`] does; this node's own later judgement of a message it
    /// received only leaves the outbox, so the message's state stays its verdict (the history
    /// said when it was queued).
    pub fn receipt_returned(
        &mut self,
        id: Uuid,
        receipt: &[u8],
        note: String,
    ) -> Result<(), StoreError> {
        let received_here = self.raw.meta(id)?.is_some_and(|m| m.direction == "in");
        if received_here {
            return if self.raw.drop_outbox(id)? {
                Ok(())
            } else {
                Err(StoreError::NotQueued(id))
            };
        }
        self.delivered(id, receipt, State::Delivered, &[], Some(note))
    }
}

/// Time-stamping (issue 26): what waits for a token, the evidence obtained and received, and
/// the evidence owed to peers. The store keeps bytes; what evidence is, and whether it
/// verifies, is the node's.
impl Txn<'_> {
    /// Notes `note` in a message's history under its current state, so that a note about
    /// time-stamping never changes where the message stands; nothing for an id with no
    /// history (a batch of receipts).
    fn note_in_place(&mut self, id: Uuid, note: String) -> Result<(), StoreError> {
        match self.raw.last_state(id)? {
            Some(state) => self.record(id, state, Some(note)),
            None => Ok(()),
        }
    }

    /// A signature this node made (an envelope's, in the transaction that queues it, so a
    /// crash loses neither; or a receipt batch's) waits for a time-stamp token. `note`, when
    /// given, goes into the message's history (the required policy's "waiting for a
    /// time-stamp").
    pub fn await_stamp(
        &mut self,
        id: Uuid,
        kind: &str,
        leaf: &[u8],
        note: Option<String>,
    ) -> Result<(), StoreError> {
        let item = crate::records::StampItem {
            id,
            kind: kind.to_owned(),
            leaf: leaf.to_vec(),
            queued_at: self.raw.now(),
        };
        self.raw.put_stamp_pending(&item)?;
        match note {
            Some(note) => self.note_in_place(id, note),
            None => Ok(()),
        }
    }

    /// The evidence obtained for a waiting signature: kept, owed to `owed_to` (the peer the
    /// message goes or went to; `None` for receipts, kept here), and noted in the history.
    /// `false`, and nothing written, when `id` no longer waits (another replica stamped it).
    pub fn stamped(
        &mut self,
        id: Uuid,
        evidence: &[u8],
        owed_to: Option<&str>,
        note: String,
    ) -> Result<bool, StoreError> {
        if !self.raw.drop_stamp_pending(id)? {
            return Ok(false);
        }
        self.raw.put_evidence(id, evidence)?;
        if let Some(peer) = owed_to {
            self.raw.put_evidence_out(peer, id)?;
        }
        self.note_in_place(id, note)?;
        Ok(true)
    }

    /// Evidence a peer sent for a message stored here (the caller verified it): kept, owed
    /// on to `forward_to` (a hub's next hop) and noted in the history. `false`, and nothing
    /// written, when evidence is held already (the first stays); refused
    /// ([`StoreError::UnknownMessage`]) for a message never received.
    pub fn evidence_received(
        &mut self,
        id: Uuid,
        evidence: &[u8],
        forward_to: Option<&str>,
        note: String,
    ) -> Result<bool, StoreError> {
        if self.raw.received(id)?.is_none() {
            return Err(StoreError::UnknownMessage(id));
        }
        if self.raw.evidence(id)?.is_some() {
            return Ok(false);
        }
        self.raw.put_evidence(id, evidence)?;
        if let Some(peer) = forward_to {
            self.raw.put_evidence_out(peer, id)?;
        }
        self.note_in_place(id, note)?;
        Ok(true)
    }

    /// `peer` acknowledged the evidence of `id`: it is no longer owed. Whether it was.
    pub fn evidence_sent(&mut self, peer: &str, id: Uuid) -> Result<bool, StoreError> {
        self.raw.drop_evidence_out(peer, id)
    }

    /// The evidence kept for `id`, as this transaction sees it.
    pub fn evidence(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        self.raw.evidence(id)
    }
}
