//! Address-only policies run by an implicit-TLS listener before its handshake.

use std::sync::Arc;

use tower_mail::server::AddressCheck;
use tower_mail::{Reject, Session};

use super::{Policy, Swappable};

/// A [`Policy`] whose verdict depends only on the connection's addresses and the time, and
/// whose permit counts nothing: asking it once more before the TLS handshake changes no
/// state. [`IpBlock`](crate::ip_block::IpBlock) and the time window's
/// [`Schedule`](crate::time_window::Schedule) are; a rate limit is not (a second check would
/// count the connection twice).
pub trait AddressPolicy: Policy {}

impl<P: AddressPolicy> AddressPolicy for Swappable<P> {}

/// An [`AddressPolicy`] as the server's [`AddressCheck`]: give it to
/// [`Endpoint::refuse_before_handshake`](tower_mail::server::Endpoint::refuse_before_handshake)
/// so that a peer the policy refuses costs no TLS handshake. Keep the policy's layer in the
/// stack too: it decides for every other listener, and it is the one that logs and counts.
/// A policy in shadow mode should not be given here: this check refuses for real.
///
/// ```
/// use tower_mail::Protocol;
/// use tower_mail::server::{Endpoint, TlsMode};
/// use tower_mail_layers::ip_block::{CidrSet, IpBlock, IpLists};
/// use tower_mail_layers::policy::BeforeHandshake;
///
/// # let (acceptor, _) = tower_mail::tls::self_signed(&["localhost"]).unwrap();
/// let ip_block = IpBlock::new(IpLists {
///     deny: CidrSet::parse_list("198.51.100.0/24").unwrap(),
///     ..IpLists::default()
/// });
/// let imaps = Endpoint::new(Protocol::Imap, TlsMode::Implicit(acceptor))
///     .refuse_before_handshake(BeforeHandshake::new(ip_block.clone()));
/// # drop(imaps);
/// ```
#[derive(Debug, Clone)]
pub struct BeforeHandshake<P>(P);

impl<P: AddressPolicy> BeforeHandshake<P> {
    /// Check with `policy`.
    pub fn new(policy: P) -> Self {
        BeforeHandshake(policy)
    }
}

impl<P> AddressCheck for BeforeHandshake<P>
where
    P: AddressPolicy + Send + Sync + 'static,
{
    fn check(&self, session: &Arc<Session>) -> Result<(), Reject> {
        // A policy that cannot decide on the spot lets the connection through to its layer.
        match self.0.check_now(session) {
            Some(Err(reject)) if reject.layer() == "custom" => {
                Err(reject.with_layer(self.0.name()))
            }
            Some(Err(reject)) => Err(reject),
            Some(Ok(_)) | None => Ok(()),
        }
    }
}
