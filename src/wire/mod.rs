//! Byte-level plumbing shared by the protocol services: the [`Channel`] to one client, a line
//! reader whose buffer grows on demand and shrinks when idle, a stream wrapper that counts
//! bytes into the session, and the one cleaner of text sent to clients ([`clean_line`]).

mod channel;
mod counting;
#[cfg(feature = "compress")]
mod deflate;
mod line;
mod stream;
mod text;

pub use channel::{Channel, Interrupted};
pub use counting::CountingIo;
#[cfg(feature = "compress")]
pub use deflate::DeflateIo;
pub use line::{Line, LineReader};
pub use text::clean_line;
pub(crate) use text::goodbye;
#[cfg(feature = "pop3")]
pub(crate) use text::status_line;
#[cfg(feature = "imap")]
pub(crate) use text::{bye, imap_text};
