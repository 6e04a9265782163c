//! The one decision of a submission set for the applicant (docs/protocol.md, "Submission
//! sets"): every message of the set with its recipient, state and current verdict (with the
//! reasons the store kept with it, from its newest receipt), and the set's result, which the
//! store keeps with the verdicts (`tereze_store::sets`), so this answer and the set's
//! `submission-set` event agree. Read-only: it changes nothing.

use serde_json::{json, Value};
use uuid::Uuid;

use super::Node;
use crate::store::{sets, State, StoreError, SET_DIRECTION};

/// One message of a set as the applicant sees it.
pub(crate) struct MemberView {
    pub(crate) message_id: Uuid,
    pub(crate) country: String,
    pub(crate) authority: String,
    /// Its state now (the last transition).
    pub(crate) state: String,
    /// `recognised`, `rejected`, `undelivered`, or none yet.
    pub(crate) verdict: Option<String>,
    /// A rejection's reason codes (from the newest receipt), or why it was not delivered.
    pub(crate) reasons: Vec<String>,
    /// The note of the transition that gave the verdict ("judged again by RU: …").
    pub(crate) note: Option<String>,
}

/// A set's decision.
pub(crate) struct SetView {
    pub(crate) set_id: Uuid,
    /// `pending`, `recognised` or `refused` ([`sets::result`]).
    pub(crate) result: &'static str,
    pub(crate) members: Vec<MemberView>,
}

/// The decision of set `id`, or `None` when there is no such set.
pub(crate) fn view(node: &Node, id: Uuid) -> Result<Option<SetView>, StoreError> {
    let store = node.store();
    let Some(record) = store.meta(id)?.filter(|m| m.direction == SET_DIRECTION) else {
        return Ok(None);
    };
    let mut members = Vec::with_capacity(record.members.len());
    for m in &record.members {
        let history = store.history(m.message_id)?;
        let state = history
            .last()
            .map(|t| t.state.as_str().to_owned())
            .unwrap_or_default();
        let judged = history.iter().rev().find(|t| match m.verdict.as_deref() {
            Some("recognised") => t.state == State::Recognised,
            Some("rejected") => t.state == State::Rejected,
            Some(_) => matches!(t.state, State::Dead | State::Expired),
            None => false,
        });
        // The reasons and note kept with the verdict, as the set's event gives them; a record
        // written before they were kept falls back to the receipt and the history.
        let reasons = if !m.reasons.is_empty() {
            m.reasons.clone()
        } else {
            match m.verdict.as_deref() {
                Some("rejected") => store
                    .receipt(m.message_id)?
                    .and_then(|r| crate::receipt::read_entry(&r).ok())
                    .map(|e| e.reasons)
                    .unwrap_or_default(),
                Some(sets::UNDELIVERED) => judged
                    .map(|t| vec![t.state.as_str().to_owned()])
                    .unwrap_or_default(),
                _ => Vec::new(),
            }
        };
        let note = match &m.note {
            Some(note) => Some(note.clone()),
            None => judged.and_then(|t| t.note.clone()),
        };
        members.push(MemberView {
            message_id: m.message_id,
            country: m.country.clone(),
            authority: m.authority.clone(),
            state,
            verdict: m.verdict.clone(),
            reasons,
            note,
        });
    }
    Ok(Some(SetView {
        set_id: id,
        result: sets::result(&record.members),
        members,
    }))
}

impl MemberView {
    pub(crate) fn refused(&self) -> bool {
        matches!(
            self.verdict.as_deref(),
            Some("rejected") | Some(sets::UNDELIVERED)
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "message_id": format!("urn:uuid:{}", self.message_id),
            "recipient_country": self.country,
            "recipient_authority": self.authority,
            "state": self.state,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "note": self.note,
        })
    }
}

impl SetView {
    /// The HTTP answer: every message, the result, and those that refused the set.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "set_id": format!("urn:uuid:{}", self.set_id),
            "result": self.result,
            "messages": self.members.iter().map(MemberView::to_json).collect::<Vec<_>>(),
            "refused": self.members.iter().filter(|m| m.refused()).map(MemberView::to_json).collect::<Vec<_>>(),
        })
    }
}
