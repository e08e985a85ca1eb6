//! ENVELOPE and BODYSTRUCTURE encoded once per message, for the store to keep
//! ([`Mailstore::remember`](crate::store::Mailstore::remember)): a whole-mailbox FETCH of
//! them then copies bytes instead of reading, parsing and encoding every message, also after
//! a restart.
//!
//! What is kept is the items' encoded form, exactly as imap-codec encodes them inside a
//! FETCH response, so that a response written from it ([`Line`]) is byte for byte the one
//! encoded whole. The encoding depends on the message's content only (no session setting
//! changes how ENVELOPE or BODYSTRUCTURE are written), so one entry serves every session.
//!
//! Beside them the entry keeps the ids of the message's References field, which ENVELOPE
//! lacks and THREAD=REFERENCES needs: with them a THREAD reads no message either.

use std::io::Write;
use std::num::NonZeroU32;

use bytes::{BufMut, Bytes};
use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::envelope::Envelope;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};

use super::Content;
use crate::imap::response;

/// The version of what [`EncodedItems::of`] makes: entries kept with another one are not
/// used (they are encoded again and replaced). Bump it whenever ENVELOPE or BODYSTRUCTURE
/// would be answered differently; entries also lapse with every release, as the crate's
/// version is part of the tag.
const VERSION: u32 = 2;

/// The tag every kept entry starts with.
fn tag() -> String {
    format!("{VERSION}/{}", env!("CARGO_PKG_VERSION"))
}

/// One message's ENVELOPE and BODYSTRUCTURE items, encoded, and its References ids: as the
/// store keeps them, a tag (its length as one byte, then the tag), the ENVELOPE item's length
/// (`u32`, little-endian), the ENVELOPE item, the BODYSTRUCTURE item's length, the
/// BODYSTRUCTURE item, then the ids (`<id>` after `<id>`, as
/// [`kept_references`](crate::imap::thread::kept_references) keeps them).
#[derive(Debug, Clone)]
pub(in crate::imap) struct EncodedItems {
    kept: Bytes,
    /// Where the ENVELOPE item starts and ends in `kept`.
    envelope: (usize, usize),
    /// Where the BODYSTRUCTURE item ends (it starts where the ENVELOPE ends); the ids follow.
    body_structure_end: usize,
}

impl EncodedItems {
    /// Parses and encodes the message `content` (as stored).
    pub(in crate::imap) fn of(content: &[u8]) -> EncodedItems {
        let message = Content::new(content);
        let envelope = alone(message.envelope());
        let body_structure = alone(message.body_structure());
        let references = crate::imap::thread::kept_references(content);
        let tag = tag();
        let mut kept = Vec::with_capacity(
            1 + tag.len() + 8 + envelope.len() + body_structure.len() + references.len(),
        );
        kept.put_u8(u8::try_from(tag.len()).expect("a short tag"));
        kept.put_slice(tag.as_bytes());
        kept.put_u32_le(u32::try_from(envelope.len()).unwrap_or(u32::MAX));
        let start = kept.len();
        kept.put_slice(&envelope);
        let end = kept.len();
        kept.put_u32_le(u32::try_from(body_structure.len()).unwrap_or(u32::MAX));
        kept.put_slice(&body_structure);
        let body_structure_end = kept.len();
        kept.put_slice(&references);
        EncodedItems {
            kept: kept.into(),
            envelope: (start, end),
            body_structure_end,
        }
    }

    /// The items the store kept as `kept`, if they are of this version and whole.
    pub(in crate::imap) fn from_kept(kept: Bytes) -> Option<EncodedItems> {
        let tag_len = usize::from(*kept.first()?);
        if kept.get(1..1 + tag_len)? != tag().as_bytes() {
            return None;
        }
        let length_at = |at: usize| -> Option<usize> {
            let len = u32::from_le_bytes(kept.get(at..at.checked_add(4)?)?.try_into().ok()?);
            usize::try_from(len).ok()
        };
        let start = 1 + tag_len + 4;
        let end = start.checked_add(length_at(1 + tag_len)?)?;
        let body_structure_end = (end + 4).checked_add(length_at(end)?)?;
        (body_structure_end <= kept.len()).then_some(EncodedItems {
            kept,
            envelope: (start, end),
            body_structure_end,
        })
    }

    /// What the store keeps.
    pub(in crate::imap) fn kept(&self) -> Bytes {
        self.kept.clone()
    }

    /// `read` given the ENVELOPE kept, decoded again by imap-codec: SORT's keys come from it.
    /// `None` only for an entry that does not decode, which this crate never encodes.
    pub(in crate::imap) fn with_envelope<R>(
        &self,
        read: impl FnOnce(&Envelope<'_>) -> R,
    ) -> Option<R> {
        let mut line = Vec::with_capacity(self.envelope().len() + 16);
        line.extend_from_slice(b"* 1 FETCH (");
        line.extend_from_slice(self.envelope());
        line.extend_from_slice(b")\r\n");
        let (_, response) = ResponseCodec::default().decode(&line).ok()?;
        let Response::Data(Data::Fetch { items, .. }) = response else {
            return None;
        };
        items
            .as_ref()
            .iter()
            .find_map(|item| match item {
                MessageDataItem::Envelope(envelope) => Some(envelope),
                _ => None,
            })
            .map(read)
    }

    pub(super) fn envelope(&self) -> &[u8] {
        &self.kept[self.envelope.0..self.envelope.1]
    }

    pub(super) fn body_structure(&self) -> &[u8] {
        &self.kept[self.envelope.1 + 4..self.body_structure_end]
    }

    /// The message's References ids, `<id>` after `<id>`, oldest first.
    pub(in crate::imap) fn references(&self) -> &[u8] {
        &self.kept[self.body_structure_end..]
    }
}

/// One item encoded as it is inside a FETCH response.
fn alone(item: MessageDataItem<'static>) -> Vec<u8> {
    let seq = NonZeroU32::MIN;
    let mut out = Vec::new();
    let mut line = Line::start(&mut out, seq);
    line.item(item);
    let prefix_len = line.prefix_len;
    line.end();
    out.truncate(out.len() - b")\r\n".len());
    out.split_off(prefix_len)
}

/// A FETCH response being written: `* <seq> FETCH (`, the items separated by spaces, `)`
/// and CRLF, as imap-codec writes it; items already encoded are copied in, the others are
/// encoded by imap-codec, each run of them in one go.
pub(super) struct Line<'a> {
    out: &'a mut Vec<u8>,
    seq: NonZeroU32,
    /// The length of `* <seq> FETCH (`.
    prefix_len: usize,
    /// Items not encoded yet.
    pending: Vec<MessageDataItem<'static>>,
    /// Whether an item was written (the next one is preceded by a space).
    written: bool,
}

impl<'a> Line<'a> {
    pub(super) fn start(out: &'a mut Vec<u8>, seq: NonZeroU32) -> Line<'a> {
        let before = out.len();
        write!(out, "* {seq} FETCH (").expect("writing to a Vec");
        let prefix_len = out.len() - before;
        Line {
            out,
            seq,
            prefix_len,
            pending: Vec::new(),
            written: false,
        }
    }

    /// Adds an item to encode.
    pub(super) fn item(&mut self, item: MessageDataItem<'static>) {
        self.pending.push(item);
    }

    /// Adds an item already encoded.
    pub(super) fn encoded(&mut self, item: &[u8]) {
        self.flush();
        self.separate();
        self.out.extend_from_slice(item);
    }

    pub(super) fn end(mut self) {
        self.flush();
        self.out.extend_from_slice(b")\r\n");
    }

    fn separate(&mut self) {
        if self.written {
            self.out.push(b' ');
        }
        self.written = true;
    }

    /// Encodes the pending items as imap-codec encodes a response with just them, and keeps
    /// what is between its parentheses.
    fn flush(&mut self) {
        let Ok(items) = Vec1::try_from(std::mem::take(&mut self.pending)) else {
            return;
        };
        let mut encoded = Vec::new();
        response::data(
            &mut encoded,
            Data::Fetch {
                seq: self.seq,
                items,
            },
        );
        let inner = encoded
            .get(self.prefix_len..encoded.len().saturating_sub(b")\r\n".len()))
            .unwrap_or_default();
        self.separate();
        self.out.extend_from_slice(inner);
    }
}
