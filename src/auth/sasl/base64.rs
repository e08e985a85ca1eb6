//! Strict base64 (RFC 4648 section 4, standard alphabet) for SASL exchanges, by the `base64`
//! crate that imap-codec decodes IMAP's AUTHENTICATE with.
//!
//! Strict because SASL data carries credentials: a lenient decoder that skips whitespace or
//! accepts missing padding lets two different client strings mean the same credentials, which
//! makes logs and rate limiting keyed on the raw text unreliable. Non-canonical encodings (unused
//! bits set in the last group) are rejected for the same reason. The crate's `STANDARD` engine
//! is all of that; the tests below pin it.

use ::base64::Engine;
use ::base64::engine::general_purpose::STANDARD;

/// The input is not canonical padded base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidBase64;

/// Decode `input`: its length must be a multiple of 4, `=` may only pad the last group, and no
/// whitespace is allowed anywhere. The empty string decodes to no bytes.
pub(crate) fn decode(input: &[u8]) -> Result<Vec<u8>, InvalidBase64> {
    STANDARD.decode(input).map_err(|_| InvalidBase64)
}

/// Encode `data` with padding: a SASL challenge, a SCRAM salt or signature.
pub(crate) fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
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
