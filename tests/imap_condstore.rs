//! End-to-end tests of CONDSTORE and QRESYNC (RFC 7162) through the example server binary and
//! its Maildir store, with Python's imaplib as the client (raw commands through
//! `_simple_command`, untagged responses from `untagged_responses`): the resynchronisation
//! Thunderbird, Apple Mail and K-9 do when they reopen a large mailbox, conditional STORE
//! between two sessions, mod-sequences across a restart, what a client that never enables
//! anything still sees, and the refusals.
//!
//! ```text
//! cargo build --example server && cargo test --test imap_condstore
//! ```
//!
//! Needs `python3` (imaplib from the standard library).

mod support_example;
mod support_shared;

use support_example::imaplib::imaplib;
use support_example::{ExampleServer, Transcript};

/// Prepended to every script here: `run(m, name, *args)` sends one command as given and
/// returns its status, the tagged response's text and the untagged responses by kind
/// (imaplib files response codes under their name: `HIGHESTMODSEQ`, `MODIFIED`); a `BAD`
/// comes back as status `BAD`. imaplib's own idea of the state is set to one the command
/// is allowed in, so that the server, not imaplib, judges it. `show_all(name, got, kind)`
/// prints each response of a kind on its own line.
const RUN: &str = r#"
def run(m, name, *args):
    allowed = imaplib.Commands[name]
    if m.state not in allowed:
        m.state = allowed[0]
    m.untagged_responses.clear()
    try:
        typ, data = m._simple_command(name, *args)
    except m.error as e:
        return 'BAD', [str(e).encode()], {}
    if name in ('SELECT', 'EXAMINE') and typ == 'OK':
        m.state = 'SELECTED'
    got = {kind: list(values) for kind, values in m.untagged_responses.items()}
    m.untagged_responses.clear()
    return typ, data, got

def show_all(name, got, kind):
    for value in got.get(kind, []):
        out(name, value)
"#;

/// Run `script` (indented as in the test) with [`RUN`] before it.
#[track_caller]
fn script(server: &ExampleServer, script: &str, args: &[&str]) -> Transcript {
    let script = format!(
        "{}\n{}",
        support_shared::dedent(RUN),
        support_shared::dedent(script)
    );
    imaplib(server, &script, args)
}

/// A message with a subject of its own.
fn message(n: u32) -> Vec<u8> {
    format!("Subject: message {n}\r\nMessage-ID: <m{n}@example.com>\r\n\r\nBody {n}.\r\n")
        .into_bytes()
}

/// A server whose INBOX holds `n` messages, UIDs 1 to `n`.
fn with_messages(n: u32) -> ExampleServer {
    let server = ExampleServer::start();
    for i in 1..=n {
        assert_eq!(server.deliver(&message(i)), i);
    }
    server
}

/// One FETCH response as imaplib keeps it (`2 (UID 5 FLAGS (\Seen) MODSEQ (12))`): its
/// number, UID, flags (sorted, without `\Recent`, which depends on which session looked
/// first) and mod-sequence.
#[derive(Debug, PartialEq, Eq)]
struct Fetched {
    seq: u32,
    uid: u32,
    flags: Vec<String>,
    modseq: u64,
}

#[track_caller]
fn fetched(response: &str) -> Fetched {
    let (seq, items) = response.split_once(' ').expect("a number, then the items");
    let value = |name: &str| {
        let start = items
            .find(&format!("{name} "))
            .unwrap_or_else(|| panic!("no {name} in {response}"))
            + name.len()
            + 1;
        items[start..].split([' ', ')']).next().unwrap().to_owned()
    };
    let flags_at = items.find("FLAGS (").map(|at| at + "FLAGS (".len());
    let mut flags: Vec<String> = flags_at
        .map(|start| &items[start..start + items[start..].find(')').unwrap()])
        .unwrap_or("")
        .split(' ')
        .filter(|flag| !flag.is_empty() && *flag != "\\Recent")
        .map(str::to_owned)
        .collect();
    flags.sort();
    let modseq = value("MODSEQ").trim_start_matches('(').to_owned();
    Fetched {
        seq: seq.parse().expect("a message number"),
        uid: value("UID").parse().expect("a UID"),
        flags,
        modseq: modseq.parse().expect("a mod-sequence"),
    }
}

fn flags(list: &[&str]) -> Vec<String> {
    let mut flags: Vec<String> = list.iter().map(|f| (*f).to_owned()).collect();
    flags.sort();
    flags
}

/// A number a step printed.
#[track_caller]
fn number(transcript: &Transcript, step: &str) -> u64 {
    let text = transcript.one(step);
    text.parse()
        .unwrap_or_else(|_| panic!("{step}: {text:?} is no number"))
}

/// A client that remembered UIDVALIDITY and HIGHESTMODSEQ reconnects after another session
/// flagged two messages, expunged two and delivered one: SELECT with QRESYNC tells it
/// exactly that, and so does UID FETCH with CHANGEDSINCE and VANISHED.
#[test]
fn qresync_select_reports_exactly_what_another_session_changed() {
    let server = with_messages(6);
    let transcript = script(
        &server,
        r#"
        typ, data, got = run(M, 'ENABLE', 'QRESYNC')
        out('enabled', got['ENABLED'][0])
        typ, data, got = run(M, 'SELECT', 'INBOX')
        validity, highest = got['UIDVALIDITY'][0].decode(), got['HIGHESTMODSEQ'][0].decode()
        out('highest', highest)
        M.logout()

        other = connect()
        other.select('INBOX')
        other.uid('STORE', '2', '+FLAGS', '(\\Flagged)')
        other.uid('STORE', '4', '+FLAGS', '(\\Seen $Label1)')
        other.uid('STORE', '3,5', '+FLAGS', '(\\Deleted)')
        other.expunge()
        other.append('INBOX', '(\\Draft)', None, b'Subject: new\r\n\r\nnew\r\n')
        other.logout()

        M = connect()
        run(M, 'ENABLE', 'QRESYNC')
        typ, data, got = run(M, 'SELECT', 'INBOX', '(QRESYNC (%s %s 1:6))' % (validity, highest))
        out('select', typ, data[0])
        out('exists', got['EXISTS'][0])
        out('now', got['HIGHESTMODSEQ'][0])
        show_all('vanished', got, 'VANISHED')
        show_all('fetch', got, 'FETCH')

        typ, data, got = run(M, 'UID', 'FETCH', '1:*', '(FLAGS)',
                             '(CHANGEDSINCE %s VANISHED)' % highest)
        out('uid_fetch', typ)
        show_all('fetch_vanished', got, 'VANISHED')
        show_all('fetch_changed', got, 'FETCH')
        "#,
        &[],
    );
    assert_eq!(transcript.one("enabled"), "QRESYNC");
    let (highest, now) = (number(&transcript, "highest"), number(&transcript, "now"));
    assert!(now > highest, "{transcript:#?}");
    assert!(transcript.one("select").starts_with("OK [READ-WRITE]"));
    assert_eq!(transcript.one("exists"), "5");

    // Among the UIDs the client knew (1:6): 3 and 5 went, 2 and 4 changed; 1 and 6 did not,
    // and the new message 7 is not among them (EXISTS tells of it).
    assert_eq!(transcript.all("vanished"), ["(EARLIER) 3,5"]);
    let changed: Vec<Fetched> = transcript.all("fetch").iter().map(|f| fetched(f)).collect();
    let [two, four] = &changed[..] else {
        panic!("two FETCH responses expected: {transcript:#?}");
    };
    assert_eq!(
        (two.seq, two.uid, &two.flags),
        (2, 2, &flags(&["\\Flagged"]))
    );
    assert_eq!(
        (four.seq, four.uid, &four.flags),
        (3, 4, &flags(&["\\Seen", "$Label1"]))
    );
    for change in &changed {
        assert!(
            change.modseq > highest && change.modseq <= now,
            "{change:?}"
        );
    }

    // UID FETCH 1:* (CHANGEDSINCE ... VANISHED): the same, and the new message.
    assert_eq!(transcript.one("uid_fetch"), "OK");
    assert_eq!(transcript.all("fetch_vanished"), ["(EARLIER) 3,5"]);
    let changed: Vec<Fetched> = transcript
        .all("fetch_changed")
        .iter()
        .map(|f| fetched(f))
        .collect();
    let uids: Vec<u32> = changed.iter().map(|f| f.uid).collect();
    assert_eq!(uids, [2, 4, 7]);
    assert_eq!(changed[2].flags, flags(&["\\Draft"]));
    assert_eq!(changed[2].modseq, now, "the delivery was the last change");
}

/// Two sessions change a message from the same state with UNCHANGEDSINCE: the first wins,
/// the second is told `[MODIFIED]` and changes nothing; UID STORE names UIDs there, and
/// answers a message it did change with its MODSEQ, even `.SILENT`.
#[test]
fn store_unchangedsince_refuses_a_change_made_meanwhile() {
    let server = with_messages(2);
    let transcript = script(
        &server,
        r#"
        A, B = M, connect()
        for m in (A, B):
            typ, data, got = run(m, 'SELECT', 'INBOX', '(CONDSTORE)')
            out('select', typ, got['HIGHESTMODSEQ'][0])
        typ, data, got = run(A, 'FETCH', '1:2', '(MODSEQ)')
        show_all('seen', got, 'FETCH')
        known = max(int(f.decode().split('MODSEQ (')[1].rstrip('))')) for f in got['FETCH'])
        out('known', known)

        typ, data, got = run(A, 'UID', 'STORE', '1', '(UNCHANGEDSINCE %d)' % known, '+FLAGS', '(\\Seen)')
        out('a', typ, data[0])
        show_all('a_fetch', got, 'FETCH')

        typ, data, got = run(B, 'STORE', '1', '(UNCHANGEDSINCE %d)' % known, '+FLAGS', '(\\Flagged)')
        out('b', typ, data[0])
        show_all('b_modified', got, 'MODIFIED')
        show_all('b_fetch', got, 'FETCH')

        typ, data, got = run(B, 'UID', 'STORE', '1:2', '(UNCHANGEDSINCE %d)' % known,
                             '+FLAGS.SILENT', '(\\Answered)')
        out('uid', typ, data[0])
        show_all('uid_modified', got, 'MODIFIED')
        show_all('uid_fetch', got, 'FETCH')

        typ, data, got = run(B, 'UID', 'FETCH', '1:2', '(FLAGS)')
        show_all('flags', got, 'FETCH')
        typ, data, got = run(B, 'SEARCH', 'MODSEQ', str(known + 1))
        out('search', got['SEARCH'][0])
        typ, data, got = run(B, 'SEARCH', 'RETURN', '(MIN COUNT)', 'MODSEQ', str(known + 1))
        out('esearch', got['ESEARCH'][0])
        "#,
        &[],
    );
    let known = number(&transcript, "known");
    assert!(transcript.one("a").starts_with("OK STORE completed"));
    let a = fetched(transcript.one("a_fetch"));
    assert_eq!((a.uid, &a.flags), (1, &flags(&["\\Seen"])));
    assert!(a.modseq > known);

    // B is told of A's change (unsolicited, with UID and MODSEQ), and refused.
    assert!(
        transcript.one("b").starts_with("OK [MODIFIED 1]"),
        "{transcript:#?}"
    );
    assert_eq!(transcript.all("b_modified"), ["1"]);
    assert_eq!(transcript.all("b_fetch").len(), 1, "{transcript:#?}");
    assert_eq!(fetched(transcript.one("b_fetch")), a);

    // UID STORE: message 1 changed since, message 2 did not.
    assert!(transcript.one("uid").starts_with("OK [MODIFIED 1]"));
    let two = fetched(transcript.one("uid_fetch"));
    assert_eq!(two.uid, 2);
    assert!(two.modseq > a.modseq);
    assert!(
        !transcript.one("uid_fetch").contains("FLAGS"),
        ".SILENT: {transcript:#?}"
    );

    let now: Vec<Fetched> = transcript.all("flags").iter().map(|f| fetched(f)).collect();
    assert_eq!(
        now[0].flags,
        flags(&["\\Seen"]),
        "B's changes were not made"
    );
    assert_eq!(now[1].flags, flags(&["\\Answered"]));
    assert_eq!(
        transcript.one("search"),
        format!("1 2 (MODSEQ {})", two.modseq)
    );
    // ESEARCH: the highest of the messages returned, all of them for COUNT.
    let esearch = transcript.one("esearch");
    assert!(
        esearch.ends_with(&format!(") MIN 1 COUNT 2 MODSEQ {}", two.modseq)),
        "{esearch}"
    );
}

/// Mod-sequences and the record of expunges are on disk: after a restart the server reports
/// the same values, resynchronises a client from before, and goes on counting upwards.
#[test]
fn modseqs_survive_a_restart() {
    let mut server = with_messages(3);
    let before = script(
        &server,
        r#"
        run(M, 'SELECT', 'INBOX', '(CONDSTORE)')
        M.uid('STORE', '1', '+FLAGS', '(\\Seen)')
        typ, data, got = run(M, 'STATUS', 'INBOX', '(HIGHESTMODSEQ UIDVALIDITY)')
        out('status', got['STATUS'][0])
        M.uid('STORE', '3', '+FLAGS', '(\\Deleted)')
        M.expunge()
        typ, data, got = run(M, 'FETCH', '1:*', '(UID MODSEQ)')
        show_all('modseq', got, 'FETCH')
        typ, data, got = run(M, 'STATUS', 'INBOX', '(HIGHESTMODSEQ)')
        out('after', got['STATUS'][0])
        "#,
        &[],
    );
    server.restart();
    let status = before.one("status").to_owned();
    let (validity, expunged_after) = (
        status_item(&status, "UIDVALIDITY"),
        status_item(&status, "HIGHESTMODSEQ"),
    );
    let after = script(
        &server,
        r#"
        typ, data, got = run(M, 'STATUS', 'INBOX', '(HIGHESTMODSEQ)')
        out('after', got['STATUS'][0])
        run(M, 'ENABLE', 'QRESYNC')
        typ, data, got = run(M, 'SELECT', 'INBOX', '(QRESYNC (%s %s))' % (ARGS[0], ARGS[1]))
        show_all('vanished', got, 'VANISHED')
        show_all('changed', got, 'FETCH')
        typ, data, got = run(M, 'FETCH', '1:*', '(UID MODSEQ)')
        show_all('modseq', got, 'FETCH')
        typ, data, got = run(M, 'UID', 'STORE', '2', '+FLAGS', '(\\Flagged)')
        show_all('flagged', got, 'FETCH')
        "#,
        &[&validity, &expunged_after],
    );
    assert_eq!(after.one("after"), before.one("after"));
    assert_eq!(after.all("modseq"), before.all("modseq"));
    // Only the expunge came after that value.
    assert_eq!(after.all("vanished"), ["(EARLIER) 3"]);
    assert!(after.all("changed").is_empty(), "{after:#?}");
    let highest = status_item(before.one("after"), "HIGHESTMODSEQ");
    let flagged = fetched(after.one("flagged"));
    assert_eq!(flagged.modseq, highest.parse::<u64>().unwrap() + 1);
}

/// The value of `name` in a STATUS response as imaplib keeps it: `INBOX (HIGHESTMODSEQ 12)`.
#[track_caller]
fn status_item(status: &str, name: &str) -> String {
    let start = status
        .find(&format!("{name} "))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        + name.len()
        + 1;
    status[start..].split([' ', ')']).next().unwrap().to_owned()
}

/// A client that never enables anything sees IMAP4rev1 as before (EXPUNGE, FETCH FLAGS
/// alone), plus HIGHESTMODSEQ on SELECT; one that enabled QRESYNC sees VANISHED, FETCH with
/// UID and MODSEQ, and HIGHESTMODSEQ on EXPUNGE, MOVE and CLOSE.
#[test]
fn unsolicited_changes_with_and_without_qresync() {
    let server = with_messages(4);
    let transcript = script(
        &server,
        r#"
        plain, resync, other = M, connect(), connect()
        run(resync, 'ENABLE', 'QRESYNC')
        run(resync, 'SELECT', 'INBOX')
        typ, data, got = run(plain, 'SELECT', 'INBOX')
        out('plain_select', sorted(got))
        other.select('INBOX')
        other.uid('STORE', '1', '+FLAGS', '(\\Seen)')
        other.uid('STORE', '2', '+FLAGS', '(\\Deleted)')
        other.expunge()

        typ, data, got = run(plain, 'NOOP')
        show_all('plain_expunge', got, 'EXPUNGE')
        show_all('plain_fetch', got, 'FETCH')
        typ, data, got = run(resync, 'NOOP')
        show_all('resync_vanished', got, 'VANISHED')
        show_all('resync_fetch', got, 'FETCH')
        out('resync_expunge', got.get('EXPUNGE', []))

        resync.uid('STORE', '3', '+FLAGS', '(\\Deleted)')
        typ, data, got = run(resync, 'EXPUNGE')
        out('expunged', typ, data[0])
        show_all('expunged_vanished', got, 'VANISHED')
        resync.create('Archive')
        typ, data, got = run(resync, 'UID', 'MOVE', '4', 'Archive')
        out('moved', typ, data[0])
        show_all('moved_vanished', got, 'VANISHED')
        typ, data, got = run(resync, 'CLOSE')
        out('closed', typ, data[0])
        "#,
        &[],
    );
    let plain_kinds = transcript.one("plain_select");
    assert!(plain_kinds.contains("HIGHESTMODSEQ"), "{plain_kinds}");
    assert!(!plain_kinds.contains("CLOSED") && !plain_kinds.contains("VANISHED"));
    assert_eq!(transcript.all("plain_expunge"), ["2"]);
    assert_eq!(transcript.all("plain_fetch"), ["1 (FLAGS (\\Seen))"]);

    assert_eq!(transcript.all("resync_vanished"), ["2"]);
    assert_eq!(transcript.one("resync_expunge"), "");
    let seen = fetched(transcript.one("resync_fetch"));
    assert_eq!(
        (seen.seq, seen.uid, &seen.flags),
        (1, 1, &flags(&["\\Seen"]))
    );

    let expunged = transcript.one("expunged");
    assert!(
        expunged.starts_with("OK [HIGHESTMODSEQ "),
        "{transcript:#?}"
    );
    assert_eq!(transcript.all("expunged_vanished"), ["3"]);
    let highest = expunged["OK [HIGHESTMODSEQ ".len()..]
        .split(']')
        .next()
        .unwrap();
    assert!(highest.parse::<u64>().unwrap() > seen.modseq);
    // MOVE expunges too: VANISHED, and the new HIGHESTMODSEQ on its tagged OK.
    assert_eq!(transcript.all("moved_vanished"), ["4"]);
    let moved = transcript.one("moved");
    let after_move = moved
        .strip_prefix("OK [HIGHESTMODSEQ ")
        .and_then(|rest| rest.strip_suffix("] MOVE completed"))
        .unwrap_or_else(|| panic!("{moved}"));
    assert!(after_move.parse::<u64>().unwrap() > highest.parse::<u64>().unwrap());
    assert_eq!(
        transcript.one("closed"),
        format!("OK [HIGHESTMODSEQ {after_move}] CLOSE completed")
    );
}

/// What is refused with `BAD`, and the session goes on.
#[test]
fn misuse_is_refused() {
    let server = with_messages(3);
    let transcript = script(
        &server,
        r#"
        typ, data, got = run(M, 'SELECT', 'INBOX', '(QRESYNC (1 1))')
        out('qresync_not_enabled', typ)
        run(M, 'SELECT', 'INBOX')
        typ, data, got = run(M, 'UID', 'FETCH', '1:*', '(FLAGS)', '(CHANGEDSINCE 1 VANISHED)')
        out('vanished_not_enabled', typ)
        typ, data, got = run(M, 'ENABLE', 'QRESYNC')
        out('enable_selected', typ)
        run(M, 'CLOSE')
        typ, data, got = run(M, 'ENABLE', 'CONDSTORE', 'QRESYNC', 'X-UNKNOWN')
        out('enabled', got['ENABLED'][0])
        typ, data, got = run(M, 'SELECT', 'INBOX', '(QRESYNC (1 1 1:3 (1:2 1:3)))')
        out('bad_match', typ)
        run(M, 'SELECT', 'INBOX')
        typ, data, got = run(M, 'FETCH', '1:*', '(FLAGS)', '(CHANGEDSINCE 1 VANISHED)')
        out('vanished_without_uid', typ)
        typ, data, got = run(M, 'UID', 'FETCH', '1:*', '(FLAGS)', '(VANISHED)')
        out('vanished_alone', typ)
        typ, data, got = run(M, 'FETCH', '1', '(FLAGS)', '(CHANGEDSINCE 0)')
        out('changedsince_zero', typ)
        typ, data, got = run(M, 'STORE', '1', '(UNCHANGEDSINCE 1 UNCHANGEDSINCE 2)', 'FLAGS', '()')
        out('twice', typ)
        typ, data, got = run(M, 'SELECT', 'INBOX', '(QRESYNC (1 1))')
        out('other_validity', typ, sorted(got))
        typ, data, got = run(M, 'NOOP')
        out('noop', typ)
        "#,
        &[],
    );
    for step in [
        "qresync_not_enabled",
        "vanished_not_enabled",
        "enable_selected",
        "bad_match",
        "vanished_without_uid",
        "vanished_alone",
        "changedsince_zero",
        "twice",
    ] {
        assert_eq!(transcript.one(step), "BAD", "{step}: {transcript:#?}");
    }
    assert_eq!(transcript.one("enabled"), "CONDSTORE QRESYNC");
    // A UIDVALIDITY the mailbox does not have: a plain SELECT, nothing to resynchronise.
    let other = transcript.one("other_validity");
    assert!(other.starts_with("OK "), "{other}");
    assert!(
        !other.contains("VANISHED") && !other.contains("FETCH"),
        "{other}"
    );
    assert_eq!(transcript.one("noop"), "OK");
}
