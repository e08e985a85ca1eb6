//! End-to-end tests of IMAP's message commands through the example server binary: APPEND,
//! FETCH, SEARCH, STORE, COPY, MOVE, EXPUNGE, CLOSE, IDLE, changes made by other sessions (IMAP
//! and POP3), and bad input.
//!
//! Python's imaplib is the real client where one fits (APPEND with its synchronizing literal,
//! SEARCH with a UTF-8 literal, COPY with COPYUID); a raw socket client is used where the exact
//! bytes matter (ENVELOPE, BODYSTRUCTURE, section octets, the order of untagged responses) and
//! for what no polite client sends. Each test starts its own server with a fresh Maildir.
//!
//! ```text
//! cargo build --example server && cargo test --test imap_messages
//! ```
//!
//! Needs `python3` (imaplib and poplib from the standard library).

mod support_example;
mod support_shared;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use support_example::imaplib::imaplib;
use support_example::{
    ExampleServer, PASSWORD, SOON, USER, as_poplib_sees_it, assert_same_bytes, hex, poll, unhex,
};
use support_shared::crlf;

// ---- Test messages ----

/// A multipart/mixed message: an 8-bit UTF-8 text part, a base64 text attachment and a
/// message/rfc822 part; RFC 2047 words in From (base64) and Subject (base64 and Q in
/// ISO-8859-1); a group address in To (empty) and Cc (with members).
///
/// The base64 attachment reads "Sonnenblumen im Garten.\r\nZweite Zeile der Notiz.\r\n". Every
/// part ends with a blank line before its boundary, so that its line count is unambiguous.
const MIME_MESSAGE: &str = "Date: Tue, 05 Mar 2024 14:30:00 +0100\r\n\
From: =?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.org>\r\n\
To: Demo User <demo@localhost>, undisclosed-recipients:;\r\n\
Cc: Team: alice@example.com, \"Bob B.\" <bob@example.com>;\r\n\
Subject: =?utf-8?b?R3LDvMOfZQ==?= und =?iso-8859-1?q?K=F6ln?=\r\n\
Message-ID: <mime-1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer-boundary\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
--outer-boundary\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Grüße aus Köln!\r\n\
Der Bär schläft.\r\n\
\r\n\
--outer-boundary\r\n\
Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"notes.txt\"\r\n\
\r\n\
U29ubmVuYmx1bWVuIGltIEdhcnRlbi4NClp3ZWl0ZSBaZWlsZSBkZXIgTm90aXouDQo=\r\n\
\r\n\
--outer-boundary\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: Inner Sender <inner@example.net>\r\n\
To: demo@localhost\r\n\
Subject: Inner message\r\n\
Date: Mon, 04 Mar 2024 09:00:00 +0000\r\n\
Message-ID: <inner-1@example.net>\r\n\
\r\n\
Inner body line one.\r\n\
Inner body line two.\r\n\
\r\n\
--outer-boundary--\r\n";

fn mime() -> &'static [u8] {
    MIME_MESSAGE.as_bytes()
}

/// Its parts as RFC 3501 numbers them (each part's body ends before the CRLF that precedes
/// the next boundary).
const PART_1: &str = "Grüße aus Köln!\r\nDer Bär schläft.\r\n";
const PART_2: &str = "U29ubmVuYmx1bWVuIGltIEdhcnRlbi4NClp3ZWl0ZSBaZWlsZSBkZXIgTm90aXouDQo=\r\n";
const PART_2_MIME: &str = "Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"notes.txt\"\r\n\
\r\n";
const PART_3_HEADER: &str = "From: Inner Sender <inner@example.net>\r\n\
To: demo@localhost\r\n\
Subject: Inner message\r\n\
Date: Mon, 04 Mar 2024 09:00:00 +0000\r\n\
Message-ID: <inner-1@example.net>\r\n\
\r\n";
const PART_3_TEXT: &str = "Inner body line one.\r\nInner body line two.\r\n";

/// The message's header block, blank line included, and its text.
fn mime_header() -> &'static [u8] {
    let end = MIME_MESSAGE.find("\r\n\r\n").unwrap() + 4;
    &mime()[..end]
}

fn mime_text() -> &'static [u8] {
    &mime()[mime_header().len()..]
}

/// The address in MIME_MESSAGE's From, as ENVELOPE shows it: the encoded word as sent.
const JUERGEN: &str = r#"(("=?utf-8?b?SsO8cmdlbiBNw7xsbGVy?=" NIL "juergen" "example.org"))"#;

/// ENVELOPE of MIME_MESSAGE (RFC 3501 section 7.4.2): Sender and Reply-To default to From; the
/// empty group is a start and an end marker; Bcc and In-Reply-To are NIL.
fn mime_envelope() -> String {
    [
        "(\"Tue, 05 Mar 2024 14:30:00 +0100\"",
        " \"=?utf-8?b?R3LDvMOfZQ==?= und =?iso-8859-1?q?K=F6ln?=\"",
        &format!(" {JUERGEN} {JUERGEN} {JUERGEN}"),
        r#" (("Demo User" NIL "demo" "localhost")(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))"#,
        r#" ((NIL NIL "Team" NIL)(NIL NIL "alice" "example.com")("Bob B." NIL "bob" "example.com")(NIL NIL NIL NIL))"#,
        r#" NIL NIL "<mime-1@example.org>")"#,
    ]
    .concat()
}

/// ENVELOPE of the message in part 3.
const INNER_ENVELOPE: &str = r#"("Mon, 04 Mar 2024 09:00:00 +0000" "Inner message" (("Inner Sender" NIL "inner" "example.net")) (("Inner Sender" NIL "inner" "example.net")) (("Inner Sender" NIL "inner" "example.net")) ((NIL NIL "demo" "localhost")) NIL NIL NIL "<inner-1@example.net>")"#;

/// BODYSTRUCTURE of MIME_MESSAGE, sizes and line counts counted by hand: part 1 is 40 octets
/// (18 + 2 + 18 + 2) in 2 lines, part 2 68 + 2 octets in 1 line, part 3 204 octets (a 160-octet
/// header and 44 octets of text) in 8 lines, its text 44 octets in 2 lines. The inner message
/// has no Content-Type: text/plain; charset=us-ascii (RFC 2045 section 5.2).
fn mime_bodystructure() -> String {
    [
        r#"(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "8BIT" 40 2 NIL NIL NIL NIL)"#,
        r#"("TEXT" "PLAIN" ("CHARSET" "utf-8" "NAME" "notes.txt") NIL NIL "BASE64" 70 1 NIL ("ATTACHMENT" ("FILENAME" "notes.txt")) NIL NIL)"#,
        &format!(
            r#"("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 204 {INNER_ENVELOPE} ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 44 2 NIL NIL NIL NIL) 8 NIL NIL NIL NIL)"#
        ),
        r#" "MIXED" ("BOUNDARY" "outer-boundary") NIL NIL NIL)"#,
    ]
    .concat()
}

/// BODY of MIME_MESSAGE: BODYSTRUCTURE without the extension data.
fn mime_body() -> String {
    [
        r#"(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "8BIT" 40 2)"#,
        r#"("TEXT" "PLAIN" ("CHARSET" "utf-8" "NAME" "notes.txt") NIL NIL "BASE64" 70 1)"#,
        &format!(
            r#"("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 204 {INNER_ENVELOPE} ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 44 2) 8)"#
        ),
        r#" "MIXED")"#,
    ]
    .concat()
}

/// A quoted-printable UTF-8 body ("Ich möchte bitte den GRÜNEN Tee bestellen.") from a sender
/// whose name is an ISO-8859-1 encoded word ("Zoë Quinn").
const QP_MESSAGE: &str = "Date: Fri, 01 Dec 2023 08:00:00 -0500\r\n\
From: =?iso-8859-1?q?Zo=EB_Quinn?= <zoe@example.com>\r\n\
To: demo@localhost\r\n\
Subject: Tea order\r\n\
Message-ID: <tea@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Ich m=C3=B6chte bitte den GR=C3=9CNEN Tee bestellen.\r\n\
Danke!\r\n";

/// A message over 2000 octets.
fn meeting_message() -> Vec<u8> {
    let mut message = b"Date: Wed, 10 Jan 2024 12:00:00 +0000\r\n\
From: Alice <alice@example.com>\r\n\
To: Bob <bob@example.com>\r\n\
Subject: Meeting notes\r\n\
Message-ID: <meeting@example.com>\r\n\
\r\n"
        .to_vec();
    for item in 1..=60 {
        message.extend_from_slice(format!("Agenda item {item}: nothing to report.\r\n").as_bytes());
    }
    message
}

const REPLY_MESSAGE: &str = "Date: Mon, 19 Feb 2024 16:45:00 +0000\r\n\
From: Bob <bob@example.com>\r\n\
To: Alice <alice@example.com>\r\n\
Subject: Re: Meeting notes\r\n\
Message-ID: <reply@example.com>\r\n\
In-Reply-To: <meeting@example.com>\r\n\
\r\n\
Thanks, see you there.\r\n";

const DRAFT_MESSAGE: &str = "Date: Fri, 01 Mar 2024 09:15:00 +0000\r\n\
From: Demo <demo@localhost>\r\n\
To: Carol <carol@example.com>\r\n\
Subject: Draft: holiday plans\r\n\
Message-ID: <draft@example.com>\r\n\
\r\n\
Not finished yet.\r\n";

/// A short message that says which one it is.
fn numbered(n: u32) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.com>\r\n\
         To: demo@localhost\r\n\
         Subject: message {n}\r\n\
         Message-ID: <m{n}@example.com>\r\n\
         \r\n\
         Body of message {n}.\r\n"
    )
    .into_bytes()
}

// ---- Raw IMAP client ----

/// An IMAP connection over a plain socket. Responses are read whole: a line ending in a
/// literal announcement `{n}` goes on after the n octets, which are kept inline.
struct Imap {
    reader: BufReader<TcpStream>,
    tags: u32,
}

/// The answer to one command.
#[derive(Debug)]
struct Reply {
    /// The untagged responses (and continuation requests), literals inline, CRLF stripped.
    untagged: Vec<Vec<u8>>,
    /// The tagged completion without the tag: `OK FETCH completed`.
    status: String,
}

impl Reply {
    fn lines(&self) -> Vec<String> {
        self.untagged.iter().map(|r| text(r)).collect()
    }
}

impl Imap {
    /// Connect and read a positive greeting.
    fn connect(addr: SocketAddr) -> Imap {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(SOON)).unwrap();
        stream.set_write_timeout(Some(SOON)).unwrap();
        let mut imap = Imap {
            reader: BufReader::new(stream),
            tags: 0,
        };
        let greeting = imap.response();
        assert!(
            greeting.starts_with(b"* OK "),
            "greeting: {}",
            text(&greeting)
        );
        imap
    }

    /// Connect and log in as demo (the example server allows plaintext logins by default).
    fn login(server: &ExampleServer) -> Imap {
        let mut imap = Imap::connect(server.imap);
        imap.ok(&format!("LOGIN {USER} {PASSWORD}"));
        imap
    }

    /// Log in and SELECT `mailbox`.
    fn select(server: &ExampleServer, mailbox: &str) -> Imap {
        let mut imap = Imap::login(server);
        imap.ok(&format!("SELECT {mailbox}"));
        imap
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("write");
    }

    fn next_tag(&mut self) -> String {
        self.tags += 1;
        format!("t{}", self.tags)
    }

    /// The next response; panics if the server closes the connection or says nothing within
    /// [`SOON`].
    fn response(&mut self) -> Vec<u8> {
        self.try_response()
            .expect("the server closed the connection instead of answering")
    }

    /// The next response, `None` at EOF.
    fn try_response(&mut self) -> Option<Vec<u8>> {
        let mut response = Vec::new();
        loop {
            let mut line = Vec::new();
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!(
                        "the server sent nothing within {SOON:?} (so far: {:?})",
                        text(&response)
                    )
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
            assert!(
                line.ends_with(b"\r\n"),
                "a line without CRLF: {}",
                text(&line)
            );
            match literal_announced(&line) {
                Some(length) => {
                    response.extend_from_slice(&line);
                    let start = response.len();
                    response.resize(start + length, 0);
                    self.reader
                        .read_exact(&mut response[start..])
                        .expect("the literal's octets");
                }
                None => {
                    response.extend_from_slice(&line[..line.len() - 2]);
                    return Some(response);
                }
            }
        }
    }

    /// Read up to the tagged completion of `tag`.
    fn until_tagged(&mut self, tag: &str) -> Reply {
        let prefix = format!("{tag} ");
        let mut untagged = Vec::new();
        loop {
            let response = self.response();
            if response.starts_with(prefix.as_bytes()) {
                return Reply {
                    untagged,
                    status: text(&response[prefix.len()..]),
                };
            }
            untagged.push(response);
        }
    }

    /// Send `command` with a new tag and read the whole answer.
    fn command(&mut self, command: &str) -> Reply {
        let tag = self.next_tag();
        self.send(format!("{tag} {command}\r\n").as_bytes());
        self.until_tagged(&tag)
    }

    /// [`command`](Imap::command), which must succeed; the untagged responses as text.
    #[track_caller]
    fn ok(&mut self, command: &str) -> Vec<String> {
        self.ok_raw(command).iter().map(|r| text(r)).collect()
    }

    /// [`command`](Imap::command), which must succeed; the untagged responses as octets.
    #[track_caller]
    fn ok_raw(&mut self, command: &str) -> Vec<Vec<u8>> {
        let reply = self.command(command);
        assert!(
            reply.status.starts_with("OK"),
            "{command}: {} after {:#?}",
            reply.status,
            reply.lines()
        );
        reply.untagged
    }

    /// FETCH of one message: its one FETCH response.
    #[track_caller]
    fn fetch_one(&mut self, arguments: &str) -> Vec<u8> {
        let mut responses = self.ok_raw(&format!("FETCH {arguments}"));
        assert_eq!(
            responses.len(),
            1,
            "FETCH {arguments}: {:#?}",
            responses.iter().map(|r| text(r)).collect::<Vec<_>>()
        );
        responses.remove(0)
    }

    /// APPEND with a synchronizing literal, as imaplib sends it: wait for `+`, then send the
    /// message. `flags` and `date` may be empty.
    fn append_reply(&mut self, mailbox: &str, flags: &str, date: &str, message: &[u8]) -> Reply {
        let tag = self.next_tag();
        let date = match date {
            "" => String::new(),
            date => format!(" \"{date}\""),
        };
        let line = format!(
            "{tag} APPEND {mailbox} ({flags}){date} {{{}}}\r\n",
            message.len()
        );
        self.send(line.as_bytes());
        let go_ahead = self.response();
        assert!(go_ahead.starts_with(b"+ "), "APPEND: {}", text(&go_ahead));
        self.send(message);
        self.send(b"\r\n");
        self.until_tagged(&tag)
    }

    /// [`append_reply`](Imap::append_reply), which must succeed: the UID from APPENDUID.
    #[track_caller]
    fn append(&mut self, mailbox: &str, flags: &str, date: &str, message: &[u8]) -> u32 {
        let reply = self.append_reply(mailbox, flags, date, message);
        let code = reply
            .status
            .strip_prefix("OK [APPENDUID ")
            .unwrap_or_else(|| panic!("APPEND: {reply:?}"));
        code.split([' ', ']'])
            .nth(1)
            .unwrap()
            .parse()
            .expect("a UID")
    }

    /// The UIDs of the messages in the selected mailbox, in sequence order.
    fn uids(&mut self) -> Vec<u32> {
        let lines = self.ok("UID SEARCH ALL");
        search_hits(&lines)
    }

    /// The flags of message `seq`, sorted.
    fn flags(&mut self, seq: u32) -> Vec<String> {
        let response = self.fetch_one(&format!("{seq} FLAGS"));
        flags_in(&text(&response))
    }
}

/// The length announced by a line ending in `{n}\r\n`.
fn literal_announced(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The octets of `item`'s literal in a FETCH response: `item {n}\r\n` and the n octets.
#[track_caller]
fn literal_of<'a>(response: &'a [u8], item: &str) -> &'a [u8] {
    let marker = format!("{item} {{");
    let at = response
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .unwrap_or_else(|| panic!("no {item} literal in {}", text(response)));
    let start = at + marker.len();
    let close = start + response[start..].iter().position(|&b| b == b'}').unwrap();
    let length: usize = text(&response[start..close]).parse().expect("a length");
    let data = close + "}\r\n".len();
    &response[data..data + length]
}

/// The flags in the FLAGS item of a FETCH response, sorted.
#[track_caller]
fn flags_in(response: &str) -> Vec<String> {
    let start = response
        .find("FLAGS (")
        .unwrap_or_else(|| panic!("no FLAGS in {response}"))
        + "FLAGS (".len();
    let end = start + response[start..].find(')').unwrap();
    let mut flags: Vec<String> = response[start..end]
        .split(' ')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    flags.sort();
    flags
}

/// `["\\Seen", "\\Flagged"]` sorted, for comparing with [`flags_in`].
fn sorted(flags: &[&str]) -> Vec<String> {
    let mut flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    flags.sort();
    flags
}

/// The numbers of the `* SEARCH` response among `lines`.
#[track_caller]
fn search_hits(lines: &[String]) -> Vec<u32> {
    let hits: Vec<&String> = lines.iter().filter(|l| l.starts_with("* SEARCH")).collect();
    assert_eq!(hits.len(), 1, "one SEARCH response in {lines:?}");
    hits[0]["* SEARCH".len()..]
        .split(' ')
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().expect("a number"))
        .collect()
}

/// What a client does with each `* n EXPUNGE` of `expunged`, in order: remove message n from
/// `known` (the UIDs in sequence order), which renumbers the messages after it.
fn renumber(known: &[u32], expunged: &[u32]) -> Vec<u32> {
    let mut known = known.to_vec();
    for &seq in expunged {
        known.remove(seq as usize - 1);
    }
    known
}

/// `n` of every `* n <what>` line (`EXPUNGE`, `EXISTS`), in order.
fn numbered_responses(lines: &[String], what: &str) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("* ")?;
            let (n, word) = rest.split_once(' ')?;
            (word == what).then(|| n.parse().expect("a number"))
        })
        .collect()
}

/// The value of the item `name` in a FETCH or STATUS response: `UID 4` in
/// `* 1 FETCH (UID 4 FLAGS ())`.
#[track_caller]
fn item<'a>(response: &'a str, name: &str) -> &'a str {
    let marker = format!("{name} ");
    let start = [format!("({marker}"), format!(" {marker}")]
        .iter()
        .filter_map(|m| response.find(m.as_str()))
        .min()
        .unwrap_or_else(|| panic!("no {name} in {response}"))
        + marker.len()
        + 1;
    response[start..].split([' ', ')']).next().unwrap()
}

/// The UID item of a FETCH response.
#[track_caller]
fn uid_in(response: &str) -> u32 {
    item(response, "UID").parse().expect("a UID")
}

/// The value of a `* OK [CODE value]` response among `lines` (`UIDVALIDITY`, `UIDNEXT`).
#[track_caller]
fn code_value(lines: &[String], code: &str) -> String {
    let marker = format!("[{code} ");
    let line = lines
        .iter()
        .find(|l| l.contains(&marker))
        .unwrap_or_else(|| panic!("no {code} in {lines:?}"));
    let start = line.find(&marker).unwrap() + marker.len();
    line[start..].split(']').next().unwrap().to_owned()
}

/// The COPYUID code in `text` (`... [COPYUID v 3:4,7 1:3] ...`): UIDVALIDITY, and the
/// (source UID, new UID) pairs, which the two sets give in order (RFC 4315 section 3),
/// sorted by source UID.
#[track_caller]
fn copyuid(text: &str) -> (String, Vec<(u32, u32)>) {
    let start = text
        .find("[COPYUID ")
        .unwrap_or_else(|| panic!("no COPYUID in {text}"))
        + "[COPYUID ".len();
    let code = &text[start..start + text[start..].find(']').unwrap()];
    let parts: Vec<&str> = code.split(' ').collect();
    assert_eq!(
        parts.len(),
        3,
        "COPYUID uidvalidity source destination: {code}"
    );
    let (source, destination) = (expand_uid_set(parts[1]), expand_uid_set(parts[2]));
    assert_eq!(source.len(), destination.len(), "{code}");
    let mut pairs: Vec<(u32, u32)> = source.into_iter().zip(destination).collect();
    pairs.sort();
    (parts[0].to_owned(), pairs)
}

/// `2,5:6` → [2, 5, 6]; a range may be written either way round.
fn expand_uid_set(set: &str) -> Vec<u32> {
    set.split(',')
        .flat_map(|element| {
            let (a, b) = element.split_once(':').unwrap_or((element, element));
            let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
            if a <= b {
                (a..=b).collect::<Vec<_>>()
            } else {
                (b..=a).rev().collect()
            }
        })
        .collect()
}

/// `command` is refused with `status` (`NO`, `BAD`), and nothing untagged comes with it.
#[track_caller]
fn assert_refused(imap: &mut Imap, command: &str, status: &str) {
    let reply = imap.command(command);
    assert!(reply.status.starts_with(status), "{command}: {reply:?}");
    assert!(reply.untagged.is_empty(), "{command}: {reply:?}");
}

/// After a refused command: the session still answers, and a new connection logs in and
/// works.
#[track_caller]
fn still_works(imap: &mut Imap, server: &ExampleServer) {
    let reply = imap.command("NOOP");
    assert_eq!(reply.status, "OK NOOP completed", "{reply:?}");
    let mut fresh = Imap::select(server, "INBOX");
    fresh.ok("UID SEARCH ALL");
    fresh.ok("LOGOUT");
}

// ---- APPEND ----

#[test]
fn append_with_flags_and_date_answers_appenduid_and_keeps_the_message_byte_for_byte() {
    let server = ExampleServer::start();
    let printed = imaplib(
        &server,
        r#"
        M.select("INBOX")
        out("uidvalidity", M.response("UIDVALIDITY")[1])
        M.response("EXISTS")  # read: what APPEND adds is new
        message = bytes.fromhex(ARGS[0])
        typ, data = M.append("INBOX", r"(\Flagged \Seen)", '"05-Mar-2024 14:30:00 +0100"', message)
        out("append", typ, data)
        out("exists", M.response("EXISTS")[1])
        # What a client does with APPENDUID: fetch the new message by its UID.
        uid = re.match(rb"\[APPENDUID \d+ (\d+)\]", data[0]).group(1).decode()
        typ, data = M.uid("FETCH", uid, "(BODY.PEEK[])")
        out_hex("body", literal(data))
        typ, data = M.uid("FETCH", uid, "(FLAGS INTERNALDATE RFC822.SIZE)")
        out("meta", typ, data)
        "#,
        &[&hex(mime())],
    );
    let uid_validity = printed.one("uidvalidity");
    assert!(
        uid_validity.parse::<u32>().is_ok_and(|v| v > 0),
        "{printed:#?}"
    );
    assert_eq!(
        printed.one("append"),
        format!("OK [APPENDUID {uid_validity} 1] APPEND completed"),
        "the first message of a new mailbox gets UID 1"
    );
    assert_eq!(
        printed.one("exists"),
        "1",
        "the selected mailbox's client hears of the new message"
    );
    assert_same_bytes(&printed.octets("body"), mime(), "BODY.PEEK[] after APPEND");
    let meta = printed.one("meta");
    assert!(meta.starts_with("OK 1 (UID 1 "), "{meta}");
    // Appended to the mailbox this session has selected: the session is the first told of
    // it, so it is \Recent here (RFC 3501 section 2.3.2).
    assert_eq!(
        flags_in(meta),
        sorted(&["\\Seen", "\\Flagged", "\\Recent"]),
        "{meta}"
    );
    assert!(
        meta.contains(&format!("RFC822.SIZE {}", mime().len())),
        "RFC822.SIZE is the message's length ({}): {meta}",
        mime().len()
    );
    assert!(
        meta.contains("INTERNALDATE \"05-Mar-2024 13:30:00 +0000\""),
        "INTERNALDATE is APPEND's date, in UTC: {meta}"
    );
}

#[test]
fn append_to_another_mailbox_answers_appenduid_of_that_mailbox() {
    let server = ExampleServer::start();
    let mut imap = Imap::select(&server, "INBOX");
    imap.ok("CREATE Archive");
    let status = imap.ok("STATUS Archive (UIDVALIDITY)");
    let uid_validity = item(&status[0], "UIDVALIDITY");
    assert_eq!(imap.append("Archive", "", "", &numbered(1)), 1);
    let reply = imap.append_reply("Archive", "\\Seen", "", &numbered(2));
    assert_eq!(
        reply.status,
        format!("OK [APPENDUID {uid_validity} 2] APPEND completed")
    );
    assert!(
        reply.untagged.is_empty(),
        "nothing to tell about INBOX, the selected mailbox: {reply:?}"
    );
    let reply = imap.command("APPEND Nowhere {5+}\r\nhello");
    assert!(
        reply.status.starts_with("NO [TRYCREATE]"),
        "APPEND to a missing mailbox: {reply:?}"
    );
    imap.ok("SELECT Archive");
    // Appended while no session had Archive open: recent for the first to select it.
    assert_eq!(imap.flags(2), ["\\Recent", "\\Seen"]);
    still_works(&mut imap, &server);
}

#[test]
fn large_append_with_long_lines_round_trips_byte_for_byte() {
    let server = ExampleServer::start();
    // 1 MiB and more, with a 20000-octet line (beyond the command line limit, which does not
    // apply to literals) and every 8-bit octet but NUL.
    let mut message = b"From: big@example.org\r\nSubject: big\r\n\r\n".to_vec();
    message.extend(std::iter::repeat_n(b'x', 20_000));
    message.extend_from_slice(b"\r\n");
    let octets: Vec<u8> = (1..=255u8).filter(|b| *b != b'\r' && *b != b'\n').collect();
    while message.len() < 1 << 20 {
        message.extend_from_slice(&octets);
        message.extend_from_slice(b"\r\n");
    }
    let mut imap = Imap::select(&server, "INBOX");
    let uid = imap.append("INBOX", "", "", &message);
    let response = imap.ok_raw(&format!("UID FETCH {uid} (RFC822.SIZE BODY.PEEK[])"));
    assert_eq!(response.len(), 1);
    let served = literal_of(&response[0], "BODY[]");
    let first_difference = served.iter().zip(&message).position(|(a, b)| a != b);
    assert!(
        served == message,
        "BODY[] differs: {} octets served, {} appended, first difference at {first_difference:?}",
        served.len(),
        message.len()
    );
    assert!(
        text(&response[0]).contains(&format!("RFC822.SIZE {}", message.len())),
        "RFC822.SIZE"
    );
    still_works(&mut imap, &server);
}

// ---- FETCH ----

/// A server with MIME_MESSAGE appended to INBOX (flags \Flagged, the date of its Date
/// header), and a session that selected INBOX.
fn with_mime_message() -> (ExampleServer, Imap) {
    let server = ExampleServer::start();
    let mut imap = Imap::select(&server, "INBOX");
    let uid = imap.append("INBOX", "\\Flagged", "05-Mar-2024 14:30:00 +0100", mime());
    assert_eq!(uid, 1);
    (server, imap)
}

/// `response` is `* seq FETCH (...)` with exactly `items`, in any order: RFC 3501 does not
/// fix the order of the items in a FETCH response.
#[track_caller]
fn assert_fetch_items(response: &str, seq: u32, items: &[&str]) {
    let prefix = format!("* {seq} FETCH (");
    let inner = response
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a FETCH response of message {seq}: {response}"));
    for item in items {
        assert!(inner.contains(item), "{item} missing from {response}");
    }
    let expected_len = items.iter().map(|i| i.len()).sum::<usize>() + items.len() - 1;
    assert_eq!(
        inner.len(),
        expected_len,
        "exactly {items:?}, nothing else: {response}"
    );
}

/// The FLAGS, INTERNALDATE and RFC822.SIZE items of MIME_MESSAGE as `with_mime_message`
/// appends it (into the selected mailbox, so it is \Recent in that session).
fn mime_fast_items() -> [String; 3] {
    [
        "FLAGS (\\Flagged \\Recent)".to_owned(),
        "INTERNALDATE \"05-Mar-2024 13:30:00 +0000\"".to_owned(),
        format!("RFC822.SIZE {}", mime().len()),
    ]
}

#[test]
fn fetch_flags_uid_internaldate_and_size() {
    let (_server, mut imap) = with_mime_message();
    let [flags, date, size] = mime_fast_items();
    let response = text(&imap.fetch_one("1 (FLAGS UID INTERNALDATE RFC822.SIZE)"));
    assert_fetch_items(&response, 1, &[&flags, "UID 1", &date, &size]);
    let response = text(&imap.fetch_one("1 (UID)"));
    assert_eq!(response, "* 1 FETCH (UID 1)");
    let response = text(&imap.ok_raw("UID FETCH 1 (FLAGS)")[0]);
    assert_fetch_items(&response, 1, &["UID 1", &flags]);
}

#[test]
fn fetch_envelope_shows_encoded_words_as_sent_groups_and_nil_fields() {
    let (_server, mut imap) = with_mime_message();
    let response = text(&imap.fetch_one("1 (ENVELOPE)"));
    assert_eq!(
        response,
        format!("* 1 FETCH (ENVELOPE {})", mime_envelope())
    );
}

/// Comments inside an address (one folded across lines), and two groups in Cc: one empty,
/// one holding only a comment (RFC 5322 section 3.4: neither holds an address).
const COMMENTED_ADDRESSES: &[u8] = b"From: <user-from (comment)@ (comment)\r\n domain.org>\r\n\
To: \"Team: A; B\" <team@example.org> (the team)\r\n\
Cc: group:;, group2: (foo) ;\r\n\
Subject: comments and empty groups\r\n\
Message-ID: <groups@example.org>\r\n\
\r\n\
Nobody in the groups.\r\n";

#[test]
fn fetch_envelope_of_empty_groups_and_comments_holds_no_made_up_address() {
    let server = ExampleServer::start();
    let mut imap = Imap::select(&server, "INBOX");
    imap.append("INBOX", "", "", COMMENTED_ADDRESSES);
    let from = r#"((NIL NIL "user-from" "domain.org"))"#;
    assert_eq!(
        text(&imap.fetch_one("1 (ENVELOPE)")),
        format!(
            "* 1 FETCH (ENVELOPE (NIL \"comments and empty groups\" {from} {from} {from} \
             ((\"Team: A; B\" NIL \"team\" \"example.org\")) \
             ((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) \
             NIL NIL \"<groups@example.org>\"))"
        )
    );
}

#[test]
fn fetch_bodystructure_of_a_multipart_with_a_nested_message() {
    let (_server, mut imap) = with_mime_message();
    let response = text(&imap.fetch_one("1 (BODYSTRUCTURE)"));
    assert_eq!(
        response,
        format!("* 1 FETCH (BODYSTRUCTURE {})", mime_bodystructure())
    );
}

#[test]
fn fetch_body_is_the_structure_without_extension_data() {
    let (_server, mut imap) = with_mime_message();
    let response = text(&imap.fetch_one("1 (BODY)"));
    assert_eq!(response, format!("* 1 FETCH (BODY {})", mime_body()));
}

#[test]
fn fetch_header_text_and_header_field_sections() {
    let (_server, mut imap) = with_mime_message();
    let response = imap.fetch_one("1 (BODY.PEEK[HEADER])");
    assert_same_bytes(
        literal_of(&response, "BODY[HEADER]"),
        mime_header(),
        "BODY[HEADER]",
    );
    let response = imap.fetch_one("1 (BODY.PEEK[TEXT])");
    assert_same_bytes(
        literal_of(&response, "BODY[TEXT]"),
        mime_text(),
        "BODY[TEXT]",
    );

    let response = imap.fetch_one("1 (BODY.PEEK[HEADER.FIELDS (From Subject)])");
    assert_same_bytes(
        literal_of(&response, "BODY[HEADER.FIELDS (From Subject)]"),
        b"From: =?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.org>\r\n\
Subject: =?utf-8?b?R3LDvMOfZQ==?= und =?iso-8859-1?q?K=F6ln?=\r\n\
\r\n",
        "BODY[HEADER.FIELDS (From Subject)]: the fields as stored, then the blank line",
    );
    let response = imap.fetch_one("1 (BODY.PEEK[HEADER.FIELDS.NOT (From Subject To Cc Date)])");
    assert_same_bytes(
        literal_of(
            &response,
            "BODY[HEADER.FIELDS.NOT (From Subject To Cc Date)]",
        ),
        b"Message-ID: <mime-1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer-boundary\"\r\n\
\r\n",
        "BODY[HEADER.FIELDS.NOT (...)]",
    );
    let response = imap.fetch_one("1 (BODY.PEEK[HEADER.FIELDS (X-Absent)])");
    assert_same_bytes(
        literal_of(&response, "BODY[HEADER.FIELDS (X-Absent)]"),
        b"\r\n",
        "no such field: only the blank line",
    );
}

#[test]
fn fetch_numbered_parts_and_their_mime_headers() {
    let (_server, mut imap) = with_mime_message();
    let cases: [(&str, &[u8]); 7] = [
        ("1", PART_1.as_bytes()),
        ("2", PART_2.as_bytes()),
        ("2.MIME", PART_2_MIME.as_bytes()),
        ("3.HEADER", PART_3_HEADER.as_bytes()),
        ("3.TEXT", PART_3_TEXT.as_bytes()),
        ("3.1", PART_3_TEXT.as_bytes()),
        ("3", &[PART_3_HEADER, PART_3_TEXT].concat().into_bytes()),
    ];
    for (section, expected) in cases {
        let response = imap.fetch_one(&format!("1 (BODY.PEEK[{section}])"));
        assert_same_bytes(
            literal_of(&response, &format!("BODY[{section}]")),
            expected,
            &format!("BODY[{section}]"),
        );
    }
    let response = imap.fetch_one("1 (BODY.PEEK[3.HEADER.FIELDS (Subject)])");
    assert_same_bytes(
        literal_of(&response, "BODY[3.HEADER.FIELDS (Subject)]"),
        b"Subject: Inner message\r\n\r\n",
        "HEADER.FIELDS of the nested message",
    );
}

#[test]
fn fetch_partial_ranges_cut_at_the_end() {
    let (_server, mut imap) = with_mime_message();
    let response = imap.fetch_one("1 (BODY.PEEK[]<0.10>)");
    assert_same_bytes(
        literal_of(&response, "BODY[]<0>"),
        &mime()[..10],
        "BODY[]<0.10>",
    );

    let start = mime().len() - 20;
    let response = imap.fetch_one(&format!("1 (BODY.PEEK[]<{start}.100>)"));
    assert_same_bytes(
        literal_of(&response, &format!("BODY[]<{start}>")),
        &mime()[start..],
        "a range running past the end is cut at the end",
    );

    let beyond = mime().len() + 1000;
    let response = imap.fetch_one(&format!("1 (BODY.PEEK[]<{beyond}.10>)"));
    assert_same_bytes(
        literal_of(&response, &format!("BODY[]<{beyond}>")),
        b"",
        "a range starting beyond the end is empty",
    );

    let response = imap.fetch_one("1 (BODY.PEEK[1]<7.4>)");
    assert_same_bytes(
        literal_of(&response, "BODY[1]<7>"),
        &PART_1.as_bytes()[7..11],
        "a range of a part",
    );
}

#[test]
fn fetch_rfc822_items() {
    let (_server, mut imap) = with_mime_message();
    let response = imap.fetch_one("1 (RFC822.HEADER)");
    assert_same_bytes(
        literal_of(&response, "RFC822.HEADER"),
        mime_header(),
        "RFC822.HEADER",
    );
    let response = imap.fetch_one("1 (RFC822.TEXT)");
    assert_same_bytes(
        literal_of(&response, "RFC822.TEXT"),
        mime_text(),
        "RFC822.TEXT",
    );
    let response = imap.fetch_one("1 (RFC822)");
    assert_same_bytes(literal_of(&response, "RFC822"), mime(), "RFC822");
}

#[test]
fn fetch_macros_all_fast_and_full() {
    let (_server, mut imap) = with_mime_message();
    let [flags, date, size] = mime_fast_items();
    let envelope = format!("ENVELOPE {}", mime_envelope());
    let body = format!("BODY {}", mime_body());
    let response = text(&imap.fetch_one("1 FAST"));
    assert_fetch_items(&response, 1, &[&flags, &date, &size]);
    let response = text(&imap.fetch_one("1 ALL"));
    assert_fetch_items(&response, 1, &[&flags, &date, &size, &envelope]);
    let response = text(&imap.fetch_one("1 FULL"));
    assert_fetch_items(&response, 1, &[&flags, &date, &size, &envelope, &body]);
}

/// Written by a Unix tool: bare LF line endings.
const LF_MESSAGE: &[u8] = b"From: Unix Tool <tool@example.org>\n\
To: demo@localhost\n\
Subject: bare LF\n\
\n\
line one\n\
line two\n";

#[test]
fn message_with_bare_lf_line_endings_is_served_with_crlf_and_a_matching_size() {
    let server = ExampleServer::start();
    server.deliver(LF_MESSAGE);
    let mut imap = Imap::select(&server, "INBOX");
    let served = crlf(LF_MESSAGE);
    let response = imap.fetch_one("1 (RFC822.SIZE BODY.PEEK[])");
    assert_same_bytes(
        literal_of(&response, "BODY[]"),
        &served,
        "BODY[] in CRLF form",
    );
    assert_eq!(
        item(&text(&response), "RFC822.SIZE"),
        served.len().to_string(),
        "RFC822.SIZE counts what is served"
    );
    let response = imap.fetch_one("1 (BODY.PEEK[TEXT])");
    assert_same_bytes(
        literal_of(&response, "BODY[TEXT]"),
        b"line one\r\nline two\r\n",
        "BODY[TEXT]",
    );
    let response = text(&imap.fetch_one("1 (BODYSTRUCTURE)"));
    assert_eq!(
        response,
        r#"* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 20 2 NIL NIL NIL NIL))"#
    );
}

#[test]
fn mail_dropped_into_the_maildir_by_another_program_is_served_with_crlf() {
    let server = ExampleServer::start();
    let mut imap = Imap::select(&server, "INBOX");
    // As procmail would: written in tmp/, moved to new/; bare LF, no size in its name.
    let maildir = server.maildir();
    let (tmp, new) = (
        maildir.join(USER).join("tmp"),
        maildir.join(USER).join("new"),
    );
    assert!(new.is_dir(), "{} exists once demo logged in", new.display());
    let name = "1700000000.M1P1.mda";
    std::fs::write(tmp.join(name), LF_MESSAGE).unwrap();
    std::fs::rename(tmp.join(name), new.join(name)).unwrap();

    let mut fresh = Imap::select(&server, "INBOX");
    let served = crlf(LF_MESSAGE);
    let response = fresh.fetch_one("1 (RFC822.SIZE BODY.PEEK[])");
    assert_same_bytes(literal_of(&response, "BODY[]"), &served, "BODY[]");
    assert_eq!(
        item(&text(&response), "RFC822.SIZE"),
        served.len().to_string()
    );
    // The session that was already there finds it at its next command.
    let lines = imap.ok("CHECK");
    assert_eq!(numbered_responses(&lines, "EXISTS"), [1], "{lines:?}");
}

// ---- \Seen ----

/// A server with `n` numbered messages in INBOX, none seen, and a session that selected it.
fn with_messages(n: u32) -> (ExampleServer, Imap, Vec<u32>) {
    let server = ExampleServer::start();
    let uids = (1..=n).map(|i| server.deliver(&numbered(i))).collect();
    // An earlier session was told of them, so they are not `\Recent` in this one (the
    // `\Recent` tests start from messages nobody was told of).
    Imap::select(&server, "INBOX").ok("LOGOUT");
    let imap = Imap::select(&server, "INBOX");
    (server, imap, uids)
}

/// Each FETCH of message 1 with the items of `fetches` leaves it unseen: no response carries
/// FLAGS (nothing changed), and the message has no flags, in this session and in a new one
/// (what the store says).
#[track_caller]
fn assert_fetches_leave_unseen(server: &ExampleServer, imap: &mut Imap, fetches: &[&str]) {
    for items in fetches {
        let response = text(&imap.fetch_one(&format!("1 ({items})")));
        assert!(!response.contains("FLAGS"), "{items}: {response}");
    }
    assert!(imap.flags(1).is_empty());
    let mut fresh = Imap::select(server, "INBOX");
    assert!(
        fresh.flags(1).is_empty(),
        "a new session sees it unseen too"
    );
}

#[test]
fn body_peek_and_rfc822_header_do_not_set_seen() {
    let (server, mut imap, _) = with_messages(1);
    assert_fetches_leave_unseen(
        &server,
        &mut imap,
        &[
            "BODY.PEEK[]",
            "BODY.PEEK[TEXT]",
            "BODY.PEEK[1]",
            "BODY.PEEK[HEADER]",
            "RFC822.HEADER",
            "BODYSTRUCTURE ENVELOPE RFC822.SIZE",
        ],
    );
}

#[test]
fn body_fetch_sets_seen_and_the_response_says_so() {
    let (server, mut imap, _) = with_messages(3);
    let response = imap.fetch_one("1 (BODY[])");
    assert_same_bytes(literal_of(&response, "BODY[]"), &numbered(1), "BODY[]");
    let after = &response[response.len() - " FLAGS (\\Seen))".len()..];
    assert_eq!(
        text(after),
        " FLAGS (\\Seen))",
        "FLAGS follows the data: {}",
        text(&response)
    );
    // A part, and RFC822.TEXT, set it too.
    let response = text(&imap.fetch_one("2 (BODY[1]<0.4>)"));
    assert_eq!(flags_in(&response), ["\\Seen"], "{response}");
    let response = text(&imap.fetch_one("3 (RFC822.TEXT)"));
    assert_eq!(flags_in(&response), ["\\Seen"], "{response}");

    assert!(
        imap.ok("CHECK").is_empty(),
        "its own changes are not told again"
    );
    let mut fresh = Imap::select(&server, "INBOX");
    for seq in 1..=3 {
        assert_eq!(
            fresh.flags(seq),
            ["\\Seen"],
            "message {seq} in a new session"
        );
    }
}

#[test]
fn examine_never_sets_seen() {
    let (server, mut imap, _) = with_messages(1);
    imap.ok("CLOSE");
    let reply = imap.command("EXAMINE INBOX");
    assert!(reply.status.starts_with("OK [READ-ONLY]"), "{reply:?}");
    assert_fetches_leave_unseen(
        &server,
        &mut imap,
        &["BODY[]", "RFC822", "RFC822.TEXT", "BODY[TEXT]", "BODY[1]"],
    );
}

// ---- SEARCH ----

/// The SEARCH corpus in mailbox order: message, flags, internal date. The Date headers
/// (sent dates) differ from the internal dates.
///
/// | seq | UID | flags | internal | sent | what |
/// |---|---|---|---|---|---|
/// | 1 | 2 | \Seen \Flagged | 2024-03-05 | 2024-03-05 | MIME_MESSAGE |
/// | 2 | 3 | | 2024-01-02 | 2023-12-01 | QP_MESSAGE |
/// | 3 | 4 | \Deleted | 2024-01-15 | 2024-01-10 | meeting_message, over 2000 octets |
/// | 4 | 5 | \Answered \Seen | 2024-02-20 | 2024-02-19 | REPLY_MESSAGE |
/// | 5 | 6 | \Draft | 2024-03-01 | 2024-03-01 | DRAFT_MESSAGE |
fn corpus() -> Vec<(Vec<u8>, &'static str, &'static str)> {
    vec![
        (
            mime().to_vec(),
            "\\Seen \\Flagged",
            "05-Mar-2024 14:30:00 +0100",
        ),
        (
            QP_MESSAGE.as_bytes().to_vec(),
            "",
            "02-Jan-2024 10:00:00 +0000",
        ),
        (meeting_message(), "\\Deleted", "15-Jan-2024 09:00:00 +0000"),
        (
            REPLY_MESSAGE.as_bytes().to_vec(),
            "\\Answered \\Seen",
            "20-Feb-2024 12:00:00 +0000",
        ),
        (
            DRAFT_MESSAGE.as_bytes().to_vec(),
            "\\Draft",
            "01-Mar-2024 18:00:00 +0000",
        ),
    ]
}

/// A server whose INBOX holds the corpus as messages 1 to 5 with UIDs 2 to 6: UID 1 was
/// expunged first, so that sequence numbers and UIDs differ.
fn with_search_corpus() -> ExampleServer {
    let server = ExampleServer::start();
    let mut imap = Imap::select(&server, "INBOX");
    imap.append(
        "INBOX",
        "\\Deleted",
        "",
        b"Subject: placeholder\r\n\r\nx\r\n",
    );
    imap.ok("EXPUNGE");
    for (message, flags, date) in corpus() {
        imap.append("INBOX", flags, date, &message);
    }
    assert_eq!(imap.uids(), [2, 3, 4, 5, 6]);
    imap.ok("LOGOUT");
    server
}

/// Run searches through imaplib after SELECT INBOX and return each answer's numbers. A
/// search is its criteria as imaplib sends them (`UID SEARCH ` in front for a UID SEARCH),
/// optionally followed by a tab and a string that imaplib sends last, as a literal, with
/// CHARSET UTF-8: 8-bit text cannot be a quoted string.
fn searches(server: &ExampleServer, specs: &[&str]) -> Vec<Vec<u32>> {
    let printed = imaplib(
        server,
        r#"
        M.select("INBOX")
        for spec in ARGS:
            criteria, _, text = spec.partition("\t")
            charset = "UTF-8" if text else None
            M.literal = text.encode() if text else None
            if criteria.startswith("UID SEARCH "):
                args = (["CHARSET", charset] if charset else []) + [criteria[len("UID SEARCH "):]]
                typ, data = M.uid("SEARCH", *args)
            else:
                typ, data = M.search(charset, criteria)
            out("search", typ, data)
        "#,
        specs,
    );
    let answers = printed.all("search");
    assert_eq!(answers.len(), specs.len(), "{printed:#?}");
    answers
        .iter()
        .zip(specs)
        .map(|(answer, spec)| {
            let hits = answer
                .strip_prefix("OK")
                .unwrap_or_else(|| panic!("SEARCH {spec:?}: {answer}"));
            hits.split_whitespace()
                .map(|n| n.parse().expect("a number"))
                .collect()
        })
        .collect()
}

/// Every search gives its expected numbers; all mismatches are reported at once.
#[track_caller]
fn assert_searches(server: &ExampleServer, cases: &[(&str, &[u32])]) {
    let specs: Vec<&str> = cases.iter().map(|(spec, _)| *spec).collect();
    let answers = searches(server, &specs);
    let wrong: Vec<String> = cases
        .iter()
        .zip(&answers)
        .filter(|((_, want), got)| *want != got.as_slice())
        .map(|((spec, want), got)| format!("{spec:?}: expected {want:?}, got {got:?}"))
        .collect();
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
}

#[test]
fn search_all_sequence_sets_and_uid_sets() {
    let server = with_search_corpus();
    assert_searches(
        &server,
        &[
            ("ALL", &[1, 2, 3, 4, 5]),
            ("2:4", &[2, 3, 4]),
            ("*", &[5]),
            ("4:*", &[4, 5]),
            ("1,3,5", &[1, 3, 5]),
            ("5:3", &[3, 4, 5]),
            ("UID 3:4", &[2, 3]),
            ("UID 5:*", &[4, 5]),
            ("UID *", &[5]),
            ("UID 1", &[]),
            ("UID 1:2", &[1]),
        ],
    );
}

#[test]
fn search_flag_keys() {
    let server = with_search_corpus();
    assert_searches(
        &server,
        &[
            ("FLAGGED", &[1]),
            ("UNFLAGGED", &[2, 3, 4, 5]),
            ("SEEN", &[1, 4]),
            ("UNSEEN", &[2, 3, 5]),
            ("DELETED", &[3]),
            ("UNDELETED", &[1, 2, 4, 5]),
            ("ANSWERED", &[4]),
            ("UNANSWERED", &[1, 2, 3, 5]),
            ("DRAFT", &[5]),
            ("UNDRAFT", &[1, 2, 3, 4]),
            // \Recent is never set (SELECT says `* 0 RECENT`): NEW is RECENT UNSEEN, OLD is
            // NOT RECENT.
            ("RECENT", &[]),
            ("NEW", &[]),
            ("OLD", &[1, 2, 3, 4, 5]),
            ("KEYWORD $Junk", &[]),
        ],
    );
}

#[test]
fn search_address_and_subject_keys_match_decoded_encoded_words() {
    let server = with_search_corpus();
    assert_searches(
        &server,
        &[
            // =?utf-8?b?...?= in From and Subject, =?iso-8859-1?q?...?= in Subject and From.
            ("FROM\tjürgen", &[1]),
            ("FROM\tZOË", &[2]),
            ("FROM ZOE@EXAMPLE.COM", &[2]),
            ("SUBJECT\tgrüße", &[1]),
            ("SUBJECT\tKÖLN", &[1]),
            ("SUBJECT \"Grusse\"", &[]),
            ("FROM bob", &[4]),
            ("TO alice", &[4]),
            ("CC \"Bob B.\"", &[1]),
            ("BCC bob", &[]),
            ("SUBJECT meeting", &[3, 4]),
            ("SUBJECT \"Draft: holiday\"", &[5]),
        ],
    );
}

#[test]
fn search_body_and_text_decode_transfer_encodings_and_fold_non_ascii_case() {
    let server = with_search_corpus();
    assert_searches(
        &server,
        &[
            // Quoted-printable "GR=C3=9CNEN", found by its lowercase decoded form.
            ("BODY\tgrünen", &[2]),
            // The base64 attachment.
            ("BODY SONNENBLUMEN", &[1]),
            // The 8-bit part, in uppercase.
            ("BODY\tSCHLÄFT", &[1]),
            // The text of the attached message.
            ("BODY \"inner body line two\"", &[1]),
            ("BODY \"agenda item 60\"", &[3]),
            // BODY is the body only; TEXT is header and body.
            ("BODY\tzoë", &[]),
            ("TEXT\tzoë", &[2]),
            ("BODY meeting", &[]),
            ("TEXT meeting", &[3, 4]),
            ("TEXT \"see you there\"", &[4]),
        ],
    );
}

#[test]
fn search_address_keys_match_the_address_without_its_comments() {
    let server = ExampleServer::start();
    let mut imap = Imap::select(&server, "INBOX");
    imap.append("INBOX", "", "", &numbered(1));
    imap.append("INBOX", "", "", COMMENTED_ADDRESSES);
    imap.ok("LOGOUT");
    assert_searches(
        &server,
        &[
            ("FROM user-from@domain.org", &[2]),
            ("FROM USER-FROM@DOMAIN.ORG", &[2]),
            // Comments are no part of an address; HEADER matches the field's text.
            ("FROM comment", &[]),
            ("HEADER From comment", &[2]),
            ("TO \"team: a; b <team@example.org>\"", &[2]),
            ("TO \"the team\"", &[]),
            ("CC group2", &[2]),
            ("CC foo", &[]),
            ("CC \"\"", &[2]),
            ("FROM sender1@example.com", &[1]),
        ],
    );
}

#[test]
fn search_header_key() {
    let server = with_search_corpus();
    assert_searches(
        &server,
        &[
            ("HEADER Message-ID \"<meeting@example.com>\"", &[3]),
            ("HEADER MESSAGE-ID tea@", &[2]),
            ("HEADER In-Reply-To meeting", &[4]),
            // An empty string matches every message that has the field.
            ("HEADER Message-ID \"\"", &[1, 2, 3, 4, 5]),
            ("HEADER In-Reply-To \"\"", &[4]),
            ("HEADER X-Mailer \"\"", &[]),
        ],
    );
}

#[test]
fn search_larger_and_smaller_compare_rfc822_sizes_strictly() {
    let server = with_search_corpus();
    let sizes: Vec<usize> = corpus().iter().map(|(m, _, _)| m.len()).collect();
    let larger =
        |n: usize| -> Vec<u32> { (1..=5).filter(|&i| sizes[i as usize - 1] > n).collect() };
    let smaller =
        |n: usize| -> Vec<u32> { (1..=5).filter(|&i| sizes[i as usize - 1] < n).collect() };
    assert!(sizes[2] > 2000 && sizes.iter().filter(|&&s| s > 2000).count() == 1);
    let thresholds = [
        sizes[0] - 1,
        sizes[0],
        sizes[2] - 1,
        sizes[2],
        sizes[3],
        2000,
    ];
    let specs: Vec<(String, Vec<u32>)> = thresholds
        .iter()
        .flat_map(|&n| {
            [
                (format!("LARGER {n}"), larger(n)),
                (format!("SMALLER {n}"), smaller(n)),
            ]
        })
        .collect();
    assert_eq!(larger(2000), [3]);
    assert_eq!(larger(sizes[0] - 1), [1, 3]);
    let cases: Vec<(&str, &[u32])> = specs
        .iter()
        .map(|(spec, want)| (spec.as_str(), want.as_slice()))
        .collect();
    assert_searches(&server, &cases);
}

#[test]
fn search_before_on_and_since_compare_internal_dates() {
    let server = with_search_corpus();
    assert_searches(
        &server,
        &[
            ("BEFORE 15-Jan-2024", &[2]),
            ("BEFORE 16-Jan-2024", &[2, 3]),
            ("ON 15-Jan-2024", &[3]),
            ("ON 10-Jan-2024", &[]),
            ("ON 5-Mar-2024", &[1]),
            ("SINCE 1-Mar-2024", &[1, 5]),
            ("SINCE 2-Mar-2024", &[1]),
            ("BEFORE 1-Jan-2024", &[]),
            ("SINCE 1-Jan-2024", &[1, 2, 3, 4, 5]),
            ("SINCE 1-Feb-2024 BEFORE 1-Mar-2024", &[4]),
        ],
    );
}

#[test]
fn search_sentbefore_senton_and_sentsince_compare_date_headers() {
    let server = with_search_corpus();
    assert_searches(
        &server,
        &[
            ("SENTBEFORE 1-Jan-2024", &[2]),
            ("SENTBEFORE 11-Jan-2024", &[2, 3]),
            ("SENTON 10-Jan-2024", &[3]),
            ("SENTON 15-Jan-2024", &[]),
            ("SENTON 19-Feb-2024", &[4]),
            ("SENTON 1-Dec-2023", &[2]),
            ("SENTSINCE 1-Mar-2024", &[1, 5]),
            ("SENTSINCE 2-Mar-2024", &[1]),
        ],
    );
}

#[test]
fn search_not_or_and_nested_parentheses() {
    let server = with_search_corpus();
    assert_searches(
        &server,
        &[
            ("NOT SEEN", &[2, 3, 5]),
            ("OR FLAGGED DELETED", &[1, 3]),
            ("OR SUBJECT meeting DRAFT", &[3, 4, 5]),
            ("SEEN UNANSWERED", &[1]),
            ("(OR FROM bob (OR DRAFT FLAGGED)) NOT DELETED", &[1, 4, 5]),
            ("NOT (OR SEEN (OR DELETED DRAFT))", &[2]),
            ("OR (SEEN FLAGGED) (DELETED SINCE 1-Jan-2024)", &[1, 3]),
            ("2:5 NOT UID 4:5", &[2, 5]),
            ("NOT NOT FLAGGED", &[1]),
            ("((((ALL))))", &[1, 2, 3, 4, 5]),
        ],
    );
}

#[test]
fn uid_search_answers_with_uids() {
    let server = with_search_corpus();
    assert_searches(
        &server,
        &[
            ("UID SEARCH ALL", &[2, 3, 4, 5, 6]),
            ("UID SEARCH FLAGGED", &[2]),
            ("UID SEARCH 2:3", &[3, 4]),
            ("UID SEARCH UID 4:*", &[4, 5, 6]),
            ("UID SEARCH NOT SEEN", &[3, 4, 6]),
            ("UID SEARCH SUBJECT\tköln", &[2]),
        ],
    );
}

#[test]
fn search_with_an_unknown_charset_is_badcharset_and_the_session_goes_on() {
    let server = with_search_corpus();
    let printed = imaplib(
        &server,
        r#"
        M.select("INBOX")
        out("unknown", *M.search("X-UNKNOWN", "ALL"))
        out("ascii", *M.search("US-ASCII", "FLAGGED"))
        out("noop", *M.noop())
        "#,
        &[],
    );
    let unknown = printed.one("unknown");
    assert!(unknown.starts_with("NO [BADCHARSET"), "{unknown}");
    assert!(
        unknown.contains("UTF-8"),
        "BADCHARSET lists what is supported: {unknown}"
    );
    assert_eq!(printed.one("ascii"), "OK 1");
    assert!(printed.one("noop").starts_with("OK"), "{printed:#?}");
}

// ---- STORE ----

#[test]
fn store_replaces_adds_and_removes_flags_and_answers_with_the_result() {
    let (server, mut imap, _) = with_messages(2);
    let lines = imap.ok("STORE 1 FLAGS (\\Answered \\Draft)");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("* 1 FETCH (FLAGS ("), "{lines:?}");
    assert_eq!(flags_in(&lines[0]), sorted(&["\\Answered", "\\Draft"]));

    let lines = imap.ok("STORE 1 +FLAGS (\\Flagged)");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        flags_in(&lines[0]),
        sorted(&["\\Answered", "\\Draft", "\\Flagged"])
    );

    let lines = imap.ok("STORE 1 -FLAGS (\\Answered \\Draft)");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(flags_in(&lines[0]), ["\\Flagged"]);

    let lines = imap.ok("STORE 1:2 +FLAGS (\\Seen)");
    assert_eq!(lines.len(), 2, "one FETCH per message: {lines:?}");
    assert!(lines[0].starts_with("* 1 FETCH "), "{lines:?}");
    assert_eq!(flags_in(&lines[0]), sorted(&["\\Flagged", "\\Seen"]));
    assert!(lines[1].starts_with("* 2 FETCH "), "{lines:?}");
    assert_eq!(flags_in(&lines[1]), ["\\Seen"]);

    let lines = imap.ok("STORE 1 FLAGS ()");
    assert_eq!(lines, ["* 1 FETCH (FLAGS ())"]);

    let mut fresh = Imap::select(&server, "INBOX");
    assert!(fresh.flags(1).is_empty());
    assert_eq!(fresh.flags(2), ["\\Seen"], "STORE is kept");
}

#[test]
fn store_adds_to_flags_another_session_set() {
    let (server, mut a, _) = with_messages(1);
    let mut b = Imap::select(&server, "INBOX");
    a.ok("STORE 1 +FLAGS.SILENT (\\Flagged)");
    let lines = b.ok("STORE 1 +FLAGS (\\Seen)");
    let last = lines.last().expect("a FETCH response");
    assert_eq!(
        flags_in(last),
        sorted(&["\\Flagged", "\\Seen"]),
        "+FLAGS keeps A's \\Flagged: {lines:?}"
    );
    let mut fresh = Imap::select(&server, "INBOX");
    assert_eq!(fresh.flags(1), sorted(&["\\Flagged", "\\Seen"]));
}

#[test]
fn store_silent_answers_without_fetch_responses() {
    let (_server, mut imap, _) = with_messages(2);
    for command in [
        "STORE 1 +FLAGS.SILENT (\\Seen)",
        "STORE 1:2 FLAGS.SILENT (\\Flagged \\Deleted)",
        "STORE 1 -FLAGS.SILENT (\\Deleted)",
        "UID STORE 2 -FLAGS.SILENT (\\Flagged)",
    ] {
        let lines = imap.ok(command);
        assert!(lines.is_empty(), "{command}: {lines:?}");
    }
    assert_eq!(imap.flags(1), ["\\Flagged"]);
    assert_eq!(imap.flags(2), ["\\Deleted"]);
}

#[test]
fn uid_store_answers_with_the_uid() {
    let (_server, mut imap, _) = with_messages(3);
    // UID 1 goes, so that message n has UID n + 1.
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    imap.ok("EXPUNGE");

    let lines = imap.ok("UID STORE 3 +FLAGS (\\Flagged)");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("* 2 FETCH ("), "{lines:?}");
    assert_eq!(uid_in(&lines[0]), 3, "{lines:?}");
    assert_eq!(flags_in(&lines[0]), ["\\Flagged"]);

    let lines = imap.ok("UID STORE 2:3 FLAGS (\\Seen)");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("* 1 FETCH ("), "{lines:?}");
    assert_eq!(uid_in(&lines[0]), 2);
    assert!(lines[1].starts_with("* 2 FETCH ("), "{lines:?}");
    assert_eq!(uid_in(&lines[1]), 3);

    let lines = imap.ok("UID STORE 99 +FLAGS (\\Seen)");
    assert!(
        lines.is_empty(),
        "a UID naming no message is skipped: {lines:?}"
    );
}

#[test]
fn store_in_an_examined_mailbox_is_refused() {
    let (server, mut imap, _) = with_messages(1);
    imap.ok("STORE 1 +FLAGS.SILENT (\\Flagged)");
    imap.ok("CLOSE");
    imap.ok("EXAMINE INBOX");
    for command in [
        "STORE 1 +FLAGS (\\Seen)",
        "STORE 1 FLAGS.SILENT ()",
        "UID STORE 1 -FLAGS (\\Flagged)",
    ] {
        assert_refused(&mut imap, command, "NO");
    }
    assert_eq!(imap.flags(1), ["\\Flagged"], "nothing changed");
    still_works(&mut imap, &server);
}

// ---- COPY and MOVE ----

#[test]
fn copy_answers_copyuid_with_source_and_destination_uid_sets() {
    let server = ExampleServer::start();
    for n in 1..=6 {
        assert_eq!(server.deliver(&numbered(n)), n);
    }
    let mut imap = Imap::select(&server, "INBOX");
    // UID 1 goes, so that message n has UID n + 1; UID 3 is flagged.
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    imap.ok("EXPUNGE");
    imap.ok("UID STORE 3 +FLAGS.SILENT (\\Flagged)");
    imap.ok("CREATE Archive");
    let status = imap.ok("STATUS Archive (UIDVALIDITY)");
    let uid_validity = item(&status[0], "UIDVALIDITY");

    let printed = imaplib(
        &server,
        r#"
        M.select("INBOX")
        out("copy", *M.copy("2:3", "Archive"))
        typ, data = M.uid("COPY", "2,5:6", "Archive")
        out("uid_copy", typ)
        out("copyuid", M.response("COPYUID")[1])
        out("missing", *M.copy("1", "Nowhere"))
        out("uid_missing", *M.uid("COPY", "2", "Nowhere"))
        "#,
        &[],
    );
    let copy = printed.one("copy");
    assert!(copy.starts_with("OK [COPYUID "), "{copy}");
    assert_eq!(
        copyuid(copy),
        (uid_validity.to_owned(), vec![(3, 1), (4, 2)]),
        "COPY 2:3 (UIDs 3 and 4): {copy}"
    );
    assert_eq!(printed.one("uid_copy"), "OK");
    // imaplib keeps every COPYUID it saw: COPY's, then UID COPY's.
    let codes: Vec<&str> = printed.one("copyuid").split(" | ").collect();
    assert_eq!(codes.len(), 2, "{printed:#?}");
    assert_eq!(
        copyuid(&format!("[COPYUID {}]", codes[1])),
        (uid_validity.to_owned(), vec![(2, 3), (5, 4), (6, 5)]),
        "UID COPY 2,5:6: {}",
        codes[1]
    );
    assert!(
        printed.one("missing").starts_with("NO [TRYCREATE]"),
        "{printed:#?}"
    );
    assert!(
        printed.one("uid_missing").starts_with("NO [TRYCREATE]"),
        "{printed:#?}"
    );

    // The copies: source UID 3, 4, 2, 5, 6 became 1 to 5, with their flags.
    imap.ok("SELECT Archive");
    for (seq, source) in [(1, 3), (2, 4), (3, 2), (4, 5), (5, 6)] {
        let response = imap.fetch_one(&format!("{seq} (UID FLAGS BODY.PEEK[])"));
        assert_eq!(uid_in(&text(&response)), seq);
        assert_same_bytes(
            literal_of(&response, "BODY[]"),
            &numbered(source),
            &format!("copy of UID {source}"),
        );
        // Copied while no session had Archive open: recent for the first to select it.
        let flags = flags_in(&text(&response));
        match source {
            3 => assert_eq!(flags, ["\\Flagged", "\\Recent"]),
            _ => assert_eq!(flags, ["\\Recent"]),
        }
    }
    imap.ok("SELECT INBOX");
    assert_eq!(imap.uids(), [2, 3, 4, 5, 6], "COPY leaves the source alone");
}

/// A message appended with flags and an internal date: `(message, flags, date)`.
type Dated = (Vec<u8>, &'static str, &'static str);

/// Four messages appended with flags and dates; returns them as appended.
fn with_dated_messages(imap: &mut Imap) -> Vec<Dated> {
    let messages = vec![
        (numbered(1), "", "01-Feb-2024 10:00:00 +0000"),
        (numbered(2), "\\Flagged", "02-Feb-2024 11:00:00 +0000"),
        (
            numbered(3),
            "\\Answered \\Seen",
            "03-Feb-2024 12:00:00 +0000",
        ),
        (numbered(4), "\\Draft", "04-Feb-2024 13:00:00 +0000"),
    ];
    for (message, flags, date) in &messages {
        imap.append("INBOX", flags, date, message);
    }
    messages
}

/// `message` with `flags` and internal date `date` is message `seq` with `uid` in the
/// selected mailbox.
#[track_caller]
/// Moved messages arrive in the target mailbox, so they are also `\Recent` in the first
/// session that selects it (RFC 3501 section 2.3.2).
fn assert_message(
    imap: &mut Imap,
    seq: u32,
    uid: u32,
    (message, flags, date): &(Vec<u8>, &str, &str),
) {
    let response = imap.fetch_one(&format!("{seq} (UID FLAGS INTERNALDATE BODY.PEEK[])"));
    let line = text(&response);
    assert_eq!(uid_in(&line), uid, "{line}");
    let mut expected: Vec<&str> = flags.split(' ').filter(|f| !f.is_empty()).collect();
    expected.push("\\Recent");
    assert_eq!(flags_in(&line), sorted(&expected), "{line}");
    assert!(line.contains(&format!("INTERNALDATE \"{date}\"")), "{line}");
    assert_same_bytes(
        literal_of(&response, "BODY[]"),
        message,
        "the moved message",
    );
}

/// A server with [`with_dated_messages`] in INBOX and an empty mailbox `Moved`, a session
/// that selected INBOX, the messages, and `Moved`'s UIDVALIDITY.
fn with_messages_to_move() -> (ExampleServer, Imap, Vec<Dated>, String) {
    let server = ExampleServer::start();
    let mut imap = Imap::select(&server, "INBOX");
    let messages = with_dated_messages(&mut imap);
    imap.ok("CREATE Moved");
    let uid_validity = code_value(&imap.ok("EXAMINE Moved"), "UIDVALIDITY");
    imap.ok("SELECT INBOX");
    (server, imap, messages, uid_validity)
}

#[test]
fn move_answers_copyuid_first_then_expunges_and_keeps_flags_dates_and_bytes() {
    let (server, mut imap, messages, uid_validity) = with_messages_to_move();

    let lines = imap.ok("MOVE 2:3 Moved");
    assert!(
        lines[0].starts_with("* OK [COPYUID "),
        "RFC 6851: COPYUID in an untagged OK, before the EXPUNGEs: {lines:?}"
    );
    assert_eq!(
        copyuid(&lines[0]),
        (uid_validity.clone(), vec![(2, 1), (3, 2)])
    );
    let expunged = numbered_responses(&lines[1..], "EXPUNGE");
    assert_eq!(expunged.len(), 2, "the rest are EXPUNGEs: {lines:?}");
    assert_eq!(lines.len(), 3, "{lines:?}");
    let known = renumber(&[1, 2, 3, 4], &expunged);
    assert_eq!(known, [1, 4], "renumbered by the client: {lines:?}");
    assert_eq!(imap.uids(), known, "the moved messages left the source");

    imap.ok("SELECT Moved");
    assert_message(&mut imap, 1, 1, &messages[1]);
    assert_message(&mut imap, 2, 2, &messages[2]);
    let mut fresh = Imap::select(&server, "INBOX");
    assert_eq!(fresh.uids(), [1, 4]);
}

#[test]
fn uid_move_moves_the_named_uids() {
    let (_server, mut imap, messages, uid_validity) = with_messages_to_move();

    let lines = imap.ok("UID MOVE 4,1 Moved");
    assert!(lines[0].starts_with("* OK [COPYUID "), "{lines:?}");
    assert_eq!(
        copyuid(&lines[0]),
        (uid_validity.clone(), vec![(1, 1), (4, 2)])
    );
    let mut expunged = numbered_responses(&lines[1..], "EXPUNGE");
    expunged.sort();
    assert_eq!(expunged, [1, 4], "{lines:?}");
    assert_eq!(imap.uids(), [2, 3]);

    let reply = imap.command("UID MOVE 2 Nowhere");
    assert!(reply.status.starts_with("NO [TRYCREATE]"), "{reply:?}");
    assert!(reply.untagged.is_empty(), "nothing moved: {reply:?}");
    assert_eq!(imap.uids(), [2, 3]);

    imap.ok("SELECT Moved");
    assert_message(&mut imap, 1, 1, &messages[0]);
    assert_message(&mut imap, 2, 2, &messages[3]);
}

// ---- EXPUNGE, CLOSE, UIDs ----

#[test]
fn expunge_reports_each_removal_so_the_client_renumbers_correctly() {
    let (server, mut imap, uids) = with_messages(5);
    imap.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)");
    let lines = imap.ok("EXPUNGE");
    let expunged = numbered_responses(&lines, "EXPUNGE");
    assert_eq!(expunged.len(), 2, "one EXPUNGE per message: {lines:?}");
    assert_eq!(lines.len(), 2, "nothing else: {lines:?}");
    let known = renumber(&uids, &expunged);
    assert_eq!(known, [uids[0], uids[2], uids[4]], "{lines:?}");

    let fetched: Vec<u32> = imap
        .ok("FETCH 1:* (UID)")
        .iter()
        .map(|line| uid_in(line))
        .collect();
    assert_eq!(fetched, known);
    let mut fresh = Imap::select(&server, "INBOX");
    assert_eq!(fresh.uids(), known);
}

#[test]
fn expunge_with_removals_by_another_session_pending_renumbers_consistently() {
    let (server, mut a, uids) = with_messages(5);
    let mut b = Imap::select(&server, "INBOX");
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    // A has not heard of it: message 4 is still number 4 for A.
    a.ok("STORE 4 +FLAGS.SILENT (\\Deleted)");
    let lines = a.ok("EXPUNGE");
    let expunged = numbered_responses(&lines, "EXPUNGE");
    assert_eq!(expunged.len(), 2, "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    let known = renumber(&uids, &expunged);
    assert_eq!(known, [uids[0], uids[2], uids[4]], "{lines:?}");
    assert_eq!(a.uids(), known);
}

#[test]
fn uid_expunge_removes_only_the_named_deleted_messages() {
    let (_server, mut imap, uids) = with_messages(5);
    imap.ok("STORE 1,3,5 +FLAGS.SILENT (\\Deleted)");
    // UIDs of messages 3 and 4: only 3 is \Deleted.
    let lines = imap.ok(&format!("UID EXPUNGE {}:{}", uids[2], uids[3]));
    assert_eq!(lines, ["* 3 EXPUNGE"]);
    assert_eq!(imap.uids(), [uids[0], uids[1], uids[3], uids[4]]);
    assert_eq!(
        search_hits(&imap.ok("SEARCH DELETED")),
        [1, 4],
        "the other \\Deleted messages stay"
    );
    let lines = imap.ok(&format!("UID EXPUNGE {}", uids[1]));
    assert!(lines.is_empty(), "not \\Deleted: {lines:?}");
    assert_eq!(imap.uids().len(), 4);
}

#[test]
fn close_expunges_silently() {
    let (server, mut imap, uids) = with_messages(3);
    imap.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    let reply = imap.command("CLOSE");
    assert!(reply.status.starts_with("OK"), "{reply:?}");
    assert!(reply.untagged.is_empty(), "CLOSE says nothing: {reply:?}");
    let reply = imap.command("FETCH 1 (UID)");
    assert!(
        reply.status.starts_with("BAD"),
        "nothing is selected: {reply:?}"
    );
    let mut fresh = Imap::select(&server, "INBOX");
    assert_eq!(fresh.uids(), [uids[0], uids[2]], "CLOSE expunged");
}

#[test]
fn close_after_examine_keeps_deleted_messages() {
    let (server, mut imap, uids) = with_messages(2);
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    imap.ok("UNSELECT");
    imap.ok("EXAMINE INBOX");
    assert!(imap.ok("CLOSE").is_empty());
    let mut fresh = Imap::select(&server, "INBOX");
    assert_eq!(fresh.uids(), uids, "a read-only mailbox is not expunged");
}

#[test]
fn uids_are_never_reused_and_uidvalidity_stays_across_sessions() {
    let (server, mut imap, uids) = with_messages(3);
    assert_eq!(uids, [1, 2, 3]);
    let mut first = Imap::login(&server);
    let selected = first.ok("SELECT INBOX");
    let uid_validity = code_value(&selected, "UIDVALIDITY");
    assert_eq!(code_value(&selected, "UIDNEXT"), "4");
    first.ok("LOGOUT");

    // The highest UID goes: the next message still gets a new one.
    imap.ok("STORE 3 +FLAGS.SILENT (\\Deleted)");
    imap.ok("EXPUNGE");
    assert_eq!(imap.append("INBOX", "", "", &numbered(4)), 4);
    imap.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)");
    imap.ok("EXPUNGE");
    imap.ok("LOGOUT");

    let mut second = Imap::login(&server);
    let selected = second.ok("SELECT INBOX");
    assert_eq!(code_value(&selected, "UIDVALIDITY"), uid_validity);
    assert_eq!(code_value(&selected, "UIDNEXT"), "5", "{selected:?}");
    assert!(selected.contains(&"* 0 EXISTS".to_owned()), "{selected:?}");
    assert_eq!(second.append("INBOX", "", "", &numbered(5)), 5);
    let status = second.ok("STATUS INBOX (UIDVALIDITY UIDNEXT)");
    assert_eq!(
        status,
        [format!(
            "* STATUS INBOX (UIDVALIDITY {uid_validity} UIDNEXT 6)"
        )]
    );
    // Delivered by another program, it gets a new UID too.
    assert_eq!(server.deliver(&numbered(6)), 6);
}

// ---- Changes made by other sessions ----

/// Session A has INBOX selected while session B appends, flags and expunges; after each
/// change, A sends `command` and must hear of it (RFC 3501 section 7: EXISTS, FETCH FLAGS,
/// EXPUNGE).
fn changes_by_another_session_are_reported_at(command: &str) {
    let (server, mut a, uids) = with_messages(3);
    let mut b = Imap::select(&server, "INBOX");

    let appended = b.append("INBOX", "", "", &numbered(4));
    let lines = a.ok(command);
    // B, which has INBOX selected too, was told first: the message is recent there only.
    assert_eq!(
        lines,
        ["* 4 EXISTS", "* 0 RECENT"],
        "{command} after B's APPEND"
    );

    b.ok("STORE 2 +FLAGS.SILENT (\\Flagged)");
    let lines = a.ok(command);
    assert_eq!(
        lines,
        ["* 2 FETCH (FLAGS (\\Flagged))"],
        "{command} after B's STORE"
    );

    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    let lines = b.ok("EXPUNGE");
    assert_eq!(lines, ["* 1 EXPUNGE"], "B hears nothing of its own STORE");
    let lines = a.ok(command);
    assert_eq!(lines, ["* 1 EXPUNGE"], "{command} after B's EXPUNGE");

    let lines = a.ok(command);
    assert!(lines.is_empty(), "nothing new: {lines:?}");
    assert_eq!(a.uids(), [uids[1], uids[2], appended]);
}

#[test]
fn noop_reports_changes_made_by_another_session() {
    changes_by_another_session_are_reported_at("NOOP");
}

#[test]
fn check_reports_changes_made_by_another_session() {
    changes_by_another_session_are_reported_at("CHECK");
}

/// The Maildir file of the message whose body names it `n` (see [`numbered`]).
fn message_file(server: &ExampleServer, n: u32) -> std::path::PathBuf {
    let body = format!("Body of message {n}.");
    let user = server.maildir().join(USER);
    ["cur", "new"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(user.join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .find(|path| String::from_utf8_lossy(&std::fs::read(path).unwrap()).contains(&body))
        .unwrap_or_else(|| panic!("no file holds message {n}"))
}

/// Sessions with INBOX selected hold one list of its messages between them; a flag change
/// and a removal made by another program in the Maildir reach each session all the same,
/// each when its client may hear of them: a session answering FETCH keeps the removed
/// message numbered, the other is told at once.
#[test]
fn changes_by_another_program_reach_every_session_with_the_mailbox_selected() {
    let (server, mut a, uids) = with_messages(3);
    let mut b = Imap::select(&server, "INBOX");
    // As a mail client working on the Maildir directly would: flag 2 (its file renamed into
    // cur/ with `F` in its info), delete 3.
    let second = message_file(&server, 2);
    let name = second.file_name().unwrap().to_str().unwrap();
    let base = name.split_once(":2,").map_or(name, |(base, _)| base);
    let cur = server.maildir().join(USER).join("cur");
    std::fs::rename(&second, cur.join(format!("{base}:2,F"))).unwrap();
    std::fs::remove_file(message_file(&server, 3)).unwrap();

    let lines = a.ok("NOOP");
    assert_eq!(lines, ["* 3 EXPUNGE", "* 2 FETCH (FLAGS (\\Flagged))"]);
    let lines = b.ok("FETCH 1:3 (UID)");
    assert!(
        numbered_responses(&lines, "EXPUNGE").is_empty(),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"* 2 FETCH (FLAGS (\\Flagged))".to_owned()),
        "{lines:?}"
    );
    let lines = b.ok("NOOP");
    assert_eq!(lines, ["* 3 EXPUNGE"]);
    for session in [&mut a, &mut b] {
        assert_eq!(session.uids(), uids[..2]);
        let lines = session.ok("FETCH 2 (FLAGS)");
        assert_eq!(lines, ["* 2 FETCH (FLAGS (\\Flagged))"]);
        assert!(session.ok("NOOP").is_empty());
    }
}

#[test]
fn expunges_by_another_session_wait_for_a_command_that_allows_them() {
    let (server, mut a, uids) = with_messages(3);
    let mut b = Imap::select(&server, "INBOX");
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");

    // RFC 3501 section 7.4.1: no EXPUNGE while answering FETCH, STORE or SEARCH, whose
    // sequence numbers are the client's.
    let lines = a.ok("FETCH 1:3 (UID)");
    assert!(
        numbered_responses(&lines, "EXPUNGE").is_empty(),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("* 3 FETCH (UID {})", uids[2])),
        "{lines:?}"
    );
    let lines = a.ok("SEARCH ALL");
    assert!(
        numbered_responses(&lines, "EXPUNGE").is_empty(),
        "{lines:?}"
    );
    let lines = a.ok("STORE 3 +FLAGS (\\Seen)");
    assert_eq!(
        lines,
        ["* 3 FETCH (FLAGS (\\Seen))"],
        "the client's numbering still holds"
    );

    let lines = a.ok("CHECK");
    assert_eq!(lines, ["* 2 EXPUNGE"]);
    assert_eq!(a.uids(), [uids[0], uids[2]]);
    assert_eq!(a.flags(2), ["\\Seen"]);
}

// ---- IDLE ----

/// Send IDLE and read up to the continuation request, which must come first. Returns the tag.
fn start_idle(imap: &mut Imap) -> String {
    let tag = imap.next_tag();
    imap.send(format!("{tag} IDLE\r\n").as_bytes());
    let first = imap.response();
    assert!(first.starts_with(b"+ "), "IDLE: {}", text(&first));
    tag
}

/// End IDLE with DONE; the tagged OK must follow at once.
#[track_caller]
fn done(imap: &mut Imap, tag: &str) {
    imap.send(b"DONE\r\n");
    let reply = imap.until_tagged(tag);
    assert!(reply.status.starts_with("OK"), "{reply:?}");
    assert!(reply.untagged.is_empty(), "{reply:?}");
}

#[test]
fn idle_reports_a_message_appended_by_another_session_at_once() {
    let (server, mut a, uids) = with_messages(1);
    let tag = start_idle(&mut a);
    let mut b = Imap::login(&server);
    let appended = b.append("INBOX", "", "", &numbered(2));
    // Bounded by the read timeout (SOON), far more than "at once" needs.
    assert_eq!(text(&a.response()), "* 2 EXISTS");
    // No other session has INBOX selected: A is the first told, so the message is recent.
    assert_eq!(text(&a.response()), "* 1 RECENT");

    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS.SILENT (\\Flagged)");
    assert_eq!(text(&a.response()), "* 1 FETCH (FLAGS (\\Flagged))");

    done(&mut a, &tag);
    assert_eq!(a.uids(), [uids[0], appended]);
}

#[test]
fn idle_reports_a_pop3_deletion_as_expunge() {
    let (server, mut a, uids) = with_messages(2);
    let tag = start_idle(&mut a);
    let pop = server.poplib_as_demo(&["dele:1", "quit"]);
    assert!(pop.one("quit").starts_with("+OK"), "{pop:#?}");
    assert_eq!(text(&a.response()), "* 1 EXPUNGE");
    done(&mut a, &tag);
    assert_eq!(a.uids(), [uids[1]]);
}

#[test]
fn idle_ends_with_done_and_anything_else_is_bad() {
    let (server, mut imap, _) = with_messages(1);
    let tag = start_idle(&mut imap);
    done(&mut imap, &tag);

    let tag = start_idle(&mut imap);
    imap.send(b"done\r\n");
    let reply = imap.until_tagged(&tag);
    assert!(
        reply.status.starts_with("OK"),
        "DONE is case-insensitive: {reply:?}"
    );

    let tag = start_idle(&mut imap);
    imap.send(b"t99 NOOP\r\n");
    let reply = imap.until_tagged(&tag);
    assert!(reply.status.starts_with("BAD"), "{reply:?}");
    assert!(reply.untagged.is_empty(), "{reply:?}");
    still_works(&mut imap, &server);
}

// ---- IMAP and POP3 on the same mail ----

#[test]
fn message_appended_over_imap_is_retrieved_by_pop3_byte_for_byte() {
    let server = ExampleServer::start();
    let printed = imaplib(
        &server,
        r#"
        out("append", *M.append("INBOX", None, None, bytes.fromhex(ARGS[0])))
        "#,
        &[&hex(mime())],
    );
    assert!(
        printed.one("append").starts_with("OK [APPENDUID "),
        "{printed:#?}"
    );
    let pop = server.poplib_as_demo(&["stat", "list", "retr:1", "quit"]);
    assert_eq!(pop.one("list"), format!("1:{}", mime().len()));
    let (octets, hex) = pop.one("retr").split_once(' ').unwrap();
    assert_eq!(octets, mime().len().to_string());
    assert_same_bytes(&unhex(hex), as_poplib_sees_it(mime()), "RETR 1");
}

#[test]
fn message_delivered_and_retrieved_over_pop3_is_the_same_over_imap() {
    let server = ExampleServer::start();
    let mut imap = Imap::select(&server, "INBOX");
    let message = QP_MESSAGE.as_bytes();
    server.deliver(message);
    let pop = server.poplib_as_demo(&["list", "retr:1", "quit"]);
    assert_eq!(pop.one("list"), format!("1:{}", message.len()));
    let (_, hex) = pop.one("retr").split_once(' ').unwrap();
    assert_same_bytes(&unhex(hex), as_poplib_sees_it(message), "RETR 1");

    // The session that had INBOX selected hears of it at its next command.
    let lines = imap.ok("CHECK");
    assert_eq!(numbered_responses(&lines, "EXISTS"), [1], "{lines:?}");
    let response = imap.fetch_one("1 (RFC822.SIZE BODY.PEEK[])");
    assert_eq!(
        item(&text(&response), "RFC822.SIZE"),
        message.len().to_string()
    );
    assert_same_bytes(literal_of(&response, "BODY[]"), message, "BODY[]");
}

// ---- Bad input ----

#[test]
fn fetch_beyond_exists_is_bad_and_the_session_goes_on() {
    let (server, mut imap, _) = with_messages(2);
    for command in ["FETCH 3 (FLAGS)", "FETCH 1:3 (FLAGS)", "FETCH 2,7 (UID)"] {
        assert_refused(&mut imap, command, "BAD");
    }
    let lines = imap.ok("UID FETCH 3:9 (FLAGS)");
    assert!(
        lines.is_empty(),
        "UIDs that name nothing are skipped: {lines:?}"
    );
    still_works(&mut imap, &server);
}

#[test]
fn fetch_without_a_selected_mailbox_is_bad() {
    let server = ExampleServer::start();
    server.deliver(&numbered(1));
    let mut imap = Imap::login(&server);
    for command in [
        "FETCH 1 (FLAGS)",
        "UID FETCH 1 (FLAGS)",
        "STORE 1 +FLAGS (\\Seen)",
        "SEARCH ALL",
    ] {
        assert_refused(&mut imap, command, "BAD");
    }
    still_works(&mut imap, &server);
}

#[test]
fn append_literal_over_the_cap_is_refused_instead_of_continued() {
    let server = ExampleServer::start();
    let mut imap = Imap::login(&server);
    // Over the default 50 MiB cap; the octets are never sent.
    imap.send(b"t1 APPEND INBOX {60000000}\r\n");
    let answer = text(&imap.response());
    assert!(
        answer.starts_with("t1 BAD"),
        "a tagged BAD instead of `+`: {answer}"
    );
    still_works(&mut imap, &server);
    assert_eq!(server.inbox_len(USER), 0);
}

#[test]
fn append_to_a_missing_mailbox_is_refused_before_the_message_is_asked_for() {
    let server = ExampleServer::start();
    let mut imap = Imap::login(&server);
    imap.send(b"t1 APPEND Nowhere {5}\r\n");
    let answer = text(&imap.response());
    assert!(
        answer.starts_with("t1 NO [TRYCREATE]"),
        "NO instead of `+`, so the client sends nothing: {answer}"
    );
    still_works(&mut imap, &server);
}

#[test]
fn append_streams_the_message_to_disk_and_a_cut_upload_leaves_nothing() {
    let server = ExampleServer::start();
    let mut imap = Imap::login(&server);
    let size = 4 << 20;
    imap.send(format!("t1 APPEND INBOX {{{size}}}\r\n").as_bytes());
    assert!(imap.response().starts_with(b"+ "));
    let mut line = b"x".repeat(998);
    line.extend_from_slice(b"\r\n");
    let half: Vec<u8> = line.iter().copied().cycle().take(size / 2).collect();
    imap.send(&half);
    // The first half is in a file in tmp/ while the second has not been sent: the server
    // streams the message rather than holding it.
    let written = poll(SOON, || {
        let files = server.maildir_tmp_files(USER);
        files
            .iter()
            .any(|&len| len >= (size / 4) as u64)
            .then_some(files)
    });
    assert!(written.is_some(), "no partial message in tmp/");
    // The client goes away mid-message: nothing is delivered, and the partial file goes.
    drop(imap);
    let cleaned = poll(SOON, || {
        server.maildir_tmp_files(USER).is_empty().then_some(())
    });
    assert!(cleaned.is_some(), "{:?}", server.maildir_tmp_files(USER));
    assert_eq!(server.inbox_len(USER), 0);

    // A message sent whole after its `+` arrives byte for byte.
    let message: Vec<u8> = b"Subject: streamed\r\n\r\n"
        .iter()
        .copied()
        .chain(line.iter().copied().cycle().take(size))
        .collect();
    let mut imap = Imap::select(&server, "INBOX");
    let uid = imap.append("INBOX", "\\Seen", "", &message);
    let response = imap.ok_raw(&format!("UID FETCH {uid} BODY.PEEK[]"));
    assert_same_bytes(
        literal_of(&response[0], "BODY[]"),
        &message,
        "streamed APPEND",
    );
    assert!(server.maildir_tmp_files(USER).is_empty());
}

#[test]
fn append_with_more_after_the_message_is_bad_and_delivers_nothing() {
    let server = ExampleServer::start();
    let mut imap = Imap::login(&server);
    imap.send(b"t1 APPEND INBOX {5}\r\n");
    assert!(imap.response().starts_with(b"+ "));
    imap.send(b"hello (\\Seen) extra\r\n");
    let answer = text(&imap.response());
    assert!(answer.starts_with("t1 BAD"), "{answer}");
    // A mailbox named by a literal, then the message: the usual path.
    imap.send(b"t2 APPEND {5+}\r\nINBOX {5+}\r\nhello\r\n");
    let answer = text(&imap.response());
    assert!(answer.starts_with("t2 OK [APPENDUID "), "{answer}");
    assert_eq!(server.inbox_len(USER), 1);
    still_works(&mut imap, &server);
}

#[test]
fn append_non_synchronizing_literal_over_the_cap_ends_the_session() {
    let server = ExampleServer::start();
    let mut imap = Imap::login(&server);
    // LITERAL+: the client does not wait, so the octets would follow at once and cannot be
    // told apart from commands; the server can only say goodbye.
    imap.send(b"t1 APPEND INBOX {60000000+}\r\n");
    let answer = text(&imap.response());
    assert!(answer.starts_with("* BYE "), "{answer}");
    assert_eq!(
        imap.try_response().map(|r| text(&r)),
        None,
        "then it closes"
    );
    let mut fresh = Imap::select(&server, "INBOX");
    fresh.ok("NOOP");
    assert_eq!(server.inbox_len(USER), 0);
}

#[test]
fn unknown_fetch_item_is_bad() {
    let (server, mut imap, _) = with_messages(1);
    for command in [
        "FETCH 1 (FOO)",
        "FETCH 1 (FLAGS FOO)",
        "FETCH 1 BODY[9.FOO]",
    ] {
        assert_refused(&mut imap, command, "BAD");
    }
    still_works(&mut imap, &server);
}

#[test]
fn unknown_uid_command_is_bad() {
    let (server, mut imap, _) = with_messages(1);
    for command in ["UID FROB", "UID FROB 1", "UID"] {
        assert_refused(&mut imap, command, "BAD");
    }
    still_works(&mut imap, &server);
}

// ---- \Recent ----

/// RFC 3501 section 2.3.2: a new message is `\Recent` in the first read-write session told of
/// it and in no later one; a read-only session sees unclaimed messages as recent without
/// claiming them; STATUS counts the unclaimed ones; SEARCH RECENT, NEW and OLD follow.
#[test]
fn recent_belongs_to_the_first_session_told() {
    let (server, mut first, _) = with_messages(1);
    let mut deliverer = Imap::login(&server);
    deliverer.append("INBOX", "", "", &numbered(2));
    let status = deliverer.ok("STATUS INBOX (RECENT)");
    assert_eq!(status, ["* STATUS INBOX (RECENT 1)"], "nobody was told yet");
    let mut reader = Imap::login(&server);
    let examined = reader.ok("EXAMINE INBOX");
    assert!(examined.contains(&"* 1 RECENT".to_owned()), "{examined:?}");

    assert_eq!(first.ok("NOOP"), ["* 2 EXISTS", "* 1 RECENT"]);
    assert!(first.flags(2).contains(&"\\Recent".to_owned()));
    assert!(!first.flags(1).contains(&"\\Recent".to_owned()));
    assert_eq!(search_hits(&first.ok("SEARCH RECENT")), [2]);
    assert_eq!(search_hits(&first.ok("SEARCH NEW")), [2]);
    assert_eq!(search_hits(&first.ok("SEARCH OLD")), [1]);
    first.ok("STORE 2 +FLAGS.SILENT (\\Seen)");
    assert_eq!(search_hits(&first.ok("SEARCH NEW")), Vec::<u32>::new());

    let mut later = Imap::login(&server);
    let selected = later.ok("SELECT INBOX");
    assert!(selected.contains(&"* 0 RECENT".to_owned()), "{selected:?}");
    assert!(!later.flags(2).contains(&"\\Recent".to_owned()));
    let status = later.ok("STATUS INBOX (RECENT)");
    assert_eq!(status, ["* STATUS INBOX (RECENT 0)"]);
}
