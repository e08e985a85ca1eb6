//! Support for driving the real example server binary (`examples/server.rs`) from tests: a
//! process harness with its own temporary data directory and ports, mail delivery through the
//! library's Maildir store, a raw line client, and wrappers around the external clients the
//! tests use (Python's poplib, curl).
//!
//! It runs Python through `tests/support_shared`: declare `mod support_shared;` beside
//! `mod support_example;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tempfile::TempDir;
use tower_mail::store::{Flags, INBOX, Maildir, Mailstore};

use crate::support_shared::run_python;

pub mod imaplib;

/// Bound for things that must happen "soon": a liveness bound, not a timing claim.
pub const SOON: Duration = Duration::from_secs(10);

/// Bound for the server to start: a debug build makes a certificate and hashes the first
/// user's password before it listens.
const STARTUP: Duration = Duration::from_secs(60);

/// The user the server creates on its first start.
pub const USER: &str = "demo";
pub const PASSWORD: &str = "demo";

/// `<target>/<profile>/examples/server`: a plain `cargo test` builds the examples before it
/// runs the tests, and test binaries live in `<target>/<profile>/deps/`.
///
/// A target filter (`cargo test --test example_server`) does not build the examples, and an
/// old binary would be tested silently: refuse one older than the sources it is built from.
pub fn server_binary() -> PathBuf {
    // Checked once per test run: sources edited while the tests run do not change the binary
    // they started with.
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(fresh_server_binary).clone()
}

fn fresh_server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary is in <target>/<profile>/deps");
    let binary = profile_dir.join("examples").join("server");
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run `cargo test` (which builds the examples) or `cargo build --example server`",
                binary.display()
            )
        });
    // Cargo lists the sources the binary was built from in its dep-info file.
    let dep_info = std::fs::read_to_string(binary.with_extension("d")).unwrap_or_default();
    if let Some(newer) = dep_info_sources(&dep_info).into_iter().find(|source| {
        std::fs::metadata(source)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified > built)
    }) {
        panic!(
            "{} is older than {}: run `cargo build --example server` first (a plain `cargo test` does)",
            binary.display(),
            newer.display()
        );
    }
    binary
}

/// The source files in a Makefile-style dep-info file (`target: dep dep ...`, spaces in paths
/// escaped with a backslash).
fn dep_info_sources(dep_info: &str) -> Vec<PathBuf> {
    let Some(first) = dep_info.lines().next() else {
        return Vec::new();
    };
    let Some((_, deps)) = first.split_once(": ") else {
        return Vec::new();
    };
    let mut sources = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' if !current.is_empty() => sources.push(PathBuf::from(std::mem::take(&mut current))),
            ' ' => {}
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        sources.push(PathBuf::from(current));
    }
    sources
}

/// A loopback port that was free a moment ago (for the metrics listener, whose address the
/// server does not print back).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// TOML string literal for a path (paths in a temp dir hold no quotes, but be exact anyway).
pub fn toml_str(path: &Path) -> String {
    let text = path.to_str().expect("temp paths are UTF-8");
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The example server running as a child process, with its own data directory.
///
/// Dropping it stops the process (SIGTERM, then SIGKILL if it does not exit).
pub struct ExampleServer {
    child: Option<Child>,
    dir: TempDir,
    /// POP3 with STLS.
    pub pop3: SocketAddr,
    /// POP3 over implicit TLS.
    pub pop3s: SocketAddr,
    /// IMAP with STARTTLS.
    pub imap: SocketAddr,
    /// IMAP over implicit TLS.
    pub imaps: SocketAddr,
    /// The Prometheus endpoint's address.
    pub metrics: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ExampleServer {
    /// Start the server with POP3 and IMAP on ephemeral ports, JSON logs, metrics on.
    pub fn start() -> ExampleServer {
        ExampleServer::start_with("")
    }

    /// [`start`](ExampleServer::start) with more TOML appended to the configuration (whole
    /// sections that the base configuration does not have, such as `[limits]`).
    pub fn start_with(extra_config: &str) -> ExampleServer {
        ExampleServer::start_listening("127.0.0.1:0", extra_config)
    }

    /// [`start_with`](ExampleServer::start_with), with the plain POP3 listener on
    /// `pop3_listen` (`"[::]:0"`: a dual-stack socket, where IPv4 clients arrive as
    /// IPv4-mapped IPv6 addresses).
    pub fn start_listening(pop3_listen: &str, extra_config: &str) -> ExampleServer {
        ExampleServer::start_configured(pop3_listen, "", extra_config)
    }

    /// [`start_with`](ExampleServer::start_with), with `auth_keys` (TOML `key = value` lines)
    /// added to the `[auth]` section, which the base configuration already has.
    pub fn start_with_auth(auth_keys: &str, extra_config: &str) -> ExampleServer {
        ExampleServer::start_configured("127.0.0.1:0", auth_keys, extra_config)
    }

    fn start_configured(pop3_listen: &str, auth_keys: &str, extra_config: &str) -> ExampleServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = format!(
            "[pop3]\n\
             listen = \"{pop3_listen}\"\n\
             tls_listen = \"127.0.0.1:0\"\n\
             [imap]\n\
             listen = \"127.0.0.1:0\"\n\
             tls_listen = \"127.0.0.1:0\"\n\
             [store]\n\
             maildir = {}\n\
             [auth]\n\
             passwd_file = {}\n\
             {auth_keys}\n\
             [metrics]\n\
             listen = \"{metrics}\"\n\
             [log]\n\
             format = \"json\"\n",
            toml_str(&dir.path().join("maildir")),
            toml_str(&dir.path().join("users.passwd")),
        );
        let config = format!("{config}{extra_config}");
        std::fs::write(dir.path().join("server.toml"), config).expect("write server.toml");
        let mut server = ExampleServer {
            child: None,
            dir,
            pop3: "0.0.0.0:0".parse().unwrap(),
            pop3s: "0.0.0.0:0".parse().unwrap(),
            imap: "0.0.0.0:0".parse().unwrap(),
            imaps: "0.0.0.0:0".parse().unwrap(),
            metrics,
            stdout: Arc::new(Mutex::new(Vec::new())),
            reader: None,
        };
        server.launch();
        server
    }

    /// Stop the server (SIGTERM, and wait for it to exit) and start it again on the same data
    /// directory and configuration: what survives is what it keeps on disk. The listeners
    /// come back on new ephemeral ports; stdout starts afresh.
    pub fn restart(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit(SOON).expect("the server exits on SIGTERM");
        assert!(status.success(), "server exit on SIGTERM: {status}");
        self.relaunch();
    }

    /// Start the server again on the same data directory and configuration after it has
    /// exited (a test that stopped it itself, to watch the shutdown). The listeners come back
    /// on new ephemeral ports; stdout starts afresh.
    pub fn relaunch(&mut self) {
        assert!(
            self.try_exit_status().is_some(),
            "relaunch: the server is still running"
        );
        self.child = None;
        self.stdout = Arc::new(Mutex::new(Vec::new()));
        self.launch();
    }

    /// Start the server process on the configuration in the data directory and wait for its
    /// listeners.
    fn launch(&mut self) {
        let mut child = Command::new(server_binary())
            .arg("--config")
            .arg(self.config_path())
            // Relative default paths (none are used here) would land in the temp dir.
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the example server");
        let pipe = child.stdout.take().expect("piped stdout");
        let reader = {
            let stdout = self.stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    stdout.lock().unwrap().push(line);
                }
            })
        };
        self.child = Some(child);
        self.reader = Some(reader);
        self.pop3 = self.listening_on("POP3 (STLS) listening on ");
        self.pop3s = self.listening_on("POP3 (TLS) listening on ");
        self.imap = self.listening_on("IMAP (STARTTLS) listening on ");
        self.imaps = self.listening_on("IMAP (TLS) listening on ");
    }

    /// Wait for the line `<prefix><address>` on stdout.
    fn listening_on(&mut self, prefix: &str) -> SocketAddr {
        let line = self.wait_for_stdout(STARTUP, |line| line.starts_with(prefix));
        line[prefix.len()..]
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("address in {line:?}: {e}"))
    }

    /// Wait until a stdout line satisfies `pred` and return it; panics after `bound`, or at
    /// once if the server exited.
    pub fn wait_for_stdout(&mut self, bound: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(line) = self.stdout().into_iter().find(|l| pred(l)) {
                return line;
            }
            if let Some(status) = self.try_exit_status() {
                // Let the reader drain what the process wrote last.
                std::thread::sleep(Duration::from_millis(100));
                if let Some(line) = self.stdout().into_iter().find(|l| pred(l)) {
                    return line;
                }
                panic!(
                    "server exited ({status}) before the expected line; stdout:\n{}",
                    self.stdout().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "expected stdout line not seen within {bound:?}; stdout:\n{}",
                self.stdout().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the server printed so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The JSON log lines (the human-readable status lines do not start with `{`).
    pub fn json_lines(&self) -> Vec<String> {
        self.stdout()
            .into_iter()
            .filter(|line| line.starts_with('{'))
            .collect()
    }

    pub fn passwd_file(&self) -> PathBuf {
        self.dir.path().join("users.passwd")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Send a signal by name (`TERM`, `HUP`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("{}", crate::support_shared::missing("kill", &e)));
        assert!(status.success(), "kill -{name} failed: {status}");
    }

    /// SIGKILL, and wait until the process is gone: it stops wherever it was, with no
    /// chance to finish anything; [`relaunch`](ExampleServer::relaunch) then starts it again
    /// on what it left on disk.
    pub fn kill(&mut self) {
        self.child
            .as_mut()
            .expect("server running")
            .kill()
            .expect("SIGKILL");
        self.wait_exit(SOON)
            .expect("the server is gone after SIGKILL");
    }

    fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().expect("try_wait")
    }

    /// Wait up to `bound` for the process to exit.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.try_exit_status() {
                // The process is gone: let the reader thread reach EOF so stdout is complete.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The root of the server's Maildir tree: each user's mail is in `<root>/<user>/`.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// Run `op` on the server's Maildir tree through the library's store (the tests are
    /// synchronous; the store is async).
    fn with_store<T, F: Future<Output = T>>(&self, op: impl FnOnce(Maildir) -> F) -> T {
        let store = Maildir::new(self.maildir());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(op(store))
    }

    /// Deliver `message` to demo's INBOX, writing the same tree the server reads (it picks the
    /// message up at the next login). Returns its UID.
    pub fn deliver(&self, message: &[u8]) -> u32 {
        self.deliver_to(USER, message)
    }

    pub fn deliver_to(&self, user: &str, message: &[u8]) -> u32 {
        let content = Bytes::copy_from_slice(message);
        self.with_store(|store| async move {
            store.ensure_user(user).await.expect("ensure_user");
            store
                .append(user, INBOX, content, Flags::EMPTY.into(), None)
                .await
                .expect("deliver")
        })
    }

    /// How many messages `user`'s INBOX holds now, as the store sees it.
    pub fn inbox_len(&self, user: &str) -> usize {
        self.with_store(|store| async move {
            let snapshot = store.snapshot(user, INBOX).await.expect("snapshot");
            snapshot.messages.len()
        })
    }

    /// The octets of each file in `user`'s Maildir `tmp/`: messages still being written.
    pub fn maildir_tmp_files(&self, user: &str) -> Vec<u64> {
        let tmp = self.maildir().join(user).join("tmp");
        let Ok(entries) = std::fs::read_dir(tmp) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.metadata().ok())
            .map(|meta| meta.len())
            .collect()
    }

    /// Scrape until `done` holds for a [settled](Metrics::settled) page, and return it.
    #[track_caller]
    pub fn settled_metrics(&self, done: impl Fn(&Metrics) -> bool) -> Metrics {
        poll(SOON, || {
            let metrics = self.scrape();
            (metrics.settled() && done(&metrics)).then_some(metrics)
        })
        .unwrap_or_else(|| panic!("metrics never settled:\n{}", self.scrape().text))
    }

    /// Wait until every log line the server wrote so far has been read by the test: the
    /// server is asked for one more line (SIGHUP's reload, which changes nothing when the
    /// files are unchanged), and lines written before it are read before it.
    #[track_caller]
    pub fn log_barrier(&self) {
        const MARKER: &str = "user file reloaded";
        let seen = |server: &ExampleServer| {
            server
                .stdout()
                .iter()
                .filter(|l| l.contains(MARKER))
                .count()
        };
        let before = seen(self);
        self.signal("HUP");
        poll(SOON, || (seen(self) > before).then_some(()))
            .unwrap_or_else(|| panic!("no reload line after SIGHUP"));
    }

    /// The metrics once `done` holds of them (within [`SOON`]), whatever else is in flight.
    #[track_caller]
    pub fn metrics_when(&self, done: impl Fn(&Metrics) -> bool) -> Metrics {
        poll(SOON, || {
            let metrics = self.scrape();
            done(&metrics).then_some(metrics)
        })
        .unwrap_or_else(|| panic!("metrics never got there:\n{}", self.scrape().text))
    }

    /// The Prometheus text from `/metrics`.
    pub fn scrape(&self) -> Metrics {
        let url = format!("http://{}/metrics", self.metrics);
        let out = curl_success(&["-sS", "--max-time", "10", &url]);
        Metrics::parse(&String::from_utf8_lossy(&out.stdout))
    }

    /// A poplib session as demo on the plain POP3 port that runs `ops` (see [`poplib`]) and
    /// must meet no POP3 error.
    #[track_caller]
    pub fn poplib_as_demo(&self, ops: &[&str]) -> Transcript {
        let transcript = poplib(PopMode::Plain, self.pop3, USER, PASSWORD, ops);
        assert!(transcript.errors().is_empty(), "{transcript:#?}");
        transcript
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + SOON;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            // Still running after the grace period: SIGKILL.
            let _ = child.kill();
        }
        let _ = child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A line-oriented POP3 client over a plain socket, for what the stdlib clients cannot do
/// (oversized lines, dropping mid-session, reading what the server says on shutdown).
pub struct RawClient {
    reader: BufReader<TcpStream>,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(SOON)).unwrap();
        stream.set_write_timeout(Some(SOON)).unwrap();
        RawClient {
            reader: BufReader::new(stream),
        }
    }

    /// The socket itself: to half-close it (`shutdown(Write)`) or, through
    /// [`into_stream`](RawClient::into_stream), to reset it.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// The socket, dropping whatever was read but not yet returned.
    pub fn into_stream(self) -> TcpStream {
        self.reader.into_inner()
    }

    /// The client's own address: the server's `remote_addr` for this connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.reader.get_ref().local_addr().unwrap()
    }

    /// The next line without CRLF; `None` at EOF or reset. Panics if nothing comes in time.
    pub fn line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) => Some(
                String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("server sent nothing within {SOON:?}")
            }
            Err(_) => None,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("write");
    }

    /// [`send_raw`](RawClient::send_raw) that reports a failed write instead of panicking: for
    /// floods the server may cut short by closing (a broken pipe or a reset is then expected).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Send a command line and return the first line of the reply.
    pub fn cmd(&mut self, text: &str) -> String {
        self.send_raw(format!("{text}\r\n").as_bytes());
        self.line().expect("connection closed before the reply")
    }

    /// Read the greeting and assert it is positive.
    pub fn greeting(&mut self) -> String {
        let greeting = self.line().expect("no greeting");
        assert!(greeting.starts_with("+OK"), "greeting: {greeting}");
        greeting
    }

    /// Read the greeting and log in with USER/PASS.
    pub fn login(&mut self, user: &str, password: &str) {
        self.greeting();
        let reply = self.cmd(&format!("USER {user}"));
        assert!(reply.starts_with("+OK"), "USER: {reply}");
        let reply = self.cmd(&format!("PASS {password}"));
        assert!(reply.starts_with("+OK"), "PASS: {reply}");
    }

    /// Exactly `n` octets (an IMAP literal); `None` if the connection ends first.
    pub fn octets(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut octets = vec![0; n];
        self.reader.read_exact(&mut octets).ok()?;
        Some(octets)
    }

    /// Lines until one starts with `prefix` (the tagged reply), that one included.
    #[track_caller]
    pub fn lines_until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().expect("closed before the tagged reply");
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Read everything the server sends until it closes the connection (EOF or reset).
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => rest,
            Err(e) => panic!("expected EOF, got {e}"),
        }
    }
}

/// How poplib reaches the server.
#[derive(Debug, Clone, Copy)]
pub enum PopMode {
    /// `poplib.POP3` on the plain port, no TLS.
    Plain,
    /// `poplib.POP3` on the plain port, then `stls()`.
    Stls,
    /// `poplib.POP3_SSL` on the implicit-TLS port.
    Ssl,
}

/// Drives one poplib session: connect (per mode), USER/PASS, then `ops` in order: `stat`,
/// `list`, `retr:N`, `dele:N`, `quit`. Prints one line per step, `<step> <result>`; a step
/// that fails with a POP3 error prints `error <step> <reply>`. The certificate is self-signed
/// and made fresh at each start, so verification is off.
const POPLIB_SCRIPT: &str = r#"
import binascii, poplib, ssl, sys
mode, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ops = sys.argv[5:]
def out(*parts):
    print(" ".join(str(p) for p in parts), flush=True)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if mode == "ssl":
    pop = poplib.POP3_SSL("127.0.0.1", port, context=ctx, timeout=20)
else:
    pop = poplib.POP3("127.0.0.1", port, timeout=20)
out("local", pop.sock.getsockname()[1])
out("welcome", pop.getwelcome().decode())
if mode == "stls":
    out("stls", pop.stls(context=ctx).decode())
    out("tls_version", pop.sock.version())
try:
    pop.user(user)
    out("login", pop.pass_(password).decode())
except poplib.error_proto as e:
    out("error", "login", e.args[0].decode())
for op in ops:
    name, _, arg = op.partition(":")
    try:
        if name == "stat":
            count, size = pop.stat()
            out("stat", count, size)
        elif name == "list":
            resp, lines, _ = pop.list()
            out("list", *[l.decode().replace(" ", ":") for l in lines])
        elif name == "retr":
            resp, lines, _ = pop.retr(int(arg))
            out("retr", resp.decode().split()[1], binascii.hexlify(b"\r\n".join(lines)).decode())
        elif name == "dele":
            out("dele", pop.dele(int(arg)).decode())
        elif name == "quit":
            out("quit", pop.quit().decode())
        else:
            raise SystemExit("unknown op " + op)
    except poplib.error_proto as e:
        out("error", name, e.args[0].decode())
"#;

/// What a Python script that prints one `<step> <result>` line per step printed (the poplib
/// script here, the imaplib scripts of the IMAP tests): `(step, result)` in order.
#[derive(Debug)]
pub struct Transcript(pub Vec<(String, String)>);

impl Transcript {
    /// Each line split at its first space (a line without one is a step with no result).
    pub fn parse(text: &str) -> Transcript {
        Transcript(
            text.lines()
                .map(|line| {
                    let (step, result) = line.split_once(' ').unwrap_or((line, ""));
                    (step.to_owned(), result.to_owned())
                })
                .collect(),
        )
    }

    /// The results of every `step` line.
    pub fn all(&self, step: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(s, _)| s == step)
            .map(|(_, r)| r.as_str())
            .collect()
    }

    /// The result of the only `step` line.
    #[track_caller]
    pub fn one(&self, step: &str) -> &str {
        match self.all(step)[..] {
            [result] => result,
            ref other => panic!("expected one {step:?} line, got {other:?} in {self:#?}"),
        }
    }

    /// The octets that the only `step` line gives in hex.
    #[track_caller]
    pub fn octets(&self, step: &str) -> Vec<u8> {
        unhex(self.one(step))
    }

    /// POP3 errors, as `<step> <reply>`.
    pub fn errors(&self) -> Vec<&str> {
        self.all("error")
    }

    /// The client's port: the server logs the session's `remote_addr` with it.
    pub fn local_port(&self) -> u16 {
        self.one("local").parse().unwrap()
    }
}

/// Run a poplib session (see [`POPLIB_SCRIPT`]); panics if Python fails.
pub fn poplib(
    mode: PopMode,
    addr: SocketAddr,
    user: &str,
    password: &str,
    ops: &[&str],
) -> Transcript {
    let mode = match mode {
        PopMode::Plain => "plain",
        PopMode::Stls => "stls",
        PopMode::Ssl => "ssl",
    };
    let port = addr.port().to_string();
    let text = run_python(
        POPLIB_SCRIPT,
        [mode, port.as_str(), user, password].iter().chain(ops),
    );
    Transcript::parse(&text)
}

/// What poplib gives back of a message: its lines without CRLF, which joined with CRLF give
/// the message minus its final CRLF.
pub fn as_poplib_sees_it(message: &[u8]) -> &[u8] {
    message
        .strip_suffix(b"\r\n")
        .expect("test messages end in CRLF")
}

/// Octets as hex, the way Python scripts take them as arguments (`bytes.fromhex`).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decode the hex that Python scripts print for octets (the poplib script for message
/// bodies).
pub fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// At most this many octets of each side are shown when [`assert_same_bytes`] fails (some
/// test messages are hundreds of KB).
const SHOWN: usize = 4000;

/// Byte-for-byte equality. A failure shows both lengths, the offset of the first difference
/// and both sides as text: whole if they are short, else [`SHOWN`] octets around the first
/// difference.
#[track_caller]
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual == expected {
        return;
    }
    let first_difference = actual
        .iter()
        .zip(expected)
        .position(|(a, e)| a != e)
        .unwrap_or(actual.len().min(expected.len()));
    let start = if actual.len().max(expected.len()) <= SHOWN {
        0
    } else {
        first_difference.saturating_sub(SHOWN / 2)
    };
    let shown = |bytes: &[u8]| {
        let window = &bytes[start.min(bytes.len())..bytes.len().min(start + SHOWN)];
        String::from_utf8_lossy(window).into_owned()
    };
    panic!(
        "{what}: got {} octets, expected {}, first difference at octet {first_difference}\n\
         --- got (from octet {start}) ---\n{}\n--- expected (from octet {start}) ---\n{}",
        actual.len(),
        expected.len(),
        shown(actual),
        shown(expected)
    );
}

/// Run curl with `args`; never hangs longer than 20 seconds.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}", crate::support_shared::missing("curl", &e)))
}

/// [`curl`], which must succeed: a failure shows the arguments, curl's exit status and its
/// stderr.
#[track_caller]
pub fn curl_success(args: &[&str]) -> Output {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?}: {}\n{}",
        out.status,
        stderr(&out)
    );
    out
}

/// [`curl_success`] as demo: `-sS -u demo:demo`, then `args`.
#[track_caller]
pub fn curl_as_demo(args: &[&str]) -> Output {
    let user = format!("{USER}:{PASSWORD}");
    let mut all = vec!["-sS", "-u", &user];
    all.extend_from_slice(args);
    curl_success(&all)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parse JSON log lines with Python's json module (the tests have no JSON crate) and return
/// each object's top-level members as strings (`null` members are left out). Panics naming
/// the first line that is not a JSON object.
pub fn parse_json_lines(lines: &[String]) -> Vec<LogEvent> {
    const SCRIPT: &str = r#"
import json, sys
def unique(pairs):
    # A key twice in one line (two `message` fields, say) is a bug, not a choice of value.
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ValueError("keys given twice: %s" % twice)
    return dict(pairs)
for number, line in enumerate(sys.stdin.read().split("\n")):
    if not line:
        continue
    try:
        obj = json.loads(line, object_pairs_hook=unique)
    except ValueError as e:
        sys.exit("line %d is not JSON (%s): %r" % (number, e, line))
    if not isinstance(obj, dict):
        sys.exit("line %d is not a JSON object: %r" % (number, line))
    fields = []
    for key, value in obj.items():
        if value is None:
            continue
        if not isinstance(value, str):
            value = json.dumps(value)
        fields.append(key.encode("unicode_escape").decode() + "=" + value.encode("unicode_escape").decode())
    print("\t".join(fields))
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}", crate::support_shared::missing("python3", &e)));
    let input = lines.join("\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("python3");
    assert!(out.status.success(), "JSON log check: {}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            line.split('\t')
                .filter(|f| !f.is_empty())
                .map(|field| {
                    let (key, value) = field.split_once('=').expect("key=value");
                    (key.to_owned(), value.to_owned())
                })
                .collect()
        })
        .collect()
}

/// A parsed JSON log line: its top-level members as strings.
pub type LogEvent = HashMap<String, String>;

/// The log lines with `"event": kind` (`connect`, `reject`, `close`).
pub fn events_of<'a>(events: &'a [LogEvent], kind: &str) -> Vec<&'a LogEvent> {
    events
        .iter()
        .filter(|e| e.get("event").map(String::as_str) == Some(kind))
        .collect()
}

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: HashMap<String, String>,
    pub value: f64,
}

/// A parsed `/metrics` page.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("bad sample line {line:?}"));
                let value: f64 = value
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}"));
                let (name, labels) = match series.split_once('{') {
                    None => (series.to_owned(), HashMap::new()),
                    Some((name, rest)) => {
                        let body = rest
                            .strip_suffix('}')
                            .unwrap_or_else(|| panic!("bad labels in {line:?}"));
                        (name.to_owned(), parse_labels(body))
                    }
                };
                Sample {
                    name,
                    labels,
                    value,
                }
            })
            .collect();
        Metrics {
            samples,
            text: text.to_owned(),
        }
    }

    /// Sum of `name` over the samples whose labels include every pair of `labels`; 0 when
    /// there is none (Prometheus shows a series only once it has been touched).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// Whether every connection the server had accepted when this page was made had also
    /// ended: from then on their hooks, log lines and metrics are final, so a count that is
    /// right in this page stays right (no late double count can come).
    pub fn settled(&self) -> bool {
        let accepted = self.sum("mail_server_connections_accepted_total", &[]);
        accepted > 0.0 && self.sum("mail_server_connections_finished_total", &[]) >= accepted
    }
}

/// `a="x",b="y\"z"` → {a: x, b: y"z}.
fn parse_labels(body: &str) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label key");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.expect("unterminated label value");
        labels.insert(key.trim_start_matches(',').trim().to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// Poll `check` until it returns `Some`, for at most `bound`; then one last try whose `None`
/// is the caller's failure.
pub fn poll<T>(bound: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if let Some(value) = check() {
            return Some(value);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

// Helpers for the connection-policy tests (tests/policy_layers.rs): clients from chosen
// loopback addresses, and policy reloads.

impl ExampleServer {
    /// The configuration file the server was started with; SIGHUP re-reads its `[layers.*]`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("server.toml")
    }

    /// Rewrite the configuration file with `edit` (the current text in, the new text out).
    /// The server sees the change at the next [`reload_policies`](ExampleServer::reload_policies).
    pub fn edit_config(&self, edit: impl FnOnce(&str) -> String) {
        let path = self.config_path();
        let text = std::fs::read_to_string(&path).expect("read server.toml");
        std::fs::write(&path, edit(&text)).expect("write server.toml");
    }

    /// Send SIGHUP and wait until the server says it reloaded its policies. Panics if it says
    /// it could not (a broken file: the old settings stay in force) or says nothing in time.
    pub fn reload_policies(&mut self) {
        const DONE: &str = "policies reloaded";
        const FAILED: &str = "policies not reloaded";
        let count = |server: &ExampleServer, what: &str| {
            server
                .stdout()
                .iter()
                .filter(|line| line.contains(what))
                .count()
        };
        let (done, failed) = (count(self, DONE), count(self, FAILED));
        self.signal("HUP");
        let reloaded = poll(SOON, || {
            assert_eq!(
                count(self, FAILED),
                failed,
                "the server refused the new configuration:\n{}",
                self.stdout().join("\n")
            );
            (count(self, DONE) > done).then_some(())
        });
        assert!(
            reloaded.is_some(),
            "no reload reported within {SOON:?} of SIGHUP:\n{}",
            self.stdout().join("\n")
        );
    }
}

impl RawClient {
    /// Connect to `addr` from the local address `source` (any port). All of 127.0.0.0/8 is
    /// loopback, so a test can be several clients that the policies tell apart by address.
    pub fn connect_from(source: IpAddr, addr: SocketAddr) -> RawClient {
        let stream = connect_from(source, addr)
            .unwrap_or_else(|e| panic!("connect to {addr} from {source}: {e}"));
        stream.set_read_timeout(Some(SOON)).unwrap();
        stream.set_write_timeout(Some(SOON)).unwrap();
        RawClient {
            reader: BufReader::new(stream),
        }
    }
}

/// A blocking socket bound to `source` before it connects to `addr`. std cannot bind a client
/// socket, so tokio's `TcpSocket` does the connect and hands the socket back as a std one.
fn connect_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let socket = match source {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(source, 0))?;
        let stream = tokio::time::timeout(SOON, socket.connect(addr))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        // Leaves tokio's reactor; std sockets block by default, tokio's do not.
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        Ok(stream)
    })
}

/// Run the server binary with `args` in `dir` and return its output; it must exit by itself
/// within a bound (a server that starts serving instead of failing is killed and fails the
/// test).
pub fn run_server_expecting_exit(dir: &Path, args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(server_binary())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the example server");
    let exited = poll(Duration::from_secs(30), || {
        child.try_wait().expect("try_wait")
    });
    if exited.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        exited.is_some(),
        "the server kept running: {}",
        stderr(&out)
    );
    out
}
