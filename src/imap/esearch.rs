//! The ESEARCH response (RFC 4731 section 3.1, RFC 9051 section 7.3.4) and the saved search
//! result (RFC 5182): what a SEARCH with result options answers, and what it keeps for `$`.
//!
//! Written by hand: `imap-types` has no ESEARCH yet. Everything in it is a number, a
//! sequence set or the command's tag, which cannot hold a quote (RFC 9051's `tag` has no
//! `quoted-specials`), so nothing needs escaping.

use imap_codec::imap_types::core::Tag;

use super::sequence::compact;
use super::syntax::search::SearchReturn;

/// Whether the options ask for an ESEARCH response: SAVE alone does not (RFC 5182 section
/// 2.1).
pub(super) fn answers(options: SearchReturn) -> bool {
    options.min || options.max || options.all || options.count
}

/// The matches (UIDs, ascending) that SAVE keeps: all of them, except that MIN or MAX
/// without ALL or COUNT keeps only those (RFC 5182 section 2.1).
pub(super) fn to_save<T: Copy + PartialEq>(options: SearchReturn, uids: &[T]) -> Vec<T> {
    if (options.min || options.max) && !(options.all || options.count) {
        let mut kept = Vec::with_capacity(2);
        if options.min {
            kept.extend(uids.first());
        }
        if options.max {
            kept.extend(uids.last());
        }
        kept.dedup();
        return kept;
    }
    uids.to_vec()
}

/// The MODSEQ of an ESEARCH answering a search with RFC 7162's MODSEQ criterion (section
/// 3.1.10): the highest mod-sequence of the messages it returns, which are the ones SAVE
/// keeps (only MIN's and MAX's when those alone are asked). `modseqs` are the matches', in
/// order; none for a search without the criterion.
pub(super) fn highest_modseq(options: SearchReturn, modseqs: &[u64]) -> Option<u64> {
    to_save(options, modseqs).into_iter().max()
}

/// `* ESEARCH (TAG "a1") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ n]` for `numbers`
/// (ascending; sequence numbers, or UIDs when `uid`). MIN, MAX and ALL are left out when
/// nothing matched; COUNT is then 0 (RFC 4731 section 3.1); MODSEQ is `modseq`, if any.
pub(super) fn write(
    out: &mut Vec<u8>,
    tag: &Tag<'_>,
    uid: bool,
    options: SearchReturn,
    numbers: &[u32],
    modseq: Option<u64>,
) {
    let mut line = format!("* ESEARCH (TAG \"{}\")", tag.inner());
    if uid {
        line.push_str(" UID");
    }
    if let (Some(min), true) = (numbers.first(), options.min) {
        line.push_str(&format!(" MIN {min}"));
    }
    if let (Some(max), true) = (numbers.last(), options.max) {
        line.push_str(&format!(" MAX {max}"));
    }
    if options.count {
        line.push_str(&format!(" COUNT {}", numbers.len()));
    }
    if options.all && !numbers.is_empty() {
        line.push_str(" ALL ");
        line.push_str(&compact(numbers));
    }
    if let Some(modseq) = modseq.filter(|_| !numbers.is_empty()) {
        line.push_str(&format!(" MODSEQ {modseq}"));
    }
    line.push_str("\r\n");
    out.extend_from_slice(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERYTHING: SearchReturn = SearchReturn {
        min: true,
        max: true,
        all: true,
        count: true,
        save: false,
    };

    fn written(uid: bool, options: SearchReturn, numbers: &[u32]) -> String {
        written_with(uid, options, numbers, None)
    }

    fn written_with(
        uid: bool,
        options: SearchReturn,
        numbers: &[u32],
        modseq: Option<u64>,
    ) -> String {
        let mut out = Vec::new();
        let tag = Tag::try_from("A282").unwrap();
        write(&mut out, &tag, uid, options, numbers, modseq);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc_4731s_forms() {
        assert_eq!(
            written(false, EVERYTHING, &[2, 10, 11]),
            "* ESEARCH (TAG \"A282\") MIN 2 MAX 11 COUNT 3 ALL 2,10:11\r\n"
        );
        assert_eq!(
            written(true, EVERYTHING, &[]),
            "* ESEARCH (TAG \"A282\") UID COUNT 0\r\n"
        );
        assert_eq!(
            written(false, SearchReturn::ALL, &[]),
            "* ESEARCH (TAG \"A282\")\r\n"
        );
    }

    #[test]
    fn rfc_7162s_modseq() {
        assert_eq!(
            written_with(false, EVERYTHING, &[2, 10], Some(917)),
            "* ESEARCH (TAG \"A282\") MIN 2 MAX 10 COUNT 2 ALL 2,10 MODSEQ 917\r\n"
        );
        assert_eq!(
            written_with(true, SearchReturn::ALL, &[], Some(917)),
            "* ESEARCH (TAG \"A282\") UID\r\n",
            "nothing returned, no MODSEQ"
        );
        let min = SearchReturn {
            min: true,
            ..SearchReturn::default()
        };
        assert_eq!(
            highest_modseq(min, &[5, 9, 7]),
            Some(5),
            "MIN's message only"
        );
        assert_eq!(highest_modseq(EVERYTHING, &[5, 9, 7]), Some(9));
        assert_eq!(highest_modseq(EVERYTHING, &[]), None);
    }

    #[test]
    fn what_save_keeps() {
        let save = |min, max, all| SearchReturn {
            min,
            max,
            all,
            count: false,
            save: true,
        };
        assert_eq!(to_save(save(true, true, false), &[3, 5, 9]), [3, 9]);
        assert_eq!(to_save(save(false, true, false), &[3, 5, 9]), [9]);
        assert_eq!(to_save(save(true, true, false), &[4]), [4]);
        assert_eq!(to_save(save(true, false, true), &[3, 5, 9]), [3, 5, 9]);
        assert_eq!(to_save(save(false, false, false), &[3, 5]), [3, 5]);
        assert!(!answers(save(false, false, false)));
        assert!(answers(save(true, false, false)));
    }
}
