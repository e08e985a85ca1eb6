//! Real IMAP clients against the example server binary (`examples/server.rs`): curl (imap://,
//! STARTTLS and imaps://, with the server's certificate verified) and mbsync from isync, a
//! synchronising client that runs the whole of a two-way sync: LIST, SELECT, UID FETCH of
//! flags and bodies, APPEND with APPENDUID, UID STORE, EXPUNGE, CREATE.
//!
//! Each test starts its own server with a certificate made here (rcgen), so that curl and mbsync
//! verify it instead of turning verification off. Python's imaplib sets the scene (flags,
//! folders, moves) and reads the server's state back independently of the client under test.
//!
//! With a filter, build the example first (the harness refuses a stale binary):
//!
//! ```text
//! cargo build --example server && cargo test --test imap_clients
//! ```
//!
//! Needs `python3` (imaplib), `curl` with IMAP support and `mbsync` (isync 1.4), as `.ci/run`
//! installs. offlineimap is not covered: it is not installed here or in CI.

mod support_example;
mod support_shared;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use support_example::{
    ExampleServer, PASSWORD, USER, assert_same_bytes, curl, hex, stderr, toml_str, unhex,
};
use support_shared::{dedent, run_python};

/// Bound on one mbsync run: a liveness bound for a debug-build server on a slow machine, not a
/// timing claim.
const MBSYNC_BOUND: Duration = Duration::from_secs(180);

// ---- Messages ----

/// A plain text message.
const PLAIN: &[u8] = b"From: Alice <alice@example.com>\r\n\
To: demo@localhost\r\n\
Subject: plain text\r\n\
Message-ID: <plain@example.com>\r\n\
Date: Mon, 6 Jan 2025 10:00:00 +0000\r\n\
\r\n\
Hello from Alice.\r\n\
Second line.\r\n";

/// Raw UTF-8 in the headers (RFC 6532) next to an encoded word, and an 8-bit UTF-8 body.
const UTF8: &[u8] = "From: =?UTF-8?Q?Jos=C3=A9_Garc=C3=ADa?= <jose@example.com>\r\n\
To: Zoë <zoe@example.com>\r\n\
Subject: Grüße aus Köln 🌍\r\n\
Message-ID: <utf8@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Schöne Grüße — 日本語のテキスト.\r\n"
    .as_bytes();

/// A reply, to carry \Answered.
const ANSWERED: &[u8] = b"From: Carol <carol@example.com>\r\n\
To: demo@localhost\r\n\
Subject: Re: lunch?\r\n\
Message-ID: <answered@example.com>\r\n\
In-Reply-To: <lunch@localhost>\r\n\
\r\n\
Yes, at noon.\r\n";

/// Delivered to INBOX, then moved to `Archive` with UID MOVE.
const TO_ARCHIVE: &[u8] = b"From: Dave <dave@example.com>\r\n\
To: demo@localhost\r\n\
Subject: for the archive\r\n\
Message-ID: <archive@example.com>\r\n\
\r\n\
Keep this one.\r\n";

/// APPENDed straight into the nested `Archive/2024`.
const NESTED: &[u8] = b"From: Demo <demo@localhost>\r\n\
To: Erin <erin@example.com>\r\n\
Subject: draft in a nested folder\r\n\
Message-ID: <nested@localhost>\r\n\
\r\n\
Unfinished.\r\n";

/// Written into the local INBOX/new by hand between two syncs (LF line ends, as Maildir
/// files have).
const LOCAL_NEW: &[u8] = b"From: Demo <demo@localhost>\n\
To: Alice <alice@example.com>\n\
Subject: written offline\n\
Message-ID: <local-new@localhost>\n\
\n\
Composed on the near side.\n";

/// Written into a folder made locally (Create Both must make it on the server).
const LOCAL_FOLDER: &[u8] = b"From: Demo <demo@localhost>\n\
To: demo@localhost\n\
Subject: in a folder made locally\n\
Message-ID: <local-folder@localhost>\n\
\n\
Filed by hand.\n";

/// The text part of [`multipart`], as BODY[1] returns it: RFC 2046 gives the CRLF before a
/// boundary to the boundary, so the part ends without it.
const MULTIPART_TEXT: &str = "Tschüss,\r\nsee the attachment.";

/// The header of [`multipart`], blank line included (BODY[HEADER]).
const MULTIPART_HEADER: &str = "From: Bob <bob@example.com>\r\n\
To: demo@localhost\r\n\
Subject: multipart with attachment\r\n\
Message-ID: <multipart@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"=_b0undary\"\r\n\
\r\n";

/// multipart/mixed: a UTF-8 text part and a base64 attachment of a few KB.
fn multipart() -> Vec<u8> {
    let data: Vec<u8> = (0..6000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let mut message = String::from(MULTIPART_HEADER);
    message.push_str("This is a multi-part message in MIME format.\r\n");
    message.push_str("--=_b0undary\r\nContent-Type: text/plain; charset=utf-8\r\n");
    message.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    message.push_str(MULTIPART_TEXT);
    message.push_str("\r\n--=_b0undary\r\n");
    message.push_str("Content-Type: application/octet-stream; name=\"data.bin\"\r\n");
    message.push_str("Content-Transfer-Encoding: base64\r\n");
    message.push_str("Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n");
    let encoded = base64(&data);
    for line in encoded.as_bytes().chunks(76) {
        message.push_str(std::str::from_utf8(line).unwrap());
        message.push_str("\r\n");
    }
    message.push_str("--=_b0undary--\r\n");
    message.into_bytes()
}

/// About 300 KB of text: more than one read or write of any buffer on the way.
fn large() -> Vec<u8> {
    let mut message = String::from(
        "From: Frank <frank@example.com>\r\nTo: demo@localhost\r\nSubject: large\r\n\
         Message-ID: <large@example.com>\r\n\r\n",
    );
    for n in 0..4000 {
        message.push_str(&format!(
            "line {n:05}: the quick brown fox jumps over the lazy dog, {}\r\n",
            n * 31 % 977
        ));
    }
    message.into_bytes()
}

/// `data` in base64 (RFC 4648, padded, one line), from Python's base64 module: the library's
/// own encoder is private to it, and an independent one is the better check anyway.
fn base64(data: &[u8]) -> String {
    let encoded = run_python(
        "import base64, sys\nprint(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())",
        [hex(data)],
    );
    encoded.trim_end().to_owned()
}

/// LF line ends to CRLF (the input must have no CR).
fn crlf(lf: &[u8]) -> Vec<u8> {
    assert!(!lf.contains(&b'\r'), "expected LF line ends only");
    support_shared::crlf(lf)
}

/// The message without the `X-TUID:` header line that mbsync adds to every message it
/// copies (its tracking id, at the end of the header), in whatever line ends it has.
fn without_tuid(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut in_header = true;
    for line in message.split_inclusive(|&b| b == b'\n') {
        if in_header && (line == b"\n" || line == b"\r\n") {
            in_header = false;
        }
        if in_header && line.starts_with(b"X-TUID: ") {
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

/// A message as mbsync stores it in a Maildir, turned back into what the server has: mbsync
/// writes LF line ends and adds its X-TUID header, nothing else.
fn from_near_side(local: &[u8]) -> Vec<u8> {
    crlf(&without_tuid(local))
}

// ---- Server with a certificate made here ----

/// A self-signed certificate for `localhost` and 127.0.0.1, in PEM files.
struct Certificate {
    _dir: TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl Certificate {
    fn new() -> Certificate {
        let dir = tempfile::tempdir().expect("tempdir");
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("make a certificate");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        fs::write(&cert, certified.cert.pem()).expect("write cert.pem");
        fs::write(&key, certified.signing_key.serialize_pem()).expect("write key.pem");
        Certificate {
            _dir: dir,
            cert,
            key,
        }
    }

    fn cert_str(&self) -> &str {
        self.cert.to_str().expect("temp paths are UTF-8")
    }
}

/// The example server with `certificate` configured under `[tls]`.
fn start_server(certificate: &Certificate) -> ExampleServer {
    let server = ExampleServer::start_with(&format!(
        "[tls]\ncert = {}\nkey = {}\n",
        toml_str(&certificate.cert),
        toml_str(&certificate.key)
    ));
    assert!(
        !server.stdout().iter().any(|l| l.contains("self-signed")),
        "the server made its own certificate instead of using [tls]:\n{}",
        server.stdout().join("\n")
    );
    server
}

/// demo's Maildir on the server side.
fn server_maildir(server: &ExampleServer) -> PathBuf {
    server.maildir().join(USER)
}

// ---- imaplib: setting the scene and reading the server's state ----

const IMAPLIB_PRELUDE: &str = r#"
import binascii, imaplib, re, sys
PORT, USER, PASSWORD = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ARGS = sys.argv[4:]
def ok(result):
    typ, data = result
    if typ != 'OK':
        raise SystemExit('IMAP command failed: %s %r' % (typ, data))
    return data
def quote(name):
    return '"' + name.replace('\\', '\\\\').replace('"', '\\"') + '"'
M = imaplib.IMAP4('127.0.0.1', PORT, timeout=60)
ok(M.login(USER, PASSWORD))
"#;

/// Run `body` (Python; `M` is a logged-in imaplib client on the plain port, `ok` checks a
/// result, `ARGS` holds `args`) and return its stdout. Fails the test if the script fails.
#[track_caller]
fn imaplib(server: &ExampleServer, body: &str, args: &[String]) -> String {
    let script = format!("{IMAPLIB_PRELUDE}{}\nM.logout()\n", dedent(body));
    let port = server.imap.port().to_string();
    run_python(
        &script,
        [port.as_str(), USER, PASSWORD]
            .into_iter()
            .chain(args.iter().map(String::as_str)),
    )
}

/// One message as imaplib reads it with UID FETCH (FLAGS BODY.PEEK[]).
#[derive(Clone, PartialEq, Eq)]
struct ServerMessage {
    flags: BTreeSet<String>,
    body: Vec<u8>,
}

impl fmt::Debug for ServerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.body[..self.body.len().min(80)];
        write!(
            f,
            "{:?} {} bytes {:?}",
            self.flags,
            self.body.len(),
            String::from_utf8_lossy(shown)
        )
    }
}

/// The server's state as a client sees it: every mailbox with its STATUS, every message with
/// its UID, flags and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerView {
    /// Mailbox name → `(MESSAGES n UIDNEXT n UIDVALIDITY n)`.
    mailboxes: BTreeMap<String, String>,
    messages: BTreeMap<(String, u32), ServerMessage>,
}

impl ServerView {
    fn read(server: &ExampleServer) -> ServerView {
        let out = imaplib(
            server,
            r#"
            boxes = []
            for line in ok(M.list('""', '*')):
                m = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
                if m is None:
                    raise SystemExit('unexpected LIST line %r' % line)
                if b'\\Noselect' in m.group(1) or b'\\NonExistent' in m.group(1):
                    continue
                name = m.group(2).decode()
                if name.startswith('"'):
                    name = name[1:-1].replace('\\"', '"').replace('\\\\', '\\')
                boxes.append(name)
            for name in sorted(boxes):
                status = ok(M.status(quote(name), '(MESSAGES UIDNEXT UIDVALIDITY)'))[0].decode()
                print('BOX\t%s\t%s' % (name, status[status.index('('):]))
                ok(M.select(quote(name), readonly=True))
                data = ok(M.uid('FETCH', '1:*', '(UID FLAGS BODY.PEEK[])'))
                i = 0
                while i < len(data):
                    item = data[i]
                    i += 1
                    if item is None:
                        continue
                    if not isinstance(item, tuple):
                        raise SystemExit('unexpected FETCH data %r' % (item,))
                    text = item[0]
                    if i < len(data) and isinstance(data[i], bytes):
                        text += data[i]
                        i += 1
                    text = text.decode()
                    uid = re.search(r'UID (\d+)', text).group(1)
                    # \Recent is this session's, not stored with the message: left out.
                    flags = [f for f in re.search(r'FLAGS \(([^)]*)\)', text).group(1).split() if f != '\\Recent']
                    print('MSG\t%s\t%s\t%s\t%s' % (name, uid, ' '.join(flags), binascii.hexlify(item[1]).decode()))
            "#,
            &[],
        );
        let mut view = ServerView {
            mailboxes: BTreeMap::new(),
            messages: BTreeMap::new(),
        };
        for line in out.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields[..] {
                ["BOX", name, status] => {
                    view.mailboxes.insert(name.to_owned(), status.to_owned());
                }
                ["MSG", name, uid, flags, body] => {
                    let message = ServerMessage {
                        flags: flags.split_whitespace().map(str::to_owned).collect(),
                        body: unhex(body),
                    };
                    let key = (name.to_owned(), uid.parse().expect("UID"));
                    assert!(
                        view.messages.insert(key, message).is_none(),
                        "UID listed twice: {line:.100}"
                    );
                }
                _ => panic!("unexpected imaplib output line {line:.200}"),
            }
        }
        view
    }

    /// The messages of `mailbox`.
    fn mailbox(&self, mailbox: &str) -> Vec<(u32, &ServerMessage)> {
        self.messages
            .iter()
            .filter(|((name, _), _)| name == mailbox)
            .map(|((_, uid), message)| (*uid, message))
            .collect()
    }

    /// The only message of `mailbox` that `matches`.
    #[track_caller]
    fn find(&self, mailbox: &str, matches: impl Fn(&[u8]) -> bool) -> (u32, &ServerMessage) {
        let found: Vec<_> = self
            .mailbox(mailbox)
            .into_iter()
            .filter(|(_, m)| matches(&m.body))
            .collect();
        match found[..] {
            [one] => one,
            _ => panic!("expected one matching message in {mailbox}, found {found:?}\n{self:#?}"),
        }
    }
}

/// `\Seen \Flagged` → a set of flag names.
fn flag_set(flags: &str) -> BTreeSet<String> {
    flags.split_whitespace().map(str::to_owned).collect()
}

// ---- Directory trees ----

/// Every file (with its bytes) and directory (`None`) under `root`, by relative path.
fn tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .expect("UTF-8 names")
                .to_owned();
            if path.is_dir() {
                out.insert(relative, None);
                walk(root, &path, out);
            } else {
                out.insert(relative, Some(fs::read(&path).expect("read file")));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// What differs between two trees, for failure messages.
fn tree_diff(
    before: &BTreeMap<String, Option<Vec<u8>>>,
    after: &BTreeMap<String, Option<Vec<u8>>>,
) -> String {
    let mut lines = Vec::new();
    for (path, content) in before {
        match after.get(path) {
            None => lines.push(format!("- {path}")),
            Some(other) if other != content => {
                lines.push(format!("~ {path}"));
                // Small text files (mbsync's state) are shown whole.
                for (when, bytes) in [("before", content), ("after", other)] {
                    if let Some(bytes) = bytes.as_ref().filter(|b| b.len() < 4096) {
                        lines.push(format!("  {when}:\n{}", String::from_utf8_lossy(bytes)));
                    }
                }
            }
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        lines.push(format!("+ {path}"));
    }
    lines.join("\n")
}

/// A message in the local Maildir tree.
#[derive(Clone)]
struct LocalMessage {
    /// The mailbox: the Maildir's path relative to the root (`INBOX`, `Archive/2024`).
    mailbox: String,
    path: PathBuf,
    /// The letters after `:2,` (none for a message in `new/` without an info part).
    letters: BTreeSet<char>,
    content: Vec<u8>,
}

impl fmt::Debug for LocalMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.content[..self.content.len().min(80)];
        write!(
            f,
            "{} ({} bytes) {:?}",
            self.path.display(),
            self.content.len(),
            String::from_utf8_lossy(shown)
        )
    }
}

/// Every message under `root`: files in `cur/` and `new/` of any Maildir.
fn local_messages(root: &Path) -> Vec<LocalMessage> {
    let mut messages = Vec::new();
    for (relative, content) in tree(root) {
        let Some(content) = content else { continue };
        let path = root.join(&relative);
        let parent = path.parent().unwrap();
        let sub = parent.file_name().unwrap().to_str().unwrap();
        if sub != "cur" && sub != "new" {
            continue;
        }
        let mailbox = parent
            .parent()
            .unwrap()
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let name = path.file_name().unwrap().to_str().unwrap();
        let letters = match name.rsplit_once(":2,") {
            Some((_, letters)) => letters.chars().collect(),
            None => BTreeSet::new(),
        };
        messages.push(LocalMessage {
            mailbox,
            path,
            letters,
            content,
        });
    }
    messages
}

/// The Maildirs (directories with `cur`, `new` and `tmp`) under `root`, by relative path.
fn local_mailboxes(root: &Path) -> BTreeSet<String> {
    tree(root)
        .into_iter()
        .filter(|(relative, content)| {
            content.is_none()
                && ["cur", "new", "tmp"]
                    .iter()
                    .all(|sub| root.join(relative).join(sub).is_dir())
        })
        .map(|(relative, _)| relative)
        .collect()
}

/// The only local message in `mailbox` that is `original` as mbsync stores it.
#[track_caller]
fn find_local<'a>(
    messages: &'a [LocalMessage],
    mailbox: &str,
    original: &[u8],
) -> &'a LocalMessage {
    let found: Vec<&LocalMessage> = messages
        .iter()
        .filter(|m| m.mailbox == mailbox && from_near_side(&m.content) == original)
        .collect();
    match found[..] {
        [one] => one,
        _ => panic!(
            "expected one local copy in {mailbox} of\n{}\nfound {}; local messages: {:#?}",
            String::from_utf8_lossy(&original[..original.len().min(300)]),
            found.len(),
            messages
                .iter()
                .map(|m| (m.path.display().to_string(), m.content.len()))
                .collect::<Vec<_>>()
        ),
    }
}

/// The Maildir letters for IMAP system flags.
fn letters(flags: &[&str]) -> BTreeSet<char> {
    flags
        .iter()
        .map(|flag| match *flag {
            "\\Draft" => 'D',
            "\\Flagged" => 'F',
            "\\Answered" => 'R',
            "\\Seen" => 'S',
            "\\Deleted" => 'T',
            other => panic!("no Maildir letter for {other}"),
        })
        .collect()
}

/// Rename a local message to carry `letters` (moving it to `cur/`, as a mail reader does).
fn set_local_letters(message: &LocalMessage, letters: &str) -> PathBuf {
    let name = message.path.file_name().unwrap().to_str().unwrap();
    let base = name.rsplit_once(":2,").map_or(name, |(base, _)| base);
    let maildir = message.path.parent().unwrap().parent().unwrap();
    let target = maildir.join("cur").join(format!("{base}:2,{letters}"));
    fs::rename(&message.path, &target).expect("rename the local message");
    target
}

// ---- mbsync ----

/// An mbsync set-up: a config file and a local Maildir tree in a temp dir.
struct Mbsync {
    dir: TempDir,
    config: PathBuf,
    local: PathBuf,
    runs: usize,
}

/// How mbsync reaches the server.
#[derive(Clone, Copy)]
enum Security {
    /// `SSLType STARTTLS` on the plain port.
    Starttls,
    /// `SSLType IMAPS` on the implicit-TLS port.
    Imaps,
}

impl Mbsync {
    /// Far side: the server as demo, over TLS that trusts `certificate` only (mbsync checks
    /// the host name too, hence `localhost`, which the certificate names). Near side: a Maildir
    /// tree with hierarchical folders as directories. Every mailbox, both ways, with creation
    /// and expunging on both sides.
    fn new(server: &ExampleServer, certificate: &Certificate, security: Security) -> Mbsync {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = dir.path().join("mail");
        fs::create_dir(&local).expect("mkdir mail");
        let (ssl_type, port) = match security {
            Security::Starttls => ("STARTTLS", server.imap.port()),
            Security::Imaps => ("IMAPS", server.imaps.port()),
        };
        let text = format!(
            "IMAPAccount remote\n\
             Host localhost\n\
             Port {port}\n\
             User {USER}\n\
             Pass {PASSWORD}\n\
             SSLType {ssl_type}\n\
             SystemCertificates no\n\
             CertificateFile \"{cert}\"\n\
             Timeout 120\n\
             \n\
             IMAPStore remote\n\
             Account remote\n\
             \n\
             MaildirStore local\n\
             Path \"{local}/\"\n\
             Inbox \"{local}/INBOX\"\n\
             SubFolders Verbatim\n\
             \n\
             Channel everything\n\
             Far :remote:\n\
             Near :local:\n\
             Patterns *\n\
             Create Both\n\
             Expunge Both\n\
             SyncState *\n",
            cert = certificate.cert_str(),
            local = local.to_str().expect("UTF-8 temp path"),
        );
        let config = dir.path().join("mbsyncrc");
        fs::write(&config, text).expect("write mbsyncrc");
        Mbsync {
            dir,
            config,
            local,
            runs: 0,
        }
    }

    /// `mbsync -a` with driver calls and protocol traffic logged (`-Ddn`: metadata and
    /// commands, no message bodies), within [`MBSYNC_BOUND`].
    fn run(&mut self) -> MbsyncRun {
        self.runs += 1;
        let out_path = self.dir.path().join(format!("run{}.out", self.runs));
        let err_path = self.dir.path().join(format!("run{}.err", self.runs));
        let mut child = Command::new("mbsync")
            .arg("-c")
            .arg(&self.config)
            .arg("-a")
            .arg("-Ddn")
            // Nothing of the user running the tests: no ~/.mbsyncrc, no state in ~.
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).expect("create mbsync stdout file"))
            .stderr(File::create(&err_path).expect("create mbsync stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("{}", support_shared::missing("mbsync", &e)));
        let deadline = Instant::now() + MBSYNC_BOUND;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for mbsync") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mbsync run {} did not finish within {MBSYNC_BOUND:?}:\n{}\n{}",
                    self.runs,
                    fs::read_to_string(&out_path).unwrap_or_default(),
                    fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        MbsyncRun {
            number: self.runs,
            status,
            stdout: fs::read_to_string(&out_path).expect("read mbsync stdout"),
            stderr: fs::read_to_string(&err_path).expect("read mbsync stderr"),
        }
    }
}

struct MbsyncRun {
    number: usize,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl MbsyncRun {
    #[track_caller]
    fn assert_success(&self) {
        assert!(
            self.status.success(),
            "mbsync run {} failed ({}):\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.number,
            self.status,
            self.stderr,
            self.stdout
        );
        // Errors and warnings go to stderr; notices ("no UIDVALIDITY, creating new") too,
        // so only those two kinds are refused. A refused connection to another address of
        // localhost (::1: the server listens on 127.0.0.1) is reported, then the next tried.
        let complaints: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.starts_with("Cannot connect to localhost ([::1]"))
            .filter(|l| l.contains("rror") || l.contains("arning"))
            .collect();
        assert!(
            complaints.is_empty(),
            "mbsync run {} complained:\n{}\n--- stdout ---\n{}",
            self.number,
            complaints.join("\n"),
            self.stdout
        );
    }

    /// How often mbsync's sync engine called a driver operation (`-Dd` logs each call as
    /// `Enter <name>`): `fetch_msg`, `store_msg`, `set_msg_flags`, `trash_msg`, `create_box`...
    fn calls(&self, operation: &str) -> usize {
        self.stdout
            .lines()
            .filter(|line| {
                line.split_once("Enter ")
                    .is_some_and(|(_, rest)| rest.split([',', ' ']).next() == Some(operation))
            })
            .count()
    }

    /// The IMAP commands mbsync sent (`-Dn` logs them as `F: >>> <tag> <command>`).
    fn commands(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|line| line.split_once(">>> "))
            .map(|(_, command)| command)
            .collect()
    }

    /// Everything it printed, for failure messages.
    fn transcript(&self) -> String {
        format!(
            "--- mbsync run {} stdout ---\n{}\n--- stderr ---\n{}",
            self.number, self.stdout, self.stderr
        )
    }
}

/// The driver operations that change a mailbox or copy a message.
const CHANGING_OPERATIONS: [&str; 7] = [
    "fetch_msg",
    "store_msg",
    "set_msg_flags",
    "trash_msg",
    "create_box",
    "delete_box",
    "find_new_msgs",
];

/// Everything a sync could change: the local tree, the server's Maildir files, and the server
/// as a client sees it.
struct Everything {
    /// The local tree, with the watermarks taken out of mbsync's state files.
    local: BTreeMap<String, Option<Vec<u8>>>,
    /// `MaxPulledUid` and `MaxPushedUid` of each state file.
    watermarks: BTreeMap<String, (u32, u32)>,
    server_files: BTreeMap<String, Option<Vec<u8>>>,
    server: ServerView,
}

impl Everything {
    /// mbsync raises a watermark (the highest UID it has looked at on a side) when it uploads
    /// a message only if the new UID directly follows it (isync's `assign_uid`: `if (uid ==
    /// maxuid + 1) maxuid = uid`). Where the server skipped UIDs (a message moved away keeps
    /// its UID used, as RFC 3501 section 2.3.1.1 requires), the next run raises it instead,
    /// with nothing else to do: so the watermarks are compared apart, and may only grow.
    fn capture(server: &ExampleServer, mbsync: &Mbsync) -> Everything {
        let mut local = tree(&mbsync.local);
        let mut watermarks = BTreeMap::new();
        for (path, content) in local.iter_mut() {
            if !path.ends_with(".mbsyncstate") {
                continue;
            }
            let Some(bytes) = content.as_mut() else {
                continue;
            };
            let text = String::from_utf8(bytes.clone()).expect("mbsync state is text");
            let (mut pulled, mut pushed) = (0, 0);
            let mut kept = String::new();
            for line in text.lines() {
                if let Some(value) = line.strip_prefix("MaxPulledUid ") {
                    pulled = value.parse().expect("MaxPulledUid");
                } else if let Some(value) = line.strip_prefix("MaxPushedUid ") {
                    pushed = value.parse().expect("MaxPushedUid");
                } else {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
            watermarks.insert(path.clone(), (pulled, pushed));
            *bytes = kept.into_bytes();
        }
        Everything {
            local,
            watermarks,
            server_files: tree(&server_maildir(server)),
            server: ServerView::read(server),
        }
    }
}

/// Run mbsync once more and check that it changes nothing on either side and copies nothing.
#[track_caller]
fn assert_sync_changes_nothing(server: &ExampleServer, mbsync: &mut Mbsync) {
    let before = Everything::capture(server, mbsync);
    let run = mbsync.run();
    run.assert_success();
    let after = Everything::capture(server, mbsync);
    assert!(
        before.local == after.local,
        "a sync with nothing to do changed the local tree:\n{}\n{}",
        tree_diff(&before.local, &after.local),
        run.transcript()
    );
    for (path, (pulled, pushed)) in &before.watermarks {
        let (pulled_after, pushed_after) = after.watermarks[path];
        assert!(
            pulled_after >= *pulled && pushed_after >= *pushed,
            "{path}: watermarks went down from {pulled}/{pushed} to {pulled_after}/{pushed_after}"
        );
    }
    assert!(
        before.server_files == after.server_files,
        "a sync with nothing to do changed the server's Maildir:\n{}\n{}",
        tree_diff(&before.server_files, &after.server_files),
        run.transcript()
    );
    assert_eq!(
        before.server,
        after.server,
        "a sync with nothing to do changed the server\n{}",
        run.transcript()
    );
    for operation in CHANGING_OPERATIONS {
        assert_eq!(
            run.calls(operation),
            0,
            "a sync with nothing to do called {operation}\n{}",
            run.transcript()
        );
    }
    let changing: Vec<&str> = run
        .commands()
        .into_iter()
        .filter(|c| {
            [
                "APPEND",
                "STORE",
                "COPY",
                "MOVE",
                "EXPUNGE",
                "CREATE",
                "DELETE",
                "RENAME",
                "UID STORE",
                "UID COPY",
                "UID MOVE",
                "UID EXPUNGE",
                "UID FETCH",
            ]
            .iter()
            .any(|verb| {
                c.split_once(' ')
                    .is_some_and(|(_, rest)| rest.starts_with(verb))
            }) && !c.ends_with("(UID FLAGS)")
        })
        .collect();
    assert!(
        changing.is_empty(),
        "a sync with nothing to do sent {changing:?}\n{}",
        run.transcript()
    );
}

// ---- curl ----

/// Run curl as demo (`-v`: the protocol exchange is in stderr, shown when it fails) and return
/// its output; asserts curl succeeded.
#[track_caller]
fn curl_ok(args: &[&str]) -> Vec<u8> {
    curl_verbose(args).stdout
}

/// [`curl_ok`], returning stderr (the exchange, `< ` for what the server sent) as well.
#[track_caller]
fn curl_verbose(args: &[&str]) -> std::process::Output {
    support_example::curl_as_demo(&[&["-v"], args].concat())
}

/// Run curl and return its output as text.
#[track_caller]
fn curl_text(args: &[&str]) -> String {
    String::from_utf8(curl_ok(args)).expect("curl printed UTF-8")
}

/// The lines of a response, without line ends.
fn lines(text: &str) -> Vec<&str> {
    text.lines().map(|l| l.trim_end_matches('\r')).collect()
}

/// UIDVALIDITY of `mailbox` as imaplib's STATUS reports it.
fn uidvalidity(server: &ExampleServer, mailbox: &str) -> String {
    let out = imaplib(
        server,
        r#"
        status = ok(M.status(quote(ARGS[0]), '(UIDVALIDITY)'))[0].decode()
        print(re.search(r'UIDVALIDITY (\d+)', status).group(1))
        "#,
        &[mailbox.to_owned()],
    );
    out.trim().to_owned()
}

// ---- Tests: curl ----

/// Three messages, the first expunged so that UIDs and sequence numbers differ, and a folder
/// whose name needs quoting; LIST, fetch by UID and by sequence number (whole message and
/// sections), custom SEARCH, UID SEARCH and EXAMINE over the plain port.
#[test]
fn curl_lists_fetches_searches_and_examines() {
    let certificate = Certificate::new();
    let server = start_server(&certificate);
    let first = server.deliver(PLAIN);
    let multipart = multipart();
    let second = server.deliver(&multipart);
    let third = server.deliver(UTF8);
    imaplib(
        &server,
        r#"
        ok(M.create(quote('Lists/rust lang')))
        ok(M.select('INBOX'))
        ok(M.uid('STORE', ARGS[0], '+FLAGS', r'(\Deleted)'))
        ok(M.expunge())
        "#,
        &[first.to_string()],
    );
    let base = format!("imap://{}", server.imap);

    // LIST: every mailbox, hierarchy delimiter "/", names quoted where they must be.
    let list = curl_text(&[&format!("{base}/")]);
    let list = lines(&list);
    for expected in [
        "* LIST (\\HasNoChildren) \"/\" INBOX",
        "* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts",
        "* LIST (\\HasNoChildren \\Junk) \"/\" Junk",
        "* LIST (\\HasNoChildren \\Sent) \"/\" Sent",
        "* LIST (\\HasNoChildren \\Trash) \"/\" Trash",
        "* LIST (\\HasNoChildren) \"/\" \"Lists/rust lang\"",
    ] {
        assert!(
            list.contains(&expected),
            "{expected:?} not in LIST:\n{list:#?}"
        );
    }
    assert!(
        list.iter().any(|l| l.starts_with("* LIST (")
            && l.ends_with(") \"/\" Lists")
            && l.contains("\\HasChildren")),
        "Lists (the parent) not listed with \\HasChildren:\n{list:#?}"
    );

    // Whole messages, byte for byte: by UID (UID FETCH) and by sequence number (FETCH).
    let inbox = format!("{base}/INBOX");
    assert_same_bytes(
        &curl_ok(&[&format!("{inbox};UID={second}")]),
        &multipart,
        "INBOX;UID=second",
    );
    assert_same_bytes(
        &curl_ok(&[&format!("{inbox};UID={third}")]),
        UTF8,
        "INBOX;UID=third",
    );
    assert_same_bytes(
        &curl_ok(&[&format!("{inbox};MAILINDEX=1")]),
        &multipart,
        "INBOX;MAILINDEX=1 (the second delivered: the first is expunged)",
    );
    assert_same_bytes(
        &curl_ok(&[&format!("{inbox};MAILINDEX=2")]),
        UTF8,
        "INBOX;MAILINDEX=2",
    );
    // Sections: the header (with its blank line) and the first MIME part's body.
    assert_same_bytes(
        &curl_ok(&[&format!("{inbox};UID={second};SECTION=HEADER")]),
        MULTIPART_HEADER.as_bytes(),
        "BODY[HEADER]",
    );
    assert_same_bytes(
        &curl_ok(&[&format!("{inbox};UID={second};SECTION=1")]),
        MULTIPART_TEXT.as_bytes(),
        "BODY[1]",
    );

    // Custom commands in the selected INBOX: curl prints the untagged responses.
    let search = curl_text(&["-X", "UID SEARCH ALL", &inbox]);
    assert_eq!(
        lines(&search),
        [format!("* SEARCH {second} {third}")],
        "UID SEARCH ALL"
    );
    let search = curl_text(&["-X", "SEARCH ALL", &inbox]);
    assert_eq!(lines(&search), ["* SEARCH 1 2"], "SEARCH ALL");
    let search = curl_text(&["-X", "SEARCH SUBJECT multipart", &inbox]);
    assert_eq!(lines(&search), ["* SEARCH 1"], "SEARCH SUBJECT multipart");
    let search = curl_text(&["-X", "UID SEARCH SUBJECT multipart", &inbox]);
    assert_eq!(
        lines(&search),
        [format!("* SEARCH {second}")],
        "UID SEARCH SUBJECT"
    );
    // The UTF-8 subject is raw 8-bit: an ASCII substring of it must match.
    let search = curl_text(&["-X", "SEARCH SUBJECT \"aus K\"", &inbox]);
    assert_eq!(
        lines(&search),
        ["* SEARCH 2"],
        "SEARCH SUBJECT in a UTF-8 header"
    );
    let search = curl_text(&["-X", "SEARCH SUBJECT nowhere", &inbox]);
    assert_eq!(lines(&search), ["* SEARCH"], "SEARCH without a match");

    // EXAMINE from the authenticated state (no mailbox in the URL).
    let out = curl_verbose(&["-X", "EXAMINE INBOX", &format!("{base}/")]);
    let exchange = stderr(&out);
    assert!(
        exchange
            .lines()
            .any(|l| l.starts_with("< A") && l.contains(" OK [READ-ONLY]")),
        "EXAMINE did not complete with OK [READ-ONLY]:\n{exchange}"
    );
    let examine = String::from_utf8(out.stdout).expect("UTF-8");
    let examine = lines(&examine);
    let validity = uidvalidity(&server, "INBOX");
    for expected in [
        "* 2 EXISTS".to_owned(),
        format!("* OK [UIDVALIDITY {validity}] UIDs valid"),
        format!("* OK [UIDNEXT {}] Predicted next UID", third + 1),
    ] {
        assert!(
            examine.contains(&expected.as_str()),
            "{expected:?} not in EXAMINE:\n{examine:#?}"
        );
    }
    assert!(
        examine
            .iter()
            .any(|l| l.starts_with("* FLAGS (") && l.contains("\\Seen")),
        "no FLAGS in EXAMINE:\n{examine:#?}"
    );
    assert!(
        examine
            .iter()
            .any(|l| l.starts_with("* OK [PERMANENTFLAGS (")),
        "no PERMANENTFLAGS in EXAMINE:\n{examine:#?}"
    );
}

/// `curl -T` APPENDs: a small message into INBOX and a large one into a folder whose name
/// needs quoting; both arrive byte for byte, as imaplib and curl read them back.
#[test]
fn curl_uploads_are_appended() {
    let certificate = Certificate::new();
    let server = start_server(&certificate);
    imaplib(&server, "ok(M.create(quote('Lists/rust lang')))", &[]);
    let files = tempfile::tempdir().expect("tempdir");
    let small = files.path().join("small.eml");
    fs::write(&small, PLAIN).unwrap();
    let big_message = large();
    let big = files.path().join("large.eml");
    fs::write(&big, &big_message).unwrap();
    let base = format!("imap://{}", server.imap);

    curl_ok(&["-T", small.to_str().unwrap(), &format!("{base}/INBOX")]);
    curl_ok(&[
        "-T",
        big.to_str().unwrap(),
        &format!("{base}/Lists/rust%20lang"),
    ]);
    assert_eq!(
        server.inbox_len(USER),
        1,
        "the store sees the appended message"
    );

    let view = ServerView::read(&server);
    let inbox = view.mailbox("INBOX");
    assert_eq!(inbox.len(), 1, "{view:#?}");
    let (uid, message) = inbox[0];
    assert_same_bytes(&message.body, PLAIN, "appended to INBOX, read by imaplib");
    // curl appends with (\Seen).
    assert_eq!(
        message.flags,
        flag_set("\\Seen"),
        "flags of the appended message"
    );
    let folder = view.mailbox("Lists/rust lang");
    assert_eq!(folder.len(), 1, "{view:#?}");
    let (big_uid, message) = folder[0];
    assert_same_bytes(
        &message.body,
        &big_message,
        "appended to the folder, read by imaplib",
    );

    assert_same_bytes(
        &curl_ok(&[&format!("{base}/INBOX;UID={uid}")]),
        PLAIN,
        "appended to INBOX, read by curl",
    );
    assert_same_bytes(
        &curl_ok(&[&format!("{base}/Lists/rust%20lang;UID={big_uid}")]),
        &big_message,
        "appended to the folder, read by curl",
    );
}

/// curl with the server's certificate as its only trust anchor: implicit TLS (imaps://) and
/// STARTTLS (--ssl-reqd), under the certificate's names; without the anchor it refuses.
#[test]
fn curl_over_tls_verifies_the_configured_certificate() {
    let certificate = Certificate::new();
    let server = start_server(&certificate);
    let uid = server.deliver(UTF8);
    let cacert = certificate.cert_str();
    let imaps_port = server.imaps.port();
    let imap_port = server.imap.port();
    let resolve_imaps = format!("localhost:{imaps_port}:127.0.0.1");
    let resolve_imap = format!("localhost:{imap_port}:127.0.0.1");

    // Implicit TLS, verified against the name localhost.
    let list = curl_text(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve_imaps,
        &format!("imaps://localhost:{imaps_port}/"),
    ]);
    assert!(
        lines(&list).contains(&"* LIST (\\HasNoChildren) \"/\" INBOX"),
        "LIST over imaps:\n{list}"
    );
    assert_same_bytes(
        &curl_ok(&[
            "--cacert",
            cacert,
            "--resolve",
            &resolve_imaps,
            &format!("imaps://localhost:{imaps_port}/INBOX;UID={uid}"),
        ]),
        UTF8,
        "fetched over imaps",
    );
    // The certificate also names the address.
    assert_same_bytes(
        &curl_ok(&[
            "--cacert",
            cacert,
            &format!("imaps://127.0.0.1:{imaps_port}/INBOX;UID={uid}"),
        ]),
        UTF8,
        "fetched over imaps by address",
    );

    // STARTTLS, required.
    let out = curl(&[
        "-sS",
        "-v",
        "-u",
        "demo:demo",
        "--ssl-reqd",
        "--cacert",
        cacert,
        "--resolve",
        &resolve_imap,
        &format!("imap://localhost:{imap_port}/INBOX;UID={uid}"),
    ]);
    assert!(out.status.success(), "STARTTLS fetch: {}", stderr(&out));
    assert_same_bytes(&out.stdout, UTF8, "fetched after STARTTLS");
    assert!(
        stderr(&out).contains("STARTTLS"),
        "curl did not use STARTTLS:\n{}",
        stderr(&out)
    );

    // Verification is real: without the anchor (the system's trust store only) curl refuses
    // the certificate: CURLE_PEER_FAILED_VERIFICATION, exit 60.
    for (url, resolve) in [
        (format!("imaps://localhost:{imaps_port}/"), &resolve_imaps),
        (format!("imap://localhost:{imap_port}/"), &resolve_imap),
    ] {
        let out = curl(&[
            "-sS",
            "-u",
            "demo:demo",
            "--ssl-reqd",
            "--resolve",
            resolve,
            &url,
        ]);
        assert_eq!(
            out.status.code(),
            Some(60),
            "{url}: expected a verification failure: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "{url}: output without trust");
    }
}

// ---- Tests: mbsync ----

/// The scene for the mbsync tests: messages with flags in INBOX (set with STORE), one moved
/// to `Archive`, one appended to `Archive/2024`. Returns the INBOX UIDs of PLAIN, multipart,
/// UTF8, ANSWERED and large, in that order.
fn mbsync_scene(server: &ExampleServer) -> [u32; 5] {
    let uids = [
        server.deliver(PLAIN),
        server.deliver(&multipart()),
        server.deliver(UTF8),
        server.deliver(ANSWERED),
        server.deliver(&large()),
    ];
    let to_archive = server.deliver(TO_ARCHIVE);
    let mut args: Vec<String> = uids.iter().map(u32::to_string).collect();
    args.push(to_archive.to_string());
    args.push(hex(NESTED));
    imaplib(
        server,
        r#"
        ok(M.create('Archive'))
        ok(M.create(quote('Archive/2024')))
        ok(M.select('INBOX'))
        plain, multipart, utf8, answered, large, to_archive, nested = ARGS
        ok(M.uid('STORE', multipart, '+FLAGS', r'(\Seen)'))
        ok(M.uid('STORE', utf8, '+FLAGS', r'(\Seen \Flagged)'))
        ok(M.uid('STORE', answered, '+FLAGS', r'(\Answered \Seen)'))
        ok(M.uid('STORE', large, '+FLAGS', r'(\Seen)'))
        ok(M.uid('MOVE', to_archive, 'Archive'))
        ok(M.append(quote('Archive/2024'), r'(\Flagged \Draft)', None, binascii.unhexlify(nested)))
        "#,
        &args,
    );
    uids
}

/// Full two-way sync with mbsync over STARTTLS: the first run copies every mailbox and
/// message with its flags; a second run changes nothing; changes on both sides (local flags,
/// a local new message and folder, a remote expunge and flag) propagate on a third run; a
/// fourth again changes nothing.
#[test]
fn mbsync_syncs_both_ways_and_a_second_sync_changes_nothing() {
    let certificate = Certificate::new();
    let server = start_server(&certificate);
    let [plain_uid, multipart_uid, utf8_uid, _answered_uid, large_uid] = mbsync_scene(&server);
    let multipart = multipart();
    let large = large();

    // The scene as the server shows it, before any sync.
    let view = ServerView::read(&server);
    let expected: [(&str, &[u8], &[&str]); 7] = [
        ("INBOX", PLAIN, &[]),
        ("INBOX", &multipart, &["\\Seen"]),
        ("INBOX", UTF8, &["\\Seen", "\\Flagged"]),
        ("INBOX", ANSWERED, &["\\Answered", "\\Seen"]),
        ("INBOX", &large, &["\\Seen"]),
        ("Archive", TO_ARCHIVE, &[]),
        ("Archive/2024", NESTED, &["\\Flagged", "\\Draft"]),
    ];
    for (mailbox, message, flags) in expected {
        let (_, found) = view.find(mailbox, |body| body == message);
        assert_eq!(
            found.flags,
            flag_set(&flags.join(" ")),
            "server flags in {mailbox}"
        );
    }
    assert_eq!(view.messages.len(), expected.len(), "{view:#?}");
    let mailboxes: BTreeSet<String> = view.mailboxes.keys().cloned().collect();
    let all = [
        "Archive",
        "Archive/2024",
        "Drafts",
        "INBOX",
        "Junk",
        "Sent",
        "Trash",
    ];
    assert_eq!(mailboxes, all.iter().map(|s| s.to_string()).collect());

    // First run: everything arrives.
    let mut mbsync = Mbsync::new(&server, &certificate, Security::Starttls);
    let run = mbsync.run();
    run.assert_success();
    assert_eq!(
        run.calls("fetch_msg"),
        expected.len(),
        "{}",
        run.transcript()
    );
    assert_eq!(
        run.calls("store_msg"),
        expected.len(),
        "{}",
        run.transcript()
    );
    assert_eq!(
        local_mailboxes(&mbsync.local),
        mailboxes,
        "local folders after the first sync\n{}",
        run.transcript()
    );
    let local = local_messages(&mbsync.local);
    assert_eq!(local.len(), expected.len(), "local messages: {local:#?}");
    for (mailbox, message, flags) in expected {
        let copy = find_local(&local, mailbox, message);
        assert_eq!(
            copy.letters,
            letters(flags),
            "Maildir flags of {} for {flags:?}",
            copy.path.display()
        );
    }
    // The server is as it was: a pull changes nothing there.
    assert_eq!(
        ServerView::read(&server),
        view,
        "the first sync changed the server"
    );

    // Second run: nothing to do.
    assert_sync_changes_nothing(&server, &mut mbsync);

    // Changes on the near side: \Seen added to PLAIN, \Flagged taken off UTF8, a new message
    // in INBOX/new, a new folder with a message.
    let local = local_messages(&mbsync.local);
    set_local_letters(find_local(&local, "INBOX", PLAIN), "S");
    set_local_letters(find_local(&local, "INBOX", UTF8), "S");
    let local_new = mbsync.local.join("INBOX/new/1700000000.M1P1.nearside");
    fs::write(&local_new, LOCAL_NEW).unwrap();
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(mbsync.local.join("Local").join(sub)).unwrap();
    }
    fs::write(
        mbsync.local.join("Local/cur/1700000001.M2P1.nearside:2,S"),
        LOCAL_FOLDER,
    )
    .unwrap();
    // Changes on the far side: the multipart message expunged, the large one flagged.
    imaplib(
        &server,
        r#"
        ok(M.select('INBOX'))
        ok(M.uid('STORE', ARGS[0], '+FLAGS', r'(\Deleted)'))
        ok(M.expunge())
        ok(M.uid('STORE', ARGS[1], '+FLAGS', r'(\Flagged)'))
        "#,
        &[multipart_uid.to_string(), large_uid.to_string()],
    );

    // Third run: both ways.
    let run = mbsync.run();
    run.assert_success();
    assert_eq!(
        run.calls("store_msg"),
        2,
        "two local messages to upload\n{}",
        run.transcript()
    );
    let view = ServerView::read(&server);
    let flags_of = |uid: u32| &view.messages[&("INBOX".to_owned(), uid)].flags;
    assert_eq!(
        *flags_of(plain_uid),
        flag_set("\\Seen"),
        "local \\Seen reached the server"
    );
    assert_eq!(
        *flags_of(utf8_uid),
        flag_set("\\Seen"),
        "local -\\Flagged reached the server"
    );
    assert!(
        !view
            .messages
            .contains_key(&("INBOX".to_owned(), multipart_uid)),
        "the expunged message came back: {view:#?}"
    );
    let (_, uploaded) = view.find("INBOX", |body| without_tuid(body) == crlf(LOCAL_NEW));
    assert_eq!(
        uploaded.flags,
        flag_set(""),
        "flags of the uploaded message"
    );
    assert!(
        view.mailboxes.contains_key("Local"),
        "the local folder was not created on the server: {view:#?}"
    );
    let (_, uploaded) = view.find("Local", |body| without_tuid(body) == crlf(LOCAL_FOLDER));
    assert_eq!(
        uploaded.flags,
        flag_set("\\Seen"),
        "flags of the message in the new folder"
    );
    assert_eq!(view.mailbox("INBOX").len(), 5, "{view:#?}");

    let local = local_messages(&mbsync.local);
    assert!(
        !local
            .iter()
            .any(|m| m.mailbox == "INBOX" && from_near_side(&m.content) == multipart),
        "the message expunged on the server is still local: {local:#?}"
    );
    assert_eq!(
        find_local(&local, "INBOX", &large).letters,
        letters(&["\\Seen", "\\Flagged"]),
        "the server's \\Flagged reached the local copy"
    );
    // The local files keep their bytes (mbsync renames them to record UIDs).
    let kept: Vec<&LocalMessage> = local
        .iter()
        .filter(|m| m.mailbox == "INBOX" && m.content == LOCAL_NEW)
        .collect();
    assert_eq!(kept.len(), 1, "the local new message: {local:#?}");
    assert_eq!(
        local.len(),
        8,
        "local messages after the third sync (7, one expunged, two added): {local:#?}"
    );
    assert_eq!(
        local_mailboxes(&mbsync.local),
        view.mailboxes.keys().cloned().collect(),
        "local and server folders"
    );

    // Fourth run: nothing to do again.
    assert_sync_changes_nothing(&server, &mut mbsync);
}

/// mbsync over implicit TLS: one sync copies the scene, a second changes nothing.
#[test]
fn mbsync_over_implicit_tls() {
    let certificate = Certificate::new();
    let server = start_server(&certificate);
    mbsync_scene(&server);
    let view = ServerView::read(&server);

    let mut mbsync = Mbsync::new(&server, &certificate, Security::Imaps);
    let run = mbsync.run();
    run.assert_success();
    // isync 1.4 turns on COMPRESS=DEFLATE (RFC 4978) when offered: the whole sync ran
    // compressed.
    assert!(
        run.commands()
            .iter()
            .any(|c| c.ends_with(" COMPRESS DEFLATE")),
        "{}",
        run.transcript()
    );
    let local = local_messages(&mbsync.local);
    assert_eq!(
        local.len(),
        view.messages.len(),
        "local messages: {local:#?}"
    );
    for ((mailbox, _), message) in &view.messages {
        let copy = find_local(&local, mailbox, &message.body);
        let flags: Vec<&str> = message.flags.iter().map(String::as_str).collect();
        assert_eq!(copy.letters, letters(&flags), "{}", copy.path.display());
    }
    assert_sync_changes_nothing(&server, &mut mbsync);
}
