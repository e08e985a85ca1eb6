//! Messages as multi-line replies (RETR and TOP, RFC 1939 section 3): CRLF line endings,
//! dot-stuffing and the terminating `.` line.

use bytes::BufMut;

/// Write `content` as the body of a RETR or TOP reply, followed by the terminating `.\r\n`.
///
/// - A bare LF becomes CRLF; CRLF is kept; a CR not followed by LF is data and kept as is.
/// - A line starting with `.` gets another `.` in front (dot-stuffing).
/// - A last line without a line ending gets CRLF, so the terminator starts a line.
/// - With `max_body_lines = Some(n)` (TOP): the header lines, the empty line ending them, then at
///   most `n` body lines. A message without an empty line is all headers and is sent whole.
///
/// Runs of lines that need no change are copied in one piece, so a message already in CRLF form
/// with no line starting with `.` costs a single copy. The reply's unstuffed size is
/// [`rfc822_size`](crate::store::rfc822_size)`(content)`, plus 2 when the last line has no line
/// ending.
///
/// ```
/// use tower_mail::pop3::dotstuff::write_dot_stuffed;
/// let message = b"Subject: hi\n\n.signature\nline 2\n";
/// let mut out = Vec::new();
/// write_dot_stuffed(&mut out, message, None);
/// assert_eq!(out, b"Subject: hi\r\n\r\n..signature\r\nline 2\r\n.\r\n");
///
/// let mut top = Vec::new();
/// write_dot_stuffed(&mut top, message, Some(0));
/// assert_eq!(top, b"Subject: hi\r\n\r\n.\r\n");
/// ```
pub fn write_dot_stuffed<B: BufMut>(out: &mut B, content: &[u8], max_body_lines: Option<u32>) {
    let content = match max_body_lines {
        Some(lines) => &content[..top_end(content, lines)],
        None => content,
    };
    // `content[run..]` has been checked but not yet written.
    let mut run = 0;
    let mut start = 0;
    while start < content.len() {
        if content[start] == b'.' {
            out.put_slice(&content[run..start]);
            out.put_u8(b'.');
            run = start;
        }
        match content[start..].iter().position(|&b| b == b'\n') {
            Some(offset) => {
                let lf = start + offset;
                if offset == 0 || content[lf - 1] != b'\r' {
                    out.put_slice(&content[run..lf]);
                    out.put_slice(b"\r\n");
                    run = lf + 1;
                }
                start = lf + 1;
            }
            None => {
                out.put_slice(&content[run..]);
                out.put_slice(b"\r\n");
                run = content.len();
                break;
            }
        }
    }
    out.put_slice(&content[run..]);
    out.put_slice(b".\r\n");
}

/// Where TOP stops: after the header lines, the empty line and `lines` body lines.
fn top_end(content: &[u8], lines: u32) -> usize {
    let mut start = 0;
    // Skip the headers, up to and including the first empty line.
    loop {
        let Some(offset) = content[start..].iter().position(|&b| b == b'\n') else {
            // No empty line: the message is all headers.
            return content.len();
        };
        let line = &content[start..start + offset];
        start += offset + 1;
        if line.is_empty() || line == b"\r" {
            break;
        }
    }
    for _ in 0..lines {
        if start == content.len() {
            break;
        }
        start = match content[start..].iter().position(|&b| b == b'\n') {
            Some(offset) => start + offset + 1,
            None => content.len(),
        };
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(content: &[u8], lines: Option<u32>) -> Vec<u8> {
        let mut out = Vec::new();
        write_dot_stuffed(&mut out, content, lines);
        out
    }

    /// What a client does with a multi-line reply: split on CRLF, stop at the lone `.`, and
    /// drop one leading `.` from other lines. Panics if the reply is malformed.
    fn unstuff(reply: &[u8]) -> Vec<u8> {
        let mut message = Vec::new();
        let mut rest = reply;
        loop {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("every line ends with CRLF");
            let line = &rest[..end];
            rest = &rest[end + 2..];
            if line == b"." {
                assert!(rest.is_empty(), "data after the terminator");
                return message;
            }
            message.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            message.extend_from_slice(b"\r\n");
        }
    }

    /// The message as it should arrive: bare LF as CRLF, and a final line ending added.
    fn crlf_normalized(content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &b) in content.iter().enumerate() {
            if b == b'\n' && (i == 0 || content[i - 1] != b'\r') {
                out.push(b'\r');
            }
            out.push(b);
        }
        if !out.is_empty() && !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    const TRICKY: &[&[u8]] = &[
        b"",
        b"\n",
        b"\r\n",
        b"\n\n\n",
        b".",
        b"..",
        b".\r\n",
        b".\n",
        b"\r",
        b"\r\r\n",
        b"\n\r",
        b"a\rb\r\n",
        b"no newline",
        b"Subject: x\r\n\r\n.\r\n.\r\nbody",
        b"Subject: x\n\n.\n..\n...\nend.\n",
        b"Subject: x\r\n\r\nline\n.dot\r\n\r\n.",
        b".leading\r\nheader\r\n\r\n",
        b"From: a\r\nTo: b\r\n\r\nHello\r\n.\r\nWorld\r\n",
        b"mixed\nline\r\nendings\r\rhere\n",
        b"\xff\xfe binary \x00 bytes\r\n.\x00\n",
        b"end with CR\r",
        b"end with dot line\n.",
    ];

    #[test]
    fn round_trip_tricky_messages() {
        for &message in TRICKY {
            let reply = stuffed(message, None);
            assert_eq!(
                unstuff(&reply),
                crlf_normalized(message),
                "{:?}",
                String::from_utf8_lossy(message)
            );
            // TOP with more lines than the body has is the whole message.
            assert_eq!(stuffed(message, Some(u32::MAX)), reply);
        }
    }

    #[test]
    fn round_trip_generated_messages() {
        // Every message of up to 7 bytes over an alphabet of the bytes that matter.
        const ALPHABET: &[u8] = b".\r\na";
        let mut message = Vec::new();
        for len in 0..=7u32 {
            for mut code in 0..ALPHABET.len().pow(len) {
                message.clear();
                for _ in 0..len {
                    message.push(ALPHABET[code % ALPHABET.len()]);
                    code /= ALPHABET.len();
                }
                let reply = stuffed(&message, None);
                assert_eq!(unstuff(&reply), crlf_normalized(&message), "{message:?}");
                for lines in 0..4 {
                    let top = unstuff(&stuffed(&message, Some(lines)));
                    assert_eq!(top, reference_top(&message, lines), "{message:?} {lines}");
                }
            }
        }
    }

    proptest::proptest! {
        /// Longer messages than the exhaustive test reaches, from the bytes that matter and
        /// any other: a client recovers the message, and TOP is the reference's prefix.
        #[test]
        fn round_trip_random_messages(
            message in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::sample::select(b".\r\na".to_vec()),
                    1 => proptest::num::u8::ANY,
                ],
                0..2000,
            ),
            lines in 0u32..50,
        ) {
            proptest::prop_assert_eq!(unstuff(&stuffed(&message, None)), crlf_normalized(&message));
            proptest::prop_assert_eq!(
                unstuff(&stuffed(&message, Some(lines))),
                reference_top(&message, lines)
            );
        }
    }

    /// TOP computed the slow way, on the normalized message's lines.
    fn reference_top(message: &[u8], body_lines: u32) -> Vec<u8> {
        let normalized = crlf_normalized(message);
        let mut lines = Vec::new();
        let mut rest = &normalized[..];
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            lines.push(&rest[..end + 2]);
            rest = &rest[end + 2..];
        }
        let keep = match lines.iter().position(|line| *line == b"\r\n") {
            Some(separator) => (separator + 1 + body_lines as usize).min(lines.len()),
            None => lines.len(),
        };
        lines[..keep].concat()
    }

    #[test]
    fn crlf_input_is_kept_byte_for_byte() {
        let message: &[u8] =
            b"Received: from x\r\n\tby y\r\nSubject: test\r\n\r\nBody \r\n\r\nwith\rCR\r\n";
        let reply = stuffed(message, None);
        assert_eq!(reply, [message, b".\r\n"].concat());
        assert_eq!(unstuff(&reply), message);
    }

    #[test]
    fn leading_dots_are_doubled() {
        assert_eq!(stuffed(b".\r\n", None), b"..\r\n.\r\n");
        assert_eq!(
            stuffed(b"a\r\n.b\r\n..c\r\n", None),
            b"a\r\n..b\r\n...c\r\n.\r\n"
        );
        assert_eq!(stuffed(b"a.\r\n b.\r\n", None), b"a.\r\n b.\r\n.\r\n");
        assert_eq!(stuffed(b".", None), b"..\r\n.\r\n");
        assert_eq!(stuffed(b"x\n.", None), b"x\r\n..\r\n.\r\n");
    }

    #[test]
    fn line_endings() {
        assert_eq!(stuffed(b"a\nb\n", None), b"a\r\nb\r\n.\r\n");
        assert_eq!(stuffed(b"\n\n", None), b"\r\n\r\n.\r\n");
        assert_eq!(stuffed(b"a\r\nb\nc\r\n", None), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(stuffed(b"no newline", None), b"no newline\r\n.\r\n");
        assert_eq!(stuffed(b"a\rb", None), b"a\rb\r\n.\r\n");
        // A lone CR is data, even at the end.
        assert_eq!(stuffed(b"a\r", None), b"a\r\r\n.\r\n");
    }

    #[test]
    fn empty_message() {
        assert_eq!(stuffed(b"", None), b".\r\n");
        assert_eq!(stuffed(b"", Some(0)), b".\r\n");
        assert_eq!(stuffed(b"", Some(5)), b".\r\n");
    }

    const MESSAGE: &[u8] = b"From: a\r\nSubject: s\r\n\r\none\r\n.two\r\nthree\r\n";

    #[test]
    fn top_with_zero_lines() {
        assert_eq!(
            stuffed(MESSAGE, Some(0)),
            b"From: a\r\nSubject: s\r\n\r\n.\r\n"
        );
    }

    #[test]
    fn top_with_n_lines() {
        assert_eq!(
            stuffed(MESSAGE, Some(1)),
            b"From: a\r\nSubject: s\r\n\r\none\r\n.\r\n"
        );
        assert_eq!(
            stuffed(MESSAGE, Some(2)),
            b"From: a\r\nSubject: s\r\n\r\none\r\n..two\r\n.\r\n"
        );
        assert_eq!(stuffed(MESSAGE, Some(3)), stuffed(MESSAGE, None));
        assert_eq!(stuffed(MESSAGE, Some(4)), stuffed(MESSAGE, None));
        // Bare LF separators and a body whose last line has no line ending.
        let lf = b"A: 1\n\nx\ny";
        assert_eq!(stuffed(lf, Some(0)), b"A: 1\r\n\r\n.\r\n");
        assert_eq!(stuffed(lf, Some(1)), b"A: 1\r\n\r\nx\r\n.\r\n");
        assert_eq!(stuffed(lf, Some(2)), b"A: 1\r\n\r\nx\r\ny\r\n.\r\n");
        // Empty body lines count as lines.
        assert_eq!(
            stuffed(b"A: 1\r\n\r\n\r\n\r\nz\r\n", Some(2)),
            b"A: 1\r\n\r\n\r\n\r\n.\r\n"
        );
    }

    #[test]
    fn top_of_headers_only_message() {
        let headers = b"From: a\r\nSubject: s\r\n";
        assert_eq!(stuffed(headers, Some(0)), stuffed(headers, None));
        let unterminated = b"From: a\r\nSubject: s";
        assert_eq!(
            stuffed(unterminated, Some(0)),
            b"From: a\r\nSubject: s\r\n.\r\n"
        );
    }

    #[test]
    fn top_of_message_starting_with_empty_line() {
        assert_eq!(stuffed(b"\r\nbody\r\nmore\r\n", Some(0)), b"\r\n.\r\n");
        assert_eq!(stuffed(b"\nbody\nmore\n", Some(1)), b"\r\nbody\r\n.\r\n");
    }

    #[test]
    fn top_only_counts_truly_empty_lines_as_separator() {
        // " \r\n" and "\r\r\n" are not empty, so the headers go on.
        let message = b"A: 1\r\n \r\n\r\r\nB: 2\r\n\r\nbody\r\n";
        assert_eq!(
            stuffed(message, Some(0)),
            b"A: 1\r\n \r\n\r\r\nB: 2\r\n\r\n.\r\n"
        );
    }

    #[test]
    fn unstuffed_size_matches_rfc822_size() {
        for &message in TRICKY {
            let expected = crate::store::rfc822_size(message)
                + if message.is_empty() || message.ends_with(b"\n") {
                    0
                } else {
                    2
                };
            assert_eq!(unstuff(&stuffed(message, None)).len() as u64, expected);
        }
    }

    #[test]
    fn works_with_bytes_mut() {
        let mut out = bytes::BytesMut::new();
        write_dot_stuffed(&mut out, b".x\n", None);
        assert_eq!(&out[..], b"..x\r\n.\r\n");
    }
}
