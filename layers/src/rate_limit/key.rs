//! What a limit counts by: [`RateLimitKey`] picks, [`Key`] is the result.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use tower_mail::Session;

/// The key one connection is counted under: an address, a network or a text.
///
/// Small (32 bytes, no heap for address keys) because the table holds one per client, and
/// hashed once, when made: the [`LocalStore`](super::LocalStore) picks the shard and the
/// bucket from that hash, on the check and again on the release, without hashing again. The
/// hash is SipHash under a random per-process seed, so clients cannot choose addresses that
/// collide.
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    /// One client address, canonical.
    Ip(IpAddr),
    /// A network, host bits cleared.
    Net(IpNet),
    Text(Arc<str>),
}

impl Key {
    fn new(repr: Repr) -> Key {
        static SEED: OnceLock<RandomState> = OnceLock::new();
        let hash = SEED.get_or_init(RandomState::new).hash_one(&repr);
        Key { hash, repr }
    }

    /// The hash computed when the key was made.
    pub(super) fn hash_value(&self) -> u64 {
        self.hash
    }
}

impl Hash for Repr {
    // One 8-byte write for IPv4 keys, where the derived impl writes two 8-byte enum tags
    // first: fewer SipHash rounds on the hot path. Tags keep the variants apart.
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Repr::Ip(IpAddr::V4(ip)) => state.write_u64(u64::from(ip.to_bits())),
            Repr::Net(IpNet::V4(net)) => state.write_u64(
                1 << 40 | u64::from(net.prefix_len()) << 32 | u64::from(net.addr().to_bits()),
            ),
            Repr::Ip(IpAddr::V6(ip)) => {
                state.write_u128(ip.to_bits());
                state.write_u8(255);
            }
            Repr::Net(IpNet::V6(net)) => {
                state.write_u128(net.addr().to_bits());
                state.write_u8(net.prefix_len());
            }
            Repr::Text(text) => {
                state.write_u8(2);
                text.hash(state);
            }
        }
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

/// The hasher of tables keyed by [`Key`]: it passes the key's stored hash through.
#[derive(Debug, Default)]
pub(super) struct StoredHash(u64);

impl Hasher for StoredHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `Key` is hashed with this, through `write_u64`; anything else still gets a
        // (weak) hash rather than a panic.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
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
    /// local port, the TLS server name are.
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
mod tests {
    use super::*;

    fn session(ip: &str) -> Session {
        Session::new(
            tower_mail::Protocol::Imap,
            std::net::SocketAddr::new(ip.parse().unwrap(), 40000),
            "127.0.0.1:143".parse().unwrap(),
        )
    }

    fn key(how: &RateLimitKey, ip: &str) -> Option<String> {
        how.key_for(&session(ip)).map(|k| k.to_string())
    }

    #[test]
    fn key_is_small() {
        assert_eq!(std::mem::size_of::<Key>(), 32);
    }

    #[test]
    fn kinds_of_keys_never_match() {
        let ip: IpAddr = "10.0.0.0".parse().unwrap();
        let net: IpNet = "10.0.0.0/32".parse().unwrap();
        assert_ne!(Key::from(ip), Key::from(net));
        assert_ne!(Key::from(ip), Key::from("10.0.0.0"));
        assert_eq!(Key::from("10.0.0.0").to_string(), Key::from(ip).to_string());
    }

    #[test]
    fn ip_keys_are_canonical() {
        let ip = RateLimitKey::Ip;
        assert_eq!(key(&ip, "192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(key(&ip, "::ffff:192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(
            ip.key_for(&session("::ffff:192.0.2.1")),
            ip.key_for(&session("192.0.2.1"))
        );
        assert_eq!(key(&ip, "2001:db8::1").as_deref(), Some("2001:db8::1"));
    }

    #[test]
    fn prefixes_group_networks() {
        let net = RateLimitKey::Prefix { v4: 24, v6: 64 };
        let a = net.key_for(&session("10.0.0.1"));
        assert_eq!(a, net.key_for(&session("10.0.0.200")));
        assert_eq!(a, net.key_for(&session("::ffff:10.0.0.99")));
        assert_ne!(a, net.key_for(&session("10.0.1.1")));
        assert_eq!(key(&net, "10.0.0.1").as_deref(), Some("10.0.0.0/24"));

        let b = net.key_for(&session("2001:db8:0:1::1"));
        assert_eq!(b, net.key_for(&session("2001:db8:0:1:ffff::2")));
        assert_ne!(b, net.key_for(&session("2001:db8:0:2::1")));
        assert_eq!(
            key(&net, "2001:db8:0:1::1").as_deref(),
            Some("2001:db8:0:1::/64")
        );
    }

    #[test]
    fn oversized_prefixes_are_whole_addresses() {
        let net = RateLimitKey::Prefix { v4: 40, v6: 200 };
        assert_eq!(key(&net, "10.0.0.1").as_deref(), Some("10.0.0.1/32"));
        assert_eq!(key(&net, "2001:db8::1").as_deref(), Some("2001:db8::1/128"));
    }

    #[test]
    fn custom_keys_and_unlimited_sessions() {
        let by_port = RateLimitKey::custom(|s| {
            (s.remote_addr().ip().is_ipv4())
                .then(|| Key::from(format!("k{}", s.local_addr().port())))
        });
        assert_eq!(key(&by_port, "10.0.0.1").as_deref(), Some("k143"));
        assert_eq!(key(&by_port, "2001:db8::1"), None);
    }
}
