//! See every connection end, exactly once, with its close report: the reference guide's
//! `onClose`, made impossible to skip or double.
//!
//! The hook runs when the inner future finishes, fails, or is dropped unfinished, on every
//! path: logout, client reset, half-close, idle or session timeout, refusal by a later layer,
//! a panic in the session, or shutdown. A drop guard gives this for free where WildDuck's
//! callbacks leak (the `onClose(session)` form never calls back) or fire twice (half-close).
//!
//! - On success the hook gets the session service's [`CloseReport`].
//! - On a refusal by a layer inside this one, the reason is
//!   [`CloseReason::Rejected`](tower_mail::CloseReason::Rejected) with the client's text and
//!   the refusing layer.
//! - On a panic inside, the reason is [`CloseReason::Panic`](tower_mail::CloseReason::Panic);
//!   the panic then continues outward to the server, which contains it to this connection.
//! - A panic in the hook itself is caught and logged.
//!
//! ```
//! use tower::ServiceBuilder;
//! use tower_mail::{CloseReport, Session};
//! use tower_mail_layers::on_close::OnCloseLayer;
//!
//! let layer = OnCloseLayer::new(|session: &Session, report: &CloseReport| {
//!     println!("{} lasted {:?} ({})", session.id(), report.duration, report.reason);
//! });
//! # let service = tower::service_fn(|c: tower_mail::Connection| async move {
//! #     Ok::<_, tower_mail::BoxError>(tower_mail::CloseReport::new(c.session(), tower_mail::CloseReason::Logout)) });
//! let stack = ServiceBuilder::new().layer(layer).service(service);
//! # drop(stack);
//! ```

mod future;
mod layer;
mod service;

pub use future::OnCloseFuture;
pub use layer::OnCloseLayer;
pub use service::OnClose;

use tower_mail::{CloseReport, Session};

/// Something to run once when a connection ends. Closures `Fn(&Session, &CloseReport)` are
/// close hooks; layers implement it for their own state (see the logging and metrics layers).
pub trait CloseHook {
    /// Called exactly once per connection, with its final session and close report.
    fn on_close(&self, session: &Session, report: &CloseReport);
}

impl<F: Fn(&Session, &CloseReport)> CloseHook for F {
    fn on_close(&self, session: &Session, report: &CloseReport) {
        self(session, report)
    }
}
