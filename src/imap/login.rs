//! The not-authenticated state: STARTTLS, LOGIN and AUTHENTICATE (RFC 3501 section 6.2, RFC
//! 9051 section 6.2.1, RFC 4959 SASL-IR, RFC 5530 response codes), with the mechanisms of
//! `auth::sasl`: this file is only IMAP's framing of them.

use std::borrow::Cow;

use imap_codec::AuthenticateDataCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::core::{AString, Tag};
use imap_codec::imap_types::response::{Code, StatusKind};
use imap_codec::imap_types::secret::Secret;

use super::response;
use super::session::{Flow, ImapSession};
use crate::auth::sasl::{Exchange, Failure, Step};
use crate::auth::{self, AuthError, Authenticator, User};
use crate::events::SessionEvent;
use crate::session::State;
use crate::store::Mailstore;

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// RFC 9051 section 6.2.1. Bytes pipelined after the command are discarded by
    /// [`Channel::starttls`](crate::wire::Channel::starttls), never read as if sent over TLS.
    pub(super) async fn starttls(&mut self, tag: &Tag<'static>) -> Flow {
        if self.session.secure() {
            return self.bad(tag, "TLS is already active");
        }
        if !self.channel.can_starttls() {
            return self.bad(tag, "STARTTLS is not available");
        }
        self.ok(tag, None, "Begin TLS negotiation now");
        if let Err(reason) = self.channel.flush().await {
            return Flow::Close(reason);
        }
        let timeout = self.service.config.tls_handshake_timeout;
        if let Err(reason) = self.channel.starttls(timeout).await {
            return Flow::Close(reason);
        }
        match self.notify(SessionEvent::TlsUpgraded).await {
            Ok(()) => Flow::Continue,
            Err(reason) => Flow::Close(reason),
        }
    }

    pub(super) async fn login(
        &mut self,
        tag: &Tag<'static>,
        username: AString<'static>,
        password: Secret<AString<'static>>,
    ) -> Flow {
        if !self.plaintext_allowed() {
            return self.privacy_required(tag);
        }
        let user = String::from_utf8(username.as_ref().to_vec());
        let password = String::from_utf8(password.declassify().as_ref().to_vec());
        let (Ok(user), Ok(password)) = (user, password) else {
            // No account has a name or password that is not UTF-8.
            return self.login_failed(tag, AuthError::InvalidCredentials);
        };
        let secret = auth::Secret::Password(password);
        match auth::check(&self.service.auth, &self.session, user, secret).await {
            Ok(user) => self.logged_in(tag, user).await,
            Err(err) => self.login_failed(tag, err),
        }
    }

    /// AUTHENTICATE with one of the configured mechanisms, the first response inline (SASL-IR)
    /// or after the mechanism's first challenge.
    pub(super) async fn authenticate(
        &mut self,
        tag: &Tag<'static>,
        mechanism: AuthMechanism<'static>,
        initial_response: Option<Secret<Cow<'static, [u8]>>>,
    ) -> Flow {
        let exchange = Exchange::new(
            mechanism.as_ref(),
            &self.service.config.sasl,
            self.service.auth.clone(),
            self.session.clone(),
        );
        let Some(mut exchange) = exchange else {
            response::tagged(
                self.channel.out(),
                tag,
                StatusKind::No,
                None,
                "Unsupported authentication mechanism",
            );
            return self.count_error();
        };
        if !self.plaintext_allowed() {
            return self.privacy_required(tag);
        }
        let initial = initial_response.map(|message| message.declassify().to_vec());
        let mut step = exchange.start(initial).await;
        loop {
            match step {
                Step::Challenge(challenge) => match self.sasl_response(tag, &challenge).await {
                    Ok(message) => step = exchange.respond(message).await,
                    Err(flow) => return flow,
                },
                Step::Done(Ok(user)) => return self.logged_in(tag, user).await,
                Step::Done(Err(Failure::Refused(err))) => return self.login_failed(tag, err),
                Step::Done(Err(Failure::Malformed(text))) => return self.bad(tag, text),
            }
        }
    }

    /// Send a challenge and read the client's response line (RFC 3501 section 6.2.2): base64,
    /// or `*` to cancel.
    async fn sasl_response(
        &mut self,
        tag: &Tag<'static>,
        challenge: &[u8],
    ) -> Result<Vec<u8>, Flow> {
        response::challenge(self.channel.out(), challenge);
        if let Err(reason) = self.channel.flush().await {
            return Err(Flow::Close(reason));
        }
        let line = match self.channel.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return Err(self.bad(tag, "Authentication response too long")),
            Err(interrupted) => return Err(Flow::Close(self.interrupted(interrupted).await)),
        };
        let mut line = line.to_vec();
        line.extend_from_slice(b"\r\n");
        match AuthenticateDataCodec::default().decode(&line) {
            Ok((_, AuthenticateData::Continue(message))) => Ok(message.declassify().to_vec()),
            Ok((_, AuthenticateData::Cancel)) => Err(self.bad(tag, "Authentication cancelled")),
            Err(_) => Err(self.bad(tag, "Invalid base64 in authentication response")),
        }
    }

    /// Enter the authenticated state as `user`, whom the authentication service accepted.
    async fn logged_in(&mut self, tag: &Tag<'static>, user: User) -> Flow {
        if let Err(err) = self.service.store.ensure_user(&user.name).await {
            tracing::error!(session_id = %self.session.id(), error = %err, "opening the user's mail failed");
            return self.no(tag, "UNAVAILABLE", "Mailbox temporarily unavailable");
        }
        let name = user.name.clone();
        self.session.set_user(Some(name.clone()));
        self.session.set_state(State::Authenticated);
        self.account = Some(Box::new(user));
        let idle = self.authenticated_idle_timeout();
        self.channel.set_idle_timeout(idle);
        self.channel.logged_in();
        if let Err(reason) = self
            .notify(SessionEvent::Authenticated { user: &name })
            .await
        {
            return Flow::Close(reason);
        }
        // RFC 9051 section 6.2.3: the capabilities change with the login; saying them here
        // saves the client a round trip.
        let code = Code::Capability(self.capabilities());
        self.ok(tag, Some(code), "Logged in")
    }

    fn login_failed(&mut self, tag: &Tag<'static>, err: AuthError) -> Flow {
        // Cut short because the session is ending (the failure delay hears shutdown, kicks and
        // bans): no verdict; the goodbye the next read says is the answer, as in Dovecot.
        if self.session.is_ending() {
            return Flow::Continue;
        }
        let (code, text) = match err {
            AuthError::InvalidCredentials => ("AUTHENTICATIONFAILED", "Authentication failed"),
            AuthError::Limit => ("LIMIT", "Too many sessions for this user"),
            _ => ("UNAVAILABLE", "Authentication temporarily unavailable"),
        };
        self.no(tag, code, text);
        self.count_error()
    }

    fn privacy_required(&mut self, tag: &Tag<'static>) -> Flow {
        self.no(
            tag,
            "PRIVACYREQUIRED",
            "Plaintext login disallowed without TLS; use STARTTLS",
        );
        self.count_error()
    }
}
