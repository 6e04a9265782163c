//! Documents with several signatures (a SAML-like response and its assertion, a certificate
//! signed by the inspector and then by the authority): verify every one, or only the ones
//! covering a named element, and report each signer and what it covers.
//!
//! Guarantee: with [`Select::All`], a document is accepted only when every signature in it
//! verifies under the profile; one invalid signature among valid ones refuses the document,
//! naming it. With [`Select::Covering`], only the signatures whose references sign the named
//! element are checked (all of them must verify); the others are reported as not checked.

use std::collections::HashMap;
use std::sync::Arc;

use super::keys::TrustStore;
use super::path::ElementPath;
use super::profile::{claims, none_accepted, refuse_wrapped, Profile, Rules};
use super::verify::{
    check_signature, claimed_certificate_of, claimed_method_of, claimed_targets, signatures_of,
    Checked, Outcome, SignatureReport, VerifyError, VerifyPolicy,
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
    if all.len() > policy.max_signatures {
        return Err(VerifyError::TooManySignatures {
            count: all.len(),
            limit: policy.max_signatures,
        });
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
            return Err(none_accepted(
                doc,
                &ids,
                policy,
                profile,
                element,
                &all,
                &[],
            ));
        }
    }
    let rules = Rules {
        profile,
        element,
        also: Vec::new(),
        soap,
    };
    let reports: Vec<SignatureReport> = all
        .iter()
        .map(|sig| {
            let result = chosen.contains(sig).then(|| {
                refuse_wrapped(doc, *sig, "the signature")
                    .and_then(|()| check_signature(doc, *sig, &ids, trust, policy, &rules))
            });
            report(doc, *sig, &ids, result)
        })
        .collect();
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

/// One signature's report: who it claims to be from and what it claims to cover, replaced by
/// the verified signer and signed paths when `result` (`None`: not checked) is valid.
fn report(
    doc: &Document,
    sig: NodeId,
    ids: &HashMap<String, NodeId>,
    result: Option<Result<Checked, VerifyError>>,
) -> SignatureReport {
    let claimed_certificate = claimed_certificate_of(doc, sig).or_else(|| {
        let key_info = doc.child(sig, super::DSIG_NAMESPACE, "KeyInfo")?;
        let der = wss::token_certificate(doc, sig, key_info, ids).ok()??;
        openssl::x509::X509::from_der(&der).ok()
    });
    let claimed_covers = || {
        claimed_targets(doc, sig, ids)
            .into_iter()
            .map(|(uri, t)| t.map(|t| doc.path(t)).unwrap_or(uri))
            .collect::<Vec<_>>()
    };
    let mut report = SignatureReport {
        location: doc.describe(sig),
        signer: None,
        claimed_certificate,
        signature_method: claimed_method_of(doc, sig),
        covers: Vec::new(),
        outcome: Outcome::NotChecked,
    };
    match result {
        Some(Ok(checked)) => {
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
        Some(Err(e)) => {
            report.covers = claimed_covers();
            report.outcome = Outcome::Invalid(Arc::new(e));
        }
        None => report.covers = claimed_covers(),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsig::template::{fill, signature, x509_data, ENVELOPED};
    use crate::dsig::{verify_profile, Expect, SigningKey};
    use crate::pki::{self_signed_signer, KeyKind};

    fn signers(names: &[&str]) -> (Vec<SigningKey>, TrustStore) {
        let mut trust = TrustStore::new();
        let keys = names
            .iter()
            .map(|n| {
                let (key, cert) = self_signed_signer(KeyKind::EcP256, n, 30).expect("signer");
                trust.add_certificate(cert);
                key
            })
            .collect();
        (keys, trust)
    }

    fn check(
        xml: &str,
        trust: &TrustStore,
        select: &Select,
    ) -> Result<Vec<SignatureReport>, VerifyError> {
        let doc = crate::xml::parse(xml.as_bytes()).expect("parses");
        verify_signatures(
            &doc,
            trust,
            &VerifyPolicy::default(),
            Profile::Enveloped,
            select,
        )
    }

    fn subject(r: &SignatureReport) -> &str {
        r.signer.as_ref().map_or("", |s| s.subject.as_str())
    }

    /// A SAML-like response signed by the IdP, holding an assertion signed by the issuer.
    fn saml(keys: &[SigningKey]) -> String {
        let tmpl = format!(
            "<Response ID=\"r\"><Issuer>idp</Issuer>{}<Assertion ID=\"a\"><Issuer>idp</Issuer>{}<Subject>alice</Subject></Assertion></Response>",
            signature(&[("#r", ENVELOPED)], &x509_data(&keys[0])),
            signature(&[("#a", ENVELOPED)], &x509_data(&keys[1])),
        );
        // The assertion first: the response's digest covers the assertion's signature.
        fill(&tmpl, &[&keys[0], &keys[1]], &[1, 0])
    }

    /// A certificate signed by the inspector (its body, by id), then by the authority (the
    /// whole document, the inspector's signature included).
    fn cosigned(keys: &[SigningKey]) -> String {
        let tmpl = format!(
            "<Certificate><Body Id=\"c\"><Product>wheat</Product>{}</Body>{}</Certificate>",
            signature(&[("#c", ENVELOPED)], &x509_data(&keys[0])),
            signature(&[("", ENVELOPED)], &x509_data(&keys[1])),
        );
        fill(&tmpl, &[&keys[0], &keys[1]], &[0, 1])
    }

    #[test]
    fn every_signature_of_a_saml_like_response_is_verified_and_reported() {
        let (keys, trust) = signers(&["IdP response", "IdP assertion"]);
        let reports = check(&saml(&keys), &trust, &Select::All).expect("both verify");
        assert_eq!(reports.len(), 2);
        assert_eq!(subject(&reports[0]), "CN=IdP response");
        assert_eq!(reports[0].covers, ["/Response[1]"]);
        assert_eq!(subject(&reports[1]), "CN=IdP assertion");
        assert_eq!(reports[1].covers, ["/Response[1]/Assertion[1]"]);
        assert!(reports.iter().all(|r| r.outcome.is_valid()));
        assert!(reports[1]
            .location
            .starts_with("/Response[1]/Assertion[1]/ds:Signature[1]"));
        assert!(reports[0].signature_method.ends_with("ecdsa-sha256"));

        // The assertion alone, as a profile returns it.
        let doc = crate::xml::parse(saml(&keys).as_bytes()).expect("parses");
        let assertion = verify_profile(
            &doc,
            &trust,
            &VerifyPolicy::default(),
            &Expect::default().element(ElementPath::parse("/Response/Assertion").expect("path")),
        )
        .expect("verifies");
        assert_eq!(assertion.verified.signer.subject, "CN=IdP assertion");
        let text = String::from_utf8(assertion.canonical).expect("utf-8");
        assert_eq!(
            text,
            "<Assertion ID=\"a\"><Issuer>idp</Issuer><Subject>alice</Subject></Assertion>"
        );
    }

    /// The authority's signature value replaced by the inspector's: well-formed, invalid.
    fn with_invalid_authority(xml: &str) -> String {
        let values: Vec<&str> = xml
            .split("<ds:SignatureValue>")
            .skip(1)
            .map(|s| s.split('<').next().expect("value"))
            .collect();
        assert_eq!(values.len(), 2);
        let at = xml.rfind(values[1]).expect("second value");
        format!(
            "{}{}{}",
            &xml[..at],
            values[0],
            &xml[at + values[1].len()..]
        )
    }

    #[test]
    fn one_invalid_signature_among_valid_ones_refuses_the_document_naming_it() {
        let (keys, trust) = signers(&["Inspector", "Authority"]);
        let reports = check(&cosigned(&keys), &trust, &Select::All).expect("both verify");
        assert_eq!(reports[0].covers, ["/Certificate[1]/Body[1]"]);
        assert_eq!(reports[1].covers, ["/Certificate[1]"]);

        let broken = with_invalid_authority(&cosigned(&keys));
        match check(&broken, &trust, &Select::All).expect_err("refused") {
            VerifyError::InvalidAmong {
                location,
                valid,
                count,
                reason,
                reports,
            } => {
                assert!(
                    location.starts_with("/Certificate[1]/ds:Signature[1]"),
                    "{location}"
                );
                assert_eq!((valid, count), (1, 2));
                assert!(
                    matches!(*reason, VerifyError::InvalidSignature(_)),
                    "{reason}"
                );
                assert_eq!(subject(&reports[0]), "CN=Inspector");
                assert!(matches!(reports[1].outcome, Outcome::Invalid(_)));
                // Who the invalid one claims to be, for the report only.
                let claimed = reports[1].claimed_certificate.as_ref().expect("claimed");
                assert_eq!(crate::dsig::subject_of(claimed), "CN=Authority");
                assert!(reports[1].signer.is_none());
            }
            other => panic!("expected InvalidAmong, got {other}"),
        }
    }

    #[test]
    fn only_the_signature_covering_the_named_element_is_checked() {
        let (keys, trust) = signers(&["Inspector", "Authority"]);
        let broken = with_invalid_authority(&cosigned(&keys));
        let body = Select::Covering(ElementPath::parse("/Certificate/Body").expect("path"));
        let reports = check(&broken, &trust, &body).expect("the inspector's verifies");
        assert!(reports[0].outcome.is_valid());
        assert_eq!(subject(&reports[0]), "CN=Inspector");
        assert!(matches!(reports[1].outcome, Outcome::NotChecked));
        assert_eq!(reports[1].covers, ["/Certificate[1]"]);
        // The authority's, covering the document element, is the one checked there.
        let whole = Select::Covering(ElementPath::parse("/Certificate").expect("path"));
        assert!(matches!(
            check(&broken, &trust, &whole),
            Err(VerifyError::InvalidAmong { .. })
        ));
    }

    #[test]
    fn signatures_over_the_limit_are_refused_before_any_is_verified() {
        let (keys, trust) = signers(&["Inspector", "Authority"]);
        let doc = crate::xml::parse(cosigned(&keys).as_bytes()).expect("parses");
        let policy = VerifyPolicy {
            max_signatures: 1,
            ..VerifyPolicy::default()
        };
        let e = verify_signatures(&doc, &trust, &policy, Profile::Enveloped, &Select::All)
            .expect_err("refused");
        assert!(
            matches!(e, VerifyError::TooManySignatures { count: 2, limit: 1 }),
            "{e}"
        );
    }

    #[test]
    fn an_element_no_signature_covers_is_refused() {
        let (keys, trust) = signers(&["Inspector", "Authority"]);
        let product =
            Select::Covering(ElementPath::parse("/Certificate/Body/Product").expect("path"));
        let e = check(&cosigned(&keys), &trust, &product).expect_err("refused");
        assert!(matches!(e, VerifyError::NotCovered { .. }), "{e}");
        assert!(
            e.to_string().contains("covers [/Certificate[1]/Body[1]]"),
            "{e}"
        );
    }

    #[test]
    fn the_xpath_idiom_over_content_holding_another_signature_is_refused() {
        let (keys, trust) = signers(&["Inspector", "Authority"]);
        let xpath = format!(
            "<ds:Transform Algorithm=\"{}\"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>",
            crate::dsig::xpath::XPATH_TRANSFORM
        );
        let tmpl = format!(
            "<Certificate><Body Id=\"c\"><Product>wheat</Product>{}</Body>{}</Certificate>",
            signature(&[("#c", ENVELOPED)], &x509_data(&keys[0])),
            signature(&[("", &xpath)], &x509_data(&keys[1])),
        );
        let xml = fill(&tmpl, &[&keys[0], &keys[1]], &[0, 1]);
        match check(&xml, &trust, &Select::All).expect_err("refused") {
            VerifyError::InvalidAmong { reason, .. } => assert!(
                matches!(*reason, VerifyError::XPathOverOtherSignature { .. }),
                "{reason}"
            ),
            other => panic!("expected InvalidAmong, got {other}"),
        }
    }
}
