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
//!
//! # Features
//!
//! The connection model above, the [`server`], [`wire`] and the [`auth`] service types are
//! always built. The rest is in cargo features, all on by default except `test-util`:
//!
//! - `imap`: the IMAP session service (`imap`; brings imap-codec, mail-parser and chrono).
//! - `pop3`: the POP3 session service (`pop3`).
//! - `maildir`: the Maildir++ store (`store::Maildir`).
//!
//!   Any of these three builds the `store` module (the `Mailstore` trait and `MemoryStore`).
//! - `tls`: TLS with rustls (`tls::acceptor_from_pem`, implicit-TLS and STARTTLS listeners).
//!   Without it [`tls::TlsAcceptor`] is a type with no values: the server and the session
//!   services compile unchanged, and every listener is plaintext ([`server::TlsMode::None`]).
//! - `self-signed`: `tls::self_signed`, a certificate made at start-up (brings rcgen;
//!   implies `tls`).
//! - `passwd-file`: `auth::PasswdFile`, users in a Dovecot passwd-file with Dovecot's password
//!   schemes (brings argon2, sha-crypt, bcrypt, pbkdf2 and RustCrypto's digests).
//! - `test-util`: helpers for tests, not for production code: `Connection::for_test`, and with
//!   `tls`, `tls::connector_trusting`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The docs link to items of optional features; with some of them off, such links cannot
// resolve. The build with every feature (docs.rs, and `.ci/run`) checks every link.
#![cfg_attr(
    not(all(
        feature = "imap",
        feature = "pop3",
        feature = "maildir",
        feature = "tls",
        feature = "passwd-file",
        feature = "scram",
        feature = "compress"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

pub mod auth;
mod close;
mod close_reason;
mod connection;
mod events;
mod extensions;
#[cfg(feature = "imap")]
pub mod imap;
#[cfg(feature = "pop3")]
pub mod pop3;
#[cfg(any(feature = "imap", feature = "pop3"))]
mod protocol;
mod reject;
mod session;
#[cfg(any(feature = "imap", feature = "pop3", feature = "maildir"))]
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
#[cfg(feature = "tls")]
pub mod tls;
// Without the `tls` feature: a `TlsAcceptor` with no values, so every listener is plaintext.
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
pub mod tls;
pub mod wire;
