//! SORT and UID SORT (RFC 5256), with SORT=DISPLAY's keys (RFC 5957): the messages SEARCH
//! finds, ordered by the keys of the `sort` module.

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::core::{Charset, Tag};
use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::search::SearchKey;

use super::reading::{Content, Reading};
use super::response;
use super::search;
use super::session::{Flow, ImapSession};
use super::sort::{self, Key};
use crate::auth::Authenticator;
use crate::store::Mailstore;

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// SORT and UID SORT: `* SORT` with the sequence numbers (or UIDs) of the messages that
    /// match `search_criteria`, in the order of `criteria`; with RFC 7162's MODSEQ among the
    /// search criteria, followed by the highest mod-sequence of those messages (section
    /// 3.1.5). Only the messages' sort keys are held while sorting, and the keys are read
    /// from the ENVELOPE the store keeps for FETCH, encoded and kept now where it had none.
    pub(super) async fn sort(
        &mut self,
        tag: &Tag<'static>,
        criteria: &[SortCriterion],
        charset: &Charset<'_>,
        search_criteria: &[SearchKey<'_>],
        uid: bool,
    ) -> Flow {
        let found = match self.searched_for(tag, charset, search_criteria).await {
            Ok(found) => found,
            Err(answered) => return answered,
        };
        let reading = match sort::needs_envelope(criteria) {
            true => Reading::Envelope,
            false => Reading::Nothing,
        };
        let mut keyed: Vec<(u32, Box<[Key]>)> = Vec::with_capacity(found.len());
        let mut highest = 0;
        let read = self.each_found(&found, reading, |found, meta, content| {
            let keys = match content {
                Content::Encoded(encoded) => encoded
                    .with_envelope(|envelope| sort::keys(criteria, meta, Some(envelope)))
                    .unwrap_or_else(|| sort::keys(criteria, meta, None)),
                Content::Read(_) | Content::Gone => sort::keys(criteria, meta, None),
            };
            highest = highest.max(found.modseq);
            keyed.push((found.number(uid), keys));
        });
        if let Err(err) = read.await {
            return self.store_failed(tag, err);
        }
        sort::sort(criteria, &mut keyed);
        let numbers = keyed
            .into_iter()
            .filter_map(|(number, _)| NonZeroU32::new(number))
            .collect();
        let highest = NonZeroU64::new(highest).filter(|_| search::uses_modseq(search_criteria));
        response::data(self.channel.out(), Data::Sort(numbers, highest));
        self.ok(tag, None, "SORT completed")
    }
}
