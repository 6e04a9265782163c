//! The documents every XML measurement uses: invoice-like XML of about 1 KB, 4 KB and 64 KB,
//! with two namespaces, attributes, Cyrillic text and repeated line items, the same bytes for
//! Tereze, python-xmlsec, lxml and the `xmlsec1` command.

/// One test document.
#[derive(Debug, Clone)]
pub struct TestDocument {
    /// "1 KB", "4 KB", "64 KB".
    pub label: &'static str,
    pub bytes: Vec<u8>,
}

/// The sizes the suite measures: label and target size in bytes.
pub const SIZES: [(&str, usize); 3] = [("1 KB", 1024), ("4 KB", 4096), ("64 KB", 65536)];

fn item(i: usize) -> String {
    format!(
        "  <inv:Line no=\"{i}\" unit=\"KGM\">\n    <inv:Code>10019{i:05}</inv:Code>\n    \
         <inv:Name xml:lang=\"ru\">Пшеница мягкая, партия {i}</inv:Name>\n    \
         <inv:Qty>{}.500</inv:Qty>\n    <cac:Amount currency=\"KZT\">{}.00</cac:Amount>\n  </inv:Line>\n",
        1000 + i * 7,
        25_000 + i * 311
    )
}

/// An invoice of at least `target - 200` and at most `target` bytes (for targets of 512 and
/// more): a header, then line items while they fit, then padding in a note.
pub fn invoice(target: usize) -> Vec<u8> {
    let head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
        <inv:Invoice xmlns:inv=\"urn:example:invoice:1\" xmlns:cac=\"urn:example:common:1\" Id=\"INV-2026-000123\">\n  \
        <cac:Seller country=\"KZ\" bin=\"123456789012\">ТОО Астык Экспорт</cac:Seller>\n  \
        <cac:Buyer country=\"RU\" inn=\"7701234567\">ООО Зерно</cac:Buyer>\n  \
        <inv:Issued>2026-12-03</inv:Issued>\n";
    let tail = "</inv:Invoice>\n";
    let mut out = String::from(head);
    let mut i = 1;
    loop {
        let next = item(i);
        if out.len() + next.len() + tail.len() + 40 > target {
            break;
        }
        out.push_str(&next);
        i += 1;
    }
    let room = target.saturating_sub(out.len() + tail.len() + 30);
    if room > 0 {
        out.push_str("  <inv:Note>");
        out.push_str(&"x".repeat(room));
        out.push_str("</inv:Note>\n");
    }
    out.push_str(tail);
    out.into_bytes()
}

/// The three test documents.
pub fn all() -> Vec<TestDocument> {
    SIZES
        .iter()
        .map(|(label, target)| TestDocument {
            label,
            bytes: invoice(*target),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_have_their_sizes_and_parse() {
        for d in all() {
            let target = SIZES.iter().find(|(l, _)| *l == d.label).map(|s| s.1);
            let target = target.expect("size listed");
            assert!(
                d.bytes.len() <= target,
                "{} is {} bytes",
                d.label,
                d.bytes.len()
            );
            assert!(
                d.bytes.len() + 200 >= target,
                "{} is {} bytes",
                d.label,
                d.bytes.len()
            );
            tereze_codecs::xml::parse(&d.bytes).expect("parses");
        }
    }
}
