//! One IMAP session: the command loop, dispatch by RFC 3501 state, and what every command
//! handler shares (replies, error counting, observers, goodbyes).

use std::sync::Arc;
use std::time::Duration;

use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::response::{Capability, Code, StatusKind};

use super::capabilities::{self, Situation};
use super::condstore::Resync;
use super::config::ImapServiceState;
use super::flagging::StoreChange;
use super::framing::{self, Input, Limits, Problem};
use super::id::MAX_ID_COMMAND_LEN;
use super::list::basic_request;
use super::response;
use super::syntax::Extension;
use super::syntax::list::ListRequest;
use super::view::{Expunges, MailboxView};
use crate::auth::{Authenticator, User};
use crate::close::CloseReport;
use crate::close_reason::CloseReason;
use crate::connection::{ConnectionParts, SessionSettings};
use crate::events::{Observers, SessionEvent};
use crate::protocol::ErrorCount;
use crate::reject::Reject;
use crate::session::{Session, State};
use crate::store::Mailstore;
use crate::wire::{Channel, Interrupted, bye};

/// Whether the session tells the client about changes to the selected mailbox before
/// running `body`, and whether removed messages may be reported then (see [`Expunges`]).
/// Commands that leave the mailbox need no update.
fn sync_before(body: &CommandBody<'_>) -> Option<Expunges> {
    match body {
        CommandBody::Select { .. }
        | CommandBody::Examine { .. }
        | CommandBody::Close
        | CommandBody::Unselect
        | CommandBody::Logout => None,
        CommandBody::Fetch { uid: false, .. }
        | CommandBody::Store { uid: false, .. }
        | CommandBody::Search { uid: false, .. }
        | CommandBody::Sort { uid: false, .. }
        | CommandBody::Thread { uid: false, .. }
        | CommandBody::Copy { uid: false, .. }
        | CommandBody::Move { uid: false, .. } => Some(Expunges::Defer),
        _ => Some(Expunges::Report),
    }
}

/// The commands of the selected state (RFC 3501 section 6.4, and EXPUNGE's and MOVE's
/// extensions).
fn needs_selection(body: &CommandBody<'_>) -> bool {
    matches!(
        body,
        CommandBody::Check
            | CommandBody::Expunge
            | CommandBody::ExpungeUid { .. }
            | CommandBody::Fetch { .. }
            | CommandBody::Search { .. }
            | CommandBody::Sort { .. }
            | CommandBody::Thread { .. }
            | CommandBody::Store { .. }
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. }
    )
}

/// What to do after a command.
pub(super) enum Flow {
    Continue,
    Close(CloseReason),
}

pub(super) struct ImapSession<A, M> {
    pub(super) service: Arc<ImapServiceState<A, M>>,
    pub(super) session: Arc<Session>,
    pub(super) channel: Channel,
    pub(super) settings: SessionSettings,
    /// Boxed: most sessions wait with nothing selected, or not logged in at all.
    pub(super) selected: Option<Box<MailboxView>>,
    /// The logged-in user, kept for the leases that auth layers attached (a per-user session
    /// slot): they are released when the session ends. Boxed: most sessions never log in.
    pub(super) account: Option<Box<User>>,
    /// The client sent ENABLE IMAP4rev2: RFC 9051's behaviour instead of RFC 3501's (no
    /// `\Recent`, ESEARCH for SEARCH, UTF-8 mailbox names, ...).
    pub(super) rev2: bool,
    /// What the command being served carries beyond what `imap-codec` decoded (the saved
    /// search result `$` above all, which sequence sets are resolved against).
    pub(super) extension: Extension,
    /// CONDSTORE or QRESYNC, once the client switched them on.
    pub(super) resync: Resync,
    observers: Observers,
    errors: ErrorCount,
}

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    pub(super) fn new(service: Arc<ImapServiceState<A, M>>, parts: ConnectionParts) -> Self {
        let mut opened = parts.open(
            service.config.max_line_len,
            service.config.unauthenticated_idle_timeout,
        );
        opened
            .channel
            .allow_longer_lines(MAX_ID_COMMAND_LEN, framing::is_id_command);
        ImapSession {
            channel: opened.channel,
            session: opened.session,
            settings: opened.settings,
            observers: opened.observers,
            selected: None,
            account: None,
            rev2: false,
            extension: Extension::default(),
            resync: Resync::Off,
            errors: ErrorCount::default(),
            service,
        }
    }

    /// Run the session to its end. By `&mut self` rather than `self`: an async fn stores a
    /// by-value argument twice, and the session is the bulk of an idle connection's memory.
    pub(super) async fn run(&mut self) -> CloseReport {
        let reason = self.serve().await;
        self.channel.shutdown().await;
        CloseReport::new(&self.session, reason)
    }

    async fn serve(&mut self) -> CloseReason {
        self.greet();
        if let Err(reason) = self.channel.flush().await {
            return reason;
        }
        loop {
            let limits = self.limits();
            let input = match framing::read_command(&mut self.channel, limits).await {
                Ok(input) => input,
                Err(interrupted) => return self.interrupted(interrupted).await,
            };
            self.session.add_command();
            let flow = match input {
                // Boxed per command: the largest command paths (login, STARTTLS) would
                // otherwise size the future that every idle session holds.
                Input::Command(command, extension) => {
                    Box::pin(self.command(command, extension)).await
                }
                Input::List { tag, request } => Box::pin(self.extended_list(tag, *request)).await,
                // Before login an overlong line is no client's honest mistake: answered and
                // closed at once, so it cannot keep the connection busy skipping.
                Input::Invalid {
                    problem: Problem::LineTooLong,
                    ..
                } if self.session.state() == State::NotAuthenticated => {
                    bye(self.channel.out(), Problem::LineTooLong.text());
                    Flow::Close(CloseReason::ProtocolErrors)
                }
                Input::Invalid { tag, problem } => self.invalid(tag, problem),
                Input::Append(start) => Box::pin(self.append_streamed(*start)).await,
                Input::LiteralOverflow(problem) => {
                    bye(self.channel.out(), problem.text());
                    Flow::Close(CloseReason::ProtocolErrors)
                }
            };
            let flushed = self.channel.flush().await;
            match (flow, flushed) {
                (Flow::Close(reason), _) | (Flow::Continue, Err(reason)) => return reason,
                (Flow::Continue, Ok(())) => {}
            }
        }
    }

    /// What one command may hold now: before login, literals are held to the small login
    /// cap.
    fn limits(&self) -> Limits {
        let config = &self.service.config;
        let authenticated = self.session.state() != State::NotAuthenticated;
        Limits {
            max_line_len: config.max_line_len,
            max_literal_len: match authenticated {
                true => config.max_literal_len,
                false => config.max_unauthenticated_literal_len,
            },
            max_append_len: config.max_append_len,
            authenticated,
        }
    }

    /// A wait for the client stopped: say why with `* BYE` (unless the client is gone) and
    /// return the close reason.
    pub(super) async fn interrupted(&mut self, interrupted: Interrupted) -> CloseReason {
        let (text, reason) = match interrupted.into_goodbye() {
            Ok(goodbye) => goodbye,
            Err(reason) => return reason,
        };
        bye(self.channel.out(), &text);
        let _ = self.channel.flush().await;
        reason
    }

    async fn command(&mut self, command: Command<'static>, extension: Extension) -> Flow {
        let Command { tag, body } = command;
        if capabilities::of_command(&body)
            .iter()
            .chain(capabilities::of_extension(extension))
            .any(|capability| capabilities::withheld(&self.settings, capability))
        {
            return self.bad(&tag, "Unknown command");
        }
        self.extension = extension;
        // NOOP is the client's way to ask for these updates (RFC 3501 section 6.1.2).
        if let Some(expunges) = sync_before(&body)
            && let Err(reason) = self.sync(expunges).await
        {
            return Flow::Close(reason);
        }
        match body {
            CommandBody::Capability => self.capability(&tag),
            CommandBody::Noop => self.ok(&tag, None, "NOOP completed"),
            CommandBody::Logout => self.logout(&tag),
            CommandBody::Id { parameters } => self.id(&tag, parameters).await,
            body if self.session.state() == State::NotAuthenticated => {
                self.not_authenticated(&tag, body).await
            }
            body => self.authenticated(&tag, body).await,
        }
    }

    /// A LIST in RFC 5258's extended syntax: a command of the authenticated state, as any
    /// LIST.
    async fn extended_list(&mut self, tag: Tag<'static>, request: ListRequest) -> Flow {
        let needs = capabilities::of_list(&request);
        if needs
            .iter()
            .any(|capability| self.settings.is_hidden(capability))
        {
            return self.bad(&tag, "Unknown command");
        }
        if self.session.state() == State::NotAuthenticated {
            return self.bad(&tag, "Log in first");
        }
        if let Err(reason) = self.sync(Expunges::Report).await {
            return Flow::Close(reason);
        }
        self.list(&tag, request, false).await
    }

    /// RFC 3501 section 6.2.
    async fn not_authenticated(&mut self, tag: &Tag<'static>, body: CommandBody<'static>) -> Flow {
        match body {
            CommandBody::StartTLS => self.starttls(tag).await,
            CommandBody::Login { username, password } => self.login(tag, username, password).await,
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => self.authenticate(tag, mechanism, initial_response).await,
            _ => self.bad(tag, "Log in first"),
        }
    }

    /// RFC 3501 sections 6.3 and 6.4.
    async fn authenticated(&mut self, tag: &Tag<'static>, body: CommandBody<'static>) -> Flow {
        match body {
            CommandBody::StartTLS
            | CommandBody::Login { .. }
            | CommandBody::Authenticate { .. } => self.bad(tag, "Already logged in"),
            CommandBody::Enable { capabilities } => self.enable(tag, capabilities.as_ref()),
            #[cfg(feature = "compress")]
            CommandBody::Compress { algorithm } => self.compress(tag, algorithm).await,
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(tag, mailbox, false, parameters).await,
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(tag, mailbox, true, parameters).await,
            CommandBody::Close => self.close(tag, true).await,
            CommandBody::Unselect => self.close(tag, false).await,
            CommandBody::Create { mailbox } => self.create(tag, mailbox).await,
            CommandBody::Delete { mailbox } => self.delete(tag, mailbox).await,
            CommandBody::Rename { from, to } => self.rename(tag, from, to).await,
            CommandBody::Subscribe { mailbox } => self.subscribe(tag, mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(tag, mailbox, false).await,
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                let request = basic_request(&reference, mailbox_wildcard);
                self.list(tag, request, false).await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                let request = basic_request(&reference, mailbox_wildcard);
                self.list(tag, request, true).await
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(tag, mailbox, &item_names).await,
            CommandBody::Namespace => self.namespace(tag),
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(tag, mailbox, &flags, date, message).await,
            CommandBody::Idle => self.idle(tag).await,
            body if self.selected.is_none() && needs_selection(&body) => {
                self.bad(tag, "No mailbox selected")
            }
            CommandBody::Check => self.ok(tag, None, "CHECK completed"),
            CommandBody::Expunge => self.expunge(tag, None).await,
            CommandBody::ExpungeUid { sequence_set } => self.expunge(tag, Some(sequence_set)).await,
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                self.fetch(tag, &sequence_set, &macro_or_item_names, uid, &modifiers)
                    .await
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                let options = self.extension.search_return;
                self.search(tag, charset, criteria.as_ref(), uid, options)
                    .await
            }
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                self.sort(
                    tag,
                    sort_criteria.as_ref(),
                    &charset,
                    search_criteria.as_ref(),
                    uid,
                )
                .await
            }
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                self.thread(tag, &algorithm, &charset, search_criteria.as_ref(), uid)
                    .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                let change = StoreChange {
                    kind,
                    reply: response,
                    flags: &flags,
                };
                self.store(tag, &sequence_set, change, uid, &modifiers)
                    .await
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(tag, &sequence_set, mailbox, uid, false).await,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(tag, &sequence_set, mailbox, uid, true).await,
            other => {
                // Not the client's fault: not counted as a protocol error.
                let text = format!("{} is not implemented yet", other.name());
                response::tagged(self.channel.out(), tag, StatusKind::Bad, None, &text);
                Flow::Continue
            }
        }
    }

    /// `* OK [CAPABILITY ...] <greeting>`, as encoded once for the service unless a layer
    /// changed the greeting or the capabilities of this session.
    fn greet(&mut self) {
        let situation = self.situation();
        if capabilities::greeting_is_default(&self.settings) {
            let line = self.service.among_sessions.get(situation, || {
                let mut line = Vec::new();
                let capabilities = capabilities::for_session(situation, &self.settings);
                response::greeting(&mut line, capabilities, &self.service.config.greeting);
                line
            });
            self.channel.out().extend_from_slice(line);
        } else {
            let greeting = self.settings.greeting_or(&self.service.config.greeting);
            let capabilities = capabilities::for_session(situation, &self.settings);
            response::greeting(self.channel.out(), capabilities, &greeting);
        }
    }

    /// The capabilities to advertise now.
    pub(super) fn capabilities(&self) -> Vec1<Capability<'static>> {
        capabilities::for_session(self.situation(), &self.settings)
    }

    /// Where the session is, as far as the capability list depends on it.
    fn situation(&self) -> Situation {
        Situation {
            unauthenticated: self.session.state() == State::NotAuthenticated,
            plaintext_login: self.plaintext_allowed(),
            starttls: self.channel.can_starttls(),
            compressing: self.channel.compressing(),
            sasl: self.service.config.sasl.offered(),
        }
    }

    /// Whether a login would be accepted on this connection now.
    pub(super) fn plaintext_allowed(&self) -> bool {
        self.session.secure()
            || self
                .settings
                .allow_plaintext_login
                .unwrap_or(self.service.config.allow_plaintext_login)
    }

    /// RFC 9051 section 5.4 wants at least 30 minutes once logged in: a per-connection
    /// setting may lengthen the configured timeout, not shorten it.
    pub(super) fn authenticated_idle_timeout(&self) -> Duration {
        let configured = self.service.config.idle_timeout;
        self.settings
            .idle_timeout
            .map_or(configured, |set| set.max(configured))
    }

    /// The logged-in user's name.
    pub(super) fn user(&self) -> String {
        self.session.user().unwrap_or_default()
    }

    /// Select `selected` (or nothing), keeping the shared [`Session`] in step.
    pub(super) fn set_selected(&mut self, selected: Option<Box<MailboxView>>) {
        self.session
            .set_selected(selected.as_ref().map(|s| s.name.clone()));
        self.session.set_state(match selected {
            Some(_) => State::Selected,
            None => State::Authenticated,
        });
        self.selected = selected;
    }

    pub(super) fn ok(
        &mut self,
        tag: &Tag<'static>,
        code: Option<Code<'static>>,
        text: &str,
    ) -> Flow {
        response::tagged(self.channel.out(), tag, StatusKind::Ok, code, text);
        Flow::Continue
    }

    /// A refusal that is no protocol error (a missing mailbox, a store failure).
    pub(super) fn no(&mut self, tag: &Tag<'static>, code: &'static str, text: &str) -> Flow {
        let code = Some(response::code(code));
        response::tagged(self.channel.out(), tag, StatusKind::No, code, text);
        Flow::Continue
    }

    /// A protocol error: answered `BAD` and counted.
    pub(super) fn bad(&mut self, tag: &Tag<'static>, text: &str) -> Flow {
        response::tagged(self.channel.out(), tag, StatusKind::Bad, None, text);
        self.count_error()
    }

    fn invalid(&mut self, tag: Option<Tag<'static>>, problem: Problem) -> Flow {
        match tag {
            Some(tag) => self.bad(&tag, problem.text()),
            None => {
                response::untagged(self.channel.out(), StatusKind::Bad, None, problem.text());
                self.count_error()
            }
        }
    }

    pub(super) fn count_error(&mut self) -> Flow {
        if self
            .errors
            .add_one(&self.settings, self.service.config.max_errors)
        {
            bye(self.channel.out(), "Too many errors");
            return Flow::Close(CloseReason::ProtocolErrors);
        }
        Flow::Continue
    }

    /// Report `event` to the layers' observers; a refusal ends the session.
    pub(super) async fn notify(&mut self, event: SessionEvent<'_>) -> Result<(), CloseReason> {
        match self.observers.notify(&self.session, &event) {
            Ok(()) => Ok(()),
            Err(reject) => Err(self.end_with(reject).await),
        }
    }

    async fn end_with(&mut self, reject: Reject) -> CloseReason {
        bye(self.channel.out(), reject.message());
        let _ = self.channel.flush().await;
        CloseReason::Kicked(reject.message().to_owned())
    }
}
