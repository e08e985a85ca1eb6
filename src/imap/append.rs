//! APPEND (RFC 3501 section 6.3.11), answered with APPENDUID (RFC 4315).

use std::num::NonZeroU32;

use bytes::Bytes;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, StatusKind};

use super::mailboxes::mailbox_name;
use super::session::{Flow, ImapSession};
use super::view::Expunges;
use super::{dates, flags, response};
use crate::auth::Authenticator;
use crate::store::{Mailstore, StoreError};

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// Deliver the client's message. Acknowledged only once the store made it durable.
    pub(super) async fn append(
        &mut self,
        tag: &Tag<'static>,
        target: Mailbox<'static>,
        requested: &[Flag<'_>],
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
    ) -> Flow {
        let Some(target) = mailbox_name(&target) else {
            return self.no(tag, "TRYCREATE", "No such mailbox");
        };
        let content = match message {
            LiteralOrLiteral8::Literal(literal) => Bytes::from(literal.into_inner().into_owned()),
            LiteralOrLiteral8::Literal8(literal) => Bytes::from(literal.data.into_owned()),
        };
        let user = self.user();
        let store = &self.shared.store;
        let internal_date = date.as_ref().map(dates::from_imap);
        let uid = match store
            .append(
                &user,
                &target,
                content,
                flags::from_imap(requested),
                internal_date,
            )
            .await
        {
            Ok(uid) => uid,
            Err(StoreError::NoSuchMailbox) => {
                return self.no(tag, "TRYCREATE", "No such mailbox");
            }
            Err(err) => return self.store_failed(tag, err),
        };
        let selected_target = self.selected.as_ref().is_some_and(|v| v.name == target);
        let uid_validity = match selected_target {
            // RFC 3501: the client of the selected mailbox hears of the new message now.
            true => match self.sync(Expunges::Report).await {
                Ok(()) => self.selected.as_ref().map(|v| v.uid_validity()),
                Err(reason) => return Flow::Close(reason),
            },
            false => store
                .snapshot(&user, &target)
                .await
                .ok()
                .map(|s| s.uid_validity),
        };
        let code = uid_validity
            .and_then(NonZeroU32::new)
            .zip(NonZeroU32::new(uid))
            .map(|(uid_validity, uid)| Code::AppendUid { uid_validity, uid });
        response::tagged(
            self.channel.out(),
            tag,
            StatusKind::Ok,
            code,
            "APPEND completed",
        );
        Flow::Continue
    }
}
