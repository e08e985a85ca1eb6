//! The one-pass digest schemes: `{SHA}`/`{SHA1}`, `{SHA256}`, `{SHA512}`, `{PLAIN-MD5}`,
//! `{LDAP-MD5}`, and their salted forms `{SSHA}`, `{SSHA256}`, `{SSHA512}`, `{SMD5}`, whose data
//! is digest(password + salt) followed by the salt. Fast by design, so weak against a stolen
//! file; supported because existing installations hold them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

/// The hash function of a digest scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    fn output_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    /// The digest of `password` followed by `salt`.
    fn digest(self, password: &[u8], salt: &[u8]) -> Vec<u8> {
        fn run<D: sha2::Digest>(password: &[u8], salt: &[u8]) -> Vec<u8> {
            D::new()
                .chain_update(password)
                .chain_update(salt)
                .finalize()
                .to_vec()
        }
        match self {
            Algorithm::Md5 => run::<md5::Md5>(password, salt),
            Algorithm::Sha1 => run::<sha1::Sha1>(password, salt),
            Algorithm::Sha256 => run::<sha2::Sha256>(password, salt),
            Algorithm::Sha512 => run::<sha2::Sha512>(password, salt),
        }
    }
}

/// How a scheme's bytes are written: Dovecot's `.HEX` and `.B64` (or `.BASE64`) suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Hex,
    Base64,
}

impl Encoding {
    /// The encoding a scheme-name suffix names, case-insensitively.
    pub(super) fn from_suffix(suffix: &str) -> Result<Encoding, &'static str> {
        match suffix.to_ascii_uppercase().as_str() {
            "HEX" => Ok(Encoding::Hex),
            "B64" | "BASE64" => Ok(Encoding::Base64),
            _ => Err("unknown encoding suffix (known: .HEX, .B64, .BASE64)"),
        }
    }

    pub(super) fn decode(self, data: &str) -> Result<Vec<u8>, &'static str> {
        match self {
            Encoding::Hex => decode_hex(data).ok_or("invalid hex"),
            // Canonical padded base64, as Dovecot and every LDAP tool write it.
            Encoding::Base64 => STANDARD.decode(data).map_err(|_| "invalid base64"),
        }
    }
}

fn decode_hex(data: &str) -> Option<Vec<u8>> {
    if !data.len().is_multiple_of(2) {
        return None;
    }
    data.as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            // `from_str_radix` alone would take a sign.
            pair.iter()
                .all(u8::is_ascii_hexdigit)
                .then(|| u8::from_str_radix(text, 16).ok())
                .flatten()
        })
        .collect()
}

/// A digest scheme's stored value.
pub(super) struct Digest {
    algorithm: Algorithm,
    digest: Box<[u8]>,
    /// Empty for the unsalted schemes.
    salt: Box<[u8]>,
}

/// Parses a digest scheme's data written in `encoding`. With `guess` (no suffix named the
/// encoding), an unsalted digest written as hex of the right length is read as hex, as Dovecot
/// does, so `{SHA256}` takes `doveadm pw -s SHA256.HEX` output too.
pub(super) fn parse(
    data: &str,
    algorithm: Algorithm,
    salted: bool,
    encoding: Encoding,
    guess: bool,
) -> Result<Digest, &'static str> {
    let len = algorithm.output_len();
    let guessed_hex = guess && !salted && data.len() == 2 * len;
    let bytes = match guessed_hex.then(|| decode_hex(data)).flatten() {
        Some(bytes) => bytes,
        None => encoding.decode(data)?,
    };
    let (digest, salt) = match (salted, bytes.len().cmp(&len)) {
        (false, std::cmp::Ordering::Equal) | (true, std::cmp::Ordering::Greater) => {
            bytes.split_at(len)
        }
        (false, _) => return Err("digest of the wrong length for the scheme"),
        (true, _) => return Err("salted digest without a salt"),
    };
    Ok(Digest {
        algorithm,
        digest: digest.into(),
        salt: salt.into(),
    })
}

impl Digest {
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let computed = self.algorithm.digest(password, &self.salt);
        computed.ct_eq(&self.digest).into()
    }

    pub(super) fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_strict() {
        assert_eq!(decode_hex("00ff7F"), Some(vec![0, 255, 127]));
        assert_eq!(decode_hex(""), Some(vec![]));
        for bad in ["0", "0g", "+1", "-1", " 1", "é1"] {
            assert_eq!(decode_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn encodings_by_suffix() {
        assert_eq!(Encoding::from_suffix("hex"), Ok(Encoding::Hex));
        assert_eq!(Encoding::from_suffix("b64"), Ok(Encoding::Base64));
        assert_eq!(Encoding::from_suffix("BASE64"), Ok(Encoding::Base64));
        assert!(Encoding::from_suffix("b32").is_err());
    }
}
