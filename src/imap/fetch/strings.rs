//! IMAP strings from message octets.
//!
//! Header values may carry 8-bit octets, quotes or line breaks; imap-types picks a quoted
//! string when that is valid and a literal otherwise. Only NUL fits neither, so it is replaced
//! rather than letting one odd message fail a whole FETCH.

use imap_codec::imap_types::core::{IString, Literal, NString, Quoted};

/// A string, quoted when possible.
pub(super) fn istring(bytes: impl Into<Vec<u8>>) -> IString<'static> {
    let bytes = without_nul(bytes.into());
    IString::try_from(bytes).unwrap_or_else(|_| IString::Quoted(Quoted::unvalidated("")))
}

/// A string, quoted when possible; NIL for `None`.
pub(super) fn nstring(bytes: Option<Vec<u8>>) -> NString<'static> {
    NString(bytes.map(istring))
}

/// Message content as a literal: what every server sends for body sections, whatever the
/// size, so that clients never see body text as a quoted string.
pub(super) fn literal(bytes: impl Into<Vec<u8>>) -> NString<'static> {
    match Literal::try_from(without_nul(bytes.into())) {
        Ok(literal) => NString::from(literal),
        Err(_) => NString::NIL,
    }
}

fn without_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    for b in &mut bytes {
        if *b == 0 {
            *b = 0x80;
        }
    }
    bytes
}
