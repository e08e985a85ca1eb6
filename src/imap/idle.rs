//! IDLE (RFC 2177): the client waits and the server tells it about changes as they happen.

use imap_codec::imap_types::core::Tag;

use super::response;
use super::session::{Flow, ImapSession};
use super::view::Expunges;
use crate::auth::Authenticator;
use crate::store::Mailstore;
use crate::wire::Interrupted;

/// What ended one wait in IDLE.
enum Wake {
    Line(Result<Option<bytes::Bytes>, Interrupted>),
    Changed,
}

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// Wait for `DONE`, reporting changes to the selected mailbox when the store announces
    /// them, and every poll interval for changes it cannot announce. Without a selected
    /// mailbox IDLE only waits, as RFC 2177 allows. The idle timeout still applies: clients
    /// renew IDLE before it (RFC 2177 section 3 suggests every 29 minutes).
    pub(super) async fn idle(&mut self, tag: &Tag<'static>) -> Flow {
        response::continuation(self.channel.out(), "idling");
        if let Err(reason) = self.channel.flush().await {
            return Flow::Close(reason);
        }
        let poll = self.service.config.idle_poll_interval;
        loop {
            let wake = {
                let channel = &mut self.channel;
                let view = self.selected.as_mut();
                let watching = view.is_some();
                let changed = async move {
                    match view {
                        Some(view) => view.watch().changed().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    line = channel.next_line() => Wake::Line(line),
                    () = changed => Wake::Changed,
                    () = tokio::time::sleep(poll), if watching => Wake::Changed,
                }
            };
            match wake {
                Wake::Changed => {
                    if let Err(reason) = self.sync(Expunges::Report).await {
                        return Flow::Close(reason);
                    }
                    if let Err(reason) = self.channel.flush().await {
                        return Flow::Close(reason);
                    }
                }
                Wake::Line(Ok(Some(line))) if line.eq_ignore_ascii_case(b"DONE") => {
                    return self.ok(tag, None, "IDLE terminated");
                }
                Wake::Line(Ok(_)) => return self.bad(tag, "Expected DONE"),
                Wake::Line(Err(interrupted)) => {
                    return Flow::Close(self.interrupted(interrupted).await);
                }
            }
        }
    }
}
