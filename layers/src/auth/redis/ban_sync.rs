//! The background task of a [`RedisBans`](super::RedisBans): it writes this server's bans to
//! Redis (`ban.lua`) and, every sync interval, reads the bans of the others (`bans_sync.lua`)
//! and applies them to the local `IpBlock`.
//!
//! A read is incremental: Redis answers only the bans written since the reader's previous read
//! (its cursor, on Redis' clock), from a log of recent bans kept for the log span. A reader
//! whose cursor is older than that (at start, after an outage) gets every ban in force.
//!
//! Bans that could not be written (Redis down) stay pending and are written with the next
//! sync; bans already applied here are not applied again unless they were extended.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use redis::Script;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::auth::warn_every::WarnEvery;
use crate::ip_block::IpBlock;
use crate::redis_support::connection::Connection;
use crate::redis_support::millis;

/// Writes bans (`ban.lua`).
static BAN: LazyLock<Script> =
    LazyLock::new(|| crate::redis_support::script(include_str!("ban.lua")));

/// Reads the bans in force (`bans_sync.lua`).
static SYNC: LazyLock<Script> =
    LazyLock::new(|| crate::redis_support::script(include_str!("bans_sync.lua")));

/// The longest ban written to or read from Redis (ten years): the scripts' microseconds stay
/// exact in doubles, and the ends fit this process's clock.
pub(super) const MAX_SHARED_BAN: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Most bans waiting to be written while Redis is down; past it, new bans stay local.
const MAX_PENDING: usize = 100_000;

/// Most messages handled as one batch, written in one script call.
const MAX_BATCH: usize = 512;

/// A ban read from Redis that ends no more than this after the one applied here already is
/// the same ban (the clocks of Redis and of this process differ by a round trip).
const SLACK: Duration = Duration::from_secs(1);

/// A ban made on this server: in force here already, to write to Redis.
#[derive(Debug)]
pub(super) struct Ban {
    pub(super) ip: IpAddr,
    pub(super) until: Instant,
}

/// The task's state.
pub(super) struct BanSync {
    pub(super) connection: Connection,
    pub(super) ip_block: IpBlock,
    pub(super) until_key: String,
    pub(super) log_key: String,
    pub(super) every: Duration,
    /// How long the log of recent bans is kept: reads further apart read everything.
    pub(super) log_span: Duration,
    /// What this process has applied, or written, so far.
    pub(super) known: Known,
    /// Bans made here, not yet written to Redis: address → end.
    pub(super) pending: HashMap<IpAddr, Instant>,
    /// Redis' time at the last read, in µs.
    pub(super) cursor: Option<i64>,
    pub(super) warn: WarnEvery,
}

impl BanSync {
    /// Run until every [`RedisBans`](super::RedisBans) is gone.
    pub(super) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Ban>) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                received = inbox.recv_many(&mut batch, MAX_BATCH) => {
                    if received == 0 {
                        return;
                    }
                    for Ban { ip, until } in batch.drain(..) {
                        self.known.take(ip, until);
                        self.queue(ip, until);
                    }
                    self.write().await;
                }
                _ = tick.tick() => {
                    self.write().await;
                    self.sync().await;
                }
            }
        }
    }

    fn queue(&mut self, ip: IpAddr, until: Instant) {
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&ip) {
            tracing::debug!(
                event = "auth_ban_not_shared",
                ip = %ip,
                "too many bans waiting for Redis; this one stays on this server"
            );
            return;
        }
        let end = self.pending.entry(ip).or_insert(until);
        *end = (*end).max(until);
    }

    /// Write the pending bans, in one script call; kept for the next sync if Redis fails.
    async fn write(&mut self) {
        let now = Instant::now();
        self.pending.retain(|_, until| *until > now);
        if self.pending.is_empty() {
            return;
        }
        let mut invocation = BAN.prepare_invoke();
        invocation
            .key(&self.until_key)
            .key(&self.log_key)
            .arg(millis(self.log_span));
        for (ip, until) in &self.pending {
            invocation
                .arg(ip.to_string())
                .arg(millis(until.duration_since(now)).max(1));
        }
        match invocation.invoke_async::<i64>(&mut self.connection).await {
            Ok(_) => self.pending.clear(),
            Err(error) => self.failed("bans not written to Redis yet; retried each sync", &error),
        }
    }

    /// Read the bans written since the last read, and apply the new ones.
    async fn sync(&mut self) {
        let reply = SYNC
            .key(&self.until_key)
            .key(&self.log_key)
            .arg(self.cursor.unwrap_or(-1))
            .arg(millis(self.log_span))
            .invoke_async::<Vec<String>>(&mut self.connection)
            .await;
        let read = match reply {
            Ok(reply) => parse(&reply),
            Err(error) => {
                self.failed("bans of other servers not read", &error);
                return;
            }
        };
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                self.failed("bans of other servers not read", &error);
                return;
            }
        };
        self.cursor = Some(read.now);
        let now = Instant::now();
        self.known.forget_ended(now);
        for (ip, remaining) in read.bans {
            if remaining.is_zero() || !self.known.take(ip, now + remaining) {
                continue;
            }
            let ended_sessions = self.ip_block.ban(ip, remaining);
            tracing::info!(
                event = "auth_ban_shared",
                ip = %ip,
                ban_seconds = remaining.as_secs(),
                ended_sessions,
                "address banned by another server"
            );
            #[cfg(feature = "metrics")]
            ::metrics::counter!("mail_auth_bans_shared_total").increment(1);
        }
    }

    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        match self.warn.failed() {
            Some(held_back) => tracing::warn!(
                event = "auth_ban_sync_error",
                error = %error,
                held_back,
                "Redis bans: {what} (at most one warning per 10 s)"
            ),
            None => {
                tracing::debug!(event = "auth_ban_sync_error", error = %error, "Redis bans: {what}")
            }
        }
    }
}

/// The bans applied (or made) here, with their ends, so that a read does not apply them again.
#[derive(Debug, Default)]
pub(super) struct Known {
    until: HashMap<IpAddr, Instant>,
}

impl Known {
    /// Note a ban of `ip` until `until`: `true` if it is news (a new ban, or one extended by
    /// more than [`SLACK`]), to apply.
    pub(super) fn take(&mut self, ip: IpAddr, until: Instant) -> bool {
        match self.until.get(&ip) {
            Some(known) if until <= *known + SLACK => false,
            _ => {
                self.until.insert(ip, until);
                true
            }
        }
    }

    /// Forget the bans that have ended.
    pub(super) fn forget_ended(&mut self, now: Instant) {
        self.until.retain(|_, until| *until > now);
    }
}

/// What a read answered.
#[derive(Debug, PartialEq)]
pub(super) struct Read {
    /// Redis' time of the read (µs): the next cursor.
    pub(super) now: i64,
    /// Every ban in force (`true`), or those written since the cursor.
    pub(super) full: bool,
    /// Each ban and what it has left.
    pub(super) bans: Vec<(IpAddr, Duration)>,
}

/// Read the reply of `bans_sync.lua`. Entries that are not addresses are skipped.
pub(super) fn parse(reply: &[String]) -> Result<Read, String> {
    let bad = || format!("unexpected reply from the bans script: {reply:?}");
    let [now, full, bans @ ..] = reply else {
        return Err(bad());
    };
    if bans.len() % 2 != 0 {
        return Err(bad());
    }
    let now = now.parse::<i64>().map_err(|_| bad())?;
    let bans = bans
        .chunks_exact(2)
        .filter_map(|pair| {
            let ip = pair[0].parse::<IpAddr>().ok()?;
            let remaining = pair[1].parse::<i64>().ok()?;
            let remaining = Duration::from_micros(u64::try_from(remaining).unwrap_or(0));
            Some((ip, remaining.min(MAX_SHARED_BAN)))
        })
        .collect();
    Ok(Read {
        now,
        full: full == "1",
        bans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|&p| p.to_owned()).collect()
    }

    #[test]
    fn replies_are_read() {
        let read = parse(&strings(&[
            "1700000000000000",
            "0",
            "192.0.2.1",
            "1500000",
            "2001:db8::1",
            "-5",
            "not-an-address",
            "7",
        ]))
        .unwrap();
        assert_eq!(
            read,
            Read {
                now: 1_700_000_000_000_000,
                full: false,
                bans: vec![
                    ("192.0.2.1".parse().unwrap(), Duration::from_millis(1500)),
                    ("2001:db8::1".parse().unwrap(), Duration::ZERO),
                ],
            }
        );
        assert!(parse(&strings(&["5", "1"])).unwrap().full);
        assert!(parse(&strings(&["5"])).is_err());
        assert!(parse(&strings(&["5", "1", "192.0.2.1"])).is_err());
        assert!(parse(&strings(&["soon", "1"])).is_err());
    }

    #[test]
    fn a_ban_is_applied_once_unless_extended() {
        let mut known = Known::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        assert!(known.take(ip, t0 + minute), "new");
        assert!(!known.take(ip, t0 + minute), "the same ban, read again");
        assert!(
            !known.take(ip, t0 + minute + SLACK),
            "the same ban, through other clocks"
        );
        assert!(!known.take(ip, t0 + Duration::from_secs(30)), "shorter");
        assert!(known.take(ip, t0 + 2 * minute), "extended");
        known.forget_ended(t0 + 3 * minute);
        assert!(
            known.take(ip, t0 + 4 * minute),
            "a new ban after the last ended"
        );
    }
}
