//! The per-connection [`Session`]: fixed facts about a connection plus the live state that the
//! protocol service keeps current and any layer may read at any time, close hooks included.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::close_reason::CloseReason;

/// The mail access protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// IMAP4rev1 (RFC 3501).
    Imap,
    /// POP3 (RFC 1939).
    Pop3,
}

impl Protocol {
    /// The lower-case name used in metrics labels and logs: `imap` or `pop3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a session is in its protocol's state machine.
///
/// The names are those of the RFCs and of the reference guide: IMAP's
/// `Not Authenticated`, `Authenticated`, `Selected`, `Logout` (RFC 3501 section 3) and POP3's
/// `AUTHORIZATION`, `TRANSACTION`, `UPDATE` (RFC 1939 section 3).
///
/// ```
/// use tower_mail::State;
/// assert_eq!(State::NotAuthenticated.as_str(), "Not Authenticated");
/// assert_eq!(State::Transaction.as_str(), "TRANSACTION");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// IMAP: connected, not yet logged in.
    NotAuthenticated = 0,
    /// IMAP: logged in, no mailbox selected.
    Authenticated = 1,
    /// IMAP: a mailbox is selected.
    Selected = 2,
    /// IMAP: the session is ending.
    Logout = 3,
    /// POP3: connected, not yet logged in.
    Authorization = 4,
    /// POP3: logged in, the maildrop is locked.
    Transaction = 5,
    /// POP3: QUIT was received; deletions are being committed.
    Update = 6,
}

impl State {
    /// The state's name as the RFCs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::NotAuthenticated => "Not Authenticated",
            State::Authenticated => "Authenticated",
            State::Selected => "Selected",
            State::Logout => "Logout",
            State::Authorization => "AUTHORIZATION",
            State::Transaction => "TRANSACTION",
            State::Update => "UPDATE",
        }
    }

    /// The state a new session of `protocol` starts in.
    pub fn initial(protocol: Protocol) -> State {
        match protocol {
            Protocol::Imap => State::NotAuthenticated,
            Protocol::Pop3 => State::Authorization,
        }
    }

    fn from_u8(value: u8) -> State {
        match value {
            0 => State::NotAuthenticated,
            1 => State::Authenticated,
            2 => State::Selected,
            3 => State::Logout,
            4 => State::Authorization,
            5 => State::Transaction,
            _ => State::Update,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session identifier: unique within the process and unguessable (80 random bits).
///
/// ```
/// use tower_mail::SessionId;
/// let a = SessionId::random();
/// assert_ne!(a, SessionId::random());
/// assert_eq!(a.as_str().len(), 16);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A fresh identifier from the operating system's random source, in lower-case base32.
    pub fn random() -> SessionId {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        let raw = random_bytes::<10>();
        let bits = raw.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        let mut out = [0u8; 16];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = ALPHABET[((bits >> (75 - 5 * i)) & 31) as usize];
        }
        SessionId(out)
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        // Built only from the ASCII alphabet above.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// `N` bytes from the operating system's random source, drawn from a per-thread buffer that is
/// refilled 64 ids at a time: one system call per connection was a measurable part of an
/// accept on a VM.
fn random_bytes<const N: usize>() -> [u8; N] {
    const BUFFER: usize = 640;
    thread_local! {
        static POOL: std::cell::RefCell<([u8; BUFFER], usize)> =
            const { std::cell::RefCell::new(([0; BUFFER], BUFFER)) };
    }
    POOL.with_borrow_mut(|(bytes, used)| {
        if *used + N > BUFFER {
            // The OS random source failing is not recoverable in any useful way for a server.
            getrandom::fill(bytes).expect("operating system random source failed");
            *used = 0;
        }
        let mut out = [0; N];
        out.copy_from_slice(&bytes[*used..*used + N]);
        // Each byte is handed out once.
        bytes[*used..*used + N].fill(0);
        *used += N;
        out
    })
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.as_str())
    }
}

/// What the TLS handshake negotiated, for sessions that are secure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: &'static str,
    /// The IANA name of the cipher suite.
    pub cipher: String,
    /// The server name the client asked for (SNI), if any.
    pub sni: Option<String>,
    /// The negotiated ALPN protocol, if any.
    pub alpn: Option<String>,
    /// Whether TLS started with the connection (implicit TLS) rather than by STARTTLS/STLS.
    pub implicit: bool,
}

/// One connection's session, shared by the server, every layer and the protocol service.
///
/// Fixed facts (id, protocol, addresses, creation time) are plain fields. Live state (the
/// protocol state, user, selected mailbox, TLS, counters) is kept current by the protocol
/// service and readable at any time through the accessor methods, so a close hook sees the
/// session's final state.
///
/// ```
/// use tower_mail::{Protocol, Session, State};
/// let session = Session::new(
///     Protocol::Pop3,
///     "192.0.2.7:50000".parse().unwrap(),
///     "127.0.0.1:110".parse().unwrap(),
/// );
/// assert_eq!(session.state(), State::Authorization);
/// assert_eq!(session.remote_addr().port(), 50000);
/// assert!(!session.secure());
/// session.set_user(Some("alice".into()));
/// assert_eq!(session.user().as_deref(), Some("alice"));
/// ```
pub struct Session {
    id: SessionId,
    protocol: Protocol,
    remote_addr: SocketAddr,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
    created: SystemTime,
    started: Instant,
    secure: AtomicBool,
    has_started: AtomicBool,
    state: AtomicU8,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    commands: AtomicU64,
    // Boxed: set once if at all, and inline it would enlarge every plaintext session too.
    tls: Mutex<Option<Box<TlsInfo>>>,
    user: Mutex<Option<String>>,
    selected: Mutex<Option<String>>,
    client_id: Mutex<Option<Vec<(String, String)>>>,
    end: CancellationToken,
    /// How long the client has from the session's start to log in (the server's
    /// `login_timeout`): read by the session's channel, which enforces it.
    pub(crate) login_timeout: Option<Duration>,
    end_reason: Mutex<Option<Box<CloseReason>>>,
}

impl Session {
    /// A new session for a connection from `remote_addr` to `local_addr`.
    pub fn new(protocol: Protocol, remote_addr: SocketAddr, local_addr: SocketAddr) -> Session {
        Session::with_end_token(
            protocol,
            remote_addr,
            local_addr,
            remote_addr,
            CancellationToken::new(),
        )
    }

    /// A session whose end signal is a child of `shutdown`, so that cancelling `shutdown` ends
    /// every session made from it. `peer_addr` is the TCP peer (a proxy's address when a PROXY
    /// header named another client).
    pub(crate) fn with_end_token(
        protocol: Protocol,
        remote_addr: SocketAddr,
        local_addr: SocketAddr,
        peer_addr: SocketAddr,
        end: CancellationToken,
    ) -> Session {
        Session {
            id: SessionId::random(),
            protocol,
            remote_addr,
            local_addr,
            peer_addr,
            created: SystemTime::now(),
            started: Instant::now(),
            secure: AtomicBool::new(false),
            has_started: AtomicBool::new(false),
            state: AtomicU8::new(State::initial(protocol) as u8),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            tls: Mutex::new(None),
            user: Mutex::new(None),
            selected: Mutex::new(None),
            client_id: Mutex::new(None),
            end,
            login_timeout: None,
            end_reason: Mutex::new(None),
        }
    }

    /// The unique, unguessable session id.
    pub fn id(&self) -> &SessionId {
        &self.id
    }
    /// The protocol of the listener that accepted the connection.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
    /// The client's address: the real client behind a trusted PROXY header.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }
    /// The server's address the client connected to (as the PROXY header names it, if any).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    /// The TCP peer: the proxy when a trusted PROXY header named another client, else the
    /// same as [`remote_addr`](Session::remote_addr).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }
    /// Wall-clock time of accept.
    pub fn created(&self) -> SystemTime {
        self.created
    }
    /// Monotonic time of accept, for durations.
    pub fn started(&self) -> Instant {
        self.started
    }
    /// Whether the connection is encrypted now (true after STARTTLS/STLS, too).
    pub fn secure(&self) -> bool {
        self.secure.load(Ordering::Acquire)
    }
    /// Whether a session service has taken the connection: from then on the connection counts
    /// as accepted, and a failure is no longer a refusal.
    pub fn has_started(&self) -> bool {
        self.has_started.load(Ordering::Acquire)
    }
    pub(crate) fn mark_started(&self) {
        self.has_started.store(true, Ordering::Release);
    }
    /// What TLS negotiated, once the session is secure.
    pub fn tls(&self) -> Option<TlsInfo> {
        lock(&self.tls).as_deref().cloned()
    }
    /// The protocol state now.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }
    /// The authenticated user, if any.
    pub fn user(&self) -> Option<String> {
        lock(&self.user).clone()
    }
    /// IMAP: the selected mailbox, if any.
    pub fn selected(&self) -> Option<String> {
        lock(&self.selected).clone()
    }
    /// The client's identification (IMAP ID, RFC 2971), as field/value pairs.
    pub fn client_id(&self) -> Option<Vec<(String, String)>> {
        lock(&self.client_id).clone()
    }
    /// The client's user agent: the `name` and `version` of its ID, if it sent one.
    pub fn user_agent(&self) -> Option<String> {
        let id = lock(&self.client_id);
        let fields = id.as_ref()?;
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str())
        };
        match (get("name"), get("version")) {
            (Some(name), Some(version)) => Some(format!("{name}/{version}")),
            (Some(name), None) => Some(name.to_owned()),
            _ => None,
        }
    }
    /// Bytes read from the client (after TLS decryption).
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }
    /// Bytes written to the client (before TLS encryption).
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
    /// Commands the client has sent.
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    /// Ask the session to end with `reason`. The protocol service says goodbye
    /// (`* BYE` / `-ERR`) and closes; the first reason given wins. Safe to call from any task.
    pub fn end(&self, reason: CloseReason) {
        {
            let mut slot = lock(&self.end_reason);
            if slot.is_none() {
                *slot = Some(Box::new(reason));
            }
        }
        self.end.cancel();
    }
    /// Whether [`end`](Session::end) was called or the server is shutting down.
    pub fn is_ending(&self) -> bool {
        self.end.is_cancelled()
    }
    /// Resolves once the session has been asked to end.
    pub fn ending(&self) -> WaitForCancellationFuture<'_> {
        self.end.cancelled()
    }
    /// Why the session was asked to end: the reason given to [`end`](Session::end), or
    /// [`CloseReason::Shutdown`] when the server's shutdown ended it.
    pub fn end_reason(&self) -> Option<CloseReason> {
        if !self.end.is_cancelled() {
            return None;
        }
        Some(
            lock(&self.end_reason)
                .as_deref()
                .cloned()
                .unwrap_or(CloseReason::Shutdown),
        )
    }

    // Updates made by protocol services.

    /// Set the protocol state.
    pub fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
    }
    /// Set or clear the authenticated user.
    pub fn set_user(&self, user: Option<String>) {
        *lock(&self.user) = user;
    }
    /// Set or clear the selected mailbox.
    pub fn set_selected(&self, mailbox: Option<String>) {
        *lock(&self.selected) = mailbox;
    }
    /// Record the client's identification.
    pub fn set_client_id(&self, fields: Vec<(String, String)>) {
        *lock(&self.client_id) = Some(fields);
    }
    /// Mark the session secure with what TLS negotiated.
    pub fn set_tls(&self, info: TlsInfo) {
        *lock(&self.tls) = Some(Box::new(info));
        self.secure.store(true, Ordering::Release);
    }
    /// Count bytes read from the client.
    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }
    /// Count bytes written to the client.
    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }
    /// Count one client command.
    pub fn add_command(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("protocol", &self.protocol)
            .field("remote_addr", &self.remote_addr)
            .field("local_addr", &self.local_addr)
            .field("secure", &self.secure())
            .field("state", &self.state())
            .field("user", &self.user())
            .finish_non_exhaustive()
    }
}

/// Lock a mutex whose data stays valid even if a holder panicked (plain values, no invariants).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::SessionId;

    #[test]
    fn ids_stay_unique_across_buffer_refills_and_threads() {
        let draw = || (0..5_000).map(|_| SessionId::random()).collect::<Vec<_>>();
        let other = std::thread::spawn(draw);
        let mut seen: HashSet<SessionId> = draw().into_iter().collect();
        assert_eq!(seen.len(), 5_000);
        for id in other.join().unwrap() {
            assert!(seen.insert(id), "two threads drew the same id");
        }
        // 80 random bits in 16 base32 characters, never the all-zero pattern of a used byte.
        assert!(
            seen.iter()
                .all(|id| id.as_str().len() == 16 && id.as_str() != "aaaaaaaaaaaaaaaa")
        );
    }
}
