//! A command cut into its words, strings, literals and parentheses: just enough to find the
//! parts of IMAP4rev2's syntax that `imap-codec` cannot decode, and nothing it can.
//!
//! The buffer is a command as the framing gathers it: lines and the literals between them,
//! ending with CRLF. A literal announced at the very end, whose bytes are not read yet, stops
//! the walk with [`Stop::NeedLiteral`], so the framing can ask for it.

use imap_codec::imap_types::core::LiteralMode;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::imap) enum Token<'a> {
    /// A run of bytes up to a space, a parenthesis or the line's end: an atom, a number, a
    /// sequence set, a pattern. Not validated here.
    Word(&'a [u8]),
    /// A quoted string's content, unescaped.
    Quoted(Vec<u8>),
    /// A literal's bytes.
    Literal(&'a [u8]),
    Open,
    Close,
}

impl Token<'_> {
    /// Whether this is the word `word`, compared case-insensitively as IMAP's keywords are.
    pub(in crate::imap) fn is_word(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// The bytes of a string argument (`astring`, `list-mailbox`): a word, a quoted string or
    /// a literal; `None` for a parenthesis.
    pub(in crate::imap) fn string(&self) -> Option<&[u8]> {
        match self {
            Token::Word(bytes) | Token::Literal(bytes) => Some(bytes),
            Token::Quoted(bytes) => Some(bytes),
            Token::Open | Token::Close => None,
        }
    }
}

/// A token and where it lies in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::imap) struct Spanned<'a> {
    pub(in crate::imap) token: Token<'a>,
    pub(in crate::imap) start: usize,
    pub(in crate::imap) end: usize,
}

/// Why the walk stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::imap) enum Stop {
    /// The command's final CRLF.
    End,
    /// A literal is announced and its bytes are still on the wire.
    NeedLiteral { length: u32, mode: LiteralMode },
    /// Not a command: an unterminated string, a broken literal announcement.
    Malformed,
}

/// The tokens of a command, from `pos` on.
pub(in crate::imap) struct Tokens<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Tokens<'a> {
    pub(in crate::imap) fn new(buf: &'a [u8]) -> Tokens<'a> {
        Tokens { buf, pos: 0 }
    }

    /// Go on from `pos`, which must lie between tokens.
    pub(in crate::imap) fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.buf.len());
    }

    /// The next token, or why there is none.
    pub(in crate::imap) fn next_token(&mut self) -> Result<Spanned<'a>, Stop> {
        while self.buf.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
        let start = self.pos;
        let token = match self.buf.get(start) {
            None => return Err(Stop::Malformed),
            Some(b'\r') if &self.buf[start..] == b"\r\n" => return Err(Stop::End),
            Some(b'\r' | b'\n') => return Err(Stop::Malformed),
            Some(b'(') => {
                self.pos += 1;
                Token::Open
            }
            Some(b')') => {
                self.pos += 1;
                Token::Close
            }
            Some(b'"') => Token::Quoted(self.quoted()?),
            Some(b'{') => match self.literal()? {
                Some(bytes) => Token::Literal(bytes),
                None => {
                    // Only a word may start with `{` and not be a literal: `{x` is no literal.
                    self.word()
                }
            },
            Some(_) => self.word(),
        };
        Ok(Spanned {
            token,
            start,
            end: self.pos,
        })
    }

    /// Up to the next space, parenthesis or line end.
    fn word(&mut self) -> Token<'a> {
        let start = self.pos;
        while let Some(&b) = self.buf.get(self.pos) {
            if matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n') {
                break;
            }
            self.pos += 1;
        }
        Token::Word(&self.buf[start..self.pos])
    }

    /// A quoted string; the position is on its opening quote.
    fn quoted(&mut self) -> Result<Vec<u8>, Stop> {
        let mut out = Vec::new();
        let mut i = self.pos + 1;
        loop {
            match self.buf.get(i) {
                Some(b'"') => break,
                Some(b'\\') => match self.buf.get(i + 1) {
                    Some(&c @ (b'"' | b'\\')) => {
                        out.push(c);
                        i += 2;
                    }
                    _ => return Err(Stop::Malformed),
                },
                Some(b'\r' | b'\n') | None => return Err(Stop::Malformed),
                Some(&c) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        self.pos = i + 1;
        Ok(out)
    }

    /// A literal, `{n}` or `{n+}` then CRLF then `n` bytes; `None` if the brace starts no
    /// announcement (a word then).
    fn literal(&mut self) -> Result<Option<&'a [u8]>, Stop> {
        let rest = &self.buf[self.pos..];
        let Some(close) = rest.iter().position(|&b| b == b'}') else {
            return Ok(None);
        };
        let inside = &rest[1..close];
        let (digits, mode) = match inside.strip_suffix(b"+") {
            Some(digits) => (digits, LiteralMode::NonSync),
            None => (inside, LiteralMode::Sync),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Ok(None);
        }
        if rest.get(close + 1..close + 3) != Some(b"\r\n") {
            return Err(Stop::Malformed);
        }
        let length = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse::<u32>().ok())
            .ok_or(Stop::Malformed)?;
        let data_start = self.pos + close + 3;
        if data_start == self.buf.len() {
            return Err(Stop::NeedLiteral { length, mode });
        }
        let data_end = data_start
            .checked_add(length as usize)
            .filter(|&end| end <= self.buf.len())
            .ok_or(Stop::Malformed)?;
        self.pos = data_end;
        Ok(Some(&self.buf[data_start..data_end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> (Vec<Token<'_>>, Stop) {
        let mut tokens = Tokens::new(buf);
        let mut out = Vec::new();
        loop {
            match tokens.next_token() {
                Ok(spanned) => out.push(spanned.token),
                Err(stop) => return (out, stop),
            }
        }
    }

    #[test]
    fn words_strings_literals_and_parentheses() {
        let (tokens, stop) = all(b"a1 LIST (SUBSCRIBED) \"\" (\"a\\\"b\" {3}\r\nx y%)\r\n");
        assert_eq!(stop, Stop::End);
        assert_eq!(
            tokens,
            [
                Token::Word(b"a1"),
                Token::Word(b"LIST"),
                Token::Open,
                Token::Word(b"SUBSCRIBED"),
                Token::Close,
                Token::Quoted(Vec::new()),
                Token::Open,
                Token::Quoted(b"a\"b".to_vec()),
                Token::Literal(b"x y"),
                Token::Word(b"%"),
                Token::Close,
            ]
        );
        assert!(tokens[1].is_word("list"));
        assert_eq!(tokens[8].string(), Some(&b"x y"[..]));
    }

    #[test]
    fn a_literal_still_on_the_wire_stops_the_walk() {
        let (tokens, stop) = all(b"a LIST \"\" {12+}\r\n");
        assert_eq!(tokens.len(), 3);
        assert_eq!(
            stop,
            Stop::NeedLiteral {
                length: 12,
                mode: LiteralMode::NonSync
            }
        );
    }

    #[test]
    fn broken_input_is_malformed_not_a_panic() {
        for bad in [
            &b"a LIST \"open\r\n"[..],
            b"a LIST {3}\r\nx",
            b"a LIST {99999999999}\r\n\r\n",
            b"a LIST \"\\x\"\r\n",
            b"a LIST {3}x\r\n",
            b"a LIST",
        ] {
            assert_eq!(all(bad).1, Stop::Malformed, "{bad:?}");
        }
        // A brace that announces nothing is part of a word.
        assert_eq!(all(b"a {x}\r\n").0[1], Token::Word(b"{x}"));
    }
}
