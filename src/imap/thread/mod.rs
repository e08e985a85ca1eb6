//! THREAD (RFC 5256): the algorithms ORDEREDSUBJECT and REFERENCES, from what each message
//! holds of its base subject, sent date and ids to the `* THREAD` answer's lists.
//!
//! Both read what the store keeps for FETCH, as SORT does: ORDEREDSUBJECT the subject and
//! date of the ENVELOPE, REFERENCES also its Message-ID and In-Reply-To, and the References
//! ids kept beside it (ENVELOPE lacks that field; see [`kept_references`]). So a THREAD reads
//! no message the store has kept them for. Per message only its [`Message`] is held and, for
//! REFERENCES, its [`Ids`] (at most [`message_id::MAX_REFERENCES`] ids of at most
//! [`message_id::MAX_ID`] octets).

mod message_id;
mod references;
#[cfg(test)]
mod tests;
mod tree;

use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_codec::imap_types::envelope::Envelope;
use imap_codec::imap_types::extensions::thread::Thread;

use super::fetch::{header_fields, unfold};
use super::sort::{base_subject_and_reply, casemapped, octets, sent_date};
use crate::store::MessageMeta;
use message_id::Ids;
pub(super) use references::References;
use tree::Node;

/// One message as the algorithms see it.
#[derive(Debug, Clone)]
pub(super) struct Message {
    /// What the answer names it by: its sequence number, or its UID for UID THREAD.
    pub(super) number: NonZeroU32,
    /// Its sent date in seconds since the epoch (its arrival when it has none valid).
    pub(super) date: i64,
    /// Its base subject under i;unicode-casemap, as SORT SUBJECT compares it.
    pub(super) subject: Box<[u8]>,
    /// Whether its subject marks a reply or a forward (`Re:`, `Fwd:`, `(fwd)` ...).
    pub(super) reply: bool,
}

/// The header fields THREAD reads, as raw values (empty when absent).
#[derive(Debug, Default)]
pub(super) struct Fields<'a> {
    pub(super) subject: Cow<'a, [u8]>,
    pub(super) date: Cow<'a, [u8]>,
    pub(super) message_id: Cow<'a, [u8]>,
    pub(super) in_reply_to: Cow<'a, [u8]>,
    /// Left folded: only the ids in it count.
    pub(super) references: Cow<'a, [u8]>,
}

impl<'a> Fields<'a> {
    /// The fields of a stored ENVELOPE, with the `references` ids kept beside it.
    pub(super) fn of_envelope(envelope: &'a Envelope<'_>, references: &'a [u8]) -> Fields<'a> {
        Fields {
            subject: Cow::Borrowed(octets(&envelope.subject)),
            date: Cow::Borrowed(octets(&envelope.date)),
            message_id: Cow::Borrowed(octets(&envelope.message_id)),
            in_reply_to: Cow::Borrowed(octets(&envelope.in_reply_to)),
            references: Cow::Borrowed(references),
        }
    }

    /// The fields of a message's top-level header, read from its bytes: the first of each
    /// name, as ENVELOPE takes them.
    pub(super) fn of_header(message: &'a [u8]) -> Fields<'a> {
        let mut fields = Fields::default();
        for field in header_fields(message) {
            let is = |name: &str| field.name.eq_ignore_ascii_case(name.as_bytes());
            let (slot, fold) = if is("Subject") {
                (&mut fields.subject, true)
            } else if is("Date") {
                (&mut fields.date, true)
            } else if is("Message-ID") {
                (&mut fields.message_id, true)
            } else if is("In-Reply-To") {
                (&mut fields.in_reply_to, true)
            } else if is("References") {
                (&mut fields.references, false)
            } else {
                continue;
            };
            if slot.is_empty() {
                *slot = match fold {
                    true => Cow::Owned(unfold(field.value)),
                    false => Cow::Borrowed(field.value),
                };
            }
        }
        fields
    }

    /// The ids REFERENCES links this message by.
    pub(super) fn ids(&self) -> Ids {
        Ids::of(&self.message_id, &self.in_reply_to, &self.references)
    }
}

/// What the store keeps of the message `content`'s References field, beside its ENVELOPE:
/// its last [`message_id::MAX_REFERENCES`] valid ids, `<id>` after `<id>`.
pub(in crate::imap) fn kept_references(content: &[u8]) -> Vec<u8> {
    message_id::kept(&Fields::of_header(content).references)
}

impl Message {
    /// The message named `number`, with metadata `meta` (whose arrival stands in for a
    /// missing date) and header `fields`.
    pub(super) fn new(number: NonZeroU32, meta: &MessageMeta, fields: &Fields<'_>) -> Message {
        let (subject, reply) = base_subject_and_reply(&fields.subject);
        Message {
            number,
            date: sent_date(&fields.date, meta),
            subject: casemapped(&subject),
            reply,
        }
    }
}

/// THREAD=ORDEREDSUBJECT (RFC 5256 section 2.1 of the algorithms): `messages` (in mailbox
/// order) grouped by base subject; in each group, ordered by sent date (ties in mailbox
/// order), the first message is the parent of all the others; the groups are ordered by the
/// date of their first message.
pub(super) fn ordered_subject(messages: &[Message]) -> Vec<Thread> {
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = ((&messages[a], a), (&messages[b], b));
        (&a.0.subject, a.0.date, a.1).cmp(&(&b.0.subject, b.0.date, b.1))
    });
    let mut groups: Vec<&[usize]> = order
        .chunk_by(|&a, &b| messages[a].subject == messages[b].subject)
        .collect();
    groups.sort_by_key(|group| (messages[group[0]].date, group[0]));
    let mut nodes: Vec<Node> = messages
        .iter()
        .map(|message| Node {
            number: Some(message.number),
            children: Vec::new(),
        })
        .collect();
    let roots: Vec<usize> = groups
        .iter()
        .map(|group| {
            nodes[group[0]].children = group[1..].to_vec();
            group[0]
        })
        .collect();
    tree::threads(&nodes, &roots)
}
