//! CONDSTORE and QRESYNC (RFC 7162): what they add to ENABLE, SELECT and EXAMINE, FETCH,
//! STORE, SEARCH, STATUS, EXPUNGE and CLOSE, and the `VANISHED (EARLIER)` responses that let a
//! client resynchronise a large mailbox from the highest mod-sequence it remembers.
//!
//! Mod-sequences come from the store ([`MessageMeta::modseq`](crate::store::MessageMeta),
//! [`Mailstore::expunged_since`]); a mailbox whose store keeps none answers `NOMODSEQ`, and
//! the commands that need mod-sequences answer `BAD` there (section 3.1.2.2).
//!
//! Until the client sends a CONDSTORE enabling command (section 3.1: ENABLE, SELECT or
//! EXAMINE with CONDSTORE, FETCH with MODSEQ or CHANGEDSINCE, SEARCH MODSEQ, STORE
//! UNCHANGEDSINCE, STATUS HIGHESTMODSEQ), nothing changes for it but the `HIGHESTMODSEQ`
//! response code of SELECT and EXAMINE. Once CONDSTORE is on, the FETCH responses that carry
//! FLAGS carry MODSEQ too, and the unsolicited ones the UID as well. Once QRESYNC is on
//! (ENABLE QRESYNC, which implies CONDSTORE), expunges are reported with `VANISHED` instead
//! of `EXPUNGE`, and EXPUNGE and CLOSE report the new HIGHESTMODSEQ.

use std::num::NonZeroU64;
use std::ops::RangeInclusive;

use imap_codec::imap_types::command::{FetchModifier, SelectParameter, StoreModifier};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::response::{Code, Data, StatusKind};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::fetch::FetchPlan;
use super::response;
use super::selected::index_to_seq;
use super::sequence;
use super::session::ImapSession;
use super::view::MailboxView;
use crate::auth::Authenticator;
use crate::store::{Mailstore, StoreError, ranges_of};

/// How far the client has switched resynchronisation on; never back off within a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Resync {
    /// Plain IMAP4rev1.
    #[default]
    Off,
    /// CONDSTORE: mod-sequences in FETCH responses.
    Condstore,
    /// QRESYNC: CONDSTORE, and VANISHED instead of EXPUNGE.
    Qresync,
}

/// UID ranges per `VANISHED` response: a long history is sent in several lines rather than
/// one of unbounded length.
const VANISHED_RANGES_PER_LINE: usize = 1000;

/// Why a command that needs mod-sequences is refused in a mailbox without them.
const NO_MODSEQ: &str = "No mod-sequences in this mailbox";

/// SELECT's or EXAMINE's QRESYNC parameter (RFC 7162 section 3.2.5), checked.
#[derive(Debug)]
pub(super) struct QresyncSelect {
    uid_validity: u32,
    modseq: u64,
    known_uids: Option<SequenceSet>,
    /// Message numbers and the UIDs the client had for them.
    seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// FETCH's CHANGEDSINCE (section 3.1.4.1) and VANISHED (section 3.2.6).
#[derive(Debug, Clone, Copy)]
pub(super) struct ChangedSince {
    pub(super) modseq: u64,
    pub(super) vanished: bool,
}

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// ENABLE of `capability` (one of those the client listed, `before` being what was on
    /// before the command): CONDSTORE or QRESYNC, if advertised, is switched on, and returned
    /// for `* ENABLED` if this command switched it on.
    pub(super) fn enable_resync(
        &mut self,
        capability: &CapabilityEnable<'_>,
        before: Resync,
    ) -> Option<CapabilityEnable<'static>> {
        let (wanted, name) = match capability {
            CapabilityEnable::CondStore => (Resync::Condstore, "CONDSTORE"),
            other if other.to_string().eq_ignore_ascii_case("QRESYNC") => {
                (Resync::Qresync, "QRESYNC")
            }
            _ => return None,
        };
        if self.settings.is_hidden(name) || self.settings.is_hidden("CONDSTORE") {
            return None;
        }
        self.resync = self.resync.max(wanted);
        (wanted > before).then(|| CapabilityEnable::try_from(name).expect("an atom"))
    }

    /// A CONDSTORE enabling command other than ENABLE and SELECT: refused (`Err`, answered
    /// `BAD`) if a layer withholds CONDSTORE; switches CONDSTORE on, and tells the selected
    /// mailbox's HIGHESTMODSEQ when it does so with a mailbox open.
    pub(super) fn condstore_command(&mut self) -> Result<(), &'static str> {
        if self.settings.is_hidden("CONDSTORE") {
            return Err("CONDSTORE is not available");
        }
        if self.resync == Resync::Off {
            self.resync = Resync::Condstore;
            if let Some(view) = self.selected.as_deref() {
                write_modseq_status(self.channel.out(), view);
            }
        }
        Ok(())
    }

    /// [`condstore_command`](Self::condstore_command) for a command on the selected mailbox
    /// that needs its mod-sequences.
    fn modseq_command(&mut self) -> Result<(), &'static str> {
        self.condstore_command()?;
        match self.selected.as_ref() {
            Some(view) if view.highest_modseq() > 0 => Ok(()),
            _ => Err(NO_MODSEQ),
        }
    }

    /// SELECT's and EXAMINE's parameters (RFC 7162 sections 3.1.8 and 3.2.5): CONDSTORE
    /// switches CONDSTORE on; QRESYNC, valid once the client enabled it, is kept for
    /// [`qresync`](Self::qresync). `Err` is the text of a `BAD`.
    pub(super) fn select_parameters(
        &mut self,
        parameters: Vec<SelectParameter>,
    ) -> Result<Option<QresyncSelect>, &'static str> {
        let mut condstore = false;
        let mut qresync = None;
        for parameter in parameters {
            match parameter {
                SelectParameter::CondStore => condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    seq_match_data,
                } => {
                    if self.resync < Resync::Qresync {
                        return Err("QRESYNC is not enabled");
                    }
                    if qresync.is_some() {
                        return Err("QRESYNC given twice");
                    }
                    if let Some((seqs, uids)) = &seq_match_data
                        && count(seqs).zip(count(uids)).is_none_or(|(s, u)| s != u)
                    {
                        return Err("Invalid QRESYNC sequence match data");
                    }
                    qresync = Some(QresyncSelect {
                        uid_validity: uid_validity.get(),
                        modseq: mod_sequence_value.get(),
                        known_uids,
                        seq_match: seq_match_data,
                    });
                }
            }
        }
        if condstore || qresync.is_some() {
            if self.settings.is_hidden("CONDSTORE") {
                return Err("Unknown SELECT parameter");
            }
            self.resync = self.resync.max(Resync::Condstore);
        }
        Ok(qresync)
    }

    /// After SELECT or EXAMINE with QRESYNC: if the client's UIDVALIDITY is the mailbox's,
    /// what changed among the UIDs it knows after its mod-sequence, as
    /// `UID FETCH <known-uids> (FLAGS) (CHANGEDSINCE <modseq> VANISHED)` would answer:
    /// `VANISHED (EARLIER)`, then `FETCH (UID FLAGS MODSEQ)`. Another UIDVALIDITY is a plain
    /// SELECT: the client must start over.
    pub(super) async fn qresync(&mut self, request: QresyncSelect) -> Result<(), StoreError> {
        let Some(view) = self.selected.as_deref() else {
            return Ok(());
        };
        if view.highest_modseq() == 0 || view.uid_validity() != request.uid_validity {
            return Ok(());
        }
        let known = match &request.known_uids {
            Some(set) => sequence::ranges(set, u32::MAX),
            None => vec![1..=u32::MAX],
        };
        let matched = request
            .seq_match
            .as_ref()
            .map_or(0, |(seqs, uids)| matched_uid(view, seqs, uids));
        self.vanished_earlier(&known, request.modseq, matched)
            .await?;
        let Some(view) = self.selected.as_deref() else {
            return Ok(());
        };
        let names = MacroOrMessageDataItemNames::MessageDataItemNames(vec![
            MessageDataItemName::Flags,
            MessageDataItemName::ModSeq,
        ]);
        let plan = FetchPlan::new(&names, true);
        let out = self.channel.out();
        for (index, meta) in view.messages().iter().enumerate() {
            if meta.modseq > request.modseq && sequence::in_ranges(&known, meta.uid) {
                let items = plan.render(meta, None, false, view.is_recent(index));
                let seq = std::num::NonZeroU32::new(index_to_seq(index))
                    .expect("sequence numbers start at 1");
                response::data(out, Data::Fetch { seq, items });
            }
        }
        Ok(())
    }

    /// FETCH's modifiers and MODSEQ item (RFC 7162 sections 3.1.4 and 3.2.6), checked, with
    /// CONDSTORE switched on by them; MODSEQ added to `plan` where CONDSTORE wants it.
    /// `Err` is the text of a `BAD`.
    pub(super) fn fetch_modifiers(
        &mut self,
        modifiers: &[FetchModifier],
        plan: &mut FetchPlan,
        uid: bool,
    ) -> Result<Option<ChangedSince>, &'static str> {
        let mut since = None;
        let mut vanished = false;
        for modifier in modifiers {
            match modifier {
                FetchModifier::ChangedSince(modseq) if since.is_none() => {
                    since = Some(modseq.get());
                }
                FetchModifier::ChangedSince(_) => return Err("CHANGEDSINCE given twice"),
                FetchModifier::Vanished => vanished = true,
            }
        }
        if vanished && (!uid || since.is_none() || self.resync < Resync::Qresync) {
            return Err("VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled");
        }
        if since.is_some() || plan.has_modseq() {
            self.modseq_command()?;
            plan.add_modseq();
        }
        let has_modseqs = self
            .selected
            .as_ref()
            .is_some_and(|view| view.highest_modseq() > 0);
        if self.resync >= Resync::Condstore && has_modseqs && plan.shows_flags() {
            plan.add_modseq();
        }
        Ok(since.map(|modseq| ChangedSince { modseq, vanished }))
    }

    /// STORE's UNCHANGEDSINCE (RFC 7162 section 3.1.3), checked, with CONDSTORE switched on
    /// by it. `Err` is the text of a `BAD`.
    pub(super) fn store_modifiers(
        &mut self,
        modifiers: &[StoreModifier],
    ) -> Result<Option<u64>, &'static str> {
        let mut unchanged_since = None;
        for modifier in modifiers {
            let StoreModifier::UnchangedSince(modseq) = modifier;
            if unchanged_since.replace(*modseq).is_some() {
                return Err("UNCHANGEDSINCE given twice");
            }
        }
        if unchanged_since.is_some() {
            self.modseq_command()?;
        }
        Ok(unchanged_since)
    }

    /// SEARCH with the MODSEQ criterion (RFC 7162 section 3.1.5), which needs mod-sequences.
    pub(super) fn search_modseq(&mut self) -> Result<(), &'static str> {
        self.modseq_command()
    }

    /// `* VANISHED (EARLIER)` for the UIDs of `set` (a UID FETCH's) expunged after `since`.
    /// `*` in `set` reaches every UID, not only up to the mailbox's last: a client knows UIDs
    /// above it when the last messages were expunged.
    pub(super) async fn vanished_in(
        &mut self,
        set: &SequenceSet,
        since: u64,
    ) -> Result<(), StoreError> {
        self.vanished_earlier(&sequence::ranges(set, u32::MAX), since, 0)
            .await
    }

    /// `* VANISHED (EARLIER)` for the UIDs among `known` (ascending ranges) expunged after
    /// `since`: the store's history of expunges, or where that does not reach back so far,
    /// every UID below UIDNEXT that is not in the mailbox and above `matched` (up to which
    /// the client's sequence numbers show it has lost nothing): RFC 7162 lets the server
    /// report UIDs the client never had, which it ignores. UIDs still in the view are left
    /// out: their expunge is reported with `VANISHED` later, when sequence numbers may move.
    async fn vanished_earlier(
        &mut self,
        known: &[RangeInclusive<u32>],
        since: u64,
        matched: u32,
    ) -> Result<(), StoreError> {
        let Some(view) = self.selected.as_deref() else {
            return Ok(());
        };
        let (user, name) = (self.user(), view.name.clone());
        let history = self
            .service
            .store
            .expunged_since(&user, &name, since)
            .await?;
        let Some(view) = self.selected.as_deref() else {
            return Ok(());
        };
        let candidates = history.unwrap_or_else(|| absent_uids(view, matched));
        let present = ranges_of(view.messages().iter().map(|m| m.uid));
        let gone = sequence::subtract(&sequence::intersect(&candidates, known), &present);
        let out = self.channel.out();
        for chunk in gone.chunks(VANISHED_RANGES_PER_LINE) {
            if let Some(known_uids) = sequence::from_ranges(chunk) {
                let earlier = true;
                response::data(
                    out,
                    Data::Vanished {
                        earlier,
                        known_uids,
                    },
                );
            }
        }
        Ok(())
    }

    /// The response code for the tagged OK of EXPUNGE, UID EXPUNGE and MOVE once QRESYNC is
    /// on (RFC 7162 section 3.2.7): the mailbox's HIGHESTMODSEQ, as the client now knows it.
    pub(super) fn expunged_modseq_code(&self) -> Option<Code<'static>> {
        let view = self.selected.as_deref()?;
        (self.resync == Resync::Qresync)
            .then(|| NonZeroU64::new(view.highest_modseq()))
            .flatten()
            .map(Code::HighestModSeq)
    }

    /// The response code for CLOSE's tagged OK once QRESYNC is on (RFC 7162 section 3.2.8):
    /// the HIGHESTMODSEQ the client may resynchronise from later. That is the value the client
    /// heard of every change up to, before CLOSE: a later one could cover changes by other
    /// sessions that CLOSE does not report. CLOSE's own expunges then come again as
    /// `VANISHED (EARLIER)` at the next QRESYNC, for messages the client removed already.
    pub(super) fn closing_modseq_code(&self, closed: &MailboxView) -> Option<Code<'static>> {
        (self.resync == Resync::Qresync)
            .then(|| NonZeroU64::new(closed.highest_modseq()))
            .flatten()
            .map(Code::HighestModSeq)
    }
}

/// `* OK [HIGHESTMODSEQ n]` for SELECT and EXAMINE (RFC 7162 section 3.1.2), or
/// `* OK [NOMODSEQ]` for a mailbox without mod-sequences.
pub(super) fn write_modseq_status(out: &mut Vec<u8>, view: &MailboxView) {
    match NonZeroU64::new(view.highest_modseq()) {
        Some(highest) => response::untagged(
            out,
            StatusKind::Ok,
            Some(Code::HighestModSeq(highest)),
            "Highest",
        ),
        None => response::untagged(
            out,
            StatusKind::Ok,
            Some(Code::NoModSeq),
            "No permanent mod-sequences",
        ),
    }
}

/// `* OK [CLOSED]`: SELECT or EXAMINE closed the mailbox selected before (RFC 7162 section
/// 3.2.11, which asks it of every server offering CONDSTORE, and RFC 9051 section 7.1);
/// what comes after is about the new one.
pub(super) fn write_closed(out: &mut Vec<u8>) {
    let text = "Previous mailbox closed";
    response::untagged(out, StatusKind::Ok, Some(Code::Closed), text);
}

/// How many numbers `set` lists; `None` if it has `*`, which sequence match data must not.
fn count(set: &SequenceSet) -> Option<u64> {
    let value = |bound: &SeqOrUid| match bound {
        SeqOrUid::Value(value) => Some(u64::from(value.get())),
        SeqOrUid::Asterisk => None,
    };
    set.0.as_ref().iter().try_fold(0u64, |total, sequence| {
        Some(
            total
                + match sequence {
                    Sequence::Single(single) => value(single).map(|_| 1)?,
                    Sequence::Range(a, b) => value(a)?.abs_diff(value(b)?) + 1,
                },
        )
    })
}

/// The numbers of `set` in the order the client listed them (ranges in their direction).
fn listed(set: &SequenceSet) -> impl Iterator<Item = u32> + '_ {
    set.0.as_ref().iter().flat_map(|sequence| {
        let value = |bound: &SeqOrUid| match bound {
            SeqOrUid::Value(value) => value.get(),
            SeqOrUid::Asterisk => 0,
        };
        let (a, b) = match sequence {
            Sequence::Single(single) => (value(single), value(single)),
            Sequence::Range(a, b) => (value(a), value(b)),
        };
        let up = (a <= b).then_some(a..=b).into_iter().flatten();
        let down = (a > b).then(|| (b..=a).rev()).into_iter().flatten();
        up.chain(down)
    })
}

/// The highest UID of the client's sequence match data (RFC 7162 section 3.2.5.2) that the
/// mailbox has at the same message number: the client then lost no message with a UID up to
/// it, since the mailbox holds as many messages up to that UID as the client knew. 0 if none
/// matches. The client lists message numbers in ascending order, so no more pairs are
/// looked at than the mailbox has messages.
fn matched_uid(view: &MailboxView, seqs: &SequenceSet, uids: &SequenceSet) -> u32 {
    let messages = view.messages();
    listed(seqs)
        .zip(listed(uids))
        .take(messages.len())
        .filter(|&(seq, uid)| {
            let index = (seq as usize).wrapping_sub(1);
            messages.get(index).is_some_and(|m| m.uid == uid)
        })
        .map(|(_, uid)| uid)
        .max()
        .unwrap_or(0)
}

/// Every UID above `matched` and below UIDNEXT that is not in the view: what may have been
/// expunged, when the store's history does not say.
fn absent_uids(view: &MailboxView, matched: u32) -> Vec<RangeInclusive<u32>> {
    let mut absent = Vec::new();
    let mut next = matched.saturating_add(1);
    for uid in view.messages().iter().map(|m| m.uid) {
        if uid < next {
            continue;
        }
        if uid > next {
            absent.push(next..=uid - 1);
        }
        next = uid.saturating_add(1);
    }
    let last = view.uid_next().saturating_sub(1);
    if next <= last {
        absent.push(next..=last);
    }
    absent
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::store::{Flags, Keywords, MailboxSnapshot, MailboxWatch, MessageMeta};

    fn view(uids: &[u32], uid_next: u32) -> MailboxView {
        let messages = uids
            .iter()
            .map(|&uid| MessageMeta {
                uid,
                size: 10,
                flags: Flags::EMPTY.into(),
                internal_date: UNIX_EPOCH,
                modseq: 5,
            })
            .collect();
        let snapshot = MailboxSnapshot {
            uid_validity: 7,
            uid_next,
            messages,
            keywords: Keywords::new(),
            highest_modseq: 9,
        };
        MailboxView::open(
            "INBOX".into(),
            false,
            snapshot,
            MailboxWatch::never(),
            Some(1),
        )
    }

    fn set(text: &str) -> SequenceSet {
        SequenceSet::try_from(text).unwrap()
    }

    #[test]
    fn sequence_match_data_is_counted_and_listed_in_order() {
        assert_eq!(count(&set("1:3,9,20:11")), Some(14));
        assert_eq!(count(&set("1,5:*")), None);
        let listed: Vec<u32> = listed(&set("3,7:5,9")).collect();
        assert_eq!(listed, [3, 7, 6, 5, 9]);
    }

    #[test]
    fn the_highest_matching_pair_bounds_what_may_have_gone() {
        // The client knew 1..=10 as numbers 1..=10; 3 and 8 went since.
        let view = view(&[1, 2, 4, 5, 6, 7, 9, 10], 11);
        assert_eq!(matched_uid(&view, &set("1,2,4"), &set("1,2,4")), 2);
        assert_eq!(matched_uid(&view, &set("1:2,5"), &set("1:2,5")), 2);
        assert_eq!(
            matched_uid(&view, &set("3"), &set("4")),
            4,
            "UID 4 is number 3 now"
        );
        assert_eq!(
            matched_uid(&view, &set("9"), &set("9")),
            0,
            "beyond the mailbox"
        );
        // Conservatively: everything absent above the match, up to UIDNEXT.
        assert_eq!(absent_uids(&view, 0), vec![3..=3, 8..=8]);
        assert_eq!(absent_uids(&view, 4), vec![8..=8]);
        assert_eq!(absent_uids(&view, 10), vec![]);
        let emptied = super::tests::view(&[2], 6);
        assert_eq!(absent_uids(&emptied, 0), vec![1..=1, 3..=5]);
    }
}
