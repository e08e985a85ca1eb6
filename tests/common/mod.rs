//! Shared test support: a server on an ephemeral loopback port, a line-based client, and a
//! recorder of close hooks.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower_mail::auth::PasswdFile;
use tower_mail::pop3::{Pop3Config, Pop3Service};
use tower_mail::server::{Endpoint, Server, ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{BoxError, CloseReason, CloseReport, Connection, Protocol, Session, State};
use tower_service::Service;

/// Generous bound for things that must happen "soon": a liveness bound, not a timing claim.
pub const SOON: Duration = Duration::from_secs(10);

pub const USERS: &str = "alice:{PLAIN}secret\nbob:{PLAIN}hunter2\n";

/// A POP3 service over an in-memory store with alice/secret and bob/hunter2, plaintext login
/// allowed.
pub fn pop3(store: MemoryStore) -> Pop3Service<PasswdFile, MemoryStore> {
    let mut config = Pop3Config::default();
    config.allow_plaintext_login = true;
    Pop3Service::new(PasswdFile::parse(USERS), store, config)
}

/// Serve `stack` for `protocol` on an ephemeral loopback port.
pub async fn serve<S>(
    protocol: Protocol,
    tls: TlsMode,
    config: ServerConfig,
    stack: S,
) -> (Server, SocketAddr)
where
    S: Service<Connection, Response = CloseReport> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(config);
    server.serve(listener, Endpoint::new(protocol, tls), stack);
    (server, addr)
}

/// Close `stream` with a reset (RST) instead of an orderly FIN, as a crashing client or a
/// middlebox would.
pub fn reset(stream: TcpStream) {
    // SO_LINGER 0 makes close send RST; tokio deprecates it only because it can block on drop,
    // which it does not with a zero timeout.
    #[allow(deprecated)]
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
}

/// What a close hook saw.
#[derive(Debug, Clone)]
pub struct Closed {
    pub session_id: String,
    pub remote_addr: SocketAddr,
    pub local_addr: SocketAddr,
    pub secure: bool,
    pub state: State,
    pub user: Option<String>,
    pub reason: CloseReason,
    pub report: CloseReport,
}

/// Records every close hook call.
#[derive(Clone, Default)]
pub struct Closes {
    seen: Arc<Mutex<Vec<Closed>>>,
    changed: Arc<Notify>,
}

impl Closes {
    /// A close hook for `OnCloseLayer` that records into `self`.
    pub fn hook(&self) -> impl Fn(&Session, &CloseReport) + Clone + Send + Sync + 'static {
        let this = self.clone();
        move |session: &Session, report: &CloseReport| {
            this.seen.lock().unwrap().push(Closed {
                session_id: session.id().to_string(),
                remote_addr: session.remote_addr(),
                local_addr: session.local_addr(),
                secure: session.secure(),
                state: session.state(),
                user: session.user(),
                reason: report.reason.clone(),
                report: report.clone(),
            });
            this.changed.notify_waiters();
        }
    }

    pub fn all(&self) -> Vec<Closed> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Wait until at least `n` closes were recorded; panics after [`SOON`].
    pub async fn wait_for(&self, n: usize) -> Vec<Closed> {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                if self.count() >= n {
                    return self.all();
                }
                // Re-check periodically too: notify_waiters only wakes waiters already parked.
                let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
            }
        };
        tokio::time::timeout(SOON, wait)
            .await
            .unwrap_or_else(|_| panic!("expected {n} closes, saw {:?}", self.all()))
    }
}

/// A line-oriented client over any stream.
pub struct Client<T> {
    io: BufReader<T>,
}

impl Client<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> Client<TcpStream> {
        Client::new(TcpStream::connect(addr).await.unwrap())
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Client<T> {
    pub fn new(io: T) -> Client<T> {
        Client {
            io: BufReader::new(io),
        }
    }

    /// The next line without CRLF; `None` at EOF or reset.
    pub async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        let read = tokio::time::timeout(SOON, self.io.read_line(&mut line))
            .await
            .expect("server sent nothing in time");
        match read {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.io.get_mut().write_all(text.as_bytes()).await.unwrap();
        self.io.get_mut().write_all(b"\r\n").await.unwrap();
        // A compressing stream sends only on flush; for TCP and TLS it costs nothing.
        self.io.get_mut().flush().await.unwrap();
    }

    /// Send a command and return the first line of the reply.
    pub async fn cmd(&mut self, text: &str) -> String {
        self.send(text).await;
        self.line().await.expect("connection closed")
    }

    /// Read a multi-line reply body up to the terminating ".".
    pub async fn body(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self
                .line()
                .await
                .expect("connection closed in a multi-line reply");
            if line == "." {
                return lines;
            }
            lines.push(line);
        }
    }

    /// Whether the server has closed the connection (reads EOF).
    pub async fn closed(&mut self) -> bool {
        self.line().await.is_none()
    }

    pub fn into_inner(self) -> T {
        self.io.into_inner()
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.io.get_mut()
    }
}

/// Log in as alice over POP3 after reading the greeting.
pub async fn pop3_login<T: AsyncRead + AsyncWrite + Unpin>(client: &mut Client<T>) {
    let greeting = client.line().await.unwrap();
    assert!(greeting.starts_with("+OK"), "{greeting}");
    assert!(client.cmd("USER alice").await.starts_with("+OK"));
    let reply = client.cmd("PASS secret").await;
    assert!(reply.starts_with("+OK"), "{reply}");
}

// ---- Helpers for the POP3 protocol, tower interop and session settings tests. ----

use tokio::io::AsyncReadExt;

impl<T: AsyncRead + AsyncWrite + Unpin> Client<T> {
    /// Send bytes exactly as given, without adding CRLF: garbage, or several pipelined commands
    /// in one write.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    /// The next line with its line ending, byte for byte; `None` at EOF or reset.
    pub async fn raw_line(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        let read = tokio::time::timeout(SOON, self.io.read_until(b'\n', &mut line))
            .await
            .expect("server sent nothing in time");
        match read {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    }

    /// Everything the server sends until it closes, as text (lossy for non-UTF-8 bytes).
    pub async fn rest(&mut self) -> String {
        let mut all = Vec::new();
        // A reset instead of a clean close also ends the conversation, and what arrived before
        // it stays in `all`, so the read's own result does not matter.
        let _ = tokio::time::timeout(SOON, self.io.read_to_end(&mut all))
            .await
            .expect("server did not close in time");
        String::from_utf8_lossy(&all).into_owned()
    }

    /// Bytes received from the server but not yet read by the test.
    pub fn buffered(&self) -> &[u8] {
        self.io.buffer()
    }
}

/// POP3 CAPA: the capability lines, without the status line and terminator.
pub async fn pop3_capabilities<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<T>,
) -> Vec<String> {
    let status = client.cmd("CAPA").await;
    assert!(status.starts_with("+OK"), "CAPA refused: {status}");
    client.body().await
}

/// Whether a CAPA listing has a capability whose first word is `keyword` (case-insensitive).
pub fn has_capability(capabilities: &[String], keyword: &str) -> bool {
    capabilities.iter().any(|line| {
        line.split(' ')
            .next()
            .is_some_and(|first| first.eq_ignore_ascii_case(keyword))
    })
}

/// Deliver `message` to `user`'s INBOX, creating the user's mail tree first as a delivery
/// agent would; returns its UID.
pub async fn deliver(store: &MemoryStore, user: &str, message: &[u8]) -> u32 {
    use tower_mail::store::{Flags, Mailstore};
    store
        .ensure_user(user)
        .await
        .expect("creating the user's mailboxes");
    store
        .append(
            user,
            "INBOX",
            bytes::Bytes::copy_from_slice(message),
            Flags::EMPTY.into(),
            None,
        )
        .await
        .expect("delivery to the memory store failed")
}

/// Shut the server down, which waits for every connection task, and return what the close
/// hooks saw: after this, each connection's hook has run if it ever will.
pub async fn shutdown_and_collect(server: &Server, closes: &Closes) -> Vec<Closed> {
    server.shutdown(Duration::from_secs(5)).await;
    closes.all()
}

/// Assert that the close hooks saw exactly `expected` (in any order: connections that end
/// close together may finish their tasks in either order), one record per connection.
pub fn assert_close_reasons(closed: &[Closed], expected: &[CloseReason]) {
    let mut seen: Vec<String> = closed.iter().map(|c| format!("{:?}", c.reason)).collect();
    let mut want: Vec<String> = expected.iter().map(|r| format!("{r:?}")).collect();
    seen.sort();
    want.sort();
    assert_eq!(seen, want, "close hook records: {closed:#?}");
}

/// Wait until the server has no connection task left (every session future dropped, so every
/// permit a layer held is released); panics after [`SOON`].
pub async fn wait_until_idle(server: &Server) {
    let idle = async {
        while server.connections() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(SOON, idle)
        .await
        .unwrap_or_else(|_| panic!("{} connections still open", server.connections()));
}

/// A TLS client that trusts only `cert_pem` (for `tower_mail::tls::self_signed`).
pub fn tls_connector(cert_pem: &str) -> tokio_rustls::TlsConnector {
    tower_mail::tls::connector_trusting(cert_pem).expect("trust the test certificate")
}
