//! `{ARGON2ID}` and `{ARGON2I}`: a PHC string, `$argon2id$v=19$m=…,t=…,p=…$salt$hash`, as
//! written by `doveadm pw -s ARGON2ID` or `PasswdFile::hash_password`.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordVerifier, Version};

use super::secret::{Cost, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_WORK};

/// A checked Argon2 PHC string.
pub(super) struct Argon2Hash {
    hash: PasswordHash,
    params: Params,
}

/// Validates everything verification will need, so that a bad hash is reported at load time
/// rather than looking like a wrong password at every login.
pub(super) fn parse(data: &str, algorithm: Algorithm) -> Result<Argon2Hash, &'static str> {
    let hash = PasswordHash::new(data).map_err(|_| "malformed PHC string")?;
    // Verification follows the algorithm inside the PHC string, so a mismatch would silently
    // verify with a different algorithm than the scheme says.
    if hash.algorithm != algorithm.ident() {
        return Err("PHC algorithm does not match the {SCHEME}");
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("PHC string without salt or hash");
    }
    if let Some(version) = hash.version {
        Version::try_from(version).map_err(|_| "unsupported argon2 version")?;
    }
    let params = Params::try_from(&hash).map_err(|_| "invalid argon2 parameters")?;
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB {
        return Err("argon2 memory above the limit (m=262144, 256 MiB)");
    }
    if u64::from(params.m_cost()) * u64::from(params.t_cost()) > MAX_ARGON2_WORK {
        return Err("argon2 memory × passes above the limit (m×t = 524288, 512 MiB·passes)");
    }
    Ok(Argon2Hash { hash, params })
}

impl Argon2Hash {
    /// Verifies with the algorithm, version and cost recorded in the hash itself. The final
    /// comparison is constant-time (the phc crate's `Output` equality).
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        Argon2::default()
            .verify_password(password, &self.hash)
            .is_ok()
    }

    pub(super) fn cost(&self) -> Cost {
        Cost::Argon2 {
            memory: self.params.m_cost(),
            passes: self.params.t_cost(),
            lanes: self.params.p_cost(),
        }
    }
}
