//! SEARCH criteria (RFC 3501 section 6.4.4) evaluated against one message at a time.
//!
//! Everything is a membership test: sequence sets are never expanded, and a message's bytes
//! are parsed only when a key looks into them, at most once per message however many keys
//! do (see [`content::Content`]).

mod addresses;
mod content;
#[cfg(test)]
mod tests;

use chrono::NaiveDate;
use imap_codec::imap_types::core::{AString, Atom};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;

use super::dates::utc_date;
use super::sequence;
use crate::store::{Flags, Keyword, MessageMeta};
pub(super) use content::decode_words;
use content::{Content, fold};

/// One message as SEARCH sees it.
pub(super) struct Candidate<'a> {
    /// The message's sequence number.
    pub(super) seq: u32,
    /// UID, size, flags and internal date.
    pub(super) meta: &'a MessageMeta,
    /// Whether the message is `\Recent` in this session.
    pub(super) recent: bool,
    /// The raw message; `Some` whenever [`needs_content`] says the criteria look into it.
    pub(super) content: Option<&'a [u8]>,
}

/// What the whole mailbox contributes: the values `*` stands for in sequence and UID sets,
/// and the saved result `$` stands for.
#[derive(Clone, Copy)]
pub(super) struct Bounds<'s> {
    pub(super) largest_seq: u32,
    pub(super) largest_uid: u32,
    /// The UIDs of the saved result (ascending) when the command used `$` (RFC 5182): a set
    /// that is [`is_saved_result`](super::syntax::is_saved_result) names these messages.
    pub(super) saved: Option<&'s [u32]>,
}

impl Bounds<'_> {
    /// Whether `set` is `$`.
    fn is_saved(&self, set: &SequenceSet) -> bool {
        self.saved.is_some() && sequence::is_single(set, sequence::SAVED_MARKER)
    }

    /// Whether the message with `uid` is in the saved result.
    fn in_saved(&self, uid: u32) -> bool {
        self.saved
            .is_some_and(|saved| saved.binary_search(&uid).is_ok())
    }
}

/// Whether the criteria have RFC 7162's MODSEQ, anywhere: a CONDSTORE enabling command, and
/// the SEARCH response then tells the highest mod-sequence found.
pub(super) fn uses_modseq(criteria: &[SearchKey<'_>]) -> bool {
    criteria.iter().any(key_uses_modseq)
}

fn key_uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => uses_modseq(keys.as_ref()),
        SearchKey::Not(key) => key_uses_modseq(key),
        SearchKey::Or(left, right) => key_uses_modseq(left) || key_uses_modseq(right),
        _ => false,
    }
}

/// Whether the criteria need the message bytes (header, body, text and sent-date keys), so
/// that a search on flags, dates or sets never reads a message from the store.
pub(super) fn needs_content(criteria: &[SearchKey<'_>]) -> bool {
    criteria.iter().any(key_needs_content)
}

fn key_needs_content(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => needs_content(keys.as_ref()),
        SearchKey::Not(key) => key_needs_content(key),
        SearchKey::Or(left, right) => key_needs_content(left) || key_needs_content(right),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_) => true,
        // Listed rather than `_`, so that a key added by an imap-types feature is a compile
        // error here instead of a silent "no content needed".
        SearchKey::SequenceSet(_)
        | SearchKey::All
        | SearchKey::Answered
        | SearchKey::Before(_)
        | SearchKey::Deleted
        | SearchKey::Draft
        | SearchKey::Flagged
        | SearchKey::Keyword(_)
        | SearchKey::Larger(_)
        | SearchKey::New
        | SearchKey::Old
        | SearchKey::On(_)
        | SearchKey::Recent
        | SearchKey::Seen
        | SearchKey::Since(_)
        | SearchKey::Smaller(_)
        | SearchKey::Uid(_)
        | SearchKey::Unanswered
        | SearchKey::Undeleted
        | SearchKey::Undraft
        | SearchKey::Unflagged
        | SearchKey::Unkeyword(_)
        | SearchKey::Unseen
        | SearchKey::ModSequence { .. } => false,
    }
}

/// Whether the message matches all `criteria` (the list is an implicit AND).
pub(super) fn matches(
    criteria: &[SearchKey<'_>],
    candidate: &Candidate<'_>,
    bounds: Bounds<'_>,
) -> bool {
    let search = Search {
        candidate,
        bounds,
        content: Content::new(candidate.content),
    };
    criteria.iter().all(|key| search.matches(key))
}

/// Whether SEARCH accepts `charset`: the strings are matched as UTF-8, of which US-ASCII is
/// a subset; anything else would need converting, which is not done.
pub(super) fn charset_supported(charset: &str) -> bool {
    charset.eq_ignore_ascii_case("UTF-8") || charset.eq_ignore_ascii_case("US-ASCII")
}

/// One message under evaluation, with its content parsed on first use and shared by every
/// key, however deeply nested.
struct Search<'c, 'a> {
    candidate: &'c Candidate<'a>,
    bounds: Bounds<'c>,
    content: Content<'a>,
}

impl Search<'_, '_> {
    fn matches(&self, key: &SearchKey<'_>) -> bool {
        let meta = self.candidate.meta;
        let flag = |flag: Flags| meta.flags.system.contains(flag);
        let internal = || utc_date(meta.internal_date);
        match key {
            SearchKey::And(keys) => keys.as_ref().iter().all(|key| self.matches(key)),
            SearchKey::Not(key) => !self.matches(key),
            SearchKey::Or(left, right) => self.matches(left) || self.matches(right),
            SearchKey::All => true,

            SearchKey::SequenceSet(set) | SearchKey::Uid(set) if self.bounds.is_saved(set) => {
                self.bounds.in_saved(meta.uid)
            }
            SearchKey::SequenceSet(set) => {
                sequence::contains(set, self.candidate.seq, self.bounds.largest_seq)
            }
            SearchKey::Uid(set) => sequence::contains(set, meta.uid, self.bounds.largest_uid),

            SearchKey::Answered => flag(Flags::ANSWERED),
            SearchKey::Deleted => flag(Flags::DELETED),
            SearchKey::Draft => flag(Flags::DRAFT),
            SearchKey::Flagged => flag(Flags::FLAGGED),
            SearchKey::Seen => flag(Flags::SEEN),
            SearchKey::Unanswered => !flag(Flags::ANSWERED),
            SearchKey::Undeleted => !flag(Flags::DELETED),
            SearchKey::Undraft => !flag(Flags::DRAFT),
            SearchKey::Unflagged => !flag(Flags::FLAGGED),
            SearchKey::Unseen => !flag(Flags::SEEN),
            SearchKey::Recent => self.candidate.recent,
            SearchKey::New => self.candidate.recent && !flag(Flags::SEEN),
            SearchKey::Old => !self.candidate.recent,
            SearchKey::Keyword(name) => self.has_keyword(name),
            SearchKey::Unkeyword(name) => !self.has_keyword(name),

            SearchKey::Before(date) => internal() < *date.as_ref(),
            SearchKey::On(date) => internal() == *date.as_ref(),
            SearchKey::Since(date) => internal() >= *date.as_ref(),
            SearchKey::SentBefore(date) => self.sent(|sent| sent < *date.as_ref()),
            SearchKey::SentOn(date) => self.sent(|sent| sent == *date.as_ref()),
            SearchKey::SentSince(date) => self.sent(|sent| sent >= *date.as_ref()),

            // Per message, whatever flag `entry` names: this server keeps no mod-sequence
            // per flag, which RFC 7162 section 3.1.5 allows.
            SearchKey::ModSequence { modseq, .. } => meta.modseq >= *modseq,
            SearchKey::Larger(size) => meta.size > u64::from(*size),
            SearchKey::Smaller(size) => meta.size < u64::from(*size),

            SearchKey::Header(name, value) => self.header(&lossy(name), value),
            SearchKey::Bcc(value) => self.in_addresses("Bcc", value),
            SearchKey::Cc(value) => self.in_addresses("Cc", value),
            SearchKey::From(value) => self.in_addresses("From", value),
            SearchKey::Subject(value) => self.header("Subject", value),
            SearchKey::To(value) => self.in_addresses("To", value),
            SearchKey::Body(value) => self.content.body_contains(&fold(&lossy(value))),
            SearchKey::Text(value) => {
                let needle = fold(&lossy(value));
                self.content.headers_contain(&needle) || self.content.body_contains(&needle)
            }
        }
    }

    /// Whether the message has the keyword `name` (compared case-insensitively); a name no
    /// keyword can have (too long) is on no message.
    fn has_keyword(&self, name: &Atom<'_>) -> bool {
        Keyword::new(name.as_ref())
            .is_ok_and(|keyword| self.candidate.meta.flags.keywords.contains(&keyword))
    }

    /// A sent-date test; a message without a usable Date header passes none.
    fn sent(&self, test: impl FnOnce(NaiveDate) -> bool) -> bool {
        self.content.sent_date().is_some_and(test)
    }

    fn header(&self, name: &str, value: &AString<'_>) -> bool {
        self.content.header_contains(name, &fold(&lossy(value)))
    }

    /// FROM, TO, CC and BCC: in the addresses of the field, not its text (see the
    /// `addresses` module).
    fn in_addresses(&self, name: &str, value: &AString<'_>) -> bool {
        self.content.address_contains(name, &fold(&lossy(value)))
    }
}

/// A search string as text. Only UTF-8 (and so US-ASCII) is accepted as a charset, and an
/// invalid sequence is replaced rather than refused, which can only make a match less likely.
fn lossy<'s>(value: &'s AString<'_>) -> std::borrow::Cow<'s, str> {
    String::from_utf8_lossy(value.as_ref())
}
