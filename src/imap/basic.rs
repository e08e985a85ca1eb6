//! Commands that touch no mailbox and need no login (CAPABILITY, LOGOUT, ID), and the small
//! authenticated-state ones (ENABLE, NAMESPACE).

use imap_codec::imap_types::core::{IString, NString, QuotedChar, Tag};
use imap_codec::imap_types::extensions::namespace::Namespace;
use imap_codec::imap_types::response::{Data, StatusKind};

use super::response;
use super::session::{Flow, ImapSession};
use crate::auth::Authenticator;
use crate::close_reason::CloseReason;
use crate::events::SessionEvent;
use crate::session::State;
use crate::store::Mailstore;
use crate::wire::{bye, clean_line};

/// RFC 2971 section 3.3: at most 30 pairs, fields of at most 30 octets, values of at most
/// 1024. Longer ones are cut rather than refused: the ID is informational.
const MAX_ID_FIELDS: usize = 30;
const MAX_ID_FIELD_LEN: usize = 30;
const MAX_ID_VALUE_LEN: usize = 1024;

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    pub(super) fn capability(&mut self, tag: &Tag<'static>) -> Flow {
        let capabilities = self.capabilities();
        response::data(self.channel.out(), Data::Capability(capabilities));
        self.ok(tag, None, "CAPABILITY completed")
    }

    /// RFC 3501 section 6.1.3: `* BYE` first, then the tagged OK.
    pub(super) fn logout(&mut self, tag: &Tag<'static>) -> Flow {
        bye(self.channel.out(), "Logging out");
        response::tagged(
            self.channel.out(),
            tag,
            StatusKind::Ok,
            None,
            "LOGOUT completed",
        );
        self.session.set_state(State::Logout);
        Flow::Close(CloseReason::Logout)
    }

    /// RFC 2971: record the client's identification where layers can read it, and tell them.
    pub(super) async fn id(
        &mut self,
        tag: &Tag<'static>,
        parameters: Option<Vec<(IString<'static>, NString<'static>)>>,
    ) -> Flow {
        let fields = client_id_fields(parameters.unwrap_or_default());
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

    /// RFC 5161: nothing can be enabled yet, so the answer is an empty `* ENABLED`. Valid only
    /// before a mailbox is selected (section 3.1).
    pub(super) fn enable(&mut self, tag: &Tag<'static>) -> Flow {
        if self.selected.is_some() {
            return self.bad(tag, "ENABLE is only valid before a mailbox is selected");
        }
        response::data(
            self.channel.out(),
            Data::Enabled {
                capabilities: Vec::new(),
            },
        );
        self.ok(tag, None, "ENABLE completed")
    }

    /// RFC 2342: one personal namespace, the user's own tree, with `/` as the separator.
    pub(super) fn namespace(&mut self, tag: &Tag<'static>) -> Flow {
        let personal = Namespace::new(
            IString::try_from("").expect("an empty quoted string"),
            Some(QuotedChar::try_from('/').expect("a valid delimiter")),
        );
        response::data(
            self.channel.out(),
            Data::Namespace {
                personal: vec![personal],
                other: Vec::new(),
                shared: Vec::new(),
            },
        );
        self.ok(tag, None, "NAMESPACE completed")
    }
}

/// The ID's pairs as text, bounded and without control characters (layers log them). Pairs
/// whose value is NIL carry no information and are left out.
fn client_id_fields(parameters: Vec<(IString<'_>, NString<'_>)>) -> Vec<(String, String)> {
    parameters
        .into_iter()
        .take(MAX_ID_FIELDS)
        .filter_map(|(field, value)| {
            let value = value.into_option()?;
            Some((
                printable(&field.into_inner(), MAX_ID_FIELD_LEN),
                printable(&value, MAX_ID_VALUE_LEN),
            ))
        })
        .collect()
}

/// `bytes` as UTF-8 (lossily), cleaned to one line of at most `max` bytes.
fn printable(bytes: &[u8], max: usize) -> String {
    clean_line(&String::from_utf8_lossy(bytes), max).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_fields_are_bounded_and_printable() {
        let long = "v".repeat(2000);
        let parameters = vec![
            (
                IString::try_from("name").unwrap(),
                NString::try_from("Mail\u{7}App").unwrap(),
            ),
            (IString::try_from("os").unwrap(), NString(None)),
            (
                IString::try_from("version").unwrap(),
                NString::try_from(long.as_str()).unwrap(),
            ),
        ];
        let fields = client_id_fields(parameters);
        assert_eq!(fields[0], ("name".into(), "MailApp".into()));
        assert_eq!(fields[1].0, "version");
        assert_eq!(fields[1].1.len(), MAX_ID_VALUE_LEN);
        assert_eq!(fields.len(), 2);
    }
}
