//! The octets FETCH serves: the stored message in its canonical CRLF form.
//!
//! Stores may keep bare LF line endings (Maildir written by Unix tools), while RFC822.SIZE is
//! counted on the CRLF form; serving and measuring the CRLF form keeps BODY[], the
//! BODYSTRUCTURE sizes and RFC822.SIZE consistent. NUL cannot be sent in an IMAP literal
//! (RFC 3501 `CHAR8`), so it becomes 0x80, as Dovecot does: same length, so the sizes hold.

use std::borrow::Cow;

/// What NUL is served as.
const NUL_REPLACEMENT: u8 = 0x80;

/// `content` with every bare LF as CRLF and every NUL as 0x80; borrowed (no copy) when there
/// is nothing to change, which is the common case for mail received over SMTP.
pub(super) fn normalize(content: &[u8]) -> Cow<'_, [u8]> {
    let clean = content
        .iter()
        .enumerate()
        .all(|(i, &b)| b != 0 && (b != b'\n' || (i > 0 && content[i - 1] == b'\r')));
    if clean {
        return Cow::Borrowed(content);
    }
    let mut out = Vec::with_capacity(content.len() + content.len() / 32 + 2);
    let mut previous = 0u8;
    for &b in content {
        match b {
            b'\n' if previous != b'\r' => out.extend_from_slice(b"\r\n"),
            0 => out.push(NUL_REPLACEMENT),
            _ => out.push(b),
        }
        previous = b;
    }
    Cow::Owned(out)
}

/// The line count BODYSTRUCTURE reports: line ends in the octets, as Dovecot and Cyrus count
/// them (the CRLF before a boundary belongs to the boundary, not to the part).
pub(super) fn lines(octets: &[u8]) -> u32 {
    let count = octets.iter().filter(|&&b| b == b'\n').count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_input_is_borrowed() {
        assert!(matches!(normalize(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert!(matches!(normalize(b""), Cow::Borrowed(_)));
    }

    #[test]
    fn bare_lf_and_nul_are_fixed_and_sizes_match_the_store() {
        let raw = b"\na\r\nb\nc\0\n";
        let fixed = normalize(raw);
        assert_eq!(&fixed[..], b"\r\na\r\nb\r\nc\x80\r\n");
        assert_eq!(fixed.len() as u64, crate::store::rfc822_size(raw));
        assert_eq!(lines(&fixed), 4);
    }
}
