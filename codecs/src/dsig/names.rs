//! Short names for XMLDSig signature methods (`ecdsa-sha256`, `gost2012-256`), so that an
//! operator can write a policy without the URIs; the URI stays what documents carry and what
//! is compared. Digests have their names in [`DigestMethod`](super::DigestMethod).
//!
//! A name here says nothing about whether this build can verify the method: that is the
//! registered [`SignatureScheme`](super::SignatureScheme)s' business (`Algorithms::by_uri`).

/// One signature method: its short name and its `SignatureMethod/@Algorithm` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureMethodName {
    pub name: &'static str,
    pub uri: &'static str,
    /// Hashes with SHA-1: never permitted by default.
    pub weak: bool,
}

const fn method(name: &'static str, uri: &'static str, weak: bool) -> SignatureMethodName {
    SignatureMethodName { name, uri, weak }
}

/// Every signature method with a name, one row each; the names follow the URIs' fragments.
pub const SIGNATURE_METHODS: &[SignatureMethodName] = &[
    method(
        "rsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        true,
    ),
    method(
        "rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        false,
    ),
    method(
        "rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        false,
    ),
    method(
        "rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        false,
    ),
    method(
        "rsa-pss-sha256",
        "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
        false,
    ),
    method(
        "rsa-pss-sha384",
        "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1",
        false,
    ),
    method(
        "rsa-pss-sha512",
        "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
        false,
    ),
    method(
        "ecdsa-sha1",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
        true,
    ),
    method(
        "ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        false,
    ),
    method(
        "ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        false,
    ),
    method(
        "ecdsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
        false,
    ),
    // GOST R 34.10-2012 with GOST R 34.11-2012, as CryptoPro and xmlsec name them.
    method(
        "gost2012-256",
        "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256",
        false,
    ),
    method(
        "gost2012-512",
        "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512",
        false,
    ),
    // GOST R 34.10-2001 (RFC 4051): verified for archived documents, never signed.
    method(
        "gost2001",
        "http://www.w3.org/2001/04/xmldsig-more#gostr34102001-gostr3411",
        false,
    ),
    // The same algorithm under the URI CryptoPro's software writes.
    method(
        "gost2001-cryptopro",
        "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102001-gostr3411",
        false,
    ),
];

impl SignatureMethodName {
    /// The method a short name (any case) or a URI (exactly) names.
    pub fn find(name_or_uri: &str) -> Option<Self> {
        SIGNATURE_METHODS
            .iter()
            .find(|m| m.uri == name_or_uri || m.name.eq_ignore_ascii_case(name_or_uri))
            .copied()
    }

    /// The method a `SignatureMethod/@Algorithm` URI names.
    pub fn from_uri(uri: &str) -> Option<Self> {
        SIGNATURE_METHODS.iter().find(|m| m.uri == uri).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsig::Algorithms;

    #[test]
    fn names_and_uris_are_each_unique() {
        for (i, a) in SIGNATURE_METHODS.iter().enumerate() {
            for b in &SIGNATURE_METHODS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.uri, b.uri);
            }
        }
    }

    #[test]
    fn every_built_in_scheme_has_a_name_that_agrees_on_sha1() {
        let algorithms = Algorithms::default();
        for m in SIGNATURE_METHODS {
            if let Some(scheme) = algorithms.by_uri(m.uri) {
                assert_eq!(scheme.digest().weak, m.weak, "{}", m.name);
            }
        }
        for uri in [
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        ] {
            assert!(algorithms.by_uri(uri).is_some(), "{uri} is built in");
            assert!(SignatureMethodName::from_uri(uri).is_some(), "{uri} named");
        }
    }

    #[test]
    fn every_gost_scheme_has_a_name() {
        use crate::dsig::gost;
        for (uri, name) in [
            (gost::GOST2012_256_URI, "gost2012-256"),
            (gost::GOST2012_512_URI, "gost2012-512"),
            (gost::GOST2001_URI, "gost2001"),
            (gost::GOST2001_CRYPTOPRO_URI, "gost2001-cryptopro"),
        ] {
            assert!(
                Algorithms::default().by_uri(uri).is_some(),
                "{uri} registered"
            );
            assert_eq!(
                SignatureMethodName::from_uri(uri).map(|m| m.name),
                Some(name)
            );
        }
    }

    #[test]
    fn a_method_is_found_by_name_in_any_case_or_by_its_exact_uri() {
        let m = SignatureMethodName::find("ECDSA-SHA256").expect("by name");
        assert_eq!(m.uri, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256");
        assert_eq!(SignatureMethodName::find(m.uri), Some(m));
        assert_eq!(
            SignatureMethodName::find("HTTP://WWW.W3.ORG/2001/04/XMLDSIG-MORE#ECDSA-SHA256"),
            None,
            "URIs compare exactly"
        );
        assert_eq!(SignatureMethodName::find("ecdsa-sha3"), None);
    }
}
