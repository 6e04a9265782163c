//! Documents with several signatures (a SAML-like response and its assertion, a certificate
//! signed by the inspector and then by the authority): verify every one, or only the ones
//! covering a named element, and report each signer and what it covers.
//!
//! Guarantee: with [`Select::All`], a document is accepted only when every signature in it
//! verifies under the profile; one invalid signature among valid ones refuses the document,
//! naming it. With [`Select::Covering`], only the signatures whose references sign the named
//! element are checked (all of them must verify); the others are reported as not checked.

use std::sync::Arc;

use super::keys::TrustStore;
use super::path::ElementPath;
use super::profile::{claims, refuse_wrapped, summary, Profile, Rules};
use super::verify::{
    check_signature, claimed_certificate_of, claimed_method_of, claimed_targets, signatures_of,
    Outcome, SignatureReport, VerifyError, VerifyPolicy,
};
use super::wss;
use crate::xml::{Document, NodeId};

/// Which signatures of a document to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// Every signature; all must verify.
    All,
    /// Only the signatures signing this element; all of those must verify.
    Covering(ElementPath),
}

/// Checks the signatures `select` names, each under `profile`'s rules, and reports every
/// signature of the document in document order. `Err` refuses the document: no signature,
/// duplicate identifiers, the named element missing or covered by none, or a checked signature
/// invalid ([`VerifyError::InvalidAmong`], which carries all the reports).
pub fn verify_signatures(
    doc: &Document,
    trust: &TrustStore,
    policy: &VerifyPolicy,
    profile: Profile,
    select: &Select,
) -> Result<Vec<SignatureReport>, VerifyError> {
    let ids = doc.id_index()?;
    let all = signatures_of(doc);
    if all.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let soap = match profile {
        Profile::Wss => Some(wss::soap(doc)?),
        _ => None,
    };
    let element = match select {
        Select::All => None,
        Select::Covering(path) => {
            let element = path.resolve(doc).map_err(VerifyError::Element)?;
            refuse_wrapped(doc, element, "the element that must be signed")?;
            Some(element)
        }
    };
    let chosen: Vec<NodeId> = match element {
        None => all.clone(),
        Some(element) => all
            .iter()
            .copied()
            .filter(|s| claims(doc, *s, &ids, element))
            .collect(),
    };
    if let Some(element) = element {
        if chosen.is_empty() {
            return Err(VerifyError::NotCovered {
                path: doc.describe(element),
                profile: profile.to_string(),
                signatures: summary(doc, &all, &ids),
            });
        }
    }
    let rules = Rules {
        profile,
        element,
        also: Vec::new(),
        soap,
    };
    let mut reports = Vec::with_capacity(all.len());
    for sig in &all {
        let claimed_covers = || {
            claimed_targets(doc, *sig, &ids)
                .into_iter()
                .map(|(uri, t)| t.map(|t| doc.path(t)).unwrap_or(uri))
                .collect::<Vec<_>>()
        };
        let claimed_certificate = claimed_certificate_of(doc, *sig).or_else(|| {
            let key_info = doc.child(*sig, super::DSIG_NAMESPACE, "KeyInfo")?;
            let der = wss::token_certificate(doc, *sig, key_info, &ids).ok()??;
            openssl::x509::X509::from_der(&der).ok()
        });
        let mut report = SignatureReport {
            location: doc.describe(*sig),
            signer: None,
            claimed_certificate,
            signature_method: claimed_method_of(doc, *sig),
            covers: Vec::new(),
            outcome: Outcome::NotChecked,
        };
        if !chosen.contains(sig) {
            report.covers = claimed_covers();
            reports.push(report);
            continue;
        }
        let result = refuse_wrapped(doc, *sig, "the signature")
            .and_then(|()| check_signature(doc, *sig, &ids, trust, policy, &rules));
        match result {
            Ok(checked) => {
                report.signer = Some(checked.verified.signer.clone());
                report.signature_method = checked.verified.signature_method.clone();
                report.covers = checked
                    .verified
                    .references
                    .iter()
                    .map(|r| r.path.clone())
                    .collect();
                report.outcome = Outcome::Valid(Box::new(checked.verified));
            }
            Err(e) => {
                report.covers = claimed_covers();
                report.outcome = Outcome::Invalid(Arc::new(e));
            }
        }
        reports.push(report);
    }
    let first_invalid = reports.iter().find_map(|r| match &r.outcome {
        Outcome::Invalid(e) => Some((r.location.clone(), Arc::clone(e))),
        _ => None,
    });
    if let Some((location, reason)) = first_invalid {
        return Err(VerifyError::InvalidAmong {
            location,
            valid: reports.iter().filter(|r| r.outcome.is_valid()).count(),
            count: chosen.len(),
            reason,
            reports,
        });
    }
    Ok(reports)
}
