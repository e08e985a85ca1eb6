//! What a limit counts by: [`RateLimitKey`] picks, [`Key`] is the result.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use tower_mail::Session;

/// The key one connection is counted under.
///
/// Kept small (24 bytes, no heap for address keys) because the table holds one per client:
/// addresses are stored inline, and only [`Key::Text`] points to the heap.
///
/// ```
/// use tower_mail_layers::rate_limit::Key;
/// let key = Key::from("user:alice");
/// assert_eq!(key.to_string(), "user:alice");
/// let key = Key::from("::ffff:192.0.2.1".parse::<std::net::IpAddr>().unwrap());
/// assert_eq!(key.to_string(), "192.0.2.1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// One client address, canonical: an IPv4-mapped IPv6 address is its IPv4 form.
    Ip(IpAddr),
    /// A network: every address in it shares the key.
    Net(IpNet),
    /// Anything else, from a custom key function.
    Text(Arc<str>),
}

impl From<IpAddr> for Key {
    /// The canonical address, so `::ffff:192.0.2.1` and `192.0.2.1` are one key.
    fn from(ip: IpAddr) -> Key {
        Key::Ip(ip.to_canonical())
    }
}

impl From<IpNet> for Key {
    /// The network, with host bits cleared.
    fn from(net: IpNet) -> Key {
        Key::Net(net.trunc())
    }
}

impl From<&str> for Key {
    fn from(text: &str) -> Key {
        Key::Text(text.into())
    }
}

impl From<String> for Key {
    fn from(text: String) -> Key {
        Key::Text(text.into())
    }
}

impl fmt::Display for Key {
    /// The address, the network in CIDR notation, or the text: a store can use it to name the
    /// key (a Redis key suffix, say).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Ip(ip) => ip.fmt(f),
            Key::Net(net) => net.fmt(f),
            Key::Text(text) => f.write_str(text),
        }
    }
}

/// A function from a session to its key; `None` leaves the session unlimited.
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
            RateLimitKey::Ip => Some(Key::Ip(ip)),
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
        assert!(
            std::mem::size_of::<Key>() <= 24,
            "{}",
            std::mem::size_of::<Key>()
        );
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
