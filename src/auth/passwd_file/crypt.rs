//! crypt(3) strings: `{CRYPT}` and its named forms SHA512-CRYPT (`$6$`), SHA256-CRYPT (`$5$`),
//! BLF-CRYPT (`$2y$`, `$2b$`, `$2a$`) and MD5-CRYPT (`$1$`). The format is told by the
//! string's prefix, as crypt(3) tells it; a named scheme must hold its own format.

use sha_crypt::{PasswordVerifier, ShaCrypt};

use super::md5_crypt::{self, CRYPT_ALPHABET};
use super::secret::{Cost, MAX_BCRYPT_COST, MAX_SHA_CRYPT_ROUNDS, Secret, decimal};

/// The crypt(3) formats supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum CryptFormat {
    Md5,
    Sha256,
    Sha512,
    Blowfish,
}

/// Parses a crypt(3) string; with `expected`, only that format (the scheme named it).
pub(super) fn parse(data: &str, expected: Option<CryptFormat>) -> Result<Secret, &'static str> {
    let format = format_of(data)?;
    if expected.is_some_and(|expected| expected != format) {
        return Err("crypt(3) string of another format than the {SCHEME} names");
    }
    match format {
        CryptFormat::Md5 => md5_crypt::parse(data).map(Secret::Md5Crypt),
        CryptFormat::Sha256 | CryptFormat::Sha512 => {
            ShaCryptHash::parse(data, format).map(Secret::ShaCrypt)
        }
        CryptFormat::Blowfish => BcryptHash::parse(data).map(Secret::Bcrypt),
    }
}

fn format_of(data: &str) -> Result<CryptFormat, &'static str> {
    let id = data
        .strip_prefix('$')
        .and_then(|rest| rest.split_once('$'))
        .map(|(id, _)| id);
    match id {
        Some("1") => Ok(CryptFormat::Md5),
        Some("5") => Ok(CryptFormat::Sha256),
        Some("6") => Ok(CryptFormat::Sha512),
        Some("2y" | "2b" | "2a") => Ok(CryptFormat::Blowfish),
        Some("2x") => Err("$2x$ (bcrypt with the 8-bit bug, for old hashes) is not supported"),
        Some("y" | "gy") => Err("yescrypt ($y$) is not supported"),
        _ => Err("not a supported crypt(3) string ($1$, $5$, $6$, $2a$, $2b$, $2y$)"),
    }
}

/// A checked `$5$[rounds=N$]salt$hash` or `$6$…` string.
pub(super) struct ShaCryptHash {
    /// The string as the file has it, which the sha-crypt crate verifies.
    text: Box<str>,
    format: CryptFormat,
    rounds: u32,
}

impl ShaCryptHash {
    /// Checks what the sha-crypt crate would otherwise read loosely: a `rounds=` field it
    /// cannot use becomes part of the salt there, while glibc clamps it and so never
    /// reproduces the string.
    fn parse(data: &str, format: CryptFormat) -> Result<ShaCryptHash, &'static str> {
        let hash_len = match format {
            CryptFormat::Sha256 => 43,
            _ => 86,
        };
        // `$6$` then the fields: [rounds=N$]salt$hash.
        let fields: Vec<&str> = data[3..].split('$').collect();
        let (rounds, salt, hash) = match fields[..] {
            [salt, hash] => (None, salt, hash),
            [rounds, salt, hash] if rounds.starts_with("rounds=") => (Some(rounds), salt, hash),
            _ => return Err("SHA-crypt string with the wrong fields"),
        };
        let rounds = match rounds {
            None => 5000,
            Some(field) => decimal(&field["rounds=".len()..])
                .filter(|rounds| (1000..=999_999_999).contains(rounds))
                .ok_or("SHA-crypt rounds not between 1000 and 999999999")?,
        };
        if rounds > MAX_SHA_CRYPT_ROUNDS {
            return Err("SHA-crypt rounds above the limit (200000)");
        }
        // glibc uses at most 16 salt characters and writes no more, so a longer salt never
        // verifies there.
        if salt.len() > 16 {
            return Err("SHA-crypt salt longer than 16 characters");
        }
        if hash.len() != hash_len || !hash.bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
            return Err("SHA-crypt hash of the wrong length or alphabet");
        }
        Ok(ShaCryptHash {
            text: data.into(),
            format,
            rounds,
        })
    }

    pub(super) fn verify(&self, password: &[u8]) -> bool {
        // The crate compares in constant time, and takes the algorithm from the string.
        ShaCrypt::default()
            .verify_password(password, &*self.text)
            .is_ok()
    }

    pub(super) fn cost(&self) -> Cost {
        Cost::ShaCrypt {
            format: self.format,
            rounds: self.rounds,
        }
    }
}

/// A checked `$2y$NN$` + 53 characters bcrypt string.
pub(super) struct BcryptHash {
    text: Box<str>,
    cost: u32,
}

impl BcryptHash {
    fn parse(data: &str) -> Result<BcryptHash, &'static str> {
        let parts: bcrypt::HashParts = data.parse().map_err(|_| "malformed bcrypt string")?;
        let cost = parts.get_cost();
        // The crate reads the cost with `parse`, which would take `+5`.
        let digits = data.as_bytes()[4..6].iter().all(u8::is_ascii_digit);
        if !digits || !(4..=31).contains(&cost) {
            return Err("bcrypt cost not between 04 and 31");
        }
        if cost > MAX_BCRYPT_COST {
            return Err("bcrypt cost above the limit (13)");
        }
        Ok(BcryptHash {
            text: data.into(),
            cost,
        })
    }

    pub(super) fn verify(&self, password: &[u8]) -> bool {
        // Like every bcrypt, only the first 72 bytes of the password count. The crate compares
        // in constant time; it fails only for a cost outside 4..=31, refused at load.
        bcrypt::verify(password, &self.text).unwrap_or(false)
    }

    pub(super) fn cost(&self) -> Cost {
        Cost::Bcrypt { cost: self.cost }
    }
}
