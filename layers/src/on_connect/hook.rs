use std::future::Future;
use std::sync::Arc;

use tower_mail::{Reject, Session};

use super::{LAYER_NAME, OnConnectLayer};
use crate::policy::{Policy, PolicyLayer};

/// An async function of the session as a [`Policy`].
#[derive(Debug, Clone)]
pub struct OnConnectHook<F>(F);

impl<F, Fut> Policy for OnConnectHook<F>
where
    F: Fn(Arc<Session>) -> Fut,
    Fut: Future<Output = Result<(), Reject>>,
{
    type Permit = ();
    type Future = Fut;

    fn name(&self) -> &'static str {
        LAYER_NAME
    }

    fn check(&self, session: &Arc<Session>) -> Fut {
        (self.0)(session.clone())
    }
}

impl<F> OnConnectLayer<F> {
    /// Run `hook` for every new connection, with the default 5-second deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_mail_layers::on_connect::OnConnectLayer;
    /// let layer = OnConnectLayer::new(|_s| async { Ok(()) }).deadline(Duration::from_millis(500));
    /// # drop(layer);
    /// ```
    pub fn new<Fut>(hook: F) -> Self
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<(), Reject>>,
    {
        PolicyLayer::from_policy(OnConnectHook(hook))
    }
}
