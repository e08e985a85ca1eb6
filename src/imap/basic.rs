//! Commands that touch no mailbox and need no login (CAPABILITY, LOGOUT; ID has its own
//! module), and the small authenticated-state ones (ENABLE, NAMESPACE).

use imap_codec::imap_types::core::{IString, QuotedChar, Tag};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::namespace::Namespace;
use imap_codec::imap_types::response::{Data, StatusKind};

use super::response;
use super::session::{Flow, ImapSession};
use crate::auth::Authenticator;
use crate::close_reason::CloseReason;
use crate::session::State;
use crate::store::Mailstore;
use crate::wire::bye;

/// The capability ENABLE turns on.
const IMAP4REV2: &str = "IMAP4rev2";

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

    /// RFC 5161: IMAP4rev2 (RFC 9051), CONDSTORE and QRESYNC (RFC 7162) can be enabled;
    /// `* ENABLED` lists what this command switched on, and is empty otherwise. Valid only
    /// before a mailbox is selected (section 3.1), so a selected mailbox never changes its
    /// rules.
    pub(super) fn enable(&mut self, tag: &Tag<'static>, wanted: &[CapabilityEnable<'_>]) -> Flow {
        if self.selected.is_some() {
            return self.bad(tag, "ENABLE is only valid before a mailbox is selected");
        }
        let mut enabled = Vec::new();
        let rev2_offered = !self.settings.is_hidden(IMAP4REV2);
        if !self.rev2
            && rev2_offered
            && wanted
                .iter()
                .any(|c| c.to_string().eq_ignore_ascii_case(IMAP4REV2))
        {
            self.rev2 = true;
            enabled.push(CapabilityEnable::try_from(IMAP4REV2).expect("an atom"));
        }
        let before = self.resync;
        for capability in wanted {
            enabled.extend(self.enable_resync(capability, before));
        }
        response::data(
            self.channel.out(),
            Data::Enabled {
                capabilities: enabled,
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
