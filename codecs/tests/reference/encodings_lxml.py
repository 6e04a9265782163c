#!/usr/bin/env python3
"""Reference for the encodings differential test: Python's codecs make the bytes, libxml2
(through lxml) reads them.

Reads a JSON list of cases on stdin, each {"text", "codec", "errors", "bom", "prefix_hex",
"suffix_hex", "tail"}: the document's text is encoded with Python's codec `codec` (an encoder
independent of the one under test), `errors` "strict" or "xmlcharrefreplace" (characters the
encoding cannot carry become character references, as a windows-1251 system writes them), a
byte order mark `bom` (hex) put first, and raw bytes `prefix_hex`/`suffix_hex` around the
encoded text (for bytes no text encodes to), then `tail` in the same codec. Writes a JSON list of {"bytes": hex, "ok": hex of
lxml's C14N with comments} or {"bytes": hex, "error": message}, in the same order.
"""
import json
import sys

from lxml import etree


def encode(case):
    errors = case.get("errors") or "strict"
    return (
        bytes.fromhex(case.get("bom") or "")
        + bytes.fromhex(case.get("prefix_hex") or "")
        + case["text"].encode(case["codec"], errors)
        + bytes.fromhex(case.get("suffix_hex") or "")
        + (case.get("tail") or "").encode(case["codec"], errors)
    )


def main():
    cases = json.load(sys.stdin)
    results = []
    for case in cases:
        data = encode(case)
        result = {"bytes": data.hex()}
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            root = etree.fromstring(data, parser)
            result["ok"] = etree.tostring(
                root.getroottree(), method="c14n", with_comments=True
            ).hex()
        except Exception as exc:  # reported per case, compared by the Rust test
            result["error"] = str(exc)
        results.append(result)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
