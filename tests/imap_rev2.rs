//! IMAP4rev2 (RFC 9051) beside IMAP4rev1, over loopback sockets: the capabilities, ENABLE
//! IMAP4rev2 and what it changes (SELECT's answer, `\Recent`, ESEARCH, UTF-8 mailbox names),
//! SEARCH's result options and the saved result `$` (RFC 4731, RFC 5182), LIST-EXTENDED
//! (RFC 5258), LIST-STATUS (RFC 5819) and STATUS SIZE (RFC 8438). Raw sockets where the
//! exact lines matter, Python's imaplib where a real client fits.
//!
//! Needs `python3` (imaplib from the standard library).

mod common;
mod support_shared;

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::net::TcpStream;
use tower_mail::Protocol;
use tower_mail::auth::PasswdFile;
use tower_mail::imap::{ImapConfig, ImapService};
use tower_mail::server::{Server, ServerConfig, TlsMode};
use tower_mail::store::{Flags, Mailstore, MemoryStore};

use common::{Client, SOON};

/// 53 octets.
const MESSAGE: &[u8] = b"From: carol@example.com\r\nSubject: hello\r\n\r\nHi there\r\n";

struct Harness {
    server: Server,
    addr: SocketAddr,
}

impl Harness {
    async fn start(store: &MemoryStore) -> Harness {
        let mut config = ImapConfig::default();
        config.allow_plaintext_login = true;
        let imap = ImapService::new(PasswdFile::parse(common::USERS), store.clone(), config);
        let (server, addr) =
            common::serve(Protocol::Imap, TlsMode::None, ServerConfig::default(), imap).await;
        Harness { server, addr }
    }

    /// A client logged in as alice, IMAP4rev2 enabled if `rev2`.
    async fn login(&self, rev2: bool) -> Client<TcpStream> {
        let mut client = Client::connect(self.addr).await;
        client.line().await.expect("a greeting");
        let reply = command(&mut client, "L1 LOGIN alice secret").await;
        assert!(reply[0].starts_with("L1 OK "), "{reply:?}");
        if rev2 {
            assert_eq!(
                command(&mut client, "L2 ENABLE IMAP4rev2").await,
                ["* ENABLED IMAP4rev2", "L2 OK ENABLE completed"]
            );
        }
        client
    }

    async fn stop(self) {
        self.server.shutdown(SOON).await;
    }
}

/// Send a tagged command; return every line up to and including its tagged completion.
async fn command(client: &mut Client<TcpStream>, text: &str) -> Vec<String> {
    client.send(text).await;
    replies(client, text.split(' ').next().unwrap()).await
}

/// Every line up to and including the completion tagged `tag`.
async fn replies(client: &mut Client<TcpStream>, tag: &str) -> Vec<String> {
    let tag = format!("{tag} ");
    let mut lines = Vec::new();
    loop {
        let line = client.line().await.expect("connection closed");
        let done = line.starts_with(&tag);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

async fn deliver(store: &MemoryStore, mailbox: &str, flags: Flags) -> u32 {
    store.ensure_user("alice").await.unwrap();
    let message = Bytes::from_static(MESSAGE);
    store
        .append("alice", mailbox, message, flags.into(), None)
        .await
        .unwrap()
}

/// Run an imaplib script against `addr` (`HOST` and `PORT` predefined); returns stdout.
async fn python(addr: SocketAddr, body: &str) -> String {
    let script = format!(
        "import imaplib\nHOST, PORT = '{}', {}\n{}\n",
        addr.ip(),
        addr.port(),
        support_shared::dedent(body)
    );
    support_shared::run_python_async(&script).await
}

#[tokio::test(flavor = "multi_thread")]
async fn capability_lists_imap4rev2_and_what_it_folds_in() {
    let harness = Harness::start(&MemoryStore::new()).await;
    let mut client = Client::connect(harness.addr).await;
    let greeting = client.line().await.unwrap();
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4REV1 IMAP4rev2 "),
        "{greeting}"
    );
    let reply = command(&mut client, "a CAPABILITY").await;
    let words: Vec<&str> = reply[0].split(' ').collect();
    for capability in [
        "IMAP4rev2",
        "ESEARCH",
        "SEARCHRES",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "STATUS=SIZE",
        "ENABLE",
        "NAMESPACE",
        "UIDPLUS",
        "MOVE",
        "UNSELECT",
        "IDLE",
        "SASL-IR",
        "LITERAL+",
        "SPECIAL-USE",
        "CHILDREN",
    ] {
        assert!(words.contains(&capability), "{capability}: {reply:?}");
    }
    // ENABLE is for the authenticated state only.
    assert_eq!(
        command(&mut client, "b ENABLE IMAP4rev2").await,
        ["b BAD Log in first"]
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_imap4rev2_changes_select_flags_and_search() {
    let store = MemoryStore::new();
    deliver(&store, "INBOX", Flags::SEEN).await;
    deliver(&store, "INBOX", Flags::EMPTY).await;
    let harness = Harness::start(&store).await;

    // IMAP4rev1 as before: RECENT, UNSEEN, `* SEARCH`. This first session to select the
    // mailbox is told both messages are recent (RFC 3501 section 2.3.2).
    let mut rev1 = harness.login(false).await;
    let selected = command(&mut rev1, "a SELECT INBOX").await;
    assert!(selected.contains(&"* 2 RECENT".to_owned()), "{selected:?}");
    assert!(
        selected.iter().any(|l| l.starts_with("* OK [UNSEEN 2]")),
        "{selected:?}"
    );
    assert!(
        !selected.iter().any(|l| l.starts_with("* LIST")),
        "{selected:?}"
    );
    assert_eq!(
        command(&mut rev1, "b SEARCH UNSEEN").await,
        ["* SEARCH 2", "b OK SEARCH completed"]
    );
    command(&mut rev1, "c LOGOUT").await;

    let mut rev2 = harness.login(true).await;
    assert_eq!(
        command(&mut rev2, "a ENABLE IMAP4rev2").await,
        ["* ENABLED", "a OK ENABLE completed"],
        "enabled once, listed once"
    );
    let selected = command(&mut rev2, "b SELECT INBOX").await;
    assert!(
        !selected
            .iter()
            .any(|l| l.contains("RECENT") || l.contains("UNSEEN")),
        "{selected:?}"
    );
    assert!(
        selected.contains(&r#"* LIST (\HasNoChildren) "/" INBOX"#.to_owned()),
        "{selected:?}"
    );
    assert!(selected.contains(&"* 2 EXISTS".to_owned()), "{selected:?}");
    assert_eq!(
        selected.last().unwrap(),
        "b OK [READ-WRITE] SELECT completed"
    );

    // A new message: EXISTS alone, and no `\Recent` on it.
    deliver(&store, "INBOX", Flags::EMPTY).await;
    assert_eq!(
        command(&mut rev2, "c NOOP").await,
        ["* 3 EXISTS", "c OK NOOP completed"]
    );
    assert_eq!(
        command(&mut rev2, "d FETCH 3 FLAGS").await,
        ["* 3 FETCH (FLAGS ())", "d OK FETCH completed"]
    );
    // SEARCH answers ESEARCH, as RETURN (ALL); nothing found is a bare ESEARCH.
    assert_eq!(
        command(&mut rev2, "e SEARCH UNSEEN").await,
        [r#"* ESEARCH (TAG "e") ALL 2:3"#, "e OK SEARCH completed"]
    );
    assert_eq!(
        command(&mut rev2, "f UID SEARCH SEEN").await,
        [r#"* ESEARCH (TAG "f") UID ALL 1"#, "f OK SEARCH completed"]
    );
    assert_eq!(
        command(&mut rev2, "g SEARCH SUBJECT nowhere").await,
        [r#"* ESEARCH (TAG "g")"#, "g OK SEARCH completed"]
    );
    // Selecting another mailbox says where the old one's responses end.
    let reselected = command(&mut rev2, "h EXAMINE Sent").await;
    assert!(
        reselected[0].starts_with("* OK [CLOSED] "),
        "{reselected:?}"
    );
    assert!(
        reselected.contains(&r#"* LIST (\HasNoChildren \Sent) "/" Sent"#.to_owned()),
        "{reselected:?}"
    );
    assert_eq!(
        command(&mut rev2, "i ENABLE IMAP4rev2").await,
        ["i BAD ENABLE is only valid before a mailbox is selected"]
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn search_return_options_with_and_without_uid() {
    let store = MemoryStore::new();
    for flags in [
        Flags::SEEN,
        Flags::EMPTY,
        Flags::EMPTY,
        Flags::SEEN,
        Flags::EMPTY,
    ] {
        deliver(&store, "INBOX", flags).await;
    }
    // UIDs 1..=5; expunge UID 1 so sequence numbers and UIDs differ.
    store.expunge("alice", "INBOX", &[1]).await.unwrap();
    let harness = Harness::start(&store).await;
    let mut client = harness.login(false).await;
    command(&mut client, "a SELECT INBOX").await;
    assert_eq!(
        command(&mut client, "b SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN").await,
        [
            r#"* ESEARCH (TAG "b") MIN 1 MAX 4 COUNT 3 ALL 1:2,4"#,
            "b OK SEARCH completed"
        ]
    );
    assert_eq!(
        command(&mut client, "c UID SEARCH RETURN (COUNT MIN) UNSEEN").await,
        [
            r#"* ESEARCH (TAG "c") UID MIN 2 COUNT 3"#,
            "c OK SEARCH completed"
        ]
    );
    assert_eq!(
        command(&mut client, "d UID SEARCH RETURN () CHARSET UTF-8 ALL").await,
        [
            r#"* ESEARCH (TAG "d") UID ALL 2:5"#,
            "d OK SEARCH completed"
        ]
    );
    assert_eq!(
        command(&mut client, "e SEARCH RETURN (MIN MAX COUNT ALL) DRAFT").await,
        [r#"* ESEARCH (TAG "e") COUNT 0"#, "e OK SEARCH completed"]
    );
    assert_eq!(
        command(&mut client, "f SEARCH RETURN (PARTIAL 1:5) ALL").await,
        ["f BAD Unknown or unsupported option"]
    );
    assert_eq!(
        command(&mut client, "g SEARCH UNSEEN").await,
        ["* SEARCH 1 2 4", "g OK SEARCH completed"],
        "without RETURN, IMAP4rev1's SEARCH response"
    );
    harness.stop().await;

    // What a real client sends and reads back.
    let store = MemoryStore::new();
    for flags in [Flags::SEEN, Flags::EMPTY, Flags::EMPTY] {
        deliver(&store, "INBOX", flags).await;
    }
    let harness = Harness::start(&store).await;
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4(HOST, PORT)
        M.login('alice', 'secret')
        M.select('INBOX')
        typ, dat = M._simple_command('SEARCH', 'RETURN', '(MIN MAX COUNT ALL)', 'UNSEEN')
        print(typ, M._untagged_response(typ, dat, 'ESEARCH')[1][0].decode())
        typ, dat = M._simple_command('UID', 'SEARCH', 'RETURN', '(COUNT)', 'ALL')
        print(typ, M._untagged_response(typ, dat, 'ESEARCH')[1][0].decode())
        print(M.search(None, 'UNSEEN'))
        M.logout()
        "#,
    )
    .await;
    assert!(out.starts_with("OK "), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with("MIN 2 MAX 3 COUNT 2 ALL 2:3"), "{out}");
    assert!(lines[1].ends_with("UID COUNT 3"), "{out}");
    assert_eq!(lines[2], "('OK', [b'2 3'])", "{out}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_saved_result_feeds_fetch_store_copy_and_search() {
    let store = MemoryStore::new();
    for flags in [Flags::SEEN, Flags::EMPTY, Flags::SEEN, Flags::EMPTY] {
        deliver(&store, "INBOX", flags).await;
    }
    let harness = Harness::start(&store).await;
    let mut client = harness.login(false).await;
    command(&mut client, "a SELECT INBOX").await;
    assert_eq!(
        command(&mut client, "b FETCH $ (UID)").await,
        ["b OK FETCH completed"],
        "before any SAVE, $ is empty"
    );
    assert_eq!(
        command(&mut client, "c SEARCH RETURN (SAVE) SEEN").await,
        ["c OK SEARCH completed"],
        "SAVE alone answers nothing but OK"
    );
    assert_eq!(
        command(&mut client, "d FETCH $ (UID)").await,
        [
            "* 1 FETCH (UID 1)",
            "* 3 FETCH (UID 3)",
            "d OK FETCH completed"
        ]
    );
    assert_eq!(
        command(&mut client, "e UID STORE $ +FLAGS.SILENT (\\Flagged)").await,
        ["e OK STORE completed"]
    );
    assert_eq!(
        command(&mut client, "f SEARCH FLAGGED").await,
        ["* SEARCH 1 3", "f OK SEARCH completed"]
    );
    // `$` as a search key, with `$` also as a keyword's name (an atom, not the result).
    assert_eq!(
        command(&mut client, "g SEARCH RETURN (ALL) OR $ UNKEYWORD $").await,
        [r#"* ESEARCH (TAG "g") ALL 1:4"#, "g OK SEARCH completed"]
    );
    assert_eq!(
        command(&mut client, "h UID SEARCH RETURN (ALL) NOT UID $").await,
        [
            r#"* ESEARCH (TAG "h") UID ALL 2,4"#,
            "h OK SEARCH completed"
        ]
    );
    let copied = command(&mut client, "i COPY $ Trash").await;
    assert!(copied[0].starts_with("i OK [COPYUID "), "{copied:?}");
    // MIN and MAX with SAVE keep only those; expunged messages leave `$`.
    assert_eq!(
        command(&mut client, "j SEARCH RETURN (SAVE MIN MAX) ALL").await,
        ["* ESEARCH (TAG \"j\") MIN 1 MAX 4", "j OK SEARCH completed"]
    );
    command(&mut client, "k STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(
        command(&mut client, "l EXPUNGE").await,
        ["* 1 EXPUNGE", "l OK EXPUNGE completed"]
    );
    assert_eq!(
        command(&mut client, "m FETCH $ (UID)").await,
        ["* 3 FETCH (UID 4)", "m OK FETCH completed"]
    );
    // A failed SAVE empties `$`.
    assert_eq!(
        command(&mut client, "n SEARCH RETURN (SAVE) CHARSET KOI8-R ALL").await[0],
        "n NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset"
    );
    assert_eq!(
        command(&mut client, "o UID FETCH $ (UID)").await,
        ["o OK FETCH completed"]
    );
    assert_eq!(
        command(&mut client, "p SEARCH $ UID 4294967295").await,
        ["p BAD Unknown or unsupported option"]
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_extended_selection_and_return_options() {
    let store = MemoryStore::new();
    store.ensure_user("alice").await.unwrap();
    store.create_mailbox("alice", "Archive/2024").await.unwrap();
    store
        .create_mailbox("alice", "Work/Projects")
        .await
        .unwrap();
    // Archive/2024 stays, below a parent that does not exist.
    store.delete_mailbox("alice", "Archive").await.unwrap();
    store
        .set_subscribed("alice", "Archive/2024", true)
        .await
        .unwrap();
    store.set_subscribed("alice", "Work", true).await.unwrap();
    store.set_subscribed("alice", "Junk", false).await.unwrap();
    store
        .set_subscribed("alice", "Drafts", false)
        .await
        .unwrap();
    store.set_subscribed("alice", "Trash", false).await.unwrap();
    let harness = Harness::start(&store).await;
    let mut client = harness.login(false).await;
    assert_eq!(
        command(&mut client, r#"a LIST (SUBSCRIBED) "" "*""#).await,
        [
            r#"* LIST (\Subscribed \HasNoChildren) "/" INBOX"#,
            r#"* LIST (\Subscribed \HasNoChildren) "/" Archive/2024"#,
            r#"* LIST (\Subscribed \HasNoChildren \Sent) "/" Sent"#,
            r#"* LIST (\Subscribed \HasChildren) "/" Work"#,
            "a OK LIST completed"
        ]
    );
    assert_eq!(
        command(&mut client, r#"b LIST (SUBSCRIBED RECURSIVEMATCH) "" "%""#).await,
        [
            r#"* LIST (\Subscribed \HasNoChildren) "/" INBOX"#,
            r#"* LIST (\NonExistent \HasChildren) "/" Archive ("CHILDINFO" ("SUBSCRIBED"))"#,
            r#"* LIST (\Subscribed \HasNoChildren \Sent) "/" Sent"#,
            r#"* LIST (\Subscribed \HasChildren) "/" Work"#,
            "b OK LIST completed"
        ]
    );
    assert_eq!(
        command(
            &mut client,
            r#"c LIST "" ("INBOX" Work/% "Tr*") RETURN (CHILDREN SUBSCRIBED)"#
        )
        .await,
        [
            r#"* LIST (\Subscribed \HasNoChildren) "/" INBOX"#,
            r#"* LIST (\HasNoChildren \Trash) "/" Trash"#,
            r#"* LIST (\HasNoChildren) "/" Work/Projects"#,
            "c OK LIST completed"
        ]
    );
    assert_eq!(
        command(
            &mut client,
            r#"d LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)"#
        )
        .await,
        [
            r#"* LIST (\HasNoChildren \Drafts) "/" Drafts"#,
            r#"* LIST (\HasNoChildren \Junk) "/" Junk"#,
            r#"* LIST (\HasNoChildren \Sent) "/" Sent"#,
            r#"* LIST (\HasNoChildren \Trash) "/" Trash"#,
            "d OK LIST completed"
        ]
    );
    // Extended LIST's placeholders are \NonExistent; basic LIST keeps RFC 3501's \Noselect.
    assert_eq!(
        command(&mut client, r#"e LIST () "" "Arch%""#).await,
        [
            r#"* LIST (\NonExistent \HasChildren) "/" Archive"#,
            "e OK LIST completed"
        ]
    );
    assert_eq!(
        command(&mut client, r#"f LIST "" "Arch%""#).await,
        [
            r#"* LIST (\Noselect \HasChildren) "/" Archive"#,
            "f OK LIST completed"
        ]
    );
    for (tag, bad) in [
        ("g", r#"g LIST (RECURSIVEMATCH) "" "*""#),
        ("h", r#"h LIST (VIRTUAL) "" "*""#),
        ("i", r#"i LIST "" "*" RETURN (MYRIGHTS)"#),
    ] {
        assert_eq!(
            command(&mut client, bad).await,
            [format!("{tag} BAD Unknown or unsupported option")]
        );
    }
    assert_eq!(
        command(&mut client, r#"j LIST "" ("INBOX""#).await,
        ["j BAD Unknown command or invalid arguments"]
    );
    // A pattern sent as a literal, after the `+`.
    client.send(r#"k LIST (SUBSCRIBED) "" {5}"#).await;
    assert!(client.line().await.unwrap().starts_with("+ "));
    client.send("INBOX").await;
    assert_eq!(
        replies(&mut client, "k").await,
        [
            r#"* LIST (\Subscribed \HasNoChildren) "/" INBOX"#,
            "k OK LIST completed"
        ]
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_status_and_status_size() {
    let store = MemoryStore::new();
    deliver(&store, "INBOX", Flags::SEEN).await;
    deliver(&store, "INBOX", Flags::DELETED).await;
    store.create_mailbox("alice", "Archive/2024").await.unwrap();
    store.delete_mailbox("alice", "Archive").await.unwrap();
    let harness = Harness::start(&store).await;
    let mut client = harness.login(false).await;
    assert_eq!(
        command(&mut client, "a STATUS INBOX (MESSAGES SIZE DELETED UNSEEN)").await,
        [
            "* STATUS INBOX (MESSAGES 2 SIZE 106 DELETED 1 UNSEEN 1)",
            "a OK STATUS completed"
        ]
    );
    assert_eq!(
        command(
            &mut client,
            r#"b LIST "" ("INBOX" "Arch%") RETURN (STATUS (MESSAGES SIZE))"#
        )
        .await,
        [
            r#"* LIST (\HasNoChildren) "/" INBOX"#,
            "* STATUS INBOX (MESSAGES 2 SIZE 106)",
            r#"* LIST (\NonExistent \HasChildren) "/" Archive"#,
            "b OK LIST completed"
        ],
        "no STATUS for a name that does not exist"
    );
    harness.stop().await;

    // imaplib asks STATUS SIZE and LIST-STATUS as any other command.
    let harness = Harness::start(&store).await;
    let out = python(
        harness.addr,
        r#"
        M = imaplib.IMAP4(HOST, PORT)
        M.login('alice', 'secret')
        print(M.status('INBOX', '(SIZE)')[1][0].decode())
        typ, dat = M._simple_command('LIST', '""', 'Sent', 'RETURN', '(STATUS (MESSAGES))')
        print(typ, M._untagged_response(typ, dat, 'STATUS')[1][0].decode())
        M.logout()
        "#,
    )
    .await;
    assert_eq!(out, "INBOX (SIZE 106)\nOK Sent (MESSAGES 0)\n");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn imap4rev2_names_mailboxes_in_utf8_and_rev1_in_modified_utf7() {
    let store = MemoryStore::new();
    store.ensure_user("alice").await.unwrap();
    let harness = Harness::start(&store).await;
    let mut rev2 = harness.login(true).await;
    assert_eq!(
        command(&mut rev2, "a CREATE \"Entwürfe/AT&T\"").await,
        ["a OK CREATE completed"]
    );
    let listed = command(&mut rev2, r#"b LIST "" "Entw*""#).await;
    assert_eq!(listed.last().unwrap(), "b OK LIST completed");
    let names = listed.join("\n");
    assert!(names.contains("Entwürfe/AT&T"), "{names}");
    assert!(!names.contains("&APw-"), "{names}");
    assert_eq!(
        command(&mut rev2, "c STATUS \"Entwürfe/AT&T\" (MESSAGES)")
            .await
            .last()
            .unwrap(),
        "c OK STATUS completed"
    );

    // The same mailboxes, as an IMAP4rev1 client names them.
    let mut rev1 = harness.login(false).await;
    assert_eq!(
        command(&mut rev1, r#"d LIST "" "Entw*""#).await,
        [
            r#"* LIST (\HasChildren) "/" Entw&APw-rfe"#,
            r#"* LIST (\HasNoChildren) "/" Entw&APw-rfe/AT&-T"#,
            "d OK LIST completed"
        ]
    );
    assert_eq!(
        command(&mut rev1, "e CREATE \"Entwürfe2\"").await,
        ["e NO [CANNOT] Invalid mailbox name"],
        "IMAP4rev1 names are 7-bit"
    );
    harness.stop().await;
}
