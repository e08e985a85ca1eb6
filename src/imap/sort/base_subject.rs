//! The base subject of RFC 5256 section 2.1: what SORT SUBJECT and THREAD compare, a
//! subject without its reply and forward markers and list tags.

use crate::imap::search::decode_words;

/// The base subject of the Subject field's raw `value` (as sent: RFC 2047 words are
/// decoded here), following the RFC's steps:
///
/// 1. encoded words decoded, runs of blanks (tabs, folding) made one space;
/// 2. `(fwd)` and blanks removed from the end, as often as they occur;
/// 3. leading blanks and `[blob]`s followed by `Re:`, `Fw:` or `Fwd:` (each possibly with a
///    `[blob]` before its colon) removed;
/// 4. a leading `[blob]` removed, if anything is left after it;
/// 5. steps 3 and 4 repeated until nothing changes;
/// 6. a `[fwd: ...]` wrapper taken off, and everything done again from step 2.
///
/// The markers are matched ASCII-case-insensitively; the result keeps its case (SORT
/// compares under i;ascii-casemap).
pub(in crate::imap) fn base_subject(value: &[u8]) -> String {
    base_subject_and_reply(value).0
}

/// The [`base_subject`] of `value`, and whether the subject is a reply or a forward: whether
/// the steps took off a `Re:`, `Fw:` or `Fwd:`, a `(fwd)` or a `[fwd: ...]` wrapper (RFC 5256
/// section 2.1's note, which THREAD=REFERENCES uses to gather threads by subject).
pub(in crate::imap) fn base_subject_and_reply(value: &[u8]) -> (String, bool) {
    let text = one_space(&decode_words(value));
    let mut subject = text.as_str();
    let mut reply = false;
    loop {
        let (rest, forwarded) = without_trailers(subject);
        let (rest, replied) = without_leaders(rest);
        reply |= forwarded || replied;
        subject = rest;
        match strip_ascii_prefix(subject, "[fwd:").and_then(|rest| rest.strip_suffix(']')) {
            Some(inner) => {
                subject = inner;
                reply = true;
            }
            None => return (subject.to_owned(), reply),
        }
    }
}

/// Step 1's blanks: every run of spaces, tabs and line breaks becomes one space.
fn one_space(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for c in text.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            blank = true;
            continue;
        }
        if blank {
            out.push(' ');
            blank = false;
        }
        out.push(c);
    }
    if blank {
        out.push(' ');
    }
    out
}

/// Step 2: `subj-trailer` (`(fwd)` or a blank) removed from the end, repeatedly; and
/// whether a `(fwd)` was.
fn without_trailers(mut subject: &str) -> (&str, bool) {
    let mut forwarded = false;
    loop {
        subject = subject.trim_end_matches(' ');
        let cut = subject.len().checked_sub("(fwd)".len());
        match cut.filter(|&at| {
            subject.is_char_boundary(at) && subject[at..].eq_ignore_ascii_case("(fwd)")
        }) {
            Some(at) => {
                subject = &subject[..at];
                forwarded = true;
            }
            None => return (subject, forwarded),
        }
    }
}

/// Steps 3 to 5; and whether a `subj-refwd` was removed.
fn without_leaders(mut subject: &str) -> (&str, bool) {
    let mut replied = false;
    // The length of the text at a run of blobs found not to end in `Re:` (and so left in
    // place by step 3): step 4 then removes the run's blobs one by one, and each time step 3
    // would scan the rest of the run again, quadratic in a subject made of `[a]`s. While the
    // text is longer than that and starts a blob, it starts within that same run.
    let mut no_leader_before = usize::MAX;
    loop {
        let before = subject.len();
        loop {
            if let Some(rest) = subject.strip_prefix(' ') {
                subject = rest;
                continue;
            }
            if subject.starts_with('[') && subject.len() > no_leader_before {
                break;
            }
            match leader(subject) {
                Ok(rest) => {
                    subject = rest;
                    replied = true;
                }
                Err(run_end) => {
                    no_leader_before = run_end;
                    break;
                }
            }
        }
        if let Some(rest) = blob(subject).filter(|rest| !rest.is_empty()) {
            subject = rest;
        }
        if subject.len() == before {
            return (subject, replied);
        }
    }
}

/// `*subj-blob subj-refwd` at the start of `subject`: what follows it, or, when there is
/// none, the length of the text after the leading blobs.
fn leader(subject: &str) -> Result<&str, usize> {
    let mut rest = subject;
    while let Some(after) = blob(rest) {
        rest = after;
    }
    refwd(rest).ok_or(rest.len())
}

/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`: what follows it.
fn refwd(text: &str) -> Option<&str> {
    let rest = ["re", "fwd", "fw"]
        .into_iter()
        .find_map(|word| strip_ascii_prefix(text, word))?;
    let rest = rest.trim_start_matches(' ');
    let rest = blob(rest).unwrap_or(rest);
    rest.strip_prefix(':')
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`, where a BLOBCHAR is anything but a bracket: what
/// follows it.
fn blob(text: &str) -> Option<&str> {
    let inside = text.strip_prefix('[')?;
    let end = inside.find(['[', ']'])?;
    let rest = inside[end..].strip_prefix(']')?;
    Some(rest.trim_start_matches(' '))
}

fn strip_ascii_prefix<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}
