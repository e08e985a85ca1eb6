//! APPEND (RFC 3501 section 6.3.11), answered with APPENDUID (RFC 4315).
//!
//! The message is streamed into the store's [`MessageUpload`] as it arrives, a piece at a
//! time, so a session holds a small constant whatever the message's size: the read buffer
//! (64 KiB at most) and the store's own buffer. The upload is opened before the client is
//! asked for the message, so a missing mailbox is answered `NO` instead of `+`.

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{LiteralMode, Tag};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, StatusKind};

use super::flags::Refused;
use super::framing::AppendStart;
use super::mailboxes::mailbox_name;
use super::session::{Flow, ImapSession};
use super::view::Expunges;
use super::{dates, flags, response};
use crate::auth::Authenticator;
use crate::store::{Mailstore, MessageFlags, MessageUpload, StoreError};

/// The most of the message read from the client at once.
const CHUNK: usize = 64 * 1024;

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// An APPEND whose message is still on the wire: open the upload, ask for the message
    /// (a synchronizing literal), stream it into the store, then deliver it.
    pub(super) async fn append_streamed(&mut self, start: AppendStart) -> Flow {
        let AppendStart {
            tag,
            mailbox,
            flags,
            date,
            length,
            mode,
        } = start;
        let opened = open_upload(
            &self.service.store,
            &self.user(),
            &mailbox,
            self.rev2,
            &flags,
            length,
        )
        .await;
        if opened.is_err() && mode == LiteralMode::Sync {
            // The client has sent nothing of the message yet and will not.
            return self.finish_append(&tag, opened, date.as_ref()).await;
        }
        if mode == LiteralMode::Sync {
            response::continuation(self.channel.out(), "Ready for literal data");
            if let Err(reason) = self.channel.flush().await {
                return Flow::Close(reason);
            }
        }
        // A refused non-synchronizing message is still read, to find the next command.
        let mut upload = opened;
        let mut remaining = length;
        while remaining > 0 {
            let chunk = match self.channel.read_chunk(remaining.min(CHUNK)).await {
                Ok(chunk) => chunk,
                Err(interrupted) => return Flow::Close(self.interrupted(interrupted).await),
            };
            remaining -= chunk.len();
            if let Ok(opened) = &mut upload
                && let Err(err) = opened.upload.write(&chunk).await
            {
                upload = Err(Refusal::Store(err));
            }
        }
        // The command ends with the message: MULTIAPPEND is not offered.
        match self.channel.next_line().await {
            Ok(Some(rest)) if rest.is_empty() => {}
            Ok(_) => return self.bad(&tag, "Unexpected data after the message"),
            Err(interrupted) => return Flow::Close(self.interrupted(interrupted).await),
        }
        self.finish_append(&tag, upload, date.as_ref()).await
    }

    /// An APPEND that arrived whole: delivered through the same upload as a streamed one.
    pub(super) async fn append(
        &mut self,
        tag: &Tag<'static>,
        target: Mailbox<'static>,
        requested: &[Flag<'_>],
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
    ) -> Flow {
        let content = match &message {
            LiteralOrLiteral8::Literal(literal) => literal.data(),
            LiteralOrLiteral8::Literal8(literal) => literal.data.as_ref(),
        };
        let store = &self.service.store;
        let mut upload = open_upload(
            store,
            &self.user(),
            &target,
            self.rev2,
            requested,
            content.len(),
        )
        .await;
        if let Ok(opened) = &mut upload
            && let Err(err) = opened.upload.write(content).await
        {
            upload = Err(Refusal::Store(err));
        }
        self.finish_append(tag, upload, date.as_ref()).await
    }

    /// Deliver the uploaded message and answer; acknowledged only once the store made it
    /// durable.
    async fn finish_append(
        &mut self,
        tag: &Tag<'static>,
        upload: Result<Opened<M::Upload>, Refusal>,
        date: Option<&DateTime>,
    ) -> Flow {
        let delivered = match upload {
            Ok(Opened {
                target,
                upload,
                flags,
            }) => upload
                .commit(flags, date.map(dates::from_imap))
                .await
                .map(|uid| (target, uid))
                .map_err(Refusal::Store),
            Err(refusal) => Err(refusal),
        };
        let (target, uid) = match delivered {
            Ok(delivered) => delivered,
            Err(Refusal::Flags(refused)) => return self.flags_refused(tag, refused),
            // RFC 3501: the client may create the mailbox and try again.
            Err(Refusal::Store(StoreError::NoSuchMailbox)) => {
                return self.no(tag, "TRYCREATE", "No such mailbox");
            }
            Err(Refusal::Store(err)) => return self.store_failed(tag, err),
        };
        let selected_target = self.selected.as_ref().is_some_and(|v| v.name == target);
        let uid_validity = match selected_target {
            // RFC 3501: the client of the selected mailbox hears of the new message now.
            true => match self.sync(Expunges::Report).await {
                Ok(()) => self.selected.as_ref().map(|v| v.uid_validity()),
                Err(reason) => return Flow::Close(reason),
            },
            false => self
                .service
                .store
                .snapshot(&self.user(), &target)
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

/// An upload ready for the message, with what it is to be delivered as.
struct Opened<U> {
    /// The mailbox's name.
    target: String,
    upload: U,
    flags: MessageFlags,
}

/// Why an APPEND delivers nothing.
enum Refusal {
    /// The flag list (before anything was stored).
    Flags(Refused),
    Store(StoreError),
}

/// The store's upload for a message of `length` octets into `mailbox` (named as under
/// IMAP4rev2 if `rev2`) with `flags`; a flag list that cannot be stored is refused before the
/// store is asked.
async fn open_upload<M: Mailstore>(
    store: &M,
    user: &str,
    mailbox: &Mailbox<'_>,
    rev2: bool,
    flags: &[Flag<'_>],
    length: usize,
) -> Result<Opened<M::Upload>, Refusal> {
    let flags = flags::from_imap(flags).map_err(Refusal::Flags)?;
    let target = mailbox_name(mailbox, rev2).ok_or(Refusal::Store(StoreError::NoSuchMailbox))?;
    let upload = store
        .begin_append(user, &target, length as u64)
        .await
        .map_err(Refusal::Store)?;
    Ok(Opened {
        target,
        upload,
        flags,
    })
}
