//! The example server's settings: every key optional, defaults as in the design's
//! example-server.md.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub imap: Listeners,
    pub pop3: Listeners,
    pub tls: Option<Tls>,
    pub store: Store,
    pub auth: Auth,
    pub proxy: Proxy,
    pub metrics: Metrics,
    pub log: Log,
    pub limits: Limits,
    pub layers: Layers,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Listeners {
    /// Plain listener with STARTTLS/STLS; "" turns it off.
    pub listen: Option<String>,
    /// Implicit-TLS listener; "" turns it off.
    pub tls_listen: Option<String>,
}

impl Listeners {
    /// The plain and implicit-TLS addresses, with the protocol's defaults for absent keys and
    /// `None` for listeners turned off.
    pub fn addresses(&self, plain: &str, tls: &str) -> (Option<String>, Option<String>) {
        let pick = |value: &Option<String>, default: &str| {
            let value = value.as_deref().unwrap_or(default);
            (!value.is_empty()).then(|| value.to_owned())
        };
        (pick(&self.listen, plain), pick(&self.tls_listen, tls))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Store {
    pub maildir: PathBuf,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            maildir: PathBuf::from("./data/maildir"),
        }
    }
}

/// Logins: where users are, and the policies around every password check (IMAP and POP3
/// share one authentication stack, so every count here covers both protocols).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// Dovecot passwd-file lines: `user:{SCHEME}hash`, with the schemes Dovecot installations
    /// hold (ARGON2ID, BLF-CRYPT, SHA512-CRYPT, SSHA512, PBKDF2, …; `PasswdFile` lists them).
    /// Read again when it changes (see `passwd_check_ms`) and on SIGHUP; sessions stay.
    pub passwd_file: PathBuf,
    /// A login looks at `passwd_file` (one `stat`) if the last look is this many milliseconds
    /// old, and reads the file again if it changed. 0: at every login.
    pub passwd_check_ms: u64,
    /// LOGIN, USER/PASS and AUTH PLAIN before STARTTLS/STLS: `true`, `false`, or `"loopback"`
    /// (the default, Dovecot's `disable_plaintext_auth = yes`): only clients on a loopback
    /// address (after PROXY) may send a password in the clear. Refused: IMAP
    /// `NO [PRIVACYREQUIRED]` with LOGINDISABLED advertised, POP3 `-ERR [AUTH]` with no USER
    /// in CAPA. Implicit TLS and STARTTLS/STLS always allow logins.
    pub plaintext_without_tls: Plaintext,
    /// A failed login (wrong password or unknown user, the same) is answered after this many
    /// milliseconds; doubled for each recent failure (5 minutes) from the same address or for
    /// the same user name, up to `failure_delay_max_ms`. 0 turns the delay off.
    pub failure_delay_ms: u64,
    /// The longest failure delay.
    pub failure_delay_max_ms: u64,
    /// Sessions one user may have open at once, IMAP and POP3 together; one more login is
    /// refused with `NO [LIMIT]` / `-ERR [IN-USE]`. 0 = unlimited.
    pub max_sessions_per_user: u32,
    /// Password verifications computed at once (each may cost tens of MiB with Argon2); a
    /// login that waits `verification_queue_ms` for its turn fails with `NO [UNAVAILABLE]` /
    /// `-ERR [SYS/TEMP]`. 0 = one fewer than the cores, at least 1, so that a core stays free
    /// for the connections.
    pub max_concurrent_verifications: usize,
    /// How long a login waits for its turn to verify before it fails as temporarily
    /// unavailable.
    pub verification_queue_ms: u64,
    /// `redis://...` (or `redis+cluster://h1:p1,h2:p2`): count each user's sessions and the
    /// failed logins behind the failure delay and auto-ban in Redis, shared by every server
    /// that uses it, so `max_sessions_per_user` holds across the fleet. "" = in this process.
    /// Read at start. When Redis is down, failures are counted here, and `fail_open` decides
    /// about sessions.
    pub redis: String,
    /// When the shared session counts cannot be read (Redis down, or slower than a second):
    /// let the login in uncounted (true), or refuse it as temporarily unavailable
    /// (`NO [UNAVAILABLE]` / `-ERR [SYS/TEMP]`, false).
    pub fail_open: bool,
    /// Offer SASL SCRAM-SHA-256 besides PLAIN and LOGIN. It serves users whose passwd-file
    /// entry is `{SCRAM-SHA-256}` (`doveadm pw -s SCRAM-SHA-256`) or `{PLAIN}`; others fail
    /// with it, and clients built on Cyrus SASL (mbsync) pick it when offered: off by default.
    pub scram: bool,
    /// A TEST token issuer for OAUTHBEARER and XOAUTH2: a file of `token user` lines, read at
    /// start. "" = no token mechanisms. A real deployment asks its OAuth provider instead
    /// (see `server/tokens.rs`).
    pub oauth_tokens: PathBuf,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            passwd_file: PathBuf::from("./data/users.passwd"),
            passwd_check_ms: 2000,
            plaintext_without_tls: Plaintext::Loopback,
            failure_delay_ms: 2000,
            failure_delay_max_ms: 15_000,
            max_sessions_per_user: 15,
            max_concurrent_verifications: 0,
            verification_queue_ms: 2000,
            redis: String::new(),
            fail_open: true,
            scram: false,
            oauth_tokens: PathBuf::new(),
        }
    }
}

/// Whether a password may travel without TLS: `true`, `false` or `"loopback"` in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Plaintext {
    /// `true`: from any client.
    Allowed,
    /// `false`: from none.
    Refused,
    /// `"loopback"`: only from loopback addresses (127.0.0.0/8, ::1).
    #[default]
    Loopback,
}

impl<'de> Deserialize<'de> for Plaintext {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Plaintext;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"true, false or "loopback""#)
            }
            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Plaintext, E> {
                Ok(match value {
                    true => Plaintext::Allowed,
                    false => Plaintext::Refused,
                })
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Plaintext, E> {
                match value {
                    "loopback" => Ok(Plaintext::Loopback),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Proxy {
    pub trusted: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    pub listen: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            listen: "127.0.0.1:9898".into(),
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    pub format: LogFormat,
}

/// Server-wide limits: beyond example-server.md, what operators expect to tune.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Sessions across all listeners; more are refused at once ("Too many connections").
    pub max_connections: usize,
    /// Connections the kernel queues for each listener before the server accepts them (capped
    /// by `net.core.somaxconn`); past it a burst's SYNs are dropped and clients retry a second
    /// later.
    pub listen_backlog: u32,
    /// How long shutdown waits for sessions to say goodbye.
    pub shutdown_grace_seconds: u64,
    /// POP3 idle timeout once logged in (RFC 1939: at least 600).
    pub pop3_idle_seconds: u64,
    /// How long a POP3 client may stay silent before it has logged in: a connection that
    /// never logs in costs a slot and gives nothing back.
    pub pop3_login_seconds: u64,
    /// The same for IMAP.
    pub imap_login_seconds: u64,
    /// How long a client may take in all to log in, however busy it keeps the session (NOOP
    /// after NOOP, a line trickled in): then it is told `Login timeout`. 0 = no deadline.
    pub login_deadline_seconds: u64,
    /// IMAP idle timeout once logged in (RFC 9051 section 5.4: at least 1800).
    pub imap_idle_seconds: u64,
    /// The largest message IMAP APPEND takes.
    pub imap_max_message_bytes: usize,
    /// The most literal bytes an IMAP command may carry before login (a LOGIN password). An
    /// APPEND, or a larger literal, is refused before the `+` continuation; a larger
    /// non-synchronizing literal (`{n+}`) ends the connection.
    pub max_unauthenticated_literal_bytes: usize,
    /// Connections still reading a PROXY header or in an implicit-TLS handshake, server-wide;
    /// past it new ones that need either are closed at once (`mail_setup_failures_total`
    /// with `reason="setup_cap"`).
    pub max_setup_connections: usize,
    /// The same per client address (trusted PROXY senders count only server-wide).
    pub max_setup_per_address: usize,
    /// Refused clients held at once for a refusal delay (`delay_ms` of a layer, a tarpit);
    /// past it refusals are answered at once.
    pub max_tarpitted: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            listen_backlog: tower_mail::server::DEFAULT_BACKLOG,
            shutdown_grace_seconds: 10,
            pop3_idle_seconds: 600,
            pop3_login_seconds: 60,
            imap_login_seconds: 60,
            login_deadline_seconds: 180,
            imap_idle_seconds: 30 * 60,
            imap_max_message_bytes: 50 * 1024 * 1024,
            max_unauthenticated_literal_bytes: 4096,
            max_setup_connections: 1024,
            max_setup_per_address: 16,
            max_tarpitted: 1024,
        }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config, String> {
        match path {
            None => Ok(Config::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
            }
        }
    }
}

/// The connection policies; SIGHUP re-reads them (lists, hours, texts; not shadow or delay).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Layers {
    /// Beyond example-server.md: on the implicit-TLS listeners, the address-only policies
    /// (`ip_block`, `rate_limit`, `time_window`, `auto_ban`, unless in shadow mode) decide
    /// before the TLS handshake, so a refused peer costs no handshake (`rate_limit` only
    /// peeks at the in-process counts, counting nothing; with `redis` it lets all through);
    /// it is closed without a word (TLS has not started, so it cannot be told why) and
    /// counted in `mail_setup_failures_total{reason="refused"}`. `false`: every peer gets the
    /// handshake, and refusals, with their text and tarpit delay, come from the stack inside
    /// TLS.
    pub refuse_before_tls_handshake: bool,
    pub ip_block: IpBlock,
    pub rate_limit: RateLimit,
    /// Absent: always open.
    pub time_window: Option<TimeWindow>,
    /// Absent: no automatic bans.
    pub auto_ban: Option<AutoBan>,
}

impl Default for Layers {
    fn default() -> Self {
        Layers {
            refuse_before_tls_handshake: true,
            ip_block: IpBlock::default(),
            rate_limit: RateLimit::default(),
            time_window: None,
            auto_ban: None,
        }
    }
}

/// How any policy layer applies its verdicts: beyond example-server.md, the issue's shadow
/// mode and delayed refusal.
#[derive(Debug, Deserialize, Default, Clone, Copy)]
#[serde(default, deny_unknown_fields)]
pub struct Mode {
    /// Log and count refusals but let connections in.
    pub shadow: bool,
    /// Hold refused clients this long before the refusal (a tarpit); 0 = answer at once.
    pub delay_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpBlock {
    pub deny: Vec<String>,
    pub allow: Vec<String>,
    /// Files with one CIDR per line (`#` comments), added to `deny` / `allow`.
    pub deny_file: Option<PathBuf>,
    pub allow_file: Option<PathBuf>,
    pub message: String,
    #[serde(flatten)]
    pub mode: Mode,
}

impl Default for IpBlock {
    fn default() -> Self {
        IpBlock {
            deny: Vec::new(),
            allow: Vec::new(),
            deny_file: None,
            allow_file: None,
            message: "IP address blocked".into(),
            mode: Mode::default(),
        }
    }
}

/// Per-address limits; SIGHUP applies new limits, texts and `fail_open` to new connections
/// (open ones keep their slots).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Open connections per address; 0 = unlimited.
    pub max_concurrent_per_ip: u32,
    /// New connections per address per window; 0 = unlimited.
    pub max_connections_per_ip: u32,
    pub window_seconds: u64,
    pub message: String,
    /// `redis://[user:password@]host[:port][/db]`: keep the counts in Redis, shared by every
    /// server that uses it with the same `redis_prefix`. "" = in this process. Read at start
    /// only, like `redis_prefix` and `redis_lease_seconds`: SIGHUP warns that a change waits
    /// for a restart. The server starts even when Redis is down; it connects on the first
    /// check and again after each failure.
    pub redis: String,
    /// Beyond example-server.md: prefix of the Redis keys (a fleet sharing limits uses one).
    pub redis_prefix: String,
    /// Beyond example-server.md: how long a connection counts in Redis after this server
    /// stops renewing it (a crash); renewed every third of it while open.
    pub redis_lease_seconds: u64,
    /// When Redis fails or does not answer within a second: let the connection in uncounted
    /// (true) or refuse it with a generic text (false).
    pub fail_open: bool,
    #[serde(flatten)]
    pub mode: Mode,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            max_concurrent_per_ip: 10,
            max_connections_per_ip: 0,
            window_seconds: 3600,
            message: "Too many connections from this IP".into(),
            redis: String::new(),
            redis_prefix: tower_mail_layers::rate_limit::REDIS_DEFAULT_PREFIX.into(),
            redis_lease_seconds: 60,
            fail_open: true,
            mode: Mode::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeWindow {
    pub timezone: String,
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
    pub message: String,
    /// Beyond example-server.md: the guide's second text, for days with no hours.
    pub closed_day_message: Option<String>,
    #[serde(flatten)]
    pub mode: Mode,
}

impl Default for TimeWindow {
    fn default() -> Self {
        TimeWindow {
            timezone: "UTC".into(),
            days: ["Mon", "Tue", "Wed", "Thu", "Fri"]
                .map(String::from)
                .to_vec(),
            from: "09:00".into(),
            to: "17:00".into(),
            message: "Service unavailable outside business hours".into(),
            closed_day_message: None,
            mode: Mode::default(),
        }
    }
}

/// Addresses whose logins fail too often are refused for a while (fail2ban, in process). A
/// banned client is told `message` in place of the greeting (`mail_rejections_total` with
/// `layer="auto_ban"`); each ban is logged (`event = "auth_ban"`) and counted
/// (`mail_auth_bans_total`). Sessions already open stay. SIGHUP applies a new `message`; the
/// other keys are read at start.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AutoBan {
    /// Failed logins from one address within `window_seconds` that ban it. 0 never bans.
    pub failures: usize,
    pub window_seconds: u64,
    /// How long a ban lasts.
    pub ban_seconds: u64,
    /// CIDRs never counted nor banned (monitoring, a webmail front end).
    pub exempt: Vec<String>,
    /// What a banned client is told.
    pub message: String,
    /// `redis://...`: share bans through Redis; a ban made by any server using it refuses the
    /// address on all of them within a second. "" = bans stay in this process. Read at
    /// start.
    pub redis: String,
}

impl Default for AutoBan {
    fn default() -> Self {
        AutoBan {
            failures: 10,
            window_seconds: 300,
            ban_seconds: 900,
            exempt: Vec::new(),
            message: "Too many failed logins".into(),
            redis: String::new(),
        }
    }
}
