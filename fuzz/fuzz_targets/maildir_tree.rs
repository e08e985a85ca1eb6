#![no_main]

use libfuzzer_sys::fuzz_target;

// A Maildir left by other programs (a UID list, a keywords file, message file names) is read
// without a panic, and its UIDs stay unique and ascending below UIDNEXT.
fuzz_target!(|data: &[u8]| {
    tower_mail_fuzz::maildir_tree(data);
});
