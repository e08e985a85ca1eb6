//! The example server's connection policies, built from `[layers.*]` and rebuilt on SIGHUP.

use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Duration;

use tower_mail::server::AddressCheck;
use tower_mail::{Reject, Session};
use tower_mail_layers::auth::{AutoBanLayer, BanSink};
use tower_mail_layers::ip_block::{
    CidrSet, IpBlock, IpBlockPermit, IpLists, parse_list_entries, parse_net,
};
use tower_mail_layers::policy::{AddressPolicy, BeforeHandshake, Policy, PolicyLayer, Swappable};
use tower_mail_layers::rate_limit::{AnyStore, RateLimit, RateLimitConfig, RedisStore};
use tower_mail_layers::time_window::{Schedule, Time, Weekday};

use crate::config::{self, Layers, Mode};

/// Handles to the running policies, so that a reload changes what new connections meet.
#[derive(Clone)]
pub struct Policies {
    pub ip_block: IpBlock,
    pub rate_limit: RateLimit<AnyStore>,
    pub time_window: Swappable<Schedule>,
    /// Where automatic bans land and are enforced, when `[layers.auto_ban]` is present.
    pub bans: Option<Bans>,
    /// The Redis settings in force: read at start only (see `config::RateLimit::redis`).
    redis: RedisSettings,
    /// `[layers.auto_ban]` as read at start: only its message changes on reload.
    auto_ban: Option<config::AutoBan>,
}

/// The addresses `[layers.auto_ban]` banned: an `IpBlock` with empty lists whose temporary
/// list the auth stack's `AutoBanLayer` fills, checked by a layer of its own beside
/// `[layers.ip_block]`, so that a banned client is told the auto-ban message and refusals are
/// counted under `layer="auto_ban"`. (One `IpBlock` has one refusal text, so sharing
/// `[layers.ip_block]`'s would tell banned clients its message instead.)
#[derive(Clone, Debug)]
pub struct Bans(IpBlock);

impl Bans {
    /// The layer name its refusals carry in logs and metrics.
    pub const LAYER: &'static str = "auto_ban";

    fn new(message: &str) -> Bans {
        Bans(IpBlock::new(Bans::lists(message)))
    }

    fn lists(message: &str) -> IpLists {
        IpLists {
            message: message.to_owned(),
            ..IpLists::default()
        }
    }

    fn decide(&self, session: &Arc<Session>) -> Result<IpBlockPermit, Reject> {
        match self.0.check_now(session) {
            Some(verdict) => verdict.map_err(|reject| reject.with_layer(Bans::LAYER)),
            None => unreachable!("IpBlock decides on the spot"),
        }
    }
}

impl Policy for Bans {
    type Permit = IpBlockPermit;
    type Future = Ready<Result<IpBlockPermit, Reject>>;

    fn name(&self) -> &'static str {
        Bans::LAYER
    }

    fn check(&self, session: &Arc<Session>) -> Self::Future {
        ready(self.decide(session))
    }

    fn check_now(&self, session: &Arc<Session>) -> Option<Result<IpBlockPermit, Reject>> {
        Some(self.decide(session))
    }
}

/// Its verdict depends on the address alone.
impl AddressPolicy for Bans {}

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
            AnyStore::local(&config)
        } else {
            RedisStore::builder(section.redis.as_str())
                .prefix(section.redis_prefix.as_str())
                .lease(Duration::from_secs(section.redis_lease_seconds.max(1)))
                .build()
                .map_err(|e| format!("layers.rate_limit.redis: {e}"))?
                .into()
        };
        Ok(Policies {
            ip_block: IpBlock::new(ip_lists(&layers.ip_block)?),
            rate_limit: RateLimit::with_store(config, store),
            time_window: Swappable::new(schedule(layers.time_window.as_ref())?),
            bans: layers.auto_ban.as_ref().map(|a| Bans::new(&a.message)),
            redis: RedisSettings::of(section),
            auto_ban: layers.auto_ban.clone(),
        })
    }

    /// The auth layer that bans addresses after repeated failed logins into [`Bans`], through
    /// `sink` (the bans' `IpBlock` itself, or a Redis sink that also shares them); `None`
    /// when `[layers.auto_ban]` is absent.
    pub fn auto_ban_layer<B: BanSink>(
        &self,
        sink: impl FnOnce(IpBlock) -> B,
    ) -> Result<Option<AutoBanLayer<B>>, String> {
        let (Some(section), Some(bans)) = (&self.auto_ban, &self.bans) else {
            return Ok(None);
        };
        Ok(Some(
            AutoBanLayer::new(sink(bans.0.clone()))
                .failures(section.failures)
                .window(Duration::from_secs(section.window_seconds.max(1)))
                .ban(Duration::from_secs(section.ban_seconds))
                .exempt(cidrs(&section.exempt, None, "layers.auto_ban.exempt")?),
        ))
    }

    /// `[layers.auto_ban] redis`, when bans are shared.
    pub fn auto_ban_redis(&self) -> Option<&str> {
        let url = self.auto_ban.as_ref()?.redis.as_str();
        (!url.is_empty()).then_some(url)
    }

    /// What the implicit-TLS listeners check before their handshakes: the address-only
    /// policies that refuse for real (not in shadow mode). `None` when
    /// `refuse_before_tls_handshake` is off.
    pub fn before_tls_handshake(&self, layers: &Layers) -> Option<Vec<Arc<dyn AddressCheck>>> {
        if !layers.refuse_before_tls_handshake {
            return None;
        }
        let mut checks: Vec<Arc<dyn AddressCheck>> = Vec::new();
        if !layers.ip_block.mode.shadow {
            checks.push(Arc::new(BeforeHandshake::new(self.ip_block.clone())));
        }
        if layers.time_window.as_ref().is_some_and(|t| !t.mode.shadow) {
            checks.push(Arc::new(BeforeHandshake::new(self.time_window.clone())));
        }
        // A peek that counts nothing: the layer after the handshake counts the connection.
        // With `redis` set it lets every connection through (Redis cannot answer on the spot).
        if !layers.rate_limit.mode.shadow {
            checks.push(Arc::new(BeforeHandshake::new(self.rate_limit.clone())));
        }
        if let Some(bans) = &self.bans {
            checks.push(Arc::new(BeforeHandshake::new(bans.clone())));
        }
        Some(checks)
    }

    /// Apply changed settings; open sessions are kept.
    pub fn reload(&self, layers: &Layers) -> Result<(), String> {
        let lists = ip_lists(&layers.ip_block)?;
        let schedule = schedule(layers.time_window.as_ref())?;
        if let Some(auto_ban) = &layers.auto_ban {
            cidrs(&auto_ban.exempt, None, "layers.auto_ban.exempt")?;
        }
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
        self.reload_auto_ban(layers.auto_ban.as_ref());
        Ok(())
    }

    /// A new auto-ban message applies at once (bans in force stay); the thresholds and the
    /// exempt list are the auth stack's, built at start.
    fn reload_auto_ban(&self, new: Option<&config::AutoBan>) {
        match (&self.bans, &self.auto_ban, new) {
            (Some(bans), Some(old), Some(new)) => {
                bans.0.replace(Bans::lists(&new.message));
                let unchanged = config::AutoBan {
                    message: old.message.clone(),
                    ..new.clone()
                };
                if unchanged != *old {
                    tracing::warn!(
                        "SIGHUP: layers.auto_ban changed; only its message applies before a \
                         restart"
                    );
                }
            }
            (None, None, None) => {}
            _ => {
                tracing::warn!("SIGHUP: layers.auto_ban added or removed; that waits for a restart")
            }
        }
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

/// `key` names the entries in errors (`layers.ip_block.deny`).
fn cidrs(entries: &[String], file: Option<&std::path::Path>, key: &str) -> Result<CidrSet, String> {
    let mut nets = entries
        .iter()
        .map(|entry| parse_net(entry).map_err(|e| format!("{key}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        nets.extend(parse_list_entries(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    Ok(nets.into_iter().collect())
}

fn ip_lists(section: &config::IpBlock) -> Result<IpLists, String> {
    Ok(IpLists {
        deny: cidrs(
            &section.deny,
            section.deny_file.as_deref(),
            "layers.ip_block.deny",
        )?,
        allow: cidrs(
            &section.allow,
            section.allow_file.as_deref(),
            "layers.ip_block.allow",
        )?,
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
