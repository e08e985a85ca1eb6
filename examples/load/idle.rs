//! `idle`: hold N connections open, before login or after it, and read how much the server's
//! memory (its process and every child process) grew per connection.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::args::Args;
use crate::measure::{self, TreeMemory};
use crate::sessions;
use crate::wire::Conn;

/// Open `count` idle connections, `args.concurrency` at a time, and keep them.
async fn open(args: &Arc<Args>, count: usize) -> Result<Vec<Conn>, String> {
    let gate = Arc::new(Semaphore::new(args.concurrency));
    let tasks: Vec<_> = (0..count)
        .map(|number| {
            let (args, gate) = (args.clone(), gate.clone());
            tokio::spawn(async move {
                let _turn = gate.acquire().await.expect("the gate stays open");
                match tokio::time::timeout(args.timeout, sessions::idle(&args)).await {
                    Ok(Ok(conn)) => Ok(conn),
                    Ok(Err(err)) => Err(format!("idle connection {number}: {err}")),
                    Err(_) => Err(format!(
                        "idle connection {number}: took over {:?}",
                        args.timeout
                    )),
                }
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(count);
    for task in tasks {
        conns.push(task.await.map_err(|e| e.to_string())??);
    }
    Ok(conns)
}

fn memory(pid: u32) -> Result<TreeMemory, String> {
    measure::tree_memory(pid).ok_or_else(|| format!("--pid {pid}: no such process"))
}

/// Run the `idle` mode; returns the JSON fields it adds to the summary line.
pub async fn run(args: &Arc<Args>) -> Result<serde_json::Map<String, Value>, String> {
    let mut fields = serde_json::Map::new();
    if let Some(pid) = args.pid {
        memory(pid)?;
    }
    // Warm-up: the server's first connections grow allocator arenas and caches once; held
    // and dropped before the first reading so that growth is not charged to the measured ones.
    if args.warmup > 0 {
        drop(open(args, args.warmup).await?);
        crate::drive::settle(args.settle).await;
    }
    let before = args.pid.map(memory).transpose()?;
    let started = Instant::now();
    let conns = open(args, args.connections).await?;
    let opened = started.elapsed();
    println!(
        "{} idle connections ({}) open in {:.3} s",
        conns.len(),
        if args.login {
            "logged in"
        } else {
            "before login"
        },
        opened.as_secs_f64()
    );
    fields.insert("connections".into(), json!(conns.len()));
    fields.insert("login".into(), json!(args.login));
    let protocol = match args.protocol {
        crate::args::Protocol::Imap => "imap",
        crate::args::Protocol::Pop3 => "pop3",
    };
    fields.insert("protocol".into(), json!(protocol));
    crate::drive::settle(args.settle).await;
    if let (Some(pid), Some(before)) = (args.pid, before) {
        let after = memory(pid)?;
        let per = |b: u64, a: u64| a.saturating_sub(b) as f64 / conns.len() as f64;
        let rss = per(before.resident_kib, after.resident_kib);
        let pss = per(before.proportional_kib, after.proportional_kib);
        println!(
            "server pid {pid}: {} -> {} processes; resident {} -> {} KiB ({rss:.2} KiB per \
             connection); proportional {} -> {} KiB ({pss:.2} KiB per connection)",
            before.processes,
            after.processes,
            before.resident_kib,
            after.resident_kib,
            before.proportional_kib,
            after.proportional_kib,
        );
        fields.insert("processes_before".into(), json!(before.processes));
        fields.insert("processes_after".into(), json!(after.processes));
        fields.insert("rss_kib_before".into(), json!(before.resident_kib));
        fields.insert("rss_kib_after".into(), json!(after.resident_kib));
        fields.insert("rss_kib_per_conn".into(), json!(crate::stats::round3(rss)));
        fields.insert("pss_kib_per_conn".into(), json!(crate::stats::round3(pss)));
    }
    drop(conns);
    Ok(fields)
}
