//! Which mailboxes a LIST or LSUB shows, and with which attributes: the wildcard matching
//! (RFC 3501 section 6.3.8), the selection options of LIST-EXTENDED (RFC 5258 section 3),
//! CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154) attributes.

use std::collections::HashSet;

use imap_codec::imap_types::core::Atom;
use imap_codec::imap_types::flag::FlagNameAttribute;

use crate::store::{INBOX, MailboxInfo};

/// The hierarchy separator of every store.
pub(super) const DELIMITER: char = '/';

/// What to show.
#[derive(Debug, Clone, Copy)]
pub(super) struct Query<'p> {
    /// Full patterns (reference and pattern together): a name is shown if it matches any.
    pub(super) patterns: &'p [Vec<u8>],
    /// Only subscribed mailboxes are selected (LSUB, `SUBSCRIBED`).
    pub(super) subscribed_only: bool,
    /// Only mailboxes with a special use are selected (`SPECIAL-USE`).
    pub(super) special_use_only: bool,
    /// `RECURSIVEMATCH`: a matching name is also shown for a selected descendant that does
    /// not match, with CHILDINFO.
    pub(super) recursive_match: bool,
    /// RFC 3501's placeholders (basic LIST and LSUB): a matching parent that is not
    /// selected itself is shown, not selectable, when no selected descendant matches, so that
    /// `%` still reveals the hierarchy below it.
    pub(super) placeholders: bool,
}

/// One line of a LIST or LSUB answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed<'a> {
    pub(super) name: &'a str,
    /// Where the mailbox is in the list given to [`listing`]; `None` for a name that does
    /// not exist and is shown for what is below it.
    pub(super) index: Option<usize>,
    /// Not selectable as listed: it does not exist, or for LSUB is not subscribed.
    pub(super) noselect: bool,
    pub(super) has_children: bool,
    pub(super) special_use: Option<&'static str>,
    pub(super) subscribed: bool,
    /// A descendant that does not match meets the selection (RFC 5258's CHILDINFO).
    pub(super) child_info: bool,
}

/// How attributes are written.
#[derive(Debug, Clone, Copy)]
pub(super) struct Style {
    /// A name that does not exist is `\NonExistent` (LIST-EXTENDED, IMAP4rev2) rather than
    /// `\Noselect` (RFC 3501).
    pub(super) nonexistent: bool,
    /// `\Subscribed` is shown (`SUBSCRIBED` selected or asked for).
    pub(super) subscribed: bool,
}

impl<'a> Listed<'a> {
    /// The name attributes. RFC 9051's grammar has at most one of `\Noselect` and
    /// `\NonExistent`.
    pub(super) fn attributes(&self, style: Style) -> Vec<FlagNameAttribute<'static>> {
        let mut attributes = Vec::new();
        if self.index.is_none() && style.nonexistent {
            attributes.push(attribute("NonExistent"));
        } else if self.noselect {
            attributes.push(FlagNameAttribute::Noselect);
        }
        if style.subscribed && self.subscribed {
            attributes.push(attribute("Subscribed"));
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

    /// Whether a STATUS can be asked of it (LIST-STATUS: not of placeholders).
    pub(super) fn selectable(&self) -> bool {
        self.index.is_some() && !self.noselect
    }
}

fn attribute(name: &str) -> FlagNameAttribute<'static> {
    let atom = Atom::try_from(name.to_owned()).expect("attribute names are atoms");
    FlagNameAttribute::from(atom)
}

/// A mailbox and what the query made of it.
struct Entry<'a> {
    name: &'a str,
    selected: bool,
    matched: bool,
}

/// The lines of the answer, in the store's order (INBOX first), each name below the names
/// shown for its parents. `\HasChildren` counts every existing mailbox, selected or not.
pub(super) fn listing<'a>(mailboxes: &'a [MailboxInfo], query: &Query<'_>) -> Vec<Listed<'a>> {
    let matches_any = |name: &str| query.patterns.iter().any(|p| matches(p, name));
    let is_selected = |m: &MailboxInfo| {
        (!query.subscribed_only || m.subscribed)
            && (!query.special_use_only || m.special_use.is_some())
    };
    let entries: Vec<Entry<'a>> = mailboxes
        .iter()
        .map(|m| Entry {
            name: &m.name,
            selected: is_selected(m),
            matched: matches_any(&m.name),
        })
        .collect();
    // Sorted by name, so that the descendants of a name are one run.
    let mut sorted: Vec<&Entry<'a>> = entries.iter().collect();
    sorted.sort_unstable_by(|a, b| a.name.cmp(b.name));
    let below = |name: &str| -> &[&Entry<'a>] {
        let prefix = format!("{name}{DELIMITER}");
        let start = sorted.partition_point(|e| e.name < prefix.as_str());
        let len = sorted[start..]
            .iter()
            .take_while(|e| e.name.starts_with(&prefix))
            .count();
        &sorted[start..start + len]
    };
    let consider = |name: &'a str, index: Option<usize>, matched: bool| -> Option<Listed<'a>> {
        if !matched {
            return None;
        }
        let info = index.map(|i| &mailboxes[i]);
        let selected = index.is_some_and(|i| entries[i].selected);
        let descendants = below(name);
        let unmatched_below = descendants.iter().any(|d| d.selected && !d.matched);
        let child_info = query.recursive_match && unmatched_below;
        let shown = selected
            || child_info
            || (query.placeholders
                && descendants.iter().any(|d| d.selected)
                && !descendants.iter().any(|d| d.selected && d.matched));
        shown.then(|| Listed {
            name,
            index,
            noselect: info.is_none() || (!selected && !child_info),
            has_children: !descendants.is_empty(),
            special_use: info.and_then(|m| m.special_use),
            subscribed: info.is_some_and(|m| m.subscribed),
            child_info,
        })
    };
    let existing: HashSet<&str> = entries.iter().map(|e| e.name).collect();
    let mut parents_seen = HashSet::new();
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        for (end, _) in entry.name.match_indices(DELIMITER) {
            let parent = &entry.name[..end];
            if !existing.contains(parent)
                && parents_seen.insert(parent)
                && let Some(listed) = consider(parent, None, matches_any(parent))
            {
                out.push(listed);
            }
        }
        out.extend(consider(entry.name, Some(index), entry.matched));
    }
    out
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

    fn boxes() -> Vec<MailboxInfo> {
        vec![
            info("INBOX", true),
            info("Archive/2024", true),
            info("Sent", false),
            info("Work", false),
            info("Work/Projects", true),
        ]
    }

    fn query(patterns: &[Vec<u8>]) -> Query<'_> {
        Query {
            patterns,
            subscribed_only: false,
            special_use_only: false,
            recursive_match: false,
            placeholders: true,
        }
    }

    fn names<'a>(listed: &[Listed<'a>]) -> Vec<&'a str> {
        listed.iter().map(|l| l.name).collect()
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
        let boxes = boxes();
        let percent = [b"%".to_vec()];
        let top = listing(&boxes, &query(&percent));
        assert_eq!(names(&top), ["INBOX", "Archive", "Sent", "Work"]);
        assert!(top[1].noselect && top[1].has_children && top[1].index.is_none());
        assert_eq!(top[2].special_use, Some("\\Sent"));
        assert!(top[3].has_children && !top[3].noselect);
        let star = [b"*".to_vec()];
        assert_eq!(
            names(&listing(&boxes, &query(&star))),
            ["INBOX", "Archive/2024", "Sent", "Work", "Work/Projects"]
        );
        let lsub = Query {
            subscribed_only: true,
            ..query(&percent)
        };
        let subscribed: Vec<(&str, bool)> = listing(&boxes, &lsub)
            .iter()
            .map(|l| (l.name, l.noselect))
            .collect();
        assert_eq!(
            subscribed,
            [("INBOX", false), ("Archive", true), ("Work", true)]
        );
    }

    #[test]
    fn extended_selection_and_recursive_match() {
        let boxes = boxes();
        let percent = [b"%".to_vec()];
        // RFC 5258: SUBSCRIBED alone shows no unsubscribed parent.
        let subscribed = Query {
            subscribed_only: true,
            placeholders: false,
            ..query(&percent)
        };
        assert_eq!(names(&listing(&boxes, &subscribed)), ["INBOX"]);
        // With RECURSIVEMATCH, the parents of subscribed mailboxes that `%` does not reach,
        // with CHILDINFO; Work exists (selectable), Archive does not.
        let recursive = Query {
            recursive_match: true,
            ..subscribed
        };
        let listed = listing(&boxes, &recursive);
        assert_eq!(names(&listed), ["INBOX", "Archive", "Work"]);
        assert!(!listed[0].child_info);
        assert!(listed[1].child_info && listed[1].noselect && listed[1].index.is_none());
        assert!(listed[2].child_info && !listed[2].noselect && !listed[2].subscribed);
        let style = Style {
            nonexistent: true,
            subscribed: true,
        };
        let shown: Vec<String> = listed[1]
            .attributes(style)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["\\NonExistent", "\\HasChildren"]);
        // Several patterns, and SPECIAL-USE.
        let patterns = [b"Sent".to_vec(), b"Work/*".to_vec(), b"INBOX".to_vec()];
        assert_eq!(
            names(&listing(&boxes, &query(&patterns))),
            ["INBOX", "Sent", "Work/Projects"]
        );
        let star = [b"*".to_vec()];
        let special = Query {
            special_use_only: true,
            placeholders: false,
            ..query(&star)
        };
        assert_eq!(names(&listing(&boxes, &special)), ["Sent"]);
    }
}
