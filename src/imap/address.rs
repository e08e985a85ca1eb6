//! RFC 5322 address lists (section 3.4) as IMAP sees them: ENVELOPE's address structures
//! (RFC 3501 section 7.4.2) and what the address keys of SEARCH match.
//!
//! mail-parser decodes display names (RFC 2047); ENVELOPE must carry them as sent, so the
//! raw field value is parsed here. The parser is forgiving like Dovecot's: whatever the input,
//! it yields well-formed items, leaving a missing local part or domain empty and closing open
//! groups. Comments and folding whitespace are no part of an address: a group that holds
//! only a comment is an empty group. The work is linear in the input and nothing recurses,
//! however deeply comments nest.

/// One element of an ENVELOPE address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Item {
    /// A mailbox: display name, source route (`@a,@b`), local part, domain. The local part
    /// or the domain is empty when the field has none (`undisclosed`, `<@x>`).
    Mailbox {
        name: Option<Vec<u8>>,
        route: Option<Vec<u8>>,
        mailbox: Vec<u8>,
        host: Vec<u8>,
    },
    /// `name:` opening a group: `(NIL NIL name NIL)`.
    GroupStart(Vec<u8>),
    /// `;` closing a group: `(NIL NIL NIL NIL)`.
    GroupEnd,
}

/// The most of one field's value parsed. Each byte may become a token of about 32 bytes, so a
/// 50 MB message whose `From:` is all `<` would otherwise cost 1.6 GB for a moment on every
/// FETCH ENVELOPE or SEARCH FROM; a real address field is a few hundred bytes, and a list of
/// thousands of recipients still fits.
const MAX_VALUE_LEN: usize = 64 * 1024;

/// The addresses in an address field's value, folded or not; past [`MAX_VALUE_LEN`] bytes the
/// rest of the field is left out.
pub(super) fn parse(value: &[u8]) -> Vec<Item> {
    let value = &value[..value.len().min(MAX_VALUE_LEN)];
    let tokens = tokenize(value);
    let mut items = Vec::new();
    let mut in_group = false;
    let mut at = 0;
    while at < tokens.len() {
        match tokens[at].kind {
            Kind::Special(b',') => {
                at += 1;
                continue;
            }
            Kind::Special(b';') => {
                if in_group {
                    items.push(Item::GroupEnd);
                    in_group = false;
                }
                at += 1;
                continue;
            }
            _ => {}
        }
        let start = at;
        let stop = tokens[start..]
            .iter()
            .position(|token| matches!(token.kind, Kind::Special(b'<' | b':' | b',' | b';')))
            .map_or(tokens.len(), |i| start + i);
        match tokens.get(stop).map(|token| &token.kind) {
            Some(Kind::Special(b':')) if !in_group => {
                items.push(Item::GroupStart(
                    phrase(&tokens[start..stop]).unwrap_or_default(),
                ));
                in_group = true;
                at = stop + 1;
            }
            Some(Kind::Special(b'<')) => {
                let close = tokens[stop..]
                    .iter()
                    .position(|token| token.kind == Kind::Special(b'>'))
                    .map_or(tokens.len(), |i| stop + i);
                let inner = &tokens[stop + 1..close];
                let (route, spec) = match inner
                    .iter()
                    .position(|token| token.kind == Kind::Special(b':'))
                {
                    Some(colon) => (Some(joined(&inner[..colon])), &inner[colon + 1..]),
                    None => (None, inner),
                };
                let route = route.filter(|route| !route.is_empty());
                push_mailbox(&mut items, phrase(&tokens[start..stop]), route, spec);
                // Anything between `>` and the next address is noise.
                at = tokens[close.min(tokens.len())..]
                    .iter()
                    .position(|token| matches!(token.kind, Kind::Special(b',' | b';')))
                    .map_or(tokens.len(), |i| close + i);
            }
            _ => {
                // A bare addr-spec; a comment in it is the only name it has (`a@b (Al)`). A
                // comment alone is no address (`group: (nobody) ;`).
                let spec = &tokens[start..stop];
                if spec.iter().any(|token| token.kind != Kind::Comment) {
                    let name = spec.iter().rev().find_map(|token| match &token.kind {
                        Kind::Comment => Some(token.text.clone()),
                        _ => None,
                    });
                    push_mailbox(&mut items, name.filter(|name| !name.is_empty()), None, spec);
                }
                // A stray `:` inside a group cannot start another one: skip it.
                at = if tokens
                    .get(stop)
                    .is_some_and(|t| t.kind == Kind::Special(b':'))
                {
                    stop + 1
                } else {
                    stop
                };
            }
        }
    }
    if in_group {
        items.push(Item::GroupEnd);
    }
    items
}

fn push_mailbox(
    items: &mut Vec<Item>,
    name: Option<Vec<u8>>,
    route: Option<Vec<u8>>,
    spec: &[Token],
) {
    let at_sign = spec
        .iter()
        .rposition(|token| token.kind == Kind::Special(b'@'));
    let (local, domain) = match at_sign {
        Some(at) => (joined(&spec[..at]), joined(&spec[at + 1..])),
        None => (joined(spec), Vec::new()),
    };
    if local.is_empty() && domain.is_empty() && name.is_none() {
        return;
    }
    items.push(Item::Mailbox {
        name,
        route,
        mailbox: local,
        host: domain,
    });
}

/// A display name: its words separated by single blanks where the source had blanks,
/// quoted strings unquoted, comments left out; `None` when empty.
fn phrase(tokens: &[Token]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for token in tokens {
        if token.kind == Kind::Comment {
            continue;
        }
        if token.blank_before && !out.is_empty() {
            out.push(b' ');
        }
        match token.kind {
            Kind::Special(b) => out.push(b),
            _ => out.extend_from_slice(&token.text),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A local part, domain or route: the tokens run together, blanks and comments dropped.
fn joined(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for token in tokens {
        match token.kind {
            Kind::Comment => {}
            Kind::Special(b) => out.push(b),
            Kind::Word => out.extend_from_slice(&token.text),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An atom, a quoted string (unquoted) or a domain literal (with its brackets).
    Word,
    /// A comment's text.
    Comment,
    /// One of `< > @ , ; : .` (and a stray `]`).
    Special(u8),
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    text: Vec<u8>,
    blank_before: bool,
}

fn tokenize(value: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut blank_before = false;
    let mut at = 0;
    while let Some(&b) = value.get(at) {
        let (kind, text, next) = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                blank_before = true;
                at += 1;
                continue;
            }
            b'"' => {
                let (text, next) = delimited(value, at + 1, b'"', None);
                (Kind::Word, text, next)
            }
            b'(' => {
                let (text, next) = delimited(value, at + 1, b')', Some(b'('));
                (Kind::Comment, text, next)
            }
            b'[' => {
                let (mut text, next) = delimited(value, at + 1, b']', None);
                text.insert(0, b'[');
                text.push(b']');
                (Kind::Word, text, next)
            }
            // A `)` that closes no comment belongs to nothing: dropped, so that it cannot
            // make an address of its own.
            b')' => {
                at += 1;
                continue;
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.' | b']' => {
                (Kind::Special(b), Vec::new(), at + 1)
            }
            _ => {
                let end = value[at..]
                    .iter()
                    .position(|&c| {
                        matches!(
                            c,
                            b' ' | b'\t'
                                | b'\r'
                                | b'\n'
                                | b'"'
                                | b'('
                                | b')'
                                | b'['
                                | b']'
                                | b'<'
                                | b'>'
                                | b'@'
                                | b','
                                | b';'
                                | b':'
                                | b'.'
                        )
                    })
                    .map_or(value.len(), |i| at + i);
                (Kind::Word, value[at..end].to_vec(), end)
            }
        };
        tokens.push(Token {
            kind,
            text,
            blank_before,
        });
        blank_before = false;
        at = next;
    }
    tokens
}

/// The text from `start` up to the `close` that ends it (backslash escapes undone, nested
/// `open`/`close` pairs kept, line breaks of folding removed), and the offset after it;
/// unterminated text ends at the end.
fn delimited(value: &[u8], start: usize, close: u8, open: Option<u8>) -> (Vec<u8>, usize) {
    let mut text = Vec::new();
    let mut depth = 0usize;
    let mut at = start;
    while let Some(&b) = value.get(at) {
        at += 1;
        if b == b'\r' || b == b'\n' {
            continue;
        } else if b == b'\\' {
            if let Some(&escaped) = value.get(at) {
                text.push(escaped);
                at += 1;
            }
        } else if Some(b) == open {
            depth += 1;
            text.push(b);
        } else if b == close {
            if depth == 0 {
                break;
            }
            depth -= 1;
            text.push(b);
        } else {
            text.push(b);
        }
    }
    (text, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: Option<&str>, mailbox: &str, host: &str) -> Item {
        Item::Mailbox {
            name: name.map(|n| n.as_bytes().to_vec()),
            route: None,
            mailbox: mailbox.as_bytes().to_vec(),
            host: host.as_bytes().to_vec(),
        }
    }

    #[test]
    fn names_stay_encoded_and_quotes_go() {
        let items = parse(b"=?utf-8?q?J=C3=B6rg?= <j@x.org>, \"Doe, John\" <john@[1.2.3.4]>");
        assert_eq!(
            items,
            [
                mailbox(Some("=?utf-8?q?J=C3=B6rg?="), "j", "x.org"),
                mailbox(Some("Doe, John"), "john", "[1.2.3.4]"),
            ]
        );
    }

    #[test]
    fn groups_routes_comments_and_garbage() {
        let items =
            parse(b"Team: a@b (Al), John Q. Public <@r1,@r2:c@d>; e . f @ g.h, undisclosed");
        assert_eq!(
            items,
            [
                Item::GroupStart(b"Team".to_vec()),
                mailbox(Some("Al"), "a", "b"),
                Item::Mailbox {
                    name: Some(b"John Q. Public".to_vec()),
                    route: Some(b"@r1,@r2".to_vec()),
                    mailbox: b"c".to_vec(),
                    host: b"d".to_vec(),
                },
                Item::GroupEnd,
                mailbox(None, "e.f", "g.h"),
                mailbox(None, "undisclosed", ""),
            ]
        );
        assert_eq!(
            parse(b"undisclosed-recipients:;"),
            [
                Item::GroupStart(b"undisclosed-recipients".to_vec()),
                Item::GroupEnd
            ]
        );
        assert_eq!(
            parse(b"g: a@b"),
            [
                Item::GroupStart(b"g".to_vec()),
                mailbox(None, "a", "b"),
                Item::GroupEnd
            ]
        );
        assert!(parse(b"").is_empty());
        assert!(parse(b"<>, ,;").is_empty());
        for garbage in [
            &b"<<<@@@>>> \"unterminated (x"[..],
            b"(((",
            b"\\",
            b"a:b:c;;<",
            b"[",
            b"@",
        ] {
            let _ = parse(garbage);
        }
    }

    fn group(name: &str) -> Item {
        Item::GroupStart(name.as_bytes().to_vec())
    }

    #[test]
    fn a_group_of_nothing_but_comments_holds_no_address() {
        assert_eq!(
            parse(b"group:;, group2: (foo) ;"),
            [
                group("group"),
                Item::GroupEnd,
                group("group2"),
                Item::GroupEnd
            ]
        );
        // Nested comments, a comment before the `;`, folding whitespace, a comment alone.
        assert_eq!(
            parse(b"g: (a (b) c)\r\n (d) ;, (nobody)"),
            [group("g"), Item::GroupEnd]
        );
        assert_eq!(
            parse(b"g (the team): a@b (Al (the (first))) ;"),
            [
                group("g"),
                mailbox(Some("Al (the (first))"), "a", "b"),
                Item::GroupEnd
            ]
        );
    }

    #[test]
    fn colons_and_semicolons_in_quotes_and_comments_are_text() {
        assert_eq!(
            parse(br#""Team: A; B" <a@b>, "x:y;": c@d (e; f: g), h@i;"#),
            [
                mailbox(Some("Team: A; B"), "a", "b"),
                group("x:y;"),
                mailbox(Some("e; f: g"), "c", "d"),
                mailbox(None, "h", "i"),
                Item::GroupEnd,
            ]
        );
    }

    #[test]
    fn a_group_left_open_is_closed_at_the_end() {
        assert_eq!(
            parse(b"g: a@b, (c)"),
            [group("g"), mailbox(None, "a", "b"), Item::GroupEnd]
        );
        // An unterminated comment runs to the end and takes the `;` with it.
        assert_eq!(parse(b"g: (foo ;"), [group("g"), Item::GroupEnd]);
    }

    #[test]
    fn unbalanced_parentheses_make_no_address() {
        assert_eq!(parse(b"g: (foo)) ;"), [group("g"), Item::GroupEnd]);
        assert_eq!(parse(b")))"), []);
        assert_eq!(parse(b"a)@b)"), [mailbox(None, "a", "b")]);
    }

    #[test]
    fn only_the_start_of_a_huge_field_is_parsed() {
        let mut value = b"a@b.example, ".to_vec();
        value.extend(std::iter::repeat_n(b'<', 4 * MAX_VALUE_LEN));
        value.extend_from_slice(b", late@c.example");
        let items = parse(&value);
        assert_eq!(items[0], mailbox(None, "a", "b.example"));
        assert!(!items.contains(&mailbox(None, "late", "c.example")));
        assert!(items.len() <= MAX_VALUE_LEN);
    }

    #[test]
    fn deep_nesting_is_linear_and_needs_no_stack() {
        // As deep as fits in the part of a field that is parsed: far past any stack.
        let depth = MAX_VALUE_LEN / 2 - 8;
        let mut deep = b"a@b ".to_vec();
        deep.extend(std::iter::repeat_n(b'(', depth));
        deep.extend(std::iter::repeat_n(b')', depth));
        deep.extend_from_slice(b", c@d");
        let items = parse(&deep);
        let [
            Item::Mailbox {
                name: Some(name), ..
            },
            second,
        ] = &items[..]
        else {
            panic!("two addresses: {:?}", items.len())
        };
        assert_eq!(
            name.len(),
            2 * (depth - 1),
            "the comment's text, nesting kept"
        );
        assert_eq!(*second, mailbox(None, "c", "d"));
        // Never closed: one comment to the end, no address.
        assert_eq!(parse(&vec![b'('; depth]), []);
        for hostile in [b'<', b':', b'"', b'@', b')', b';'] {
            let _ = parse(&vec![hostile; depth]);
        }
    }
}
