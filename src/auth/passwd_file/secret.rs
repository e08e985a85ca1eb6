//! A stored password: the `{SCHEME}` prefix read, the data checked at load time, the cost
//! bounded, and a presented password checked against it.

use subtle::ConstantTimeEq;

use super::argon2_phc::{self, Argon2Hash};
use super::crypt::{self, BcryptHash, CryptFormat, ShaCryptHash};
use super::digests::{self, Algorithm, Digest, Encoding};
use super::md5_crypt::Md5Crypt;
use super::pbkdf2_sha1::{self, Pbkdf2};
use super::scram_sha256::{self, ScramEntry};
use crate::auth::{ScramKeys, ScramProof};

/// The longest password a login may present, in bytes; longer ones fail as a wrong password,
/// before any hashing, for known and unknown users alike. SHA-crypt hashes the password once
/// per round, so its cost grows with the length; 256 bytes is far beyond what people and
/// password managers use (libxcrypt's crypt(3) stops at 512).
pub(super) const MAX_PASSWORD_BYTES: usize = 256;
/// BLF-CRYPT's cost is a power of two: 12 takes about 0.5 s of one core on the slow machine the
/// limits were measured on, 13 about 1 s. Dovecot writes 5 by default.
pub(super) const MAX_BCRYPT_COST: u32 = 13;
/// SHA512-CRYPT with 200,000 rounds takes about 0.2 s there with a 10-byte password, 1.4 s with
/// a 256-byte one. glibc's default is 5,000.
pub(super) const MAX_SHA_CRYPT_ROUNDS: u32 = 200_000;
/// PBKDF2-HMAC-SHA1 with 2,000,000 rounds takes about 0.45 s there. Dovecot writes 5,000.
pub(super) const MAX_PBKDF2_ROUNDS: u32 = 2_000_000;
/// SCRAM-SHA-256's iterations (PBKDF2-HMAC-SHA-256, checked for a plaintext login): 1,000,000
/// take about as long as PBKDF2-HMAC-SHA1's limit. Dovecot writes 4,096.
pub(super) const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;
/// Argon2's memory, in KiB: 256 MiB. Dovecot writes 64 MiB (ARGON2ID) or 32 MiB (ARGON2I).
pub(super) const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;
/// Argon2's work, memory (KiB) × passes: 512 MiB·passes, about 1 s there. Dovecot's ARGON2ID
/// (64 MiB, 3 passes) is 192 MiB·passes.
pub(super) const MAX_ARGON2_WORK: u64 = 512 * 1024;

/// A stored password. Deliberately not `Debug`, so that it cannot end up in a log by accident.
pub(super) enum Secret {
    /// `{PLAIN}`, `{CLEAR}`, `{CLEARTEXT}`. Never empty.
    Plain(Box<[u8]>),
    /// `{SHA}`, `{SSHA512}`, `{PLAIN-MD5}` and the other one-pass digests.
    Digest(Digest),
    /// `{ARGON2ID}`, `{ARGON2I}`. Boxed: a PHC string's parts are several times the size of
    /// the other variants.
    Argon2(Box<Argon2Hash>),
    /// `$5$`, `$6$`.
    ShaCrypt(ShaCryptHash),
    /// `$2y$`, `$2b$`, `$2a$`.
    Bcrypt(BcryptHash),
    /// `$1$`.
    Md5Crypt(Md5Crypt),
    /// `{PBKDF2}$1$…`.
    Pbkdf2(Pbkdf2),
    /// `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey`.
    Scram(ScramEntry),
}

/// What checking a password against a [`Secret`] costs, as far as an observer could tell
/// secrets apart by it: the scheme and its cost parameters, not the salt or the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Cost {
    Plain,
    Digest(Algorithm),
    Argon2 {
        memory: u32,
        passes: u32,
        lanes: u32,
    },
    ShaCrypt {
        format: CryptFormat,
        rounds: u32,
    },
    Bcrypt {
        cost: u32,
    },
    Md5Crypt,
    Pbkdf2 {
        rounds: u32,
    },
    Scram {
        iterations: u32,
    },
}

impl Secret {
    /// Parses a passwd-file password field: `{SCHEME}data`, or `data` alone, which a passwd-file
    /// reads as `{CRYPT}`. The scheme name is case-insensitive and may end in `.HEX`, `.B64` or
    /// `.BASE64` (how a digest, or a plain password, is written). The error is a reason fit for
    /// a log: it never quotes the field.
    pub(super) fn parse(field: &str) -> Result<Secret, &'static str> {
        let (scheme, data) = match field.strip_prefix('{') {
            None => ("CRYPT", field),
            Some(rest) => rest.split_once('}').ok_or("unterminated {SCHEME} prefix")?,
        };
        if data.is_empty() {
            // Letting an empty password in is never what a line like `user:{PLAIN}` means.
            return Err("empty password");
        }
        let (name, encoding) = match scheme.split_once('.') {
            None => (scheme, None),
            Some((name, suffix)) => (name, Some(Encoding::from_suffix(suffix)?)),
        };
        let name = name.to_ascii_uppercase();
        let digest = |algorithm, salted, default| {
            digests::parse(
                data,
                algorithm,
                salted,
                encoding.unwrap_or(default),
                encoding.is_none(),
            )
            .map(Secret::Digest)
        };
        match name.as_str() {
            "PLAIN" | "CLEAR" | "CLEARTEXT" => plain(data, encoding),
            // Dovecot's MD5 is MD5-CRYPT, or PLAIN-MD5 for data that is not `$1$…`.
            "MD5" if encoding.is_none() && data.starts_with("$1$") => {
                crypt::parse(data, Some(CryptFormat::Md5))
            }
            "MD5" | "PLAIN-MD5" => digest(Algorithm::Md5, false, Encoding::Hex),
            "LDAP-MD5" => digest(Algorithm::Md5, false, Encoding::Base64),
            "SMD5" => digest(Algorithm::Md5, true, Encoding::Base64),
            "SHA" | "SHA1" => digest(Algorithm::Sha1, false, Encoding::Base64),
            "SSHA" => digest(Algorithm::Sha1, true, Encoding::Base64),
            "SHA256" => digest(Algorithm::Sha256, false, Encoding::Base64),
            "SSHA256" => digest(Algorithm::Sha256, true, Encoding::Base64),
            "SHA512" => digest(Algorithm::Sha512, false, Encoding::Base64),
            "SSHA512" => digest(Algorithm::Sha512, true, Encoding::Base64),
            // The schemes below are written as text.
            _ if encoding.is_some() => {
                Err("an encoding suffix (.HEX, .B64) on a scheme that takes none")
            }
            "CRYPT" => crypt::parse(data, None),
            "SHA512-CRYPT" => crypt::parse(data, Some(CryptFormat::Sha512)),
            "SHA256-CRYPT" => crypt::parse(data, Some(CryptFormat::Sha256)),
            "BLF-CRYPT" => crypt::parse(data, Some(CryptFormat::Blowfish)),
            "MD5-CRYPT" => crypt::parse(data, Some(CryptFormat::Md5)),
            "PBKDF2" => pbkdf2_sha1::parse(data).map(Secret::Pbkdf2),
            "SCRAM-SHA-256" => scram_sha256::parse(data).map(Secret::Scram),
            "ARGON2ID" => argon2_phc::parse(data, argon2::Algorithm::Argon2id)
                .map(Box::new)
                .map(Secret::Argon2),
            "ARGON2I" => argon2_phc::parse(data, argon2::Algorithm::Argon2i)
                .map(Box::new)
                .map(Secret::Argon2),
            _ => Err("unsupported password scheme (see PasswdFile's documentation for the list)"),
        }
    }

    /// Whether `password` is this password. Constant-time in the stored value; the work depends
    /// only on the scheme, its cost, and the length of `password`. Costly schemes take up to
    /// about a second of CPU (see the limits above): call [`is_costly`](Secret::is_costly)
    /// ones off the async threads.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        match self {
            Secret::Plain(stored) => plain_eq(password, stored),
            Secret::Digest(digest) => digest.verify(password),
            Secret::Argon2(hash) => hash.verify(password),
            Secret::ShaCrypt(hash) => hash.verify(password),
            Secret::Bcrypt(hash) => hash.verify(password),
            Secret::Md5Crypt(hash) => hash.verify(password),
            Secret::Pbkdf2(hash) => hash.verify(password),
            Secret::Scram(entry) => entry.verify(password),
        }
    }

    /// Whether the SCRAM-SHA-256 mechanism can use this entry: it holds the keys, or the
    /// password to derive them from. Hashes of other kinds cannot serve it.
    pub(super) fn serves_scram(&self) -> bool {
        matches!(self, Secret::Plain(_) | Secret::Scram(_))
    }

    /// Whether a SCRAM client's `proof` proves this password. For `{PLAIN}` entries the keys
    /// are derived first, with the proof's salt and iterations: as costly as a plaintext check
    /// of a `{SCRAM-SHA-256}` entry ([`scram_is_costly`](Secret::scram_is_costly)).
    pub(super) fn verify_scram(&self, proof: &ScramProof) -> bool {
        match self {
            Secret::Scram(entry) => proof.verify(&entry.keys),
            Secret::Plain(password) => proof.verify(&ScramKeys::derive(
                password,
                proof.salt(),
                proof.iterations(),
            )),
            _ => false,
        }
    }

    /// Whether [`verify_scram`](Secret::verify_scram) derives keys.
    pub(super) fn scram_is_costly(&self) -> bool {
        matches!(self, Secret::Plain(_))
    }

    /// Whether checking takes more than a few microseconds: the schemes made to be slow.
    pub(super) fn is_costly(&self) -> bool {
        !matches!(self, Secret::Plain(_) | Secret::Digest(_))
    }

    pub(super) fn cost(&self) -> Cost {
        match self {
            Secret::Plain(_) => Cost::Plain,
            Secret::Digest(digest) => Cost::Digest(digest.algorithm()),
            Secret::Argon2(hash) => hash.cost(),
            Secret::ShaCrypt(hash) => hash.cost(),
            Secret::Bcrypt(hash) => hash.cost(),
            Secret::Md5Crypt(_) => Cost::Md5Crypt,
            Secret::Pbkdf2(hash) => hash.cost(),
            Secret::Scram(entry) => entry.cost(),
        }
    }
}

fn plain(data: &str, encoding: Option<Encoding>) -> Result<Secret, &'static str> {
    let stored: Box<[u8]> = match encoding {
        None => data.as_bytes().into(),
        Some(encoding) => encoding.decode(data)?.into(),
    };
    if stored.is_empty() {
        return Err("empty password");
    }
    if stored.len() > MAX_PASSWORD_BYTES {
        return Err("password longer than a login may present (256 bytes)");
    }
    Ok(Secret::Plain(stored))
}

/// Compares without letting the content, or the stored length, decide how long it takes.
pub(super) fn plain_eq(presented: &[u8], stored: &[u8]) -> bool {
    if stored.is_empty() {
        // Unreachable for parsed entries; guards the modulo below.
        return false;
    }
    // The loop runs over the presented bytes, whose length the client knows anyway, and wraps
    // around the stored bytes instead of stopping at their end.
    let mut same = presented.len().ct_eq(&stored.len());
    for (i, byte) in presented.iter().enumerate() {
        same &= byte.ct_eq(&stored[i % stored.len()]);
    }
    same.into()
}

/// Reads a decimal cost parameter as crypt(3) and Dovecot write it: digits only, no sign, no
/// leading zero, within `u32`.
pub(super) fn decimal(text: &str) -> Option<u32> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_eq_compares_whole_values() {
        assert!(plain_eq(b"secret", b"secret"));
        assert!(!plain_eq(b"secreT", b"secret"));
        assert!(!plain_eq(b"secret", b"secrets"));
        assert!(!plain_eq(b"secrets", b"secret"));
        assert!(
            !plain_eq(b"secretsecret", b"secret"),
            "wrap-around is no match"
        );
        assert!(!plain_eq(b"", b"secret"));
        assert!(!plain_eq(b"", b""));
    }

    #[test]
    fn decimal_is_canonical() {
        assert_eq!(decimal("5000"), Some(5000));
        assert_eq!(decimal("0"), Some(0));
        for bad in ["", "05000", "+5", "-5", "5 ", "1e3", "4294967296", "５"] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
    }
}
