//! Socket addresses for log lines, formatted without `core::fmt` for IPv4.

use std::fmt;
use std::net::SocketAddr;

/// Shows a socket address exactly as its `Display` does.
///
/// Two or three addresses go into the log lines of every connection, and std formats an IPv4
/// address and port as five numbers through `core::fmt`: more instructions than the rest of a
/// JSON log line's fields together. IPv4 addresses are written into a buffer on the stack
/// instead, and given to the formatter in one piece; IPv6 ones (rarer, and with `::`
/// compression to get right) go to std.
pub(super) struct LoggedAddr(pub(super) SocketAddr);

impl fmt::Display for LoggedAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SocketAddr::V4(addr) = self.0 else {
            return fmt::Display::fmt(&self.0, f);
        };
        // "255.255.255.255:65535" is 21 bytes.
        let mut text = [0u8; 21];
        let mut len = 0;
        let octets = addr.ip().octets();
        for (k, octet) in octets.into_iter().enumerate() {
            len += put_decimal(&mut text[len..], u32::from(octet));
            text[len] = if k == 3 { b':' } else { b'.' };
            len += 1;
        }
        len += put_decimal(&mut text[len..], u32::from(addr.port()));
        // Digits and separators only.
        f.write_str(std::str::from_utf8(&text[..len]).map_err(|_| fmt::Error)?)
    }
}

/// Write `value`'s decimal digits at the start of `into`; their count.
fn put_decimal(into: &mut [u8], value: u32) -> usize {
    let mut digits = [0u8; 5];
    let (mut value, mut count) = (value, 0);
    loop {
        digits[count] = b'0' + (value % 10) as u8;
        count += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for k in 0..count {
        into[k] = digits[count - 1 - k];
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_std_writes_them() {
        for text in [
            "0.0.0.0:0",
            "127.0.0.1:143",
            "192.0.2.10:40000",
            "255.255.255.255:65535",
            "10.0.0.9:9",
            "[::1]:993",
            "[2001:db8::1]:4000",
            "[::ffff:192.0.2.1]:110",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(LoggedAddr(addr).to_string(), addr.to_string());
            assert_eq!(LoggedAddr(addr).to_string(), text);
        }
    }
}
