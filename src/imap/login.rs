//! The not-authenticated state: STARTTLS, LOGIN and AUTHENTICATE PLAIN (RFC 3501 section
//! 6.2, RFC 9051 section 6.2.1, RFC 4959 SASL-IR, RFC 5530 response codes).

use std::borrow::Cow;

use imap_codec::AuthenticateDataCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::core::{AString, Tag};
use imap_codec::imap_types::response::{Code, StatusKind};
use imap_codec::imap_types::secret::Secret;

use super::response;
use super::session::{Flow, ImapSession};
use crate::auth::Authenticator;
use crate::auth::sasl::{self, PlainError};
use crate::auth::{self, AuthError};
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
        match (user, password) {
            (Ok(user), Ok(password)) => self.complete_login(tag, user, password).await,
            // No account has a name or password that is not UTF-8.
            _ => self.login_failed(tag, AuthError::InvalidCredentials),
        }
    }

    /// AUTHENTICATE PLAIN (RFC 4616), with the response inline (SASL-IR) or after an empty
    /// challenge.
    pub(super) async fn authenticate(
        &mut self,
        tag: &Tag<'static>,
        mechanism: AuthMechanism<'static>,
        initial_response: Option<Secret<Cow<'static, [u8]>>>,
    ) -> Flow {
        if mechanism != AuthMechanism::Plain {
            response::tagged(
                self.channel.out(),
                tag,
                StatusKind::No,
                None,
                "Unsupported authentication mechanism",
            );
            return self.count_error();
        }
        if !self.plaintext_allowed() {
            return self.privacy_required(tag);
        }
        let message = match initial_response {
            Some(message) => message.declassify().to_vec(),
            None => match self.sasl_response(tag).await {
                Ok(message) => message,
                Err(flow) => return flow,
            },
        };
        match sasl::plain_login(&message) {
            Ok((user, password)) => self.complete_login(tag, user, password).await,
            Err(PlainError::Impersonation) => self.login_failed(tag, AuthError::InvalidCredentials),
            Err(PlainError::Malformed) => self.bad(tag, "Invalid SASL PLAIN response"),
        }
    }

    /// Send the empty challenge and read the client's response line (RFC 3501 section 6.2.2):
    /// base64, or `*` to cancel.
    async fn sasl_response(&mut self, tag: &Tag<'static>) -> Result<Vec<u8>, Flow> {
        response::empty_challenge(self.channel.out());
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

    /// Check the credentials and, if they are good, enter the authenticated state.
    async fn complete_login(&mut self, tag: &Tag<'static>, user: String, password: String) -> Flow {
        let user = match auth::check(&self.service.auth, &self.session, user, password).await {
            Ok(user) => user,
            Err(err) => return self.login_failed(tag, err),
        };
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
