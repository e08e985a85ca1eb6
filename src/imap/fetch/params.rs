//! MIME header values as BODYSTRUCTURE shows them (RFC 2045, RFC 2183, RFC 2231).
//!
//! Parameters are read from the raw header rather than from mail-parser's decoded ones:
//! BODYSTRUCTURE carries them as sent, RFC 2231 continuations merged into one `name*`
//! parameter the way Dovecot does, and clients decode.

use std::collections::HashMap;

use super::header;

/// MIME parameters in header order: names as sent, values unquoted.
pub(super) type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// A part's media type, with its parameters in header order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ContentType {
    /// The type, lowercase (`text`).
    pub(super) kind: String,
    /// The subtype, lowercase (`plain`).
    pub(super) subtype: String,
    pub(super) params: Params,
}

impl ContentType {
    /// RFC 2045 section 5.2: no (or no valid) Content-Type is `text/plain; charset=us-ascii`.
    pub(super) fn default_text() -> ContentType {
        ContentType::new(
            "text",
            "plain",
            vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
        )
    }

    /// RFC 2046 section 5.1.5: in a multipart/digest, parts are messages by default.
    pub(super) fn default_message() -> ContentType {
        ContentType::new("message", "rfc822", Vec::new())
    }

    pub(super) fn new(kind: &str, subtype: &str, params: Params) -> ContentType {
        ContentType {
            kind: kind.to_owned(),
            subtype: subtype.to_owned(),
            params,
        }
    }

    pub(super) fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind == kind && self.subtype == subtype
    }

    /// The Content-Type of the part with header `block`; `in_digest` when the enclosing
    /// multipart is a multipart/digest.
    pub(super) fn of(block: &[u8], in_digest: bool) -> ContentType {
        let parsed = header::last(block, "Content-Type").and_then(|value| {
            let (head, params) = parse(&value);
            let (kind, subtype) = split_media_type(&head)?;
            Some(ContentType {
                kind,
                subtype,
                params,
            })
        });
        match parsed {
            Some(content_type) => content_type,
            None if in_digest => ContentType::default_message(),
            None => ContentType::default_text(),
        }
    }
}

/// Content-Disposition: the disposition type as sent and its parameters.
pub(super) fn disposition(block: &[u8]) -> Option<(Vec<u8>, Params)> {
    let value = header::last(block, "Content-Disposition")?;
    let (head, params) = parse(&value);
    is_token(&head).then_some((head, params))
}

/// Content-Language: the language tags (RFC 3282), in order.
pub(super) fn languages(block: &[u8]) -> Vec<Vec<u8>> {
    let Some(value) = header::last(block, "Content-Language") else {
        return Vec::new();
    };
    without_comments(&value)
        .split(|&b| b == b',')
        .map(|tag| header::trim(tag).to_vec())
        .filter(|tag| !tag.is_empty())
        .collect()
}

/// Content-Transfer-Encoding, uppercase; `7BIT`, the default, when absent or not a token.
pub(super) fn transfer_encoding(block: &[u8]) -> String {
    header::last(block, "Content-Transfer-Encoding")
        .map(|value| header::trim(&without_comments(&value)).to_vec())
        .filter(|value| is_token(value))
        .map_or_else(
            || "7BIT".to_owned(),
            |value| String::from_utf8_lossy(&value).to_ascii_uppercase(),
        )
}

/// `type/subtype`, lowercase, if both are tokens.
fn split_media_type(head: &[u8]) -> Option<(String, String)> {
    let slash = head.iter().position(|&b| b == b'/')?;
    let (kind, subtype) = (&head[..slash], &head[slash + 1..]);
    if !is_token(kind) || !is_token(subtype) {
        return None;
    }
    let lower = |bytes: &[u8]| String::from_utf8_lossy(bytes).to_ascii_lowercase();
    Some((lower(kind), lower(subtype)))
}

/// `head *(";" attribute "=" value)`, tolerant: comments and blanks skipped, parameters
/// without `=` dropped, unterminated quoted strings and comments closed at the end.
fn parse(value: &[u8]) -> (Vec<u8>, Params) {
    let mut scanner = Scanner {
        bytes: value,
        at: 0,
    };
    let head = scanner.until_semicolon();
    let mut params = Vec::new();
    while scanner.at < value.len() {
        scanner.at += 1; // the ';'
        scanner.skip_blanks_and_comments();
        let name = scanner.token();
        scanner.skip_blanks_and_comments();
        if name.is_empty() || scanner.peek() != Some(b'=') {
            scanner.until_semicolon();
            continue;
        }
        scanner.at += 1;
        scanner.skip_blanks_and_comments();
        let value = if scanner.peek() == Some(b'"') {
            scanner.quoted()
        } else {
            scanner.token()
        };
        params.push((name, value));
        scanner.until_semicolon();
    }
    (head, merge_rfc2231(params))
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_blanks_and_comments(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.at += 1,
                b'(' => self.comment(),
                _ => break,
            }
        }
    }

    /// Skips a (nested) comment starting at `(`.
    fn comment(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'\\' => self.at = (self.at + 1).min(self.bytes.len()),
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// A quoted string starting at `"`, unescaped.
    fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.at += 1;
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.at += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        out
    }

    /// A run of token octets (anything but blanks, `;`, `=`, `"` and `(`).
    fn token(&mut self) -> Vec<u8> {
        let start = self.at;
        while let Some(b) = self.peek() {
            if matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'=' | b'"' | b'(') {
                break;
            }
            self.at += 1;
        }
        self.bytes[start..self.at].to_vec()
    }

    /// Everything up to the next `;` outside quotes and comments, without blanks and
    /// comments; stops on the `;`.
    fn until_semicolon(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            match b {
                b';' => break,
                b'(' => self.comment(),
                b'"' => out.extend(self.quoted()),
                b' ' | b'\t' | b'\r' | b'\n' => self.at += 1,
                _ => {
                    out.push(b);
                    self.at += 1;
                }
            }
        }
        out
    }
}

/// RFC 2045 token: printable US-ASCII except blanks and tspecials.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

fn without_comments(value: &[u8]) -> Vec<u8> {
    let mut scanner = Scanner {
        bytes: value,
        at: 0,
    };
    let mut out = Vec::new();
    while let Some(b) = scanner.peek() {
        if b == b'(' {
            scanner.comment();
        } else {
            out.push(b);
            scanner.at += 1;
        }
    }
    out
}

/// RFC 2231 section 3: `name*0`, `name*1*`, ... become one parameter where the first
/// section was, named `name*` (value still encoded, sections without their own encoding
/// percent-encoded) if any section is extended, `name` otherwise.
fn merge_rfc2231(params: Params) -> Params {
    struct Group {
        slot: usize,
        sections: Vec<(u32, bool, Vec<u8>)>,
    }
    /// `name*N` or `name*N*`: the name, its section number and whether it is extended.
    fn section(name: &[u8]) -> Option<(&[u8], u32, bool)> {
        let (name, extended) = match name.strip_suffix(b"*") {
            Some(stripped) => (stripped, true),
            None => (name, false),
        };
        let star = name.iter().rposition(|&b| b == b'*')?;
        let number = std::str::from_utf8(&name[star + 1..]).ok()?.parse().ok()?;
        Some((&name[..star], number, extended))
    }

    if !params.iter().any(|(name, _)| section(name).is_some()) {
        return params;
    }
    let mut out: Params = Vec::with_capacity(params.len());
    let mut groups: Vec<Group> = Vec::new();
    // Looked up by name: a hostile header may hold many thousand parameters.
    let mut by_name: HashMap<Vec<u8>, usize> = HashMap::new();
    for (name, value) in params {
        let Some((base, number, extended)) = section(&name) else {
            out.push((name, value));
            continue;
        };
        let group = *by_name.entry(base.to_ascii_lowercase()).or_insert_with(|| {
            out.push((base.to_vec(), Vec::new()));
            groups.push(Group {
                slot: out.len() - 1,
                sections: Vec::new(),
            });
            groups.len() - 1
        });
        groups[group].sections.push((number, extended, value));
    }
    for mut group in groups {
        // Stable: of two sections with one number, the first stays.
        group.sections.sort_by_key(|(number, _, _)| *number);
        group.sections.dedup_by_key(|(number, _, _)| *number);
        let extended = group.sections.iter().any(|(_, extended, _)| *extended);
        let mut value = Vec::new();
        for (_, section_extended, part) in group.sections {
            if extended && !section_extended {
                percent_encode(&part, &mut value);
            } else {
                value.extend(part);
            }
        }
        let (name, slot) = &mut out[group.slot];
        if extended {
            name.push(b'*');
        }
        *slot = value;
    }
    out
}

fn percent_encode(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b);
        } else {
            out.extend([b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(params: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
        params
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn content_type_with_quoted_and_commented_params() {
        let block = b"Content-Type: Text/HTML (c) ; charset=\"utf\\\"8\" (x);\r\n format = flowed;bad\r\n\r\n";
        let content_type = ContentType::of(block, false);
        assert_eq!(content_type.kind, "text");
        assert_eq!(content_type.subtype, "html");
        assert_eq!(
            pairs(&content_type.params),
            [
                ("charset".into(), "utf\"8".into()),
                ("format".into(), "flowed".into())
            ]
        );
    }

    #[test]
    fn defaults() {
        assert_eq!(ContentType::of(b"\r\n", false), ContentType::default_text());
        assert_eq!(
            ContentType::of(b"Content-Type: text\r\n\r\n", false),
            ContentType::default_text()
        );
        assert_eq!(
            ContentType::of(b"\r\n", true),
            ContentType::default_message()
        );
        assert_eq!(
            transfer_encoding(b"Content-Transfer-Encoding: ?bad\r\n"),
            "7BIT"
        );
        assert_eq!(
            transfer_encoding(b"Content-Transfer-Encoding: base64 (x)\r\n"),
            "BASE64"
        );
    }

    #[test]
    fn rfc2231_sections_are_merged() {
        let block = b"Content-Disposition: attachment; filename*1=\" b\"; size=3;\r\n filename*0*=utf-8''%C3%A9; title*0=a; TITLE*1=b\r\n";
        let (kind, params) = disposition(block).unwrap();
        assert_eq!(kind, b"attachment");
        assert_eq!(
            pairs(&params),
            [
                ("filename*".into(), "utf-8''%C3%A9%20b".into()),
                ("size".into(), "3".into()),
                ("title".into(), "ab".into()),
            ]
        );
    }

    #[test]
    fn languages_are_listed() {
        assert_eq!(
            languages(b"Content-Language: en (x), fi,,se\r\n"),
            [&b"en"[..], b"fi", b"se"]
        );
        assert!(languages(b"X: y\r\n").is_empty());
    }
}
