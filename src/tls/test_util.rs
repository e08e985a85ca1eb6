//! A TLS client for tests (the `test-util` feature).

use std::io;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use super::invalid;

/// A TLS client that trusts only the certificates in `cert_pem`: for tests and tools that talk
/// to a server with a self-signed certificate (such as one from `self_signed`).
///
/// ```
/// let (_acceptor, cert_pem) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
/// let connector = tower_mail::tls::connector_trusting(&cert_pem).unwrap();
/// # drop(connector);
/// ```
pub fn connector_trusting(cert_pem: &str) -> io::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        let cert = cert.map_err(|e| invalid(e.to_string()))?;
        roots.add(cert).map_err(|e| invalid(e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
