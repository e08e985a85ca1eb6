//! A certificate made at start-up (the `self-signed` feature).

use std::io;
use std::sync::Arc;

use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{TlsAcceptor, config, invalid};

/// A self-signed certificate for `names`, made now: for development and for the example
/// server when no certificate is configured. Also returns the certificate in PEM so that
/// clients (and tests) can trust it.
///
/// ```
/// let (acceptor, cert_pem) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
/// assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
/// # drop(acceptor);
/// ```
pub fn self_signed(names: &[&str]) -> io::Result<(TlsAcceptor, String)> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| invalid(e.to_string()))?;
    let pem = certified.cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let acceptor = TlsAcceptor::from(Arc::new(config(vec![certified.cert.der().clone()], key)?));
    Ok((acceptor, pem))
}
