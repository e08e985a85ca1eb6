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

/// Append `message` through IMAP and read it back every way the hand-written parsers see it:
/// ENVELOPE, BODYSTRUCTURE, sections, header fields, BINARY's decoding and SEARCH on
/// addresses and text.
pub fn imap_message(message: &[u8]) -> Vec<u8> {
    let mut input = format!(
        "a LOGIN alice secret\r\nb APPEND INBOX {{{}+}}\r\n",
        message.len()
    )
    .into_bytes();
    input.extend_from_slice(message);
    input.extend_from_slice(
        b"\r\nc SELECT INBOX\r\n\
          d FETCH 1 (ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE INTERNALDATE)\r\n\
          e FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT)] BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2.1] BODY.PEEK[TEXT]<0.100>)\r\n\
          e2 FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2.1]<0.100> BINARY.SIZE[] BINARY.PEEK[2])\r\n\
          f SEARCH FROM example TO \"a b\" CC x HEADER Content-Type multipart BODY hello TEXT world\r\n\
          g SEARCH OR SUBJECT hi NOT LARGER 10 SENTSINCE 1-Jan-2020\r\n\
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
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
