//! One POP3 session: the command loop and the RFC 1939 state machine.

use std::sync::Arc;

use bytes::Bytes;

use super::capabilities::Capabilities;
use super::command::{self, AuthResponse, Command, ParseError};
use super::config::Pop3ServiceState;
use super::dotstuff::write_dot_stuffed;
use super::maildrop::{Maildrop, MaildropLock};
use super::response::{self, RespCode};
use crate::auth::sasl::{self, Exchange, Failure, Step};
use crate::auth::{self, AuthError, Authenticator, User};
use crate::close::CloseReport;
use crate::close_reason::CloseReason;
use crate::connection::{ConnectionParts, SessionSettings};
use crate::events::{Observers, SessionEvent};
use crate::protocol::ErrorCount;
use crate::reject::Reject;
use crate::session::{Session, State};
use crate::store::{INBOX, Mailstore, StoreError};
use crate::wire::Channel;

/// What to do after a command.
enum Flow {
    Continue,
    Close(CloseReason),
}

/// What the session holds in each RFC 1939 state: the data behind the [`State`] it publishes on
/// its [`Session`] for layers to read. [`Pop3Session::enter`] changes both together.
enum StateData {
    /// AUTHORIZATION: the name a USER command gave, waiting for its PASS.
    Authorization { user: Option<String> },
    /// TRANSACTION: the locked maildrop.
    Transaction {
        maildrop: Maildrop,
        _lock: MaildropLock,
        /// Kept for the leases auth layers attached (a per-user session slot).
        _user: Box<User>,
    },
    /// UPDATE: QUIT was received and the maildrop taken to commit its deletions.
    Update,
}

impl StateData {
    fn state(&self) -> State {
        match self {
            StateData::Authorization { .. } => State::Authorization,
            StateData::Transaction { .. } => State::Transaction,
            StateData::Update => State::Update,
        }
    }
}

pub(super) struct Pop3Session<A, M> {
    service: Arc<Pop3ServiceState<A, M>>,
    session: Arc<Session>,
    channel: Channel,
    settings: SessionSettings,
    observers: Observers,
    state_data: StateData,
    errors: ErrorCount,
}

impl<A, M> Pop3Session<A, M>
where
    A: Authenticator,
    M: Mailstore,
{
    pub(super) fn new(service: Arc<Pop3ServiceState<A, M>>, parts: ConnectionParts) -> Self {
        let opened = parts.open(
            service.config.max_line_len,
            service.config.unauthenticated_idle_timeout,
        );
        Pop3Session {
            channel: opened.channel,
            session: opened.session,
            settings: opened.settings,
            observers: opened.observers,
            state_data: StateData::Authorization { user: None },
            errors: ErrorCount::default(),
            service,
        }
    }

    /// Run the session to its end. By `&mut self` rather than `self`: an async fn stores a
    /// by-value argument twice, and the session is the bulk of an idle connection's memory.
    pub(super) async fn run(&mut self) -> CloseReport {
        let reason = self.serve().await;
        self.channel.shutdown().await;
        if let StateData::Transaction { .. } = self.state_data {
            // Ended without QUIT: RFC 1939 section 6 says deletions are not committed.
            tracing::debug!(session_id = %self.session.id(), "session ended outside UPDATE; deletions discarded");
        }
        CloseReport::new(&self.session, reason)
    }

    async fn serve(&mut self) -> CloseReason {
        let greeting = self.settings.greeting_or(&self.service.config.greeting);
        response::ok(self.channel.out(), &greeting);
        if let Err(reason) = self.channel.flush().await {
            return reason;
        }
        loop {
            let line = match self.next_line().await {
                Ok(line) => line,
                Err(reason) => return reason,
            };
            self.session.add_command();
            let flow = match line {
                // Boxed per command: the largest command paths (login, STLS, RETR) would
                // otherwise size the future that every idle session holds.
                Some(line) => Box::pin(self.command(&line)).await,
                // Before login, answered and closed at once: no honest client sends one.
                None if matches!(self.state_data, StateData::Authorization { .. }) => {
                    response::err(self.channel.out(), "Command line too long");
                    Flow::Close(CloseReason::ProtocolErrors)
                }
                None => self.protocol_error("Command line too long"),
            };
            let flushed = self.channel.flush().await;
            match (flow, flushed) {
                (Flow::Close(reason), _) | (Flow::Continue, Err(reason)) => return reason,
                (Flow::Continue, Ok(())) => {}
            }
        }
    }

    /// The next line from the client; `None` if it was longer than the cap. When the wait
    /// ends otherwise, the client is told why (`-ERR`) and the session closes.
    async fn next_line(&mut self) -> Result<Option<Bytes>, CloseReason> {
        let interrupted = match self.channel.next_line().await {
            Ok(line) => return Ok(line),
            Err(interrupted) => interrupted,
        };
        let (text, reason) = interrupted.into_goodbye()?;
        response::err(self.channel.out(), &text);
        let _ = self.channel.flush().await;
        Err(reason)
    }

    async fn command(&mut self, line: &[u8]) -> Flow {
        let command = match command::parse(line) {
            Ok(command) => command,
            Err(err) => return self.parse_error(err),
        };
        if let Some(capability) = command_capability(&command)
            && self.settings.is_hidden(capability)
        {
            return self.protocol_error("Unknown command");
        }
        if let Command::Capa = command {
            let caps = self.capabilities();
            response::ok(self.channel.out(), "Capability list follows");
            for cap in caps.iter() {
                // Cleaned and dot-stuffed: a capability a layer added cannot end the listing
                // early or inject a reply.
                response::line(self.channel.out(), cap);
            }
            response::multiline_end(self.channel.out());
            return Flow::Continue;
        }
        if let StateData::Transaction { .. } = self.state_data {
            return match command {
                Command::Quit => self.update().await,
                command => self.transaction(command).await,
            };
        }
        match command {
            Command::Quit => {
                response::ok(self.channel.out(), "Bye");
                Flow::Close(CloseReason::Logout)
            }
            Command::Stls => self.stls().await,
            Command::Utf8 => {
                response::ok(self.channel.out(), "UTF8 enabled");
                Flow::Continue
            }
            Command::User(name) => {
                if !self.plaintext_allowed() {
                    return self.plaintext_refused();
                }
                self.enter(StateData::Authorization { user: Some(name) });
                response::ok(self.channel.out(), "Send your password");
                Flow::Continue
            }
            Command::Pass(password) => {
                let pending = match &mut self.state_data {
                    StateData::Authorization { user } => user.take(),
                    StateData::Transaction { .. } | StateData::Update => None,
                };
                let Some(name) = pending else {
                    return self.protocol_error("Send USER first");
                };
                if !self.plaintext_allowed() {
                    return self.plaintext_refused();
                }
                self.check(name, auth::Secret::Password(password)).await
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response).await,
            Command::Apop { .. } => self.protocol_error("APOP is not supported"),
            _ => self.protocol_error("Log in first"),
        }
    }

    /// TRANSACTION-state commands (RFC 1939 section 5).
    async fn transaction(&mut self, command: Command) -> Flow {
        let StateData::Transaction { maildrop, .. } = &mut self.state_data else {
            unreachable!("called only in TRANSACTION");
        };
        match command {
            Command::Stat => {
                let (count, size) = maildrop.stat();
                response::ok(self.channel.out(), &format!("{count} {size}"));
            }
            Command::List(None) => {
                let (count, size) = maildrop.stat();
                response::ok(
                    self.channel.out(),
                    &format!("{count} messages ({size} octets)"),
                );
                for (number, message) in maildrop.live() {
                    response::line(self.channel.out(), &format!("{number} {}", message.size));
                }
                response::multiline_end(self.channel.out());
            }
            Command::List(Some(number)) => match maildrop.get(number) {
                Some(message) => {
                    response::ok(self.channel.out(), &format!("{number} {}", message.size))
                }
                None => return self.no_such_message(),
            },
            Command::Uidl(None) => {
                response::ok(self.channel.out(), "Unique-ID listing follows");
                for (number, message) in maildrop.live() {
                    let line = format!("{number} {}", maildrop.unique_id(message));
                    response::line(self.channel.out(), &line);
                }
                response::multiline_end(self.channel.out());
            }
            Command::Uidl(Some(number)) => match maildrop.get(number) {
                Some(message) => {
                    let line = format!("{number} {}", maildrop.unique_id(message));
                    response::ok(self.channel.out(), &line);
                }
                None => return self.no_such_message(),
            },
            Command::Dele(number) => {
                if maildrop.delete(number) {
                    response::ok(self.channel.out(), &format!("Message {number} deleted"));
                } else {
                    return self.no_such_message();
                }
            }
            Command::Rset => {
                maildrop.reset();
                let (count, size) = maildrop.stat();
                response::ok(
                    self.channel.out(),
                    &format!("{count} messages ({size} octets)"),
                );
            }
            Command::Noop => response::ok(self.channel.out(), ""),
            Command::Retr(number) => return self.send_message(number, None).await,
            Command::Top { msg, lines } => return self.send_message(msg, Some(lines)).await,
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Apop { .. } => {
                return self.protocol_error("Already logged in");
            }
            Command::Stls => return self.protocol_error("STLS is only allowed before login"),
            _ => return self.protocol_error("Command not valid in this state"),
        }
        Flow::Continue
    }

    async fn send_message(&mut self, number: u32, body_lines: Option<u32>) -> Flow {
        let StateData::Transaction { maildrop, .. } = &self.state_data else {
            unreachable!("called only in TRANSACTION");
        };
        let Some(message) = maildrop.get(number) else {
            return self.no_such_message();
        };
        let (uid, size) = (message.uid, message.size);
        let user = self.session.user().unwrap_or_default();
        match self.service.store.fetch(&user, INBOX, uid).await {
            Ok(content) => {
                response::ok(self.channel.out(), &format!("{size} octets"));
                write_dot_stuffed(self.channel.out(), &content, body_lines);
                Flow::Continue
            }
            Err(StoreError::NoSuchMessage) => {
                response::err(self.channel.out(), "Message was removed by another session");
                Flow::Continue
            }
            Err(err) => {
                tracing::error!(session_id = %self.session.id(), error = %err, "reading message failed");
                response::err_code(
                    self.channel.out(),
                    RespCode::SysTemp,
                    "Message temporarily unavailable",
                );
                Flow::Continue
            }
        }
    }

    /// QUIT in TRANSACTION: the UPDATE state commits deletions before saying goodbye, so an
    /// acknowledged QUIT means the messages are gone for good.
    async fn update(&mut self) -> Flow {
        let StateData::Transaction {
            maildrop, _lock, ..
        } = self.enter(StateData::Update)
        else {
            unreachable!("called only in TRANSACTION");
        };
        let deleted = maildrop.deleted_uids();
        let user = self.session.user().unwrap_or_default();
        let outcome = if deleted.is_empty() {
            Ok(())
        } else {
            self.service.store.expunge(&user, INBOX, &deleted).await
        };
        drop(_lock);
        match outcome {
            Ok(()) => {
                let (count, _) = maildrop.stat();
                response::ok(
                    self.channel.out(),
                    &format!("Bye ({} deleted, {count} left)", deleted.len()),
                );
            }
            Err(err) => {
                tracing::error!(session_id = %self.session.id(), error = %err, "committing deletions failed");
                response::err_code(
                    self.channel.out(),
                    RespCode::SysTemp,
                    "Some deleted messages were not removed",
                );
            }
        }
        Flow::Close(CloseReason::Logout)
    }

    /// AUTH (RFC 5034): without a mechanism, the list of them; with one, its exchange, the
    /// first response inline or after the mechanism's first challenge.
    async fn auth(&mut self, mechanism: Option<String>, initial: Option<String>) -> Flow {
        let Some(mechanism) = mechanism else {
            response::ok(self.channel.out(), "Supported mechanisms follow");
            if self.plaintext_allowed() {
                for name in self.service.config.sasl.offered().names() {
                    response::line(self.channel.out(), name);
                }
            }
            response::multiline_end(self.channel.out());
            return Flow::Continue;
        };
        let exchange = Exchange::new(
            &mechanism,
            &self.service.config.sasl,
            self.service.auth.clone(),
            self.session.clone(),
        );
        let Some(mut exchange) = exchange else {
            return self.protocol_error("Unsupported authentication mechanism");
        };
        if !self.plaintext_allowed() {
            return self.plaintext_refused();
        }
        let initial = match initial.map(|text| command::decode_sasl_response(&text)) {
            None => None,
            Some(Ok(message)) => Some(message),
            Some(Err(_)) => {
                return self.protocol_error("Invalid base64 in authentication response");
            }
        };
        let mut step = exchange.start(initial).await;
        loop {
            match step {
                Step::Challenge(challenge) => match self.sasl_response(&challenge).await {
                    Ok(message) => step = exchange.respond(message).await,
                    Err(flow) => return flow,
                },
                Step::Done(Ok(user)) => return self.logged_in(user).await,
                Step::Done(Err(Failure::Refused(err))) => return self.login_failed(err),
                Step::Done(Err(Failure::Malformed(text))) => return self.protocol_error(text),
            }
        }
    }

    /// Send a challenge (`+ base64`) and read the client's response: base64, or `*` to cancel.
    async fn sasl_response(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Flow> {
        response::continuation(self.channel.out(), &sasl::base64::encode(challenge));
        if let Err(reason) = self.channel.flush().await {
            return Err(Flow::Close(reason));
        }
        let line = match self.read_auth_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return Err(self.protocol_error("Authentication response too long")),
            Err(reason) => return Err(Flow::Close(reason)),
        };
        match command::parse_auth_response(&line) {
            AuthResponse::Cancel => Err(self.protocol_error("Authentication cancelled")),
            AuthResponse::Data(data) => command::decode_sasl_response(&data)
                .map_err(|_| self.protocol_error("Invalid base64 in authentication response")),
        }
    }

    /// Read one SASL response line with the larger auth cap. `Ok(None)` means too long.
    async fn read_auth_line(&mut self) -> Result<Option<Bytes>, CloseReason> {
        self.channel
            .set_max_line_len(self.service.config.max_auth_line_len);
        let line = self.next_line().await;
        self.channel
            .set_max_line_len(self.service.config.max_line_len);
        line
    }

    /// USER/PASS: ask the authentication service.
    async fn check(&mut self, user: String, secret: auth::Secret) -> Flow {
        match auth::check(&self.service.auth, &self.session, user, secret).await {
            Ok(user) => self.logged_in(user).await,
            Err(err) => self.login_failed(err),
        }
    }

    /// Enter TRANSACTION as `user`, whom the authentication service accepted, once the
    /// maildrop is locked and read.
    async fn logged_in(&mut self, user: User) -> Flow {
        let Some(lock) = self.service.locks().try_lock(&user.name) else {
            response::err_code(
                self.channel.out(),
                RespCode::InUse,
                "Mailbox is locked by another POP3 session",
            );
            return Flow::Continue;
        };
        let store = &self.service.store;
        let maildrop = match store.ensure_user(&user.name).await {
            Ok(()) => Maildrop::open(store, &user.name).await,
            Err(err) => Err(err),
        };
        let maildrop = match maildrop {
            Ok(maildrop) => maildrop,
            Err(err) => {
                tracing::error!(session_id = %self.session.id(), error = %err, "opening maildrop failed");
                response::err_code(
                    self.channel.out(),
                    RespCode::SysTemp,
                    "Mailbox temporarily unavailable",
                );
                return Flow::Continue;
            }
        };
        let name = user.name.clone();
        self.session.set_user(Some(name.clone()));
        let idle = self
            .settings
            .idle_timeout
            .unwrap_or(self.service.config.idle_timeout);
        self.channel.set_idle_timeout(idle);
        self.channel.logged_in();
        self.enter(StateData::Transaction {
            maildrop,
            _lock: lock,
            _user: Box::new(user),
        });
        if let Err(reject) = self.notify(SessionEvent::Authenticated { user: &name }) {
            return Flow::Close(self.end_with(reject).await);
        }
        let StateData::Transaction { maildrop, .. } = &self.state_data else {
            unreachable!("just set");
        };
        let (count, size) = maildrop.stat();
        response::ok(
            self.channel.out(),
            &format!("Logged in, {count} messages ({size} octets)"),
        );
        Flow::Continue
    }

    fn login_failed(&mut self, err: AuthError) -> Flow {
        // Cut short because the session is ending (the failure delay hears shutdown, kicks and
        // bans): no verdict; the goodbye the next read says is the answer, the one `-ERR`.
        if self.session.is_ending() {
            return Flow::Continue;
        }
        let (code, text) = match err {
            AuthError::InvalidCredentials => (RespCode::Auth, "Authentication failed"),
            AuthError::Limit => (RespCode::InUse, "Too many sessions for this user"),
            _ => (RespCode::SysTemp, "Authentication temporarily unavailable"),
        };
        response::err_code(self.channel.out(), code, text);
        self.count_error()
    }

    async fn stls(&mut self) -> Flow {
        if self.session.secure() {
            return self.protocol_error("Already using TLS");
        }
        if !self.channel.can_starttls() {
            return self.protocol_error("STLS not available");
        }
        response::ok(self.channel.out(), "Begin TLS negotiation");
        if let Err(reason) = self.channel.flush().await {
            return Flow::Close(reason);
        }
        let timeout = self.service.config.tls_handshake_timeout;
        if let Err(reason) = self.channel.starttls(timeout).await {
            return Flow::Close(reason);
        }
        match self.notify(SessionEvent::TlsUpgraded) {
            Ok(()) => Flow::Continue,
            Err(reject) => Flow::Close(self.end_with(reject).await),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::for_session(
            self.plaintext_allowed(),
            self.channel.can_starttls(),
            matches!(self.state_data, StateData::Authorization { .. }),
            self.service.config.sasl.offered(),
            &self.settings,
        )
    }

    fn plaintext_allowed(&self) -> bool {
        self.session.secure()
            || self
                .settings
                .allow_plaintext_login
                .unwrap_or(self.service.config.allow_plaintext_login)
    }

    fn plaintext_refused(&mut self) -> Flow {
        response::err_code(
            self.channel.out(),
            RespCode::Auth,
            "Plaintext authentication disallowed without TLS; use STLS",
        );
        self.count_error()
    }

    fn no_such_message(&mut self) -> Flow {
        self.protocol_error("No such message")
    }

    fn parse_error(&mut self, err: ParseError) -> Flow {
        self.protocol_error(&err.to_string())
    }

    fn protocol_error(&mut self, text: &str) -> Flow {
        response::err(self.channel.out(), text);
        self.count_error()
    }

    fn count_error(&mut self) -> Flow {
        if self
            .errors
            .add_one(&self.settings, self.service.config.max_errors)
        {
            response::err(self.channel.out(), "Too many errors, closing connection");
            return Flow::Close(CloseReason::ProtocolErrors);
        }
        Flow::Continue
    }

    /// Move to the state `data` belongs to, publishing it on the session; returns what the
    /// session held before.
    fn enter(&mut self, data: StateData) -> StateData {
        self.session.set_state(data.state());
        std::mem::replace(&mut self.state_data, data)
    }

    fn notify(&self, event: SessionEvent<'_>) -> Result<(), Reject> {
        self.observers.notify(&self.session, &event)
    }

    async fn end_with(&mut self, reject: Reject) -> CloseReason {
        response::err(self.channel.out(), reject.message());
        let _ = self.channel.flush().await;
        CloseReason::Kicked(reject.message().to_owned())
    }
}

/// The capability that names a command, for commands a layer may withhold.
fn command_capability(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::Stls => "STLS",
        Command::Top { .. } => "TOP",
        Command::Uidl(_) => "UIDL",
        Command::User(_) | Command::Pass(_) => "USER",
        Command::Auth { .. } => "SASL",
        Command::Utf8 => "UTF8",
        _ => return None,
    })
}
