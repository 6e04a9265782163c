//! GOST keys on the command line (issue 25): `pki init-dev --algorithm` issues GOST chains,
//! and `trust sign`, `ref publish` and `xml sign` sign with the key's own algorithm and
//! Streebog, never SHA-256; what they sign verifies. Needs Debian's `libengine-gost-openssl`
//! (`scripts/setup` installs it).

use std::path::Path;

use crate::net::tereze;
use crate::util::arg;

const GOST_256: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256";
const GOST_512: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512";
const STREEBOG_256: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256";
const STREEBOG_512: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-512";

/// `SignatureMethod` and `DigestMethod` of the signature in `xml`.
fn methods(xml: &str) -> (String, String) {
    let doc = tereze_codecs::xml::parse(xml.as_bytes()).expect("parses");
    let of = |local: &str| {
        doc.descendants_or_self(doc.root())
            .into_iter()
            .filter_map(|n| doc.element(n))
            .find(|e| e.is(tereze_codecs::dsig::DSIG_NAMESPACE, local))
            .and_then(|e| e.attribute("Algorithm"))
            .unwrap_or_else(|| panic!("no {local} in {xml}"))
            .to_owned()
    };
    (of("SignatureMethod"), of("DigestMethod"))
}

/// `pki init-dev` with the hub EEC and the keys of `algorithm`: its exit code and stderr.
fn init_dev(d: &Path, algorithm: &str) -> (i32, String) {
    crate::devpki::try_init_dev(d, "22000", &["--hub", "EEC", "--algorithm", algorithm])
}

#[test]
fn the_signing_commands_sign_with_a_gost_keys_own_algorithm() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let (code, err) = init_dev(d, "EEC=gost2012-256,KZ=gost2012-512");
    assert_eq!(code, 0, "{err}");
    let anchor = d.join("eec/root.pem");
    let (eec_key, eec_cert) = (d.join("eec/signer.key"), d.join("eec/signer.pem"));

    // The trust space init-dev signed with the Commission's GOST key, and one `trust sign`
    // signs again.
    let (code, unsigned, err) = tereze(&[
        "trust",
        "build",
        "--version",
        "2",
        arg(&d.join("trust-space.toml")),
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(d.join("v2-unsigned.xml"), unsigned).expect("write");
    let (code, signed, err) = tereze(&[
        "trust",
        "sign",
        "--key",
        arg(&eec_key),
        "--cert",
        arg(&eec_cert),
        arg(&d.join("v2-unsigned.xml")),
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(d.join("v2.xml"), &signed).expect("write");
    for file in ["trust-space.xml", "v2.xml"] {
        let text = std::fs::read_to_string(d.join(file)).expect("read");
        assert_eq!(
            methods(&text),
            (GOST_256.to_owned(), STREEBOG_256.to_owned()),
            "{file}"
        );
        let (code, out, err) = tereze(&[
            "trust",
            "verify",
            "--anchor",
            arg(&anchor),
            arg(&d.join(file)),
        ]);
        assert_eq!(code, 0, "{file}: {err}");
        assert!(out.contains("EEC document signer"), "{out}");
    }

    // A reference change set published with the Commission's GOST key.
    std::fs::write(
        d.join("set.toml"),
        "directory = \"P.CLS.025\"\nnumber = 1\nauthority = \"EEC\"\n\
         issued_at = \"2026-11-25T10:00:00Z\"\n\n[[operation]]\nop = \"add\"\n\
         [operation.entry]\ncode = \"9991\"\nnames = { en = \"Test unit\", ru = \"Тест\" }\n\
         valid_from = \"2026-01-01\"\n",
    )
    .expect("draft");
    let set = d.join("set.xml");
    let (code, _, err) = tereze(&[
        "ref",
        "publish",
        "--key",
        arg(&eec_key),
        "--cert",
        arg(&eec_cert),
        "--out",
        arg(&set),
        arg(&d.join("set.toml")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        methods(&std::fs::read_to_string(&set).expect("read")),
        (GOST_256.to_owned(), STREEBOG_256.to_owned())
    );
    let (code, out, err) = tereze(&[
        "ref",
        "verify",
        "--trust",
        arg(&d.join("trust-space.xml")),
        "--anchor",
        arg(&anchor),
        arg(&set),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("valid: P.CLS.025 change set 1 by EEC"),
        "{out}"
    );

    // `xml sign` with KZ's 512-bit key, verified against KZ's GOST root only.
    std::fs::write(d.join("doc.xml"), "<Doc Id=\"d\"><Item>1</Item></Doc>").expect("doc");
    let (code, signed, err) = tereze(&[
        "xml",
        "sign",
        "--key",
        arg(&d.join("kz/signer.key")),
        "--cert",
        arg(&d.join("kz/signer.pem")),
        arg(&d.join("doc.xml")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        methods(&signed),
        (GOST_512.to_owned(), STREEBOG_512.to_owned())
    );
    std::fs::write(d.join("doc-signed.xml"), &signed).expect("write");
    let verify = |root: &str| {
        tereze(&[
            "xml",
            "verify",
            "--trusted",
            arg(&d.join(root)),
            arg(&d.join("doc-signed.xml")),
        ])
        .0
    };
    assert_eq!(verify("kz/root.pem"), 0);
    assert_eq!(verify("ru/root.pem"), 1);
}

#[test]
fn init_dev_refuses_an_unknown_state_or_algorithm_naming_the_flag() {
    let dir = tempfile::tempdir().expect("dir");
    let (code, err) = init_dev(dir.path(), "KZ=gost2001");
    assert_eq!(code, 2);
    assert!(
        err.contains("--algorithm: KZ=gost2001: unknown algorithm \"gost2001\""),
        "{err}"
    );
    let (code, err) = init_dev(dir.path(), "BY=gost2012-256");
    assert_eq!(code, 2);
    assert!(
        err.contains("--algorithm: BY is not one of the states or the hub (KZ, RU, EEC)"),
        "{err}"
    );
}
