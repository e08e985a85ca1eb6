//! Set-up shared by the connection-management guide examples (`ip_blocking`,
//! `business_hours`, `connection_logging`, `database_logging`), so each example holds only its
//! guide section's hooks.
//!
//! Each example parses its flags with [`Args`], builds its hooks as a stack over any session
//! service, and hands the stack to [`serve`], which runs it in front of POP3 (user `demo`,
//! password `demo`, mail in memory) until SIGTERM or Ctrl-C.
#![allow(dead_code)] // Not every example uses every helper.

use std::fmt::Display;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use tokio::net::TcpListener;
use tower::Service;
use tower_mail::auth::PasswdFile;
use tower_mail::pop3::{Pop3Config, Pop3Service};
use tower_mail::server::{Endpoint, Server, ServerConfig, TlsMode};
use tower_mail::store::MemoryStore;
use tower_mail::{BoxError, CloseReport, Connection, Protocol};
use tracing_subscriber::EnvFilter;

/// Where the examples listen unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:1110";

/// How long sessions get to say goodbye after SIGTERM before they are dropped (which still runs
/// every close hook).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A connection stack the server can run: any session service (POP3 today, IMAP alike), with or
/// without layers in front. The examples build their hooks as generic functions from one
/// `Stack` to another, so the same hooks serve either protocol.
pub trait Stack:
    Service<Connection, Response = CloseReport, Error: Into<BoxError>, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<S> Stack for S where
    S: Service<Connection, Response = CloseReport, Error: Into<BoxError>, Future: Send + 'static>
        + Clone
        + Send
        + 'static
{
}

/// Command-line flags: `--listen ADDR` plus the example's own flags, each taking one value and
/// repeatable.
pub struct Args {
    listen: String,
    options: Vec<(&'static str, String)>,
}

impl Args {
    /// Parse the process arguments, accepting `--listen` and the flags in `known`.
    pub fn parse(known: &[&'static str]) -> Result<Args, String> {
        let usage = || {
            let flags: String = known.iter().map(|f| format!(" [{f} VALUE]")).collect();
            format!("usage: [--listen ADDR]{flags}")
        };
        let mut args = Args {
            listen: DEFAULT_LISTEN.to_owned(),
            options: Vec::new(),
        };
        let mut argv = std::env::args().skip(1);
        while let Some(arg) = argv.next() {
            if arg == "--help" || arg == "-h" {
                return Err(usage());
            }
            let flag = ["--listen"]
                .iter()
                .chain(known)
                .find(|flag| **flag == arg)
                .ok_or_else(|| format!("unknown argument {arg:?}\n{}", usage()))?;
            let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match *flag {
                "--listen" => args.listen = value,
                flag => args.options.push((flag, value)),
            }
        }
        Ok(args)
    }

    /// The address to listen on.
    pub fn listen(&self) -> &str {
        &self.listen
    }

    /// Every value given for `flag`, in order.
    pub fn all<'a>(&'a self, flag: &str) -> impl Iterator<Item = &'a str> {
        self.options
            .iter()
            .filter(move |(name, _)| *name == flag)
            .map(|(_, value)| value.as_str())
    }

    /// The last value given for `flag`, if any.
    pub fn last(&self, flag: &str) -> Option<&str> {
        self.all(flag).last()
    }

    /// The last value of `flag` parsed as `T`, or `default` when the flag is absent.
    pub fn parsed<T>(&self, flag: &str, default: T) -> Result<T, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.last(flag) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|e| format!("{flag} {value:?}: {e}")),
        }
    }
}

/// The protocol's name as the guide writes it (`POP3`, `IMAP`) in log lines.
pub fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Pop3 => "POP3",
        Protocol::Imap => "IMAP",
    }
}

/// The session service the examples put their hooks in front of: POP3 over an in-memory store
/// with the single user demo/demo. Plaintext login is allowed because the examples listen
/// without TLS on loopback.
pub fn pop3() -> Pop3Service<PasswdFile, MemoryStore> {
    let mut config = Pop3Config::default();
    config.allow_plaintext_login = true;
    Pop3Service::new(
        PasswdFile::parse("demo:{PLAIN}demo"),
        MemoryStore::new(),
        config,
    )
}

/// Log events as text lines on stdout, at `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stdout)
        // Colour codes only for a person at a terminal, not in a pipe or a file.
        .with_ansi(std::io::stdout().is_terminal())
        .init();
}

/// Turn an example's result into its exit status, reporting an error on stderr.
pub fn exit(name: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Serve `stack` for POP3 on `listen` until SIGTERM or Ctrl-C, then shut down gracefully:
/// every session is told `-ERR` and closed, and every close hook has run when this returns.
///
/// Prints `listening on <addr>` (the bound address, so `--listen 127.0.0.1:0` is usable) once
/// the server accepts, and `stopped` at the end.
pub async fn serve(listen: &str, stack: impl Stack) -> Result<(), String> {
    // Install the signal handlers before announcing readiness: a SIGTERM sent right after
    // `listening on` must start a graceful shutdown, not kill the process by default action.
    let signals = shutdown_signal()?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("listening on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;

    let server = Server::new(ServerConfig::default());
    let accept_loop = server.serve(
        listener,
        Endpoint::new(Protocol::Pop3, TlsMode::None),
        stack,
    );
    // std's stdout is line-buffered even into a pipe, so each println! reaches a reader at once.
    println!("listening on {local}");

    signals.await;
    println!("shutting down");
    server.shutdown(SHUTDOWN_GRACE).await;
    // The accept loop ends at shutdown; await it so nothing of the server outlives this call.
    let _ = accept_loop.await;
    println!("stopped");
    Ok(())
}

/// A future that resolves on the first SIGTERM or SIGINT (Ctrl-C). The handlers are installed
/// when this is called, not when the future is first polled.
fn shutdown_signal() -> Result<impl Future<Output = ()>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
