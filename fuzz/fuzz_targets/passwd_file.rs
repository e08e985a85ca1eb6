#![no_main]

use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use tower_mail::auth::{Credentials, PasswdFile};

// The passwd-file reader takes any text, and a login against what it read either succeeds
// or fails: never a panic.
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let users = PasswdFile::parse(text);
    let user = text.split(':').next().unwrap_or_default().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let _ = runtime.block_on(users.oneshot(Credentials::new(user, "secret")));
});
