//! Drive the IMAP and POP3 session services with arbitrary client bytes, as the server drives
//! them: the bytes arrive over an in-memory pipe in pieces, the client reads whatever comes
//! back, and the session must end on its own once the client has finished. Time is virtual
//! (a paused Tokio clock), so idle and login deadlines pass at once instead of stalling a run.
//!
//! What counts as a failure: a panic anywhere, or a session that does not end within a day of
//! virtual time after the client closed its side (a hang).
//!
//! Used by the cargo-fuzz targets in `fuzz/fuzz_targets/` and, over the committed seed corpus,
//! by `tests/fuzz_corpus.rs` in the normal suite.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use tower_mail::auth::PasswdFile;
use tower_mail::auth::sasl::Mechanisms;
use tower_mail::imap::{ImapConfig, ImapService};
use tower_mail::pop3::{Pop3Config, Pop3Service};
use tower_mail::store::MemoryStore;
use tower_mail::{CloseReport, Connection, Protocol};

/// The one account the harness knows.
pub const USERS: &str = "alice:{PLAIN}secret";

/// A session that has not ended this long after its client finished is hung.
const HANG: Duration = Duration::from_secs(24 * 3600);

/// Every SASL mechanism, SCRAM's salts from `users`. The passwd-file refuses tokens, which
/// leaves the token mechanisms' error path to explore.
fn all_mechanisms(users: &PasswdFile) -> Mechanisms {
    Mechanisms::new().scram(users.clone()).oauth()
}

/// Feed `input` to a fresh IMAP session (plaintext login allowed, every SASL mechanism) and
/// return what it sent.
pub fn imap_session(input: &[u8]) -> Vec<u8> {
    let users = PasswdFile::parse(USERS);
    let mut config = ImapConfig::default();
    config.allow_plaintext_login = true;
    config.sasl = all_mechanisms(&users);
    let service = ImapService::new(users, MemoryStore::new(), config);
    drive(Protocol::Imap, input, move |conn| service.oneshot(conn))
}

/// Feed `input` to a fresh POP3 session (plaintext login allowed, every SASL mechanism, one
/// message in the maildrop, put there through IMAP) and return what it sent.
pub fn pop3_session(input: &[u8]) -> Vec<u8> {
    let store = MemoryStore::new();
    let mut imap_config = ImapConfig::default();
    imap_config.allow_plaintext_login = true;
    let imap = ImapService::new(PasswdFile::parse(USERS), store.clone(), imap_config);
    let message = b"From: a@example.com\r\nSubject: hi\r\n\r\n.line\r\nbody\r\n";
    let mut setup = format!(
        "a LOGIN alice secret\r\nb APPEND INBOX {{{}+}}\r\n",
        message.len()
    )
    .into_bytes();
    setup.extend_from_slice(message);
    setup.extend_from_slice(b"\r\nc LOGOUT\r\n");
    drive(Protocol::Imap, &setup, move |conn| imap.oneshot(conn));

    let users = PasswdFile::parse(USERS);
    let mut config = Pop3Config::default();
    config.allow_plaintext_login = true;
    config.sasl = all_mechanisms(&users);
    let service = Pop3Service::new(users, store, config);
    drive(Protocol::Pop3, input, move |conn| service.oneshot(conn))
}

/// Append `message` (twice, so that THREAD links a message to its copy) through IMAP and
/// read it back every way the hand-written parsers see it: ENVELOPE, BODYSTRUCTURE, sections,
/// header fields, BINARY's decoding, SEARCH on addresses and text, SORT's keys and THREAD's
/// ids and subjects.
pub fn imap_message(message: &[u8]) -> Vec<u8> {
    let append = format!("APPEND INBOX {{{}+}}\r\n", message.len());
    let mut input = format!("a LOGIN alice secret\r\nb {append}").into_bytes();
    input.extend_from_slice(message);
    input.extend_from_slice(format!("\r\nb2 {append}").as_bytes());
    input.extend_from_slice(message);
    input.extend_from_slice(
        b"\r\nc SELECT INBOX\r\n\
          d FETCH 1 (ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE INTERNALDATE)\r\n\
          e FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT)] BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2.1] BODY.PEEK[TEXT]<0.100>)\r\n\
          e2 FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2.1]<0.100> BINARY.SIZE[] BINARY.PEEK[2])\r\n\
          f SEARCH FROM example TO \"a b\" CC x HEADER Content-Type multipart BODY hello TEXT world\r\n\
          g SEARCH OR SUBJECT hi NOT LARGER 10 SENTSINCE 1-Jan-2020\r\n\
          g2 SORT (REVERSE SUBJECT FROM TO CC DATE DISPLAYFROM DISPLAYTO ARRIVAL SIZE) UTF-8 ALL\r\n\
          g3 THREAD REFERENCES UTF-8 ALL\r\n\
          g4 UID THREAD ORDEREDSUBJECT UTF-8 ALL\r\n\
          h LOGOUT\r\n",
    );
    imap_session(&input)
}

/// Run one session for `protocol` over an in-memory pipe fed with `input`, on a
/// current-thread runtime with a paused clock; returns the session's output.
///
/// Panics if the session does not end after the client closed its side.
pub fn drive<F, Fut, E>(protocol: Protocol, input: &[u8], serve: F) -> Vec<u8>
where
    F: FnOnce(Connection) -> Fut,
    Fut: Future<Output = Result<CloseReport, E>>,
    E: std::fmt::Debug,
{
    let runtime = paused_runtime();
    runtime.block_on(async {
        let (client, server) = tokio::io::duplex(16 * 1024);
        let session = serve(Connection::for_test(protocol, server));
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let write = async {
            // In pieces of varying size, as TCP would deliver them; a write that fails means
            // the session closed, which is a fine end.
            let mut rest = input;
            let mut piece = 1;
            while !rest.is_empty() {
                let (now, later) = rest.split_at(piece.min(rest.len()));
                if to_server.write_all(now).await.is_err() {
                    return;
                }
                rest = later;
                piece = piece * 3 % 1021 + 1;
            }
            let _ = to_server.shutdown().await;
        };
        let read = async {
            let mut output = Vec::new();
            let _ = from_server.read_to_end(&mut output).await;
            output
        };
        let all = async { tokio::join!(session, write, read) };
        let (report, (), output) = tokio::time::timeout(HANG, all)
            .await
            .expect("the session did not end after its client finished");
        if let Err(err) = report {
            panic!("the session service failed instead of reporting: {err:?}");
        }
        output
    })
}

/// Lay out one user's INBOX from `input` as another program might have left it, then read it
/// through the Maildir store the way a session does: snapshot, every message, a flag change,
/// a snapshot again. `input` is NUL-separated: the `dovecot-uidlist` file, the
/// `dovecot-keywords` file, then message file names (into `cur/` or, after a name starting
/// with `n`, `new/`). Names that no filesystem takes (empty, `.`, `..`, with `/`) are skipped.
///
/// What counts as a failure: a panic, or a snapshot whose UIDs are not unique and ascending
/// below its UIDNEXT. Returns the number of messages the second snapshot holds.
pub fn maildir_tree(input: &[u8]) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower_mail::store::{Flags, Maildir, Mailstore, MessageFlags};

    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let root = std::env::temp_dir().join(format!(
        "tower-mail-fuzz-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let inbox = root.join("alice");
    for dir in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(inbox.join(dir)).expect("a temporary directory");
    }
    let mut parts = input.split(|&b| b == 0);
    let uidlist = parts.next().unwrap_or_default();
    let keywords = parts.next().unwrap_or_default();
    std::fs::write(inbox.join("dovecot-uidlist"), uidlist).expect("write the UID list");
    std::fs::write(inbox.join("dovecot-keywords"), keywords).expect("write the keywords");
    for name in parts {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        let (dir, name) = match name.strip_prefix('n') {
            Some(rest) => ("new", rest),
            None => ("cur", name),
        };
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            continue;
        }
        let message = format!("Subject: {}\r\n\r\nbody\r\n", name.len());
        let _ = std::fs::write(inbox.join(dir).join(name), message);
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let held = runtime.block_on(async {
        let store = Maildir::new(&root);
        let Ok(first) = store.snapshot("alice", "INBOX").await else {
            return 0;
        };
        check_uids(
            &first.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
            first.uid_next,
        );
        for message in first.messages.iter() {
            let _ = store.fetch("alice", "INBOX", message.uid).await;
        }
        if let Some(message) = first.messages.first() {
            let flags = MessageFlags::from(Flags::SEEN);
            let _ = store.set_flags("alice", "INBOX", message.uid, flags).await;
        }
        let Ok(second) = store.snapshot("alice", "INBOX").await else {
            return 0;
        };
        check_uids(
            &second.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
            second.uid_next,
        );
        second.messages.len()
    });
    let _ = std::fs::remove_dir_all(&root);
    held
}

/// UIDs are unique, ascending, non-zero and below UIDNEXT: what every client relies on.
fn check_uids(uids: &[u32], uid_next: u32) {
    assert!(
        uids.windows(2).all(|w| w[0] < w[1]),
        "UIDs not ascending: {uids:?}"
    );
    assert!(
        uids.iter().all(|&uid| uid > 0 && uid < uid_next),
        "UIDs {uids:?} vs UIDNEXT {uid_next}"
    );
}

/// Feed `input` to the PROXY header reader in pieces (the first byte says where the input is
/// cut), as a trusted peer's connection delivers it, on a paused clock so the deadline passes
/// at once. What counts as a failure: a panic, a hang past the deadline, or a header accepted
/// with more bytes than the cap or with bytes passed on that did not follow it in the input.
pub fn proxy_header(input: &[u8]) -> bool {
    use tower_mail::server::{ProxyConfig, read_proxy_header};

    let Some((&cut, input)) = input.split_first() else {
        return false;
    };
    let config = ProxyConfig::default();
    let runtime = paused_runtime();
    runtime.block_on(async {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let data = input.to_vec();
        let writer = tokio::spawn(async move {
            let cut = usize::from(cut).min(data.len());
            let _ = client.write_all(&data[..cut]).await;
            tokio::task::yield_now().await;
            let _ = client.write_all(&data[cut..]).await;
            // The peer stays connected: the reader must end on what it has or on its deadline.
            std::future::pending::<()>().await;
        });
        let read = tokio::time::timeout(
            config.timeout + Duration::from_secs(1),
            read_proxy_header(&mut server, &config),
        )
        .await
        .expect("the reader ends by its own deadline");
        writer.abort();
        match read {
            Ok((_, rest)) => {
                // The bytes passed on are the input's own, in order, right after a header
                // within the cap (only what had arrived: the rest is still in the pipe).
                let after_header = (0..=input.len().min(config.max_header_len))
                    .any(|at| input[at..].starts_with(&rest));
                assert!(
                    after_header,
                    "passed on bytes that did not follow the header"
                );
                true
            }
            Err(_) => false,
        }
    })
}

/// A current-thread runtime whose clock is paused: deadlines pass as soon as nothing else can
/// run, so a run never waits for them in real time.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime")
}
