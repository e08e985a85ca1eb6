use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;

use tower_mail::{Reject, Session};

use super::{Policy, PolicyLayer};

/// A [`Policy`] made of a function that decides on the spot: made by
/// [`PolicyLayer::from_fn`].
///
/// It answers [`Policy::check_now`], so its layer costs no allocation and no timer per
/// connection, and it has every option of a policy (shadow mode, a refusal delay, panic
/// containment). A decision that must wait (a database, a network call) belongs in an
/// `OnConnectLayer` (the `hooks` feature) or a [`Policy`] of its own.
#[derive(Clone)]
pub struct PolicyFn<F> {
    name: &'static str,
    decide: F,
}

impl<F> fmt::Debug for PolicyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyFn")
            .field("name", &self.name)
            .finish()
    }
}

impl<F> Policy for PolicyFn<F>
where
    F: Fn(&Session) -> Result<(), Reject>,
{
    type Permit = ();
    type Future = Ready<Result<(), Reject>>;

    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self, session: &Arc<Session>) -> Self::Future {
        ready((self.decide)(session))
    }

    fn check_now(&self, session: &Arc<Session>) -> Option<Result<(), Reject>> {
        Some((self.decide)(session))
    }
}

impl<F> PolicyLayer<PolicyFn<F>>
where
    F: Fn(&Session) -> Result<(), Reject>,
{
    /// Check each connection with `decide`, a function that answers at once; its refusals
    /// name the layer `name` in metrics and logs, unless the [`Reject`] names one itself.
    ///
    /// ```
    /// use tower::ServiceBuilder;
    /// use tower_mail::{Reject, Session};
    /// use tower_mail_layers::policy::PolicyLayer;
    ///
    /// let layer = PolicyLayer::from_fn("require_tls", |session: &Session| match session.secure() {
    ///     true => Ok(()),
    ///     false => Err(Reject::new("TLS required")),
    /// });
    /// # let service = tower::service_fn(|c: tower_mail::Connection| async move {
    /// #     Ok::<_, tower_mail::BoxError>(tower_mail::CloseReport::new(c.session(), tower_mail::CloseReason::Logout)) });
    /// let stack = ServiceBuilder::new().layer(layer.shadow()).service(service);
    /// # drop(stack);
    /// ```
    pub fn from_fn(name: &'static str, decide: F) -> Self {
        PolicyLayer::from_policy(PolicyFn { name, decide })
    }
}
