//! A registry of live sessions, so an operator can list them and end those of a user or an
//! address (Dovecot's `doveadm who` and `doveadm kick`).
//!
//! [`SessionRegistryLayer`] registers every connection it lets in (it refuses none) and
//! removes it when the connection ends, on every path. Put it where the sessions to list
//! pass: after the policies that refuse, so refused connections are not listed. The
//! [`SessionRegistry`] handle kept aside answers the admin side: [`sessions`] for the list
//! (each [`Session`] gives its id, user, address, protocol, start and
//! state), [`kick_user`] and [`kick_address`] to end sessions; each ended client is told
//! why (`* BYE` / `-ERR`).
//!
//! ```
//! use tower::ServiceBuilder;
//! use tower_mail_layers::sessions::{SessionRegistry, SessionRegistryLayer};
//!
//! let registry = SessionRegistry::new();
//! # let service = tower::service_fn(|c: tower_mail::Connection| async move {
//! #     Ok::<_, tower_mail::BoxError>(tower_mail::CloseReport::new(c.session(), tower_mail::CloseReason::Logout)) });
//! let stack = ServiceBuilder::new()
//!     .layer(SessionRegistryLayer::new(registry.clone()))
//!     .service(service);
//! // Later, from an admin endpoint:
//! let ended = registry.kick_user("alice", "Kicked by an administrator");
//! # drop((stack, ended));
//! ```
//!
//! [`sessions`]: SessionRegistry::sessions
//! [`kick_user`]: SessionRegistry::kick_user
//! [`kick_address`]: SessionRegistry::kick_address

mod registry;

use std::future::{Ready, ready};
use std::sync::Arc;

use tower_mail::{Reject, Session};

use crate::policy::{Policy, PolicyLayer, PolicyService};

pub use registry::{RegistryGuard, SessionRegistry};

/// Registers each connection in a [`SessionRegistry`] for its life.
pub type SessionRegistryLayer = PolicyLayer<SessionRegistry>;

/// The service of [`SessionRegistryLayer`].
pub type SessionRegistryService<S> = PolicyService<S, SessionRegistry>;

impl SessionRegistryLayer {
    /// Register connections in `registry`.
    pub fn new(registry: SessionRegistry) -> Self {
        PolicyLayer::from_policy(registry)
    }
}

/// Lets every connection in; the permit is its registration.
impl Policy for SessionRegistry {
    type Permit = RegistryGuard;
    type Future = Ready<Result<RegistryGuard, Reject>>;

    fn name(&self) -> &'static str {
        "sessions"
    }

    fn check(&self, session: &Arc<Session>) -> Self::Future {
        ready(Ok(self.register(session)))
    }

    fn check_now(&self, session: &Arc<Session>) -> Option<Result<RegistryGuard, Reject>> {
        Some(Ok(self.register(session)))
    }
}

#[cfg(test)]
mod tests;
