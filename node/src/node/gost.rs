//! Whether this node needs the OpenSSL GOST engine, and what it does when the engine is
//! missing.
//!
//! The engine is always tried at start, before any key or certificate is read, since without
//! it OpenSSL cannot even decode a GOST key. **Guarantee:** a node whose signing certificate
//! or one of whose trust-space anchors holds a GOST key, or whose trust space permits a state
//! GOST signatures (`[state.algorithms]`), refuses to start without the engine
//! ([`super::StartError::GostEngine`], naming the Debian package); any other node starts
//! either way and says at start whether it can verify GOST documents from peers.

use openssl::x509::X509;

use crate::trust::TrustSpace;

/// DER encodings (tag, length, value) of the GOST public-key algorithm identifiers: GOST
/// R 34.10-2012 256 and 512 bit (1.2.643.7.1.1.1.1 and .2, RFC 9215) and GOST R 34.10-2001
/// (1.2.643.2.2.19, RFC 4491).
const GOST_KEY_OIDS: [&[u8]; 3] = [
    &[0x06, 0x08, 0x2a, 0x85, 0x03, 0x07, 0x01, 0x01, 0x01, 0x01],
    &[0x06, 0x08, 0x2a, 0x85, 0x03, 0x07, 0x01, 0x01, 0x01, 0x02],
    &[0x06, 0x06, 0x2a, 0x85, 0x03, 0x02, 0x02, 0x13],
];

/// Whether `cert` holds a GOST key. Read from the certificate's bytes, not its decoded key:
/// OpenSSL parses a GOST certificate without the engine but cannot decode its key, which is
/// exactly the case this must recognise. The encoded identifier names a GOST key wherever it
/// appears in a certificate (subject key, issuer's signature parameters).
pub(crate) fn holds_gost_key(cert: &X509) -> bool {
    cert.to_der().is_ok_and(|der| {
        GOST_KEY_OIDS
            .iter()
            .any(|oid| der.windows(oid.len()).any(|w| w == *oid))
    })
}

/// Why this node needs the engine (the configuration field or trust-space state), or `None`.
pub(crate) fn needed_by(
    signing_certificate: Option<(&str, &[u8])>,
    trust: Option<&TrustSpace>,
) -> Option<String> {
    if let Some((path, pem)) = signing_certificate {
        let certs = X509::stack_from_pem(pem).unwrap_or_default();
        if certs.first().is_some_and(holds_gost_key) {
            return Some(format!(
                "signing.certificate {path} holds a GOST R 34.10 key"
            ));
        }
    }
    let trust = trust?;
    let mut states: Vec<_> = trust.states.values().collect();
    states.sort_by(|a, b| a.code.cmp(&b.code));
    states.into_iter().find_map(|s| {
        let policy_gost = s
            .algorithms
            .as_ref()
            .and_then(|p| p.signature.as_ref())
            .is_some_and(|methods| methods.iter().any(|m| m.name.starts_with("gost")));
        if s.anchors.iter().any(holds_gost_key) {
            Some(format!(
                "the trust space's state {} has a GOST R 34.10 anchor",
                s.code
            ))
        } else if policy_gost {
            Some(format!(
                "the trust space's state {} permits GOST R 34.10 signatures (algorithms.signature)",
                s.code
            ))
        } else {
            None
        }
    })
}

/// Tries to load the engine: the outcome, logged once at info.
pub(crate) fn load() -> Result<(), tereze_gost_engine::EngineError> {
    let outcome = tereze_gost_engine::load();
    match &outcome {
        Ok(()) => tracing::info!(
            "OpenSSL GOST engine loaded: GOST R 34.10-2012 signatures can be made and verified"
        ),
        Err(e) => tracing::info!(
            reason = %e,
            "OpenSSL GOST engine not available: GOST-signed documents from peers will be refused as an unsupported algorithm"
        ),
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};

    fn cert(kind: KeyKind) -> X509 {
        let key = generate_key(kind).expect("key");
        issue_certificate(
            &CertificateSpec {
                subject: &[("CN", "t")],
                not_before_days: -1,
                not_after_days: 1,
                is_ca: false,
            },
            &key,
            None,
        )
        .expect("cert")
    }

    #[test]
    fn gost_certificates_are_told_from_ecdsa_and_rsa_ones() {
        assert!(!holds_gost_key(&cert(KeyKind::EcP256)));
        assert!(!holds_gost_key(&cert(KeyKind::Rsa(2048))));
        assert!(holds_gost_key(&cert(KeyKind::Gost2012_256)));
        assert!(holds_gost_key(&cert(KeyKind::Gost2012_512)));
    }

    #[test]
    fn a_gost_signing_certificate_is_named_as_the_reason() {
        let pem = cert(KeyKind::Gost2012_512).to_pem().expect("pem");
        assert_eq!(
            needed_by(Some(("signer.pem", &pem)), None).as_deref(),
            Some("signing.certificate signer.pem holds a GOST R 34.10 key")
        );
        let pem = cert(KeyKind::EcP256).to_pem().expect("pem");
        assert_eq!(needed_by(Some(("signer.pem", &pem)), None), None);
    }

    #[test]
    fn a_trust_space_permitting_gost_is_named_as_the_reason() {
        let dir = tempfile::tempdir().expect("dir");
        tereze_trust::devpki::init(&tereze_trust::devpki::DevPkiSpec {
            out: dir.path().to_path_buf(),
            states: vec!["KZ".into(), "RU".into()],
            hub: None,
            via_hub: vec![],
            base_port: 29950,
            days: 30,
        })
        .expect("dev PKI");
        let path = dir.path().join("trust-space.toml");
        let ecdsa = TrustSpace::load(&path, None).expect("trust space");
        assert_eq!(needed_by(None, Some(&ecdsa)), None);
        let text = std::fs::read_to_string(&path).expect("read");
        // The first state written is KZ.
        let gost = text.replacen(
            "\n[[state.node]]",
            "\n[state.algorithms]\nsignature = [\"gost2012-256\"]\n\n[[state.node]]",
            1,
        );
        std::fs::write(&path, gost).expect("write");
        let gost = TrustSpace::load(&path, None).expect("trust space");
        assert_eq!(
            needed_by(None, Some(&gost)).as_deref(),
            Some(
                "the trust space's state KZ permits GOST R 34.10 signatures (algorithms.signature)"
            )
        );
    }
}
