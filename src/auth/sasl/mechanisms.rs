//! [`Mechanisms`]: which SASL mechanisms a protocol service offers, and what the ones that
//! need more than the authentication service need.

use std::fmt;

#[cfg(feature = "scram")]
use tower::util::BoxCloneSyncService;
#[cfg(feature = "scram")]
use tower_service::Service;

#[cfg(feature = "scram")]
use crate::auth::{AuthError, ScramLookup, ScramParameters};

/// The SCRAM look-up service, its type erased.
#[cfg(feature = "scram")]
pub(super) type LookupService = BoxCloneSyncService<ScramLookup, ScramParameters, AuthError>;

/// The SASL mechanisms an IMAP or POP3 service offers (`AUTH=` capabilities, POP3's `SASL`
/// capability and `AUTH` listing) and accepts. Set in
/// [`ImapConfig::sasl`](crate::imap::ImapConfig::sasl) and
/// [`Pop3Config::sasl`](crate::pop3::Pop3Config::sasl).
///
/// The default is PLAIN and LOGIN. SCRAM-SHA-256 needs a look-up of the user's salt
/// ([`scram`](Mechanisms::scram)); OAUTHBEARER and XOAUTH2 need an authentication service
/// that checks tokens, such as [`Tokens`](crate::auth::Tokens) (switched on with
/// [`oauth`](Mechanisms::oauth)). Like PLAIN, every mechanism is offered only where a
/// plaintext login is allowed (see [`sasl`](super#without-tls)).
///
/// ```
/// use tower_mail::auth::PasswdFile;
/// use tower_mail::auth::sasl::Mechanisms;
/// use tower_mail::imap::ImapConfig;
///
/// let users = PasswdFile::parse("alice:{PLAIN}wonderland\n");
/// let mut config = ImapConfig::default();
/// assert_eq!(config.sasl.names(), ["PLAIN", "LOGIN"]);
///
/// config.sasl = Mechanisms::new().scram(users.clone()).oauth();
/// assert_eq!(config.sasl.names(), ["PLAIN", "LOGIN", "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2"]);
/// assert_eq!(Mechanisms::new().without_login().names(), ["PLAIN"]);
/// ```
#[derive(Clone)]
pub struct Mechanisms {
    login: bool,
    oauth: bool,
    #[cfg(feature = "scram")]
    scram: Option<LookupService>,
}

impl Mechanisms {
    /// PLAIN and LOGIN.
    pub fn new() -> Mechanisms {
        Mechanisms {
            login: true,
            oauth: false,
            #[cfg(feature = "scram")]
            scram: None,
        }
    }

    /// Without LOGIN: only the clients that cannot do PLAIN use it (Outlook's older versions).
    pub fn without_login(mut self) -> Mechanisms {
        self.login = false;
        self
    }

    /// With SCRAM-SHA-256: `lookup` gives each user's salt and iteration count (and made-up
    /// ones for unknown users; see [`ScramParameters`]), the authentication service checks
    /// the proof ([`Secret::Scram`](crate::auth::Secret::Scram)). A
    /// [`PasswdFile`](crate::auth::PasswdFile) is both.
    ///
    /// Clients that choose the strongest mechanism offered (those built on Cyrus SASL, such as
    /// mbsync) choose SCRAM, and then fail for users whose password is stored in a form SCRAM
    /// cannot use (any hash but `{SCRAM-SHA-256}`): offer it only when your users' entries
    /// allow it.
    #[cfg(feature = "scram")]
    pub fn scram<S>(mut self, lookup: S) -> Mechanisms
    where
        S: Service<ScramLookup, Response = ScramParameters, Error = AuthError>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.scram = Some(BoxCloneSyncService::new(lookup));
        self
    }

    /// With OAUTHBEARER (RFC 7628) and XOAUTH2: the bearer token reaches the authentication
    /// service as [`Secret::Token`](crate::auth::Secret::Token), which it must be able to check
    /// (wrap it in [`Tokens`](crate::auth::Tokens)).
    pub fn oauth(mut self) -> Mechanisms {
        self.oauth = true;
        self
    }

    /// The mechanisms' names, as advertised.
    pub fn names(&self) -> Vec<&'static str> {
        self.offered().names().collect()
    }

    /// What the capability lists need: which mechanisms, without the look-up service.
    pub(crate) fn offered(&self) -> Offered {
        Offered {
            login: self.login,
            oauth: self.oauth,
            #[cfg(feature = "scram")]
            scram: self.scram.is_some(),
            #[cfg(not(feature = "scram"))]
            scram: false,
        }
    }

    #[cfg(feature = "scram")]
    pub(super) fn scram_lookup(&self) -> Option<&LookupService> {
        self.scram.as_ref()
    }
}

impl Default for Mechanisms {
    fn default() -> Mechanisms {
        Mechanisms::new()
    }
}

impl fmt::Debug for Mechanisms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Which mechanisms are offered: a small copy of [`Mechanisms`] for capability lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offered {
    login: bool,
    scram: bool,
    oauth: bool,
}

/// Every mechanism: its name, and its IMAP capability. In the order they are advertised, the
/// plaintext ones first, as most servers list them.
const ALL: [(&str, &str); 5] = [
    ("PLAIN", "AUTH=PLAIN"),
    ("LOGIN", "AUTH=LOGIN"),
    ("SCRAM-SHA-256", "AUTH=SCRAM-SHA-256"),
    ("OAUTHBEARER", "AUTH=OAUTHBEARER"),
    ("XOAUTH2", "AUTH=XOAUTH2"),
];

impl Offered {
    /// What [`Mechanisms::new`] offers: PLAIN and LOGIN.
    #[cfg(test)]
    pub(crate) const DEFAULT: Offered = Offered {
        login: true,
        scram: false,
        oauth: false,
    };

    /// The offered ones of [`ALL`].
    fn entries(self) -> impl Iterator<Item = (&'static str, &'static str)> {
        let offered = [true, self.login, self.scram, self.oauth, self.oauth];
        ALL.into_iter()
            .zip(offered)
            .filter_map(|(entry, offered)| offered.then_some(entry))
    }

    /// The mechanisms' names.
    pub(crate) fn names(self) -> impl Iterator<Item = &'static str> {
        self.entries().map(|(name, _)| name)
    }

    /// IMAP's capabilities for them: `AUTH=PLAIN` and so on.
    #[cfg(feature = "imap")]
    pub(crate) fn imap_capabilities(self) -> impl Iterator<Item = &'static str> {
        self.entries().map(|(_, capability)| capability)
    }

    /// Whether `name` (any case) is one of them.
    pub(crate) fn has(self, name: &str) -> bool {
        self.names()
            .any(|offered| offered.eq_ignore_ascii_case(name))
    }
}
