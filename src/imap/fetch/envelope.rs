//! ENVELOPE (RFC 3501 section 7.4.2) from a message's header block.
//!
//! Strings are the raw values, unfolded but not decoded: RFC 3501 shows RFC 2047 words as
//! sent and clients decode them. When a field occurs more than once, the first counts.

use imap_codec::imap_types::core::NString;
use imap_codec::imap_types::envelope::{Address, Envelope};

use super::header;
use super::strings::{istring, nstring};
use crate::imap::address::{self, Item};

/// The envelope of the message whose header block is `block`.
pub(super) fn envelope(block: &[u8]) -> Envelope<'static> {
    let text = |name: &str| nstring(header::first(block, name));
    let addresses = |name: &str| {
        header::first(block, name)
            .map(|value| address::parse(&value).into_iter().map(to_imap).collect())
            .unwrap_or_default()
    };
    let from: Vec<Address<'static>> = addresses("From");
    // "If the Sender or Reply-To lines are absent in the [RFC-2822] header, or are present
    // but empty, the server sets the corresponding member of the envelope to be the same
    // value as the from member."
    let or_from = |list: Vec<Address<'static>>| if list.is_empty() { from.clone() } else { list };
    let sender = or_from(addresses("Sender"));
    let reply_to = or_from(addresses("Reply-To"));
    Envelope {
        date: text("Date"),
        subject: text("Subject"),
        from,
        sender,
        reply_to,
        to: addresses("To"),
        cc: addresses("Cc"),
        bcc: addresses("Bcc"),
        in_reply_to: text("In-Reply-To"),
        message_id: text("Message-ID"),
    }
}

fn to_imap(item: Item) -> Address<'static> {
    match item {
        Item::Mailbox {
            name,
            route,
            mailbox,
            host,
        } => Address {
            name: nstring(name),
            adl: nstring(route),
            mailbox: nstring(Some(or_missing(mailbox, "MISSING_MAILBOX"))),
            host: nstring(Some(or_missing(host, "MISSING_DOMAIN"))),
        },
        Item::GroupStart(name) => Address {
            name: NString::NIL,
            adl: NString::NIL,
            mailbox: NString(Some(istring(name))),
            host: NString::NIL,
        },
        Item::GroupEnd => Address {
            name: NString::NIL,
            adl: NString::NIL,
            mailbox: NString::NIL,
            host: NString::NIL,
        },
    }
}

/// A part the address lacks, named as Dovecot names it: a NIL host would read as group
/// syntax, and a NIL mailbox with it as the end of a group.
fn or_missing(part: Vec<u8>, missing: &str) -> Vec<u8> {
    match part.is_empty() {
        true => missing.as_bytes().to_vec(),
        false => part,
    }
}
