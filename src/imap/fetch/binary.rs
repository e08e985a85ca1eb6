//! `BINARY[section]<partial>` and `BINARY.SIZE[section]` (RFC 3516, part of IMAP4rev2): a
//! section's content with its Content-Transfer-Encoding removed.
//!
//! A section is numbers only (`imap-codec` refuses HEADER, TEXT and MIME in one: `BAD`) and
//! names the part BODY[] names. What is served:
//!
//! - A leaf part: its body decoded (see [`transfer`](super::transfer)). A text part's line
//!   ends are then made CRLF, as RFC 9051 section 7.5.2 requires of "textual line-oriented
//!   sections" whatever the storage. An encoding this server does not know fails the FETCH
//!   with `NO [UNKNOWN-CTE]`, checked before the message is marked `\Seen`.
//! - The whole message (`BINARY[]`), a multipart or a message/rfc822 part: there is no
//!   encoding to remove (RFC 2045 section 6.4 allows these only `7bit`, `8bit` and `binary`),
//!   so the octets BODY[] shows, but with NUL kept.
//! - Either way, a `binary` part that is not text is sent octet for octet as stored, bare CR
//!   and LF included: a message appended in a literal8 comes back from `BINARY[]` as it was
//!   sent (unless its text had bare line ends: those are made CRLF).
//! - A part that does not exist: NIL, as for BODY[]; its BINARY.SIZE is 0.
//!
//! The value is a `literal8` (`~{n}`) when it holds NUL and a literal otherwise (RFC 9051
//! section 7.5.2). A partial fetch is answered without its origin (`BINARY[1] ...`), as RFC
//! 9051's grammar has it.
//!
//! The work is bounded by the parts a FETCH names, not by its items: the items of a section
//! share one decoding ([`Sections`]), BINARY.SIZE decodes an encoded part to count it and
//! keeps only the count, and the other sections are counted in place. Decoding holds no more
//! octets than the part has (see [`transfer`](super::transfer)); making a decoded text's line
//! ends CRLF copies them once more, at most doubled.

use std::borrow::Cow;
use std::num::NonZeroU32;
use std::ops::Range;

use imap_codec::imap_types::core::{LiteralMode, NString, NString8};
use imap_codec::imap_types::extensions::binary::Literal8;
use imap_codec::imap_types::fetch::MessageDataItem;

use super::strings::literal;
use super::transfer::Encoding;
use super::tree::{Kind, Part};
use super::{Content, UnknownCte, crlf, section};
use crate::store::rfc822_size;

/// `Err` if `section` of `message` is a part whose encoding this server cannot remove. Cheap:
/// nothing is decoded.
pub(super) fn check(message: &Content<'_>, section: &[NonZeroU32]) -> Result<(), UnknownCte> {
    match section::resolve(message.tree(), section) {
        Some(part) if matches!(part.kind, Kind::Single) => {
            Encoding::of(message.slice(&part.header))
                .map(drop)
                .ok_or(UnknownCte)
        }
        _ => Ok(()),
    }
}

/// The BINARY items of one message, answered from one decoding per section: a FETCH with
/// many partial fetches of a part (`BINARY[2]<0.1> BINARY[2]<1.1> ...`) decodes it once.
/// [`FetchPlan`](super::FetchPlan) puts the items of a section next to each other, so only
/// the last section's octets are kept.
pub(super) struct Sections<'m, 'a> {
    message: &'m Content<'a>,
    last: Option<Decoded<'m>>,
}

/// A section's octets as BINARY sends them.
struct Decoded<'m> {
    section: Vec<NonZeroU32>,
    /// `None`: the part does not exist.
    data: Option<Cow<'m, [u8]>>,
}

impl<'m, 'a> Sections<'m, 'a> {
    pub(super) fn new(message: &'m Content<'a>) -> Sections<'m, 'a> {
        Sections {
            message,
            last: None,
        }
    }

    /// `BINARY[section]<partial>`.
    pub(super) fn item(
        &mut self,
        section: &[NonZeroU32],
        partial: Option<(u32, NonZeroU32)>,
    ) -> MessageDataItem<'static> {
        let value = match (self.decoded(section), partial) {
            (None, _) => NString8::NString(NString::NIL),
            (Some(data), None) => value(data),
            (Some(data), Some((start, length))) => value(section::partial(data, start, length)),
        };
        MessageDataItem::Binary {
            section: section.to_vec(),
            value,
        }
    }

    /// `BINARY.SIZE[section]`: the octets `BINARY[section]` sends; 0 for a part that does not
    /// exist. Counted without keeping the decoded octets, unless they are kept already.
    pub(super) fn size_item(&self, section: &[NonZeroU32]) -> MessageDataItem<'static> {
        let size = match &self.last {
            Some(last) if last.section == section => last.data.as_ref().map_or(0, |d| d.len()),
            _ => locate(self.message, section).map_or(0, |source| source.size(self.message)),
        };
        MessageDataItem::BinarySize {
            section: section.to_vec(),
            size: u32::try_from(size).unwrap_or(u32::MAX),
        }
    }

    fn decoded(&mut self, section: &[NonZeroU32]) -> Option<&[u8]> {
        if self
            .last
            .as_ref()
            .is_none_or(|last| last.section != section)
        {
            // Dropped before the next is decoded.
            self.last = None;
            let data = locate(self.message, section).map(|source| source.decoded(self.message));
            self.last = Some(Decoded {
                section: section.to_vec(),
                data,
            });
        }
        self.last.as_ref().and_then(|last| last.data.as_deref())
    }
}

/// Where BINARY takes a section's content from: octet ranges of the message's CRLF form.
enum Source {
    /// Served without decoding: the CRLF form with NUL kept, but the parts `stored` (ranges
    /// inside `range`, in order) as stored.
    Plain {
        range: Range<usize>,
        stored: Vec<Range<usize>>,
    },
    /// Decoded, and then the line ends made CRLF if `text`.
    Encoded {
        range: Range<usize>,
        encoding: Encoding,
        text: bool,
    },
}

impl Source {
    fn decoded<'m>(self, message: &'m Content<'_>) -> Cow<'m, [u8]> {
        match self {
            Source::Plain { range, stored } if stored.is_empty() => {
                Cow::Borrowed(message.slice_keeping_nul(&range))
            }
            Source::Plain { range, stored } if stored == [range.clone()] => {
                Cow::Borrowed(message.stored(&stored)[0])
            }
            Source::Plain { range, stored } => {
                let mut out = Vec::with_capacity(range.len());
                let mut at = range.start;
                for (leaf, octets) in stored.iter().zip(message.stored(&stored)) {
                    out.extend_from_slice(message.slice_keeping_nul(&(at..leaf.start)));
                    out.extend_from_slice(octets);
                    at = leaf.end;
                }
                out.extend_from_slice(message.slice_keeping_nul(&(at..range.end)));
                Cow::Owned(out)
            }
            Source::Encoded {
                range,
                encoding,
                text,
            } => {
                let decoded = encoding.decode(message.slice(&range));
                let fixed = match text {
                    true => match crlf::normalize_keeping_nul(&decoded) {
                        Cow::Owned(fixed) => Some(fixed),
                        Cow::Borrowed(_) => None,
                    },
                    false => None,
                };
                fixed.map_or(decoded, Cow::Owned)
            }
        }
    }

    /// The length of [`decoded`](Self::decoded), counted rather than built where it can be.
    fn size(self, message: &Content<'_>) -> usize {
        match self {
            Source::Plain { range, stored } => {
                let crlf_form: usize = stored.iter().map(|leaf| leaf.len()).sum();
                let as_stored: usize = message.stored(&stored).iter().map(|s| s.len()).sum();
                range.len() - crlf_form + as_stored
            }
            Source::Encoded {
                range,
                encoding,
                text,
            } => {
                let decoded = encoding.decode(message.slice(&range));
                match text {
                    true => usize::try_from(rfc822_size(&decoded)).unwrap_or(usize::MAX),
                    false => decoded.len(),
                }
            }
        }
    }
}

/// Where `section` of `message` is served from; `None` for a part that does not exist, and
/// for one whose encoding this server does not know ([`check`] refused those before).
fn locate(message: &Content<'_>, section: &[NonZeroU32]) -> Option<Source> {
    let (part, range) = match section {
        [] => (message.tree(), 0..message.bytes().len()),
        _ => {
            let part = section::resolve(message.tree(), section)?;
            (part, part.body.clone())
        }
    };
    if !section.is_empty() && matches!(part.kind, Kind::Single) {
        let encoding = Encoding::of(message.slice(&part.header))?;
        if !matches!(encoding, Encoding::Lines | Encoding::Binary) {
            let text = part.content_type.kind == "text";
            return Some(Source::Encoded {
                range,
                encoding,
                text,
            });
        }
    }
    let stored = stored_parts(message, part);
    Some(Source::Plain { range, stored })
}

/// The bodies in `part` (itself included) sent as stored: `binary` parts that are not text,
/// in order. None when the message is stored in its CRLF form: then the CRLF form with NUL
/// kept is the stored octets.
fn stored_parts(message: &Content<'_>, part: &Part) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    if message.stored_as_crlf() {
        return found;
    }
    let mut pending = vec![part];
    while let Some(part) = pending.pop() {
        match &part.kind {
            Kind::Multipart(children) => pending.extend(children.iter().rev()),
            Kind::Message(inner) => pending.push(inner),
            Kind::Single => {
                let binary = Encoding::of(message.slice(&part.header)) == Some(Encoding::Binary);
                if binary && part.content_type.kind != "text" {
                    found.push(part.body.clone());
                }
            }
        }
    }
    found
}

/// A literal8 if `data` holds NUL, which no other string can carry; a literal otherwise.
fn value(data: &[u8]) -> NString8<'static> {
    match data.contains(&0) {
        true => NString8::Literal8(Literal8 {
            data: Cow::Owned(data.to_vec()),
            mode: LiteralMode::Sync,
        }),
        false => NString8::NString(literal(data)),
    }
}

#[cfg(test)]
mod tests;
