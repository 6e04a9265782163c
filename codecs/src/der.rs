//! The little DER the signature code reads and writes itself: one element at a time, an OID as
//! dotted text, and an element built from its content. For the few fixed shapes it meets (a
//! GOST key's parameter set in its SubjectPublicKeyInfo, a token's EC point, an EC
//! SubjectPublicKeyInfo to hand to OpenSSL); certificates and keys go through OpenSSL.
//!
//! Guarantees: a reader never reads past its input and never panics, whatever the bytes;
//! lengths of more than four octets are refused.

/// One DER element with tag `tag` at the start of `input`: (its content, what follows).
pub fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// The content of a DER element with tag `tag` that spans all of `input`.
pub fn whole(input: &[u8], tag: u8) -> Option<&[u8]> {
    match element(input, tag)? {
        (content, []) => Some(content),
        _ => None,
    }
}

/// A DER element with `tag` and `content` (content under 64 KiB).
pub fn write(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// Dotted text of an OID's content octets.
pub fn oid_text(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        if value > (u64::MAX >> 7) {
            return None;
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == content.len() {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_decode_and_truncated_ones_are_refused() {
        // 1.2.643.2.2.35.1
        assert_eq!(
            oid_text(&[0x2a, 0x85, 0x03, 0x02, 0x02, 0x23, 0x01]).as_deref(),
            Some("1.2.643.2.2.35.1")
        );
        assert_eq!(oid_text(&[0x2a, 0x85]), None);
        assert_eq!(oid_text(&[]), None);
    }

    #[test]
    fn a_written_element_reads_back_and_a_bare_one_does_not() {
        let mut bare = vec![0x04];
        bare.extend([0x11; 64]);
        let wrapped = write(0x04, &bare);
        assert_eq!(whole(&wrapped, 0x04), Some(&bare[..]));
        assert_eq!(whole(&bare, 0x04), None);
        let long = write(0x04, &[7; 200]);
        assert_eq!(whole(&long, 0x04), Some(&[7; 200][..]));
        let mut trailing = long.clone();
        trailing.push(0);
        assert_eq!(whole(&trailing, 0x04), None);
        assert_eq!(element(&trailing, 0x04), Some((&[7; 200][..], &[0][..])));
    }

    #[test]
    fn lengths_past_the_input_or_too_long_are_refused() {
        assert_eq!(element(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], 0x30), None);
        assert_eq!(element(&[0x30, 0x85, 0, 0, 0, 0, 1, 0], 0x30), None);
        assert_eq!(element(&[0x30, 0x03, 0x30, 0x01], 0x30), None);
        assert_eq!(element(&[], 0x30), None);
        for n in 0..64u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x30).collect();
            let _ = element(&bytes, 0x30);
        }
    }
}
