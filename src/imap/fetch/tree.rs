//! A message's MIME tree as IMAP numbers it (RFC 3501 section 6.4.5), built from mail-parser's
//! part offsets.
//!
//! mail-parser finds the parts (boundaries, nested messages) and where they are; this module
//! keeps only the octet ranges and decides each part's IMAP shape, so that BODYSTRUCTURE and
//! the section numbers always agree, whatever the input. The walk stops at [`MAX_DEPTH`]:
//! deeper parts are served as opaque leaves.

use std::ops::Range;
use std::sync::LazyLock;

use mail_parser::{HeaderName, Message, MessageParser, PartType};

use super::params::{self, ContentType};

/// How deep parts nest before they are served as leaves: real mail nests a handful of
/// levels; hostile mail nests thousands to exhaust the stack of whoever recurses.
const MAX_DEPTH: usize = 64;

/// Only the headers that shape the tree are parsed; the others are skipped, not decoded.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .header_content_type(HeaderName::ContentType)
        .header_text(HeaderName::ContentTransferEncoding)
        .default_header_ignore()
});

/// One part: octet ranges in the CRLF-normalised message, and its shape.
#[derive(Debug)]
pub(super) struct Part {
    /// The part's header block, the blank line that ends it included (the MIME header of a
    /// body part; the message header of a message's root).
    pub(super) header: Range<usize>,
    /// The part's body: for a body part, up to the CRLF before the next boundary.
    pub(super) body: Range<usize>,
    /// The media type as BODYSTRUCTURE shows it.
    pub(super) content_type: ContentType,
    pub(super) kind: Kind,
}

#[derive(Debug)]
pub(super) enum Kind {
    /// A leaf: text, attachment, or anything that could not be opened.
    Single,
    /// A multipart; never empty (an empty one gets one empty text/plain part, as in Dovecot).
    Multipart(Vec<Part>),
    /// A message/rfc822 part and the root part of the message it encapsulates.
    Message(Box<Part>),
}

impl Part {
    /// The tree of `bytes`, a whole message. Never fails: what mail-parser cannot read is
    /// one text/plain body.
    pub(super) fn parse(bytes: &[u8]) -> Part {
        let whole = 0..bytes.len();
        match PARSER.parse(bytes) {
            Some(message) => {
                let root = message_root(&message, bytes, whole, 0);
                drop_iteratively(message);
                root
            }
            None => Part::unparsed(whole),
        }
    }

    /// The parts numbered 1, 2, ... inside this one: a multipart's children, the parts of a
    /// message/rfc822's encapsulated message, none for a leaf.
    pub(super) fn subparts(&self) -> &[Part] {
        match &self.kind {
            Kind::Multipart(children) => children,
            Kind::Message(root) => root.message_parts(),
            Kind::Single => &[],
        }
    }

    /// The numbered parts of the message whose root this is: a non-multipart message has
    /// one, part 1, which is the root itself (its body is BODY[1]).
    pub(super) fn message_parts(&self) -> &[Part] {
        match &self.kind {
            Kind::Multipart(children) => children,
            _ => std::slice::from_ref(self),
        }
    }

    /// A part without header: a body mail-parser found no structure in.
    fn unparsed(body: Range<usize>) -> Part {
        Part {
            header: body.start..body.start,
            body,
            content_type: ContentType::default_text(),
            kind: Kind::Single,
        }
    }
}

/// The root part of `message`, which spans `bounds` of `bytes`.
fn message_root(message: &Message<'_>, bytes: &[u8], bounds: Range<usize>, depth: usize) -> Part {
    let Some(root) = message.parts.first() else {
        return Part::unparsed(bounds);
    };
    let header_end = offset(root.offset_body).clamp(bounds.start, bounds.end);
    let mut visited = vec![false; message.parts.len()];
    visited[0] = true;
    let mut walk = Walk {
        message,
        bytes,
        visited,
    };
    walk.part(
        0,
        bounds.start..header_end,
        header_end..bounds.end,
        false,
        depth,
    )
}

/// One message's parts being turned into a tree.
struct Walk<'m, 'x> {
    message: &'m Message<'x>,
    bytes: &'m [u8],
    /// mail-parser lists children by index; each index is taken once, and only after its
    /// parent, so that no input can make the walk loop or repeat itself.
    visited: Vec<bool>,
}

impl Walk<'_, '_> {
    fn part(
        &mut self,
        index: usize,
        header: Range<usize>,
        body: Range<usize>,
        in_digest: bool,
        depth: usize,
    ) -> Part {
        let message = self.message;
        let source = &message.parts[index];
        let block = &self.bytes[header.clone()];
        let mut content_type = ContentType::of(block, in_digest);
        let opaque = !matches!(
            params::transfer_encoding(block).as_str(),
            "7BIT" | "8BIT" | "BINARY"
        );
        let kind = match &source.body {
            PartType::Multipart(ids) if depth < MAX_DEPTH => {
                let digest = content_type.is("multipart", "digest");
                let mut children = Vec::new();
                for &id in ids {
                    let id = offset(id);
                    if id <= index || self.visited.get(id) != Some(&false) {
                        continue;
                    }
                    self.visited[id] = true;
                    let child = &message.parts[id];
                    let child_header = clamp(
                        offset(child.offset_header),
                        offset(child.offset_body),
                        &body,
                    );
                    let child_body = clamp(child_header.end, offset(child.offset_end), &body);
                    children.push(self.part(id, child_header, child_body, digest, depth + 1));
                }
                if children.is_empty() {
                    children.push(Part::unparsed(body.end..body.end));
                }
                if content_type.kind != "multipart" {
                    content_type = ContentType::new("multipart", "mixed", content_type.params);
                }
                Kind::Multipart(children)
            }
            PartType::Message(nested)
                if depth < MAX_DEPTH && !opaque && content_type.is("message", "rfc822") =>
            {
                Kind::Message(Box::new(message_root(
                    nested,
                    self.bytes,
                    body.clone(),
                    depth + 1,
                )))
            }
            _ if content_type.is("message", "rfc822") => {
                if opaque {
                    // A message/rfc822 may only be 7bit, 8bit or binary (RFC 2046 section
                    // 5.2.1); an encoded one cannot be shown as a message.
                    content_type =
                        ContentType::new("application", "octet-stream", content_type.params);
                    Kind::Single
                } else {
                    Kind::Message(Box::new(Part::unparsed(body.clone())))
                }
            }
            _ => {
                if content_type.kind == "multipart" {
                    // No boundary found: it is shown as the text it is (Dovecot does the same).
                    content_type = ContentType::default_text();
                }
                Kind::Single
            }
        };
        Part {
            header,
            body,
            content_type,
            kind,
        }
    }
}

/// `start..end` moved inside `bounds` and made non-decreasing.
fn clamp(start: usize, end: usize, bounds: &Range<usize>) -> Range<usize> {
    let start = start.clamp(bounds.start, bounds.end);
    start..end.clamp(start, bounds.end)
}

fn offset(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Drops a parsed message without recursing: a message nested thousands of times deep (a
/// few dozen octets per level) would otherwise overflow the stack in `Drop`.
fn drop_iteratively(message: Message<'_>) {
    let mut pending = vec![message];
    while let Some(mut message) = pending.pop() {
        for part in &mut message.parts {
            if let PartType::Message(nested) = &mut part.body {
                pending.push(std::mem::take(nested));
            }
        }
    }
}
