//! Where the rate limit keeps its counts: in this process, or in Redis when
//! `[layers.rate_limit] redis` is set, so that the limits hold across every server using it.

use std::future::Ready;
use std::time::Duration;

use futures_util::future::Either;
use tower_mail_layers::rate_limit::{
    Admission, Key, Limits, LocalStore, RateLimitStore, RedisAcquire, RedisStore, Refusal, Slot,
    StoreError,
};

/// The store picked at start: one type for the policy whichever it is.
#[derive(Debug)]
pub enum RateStore {
    Local(LocalStore),
    Redis(RedisStore),
}

impl RateStore {
    /// Send the releases still queued for Redis, so that other servers see the slots of this
    /// server's ended sessions free at once rather than when their leases run out.
    pub async fn flush(&self) -> Result<(), StoreError> {
        match self {
            RateStore::Local(_) => Ok(()),
            RateStore::Redis(store) => store.flush().await,
        }
    }
}

impl RateLimitStore for RateStore {
    type Future = Either<Ready<Result<Admission, StoreError>>, RedisAcquire>;

    fn acquire(&self, key: &Key, now: Duration, limits: &Limits) -> Self::Future {
        match self {
            RateStore::Local(store) => Either::Left(store.acquire(key, now, limits)),
            RateStore::Redis(store) => Either::Right(store.acquire(key, now, limits)),
        }
    }

    // The local store decides on the spot; without this the check would go through a future.
    fn acquire_now(
        &self,
        key: &Key,
        now: Duration,
        limits: &Limits,
    ) -> Option<Result<Admission, StoreError>> {
        match self {
            RateStore::Local(store) => store.acquire_now(key, now, limits),
            RateStore::Redis(store) => store.acquire_now(key, now, limits),
        }
    }

    fn answers_now(&self) -> bool {
        match self {
            RateStore::Local(store) => store.answers_now(),
            RateStore::Redis(store) => store.answers_now(),
        }
    }

    fn release(&self, key: &Key, slot: Slot) {
        match self {
            RateStore::Local(store) => store.release(key, slot),
            RateStore::Redis(store) => store.release(key, slot),
        }
    }

    // Before an implicit-TLS handshake: the local store tells from its table, Redis lets the
    // connection through to the check after the handshake.
    fn peek(&self, key: &Key, now: Duration, limits: &Limits) -> Option<Refusal> {
        match self {
            RateStore::Local(store) => store.peek(key, now, limits),
            RateStore::Redis(store) => store.peek(key, now, limits),
        }
    }
}
