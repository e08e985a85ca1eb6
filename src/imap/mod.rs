//! IMAP: the session service ([`ImapService`]).
//!
//! Commands are decoded and responses encoded by `imap-codec`, so there is one IMAP grammar in
//! the crate; this module adds the conversation around it: framing with literals, the RFC 3501
//! state machine, and the connection-management surface.
//!
//! # What is served
//!
//! IMAP4rev1 (RFC 3501) complete, with the extensions real clients rely on, and IMAP4rev2
//! (RFC 9051) beside it:
//!
//! - Any state: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971).
//! - Not authenticated: STARTTLS, LOGIN, AUTHENTICATE PLAIN with SASL-IR (RFC 4959).
//! - Authenticated: ENABLE (RFC 5161: IMAP4rev2, CONDSTORE, QRESYNC), SELECT, EXAMINE, CREATE,
//!   DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST and LSUB (with CHILDREN and SPECIAL-USE
//!   attributes; LIST with LIST-EXTENDED's selection and return options and several patterns,
//!   RFC 5258, and LIST-STATUS, RFC 5819), STATUS (with SIZE, RFC 8438, and DELETED), APPEND,
//!   NAMESPACE (RFC 2342), IDLE (RFC 2177).
//! - Selected: CHECK, CLOSE, UNSELECT (RFC 3691), EXPUNGE, SEARCH, FETCH, STORE, COPY, MOVE
//!   (RFC 6851) and their UID forms, UID EXPUNGE; APPEND and COPY answer with APPENDUID and
//!   COPYUID (UIDPLUS, RFC 4315).
//! - SEARCH's result options MIN, MAX, COUNT and ALL answered with ESEARCH (RFC 4731), and
//!   SAVE with `$` in any sequence set (SEARCHRES, RFC 5182).
//! - SORT and UID SORT (RFC 5256) once logged in, by ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT
//!   (the base subject) and TO, and SORT=DISPLAY's DISPLAYFROM and DISPLAYTO (RFC 5957),
//!   each optionally REVERSE, with any SEARCH criteria (`$` and MODSEQ included). The keys
//!   come from the ENVELOPE the store keeps for FETCH, so a sort rarely reads a message.
//! - THREAD and UID THREAD (RFC 5256) once logged in, with the algorithms ORDEREDSUBJECT
//!   (from the kept ENVELOPE, as SORT) and REFERENCES (which reads each message's header for
//!   its References), with any SEARCH criteria.
//! - LITERAL+ (RFC 7888): non-synchronizing literals are read without a continuation request.
//! - CONDSTORE and QRESYNC (RFC 7162): mod-sequences from the store, FETCH CHANGEDSINCE and
//!   MODSEQ, STORE UNCHANGEDSINCE with `[MODIFIED]`, SEARCH MODSEQ, STATUS HIGHESTMODSEQ,
//!   SELECT and EXAMINE with CONDSTORE and QRESYNC (`VANISHED (EARLIER)`), `VANISHED` instead of
//!   EXPUNGE once QRESYNC is enabled, UID FETCH with VANISHED.
//! - BINARY (RFC 3516, part of IMAP4rev2): FETCH BINARY[...], BINARY.PEEK[...] and
//!   BINARY.SIZE[...] send a part with its Content-Transfer-Encoding removed, in a `literal8`
//!   (`~{n}`) when it holds NUL; APPEND takes the message in a `literal8`, under the same caps
//!   and streamed the same way as in a literal.
//! - COMPRESS=DEFLATE (RFC 4978) once logged in, with the `compress` cargo feature.
//!
//! Changes made by other sessions (IMAP or POP3) through the same store reach a selected
//! session before its next command's answer, and at once while it is in IDLE; changes the
//! store cannot announce (mail dropped into the Maildir by another program) are found at the
//! next command and at [`ImapConfig::idle_poll_interval`] in IDLE.

//! # IMAP4rev2
//!
//! `IMAP4rev2` is advertised beside `IMAP4rev1`, which stays the default: a session follows
//! RFC 9051 only after `ENABLE IMAP4rev2` (appendix E). Then it:
//!
//! - has no `\Recent`: no RECENT responses, no `\Recent` in FLAGS, no claim on messages
//!   (IMAP4rev1 sessions still see them as recent);
//! - answers SELECT and EXAMINE without RECENT and `OK [UNSEEN]`, with the mailbox's LIST
//!   response (and, as every session, with `OK [CLOSED]` first when another mailbox was
//!   selected, which RFC 7162 asks of a server offering CONDSTORE);
//! - answers SEARCH with ESEARCH, as `RETURN (ALL)`;
//! - names mailboxes in UTF-8, both ways: the stores keep modified UTF-7 (as Dovecot does),
//!   and a name that is not valid modified UTF-7 is shown as it is stored;
//! - shows a parent that does not exist as `\NonExistent` in LIST (extended LIST does so in
//!   IMAP4rev1 sessions too), not as `\Noselect`.
//!
//! Not served yet: LIST's OLDNAME, and `\NonExistent` for a subscription whose mailbox is
//! gone (the stores list subscriptions of existing mailboxes only). `LITERAL-` is not
//! advertised: `LITERAL+`, which is, allows more. IMAP4rev1's STATUS RECENT and the search keys RECENT,
//! NEW and OLD are still accepted from IMAP4rev2 clients (and find nothing recent).
//!
//! `imap-codec` has no ESEARCH or LIST-EXTENDED yet: the `syntax` module writes SEARCH's
//! result options and `$` out of a command before `imap-codec` decodes the rest (a `$` is
//! decoded as the set `4294967295`, refused beside a real `4294967295`), and decodes an
//! extended LIST itself. ESEARCH is written by hand, ALL as a compact sequence set.
//!
//! # Choices
//!
//! - A login refused because the connection is not encrypted answers `NO [PRIVACYREQUIRED]`
//!   (RFC 9051 section 7.1; RFC 3501 leaves the code open, and Dovecot answers the same).
//!   `LOGINDISABLED` is advertised instead of `AUTH=PLAIN` meanwhile.
//! - ENABLE is refused outside the authenticated state, as RFC 5161 section 3.1 requires.
//! - CONDSTORE and QRESYNC are advertised whatever the store; a store that keeps no
//!   mod-sequences answers `NOMODSEQ` for every mailbox (RFC 7162 section 3.1.2.2). SELECT
//!   and EXAMINE always say `HIGHESTMODSEQ`, the one change a client that enables nothing
//!   sees (besides `[CLOSED]` when a SELECT replaces a selected mailbox). A search with
//!   MODSEQ answered with ESEARCH ends with `MODSEQ n` (section 3.1.10). Mod-sequences are
//!   per message, not per flag: SEARCH MODSEQ ignores the flag it may name. Where the store's
//!   bounded history of expunges does not reach back to a client's mod-sequence, `VANISHED
//!   (EARLIER)` names every UID the client may know that is gone (as RFC 7162 allows), fewer
//!   when its sequence match data shows what it still has. CLOSE's `[HIGHESTMODSEQ]` is the
//!   value the client heard of everything up to, so its own expunges come back once as
//!   vanished rather than another session's change going unreported.
//! - Keywords are kept, compared case-insensitively (as Dovecot does) and spelled as the
//!   mailbox first saw them; PERMANENTFLAGS ends with `\*`. A mailbox knows at most 26
//!   ([`MAX_KEYWORDS`](crate::store::MAX_KEYWORDS), Maildir's letters `a` to `z`): one
//!   more is refused with `NO [LIMIT]` and nothing changes. A keyword new to the mailbox
//!   is announced with an untagged FLAGS (and PERMANENTFLAGS) before any message shows it.
//! - `\Recent` and unknown system flags (`\Foo`) in STORE and APPEND answer `BAD`: a client
//!   cannot set them.
//! - `\Recent` is claimed per mailbox by the first read-write session told of a message, and
//!   kept by the store ([`Mailstore::claim_recent`](crate::store::Mailstore::claim_recent)):
//!   with the `Maildir` store, messages delivered while no session had the
//!   mailbox open are recent for the next one, also after a restart.
//! - A sequence number beyond the mailbox answers `BAD`; UIDs that name no message are
//!   skipped. While answering FETCH, STORE, SEARCH, COPY and MOVE (not their UID forms),
//!   messages expunged by another session are reported only at the next command that allows
//!   it (RFC 3501 section 7.4.1); FETCH leaves such a message out (RFC 2180 section 4.1.2).
//! - ID (RFC 2971) is taken whole up to the largest that RFC allows (30 pairs, fields of 30
//!   octets, values of 1024), before login too: it has a cap of its own, 64,444 bytes of lines
//!   and literals, instead of the line and literal caps. More pairs, or longer strings, answer
//!   `BAD` with the bound they break (section 3.1: "arguments invalid").
//! - SORT compares text under i;ascii-casemap (RFC 5256), DISPLAYFROM and DISPLAYTO too,
//!   and at most the first 1024 bytes of each text key: messages whose keys agree that far
//!   keep their mailbox order. A SORT with MODSEQ answers `* SORT ... (MODSEQ n)` (RFC 7162
//!   section 3.1.5), n the highest mod-sequence of the messages it names.
//! - THREAD=REFERENCES keeps at most the last 64 valid ids of a References field, each at
//!   most 250 octets (longer ones count as invalid); a loop check stops 4096 ancestors up
//!   (and then makes no link); answers nest at most 64 lists deep, a thread branching deeper
//!   answered flat below that. An unknown algorithm is `BAD`.
//! - SEARCH FROM, TO, CC and BCC look in the field's addresses as ENVELOPE has them (display
//!   names decoded, `mailbox@domain`), not in its text: comments and folding inside an
//!   address are ignored, as Dovecot does. HEADER looks in the text.
//! - Commands in the wrong state answer `BAD` and count as protocol errors, as do syntax errors,
//!   oversized lines and literals, and failed logins; commands merely not implemented yet answer
//!   `BAD` without counting, so a client that probes them is not disconnected.
//! - BINARY decodes base64 and quoted-printable as leniently as RFC 2045 asks decoders to be:
//!   characters outside base64's alphabet are ignored, and an `=` that escapes nothing is kept,
//!   so a part with a stray octet is still served rather than answered NIL. Any other encoding
//!   than those, `7bit`, `8bit` and `binary` fails the FETCH with `NO [UNKNOWN-CTE]` before
//!   that message is marked `\Seen` (the messages answered before it stay answered). Decoded text is sent with CRLF line ends (RFC 9051 section
//!   7.5.2); a `binary` part that is not text, octet for octet as stored. A part that does not
//!   exist is NIL, and its BINARY.SIZE 0. A partial BINARY is answered without its origin
//!   (`BINARY[1] ...`), as RFC 9051's grammar has it.
//! - A message APPENDed in a `literal8` is stored as received (RFC 3516 section 4.4 allows
//!   it), not re-encoded: BINARY gives it back octet for octet, while BODY[] and BODYSTRUCTURE
//!   show its `binary` parts as they are, NUL sent as 0x80 like in any stored message.
//! - Mailbox names pass through as the client sends them (modified UTF-7 in IMAP4rev1); CREATE
//!   and RENAME refuse 8-bit names, as RFC 3501 section 5.1 recommends.
//!
//! # Example
//!
//! ```
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use tower_mail::Protocol;
//! use tower_mail::auth::PasswdFile;
//! use tower_mail::imap::{ImapConfig, ImapService};
//! use tower_mail::server::{Endpoint, Server, ServerConfig, TlsMode};
//! use tower_mail::store::MemoryStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mut config = ImapConfig::default();
//! config.allow_plaintext_login = true; // a test on loopback; use TLS otherwise
//! let users = PasswdFile::parse("alice:{PLAIN}secret");
//! let imap = ImapService::new(users, MemoryStore::new(), config);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Server::new(ServerConfig::default());
//! server.serve(listener, Endpoint::new(Protocol::Imap, TlsMode::None), imap);
//!
//! let mut client = BufReader::new(tokio::net::TcpStream::connect(addr).await?);
//! let mut line = String::new();
//! client.read_line(&mut line).await?;
//! assert!(line.starts_with("* OK [CAPABILITY IMAP4REV1 "));
//! client.get_mut().write_all(b"a1 LOGIN alice secret\r\n").await?;
//! line.clear();
//! client.read_line(&mut line).await?;
//! assert!(line.starts_with("a1 OK [CAPABILITY "));
//! server.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok::<_, std::io::Error>(())
//! # }).unwrap();
//! ```

mod address;
mod append;
mod basic;
mod capabilities;
#[cfg(feature = "compress")]
mod compress;
mod condstore;
mod config;
mod copying;
mod dates;
mod esearch;
mod fetch;
mod flagging;
mod flags;
mod framing;
mod id;
mod idle;
mod list;
mod listing;
mod login;
mod mailboxes;
mod mutf7;
mod reading;
mod recent;
mod recent_uids;
mod response;
mod search;
mod selected;
mod sequence;
mod service;
mod session;
mod sort;
mod sorting;
mod syntax;
mod thread;
mod threading;
mod view;

pub use config::ImapConfig;
pub use service::ImapService;
