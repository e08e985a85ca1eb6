//! MD5-CRYPT, `$1$salt$hash`: Poul-Henning Kamp's crypt(3) of FreeBSD 2, as glibc, libxcrypt
//! and Dovecot compute it. A fixed 1,000 rounds of MD5: weak, but common in old `/etc/shadow`
//! files and the passwd-files copied from them. Written here over the md-5 crate because the
//! one crate that has it (pwhash) brings an older generation of RustCrypto crates.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// crypt(3)'s base64 alphabet.
pub(super) const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 16 digest bytes are written 22 characters long.
const ENCODED_LEN: usize = 22;

/// A parsed `$1$salt$hash`.
pub(super) struct Md5Crypt {
    /// At most 8 bytes, without `$`.
    salt: Box<[u8]>,
    /// The 22 characters after the salt.
    hash: [u8; ENCODED_LEN],
}

/// Parses `$1$salt$hash`: a salt of at most 8 characters (crypt(3) uses no more), the hash in
/// crypt(3)'s base64 alphabet.
pub(super) fn parse(data: &str) -> Result<Md5Crypt, &'static str> {
    let rest = data.strip_prefix("$1$").ok_or("not an MD5-CRYPT string")?;
    let (salt, hash) = rest
        .split_once('$')
        .ok_or("MD5-CRYPT string without a hash")?;
    if salt.len() > 8 {
        return Err("MD5-CRYPT salt longer than 8 characters");
    }
    let hash: [u8; ENCODED_LEN] = hash
        .as_bytes()
        .try_into()
        .map_err(|_| "MD5-CRYPT hash of the wrong length")?;
    if !hash.iter().all(|b| CRYPT_ALPHABET.contains(b)) {
        return Err("MD5-CRYPT hash outside crypt(3)'s alphabet");
    }
    Ok(Md5Crypt {
        salt: salt.as_bytes().into(),
        hash,
    })
}

impl Md5Crypt {
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        md5_crypt(password, &self.salt).ct_eq(&self.hash).into()
    }
}

/// The 22 hash characters of MD5-crypt for `password` and `salt`.
fn md5_crypt(password: &[u8], salt: &[u8]) -> [u8; ENCODED_LEN] {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut context = Md5::new()
        .chain_update(password)
        .chain_update(b"$1$")
        .chain_update(salt);
    for chunk in password.chunks(alternate.len()) {
        context.update(&alternate[..chunk.len()]);
    }
    // The original's quirk: for each bit of the length, a NUL byte or the password's first.
    let mut length = password.len();
    while length > 0 {
        match length & 1 {
            1 => context.update([0u8]),
            _ => context.update(&password[..1]),
        }
        length >>= 1;
    }
    let mut digest = context.finalize();

    for round in 0..1000 {
        let mut context = Md5::new();
        if round % 2 == 1 {
            context.update(password);
        } else {
            context.update(digest);
        }
        if round % 3 != 0 {
            context.update(salt);
        }
        if round % 7 != 0 {
            context.update(password);
        }
        if round % 2 == 1 {
            context.update(digest);
        } else {
            context.update(password);
        }
        digest = context.finalize();
    }

    // Three bytes, in this order, make four characters, least significant bits first; the
    // last byte makes two.
    const GROUPS: [[usize; 3]; 5] = [[0, 6, 12], [1, 7, 13], [2, 8, 14], [3, 9, 15], [4, 10, 5]];
    let mut out = [0u8; ENCODED_LEN];
    let mut chars = out.iter_mut();
    let mut put = |value: u32, count: usize| {
        for (shift, slot) in (0..count).map(|i| 6 * i).zip(chars.by_ref()) {
            *slot = CRYPT_ALPHABET[(value >> shift) as usize & 63];
        }
    };
    for [a, b, c] in GROUPS {
        put(
            u32::from(digest[a]) << 16 | u32::from(digest[b]) << 8 | u32::from(digest[c]),
            4,
        );
    }
    put(u32::from(digest[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with libxcrypt (Python's `crypt.crypt` on Debian 12): an empty salt and password,
    /// an 8-character salt, and a password longer than the 16-byte digest.
    #[test]
    fn known_answers() {
        let long = "x".repeat(100);
        for (password, salt, hash) in [
            ("", "", "qRPK7m23GJusamGpoGLby/"),
            ("password", "saltstri", "qQY4WxjABChYG1ccLpfkz/"),
            (
                "Lorem ipsum dolor sit amet",
                "12345678",
                "Suzx8CrBlkNJwVHHHv5tZ.",
            ),
            (&long, "ab", "s5cdzXI1VZ8fHADCvf1uE1"),
        ] {
            let parsed = parse(&format!("$1${salt}${hash}")).unwrap();
            assert!(parsed.verify(password.as_bytes()), "{password:?}");
            assert!(!parsed.verify(b"wrong"), "{password:?}");
        }
    }

    #[test]
    fn malformed() {
        for bad in [
            "$1$",
            "$1$salt",
            "$2$salt$YMyguxXMBpd2TEZ.vS/3q1",
            "$1$saltstrin$YMyguxXMBpd2TEZ.vS/3q1",
            "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q",
            "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1x",
            "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q+",
            "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1$",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
