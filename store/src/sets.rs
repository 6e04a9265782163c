//! Submission sets ("submit once": one national submission fanned out to several
//! authorities): the one result a national window tells the applicant, from the verdicts of
//! the set's messages. The set's record keeps each message's verdict as it changes, in the
//! transaction that changes it, so the result and its "decided" event are never behind.

use serde_json::{json, Value};

use super::records::SetMember;

/// The event kind written when a set's result changes (docs/notifications.md).
pub const SET_DECIDED: &str = "submission-set";

/// A member's verdict that refuses the set without being the receiver's: the message was
/// never delivered (expired or dead here); an operator's requeue makes it pending again.
pub const UNDELIVERED: &str = "undelivered";

/// Whether a member's verdict refuses the set: `rejected` or [`UNDELIVERED`].
pub fn refuses(verdict: Option<&str>) -> bool {
    matches!(verdict, Some("rejected") | Some(UNDELIVERED))
}

/// The result of a set: `pending` until every message is recognised or one is refused;
/// `recognised` when all are; `refused` as soon as one is rejected or undelivered.
pub fn result(members: &[SetMember]) -> &'static str {
    let refused = members.iter().any(|m| refuses(m.verdict.as_deref()));
    if refused {
        "refused"
    } else if members
        .iter()
        .all(|m| m.verdict.as_deref() == Some("recognised"))
    {
        "recognised"
    } else {
        "pending"
    }
}

/// The body of a [`SET_DECIDED`] event: the result, every message with its verdict and, for
/// a refusing one, its reasons and note (as `GET /v1/submissions/{id}` gives them), and the
/// messages that refused the set.
pub fn decided_body(set: uuid::Uuid, members: &[SetMember]) -> Value {
    let json_of = |m: &SetMember| {
        json!({
            "message_id": format!("urn:uuid:{}", m.message_id),
            "recipient_country": m.country,
            "recipient_authority": m.authority,
            "verdict": m.verdict,
            "reasons": m.reasons,
            "note": m.note,
        })
    };
    json!({
        "set_id": format!("urn:uuid:{set}"),
        "result": result(members),
        "messages": members.iter().map(json_of).collect::<Vec<_>>(),
        "refused": members
            .iter()
            .filter(|m| refuses(m.verdict.as_deref()))
            .map(json_of)
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: u128, verdict: Option<&str>) -> SetMember {
        SetMember {
            message_id: uuid::Uuid::from_u128(n),
            country: "RU".into(),
            authority: "FCS".into(),
            verdict: verdict.map(str::to_owned),
            ..SetMember::default()
        }
    }

    #[test]
    fn a_set_is_pending_until_all_are_recognised_or_one_is_refused() {
        assert_eq!(
            result(&[member(1, None), member(2, Some("recognised"))]),
            "pending"
        );
        assert_eq!(
            result(&[member(1, Some("recognised")), member(2, Some("recognised"))]),
            "recognised"
        );
        assert_eq!(
            result(&[member(1, None), member(2, Some("rejected"))]),
            "refused"
        );
        assert_eq!(
            result(&[member(1, Some("recognised")), member(2, Some(UNDELIVERED))]),
            "refused"
        );
    }

    #[test]
    fn the_decided_event_names_the_messages_that_refused_with_their_reasons() {
        let mut rejected = member(2, Some("rejected"));
        rejected.reasons = vec!["signature-invalid".into(), "hs-code-unknown".into()];
        let members = [member(1, Some("recognised")), rejected];
        let body = decided_body(uuid::Uuid::from_u128(9), &members);
        assert_eq!(body["result"], "refused");
        let refused = body["refused"].as_array().expect("a list");
        assert_eq!(refused.len(), 1);
        assert_eq!(
            refused[0]["message_id"],
            format!("urn:uuid:{}", uuid::Uuid::from_u128(2))
        );
        assert_eq!(
            refused[0]["reasons"],
            json!(["signature-invalid", "hs-code-unknown"])
        );
        let messages = body["messages"].as_array().expect("every message");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0]["verdict"], "recognised");
        assert_eq!(messages[0]["reasons"], json!([]));
        assert_eq!(messages[1]["reasons"], refused[0]["reasons"]);
    }
}
