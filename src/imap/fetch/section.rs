//! `BODY[section]<partial>` (RFC 3501 section 6.4.5): which octets a section names.

use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::{AString, Vec1};
use imap_codec::imap_types::fetch::{Part as Path, Section};

use super::header;
use super::tree::{Kind, Part};

/// The octets `section` names in the message `bytes` whose tree is `root`; `None` for a
/// part that does not exist (answered NIL, as Dovecot and Cyrus do).
pub(super) fn extract<'a>(
    root: &Part,
    bytes: &'a [u8],
    section: &Section<'_>,
) -> Option<Cow<'a, [u8]>> {
    let slice = |range: &std::ops::Range<usize>| {
        Cow::Borrowed(bytes.get(range.clone()).unwrap_or_default())
    };
    match section {
        Section::Part(path) => resolve(root, path.0.as_ref()).map(|part| slice(&part.body)),
        Section::Mime(path) => resolve(root, path.0.as_ref()).map(|part| slice(&part.header)),
        Section::Header(path) => message(root, path.as_ref()).map(|m| slice(&m.header)),
        Section::Text(path) => message(root, path.as_ref()).map(|m| slice(&m.body)),
        Section::HeaderFields(path, names) => message(root, path.as_ref()).map(|m| {
            Cow::Owned(subset(
                bytes.get(m.header.clone()).unwrap_or_default(),
                names,
                true,
            ))
        }),
        Section::HeaderFieldsNot(path, names) => message(root, path.as_ref()).map(|m| {
            Cow::Owned(subset(
                bytes.get(m.header.clone()).unwrap_or_default(),
                names,
                false,
            ))
        }),
    }
}

/// `<start.length>`: "If the starting octet is beyond the end of the text, an empty string
/// is returned"; a length beyond the end is cut.
pub(super) fn partial(data: &[u8], start: u32, length: NonZeroU32) -> &[u8] {
    let start = usize::try_from(start).unwrap_or(usize::MAX).min(data.len());
    let length = usize::try_from(length.get()).unwrap_or(usize::MAX);
    &data[start..start.saturating_add(length).min(data.len())]
}

/// The part a numeric path (`1.2`) names; `None` for the empty path.
pub(super) fn resolve<'p>(root: &'p Part, path: &[NonZeroU32]) -> Option<&'p Part> {
    let mut parts = root.message_parts();
    let mut found = None;
    for number in path {
        let index = usize::try_from(number.get() - 1).ok()?;
        let part = parts.get(index)?;
        parts = part.subparts();
        found = Some(part);
    }
    found
}

/// The message HEADER and TEXT are about: the whole message, or the one a message/rfc822 part
/// encapsulates. Another part stands for itself (its MIME header and body), leniently, as in
/// Dovecot, so that `1.HEADER` of a single-part message is the message header.
fn message<'p>(root: &'p Part, path: Option<&Path>) -> Option<&'p Part> {
    let Some(path) = path else {
        return Some(root);
    };
    let part = resolve(root, path.0.as_ref())?;
    Some(match &part.kind {
        Kind::Message(inner) => inner,
        _ => part,
    })
}

/// HEADER.FIELDS (`keep`) or HEADER.FIELDS.NOT: the fields as stored, in message order,
/// then the blank line if the header had one.
fn subset(block: &[u8], names: &Vec1<AString<'_>>, keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in header::fields(block) {
        let listed = names
            .as_ref()
            .iter()
            .any(|name| name.as_ref().eq_ignore_ascii_case(field.name));
        if listed == keep {
            out.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    if header::has_separator(block) {
        out.extend_from_slice(b"\r\n");
    }
    out
}
