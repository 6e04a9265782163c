//! `pkcs11:` URIs (RFC 7512) naming a private key in a token: which token (by label, and
//! optionally serial number) and which object (by label and/or `CKA_ID`).
//!
//! **Guarantee:** a parsed URI names a token and an object; every attribute it carries is one
//! this node understands (anything else is refused by name, never ignored), and it holds no
//! secret: the PIN comes from a file in the configuration, so `pin-value` is refused.

use std::fmt;

/// A parsed `pkcs11:` URI. [`fmt::Display`] gives back the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The token's label (`CKA_LABEL` of the token, `token=`).
    pub token: String,
    /// The token's serial number (`serial=`), when several tokens share a label.
    pub serial: Option<String>,
    /// The key's label (`object=`).
    pub object: Option<String>,
    /// The key's `CKA_ID` (`id=`, percent-encoded bytes).
    pub id: Option<Vec<u8>>,
    text: String,
}

/// Why a `pkcs11:` URI was refused; the text names the attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("not a pkcs11: URI")]
    NotPkcs11,
    #[error("attribute {0:?} has no '=value'")]
    NoValue(String),
    #[error("attribute {0:?} is given twice")]
    Repeated(String),
    #[error("attribute {name:?}: bad percent-encoding ({why})")]
    BadEncoding { name: String, why: &'static str },
    #[error("unknown attribute {0:?} (known: token, serial, object, id, type)")]
    Unknown(String),
    #[error("type={0:?}: only a private key can sign (type=private)")]
    NotPrivate(String),
    #[error("{0} is not taken from the URI: {1}")]
    Misplaced(String, &'static str),
    #[error("the URI names no token (token=<label>); slot numbers are not stable, labels are")]
    NoToken,
    #[error("the URI names no key (object=<label> and/or id=<hex bytes as %XX>)")]
    NoObject,
}

impl Pkcs11Uri {
    /// Parses `pkcs11:token=…;object=…[;id=%01][;type=private][;serial=…]`.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let rest = text.strip_prefix("pkcs11:").ok_or(UriError::NotPkcs11)?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        // The query holds how to reach the token, which the configuration gives instead: the
        // first attribute is refused, whatever it is.
        if let Some(attr) = query.and_then(|q| q.split('&').find(|a| !a.is_empty())) {
            let name = attr.split_once('=').map_or(attr, |(n, _)| n);
            return Err(match name {
                "module-path" | "module-name" => UriError::Misplaced(
                    name.into(),
                    "set the module in node.toml [pkcs11] module, or --pkcs11-module",
                ),
                "pin-source" => UriError::Misplaced(
                    name.into(),
                    "set the PIN file in node.toml [pkcs11] pin_file, or --pin-file",
                ),
                "pin-value" => UriError::Misplaced(
                    name.into(),
                    "a PIN never goes in a key string; put it in an owner-only PIN file",
                ),
                _ => UriError::Unknown(name.into()),
            });
        }
        let mut uri = Pkcs11Uri {
            token: String::new(),
            serial: None,
            object: None,
            id: None,
            text: text.to_owned(),
        };
        let mut token = None;
        let mut seen: Vec<&str> = Vec::new();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| UriError::NoValue(attr.into()))?;
            if seen.contains(&name) {
                return Err(UriError::Repeated(name.into()));
            }
            seen.push(name);
            let bytes = percent_decode(name, value)?;
            let utf8 = || {
                String::from_utf8(bytes.clone()).map_err(|_| UriError::BadEncoding {
                    name: name.into(),
                    why: "not UTF-8",
                })
            };
            match name {
                "token" => token = Some(utf8()?),
                "serial" => uri.serial = Some(utf8()?),
                "object" => uri.object = Some(utf8()?),
                "id" => uri.id = Some(bytes),
                "type" => {
                    let t = utf8()?;
                    if t != "private" {
                        return Err(UriError::NotPrivate(t));
                    }
                }
                _ => return Err(UriError::Unknown(name.into())),
            }
        }
        uri.token = token.ok_or(UriError::NoToken)?;
        if uri.object.is_none() && uri.id.is_none() {
            return Err(UriError::NoObject);
        }
        Ok(uri)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Decodes `%XX` escapes (RFC 3986); a `%` not followed by two hex digits is refused.
fn percent_decode(name: &str, value: &str) -> Result<Vec<u8>, UriError> {
    let bad = |why| UriError::BadEncoding {
        name: name.into(),
        why,
    };
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or_else(|| bad("'%' needs two hex digits"))?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad("'%' needs two hex digits"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad("'%' needs two hex digits"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_object_id_and_type_are_read_and_percent_decoded() {
        let u = Pkcs11Uri::parse("pkcs11:token=My%20Token;object=doc-sign;id=%01%a0;type=private")
            .expect("parses");
        assert_eq!(u.token, "My Token");
        assert_eq!(u.object.as_deref(), Some("doc-sign"));
        assert_eq!(u.id.as_deref(), Some(&[0x01, 0xa0][..]));
        assert_eq!(u.serial, None);
        assert_eq!(
            u.to_string(),
            "pkcs11:token=My%20Token;object=doc-sign;id=%01%a0;type=private"
        );
    }

    #[test]
    fn an_id_alone_names_the_key_and_serial_is_kept() {
        let u = Pkcs11Uri::parse("pkcs11:token=t;serial=0a1b;id=%02").expect("parses");
        assert_eq!(u.object, None);
        assert_eq!(u.serial.as_deref(), Some("0a1b"));
        assert_eq!(u.id.as_deref(), Some(&[2][..]));
    }

    #[test]
    fn unknown_attributes_are_refused_by_name() {
        let e = Pkcs11Uri::parse("pkcs11:token=t;object=k;slot-id=3").expect_err("unknown");
        assert_eq!(e, UriError::Unknown("slot-id".into()));
        assert!(e.to_string().contains("\"slot-id\""), "{e}");
        let e = Pkcs11Uri::parse("pkcs11:token=t;object=k?colour=red").expect_err("unknown");
        assert_eq!(e, UriError::Unknown("colour".into()));
    }

    #[test]
    fn the_module_and_pin_are_refused_in_the_uri_with_where_they_go() {
        let e = Pkcs11Uri::parse("pkcs11:token=t;object=k?pin-value=1234").expect_err("pin");
        assert!(e.to_string().contains("owner-only PIN file"), "{e}");
        assert!(
            !e.to_string().contains("1234"),
            "the PIN is never echoed: {e}"
        );
        let e = Pkcs11Uri::parse("pkcs11:token=t;object=k?module-path=/x.so").expect_err("module");
        assert!(e.to_string().contains("[pkcs11] module"), "{e}");
        let e = Pkcs11Uri::parse("pkcs11:token=t;object=k?pin-source=file:/p").expect_err("pin");
        assert!(e.to_string().contains("[pkcs11] pin_file"), "{e}");
    }

    #[test]
    fn bad_uris_are_refused_each_with_its_reason() {
        let cases = [
            ("file:/x", UriError::NotPkcs11),
            ("pkcs11:object=k", UriError::NoToken),
            ("pkcs11:token=t", UriError::NoObject),
            ("pkcs11:token=t;object", UriError::NoValue("object".into())),
            (
                "pkcs11:token=t;token=u;object=k",
                UriError::Repeated("token".into()),
            ),
            (
                "pkcs11:token=t;object=k;type=cert",
                UriError::NotPrivate("cert".into()),
            ),
            (
                "pkcs11:token=t;id=%4",
                UriError::BadEncoding {
                    name: "id".into(),
                    why: "'%' needs two hex digits",
                },
            ),
            (
                "pkcs11:token=t;object=%zz",
                UriError::BadEncoding {
                    name: "object".into(),
                    why: "'%' needs two hex digits",
                },
            ),
            (
                "pkcs11:token=%ff;object=k",
                UriError::BadEncoding {
                    name: "token".into(),
                    why: "not UTF-8",
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Pkcs11Uri::parse(text), Err(want), "{text}");
        }
    }
}
