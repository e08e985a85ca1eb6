//! FETCH data items (RFC 3501 sections 6.4.5 and 7.4.2): what the session sends for one
//! message, as imap-types values for imap-codec to encode.
//!
//! A [`FetchPlan`] is made once per command from the requested items; rendering a message
//! normalises its octets to CRLF and parses its MIME tree at most once, and only if an item
//! needs them. BINARY and BINARY.SIZE (RFC 3516) are in [`binary`].

mod binary;
mod crlf;
mod encoded;
mod envelope;
mod header;
mod params;
mod section;
mod strings;
mod structure;
mod transfer;
mod tree;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::num::{NonZeroU32, NonZeroU64};
use std::ops::Range;

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{NString, Vec1};
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};

use super::dates;
use crate::store::MessageMeta;
pub(super) use encoded::EncodedItems;
pub(super) use header::{fields as header_fields, unfold};
use strings::literal;
use tree::Part;

/// A BINARY item names a part whose Content-Transfer-Encoding this server cannot remove: the
/// FETCH fails with `NO [UNKNOWN-CTE]` (RFC 9051 section 7.5.2).
#[derive(Debug)]
pub(super) struct UnknownCte;

/// The data items one FETCH (or UID FETCH) asks for, in the order they are answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FetchPlan {
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Flags,
    InternalDate,
    Rfc822Size,
    Uid,
    Envelope,
    Body,
    BodyStructure,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    /// RFC 7162's MODSEQ.
    ModSeq,
    /// BODY[section]<partial> and BODY.PEEK[...]; `section` None is BODY[].
    Section {
        section: Option<Section<'static>>,
        partial: Option<(u32, NonZeroU32)>,
        peek: bool,
    },
    /// BINARY[section]<partial> and BINARY.PEEK[...]; an empty `section` is BINARY[].
    Binary {
        section: Vec<NonZeroU32>,
        partial: Option<(u32, NonZeroU32)>,
        peek: bool,
    },
    BinarySize {
        section: Vec<NonZeroU32>,
    },
}

impl FetchPlan {
    /// Expand macros ALL/FAST/FULL; `uid` = the command was UID FETCH, so the UID item is
    /// always included (RFC 3501 6.4.8).
    pub(super) fn new(names: &MacroOrMessageDataItemNames<'_>, uid: bool) -> FetchPlan {
        let names = match names {
            MacroOrMessageDataItemNames::Macro(name) => name.expand(),
            MacroOrMessageDataItemNames::MessageDataItemNames(names) => names.clone(),
        };
        let mut plan = FetchPlan { items: Vec::new() };
        // First, as Dovecot sends it: clients that match responses to UIDs find it at once.
        if uid {
            plan.items.push(Item::Uid);
        }
        for name in names {
            plan.add(Item::from_name(name));
        }
        plan
    }

    /// Whether `render` needs the message's bytes (anything beyond FLAGS, UID, INTERNALDATE,
    /// RFC822.SIZE, MODSEQ).
    pub(super) fn needs_content(&self) -> bool {
        self.items.iter().any(Item::needs_content)
    }

    /// Whether ENVELOPE or BODYSTRUCTURE is asked for and no other item needs the message's
    /// bytes: then [`EncodedItems`] the store kept answer without reading the message (see
    /// [`write_encoded`](Self::write_encoded)).
    pub(super) fn served_by_encoded(&self) -> bool {
        let mut content = self
            .items
            .iter()
            .filter(|item| item.needs_content())
            .peekable();
        content.peek().is_some()
            && content.all(|item| matches!(item, Item::Envelope | Item::BodyStructure))
    }

    /// Whether MODSEQ is asked for.
    pub(super) fn has_modseq(&self) -> bool {
        self.items.contains(&Item::ModSeq)
    }

    /// Whether the answer may show FLAGS: asked for, or set by reading (`\Seen`).
    pub(super) fn shows_flags(&self) -> bool {
        self.items.contains(&Item::Flags) || self.marks_seen()
    }

    /// Adds MODSEQ (CHANGEDSINCE implies it; with CONDSTORE on, it goes with FLAGS).
    pub(super) fn add_modseq(&mut self) {
        self.add(Item::ModSeq);
    }

    /// Whether fetching sets \Seen: BODY[...] and BINARY[...] without .PEEK, RFC822,
    /// RFC822.TEXT.
    pub(super) fn marks_seen(&self) -> bool {
        self.items.iter().any(|item| {
            matches!(
                item,
                Item::Section { peek: false, .. }
                    | Item::Binary { peek: false, .. }
                    | Item::Rfc822
                    | Item::Rfc822Text
            )
        })
    }

    /// Whether the message `content` can be answered: [`UnknownCte`] if a BINARY item names a
    /// part whose encoding this server cannot remove. Asked before the message is marked
    /// `\Seen`; it parses the message's tree again only for FETCHes with BINARY items.
    pub(super) fn check(&self, content: Option<&[u8]>) -> Result<(), UnknownCte> {
        let message = Content::new(content.unwrap_or_default());
        self.items.iter().try_for_each(|item| match item {
            Item::Binary { section, .. } | Item::BinarySize { section } => {
                binary::check(&message, section)
            }
            _ => Ok(()),
        })
    }

    /// The items for one message. `meta.flags` are already updated by the caller;
    /// `force_flags` = include FLAGS even if not asked (the caller just set \Seen implicitly);
    /// `recent` = the message is `\Recent` in this session.
    /// `content` is Some when needs_content() is true (None then reads as an empty message
    /// rather than failing the command).
    pub(super) fn render(
        &self,
        meta: &MessageMeta,
        content: Option<&[u8]>,
        force_flags: bool,
        recent: bool,
    ) -> Vec1<MessageDataItem<'static>> {
        let message = Content::new(content.unwrap_or_default());
        let flags = || MessageDataItem::Flags(super::flags::to_fetch(&meta.flags, recent));
        let mut binary = binary::Sections::new(&message);
        let mut out = Vec::with_capacity(self.items.len() + 1);
        for item in &self.items {
            out.extend(match item {
                Item::Flags => Some(flags()),
                Item::Binary {
                    section, partial, ..
                } => Some(binary.item(section, *partial)),
                Item::BinarySize { section } => Some(binary.size_item(section)),
                item => item.render(meta, &message),
            });
        }
        if force_flags && !self.items.contains(&Item::Flags) {
            out.push(flags());
        }
        Vec1::try_from(out).unwrap_or_else(|_| Vec1::from(flags()))
    }

    /// Writes the FETCH response for one message whose ENVELOPE and BODYSTRUCTURE are
    /// `encoded`, byte for byte what [`render`](Self::render) gives encoded; for plans that
    /// [`served_by_encoded`](Self::served_by_encoded). The other items are encoded as
    /// `render` encodes them, a run of them at a time.
    pub(super) fn write_encoded(
        &self,
        out: &mut Vec<u8>,
        seq: NonZeroU32,
        meta: &MessageMeta,
        encoded: &EncodedItems,
        force_flags: bool,
        recent: bool,
    ) {
        let nothing = Content::new(b"");
        let flags = || MessageDataItem::Flags(super::flags::to_fetch(&meta.flags, recent));
        let mut line = encoded::Line::start(out, seq);
        for item in &self.items {
            match item {
                Item::Envelope => line.encoded(encoded.envelope()),
                Item::BodyStructure => line.encoded(encoded.body_structure()),
                Item::Flags => line.item(flags()),
                item => {
                    if let Some(rendered) = item.render(meta, &nothing) {
                        line.item(rendered);
                    }
                }
            }
        }
        if force_flags && !self.items.contains(&Item::Flags) {
            line.item(flags());
        }
        line.end();
    }

    /// Adds `item` unless it is asked already: each item is answered once. BODY[x] and
    /// BODY.PEEK[x] give the same response, as do BINARY[x] and BINARY.PEEK[x]; \Seen is set
    /// if either asks for it. A BINARY item goes right after the others of its section
    /// (items may be answered in any order), so that they share one decoding.
    fn add(&mut self, mut item: Item) {
        if let Some(existing) = self.items.iter_mut().find(|e| e.same_answer(&item)) {
            if let (Some(peek), Some(new)) = (existing.peek_mut(), item.peek_mut()) {
                *peek &= *new;
            }
            return;
        }
        let at = item.binary_section().and_then(|section| {
            let last = self
                .items
                .iter()
                .rposition(|other| other.binary_section() == Some(section))?;
            Some(last + 1)
        });
        match at {
            Some(at) => self.items.insert(at, item),
            None => self.items.push(item),
        }
    }
}

impl Item {
    fn from_name(name: MessageDataItemName<'_>) -> Item {
        match name {
            MessageDataItemName::Flags => Item::Flags,
            MessageDataItemName::InternalDate => Item::InternalDate,
            MessageDataItemName::Rfc822Size => Item::Rfc822Size,
            MessageDataItemName::Uid => Item::Uid,
            MessageDataItemName::Envelope => Item::Envelope,
            MessageDataItemName::Body => Item::Body,
            MessageDataItemName::BodyStructure => Item::BodyStructure,
            MessageDataItemName::Rfc822 => Item::Rfc822,
            MessageDataItemName::Rfc822Header => Item::Rfc822Header,
            MessageDataItemName::Rfc822Text => Item::Rfc822Text,
            MessageDataItemName::ModSeq => Item::ModSeq,
            MessageDataItemName::BodyExt {
                section,
                partial,
                peek,
            } => Item::Section {
                section: section.map(IntoStatic::into_static),
                partial,
                peek,
            },
            MessageDataItemName::Binary {
                section,
                partial,
                peek,
            } => Item::Binary {
                section,
                partial,
                peek,
            },
            MessageDataItemName::BinarySize { section } => Item::BinarySize { section },
        }
    }

    /// Whether answering the item needs the message's bytes.
    fn needs_content(&self) -> bool {
        !matches!(
            self,
            Item::Flags | Item::InternalDate | Item::Rfc822Size | Item::Uid | Item::ModSeq
        )
    }

    /// Whether `self` and `other` are answered by the same data item: equal, or the same
    /// section with and without .PEEK.
    fn same_answer(&self, other: &Item) -> bool {
        match (self, other) {
            (
                Item::Section {
                    section: a,
                    partial: p,
                    ..
                },
                Item::Section {
                    section: b,
                    partial: q,
                    ..
                },
            ) => a == b && p == q,
            (
                Item::Binary {
                    section: a,
                    partial: p,
                    ..
                },
                Item::Binary {
                    section: b,
                    partial: q,
                    ..
                },
            ) => a == b && p == q,
            _ => self == other,
        }
    }

    /// The section of a BINARY or BINARY.SIZE item.
    fn binary_section(&self) -> Option<&[NonZeroU32]> {
        match self {
            Item::Binary { section, .. } | Item::BinarySize { section } => Some(section),
            _ => None,
        }
    }

    /// The .PEEK of a BODY[] or BINARY[] item.
    fn peek_mut(&mut self) -> Option<&mut bool> {
        match self {
            Item::Section { peek, .. } | Item::Binary { peek, .. } => Some(peek),
            _ => None,
        }
    }

    fn render(
        &self,
        meta: &MessageMeta,
        message: &Content<'_>,
    ) -> Option<MessageDataItem<'static>> {
        Some(match self {
            // Rendered by the caller, which knows `\Recent` and decodes BINARY's sections
            // once for all their items.
            Item::Flags | Item::Binary { .. } | Item::BinarySize { .. } => return None,
            Item::InternalDate => MessageDataItem::InternalDate(dates::to_imap(meta.internal_date)),
            Item::Rfc822Size => {
                MessageDataItem::Rfc822Size(u32::try_from(meta.size).unwrap_or(u32::MAX))
            }
            Item::Uid => MessageDataItem::Uid(NonZeroU32::new(meta.uid)?),
            // A store without mod-sequences has 0; the session refuses MODSEQ there.
            Item::ModSeq => MessageDataItem::ModSeq(NonZeroU64::new(meta.modseq)?),
            Item::Envelope => message.envelope(),
            Item::Body => {
                MessageDataItem::Body(structure::structure(message.tree(), message.bytes(), false))
            }
            Item::BodyStructure => message.body_structure(),
            Item::Rfc822 => MessageDataItem::Rfc822(literal(message.bytes())),
            Item::Rfc822Header => {
                MessageDataItem::Rfc822Header(literal(message.slice(&message.tree().header)))
            }
            Item::Rfc822Text => {
                MessageDataItem::Rfc822Text(literal(message.slice(&message.tree().body)))
            }
            Item::Section {
                section, partial, ..
            } => {
                let data = match section {
                    None => Some(Cow::Borrowed(message.bytes())),
                    Some(section) => section::extract(message.tree(), message.bytes(), section),
                };
                let data = match (data, partial) {
                    (None, _) => NString::NIL,
                    (Some(data), None) => literal(data),
                    (Some(data), Some((start, length))) => {
                        literal(section::partial(&data, *start, *length))
                    }
                };
                MessageDataItem::BodyExt {
                    section: section.clone(),
                    origin: partial.map(|(start, _)| start),
                    data,
                }
            }
        })
    }
}

/// One message's octets, normalised and parsed on first use only.
struct Content<'a> {
    raw: &'a [u8],
    bytes: OnceCell<Cow<'a, [u8]>>,
    /// The CRLF form with NUL kept, for BINARY; `None` when it is `bytes` (no NUL stored).
    keeping_nul: OnceCell<Option<Cow<'a, [u8]>>>,
    tree: OnceCell<Part>,
}

impl<'a> Content<'a> {
    fn new(raw: &'a [u8]) -> Content<'a> {
        Content {
            raw,
            bytes: OnceCell::new(),
            keeping_nul: OnceCell::new(),
            tree: OnceCell::new(),
        }
    }

    /// The message in CRLF form.
    fn bytes(&self) -> &[u8] {
        self.bytes.get_or_init(|| crlf::normalize(self.raw))
    }

    fn tree(&self) -> &Part {
        self.tree.get_or_init(|| Part::parse(self.bytes()))
    }

    /// The ENVELOPE item.
    fn envelope(&self) -> MessageDataItem<'static> {
        MessageDataItem::Envelope(envelope::envelope(self.slice(&self.tree().header)))
    }

    /// The BODYSTRUCTURE item.
    fn body_structure(&self) -> MessageDataItem<'static> {
        MessageDataItem::BodyStructure(structure::structure(self.tree(), self.bytes(), true))
    }

    fn slice(&self, range: &Range<usize>) -> &[u8] {
        self.bytes().get(range.clone()).unwrap_or_default()
    }

    /// [`slice`](Self::slice) with NUL kept as stored: the same length, at the same offsets.
    fn slice_keeping_nul(&self, range: &Range<usize>) -> &[u8] {
        let form = self.keeping_nul.get_or_init(|| {
            self.raw
                .contains(&0)
                .then(|| crlf::normalize_keeping_nul(self.raw))
        });
        match form {
            Some(form) => form.get(range.clone()).unwrap_or_default(),
            None => self.slice(range),
        }
    }

    /// Whether the message is stored in its CRLF form (NUL aside): then its offsets are the
    /// stored ones.
    fn stored_as_crlf(&self) -> bool {
        self.bytes().len() == self.raw.len()
    }

    /// The stored octets each of `ranges` (ascending, not overlapping) of the CRLF form was
    /// made from: line ends as stored, NUL kept. One pass over the message for all of them.
    fn stored(&self, ranges: &[Range<usize>]) -> Vec<&[u8]> {
        let same = self.stored_as_crlf();
        let mut offsets = crlf::StoredOffsets::new(self.raw);
        let mut stored = |offset| if same { offset } else { offsets.map(offset) };
        ranges
            .iter()
            .map(|range| {
                let range = stored(range.start)..stored(range.end);
                self.raw.get(range).unwrap_or_default()
            })
            .collect()
    }
}
