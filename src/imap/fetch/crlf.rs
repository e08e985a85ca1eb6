//! The octets FETCH serves: the stored message in its canonical CRLF form.
//!
//! Stores may keep bare LF line endings (Maildir written by Unix tools), while RFC822.SIZE is
//! counted on the CRLF form; serving and measuring the CRLF form keeps BODY[], the
//! BODYSTRUCTURE sizes and RFC822.SIZE consistent. NUL cannot be sent in an IMAP literal
//! (RFC 3501 `CHAR8`), so it becomes 0x80, as Dovecot does: same length, so the sizes hold.
//! BINARY can send NUL (in a `literal8`), so it keeps it: [`normalize_keeping_nul`] is the
//! same form with NUL kept, octet for octet at the same offsets.

use std::borrow::Cow;

/// What NUL is served as.
const NUL_REPLACEMENT: u8 = 0x80;

/// `content` with every bare LF as CRLF and every NUL as 0x80; borrowed (no copy) when there
/// is nothing to change, which is the common case for mail received over SMTP.
pub(super) fn normalize(content: &[u8]) -> Cow<'_, [u8]> {
    fix(content, Some(NUL_REPLACEMENT))
}

/// `content` with every bare LF as CRLF, NUL kept; borrowed when there is nothing to change.
pub(super) fn normalize_keeping_nul(content: &[u8]) -> Cow<'_, [u8]> {
    fix(content, None)
}

/// `content` with bare LFs as CRLF, and NUL as `nul` if given.
fn fix(content: &[u8], nul: Option<u8>) -> Cow<'_, [u8]> {
    let clean = content.iter().enumerate().all(|(i, &b)| {
        (b != 0 || nul.is_none()) && (b != b'\n' || (i > 0 && content[i - 1] == b'\r'))
    });
    if clean {
        return Cow::Borrowed(content);
    }
    let mut out = Vec::with_capacity(content.len() + content.len() / 32 + 2);
    let mut previous = 0u8;
    for &b in content {
        match (b, nul) {
            (b'\n', _) if previous != b'\r' => out.extend_from_slice(b"\r\n"),
            (0, Some(replacement)) => out.push(replacement),
            _ => out.push(b),
        }
        previous = b;
    }
    Cow::Owned(out)
}

/// Offsets of the CRLF form of `raw` mapped back to the offsets of `raw` they were made from
/// (the CRs added before bare LFs are no part of `raw`), in one pass over `raw` for offsets
/// asked in ascending order.
pub(super) struct StoredOffsets<'a> {
    raw: &'a [u8],
    /// The next octet of `raw` not passed yet, and where it starts in the CRLF form.
    next: usize,
    at: usize,
}

impl<'a> StoredOffsets<'a> {
    pub(super) fn new(raw: &'a [u8]) -> StoredOffsets<'a> {
        StoredOffsets {
            raw,
            next: 0,
            at: 0,
        }
    }

    /// The offset in `raw` of the octet at `offset` of the CRLF form (of the LF, for an
    /// added CR); `raw.len()` past the end. `offset` is at least the one asked before.
    pub(super) fn map(&mut self, offset: usize) -> usize {
        while let Some(&b) = self.raw.get(self.next) {
            let bare_lf = b == b'\n' && (self.next == 0 || self.raw[self.next - 1] != b'\r');
            let width = 1 + usize::from(bare_lf);
            if self.at + width > offset {
                break;
            }
            self.at += width;
            self.next += 1;
        }
        self.next
    }
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
        assert!(matches!(
            normalize_keeping_nul(b"a\0\r\n"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn bare_lf_and_nul_are_fixed_and_sizes_match_the_store() {
        let raw = b"\na\r\nb\nc\0\n";
        let fixed = normalize(raw);
        assert_eq!(&fixed[..], b"\r\na\r\nb\r\nc\x80\r\n");
        assert_eq!(fixed.len() as u64, crate::store::rfc822_size(raw));
        assert_eq!(lines(&fixed), 4);
        assert_eq!(&normalize_keeping_nul(raw)[..], b"\r\na\r\nb\r\nc\0\r\n");
    }

    #[test]
    fn ranges_of_the_crlf_form_map_back_to_the_stored_octets() {
        let raw = b"h\n\nx\0\ny\r\nz\n";
        let fixed = normalize_keeping_nul(raw);
        assert_eq!(&fixed[..], b"h\r\n\r\nx\0\r\ny\r\nz\r\n");
        // Where each octet of `raw` starts in the CRLF form (an added CR goes with its LF).
        let mut starts = vec![0];
        for (i, &b) in raw.iter().enumerate() {
            let bare_lf = b == b'\n' && (i == 0 || raw[i - 1] != b'\r');
            starts.push(starts[i] + 1 + usize::from(bare_lf));
        }
        assert_eq!(starts[raw.len()], fixed.len());
        for i in 0..=raw.len() {
            for j in i..=raw.len() {
                let mut offsets = StoredOffsets::new(raw);
                assert_eq!((offsets.map(starts[i]), offsets.map(starts[j])), (i, j));
            }
        }
        // One pass for ascending offsets, the added CRs going with their LFs.
        let mut offsets = StoredOffsets::new(raw);
        let mapped: Vec<usize> = (0..=fixed.len() + 1).map(|o| offsets.map(o)).collect();
        assert_eq!(
            mapped,
            [0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 10, 11, 11]
        );
    }
}
