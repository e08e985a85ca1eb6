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

mod future;
mod layer;
mod service;
mod shadow;
mod swappable;

use std::future::Future;
use std::sync::Arc;

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
}
