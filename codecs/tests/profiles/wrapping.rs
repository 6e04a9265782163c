//! The signature-wrapping attacks, as transformations of a validly signed document's text.
//!
//! Classic shapes from McIntosh & Austel, "XML signature element wrapping attacks and
//! countermeasures" (ACM SWS 2005), and Somorovsky et al., "On Breaking SAML: Be Whoever You
//! Want to Be" (USENIX Security 2012): the signed element keeps its bytes (so its digest and the
//! signature still verify) while the element an application would read is replaced by an evil
//! one. Every attack leaves the marker [`EVIL`] in the element a naive reader would consume, so
//! a test can assert that no accepted run hands it out.

/// Text that only the attacker's content holds.
pub const EVIL: &str = "EVIL-0xDEADBEEF";

/// Where the signed element is in a document's text, and what text inside it an attacker
/// would split with a comment.
#[derive(Debug, Clone)]
pub struct Target {
    /// The signed element's start tag up to its name (`<soap:Body`), unique in the document.
    pub open: &'static str,
    /// Its end tag (`</soap:Body>`).
    pub close: &'static str,
    /// The value of its identifier (referenced as `#id`), if it is signed by id.
    pub id: Option<&'static str>,
    /// Text inside it, split by the comment-injection attack.
    pub text: &'static str,
    /// Where a wrapper may be put: the text an inserted element goes right after (an open tag
    /// such as `<soap:Header>`, or the root's end of start tag).
    pub wrapper_after: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// A second element with the signed element's id and evil content, placed before it.
    DuplicateId,
    /// The signed element moved to the end of the document element; an evil copy without the
    /// id stands where it was.
    Moved,
    /// The signed element moved into a `ds:Object` of the signature that references it; an
    /// evil copy without the id stands where it was.
    InObject,
    /// The signed element wrapped in a new element at `wrapper_after` (a SOAP header entry in
    /// WS-Security); an evil copy without the id stands where it was.
    WrappedInHeader,
    /// A second `ds:Signature` with no reference (it covers nothing) inside an evil element.
    SecondSignature,
    /// A comment splitting signed text (`KZ-PHY-<!---->2026`): the digest still matches, and a
    /// reader that takes the first text node gets a truncated value.
    CommentInjection,
}

impl Attack {
    pub const ALL: [Attack; 6] = [
        Attack::DuplicateId,
        Attack::Moved,
        Attack::InObject,
        Attack::WrappedInHeader,
        Attack::SecondSignature,
        Attack::CommentInjection,
    ];

    /// Attacks that move or copy the signed element need it to be signed by id.
    pub fn needs_id(self) -> bool {
        matches!(
            self,
            Attack::DuplicateId | Attack::Moved | Attack::InObject | Attack::WrappedInHeader
        )
    }
}

fn span(doc: &str, t: &Target) -> (usize, usize) {
    let start = doc
        .find(&format!("{} ", t.open))
        .or_else(|| doc.find(&format!("{}>", t.open)))
        .unwrap_or_else(|| panic!("{} in the document", t.open));
    let end = start + doc[start..].find(t.close).expect("end tag") + t.close.len();
    (start, end)
}

/// The element with its content replaced by [`EVIL`] and its id removed (or kept with `keep_id`).
fn evil_copy(outer: &str, t: &Target, keep_id: bool) -> String {
    let tag_end = outer.find('>').expect("start tag ends");
    let mut start_tag = outer[..=tag_end].to_owned();
    if let (Some(id), false) = (t.id, keep_id) {
        for attr in [
            format!(" wsu:Id=\"{id}\""),
            format!(" Id=\"{id}\""),
            format!(" ID=\"{id}\""),
        ] {
            start_tag = start_tag.replace(&attr, "");
        }
    }
    format!(
        "{start_tag}<evil:Payload xmlns:evil=\"urn:evil\">{EVIL}</evil:Payload>{}",
        t.close
    )
}

fn insert_after(doc: &str, anchor: &str, what: &str) -> String {
    let at = doc
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor} in the document"))
        + anchor.len();
    // After a start tag prefix such as `<root` the insertion goes after the tag's `>`.
    let at = if anchor.ends_with('>') {
        at
    } else {
        at + doc[at..].find('>').expect("tag ends") + 1
    };
    format!("{}{what}{}", &doc[..at], &doc[at..])
}

/// The attacked document, or `None` when the attack does not apply to this target.
pub fn apply(doc: &str, t: &Target, attack: Attack) -> Option<String> {
    if attack.needs_id() && t.id.is_none() {
        return None;
    }
    let (start, end) = span(doc, t);
    let outer = &doc[start..end];
    let replaced = |with: &str| format!("{}{with}{}", &doc[..start], &doc[end..]);
    let out = match attack {
        Attack::DuplicateId => replaced(&format!("{}{outer}", evil_copy(outer, t, true))),
        Attack::Moved => {
            let d = replaced(&evil_copy(outer, t, false));
            let root_close = d.rfind("</").expect("root end tag");
            format!("{}{outer}{}", &d[..root_close], &d[root_close..])
        }
        Attack::InObject => {
            let uri = format!("URI=\"#{}\"", t.id.expect("id"));
            let object = format!("<ds:Object>{outer}</ds:Object>");
            if let Some(r) = outer.find(&uri) {
                // The signature is enveloped in the target (SAML, the inspector's): the evil
                // element carries a copy of it, with the original in its Object (XSW of
                // Somorovsky et al.).
                let sig_start = outer[..r]
                    .rfind("<ds:Signature ")
                    .or_else(|| outer[..r].rfind("<ds:Signature>"))
                    .expect("signature start");
                let sig_close = r + outer[r..].find("</ds:Signature>").expect("signature end");
                // The copy drops the signature's own Id, which would otherwise be a
                // duplicate of the original's (a different, easier refusal).
                let copy = &outer[sig_start..sig_close];
                let tag_end = copy.find('>').expect("start tag ends");
                let start_tag: String = copy[..tag_end]
                    .split(' ')
                    .filter(|a| !a.starts_with("Id="))
                    .collect::<Vec<_>>()
                    .join(" ");
                let sig = format!("{start_tag}{}{object}</ds:Signature>", &copy[tag_end..]);
                let evil = evil_copy(outer, t, false);
                let close = evil.len() - t.close.len();
                replaced(&format!("{}{sig}{}", &evil[..close], &evil[close..]))
            } else {
                let d = replaced(&evil_copy(outer, t, false));
                let r = d.find(&uri).expect("the reference to the target");
                let sig_end = r + d[r..].find("</ds:Signature>").expect("signature end");
                format!("{}{object}{}", &d[..sig_end], &d[sig_end..])
            }
        }
        Attack::WrappedInHeader => {
            let d = replaced(&evil_copy(outer, t, false));
            insert_after(
                &d,
                t.wrapper_after,
                &format!("<wrap:Wrapper xmlns:wrap=\"urn:evil:wrapper\">{outer}</wrap:Wrapper>"),
            )
        }
        Attack::SecondSignature => {
            let sig = concat!(
                "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>",
                "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
                "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/>",
                "</ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>"
            );
            insert_after(
                doc,
                t.wrapper_after,
                &format!("<evil:Claim xmlns:evil=\"urn:evil\">{EVIL}{sig}</evil:Claim>"),
            )
        }
        Attack::CommentInjection => {
            let inner = &doc[start..end];
            assert!(inner.contains(t.text), "{} holds {}", t.open, t.text);
            // The signed characters stay as they are (so the digest, which never covers
            // comments, still matches); a reader that takes the first text node gets only the
            // part before the comment (the 2018 SAML comment-injection shape).
            let half = t
                .text
                .char_indices()
                .map(|(i, _)| i)
                .nth(t.text.chars().count() / 2)
                .expect("text of two characters or more");
            let plain = format!("{}<!---->{}", &t.text[..half], &t.text[half..]);
            replaced(&inner.replacen(t.text, &plain, 1))
        }
    };
    Some(out)
}
