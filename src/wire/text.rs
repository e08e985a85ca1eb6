//! Text sent to clients: the one cleaner every reply text goes through, whatever its source (a
//! layer's refusal, a configured greeting, an error, a client's ID), and the one goodbye
//! writer (`* BYE` / `-ERR`).
//!
//! Texts can come from layers, configuration and clients, so they are cleaned rather than
//! trusted: no text can end a line early, inject a line of its own, or, in IMAP, pass for a
//! response code.

use std::borrow::Cow;

use bytes::BufMut;

use crate::reject::{GENERIC_MESSAGE, MAX_MESSAGE_LEN};
use crate::session::Protocol;

/// Make `text` safe as part of one line sent to a client: control characters (CR, LF, NUL, DEL,
/// C1, ...) are removed, white space at either end trimmed, and the result cut on a character
/// boundary to at most `max_len` bytes. Borrows when nothing needs to change.
///
/// ```
/// use tower_mail::wire::clean_line;
/// assert_eq!(clean_line("bad\r\n+OK forged", 100), "bad+OK forged");
/// assert_eq!(clean_line("  héllo ", 3), "hé");
/// ```
pub fn clean_line(text: &str, max_len: usize) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        let trimmed = text.trim();
        if trimmed.len() <= max_len {
            return Cow::Borrowed(trimmed);
        }
    }
    let mut out = String::with_capacity(text.len().min(max_len));
    // Trimming the start before the cut keeps leading spaces from eating the length budget.
    for c in text
        .chars()
        .filter(|c| !c.is_control())
        .skip_while(|c| c.is_whitespace())
    {
        if out.len() + c.len_utf8() > max_len {
            break;
        }
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    Cow::Owned(out)
}

/// IMAP human-readable text (`text` in RFC 3501 section 9): [`clean_line`], then what IMAP4rev1
/// adds. Its text is 7-bit, so other characters become `?`; it may not be empty, so an empty
/// text becomes [`GENERIC_MESSAGE`]; and after a status without a response code, a text that
/// starts with `[` would read as one (`* BYE [ALERT] ...`), so a space goes before it.
pub(crate) fn imap_text(text: &str, has_code: bool) -> Cow<'_, str> {
    let mut cleaned = clean_line(text, usize::MAX);
    if !cleaned.is_ascii() {
        let ascii = cleaned
            .chars()
            .map(|c| if c.is_ascii() { c } else { '?' })
            .collect();
        cleaned = Cow::Owned(ascii);
    }
    if cleaned.is_empty() {
        return Cow::Borrowed(GENERIC_MESSAGE);
    }
    if !has_code && cleaned.starts_with('[') {
        cleaned = Cow::Owned(format!(" {cleaned}"));
    }
    cleaned
}

/// `* BYE <text>\r\n` (RFC 3501 section 7.1.5), the IMAP server's goodbye: the one writer of
/// it, for sessions and refusals alike. The text is cut like a refusal's, to
/// [`MAX_MESSAGE_LEN`] bytes, and cleaned by [`imap_text`].
pub(crate) fn bye<B: BufMut>(out: &mut B, text: &str) {
    let text = clean_line(text, MAX_MESSAGE_LEN);
    out.put_slice(b"* BYE ");
    out.put_slice(imap_text(&text, false).as_bytes());
    out.put_slice(b"\r\n");
}

/// The line a client gets when the server ends or refuses its connection: [`bye`] for IMAP,
/// `-ERR <text>\r\n` for POP3 (RFC 1939 has no goodbye of its own), the text cleaned to one
/// line of at most [`MAX_MESSAGE_LEN`] bytes.
pub(crate) fn goodbye<B: BufMut>(out: &mut B, protocol: Protocol, text: &str) {
    match protocol {
        Protocol::Imap => bye(out, text),
        Protocol::Pop3 => {
            let max_line = "-ERR \r\n".len() + MAX_MESSAGE_LEN;
            status_line(out, "-ERR", None, text, max_line);
        }
    }
}

/// A POP3 status line, `indicator [code] text\r\n`, of at most `max_line` octets with its CRLF
/// (RFC 2449 section 4 bounds them to 512): the text cleaned and cut to fit, and left out with
/// its space when nothing remains. Without a code, a text that starts with `[` gets a space
/// before it, as in IMAP: `-ERR [IN-USE] ...` would read as RFC 2449's response code to a
/// client that speaks RESP-CODES.
pub(crate) fn status_line<B: BufMut>(
    out: &mut B,
    indicator: &str,
    code: Option<&str>,
    text: &str,
    max_line: usize,
) {
    out.put_slice(indicator.as_bytes());
    let mut used = indicator.len() + 2;
    if let Some(code) = code {
        out.put_slice(b" [");
        out.put_slice(code.as_bytes());
        out.put_u8(b']');
        used += code.len() + 3;
    }
    let budget = max_line.saturating_sub(used + 1);
    let mut cleaned = clean_line(text, budget);
    let guarded = code.is_none() && cleaned.starts_with('[');
    if guarded {
        // The guard's space comes out of the text's budget.
        cleaned = clean_line(text, budget.saturating_sub(1));
    }
    if !cleaned.is_empty() {
        out.put_slice(if guarded { b"  " } else { b" " });
        out.put_slice(cleaned.as_bytes());
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn clean_line_cases() {
        assert!(matches!(clean_line("plain", 10), Cow::Borrowed("plain")));
        assert!(matches!(
            clean_line("  padded  ", 10),
            Cow::Borrowed("padded")
        ));
        assert_eq!(clean_line("\r\n", 10), "");
        assert_eq!(clean_line("tab\there", 10), "tabhere");
        assert_eq!(clean_line("abcdef", 3), "abc");
        assert_eq!(
            clean_line("ab cdef", 3),
            "ab",
            "no trailing space after the cut"
        );
        assert_eq!(clean_line("\r\n   abc", 3), "abc");
        assert_eq!(clean_line("日本語", 4), "日");
        assert_eq!(clean_line("日本語", 2), "");
        assert_eq!(clean_line("x", 0), "");
    }

    #[test]
    fn imap_texts_are_7_bit_never_empty_and_never_a_code() {
        assert!(matches!(imap_text("Logged in", false), Cow::Borrowed(_)));
        assert_eq!(imap_text("caf\u{e9}\r\n", false), "caf?");
        assert_eq!(imap_text(" \r\n", false), GENERIC_MESSAGE);
        assert_eq!(imap_text("[ALERT] fake", false), " [ALERT] fake");
        assert_eq!(imap_text("[ALERT] real", true), "[ALERT] real");
    }

    #[test]
    fn goodbyes_are_one_line_and_guard_a_leading_bracket() {
        assert_eq!(
            written(|out| goodbye(out, Protocol::Imap, "[ALERT]\r\n* OK forged")),
            "* BYE  [ALERT]* OK forged\r\n"
        );
        assert_eq!(
            written(|out| goodbye(out, Protocol::Pop3, "Go away\r\n+OK forged")),
            "-ERR Go away+OK forged\r\n"
        );
        assert_eq!(written(|out| goodbye(out, Protocol::Pop3, "")), "-ERR\r\n");
        assert_eq!(
            written(|out| goodbye(out, Protocol::Imap, "")),
            format!("* BYE {GENERIC_MESSAGE}\r\n")
        );
        let long = "x".repeat(1000);
        assert_eq!(
            written(|out| goodbye(out, Protocol::Pop3, &long)).len(),
            "-ERR \r\n".len() + MAX_MESSAGE_LEN
        );
        assert_eq!(
            written(|out| goodbye(out, Protocol::Pop3, "\r\n [IN-USE] haha")),
            "-ERR  [IN-USE] haha\r\n"
        );
    }

    #[test]
    fn pop3_free_texts_never_pass_for_a_response_code() {
        let line = |indicator, code, text: &str, max| {
            written(|out| status_line(out, indicator, code, text, max))
        };
        assert_eq!(
            line("-ERR", None, "[IN-USE] haha", 512),
            "-ERR  [IN-USE] haha\r\n"
        );
        assert_eq!(
            line("+OK", None, "[SYS/TEMP] ready", 512),
            "+OK  [SYS/TEMP] ready\r\n"
        );
        // The server's own codes still go out as codes, whatever the text after them.
        assert_eq!(
            line("-ERR", Some("IN-USE"), "Mailbox locked", 512),
            "-ERR [IN-USE] Mailbox locked\r\n"
        );
        assert_eq!(
            line("-ERR", Some("AUTH"), "[x] y", 512),
            "-ERR [AUTH] [x] y\r\n"
        );
        // A bracket inside the text is no code.
        assert_eq!(
            line("-ERR", None, "try [later]", 512),
            "-ERR try [later]\r\n"
        );
        // The guard's space is within the bound, and a cut text still ends on a character.
        let long = format!("[{}", "\u{e9}".repeat(600));
        let guarded = line("-ERR", None, &long, 512);
        assert!(guarded.len() <= 512, "{}", guarded.len());
        assert!(guarded.starts_with("-ERR  [\u{e9}"), "{guarded}");
        let fits = "[".to_owned() + &"x".repeat(512 - "-ERR  [\r\n".len());
        assert_eq!(line("-ERR", None, &fits, 512).len(), 512);
    }
}
