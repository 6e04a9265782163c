#!/usr/bin/env python3
"""Reference canonicaliser for the differential tests: libxml2 through lxml.

Reads a JSON list of cases on stdin, each {"file", "exclusive", "with_comments",
"prefixes", "id"}, and writes a JSON list of {"ok": bytes-as-latin1-safe hex} or
{"error": message} in the same order. A subtree (by "id") is canonicalised with lxml's
element form of C14N, which keeps the in-scope namespaces of the apex.
"""
import json
import sys

from lxml import etree


def canonicalize(case):
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
    tree = etree.parse(case["file"], parser)
    target = tree
    if case.get("id"):
        found = tree.xpath("//*[@Id=$v or @ID=$v or @id=$v]", v=case["id"])
        if len(found) != 1:
            raise ValueError("id %r matched %d elements" % (case["id"], len(found)))
        target = found[0]
    prefixes = case.get("prefixes") or None
    return etree.tostring(
        target,
        method="c14n",
        exclusive=bool(case.get("exclusive")),
        with_comments=bool(case.get("with_comments")),
        inclusive_ns_prefixes=prefixes,
    )


def main():
    cases = json.load(sys.stdin)
    results = []
    for case in cases:
        try:
            results.append({"ok": canonicalize(case).hex()})
        except Exception as exc:  # reported per case, compared by the Rust test
            results.append({"error": "%s: %s" % (type(exc).__name__, exc)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
