use std::sync::Arc;

use arc_swap::ArcSwap;
use tower_mail::{Reject, Session};

use super::Policy;

/// A policy that can be replaced while the server runs: every clone shares the current one.
/// New connections are checked against the replacement; open sessions keep the permits they
/// have.
///
/// ```
/// use std::future::{ready, Ready};
/// use std::sync::Arc;
/// use tower_mail::{Reject, Session};
/// use tower_mail_layers::policy::{Policy, PolicyLayer, Swappable};
///
/// #[derive(Clone)]
/// struct Closed(bool);
/// impl Policy for Closed {
///     type Permit = ();
///     type Future = Ready<Result<(), Reject>>;
///     fn name(&self) -> &'static str { "closed" }
///     fn check(&self, _: &Arc<Session>) -> Self::Future {
///         ready(if self.0 { Err(Reject::new("Closed")) } else { Ok(()) })
///     }
/// }
///
/// let policy = Swappable::new(Closed(false));
/// let layer = PolicyLayer::from_policy(policy.clone());
/// policy.replace(Closed(true)); // e.g. on SIGHUP
/// # drop(layer);
/// ```
#[derive(Debug)]
pub struct Swappable<P> {
    current: Arc<ArcSwap<P>>,
}

impl<P> Clone for Swappable<P> {
    fn clone(&self) -> Self {
        Swappable {
            current: self.current.clone(),
        }
    }
}

impl<P> Swappable<P> {
    /// Start with `policy`.
    pub fn new(policy: P) -> Self {
        Swappable {
            current: Arc::new(ArcSwap::from_pointee(policy)),
        }
    }

    /// Check new connections against `policy` from now on.
    pub fn replace(&self, policy: P) {
        self.current.store(Arc::new(policy));
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<P> {
        self.current.load_full()
    }

    // Checks borrow the policy rather than clone its Arc (they run on every connection), and
    // neither they nor a replace ever wait for each other.
    pub(super) fn read(&self) -> arc_swap::Guard<Arc<P>> {
        self.current.load()
    }
}

impl<P: Policy> Policy for Swappable<P> {
    type Permit = P::Permit;
    type Future = P::Future;

    fn name(&self) -> &'static str {
        self.read().name()
    }

    fn check(&self, session: &Arc<Session>) -> Self::Future {
        self.read().check(session)
    }

    fn check_now(&self, session: &Arc<Session>) -> Option<Result<P::Permit, Reject>> {
        self.read().check_now(session)
    }
}
