//! The example server's connection policies, built from `[layers.*]` and rebuilt on SIGHUP.

use std::time::Duration;

use tower_mail_layers::ip_block::{CidrSet, IpBlock, IpLists, parse_list_entries, parse_net};
use tower_mail_layers::policy::{PolicyLayer, Swappable};
use tower_mail_layers::rate_limit::{LocalStore, RateLimit, RateLimitConfig, RedisStore};
use tower_mail_layers::time_window::{Schedule, Time, Weekday};

use crate::config::{self, Layers, Mode};
use crate::rate_store::RateStore;

/// Handles to the running policies, so that a reload changes what new connections meet.
#[derive(Clone)]
pub struct Policies {
    pub ip_block: IpBlock,
    pub rate_limit: RateLimit<RateStore>,
    pub time_window: Swappable<Schedule>,
    /// The Redis settings in force: read at start only (see `config::RateLimit::redis`).
    redis: RedisSettings,
}

/// What the rate limit's store was made from.
#[derive(Clone, PartialEq, Eq)]
struct RedisSettings {
    url: String,
    prefix: String,
    lease_seconds: u64,
}

impl RedisSettings {
    fn of(section: &config::RateLimit) -> RedisSettings {
        RedisSettings {
            url: section.redis.clone(),
            prefix: section.redis_prefix.clone(),
            lease_seconds: section.redis_lease_seconds,
        }
    }
}

impl Policies {
    /// Needs the Tokio runtime: a Redis store runs a background task. The Redis connection is
    /// made lazily, so the server starts even when Redis is down (`fail_open` then decides).
    pub fn new(layers: &Layers) -> Result<Policies, String> {
        let config = rate_limit(&layers.rate_limit);
        let section = &layers.rate_limit;
        let store = if section.redis.is_empty() {
            RateStore::Local(LocalStore::new(config.max_keys, config.when_full))
        } else {
            let store = RedisStore::builder(section.redis.as_str())
                .prefix(section.redis_prefix.as_str())
                .lease(Duration::from_secs(section.redis_lease_seconds.max(1)))
                .build()
                .map_err(|e| format!("layers.rate_limit.redis: {e}"))?;
            RateStore::Redis(store)
        };
        Ok(Policies {
            ip_block: IpBlock::new(ip_lists(&layers.ip_block)?),
            rate_limit: RateLimit::with_store(config, store),
            time_window: Swappable::new(schedule(layers.time_window.as_ref())?),
            redis: RedisSettings::of(section),
        })
    }

    /// Apply changed settings; open sessions are kept.
    pub fn reload(&self, layers: &Layers) -> Result<(), String> {
        let lists = ip_lists(&layers.ip_block)?;
        let schedule = schedule(layers.time_window.as_ref())?;
        self.ip_block.replace(lists);
        // Counts survive: open connections keep their slots under the new limits.
        self.rate_limit.reconfigure(rate_limit(&layers.rate_limit));
        if RedisSettings::of(&layers.rate_limit) != self.redis {
            tracing::warn!(
                "SIGHUP: layers.rate_limit.redis* changed; the store keeps its start settings \
                 until a restart"
            );
        }
        self.time_window.replace(schedule);
        Ok(())
    }
}

/// A policy layer with the shadow and delay settings of its section.
pub fn with_mode<P>(layer: PolicyLayer<P>, mode: Mode) -> PolicyLayer<P> {
    let layer = if mode.shadow { layer.shadow() } else { layer };
    match mode.delay_ms {
        0 => layer,
        ms => layer.delay_refusal(Duration::from_millis(ms)),
    }
}

fn cidrs(entries: &[String], file: Option<&std::path::Path>, key: &str) -> Result<CidrSet, String> {
    let mut nets = entries
        .iter()
        .map(|entry| parse_net(entry).map_err(|e| format!("layers.ip_block.{key}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        nets.extend(parse_list_entries(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    Ok(nets.into_iter().collect())
}

fn ip_lists(section: &config::IpBlock) -> Result<IpLists, String> {
    Ok(IpLists {
        deny: cidrs(&section.deny, section.deny_file.as_deref(), "deny")?,
        allow: cidrs(&section.allow, section.allow_file.as_deref(), "allow")?,
        message: section.message.clone(),
    })
}

/// `0` means unlimited, as in example-server.md.
fn rate_limit(section: &config::RateLimit) -> RateLimitConfig {
    let limit = |n: u32| (n > 0).then_some(n);
    RateLimitConfig {
        max_concurrent: limit(section.max_concurrent_per_ip),
        max_per_window: limit(section.max_connections_per_ip),
        window: Duration::from_secs(section.window_seconds.max(1)),
        message: section.message.clone(),
        fail_open: section.fail_open,
        ..RateLimitConfig::default()
    }
}

fn weekday(name: &str) -> Result<Weekday, String> {
    Ok(match name.to_ascii_lowercase().get(..3) {
        Some("mon") => Weekday::Monday,
        Some("tue") => Weekday::Tuesday,
        Some("wed") => Weekday::Wednesday,
        Some("thu") => Weekday::Thursday,
        Some("fri") => Weekday::Friday,
        Some("sat") => Weekday::Saturday,
        Some("sun") => Weekday::Sunday,
        _ => {
            return Err(format!(
                "layers.time_window.days: {name:?} is not a weekday"
            ));
        }
    })
}

fn time_of_day(text: &str, key: &str) -> Result<Time, String> {
    text.parse::<Time>()
        .map_err(|e| format!("layers.time_window.{key}: {text:?}: {e}"))
}

fn schedule(section: Option<&config::TimeWindow>) -> Result<Schedule, String> {
    let Some(section) = section else {
        return Ok(Schedule::always_open());
    };
    let days = section
        .days
        .iter()
        .map(|d| weekday(d))
        .collect::<Result<Vec<_>, _>>()?;
    let schedule = Schedule::new(&section.timezone)
        .map_err(|e| format!("layers.time_window.timezone: {e}"))?
        .open_weekdays(
            &days,
            time_of_day(&section.from, "from")?,
            time_of_day(&section.to, "to")?,
        )
        .message(&section.message);
    Ok(match &section.closed_day_message {
        Some(text) => schedule.closed_day_message(text),
        None => schedule,
    })
}
