//! FETCH and SEARCH (RFC 3501 sections 6.4.4, 6.4.5 and 6.4.8): the commands that read
//! messages. The items and criteria themselves are in the `fetch` and `search` modules; this
//! is the loop over the messages, with `\Seen` and the reply's back-pressure. SORT (in
//! `sorting`) and THREAD (in `threading`) find their messages with SEARCH's loop,
//! [`ImapSession::matching`], and read them with [`ImapSession::each_found`].

use std::num::{NonZeroU32, NonZeroU64};

use bytes::Bytes;
use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::{Charset, Tag};
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use imap_codec::imap_types::response::{Code, Data, StatusKind};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;

use super::esearch;
use super::fetch::{EncodedItems, FetchPlan};
use super::response;
use super::search::{self, Bounds, Candidate};
use super::selected::{INVALID_SEQUENCE, index_to_seq};
use super::session::{Flow, ImapSession};
use super::syntax::search::SearchReturn;
use crate::auth::Authenticator;
use crate::store::{Flags, FlagsUpdate, Mailstore, MessageFlags, MessageMeta, StoreError};

/// Reply bytes gathered before they are sent: a FETCH over a large mailbox streams to the
/// client instead of building its whole answer in memory, and waits while the client reads.
const SEND_AT: usize = 64 * 1024;

/// Messages read from the store at once: enough to amortise a trip to the blocking pool.
const BATCH_MESSAGES: usize = 256;
/// Bytes read from the store at once (at least one message, however large).
const BATCH_BYTES: u64 = 4 * 1024 * 1024;

/// One message a search matched.
pub(super) struct Match {
    /// Its index in the selected mailbox's view.
    pub(super) index: usize,
    pub(super) seq: u32,
    pub(super) uid: u32,
    pub(super) modseq: u64,
}

impl Match {
    /// What the answer names it by: its UID for the UID forms, else its sequence number.
    pub(super) fn number(&self, uid: bool) -> u32 {
        if uid { self.uid } else { self.seq }
    }
}

/// What SORT and THREAD read of each message they found, beside its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    /// Nothing: the metadata is enough.
    Nothing,
    /// Its ENVELOPE, as the store keeps it for FETCH ([`Content::Encoded`]).
    Envelope,
}

/// What became of reading one message's bytes.
pub(super) enum Content {
    Read(Option<Bytes>),
    /// Its ENVELOPE and BODYSTRUCTURE, as the store kept them or encoded now, for a plan
    /// they serve ([`FetchPlan::served_by_encoded`]).
    Encoded(EncodedItems),
    /// Expunged by another session since the view was made: RFC 2180 section 4.1.2 lets the
    /// server leave it out.
    Gone,
}

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// FETCH and UID FETCH, with RFC 7162's CHANGEDSINCE and VANISHED modifiers.
    pub(super) async fn fetch(
        &mut self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        names: &MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
    ) -> Flow {
        let Ok(mut indices) = self.resolve(set, uid) else {
            return self.bad(tag, INVALID_SEQUENCE);
        };
        let mut plan = FetchPlan::new(names, uid);
        let changed = match self.fetch_modifiers(modifiers, &mut plan, uid) {
            Ok(changed) => changed,
            Err(text) => return self.bad(tag, text),
        };
        if let Some(changed) = changed {
            if changed.vanished
                && let Err(err) = self.vanished_in(set, changed.modseq).await
            {
                return self.store_failed(tag, err);
            }
            if let Some(view) = self.selected.as_ref() {
                indices.retain(|&index| view.messages()[index].modseq > changed.modseq);
            }
        }
        let marks_seen = plan.marks_seen() && self.selected.as_ref().is_some_and(|v| !v.read_only);
        let encoded = plan.served_by_encoded();
        for batch in self.batches(&indices) {
            let contents = match encoded {
                true => self.encoded_contents(batch).await,
                false => self.contents(batch, plan.needs_content()).await,
            };
            let contents = match contents {
                Ok(contents) => contents,
                Err(err) => return self.store_failed(tag, err),
            };
            for (&index, content) in batch.iter().zip(contents) {
                match &content {
                    Content::Gone => continue,
                    Content::Read(read) if plan.check(read.as_deref()).is_err() => {
                        let text = "Cannot decode the part's Content-Transfer-Encoding";
                        return self.no(tag, "UNKNOWN-CTE", text);
                    }
                    _ => {}
                }
                let Some(mut meta) = self.selected.as_ref().map(|v| v.messages()[index].clone())
                else {
                    break;
                };
                let seen_now = marks_seen && !meta.flags.system.contains(Flags::SEEN);
                if seen_now {
                    meta.flags.system.insert(Flags::SEEN);
                    match self.set_flags(index, meta.flags.clone(), None).await {
                        Ok(FlagsUpdate::Stored { flags, modseq }) => {
                            (meta.flags, meta.modseq) = (flags, modseq);
                        }
                        Ok(FlagsUpdate::Modified { .. }) | Err(StoreError::NoSuchMessage) => {
                            continue;
                        }
                        Err(err) => return self.store_failed(tag, err),
                    }
                }
                let recent = self.selected.as_ref().is_some_and(|v| v.is_recent(index));
                let seq =
                    NonZeroU32::new(index_to_seq(index)).expect("sequence numbers start at 1");
                let out = self.channel.out();
                match content {
                    Content::Encoded(encoded) => {
                        plan.write_encoded(out, seq, &meta, &encoded, seen_now, recent);
                    }
                    Content::Read(content) => {
                        let items = plan.render(&meta, content.as_deref(), seen_now, recent);
                        response::data(out, Data::Fetch { seq, items });
                    }
                    Content::Gone => {}
                }
                if let Err(reason) = self.send_if_full().await {
                    return Flow::Close(reason);
                }
            }
        }
        self.ok(tag, None, "FETCH completed")
    }

    /// SEARCH and UID SEARCH, answered `* SEARCH`, or `* ESEARCH` when result options are
    /// given (RFC 4731) or IMAP4rev2 is on (RFC 9051 section 6.4.4, as `RETURN (ALL)`).
    /// SAVE keeps the result for `$` (RFC 5182); a `$` in the criteria is the result kept
    /// before, and a SAVE that fails leaves `$` empty.
    pub(super) async fn search(
        &mut self,
        tag: &Tag<'static>,
        charset: Option<Charset<'_>>,
        criteria: &[SearchKey<'_>],
        uid: bool,
        options: Option<SearchReturn>,
    ) -> Flow {
        let options = options.or(self.rev2.then_some(SearchReturn::ALL));
        let saving = options.is_some_and(|o| o.save);
        let before = match (self.selected.as_mut(), saving) {
            (Some(view), true) => std::mem::take(&mut view.saved),
            (Some(view), false) => view.saved.clone(),
            (None, _) => Vec::new(),
        };
        if let Err(answered) = self.may_search(tag, charset.as_ref(), criteria) {
            return answered;
        }
        let saved = self.extension.saved_result.then_some(&before[..]);
        let found = match self.matching(criteria, saved).await {
            Ok(found) => found,
            Err(err) => return self.store_failed(tag, err),
        };
        let numbers = found.iter().map(|found| found.number(uid));
        // RFC 7162 sections 3.1.6 and 3.1.10: with MODSEQ searched for, the highest
        // mod-sequence of the messages returned.
        let modseqs: Vec<u64> = match search::uses_modseq(criteria) {
            true => found.iter().map(|found| found.modseq).collect(),
            false => Vec::new(),
        };
        match options {
            None => {
                let found = numbers.filter_map(NonZeroU32::new).collect();
                let highest = modseqs.iter().max().copied().and_then(NonZeroU64::new);
                response::data(self.channel.out(), Data::Search(found, highest));
            }
            Some(options) => {
                if saving && let Some(view) = self.selected.as_mut() {
                    let uids: Vec<u32> = found.iter().map(|found| found.uid).collect();
                    view.saved = esearch::to_save(options, &uids);
                }
                if esearch::answers(options) {
                    let numbers: Vec<u32> = numbers.collect();
                    let highest = esearch::highest_modseq(options, &modseqs);
                    esearch::write(self.channel.out(), tag, uid, options, &numbers, highest);
                }
            }
        }
        self.ok(tag, None, "SEARCH completed")
    }

    /// `NO [BADCHARSET (US-ASCII UTF-8)]`: the strings of SEARCH and SORT are matched as
    /// UTF-8 only (see [`search::charset_supported`]).
    pub(super) fn bad_charset(&mut self, tag: &Tag<'static>) -> Flow {
        let allowed = ["US-ASCII", "UTF-8"]
            .map(|name| Charset::try_from(name).expect("valid charset names"))
            .to_vec();
        let code = Some(Code::BadCharset { allowed });
        response::tagged(
            self.channel.out(),
            tag,
            StatusKind::No,
            code,
            "Unsupported charset",
        );
        Flow::Continue
    }

    /// The checks before SEARCH, SORT and THREAD look at a message, each answered when it
    /// fails: the charset (`NO [BADCHARSET]`), MODSEQ among the criteria (as CONDSTORE
    /// allows it), and a selected mailbox (`BAD`). `Err` when the command has been answered.
    fn may_search(
        &mut self,
        tag: &Tag<'static>,
        charset: Option<&Charset<'_>>,
        criteria: &[SearchKey<'_>],
    ) -> Result<(), Flow> {
        if let Some(charset) = charset
            && !search::charset_supported(charset.as_ref())
        {
            return Err(self.bad_charset(tag));
        }
        if search::uses_modseq(criteria)
            && let Err(text) = self.search_modseq()
        {
            return Err(self.bad(tag, text));
        }
        if self.selected.is_none() {
            return Err(self.bad(tag, "No mailbox selected"));
        }
        Ok(())
    }

    /// What SORT and THREAD do first: check the charset (else `NO [BADCHARSET]`) and MODSEQ
    /// (as SEARCH does), then find the messages of the selected mailbox (else `BAD`) that
    /// match `criteria`, `$` standing for the saved result. `Err` when the command has been
    /// answered.
    pub(super) async fn searched_for(
        &mut self,
        tag: &Tag<'static>,
        charset: &Charset<'_>,
        criteria: &[SearchKey<'_>],
    ) -> Result<Vec<Match>, Flow> {
        self.may_search(tag, Some(charset), criteria)?;
        // Cloned, as SEARCH clones it: `matching` borrows the session mutably.
        let saved = match (self.extension.saved_result, self.selected.as_ref()) {
            (true, Some(view)) => Some(view.saved.clone()),
            _ => None,
        };
        self.matching(criteria, saved.as_deref())
            .await
            .map_err(|err| self.store_failed(tag, err))
    }

    /// The messages of the selected mailbox that match `criteria`, in mailbox order; `saved`
    /// is the saved result `$` stands for, when the command used it. Messages expunged by
    /// another session meanwhile are left out (RFC 2180 section 4.1.2).
    pub(super) async fn matching(
        &mut self,
        criteria: &[SearchKey<'_>],
        saved: Option<&[u32]>,
    ) -> Result<Vec<Match>, StoreError> {
        let Some(view) = self.selected.as_ref() else {
            return Ok(Vec::new());
        };
        let bounds = Bounds {
            largest_seq: view.exists(),
            largest_uid: view.largest_uid(),
            saved,
        };
        let all: Vec<usize> = (0..view.messages().len()).collect();
        let needs_content = search::needs_content(criteria);
        let mut found = Vec::new();
        for batch in self.batches(&all) {
            let contents = self.contents(batch, needs_content).await?;
            let Some(view) = self.selected.as_ref() else {
                break;
            };
            for (&index, content) in batch.iter().zip(contents) {
                let Content::Read(content) = content else {
                    continue;
                };
                let meta = &view.messages()[index];
                let candidate = Candidate {
                    seq: index_to_seq(index),
                    meta,
                    recent: view.is_recent(index),
                    content: content.as_deref(),
                };
                if search::matches(criteria, &candidate, bounds) {
                    found.push(Match {
                        index,
                        seq: candidate.seq,
                        uid: meta.uid,
                        modseq: meta.modseq,
                    });
                }
            }
        }
        Ok(found)
    }

    /// Calls `each` with every message of `found` (in its order), its metadata and what
    /// `reading` asks of it, read from the store a batch at a time so that only one batch of
    /// messages is held: the loop of SORT and THREAD. Messages expunged meanwhile are left
    /// out, as SEARCH leaves them out.
    pub(super) async fn each_found(
        &mut self,
        found: &[Match],
        reading: Reading,
        mut each: impl FnMut(&Match, &MessageMeta, Content),
    ) -> Result<(), StoreError> {
        let indices: Vec<usize> = found.iter().map(|found| found.index).collect();
        let mut matches = found.iter();
        for batch in self.batches(&indices) {
            let contents = match reading {
                Reading::Nothing => batch.iter().map(|_| Content::Read(None)).collect(),
                Reading::Envelope => self.encoded_contents(batch).await?,
            };
            let Some(view) = self.selected.as_ref() else {
                break;
            };
            for (content, found) in contents.into_iter().zip(matches.by_ref()) {
                if !matches!(content, Content::Gone) {
                    each(found, &view.messages()[found.index], content);
                }
            }
        }
        Ok(())
    }

    /// `indices` cut into runs to read from the store at once: a few round trips for a
    /// whole mailbox, without holding many large messages in memory.
    pub(super) fn batches<'i>(&self, indices: &'i [usize]) -> Vec<&'i [usize]> {
        let Some(view) = self.selected.as_ref() else {
            return Vec::new();
        };
        let mut batches = Vec::new();
        let (mut start, mut bytes) = (0, 0u64);
        for (i, &index) in indices.iter().enumerate() {
            bytes += view.messages()[index].size;
            if i + 1 - start >= BATCH_MESSAGES || bytes >= BATCH_BYTES {
                batches.push(&indices[start..=i]);
                (start, bytes) = (i + 1, 0);
            }
        }
        if start < indices.len() {
            batches.push(&indices[start..]);
        }
        batches
    }

    /// The bytes of the selected mailbox's messages at `indices`, if `wanted`.
    async fn contents(
        &mut self,
        indices: &[usize],
        wanted: bool,
    ) -> Result<Vec<Content>, StoreError> {
        let Some(view) = self.selected.as_ref().filter(|_| wanted) else {
            return Ok(indices.iter().map(|_| Content::Read(None)).collect());
        };
        let uids: Vec<u32> = indices.iter().map(|&i| view.messages()[i].uid).collect();
        let user = self.session.user().unwrap_or_default();
        let messages = self
            .service
            .store
            .fetch_many(&user, &view.name, &uids)
            .await?;
        messages
            .into_iter()
            .map(|message| match message {
                Ok(content) => Ok(Content::Read(Some(content))),
                Err(StoreError::NoSuchMessage) => Ok(Content::Gone),
                Err(err) => Err(err),
            })
            .collect()
    }

    /// The ENVELOPE and BODYSTRUCTURE of the selected mailbox's messages at `indices`: as
    /// the store kept them where it did, else read, encoded, and given to the store to keep
    /// (failing to keep them fails nothing).
    pub(super) async fn encoded_contents(
        &mut self,
        indices: &[usize],
    ) -> Result<Vec<Content>, StoreError> {
        let Some(view) = self.selected.as_ref() else {
            return Ok(indices.iter().map(|_| Content::Gone).collect());
        };
        let keys: Vec<(u32, u64)> = indices
            .iter()
            .map(|&i| (view.messages()[i].uid, view.messages()[i].size))
            .collect();
        let user = self.session.user().unwrap_or_default();
        let store = &self.service.store;
        let kept = store.cached(&user, &view.name, &keys).await?;
        let mut kept = kept.into_iter();
        let mut contents = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for at in 0..keys.len() {
            contents.push(match kept.next().unwrap_or(Ok(None)) {
                Ok(Some(bytes)) => match EncodedItems::from_kept(bytes) {
                    Some(encoded) => Content::Encoded(encoded),
                    None => {
                        missing.push(at);
                        Content::Gone
                    }
                },
                Ok(None) => {
                    missing.push(at);
                    Content::Gone
                }
                Err(StoreError::NoSuchMessage) => Content::Gone,
                Err(err) => return Err(err),
            });
        }
        if missing.is_empty() {
            return Ok(contents);
        }
        let uids: Vec<u32> = missing.iter().map(|&at| keys[at].0).collect();
        let messages = store.fetch_many(&user, &view.name, &uids).await?;
        let mut new = Vec::with_capacity(missing.len());
        for (&at, message) in missing.iter().zip(messages) {
            contents[at] = match message {
                Ok(bytes) => {
                    let encoded = EncodedItems::of(&bytes);
                    let (uid, size) = keys[at];
                    new.push((uid, size, encoded.kept()));
                    Content::Encoded(encoded)
                }
                Err(StoreError::NoSuchMessage) => Content::Gone,
                Err(err) => return Err(err),
            };
        }
        if let Err(err) = store.remember(&user, &view.name, new).await {
            tracing::debug!(%err, "the store kept no FETCH items");
        }
        Ok(contents)
    }

    /// Store new flags for the message at `index` of the selected mailbox (unless it changed
    /// after `unchanged_since`), and remember them and its new mod-sequence in the view so
    /// the next update does not report them back. Keywords new to the mailbox are told to the
    /// client at once (see [`MailboxView::set_flags`](super::view::MailboxView::set_flags)).
    pub(super) async fn set_flags(
        &mut self,
        index: usize,
        flags: MessageFlags,
        unchanged_since: Option<u64>,
    ) -> Result<FlagsUpdate, StoreError> {
        let Some(view) = self.selected.as_mut() else {
            return Err(StoreError::NoSuchMailbox);
        };
        let uid = view.messages()[index].uid;
        let user = self.session.user().unwrap_or_default();
        let update = self
            .service
            .store
            .update_flags(&user, &view.name, uid, flags, unchanged_since)
            .await?;
        if let FlagsUpdate::Stored { flags, modseq } = &update {
            view.set_flags(index, flags.clone(), *modseq, self.channel.out());
        }
        Ok(update)
    }

    /// Send the reply gathered so far once it is large.
    pub(super) async fn send_if_full(&mut self) -> Result<(), crate::close_reason::CloseReason> {
        if self.channel.out().len() >= SEND_AT {
            self.channel.flush().await?;
        }
        Ok(())
    }
}
