//! ID (RFC 2971): the client says what it is, the server answers in kind. Valid in every
//! state, before login included.
//!
//! RFC 2971 section 3.3 bounds what a client may send: at most 30 field-value pairs, fields
//! of at most 30 octets, values of at most 1024. Every ID within those bounds is taken
//! whole, before login as after: its own size cap ([`MAX_ID_COMMAND_LEN`]) replaces the line
//! and literal caps for this one command. An ID beyond them has invalid arguments, which
//! section 3.1 answers `BAD`; it is answered so, with the bound it broke, rather than cut
//! down silently.

use imap_codec::imap_types::core::{IString, NString, Tag};
use imap_codec::imap_types::response::Data;

use super::response;
use super::session::{Flow, ImapSession};
use crate::auth::Authenticator;
use crate::events::SessionEvent;
use crate::store::Mailstore;
use crate::wire::clean_line;

/// RFC 2971 section 3.3.
const MAX_PAIRS: usize = 30;
const MAX_FIELD_LEN: usize = 30;
const MAX_VALUE_LEN: usize = 1024;

/// The most bytes a string of `octets` octets takes on the wire: quoted with every octet
/// escaped (`"\"\"..."`). A literal (`{1024}` CRLF and the octets) is always shorter.
const fn longest_string(octets: usize) -> usize {
    2 + 2 * octets
}

/// Room for the tag, `ID (` and `)`: a tag longer than about 1 KiB is no client's.
const TAG_AND_KEYWORD: usize = 1024;

/// The most one ID command may hold on the wire, its lines and literals together, in every
/// state: any ID within RFC 2971's bounds fits, however its strings are written (64,444
/// bytes, 30 pairs of the longest strings with the blanks between them).
///
/// This is what an ID may cost a client that has not logged in, where every other command is
/// held to the line cap and a small literal cap: a few tens of KiB more, read into memory
/// while the command arrives and freed once it is answered. A longer ID line is answered at
/// once, as any overlong line is (before login, with `* BYE`).
pub(super) const MAX_ID_COMMAND_LEN: usize = TAG_AND_KEYWORD
    + MAX_PAIRS * (longest_string(MAX_FIELD_LEN) + 1 + longest_string(MAX_VALUE_LEN) + 1);

/// The most literals one ID may carry: each of its strings may be one.
pub(super) const MAX_ID_LITERALS: usize = 2 * MAX_PAIRS;

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// RFC 2971: record the client's identification where layers can read it, tell them, and
    /// answer with the server's.
    pub(super) async fn id(
        &mut self,
        tag: &Tag<'static>,
        parameters: Option<Vec<(IString<'static>, NString<'static>)>>,
    ) -> Flow {
        let parameters = parameters.unwrap_or_default();
        if let Err(problem) = within_bounds(&parameters) {
            return self.bad(tag, problem);
        }
        let fields = client_id_fields(parameters);
        self.session.set_client_id(fields.clone());
        if let Err(reason) = self
            .notify(SessionEvent::ClientId { fields: &fields })
            .await
        {
            return Flow::Close(reason);
        }
        let ours = (
            IString::try_from("name").expect("a valid string"),
            NString::try_from("tower-mail").expect("a valid string"),
        );
        response::data(
            self.channel.out(),
            Data::Id {
                parameters: Some(vec![ours]),
            },
        );
        self.ok(tag, None, "ID completed")
    }
}

/// Whether the pairs keep RFC 2971 section 3.3's bounds; if not, the one they break.
fn within_bounds(parameters: &[(IString<'_>, NString<'_>)]) -> Result<(), &'static str> {
    if parameters.len() > MAX_PAIRS {
        return Err("ID takes at most 30 field-value pairs (RFC 2971)");
    }
    for (field, value) in parameters {
        if field.as_ref().len() > MAX_FIELD_LEN {
            return Err("ID fields are at most 30 octets (RFC 2971)");
        }
        if value
            .0
            .as_ref()
            .is_some_and(|value| value.as_ref().len() > MAX_VALUE_LEN)
        {
            return Err("ID values are at most 1024 octets (RFC 2971)");
        }
    }
    Ok(())
}

/// The ID's pairs as text without control characters (layers log them). Pairs whose value
/// is NIL carry no information and are left out.
fn client_id_fields(parameters: Vec<(IString<'_>, NString<'_>)>) -> Vec<(String, String)> {
    parameters
        .into_iter()
        .filter_map(|(field, value)| {
            let value = value.into_option()?;
            Some((
                printable(&field.into_inner(), MAX_FIELD_LEN),
                printable(&value, MAX_VALUE_LEN),
            ))
        })
        .collect()
}

/// `bytes` as UTF-8 (lossily), cleaned to one line of at most `max` bytes (a replacement
/// character takes three bytes, so a lossy field could otherwise grow past its bound).
fn printable(bytes: &[u8], max: usize) -> String {
    clean_line(&String::from_utf8_lossy(bytes), max).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(field: &str, value: Option<&str>) -> (IString<'static>, NString<'static>) {
        (
            IString::try_from(field.to_owned()).unwrap(),
            value.map_or(NString(None), |value| {
                NString::try_from(value.to_owned()).unwrap()
            }),
        )
    }

    #[test]
    fn fields_are_printable_and_nil_values_left_out() {
        let fields = client_id_fields(vec![
            pair("name", Some("Mail\u{7}App")),
            pair("os", None),
            pair("version", Some("1.0")),
        ]);
        assert_eq!(
            fields,
            [
                ("name".to_owned(), "MailApp".to_owned()),
                ("version".to_owned(), "1.0".to_owned())
            ]
        );
    }

    #[test]
    fn the_largest_id_rfc_2971_allows_is_taken_and_one_octet_more_is_not() {
        let field = |i: usize| format!("{i:0>30}");
        let value = "v".repeat(MAX_VALUE_LEN);
        let largest: Vec<_> = (0..MAX_PAIRS)
            .map(|i| pair(&field(i), Some(&value)))
            .collect();
        assert_eq!(within_bounds(&largest), Ok(()));
        assert_eq!(client_id_fields(largest).len(), MAX_PAIRS);

        let mut too_many: Vec<_> = (0..=MAX_PAIRS).map(|i| pair(&field(i), None)).collect();
        assert!(
            within_bounds(&too_many)
                .unwrap_err()
                .contains("30 field-value pairs")
        );
        too_many.truncate(1);
        too_many.push(pair(&"f".repeat(MAX_FIELD_LEN + 1), None));
        assert!(
            within_bounds(&too_many)
                .unwrap_err()
                .contains("fields are at most 30")
        );
        let long_value = "v".repeat(MAX_VALUE_LEN + 1);
        let too_long = [pair("name", Some(&long_value))];
        assert!(
            within_bounds(&too_long)
                .unwrap_err()
                .contains("1024 octets")
        );
    }
}
