//! Leased members of sorted sets (open connections, open sessions): each member is scored by
//! a lease deadline on Redis' clock, renewed while it is held, and removed when given back.
//!
//! [`Leases`] hands out member ids; its background task sends the releases, which a `Drop`
//! cannot wait for, and renews the leases of the members still held. A server that crashes, or
//! is cut off from Redis, stops renewing, and its members stop counting when their leases run
//! out.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures_util::future::join_all;
use redis::Script;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::connection::Connection;
use super::{instance_id, millis};

/// Lease renewal of one server's members under one sorted set (`renew.lua`).
static RENEW: LazyLock<Script> =
    LazyLock::new(|| crate::redis_support::script(include_str!("renew.lua")));

/// A member a script may add to a leased sorted set: what the lease task needs to renew it or
/// remove it.
pub(crate) struct Counted {
    pub(crate) inbox: mpsc::UnboundedSender<Message>,
    pub(crate) set: Arc<str>,
    pub(crate) member: u64,
}

impl Counted {
    /// The member was added: renew its lease until it is released. Sent before the caller's
    /// permit exists, so that its release comes after it.
    pub(crate) fn opened(self) {
        // The task is gone only with the runtime: then nothing needs renewing.
        let _ = self.inbox.send(Message::Opened {
            set: self.set,
            member: self.member,
        });
    }

    /// Remove the member, which may or may not have been added (harmless if it was not).
    pub(crate) fn release(self) {
        let _ = self.inbox.send(Message::Release {
            set: self.set,
            member: self.member,
        });
    }
}

/// A store's leased members: ids, and the task that renews and releases them.
pub(crate) struct Leases {
    inbox: mpsc::UnboundedSender<Message>,
    /// Random per store: members of different stores (servers) never collide.
    instance: u64,
    next_member: AtomicU64,
    lease: Duration,
}

impl Leases {
    /// Start the task on the current Tokio runtime (the caller checked there is one). It runs
    /// until the `Leases` and every [`Counted`] it handed out are gone. `log` names the layer
    /// in its log events.
    pub(crate) fn start(connection: Connection, lease: Duration, log: &'static str) -> Leases {
        let (inbox, receiver) = mpsc::unbounded_channel();
        let instance = instance_id();
        let releaser = Releaser {
            connection,
            instance,
            lease,
            log,
            open: HashMap::new(),
        };
        tokio::spawn(releaser.run(receiver));
        Leases {
            inbox,
            instance,
            next_member: AtomicU64::new(1),
            lease,
        }
    }

    /// A new member of `set`, not added yet: the call that may add it carries it.
    pub(crate) fn counted(&self, set: Arc<str>) -> Counted {
        Counted {
            inbox: self.inbox.clone(),
            set,
            member: self.next_member.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The member's id as stored in Redis.
    pub(crate) fn member_id(&self, member: u64) -> String {
        member_id(self.instance, member)
    }

    /// Remove `member` of `set` (from a `Drop`: never waits).
    pub(crate) fn release(&self, set: Arc<str>, member: u64) {
        // Only fails when the task is gone, with its runtime: the lease then runs out.
        let _ = self.inbox.send(Message::Release { set, member });
    }

    /// Wait until every release queued so far has been sent; an error if the last batch could
    /// not be.
    pub(crate) async fn flush(&self) -> Result<(), String> {
        const STOPPED: &str = "the store's background task has stopped";
        let (done, answer) = oneshot::channel();
        self.inbox
            .send(Message::Flush(done))
            .map_err(|_| STOPPED.to_owned())?;
        answer.await.map_err(|_| STOPPED.to_owned())?
    }

    /// How long a member counts without renewal.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// The lease in milliseconds, as the scripts take it.
    pub(crate) fn lease_ms(&self) -> u64 {
        millis(self.lease)
    }

    /// This store's random id.
    pub(crate) fn instance(&self) -> u64 {
        self.instance
    }
}

/// Most messages handled as one batch: the releases among them go out as one pipeline.
const MAX_BATCH: usize = 512;

/// Most renewal scripts in flight at once (they are pipelined on the one connection).
const MAX_RENEWALS_IN_FLIGHT: usize = 256;

/// What the store and its futures tell the task, in the order it happened.
#[derive(Debug)]
pub(crate) enum Message {
    /// A connection was admitted and counted as `member` under the sorted set `set`: renew its
    /// lease until it is released.
    Opened { set: Arc<str>, member: u64 },
    /// `member` under `set` ended, or its acquire was given up and may have counted it: remove
    /// it (harmless if it was never added).
    Release { set: Arc<str>, member: u64 },
    /// Answer once every release queued before this one has been sent.
    Flush(oneshot::Sender<Result<(), String>>),
}

/// A member id as stored in Redis: the store's instance id and the slot's counter.
pub(crate) fn member_id(instance: u64, member: u64) -> String {
    format!("{instance:016x}-{member:x}")
}

/// The task's state: what it needs to reach Redis and the members it keeps alive.
struct Releaser {
    connection: Connection,
    instance: u64,
    lease: Duration,
    /// The `layer` field of its log events.
    log: &'static str,
    /// This store's held members, by sorted set.
    open: HashMap<Arc<str>, HashSet<u64>>,
}

impl Releaser {
    /// Run until every sender (the store and its unfinished acquires) is gone. Members held
    /// then are not released: their leases run out, as after a crash.
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Message>) {
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

    /// Apply a batch of messages: one pipeline of `ZREM`s (one `ZREM` each, sent together, on
    /// a cluster, where a pipeline must not span slots), then the flushes are answered.
    async fn handle(&mut self, batch: &mut Vec<Message>) {
        let mut removals = Vec::new();
        let mut flushes = Vec::new();
        for message in batch.drain(..) {
            match message {
                Message::Opened { set, member } => {
                    self.open.entry(set).or_default().insert(member);
                }
                Message::Release { set, member } => {
                    let mut zrem = redis::cmd("ZREM");
                    zrem.arg(&*set).arg(member_id(self.instance, member));
                    removals.push(zrem);
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
        let releases = removals.len();
        let sent = self.send(removals).await;
        if let Err(err) = &sent {
            // Not retried: the members stop counting when their leases run out, and they are
            // no longer renewed.
            tracing::warn!(
                layer = self.log,
                error = %err,
                releases,
                "redis store: releases not sent; their leases will run out"
            );
        }
        for done in flushes {
            let _ = done.send(sent.clone());
        }
    }

    /// Send `commands`, each on one key, in one round trip.
    async fn send(&mut self, commands: Vec<redis::Cmd>) -> Result<(), String> {
        if commands.is_empty() {
            return Ok(());
        }
        if !self.connection.is_cluster() {
            let mut pipe = redis::pipe();
            for command in commands {
                pipe.add_command(command).ignore();
            }
            return pipe
                .exec_async(&mut self.connection)
                .await
                .map_err(|err| err.to_string());
        }
        let sends = commands.into_iter().map(|command| {
            let mut connection = self.connection.clone();
            async move { command.exec_async(&mut connection).await }
        });
        let failed: Vec<_> = join_all(sends)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        match failed.first() {
            None => Ok(()),
            Some(err) => Err(format!("{} of them: {err}", failed.len())),
        }
    }

    /// Move the lease deadline of every member this store holds to now + lease.
    async fn renew(&mut self) {
        let lease_ms = millis(self.lease);
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
                    layer = self.log,
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
