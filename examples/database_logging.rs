//! The connection-management guide's "With Database Logging": record every connection in an
//! embedded SQLite database when it opens, and update its row when it closes.
//!
//! ```text
//! cargo run --example database_logging -- --db connections.sqlite3 --max-connections 100
//! sqlite3 connections.sqlite3 'SELECT * FROM connections'
//! ```
//!
//! From the guide's JavaScript to Rust:
//!
//! - `db.connections.insert(..)` in `onConnect` is an [`OnConnectLayer`] hook that queues the
//!   row; `db.connections.update(..)` in `onClose` is an [`OnCloseLayer`] hook that queues the
//!   update, with the close report's reason, duration, user and byte counts.
//! - The guide calls the database from the event loop and ignores the result. SQLite calls
//!   block, so here they run on one writer thread fed by a channel: the hooks never block the
//!   async runtime, the channel keeps each connection's insert before its update, and the writer
//!   commits whatever has queued up in one transaction. Failures are reported on stderr.
//! - A connection refused by a layer after the insert (here a global connection limit with
//!   load shedding, `--max-connections`) still gets its update, with status `rejected` and the
//!   text the client was told: the close hook runs exactly once for every connection that
//!   reached it. The guide's rows of refused connections stay `connected` forever.
//! - On SIGTERM or Ctrl-C the server closes every session first (their updates are queued by
//!   then), and the writer then commits and closes the database before the process exits.

#[path = "guide/mod.rs"]
mod guide;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::UNIX_EPOCH;

use rusqlite::params;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower_mail::{CloseReason, CloseReport, Reject, Session};
use tower_mail_layers::on_close::OnCloseLayer;
use tower_mail_layers::on_connect::OnConnectLayer;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS connections (
    session_id     TEXT PRIMARY KEY,
    remote_address TEXT NOT NULL,
    timestamp      INTEGER NOT NULL, -- accept time, Unix milliseconds
    protocol       TEXT NOT NULL,
    status         TEXT NOT NULL,    -- connected, disconnected or rejected
    duration_ms    INTEGER,
    close_reason   TEXT,             -- logout, client_closed, shutdown, rejected, ...
    refusal        TEXT,             -- what a rejected client was told
    user           TEXT,
    bytes_in       INTEGER,
    bytes_out      INTEGER
)";

const INSERT: &str = "INSERT INTO connections
    (session_id, remote_address, timestamp, protocol, status)
    VALUES (?1, ?2, ?3, ?4, 'connected')";

const UPDATE: &str = "UPDATE connections
    SET status = ?2, duration_ms = ?3, close_reason = ?4, refusal = ?5, user = ?6,
        bytes_in = ?7, bytes_out = ?8
    WHERE session_id = ?1";

/// What the hooks send the writer thread.
enum Event {
    Connected {
        session_id: String,
        remote_address: String,
        timestamp_ms: i64,
        protocol: &'static str,
    },
    Closed {
        session_id: String,
        status: &'static str,
        duration_ms: i64,
        reason: &'static str,
        refusal: Option<String>,
        user: Option<String>,
        bytes_in: i64,
        bytes_out: i64,
    },
    /// Commit, close the database and end the thread.
    Stop,
}

/// The hooks' handle on the database: turns sessions into [`Event`]s for the writer.
#[derive(Clone)]
struct ConnectionLog {
    events: mpsc::Sender<Event>,
}

/// Saturate instead of wrapping: SQLite integers are signed 64-bit.
fn int(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

impl ConnectionLog {
    fn connected(&self, session: &Session) {
        let created = session.created().duration_since(UNIX_EPOCH);
        self.send(Event::Connected {
            session_id: session.id().to_string(),
            remote_address: session.remote_addr().ip().to_string(),
            timestamp_ms: created.map_or(0, |since| int(since.as_millis())),
            protocol: guide::protocol_name(session.protocol()),
        });
    }

    fn closed(&self, session: &Session, report: &CloseReport) {
        let (status, refusal) = match &report.reason {
            CloseReason::Rejected(reject) => ("rejected", Some(reject.message().to_owned())),
            _ => ("disconnected", None),
        };
        self.send(Event::Closed {
            session_id: session.id().to_string(),
            status,
            duration_ms: int(report.duration.as_millis()),
            reason: report.reason.as_str(),
            refusal,
            user: session.user(),
            bytes_in: int(report.bytes_in),
            bytes_out: int(report.bytes_out),
        });
    }

    /// Queue an event. Never blocks: the channel is unbounded, which is fine for an example;
    /// a server under sustained overload would bound it and count what it drops.
    fn send(&self, event: Event) {
        if self.events.send(event).is_err() {
            eprintln!("database_logging: the database writer has stopped; event lost");
        }
    }
}

/// The writer thread, owner of the SQLite connection.
struct Writer {
    log: ConnectionLog,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Open (or create) the database at `path` and start the writer. Opening happens here, so
    /// a bad path fails at start-up rather than at the first connection.
    fn start(path: &Path) -> rusqlite::Result<Writer> {
        let db = rusqlite::Connection::open(path)?;
        db.execute_batch(SCHEMA)?;
        let (events, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("connection-log".into())
            .spawn(move || write_events(db, queue))
            .expect("spawning the database writer thread");
        Ok(Writer {
            log: ConnectionLog { events },
            thread,
        })
    }

    /// Write everything queued so far, close the database, and wait for the thread.
    fn finish(self) {
        self.log.send(Event::Stop);
        if self.thread.join().is_err() {
            eprintln!("database_logging: the database writer panicked");
        }
    }
}

fn write_events(mut db: rusqlite::Connection, queue: mpsc::Receiver<Event>) {
    // Ends on Stop, or when every sender is gone.
    while let Ok(first) = queue.recv() {
        // Whatever has queued up meanwhile goes into the same transaction: one commit (and
        // fsync) per batch rather than per event, so the writer keeps up with bursts.
        let mut batch = vec![first];
        batch.extend(std::iter::from_fn(|| queue.try_recv().ok()));
        let stop = batch.iter().any(|event| matches!(event, Event::Stop));
        if let Err(err) = write_batch(&mut db, batch) {
            eprintln!("database_logging: writing the connection log failed: {err}");
        }
        if stop {
            break;
        }
    }
    if let Err((_, err)) = db.close() {
        eprintln!("database_logging: closing the database failed: {err}");
    }
}

fn write_batch(db: &mut rusqlite::Connection, batch: Vec<Event>) -> rusqlite::Result<()> {
    let tx = db.transaction()?;
    for event in batch {
        // One bad row must not cost the rest of the batch.
        if let Err(err) = write_event(&tx, event) {
            eprintln!("database_logging: writing a connection record failed: {err}");
        }
    }
    tx.commit()
}

fn write_event(tx: &rusqlite::Transaction<'_>, event: Event) -> rusqlite::Result<()> {
    match event {
        Event::Connected {
            session_id,
            remote_address,
            timestamp_ms,
            protocol,
        } => {
            let mut insert = tx.prepare_cached(INSERT)?;
            insert.execute(params![session_id, remote_address, timestamp_ms, protocol])?;
        }
        Event::Closed {
            session_id,
            status,
            duration_ms,
            reason,
            refusal,
            user,
            bytes_in,
            bytes_out,
        } => {
            let mut update = tx.prepare_cached(UPDATE)?;
            update.execute(params![
                session_id,
                status,
                duration_ms,
                reason,
                refusal,
                user,
                bytes_in,
                bytes_out
            ])?;
        }
        Event::Stop => {}
    }
    Ok(())
}

/// The guide's two handlers in front of any session service.
fn logged(inner: impl guide::Stack, log: ConnectionLog) -> impl guide::Stack {
    let on_connect = {
        let log = log.clone();
        move |session: Arc<Session>| {
            log.connected(&session);
            std::future::ready(Ok::<(), Reject>(()))
        }
    };
    ServiceBuilder::new()
        // Outermost, so every connection the insert saw gets its update, refused ones included.
        .layer(OnCloseLayer::new(
            move |session: &Session, report: &CloseReport| {
                log.closed(session, report);
            },
        ))
        .layer(OnConnectLayer::new(on_connect))
        .service(inner)
}

async fn run() -> Result<(), String> {
    let args = guide::Args::parse(&["--db", "--max-connections"])?;
    let path = PathBuf::from(args.last("--db").unwrap_or("connections.sqlite3"));
    let max_connections = args.parsed("--max-connections", 100)?;
    let writer = Writer::start(&path).map_err(|e| format!("{}: {e}", path.display()))?;

    // A later layer that refuses: over the limit, connections are refused at once
    // ("Too many connections, try again later") rather than queued.
    let limited = ServiceBuilder::new()
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(max_connections))
        .service(guide::pop3());
    let served = guide::serve(args.listen(), logged(limited, writer.log.clone())).await;

    // Every session has closed and queued its update by now; write them all out.
    writer.finish();
    println!("connection log closed: {}", path.display());
    served
}

#[tokio::main]
async fn main() -> ExitCode {
    guide::exit("database_logging", run().await)
}
