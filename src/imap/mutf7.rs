//! Modified UTF-7 (RFC 3501 section 5.1.3), the form IMAP4rev1 gives international mailbox
//! names, and the one the stores keep them in (as Dovecot's Maildir++ does on disk).
//! IMAP4rev2 speaks UTF-8 instead (RFC 9051 section 5.1): a session that enabled it has its
//! names converted both ways, so rev1 and rev2 clients see the same mailboxes.

/// Modified BASE64: RFC 2045's alphabet with `,` for `/`, without padding.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Whether `c` stands for itself (printable US-ASCII); `&` too, written `&-`.
fn is_direct(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// `name` in modified UTF-7.
pub(super) fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(c) {
            shift_out(&mut out, &mut run);
            match c {
                '&' => out.push_str("&-"),
                c => out.push(c),
            }
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    shift_out(&mut out, &mut run);
    out
}

/// Write `run` (UTF-16 units) as `&...-`, and empty it.
fn shift_out(out: &mut String, run: &mut Vec<u16>) {
    if run.is_empty() {
        return;
    }
    out.push('&');
    let bytes: Vec<u8> = run.iter().flat_map(|unit| unit.to_be_bytes()).collect();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .chain(std::iter::repeat(&0))
            .take(3)
            .fold(0u32, |n, &b| (n << 8) | u32::from(b));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out.push('-');
    run.clear();
}

/// `name` from modified UTF-7; `None` if it is not valid modified UTF-7 (8-bit bytes, a
/// shift that is never closed, bad BASE64, or printable ASCII written shifted).
pub(super) fn decode(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'&' => {
                let len = bytes[i + 1..].iter().position(|&b| b == b'-')?;
                let run = &bytes[i + 1..i + 1 + len];
                match run.is_empty() {
                    true => out.push('&'),
                    false => out.push_str(&decode_run(run)?),
                }
                i += len + 2;
            }
            b @ 0x20..=0x7e => {
                out.push(char::from(b));
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The characters of one shifted run (between `&` and `-`).
fn decode_run(run: &[u8]) -> Option<String> {
    let (mut bits, mut held) = (0u32, 0u32);
    let mut units = Vec::with_capacity(run.len() * 6 / 16);
    for &b in run {
        let value = ALPHABET.iter().position(|&a| a == b)?;
        bits = (bits << 6) | value as u32;
        held += 6;
        if held >= 16 {
            held -= 16;
            units.push((bits >> held) as u16);
            bits &= (1 << held) - 1;
        }
    }
    // What is left must be padding: fewer than 6 bits, all zero.
    if held >= 6 || bits != 0 {
        return None;
    }
    let text = String::from_utf16(&units).ok()?;
    (!text.chars().any(is_direct)).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3501s_example_and_round_trips() {
        // RFC 3501 section 5.1.3's example.
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        for name in [
            "Entwürfe",
            "AT&T",
            "",
            "INBOX",
            "😀 emoji",
            "ü",
            "üü",
            "üüü",
        ] {
            assert_eq!(decode(&encode(name)).as_deref(), Some(name), "{name}");
        }
        assert_eq!(encode("AT&T"), "AT&-T");
    }

    #[test]
    fn invalid_forms_do_not_decode() {
        for bad in [
            "&Jjo",      // never closed
            "&Jj!-",     // not BASE64
            "&AGE-",     // "a", which stands for itself
            "&2D0-",     // half a surrogate pair
            "&AOw",      // unclosed
            "caf\u{e9}", // 8-bit
            "&AOx-",     // bits left over that are not zero
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
