//! The authentication stack: the user file (and the test token issuer, for OAUTHBEARER and
//! XOAUTH2) wrapped once in the auth policies of `[auth]` and `[layers.auto_ban]`, and that
//! one stack (clones of it) given to the IMAP and the POP3 service, so that per-user
//! sessions, failure delays and bans count across both protocols and every SASL mechanism.
//! With `[auth] redis` the per-user counts and failure counts are shared by every server
//! using that Redis; with `[layers.auto_ban] redis`, the bans.

use std::time::Duration;

use tower::ServiceBuilder;
use tower::util::Either;
use tower_mail::auth::{Authenticator, PasswdFile, Tokens};
use tower_mail_layers::auth::{
    AutoBanLayer, BanSink, FailureDelayLayer, RedisAuth, UserSessionsLayer, VerifyLimitLayer,
};

use crate::config;
use crate::policies::Policies;
use crate::tokens::TokenFile;

/// Outermost first, in the order `tower_mail_layers::auth` recommends:
///
/// 1. per-user sessions: counts only logins everything below let through;
/// 2. failure delay: above the verification bound, so a delayed answer holds no slot;
/// 3. auto-ban: below the delay, so the ban falls when the failure is known, not when it is
///    answered;
/// 4. verification bound: right over the password hashes and the token checks.
///
/// Needs the Tokio runtime: the Redis stores run background tasks. They connect lazily, so
/// the server starts while Redis is down; logins then go on with local counts.
pub fn build(
    users: PasswdFile,
    tokens: TokenFile,
    section: &config::Auth,
    policies: &Policies,
) -> Result<impl Authenticator, String> {
    let shared = connect(&section.redis, "auth.redis")?;
    let verify = match section.max_concurrent_verifications {
        0 => VerifyLimitLayer::new(spare_one_core()),
        n => VerifyLimitLayer::new(n),
    }
    .queue_timeout(Duration::from_millis(section.verification_queue_ms));
    let mut delay = FailureDelayLayer::new()
        .base(Duration::from_millis(section.failure_delay_ms))
        .max(Duration::from_millis(
            section.failure_delay_max_ms.max(section.failure_delay_ms),
        ));
    let max = section.max_sessions_per_user;
    let sessions = match &shared {
        None => Either::Left(UserSessionsLayer::new(max)),
        Some(redis) => Either::Right(
            UserSessionsLayer::with_store(max, redis.user_sessions()).fail_open(section.fail_open),
        ),
    };
    if let Some(redis) = &shared {
        delay = delay.shared(redis.failures());
    }
    let bans_shared = policies
        .auto_ban_redis()
        .map(|url| connect(url, "layers.auto_ban.redis"))
        .transpose()?
        .flatten();
    let counter = shared.as_ref();
    let auto_ban = match bans_shared {
        None => policies
            .auto_ban_layer(|ip_block| ip_block)?
            .map(|layer| Either::Left(share_failures(layer, counter))),
        Some(redis) => policies
            .auto_ban_layer(|ip_block| redis.bans(ip_block))?
            .map(|layer| Either::Right(share_failures(layer, counter))),
    };
    Ok(ServiceBuilder::new()
        .layer(sessions)
        .layer(delay)
        .option_layer(auto_ban)
        .layer(verify)
        .service(Tokens::new(users, tokens.into_service())))
}

/// One fewer verification at once than the cores, at least one: a core stays free for the
/// connections. On two cores, two Argon2 verifications at once doubled the memory and raised
/// other clients' greeting p99 from 0.6 ms to 4.7 ms, for no more verifications per second
/// (the `hostile_clients` example).
fn spare_one_core() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// Count the failures that lead to a ban in Redis too, when `[auth] redis` is set.
fn share_failures<B: BanSink>(
    layer: AutoBanLayer<B>,
    redis: Option<&RedisAuth>,
) -> AutoBanLayer<B> {
    match redis {
        Some(redis) => layer.shared(redis.failures()),
        None => layer,
    }
}

/// A Redis client for `url` (`key` names it in errors); `None` for "".
fn connect(url: &str, key: &str) -> Result<Option<RedisAuth>, String> {
    if url.is_empty() {
        return Ok(None);
    }
    let redis = RedisAuth::builder(url)
        .build()
        .map_err(|e| format!("{key}: {e}"))?;
    println!("{key}: shared through Redis at {}", redis.address());
    Ok(Some(redis))
}
