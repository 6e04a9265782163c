//! The verification profiles against documents `xmlsec1` signs here from templates: the XPath
//! forms of "enveloped" (XPath filtering alone or after enveloped-signature, XPath Filter 2.0
//! subtract), a WS-Security SOAP message (SOAP 1.1 with a BinarySecurityToken, SOAP 1.2 with
//! X509Data) and Russia's SMEV 3 detached shape. Each verifies under its profile and returns
//! the element xmlsec1 signed, and is refused under the enveloped profile. The broad corpus
//! and the wrapping attacks on it live in the vectors tests; these prove the profile code.

mod common;

use base64::Engine;
use common::{read, run, text, xmlsec1, Pki};
use tereze_codecs::dsig::{
    self, verify_profile, ElementPath, Expect, Profile, SignedElement, VerifyError, VerifyPolicy,
    SOAP11_NAMESPACE, SOAP12_NAMESPACE,
};
use tereze_codecs::pki::KeyKind;
use tereze_codecs::xml;

const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const SMEV: &str = "urn://x-artefacts-smev-gov-ru/services/message-exchange/types/1.1";
const ENVELOPED: &str =
    r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#;

/// Signs `tmpl` with xmlsec1 and the PKI's signer; each `id_attrs` entry is an
/// `--id-attr:Id` node (`namespace:local`).
fn xmlsec1_sign(pki: &Pki, tmpl: &str, id_attrs: &[&str]) -> String {
    let input = pki.write("profile-template.xml", tmpl.as_bytes());
    let output = pki.path("profile-signed.xml");
    let mut c = xmlsec1();
    c.arg("--sign").arg("--privkey-pem").arg(format!(
        "{},{}",
        pki.path("signer.key").display(),
        pki.path("signer.pem").display()
    ));
    for node in id_attrs {
        c.arg("--id-attr:Id").arg(node);
    }
    let out = run(c.arg("--output").arg(&output).arg(&input));
    assert!(out.status.success(), "xmlsec1 --sign: {}", text(&out));
    read(&output)
}

/// A signature template: ECDSA-SHA256, exclusive C14N, one reference per `(uri, transforms)`.
fn signature(refs: &[(&str, &str)], key_info: &str) -> String {
    let references: String = refs
        .iter()
        .map(|(uri, transforms)| {
            format!(
                r#"<ds:Reference URI="{uri}"><ds:Transforms>{transforms}<ds:Transform Algorithm="{EXC}"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>"#
            )
        })
        .collect();
    format!(
        r#"<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC}"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>{references}</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo>{key_info}</ds:KeyInfo></ds:Signature>"#
    )
}

fn check(pki: &Pki, xml: &str, expect: &Expect) -> Result<SignedElement, VerifyError> {
    let doc = xml::parse(xml.as_bytes()).expect("parses");
    verify_profile(&doc, &pki.trust(), &VerifyPolicy::default(), expect)
}

fn canonical(s: &SignedElement) -> String {
    String::from_utf8(s.canonical.clone()).expect("utf-8")
}

#[test]
fn xmlsec1_xpath_forms_of_enveloped_verify_as_the_enveloped_transform() {
    let pki = Pki::new(KeyKind::EcP256);
    let idiom = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath xmlns:dsig="http://www.w3.org/2000/09/xmldsig#">not(ancestor-or-self::dsig:Signature)</ds:XPath></ds:Transform>"#;
    let filter2 = r#"<ds:Transform Algorithm="http://www.w3.org/2002/06/xmldsig-filter2"><dsig-xpath:XPath xmlns:dsig-xpath="http://www.w3.org/2002/06/xmldsig-filter2" Filter="subtract">here()/ancestor::ds:Signature[1]</dsig-xpath:XPath></ds:Transform>"#;
    let forms = [
        ("XPath alone", idiom.to_owned()),
        ("enveloped then XPath", format!("{ENVELOPED}{idiom}")),
        ("XPath Filter 2.0", filter2.to_owned()),
        (
            "enveloped then XPath Filter 2.0",
            format!("{ENVELOPED}{filter2}"),
        ),
    ];
    for (name, transforms) in forms {
        let tmpl = format!(
            "<Certificate xmlns=\"urn:t\"><Product>wheat</Product>{}</Certificate>",
            signature(&[("", &transforms)], "<ds:X509Data/>")
        );
        let signed = xmlsec1_sign(&pki, &tmpl, &[]);
        let doc = xml::parse(signed.as_bytes()).expect("parses");
        let v = dsig::verify(&doc, &pki.trust(), &VerifyPolicy::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            v.signer.subject, "C=KZ, O=Tereze test, CN=Test signer",
            "{name}"
        );
        let element =
            check(&pki, &signed, &Expect::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            canonical(&element),
            "<Certificate xmlns=\"urn:t\"><Product>wheat</Product></Certificate>",
            "{name}"
        );
        // Changed content still fails: the form is not a way around the digest.
        let tampered = signed.replace(">wheat<", ">barley<");
        assert!(
            matches!(
                check(&pki, &tampered, &Expect::default()),
                Err(VerifyError::DigestMismatch { .. })
            ),
            "{name}"
        );
    }
}

fn wss_message(pki: &Pki, soap: &str, token: bool) -> String {
    let der = pki.signer.to_der().expect("der");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let x509v3 = dsig::X509V3_TOKEN;
    let (bst, key_info) = if token {
        (
            format!(
                "<wsse:BinarySecurityToken wsu:Id=\"X509Token\" ValueType=\"{x509v3}\" EncodingType=\"{}\">{b64}</wsse:BinarySecurityToken>",
                dsig::BASE64_ENCODING
            ),
            format!(
                "<wsse:SecurityTokenReference><wsse:Reference URI=\"#X509Token\" ValueType=\"{x509v3}\"/></wsse:SecurityTokenReference>"
            ),
        )
    } else {
        (String::new(), "<ds:X509Data/>".to_owned())
    };
    let tmpl = format!(
        "<soap:Envelope xmlns:soap=\"{soap}\" xmlns:wsse=\"{WSSE}\" xmlns:wsu=\"{WSU}\"><soap:Header><wsse:Security>{bst}<wsu:Timestamp wsu:Id=\"TS\"><wsu:Created>2026-12-08T00:00:00Z</wsu:Created></wsu:Timestamp>{}</wsse:Security></soap:Header><soap:Body wsu:Id=\"Body\"><m:Order xmlns:m=\"urn:m\">ok</m:Order></soap:Body></soap:Envelope>",
        signature(&[("#Body", ""), ("#TS", "")], &key_info)
    );
    xmlsec1_sign(
        pki,
        &tmpl,
        &[&format!("{soap}:Body"), &format!("{WSU}:Timestamp")],
    )
}

#[test]
fn xmlsec1_ws_security_messages_verify_under_wss_and_return_the_body() {
    let pki = Pki::new(KeyKind::EcP256);
    for (soap, token) in [(SOAP11_NAMESPACE, true), (SOAP12_NAMESPACE, false)] {
        let signed = wss_message(&pki, soap, token);
        let body = check(&pki, &signed, &Expect::new(Profile::Wss))
            .unwrap_or_else(|e| panic!("{soap}: {e}"));
        assert_eq!(body.path, "/soap:Envelope[1]/soap:Body[1]");
        assert_eq!(
            canonical(&body),
            format!("<soap:Body xmlns:soap=\"{soap}\" xmlns:wsu=\"{WSU}\" wsu:Id=\"Body\"><m:Order xmlns:m=\"urn:m\">ok</m:Order></soap:Body>")
        );
        assert_eq!(
            body.verified.signer.subject,
            "C=KZ, O=Tereze test, CN=Test signer"
        );
        // Under the enveloped profile the Security header's signature covers nothing there.
        let e = check(&pki, &signed, &Expect::default()).expect_err("refused");
        assert!(matches!(e, VerifyError::NotCovered { .. }), "{soap}: {e}");
    }
}

#[test]
fn xmlsec1_smev3_detached_signature_verifies_under_detached_by_id() {
    let pki = Pki::new(KeyKind::EcP256);
    let tmpl = format!(
        "<SendRequestRequest xmlns=\"{SMEV}\"><SenderProvidedRequestData Id=\"SIGNED_BY_CONSUMER\"><MessageID>db0486d0-3c08-11e5-95e2-d4c9eff07b77</MessageID><Content>ok</Content></SenderProvidedRequestData><CallerInformationSystemSignature>{}</CallerInformationSystemSignature></SendRequestRequest>",
        signature(&[("#SIGNED_BY_CONSUMER", "")], "<ds:X509Data/>")
    );
    let signed = xmlsec1_sign(&pki, &tmpl, &[&format!("{SMEV}:SenderProvidedRequestData")]);
    let path = ElementPath::parse(&format!(
        "/{{{SMEV}}}SendRequestRequest/{{{SMEV}}}SenderProvidedRequestData"
    ))
    .expect("path");
    let data = check(
        &pki,
        &signed,
        &Expect::new(Profile::DetachedById).element(path),
    )
    .expect("verifies");
    assert_eq!(
        canonical(&data),
        format!("<SenderProvidedRequestData xmlns=\"{SMEV}\" Id=\"SIGNED_BY_CONSUMER\"><MessageID>db0486d0-3c08-11e5-95e2-d4c9eff07b77</MessageID><Content>ok</Content></SenderProvidedRequestData>")
    );
    // The one-signature enveloped check refuses the shape, naming it.
    let doc = xml::parse(signed.as_bytes()).expect("parses");
    let e = dsig::verify(&doc, &pki.trust(), &VerifyPolicy::default()).expect_err("refused");
    assert!(matches!(e, VerifyError::NotEnveloped { .. }), "{e}");
}
