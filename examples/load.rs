//! A load generator for any IMAP or POP3 server on this machine: the same client measures
//! tower-mail's example server, Dovecot, WildDuck and the floor (`floor_server`), so that
//! their figures compare. `bench/compare.sh` runs it against all of them; BENCHMARKS.md holds
//! the results.
//!
//! Modes:
//!
//! - `imap-greet`: connect, read the greeting, `a LOGOUT`, read to the server's close;
//! - `pop3-greet`: connect, greeting, `QUIT`, `+OK`, read to the close;
//! - `refusal`: connect and read whatever comes until the server closes (a refused client,
//!   plain or on a TLS port that refuses before the handshake);
//! - `imap-fetch`: LOGIN, SELECT INBOX, `UID FETCH 1:* (FLAGS ENVELOPE)` and
//!   `FETCH 1:* (BODYSTRUCTURE)`, each timed, LOGOUT;
//! - `pop3-retr`: USER, PASS, `RETR n` timed, QUIT;
//! - `idle`: hold `--connections` connections open after the greeting (or logged in, with
//!   INBOX selected for IMAP, with `--login`) and report how much the memory of the server's
//!   process, and its children's, grew per connection (`--pid`; Linux `/proc`): resident
//!   (`VmRSS`) and proportional (`Pss`, which counts a page shared by several processes once
//!   in all, the fair figure for a server of many processes).
//!
//! ```text
//! cargo build --release --example load --example floor_server
//! ./target/release/examples/floor_server --imap 127.0.0.1:2143 --pop3 127.0.0.1:2110 &
//! ./target/release/examples/load imap-greet --addr 127.0.0.1:2143 --connections 20000
//! ./target/release/examples/load imap-fetch --addr 127.0.0.1:1143 --user bench --password bench
//! ./target/release/examples/load idle --addr 127.0.0.1:1110 --protocol pop3 --connections 2000 --pid 1234
//! ```
//!
//! Every run is bounded in connections (`--connections`) and time (`--duration`, after which
//! no connection starts), and each connection in time (`--timeout`). It only connects to
//! loopback addresses: a load generator aimed at someone else's server by a typo is an
//! attack. Any unexpected answer fails the run (exit status 1): a rate over failures means
//! nothing. Rate modes print connections per second and the p50/p99/max time from connect
//! to the server's close; the others time their commands. The last line is one JSON object,
//! `{"load": {...}}`, for scripts.
//!
//! The generator and the server share the machine's cores: the absolute rates are a floor
//! and depend on the machine; ratios between servers measured alike are the figures to read.

mod measure;

#[path = "load/args.rs"]
mod args;
#[path = "load/drive.rs"]
mod drive;
#[path = "load/idle.rs"]
mod idle;
#[path = "load/sessions.rs"]
mod sessions;
#[path = "load/stats.rs"]
mod stats;
#[path = "load/wire.rs"]
mod wire;

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Value, json};

use args::{Args, Mode};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match args::parse() {
        Ok(args) => Arc::new(args),
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(fields) => {
            let mut summary = serde_json::Map::new();
            summary.insert("mode".into(), json!(args.mode.name()));
            summary.insert("addr".into(), json!(args.addr.to_string()));
            summary.insert("label".into(), json!(args.label));
            summary.extend(fields);
            println!("{}", json!({ "load": Value::Object(summary) }));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("load {} {}: {err}", args.mode.name(), args.addr);
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Arc<Args>) -> Result<serde_json::Map<String, Value>, String> {
    if args.mode == Mode::Idle {
        return idle::run(args).await;
    }
    if args.warmup > 0 {
        drive::connections(args, args.warmup).await?;
    }
    let mut report = drive::connections(args, args.connections).await?;
    println!(
        "load {} {} ({} at once):",
        args.mode.name(),
        args.addr,
        args.concurrency
    );
    Ok(report.print())
}
