//! Maildir++ storage (stub: being written).
/// Maildir++ storage.
#[derive(Debug, Clone)]
pub struct Maildir;
