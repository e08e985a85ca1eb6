//! LIST and LSUB (RFC 3501 sections 6.3.8 and 6.3.9), with LIST-EXTENDED's selection and
//! return options and several patterns (RFC 5258) and LIST-STATUS (RFC 5819). Which names
//! are shown, and how, is decided in `listing`.

use std::borrow::Cow;

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{QuotedChar, Tag};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::Data;

use super::listing::{DELIMITER, Listed, Query, Style, listing};
use super::session::{Flow, ImapSession};
use super::syntax::list::ListRequest;
use super::{mutf7, response};
use crate::auth::Authenticator;
use crate::store::{INBOX, MailboxInfo, Mailstore};

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// LIST (`lsub` false) and LSUB. The reference is simply prefixed to each pattern, which
    /// is what clients mean by it in practice (RFC 3501 leaves its meaning to the server).
    pub(super) async fn list(
        &mut self,
        tag: &Tag<'static>,
        request: ListRequest,
        lsub: bool,
    ) -> Flow {
        let command = if lsub { "LSUB" } else { "LIST" };
        let selecting = request.select_subscribed || request.select_special_use;
        if !lsub && !selecting && request.patterns.iter().all(Vec::is_empty) {
            // An empty pattern asks for the hierarchy delimiter (RFC 3501 section 6.3.8).
            let root = Mailbox::try_from("").expect("an empty quoted string");
            let data = list_data(false, vec![FlagNameAttribute::Noselect], root);
            response::data(self.channel.out(), data);
            return self.ok(tag, None, "LIST completed");
        }
        let mailboxes = match self.service.store.list_mailboxes(&self.user()).await {
            Ok(mailboxes) => mailboxes,
            Err(err) => return self.store_failed(tag, err),
        };
        let shown = self.shown_names(&mailboxes);
        let patterns: Vec<Vec<u8>> = request
            .patterns
            .iter()
            .map(|pattern| [&request.reference[..], pattern].concat())
            .collect();
        let query = Query {
            patterns: &patterns,
            subscribed_only: lsub || request.select_subscribed,
            special_use_only: request.select_special_use,
            recursive_match: request.recursive_match,
            placeholders: lsub || !selecting,
        };
        let style = Style {
            nonexistent: !lsub && (self.rev2 || request.extended),
            subscribed: !lsub && (request.select_subscribed || request.return_subscribed),
        };
        let child_info = child_info(&request);
        for entry in listing(&shown, &query) {
            let Ok(mailbox) = Mailbox::try_from(entry.name).map(IntoStatic::into_static) else {
                tracing::warn!(
                    mailbox = entry.name,
                    "mailbox name cannot be sent over IMAP"
                );
                continue;
            };
            let mut line = Vec::new();
            response::data(
                &mut line,
                list_data(lsub, entry.attributes(style), mailbox.clone()),
            );
            if entry.child_info {
                // imap-types has no extended items on LIST: added before the line's end,
                // after the name (which may be a literal).
                line.truncate(line.len() - 2);
                line.extend_from_slice(child_info.as_bytes());
                line.extend_from_slice(b"\r\n");
            }
            self.channel.out().extend_from_slice(&line);
            if let Some(items) = &request.return_status {
                self.list_status(&entry, &mailboxes, mailbox, items).await;
            }
            if let Err(reason) = self.send_if_full().await {
                return Flow::Close(reason);
            }
        }
        self.ok(tag, None, &format!("{command} completed"))
    }

    /// RFC 5819: a STATUS response after the LIST response of each selectable mailbox; a
    /// mailbox whose status cannot be read is left without one.
    async fn list_status(
        &mut self,
        entry: &Listed<'_>,
        mailboxes: &[MailboxInfo],
        mailbox: Mailbox<'static>,
        items: &[imap_codec::imap_types::status::StatusDataItemName],
    ) {
        let Some(index) = entry.index.filter(|_| entry.selectable()) else {
            return;
        };
        if let Ok(items) = self.status_items(&mailboxes[index].name, items).await {
            let items = Cow::Owned(items);
            response::data(self.channel.out(), Data::Status { mailbox, items });
        }
    }

    /// The mailboxes as this session shows their names: in UTF-8 once IMAP4rev2 is on (a
    /// name that is not valid modified UTF-7 is shown as it is), as stored otherwise. In the
    /// same order, so an index names the same mailbox in both.
    pub(super) fn shown_names<'m>(&self, mailboxes: &'m [MailboxInfo]) -> Cow<'m, [MailboxInfo]> {
        if !self.rev2 {
            return Cow::Borrowed(mailboxes);
        }
        let decoded = mailboxes
            .iter()
            .map(|m| MailboxInfo {
                name: mutf7::decode(&m.name).unwrap_or_else(|| m.name.clone()),
                ..m.clone()
            })
            .collect();
        Cow::Owned(decoded)
    }

    /// The LIST response IMAP4rev2 adds to SELECT and EXAMINE (RFC 9051 section 6.3.2),
    /// for the mailbox stored as `name`.
    pub(super) async fn list_selected(&mut self, name: &str) {
        let Ok(mailboxes) = self.service.store.list_mailboxes(&self.user()).await else {
            return;
        };
        let Some(position) = mailboxes.iter().position(|m| m.name == name) else {
            return;
        };
        let shown = self.shown_names(&mailboxes);
        let entry = Listed {
            name: &shown[position].name,
            index: Some(position),
            noselect: false,
            has_children: mailboxes.iter().any(|m| is_below(&m.name, name)),
            special_use: shown[position].special_use,
            subscribed: shown[position].subscribed,
            child_info: false,
        };
        let style = Style {
            nonexistent: true,
            subscribed: false,
        };
        if let Ok(mailbox) = Mailbox::try_from(entry.name) {
            let data = list_data(false, entry.attributes(style), mailbox);
            response::data(self.channel.out(), data);
        }
    }
}

/// A basic LIST or LSUB as `imap-codec` decoded it, as a [`ListRequest`].
pub(super) fn basic_request(reference: &Mailbox<'_>, pattern: ListMailbox<'_>) -> ListRequest {
    let reference = match reference {
        Mailbox::Inbox => INBOX.as_bytes().to_vec(),
        Mailbox::Other(other) => other.as_ref().to_vec(),
    };
    let pattern = match pattern {
        ListMailbox::Token(token) => token.as_ref().to_vec(),
        ListMailbox::String(string) => string.into_inner().into_owned(),
    };
    ListRequest {
        reference,
        patterns: vec![pattern],
        ..ListRequest::default()
    }
}

/// RFC 5258's CHILDINFO extended item, naming the selection options a descendant meets.
fn child_info(request: &ListRequest) -> String {
    let mut options = Vec::new();
    if request.select_subscribed {
        options.push("\"SUBSCRIBED\"");
    }
    if request.select_special_use {
        options.push("\"SPECIAL-USE\"");
    }
    format!(" (\"CHILDINFO\" ({}))", options.join(" "))
}

fn is_below(name: &str, parent: &str) -> bool {
    name.len() > parent.len()
        && name.starts_with(parent)
        && name.as_bytes()[parent.len()] == DELIMITER as u8
}

fn list_data<'a>(lsub: bool, items: Vec<FlagNameAttribute<'a>>, mailbox: Mailbox<'a>) -> Data<'a> {
    let delimiter = Some(QuotedChar::try_from(DELIMITER).expect("a valid delimiter"));
    match lsub {
        true => Data::Lsub {
            items,
            delimiter,
            mailbox,
        },
        false => Data::List {
            items,
            delimiter,
            mailbox,
        },
    }
}
