//! A state's algorithm policy (`[state.algorithms]` in the trust space, docs/protocol.md):
//! the signature methods, digests and smallest keys its documents may use, so that a state
//! listed for GOST cannot be impersonated by a document signed with anything else.
//!
//! **Guarantees:** a policy only narrows what the verifier accepts by default, never widens
//! it (SHA-1 and RSA keys under `MIN_RSA_BITS` cannot be permitted); every name is resolved to
//! the URI documents carry, and a verdict is judged by URI.

use tereze_codecs::dsig::{DigestMethod, SignatureMethodName, SignerKey, Verified, MIN_RSA_BITS};

use crate::file::FileAlgorithms;

/// What a state permits; `None` in a field restricts nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmPolicy {
    pub signature: Option<Vec<SignatureMethodName>>,
    pub digest: Option<Vec<DigestMethod>>,
    pub min_rsa_bits: Option<u32>,
    pub min_ec_bits: Option<u32>,
}

/// Why a written policy was refused: the field (`signature[1]`) and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PolicyError {
    pub field: String,
    pub reason: String,
}

/// Why a verified signature is not permitted by its state's policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPermitted {
    #[error("signature method {found} is not permitted (permitted: {permitted})")]
    SignatureMethod { found: String, permitted: String },
    #[error("digest method {found} is not permitted (permitted: {permitted})")]
    Digest { found: String, permitted: String },
    #[error("{family} key of {bits} bits is under the minimum of {min} bits")]
    KeyTooSmall {
        family: &'static str,
        bits: u32,
        min: u32,
    },
}

fn signature_label(uri: &str) -> String {
    SignatureMethodName::from_uri(uri).map_or_else(|| uri.to_owned(), |m| m.name.to_owned())
}

fn digest_label(uri: &str) -> String {
    DigestMethod::from_uri(uri).map_or_else(|| uri.to_owned(), |d| d.name.to_owned())
}

/// Reads one list: every entry a known, non-weak name or URI; `None` stays unrestricted.
fn read_list<T: Copy>(
    key: &str,
    list: Option<&Vec<String>>,
    find: impl Fn(&str) -> Option<T>,
    weak: impl Fn(&T) -> bool,
    known: impl Fn() -> Vec<&'static str>,
) -> Result<Option<Vec<T>>, PolicyError> {
    let Some(list) = list else {
        return Ok(None);
    };
    if list.is_empty() {
        return Err(PolicyError {
            field: key.to_owned(),
            reason: "lists nothing, which would refuse every document; leave the key out to \
                     permit what the node accepts by default"
                .into(),
        });
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let field = || format!("{key}[{i}]");
        let Some(found) = find(entry.trim()) else {
            return Err(PolicyError {
                field: field(),
                reason: format!(
                    "{entry:?} is not a known {key} method (known: {})",
                    known().join(", ")
                ),
            });
        };
        if weak(&found) {
            return Err(PolicyError {
                field: field(),
                reason: format!(
                    "{entry:?} uses SHA-1, which the node never accepts; a policy only narrows \
                     the node's defaults"
                ),
            });
        }
        out.push(found);
    }
    Ok(Some(out))
}

impl AlgorithmPolicy {
    /// Reads a policy as written (names or URIs); the error names the field and position.
    pub fn read(f: &FileAlgorithms) -> Result<Self, PolicyError> {
        let signature = read_list(
            "signature",
            f.signature.as_ref(),
            SignatureMethodName::find,
            |m| m.weak,
            || {
                tereze_codecs::dsig::SIGNATURE_METHODS
                    .iter()
                    .filter(|m| !m.weak)
                    .map(|m| m.name)
                    .collect()
            },
        )?;
        let digest = read_list(
            "digest",
            f.digest.as_ref(),
            |s| DigestMethod::from_uri(s).or_else(|| DigestMethod::from_name(s)),
            |d| d.weak,
            || {
                [
                    DigestMethod::SHA256,
                    DigestMethod::SHA384,
                    DigestMethod::SHA512,
                    DigestMethod::GOST_256,
                    DigestMethod::GOST_512,
                    DigestMethod::GOST94,
                    DigestMethod::GOST94_CRYPTOPRO,
                ]
                .iter()
                .map(|d| d.name)
                .collect()
            },
        )?;
        if let Some(bits) = f.min_rsa_bits.filter(|b| *b < MIN_RSA_BITS) {
            return Err(PolicyError {
                field: "min_rsa_bits".into(),
                reason: format!(
                    "{bits} is under the node's own minimum of {MIN_RSA_BITS}; a policy only \
                     narrows the node's defaults"
                ),
            });
        }
        Ok(Self {
            signature,
            digest,
            min_rsa_bits: f.min_rsa_bits,
            min_ec_bits: f.min_ec_bits,
        })
    }

    /// Whether every field is unset, so that the policy permits what the verifier does.
    pub fn restricts_nothing(&self) -> bool {
        self.signature.is_none()
            && self.digest.is_none()
            && self.min_rsa_bits.is_none()
            && self.min_ec_bits.is_none()
    }

    /// The policy as the signed document writes it: URIs, so that another implementation
    /// needs no name table to read it.
    pub fn to_file(&self) -> FileAlgorithms {
        FileAlgorithms {
            signature: self
                .signature
                .as_ref()
                .map(|l| l.iter().map(|m| m.uri.to_owned()).collect()),
            digest: self
                .digest
                .as_ref()
                .map(|l| l.iter().map(|d| d.uri.to_owned()).collect()),
            min_rsa_bits: self.min_rsa_bits,
            min_ec_bits: self.min_ec_bits,
        }
    }

    /// Whether a verified signature used only what this policy permits: its
    /// `SignatureMethod`, every reference's `DigestMethod`, and the size of its key.
    pub fn judge(&self, verified: &Verified) -> Result<(), NotPermitted> {
        self.judge_parts(
            &verified.signature_method,
            &verified.digest_methods,
            &verified.key,
        )
    }

    /// [`judge`](Self::judge) on what a caller kept of a verdict.
    pub fn judge_parts(
        &self,
        signature_method: &str,
        digest_methods: &[String],
        key: &SignerKey,
    ) -> Result<(), NotPermitted> {
        if let Some(permitted) = &self.signature {
            if !permitted.iter().any(|m| m.uri == signature_method) {
                return Err(NotPermitted::SignatureMethod {
                    found: signature_label(signature_method),
                    permitted: names(permitted.iter().map(|m| m.name)),
                });
            }
        }
        if let Some(permitted) = &self.digest {
            for uri in digest_methods {
                if !permitted.iter().any(|d| d.uri == uri) {
                    return Err(NotPermitted::Digest {
                        found: digest_label(uri),
                        permitted: names(permitted.iter().map(|d| d.name)),
                    });
                }
            }
        }
        let minimum = match key.family.as_str() {
            "rsa" => self.min_rsa_bits.map(|m| ("RSA", m)),
            "ec" => self.min_ec_bits.map(|m| ("EC", m)),
            _ => None,
        };
        if let Some((family, min)) = minimum.filter(|(_, min)| key.bits < *min) {
            return Err(NotPermitted::KeyTooSmall {
                family,
                bits: key.bits,
                min,
            });
        }
        Ok(())
    }
}

fn names<'a>(list: impl Iterator<Item = &'a str>) -> String {
    list.collect::<Vec<_>>().join(", ")
}

impl std::fmt::Display for AlgorithmPolicy {
    /// One line for `tereze trust show`: what is restricted, by name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(l) = &self.signature {
            parts.push(format!("signature {}", names(l.iter().map(|m| m.name))));
        }
        if let Some(l) = &self.digest {
            parts.push(format!("digest {}", names(l.iter().map(|d| d.name))));
        }
        if let Some(b) = self.min_rsa_bits {
            parts.push(format!("RSA keys of at least {b} bits"));
        }
        if let Some(b) = self.min_ec_bits {
            parts.push(format!("EC keys of at least {b} bits"));
        }
        if parts.is_empty() {
            f.write_str("no restriction (the node's defaults)")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// A state's policy as `tereze trust show` and `diff` print it; `None` is the node's defaults.
pub fn describe(policy: Option<&AlgorithmPolicy>) -> String {
    policy.map_or_else(
        || "no restriction (the node's defaults)".to_owned(),
        ToString::to_string,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tereze_codecs::dsig::Signer;

    fn written(signature: &[&str], digest: &[&str]) -> FileAlgorithms {
        let list = |l: &[&str]| (!l.is_empty()).then(|| l.iter().map(|s| s.to_string()).collect());
        FileAlgorithms {
            signature: list(signature),
            digest: list(digest),
            ..FileAlgorithms::default()
        }
    }

    fn verdict(method: &str, digests: &[&str], family: &str, bits: u32) -> Verified {
        Verified {
            signer: Signer {
                subject: "CN=test".into(),
                certificate: None,
            },
            signature_method: method.into(),
            references: Vec::new(),
            digest_methods: digests.iter().map(|d| d.to_string()).collect(),
            key: SignerKey {
                family: family.into(),
                bits,
            },
        }
    }

    const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
    const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
    const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

    #[test]
    fn names_and_uris_read_alike() {
        let by_name = AlgorithmPolicy::read(&written(&["ecdsa-sha256"], &["sha256"])).expect("ok");
        let by_uri = AlgorithmPolicy::read(&written(&[ECDSA_SHA256], &[SHA256])).expect("ok");
        assert_eq!(by_name, by_uri);
        assert_eq!(
            AlgorithmPolicy::read(&by_name.to_file()).expect("ok"),
            by_name
        );
        assert_eq!(by_name.to_file().signature, Some(vec![ECDSA_SHA256.into()]));
    }

    #[test]
    fn unknown_weak_and_empty_entries_are_refused_with_their_position() {
        let e = AlgorithmPolicy::read(&written(&["ecdsa-sha256", "ecdsa-sha3"], &[]))
            .expect_err("unknown");
        assert_eq!(e.field, "signature[1]");
        assert!(e
            .reason
            .contains("\"ecdsa-sha3\" is not a known signature method"));
        assert!(e.reason.contains("gost2012-256"), "lists the known: {e}");
        let e = AlgorithmPolicy::read(&written(&[], &["sha1"])).expect_err("weak");
        assert_eq!(e.field, "digest[0]");
        assert!(e.reason.contains("SHA-1"));
        let e = AlgorithmPolicy::read(&FileAlgorithms {
            signature: Some(Vec::new()),
            ..FileAlgorithms::default()
        })
        .expect_err("empty");
        assert_eq!(e.field, "signature");
        let e = AlgorithmPolicy::read(&FileAlgorithms {
            min_rsa_bits: Some(1024),
            ..FileAlgorithms::default()
        })
        .expect_err("under the node's minimum");
        assert_eq!(e.field, "min_rsa_bits");
    }

    #[test]
    fn a_policy_permits_only_what_it_lists() {
        let p = AlgorithmPolicy::read(&written(&["ecdsa-sha256"], &["sha256"])).expect("ok");
        assert_eq!(
            p.judge(&verdict(ECDSA_SHA256, &[SHA256], "ec", 256)),
            Ok(())
        );
        let e = p
            .judge(&verdict(
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                &[SHA256],
                "rsa",
                3072,
            ))
            .expect_err("another method");
        assert_eq!(
            e.to_string(),
            "signature method rsa-sha256 is not permitted (permitted: ecdsa-sha256)"
        );
        let e = p
            .judge(&verdict(ECDSA_SHA256, &[SHA256, SHA512], "ec", 256))
            .expect_err("a second reference's digest");
        assert_eq!(
            e.to_string(),
            "digest method sha512 is not permitted (permitted: sha256)"
        );
    }

    #[test]
    fn key_minimums_apply_to_their_family_only() {
        let p = AlgorithmPolicy::read(&FileAlgorithms {
            min_rsa_bits: Some(3072),
            min_ec_bits: Some(384),
            ..FileAlgorithms::default()
        })
        .expect("ok");
        let rsa = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
        assert_eq!(
            p.judge(&verdict(rsa, &[SHA256], "rsa", 2048)),
            Err(NotPermitted::KeyTooSmall {
                family: "RSA",
                bits: 2048,
                min: 3072
            })
        );
        assert_eq!(p.judge(&verdict(rsa, &[SHA256], "rsa", 3072)), Ok(()));
        assert!(p
            .judge(&verdict(ECDSA_SHA256, &[SHA256], "ec", 256))
            .is_err());
        assert_eq!(
            p.judge(&verdict(ECDSA_SHA256, &[SHA256], "ec", 384)),
            Ok(())
        );
        assert_eq!(
            p.judge(&verdict(
                "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256",
                &[SHA256],
                "gost2012_256",
                256
            )),
            Ok(()),
            "no minimum for a family the policy does not name"
        );
    }

    #[test]
    fn an_empty_policy_restricts_nothing() {
        let p = AlgorithmPolicy::read(&FileAlgorithms::default()).expect("ok");
        assert!(p.restricts_nothing());
        assert_eq!(
            p.judge(&verdict(ECDSA_SHA256, &[SHA512], "ec", 256)),
            Ok(())
        );
        assert_eq!(p.to_string(), "no restriction (the node's defaults)");
    }
}
