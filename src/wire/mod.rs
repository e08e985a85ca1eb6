//! Byte-level plumbing shared by the protocol services: the [`Channel`] to one client, a line
//! reader whose buffer grows on demand and shrinks when idle, and a stream wrapper that counts
//! bytes into the session.

mod channel;
mod counting;
mod line;

pub use channel::{Channel, Interrupted};
pub use counting::CountingIo;
pub use line::{Line, LineReader};
