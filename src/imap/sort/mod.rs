//! SORT (RFC 5256) and SORT=DISPLAY (RFC 5957): each message's sort keys, and their order.
//!
//! The keys are read from a message's ENVELOPE, the form the store keeps for FETCH
//! ([`Mailstore::cached`](crate::store::Mailstore::cached)): a sort over messages whose
//! envelopes were fetched or sorted before reads no message at all, and ARRIVAL and SIZE
//! need not even that. Only the keys are held per message, each text key at most
//! [`MAX_TEXT_KEY`] bytes.

mod base_subject;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use imap_codec::imap_types::core::NString;
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;
use unicode_normalization::UnicodeNormalization;

use super::search::decode_words;
use crate::store::MessageMeta;
pub(super) use base_subject::{base_subject, base_subject_and_reply};

/// The most bytes of a text key kept: messages whose keys agree on that many bytes sort as
/// equal (by sequence number), which bounds what a sort of a large mailbox holds whatever its
/// messages' headers.
pub(super) const MAX_TEXT_KEY: usize = 256;

/// One sort key of one message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Key {
    /// Seconds since the epoch (ARRIVAL, DATE) or octets (SIZE).
    Number(i64),
    /// Text as i;unicode-casemap compares it ([`casemapped`]).
    Text(Box<[u8]>),
}

/// Whether any of `criteria` reads the ENVELOPE: all but ARRIVAL and SIZE do.
pub(super) fn needs_envelope(criteria: &[SortCriterion]) -> bool {
    criteria
        .iter()
        .any(|criterion| !matches!(criterion.key, SortKey::Arrival | SortKey::Size))
}

/// The keys of one message for `criteria`, in their order. Without an `envelope` (the message
/// is gone, or the criteria need none) its text keys are empty and DATE is its arrival.
pub(super) fn keys(
    criteria: &[SortCriterion],
    meta: &MessageMeta,
    envelope: Option<&Envelope<'_>>,
) -> Box<[Key]> {
    let arrival = seconds(meta.internal_date);
    criteria
        .iter()
        .map(|criterion| {
            let Some(envelope) = envelope else {
                return match criterion.key {
                    SortKey::Arrival | SortKey::Date => Key::Number(arrival),
                    SortKey::Size => Key::Number(size(meta)),
                    _ => Key::Text(Box::default()),
                };
            };
            match criterion.key {
                SortKey::Arrival => Key::Number(arrival),
                SortKey::Size => Key::Number(size(meta)),
                SortKey::Date => Key::Number(sent_date(octets(&envelope.date), meta)),
                SortKey::Subject => text(&base_subject(octets(&envelope.subject))),
                SortKey::From => mailbox(&envelope.from),
                SortKey::To => mailbox(&envelope.to),
                SortKey::Cc => mailbox(&envelope.cc),
                SortKey::DisplayFrom => display(&envelope.from),
                SortKey::DisplayTo => display(&envelope.to),
            }
        })
        .collect()
}

/// The order of two messages' keys under `criteria`; `Equal` when all keys are equal, and
/// then the messages keep their mailbox order (RFC 5256 section 3).
pub(super) fn compare(criteria: &[SortCriterion], a: &[Key], b: &[Key]) -> Ordering {
    criteria
        .iter()
        .zip(a.iter().zip(b))
        .map(|(criterion, (a, b))| match criterion.reverse {
            true => b.cmp(a),
            false => a.cmp(b),
        })
        .find(|order| order.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Sorts `messages` (in mailbox order, each with its [`keys`]) by `criteria`: a stable sort,
/// so that messages whose keys are all equal stay in sequence-number order, REVERSE or not.
pub(super) fn sort<T>(criteria: &[SortCriterion], messages: &mut [(T, Box<[Key]>)]) {
    messages.sort_by(|(_, a), (_, b)| compare(criteria, a, b));
}

fn seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn size(meta: &MessageMeta) -> i64 {
    i64::try_from(meta.size).unwrap_or(i64::MAX)
}

/// The sent date of RFC 5256 section 3, by which SORT DATE and THREAD order messages: the
/// Date field's raw `value` in UTC, in seconds since the epoch, or the message's internal
/// date when it cannot be told.
pub(super) fn sent_date(value: &[u8], meta: &MessageMeta) -> i64 {
    sent(value).unwrap_or_else(|| seconds(meta.internal_date))
}

/// The Date field's raw value as seconds since the epoch, if it parses as a valid date.
fn sent(value: &[u8]) -> Option<i64> {
    // mail-parser reads a field up to its line end.
    let line = [value, b"\n"].concat();
    match MessageStream::new(&line).parse_date() {
        HeaderValue::DateTime(date) if date.is_valid() => Some(date.to_timestamp()),
        _ => None,
    }
}

/// FROM, TO and CC: the addr-mailbox of the first address structure (RFC 5256 section 3):
/// the local part, or a group's name when the list starts with a group
/// (`undisclosed-recipients:;`); empty when there is none.
fn mailbox(addresses: &[Address<'_>]) -> Key {
    let local = addresses
        .first()
        .map_or(&[][..], |address| octets(&address.mailbox));
    text(&String::from_utf8_lossy(local))
}

/// DISPLAYFROM and DISPLAYTO (RFC 5957 section 3), of the first address structure: its
/// display name, decoded (RFC 2047), unless that is missing or empty; else
/// `mailbox@host`; else (a group) the group's name; else empty.
fn display(addresses: &[Address<'_>]) -> Key {
    let Some(address) = addresses.first() else {
        return text("");
    };
    let name = address
        .name
        .0
        .as_ref()
        .map(|name| decode_words(name.as_ref()))
        .filter(|name| !name.is_empty());
    let shown = name.unwrap_or_else(|| {
        let spec = match address.host.0 {
            Some(_) => [octets(&address.mailbox), b"@", octets(&address.host)].concat(),
            None => octets(&address.mailbox).to_vec(),
        };
        String::from_utf8_lossy(&spec).into_owned()
    });
    text(&shown)
}

/// The octets of an envelope string; none for NIL.
pub(super) fn octets<'s>(value: &'s NString<'_>) -> &'s [u8] {
    value.0.as_ref().map_or(&[], |value| value.as_ref())
}

/// `value` as a text key: see [`casemapped`].
fn text(value: &str) -> Key {
    Key::Text(casemapped(value))
}

/// `value` as i;unicode-casemap (RFC 5051) compares it, which SORT and THREAD must use
/// (RFC 5256 requires I18NLEVEL=1's collation): each character case-mapped, the result
/// decomposed (NFKD), then compared octet by octet, so that `é` and `É` are equal and sort
/// beside `E`. The case mapping is the standard library's uppercase where it gives one
/// character; the RFC's simple titlecase differs from it only for a few characters (the
/// Latin digraphs such as `ǆ`, Greek with iota subscript), which then sort apart from
/// their other case.
///
/// Keys longer than [`MAX_TEXT_KEY`] keep their first bytes and a hash of the whole, so that
/// two long texts that differ are never equal (THREAD groups by subject), while a sort of a
/// large mailbox holds a bounded key per message. Long texts that share their first bytes
/// then sort by the hash, not by the rest.
pub(super) fn casemapped(value: &str) -> Box<[u8]> {
    let mapped: String = value
        .chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(one), None) => one,
                _ => c,
            }
        })
        .nfkd()
        .collect();
    let mut bytes = mapped.into_bytes();
    if bytes.len() > MAX_TEXT_KEY {
        let mut hasher = std::hash::DefaultHasher::new();
        bytes.hash(&mut hasher);
        bytes.truncate(MAX_TEXT_KEY - 8);
        bytes.extend_from_slice(&hasher.finish().to_be_bytes());
    }
    bytes.into_boxed_slice()
}
