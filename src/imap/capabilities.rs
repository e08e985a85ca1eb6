//! The CAPABILITY list, as this session may use it, and the commands a withheld capability
//! takes away.

use std::sync::OnceLock;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::extensions::sort::SortKey;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::response::Capability;

use super::syntax::Extension;
use super::syntax::list::ListRequest;
use crate::auth::sasl::Offered;
use crate::connection::SessionSettings;

/// Where the session is, as far as the capability list depends on it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Situation {
    /// Before login: the login-related capabilities are listed only then.
    pub(super) unauthenticated: bool,
    /// A plaintext login would be accepted now (TLS is active, or plaintext is allowed).
    pub(super) plaintext_login: bool,
    /// STARTTLS is offered on this connection and TLS is not active yet.
    pub(super) starttls: bool,
    /// COMPRESS=DEFLATE is on.
    pub(super) compressing: bool,
    /// The SASL mechanisms AUTHENTICATE offers.
    pub(super) sasl: Offered,
}

/// The greeting line of a session whose layers changed neither the greeting nor the
/// capabilities, encoded once per service and situation. Listing and encoding some thirty
/// capabilities cost more instructions than the rest of a short connection's IMAP work.
#[derive(Default)]
pub(crate) struct Greetings([OnceLock<Box<[u8]>>; 4]);

impl Greetings {
    /// The greeting for `situation`, made by `encode` the first time. At the greeting only
    /// STARTTLS and plaintext logins vary: the session is not authenticated, not compressing,
    /// and offers the service's SASL mechanisms.
    pub(super) fn get(&self, situation: Situation, encode: impl FnOnce() -> Vec<u8>) -> &[u8] {
        debug_assert!(situation.unauthenticated && !situation.compressing);
        let slot = usize::from(situation.starttls) * 2 + usize::from(situation.plaintext_login);
        self.0[slot].get_or_init(|| encode().into_boxed_slice())
    }
}

/// Whether `settings` leave the greeting line as the service's configuration makes it.
pub(super) fn greeting_is_default(settings: &SessionSettings) -> bool {
    settings.greeting.is_none()
        && settings.hidden_capabilities.is_empty()
        && settings.extra_capabilities.is_empty()
}

/// What to advertise now.
///
/// RFC 9051 section 6.2.1: STARTTLS only while it can be used. RFC 3501 section 6.2.3:
/// LOGINDISABLED while LOGIN would be refused, and then no `AUTH=` mechanism (all follow
/// PLAIN's rule: see `auth::sasl`). IMAP4rev1 always comes
/// first and cannot be withheld; the rest may be withheld by `settings`, and a layer's extra
/// capabilities are added only if they are valid atoms, so none can inject a response.
pub(super) fn for_session(
    situation: Situation,
    settings: &SessionSettings,
) -> Vec1<Capability<'static>> {
    // IMAP4rev2 (RFC 9051) beside IMAP4rev1: a client gets rev2's behaviour only once it
    // sends ENABLE IMAP4rev2.
    let mut caps = vec!["IMAP4rev2"];
    if situation.unauthenticated {
        if situation.starttls {
            caps.push("STARTTLS");
        }
        if situation.plaintext_login {
            caps.extend(situation.sasl.imap_capabilities());
            caps.push("SASL-IR");
        } else {
            caps.push("LOGINDISABLED");
        }
    }
    // The extensions IMAP4rev2 folds in are listed too, for IMAP4rev1 clients; LITERAL- is
    // not: LITERAL+ is the larger promise, and IMAP4rev2 implies LITERAL- anyway.
    caps.extend([
        "LITERAL+",
        "BINARY",
        "ID",
        "ENABLE",
        "IDLE",
        "NAMESPACE",
        "UNSELECT",
        "UIDPLUS",
        "MOVE",
        "CHILDREN",
        "SPECIAL-USE",
        "ESEARCH",
        "SEARCHRES",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "STATUS=SIZE",
        "CONDSTORE",
        "QRESYNC",
    ]);
    // RFC 5256 and RFC 5957: after login, where SEARCH, whose criteria SORT takes, applies.
    if !situation.unauthenticated {
        caps.extend([
            "SORT",
            "SORT=DISPLAY",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
        ]);
    }
    // RFC 4978: after login (the command is `command-auth`), until it is on.
    if cfg!(feature = "compress") && !situation.unauthenticated && !situation.compressing {
        caps.push("COMPRESS=DEFLATE");
    }
    let ours = caps
        .into_iter()
        .filter(|cap| !withheld(settings, cap))
        .map(|cap| Capability::try_from(cap).expect("our capability names are atoms"));
    let extra = settings
        .extra_capabilities
        .iter()
        .filter_map(|cap| match Capability::try_from(cap.clone()) {
            Ok(cap) => Some(cap),
            Err(_) => {
                tracing::warn!(capability = %cap, "extra IMAP capability is not an atom; not advertised");
                None
            }
        });
    let mut all = vec![Capability::Imap4Rev1];
    all.extend(ours.chain(extra));
    Vec1::try_from(all).expect("IMAP4rev1 is always there")
}

/// Whether `settings` withhold our capability `cap`: by its first word, as
/// [`SessionSettings::is_hidden`] tells (`SORT` withholds `SORT=DISPLAY` too, `THREAD` every
/// `THREAD=`), or by what it builds on: QRESYNC on CONDSTORE (RFC 7162 section 3.2). A
/// capability with a value may also be withheld alone, by its whole name: `SORT=DISPLAY`
/// leaving SORT's other keys, `THREAD=REFERENCES` leaving ORDEREDSUBJECT.
pub(super) fn withheld(settings: &SessionSettings, cap: &str) -> bool {
    settings.is_hidden(cap)
        || (cap == "QRESYNC" && settings.is_hidden("CONDSTORE"))
        || (cap.contains('=')
            && settings
                .hidden_capabilities
                .iter()
                .any(|hidden| hidden.eq_ignore_ascii_case(cap)))
}

/// The capabilities a command depends on, for commands a layer may withhold: withholding any
/// of them makes the command unknown.
pub(super) fn of_command(body: &CommandBody<'_>) -> &'static [&'static str] {
    match body {
        CommandBody::StartTLS => &["STARTTLS"],
        CommandBody::Authenticate {
            initial_response: Some(_),
            ..
        } => &["AUTH", "SASL-IR"],
        CommandBody::Authenticate { .. } => &["AUTH"],
        CommandBody::Id { .. } => &["ID"],
        CommandBody::Enable { .. } => &["ENABLE"],
        CommandBody::Namespace => &["NAMESPACE"],
        CommandBody::Unselect => &["UNSELECT"],
        CommandBody::Idle => &["IDLE"],
        CommandBody::Move { .. } => &["MOVE"],
        CommandBody::ExpungeUid { .. } => &["UIDPLUS"],
        CommandBody::Compress { .. } => &["COMPRESS=DEFLATE"],
        CommandBody::Sort { sort_criteria, .. }
            if sort_criteria.as_ref().iter().any(|criterion| {
                matches!(criterion.key, SortKey::DisplayFrom | SortKey::DisplayTo)
            }) =>
        {
            &["SORT", "SORT=DISPLAY"]
        }
        CommandBody::Sort { .. } => &["SORT"],
        CommandBody::Thread { algorithm, .. } => match algorithm {
            ThreadingAlgorithm::OrderedSubject => &["THREAD=ORDEREDSUBJECT"],
            ThreadingAlgorithm::References => &["THREAD=REFERENCES"],
            ThreadingAlgorithm::Other(_) => &["THREAD"],
        },
        _ => &[],
    }
}

/// The capabilities the parts of a command `imap-codec` did not decode depend on.
pub(super) fn of_extension(extension: Extension) -> &'static [&'static str] {
    match (extension.search_return.is_some(), extension.saved_result) {
        (true, true) => &["ESEARCH", "SEARCHRES"],
        (true, false) => &["ESEARCH"],
        (false, true) => &["SEARCHRES"],
        (false, false) => &[],
    }
}

/// The capabilities an extended LIST depends on.
pub(super) fn of_list(request: &ListRequest) -> &'static [&'static str] {
    match request.return_status {
        Some(_) => &["LIST-EXTENDED", "LIST-STATUS"],
        None => &["LIST-EXTENDED"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(situation: Situation, settings: &SessionSettings) -> Vec<String> {
        for_session(situation, settings)
            .as_ref()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const BEFORE_TLS: Situation = Situation {
        unauthenticated: true,
        plaintext_login: false,
        starttls: true,
        compressing: false,
        sasl: Offered::DEFAULT,
    };

    #[test]
    fn login_capabilities_follow_tls() {
        let settings = SessionSettings::default();
        let before = names(BEFORE_TLS, &settings);
        assert_eq!(before[0], "IMAP4REV1");
        assert!(before.contains(&"STARTTLS".into()));
        assert!(before.contains(&"LOGINDISABLED".into()));
        assert!(!before.contains(&"AUTH=PLAIN".into()));
        let after = names(
            Situation {
                plaintext_login: true,
                starttls: false,
                ..BEFORE_TLS
            },
            &settings,
        );
        assert!(!after.contains(&"STARTTLS".into()));
        assert!(!after.contains(&"LOGINDISABLED".into()));
        assert!(after.contains(&"AUTH=PLAIN".into()));
        assert!(after.contains(&"AUTH=LOGIN".into()));
        let logged_in = names(
            Situation {
                unauthenticated: false,
                plaintext_login: true,
                starttls: false,
                compressing: false,
                sasl: Offered::DEFAULT,
            },
            &settings,
        );
        assert!(!logged_in.iter().any(|c| c.starts_with("AUTH=")));
    }

    #[test]
    fn settings_hide_and_add_but_cannot_inject() {
        let mut settings = SessionSettings::default();
        settings.hide_capability("ID");
        settings.hide_capability("IMAP4rev1");
        settings.extra_capabilities.push("XLIST".into());
        settings
            .extra_capabilities
            .push("X-EVIL\r\n* OK [ALERT] owned".into());
        let caps = names(BEFORE_TLS, &settings);
        assert_eq!(caps[0], "IMAP4REV1");
        assert!(!caps.contains(&"ID".into()));
        assert!(caps.contains(&"XLIST".into()));
        settings.hide_capability("CONDSTORE");
        let logged_in = Situation {
            unauthenticated: false,
            ..BEFORE_TLS
        };
        let caps = names(logged_in, &settings);
        assert!(!caps.contains(&"CONDSTORE".into()));
        assert!(!caps.contains(&"QRESYNC".into()), "it builds on CONDSTORE");
        assert!(!caps.iter().any(|c| c.contains("EVIL")));
    }

    fn sort_command(criteria: &str) -> CommandBody<'static> {
        command(&format!("a SORT ({criteria}) UTF-8 ALL\r\n"))
    }

    #[test]
    fn sort_after_login_and_withheld_with_its_commands() {
        let logged_in = Situation {
            unauthenticated: false,
            ..BEFORE_TLS
        };
        let mut settings = SessionSettings::default();
        assert!(!names(BEFORE_TLS, &settings).contains(&"SORT".into()));
        let caps = names(logged_in, &settings);
        assert!(caps.contains(&"SORT".into()) && caps.contains(&"SORT=DISPLAY".into()));

        let plain = sort_command("REVERSE DATE");
        let display = sort_command("DISPLAYFROM");
        let refused = |settings: &SessionSettings, body: &CommandBody<'_>| {
            of_command(body)
                .iter()
                .any(|capability| withheld(settings, capability))
        };
        settings.hide_capability("sort=display");
        let caps = names(logged_in, &settings);
        assert!(caps.contains(&"SORT".into()) && !caps.contains(&"SORT=DISPLAY".into()));
        assert!(!refused(&settings, &plain));
        assert!(
            refused(&settings, &display),
            "DISPLAYFROM needs SORT=DISPLAY"
        );

        let mut settings = SessionSettings::default();
        settings.hide_capability("SORT");
        let caps = names(logged_in, &settings);
        assert!(!caps.iter().any(|c| c.starts_with("SORT")), "{caps:?}");
        assert!(refused(&settings, &plain) && refused(&settings, &display));
    }

    fn command(line: &str) -> CommandBody<'static> {
        use imap_codec::CommandCodec;
        use imap_codec::decode::Decoder;
        use imap_codec::imap_types::IntoStatic;
        let (_, command) = CommandCodec::default().decode(line.as_bytes()).unwrap();
        command.into_static().body
    }

    #[test]
    fn thread_after_login_and_withheld_by_algorithm() {
        let logged_in = Situation {
            unauthenticated: false,
            ..BEFORE_TLS
        };
        let mut settings = SessionSettings::default();
        assert!(
            !names(BEFORE_TLS, &settings)
                .iter()
                .any(|c| c.starts_with("THREAD"))
        );
        let caps = names(logged_in, &settings);
        assert!(caps.contains(&"THREAD=ORDEREDSUBJECT".into()));
        assert!(caps.contains(&"THREAD=REFERENCES".into()));

        let ordered = command("a THREAD ORDEREDSUBJECT UTF-8 ALL\r\n");
        let references = command("a UID THREAD REFERENCES UTF-8 ALL\r\n");
        let unknown = command("a THREAD REFS UTF-8 ALL\r\n");
        let refused = |settings: &SessionSettings, body: &CommandBody<'_>| {
            of_command(body)
                .iter()
                .any(|capability| withheld(settings, capability))
        };
        settings.hide_capability("thread=references");
        let caps = names(logged_in, &settings);
        assert!(caps.contains(&"THREAD=ORDEREDSUBJECT".into()));
        assert!(!caps.contains(&"THREAD=REFERENCES".into()));
        assert!(!refused(&settings, &ordered) && !refused(&settings, &unknown));
        assert!(refused(&settings, &references));

        let mut settings = SessionSettings::default();
        settings.hide_capability("THREAD");
        let caps = names(logged_in, &settings);
        assert!(!caps.iter().any(|c| c.starts_with("THREAD")), "{caps:?}");
        assert!(refused(&settings, &ordered) && refused(&settings, &references));
        assert!(refused(&settings, &unknown), "no THREAD at all");
    }
}
