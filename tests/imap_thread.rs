//! THREAD and UID THREAD (RFC 5256) end to end, through the example server binary and
//! Python's imaplib (`IMAP4.thread`, `IMAP4.uid("THREAD", ...)`): the threads a webmail's
//! threaded view shows, by ORDEREDSUBJECT and by REFERENCES, with search criteria, and the
//! refusals (an unknown charset or algorithm; THREAD before SELECT is in `imap_sort.rs`).
//!
//! ```text
//! cargo build --example server && cargo test --test imap_thread
//! ```
//!
//! Needs `python3` (imaplib from the standard library).

mod support_example;
mod support_shared;

use support_example::ExampleServer;
use support_example::imaplib::imaplib;
use support_shared::dedent_both;

/// A small conversation appended after a deleted message that is expunged, so that each UID
/// is its sequence number plus one and UID THREAD cannot pass for THREAD:
///
/// | seq | Message-ID | answers (References / In-Reply-To) | Subject | Date (Nov 2023) |
/// |---|---|---|---|---|
/// | 1 | a | | Plans | 13th |
/// | 2 | b | a (In-Reply-To) | Re: Plans | 14th |
/// | 3 | c | | Lunch | 12th |
/// | 4 | d | a b | Re: Plans | 16th |
/// | 5 | e | a | Re: Plans | 15th |
/// | 6 | f | none: its client dropped them | Re: Lunch | 17th |
const SETUP: &str = r#"
    def message(headers):
        return ("\r\n".join(headers) + "\r\n\r\nhello\r\n").encode()
    M.append("INBOX", r"(\Deleted)", None, message(["Subject: gone"]))
    messages = [
        ["Message-ID: <a@x.example>", "Subject: Plans",
         "Date: Mon, 13 Nov 2023 10:00:00 +0000"],
        ["Message-ID: <b@x.example>", "In-Reply-To: <a@x.example>", "Subject: Re: Plans",
         "Date: Tue, 14 Nov 2023 10:00:00 +0000"],
        ["Message-ID: <c@x.example>", "Subject: Lunch", "Date: Sun, 12 Nov 2023 10:00:00 +0000"],
        ["Message-ID: <d@x.example>", "References: <a@x.example>", "  <b@x.example>",
         "Subject: Re: Plans", "Date: Thu, 16 Nov 2023 10:00:00 +0000"],
        ["Message-ID: <e@x.example>", "References: <a@x.example>", "Subject: Re: Plans",
         "Date: Wed, 15 Nov 2023 10:00:00 +0000"],
        ["Message-ID: <f@x.example>", "Subject: Re: Lunch",
         "Date: Fri, 17 Nov 2023 10:00:00 +0000"],
    ]
    for headers in messages:
        typ, data = M.append("INBOX", None, None, message(headers))
        assert typ == "OK", data
    M.select("INBOX")
    M.expunge()
"#;

/// [`SETUP`], then `script` (indented as it sits in the test).
fn after_setup(script: &str) -> String {
    dedent_both(SETUP, script)
}

#[test]
fn thread_by_references_and_by_ordered_subject() {
    let server = ExampleServer::start();
    let script = after_setup(
        r#"
        out("caps", *M.capability())
        out("references", *M.thread("REFERENCES", "UTF-8", "ALL"))
        out("uid_references", *M.uid("THREAD", "REFERENCES", "UTF-8", "ALL"))
        out("ordered", *M.thread("ORDEREDSUBJECT", "UTF-8", "ALL"))
        out("uid_ordered", *M.uid("THREAD", "ORDEREDSUBJECT", "us-ascii", "ALL"))
        out("searched", *M.thread("REFERENCES", "UTF-8", "SUBJECT", "plans"))
        out("no_root", *M.thread("REFERENCES", "UTF-8", "NOT", "HEADER", "Message-ID",
                                 '"<a@x.example>"'))
        out("uid_set", *M.uid("THREAD", "REFERENCES", "UTF-8", "UID", "3:5"))
        out("nothing", *M.thread("REFERENCES", "UTF-8", "SUBJECT", "absent"))
        M._simple_command("SEARCH", "RETURN", "(SAVE)", "SUBJECT", "plans")
        out("saved", *M.uid("THREAD", "REFERENCES", "UTF-8", "$"))
        "#,
    );
    let printed = imaplib(&server, &script, &[]);
    let caps = printed.one("caps");
    assert!(
        caps.contains("THREAD=ORDEREDSUBJECT") && caps.contains("THREAD=REFERENCES"),
        "advertised after login: {caps}"
    );
    assert_eq!(
        printed.one("references"),
        // Lunch (the 12th) first, "Re: Lunch" joined to it by subject; then Plans with its
        // answers 2 (answered by 4) and 5, ordered by date.
        "OK (3 6)(1 (2 4)(5))"
    );
    assert_eq!(printed.one("uid_references"), "OK (4 7)(2 (3 5)(6))");
    assert_eq!(
        printed.one("ordered"),
        // Every message of a subject a child of its first, by date: no grandchildren.
        "OK (3 6)(1 (2)(5)(4))"
    );
    assert_eq!(printed.one("uid_ordered"), "OK (4 7)(2 (3)(6)(5))");
    assert_eq!(printed.one("searched"), "OK (1 (2 4)(5))");
    assert_eq!(
        printed.one("no_root"),
        "OK (3 6)((2 4)(5))",
        "the missing first message leaves its answers siblings in one thread"
    );
    assert_eq!(
        printed.one("uid_set"),
        "OK (4)(3 5)",
        "UIDs 3 to 5 (messages 2 to 4): Lunch, then 2 without its missing parent, answered by 4"
    );
    assert_eq!(printed.one("nothing"), "OK ", "an empty `* THREAD`");
    assert_eq!(
        printed.one("saved"),
        "OK (2 (3 5)(6))",
        "the saved result (RFC 5182) as THREAD's criteria: the Plans messages"
    );
}

#[test]
fn thread_refusals() {
    let server = ExampleServer::start();
    let script = after_setup(
        r#"
        out("charset", *M.thread("REFERENCES", "KOI8-R", "ALL"))
        try:
            M.thread("REFS", "UTF-8", "ALL")
        except M.error as err:
            out("algorithm", err)
        "#,
    );
    let printed = imaplib(&server, &script, &[]);
    assert_eq!(
        printed.one("charset"),
        "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset"
    );
    let algorithm = printed.one("algorithm");
    assert!(
        algorithm.contains("BAD") && algorithm.contains("Unsupported threading algorithm"),
        "{algorithm}"
    );
}
