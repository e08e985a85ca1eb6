//! The PROXY protocol (v1 and v2), accepted only from trusted networks, within a deadline and
//! a size cap: a proxy that stalls or sends garbage loses that one connection, nothing more.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use proxy_header::{Error as HeaderError, ParseConfig, ProxyHeader};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Who may send a PROXY header, and how long and large it may be.
///
/// ```
/// use tower_mail::server::ProxyConfig;
/// let config = ProxyConfig::trusting(vec!["10.0.0.0/8".parse().unwrap()]);
/// assert!(config.is_trusted("10.1.2.3".parse().unwrap()));
/// assert!(config.is_trusted("::ffff:10.1.2.3".parse().unwrap()));
/// assert!(!config.is_trusted("192.0.2.1".parse().unwrap()));
/// ```
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Networks whose connections must start with a PROXY header. Others never may.
    pub trusted: Vec<IpNet>,
    /// How long a trusted peer has to send the whole header.
    pub timeout: Duration,
    /// The largest header accepted, in bytes (v2 headers may carry TLVs).
    pub max_header_len: usize,
}

impl Default for ProxyConfig {
    fn default() -> ProxyConfig {
        ProxyConfig {
            trusted: Vec::new(),
            timeout: Duration::from_secs(5),
            max_header_len: 4096,
        }
    }
}

impl ProxyConfig {
    /// Trust `networks`, with the default deadline and cap.
    pub fn trusting(networks: Vec<IpNet>) -> ProxyConfig {
        ProxyConfig {
            trusted: networks,
            ..ProxyConfig::default()
        }
    }

    /// Whether `peer` must send a PROXY header. An IPv4-mapped IPv6 peer matches its IPv4 form.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted.iter().any(|net| net.contains(&peer))
    }
}

/// What a PROXY header said.
pub(crate) struct ProxiedAddrs {
    /// The real client and the address it connected to; `None` for LOCAL/UNKNOWN headers
    /// (health checks from the proxy itself), where the TCP addresses stand.
    pub(crate) addrs: Option<(SocketAddr, SocketAddr)>,
    /// Bytes after the header: the client's first protocol bytes.
    pub(crate) rest: Bytes,
}

/// Read a PROXY header (v1 or v2) from `io` as a listener does for a trusted peer, within
/// `config`'s deadline and size cap: the real client and local addresses (`None` for a LOCAL
/// or UNKNOWN header) and the bytes that followed the header. For tests and fuzzing (the
/// `test-util` feature); the server calls it on every connection from a trusted network.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tower_mail::server::{ProxyConfig, read_proxy_header};
/// let mut input: &[u8] = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 143\r\na LOGIN\r\n";
/// let (addrs, rest) = read_proxy_header(&mut input, &ProxyConfig::default()).await.unwrap();
/// assert_eq!(addrs.unwrap().0, "192.0.2.7:40000".parse().unwrap());
/// assert_eq!(&rest[..], b"a LOGIN\r\n");
/// # });
/// ```
#[cfg(feature = "test-util")]
pub async fn read_proxy_header<R: AsyncRead + Unpin>(
    io: &mut R,
    config: &ProxyConfig,
) -> io::Result<(Option<(SocketAddr, SocketAddr)>, Bytes)> {
    let header = read_header(io, config).await?;
    Ok((header.addrs, header.rest))
}

/// Read a PROXY header from `io` within the deadline and size cap.
pub(crate) async fn read_header<R: AsyncRead + Unpin>(
    io: &mut R,
    config: &ProxyConfig,
) -> io::Result<ProxiedAddrs> {
    tokio::time::timeout(
        config.timeout,
        read_header_unbounded(io, config.max_header_len),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "PROXY header timed out"))?
}

async fn read_header_unbounded<R: AsyncRead + Unpin>(
    io: &mut R,
    max_len: usize,
) -> io::Result<ProxiedAddrs> {
    let parse = ParseConfig {
        include_tlvs: false,
        allow_v1: true,
        allow_v2: true,
    };
    let mut buf = BytesMut::with_capacity(128);
    loop {
        let remaining = max_len.saturating_sub(buf.len());
        if remaining == 0 {
            return Err(invalid("PROXY header too large"));
        }
        buf.reserve(remaining.min(512));
        let mut limited = (&mut *io).take(remaining as u64);
        if limited.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside the PROXY header",
            ));
        }
        match ProxyHeader::parse(&buf, parse) {
            Ok((header, used)) => {
                let addrs = header.proxied_address().map(|a| (a.source, a.destination));
                let rest = buf.split_off(used).freeze();
                return Ok(ProxiedAddrs { addrs, rest });
            }
            // A v1 header is one line: once its CRLF is here, "too short" means malformed
            // (`PROXY TCP4 1.2.3.4\r\n`), and waiting for more would only stall until the
            // deadline.
            Err(HeaderError::BufferTooShort) if !is_terminated_v1(&buf) => continue,
            Err(HeaderError::BufferTooShort) => return Err(invalid("truncated PROXY v1 header")),
            Err(err) => return Err(invalid(&format!("bad PROXY header: {err}"))),
        }
    }
}

fn is_terminated_v1(buf: &[u8]) -> bool {
    buf.starts_with(b"PROXY ") && buf.windows(2).any(|w| w == b"\r\n")
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ProxyConfig {
        ProxyConfig {
            timeout: Duration::from_millis(200),
            max_header_len: 300,
            ..ProxyConfig::default()
        }
    }

    #[tokio::test]
    async fn v1_header_gives_client_address_and_keeps_following_bytes() {
        let mut input: &[u8] = b"PROXY TCP4 203.0.113.9 127.0.0.1 51000 110\r\nUSER a\r\n";
        let got = read_header(&mut input, &config()).await.unwrap();
        let (src, dst) = got.addrs.unwrap();
        assert_eq!(src, "203.0.113.9:51000".parse().unwrap());
        assert_eq!(dst, "127.0.0.1:110".parse().unwrap());
        assert_eq!(&got.rest[..], b"USER a\r\n");
    }

    #[tokio::test]
    async fn v2_header_is_understood() {
        let header = ProxyHeader::with_address(proxy_header::ProxiedAddress::stream(
            "[2001:db8::7]:4000".parse().unwrap(),
            "[2001:db8::1]:993".parse().unwrap(),
        ));
        let mut bytes = Vec::new();
        header.encode_v2(&mut bytes).unwrap();
        bytes.extend_from_slice(b"A1 NOOP\r\n");
        let got = read_header(&mut &bytes[..], &config()).await.unwrap();
        assert_eq!(got.addrs.unwrap().0, "[2001:db8::7]:4000".parse().unwrap());
        assert_eq!(&got.rest[..], b"A1 NOOP\r\n");
    }

    #[tokio::test]
    async fn truncated_v1_header_is_an_error_not_a_crash() {
        let mut input: &[u8] = b"PROXY TCP4 1.2.3.4\r\n";
        let err = read_header(&mut input, &config()).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn garbage_and_oversized_headers_are_refused() {
        let mut input: &[u8] = b"GET / HTTP/1.1\r\n";
        assert!(read_header(&mut input, &config()).await.is_err());
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 400]].concat();
        let err = read_header(&mut &long[..], &config()).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn silent_peer_hits_the_deadline() {
        let (_client, mut server) = tokio::io::duplex(64);
        let err = read_header(&mut server, &config()).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
