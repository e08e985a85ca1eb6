//! # tower-mail-layers
//!
//! Connection policies for [`tower_mail`], each a tower [`Layer`](tower_layer::Layer) that
//! works in front of the IMAP and the POP3 session service alike, composable with
//! `ServiceBuilder` and with tower's own middleware. Each module is behind a cargo feature
//! (all on by default but `redis`), so a server takes only what it uses.
//!
//! | layer | feature | what it does |
//! |---|---|---|
//! | [`IpBlockLayer`](ip_block::IpBlockLayer) | `ip-block` | allow and deny lists of networks, replaceable at run time, temporary bans |
//! | [`RateLimitLayer`](rate_limit::RateLimitLayer) | `rate-limit` | connections at once and new connections per window, per address or network, in process or shared through Redis (`redis`) |
//! | [`TimeWindowLayer`](time_window::TimeWindowLayer) | `time-window` | business hours in an IANA time zone |
//! | [`OnConnectLayer`](on_connect::OnConnectLayer) | `hooks` | an async check of each new connection that may refuse it (WildDuck's `onConnect`) |
//! | [`OnCloseLayer`](on_close::OnCloseLayer) | `hooks` | a function that sees every connection end, exactly once, with its close report (WildDuck's `onClose`) |
//! | [`LoggingLayer`](logging::LoggingLayer) | `logging` | a tracing span per connection; connect, refusal and close events |
//! | [`MetricsLayer`](metrics::MetricsLayer) | `metrics` | connection, refusal, active-session and close metrics through the `metrics` facade |
//! | [`SessionRegistryLayer`](sessions::SessionRegistryLayer) | `sessions` | live sessions, to list them and end those of a user or an address (`doveadm who` / `kick`) |
//! | [`auth`] | `auth` | over the authentication service: verifications at once ([`VerifyLimitLayer`](auth::VerifyLimitLayer)), growing delays after failures ([`FailureDelayLayer`](auth::FailureDelayLayer)), each user's sessions ([`UserSessionsLayer`](auth::UserSessionsLayer)), bans of addresses that keep failing ([`AutoBanLayer`](auth::AutoBanLayer)); with `redis`, shared through Redis or a Redis Cluster |
//! | [`PolicyLayer`](policy::PolicyLayer) | always | any [`Policy`](policy::Policy), or a function of the session ([`PolicyLayer::from_fn`](policy::PolicyLayer::from_fn)), as a layer with a deadline, panic containment, shadow mode and a refusal delay |
//!
//! The modules have two shapes:
//! - The layers that decide whether a connection may start (the IP block, the rate limit, the
//!   time window) are each a [`Policy`](policy::Policy) served by the one `PolicyLayer`, so
//!   deadlines, shadow mode, refusal delays and panic containment are written once:
//!   `IpBlockLayer` is `PolicyLayer<IpBlock>`. Their modules hold the policy, not a layer.
//! - The others follow tower's pattern, `layer.rs`, `service.rs` and `future.rs` where they
//!   have a future of their own; `auth` keeps each of its small layers, layer and service, in
//!   one file.
//!
//! # Example
//!
//! The example server's order, outermost first: what sees every connection (logging, metrics,
//! the close hook) wraps what may refuse one, cheapest decision first, and tower's own limits sit
//! innermost.
//!
//! ```
//! use tower::ServiceBuilder;
//! use tower::limit::GlobalConcurrencyLimitLayer;
//! use tower::load_shed::LoadShedLayer;
//! use tower_mail::{CloseReport, Session};
//! use tower_mail_layers::ip_block::{IpBlock, IpBlockLayer, IpLists};
//! use tower_mail_layers::logging::LoggingLayer;
//! use tower_mail_layers::metrics::MetricsLayer;
//! use tower_mail_layers::on_close::OnCloseLayer;
//! use tower_mail_layers::rate_limit::{RateLimitConfig, RateLimitLayer};
//! use tower_mail_layers::time_window::{Schedule, TimeWindowLayer};
//!
//! # let sessions = tower::service_fn(|c: tower_mail::Connection| async move {
//! #     Ok::<_, tower_mail::BoxError>(tower_mail::CloseReport::new(c.session(), tower_mail::CloseReason::Logout)) });
//! let stack = ServiceBuilder::new()
//!     .layer(LoggingLayer::new())
//!     .layer(MetricsLayer::new())
//!     .layer(OnCloseLayer::new(|session: &Session, report: &CloseReport| {
//!         println!("{} ended: {:?}", session.peer_addr(), report.reason);
//!     }))
//!     .layer(IpBlockLayer::new(IpBlock::new(IpLists::default())))
//!     .layer(TimeWindowLayer::new(Schedule::always_open()))
//!     .layer(RateLimitLayer::new(RateLimitConfig {
//!         max_concurrent: Some(10),
//!         ..RateLimitConfig::default()
//!     }))
//!     .layer(LoadShedLayer::new())
//!     .layer(GlobalConcurrencyLimitLayer::new(10_000))
//!     .service(sessions);
//! # drop(stack);
//! ```
//!
//! The `Server` of [`tower_mail::server`] accepts connections and calls such a stack once per
//! connection; see its docs, and `examples/server.rs` for the whole server.
#![forbid(unsafe_code)]
// The crate docs link every module; with some features off, those links have no target.
#![cfg_attr(
    not(all(
        feature = "auth",
        feature = "hooks",
        feature = "ip-block",
        feature = "logging",
        feature = "metrics",
        feature = "rate-limit",
        feature = "sessions",
        feature = "time-window"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]
#![warn(missing_docs)]

#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "ip-block")]
pub mod ip_block;
#[cfg(feature = "logging")]
pub mod logging;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "hooks")]
pub mod on_close;
#[cfg(feature = "hooks")]
pub mod on_connect;
pub mod policy;
#[cfg(feature = "rate-limit")]
pub mod rate_limit;
#[cfg(feature = "redis")]
mod redis_support;
#[cfg(feature = "sessions")]
pub mod sessions;
#[cfg(feature = "time-window")]
pub mod time_window;
