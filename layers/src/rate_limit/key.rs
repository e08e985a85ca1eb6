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
/// slot from that hash, on the check and again on the release, without hashing again. The
/// hash is SipHash-1-3 under a random per-process key, so clients cannot choose addresses that
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

/// A prefix length that marks an address rather than a network.
const ADDRESS_V4: u8 = 33;
const ADDRESS_V6: u8 = 129;

/// What a key is, in a form that compares with a few integer comparisons: the local store
/// keeps it in each slot and compares it on every lookup. 24 bytes.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Repr {
    /// An IPv4 address (`len` [`ADDRESS_V4`]) or network (`len` its prefix length, host bits
    /// cleared).
    V4 {
        bits: u32,
        len: u8,
    },
    /// The same for IPv6 (`len` [`ADDRESS_V6`] for an address), the bits in two halves: a
    /// `u128` would align the key to 16 bytes and make it 48.
    V6 {
        high: u64,
        low: u64,
        len: u8,
    },
    Text(Arc<str>),
}

/// What a [`Repr`] stands for, to print it.
enum Kind<'a> {
    Ip(IpAddr),
    Net(IpNet),
    Text(&'a str),
}

impl Repr {
    fn ip(ip: IpAddr) -> Repr {
        match ip {
            IpAddr::V4(ip) => Repr::V4 {
                bits: ip.to_bits(),
                len: ADDRESS_V4,
            },
            IpAddr::V6(ip) => Repr::v6(ip.to_bits(), ADDRESS_V6),
        }
    }

    fn net(net: IpNet) -> Repr {
        match net.trunc() {
            IpNet::V4(net) => Repr::V4 {
                bits: net.addr().to_bits(),
                len: net.prefix_len(),
            },
            IpNet::V6(net) => Repr::v6(net.addr().to_bits(), net.prefix_len()),
        }
    }

    fn v6(bits: u128, len: u8) -> Repr {
        Repr::V6 {
            high: (bits >> 64) as u64,
            low: bits as u64,
            len,
        }
    }

    fn kind(&self) -> Kind<'_> {
        match *self {
            Repr::V4 { bits, len } => {
                let addr = std::net::Ipv4Addr::from_bits(bits);
                match ipnet::Ipv4Net::new(addr, len) {
                    Ok(net) => Kind::Net(IpNet::V4(net)),
                    Err(_) => Kind::Ip(IpAddr::V4(addr)),
                }
            }
            Repr::V6 { high, low, len } => {
                let addr = std::net::Ipv6Addr::from_bits(u128::from(high) << 64 | u128::from(low));
                match ipnet::Ipv6Net::new(addr, len) {
                    Ok(net) => Kind::Net(IpNet::V6(net)),
                    Err(_) => Kind::Ip(IpAddr::V6(addr)),
                }
            }
            Repr::Text(ref text) => Kind::Text(text),
        }
    }

    /// Keyed SipHash-1-3 of the key: its words, then a last word with the kind and the length,
    /// which keeps any two keys' inputs apart. Written out rather than through `Hasher`, whose
    /// byte-stream plumbing costs more than the rounds for a one-word key.
    fn hash(&self) -> u64 {
        static SEED: OnceLock<(u64, u64)> = OnceLock::new();
        let &(k0, k1) = SEED.get_or_init(|| {
            // Two outputs of std's randomly keyed SipHash: a random 128-bit key.
            let random = RandomState::new();
            (random.hash_one(0u64), random.hash_one(1u64))
        });
        let mut sip = Sip13::new(k0, k1);
        let last = match self {
            Repr::V4 { bits, len } => u64::from(*bits) | u64::from(*len) << 32 | 1 << 56,
            Repr::V6 { high, low, len } => {
                sip.word(*high);
                sip.word(*low);
                u64::from(*len) | 2 << 56
            }
            Repr::Text(text) => {
                let mut chunks = text.as_bytes().chunks_exact(8);
                for chunk in &mut chunks {
                    sip.word(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
                }
                let mut tail = [0; 8];
                tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
                sip.word(u64::from_le_bytes(tail));
                // Text keys are far shorter than 2^56 bytes.
                (text.len() as u64 & ((1 << 56) - 1)) | 3 << 56
            }
        };
        sip.finish(last)
    }
}

/// SipHash with one compression round per word and three finalization rounds.
struct Sip13 {
    v: [u64; 4],
}

impl Sip13 {
    #[inline]
    fn new(k0: u64, k1: u64) -> Sip13 {
        Sip13 {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
        }
    }

    #[inline]
    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.v;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    #[inline]
    fn word(&mut self, m: u64) {
        self.v[3] ^= m;
        self.round();
        self.v[0] ^= m;
    }

    #[inline]
    fn finish(mut self, last: u64) -> u64 {
        self.word(last);
        self.v[2] ^= 0xff;
        self.round();
        self.round();
        self.round();
        self.v[0] ^ self.v[1] ^ self.v[2] ^ self.v[3]
    }
}

impl Key {
    fn new(repr: Repr) -> Key {
        Key {
            hash: repr.hash(),
            repr,
        }
    }

    /// The hash computed when the key was made.
    pub(super) fn hash_value(&self) -> u64 {
        self.hash
    }

    /// What the key is, without its hash: what the local store keeps and compares.
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
        Key::new(Repr::ip(ip.to_canonical()))
    }
}

impl From<IpNet> for Key {
    /// The network, with host bits cleared.
    fn from(net: IpNet) -> Key {
        Key::new(Repr::net(net))
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
        match self.repr.kind() {
            Kind::Ip(ip) => ip.fmt(f),
            Kind::Net(net) => net.fmt(f),
            Kind::Text(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.repr.fmt(f)
    }
}

impl fmt::Debug for Repr {
    /// `Ip(192.0.2.1)`, `Net(10.0.0.0/24)` or `Text("user:alice")`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            Kind::Ip(ip) => f.debug_tuple("Ip").field(&ip).finish(),
            Kind::Net(net) => f.debug_tuple("Net").field(&net).finish(),
            Kind::Text(text) => f.debug_tuple("Text").field(&text).finish(),
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
    /// local port, the TLS server name are. Threads that checked connections keep the settings
    /// they last saw, so the function (and what it captures) may outlive the limit until those
    /// threads check under other limits or end.
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
    fn sip13_is_siphash_1_3() {
        // std's DefaultHasher::new() is SipHash-1-3 under the key (0, 0); an 8-byte message is
        // one word, then the length in the last word's top byte.
        for m in [0u64, 1, 0x0123_4567_89ab_cdef, u64::MAX] {
            let mut reference = std::collections::hash_map::DefaultHasher::new();
            reference.write(&m.to_le_bytes());
            let mut sip = Sip13::new(0, 0);
            sip.word(m);
            assert_eq!(sip.finish(8 << 56), reference.finish(), "{m:#x}");
        }
    }

    #[test]
    fn keys_print_as_before() {
        let ip = |s: &str| Key::from(s.parse::<IpAddr>().unwrap());
        let net = |s: &str| Key::from(s.parse::<IpNet>().unwrap());
        assert_eq!(format!("{:?}", ip("192.0.2.1")), "Ip(192.0.2.1)");
        assert_eq!(format!("{:?}", net("10.0.0.9/24")), "Net(10.0.0.0/24)");
        assert_eq!(format!("{:?}", Key::from("a")), "Text(\"a\")");
        assert_eq!(ip("2001:db8::1").to_string(), "2001:db8::1");
        assert_eq!(net("2001:db8::1/128").to_string(), "2001:db8::1/128");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
    }

    #[test]
    fn equal_keys_hash_alike_and_others_apart() {
        let texts = [
            "",
            "a",
            "abcdefgh",
            "abcdefghi",
            "10.0.0.1",
            "\0\0\0\0\0\0\0\0",
        ];
        let mut keys: Vec<Key> = texts.iter().map(|t| Key::from(*t)).collect();
        for s in ["10.0.0.1", "10.0.0.0", "2001:db8::1", "::"] {
            keys.push(Key::from(s.parse::<IpAddr>().unwrap()));
        }
        for s in [
            "10.0.0.0/32",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "::/0",
            "::/128",
            "2001:db8::/64",
        ] {
            keys.push(Key::from(s.parse::<IpNet>().unwrap()));
        }
        for (i, a) in keys.iter().enumerate() {
            assert_eq!(a.hash_value(), a.clone().hash_value());
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
                assert_ne!(a.hash_value(), b.hash_value(), "{a:?} {b:?}");
            }
        }
        assert_eq!(Key::from("abcdefghi"), Key::from(String::from("abcdefghi")));
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
