//! Byte-level plumbing shared by the protocol services: a line reader whose buffer grows on
//! demand and shrinks when idle, and a stream wrapper that counts bytes into the session.

mod counting;
mod line;

pub use counting::CountingIo;
pub use line::{Line, LineReader};
