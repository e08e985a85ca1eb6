//! Listening sockets with a backlog of the caller's choice.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// A listen backlog that absorbs a burst of thousands of connections at once: the most that
/// Linux allows by default (`net.core.somaxconn`), and the example server's default.
pub const DEFAULT_BACKLOG: u32 = 4096;

/// A listener on `addr` whose kernel queue of connections not yet accepted holds `backlog`
/// (capped by the kernel's `net.core.somaxconn`).
///
/// `tokio::net::TcpListener::bind` asks for 128 (libc's `SOMAXCONN`). A burst of a few hundred
/// connections at once overflows that before the accept loop drains it: the kernel drops the
/// SYNs, and each client waits out its retransmission, a second or more. Mail servers see such
/// bursts (clients reconnecting after a restart, a load balancer's health checks, a scan).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tower_mail::server::{DEFAULT_BACKLOG, bind};
/// let listener = bind("127.0.0.1:0".parse().unwrap(), DEFAULT_BACKLOG).unwrap();
/// assert!(listener.local_addr().unwrap().port() > 0);
/// # });
/// ```
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As tokio's own bind: a restarted server rebinds at once despite TIME_WAIT connections.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}
