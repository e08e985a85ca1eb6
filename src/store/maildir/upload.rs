//! [`MaildirUpload`]: a message streamed into a folder's `tmp/` as it arrives.

use std::fmt;
use std::mem;
use std::time::SystemTime;

use super::folder::TmpMessage;
use super::{Maildir, blocking};
use crate::store::{MessageFlags, MessageUpload, StoreResult, UploadLength, broken_upload};

/// How much of an upload is held in memory before it is written to its file: the bound on an
/// upload's memory, and 800 trips to the blocking pool for a 50 MiB message.
pub(super) const BUFFER_SIZE: usize = 64 * 1024;

/// A message being delivered to a [`Maildir`] piece by piece, from
/// [`Mailstore::begin_append`](crate::store::Mailstore::begin_append).
///
/// The octets go to a file in the folder's `tmp/` as they come, through a buffer of 64 KiB
/// (so that small chunks do not each cost a trip to the blocking pool), without the folder's
/// lock: other sessions keep using the folder meanwhile. [`commit`](MessageUpload::commit)
/// syncs the file, then, under the lock, delivers it exactly as [`append`] does: moved into
/// `cur/` named with its sizes and flags, the directory synced, a UID recorded, watchers
/// woken. Dropping the upload uncommitted removes its file.
///
/// [`append`]: crate::store::Mailstore::append
pub struct MaildirUpload {
    store: Maildir,
    user: String,
    /// The canonical name.
    mailbox: String,
    length: UploadLength,
    /// The file; `None` once the upload is broken (a write failed, or its future was
    /// dropped while the file was away on the blocking pool).
    message: Option<TmpMessage>,
    /// Octets not yet written to the file: fewer than [`BUFFER_SIZE`] between calls.
    pending: Vec<u8>,
}

impl MaildirUpload {
    pub(super) fn new(
        store: Maildir,
        user: &str,
        mailbox: String,
        size: u64,
        message: TmpMessage,
    ) -> MaildirUpload {
        let capacity = usize::try_from(size).map_or(BUFFER_SIZE, |size| size.min(BUFFER_SIZE));
        MaildirUpload {
            store,
            user: user.to_owned(),
            mailbox,
            length: UploadLength::new(size),
            message: Some(message),
            pending: Vec::with_capacity(capacity),
        }
    }

    /// Writes the buffer to the file on the blocking pool.
    async fn flush(&mut self) -> StoreResult<()> {
        // Taken while away: if this future is dropped, the upload stays broken, and the
        // blocking task drops (removes) the file when it is done.
        let mut message = self.message.take().ok_or_else(broken_upload)?;
        let mut pending = mem::take(&mut self.pending);
        let (message, pending) = blocking(move || {
            message.write(&pending)?;
            pending.clear();
            Ok((message, pending))
        })
        .await?;
        self.message = Some(message);
        self.pending = pending;
        Ok(())
    }
}

impl MessageUpload for MaildirUpload {
    async fn write(&mut self, mut chunk: &[u8]) -> StoreResult<()> {
        if self.message.is_none() {
            return Err(broken_upload());
        }
        if let Err(err) = self.length.add(chunk.len()) {
            self.message = None;
            return Err(err);
        }
        while !chunk.is_empty() {
            let room = BUFFER_SIZE - self.pending.len();
            let (now, rest) = chunk.split_at(room.min(chunk.len()));
            self.pending.extend_from_slice(now);
            chunk = rest;
            if self.pending.len() == BUFFER_SIZE {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn commit(
        mut self,
        flags: MessageFlags,
        internal_date: Option<SystemTime>,
    ) -> StoreResult<u32> {
        let mut message = self.message.take().ok_or_else(broken_upload)?;
        self.length.check_complete()?;
        let pending = mem::take(&mut self.pending);
        let written = blocking(move || {
            message.write(&pending)?;
            Ok(message.finish(internal_date)?)
        })
        .await?;
        self.store
            .deliver(&self.user, &self.mailbox, written, flags)
            .await
    }
}

impl fmt::Debug for MaildirUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaildirUpload")
            .field("user", &self.user)
            .field("mailbox", &self.mailbox)
            .field("length", &self.length)
            .field("broken", &self.message.is_none())
            .finish_non_exhaustive()
    }
}
