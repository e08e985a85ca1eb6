//! `\Recent` (RFC 3501 section 2.3.2): a message is recent in the first read-write session
//! told about it, and in no later one. Read-only sessions see the messages no session has
//! claimed yet as recent, without claiming them.
//!
//! Claims are kept per mailbox as the highest UID shown to a session so far: UIDs only grow,
//! so every message above the claim is one no session has been told about. They live in the
//! service, not on disk: after a restart, the messages already in a mailbox when a session
//! first opens it are not recent, and those that arrive later are.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The claims of every mailbox opened through one IMAP service.
#[derive(Debug, Default)]
pub(super) struct RecentClaims {
    claimed: Mutex<HashMap<(String, String), u32>>,
}

impl RecentClaims {
    /// A session has been told about every message up to UID `highest`: returns the claim
    /// before, so that the messages above it (up to `highest`) are recent for this session,
    /// and raises the claim to `highest` unless the session is `read_only`.
    pub(super) fn claim(&self, user: &str, mailbox: &str, highest: u32, read_only: bool) -> u32 {
        let mut claimed = self.claimed.lock().unwrap_or_else(PoisonError::into_inner);
        let claim = claimed
            .entry((user.to_owned(), mailbox.to_owned()))
            // First sight of the mailbox in this process: what is there is old.
            .or_insert(highest);
        let before = *claim;
        if !read_only {
            *claim = before.max(highest);
        }
        before
    }

    /// How many of `uids` no session has been told about (STATUS RECENT); none for a mailbox
    /// no session has opened.
    pub(super) fn unclaimed(
        &self,
        user: &str,
        mailbox: &str,
        uids: impl Iterator<Item = u32>,
    ) -> u32 {
        let claimed = self.claimed.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(&claim) = claimed.get(&(user.to_owned(), mailbox.to_owned())) else {
            return 0;
        };
        let count = uids.filter(|&uid| uid > claim).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// The mailbox was renamed or deleted: a new mailbox of the same name starts afresh.
    pub(super) fn forget(&self, user: &str, mailbox: &str) {
        let mut claimed = self.claimed.lock().unwrap_or_else(PoisonError::into_inner);
        let below = format!("{mailbox}/");
        claimed.retain(|(u, m), _| u != user || (m != mailbox && !m.starts_with(&below)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_read_write_session_claims() {
        let claims = RecentClaims::default();
        // Opened first with messages 1..=3 in it: none is recent.
        assert_eq!(claims.claim("alice", "INBOX", 3, false), 3);
        // Messages 4 and 5 arrive; a read-only session sees them as recent, without claiming.
        assert_eq!(claims.claim("alice", "INBOX", 5, true), 3);
        assert_eq!(claims.unclaimed("alice", "INBOX", 1..=5), 2);
        // The read-write session claims them; the next session does not see them.
        assert_eq!(claims.claim("alice", "INBOX", 5, false), 3);
        assert_eq!(claims.claim("alice", "INBOX", 5, false), 5);
        assert_eq!(claims.unclaimed("alice", "INBOX", 1..=5), 0);
        assert_eq!(claims.unclaimed("alice", "Sent", 1..=5), 0);
    }

    #[test]
    fn forgetting_covers_children_only() {
        let claims = RecentClaims::default();
        claims.claim("alice", "Lists", 2, false);
        claims.claim("alice", "Lists/rust", 2, false);
        claims.claim("alice", "Listserv", 2, false);
        claims.forget("alice", "Lists");
        assert_eq!(claims.claimed.lock().unwrap().len(), 1);
    }
}
