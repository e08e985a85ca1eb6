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
//! Each module follows tower's pattern: `layer.rs`, `service.rs`, `future.rs`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "hooks")]
pub mod on_close;
#[cfg(feature = "hooks")]
pub mod on_connect;
