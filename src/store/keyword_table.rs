//! A mailbox's keywords by slot, shared by both stores so that they name, limit and spell
//! keywords alike.
//!
//! The slots are Maildir's keyword letters (slot 0 is `a`, slot 25 is `z`, as in Dovecot's
//! `dovecot-keywords` file): a mailbox knows at most [`MAX_KEYWORDS`] keywords, a keyword
//! keeps its slot for the life of the mailbox, and a new keyword takes the first free slot.
//! The [`MemoryStore`](super::MemoryStore) keeps the same table, so it refuses the 27th
//! keyword as the Maildir store must. Only the Maildir store reads slots from a file (and
//! finds names there that are no keyword).

use super::{Keyword, Keywords, MAX_KEYWORDS, StoreError, StoreResult};

/// A set of slots: bit `n` is slot `n`.
pub(crate) type SlotMask = u32;

/// The keywords a mailbox has known, by slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeywordTable {
    slots: [Option<Keyword>; MAX_KEYWORDS],
    /// Slots taken by something that is no keyword (a name another program wrote that is not
    /// an IMAP atom): never given out, never shown.
    reserved: SlotMask,
}

impl KeywordTable {
    /// The slot of `keyword` (the first, should a file name it twice).
    pub(crate) fn slot_of(&self, keyword: &Keyword) -> Option<usize> {
        self.slots
            .iter()
            .position(|slot| slot.as_ref() == Some(keyword))
    }

    /// The keyword in `slot`, if any.
    pub(crate) fn get(&self, slot: usize) -> Option<&Keyword> {
        self.slots.get(slot)?.as_ref()
    }

    /// Puts `keyword` in `slot` (as read from a file); a slot beyond the table is ignored.
    #[cfg(feature = "maildir")]
    pub(crate) fn set(&mut self, slot: usize, keyword: Keyword) {
        if let Some(place) = self.slots.get_mut(slot) {
            *place = Some(keyword);
            self.reserved &= !bit(slot);
        }
    }

    /// Marks `slot` taken by something that is no keyword.
    #[cfg(feature = "maildir")]
    pub(crate) fn reserve(&mut self, slot: usize) {
        if slot < MAX_KEYWORDS {
            self.slots[slot] = None;
            self.reserved |= bit(slot);
        }
    }

    /// The slots of `keywords`, new keywords taking the first free slots; `true` with them
    /// if the table changed. All or nothing: if the new keywords do not all fit, nothing is
    /// added and the error is [`StoreError::TooManyKeywords`].
    pub(crate) fn intern(&mut self, keywords: &Keywords) -> StoreResult<(SlotMask, bool)> {
        let mut mask = 0;
        let mut new = Vec::new();
        for keyword in keywords {
            match self.slot_of(keyword) {
                Some(slot) => mask |= bit(slot),
                None => new.push(keyword),
            }
        }
        let free: Vec<usize> = (0..MAX_KEYWORDS)
            .filter(|&slot| self.slots[slot].is_none() && self.reserved & bit(slot) == 0)
            .take(new.len())
            .collect();
        if free.len() < new.len() {
            return Err(StoreError::TooManyKeywords);
        }
        for (slot, keyword) in free.into_iter().zip(&new) {
            self.slots[slot] = Some((*keyword).clone());
            mask |= bit(slot);
        }
        Ok((mask, !new.is_empty()))
    }

    /// `keywords` as the table spells them, adding the new ones: what a store keeps for a
    /// message. Fails like [`intern`](Self::intern).
    pub(crate) fn canonical(&mut self, keywords: &Keywords) -> StoreResult<Keywords> {
        let (mask, _) = self.intern(keywords)?;
        Ok(self.keywords(mask))
    }

    /// The keywords in the slots of `mask`.
    pub(crate) fn keywords(&self, mask: SlotMask) -> Keywords {
        if mask == 0 {
            // Most messages: no need to look.
            return Keywords::new();
        }
        (0..MAX_KEYWORDS)
            .filter(|&slot| mask & bit(slot) != 0)
            .filter_map(|slot| self.get(slot).cloned())
            .collect()
    }

    /// Every keyword of the table: the mailbox's keywords.
    pub(crate) fn all(&self) -> Keywords {
        self.slots.iter().flatten().cloned().collect()
    }

    /// The slots taken by something that is no keyword.
    #[cfg(feature = "maildir")]
    pub(crate) fn reserved(&self) -> SlotMask {
        self.reserved
    }
}

/// The mask of `slot` alone.
pub(crate) fn bit(slot: usize) -> SlotMask {
    1 << slot
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_keywords as keywords;

    #[cfg(feature = "maildir")]
    #[test]
    fn new_keywords_take_free_slots_and_keep_the_first_spelling() {
        let mut table = KeywordTable::default();
        table.set(1, Keyword::new("NonJunk").unwrap());
        table.reserve(2);
        let (mask, changed) = table.intern(&keywords(&["nonjunk", "$Label1"])).unwrap();
        assert!(changed);
        assert_eq!(mask, bit(0) | bit(1), "slot 0 was free, 2 is reserved");
        assert_eq!(table.get(0).unwrap().as_str(), "$Label1");
        let canonical = table.canonical(&keywords(&["NONJUNK"])).unwrap();
        assert_eq!(canonical.iter().next().unwrap().as_str(), "NonJunk");
        assert_eq!(
            table.intern(&keywords(&["nonjunk"])).unwrap(),
            (bit(1), false)
        );
        assert_eq!(table.keywords(bit(0) | bit(2)), keywords(&["$Label1"]));
        assert_eq!(table.all(), keywords(&["$Label1", "NonJunk"]));
        assert_eq!(table.reserved(), bit(2));
    }

    #[test]
    fn the_27th_keyword_changes_nothing() {
        let mut table = KeywordTable::default();
        let names: Vec<String> = (0..MAX_KEYWORDS).map(|i| format!("k{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        table.intern(&keywords(&names[..25])).unwrap();
        let before = table.clone();
        assert!(matches!(
            table.intern(&keywords(&["k25", "one-too-many"])),
            Err(StoreError::TooManyKeywords)
        ));
        assert_eq!(table, before, "all or nothing");
        table.intern(&keywords(&["k25"])).unwrap();
        assert_eq!(table.all().len(), MAX_KEYWORDS);
        assert!(
            table.intern(&keywords(&["k0", "K25"])).is_ok(),
            "known ones fit"
        );
    }
}
