//! Mutual recognition (DESIGN §4): the receiving node's checks on an inbound envelope, in a
//! fixed order, each failure a stable reason code. The first failing check decides; a
//! document that fails a check has passed every check before it. The same code runs in the
//! node (every delivery) and offline (`tereze recognise`), so "why was this rejected?" has one
//! answer. Reason codes and their fixes: docs/recognition.md.
//! **Invariant:** knows `trust`, `codecs`, `reference-data` and `support` only
//! (ARCHITECTURE.md, "Dependency rules"); it looks up attachments and traders through the
//! small traits [`AttachmentLookup`] and [`TraderCheck`] its caller implements.
#![forbid(unsafe_code)]

use chrono::{DateTime, Utc};
use tereze_codecs::dsig::{self, DsigError, VerifyError, VerifyPolicy};
use tereze_codecs::envelope::Envelope;
use tereze_codecs::translate::Catalog;
use tereze_codecs::xml::{self, Document};
use tereze_reference_data::Directories;
use uuid::Uuid;

use tereze_trust::{Role, TrustSpace};

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Stable, kebab-case (docs/recognition.md).
    pub code: &'static str,
    pub message: String,
}

/// The receiver's decision on one envelope.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Empty: recognised.
    pub reasons: Vec<Reason>,
    /// The envelope as signed, when the signature held.
    pub envelope: Option<Envelope>,
    /// The time revocation and certificate validity were judged at, and its evidence; `None`
    /// when the checks stopped before weighing the evidence (the first two checks).
    pub judged: Option<JudgedTime>,
}

/// The judged time (docs/recognition.md, "The judged time"): the earliest trusted upper
/// bound on when the signature existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgedTime {
    pub at: DateTime<Utc>,
    pub source: TimeSource,
}

impl std::fmt::Display for JudgedTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({})",
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.source
        )
    }
}

/// The evidence a judged time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSource {
    /// The genTime of a valid time-stamp token over the signature value; the authority is
    /// named by its certificate's subject, the token by its serial number (hexadecimal).
    Timestamp { authority: String, serial: String },
    /// When the hub (a trust-space state of role hub) that delivered it first stored it.
    Hub { hub: String },
    /// When this node first stored it.
    Arrival,
}

impl TimeSource {
    /// Stable, for records and JSON: `timestamp`, `hub` or `arrival`.
    pub fn code(&self) -> &'static str {
        match self {
            TimeSource::Timestamp { .. } => "timestamp",
            TimeSource::Hub { .. } => "hub",
            TimeSource::Arrival => "arrival",
        }
    }
}

impl std::fmt::Display for TimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeSource::Timestamp { authority, serial } => {
                write!(f, "time-stamp token {serial} of {authority}")
            }
            TimeSource::Hub { hub } => write!(f, "first stored by hub {hub}"),
            TimeSource::Arrival => f.write_str("first stored by this node"),
        }
    }
}

impl Verdict {
    pub fn recognised(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// What the checks need to know about the delivery.
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    pub envelope: &'a [u8],
    /// The sender state the route (or, offline, the envelope) claims.
    pub sender: &'a str,
    /// The state (or hub) whose listed node delivered it over TLS; `None` offline.
    pub transport: Option<&'a str>,
    /// The route's message id, if there is a route.
    pub message_id: Option<Uuid>,
    /// When this node first stored it (on a re-judgement, the stored arrival time): evidence
    /// of when the signature existed, and the reference for expiry.
    pub received_at: DateTime<Utc>,
    /// When the hub that delivered it first stored it, as the hub said: evidence only when
    /// `transport` names a hub of the trust space, ignored otherwise.
    pub hub_received_at: Option<DateTime<Utc>>,
    /// Time-stamp evidence over the envelope's signature value, as the node stores and sends
    /// it (a token, or a batch token with the inclusion path).
    pub evidence: Option<&'a [u8]>,
}

/// Everything the checks consult.
pub struct Recogniser<'a> {
    pub trust: &'a TrustSpace,
    /// The recognising state (this node's).
    pub state: &'a str,
    pub catalog: &'a Catalog,
    pub directories: &'a Directories,
    pub limits: xml::Limits,
    /// What the owner states say of the traders (registers, signed answers).
    pub traders: &'a dyn TraderCheck,
    /// The attachments received (none offline: an envelope declaring any is then rejected).
    pub attachments: Option<&'a dyn AttachmentLookup>,
}

/// What the owner state says of a trader on a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Active,
    /// Suspended or liquidated that day, or not yet registered: the register's words, which
    /// the rejection quotes.
    Inactive(String),
    /// Not in the owner state's register.
    Unknown,
    /// The owner state's node could not be asked and no earlier answer is kept: why, as the
    /// rejection quotes it (the failure itself is logged where it happened).
    Unresolved(String),
    /// No source to ask (offline without evidence): the check is not made.
    NotChecked,
}

/// Where recognition learns a trader's standing: the node's register and signed answers, or
/// evidence given to `tereze recognise`.
pub trait TraderCheck {
    fn standing(&self, id: &str, date: chrono::NaiveDate) -> Standing;
}

/// An error of an [`AttachmentLookup`], kept as the cause.
pub type LookupError = Box<dyn std::error::Error + Send + Sync>;

/// A complete attachment as held: what check 9a compares with the signed declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldFile {
    pub size: u64,
    pub sha256: [u8; 32],
}

/// Where recognition finds the attachments received with a message (the node's attachment
/// files): the lookups the checks make, nothing else, so that this crate does not depend on
/// how or where they are kept.
pub trait AttachmentLookup {
    /// Attachment `id` of `message`, if it is held complete.
    fn held(&self, message: Uuid, id: &str) -> Result<Option<HeldFile>, LookupError>;
    /// The largest body by reference checked against its model
    /// (`attachments.max_checked_body_bytes`).
    fn max_checked_body_bytes(&self) -> u64;
    /// Attachment `id` of `message` whole, or `None` when it is over `max` bytes.
    fn read_small(&self, message: Uuid, id: &str, max: u64)
        -> Result<Option<Vec<u8>>, LookupError>;
}

/// No source: every trader is [`Standing::NotChecked`].
pub struct NoTraderCheck;

impl TraderCheck for NoTraderCheck {
    fn standing(&self, _: &str, _: chrono::NaiveDate) -> Standing {
        Standing::NotChecked
    }
}

/// The standing an owner's answer gives on `date`.
pub fn standing_of(
    trader: Option<&tereze_trust::traders::Trader>,
    date: chrono::NaiveDate,
) -> Standing {
    match trader {
        None => Standing::Unknown,
        Some(t) => match t.status_on(date) {
            Some(tereze_trust::traders::Status::Active) => Standing::Active,
            Some(other) => Standing::Inactive(format!("{} on {date}", other.as_str())),
            None => Standing::Inactive(format!(
                "not yet registered on {date} (first status from {})",
                t.statuses
                    .first()
                    .map(|p| p.from.to_string())
                    .unwrap_or_default()
            )),
        },
    }
}

/// An input that is not an envelope at all: refused, not judged. The message names the part
/// that failed, with the cause's text; the cause, when there is one, is kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct NotAnEnvelope {
    what: String,
    #[source]
    source: Option<LookupError>,
}

impl NotAnEnvelope {
    /// `part` failed with `source`: "`part`: `source`" (`sep` is what the message always put
    /// between them).
    fn because(part: impl std::fmt::Display, sep: &str, source: impl Into<LookupError>) -> Self {
        let source = source.into();
        Self {
            what: format!("{part}{sep}{source}"),
            source: Some(source),
        }
    }
}

/// One entry of [`CHECKS`]: a step and the reason codes it may reject with, in the order
/// docs/recognition.md lists them.
pub struct Check {
    pub codes: &'static [&'static str],
    run: Step,
}

/// A check's step: `Ok(None)` passes, `Ok(Some(reason))` rejects, `Err` refuses an input that
/// is not an envelope at all. It reads what the steps before it established in [`Facts`].
type Step = for<'a> fn(&Recogniser<'a>, &Inbound<'_>, &mut Facts<'a>) -> Outcome;

type Outcome = Result<Option<Reason>, NotAnEnvelope>;

/// The checks in their fixed order (DESIGN §4, docs/recognition.md): the first rejection
/// decides, so a document rejected by one has passed every check before it.
pub const CHECKS: &[Check] = &[
    Check {
        codes: &["transport-identity"],
        run: transport_identity,
    },
    Check {
        codes: &["unknown-sender"],
        run: parse_and_know_sender,
    },
    Check {
        codes: &["timestamp-invalid", "timestamp-required"],
        run: time_evidence,
    },
    Check {
        codes: &[
            "signature-invalid",
            "chain-untrusted",
            "certificate-not-valid",
        ],
        run: signature,
    },
    Check {
        codes: &["algorithm-not-permitted"],
        run: algorithms_permitted,
    },
    Check {
        codes: &["certificate-revoked"],
        run: not_revoked,
    },
    Check {
        codes: &["route-mismatch", "sender-mismatch", "recipient-mismatch"],
        run: route_agrees,
    },
    Check {
        codes: &["signing-time-in-future"],
        run: clock_skew,
    },
    Check {
        codes: &["process-not-permitted"],
        run: process_permitted,
    },
    Check {
        codes: &["document-not-recognised"],
        run: matrix_recognises,
    },
    Check {
        codes: &["document-expired"],
        run: not_expired,
    },
    Check {
        codes: &["attachment-missing", "attachment-digest-mismatch"],
        run: attachments_held,
    },
    Check {
        codes: &["national-signature-missing", "national-signature-invalid"],
        run: national_signature_recorded,
    },
    Check {
        codes: &[
            "document-type-unknown",
            "body-too-large",
            "attachment-missing",
            "document-invalid",
        ],
        run: document_meets_model,
    },
    Check {
        codes: &["permits-missing"],
        run: permits_present,
    },
    Check {
        codes: &[
            "trader-invalid",
            "trader-unknown",
            "trader-inactive",
            "trader-unresolved",
        ],
        run: traders_standing,
    },
];

/// What the steps have established so far, each part set by one step for those after it.
#[derive(Default)]
struct Facts<'a> {
    /// Set by [`parse_and_know_sender`].
    claimed: Option<Claimed<'a>>,
    /// Set by [`time_evidence`].
    judged: Option<JudgedTime>,
    /// Set by [`signature`]; from here on every decision reads the signed envelope.
    signed: Option<Signed>,
    /// Set by [`document_meets_model`]: the document read against its model.
    document: Option<(String, tereze_codecs::translate::Record)>,
}

/// The envelope as parsed before its signature is checked, and the state it claims to be from.
struct Claimed<'a> {
    doc: Document,
    /// Read before the signature is checked only to learn the claimed signing time.
    signing_time: DateTime<Utc>,
    sender: &'a tereze_trust::StateEntry,
}

/// The signer and the envelope as signed.
struct Signed {
    signer: dsig::Signer,
    envelope: Envelope,
    /// What the signature used: its method, the references' digests, the key.
    algorithms: Used,
}

/// The algorithms of a verified signature, as [`algorithms_permitted`] judges them.
struct Used {
    signature_method: String,
    digest_methods: Vec<String>,
    key: dsig::SignerKey,
}

impl<'a> Facts<'a> {
    // The steps run in the order of `CHECKS` and stop at the first rejection, so a step finds
    // what the steps before it set; a missing part is a wrong table, not a wrong input.
    fn claimed(&self) -> &Claimed<'a> {
        self.claimed
            .as_ref()
            .expect("CHECKS parses the envelope before the checks that read it")
    }

    fn signed(&self) -> &Signed {
        self.signed
            .as_ref()
            .expect("CHECKS verifies the signature before the checks of the signed envelope")
    }

    /// The signing time, as the signed header states it: the signer's claim.
    fn signing_time(&self) -> DateTime<Utc> {
        self.claimed().signing_time
    }

    /// The judged time: revocation and certificate validity are judged at it.
    fn judged(&self) -> &JudgedTime {
        self.judged
            .as_ref()
            .expect("CHECKS weighs the time evidence before the checks that judge at it")
    }
}

fn reject(code: &'static str, message: String) -> Outcome {
    Ok(Some(Reason { code, message }))
}

impl Recogniser<'_> {
    /// Runs [`CHECKS`] in order (DESIGN §4); the first rejection is the verdict.
    pub fn recognise(&self, inbound: &Inbound<'_>) -> Result<Verdict, NotAnEnvelope> {
        let mut facts = Facts::default();
        for check in CHECKS {
            if let Some(reason) = (check.run)(self, inbound, &mut facts)? {
                debug_assert!(
                    check.codes.contains(&reason.code),
                    "{} is not among its check's codes",
                    reason.code
                );
                return Ok(Verdict {
                    reasons: vec![reason],
                    envelope: facts.signed.map(|s| s.envelope),
                    judged: facts.judged,
                });
            }
        }
        Ok(Verdict {
            reasons: Vec::new(),
            envelope: facts.signed.map(|s| s.envelope),
            judged: facts.judged,
        })
    }
}

/// 1. Transport identity: the delivering node is the claimed sender state's, or a hub.
fn transport_identity(r: &Recogniser<'_>, inbound: &Inbound<'_>, _: &mut Facts<'_>) -> Outcome {
    if let Some(t) = inbound.transport {
        let hub = r.trust.state(t).is_some_and(|s| s.role == Role::Hub);
        if t != inbound.sender && !hub {
            return reject(
                "transport-identity",
                format!(
                    "delivered by {t}'s node, which may not deliver for {}",
                    inbound.sender
                ),
            );
        }
    }
    Ok(None)
}

/// The input is an envelope (else it is refused, not judged) from a state of the trust space.
fn parse_and_know_sender<'a>(
    r: &Recogniser<'a>,
    inbound: &Inbound<'_>,
    facts: &mut Facts<'a>,
) -> Outcome {
    let doc = xml::parse_with_limits(inbound.envelope, &r.limits)
        .map_err(|e| NotAnEnvelope::because("envelope", ":", e))?;
    // Read before the signature is checked only to learn the claimed signing time; every
    // decision after the signature check reads the signed envelope.
    let claimed =
        Envelope::from_document(&doc).map_err(|e| NotAnEnvelope::because("envelope", ": ", e))?;
    let signing_time = claimed.header.created_at.with_timezone(&Utc);
    let Some(sender) = r.trust.state(inbound.sender) else {
        return reject(
            "unknown-sender",
            format!(
                "{} is not a state in trust space v{}",
                inbound.sender, r.trust.version
            ),
        );
    };
    facts.claimed = Some(Claimed {
        doc,
        signing_time,
        sender,
    });
    Ok(None)
}

/// Time evidence: the judged time, the earliest trusted upper bound on when the signature
/// existed (docs/recognition.md, "The judged time"). It runs before the signature check
/// because that check judges the chain's validity at the judged time; the token is bound to
/// the `SignatureValue` bytes the signature check then verifies with the signer's key, so
/// nothing unverified is trusted: a token only bounds the time.
fn time_evidence(r: &Recogniser<'_>, inbound: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let claimed = facts.claimed();
    let mut judged = JudgedTime {
        at: inbound.received_at,
        source: TimeSource::Arrival,
    };
    // A hub's word is evidence only from a hub: any other delivering node could write any
    // time there.
    if let (Some(at), Some(hub)) = (inbound.hub_received_at, inbound.transport) {
        if r.trust.state(hub).is_some_and(|s| s.role == Role::Hub) && at < judged.at {
            judged = JudgedTime {
                at,
                source: TimeSource::Hub { hub: hub.into() },
            };
        }
    }
    match inbound.evidence {
        Some(evidence) => match token_time(r, claimed, evidence) {
            Ok(token) => {
                if token.at < judged.at {
                    judged = token;
                }
            }
            Err(why) => return reject("timestamp-invalid", why),
        },
        None => {
            if let Some(why) = token_required(r, claimed.sender) {
                return reject("timestamp-required", why);
            }
        }
    }
    facts.judged = Some(judged);
    Ok(None)
}

/// The time-stamp evidence over the envelope's signature value, verified against the sender
/// state's authorities in the trust space (`timestamp::Evidence::verify`: the imprint, or the
/// inclusion path to it, over these signature bytes; the token's signature; its authority's
/// certificate chaining to one the state lists, valid at genTime): the judged time it gives,
/// or why it does not hold.
fn token_time(
    r: &Recogniser<'_>,
    claimed: &Claimed<'_>,
    evidence: &[u8],
) -> Result<JudgedTime, String> {
    let sender = claimed.sender;
    let Some(value) = dsig::claimed_signature_value(&claimed.doc) else {
        return Err(
            "the envelope has no readable SignatureValue for the time-stamp evidence to stamp"
                .into(),
        );
    };
    let stamp = tereze_timestamp::Evidence::from_bytes(evidence)
        .and_then(|e| e.verify(&value, &sender.timestamp_authorities))
        .map_err(|e| {
            if sender.timestamp_authorities.is_empty() {
                format!(
                    "{}: {e}; trust space v{} lists no time-stamping authority for {}",
                    e.code(),
                    r.trust.version,
                    sender.code
                )
            } else {
                format!("{}: {e}", e.code())
            }
        })?;
    Ok(JudgedTime {
        at: stamp.gen_time,
        source: TimeSource::Timestamp {
            authority: stamp.authority,
            serial: stamp.serial,
        },
    })
}

/// Why the sender state requires a token that did not come, if it does.
fn token_required(r: &Recogniser<'_>, sender: &tereze_trust::StateEntry) -> Option<String> {
    sender.timestamp_required.then(|| {
        format!(
            "{} requires a time-stamp token over its signatures (timestamp_required, trust space v{}) and none came with the envelope",
            sender.code, r.trust.version
        )
    })
}

/// 2–4. Envelope signature, chain to the sender state's anchor, certificate valid at the
/// judged time and at the signing time the envelope claims.
fn signature(_: &Recogniser<'_>, _: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let claimed = facts.claimed();
    let judged = facts.judged();
    let policy = VerifyPolicy {
        at: Some(judged.at.timestamp()),
        ..VerifyPolicy::default()
    };
    let verified = match dsig::verify(&claimed.doc, &claimed.sender.documents, &policy) {
        Ok(v) => v,
        Err(e) => {
            return Ok(Some(classify_signature_failure(
                &claimed.doc,
                e,
                judged,
                claimed.sender.code.as_str(),
            )))
        }
    };
    // The claim must hold as well: a signer cannot have signed outside its certificate's
    // validity, so a `CreatedAt` there is false whatever the evidence says.
    if let Some(cert) = verified.signer.certificate.as_ref() {
        if !valid_at(cert, claimed.signing_time) {
            return reject(
                "certificate-not-valid",
                format!(
                    "the signer certificate ({} to {}) was not valid at the signing time the envelope claims, {}",
                    cert.not_before(),
                    cert.not_after(),
                    claimed.signing_time.to_rfc3339()
                ),
            );
        }
    }
    let envelope = verified
        .references
        .first()
        .and_then(|r| r.document().ok())
        .map(|d| Envelope::from_document(&d))
        .transpose()
        .map_err(|e| NotAnEnvelope::because("signed envelope", ": ", e))?
        .ok_or_else(|| NotAnEnvelope {
            what: "the signature signs no envelope".into(),
            source: None,
        })?;
    facts.signed = Some(Signed {
        signer: verified.signer,
        envelope,
        algorithms: Used {
            signature_method: verified.signature_method,
            digest_methods: verified.digest_methods,
            key: verified.key,
        },
    });
    Ok(None)
}

/// 4a. The signature used only algorithms the signing state permits (its trust-space
/// policy): the state the signer chains to, which the signature check took from the sender.
/// A state listed for GOST cannot be impersonated with ECDSA, a downgrade.
fn algorithms_permitted(r: &Recogniser<'_>, _: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let state = facts.claimed().sender;
    let Some(policy) = &state.algorithms else {
        return Ok(None);
    };
    let used = &facts.signed().algorithms;
    if let Err(e) = policy.judge_parts(&used.signature_method, &used.digest_methods, &used.key) {
        return reject(
            "algorithm-not-permitted",
            format!(
                "{}'s documents: {e} (trust space v{})",
                state.code, r.trust.version
            ),
        );
    }
    Ok(None)
}

/// 5. Not revoked at the judged time.
///
/// A signature that evidence shows existed before the revocation stands; a backdated
/// `CreatedAt` moves nothing.
fn not_revoked(_: &Recogniser<'_>, _: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let judged = facts.judged();
    let signer = &facts.signed().signer;
    if let Some(cert) = signer.certificate.as_ref() {
        if let Some(when) = facts.claimed().sender.revoked_at(cert) {
            if when <= judged.at {
                return reject(
                    "certificate-revoked",
                    format!(
                        "the signer {} was revoked at {}, before the judged time {} (the envelope claims {})",
                        signer.subject,
                        when.to_rfc3339(),
                        judged,
                        facts.signing_time().to_rfc3339()
                    ),
                );
            }
        }
    }
    Ok(None)
}

/// The signed header must say what the route says.
fn route_agrees(r: &Recogniser<'_>, inbound: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let h = &facts.signed().envelope.header;
    if inbound.message_id.is_some_and(|id| id != h.message_id) {
        return reject(
            "route-mismatch",
            format!(
                "the route names another message than the signed {}",
                h.message_id
            ),
        );
    }
    if h.sender.country != inbound.sender {
        return reject(
            "sender-mismatch",
            format!(
                "signed sender {} is not the route's {}",
                h.sender.country, inbound.sender
            ),
        );
    }
    if h.recipient.country != r.state {
        return reject(
            "recipient-mismatch",
            format!(
                "signed recipient {} is not {}",
                h.recipient.country, r.state
            ),
        );
    }
    Ok(None)
}

/// 6. The claimed signing time is not later than the judged time, within the allowed skew.
///
/// The evidence says the signature existed by then.
fn clock_skew(r: &Recogniser<'_>, _: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let signing_time = facts.signing_time();
    let judged = facts.judged();
    let skew = chrono::Duration::seconds(r.trust.max_clock_skew_seconds);
    if signing_time > judged.at + skew {
        return reject(
            "signing-time-in-future",
            format!(
                "signed at {}, more than {} s after the judged time {}",
                signing_time.to_rfc3339(),
                r.trust.max_clock_skew_seconds,
                judged
            ),
        );
    }
    Ok(None)
}

/// 7. The sender may use this process.
fn process_permitted(r: &Recogniser<'_>, _: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let sender = facts.claimed().sender;
    let h = &facts.signed().envelope.header;
    if !sender.may_use(&h.process) {
        return reject(
            "process-not-permitted",
            format!(
                "{} may not use process {} in trust space v{}",
                sender.code, h.process, r.trust.version
            ),
        );
    }
    Ok(None)
}

/// 8. This document type from this issuing authority is recognised here, on its date.
fn matrix_recognises(r: &Recogniser<'_>, _: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let date = facts.signing_time().date_naive();
    let h = &facts.signed().envelope.header;
    let issuer = &h.document.issuing_authority;
    if !r.trust.recognition.iter().any(|rule| {
        rule.covers(
            &h.document.type_code,
            &issuer.country,
            &issuer.authority,
            r.state,
            date,
        )
    }) {
        return reject(
            "document-not-recognised",
            format!(
                "{} issued by {}:{} is not recognised by {} on {date} (trust space v{})",
                h.document.type_code, issuer.country, issuer.authority, r.state, r.trust.version
            ),
        );
    }
    Ok(None)
}

/// 9. Not expired.
fn not_expired(_: &Recogniser<'_>, inbound: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    if let Some(expires) = facts.signed().envelope.header.expires_at {
        if expires.with_timezone(&Utc) < inbound.received_at {
            return reject(
                "document-expired",
                format!("expired at {}", expires.to_rfc3339()),
            );
        }
    }
    Ok(None)
}

/// 9a. Every attachment the signed header declares is here, with that size and SHA-256:
/// the signature covers the declaration, so the bytes are bound to the envelope.
fn attachments_held(r: &Recogniser<'_>, _: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let h = &facts.signed().envelope.header;
    for a in &h.attachments {
        let held = match r.attachments {
            Some(store) => store.held(h.message_id, &a.id).map_err(|e| {
                NotAnEnvelope::because(format_args!("attachment {}", a.id), ": ", e)
            })?,
            None => None,
        };
        match held {
            None => {
                return reject(
                    "attachment-missing",
                    format!(
                        "attachment {} ({} bytes) declared by the signed header was not received",
                        a.id, a.size
                    ),
                )
            }
            Some(got) if got.sha256 != a.sha256 || got.size != a.size => {
                return reject(
                    "attachment-digest-mismatch",
                    format!(
                        "attachment {}: the signed header declares SHA-256 {} and {} bytes; the bytes received have SHA-256 {} and {} bytes",
                        a.id,
                        tereze_support::hex::hex(&a.sha256),
                        a.size,
                        tereze_support::hex::hex(&got.sha256),
                        got.size
                    ),
                )
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// 9b. When this state requires it for the document type (the trust space's
/// `[[state.national_signature]]`), the signed header records a valid signature of the
/// issuing authority over the national document: a record whose verdict is `unsigned`, or no
/// record at all, is missing; any record that is not `valid` is invalid. The sender's verdict
/// is what is judged: the receiver rarely holds the sender state's national CAs, so the
/// original (attachment `national-original`, bound by 9a) is not verified again here.
fn national_signature_recorded(
    r: &Recogniser<'_>,
    _: &Inbound<'_>,
    facts: &mut Facts<'_>,
) -> Outcome {
    use tereze_codecs::envelope::NationalVerdict;
    let h = &facts.signed().envelope.header;
    let required = r
        .trust
        .state(r.state)
        .is_some_and(|s| s.requires_national_signature(&h.document.type_code));
    if !required {
        return Ok(None);
    }
    let why = format!(
        "{} requires the issuing authority's signature on {} (trust space v{})",
        r.state, h.document.type_code, r.trust.version
    );
    let records = &h.national_signatures;
    if records.is_empty() {
        return reject(
            "national-signature-missing",
            format!("{why}; the envelope records none (the sender did not verify it)"),
        );
    }
    if records
        .iter()
        .all(|n| matches!(n.verdict, NationalVerdict::Unsigned))
    {
        return reject(
            "national-signature-missing",
            format!("{why}; the sender recorded the national document as unsigned at intake"),
        );
    }
    if let Some((i, n)) = records
        .iter()
        .enumerate()
        .find(|(_, n)| n.verdict != NationalVerdict::Valid)
    {
        let reason = match &n.verdict {
            NationalVerdict::Invalid(why) => why.as_str(),
            _ => "not valid",
        };
        return reject(
            "national-signature-invalid",
            format!("{why}; the sender's record {} says: {reason}", i + 1),
        );
    }
    Ok(None)
}

/// 10. The document meets its EAEU model, reference codes included.
fn document_meets_model(r: &Recogniser<'_>, _: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let signed = &facts.signed().envelope;
    let Some(model) = r
        .catalog
        .model_for_type(&signed.header.document.type_code)
        .map(|m| m.id.clone())
    else {
        return reject(
            "document-type-unknown",
            format!(
                "no EAEU document model for type {}",
                signed.header.document.type_code
            ),
        );
    };
    let body = match body_document(r, signed)? {
        Ok(body) => body,
        Err(reason) => return Ok(Some(reason)),
    };
    let on = r.directories.on(facts.signing_time().date_naive());
    let record = match r.catalog.check_eaeu(&on, &model, &body) {
        Ok(record) => record,
        Err(e) => return reject("document-invalid", e.to_string()),
    };
    facts.document = Some((model, record));
    Ok(None)
}

/// The document check 10 reads: inline, or the body by reference read from the attachment 9a
/// found with the signed digest; `Ok(Err(reason))` when it cannot be read for that reason.
fn body_document(
    r: &Recogniser<'_>,
    signed: &Envelope,
) -> Result<Result<Document, Reason>, NotAnEnvelope> {
    let rejected = |code, message| Ok(Err(Reason { code, message }));
    match (signed.body.attachment(), r.attachments) {
        (None, _) => Ok(Ok(signed
            .body
            .document()
            .map_err(|e| NotAnEnvelope::because("signed body", ": ", e))?)),
        (Some(id), Some(store)) => {
            let max = store.max_checked_body_bytes();
            match store.read_small(signed.header.message_id, id, max) {
                Ok(Some(bytes)) => {
                    let limits = xml::Limits {
                        max_bytes: max as usize,
                        max_nodes: xml::Limits::default().max_nodes.max(max as usize / 16),
                        ..r.limits
                    };
                    match xml::parse_with_limits(&bytes, &limits) {
                        Ok(d) => Ok(Ok(d)),
                        Err(e) => {
                            rejected("document-invalid", format!("the body (attachment {id}):{e}"))
                        }
                    }
                }
                Ok(None) => rejected(
                    "body-too-large",
                    format!(
                        "the body (attachment {id}) is over the {max} bytes this node checks against its model (attachments.max_checked_body_bytes)"
                    ),
                ),
                Err(e) => Err(NotAnEnvelope::because(
                    format_args!("the body (attachment {id})"),
                    ": ",
                    e,
                )),
            }
        }
        (Some(id), None) => rejected(
            "attachment-missing",
            format!("the body is attachment {id}, which is not at hand"),
        ),
    }
}

/// 11. The goods' permits, by the integrated tariff on the document's date.
fn permits_present(r: &Recogniser<'_>, _: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let (model, record) = facts
        .document
        .as_ref()
        .expect("CHECKS reads the document before its permits");
    let on = r.directories.on(facts.signing_time().date_naive());
    let missing = r.catalog.missing_documents(&on, model, record);
    if !missing.is_empty() {
        return reject(
            "permits-missing",
            tereze_codecs::translate::describe_missing(&missing, &on),
        );
    }
    Ok(None)
}

/// 12. Trader identifiers are good and their traders active.
///
/// Each is well-formed with valid check digits, of a state in the trust space, and registered
/// and active on the document's date by its state's word.
fn traders_standing(r: &Recogniser<'_>, _: &Inbound<'_>, facts: &mut Facts<'_>) -> Outcome {
    let date = facts.signing_time().date_naive();
    for t in &facts.signed().envelope.header.traders {
        let parsed = match tereze_reference_data::trader::parse(t) {
            Ok(p) => p,
            // A partner state's trader: its numbering rule and register are not ours to
            // check; its form and its state's place in the trust space are.
            Err(tereze_reference_data::trader::TraderError::UnknownCountry { .. })
                if tereze_codecs::envelope::is_trader_identifier(t)
                    && t.get(..2).is_some_and(|c| r.trust.state(c).is_some()) =>
            {
                continue;
            }
            Err(e) => return reject("trader-invalid", format!("{t}: {e}")),
        };
        let country = parsed.country.as_str();
        if r.trust.state(country).is_none() {
            return reject(
                "trader-invalid",
                format!(
                    "{t}: {country} is not a state of trust space v{}",
                    r.trust.version
                ),
            );
        }
        match r.traders.standing(t, date) {
            Standing::Active | Standing::NotChecked => {}
            Standing::Unknown => {
                return reject(
                    "trader-unknown",
                    format!("{t} is not in {country}'s register of traders"),
                )
            }
            Standing::Inactive(why) => {
                return reject(
                    "trader-inactive",
                    format!("{t} is not active in {country}'s register: {why}"),
                )
            }
            Standing::Unresolved(why) => {
                return reject(
                    "trader-unresolved",
                    format!("{t}: {country}'s register could not be asked: {why}"),
                )
            }
        }
    }
    Ok(None)
}

/// Whether `cert` is within its validity at `at`; `false` when that cannot be told.
fn valid_at(cert: &openssl::x509::X509Ref, at: DateTime<Utc>) -> bool {
    let Ok(t) = openssl::asn1::Asn1Time::from_unix(at.timestamp()) else {
        return false;
    };
    let started = cert
        .not_before()
        .compare(&t)
        .is_ok_and(|o| o != std::cmp::Ordering::Greater);
    let running = cert
        .not_after()
        .compare(&t)
        .is_ok_and(|o| o != std::cmp::Ordering::Less);
    started && running
}

/// Why `dsig::verify` said no, as a reason code: a bad signature, a signer that does not
/// chain to the sender's anchor, or one whose certificate was not valid at the judged time.
fn classify_signature_failure(
    doc: &Document,
    e: VerifyError,
    judged: &JudgedTime,
    sender: &str,
) -> Reason {
    match e {
        VerifyError::Dsig(DsigError::UntrustedSigner(why)) => {
            if let Some(cert) = dsig::claimed_signer(doc) {
                if !valid_at(&cert, judged.at) {
                    return Reason {
                        code: "certificate-not-valid",
                        message: format!(
                            "the signer certificate ({} to {}) was not valid at the judged time {}",
                            cert.not_before(),
                            cert.not_after(),
                            judged
                        ),
                    };
                }
            }
            Reason {
                code: "chain-untrusted",
                message: format!("the signer does not chain to an anchor of {sender}: {why}"),
            }
        }
        other => Reason {
            code: "signature-invalid",
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    //! One envelope per check, failing exactly that check and passing every check before it.

    use super::*;
    use chrono::{Duration, FixedOffset};
    use openssl::pkey::{PKey, Private};
    use openssl::x509::X509;
    use tereze_codecs::dsig::{SignOptions, SignTarget, SigningKey};
    use tereze_codecs::envelope::{DocumentRef, Header, MessageKind, Participant, VERSION};
    use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};
    use tereze_testkit::tsa::{TestAuthority, TsaOptions};
    use tereze_trust::devpki::{self, DevPkiSpec};

    const SAMPLE: &[u8] =
        include_bytes!("../../codecs/samples/eaeu.export-declaration/valid-grain.xml");

    struct Fixture {
        dir: tempfile::TempDir,
        trust: TrustSpace,
        catalog: Catalog,
        directories: Directories,
        traders: Registers,
    }

    /// Owner states' registers as recognition sees them: an id not listed is unknown.
    #[derive(Default)]
    struct Registers(std::collections::HashMap<String, Standing>);

    impl TraderCheck for Registers {
        fn standing(&self, id: &str, _: chrono::NaiveDate) -> Standing {
            self.0.get(id).cloned().unwrap_or(Standing::Unknown)
        }
    }

    /// A valid KZ business identification number (check digit computed).
    fn kz_trader(body: &str) -> String {
        let n = tereze_reference_data::trader::complete(
            tereze_reference_data::trader::Country::KZ,
            body,
        )
        .expect("check digit");
        format!("KZ{n}")
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("dir");
        devpki::init(&DevPkiSpec {
            out: dir.path().to_path_buf(),
            states: vec!["KZ".into(), "RU".into(), "BY".into()],
            hub: Some("EEC".into()),
            via_hub: vec![],
            base_port: 20000,
            days: 30,
        })
        .expect("dev PKI");
        let trust =
            TrustSpace::load(&dir.path().join("trust-space.toml"), None).expect("trust space");
        Fixture {
            dir,
            trust,
            catalog: Catalog::builtin().expect("catalog"),
            directories: Directories::builtin(),
            traders: Registers(
                [(kz_trader("99034000045"), Standing::Active)]
                    .into_iter()
                    .collect(),
            ),
        }
    }

    impl Fixture {
        fn read(&self, path: &str) -> Vec<u8> {
            std::fs::read(self.dir.path().join(path)).expect("read")
        }

        fn kz_signer(&self) -> SigningKey {
            SigningKey::from_pem(
                &self.read("kz/signer.key"),
                Some(&self.read("kz/signer.pem")),
            )
            .expect("signer")
        }

        fn kz_root(&self) -> (X509, PKey<Private>) {
            (
                X509::from_pem(&self.read("kz/root.pem")).expect("root"),
                PKey::private_key_from_pem(&self.read("kz/root.key")).expect("key"),
            )
        }

        fn judge<'e>(&self, envelope: &'e [u8], inbound: impl FnOnce(&mut Inbound<'e>)) -> Verdict {
            let r = Recogniser {
                attachments: None,
                trust: &self.trust,
                state: "RU",
                catalog: &self.catalog,
                directories: &self.directories,
                limits: xml::Limits::default(),
                traders: &self.traders,
            };
            let mut i = Inbound {
                envelope,
                sender: "KZ",
                transport: Some("KZ"),
                message_id: None,
                received_at: Utc::now(),
                hub_received_at: None,
                evidence: None,
            };
            inbound(&mut i);
            r.recognise(&i).expect("an envelope")
        }
    }

    fn party(c: &str, a: &str) -> Participant {
        Participant {
            country: c.into(),
            authority: a.into(),
        }
    }

    fn header() -> Header {
        let now = Utc::now().with_timezone(&FixedOffset::east_opt(0).expect("utc"));
        let id = Uuid::new_v4();
        Header {
            message_id: id,
            conversation_id: id,
            procedure_id: id,
            in_reply_to: None,
            process: "P.CC.01".into(),
            message: "P.CC.01.MSG.001".into(),
            transaction: "P.CC.01.TRN.001".into(),
            kind: MessageKind::Request,
            sender: party("KZ", "KGD"),
            recipient: party("RU", "FCS"),
            created_at: now,
            expires_at: Some(now + Duration::days(1)),
            document: DocumentRef {
                type_code: "R.CC.01.001".into(),
                version: "1.0.0".into(),
                issuing_authority: party("KZ", "KGD"),
            },
            traders: vec![kz_trader("99034000045")],
            attachments: Vec::new(),
            national_signatures: Vec::new(),
        }
    }

    fn signed(h: &Header, body: &[u8], key: &SigningKey) -> Vec<u8> {
        let content = xml::parse(body).expect("body");
        let mut doc = Envelope::build_document(VERSION, h, &content).expect("envelope");
        dsig::sign_enveloped(
            &mut doc,
            &SignTarget::Document,
            key,
            &SignOptions::default(),
        )
        .expect("signs");
        doc.to_xml().into_bytes()
    }

    fn code(v: &Verdict) -> &'static str {
        v.reasons.first().map_or("recognised", |r| r.code)
    }

    fn signer_issued_by_kz(f: &Fixture, from_days: i64, to_days: i64) -> SigningKey {
        let (root, root_key) = f.kz_root();
        let key = generate_key(KeyKind::EcP256).expect("key");
        let cert = issue_certificate(
            &CertificateSpec {
                subject: &[("C", "KZ"), ("CN", "KZ signer")],
                not_before_days: from_days,
                not_after_days: to_days,
                is_ca: false,
            },
            &key,
            Some((&root, &root_key)),
        )
        .expect("cert");
        SigningKey::new(key, Some(cert)).expect("signer")
    }

    #[test]
    fn a_good_envelope_is_recognised() {
        let f = fixture();
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |_| {});
        assert!(v.recognised(), "{:?}", v.reasons);
        assert_eq!(
            v.envelope.expect("signed envelope").header.sender.country,
            "KZ"
        );
        // Through the hub as well.
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |i| {
            i.transport = Some("EEC")
        });
        assert!(v.recognised(), "{:?}", v.reasons);
    }

    #[test]
    fn each_check_rejects_with_its_own_reason() {
        let f = fixture();
        let good = f.kz_signer();
        let env = |h: Header| signed(&h, SAMPLE, &good);

        // 1. transport identity
        let v = f.judge(&env(header()), |i| i.transport = Some("BY"));
        assert_eq!(code(&v), "transport-identity");
        // unknown sender state
        let v = f.judge(&env(header()), |i| {
            i.sender = "AM";
            i.transport = None;
        });
        assert_eq!(code(&v), "unknown-sender");
        // 2. signature
        let tampered =
            String::from_utf8(env(header()))
                .expect("utf-8")
                .replacen("Ячмень", "Пшеница", 1);
        assert_ne!(tampered.as_bytes(), env(header()).as_slice());
        assert_eq!(
            code(&f.judge(tampered.as_bytes(), |_| {})),
            "signature-invalid"
        );
        // 3. chain to the sender state's anchor: RU's signer is not KZ's
        let ru = SigningKey::from_pem(&f.read("ru/signer.key"), Some(&f.read("ru/signer.pem")))
            .expect("signer");
        assert_eq!(
            code(&f.judge(&signed(&header(), SAMPLE, &ru), |_| {})),
            "chain-untrusted"
        );
        // 4. certificate valid at signing time
        let expired = signer_issued_by_kz(&f, -10, -1);
        assert_eq!(
            code(&f.judge(&signed(&header(), SAMPLE, &expired), |_| {})),
            "certificate-not-valid"
        );
        let not_yet = signer_issued_by_kz(&f, 1, 10);
        assert_eq!(
            code(&f.judge(&signed(&header(), SAMPLE, &not_yet), |_| {})),
            "certificate-not-valid"
        );
        // the route and the signed header agree
        let v = f.judge(&env(header()), |i| i.message_id = Some(Uuid::new_v4()));
        assert_eq!(code(&v), "route-mismatch");
        let mut h = header();
        h.sender = party("BY", "SW");
        assert_eq!(code(&f.judge(&env(h), |_| {})), "sender-mismatch");
        let mut h = header();
        h.recipient = party("BY", "SW");
        assert_eq!(code(&f.judge(&env(h), |_| {})), "recipient-mismatch");
        // 5. clock skew
        let mut h = header();
        h.created_at += Duration::hours(1);
        h.expires_at = Some(h.created_at + Duration::days(1));
        assert_eq!(code(&f.judge(&env(h), |_| {})), "signing-time-in-future");
        // 6. process permitted
        let mut h = header();
        h.process = "P.ZZ.01".into();
        h.message = "P.ZZ.01.MSG.001".into();
        h.transaction = "P.ZZ.01.TRN.001".into();
        assert_eq!(code(&f.judge(&env(h), |_| {})), "process-not-permitted");
        // 8. not expired (judged two days later)
        let v = f.judge(&env(header()), |i| {
            i.received_at = Utc::now() + Duration::days(2)
        });
        assert_eq!(code(&v), "document-expired");
        // 9. the document meets its model, codes included
        let mut h = header();
        h.document.type_code = "R.ZZ.01.001".into();
        let v = f.judge(&env(h), |_| {});
        // The matrix here recognises every type ("*"), so the unknown type is caught by the
        // model check.
        assert_eq!(code(&v), "document-type-unknown");
        let bad_body = String::from_utf8(SAMPLE.to_vec())
            .expect("utf-8")
            .replacen(">KZ<", ">ZZ<", 1);
        assert_ne!(bad_body.as_bytes(), SAMPLE);
        let v = f.judge(&signed(&header(), bad_body.as_bytes(), &good), |_| {});
        assert_eq!(code(&v), "document-invalid", "{:?}", v.reasons);
        // 10. the permits the goods need by the integrated tariff: the wheat's phytosanitary
        // certificate listed as another kind of document
        let no_phyto = String::from_utf8(SAMPLE.to_vec())
            .expect("utf-8")
            .replacen(">01011<", ">02014<", 1);
        assert_ne!(no_phyto.as_bytes(), SAMPLE);
        let v = f.judge(&signed(&header(), no_phyto.as_bytes(), &good), |_| {});
        assert_eq!(code(&v), "permits-missing", "{:?}", v.reasons);
        let says = &v.reasons[0].message;
        assert!(says.contains("1001990000 needs 01011"), "{says}");
        // 11. trader identifiers: form and check digits, state, standing in its register
        let mut h = header();
        h.traders = vec!["ZZ123456789".into()];
        assert_eq!(code(&f.judge(&env(h), |_| {})), "trader-invalid");
        let good_id = kz_trader("99034000045");
        let last = good_id.as_bytes()[13] - b'0';
        let mut h = header();
        h.traders = vec![format!("{}{}", &good_id[..13], (last + 1) % 10)];
        let v = f.judge(&env(h), |_| {});
        assert_eq!(code(&v), "trader-invalid");
        assert!(
            v.reasons[0].message.contains("check digit"),
            "{:?}",
            v.reasons
        );
        let mut h = header();
        h.traders = vec!["AM12345678".into()];
        assert_eq!(
            code(&f.judge(&env(h), |_| {})),
            "trader-invalid",
            "AM is not a state of this trust space"
        );
        let mut h = header();
        h.traders = vec![kz_trader("98114000155")];
        assert_eq!(code(&f.judge(&env(h), |_| {})), "trader-unknown");
        let mut f = f;
        f.traders.0.insert(
            kz_trader("98114000155"),
            Standing::Inactive("liquidated on 2025-06-01".into()),
        );
        f.traders.0.insert(
            kz_trader("01024000123"),
            Standing::Unresolved("KZ's node did not answer".into()),
        );
        let good = f.kz_signer();
        let env = |h: Header| signed(&h, SAMPLE, &good);
        let mut h = header();
        h.traders = vec![kz_trader("98114000155")];
        assert_eq!(code(&f.judge(&env(h), |_| {})), "trader-inactive");
        let mut h = header();
        h.traders = vec![kz_trader("01024000123")];
        assert_eq!(code(&f.judge(&env(h), |_| {})), "trader-unresolved");
    }

    fn national(
        verdict: tereze_codecs::envelope::NationalVerdict,
    ) -> tereze_codecs::envelope::NationalSignature {
        use tereze_codecs::envelope::{NationalVerdict, SigningTimeSource};
        let valid = verdict == NationalVerdict::Valid;
        let named = |v: &str| valid.then(|| v.to_owned());
        tereze_codecs::envelope::NationalSignature {
            covers: named("/Certificate"),
            signer: named("CN=Inspector, C=KZ"),
            issuer: named("CN=KZ National CA, C=KZ"),
            serial: named("1F"),
            signature_method: named("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"),
            verdict,
            signing_time: Utc::now().fixed_offset(),
            time_source: SigningTimeSource::Intake,
        }
    }

    #[test]
    fn a_required_national_signature_must_be_recorded_valid() {
        use tereze_codecs::envelope::NationalVerdict;
        let mut f = fixture();
        let judge = |f: &Fixture, records: Vec<tereze_codecs::envelope::NationalSignature>| {
            let mut h = header();
            h.national_signatures = records;
            code(&f.judge(&signed(&h, SAMPLE, &f.kz_signer()), |_| {}))
        };
        // Not required (no entry, as in every trust space before it existed): no record is fine.
        assert_eq!(judge(&f, vec![]), "recognised");
        f.trust
            .states
            .get_mut("RU")
            .expect("RU")
            .national_signature_required = vec!["R.CC.01.001".into()];
        assert_eq!(judge(&f, vec![]), "national-signature-missing");
        assert_eq!(
            judge(&f, vec![national(NationalVerdict::Unsigned)]),
            "national-signature-missing"
        );
        let refused = national(NationalVerdict::Invalid("signer not trusted".into()));
        let mut h = header();
        h.national_signatures = vec![national(NationalVerdict::Valid), refused];
        let v = f.judge(&signed(&h, SAMPLE, &f.kz_signer()), |_| {});
        assert_eq!(code(&v), "national-signature-invalid");
        assert!(
            v.reasons[0].message.contains("signer not trusted"),
            "{:?}",
            v.reasons
        );
        assert_eq!(
            judge(&f, vec![national(NationalVerdict::Valid)]),
            "recognised"
        );
        // Required only for the types listed.
        f.trust
            .states
            .get_mut("RU")
            .expect("RU")
            .national_signature_required = vec!["R.SF.01.001".into()];
        assert_eq!(judge(&f, vec![]), "recognised");
    }

    #[test]
    fn the_checks_run_in_the_order_docs_recognition_md_lists_their_codes() {
        let doc = include_str!("../../docs/recognition.md");
        // The reason-code column of the table: rows `| # | `code` | … |`.
        let documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| ")?.split(" | ").nth(1))
            .filter_map(|c| c.strip_prefix('`')?.strip_suffix('`'))
            .collect();
        let table: Vec<&str> = CHECKS
            .iter()
            .flat_map(|c| c.codes.iter().copied())
            .collect();
        assert_eq!(table, documented);
    }

    #[test]
    fn the_recognition_matrix_decides_by_type_issuer_state_and_date() {
        let mut f = fixture();
        let text = std::fs::read_to_string(f.dir.path().join("trust-space.toml")).expect("read");
        let (head, _) = text.split_once("[[recognition]]").expect("a matrix");
        let matrix = "[[recognition]]\ndocument = \"R.CC.01.001\"\nissuer = \"KZ:KGD\"\nrecognised_by = [\"BY\"]\nvalid_from = \"2020-01-01\"\nvalid_to = \"\"\n\n[[recognition]]\ndocument = \"R.CC.01.001\"\nissuer = \"KZ\"\nrecognised_by = [\"RU\"]\nvalid_from = \"2020-01-01\"\nvalid_to = \"2021-12-31\"\n";
        let path = f.dir.path().join("limited.toml");
        std::fs::write(&path, format!("{head}{matrix}")).expect("write");
        f.trust = TrustSpace::load(&path, None).expect("loads");
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |_| {});
        assert_eq!(
            code(&v),
            "document-not-recognised",
            "RU's row ended in 2021"
        );
        assert!(v.reasons[0]
            .message
            .contains("R.CC.01.001 issued by KZ:KGD"));
        let rule = &f.trust.recognition[0];
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        assert!(rule.covers("R.CC.01.001", "KZ", "KGD", "BY", day));
        assert!(
            !rule.covers("R.CC.01.001", "KZ", "FCS", "BY", day),
            "another authority"
        );
        assert!(
            !rule.covers("R.SF.01.001", "KZ", "KGD", "BY", day),
            "another type"
        );
        assert!(
            !rule.covers(
                "R.CC.01.001",
                "KZ",
                "KGD",
                "BY",
                chrono::NaiveDate::from_ymd_opt(2019, 1, 1).expect("date")
            ),
            "before it starts"
        );
    }

    /// Revokes `cert` with KZ's root through the openssl CLI (the openssl crate builds no
    /// CRLs); the revocation time is now. Returns the CRL in PEM.
    fn revoke(f: &Fixture, cert: &X509) -> String {
        let d = f.dir.path().join("ca");
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("index.txt"), "").expect("index");
        std::fs::write(d.join("crlnumber"), "01\n").expect("crlnumber");
        std::fs::write(
            d.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n",
        )
        .expect("config");
        std::fs::write(d.join("victim.pem"), cert.to_pem().expect("pem")).expect("pem");
        let root = f.dir.path().join("kz");
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .current_dir(&d)
                .args(args)
                .output()
                .expect("openssl runs (scripts/setup installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = root.join("root.key");
        let pem = root.join("root.pem");
        let (key, pem) = (key.to_str().expect("utf-8"), pem.to_str().expect("utf-8"));
        run(&[
            "ca",
            "-config",
            "ca.cnf",
            "-keyfile",
            key,
            "-cert",
            pem,
            "-revoke",
            "victim.pem",
        ]);
        run(&[
            "ca", "-config", "ca.cnf", "-keyfile", key, "-cert", pem, "-gencrl", "-out", "crl.pem",
        ]);
        std::fs::read_to_string(d.join("crl.pem")).expect("crl")
    }

    /// A KZ signer whose certificate KZ's CA revoked just now, its CRL inline in `f`'s trust
    /// space.
    fn revoked_signer(f: &mut Fixture) -> SigningKey {
        let signer = signer_issued_by_kz(f, -10, 10);
        revoke_now(f, &signer);
        signer
    }

    /// KZ's CA revokes `signer` now; the CRL goes inline into `f`'s trust space.
    fn revoke_now(f: &mut Fixture, signer: &SigningKey) {
        let cert = signer.certificate().expect("cert").clone();
        let crl = revoke(f, &cert);
        let text = std::fs::read_to_string(f.dir.path().join("trust-space.toml")).expect("read");
        let text = text.replacen(
            "code = \"KZ\"\n",
            &format!("code = \"KZ\"\ncrls = [\"\"\"\n{crl}\"\"\"]\n"),
            1,
        );
        let path = f.dir.path().join("with-crl.toml");
        std::fs::write(&path, text).expect("write");
        let authorities = f.trust.states["KZ"].timestamp_authorities.clone();
        f.trust = TrustSpace::load(&path, None).expect("loads");
        f.trust
            .states
            .get_mut("KZ")
            .expect("KZ")
            .timestamp_authorities = authorities;
    }

    #[test]
    fn a_certificate_revoked_before_the_evidence_is_rejected_after_it_is_not() {
        let mut f = fixture();
        let signer = revoked_signer(&mut f);

        // Signed two minutes after the revocation (within the allowed clock skew).
        let mut h = header();
        h.created_at += Duration::minutes(2);
        let v = f.judge(&signed(&h, SAMPLE, &signer), |_| {});
        assert_eq!(code(&v), "certificate-revoked", "{:?}", v.reasons);
        // Signed an hour before the revocation and stored then (judged again now): the
        // signature stays good.
        let mut h = header();
        h.created_at -= Duration::hours(1);
        let v = f.judge(&signed(&h, SAMPLE, &signer), |i| {
            i.received_at = Utc::now() - Duration::minutes(59)
        });
        assert!(v.recognised(), "{:?}", v.reasons);
        // Other KZ signers are unaffected.
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |_| {});
        assert!(v.recognised(), "{:?}", v.reasons);
    }

    /// The issue's attack: a stolen key, revoked, signs with `CreatedAt` set before the
    /// revocation. It arrives after the revocation, so it is judged then.
    #[test]
    fn a_backdated_signing_time_gains_nothing_after_the_revocation() {
        let mut f = fixture();
        let signer = revoked_signer(&mut f);
        let mut h = header();
        h.created_at -= Duration::minutes(5);
        let v = f.judge(&signed(&h, SAMPLE, &signer), |_| {});
        assert_eq!(code(&v), "certificate-revoked", "{:?}", v.reasons);
        let judged = v.judged.expect("a judged time");
        assert_eq!(judged.source, TimeSource::Arrival);
        assert!(
            v.reasons[0]
                .message
                .contains(&format!("before the judged time {judged}")),
            "{:?}",
            v.reasons
        );
        assert!(
            v.reasons[0].message.contains("(first stored by this node)"),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn a_hubs_earlier_first_storage_is_the_judged_time() {
        let mut f = fixture();
        let signer = revoked_signer(&mut f);
        let mut h = header();
        h.created_at -= Duration::hours(1);
        let env = signed(&h, SAMPLE, &signer);
        let hub_time = Utc::now() - Duration::minutes(59);
        // The hub EEC stored it before the revocation; this node only now.
        let v = f.judge(&env, |i| {
            i.transport = Some("EEC");
            i.hub_received_at = Some(hub_time);
        });
        assert!(v.recognised(), "{:?}", v.reasons);
        assert_eq!(
            v.judged,
            Some(JudgedTime {
                at: hub_time,
                source: TimeSource::Hub { hub: "EEC".into() }
            })
        );
        // The same word from a node that is not a hub is no evidence.
        let v = f.judge(&env, |i| i.hub_received_at = Some(hub_time));
        assert_eq!(code(&v), "certificate-revoked", "{:?}", v.reasons);
        assert_eq!(v.judged.map(|j| j.source), Some(TimeSource::Arrival));
        // A hub time later than this node's is not the earliest.
        let arrived = Utc::now() - Duration::minutes(58);
        let v = f.judge(&env, |i| {
            i.transport = Some("EEC");
            i.hub_received_at = Some(Utc::now());
            i.received_at = arrived;
        });
        assert!(v.recognised(), "{:?}", v.reasons);
        assert_eq!(
            v.judged,
            Some(JudgedTime {
                at: arrived,
                source: TimeSource::Arrival
            })
        );
    }

    #[test]
    fn an_expiring_signer_is_recognised_when_a_hub_stored_it_within_its_validity() {
        let f = fixture();
        // Valid from yesterday (as KZ's root) until now.
        let expiring = signer_issued_by_kz(&f, -1, 0);
        let mut h = header();
        h.created_at -= Duration::hours(1);
        let env = signed(&h, SAMPLE, &expiring);
        let later = Utc::now() + Duration::minutes(1);
        // Signed while the certificate was valid, but nothing shows it existed before the
        // expiry: judged at its arrival, after it.
        let v = f.judge(&env, |i| i.received_at = later);
        assert_eq!(code(&v), "certificate-not-valid", "{:?}", v.reasons);
        assert!(
            v.reasons[0].message.contains("at the judged time"),
            "{:?}",
            v.reasons
        );
        // A hub stored it then.
        let v = f.judge(&env, |i| {
            i.received_at = later;
            i.transport = Some("EEC");
            i.hub_received_at = Some(Utc::now() - Duration::minutes(59));
        });
        assert!(v.recognised(), "{:?}", v.reasons);
    }

    #[test]
    fn a_claimed_signing_time_outside_the_certificates_validity_is_rejected() {
        let f = fixture();
        let signer = signer_issued_by_kz(&f, -1, 10);
        let mut h = header();
        h.created_at -= Duration::days(3);
        let v = f.judge(&signed(&h, SAMPLE, &signer), |_| {});
        assert_eq!(code(&v), "certificate-not-valid", "{:?}", v.reasons);
        assert!(
            v.reasons[0]
                .message
                .contains("at the signing time the envelope claims"),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn a_signing_time_later_than_the_evidence_is_in_the_future() {
        let f = fixture();
        let env = signed(&header(), SAMPLE, &f.kz_signer());
        let v = f.judge(&env, |i| {
            i.transport = Some("EEC");
            i.hub_received_at = Some(Utc::now() - Duration::hours(1));
        });
        assert_eq!(code(&v), "signing-time-in-future", "{:?}", v.reasons);
        assert!(
            v.reasons[0].message.contains("(first stored by hub EEC)"),
            "{:?}",
            v.reasons
        );
    }

    /// `tsa` becomes KZ's time-stamping authority in `f`'s trust space.
    fn kz_authority(f: &mut Fixture, tsa: &TestAuthority) {
        let authority =
            tereze_timestamp::Authority::from_pem("KZ", &tsa.url(), tsa.ca_pem().as_bytes())
                .expect("authority");
        f.trust
            .states
            .get_mut("KZ")
            .expect("KZ")
            .timestamp_authorities = vec![authority];
    }

    /// Evidence from `tsa` over `envelope`'s signature value, as the middle item of a batch
    /// of three (so its inclusion path is checked too), encoded as the node stores it.
    fn evidence(tsa: &TestAuthority, envelope: &[u8]) -> Vec<u8> {
        let doc = xml::parse(envelope).expect("envelope");
        let value = dsig::claimed_signature_value(&doc).expect("a signature value");
        let batch = [b"before".to_vec(), value, b"after".to_vec()];
        let (imprint, paths) = tereze_timestamp::batch(&batch);
        let (query, _) = tereze_timestamp::request(&imprint);
        let token = tsa.token(&query).expect("a token");
        tereze_timestamp::Evidence::new(token, paths[1].clone()).to_bytes()
    }

    /// Revocation times have a resolution of a second: wait one out so that a token from
    /// before stays before.
    fn next_second() {
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }

    #[test]
    fn a_token_from_before_the_revocation_keeps_the_signature_good() {
        let mut f = fixture();
        let tsa = TestAuthority::new();
        kz_authority(&mut f, &tsa);
        let signer = signer_issued_by_kz(&f, -10, 10);
        let env = signed(&header(), SAMPLE, &signer);
        let stamped = evidence(&tsa, &env);
        next_second();
        revoke_now(&mut f, &signer);

        // It arrives after the revocation; the token shows it existed before.
        let v = f.judge(&env, |i| i.evidence = Some(&stamped));
        assert!(v.recognised(), "{:?}", v.reasons);
        let judged = v.judged.expect("a judged time");
        assert!(
            matches!(&judged.source, TimeSource::Timestamp { authority, .. } if authority.contains("Tereze test TSA")),
            "{judged:?}"
        );
        assert!(judged.at < Utc::now() - Duration::seconds(1), "{judged:?}");
        // Without it, judged at its arrival: revoked.
        let v = f.judge(&env, |_| {});
        assert_eq!(code(&v), "certificate-revoked", "{:?}", v.reasons);
    }

    #[test]
    fn a_token_from_after_the_revocation_does_not_help() {
        let mut f = fixture();
        let tsa = TestAuthority::new();
        kz_authority(&mut f, &tsa);
        let signer = revoked_signer(&mut f);
        let mut h = header();
        h.created_at -= Duration::minutes(5);
        let env = signed(&h, SAMPLE, &signer);
        let stamped = evidence(&tsa, &env);
        let v = f.judge(&env, |i| i.evidence = Some(&stamped));
        assert_eq!(code(&v), "certificate-revoked", "{:?}", v.reasons);
        assert!(
            v.reasons[0].message.contains("time-stamp token"),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn evidence_that_does_not_verify_is_timestamp_invalid_saying_why() {
        let mut f = fixture();
        let tsa = TestAuthority::new();
        kz_authority(&mut f, &tsa);
        let env = signed(&header(), SAMPLE, &f.kz_signer());
        let reason = |f: &Fixture, evidence: &[u8]| {
            let v = f.judge(&env, |i| i.evidence = Some(evidence));
            assert_eq!(code(&v), "timestamp-invalid", "{:?}", v.reasons);
            v.reasons[0].message.clone()
        };
        // A token over another envelope's signature.
        let other = signed(&header(), SAMPLE, &f.kz_signer());
        assert_ne!(other, env);
        let says = reason(&f, &evidence(&tsa, &other));
        assert!(says.starts_with("other-imprint: "), "{says}");
        // A token from an authority KZ does not list.
        let stranger = TestAuthority::new();
        let says = reason(&f, &evidence(&stranger, &env));
        assert!(says.starts_with("untrusted-authority: "), "{says}");
        // A listed authority whose certificate had expired at genTime.
        let expired = TestAuthority::with(TsaOptions {
            expired: true,
            ..TsaOptions::default()
        });
        kz_authority(&mut f, &expired);
        let says = reason(&f, &evidence(&expired, &env));
        assert!(says.starts_with("not-valid-at-gen-time: "), "{says}");
        // Not evidence at all.
        kz_authority(&mut f, &tsa);
        let says = reason(&f, b"TZTE\x01garbage");
        assert!(says.starts_with("bad-evidence: "), "{says}");
        // The signature still comes second: a good token over a tampered envelope's
        // (unchanged) signature value does not make it genuine.
        let tampered =
            String::from_utf8(env.clone())
                .expect("utf-8")
                .replacen("Ячмень", "Пшеница", 1);
        let good = evidence(&tsa, &env);
        let v = f.judge(tampered.as_bytes(), |i| i.evidence = Some(&good));
        assert_eq!(code(&v), "signature-invalid", "{:?}", v.reasons);
    }

    #[test]
    fn a_state_that_requires_a_token_rejects_an_envelope_without_one() {
        let mut f = fixture();
        let tsa = TestAuthority::new();
        kz_authority(&mut f, &tsa);
        f.trust.states.get_mut("KZ").expect("KZ").timestamp_required = true;
        let env = signed(&header(), SAMPLE, &f.kz_signer());
        let v = f.judge(&env, |_| {});
        assert_eq!(code(&v), "timestamp-required", "{:?}", v.reasons);
        assert!(
            v.reasons[0]
                .message
                .starts_with("KZ requires a time-stamp token"),
            "{:?}",
            v.reasons
        );
        let stamped = evidence(&tsa, &env);
        let v = f.judge(&env, |i| i.evidence = Some(&stamped));
        assert!(v.recognised(), "{:?}", v.reasons);
        // A state that does not require one takes envelopes without.
        f.trust.states.get_mut("KZ").expect("KZ").timestamp_required = false;
        assert!(f.judge(&env, |_| {}).recognised());
    }

    #[test]
    fn an_expired_signer_is_recognised_with_a_token_inside_its_validity() {
        let mut f = fixture();
        let tsa = TestAuthority::new();
        kz_authority(&mut f, &tsa);
        // Valid until tomorrow; the envelope arrives (is first stored) in two days.
        let signer = signer_issued_by_kz(&f, -1, 1);
        let mut h = header();
        h.expires_at = Some(h.created_at + Duration::days(3));
        let env = signed(&h, SAMPLE, &signer);
        let stamped = evidence(&tsa, &env);
        let later = Utc::now() + Duration::days(2);
        let v = f.judge(&env, |i| i.received_at = later);
        assert_eq!(code(&v), "certificate-not-valid", "{:?}", v.reasons);
        let v = f.judge(&env, |i| {
            i.received_at = later;
            i.evidence = Some(&stamped);
        });
        assert!(v.recognised(), "{:?}", v.reasons);
        assert_eq!(v.judged.map(|j| j.source.code()), Some("timestamp"));
    }

    #[test]
    fn a_signer_under_an_intermediate_ca_is_recognised_when_it_sends_the_intermediate() {
        let f = fixture();
        let (root, root_key) = f.kz_root();
        let spec = |ca: bool| CertificateSpec {
            subject: if ca {
                &[("C", "KZ"), ("CN", "KZ intermediate CA")]
            } else {
                &[("C", "KZ"), ("CN", "KZ signer under intermediate")]
            },
            not_before_days: -1,
            not_after_days: 10,
            is_ca: ca,
        };
        let mid_key = generate_key(KeyKind::EcP256).expect("key");
        let mid = issue_certificate(&spec(true), &mid_key, Some((&root, &root_key)))
            .expect("intermediate");
        let key = generate_key(KeyKind::EcP256).expect("key");
        let leaf = issue_certificate(&spec(false), &key, Some((&mid, &mid_key))).expect("leaf");
        let mut chain = leaf.to_pem().expect("pem");
        chain.extend(mid.to_pem().expect("pem"));
        let with_intermediate =
            SigningKey::from_pem(&key.private_key_to_pem_pkcs8().expect("pem"), Some(&chain))
                .expect("signer");
        let v = f.judge(&signed(&header(), SAMPLE, &with_intermediate), |_| {});
        assert!(v.recognised(), "{:?}", v.reasons);
        // Without the intermediate the chain cannot be built.
        let alone = SigningKey::new(key, Some(leaf)).expect("signer");
        let v = f.judge(&signed(&header(), SAMPLE, &alone), |_| {});
        assert_eq!(code(&v), "chain-untrusted");
    }

    #[test]
    fn a_partner_state_is_recognised_only_where_the_matrix_says() {
        let dir = tempfile::tempdir().expect("dir");
        devpki::init(&DevPkiSpec {
            out: dir.path().to_path_buf(),
            states: vec!["KZ".into(), "RU".into(), "CN".into()],
            hub: None,
            via_hub: vec![],
            base_port: 20300,
            days: 30,
        })
        .expect("dev PKI");
        let text = std::fs::read_to_string(dir.path().join("trust-space.toml")).expect("read");
        let (head, _) = text.split_once("[[recognition]]").expect("matrix");
        let head = head.replacen(
            "code = \"CN\"\nname = \"CN\"\n",
            "code = \"CN\"\nname = \"China\"\npartner = true\n",
            1,
        );
        assert!(head.contains("partner = true"));
        let matrix = "[[recognition]]\ndocument = \"*\"\nissuer = \"KZ\"\nrecognised_by = [\"*\"]\nvalid_from = \"2020-01-01\"\n\n[[recognition]]\ndocument = \"R.SF.01.001\"\nissuer = \"CN\"\nrecognised_by = [\"RU\"]\nvalid_from = \"2020-01-01\"\n";
        let path = dir.path().join("partner.toml");
        std::fs::write(&path, format!("{head}{matrix}")).expect("write");
        let f = Fixture {
            trust: TrustSpace::load(&path, None).expect("loads"),
            dir,
            catalog: Catalog::builtin().expect("catalog"),
            directories: Directories::builtin(),
            traders: fixture().traders,
        };
        assert!(f.trust.state("CN").expect("CN").partner);
        let cn = SigningKey::from_pem(&f.read("cn/signer.key"), Some(&f.read("cn/signer.pem")))
            .expect("signer");
        let from_cn = |mut h: Header| {
            h.sender = party("CN", "GACC");
            h.document.issuing_authority = party("CN", "GACC");
            h.traders = vec![];
            h
        };
        let as_cn = |i: &mut Inbound<'_>| {
            i.sender = "CN";
            i.transport = Some("CN");
        };
        // An export declaration from the partner: no row covers it.
        let v = f.judge(&signed(&from_cn(header()), SAMPLE, &cn), as_cn);
        assert_eq!(code(&v), "document-not-recognised", "{:?}", v.reasons);
        // Its phytosanitary certificate: recognised by Russia, as the row says.
        let mut h = from_cn(header());
        h.process = "P.SF.01".into();
        h.message = "P.SF.01.MSG.001".into();
        h.transaction = "P.SF.01.TRN.001".into();
        h.document.type_code = "R.SF.01.001".into();
        let phyto: &[u8] =
            include_bytes!("../../codecs/samples/eaeu.phytosanitary-certificate/valid-wheat.xml");
        let v = f.judge(&signed(&h, phyto, &cn), as_cn);
        assert!(v.recognised(), "{:?}", v.reasons);
        // Kazakhstan's documents are still recognised under the first row.
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |_| {});
        assert!(v.recognised(), "{:?}", v.reasons);
    }

    /// KZ's trust-space policy becomes `written` (TOML, as an operator writes it).
    fn kz_policy(f: &mut Fixture, written: &str) {
        let file: tereze_trust::FileAlgorithms = toml_policy(written);
        let policy = tereze_trust::algorithms::AlgorithmPolicy::read(&file).expect("policy");
        f.trust.states.get_mut("KZ").expect("KZ").algorithms = Some(policy);
    }

    fn toml_policy(written: &str) -> tereze_trust::FileAlgorithms {
        let text = format!("version = 1\nissued_at = \"\"\n[[state]]\ncode = \"KZ\"\nname = \"\"\nrole = \"member\"\nanchors = []\n[state.algorithms]\n{written}\n");
        let file = tereze_trust::TrustSpace::read(text.as_bytes(), None)
            .expect("TOML")
            .0;
        file.states[0].algorithms.clone().expect("a policy")
    }

    /// A KZ signer of `kind`, its certificate issued by KZ's root.
    fn kz_signer_of(f: &Fixture, kind: KeyKind) -> SigningKey {
        let (root, root_key) = f.kz_root();
        let key = generate_key(kind).expect("key");
        let cert = issue_certificate(
            &CertificateSpec {
                subject: &[("C", "KZ"), ("CN", "KZ signer")],
                not_before_days: -1,
                not_after_days: 30,
                is_ca: false,
            },
            &key,
            Some((&root, &root_key)),
        )
        .expect("cert");
        SigningKey::new(key, Some(cert)).expect("signer")
    }

    fn signed_with(h: &Header, key: &SigningKey, digest: dsig::DigestMethod) -> Vec<u8> {
        let content = xml::parse(SAMPLE).expect("body");
        let mut doc = Envelope::build_document(VERSION, h, &content).expect("envelope");
        let options = SignOptions {
            digest,
            ..SignOptions::default()
        };
        dsig::sign_enveloped(&mut doc, &SignTarget::Document, key, &options).expect("signs");
        doc.to_xml().into_bytes()
    }

    #[test]
    fn a_state_that_permits_the_algorithm_recognises_its_documents() {
        let mut f = fixture();
        kz_policy(
            &mut f,
            "signature = [\"ecdsa-sha256\"]\ndigest = [\"sha256\"]\nmin_ec_bits = 256",
        );
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |_| {});
        assert!(v.recognised(), "{:?}", v.reasons);
    }

    #[test]
    fn an_algorithm_the_state_does_not_permit_is_refused_naming_found_and_permitted() {
        let mut f = fixture();
        kz_policy(&mut f, "signature = [\"ecdsa-sha384\", \"ecdsa-sha512\"]");
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |_| {});
        assert_eq!(code(&v), "algorithm-not-permitted");
        assert_eq!(
            v.reasons[0].message,
            format!(
                "KZ's documents: signature method ecdsa-sha256 is not permitted (permitted: \
                 ecdsa-sha384, ecdsa-sha512) (trust space v{})",
                f.trust.version
            )
        );
        // The same key signing with SHA-512 uses a permitted method.
        let v = f.judge(
            &signed_with(&header(), &f.kz_signer(), dsig::DigestMethod::SHA512),
            |_| {},
        );
        assert!(v.recognised(), "{:?}", v.reasons);

        // Digests: the reference's DigestMethod is judged as well as the SignatureMethod's.
        kz_policy(&mut f, "digest = [\"sha512\"]");
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |_| {});
        assert_eq!(code(&v), "algorithm-not-permitted");
        assert!(
            v.reasons[0]
                .message
                .contains("digest method sha256 is not permitted (permitted: sha512)"),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn a_state_listed_for_gost_sending_ecdsa_is_a_refused_downgrade() {
        let mut f = fixture();
        kz_policy(
            &mut f,
            "signature = [\"gost2012-256\", \"gost2012-512\"]\ndigest = [\"gost2012-256\", \"gost2012-512\"]",
        );
        // A valid signature by KZ's own, trusted signer: only the algorithm is wrong.
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |_| {});
        assert_eq!(code(&v), "algorithm-not-permitted");
        assert!(
            v.reasons[0].message.contains(
                "signature method ecdsa-sha256 is not permitted (permitted: gost2012-256, \
                 gost2012-512)"
            ),
            "{:?}",
            v.reasons
        );
        // The check runs after the signature's: a tampered envelope is still
        // signature-invalid, whatever its algorithm.
        let tampered = String::from_utf8(signed(&header(), SAMPLE, &f.kz_signer()))
            .expect("utf-8")
            .replacen("Ячмень", "Пшеница", 1);
        assert_eq!(
            code(&f.judge(tampered.as_bytes(), |_| {})),
            "signature-invalid"
        );
    }

    #[test]
    fn a_key_under_the_states_minimum_size_is_refused() {
        let mut f = fixture();
        kz_policy(&mut f, "min_ec_bits = 384\nmin_rsa_bits = 3072");
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |_| {});
        assert_eq!(code(&v), "algorithm-not-permitted");
        assert!(
            v.reasons[0]
                .message
                .contains("EC key of 256 bits is under the minimum of 384 bits"),
            "{:?}",
            v.reasons
        );
        let p384 = kz_signer_of(&f, KeyKind::EcP384);
        let v = f.judge(&signed(&header(), SAMPLE, &p384), |_| {});
        assert!(v.recognised(), "{:?}", v.reasons);
        let rsa = kz_signer_of(&f, KeyKind::Rsa(2048));
        let v = f.judge(&signed(&header(), SAMPLE, &rsa), |_| {});
        assert_eq!(code(&v), "algorithm-not-permitted");
        assert!(
            v.reasons[0]
                .message
                .contains("RSA key of 2048 bits is under the minimum of 3072 bits"),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn a_state_without_a_policy_keeps_the_verifiers_defaults() {
        let f = fixture();
        assert!(f.trust.state("KZ").expect("KZ").algorithms.is_none());
        for kind in [KeyKind::EcP256, KeyKind::EcP384, KeyKind::Rsa(2048)] {
            let v = f.judge(&signed(&header(), SAMPLE, &kz_signer_of(&f, kind)), |_| {});
            assert!(v.recognised(), "{kind:?}: {:?}", v.reasons);
        }
        // SHA-1 stays refused by the verifier itself.
        let sha1 = String::from_utf8(signed(&header(), SAMPLE, &f.kz_signer()))
            .expect("utf-8")
            .replace(
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
            );
        let v = f.judge(sha1.as_bytes(), |_| {});
        assert_eq!(code(&v), "signature-invalid");
        assert!(v.reasons[0].message.contains("SHA-1"), "{:?}", v.reasons);
    }

    #[test]
    fn gost_documents_are_judged_by_the_gost_policy_and_ecdsa_is_not_a_substitute() {
        let mut f = fixture();
        let gost = kz_signer_of(&f, KeyKind::Gost2012_256);
        let gost_env = signed_with(&header(), &gost, dsig::DigestMethod::GOST_256);
        kz_policy(
            &mut f,
            "signature = [\"gost2012-256\", \"gost2012-512\"]\ndigest = [\"gost2012-256\", \"gost2012-512\"]",
        );
        let v = f.judge(&gost_env, |_| {});
        assert!(v.recognised(), "{:?}", v.reasons);
        // The downgrade: KZ's own trusted ECDSA signer is not enough.
        let v = f.judge(&signed(&header(), SAMPLE, &f.kz_signer()), |_| {});
        assert_eq!(code(&v), "algorithm-not-permitted");

        // Listed for the 512-bit scheme only, the 256-bit one is refused.
        kz_policy(&mut f, "signature = [\"gost2012-512\"]");
        let v = f.judge(&gost_env, |_| {});
        assert_eq!(code(&v), "algorithm-not-permitted");
        assert!(
            v.reasons[0].message.contains(
                "signature method gost2012-256 is not permitted (permitted: gost2012-512)"
            ),
            "{:?}",
            v.reasons
        );
        // And a state listed for ECDSA does not take GOST.
        kz_policy(&mut f, "signature = [\"ecdsa-sha256\"]");
        let v = f.judge(&gost_env, |_| {});
        assert_eq!(code(&v), "algorithm-not-permitted");
        assert!(
            v.reasons[0].message.contains(
                "signature method gost2012-256 is not permitted (permitted: ecdsa-sha256)"
            ),
            "{:?}",
            v.reasons
        );
    }
}
