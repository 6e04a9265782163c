//! Keys generated inside SoftHSM2 tokens, used through `tereze-hsm`: XML signed with an EC and
//! an RSA token key verifies with `xmlsec1` (independent) and with our verifier, and each way
//! a token key can be misconfigured gives its own clear error naming the field to fix.
//!
//! All tests of this process share one token directory, made before the first token is
//! opened: SoftHSM2 reads `SOFTHSM2_CONF` and lists its tokens once per process. A test that
//! logs in with a wrong PIN has a token of its own, because PKCS#11 login state is per
//! process and token.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use tereze_codecs::dsig::{self, SignOptions, SignTarget, TrustStore, VerifyPolicy};
use tereze_codecs::xml;
use tereze_hsm::{
    load_signing_key, open_tls_key, Fields, KeyLoadError, Pkcs11Error, Pkcs11Settings,
};
use tereze_testkit::softhsm::{self, SoftHsm};

/// The tokens of this process: `ec-xml`, `rsa-xml` and `keys` hold a key pair `doc-sign`
/// (id 01); `keys` also `twin` twice (ids 02, 03); `wrong-pin` is never logged into; in
/// `stale`, the public-key object of `doc-sign` is the public half of another pair (`other`, 04).
struct Fixture {
    hsm: SoftHsm,
    /// Each token's `doc-sign` public key (PEM), read with pkcs11-tool.
    publics: Vec<(&'static str, Vec<u8>)>,
    ca: (
        openssl::x509::X509,
        openssl::pkey::PKey<openssl::pkey::Private>,
    ),
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let hsm = SoftHsm::new();
        for (token, key_type) in [
            ("ec-xml", "EC:prime256v1"),
            ("rsa-xml", "rsa:2048"),
            ("keys", "EC:prime256v1"),
            ("wrong-pin", "EC:prime256v1"),
            ("stale", "EC:prime256v1"),
        ] {
            hsm.token(token);
            hsm.keygen(token, key_type, "doc-sign", "01");
        }
        hsm.keygen("keys", "EC:prime256v1", "twin", "02");
        hsm.keygen("keys", "EC:prime256v1", "twin", "03");
        hsm.keygen("stale", "EC:prime256v1", "other", "04");
        hsm.replace_public("stale", "01", "04");
        let publics = ["ec-xml", "rsa-xml", "keys", "wrong-pin", "stale"]
            .into_iter()
            .map(|t| (t, hsm.public_pem(t, "01")))
            .collect();
        hsm.export_conf();
        Fixture {
            hsm,
            publics,
            ca: softhsm::test_ca(),
        }
    })
}

struct Token {
    fixture: &'static Fixture,
    hsm: &'static SoftHsm,
    label: &'static str,
    ca: &'static (
        openssl::x509::X509,
        openssl::pkey::PKey<openssl::pkey::Private>,
    ),
}

impl Token {
    fn new(label: &'static str) -> Self {
        let f = fixture();
        Self {
            fixture: f,
            hsm: &f.hsm,
            label,
            ca: &f.ca,
        }
    }

    fn uri(&self) -> String {
        format!("pkcs11:token={};object=doc-sign", self.label)
    }

    fn settings(&self) -> Pkcs11Settings {
        Pkcs11Settings {
            module: Some(softhsm::MODULE.into()),
            pin_file: Some(self.hsm.pin_file(&unique(self.label, "pin"))),
        }
    }

    fn certificate_pem(&self) -> Vec<u8> {
        let (_, public) = self
            .fixture
            .publics
            .iter()
            .find(|(t, _)| *t == self.label)
            .expect("a fixture token");
        softhsm::certificate_for(public, "Token signer", self.ca)
            .to_pem()
            .expect("pem")
    }

    fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.hsm.path().join(unique(self.label, name));
        std::fs::write(&p, content).expect("write");
        p
    }
}

/// A file name no other test uses (tests run in parallel and share the directory).
fn unique(label: &str, name: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{label}-{n}-{name}")
}

fn load(token: &Token, key: &str, settings: &Pkcs11Settings) -> Result<(), KeyLoadError> {
    load_signing_key(
        key,
        Some(&token.certificate_pem()),
        settings,
        &Fields::NODE_SIGNING,
    )
    .map(drop)
}

/// Signs a document with the token key, then checks it with xmlsec1 and with our verifier.
fn sign_and_verify_both_ways(token: &Token, options: &SignOptions, xmlsec: bool) {
    let key = load_signing_key(
        &token.uri(),
        Some(&token.certificate_pem()),
        &token.settings(),
        &Fields::NODE_SIGNING,
    )
    .expect("token key loads");
    assert!(key.is_external());
    let mut doc = xml::parse(b"<Declaration><Goods>grain</Goods></Declaration>").expect("xml");
    dsig::sign_enveloped(&mut doc, &SignTarget::Document, &key, options).expect("signs");
    let signed = doc.to_xml();

    let mut trust = TrustStore::new();
    trust.add_certificate(token.ca.0.clone());
    let verified = dsig::verify(
        &xml::parse(signed.as_bytes()).expect("xml"),
        &trust,
        &VerifyPolicy::default(),
    )
    .expect("our verifier accepts the token's signature");
    assert_eq!(verified.signer.subject, "C=KZ, CN=Token signer");

    if xmlsec {
        let ca = token.write("ca.pem", &token.ca.0.to_pem().expect("pem"));
        let file = token.write("signed.xml", signed.as_bytes());
        let found = Command::new("xmlsec1").arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "xmlsec1 is required; run scripts/setup (apt-get install -y xmlsec1)"
        );
        let out = Command::new("xmlsec1")
            .env("SSL_CERT_FILE", "/dev/null")
            .env("SSL_CERT_DIR", "/dev/null")
            .arg("--verify")
            .arg("--trusted-pem")
            .arg(&ca)
            .arg(&file)
            .output()
            .expect("xmlsec1 runs");
        assert!(
            out.status.success(),
            "xmlsec1 refuses the token's signature: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Tampering after signing is caught: the signature is over the content.
    let tampered = signed.replace("grain", "gold");
    assert!(dsig::verify(
        &xml::parse(tampered.as_bytes()).expect("xml"),
        &trust,
        &VerifyPolicy::default()
    )
    .is_err());
}

#[test]
fn an_ec_key_in_the_token_signs_xml_that_xmlsec1_and_we_verify() {
    let token = Token::new("ec-xml");
    sign_and_verify_both_ways(&token, &SignOptions::default(), true);
}

#[test]
fn an_rsa_key_in_the_token_signs_xml_that_xmlsec1_and_we_verify() {
    let token = Token::new("rsa-xml");
    sign_and_verify_both_ways(&token, &SignOptions::default(), true);
    // RSA-PSS through CKM_RSA_PKCS_PSS (bookworm's xmlsec1 1.2 has no RSA-PSS: ours only).
    let pss = SignOptions {
        rsa_padding: dsig::RsaPadding::Pss,
        ..SignOptions::default()
    };
    sign_and_verify_both_ways(&token, &pss, false);
}

#[test]
fn a_key_named_by_id_alone_loads() {
    let token = Token::new("keys");
    let uri = format!("pkcs11:token={};id=%01;type=private", token.label);
    load(&token, &uri, &token.settings()).expect("loads by id");
}

#[test]
fn a_wrong_pin_is_refused_naming_the_pin_file_field() {
    let token = Token::new("wrong-pin");
    let pin = token.write("wrong.pin", b"9999\n");
    softhsm::set_mode(&pin, 0o600);
    let settings = Pkcs11Settings {
        pin_file: Some(pin),
        ..token.settings()
    };
    let e = load(&token, &token.uri(), &settings).expect_err("wrong PIN");
    assert!(
        matches!(
            e,
            KeyLoadError::Pkcs11 {
                field: "pkcs11.pin_file",
                source: Pkcs11Error::WrongPin { .. }
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with("pkcs11.pin_file: wrong PIN for token \"wrong-pin\""),
        "{text}"
    );
    assert!(!text.contains("9999"), "the PIN is never shown: {text}");
}

#[test]
fn a_group_readable_pin_file_is_refused() {
    let token = Token::new("keys");
    let settings = token.settings();
    let pin = settings.pin_file.clone().expect("pin file");
    softhsm::set_mode(&pin, 0o640);
    let e = load(&token, &token.uri(), &settings).expect_err("too open");
    assert!(
        matches!(
            e,
            KeyLoadError::Pkcs11 {
                field: "pkcs11.pin_file",
                source: Pkcs11Error::PinFile { .. }
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("chmod 600"), "{e}");
}

#[test]
fn a_missing_token_is_refused_naming_the_tokens_present() {
    let token = Token::new("keys");
    let e = load(
        &token,
        "pkcs11:token=absent;object=doc-sign",
        &token.settings(),
    )
    .expect_err("no such token");
    assert!(
        matches!(
            e,
            KeyLoadError::Pkcs11 {
                field: "signing.key",
                source: Pkcs11Error::TokenMissing { .. }
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("no token labelled \"absent\""), "{text}");
    assert!(
        text.contains("\"keys\"") && text.contains("\"ec-xml\""),
        "the tokens present are listed: {text}"
    );
}

#[test]
fn a_missing_object_is_refused() {
    let token = Token::new("keys");
    let uri = format!("pkcs11:token={};object=other-key", token.label);
    let e = load(&token, &uri, &token.settings()).expect_err("no such key");
    assert!(
        matches!(
            e,
            KeyLoadError::Pkcs11 {
                field: "signing.key",
                source: Pkcs11Error::ObjectMissing { .. }
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("no private key labelled \"other-key\" in token \"keys\""),
        "{e}"
    );
}

#[test]
fn two_keys_with_one_label_are_refused_as_ambiguous() {
    let token = Token::new("keys");
    let uri = "pkcs11:token=keys;object=twin";
    let e = load(&token, uri, &token.settings()).expect_err("ambiguous");
    assert!(
        matches!(
            e,
            KeyLoadError::Pkcs11 {
                source: Pkcs11Error::ObjectAmbiguous { count: 2, .. },
                ..
            }
        ),
        "{e:?}"
    );
    // Adding the id picks one; its public key is then not the certificate's (that is id 01).
    let e = load(&token, &format!("{uri};id=%02"), &token.settings()).expect_err("other key");
    assert!(
        e.to_string()
            .contains("does not match the key in the token"),
        "{e}"
    );
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let token = Token::new("keys");
    let other = tereze_codecs::pki::generate_key(tereze_codecs::pki::KeyKind::EcP256).expect("key");
    let cert =
        softhsm::certificate_for(&other.public_key_to_pem().expect("pem"), "Other", token.ca);
    let e = load_signing_key(
        &token.uri(),
        Some(&cert.to_pem().expect("pem")),
        &token.settings(),
        &Fields::NODE_SIGNING,
    )
    .expect_err("mismatch");
    assert!(
        e.to_string()
            .starts_with("signing.key (pkcs11:token=keys;object=doc-sign)"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("does not match the key in the token"),
        "{e}"
    );
}

/// The certificate matches the public-key object, but that object is another pair's: the
/// test signature made at open shows the private key is not the certificate's.
#[test]
fn a_stale_public_key_beside_the_private_key_is_refused() {
    let token = Token::new("stale");
    let e = load(&token, &token.uri(), &token.settings()).expect_err("not one pair");
    assert!(
        matches!(
            e,
            KeyLoadError::Pkcs11 {
                source: Pkcs11Error::KeyPairMismatch { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("are not one pair"), "{e}");
}

#[test]
fn a_missing_module_is_refused_naming_the_module_field() {
    let token = Token::new("keys");
    let settings = Pkcs11Settings {
        module: Some("/nonexistent/libpkcs11.so".into()),
        ..token.settings()
    };
    let e = load(&token, &token.uri(), &settings).expect_err("no module");
    assert!(
        matches!(
            e,
            KeyLoadError::Pkcs11 {
                field: "pkcs11.module",
                source: Pkcs11Error::ModuleMissing { .. }
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("/nonexistent/libpkcs11.so"), "{e}");
}

#[test]
fn a_token_key_without_module_or_pin_file_settings_names_the_missing_field() {
    let token = Token::new("keys");
    let e = load(&token, &token.uri(), &Pkcs11Settings::default()).expect_err("unset");
    assert_eq!(
        e.to_string(),
        "pkcs11.module is not set, and signing.key names a key in a token (pkcs11:token=keys;object=doc-sign)"
    );
    let e = load(
        &token,
        &token.uri(),
        &Pkcs11Settings {
            pin_file: None,
            ..token.settings()
        },
    )
    .expect_err("unset");
    assert!(
        e.to_string().starts_with("pkcs11.pin_file is not set"),
        "{e}"
    );
}

#[test]
fn a_bad_uri_is_refused_naming_the_key_field() {
    let token = Token::new("keys");
    let e = load(
        &token,
        "pkcs11:token=keys;object=doc-sign;slot=1",
        &token.settings(),
    )
    .expect_err("unknown attribute");
    assert!(
        e.to_string().starts_with("signing.key: pkcs11:token=keys"),
        "{e}"
    );
    assert!(e.to_string().contains("unknown attribute \"slot\""), "{e}");
}

#[test]
fn an_operation_the_token_does_not_offer_for_the_key_is_refused_by_mechanism() {
    use tereze_codecs::dsig::{ExternalKey, RawSign};
    let token = Token::new("rsa-xml");
    let uri = tereze_hsm::Pkcs11Uri::parse(&token.uri()).expect("uri");
    let key =
        tereze_hsm::open_token_key(&uri, &token.settings(), &Fields::NODE_SIGNING).expect("opens");
    assert!(!key.is_ec());
    let e = key
        .sign_raw(RawSign::EcdsaDigest { digest: &[0; 32] })
        .expect_err("no ECDSA with an RSA key");
    let e = e.downcast::<Pkcs11Error>().expect("a PKCS#11 error");
    assert!(matches!(*e, Pkcs11Error::MechanismMissing { .. }), "{e:?}");
    assert!(
        e.to_string().contains(
            "token \"rsa-xml\" does not offer CKM_ECDSA for the key labelled \"doc-sign\""
        ),
        "{e}"
    );
}

#[test]
fn a_tls_key_opens_when_the_token_can_sign_tls_handshakes_with_it() {
    // EC: CKM_ECDSA; RSA: SoftHSM2 offers CKM_RSA_PKCS_PSS, which TLS 1.3 needs.
    for label in ["ec-xml", "rsa-xml"] {
        let token = Token::new(label);
        let key = open_tls_key(&token.uri(), &token.settings(), &Fields::NODE_TLS)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(key.tls_refusal().is_none(), "{label}");
        assert_eq!(key.is_ec(), label == "ec-xml");
    }
    let token = Token::new("ec-xml");
    let e = open_tls_key(
        "pkcs11:token=ec-xml;object=node-tls",
        &token.settings(),
        &Fields::NODE_TLS,
    )
    .expect_err("no such key");
    assert!(
        matches!(
            e,
            KeyLoadError::Pkcs11 {
                field: "tls.key",
                source: Pkcs11Error::ObjectMissing { .. }
            }
        ),
        "{e:?}"
    );
    let e = open_tls_key(
        "pkcs11:token=ec-xml;slot=1",
        &token.settings(),
        &Fields::NODE_TLS,
    )
    .expect_err("bad URI");
    assert!(e.to_string().starts_with("tls.key: "), "{e}");
}
