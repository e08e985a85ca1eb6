//! A tracing span per connection and one event per connect, refusal and close.
//!
//! Events carry `event` (`connect`, `reject`, `close`), `session_id`, `protocol`,
//! `remote_addr`; `reject` adds `layer` and `message`; `close` adds `duration_ms`, `reason`,
//! `user`, `state`, `bytes_in`, `bytes_out` and `commands`. Nothing secret is logged: no
//! passwords, no message content. Addresses in the ignore list (health checks) log nothing.
//!
//! Put it outermost, so it sees refusals by every layer inside it.
//!
//! ```
//! use tower::ServiceBuilder;
//! use tower_mail_layers::logging::LoggingLayer;
//!
//! let logging = LoggingLayer::new()
//!     .level(tracing::Level::INFO)
//!     .ignore("127.0.0.2/32".parse().unwrap());
//! # let service = tower::service_fn(|c: tower_mail::Connection| async move {
//! #     Ok::<_, tower_mail::BoxError>(tower_mail::CloseReport::new(c.session(), tower_mail::CloseReason::Logout)) });
//! let stack = ServiceBuilder::new().layer(logging).service(service);
//! # drop(stack);
//! ```

mod address;
mod hook;
mod layer;
mod service;

pub use layer::LoggingLayer;
pub use service::{Logging, LoggingFuture};
