//! The shape every connection policy shares: check a connection, then pass it on or refuse it.
//!
//! A [`Policy`] decides per connection, asynchronously if it must (a Redis round trip), and
//! may hand back a permit that is held for the session's whole life and released when the
//! connection ends on any path (a rate limiter's concurrency slot). [`PolicyLayer`] turns any
//! policy into a tower layer and adds what every policy needs:
//!
//! - a deadline on the check, so a stuck check refuses ("Timeout") instead of hanging;
//! - panic containment: a panicking check refuses only its own connection, with a generic text;
//! - shadow mode: refusals are logged and counted but the connection is let in, to try a policy
//!   safely (as Envoy's RBAC shadow rules and Dovecot's auth-policy `log_only` do);
//! - delayed refusal: hold a refused client before answering (a tarpit, as Envoy's
//!   `delay_deny`); the server waits after the stack has let go of every permit.
//!
//! `poll_ready` is the inner service's, so back-pressure passes through untouched; the inner
//! service that was made ready is the one called once the check passes.
//!
//! ```
//! use std::future::{ready, Ready};
//! use std::sync::Arc;
//! use tower::ServiceBuilder;
//! use tower_mail::{Reject, Session};
//! use tower_mail_layers::policy::{Policy, PolicyLayer};
//!
//! /// Refuses plaintext connections.
//! #[derive(Clone)]
//! struct RequireTls;
//!
//! impl Policy for RequireTls {
//!     type Permit = ();
//!     type Future = Ready<Result<(), Reject>>;
//!     fn name(&self) -> &'static str {
//!         "require_tls"
//!     }
//!     fn check(&self, session: &Arc<Session>) -> Self::Future {
//!         ready(if session.secure() { Ok(()) } else { Err(Reject::new("TLS required")) })
//!     }
//! }
//!
//! # let service = tower::service_fn(|c: tower_mail::Connection| async move {
//! #     Ok::<_, tower_mail::BoxError>(tower_mail::CloseReport::new(c.session(), tower_mail::CloseReason::Logout)) });
//! let stack = ServiceBuilder::new()
//!     .layer(PolicyLayer::from_policy(RequireTls).shadow())
//!     .service(service);
//! # drop(stack);
//! ```

mod before_handshake;
mod from_fn;
mod future;
mod layer;
mod service;
mod shadow;
mod swappable;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

pub use before_handshake::{AddressPolicy, BeforeHandshake};
pub use from_fn::PolicyFn;
pub use future::PolicyFuture;
pub use layer::PolicyLayer;
pub use service::PolicyService;
pub use swappable::Swappable;
use tower_mail::{Reject, Session};

/// A per-connection decision. See the [module docs](self).
pub trait Policy {
    /// Held while the session runs, dropped when the connection ends: `()` for policies that
    /// hold nothing.
    type Permit;
    /// The check's future.
    type Future: Future<Output = Result<Self::Permit, Reject>>;

    /// The layer name refusals carry in metrics and logs (`ip_block`, `rate_limit`, ...).
    fn name(&self) -> &'static str;

    /// Decide whether `session`'s connection may proceed.
    fn check(&self, session: &Arc<Session>) -> Self::Future;

    /// The verdict right away, for a policy that has it without waiting: the layer then goes
    /// straight to the inner service, without keeping [`check`](Policy::check)'s future (an
    /// allocation) or arming its deadline's timer. `None`, the default, means "ask through
    /// `check`", and must have changed nothing, since `check` is called next.
    ///
    /// The policies of this crate that decide on the spot (IP lists, time windows, the local
    /// rate-limit store) answer here; an async hook or a networked store keeps the default.
    ///
    /// ```
    /// use std::future::{ready, Ready};
    /// use std::sync::Arc;
    /// use tower_mail::{Protocol, Reject, Session};
    /// use tower_mail_layers::policy::Policy;
    ///
    /// struct RequireTls;
    ///
    /// impl RequireTls {
    ///     fn decide(&self, session: &Session) -> Result<(), Reject> {
    ///         if session.secure() { Ok(()) } else { Err(Reject::new("TLS required")) }
    ///     }
    /// }
    ///
    /// impl Policy for RequireTls {
    ///     type Permit = ();
    ///     type Future = Ready<Result<(), Reject>>;
    ///     fn name(&self) -> &'static str {
    ///         "require_tls"
    ///     }
    ///     fn check(&self, session: &Arc<Session>) -> Self::Future {
    ///         ready(self.decide(session))
    ///     }
    ///     fn check_now(&self, session: &Arc<Session>) -> Option<Result<(), Reject>> {
    ///         Some(self.decide(session))
    ///     }
    /// }
    ///
    /// let session = Arc::new(Session::new(Protocol::Imap,
    ///     "192.0.2.1:40000".parse().unwrap(), "127.0.0.1:143".parse().unwrap()));
    /// assert!(RequireTls.check_now(&session).unwrap().is_err());
    /// ```
    fn check_now(&self, session: &Arc<Session>) -> Option<Result<Self::Permit, Reject>> {
        let _ = session;
        None
    }
}
