"""The python side of `tereze-bench`: python-xmlsec (libxmlsec1, in process) and lxml's C14N.

Run by the suite as `python3 xmlsec_bench.py CONFIG.json`; prints one JSON object. The loops
have the same shape as the Rust side (bench/src/measure.rs): run for a fixed time, count
operations, median of the runs. Also writes, for the `xmlsec1` command, a signature template
and a python-signed copy of each document, and checks that python-xmlsec verifies what
Tereze signed.

"full": bytes -> parse -> template -> sign -> bytes; bytes -> parse -> find Signature ->
verify. "core": trees parsed (and templates added) beforehand; only a new SignatureContext,
the key and sign()/verify() are timed (a context cannot sign twice).
"""

import json
import statistics
import sys
import time

import lxml
import xmlsec
from lxml import etree

C = xmlsec.constants
METHODS = {"ecdsa": C.TransformEcdsaSha256, "rsa": C.TransformRsaSha256}


def rate(seconds, runs, op):
    out = []
    for _ in range(max(1, runs)):
        n = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        while True:
            op()
            n += 1
            t = time.perf_counter()
            if t >= end:
                break
        out.append(n / (t - t0))
    return statistics.median(out)


def timed_core(seconds, runs, prepare, op, batch=64):
    """Rate of op(item) over items from prepare(), only op's time counted."""
    out = []
    for _ in range(max(1, runs)):
        spent = 0.0
        n = 0
        while spent < seconds:
            items = [prepare() for _ in range(batch)]
            t0 = time.perf_counter()
            for it in items:
                op(it)
            spent += time.perf_counter() - t0
            n += len(items)
        out.append(n / spent)
    return statistics.median(out)


def template(data, method):
    root = etree.fromstring(data)
    sig = xmlsec.template.create(root, C.TransformExclC14N, method, ns="ds")
    root.append(sig)
    ref = xmlsec.template.add_reference(sig, C.TransformSha256, uri="")
    xmlsec.template.add_transform(ref, C.TransformEnveloped)
    xmlsec.template.add_transform(ref, C.TransformExclC14N)
    return root, sig


def sign_full(data, key, method):
    root, sig = template(data, method)
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.sign(sig)
    return etree.tostring(root)


def find_sig(root):
    return xmlsec.tree.find_node(root, C.NodeSignature)


def verify_full(data, key):
    root = etree.fromstring(data)
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.verify(find_sig(root))


def verifies(data, key):
    try:
        verify_full(data, key)
        return True
    except xmlsec.Error:
        return False


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    seconds, runs = cfg["seconds"], cfg["runs"]
    res = {
        "versions": {
            "python-xmlsec": xmlsec.__version__,
            "libxmlsec1 (bundled)": ".".join(map(str, xmlsec.get_libxmlsec_version())),
            "libxml2 (bundled)": ".".join(map(str, xmlsec.get_libxml_version())),
            "lxml": lxml.__version__,
            "python": sys.version.split()[0],
        },
        "dsig": {},
        "c14n": {},
        "checks": {},
    }
    keys = {}
    for k in cfg["keys"]:
        keys[k["slug"]] = (
            xmlsec.Key.from_file(k["private"], C.KeyDataFormatPem),
            xmlsec.Key.from_file(k["public"], C.KeyDataFormatPem),
        )
    for d in cfg["documents"]:
        with open(d["path"], "rb") as f:
            data = f.read()
        label = d["label"]
        for k in cfg["keys"]:
            slug = k["slug"]
            priv, pub = keys[slug]
            method = METHODS[slug]
            tag = f"{slug}/{label}"
            signed = sign_full(data, priv, method)
            root, _ = template(data, method)
            with open(d["template"][slug], "wb") as f:
                f.write(etree.tostring(root))
            with open(d["python_signed"][slug], "wb") as f:
                f.write(signed)
            res["checks"][f"python-xmlsec verifies its own signature, {tag}"] = verifies(signed, pub)
            res["checks"][f"python-xmlsec refuses a tampered document, {tag}"] = not verifies(
                signed.replace(b"KZT", b"USD", 1), pub
            )
            with open(d["tereze_signed"][slug], "rb") as f:
                ours = f.read()
            res["checks"][f"python-xmlsec verifies Tereze's signature, {tag}"] = verifies(ours, pub)

            def core_sign_prepare():
                return template(data, method)[1]

            def core_sign(sig):
                ctx = xmlsec.SignatureContext()
                ctx.key = priv
                ctx.sign(sig)

            vroot = etree.fromstring(signed)
            vsig = find_sig(vroot)

            def core_verify():
                ctx = xmlsec.SignatureContext()
                ctx.key = pub
                ctx.verify(vsig)

            res["dsig"][tag] = {
                "sign_full": rate(seconds, runs, lambda: sign_full(data, priv, method)),
                "sign_core": timed_core(seconds, runs, core_sign_prepare, core_sign),
                "verify_full": rate(seconds, runs, lambda: verify_full(signed, pub)),
                "verify_core": rate(seconds, runs, core_verify),
            }
        tree = etree.fromstring(data).getroottree()
        mb = len(data) / 1e6
        res["c14n"][label] = {
            "c14n": mb
            * rate(seconds, runs, lambda: etree.tostring(tree, method="c14n", exclusive=True)),
            "parse_c14n": mb
            * rate(
                seconds,
                runs,
                lambda: etree.tostring(
                    etree.fromstring(data).getroottree(), method="c14n", exclusive=True
                ),
            ),
        }
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
