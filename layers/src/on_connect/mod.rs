//! Check each new connection with an async function that may refuse it: the reference guide's
//! `onConnect`, without its failure modes. It is a [`Policy`](crate::policy::Policy) over a
//! closure, so it has every policy option:
//!
//! - the hook's future is bounded by a deadline (default 5 s): a hook that never finishes
//!   refuses its connection with "Timeout" instead of hanging it;
//! - a hook that panics, synchronously or while polled, refuses only its own connection, with
//!   a generic text; the server goes on;
//! - shadow mode and delayed refusal, as for every policy.
//!
//! ```
//! use std::sync::Arc;
//! use tower::ServiceBuilder;
//! use tower_mail::{Reject, Session};
//! use tower_mail_layers::on_connect::OnConnectLayer;
//!
//! let layer = OnConnectLayer::new(|session: Arc<Session>| async move {
//!     if session.remote_addr().ip().is_unspecified() {
//!         return Err(Reject::new("Connection rejected: Custom reason"));
//!     }
//!     Ok(())
//! });
//! # let service = tower::service_fn(|c: tower_mail::Connection| async move {
//! #     Ok::<_, tower_mail::BoxError>(tower_mail::CloseReport::new(c.session(), tower_mail::CloseReason::Logout)) });
//! let stack = ServiceBuilder::new().layer(layer).service(service);
//! # drop(stack);
//! ```

mod hook;

pub use hook::OnConnectHook;

use crate::policy::{PolicyLayer, PolicyService};

/// The name refusals of this layer carry in metrics and logs.
pub const LAYER_NAME: &str = "on_connect";

/// Runs an async hook for every new connection. See the [module docs](self).
pub type OnConnectLayer<F> = PolicyLayer<OnConnectHook<F>>;

/// The service [`OnConnectLayer`] makes.
pub type OnConnect<S, F> = PolicyService<S, OnConnectHook<F>>;
