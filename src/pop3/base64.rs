//! Strict base64 (RFC 4648 section 4, standard alphabet) for SASL exchanges.
//!
//! Strict because SASL data carries credentials: a lenient decoder that skips whitespace or
//! accepts missing padding lets two different client strings mean the same credentials, which
//! makes logs and rate limiting keyed on the raw text unreliable. Non-canonical encodings (unused
//! bits set in the last group) are rejected for the same reason.
//!
//! Crate-private for now; IMAP's AUTHENTICATE will reuse it once it moves to a shared place.

/// The input is not canonical padded base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidBase64;

const INVALID: u8 = 0xFF;

const DECODE: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decode `input`: its length must be a multiple of 4, `=` may only pad the last group, and no
/// whitespace is allowed anywhere. The empty string decodes to no bytes.
pub(crate) fn decode(input: &[u8]) -> Result<Vec<u8>, InvalidBase64> {
    if !input.len().is_multiple_of(4) {
        return Err(InvalidBase64);
    }
    let groups = input.len() / 4;
    let mut out = Vec::with_capacity(groups * 3);
    for (index, group) in input.chunks_exact(4).enumerate() {
        let padding = if index + 1 < groups {
            0
        } else if group[2] == b'=' && group[3] == b'=' {
            2
        } else if group[3] == b'=' {
            1
        } else {
            0
        };
        let mut bits: u32 = 0;
        // A `=` anywhere else maps to INVALID, so it is rejected here.
        for &c in &group[..4 - padding] {
            let value = DECODE[c as usize];
            if value == INVALID {
                return Err(InvalidBase64);
            }
            bits = (bits << 6) | u32::from(value);
        }
        bits <<= 6 * padding as u32;
        let bytes = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        let kept = 3 - padding;
        // The bits past the last kept byte must be zero, or two encodings would decode alike.
        if bytes[kept..].iter().any(|&b| b != 0) {
            return Err(InvalidBase64);
        }
        out.extend_from_slice(&bytes[..kept]);
    }
    Ok(out)
}

/// Encode `data` with padding. Only tests need it so far; server challenges will use it later.
#[cfg(test)]
pub(crate) fn encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let bits = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(bits >> (18 - 6 * i) & 0x3F) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let vectors: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(decode(encoded.as_bytes()).unwrap(), plain, "{encoded}");
            assert_eq!(encode(plain), encoded);
        }
    }

    #[test]
    fn all_bytes_round_trip() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let encoded = encode(&data[..len]);
            assert_eq!(decode(encoded.as_bytes()).unwrap(), &data[..len]);
        }
        assert_eq!(decode(b"+/+/").unwrap(), [0xFB, 0xFF, 0xBF]);
    }

    #[test]
    fn rejects_missing_or_misplaced_padding() {
        for bad in [
            "Zg", "Zg=", "Zm8", "Z", "Zg===", "Z===", "====", "=", "Zg==Zg==", "Z=g=", "Zm=v",
            "=Zm9",
        ] {
            assert_eq!(decode(bad.as_bytes()), Err(InvalidBase64), "{bad:?}");
        }
    }

    #[test]
    fn rejects_foreign_characters_and_whitespace() {
        for bad in [
            "Zm9v YmFy",
            "Zm9v\r\n",
            " Zm9v",
            "Zm9-",
            "Zm9_",
            "Zm9v\0\0\0\0",
            "Zm9\u{e9}",
        ] {
            assert_eq!(decode(bad.as_bytes()), Err(InvalidBase64), "{bad:?}");
        }
        assert_eq!(decode(b"Zm9\xff"), Err(InvalidBase64));
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // "Zh==" and "Zm9=" carry set bits that the padding says are unused.
        assert_eq!(decode(b"Zh=="), Err(InvalidBase64));
        assert_eq!(decode(b"Zm9="), Err(InvalidBase64));
        assert_eq!(decode(b"Zg==").unwrap(), b"f");
        assert_eq!(decode(b"Zm8=").unwrap(), b"fo");
    }
}
