//! The request of every connection stack: one accepted [`Connection`].

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::events::{Observers, SessionEvent, SessionObserver};
use crate::extensions::Extensions;
use crate::session::Session;
use crate::tls::TlsAcceptor;

/// Any byte stream a session can run over: TCP, TLS over TCP, or an in-memory pipe in tests.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`]: the stream type after PROXY handling and any TLS layer.
pub type BoxIo = Box<dyn Io>;

/// The byte stream of a connection, plus what it needs to upgrade to TLS.
#[non_exhaustive]
pub struct Transport {
    /// The stream.
    pub io: BoxIo,
    /// Present when the listener offers STARTTLS/STLS on this plain connection.
    pub starttls: Option<TlsAcceptor>,
    /// The slot the server took it from. A session that is dropped before it ends on its own
    /// (an outer `TimeoutLayer`, a panic) gives the stream back there, so the server can still
    /// say goodbye ([`Channel`](crate::wire::Channel) does this on drop).
    pub(crate) home: Option<Arc<TransportSlot>>,
}

impl Transport {
    /// A transport over `io` with no STARTTLS.
    pub fn new(io: impl Io) -> Transport {
        Transport::boxed(Box::new(io), None)
    }

    /// A transport over `io` that offers STARTTLS/STLS with `acceptor`.
    pub fn with_starttls(io: impl Io, acceptor: TlsAcceptor) -> Transport {
        Transport::boxed(Box::new(io), Some(acceptor))
    }

    pub(crate) fn boxed(io: BoxIo, starttls: Option<TlsAcceptor>) -> Transport {
        Transport {
            io,
            starttls,
            home: None,
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("starttls", &self.starttls.is_some())
            .finish_non_exhaustive()
    }
}

/// Per-connection settings that layers may change before the session starts. Each `None`
/// means "the session service's own default".
///
/// ```
/// use std::time::Duration;
/// use tower_mail::SessionSettings;
/// let mut settings = SessionSettings::default();
/// settings.idle_timeout = Some(Duration::from_secs(60));
/// settings.hide_capability("USER");
/// assert!(settings.is_hidden("user"));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SessionSettings {
    /// How long the client may stay silent before the session ends.
    pub idle_timeout: Option<Duration>,
    /// Whether plaintext logins (LOGIN, USER/PASS, AUTH PLAIN) are allowed before TLS.
    pub allow_plaintext_login: Option<bool>,
    /// The greeting text after `* OK` / `+OK`.
    pub greeting: Option<String>,
    /// Capabilities to advertise in addition to the service's own.
    pub extra_capabilities: Vec<String>,
    /// Capabilities to withhold (compared case-insensitively, by first word: `THREAD`
    /// withholds every `THREAD=`; IMAP's capabilities with a value may also be withheld alone
    /// by their whole name, `THREAD=REFERENCES`); a withheld command is refused as unknown.
    pub hidden_capabilities: Vec<String>,
    /// How many protocol errors end the session.
    pub max_protocol_errors: Option<u32>,
}

impl SessionSettings {
    /// No setting of its own: every value is the service's. The same as `default()`, usable
    /// in constants.
    ///
    /// ```
    /// use tower_mail::SessionSettings;
    /// const NONE: SessionSettings = SessionSettings::new();
    /// assert!(NONE.greeting.is_none() && NONE.extra_capabilities.is_empty());
    /// ```
    pub const fn new() -> SessionSettings {
        SessionSettings {
            idle_timeout: None,
            allow_plaintext_login: None,
            greeting: None,
            extra_capabilities: Vec::new(),
            hidden_capabilities: Vec::new(),
            max_protocol_errors: None,
        }
    }

    /// Withhold a capability (and its command) from this session.
    pub fn hide_capability(&mut self, name: impl Into<String>) {
        self.hidden_capabilities.push(name.into());
    }

    /// The greeting text: a layer's choice, else the service's `default`.
    ///
    /// ```
    /// use tower_mail::SessionSettings;
    /// let mut settings = SessionSettings::default();
    /// assert_eq!(settings.greeting_or("ready"), "ready");
    /// settings.greeting = Some("Welcome, partner".into());
    /// assert_eq!(settings.greeting_or("ready"), "Welcome, partner");
    /// ```
    pub fn greeting_or(&self, default: &str) -> String {
        self.greeting.clone().unwrap_or_else(|| default.to_owned())
    }

    /// Whether `capability` (its first word) is withheld.
    pub fn is_hidden(&self, capability: &str) -> bool {
        if self.hidden_capabilities.is_empty() {
            return false;
        }
        let word = capability.split([' ', '=']).next().unwrap_or(capability);
        self.hidden_capabilities
            .iter()
            .any(|hidden| hidden.eq_ignore_ascii_case(word))
    }
}

/// Where the server keeps a connection's transport until a session service takes it, so that
/// the server can still answer a refusal when a layer drops the request (tower's `LoadShed`,
/// `Filter`).
#[derive(Default)]
pub(crate) struct TransportSlot(Mutex<Option<Transport>>);

impl TransportSlot {
    pub(crate) fn new(transport: Transport) -> Arc<TransportSlot> {
        Arc::new(TransportSlot(Mutex::new(Some(transport))))
    }

    pub(crate) fn take(&self) -> Option<Transport> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Give back a stream whose session was dropped before it ended, for the goodbye.
    pub(crate) fn put_back(&self, io: BoxIo) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Transport::boxed(io, None));
    }

    pub(crate) fn is_taken(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_none()
    }
}

/// One accepted connection: the request of a connection stack.
///
/// Layers read its [`Session`], attach [`Extensions`], change its [`SessionSettings`] and register
/// [`SessionObserver`]s; then they pass it on, or refuse it by returning an error (best a
/// [`Reject`](crate::Reject)). The session service at the bottom takes the transport with
/// [`into_parts`](Connection::into_parts) and runs the protocol.
///
/// ```
/// use tower_mail::{Connection, Protocol};
/// let (client, server) = tokio::io::duplex(1024);
/// let conn = Connection::for_test(Protocol::Pop3, server);
/// assert_eq!(conn.session().protocol(), Protocol::Pop3);
/// # drop(client);
/// ```
pub struct Connection {
    session: Arc<Session>,
    slot: Arc<TransportSlot>,
    extensions: Extensions,
    // Boxed on the first change: few connections get settings of their own, and the connection
    // moves through every layer's `call`; small, those moves are a few register copies.
    settings: Option<Box<SessionSettings>>,
    observers: Observers,
}

/// What a connection's settings are until a layer changes them.
static DEFAULT_SETTINGS: SessionSettings = SessionSettings::new();

/// A [`Connection`] taken apart by the session service that runs it.
#[non_exhaustive]
pub struct ConnectionParts {
    /// The session.
    pub session: Arc<Session>,
    /// The byte stream.
    pub transport: Transport,
    /// Values layers attached.
    pub extensions: Extensions,
    /// Settings layers chose.
    pub settings: SessionSettings,
    /// Observers layers registered.
    pub observers: Observers,
}

impl Connection {
    pub(crate) fn new(session: Arc<Session>, slot: Arc<TransportSlot>) -> Connection {
        Connection {
            session,
            slot,
            extensions: Extensions::new(),
            settings: None,
            observers: Observers::default(),
        }
    }

    /// A connection over any stream, from 192.0.2.1:40000 to 127.0.0.1:0, for tests and for
    /// driving a session service without a server (the `test-util` feature).
    #[cfg(feature = "test-util")]
    pub fn for_test(protocol: crate::Protocol, io: impl Io) -> Connection {
        Connection::from_parts(
            Arc::new(Session::new(
                protocol,
                "192.0.2.1:40000".parse().expect("literal address"),
                "127.0.0.1:0".parse().expect("literal address"),
            )),
            Transport::new(io),
        )
    }

    /// A connection for `session` over `transport`.
    pub fn from_parts(session: Arc<Session>, transport: Transport) -> Connection {
        Connection::new(session, TransportSlot::new(transport))
    }

    /// The session.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }
    /// Values attached by layers.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }
    /// Values attached by layers, mutably.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }
    /// Per-connection settings.
    pub fn settings(&self) -> &SessionSettings {
        self.settings.as_deref().unwrap_or(&DEFAULT_SETTINGS)
    }
    /// Per-connection settings, mutably.
    pub fn settings_mut(&mut self) -> &mut SessionSettings {
        self.settings.get_or_insert_default()
    }
    /// Register an observer of this session's events.
    pub fn observe(&mut self, observer: Arc<dyn SessionObserver>) {
        self.observers.push(observer);
    }

    /// Take the connection apart to run its session. Returns `None` if the transport is
    /// already gone (the server timed out the connection's setup phase meanwhile).
    pub fn into_parts(self) -> Option<ConnectionParts> {
        let mut transport = self.slot.take()?;
        transport.home = Some(self.slot.clone());
        self.session.mark_started();
        // Announced here, not by each protocol service, so that no session service can forget
        // it and leave observers that count (metrics) unbalanced.
        if let Err(reject) = self.observers.notify(&self.session, &SessionEvent::Started) {
            self.session
                .end(crate::CloseReason::Kicked(reject.message().to_owned()));
        }
        Some(ConnectionParts {
            session: self.session,
            transport,
            extensions: self.extensions,
            settings: self.settings.map(|settings| *settings).unwrap_or_default(),
            observers: self.observers,
        })
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("session", &self.session)
            .field("extensions", &self.extensions)
            .field("settings", self.settings())
            .field("observers", &self.observers)
            .finish()
    }
}
