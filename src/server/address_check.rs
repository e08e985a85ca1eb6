//! Decisions an implicit-TLS listener makes from a connection's addresses alone, before the
//! TLS handshake, so that a refused peer costs no cryptography.

use std::sync::Arc;

use crate::reject::Reject;
use crate::session::Session;

/// A check on a connection's addresses (after any PROXY header), made before the TLS
/// handshake of an implicit-TLS listener ([`Endpoint::refuse_before_handshake`](super::Endpoint::refuse_before_handshake)).
///
/// The stack still runs after the handshake for the connections let through, so a policy
/// used here keeps its layer too; this only spares refused peers the handshake. A refused
/// peer is closed without a word: TLS has not started, so it cannot be told why (its client
/// reports a failed connection), and it never reaches the stack, so no close hook runs. It is
/// counted as [`SetupFailure::Refused`](super::SetupFailure::Refused) and logged like the
/// other setup failures, with the refusal's layer and text.
///
/// Closures are checks:
///
/// ```
/// use std::sync::Arc;
/// use tower_mail::{Protocol, Reject, Session};
/// use tower_mail::server::AddressCheck;
///
/// let deny_documentation_net = |session: &Arc<Session>| match session.remote_addr().ip() {
///     ip if ip.to_string().starts_with("192.0.2.") => {
///         Err(Reject::new("IP address blocked").with_layer("ip_block"))
///     }
///     _ => Ok(()),
/// };
/// let session = Arc::new(Session::new(Protocol::Imap,
///     "192.0.2.7:50000".parse().unwrap(), "127.0.0.1:993".parse().unwrap()));
/// assert!(deny_documentation_net.check(&session).is_err());
/// ```
pub trait AddressCheck: Send + Sync + 'static {
    /// `Err` refuses the connection. Called on the connection's own task, before the
    /// handshake: it must decide on the spot, without I/O.
    fn check(&self, session: &Arc<Session>) -> Result<(), Reject>;
}

impl<F> AddressCheck for F
where
    F: Fn(&Arc<Session>) -> Result<(), Reject> + Send + Sync + 'static,
{
    fn check(&self, session: &Arc<Session>) -> Result<(), Reject> {
        self(session)
    }
}

/// Several checks, the first refusal wins.
impl AddressCheck for Vec<Arc<dyn AddressCheck>> {
    fn check(&self, session: &Arc<Session>) -> Result<(), Reject> {
        self.iter().try_for_each(|check| check.check(session))
    }
}
