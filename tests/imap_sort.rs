//! SORT and UID SORT (RFC 5256) with SORT=DISPLAY (RFC 5957) end to end, through the example
//! server binary and Python's imaplib (`IMAP4.sort`, `IMAP4.uid("SORT", ...)`): the orders a
//! webmail pages through, each key and REVERSE, search criteria with the sort, MODSEQ, and
//! the refusals (an unknown charset, no mailbox selected).
//!
//! ```text
//! cargo build --example server && cargo test --test imap_sort
//! ```
//!
//! Needs `python3` (imaplib from the standard library).

mod support_example;
mod support_shared;

use support_example::imaplib::imaplib;
use support_example::{ExampleServer, PASSWORD, RawClient, USER};
use support_shared::dedent_both;

/// Four messages appended after a deleted one that is expunged, so that each UID is its
/// sequence number plus one and UID SORT cannot pass for SORT. Each message is chosen so that
/// every key orders them differently:
///
/// | seq | Subject (base) | From (local part / display) | To | Date (UTC) | arrival | size |
/// |---|---|---|---|---|---|---|
/// | 1 | Re: banana | Zed <alpha@> | Bob <bob@> | Nov 15 10:00 | Nov 20 | smallest |
/// | 2 | apple | Alpha <zulu@> | ann@ | Nov 14 | Nov 19 | largest |
/// | 3 | [list] Cherry | beta@ | carl@ | none: arrival, Nov 18 | Nov 18 | third |
/// | 4 | Fwd: Apricot (encoded) | Émile (encoded) <m@> | none | Nov 15 21:00 (+0400) | Nov 21 | second |
const SETUP: &str = r#"
    def message(headers, padding):
        return ("\r\n".join(headers) + "\r\n\r\n" + "x" * padding + "\r\n").encode()
    M.append("INBOX", r"(\Deleted)", None, message(["Subject: gone"], 0))
    messages = [
        (["Subject: Re: banana", "From: Zed <alpha@x.example>", "To: Bob <bob@x.example>",
          "Date: Wed, 15 Nov 2023 10:00:00 +0000"], 0, "20-Nov-2023 12:00:00 +0000"),
        (["Subject: apple", "From: Alpha <zulu@x.example>", "To: ann@x.example",
          "Cc: dan@x.example", "Date: Tue, 14 Nov 2023 09:00:00 +0000"], 3000,
         "19-Nov-2023 12:00:00 +0000"),
        (["Subject: [list] Cherry", "From: beta@x.example", "To: carl@x.example"], 1500,
         "18-Nov-2023 12:00:00 +0000"),
        (["Subject: =?UTF-8?Q?Fwd=3A_Apricot?=", "From: =?UTF-8?Q?=C3=89mile?= <m@x.example>",
          "Date: Thu, 16 Nov 2023 01:00:00 +0400"], 500, "21-Nov-2023 12:00:00 +0000"),
    ]
    for headers, padding, arrival in messages:
        typ, data = M.append("INBOX", None, '"%s"' % arrival, message(headers, padding))
        assert typ == "OK", data
    M.select("INBOX")
    M.expunge()
"#;

/// [`SETUP`], then `script` (indented as it sits in the test).
fn after_setup(script: &str) -> String {
    dedent_both(SETUP, script)
}

#[test]
fn sort_orders_by_each_key_and_reverse() {
    let server = ExampleServer::start();
    let script = after_setup(
        r#"
        out("caps", *M.capability())
        for key in ["SUBJECT", "REVERSE SUBJECT", "FROM", "DISPLAYFROM", "TO", "DISPLAYTO",
                    "CC", "DATE", "REVERSE DATE", "ARRIVAL", "SIZE", "REVERSE SIZE",
                    "TO REVERSE ARRIVAL"]:
            out("sort", key.replace(" ", "_"), *M.sort("(%s)" % key, "UTF-8", "ALL"))
        out("uid_sort", *M.uid("SORT", "(SUBJECT)", "UTF-8", "ALL"))
        out("uid_sort_set", *M.uid("SORT", "(REVERSE ARRIVAL)", "us-ascii", "UID 2:3"))
        out("with_search", *M.sort("(SUBJECT)", "UTF-8", "SMALLER", "1200"))
        out("with_text", *M.sort("(DATE)", "UTF-8", "OR", "FROM", "beta", "SUBJECT", "apple"))
        out("nothing", *M.sort("(DATE)", "UTF-8", "SUBJECT", "absent"))
        M._simple_command("SEARCH", "RETURN", "(SAVE)", "SMALLER", "1200")
        out("saved", *M.uid("SORT", "(REVERSE SUBJECT)", "UTF-8", "$"))
        "#,
    );
    let printed = imaplib(&server, &script, &[]);
    let caps = printed.one("caps");
    assert!(
        caps.split(' ').any(|cap| cap == "SORT") && caps.contains("SORT=DISPLAY"),
        "advertised after login: {caps}"
    );
    assert_eq!(
        printed.all("sort"),
        [
            "SUBJECT OK 2 4 1 3",
            "REVERSE_SUBJECT OK 3 1 4 2",
            "FROM OK 1 3 4 2",
            // Alpha, beta@x.example (no display name), Émile (É collates with E), Zed.
            "DISPLAYFROM OK 2 3 4 1",
            // No To sorts first: an empty key.
            "TO OK 4 2 1 3",
            "DISPLAYTO OK 4 2 1 3",
            // Only message 2 has a Cc; the others tie and keep their order.
            "CC OK 1 3 4 2",
            // 3 has no Date: its arrival (Nov 18) stands in; 4's is Nov 15 21:00 UTC.
            "DATE OK 2 1 4 3",
            "REVERSE_DATE OK 3 4 1 2",
            "ARRIVAL OK 3 2 1 4",
            "SIZE OK 1 4 3 2",
            "REVERSE_SIZE OK 2 3 4 1",
            "TO_REVERSE_ARRIVAL OK 4 2 1 3",
        ]
    );
    assert_eq!(
        printed.one("uid_sort"),
        "OK 3 5 2 4",
        "UIDs, in SUBJECT order"
    );
    assert_eq!(
        printed.one("uid_sort_set"),
        "OK 2 3",
        "UIDs 2 and 3 arrived on Nov 20 and 19"
    );
    assert_eq!(printed.one("with_search"), "OK 4 1", "only the small ones");
    assert_eq!(printed.one("with_text"), "OK 2 3");
    assert_eq!(printed.one("nothing"), "OK ", "an empty `* SORT`");
    assert_eq!(
        printed.one("saved"),
        "OK 2 5",
        "the saved result (RFC 5182) as SORT's criteria: UIDs 2 and 5 are the small ones"
    );
}

#[test]
fn sort_with_modseq_and_refusals() {
    let server = ExampleServer::start();
    let script = after_setup(
        r#"
        out("modseq", *M.sort("(ARRIVAL)", "UTF-8", "MODSEQ", "1"))
        out("charset", *M.sort("(SUBJECT)", "KOI8-R", "ALL"))
        "#,
    );
    let printed = imaplib(&server, &script, &[]);
    let modseq = printed.one("modseq");
    let order = modseq
        .strip_prefix("OK 3 2 1 4 (MODSEQ ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("RFC 7162's SORT answer: {modseq}"));
    assert!(order.parse::<u64>().is_ok_and(|n| n > 0), "{modseq}");
    assert_eq!(
        printed.one("charset"),
        "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset"
    );
}

/// imaplib refuses SORT, THREAD and SEARCH itself before SELECT, so the server's answers are
/// read from a plain socket.
#[test]
fn sort_and_thread_need_a_selected_mailbox_as_search_does() {
    let server = ExampleServer::start();
    let mut client = RawClient::connect(server.imap);
    let greeting = client.line().expect("a greeting");
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let login = client.cmd(&format!("a LOGIN {USER} {PASSWORD}"));
    assert!(login.starts_with("a OK"), "{login}");
    let search = client.cmd("b SEARCH ALL");
    let sort = client.cmd("b SORT (SUBJECT) UTF-8 ALL");
    assert!(search.starts_with("b BAD"), "{search}");
    assert_eq!(sort, search, "refused as SEARCH is");
    let thread = client.cmd("b THREAD REFERENCES UTF-8 ALL");
    assert_eq!(thread, search, "refused as SEARCH is");
    let malformed = client.cmd("c SORT (SIZE UTF-8 ALL");
    assert!(malformed.starts_with("c BAD"), "{malformed}");
    let unknown_key = client.cmd("d SORT (SENDER) UTF-8 ALL");
    assert!(unknown_key.starts_with("d BAD"), "{unknown_key}");
}
