//! Content-Transfer-Encodings removed (RFC 2045 section 6), for BINARY (RFC 3516).
//!
//! Decoding is as lenient as RFC 2045 asks decoders to be, so that every part has a decoded
//! form and one stray octet does not hide a whole attachment:
//!
//! - base64 ignores every character outside its alphabet (section 6.8: they "must be
//!   ignored"), line breaks included, and a last group of one character, which holds no whole
//!   octet;
//! - quoted-printable deletes the blanks at the end of each line (rule 3) and keeps an `=`
//!   that starts neither an escape (two hex digits, in either case) nor a soft line break as
//!   the `=` it is (section 6.7, notes (1) and (2)); line breaks are kept as they are.
//!
//! Neither grows: a part decodes to at most as many octets as it has.

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode_char;

use super::params;

/// A Content-Transfer-Encoding this server can remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// `7bit` and `8bit`: lines of text, nothing to remove.
    Lines,
    /// `binary`: any octets, nothing to remove.
    Binary,
    Base64,
    QuotedPrintable,
}

impl Encoding {
    /// The encoding the part with header `block` declares (`7bit` when it declares none);
    /// `None` for one this server does not know (`x-uuencode`, ...).
    pub(super) fn of(block: &[u8]) -> Option<Encoding> {
        Some(match params::transfer_encoding(block).as_str() {
            "7BIT" | "8BIT" => Encoding::Lines,
            "BINARY" => Encoding::Binary,
            "BASE64" => Encoding::Base64,
            "QUOTED-PRINTABLE" => Encoding::QuotedPrintable,
            _ => return None,
        })
    }

    /// `encoded` with this encoding removed: borrowed for the encodings that change nothing.
    pub(super) fn decode(self, encoded: &[u8]) -> Cow<'_, [u8]> {
        match self {
            Encoding::Lines | Encoding::Binary => Cow::Borrowed(encoded),
            Encoding::Base64 => Cow::Owned(base64(encoded)),
            Encoding::QuotedPrintable => Cow::Owned(quoted_printable(encoded)),
        }
    }
}

fn base64(encoded: &[u8]) -> Vec<u8> {
    // mail-parser's decoder skips blanks and line breaks, but refuses (or stops at) any other
    // character outside the alphabet: those are left out first, copying only such parts.
    let decoded = match encoded.iter().all(|&b| taken_by_decoder(b)) {
        true => base64_decode(encoded),
        false => {
            let kept: Vec<u8> = encoded
                .iter()
                .copied()
                .filter(|&b| taken_by_decoder(b))
                .collect();
            base64_decode(&kept)
        }
    };
    // Never `None`: the decoder refuses only octets that are no longer there.
    decoded.unwrap_or_default()
}

/// The octets mail-parser's base64 decoder takes: the alphabet, the padding `=`, and the
/// blanks and line breaks it skips.
fn taken_by_decoder(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b' ' | b'\t' | b'\r' | b'\n')
}

fn quoted_printable(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len());
    for line in encoded.split_inclusive(|&b| b == b'\n') {
        let text_len = match line {
            [text @ .., b'\r', b'\n'] | [text @ .., b'\n'] => text.len(),
            text => text.len(),
        };
        let (text, line_break) = line.split_at(text_len);
        // Blanks at the end of a line were added in transport (rule 3); so were those between
        // a soft line break's `=` and the line break.
        let text = trim_end_blanks(text);
        match text.strip_suffix(b"=") {
            Some(text) => unescape(text, &mut out),
            None => {
                unescape(text, &mut out);
                out.extend_from_slice(line_break);
            }
        }
    }
    out
}

/// `text` with its `=XX` escapes decoded; any other `=` is kept.
fn unescape(text: &[u8], out: &mut Vec<u8>) {
    let mut rest = text;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'='
            && let [high, low, after @ ..] = tail
            && let Some(octet) = quoted_printable_decode_char(*high, *low)
        {
            out.push(octet);
            rest = after;
        } else {
            out.push(b);
            rest = tail;
        }
    }
}

fn trim_end_blanks(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |last| last + 1);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(encoding: Encoding, encoded: &[u8]) -> Vec<u8> {
        let decoded = encoding.decode(encoded).into_owned();
        assert!(decoded.len() <= encoded.len(), "decoding never grows");
        decoded
    }

    #[test]
    fn encodings_are_named_in_any_case_and_default_to_7bit() {
        let of = |header: &[u8]| Encoding::of(header);
        assert_eq!(of(b"Subject: x\r\n\r\n"), Some(Encoding::Lines));
        assert_eq!(
            of(b"Content-Transfer-Encoding: 8Bit\r\n\r\n"),
            Some(Encoding::Lines)
        );
        assert_eq!(
            of(b"Content-Transfer-Encoding: BINARY\r\n\r\n"),
            Some(Encoding::Binary)
        );
        assert_eq!(
            of(b"Content-Transfer-Encoding: base64 (a comment)\r\n\r\n"),
            Some(Encoding::Base64)
        );
        assert_eq!(
            of(b"Content-Transfer-Encoding: Quoted-Printable\r\n\r\n"),
            Some(Encoding::QuotedPrintable)
        );
        assert_eq!(of(b"Content-Transfer-Encoding: x-uuencode\r\n\r\n"), None);
    }

    #[test]
    fn identity_encodings_borrow() {
        assert!(matches!(
            Encoding::Binary.decode(b"a\0b"),
            Cow::Borrowed(b"a\0b")
        ));
        assert!(matches!(Encoding::Lines.decode(b"a\r\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn base64_across_lines_with_padding() {
        // "Hello\0World\n" in lines of 8, as a mailer folds it.
        let encoded = b"SGVsbG8A\r\nV29ybGQK\r\n";
        assert_eq!(decode(Encoding::Base64, encoded), b"Hello\0World\n");
        assert_eq!(decode(Encoding::Base64, b"QQ==\r\n"), b"A");
        assert_eq!(decode(Encoding::Base64, b"QUI=\r\n"), b"AB");
        assert_eq!(decode(Encoding::Base64, b""), b"");
    }

    #[test]
    fn base64_ignores_characters_outside_its_alphabet() {
        // A stray `*`, a `-` line and an 0xFF octet (where mail-parser's decoder would stop).
        let encoded = b"SGVs*bG8A\r\n--\r\nV29y\xffbGQK\r\n";
        assert_eq!(decode(Encoding::Base64, encoded), b"Hello\0World\n");
        // A last group of one character holds no octet.
        assert_eq!(decode(Encoding::Base64, b"QUJD\r\nR"), b"ABC");
    }

    #[test]
    fn quoted_printable_escapes_soft_breaks_and_trailing_blanks() {
        let encoded = b"caf=C3=A9 =\r\nau lait  \r\nsoft=  \r\nend=3d=0A\r\nlast";
        assert_eq!(
            decode(Encoding::QuotedPrintable, encoded),
            b"caf\xc3\xa9 au lait\r\nsoftend=\n\r\nlast"
        );
    }

    #[test]
    fn quoted_printable_keeps_an_equals_sign_that_escapes_nothing() {
        let encoded = b"https://x.example/?id=xyz&a==4\r\n=G1 =4\r\n==\r\n";
        assert_eq!(
            decode(Encoding::QuotedPrintable, encoded),
            b"https://x.example/?id=xyz&a==4\r\n=G1 =4\r\n="
        );
    }
}
