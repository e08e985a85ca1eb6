//! Dovecot's `{SCRAM-SHA-256}`: `iterations,salt,StoredKey,ServerKey`, the last three in
//! base64 (Dovecot's `src/auth/password-scheme-scram.c`). The keys serve the SCRAM-SHA-256
//! mechanism without the password; a plaintext login (LOGIN, PLAIN) is checked by deriving
//! them again from the password.

use super::secret::{Cost, MAX_SCRAM_ITERATIONS, decimal};
use crate::auth::{ScramKeys, ScramParameters};

/// A parsed `{SCRAM-SHA-256}` value.
pub(super) struct ScramEntry {
    pub(super) parameters: ScramParameters,
    pub(super) keys: ScramKeys,
}

pub(super) fn parse(data: &str) -> Result<ScramEntry, &'static str> {
    let fields: Vec<&str> = data.split(',').collect();
    let [iterations, salt, stored_key, server_key] = fields[..] else {
        return Err(
            "SCRAM-SHA-256 value with the wrong fields (iterations,salt,StoredKey,ServerKey)",
        );
    };
    let iterations = decimal(iterations)
        .filter(|&n| n >= ScramParameters::MIN_ITERATIONS)
        .ok_or("SCRAM-SHA-256 iterations not a number of at least 4096")?;
    if iterations > MAX_SCRAM_ITERATIONS {
        return Err("SCRAM-SHA-256 iterations above the limit (1000000)");
    }
    let salt = base64(salt)
        .filter(|salt| !salt.is_empty())
        .ok_or("SCRAM-SHA-256 salt not base64")?;
    let key = |text| {
        base64(text)
            .and_then(|key| <[u8; 32]>::try_from(key).ok())
            .ok_or("SCRAM-SHA-256 key not 32 bytes of base64")
    };
    Ok(ScramEntry {
        keys: ScramKeys::new(key(stored_key)?, key(server_key)?),
        parameters: ScramParameters::new(salt, iterations),
    })
}

fn base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

impl ScramEntry {
    /// Whether `password` is the one the keys were made from.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let ScramParameters {
            salt, iterations, ..
        } = &self.parameters;
        self.keys.matches_password(password, salt, *iterations)
    }

    pub(super) fn cost(&self) -> Cost {
        Cost::Scram {
            iterations: self.parameters.iterations,
        }
    }
}
