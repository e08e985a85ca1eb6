//! The background task of a [`RedisStore`](super::RedisStore): it sends the releases, which a
//! `Drop` cannot wait for, and renews the leases of the store's open connections.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::script::RENEW;
use crate::rate_limit::{LAYER_NAME, StoreError};

/// Most messages handled as one batch: the releases among them go out as one pipeline.
const MAX_BATCH: usize = 512;

/// Most renewal scripts in flight at once (they are pipelined on the one connection).
const MAX_RENEWALS_IN_FLIGHT: usize = 256;

/// What the store and its futures tell the task, in the order it happened.
#[derive(Debug)]
pub(super) enum Message {
    /// A connection was admitted and counted as `member` under the sorted set `set`: renew its
    /// lease until it is released.
    Opened { set: Arc<str>, member: u64 },
    /// `member` under `set` ended, or its acquire was given up and may have counted it: remove
    /// it (harmless if it was never added).
    Release { set: Arc<str>, member: u64 },
    /// Answer once every release queued before this one has been sent.
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

/// A member id as stored in Redis: the store's instance id and the slot's counter.
pub(super) fn member_id(instance: u64, member: u64) -> String {
    format!("{instance:016x}-{member:x}")
}

/// The task's state: what it needs to reach Redis and the open connections it keeps alive.
pub(super) struct Releaser {
    pub(super) connection: ConnectionManager,
    pub(super) instance: u64,
    pub(super) lease: Duration,
    /// This store's open connections, by sorted set.
    pub(super) open: HashMap<Arc<str>, HashSet<u64>>,
}

impl Releaser {
    /// Run until every sender (the store and its unfinished acquires) is gone. Open
    /// connections left then are not released: their leases run out, as after a crash.
    pub(super) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Message>) {
        let every = (self.lease / 3).max(Duration::from_millis(10));
        let mut renew = tokio::time::interval_at(Instant::now() + every, every);
        renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                received = inbox.recv_many(&mut batch, MAX_BATCH) => {
                    if received == 0 {
                        return;
                    }
                    self.handle(&mut batch).await;
                }
                _ = renew.tick() => self.renew().await,
            }
        }
    }

    /// Apply a batch of messages: one pipeline of `ZREM`s, then the flushes are answered.
    async fn handle(&mut self, batch: &mut Vec<Message>) {
        let mut pipe = redis::pipe();
        let mut releases = 0;
        let mut flushes = Vec::new();
        for message in batch.drain(..) {
            match message {
                Message::Opened { set, member } => {
                    self.open.entry(set).or_default().insert(member);
                }
                Message::Release { set, member } => {
                    pipe.cmd("ZREM")
                        .arg(&*set)
                        .arg(member_id(self.instance, member))
                        .ignore();
                    releases += 1;
                    if let Some(members) = self.open.get_mut(&set) {
                        members.remove(&member);
                        if members.is_empty() {
                            self.open.remove(&set);
                        }
                    }
                }
                Message::Flush(done) => flushes.push(done),
            }
        }
        let sent = if releases == 0 {
            Ok(())
        } else {
            pipe.exec_async(&mut self.connection)
                .await
                .map_err(|err| err.to_string())
        };
        if let Err(err) = &sent {
            // Not retried: the members stop counting when their leases run out, and they are
            // no longer renewed.
            tracing::warn!(
                layer = LAYER_NAME,
                error = %err,
                releases,
                "redis store: releases not sent; their leases will run out"
            );
        }
        for done in flushes {
            let _ = done.send(sent.clone().map_err(StoreError::new));
        }
    }

    /// Move the lease deadline of every open connection of this store to now + lease.
    async fn renew(&mut self) {
        let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let sets: Vec<(Arc<str>, Vec<String>)> = self
            .open
            .iter()
            .map(|(set, members)| {
                let ids = members
                    .iter()
                    .map(|&member| member_id(self.instance, member))
                    .collect();
                (set.clone(), ids)
            })
            .collect();
        for chunk in sets.chunks(MAX_RENEWALS_IN_FLIGHT) {
            let renewals = chunk.iter().map(|(set, ids)| {
                let mut connection = self.connection.clone();
                async move {
                    RENEW
                        .key(&**set)
                        .arg(lease_ms)
                        .arg(ids)
                        .invoke_async::<i64>(&mut connection)
                        .await
                }
            });
            let failed = join_all(renewals)
                .await
                .into_iter()
                .filter_map(Result::err)
                .collect::<Vec<_>>();
            if let Some(err) = failed.first() {
                tracing::warn!(
                    layer = LAYER_NAME,
                    error = %err,
                    keys = failed.len(),
                    "redis store: leases not renewed"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_name_the_instance_and_the_slot() {
        assert_eq!(member_id(0xabc, 0x2a), "0000000000000abc-2a");
        assert_ne!(member_id(1, 23), member_id(12, 3));
    }
}
