//! IMAP keywords end to end, through the example server binary and Python's imaplib: STORE,
//! FETCH, SEARCH KEYWORD and UNKEYWORD, APPEND, COPY and MOVE with keywords, the mailbox's
//! FLAGS list and PERMANENTFLAGS `\*`, the 27th keyword refused, and a Maildir tree as
//! Dovecot writes it (`tests/fixtures/dovecot_keywords`), read and changed so that Dovecot
//! can still read it.
//!
//! ```text
//! cargo build --example server && cargo test --test imap_keywords
//! ```
//!
//! Needs `python3` (imaplib and poplib from the standard library).

mod support_example;
mod support_shared;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use support_example::imaplib::imaplib;
use support_example::{ExampleServer, USER};

fn numbered(n: u32) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.com>\r\n\
         To: demo@localhost\r\n\
         Subject: message {n}\r\n\
         \r\n\
         Body of message {n}.\r\n"
    )
    .into_bytes()
}

/// The flags in every `FLAGS (...)` of `text`, each list sorted, `\Recent` left out (which
/// messages are recent depends on which session saw them first).
fn flag_lists(text: &str) -> Vec<Vec<String>> {
    text.match_indices("FLAGS (")
        .map(|(at, marker)| {
            let start = at + marker.len();
            let end = start + text[start..].find(')').expect("a closing parenthesis");
            let mut flags: Vec<String> = text[start..end]
                .split(' ')
                .filter(|flag| !flag.is_empty() && *flag != "\\Recent")
                .map(str::to_owned)
                .collect();
            flags.sort();
            flags
        })
        .collect()
}

/// `["NonJunk", "\\Seen"]` as [`flag_lists`] gives one list.
fn sorted(flags: &[&str]) -> Vec<String> {
    let mut flags: Vec<String> = flags.iter().map(|flag| (*flag).to_owned()).collect();
    flags.sort();
    flags
}

/// The mailbox's flag list in an untagged FLAGS response as imaplib keeps it: `(\Answered
/// ... $Label1)`.
fn mailbox_flags(response: &str) -> Vec<String> {
    let inner = response
        .trim()
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("a flag list: {response:?}"));
    let mut flags: Vec<String> = inner.split(' ').map(str::to_owned).collect();
    flags.sort();
    flags
}

const SYSTEM: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// The system flags and `keywords`, sorted: a mailbox's FLAGS list.
fn with_system(keywords: &[&str]) -> Vec<String> {
    let all: Vec<&str> = SYSTEM.iter().chain(keywords).copied().collect();
    sorted(&all)
}

#[test]
fn store_fetch_and_search_keywords() {
    let server = ExampleServer::start();
    for n in 1..=3 {
        server.deliver(&numbered(n));
    }
    let printed = imaplib(
        &server,
        r#"
        M.select("INBOX")
        out("flags", M.response("FLAGS")[1])
        out("permanent", M.response("PERMANENTFLAGS")[1])
        out("add", *M.store("1", "+FLAGS", r"($Label1 \Seen NonJunk)"))
        out("told", M.response("FLAGS")[1])
        out("silent", *M.store("2", "+FLAGS.SILENT", "(nonjunk)"))
        out("told_again", M.response("FLAGS")[1])
        out("fetch", *M.fetch("1:3", "(FLAGS)"))
        for criteria in ["KEYWORD $label1", "KEYWORD NonJunk", "UNKEYWORD NONJUNK",
                         "KEYWORD Unknown", "UNKEYWORD Unknown"]:
            out("search", criteria.replace(" ", "_"), *M.search(None, criteria))
        out("remove", *M.store("1", "-FLAGS", "($LABEL1)"))
        out("replace", *M.store("2", "FLAGS", r"(\Seen)"))
        out("after_replace", *M.search(None, "KEYWORD NonJunk"))

        # Another session is told of a new keyword with its next command.
        N = connect()
        N.select("INBOX")
        N.response("FLAGS")
        out("uid_add", *M.uid("STORE", "3", "+FLAGS", "(Todo)"))
        N.noop()
        out("other_told", N.response("FLAGS")[1])
        out("other_fetch", N.response("FETCH")[1])
        "#,
        &[],
    );
    assert_eq!(mailbox_flags(printed.one("flags")), with_system(&[]));
    assert_eq!(
        printed.one("permanent"),
        r"(\Answered \Flagged \Deleted \Seen \Draft \*)"
    );
    let add = printed.one("add");
    assert!(add.starts_with("OK 1 (FLAGS ("), "{add}");
    assert_eq!(flag_lists(add), [sorted(&["$Label1", "NonJunk", "\\Seen"])]);
    assert_eq!(
        mailbox_flags(printed.one("told")),
        with_system(&["$Label1", "NonJunk"]),
        "the new keywords are told before the tagged OK"
    );
    assert_eq!(printed.one("silent"), "OK None", "no FETCH answer");
    assert_eq!(printed.one("told_again"), "None", "nonjunk is not new");
    assert_eq!(
        flag_lists(printed.one("fetch")),
        [
            sorted(&["$Label1", "NonJunk", "\\Seen"]),
            sorted(&["NonJunk"]),
            vec![],
        ]
    );
    assert_eq!(
        printed.all("search"),
        [
            "KEYWORD_$label1 OK 1",
            "KEYWORD_NonJunk OK 1 2",
            "UNKEYWORD_NONJUNK OK 3",
            "KEYWORD_Unknown OK ",
            "UNKEYWORD_Unknown OK 1 2 3",
        ]
    );
    assert_eq!(
        flag_lists(printed.one("remove")),
        [sorted(&["NonJunk", "\\Seen"])]
    );
    assert_eq!(
        flag_lists(printed.one("replace")),
        [sorted(&["\\Seen"])],
        "FLAGS replaces the keywords too"
    );
    assert_eq!(printed.one("after_replace"), "OK 1");
    assert!(printed.one("uid_add").contains("Todo"));
    assert_eq!(
        mailbox_flags(printed.one("other_told")),
        with_system(&["$Label1", "NonJunk", "Todo"])
    );
    assert!(printed.one("other_fetch").contains("Todo"));

    // On disk as Dovecot keeps it, readable by Dovecot's rules.
    let inbox = server.maildir().join(USER);
    assert_eq!(
        fs::read_to_string(inbox.join("dovecot-keywords")).unwrap(),
        "0 $Label1\n1 NonJunk\n2 Todo\n"
    );
    // By message, in any order: file names need not sort in delivery order.
    let before = dovecot_view(&inbox);
    let mut letters: Vec<Vec<String>> = before.values().cloned().collect();
    letters.sort();
    let mut expected = [
        sorted(&["NonJunk", "\\Seen"]),
        sorted(&["\\Seen"]),
        sorted(&["Todo"]),
    ];
    expected.sort();
    assert_eq!(letters, expected);

    // POP3 reads and deletes without touching the other messages' keyword letters: one file
    // goes, the others keep their names.
    server.poplib_as_demo(&["retr:1", "dele:2", "quit"]);
    let after = dovecot_view(&inbox);
    assert_eq!(after.len(), before.len() - 1, "{after:?}");
    for (base, flags) in &after {
        assert_eq!(before.get(base), Some(flags), "{base}");
    }
}

#[test]
fn append_copy_and_move_keep_keywords() {
    let server = ExampleServer::start();
    server.deliver(&numbered(1));
    let printed = imaplib(
        &server,
        r#"
        M.create("Archive")
        M.create("Moved")
        out("append", *M.append("INBOX", r"($Label1 \Flagged NonJunk)", None, ARGS[0].encode()))
        M.select("INBOX")
        out("fetch", *M.fetch("2", "(FLAGS)"))
        out("copy", M.copy("2", "Archive")[0])
        out("move", M.uid("MOVE", "2", "Moved")[0])
        for mailbox in ["Archive", "Moved"]:
            M.select(mailbox)
            out("flags", mailbox, M.response("FLAGS")[1])
            out("fetch", *M.fetch("1", "(FLAGS)"))
            out("search", *M.search(None, "KEYWORD nonjunk"))
        "#,
        &[&String::from_utf8(numbered(2)).unwrap()],
    );
    assert!(printed.one("append").starts_with("OK [APPENDUID "));
    let with_keywords = [sorted(&["$Label1", "NonJunk", "\\Flagged"])];
    for fetch in printed.all("fetch") {
        assert_eq!(flag_lists(fetch), with_keywords, "{printed:#?}");
    }
    assert_eq!(printed.one("copy"), "OK");
    assert_eq!(printed.one("move"), "OK");
    for flags in printed.all("flags") {
        let (_, list) = flags.split_once(' ').unwrap();
        assert_eq!(
            mailbox_flags(list),
            with_system(&["$Label1", "NonJunk"]),
            "{flags}"
        );
    }
    assert_eq!(printed.all("search"), ["OK 1", "OK 1"]);
    for folder in [".Archive", ".Moved"] {
        let folder = server.maildir().join(USER).join(folder);
        assert_eq!(
            dovecot_view(&folder).into_values().collect::<Vec<_>>(),
            with_keywords
        );
    }
}

#[test]
fn the_27th_keyword_is_refused_and_changes_nothing() {
    let server = ExampleServer::start();
    server.deliver(&numbered(1));
    server.deliver(&numbered(2));
    let printed = imaplib(
        &server,
        r#"
        M.create("Other")
        M.append("Other", "(Extra)", None, b"Subject: extra\r\n\r\nx\r\n")
        M.select("INBOX")
        M.response("FLAGS")
        all = " ".join("$Label%d" % i for i in range(1, 27))
        out("full", M.store("1", "+FLAGS.SILENT", "(%s)" % all)[0])
        out("flags", M.response("FLAGS")[1])
        out("more", *M.store("1:2", "+FLAGS", r"(\Seen $Label3 OneTooMany)"))
        out("replace", *M.store("2", "FLAGS", "(OneTooMany)"))
        out("append", *M.append("INBOX", "(OneTooMany)", None, b"Subject: no\r\n\r\nx\r\n"))
        out("fetch", *M.fetch("1:*", "(FLAGS)"))
        M.select("Other")
        out("copy", *M.copy("1", "INBOX"))
        M.select("INBOX")
        out("count", M.response("EXISTS")[1])
        out("known", M.store("2", "+FLAGS", "($label26)")[1])
        "#,
        &[],
    );
    assert_eq!(printed.one("full"), "OK");
    let labels: Vec<String> = (1..=26).map(|i| format!("$Label{i}")).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    assert_eq!(mailbox_flags(printed.one("flags")), with_system(&labels));
    let limit = "NO [LIMIT] Too many keywords in this mailbox (26 at most)";
    for step in ["more", "replace", "append", "copy"] {
        assert_eq!(printed.one(step), limit, "{step}");
    }
    assert_eq!(
        flag_lists(printed.one("fetch")),
        [sorted(&labels), vec![]],
        "nothing changed"
    );
    assert_eq!(printed.one("count"), "2", "nothing appended or copied");
    assert_eq!(
        flag_lists(printed.one("known")),
        [sorted(&["$Label26"])],
        "known keywords still work, in any case"
    );
}

#[test]
fn flags_a_client_cannot_set_are_refused() {
    let server = ExampleServer::start();
    server.deliver(&numbered(1));
    let long = "k".repeat(256);
    let printed = imaplib(
        &server,
        r#"
        M.select("INBOX")
        for flags in [r"(\Recent)", r"(\Seen \Unknown)", '(bad"quote)', "(bad]bracket)",
                      "(%s)" % ARGS[0]]:
            try:
                out("store", *M.store("1", "+FLAGS", flags))
            except M.error as e:
                out("store", "BAD", e)
        try:
            out("append", *M.append("INBOX", r"(\Recent)", None, b"Subject: x\r\n\r\nx\r\n"))
        except M.error as e:
            out("append", "BAD", e)
        out("fetch", *M.fetch("1", "(FLAGS)"))
        out("count", M.select("INBOX")[1])
        "#,
        &[&long],
    );
    let stores = printed.all("store");
    assert_eq!(stores.len(), 5, "{printed:#?}");
    assert!(
        stores[0].starts_with("BAD") && stores[0].contains("Invalid system flag \\\\Recent"),
        "{}",
        stores[0]
    );
    assert!(
        stores[1].starts_with("BAD") && stores[1].contains("\\\\Unknown"),
        "{}",
        stores[1]
    );
    assert!(stores[2].starts_with("BAD"), "{}", stores[2]);
    assert!(stores[3].starts_with("BAD"), "{}", stores[3]);
    assert_eq!(stores[4], "NO [LIMIT] Keyword longer than 255 octets");
    assert!(
        printed.one("append").starts_with("BAD"),
        "{}",
        printed.one("append")
    );
    assert_eq!(flag_lists(printed.one("fetch")), [Vec::<String>::new()]);
    assert_eq!(printed.one("count"), "1");
}

// ---- A tree as Dovecot writes it ----

/// A copy of the Maildir folder `from` at `to`. Each message file gets the modification
/// time (INTERNALDATE) its name begins with, as when it was delivered: git keeps no times.
fn copy_folder(from: &Path, to: &Path) {
    fs::create_dir_all(to.join("cur")).unwrap();
    fs::copy(from.join("dovecot-keywords"), to.join("dovecot-keywords")).unwrap();
    for entry in fs::read_dir(from.join("cur")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let target = to.join("cur").join(&name);
        fs::copy(from.join("cur").join(&name), &target).unwrap();
        let secs: u64 = name.split('.').next().unwrap().parse().expect("<secs>.");
        let delivered = UNIX_EPOCH + Duration::from_secs(secs);
        File::options()
            .write(true)
            .open(&target)
            .unwrap()
            .set_modified(delivered)
            .unwrap();
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// What Dovecot shows for each message file in `folder`'s `cur/` (by file name without its
/// info), read by Dovecot's rules independently of the store: the info letters are sorted,
/// system flags first, and every keyword letter is named in `dovecot-keywords` (`<index>
/// <name>` lines, index 0 naming `a`).
fn dovecot_view(folder: &Path) -> BTreeMap<String, Vec<String>> {
    let names: BTreeMap<char, String> = fs::read_to_string(folder.join("dovecot-keywords"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let (index, name) = line.split_once(' ').expect("<index> <name>");
            let index: u8 = index.parse().expect("a number");
            assert!(index < 26, "{line}");
            (char::from(b'a' + index), name.to_owned())
        })
        .collect();
    let system = [
        ('D', "\\Draft"),
        ('F', "\\Flagged"),
        ('R', "\\Answered"),
        ('S', "\\Seen"),
        ('T', "\\Deleted"),
    ];
    fs::read_dir(folder.join("cur"))
        .unwrap()
        .map(|entry| {
            let file = entry.unwrap().file_name().into_string().unwrap();
            let (base, letters) = file.split_once(":2,").expect("a Maildir info");
            let mut in_order: Vec<char> = letters.chars().collect();
            in_order.sort_unstable();
            assert_eq!(letters, String::from_iter(in_order), "sorted: {file}");
            let mut flags: Vec<String> = letters
                .chars()
                .map(|letter| match letter {
                    'a'..='z' => names
                        .get(&letter)
                        .unwrap_or_else(|| panic!("{file}: no name for {letter}"))
                        .clone(),
                    _ => system
                        .iter()
                        .find(|(l, _)| *l == letter)
                        .unwrap_or_else(|| panic!("{file}: letter {letter}"))
                        .1
                        .to_owned(),
                })
                .collect();
            flags.sort();
            (base.to_owned(), flags)
        })
        .collect()
}

#[test]
fn a_dovecot_tree_shows_its_keywords_and_stays_readable_by_dovecot() {
    let server = ExampleServer::start();
    let folder = server.maildir().join(USER).join(".Labels");
    copy_folder(&fixture("dovecot_keywords/.Labels"), &folder);
    let before = dovecot_view(&folder);

    let printed = imaplib(
        &server,
        r#"
        M.select("Labels")
        out("flags", M.response("FLAGS")[1])
        out("fetch", *M.fetch("1:2", "(FLAGS)"))
        out("search", *M.search(None, "KEYWORD $LABEL1"))
        out("search", *M.search(None, "KEYWORD nonjunk UNKEYWORD $Label1"))
        out("replace", *M.store("1", "FLAGS", r"(\Seen)"))
        out("add", *M.store("2", "+FLAGS", "(Todo)"))
        "#,
        &[],
    );
    assert_eq!(
        mailbox_flags(printed.one("flags")),
        with_system(&["$Label1", "NonJunk"])
    );
    assert_eq!(
        flag_lists(printed.one("fetch")),
        before.values().cloned().collect::<Vec<_>>(),
        "IMAP shows what Dovecot shows"
    );
    assert_eq!(
        flag_lists(printed.one("fetch")),
        [
            sorted(&["$Label1", "NonJunk", "\\Seen"]),
            sorted(&["NonJunk", "\\Answered", "\\Seen"])
        ]
    );
    assert_eq!(printed.all("search"), ["OK 1", "OK 2"]);
    assert_eq!(flag_lists(printed.one("replace")), [sorted(&["\\Seen"])]);

    // Dovecot's file kept its numbering and gained the new name; every letter is named.
    assert_eq!(
        fs::read_to_string(folder.join("dovecot-keywords")).unwrap(),
        "0 $Label1\n1 NonJunk\n2 Todo\n"
    );
    let after: Vec<Vec<String>> = dovecot_view(&folder).into_values().collect();
    assert_eq!(
        after,
        [
            sorted(&["\\Seen"]),
            sorted(&["NonJunk", "Todo", "\\Answered", "\\Seen"])
        ]
    );
}
