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

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    pub passwd_file: PathBuf,
    pub plaintext_without_tls: bool,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            passwd_file: PathBuf::from("./data/users.passwd"),
            plaintext_without_tls: true,
        }
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
    /// How long shutdown waits for sessions to say goodbye.
    pub shutdown_grace_seconds: u64,
    /// POP3 idle timeout (RFC 1939: at least 600).
    pub pop3_idle_seconds: u64,
    /// IMAP idle timeout once logged in (RFC 9051 section 5.4: at least 1800).
    pub imap_idle_seconds: u64,
    /// The largest message IMAP APPEND takes.
    pub imap_max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            shutdown_grace_seconds: 10,
            pop3_idle_seconds: 600,
            imap_idle_seconds: 30 * 60,
            imap_max_message_bytes: 50 * 1024 * 1024,
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
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Layers {
    pub ip_block: IpBlock,
    pub rate_limit: RateLimit,
    /// Absent: always open.
    pub time_window: Option<TimeWindow>,
}

/// How any policy layer applies its verdicts: beyond example-server.md, the shadow
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
