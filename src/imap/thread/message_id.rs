//! The message-ids THREAD=REFERENCES links by (RFC 5256 section 2.2, step 1): a message's
//! own, and its parents' from References or In-Reply-To, each bounded.

use std::borrow::Cow;
use std::collections::VecDeque;

/// The most references kept of one message: the last ones, nearest to it (the last is its
/// parent). A References field of thousands of ids costs no more than this.
pub(super) const MAX_REFERENCES: usize = 64;

/// The longest message-id kept, in octets between the angle brackets: longer ones are taken
/// as invalid, so that the table of ids is proportional to the messages.
pub(super) const MAX_ID: usize = 250;

/// One message's ids, as step 1 uses them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(in crate::imap) struct Ids {
    /// The first valid id of its Message-ID field.
    pub(in crate::imap) message_id: Option<Box<[u8]>>,
    /// Its References (at most the last [`MAX_REFERENCES`] valid ones), oldest first; or,
    /// when it has none valid, the first valid id of its In-Reply-To field.
    pub(in crate::imap) references: Vec<Box<[u8]>>,
}

impl Ids {
    /// The ids of a message whose Message-ID, In-Reply-To and References fields have these
    /// raw values (empty when absent; folding may be left in).
    pub(super) fn of(message_id: &[u8], in_reply_to: &[u8], references: &[u8]) -> Ids {
        let owned = |id: Cow<'_, [u8]>| Box::from(id.as_ref());
        let mut kept: Vec<Box<[u8]>> = last_references(references).map(owned).collect();
        if kept.is_empty() {
            kept.extend(ids(in_reply_to).next().map(owned));
        }
        Ids {
            message_id: ids(message_id).next().map(owned),
            references: kept,
        }
    }
}

/// The last [`MAX_REFERENCES`] valid ids of a References field's raw `value`, oldest first.
fn last_references(value: &[u8]) -> impl Iterator<Item = Cow<'_, [u8]>> {
    let mut last = VecDeque::with_capacity(MAX_REFERENCES);
    for id in ids(value) {
        if last.len() == MAX_REFERENCES {
            last.pop_front();
        }
        last.push_back(id);
    }
    last.into_iter()
}

/// The last [`MAX_REFERENCES`] valid ids of a References field's raw `value`, written
/// `<id>` after `<id>`: what the store keeps of the field beside ENVELOPE, read back by
/// [`Ids::of`] as the field itself would be.
pub(super) fn kept(value: &[u8]) -> Vec<u8> {
    let mut kept = Vec::new();
    for id in last_references(value) {
        kept.push(b'<');
        kept.extend_from_slice(&id);
        kept.push(b'>');
    }
    kept
}

/// The valid ids of a field's value, in order, without their angle brackets and normalised
/// ([`normalised`]): each `<id-left@id-right>` (RFC 5322 section 3.6.4) of at most
/// [`MAX_ID`] octets, with no blank or control character inside. Text around them
/// (comments, phrases) is skipped.
pub(super) fn ids(value: &[u8]) -> impl Iterator<Item = Cow<'_, [u8]>> {
    raw_ids(value).map(normalised)
}

/// An id without the quoting RFC 5256 section 2.2 says to look through ("MUST normalize
/// any msg-id in order to avoid false non-matches due to differences in quoting"):
/// `<"abc"@x>` is `<abc@x>`; a backslash's character stands for itself.
fn normalised(id: &[u8]) -> Cow<'_, [u8]> {
    if !id.iter().any(|&b| b == b'"' || b == b'\\') {
        return Cow::Borrowed(id);
    }
    let mut plain = Vec::with_capacity(id.len());
    let mut escaped = false;
    for &b in id {
        match (escaped, b) {
            (false, b'\\') => escaped = true,
            (false, b'"') => {}
            _ => {
                plain.push(b);
                escaped = false;
            }
        }
    }
    Cow::Owned(plain)
}

fn raw_ids(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = value;
    std::iter::from_fn(move || {
        loop {
            let open = rest.iter().position(|&b| b == b'<')?;
            let after = &rest[open + 1..];
            let Some(close) = after.iter().position(|&b| b == b'<' || b == b'>') else {
                rest = &[];
                return None;
            };
            let (id, ended) = (&after[..close], after[close] == b'>');
            // A `<` before the `>` starts the next candidate.
            rest = if ended {
                &after[close + 1..]
            } else {
                &after[close..]
            };
            if ended && valid(id) {
                return Some(id);
            }
        }
    })
}

fn valid(id: &[u8]) -> bool {
    let Some(at) = id.iter().rposition(|&b| b == b'@') else {
        return false;
    };
    id.len() <= MAX_ID && at > 0 && at + 1 < id.len() && id.iter().all(|&b| b > b' ' && b != 0x7f)
}
