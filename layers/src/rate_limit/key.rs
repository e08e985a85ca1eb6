//! What a limit counts by: [`RateLimitKey`] picks, [`Key`] is the result.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use ipnet::IpNet;
use tower_mail::Session;

/// The key one connection is counted under: an address, a network or a text.
///
/// Small (32 bytes, no heap for address keys) because the table holds one per client, and
/// hashed once, when made: the [`LocalStore`](super::LocalStore) picks the shard and the
/// slot from that hash, on the check and again on the release, without hashing again. The
/// hash is std's keyed SipHash ([`RandomState`]) under a random per-process key, so clients
/// cannot choose addresses that collide.
///
/// ```
/// use tower_mail_layers::rate_limit::Key;
/// let key = Key::from("user:alice");
/// assert_eq!(key.to_string(), "user:alice");
/// let mapped = Key::from("::ffff:192.0.2.1".parse::<std::net::IpAddr>().unwrap());
/// assert_eq!(mapped.to_string(), "192.0.2.1");
/// assert_eq!(mapped, Key::from("192.0.2.1".parse::<std::net::IpAddr>().unwrap()));
/// ```
#[derive(Clone)]
pub struct Key {
    hash: u64,
    repr: Repr,
}

/// What a key is: what the local store keeps and compares. 24 bytes. Its `Debug` is
/// `Ip(192.0.2.1)`, `Net(10.0.0.0/24)` or `Text("user:alice")`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Repr {
    Ip(IpAddr),
    /// Host bits cleared.
    Net(IpNet),
    Text(Arc<str>),
}

impl Repr {
    /// The hash under the per-process key, of the bytes that tell keys apart, fed to SipHash in
    /// one write: for an address, one call instead of the three that `derive(Hash)` makes.
    fn keyed_hash(&self) -> u64 {
        let mut hasher = HASHER.build_hasher();
        // A kind byte first, so that an address and a text of the same bytes differ.
        let mut bytes = [0u8; 18];
        let used = match self {
            Repr::Ip(IpAddr::V4(ip)) => fill(&mut bytes, 4, 32, &ip.octets()),
            Repr::Ip(IpAddr::V6(ip)) => fill(&mut bytes, 6, 128, &ip.octets()),
            Repr::Net(IpNet::V4(net)) => {
                fill(&mut bytes, 44, net.prefix_len(), &net.addr().octets())
            }
            Repr::Net(IpNet::V6(net)) => {
                fill(&mut bytes, 66, net.prefix_len(), &net.addr().octets())
            }
            Repr::Text(text) => {
                hasher.write_u8(b't');
                hasher.write(text.as_bytes());
                return hasher.finish();
            }
        };
        hasher.write(&bytes[..used]);
        hasher.finish()
    }
}

/// `kind`, `prefix` and `octets` into `bytes`; how many bytes that took.
fn fill(bytes: &mut [u8; 18], kind: u8, prefix: u8, octets: &[u8]) -> usize {
    bytes[0] = kind;
    bytes[1] = prefix;
    bytes[2..2 + octets.len()].copy_from_slice(octets);
    2 + octets.len()
}

/// The per-process key of every [`Key`]'s hash.
static HASHER: LazyLock<RandomState> = LazyLock::new(RandomState::new);

impl Key {
    fn new(repr: Repr) -> Key {
        Key {
            hash: repr.keyed_hash(),
            repr,
        }
    }

    /// The hash computed when the key was made.
    pub(super) fn hash_value(&self) -> u64 {
        self.hash
    }

    /// What the key is, without its hash.
    pub(super) fn repr(&self) -> &Repr {
        &self.repr
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.hash == other.hash && self.repr == other.repr
    }
}

impl Eq for Key {}

impl Hash for Key {
    /// Writes the stored hash: hashing a key again costs nothing.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl From<IpAddr> for Key {
    /// The canonical address, so `::ffff:192.0.2.1` and `192.0.2.1` are one key.
    fn from(ip: IpAddr) -> Key {
        Key::new(Repr::Ip(ip.to_canonical()))
    }
}

impl From<IpNet> for Key {
    /// The network, with host bits cleared.
    fn from(net: IpNet) -> Key {
        Key::new(Repr::Net(net.trunc()))
    }
}

impl From<&str> for Key {
    fn from(text: &str) -> Key {
        Key::new(Repr::Text(text.into()))
    }
}

impl From<String> for Key {
    fn from(text: String) -> Key {
        Key::new(Repr::Text(text.into()))
    }
}

impl fmt::Display for Key {
    /// The address, the network in CIDR notation, or the text: a store can use it to name the
    /// key (a Redis key suffix, say).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Ip(ip) => ip.fmt(f),
            Repr::Net(net) => net.fmt(f),
            Repr::Text(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.repr.fmt(f)
    }
}

/// A function from a session to its key; `None` leaves the session unlimited.
///
/// ```
/// use std::sync::Arc;
/// use tower_mail_layers::rate_limit::{Key, KeyFn, RateLimitKey};
/// // One budget per TLS server name (tenant); connections without SNI are not limited.
/// let by_sni: KeyFn = Arc::new(|session| session.tls()?.sni.map(Key::from));
/// let key = RateLimitKey::Custom(by_sni);
/// # drop(key);
/// ```
pub type KeyFn = Arc<dyn Fn(&Session) -> Option<Key> + Send + Sync>;

/// How a [`RateLimit`](super::RateLimit) derives a connection's [`Key`].
///
/// ```
/// use tower_mail_layers::rate_limit::{Key, RateLimitKey};
/// # let session = tower_mail::Session::new(tower_mail::Protocol::Imap,
/// #     "10.0.0.7:40000".parse().unwrap(), "127.0.0.1:143".parse().unwrap());
/// let by_net = RateLimitKey::Prefix { v4: 24, v6: 64 };
/// assert_eq!(by_net.key_for(&session).unwrap().to_string(), "10.0.0.0/24");
///
/// // One budget per listening port and client address; port 993 is not limited.
/// let per_port = RateLimitKey::custom(|session| {
///     let port = session.local_addr().port();
///     (port != 993).then(|| Key::from(format!("{port}/{}", session.remote_addr().ip())))
/// });
/// assert_eq!(per_port.key_for(&session).unwrap().to_string(), "143/10.0.0.7");
/// ```
#[derive(Clone, Default)]
pub enum RateLimitKey {
    /// The client address (the real client behind a trusted PROXY header), IPv4-mapped
    /// addresses as IPv4.
    #[default]
    Ip,
    /// The client's network: an IPv4 address's first `v4` bits, an IPv6 address's first `v6`
    /// bits (`/24` and `/64` group what one customer usually holds). Lengths beyond the
    /// address size count as the full address.
    Prefix {
        /// IPv4 prefix length, 0 to 32.
        v4: u8,
        /// IPv6 prefix length, 0 to 128.
        v6: u8,
    },
    /// A function of the session. At connect time no user is known yet; the address, the
    /// local port, the TLS server name are. After a
    /// [`reconfigure`](super::RateLimit::reconfigure), the function (and what it captures)
    /// goes once the checks that started under it have finished.
    Custom(KeyFn),
}

impl RateLimitKey {
    /// A [`Custom`](RateLimitKey::Custom) key from a closure.
    pub fn custom(f: impl Fn(&Session) -> Option<Key> + Send + Sync + 'static) -> RateLimitKey {
        RateLimitKey::Custom(Arc::new(f))
    }

    /// The key `session` is counted under, or `None` if it is not limited.
    pub fn key_for(&self, session: &Session) -> Option<Key> {
        let ip = session.remote_addr().ip().to_canonical();
        match self {
            RateLimitKey::Ip => Some(Key::from(ip)),
            RateLimitKey::Prefix { v4, v6 } => {
                let len = if ip.is_ipv4() {
                    (*v4).min(32)
                } else {
                    (*v6).min(128)
                };
                // Cannot fail: the length is clamped to the address size above.
                IpNet::new(ip, len).ok().map(Key::from)
            }
            RateLimitKey::Custom(f) => f(session),
        }
    }
}

impl fmt::Debug for RateLimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimitKey::Ip => f.write_str("Ip"),
            RateLimitKey::Prefix { v4, v6 } => f
                .debug_struct("Prefix")
                .field("v4", v4)
                .field("v6", v6)
                .finish(),
            RateLimitKey::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

#[cfg(test)]
mod tests;
