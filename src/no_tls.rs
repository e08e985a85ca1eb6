//! TLS is not built: this is tower-mail without its `tls` feature.
//!
//! [`TlsAcceptor`] stands where tokio-rustls' acceptor stands with the feature, and has no
//! values: [`TlsMode::Starttls`](crate::server::TlsMode::Starttls) and
//! [`TlsMode::Implicit`](crate::server::TlsMode::Implicit) cannot be built, so every listener
//! is plaintext ([`TlsMode::None`](crate::server::TlsMode::None)) and no session offers
//! STARTTLS/STLS. The server and the session services compile unchanged.

use std::io;
use std::time::Duration;

use crate::connection::{BoxIo, Io};
use crate::session::Session;

/// A TLS acceptor that cannot exist: tower-mail was built without its `tls` feature.
#[derive(Debug, Clone)]
pub enum TlsAcceptor {}

/// Never called: there is no acceptor to call it with.
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    _io: impl Io,
    _deadline: Duration,
    _session: &Session,
    _implicit: bool,
) -> io::Result<BoxIo> {
    match *acceptor {}
}
