//! Runs connections from `concurrency` tasks, bounded by a count and a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::sessions::{self, Outcome};
use crate::stats::Report;

/// Run up to `count` connections of `args.mode`, starting none after `args.duration`. The
/// first failed connection fails the run: its error names the connection's number.
pub async fn connections(args: &Arc<Args>, count: usize) -> Result<Report, String> {
    let claimed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;
    let tasks: Vec<_> = (0..args.concurrency.min(count))
        .map(|_| {
            let (args, claimed) = (args.clone(), claimed.clone());
            tokio::spawn(async move { worker(&args, &claimed, count, deadline).await })
        })
        .collect();
    let mut report = Report::default();
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(part)) => {
                report.connections += part.connections;
                report.latencies.extend(part.latencies);
                for (name, samples) in part.steps {
                    report.steps.entry(name).or_default().extend(samples);
                }
                report.fetches += part.fetches;
                report.bytes += part.bytes;
            }
            Ok(Err(err)) => failure = failure.or(Some(err)),
            Err(panic) => failure = failure.or(Some(format!("a client task failed: {panic}"))),
        }
    }
    report.elapsed = started.elapsed();
    match failure {
        Some(err) => Err(err),
        None => Ok(report),
    }
}

/// One task: claims connections one at a time, so that the tasks share the count evenly.
async fn worker(
    args: &Args,
    claimed: &AtomicUsize,
    count: usize,
    deadline: Instant,
) -> Result<Report, String> {
    let mut report = Report::default();
    while Instant::now() < deadline {
        let number = claimed.fetch_add(1, Ordering::Relaxed);
        if number >= count {
            break;
        }
        let started = Instant::now();
        let outcome: Outcome = match tokio::time::timeout(args.timeout, sessions::run(args)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(err)) => return Err(format!("connection {number}: {err}")),
            Err(_) => {
                return Err(format!("connection {number}: took over {:?}", args.timeout));
            }
        };
        report.latencies.push(started.elapsed());
        report.connections += 1;
        for (name, took) in outcome.steps {
            report.steps.entry(name).or_default().push(took);
        }
        report.fetches += outcome.fetches;
        report.bytes += outcome.bytes;
    }
    Ok(report)
}

/// A pause for the server to reach a steady state (sessions torn down, memory returned).
pub async fn settle(how_long: Duration) {
    tokio::time::sleep(how_long).await;
}
