//! SCRAM-SHA-256's server side (RFC 5802, RFC 7677), as an authentication service sees it: the
//! look-up of a user's salt ([`ScramLookup`] → [`ScramParameters`]), the keys a server stores
//! instead of the password ([`ScramKeys`]), and the client's proof ([`ScramProof`]).
//!
//! The mechanism's messages are read in `auth::sasl`; this is the arithmetic.

use std::fmt;
use std::sync::{Arc, OnceLock};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::session::Session;

/// The length of SHA-256's output, and so of every SCRAM-SHA-256 key and proof.
const KEY_LEN: usize = 32;

/// What a SCRAM look-up service is asked: the user a client wants to log in as (the name as
/// the client sent it), and the session asking.
///
/// A look-up service is a `Service<ScramLookup, Response = ScramParameters, Error =
/// AuthError>` given to [`Mechanisms::scram`](super::sasl::Mechanisms::scram);
/// [`PasswdFile`](super::PasswdFile) is one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScramLookup {
    /// The user name as the client sent it.
    pub user: String,
    /// The session asking.
    pub session: Option<Arc<Session>>,
}

impl ScramLookup {
    /// A look-up for `user`, without a session.
    ///
    /// ```
    /// use tower_mail::auth::ScramLookup;
    /// assert_eq!(ScramLookup::new("alice").user, "alice");
    /// ```
    pub fn new(user: impl Into<String>) -> ScramLookup {
        ScramLookup {
            user: user.into(),
            session: None,
        }
    }
}

/// A user's SCRAM salt and iteration count: what the server's first message tells the client.
///
/// A look-up service answers with these for every name, known or not: RFC 5802 section 9
/// asks a server not to tell which users exist, so an unknown user (or one whose password
/// is stored in a form SCRAM cannot use) gets a salt made up from the name, the same at every
/// asking, and fails later, at the proof, like a wrong password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScramParameters {
    /// The salt the keys were derived with.
    pub salt: Vec<u8>,
    /// PBKDF2's iteration count: at least 4096 (RFC 7677 section 4).
    pub iterations: u32,
}

impl ScramParameters {
    /// The iteration count RFC 7677 asks for at least, and Dovecot writes by default.
    pub const MIN_ITERATIONS: u32 = 4096;

    /// A salt and an iteration count.
    ///
    /// ```
    /// use tower_mail::auth::ScramParameters;
    /// let parameters = ScramParameters::new(b"NaCl".to_vec(), ScramParameters::MIN_ITERATIONS);
    /// assert_eq!(parameters.iterations, 4096);
    /// ```
    pub fn new(salt: Vec<u8>, iterations: u32) -> ScramParameters {
        ScramParameters { salt, iterations }
    }
}

impl fmt::Debug for ScramParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramParameters")
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish()
    }
}

/// The two keys a SCRAM-SHA-256 server keeps for a user instead of the password: StoredKey
/// and ServerKey (RFC 5802 section 3). They let the server check a client's proof and prove
/// itself to the client, but do not let anyone who reads them log in.
///
/// ```
/// use tower_mail::auth::ScramKeys;
///
/// // RFC 7677 section 3: user "user", password "pencil".
/// let salt = [0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81];
/// let keys = ScramKeys::derive(b"pencil", &salt, 4096);
/// assert!(keys.matches_password(b"pencil", &salt, 4096));
/// assert!(!keys.matches_password(b"pencil!", &salt, 4096));
/// ```
#[derive(Clone)]
pub struct ScramKeys {
    stored_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
}

impl ScramKeys {
    /// The keys as stored: StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword,
    /// "Server Key").
    pub fn new(stored_key: [u8; 32], server_key: [u8; 32]) -> ScramKeys {
        ScramKeys {
            stored_key,
            server_key,
        }
    }

    /// The keys of `password` with `salt` and `iterations` rounds of PBKDF2-HMAC-SHA-256: what
    /// a server stores when a password is set. Costs the iterations in HMACs (about a
    /// millisecond for 4096 in an optimised build).
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
        let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, KEY_LEN>(password, salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        ScramKeys {
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// StoredKey.
    pub fn stored_key(&self) -> &[u8; 32] {
        &self.stored_key
    }

    /// ServerKey.
    pub fn server_key(&self) -> &[u8; 32] {
        &self.server_key
    }

    /// Whether `password` is the password these keys were derived from with `salt` and
    /// `iterations`: how a plaintext login (LOGIN, PLAIN) is checked against stored SCRAM
    /// keys. Costs what [`derive`](ScramKeys::derive) costs; compares in constant time.
    pub fn matches_password(&self, password: &[u8], salt: &[u8], iterations: u32) -> bool {
        let derived = ScramKeys::derive(password, salt, iterations);
        derived.stored_key.ct_eq(&self.stored_key).into()
    }
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScramKeys(<hidden>)")
    }
}

/// A SCRAM-SHA-256 client's proof, in [`Secret::Scram`](super::Secret::Scram): what an
/// authentication service checks, with [`verify`](ScramProof::verify), against the keys it
/// stores for the user.
///
/// The salt and iteration count are those the look-up gave the client: a service that derives
/// keys from a stored password (as [`PasswdFile`](super::PasswdFile) does for `{PLAIN}`
/// entries) derives them with these.
///
/// A proof the service accepted also yields the server's signature, which the client checks
/// to know it spoke to a server that holds the keys; a service that answers `Ok` without
/// calling `verify` (or after a failed `verify`) makes the login fail.
///
/// ```
/// use tower_mail::auth::{AuthError, Credentials, ScramKeys, Secret, User};
///
/// // An authentication service's answer for SCRAM, with the keys from its user table.
/// fn check(credentials: &Credentials, keys: &ScramKeys) -> Result<User, AuthError> {
///     match &credentials.secret {
///         Secret::Scram(proof) if proof.verify(keys) => Ok(User::new(credentials.user.clone())),
///         _ => Err(AuthError::InvalidCredentials),
///     }
/// }
/// # let _ = check;
/// ```
#[derive(Clone)]
pub struct ScramProof {
    parameters: ScramParameters,
    auth_message: Vec<u8>,
    client_proof: [u8; KEY_LEN],
    /// Set by a successful `verify`; shared with the mechanism, which sends it to the client.
    server_signature: Arc<OnceLock<[u8; KEY_LEN]>>,
}

impl ScramProof {
    /// A proof for the exchange whose AuthMessage (RFC 5802 section 3) is `auth_message`.
    #[cfg_attr(not(any(feature = "imap", feature = "pop3")), allow(dead_code))]
    pub(crate) fn new(
        parameters: ScramParameters,
        auth_message: Vec<u8>,
        client_proof: [u8; KEY_LEN],
    ) -> ScramProof {
        ScramProof {
            parameters,
            auth_message,
            client_proof,
            server_signature: Arc::default(),
        }
    }

    /// The salt the client was given.
    pub fn salt(&self) -> &[u8] {
        &self.parameters.salt
    }

    /// The iteration count the client was given.
    pub fn iterations(&self) -> u32 {
        self.parameters.iterations
    }

    /// Whether the client proved it knows the password behind `keys`: ClientKey recovered
    /// from the proof hashes to StoredKey. On success, the server's signature is kept for
    /// the mechanism's last message. Constant-time in the keys.
    pub fn verify(&self, keys: &ScramKeys) -> bool {
        let client_signature = hmac(&keys.stored_key, &self.auth_message);
        let mut client_key = self.client_proof;
        for (byte, mask) in client_key.iter_mut().zip(client_signature) {
            *byte ^= mask;
        }
        let stored_key: [u8; KEY_LEN] = Sha256::digest(client_key).into();
        let matched: bool = stored_key.ct_eq(&keys.stored_key).into();
        if matched {
            // A second success with other keys cannot change what the client is told.
            let _ = self
                .server_signature
                .set(hmac(&keys.server_key, &self.auth_message));
        }
        matched
    }

    /// ServerSignature, once [`verify`](ScramProof::verify) accepted the proof.
    #[cfg_attr(not(any(feature = "imap", feature = "pop3")), allow(dead_code))]
    pub(crate) fn server_signature(&self) -> Option<[u8; KEY_LEN]> {
        self.server_signature.get().copied()
    }
}

impl fmt::Debug for ScramProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramProof")
            .field("iterations", &self.parameters.iterations)
            .field("verified", &self.server_signature.get().is_some())
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA-256 of `message` under `key`.
pub(crate) fn hmac(key: &[u8], message: &[u8]) -> [u8; KEY_LEN] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// What a SCRAM client computes: the proof of `password` for `auth_message`, and a
/// [`ScramProof`] of it as the mechanism would build one. For tests of services.
#[cfg(test)]
pub(crate) fn client_proof(
    password: &[u8],
    parameters: ScramParameters,
    auth_message: &[u8],
) -> ScramProof {
    let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, KEY_LEN>(
        password,
        &parameters.salt,
        parameters.iterations,
    );
    let client_key = hmac(&salted, b"Client Key");
    let stored_key: [u8; KEY_LEN] = Sha256::digest(client_key).into();
    let mut proof = hmac(&stored_key, auth_message);
    for (byte, key) in proof.iter_mut().zip(client_key) {
        *byte ^= key;
    }
    ScramProof::new(parameters, auth_message.to_vec(), proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3's exchange, checked from the stored keys' side.
    #[test]
    fn rfc7677_proof_verifies_and_signs() {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let keys = ScramKeys::derive(b"pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let client_proof = STANDARD
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        let proof = ScramProof::new(
            ScramParameters::new(salt.clone(), 4096),
            auth_message.as_bytes().to_vec(),
            client_proof.clone().try_into().unwrap(),
        );
        assert_eq!(proof.server_signature(), None);
        assert!(proof.verify(&keys));
        assert_eq!(
            STANDARD.encode(proof.server_signature().unwrap()),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );

        let other = ScramKeys::derive(b"pencil2", &salt, 4096);
        let fresh = ScramProof::new(
            ScramParameters::new(salt, 4096),
            auth_message.as_bytes().to_vec(),
            client_proof.try_into().unwrap(),
        );
        assert!(!fresh.verify(&other));
        assert_eq!(
            fresh.server_signature(),
            None,
            "no signature for a refused proof"
        );
    }

    #[test]
    fn debug_hides_keys() {
        let keys = ScramKeys::new([7; 32], [9; 32]);
        assert_eq!(format!("{keys:?}"), "ScramKeys(<hidden>)");
    }
}
