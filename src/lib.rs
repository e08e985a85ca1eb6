//! # tower-mail
//!
//! Connection management for IMAP and POP3 servers, the tower way: every accepted connection is
//! a request to a tower [`Service`](tower_service::Service), and connection policies are
//! [`Layer`](tower_layer::Layer)s stacked with `ServiceBuilder` in front of the protocol session
//! services.
//!
//! - [`Connection`] is the request: a transport plus an `Arc<`[`Session`]`>`.
//! - [`CloseReport`] is the response: the session service resolves when the session ends.
//! - A layer refuses a connection by failing with a [`Reject`]; the server tells the client
//!   (`* BYE <text>` / `-ERR <text>`) and closes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
mod close;
mod close_reason;
mod connection;
mod events;
mod extensions;
pub mod imap;
pub mod pop3;
mod reject;
mod session;
pub mod store;

pub use close::CloseReport;
pub use close_reason::CloseReason;
pub use connection::{BoxIo, Connection, ConnectionParts, Io, SessionSettings, Transport};
pub use events::{Observers, SessionEvent, SessionObserver};
pub use extensions::Extensions;
pub use reject::{
    BoxError, GENERIC_MESSAGE, MAX_MESSAGE_LEN, OVERLOADED_MESSAGE, Reject, TIMEOUT_MESSAGE,
    clean_message, refusal,
};
pub use session::{Protocol, Session, SessionId, State, TlsInfo};
pub mod server;
pub mod tls;
pub mod wire;
