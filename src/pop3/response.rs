//! Encoding of POP3 replies into a buffer (`Vec<u8>`, `BytesMut` or any [`BufMut`]).
//!
//! Every text goes through [`clean_line`], so no caller-supplied text (an error message, a user
//! name) can end a reply early or inject a line of its own.
//!
//! A multi-line reply is [`ok`], then [`line()`] for each line (or
//! [`write_dot_stuffed`](super::dotstuff::write_dot_stuffed) for a message), then
//! [`multiline_end`].

use std::fmt;

use bytes::BufMut;

/// Longest status line or greeting, in octets including CRLF (RFC 2449 section 4). Longer texts
/// are cut to fit.
pub const MAX_LINE_LEN: usize = 512;

/// Extended response codes, sent in brackets after `-ERR` (RFC 2449 section 8, RFC 3206,
/// RFC 6856).
///
/// ```
/// use tower_mail::pop3::response::RespCode;
/// assert_eq!(RespCode::SysTemp.as_str(), "SYS/TEMP");
/// assert_eq!(RespCode::InUse.to_string(), "IN-USE");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RespCode {
    /// `AUTH`: the credentials are wrong (RFC 3206), as opposed to a server problem.
    Auth,
    /// `IN-USE`: the maildrop is locked by another session (RFC 2449).
    InUse,
    /// `SYS/TEMP`: a temporary server problem; retrying later may work (RFC 3206).
    SysTemp,
    /// `SYS/PERM`: a permanent server problem; the client should not retry (RFC 3206).
    SysPerm,
    /// `LOGIN-DELAY`: the user logged in too recently (RFC 2449).
    LoginDelay,
    /// `UTF8`: the command needs UTF-8 mode, entered with the `UTF8` command (RFC 6856).
    Utf8,
}

impl RespCode {
    /// The code as sent, without brackets.
    ///
    /// ```
    /// use tower_mail::pop3::response::RespCode;
    /// assert_eq!(RespCode::LoginDelay.as_str(), "LOGIN-DELAY");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RespCode::Auth => "AUTH",
            RespCode::InUse => "IN-USE",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
            RespCode::LoginDelay => "LOGIN-DELAY",
            RespCode::Utf8 => "UTF8",
        }
    }
}

impl fmt::Display for RespCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The crate's one cleaner of text sent to clients, here too for the encoders' users.
pub use crate::wire::clean_line;

/// Write `+OK text\r\n` (`+OK\r\n` when the cleaned text is empty).
///
/// ```
/// use tower_mail::pop3::response::ok;
/// let mut buf = Vec::new();
/// ok(&mut buf, "2 320");
/// ok(&mut buf, "");
/// assert_eq!(buf, b"+OK 2 320\r\n+OK\r\n");
/// ```
pub fn ok<B: BufMut>(buf: &mut B, text: &str) {
    status(buf, "+OK", None, text);
}

/// Write `-ERR text\r\n` (`-ERR\r\n` when the cleaned text is empty).
///
/// ```
/// use tower_mail::pop3::response::err;
/// let mut buf = bytes::BytesMut::new();
/// err(&mut buf, "No such message\r\n+OK forged");
/// assert_eq!(&buf[..], b"-ERR No such message+OK forged\r\n");
/// ```
pub fn err<B: BufMut>(buf: &mut B, text: &str) {
    status(buf, "-ERR", None, text);
}

/// Write `-ERR [CODE] text\r\n`.
///
/// ```
/// use tower_mail::pop3::response::{err_code, RespCode};
/// let mut buf = Vec::new();
/// err_code(&mut buf, RespCode::Auth, "Invalid credentials");
/// assert_eq!(buf, b"-ERR [AUTH] Invalid credentials\r\n");
/// ```
pub fn err_code<B: BufMut>(buf: &mut B, code: RespCode, text: &str) {
    status(buf, "-ERR", Some(code), text);
}

/// Write a SASL server challenge, `+ text\r\n` (RFC 5034): `text` is base64, and an empty
/// challenge is still `+ ` with its space. Not cut to [`MAX_LINE_LEN`], since a cut challenge is
/// useless; it is only cleaned.
///
/// ```
/// use tower_mail::pop3::response::continuation;
/// let mut buf = Vec::new();
/// continuation(&mut buf, "");
/// assert_eq!(buf, b"+ \r\n");
/// ```
pub fn continuation<B: BufMut>(buf: &mut B, text: &str) {
    buf.put_slice(b"+ ");
    buf.put_slice(clean_line(text, usize::MAX).as_bytes());
    buf.put_slice(b"\r\n");
}

/// Write one line of a multi-line reply (a CAPA capability, a LIST or UIDL entry): cleaned,
/// dot-stuffed if it starts with `.`, and ended with CRLF. Not cut to a length.
///
/// ```
/// use tower_mail::pop3::response::{line, multiline_end, ok};
/// let mut buf = Vec::new();
/// ok(&mut buf, "Capability list follows");
/// line(&mut buf, "TOP");
/// line(&mut buf, "SASL PLAIN");
/// multiline_end(&mut buf);
/// assert_eq!(buf, b"+OK Capability list follows\r\nTOP\r\nSASL PLAIN\r\n.\r\n");
/// ```
pub fn line<B: BufMut>(buf: &mut B, text: &str) {
    let text = clean_line(text, usize::MAX);
    // A line that is a lone `.` would otherwise end the reply early.
    if text.starts_with('.') {
        buf.put_u8(b'.');
    }
    buf.put_slice(text.as_bytes());
    buf.put_slice(b"\r\n");
}

/// Write `.\r\n`, the end of a multi-line reply.
///
/// ```
/// use tower_mail::pop3::response::multiline_end;
/// let mut buf = Vec::new();
/// multiline_end(&mut buf);
/// assert_eq!(buf, b".\r\n");
/// ```
pub fn multiline_end<B: BufMut>(buf: &mut B) {
    buf.put_slice(b".\r\n");
}

/// Write a status line, `indicator [code] text\r\n`, within [`MAX_LINE_LEN`].
fn status<B: BufMut>(buf: &mut B, indicator: &str, code: Option<RespCode>, text: &str) {
    let code = code.map(RespCode::as_str);
    crate::wire::status_line(buf, indicator, code, text, MAX_LINE_LEN);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut buf = Vec::new();
        write(&mut buf);
        buf
    }

    /// Exactly one CRLF, at the end, and no other control byte.
    fn assert_one_line(bytes: &[u8]) {
        let body = bytes.strip_suffix(b"\r\n").expect("ends with CRLF");
        assert!(
            !body.iter().any(|&b| b < 0x20 || b == 0x7f),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(encode(|b| ok(b, "POP3 ready")), b"+OK POP3 ready\r\n");
        assert_eq!(encode(|b| ok(b, "")), b"+OK\r\n");
        assert_eq!(encode(|b| ok(b, " \r\n ")), b"+OK\r\n");
        assert_eq!(encode(|b| err(b, "Nope")), b"-ERR Nope\r\n");
        assert_eq!(encode(|b| err(b, "")), b"-ERR\r\n");
        assert_eq!(
            encode(|b| err_code(b, RespCode::InUse, "Mailbox locked")),
            b"-ERR [IN-USE] Mailbox locked\r\n"
        );
        assert_eq!(
            encode(|b| err_code(b, RespCode::SysPerm, "")),
            b"-ERR [SYS/PERM]\r\n"
        );
        assert_eq!(encode(|b| continuation(b, "PDE4OTYu")), b"+ PDE4OTYu\r\n");
        assert_eq!(encode(|b| continuation(b, "\r\n")), b"+ \r\n");
        assert_eq!(encode(multiline_end), b".\r\n");
    }

    #[test]
    fn every_code_renders() {
        let codes = [
            (RespCode::Auth, "AUTH"),
            (RespCode::InUse, "IN-USE"),
            (RespCode::SysTemp, "SYS/TEMP"),
            (RespCode::SysPerm, "SYS/PERM"),
            (RespCode::LoginDelay, "LOGIN-DELAY"),
            (RespCode::Utf8, "UTF8"),
        ];
        for (code, text) in codes {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.to_string(), text);
            assert_eq!(
                encode(|b| err_code(b, code, "x")),
                format!("-ERR [{text}] x\r\n").as_bytes()
            );
        }
    }

    #[test]
    fn texts_cannot_break_framing() {
        let nasty = "a\rb\nc\r\n.\r\n+OK forged\0\x1b[2J\x7f\u{85}\u{9b}end";
        for bytes in [
            encode(|b| ok(b, nasty)),
            encode(|b| err(b, nasty)),
            encode(|b| err_code(b, RespCode::Auth, nasty)),
            encode(|b| continuation(b, nasty)),
            encode(|b| line(b, nasty)),
        ] {
            assert_one_line(&bytes);
            assert!(
                String::from_utf8(bytes.clone())
                    .unwrap()
                    .contains("abc.+OK forged[2Jend")
            );
        }
    }

    #[test]
    fn status_lines_fit_512_octets() {
        let long = "x".repeat(2000);
        for bytes in [
            encode(|b| ok(b, &long)),
            encode(|b| err(b, &long)),
            encode(|b| err_code(b, RespCode::LoginDelay, &long)),
        ] {
            assert_eq!(bytes.len(), MAX_LINE_LEN);
            assert_one_line(&bytes);
        }
        // Multi-byte characters are never split.
        let wide = "é".repeat(600);
        let bytes = encode(|b| err(b, &wide));
        assert!(bytes.len() <= MAX_LINE_LEN);
        assert!(String::from_utf8(bytes).is_ok());
        // Lines that need no cut are left alone.
        let fits = "y".repeat(MAX_LINE_LEN - "+OK \r\n".len());
        assert_eq!(encode(|b| ok(b, &fits)).len(), MAX_LINE_LEN);
    }

    #[test]
    fn multiline_lines_are_dot_stuffed() {
        assert_eq!(encode(|b| line(b, ".")), b"..\r\n");
        assert_eq!(encode(|b| line(b, ".hidden")), b"..hidden\r\n");
        assert_eq!(encode(|b| line(b, "\r\n.")), b"..\r\n");
        assert_eq!(encode(|b| line(b, "1 a.b")), b"1 a.b\r\n");
        assert_eq!(encode(|b| line(b, "")), b"\r\n");
    }

    #[test]
    fn works_with_bytes_mut() {
        let mut buf = bytes::BytesMut::new();
        ok(&mut buf, "1 messages");
        line(&mut buf, "1 120");
        multiline_end(&mut buf);
        assert_eq!(&buf[..], b"+OK 1 messages\r\n1 120\r\n.\r\n");
    }
}
