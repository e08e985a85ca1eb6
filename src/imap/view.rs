//! The selected mailbox as this session's client knows it: sequence numbers, UIDs, flags and
//! mod-sequences, brought up to date with the store at the points where RFC 3501 lets the
//! server tell the client about changes (section 7: EXISTS, EXPUNGE and FETCH FLAGS
//! responses; with QRESYNC, VANISHED instead of EXPUNGE).
//!
//! The messages are the store's shared [`MessageList`]: every session that is up to date
//! with a mailbox holds the same list as the store's snapshot, and a session keeps a copy of
//! its own only while its client knows something else (an expunge it may not be told of yet,
//! a flag change of its own the store's list does not show yet). The next update that
//! leaves the view equal to the store's list takes the shared list again.

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::Data;

use super::condstore::Resync;
use super::recent_uids::RecentUids;
use super::{flags, response, sequence};
use crate::store::{
    Keywords, MailboxSnapshot, MailboxWatch, MessageFlags, MessageList, MessageMeta,
};

/// Whether removed messages may be reported now.
///
/// RFC 3501 section 7.4.1: no EXPUNGE response while answering FETCH, STORE or SEARCH, since
/// sequence numbers in those commands refer to the numbering the client had. Removed messages
/// then stay in the view until a command that allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expunges {
    Report,
    Defer,
}

/// The mailbox was deleted, renamed, or its UIDs reassigned: the session's numbering is void.
#[derive(Debug)]
pub(super) struct Lost;

/// The selected mailbox.
#[derive(Debug)]
pub(super) struct MailboxView {
    pub(super) name: String,
    pub(super) read_only: bool,
    uid_validity: u32,
    /// Sorted by UID; the sequence number of `messages[i]` is `i + 1`. Shared with the
    /// store's snapshot while the client knows what it says.
    messages: MessageList,
    /// The UIDs that are `\Recent` in this session.
    recent: RecentUids,
    /// Whether `\Recent` exists in this session: not under IMAP4rev2, which dropped it
    /// (RFC 9051 appendix E), so no RECENT response either.
    tracks_recent: bool,
    /// The UIDs of the last SEARCH with SAVE (RFC 5182's `$`), ascending; empty at first.
    /// Expunged messages drop out by themselves: `$` is resolved against the messages.
    pub(super) saved: Vec<u32>,
    /// The mailbox's keywords, as the client was last told (the FLAGS response).
    keywords: Keywords,
    /// The highest mod-sequence the client has been told every change up to (0: the mailbox
    /// has none): a snapshot's value is taken only once every change in it was reported.
    highest_modseq: u64,
    /// UIDNEXT at the last update.
    uid_next: u32,
    watch: MailboxWatch,
}

impl MailboxView {
    /// The view of a mailbox just opened; `watch` is taken before `snapshot` was read, so no
    /// change falls between them. The messages from UID `first_recent` on are recent here;
    /// `None` for a session without `\Recent` (IMAP4rev2).
    pub(super) fn open(
        name: String,
        read_only: bool,
        snapshot: MailboxSnapshot,
        watch: MailboxWatch,
        first_recent: Option<u32>,
    ) -> MailboxView {
        let mut recent = RecentUids::default();
        if let (Some(first), Some(last)) = (first_recent, snapshot.messages.last()) {
            recent.add(first..=last.uid);
        }
        MailboxView {
            name,
            read_only,
            uid_validity: snapshot.uid_validity,
            messages: snapshot.messages,
            recent,
            tracks_recent: first_recent.is_some(),
            saved: Vec::new(),
            keywords: snapshot.keywords,
            highest_modseq: snapshot.highest_modseq,
            uid_next: snapshot.uid_next,
            watch,
        }
    }

    /// Whether the message at `index` is `\Recent` in this session.
    pub(super) fn is_recent(&self, index: usize) -> bool {
        self.messages
            .get(index)
            .is_some_and(|m| self.recent.contains(m.uid))
    }

    /// How many messages are `\Recent` in this session (the RECENT response); `None` when
    /// the session has no `\Recent` (IMAP4rev2).
    pub(super) fn recent_count(&self) -> Option<u32> {
        self.tracks_recent
            .then(|| count(self.recent.count_in(&self.messages)))
    }

    pub(super) fn messages(&self) -> &[MessageMeta] {
        &self.messages
    }

    /// The number of messages (the last EXISTS told).
    pub(super) fn exists(&self) -> u32 {
        count(self.messages.len())
    }

    /// The highest UID, for `*` in UID sets; 0 in an empty mailbox.
    pub(super) fn largest_uid(&self) -> u32 {
        self.messages.last().map_or(0, |m| m.uid)
    }

    pub(super) fn uid_validity(&self) -> u32 {
        self.uid_validity
    }

    /// The highest mod-sequence the client has heard every change up to; 0 if the mailbox
    /// keeps none (`NOMODSEQ`).
    pub(super) fn highest_modseq(&self) -> u64 {
        self.highest_modseq
    }

    /// UIDNEXT as of the last update: every UID the client can know is below it.
    pub(super) fn uid_next(&self) -> u32 {
        self.uid_next
    }

    /// The mailbox's keywords, as the client was last told.
    pub(super) fn keywords(&self) -> &Keywords {
        &self.keywords
    }

    /// Record flags this session set, and the message's new mod-sequence, so the next update
    /// does not report them back. Keywords new to the mailbox join its list, and the client is
    /// told the new list in `out` (RFC 3501 section 7.2.6), before it sees a message with one.
    pub(super) fn set_flags(
        &mut self,
        index: usize,
        stored: MessageFlags,
        modseq: u64,
        out: &mut Vec<u8>,
    ) {
        let mut learned = false;
        for keyword in &stored.keywords {
            learned |= self.keywords.insert(keyword.clone());
        }
        if learned {
            flags::write_lists(out, &self.keywords, self.read_only);
        }
        // A copy of this session's own until the store's list shows the change too.
        if index < self.messages.len() {
            let message = &mut self.messages.make_mut()[index];
            message.flags = stored;
            message.modseq = modseq;
        }
    }

    /// The mailbox was renamed by this session: follow it.
    pub(super) fn renamed(&mut self, name: String, watch: MailboxWatch) {
        self.name = name;
        self.watch = watch;
    }

    /// What IDLE waits on.
    pub(super) fn watch(&mut self) -> &mut MailboxWatch {
        &mut self.watch
    }

    /// The highest UID of `snapshot` if it has messages this view does not (and the same
    /// UIDVALIDITY): what [`update`](Self::update) will tell the client of.
    pub(super) fn arrivals(&self, snapshot: &MailboxSnapshot) -> Option<u32> {
        let highest = snapshot.messages.last()?.uid;
        (snapshot.uid_validity == self.uid_validity && highest > self.largest_uid())
            .then_some(highest)
    }

    /// Bring the view up to `snapshot` (read after [`MailboxWatch::mark_seen`]) and write
    /// the untagged responses that tell the client: FLAGS when the mailbox's keywords changed,
    /// EXPUNGE (highest first, so each number is still valid when the client reads it), FETCH
    /// FLAGS for messages whose flags another session changed, and EXISTS and RECENT when
    /// messages arrived; of these, the ones from UID `first_recent` on are recent here (not
    /// asked without `\Recent`).
    ///
    /// With CONDSTORE enabled (`resync`), each FETCH also has the message's UID and MODSEQ,
    /// and a message whose mod-sequence alone changed is reported too; with QRESYNC, one
    /// VANISHED lists the expunged UIDs instead of the EXPUNGEs (RFC 7162 section 3.2.10).
    pub(super) fn update(
        &mut self,
        snapshot: MailboxSnapshot,
        expunges: Expunges,
        out: &mut Vec<u8>,
        first_recent: u32,
        resync: Resync,
    ) -> Result<(), Lost> {
        if snapshot.uid_validity != self.uid_validity {
            return Err(Lost);
        }
        if snapshot.keywords != self.keywords {
            self.keywords = snapshot.keywords;
            flags::write_lists(out, &self.keywords, self.read_only);
        }
        if MessageList::ptr_eq(&self.messages, &snapshot.messages) {
            // The list the client knows, still the store's: no message changed.
            self.uid_next = snapshot.uid_next;
            self.highest_modseq = snapshot.highest_modseq;
            return Ok(());
        }
        let last_known = self.largest_uid();
        let mut fresh = snapshot.messages.iter().peekable();
        let mut kept = Vec::with_capacity(snapshot.messages.len().max(self.messages.len()));
        let mut removed = Vec::new();
        let mut removed_uids = Vec::new();
        let mut deferred = false;
        let mut changed = Vec::new();
        let condstore = resync >= Resync::Condstore;
        for (index, known) in self.messages.iter().enumerate() {
            while fresh.next_if(|m| m.uid < known.uid).is_some() {}
            match fresh.next_if(|m| m.uid == known.uid) {
                Some(now) => {
                    let modseq_moved = condstore && now.modseq != known.modseq;
                    if now.flags != known.flags || modseq_moved {
                        changed.push(kept.len());
                    }
                    kept.push(MessageMeta {
                        flags: now.flags.clone(),
                        modseq: now.modseq,
                        ..*known
                    });
                }
                None if expunges == Expunges::Report => {
                    removed.push(index + 1);
                    removed_uids.push(known.uid);
                }
                None => {
                    deferred = true;
                    kept.push(known.clone());
                }
            }
        }
        let remaining = kept.len();
        kept.extend(fresh.filter(|m| m.uid > last_known).cloned());
        // Most often what the client now knows is the store's list: share it.
        self.messages = snapshot.messages.or_same(kept);
        if resync == Resync::Qresync {
            // Ascending UIDs as ranges: one response, however many went.
            let ranges = crate::store::ranges_of(removed_uids);
            if let Some(known_uids) = sequence::from_ranges(&ranges) {
                let earlier = false;
                response::data(
                    out,
                    Data::Vanished {
                        earlier,
                        known_uids,
                    },
                );
            }
        } else {
            for seq in removed.iter().rev() {
                response::data(out, Data::Expunge(non_zero(*seq)));
            }
        }
        if !removed.is_empty() {
            self.recent.keep_present(&self.messages);
        }
        for index in changed {
            let recent = self.is_recent(index);
            let message = &self.messages[index];
            let mut items = Vec::with_capacity(3);
            if condstore {
                items.extend(NonZeroU32::new(message.uid).map(MessageDataItem::Uid));
            }
            items.push(MessageDataItem::Flags(flags::to_fetch(
                &message.flags,
                recent,
            )));
            if condstore {
                items.extend(NonZeroU64::new(message.modseq).map(MessageDataItem::ModSeq));
            }
            response::data(
                out,
                Data::Fetch {
                    seq: non_zero(index + 1),
                    items: Vec1::try_from(items).expect("one item"),
                },
            );
        }
        // Each EXPUNGE already lowered the count the client keeps.
        if let Some(arrived) = self.messages.get(remaining..).filter(|a| !a.is_empty()) {
            if self.tracks_recent {
                let (first, last) = (arrived[0].uid, arrived[arrived.len() - 1].uid);
                self.recent.add(first.max(first_recent)..=last);
            }
            response::data(out, Data::Exists(self.exists()));
            if let Some(recent) = self.recent_count() {
                response::data(out, Data::Recent(recent));
            }
        }
        self.uid_next = snapshot.uid_next;
        // With a removal still to report, the client does not know everything up to the
        // snapshot's value: it would skip that removal if it resynchronised from there.
        if !deferred {
            self.highest_modseq = snapshot.highest_modseq;
        }
        Ok(())
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn non_zero(n: usize) -> NonZeroU32 {
    NonZeroU32::new(count(n)).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::store::Flags;

    fn meta(uid: u32, flags: Flags) -> MessageMeta {
        MessageMeta {
            uid,
            size: 10,
            flags: flags.into(),
            internal_date: UNIX_EPOCH,
            modseq: 100 + u64::from(uid),
        }
    }

    fn snapshot(messages: Vec<MessageMeta>) -> MailboxSnapshot {
        let uid_next = messages.last().map_or(1, |m| m.uid + 1);
        let highest_modseq = messages.iter().map(|m| m.modseq).max().unwrap_or(1);
        MailboxSnapshot {
            uid_validity: 7,
            uid_next,
            messages: messages.into(),
            keywords: Keywords::new(),
            highest_modseq,
        }
    }

    fn view(uids: &[u32]) -> MailboxView {
        let messages = uids.iter().map(|&uid| meta(uid, Flags::EMPTY)).collect();
        MailboxView::open(
            "INBOX".into(),
            false,
            snapshot(messages),
            MailboxWatch::never(),
            Some(uids.last().map_or(1, |uid| uid + 1)),
        )
    }

    fn update(view: &mut MailboxView, fresh: Vec<MessageMeta>, expunges: Expunges) -> String {
        update_with(view, fresh, expunges, Resync::Off)
    }

    fn update_with(
        view: &mut MailboxView,
        fresh: Vec<MessageMeta>,
        expunges: Expunges,
        resync: Resync,
    ) -> String {
        let mut out = Vec::new();
        // Another session claimed up to UID 3: later arrivals are recent here.
        view.update(snapshot(fresh), expunges, &mut out, 4, resync)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn expunges_are_reported_highest_first_then_flags_then_exists() {
        let mut view = view(&[1, 2, 3, 4]);
        let fresh = vec![
            meta(1, Flags::EMPTY),
            meta(3, Flags::SEEN),
            meta(5, Flags::EMPTY),
        ];
        let told = update(&mut view, fresh, Expunges::Report);
        assert_eq!(
            told,
            "* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n* 2 FETCH (FLAGS (\\Seen))\r\n* 3 EXISTS\r\n* 1 RECENT\r\n"
        );
        let uids: Vec<u32> = view.messages().iter().map(|m| m.uid).collect();
        assert_eq!(uids, [1, 3, 5]);
    }

    #[test]
    fn deferred_expunges_keep_the_numbering() {
        let mut view = view(&[1, 2, 3]);
        let snapshot = vec![
            meta(1, Flags::EMPTY),
            meta(3, Flags::EMPTY),
            meta(4, Flags::EMPTY),
        ];
        let told = update(&mut view, snapshot.clone(), Expunges::Defer);
        assert_eq!(told, "* 4 EXISTS\r\n* 1 RECENT\r\n");
        assert!(view.is_recent(3) && !view.is_recent(2));
        assert_eq!(view.messages()[2].uid, 3, "numbering kept");
        let told = update(&mut view, snapshot, Expunges::Report);
        assert_eq!(told, "* 2 EXPUNGE\r\n");
    }

    #[test]
    fn without_recent_arrivals_are_only_exists() {
        let messages = vec![meta(1, Flags::EMPTY)];
        let mut view = MailboxView::open(
            "INBOX".into(),
            false,
            snapshot(messages),
            MailboxWatch::never(),
            None,
        );
        let fresh = vec![meta(1, Flags::EMPTY), meta(2, Flags::EMPTY)];
        let mut out = Vec::new();
        // Whatever the store says is recent, a session without `\Recent` shows none.
        view.update(snapshot(fresh), Expunges::Report, &mut out, 1, Resync::Off)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "* 2 EXISTS\r\n");
        assert!(!view.is_recent(1) && view.recent_count().is_none());
    }

    #[test]
    fn nothing_changed_says_nothing_and_a_new_uid_validity_is_lost() {
        let mut view = view(&[1, 2]);
        let same = vec![meta(1, Flags::EMPTY), meta(2, Flags::EMPTY)];
        assert_eq!(update(&mut view, same, Expunges::Report), "");
        let mut other = snapshot(vec![]);
        other.uid_validity = 8;
        assert!(
            view.update(other, Expunges::Report, &mut Vec::new(), 1, Resync::Off)
                .is_err()
        );
    }

    #[test]
    fn new_keywords_are_told_before_the_messages_that_have_them() {
        use crate::store::{Keyword, test_keywords};
        let mut view = view(&[1, 2]);
        let junk = test_keywords(&["$Junk"]);
        let mut flagged = meta(2, Flags::SEEN);
        flagged.flags.keywords = junk.clone();
        let mut fresh = snapshot(vec![meta(1, Flags::EMPTY), flagged.clone()]);
        fresh.keywords = junk.clone();
        let mut out = Vec::new();
        view.update(fresh.clone(), Expunges::Report, &mut out, 3, Resync::Off)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk \\*)] \
             Flags permitted\r\n\
             * 2 FETCH (FLAGS (\\Seen $Junk))\r\n"
        );
        let mut out = Vec::new();
        view.update(fresh, Expunges::Report, &mut out, 3, Resync::Off)
            .unwrap();
        assert!(out.is_empty(), "nothing new");

        // This session's own change: told once, when the keyword is new.
        let mut out = Vec::new();
        view.set_flags(0, flagged.flags.clone(), 200, &mut out);
        assert!(out.is_empty(), "$Junk is known");
        let mut todo = flagged.flags;
        todo.keywords.insert(Keyword::new("Todo").unwrap());
        view.set_flags(0, todo, 201, &mut out);
        assert!(String::from_utf8(out).unwrap().starts_with("* FLAGS ("));
        assert_eq!(view.keywords().len(), 2);
    }

    #[test]
    fn with_condstore_fetches_carry_uid_and_modseq_and_a_new_modseq_alone_is_told() {
        let mut view = view(&[1, 2, 3]);
        let mut flagged = meta(2, Flags::FLAGGED);
        flagged.modseq = 150;
        let mut touched = meta(3, Flags::EMPTY);
        touched.modseq = 151;
        let fresh = vec![meta(1, Flags::EMPTY), flagged, touched];
        let told = update_with(
            &mut view,
            fresh.clone(),
            Expunges::Report,
            Resync::Condstore,
        );
        assert_eq!(
            told,
            "* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (150))\r\n\
             * 3 FETCH (UID 3 FLAGS () MODSEQ (151))\r\n"
        );
        assert_eq!(view.highest_modseq(), 151);
        // Without CONDSTORE a new mod-sequence alone says nothing.
        let mut plain = super::tests::view(&[1, 2, 3]);
        let told = update_with(&mut plain, fresh, Expunges::Report, Resync::Off);
        assert_eq!(told, "* 2 FETCH (FLAGS (\\Flagged))\r\n");
    }

    #[test]
    fn with_qresync_expunges_are_one_vanished_of_uids() {
        let mut view = view(&[1, 2, 3, 4, 5, 7]);
        let fresh = vec![meta(1, Flags::EMPTY), meta(5, Flags::EMPTY)];
        let told = update_with(&mut view, fresh, Expunges::Report, Resync::Qresync);
        assert_eq!(told, "* VANISHED 2:4,7\r\n");
        assert_eq!(view.exists(), 2);
    }

    fn shares(view: &MailboxView, snapshot: &MailboxSnapshot) -> bool {
        std::ptr::eq(view.messages().as_ptr(), snapshot.messages.as_ptr())
    }

    #[test]
    fn sessions_share_the_stores_list_and_keep_a_copy_only_while_they_differ() {
        let open = |snapshot: &MailboxSnapshot| {
            let watch = MailboxWatch::never();
            MailboxView::open("INBOX".into(), false, snapshot.clone(), watch, None)
        };
        let first = snapshot(vec![meta(1, Flags::EMPTY), meta(2, Flags::EMPTY)]);
        let (mut a, mut b) = (open(&first), open(&first));
        assert!(shares(&a, &first) && shares(&b, &first));

        // Another session flags message 1 and a message arrives: both views take the new list.
        let mut seen = meta(1, Flags::SEEN);
        seen.modseq = 120;
        let second = snapshot(vec![
            seen.clone(),
            meta(2, Flags::EMPTY),
            meta(3, Flags::EMPTY),
        ]);
        for view in [&mut a, &mut b] {
            let mut out = Vec::new();
            view.update(second.clone(), Expunges::Report, &mut out, 9, Resync::Off)
                .unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "* 1 FETCH (FLAGS (\\Seen))\r\n* 3 EXISTS\r\n"
            );
            assert!(shares(view, &second));
        }

        // A's own flag change: a copy of A's own, B and the store's list untouched.
        a.set_flags(1, Flags::FLAGGED.into(), 121, &mut Vec::new());
        assert!(!shares(&a, &second) && shares(&b, &second));
        assert_eq!(second.messages[1].flags, Flags::EMPTY.into());

        // The store's next list has A's change, and message 3 is gone. B answers a FETCH:
        // message 3 keeps its number there, so B keeps a copy; A takes the list again.
        let mut flagged = meta(2, Flags::FLAGGED);
        flagged.modseq = 121;
        let third = snapshot(vec![seen, flagged]);
        let mut out = Vec::new();
        a.update(third.clone(), Expunges::Report, &mut out, 9, Resync::Off)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "* 3 EXPUNGE\r\n");
        assert!(shares(&a, &third));
        let mut out = Vec::new();
        b.update(third.clone(), Expunges::Defer, &mut out, 9, Resync::Off)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* 2 FETCH (FLAGS (\\Flagged))\r\n"
        );
        assert!(!shares(&b, &third) && b.exists() == 3);
        let mut out = Vec::new();
        b.update(third.clone(), Expunges::Report, &mut out, 9, Resync::Off)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "* 3 EXPUNGE\r\n");
        assert!(shares(&b, &third));
    }

    #[test]
    fn recent_messages_are_counted_among_those_still_there() {
        let mut view = view(&[1, 2]);
        let arrived = vec![
            meta(1, Flags::EMPTY),
            meta(2, Flags::EMPTY),
            meta(3, Flags::EMPTY),
            meta(4, Flags::EMPTY),
            meta(5, Flags::EMPTY),
        ];
        // This session is the first told of UIDs 4 and 5, not of 3.
        let told = update(&mut view, arrived, Expunges::Report);
        assert_eq!(told, "* 5 EXISTS\r\n* 2 RECENT\r\n");
        assert!(!view.is_recent(2) && view.is_recent(3) && view.is_recent(4));
        let fewer = vec![
            meta(1, Flags::EMPTY),
            meta(3, Flags::EMPTY),
            meta(5, Flags::EMPTY),
        ];
        let told = update(&mut view, fewer, Expunges::Report);
        assert_eq!(told, "* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n");
        assert_eq!(view.recent_count(), Some(1));
        assert!(view.is_recent(2) && !view.is_recent(1));
    }

    #[test]
    fn the_highest_modseq_waits_for_deferred_expunges() {
        let mut view = view(&[1, 2, 3]);
        assert_eq!(view.highest_modseq(), 103);
        let mut fresh = snapshot(vec![meta(1, Flags::EMPTY), meta(3, Flags::EMPTY)]);
        fresh.highest_modseq = 110;
        let mut out = Vec::new();
        view.update(fresh.clone(), Expunges::Defer, &mut out, 4, Resync::Qresync)
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(view.highest_modseq(), 103, "message 2 is gone untold");
        view.update(fresh, Expunges::Report, &mut out, 4, Resync::Qresync)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "* VANISHED 2\r\n");
        assert_eq!(view.highest_modseq(), 110);
    }
}
