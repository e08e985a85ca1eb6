//! What one connection of each mode does. Every exchange checks the server's answers: a
//! rate over failures means nothing, so any unexpected answer fails the connection.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::args::{Args, Mode, Protocol};
use crate::wire::Conn;

/// What one connection measured beyond its own duration.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Named steps inside the connection and how long each took (`imap-fetch`'s commands).
    pub steps: Vec<(&'static str, Duration)>,
    /// Untagged FETCH responses (`imap-fetch`: one per message for each command).
    pub fetches: usize,
    /// Bytes of retrieved message (`pop3-retr`) or of everything read (`refusal`).
    pub bytes: u64,
}

/// One connection of `args.mode` (not `idle`, which holds connections: see `idle.rs`).
pub async fn run(args: &Args) -> io::Result<Outcome> {
    let addr = args.addr;
    match args.mode {
        Mode::ImapGreet => imap_greet(addr).await,
        Mode::Pop3Greet => pop3_greet(addr).await,
        Mode::Refusal => refusal(addr).await,
        Mode::ImapFetch => imap_fetch(args).await,
        Mode::Pop3Retr => pop3_retr(args).await,
        Mode::Idle => unreachable!("idle holds connections; it has its own driver"),
    }
}

/// Greeting, `a LOGOUT`, `* BYE` and `a OK`, then the server's close: the server closes
/// first, so TIME_WAIT lands on its side and the generator keeps its ephemeral ports.
async fn imap_greet(addr: SocketAddr) -> io::Result<Outcome> {
    let mut conn = Conn::connect(addr).await?;
    conn.imap_greeting().await?;
    conn.imap_command("a", "LOGOUT").await?;
    conn.read_to_close().await?;
    Ok(Outcome::default())
}

async fn pop3_greet(addr: SocketAddr) -> io::Result<Outcome> {
    let mut conn = Conn::connect(addr).await?;
    conn.pop3_ok("POP3 greeting").await?;
    conn.send("QUIT").await?;
    conn.pop3_ok("QUIT").await?;
    conn.read_to_close().await?;
    Ok(Outcome::default())
}

/// A refused client: whatever the server says (`* BYE ...`, `-ERR ...`, or nothing on a TLS
/// port that refuses before the handshake) until it closes.
async fn refusal(addr: SocketAddr) -> io::Result<Outcome> {
    let mut conn = Conn::connect(addr).await?;
    let bytes = conn.read_to_close().await?;
    Ok(Outcome {
        bytes,
        ..Outcome::default()
    })
}

/// Logged in with INBOX selected: what `imap-fetch` and `idle --login` start from.
pub async fn imap_selected(args: &Args) -> io::Result<Conn> {
    let mut conn = Conn::connect(args.addr).await?;
    conn.imap_greeting().await?;
    conn.imap_command(
        "l",
        &format!("LOGIN {} {}", quoted(&args.user), quoted(&args.password)),
    )
    .await?;
    conn.imap_command("s", "SELECT INBOX").await?;
    Ok(conn)
}

/// Logged in to POP3: what `pop3-retr` and `idle --login --protocol pop3` start from.
pub async fn pop3_logged_in(args: &Args) -> io::Result<Conn> {
    let mut conn = Conn::connect(args.addr).await?;
    conn.pop3_ok("POP3 greeting").await?;
    conn.send(&format!("USER {}", args.user)).await?;
    conn.pop3_ok("USER").await?;
    conn.send(&format!("PASS {}", args.password)).await?;
    conn.pop3_ok("PASS").await?;
    Ok(conn)
}

/// The two whole-mailbox FETCHes, each timed.
async fn imap_fetch(args: &Args) -> io::Result<Outcome> {
    let mut conn = imap_selected(args).await?;
    let mut outcome = Outcome::default();
    for (tag, command) in [
        ("f", "UID FETCH 1:* (FLAGS ENVELOPE)"),
        ("b", "FETCH 1:* (BODYSTRUCTURE)"),
    ] {
        let started = Instant::now();
        outcome.fetches += conn.imap_command(tag, command).await?;
        outcome.steps.push((command, started.elapsed()));
    }
    conn.imap_command("z", "LOGOUT").await?;
    conn.read_to_close().await?;
    Ok(outcome)
}

async fn pop3_retr(args: &Args) -> io::Result<Outcome> {
    let mut conn = pop3_logged_in(args).await?;
    let started = Instant::now();
    conn.send(&format!("RETR {}", args.message)).await?;
    let bytes = conn.pop3_multiline("RETR").await?;
    let retr = started.elapsed();
    conn.send("QUIT").await?;
    conn.pop3_ok("QUIT").await?;
    conn.read_to_close().await?;
    Ok(Outcome {
        steps: vec![("RETR", retr)],
        bytes,
        ..Outcome::default()
    })
}

/// One `idle` connection: the greeting read (and with `--login` logged in), then held.
pub async fn idle(args: &Args) -> io::Result<Conn> {
    match (args.protocol, args.login) {
        (Protocol::Imap, false) => {
            let mut conn = Conn::connect(args.addr).await?;
            conn.imap_greeting().await?;
            Ok(conn)
        }
        (Protocol::Imap, true) => imap_selected(args).await,
        (Protocol::Pop3, false) => {
            let mut conn = Conn::connect(args.addr).await?;
            conn.pop3_ok("POP3 greeting").await?;
            Ok(conn)
        }
        (Protocol::Pop3, true) => pop3_logged_in(args).await,
    }
}

/// An IMAP quoted string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
