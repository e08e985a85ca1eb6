//! `\Recent` (RFC 3501 section 2.3.2): a message is recent in the first read-write session
//! told about it, and in no later one; read-only sessions (EXAMINE) see the messages no
//! session has claimed yet as recent, without claiming them.
//!
//! The store keeps where `\Recent` starts in each mailbox
//! ([`Mailstore::first_recent_uid`]): UIDs only grow, so every message from that UID on is
//! one no read-write session has been told about. The `Maildir` store keeps it
//! in the folder, so messages delivered while no session had the mailbox open are recent for
//! the next one, also across restarts, and the first session ever to open a mailbox sees
//! what was delivered to it as recent.

use super::session::ImapSession;
use crate::auth::Authenticator;
use crate::store::{Mailstore, StoreResult};

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// This session is being told of every message of `mailbox` up to UID `highest`: the
    /// first UID that is recent for it. A read-write session claims them, so no later one
    /// sees them as recent; a read-only one only looks. (`&mut self` only because the
    /// session is `Send` but not `Sync`.)
    pub(super) async fn recent_from(
        &mut self,
        mailbox: &str,
        highest: u32,
        read_only: bool,
    ) -> StoreResult<u32> {
        let user = self.user();
        let store = &self.service.store;
        if read_only {
            store.first_recent_uid(&user, mailbox).await
        } else {
            store.claim_recent(&user, mailbox, highest).await
        }
    }
}
