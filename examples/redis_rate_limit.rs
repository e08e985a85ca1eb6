//! The connection-management guide's "With Redis for Distributed Rate Limiting": at most 100
//! new connections per address per hour, counted in a Redis that every server shares, and the
//! connection allowed when Redis fails.
//!
//! ```text
//! cargo run --example redis_rate_limit                                  # redis://127.0.0.1:6379
//! cargo run --example redis_rate_limit -- --redis redis://10.0.0.5:6379 --per-hour 100
//! REDIS_URL=redis://:secret@redis.internal:6379/2 cargo run --example redis_rate_limit
//! ```
//!
//! Start it twice on two ports with the same Redis, and an address's connections to either
//! count against one budget.
//!
//! # From the guide's JavaScript to Rust
//!
//! | the guide | here |
//! |---|---|
//! | `redis.createClient()` | `RedisStore::builder(url).build()`: connects lazily, so the server starts while Redis is down |
//! | `` `connections:${session.remoteAddress}` `` | `key: RateLimitKey::Ip`: `tower-mail:rl:tat:{192.0.2.1}` in Redis, IPv4-mapped IPv6 addresses as IPv4 |
//! | `client.incr(key)`, `client.expire(key, 3600)`, `count > 100` | `max_per_window: Some(100)`, `window: 1 h`: one Lua script per check on Redis' clock |
//! | `callback(new Error('Rate limit exceeded'))` | `message: "Rate limit exceeded"`: the client reads `-ERR Rate limit exceeded` (POP3) or `* BYE Rate limit exceeded` (IMAP) |
//! | `catch (err) { console.error(..); callback(); }` | `fail_open: true`; the failure is logged at `warn` (once, then a summary every 10 s) |
//! | `onConnect` | a [`RateLimitLayer`] in one [`ServiceBuilder`] stack in front of the session service |
//!
//! # What the guide's counter gets wrong
//!
//! - **The window never ends for a steady client.** `EXPIRE key 3600` runs on every
//!   connection, so each connection pushes the reset an hour further out. This is no fixed
//!   hourly window: the count only resets after an hour with no connection at all. A mail
//!   client that polls every 5 minutes makes its 101st connection after about 8 hours and is
//!   refused from then on, for as long as it keeps trying.
//! - **Refused connections count.** `INCR` runs before the check, so every refused attempt
//!   raises the count and, through `EXPIRE`, pushes the reset out again: a client that
//!   retries is locked out by its own retries.
//! - **Two commands, not one.** If the process dies or the connection drops between `INCR`
//!   and `EXPIRE`, the key has no expiry and the address is counted for ever.
//! - **A fixed window, where it works, allows twice the limit** across a window boundary:
//!   100 connections in the last minute of one window and 100 in the first of the next.
//! - **Failing open is slow, or not at all.** node-redis queues commands while it is
//!   disconnected (by default), so during an outage `await client.incr(key)` waits for Redis
//!   to come back instead of throwing, and the connection hangs. And as written, with
//!   node-redis 4 or later, the snippet never calls `await client.connect()`: every command
//!   throws, the `catch` lets every connection in, and nothing is ever counted. Every failure
//!   is also one `console.error` line per connection.
//!
//! # What GCRA and leases do instead
//!
//! - **GCRA** (generic cell rate algorithm) keeps one timestamp per address, the theoretical
//!   arrival time (TAT). An address quiet for an hour may open 100 connections at once, then
//!   one every 36 seconds (3600 s / 100): a sliding budget that refills steadily, with no
//!   boundary to exploit and no lock-out for a steady client within the rate.
//! - **A refusal spends nothing**: the script checks first and writes only when it admits, so
//!   a refused client gets in again as soon as its budget allows, however often it retried.
//! - **One script, one round trip, Redis' clock**: the check and the update are atomic, every
//!   server uses the same time, and the TAT key expires (`PX`) when it no longer matters, so
//!   nothing is left behind.
//! - **Leases** serve the other limit, open connections (`max_concurrent`, which the guide's
//!   snippet does not have): each open connection is a member of a Redis sorted set with a
//!   deadline that its server renews, so the connections of a server that crashes stop
//!   counting when their leases run out, instead of leaking as the guide's `onClose`
//!   decrements do when a server dies. Add `max_concurrent: Some(10)` below to use it.
//! - **Redis down**: checks fail open after at most the layer's `store_timeout` (1 s), and a
//!   circuit breaker in the store answers the following ones at once, without asking Redis,
//!   until a probe finds it back (see [`RedisStore`]).

#[path = "guide/mod.rs"]
mod guide;

use std::process::ExitCode;
use std::time::Duration;

use tower::ServiceBuilder;
use tower_mail_layers::rate_limit::{
    RateLimit, RateLimitConfig, RateLimitKey, RateLimitLayer, RedisStore,
};

/// Where Redis is unless `--redis` or `REDIS_URL` says otherwise.
const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

/// The guide's `onConnect`: at most `per_hour` new connections per client address per hour,
/// counted in the Redis of `store`, and let in if Redis fails.
fn rate_limit(store: RedisStore, per_hour: u32) -> RateLimit<RedisStore> {
    RateLimit::with_store(
        RateLimitConfig {
            // `connections:${session.remoteAddress}`
            key: RateLimitKey::Ip,
            // `count > 100` over `expire(key, 3600)`, as a rate rather than a counter.
            max_per_window: Some(per_hour),
            window: Duration::from_secs(3600),
            // The guide counts new connections only, not open ones.
            max_concurrent: None,
            message: "Rate limit exceeded".into(),
            // `callback(); // Allow connection on Redis failure`
            fail_open: true,
            ..RateLimitConfig::default()
        },
        store,
    )
}

/// The limit in front of any session service.
fn limited(inner: impl guide::Stack, limit: RateLimit<RedisStore>) -> impl guide::Stack {
    ServiceBuilder::new()
        .layer(RateLimitLayer::from_policy(limit))
        .service(inner)
}

async fn run() -> Result<(), String> {
    let args = guide::Args::parse(&["--redis", "--per-hour"])?;
    guide::init_logging();
    let url = match args.last("--redis") {
        Some(url) => url.to_owned(),
        None => std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS.to_owned()),
    };
    let per_hour: u32 = args.parsed("--per-hour", 100)?;
    // Lazy: fails only on a URL the client does not accept.
    let builder = RedisStore::builder(url);
    let at = builder.address();
    let store = builder.build().map_err(|e| format!("--redis {at}: {e}"))?;
    match store.ping().await {
        Ok(()) => println!(
            "rate limit: {per_hour} new connections per address per hour, counted in Redis at {at}"
        ),
        Err(err) => println!(
            "rate limit: Redis at {at} is not reachable yet ({err}); connections are let in \
             uncounted until it is"
        ),
    }
    guide::serve(
        args.listen(),
        limited(guide::pop3(), rate_limit(store, per_hour)),
    )
    .await
}

#[tokio::main]
async fn main() -> ExitCode {
    guide::exit("redis_rate_limit", run().await)
}
