//! Connection metrics through the [`metrics`] crate, for any exporter (the example
//! server uses Prometheus).
//!
//! | name | labels | meaning |
//! |---|---|---|
//! | `mail_connections_total` | `protocol`, `outcome` | `accepted` or `rejected` connections |
//! | `mail_rejections_total` | `protocol`, `layer` | refusals by the refusing layer |
//! | `mail_connections_active` | `protocol` | sessions open now |
//! | `mail_connections_closed_total` | `protocol`, `reason` | every accepted connection, once, when it ends |
//! | `mail_session_duration_seconds` | `protocol` | histogram of session lengths |
//!
//! A connection counts as accepted when its session service takes it
//! ([`SessionEvent::Started`](tower_mail::SessionEvent::Started)); until then a failure is a
//! refusal. Put the layer outermost, so it sees refusals by every layer inside it.
//!
//! Each thread resolves a metric's handle from the recorder once and keeps it, so a connection
//! costs a few atomic operations, not a key on the heap and a registry lookup per metric. The
//! recorder in force at each event (global, or local to the thread) is still the one recorded
//! into: handles are kept per recorder, told apart by address. A local recorder made anew at
//! the address of an earlier one, on the same thread, would be taken for it.
//!
//! ```
//! use tower::ServiceBuilder;
//! use tower_mail_layers::metrics::MetricsLayer;
//! # let service = tower::service_fn(|c: tower_mail::Connection| async move {
//! #     Ok::<_, tower_mail::BoxError>(tower_mail::CloseReport::new(c.session(), tower_mail::CloseReason::Logout)) });
//! let stack = ServiceBuilder::new().layer(MetricsLayer::new()).service(service);
//! # drop(stack);
//! ```

mod hook;
mod layer;
mod service;
#[cfg(test)]
mod tests;

pub use hook::RecordClose;
pub use layer::MetricsLayer;
pub use service::{Metrics, MetricsFuture};
