//! THREAD and UID THREAD (RFC 5256): the messages SEARCH finds, in the threads of the
//! `thread` module's algorithms, ORDEREDSUBJECT and REFERENCES.

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Charset, Tag};
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::search::SearchKey;

use super::reading::{Content, Reading};
use super::response;
use super::session::{Flow, ImapSession};
use super::thread::{self, Fields, Message, References};
use crate::auth::Authenticator;
use crate::store::Mailstore;

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// THREAD and UID THREAD: `* THREAD` with the sequence numbers (or UIDs) of the messages
    /// that match `search_criteria`, threaded by `algorithm`. Both algorithms read the
    /// ENVELOPE the store keeps for FETCH, as SORT does, REFERENCES with the References ids
    /// kept beside it. An algorithm we do not know is `BAD` (RFC 5256 section 4: "arguments
    /// invalid").
    pub(super) async fn thread(
        &mut self,
        tag: &Tag<'static>,
        algorithm: &ThreadingAlgorithm<'_>,
        charset: &Charset<'_>,
        search_criteria: &[SearchKey<'_>],
        uid: bool,
    ) -> Flow {
        let by_references = match algorithm {
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::Other(_) => {
                return self.bad(tag, "Unsupported threading algorithm");
            }
        };
        let found = match self.searched_for(tag, charset, search_criteria).await {
            Ok(found) => found,
            Err(answered) => return answered,
        };
        let mut messages = Vec::new();
        let mut references = References::default();
        let read = self.each_found(&found, Reading::Envelope, |found, meta, content| {
            let Some(number) = NonZeroU32::new(found.number(uid)) else {
                return;
            };
            let Content::Encoded(encoded) = content else {
                return;
            };
            let read = |fields: &Fields<'_>| {
                let ids = by_references.then(|| fields.ids());
                (Message::new(number, meta, fields), ids)
            };
            let refs = encoded.references();
            let (message, ids) = encoded
                .with_envelope(|envelope| read(&Fields::of_envelope(envelope, refs)))
                .unwrap_or_else(|| read(&Fields::default()));
            match ids {
                Some(ids) => references.add(message, ids),
                None => messages.push(message),
            }
        });
        if let Err(err) = read.await {
            return self.store_failed(tag, err);
        }
        let threads = match algorithm {
            ThreadingAlgorithm::OrderedSubject => thread::ordered_subject(&messages),
            _ => references.threads(),
        };
        response::data(self.channel.out(), Data::Thread(threads));
        self.ok(tag, None, "THREAD completed")
    }
}
