//! The example server's connection policies, built from `[layers.*]` and rebuilt on SIGHUP.

use std::time::Duration;

use tower_mail_layers::ip_block::{CidrSet, IpBlock, IpLists, parse_list_entries, parse_net};
use tower_mail_layers::policy::{PolicyLayer, Swappable};
use tower_mail_layers::rate_limit::{RateLimit, RateLimitConfig};
use tower_mail_layers::time_window::{Schedule, Time, Weekday};

use crate::config::{self, Layers, Mode};

/// Handles to the running policies, so that a reload changes what new connections meet.
#[derive(Clone)]
pub struct Policies {
    pub ip_block: IpBlock,
    pub rate_limit: RateLimit,
    pub time_window: Swappable<Schedule>,
}

impl Policies {
    pub fn new(layers: &Layers) -> Result<Policies, String> {
        Ok(Policies {
            ip_block: IpBlock::new(ip_lists(&layers.ip_block)?),
            rate_limit: RateLimit::new(rate_limit(&layers.rate_limit)),
            time_window: Swappable::new(schedule(layers.time_window.as_ref())?),
        })
    }

    /// Apply changed settings; open sessions are kept.
    pub fn reload(&self, layers: &Layers) -> Result<(), String> {
        let lists = ip_lists(&layers.ip_block)?;
        let schedule = schedule(layers.time_window.as_ref())?;
        self.ip_block.replace(lists);
        // Counts survive: open connections keep their slots under the new limits.
        self.rate_limit.reconfigure(rate_limit(&layers.rate_limit));
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
