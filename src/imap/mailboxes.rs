//! Mailbox commands of the authenticated and selected states: SELECT, EXAMINE, CLOSE,
//! UNSELECT, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS (RFC 3501 sections 6.3
//! and 6.4.2, RFC 3691, RFC 5530 response codes).

use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, StatusKind};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use super::condstore;
use super::session::{Flow, ImapSession};
use super::view::MailboxView;
use super::{flags, mutf7, response};
use crate::auth::Authenticator;
use crate::events::SessionEvent;
use crate::store::{Flags, INBOX, MAX_KEYWORDS, MailboxSnapshot, Mailstore, StoreError};

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// SELECT and EXAMINE, with RFC 7162's CONDSTORE and QRESYNC parameters. RFC 3501
    /// section 6.3.1: selecting, even unsuccessfully, first leaves the mailbox selected
    /// before; an `OK [CLOSED]` says so (RFC 9051 section 7.1, RFC 7162 section 3.2.11).
    ///
    /// IMAP4rev2 (RFC 9051 section 6.3.2) drops RECENT and `OK [UNSEEN]` from the answer and
    /// adds the mailbox's LIST response.
    pub(super) async fn select(
        &mut self,
        tag: &Tag<'static>,
        mailbox: Mailbox<'static>,
        read_only: bool,
        parameters: Vec<SelectParameter>,
    ) -> Flow {
        let qresync = match self.select_parameters(parameters) {
            Ok(qresync) => qresync,
            Err(text) => return self.bad(tag, text),
        };
        if self.selected.is_some() {
            self.set_selected(None);
            condstore::write_closed(self.channel.out());
        }
        let Some(name) = mailbox_name(&mailbox, self.rev2) else {
            return self.no(tag, "NONEXISTENT", "No such mailbox");
        };
        let user = self.user();
        // Watching first: a change made while the snapshot is read still wakes the session.
        let watch = self.service.store.watch(&user, &name);
        let snapshot = match self.service.store.snapshot(&user, &name).await {
            Ok(snapshot) => snapshot,
            Err(err) => return self.store_failed(tag, err),
        };
        let highest = snapshot.messages.last().map_or(0, |m| m.uid);
        // IMAP4rev2 has no `\Recent`: such a session neither shows nor claims it.
        let first_recent = match self.rev2 {
            true => None,
            false => match self.recent_from(&name, highest, read_only).await {
                Ok(uid) => Some(uid),
                Err(err) => return self.store_failed(tag, err),
            },
        };
        let uid_next = snapshot.uid_next;
        let view = MailboxView::open(name.clone(), read_only, snapshot, watch, first_recent);
        write_selected(self.channel.out(), &view, uid_next);
        if self.rev2 {
            self.list_selected(&name).await;
        }
        self.set_selected(Some(Box::new(view)));
        if let Some(qresync) = qresync
            && let Err(err) = self.qresync(qresync).await
        {
            self.set_selected(None);
            return self.store_failed(tag, err);
        }
        if let Err(reason) = self
            .notify(SessionEvent::MailboxSelected { mailbox: &name })
            .await
        {
            return Flow::Close(reason);
        }
        let (code, command) = match read_only {
            true => (Code::ReadOnly, "EXAMINE"),
            false => (Code::ReadWrite, "SELECT"),
        };
        self.ok(tag, Some(code), &format!("{command} completed"))
    }

    /// CLOSE (`expunge` true) and UNSELECT. CLOSE silently removes the messages marked
    /// `\Deleted` from a mailbox opened read-write (RFC 3501 section 6.4.2).
    pub(super) async fn close(&mut self, tag: &Tag<'static>, expunge: bool) -> Flow {
        let Some(selected) = self.selected.take() else {
            return self.bad(tag, "No mailbox selected");
        };
        self.set_selected(None);
        if expunge && !selected.read_only {
            // CLOSE has no NO answer: a failure leaves the messages in place, which loses
            // nothing, and is logged.
            if let Err(err) = self.expunge_deleted(&selected.name).await {
                tracing::error!(session_id = %self.session.id(), error = %err, "expunge on CLOSE failed");
            }
        }
        let (command, code) = match expunge {
            true => ("CLOSE", self.closing_modseq_code(&selected)),
            false => ("UNSELECT", None),
        };
        self.ok(tag, code, &format!("{command} completed"))
    }

    async fn expunge_deleted(&mut self, mailbox: &str) -> Result<(), StoreError> {
        let user = self.user();
        let snapshot = self.service.store.snapshot(&user, mailbox).await?;
        let deleted: Vec<u32> = snapshot
            .messages
            .iter()
            .filter(|m| m.flags.system.contains(Flags::DELETED))
            .map(|m| m.uid)
            .collect();
        if deleted.is_empty() {
            return Ok(());
        }
        self.service.store.expunge(&user, mailbox, &deleted).await
    }

    /// CREATE. A trailing separator only declares the intent to create children (RFC 3501
    /// section 6.3.3), so it is dropped.
    pub(super) async fn create(&mut self, tag: &Tag<'static>, mailbox: Mailbox<'static>) -> Flow {
        let Some(name) = new_mailbox_name(&mailbox, self.rev2) else {
            return self.no(tag, "CANNOT", "Invalid mailbox name");
        };
        let name = name.trim_end_matches('/');
        if name.eq_ignore_ascii_case(INBOX) {
            return self.no(tag, "ALREADYEXISTS", "INBOX always exists");
        }
        match self.service.store.create_mailbox(&self.user(), name).await {
            Ok(()) => self.ok(tag, None, "CREATE completed"),
            Err(err) => self.store_failed(tag, err),
        }
    }

    /// DELETE. The selected mailbox cannot be deleted from under its own session.
    pub(super) async fn delete(&mut self, tag: &Tag<'static>, mailbox: Mailbox<'static>) -> Flow {
        let Some(name) = mailbox_name(&mailbox, self.rev2) else {
            return self.no(tag, "NONEXISTENT", "No such mailbox");
        };
        if self.selected.as_ref().is_some_and(|s| s.name == name) {
            return self.no(tag, "INUSE", "Close the mailbox before deleting it");
        }
        match self.service.store.delete_mailbox(&self.user(), &name).await {
            Ok(()) => self.ok(tag, None, "DELETE completed"),
            Err(err) => self.store_failed(tag, err),
        }
    }

    /// RENAME. Renaming INBOX (which moves its messages, RFC 3501 section 6.3.5) is left to
    /// the store, which refuses it today.
    pub(super) async fn rename(
        &mut self,
        tag: &Tag<'static>,
        from: Mailbox<'static>,
        to: Mailbox<'static>,
    ) -> Flow {
        let (Some(from), Some(to)) = (
            mailbox_name(&from, self.rev2),
            new_mailbox_name(&to, self.rev2),
        ) else {
            return self.no(tag, "CANNOT", "Invalid mailbox name");
        };
        let to = to.trim_end_matches('/');
        if let Err(err) = self
            .service
            .store
            .rename_mailbox(&self.user(), &from, to)
            .await
        {
            return self.store_failed(tag, err);
        }
        // The selected mailbox stays selected under its new name.
        if let Some(selected) = self.selected.as_mut()
            && selected.name == from
        {
            let watch = self
                .service
                .store
                .watch(&self.session.user().unwrap_or_default(), to);
            selected.renamed(to.to_owned(), watch);
            self.session.set_selected(Some(to.to_owned()));
        }
        self.ok(tag, None, "RENAME completed")
    }

    /// SUBSCRIBE (`subscribed` true) and UNSUBSCRIBE.
    pub(super) async fn subscribe(
        &mut self,
        tag: &Tag<'static>,
        mailbox: Mailbox<'static>,
        subscribed: bool,
    ) -> Flow {
        let Some(name) = mailbox_name(&mailbox, self.rev2) else {
            return self.no(tag, "NONEXISTENT", "No such mailbox");
        };
        let store = &self.service.store;
        match store.set_subscribed(&self.user(), &name, subscribed).await {
            Ok(()) if subscribed => self.ok(tag, None, "SUBSCRIBE completed"),
            Ok(()) => self.ok(tag, None, "UNSUBSCRIBE completed"),
            Err(err) => self.store_failed(tag, err),
        }
    }

    /// STATUS (RFC 9051 section 6.3.11, with RFC 8438's SIZE). RECENT counts the messages no
    /// read-write session was told of.
    pub(super) async fn status(
        &mut self,
        tag: &Tag<'static>,
        mailbox: Mailbox<'static>,
        items: &[StatusDataItemName],
    ) -> Flow {
        let Some(name) = mailbox_name(&mailbox, self.rev2) else {
            return self.no(tag, "NONEXISTENT", "No such mailbox");
        };
        if items.contains(&StatusDataItemName::HighestModSeq)
            && let Err(text) = self.condstore_command()
        {
            return self.bad(tag, text);
        }
        let items = match self.status_items(&name, items).await {
            Ok(items) => items,
            Err(err) => return self.store_failed(tag, err),
        };
        response::data(
            self.channel.out(),
            Data::Status {
                mailbox,
                items: Cow::Owned(items),
            },
        );
        self.ok(tag, None, "STATUS completed")
    }

    /// The STATUS items of the mailbox stored as `name`.
    pub(super) async fn status_items(
        &mut self,
        name: &str,
        items: &[StatusDataItemName],
    ) -> Result<Vec<StatusDataItem>, StoreError> {
        let user = self.user();
        let snapshot = self.service.store.snapshot(&user, name).await?;
        let recent = if items.contains(&StatusDataItemName::Recent) {
            let first_recent = self.service.store.first_recent_uid(&user, name).await?;
            let count = snapshot.messages.iter().filter(|m| m.uid >= first_recent);
            u32::try_from(count.count()).unwrap_or(u32::MAX)
        } else {
            0
        };
        Ok(items
            .iter()
            .map(|item| status_item(item.clone(), &snapshot, recent))
            .collect())
    }

    /// The answer to a store error: RFC 5530 codes; internals are logged, not told.
    pub(super) fn store_failed(&mut self, tag: &Tag<'static>, err: StoreError) -> Flow {
        match err {
            StoreError::NoSuchMailbox => self.no(tag, "NONEXISTENT", "No such mailbox"),
            StoreError::AlreadyExists => self.no(tag, "ALREADYEXISTS", "Mailbox already exists"),
            StoreError::InvalidName => self.no(tag, "CANNOT", "Invalid mailbox name"),
            StoreError::NotAllowed => self.no(tag, "CANNOT", "Not allowed on this mailbox"),
            StoreError::NoSuchMessage => self.no(tag, "NONEXISTENT", "No such message"),
            StoreError::TooManyKeywords => self.no(
                tag,
                "LIMIT",
                &format!("Too many keywords in this mailbox ({MAX_KEYWORDS} at most)"),
            ),
            err => {
                tracing::error!(session_id = %self.session.id(), error = %err, "mail store failed");
                self.no(tag, "UNAVAILABLE", "Mailbox temporarily unavailable")
            }
        }
    }
}

/// The untagged responses of SELECT and EXAMINE (RFC 3501 section 6.3.1).
fn write_selected(out: &mut Vec<u8>, view: &MailboxView, uid_next: u32) {
    flags::write_flags(out, view.keywords());
    response::data(out, Data::Exists(view.exists()));
    // Without `\Recent` (IMAP4rev2), neither RECENT nor UNSEEN: RFC 9051 dropped both.
    let Some(recent) = view.recent_count() else {
        return write_uids_and_flags(out, view, uid_next);
    };
    response::data(out, Data::Recent(recent));
    let first_unseen = view
        .messages()
        .iter()
        .position(|m| !m.flags.system.contains(Flags::SEEN));
    if let Some(Some(seq)) = first_unseen.map(|i| NonZeroU32::new(u32::try_from(i + 1).ok()?)) {
        let code = Some(Code::Unseen(seq));
        response::untagged(
            out,
            StatusKind::Ok,
            code,
            &format!("Message {seq} is first unseen"),
        );
    }
    write_uids_and_flags(out, view, uid_next);
}

/// UIDVALIDITY, UIDNEXT, PERMANENTFLAGS and HIGHESTMODSEQ, the end of SELECT's answer.
fn write_uids_and_flags(out: &mut Vec<u8>, view: &MailboxView, uid_next: u32) {
    let code = Some(Code::UidValidity(non_zero(view.uid_validity())));
    response::untagged(out, StatusKind::Ok, code, "UIDs valid");
    let code = Some(Code::UidNext(non_zero(uid_next)));
    response::untagged(out, StatusKind::Ok, code, "Predicted next UID");
    flags::write_permanent(out, view.keywords(), view.read_only);
    condstore::write_modseq_status(out, view);
}

fn status_item(
    item: StatusDataItemName,
    snapshot: &MailboxSnapshot,
    recent: u32,
) -> StatusDataItem {
    let count = |flag: Option<Flags>| {
        let n = snapshot
            .messages
            .iter()
            .filter(|m| flag.is_none_or(|f| m.flags.system.contains(f)))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    match item {
        StatusDataItemName::Messages => StatusDataItem::Messages(count(None)),
        StatusDataItemName::Recent => StatusDataItem::Recent(recent),
        StatusDataItemName::UidNext => StatusDataItem::UidNext(non_zero(snapshot.uid_next)),
        StatusDataItemName::UidValidity => {
            StatusDataItem::UidValidity(non_zero(snapshot.uid_validity))
        }
        StatusDataItemName::Unseen => {
            StatusDataItem::Unseen(count(None) - count(Some(Flags::SEEN)))
        }
        StatusDataItemName::Deleted => StatusDataItem::Deleted(count(Some(Flags::DELETED))),
        // 0 says the mailbox keeps no mod-sequences (RFC 7162 section 3.1.7).
        StatusDataItemName::HighestModSeq => StatusDataItem::HighestModSeq(snapshot.highest_modseq),
        StatusDataItemName::DeletedStorage => StatusDataItem::DeletedStorage(
            snapshot
                .messages
                .iter()
                .filter(|m| m.flags.system.contains(Flags::DELETED))
                .map(|m| m.size)
                .sum(),
        ),
        StatusDataItemName::Size => {
            StatusDataItem::Size(snapshot.messages.iter().map(|m| m.size).sum())
        }
    }
}

/// The stores never hand out 0 for UIDVALIDITY or UIDNEXT; should one, 1 keeps the response
/// valid.
fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// The name a client gave, as the store takes it (in modified UTF-7: converted from UTF-8
/// under IMAP4rev2, `rev2`); `None` if it is not UTF-8 (no stored mailbox has such a name).
pub(super) fn mailbox_name(mailbox: &Mailbox<'_>, rev2: bool) -> Option<String> {
    let name = match mailbox {
        Mailbox::Inbox => return Some(INBOX.to_owned()),
        Mailbox::Other(other) => String::from_utf8(other.as_ref().to_vec()).ok()?,
    };
    Some(match rev2 {
        true => mutf7::encode(&name),
        false => name,
    })
}

/// A name for a mailbox to create: 7-bit only under IMAP4rev1 (RFC 3501 section 5.1:
/// international names are written in modified UTF-7), any UTF-8 under IMAP4rev2.
fn new_mailbox_name(mailbox: &Mailbox<'_>, rev2: bool) -> Option<String> {
    mailbox_name(mailbox, rev2).filter(|name| name.is_ascii())
}
