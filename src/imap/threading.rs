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
    /// that match `search_criteria`, threaded by `algorithm`. ORDEREDSUBJECT reads the
    /// ENVELOPE the store keeps for FETCH, as SORT does; REFERENCES reads each message's
    /// header for its References field. An algorithm we do not know is `BAD` (RFC 5256
    /// section 4: "arguments invalid").
    pub(super) async fn thread(
        &mut self,
        tag: &Tag<'static>,
        algorithm: &ThreadingAlgorithm<'_>,
        charset: &Charset<'_>,
        search_criteria: &[SearchKey<'_>],
        uid: bool,
    ) -> Flow {
        let reading = match algorithm {
            ThreadingAlgorithm::OrderedSubject => Reading::Envelope,
            ThreadingAlgorithm::References => Reading::Whole,
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
        let read = self.each_found(&found, reading, |found, meta, content| {
            let Some(number) = NonZeroU32::new(found.number(uid)) else {
                return;
            };
            match content {
                Content::Encoded(encoded) => {
                    let message = encoded
                        .with_envelope(|envelope| {
                            Message::new(number, meta, &Fields::of_envelope(envelope))
                        })
                        .unwrap_or_else(|| Message::new(number, meta, &Fields::default()));
                    messages.push(message);
                }
                Content::Read(bytes) => {
                    let fields = bytes.as_deref().map(Fields::of_header).unwrap_or_default();
                    references.add(Message::new(number, meta, &fields), fields.ids());
                }
                Content::Gone => {}
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
