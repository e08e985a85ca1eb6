//! # tower-mail-layers
//!
//! Connection policies for [`tower_mail`], each a tower [`Layer`](tower_layer::Layer) that
//! works in front of the IMAP and the POP3 session service alike, composable with
//! `ServiceBuilder` and with tower's own middleware.
//!
//! - [`OnConnectLayer`](on_connect::OnConnectLayer): an async check of each new connection that
//!   may refuse it (WildDuck's `onConnect`).
//! - [`OnCloseLayer`](on_close::OnCloseLayer): a function that sees every connection end, exactly
//!   once, with its close report (WildDuck's `onClose`).
//!
//! - [`LoggingLayer`](logging::LoggingLayer): a tracing span per connection and connect,
//!   reject and close events.
//! - [`MetricsLayer`](metrics::MetricsLayer): connection, refusal, active-session and close
//!   metrics.
//!
//! - [`PolicyLayer`](policy::PolicyLayer): any [`Policy`](policy::Policy) as a layer, with
//!   deadline, panic containment, shadow mode and delayed refusal.
//!
//! - [`auth`]: layers over the authentication service (`tower_mail::auth::Authenticator`):
//!   a bound on password verifications at once ([`VerifyLimitLayer`](auth::VerifyLimitLayer)),
//!   growing delays for failed logins ([`FailureDelayLayer`](auth::FailureDelayLayer)), a cap
//!   on each user's sessions ([`UserSessionsLayer`](auth::UserSessionsLayer)) and bans of
//!   addresses that keep failing ([`AutoBanLayer`](auth::AutoBanLayer)); with the `redis`
//!   feature, their counts and bans shared by several servers through Redis or a Redis
//!   Cluster (`auth::RedisAuth`).
//!
//! - [`SessionRegistryLayer`](sessions::SessionRegistryLayer): a registry of live sessions
//!   to list them and end those of a user or an address (`doveadm who` / `kick`).
//!
//! Each module follows tower's pattern: `layer.rs`, `service.rs`, `future.rs`; `auth` keeps
//! each of its small layers, layer and service, in one file.
#![forbid(unsafe_code)]
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
