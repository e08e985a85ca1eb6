//! SORT and UID SORT (RFC 5256), with SORT=DISPLAY's keys (RFC 5957): the messages SEARCH
//! finds, ordered by the keys of the `sort` module.

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::core::{Charset, Tag};
use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::search::SearchKey;

use super::reading::Content;
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
        if !search::charset_supported(charset.as_ref()) {
            return self.bad_charset(tag);
        }
        let uses_modseq = search::uses_modseq(search_criteria);
        if uses_modseq && let Err(text) = self.search_modseq() {
            return self.bad(tag, text);
        }
        let Some(view) = self.selected.as_ref() else {
            return self.bad(tag, "No mailbox selected");
        };
        // Cloned, as SEARCH clones it: `matching` borrows the session mutably.
        let saved = match self.extension.saved_result {
            true => Some(view.saved.clone()),
            false => None,
        };
        let saved = saved.as_deref();
        let found = match self.matching(search_criteria, saved).await {
            Ok(found) => found,
            Err(err) => return self.store_failed(tag, err),
        };
        let indices: Vec<usize> = found.iter().map(|found| found.index).collect();
        let needs_envelope = sort::needs_envelope(criteria);
        let mut keyed: Vec<(u32, Box<[Key]>)> = Vec::with_capacity(found.len());
        let mut highest = 0;
        let mut matches = found.iter();
        for batch in self.batches(&indices) {
            let contents = match needs_envelope {
                true => match self.encoded_contents(batch).await {
                    Ok(contents) => contents,
                    Err(err) => return self.store_failed(tag, err),
                },
                false => batch.iter().map(|_| Content::Read(None)).collect(),
            };
            let Some(view) = self.selected.as_ref() else {
                break;
            };
            for (content, found) in contents.into_iter().zip(matches.by_ref()) {
                let meta = &view.messages()[found.index];
                let keys = match content {
                    // Expunged meanwhile: left out, as SEARCH leaves it out.
                    Content::Gone => continue,
                    Content::Encoded(encoded) => encoded
                        .with_envelope(|envelope| sort::keys(criteria, meta, Some(envelope)))
                        .unwrap_or_else(|| sort::keys(criteria, meta, None)),
                    Content::Read(_) => sort::keys(criteria, meta, None),
                };
                highest = highest.max(found.modseq);
                keyed.push((found.number(uid), keys));
            }
        }
        sort::sort(criteria, &mut keyed);
        let numbers = keyed
            .into_iter()
            .filter_map(|(number, _)| NonZeroU32::new(number))
            .collect();
        let highest = NonZeroU64::new(highest).filter(|_| uses_modseq);
        response::data(self.channel.out(), Data::Sort(numbers, highest));
        self.ok(tag, None, "SORT completed")
    }
}
