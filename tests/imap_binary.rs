//! BINARY (RFC 3516, part of IMAP4rev2) over loopback sockets, on a Maildir: APPEND with a
//! `literal8` (`~{n}`) that holds NUL, stored as received; FETCH BINARY, BINARY.PEEK and
//! BINARY.SIZE of base64, quoted-printable and `binary` parts, answered in a `literal8` when
//! the decoded octets hold NUL; `\Seen` as BODY[] sets it; `NO [UNKNOWN-CTE]`; and sections
//! BINARY does not take. A raw client where the exact octets matter, Python's imaplib as the
//! real client.
//!
//! Needs `python3` (imaplib from the standard library).

mod common;
mod support_shared;

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tower_mail::Protocol;
use tower_mail::auth::PasswdFile;
use tower_mail::imap::{ImapConfig, ImapService};
use tower_mail::server::{Server, ServerConfig, TlsMode};
use tower_mail::store::Maildir;

use common::SOON;

/// A text part in quoted-printable ("Grüße aus Köln!") and an attachment in base64 whose
/// nine octets hold NUL.
const ENCODED: &[u8] = b"From: a@example.com\r\n\
Subject: encoded\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=C3=BC=C3=9Fe aus K=C3=B6ln=\r\n\
!\r\n\
--b\r\n\
Content-Type: application/octet-stream; name=data.bin\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAEC/wAK\r\n\
DQBo\r\n\
--b--\r\n";

/// What ENCODED's parts decode to.
const GREETING: &[u8] = "Grüße aus Köln!".as_bytes();
const DATA: &[u8] = b"\x00\x01\x02\xff\x00\n\r\x00h";

/// An attachment sent without transfer encoding: NUL, bare LF and bare CR among its octets.
const ATTACHMENT: &[u8] = b"\x00\x01\nPNG\r\x00\xff\xfe\n\n\x00end";

/// A message with ATTACHMENT as its `binary` part 2, as a client appends it in a literal8.
fn with_binary_part() -> Vec<u8> {
    [
        &b"From: a@example.com\r\n\
           Subject: binary\r\n\
           MIME-Version: 1.0\r\n\
           Content-Type: multipart/mixed; boundary=b\r\n\
           \r\n\
           --b\r\n\
           Content-Type: text/plain\r\n\
           \r\n\
           See the attachment.\r\n\
           --b\r\n\
           Content-Type: application/octet-stream\r\n\
           Content-Transfer-Encoding: binary\r\n\
           \r\n"[..],
        ATTACHMENT,
        b"\r\n--b--\r\n",
    ]
    .concat()
}

/// The IMAP service over a fresh Maildir, plaintext logins allowed.
struct Harness {
    server: Server,
    addr: SocketAddr,
    _root: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Harness {
        let root = tempfile::tempdir().unwrap();
        let mut config = ImapConfig::default();
        config.allow_plaintext_login = true;
        let users = PasswdFile::parse(common::USERS);
        let imap = ImapService::new(users, Maildir::new(root.path()), config);
        let (server, addr) =
            common::serve(Protocol::Imap, TlsMode::None, ServerConfig::default(), imap).await;
        Harness {
            server,
            addr,
            _root: root,
        }
    }

    /// A raw client past the greeting, logged in as alice if `login`.
    async fn raw(&self, login: bool) -> Raw {
        let mut raw = Raw {
            io: BufReader::new(TcpStream::connect(self.addr).await.unwrap()),
        };
        let greeting = raw.line().await;
        assert!(greeting.starts_with(b"* OK "), "{}", show(&greeting));
        if login {
            let reply = raw.command(b"L LOGIN alice secret").await;
            assert!(last(&reply).starts_with(b"L OK "), "{}", show_all(&reply));
        }
        raw
    }

    async fn stop(self) {
        self.server.shutdown(SOON).await;
    }
}

/// A client that reads responses octet for octet, literals and literal8s included.
struct Raw {
    io: BufReader<TcpStream>,
}

impl Raw {
    async fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.unwrap();
    }

    /// One line, CRLF included.
    async fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        let read = tokio::time::timeout(SOON, self.io.read_until(b'\n', &mut line));
        read.await.expect("a line in time").unwrap();
        assert!(
            line.ends_with(b"\r\n"),
            "connection closed: {}",
            show(&line)
        );
        line
    }

    /// One response: a line, and while it ends in a literal's announcement (`{n}` or
    /// `~{n}`), the literal's octets and the line that follows them.
    async fn response(&mut self) -> Vec<u8> {
        let mut response = self.line().await;
        while let Some(length) = announced(&response) {
            let mut literal = vec![0; length];
            let read = tokio::time::timeout(SOON, self.io.read_exact(&mut literal));
            read.await.expect("a literal in time").unwrap();
            response.extend_from_slice(&literal);
            response.extend(self.line().await);
        }
        response
    }

    /// Send `command` and CRLF; every response up to its tagged one.
    async fn command(&mut self, command: &[u8]) -> Vec<Vec<u8>> {
        self.send(&[command, b"\r\n"].concat()).await;
        let tag = command.split(|&b| b == b' ').next().unwrap();
        self.until_tagged(tag).await
    }

    async fn until_tagged(&mut self, tag: &[u8]) -> Vec<Vec<u8>> {
        let tagged = [tag, b" "].concat();
        let mut responses = Vec::new();
        loop {
            let response = self.response().await;
            let done = response.starts_with(&tagged);
            responses.push(response);
            if done {
                return responses;
            }
        }
    }

    /// APPEND `message` to INBOX in a synchronizing literal8, waiting for the `+`.
    async fn append_literal8(&mut self, tag: &str, message: &[u8]) -> Vec<Vec<u8>> {
        let announce = format!("{tag} APPEND INBOX ~{{{}}}\r\n", message.len());
        self.send(announce.as_bytes()).await;
        let go_ahead = self.line().await;
        assert!(go_ahead.starts_with(b"+ "), "{}", show(&go_ahead));
        self.send(&[message, b"\r\n"].concat()).await;
        self.until_tagged(tag.as_bytes()).await
    }
}

/// The length a line announces at its end: `{n}` or `~{n}` before CRLF.
fn announced(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"}\r\n")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()
}

fn last(responses: &[Vec<u8>]) -> &[u8] {
    responses.last().expect("a response")
}

fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

fn show_all(responses: &[Vec<u8>]) -> String {
    responses
        .iter()
        .map(|r| show(r))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `* <seq> FETCH (<items>)\r\n`.
fn fetched(seq: u32, items: &[u8]) -> Vec<u8> {
    [format!("* {seq} FETCH (").as_bytes(), items, b")\r\n"].concat()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_literal8_append_comes_back_octet_for_octet_from_binary() {
    let harness = Harness::start().await;
    let mut client = harness.raw(true).await;
    let caps = client.command(b"C CAPABILITY").await;
    assert!(
        caps[0].starts_with(b"* CAPABILITY ") && caps[0].windows(8).any(|w| w == b" BINARY "),
        "{}",
        show_all(&caps)
    );

    let message = with_binary_part();
    let reply = client.append_literal8("A1", &message).await;
    assert!(
        last(&reply).starts_with(b"A1 OK [APPENDUID "),
        "{}",
        show_all(&reply)
    );
    // Non-synchronizing too (LITERAL+), without a `+`.
    let announce = format!("A2 APPEND INBOX (\\Seen) ~{{{}+}}\r\n", ENCODED.len());
    client
        .send(&[announce.as_bytes(), ENCODED, b"\r\n"].concat())
        .await;
    let reply = client.until_tagged(b"A2").await;
    assert!(last(&reply).starts_with(b"A2 OK "), "{}", show_all(&reply));

    let reply = client.command(b"S SELECT INBOX").await;
    assert!(last(&reply).starts_with(b"S OK "), "{}", show_all(&reply));

    // Stored as received: the whole message in BINARY[], NUL and bare line ends kept.
    let reply = client.command(b"F1 FETCH 1 BINARY.PEEK[]").await;
    let expected = [
        format!("BINARY[] ~{{{}}}\r\n", message.len()).as_bytes(),
        &message,
    ]
    .concat();
    assert_eq!(reply[0], fetched(1, &expected), "{}", show_all(&reply));

    let reply = client
        .command(b"F2 FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2] BODY.PEEK[2])")
        .await;
    let body_form = b"\x80\x01\r\nPNG\r\x80\xff\xfe\r\n\r\n\x80end";
    let expected = [
        format!(
            "BINARY.SIZE[2] {0} BINARY[2] ~{{{0}}}\r\n",
            ATTACHMENT.len()
        )
        .as_bytes(),
        ATTACHMENT,
        format!(" BODY[2] {{{}}}\r\n", body_form.len()).as_bytes(),
        body_form,
    ]
    .concat();
    assert_eq!(reply[0], fetched(1, &expected), "{}", show_all(&reply));
    assert_eq!(last(&reply), b"F2 OK FETCH completed\r\n");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn encoded_parts_are_decoded_and_binary_sets_seen_unless_peek() {
    let harness = Harness::start().await;
    let mut client = harness.raw(true).await;
    let announce = format!("A APPEND INBOX {{{}+}}\r\n", ENCODED.len());
    client
        .send(&[announce.as_bytes(), ENCODED, b"\r\n"].concat())
        .await;
    assert!(last(&client.until_tagged(b"A").await).starts_with(b"A OK "));
    client.command(b"S SELECT INBOX").await;

    let reply = client
        .command(b"F1 FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1] BINARY.SIZE[1])")
        .await;
    let expected = [
        &b"BINARY[2] ~{9}\r\n"[..],
        DATA,
        format!(" BINARY.SIZE[2] 9 BINARY[1] {{{0}}}\r\n", GREETING.len()).as_bytes(),
        GREETING,
        format!(" BINARY.SIZE[1] {}", GREETING.len()).as_bytes(),
    ]
    .concat();
    assert_eq!(reply[0], fetched(1, &expected), "{}", show_all(&reply));

    // A partial fetch counts in the decoded octets.
    let reply = client.command(b"F2 FETCH 1 BINARY.PEEK[2]<3.4>").await;
    assert_eq!(reply[0], fetched(1, b"BINARY[2] ~{4}\r\n\xff\x00\n\r"));

    // PEEK and SIZE leave \Seen alone; BINARY[] sets it and says so.
    let reply = client.command(b"F3 FETCH 1 FLAGS").await;
    assert_eq!(reply[0], fetched(1, b"FLAGS (\\Recent)"));
    let reply = client.command(b"F4 FETCH 1 BINARY[1]").await;
    let expected = [
        format!("BINARY[1] {{{}}}\r\n", GREETING.len()).as_bytes(),
        GREETING,
        b" FLAGS (\\Seen \\Recent)",
    ]
    .concat();
    assert_eq!(reply[0], fetched(1, &expected), "{}", show_all(&reply));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_encodings_and_sections_binary_does_not_take_are_refused() {
    let harness = Harness::start().await;
    let mut client = harness.raw(true).await;
    let uuencoded =
        b"Subject: old\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n`\r\nend\r\n";
    let announce = format!("A APPEND INBOX {{{}+}}\r\n", uuencoded.len());
    client
        .send(&[announce.as_bytes(), uuencoded, b"\r\n"].concat())
        .await;
    assert!(last(&client.until_tagged(b"A").await).starts_with(b"A OK "));
    client.command(b"S SELECT INBOX").await;

    let reply = client.command(b"F1 FETCH 1 BINARY[1]").await;
    assert_eq!(
        reply,
        [b"F1 NO [UNKNOWN-CTE] Cannot decode the part's Content-Transfer-Encoding\r\n".to_vec()]
    );
    let reply = client.command(b"F2 FETCH 1 (FLAGS BINARY.SIZE[1])").await;
    assert!(last(&reply).starts_with(b"F2 NO [UNKNOWN-CTE] "));
    let reply = client.command(b"F3 FETCH 1 FLAGS").await;
    assert_eq!(
        reply[0],
        fetched(1, b"FLAGS (\\Recent)"),
        "the refused FETCH set no \\Seen"
    );
    // The whole message has no encoding to remove.
    let reply = client.command(b"F4 FETCH 1 BINARY.SIZE[]").await;
    assert_eq!(
        reply[0],
        fetched(1, format!("BINARY.SIZE[] {}", uuencoded.len()).as_bytes())
    );

    for (tag, section) in [
        ("B1", "1.MIME"),
        ("B2", "HEADER"),
        ("B3", "TEXT"),
        ("B4", "1.0"),
    ] {
        let command = format!("{tag} FETCH 1 BINARY[{section}]");
        let reply = client.command(command.as_bytes()).await;
        assert!(
            reply.len() == 1 && reply[0].starts_with(format!("{tag} BAD ").as_bytes()),
            "{section}: {}",
            show_all(&reply)
        );
    }
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_literal8_before_login_is_refused_before_its_continuation() {
    let harness = Harness::start().await;
    let mut client = harness.raw(false).await;
    let reply = client.command(b"a APPEND INBOX ~{100}").await;
    assert_eq!(reply, [b"a BAD Log in first\r\n".to_vec()]);
    let reply = client.command(b"b NOOP").await;
    assert_eq!(reply, [b"b OK NOOP completed\r\n".to_vec()]);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn imaplib_reads_binary_and_binary_size() {
    let harness = Harness::start().await;
    let script = format!(
        "import imaplib\n\
         M = imaplib.IMAP4('{}', {})\n\
         M.login('alice', 'secret')\n\
         {}\n",
        harness.addr.ip(),
        harness.addr.port(),
        support_shared::dedent(
            r#"
            import sys
            M.append('INBOX', None, None, sys.stdin.buffer.read())
            M.select('INBOX')
            typ, data = M.fetch('1', '(BINARY.PEEK[2] BINARY.SIZE[2])')
            print(typ, data[0][0].decode(), data[0][1].hex(), data[1].decode())
            typ, data = M.fetch('1', '(BINARY[1])')
            print(typ, data[0][0].decode(), data[0][1].decode(), data[1].decode())
            typ, data = M.fetch('1', '(FLAGS)')
            print(typ, data[0].decode())
            M.logout()
            "#
        )
    );
    let mut python = tokio::process::Command::from(support_shared::python3(&script));
    python
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = python
        .spawn()
        .unwrap_or_else(|e| panic!("{}", support_shared::missing("python3", &e)));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(ENCODED).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(3 * SOON, child.wait_with_output())
        .await
        .expect("python finished in time")
        .unwrap();
    let out = support_shared::stdout_of(&script, output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "OK 1 (BINARY[2] ~{9} 000102ff000a0d0068  BINARY.SIZE[2] 9)".to_owned(),
            "OK 1 (BINARY[1] {18} Grüße aus Köln!  FLAGS (\\Seen \\Recent))".to_owned(),
            "OK 1 (FLAGS (\\Seen \\Recent))".to_owned(),
        ]
    );
    harness.stop().await;
}
