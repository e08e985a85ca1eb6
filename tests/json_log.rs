//! The example server's JSON log lines (`examples/server/json_log.rs`), whose unit tests run
//! here: an example built with `test = true` is not also built as the binary that the tests
//! of the example server start.

#[path = "../examples/server/json_log.rs"]
mod json_log;
