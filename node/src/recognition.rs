//! Mutual recognition (DESIGN §4): the receiving node's checks on an inbound envelope, in a
//! fixed order, each failure a stable reason code. The first failing check decides; a
//! document that fails a check has passed every check before it. The same code runs in the
//! node (every delivery) and offline (`tereze recognise`), so "why was this rejected?" has one
//! answer. Reason codes and their fixes: docs/recognition.md.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use openssl::x509::{X509Crl, X509};
use tereze_codecs::dsig::{self, DsigError, VerifyError, VerifyPolicy, DSIG_NAMESPACE};
use tereze_codecs::envelope::{is_trader_identifier, Envelope};
use tereze_codecs::translate::{Catalog, FormatKind};
use tereze_codecs::xml::{self, Document};
use tereze_reference_data::Directories;
use uuid::Uuid;

use crate::config::Role;
use crate::trust::TrustSpace;

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reason {
    /// Stable, kebab-case (docs/recognition.md).
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// The receiver's decision on one envelope.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    /// Empty: recognised.
    pub(crate) reasons: Vec<Reason>,
    /// The envelope as signed, when the signature held.
    pub(crate) envelope: Option<Envelope>,
}

impl Verdict {
    pub(crate) fn recognised(&self) -> bool {
        self.reasons.is_empty()
    }

    fn rejected(code: &'static str, message: String, envelope: Option<Envelope>) -> Self {
        Self {
            reasons: vec![Reason { code, message }],
            envelope,
        }
    }
}

/// What the checks need to know about the delivery.
#[derive(Debug, Clone)]
pub(crate) struct Inbound<'a> {
    pub(crate) envelope: &'a [u8],
    /// The sender state the route (or, offline, the envelope) claims.
    pub(crate) sender: &'a str,
    /// The state (or hub) whose listed node delivered it over TLS; `None` offline.
    pub(crate) transport: Option<&'a str>,
    /// The route's message id, if there is a route.
    pub(crate) message_id: Option<Uuid>,
    /// When it arrived (the reference for skew and expiry).
    pub(crate) received_at: DateTime<Utc>,
}

/// Everything the checks consult.
pub(crate) struct Recogniser<'a> {
    pub(crate) trust: &'a TrustSpace,
    /// The recognising state (this node's).
    pub(crate) state: &'a str,
    pub(crate) catalog: &'a Catalog,
    pub(crate) directories: &'a Directories,
    pub(crate) limits: xml::Limits,
}

/// An input that is not an envelope at all: refused, not judged.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NotAnEnvelope(pub(crate) String);

impl Recogniser<'_> {
    /// Runs the checks in order (DESIGN §4).
    pub(crate) fn recognise(&self, inbound: &Inbound<'_>) -> Result<Verdict, NotAnEnvelope> {
        // 1. Transport identity: the delivering node is the claimed sender state's, or a hub.
        if let Some(t) = inbound.transport {
            let hub = self.trust.state(t).is_some_and(|s| s.role == Role::Hub);
            if t != inbound.sender && !hub {
                return Ok(Verdict::rejected(
                    "transport-identity",
                    format!(
                        "delivered by {t}'s node, which may not deliver for {}",
                        inbound.sender
                    ),
                    None,
                ));
            }
        }
        let doc = xml::parse_with_limits(inbound.envelope, &self.limits)
            .map_err(|e| NotAnEnvelope(format!("envelope:{e}")))?;
        // Read before the signature is checked only to learn the claimed signing time; every
        // decision below reads the signed envelope.
        let claimed = Envelope::from_document(&doc)
            .map_err(|e| NotAnEnvelope(format!("envelope: {e}")))?;
        let signing_time = claimed.header.created_at.with_timezone(&Utc);
        let Some(sender) = self.trust.state(inbound.sender) else {
            return Ok(Verdict::rejected(
                "unknown-sender",
                format!("{} is not a state in trust space v{}", inbound.sender, self.trust.version),
                None,
            ));
        };

        // 2–4. Envelope signature, chain to the sender state's anchor, certificate valid at
        // signing time.
        let policy = VerifyPolicy {
            at: Some(signing_time.timestamp()),
            ..VerifyPolicy::default()
        };
        let verified = match dsig::verify(&doc, &sender.documents, &policy) {
            Ok(v) => v,
            Err(e) => return Ok(classify_signature_failure(&doc, e, signing_time, sender.code.as_str())),
        };
        let signed = verified
            .references
            .first()
            .and_then(|r| r.document().ok())
            .map(|d| Envelope::from_document(&d))
            .transpose()
            .map_err(|e| NotAnEnvelope(format!("signed envelope: {e}")))?
            .ok_or_else(|| NotAnEnvelope("the signature signs no envelope".into()))?;
        let env = Some(signed.clone());
        let h = &signed.header;

        // 5. Not revoked at signing time.
        if let Some(cert) = verified.signer.certificate.as_ref() {
            if let Some(when) = revoked_at(cert, &sender.revocations) {
                if when <= signing_time {
                    return Ok(Verdict::rejected(
                        "certificate-revoked",
                        format!(
                            "the signer {} was revoked at {} , before the signing time {}",
                            verified.signer.subject,
                            when.to_rfc3339(),
                            signing_time.to_rfc3339()
                        ),
                        env,
                    ));
                }
            }
        }

        // The signed header must say what the route says.
        if inbound.message_id.is_some_and(|id| id != h.message_id) {
            return Ok(Verdict::rejected(
                "route-mismatch",
                format!("the route names another message than the signed {}", h.message_id),
                env,
            ));
        }
        if h.sender.country != inbound.sender {
            return Ok(Verdict::rejected(
                "sender-mismatch",
                format!(
                    "signed sender {} is not the route's {}",
                    h.sender.country, inbound.sender
                ),
                env,
            ));
        }
        if h.recipient.country != self.state {
            return Ok(Verdict::rejected(
                "recipient-mismatch",
                format!("signed recipient {} is not {}", h.recipient.country, self.state),
                env,
            ));
        }

        // 6. Signing time within the allowed clock skew.
        let skew = chrono::Duration::seconds(self.trust.max_clock_skew_seconds);
        if signing_time > inbound.received_at + skew {
            return Ok(Verdict::rejected(
                "signing-time-in-future",
                format!(
                    "signed at {}, more than {} s after its arrival at {}",
                    signing_time.to_rfc3339(),
                    self.trust.max_clock_skew_seconds,
                    inbound.received_at.to_rfc3339()
                ),
                env,
            ));
        }

        // 7. The sender may use this process.
        if !sender.may_use(&h.process) {
            return Ok(Verdict::rejected(
                "process-not-permitted",
                format!("{} may not use process {} in trust space v{}", sender.code, h.process, self.trust.version),
                env,
            ));
        }

        // 8. This document type from this issuing authority is recognised here, on its date.
        let date = signing_time.date_naive();
        let issuer = &h.document.issuing_authority;
        if !self.trust.recognition.iter().any(|r| {
            r.covers(&h.document.type_code, &issuer.country, &issuer.authority, self.state, date)
        }) {
            return Ok(Verdict::rejected(
                "document-not-recognised",
                format!(
                    "{} issued by {}:{} is not recognised by {} on {date} (trust space v{})",
                    h.document.type_code, issuer.country, issuer.authority, self.state, self.trust.version
                ),
                env,
            ));
        }

        // 9. Not expired.
        if let Some(expires) = h.expires_at {
            if expires.with_timezone(&Utc) < inbound.received_at {
                return Ok(Verdict::rejected(
                    "document-expired",
                    format!("expired at {}", expires.to_rfc3339()),
                    env,
                ));
            }
        }

        // 10. The document meets its EAEU model, reference codes included.
        let Some(model) = self
            .catalog
            .formats()
            .into_iter()
            .filter(|f| f.kind == FormatKind::Eaeu)
            .find(|f| {
                self.catalog
                    .model(&f.id)
                    .is_some_and(|m| m.type_code == h.document.type_code)
            })
            .map(|f| f.id)
        else {
            return Ok(Verdict::rejected(
                "document-type-unknown",
                format!("no EAEU document model for type {}", h.document.type_code),
                env,
            ));
        };
        let body = signed
            .body
            .document()
            .map_err(|e| NotAnEnvelope(format!("signed body: {e}")))?;
        if let Err(e) = self.catalog.check_eaeu(self.directories, &model, &body) {
            return Ok(Verdict::rejected("document-invalid", e.to_string(), env));
        }

        // 11. Trader identifiers.
        for t in &h.traders {
            let known = t.get(..2).is_some_and(|c| self.trust.state(c).is_some());
            if !is_trader_identifier(t) || !known {
                return Ok(Verdict::rejected(
                    "trader-invalid",
                    format!("{t:?} is not a trader identifier of a state in the trust space"),
                    env,
                ));
            }
        }
        Ok(Verdict {
            reasons: Vec::new(),
            envelope: env,
        })
    }
}

/// Why `dsig::verify` said no, as a reason code: a bad signature, a signer that does not
/// chain to the sender's anchor, or one whose certificate was not valid at signing time.
fn classify_signature_failure(
    doc: &Document,
    e: VerifyError,
    at: DateTime<Utc>,
    sender: &str,
) -> Verdict {
    match e {
        VerifyError::Dsig(DsigError::UntrustedSigner(why)) => {
            if let Some(cert) = signer_certificate(doc) {
                let t = openssl::asn1::Asn1Time::from_unix(at.timestamp()).ok();
                let before = t
                    .as_ref()
                    .and_then(|t| cert.not_before().compare(t).ok())
                    .is_some_and(|o| o == std::cmp::Ordering::Greater);
                let after = t
                    .as_ref()
                    .and_then(|t| cert.not_after().compare(t).ok())
                    .is_some_and(|o| o == std::cmp::Ordering::Less);
                if before || after {
                    return Verdict::rejected(
                        "certificate-not-valid",
                        format!(
                            "the signer certificate ({} to {}) was not valid at the signing time {}",
                            cert.not_before(),
                            cert.not_after(),
                            at.to_rfc3339()
                        ),
                        None,
                    );
                }
            }
            Verdict::rejected(
                "chain-untrusted",
                format!("the signer does not chain to an anchor of {sender}: {why}"),
                None,
            )
        }
        other => Verdict::rejected("signature-invalid", other.to_string(), None),
    }
}

/// The first certificate in the signature's `X509Data`, if any.
fn signer_certificate(doc: &Document) -> Option<X509> {
    let node = doc.descendants_or_self(doc.root()).into_iter().find(|n| {
        doc.element(*n)
            .is_some_and(|e| e.is(DSIG_NAMESPACE, "X509Certificate"))
    })?;
    let der = B64
        .decode(doc.text_content(node).split_whitespace().collect::<String>())
        .ok()?;
    X509::from_der(&der).ok()
}

/// When `cert` was revoked according to one of `crls` from its issuer.
fn revoked_at(cert: &X509, crls: &[std::sync::Arc<X509Crl>]) -> Option<DateTime<Utc>> {
    for crl in crls {
        let same_issuer = crl
            .issuer_name()
            .try_cmp(cert.issuer_name())
            .is_ok_and(|o| o == std::cmp::Ordering::Equal);
        if !same_issuer {
            continue;
        }
        if let openssl::x509::CrlStatus::Revoked(entry) = crl.get_by_cert(cert) {
            let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
            let d = epoch.diff(entry.revocation_date()).ok()?;
            let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
            return DateTime::from_timestamp(secs, 0);
        }
    }
    None
}
