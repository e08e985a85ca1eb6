//! A message's content as the text keys of SEARCH see it: decoded header values, the
//! addresses of the address fields, decoded text of the body parts, and the Date header's
//! calendar date.

use std::borrow::Cow;
use std::cell::OnceCell;

use chrono::NaiveDate;
use mail_parser::decoders::html::html_to_text;
use mail_parser::parsers::MessageStream;
use mail_parser::{Header, HeaderName, HeaderValue, Message, MessageParser, PartType};

use super::addresses::address_text;

/// Case folding for substring matching: Unicode lowercase rather than ASCII, so that a
/// client's `GRÜN` finds `grün`.
///
/// Character by character, unlike `str::to_lowercase`, which lowers a word-final `Σ` to `ς`
/// and so depends on context: a needle must fold the same alone as inside a longer text.
/// For the same reason `ς` itself is folded to `σ`.
pub(super) fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect()
}

/// The content of one message, parsed on first use and then shared by every key that looks
/// into it, so that `OR (SUBJECT a) (NOT BODY b)` costs one parse, not two.
pub(super) struct Content<'a> {
    raw: Option<&'a [u8]>,
    message: OnceCell<Option<Message<'a>>>,
    headers: OnceCell<Vec<HeaderLine>>,
    addresses: OnceCell<Vec<AddressField>>,
    body: OnceCell<Vec<String>>,
}

/// One top-level address field as the address keys see it.
struct AddressField {
    /// `From`, `To`, `Cc` or `Bcc`, as named in [`ADDRESS_FIELDS`].
    name: &'static str,
    /// The folded text of its addresses (see [`address_text`]).
    text: String,
}

/// The fields the address keys of SEARCH look in.
const ADDRESS_FIELDS: [&str; 4] = ["From", "To", "Cc", "Bcc"];

/// One top-level header, decoded and folded.
struct HeaderLine {
    /// The field name as written; compared ASCII-case-insensitively.
    name: String,
    /// `name: value`, folded: TEXT searches the whole line, HEADER only the value.
    line: String,
    /// Where the value starts in `line`.
    value_start: usize,
}

impl<'a> Content<'a> {
    pub(super) fn new(raw: Option<&'a [u8]>) -> Self {
        Content {
            raw,
            message: OnceCell::new(),
            headers: OnceCell::new(),
            addresses: OnceCell::new(),
            body: OnceCell::new(),
        }
    }

    /// The parsed message, or `None` when there are no bytes or they hold no header at all;
    /// then no text key matches.
    fn message(&self) -> Option<&Message<'a>> {
        self.message
            .get_or_init(|| self.raw.and_then(|raw| MessageParser::new().parse(raw)))
            .as_ref()
    }

    /// Whether a header named `name` (any of them, if repeated) contains the folded
    /// `needle` in its decoded value; an empty needle matches any message with the header.
    pub(super) fn header_contains(&self, name: &str, needle: &str) -> bool {
        self.headers().iter().any(|header| {
            header.name.eq_ignore_ascii_case(name)
                && header.line[header.value_start..].contains(needle)
        })
    }

    /// Whether an address field named `name` (`From`, `To`, `Cc` or `Bcc`; any of them, if
    /// repeated) contains the folded `needle` in the text of its addresses; an empty needle
    /// matches any message with the field.
    pub(super) fn address_contains(&self, name: &str, needle: &str) -> bool {
        let fields = self.addresses.get_or_init(|| {
            let Some(message) = self.message() else {
                return Vec::new();
            };
            root_headers(message)
                .iter()
                .filter_map(|header| {
                    let name = ADDRESS_FIELDS
                        .into_iter()
                        .find(|field| header.name.as_str().eq_ignore_ascii_case(field))?;
                    let text = address_text(raw_value(&message.raw_message, header));
                    Some(AddressField { name, text })
                })
                .collect()
        });
        fields
            .iter()
            .any(|field| field.name.eq_ignore_ascii_case(name) && field.text.contains(needle))
    }

    /// Whether any header line (name and decoded value) contains the folded `needle`.
    pub(super) fn headers_contain(&self, needle: &str) -> bool {
        self.headers()
            .iter()
            .any(|header| header.line.contains(needle))
    }

    /// Whether the decoded text of any text part contains the folded `needle`.
    pub(super) fn body_contains(&self, needle: &str) -> bool {
        self.body
            .get_or_init(|| {
                let mut texts = Vec::new();
                if let Some(message) = self.message() {
                    body_texts(message, &mut texts);
                }
                texts
            })
            .iter()
            .any(|text| text.contains(needle))
    }

    /// The date of the first parsable Date header, as written: RFC 3501 has SENT* ignore
    /// the time and the zone, so `Mon, 1 Jan 2024 23:30 -0800` was sent on January 1st.
    pub(super) fn sent_date(&self) -> Option<NaiveDate> {
        let message = self.message()?;
        root_headers(message)
            .iter()
            .filter(|header| header.name == HeaderName::Date)
            .find_map(|header| match &header.value {
                HeaderValue::DateTime(date) => NaiveDate::from_ymd_opt(
                    i32::from(date.year),
                    u32::from(date.month),
                    u32::from(date.day),
                ),
                _ => None,
            })
    }

    fn headers(&self) -> &[HeaderLine] {
        self.headers.get_or_init(|| {
            self.message()
                .map(|message| header_lines(message).collect())
                .unwrap_or_default()
        })
    }
}

fn root_headers<'m, 'a>(message: &'m Message<'a>) -> &'m [Header<'a>] {
    message
        .parts
        .first()
        .map_or(&[], |part| part.headers.as_slice())
}

/// The top-level headers of `message`, decoded from their raw bytes.
///
/// Decoded again rather than taken from mail-parser's values because those are structured
/// by header (addresses, dates, content types): SEARCH wants the text as written, with
/// encoded words (RFC 2047) decoded and folding undone, whatever the header.
fn header_lines<'m>(message: &'m Message<'_>) -> impl Iterator<Item = HeaderLine> + 'm {
    root_headers(message).iter().map(|header| {
        let name = header.name.as_str().to_owned();
        let mut line = fold(&name);
        line.push_str(": ");
        let value_start = line.len();
        line.push_str(&fold(&decoded_value(&message.raw_message, header)));
        HeaderLine {
            name,
            line,
            value_start,
        }
    })
}

/// A header's value as text: unfolded, with encoded words decoded.
fn decoded_value(raw: &[u8], header: &Header<'_>) -> String {
    decode_words(raw_value(raw, header))
}

/// A header's value as stored, folding included; empty if the offsets are out of range.
fn raw_value<'r>(raw: &'r [u8], header: &Header<'_>) -> &'r [u8] {
    let range = header.offset_start as usize..header.offset_end as usize;
    raw.get(range).unwrap_or_default()
}

/// Header text as UTF-8, unfolded, with its encoded words (RFC 2047) decoded.
pub(in crate::imap) fn decode_words(bytes: &[u8]) -> String {
    // The decoder returns nothing for a value that is not ended by a line break, as the
    // last header of a message without a body may be.
    let bytes: Cow<'_, [u8]> = if bytes.ends_with(b"\n") {
        Cow::Borrowed(bytes)
    } else {
        Cow::Owned([bytes, b"\n"].concat())
    };
    match MessageStream::new(&bytes).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

/// The folded text of every text part of `message`, transfer-decoded and converted to
/// UTF-8 by mail-parser, including the headers and text of attached messages, which are
/// part of the body as sent.
fn body_texts(message: &Message<'_>, texts: &mut Vec<String>) {
    for part in &message.parts {
        match &part.body {
            PartType::Text(text) => texts.push(fold(text)),
            // The markup as sent, and the text a reader sees (entities decoded, tags gone),
            // so that both `<b>` and `gr&uuml;n` are found as the client expects.
            PartType::Html(html) => {
                texts.push(fold(html));
                texts.push(fold(&html_to_text(html)));
            }
            PartType::Message(attached) => {
                texts.extend(header_lines(attached).map(|header| header.line));
                body_texts(attached, texts);
            }
            PartType::Binary(_) | PartType::InlineBinary(_) | PartType::Multipart(_) => {}
        }
    }
}
