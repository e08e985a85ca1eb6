//! POP3: the session service ([`Pop3Service`]) and its sans-I/O parts (command parsing, reply
//! encoding, dot-stuffing).
//!
//! RFC 1939 in full (USER/PASS, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL), CAPA with
//! RESP-CODES and AUTH-RESP-CODE (RFC 2449), STLS (RFC 2595), AUTH with initial responses (RFC
//! 5034) and the mechanisms of [`auth::sasl`](crate::auth::sasl), and UTF8 (RFC 6856).
//! Deletions happen only in the UPDATE state, after QUIT.

mod capabilities;
pub mod command;
mod config;
pub mod dotstuff;
mod maildrop;
pub mod response;
mod service;
mod session;

pub use config::Pop3Config;
pub use service::Pop3Service;
