//! Address-only policies run by an implicit-TLS listener before its handshake.

use std::sync::Arc;

use tower_mail::server::AddressCheck;
use tower_mail::{Reject, Session};

use super::{Policy, Swappable};

/// A [`Policy`] that can tell from the connection's addresses and the time alone, before the
/// TLS handshake, that it would refuse the connection, and can tell it without changing any
/// state: [`IpBlock`](crate::ip_block::IpBlock), the time window's
/// [`Schedule`](crate::time_window::Schedule), and the
/// [`RateLimit`](crate::rate_limit::RateLimit) by address or network.
///
/// The connections let through meet the policy again in the stack after the handshake, which
/// decides for real: there it counts, takes its permit, logs and is counted in the metrics.
/// [`refuses_now`](AddressPolicy::refuses_now) is only an early look at that verdict.
pub trait AddressPolicy: Policy {
    /// The refusal this policy would give `session`'s connection if it were checked now, when
    /// the policy can tell on the spot; `None` lets the connection through, and the stack
    /// decides after the handshake.
    ///
    /// A peek: it must change no state. It counts nothing, takes and holds nothing, and
    /// leaves the policy exactly as it found it, so that the same connection checked again in
    /// the stack is counted once. `None` is right whenever the policy cannot answer without
    /// waiting or without changing something (a networked store, a key that needs what the
    /// handshake brings).
    ///
    /// The default asks [`check_now`](Policy::check_now) and drops the permit at once: right
    /// for a policy whose permit holds nothing that counts (a time window). A policy whose
    /// check counts the connection (a rate limit) or registers it somewhere must override it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_mail::{Protocol, Session};
    /// use tower_mail_layers::policy::AddressPolicy;
    /// use tower_mail_layers::rate_limit::{Key, RateLimit, RateLimitConfig};
    ///
    /// let limit = RateLimit::new(RateLimitConfig { max_concurrent: Some(1), ..Default::default() });
    /// let session = Arc::new(Session::new(Protocol::Imap,
    ///     "192.0.2.1:40000".parse().unwrap(), "127.0.0.1:993".parse().unwrap()));
    /// // However often it is asked, a peek takes no slot.
    /// for _ in 0..3 {
    ///     assert!(limit.refuses_now(&session).is_none());
    /// }
    /// let key = Key::from(session.remote_addr().ip());
    /// assert_eq!(limit.store().connections(&key), 0);
    /// ```
    fn refuses_now(&self, session: &Arc<Session>) -> Option<Reject> {
        match self.check_now(session) {
            Some(Err(reject)) => Some(reject),
            // The permit goes at once: by this trait's contract it counted nothing.
            Some(Ok(_)) | None => None,
        }
    }
}

impl<P: AddressPolicy> AddressPolicy for Swappable<P> {
    fn refuses_now(&self, session: &Arc<Session>) -> Option<Reject> {
        self.read().refuses_now(session)
    }
}

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
        // A policy that cannot tell on the spot lets the connection through to its layer.
        match self.0.refuses_now(session) {
            Some(reject) if reject.layer() == "custom" => Err(reject.with_layer(self.0.name())),
            Some(reject) => Err(reject),
            None => Ok(()),
        }
    }
}
