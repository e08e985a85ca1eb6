//! What the address keys of SEARCH (FROM, TO, CC, BCC) look in.
//!
//! RFC 3501 section 6.4.4 has them match "the envelope structure's" field, so a field is
//! parsed as ENVELOPE parses it and matched as the text of its addresses: display names,
//! decoded (RFC 2047), and `mailbox@domain`. Comments and folding whitespace are no part of
//! that text, so `<user (comment)@ (comment) domain.org>` is found as `user@domain.org`, as
//! Dovecot finds it.

use crate::imap::address::{self, Item};

use super::content::{decode_words, fold};

/// The folded text of the addresses in one address field's raw value: `name <mailbox@domain>`
/// (or `mailbox@domain` without a name), separated by `, `, a group as `name: ...;`.
pub(super) fn address_text(value: &[u8]) -> String {
    let mut text = String::new();
    let mut after_mailbox = false;
    for item in address::parse(value) {
        match item {
            Item::Mailbox {
                name,
                route,
                mailbox,
                host,
            } => {
                if after_mailbox {
                    text.push_str(", ");
                }
                let mut spec = Vec::new();
                if let Some(route) = route {
                    spec.extend_from_slice(&route);
                    spec.push(b':');
                }
                spec.extend_from_slice(&mailbox);
                if !host.is_empty() {
                    spec.push(b'@');
                    spec.extend_from_slice(&host);
                }
                let spec = String::from_utf8_lossy(&spec);
                match name {
                    Some(name) => {
                        text.push_str(&decode_words(&name));
                        text.push_str(" <");
                        text.push_str(&spec);
                        text.push('>');
                    }
                    None => text.push_str(&spec),
                }
                after_mailbox = true;
            }
            Item::GroupStart(name) => {
                if after_mailbox {
                    text.push_str(", ");
                }
                text.push_str(&decode_words(&name));
                text.push_str(": ");
                after_mailbox = false;
            }
            Item::GroupEnd => {
                text.push(';');
                after_mailbox = true;
            }
        }
    }
    fold(&text)
}
