//! [`RedisBans`]: bans shared by every server that uses the same Redis.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::RedisAuth;
use super::ban_sync::{Ban, BanSync, Known, MAX_SHARED_BAN};
use crate::auth::BanSink;
use crate::auth::warn_every::WarnEvery;
use crate::ip_block::IpBlock;

/// A [`BanSink`] that bans an address on every server that uses the same Redis and prefix,
/// from [`RedisAuth::bans`]: give it to the [`AutoBanLayer`](super::super::AutoBanLayer) in
/// place of the [`IpBlock`].
///
/// - **A ban applies here at once**, through [`IpBlock::ban`] (which also ends the address's
///   sessions when the `IpBlock` tracks them), and is written to Redis by a background task:
///   `<prefix>{bans}:until`, a sorted set of address → end of the ban on Redis' clock. A ban
///   never shortens one in force.
/// - **The others' bans arrive within a second**: every
///   [`ban_sync`](super::RedisAuthBuilder::ban_sync) (1 s by default) the task reads the bans
///   written since its last read (from `<prefix>{bans}:log`, a log of recent bans; everything
///   at start, or after an outage longer than the log's span) and applies the new ones to the
///   local `IpBlock` with the time they have left, logged at info level
///   (`event = "auth_ban_shared"`) and counted (`mail_auth_bans_shared_total`).
/// - **Bans end by expiry**, on every server at about the same time. [`IpBlock::unban`] lifts
///   a ban on this server only.
/// - **Redis down**: bans stay local and are written once Redis is back (up to 100,000 waiting);
///   the task warns at most once per 10 s.
///
/// Clones share the task, which stops when the last clone is gone.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_mail_layers::auth::{AutoBanLayer, BanSink, RedisAuth};
/// use tower_mail_layers::ip_block::{IpBlock, IpLists};
///
/// # async fn run() -> Result<(), tower_mail::BoxError> {
/// let redis = RedisAuth::connect("redis://127.0.0.1:6379").await?;
/// let ip_block = IpBlock::ending_denied_sessions(IpLists::default());
/// let bans = redis.bans(ip_block.clone());
/// assert_eq!(bans.bans_key(), "tower-mail:auth:{bans}:until");
/// // What the AutoBanLayer does after 10 failures:
/// bans.ban("192.0.2.1".parse()?, Duration::from_secs(900));
/// assert!(!ip_block.permits("192.0.2.1".parse()?));
/// // ... and within a second no server that shares the Redis lets 192.0.2.1 in.
/// let layer = AutoBanLayer::new(bans).shared(redis.failures());
/// # drop(layer);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBans {
    sync: Arc<BanSyncLink>,
}

/// What the clones of one [`RedisBans`] share: the local lists the bans go to, and the way to
/// the task that syncs them with Redis.
struct BanSyncLink {
    ip_block: IpBlock,
    inbox: mpsc::UnboundedSender<Ban>,
    until_key: String,
    every: Duration,
}

impl RedisBans {
    /// Start the task, on the runtime the `RedisAuth` was built on.
    pub(super) fn start(redis: RedisAuth, ip_block: IpBlock) -> RedisBans {
        let until_key = format!("{}{{bans}}:until", redis.prefix());
        let log_key = format!("{}{{bans}}:log", redis.prefix());
        let every = redis.inner.ban_sync;
        let (inbox, receiver) = mpsc::unbounded_channel();
        let task = BanSync {
            connection: redis.connection(),
            ip_block: ip_block.clone(),
            until_key: until_key.clone(),
            log_key,
            every,
            // Long enough that a server which missed a few reads still reads incrementally.
            log_span: (every * 10).max(Duration::from_secs(60)),
            known: Known::default(),
            pending: HashMap::new(),
            cursor: None,
            warn: WarnEvery::default(),
        };
        redis.inner.runtime.spawn(task.run(receiver));
        RedisBans {
            sync: Arc::new(BanSyncLink {
                ip_block,
                inbox,
                until_key,
                every,
            }),
        }
    }

    /// The local `IpBlock` the bans apply to.
    pub fn ip_block(&self) -> &IpBlock {
        &self.sync.ip_block
    }

    /// The Redis key of the bans in force: `<prefix>{bans}:until`.
    pub fn bans_key(&self) -> &str {
        &self.sync.until_key
    }

    /// How often the other servers' bans are read.
    pub fn sync_every(&self) -> Duration {
        self.sync.every
    }
}

impl BanSink for RedisBans {
    fn ban(&self, ip: IpAddr, duration: Duration) -> usize {
        let ip = ip.to_canonical();
        let ended = self.sync.ip_block.ban(ip, duration);
        let until = Instant::now() + duration.min(MAX_SHARED_BAN);
        // Fails only when the task is gone, with its runtime.
        let _ = self.sync.inbox.send(Ban { ip, until });
        ended
    }
}

impl fmt::Debug for RedisBans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBans")
            .field("bans_key", &self.sync.until_key)
            .field("sync_every", &self.sync.every)
            .finish_non_exhaustive()
    }
}
