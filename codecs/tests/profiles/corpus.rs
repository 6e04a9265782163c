//! The signed shapes of the corpus, made at test time: a template from `tests/vectors/templates/`
//! (or the project's export-declaration sample) gets its empty `ds:Signature`s filled by
//! `xmlsec1`, with keys the test PKI issues for the run. Nothing here is signed by our own code,
//! so every document is an independent implementation's output.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use tereze_codecs::pki::KeyKind;

use crate::common::{read, xmlsec1_sign_as, Pki, SAMPLE};

pub const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const SMEV: &str = "urn://x-artefacts-smev-gov-ru/services/message-exchange/types/1.1";
pub const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const PHYTO: &str = "urn:tereze:test:phyto";
pub const EDEC: &str = "urn:EEC:R:CC:01:001:ExportDeclarationDetails:v1.0.0";

const EXC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// Subjects of the signers the corpus uses (the PKI's default signer and the ones it adds).
pub const SIGNER: &str = "C=KZ, O=Tereze test, CN=Test signer";
pub const INSPECTOR: &str = "C=KZ, O=Tereze test, CN=Phytosanitary inspector";
pub const AUTHORITY: &str = "C=KZ, O=Tereze test, CN=Inspection authority";
pub const IDP_ASSERTION: &str = "C=KZ, O=Tereze test, CN=IdP assertion key";

pub fn template(name: &str) -> String {
    read(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/templates")
            .join(name),
    )
}

/// The XMLDSig signature method for a key of this kind with SHA-256 (SHA-384 for P-384).
pub fn method(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::EcP384 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        KeyKind::Rsa(_) => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        _ => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    }
}

/// One transform, as a `ds:Transform` element.
pub mod transform {
    pub const ENVELOPED: &str =
        "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>";
    pub const EXC_C14N: &str =
        "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>";
    /// XMLDSig §6.6.3 XPath filter keeping every node outside any signature: the way older
    /// tools wrote "enveloped" (with `ds` bound on the `XPath` element itself).
    pub const XPATH_NOT_SIGNATURE: &str = concat!(
        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\">",
        "<ds:XPath xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">",
        "not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>"
    );
    /// The same filter with the XMLDSig namespace bound to another prefix (`dsig`): the idiom
    /// is recognised by the namespace, not by the prefix as written.
    pub const XPATH_NOT_SIGNATURE_DSIG_PREFIX: &str = concat!(
        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\">",
        "<ds:XPath xmlns:dsig=\"http://www.w3.org/2000/09/xmldsig#\">",
        "not(ancestor-or-self::dsig:Signature)</ds:XPath></ds:Transform>"
    );
    /// XPath Filter 2.0 (W3C REC xmldsig-filter2, 2002) subtracting the signature that holds
    /// the transform.
    pub const XPATH2_SUBTRACT_HERE: &str = concat!(
        "<ds:Transform Algorithm=\"http://www.w3.org/2002/06/xmldsig-filter2\">",
        "<dsig-xpath:XPath xmlns:dsig-xpath=\"http://www.w3.org/2002/06/xmldsig-filter2\" ",
        "Filter=\"subtract\">here()/ancestor::ds:Signature[1]</dsig-xpath:XPath></ds:Transform>"
    );
}

/// An empty `ds:Signature` for xmlsec1 to fill: one reference to `uri` with `transforms`,
/// SHA-256 digest, exclusive C14N for `SignedInfo`, `KeyInfo/X509Data` filled with the signer's
/// certificate.
pub fn signature(id: &str, method: &str, uri: &str, transforms: &[&str]) -> String {
    format!(
        concat!(
            "<ds:Signature xmlns:ds=\"{ds}\" Id=\"{id}\">",
            "<ds:SignedInfo>",
            "<ds:CanonicalizationMethod Algorithm=\"{exc}\"/>",
            "<ds:SignatureMethod Algorithm=\"{method}\"/>",
            "<ds:Reference URI=\"{uri}\"><ds:Transforms>{transforms}</ds:Transforms>",
            "<ds:DigestMethod Algorithm=\"{sha256}\"/><ds:DigestValue/></ds:Reference>",
            "</ds:SignedInfo><ds:SignatureValue/>",
            "<ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"
        ),
        ds = DS,
        id = id,
        exc = EXC,
        method = method,
        uri = uri,
        transforms = transforms.concat(),
        sha256 = SHA256
    )
}

/// How a WS-Security signature names its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    /// `ds:X509Data` with the certificate (filled by xmlsec1).
    X509Data,
    /// `wsse:SecurityTokenReference` to the `wsse:BinarySecurityToken` in the same header
    /// (X.509 Token Profile 1.1 §3.3.2), the usual WSS form.
    TokenReference,
}

pub const SOAP_BODY_TEXT: &str = "KZ-PHY-2026-004417";
pub const WSA: &str = "http://www.w3.org/2005/08/addressing";

/// What a WS-Security signature's references sign, by `wsu:Id`.
pub const BODY_AND_TIMESTAMP: &[&str] = &["Body-1", "TS-1"];

/// One same-document reference per id, exclusive C14N, SHA-256.
fn references(ids: &[&str]) -> String {
    ids.iter()
        .map(|id| {
            format!(
                concat!(
                    "<ds:Reference URI=\"#{id}\"><ds:Transforms>{exc}</ds:Transforms>",
                    "<ds:DigestMethod Algorithm=\"{sha256}\"/><ds:DigestValue/></ds:Reference>"
                ),
                id = id,
                exc = transform::EXC_C14N,
                sha256 = SHA256
            )
        })
        .collect()
}

fn wss_template(soap12: bool, method: &str, cert: &str, key_info: &str, ids: &[&str]) -> String {
    template(if soap12 {
        "wss-soap12.xml"
    } else {
        "wss-soap11.xml"
    })
    .replace("@SIGNATURE_METHOD@", method)
    .replace("@CERT@", cert)
    .replace("@KEYINFO@", key_info)
    .replace("@REFERENCES@", &references(ids))
}

/// A SOAP 1.1 or 1.2 message whose `wsse:Security` header signature covers `soap:Body`
/// (`#Body-1`) and `wsu:Timestamp` (`#TS-1`).
pub fn wss(pki: &Pki, kind: KeyKind, soap12: bool, key_ref: KeyRef) -> String {
    wss_signing(pki, kind, soap12, key_ref, BODY_AND_TIMESTAMP)
}

/// The WS-Security message with a signature over the elements of these ids (`Body-1`,
/// `TS-1`, `To-1` for the `wsa:To` header).
pub fn wss_signing(
    pki: &Pki,
    kind: KeyKind,
    soap12: bool,
    key_ref: KeyRef,
    ids: &[&str],
) -> String {
    let cert = BASE64.encode(pki.signer.to_der().expect("der"));
    let key_info = match key_ref {
        KeyRef::X509Data => "<ds:X509Data/>",
        KeyRef::TokenReference => concat!(
            "<wsse:SecurityTokenReference><wsse:Reference URI=\"#X509-token-1\" ",
            "ValueType=\"http://docs.oasis-open.org/wss/2004/01/",
            "oasis-200401-wss-x509-token-profile-1.0#X509v3\"/></wsse:SecurityTokenReference>"
        ),
    };
    let tmpl = wss_template(soap12, method(kind), &cert, key_info, ids);
    // xmlsec1 matches `--id-attr` on the element's own namespace (Body is SOAP's, Timestamp
    // wsu's) and the attribute by local name, so `wsu:Id` is found as `Id`.
    let body = format!("{}:Body", if soap12 { SOAP12 } else { SOAP11 });
    let ts = format!("{WSU}:Timestamp");
    let to = format!("{WSA}:To");
    xmlsec1_sign_as(
        pki,
        "signer",
        &tmpl,
        &[("Id", &body), ("Id", &ts), ("Id", &to)],
        None,
    )
}

pub const SMEV_CONTENT: &str = "RU-PHY-2026-118204";

/// SMEV 3: `SenderProvidedRequestData Id="SIGNED_BY_CONSUMER"` signed from the sibling
/// `CallerInformationSystemSignature`.
pub fn smev3(pki: &Pki, kind: KeyKind) -> String {
    let tmpl = template("smev3-send-request.xml").replace("@SIGNATURE_METHOD@", method(kind));
    let node = format!("{SMEV}:SenderProvidedRequestData");
    xmlsec1_sign_as(pki, "signer", &tmpl, &[("Id", &node)], None)
}

pub const SAML_NAME_ID: &str = "inspector@example.test";

/// SAML-like Response: the assertion signed (by `idp-assertion`), then the response (by the
/// PKI's default signer) over the signed assertion.
pub fn saml(pki: &Pki) -> String {
    pki.add_signer("idp-assertion", "IdP assertion key", KeyKind::EcP256);
    let m = method(KeyKind::EcP256);
    let transforms = [transform::ENVELOPED, transform::EXC_C14N];
    let tmpl = template("saml-response.xml").replace(
        "@ASSERTION_SIGNATURE@",
        &signature("sig-assertion", m, "#assert-91ab", &transforms),
    );
    let resp = format!("{SAMLP}:Response");
    let assertion = format!("{SAML}:Assertion");
    let ids = [("ID", resp.as_str()), ("ID", assertion.as_str())];
    let once = xmlsec1_sign_as(pki, "idp-assertion", &tmpl, &ids, None);
    let twice = once.replace(
        "@RESPONSE_SIGNATURE@",
        &signature("sig-response", m, "#resp-7f3c", &transforms),
    );
    xmlsec1_sign_as(
        pki,
        "signer",
        &twice,
        &ids,
        Some("//*[local-name()='Signature' and @Id='sig-response']"),
    )
}

pub const PHYTO_NUMBER: &str = "KZ-PHY-2026-004417";

/// Co-signed phytosanitary certificate: the inspector signs `Certificate` by Id, then the
/// authority signs the whole document (`URI=""`), covering the inspector's signature.
pub fn phyto_cosigned(pki: &Pki) -> String {
    phyto_cosigned_with(pki, &[transform::ENVELOPED, transform::EXC_C14N])
}

/// The co-signed certificate with the authority's signature using these transforms.
pub fn phyto_cosigned_with(pki: &Pki, authority_transforms: &[&str]) -> String {
    pki.add_signer("inspector", "Phytosanitary inspector", KeyKind::EcP256);
    pki.add_signer("authority", "Inspection authority", KeyKind::Rsa(2048));
    let transforms = [transform::ENVELOPED, transform::EXC_C14N];
    let tmpl = template("phyto-cosigned.xml")
        .replace(
            "@INSPECTOR_SIGNATURE@",
            &signature(
                "sig-inspector",
                method(KeyKind::EcP256),
                "#cert-KZ-2026-004417",
                &transforms,
            ),
        )
        .replace("@AUTHORITY_SIGNATURE@", "@AUTHORITY@");
    let cert = format!("{PHYTO}:Certificate");
    let ids = [("Id", cert.as_str())];
    let once = xmlsec1_sign_as(pki, "inspector", &tmpl, &ids, None);
    let twice = once.replace(
        "@AUTHORITY@",
        &signature(
            "sig-authority",
            method(KeyKind::Rsa(2048)),
            "",
            authority_transforms,
        ),
    );
    xmlsec1_sign_as(
        pki,
        "authority",
        &twice,
        &ids,
        Some("//*[local-name()='Signature' and @Id='sig-authority']"),
    )
}

/// The XPath shapes, each over the whole export-declaration sample (`URI=""`), the signature
/// the last child of its document element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XPathShape {
    /// `not(ancestor-or-self::ds:Signature)` with no enveloped-signature transform.
    NotSignatureAlone,
    /// enveloped-signature, then the same XPath.
    AfterEnveloped,
    /// XPath Filter 2.0 subtract `here()/ancestor::ds:Signature[1]`.
    Filter2Subtract,
    /// enveloped-signature, then the XPath Filter 2.0 subtract.
    Filter2AfterEnveloped,
    /// `not(ancestor-or-self::dsig:Signature)` alone, `dsig` bound to the XMLDSig namespace.
    NotSignatureOtherPrefix,
}

impl XPathShape {
    pub const ALL: [XPathShape; 5] = [
        XPathShape::NotSignatureAlone,
        XPathShape::AfterEnveloped,
        XPathShape::Filter2Subtract,
        XPathShape::Filter2AfterEnveloped,
        XPathShape::NotSignatureOtherPrefix,
    ];

    /// The shape's name in the corpus.
    pub fn name(self) -> &'static str {
        match self {
            XPathShape::NotSignatureAlone => "XPath alone",
            XPathShape::AfterEnveloped => "XPath after enveloped",
            XPathShape::Filter2Subtract => "XPath Filter 2.0 subtract",
            XPathShape::Filter2AfterEnveloped => "XPath Filter 2.0 subtract after enveloped",
            XPathShape::NotSignatureOtherPrefix => "XPath alone, dsig prefix",
        }
    }
}

pub const SAMPLE_TEXT: &str = "Ячмень фуражный";

pub fn xpath(pki: &Pki, shape: XPathShape) -> String {
    let transforms: &[&str] = match shape {
        XPathShape::NotSignatureAlone => &[transform::XPATH_NOT_SIGNATURE, transform::EXC_C14N],
        XPathShape::AfterEnveloped => &[
            transform::ENVELOPED,
            transform::XPATH_NOT_SIGNATURE,
            transform::EXC_C14N,
        ],
        XPathShape::Filter2Subtract => &[transform::XPATH2_SUBTRACT_HERE, transform::EXC_C14N],
        XPathShape::Filter2AfterEnveloped => &[
            transform::ENVELOPED,
            transform::XPATH2_SUBTRACT_HERE,
            transform::EXC_C14N,
        ],
        XPathShape::NotSignatureOtherPrefix => &[
            transform::XPATH_NOT_SIGNATURE_DSIG_PREFIX,
            transform::EXC_C14N,
        ],
    };
    let sample = read(std::path::Path::new(SAMPLE));
    let sig = signature("sig-xpath", method(KeyKind::EcP256), "", transforms);
    let tmpl = sample.replace(
        "</edec:ExportDeclarationDetails>",
        &format!("{sig}</edec:ExportDeclarationDetails>"),
    );
    assert_ne!(
        tmpl, sample,
        "the sample has the end tag the template is put before"
    );
    xmlsec1_sign_as(pki, "signer", &tmpl, &[], None)
}

pub const GOST2012_256: &str =
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256";
const STREEBOG256: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256";

/// The GOST shapes the corpus has: Debian's xmlsec1 is built without GOST, so these are signed
/// by `tests/vectors/gost-sign.py` (libxml2's C14N through lxml and the OpenSSL CLI with the
/// GOST engine), still not by our code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GostShape {
    Smev3,
    WssSoap11,
}

/// Fails (never skips) when the GOST engine, python3 or lxml is missing.
pub fn gost_pki() -> Pki {
    if let Err(e) = tereze_gost_engine::load() {
        panic!("the GOST vectors need the OpenSSL GOST engine: {e}; run scripts/setup");
    }
    Pki::new(KeyKind::Gost2012_256)
}

pub fn gost(pki: &Pki, shape: GostShape) -> String {
    let cert = BASE64.encode(pki.signer.to_der().expect("der"));
    let x509 =
        format!("<ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data>");
    let tmpl = match shape {
        GostShape::Smev3 => template("smev3-send-request.xml").replace("<ds:X509Data/>", &x509),
        GostShape::WssSoap11 => wss_template(false, GOST2012_256, &cert, &x509, BODY_AND_TIMESTAMP),
    }
    .replace("@SIGNATURE_METHOD@", GOST2012_256)
    .replace(SHA256, STREEBOG256);
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = pki.write("gost-template.xml", tmpl.as_bytes());
    let output = pki.path("gost-signed.xml");
    let out = std::process::Command::new("python3")
        .arg(manifest.join("tests/vectors/gost-sign.py"))
        .arg(&input)
        .arg(pki.path("signer.key"))
        .arg(&output)
        .env(
            "OPENSSL_CONF",
            manifest.join("tests/data/gost/gost-engine.cnf"),
        )
        .output()
        .unwrap_or_else(|e| panic!("python3 is required; run scripts/setup: {e}"));
    assert!(
        out.status.success(),
        "gost-sign.py (needs python3-lxml and the GOST engine; run scripts/setup): {}",
        crate::common::text(&out)
    );
    read(&output)
}
