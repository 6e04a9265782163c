//! Enveloped signing: the `ds:Signature` goes in as the last child of the signed element (the
//! document element when the whole document is signed), with one `Reference` to that element,
//! the enveloped-signature transform and a canonicalisation transform.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use std::sync::Arc;

use openssl::x509::X509Ref;

use super::algorithm::{Algorithms, DigestMethod, RsaPadding, SignatureScheme};
use super::gost;
use super::keys::SigningKey;
use super::{DsigError, DSIG_NAMESPACE, ENVELOPED_SIGNATURE};
use crate::c14n::{self, C14nOptions, Mode, NodeSet};
use crate::xml::{Document, Element, IdError, NamespaceDecl, NodeId};

const EXC_NAMESPACE: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// What to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignTarget {
    /// The whole document (`URI=""`).
    Document,
    /// The element with this identifier (`URI="#id"`).
    Id(String),
}

/// How to sign.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// Digest for the reference and the signature. SHA-1 is refused. A GOST R 34.10-2012 key
    /// signs with its own Streebog digest instead, for the references too (as national GOST
    /// systems do), unless `digest_explicit` is set.
    pub digest: DigestMethod,
    /// The caller chose `digest` (the CLI's `--digest`): with a GOST key, a digest other
    /// than the key's own is then refused ([`SignError::DigestNotForKey`]) rather than replaced.
    pub digest_explicit: bool,
    /// Canonicalisation of `SignedInfo` and of the signed content. Exclusive by default.
    pub c14n: C14nOptions,
    /// PKCS#1 v1.5 (default, what every verifier knows) or PSS for RSA keys.
    pub rsa_padding: RsaPadding,
    /// Whether to put the signer's certificate (and chain) in `KeyInfo/X509Data`.
    pub include_certificate: bool,
    pub algorithms: Algorithms,
}

impl Default for SignOptions {
    fn default() -> Self {
        Self {
            digest: DigestMethod::SHA256,
            digest_explicit: false,
            c14n: C14nOptions::exclusive(),
            rsa_padding: RsaPadding::default(),
            include_certificate: true,
            algorithms: Algorithms::default(),
        }
    }
}

/// Why a document could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{0} is not allowed for new signatures; use sha256, sha384 or sha512")]
    WeakDigest(&'static str),
    #[error("signature target: {0}")]
    Target(#[from] IdError),
    #[error("no signature algorithm for this key with digest {0}")]
    NoScheme(&'static str),
    /// A GOST key signs only with its own digest (`own`); `digest` was asked for.
    #[error("digest {digest} cannot be used with {key}: it signs with its own digest {own} (leave --digest out, or give --digest {own})")]
    DigestNotForKey {
        digest: &'static str,
        key: &'static str,
        own: &'static str,
    },
    #[error(transparent)]
    Dsig(#[from] DsigError),
}

fn ds(local: &str) -> Element {
    Element::new(Some("ds"), local, Some(DSIG_NAMESPACE))
}

fn with_algorithm(local: &str, algorithm: &str) -> Element {
    let mut e = ds(local);
    e.set_attribute("Algorithm", algorithm);
    e
}

/// Signs `doc` in place and returns the new `ds:Signature` element.
pub fn sign_enveloped(
    doc: &mut Document,
    target: &SignTarget,
    key: &SigningKey,
    options: &SignOptions,
) -> Result<NodeId, SignError> {
    let digest = signing_digest(key, options)?;
    if digest.weak {
        return Err(SignError::WeakDigest(digest.name));
    }
    let (parent, uri) = match target {
        SignTarget::Document => (doc.root(), String::new()),
        SignTarget::Id(id) => (doc.find_by_id(id)?, format!("#{id}")),
    };
    let scheme = options
        .algorithms
        .for_key(key.public_key(), digest, options.rsa_padding)
        .ok_or_else(
            || match options.algorithms.refusal(key.public_key(), digest) {
                Some(why) => SignError::Dsig(why),
                None => SignError::NoScheme(digest.name),
            },
        )?;
    scheme.check_available()?;

    let mut signature = ds("Signature");
    signature.namespace_decls.push(NamespaceDecl {
        prefix: Some("ds".into()),
        uri: DSIG_NAMESPACE.into(),
    });
    let sig = doc.append_element(parent, signature);
    let signed_info = doc.append_element(sig, ds("SignedInfo"));
    let c14n_method = doc.append_element(
        signed_info,
        with_algorithm("CanonicalizationMethod", options.c14n.uri()),
    );
    add_prefix_list(doc, c14n_method, &options.c14n);
    doc.append_element(signed_info, with_algorithm("SignatureMethod", scheme.uri()));
    let mut reference = ds("Reference");
    reference.set_attribute("URI", &uri);
    let reference = doc.append_element(signed_info, reference);
    let transforms = doc.append_element(reference, ds("Transforms"));
    doc.append_element(transforms, with_algorithm("Transform", ENVELOPED_SIGNATURE));
    // A same-document reference never carries comments, so the reference transform is always
    // the comment-free variant of the chosen canonicalisation.
    let content_c14n = C14nOptions {
        with_comments: false,
        ..options.c14n.clone()
    };
    let transform = doc.append_element(transforms, with_algorithm("Transform", content_c14n.uri()));
    add_prefix_list(doc, transform, &content_c14n);
    doc.append_element(reference, with_algorithm("DigestMethod", digest.uri));
    let digest_value = doc.append_element(reference, ds("DigestValue"));
    let signature_value = doc.append_element(sig, ds("SignatureValue"));
    if options.include_certificate {
        if let Some(cert) = key.certificate() {
            let key_info = doc.append_element(sig, ds("KeyInfo"));
            let x509_data = doc.append_element(key_info, ds("X509Data"));
            for c in std::iter::once(cert).chain(key.chain.iter()) {
                let e = doc.append_element(x509_data, ds("X509Certificate"));
                doc.append_text(e, &BASE64.encode(c.to_der().map_err(DsigError::from)?));
            }
        }
    }

    let nodes = match target {
        SignTarget::Document => NodeSet::document(),
        SignTarget::Id(_) => NodeSet::subtree(parent),
    }
    .excluding(sig);
    let content = c14n::canonicalize(doc, nodes, &content_c14n);
    doc.append_text(digest_value, &BASE64.encode(digest.digest(&content)?));

    let canonical_info = c14n::canonicalize(doc, NodeSet::subtree(signed_info), &options.c14n);
    let value = scheme.sign(&key.key, &canonical_info)?;
    doc.append_text(signature_value, &BASE64.encode(value));
    Ok(sig)
}

/// The digest to sign with: a GOST key's own Streebog (refusing another explicit choice), or
/// the options' digest.
fn signing_digest(key: &SigningKey, options: &SignOptions) -> Result<DigestMethod, SignError> {
    let Some(own) = gost::own_digest(key.public_key()) else {
        return Ok(options.digest);
    };
    if options.digest_explicit && options.digest != own {
        return Err(SignError::DigestNotForKey {
            digest: options.digest.name,
            key: if own == DigestMethod::GOST_256 {
                "a GOST R 34.10-2012 256-bit key"
            } else {
                "a GOST R 34.10-2012 512-bit key"
            },
            own: own.name,
        });
    }
    Ok(own)
}

fn add_prefix_list(doc: &mut Document, parent: NodeId, options: &C14nOptions) {
    if options.mode != Mode::Exclusive || options.inclusive_prefixes.is_empty() {
        return;
    }
    let mut list = Element::new(Some("ec"), "InclusiveNamespaces", Some(EXC_NAMESPACE));
    list.namespace_decls.push(NamespaceDecl {
        prefix: Some("ec".into()),
        uri: EXC_NAMESPACE.into(),
    });
    list.set_attribute("PrefixList", &options.inclusive_prefixes.join(" "));
    doc.append_element(parent, list);
}

/// The scheme that signs with `key` under `options`, chosen as [`sign_enveloped`] chooses it.
fn scheme_for(
    key: &SigningKey,
    options: &SignOptions,
) -> Result<Arc<dyn SignatureScheme>, SignError> {
    let digest = signing_digest(key, options)?;
    if digest.weak {
        return Err(SignError::WeakDigest(digest.name));
    }
    let scheme = options
        .algorithms
        .for_key(key.public_key(), digest, options.rsa_padding)
        .ok_or(SignError::NoScheme(digest.name))?;
    scheme.check_available()?;
    Ok(scheme)
}

/// A signature over raw bytes (not XML): the `SignatureMethod` URI of the scheme that made it
/// and the value in XMLDSig form, so a verifier picks the same scheme by that URI
/// ([`verify_bytes`]). For records the node signs outside XML, such as audit checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytesSignature {
    pub algorithm: String,
    pub value: Vec<u8>,
}

/// Signs `data` with `key`, choosing the scheme exactly as [`sign_enveloped`] does.
pub fn sign_bytes(
    key: &SigningKey,
    data: &[u8],
    options: &SignOptions,
) -> Result<BytesSignature, SignError> {
    let scheme = scheme_for(key, options)?;
    let value = scheme.sign(&key.key, data)?;
    Ok(BytesSignature {
        algorithm: scheme.uri().to_owned(),
        value,
    })
}

/// The scheme a [`sign_bytes`] signature names, with its library loaded: call it before the
/// signer's certificate is parsed, since OpenSSL never decodes a key it could not decode at
/// parse time (a GOST certificate read before the engine is loaded stays unusable).
pub fn bytes_scheme(
    algorithms: &Algorithms,
    algorithm: &str,
) -> Result<Arc<dyn SignatureScheme>, DsigError> {
    let scheme = algorithms
        .by_uri(algorithm)
        .ok_or_else(|| DsigError::AlgorithmUnavailable {
            uri: algorithm.to_owned(),
            engine: None,
        })?;
    scheme.check_available()?;
    Ok(scheme)
}

/// Checks a [`sign_bytes`] signature under `scheme` ([`bytes_scheme`]) by the key of
/// `certificate`: `Ok(false)` when it does not verify, an error when the key does not fit the
/// scheme or the value is malformed for it.
pub fn verify_bytes(
    scheme: &dyn SignatureScheme,
    certificate: &X509Ref,
    data: &[u8],
    value: &[u8],
) -> Result<bool, DsigError> {
    let key = certificate
        .public_key()
        .map_err(|source| DsigError::KeyUnreadable {
            what: "the certificate's public key",
            source,
        })?;
    scheme.check_key(&key)?;
    scheme.verify(&key, data, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{generate_key, KeyKind};

    #[test]
    fn bytes_signed_with_a_key_verify_under_the_scheme_they_name_and_nothing_else() {
        let algorithms = Algorithms::default();
        for (kind, uri) in [
            (
                KeyKind::EcP256,
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            ),
            (
                KeyKind::Rsa(2048),
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            ),
            // A GOST key signs with its own Streebog, whatever the options' default digest.
            (
                KeyKind::Gost2012_256,
                "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256",
            ),
            (
                KeyKind::Gost2012_512,
                "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512",
            ),
        ] {
            let private = generate_key(kind).expect("key");
            let cert = crate::pki::issue_certificate(
                &crate::pki::CertificateSpec {
                    subject: &[("CN", "signer")],
                    not_before_days: -1,
                    not_after_days: 1,
                    is_ca: false,
                },
                &private,
                None,
            )
            .expect("certificate");
            let key = SigningKey::new(private, Some(cert.clone())).expect("key");
            let sig = sign_bytes(&key, b"statement", &SignOptions::default()).expect("signs");
            assert_eq!(sig.algorithm, uri);
            let scheme = bytes_scheme(&algorithms, uri).expect("scheme");
            assert!(verify_bytes(&*scheme, &cert, b"statement", &sig.value).expect("ok"));
            assert!(!verify_bytes(&*scheme, &cert, b"statemenT", &sig.value).expect("ok"));
            assert!(matches!(
                bytes_scheme(&algorithms, "urn:x:none"),
                Err(DsigError::AlgorithmUnavailable { uri, .. }) if uri == "urn:x:none"
            ));
        }
    }

    #[test]
    fn signing_bytes_refuses_a_weak_digest() {
        let key = SigningKey::new(generate_key(KeyKind::EcP256).expect("key"), None).expect("key");
        let options = SignOptions {
            digest: DigestMethod::SHA1,
            ..SignOptions::default()
        };
        assert!(matches!(
            sign_bytes(&key, b"x", &options),
            Err(SignError::WeakDigest("sha1"))
        ));
    }
}
