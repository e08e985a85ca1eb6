//! What every Redis-backed store in this crate shares: the connection (one server or a
//! cluster, made lazily), the circuit breaker, the call future that feeds it, and the background
//! task that releases and renews leased sorted-set members.
//!
//! - [`Client`]: a connection, its credential-free address for logs, and its breaker.
//! - [`Call`](call::Call): one command or script call through the breaker, giving back the
//!   member it may have counted if it is dropped before its answer.
//! - [`Leases`](leases::Leases): members of sorted sets scored by a lease deadline (open
//!   connections, open sessions), renewed while held and removed when given back.

pub(crate) mod breaker;
pub(crate) mod call;
pub(crate) mod connection;
pub(crate) mod leases;

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use self::breaker::Breaker;
use self::connection::{Connection, Target};

/// How to reach Redis and how long to wait for it. Its `Debug` shows the URL without
/// credentials.
#[derive(Clone)]
pub(crate) struct Settings {
    /// One URL, a `redis+cluster://` URL, or a list of cluster nodes (see [`connection`]).
    pub(crate) url: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    /// The breaker's cool-down.
    pub(crate) retry_after: Duration,
}

impl Settings {
    /// The defaults of every store: 1 s to connect, 2 s for an answer, 1 s of cool-down.
    pub(crate) fn new(url: String) -> Settings {
        Settings {
            url,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            retry_after: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("url", &redacted(&self.url))
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

/// A lazy connection to Redis with its breaker. Clones share both.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) connection: Connection,
    /// The URL without credentials, for logs.
    pub(crate) address: Arc<str>,
    pub(crate) breaker: Arc<Breaker>,
}

impl Client {
    /// Connect lazily as `settings` say; `log` names the layer in the breaker's log events.
    /// Fails on a URL the Redis client does not accept, or outside a Tokio runtime.
    pub(crate) fn open(settings: &Settings, log: &'static str) -> Result<Client, String> {
        tokio::runtime::Handle::try_current()
            .map_err(|_| "a Redis store needs a Tokio runtime".to_owned())?;
        let target = Target::parse(&settings.url)?;
        let connection = Connection::open(&target, settings).map_err(|err| err.to_string())?;
        // A call ends within its connect and response timeouts: a probe still in flight after
        // both cannot be waited for (a leaked future) and another may go.
        let probe_bound = settings
            .connect_timeout
            .saturating_add(settings.response_timeout)
            .max(Duration::from_millis(1));
        Ok(Client {
            connection,
            address: redacted(&settings.url).into(),
            breaker: Arc::new(Breaker::new(settings.retry_after, probe_bound, log)),
        })
    }

    /// Ask Redis (every node of a cluster) for a `PONG`, bypassing the breaker.
    pub(crate) async fn ping(&self) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
    }
}

/// A Lua script of this crate, after the opening every one of them shares (`clock.lua`:
/// effects replication, Redis' time as `now`, exact integers with `int`).
pub(crate) fn script(body: &str) -> redis::Script {
    redis::Script::new(&[include_str!("clock.lua"), body].concat())
}

/// `url` without its credentials, to print or log: the user part of each URL is masked and
/// the query (where `redis+unix://` URLs carry `pass=`) left out. A list of URLs (cluster
/// nodes) is redacted URL by URL.
pub(crate) fn redacted(url: &str) -> String {
    let urls: Vec<&str> = url
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .collect();
    if urls.len() > 1 && urls.iter().all(|part| part.contains("://")) {
        return urls
            .iter()
            .map(|part| redacted_one(part))
            .collect::<Vec<_>>()
            .join(",");
    }
    redacted_one(url)
}

fn redacted_one(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, _)) => (base, "?..."),
        None => (url, ""),
    };
    match (base.split_once("://"), base.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}{query}"),
        _ => format!("{base}{query}"),
    }
}

/// A random id for a new store: std's randomly keyed SipHash (seeded from the OS) over the
/// process id, the wall clock and a per-process count.
pub(crate) fn instance_id() -> u64 {
    static STORES: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    std::process::id().hash(&mut hasher);
    SystemTime::now().hash(&mut hasher);
    STORES.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
    hasher.finish()
}

/// `duration` in whole milliseconds, saturated: what the scripts take.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_carry_no_credentials() {
        assert_eq!(
            redacted("redis://app:secret@10.0.0.5:6379/0"),
            "redis://***@10.0.0.5:6379/0"
        );
        assert_eq!(
            redacted("redis+unix:///run/redis.sock?pass=secret"),
            "redis+unix:///run/redis.sock?..."
        );
        assert_eq!(
            redacted("redis+cluster://:pw@a:7000,b:7001"),
            "redis+cluster://***@a:7000,b:7001"
        );
        assert_eq!(
            redacted("redis://:pw@a:7000, redis://:pw@b:7001"),
            "redis://***@a:7000,redis://***@b:7001"
        );
        assert_eq!(redacted("redis://127.0.0.1"), "redis://127.0.0.1");
    }

    #[test]
    fn settings_print_no_password() {
        let settings = Settings::new("redis://app:secret@10.0.0.5".into());
        let printed = format!("{settings:?}");
        assert!(!printed.contains("secret"), "{printed}");
        assert!(printed.contains("10.0.0.5"), "{printed}");
    }
}
