//! Interoperability with xmlsec1 (libxmlsec1 + OpenSSL), the reference XMLDSig implementation:
//! our signatures verify with `xmlsec1 --verify`, xmlsec1's verify with ours, and a tampered
//! document fails in both.

mod common;

use common::{read, run, text, xmlsec1, xmlsec1_sign, Pki, SAMPLE};
use tereze_codecs::dsig::{
    self, DigestMethod, RsaPadding, SignOptions, SignTarget, VerifyError, VerifyPolicy,
};
use tereze_codecs::pki::KeyKind;
use tereze_codecs::xml;

const SIGNER: &str = "C=KZ, O=Tereze test, CN=Test signer";
const CC: &str = "urn:EEC:M:ComplexDataObjects";

fn sign_sample(pki: &Pki, target: SignTarget, options: &SignOptions) -> String {
    let mut doc = xml::parse(read(std::path::Path::new(SAMPLE)).as_bytes()).expect("sample parses");
    dsig::sign_enveloped(&mut doc, &target, &pki.signing_key(), options).expect("signs");
    doc.to_xml()
}

fn tamper(signed: &str) -> String {
    let t = signed.replace("Ячмень фуражный", "Ячмень пивоваренный");
    assert_ne!(t, signed, "the tamper target is in the sample");
    t
}

fn xmlsec1_verify(
    pki: &Pki,
    file: &std::path::Path,
    id_attr: Option<&str>,
) -> std::process::Output {
    let mut c = xmlsec1();
    c.arg("--verify")
        .arg("--trusted-pem")
        .arg(pki.path("ca.pem"));
    if let Some(node) = id_attr {
        c.arg("--id-attr:Id").arg(node);
    }
    run(c.arg(file))
}

fn ours_verify(pki: &Pki, signed: &str) -> Result<dsig::Verified, VerifyError> {
    let doc = xml::parse(signed.as_bytes()).expect("signed document parses");
    dsig::verify(&doc, &pki.trust(), &VerifyPolicy::default())
}

#[test]
fn our_whole_document_signatures_verify_with_xmlsec1() {
    let cases = [
        (KeyKind::EcP256, DigestMethod::SHA256),
        (KeyKind::EcP256, DigestMethod::SHA384),
        (KeyKind::EcP256, DigestMethod::SHA512),
        (KeyKind::EcP384, DigestMethod::SHA384),
        (KeyKind::EcP521, DigestMethod::SHA512),
        (KeyKind::Rsa(2048), DigestMethod::SHA256),
        (KeyKind::Rsa(3072), DigestMethod::SHA512),
    ];
    for (kind, digest) in cases {
        let pki = Pki::new(kind);
        let options = SignOptions {
            digest,
            ..SignOptions::default()
        };
        let signed = sign_sample(&pki, SignTarget::Document, &options);
        let file = pki.write("signed.xml", signed.as_bytes());
        let out = xmlsec1_verify(&pki, &file, None);
        assert!(
            out.status.success(),
            "{kind:?} {}: {}",
            digest.name,
            text(&out)
        );
        assert_eq!(
            ours_verify(&pki, &signed)
                .expect("ours verifies")
                .signer
                .subject,
            SIGNER
        );

        let bad = pki.write("tampered.xml", tamper(&signed).as_bytes());
        let out = xmlsec1_verify(&pki, &bad, None);
        assert!(
            !out.status.success(),
            "xmlsec1 accepted a tampered document: {}",
            text(&out)
        );
        assert!(matches!(
            ours_verify(&pki, &read(&bad)),
            Err(VerifyError::DigestMismatch { .. })
        ));
    }
}

#[test]
fn our_element_signatures_verify_with_xmlsec1() {
    let pki = Pki::new(KeyKind::EcP256);
    let signed = sign_sample(
        &pki,
        SignTarget::Id("phyto-ref".into()),
        &SignOptions::default(),
    );
    let file = pki.write("signed.xml", signed.as_bytes());
    let id_attr = format!("{CC}:PermitDocument");
    let out = xmlsec1_verify(&pki, &file, Some(&id_attr));
    assert!(out.status.success(), "{}", text(&out));
    let verified = ours_verify(&pki, &signed).expect("ours verifies");
    assert_eq!(verified.references[0].uri, "#phyto-ref");
    assert!(verified.references[0]
        .path
        .ends_with("/ccdo:PermitDocument[1]"));

    let bad = signed.replace("KZ-PHY-2026-004417", "KZ-PHY-2026-999999");
    let bad = pki.write("tampered.xml", bad.as_bytes());
    assert!(!xmlsec1_verify(&pki, &bad, Some(&id_attr)).status.success());
    assert!(matches!(
        ours_verify(&pki, &read(&bad)),
        Err(VerifyError::DigestMismatch { .. })
    ));
}

/// An xmlsec1 signing template: enveloped signature as the last child of `parent_close`'s
/// element, with an empty X509Data that xmlsec1 fills with the signer's certificate.
fn template(c14n: &str, method: &str, digest: &str, uri: &str) -> String {
    format!(
        concat!(
            "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">\n",
            "<ds:SignedInfo>\n",
            "<ds:CanonicalizationMethod Algorithm=\"{c14n}\"/>\n",
            "<ds:SignatureMethod Algorithm=\"{method}\"/>\n",
            "<ds:Reference URI=\"{uri}\">\n",
            "<ds:Transforms>\n",
            "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\n",
            "<ds:Transform Algorithm=\"{c14n}\"/>\n",
            "</ds:Transforms>\n",
            "<ds:DigestMethod Algorithm=\"{digest}\"/>\n",
            "<ds:DigestValue/>\n",
            "</ds:Reference>\n",
            "</ds:SignedInfo>\n",
            "<ds:SignatureValue/>\n",
            "<ds:KeyInfo><ds:X509Data/></ds:KeyInfo>\n",
            "</ds:Signature>"
        ),
        c14n = c14n,
        method = method,
        digest = digest,
        uri = uri
    )
}

#[test]
fn xmlsec1_signatures_verify_with_ours() {
    const EXC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
    const INC: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
    const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
    let sample = read(std::path::Path::new(SAMPLE));
    let cases = [
        (
            KeyKind::EcP256,
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            EXC,
        ),
        (
            KeyKind::EcP256,
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            INC,
        ),
        (
            KeyKind::EcP384,
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
            EXC,
        ),
        (
            KeyKind::Rsa(2048),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            EXC,
        ),
        (
            KeyKind::Rsa(2048),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
            INC,
        ),
    ];
    for (kind, method, c14n) in cases {
        let pki = Pki::new(kind);
        // Whole document.
        let tmpl = sample.replace(
            "</edec:ExportDeclarationDetails>",
            &format!(
                "{}</edec:ExportDeclarationDetails>",
                template(c14n, method, SHA256, "")
            ),
        );
        let signed = xmlsec1_sign(&pki, &tmpl, None);
        let verified = ours_verify(&pki, &signed).unwrap_or_else(|e| {
            panic!("{kind:?} {method} {c14n}: ours refused xmlsec1's signature: {e}")
        });
        assert_eq!(verified.signer.subject, SIGNER);
        assert_eq!(verified.signature_method, method);
        assert!(matches!(
            ours_verify(&pki, &tamper(&signed)),
            Err(VerifyError::DigestMismatch { .. })
        ));

        // One element, by Id, signature enveloped in it.
        let tmpl = sample.replace(
            "</ccdo:PermitDocument>",
            &format!(
                "{}</ccdo:PermitDocument>",
                template(c14n, method, SHA256, "#phyto-ref")
            ),
        );
        // Only the first PermitDocument has the Id: keep the template in that one.
        let first_end = tmpl.find("</ccdo:PermitDocument>").expect("end tag");
        let tmpl = format!(
            "{}{}",
            &tmpl[..first_end],
            tmpl[first_end..].replacen(&template(c14n, method, SHA256, "#phyto-ref"), "", 1)
        );
        let signed = xmlsec1_sign(&pki, &tmpl, Some(&format!("{CC}:PermitDocument")));
        let verified = ours_verify(&pki, &signed)
            .unwrap_or_else(|e| panic!("{kind:?} {method} {c14n} #id: ours refused: {e}"));
        let signed_view = verified.references[0]
            .document()
            .expect("signed view parses");
        assert!(xml::parse(signed.as_bytes()).is_ok());
        assert!(signed_view
            .text_content(signed_view.root())
            .contains("KZ-PHY-2026-004417"));
        assert!(matches!(
            ours_verify(
                &pki,
                &signed.replace("KZ-PHY-2026-004417", "KZ-PHY-2026-000001")
            ),
            Err(VerifyError::DigestMismatch { .. })
        ));
    }
}

#[test]
fn rsa_pss_signatures_round_trip() {
    // xmlsec1 1.2.x (Debian 12) has no RSA-PSS; this is checked against ourselves only.
    let pki = Pki::new(KeyKind::Rsa(2048));
    let options = SignOptions {
        rsa_padding: RsaPadding::Pss,
        ..SignOptions::default()
    };
    let signed = sign_sample(&pki, SignTarget::Document, &options);
    let verified = ours_verify(&pki, &signed).expect("verifies");
    assert_eq!(
        verified.signature_method,
        "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
    );
    assert!(matches!(
        ours_verify(&pki, &tamper(&signed)),
        Err(VerifyError::DigestMismatch { .. })
    ));
}
