//! Rules both stores share, so that [`Maildir`](super::Maildir) and
//! [`MemoryStore`](crate::store::MemoryStore) accept the same names and hand out UIDs the same
//! way: name validation, the mailbox order, special-use mailboxes, UIDVALIDITY and UID
//! assignment.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::{INBOX, StoreError, StoreResult};

/// The special-use mailboxes created for every new user (RFC 6154), by name.
pub(crate) const SPECIAL_USE: [(&str, &str); 4] = [
    ("Drafts", "\\Drafts"),
    ("Junk", "\\Junk"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
];

/// Longest directory name most file systems accept; Maildir++ keeps a whole mailbox path in
/// one directory name, so this bounds mailbox names in both stores alike.
const MAX_DIR_NAME: usize = 255;

/// The special use of a mailbox: decided by name, so a user who deletes `Junk` and creates it
/// again gets the `\Junk` mailbox back.
pub(crate) fn special_use(mailbox: &str) -> Option<&'static str> {
    SPECIAL_USE
        .iter()
        .find(|(name, _)| *name == mailbox)
        .map(|(_, special)| *special)
}

/// Checks a user name: it names a directory under the store root, so it must be one
/// non-hidden path component.
pub(crate) fn check_user(user: &str) -> StoreResult<()> {
    let ok = !user.is_empty()
        && user.len() <= MAX_DIR_NAME
        && !user.starts_with('.')
        && !user.contains('/')
        && !user.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName)
    }
}

/// Checks a mailbox name and returns its canonical form (`INBOX` upper-cased, also as the
/// first component of a child such as `inbox/Lists`).
///
/// Rejected: empty components (so also `/` at either end), `.` and `..` components, control
/// characters, the IMAP LIST wildcards `*` and `%` (such a name could not be listed
/// unambiguously, and `%` is the escape character on disk), and names too long for one
/// Maildir++ directory name. A `.` inside a component is fine: on disk it is written `%2E`.
pub(crate) fn canonical_mailbox(name: &str) -> StoreResult<String> {
    let mut canonical = String::with_capacity(name.len());
    for (i, component) in name.split('/').enumerate() {
        let ok = !component.is_empty()
            && component != "."
            && component != ".."
            && !component
                .chars()
                .any(|c| c.is_control() || c == '*' || c == '%');
        if !ok {
            return Err(StoreError::InvalidName);
        }
        if i > 0 {
            canonical.push('/');
        }
        if i == 0 && component.eq_ignore_ascii_case(INBOX) {
            canonical.push_str(INBOX);
        } else {
            canonical.push_str(component);
        }
    }
    let dots = canonical.matches('.').count();
    if canonical != INBOX && 1 + canonical.len() + 2 * dots > MAX_DIR_NAME {
        return Err(StoreError::InvalidName);
    }
    Ok(canonical)
}

/// The Maildir++ directory name of a mailbox other than INBOX: `.` then the components joined
/// by `.`, with each `.` inside a component written `%2E` (`john.doe/x` → `.john%2Edoe.x`).
#[cfg(feature = "maildir")]
pub(crate) fn folder_dir_name(canonical: &str) -> String {
    let mut dir = String::with_capacity(canonical.len() + 1);
    dir.push('.');
    for c in canonical.chars() {
        match c {
            '/' => dir.push('.'),
            '.' => dir.push_str("%2E"),
            c => dir.push(c),
        }
    }
    dir
}

/// The mailbox a Maildir++ directory holds, if `dir` is exactly what [`folder_dir_name`] writes
/// for a valid name; other hidden entries (`..tower-mail-deleted…`, foreign encodings) are not
/// mailboxes of ours.
#[cfg(feature = "maildir")]
pub(crate) fn mailbox_of_dir(dir: &str) -> Option<String> {
    let encoded = dir.strip_prefix('.')?;
    let decoded = encoded
        .split('.')
        .map(|component| component.replace("%2E", "."))
        .collect::<Vec<_>>()
        .join("/");
    let canonical = canonical_mailbox(&decoded).ok()?;
    (folder_dir_name(&canonical) == dir).then_some(canonical)
}

/// The listing order: component by component, so children follow their parent directly
/// (`A`, `A/x`, `A-b`), whatever characters the names contain.
pub(crate) fn cmp_mailboxes(a: &str, b: &str) -> Ordering {
    match (a == INBOX, b == INBOX) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.split('/').cmp(b.split('/')),
    }
}

/// The last clock-based UIDVALIDITY handed out by this process, so that two mailboxes created
/// in the same second (or a mailbox deleted and created again) still get different values.
static LAST_UID_VALIDITY: AtomicU32 = AtomicU32::new(0);

/// A UIDVALIDITY for a new (or renumbered) mailbox: the current Unix time in seconds, raised
/// above every value this process handed out before, and above `previous`, the value of the
/// mailbox being replaced (0 if none): RFC 3501 wants it greater when UIDs are reassigned.
///
/// `previous` may come from a damaged file, so it does not feed the process-wide counter: a
/// bogus huge value must not push every later mailbox to `u32::MAX`.
pub(crate) fn new_uid_validity(previous: u32) -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |elapsed| {
            u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX)
        })
        .max(1);
    // Past u32::MAX (in 2106, or after a bogus value) start again from the clock.
    let pick = |last: u32| last.checked_add(1).map_or(now, |next| next.max(now));
    let last = LAST_UID_VALIDITY
        .fetch_update(AtomicOrdering::SeqCst, AtomicOrdering::SeqCst, |last| {
            Some(pick(last))
        })
        .unwrap_or_else(|last| last);
    let from_clock = pick(last);
    match previous.checked_add(1) {
        Some(above) if from_clock < above => above,
        _ => from_clock,
    }
}

/// Assigns the next UID to a message the caller then inserts under it.
///
/// UIDs are 32-bit and never reused; when they run out (`uid_next` would pass `u32::MAX`), the
/// mailbox starts over: a new UIDVALIDITY and the messages renumbered from 1, as RFC 3501
/// prescribes.
pub(crate) fn assign_uid<V>(
    uid_validity: &mut u32,
    uid_next: &mut u32,
    messages: &mut BTreeMap<u32, V>,
) -> u32 {
    if *uid_next == u32::MAX {
        *uid_validity = new_uid_validity(*uid_validity);
        *messages = std::mem::take(messages)
            .into_values()
            .zip(1..)
            .map(|(message, uid)| (uid, message))
            .collect();
        *uid_next = u32::try_from(messages.len()).map_or(u32::MAX, |n| n + 1);
    }
    let uid = *uid_next;
    *uid_next += 1;
    uid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names() {
        assert_eq!(canonical_mailbox("inbox").unwrap(), "INBOX");
        assert_eq!(canonical_mailbox("Inbox/Lists").unwrap(), "INBOX/Lists");
        assert_eq!(canonical_mailbox("Archive/2024").unwrap(), "Archive/2024");
        assert_eq!(canonical_mailbox("john.doe").unwrap(), "john.doe");
        assert_eq!(canonical_mailbox("Inboxes").unwrap(), "Inboxes");
        for bad in [
            "", "/", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "a\nb", "a\u{7f}", "a*",
            "a%b",
        ] {
            assert!(
                matches!(canonical_mailbox(bad), Err(StoreError::InvalidName)),
                "{bad:?} accepted"
            );
        }
        assert!(canonical_mailbox(&"a".repeat(254)).is_ok());
        assert!(canonical_mailbox(&"a".repeat(255)).is_err());
        assert!(canonical_mailbox(&".".repeat(100)).is_err());
    }

    #[test]
    fn user_names() {
        assert!(check_user("alice").is_ok());
        assert!(check_user("alice@example.com").is_ok());
        for bad in ["", ".alice", "..", "a/b", "a\0b"] {
            assert!(check_user(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dir_names_round_trip() {
        for name in [
            "Archive",
            "Archive/2024",
            "john.doe/a.b",
            "INBOX/x",
            "ünï cødé",
        ] {
            let dir = folder_dir_name(name);
            assert_eq!(mailbox_of_dir(&dir).as_deref(), Some(name), "{dir}");
        }
        assert_eq!(folder_dir_name("john.doe/x"), ".john%2Edoe.x");
        // Not ours: empty component, foreign escapes, non-canonical INBOX, no leading dot.
        for dir in [
            "..tower-mail-deleted.1",
            ".a..b",
            ".a%2eb",
            ".a%25b",
            ".inbox.x",
            "cur",
        ] {
            assert_eq!(mailbox_of_dir(dir), None, "{dir}");
        }
    }

    #[test]
    fn order_keeps_children_under_parents() {
        let mut names = vec!["A-b", "Trash", "A/x", "INBOX", "A"];
        names.sort_by(|a, b| cmp_mailboxes(a, b));
        assert_eq!(names, ["INBOX", "A", "A/x", "A-b", "Trash"]);
    }

    #[test]
    fn uid_validity_is_fresh() {
        let a = new_uid_validity(0);
        let b = new_uid_validity(0);
        assert!(a > 0 && b > a);
        assert_eq!(new_uid_validity(u32::MAX - 5), u32::MAX - 4);
        // A bogus previous value does not poison later ones.
        assert_ne!(new_uid_validity(u32::MAX), u32::MAX);
        let c = new_uid_validity(0);
        assert!(c > b && c < u32::MAX - 5);
    }

    #[test]
    fn uids_run_out_into_a_new_validity() {
        let mut validity = 7;
        let mut next = u32::MAX - 1;
        let mut messages = BTreeMap::from([(3, "a"), (u32::MAX - 2, "b")]);
        let uid = assign_uid(&mut validity, &mut next, &mut messages);
        assert_eq!((uid, validity), (u32::MAX - 1, 7));
        messages.insert(uid, "c");
        let uid = assign_uid(&mut validity, &mut next, &mut messages);
        assert_ne!(validity, 7);
        assert_eq!(messages, BTreeMap::from([(1, "a"), (2, "b"), (3, "c")]));
        assert_eq!((uid, next), (4, 5));
    }
}
