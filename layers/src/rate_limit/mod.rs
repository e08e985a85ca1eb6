//! Per-key connection limits (being written).
