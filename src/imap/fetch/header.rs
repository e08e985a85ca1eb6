//! Header blocks as raw fields.
//!
//! ENVELOPE and BODYSTRUCTURE show header values as sent (still RFC 2047-encoded: clients
//! decode), and HEADER.FIELDS returns fields octet for octet, so fields are cut out of the
//! stored bytes here rather than taken from mail-parser's decoded values.

/// One header field: `name: value`, with its folded continuation lines.
#[derive(Debug, Clone, Copy)]
pub(in crate::imap) struct Field<'a> {
    /// The field name, without the colon and the blanks before it.
    pub(in crate::imap) name: &'a [u8],
    /// What follows the colon, folding included, line end excluded.
    pub(in crate::imap) value: &'a [u8],
    /// The whole field as stored, line end included.
    pub(super) raw: &'a [u8],
}

/// The fields of a header block, in order, up to the blank line that ends it. Lines that are
/// no field (no colon, or a continuation with nothing to continue) are skipped.
pub(in crate::imap) fn fields(block: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let mut rest = block;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() || is_blank_line(rest) {
                return None;
            }
            let mut end = line_end(rest, 0);
            while end < rest.len() && matches!(rest[end], b' ' | b'\t') {
                end = line_end(rest, end);
            }
            let (raw, after) = rest.split_at(end);
            rest = after;
            if let Some(field) = field(raw) {
                return Some(field);
            }
        }
    })
}

/// Whether the block ends with the blank line separating it from a body: RFC 3501 returns
/// that line with every header fetch, subsets included, unless the message has none.
pub(super) fn has_separator(block: &[u8]) -> bool {
    block.ends_with(b"\r\n\r\n") || block.ends_with(b"\n\n") || block == b"\r\n"
}

/// The value of the first field called `name`, unfolded and trimmed.
pub(super) fn first(block: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(block)
        .find(|field| field.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|field| unfold(field.value))
}

/// The value of the last field called `name`, unfolded and trimmed: for MIME fields, where
/// mail-parser (which finds the parts) takes the last one too, so that shapes and labels agree.
pub(super) fn last(block: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(block)
        .filter(|field| field.name.eq_ignore_ascii_case(name.as_bytes()))
        .last()
        .map(|field| unfold(field.value))
}

/// RFC 5322 unfolding (the line breaks of continuation lines removed), trimmed of blanks.
pub(in crate::imap) fn unfold(value: &[u8]) -> Vec<u8> {
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    trim(&unfolded).to_vec()
}

/// `bytes` without leading and trailing blanks.
pub(super) fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn field(raw: &[u8]) -> Option<Field<'_>> {
    if matches!(raw.first(), Some(b' ' | b'\t')) {
        return None;
    }
    let colon = raw.iter().position(|&b| b == b':')?;
    // A colon on a later line means the first line had none: not a field.
    if raw[..colon].contains(&b'\n') {
        return None;
    }
    let name = trim(&raw[..colon]);
    if name.is_empty() {
        return None;
    }
    let mut value = &raw[colon + 1..];
    if let Some(stripped) = value.strip_suffix(b"\n") {
        value = stripped.strip_suffix(b"\r").unwrap_or(stripped);
    }
    Some(Field { name, value, raw })
}

/// The offset just past the line starting at `start` (its LF included).
fn line_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| start + i + 1)
}

fn is_blank_line(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\r\n") || bytes.starts_with(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_folding_and_stop_at_the_blank_line() {
        let block = b"Subject: a\r\n  b\r\nnot a field\r\nX-Y : z\r\n\r\nBody: no\r\n";
        let all: Vec<_> = fields(block).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, b"Subject");
        assert_eq!(all[0].raw, b"Subject: a\r\n  b\r\n");
        assert_eq!(unfold(all[0].value), b"a  b");
        assert_eq!(all[1].name, b"X-Y");
        assert_eq!(first(block, "x-y").as_deref(), Some(&b"z"[..]));
        assert_eq!(first(block, "body"), None);
        let twice = b"A: 1\r\na: 2\r\n\r\n";
        assert_eq!(first(twice, "a").as_deref(), Some(&b"1"[..]));
        assert_eq!(last(twice, "a").as_deref(), Some(&b"2"[..]));
        assert!(has_separator(b"A: b\r\n\r\n"));
        assert!(!has_separator(b"A: b\r\n"));
    }
}
