//! The Maildir message cache (`tower-mail-cache`) through the example server and Python's
//! imaplib: ENVELOPE and BODYSTRUCTURE come from it after a restart, and so do THREAD's
//! References ids, what other programs do
//! to the Maildir (a flag change by rename, a removal, a replacement, a delivery into `new/`)
//! is answered as without it, and a damaged cache file is ignored and rebuilt.
//!
//! ```text
//! cargo build --example server && cargo test --test fetch_cache
//! ```
//!
//! Needs `python3` (imaplib from the standard library).

mod support_example;
mod support_shared;

use std::fs;
use std::path::{Path, PathBuf};

use support_example::imaplib::imaplib;
use support_example::{ExampleServer, USER};

const CACHE_FILE: &str = "tower-mail-cache";

fn message(subject: &str) -> Vec<u8> {
    message_with_id(subject, &subject.replace(' ', "-"))
}

/// [`message`] with Message-ID `<id@example.org>`.
fn message_with_id(subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.org>\r\n\
         To: demo@localhost\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{}@example.org>\r\n\
         Content-Type: multipart/alternative; boundary=b\r\n\
         \r\n\
         --b\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         {subject}, in text.\r\n\
         --b\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         \r\n\
         <p>{subject}</p>\r\n\
         --b--\r\n",
        id
    )
    .into_bytes()
}

/// Every FETCH response to `UID FETCH 1:* <items>` on demo's INBOX, as imaplib read them.
fn fetch_all(server: &ExampleServer, items: &str) -> Vec<String> {
    let printed = imaplib(
        server,
        r#"
        typ, data = M.select("INBOX")
        assert typ == "OK", data
        typ, data = M.uid("FETCH", "1:*", ARGS[0])
        assert typ == "OK", data
        for response in data:
            out("fetch", response)
        M.logout()
        "#,
        &[items],
    );
    printed.all("fetch").iter().map(|r| r.to_string()).collect()
}

/// What a client sees of demo's INBOX through the two commands the cache serves. The
/// first session after a delivery also sees `\Recent`, which no later one does: compare
/// answers from the second look on.
fn both(server: &ExampleServer) -> Vec<String> {
    let mut responses = fetch_all(server, "(FLAGS ENVELOPE)");
    responses.extend(fetch_all(server, "(BODYSTRUCTURE)"));
    responses
}

fn inbox(server: &ExampleServer) -> PathBuf {
    server.maildir().join(USER)
}

/// The message file in demo's INBOX (`cur/` or `new/`) whose content holds `needle`.
#[track_caller]
fn file_holding(server: &ExampleServer, needle: &str) -> PathBuf {
    ["cur", "new"]
        .iter()
        .flat_map(|dir| fs::read_dir(inbox(server).join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            let content = fs::read(path).unwrap();
            String::from_utf8_lossy(&content).contains(needle)
        })
        .unwrap_or_else(|| panic!("no message holds {needle:?}"))
}

fn cache_file(server: &ExampleServer) -> Vec<u8> {
    fs::read(inbox(server).join(CACHE_FILE)).expect("the cache file")
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(bytes).contains(needle)
}

#[track_caller]
fn assert_subjects(responses: &[String], expected: &[&str]) {
    let subjects: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|subject| responses.iter().any(|r| r.contains(subject)))
        .collect();
    assert_eq!(subjects, expected, "in {responses:#?}");
}

/// Rewrites a message file in place with other content of the same length: no Maildir
/// program does that (a message never changes under its name), so what a client sees
/// afterwards tells whether the server read the file or its cache.
fn overwrite_in_place(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let content = String::from_utf8(fs::read(path).unwrap()).unwrap();
    fs::write(path, content.replace(from, to)).unwrap();
}

#[test]
fn envelopes_and_structures_are_served_from_the_cache_after_a_restart() {
    let mut server = ExampleServer::start();
    server.deliver(&message("Hello cache"));
    server.deliver(&message("Second one"));
    both(&server);
    let first = both(&server);
    assert_eq!(first.len(), 4, "{first:#?}");
    assert_subjects(&first, &["Hello cache", "Second one"]);
    let cache = cache_file(&server);
    assert!(holds(&cache, "Hello cache") && holds(&cache, "Second one"));

    server.restart();
    overwrite_in_place(
        &file_holding(&server, "Hello cache"),
        "Hello cache",
        "Jello cache",
    );
    assert_eq!(both(&server), first, "served from the cache file");
    let header = fetch_all(&server, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(
        header.iter().any(|r| r.contains("Subject: Jello cache")),
        "the file itself did change: {header:#?}"
    );
}

/// THREAD=REFERENCES reads the References ids the cache keeps beside the ENVELOPE, not the
/// messages: after a restart, a reply whose file was rewritten to reference another message
/// is still threaded under the one the cache names.
#[test]
fn thread_references_are_served_from_the_cache_after_a_restart() {
    let mut server = ExampleServer::start();
    let with_references = |subject: &str, id: &str, references: &str| {
        let mut message = format!("References: {references}\r\n").into_bytes();
        message.extend(message_with_id(subject, id));
        message
    };
    server.deliver(&message_with_id("root one", "r1"));
    server.deliver(&message_with_id("root two", "r2"));
    server.deliver(&with_references("a reply", "c1", "<r1@example.org>"));
    let thread = |server: &ExampleServer| {
        let printed = imaplib(
            server,
            r#"
            typ, data = M.select("INBOX")
            assert typ == "OK", data
            typ, data = M.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
            assert typ == "OK", data
            out("thread", data[0])
            M.logout()
            "#,
            &[],
        );
        printed.all("thread")[0].to_string()
    };
    let first = thread(&server);
    assert_eq!(first, "(1 3)(2)");
    assert!(holds(&cache_file(&server), "<r1@example.org>"));

    server.restart();
    overwrite_in_place(
        &file_holding(&server, "a reply"),
        "<r1@example.org>",
        "<r2@example.org>",
    );
    assert_eq!(thread(&server), first, "threaded by the cache's ids");
}

#[test]
fn what_other_programs_do_to_the_maildir_is_answered_as_without_the_cache() {
    let mut server = ExampleServer::start();
    for subject in ["Flagged later", "Removed later", "Replaced later"] {
        server.deliver(&message(subject));
    }
    assert_subjects(
        &both(&server),
        &["Flagged later", "Removed later", "Replaced later"],
    );

    // A mail client flags one (a rename of the `:2,` suffix), another program removes one
    // and replaces one (a new file: a new UID), an MDA delivers into `new/`.
    let flagged = file_holding(&server, "Flagged later");
    let name = flagged.file_name().unwrap().to_str().unwrap().to_owned();
    fs::rename(&flagged, flagged.with_file_name(format!("{name}F"))).unwrap();
    fs::remove_file(file_holding(&server, "Removed later")).unwrap();
    let replaced = file_holding(&server, "Replaced later");
    fs::remove_file(&replaced).unwrap();
    let cur = inbox(&server).join("cur");
    fs::write(
        cur.join("1700000000.M1P1Q1.outside:2,S"),
        message("Replacement"),
    )
    .unwrap();
    fs::write(
        inbox(&server).join("new").join("1700000001.M2P2Q2.mda"),
        message("Delivered by an MDA"),
    )
    .unwrap();

    let after = both(&server);
    assert_subjects(
        &after,
        &["Flagged later", "Replacement", "Delivered by an MDA"],
    );
    for gone in ["Removed later", "Replaced later"] {
        assert!(
            !after.iter().any(|r| r.contains(gone)),
            "{gone}: {after:#?}"
        );
    }
    assert!(
        after
            .iter()
            .any(|r| r.contains("Flagged later") && r.contains("\\Flagged")),
        "{after:#?}"
    );

    // The same answers without the cache.
    let with_cache = both(&server);
    fs::remove_file(inbox(&server).join(CACHE_FILE)).unwrap();
    server.restart();
    assert_eq!(both(&server), with_cache);
}

#[test]
fn a_damaged_cache_file_is_ignored_and_rebuilt() {
    let mut server = ExampleServer::start();
    server.deliver(&message("Kept one"));
    server.deliver(&message("Kept two"));
    both(&server);
    let answers = both(&server);
    let whole = cache_file(&server);

    let mut flipped = whole.clone();
    let at = String::from_utf8_lossy(&flipped).find("Kept two").unwrap();
    flipped[at] ^= 0x01;
    let mut other_version = whole.clone();
    other_version[b"tower-mail-cache ".len()] = b'7';
    let damaged: [(&str, Vec<u8>); 4] = [
        ("a record's byte flipped", flipped),
        ("cut short", whole[..whole.len() - 5].to_vec()),
        ("another version", other_version),
        ("garbage", b"\x00\xffnot a cache\r\n".repeat(100)),
    ];
    for (what, bytes) in damaged {
        fs::write(inbox(&server).join(CACHE_FILE), &bytes).unwrap();
        server.restart();
        assert_eq!(both(&server), answers, "{what}");
        let rebuilt = cache_file(&server);
        assert!(
            rebuilt.starts_with(b"tower-mail-cache 1\n"),
            "{what}: rebuilt"
        );
        assert!(
            holds(&rebuilt, "Kept one") && holds(&rebuilt, "Kept two"),
            "{what}: every message kept again"
        );
    }
}
