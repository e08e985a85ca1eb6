//! Dovecot's `{PBKDF2}`: `$1$salt$rounds$key`, PBKDF2-HMAC-SHA1 of the password with the salt
//! text as salt, a 20-byte key written as 40 hex digits (Dovecot's
//! `src/auth/password-scheme-pbkdf2.c`).

use subtle::ConstantTimeEq;

use super::digests::Encoding;
use super::secret::{Cost, MAX_PBKDF2_ROUNDS, decimal};

/// A parsed `{PBKDF2}` value.
pub(super) struct Pbkdf2 {
    salt: Box<str>,
    rounds: u32,
    key: [u8; 20],
}

pub(super) fn parse(data: &str) -> Result<Pbkdf2, &'static str> {
    let fields: Vec<&str> = data
        .strip_prefix("$1$")
        .ok_or("PBKDF2 value without the $1$ prefix")?
        .split('$')
        .collect();
    let [salt, rounds, key] = fields[..] else {
        return Err("PBKDF2 value with the wrong fields ($1$salt$rounds$key)");
    };
    let rounds = decimal(rounds)
        .filter(|&rounds| rounds > 0)
        .ok_or("PBKDF2 rounds not a positive number")?;
    if rounds > MAX_PBKDF2_ROUNDS {
        return Err("PBKDF2 rounds above the limit (2000000)");
    }
    let key = Encoding::Hex
        .decode(key)?
        .try_into()
        .map_err(|_| "PBKDF2 key not 40 hex digits")?;
    Ok(Pbkdf2 {
        salt: salt.into(),
        rounds,
        key,
    })
}

impl Pbkdf2 {
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let mut key = [0u8; 20];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, self.salt.as_bytes(), self.rounds, &mut key);
        key.ct_eq(&self.key).into()
    }

    pub(super) fn cost(&self) -> Cost {
        Cost::Pbkdf2 {
            rounds: self.rounds,
        }
    }
}
