//! What does IMAP cost? Three figures for the IMAP service over loopback, with a Maildir on
//! disk:
//!
//! 1. `UID FETCH 1:* (FLAGS ENVELOPE)` on a 10,000-message INBOX: first (the folder was never
//!    opened by this process, so every file is listed, stat'ed and read) and warm (a second
//!    session, the process's folder cache and the kernel's page cache full);
//! 2. a `NOOP` round trip with that INBOX selected (each command first looks for changes in
//!    the mailbox): right after the folder changed, when the store lists it again, and once
//!    its directories' times have settled, when it reuses the last listing;
//! 3. connections per second for connect → greeting → `LOGOUT`;
//! 4. server memory per idle authenticated connection: logged in, INBOX (10 messages)
//!    selected, then silent.
//!
//! ```text
//! cargo run --release --example imap_bench
//! cargo run --release --example imap_bench -- --messages 10000 --connections 5000 --idle 2000
//! ```
//!
//! Client and server share the process and its two cores, so the rates are a floor; the
//! memory figure is the growth of the process's resident set divided by the connections
//! (blocking client sockets keep their buffers in the kernel). Run with `ulimit -n` above
//! 2 × `--idle`.

mod measure;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tower_mail::Protocol;
use tower_mail::auth::PasswdFile;
use tower_mail::imap::{ImapConfig, ImapService};
use tower_mail::server::{Endpoint, Server, ServerConfig, TlsMode};
use tower_mail::store::{Maildir, Mailstore};

struct Options {
    messages: usize,
    connections: usize,
    idle: usize,
}

fn options() -> Options {
    let mut options = Options {
        messages: 10_000,
        connections: 5_000,
        idle: 2_000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--messages", Some(v)) => options.messages = v,
            ("--connections", Some(v)) => options.connections = v,
            ("--idle", Some(v)) => options.idle = v,
            _ => {
                eprintln!("usage: imap_bench [--messages N] [--connections N] [--idle N]");
                std::process::exit(2);
            }
        }
    }
    options
}

fn main() {
    let options = options();
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = Maildir::new(dir.path().join("maildir"));
    runtime.block_on(async {
        store.ensure_user("bench").await.expect("bench's tree");
        store.ensure_user("idle").await.expect("idle's tree");
    });
    fill_folder(&dir.path().join("maildir/bench/cur"), options.messages);
    fill_folder(&dir.path().join("maildir/idle/cur"), 10);

    let (server, addr) = runtime.block_on(async {
        let mut config = ImapConfig::default();
        config.allow_plaintext_login = true;
        let users = PasswdFile::parse("bench:{PLAIN}bench\nidle:{PLAIN}idle");
        let imap = ImapService::new(users, store, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Server::new(ServerConfig::default());
        server.serve(listener, Endpoint::new(Protocol::Imap, TlsMode::None), imap);
        (server, addr)
    });

    println!(
        "UID FETCH 1:* (FLAGS ENVELOPE), {} messages:",
        options.messages
    );
    for label in ["first open", "warm"] {
        let (elapsed, responses) = runtime.block_on(fetch_all(addr));
        assert_eq!(
            responses, options.messages,
            "one FETCH response per message"
        );
        let per_message = elapsed.as_secs_f64() * 1e6 / options.messages as f64;
        println!(
            "  {label:<10} {:>8.1} ms ({per_message:.1} µs per message)",
            elapsed.as_secs_f64() * 1e3
        );
    }

    let cur = dir.path().join("maildir/bench/cur");
    println!("NOOP with the {}-message INBOX selected:", options.messages);
    // A change just now (the directory's time moved): recent times are never trusted, so
    // every NOOP lists the folder again for the next two seconds.
    std::fs::File::open(&cur)
        .and_then(|dir| dir.set_modified(std::time::SystemTime::now()))
        .expect("touch cur/");
    let changed = runtime.block_on(noops(addr, 50));
    println!(
        "  {:<28} {:>8.1} µs",
        "changed in the last 2 s",
        changed.as_secs_f64() * 1e6
    );
    std::thread::sleep(Duration::from_millis(2_100));
    let settled = runtime.block_on(noops(addr, 500));
    println!(
        "  {:<28} {:>8.1} µs",
        "settled (listing reused)",
        settled.as_secs_f64() * 1e6
    );

    let elapsed = runtime.block_on(connect_logout(addr, options.connections));
    println!(
        "connect -> greeting -> LOGOUT: {:.0} connections/s ({} connections, 16 at once)",
        options.connections as f64 / elapsed.as_secs_f64(),
        options.connections
    );

    let per_connection = idle_memory(addr, options.idle);
    println!(
        "memory per idle authenticated connection (INBOX selected): {per_connection:.0} bytes ({} connections)",
        options.idle
    );
    runtime.block_on(server.shutdown(Duration::from_secs(5)));
}

/// `count` messages written straight into `cur/` as a delivery agent would leave them: the
/// store assigns their UIDs when the folder is first opened.
fn fill_folder(cur: &Path, count: usize) {
    for i in 0..count {
        let message = format!(
            "From: Sender {i} <sender{i}@example.com>\r\n\
             To: bench@example.com, Team: a@example.com, b@example.com;\r\n\
             Subject: =?utf-8?q?Message_n=C2=B0{i}?=\r\n\
             Date: Tue, 24 Nov 2026 10:{:02}:00 +0100\r\n\
             Message-ID: <{i}@bench.example>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             \r\n\
             Body of message {i}.\r\n",
            i % 60
        );
        let name = format!("{}.M{i}P1.bench:2,{}", 1_700_000_000 + i, ["", "S"][i % 2]);
        std::fs::write(cur.join(name), message).expect("write a message");
    }
}

/// A client session past the greeting, logged in as `bench`, with INBOX selected.
async fn inbox_selected(addr: SocketAddr) -> tokio::io::BufReader<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut client = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    client.read_line(&mut line).await.expect("greeting");
    command(&mut client, "a LOGIN bench bench").await;
    command(&mut client, "b SELECT INBOX").await;
    client
}

/// One session: LOGIN, SELECT INBOX, then the timed `UID FETCH`. Returns the time and the
/// number of FETCH responses.
async fn fetch_all(addr: SocketAddr) -> (Duration, usize) {
    let mut client = inbox_selected(addr).await;
    let started = Instant::now();
    let responses = command(&mut client, "c UID FETCH 1:* (FLAGS ENVELOPE)").await;
    let elapsed = started.elapsed();
    command(&mut client, "d LOGOUT").await;
    (elapsed, responses)
}

/// One session: LOGIN, SELECT INBOX, then `n` NOOPs; returns the mean NOOP round trip.
async fn noops(addr: SocketAddr, n: usize) -> Duration {
    let mut client = inbox_selected(addr).await;
    let started = Instant::now();
    for _ in 0..n {
        command(&mut client, "n NOOP").await;
    }
    let elapsed = started.elapsed();
    command(&mut client, "d LOGOUT").await;
    elapsed / n as u32
}

/// Send `text` and read to its tagged answer, which must be OK; returns the number of
/// untagged FETCH responses on the way.
async fn command(client: &mut tokio::io::BufReader<tokio::net::TcpStream>, text: &str) -> usize {
    let tag = text.split(' ').next().expect("a tag");
    client
        .get_mut()
        .write_all(format!("{text}\r\n").as_bytes())
        .await
        .expect("send");
    let mut fetches = 0;
    let mut line = String::new();
    loop {
        line.clear();
        let n = client.read_line(&mut line).await.expect("read");
        assert!(n > 0, "server closed during {text:?}");
        if line.starts_with("* ") && line.contains(" FETCH (") {
            fetches += 1;
        }
        if let Some(status) = line.strip_prefix(tag).and_then(|l| l.strip_prefix(' ')) {
            assert!(status.starts_with("OK"), "{text:?}: {line}");
            return fetches;
        }
    }
}

/// Connect, read the greeting, LOGOUT, read to EOF; `total` times, 16 clients at once.
async fn connect_logout(addr: SocketAddr, total: usize) -> Duration {
    const CLIENTS: usize = 16;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let share = total / CLIENTS + usize::from(client < total % CLIENTS);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let mut client = tokio::io::BufReader::new(stream);
                let mut line = String::new();
                client.read_line(&mut line).await.expect("greeting");
                command(&mut client, "a LOGOUT").await;
                let mut rest = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut rest).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    started.elapsed()
}

/// Resident memory growth per connection that logged in, selected INBOX and went silent.
fn idle_memory(addr: SocketAddr, n: usize) -> f64 {
    // Warm up allocator arenas and the runtime so their one-time growth is not counted.
    drop((0..100).map(|_| idle_client(addr)).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(500));
    let before = measure::resident_kib();
    let clients: Vec<TcpStream> = (0..n).map(|_| idle_client(addr)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let after = measure::resident_kib();
    drop(clients);
    (after.saturating_sub(before) * 1024) as f64 / n as f64
}

fn idle_client(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    for (tag, text) in [("a", "LOGIN idle idle"), ("b", "SELECT INBOX")] {
        writer
            .write_all(format!("{tag} {text}\r\n").as_bytes())
            .expect("send");
        loop {
            line.clear();
            reader.read_line(&mut line).expect("read");
            if line.starts_with(tag) {
                assert!(line.starts_with(&format!("{tag} OK")), "{text}: {line}");
                break;
            }
        }
    }
    writer
}
