#![no_main]

use libfuzzer_sys::fuzz_target;

// Whatever a trusted peer sends as its PROXY header, cut anywhere, the reader answers by its
// deadline without a panic, and what it passes on is the client's own bytes.
fuzz_target!(|data: &[u8]| {
    tower_mail_fuzz::proxy_header(data);
});
