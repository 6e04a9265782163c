#!/usr/bin/env python3
"""Signs a detached-by-id template with GOST R 34.10-2012, independently of Tereze's code.

Debian's xmlsec1 is built without GOST, so the GOST variants of the WS-Security and SMEV 3
shapes are signed here instead: libxml2's exclusive C14N (through lxml) and the OpenSSL CLI
with the GOST engine (the same tools `codecs/tests/gost.rs` checks our GOST signatures with).

Usage: gost-sign.py TEMPLATE KEY.pem OUTPUT

TEMPLATE holds one ds:Signature whose references are same-document `#id` references with the
transform exclusive C14N only (no enveloped-signature: the targets do not contain the
signature), a GOST SignatureMethod and a Streebog DigestMethod, empty DigestValue and
SignatureValue elements, and its KeyInfo already filled. The element a reference names is the
one whose attribute of local name `Id` has that value. OPENSSL_CONF must load the GOST engine.
"""
import base64
import subprocess
import sys

from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
DIGESTS = {
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256": "md_gost12_256",
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-512": "md_gost12_512",
}
SIGNATURES = {
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256": "md_gost12_256",
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512": "md_gost12_512",
}


def openssl(args, data):
    done = subprocess.run(["openssl", *args], input=data, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"openssl {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def c14n(node):
    return etree.tostring(node, method="c14n", exclusive=True, with_comments=False)


def main(template, key, output):
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    doc = etree.parse(template, parser)
    sig = doc.find(f".//{{{DS}}}Signature")
    info = sig.find(f"{{{DS}}}SignedInfo")
    for ref in info.iterfind(f"{{{DS}}}Reference"):
        uri = ref.get("URI")
        if not uri.startswith("#"):
            sys.exit(f"only #id references: {uri}")
        targets = doc.xpath("//*[@*[local-name()='Id'] = $id]", id=uri[1:])
        if len(targets) != 1:
            sys.exit(f"{uri} names {len(targets)} elements")
        algs = [t.get("Algorithm") for t in ref.iterfind(f"{{{DS}}}Transforms/{{{DS}}}Transform")]
        if algs != [EXC]:
            sys.exit(f"{uri}: only exclusive C14N is implemented here, not {algs}")
        md = DIGESTS[ref.find(f"{{{DS}}}DigestMethod").get("Algorithm")]
        digest = openssl(["dgst", f"-{md}", "-binary"], c14n(targets[0]))
        ref.find(f"{{{DS}}}DigestValue").text = base64.b64encode(digest).decode()
    if info.find(f"{{{DS}}}CanonicalizationMethod").get("Algorithm") != EXC:
        sys.exit("SignedInfo: only exclusive C14N is implemented here")
    md = SIGNATURES[info.find(f"{{{DS}}}SignatureMethod").get("Algorithm")]
    value = openssl(["dgst", f"-{md}", "-sign", key, "-binary"], c14n(info))
    sig.find(f"{{{DS}}}SignatureValue").text = base64.b64encode(value).decode()
    doc.write(output, xml_declaration=True, encoding="UTF-8")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
