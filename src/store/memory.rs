//! In-memory storage (stub: being written).
/// In-memory storage.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore;
