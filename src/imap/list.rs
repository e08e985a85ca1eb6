//! LIST and LSUB (RFC 3501 sections 6.3.8 and 6.3.9) with CHILDREN (RFC 3348) and
//! SPECIAL-USE (RFC 6154) attributes, and the wildcard matching behind them.

use std::collections::HashSet;

use imap_codec::imap_types::core::{Atom, QuotedChar, Tag};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::Data;

use super::response;
use super::session::{Flow, ImapSession};
use crate::auth::Authenticator;
use crate::store::{INBOX, MailboxInfo, Mailstore};

/// The hierarchy separator of every store.
const DELIMITER: char = '/';

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// LIST (`lsub` false) and LSUB. The reference is simply prefixed to the pattern, which is
    /// what clients mean by it in practice (RFC 3501 leaves its meaning to the server).
    pub(super) async fn list(
        &mut self,
        tag: &Tag<'static>,
        reference: Mailbox<'static>,
        pattern: ListMailbox<'static>,
        lsub: bool,
    ) -> Flow {
        let command = if lsub { "LSUB" } else { "LIST" };
        let mut full = match &reference {
            Mailbox::Inbox => INBOX.as_bytes().to_vec(),
            Mailbox::Other(other) => other.as_ref().to_vec(),
        };
        let pattern = match pattern {
            ListMailbox::Token(token) => token.as_ref().to_vec(),
            ListMailbox::String(string) => string.into_inner().into_owned(),
        };
        if !lsub && pattern.is_empty() {
            // An empty pattern asks for the hierarchy delimiter (RFC 3501 section 6.3.8).
            let root = Mailbox::try_from("").expect("an empty quoted string");
            let data = list_data(false, vec![FlagNameAttribute::Noselect], root);
            response::data(self.channel.out(), data);
            return self.ok(tag, None, "LIST completed");
        }
        full.extend_from_slice(&pattern);
        let mailboxes = match self.service.store.list_mailboxes(&self.user()).await {
            Ok(mailboxes) => mailboxes,
            Err(err) => return self.store_failed(tag, err),
        };
        for entry in listing(&mailboxes, lsub, &full) {
            let Ok(mailbox) = Mailbox::try_from(entry.name) else {
                tracing::warn!(
                    mailbox = entry.name,
                    "mailbox name cannot be sent over IMAP"
                );
                continue;
            };
            let data = list_data(lsub, entry.attributes(), mailbox);
            response::data(self.channel.out(), data);
        }
        self.ok(tag, None, &format!("{command} completed"))
    }
}

fn list_data<'a>(lsub: bool, items: Vec<FlagNameAttribute<'a>>, mailbox: Mailbox<'a>) -> Data<'a> {
    let delimiter = Some(QuotedChar::try_from(DELIMITER).expect("a valid delimiter"));
    match lsub {
        true => Data::Lsub {
            items,
            delimiter,
            mailbox,
        },
        false => Data::List {
            items,
            delimiter,
            mailbox,
        },
    }
}

/// One line of a LIST or LSUB answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed<'a> {
    pub(super) name: &'a str,
    /// A parent that is not listed itself (it does not exist, or for LSUB is not
    /// subscribed), shown so that `%` still reveals the hierarchy below it.
    pub(super) noselect: bool,
    pub(super) has_children: bool,
    pub(super) special_use: Option<&'static str>,
}

impl<'a> Listed<'a> {
    fn attributes(&self) -> Vec<FlagNameAttribute<'a>> {
        let mut attributes = Vec::new();
        if self.noselect {
            attributes.push(FlagNameAttribute::Noselect);
        }
        let children = match self.has_children {
            true => "HasChildren",
            false => "HasNoChildren",
        };
        attributes.push(attribute(children));
        if let Some(special) = self.special_use {
            attributes.push(attribute(special.trim_start_matches('\\')));
        }
        attributes
    }
}

fn attribute(name: &str) -> FlagNameAttribute<'static> {
    let atom = Atom::try_from(name.to_owned()).expect("attribute names are atoms");
    FlagNameAttribute::from(atom)
}

/// The mailboxes matching `pattern`, in the store's order (INBOX first). With
/// `subscribed_only` (LSUB), only subscribed ones; `\HasChildren` always counts every existing
/// mailbox.
pub(super) fn listing<'a>(
    mailboxes: &'a [MailboxInfo],
    subscribed_only: bool,
    pattern: &[u8],
) -> Vec<Listed<'a>> {
    let candidates: Vec<&MailboxInfo> = mailboxes
        .iter()
        .filter(|m| !subscribed_only || m.subscribed)
        .collect();
    let names: HashSet<&str> = candidates.iter().map(|m| m.name.as_str()).collect();
    let matched: Vec<&str> = candidates
        .iter()
        .map(|m| m.name.as_str())
        .filter(|name| matches(pattern, name))
        .collect();
    let mut placeholders_seen = HashSet::new();
    let mut out = Vec::new();
    for info in candidates {
        let name = info.name.as_str();
        for (end, _) in name.match_indices(DELIMITER) {
            let parent = &name[..end];
            let shown_below = matched.iter().any(|m| is_below(m, parent));
            if !names.contains(parent)
                && placeholders_seen.insert(parent)
                && !shown_below
                && matches(pattern, parent)
            {
                out.push(Listed {
                    name: parent,
                    noselect: true,
                    has_children: true,
                    special_use: None,
                });
            }
        }
        if matched.contains(&name) {
            out.push(Listed {
                name,
                noselect: false,
                has_children: mailboxes.iter().any(|m| is_below(&m.name, name)),
                special_use: info.special_use,
            });
        }
    }
    out
}

fn is_below(name: &str, parent: &str) -> bool {
    name.len() > parent.len()
        && name.starts_with(parent)
        && name.as_bytes()[parent.len()] == DELIMITER as u8
}

/// Whether `name` matches a LIST pattern: `*` matches anything, `%` anything but the
/// delimiter. The `INBOX` part of a name is matched case-insensitively, as INBOX is.
///
/// Dynamic programming over the pattern, so many wildcards cannot make it exponential: at
/// most pattern length × name length steps.
pub(super) fn matches(pattern: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    let inbox_prefix = if name.len() >= INBOX.len()
        && name[..INBOX.len()].eq_ignore_ascii_case(INBOX.as_bytes())
        && (name.len() == INBOX.len() || name[INBOX.len()] == DELIMITER as u8)
    {
        INBOX.len()
    } else {
        0
    };
    // row[j]: the pattern so far matches name[..j].
    let mut row = vec![false; name.len() + 1];
    let mut next = vec![false; name.len() + 1];
    row[0] = true;
    for &p in pattern {
        next[0] = match p {
            b'*' | b'%' => row[0],
            _ => false,
        };
        for j in 1..=name.len() {
            let c = name[j - 1];
            next[j] = match p {
                b'*' => row[j] || next[j - 1],
                b'%' => row[j] || (next[j - 1] && c != DELIMITER as u8),
                _ if j <= inbox_prefix => row[j - 1] && p.eq_ignore_ascii_case(&c),
                _ => row[j - 1] && p == c,
            };
        }
        std::mem::swap(&mut row, &mut next);
    }
    row[name.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, subscribed: bool) -> MailboxInfo {
        MailboxInfo {
            name: name.to_owned(),
            special_use: (name == "Sent").then_some("\\Sent"),
            subscribed,
        }
    }

    #[test]
    fn wildcards() {
        assert!(matches(b"*", "Archive/2024"));
        assert!(!matches(b"%", "Archive/2024"));
        assert!(matches(b"%/%", "Archive/2024"));
        assert!(matches(b"Arch*", "Archive/2024"));
        assert!(
            !matches(b"arch*", "Archive/2024"),
            "only INBOX ignores case"
        );
        assert!(matches(b"inbox", "INBOX"));
        assert!(matches(b"Inbox/%", "INBOX/Sub"));
        assert!(!matches(b"inboxx", "INBOX"));
        assert!(matches(b"", ""));
        assert!(!matches(b"", "INBOX"));
        assert!(matches(b"%*%*%", "a/b/c"));
        // Pathological patterns stay cheap.
        let pattern = "*a".repeat(500);
        assert!(!matches(pattern.as_bytes(), &"a".repeat(300)));
    }

    #[test]
    fn children_placeholders_and_special_use() {
        let boxes = vec![
            info("INBOX", true),
            info("Archive/2024", true),
            info("Sent", false),
            info("Work", false),
            info("Work/Projects", true),
        ];
        let top = listing(&boxes, false, b"%");
        let names: Vec<&str> = top.iter().map(|l| l.name).collect();
        assert_eq!(names, ["INBOX", "Archive", "Sent", "Work"]);
        assert!(top[1].noselect && top[1].has_children);
        assert_eq!(top[2].special_use, Some("\\Sent"));
        assert!(top[3].has_children && !top[3].noselect);
        let all: Vec<&str> = listing(&boxes, false, b"*")
            .iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(
            all,
            ["INBOX", "Archive/2024", "Sent", "Work", "Work/Projects"]
        );
        let subscribed = listing(&boxes, true, b"%");
        let names: Vec<(&str, bool)> = subscribed.iter().map(|l| (l.name, l.noselect)).collect();
        assert_eq!(names, [("INBOX", false), ("Archive", true), ("Work", true)]);
    }
}
