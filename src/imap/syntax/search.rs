//! SEARCH's result options (RFC 4731's `RETURN (...)`, with RFC 5182's SAVE) and the saved
//! result `$` (RFC 5182) wherever a sequence set may be, as IMAP4rev2 has them: both written
//! out of a command before `imap-codec` decodes the rest.

use super::Refusal;
use super::tokens::{Spanned, Stop, Token, Tokens};
use crate::imap::sequence::SAVED_MARKER;

/// What a SEARCH asked to get back (RFC 4731 section 3.1, RFC 5182 section 2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(in crate::imap) struct SearchReturn {
    pub(in crate::imap) min: bool,
    pub(in crate::imap) max: bool,
    pub(in crate::imap) all: bool,
    pub(in crate::imap) count: bool,
    pub(in crate::imap) save: bool,
}

impl SearchReturn {
    /// `RETURN ()`, and a plain SEARCH once IMAP4rev2 is on: every match.
    pub(in crate::imap) const ALL: SearchReturn = SearchReturn {
        min: false,
        max: false,
        all: true,
        count: false,
        save: false,
    };
}

/// The search keys followed by that many arguments that are no search keys (RFC 3501 section
/// 9, `search-key`), so that a `$` among them is an argument, not the saved result.
fn arguments_of(key: &[u8]) -> usize {
    const ONE: [&str; 20] = [
        "BCC",
        "BEFORE",
        "BODY",
        "CC",
        "FROM",
        "KEYWORD",
        "LARGER",
        "ON",
        "SENTBEFORE",
        "SENTON",
        "SENTSINCE",
        "SINCE",
        "SMALLER",
        "SUBJECT",
        "TEXT",
        "TO",
        "UNKEYWORD",
        "OLDER",
        "YOUNGER",
        "CHARSET",
    ];
    if key.eq_ignore_ascii_case(b"HEADER") {
        2
    } else if ONE.iter().any(|k| key.eq_ignore_ascii_case(k.as_bytes())) {
        1
    } else {
        0
    }
}

/// The `RETURN (...)` of a SEARCH whose command name ends at `after_name`: the options, and
/// where the clause lies (to cut it out), or `None` if there is no such clause.
pub(in crate::imap) fn return_clause(
    buf: &[u8],
    after_name: usize,
) -> Result<Option<(SearchReturn, std::ops::Range<usize>)>, Refusal> {
    let mut tokens = Tokens::new(buf);
    tokens.seek(after_name);
    match tokens.next_token() {
        Ok(first) if first.token.is_word("RETURN") => {}
        _ => return Ok(None),
    }
    if !matches!(
        tokens.next_token(),
        Ok(Spanned {
            token: Token::Open,
            ..
        })
    ) {
        return Err(Refusal::UnknownOption);
    }
    let mut options = SearchReturn::default();
    let mut any = false;
    loop {
        let next = tokens.next_token().map_err(|_| Refusal::Malformed)?;
        let flag = match next.token {
            Token::Close => {
                if !any {
                    options = SearchReturn::ALL;
                }
                return Ok(Some((options, after_name..next.end)));
            }
            ref word if word.is_word("MIN") => &mut options.min,
            ref word if word.is_word("MAX") => &mut options.max,
            ref word if word.is_word("ALL") => &mut options.all,
            ref word if word.is_word("COUNT") => &mut options.count,
            ref word if word.is_word("SAVE") => &mut options.save,
            _ => return Err(Refusal::UnknownOption),
        };
        *flag = true;
        any = true;
    }
}

/// Where a `$` stands for the saved result in a command named `name` whose arguments start
/// at `args`: the first argument of FETCH, STORE, COPY, MOVE and UID EXPUNGE, and any search
/// key (or `UID`'s argument) of SEARCH, SORT and THREAD. Other `$`s are atoms (a keyword, a
/// mailbox name, a charset, a threading algorithm).
pub(in crate::imap) fn saved_result_uses(
    buf: &[u8],
    name: &[u8],
    args: usize,
) -> Result<Vec<std::ops::Range<usize>>, Refusal> {
    let mut tokens = Tokens::new(buf);
    tokens.seek(args);
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    let mut uses = Vec::new();
    if ["FETCH", "STORE", "COPY", "MOVE", "EXPUNGE"]
        .iter()
        .any(|w| is(w))
    {
        if let Ok(first) = tokens.next_token()
            && first.token == Token::Word(b"$")
        {
            uses.push(first.start..first.end);
        }
    } else if is("SEARCH") {
        search_key_uses(&mut tokens, &mut uses)?;
    } else if is("SORT") {
        // RFC 5256: `(criteria) charset` before the search keys; nothing in them is a set.
        if let Ok(Spanned {
            token: Token::Open, ..
        }) = tokens.next_token()
        {
            while let Ok(next) = tokens.next_token() {
                if next.token == Token::Close {
                    let _charset = tokens.next_token();
                    search_key_uses(&mut tokens, &mut uses)?;
                    break;
                }
            }
        }
    } else if is("THREAD") {
        // RFC 5256: `algorithm charset` before the search keys.
        if tokens.next_token().is_ok() && tokens.next_token().is_ok() {
            search_key_uses(&mut tokens, &mut uses)?;
        }
    }
    if !uses.is_empty() && contains(buf, SAVED_MARKER.to_string().as_bytes()) {
        return Err(Refusal::MarkerClash);
    }
    Ok(uses)
}

/// Where the search keys that follow in `tokens` use `$`: as a key, or as `UID`'s argument.
fn search_key_uses(
    tokens: &mut Tokens<'_>,
    uses: &mut Vec<std::ops::Range<usize>>,
) -> Result<(), Refusal> {
    let mut pending = 0usize;
    let mut after_uid = false;
    loop {
        let next = match tokens.next_token() {
            Ok(next) => next,
            Err(Stop::End | Stop::NeedLiteral { .. }) => return Ok(()),
            Err(Stop::Malformed) => return Err(Refusal::Malformed),
        };
        match &next.token {
            Token::Open | Token::Close => {}
            Token::Word(b"$") if after_uid || pending == 0 => {
                uses.push(next.start..next.end);
                after_uid = false;
            }
            _ if after_uid => after_uid = false,
            _ if pending > 0 => pending -= 1,
            Token::Word(word) if word.eq_ignore_ascii_case(b"UID") => after_uid = true,
            Token::Word(word) => pending = arguments_of(word),
            Token::Quoted(_) | Token::Literal(_) => {}
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(command: &str) -> Result<Option<SearchReturn>, Refusal> {
        let after = command.find("SEARCH").unwrap() + "SEARCH".len();
        return_clause(command.as_bytes(), after).map(|found| {
            found.map(|(options, range)| {
                assert!(command[range].starts_with(" RETURN ("));
                options
            })
        })
    }

    #[test]
    fn return_options() {
        let options = clause("a SEARCH RETURN (MIN max Count) ALL\r\n")
            .unwrap()
            .unwrap();
        assert!(options.min && options.max && options.count && !options.all && !options.save);
        assert_eq!(
            clause("a UID SEARCH RETURN () UNSEEN\r\n").unwrap(),
            Some(SearchReturn::ALL),
            "RFC 4731: an empty list means ALL"
        );
        assert_eq!(clause("a SEARCH UNSEEN\r\n").unwrap(), None);
        assert_eq!(
            clause("a SEARCH RETURN (PARTIAL 1:10) ALL\r\n"),
            Err(Refusal::UnknownOption)
        );
        assert_eq!(
            clause("a SEARCH RETURN MIN ALL\r\n"),
            Err(Refusal::UnknownOption)
        );
    }

    fn uses(command: &str) -> Result<Vec<&str>, Refusal> {
        let mut words = command.splitn(3, ' ');
        words.next();
        let mut name = words.next().unwrap();
        let mut args = command.find(name).unwrap() + name.len();
        if name == "UID" {
            name = command[args + 1..].split(' ').next().unwrap();
            args = command[args + 1..].find(' ').unwrap() + args + 1;
        }
        saved_result_uses(command.as_bytes(), name.as_bytes(), args)
            .map(|ranges| ranges.into_iter().map(|r| &command[r]).collect())
    }

    #[test]
    fn the_saved_result_only_where_a_set_may_be() {
        assert_eq!(uses("a FETCH $ (FLAGS)\r\n").unwrap(), ["$"]);
        assert_eq!(uses("a UID STORE $ +FLAGS ($)\r\n").unwrap(), ["$"]);
        assert_eq!(uses("a COPY 1 $\r\n").unwrap(), Vec::<&str>::new());
        assert_eq!(uses("a UID EXPUNGE $\r\n").unwrap(), ["$"]);
        assert_eq!(
            uses("a SEARCH KEYWORD $ OR $ (UID $ SUBJECT $) HEADER $ $ NOT $\r\n").unwrap(),
            ["$", "$", "$"]
        );
        assert_eq!(
            uses("a SEARCH $ 4294967295\r\n"),
            Err(Refusal::MarkerClash),
            "the marker cannot be told from a real set"
        );
        assert_eq!(uses("a SELECT $\r\n").unwrap(), Vec::<&str>::new());
        assert_eq!(
            uses("a UID SORT (REVERSE SUBJECT) UTF-8 $ SUBJECT $ OR UID $ $\r\n").unwrap(),
            ["$", "$", "$"],
            "SORT's search keys as SEARCH's"
        );
        assert_eq!(
            uses("a SORT (FROM) $ ALL\r\n").unwrap(),
            Vec::<&str>::new(),
            "a charset is no set"
        );
        assert_eq!(
            uses("a UID THREAD REFERENCES UTF-8 UID $ $\r\n").unwrap(),
            ["$", "$"],
            "THREAD's search keys as SEARCH's"
        );
        assert_eq!(
            uses("a THREAD $ $ ALL\r\n").unwrap(),
            Vec::<&str>::new(),
            "an algorithm and a charset are no sets"
        );
    }
}
