//! TLS for implicit-TLS listeners and STARTTLS/STLS: configuration from PEM files or a
//! self-signed certificate, and the handshake with a deadline (the `tls` feature;
//! `self_signed` needs `self-signed` too, and `connector_trusting` needs `test-util`).
//!
//! rustls is built with the `ring` provider rather than the default aws-lc-rs, which compiles a
//! large C library; both are sound choices, ring is the lighter build. rustls speaks only
//! TLS 1.2 and 1.3, so TLS 1.0/1.1 (WildDuck's default minimum) can never be negotiated.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
pub use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::connection::{BoxIo, Io};
use crate::session::{Session, TlsInfo};

#[cfg(feature = "self-signed")]
mod self_signed;
#[cfg(feature = "test-util")]
mod test_util;

#[cfg(feature = "self-signed")]
pub use self_signed::self_signed;
#[cfg(feature = "test-util")]
pub use test_util::connector_trusting;

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

fn config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<ServerConfig> {
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(format!("certificate and key do not fit: {e}")))
}

/// A TLS acceptor for the certificate chain and private key in two PEM files.
///
/// ```no_run
/// let acceptor = tower_mail::tls::acceptor_from_pem("cert.pem", "key.pem").unwrap();
/// ```
pub fn acceptor_from_pem(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<TlsAcceptor> {
    let (cert, key) = (cert.as_ref(), key.as_ref());
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| invalid(format!("{}: {e}", cert.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!("{}: no certificate found", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| invalid(format!("{}: {e}", key.display())))?;
    Ok(TlsAcceptor::from(Arc::new(config(certs, key)?)))
}

/// Run the server side of a TLS handshake over `io` within `deadline`, and record what was
/// negotiated in `session` (which also turns [`Session::secure`] true).
pub async fn handshake(
    acceptor: &TlsAcceptor,
    io: impl Io,
    deadline: Duration,
    session: &Session,
    implicit: bool,
) -> io::Result<BoxIo> {
    // Boxed: rustls' handshake state is large, and inline it would enlarge every connection's
    // future for its whole life, TLS or not.
    let stream = Box::pin(tokio::time::timeout(deadline, acceptor.accept(io)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    let conn = stream.get_ref().1;
    session.set_tls(TlsInfo {
        version: match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        },
        cipher: conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown")
            .to_owned(),
        sni: conn.server_name().map(str::to_owned),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        implicit,
    });
    Ok(Box::new(stream))
}
