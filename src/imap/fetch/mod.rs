//! FETCH data items (RFC 3501 sections 6.4.5 and 7.4.2): what the session sends for one
//! message, as imap-types values for imap-codec to encode.
//!
//! A [`FetchPlan`] is made once per command from the requested items; rendering a message
//! normalises its octets to CRLF and parses its MIME tree at most once, and only if an item
//! needs them.

mod crlf;
mod envelope;
mod header;
mod params;
mod section;
mod strings;
mod structure;
mod tree;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{NString, Vec1};
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};

use super::dates;
use crate::store::MessageMeta;
use strings::literal;
use tree::Part;

/// A FETCH item this server does not serve.
#[derive(Debug)]
pub(super) struct Unsupported;

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
}

impl FetchPlan {
    /// Expand macros ALL/FAST/FULL; `uid` = the command was UID FETCH, so the UID item is
    /// always included (RFC 3501 6.4.8). Items of extensions not advertised (BINARY, which
    /// imap-codec always parses) are [`Unsupported`].
    pub(super) fn new(
        names: &MacroOrMessageDataItemNames<'_>,
        uid: bool,
    ) -> Result<FetchPlan, Unsupported> {
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
            plan.add(Item::from_name(name).ok_or(Unsupported)?);
        }
        Ok(plan)
    }

    /// Whether `render` needs the message's bytes (anything beyond FLAGS, UID, INTERNALDATE,
    /// RFC822.SIZE, MODSEQ).
    pub(super) fn needs_content(&self) -> bool {
        self.items.iter().any(|item| {
            !matches!(
                item,
                Item::Flags | Item::InternalDate | Item::Rfc822Size | Item::Uid | Item::ModSeq
            )
        })
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

    /// Whether fetching sets \Seen: BODY[...] without .PEEK, RFC822, RFC822.TEXT.
    pub(super) fn marks_seen(&self) -> bool {
        self.items.iter().any(|item| {
            matches!(
                item,
                Item::Section { peek: false, .. } | Item::Rfc822 | Item::Rfc822Text
            )
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
        let mut out = Vec::with_capacity(self.items.len() + 1);
        for item in &self.items {
            out.extend(match item {
                Item::Flags => Some(flags()),
                item => item.render(meta, &message),
            });
        }
        if force_flags && !self.items.contains(&Item::Flags) {
            out.push(flags());
        }
        Vec1::try_from(out).unwrap_or_else(|_| Vec1::from(flags()))
    }

    /// Adds `item` unless it is asked already: each item is answered once. BODY[x] and
    /// BODY.PEEK[x] give the same response; \Seen is set if either asks for it.
    fn add(&mut self, item: Item) {
        if let Item::Section {
            section, partial, ..
        } = &item
        {
            let twin = self.items.iter_mut().find_map(|existing| match existing {
                Item::Section {
                    section: s,
                    partial: p,
                    peek,
                } if s == section && p == partial => Some(peek),
                _ => None,
            });
            if let (Some(peek), Item::Section { peek: new, .. }) = (twin, &item) {
                *peek &= *new;
                return;
            }
        }
        if !self.items.contains(&item) {
            self.items.push(item);
        }
    }
}

impl Item {
    /// BINARY and BINARY.SIZE (RFC 3516) are not offered and are left out.
    fn from_name(name: MessageDataItemName<'_>) -> Option<Item> {
        Some(match name {
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
            _ => return None,
        })
    }

    fn render(
        &self,
        meta: &MessageMeta,
        message: &Content<'_>,
    ) -> Option<MessageDataItem<'static>> {
        Some(match self {
            // Rendered by the caller, which knows `\Recent`.
            Item::Flags => return None,
            Item::InternalDate => MessageDataItem::InternalDate(dates::to_imap(meta.internal_date)),
            Item::Rfc822Size => {
                MessageDataItem::Rfc822Size(u32::try_from(meta.size).unwrap_or(u32::MAX))
            }
            Item::Uid => MessageDataItem::Uid(NonZeroU32::new(meta.uid)?),
            // A store without mod-sequences has 0; the session refuses MODSEQ there.
            Item::ModSeq => MessageDataItem::ModSeq(NonZeroU64::new(meta.modseq)?),
            Item::Envelope => {
                let root = message.tree();
                MessageDataItem::Envelope(envelope::envelope(message.slice(&root.header)))
            }
            Item::Body => {
                MessageDataItem::Body(structure::structure(message.tree(), message.bytes(), false))
            }
            Item::BodyStructure => MessageDataItem::BodyStructure(structure::structure(
                message.tree(),
                message.bytes(),
                true,
            )),
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
    tree: OnceCell<Part>,
}

impl<'a> Content<'a> {
    fn new(raw: &'a [u8]) -> Content<'a> {
        Content {
            raw,
            bytes: OnceCell::new(),
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

    fn slice(&self, range: &std::ops::Range<usize>) -> &[u8] {
        self.bytes().get(range.clone()).unwrap_or_default()
    }
}
