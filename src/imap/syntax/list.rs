//! LIST with RFC 5258's selection and return options, several patterns, and RFC 5819's
//! `RETURN (STATUS (...))`: the forms of LIST that IMAP4rev2 has and `imap-codec` does not
//! decode. A basic LIST is decoded by `imap-codec` and becomes the same [`ListRequest`].
//!
//! ```text
//! list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
//! ```

use imap_codec::imap_types::core::LiteralMode;
use imap_codec::imap_types::status::StatusDataItemName;

use super::Refusal;
use super::tokens::{Spanned, Stop, Token, Tokens};

/// A LIST command as the session serves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(in crate::imap) struct ListRequest {
    /// The reference name, as sent.
    pub(in crate::imap) reference: Vec<u8>,
    /// The patterns, as sent: a mailbox is listed if it matches any.
    pub(in crate::imap) patterns: Vec<Vec<u8>>,
    /// `SUBSCRIBED`: only subscribed mailboxes, each shown `\Subscribed`.
    pub(in crate::imap) select_subscribed: bool,
    /// `SPECIAL-USE` (RFC 6154): only mailboxes with a special use.
    pub(in crate::imap) select_special_use: bool,
    /// `RECURSIVEMATCH`: also the matching parents of selected mailboxes that do not match,
    /// with `CHILDINFO`.
    pub(in crate::imap) recursive_match: bool,
    /// `RETURN (SUBSCRIBED)`: `\Subscribed` on the subscribed ones.
    pub(in crate::imap) return_subscribed: bool,
    /// `RETURN (STATUS (...))` (RFC 5819): a STATUS response after each selectable one.
    pub(in crate::imap) return_status: Option<Vec<StatusDataItemName>>,
    /// Written in RFC 5258's syntax: a placeholder parent is then `\NonExistent`, as
    /// IMAP4rev2 has it, not RFC 3501's `\Noselect`.
    pub(in crate::imap) extended: bool,
}

/// Why a LIST could not be taken whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::imap) enum Incomplete {
    /// A literal is announced and still on the wire.
    Literal {
        length: u32,
        mode: LiteralMode,
    },
    Refused(Refusal),
}

impl From<Refusal> for Incomplete {
    fn from(refusal: Refusal) -> Self {
        Incomplete::Refused(refusal)
    }
}

/// Decode an extended LIST whose arguments start at `args` (after the word `LIST`).
pub(in crate::imap) fn parse(buf: &[u8], args: usize) -> Result<ListRequest, Incomplete> {
    let mut tokens = Tokens::new(buf);
    tokens.seek(args);
    let mut request = ListRequest {
        extended: true,
        ..ListRequest::default()
    };
    let mut next = advance(&mut tokens)?;
    if next.token == Token::Open {
        selection_options(&mut tokens, &mut request)?;
        next = advance(&mut tokens)?;
    }
    request.reference = mailbox_string(&next.token)?;
    next = advance(&mut tokens)?;
    if next.token == Token::Open {
        loop {
            next = advance(&mut tokens)?;
            if next.token == Token::Close && !request.patterns.is_empty() {
                break;
            }
            request.patterns.push(mailbox_string(&next.token)?);
        }
    } else {
        request.patterns.push(mailbox_string(&next.token)?);
    }
    match tokens.next_token() {
        Err(Stop::End) => return Ok(request),
        Ok(word) if word.token.is_word("RETURN") => {}
        Ok(_) | Err(Stop::Malformed) => return Err(Refusal::Malformed.into()),
        Err(Stop::NeedLiteral { .. }) => return Err(Refusal::Malformed.into()),
    }
    return_options(&mut tokens, &mut request)?;
    match tokens.next_token() {
        Err(Stop::End) => Ok(request),
        _ => Err(Refusal::Malformed.into()),
    }
}

/// The next token, where one must follow.
fn advance<'a>(tokens: &mut Tokens<'a>) -> Result<Spanned<'a>, Incomplete> {
    tokens.next_token().map_err(|stop| match stop {
        Stop::NeedLiteral { length, mode } => Incomplete::Literal { length, mode },
        Stop::End | Stop::Malformed => Incomplete::Refused(Refusal::Malformed),
    })
}

/// `list-select-opts`, after its `(`. RFC 5258 section 3: an option not known is `BAD`, and
/// so is RECURSIVEMATCH with nothing for it to recurse on.
fn selection_options(tokens: &mut Tokens<'_>, request: &mut ListRequest) -> Result<(), Incomplete> {
    loop {
        let next = advance(tokens)?;
        match next.token {
            Token::Close => break,
            ref word if word.is_word("SUBSCRIBED") => request.select_subscribed = true,
            ref word if word.is_word("SPECIAL-USE") => request.select_special_use = true,
            ref word if word.is_word("RECURSIVEMATCH") => request.recursive_match = true,
            // There are no remote mailboxes to add.
            ref word if word.is_word("REMOTE") => {}
            _ => return Err(Refusal::UnknownOption.into()),
        }
    }
    if request.recursive_match && !request.select_subscribed && !request.select_special_use {
        return Err(Refusal::UnknownOption.into());
    }
    Ok(())
}

/// `list-return-opts`, after `RETURN`.
fn return_options(tokens: &mut Tokens<'_>, request: &mut ListRequest) -> Result<(), Incomplete> {
    if advance(tokens)?.token != Token::Open {
        return Err(Refusal::Malformed.into());
    }
    loop {
        let next = advance(tokens)?;
        match next.token {
            Token::Close => return Ok(()),
            ref word if word.is_word("SUBSCRIBED") => request.return_subscribed = true,
            // Always returned: CHILDREN (RFC 3348) and SPECIAL-USE attributes.
            ref word if word.is_word("CHILDREN") || word.is_word("SPECIAL-USE") => {}
            ref word if word.is_word("STATUS") && request.return_status.is_none() => {
                request.return_status = Some(status_items(tokens)?);
            }
            _ => return Err(Refusal::UnknownOption.into()),
        }
    }
}

/// `"(" status-att *(SP status-att) ")"`.
fn status_items(tokens: &mut Tokens<'_>) -> Result<Vec<StatusDataItemName>, Incomplete> {
    if advance(tokens)?.token != Token::Open {
        return Err(Refusal::Malformed.into());
    }
    let mut items = Vec::new();
    loop {
        let next = advance(tokens)?;
        let Token::Word(word) = next.token else {
            if next.token == Token::Close && !items.is_empty() {
                return Ok(items);
            }
            return Err(Refusal::Malformed.into());
        };
        items.push(status_item(word).ok_or(Refusal::UnknownOption)?);
    }
}

/// A STATUS item's name (RFC 9051 section 6.3.11, RFC 3501's RECENT, RFC 8438's SIZE).
fn status_item(word: &[u8]) -> Option<StatusDataItemName> {
    let names = [
        ("MESSAGES", StatusDataItemName::Messages),
        ("RECENT", StatusDataItemName::Recent),
        ("UIDNEXT", StatusDataItemName::UidNext),
        ("UIDVALIDITY", StatusDataItemName::UidValidity),
        ("UNSEEN", StatusDataItemName::Unseen),
        ("DELETED", StatusDataItemName::Deleted),
        ("DELETED-STORAGE", StatusDataItemName::DeletedStorage),
        ("SIZE", StatusDataItemName::Size),
    ];
    names
        .into_iter()
        .find(|(name, _)| word.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, item)| item)
}

/// A mailbox name or pattern: an atom-like word (with the wildcards and `]` a
/// `list-mailbox` allows), a quoted string or a literal. Quoted strings may be UTF-8, as
/// IMAP4rev2 allows.
fn mailbox_string(token: &Token<'_>) -> Result<Vec<u8>, Refusal> {
    let valid = match token {
        Token::Word(word) => word
            .iter()
            .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'{')),
        Token::Quoted(bytes) => std::str::from_utf8(bytes).is_ok(),
        Token::Literal(_) => true,
        Token::Open | Token::Close => false,
    };
    match token.string() {
        Some(bytes) if valid => Ok(bytes.to_vec()),
        _ => Err(Refusal::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(command: &str) -> Result<ListRequest, Incomplete> {
        let args = command.find("LIST").unwrap() + 4;
        parse(command.as_bytes(), args)
    }

    #[test]
    fn selection_patterns_and_return_options() {
        let request = list(
            "a LIST (SUBSCRIBED RECURSIVEMATCH remote) \"\" (\"%\" Work/* {3}\r\nS t) \
             RETURN (CHILDREN STATUS (MESSAGES size) subscribed)\r\n",
        )
        .unwrap();
        assert_eq!(
            request,
            ListRequest {
                reference: Vec::new(),
                patterns: vec![b"%".to_vec(), b"Work/*".to_vec(), b"S t".to_vec()],
                select_subscribed: true,
                select_special_use: false,
                recursive_match: true,
                return_subscribed: true,
                return_status: Some(vec![StatusDataItemName::Messages, StatusDataItemName::Size]),
                extended: true,
            }
        );
        let plain = list("a LIST \"\" % RETURN (SPECIAL-USE)\r\n").unwrap();
        assert_eq!(plain.patterns, [b"%".to_vec()]);
        assert!(list("a LIST () INBOX \"\"\r\n").unwrap().patterns[0].is_empty());
    }

    #[test]
    fn unknown_options_and_broken_forms_are_refused() {
        let refused = |command: &str| match list(command) {
            Err(Incomplete::Refused(refusal)) => refusal,
            other => panic!("{command}: {other:?}"),
        };
        for unknown in [
            "a LIST (VIRTUAL) \"\" *\r\n",
            "a LIST (RECURSIVEMATCH) \"\" *\r\n",
            "a LIST \"\" * RETURN (MYRIGHTS)\r\n",
            "a LIST \"\" * RETURN (STATUS (HIGHESTMODSEQ))\r\n",
        ] {
            assert_eq!(refused(unknown), Refusal::UnknownOption, "{unknown}");
        }
        for malformed in [
            "a LIST (SUBSCRIBED) \"\"\r\n",
            "a LIST \"\" ()\r\n",
            "a LIST \"\" * RETURN CHILDREN\r\n",
            "a LIST \"\" * RETURN (STATUS ())\r\n",
            "a LIST \"\" * extra\r\n",
            "a LIST \"\" (a\"b)\r\n",
        ] {
            assert_eq!(refused(malformed), Refusal::Malformed, "{malformed}");
        }
    }

    #[test]
    fn a_literal_pattern_is_asked_for() {
        assert_eq!(
            list("a LIST (SUBSCRIBED) \"\" {5}\r\n"),
            Err(Incomplete::Literal {
                length: 5,
                mode: LiteralMode::Sync
            })
        );
    }
}
