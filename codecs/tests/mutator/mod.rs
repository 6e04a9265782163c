//! A seeded mutator of XML inputs for the stable-toolchain fuzz harnesses: byte-level
//! mutations and structure-aware ones (elements, attributes, namespace declarations, text,
//! signature values, tricky fragments). Shared by `codecs/tests/mutation.rs` and the node's
//! `tests/stress/fuzz_grpc.rs` (which includes this file by path); it needs only `std`.
#![allow(dead_code)]

/// Mutated inputs are capped so that one case stays cheap; the parser's own 16 MiB limit is
/// tested in the negative suite.
pub const MAX_INPUT: usize = 2 * 1024 * 1024;

/// SplitMix64: tiny, fast and good enough to drive a mutator; the same seed gives the same run.
pub struct Rng(pub u64);

impl Rng {
    pub fn for_case(seed: u64, case: u64) -> Self {
        let mut r = Rng(seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A starting input, named for the reports.
pub struct Seed {
    pub name: String,
    pub bytes: Vec<u8>,
}

// ---------------------------------------------------------------------------------------------
// Mutations

pub const FRAGMENTS: &[&[u8]] = &[
    b"<!DOCTYPE r [<!ENTITY e \"x\">]>",
    b"<!DOCTYPE r SYSTEM \"file:///etc/passwd\">",
    b"<!ENTITY % p \"x\">",
    b"&e;",
    b"&#xD800;",
    b"&#0;",
    b"&#x110000;",
    b"&#99999999999999999999;",
    b"&#x;",
    b"&#;",
    b"&#x41",
    b"&amp;&lt;&gt;&quot;&apos;",
    b"<![CDATA[<&>]]>",
    b"<![CDATA[",
    b"]]>",
    b"<!---->",
    b"<!-- - -- -->",
    b"<!--",
    b"-->",
    b"<?xml version=\"1.0\"?>",
    b"<?xml version=\"1.1\" encoding=\"ISO-8859-1\"?>",
    b"<?xml-stylesheet href=\"x\"?>",
    b"<?pi?>",
    b"<?",
    b"\xEF\xBB\xBF",
    b"\xC3\x28",
    b"\xED\xA0\x80",
    b"\xF4\x90\x80\x80",
    b"\xFF\xFE",
    b"\xC0\xBC",
    b"\x00",
    b"\x01",
    b"\r\n\r",
    b"\t",
    b"<a:b xmlns:a=\"\"/>",
    b"<x xmlns=\"\"/>",
    b"<x xmlns=\"urn:x\"><y xmlns=\"\"/></x>",
    b"<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/>",
    b"<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo/></ds:Signature>",
    b"<env:Header xmlns:env=\"urn:tereze:envelope\"/>",
    b"<xml:x/>",
    b"<xmlns:x/>",
    b"<p:x/>",
    b"<x Id=\"p1\"/>",
    b"<1x/>",
    b"<x/><x/>",
    "Қазақ".as_bytes(),
    "\u{FEFF}".as_bytes(),
    "\u{FFFE}".as_bytes(),
    "\u{2028}".as_bytes(),
    b"</",
    b"<",
    b">",
    b"&",
    b"\"",
    b"'",
    b"/>",
];

pub const ATTRIBUTES: &[&[u8]] = &[
    b" xmlns=\"urn:x\"",
    b" xmlns=\"\"",
    b" xmlns:env=\"urn:evil\"",
    b" xmlns:env=\"urn:tereze:envelope\"",
    b" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"",
    b" xmlns:wsa=\"urn:other\"",
    b" xmlns:xml=\"http://www.w3.org/XML/1998/namespace\"",
    b" xmlns:xml=\"urn:wrong\"",
    b" xmlns:xmlns=\"urn:x\"",
    b" xmlns:p=\"\"",
    b" xmlns:p=\"urn:p\" p:a=\"1\"",
    b" xmlns:p=\"urn:b\" xmlns:q=\"urn:b\" p:a=\"1\" q:a=\"2\"",
    b" xml:lang=\"kk\"",
    b" xml:space=\"preserve\"",
    b" xml:base=\"http://example.org/\"",
    b" Id=\"dup\"",
    b" ID=\"dup\"",
    b" id=\"p1\"",
    b" wsu:Id=\"dup\" xmlns:wsu=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\"",
    b" a=\"<\"",
    b" a='&#x9;&#xA;&#xD;'",
    b" a=\"&#x20;x\"",
    b" a=\"\t\n\r\"",
    b" a=\"&amp;&quot;&apos;\"",
    b" version=\"2.0\"",
    b" version=\"1.99999\"",
    b" version=\"1\"",
    b" p:a=\"1\"",
    b" a=\"1\" a=\"2\"",
    b" a",
    b" a=",
    b" a=\"",
    b" =\"x\"",
    b" Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"",
    b" URI=\"#dup\"",
];

pub const VALUES: &[&str] = &[
    "",
    " ",
    "#",
    "#dup",
    "#p1",
    "#xpointer(/)",
    "http://example.org/x",
    "urn:uuid:00000000-0000-0000-0000-000000000000",
    "1.0",
    "0.0",
    "1.",
    "99999.0",
    "2.0",
    "KZ",
    "kz",
    "K",
    "ZZ",
    "RU",
    "R.CC.01.001",
    "R.CC.1.001",
    "P.CC.01",
    "1.0.0",
    "1.0.0.0",
    "&amp;",
    "&#xD800;",
    "&#0;",
    "&lt;&#x9;",
    "http://www.w3.org/2000/09/xmldsig#sha1",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmlenc#sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
    "http://www.w3.org/2006/12/xml-c14n11",
    "http://www.w3.org/TR/1999/REC-xpath-19991116",
    "http://www.w3.org/TR/1999/REC-xslt-19991116",
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2000/09/xmldsig#base64",
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256",
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256",
];

pub const TEXTS: &[&str] = &[
    "",
    " ",
    "\n",
    "urn:uuid:6f3c9a0e-58b2-4d1e-9c1a-2f0b7d4e8a11",
    "urn:uuid:not-a-uuid",
    "urn:uuid:",
    "6f3c9a0e-58b2-4d1e-9c1a-2f0b7d4e8a11",
    "{6f3c9a0e-58b2-4d1e-9c1a-2f0b7d4e8a11}",
    "2026-11-24T09:30:00+05:00",
    "2026-11-24T09:30:00Z",
    "2026-11-24",
    "2026-13-45T25:61:00Z",
    "1970-01-01T00:00:00Z",
    "-262144-01-01T00:00:00Z",
    "9999-12-31T23:59:59+14:00",
    "2026-11-24T09:30:00+99:00",
    "P.CC.01",
    "P.CC.01.MSG.001",
    "P.ZZ.99.TRN.999",
    "P.CC.01.MSG.1",
    "P..",
    "request",
    "receipt",
    "REQUEST",
    "KZ120440789014",
    "KZ",
    "Kz1",
    "-1",
    "0",
    "1e400",
    "0.000000000000000000000000001",
    "79228162514264337593543950336",
    "NaN",
    "AAAA",
    "====",
    "!!!",
    "QUJD\nREVG",
    "&amp;&lt;",
    "]]&gt;",
    "&#xD;",
    "Қазақстан",
    "\r\n",
];

/// Start tags: (offset of `<`, offset just past the name, offset of the closing `>`).
fn start_tags(b: &[u8]) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'<' && (b[i + 1].is_ascii_alphabetic() || b[i + 1] == b'_' || b[i + 1] >= 0x80)
        {
            let name_end = b[i + 1..]
                .iter()
                .position(|c| c.is_ascii_whitespace() || matches!(c, b'/' | b'>'))
                .map_or(b.len(), |p| i + 1 + p);
            if let Some(gt) = b[name_end..].iter().position(|&c| c == b'>') {
                out.push((i, name_end, name_end + gt));
                i = name_end + gt;
            }
        }
        i += 1;
    }
    out
}

/// Where a fragment can go between markup: before a `<` or after a `>`.
fn boundaries(b: &[u8]) -> Vec<usize> {
    b.iter()
        .enumerate()
        .filter_map(|(i, &c)| match c {
            b'<' => Some(i),
            b'>' => Some(i + 1),
            _ => None,
        })
        .collect()
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() || needle.is_empty() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The byte range of a whole element starting at a start tag (to the first matching-name end
/// tag, which is wrong for nested namesakes, and that is fine here).
fn element_range(b: &[u8], tag: (usize, usize, usize)) -> (usize, usize) {
    let (lt, name_end, gt) = tag;
    if gt > 0 && b[gt - 1] == b'/' {
        return (lt, gt + 1);
    }
    let mut close = b"</".to_vec();
    close.extend_from_slice(&b[lt + 1..name_end]);
    close.push(b'>');
    match find(b, &close, gt) {
        Some(p) => (lt, p + close.len()),
        None => (lt, gt + 1),
    }
}

/// Quoted attribute values: (offset of the first byte of the value, offset of the closing quote).
fn attribute_values(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'=' && (b[i + 1] == b'"' || b[i + 1] == b'\'') {
            let q = b[i + 1];
            if let Some(p) = b[i + 2..].iter().position(|&c| c == q || c == b'<') {
                out.push((i + 2, i + 2 + p));
                i += 2 + p;
            }
        }
        i += 1;
    }
    out
}

/// Text between a `>` and the next `<`, non-empty.
fn texts(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'>' => start = Some(i + 1),
            b'<' => {
                if let Some(s) = start.take() {
                    if i > s {
                        out.push((s, i));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Declared prefixes (`xmlns:p=`).
fn prefixes(b: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut from = 0;
    while let Some(p) = find(b, b"xmlns:", from) {
        let start = p + 6;
        let end = b[start..]
            .iter()
            .position(|&c| c == b'=' || c.is_ascii_whitespace())
            .map_or(b.len(), |e| start + e);
        let name = b[start..end].to_vec();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        from = end;
    }
    out
}

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

/// One mutation of `b`, in place; the name says which (for the summary).
pub fn mutate(rng: &mut Rng, b: &mut Vec<u8>, seeds: &[Seed]) -> &'static str {
    let random_pos = |rng: &mut Rng, b: &Vec<u8>| rng.below(b.len() + 1);
    match rng.below(20) {
        0 => {
            if !b.is_empty() {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            "bit-flip"
        }
        1 => {
            if !b.is_empty() {
                let i = rng.below(b.len());
                b[i] = *rng.pick(&[
                    0, 0x7F, 0x80, 0xC0, 0xFF, b'<', b'>', b'&', b'"', b'\'', b'/', b'=', b':',
                    b' ', b'\r', b'#', b';', b'x',
                ]);
            }
            "set-byte"
        }
        2 => {
            let n = 1 + rng.below(8);
            let at = random_pos(rng, b);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(at..at, bytes);
            "insert-bytes"
        }
        3 => {
            if !b.is_empty() {
                let at = rng.below(b.len());
                let n = 1 + rng.below((b.len() - at).min(64));
                b.drain(at..at + n);
            }
            "delete-bytes"
        }
        4 => {
            if !b.is_empty() {
                let at = rng.below(b.len());
                let n = 1 + rng.below((b.len() - at).min(256));
                let chunk = b[at..at + n].to_vec();
                let to = random_pos(rng, b);
                b.splice(to..to, chunk);
            }
            "duplicate-bytes"
        }
        5 => {
            let other = &rng.pick(seeds).bytes;
            if !other.is_empty() {
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(512));
                let at = random_pos(rng, b);
                b.splice(at..at, other[from..from + n].iter().copied());
            }
            "splice"
        }
        6 => {
            let other = &rng.pick(seeds).bytes;
            let at = random_pos(rng, b);
            let from = rng.below(other.len() + 1);
            b.truncate(at);
            b.extend_from_slice(&other[from..]);
            "crossover"
        }
        7 => {
            let at = random_pos(rng, b);
            b.truncate(at);
            "truncate"
        }
        8 | 9 => {
            let tags = start_tags(b);
            if tags.is_empty() {
                return "element-none";
            }
            let (from, to) = element_range(b, *rng.pick(&tags));
            match rng.below(4) {
                0 => {
                    b.drain(from..to);
                    "element-delete"
                }
                1 => {
                    let chunk = b[from..to].to_vec();
                    let times = *rng.pick(&[1, 1, 2, 10, 100]);
                    for _ in 0..times {
                        if b.len() + chunk.len() > MAX_INPUT {
                            break;
                        }
                        b.splice(to..to, chunk.iter().copied());
                    }
                    "element-duplicate"
                }
                2 => {
                    let chunk: Vec<u8> = b.drain(from..to).collect();
                    let places = boundaries(b);
                    let at = if places.is_empty() {
                        0
                    } else {
                        *rng.pick(&places)
                    };
                    b.splice(at..at, chunk);
                    "element-move"
                }
                _ => {
                    // Wrap the element in a copy of another start tag and its end tag.
                    let (lt, name_end, gt) = *rng.pick(&tags);
                    let open = b[lt..=gt].to_vec();
                    if open.ends_with(b"/>") {
                        return "element-wrap-none";
                    }
                    let mut close = b"</".to_vec();
                    close.extend_from_slice(&b[lt + 1..name_end]);
                    close.push(b'>');
                    b.splice(to..to, close);
                    b.splice(from..from, open);
                    "element-wrap"
                }
            }
        }
        10 | 11 => {
            let places = boundaries(b);
            let at = if places.is_empty() || rng.chance(8) {
                random_pos(rng, b)
            } else {
                *rng.pick(&places)
            };
            b.splice(at..at, rng.pick(FRAGMENTS).iter().copied());
            "fragment"
        }
        12 | 13 => {
            let tags = start_tags(b);
            if tags.is_empty() {
                return "attribute-none";
            }
            let (_, name_end, gt) = *rng.pick(&tags);
            let at = if rng.chance(2) {
                name_end
            } else if gt > 0 && b[gt - 1] == b'/' {
                gt - 1
            } else {
                gt
            };
            let names = prefixes(b);
            let attr: Vec<u8> = if !names.is_empty() && rng.chance(3) {
                // Redeclare a prefix already in use: to another URI, or superfluously.
                let p = rng.pick(&names).clone();
                const URIS: &[&[u8]] = &[
                    b"urn:redeclared",
                    b"urn:tereze:envelope",
                    b"http://www.w3.org/2000/09/xmldsig#",
                    b"http://www.w3.org/2005/08/addressing",
                    b"",
                ];
                let uri = rng.pick(URIS);
                [&b" xmlns:"[..], &p, b"=\"", uri, b"\""].concat()
            } else {
                rng.pick(ATTRIBUTES).to_vec()
            };
            b.splice(at..at, attr);
            "attribute-insert"
        }
        14 => {
            let values = attribute_values(b);
            if values.is_empty() {
                return "value-none";
            }
            let (from, to) = *rng.pick(&values);
            b.splice(from..to, rng.pick(VALUES).bytes());
            "value-replace"
        }
        15 => {
            let spans = texts(b);
            if spans.is_empty() {
                return "text-none";
            }
            let (from, to) = *rng.pick(&spans);
            if rng.chance(6) {
                let n = *rng.pick(&[1000, 10_000, 100_000]);
                b.splice(from..to, std::iter::repeat_n(b'A', n));
            } else {
                b.splice(from..to, rng.pick(TEXTS).bytes());
            }
            "text-replace"
        }
        16 => {
            // A signature or digest value, a certificate: one base64 character changed.
            let marks: &[&[u8]] = &[b"DigestValue>", b"SignatureValue>", b"X509Certificate>"];
            let mark = rng.pick(marks);
            let Some(p) = find(b, mark, 0) else {
                return "signed-value-none";
            };
            let start = p + mark.len();
            let end = b[start..]
                .iter()
                .position(|&c| c == b'<')
                .map_or(b.len(), |e| start + e);
            if end > start {
                let i = start + rng.below(end - start);
                b[i] = *rng.pick(BASE64);
            }
            "signed-value"
        }
        17 => {
            let depth = *rng.pick(&[50, 127, 128, 129, 1000, 20_000]);
            let mut nest = b"<d>".repeat(depth);
            if rng.chance(2) {
                nest.extend_from_slice(&b"</d>".repeat(depth));
            }
            let places = boundaries(b);
            let at = if places.is_empty() {
                0
            } else {
                *rng.pick(&places)
            };
            b.splice(at..at, nest);
            "deep-nesting"
        }
        18 => {
            let tags = start_tags(b);
            if tags.is_empty() {
                return "big-attribute-none";
            }
            let (_, name_end, _) = *rng.pick(&tags);
            let extra: Vec<u8> = match rng.below(3) {
                0 => {
                    let n = *rng.pick(&[1000, 65_536, 500_000]);
                    [&b" big=\""[..], &b"x".repeat(n), b"\""].concat()
                }
                1 => {
                    let n = *rng.pick(&[127, 128, 129, 1000]);
                    (0..n)
                        .flat_map(|i| format!(" a{i}=\"\"").into_bytes())
                        .collect()
                }
                _ => {
                    let n = *rng.pick(&[256, 257, 5000]);
                    [&b" "[..], &b"n".repeat(n), b"=\"1\""].concat()
                }
            };
            b.splice(name_end..name_end, extra);
            "big-attribute"
        }
        _ => {
            // Swap two tag-aligned chunks.
            let places = boundaries(b);
            if places.len() < 4 {
                return "swap-none";
            }
            let mut cut: Vec<usize> = (0..4).map(|_| *rng.pick(&places)).collect();
            cut.sort_unstable();
            let (a, bb, c, d) = (cut[0], cut[1], cut[2], cut[3]);
            let mut out = b[..a].to_vec();
            out.extend_from_slice(&b[c..d]);
            out.extend_from_slice(&b[bb..c]);
            out.extend_from_slice(&b[a..bb]);
            out.extend_from_slice(&b[d..]);
            *b = out;
            "swap"
        }
    }
}

/// One to four mutations of `bytes`, in place; their names.
pub fn mutate_some(rng: &mut Rng, bytes: &mut Vec<u8>, seeds: &[Seed]) -> Vec<&'static str> {
    let n = *rng.pick(&[1, 1, 1, 2, 2, 3, 4]);
    let ops = (0..n).map(|_| mutate(rng, bytes, seeds)).collect();
    bytes.truncate(MAX_INPUT);
    ops
}
