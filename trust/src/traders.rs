//! Foreign-trade participants (issue 8, DESIGN §6, docs/traders.md): the registry a node keeps
//! of its own state's traders, and the signed answers by which a state's node vouches for
//! them to others.
//!
//! A **record** is an identifier (country + national number, check digits valid), a name, an
//! address and the status history (active, suspended, liquidated, each from a date). A node's
//! registry holds only its own state's traders. An **answer** is what the owner node says of
//! one identifier — registered or not, and if so the record — as an XML document signed with
//! the owner node's document key:
//!
//! ```xml
//! <tr:TraderAnswer xmlns:tr="urn:tereze:traders" Id="KZ…" State="KZ" AsOf="2026-11-25"
//!                  AnsweredAt="2026-11-25T10:00:00Z" Registered="true">
//!   <tr:Name>…</tr:Name> <tr:Address>…</tr:Address>
//!   <tr:Status From="2019-03-01">active</tr:Status> …
//!   <ds:Signature>…</ds:Signature>
//! </tr:TraderAnswer>
//! ```
//!
//! The asker verifies it against the identifier's state's document anchors in the trust space
//! (an answer about a KZ trader signed by anyone but KZ is forged), keeps it with a TTL and can
//! show it later as evidence.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey, VerifyPolicy};
use tereze_codecs::xml::{self, Document, Element, NamespaceDecl};
use tereze_reference_data::{date, trader};

use crate::TrustSpace;

pub const NAMESPACE: &str = "urn:tereze:traders";

/// A status and the day it took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Suspended,
    Liquidated,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Liquidated => "liquidated",
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(Status::Active),
            "suspended" => Ok(Status::Suspended),
            "liquidated" => Ok(Status::Liquidated),
            _ => Err(format!(
                "status {s:?} is not active, suspended or liquidated"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPeriod {
    pub status: Status,
    /// The first day of this status (read strictly: register records come from outside).
    #[serde(deserialize_with = "date::deserialize")]
    pub from: NaiveDate,
}

/// One trader as the owner state's register has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trader {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub address: String,
    /// Oldest first, days strictly increasing.
    pub statuses: Vec<StatusPeriod>,
}

impl Trader {
    /// The status on `date`; `None` before the first (not yet registered).
    pub fn status_on(&self, date: NaiveDate) -> Option<Status> {
        self.statuses
            .iter()
            .rev()
            .find(|p| p.from <= date)
            .map(|p| p.status)
    }

    /// Checks a record: a valid identifier, a name, statuses in increasing order.
    pub fn check(&self) -> Result<(), String> {
        trader::parse(&self.id).map_err(|e| format!("{}: {e}", self.id))?;
        if self.name.trim().is_empty() {
            return Err(format!("{}: no name", self.id));
        }
        if self.statuses.is_empty() {
            return Err(format!("{}: no status", self.id));
        }
        if self.statuses.windows(2).any(|w| w[0].from >= w[1].from) {
            return Err(format!(
                "{}: statuses must be in increasing order of their dates",
                self.id
            ));
        }
        Ok(())
    }
}

/// A register row as imported: one status per row; rows of one id add to its history.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    id: String,
    name: String,
    #[serde(default)]
    address: String,
    status: String,
    /// `YYYY-MM-DD`.
    status_from: String,
}

/// Reads a register export (CSV with a header `id,name,address,status,status_from`, or a JSON
/// array of such objects) into records, one per id, statuses sorted. Errors name the row.
pub fn read_register(bytes: &[u8], json: bool) -> Result<Vec<Trader>, String> {
    let rows: Vec<(usize, Row)> = if json {
        let rows: Vec<Row> = serde_json::from_slice(bytes).map_err(|e| format!("JSON: {e}"))?;
        rows.into_iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r))
            .collect()
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(bytes);
        // A file without the register's columns (another file, a wrong delimiter) is refused
        // by its header, also when it has no rows to trip over.
        let header = reader
            .headers()
            .map_err(|e| format!("header: {e}"))?
            .clone();
        let missing: Vec<&str> = ["id", "name", "status", "status_from"]
            .into_iter()
            .filter(|c| !header.iter().any(|h| h == *c))
            .collect();
        if !missing.is_empty() {
            let found: String = header
                .iter()
                .collect::<Vec<_>>()
                .join(",")
                .chars()
                .take(120)
                .collect();
            return Err(format!(
                "header: the columns {} are missing (expected id,name,address,status,status_from; found {found:?})",
                missing.join(", ")
            ));
        }
        let mut rows = Vec::new();
        for (i, r) in reader.deserialize::<Row>().enumerate() {
            rows.push((i + 1, r.map_err(|e| format!("row {}: {e}", i + 1))?));
        }
        rows
    };
    let mut by_id: BTreeMap<String, Trader> = BTreeMap::new();
    for (n, row) in rows {
        let at = |e: String| format!("row {n}: {e}");
        trader::parse(&row.id).map_err(|e| at(format!("{}: {e}", row.id)))?;
        let status = Status::parse(&row.status).map_err(at)?;
        let from = date::parse(&row.status_from).map_err(|e| {
            at(format!(
                "status_from {:?} is not a date (YYYY-MM-DD): {e}",
                row.status_from
            ))
        })?;
        let t = by_id.entry(row.id.clone()).or_insert_with(|| Trader {
            id: row.id.clone(),
            name: row.name.clone(),
            address: row.address.clone(),
            statuses: Vec::new(),
        });
        if t.statuses.iter().any(|p| p.from == from) {
            return Err(at(format!("{} has two statuses from {from}", row.id)));
        }
        // The latest row's name and address win.
        t.name = row.name;
        t.address = row.address;
        t.statuses.push(StatusPeriod { status, from });
    }
    let mut out: Vec<Trader> = by_id.into_values().collect();
    for t in &mut out {
        t.statuses.sort_by_key(|p| p.from);
        t.check()?;
    }
    Ok(out)
}

/// What an owner node said of one identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub id: String,
    pub state: String,
    pub as_of: NaiveDate,
    pub answered_at: String,
    /// `None`: not in the owner's register.
    pub trader: Option<Trader>,
    /// The signer's certificate subject (filled in by [`verify_answer`]).
    pub signer: String,
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// What is wrong with the answer's content, as read.
    #[error("trader answer: {0}")]
    Malformed(String),
    #[error("trader answer: {0}")]
    Xml(#[source] xml::ParseError),
    #[error("trader answer: signed content: {0}")]
    SignedContent(#[source] xml::ParseError),
    /// The answer is about something that is not a trader identifier.
    #[error("trader answer: {id}: {source}")]
    Id {
        id: String,
        #[source]
        source: trader::TraderError,
    },
    #[error("trader answer for {id}: {state} is not a state of the trust space")]
    UnknownState { id: String, state: String },
    #[error("trader answer for {id}: not signed by {state}'s node: {reason}")]
    Signature {
        id: String,
        state: String,
        reason: String,
    },
    /// The signature holds but uses an algorithm `state` does not permit (its trust-space
    /// policy).
    #[error("trader answer for {id} from {state}'s node: {source}")]
    AlgorithmNotPermitted {
        id: String,
        state: String,
        #[source]
        source: crate::algorithms::NotPermitted,
    },
}

fn tr(local: &str) -> Element {
    Element::new(Some("tr"), local, Some(NAMESPACE))
}

/// The owner's signed answer about `id` (this node's state) as of `as_of`.
pub fn sign_answer(
    id: &str,
    state: &str,
    as_of: NaiveDate,
    trader: Option<&Trader>,
    key: &SigningKey,
) -> Result<Vec<u8>, dsig::SignError> {
    let mut root = tr("TraderAnswer");
    root.namespace_decls.push(NamespaceDecl {
        prefix: Some("tr".into()),
        uri: NAMESPACE.into(),
    });
    root.set_attribute("Id", id);
    root.set_attribute("State", state);
    root.set_attribute("AsOf", &as_of.to_string());
    root.set_attribute(
        "AnsweredAt",
        &Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    root.set_attribute(
        "Registered",
        if trader.is_some() { "true" } else { "false" },
    );
    let mut doc = Document::with_root(root);
    let r = doc.root();
    if let Some(t) = trader {
        let n = doc.append_element(r, tr("Name"));
        doc.append_text(n, &t.name);
        let a = doc.append_element(r, tr("Address"));
        doc.append_text(a, &t.address);
        for p in &t.statuses {
            let mut e = tr("Status");
            e.set_attribute("From", &p.from.to_string());
            let s = doc.append_element(r, e);
            doc.append_text(s, p.status.as_str());
        }
    }
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        key,
        &SignOptions::default(),
    )?;
    Ok(doc.to_xml().into_bytes())
}

/// Verifies an answer against the identifier's state's document anchors and reads it from the
/// signed bytes only. `expected_id`: the identifier asked about (an answer about another one
/// is refused).
pub fn verify_answer(
    bytes: &[u8],
    trust: &TrustSpace,
    expected_id: Option<&str>,
) -> Result<Answer, AnswerError> {
    let malformed = |e: String| AnswerError::Malformed(e);
    let doc = xml::parse(bytes).map_err(AnswerError::Xml)?;
    let claimed = read_answer(&doc)?;
    if let Some(want) = expected_id {
        if claimed.id != want {
            return Err(malformed(format!("it is about {}, not {want}", claimed.id)));
        }
    }
    // The state that may vouch is the identifier's own.
    let country = trader::parse(&claimed.id)
        .map_err(|source| AnswerError::Id {
            id: claimed.id.clone(),
            source,
        })?
        .country
        .as_str()
        .to_owned();
    if claimed.state != country {
        return Err(AnswerError::Signature {
            id: claimed.id,
            state: country,
            reason: format!("the answer claims to come from {}", claimed.state),
        });
    }
    let state = trust
        .state(&country)
        .ok_or_else(|| AnswerError::UnknownState {
            id: claimed.id.clone(),
            state: country.clone(),
        })?;
    let verified = dsig::verify(&doc, &state.documents, &VerifyPolicy::default()).map_err(|e| {
        AnswerError::Signature {
            id: claimed.id.clone(),
            state: country.clone(),
            reason: e.to_string(),
        }
    })?;
    if let Some(policy) = &state.algorithms {
        policy
            .judge(&verified)
            .map_err(|source| AnswerError::AlgorithmNotPermitted {
                id: claimed.id.clone(),
                state: country.clone(),
                source,
            })?;
    }
    if let Some(cert) = verified.signer.certificate.as_ref() {
        if let Some(when) = state.revoked_at(cert) {
            return Err(AnswerError::Signature {
                id: claimed.id,
                state: country,
                reason: format!("the signer was revoked at {}", when.to_rfc3339()),
            });
        }
    }
    let signed = verified
        .references
        .first()
        .ok_or_else(|| malformed("the signature signs nothing".into()))?
        .document()
        .map_err(AnswerError::SignedContent)?;
    let mut answer = read_answer(&signed)?;
    if answer.id != claimed.id || answer.state != claimed.state {
        return Err(malformed(
            "the signed answer differs from the document".into(),
        ));
    }
    answer.signer = verified.signer.subject;
    Ok(answer)
}

fn read_answer(doc: &Document) -> Result<Answer, AnswerError> {
    let malformed = |e: String| AnswerError::Malformed(e);
    let r = doc.root();
    let root = doc
        .element(r)
        .filter(|e| e.is(NAMESPACE, "TraderAnswer"))
        .ok_or_else(|| malformed("not a tr:TraderAnswer".into()))?;
    let attr = |n: &str| {
        root.attribute(n)
            .map(str::to_owned)
            .ok_or_else(|| malformed(format!("tr:TraderAnswer: no attribute {n}")))
    };
    let id = attr("Id")?;
    let state = attr("State")?;
    let as_of = date::parse(&attr("AsOf")?)
        .map_err(|e| malformed(format!("tr:TraderAnswer/@AsOf is not a date: {e}")))?;
    let answered_at = attr("AnsweredAt")?;
    DateTime::parse_from_rfc3339(&answered_at)
        .map_err(|_| malformed("tr:TraderAnswer/@AnsweredAt is not RFC 3339".into()))?;
    let registered = match attr("Registered")?.as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(malformed(format!(
                "@Registered {other:?} is not true or false"
            )))
        }
    };
    let text = |local: &str| {
        doc.child(r, NAMESPACE, local)
            .map(|n| doc.text_content(n))
            .unwrap_or_default()
    };
    let trader = if registered {
        let mut statuses = Vec::new();
        for c in doc.child_elements(r) {
            let Some(e) = doc.element(c).filter(|e| e.is(NAMESPACE, "Status")) else {
                continue;
            };
            let from = e
                .attribute("From")
                .ok_or_else(|| malformed("tr:Status: no attribute From".into()))
                .and_then(|f| {
                    date::parse(f)
                        .map_err(|e| malformed(format!("tr:Status/@From is not a date: {e}")))
                })?;
            let status = Status::parse(&doc.text_content(c)).map_err(malformed)?;
            statuses.push(StatusPeriod { status, from });
        }
        let t = Trader {
            id: id.clone(),
            name: text("Name"),
            address: text("Address"),
            statuses,
        };
        t.check().map_err(malformed)?;
        Some(t)
    } else {
        None
    };
    Ok(Answer {
        id,
        state,
        as_of,
        answered_at,
        trader,
        signer: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devpki::fixture::DevPki;

    /// A dev PKI for KZ and RU: the trust space and each state's document signer.
    fn pki() -> (DevPki, TrustSpace, SigningKey, SigningKey) {
        let pki = DevPki::kz_ru(20900, &[]);
        let (trust, kz, ru) = (pki.trust.clone(), pki.signer("kz"), pki.signer("ru"));
        (pki, trust, kz, ru)
    }

    fn trader(id: &str) -> Trader {
        Trader {
            id: id.into(),
            name: "Astyq Grain LLP".into(),
            address: "Astana".into(),
            statuses: vec![StatusPeriod {
                status: Status::Active,
                from: d("2015-03-01"),
            }],
        }
    }

    #[test]
    fn an_answer_signed_with_an_algorithm_its_state_does_not_permit_is_refused() {
        let (_dir, mut trust, kz, _) = pki();
        let id = "KZ990340000450";
        let good = sign_answer(id, "KZ", d("2026-11-25"), Some(&trader(id)), &kz).expect("signs");
        let policy = crate::algorithms::AlgorithmPolicy::read(&crate::FileAlgorithms {
            signature: Some(vec!["gost2012-256".into()]),
            ..crate::FileAlgorithms::default()
        })
        .expect("policy");
        trust.states.get_mut("KZ").expect("KZ").algorithms = Some(policy);
        let e = verify_answer(&good, &trust, Some(id)).expect_err("ECDSA from a GOST state");
        assert!(
            matches!(e, AnswerError::AlgorithmNotPermitted { .. }),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "trader answer for KZ990340000450 from KZ's node: signature method ecdsa-sha256 is \
             not permitted (permitted: gost2012-256)"
        );
    }

    #[test]
    fn only_the_traders_own_state_can_vouch_for_it() {
        let (_dir, trust, kz, ru) = pki();
        let id = "KZ990340000450";
        let t = trader(id);
        let today = d("2026-11-25");
        let good = sign_answer(id, "KZ", today, Some(&t), &kz).expect("signs");
        let a = verify_answer(&good, &trust, Some(id)).expect("KZ vouches for KZ");
        assert_eq!(a.trader, Some(t.clone()));
        assert!(a.signer.contains("KZ"), "{}", a.signer);
        // Asked about another identifier.
        assert!(matches!(
            verify_answer(&good, &trust, Some("KZ120440789014")),
            Err(AnswerError::Malformed(_))
        ));
        // Changed after signing.
        let text = String::from_utf8(good.clone()).expect("utf-8");
        let tampered = text.replace(">active<", ">liquidated<");
        assert_ne!(tampered, text);
        assert!(matches!(
            verify_answer(tampered.as_bytes(), &trust, Some(id)),
            Err(AnswerError::Signature { .. })
        ));
        // RU's node signing an answer about a KZ trader, whether it says it is KZ or RU.
        for claimed in ["KZ", "RU"] {
            let forged = sign_answer(id, claimed, today, Some(&t), &ru).expect("signs");
            let e = verify_answer(&forged, &trust, Some(id)).expect_err("forged");
            assert!(
                e.to_string().contains("not signed by KZ's node"),
                "{claimed}: {e}"
            );
        }
        // "Not registered" is an answer too, signed the same way.
        let none = sign_answer("KZ120440789014", "KZ", today, None, &kz).expect("signs");
        let a = verify_answer(&none, &trust, None).expect("valid");
        assert_eq!(a.trader, None);
    }

    #[test]
    fn a_gost_owner_signs_its_answers_with_its_own_algorithm() {
        let pki = DevPki::kz_ru(20900, &["KZ=gost2012-256"]);
        let (trust, kz) = (pki.trust.clone(), pki.signer("kz"));
        let id = "KZ990340000450";
        let signed = sign_answer(id, "KZ", d("2026-11-25"), Some(&trader(id)), &kz).expect("signs");
        let text = String::from_utf8(signed.clone()).expect("utf-8");
        assert!(
            text.contains("cpxmlsec:algorithms:gostr34102012-gostr34112012-256")
                && text.contains("cpxmlsec:algorithms:gostr34112012-256\""),
            "{text}"
        );
        let a = verify_answer(&signed, &trust, Some(id)).expect("KZ vouches with GOST");
        assert!(a.signer.contains("KZ document signer"), "{}", a.signer);
    }

    #[test]
    fn register_files_are_read_with_their_history_and_refused_with_the_row() {
        let csv = "id,name,address,status,status_from\n\
                   KZ990340000450,A,Astana,active,2015-03-01\n\
                   KZ990340000450,A,Astana,suspended,2025-01-01\n";
        let list = read_register(csv.as_bytes(), false).expect("reads");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].statuses.len(), 2);
        assert_eq!(list[0].status_on(d("2025-01-01")), Some(Status::Suspended));
        let json =
            r#"[{"id":"KZ990340000450","name":"A","status":"active","status_from":"2015-03-01"}]"#;
        assert_eq!(
            read_register(json.as_bytes(), true).expect("reads").len(),
            1
        );
        for (bad, says) in [
            (
                "KZ990340000451,A,x,active,2015-03-01",
                "row 1: KZ990340000451",
            ),
            (
                "KZ990340000450,A,x,dormant,2015-03-01",
                "row 1: status \"dormant\"",
            ),
            ("KZ990340000450,A,x,active,01.03.2015", "row 1: status_from"),
            // chrono's `%Y-%m-%d` would read this one; the register reader does not.
            (
                "KZ990340000450,A,x,active,2015-3-01",
                "row 1: status_from \"2015-3-01\" is not a date (YYYY-MM-DD): the month (MM) \
                 takes exactly 2 digits",
            ),
        ] {
            let text = format!("id,name,address,status,status_from\n{bad}\n");
            let e = read_register(text.as_bytes(), false).expect_err("refused");
            assert!(e.contains(says), "{e}");
        }
        // Not a register at all, even without rows: refused by its header.
        for other in [
            "<?xml version=\"1.0\"?><r/>",
            "id;name;status;status_from\n",
        ] {
            let e = read_register(other.as_bytes(), false).expect_err("refused");
            assert!(e.starts_with("header: the columns"), "{e}");
        }
    }

    #[test]
    fn register_records_posted_as_json_read_their_dates_strictly() {
        let record = |from: &str| {
            format!(
                r#"{{"id":"KZ990340000450","name":"A","address":"","statuses":[{{"status":"active","from":"{from}"}}]}}"#
            )
        };
        let t: Trader = serde_json::from_str(&record("2015-03-01")).expect("reads");
        assert_eq!(t.statuses[0].from, d("2015-03-01"));
        // chrono's own Deserialize for NaiveDate reads this.
        let e = serde_json::from_str::<Trader>(&record("2015-3-1")).expect_err("refused");
        assert!(
            e.to_string()
                .contains("\"2015-3-1\" is not a date (YYYY-MM-DD): the month (MM)"),
            "{e}"
        );
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn status_is_read_as_of_a_date() {
        let t = Trader {
            id: "X".into(),
            name: "x".into(),
            address: String::new(),
            statuses: vec![
                StatusPeriod {
                    status: Status::Active,
                    from: d("2020-01-01"),
                },
                StatusPeriod {
                    status: Status::Suspended,
                    from: d("2025-06-01"),
                },
            ],
        };
        assert_eq!(t.status_on(d("2019-12-31")), None);
        assert_eq!(t.status_on(d("2020-01-01")), Some(Status::Active));
        assert_eq!(t.status_on(d("2025-05-31")), Some(Status::Active));
        assert_eq!(t.status_on(d("2025-06-01")), Some(Status::Suspended));
    }
}
