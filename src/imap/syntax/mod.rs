//! The IMAP4rev2 syntax `imap-codec` 2.0.0-alpha.10 does not decode (it has no ESEARCH or
//! LIST-EXTENDED yet): SEARCH's `RETURN (...)`, the saved result `$`, and extended LIST.
//!
//! SEARCH and the commands that take `$` are still decoded by `imap-codec`, after
//! [`prepare`] has written our part out of them, so there is one grammar of search keys,
//! fetch items and flags. Extended LIST, which `imap-codec` cannot decode at all, is decoded
//! by [`list::parse`] once `imap-codec` has refused it.

pub(super) mod list;
pub(super) mod search;
pub(super) mod tokens;

use std::borrow::Cow;

use imap_codec::imap_types::sequence::SequenceSet;

use self::search::SearchReturn;
use self::tokens::{Token, Tokens};
use super::framing::Problem;
use super::sequence::SAVED_MARKER;

/// What a command carries beyond what `imap-codec` decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Extension {
    /// SEARCH's `RETURN (...)`.
    pub(super) search_return: Option<SearchReturn>,
    /// A `$` was written as [`SAVED_MARKER`]: a sequence set that is exactly that number
    /// stands for the saved search result (see [`is_saved_result`]).
    pub(super) saved_result: bool,
}

/// Whether `set` is the `$` of a command whose [`Extension::saved_result`] is set.
pub(super) fn is_saved_result(extension: Extension, set: &SequenceSet) -> bool {
    extension.saved_result && super::sequence::is_single(set, SAVED_MARKER)
}

/// Why a command is refused before `imap-codec` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    Malformed,
    /// An option of SEARCH or LIST that is not served: `BAD` (RFC 4731, RFC 5258).
    UnknownOption,
    /// `$` together with the number it is written as: not served.
    MarkerClash,
}

impl Refusal {
    pub(super) fn problem(self) -> Problem {
        match self {
            Refusal::Malformed => Problem::Syntax,
            Refusal::UnknownOption | Refusal::MarkerClash => Problem::UnknownOption,
        }
    }
}

/// A command's first words.
pub(super) struct Head<'a> {
    /// The command is a UID form.
    pub(super) uid: bool,
    /// The command's name (after `UID` for the UID forms).
    pub(super) name: &'a [u8],
    /// Where its arguments start (the space after the name).
    pub(super) args: usize,
}

/// The tag, an optional `UID`, and the command's name.
pub(super) fn head(buf: &[u8]) -> Option<Head<'_>> {
    let mut tokens = Tokens::new(buf);
    let _tag = tokens.next_token().ok()?;
    let mut name = tokens.next_token().ok()?;
    let uid = name.token.is_word("UID");
    if uid {
        name = tokens.next_token().ok()?;
    }
    match name.token {
        Token::Word(word) => Some(Head {
            uid,
            name: word,
            args: name.end,
        }),
        _ => None,
    }
}

/// The command `buf` as `imap-codec` should decode it: `None` to decode it as it is, or the
/// text with SEARCH's result options cut out and each `$` written as [`SAVED_MARKER`], with
/// what was taken out.
pub(super) fn prepare(buf: &[u8]) -> Result<Option<(Vec<u8>, Extension)>, Refusal> {
    // Most commands have neither: not worth a walk.
    let has_dollar = buf.contains(&b'$');
    let has_return = buf.windows(6).any(|w| w.eq_ignore_ascii_case(b"RETURN"));
    if !has_dollar && !has_return {
        return Ok(None);
    }
    let Some(Head { name, args, .. }) = head(buf) else {
        return Ok(None);
    };
    let clause = match name.eq_ignore_ascii_case(b"SEARCH") {
        true => search::return_clause(buf, args)?,
        false => None,
    };
    // The clause lies after the name: `args` stays where it is once it is cut.
    let text = match &clause {
        Some((_, range)) => Cow::Owned([&buf[..range.start], &buf[range.end..]].concat()),
        None => Cow::Borrowed(buf),
    };
    let uses = search::saved_result_uses(&text, name, args)?;
    if clause.is_none() && uses.is_empty() {
        return Ok(None);
    }
    let extension = Extension {
        search_return: clause.map(|(options, _)| options),
        saved_result: !uses.is_empty(),
    };
    let mut text = text.into_owned();
    let marker = SAVED_MARKER.to_string();
    // From the last, so the earlier ranges stay where they are.
    for range in uses.into_iter().rev() {
        text.splice(range, marker.bytes());
    }
    Ok(Some((text, extension)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(command: &str) -> Option<(String, Extension)> {
        prepare(command.as_bytes())
            .unwrap()
            .map(|(text, extension)| (String::from_utf8(text).unwrap(), extension))
    }

    #[test]
    fn plain_commands_are_left_alone() {
        assert_eq!(prepared("a FETCH 1:* (FLAGS)\r\n"), None);
        assert_eq!(prepared("a STORE 1 +FLAGS ($Forwarded)\r\n"), None);
        assert_eq!(prepared("a SEARCH SUBJECT return\r\n"), None);
    }

    #[test]
    fn search_options_and_the_saved_result_are_written_out() {
        let (text, extension) =
            prepared("a UID SEARCH RETURN (MIN SAVE) CHARSET UTF-8 OR $ SEEN {1}\r\n$\r\n")
                .unwrap();
        assert_eq!(
            text, "a UID SEARCH CHARSET UTF-8 OR 4294967295 SEEN {1}\r\n$\r\n",
            "the literal stays a literal"
        );
        assert!(extension.saved_result);
        let options = extension.search_return.unwrap();
        assert!(options.min && options.save && !options.all);

        let (text, extension) = prepared("b UID FETCH $ (UID FLAGS)\r\n").unwrap();
        assert_eq!(text, "b UID FETCH 4294967295 (UID FLAGS)\r\n");
        assert_eq!(extension.search_return, None);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            prepare(b"a SEARCH RETURN (FUZZY) ALL\r\n"),
            Err(Refusal::UnknownOption)
        );
        assert_eq!(
            prepare(b"a UID FETCH $,4294967295 FLAGS\r\n").map(|p| p.is_some()),
            Ok(false),
            "`$,…` is not the saved result: imap-codec refuses the set"
        );
        assert_eq!(
            prepare(b"a SEARCH $ UID 4294967295\r\n"),
            Err(Refusal::MarkerClash)
        );
    }
}
