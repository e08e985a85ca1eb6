//! The fuzz targets' shared harness (see `harness.rs`), also run over the committed seed
//! corpus by the normal test suite (`tests/fuzz_corpus.rs`).

mod harness;

pub use harness::*;
