//! Which encoding a document's bytes are in, and their text as UTF-8: the parser's first step.
//!
//! Detection follows XML 1.0 §4.3.3 and Appendix F: a byte order mark first (UTF-8, UTF-16
//! LE/BE), then the XML declaration's `encoding`; without either the document must be UTF-8.
//! Guarantees: the declared encoding matches the bytes (a BOM of another encoding, bytes that
//! are malformed in the declared encoding, a non-UTF-8 document without a declaration are each
//! refused, naming the declared encoding, what was found and the byte offset); decoding never
//! substitutes U+FFFD; UTF-8 input is borrowed, not copied; anything outside [`SUPPORTED`]
//! (UTF-32, EBCDIC, UTF-7, …) is refused by name. Why `encoding_rs` and what ISO-8859-1 means
//! here: docs/decisions/0017-encodings-through-encoding-rs.md.

use std::borrow::Cow;

use super::tree::{position_of, Position};

/// The encodings the parser reads, as the error for any other names them.
pub const SUPPORTED: &str =
    "UTF-8, UTF-16 (with a byte order mark), windows-1251, KOI8-R, ISO-8859-1, ISO-8859-5, US-ASCII";

/// An encoding the parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    Windows1251,
    Koi8R,
    /// ISO-8859-1 as IANA and ISO define it: every byte is the code point of its value (so
    /// 0x80–0x9F are the C1 controls), not WHATWG's windows-1252 under that label.
    Iso8859_1,
    Iso8859_5,
    UsAscii,
}

impl Encoding {
    /// The IANA name.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
            Encoding::Windows1251 => "windows-1251",
            Encoding::Koi8R => "KOI8-R",
            Encoding::Iso8859_1 => "ISO-8859-1",
            Encoding::Iso8859_5 => "ISO-8859-5",
            Encoding::UsAscii => "US-ASCII",
        }
    }
}

/// What a declared name means: the IANA names and registered aliases of the supported
/// encodings (case-insensitive, as XML 1.0 §4.3.3 says encoding names are). `UTF-16` alone
/// says nothing of the byte order, which the BOM gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Is(Encoding),
    Utf16,
}

fn label(name: &str) -> Option<Label> {
    let n = name.to_ascii_lowercase();
    let e = match n.as_str() {
        "utf-8" | "utf8" | "csutf8" => Encoding::Utf8,
        "utf-16" | "csutf16" => return Some(Label::Utf16),
        "utf-16le" | "csutf16le" => Encoding::Utf16Le,
        "utf-16be" | "csutf16be" => Encoding::Utf16Be,
        "windows-1251" | "cswindows1251" | "cp1251" | "x-cp1251" => Encoding::Windows1251,
        "koi8-r" | "cskoi8r" => Encoding::Koi8R,
        "iso-8859-1" | "iso_8859-1" | "iso_8859-1:1987" | "iso-ir-100" | "latin1" | "l1"
        | "ibm819" | "cp819" | "csisolatin1" => Encoding::Iso8859_1,
        "iso-8859-5" | "iso_8859-5" | "iso_8859-5:1988" | "iso-ir-144" | "cyrillic"
        | "csisolatincyrillic" => Encoding::Iso8859_5,
        "us-ascii" | "ascii" | "us" | "ansi_x3.4-1968" | "ansi_x3.4-1986" | "iso-ir-6"
        | "iso_646.irv:1991" | "iso646-us" | "ibm367" | "cp367" | "csascii" => Encoding::UsAscii,
        _ => return None,
    };
    Some(Label::Is(e))
}

/// Why the bytes cannot be read as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// The declaration names an encoding outside [`SUPPORTED`].
    #[error("encoding {0:?} is not supported (supported: {SUPPORTED})")]
    Unsupported(String),
    /// The first bytes show an encoding outside [`SUPPORTED`] (UTF-32, EBCDIC).
    #[error("the document is in {0}, which is not supported (supported: {SUPPORTED})")]
    UnsupportedDetected(&'static str),
    /// UTF-16 recognised from `<` without a byte order mark.
    #[error("the document is UTF-16{0} without a byte order mark (its first bytes are '<' in UTF-16{0}); XML 1.0 §4.3.3 requires UTF-16 documents to begin with one")]
    Utf16WithoutBom(&'static str),
    /// The declared encoding contradicts the byte order mark or how the document was handed
    /// over.
    #[error(
        "declared encoding {declared:?} does not match the bytes: {found} (byte offset {offset})"
    )]
    Mismatch {
        declared: String,
        found: String,
        offset: usize,
    },
    /// Bytes that are not a character in the encoding in force.
    #[error("{by}: {found} at byte offset {offset}: not valid {encoding}")]
    Malformed {
        /// What put the encoding in force.
        by: InForce,
        encoding: &'static str,
        /// The offending bytes, e.g. `byte 0xCF`.
        found: String,
        offset: usize,
    },
    /// The UTF-8 text is over [`super::Limits::max_bytes`] (the input was not).
    #[error("decoded from {encoding} the document is {size} bytes of UTF-8, over the limit of {limit} bytes")]
    TooLarge {
        encoding: &'static str,
        size: usize,
        limit: usize,
    },
}

/// What put an encoding in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InForce {
    /// The XML declaration's `encoding`, as written.
    Declared(String),
    /// No declaration (and no BOM but UTF-8's): UTF-8 is required.
    Default,
    /// A UTF-16 byte order mark (LE or BE).
    ByteOrderMark(&'static str),
}

impl std::fmt::Display for InForce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InForce::Declared(d) => write!(f, "declared encoding {d:?}"),
            InForce::Default => f.write_str("no encoding declaration, so UTF-8 (XML 1.0 §4.3.3)"),
            InForce::ByteOrderMark(e) => write!(f, "a {e} byte order mark"),
        }
    }
}

/// An encoding failure and where it is in the decoded text (the text before the offending
/// bytes: line and column count characters, whatever the encoding).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: EncodingError,
    pub(crate) position: Position,
}

const AT_START: Position = Position { line: 1, column: 1 };

fn at_start(error: EncodingError) -> Failure {
    Failure {
        error,
        position: AT_START,
    }
}

/// The document's text and what it was decoded from.
pub(crate) struct Decoded<'a> {
    pub(crate) text: Cow<'a, str>,
    /// The `encoding` of the XML declaration, as written, if any.
    pub(crate) declared: Option<String>,
}

/// How the bytes reached the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handed {
    /// As bytes: they must be in the encoding the BOM or declaration names.
    Bytes,
    /// As characters (a JSON string, say), whose bytes here are UTF-8 whatever the document
    /// declares: a declaration of another encoding is refused, since the bytes it describes
    /// were decoded by someone else and are not these.
    Text,
}

/// Decodes `input` to UTF-8 under the rules in this module's header. `max_bytes` bounds the
/// decoded text (the caller has bounded the input).
pub(crate) fn decode(
    input: &[u8],
    max_bytes: usize,
    handed: Handed,
) -> Result<Decoded<'_>, Failure> {
    if handed == Handed::Text {
        let rest = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
        return decode_8bit(rest, input.len() - rest.len(), None, handed);
    }
    let (bom, rest) = byte_order_mark(input)?;
    let skipped = input.len() - rest.len();
    match bom {
        Some(e @ (Encoding::Utf16Le | Encoding::Utf16Be)) => {
            let text = decode_with(e, rest, skipped, || InForce::ByteOrderMark(e.name()))?;
            let declared = declared_encoding(text.as_bytes());
            if let Some(d) = &declared {
                let fits = match label(d) {
                    Some(Label::Utf16) => true,
                    Some(Label::Is(l)) => l == e,
                    None => false,
                };
                if !fits {
                    return Err(at_start(EncodingError::Mismatch {
                        declared: d.clone(),
                        found: format!("they begin with a {} byte order mark", e.name()),
                        offset: 0,
                    }));
                }
            }
            bounded(e, text, max_bytes).map(|text| Decoded { text, declared })
        }
        bom => {
            let decoded = decode_8bit(rest, skipped, bom, handed)?;
            let encoding =
                decoded
                    .declared
                    .as_deref()
                    .and_then(label)
                    .map_or(Encoding::Utf8, |l| match l {
                        Label::Is(e) => e,
                        Label::Utf16 => Encoding::Utf8,
                    });
            let Decoded { text, declared } = decoded;
            bounded(encoding, text, max_bytes).map(|text| Decoded { text, declared })
        }
    }
}

fn bounded(encoding: Encoding, text: Cow<'_, str>, limit: usize) -> Result<Cow<'_, str>, Failure> {
    if text.len() > limit {
        return Err(at_start(EncodingError::TooLarge {
            encoding: encoding.name(),
            size: text.len(),
            limit,
        }));
    }
    Ok(text)
}

/// The byte order mark, and the bytes after it; refuses the encodings recognised only to be
/// named (UTF-32, EBCDIC) and UTF-16 without a BOM (Appendix F's table).
fn byte_order_mark(input: &[u8]) -> Result<(Option<Encoding>, &[u8]), Failure> {
    let unsupported = |what| Err(at_start(EncodingError::UnsupportedDetected(what)));
    // UTF-32 LE's mark begins with UTF-16 LE's: look at four bytes first.
    match input {
        [0x00, 0x00, 0xFE, 0xFF, ..] => unsupported("UTF-32BE (byte order mark 00 00 FE FF)"),
        [0xFF, 0xFE, 0x00, 0x00, ..] => unsupported("UTF-32LE (byte order mark FF FE 00 00)"),
        [0x00, 0x00, 0x00, 0x3C, ..] => {
            unsupported("UTF-32BE (its first bytes are '<' in UTF-32BE)")
        }
        [0x3C, 0x00, 0x00, 0x00, ..] => {
            unsupported("UTF-32LE (its first bytes are '<' in UTF-32LE)")
        }
        [0x4C, 0x6F, 0xA7, 0x94, ..] => {
            unsupported("EBCDIC (its first bytes 4C 6F A7 94 are '<?xm' in EBCDIC)")
        }
        [0xEF, 0xBB, 0xBF, rest @ ..] => Ok((Some(Encoding::Utf8), rest)),
        [0xFE, 0xFF, rest @ ..] => Ok((Some(Encoding::Utf16Be), rest)),
        [0xFF, 0xFE, rest @ ..] => Ok((Some(Encoding::Utf16Le), rest)),
        // '<' then NUL (or NUL then '<'): NUL is never a character of XML, so this can only be
        // UTF-16 that lost its mark.
        [0x3C, 0x00, ..] => Err(at_start(EncodingError::Utf16WithoutBom("LE"))),
        [0x00, 0x3C, ..] => Err(at_start(EncodingError::Utf16WithoutBom("BE"))),
        _ => Ok((None, input)),
    }
}

/// Decodes a document in an ASCII-compatible encoding: the one its declaration names, UTF-8
/// without one; `bom` is `Some(Utf8)` after a UTF-8 mark.
fn decode_8bit(
    rest: &[u8],
    skipped: usize,
    bom: Option<Encoding>,
    handed: Handed,
) -> Result<Decoded<'_>, Failure> {
    let declared = declared_encoding(rest);
    let named = declared.as_deref().map(|d| (d, label(d)));
    let encoding = match named {
        None => Encoding::Utf8,
        Some((d, None)) => return Err(at_start(EncodingError::Unsupported(d.to_owned()))),
        Some((_, Some(Label::Is(Encoding::Utf8)))) => Encoding::Utf8,
        Some((d, Some(l))) => {
            let found = if handed == Handed::Text {
                Some("the document was handed over as text (characters, here in UTF-8), not as the bytes its declaration describes".to_owned())
            } else if bom == Some(Encoding::Utf8) {
                Some("they begin with a UTF-8 byte order mark".to_owned())
            } else if matches!(
                l,
                Label::Utf16 | Label::Is(Encoding::Utf16Le | Encoding::Utf16Be)
            ) {
                Some("there is no UTF-16 byte order mark and the XML declaration is in an 8-bit encoding".to_owned())
            } else {
                None
            };
            if let Some(found) = found {
                return Err(at_start(EncodingError::Mismatch {
                    declared: d.to_owned(),
                    found,
                    offset: 0,
                }));
            }
            match l {
                Label::Is(e) => e,
                Label::Utf16 => Encoding::Utf8,
            }
        }
    };
    let text = decode_with(encoding, rest, skipped, || {
        declared.clone().map_or(InForce::Default, InForce::Declared)
    })?;
    Ok(Decoded { text, declared })
}

/// Decodes `bytes` (which followed `skipped` bytes of BOM) in `encoding`, refusing malformed
/// sequences.
fn decode_with(
    encoding: Encoding,
    bytes: &[u8],
    skipped: usize,
    by: impl Fn() -> InForce,
) -> Result<Cow<'_, str>, Failure> {
    let malformed = |prefix: &str, at: usize, len: usize| {
        let len = len.max(1).min(bytes.len() - at).min(4);
        let found = bytes[at..at + len]
            .iter()
            .map(|b| format!("0x{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ");
        let found = if len == 1 {
            format!("byte {found}")
        } else {
            format!("bytes {found}")
        };
        Failure {
            position: position_of(prefix, prefix.len()),
            error: EncodingError::Malformed {
                by: by(),
                encoding: encoding.name(),
                found,
                offset: at + skipped,
            },
        }
    };
    match encoding {
        Encoding::Utf8 => match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Cow::Borrowed(text)),
            Err(e) => {
                let at = e.valid_up_to();
                let prefix = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
                Err(malformed(
                    prefix,
                    at,
                    e.error_len().unwrap_or(bytes.len() - at),
                ))
            }
        },
        Encoding::UsAscii => match bytes.iter().position(|b| !b.is_ascii()) {
            None => Ok(Cow::Borrowed(
                std::str::from_utf8(bytes).unwrap_or_default(),
            )),
            Some(at) => {
                let prefix = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
                Err(malformed(prefix, at, 1))
            }
        },
        Encoding::Iso8859_1 => Ok(encoding_rs::mem::decode_latin1(bytes)),
        // Microsoft's code page 1251 (and iconv) leave 0x98 unassigned; WHATWG decodes it as
        // U+0098. A byte the encoding does not define is refused, as libxml2 refuses it.
        Encoding::Windows1251 if bytes.contains(&0x98) => {
            let at = bytes.iter().position(|b| *b == 0x98).unwrap_or_default();
            let prefix = encoding_rs::WINDOWS_1251
                .decode_without_bom_handling(&bytes[..at])
                .0;
            Err(malformed(&prefix, at, 1))
        }
        _ => {
            let with = match encoding {
                Encoding::Windows1251 => encoding_rs::WINDOWS_1251,
                Encoding::Koi8R => encoding_rs::KOI8_R,
                Encoding::Iso8859_5 => encoding_rs::ISO_8859_5,
                Encoding::Utf16Le => encoding_rs::UTF_16LE,
                _ => encoding_rs::UTF_16BE,
            };
            let mut decoder = with.new_decoder_without_bom_handling();
            let room = decoder
                .max_utf8_buffer_length_without_replacement(bytes.len())
                .unwrap_or(usize::MAX);
            let mut text = String::with_capacity(room.min(bytes.len().saturating_mul(3)));
            let (result, read) =
                decoder.decode_to_string_without_replacement(bytes, &mut text, true);
            match result {
                encoding_rs::DecoderResult::InputEmpty => Ok(Cow::Owned(text)),
                encoding_rs::DecoderResult::Malformed(bad, after) => {
                    let at = read - usize::from(bad) - usize::from(after);
                    Err(malformed(&text, at, usize::from(bad)))
                }
                // The buffer was sized for the worst case; were it short, the bytes after
                // `read` would be unread: refused rather than dropped.
                encoding_rs::DecoderResult::OutputFull => Err(malformed(&text, read, 1)),
            }
        }
    }
}

/// The `encoding` pseudo-attribute of an XML declaration at the start of `bytes` (ASCII in
/// every encoding read here), as written. A declaration this cannot read is left to the
/// tokenizer, which refuses it, and the parser then checks the two agree.
pub(crate) fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let after = bytes.strip_prefix(b"<?xml")?;
    if !after.first().is_some_and(|b| is_space(*b)) {
        return None;
    }
    let end = after.windows(2).position(|w| w == b"?>")?;
    let mut rest = &after[..end];
    loop {
        rest = trim_space(rest);
        let name_len = rest
            .iter()
            .position(|b| is_space(*b) || *b == b'=')
            .unwrap_or(rest.len());
        if name_len == 0 {
            return None;
        }
        let (name, tail) = rest.split_at(name_len);
        let tail = trim_space(tail).strip_prefix(b"=")?;
        let tail = trim_space(tail);
        let quote = *tail.first().filter(|q| matches!(q, b'"' | b'\''))?;
        let close = tail[1..].iter().position(|b| *b == quote)?;
        let value = &tail[1..1 + close];
        if name == b"encoding" {
            return std::str::from_utf8(value).ok().map(str::to_owned);
        }
        rest = &tail[close + 2..];
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_space(mut b: &[u8]) -> &[u8] {
    while b.first().is_some_and(|c| is_space(*c)) {
        b = &b[1..];
    }
    b
}
